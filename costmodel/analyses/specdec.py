"""Speculative decoding (Leviathan, Kalman, Matias, ICML 2023, arXiv 2211.17192).

  tokens per target step  E(α, γ) = (1 − α^(γ+1)) / (1 − α)        (γ + 1 when α = 1)
  speedup (Theorem 3.8)   S(α, γ, c) = E(α, γ) / (γ·c + 1),  c = draft step time / target step time
With the engine, c comes from the draft's and target's decode step times on the device, and a
second figure replaces "verify γ+1 tokens = 1 target step" with the engine's time for a target
forward over γ+1 new tokens: S_engine = E · t_target / (γ · t_draft + t_verify(γ+1)).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.engine.speculative import tokens_per_step  # noqa: F401  (E(α, γ), re-exported)
from costmodel.errors import CostModelError, DoesNotFitError, WorkloadError


class SpecDecError(CostModelError):
    """Bad speculative-decoding input."""


def speedup(alpha, gamma, c):
    """S(α, γ, c) = E(α, γ) / (γ c + 1)."""
    return tokens_per_step(alpha, gamma) / (np.asarray(gamma, dtype=float) * c + 1)


def best_gamma(alpha: float, c: float, gamma_max: int = 32) -> tuple[int, float]:
    """Integer γ in 1..gamma_max maximizing S(α, γ, c)."""
    g = np.arange(1, gamma_max + 1)
    s = speedup(alpha, g, c)
    i = int(np.argmax(s))
    return int(g[i]), float(s[i])


def check(alpha: float, gamma: int) -> None:
    if not 0 <= alpha <= 1:
        raise SpecDecError(f"--alpha {alpha}: expected an acceptance rate in [0, 1]")
    if gamma < 1:
        raise SpecDecError(f"--gamma {gamma}: expected at least 1 draft token per step")


@dataclass(frozen=True)
class SpecDecResult:
    alpha: float
    gamma: int
    tokens_per_step: float
    cost_ratio: float
    speedup: float
    speedup_engine: float
    best_gamma: int
    best_speedup: float
    target_step_s: float
    draft_step_s: float
    verify_step_s: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def analyze(target: str, draft: str, hw: str, fmt: str, alpha: float, gamma: int, context: int = 512,
            engine: str | None = "auto", gamma_max: int = 32, tp: int = 1) -> SpecDecResult:
    """Speculative decoding of `target` with `draft` on `tp` devices, step costs from the engine.

        >>> costmodel.speculative_decoding("llama-3.1-70b", "llama-3.2-1b", "h100", "fp8", alpha=0.8, gamma=4, tp=2)
    """
    from costmodel.estimate import estimate, require_fit

    check(alpha, gamma)
    if not isinstance(context, int) or isinstance(context, bool) or context < 1:  # tokens the drafts continue from
        raise WorkloadError(f"--context {context}: expected the tokens before the drafted ones, 1 or more")
    kw = dict(batch=1, prompt=context, gen=2, engine=engine, tp=tp)
    try:
        target_est, draft_est = (require_fit(estimate(x, hw, fmt, **kw)) for x in (target, draft))
    except DoesNotFitError as exc:  # specdec shards over --tp alone: its advice in those terms
        import re

        raise DoesNotFitError(re.sub(r"try --tp (\d+) --pp (\d+)", lambda g: f"try --tp {int(g[1]) * int(g[2])}",
                                     str(exc))) from None
    for flag, e in (("--target", target_est), ("--draft", draft_est)):
        if e.model.is_encoder:  # no decode step to draft or verify: its TPOT is NaN
            raise WorkloadError(f"{flag} {e.model.id} is an encoder: speculative decoding drafts and verifies "
                                f"generated tokens, which it has none of")
    t_target, t_draft = target_est.metric("tpot_s"), draft_est.metric("tpot_s")
    # verification: one target forward over γ+1 new tokens after `context` cached ones
    t_verify = estimate(target, hw, fmt, batch=1, prompt=gamma + 1, gen=1, context=context, engine=engine,
                        tp=tp).metric("ttft_s")
    c = t_draft / t_target
    e = float(tokens_per_step(alpha, gamma))
    g_best, s_best = best_gamma(alpha, c, gamma_max)
    return SpecDecResult(alpha, gamma, e, c, float(speedup(alpha, gamma, c)),
                         e * t_target / (gamma * t_draft + t_verify), g_best, s_best, t_target, t_draft, t_verify)
