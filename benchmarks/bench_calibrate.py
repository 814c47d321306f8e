"""Benchmark: one fit of the shipped measurement set (the unit `costmodel calibrate` repeats for every
held-out device, source and engine). Prints times and ratios against baselines measured in the same
run; asserts nothing.

    python benchmarks/bench_calibrate.py [--repeats 2] [--whole ROUNDS [--baseline-rev REV]]

Baselines, measured in the same run: the fit with scipy's finite differences over the parameters
(before fit.row_jacobian), the same with the rows lowered (engine/evaluate.lower_all) on every
evaluation (before a row set kept its lowering), and one evaluation of all rows both ways.
"""
from __future__ import annotations

import argparse
import os
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


def scipy_fit(C, rs, lay, max_nfev: int = 100):
    """The fit as before `fit.row_jacobian`: scipy's finite differences over the parameters, columns
    grouped by the Jacobian's sparsity (one evaluation per group), the same residuals and settings."""
    from scipy.optimize import least_squares
    from scipy.sparse import coo_matrix

    use = lay.row_idx["fitted"]
    weights = C.NOISE / lay.prior_sd
    n_p, n = len(lay.names), len(rs)

    def residuals(theta):
        err = C.log_errors(theta, lay, rs)
        return np.concatenate([C.soft_l1(np.where(use & np.isfinite(err), err, 0.0)),
                               weights * (theta - lay.prior_mean)])

    rows, cols = [], []
    for lists in lay.row_idx["lists"].values():
        for i, ix in enumerate(lists):
            rows += [i] * len(ix)
            cols += ix
    rows += range(n, n + n_p)
    cols += range(n_p)
    sparsity = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n + n_p, n_p)).tocsr()
    sparsity.data[:] = 1
    x0 = np.clip(lay.prior_mean, lay.lower + 1e-9, lay.upper - 1e-9)
    return least_squares(residuals, x0, bounds=(lay.lower, lay.upper), loss="linear", jac_sparsity=sparsity,
                         x_scale=1.0, max_nfev=max_nfev, ftol=1e-5, xtol=1e-5, gtol=1e-6).x


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--whole", type=int, default=0, metavar="ROUNDS",
                   help="also time `costmodel calibrate` in fresh processes, ROUNDS interleaved rounds")
    p.add_argument("--baseline-rev", default=None, help="with --whole: the package at this git revision too")
    a = p.parse_args()
    from costmodel.calibration import fit as C
    from costmodel.calibration import predict as P

    rs = shipped_rowset()
    lay = C.build_layout(rs)
    user_flag = os.environ.get("COSTMODEL_FAST")
    os.environ["COSTMODEL_FAST"] = "0"  # numpy throughout, as before the [fast] kernels; those below
    theta = lay.prior_mean.copy()
    calls = [0]
    predict = C.predict

    def counted(*args, **kw):
        calls[0] += 1
        return predict(*args, **kw)

    def evaluations(fn) -> int:
        calls[0] = 0
        C.predict = counted
        try:
            fn()
        finally:
            C.predict = predict
        return calls[0]

    evals = evaluations(lambda: C.fit(rs, lay))
    evals_scipy = evaluations(lambda: scipy_fit(C, rs, lay))
    fit_s = timed(lambda: C.fit(rs, lay), a.repeats)
    scipy_s = timed(lambda: scipy_fit(C, rs, lay), a.repeats)
    gap = np.abs(C.fit(rs, lay) - scipy_fit(C, rs, lay)).max()
    one_s = timed(lambda: C.log_errors(theta, lay, rs), 5 * a.repeats)
    unlowered = P.UNLOWERED
    P.UNLOWERED = set()  # every evaluation lowers the rows again, as before the two stages
    try:
        old_s = timed(lambda: scipy_fit(C, rs, lay), a.repeats)
        old_one_s = timed(lambda: C.log_errors(theta, lay, rs), 5 * a.repeats)
    finally:
        P.UNLOWERED = unlowered
    print(f"{len(rs)} rows, {len(lay.names)} parameters (best of {a.repeats}; numpy)")
    print(f"one fit: {fit_s:.2f} s with the rows' Jacobian ({evals} evaluations); {scipy_s:.2f} s with scipy's "
          f"finite differences over the parameters ({evals_scipy} evaluations, {scipy_s / fit_s:.2f}x slower); "
          f"{old_s:.2f} s with those and the rows lowered on every evaluation, as before issue 16 "
          f"({old_s / fit_s:.2f}x slower); largest parameter difference between the two Jacobians' fits {gap:.1e}")
    print(f"one evaluation of all rows: {one_s * 1e3:.1f} ms timing the lowered rows, {old_one_s * 1e3:.1f} ms "
          f"lowering them too ({old_one_s / one_s:.2f}x)")
    from costmodel.engine.fast import enabled

    os.environ["COSTMODEL_FAST"] = "1"
    if enabled():  # the compiled kernels (engine/fast.py) against numpy, interleaved
        C.fit(rs, lay)  # warm-up: numba's import and its cached kernels (compiled on a first run)
        times: dict = {"0": [], "1": []}
        for _ in range(a.repeats):
            for flag in times:
                os.environ["COSTMODEL_FAST"] = flag
                times[flag].append(timed(lambda: C.fit(rs, lay), 1))
        fast_s, numpy_s = min(times["1"]), min(times["0"])
        print(f"one fit with the [fast] kernels: {fast_s:.2f} s; numpy {numpy_s:.2f} s ({numpy_s / fast_s:.2f}x)")
    else:
        print("[fast] not installed (pip install 'costmodel[fast]'): numpy only")
    os.environ.pop("COSTMODEL_FAST")
    if user_flag is not None:
        os.environ["COSTMODEL_FAST"] = user_flag
    if a.whole:
        whole(a.whole, a.baseline_rev)


def whole(rounds: int, baseline_rev: str | None) -> None:
    """`costmodel calibrate` on the shipped set in fresh processes, interleaved round by round: numpy,
    [fast], and the package at `baseline_rev` (a git worktree) when given; median seconds of each."""
    import shutil
    import statistics
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    from costmodel.engine.fast import enabled

    runs = {"numpy": (root, {"COSTMODEL_FAST": "0"})}
    if enabled():
        runs["[fast]"] = (root, {"COSTMODEL_FAST": "1"})
    tmp = Path(tempfile.mkdtemp())
    try:
        if baseline_rev:
            old = tmp / "baseline"
            subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(old), baseline_rev],
                           check=True, capture_output=True)
            runs[f"at {baseline_rev}"] = (old, {})
        times: dict = {k: [] for k in runs}
        for _ in range(rounds):
            for name, (src, env) in runs.items():
                cmd = [sys.executable, "-m", "costmodel", "calibrate", "data/measurements.csv", "--out",
                       str(tmp / "out"), "--force", "--json"]
                t = time.perf_counter()
                done = subprocess.run(cmd, cwd=src, env={**os.environ, "PYTHONPATH": str(src), **env},
                                      capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{name}: costmodel calibrate failed:\n{done.stderr[-2000:]}")
                times[name].append(time.perf_counter() - t)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"costmodel calibrate, {rounds} interleaved rounds, median s: "
              + "; ".join(f"{k} {v:.1f}" for k, v in med.items()))
        if baseline_rev:
            b = med[f"at {baseline_rev}"]
            print(f"  against {baseline_rev}: " + ", ".join(f"{k} {b / med[k]:.2f}x faster" for k in runs
                                                           if not k.startswith("at ")))
    finally:
        if baseline_rev:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tmp / "baseline")],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
