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
(w - 1) half-widths (intervals.widen);
w is the smallest factor that holds 80 % of the level's held-out rows (split conformal, Vovk et al.
2005), at least 1; an engine with MIN_WIDEN_ROWS held-out rows of a level gets its own. Coverage is reported with w chosen without the scored group (doubly nested),
so the figure is itself out of sample.
"""
from __future__ import annotations

import numpy as np

from costmodel.calibration.intervals import LEVEL_OF_WIDENING, band_index, band_keys, band_quantiles
from costmodel.calibration.measurements import load_kind, r_time
from costmodel.spec.engine_params import base_engine

NOMINAL = 0.8
MIN_WIDEN_ROWS = 30  # held-out rows of an engine at one level before it gets a widening of its own
PER_ENGINE_LEVELS = ("device", "new-device", "load")  # an uncalibrated engine is by definition unseen


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


def nested_bands(rs, labels, levels, pools: dict, kind_of=None, min_n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) per row from `pools` {level: [r arrays]} without the row's group (NaN: no band)."""
    from costmodel.calibration.measurements import METRIC_KIND

    kind_of = kind_of or METRIC_KIND.__getitem__
    keys = {p: [band_keys(e, f, kind_of(r.metric), p) for r, e, f in zip(rs.rows, rs.engines, rs.families)]
            for p in (False, True)}
    bases = [base_engine(e) for e in rs.engines]
    index = {p: band_index(keys[p], bases) for p in (False, True)}
    labels = np.asarray(labels, dtype=object)
    lo, hi = np.full(len(rs), np.nan), np.full(len(rs), np.nan)
    for g in set(labels):
        held = labels == g
        cache: dict = {}
        for i in np.where(held)[0]:
            pooled = levels[i] == "uncalibrated"
            for n, r in enumerate(pools.get(levels[i], ())):
                if (levels[i], n) not in cache:
                    cache[(levels[i], n)] = band_quantiles(np.where(held, np.nan, r), index[pooled], min_n)
                q = next((cache[(levels[i], n)][k] for k in keys[pooled][i] if k in cache[(levels[i], n)]), None)
                if q is not None:
                    lo[i] = q[0] if np.isnan(lo[i]) else min(lo[i], q[0])
                    hi[i] = q[1] if np.isnan(hi[i]) else max(hi[i], q[1])
    return np.minimum(lo, 0.0), np.maximum(hi, 0.0)


def needed_factor(r: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The smallest w >= 1 whose widened band (intervals.widen) holds r, per row (inf for a zero-width band)."""
    half = (hi - lo) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 + np.where(r > hi, (r - hi) / half, np.where(r < lo, (lo - r) / half, 0.0))


def widening(factors: np.ndarray) -> float | None:
    """The factor that holds NOMINAL of the rows (their NOMINAL quantile of needed factors); None
    without rows or where no finite factor does."""
    f = factors[~np.isnan(factors)]
    if not len(f):
        return None
    w = float(max(1.0, np.quantile(f, NOMINAL, method="inverted_cdf")))
    return w if np.isfinite(w) else None


def held_out_coverage(rs, lodo, loso, loeo) -> tuple[dict, dict]:
    """({split: coverage}, {level: widening}) of the 80% band on each held-out split: each row's
    band built without its group from the residuals of its level in that fold (a new device: the
    leave-one-source-out and leave-one-device-out pools unioned; a new engine: leave-one-engine-out,
    pooled over engines), the widening per level the smallest factor that holds 80% of the rows of
    that level (above)."""
    R = {k: r_time(e, rs.rows) for k, e in (("lodo", lodo), ("loso", loso), ("loeo", loeo)) if e is not None}
    pools = {"device": [R["loso"]], "family": [R["loso"], R["lodo"]], "engine": [R["loso"], R["lodo"]]}
    if "loeo" in R:
        pools["uncalibrated"] = [R["loeo"]]
    splits = {"device": ("lodo", [r.hardware for r in rs.rows]), "source": ("loso", [r.source for r in rs.rows])}
    if "loeo" in R:
        splits["engine"] = ("loeo", [base_engine(e) for e in rs.engines])
    entries = []  # (split, labels, row index, widening level, needed factor)
    for name, (key, labels) in splits.items():
        levels = fold_levels(rs, labels)
        lo, hi = nested_bands(rs, labels, levels, pools)
        f = needed_factor(R[key], lo, hi)
        for i in np.where(np.isfinite(R[key]) & np.isfinite(lo))[0]:
            entries.append((name, labels[i], i, LEVEL_OF_WIDENING[levels[i]], f[i]))
    return coverage_of(entries, rs.engines)


def served_coverage(rs, err) -> tuple[dict, dict]:
    """Held-out coverage and widening of the load bands: each source's rows against bands from the
    other sources' leave-one-source-out residuals (level `load`)."""
    r = r_time(err, rs.rows)
    labels = [x.source for x in rs.rows]
    levels = np.array(["load"] * len(rs), dtype=object)
    lo, hi = nested_bands(rs, labels, levels, {"load": [r]}, kind_of=load_kind)
    f = needed_factor(r, lo, hi)
    entries = [("serving_source", labels[i], i, "load", f[i]) for i in np.where(np.isfinite(r) & np.isfinite(lo))[0]]
    return coverage_of(entries, rs.engines)


def coverage_of(entries: list, engines) -> tuple[dict, dict]:
    """Coverage per split (widening chosen without each scored group) and the widening per level,
    and per level and engine where the engine has MIN_WIDEN_ROWS rows of that level. A level's
    widening is the largest its splits need: a device unseen together with its source (leave one
    source out) needs more than one whose source measured its siblings (leave one device out)."""
    level = np.array([e[3] for e in entries], dtype=object)
    factor = np.array([e[4] for e in entries], dtype=float)
    row = np.array([e[2] for e in entries])
    split = np.array([e[0] for e in entries], dtype=object)
    labels = np.array([e[1] for e in entries], dtype=object)
    eng = np.array([base_engine(engines[i]) for i in row], dtype=object)
    own = np.array([f"{L}:{e}" for L, e in zip(level, eng)], dtype=object)
    counts = {k: int(np.sum(own == k)) for k in set(own)}
    key = np.array([k if counts[k] >= MIN_WIDEN_ROWS and L in PER_ENGINE_LEVELS else L
                    for k, L in zip(own, level)], dtype=object)

    def widest(sel: np.ndarray) -> float | None:
        ws = [widening(factor[sel & (split == s)]) for s in dict.fromkeys(split)]
        ws = [w for w in ws if w is not None]
        return max(ws) if ws else None

    widen = {k: widest(key == k) for k in sorted(set(key))}
    widen.update({L: widest(level == L) for L in sorted(set(level))})
    widen = {k: w for k, w in widen.items() if w is not None}
    inside = np.zeros(len(entries), dtype=bool)
    for name in dict.fromkeys(split):
        for g in set(labels[split == name]):
            held = (split == name) & (labels == g)
            other = ~np.isin(row, row[held])
            for k in set(key[held]):
                # no other group has this engine at this level: the level's factor; none: no widening
                w = widest(other & (key == k)) or widest(other & (level == k.split(":")[0])) or 1.0
                inside[held & (key == k)] = factor[held & (key == k)] <= w
    out = {}
    for name in dict.fromkeys(split):
        sel = split == name
        out[name] = {"n": int(sel.sum()), "covered": float(np.mean(inside[sel])),
                     "covered_before_widening": float(np.mean(factor[sel] <= 1.0)),
                     "by_level": {L: {"covered": float(np.mean(inside[sel & (level == L)])),
                                      "n": int(np.sum(sel & (level == L)))} for L in sorted(set(level[sel]))},
                     "by_engine": {e: {"covered": float(np.mean(inside[sel & (eng == e)])),
                                       "n": int(np.sum(sel & (eng == e)))} for e in sorted(set(eng[sel]))}}
    return out, widen
