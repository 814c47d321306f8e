"""Test-time scaling: accuracy after N samples or rounds, its saturation, verifier limits.

  F(N)  = F_max · (1 − (1 − p)^N)                      (parallel samples / sequential rounds;
  ΔF(N) = F(N+1) − F(N) = F_max · p · (1 − p)^N          Wang et al. 2025, arXiv 2505.20522)
  N*    = smallest N with ΔF(N) < ε  (0 when F_max · p < ε)
  ceiling of resample-until-accepted with false-positive rate f (completeness 1):
        r / (r + (1 − r) f)                             (Stroebl et al. 2024, arXiv 2411.17501)
  its accuracy after K attempts: r (1 − β^K)/(1 − β), β = (1 − r)(1 − f), which rises to the
        ceiling; its gain ΔF(K) = r β^K gives the verifier-aware saturation point
  utility with penalty C per false positive over task types (π_t, r_t), K attempts:
        E[U(K)] = Σ_t π_t (r_t − C (1 − r_t) f) (1 − β_t^K)/(1 − β_t),  β_t = (1 − r_t)(1 − f)
  compute-matched exchange (Snell et al. 2024, arXiv 2408.03314):
        k(M, R) = M + 3 (M − 1) / R
"""
from __future__ import annotations

import math

import numpy as np

from costmodel.errors import CostModelError


class TTSError(CostModelError):
    """Bad test-time-scaling input."""


def _check_p(p: float, name: str = "p", closed: bool = False) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):  # '0.3': not compared
        raise TTSError(f"--{name} {p!r}: expected a probability (a number) in {'[0, 1]' if closed else '(0, 1)'}")
    ok = (0 <= p <= 1) if closed else (0 < p < 1)
    if not ok or isinstance(p, bool):
        raise TTSError(f"--{name} {p}: expected a probability in {'[0, 1]' if closed else '(0, 1)'}")


def accuracy(n, p: float, fmax: float = 1.0):
    """F(N) = F_max · (1 − (1 − p)^N), as −expm1(N · log1p(−p)): N·p where p is tiny (1 − p rounds to 1)."""
    return fmax * -np.expm1(np.asarray(n, dtype=float) * np.log1p(-p))


def marginal_gain(n, p: float, fmax: float = 1.0):
    """ΔF(N) = F_max · p · (1 − p)^N: the gain of the (N+1)-th unit of budget."""
    return fmax * p * (1 - p) ** np.asarray(n, dtype=float)


def saturation_point(p: float, eps: float, fmax: float = 1.0, false_positive: float | None = None) -> int:
    """Smallest N with ΔF(N) < ε; 0 when even the first unit gains less than ε. With a verifier of
    false-positive rate f the curve is resample-until-accepted's: ΔF(N) = r · β^N, β = (1 − r)(1 − f)."""
    _check_p(p)
    _check_p(fmax, "fmax", closed=True)
    if not eps > 0:
        raise TTSError(f"--eps {eps}: expected a positive threshold")
    if false_positive is not None:
        _check_p(false_positive, "false-positive", closed=True)
        scale, base = p, (1 - p) * (1 - false_positive)
        gain = lambda n: scale * base ** n  # noqa: E731
    else:
        scale, base = fmax * p, 1 - p
        gain = lambda n: marginal_gain(n, p, fmax)  # noqa: E731
    if scale < eps:
        return 0
    if base <= 0:
        return 1
    n = math.ceil(math.log(eps / scale) / math.log(base))
    # guard the boundary against floating point: the definition is the smallest N with ΔF(N) < ε
    while n > 0 and gain(n - 1) < eps:
        n -= 1
    while gain(n) >= eps:
        n += 1
    return n


def verifier_ceiling(r: float, false_positive: float) -> float:
    """Accuracy bound of resampling until an imperfect verifier accepts: r / (r + (1 − r) f)."""
    _check_p(r, "p", closed=True)
    _check_p(false_positive, "false-positive", closed=True)
    if r == 0:
        return 0.0
    return r / (r + (1 - r) * false_positive)


def resample_accuracy(k, r: float, false_positive: float):
    """P(correct) after up to K attempts of resample-until-accepted (completeness 1)."""
    k = np.asarray(k, dtype=float)
    beta = (1 - r) * (1 - false_positive)  # reject probability per attempt
    accept = r + (1 - r) * false_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        geometric = np.where(beta < 1, (1 - beta ** k) / (1 - beta), k)
    return r * geometric if accept > 0 else 0.0 * k


def expected_utility(k, types: list[tuple[float, float]], false_positive: float, penalty: float):
    """E[U(K)] over task types [(share π_t, single-sample accuracy r_t)]: +1 correct, −C false positive."""
    k = np.asarray(k, dtype=float)
    total = 0.0 * k
    for share, r in types:
        beta = (1 - r) * (1 - false_positive)
        geometric = (1 - beta ** k) / (1 - beta) if beta < 1 else k
        total = total + share * (r - penalty * (1 - r) * false_positive) * geometric
    return total


def optimal_attempts(types: list[tuple[float, float]], false_positive: float, penalty: float,
                     k_max: int = 200) -> tuple[int, float]:
    """(K*, E[U(K*)]): the number of attempts maximizing expected utility (0 = abstain)."""
    ks = np.arange(0, k_max + 1)
    u = expected_utility(ks, types, false_positive, penalty)
    best = int(np.argmax(u))
    return best, float(u[best])


def compute_matched_multiplier(m: float, ratio: float) -> float:
    """k(M, R) = M + 3(M − 1)/R: test-time compute of a small model matching an M-times larger one
    at inference-to-pretraining token ratio R (FLOPs: 6·N·D_pre + 2·N·k·D_inf = M·(6·N·D_pre + 2·N·D_inf))."""
    if not (m >= 1 and ratio > 0):
        raise TTSError(f"compute-matched exchange needs M >= 1 and R > 0 (got M={m}, R={ratio})")
    return m + 3 * (m - 1) / ratio


def majority_accuracy(k, p: float):
    """Majority vote over K samples when wrong answers agree (conservative): P(X > K/2) + ½P(X = K/2),
    X ~ Bin(K, p). Up to EXACT_K samples the binomial terms as they are; above, each term from its logarithm
    (lgamma), where comb(K, i) overflows a float."""
    from math import comb

    out = []
    for kk in np.atleast_1d(k):
        kk = int(kk)
        if kk > EXACT_K and 0 < p < 1:
            i = np.arange(kk // 2, kk + 1)  # the tie (K even) or the last minority count (K odd), then the majority
            terms = np.exp(_log_comb(kk, i) + i * np.log(p) + (kk - i) * np.log1p(-p))
            acc = float(terms[1:].sum()) + (0.5 * float(terms[0]) if kk % 2 == 0 else 0.0)
            out.append(min(acc, 1.0))
            continue
        acc = sum(comb(kk, i) * p**i * (1 - p) ** (kk - i) for i in range(kk // 2 + 1, kk + 1))
        if kk % 2 == 0:
            acc += 0.5 * comb(kk, kk // 2) * p ** (kk // 2) * (1 - p) ** (kk // 2)
        out.append(acc)
    return np.array(out) if np.ndim(k) else out[0]


EXACT_K = 1000  # comb(K, K/2) fits a float below K = 1030


def _log_comb(k: int, i: np.ndarray) -> np.ndarray:
    """log C(k, i) by lgamma (math.lgamma, element by element: numpy has no log-gamma without scipy)."""
    from math import lgamma

    return lgamma(k + 1) - np.array([lgamma(x + 1) + lgamma(k - x + 1) for x in i.tolist()])
