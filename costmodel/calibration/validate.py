"""Score the engine against measurements: error statistics, worst rows, interval coverage."""
from __future__ import annotations

import math

import numpy as np

from costmodel.calibration.intervals import load_band, lookup
from costmodel.calibration.measurements import METRIC_KIND, METRICS, load_kind, read_measurements
from costmodel.calibration.predict import predict, prepare, with_rows
from costmodel.spec.catalog import one_catalogue_state
from costmodel.spec.engine_params import base_engine


def _stats(pred: np.ndarray, meas: np.ndarray) -> dict:
    ape = np.abs(pred / meas - 1)
    signed = pred / meas - 1
    return {"n": int(len(ape)), "median_ape": float(np.median(ape)), "mean_ape": float(np.mean(ape)),
            "p90_ape": float(np.percentile(ape, 90)), "bias": float(np.median(signed))}


def _inside(pred: float, meas: float, engine: str, family: str, metric: str, loaded: bool = False,
            level: str = "device", layout: bool = False) -> bool | None:
    q = (load_band(load_kind(metric), engine, family, layout) if loaded
         else lookup(engine, family, (METRIC_KIND[metric],), level, layout=layout))
    if q is None:
        return None
    lo, hi = min(q[0], 0.0), max(q[1], 0.0)  # the band as shown: it holds its own estimate
    # r = log(measured time / predicted time) must lie in [lo, hi]
    r = math.log(meas / pred) if METRICS[metric][2] == "time" else math.log(pred / meas)
    return lo <= r <= hi


def layout_name(r) -> str:
    """A row's parallel layout: 'TP/PP', 'EP (TP attention)', 'DP attention', 'DP attention + EP' or
    'split prefill/decode'."""
    if getattr(r, "is_split", False):
        return "split prefill/decode"
    if r.dp > 1:
        return "DP attention + EP" if r.ep > 1 else "DP attention"
    return "EP (TP attention)" if r.ep > 1 else "TP/PP"


def _levels(rs) -> list[str]:
    """Each row's calibration level (device / family / engine / uncalibrated): the interval it gets."""
    from costmodel.spec.engine_params import efficiency_for

    memo: dict = {}
    out = []
    for r, e, f in zip(rs.rows, rs.engines, rs.families):
        if (r.hardware, e) not in memo:
            memo[(r.hardware, e)] = efficiency_for(r.hardware, f, e).calibration_level(r.hardware, f)
        out.append(memo[(r.hardware, e)])
    return out


def _coverage_by(detail: list, keys: list) -> dict:
    """Share of scored rows inside their interval per key (load mode, engine, calibration level)."""
    out: dict = {}
    for d, k in zip(detail, keys):
        if d["in_interval"] is not None:
            out.setdefault(k, []).append(d["in_interval"])
    return {k: {"covered": float(np.mean(v)), "n": len(v)} for k, v in sorted(out.items())}


@one_catalogue_state  # one state of the catalogue for every row's lookups: one stat of it, not one per lookup
def validate(paths: list[str], engine: str | None = None, worst: int = 10) -> dict:
    """Predict every row of the files; statistics overall and by device, metric, engine and source.

        >>> report = costmodel.validate(["data/measurements.csv"], engine="trt-llm")
        >>> report["overall"]["median_ape"], report["interval_coverage"]["covered"]
    """
    if isinstance(paths, (str, bytes)) or hasattr(paths, "__fspath__"):  # one file, not its characters
        paths = [paths]
    rows = []
    for p in paths:
        rows.extend(read_measurements(p))
    rs = prepare(rows, engine)
    skipped = [{"id": r.id, "reason": why} for r, why in rs.skipped]
    pred, fits = predict(rs)
    # the source ran these rows, so they are scored; the memory model's disagreement is reported
    disagree = {rs.rows[i].id for i in np.where(~fits)[0]}
    keep = np.isfinite(pred) & (pred > 0)
    for i in np.where(~keep)[0]:
        skipped.append({"id": rs.rows[i].id, "reason": "no finite prediction for this metric"})
    rs = with_rows(rs, keep)
    pred = pred[keep]
    meas = rs.measured
    detail = []
    levels = _levels(rs)
    for i, r in enumerate(rs.rows):
        inside = _inside(pred[i], meas[i], rs.engines[i], rs.families[i], r.metric,
                         r.load_mode in ("closed", "poisson"), levels[i], r.dp > 1 or r.ep > 1 or r.is_split)
        detail.append({"id": r.id, "hardware": r.hardware, "model": r.model, "format": r.format,
                       "engine": rs.engines[i], "source": r.source, "metric": r.metric,
                       "measured": r.value, "predicted": float(pred[i]), "ape": float(abs(pred[i] / meas[i] - 1)),
                       "in_interval": inside, "memory_model_says_no_fit": r.id in disagree})
    report: dict = {"files": [str(p) for p in paths], "rows": len(rows), "scored": len(detail),
                    "skipped_count": len(skipped)}
    if detail:
        report["overall"] = _stats(pred, meas)
        for key, field in (("by_device", "hardware"), ("by_metric", "metric"), ("by_engine", "engine"),
                           ("by_source", "source")):
            groups: dict = {}
            for i, d in enumerate(detail):
                groups.setdefault(d[field], []).append(i)
            report[key] = {g: _stats(pred[ix], meas[ix]) for g, ix in sorted(groups.items())}
        flags = [d["in_interval"] for d in detail if d["in_interval"] is not None]
        report["interval_coverage"] = {
            "nominal": 0.8, "covered": float(np.mean(flags)) if flags else None, "n": len(flags),
            "by_load": _coverage_by(detail, [r.load_mode for r in rs.rows]),
            "by_engine": _coverage_by(detail, [base_engine(e) for e in rs.engines]),
            "by_calibration_level": _coverage_by(detail, levels),
            "by_layout": _coverage_by(detail, [layout_name(r) for r in rs.rows])}
        lay: dict = {}
        for i, r in enumerate(rs.rows):
            lay.setdefault(layout_name(r), []).append(i)
        report["by_layout"] = {g: _stats(pred[ix], meas[ix]) for g, ix in sorted(lay.items())}
        report["worst"] = sorted(detail, key=lambda d: -d["ape"])[:worst]
    report["memory_disagreements"] = sorted(disagree)  # measured runs the memory model would not fit
    report["rows_detail"] = detail
    report["skipped"] = skipped
    return report
