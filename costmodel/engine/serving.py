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
import re
from dataclasses import dataclass
from functools import cached_property
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from costmodel.engine.poisson import ppf as poisson_ppf
from costmodel.engine.elementwise import increasing_grid, interp_one
from costmodel.errors import WorkloadError

BATCH_GRID = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


@dataclass(frozen=True)
class Dist:
    """A token-length distribution: fixed, uniform on [lo, hi], or lognormal with a mean and sigma."""

    mean: float
    sigma: float = 0.0  # of the underlying normal (lognormal); 0 = not lognormal
    lo: float | None = None  # uniform bounds
    hi: float | None = None

    def quantile(self, q: float) -> float:
        if self.lo is not None:
            return self.lo + q * (self.hi - self.lo)
        if self.sigma == 0:
            return self.mean
        mu = math.log(self.mean) - self.sigma**2 / 2
        return math.exp(mu + self.sigma * NormalDist().inv_cdf(q))

    @property
    def cv2(self) -> float:
        if self.lo is not None:
            return ((self.hi - self.lo) ** 2 / 12) / self.mean**2
        return math.exp(self.sigma**2) - 1 if self.sigma else 0.0


def check_prefix_hit(h) -> float:
    """A prefix-cache hit rate: the share of each prompt's tokens already in the KV cache."""
    if h is None:
        return 0.0
    if not (isinstance(h, (int, float)) and not isinstance(h, bool) and math.isfinite(h) and 0 <= h < 1):
        raise WorkloadError(f"--prefix-hit {h}: expected the cached share of each prompt, a fraction in [0, 1)")
    return float(h)


def conversation(prompt: float, gen: float, turns, prompt_dist: str | None = None, prefix_hit=None) -> tuple[Dist, float]:
    """(prompt lengths, prefix-hit share) of multi-turn conversations: each of T turns adds `prompt` new tokens
    and `gen` answer tokens, and turn k resends the whole history, L_k = P + (k − 1)(P + G), whose first
    (k − 1)(P + G) tokens are in the prefix cache. Prompts are uniform over the turns' lengths, on
    [P, P + (T − 1)(P + G)] with mean P + (T − 1)(P + G)/2 (exact: the lengths are evenly spaced), and the
    share of prompt tokens cached is Σ(k − 1)(P + G) / Σ L_k, applied to every prompt."""
    if isinstance(turns, bool) or not isinstance(turns, int) or not 1 <= turns <= 10_000:
        raise WorkloadError(f"--turns {turns}: expected a whole number of turns from 1 to 10000")
    for flag, given in (("--prompt-dist", prompt_dist not in (None, "", "fixed")), ("--prefix-hit", prefix_hit)):
        if given:
            raise WorkloadError(f"{flag}: --turns {turns} sets the prompt lengths and the cached share; give one or "
                                f"the other")
    step = float(prompt) + float(gen)
    last = float(prompt) + (turns - 1) * step
    cached = step * turns * (turns - 1) / 2
    total = turns * float(prompt) + cached
    return Dist((float(prompt) + last) / 2, lo=float(prompt), hi=last), cached / total


MAX_TOKENS = 10_000_000  # a lognormal's largest mean: cli/checks.py's bound on --prompt and --gen
MAX_SIGMA = 4.0  # a lognormal's largest sigma: its squared coefficient of variation e^σ² − 1 is 8.9e6 there (exp(σ²)
# overflows past σ = 26.6)


def parse_dist(text: str | None, nominal: float, name: str, error: type = WorkloadError) -> Dist:
    """fixed | mean (lengths vary, L is their mean: modelled at the mean) | uniform:R (on [R·L, L]) |
    lognormal:MEAN,SIGMA, for a nominal length L."""
    if not (isinstance(nominal, (int, float)) and math.isfinite(nominal) and nominal > 0):
        raise error(f"--{name} {nominal}: expected a positive number of tokens")
    t = (text or "fixed").strip()
    if t in ("fixed", "mean"):
        return Dist(float(nominal))
    m = re.fullmatch(r"uniform:([0-9.]+)", t)
    if m and 0 <= float(m.group(1)) <= 1:
        r = float(m.group(1))
        return Dist((1 + r) * nominal / 2, lo=r * nominal, hi=float(nominal))
    m = re.fullmatch(r"lognormal:([0-9.eE+]+),([0-9.eE+]+)", t)
    if m and 0 < float(m.group(1)) <= MAX_TOKENS and float(m.group(2)) <= MAX_SIGMA:
        return Dist(float(m.group(1)), float(m.group(2)))
    raise error(f"--{name}-dist {text}: expected fixed, mean, uniform:R (0 <= R <= 1) or lognormal:MEAN,SIGMA "
                f"(0 < MEAN <= {MAX_TOKENS:,} tokens, as --{name}; 0 <= SIGMA <= {MAX_SIGMA:g})")





def erlang_c(c: int, a: float) -> float:
    """Probability of waiting in M/M/c with offered load a = λ·S (< c), via the Erlang B recursion."""
    if a <= 0:
        return 0.0
    b = 1.0
    for k in range(1, c + 1):
        ab = a * b  # once: the same product both times (validate's split rows run this loop some 10^6 times)
        b = ab / (k + ab)
        if b < 1e-30 and k > a:  # past k = a every step multiplies b by less than a/k < 1: P(wait) < 1e-30
            break
    rho = a / c
    return b / (1 - rho + rho * b)


def mgc_wait(lam: float, service: float, c: int, cs2: float) -> tuple[float, float]:
    """(mean wait, P(wait)) in M/G/c by Allen–Cunneen; inf when unstable."""
    a = lam * service
    if a >= c:
        return math.inf, 1.0
    pw = erlang_c(c, a)
    return pw * service / (c - a) * (1 + cs2) / 2, pw


def wait_quantile(mean_wait: float, p_wait: float, q):
    """q-quantile (q a number or an array) of a wait with P(wait) = p_wait and an exponential tail
    given waiting: (W/P_wait)·ln(P_wait/(1 − q)) when P_wait > 1 − q, else 0."""
    qa = np.asarray(q, dtype=float)
    if mean_wait == 0:
        out = np.zeros_like(qa)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            tail = math.inf if not math.isfinite(mean_wait) else mean_wait / p_wait * np.log(p_wait / (1 - qa))
        out = np.where(p_wait > 1 - qa, tail, 0.0)
    return float(out) if out.ndim == 0 else out


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
    request_overhead: float = 0.0  # the engine's per-request time outside the model (API, tokenizer, scheduler)
    t_prefill_batch: np.ndarray | None = None  # prefill of b mean prompts at once, b on `batches`
    prefill_quantiles: tuple = ()  # ((q, prefill of one prompt at the q-quantile length), ...), q ascending

    def prefill_at(self, q):
        """Prefill of one prompt at the q-quantile of the prompt length (q <= 0.5: the mean prompt's;
        interpolated between the evaluated quantiles, else the planning percentile's)."""
        q = np.asarray(q, dtype=float)
        if not self.prefill_quantiles:
            return np.where(q <= 0.5, self.t_prefill, self.t_prefill_q)
        qs, ts = zip(*self.prefill_quantiles)
        return np.where(q <= 0.5, self.t_prefill, np.interp(q, qs, ts))

    def step(self, n: float) -> float:
        """The decode step at n running sequences (at least 1), interpolated on the batch grid."""
        return self._at(max(n, 1.0), self._grids[0], self.t_step)

    def _at(self, x, grid, values) -> float:
        """np.interp(x, batches, values) of one number: interp_one on its grid (`_grids`), else numpy's."""
        return float(np.interp(x, self.batches, values)) if grid is None else interp_one(float(x), *grid)

    @cached_property
    def _grids(self) -> tuple:
        """The decode steps' and the batched prefills' grids as interp_one takes them (None: np.interp's)."""
        return (increasing_grid(self.batches, self.t_step),
                None if self.t_prefill_batch is None else increasing_grid(self.batches, self.t_prefill_batch))

    def prefill_of(self, k: np.ndarray) -> np.ndarray:
        """Time to prefill k mean prompts sent at once (batch-1 prefill times k without the table;
        past the table's last batch b, its time per prompt times k); a number for a number k (the same value:
        float64 arithmetic either way, np.interp's own interpolation)."""
        if isinstance(k, float):  # one count, float or float64: a split deployment's bisections (validate)
            if self.t_prefill_batch is None:
                return k * self.t_prefill
            last_b, last_t = float(self.batches[-1]), float(self.t_prefill_batch[-1])
            return last_t * k / last_b if k > last_b else self._at(k, self._grids[1], self.t_prefill_batch)
        k = np.asarray(k, dtype=float)
        if self.t_prefill_batch is None:
            return k * self.t_prefill
        last_b, last_t = float(self.batches[-1]), float(self.t_prefill_batch[-1])
        return np.where(k > last_b, last_t * k / last_b, np.interp(k, self.batches, self.t_prefill_batch))

    def prefill_batch(self, lam: float, t_d: float) -> tuple[float, float]:
        """(k, T(k)): prompts per step that carries prompts, at arrival rate λ with decode steps of
        t_d, and their prefill time. Below λ·(t_d + t_p) = 1 some steps carry none and a step carries
        one prompt (1, t_p). Past it every step carries the prompts that arrived during the last one
        (engines fill a step's token budget from the waiting queue): k = λ·(t_d + T(k)) (fixed point
        from k = 1); (inf, inf) when it has none (prompts arrive faster than batches clear)."""
        t = self.t_prefill
        if lam * (t_d + t) <= 1.0:
            return 1.0, t
        # T(k) is piecewise linear (the grid, then T(b_last)/b_last per prompt past it): on each piece
        # T = a + s·k, the fixed point k = λ(t_d + a)/(1 − λs) is exact; take the first that lies on
        # its piece (the iteration from k = 1 converges to it, at rate λs, which may be too slow)
        if self.t_prefill_batch is None:
            ks, ts = np.array([1.0]), np.array([t])
        else:
            ks = np.asarray(self.batches, dtype=float)
            ts = np.asarray(self.t_prefill_batch, dtype=float)
        pieces = [(ks[i], ks[i + 1], ts[i], ts[i + 1]) for i in range(len(ks) - 1)]
        pieces.append((ks[-1], math.inf, ts[-1], ts[-1] + ts[-1] / ks[-1]))  # past the grid: per prompt
        for k0, k1, t0, t1 in pieces:
            slope = (t1 - t0) if k1 == math.inf else (t1 - t0) / (k1 - k0)
            a = t0 - slope * k0
            if lam * slope >= 1.0:
                continue
            k = lam * (t_d + a) / (1.0 - lam * slope)
            if k0 - 1e-9 <= k <= k1 + 1e-9 and k >= 1.0:
                return k, float(self.prefill_of(k))
        return math.inf, math.inf

    def min_prefill_per_prompt(self) -> float:
        """The least prefill time per prompt over the batches the engine can form (saturated load)."""
        if self.t_prefill_batch is None:
            return self.t_prefill
        return float(min(self.t_prefill, np.min(np.asarray(self.t_prefill_batch) / np.asarray(self.batches))))


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
    """Highest stable request rate of a replica with batch cap `cap` (requests/s): prompts prefilled
    in the batches a saturated queue forms (ReplicaPerf.prefill_batch)."""
    return 1.0 / (perf.min_prefill_per_prompt() + perf.gen_mean * perf.step(cap) / cap)


def _open_loop(perf: ReplicaPerf, lam: float, cap: int) -> tuple[float, float, float, float]:
    """(decoding n, TPOT, mean slot wait, P(wait)) at arrival rate λ below capacity: n solves
    n = λ·G·t_d(n)/(1 − steal) capped at b, steal = λ·t_p·(1 − 1/b); the slot wait is M/G/b
    (Allen–Cunneen) with the lifetime's prefill and decode variability taken as independent."""
    g = perf.gen_mean
    n = 1.0
    for _ in range(100):
        k, t_k = perf.prefill_batch(lam, perf.step(n))
        steal = lam * t_k / k * (1 - 1 / cap) if math.isfinite(k) else math.inf
        if steal >= 1:
            return float(cap), math.inf, math.inf, 1.0
        new = min(cap, lam * g * perf.step(n) / (1 - steal))
        if abs(new - n) < 1e-9 * max(1.0, n):
            break
        n = new
    tpot = perf.step(max(n, 1.0)) / (1 - steal)
    service = perf.t_prefill + g * tpot
    var_s = perf.prefill_cv2 * perf.t_prefill**2 + perf.gen_cv2 * (g * tpot) ** 2
    wq, pw = mgc_wait(lam, service, cap, var_s / service**2)
    return n, tpot, wq, pw


def serve(perf: ReplicaPerf, lam: float, cap: int, q: float) -> Load:
    """Latency of one replica at arrival rate λ with at most `cap` sequences in flight."""
    lam_max = capacity(perf, cap)
    if lam >= lam_max:
        return Load(False, "throughput", math.inf, math.inf, math.inf, cap, lam / lam_max, lam_max)
    n, tpot, wq, pw = _open_loop(perf, lam, cap)
    k, t_k = perf.prefill_batch(lam, perf.step(max(n, 1.0)))
    rho_p = lam * t_k / k if math.isfinite(k) else math.inf
    if cap > 1 and rho_p < 1:
        wp = rho_p * t_k * (1 + perf.prefill_cv2) / (2 * (1 - rho_p))
        pwp = rho_p
    else:
        wp, pwp = 0.0, 0.0
    ttft_mean = wq + wp + t_k
    ttft_q = perf.t_prefill_q + (t_k - perf.t_prefill) + wait_quantile(wq, pw, q) + wait_quantile(wp, pwp, q)
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


QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class LoadStats:
    """Steady state of one replica under a load: means and quantiles (seconds), rates (per second)."""

    mode: str  # closed | poisson
    ok: bool
    reason: str
    arrival_rps: float  # completed (= admitted) requests per second
    running: float  # sequences decoding (the steady-state batch)
    queued: float  # requests waiting for a slot
    utilization: float  # λ / capacity at the batch cap
    ttft: dict  # 'mean' and quantiles q -> seconds
    tpot: dict
    itl: dict
    e2e: dict


def _unbounded(mode: str, reason: str, lam: float, n: float, util: float, qs: tuple,
               queued: float = math.inf) -> LoadStats:
    """A load beyond capacity: every latency is unbounded (reported as such, never as a number)."""
    inf = {k: math.inf for k in ("mean", *qs)}
    return LoadStats(mode, False, reason, lam, n, queued, util, inf, inf, inf, inf)


class _Steady(NamedTuple):
    """The means of a steady state (`_steady`): decode step t_d, k prompts per prefill of t_k, TPOT, the
    prefill queue's mean wait and waiting probability, the residual step, decode steps, and the share of
    prefills that are other requests'."""

    t_d: float
    k: float
    t_k: float
    tpot: float
    wp: float
    pwp: float
    residual: float
    steps: float
    share: float


def _steady(perf: ReplicaPerf, mode: str, lam: float, n: float, cap: int, share: float | None = None) -> _Steady | None:
    """The means `_stats` builds on (its formulas), or None past the throughput bound (steal >= 1)."""
    t_d = perf.step(max(n, 1.0))
    if share is None:  # the share of prefills that are other requests' (as `serve` counts them)
        share = 1 - 1 / cap if cap > 1 else 0.0
    # k prompts per prefill step of t_k (one prompt of t_p at light load: ReplicaPerf.prefill_batch)
    k, t_k = perf.prefill_batch(lam, t_d)
    steal = lam * t_k / k * share if math.isfinite(k) else math.inf
    if steal >= 1:
        return None
    tpot = t_d / (1 - steal)
    # prefills queue behind other requests' prefills: in a closed loop only the others' (1 client: none)
    rho_p = lam * t_k / k * (share if mode == "closed" else 1.0)
    if cap > 1 and rho_p < 1:
        wp, pwp = rho_p * t_k * (1 + perf.prefill_cv2) / (2 * (1 - rho_p)), rho_p
    else:
        wp, pwp = 0.0, 0.0
    residual = min(1.0, n) * t_d / 2  # an arrival waits for the step in progress
    return _Steady(t_d, k, t_k, tpot, wp, pwp, residual, max(perf.gen_mean - 1, 0.0), share)


def _ttft_mean(perf: ReplicaPerf, s: _Steady, slot_wait: float) -> float:
    return slot_wait + s.residual + s.wp + s.t_k + perf.request_overhead


def _e2e_mean(perf: ReplicaPerf, s: _Steady, slot_wait: float) -> float:
    return _ttft_mean(perf, s, slot_wait) + s.steps * s.tpot


def _stats(perf: ReplicaPerf, mode: str, lam: float, n: float, cap: int, slot_wait: float, slot_wait_q, queued: float,
           qs: tuple, share: float | None = None, wave: tuple | None = None) -> LoadStats:
    """Latency statistics at arrival rate λ with n sequences decoding (the shared part of both loads).

    Other requests' prefills interleave with a sequence's decode steps (chunked prefill mixed into
    steps): over its G − 1 steps it meets K ~ Poisson(μ) of them, μ = λ·(1 − 1/b)·(G − 1)·TPOT, each
    adding t_p, so TPOT = t_d(n)/(1 − λ·t_p·(1 − 1/b)) on average (the mean of K·t_p/(G − 1) + t_d).
    A step carries a prefill with probability π = λ·(1 − 1/b)·t_d: ITL quantiles above 1 − π are
    t_d + t_p, below it t_d. TTFT = slot wait + residual step + prefill-queue wait (Pollaczek–
    Khinchine) + t_p; E2E quantiles add the TTFT and decode quantiles (slightly conservative).
    Past λ·(t_d + t_p) = 1 every step carries the k prompts that arrived during the last one
    (ReplicaPerf.prefill_batch): t_p above becomes T(k), met at λ/k per second (TPOT = t_d + T(k)).
    `slot_wait_q(q)` gives the slot wait's quantiles for an array of q."""
    s = _steady(perf, mode, lam, n, cap, share)
    if s is None:
        return _unbounded(mode, "throughput", lam, n, math.inf, qs, queued)
    t_d, k, t_k, tpot, wp, pwp, residual, steps, share = s
    mu = lam / k * share * steps * tpot
    # the share of steps that carry prompts: λ/k per second of steps of t_d (one prompt a step); past
    # light load every step carries them (λ/k · TPOT = 1)
    pi = min(1.0, lam / k * share * (tpot if k > 1 else t_d))
    batched = t_k - perf.t_prefill  # a prompt prefilled with k - 1 others waits for all of them
    ttft = {"mean": _ttft_mean(perf, s, slot_wait)}
    tp_ = {"mean": tpot}
    itl = {"mean": tpot}
    e2e = {"mean": _e2e_mean(perf, s, slot_wait)}

    def ttft_at(q: np.ndarray) -> np.ndarray:  # the steady state's quantile functions, on arrays of q
        return (slot_wait_q(q) + residual + wait_quantile(wp, pwp, q) + perf.prefill_at(q) + batched
                + perf.request_overhead)

    def tpot_at(q: np.ndarray) -> np.ndarray:
        return t_d + (poisson_ppf(q, mu) * t_k / steps if steps and t_k > 0 else 0.0 * q)  # (no prefills: none met)

    qa = np.array(qs, dtype=float)
    for q, t_q, p_q in zip(qs, ttft_at(qa), tpot_at(qa)):
        ttft[q], tp_[q] = float(t_q), float(p_q)
        itl[q] = t_d + (t_k if pi > 1 - q else 0.0)
        e2e[q] = ttft[q] + steps * tp_[q]
    if wave is not None:  # a benchmark's first wave: its requests all arrive at once
        first, share_first = wave
        ttft_grid = ttft_at(_MIX_Q)
        ttft = _mixture(ttft, ttft_grid, first + perf.request_overhead, share_first, qs)
        e2e = _mixture(e2e, ttft_grid + steps * tpot_at(_MIX_Q), first + perf.request_overhead + steps * tpot,
                       share_first, qs)
    util = lam / capacity(perf, cap)
    return LoadStats(mode, True, "", lam, n, queued, util, ttft, tp_, itl, e2e)


_MIX_Q = np.linspace(0.0005, 0.9995, 400)


def _mixture(steady: dict, steady_x: np.ndarray, wave: np.ndarray, w: float, qs: tuple) -> dict:
    """Mean and quantiles of a latency when a share w of requests has the first wave's values
    (equally likely) and the rest the steady state's (its quantiles `steady_x` at _MIX_Q): the
    mixture CDF (1 − w)·F_ss + w·F_wave, inverted on the union of both supports."""
    ss_x = np.maximum.accumulate(np.asarray(steady_x, dtype=float))
    wave = np.sort(wave)
    xs = np.unique(np.concatenate([ss_x, wave]))
    cdf = (1 - w) * np.interp(xs, ss_x, _MIX_Q, left=0.0, right=1.0) + w * np.searchsorted(wave, xs, "right") / len(wave)
    out = {"mean": (1 - w) * steady["mean"] + w * float(wave.mean())}
    for q in qs:
        out[q] = float(xs[min(int(np.searchsorted(cdf, q)), len(xs) - 1)])
    return out


def closed(perf: ReplicaPerf, clients: float, cap: int, qs: tuple = QUANTILES, prompts: float | None = None) -> LoadStats:
    """C clients, each sending its next request when the last completes (a benchmark's
    --max-concurrency C at request rate inf), at most `cap` sequences in flight: n = min(C, cap)
    decode together, the rest wait for a slot; the completion rate solves λ = C / E2E(λ) (Little).

    A benchmark of N requests (`prompts`) starts with its first m = min(C, b) at once: the k-th of
    them waits for k prefills, TTFT_k = T_prefill(k prompts), k = 1..m. That wave is a share
    min(1, C/N) of the requests, mixed with the steady state (`_mixture`): it is the TTFT tail of a
    short benchmark (InferenceX sends N = 10·C)."""
    clients = float(clients)
    n = min(clients, float(cap))
    queued = max(clients - n, 0.0)
    share = 1 - 1 / max(n, 1.0)  # with n decoding, a prefill belongs to another request with probability 1 − 1/n
    at, s, converged = _closed_rate(perf, n, cap, share)
    slot = queued / at if queued else 0.0
    if s is not None and not converged:  # the fixed point lies past the bound: the loop runs at the bound, and the
        # C clients' requests wait for it (Little: E2E = C/λ; C clients never queue without bound)
        slot += max(clients / at - _e2e_mean(perf, s, slot), 0.0)
    wave = None
    if prompts and s is not None:
        m = max(1, int(round(n)))
        wave = (perf.prefill_of(np.arange(1, m + 1)), min(1.0, clients / prompts))
    return _stats(perf, "closed", at, n, cap, slot, lambda q, s=slot: s, queued, qs, share, wave)


def _closed_rate(perf: ReplicaPerf, n: float, cap: int, share: float) -> tuple[float, _Steady | None, bool]:
    """(λ, its steady state, whether Little holds there) of a closed loop with n sequences in service: the root of
    g(λ) = λ·E2E₀(λ) − n, E2E₀ the latency without the slot wait (then E2E = C/λ with queued/λ added for the
    C − n clients waiting), by bisection. g increases with λ wherever the steady state holds (E2E₀ does), so the
    root is unique; past the throughput bound (`_steady` None) the loop runs at the last stable rate. A damped
    iteration of λ ← C/E2E(λ) oscillated where prefills bind (|dλ'/dλ| > 3: 8,000-token prompts at 99 clients
    landed on 7.39 req/s with E2E 139 s, 1,029 clients by Little, and 92 clients on 3.78 req/s)."""
    def g(lam):
        s = _steady(perf, "closed", lam, n, cap, share)
        return s, (None if s is None else lam * _e2e_mean(perf, s, 0.0) - n)

    lo, lo_s, hi = 0.0, None, n / (perf.t_prefill + perf.gen_mean * perf.step(n))
    for _ in range(64):  # an upper end: past the root or past the bound
        s, v = g(hi)
        if s is None or v >= 0:
            break
        lo, lo_s, hi = hi, s, 2 * hi
    hi_s = s if s is not None and v >= 0 else None  # a stable upper end: the root is bracketed
    for _ in range(200):
        if hi - lo <= 1e-13 * hi:
            break
        mid = 0.5 * (lo + hi)
        s, v = g(mid)
        if s is not None and v < 0:
            lo, lo_s = mid, s
        else:  # past the root (s holds) or past the bound (s None)
            hi, hi_s = mid, s
    if hi_s is not None:  # the root (the upper end holds: Little within 1e-13 of λ)
        return hi, hi_s, True
    if lo_s is None:  # no stable rate above 0 was met (a bound below 1e-13 of the first guess): the least one
        s, _ = g(lo if lo > 0 else hi * 1e-13)
        return (lo if lo > 0 else hi * 1e-13), s, False
    return lo, lo_s, False


def poisson(perf: ReplicaPerf, lam: float, cap: int, qs: tuple = QUANTILES) -> LoadStats:
    """Requests arriving at λ per second (open loop), at most `cap` in flight: the decoding
    population solves n = λ·G·TPOT(n) (Little), capped at b; slot waits are M/G/b (Allen–Cunneen,
    as `serve`)."""
    lam_max = capacity(perf, cap)
    if lam >= lam_max:
        # the queue grows without bound; the deployment completes requests at its capacity
        return _unbounded("poisson", "throughput", lam_max, cap, lam / lam_max, qs)
    n, _, wq, pw = _open_loop(perf, lam, cap)
    if not math.isfinite(wq):  # the slots saturate before the engine does
        return _unbounded("poisson", "slots", lam, n, lam / lam_max, qs)
    return _stats(perf, "poisson", lam, n, cap, wq, lambda q: wait_quantile(wq, pw, q), lam * wq, qs)


def perf_from_columns(m: dict, f: dict, hw: dict, tp: int, pp: int, prompt: Dist, gen: Dist,
                      percentile: float = 0.9, dp: int = 1, ep: int = 1, mtp: int = 0,
                      accept: float = 0.875, prefix_hit: float = 0.0) -> ReplicaPerf:
    """A replica's prefill (mean prompt and its percentile, batch 1) and decode step at a grid of
    batches (context = prompt + half the output) from the array engine, for one configuration's
    columns (a single estimate's or one measured row's, calibration overrides included). Under DP
    attention a request's prefill stalls every group's step, as under TP: the groups run in lock step
    at each MoE exchange (on the 74 published DP-attention + EP rows this reading is at 14% median
    error where prefills of the groups sharing one step were at 38%: README, Parallel layouts)."""
    from costmodel.engine.evaluate import evaluate

    plan = _perf_plan(m, f, hw, tp, pp, prompt, gen, percentile, dp, ep, mtp, prefix_hit)
    r = evaluate(m, f, hw, *plan.tables.rows, float(tp), float(pp), 1.0, dp, ep, mtp, accept)
    return _perf_of(plan, np.asarray(r.metrics["ttft_s"], dtype=float).reshape(-1),
                    np.asarray(r.metrics["tpot_s"], dtype=float).reshape(-1))


class ReplicaConfig(NamedTuple):
    """One configuration of perfs_from_columns: its columns' row, layout, lengths and prefix-hit share."""

    row: int
    tp: int
    pp: int
    prompt: Dist
    gen: Dist
    dp: int = 1
    ep: int = 1
    prefix_hit: float = 0.0


def perfs_from_columns(m: dict, f: dict, hw: dict, configs: list[ReplicaConfig], percentile: float = 0.9) -> list:
    """perf_from_columns for many configurations in one engine call, configuration k's columns row
    `configs[k].row` of m, f and hw (one value per row, or one for all). The engine evaluates rows
    independently, so each configuration's ReplicaPerf is the one perf_from_columns gives
    (tests/engine/test_serving_load.py; bit for bit where numpy's `power` on arrays is libm's, as on
    scalars: an AVX-512 build may differ in the last bit for ep > 1)."""
    from costmodel.engine.columns import row_at
    from costmodel.engine.distinct import columns_at
    from costmodel.engine.evaluate import evaluate

    if not configs:
        return []
    plans = [_perf_plan(*(row_at(c, k.row) for c in (m, f, hw)), k.tp, k.pp, k.prompt, k.gen, percentile, k.dp, k.ep,
                        0, k.prefix_hit) for k in configs]
    sizes = [len(plan.tables.rows[0]) for plan in plans]
    src = np.repeat([k.row for k in configs], sizes)
    tp, pp, dp, ep = (np.repeat(np.array([getattr(k, x) for k in configs], dtype=float), sizes)
                      for x in ("tp", "pp", "dp", "ep"))
    rows = [np.concatenate([plan.tables.rows[i] for plan in plans]) for i in range(4)]
    r = evaluate(columns_at(m, src), columns_at(f, src), columns_at(hw, src), *rows, tp, pp, 1.0, dp, ep)
    ends = np.cumsum(sizes)[:-1]
    ttft = np.split(np.asarray(r.metrics["ttft_s"], dtype=float).reshape(-1), ends)
    tpot = np.split(np.asarray(r.metrics["tpot_s"], dtype=float).reshape(-1), ends)
    return [_perf_of(plan, a, b) for plan, a, b in zip(plans, ttft, tpot)]


@dataclass(frozen=True)
class _PerfPlan:
    """perf_from_columns up to its engine call: the batch grid and the rows of its one engine call."""

    prompt: Dist
    gen: Dist
    max_b: int
    grid: np.ndarray
    tables: TableRows
    overhead: float


def _perf_plan(m, f, hw, tp, pp, prompt, gen, percentile, dp, ep, mtp, prefix_hit) -> _PerfPlan:
    from costmodel.engine.memory import max_batch
    from costmodel.engine.speculative import with_mtp_weights

    p_mean, g_mean = max(1.0, float(round(prompt.mean))), max(2.0, float(round(gen.mean)))
    # the largest batch as evaluate finds it (evaluate.lower_all), without lowering and timing a step
    layout = (np.asarray(x, dtype=float) for x in (tp, pp, dp, ep))
    fit = max_batch(with_mtp_weights(m, mtp), f, hw, np.asarray(p_mean), np.asarray(g_mean), np.asarray(0.0), *layout)
    max_b = max(1, int(np.asarray(fit).reshape(-1)[0]))
    # powers of two up to the largest batch (past BATCH_GRID when DP attention multiplies it)
    powers = sorted(set(BATCH_GRID) | {2 ** i for i in range(int(np.log2(max_b)) + 1)})
    grid = np.array([b for b in powers if b <= max_b] + ([max_b] if max_b not in powers else []), dtype=float)
    tables = table_rows(prompt, percentile, grid, np.array([prefix_hit]), steps=(grid, p_mean + g_mean / 2))
    overhead = float(np.asarray(hw.get("request_overhead_s", 0.0)).reshape(-1)[0])
    return _PerfPlan(prompt, gen, max_b, grid, tables, overhead)


def _perf_of(plan: _PerfPlan, ttft: np.ndarray, tpot: np.ndarray) -> ReplicaPerf:
    q_grid, t_pre, wave, step = split_tables(plan.tables, ttft, tpot)
    t_pre, wave = t_pre[0], wave[0]
    prompt, gen = plan.prompt, plan.gen
    return ReplicaPerf(float(t_pre[0]), float(t_pre[1]), prompt.cv2, plan.grid, step, float(gen.mean), gen.cv2,
                       plan.max_b, plan.overhead, wave, tuple(zip(q_grid, (float(t) for t in t_pre[2:]))))


def prefill_lengths(prompt: Dist, percentile: float) -> tuple[list, np.ndarray]:
    """(q_grid, lengths): the prompt's length quantiles a TTFT percentile needs (0.5 .. 0.999, and the
    planning one), and the prompts to prefill: [mean, the planning percentile's, each of q_grid's]."""
    q_grid = sorted({0.5, 0.75, 0.9, 0.95, 0.99, 0.999, float(percentile)})
    at = [prompt.mean, prompt.quantile(percentile), *[prompt.quantile(q) for q in q_grid]]
    return q_grid, np.array([max(1.0, float(round(x))) for x in at])


def prefill_tables(m: dict, f: dict, hw: dict, tp: int, pp: int, prompt: Dist, percentile: float, grid: np.ndarray,
                   hits: np.ndarray, dp: int = 1, ep: int = 1, mtp: int = 0, accept: float = 0.875, steps=None):
    """(q_grid, t_pre[h, lengths], wave[h, grid]) for each prefix-hit share h: one prompt's prefill at the
    mean, the `percentile` and the q_grid lengths, and k mean prompts prefilled at once for k on `grid`.
    A prompt's cached prefix (h of its tokens) is read from the KV cache, not prefilled; at least one
    token is. `steps` = (batches, context): decode steps at those batches after `context` tokens, their
    TPOT returned fourth, from the same engine call (one configuration's rows are independent)."""
    from costmodel.engine.evaluate import evaluate

    tables = table_rows(prompt, percentile, grid, hits, steps)
    r = evaluate(m, f, hw, *tables.rows, float(tp), float(pp), 1.0, dp, ep, mtp, accept)
    out = split_tables(tables, np.asarray(r.metrics["ttft_s"], dtype=float).reshape(-1),
                       np.asarray(r.metrics["tpot_s"], dtype=float).reshape(-1))
    return out if steps is not None else out[:3]


class TableRows(NamedTuple):
    """prefill_tables' engine call: its (batch, prompt, gen, context) rows in parts (single prompts,
    prompts prefilled together, decode steps) of `sizes` rows, for `n_hits` prefix-hit shares."""

    q_grid: list
    rows: tuple
    sizes: list
    n_hits: int


def table_rows(prompt: Dist, percentile: float, grid: np.ndarray, hits: np.ndarray, steps=None) -> TableRows:
    """The rows of prefill_tables' engine call."""
    q_grid, lengths = prefill_lengths(prompt, percentile)
    h = np.asarray(hits, dtype=float)[:, None]
    new = np.maximum(lengths * (1 - h), 1.0)
    p_mean = lengths[0]
    p_new = np.maximum(p_mean * (1 - h), 1.0)
    parts = [(1.0, new, 1.0, lengths - new), (grid, p_new, 1.0, p_mean - p_new)]  # (batch, prompt, gen, context)
    if steps is not None:
        parts.append((steps[0], 0.0, 2.0, steps[1]))
    shapes = [np.broadcast_shapes(*(np.shape(x) for x in part)) for part in parts]
    flat = tuple(np.concatenate([np.broadcast_to(np.asarray(part[i], dtype=float), shape).ravel()
                                 for part, shape in zip(parts, shapes)]) for i in range(4))
    return TableRows(q_grid, flat, [int(np.prod(shape)) for shape in shapes], len(h))


def split_tables(tables: TableRows, ttft: np.ndarray, tpot: np.ndarray) -> tuple:
    """prefill_tables' (q_grid, t_pre, wave, tpot or None) from the TTFT and TPOT of table_rows' rows."""
    ends = np.cumsum(tables.sizes)[:-1]
    parts = np.split(ttft, ends)
    out = (tables.q_grid, parts[0].reshape(tables.n_hits, -1), parts[1].reshape(tables.n_hits, -1))
    return out + (np.split(tpot, ends)[2] if len(tables.sizes) > 2 else None,)


def load_metrics(s: LoadStats, replicas: int, prompt: Dist, gen: Dist, qs: tuple = QUANTILES,
                 stream_interval: float = 1.0) -> dict:
    """The benchmark-style metrics of a steady state, in SI units, summed over `replicas`.

    A server streaming every k tokens (`stream_interval`) sends a chunk per k decode steps, so a
    client's inter-token latency is the time of k steps: ITL_q(k) = (k − 1)·TPOT + ITL_q(1) (one
    step of the chunk at its quantile, the others at the mean)."""
    out = {"request_throughput_per_s": s.arrival_rps * replicas,
           "throughput_tokens_per_s": s.arrival_rps * replicas * gen.mean,
           "total_throughput_tokens_per_s": s.arrival_rps * replicas * (prompt.mean + gen.mean)}
    k = max(float(stream_interval), 1.0)
    chunk = (k - 1.0) * s.tpot["mean"] if k > 1 else 0.0  # (0 · an unbounded TPOT is no time, not NaN)
    for name, d in (("ttft", s.ttft), ("tpot", s.tpot), ("itl", s.itl), ("e2e_latency", s.e2e)):
        extra = chunk if name == "itl" else 0.0
        out[f"{name}_s"] = d["mean"] + extra
        for q in qs:
            out[f"{name}_p{int(round(q * 100))}_s"] = d[q] + extra
    return out
