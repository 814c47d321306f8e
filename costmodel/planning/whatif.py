"""What-ifs: re-run a capacity plan while one input varies (qps, candidates, fmt, slo-ttft, slo-tpot,
prompt, gen, prefix-hit, disagg, kv-offload, prefix-tokens, turns)."""
from __future__ import annotations

import math

from costmodel.planning.plan import PlanError, plan, request

MAX_VALUES = 50  # each value is a full plan
NUMERIC = ("qps", "slo_ttft", "slo_tpot", "prompt", "gen", "prefix_hit", "prefix_tokens")
WHOLE = ("turns",)  # whole numbers
VARIABLES = {"qps": "qps", "candidates": "candidates", "fmt": "fmt", "slo-ttft": "slo_ttft", "slo-tpot": "slo_tpot",
             "prompt": "prompt", "gen": "gen", "prefix-hit": "prefix_hit", "disagg": "disagg",
             "kv-offload": "kv_offload", "prefix-tokens": "prefix_tokens", "turns": "turns"}


def parse_vary(text: str) -> tuple[str, list]:
    if "=" not in text:
        raise PlanError(f"--vary {text}: expected NAME=V1,V2,... (names: {', '.join(VARIABLES)})")
    name, values = text.split("=", 1)
    name = name.strip()
    if name not in VARIABLES:
        raise PlanError(f"--vary {name}: expected one of {', '.join(VARIABLES)}")
    sep = "|" if "|" in values else ","
    raw = [v.strip() for v in values.split(sep)]
    if not raw or any(not v for v in raw):
        raise PlanError(f"--vary {text}: an empty value; expected NAME=V1{sep}V2{sep}...")
    vals = list(dict.fromkeys(raw))  # a repeated value is planned once
    if len(vals) > MAX_VALUES:
        raise PlanError(f"--vary {name}: {len(vals)} values; at most {MAX_VALUES} per what-if")
    if VARIABLES[name] in WHOLE and not all(v.isdigit() and int(v) >= 1 for v in vals):
        raise PlanError(f"--vary {name}={','.join(vals)}: expected whole numbers >= 1")
    if VARIABLES[name] in NUMERIC:
        for v in vals:
            try:
                ok = math.isfinite(float(v)) and (0 <= float(v) < 1 if name == "prefix-hit" else float(v) > 0)
            except ValueError:
                ok = False
            if not ok:
                raise PlanError(f"--vary {name}={v}: expected " + ("fractions in [0, 1)" if name == "prefix-hit"
                                                                     else "positive numbers"))
    return name, vals


def whatif(base: dict, vary: str, build_request=request) -> list[dict]:
    """One plan per value; each row has the cheapest deployment overall and per device.

        >>> whatif(dict(model="llama-3.1-8b", qps=10, prompt=1000, gen=200, slo_ttft=0.5,
        ...             candidates="h100,l40s"), "qps=5,10,20")
    """
    name, values = parse_vary(vary)
    rows = []
    for v in values:
        kw = dict(base)
        key = VARIABLES[name]
        kw[key] = float(v) if key in NUMERIC else int(v) if key in WHOLE else v.replace("+", ",")
        if key == "disagg" and v == "off":  # the split's own options do not apply to its aggregated row
            kw.pop("kv_link", None)
            kw.pop("kv_overlap", None)
        result = plan(build_request(**kw))
        per_device = {}
        for d in result["deployments"]:
            per_device.setdefault(d["hardware"], d)
        rows.append({"value": v, "best": result["deployments"][0] if result["deployments"] else None,
                     "per_device": per_device, "binding": result.get("binding")})
    return rows
