"""Latency-throughput curves over batch size (a sweep along the batch axis)."""
from __future__ import annotations

import numpy as np

from costmodel.sweeps.sweep import sweep


class Curves(list):
    """The curves (a list of dicts), with `dropped`: the (device, format) pairs that gave no curve and why."""

    dropped: list

    def __init__(self, curves=(), dropped=()):
        super().__init__(curves)
        self.dropped = list(dropped)


def latency_throughput(model: str, hw: list[str], fmt: list[str], prompt: int = 512, gen: int = 128,
                       batches=None, engine: str = "auto", tp: int = 1) -> Curves:
    """One curve per (device, format): TPOT and throughput at each batch that fits; `.dropped` says
    which pairs have no batch that fits (or cannot run) and why.

        >>> costmodel.latency_throughput("llama-3.1-8b", hw=["h100", "b200"], fmt=["fp8"])
    """
    batches = batches or [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    r = sweep(models=[model], hw=hw, fmt=fmt, batch=batches, prompt=[prompt], gen=[gen], tp=[tp], engine=[engine])
    curves = Curves()
    reasons = r["reason"]
    for h in dict.fromkeys(map(str, r["hardware"])):
        for f in dict.fromkeys(map(str, r["format"])):
            pair = (r["hardware"] == h) & (r["format"] == f)
            sel = pair & r["fits"]
            if not sel.any():
                why = sorted({str(x) for x in reasons[pair] if x}) or ["no batch fits"]
                curves.dropped.append({"hardware": h, "format": f, "reason": "; ".join(why)})
                continue
            order = np.argsort(r["batch"][sel])
            curves.append({"label": f"{model} {h} {f}", "hardware": h, "format": f,
                           "batch": r["batch"][sel][order].tolist(),
                           "tpot_s": r["tpot_s"][sel][order].tolist(),
                           "throughput_tokens_per_s": r["throughput_tokens_per_s"][sel][order].tolist()})
    return curves
