"""`costmodel train`: time, MFU, memory, GPU-hours, dollars and energy of a training run.

    steps = ceil(tokens / (global batch · sequence length)),  wall = steps · step time (step.py)
    GPU-hours = devices · wall / 3600,  $ = GPU-hours · price per device-hour (hardware spec)
    energy = devices · TDP · (idle + (1 − idle) · compute / step) · wall   (as inference's power model)
    MFU = model FLOPs/s per device / dense BF16 peak (PaLM's convention, which published figures use);
    mfu_unit divides by the peak of the unit the GEMMs run on (FP8/FP4); HFU counts executed FLOPs
    (causal attention, recomputation) against that unit's peak.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from costmodel.analyses.training.flops import RECOMPUTE
from costmodel.errors import WorkloadError

GIB = 2.0 ** 30
DEFAULT_BATCH_TOKENS = 4 * 2 ** 20  # Llama 3 (arXiv 2407.21783, §3.4.1): 405B pre-training starts at 4M tokens per step


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    cp: int = 1
    ep: int = 1
    zero: int = 1
    recompute: str = "selective"
    micro_batch: int = 1
    vpp: int = 1  # virtual pipeline stages per device (interleaved 1F1B)

    def label(self) -> str:
        return (f"tp{self.tp} pp{self.pp}" + (f" cp{self.cp}" if self.cp > 1 else "") + (f" ep{self.ep}" if self.ep > 1 else "")
                + f" zero{self.zero} {self.recompute}")


def _as_int(name: str, value, low: int = 1) -> int:
    try:
        v = int(value)
    except (TypeError, ValueError):
        raise WorkloadError(f"--{name} {value!r}: expected a whole number >= {low}") from None
    if v != value and not (isinstance(value, str) and str(v) == value.strip()) or v < low:
        raise WorkloadError(f"--{name} {value!r}: expected a whole number >= {low}")
    return v


def resolve(model: str, hardware: str):
    from costmodel.analyses.training.shape import shape_of_model
    from costmodel.spec.hardware import resolve_hardware
    from costmodel.spec.model_catalog import resolve_model

    m, _ = resolve_model(model)
    if m.is_encoder or m.is_vision:
        raise WorkloadError(f"{m.id} is an encoder: costmodel train models decoder language-model pre-training")
    return m, shape_of_model(m), resolve_hardware(hardware)[0]


def check_devices(hw, devices: int) -> None:
    if devices > 1 and not (hw.interconnect_bandwidth or hw.scale_out_bandwidth):
        raise WorkloadError(f"--devices {devices}: {hw.id} states no device interconnect or network "
                            f"(interconnect / scale_out in its spec); costmodel train needs one to run on more than one")


def check_layout(shape, devices: int, lay: Layout, seq: int, global_batch: int) -> int:
    """The data-parallel degree of a legal layout; a WorkloadError naming the option otherwise."""
    if shape.heads and shape.heads % lay.tp:
        raise WorkloadError(f"--tp {lay.tp}: must divide the {shape.heads} attention heads of {shape.name}")
    group = lay.tp * lay.pp * lay.cp
    if devices % group:
        near = max(1, devices // group) * group
        raise WorkloadError(f"--devices {devices}: not a multiple of tp x pp x cp = {group}; use --devices {near} "
                            f"or {near + group}")
    dp = devices // group
    if lay.pp > shape.layers:
        raise WorkloadError(f"--pp {lay.pp}: more stages than the {shape.layers} layers of {shape.name}")
    # the embedding and the loss may take a virtual stage each (Megatron-LM --account-for-embedding-in-pipeline-split,
    # --account-for-loss-in-pipeline-split)
    if lay.vpp > 1 and (lay.pp == 1 or lay.pp * lay.vpp > shape.layers + 2):
        raise WorkloadError(f"--vpp {lay.vpp}: interleaving needs --pp > 1 and pp x vpp = {lay.pp * lay.vpp} virtual "
                            f"stages of at least one layer ({shape.layers} layers, + embedding and loss)")
    if lay.ep > 1 and not shape.is_moe:
        raise WorkloadError(f"--ep {lay.ep}: {shape.name} is dense (no experts to shard); use --ep 1")
    if lay.ep > 1 and shape.experts % lay.ep:
        raise WorkloadError(f"--ep {lay.ep}: must divide the {shape.experts} experts of {shape.name}")
    if lay.ep > 1 and (dp * lay.cp * lay.tp) % lay.ep:
        raise WorkloadError(f"--ep {lay.ep}: must divide dp x cp x tp = {dp * lay.cp * lay.tp} (expert parallelism "
                            f"is carved out of the data-parallel, context- and tensor-parallel ranks, as in Megatron-LM)")
    if seq % lay.cp:
        raise WorkloadError(f"--cp {lay.cp}: must divide --seq-len {seq}")
    if lay.recompute not in RECOMPUTE:
        raise WorkloadError(f"--recompute {lay.recompute!r}: expected one of {', '.join(RECOMPUTE)}")
    if lay.zero not in (0, 1, 2, 3):
        raise WorkloadError(f"--zero {lay.zero}: expected 0, 1, 2 or 3")
    per = dp * lay.micro_batch
    if global_batch % per:
        lo = max(per, global_batch // per * per)
        raise WorkloadError(f"--global-batch {global_batch}: must be a multiple of dp x micro-batch = {per} "
                            f"(dp = {dp}); use {lo} or {lo + per}")
    return dp


def evaluate(shape, hw, eff, unit, seq, global_batch, devices, tp, pp, cp, ep, zero, recompute_full,
             micro_batch, mlp_speedup=1.0, vpp=1) -> dict:
    """Phases, memory and rates of layouts (arrays broadcast); `unit` is one matrix unit or (forward, backward)."""
    from costmodel.analyses.training.memory import activation_bytes, expert_dp, param_split, state_bytes
    from costmodel.analyses.training.precision import as_pair

    r = rates(shape, hw, eff, unit, seq, global_batch, devices, tp, pp, cp, ep, zero, recompute_full, micro_batch,
              mlp_speedup, vpp)
    tp, pp, cp, ep, zero = (np.asarray(x) for x in (tp, pp, cp, ep, zero))
    dp = _data_parallel(devices, tp, pp, cp)
    p_dense, p_expert = param_split(shape, tp, pp, ep)
    w, g, o = (a + e for a, e in zip(state_bytes(p_dense, zero, dp * cp), state_bytes(p_expert, zero, expert_dp(tp, cp, dp, ep))))
    acts = activation_bytes(shape, seq, micro_batch, tp, pp, cp, r["microbatches"], recompute_full)
    total = w + g + o + acts
    tok_dev = r["tokens_per_s_per_device"]
    bf16 = hw.peaks.get("bf16") or hw.peaks.get("fp16")
    unit_f, unit_b = as_pair(unit)
    # the peak the GEMMs see: forward a third of the FLOPs, backward two thirds
    unit_peak = 1.0 / (1.0 / 3.0 / hw.peaks[unit_f] + 2.0 / 3.0 / hw.peaks[unit_b])
    return {**r, "weights_bytes": w, "grads_bytes": g, "optimizer_bytes": o, "activations_bytes": acts,
            "memory_bytes": total, "fits": total <= hw.memory_bytes,
            "mfu": tok_dev * r["model_flops_per_token"] / bf16,
            "mfu_unit": tok_dev * r["model_flops_per_token"] / unit_peak,
            "hfu": tok_dev * r["executed_flops_per_token"] / unit_peak}


def rates(shape, hw, eff, unit, seq, global_batch, devices, tp, pp, cp, ep, zero, recompute_full, micro_batch,
          mlp_speedup=1.0, vpp=1) -> dict:
    """evaluate's phases and rates without its memory (what calibrate-train fits on): tokens/s = tokens per step /
    step time, per device / devices, and the model's TFLOP/s per device = that · model FLOPs per token / 1e12."""
    from costmodel.analyses.training.step import step_phases

    tp, pp, cp = (np.asarray(x) for x in (tp, pp, cp))
    dp = _data_parallel(devices, tp, pp, cp)
    ph = step_phases(shape, hw, eff, unit, seq, global_batch, micro_batch, tp, pp, cp, np.asarray(ep), dp,
                     np.asarray(zero), recompute_full, mlp_speedup, vpp)
    tok_dev = ph["tokens_per_step"] / ph["step_s"] / ph["devices"]
    return {**ph, "tokens_per_s": ph["tokens_per_step"] / ph["step_s"], "tokens_per_s_per_device": tok_dev,
            "model_tflops_per_device": tok_dev * ph["model_flops_per_token"] / 1e12}


def _data_parallel(devices, tp, pp, cp):
    """The data-parallel degree: devices // (tp · pp · cp) (arrays)."""
    return np.asarray(devices) // (tp * pp * cp)


def _binding(r: dict) -> str:
    phases = {"forward": r["forward_s"], "backward": r["backward_s"], "recomputation": r["recompute_s"],
              "pipeline bubble": r["bubble_s"], "TP collectives": r["tp_comm_s"],
              "CP exchange": r["cp_comm_s"], "EP all-to-all": r["ep_comm_s"], "PP send/receive": r["pp_comm_s"],
              "DP gradients (exposed)": r["dp_exposed_s"], "optimizer": r["optimizer_s"]}
    return max(phases, key=lambda k: float(phases[k]))


def train(model: str, hw: str, devices: int, tokens: float, fmt: str = "bf16", seq_len: int = 4096,
          global_batch: int | None = None, tp: int = 1, pp: int = 1, cp: int = 1, ep: int = 1, zero: int = 1,
          recompute: str = "selective", micro_batch: int = 1, sparsity: str | None = None, vpp: int = 1) -> dict:
    """One training run: step time by phase, rates, MFU/HFU, memory per device, totals and an interval.

        >>> r = costmodel.train("llama-3.1-70b", "h100", devices=1024, tokens=15e12, fmt="fp8", tp=8, pp=4)
        >>> r["gpu_hours"], r["mfu"], r["fits"]
    """
    from costmodel.analyses.training.efficiency import train_efficiency
    from costmodel.analyses.training.intervals import interval
    from costmodel.analyses.training.precision import as_pair, units_for
    from costmodel.analyses.training.sparsity import mlp_speedup

    m, shape, h = resolve(model, hw)
    devices = _as_int("devices", devices)
    seq_len = _as_int("seq-len", seq_len)
    lay = Layout(_as_int("tp", tp), _as_int("pp", pp), _as_int("cp", cp), _as_int("ep", ep), _as_int("zero", zero, 0),
                 str(recompute).strip().lower(), _as_int("micro-batch", micro_batch), _as_int("vpp", vpp))
    try:
        tokens = float(tokens)
    except (TypeError, ValueError):
        raise WorkloadError(f"--tokens {tokens!r}: expected a number of training tokens (e.g. 15e12)") from None
    if not tokens > 0 or not math.isfinite(tokens):
        raise WorkloadError(f"--tokens {tokens:g}: expected a positive number of training tokens")
    unit = units_for(fmt, h)
    check_devices(h, devices)
    speedup, sparse_note = mlp_speedup(sparsity, h)
    group = lay.tp * lay.pp * lay.cp
    dp_guess = max(devices // group, 1)
    notes = [sparse_note] if sparse_note else []
    if global_batch is None:
        per = dp_guess * lay.micro_batch
        global_batch = max(per, round(DEFAULT_BATCH_TOKENS / seq_len / per) * per)
        notes.append(f"--global-batch {global_batch} sequences ({global_batch * seq_len / 2 ** 20:.1f}M tokens per step; "
                     f"the default: about 4M tokens, Llama 3's starting batch, rounded to a multiple of dp x micro-batch "
                     f"= {per})")
    global_batch = _as_int("global-batch", global_batch)
    dp = check_layout(shape, devices, lay, seq_len, global_batch)
    eff = train_efficiency(h.id, h.family)
    r = evaluate(shape, h, eff, unit, seq_len, global_batch, devices, lay.tp, lay.pp, lay.cp, lay.ep, lay.zero,
                 lay.recompute == "full", lay.micro_batch, speedup, lay.vpp)
    r = {k: (float(v) if np.ndim(v) == 0 and not isinstance(v, (bool, np.bool_)) else bool(v)) for k, v in r.items()}
    steps = math.ceil(tokens / r["tokens_per_step"])
    wall = steps * r["step_s"]
    idle = eff.idle_power_fraction
    power = (h.tdp_w or float("nan")) * (idle + (1 - idle) * r["compute_s"] / r["step_s"])
    gpu_hours = devices * wall / 3600.0
    lo, hi = interval(eff.level, r["tokens_per_s_per_device"])
    if eff.level != "device":
        notes.append(f"{h.id}: training {'calibrated on its family only' if eff.level == 'family' else 'uncalibrated (no training measurement of its family)'}: a wider interval")
    units = "/".join(dict.fromkeys(as_pair(unit)))  # the forward and backward units, once where they agree
    if r["hfu"] > 1:  # executed FLOPs above the unit's peak: no convention explains that, the efficiencies do
        notes.append(f"HFU {100 * r['hfu']:.1f}%: the executed FLOPs exceed the {units} units' peak, so the training "
                     f"efficiencies in use (compute_efficiency x the format's scale) exceed 1; check the calibration "
                     f"file that set them ({eff.sources.get('compute_efficiency', '?')})")
    elif r["mfu_unit"] <= 1 < r["mfu"]:  # within the FP8/FP4 units' peak, above the BF16 peak MFU is quoted against
        notes.append(f"MFU {100 * r['mfu']:.1f}% exceeds 100% of the BF16 peak it is quoted against: the GEMMs run on "
                     f"the {units} units, whose peak is higher ({100 * r['mfu_unit']:.1f}% of it)")
    elif r["mfu"] > 1:  # 12·L·s·w counts every (query, key) pair; a causal kernel computes half of them
        notes.append(f"MFU {100 * r['mfu']:.1f}% exceeds 100%: the published convention (6N + 12·L·s·w per token) counts "
                     f"attention over the whole sequence, twice what a causal kernel executes (HFU "
                     f"{100 * r['hfu']:.1f}%); at --seq-len {seq_len:,} attention dominates")
    limit = m.max_position_embeddings
    if limit and seq_len > limit:
        notes.append(f"--seq-len {seq_len:,} exceeds {m.id}'s {limit:,} positions (max_position_embeddings): "
                     f"it was not trained for that length")
    if not r["fits"]:
        notes.append(f"does not fit: {r['memory_bytes'] / GIB:.1f} GiB per device of {h.memory_bytes / GIB:.0f} GiB; "
                     f"try --zero 3, --recompute full, a larger --tp/--pp or more devices")
    return {
        "model": m.id, "hardware": h.id, "precision": fmt,
        "gemm_unit": unit[0] if unit[0] == unit[1] else f"{unit[0]} forward, {unit[1]} backward", "devices": devices,
        "tokens": tokens, "seq_len": seq_len, "global_batch": global_batch, "micro_batch": lay.micro_batch,
        "layout": {"tp": lay.tp, "pp": lay.pp, "vpp": lay.vpp, "cp": lay.cp, "dp": dp, "ep": lay.ep, "zero": lay.zero,
                   "recompute": lay.recompute, "microbatches_per_step": r["microbatches"]},
        "calibration_level": eff.level,
        "phases_s": {k: r[k] for k in ("compute_s", "forward_s", "backward_s", "recompute_s", "bubble_s", "tp_comm_s",
                                       "cp_comm_s", "ep_comm_s", "pp_comm_s", "dp_comm_s", "dp_exposed_s", "optimizer_s")},
        "binding": _binding(r),
        "step_s": r["step_s"], "steps": steps, "tokens_per_s": r["tokens_per_s"],
        "tokens_per_s_per_device": r["tokens_per_s_per_device"],
        "tokens_per_s_per_device_interval": [lo, hi],
        "model_tflops_per_device": r["model_tflops_per_device"], "mfu": r["mfu"], "mfu_unit": r["mfu_unit"],
        "hfu": r["hfu"],
        "wall_time_s": wall, "wall_time_days": wall / 86400.0,
        "wall_time_days_interval": [wall / 86400.0 * r["tokens_per_s_per_device"] / hi,
                                    wall / 86400.0 * r["tokens_per_s_per_device"] / lo],
        "gpu_hours": gpu_hours, "usd": gpu_hours * (h.price_per_hour or float("nan")),
        "energy_mwh": devices * power * wall / 3.6e9, "average_power_w": power,
        "memory_gib": {"weights": r["weights_bytes"] / GIB, "gradients": r["grads_bytes"] / GIB,
                       "optimizer": r["optimizer_bytes"] / GIB, "activations": r["activations_bytes"] / GIB,
                       "total": r["memory_bytes"] / GIB, "capacity": h.memory_bytes / GIB},
        "fits": r["fits"],
        "efficiency": {"compute_efficiency": eff.compute_efficiency, "width_half": eff.width_half,
                       "scale": eff.scale(unit[1]), "moe_scale": eff.moe_scale},
        "notes": notes,
    }
