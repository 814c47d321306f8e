"""Visual tokens against LLM size at a fixed inference compute (Li et al., arXiv:2411.03312, ICLR 2025).

  Y(N, V) = A · N^-α · V^-β + D      error (1 - average score); N: LLM parameters in billions, V: visual tokens
  C = 2 · N · (Q + V)                 the paper's inference FLOPs per query, Q text tokens
  at a fixed C, Y falls with (Q + V)^α · V^-β minimal:  V* = β·Q / (α - β) when α > β, else the most tokens
The law is refitted on the authors' measured scores (data/vlm_token_scaling.csv, sources in
data/quality_sources.md) and scored leaving one LLM size out.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from costmodel.errors import CostModelError, suggest

TASKS = ("visual_reasoning", "ocr")
V_RANGE = (1.0, 576.0)  # the measured visual-token counts (one token to CLIP ViT-L's 576)
X0 = (0.45, 0.08, 0.02, 0.1)  # start of the fit: inside the authors' grid-search ranges (objective.py)


def law_error(law, n_b, v):
    """A·N^-α·V^-β + D for a TokenLaw or its report dict (keys A, alpha, beta, D)."""
    get = law.__getitem__ if isinstance(law, dict) else law.__getattribute__
    return get("A") * np.power(n_b, -get("alpha")) * np.power(v, -get("beta")) + get("D")


@dataclass(frozen=True)
class TokenLaw:
    """Y(N, V) = A · N^-alpha · V^-beta + D fitted on one task's measured points."""

    task: str
    A: float
    alpha: float
    beta: float
    D: float
    points: int
    sizes: tuple  # measured LLM sizes (billions)
    rmse: float  # in-sample, accuracy points (0..1 scale)
    held_out: dict = field(default_factory=dict)  # leave one LLM size out: median / max |error|

    def error(self, n_b, v):
        """Predicted error at n_b billion parameters and v visual tokens."""
        return law_error(self, n_b, v)

    def optimal_tokens(self, text_tokens: float) -> float:
        """V* = β·Q/(α - β) within the measured 1-576 tokens (the most tokens when β ≥ α)."""
        if self.alpha <= self.beta:
            return V_RANGE[1]
        return float(np.clip(self.beta * text_tokens / (self.alpha - self.beta), *V_RANGE))


def shipped_points() -> Path:
    from costmodel.spec.catalog import builtin_root

    return builtin_root() / "data" / "vlm_token_scaling.csv"


def read_points(task: str, path: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N in billions, visual tokens, score) of one task's rows."""
    if task not in TASKS:
        hint = suggest(task, TASKS)
        raise CostModelError(f"--task {task!r}: unknown task" + (f"; did you mean '{hint[0]}'?" if hint else "")
                             + f" (known: {', '.join(TASKS)})")
    p = Path(path) if path else shipped_points()
    try:
        with open(p, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("task") == task]
        pts = np.array([(float(r["llm_params_b"]), float(r["visual_tokens"]), float(r["score"])) for r in rows])
    except OSError as exc:
        raise CostModelError(f"{p}: cannot read ({exc.strerror})") from None
    except (KeyError, TypeError, ValueError):
        raise CostModelError(f"{p}: expected columns task, llm_params_b, visual_tokens, score with numbers") from None
    if len(pts) < 5 or (pts[:, :2] <= 0).any() or not ((pts[:, 2] >= 0) & (pts[:, 2] <= 1)).all():
        raise CostModelError(f"{p}: task {task!r} needs at least 5 rows with positive sizes and token counts and "
                             f"scores in [0, 1]; got {len(pts)}")
    return pts[:, 0], pts[:, 1], pts[:, 2]


def _fit(n_b, v, y) -> np.ndarray:
    """Least squares on the error itself, as the authors fit it (objective.py: squared error, no weights)."""
    from scipy.optimize import least_squares

    def resid(p):
        return p[0] * n_b ** -p[1] * v ** -p[2] + p[3] - y

    sol = least_squares(resid, X0, bounds=([0.0, 0.0, 0.0, 0.0], [10.0, 1.0, 1.0, 1.0]), xtol=1e-12, ftol=1e-12)
    return sol.x


def fit_law(task: str = "visual_reasoning", path: str | None = None) -> TokenLaw:
    """Fit the law on a task's points; score it leaving each LLM size out in turn."""
    n_b, v, score = read_points(task, path)
    y = 1.0 - score
    a, alpha, beta, d = _fit(n_b, v, y)
    pred = a * n_b ** -alpha * v ** -beta + d
    sizes = tuple(sorted(set(n_b.tolist())))
    errs = []
    for s in sizes:
        held = n_b == s
        p = _fit(n_b[~held], v[~held], y[~held])
        errs.append(np.abs(p[0] * n_b[held] ** -p[1] * v[held] ** -p[2] + p[3] - y[held]))
    err = np.concatenate(errs)
    return TokenLaw(task, float(a), float(alpha), float(beta), float(d), len(y), sizes,
                    float(np.sqrt(np.mean((pred - y) ** 2))),
                    {"median_abs": float(np.median(err)), "max_abs": float(np.max(err)), "n": int(err.size)})


def frontier(law: TokenLaw, budgets, text_tokens: float, baseline_tokens: float = V_RANGE[1]) -> list[dict]:
    """Per budget C (FLOPs per query): the law's optimum (N*, V*) and the same budget spent at
    `baseline_tokens` visual tokens, with their predicted errors."""
    v_star = law.optimal_tokens(text_tokens)
    lo, hi = min(law.sizes), max(law.sizes)
    out = []
    for c in budgets:
        n_star = c / (2e9 * (text_tokens + v_star))
        n_base = c / (2e9 * (text_tokens + baseline_tokens))
        # an error rate is at most 1 (every answer wrong): the law extrapolated to tiny LLMs passes it
        e_star, e_base = (min(float(law.error(n, v)), 1.0) for n, v in ((n_star, v_star), (n_base, baseline_tokens)))
        out.append({"budget_flops": float(c), "llm_params_b": n_star, "visual_tokens": v_star, "error": e_star,
                    "baseline_llm_params_b": n_base, "baseline_error": e_base,
                    "accuracy_gain_points": 100 * (e_base - e_star),
                    "extrapolated": not lo <= n_star <= hi, "baseline_extrapolated": not lo <= n_base <= hi})
    return out


def measured_frontier(task: str, budgets, text_tokens: float, path: str | None = None,
                      baseline_tokens: float = V_RANGE[1]) -> list[dict]:
    """Per budget, the best measured (N, V) whose FLOPs 2·N·(Q+V) fit in it, and the best measured
    at `baseline_tokens` visual tokens (None where nothing measured fits)."""
    n_b, v, score = read_points(task, path)
    flops = 2e9 * n_b * (text_tokens + v)

    def best(ok):
        if not ok.any():
            return None
        i = int(np.argmax(np.where(ok, score, -np.inf)))
        return {"llm_params_b": float(n_b[i]), "visual_tokens": float(v[i]), "score": float(score[i]),
                "flops": float(flops[i])}

    return [{"best": best(flops <= c), "at_baseline_tokens": best((flops <= c) & (v == baseline_tokens))}
            for c in budgets]


DEFAULT_BUDGETS = (1e11, 3e11, 7e11, 1e12, 3e12, 1e13)


def report(task: str = "visual_reasoning", text_tokens: float = 50.0, budgets=DEFAULT_BUDGETS,
           path: str | None = None) -> dict:
    """The fitted law, the optimal visual tokens for Q text tokens, and the frontier per budget.

        >>> d = costmodel.vlm_tokens("visual_reasoning", text_tokens=0, budgets=[1e12])
        >>> d["optimal_visual_tokens"], d["frontier"][0]["llm_params_b"]
    """
    if not np.isfinite(text_tokens) or not 0 <= text_tokens <= 1e7:
        raise CostModelError(f"--text-tokens {text_tokens:g}: expected a number of tokens from 0 to 1e7")
    budgets = [float(b) for b in budgets]
    bad = [b for b in budgets if not np.isfinite(b) or b <= 0]
    if bad or not budgets:
        raise CostModelError(f"--budget {','.join(f'{b:g}' for b in bad) or '(none)'}: expected FLOPs per query > 0")
    law = fit_law(task, path)
    return {
        "task": task, "text_tokens": text_tokens,
        "law": {"formula": "error = A * N^-alpha * V^-beta + D (N: LLM parameters in billions, V: visual tokens)",
                "A": law.A, "alpha": law.alpha, "beta": law.beta, "D": law.D, "points": law.points,
                "llm_sizes_b": list(law.sizes), "rmse_points": 100 * law.rmse,
                "leave_one_size_out": {"median_abs_points": 100 * law.held_out["median_abs"],
                                       "max_abs_points": 100 * law.held_out["max_abs"], "n": law.held_out["n"]},
                "source": "refit on data/vlm_token_scaling.csv (Li et al., arXiv:2411.03312; the authors' "
                          "scaling_law_code/values.py)"},
        "optimal_visual_tokens": law.optimal_tokens(text_tokens),
        "rule": ("V* = beta*Q/(alpha - beta)" if law.alpha > law.beta else
                 "beta >= alpha: tokens buy more than parameters, so the most visual tokens"),
        "frontier": frontier(law, budgets, text_tokens),
        "measured_frontier": measured_frontier(task, budgets, text_tokens, path),
    }
