"""Self-hosting against an API: what a plan's traffic would cost at an API's token prices, and the
share of each deployment's capacity at which the two cost the same.

  API $/hour    k·x,  k = 3600 · (P·(1−h)·p_in + P·h·p_cached + G·p_out) / 10^6    (x req/s, prices per
                million tokens, h the prefix-cache hit rate the API bills as cached input)
  self-hosting  a + b·x/C   (C the deployment's capacity in req/s; b > 0 only for --price own, whose power
                grows with the load; a rented device costs the same busy or idle)
  break-even    x* = a / (k − b/C): below x* the API is cheaper, above it the deployment (up to C)
"""
from __future__ import annotations

import math

from costmodel.spec.units import HOURS_PER_MONTH
from costmodel.spec.api_prices import ApiPrice


def compare(result: dict, price: ApiPrice, prefix_hit: float = 0.0) -> dict:
    """The plan's result with, per deployment, the API's cost of the same traffic and the break-even
    request rate and share of the deployment's capacity; `api` sums up the prices used."""
    qps, P, G = result["qps"], result["prompt_mean"], result["gen_mean"]
    k = 3600 * price.usd_per_request(P, G, prefix_hit)
    out = dict(result)
    out["api"] = {"name": price.name, "source": price.source, "usd_per_million_input": price.input,
                  "usd_per_million_cached_input": price.cached_input, "usd_per_million_output": price.output,
                  "usd_per_hour": k * qps, "usd_per_month": k * qps * HOURS_PER_MONTH,
                  "model_matches": (not price.model) or price.model == result["model"]}
    rows = []
    for d in result["deployments"]:
        C = d["capacity_qps"]
        a = d["usd_per_hour_idle"]
        b = d["usd_per_hour_full"] - a
        x = a / (k - b / C) if k > b / C else math.inf
        rows.append({**d, "api_usd_per_hour": k * qps, "api_usd_per_month": k * qps * HOURS_PER_MONTH,
                     "api_to_self_host": k * qps / d["usd_per_hour"],
                     "breakeven_qps": x if math.isfinite(x) else None,
                     "breakeven_share_of_capacity": x / C if math.isfinite(x) else None,
                     "cheaper": "self-host" if d["usd_per_hour"] < k * qps else "api"})
    out["deployments"] = rows
    return out
