"""Time of each operator on a device: a roofline with efficiencies and fixed overheads.

  t_compute = FLOPs / (peak_unit · e_c · M/(M + M_half)) + dequant ops / (peak_fp32 · e_c)
  t_memory  = bytes / (bandwidth · e_m)
  t_op      = max(t_compute, t_memory) + kernels · kernel_overhead
  t_comm    = collectives · latency + wire bytes / (interconnect/2 · e_comm)
Fused attention operators reach e_attn times e_c and e_m (the engine's attention kernels, not its GEMMs).
(Williams et al., 'Roofline', CACM 2009; efficiencies and overheads from calibration.)
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from costmodel.engine.attention import FUSED_ATTENTION
from costmodel.engine.elementwise import as_float, maximum, minimum, where
from costmodel.engine.operators import ATTENTION, COMM, MATMUL, OP_NAMES, VECTOR, Ops
from costmodel.engine.truth import all_above_zero, all_positive, any_nonzero

_FUSED = np.isin(np.asarray(OP_NAMES), FUSED_ATTENTION)  # operators that take the attention efficiency


@dataclass(frozen=True)
class OpTimes:
    """Per-operator compute, memory and fixed times (axis 0: operators)."""

    compute: np.ndarray
    memory: np.ndarray
    fixed: np.ndarray  # launch overheads and collective latencies
    comm: np.ndarray  # interconnect transfer time (comm operators only)

    @property
    def total(self) -> np.ndarray:
        return maximum(self.compute, self.memory) + self.fixed + self.comm

    def at(self, index) -> OpTimes:
        """Every field at `index` (operators on axis 0, configurations after)."""
        return OpTimes(*(x[index] for x in (self.compute, self.memory, self.fixed, self.comm)))


def attention_peak(hw: dict, f: dict):
    """Peak FLOP/s of the attention kernels: the vector unit's where the format computes attention in
    FP32, else the device's attention peak."""
    return where(f["attn_fp32"] > 0, hw["peak_vector"], hw["peak_attention"])


def comm_link(hw: dict):
    """Bytes/s a collective moves over the scale-up link: one direction of its bidirectional figure,
    at the calibrated efficiency."""
    return hw["interconnect"] / 2 * hw["comm_efficiency"]


def _peaks_by_unit(hw: dict, f: dict, attention) -> dict:
    return {MATMUL: f["peak_matmul"], ATTENTION: attention, VECTOR: hw["peak_vector"], COMM: hw["peak_vector"]}


def unit_peaks(ops: Ops, hw: dict, f: dict) -> np.ndarray:
    """Peak FLOP/s of the unit that runs each operator, shaped like ops.flops."""
    if ops.flops.ndim == 1 and not any(np.ndim(x) for x in (f["peak_matmul"], hw["peak_attention"], hw["peak_vector"],
                                                            f["attn_fp32"])):
        # one configuration: the four peaks as numbers, one gather (numpy's calls cost more than the work)
        per_unit = _peaks_by_unit(hw, f, attention_peak(hw, f))
        return np.array([float(per_unit[u]) for u in range(len(per_unit))])[ops.units]
    units = ops.units
    if len(units) and (units == units[0]).all():  # one unit (the decode's attention): its peak, broadcast
        unit = int(units[0])
        per_unit = _peaks_by_unit(hw, f, attention_peak(hw, f) if unit == ATTENTION else None)
        return np.broadcast_to(per_unit[unit], ops.flops.shape)
    per_unit = _peaks_by_unit(hw, f, attention_peak(hw, f))
    by_unit = np.stack(np.broadcast_arrays(*(per_unit[u] for u in range(len(per_unit)))))
    peaks = by_unit[ops.units]  # (operator, *the peaks' shape)
    pad = (1,) * (ops.flops.ndim - peaks.ndim)  # the peaks' shape aligned to the trailing configuration axes
    return np.broadcast_to(peaks.reshape(peaks.shape[:1] + pad + peaks.shape[1:]), ops.flops.shape)


def fused_mask(ops: Ops) -> np.ndarray:
    """The operators of `ops` that take the attention efficiency (the engine's fused attention kernels)."""
    return _FUSED if len(ops.names) == len(OP_NAMES) else _fused_of(ops.names)


@functools.lru_cache(maxsize=64)
def _fused_of(names: tuple) -> np.ndarray:
    """fused_mask of an operator list (shared between calls, like _FUSED, and writable like it: the [fast]
    kernels compile one signature per pattern of read-only arguments)."""
    return np.isin(np.asarray(names), FUSED_ATTENTION)


def rates_finite(hw: dict, f: dict) -> bool:
    """Whether an operator whose FLOPs, bytes, launches and dequantization work are zeros takes +0.0 or -0.0 time at
    every configuration: op_times divides its zeros to themselves (zeros_divide_to_zeros) and its launch overhead and
    latency are finite. A sum over operators adding one after another then leaves such an operator out unchanged
    (operators.lower's busy_only)."""
    with np.errstate(over="ignore"):  # a column's bytes factor may overflow: then refused
        zeros = zeros_divide_to_zeros(hw, f)
    return zeros and all(bool(np.all(np.isfinite(hw[k]))) for k in ("kernel_overhead_s", "comm_latency_s"))


def zeros_divide_to_zeros(hw: dict, f: dict) -> bool:
    """Whether op_times divides an operator's zeros of work (±0.0 FLOPs, bytes, dequantization) by finite numbers above
    zero (or by inf) and multiplies them by finite ones for any rows from 0 to inf (excluded), at every configuration
    (numbers or columns): the half rows, efficiencies (compute, attention, memory), bandwidth and the units' peaks
    finite and above zero, the products it divides by (1e-12 of a peak, the bandwidth and the vector peak at their
    efficiencies, the memory and attention efficiencies) not rounded to zero, and the attention's bytes factor (the
    memory efficiency over that last product, at most 1) finite. The zeros are then the times, their signs kept
    (scalar_times.op_times times idle operators so; rates_finite)."""
    hr, ec, em, bw, pv = (hw[k] for k in ("compute_half_rows", "compute_efficiency", "memory_efficiency", "bandwidth",
                                         "peak_vector"))
    ae = hw.get("attention_efficiency", 1.0)
    peaks = (f["peak_matmul"], attention_peak(hw, f), pv)
    if not all_positive(hr, ec, ae, em, bw, *peaks):
        return False
    x = em * ae
    return all_above_zero(bw * em, pv * ec, x, *[1e-12 * p for p in peaks]) and all_positive(em / minimum(x, 1.0))


def op_times(ops: Ops, hw: dict, f: dict) -> OpTimes:
    """Roofline time of every operator; comm operators use the interconnect instead."""
    eff = ops.rows / (ops.rows + hw["compute_half_rows"])
    eff *= hw["compute_efficiency"]
    ae = as_float(hw.get("attention_efficiency", 1.0))
    attn = None  # the attention kernels' own fraction, capped at the roof (nothing to do at 1)
    if any_nonzero(ae != 1.0):
        attn = fused_mask(ops)
        eff[attn] = minimum(eff[attn] * ae, 1.0)
    np.maximum(eff, 1e-12, out=eff)
    eff *= unit_peaks(ops, hw, f)
    compute = np.divide(ops.flops, eff, out=eff)
    if any_nonzero(ops.dequant_flops):
        compute += ops.dequant_flops / (hw["peak_vector"] * hw["compute_efficiency"])
    memory = ops.bytes
    if attn is not None:
        memory[attn] *= hw["memory_efficiency"] / minimum(hw["memory_efficiency"] * ae, 1.0)
    memory /= hw["bandwidth"] * hw["memory_efficiency"]
    fixed = ops.launches * hw["kernel_overhead_s"]
    comm = np.zeros(compute.shape)
    on = ops.units == COMM
    if on.any():
        link = comm_link(hw)
        wire = ops.act_bytes[on]
        with np.errstate(divide="ignore", invalid="ignore"):
            comm[on] = where(wire > 0, wire / link, 0.0)
        fixed[on] = ops.launches[on] * hw["comm_latency_s"]
        compute[on] = 0.0
        memory[on] = 0.0
    return OpTimes(compute, memory, fixed, comm)


def mean_of_max(a0, b0, a1, b1):
    """Mean over s in [0, 1] of max(a(s), b(s)) for a, b linear from (a0, b0) to (a1, b1).

    Exact closed form: mean(b) + integral of max(a - b, 0), where d = a - b is linear.
    """
    d0, d1 = np.broadcast_arrays(np.subtract(a0, b0), np.subtract(a1, b1))
    both_pos = (d0 >= 0) & (d1 >= 0)
    extra = np.where(both_pos, (d0 + d1) / 2, 0.0)  # numpy's: an array, the crossing rows are written into it
    crossing = ~(both_pos | ((d0 <= 0) & (d1 <= 0)))  # d changes sign (or is NaN): the rare case
    if crossing.any():
        x0, x1 = d0[crossing], d1[crossing]
        with np.errstate(divide="ignore", invalid="ignore"):
            extra[crossing] = (maximum(x0, 0) ** 2 + maximum(x1, 0) ** 2) / (2 * np.abs(x0 - x1))
    return (b0 + b1) / 2 + extra


def mean_times(t0: OpTimes, t1: OpTimes) -> np.ndarray:
    """Per-operator time averaged over a context that grows linearly from t0's to t1's."""
    return (mean_of_max(t0.compute, t0.memory, t1.compute, t1.memory)
            + (t0.fixed + t1.fixed) / 2 + (t0.comm + t1.comm) / 2)


def bound_of(t: OpTimes) -> np.ndarray:
    """0 compute-bound, 1 memory-bound, 2 overhead/latency-bound, 3 communication."""
    core = maximum(t.compute, t.memory)
    kind = where(t.compute >= t.memory, 0, 1)
    kind = where(t.fixed > core, 2, kind)
    return where(t.comm > maximum(core, t.fixed), 3, kind)


BOUND_NAMES = ("compute", "memory", "overhead", "comm")
