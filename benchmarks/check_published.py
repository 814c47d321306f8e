"""Uncalibrated check against published measurements (SCHEMA.md rows). Prints ratios, asserts nothing.

    python benchmarks/check_published.py PATH/TO/measurements.csv

Scores rows with a numeric batch (batch = max needs the continuous-batching model that
comes with calibration). For each (engine, metric): rows, median prediction/measurement,
P10 and P90 of that ratio; then the median absolute percentage error overall.
"""
from __future__ import annotations

import collections
import csv
import sys

import numpy as np

from costmodel.errors import CostModelError
from costmodel.estimate import estimate

METRIC = {"ttft_ms": ("ttft_s", 1e3), "tpot_ms": ("tpot_s", 1e3), "e2e_latency_ms": ("e2e_latency_s", 1e3)}


def main(path: str) -> None:
    ratios = collections.defaultdict(list)
    skipped = collections.Counter()
    for r in csv.DictReader(open(path, encoding="utf-8")):
        if r["batch"] == "max":
            skipped["batch=max"] += 1
            continue
        tp, devices = int(r["tp"]), int(r["devices"])
        try:
            e = estimate(r["model"], r["hardware"], r["format"], kv_fmt=r["kv_format"] or None,
                         batch=int(r["batch"]), prompt=int(r["prompt_tokens"]), gen=max(int(r["output_tokens"]), 1),
                         context=int(r["context_tokens"] or 0), tp=tp,
                         devices=devices if devices % tp == 0 else None)
        except CostModelError as exc:
            skipped[type(exc).__name__] += 1
            continue
        name, scale = METRIC.get(r["metric"], (r["metric"], 1.0))
        ratios[(r["framework"], r["metric"])].append(e.metric(name) * scale / float(r["value"]))
    every = []
    for (engine, metric), v in sorted(ratios.items()):
        v = np.array(v)
        every.extend(v)
        print(f"{engine:10s} {metric:26s} n={len(v):4d}  median pred/meas {np.median(v):5.2f}  "
              f"P10 {np.percentile(v, 10):5.2f}  P90 {np.percentile(v, 90):5.2f}")
    ape = np.abs(np.array(every) - 1)
    print(f"all scored rows: n={len(every)}, median |error| {100 * np.median(ape):.1f}%, "
          f"P90 |error| {100 * np.percentile(ape, 90):.1f}%; skipped {dict(skipped)}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/measurements.csv")
