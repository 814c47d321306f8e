"""Serving rows of the shipped set: the load model's error next to the static-batch baseline it
replaces (a benchmark's concurrency C read as a static batch of C). Prints a table; asserts nothing.

    python benchmarks/serving_baseline.py
"""
from __future__ import annotations

import dataclasses

import numpy as np

from costmodel.calibration.measurements import read_measurements, shipped_measurements
from costmodel.calibration.predict import predict, prepare

MEANS = ("ttft_ms", "tpot_ms", "e2e_latency_ms", "throughput_tokens_per_s_per_gpu")


def errors(rows) -> dict:
    rs = prepare(rows)
    pred, _ = predict(rs)
    out: dict = {}
    for r, p in zip(rs.rows, pred):
        if np.isfinite(p):
            out.setdefault(r.metric, []).append(abs(p / r.value - 1))
            out.setdefault((r.metric, r.framework), []).append(abs(p / r.value - 1))
    return out


def main() -> None:
    rows = [r for r in read_measurements(shipped_measurements()) if r.load_mode == "closed"]
    static = [dataclasses.replace(r, load="static") for r in rows if r.metric in MEANS[:3]]
    loaded, base = errors(rows), errors(static)
    print(f"{len(rows)} closed-loop rows; median / P90 |error|")
    print(f"{'metric':40s} {'n':>5s} {'serving model':>18s} {'static batch of C':>20s}")
    for key in sorted(loaded, key=str):
        e = np.array(loaded[key])
        b = np.array(base.get(key, []))
        fmt = lambda x: f"{100 * np.median(x):5.1f}% / {100 * np.percentile(x, 90):5.1f}%" if len(x) else "-"  # noqa: E731
        print(f"{str(key):40s} {len(e):5d} {fmt(e):>18s} {fmt(b):>20s}")


if __name__ == "__main__":
    main()
