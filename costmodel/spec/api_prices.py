"""API token prices: USD per million uncached input, cached input (prefix-cache hits) and output
tokens, given on the command line or named in data/api_prices.yaml with their sources.

  $ per request = (P·(1−h)·p_in + P·h·p_cached + G·p_out) / 10^6   (h: the share of the prompt the API bills as cached)
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
