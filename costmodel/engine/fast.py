"""Optional compiled timing (the `costmodel[fast]` extra: numba): a phase's roofline per operator and its
sums in one pass over the configurations, and the metrics from them in another, without numpy's
temporaries or its per-call cost.

The formulas are roofline.op_times, roofline.mean_times, the sums of phases.step_time and
phases.busy_fraction, and for a sweep's shared decode timeline.overlapped, timeline.share and the lowering of
its attention at the last step (attention.py's pairs and pair_work, compiled from their own code),
and evaluate.finish's timeline, rates, energy and price per token (timeline.py, compiled likewise), a
sweep chunk's outcome (sweeps/grid._outcome's masks and reason codes), and memory.py's batch-free terms and KV
pool on a grid's rows (memory.batch_free_terms and kv_pool compiled as they are, reading the tables' records),
written element by element in numpy's order of operations, so the results are the same bits
(tests/engine/test_fast.py checks them against the numpy path, which stays the reference and the
fallback). Where numba is installed, a fit's evaluations (calibration/fit.py) and
sweeps of sweeps/grid.FAST_MIN_CONFIGS configurations or more use it; an estimate, validate and smaller
sweeps never import numba (loading it costs more than it saves there). COSTMODEL_FAST=0 turns it off.
"""
from __future__ import annotations

import functools
import os

import numpy as np

from costmodel.engine.distinct import key_columns
from costmodel.engine.memory import Memory
from costmodel.engine.operators import ATTENTION, COMM, MATMUL, OP_FIELDS, Ops
from costmodel.engine.roofline import attention_peak, comm_link, fused_mask
from costmodel.engine.timeline import TIMELINE


def enabled() -> bool:
    """numba is installed and COSTMODEL_FAST is not 0."""
    return os.environ.get("COSTMODEL_FAST", "1") != "0" and _installed()


@functools.lru_cache(maxsize=None)
def _installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("numba") is not None


@functools.lru_cache(maxsize=None)
def _kernels():
    """kernels.py (it imports numba), or None where numba is installed but does not load (an older
    numba after a numpy upgrade): the numpy path then."""
    try:
        from costmodel.engine import numba_setup  # its imports (hashlib, importlib.abc) are for the kernels alone

        with numba_setup.numba_cache():
            numba_setup.array_functions()
            from costmodel.engine import kernels
    except Exception:  # noqa: BLE001 - any failure to load means the numpy path
        return None
    return kernels


_NONE = np.zeros(0, dtype=np.bool_)  # the kernels' empty mask: every row or configuration kept
_EMPTY = np.zeros(0)  # kernels.batch_memory's total: not asked for
_NO_ROWS = np.zeros(0, dtype=np.int64)  # kernels.distinct_rows' starts: none given, the runs found


def usable(*sizes: int) -> bool:
    """The kernels load and every configuration axis holds at least two: numpy sums the operators of a
    single configuration pairwise (a different order of additions), of two or more one by one."""
    return all(n >= 2 for n in sizes) and _kernels() is not None


def kinds(units: np.ndarray) -> np.ndarray:
    """kernels.op_fields' kind of each operator's unit: 0 matrix, 1 attention, 2 vector, 3 interconnect."""
    units = np.asarray(units)
    return np.select([units == MATMUL, units == ATTENTION, units == COMM], [0, 1, 3], 2).astype(np.int64)


def _flat(x, shape, dtype=float) -> np.ndarray:
    """x broadcast to `shape`, C-contiguous, of `dtype` (float64: one compiled signature; a no-op where it already
    is)."""
    x = np.asarray(x, dtype=dtype)
    return x if x.shape == shape and x.flags.c_contiguous else np.ascontiguousarray(np.broadcast_to(x, shape))


def columns(hw: dict, f: dict, n: int) -> tuple:
    """The hardware and format columns `fields` reads, each as n C-contiguous floats, and whether any
    attention efficiency differs from 1 (op_times' switch)."""
    ae = np.asarray(hw.get("attention_efficiency", 1.0), dtype=float)
    cols = tuple(_flat(x, (n,)) for x in (hw["compute_half_rows"], hw["compute_efficiency"], ae,
                                          hw["memory_efficiency"], hw["bandwidth"], hw["kernel_overhead_s"],
                                          hw["comm_latency_s"], comm_link(hw), f["peak_matmul"], hw["peak_vector"],
                                          attention_peak(hw, f)))
    return cols, bool((ae != 1.0).any())


def fields(ops: Ops, cols: tuple) -> tuple:
    """roofline.op_times of `ops` on `columns`' n configurations (1-D), as four (operators, n) arrays."""
    operators, roofs = _op_arguments(ops, cols)
    return _kernels().op_fields(*operators, *roofs)


def _op_arguments(ops: Ops, cols: tuple) -> tuple:
    """(the operators' fields, each (operators, n), their kinds and fused mask; the n configurations' columns and
    the two switches of op_times): the arguments kernels.op_fields and op_sums take on either side of their own."""
    cfg, any_ae = cols
    shape = (len(ops.names), len(cfg[0]))
    return ((*(_flat(getattr(ops, k), shape) for k in OP_FIELDS), kinds(ops.units), fused_mask(ops)),
            (*cfg, bool(ops.dequant_flops.any()), any_ae))


def phase_sums(ops: Ops, cols: tuple, att: Ops | None = None, att_index=None, skip=None) -> tuple:
    """(rest, comm, busy, total) per configuration of a phase (phases.step_time's two sums,
    busy_fraction's two) on `columns`; with `att` (the attention operators at the phase's last step,
    at positions `att_index` of `ops`), those operators' times are averaged over the step's context
    (mean_times) in rest and comm, and busy and total stay the first step's. Operators at positions
    `skip` count as no time (SharedPhaseOps times attention apart)."""
    is_comm = np.asarray(ops.units) == COMM
    if att is None:  # kernels.op_sums: op_fields and sums in one pass
        skipped = np.zeros(len(ops.names), dtype=np.bool_)
        if skip is not None:
            skipped[skip] = True
        operators, roofs = _op_arguments(ops, cols)
        return _kernels().op_sums(*operators, skipped, is_comm, *roofs)
    sums = _kernels().sums
    c, m, fx, cm = fields(ops, cols)
    if skip is not None:
        for x in (c, m, fx, cm):
            x[skip] = 0.0
    att_of = np.full(len(ops.names), -1, dtype=np.int64)
    att_of[np.asarray(att_index)] = np.arange(len(att_index))
    return sums(c, m, fx, cm, is_comm, att_of, *fields(att, cols))


def decode_attention(first: tuple, a0: Ops, coef: dict, B, n, enc, c1, q_inv, cols: tuple, keep=None) -> tuple:
    """SharedPhaseOps' decode attention (kernels.decode_pass): (its mean total per configuration, the first step's
    busy and total time at the rows q as the rows of a (2, rows q) array), of attention_arguments' arguments.
    `keep` (a mask of the configurations, optional): the mean only where kept, 0.0 elsewhere."""
    return attention_means(attention_arguments(first, a0, coef, B, n, enc, c1, q_inv, cols), keep)


# where attention_arguments' tuple holds the configurations' prefill rows `at` and their rows q (kernels.decode_pass)
_AT, _Q_OF = 4, 5


def attention_means(arguments: tuple, keep=None) -> tuple:
    """decode_attention from its kernel's `arguments` (attention_arguments')."""
    return _kernels().decode_pass(*arguments, _NONE if keep is None else _flat(keep, arguments[_AT].shape, np.bool_),
                                  None)


def attention_arguments(first: tuple, a0: Ops, coef: dict, B, n, enc, c1, q_inv, cols: tuple) -> tuple:
    """kernels.decode_pass' arguments before its mask (the attention's; decode_metrics' pass takes them too).
    `first`: the attention operators' fields at the distinct rows q, `a0` those operators (configuration j's is
    column q_inv[j]); `coef`: their attention.pair_coefficients at the rows q, whose batch, new tokens and encoder
    flag are B, n, enc; c1: every configuration's context at the last step, where the kernel lowers the operators
    and times them on `cols` (`columns` at the rows q: j's model, format and device are row q_inv[j]'s, so no column
    is gathered to every configuration)."""
    cfg, any_ae = cols
    nq = len(cfg[0])
    v = list(coef.values())
    at, q_of = _via(q_inv)

    def table(field):  # (operators, rows q)
        return np.stack([_flat(getattr(x, field), (nq,)) for x in v])

    hr, ec, ae, em, bw, ko, _lat, _link, pm, pv, pa = cfg
    return (*first, at, q_of, _flat(c1, at.shape), *(_flat(x, (nq,)) for x in (B, n, enc)),
            *(table(k) for k in ("span", "heads", "per_pair", "kv_per_pair")), _flat(v[0].q_tile, (nq,)),
            table("layers"), _flat(a0.act_bytes, (len(v), nq)), table("rows"), np.array([x.chunked for x in v]),
            np.array([x.absent for x in v]), kinds(a0.units), fused_mask(a0), hr, ec, ae, em, bw, ko, pm, pv, pa,
            any_ae)


def _via(*indexes) -> tuple:
    """(at, rows, ...): configuration j's row of each index is rows[at[j]]. An index is a plain array (j's row at
    j), or a pair (at, rows): a sweep's, `at` its configurations' distinct prefill rows and `rows` a row per
    prefill row, so no index is gathered to every configuration. Pairs of one `at` keep it; else each index is
    made plain, `at` then 0, 1, 2, ..."""
    pairs = [x for x in indexes if isinstance(x, tuple)]
    if len(pairs) == len(indexes) and all(x[0] is pairs[0][0] for x in pairs):
        return tuple(np.asarray(x, dtype=np.int64) for x in (pairs[0][0], *(x[1] for x in pairs)))
    plain = [np.asarray(x[1])[x[0]] if isinstance(x, tuple) else np.asarray(x) for x in indexes]
    return (np.arange(len(plain[0]), dtype=np.int64), *(np.asarray(x, dtype=np.int64) for x in plain))


def decode_step(attention: tuple, q_inv, nq: int, overlap, d_sums: tuple, d_inv) -> tuple:
    """(step time, busy fraction) per configuration of SharedPhaseOps' decode (kernels.decode_step) from
    `decode_attention`, the rows q (nq of them, an index as _via's) and `overlap` at them (comm_overlap), the other
    operators' (rest, comm, busy, total) at the distinct rows d (`d_inv`, an index as _via's)."""
    at, q_of, d_of = _via(q_inv, d_inv)
    return _kernels().decode_step(attention, at, q_of, _flat(overlap, (nq,)), *d_sums, d_of)


# the metrics decode_metrics writes, in its order (a sweep's timed columns: sweeps/grid.METRICS)
WRITTEN = ("ttft_s", "tpot_s", "prefill_tokens_per_s", "decode_tokens_per_s", "throughput_tokens_per_s",
           "e2e_latency_s", "energy_j_per_token", "usd_per_million_tokens")


def decode_metrics(attention: tuple, q_inv, nq: int, overlap, d_sums: tuple, d_inv, p_inv, at_p: tuple,
                   at_q: tuple, replicas, gen, keep, into: dict) -> None:
    """decode_attention, decode_step, evaluate.finish's WRITTEN metrics and their masking in one kernel call
    (kernels.decode_pass) from the attention's `attention_arguments` (of the same q_inv): each metric written into
    the array of its name in `into`, NaN where not `keep`. `at_p`: the prefill's total and busy
    fraction (arrays at the distinct rows p, j's is p_inv's), prompt, batch, tp and pp there; `at_q`: the step
    overhead, encoder flag, idle fraction, TDP and price at the rows q; `replicas` one number, `gen` and `keep`
    per configuration. The indices q_inv, d_inv and p_inv as _via's."""
    at, q_of, d_of, p_of = _via(q_inv, d_inv, p_inv)
    n, n_p = len(at), len(at_p[0])
    p_cols = tuple(_flat(x, (n_p,)) for x in at_p)
    step, encoder, idle, tdp, price = at_q
    metrics = (_flat(overlap, (nq,)), *d_sums, d_of, p_of, *p_cols, _flat(step, (nq,)), _flat(encoder, (nq,), np.bool_),
               *(_flat(x, (nq,)) for x in (idle, tdp, price)), float(np.asarray(replicas).reshape(-1)[0]),
               _flat(gen, (n,)), tuple(into[k] for k in WRITTEN))
    _kernels().decode_pass(*attention[:_AT], at, q_of, *attention[_Q_OF + 1:], _flat(keep, (n,), np.bool_), metrics)


# the arrays kernels.batch_memory writes, in its order: the batch, the largest, memory.Memory's fields, their total
MEMORY_OUT = ("batch", "max_batch", "weights", "kv_cache", "activations", "reserve", "capacity", "kv_pool",
              "transient", "total")


def memory(rows: dict, inv, requested, into: dict | None = None) -> tuple | None:
    """(batch, largest batch, memory.Memory, runs) per configuration (kernels.batch_memory: evaluate.lower_all's
    memory stage, memory.py's formulas compiled as they are) from evaluate._per_sequence's terms at distinct
    rows (`rows`, with the DP groups "dp" and the engine's longest sequence "max_len" there, and "read", how many
    rows the index reads; configuration j's are row inv[j]) and its requested batch, or None where the
    configurations do not lie on one axis or the kernels do not load. `into`: arrays of MEMORY_OUT's names that
    those of their names are written into (and are), "total" Memory.total."""
    shape = np.broadcast_shapes(np.shape(inv), np.shape(requested))
    if len(shape) != 1 or _kernels() is None:
        return None
    s = rows["seq"]
    at = (rows["dp"], rows["max_len"], rows["bmax"], rows["one_long"], s.weights, s.kv, s.act, s.work, s.pool,
          s.reserve, s.capacity)
    inv = np.asarray(inv, dtype=np.int64)
    read = rows["read"]  # the distinct rows the configurations read
    n = np.broadcast_shapes(*(np.shape(x) for x in at))  # a term of one entry, shape (1,), stands for every row
    if len(n) != 1 or n[0] < read and n[0] != 1:
        return None
    into = into or {}
    if not all(isinstance(x, np.ndarray) and x.dtype == np.float64 and x.shape == shape and x.flags.c_contiguous
               and x.flags.writeable for x in into.values()):
        return None  # arrays the kernel cannot write: numpy's path copies into them
    at = tuple(_flat(x, (max(n[0], read),)) for x in at)
    made = iter(_kernels().rows_of(len(MEMORY_OUT) - 1, shape[0]))
    out = tuple(into[k] if k in into else next(made) for k in MEMORY_OUT[:-1]) + (into.get("total", _EMPTY),)
    ok = _kernels().batch_memory(inv, _flat(requested, shape), *at, out)
    B, bmax, weights, kv, act, reserve, capacity, pool, over, _ = out
    return B, bmax, Memory(weights, kv, act, reserve, capacity, pool, over), ok


def steps(B, pp, context, prompt, gen) -> tuple | None:
    """timeline.steps (Bc, Bd, c0, c1) by kernels.steps where B, context, prompt and gen are one axis of
    configurations and pp one number or one per configuration; else None (numpy's then)."""
    n = np.shape(B)
    if len(n) != 1 or any(np.shape(x) != n for x in (context, prompt, gen)) or np.size(pp) not in (1, n[0]):
        return None
    if _kernels() is None:
        return None
    pp = np.ascontiguousarray(np.asarray(pp, dtype=float).reshape(-1))
    rows = _kernels().steps(_flat(B, n), pp, int(pp.size > 1), *(_flat(x, n) for x in (context, prompt, gen)))
    return tuple(rows)


# kernels.finish_metrics' rows: timeline.TIMELINE, then the metrics a sweep reads of those finish computes from it
METRICS = (*TIMELINE, "prefill_tokens_per_s", "decode_tokens_per_s", "throughput_tokens_per_s", "energy_j_per_token",
           "usd_per_million_tokens")


def metrics(args: tuple, tp, pp, replicas, price) -> dict | None:
    """{METRICS name: array} of evaluate.finish (engine/timeline.py's formulas, compiled as they are) for `args`
    (finish's prefill step, step overhead, decode step, busy fractions, prompt, generated length, batch, encoder
    flag, idle fraction and TDP), tp, pp, replicas and hourly price, or None where they do not lie on one axis of
    configurations or the kernels do not load."""
    cols = (*args, tp, pp, replicas, price)
    shape = np.broadcast_shapes(*(np.shape(x) for x in cols))
    if len(shape) != 1 or _kernels() is None:
        return None
    out = _kernels().finish_metrics(*(_flat(x, shape) for x in args[:8]), _flat(args[8], shape, np.bool_),
                                    *(_flat(x, shape) for x in (*args[9:], tp, pp, replicas, price)))
    return dict(zip(METRICS, out))


TIMED = ("compute_half_rows", "compute_efficiency", "attention_efficiency", "memory_efficiency", "bandwidth",
         "kernel_overhead_s", "comm_latency_s", "interconnect", "comm_efficiency", "peak_vector", "peak_attention",
         "comm_overlap")  # the hardware columns `fields` and phases.overlap read (f: peak_matmul, attn_fp32)


def config_count(hw: dict, f: dict, *ops: Ops) -> int | None:
    """The number of configurations when they lie on one axis (the kernels' case), else None."""
    shapes = [np.shape(hw[k]) for k in TIMED if k in hw] + [np.shape(f[k]) for k in ("peak_matmul", "attn_fp32")]
    shape = np.broadcast_shapes(*shapes, *(o.flops.shape[1:] for o in ops))
    return shape[0] if len(shape) == 1 else None


def outcome(first, link_ok, fmt_ok, valid, fits) -> tuple | None:
    """(ok, reason code) of sweeps/grid.evaluate_chunk's configurations (kernels.outcome: its np.where chain); None
    where the kernels do not load."""
    if _kernels() is None:
        return None
    n = len(first)
    masks = (_flat(x, (n,), np.bool_) for x in (link_ok, fmt_ok, valid, fits))
    return _kernels().outcome(_flat(first, (n,), np.int8), *masks)


def records(table: dict) -> np.ndarray:
    """A table of columns (one row per catalogue entry, float64) as numpy records, one field per column: the rows
    kernels.batch_free and kernels.pools read (numba reads a record's fields by name, as the numpy path reads the
    columns)."""
    names = list(table)
    out = np.empty(len(table[names[0]]), dtype=[(k, np.float64) for k in names])
    for k in names:
        out[k] = table[k]
    return out


def _have_records(*tables) -> bool:
    """The kernels load and each table is a distinct.Gathered with its records (a grid's: sweeps/grid.Tables)."""
    return _kernels() is not None and all(getattr(x, "records", None) is not None for x in tables)


def pools(m, f, hw, n: int, tp, pp, dp, ep) -> tuple | None:
    """memory.kv_pool's (pool, headroom) at n rows (kernels.pools), where m, f and hw are distinct.Gathered tables
    with their records; else None."""
    if not _have_records(m, f, hw):
        return None
    return _kernels().pools(m.records, f.records, hw.records, m.row_index(n), f.row_index(n), hw.row_index(n),
                            *(_flat(x, (n,)) for x in (tp, pp, dp, ep)))


def batch_free(m, f, hw, n: int, prompt, gen, context, tp, pp, dp, ep, held, pool, headroom) -> tuple | None:
    """memory.batch_free_terms at n rows (kernels.batch_free: evaluate._per_sequence compiled), where m, f and hw
    are distinct.Gathered tables with their records and no row is a vision backbone's (its working set reads
    module tables, numpy's); else None."""
    if not _have_records(m, f, hw):
        return None
    mi = m.row_index(n)
    if "bb" in m and (m.records["bb"][mi] > 0).any():
        return None
    out = _kernels().batch_free(m.records, f.records, hw.records, mi, f.row_index(n), hw.row_index(n),
                                *(_flat(x, (n,)) for x in (prompt, gen, context, tp, pp, dp, ep, held, pool, headroom)))
    return tuple(out)


def code_groups(codes) -> tuple | None:
    """distinct.distinct_codes (kernels.code_groups: its table over the codes' range, one pass each way), or None
    where the kernels do not load, there are no rows or the codes span four times the rows or more (distinct's
    hash then)."""
    codes = np.ascontiguousarray(np.asarray(codes).reshape(-1), dtype=np.int64)
    if _kernels() is None or codes.size == 0:
        return None
    wide, first, inverse = _kernels().code_groups(codes)
    return None if wide else (first, inverse)


def distinct_rows(*keys, keep=None, starts=None) -> tuple | None:
    """distinct.distinct's groups of the key columns by kernels.distinct_rows (the same groups and first rows, each
    the earliest of its group, numbered as they first appear), where the keys are at least one integer column and
    one float column of one length; else None (distinct's then). `keep` (a mask of the rows, optional): the rows of
    runs of equal keys with no row kept are one group more, not searched (kernels.distinct_rows). `starts`
    (optional, distinct.distinct's): rows where every run of equal keys starts, so none is searched for (with `keep`,
    the runs between them are the runs it reads)."""
    cols, n = key_columns(keys)
    ints = tuple(np.ascontiguousarray(c, dtype=np.int64) for c in cols if c.dtype.kind in "iu")
    floats = tuple(np.ascontiguousarray(c, dtype=np.float64) for c in cols if c.dtype.kind not in "iu")
    if not ints or not floats or n == 0 or any(len(c) != n for c in cols) or _kernels() is None:
        return None
    mask = _NONE if keep is None else np.ascontiguousarray(np.broadcast_to(keep, (n,)), dtype=np.bool_)
    heads = _NO_ROWS if starts is None else _flat(starts, (len(starts),), np.int64)
    return _kernels().distinct_rows(ints, floats, mask, heads)



FRAME = ("im", "hw_i", "f_i", "groups", "seq", "batch", "prompt", "gen", "context", "tp", "dp", "ep", "first",
         "link_ok", "fmt_ok", "run")  # kernels.chunk_frame's columns, in its order


def chunk_frame(start: int, n: int, shape: tuple, axes: tuple, layout_flags: tuple, layout_reason, f_ok, encoder,
                interconnect) -> dict | None:
    """{FRAME name: column} of sweeps/grid.evaluate_chunk for the n configurations from flat index `start`
    (kernels.chunk_frame), from the grid's `shape`, its numeric axes (batch, tp, prompt, gen, context), the
    layouts' DP and EP flags, the tables' layout reasons, runnable formats, encoder flags and interconnects;
    None where the kernels do not load."""
    if _kernels() is None:
        return None
    ints, floats, first, flags = _kernels().chunk_frame(
        int(start), int(n), np.asarray(shape, dtype=np.int64), *(_flat(x, (len(x),)) for x in (*axes, *layout_flags)),
        _flat(layout_reason, (len(layout_reason),), np.int8), _flat(f_ok, (len(f_ok),), np.bool_),
        _flat(encoder, (len(encoder),)), _flat(interconnect, (len(interconnect),)))
    return dict(zip(FRAME, (*ints, *floats, first, *flags)))
