"""Intervals that hold on held-out data: nested bands, a widening factor per calibration level,
and the coverage each split reaches.

For a split (leave one device, source or engine out) every held-out row has an out-of-sample
error r = log(measured time / predicted time) and a calibration level in its fold: `device` (the
fold's fit saw its device under its engine), `family`, `engine` or `uncalibrated` (leave one engine
out). Its band is built like the shipped intervals, from the other groups' residuals only (nested):
P10/P90 of the level's residual pools (engine and family, then engine, then all; pooled over engines
for an uncalibrated engine), unioned over pools, widened to hold 0.

Errors of one source or device are correlated, so bands from the other groups' rows hold fewer
than 80 % of a new group's rows. A factor w per level widens a band in log space, each side by
(w - 1) half-widths (`widen`);
w is the smallest factor that holds 80 % of the level's held-out rows (split conformal, Vovk et al.
2005), at least 1; an engine with MIN_WIDEN_ROWS held-out rows of a level gets its own. Coverage is reported with w chosen without the scored group (doubly nested),
so the figure is itself out of sample.
"""
from __future__ import annotations

import numpy as np

from costmodel.calibration.fit import base_engine

NOMINAL = 0.8
MIN_WIDEN_ROWS = 30  # held-out rows of an engine at one level before it gets a widening of its own
PER_ENGINE_LEVELS = ("device", "new-device", "load")  # an uncalibrated engine is by definition unseen
LEVEL_OF_WIDENING = {"device": "device", "family": "new-device", "engine": "new-device", "uncalibrated": "uncalibrated"}


def fold_levels(rs, labels) -> np.ndarray:
    """Each row's calibration level in the fold that held its group out: `device` where the fold had
    the MIN_DEVICE_ROWS rows of its device and engine that a device offset needs (fit.py)."""
    from collections import Counter

    from costmodel.calibration.fit import MIN_DEVICE_ROWS

    labels = np.asarray(labels, dtype=object)
    bases = [base_engine(e) for e in rs.engines]
    out = np.empty(len(rs), dtype=object)
    for g in set(labels):
        train = labels != g
        idx = np.where(train)[0]
        counts = Counter((bases[i], rs.rows[i].hardware) for i in idx)
        dev = {k for k, n in counts.items() if n >= MIN_DEVICE_ROWS}
        fam = {(bases[i], rs.families[i]) for i in idx}
        eng = {bases[i] for i in idx}
        for i in np.where(~train)[0]:
            b = bases[i]
            out[i] = ("device" if (b, rs.rows[i].hardware) in dev else "family" if (b, rs.families[i]) in fam
                      else "engine" if b in eng else "uncalibrated")
    return out


def _chains(rs, kinds, pooled: bool) -> list:
    out = []
    for e, f, k in zip(rs.engines, rs.families, kinds):
        b = base_engine(e)
        out.append([("*", f, k), ("*", "*", k)] if pooled else
                   [(e, f, k), (e, "*", k)] + ([(b, f, k), (b, "*", k)] if b != e else []) + [("*", "*", k)])
    return out


def _quantiles(r: np.ndarray, use: np.ndarray, chains: list, min_n: int, engines) -> dict:
    from costmodel.calibration.fit import MIN_POOLED_ENGINES

    groups: dict = {}
    seen: dict = {}
    for i in np.where(use & np.isfinite(r))[0]:
        for key in chains[i]:
            groups.setdefault(key, []).append(r[i])
            seen.setdefault(key, set()).add(engines[i])
    return {k: (float(np.percentile(v, 10)), float(np.percentile(v, 90))) for k, v in groups.items()
            if len(v) >= min_n and not (k[0] == "*" and k[1] != "*" and len(seen[k]) < MIN_POOLED_ENGINES)}


def nested_bands(rs, labels, levels, pools: dict, kind_of=None, min_n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per row from `pools` {level: [r arrays]} without the row's group (NaN: no band)."""
    from costmodel.calibration.measurements import METRIC_KIND

    kind_of = kind_of or METRIC_KIND.__getitem__
    kinds = [kind_of(r.metric) for r in rs.rows]
    chains = {p: _chains(rs, kinds, p) for p in (False, True)}
    bases = [base_engine(e) for e in rs.engines]
    labels = np.asarray(labels, dtype=object)
    lo, hi = np.full(len(rs), np.nan), np.full(len(rs), np.nan)
    for g in set(labels):
        held = labels == g
        cache: dict = {}
        for i in np.where(held)[0]:
            pooled = levels[i] == "uncalibrated"
            for n, r in enumerate(pools.get(levels[i], ())):
                if (levels[i], n) not in cache:
                    cache[(levels[i], n)] = _quantiles(r, ~held, chains[pooled], min_n, bases)
                q = next((cache[(levels[i], n)][k] for k in chains[pooled][i] if k in cache[(levels[i], n)]), None)
                if q is not None:
                    lo[i] = q[0] if np.isnan(lo[i]) else min(lo[i], q[0])
                    hi[i] = q[1] if np.isnan(hi[i]) else max(hi[i], q[1])
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


def needed_factor(r: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The smallest w >= 1 whose widened band (`widen`) holds r, per row (inf for a zero-width band)."""
    half = (hi - lo) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 + np.where(r > hi, (r - hi) / half, np.where(r < lo, (lo - r) / half, 0.0))


def widen(lo: float, hi: float, w: float) -> tuple[float, float]:
    """A band [lo, hi] (lo <= 0 <= hi) widened by w: each side moves out by (w - 1) half-widths, so a
    band on one side of zero (a biased engine) widens on both."""
    half = (hi - lo) / 2
    return lo - (w - 1) * half, hi + (w - 1) * half


def widening(factors: np.ndarray) -> float | None:
    """The factor that holds NOMINAL of the rows (their NOMINAL quantile of needed factors); None
    without rows or where no finite factor does."""
    f = factors[~np.isnan(factors)]
    if not len(f):
        return None
    w = float(max(1.0, np.quantile(f, NOMINAL, method="inverted_cdf")))
    return w if np.isfinite(w) else None
