"""Benchmark: one fit of the shipped measurement set (the unit `costmodel calibrate` repeats for every
held-out device, source and engine). Prints times and ratios against baselines measured in the same
run; asserts nothing.

    python benchmarks/bench_calibrate.py [--repeats 2]

Baselines: the same fit lowering the rows (engine/evaluate.lower_all) on every evaluation, as before a
row set kept its lowering, and one evaluation of the engine on all rows both ways (the fit's cost per
evaluation).
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
    C.log_errors = log_errors
    one_s = timed(lambda: log_errors(theta, lay, rs), 5 * a.repeats)
    unlowered = P.UNLOWERED
    P.UNLOWERED = set()  # every evaluation lowers the rows again, as before the two stages
    try:
        old_s = timed(lambda: C.fit(rs, lay), a.repeats)
        old_one_s = timed(lambda: log_errors(theta, lay, rs), 5 * a.repeats)
    finally:
        P.UNLOWERED = unlowered
    print(f"{len(rs)} rows, {len(lay.names)} parameters, {evals} evaluations per fit (best of {a.repeats})")
    print(f"one fit: {fit_s:.2f} s lowering the rows once; {old_s:.2f} s lowering them on every evaluation "
          f"({old_s / fit_s:.2f}x slower)")
    print(f"one evaluation of all rows: {one_s * 1e3:.1f} ms timing the lowered rows, {old_one_s * 1e3:.1f} ms "
          f"lowering them too ({old_one_s / one_s:.2f}x); the fit is {fit_s / (evals * one_s):.2f}x its "
          f"evaluations (the rest is the solver)")


if __name__ == "__main__":
    main()
