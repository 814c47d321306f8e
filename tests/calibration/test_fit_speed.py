"""A fit's two speed-ups give the same numbers: a row set lowered once predicts what lowering on every
evaluation predicts, and the rows' Jacobian (fit.row_jacobian) equals finite differences over the
parameters."""
from __future__ import annotations

import numpy as np

from costmodel.calibration import predict as P
from costmodel.calibration.measurements import read_measurements, shipped_measurements


def test_a_row_set_lowered_once_predicts_as_lowering_every_time():
    from costmodel.calibration.run import prepare

    rows = [r for r in read_measurements(shipped_measurements()) if not r.scored_only and not r.is_memory
            and r.load_mode in ("static", "offline")][::4]
    rs = prepare(rows)
    rng = np.random.default_rng(1)
    hw = {"compute_efficiency": rng.uniform(0.2, 0.9, len(rs)), "kernel_overhead_s": rng.uniform(1e-6, 2e-5, len(rs)),
          "step_overhead_s": rng.uniform(1e-4, 3e-3, len(rs)), "request_overhead_s": rng.uniform(0, 0.01, len(rs))}
    f = {"peak_matmul": rs.f["peak_raw"] * rng.uniform(0.5, 1.0, len(rs))}
    once, fits_once = P.predict(rs, hw, f)
    saved = P.UNLOWERED
    try:
        P.UNLOWERED = set()
        every, fits_every = P.predict(rs, hw, f)
    finally:
        P.UNLOWERED = saved
    assert len(rs) > 100 and np.isfinite(once).sum() > 100
    np.testing.assert_array_equal(once, every)
    np.testing.assert_array_equal(fits_once, fits_every)


def test_the_rows_jacobian_equals_finite_differences_over_the_parameters():
    """fit.row_jacobian (one evaluation per kind of level, every row at once) gives the Jacobian that
    finite differences over each parameter give, on a fit's real row set and a point off the prior."""
    from scipy.optimize._numdiff import approx_derivative

    from costmodel.calibration import fit as C
    from costmodel.calibration.run import prepare

    rows = [r for r in read_measurements(shipped_measurements()) if not r.scored_only and not r.is_memory
            and r.load_mode in ("static", "offline")][::5]
    rs = prepare(rows)
    lay = C.build_layout(rs)
    use = lay.row_idx["fitted"]
    weights = C.NOISE / lay.prior_sd

    def data(level):
        err = np.log(P.predict(rs, *C.overrides_at(level, lay, rs))[0] / rs.measured)
        return np.where(use & np.isfinite(err), err, 0.0)

    def residuals(theta):
        return np.concatenate([data(C.levels(theta, lay)), weights * (theta - lay.prior_mean)])

    theta = np.clip(lay.prior_mean + np.random.default_rng(4).normal(0, 0.3, len(lay.names)),
                    lay.lower + 1e-3, lay.upper - 1e-3)
    ours = C.row_jacobian(data, lay, weights, len(rs))(theta).toarray()
    theirs = approx_derivative(residuals, theta, method="3-point")
    assert ours.shape == theirs.shape and np.abs(theirs).max() > 0.1
    np.testing.assert_allclose(ours, theirs, atol=2e-5 * np.abs(theirs).max())
    assert np.array_equal(ours != 0, np.abs(theirs) > 1e-9)  # the same structure: no dependency missed


def test_the_fast_kernels_fit_the_same_parameters(monkeypatch):
    """A fit's evaluations timed by the [fast] kernels (engine/fast.py) give the same parameters, bit for bit."""
    import pytest

    pytest.importorskip("numba")
    from costmodel.calibration import fit as C
    from costmodel.calibration.run import prepare

    rows = [r for r in read_measurements(shipped_measurements()) if not r.scored_only and not r.is_memory
            and r.load_mode in ("static", "offline")][::3]
    rs = prepare(rows)
    lay = C.build_layout(rs)
    got = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("COSTMODEL_FAST", flag)
        got[flag] = C.fit(rs, lay, max_nfev=20)
    assert len(lay.names) > 50 and np.any(got["1"] != lay.prior_mean)
    np.testing.assert_array_equal(got["0"], got["1"])
    hw, f = C.overrides(got["1"], lay, rs)
    np.testing.assert_array_equal(P.predict(rs, hw, f)[0], P.predict(rs, hw, f, fast=True)[0])
