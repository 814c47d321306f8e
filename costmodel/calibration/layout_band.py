"""Error bars for parallel layouts the fit never saw: expert parallelism and DP attention.

Rows measured with EP or DP attention are scored, not fitted (calibration/run.py), so their residuals
r = log(measured time / predicted time) under the fitted parameters are out of sample for the fit.
Their P10-P90 per residual kind (static kinds, or `load_*` under a load) is stored as
`intervals_layout` in fitted.yaml; an estimate with --dp or --ep > 1 takes the union of its usual band
and this one (intervals.lookup / load_band). Held-out coverage: each source's rows against the band
of the other sources' rows (a lower bound: the union with the usual band can only hold more).
"""
from __future__ import annotations

import numpy as np

from costmodel.calibration.measurements import METRIC_KIND, load_kind, r_time


def is_layout_row(r) -> bool:
    """A row measured with expert parallelism or DP attention (scored, not fitted)."""
    return (r.dp > 1 or r.ep > 1) and not r.is_memory


def kind_of(r) -> str:
    return load_kind(r.metric) if r.load_mode in ("closed", "poisson") else METRIC_KIND[r.metric]


def bands(r: np.ndarray, kinds: list, min_n: int = 8) -> dict:
    """{kind: {low, high, n}}: P10 and P90 of the finite residuals of each kind with min_n of them."""
    out = {}
    for k in sorted(set(kinds)):
        v = r[[i for i, x in enumerate(kinds) if x == k]]
        v = v[np.isfinite(v)]
        if len(v) >= min_n:
            out[k] = {"low": float(np.percentile(v, 10)), "high": float(np.percentile(v, 90)), "n": int(len(v))}
    return out


def held_out_coverage(r: np.ndarray, kinds: list, sources: list, usual: list) -> dict:
    """Share of rows inside the band an estimate would show them with their source held out: the
    union of `usual[i]` (the row's band without the layout part, (lo, hi) or None) and the layout
    band built from the other sources' rows; overall and per source."""
    hit, by = [], {}
    for s in sorted(set(sources)):
        mine = [i for i, x in enumerate(sources) if x == s]
        rest = [i for i, x in enumerate(sources) if x != s]
        b = bands(r[rest], [kinds[i] for i in rest])
        for i in mine:
            q, u = b.get(kinds[i]), usual[i]
            if not np.isfinite(r[i]) or (q is None and u is None):
                continue
            lo = min([0.0] + [x["low"] for x in (q,) if x] + [u[0] for u in (u,) if u])
            hi = max([0.0] + [x["high"] for x in (q,) if x] + [u[1] for u in (u,) if u])
            hit.append(lo <= r[i] <= hi)
            by.setdefault(s, []).append(hit[-1])
    return {"covered": float(np.mean(hit)) if hit else None, "n": len(hit),
            "by_source": {s: {"covered": float(np.mean(v)), "n": len(v)} for s, v in by.items()}}


def usual_band(row, engine: str, family: str, level: str):
    """The (lo, hi) band a row gets without the layout part (validate's lookup), or None."""
    from costmodel.calibration.intervals import load_band, lookup

    q = (load_band(kind_of(row), engine, family) if row.load_mode in ("closed", "poisson")
         else lookup(engine, family, (METRIC_KIND[row.metric],), level))
    return None if q is None else (q[0], q[1])


def layout_residuals(rows, engine, theta, layout, overhead: dict):
    """(RowSet, r_time) of the layout rows predicted with the fitted parameters and request overheads."""
    from costmodel.calibration.fit import overrides, transfer
    from costmodel.calibration.predict import predict, prepare

    rs = prepare(rows, engine)
    if not len(rs):
        return rs, np.zeros(0)
    lay, th = transfer(layout, theta, rs, device_offsets=True)
    hw, f = overrides(th, lay, rs)
    over = np.array([overhead[e][0] if e in overhead else 0.0 for e in rs.engines])
    pred, _ = predict(rs, hw_overrides={**hw, "request_overhead_s": over}, f_overrides=f)
    with np.errstate(divide="ignore", invalid="ignore"):
        err = np.log(pred / rs.measured)
    return rs, r_time(err, rs.rows)
