"""Capacity planning: the cheapest deployments that serve a traffic within latency targets.

Search: devices x formats x tensor-parallel degree x batch cap x replica count. For each
(device, format, tp) the engine gives the prefill time and the decode step at every batch
(one vectorized call); the serving model (serving.py) turns a per-replica arrival rate into
TTFT at the chosen percentile and TPOT; the fewest replicas that meet the SLOs win for each
batch cap. Cost per hour:
  cloud  devices · $/device-hour (hardware specs, or --price-per-hour HW=X)
  own    devices · (list price / (years · 8760 h) + hosting / 8760 h)
         + devices · TDP · (idle + (1 − idle)·utilization) · PUE · $/kWh / 1000
"""
from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field

import yaml

from costmodel.spec.catalog import builtin_root
from costmodel.spec.units import HOURS_PER_MONTH
from costmodel.planning.energy import watts
from costmodel.errors import CostModelError
from costmodel.engine.serving import Dist, capacity, poisson
from costmodel.engine.serving import parse_dist as _parse_dist
from costmodel.engine.layout import LAYOUTS as NAMED_LAYOUTS, layout_of
from costmodel.engine.serving import check_prefix_hit
from costmodel.serving import prefix_cache
from costmodel.serving import replica_perf as _replica_perf

TP_GRID = (1, 2, 4, 8)
DISAGG = ("off", "auto", "only")
LAYOUTS = tuple(NAMED_LAYOUTS)  # searched by default: tensor parallelism, EP, DP attention + EP


class PlanError(CostModelError):
    """Bad planning input."""


def parse_dist(text: str | None, mean: float, name: str) -> Dist:
    """fixed | uniform:R | lognormal:MEAN,SIGMA (the serving model's length distributions)."""
    return _parse_dist(text, mean, name, PlanError)


@functools.lru_cache(maxsize=None)
def ownership_defaults() -> dict:
    doc = yaml.safe_load(open(builtin_root() / "data" / "ownership.yaml", encoding="utf-8"))
    return {k: (float(v["value"]), v["source"]) for k, v in doc.items()}


@dataclass
class Request:
    model: str
    qps: float
    prompt: Dist
    gen: Dist
    slo_ttft: float
    slo_tpot: float | None
    percentile: float
    candidates: list
    formats: list
    engine: str = "auto"
    price: str = "cloud"
    years: float | None = None
    electricity: float | None = None
    pue: float | None = None
    hosting: float | None = None
    price_per_hour: dict = field(default_factory=dict)
    tp_options: tuple = TP_GRID
    layouts: tuple = LAYOUTS  # which of tensor parallel, EP, DP attention + EP to search (MoE models)
    prefix_hit: float = 0.0  # the share of each prompt already in the prefix cache
    mtp: int = 0  # draft tokens per decode step (MTP / a draft head)
    accept_rate: float | None = None  # their acceptance (None: DeepSeek-V3's 0.875)
    price_per_device: dict = field(default_factory=dict)  # purchase USD per device id, for --price own
    api_price: object = None  # an ApiPrice (planning/api_compare.py): compare each deployment with it
    disagg: str = "off"  # off | auto (aggregated and split prefill/decode deployments) | only (split only)
    kv_link: object = None  # the link a split deployment moves KV on (serving_split.link_bandwidth)
    kv_overlap: bool = False  # KV sent layer by layer during the prefill
    prefix_tokens: float | None = None  # the deployment's distinct reused tokens (split over replicas by a router)
    kv_offload: str | None = None  # the prefix cache's offload tier per replica (engine/kv_offload.py)


def _split(values) -> list:
    if values is None:
        return []
    if isinstance(values, str):
        return [t.strip() for t in values.split(",") if t.strip()]
    return [str(v).strip() for v in values if str(v).strip()]


def _distinct(names: list, resolve) -> list:
    """The names in their order, the first of each spec (h100 and h100-sxm are one device): a repeated candidate
    listed every deployment twice."""
    first: dict = {}
    for name in names:
        first.setdefault(resolve(name)[0].id, name)
    return list(first.values())


def _positive_int(name: str, text, maximum: int) -> int:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value.is_integer() and 1 <= value <= maximum):
        raise PlanError(f"--{name} {text}: expected integers from 1 to {maximum}")
    return int(value)


MIN_QPS = 1e-6


def request(model: str, qps: float, prompt: float, gen: float, slo_ttft: float, candidates, fmt="bf16",
            slo_tpot: float | None = None, percentile: int = 90, prompt_dist: str | None = None,
            gen_dist: str | None = None, engine: str = "auto", price: str = "cloud", years: float | None = None,
            electricity: float | None = None, pue: float | None = None, hosting: float | None = None,
            price_per_hour=None, tp=None, price_per_device=None, layouts=None, prefix_hit=None, mtp=0,
            accept_rate=None, api_price: str | None = None, disagg: str | None = None, kv_link=None,
            kv_overlap: bool = False, prefix_tokens: float | None = None, kv_offload: str | None = None,
            turns: int | None = None) -> Request:
    """A planning request from plain values (lists or comma-separated strings), as `costmodel plan` takes them.

        >>> request("llama-3.1-8b", qps=10, prompt=1000, gen=200, slo_ttft=0.5, candidates=["h100", "l40s"])
    """
    if percentile not in (50, 90, 99):
        raise PlanError(f"--percentile {percentile}: expected 50, 90 or 99")
    tps = tuple(_positive_int("tp", t, 1024) for t in _split(tp)) if tp else TP_GRID
    lays = tuple(_split(layouts)) if layouts is not None else LAYOUTS
    if not lays:
        raise PlanError(f"--layouts {layouts!r}: empty; expected tp, ep or dp-ep (comma-separated)")
    for lay in lays:
        if lay not in NAMED_LAYOUTS:
            raise PlanError(f"--layouts {lay!r}: expected tp, ep or dp-ep (comma-separated)")
    for name, value in (("qps", qps), ("prompt", prompt), ("gen", gen), ("slo-ttft", slo_ttft)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise PlanError(f"--{name} {value}: expected a positive finite number")
    if qps < MIN_QPS:  # one request in 11.6 days: below, $ per million tokens runs to hundreds of digits
        raise PlanError(f"--qps {qps:g}: expected at least {MIN_QPS:g} requests per second")
    if slo_tpot is not None and not (math.isfinite(slo_tpot) and slo_tpot > 0):
        raise PlanError(f"--slo-tpot {slo_tpot}: expected a positive finite number of seconds")
    from costmodel.spec.formats import resolve_format
    from costmodel.spec.hardware import resolve_hardware
    from costmodel.spec.model_catalog import resolve_model

    spec = resolve_model(model)[0]
    if spec.is_encoder:  # unknown ids fail here, before any deployment is priced
        raise PlanError(f"{model} is an encoder: plan sizes deployments that serve generated tokens (TTFT, TPOT), "
                        f"which it has none of")
    if layouts is not None and spec.moe is None and set(lays) - {"tp"}:  # a dense model has no experts to spread
        raise PlanError(f"--layouts {layouts}: ep and dp-ep spread an MoE model's experts; {spec.id} is dense "
                        f"(give --layouts tp or leave it out)")
    if tp:  # a --tp that divides no attention heads plans nothing: the value is wrong, not the SLOs
        bad = [t for t in tps if spec.heads and spec.heads % t and not spec.moe]
        if bad:
            raise PlanError(f"--tp {tp}: {', '.join(map(str, bad))} does not divide the {spec.heads} attention heads of "
                            f"{spec.id}")
    if not _split(candidates):
        raise PlanError("--candidates is empty: give at least one device")
    for hw in _split(candidates):
        resolve_hardware(hw)
    for f in _split(fmt):
        resolve_format(f)
    if not _split(fmt):
        raise PlanError(f"--fmt {fmt!r}: empty; give at least one format")
    if engine not in (None, "", "auto"):  # an unknown engine fails here, not once per candidate
        from costmodel.spec.engine_params import resolve_engine

        resolve_engine(engine, "")

    def items(x):
        return list(x) if isinstance(x, (list, tuple)) else ([x] if x else None)

    disagg = "off" if disagg is None else str(disagg).strip()
    if disagg not in DISAGG:
        raise PlanError(f"--disagg {disagg}: expected off, auto (aggregated and split prefill/decode) or only (split)")
    if (kv_link is not None or kv_overlap) and disagg == "off":
        raise PlanError("--kv-link / --kv-overlap: apply to split deployments; give --disagg auto or only too")
    if kv_link is not None:
        from costmodel.serving_split import check_link

        kv_link = check_link(kv_link)
    from costmodel.engine.kv_offload import check_inputs

    prompts = parse_dist(prompt_dist, prompt, "prompt")
    if turns is not None:  # multi-turn conversations: the history is the cached prefix
        from costmodel.engine.serving import conversation

        prompts, prefix_hit = conversation(prompt, parse_dist(gen_dist, gen, "gen").mean, turns, prompt_dist, prefix_hit)
        if turns == 1 and prefix_tokens is not None:
            raise PlanError(f"--prefix-tokens {prefix_tokens}: --turns 1 reuses nothing; give --turns 2 or more")
    check_inputs(prefix_tokens, kv_offload, prefix_hit)
    if prefix_tokens is not None and disagg not in (None, "off"):
        raise PlanError(f"--prefix-tokens {prefix_tokens}: the cache's pool and offload tier are modelled for aggregated "
                        f"deployments; with --disagg {disagg} give --prefix-hit alone")
    prices = parse_prices(items(price_per_hour))
    purchase = parse_prices(items(price_per_device), "--price-per-device", "h100=30000")
    _prices_apply(price, prices, purchase, dict(years=years, electricity=electricity, pue=pue, hosting=hosting))
    return Request(model, qps, prompts, parse_dist(gen_dist, gen, "gen"), slo_ttft,
                   slo_tpot, percentile / 100, _distinct(_split(candidates), resolve_hardware),
                   _distinct(_split(fmt), resolve_format), engine, price, years, electricity, pue,
                   hosting, prices, tps, lays, check_prefix_hit(prefix_hit), _mtp(mtp), _accept(accept_rate, mtp), purchase,
                   _api_price(api_price), disagg, kv_link, bool(kv_overlap),
                   float(prefix_tokens) if prefix_tokens is not None else None, kv_offload or None)


def _api_price(text):
    if text is None or text == "":
        return None
    from costmodel.spec.api_prices import ApiPrice, parse_api_price

    return text if isinstance(text, ApiPrice) else parse_api_price(text)


def replica_perf(model: str, hw: str, fmt: str, tp: int, req: Request, dp: int = 1, ep: int = 1):
    """The engine's view of one replica, or (None, reason) when it cannot run (costmodel.serving)."""
    extra = {"mtp": req.mtp, **({"accept_rate": req.accept_rate} if req.accept_rate is not None else {})} if req.mtp else {}
    return _replica_perf(model, hw, fmt, tp, req.prompt, req.gen, req.engine, req.percentile, dp=dp, ep=ep,
                         prefix_hit=req.prefix_hit, **extra)


def _mtp(n) -> int:
    if n is None:
        return 0
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 32:
        raise PlanError(f"--mtp {n}: expected 0 to 32 draft tokens per step")
    return n


def _accept(a, mtp) -> float | None:
    if a is None:
        return None
    if not mtp:
        raise PlanError("--accept-rate applies to draft tokens: give --mtp N too")
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not (math.isfinite(a) and 0 <= a <= 1):
        raise PlanError(f"--accept-rate {a}: expected a fraction in [0, 1]")
    return float(a)


def _layouts(req: Request, tp: int, is_moe: bool) -> list[tuple[int, int]]:
    """The (dp, ep) layouts to try on tp devices: expert and attention data parallelism only for an
    MoE model on more than one device."""
    out = []
    for lay in req.layouts:
        dp, ep = layout_of(lay, tp)
        if (dp, ep) != (1, 1) and (tp == 1 or not is_moe):
            continue
        if (dp, ep) not in out:
            out.append((dp, ep))
    return out


def _served(perf, cache, req: Request, r: int, cap: int):
    """(LoadStats, ReplicaPerf, cache shares) of r replicas at the plan's rate. With a prefix cache each
    replica holds 1/r of the reused set (a prefix-aware router sends a prefix to one replica) in the pool
    the running batch leaves, then its offload tier (PrefixCache.settle, as serving.serve_loads)."""
    q = req.percentile
    if cache is None:
        return poisson(perf, req.qps / r, cap, (q,)), perf, None
    return cache.settle(req.prefix_tokens / r, lambda pf: poisson(pf, req.qps / r, cap, (q,)))


def hourly_cost(est, devices: int, utilization: float, req: Request) -> tuple[float, dict]:
    """($/hour, terms) of `devices` devices of the estimate's hardware."""
    hw = est.hardware
    od = ownership_defaults()
    if req.price == "cloud":
        rate = req.price_per_hour.get(hw.id, hw.price_per_hour)
        if rate is None:
            raise PlanError(f"price: {hw.id} has no cloud price in its spec; pass --price-per-hour {hw.id}=USD "
                            f"or --price own")
        return devices * rate, {"cloud_usd_per_hour": devices * rate}
    list_price = req.price_per_device.get(hw.id, hw.list_price_usd)
    if list_price is None:
        raise PlanError(f"price: {hw.id} has no purchase price in its spec for --price own; pass "
                        f"--price-per-device {hw.id}=USD")
    years = req.years if req.years is not None else od["years"][0]
    pue = req.pue if req.pue is not None else od["pue"][0]
    usd_kwh = req.electricity if req.electricity is not None else od["electricity_usd_per_kwh"][0]
    hosting = req.hosting if req.hosting is not None else od["hosting_usd_per_device_year"][0]
    capex = devices * list_price / (years * 8760)
    power = watts(est, devices, utilization) * pue / 1000 * usd_kwh
    host = devices * hosting / 8760
    return capex + power + host, {"capex_usd_per_hour": capex, "power_usd_per_hour": power,
                                  "hosting_usd_per_hour": host}


def plan(req: Request | str, max_replicas: int = 4096, **kwargs) -> dict:
    """Deployments that meet the SLOs (cheapest first) and rejected candidates with reasons.

        >>> plan("llama-3.1-8b", qps=10, prompt=1000, gen=200, slo_ttft=0.5, candidates=["h100", "l40s"],
        ...      fmt=["bf16", "fp8"])["deployments"][0]

    `req` is a `Request` or a model id; with a model id the keyword arguments build the request
    (see `request`).
    """
    if isinstance(req, str):
        req = request(req, **kwargs)
    if req.qps <= 0:
        raise PlanError(f"--qps {req.qps}: expected a positive request rate")
    if req.slo_ttft <= 0 or (req.slo_tpot is not None and req.slo_tpot <= 0):
        raise PlanError("SLOs must be positive seconds")
    if req.price not in ("cloud", "own"):
        raise PlanError(f"--price {req.price}: expected cloud or own")
    q = req.percentile
    deployments, rejected = [], []
    best = {"ttft": math.inf, "tpot": math.inf}
    from costmodel.spec.model_catalog import resolve_model

    is_moe = resolve_model(req.model)[0].moe is not None
    cands = []  # every replica that runs: the split search pairs them
    for hw in req.candidates:
        for fmt in req.formats:
            for tp, (dp, ep) in [(tp, lay) for tp in req.tp_options for lay in _layouts(req, tp, is_moe)]:
                got, why = replica_perf(req.model, hw, fmt, tp, req, dp, ep)
                layout = f"tp{tp}" + (f" dp{dp}" if dp > 1 else "") + (f" ep{ep}" if ep > 1 else "")
                label = f"{hw} {fmt} {layout}"
                if got is None:
                    rejected.append({"candidate": label, "reason": why})
                    continue
                perf, est = got
                cands.append({"label": f"{hw} {layout}", "hw": est.hardware.id, "fmt": est.format.id, "tp": tp,
                              "dp": dp, "ep": ep, "layout": layout.replace(" ", ":"), "perf": perf, "est": est})
                cache = None
                if req.prefix_tokens is not None:  # (not with --disagg: request() refuses the pair)
                    try:
                        cache = prefix_cache(est, req.prompt, req.gen, req.prefix_hit, req.prefix_tokens,
                                             req.kv_offload, 1, q)
                    except CostModelError as exc:
                        rejected.append({"candidate": label, "reason": f"prefix cache: {exc}"})
                        continue
                floor_ttft = perf.t_prefill_q + perf.request_overhead
                best["ttft"] = min(best["ttft"], floor_ttft)
                best["tpot"] = min(best["tpot"], float(perf.t_step[0]))
                if req.disagg == "only":
                    continue
                reasons = []
                found = None
                for cap in [int(b) for b in perf.batches]:
                    lam_max = capacity(perf, cap)
                    r = max(1, math.ceil(req.qps / lam_max * (1 + 1e-9)))
                    while r <= max_replicas:
                        # the Poisson load of `estimate --request-rate`: a plan and an estimate agree
                        load, perf_r, held = _served(perf, cache, req, r, cap)
                        ok_ttft = load.ttft[q] <= req.slo_ttft
                        ok_tpot = req.slo_tpot is None or load.tpot["mean"] <= req.slo_tpot
                        if load.ok and ok_ttft and ok_tpot:
                            break
                        # latency floors that more replicas cannot fix
                        if floor_ttft > req.slo_ttft or (req.slo_tpot is not None and float(perf.t_step[0]) > req.slo_tpot):
                            r = max_replicas + 1
                            break
                        r = r + max(1, r // 8)
                    if r > max_replicas:
                        continue
                    try:
                        cost, terms = hourly_cost(est, r * tp, load.utilization, req)
                        idle, _ = hourly_cost(est, r * tp, 0.0, req)  # the cost's fixed and load-driven parts
                        full, _ = hourly_cost(est, r * tp, 1.0, req)
                    except PlanError as exc:
                        reasons.append(str(exc))
                        break
                    cand = {"mode": "aggregated", "hardware": est.hardware.id, "format": est.format.id, "tp": tp, "dp": dp, "ep": ep,
                            "layout": layout, "replicas": r,
                            "devices": r * tp, "batch_cap": cap, "utilization": load.utilization,
                            "ttft_s": load.ttft[q], "ttft_mean_s": load.ttft["mean"], "tpot_s": load.tpot["mean"],
                            "decoding_per_replica": load.running, "usd_per_hour": cost,
                            "capacity_qps": r * capacity(perf_r, cap), "usd_per_hour_idle": idle,
                            "usd_per_hour_full": full,
                            "usd_per_month": cost * HOURS_PER_MONTH,
                            "usd_per_million_tokens": cost / (req.qps * req.gen.mean * 3600) * 1e6,
                            "kwh_per_month": watts(est, r * tp, load.utilization) * HOURS_PER_MONTH / 1000, **terms}
                    if cache is not None:
                        cand["prefix_cache"] = cache.report(held, req.prefix_tokens / r)
                    if found is None or cand["usd_per_hour"] < found["usd_per_hour"]:
                        found = cand
                if found:
                    deployments.append(found)
                else:
                    if reasons:
                        why = reasons[0]
                    elif floor_ttft > req.slo_ttft:
                        why = (f"TTFT: the prefill alone takes {floor_ttft:.3g} s at the P{int(q * 100)} prompt "
                               f"(request overhead included; SLO {req.slo_ttft:g} s)")
                    elif req.slo_tpot is not None and float(perf.t_step[0]) > req.slo_tpot:
                        why = f"TPOT: a decode step takes {float(perf.t_step[0]):.3g} s even at batch 1 (SLO {req.slo_tpot:g} s)"
                    else:
                        why = f"throughput: more than {max_replicas} replicas would be needed"
                    rejected.append({"candidate": label, "reason": why})
    if req.disagg != "off" and cands:
        from costmodel.planning.split_plan import split_deployments

        got, why_not = split_deployments(req, cands, functools.partial(_kv_transfer, req), hourly_cost, max_replicas)
        deployments += got
        rejected += why_not
    deployments.sort(key=lambda d: d["usd_per_hour"])
    out = {"model": req.model, "qps": req.qps, "prompt_mean": req.prompt.mean, "gen_mean": req.gen.mean,
           "percentile": int(round(q * 100)), "slo_ttft_s": req.slo_ttft, "slo_tpot_s": req.slo_tpot,
           "price": req.price, "disagg": req.disagg, "deployments": deployments, "rejected": rejected}
    if req.disagg != "off":
        from costmodel.planning.split_plan import why

        out["disagg_why"] = why(deployments, req.disagg == "only")
    if not deployments:
        out["binding"] = binding_constraint(rejected, best, req)
    if req.api_price is not None:
        from costmodel.planning.api_compare import compare

        out = compare(out, req.api_price, req.prefix_hit)
    return out


def _kv_transfer(req: Request, p: dict, d: dict, devices: int) -> tuple[float, str]:
    """(seconds, link) of one request's KV from a prefill replica to a decode replica in a deployment of
    `devices` devices (serving_split.kv_transfer)."""
    from costmodel.serving_split import kv_bytes_per_device, kv_transfer

    tokens = max(1.0, float(round(req.prompt.mean)))
    for c in (p, d):  # one sequence's KV per device, once per candidate
        if "kv_bytes" not in c:
            c["kv_bytes"] = kv_bytes_per_device(c["est"], tokens)
    return kv_transfer(req.kv_link, p["est"], d["est"], p["kv_bytes"], d["kv_bytes"], devices, p["perf"].t_prefill,
                       req.kv_overlap)


def binding_constraint(rejected: list, best: dict, req: Request) -> str:
    """Which constraint binds when nothing meets the SLOs, and what would relax it."""
    reasons = [r["reason"] for r in rejected]
    if reasons and all(r.startswith("memory") for r in reasons):
        return "memory: the model does not fit any candidate at tp <= 8; add larger devices or a smaller format"
    links = [r for r in reasons if r.startswith("KV link")]
    if links and all(r.startswith(("KV link", "memory")) for r in reasons):
        return links[0]
    parts = []
    def device(label: str) -> str:  # "h100 fp8 tp2" or "split h100 tp1 -> h200 tp2"
        words = label.split()
        return words[1] if words[0] == "split" else words[0]

    priced_out = sorted({device(r["candidate"]) for r in rejected if r["reason"].startswith("price")})
    if priced_out:
        flag = "--price-per-device HW=USD" if req.price == "own" else "--price-per-hour HW=USD"
        kind = "purchase" if req.price == "own" else "cloud"
        parts.append(f"price: no {kind} price for {', '.join(priced_out)} in the specs, so "
                     f"{'it was' if len(priced_out) == 1 else 'they were'} not costed; pass {flag}")
    if priced_out and len(priced_out) == len({device(r["candidate"]) for r in rejected}) == len(req.candidates):
        return parts[0]
    if not math.isfinite(best["ttft"]):  # no candidate ran at all: why each could not (not an infinite TTFT)
        why = list(dict.fromkeys(r["reason"] for r in rejected if not r["reason"].startswith("price")))
        more = f" (and {len(why) - 4} more; --json lists every candidate's)" if len(why) > 4 else ""
        parts.append("no candidate can run: " + "; ".join(why[:4]) + more)
        return "; ".join(parts)
    if best["ttft"] > req.slo_ttft:
        parts.append(f"TTFT binds: the fastest prefill at the P{int(req.percentile * 100)} prompt is "
                     f"{best['ttft']:.3g} s; relax --slo-ttft to >= {best['ttft'] * 1.05:.3g} s, shorten prompts, "
                     f"or add faster devices")
    if req.slo_tpot is not None and best["tpot"] > req.slo_tpot:
        parts.append(f"TPOT binds: the fastest decode step is {best['tpot']:.3g} s; relax --slo-tpot to >= "
                     f"{best['tpot'] * 1.05:.3g} s or use a smaller format / more tensor parallelism")
    if not parts:
        parts.append("throughput binds: no candidate reaches the SLOs under this load; raise the replica limit or "
                     "lower --qps")
    return "; ".join(parts)


def _prices_apply(price: str, hourly: dict, purchase: dict, own: dict) -> None:
    """Refuse the price options the chosen --price does not read (each was ignored silently)."""
    given = [f"--{k}" for k, v in own.items() if v is not None] + (["--price-per-device"] if purchase else [])
    if price == "cloud" and given:
        raise PlanError(f"{', '.join(given)}: apply to --price own (ownership cost); --price cloud reads "
                        f"--price-per-hour")
    if price == "own" and hourly:
        raise PlanError("--price-per-hour: applies to --price cloud; --price own reads --price-per-device, --years, "
                        "--electricity, --pue and --hosting")


def stray_prices(req: Request) -> None:
    """Refuse a price given for a device that is not among the request's candidates (`plan`; `whatif` may vary the
    candidates into it)."""
    from costmodel.spec.hardware import resolve_hardware

    candidates = {resolve_hardware(h)[0].id for h in req.candidates}
    for flag, table in (("--price-per-hour", req.price_per_hour), ("--price-per-device", req.price_per_device)):
        stray = sorted(set(table) - candidates)
        if stray:
            raise PlanError(f"{flag} {', '.join(stray)}: not among --candidates ({', '.join(sorted(candidates))})")


def parse_prices(items: list[str] | None, flag: str = "--price-per-hour", example: str = "h100=2.5") -> dict:
    """{device id: USD} from HW=USD items (each price a positive finite number)."""
    out = {}
    for item in items or []:
        m = re.fullmatch(r"([^=\s]+)=([0-9.eE+]+)", item.strip())
        value = None
        if m:
            try:
                value = float(m.group(2))
            except ValueError:
                value = None
        if value is None or not math.isfinite(value) or value <= 0:
            raise PlanError(f"{flag} {item}: expected HW=USD with a positive price, e.g. {example}")
        from costmodel.spec.hardware import load_hardware

        out[load_hardware(m.group(1)).id] = value
    return out
