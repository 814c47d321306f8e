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
        T._check_p(share, "mix share", closed=True)  # a share of the task types: a negative one weighs nothing
        out.append((share, acc))
    total = sum(s for s, _ in out)
    if abs(total - 1) > 1e-6:
        raise T.TTSError(f"--mix shares add up to {total:g}; expected 1")
    return out


def report(p: float, eps: float = 0.01, fmax: float = 1.0, false_positive: float | None = None,
           penalty: float | None = None, mix: str | None = None, n_max: int = 64, model: str | None = None,
           hw: str | None = None, fmt: str = "bf16", prompt: int = 500, gen: int = 1000,
           engine: str | None = "auto", batch="max") -> dict:
    """Test-time scaling: accuracy and marginal gain over attempts, saturation point N*, verifier-aware
    optimum and, with a model and device, the cost of each attempt (see analyses/tts.py for the formulas).

    >>> costmodel.test_time_scaling(p=0.3, eps=0.01, false_positive=0.05, model="llama-3.1-8b", hw="h100")
    """
    if false_positive is not None and fmax != 1.0:
        raise T.TTSError("--fmax applies to the verifier-free curve; with --false-positive the ceiling is "
                         "r/(r + (1 - r) f)")
    n_star = T.saturation_point(p, eps, fmax, false_positive)
    if n_max < 1:
        raise T.TTSError("--n-max must be >= 1")
    if n_max > 100_000:
        raise T.TTSError(f"--n-max {n_max}: expected at most 100000 budgets")
    ns = np.arange(1, max(n_max, n_star) + 1)
    if false_positive is None:
        acc, gain = T.accuracy(ns, p, fmax), T.marginal_gain(ns, p, fmax)
        acc_star = float(T.accuracy(n_star, p, fmax))
        curve_name = "F(N) = F_max (1 - (1 - p)^N): a perfect verifier or oracle picks a correct sample"
    else:  # resample until an imperfect verifier accepts: bounded by its ceiling
        acc = T.resample_accuracy(ns, p, false_positive)
        gain = T.resample_accuracy(ns + 1, p, false_positive) - acc
        acc_star = float(T.resample_accuracy(n_star, p, false_positive))
        curve_name = "r (1 - beta^N)/(1 - beta), beta = (1 - r)(1 - f): resample until the verifier accepts"
    out = {"p": p, "eps": eps, "fmax": fmax, "saturation_n": n_star, "accuracy_at_saturation": acc_star,
           "curve_formula": curve_name,
           "ceiling": T.verifier_ceiling(p, false_positive) if false_positive is not None else None}
    if mix is not None and penalty is None:  # the mix weighs the verifier-aware utility only: it was not read
        raise T.TTSError(f"--mix {mix}: weighs the utility of --penalty; give --false-positive and --penalty too")
    if penalty is not None:
        if false_positive is None:
            raise T.TTSError("--penalty needs --false-positive")
        if penalty < 0:
            raise T.TTSError(f"--penalty {penalty}: expected >= 0")
        k, u = T.optimal_attempts(_mix(mix, p), false_positive, penalty)
        out["optimal_attempts"], out["optimal_utility"] = k, u
    curve = [{"n": int(n), "accuracy": float(a), "marginal_gain": float(g)} for n, a, g in zip(ns, acc, gain)]
    if not model and (hw or fmt != "bf16"):  # they price a model's attempts: without one they were ignored
        raise T.TTSError(f"--hw/--fmt ({hw or fmt}): price the budgets of --model; give --model too")
    if model:
        if not hw:
            raise T.TTSError("--model needs --hw (and --fmt) to price the budgets")
        from costmodel.analyses.cost_of_pass import PRICING_BASIS, attempt_basis, parse_candidate
        from costmodel.spec.model_catalog import resolve_model

        if resolve_model(model)[0].is_encoder or gen < 1:  # an attempt is a sample of generated tokens
            raise T.TTSError(f"--model {model} with --gen {gen}: an attempt samples generated tokens; give a decoder "
                             f"and --gen of 1 or more")

        # the same pricing as cost-of-pass: one shared prefill + N samples' decode shares at a serving batch
        b = attempt_basis(parse_candidate(f"{model}@{hw}:{fmt}"), prompt, gen, batch, engine, None)
        out["pricing_basis"] = PRICING_BASIS
        out["priced_on"] = {k: b[k] for k in ("hardware", "tp", "pp", "batch")}
        for row in curve:
            device_s = b["prefill_device_s"] + row["n"] * b["decode_device_s"]
            row["usd"] = device_s * b["usd_per_device_s"]
            row["cost_of_pass_usd"] = row["usd"] / row["accuracy"] if row["accuracy"] > 0 else float("inf")
    out["curve"] = curve
    return out
