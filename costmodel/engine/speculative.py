"""Speculative decoding inside a deployment: multi-token prediction (DeepSeek MTP) or a draft head
(EAGLE) proposes N tokens, the target verifies them with the next one in one forward.

  tokens per decode step  E(α, N) = (1 − α^(N+1)) / (1 − α)     (N + 1 at α = 1)
  TPOT = (t_verify(N + 1 new tokens per sequence) + N · t_draft) / E(α, N)
with i.i.d. acceptance α per draft token (Leviathan, Kalman, Matias, ICML 2023, arXiv 2211.17192).
A draft pass is one decoder layer, the module's input projection (2h -> h) and the shared LM head
on the batch's last tokens (DeepSeek-V3's MTP module: arXiv 2412.19437, §2.2; EAGLE's draft head is
one layer too), at the decode step's own per-layer cost.
Default α = 0.875: DeepSeek-V3's report, §5.4.3: 'the acceptance rate of the second token
prediction ranges between 85% and 90%' (the midpoint).
"""
from __future__ import annotations

import numpy as np

from costmodel.engine.elementwise import as_float, divide, maximum, power, where
from costmodel.engine.truth import any_nonzero

DEFAULT_ACCEPT = 0.875
NOT_PER_LAYER = ("embedding", "lm_head", "pp_sendrecv")


def tokens_per_step(alpha, n):
    """E(α, N) = (1 − α^(N+1)) / (1 − α); N + 1 at α = 1."""
    a = as_float(alpha)
    n = as_float(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        e = divide(1 - power(a, n + 1), 1 - a)
    return where(a >= 1, n + 1, e)


def alpha_for_length(length: float, n: int) -> float:
    """The per-token acceptance α whose E(α, N) is a measured acceptance length (mean tokens per step,
    1 <= length <= N + 1), by bisection (E is increasing in α)."""
    if length >= n + 1:
        return 1.0
    if length <= 1:
        return 0.0
    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if float(tokens_per_step(mid, n)) < length:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def draft_pass(op_total: np.ndarray, names: tuple, m: dict, f: dict, hw: dict, tp) -> np.ndarray:
    """Time of one draft pass from a one-token decode step's per-operator times (axis 0): the mean
    layer (per-layer operators / layers), the LM head and embedding, and the 2h x h input projection
    read from memory (its weights / tp)."""
    layer = sum(op_total[i] for i, n in enumerate(names) if n not in NOT_PER_LAYER) / maximum(m["layers"], 1.0)
    head = sum(op_total[names.index(n)] for n in ("embedding", "lm_head"))
    proj = 2.0 * m["h"] ** 2 * f["w_bits"] / 8 / as_float(tp) / (hw["bandwidth"] * hw["memory_efficiency"])
    return layer + head + proj


def with_mtp_weights(m: dict, mtp) -> dict:
    """The model's columns with its multi-token-prediction modules' weights (mtp_* columns) added where
    `mtp` > 0 draft tokens use them: engines load the module only when speculative decoding with it is on
    (SGLang --speculative-algorithm NEXTN/EAGLE, vLLM --speculative-config method deepseek_mtp)."""
    on = as_float(mtp) > 0
    if not any_nonzero(on) or not any_nonzero(m["mtp_linear"]):
        return m
    out = dict(m)
    for col, add in (("p_linear", "mtp_linear"), ("p_mixer", "mtp_mixer"), ("p_experts", "mtp_experts"),
                     ("p_shared", "mtp_shared"), ("p_small", "mtp_small")):
        out[col] = m[col] + where(on, m[add], 0.0)
    out["p_total"] = m["p_total"] + where(on, m["mtp_linear"] + m["mtp_small"], 0.0)
    return out
