"""Disaggregated serving: prefill workers and decode workers on separate devices, KV moved between them.

Poisson arrivals at λ split evenly over x prefill workers and y decode workers (DistServe, Zhong et
al. 2024; Splitwise, Patel et al. 2024: the two phases no longer share a step):
  prefill worker   a single server that batches the prompts waiting when it frees (prefill instances
                   fill a step's token budget from their queue): per-prompt service s(k) = T(k)/k for
                   the batch k = 1 + λ_p·W that forms while a prompt waits, and the Pollaczek–Khinchine
                   wait W = ρ·s·(1 + c²)/(2(1 − ρ)), ρ = λ_p·s(k), solved for W (bisection). Without a
                   batching gain (T(k) = k·t_p) it is exactly M/G/1. A prompt's prefill after its wait
                   is counted as t_p (its batch-1 time: exact when prefill is compute-bound).
  KV transfer      every device of the prefill worker sends its shard of the prompt's KV (the memory
                   model's bytes: blocks, windows, recurrent state) over its own link, and every decode
                   device receives its shard:  t_kv = max(KV_p / bw_p, KV_d / bw_d), KV_x one sequence's
                   KV per device at that side's attention parallelism. Sent after the prefill (vLLM's
                   NixlConnector, SGLang's Mooncake transfer) or, overlapped layer by layer, only the
                   part the prefill does not hide: max(t_kv − t_p·(L − 1)/L, t_kv/L). A worker's links move
                   one request's KV at a time: busy ρ = λ/workers · KV/bw a side, an M/D/1 wait ρ·t/(2(1 − ρ)) of
                   the busier side first, unbounded from ρ = 1 (link_load).
  decode worker    the aggregated model with no prefills in its steps (engine.serving.poisson on a
                   replica whose prefill takes no time): TPOT = t_d(n), n = λ_d·G·t_d(n) capped at b,
                   and an M/G/b wait for a slot.
  TTFT = prefill wait + t_p + link wait + t_kv + decode slot wait + the step in progress + one decode step (the
  decode worker's first step emits the first token) + the engine's request overhead; quantiles add
  the parts' quantiles (slightly conservative, as E2E does in the aggregated model).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from costmodel.engine.serving import (QUANTILES, LoadStats, ReplicaPerf, _unbounded, capacity, poisson,
                                      wait_quantile)


@dataclass(frozen=True)
class Side:
    """One side of a split deployment: `workers` replicas whose engine view is `perf`."""

    perf: ReplicaPerf
    workers: int
    link_s: float = 0.0  # seconds one request's KV holds a worker's link (each device sends its shard on its own)


@dataclass(frozen=True)
class SplitLoad:
    """A split deployment's steady state: the whole deployment's LoadStats and each side's figures."""

    stats: LoadStats
    prefill_wait_s: float
    prefill_utilization: float
    decode_utilization: float
    kv_transfer_s: float
    decode_running: float  # sequences decoding per decode worker
    link_utilization: float = 0.0  # the busier side's KV links: arrivals per worker x link_s


def decode_only(perf: ReplicaPerf) -> ReplicaPerf:
    """The replica as a decode worker: its steps carry no prefills (the prefill workers do them)."""
    zero = None if perf.t_prefill_batch is None else np.zeros_like(np.asarray(perf.t_prefill_batch, dtype=float))
    return dataclasses.replace(perf, t_prefill=0.0, t_prefill_q=0.0, prefill_cv2=0.0, t_prefill_batch=zero,
                               prefill_quantiles=())


def prefill_capacity(perf: ReplicaPerf) -> float:
    """Prompts per second one prefill worker completes at most: 1 / the least prefill time per prompt
    over the batches it can form."""
    return 1.0 / perf.min_prefill_per_prompt()


def prefill_wait(perf: ReplicaPerf, lam: float) -> tuple[float, float]:
    """(mean wait, P(wait)) of a prompt at a prefill worker receiving λ prompts per second (module
    docstring: Pollaczek–Khinchine with the per-prompt service of the batch that forms)."""
    if lam <= 0:
        return 0.0, 0.0
    if lam >= prefill_capacity(perf) * (1 - 1e-12):
        return math.inf, 1.0
    c2 = perf.prefill_cv2

    def rho_s(w: float) -> tuple[float, float]:
        k = 1.0 + lam * w
        s = float(perf.prefill_of(k)) / k
        return lam * s, s

    def excess(w: float) -> float:  # P-K wait at the batch a wait of w forms, minus w (decreasing in w)
        rho, s = rho_s(w)
        return (math.inf if rho >= 1 else rho * s * (1 + c2) / (2 * (1 - rho))) - w

    lo, hi = 0.0, max(perf.t_prefill, 1e-9)
    for _ in range(200):
        if excess(hi) <= 0:
            break
        lo, hi = hi, 2 * hi
    else:
        return math.inf, 1.0
    while hi - lo > 1e-12 * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    w = 0.5 * (lo + hi)
    return w, min(1.0, rho_s(w)[0])


def kv_transfer_time(kv_prefill_device: float, bw_prefill: float, kv_decode_device: float, bw_decode: float,
                     t_prefill: float = 0.0, layers: float = 1.0, overlap: bool = False) -> float:
    """Seconds of KV transfer a request waits for: each device sends / receives its shard over its own
    link, max(KV_p/bw_p, KV_d/bw_d); overlapped with a prefill of `layers` layers, only what it does
    not hide, max(t_kv − t_p·(L − 1)/L, t_kv/L)."""
    t = max(kv_prefill_device / bw_prefill, kv_decode_device / bw_decode)
    if overlap:
        L = max(float(layers), 1.0)
        return max(t - t_prefill * (L - 1) / L, t / L)
    return t


LINKS = ("auto", "scale-out", "scale-up")


def link_rate(link, scale_out: float, interconnect: float, domain: float, devices: float) -> tuple[float, str]:
    """(bytes/s per device and direction, which link) that KV moves on between the prefill and the decode
    workers of a split deployment of `devices` devices: `scale-up` half the device's bidirectional
    interconnect, `scale-out` its NIC; `auto` the scale-up fabric when the deployment fits one scale-up
    domain (an 8-GPU NVLink node, a 72-GPU NVL72 rack), else the NIC; a number is GB/s. (0, link) when
    the device states no such link."""
    if not isinstance(link, str):
        return float(link) * 1e9, "given"
    if link == "auto":
        link = "scale-up" if interconnect > 0 and devices <= domain else "scale-out"
    return ((interconnect / 2 if interconnect > 0 else 0.0) if link == "scale-up" else float(scale_out or 0.0)), link


def split_capacity(prefill: Side, decode: Side, cap: int) -> float:
    """Highest stable request rate: the least of the prefill workers', the decode workers' and their KV links'
    (workers / link_s: a link moves one request's KV at a time)."""
    links = [s.workers / s.link_s for s in (prefill, decode) if s.link_s > 0]
    return min(prefill.workers * prefill_capacity(prefill.perf), decode.workers * capacity(decode_only(decode.perf), cap),
               *links)


def link_load(prefill: Side, decode: Side, lam: float) -> tuple[float, float]:
    """(utilization, mean wait) of the busier side's KV links at λ: ρ = λ/workers · link_s, and the M/D/1 wait
    ρ·t/(2(1 − ρ)) (Pollaczek–Khinchine with a fixed transfer time t; inf from ρ = 1)."""
    rho, t = max((lam / s.workers * s.link_s, s.link_s) for s in (prefill, decode))
    return rho, (rho * t / (2 * (1 - rho)) if rho < 1 else math.inf)


def split_poisson(prefill: Side, decode: Side, lam: float, cap: int, t_kv: float,
                  qs: tuple = QUANTILES) -> SplitLoad:
    """The deployment's latencies at λ requests per second (module docstring). `cap`: sequences in
    flight per decode worker. Rates in the returned stats are the whole deployment's."""
    lp, ld = lam / prefill.workers, lam / decode.workers
    dec = decode_only(decode.perf)
    w, pw = prefill_wait(prefill.perf, lp)
    ds = poisson(dec, ld, cap, qs)
    util_p = lp / prefill_capacity(prefill.perf)
    util_d = ld / capacity(dec, cap)
    util_l, w_link = link_load(prefill, decode, lam)
    util = max(util_p, util_d, util_l)
    if not math.isfinite(w) or not ds.ok or not math.isfinite(w_link):
        reason = "throughput" if not math.isfinite(w) else ds.reason if not ds.ok else "the KV link's throughput"
        return SplitLoad(_unbounded("poisson", reason, min(lam, split_capacity(prefill, decode, cap)), ds.running, util,
                                    qs), w, util_p, util_d, t_kv, ds.running, util_l)
    t_d = dec.step(max(ds.running, 1.0))
    perf = prefill.perf
    t_kv_waited = t_kv + w_link  # each quantile adds the link's mean wait (the other parts add their quantiles)
    ttft = {"mean": w + perf.t_prefill + t_kv_waited + ds.ttft["mean"] + t_d}
    qa = np.array(qs, dtype=float)
    for q, wq, tp_q in zip(qs, np.atleast_1d(wait_quantile(w, pw, qa)), np.atleast_1d(perf.prefill_at(qa))):
        ttft[q] = float(wq + tp_q + t_kv_waited + ds.ttft[q] + t_d)
    steps = max(perf.gen_mean - 1, 0.0)
    e2e = {k: ttft[k] + steps * ds.tpot[k] for k in ttft}
    stats = LoadStats("poisson", True, "", lam, ds.running * decode.workers, ds.queued * decode.workers, util, ttft,
                      dict(ds.tpot), dict(ds.itl), e2e)
    return SplitLoad(stats, w, util_p, util_d, t_kv, ds.running, util_l)


def split_closed(prefill: Side, decode: Side, clients: float, cap: int, t_kv: float,
                 qs: tuple = QUANTILES, prompts: float | None = None) -> SplitLoad:
    """C clients each sending the next request when the last completes: the completion rate λ solves
    λ·E2E(λ) = C (Little) on the open-loop figures, by bisection below the deployment's capacity.

    A benchmark of N requests (`prompts`) starts with its first m = min(C, decode slots) at once, dealt
    round-robin over the x prefill workers: the j-th prompt of a worker waits for j prefills, TTFT =
    T(j) + t_kv + a decode step. That wave is a share min(1, C/N) of the requests, mixed with the steady
    state as in the aggregated model (engine.serving.closed)."""
    top = split_capacity(prefill, decode, cap) * (1 - 1e-9)

    def excess(lam: float) -> float:  # λ·E2E(λ) − C: increasing in λ, +inf where the load is unstable
        s = split_poisson(prefill, decode, lam, cap, t_kv, (0.5,)).stats
        return lam * s.e2e["mean"] - clients if s.ok else math.inf

    lo, f_lo, hi, f_hi = 0.0, -float(clients), top, excess(top)
    while not math.isfinite(f_hi) and hi - lo > 1e-12 * top:  # bisect into the stable range first
        mid = 0.5 * (lo + hi)
        f_mid = excess(mid)
        lo, f_lo, hi, f_hi = (mid, f_mid, hi, f_hi) if f_mid < 0 else (lo, f_lo, mid, f_mid)
    side = 0
    for _ in range(100):  # Illinois (regula falsi) on the bracket
        if f_hi <= 0 or hi - lo <= 1e-12 * top:
            break
        mid = (lo * f_hi - hi * f_lo) / (f_hi - f_lo) if math.isfinite(f_hi) else 0.5 * (lo + hi)
        f_mid = excess(mid)
        if abs(f_mid) <= 1e-10 * clients:
            lo = mid
            break
        if f_mid < 0:
            lo, f_lo = mid, f_mid
            f_hi = f_hi / 2 if side == -1 else f_hi
            side = -1
        else:
            hi, f_hi = mid, f_mid
            f_lo = f_lo / 2 if side == 1 else f_lo
            side = 1
    lo = hi if f_hi <= 0 else lo
    got = split_poisson(prefill, decode, max(lo, 1e-12), cap, t_kv, qs)
    stats = dataclasses.replace(got.stats, mode="closed")
    if prompts and stats.ok:
        stats = _with_wave(stats, got, prefill, decode, clients, cap, t_kv, qs, prompts)
    return dataclasses.replace(got, stats=stats)


def _with_wave(stats: LoadStats, got: SplitLoad, prefill: Side, decode: Side, clients: float, cap: int, t_kv: float,
               qs: tuple, prompts: float) -> LoadStats:
    """The steady state's TTFT and E2E mixed with the benchmark's first wave (split_closed)."""
    from costmodel.engine.serving import _MIX_Q, _mixture

    perf, x = prefill.perf, prefill.workers
    m = max(1, int(round(min(clients, decode.workers * cap))))
    t_d = decode_only(decode.perf).step(max(got.decode_running, 1.0))
    wave = np.repeat(np.asarray(perf.prefill_of(np.arange(1, math.ceil(m / x) + 1)), dtype=float), x)[:m]
    wave = wave + t_kv + t_d + decode.perf.request_overhead
    # the steady TTFT's quantile function: the prefill side's, plus the decode side's mean admission
    w, pw = prefill_wait(perf, got.stats.arrival_rps / x)
    rest = stats.ttft["mean"] - w - perf.t_prefill
    grid = np.asarray(wait_quantile(w, pw, _MIX_Q)) + np.asarray(perf.prefill_at(_MIX_Q)) + rest
    share = min(1.0, clients / prompts)
    ttft = _mixture(stats.ttft, grid, wave, share, qs)
    steps = max(perf.gen_mean - 1, 0.0)
    e2e = {k: ttft[k] + steps * stats.tpot[k] for k in ttft}
    return dataclasses.replace(stats, ttft=ttft, e2e=e2e)
