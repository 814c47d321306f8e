"""The `costmodel tts` report: the curve F(N), N*, the verifier ceiling, and (with a model and a
device) the dollar and latency cost of each parallel budget and cost-of-pass versus N."""
from __future__ import annotations

import numpy as np

from costmodel.analyses import tts as T


def _mix(text: str | None, p: float) -> list[tuple[float, float]]:
    if not text:
        return [(1.0, p)]
    out = []
    for part in text.split(","):
        try:
            share, acc = (float(x) for x in part.split(":"))
        except ValueError:
            raise T.TTSError(f"--mix {text!r}: expected 'share:accuracy,...' like 0.58:0.87,0.42:0.13") from None
        T._check_p(acc, "mix accuracy", closed=True)
        out.append((share, acc))
    total = sum(s for s, _ in out)
    if abs(total - 1) > 1e-6:
        raise T.TTSError(f"--mix shares add up to {total:g}; expected 1")
    return out


def report(p: float, eps: float = 0.01, fmax: float = 1.0, false_positive: float | None = None,
           penalty: float | None = None, mix: str | None = None, n_max: int = 64, model: str | None = None,
           hw: str | None = None, fmt: str = "bf16", prompt: int = 500, gen: int = 1000,
           engine: str | None = "auto") -> dict:
    """Test-time scaling: accuracy and marginal gain over attempts, saturation point N*, verifier-aware
    optimum and, with a model and device, the cost of each attempt (see analyses/tts.py for the formulas).

    >>> costmodel.test_time_scaling(p=0.3, eps=0.01, false_positive=0.05, model="llama-3.1-8b", hw="h100")
    """
    n_star = T.saturation_point(p, eps, fmax)
    if n_max < 1:
        raise T.TTSError("--n-max must be >= 1")
    ns = np.arange(1, max(n_max, n_star) + 1)
    acc = T.accuracy(ns, p, fmax)
    gain = T.marginal_gain(ns, p, fmax)
    out = {"p": p, "eps": eps, "fmax": fmax, "saturation_n": n_star,
           "accuracy_at_saturation": float(T.accuracy(n_star, p, fmax)),
           "ceiling": T.verifier_ceiling(p, false_positive) if false_positive is not None else None}
    if penalty is not None:
        if false_positive is None:
            raise T.TTSError("--penalty needs --false-positive")
        if penalty < 0:
            raise T.TTSError(f"--penalty {penalty}: expected >= 0")
        k, u = T.optimal_attempts(_mix(mix, p), false_positive, penalty)
        out["optimal_attempts"], out["optimal_utility"] = k, u
    curve = [{"n": int(n), "accuracy": float(a), "marginal_gain": float(g)} for n, a, g in zip(ns, acc, gain)]
    if model:
        if not hw:
            raise T.TTSError("--model needs --hw (and --fmt) to price the budgets")
        from costmodel.estimate import estimate, require_fit

        # N parallel samples of one query: the prompt is prefilled once, then N sequences decode
        from costmodel.engine.evaluate import evaluate
        from costmodel.estimate import columns_for

        one = require_fit(estimate(model, hw, fmt, batch=1, prompt=prompt, gen=gen, engine=engine))
        price = one.hardware.price_per_hour
        # all budgets in one call: N sequences decode after one shared prefill of the prompt
        res = evaluate(*columns_for(one), ns.astype(float), float(prompt), float(gen), 0.0, 1.0, 1.0, 1.0)
        decode = np.asarray(res.metrics["e2e_latency_s"]) - np.asarray(res.metrics["ttft_s"])
        fits = np.asarray(res.metrics["fits"], dtype=bool)
        for row, dec, ok in zip(curve, decode, fits):
            latency = one.metric("ttft_s") + float(dec)
            row["fits"] = bool(ok)
            row["latency_s"] = latency
            row["usd"] = latency * price / 3600 if price else float("nan")
            row["cost_of_pass_usd"] = row["usd"] / row["accuracy"] if row["accuracy"] > 0 else float("inf")
    out["curve"] = curve
    return out
