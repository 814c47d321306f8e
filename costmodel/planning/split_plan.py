"""Split prefill/decode deployments for `plan --disagg auto|only`: every pairing of a prefill replica and
a decode replica (same format; devices, tensor parallelism and layouts from the plan's grid). For each
decode batch cap, decode worker counts y from the fewest the load needs upward (each meeting the TPOT
target), and for each the fewest prefill workers x that meet the TTFT target at the plan's percentile
(engine/disagg.py); the cheapest (x, y) wins, and the scan over y stops once y decode workers alone cost
more. TTFT's parts add: prefill (wait + prefill, a function of x) + KV transfer (of the pair, over the
link the whole deployment's devices allow) + decode admission (slot wait, the step in progress, one
step: a function of y)."""
from __future__ import annotations

import math

from costmodel.engine.disagg import (Side, decode_only, prefill_capacity, prefill_wait, split_capacity,
                                     split_poisson)
from costmodel.engine.serving import capacity, poisson, wait_quantile
from costmodel.errors import CostModelError
from costmodel.planning.energy import watts
from costmodel.spec.units import HOURS_PER_MONTH


def _prefill_part(perf, lam: float, q: float) -> float:
    """The prefill side's share of TTFT at its q-quantile: wait + the prefill of the q-quantile prompt."""
    w, pw = prefill_wait(perf, lam)
    return float(wait_quantile(w, pw, q)) + float(perf.prefill_at(q)) if math.isfinite(w) else math.inf


def _decode_side(cand: dict, req, cap: int, y: int, memo: dict):
    """(decode-admission TTFT part at the percentile, LoadStats) of y decode workers with batch cap `cap`,
    or None when they do not meet the TPOT target (or the load)."""
    key = (id(cand), cap, y)
    if key not in memo:
        dec = decode_only(cand["perf"])
        q = req.percentile
        s = poisson(dec, req.qps / y, cap, (q,))
        ok = s.ok and (req.slo_tpot is None or s.tpot["mean"] <= req.slo_tpot)
        memo[key] = (s.ttft[q] + dec.step(max(s.running, 1.0)), s) if ok else None
    return memo[key]


def _prefill_workers(perf, req, budget: float, max_workers: int, memo: dict) -> int | None:
    """The fewest prefill workers whose TTFT part at the percentile is within `budget` seconds."""
    x = max(1, math.ceil(req.qps / prefill_capacity(perf) * (1 + 1e-9)))

    def part(n: int) -> float:
        if n not in memo:
            memo[n] = _prefill_part(perf, req.qps / n, req.percentile)
        return memo[n]

    if budget <= 0 or part(max_workers) > budget:
        return None
    if part(x) <= budget:
        return x
    lo = hi = x  # part(lo) is over budget; double hi until it is within, then bisect
    while part(hi) > budget:
        lo, hi = hi, min(2 * hi, max_workers)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if part(mid) <= budget else (mid, hi)
    return hi


def split_deployments(req, cands: list[dict], kv, price, max_workers: int = 4096) -> tuple[list, list]:
    """(deployments, rejected) of split deployments from the plan's replica candidates
    ({'label', 'hw', 'fmt', 'tp', 'dp', 'ep', 'perf', 'est'}); `kv(p, d, devices)` gives the KV transfer
    seconds of a pair in a deployment of `devices` devices and its link; `price(est, devices, utilization,
    req)` its ($/hour, terms) (plan.hourly_cost)."""
    q = req.percentile
    deployments, rejected = [], []
    pmemo = {id(c): {} for c in cands}
    dmemo: dict = {}
    no_link = set()
    for p in cands:
        for d in [c for c in cands if c["fmt"] == p["fmt"]]:
            label = f"split {p['label']} -> {d['label']}"
            t1 = float(d["perf"].t_step[0])
            if req.slo_tpot is not None and t1 > req.slo_tpot:
                rejected.append({"candidate": label, "reason": f"TPOT: a decode step takes {t1:.3g} s even at batch 1 "
                                                             f"(SLO {req.slo_tpot:g} s)"})
                continue
            try:
                pair = p["tp"] + d["tp"]
                kv(p, d, pair)
            except CostModelError as exc:  # once per pair of devices: the link is theirs
                if (p["hw"], d["hw"]) not in no_link:
                    no_link.add((p["hw"], d["hw"]))
                    rejected.append({"candidate": f"split {p['hw']} -> {d['hw']}", "reason": f"KV link: {exc}"})
                continue
            try:
                best = _best_pair(req, p, d, kv, price, pmemo[id(p)], dmemo, max_workers)
            except CostModelError as exc:  # a side that cannot be priced
                rejected.append({"candidate": label, "reason": str(exc)})
                continue
            if best is None:
                t_kv = kv(p, d, pair)[0]
                floor = float(p["perf"].prefill_at(q)) + t_kv + t1
                rejected.append({"candidate": label, "reason": f"TTFT: prefill + KV transfer ({t_kv * 1e3:.3g} ms) + "
                                 f"decode admission take at least {floor:.3g} s (SLO {req.slo_ttft:g} s), or "
                                 f"more than {max_workers} workers would be needed"})
            else:
                deployments.append(best)
    return deployments, rejected


def _best_pair(req, p: dict, d: dict, kv, price, pmemo: dict, dmemo: dict, max_workers: int) -> dict | None:
    """The cheapest (x prefill, y decode) deployment of one pair under the targets, or None. For each batch
    cap, y runs from the fewest the load needs until y decode workers alone cost more than the best found
    (or 64 past the first that meets TPOT); x is the fewest for the TTFT budget y leaves. The KV link is
    the one a deployment of x·tp_p + y·tp_d devices allows (re-solved when it is slower than the pair's)."""
    best = None
    dec = decode_only(d["perf"])
    for cap in [int(b) for b in d["perf"].batches]:
        y0 = max(1, math.ceil(req.qps / capacity(dec, cap) * (1 + 1e-9)))
        first = None
        for y in range(y0, max_workers + 1):
            if first is not None and y > first + 64:
                break
            if best is not None and price(d["est"], y * d["tp"], 0.0, req)[0] >= best["usd_per_hour"]:
                break
            got = _decode_side(d, req, cap, y, dmemo)
            if got is None:
                continue
            first = y if first is None else first
            admit = got[0]
            t_kv, link = kv(p, d, p["tp"] + d["tp"])
            x = _prefill_workers(p["perf"], req, req.slo_ttft - t_kv - admit, max_workers, pmemo)
            if x is not None and x * p["tp"] + y * d["tp"] > p["tp"] + d["tp"]:
                t_all, link_all = kv(p, d, x * p["tp"] + y * d["tp"])
                if t_all > t_kv:  # the whole deployment spans more than the pair's fabric
                    t_kv, link = t_all, link_all
                    x = _prefill_workers(p["perf"], req, req.slo_ttft - t_kv - admit, max_workers, pmemo)
            if x is None:
                continue
            if best is not None and (price(p["est"], x * p["tp"], 0.0, req)[0] + price(d["est"], y * d["tp"], 0.0, req)[0]
                                     >= best["usd_per_hour"]):
                continue  # its devices idle already cost as much as the best (the cost's lower bound)
            dep = _deployment(req, p, d, x, y, cap, t_kv, link, price)
            if dep is not None and (best is None or dep["usd_per_hour"] < best["usd_per_hour"]):
                best = dep
    return best


def _link_held(req, p: dict, d: dict, devices: int) -> tuple[float, float]:
    """(prefill, decode) seconds one request's KV holds a worker's links (serving_split.link_seconds; after the
    plan's KV transfer, which stores each side's KV bytes in `kv_bytes`)."""
    from costmodel.serving_split import link_seconds

    return link_seconds(req.kv_link, p["est"], d["est"], p["kv_bytes"], d["kv_bytes"], devices)


def _deployment(req, p: dict, d: dict, x: int, y: int, cap: int, t_kv: float, link: str, price) -> dict | None:
    """A priced split deployment of x prefill and y decode workers (its latencies from split_poisson)."""
    q = req.percentile
    held = _link_held(req, p, d, x * p["tp"] + y * d["tp"])
    sides = Side(p["perf"], x, held[0]), Side(d["perf"], y, held[1])
    got = split_poisson(*sides, req.qps, cap, t_kv, (q,))
    s = got.stats
    if not s.ok:
        return None
    terms = {}
    cost = idle = full = 0.0
    for cand, n, util in ((p, x, got.prefill_utilization), (d, y, got.decode_utilization)):
        c, t = price(cand["est"], n * cand["tp"], util, req)  # a side without a price raises: the pair's reason
        cost += c
        idle += price(cand["est"], n * cand["tp"], 0.0, req)[0]
        full += price(cand["est"], n * cand["tp"], 1.0, req)[0]
        for k, v in t.items():
            terms[k] = terms.get(k, 0.0) + v
    devices = x * p["tp"] + y * d["tp"]
    hw = p["hw"] if p["hw"] == d["hw"] else f"{p['hw']}+{d['hw']}"
    kwh = (watts(p["est"], x * p["tp"], got.prefill_utilization) + watts(d["est"], y * d["tp"], got.decode_utilization)
           ) * HOURS_PER_MONTH / 1000
    cap_qps = split_capacity(*sides, cap)
    return {"mode": "split", "hardware": hw, "format": p["fmt"], "tp": d["tp"], "dp": d["dp"], "ep": d["ep"],
            "layout": f"{x}p:{p['layout']} {y}d:{d['layout']}", "replicas": x + y, "devices": devices,
            "batch_cap": cap, "utilization": s.utilization, "ttft_s": s.ttft[q], "ttft_mean_s": s.ttft["mean"],
            "tpot_s": s.tpot["mean"], "decoding_per_replica": got.decode_running, "usd_per_hour": cost,
            "capacity_qps": cap_qps, "usd_per_hour_idle": idle, "usd_per_hour_full": full,
            "usd_per_month": cost * HOURS_PER_MONTH,
            "usd_per_million_tokens": cost / (req.qps * req.gen.mean * 3600) * 1e6, "kwh_per_month": kwh,
            "prefill": {"workers": x, "hardware": p["hw"], "tp": p["tp"], "dp": p["dp"], "ep": p["ep"],
                        "utilization": got.prefill_utilization, "wait_s": got.prefill_wait_s},
            "decode": {"workers": y, "hardware": d["hw"], "tp": d["tp"], "dp": d["dp"], "ep": d["ep"],
                       "utilization": got.decode_utilization, "batch_cap": cap},
            "kv_transfer_s": t_kv, "kv_link": link, **terms}


def why(deployments: list, only: bool = False) -> str | None:
    """One line saying why the cheapest deployment is split or aggregated (None without both kinds)."""
    split = [d for d in deployments if d.get("mode") == "split"]
    agg = [d for d in deployments if d.get("mode") != "split"]
    if not deployments:
        return None
    best = deployments[0]
    if not split:
        return "aggregated: no split deployment meets the SLOs"
    if not agg:
        return (f"split: {'only split deployments were searched' if only else 'no aggregated deployment meets the SLOs'}"
                f"; the cheapest moves {best['kv_transfer_s'] * 1e3:.3g} ms of KV per request")
    other = agg[0] if best.get("mode") == "split" else split[0]
    ratio = other["usd_per_hour"] / best["usd_per_hour"]
    if best.get("mode") == "split":
        return (f"split: {best['layout']} costs {1 / ratio:.2f}x the cheapest aggregated deployment "
                f"({other['hardware']} {other['layout']}, ${other['usd_per_hour']:,.2f}/hour): its decode steps carry no "
                f"prefills (TPOT {best['tpot_s'] * 1e3:.3g} ms against {other['tpot_s'] * 1e3:.3g} ms), so each decode "
                f"worker holds {best['decoding_per_replica']:.0f} sequences within the targets; KV moves in "
                f"{best['kv_transfer_s'] * 1e3:.3g} ms per request")
    return (f"aggregated: the cheapest split deployment ({other['hardware']} {other['layout']}) costs {ratio:.2f}x "
            f"(${other['usd_per_hour']:,.2f}/hour): at this load the prefills fit between decode steps")
