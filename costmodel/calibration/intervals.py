"""Error bars: intervals from calibration residuals that apply to an estimate.

`calibration/fitted.yaml` stores, per (engine, family, metric kind), the 10th and 90th
percentiles of r = log(measured time / predicted time) (`*` = any). An estimate's time metric t
gets [t·e^low, t·e^high]; a rate gets [x·e^-high, x·e^-low]. Which residuals apply depends on how
close the calibration comes to the estimate (Efficiency.calibration_level):
  - fitted on this device: leave-one-source-out residuals (`intervals`);
  - a device the engine was not fitted on (family- or engine-level values): the union of those
    and the leave-one-device-out residuals (`intervals_new_device`);
  - an engine without fitted values: the leave-one-engine-out residuals (`intervals.uncalibrated`,
    per family), i.e. the error of predicting an engine from the others' data and its own limits.
A build (`llama.cpp/vulkan`) uses its own residuals where it has enough, else its engine's.
Each band is then scaled in log space by the widening of its level (`interval_widening`: device,
new-device, uncalibrated, load), the factor that holds 80 % of held-out rows when the band is
built without their source, device or engine (calibration/coverage.py).

An estimate with expert parallelism or DP attention (`--ep`, `--dp` > 1), layouts whose rows are
scored but not fitted, takes the union of its band and the layout rows' own (`intervals_layout`,
calibration/layout_band.py).

Estimates under a load (`serve_load`) use the kinds `load_ttft`, `load_tpot`, `load_itl`,
`load_e2e` (`_tail` for P90/P99) and `load_rate`: quantiles of the leave-one-source-out residuals of
the closed-loop and Poisson rows. An engine with no such rows gets the band pooled over engines,
widened by its uncalibrated band of the matching static kind (`load_interval`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from costmodel.spec.catalog import catalog_key, read_yaml, search_roots

# headline metric -> (residual kind, its fallbacks, "time" or "rate")
HEADLINE = {
    "ttft_s": (("prefill",), "time"),
    "prefill_tokens_per_s": (("prefill",), "rate"),
    "tpot_s": (("decode",), "time"),
    "decode_tokens_per_s": (("decode",), "rate"),
    "e2e_latency_s": (("e2e", "decode"), "time"),
    "throughput_tokens_per_s": (("throughput", "decode"), "rate"),
    "energy_j_per_token": (("e2e", "decode"), "time"),
    "usd_per_million_tokens": (("e2e", "decode"), "time"),
    "usd_per_million_total_tokens": (("e2e", "decode"), "time"),
}


MIN_POOLED_ENGINES = 2  # engines a family's band pooled over engines (an unseen engine's) must come from
# calibration level (Efficiency.calibration_level) -> the widening factor that applies to it
LEVEL_OF_WIDENING = {"device": "device", "family": "new-device", "engine": "new-device", "uncalibrated": "uncalibrated"}


def band_keys(engine: str, family: str, kind: str, pooled: bool = False) -> list:
    """The (engine, family, kind) groups of a residual's band, most specific first: a build's own,
    its engine's, then all engines; `pooled` (an engine without a fit): the family's over all
    engines, then every metric of every engine: an unseen engine's error is its kernels' and
    scheduler's, and one metric's pool is mostly the one engine that measured it (prefill rows are
    llama.cpp's, closed-loop TPOT rows SGLang's), which cannot speak for another (held out, the
    metric's pool held 73% of a new engine's rows, all metrics 80%: README). Residuals are grouped
    under these keys (fit.intervals_from, coverage.py) and an estimate looks its band up in the same
    order (`_find`)."""
    if pooled:
        return [("*", family, kind), ("*", "*", "*")]
    own = dict.fromkeys((engine, engine.partition("/")[0]))
    return [(e, f, kind) for e in own for f in (family, "*")] + [("*", "*", kind)]


@dataclass(frozen=True)
class BandIndex:
    """Each row's band keys (`band_keys`) as (row, key) pairs in row order, built once for any number
    of residual vectors: `names` the keys, `row`/`key`/`engine` per pair (key and engine as ids)."""

    names: tuple
    row: np.ndarray
    key: np.ndarray
    engine: np.ndarray
    pooled: np.ndarray  # per key: a family's band pooled over engines ('*', family, kind)


def band_index(keys: list, engines: list) -> BandIndex:
    """The BandIndex of per-row key lists and each row's engine."""
    ids: dict = {}
    eng_ids: dict = {}
    row, key, eng = [], [], []
    for i, (ks, e) in enumerate(zip(keys, engines)):
        e_id = eng_ids.setdefault(e, len(eng_ids))
        for k in ks:
            row.append(i)
            key.append(ids.setdefault(k, len(ids)))
            eng.append(e_id)
    names = tuple(ids)
    as_int = lambda x: np.array(x, dtype=np.intp)  # noqa: E731
    return BandIndex(names, as_int(row), as_int(key), as_int(eng),
                     np.array([k[0] == "*" and k[1] != "*" for k in names], dtype=bool))


def band_quantiles(r, index: BandIndex, min_n: int, lo_q: float = 10, hi_q: float = 90) -> dict:
    """{key: (P_lo, P_hi, n)} of the finite residuals r grouped under each row's keys (`index`), in the
    order the keys first occur; a family's band pooled over engines needs MIN_POOLED_ENGINES engines
    to speak for an unseen one. Percentiles as numpy's default (linear: `linear_quantiles`)."""
    r = np.asarray(r, dtype=float)
    ok = np.isfinite(r)[index.row]
    pos = np.flatnonzero(ok)
    key, vals = index.key[ok], r[index.row[ok]]
    n_keys = len(index.names)
    n = np.bincount(key, minlength=n_keys)
    order = np.lexsort((vals, key))
    start = np.cumsum(n) - n
    lo = linear_quantiles(vals[order], start, n, lo_q / 100)
    hi = linear_quantiles(vals[order], start, n, hi_q / 100)
    n_eng = int(index.engine.max(initial=0)) + 1
    seen = np.bincount(np.unique(key * n_eng + index.engine[ok]) // n_eng, minlength=n_keys)
    first = np.full(n_keys, len(index.row))
    np.minimum.at(first, key, pos)
    keep = (n > 0) & (n >= min_n) & ~(index.pooled & (seen < MIN_POOLED_ENGINES))
    return {index.names[k]: (float(lo[k]), float(hi[k]), int(n[k]))
            for k in sorted(np.flatnonzero(keep), key=first.__getitem__)}


def linear_quantiles(sorted_vals: np.ndarray, start: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of each group sorted_vals[start : start + n] (sorted, n >= 1; NaN where n = 0) by
    linear interpolation at index (n − 1)·q, as numpy.quantile's default: a + (b − a)·γ, or
    b − (b − a)·(1 − γ) for γ >= 0.5 (numpy's _lerp, the same bits)."""
    if not len(sorted_vals):  # no values: every group empty
        return np.full(len(n), np.nan)
    some = n > 0
    virtual = (n - 1) * q
    prev = np.floor(virtual)
    last = virtual >= n - 1
    i = np.where(last, n - 1, prev).astype(np.intp)
    j = np.where(last, n - 1, prev + 1).astype(np.intp)
    a = sorted_vals[np.where(some, start + i, 0)]
    b = sorted_vals[np.where(some, start + j, 0)]
    gamma = virtual - prev
    diff = b - a
    out = np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)
    return np.where(some, out, np.nan)


def widen(lo: float, hi: float, w: float) -> tuple[float, float]:
    """A band [lo, hi] (lo <= 0 <= hi) widened by w: each side moves out by (w - 1) half-widths, so a
    band on one side of zero (a biased engine) widens on both."""
    half = (hi - lo) / 2
    return lo - (w - 1) * half, hi + (w - 1) * half


def _merge(table: dict, origin: dict, bands: dict, basis: str) -> None:
    """One file's {engine: {family: {kind: band}}} into `table`, group by group: a group no earlier file holds takes
    the file's band, one that an earlier file holds takes the band of more residuals (a user calibration of one
    device, 8-12 rows, leaves the shipped bands of hundreds; a refit of the shipped set and more replaces them).
    `origin` records each group's basis."""
    for e, fams in _groups(bands):
        for f, kinds in _groups(fams):
            have = table.setdefault(e, {}).setdefault(f, {})
            for k, q in _groups(kinds):  # a band left empty (null) is no band, as lookup read it before
                if _more_residuals(q, have.get(k)):
                    have[k] = q
                    origin[(e, f, k)] = basis


def _more_residuals(band: dict, old: dict | None) -> bool:
    """A file's band takes a group no earlier file holds, or one whose band has no more residuals (n)."""
    return old is None or band.get("n", 0) >= old.get("n", 0)


def _groups(block) -> list:
    """A calibration file's {key: dict} block as (key, dict) pairs, entries that are not mappings left out."""
    return [(k, v) for k, v in block.items() if isinstance(v, dict)] if isinstance(block, dict) else []


@functools.lru_cache(maxsize=None)
def _table(path_env: str) -> tuple[dict, dict, dict, dict]:
    """(bands, each group's basis, leave-one-device-out bands, {basis: widening factors}) of every calibration file,
    the shipped one first and a user's over it (`_merge`). A band is widened by the factors of the file it came
    from, and for a level that file does not state, by the first file's that does (a one-device calibration
    carries none)."""
    table: dict = {}
    origin: dict = {}
    new_device: dict = {}
    stated: dict = {}  # basis -> that file's own factors
    fallback: dict = {}  # each level's factor from the first file stating it
    _layout.clear()
    for root in reversed(search_roots()):
        folder = root / "calibration"
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                doc = read_yaml(path) or {}
                if doc.get("intervals"):
                    prov = doc.get("provenance") or {}
                    basis = (f"P10-P90 of {prov.get('interval_residuals', 'calibration')} residuals, "
                             f"calibration/{path.name} ({prov.get('date', '?')})")
                    _merge(table, origin, doc["intervals"], basis)
                    _merge(new_device, {}, doc.get("intervals_new_device") or {}, basis)
                    factors = doc.get("interval_widening")  # 'level' or 'level:engine' -> factor
                    stated[basis] = dict(factors) if isinstance(factors, dict) else {}
                    for key, w in stated[basis].items():
                        fallback.setdefault(key, w)
                    for kind, q in _groups(doc.get("intervals_layout")):
                        if _more_residuals(q, _layout.get(kind)):
                            _layout[kind] = q
    return table, origin, new_device, {basis: {**fallback, **own} for basis, own in stated.items()}


_layout: dict = {}  # kind -> band of the EP / DP-attention rows, read with the table


def _with_layout(lo: float, hi: float, kind: str, where: str) -> tuple[float, float, str]:
    """The band united with the EP / DP-attention rows' band of the same kind, where there is one."""
    q = _layout.get(kind)
    if not q:
        return lo, hi, where + "; no EP/DP-attention band for this kind"
    return (min(lo, q["low"]), max(hi, q["high"]),
            where + f"; united with the EP/DP-attention rows' band (scored, not fitted; n={q['n']})")


def _widened(lo: float, hi: float, level: str, factors: dict, engine: str = "") -> tuple[float, float, str]:
    """The band held to its estimate (lo <= 0 <= hi) and widened by its level's (and engine's) factor."""
    w = float(factors.get(f"{level}:{engine.partition('/')[0]}", factors.get(level, 1.0)))
    lo, hi = widen(min(lo, 0.0), max(hi, 0.0), w)
    return lo, hi, (f"; widened x{w:.3g} to hold 80% of held-out {level} data" if w != 1.0 else "")


def _find(table: dict, engine: str, family: str, kinds: tuple, catch_all: bool = True):
    """(quantiles, engine key, family key, kind) of the most specific group of `table`, or None: every
    kind's own groups first (a metric's fallback kinds included), then the catch-all of every metric
    (`band_keys`' last group for an engine without a fit; its kind is reported as '*'), unless
    `catch_all` is False (a load band: static metrics' residuals do not speak for a load)."""
    known = any(k[0] in table for k in band_keys(engine, family, "")[:-1])
    keys = [key for kind in kinds for key in band_keys(engine, family, kind, pooled=not known)]
    keys = [k for k in keys if k[2] != "*"] + ([k for k in dict.fromkeys(keys) if k[2] == "*"] if catch_all else [])
    for e, f, kind in keys:  # an engine without bands of its own takes the uncalibrated ones, pooled
        e = e if known else "uncalibrated"
        q = (table.get(e) or {}).get(f, {}).get(kind)
        if q:
            return q, e, f, kind
    return None


def lookup(engine: str, family: str, kinds: tuple, level: str = "device",
           widened: bool = True, layout: bool = False) -> tuple[float, float, str] | None:
    """(low, high, basis) quantiles of log(measured/predicted time) for the most specific group;
    `level` (Efficiency.calibration_level) 'family' or 'engine' widens the band by the
    leave-one-device-out residuals; `widened` applies the level's widening factor; `layout` (EP or DP
    attention) unites it with the layout rows' band."""
    table, origin, new_device, widening = _table(catalog_key())
    if not table:
        return None
    found = _find(table, engine, family, kinds)
    if found is None:
        return None
    q, e, f, kind = found
    basis = origin[(e, f, kind)]
    factors = widening[basis]
    what = "every metric" if kind == "*" else kind
    kind = kinds[0] if kind == "*" else kind  # the layout band of the metric's own kind
    lo, hi, where = q["low"], q["high"], f"{basis}: engine {e}, family {f}, {what}, n={q['n']}"
    if level in ("family", "engine"):
        wider = _find(new_device, engine, family, kinds)
        if wider:
            lo, hi = min(lo, wider[0]["low"]), max(hi, wider[0]["high"])
            where += f"; widened for a device it was not fitted on (leave-one-device-out, n={wider[0]['n']})"
    if not widened:
        return lo, hi, where
    key = "uncalibrated" if e == "uncalibrated" else LEVEL_OF_WIDENING.get(level, level)
    lo, hi, note = _widened(lo, hi, key, factors, engine)
    if layout:
        return _with_layout(lo, hi, kind, where + note)
    return lo, hi, where + note


def interval(metric: str, value: float, engine: str, family: str, level: str = "device",
             layout: bool = False) -> dict | None:
    """{'low', 'high', 'basis'} for one headline metric value, or None without calibration data."""
    if metric not in HEADLINE or value is None or not math.isfinite(value):
        return None
    kinds, orient = HEADLINE[metric]
    found = lookup(engine, family, kinds, level, layout=layout)
    if found is None:
        return None
    lo, hi, basis = found  # the band holds its own estimate (_widened: lo <= 0 <= hi)
    if orient == "time":
        return {"low": value * math.exp(lo), "high": value * math.exp(hi), "basis": basis}
    return {"low": value * math.exp(-hi), "high": value * math.exp(-lo), "basis": basis}


# load metric key of serve_load -> (static kind whose uncalibrated band widens a pooled one, orientation)
_LOAD_STATIC = {"ttft": "prefill", "tpot": "decode", "itl": "decode", "e2e": "e2e", "rate": "throughput"}


def load_band(kind: str, engine: str, family: str, layout: bool = False) -> tuple[float, float, str] | None:
    """(low, high, basis) of log(measured/predicted time) for a load kind (`load_ttft`, ...): the
    engine's own loaded residuals, else the band pooled over engines, widened for an engine with no
    calibration at all by its uncalibrated band of the matching static kind; `layout` (EP or DP
    attention) unites it with the layout rows' band."""
    table, origin, _, widening = _table(catalog_key())
    # the engine's (or its build's) own, else all engines'
    found = _find(table, engine, family, (kind,), catch_all=False)
    if found is not None:
        q, e = found[0], found[1]
        basis = origin[found[1:]]
        where = f"engine {e}" if e != "*" else f"pooled over engines (no loaded rows of {engine})"
    else:  # no calibration of this engine at all: the pooled band, widened by its uncalibrated static band
        q = ((table.get("*") or {}).get("*") or {}).get(kind)
        if q is None:
            return None
        basis = origin[("*", "*", kind)]
        where = f"pooled over engines (no loaded rows of {engine})"
        q = dict(q)
        # the raw band: the load widening below is the only one applied
        static = lookup(engine, family, (_LOAD_STATIC[kind.split("_")[1]],), widened=False)
        if static:
            q["low"], q["high"] = min(q["low"], static[0]), max(q["high"], static[1])
            where += ", widened by its uncalibrated band"
    lo, hi, note = _widened(q["low"], q["high"], "load", widening[basis], engine)
    where = f"{basis}: {where}, {kind}, n={q['n']}{note}"
    return _with_layout(lo, hi, kind, where) if layout else (lo, hi, where)


def load_interval(key: str, value: float, engine: str, family: str, layout: bool = False) -> dict | None:
    """{'low', 'high', 'basis'} for one serve_load output (`ttft_s`, `tpot_p99_s`, `e2e_latency_s`,
    `request_throughput_per_s`, ...), or None without loaded calibration residuals."""
    from costmodel.calibration.measurements import load_kind

    if value is None or not math.isfinite(value) or value <= 0:
        return None
    metric = key[:-2] + "_ms" if key.endswith("_s") and not key.endswith("per_s") else key
    kind = load_kind(metric)
    band = load_band(kind, engine, family, layout)
    if band is None:
        return None
    lo, hi = min(band[0], 0.0), max(band[1], 0.0)  # the band holds its own estimate
    if kind != "load_rate":
        return {"low": value * math.exp(lo), "high": value * math.exp(hi), "basis": band[2]}
    return {"low": value * math.exp(-hi), "high": value * math.exp(-lo), "basis": band[2]}
