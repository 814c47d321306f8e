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
    from costmodel.errors import WorkloadError
    from costmodel.spec.model_catalog import resolve_model

    if not (isinstance(gen, (int, float)) and gen >= 1):
        raise WorkloadError(f"--gen {gen}: a latency-throughput curve needs at least one generated token")
    batches = batches or [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    r = sweep(models=[model], hw=hw, fmt=fmt, batch=batches, prompt=[prompt], gen=[gen], tp=[tp], engine=[engine])
    curves = Curves()
    reasons = r["reason"]
    encoder = resolve_model(model)[0].is_encoder  # no decode step: TPOT and throughput are NaN
    for h in dict.fromkeys(map(str, r["hardware"])):
        for f in dict.fromkeys(map(str, r["format"])):
            pair = (r["hardware"] == h) & (r["format"] == f)
            sel = pair & r["fits"]
            if encoder or not sel.any():
                why = ([f"{model} is an encoder: it generates no tokens, so there is no decode to curve"] if encoder
                       else sorted({str(x) for x in reasons[pair] if x}) or ["no batch fits"])
                curves.dropped.append({"hardware": h, "format": f, "reason": "; ".join(why)})
                continue
            order = np.argsort(r["batch"][sel])
            curves.append({"label": f"{model} {h} {f}", "hardware": h, "format": f,
                           "batch": r["batch"][sel][order].tolist(),
                           "tpot_s": r["tpot_s"][sel][order].tolist(),
                           "throughput_tokens_per_s": r["throughput_tokens_per_s"][sel][order].tolist()})
    return curves


def serve_curve(model: str, hw: list[str], fmt: list[str], concurrency=None, request_rate=None, prompt: int = 512,
                gen: int = 128, prompt_dist: str | None = None, gen_dist: str | None = None, tp: int = 1,
                engine: str = "auto") -> Curves:
    """Latency against throughput as a serving benchmark's concurrency (closed loop) or request rate
    (Poisson) grows, one curve per (device, format), as benchmark dashboards draw it; `.dropped` names
    the pairs that cannot serve and why. Points over capacity are left out (unbounded latency).

        >>> costmodel.serve_curve("llama-3.1-8b", ["h100", "b200"], ["fp8"], concurrency=[1, 8, 64, 256])
    """
    from costmodel.errors import CostModelError
    from costmodel.serving import serve_loads
    from costmodel.sweeps.loads import distinct_names

    if (concurrency is None) == (request_rate is None):
        raise CostModelError("serve-curve needs --concurrency C1,C2,... or --request-rate R1,R2,... (one of them, "
                             "not both)")
    points = list(dict.fromkeys(float(x) for x in (concurrency if concurrency is not None else request_rate)))  # each once
    key = "concurrency" if concurrency is not None else "request_rate"
    out = Curves()
    for h in distinct_names(hw, "hardware"):  # each device and format once ('h100' and 'h100-sxm' are one)
        for f in distinct_names(fmt, "format"):
            try:
                got = serve_loads(model, h, f, prompt=prompt, gen=gen, prompt_dist=prompt_dist, gen_dist=gen_dist,
                                  tp=tp, engine=engine, details=False, **{key: points})
                rows = [(x, d) for x, d in zip(points, got) if d["stable"]]
            except CostModelError as exc:
                out.dropped.append({"hardware": h, "format": f, "reason": str(exc)})
                continue
            if not rows:
                out.dropped.append({"hardware": h, "format": f, "reason": "every point is over capacity"})
                continue
            d0 = rows[0][1]
            curve = {"label": f"{d0['model']} {d0['hardware']} {d0['format']}", "hardware": d0["hardware"],
                     "format": d0["format"], "varied": key, "batch": [x for x, _ in rows]}
            for name in ("throughput_tokens_per_s", "request_throughput_per_s", "ttft_s", "ttft_p50_s", "ttft_p99_s",
                         "tpot_s", "tpot_p99_s", "itl_p99_s", "e2e_latency_s"):
                curve[name] = [d[name] for _, d in rows]
            out.append(curve)
    return out
