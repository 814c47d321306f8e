"""The compiled kernels of fast.py (numba, imported only through it; compiled on first use and cached
on disk). Each writes one of numpy's formulas element by element in numpy's order of operations:
the same bits (fast.py's docstring, tests/engine/test_fast.py). They read no module constant (a cached
kernel would keep an old value): an operator's unit comes as its `kind` (fast.kinds). This module holds the
phases' timing and metrics and the overloads of elementwise.py, truth.py and attention.py every kernel compiles
with; memory_kernels.py the memory stage's, grid_kernels.py a sweep chunk's own columns (imported here: fast.py
reaches every kernel as an attribute of this module)."""
import numpy as np
from numba.extending import overload

from costmodel.engine import attention, elementwise, grid_kernels, kernel_base, memory_kernels, scalar_times, timeline
from costmodel.engine import truth
from costmodel.engine.kernel_base import inline, jit

# the other modules' kernels, as fast.py reaches them
rows_of = kernel_base.rows_of
batch_memory, batch_free, pools = memory_kernels.batch_memory, memory_kernels.batch_free, memory_kernels.pools
chunk_frame, outcome, code_groups = grid_kernels.chunk_frame, grid_kernels.outcome, grid_kernels.code_groups
distinct_rows = grid_kernels.distinct_rows

maximum = elementwise.maximum  # np.maximum on numbers in the kernels: its overload below


unit_rates = jit(scalar_times.unit_rates)
unit_times = jit(scalar_times.unit_times)


@overload(scalar_times.unit_rates, inline="always")  # unit_roof calls these two
def _unit_rates(r, hr, ec, ae, em, bw, peak, att):
    return lambda r, hr, ec, ae, em, bw, peak, att: unit_rates(r, hr, ec, ae, em, bw, peak, att)


@overload(scalar_times.unit_times, inline="always")
def _unit_times(flops, wb, ab, kb, launches, dq, e, scale, per_byte, att, pv, ec, ko, any_dq):
    return (lambda flops, wb, ab, kb, launches, dq, e, scale, per_byte, att, pv, ec, ko, any_dq:
            unit_times(flops, wb, ab, kb, launches, dq, e, scale, per_byte, att, pv, ec, ko, any_dq))


unit_roof = jit(scalar_times.unit_roof)  # roofline.op_times of one operator, the scalar path's own code


@inline
def unit_peak(kind, pm, pa, pv):
    """The peak column an operator of unit `kind` runs at: 0 the matrix peak pm, 1 the attention peak pa, 2 the
    vector peak pv (3, the interconnect, has none: the callers time it apart)."""
    return pm if kind == 0 else pa if kind == 1 else pv


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
        peak = unit_peak(u, pm, pa, pv)
        att = any_ae and fused[k]
        for j in range(N):  # branch-free but for `att` and `any_dq`, fixed per operator: vectorized
            c[k, j], m[k, j], fx[k, j] = unit_roof(flops[k, j], wb[k, j], ab[k, j], kb[k, j], launches[k, j],
                                                   rows[k, j], dq[k, j], att, hr[j], ec[j], ae[j], em[j], bw[j],
                                                   ko[j], peak[j], pv[j], any_dq)
    return c, m, fx, cm


@jit
def op_sums(flops, wb, ab, kb, launches, rows, dq, kind, fused, skip, is_comm, hr, ec, ae, em, bw, ko, lat, link, pm,
            pv, pa, any_dq, any_ae):
    """sums(*op_fields(...), is_comm) without attention averaged, in one pass and without op_fields' four
    (operators, configurations) arrays: each operator's (compute, memory, fixed, comm) as op_fields computes them
    (all zero where skip[k]), added to the configuration's sums in sums' order. The same bits: a sum starts at +0.0
    and never becomes -0.0, so the zeros sums would add (a skipped operator's, a collective's compute and memory)
    change nothing and are left out."""
    K, N = flops.shape
    rest, comm, busy, total = np.zeros(N), np.zeros(N), np.zeros(N), np.zeros(N)
    for k in range(K):
        if skip[k]:
            continue
        u = kind[k]
        acc = comm if is_comm[k] else rest
        if u == 3:  # the interconnect: no compute or memory time (sums' top is 0.0)
            for j in range(N):
                fx, cm = comm_roof(ab[k, j], launches[k, j], lat[j], link[j])
                t = 0.0 + fx + cm
                total[j] += t
                acc[j] += t
            continue
        peak = unit_peak(u, pm, pa, pv)
        att = any_ae and fused[k]
        for j in range(N):
            c, m, fx = unit_roof(flops[k, j], wb[k, j], ab[k, j], kb[k, j], launches[k, j], rows[k, j], dq[k, j], att,
                                 hr[j], ec[j], ae[j], em[j], bw[j], ko[j], peak[j], pv[j], any_dq)
            top = maximum(c, m)
            t = top + fx + 0.0
            busy[j] += top
            total[j] += t
            acc[j] += t
    return rest, comm, busy, total


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


@overload(elementwise.isfinite)
def _isfinite(x):
    return lambda x: np.isfinite(x)


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


@inline
def step_of(mean_j, i, q, overlap, d_rest, d_comm, d_busy, d_total, busy, total):
    """One configuration's decode step and busy fraction: phases.overlap of the other operators' sums at distinct
    row i plus its attention's mean, and their collectives; timeline.share with the first step's attention at row q
    included."""
    return (overlapped(d_rest[i] + mean_j, d_comm[i], overlap[q]),
            share(d_busy[i] + busy[q], d_total[i] + total[q]))


@jit
def decode_step(attention, at, q_of, overlap, d_rest, d_comm, d_busy, d_total, d_of):
    """SharedPhaseOps.times' decode per configuration j from its attention (decode_pass'): the step
    (phases.overlap of the other operators' sums at distinct row d_of[at[j]] plus the attention's mean, and their
    collectives) and its busy fraction (timeline.share, the first step's attention included); its rows q are
    q_of[at[j]]."""
    mean, at_q = attention
    busy, total = at_q[0], at_q[1]
    N = at.shape[0]
    out = rows_of(2, N)
    step, u_dec = out[0], out[1]
    for j in range(N):
        a = at[j]
        step[j], u_dec[j] = step_of(mean[j], d_of[a], q_of[a], overlap, d_rest, d_comm, d_busy, d_total, busy, total)
    return step, u_dec


step_shapes = jit(timeline.steps)


@jit
def steps(B, pp, pp_step, context, prompt, gen):
    """timeline.steps per configuration j (pp[j * pp_step]: one number or one per configuration), as the rows (Bc,
    Bd, c0, c1) of one (4, configurations) array."""
    N = B.shape[0]
    out = rows_of(4, N)
    for j in range(N):
        out[0, j], out[1, j], out[2, j], out[3, j] = step_shapes(B[j], pp[j * pp_step], context[j], prompt[j], gen[j])
    return out


prefill_seconds = jit(timeline.prefill_seconds)
line = jit(timeline.timeline)
prefill_rate = jit(timeline.prefill_rate)
decode_rate = jit(timeline.decode_rate)
throughput = jit(timeline.throughput)
energy_per_token = jit(timeline.energy_per_token)
usd_per_million_tokens = jit(timeline.usd_per_million_tokens)
usd_per_second = jit(timeline.usd_per_second)
usd_per_million_at = jit(timeline.usd_per_million_at)


@overload(timeline.usd_per_second, inline="always")  # timeline.usd_per_million_tokens calls these two
def _usd_per_second(tp, pp, price_per_hour):
    return lambda tp, pp, price_per_hour: usd_per_second(tp, pp, price_per_hour)


@overload(timeline.usd_per_million_at, inline="always")
def _usd_per_million_at(usd_s, per_token_s):
    return lambda usd_s, per_token_s: usd_per_million_at(usd_s, per_token_s)


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


@jit
def attention_rows(c0, m0, f0, x0, rows, absent, kind, fused, hr, ec, ae, em, bw, pm, pv, pa, any_ae):
    """decode_pass' work at the distinct rows q: (the first step's busy and total time of the attention operators at
    each row q, as the rows of a (2, rows q) array; each present operator k's unit_rates there, rates[k, :, q])."""
    K, Q = c0.shape
    at_q = rows_of(2, Q)
    at_q[:] = 0.0
    busy, total = at_q[0], at_q[1]
    rates = np.empty((K, 3, Q))
    for k in range(K):
        u = kind[k]
        peak = unit_peak(u, pm, pa, pv)
        att = any_ae and fused[k]
        for q in range(Q):
            top = maximum(c0[k, q], m0[k, q])
            busy[q] += top
            total[q] += top + f0[k, q] + x0[k, q]
            if not absent[k]:
                rates[k, 0, q], rates[k, 1, q], rates[k, 2, q] = unit_rates(rows[k, q], hr[q], ec[q], ae[q], em[q],
                                                                            bw[q], peak[q], att)
    return at_q, rates


@jit
def decode_pass(c0, m0, f0, x0, at, q_of, c1, B, n, enc, span, heads, per_pair, kv_per_pair, q_tile, layers, act, rows,
                chunked, absent, kind, fused, hr, ec, ae, em, bw, ko, pm, pv, pa, any_ae, keep, metrics):
    """The decode's attention: (its mean total time per configuration j; the first step's busy and total time of
    those operators at each distinct row q, as the rows of a (2, rows q) array). Its attention operators lowered at
    the last step at j's context c1[j], from the pair coefficients, batch B, new tokens n and encoder flag of
    distinct row q = q_of[at[j]], where j's model, format, device and layout are (their activations, launches and
    rows are the first step's, row q of `act`, `layers`, `rows`), timed on row q's columns (a present operator's
    unit_rates once per row q: attention_rows) and averaged with the first step's (column q of the *0 fields),
    added over the operators in order. Operator k is chunked local attention where chunked[k]. With a mask `keep`
    (empty: every configuration), the mean only where kept, 0.0 elsewhere. `metrics` (None, or fast.decode_metrics'
    columns: the rest of the decode step's, the prefill's and the timeline's): the pass goes on to them (_metrics)."""
    K, N = span.shape[0], at.shape[0]
    masked = keep.shape[0] > 0
    at_q, rates = attention_rows(c0, m0, f0, x0, rows, absent, kind, fused, hr, ec, ae, em, bw, pm, pv, pa, any_ae)
    busy, total = at_q[0], at_q[1]
    means = np.zeros(N)
    for k in range(K):
        u = kind[k]
        peak = unit_peak(u, pm, pa, pv)
        att = any_ae and fused[k]
        for j in range(N):
            if masked and not keep[j]:
                continue
            q, c = q_of[at[j]], c1[j]
            if absent[k]:  # its rows hold the context's NaN: timed row by row
                zero = no_work(B[q] * n[q], c)
                c1_, m1_, f1_ = unit_roof(0.0, 0.0, act[k, q], 0.0, layers[k, q] + zero, rows[k, q] + zero, 0.0, att,
                                          hr[q], ec[q], ae[q], em[q], bw[q], ko[q], peak[q], pv[q], False)
            else:
                flops, kv = variant_work(B[q], n[q], c, span[k, q], chunked[k], True, enc[q], heads[k, q],
                                         per_pair[k, q], kv_per_pair[k, q], q_tile[q], layers[k, q])
                c1_, m1_, f1_ = unit_times(flops, 0.0, act[k, q], kv, layers[k, q], 0.0, rates[k, 0, q],
                                           rates[k, 1, q], rates[k, 2, q], att, pv[q], ec[q], ko[q], False)
            means[j] += mean_total(c0[k, q], m0[k, q], f0[k, q], x0[k, q], c1_, m1_, f1_, 0.0)
    if metrics is not None:
        _metrics(means, busy, total, at, q_of, keep, metrics)
    return means, at_q


@jit
def _metrics(means, busy, total, at, q_of, keep, metrics):
    """decode_pass' second loop: from the attention's mean per configuration j (`means`; busy and total: its first
    step's at the rows q), decode_step, finish_metrics and a sweep's masking, fast.WRITTEN's metrics written into the
    arrays of metrics' `into` (in that order) where keep[j], NaN elsewhere (np.where(keep, x, np.nan)). What a row
    a = at[j] fixes (the prefill's seconds and rate, the dollars per second) is computed once per row a."""
    (overlap, d_rest, d_comm, d_busy, d_total, d_of, p_of, pre_total, u_pre, prompt, Bc, tp, pp, step, encoder, idle,
     tdp, price, replicas, gen, into) = metrics
    ttft, tpot_s, pre_rate, dec_rate, thr, e2e_s, energy, usd = into
    A = q_of.shape[0]
    by_a = rows_of(3, A)  # the prefill's seconds and rate, and dollars per second, at each row a
    for a in range(A):
        q, p = q_of[a], p_of[a]
        pf = prefill_seconds(pre_total[p], prompt[p], step[q])
        by_a[0, a], by_a[1, a] = pf, prefill_rate(Bc[p], prompt[p], pf)
        by_a[2, a] = usd_per_second(tp[p], pp[p], price[q])
    for j in range(at.shape[0]):
        if not keep[j]:
            ttft[j] = tpot_s[j] = pre_rate[j] = dec_rate[j] = thr[j] = e2e_s[j] = energy[j] = usd[j] = np.nan
            continue
        a = at[j]
        q, p = q_of[a], p_of[a]
        dec, u_dec = step_of(means[j], d_of[a], q, overlap, d_rest, d_comm, d_busy, d_total, busy, total)
        pf = by_a[0, a]
        tpot, e2e, tokens, power, per_token = line(pf, dec + step[q], u_pre[p], u_dec, prompt[p], gen[j], Bc[p],
                                                   encoder[q], idle[q], tdp[q])
        ttft[j], tpot_s[j], e2e_s[j] = pf, tpot, e2e
        pre_rate[j] = by_a[1, a]
        dec_rate[j] = decode_rate(tpot)
        thr[j] = throughput(replicas, tokens, e2e)
        energy[j] = energy_per_token(tp[p], pp[p], power, per_token)
        usd[j] = usd_per_million_at(by_a[2, a], per_token)
