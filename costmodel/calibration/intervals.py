"""Error bars: intervals from calibration residuals that apply to an estimate.

`calibration/fitted.yaml` stores, per (engine, family, metric kind), the 10th and 90th
percentiles of r = log(measured time / predicted time) over leave-one-device-out residuals
(`*` = any). An estimate's time metric t gets [t·e^low, t·e^high]; a rate gets
[x·e^-high, x·e^-low]. Engines without fitted parameters use the residuals of the
uncalibrated engine (`uncalibrated`).

Estimates under a load (`serve_load`) use the kinds `load_ttft`, `load_tpot`, `load_itl`,
`load_e2e` (`_tail` for P90/P99) and `load_rate`: quantiles of the leave-one-source-out residuals of
the closed-loop and Poisson rows. An engine with no such rows gets the band pooled over engines,
widened by its uncalibrated band of the matching static kind (`load_interval`).
"""
from __future__ import annotations

import functools
import math

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


@functools.lru_cache(maxsize=None)
def _table(path_env: str) -> tuple[dict, str]:
    table: dict = {}
    basis = ""
    for root in reversed(search_roots()):
        folder = root / "calibration"
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                doc = read_yaml(path) or {}
                if doc.get("intervals"):
                    table.update(doc["intervals"])  # per engine: user calibrations add to the shipped one
                    prov = doc.get("provenance") or {}
                    basis = (f"P10-P90 of {prov.get('interval_residuals', 'calibration')} residuals, "
                             f"calibration/{path.name} ({prov.get('date', '?')})")
    return table, basis


def lookup(engine: str, family: str, kinds: tuple) -> tuple[float, float, str] | None:
    """(low, high, basis) quantiles of log(measured/predicted time) for the most specific group."""
    table, basis = _table(catalog_key())
    if not table:
        return None
    eng = engine if engine in table else "uncalibrated"
    for kind in kinds:
        for e, f in ((eng, family), (eng, "*"), ("*", "*") if eng != "uncalibrated" else (eng, "*")):
            q = (table.get(e) or {}).get(f, {}).get(kind)
            if q:
                return q["low"], q["high"], f"{basis}: engine {e}, family {f}, {kind}, n={q['n']}"
    return None


def interval(metric: str, value: float, engine: str, family: str) -> dict | None:
    """{'low', 'high', 'basis'} for one headline metric value, or None without calibration data."""
    if metric not in HEADLINE or value is None or not math.isfinite(value):
        return None
    kinds, orient = HEADLINE[metric]
    found = lookup(engine, family, kinds)
    if found is None:
        return None
    lo, hi, basis = found
    # the band always holds its own estimate: residual quantiles on one side of zero (a biased,
    # uncalibrated engine) widen to it instead of excluding the point
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if orient == "time":
        return {"low": value * math.exp(lo), "high": value * math.exp(hi), "basis": basis}
    return {"low": value * math.exp(-hi), "high": value * math.exp(-lo), "basis": basis}


# load metric key of serve_load -> (static kind whose uncalibrated band widens a pooled one, orientation)
_LOAD_STATIC = {"ttft": "prefill", "tpot": "decode", "itl": "decode", "e2e": "e2e", "rate": "throughput"}


def load_band(kind: str, engine: str, family: str) -> tuple[float, float, str] | None:
    """(low, high, basis) of log(measured/predicted time) for a load kind (`load_ttft`, ...): the
    engine's own loaded residuals, else the band pooled over engines, widened for an engine with no
    calibration at all by its uncalibrated band of the matching static kind."""
    table, basis = _table(catalog_key())
    own = table.get(engine) or {}
    q = (own.get(family) or {}).get(kind) or (own.get("*") or {}).get(kind)
    where = f"engine {engine}"
    if q is None:
        q = ((table.get("*") or {}).get("*") or {}).get(kind)
        if q is None:
            return None
        where = f"pooled over engines (no loaded rows of {engine})"
        q = dict(q)
        static = lookup(engine, family, (_LOAD_STATIC[kind.split("_")[1]],)) if engine not in table else None
        if static:
            q["low"], q["high"] = min(q["low"], static[0]), max(q["high"], static[1])
            where += ", widened by its uncalibrated band"
    return q["low"], q["high"], f"{basis}: {where}, {kind}, n={q['n']}"


def load_interval(key: str, value: float, engine: str, family: str) -> dict | None:
    """{'low', 'high', 'basis'} for one serve_load output (`ttft_s`, `tpot_p99_s`, `e2e_latency_s`,
    `request_throughput_per_s`, ...), or None without loaded calibration residuals."""
    from costmodel.calibration.measurements import load_kind

    if value is None or not math.isfinite(value) or value <= 0:
        return None
    metric = key[:-2] + "_ms" if key.endswith("_s") and not key.endswith("per_s") else key
    kind = load_kind(metric)
    band = load_band(kind, engine, family)
    if band is None:
        return None
    lo, hi = min(band[0], 0.0), max(band[1], 0.0)  # the band holds its own estimate
    if kind != "load_rate":
        return {"low": value * math.exp(lo), "high": value * math.exp(hi), "basis": band[2]}
    return {"low": value * math.exp(-hi), "high": value * math.exp(-lo), "basis": band[2]}
