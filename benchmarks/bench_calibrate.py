"""Benchmark: one fit of the shipped measurement set (the unit `costmodel calibrate` repeats for every
held-out device, source and engine). Prints times and ratios against baselines measured in the same
run; asserts nothing.

    python benchmarks/bench_calibrate.py [--repeats 2]

Baselines: the same fit with the row set's per-row masks built as before they were cached (each
metric's mask, the measured values and the load masks rebuilt from the rows on every evaluation), and
one evaluation of the engine on all rows (the fit's cost per evaluation).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def shipped_rowset():
    from costmodel.calibration.measurements import read_measurements, shipped_measurements
    from costmodel.calibration.predict import with_rows
    from costmodel.calibration.run import _decode_from_serving, prepare

    rows = [r for r in read_measurements(shipped_measurements()) if not r.scored_only and r.dp == 1 and r.ep == 1]
    served = [r for r in rows if r.load_mode in ("closed", "poisson")]
    rows = [r for r in rows if not r.is_memory and (r.load_mode == "static" or (r.load_mode == "offline" and r.batch < 0))]
    rows += _decode_from_serving(served, rows)
    return with_rows(prepare(rows), np.ones(len(rows), dtype=bool))


def timed(fn, repeats: int) -> float:
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    from costmodel.calibration import fit as C
    from costmodel.calibration import predict as P

    rs = shipped_rowset()
    lay = C.build_layout(rs)
    theta = lay.prior_mean.copy()
    calls = [0]
    log_errors = C.log_errors

    def counted(*args):
        calls[0] += 1
        return log_errors(*args)

    C.log_errors = counted
    fit_s = timed(lambda: C.fit(rs, lay), a.repeats)
    evals = calls[0] // a.repeats
    one_s = timed(lambda: log_errors(theta, lay, rs), 5 * a.repeats)
    C.log_errors = log_errors
    metric_is, measured = P.RowSet.metric_is, P.RowSet.measured

    def uncached(*args):
        args[2].__dict__.pop("masks", None)  # the load masks rebuilt every evaluation
        return log_errors(*args)

    C.log_errors = uncached
    P.RowSet.metric_is = lambda self, name: np.array([r.metric == name for r in self.rows], dtype=bool)
    P.RowSet.measured = property(lambda self: np.array([r.value for r in self.rows]))
    old_s = timed(lambda: C.fit(rs, lay), a.repeats)
    C.log_errors = log_errors
    P.RowSet.metric_is, P.RowSet.measured = metric_is, measured
    print(f"{len(rs)} rows, {len(lay.names)} parameters, {evals} evaluations per fit (best of {a.repeats})")
    print(f"one fit: {fit_s:.2f} s; with the masks rebuilt per evaluation: {old_s:.2f} s "
          f"({old_s / fit_s:.2f}x slower)")
    print(f"one evaluation of all rows: {one_s * 1e3:.1f} ms; the fit is {fit_s / (evals * one_s):.2f}x "
          f"its evaluations (the rest is the solver)")


if __name__ == "__main__":
    main()
