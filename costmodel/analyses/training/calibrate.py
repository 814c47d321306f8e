"""Fit training efficiencies to published measurements, with cross-validated error and intervals.

Least squares on log(predicted / measured) (soft-L1, as the inference fit), parameters with Gaussian
priors (sd in logit/log units):
    compute_efficiency = sigmoid(a + a_device)      a_device only for devices with >= 3 rows (sd 0.5)
    width_half = exp(w),  fp8_scale = exp(s8),  fp4_scale = exp(s4),  moe_scale = exp(sm)
No per-row or per-source terms. Error is reported in sample, leaving each source out (the headline:
a new framework, lab or harness) and leaving each device out; those residuals set the intervals.
"""
from __future__ import annotations

import datetime
from dataclasses import replace

import numpy as np

from costmodel.errors import CostModelError

PRIOR_SD = {"a": 2.0, "w": 3.0, "s8": 1.0, "s4": 1.0, "sm": 1.0, "device": 0.5}
WIDTH_PRIOR = 256.0  # prior centre of the width half-point (a loose prior: sd 3 in log units)
NOISE = 0.15  # typical |log error| of one published figure; scales the priors into residual units
ROBUST = 0.3
MIN_DEVICE_ROWS = 3


def sourced_defaults() -> dict:
    """The sourced defaults (calibration/training/defaults.yaml), never a previous fit: the priors' centres
    and the 'uncalibrated' error do not depend on which fit is installed."""
    from costmodel.analyses.training.efficiency import training_file

    return {k: float(v["value"]) for k, v in training_file("defaults.yaml")["global"].items()}


def prior_mean() -> dict:
    d = sourced_defaults()
    return {"a": float(np.log(d["compute_efficiency"] / (1 - d["compute_efficiency"]))), "w": float(np.log(WIDTH_PRIOR)),
            "s8": float(np.log(d["fp8_scale"])), "s4": float(np.log(d["fp4_scale"])), "sm": float(np.log(d["moe_scale"]))}


def prepare(rows):
    """(row, shape, hardware, unit) for each row the model can place; (row, reason) for the others."""
    from costmodel.analyses.training.precision import units_for
    from costmodel.analyses.training.shape import shape_from_counts, shape_of_model
    from costmodel.spec.hardware import resolve_hardware
    from costmodel.spec.model_catalog import resolve_model
    from costmodel.analyses.training.train import Layout, check_devices, check_layout

    kept, skipped = [], []
    for r in rows:
        try:
            if not r.model and not (r.params and r.layers and r.hidden and r.vocab):
                raise CostModelError("no catalogue model and no params/layers/hidden/vocab")
            shape = (shape_of_model(resolve_model(r.model)[0]) if r.model else
                     shape_from_counts(r.id, r.params, r.layers, r.hidden, r.vocab, r.heads))
            hw = resolve_hardware(r.hardware)[0]
            unit = units_for(r.precision, hw)
            check_devices(hw, r.devices)
            check_layout(shape, r.devices, Layout(r.tp, r.pp, r.cp, r.ep, r.zero, r.recompute, r.micro_batch, r.vpp),
                         r.seq_len, r.global_batch)
            _check_possible(r, shape, hw, unit)
            kept.append((replace(r, hardware=hw.id), shape, hw, unit))  # device offsets keyed by catalogue id
        except CostModelError as exc:
            skipped.append((r, str(exc)))
    return kept, skipped


def _check_possible(r, shape, hw, unit) -> None:
    """Refuse a row whose measurement implies more executed FLOP/s per device than the peak of the units its GEMMs
    run on (HFU > 1): a fit would take it with an efficiency times the format's scale above 1, and every `train`
    afterwards would print more than the device can do. The shipped rows reach at most 0.70."""
    from costmodel.analyses.training.flops import executed_flops_per_token, model_flops_per_token
    from costmodel.analyses.training.precision import as_pair

    if r.metric == "train_tokens_per_s_per_device":
        tokens = r.value
    elif r.metric == "step_time_s":
        tokens = r.seq_len * r.global_batch / r.value / r.devices
    else:  # model_tflops_per_device
        tokens = r.value * 1e12 / float(model_flops_per_token(shape, r.seq_len))
    linear, attention = executed_flops_per_token(shape, r.seq_len, r.recompute == "full")
    executed = tokens * float(linear + attention)
    units = dict.fromkeys(as_pair(unit))
    peak = max(hw.peaks[u] for u in units)
    if executed > peak:
        raise CostModelError(f"{r.metric} {r.value:g} implies {executed / 1e12:,.0f} TFLOP/s executed per device, above "
                             f"the {hw.id}'s {'/'.join(units)} peak of {peak / 1e12:,.0f}: not possible (check the "
                             f"metric, the device count and the precision)")


def _eff(theta, names, device):
    from costmodel.analyses.training.efficiency import train_efficiency

    base = train_efficiency("-", "-")
    t = dict(zip(names, theta))
    a = t["a"] + t.get(("device", device), 0.0)
    return replace(base, compute_efficiency=float(1 / (1 + np.exp(-a))), width_half=float(np.exp(t["w"])),
                   fp8_scale=float(np.exp(t["s8"])), fp4_scale=float(np.exp(t["s4"])), moe_scale=float(np.exp(t["sm"])))


def predict(kept, theta, names) -> np.ndarray:
    """Each row's metric at the parameters `theta` (train.rates: evaluate's phases and rates, not its memory)."""
    from costmodel.analyses.training.train import rates

    out, effs = [], {}
    for r, shape, hw, unit in kept:
        eff = effs.get(r.hardware)
        if eff is None:  # one set of efficiencies per device, shared by its rows
            eff = effs[r.hardware] = _eff(theta, names, r.hardware)
        x = rates(shape, hw, eff, unit, r.seq_len, r.global_batch, r.devices, r.tp, r.pp, r.cp, r.ep, r.zero,
                  r.recompute == "full", r.micro_batch, 1.0, r.vpp)
        out.append({"train_tokens_per_s_per_device": x["tokens_per_s_per_device"], "step_time_s": x["step_s"],
                    "model_tflops_per_device": x["model_tflops_per_device"]}[r.metric])
    return np.array(out, dtype=float)


def layout(kept, min_device_rows: int = MIN_DEVICE_ROWS):
    names = ["a", "w", "s8", "s4", "sm"]
    counts: dict = {}
    for r, *_ in kept:
        counts[r.hardware] = counts.get(r.hardware, 0) + 1
    names += [("device", d) for d, c in sorted(counts.items()) if c >= min_device_rows]
    centre = prior_mean()
    mean = np.array([centre.get(n, 0.0) if isinstance(n, str) else 0.0 for n in names])
    sd = np.array([PRIOR_SD[n] if isinstance(n, str) else PRIOR_SD["device"] for n in names])
    return names, mean, sd


def fit(kept, names, mean, sd) -> np.ndarray:
    from scipy.optimize import least_squares

    units = {x for *_, u in kept for x in ((u,) if isinstance(u, str) else u)}
    used = {"s8": "fp8" in units, "s4": "fp4" in units, "sm": any(s.is_moe for _, s, _, _ in kept)}

    def residuals(theta):
        err = log_errors(kept, theta, names)
        robust = np.sign(err) * ROBUST * np.sqrt(2 * (np.sqrt(1 + (err / ROBUST) ** 2) - 1))
        prior = (NOISE / sd) * (theta - mean)
        prior = np.where([used.get(n, True) if isinstance(n, str) else True for n in names], prior, 10.0 * (theta - mean))
        return np.concatenate([robust, prior])

    return least_squares(residuals, mean.copy(), max_nfev=60, ftol=1e-6, xtol=1e-6).x


def log_errors(kept, theta, names) -> np.ndarray:
    """log(predicted / measured) of each row, as a rate (a time's error is inverted)."""
    measured = np.array([r.value for r, *_ in kept])
    sign = np.array([-1.0 if r.metric == "step_time_s" else 1.0 for r, *_ in kept])  # time: inverse of a rate
    return sign * np.log(predict(kept, theta, names) / measured)


def held_out(kept, by: str) -> np.ndarray:
    """Each group (source or hardware) predicted by a fit without it (its own device offset unknown)."""
    err = np.full(len(kept), np.nan)
    groups = np.array([getattr(r, by) for r, *_ in kept])
    for g in sorted(set(groups)):
        out = groups == g
        train = [k for k, o in zip(kept, out) if not o]
        if not train:
            continue
        names, mean, sd = layout(train)
        theta = fit(train, names, mean, sd)
        test = [k for k, o in zip(kept, out) if o]
        err[out] = log_errors(test, theta, names)
    return err


def summarize(err, kept) -> dict:
    ape = np.abs(np.exp(err) - 1)
    ok = np.isfinite(ape)

    def s(mask):
        a = ape[mask & ok]
        return {"n": int(a.size), "median_ape": float(np.median(a)) if a.size else None,
                "p90_ape": float(np.percentile(a, 90)) if a.size else None,
                "bias": float(np.median(np.exp(err[mask & ok])) - 1) if a.size else None}

    out = {"all": s(np.ones(len(kept), bool))}
    for key in ("source", "hardware", "precision"):
        for v in sorted({getattr(r, key) for r, *_ in kept}):
            out[f"{key}:{v}"] = s(np.array([getattr(r, key) == v for r, *_ in kept]))
    return out


def _band(err) -> dict:
    e = err[np.isfinite(err)]
    return {"low": round(float(np.percentile(e, 10)), 4), "high": round(float(np.percentile(e, 90)), 4), "n": int(e.size)}


def _coverage(err, band) -> float | None:
    """The share of held-out errors inside the band; None where nothing was held out (one device: no fit
    without it)."""
    e = err[np.isfinite(err)]
    if not e.size:
        return None
    lo, hi = min(band["low"], 0.0), max(band["high"], 0.0)
    return float(np.mean((e >= lo) & (e <= hi)))


def run(path, out_dir=None, force: bool = False) -> dict:
    """Fit, cross-validate and write OUT/calibration/training/fitted.yaml (default: the user catalogue); return
    the summary with in-sample, leave-one-source-out and leave-one-device-out error.

        >>> s = costmodel.calibrate_train("my_training_runs.csv", out_dir="my-calibration")
        >>> s["leave_one_source_out"]["all"]["median_ape"]
    """
    import yaml

    from costmodel.analyses.training.measurements import read_training
    from costmodel.calibration.fit import file_digest
    from pathlib import Path

    from costmodel.spec.catalog import builtin_root, user_root

    root = Path(out_dir) if out_dir else user_root()
    target = root / "calibration" / "training" / "fitted.yaml"
    shipped = builtin_root() / "calibration" / "training" / "fitted.yaml"
    if target.resolve() == shipped.resolve() and target.exists() and not force:
        raise CostModelError(f"{target}: the shipped training fit; add --force to replace it")
    if out_dir is not None and target.exists() and not force:  # checked before minutes of fitting
        raise CostModelError(f"--out {out_dir}: {target} exists; pass --force to replace it")
    rows = read_training(path)
    kept, skipped = prepare(rows)
    if len(kept) < 4 or len({r.source for r, *_ in kept}) < 2:
        why = "; ".join(f"{r.id}: {reason}" for r, reason in skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        raise CostModelError(f"{path}: {len(kept)} usable rows from {len({r.source for r, *_ in kept})} source(s); "
                             f"calibrate-train needs at least 4 rows from 2 sources (one held out at a time)"
                             + (f"; skipped {len(skipped)}: {why}" if skipped else ""))
    names, mean, sd = layout(kept)
    theta = fit(kept, names, mean, sd)
    ins = log_errors(kept, theta, names)
    loso = held_out(kept, "source")
    lodo = held_out(kept, "hardware")
    d = sourced_defaults()
    centre = {**prior_mean(), "w": float(np.log(max(d["width_half"], 1e-9)))}  # no width effect before the fit
    uncal = log_errors(kept, np.array([centre.get(n, 0.0) if isinstance(n, str) else 0.0 for n in names]), names)
    bands = {"device": _band(loso)}
    # each level at least as wide as the one closer to the data (a new device is never surer than a new source)
    for level, err, inner in (("family", np.concatenate([loso, lodo]), "device"),
                              ("uncalibrated", np.concatenate([loso, lodo, uncal]), "family")):
        b = _band(err)
        bands[level] = {"low": min(b["low"], bands[inner]["low"]), "high": max(b["high"], bands[inner]["high"]),
                        "n": b["n"]}
    summary = {"rows_used": len(kept), "rows_skipped": [{"id": r.id, "reason": why} for r, why in skipped],
               "uncalibrated": summarize(uncal, kept), "in_sample": summarize(ins, kept),
               "leave_one_source_out": summarize(loso, kept), "leave_one_device_out": summarize(lodo, kept),
               "interval_coverage_held_out": {"source held out, device band": _coverage(loso, bands["device"]),
                                              "device held out, family band": _coverage(lodo, bands["family"])}}
    date = datetime.date.today().isoformat()
    src = f"fit: costmodel calibrate-train on {date}, {len(kept)} rows of {path}"
    t = dict(zip(names, theta))
    sig = lambda x: float(1 / (1 + np.exp(-x)))  # noqa: E731
    fitted = {"sources": {"fit": src},
              "global": {"compute_efficiency": {"value": round(sig(t["a"]), 4), "source": "fit"},
                         "width_half": {"value": round(float(np.exp(t["w"])), 2), "source": "fit"},
                         "fp8_scale": {"value": round(float(np.exp(t["s8"])), 4), "source": "fit"},
                         "fp4_scale": {"value": round(float(np.exp(t["s4"])), 4), "source": "fit"},
                         "moe_scale": {"value": round(float(np.exp(t["sm"])), 4), "source": "fit"}},
              "devices": {n[1]: {"compute_efficiency": {"value": round(sig(t["a"] + t[n]), 4), "source": "fit"}}
                          for n in names if not isinstance(n, str)},
              "fitted_families": sorted({hw.family for _, _, hw, _ in kept}),
              "intervals": bands,
              "provenance": {"date": date, "command": f"costmodel calibrate-train {path}",
                             "input": {"path": str(path), "sha256": file_digest(path), "rows": len(rows)},
                             "errors": {k: summary[k]["all"] for k in ("uncalibrated", "in_sample",
                                                                       "leave_one_source_out", "leave_one_device_out")},
                             "interval_coverage_held_out": summary["interval_coverage_held_out"]}}
    from costmodel.spec.files import atomic_output

    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(target) as tmp:
        tmp.write_text("# Written by costmodel calibrate-train: fitted training efficiencies and their provenance.\n"
                       + yaml.safe_dump(fitted, sort_keys=False, width=120))
    summary["path"] = str(target)
    summary["parameters"] = {k: v["value"] for k, v in fitted["global"].items()}
    summary["devices"] = {d: v["compute_efficiency"]["value"] for d, v in fitted["devices"].items()}
    return summary
