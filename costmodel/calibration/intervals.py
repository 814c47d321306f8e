"""Error bars: intervals from calibration residuals that apply to an estimate.

`calibration/fitted.yaml` stores, per (engine, family, metric kind), the 10th and 90th
percentiles of r = log(measured time / predicted time) over leave-one-device-out residuals
(`*` = any). An estimate's time metric t gets [t·e^low, t·e^high]; a rate gets
[x·e^-high, x·e^-low]. Engines without fitted parameters use the residuals of the
uncalibrated engine (`uncalibrated`).
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
