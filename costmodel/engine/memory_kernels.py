"""The [fast] kernels of the memory stage (fast.memory, fast.batch_free, fast.pools): memory.py's functions
compiled as they are, on a sweep's rows; a grid's tables read as numpy records (fast.records), whose fields
`record.get` and `in` read as the numpy path reads its dict of columns. Loaded through kernels.py, whose
overloads of elementwise.py they compile with."""
import operator

import numpy as np
from numba.core import types
from numba.extending import overload, overload_method, register_jitable

from costmodel.engine import backbone_ops, memory, operators
from costmodel.engine.kernel_base import jit, rows_of


group_batch = jit(operators.group_batch)


@overload(operators.group_batch)  # memory.batch_terms calls it
def _group_batch(batch, dp):
    return lambda batch, dp: group_batch(batch, dp)


batch_of = jit(memory.batch_of)
batch_terms = jit(memory.batch_terms)
pool_fits = jit(memory.pool_fits)
total_of = jit(memory.total_of)
runs = jit(memory.runs)


@jit
def batch_memory(inv, requested, dp, max_len, bmax, one_long, weights, kv, act, work, pool, reserve, capacity, out):
    """evaluate.lower_all's memory stage per configuration j from its requested batch and its batch-free terms, DP
    groups and the engine's longest sequence at distinct row inv[j] (memory.py's functions), written into the arrays
    of `out`: the batch (batch_of), the largest batch, memory.batch_memory's fields (each + 0.0, as batch_memory
    adds zeros of the configurations' shape: weights, KV, activations, reserve, capacity, pool, transient) and, where
    out's last array is not empty, their total (memory.total_of); returns whether each runs (pool_fits, runs)."""
    N = inv.shape[0]
    B, b_max, w_out, kv_out, act_out, res_out, cap_out, pool_out, over_out, total = out
    summed = total.shape[0] > 0
    ok = np.empty(N, dtype=np.bool_)
    for j in range(N):
        i = inv[j]
        b = batch_of(requested[j], bmax[i])
        kv_j, over = batch_terms(kv[i], work[i], act[i], b, dp[i])
        kv_j, over, pool_j = kv_j + 0.0, over + 0.0, pool[i] + 0.0
        w, a, r = weights[i] + 0.0, act[i] + over + 0.0, reserve[i] + 0.0
        B[j], b_max[j], w_out[j], kv_out[j] = b, bmax[i], w, kv_j
        act_out[j], res_out[j], cap_out[j] = a, r, capacity[i] + 0.0
        pool_out[j], over_out[j] = pool_j, over
        if summed:
            total[j] = total_of(w, kv_j, a, r)
        ok[j] = runs(pool_fits(kv_j, over, pool_j), b, max_len[i], one_long[i], pool_j)
    return ok


@overload_method(types.Record, "get", prefer_literal=True)
def _record_get(record, key, default):
    """A model, format or hardware row (a record of fast.records' table) read as the numpy path reads its dict of
    columns: record.get("name", default) is the field, or the default where the table has no such column."""
    if isinstance(key, types.StringLiteral):
        name = key.literal_value
        if name in record.fields:
            return lambda record, key, default: record[name]
        return lambda record, key, default: default


@overload(operator.contains, prefer_literal=True)
def _record_contains(record, key):
    """"name" in record: whether the table has the column (known when compiling)."""
    if isinstance(record, types.Record) and isinstance(key, types.StringLiteral):
        present = key.literal_value in record.fields
        return lambda record, key: present


@overload(backbone_ops.working_set_bytes)
def _working_set_bytes(index, n, ab):
    """Never reached: fast.batch_free leaves rows of a vision backbone (its tables are module constants, which a
    cached kernel would keep) to numpy."""
    return lambda index, n, ab: np.nan


for _plain in (memory.kv_bytes_per_token_layer, memory.kv_bytes_per_sequence, memory.state_bytes_per_sequence,
               memory.activation_bytes_per_token, memory.encoder_working_set, memory.activation_peak,
               memory.weight_bytes_total, memory.weight_bytes_per_device, memory.sequence_terms, memory.batch_limit,
               memory.pool_tokens, memory.batch_free_terms, memory.kv_pool):
    register_jitable(error_model="numpy", inline="always")(_plain)  # compiled into the kernels that call them


@jit
def batch_free(M, F, H, mi, fi, hi, prompt, gen, context, tp, pp, dp, ep, held, pool, headroom):
    """evaluate._per_sequence's terms at each row i (memory.batch_free_terms, compiled as it is) from row mi[i] of
    the model records M, fi[i] of the format records F and hi[i] of the hardware records H: 12 rows."""
    N = mi.shape[0]
    out = rows_of(12, N)
    for i in range(N):
        t = memory.batch_free_terms(M[mi[i]], F[fi[i]], H[hi[i]], prompt[i], gen[i], context[i], tp[i], pp[i], dp[i],
                                    ep[i], held[i], pool[i], headroom[i])
        out[0, i], out[1, i], out[2, i], out[3, i], out[4, i], out[5, i] = t[0], t[1], t[2], t[3], t[4], t[5]
        out[6, i], out[7, i], out[8, i], out[9, i], out[10, i], out[11, i] = t[6], t[7], t[8], t[9], t[10], t[11]
    return out


@jit
def pools(M, F, H, mi, fi, hi, tp, pp, dp, ep):
    """memory.kv_pool (compiled as it is) at each row i from row mi[i] of the model records M, fi[i] of the format
    records F and hi[i] of the hardware records H: (pool, headroom)."""
    N = mi.shape[0]
    out = rows_of(2, N)
    for i in range(N):
        out[0, i], out[1, i] = memory.kv_pool(M[mi[i]], F[fi[i]], H[hi[i]], tp[i], pp[i], dp[i], ep[i])
    return out[0], out[1]
