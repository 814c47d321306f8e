"""Cost-of-pass (Erol et al. 2025, arXiv 2504.13359): the expected cost of one correct answer.

  cost of one attempt C = tokens in · price_in + tokens out · price_out      (API prices), or
                        = device-seconds of the request · $/device-hour / 3600 (engine-priced:
                          the request's share of a batch's prefill + decode on real hardware)
  cost-of-pass v = E[C] / R  (∞ when R = 0)
  frontier       = min(min over candidates v, human-expert cost of the task)
With test-time methods (parallel samples share the prompt's prefill):
  best-of@K (perfect verifier): R = 1 − (1 − p)^K, cost = prefill + K · decode
  majority@K (wrong answers agree, conservative): R = P(Bin(K, p) > K/2) (+ half the ties)
The paper takes the per-problem minimum, then the mean over problems; with one task-level
accuracy per candidate the frontier here is taken at the task level.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import yaml

from costmodel.spec.api_prices import ApiPrice
from costmodel.spec.catalog import builtin_root
from costmodel.errors import CostModelError
from costmodel.spec.quality import accuracy as lookup_accuracy
from costmodel.analyses.tts import majority_accuracy


class CostOfPassError(CostModelError):
    """Bad cost-of-pass input."""


@dataclass(frozen=True)
class Candidate:
    text: str
    model: str
    hardware: str | None = None
    format: str = "bf16"
    price_in: float | None = None  # USD per million input tokens (API candidates)
    price_out: float | None = None
    price_cached: float | None = None  # USD per million cached input tokens (prefix-cache hits; None: price_in)

    @property
    def api(self) -> ApiPrice:
        """An API candidate's prices (spec/api_prices.py), cached input at the input price unless given."""
        return ApiPrice(self.price_in, self.price_out, self.price_in if self.price_cached is None else self.price_cached)


def parse_candidate(text: str) -> Candidate:
    """'MODEL@HW:FMT' (engine-priced) or 'MODEL@api:IN/OUT[/CACHED]' ($ per million tokens in/out, and
    cached input: what the API bills for prefix-cache hits)."""
    t = text.strip()
    m = re.fullmatch(r"([^@\s]+)@api:([0-9.eE+-]+)/([0-9.eE+-]+)(?:/([0-9.eE+-]+))?(?::(\S+))?", t)
    if m:
        try:
            prices = [float(g) for g in m.groups()[1:4] if g is not None]
        except ValueError:
            prices = [-1.0]
        if not all(p >= 0 and math.isfinite(p) for p in prices):
            raise CostOfPassError(f"candidate '{t}': prices must be >= 0 USD per million tokens")
        return Candidate(t, m.group(1), None, m.group(5) or "bf16", prices[0], prices[1],
                         prices[2] if len(prices) > 2 else None)
    m = re.fullmatch(r"([^@\s]+)@([^:\s]+):(\S+)", t)
    if not m or m.group(2) == "api":
        raise CostOfPassError(f"candidate '{t}': expected MODEL@HW:FMT (e.g. llama-3.1-8b@h100:fp8) "
                              f"or MODEL@api:IN/OUT[/CACHED] (USD per million tokens, e.g. gpt-4o@api:2.5/10/1.25)")
    return Candidate(t, m.group(1), m.group(2), m.group(3))


def human_expert_costs() -> tuple[dict, str]:
    doc = yaml.safe_load(open(builtin_root() / "data" / "human_expert_costs.yaml", encoding="utf-8"))
    return {k: float(v) for k, v in doc["tasks"].items()}, doc["source"]


MAX_SAMPLES = 10_000  # samples per question: beyond, a vote's accuracy has long stopped moving (and is refused)


def parse_method(text: str) -> tuple[str, int]:
    t = text.strip().lower()
    if t == "single":
        return "single", 1
    m = re.fullmatch(r"(majority|best-of)@(\d+)", t)
    if not m or not 1 <= int(m.group(2)) <= MAX_SAMPLES:
        raise CostOfPassError(f"--method {text}: expected single, majority@K or best-of@K with K from 1 to "
                              f"{MAX_SAMPLES:,}")
    return m.group(1), int(m.group(2))


def method_accuracy(method: str, k: int, p: float) -> float:
    if method == "single":
        return p
    if method == "best-of":
        return 1 - (1 - p) ** k
    return float(majority_accuracy(k, p))


PRICING_BASIS = ("engine-priced attempt: the prompt is prefilled once and each of the K samples decodes; every "
                 "sequence is charged its share of the device-seconds of a serving batch of B sequences (default "
                 "B = the largest batch that fits, --batch) on the fewest devices that hold the model; "
                 "$ = device-seconds x $/device-hour / 3600 (or x average power x $/kWh with --price energy)")


def attempt_basis(c: Candidate, tokens_in: int, tokens_out: int, batch, engine, tp: int | None,
                  price: str = "cloud", usd_per_kwh: float | None = None, prefix_hit: float = 0.0) -> dict:
    """The device-seconds of one query's prefill and of one sample's decode, and the $ per device-second:
    an attempt with K samples costs (prefill + K · decode) · usd_per_device_s (shared by cost-of-pass and
    test-time scaling)."""
    from costmodel.estimate import estimate, require_fit
    from costmodel.analyses.idealized import fewest_devices

    if tp is None:
        tp_, pp_ = fewest_devices(c.model, c.hardware, c.format, engine)
    else:
        tp_, pp_ = tp, 1
    e = require_fit(estimate(c.model, c.hardware, c.format, batch=batch, prompt=max(tokens_in, 1),
                             gen=max(tokens_out, 1), tp=tp_, pp=pp_, engine=engine, prefix_hit=prefix_hit or None))
    B = e.batch
    devices = tp_ * pp_
    if price == "energy":
        if usd_per_kwh is None:
            raise CostOfPassError("--price energy needs --usd-per-kwh")
        rate = e.metric("average_power_w") / 3.6e6 * usd_per_kwh
    else:
        if e.hardware.price_per_hour is None:
            raise CostOfPassError(f"{e.hardware.id} has no cloud price in its spec: use --price energy "
                                  f"or an API candidate")
        rate = e.hardware.price_per_hour / 3600
    return {"prefill_device_s": devices * e.metric("ttft_s") / B,
            "decode_device_s": devices * (e.metric("e2e_latency_s") - e.metric("ttft_s")) / B,
            "usd_per_device_s": rate, "hardware": e.hardware.id, "tp": tp_, "pp": pp_, "batch": B}


def attempt_cost(c: Candidate, tokens_in: int, tokens_out: int, k: int, batch, engine, tp: int | None,
                 price: str = "cloud", usd_per_kwh: float | None = None, prefix_hit: float = 0.0) -> tuple[float, dict]:
    """USD of one attempt with K samples (prompt prefilled once), plus details. A share `prefix_hit` of
    the prompt comes from a prefix cache: an API bills it at its cached-input price, an engine-priced
    candidate reads it as context instead of prefilling it."""
    if c.price_in is not None:  # the prompt billed once, each of the K samples' output tokens
        return c.api.usd_per_request(tokens_in, k * tokens_out, prefix_hit), {"priced_by": "api"}
    b = attempt_basis(c, tokens_in, tokens_out, batch, engine, tp, price, usd_per_kwh, prefix_hit)
    device_s = b["prefill_device_s"] + k * b["decode_device_s"]
    return device_s * b["usd_per_device_s"], {"priced_by": "engine", "hardware": b["hardware"], "tp": b["tp"],
                                             "pp": b["pp"], "batch": b["batch"], "device_seconds": device_s}


def cost_of_pass(task: str, candidates: list[str], tokens_in: int = 500, tokens_out: int = 1500,
                 method: str = "single", accuracy_file: str | None = None, batch="max", engine="auto",
                 tp: int | None = None, price: str = "cloud", usd_per_kwh: float | None = None,
                 prefix_hit: float | None = None) -> dict:
    """Cost per attempt, accuracy and cost-of-pass of each candidate, and the frontier (`prefix_hit`:
    the share of each prompt in a prefix cache, billed at an API's cached-input price).

        >>> costmodel.cost_of_pass("gsm8k", ["llama-3.1-8b@h100:fp8", "llama-3.1-70b@h100:fp8"], method="majority@5")
    """
    if tokens_in < 0 or tokens_out < 1:
        raise CostOfPassError("--tokens-in must be >= 0 and --tokens-out >= 1")
    if not candidates:
        raise CostOfPassError("--candidates is empty: give at least one MODEL@HW:FMT")
    how, k = parse_method(method)
    if usd_per_kwh is not None and price != "energy":  # it was read only under --price energy
        raise CostOfPassError(f"--usd-per-kwh {usd_per_kwh:g}: applies to --price energy; give it too")
    from costmodel.engine.serving import check_prefix_hit

    hit = check_prefix_hit(prefix_hit)
    experts, expert_source = human_expert_costs()
    rows = []
    for text in candidates:
        c = parse_candidate(text)
        acc = lookup_accuracy(c.model, c.format, task, accuracy_file)
        usd, detail = attempt_cost(c, tokens_in, tokens_out, k, batch, engine, tp, price, usd_per_kwh, hit)
        r = method_accuracy(how, k, acc.value)
        rows.append({"candidate": c.text, "cost_per_attempt_usd": usd, "accuracy": r,
                     "single_sample_accuracy": acc.value, "accuracy_sources": list(acc.sources),
                     "accuracy_basis": acc.basis, "recovery_vs_bf16": acc.recovery,
                     "recovery_basis": acc.recovery_basis,
                     "cost_of_pass_usd": usd / r if r > 0 else math.inf, **detail})
    best = min(r["cost_of_pass_usd"] for r in rows)
    expert = experts.get(task.lower())
    frontier = min(best, expert) if expert is not None else best
    for r in rows:
        r["on_frontier"] = math.isfinite(r["cost_of_pass_usd"]) and r["cost_of_pass_usd"] <= frontier * (1 + 1e-12)
    return {"task": task, "method": method, "tokens_in": tokens_in, "tokens_out": tokens_out, "prefix_hit": hit,
            "pricing_basis": PRICING_BASIS,
            "human_expert_usd": expert, "human_expert_source": expert_source if expert is not None else None,
            "frontier_cost_of_pass_usd": frontier,
            "frontier_is_human_expert": expert is not None and expert < best,
            "candidates": rows}

