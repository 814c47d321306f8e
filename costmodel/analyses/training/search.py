"""`costmodel train --search`: the fastest parallel layouts that fit, evaluated as one array call.

Candidates: tp in 1, 2, 4, 8 (within a scale-up domain; dividing the heads), pp in 1, 2, 4, 8, 16, 32
(at most the layers) with 1, 2 or 4 virtual stages each, cp in 1, 2, 4, 8 for sequences of 16K tokens
or more, ep in powers of two that divide the experts (MoE), ZeRO 1 or 3, selective or full recomputation,
micro-batch 1; the global batch stays the one given (or the ~4M-token default, rounded per layout to a
multiple of its data-parallel degree).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from costmodel.errors import WorkloadError

LONG_SEQUENCE = 16384  # context parallelism is searched from this length on


def candidates(shape, hw, devices: int, seq: int) -> list[tuple]:
    # no stated domain: every peer over the link (as step.py and the inference collectives price it)
    domain = hw.scale_up_domain or (float("inf") if hw.interconnect_bandwidth else 1)
    tps = [t for t in (1, 2, 4, 8) if t <= domain and (not shape.heads or shape.heads % t == 0)]
    pps = [p for p in (1, 2, 4, 8, 16, 32) if p <= shape.layers]
    cps = [c for c in (1, 2, 4, 8) if c == 1 or (seq >= LONG_SEQUENCE and seq % c == 0)]
    eps = [1] + [e for e in (2, 4, 8, 16, 32, 64) if shape.is_moe and shape.experts % e == 0]
    out = []
    for tp, pp, cp, ep, zero, rec, v in itertools.product(tps, pps, cps, eps, (1, 3), ("selective", "full"), (1, 2, 4)):
        group = tp * pp * cp
        if devices % group or (v > 1 and (pp == 1 or pp * v > shape.layers)):
            continue
        dp = devices // group
        if ep > 1 and (dp * cp * tp) % ep:
            continue
        out.append((tp, pp, cp, ep, zero, rec, dp, v))
    return out


def search(model: str, hw: str, devices: int, tokens: float, fmt: str = "bf16", seq_len: int = 4096,
           global_batch: int | None = None, limit: int = 10) -> dict:
    """The fastest layouts that fit in memory, with their step time, MFU, memory and totals.

        >>> r = costmodel.train_search("llama-3.1-70b", "b200", devices=1024, tokens=15e12, fmt="fp8")
        >>> r["layouts"][0]["tp"], r["layouts"][0]["wall_time_days"]
    """
    from costmodel.analyses.training.efficiency import train_efficiency
    from costmodel.analyses.training.precision import units_for
    from costmodel.analyses.training.train import DEFAULT_BATCH_TOKENS, _as_int, check_devices, evaluate, resolve

    m, shape, h = resolve(model, hw)
    devices, seq_len = _as_int("devices", devices), _as_int("seq-len", seq_len)
    unit = units_for(fmt, h)
    check_devices(h, devices)
    cands = candidates(shape, h, devices, seq_len)
    if not cands:
        raise WorkloadError(f"--devices {devices}: no layout of tp, pp and cp divides it")
    tp, pp, cp, ep, zero, rec, dp, vpp = (np.array(c) for c in zip(*cands))
    if global_batch is None:
        gb = np.maximum(dp, np.round(DEFAULT_BATCH_TOKENS / seq_len / dp) * dp)
    else:
        gb = np.full(len(cands), _as_int("global-batch", global_batch))
        ok = gb % dp == 0
        if not ok.any():
            raise WorkloadError(f"--global-batch {global_batch}: a multiple of no layout's data-parallel degree")
        tp, pp, cp, ep, zero, rec, dp, vpp, gb = (x[ok] for x in (tp, pp, cp, ep, zero, rec, dp, vpp, gb))
    eff = train_efficiency(h.id, h.family)
    r = evaluate(shape, h, eff, unit, seq_len, gb, devices, tp, pp, cp, ep, zero, rec == "full", 1, 1.0, vpp)
    fits = np.asarray(r["fits"])
    order = [i for i in np.argsort(-np.asarray(r["tokens_per_s_per_device"])) if fits[i]][:limit]
    rows = []
    for i in order:
        steps = math.ceil(float(tokens) / float(r["tokens_per_step"][i]))
        wall = steps * float(r["step_s"][i])
        rows.append({"tp": int(tp[i]), "pp": int(pp[i]), "vpp": int(vpp[i]), "cp": int(cp[i]), "dp": int(dp[i]), "ep": int(ep[i]),
                     "zero": int(zero[i]), "recompute": str(rec[i]), "global_batch": int(gb[i]),
                     "step_s": float(r["step_s"][i]), "tokens_per_s_per_device": float(r["tokens_per_s_per_device"][i]),
                     "mfu": float(r["mfu"][i]), "memory_gib": float(r["memory_bytes"][i]) / 2 ** 30,
                     "wall_time_days": wall / 86400.0, "gpu_hours": devices * wall / 3600.0})
    return {"model": m.id, "hardware": h.id, "precision": fmt, "devices": devices, "seq_len": seq_len,
            "tokens": float(tokens), "calibration_level": eff.level, "searched": len(cands),
            "fitting": int(fits.sum()), "layouts": rows}
