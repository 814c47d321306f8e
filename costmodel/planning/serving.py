"""Serving under load: continuous batching with queueing, for one replica (analytical).

Per replica, requests arrive as a Poisson stream of rate λ; each needs a prefill of time t_p and
G decode steps. With n sequences decoding, one step takes t_d(n) (the engine's decode step at
batch n). The engine interleaves prefills with decode steps (continuous batching):
  busy fraction     ρ = λ·(t_p + G·t_d(n)/n)                (< 1 for a stable replica)
  TPOT              = t_d(n) / (1 − ρ_p·(1 − 1/b)),  ρ_p = λ·t_p  (other requests' prefills
                      interrupt the decode steps; none when the batch cap b is 1)
  decoding          n = λ·G·TPOT   (Little's law; solved as a fixed point, capped at b)
  slot lifetime     S = t_p + G·TPOT(n)
  waiting for one of b slots: M/G/b with the Allen–Cunneen approximation
                    W_q = C(b, λS) · S / (b − λS) · (1 + c_s²)/2   (Erlang C; exact for M/M/1
                    with c_s² = 1 and for M/D/1 with c_s² = 0)
  waiting for the prefill unit (b > 1): Pollaczek–Khinchine W_p = ρ_p·t_p·(1 + c_p²) / (2(1 − ρ_p))
  TTFT = W_q + W_p + t_p; the q-quantile of a wait assumes an exponential tail given waiting:
                    w_q = (W/P_wait)·ln(P_wait/(1 − q)) when P_wait > 1 − q, else 0
At saturation (n = b) the request rate is 1/(t_p + G·t_d(b)/b): exactly the engine's max-load
throughput B·G/(T_prefill(B prompts) + G·T_step(B)) divided by G.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load a = λ·S (< c), via the Erlang B recursion."""
    if a <= 0:
        return 0.0
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1 - rho + rho * b)


def mgc_wait(lam: float, service: float, c: int, cs2: float) -> tuple[float, float]:
    """(mean wait, P(wait)) in M/G/c by Allen–Cunneen; inf when unstable."""
    a = lam * service
    if a >= c:
        return math.inf, 1.0
    pw = erlang_c(c, a)
    return pw * service / (c - a) * (1 + cs2) / 2, pw


def wait_quantile(mean_wait: float, p_wait: float, q: float) -> float:
    """q-quantile of a wait with P(wait) = p_wait and an exponential tail given waiting."""
    if mean_wait == 0 or p_wait <= 1 - q:
        return 0.0
    if not math.isfinite(mean_wait):
        return math.inf
    return mean_wait / p_wait * math.log(p_wait / (1 - q))


@dataclass(frozen=True)
class ReplicaPerf:
    """What the engine says about one replica (device x format x tp)."""

    t_prefill: float  # one prompt of mean length, batch 1
    t_prefill_q: float  # one prompt at the planning percentile of the prompt length
    prefill_cv2: float  # squared coefficient of variation of the prefill time
    batches: np.ndarray  # decode batch grid
    t_step: np.ndarray  # decode step time at each batch (context = prompt + gen/2)
    gen_mean: float
    gen_cv2: float
    max_batch: int  # the most sequences that fit memory (and the engine's limit)

    def step(self, n: float) -> float:
        return float(np.interp(max(n, 1.0), self.batches, self.t_step))


@dataclass(frozen=True)
class Load:
    ok: bool
    reason: str
    ttft_mean: float
    ttft_q: float
    tpot: float
    decoding: float
    utilization: float  # λ / capacity at the batch cap
    capacity_rps: float


def capacity(perf: ReplicaPerf, cap: int) -> float:
    """Highest stable request rate of a replica with batch cap `cap` (requests/s)."""
    return 1.0 / (perf.t_prefill + perf.gen_mean * perf.step(cap) / cap)


def serve(perf: ReplicaPerf, lam: float, cap: int, q: float) -> Load:
    """Latency of one replica at arrival rate λ with at most `cap` sequences in flight."""
    g = perf.gen_mean
    lam_max = capacity(perf, cap)
    if lam >= lam_max:
        return Load(False, "throughput", math.inf, math.inf, math.inf, cap, lam / lam_max, lam_max)
    rho_p = lam * perf.t_prefill
    steal = rho_p * (1 - 1 / cap)
    n = 1.0
    for _ in range(100):  # fixed point n = λ·G·t_d(n)/(1 − steal), capped at the batch cap
        new = min(cap, lam * g * perf.step(n) / (1 - steal))
        if abs(new - n) < 1e-9 * max(1.0, n):
            break
        n = new
    tpot = perf.step(max(n, 1.0)) / (1 - steal)
    service = perf.t_prefill + g * tpot
    # lifetime variability: prefill and decode parts, independent
    var_s = (perf.prefill_cv2 * perf.t_prefill**2) + perf.gen_cv2 * (g * tpot) ** 2
    cs2 = var_s / service**2
    wq, pw = mgc_wait(lam, service, cap, cs2)
    if cap > 1 and rho_p < 1:
        wp = rho_p * perf.t_prefill * (1 + perf.prefill_cv2) / (2 * (1 - rho_p))
        pwp = rho_p
    else:
        wp, pwp = 0.0, 0.0
    ttft_mean = wq + wp + perf.t_prefill
    ttft_q = perf.t_prefill_q + wait_quantile(wq, pw, q) + wait_quantile(wp, pwp, q)
    # load relative to the replica's capacity at this batch cap (its max-load throughput)
    return Load(math.isfinite(ttft_q), "" if math.isfinite(ttft_q) else "throughput", ttft_mean, ttft_q, tpot, n,
                lam / lam_max, lam_max)


def md1_wait(lam: float, service: float) -> float:
    """Closed form M/D/1 mean wait: ρ·S / (2(1 − ρ))."""
    rho = lam * service
    return rho * service / (2 * (1 - rho))


def mm1_wait(lam: float, service: float) -> float:
    """Closed form M/M/1 mean wait: ρ·S / (1 − ρ)."""
    rho = lam * service
    return rho * service / (1 - rho)


def simulate_single_server(lam: float, services: np.ndarray, seed: int = 0) -> float:
    """Mean wait of a FIFO single-server queue with Poisson arrivals (Lindley recursion)."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1 / lam, len(services))
    w = 0.0
    total = 0.0
    for s, a in zip(services[:-1], gaps[1:]):
        w = max(0.0, w + s - a)
        total += w
    return total / (len(services) - 1)
