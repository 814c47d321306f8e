"""Fit the engine's efficiency and overhead parameters to measurements.

Least squares on log(predicted / measured) (scipy, soft-L1 loss), hierarchical per engine:
  compute_efficiency = sigmoid(a_engine + a_family + a_device)
  memory_efficiency  = sigmoid(b_engine + b_family + b_device)
  step_overhead_s    = exp(c_engine + c_family)
  kernel_overhead_s  = exp(k_engine),  compute_half_rows = exp(h_engine)
  matmul scale of the int / fp8 / fp4 paths = exp(s_engine,class)
A build of an engine (`llama.cpp/vulkan`) adds its own offsets to a, b and c on each device family
it was measured on (elsewhere it is its engine): its rows share every other parameter with the
engine's. Its prior is tighter than a family's, so a family measured only through builds takes their
common part in its own offset, and the engine without a build lands near their average.
Family, device and datatype offsets are shrunk toward 0 by Gaussian priors (penalty
residuals), so a device without measurements gets its family's fit on top of its datasheet.
Leave-one-device-out refits without a device and predicts it with its family's values.
"""
from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass

import numpy as np

from costmodel.calibration.intervals import band_index, band_keys, band_quantiles
from costmodel.calibration.predict import RowSet, predict, with_rows
from costmodel.engine.fast import enabled as fast_enabled
from costmodel.spec.engine_params import base_engine

CLASSES = ("int", "fp8", "fp4")
NOT_FITTED_ENGINES = ("ideal",)
PRIOR = {"engine": 3.0, "family": 1.0, "device": 0.5, "dtype": 1.0, "build": 0.7}  # prior sd of each level (logit/log units)
NOISE = 0.2  # typical |log error| of one measurement, scales the priors into residual units
MIN_DEVICE_ROWS = 4
ROBUST_SCALE = 0.3  # log-error scale above which a row's influence grows linearly, not quadratically


def dtype_class(dtype: str) -> str | None:
    if dtype.startswith("int"):
        return "int"
    return {"fp8": "fp8", "fp6": "fp8", "fp4": "fp4"}.get(dtype)


def _logit(p):
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@dataclass
class Layout:
    """Where each parameter lives in the vector, and which parameters each row uses."""

    names: list  # (level, engine, key, param)
    prior_sd: np.ndarray
    prior_mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    row_idx: dict  # param kind -> list of parameter-index arrays per row level
    engines: list  # engines fitted (without builds)
    builds: list = None  # (engine/build, family) pairs with their own offsets


def build_key(build: str, family: str) -> str:
    """Parameter key of a build's offsets on one device family."""
    return f"{build}@{family}"


def build_layout(rs: RowSet, min_device_rows: int = MIN_DEVICE_ROWS) -> Layout:
    from costmodel.spec.engine_params import efficiency_for

    names, sd, mean, lo, hi = [], [], [], [], []

    def add(key, prior_mean, prior_sd, low, high):
        names.append(key)
        mean.append(prior_mean)
        sd.append(prior_sd)
        lo.append(low)
        hi.append(high)

    bases = [base_engine(e) for e in rs.engines]
    engines = sorted({e for e in bases if e not in NOT_FITTED_ENGINES})
    builds = sorted({(e, f) for e, f in zip(rs.engines, rs.families) if "/" in e and base_engine(e) in engines})
    counts: dict = {}
    for d, e in zip((r.hardware for r in rs.rows), bases):
        counts[(e, d)] = counts.get((e, d), 0) + 1
    for e in engines:
        base = efficiency_for("-", "-", "ideal")  # global defaults are the engine-level prior means
        add(("engine", e, "", "ec"), _logit(base.compute_efficiency), PRIOR["engine"], -6, 6)
        add(("engine", e, "", "em"), _logit(base.memory_efficiency), PRIOR["engine"], -6, 6)
        add(("engine", e, "", "ko"), np.log(base.kernel_overhead_s), PRIOR["engine"], np.log(1e-8), np.log(1e-3))
        add(("engine", e, "", "so"), np.log(1e-4), PRIOR["engine"] * 2, np.log(1e-7), np.log(0.5))
        add(("engine", e, "", "hr"), np.log(base.compute_half_rows), PRIOR["engine"], 0.0, np.log(4096))
        fams = sorted({f for f, ee in zip(rs.families, bases) if ee == e})
        for f in fams:
            for p_ in ("ec", "em", "so"):
                add(("family", e, f, p_), 0.0, PRIOR["family"], -8, 8)
        for (ee, d), c in sorted(counts.items()):
            if ee == e and c >= min_device_rows:
                for p_ in ("ec", "em"):
                    add(("device", e, d, p_), 0.0, PRIOR["device"], -8, 8)
        for c in sorted({dtype_class(t) for t, ee in zip(rs.dtypes, bases) if ee == e} - {None}):
            add(("dtype", e, c, "scale"), 0.0, PRIOR["dtype"], np.log(0.02), np.log(4.0))
        for b, f in builds:
            if base_engine(b) == e:
                for p_ in ("ec", "em", "so"):
                    add(("build", e, build_key(b, f), p_), 0.0, PRIOR["build"], -8, 8)
    pos = {k: i for i, k in enumerate(names)}
    row_idx: dict = {k: [] for k in ("ec", "em", "so", "ko", "hr", "scale")}
    n_rows = len(rs)
    def lists_of(e, f, d, dtype, b) -> dict:
        """Parameter indices of each kind for a row of engine e (build b) on device d of family f."""
        if e not in engines:
            return {k: [] for k in row_idx}
        c = dtype_class(dtype)
        bk = build_key(b, f)
        out = {k: [pos[x] for x in (("engine", e, "", k), ("family", e, f, k), ("device", e, d, k),
                                    ("build", e, bk, k)) if x in pos] for k in ("ec", "em")}
        out["so"] = [pos[x] for x in (("engine", e, "", "so"), ("family", e, f, "so"), ("build", e, bk, "so"))
                     if x in pos]
        out["ko"] = [pos[("engine", e, "", "ko")]]
        out["hr"] = [pos[("engine", e, "", "hr")]]
        out["scale"] = [pos[("dtype", e, c, "scale")]] if c and ("dtype", e, c, "scale") in pos else []
        return out

    known: dict = {}  # rows of one engine, build, device and datatype share their indices
    for i, r in enumerate(rs.rows):
        key = (bases[i], rs.families[i], r.hardware, rs.dtypes[i], rs.engines[i])
        if key not in known:
            known[key] = lists_of(*key)
        for k, ix in known[key].items():
            row_idx[k].append(ix)
    dummy = len(names)  # padding index -> a parameter fixed at 0
    padded = {}
    for k, lists in row_idx.items():
        width = max([len(x) for x in lists] + [1])
        padded[k] = np.array([ix + [dummy] * (width - len(ix)) for ix in lists], dtype=int).reshape(n_rows, width)
    fitted_rows = np.array([bool(x) for x in row_idx["ec"]], dtype=bool) if n_rows else np.zeros(0, bool)
    return Layout(names, np.array(sd), np.array(mean), np.array(lo, float), np.array(hi, float),
                  {"lists": row_idx, **padded, "fitted": fitted_rows}, engines, builds)


KINDS = ("ec", "em", "so", "ko", "hr", "scale")  # the row-level quantities the parameters sum into


def levels(theta: np.ndarray, layout: Layout) -> dict:
    """Per row and kind, the sum of the parameters of the row's levels (engine + family + device + build)."""
    ext = np.append(theta, 0.0)
    return {k: ext[layout.row_idx[k]].sum(axis=1) for k in KINDS}


def overrides(theta: np.ndarray, layout: Layout, rs: RowSet) -> tuple[dict, dict]:
    """Per-row hardware/format column overrides for a parameter vector (rows of unfitted engines keep theirs)."""
    return overrides_at(levels(theta, layout), layout, rs)


def overrides_at(level: dict, layout: Layout, rs: RowSet) -> tuple[dict, dict]:
    """The overrides of per-row levels (`levels`)."""
    ri = layout.row_idx
    fitted = ri["fitted"]
    hw = {
        "compute_efficiency": np.where(fitted, _sigmoid(level["ec"]), rs.hw["compute_efficiency"]),
        "memory_efficiency": np.where(fitted, _sigmoid(level["em"]), rs.hw["memory_efficiency"]),
        "step_overhead_s": np.where(fitted, np.exp(level["so"]), rs.hw["step_overhead_s"]),
        "kernel_overhead_s": np.where(fitted, np.exp(level["ko"]), rs.hw["kernel_overhead_s"]),
        "compute_half_rows": np.where(fitted, np.exp(level["hr"]), rs.hw["compute_half_rows"]),
    }
    f = {"peak_matmul": np.where(fitted, rs.f["peak_raw"] * np.exp(level["scale"]), rs.f["peak_matmul"])}
    return hw, f


def log_errors(theta, layout, rs) -> np.ndarray:
    hw, f = overrides(theta, layout, rs)
    pred, _ = predict(rs, hw, f)
    return np.log(pred / rs.measured)


def fit(rs: RowSet, layout: Layout, theta0: np.ndarray | None = None, max_nfev: int = 100) -> np.ndarray:
    """Least-squares fit of the parameter vector (rows of fitted engines only), with the Jacobian of
    `row_jacobian`."""
    from scipy.optimize import least_squares

    use = layout.row_idx["fitted"]
    weights = NOISE / layout.prior_sd

    fast = fast_enabled()  # the compiled kernels for the fit's evaluations where numba is installed

    def data(level):
        err = np.log(predict(rs, *overrides_at(level, layout, rs), fast=fast)[0] / rs.measured)
        return soft_l1(np.where(use & np.isfinite(err), err, 0.0))

    last: dict = {}  # the data residuals at the last point: scipy asks for the Jacobian where it evaluated

    def residuals(theta):
        last["theta"], last["data"] = theta.copy(), data(levels(theta, layout))
        return np.concatenate([last["data"], weights * (theta - layout.prior_mean)])

    x0 = layout.prior_mean.copy() if theta0 is None else np.clip(theta0, layout.lower + 1e-9, layout.upper - 1e-9)
    x0 = np.clip(x0, layout.lower + 1e-9, layout.upper - 1e-9)
    sol = least_squares(residuals, x0, bounds=(layout.lower, layout.upper), loss="linear",
                        jac=row_jacobian(data, layout, weights, len(rs), last), x_scale=1.0, max_nfev=max_nfev,
                        ftol=1e-5, xtol=1e-5, gtol=1e-6)
    return sol.x


def soft_l1(err: np.ndarray) -> np.ndarray:
    """The data residuals' robust form: sign(e)·s·sqrt(2(sqrt(1 + (e/s)²) − 1)), quadratic below the scale
    s = ROBUST_SCALE and linear above it (robust to outlying rows); the priors stay quadratic."""
    return np.sign(err) * ROBUST_SCALE * np.sqrt(2 * (np.sqrt(1 + (err / ROBUST_SCALE) ** 2) - 1))


def row_jacobian(data, layout: Layout, weights: np.ndarray, n_rows: int, last: dict | None = None):
    """Jacobian of the residuals, d r/d theta, from 1 + len(KINDS) evaluations: row i's residual depends on
    the parameters only through its own levels (the engine evaluates rows independently), so raising one
    kind's level on every row at once gives every row's derivative in it (forward differences, step
    sqrt(eps)·max(1, |level|) as scipy's 2-point scheme); a parameter's column sums the derivatives of the
    rows whose levels include it. Finite differences over the parameters cost one evaluation per group of
    structurally independent columns (409 evaluations per fit of the shipped set against 184 here).
    `last`: the data residuals at the point scipy evaluated last, reused when it asks for the Jacobian there."""
    from scipy.sparse import coo_matrix

    n_p = len(layout.names)
    ri = layout.row_idx
    rows, cols, kinds = [], [], []
    for kind_i, k in enumerate(KINDS):
        r, slot = np.nonzero(ri[k] < n_p)  # padding indices point past the parameters
        rows.append(r)
        cols.append(ri[k][r, slot])
        kinds.append(np.full(len(r), kind_i))
    rows, cols, kinds = (np.concatenate(x) for x in (rows, cols, kinds))
    prior = np.arange(n_p)
    all_rows = np.concatenate([rows, n_rows + prior])
    all_cols = np.concatenate([cols, prior])
    step = np.sqrt(np.finfo(float).eps)

    def jac(theta, *_):
        level = levels(theta, layout)
        known = last is not None and "theta" in last and np.array_equal(last["theta"], theta)
        base = last["data"] if known else data(level)
        deriv = np.empty((len(KINDS), n_rows))
        for kind_i, k in enumerate(KINDS):
            h = step * np.maximum(1.0, np.abs(level[k]))
            deriv[kind_i] = (data({**level, k: level[k] + h}) - base) / h
        values = np.concatenate([deriv[kinds, rows], weights])
        return coo_matrix((values, (all_rows, all_cols)), shape=(n_rows + n_p, n_p)).tocsr()

    return jac


def tables_from(theta: np.ndarray, layout: Layout) -> dict:
    """Absolute parameter values per engine -> global / families / devices, for fitted.yaml."""
    val = dict(zip(layout.names, theta))
    out: dict = {}
    for e in layout.engines:
        g = {k: val[("engine", e, "", k)] for k in ("ec", "em", "ko", "so", "hr")}
        eng = {"global": {"compute_efficiency": _sigmoid(g["ec"]), "memory_efficiency": _sigmoid(g["em"]),
                          "kernel_overhead_s": np.exp(g["ko"]), "step_overhead_s": np.exp(g["so"]),
                          "compute_half_rows": np.exp(g["hr"])},
               "families": {}, "devices": {}}
        for c in CLASSES:
            key = ("dtype", e, c, "scale")
            if key in val:
                eng["global"][f"{c}_matmul_scale"] = np.exp(val[key])
        for (level, ee, k, p_), v in val.items():
            if ee != e or level != "family":
                continue
            fam = eng["families"].setdefault(k, {})
            if p_ == "ec":
                fam["compute_efficiency"] = _sigmoid(g["ec"] + v)
            elif p_ == "em":
                fam["memory_efficiency"] = _sigmoid(g["em"] + v)
            else:
                fam["step_overhead_s"] = np.exp(g["so"] + v)
        out[e] = eng
    for b, fam in layout.builds or ():  # a build's blocks only where it was measured
        e = base_engine(b)
        logits = {p_: val[("engine", e, "", p_)] + val[("family", e, fam, p_)] for p_ in ("ec", "em", "so")}
        out.setdefault(b, {"global": {}, "families": {}, "devices": {}})["families"][fam] = _absolute(
            logits, {p_: val[("build", e, build_key(b, fam), p_)] for p_ in ("ec", "em", "so")})
    return out


def _absolute(logits: dict, offsets: dict) -> dict:
    """Efficiencies and step overhead from summed logits (ec, em) and log (so) plus a build's offsets."""
    return {"compute_efficiency": _sigmoid(logits["ec"] + offsets["ec"]),
            "memory_efficiency": _sigmoid(logits["em"] + offsets["em"]),
            "step_overhead_s": np.exp(logits["so"] + offsets["so"])}


def device_tables(theta, layout, rs) -> dict:
    """Per-device absolute efficiencies (device offsets on top of their family)."""
    val = dict(zip(layout.names, theta))
    out: dict = {}
    for i, r in enumerate(rs.rows):
        e, fam, d = base_engine(rs.engines[i]), rs.families[i], r.hardware
        if ("device", e, d, "ec") not in val:
            continue
        ec = val[("engine", e, "", "ec")] + val[("family", e, fam, "ec")] + val[("device", e, d, "ec")]
        em = val[("engine", e, "", "em")] + val[("family", e, fam, "em")] + val[("device", e, d, "em")]
        out.setdefault(e, {})[d] = {"compute_efficiency": _sigmoid(ec), "memory_efficiency": _sigmoid(em)}
        for b, bf in layout.builds or ():  # a build measured on this device's family: its offsets on top
            if base_engine(b) == e and bf == fam:
                k = build_key(b, fam)
                out.setdefault(b, {})[d] = {"compute_efficiency": _sigmoid(ec + val[("build", e, k, "ec")]),
                                            "memory_efficiency": _sigmoid(em + val[("build", e, k, "em")])}
    return out


def leave_one_device_out(rs: RowSet, theta_full: np.ndarray | None = None, full_layout: Layout | None = None,
                         progress=None) -> np.ndarray:
    """Out-of-sample log errors: each device predicted by a fit that never saw it."""
    return leave_one_group_out(rs, "device", theta_full, full_layout, progress)


GROUPS = {"device": lambda r, e: r.hardware, "source": lambda r, e: r.source, "engine": lambda r, e: base_engine(e)}


def leave_one_group_out(rs: RowSet, by: str, theta_full: np.ndarray | None = None, full_layout: Layout | None = None,
                        progress=None, folds: dict | None = None) -> np.ndarray:
    """Out-of-sample log errors: each group (device, source or engine) predicted by a fit that never
    saw it. A held-out device gets its family's values; a held-out source keeps the offsets of devices
    other sources measured; a held-out engine falls back to the sourced defaults and its documented
    limits (no fitted value of its own). `folds`, when given, receives {group: (layout, theta)}."""
    key = GROUPS[by]
    labels = [key(r, e) for r, e in zip(rs.rows, rs.engines)]
    errors = np.full(len(rs), np.nan)
    groups = sorted(set(labels))
    for n, g in enumerate(groups):
        held = np.array([x == g for x in labels])
        train = with_rows(rs, ~held)
        test = with_rows(rs, held)
        if not len(train):
            continue
        lay = build_layout(train)
        start = None
        if theta_full is not None and full_layout is not None:  # warm start from the full fit
            val = dict(zip(full_layout.names, theta_full))
            start = np.array([val.get(k, m) for k, m in zip(lay.names, lay.prior_mean)])
        theta = fit(train, lay, start) if lay.names else np.zeros(0)
        if folds is not None:
            folds[g] = (lay, theta)
        lay_test = transfer(lay, theta, test, device_offsets=by != "device")
        errors[held] = log_errors(lay_test[1], lay_test[0], test)
        if progress:
            progress(n + 1, len(groups), g)
    return errors


def transfer(layout: Layout, theta: np.ndarray, rs: RowSet, device_offsets: bool = False) -> tuple[Layout, np.ndarray]:
    """Layout for new rows whose parameters come from a fit on other rows (missing levels = 0)."""
    # a held-out device never gets an offset; for a held-out source, devices the fit saw keep theirs
    lay = build_layout(rs, min_device_rows=1 if device_offsets else 10**9)
    val = dict(zip(layout.names, theta))
    new = np.array([val.get(k, 0.0 if k[0] != "engine" else m) for k, m in zip(lay.names, lay.prior_mean)])
    return lay, new


def summarize(log_err: np.ndarray, rows, detailed: bool = False) -> dict:
    """Median / P90 absolute percentage error and bias per metric and per engine ('engine:NAME'),
    with `detailed` also per engine and metric ('NAME:METRIC'), per load mode ('load:MODE') and
    per load mode and metric ('MODE:METRIC') (|pred/meas - 1|)."""
    out = {}
    ape = np.abs(np.exp(log_err) - 1)
    metrics = sorted({r.metric for r in rows})
    # an engine's group holds its builds' rows too ('engine:llama.cpp' and 'engine:llama.cpp/vulkan')
    engines = sorted({r.framework for r in rows} | {base_engine(r.framework) for r in rows})
    is_ = lambda r, e: r.framework == e or base_engine(r.framework) == e  # noqa: E731
    groups = [(m, lambda r, m=m: r.metric == m) for m in metrics]
    if len(engines) > 1:
        groups += [(f"engine:{e}", lambda r, e=e: is_(r, e)) for e in engines]
    if detailed:
        groups += [(f"{e}:{m}", lambda r, e=e, m=m: is_(r, e) and r.metric == m) for e in engines for m in metrics]
        loads = sorted({r.load_mode for r in rows})
        groups += [(f"load:{x}", lambda r, x=x: r.load_mode == x) for x in loads]
        groups += [(f"{x}:{m}", lambda r, x=x, m=m: r.load_mode == x and r.metric == m) for x in loads for m in metrics]
    for m, keep in groups + [("all", lambda r: True)]:
        sel = np.array([keep(r) for r in rows], dtype=bool) & np.isfinite(ape)
        if sel.any():
            out[m] = {"n": int(sel.sum()), "median_ape": float(np.median(ape[sel])), "mean_ape": float(np.mean(ape[sel])),
                      "p90_ape": float(np.percentile(ape[sel], 90)),
                      "bias": float(np.median(np.exp(log_err[sel]) - 1))}
    return out


def intervals_from(log_err: np.ndarray, rs: RowSet, lo_q: float = 10, hi_q: float = 90, min_n: int = 8,
                   kind_of=None) -> dict:
    """Quantiles of r = log(measured time / predicted time) per (engine, family, kind), with fallbacks;
    `kind_of(metric)` names a row's residual kind (default: METRIC_KIND)."""
    from costmodel.calibration.measurements import METRIC_KIND

    kind_of = kind_of or METRIC_KIND.__getitem__
    from costmodel.calibration.measurements import r_time as to_r_time

    r_time = to_r_time(log_err, rs.rows)
    keys = []
    for row, e, f in zip(rs.rows, rs.engines, rs.families):
        kind = kind_of(row.metric)
        keys.append(band_keys(e, f, kind) + band_keys(e, f, kind, pooled=True)[:1] + [("*", "*", "*")])
    out: dict = {}
    for (e, f, k), (lo, hi, n) in band_quantiles(r_time, band_index(keys, [base_engine(e) for e in rs.engines]), min_n,
                                                lo_q, hi_q).items():
        out.setdefault(e, {}).setdefault(f, {})[k] = {"low": lo, "high": hi, "n": n}
    return out


def file_digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]


def today() -> str:
    return datetime.date.today().isoformat()
