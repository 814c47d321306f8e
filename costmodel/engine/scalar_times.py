"""One configuration's phase times on Python floats: roofline.op_times, mean_times and the sums of phases.step_time
and busy_fraction, operator by operator in numpy's order of operations, the same bits, NaN as NaN (tests/engine/
test_scalar_times.py checks them against the numpy path, which stays the reference).

An estimate times some 60 operators of one configuration: numpy spends ~1.5 µs a call on arrays of a few
elements and the timing makes ~150 calls; the same arithmetic on the operators' values as Python floats costs
a fraction of that (benchmarks/bench_engine.py). Its sums over the operators add them in order (array_sum), as
phases.over_ops does for one configuration or many and kernels.py for a sweep's.
"""
from __future__ import annotations

from math import inf

from costmodel.engine.elementwise import divide, maximum
from costmodel.engine.operators import COMM, Ops
from costmodel.engine.roofline import attention_peak, comm_link, fused_mask, zeros_divide_to_zeros


def applies(ops: Ops, hw: dict, f: dict) -> bool:
    """One configuration: every operator field 1-D (or its numbers, NumberOps) and the device and format columns
    numbers."""
    one = ops.columns is not None or ops.flops.ndim == 1
    return one and all(type(v) is float or getattr(v, "ndim", 1) == 0 for v in (
        hw["compute_efficiency"], hw["bandwidth"], hw["kernel_overhead_s"], hw["compute_half_rows"], f["peak_matmul"]))


def op_times(ops: Ops, hw: dict, f: dict, idle: bool | None = None) -> tuple:
    """roofline.op_times of one configuration's operators: (compute, memory, fixed, comm) tuples, and each
    operator's time at its roof, max(compute, memory) (elementwise.maximum), and its total (OpTimes.total). `idle`:
    roofline.zeros_divide_to_zeros(hw, f) where the caller holds it."""
    hr, ec, em, bw, ko = (hw[k] for k in ("compute_half_rows", "compute_efficiency", "memory_efficiency",
                                         "bandwidth", "kernel_overhead_s"))
    ae = hw.get("attention_efficiency", 1.0)
    fused = fused_mask(ops).tolist() if ae != 1.0 else None
    peak = (f["peak_matmul"], attention_peak(hw, f), hw["peak_vector"], hw["peak_vector"])  # by unit (operators.py)
    flops, wb, ab, kb, launches, rows, dq = ops.columns or (x.tolist() for x in (
        ops.flops, ops.weight_bytes, ops.act_bytes, ops.kv_bytes, ops.launches, ops.rows, ops.dequant_flops))
    any_dq = any(dq)  # op_times adds the dequantization term to every operator where any has one
    pv = hw["peak_vector"]
    link = lat = None
    if idle is None:  # whether idle operators are timed as their zeros (below); the caller's where it holds it
        idle = zeros_divide_to_zeros(hw, f)
    out = []  # per operator: (compute, memory, fixed, comm, roof, total)
    for j, u in enumerate(ops.units.tolist()):
        if u == COMM:  # op_times: no compute or memory time, the launches at the link's latency
            if link is None:
                link, lat = comm_link(hw), hw["comm_latency_s"]
            w = ab[j]
            fx, x = launches[j] * lat, divide(w, link) if w > 0 else 0.0
            out.append((0.0, 0.0, fx, x, 0.0, 0.0 + fx + x))
            continue
        if idle and not (flops[j] or wb[j] or ab[j] or kb[j] or dq[j]) and 0.0 <= rows[j] < inf:
            # zero work (±0.0) over finite positive rates: unit_times' quotients are the zeros themselves
            t, b, fx = (flops[j] + dq[j] if any_dq else flops[j]), wb[j] + ab[j] + kb[j], launches[j] * ko
        else:
            t, b, fx = unit_roof(flops[j], wb[j], ab[j], kb[j], launches[j], rows[j], dq[j],
                                 fused is not None and fused[j], hr, ec, ae, em, bw, ko, peak[u], pv, any_dq)
        roof = maximum(t, b)  # a call, not a branch: a recording (engine/traced.py) keeps it without a guard
        out.append((t, b, fx, 0.0, roof, roof + fx + 0.0))
    return tuple(zip(*out))


def unit_roof(flops, wb, ab, kb, launches, r, dq, att, hr, ec, ae, em, bw, ko, peak, pv, any_dq):
    """roofline.op_times of one operator on a compute unit at one configuration: (compute, memory, fixed); peak
    its unit's, `att` where its attention efficiency applies: unit_times at its unit_rates. Plain Python that
    numba compiles as it is (kernels.py)."""
    e, scale, per_byte = unit_rates(r, hr, ec, ae, em, bw, peak, att)
    return unit_times(flops, wb, ab, kb, launches, dq, e, scale, per_byte, att, pv, ec, ko, any_dq)


def unit_rates(r, hr, ec, ae, em, bw, peak, att):
    """What of roofline.op_times reads an operator's rows and its device alone: (the unit's achieved FLOP/s at r
    rows, the bytes' factor under the attention efficiency, the achieved bytes/s). The minima and maxima are
    elementwise's rules written inline (a tie gives the same value)."""
    e = r / (r + hr)
    e = e * ec
    if att:
        e = e * ae
        e = e if (e < 1.0 or e != e) else 1.0
    e = (e if (e > 1e-12 or e != e) else 1e-12) * peak
    scale = 1.0
    if att:
        x = em * ae
        scale = em / (x if (x < 1.0 or x != x) else 1.0)
    return e, scale, bw * em


def unit_times(flops, wb, ab, kb, launches, dq, e, scale, per_byte, att, pv, ec, ko, any_dq):
    """roofline.op_times of one operator from its unit_rates: (compute, memory, fixed)."""
    t = flops / e
    if any_dq:
        t = t + dq / (pv * ec)
    b = wb + ab + kb
    if att:
        b = b * scale
    return t, b / per_byte, launches * ko


def mean_total(c0, m0, f0, x0, c1, m1, f1, x1):
    """roofline.mean_times of one operator: mean_of_max's closed form, then the fixed and comm means. Plain
    Python that numba compiles as it is (kernels.py): the maxima are elementwise.maximum's rule written inline,
    and where d changes sign |d0 − d1| > 0, so the division cannot meet zero (a NaN gives NaN)."""
    d0, d1 = c0 - m0, c1 - m1
    if d0 >= 0 and d1 >= 0:
        extra = (d0 + d1) / 2
    elif d0 <= 0 and d1 <= 0:
        extra = 0.0
    else:  # d changes sign (or is NaN)
        p0 = d0 if (d0 > 0.0 or d0 != d0) else 0.0
        p1 = d1 if (d1 > 0.0 or d1 != d1) else 0.0
        extra = (p0 * p0 + p1 * p1) / (2 * abs(d0 - d1))
    return (m0 + m1) / 2 + extra + (f0 + f1) / 2 + (x0 + x1) / 2


def array_sum(values: list) -> float:
    """phases.over_ops of one configuration's values, bit for bit: from +0.0, each added in order, as numpy sums two
    or more configurations' operators and kernels.py adds them."""
    res = 0.0
    for v in values:
        res += v
    return res


def step_sums(per_op: list, rest: list, comm: list) -> tuple:
    """The sums phases.step_time overlaps: over the operators at positions `rest` and over the collectives'."""
    return array_sum([per_op[j] for j in rest]), array_sum([per_op[j] for j in comm])


def busy_sums(t: tuple) -> tuple:
    """The sums phases.busy_fraction divides, of op_times' tuples: the operators' times at a roof and in all."""
    return array_sum(t[4]), array_sum(t[5])
