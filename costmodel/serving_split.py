"""Disaggregated (split prefill/decode) deployments: parse a layout such as "2p:tp4,1d:tp8", ask the
engine for each side's replica, price the KV transfer over the link between them and apply a load
(engine/disagg.py holds the queueing)."""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from costmodel.engine.disagg import LINKS, Side, SplitLoad, kv_transfer_time, link_rate, split_closed, split_poisson
from costmodel.engine.serving import QUANTILES, Dist, load_metrics, parse_dist
from costmodel.errors import WorkloadError
from costmodel.serving import check_load, replica_perf

_PART = re.compile(r"(\d+)([pd])((?::(?:tp|dp|ep)\d+)*)(?:@([A-Za-z0-9_.\-]+))?")


@dataclass(frozen=True)
class Workers:
    """One side of a split layout: `count` workers of tp devices each (DP attention dp, EP ep), on
    `hardware` (None: the deployment's device)."""

    count: int
    tp: int = 1
    dp: int = 1
    ep: int = 1
    hardware: str | None = None

    @property
    def devices(self) -> int:
        return self.count * self.tp

    def label(self, role: str) -> str:
        extra = "".join(f":{k}{v}" for k, v in (("dp", self.dp), ("ep", self.ep)) if v > 1)
        return f"{self.count}{role}:tp{self.tp}{extra}" + (f"@{self.hardware}" if self.hardware else "")


def parse_disagg(text: str) -> tuple[Workers, Workers]:
    """(prefill, decode) workers from "Xp[:tpT][:dpD][:epE][@HW],Yd[:tpT][:dpD][:epE][@HW]"."""
    usage = ("expected prefill and decode workers such as 2p:tp4,1d:tp8 (each side: COUNT then p or d, then "
             ":tpN, :dpN, :epN and @DEVICE as needed)")
    parts = [p.strip() for p in str(text or "").split(",") if p.strip()]
    sides = {}
    for part in parts:
        m = _PART.fullmatch(part)
        if not m:
            raise WorkloadError(f"--disagg {text}: {part!r} is not a side; {usage}")
        count, role, opts, hw = int(m.group(1)), m.group(2), m.group(3), m.group(4)
        kw = {k: int(v) for k, v in re.findall(r":(tp|dp|ep)(\d+)", opts)}
        if count < 1 or any(v < 1 for v in kw.values()):
            raise WorkloadError(f"--disagg {text}: {part!r}: counts and degrees must be >= 1")
        if role in sides:
            raise WorkloadError(f"--disagg {text}: two {'prefill' if role == 'p' else 'decode'} sides; {usage}")
        # a side given only by its DP attention or EP degree spans that many devices (as estimate's --dp/--ep)
        tp = kw.get("tp", math.lcm(kw.get("dp", 1), kw.get("ep", 1)))
        sides[role] = Workers(count, tp, kw.get("dp", 1), kw.get("ep", 1), hw)
    if set(sides) != {"p", "d"}:
        raise WorkloadError(f"--disagg {text}: {usage}")
    return sides["p"], sides["d"]


MIN_LINK_GBS, MAX_LINK_GBS = 0.1, 1e5  # below a 1 Gb/s NIC, above any fabric: not a link


def check_link(kv_link) -> str | float:
    """--kv-link as `auto` (the default), `scale-out`, `scale-up` or a positive number of GB/s per device."""
    link = "auto" if kv_link is None else kv_link
    if isinstance(link, bool) or not isinstance(link, (str, int, float)):
        raise WorkloadError(f"--kv-link {kv_link}: expected auto, scale-out, scale-up or GB/s per device")
    if isinstance(link, str) and link not in LINKS:
        try:
            link = float(link)
        except ValueError:
            raise WorkloadError(f"--kv-link {kv_link}: expected auto, scale-out, scale-up or GB/s per device") from None
    if not isinstance(link, str) and not (math.isfinite(link) and MIN_LINK_GBS <= link <= MAX_LINK_GBS):
        raise WorkloadError(f"--kv-link {kv_link}: expected GB/s per device from {MIN_LINK_GBS:g} (1 Gb/s Ethernet "
                            f"is 0.125) to {MAX_LINK_GBS:g}")
    return link


def link_bandwidth(kv_link, hw, devices: int) -> tuple[float, str]:
    """(bytes/s per device, one direction; its description) of the link a device of a split deployment
    of `devices` devices sends or receives KV on (engine.disagg.link_rate)."""
    link = check_link(kv_link)
    bw, kind = link_rate(link, hw.scale_out_bandwidth or 0.0, hw.interconnect_bandwidth or 0.0,
                         hw.scale_up_domain or math.inf, devices)
    if kind == "given":
        return bw, f"{link:g} GB/s per device (given)"
    if bw <= 0:
        what = "scale-out link (interconnect.scale_out)" if kind == "scale-out" else "device interconnect"
        beyond = kind == "scale-out" and link == "auto" and hw.interconnect_bandwidth and hw.scale_up_domain
        raise WorkloadError(f"--kv-link {link}: {hw.id} states no {what} for {devices} devices"
                            f"{' (more than its scale-up domain)' if beyond else ''}; pass --kv-link GB/s")
    name = "scale-out" if kind == "scale-out" else re.split(r" via |;| \(", hw.interconnect_kind or "interconnect")[0]
    return bw, f"{hw.id} {name} {bw / 1e9:g} GB/s per device"


def kv_bytes_per_device(one, tokens: float, whole: bool = False) -> float:
    """One sequence's KV (and recurrent state) of `tokens` on one device of the estimate's replica, in
    the engine's blocks (engine.memory.kv_bytes_per_sequence at its attention parallelism tp/dp); with
    `whole`, the prompt's whole KV (all heads and layers: tp = pp = 1) that a prefill worker hands over."""
    import numpy as np

    from costmodel.engine.memory import kv_bytes_per_sequence
    from costmodel.estimate import columns_for

    m, f, hw = columns_for(one)
    w = one.workload
    tp, pp = (1.0, 1.0) if whole else (w.tp / w.dp, w.pp)
    return float(np.asarray(kv_bytes_per_sequence(m, f, tokens, tp, pp, hw)).reshape(-1)[0])


def kv_transfer(kv_link, one_p, one_d, kv_p: float, kv_d: float, devices: int, t_prefill: float,
                overlap: bool = False) -> tuple[float, str]:
    """(seconds, link) of one request's KV (kv_p / kv_d bytes per prefill / decode device) in a split
    deployment of `devices` devices: each side's link (link_bandwidth; two kinds of device share no
    scale-up fabric, so `auto` takes their NICs), engine.disagg.kv_transfer_time."""
    (bw_p, link_p), (bw_d, link_d) = _links(kv_link, one_p, one_d, devices)
    t = kv_transfer_time(kv_p, bw_p, kv_d, bw_d, t_prefill, one_p.model.layers, overlap)
    return t, link_p if link_p == link_d else f"{link_p}; {link_d}"


def link_seconds(kv_link, one_p, one_d, kv_p: float, kv_d: float, devices: int) -> tuple[float, float]:
    """(prefill, decode) seconds one request's KV holds a worker's links: its shard per device over that device's
    link, kv_p / bw_p and kv_d / bw_d, overlapped with the prefill or not (engine.disagg.Side.link_s)."""
    (bw_p, _), (bw_d, _) = _links(kv_link, one_p, one_d, devices)
    return kv_p / bw_p, kv_d / bw_d


def _links(kv_link, one_p, one_d, devices: int) -> tuple:
    """Each side's (bytes/s, link) (link_bandwidth; two kinds of device share no scale-up fabric: `auto` is the
    NIC)."""
    if one_p.hardware.id != one_d.hardware.id and kv_link in (None, "auto"):
        kv_link = "scale-out"
    return tuple(link_bandwidth(kv_link, o.hardware, devices) for o in (one_p, one_d))


def split_sides(model: str, hw: str, fmt: str, prefill: Workers, decode: Workers, prompt: Dist, gen: Dist,
                engine: str = "auto", percentile: float = 0.9, kv_fmt: str | None = None, prefix_hit: float = 0.0,
                kv_link=None, kv_overlap: bool = False, **memory_flags):
    """(prefill Side, decode Side, KV transfer seconds, details) of a split deployment; WorkloadError
    when a side cannot run (memory, layout). The prefix cache (`prefix_hit`) spares prefill work; the
    whole prompt's KV still moves to the decode worker."""
    sides, ones = [], []
    for role, w in (("prefill", prefill), ("decode", decode)):
        got, why = replica_perf(model, w.hardware or hw, fmt, w.tp, prompt, gen, engine, percentile, 1, kv_fmt,
                                w.dp, w.ep, prefix_hit if role == "prefill" else 0.0, **memory_flags)
        if got is None:
            raise WorkloadError(f"--disagg {role} workers ({w.label(role[0])}): {why}")
        sides.append(Side(got[0], w.count))
        ones.append(got[1])
    tokens = max(1.0, float(round(prompt.mean)))
    # the whole deployment: within one scale-up domain when it fits
    kv = kv_bytes_per_device(ones[0], tokens), kv_bytes_per_device(ones[1], tokens)
    devices = prefill.devices + decode.devices
    t_kv, link = kv_transfer(kv_link, *ones, *kv, devices, sides[0].perf.t_prefill, kv_overlap)
    held = link_seconds(kv_link, *ones, *kv, devices)
    sides = [dataclasses.replace(side, link_s=s) for side, s in zip(sides, held)]
    details = {"kv_bytes_per_request": kv_bytes_per_device(ones[0], tokens, whole=True), "kv_transfer_s": t_kv,
               "kv_link": link, "kv_overlap": bool(kv_overlap)}
    return sides[0], sides[1], t_kv, details, ones


def serve_disagg(model: str, hw: str, fmt: str = "bf16", disagg: str = "1p:tp1,1d:tp1", *,
                 concurrency: float | None = None, request_rate: float | None = None, prompt: int = 512,
                 gen: int = 128, prompt_dist: str | None = None, gen_dist: str | None = None, engine: str = "auto",
                 kv_fmt: str | None = None, percentiles: tuple = QUANTILES, stream_interval: int | None = None,
                 kv_link=None, kv_overlap: bool = False, prefix_hit: float | None = None, **memory_flags) -> dict:
    """TTFT, TPOT, ITL, E2E and rates of a split deployment (engine/disagg.py) under a closed loop of
    `concurrency` clients or Poisson arrivals at `request_rate` (with `concurrency` as the most in
    flight over the decode workers).

        >>> costmodel.serve_disagg("llama-3.1-70b", "h100", "fp8", "2p:tp2,1d:tp4", request_rate=4)["ttft_s"]
    """
    from costmodel.engine.serving import check_prefix_hit

    if (concurrency is None) == (request_rate is None) and request_rate is None:
        raise WorkloadError("--disagg: give --concurrency C (closed loop) or --request-rate R (open loop)")
    check_load(concurrency, request_rate, stream_interval, None)
    pre, dec = parse_disagg(disagg)
    p, g = parse_dist(prompt_dist, prompt, "prompt"), parse_dist(gen_dist, gen, "gen")
    ps, ds, t_kv, details, ones = split_sides(model, hw, fmt, pre, dec, p, g, engine, max(percentiles), kv_fmt,
                                              check_prefix_hit(prefix_hit), kv_link, kv_overlap, **memory_flags)
    cap = ds.perf.max_batch
    if concurrency is not None and request_rate is not None:
        cap = max(1, min(cap, int(concurrency // dec.count) or 1))
    if request_rate is not None:
        got: SplitLoad = split_poisson(ps, ds, request_rate, cap, t_kv, percentiles)
    else:
        got = split_closed(ps, ds, concurrency, cap, t_kv, percentiles)
    return split_result(got, ones, pre, dec, p, g, cap, concurrency, request_rate, percentiles,
                        stream_interval or ones[1].efficiency.stream_interval, details, ds.perf.max_batch)


def split_result(got: SplitLoad, ones, pre: Workers, dec: Workers, p: Dist, g: Dist, cap: int, concurrency, rate,
                 qs: tuple, stream_interval: float, details: dict, max_batch: int) -> dict:
    """serve_load's dict for a split deployment, with its sides and the KV transfer under `disagg`."""
    from costmodel.serving import _intervals

    s, (op, od) = got.stats, ones
    out = {"load": s.mode, "model": od.model.id, "hardware": od.hardware.id, "format": od.format.id,
           "engine": od.efficiency.engine, "calibration": list(od.efficiency.levels),
           "calibration_case": "split prefill/decode: no disaggregated rows calibrate the split; each side's "
                               "engine is " + od.calibration_case,
           "tp": dec.tp, "pp": 1, "dp": dec.dp, "ep": dec.ep, "replicas": dec.count, "concurrency": concurrency,
           "request_rate": rate, "prompt_mean": p.mean, "gen_mean": g.mean, "stable": s.ok,
           "running_per_replica": got.decode_running, "queued_per_replica": s.queued / dec.count, "batch_cap": cap,
           "max_batch": max_batch, "utilization": s.utilization, "stream_interval": stream_interval}
    out.update(load_metrics(s, 1, p, g, qs, stream_interval))
    devices: dict = {}
    for one, side in ((op, pre), (od, dec)):
        devices[one.hardware.id] = devices.get(one.hardware.id, 0) + side.devices
    out["disagg"] = {"prefill": {"workers": pre.count, "hardware": op.hardware.id, "tp": pre.tp, "dp": pre.dp,
                                 "ep": pre.ep, "devices": pre.devices, "utilization": got.prefill_utilization,
                                 "wait_s": got.prefill_wait_s},
                     "decode": {"workers": dec.count, "hardware": od.hardware.id, "tp": dec.tp, "dp": dec.dp,
                                "ep": dec.ep, "devices": dec.devices, "utilization": got.decode_utilization,
                                "batch_cap": cap},
                     "devices": devices, "kv_link_utilization": got.link_utilization, **details}
    price = (pre.devices * op.hardware.price_per_hour + dec.devices * od.hardware.price_per_hour
             if op.hardware.price_per_hour and od.hardware.price_per_hour else None)
    tokens_per_h = out["throughput_tokens_per_s"] * 3600.0
    out["usd_per_million_tokens"] = price / tokens_per_h * 1e6 if price and tokens_per_h > 0 else None
    out["simulated"] = False
    out["interval"] = _intervals(out, od.efficiency.engine, od.hardware.family, rates=not (s.mode == "poisson" and s.ok),
                                 layout=True)
    for band in out["interval"].values():
        band["basis"] = "split prefill/decode is not calibrated: the loaded band united with the layout rows' band; " \
                        + band["basis"]
    if not s.ok:
        out["note"] = "the offered load exceeds the deployment's capacity: queues grow without bound"
    return out
