"""The compiled kernels of fast.py (numba, imported only through it; compiled on first use and cached
on disk). Each writes one of numpy's formulas element by element in numpy's order of operations:
the same bits (fast.py's docstring, tests/engine/test_fast.py). They read no module constant (a cached
kernel would keep an old value): an operator's unit comes as its `kind` (fast.kinds)."""
import operator

import numba
import numpy as np
from numba.core import types
from numba.extending import overload, overload_method, register_jitable

from costmodel.engine import attention, backbone_ops, elementwise, memory, operators, scalar_times, timeline, truth

jit = numba.njit(cache=True, error_model="numpy")  # x/0 is inf or NaN, as numpy's
inline = numba.njit(inline="always", error_model="numpy")  # compiled into each kernel that calls it


maximum = elementwise.maximum  # np.maximum on numbers in the kernels: its overload below


@jit
def rows_of(k, n):
    """An uninitialized (k, n) array whose rows start 192 bytes apart modulo 4 KiB (a row stride of n + 24): a
    kernel that writes k rows at once while reading other columns then does not evict its own lines (rows a
    multiple of 4 KiB apart share the cache's sets; measured in benchmarks/bench_sweep.py kernels)."""
    return np.empty((k, n + 24))[:, :n]


unit_roof = jit(scalar_times.unit_roof)  # roofline.op_times of one operator, the scalar path's own code


@jit
def comm_roof(ab, launches, lat, link):
    """roofline.op_times of a collective at one configuration: (fixed, comm); no compute or memory time."""
    return launches * lat, (ab / link if ab > 0 else 0.0)


@jit
def op_fields(flops, wb, ab, kb, launches, rows, dq, kind, fused, hr, ec, ae, em, bw, ko, lat, link, pm, pv, pa,
              any_dq, any_ae):
    """roofline.op_times: (compute, memory, fixed, comm), each (operators, configurations); kind per
    operator: 0 the matrix peak pm, 1 the attention peak pa, 2 the vector peak pv, 3 the interconnect."""
    K, N = flops.shape
    c, m, fx, cm = np.zeros((K, N)), np.zeros((K, N)), np.empty((K, N)), np.zeros((K, N))
    for k in range(K):
        u = kind[k]
        if u == 3:  # the interconnect
            for j in range(N):
                fx[k, j], cm[k, j] = comm_roof(ab[k, j], launches[k, j], lat[j], link[j])
            continue
        peak = pm if u == 0 else pa if u == 1 else pv
        att = any_ae and fused[k]
        for j in range(N):  # branch-free but for `att` and `any_dq`, fixed per operator: vectorized
            c[k, j], m[k, j], fx[k, j] = unit_roof(flops[k, j], wb[k, j], ab[k, j], kb[k, j], launches[k, j],
                                                   rows[k, j], dq[k, j], att, hr[j], ec[j], ae[j], em[j], bw[j],
                                                   ko[j], peak[j], pv[j], any_dq)
    return c, m, fx, cm

mean_total = jit(scalar_times.mean_total)  # roofline.mean_times of one operator, the scalar path's own code


@jit
def sums(c, m, fx, cm, is_comm, att_of, c1, m1, f1, x1):
    """Per configuration: the step's non-comm and comm operator times (operators of att_of >= 0
    averaged with row att_of of the *1 fields), and the busy and total times of the fields."""
    K, N = c.shape
    rest, comm, busy, total = np.zeros(N), np.zeros(N), np.zeros(N), np.zeros(N)
    for k in range(K):
        a = att_of[k]
        for j in range(N):
            top = maximum(c[k, j], m[k, j])
            t = top + fx[k, j] + cm[k, j]
            busy[j] += top
            total[j] += t
            if a >= 0:
                t = mean_total(c[k, j], m[k, j], fx[k, j], cm[k, j], c1[a, j], m1[a, j], f1[a, j], x1[a, j])
            if is_comm[k]:
                comm[j] += t
            else:
                rest[j] += t
    return rest, comm, busy, total


# the attention's (query, key) pairs and work per pair, attention.py's own code: numba compiles it with the
# element-wise functions and any_nonzero below standing for elementwise.py's and truth.py's on numbers
@overload(elementwise.where)
def _where(condition, a, b):
    return lambda condition, a, b: a if condition else b


@overload(elementwise.maximum)
def _maximum(a, b):
    return lambda a, b: a if (a > b or a != a) else b


@overload(elementwise.minimum)
def _minimum(a, b):
    return lambda a, b: a if (a < b or a != a) else b


@overload(elementwise.clip)
def _clip(x, lo, hi):
    def clip(x, lo, hi):  # elementwise.clip's rule: lo where lo > x or lo is NaN, then hi where hi < y or NaN
        lo_f, hi_f = float(lo), float(hi)
        y = lo_f if x == x and (lo_f > x or lo_f != lo_f) else x
        return hi_f if y == y and (hi_f < y or hi_f != hi_f) else y
    return clip


@overload(elementwise.floor)
def _floor(x):
    return lambda x: np.floor(x)


@overload(elementwise.mod)
def _mod(a, b):
    return lambda a, b: a % b if b != 0 else np.nan  # np.mod: Python's float remainder, NaN over zero


_FLOAT_MAX = float(np.finfo(np.float64).max)  # np.nan_to_num's stand-in for inf


@overload(elementwise.nan_to_num)
def _nan_to_num(x):
    def nan_to_num(x):  # NaN as 0, ±inf as the largest finite float64 of its sign
        if x != x:
            return 0.0
        if x == np.inf:
            return _FLOAT_MAX
        return -_FLOAT_MAX if x == -np.inf else x
    return nan_to_num


@overload(elementwise.ceil)
def _ceil(x):
    return lambda x: np.ceil(x)


@overload(elementwise.divide)
def _divide(a, b):
    return lambda a, b: a / b  # error_model="numpy": ±inf or NaN over zero, as numpy's


@overload(elementwise.as_float)
def _as_float(x):
    return lambda x: float(x)


@overload(truth.any_nonzero)
def _any_nonzero(x):
    return lambda x: x != 0  # bool(x): NaN counts as nonzero


overlapped = jit(timeline.overlapped)  # a step's time and busy share, timeline.py's own code
share = jit(timeline.share)
causal_pairs = jit(attention.causal_pairs)
chunked_pairs = jit(attention.chunked_pairs)
pair_work = jit(attention.pair_work)


@overload(attention.causal_pairs, inline="always")  # attention.variant_work calls these three
def _causal_pairs(n, c, span, encoder):
    return lambda n, c, span, encoder: causal_pairs(n, c, span, encoder)


@overload(attention.chunked_pairs, inline="always")
def _chunked_pairs(n, c, span, decode):
    return lambda n, c, span, decode: chunked_pairs(n, c, span, decode)


@overload(attention.pair_work, inline="always")
def _pair_work(pairs, heads, per_pair, kv_per_pair, q_tile, layers):
    return lambda pairs, heads, per_pair, kv_per_pair, q_tile, layers: pair_work(pairs, heads, per_pair, kv_per_pair,
                                                                                 q_tile, layers)


# inlined into decode_step, as the three above are into variant_work: called as functions they cost decode_step
# 15-25 % on one chunk (benchmarks/bench_sweep.py kernels, interleaved processes)
no_work = inline(attention.no_work)
variant_work = inline(attention.variant_work)


@jit
def decode_step(c0, m0, f0, x0, q_inv, c1, B, n, enc, span, heads, per_pair, kv_per_pair, q_tile, layers, act, rows,
                chunked, absent, kind, fused, hr, ec, ae, em, bw, ko, pm, pv, pa, any_ae, overlap, d_rest, d_comm,
                d_busy, d_total, d_inv):
    """SharedPhaseOps.times' decode, per configuration j: its attention operators lowered at the last step
    (attention.attention_terms' variant_work, or no_work where absent[k], at j's context c1[j], from the pair
    coefficients, batch B, new tokens n and encoder flag of distinct row q = q_inv[j], where j's model, format,
    device and layout are: their activations, launches and rows are the first step's, row q of `act`, `layers`,
    `rows`) and timed on row q's columns (op_fields), averaged with the first step's (column q of the *0 fields:
    mean_total); the step (phases.overlap of the other operators' sums at distinct row d_inv[j] plus that mean,
    and their collectives) and its busy fraction (timeline.share, the first step's attention included).
    Operator k is chunked local attention where chunked[k]."""
    K, N = span.shape[0], q_inv.shape[0]
    acc = rows_of(3, N)
    acc[:] = 0.0
    mean, busy, total = acc[0], acc[1], acc[2]
    for k in range(K):
        u = kind[k]
        peak = pm if u == 0 else pa if u == 1 else pv
        att = any_ae and fused[k]
        for j in range(N):
            q = q_inv[j]
            c = c1[j]
            launches, r = layers[k, q], rows[k, q]
            if absent[k]:
                zero = no_work(B[q] * n[q], c)
                flops = kv = 0.0
                launches, r = launches + zero, r + zero
            else:
                flops, kv = variant_work(B[q], n[q], c, span[k, q], chunked[k], True, enc[q], heads[k, q],
                                         per_pair[k, q], kv_per_pair[k, q], q_tile[q], layers[k, q])
            c1_, m1_, f1_ = unit_roof(flops, 0.0, act[k, q], kv, launches, r, 0.0, att, hr[q], ec[q], ae[q], em[q],
                                      bw[q], ko[q], peak[q], pv[q], False)
            top = maximum(c0[k, q], m0[k, q])
            busy[j] += top
            total[j] += top + f0[k, q] + x0[k, q]
            mean[j] += mean_total(c0[k, q], m0[k, q], f0[k, q], x0[k, q], c1_, m1_, f1_, 0.0)
    out = rows_of(2, N)
    step, u_dec = out[0], out[1]
    for j in range(N):
        i = d_inv[j]
        step[j] = overlapped(d_rest[i] + mean[j], d_comm[i], overlap[q_inv[j]])
        u_dec[j] = share(d_busy[i] + busy[j], d_total[i] + total[j])
    return step, u_dec


prefill_seconds = jit(timeline.prefill_seconds)
line = jit(timeline.timeline)
prefill_rate = jit(timeline.prefill_rate)
decode_rate = jit(timeline.decode_rate)
throughput = jit(timeline.throughput)
energy_per_token = jit(timeline.energy_per_token)
usd_per_million_tokens = jit(timeline.usd_per_million_tokens)


@jit
def finish_metrics(pre_total, step, step_s, u_pre, u_dec, prompt, gen, Bc, encoder, idle, tdp, tp, pp, replicas,
                   price):
    """evaluate.finish per configuration (timeline.py's functions): the prefill's time, TPOT, e2e, output tokens,
    average power, device-seconds per token, and the prefill and decode rates, throughput, energy and price per
    token, as the rows of one (11, configurations) array (fast.METRICS)."""
    N = step_s.shape[0]
    out = rows_of(11, N)
    for j in range(N):
        p = prefill_seconds(pre_total[j], prompt[j], step[j])
        tpot, e2e, tokens, power, per_token = line(p, step_s[j], u_pre[j], u_dec[j], prompt[j], gen[j], Bc[j],
                                                   encoder[j], idle[j], tdp[j])
        out[0, j], out[1, j], out[2, j], out[3, j], out[4, j], out[5, j] = p, tpot, e2e, tokens, power, per_token
        out[6, j] = prefill_rate(Bc[j], prompt[j], p)
        out[7, j] = decode_rate(tpot)
        out[8, j] = throughput(replicas[j], tokens, e2e)
        out[9, j] = energy_per_token(tp[j], pp[j], power, per_token)
        out[10, j] = usd_per_million_tokens(tp[j], pp[j], price[j], per_token)
    return out


group_batch = jit(operators.group_batch)


@overload(operators.group_batch)  # memory.batch_terms calls it
def _group_batch(batch, dp):
    return lambda batch, dp: group_batch(batch, dp)


batch_of = jit(memory.batch_of)
batch_terms = jit(memory.batch_terms)
pool_fits = jit(memory.pool_fits)
runs = jit(memory.runs)


@jit
def batch_memory(inv, requested, dp, max_len, bmax, one_long, weights, kv, act, work, pool, reserve, capacity):
    """evaluate.lower_all's memory stage per configuration j from its batch-free terms at distinct row inv[j]
    (memory.py's functions): the batch (batch_of), memory.batch_memory's fields (each + 0.0, as batch_memory adds
    zeros of the configurations' shape), and whether it runs (pool_fits, runs)."""
    N = inv.shape[0]
    out = rows_of(9, N)
    ok = np.empty(N, dtype=np.bool_)
    for j in range(N):
        i = inv[j]
        b = batch_of(requested[j], bmax[i])
        kv_j, over = batch_terms(kv[i], work[i], act[i], b, dp[j])
        kv_j, over, pool_j = kv_j + 0.0, over + 0.0, pool[i] + 0.0
        out[0, j], out[1, j], out[2, j], out[3, j] = b, bmax[i], weights[i] + 0.0, kv_j
        out[4, j], out[5, j], out[6, j] = act[i] + over + 0.0, reserve[i] + 0.0, capacity[i] + 0.0
        out[7, j], out[8, j] = pool_j, over
        ok[j] = runs(pool_fits(kv_j, over, pool_j), b, max_len[j], one_long[i], pool_j)
    return (out[0], out[1], out[2], out[3], out[4], out[5], out[6], out[7], out[8], ok)


@jit
def outcome(first, link_ok, fmt_ok, run, fits, metrics, into):
    """sweeps/grid.evaluate_chunk's closing columns per configuration j: valid = run & fmt_ok, ok = valid & fits,
    reason = first, else 2 without a link, 4 without the format, 3 where it does not fit, 0 (its np.where chain,
    as int8); and each of `metrics` written into `into` where ok, NaN elsewhere (np.where(ok, x, np.nan))."""
    N = first.shape[0]
    valid, ok, reason = np.empty(N, dtype=np.bool_), np.empty(N, dtype=np.bool_), np.empty(N, dtype=np.int8)
    for j in range(N):
        valid[j] = run[j] and fmt_ok[j]
        ok[j] = valid[j] and fits[j]
        r = first[j]
        if r == 0:
            r = 2 if not link_ok[j] else 4 if not fmt_ok[j] else 3 if not fits[j] else 0
        reason[j] = r
    for k in range(len(metrics)):
        x, out = metrics[k], into[k]
        for j in range(N):
            out[j] = x[j] if ok[j] else np.nan
    return valid, ok, reason



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


@overload(elementwise.isfinite)
def _isfinite(x):
    return lambda x: np.isfinite(x)


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
def code_groups(codes):
    """distinct.distinct_codes by its table over the codes' range (a range under four times the rows: else `wide`
    True and empty arrays): (wide, first, inverse), each row's group the number of present codes below its own."""
    n = codes.shape[0]
    lo, hi = codes[0], codes[0]
    for j in range(n):
        lo, hi = min(lo, codes[j]), max(hi, codes[j])
    if hi - lo >= 4 * n:
        return True, np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    rank = np.zeros(hi - lo + 1, dtype=np.intp)
    for j in range(n):
        rank[codes[j] - lo] = 1
    count = 0
    for k in range(rank.shape[0]):
        present = rank[k]
        rank[k] = count
        count += present
    inverse = np.empty(n, dtype=np.intp)
    first = np.empty(count, dtype=np.intp)
    for j in range(n):
        g = rank[codes[j] - lo]
        inverse[j] = g
        first[g] = j  # one row of each group (the last, as numpy's repeated targets)
    return False, first, inverse



@jit
def pools(M, F, H, mi, fi, hi, tp, pp, dp, ep):
    """memory.kv_pool (compiled as it is) at each row i from row mi[i] of the model records M, fi[i] of the format
    records F and hi[i] of the hardware records H: (pool, headroom)."""
    N = mi.shape[0]
    out = rows_of(2, N)
    for i in range(N):
        out[0, i], out[1, i] = memory.kv_pool(M[mi[i]], F[fi[i]], H[hi[i]], tp[i], pp[i], dp[i], ep[i])
    return out[0], out[1]


@jit
def chunk_frame(start, n, shape, batch, tp, prompt, gen, context, dp_of, ep_of, layout_reason, f_ok, encoder,
                interconnect):
    """sweeps/grid.evaluate_chunk's columns for the n configurations from flat index `start` in grid order, an
    odometer over the axes of `shape` (models, devices, formats, KV formats, engines, batch, tp, layouts, prompt,
    gen, context) in place of unravelling each index: the model, device and format rows, the inputs as the engine
    takes them (gen 0 for an encoder; tp, dp and ep 1 where the layout cannot run), the groups and batch-free
    codes, and the layout's reason, link, format and run flags (grid._frame's numpy, the same values)."""
    K = shape.shape[0]
    at = np.empty(K, dtype=np.int64)
    r = start
    for k in range(K - 1, -1, -1):
        at[k] = r % shape[k]
        r //= shape[k]
    n_h, n_k, n_e, n_t, n_l = shape[1], shape[3], shape[4], shape[6], shape[7]
    batch_stride = 1
    for k in range(6, K):
        batch_stride *= shape[k]
    ints = np.empty((5, n + 24), dtype=np.int64)[:, :n]  # model, device, format rows, groups, batch-free codes
    floats = rows_of(7, n)  # batch, prompt, gen, context, tp, dp, ep
    first = np.empty(n, dtype=np.int8)
    flags = np.empty((3, n + 192), dtype=np.bool_)[:, :n]  # link, format, run (rows staggered as rows_of's)
    n_f = f_ok.shape[0]
    for j in range(n):
        im, ih, i_f, ik, ie, ib, it, il = at[0], at[1], at[2], at[3], at[4], at[5], at[6], at[7]
        hw_i = (i_f * n_h + ih) * n_e + ie
        f_i = ((i_f * n_h + ih) * n_k + ik) * n_e + ie
        t, b = tp[it], batch[ib]
        reason = layout_reason[(im * n_t + it) * n_l + il]
        link = (t == 1) | (interconnect[hw_i] > 0)
        run = (reason == 0) & link
        ints[0, j], ints[1, j], ints[2, j], ints[3, j] = im, hw_i, f_i, im * n_f + f_i
        ints[4, j] = start + j + ((b < 0) - ib) * batch_stride
        floats[0, j], floats[1, j], floats[3, j] = b, prompt[at[8]], context[at[10]]
        floats[2, j] = 0.0 if encoder[im] > 0 else gen[at[9]]
        floats[4, j] = t if run else 1.0
        floats[5, j] = (t if dp_of[il] > 0 else 1.0) if run else 1.0
        floats[6, j] = (t if ep_of[il] > 0 else 1.0) if run else 1.0
        first[j] = reason
        flags[0, j], flags[1, j], flags[2, j] = link, f_ok[f_i], run
        k = K - 1  # the next configuration: the innermost axis on, carried outward
        at[k] += 1
        while k > 0 and at[k] == shape[k]:
            at[k] = 0
            k -= 1
            at[k] += 1
    return ints, floats, first, flags
