"""Precision economics: for a budget, which training precision reaches the lowest loss.

A precision that runs faster buys more tokens D with the same GPU-hours (its fastest layout, train_search);
one that loses accuracy shrinks the effective parameters and data (Quartet's law, calibration/training/
precision_law.yaml):  L = (A/(N·effN)^α + B/(D·effD)^β)^γ + E,  N = non-embedding parameters.
The law was fitted on 30M-200M-parameter models: for large models the ranking, not the loss value, is
the output to trust, and README says so.
"""
from __future__ import annotations

from costmodel.errors import CostModelError, WorkloadError


MAX_GPU_HOURS = 1e12  # past any run: tokens bought would print as 40-digit numbers


def law() -> dict:
    from costmodel.analyses.training.efficiency import training_file

    return training_file("precision_law.yaml")


def loss(n_params: float, tokens: float, eff_n: float, eff_d: float, constants: dict) -> float:
    c = constants
    return (c["A"] / (n_params * eff_n) ** c["alpha"] + c["B"] / (tokens * eff_d) ** c["beta"]) ** c["gamma"] + c["E"]


def efficiencies(fmt: str, doc: dict) -> dict:
    """(effN, effD) of a precision or FWD:BWD pair: the joint fit when both passes share a precision, else
    effN from the forward pass's and effD from the backward pass's separate fits."""
    from costmodel.analyses.training.precision import precision_pair

    f, b = precision_pair(fmt)
    known = doc["efficiency"]
    for p in (f, b):
        if p not in known:
            raise WorkloadError(f"--fmts {fmt}: no loss efficiencies for {p}; expected {', '.join(known)}")
    if f == b:
        return known[f]
    eff_n = doc.get("forward_only", {}).get(f, {}).get("effN", known[f]["effN"] if known[f]["effN"] == 1 else None)
    eff_d = doc.get("backward_only", {}).get(b, {}).get("effD", known[b]["effD"] if known[b]["effD"] == 1 else None)
    if eff_n is None or eff_d is None:
        raise WorkloadError(f"--fmts {fmt}: no separate forward/backward fit for this pair")
    return {"effN": eff_n, "effD": eff_d}


def precision_economics(model: str, hw: str, devices: int, budget_gpu_hours: float | None = None,
                        budget_usd: float | None = None, fmts=("bf16", "fp8", "nvfp4"), seq_len: int = 4096) -> dict:
    """Tokens each precision buys with the budget and the loss it reaches; the lowest wins.

        >>> r = costmodel.precision_economics("llama-3.1-8b", "b200", 256, budget_gpu_hours=500_000)
        >>> r["best"], [(x["precision"], x["tokens"], x["loss"]) for x in r["options"]]
    """
    from costmodel.analyses.training.search import search
    from costmodel.analyses.training.train import resolve

    if (budget_gpu_hours is None) == (budget_usd is None):
        raise WorkloadError("give one budget: --budget-gpu-hours or --budget-usd")
    m, shape, h = resolve(model, hw)
    if budget_usd is not None:
        if not h.price_per_hour:
            raise WorkloadError(f"--budget-usd: {h.id} states no cloud price; give --budget-gpu-hours")
        budget_gpu_hours = float(budget_usd) / h.price_per_hour
    budget_gpu_hours = float(budget_gpu_hours)
    if not 0 < budget_gpu_hours <= MAX_GPU_HOURS:
        raise WorkloadError(f"budget {budget_gpu_hours:g} GPU-hours: expected a positive number up to {MAX_GPU_HOURS:g} "
                            f"(a million devices for a century is 8.8e11)")
    doc = law()
    n = shape.matmul_active - shape.vocab * shape.hidden  # non-embedding (the LM head too), as the law counts
    options, skipped = [], []
    names = [f.strip().lower() for f in (fmts.split(",") if isinstance(fmts, str) else fmts)]
    if not names or any(not f for f in names):
        raise WorkloadError(f"--fmts {fmts!r}: expected a comma-separated list of precisions, e.g. bf16,fp8,nvfp4")
    for fmt in dict.fromkeys(names):  # each once, in the order given
        eff = efficiencies(fmt, doc)
        try:
            best = search(model, hw, devices, 1.0, fmt=fmt, seq_len=seq_len, limit=1)["layouts"]
        except CostModelError as exc:
            skipped.append({"precision": fmt, "reason": str(exc)})
            continue
        if not best:
            skipped.append({"precision": fmt, "reason": "no layout fits in memory"})
            continue
        b = best[0]
        tokens = b["tokens_per_s_per_device"] * budget_gpu_hours * 3600.0
        options.append({"precision": fmt, "layout": {k: b[k] for k in ("tp", "pp", "cp", "dp", "ep", "zero", "recompute")},
                        "tokens_per_s_per_device": b["tokens_per_s_per_device"], "tokens": tokens,
                        "tokens_per_parameter": tokens / n, "effN": eff["effN"], "effD": eff["effD"],
                        "loss": loss(n, tokens, eff["effN"], eff["effD"], doc["law"])})
    if not options:
        raise WorkloadError(f"no precision runs {m.id} on {devices} x {h.id}: " + "; ".join(s["reason"] for s in skipped))
    best = min(options, key=lambda o: o["loss"])
    return {"model": m.id, "hardware": h.id, "devices": devices, "budget_gpu_hours": budget_gpu_hours,
            "budget_usd": budget_gpu_hours * h.price_per_hour if h.price_per_hour else None,
            "non_embedding_params": n, "best": best["precision"], "options": options, "skipped": skipped,
            "law_source": doc["source"],
            "note": "Quartet's law was fitted on 30M-200M-parameter models (C4 loss): trust the ranking more than the value"}
