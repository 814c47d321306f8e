"""Serving rows of the shipped set (closed loop and Poisson): the load model's error with the shipped
calibration, its leave-one-source-out error (recorded by `costmodel calibrate` in
calibration/fitted.yaml), and the static-batch baseline it replaces (a benchmark's concurrency C read
as a static batch of C; closed loop only). Prints tables; asserts nothing.

    python benchmarks/serving_baseline.py
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from costmodel.calibration.measurements import read_measurements, shipped_measurements
from costmodel.calibration.predict import predict, prepare

MEANS = ("ttft_ms", "tpot_ms", "e2e_latency_ms")
FITTED = Path(__file__).resolve().parents[1] / "calibration" / "fitted.yaml"


def errors(rows) -> dict:
    rs = prepare(rows)
    pred, _ = predict(rs)
    out: dict = {}
    for r, p in zip(rs.rows, pred):
        if np.isfinite(p):
            e = abs(p / r.value - 1)
            for key in (r.metric, f"{r.framework}:{r.metric}", f"load:{r.load_mode}", f"{r.load_mode}:{r.metric}",
                        "all"):
                out.setdefault(key, []).append(e)
    return out


def fmt(x) -> str:
    return f"{100 * np.median(x):5.1f}% / {100 * np.percentile(x, 90):5.1f}%" if len(x) else "-"


def main() -> None:
    # TP/PP layouts: the EP and DP-attention rows are scored in `costmodel validate` (README, Parallel layouts)
    rows = [r for r in read_measurements(shipped_measurements())
            if r.load_mode in ("closed", "poisson") and r.dp == 1 and r.ep == 1]
    static = [dataclasses.replace(r, load="static") for r in rows if r.metric in MEANS and r.load_mode == "closed"]
    loaded, base = errors(rows), errors(static)
    loso = (yaml.safe_load(FITTED.read_text())["provenance"].get("serving_leave_one_source_out") or {})
    print(f"{len(rows)} closed-loop and Poisson rows; median / P90 |error|")
    print(f"{'group':46s} {'n':>5s} {'shipped fit':>17s} {'leave-one-source-out':>21s} {'static batch of C':>18s}")
    order = sorted(loaded, key=lambda k: (k.count(":"), k))
    for key in order:
        e = np.array(loaded[key])
        b = np.array(base.get(key, [])) if not key.startswith(("load:poisson", "poisson:")) else []
        lo = loso.get(key)
        lo_txt = f"{100 * lo['median_ape']:5.1f}% / {100 * lo['p90_ape']:5.1f}%" if lo else "-"
        print(f"{key:46s} {len(e):5d} {fmt(e):>17s} {lo_txt:>21s} {fmt(b):>18s}")


if __name__ == "__main__":
    main()
