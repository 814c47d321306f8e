"""Self-hosting against an API: what a plan's traffic would cost at an API's token prices, and the
share of each deployment's capacity at which the two cost the same.

  API $/hour    k·x,  k = 3600 · (P·(1−h)·p_in + P·h·p_cached + G·p_out) / 10^6    (x req/s, prices per
                million tokens, h the prefix-cache hit rate the API bills as cached input)
  self-hosting  a + b·x/C   (C the deployment's capacity in req/s; b > 0 only for --price own, whose power
                grows with the load; a rented device costs the same busy or idle)
  break-even    x* = a / (k − b/C): below x* the API is cheaper, above it the deployment (up to C)
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass

import yaml

from costmodel.errors import CostModelError, suggest
from costmodel.spec.catalog import builtin_root


@dataclass(frozen=True)
class ApiPrice:
    """USD per million tokens: uncached input, cached input (prefix-cache hits) and output."""

    input: float
    output: float
    cached_input: float
    name: str = "given"
    source: str = "--api-price"
    model: str = ""

    def usd_per_request(self, prompt: float, gen: float, hit: float) -> float:
        return (prompt * (1 - hit) * self.input + prompt * hit * self.cached_input + gen * self.output) / 1e6


@functools.lru_cache(maxsize=None)
def shipped_prices() -> dict:
    """Named API prices of data/api_prices.yaml, each with its source."""
    doc = yaml.safe_load(open(builtin_root() / "data" / "api_prices.yaml", encoding="utf-8")) or {}
    return {k: ApiPrice(float(v["input"]), float(v["output"]), float(v["cached_input"]), k, v["source"],
                        v.get("model", "")) for k, v in doc.items()}


def parse_api_price(text: str) -> ApiPrice:
    """IN:OUT[:CACHED] in USD per million tokens (cached input defaults to the input price), or a
    name from data/api_prices.yaml."""
    text = str(text).strip()
    named = shipped_prices()
    if text in named:
        return named[text]
    m = re.fullmatch(r"([0-9.eE+]+):([0-9.eE+]+)(?::([0-9.eE+]+))?", text)
    try:
        values = [float(g) for g in m.groups() if g is not None] if m else []
    except ValueError:
        values = []
    if len(values) < 2 or not all(math.isfinite(v) and v >= 0 for v in values) or values[0] + values[1] == 0:
        hint = suggest(text, named)
        raise CostModelError(f"--api-price {text!r}: expected IN:OUT[:CACHED] USD per million tokens (e.g. 0.28:0.42:0.028)"
                             f" or one of {', '.join(named)}" + (f"; did you mean '{hint[0]}'?" if hint else ""))
    return ApiPrice(values[0], values[1], values[2] if len(values) > 2 else values[0])


def compare(result: dict, price: ApiPrice, prefix_hit: float = 0.0) -> dict:
    """The plan's result with, per deployment, the API's cost of the same traffic and the break-even
    request rate and share of the deployment's capacity; `api` sums up the prices used."""
    qps, P, G = result["qps"], result["prompt_mean"], result["gen_mean"]
    k = 3600 * price.usd_per_request(P, G, prefix_hit)
    out = dict(result)
    out["api"] = {"name": price.name, "source": price.source, "usd_per_million_input": price.input,
                  "usd_per_million_cached_input": price.cached_input, "usd_per_million_output": price.output,
                  "usd_per_hour": k * qps, "usd_per_month": k * qps * 730.0,
                  "model_matches": (not price.model) or price.model == result["model"]}
    rows = []
    for d in result["deployments"]:
        C = d.get("capacity_qps") or math.inf
        a = d.get("usd_per_hour_idle", d["usd_per_hour"])
        b = d.get("usd_per_hour_full", d["usd_per_hour"]) - a
        x = a / (k - b / C) if k > b / C else math.inf
        rows.append({**d, "api_usd_per_hour": k * qps, "api_to_self_host": k * qps / d["usd_per_hour"],
                     "breakeven_qps": x if math.isfinite(x) else None,
                     "breakeven_share_of_capacity": x / C if math.isfinite(x) and math.isfinite(C) else None,
                     "cheaper": "self-host" if d["usd_per_hour"] < k * qps else "api"})
    out["deployments"] = rows
    return out
