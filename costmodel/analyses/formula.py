"""Closed forms (sympy, imported lazily): each phase's FLOPs, bytes and roofline time as
expressions in batch B, prompt length P and context length C, numbers substituted for the rest.

The expressions are the engine's own operator totals, which are polynomials in (B, C) for a
decode step and in (B, P) for a prefill: FLOPs = B·(a + b·C), bytes = W + B·(c + d·C) and
FLOPs = B·(a·P + b·P²), bytes = W + B·(c·P + d·P²). The coefficients are recovered exactly
from the operators at a few points and checked at a held-out point; models whose traffic is
not polynomial (MoE expert coverage, sliding windows beyond the window, prompts over the
prefill chunk) are flagged as approximations.
  decode turns compute-bound at  B* : FLOPs/(peak·e_c) = bytes/(bandwidth·e_m)
  prefill turns compute-bound at P* (B = 1): same condition in P
  KV traffic outweighs weight traffic at B_kv: B·KV bytes per sequence = weight bytes
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.engine.operators import lower


@dataclass(frozen=True)
class ClosedForms:
    decode_flops: object
    decode_bytes: object
    decode_weight_bytes: float
    decode_kv_bytes: object
    prefill_flops: object
    prefill_bytes: object
    peak: float
    bandwidth: float
    decode_time: object
    prefill_time: object
    crossovers: dict
    exact: bool  # the decode forms reproduce the engine at a held-out point
    symbols: tuple
    prefill_fit_error: float = 0.0  # relative error of the prefill forms at a held-out B = 3, P = min(768, chunk/4)
    prefill_domain: str = ""  # where the prefill forms were fitted


def _totals(m, f, hw, B, n, C, tp, decode):
    ops = lower(m, f, hw, B, n, C, tp, 1, decode)
    return float(ops.flops.sum()), float(ops.bytes.sum()), float(ops.weight_bytes.sum()), float(ops.kv_bytes.sum())


def _fit(points, values, monomials) -> list:
    """The least-squares coefficients of `monomials` through (points, values), solved in exact rational arithmetic
    (the normal equations AᵀA·c = Aᵀy over fractions, one rounding to float at the end): the same bits on every
    machine, where np.linalg.lstsq's last digits follow the BLAS build (a README example printed 5.11273e-11 or
    5.11274e-11 by numpy's bundled OpenBLAS)."""
    from fractions import Fraction

    A = [[Fraction(float(mono(*p))) for mono in monomials] for p in points]
    y = [Fraction(float(v)) for v in values]
    k = len(monomials)
    M = [[sum(r[i] * r[j] for r in A) for j in range(k)] + [sum(r[i] * v for r, v in zip(A, y))] for i in range(k)]
    for i in range(k):  # Gauss-Jordan with the largest pivot (exact, so any nonzero one would do)
        pivot = max(range(i, k), key=lambda r: abs(M[r][i]))
        M[i], M[pivot] = M[pivot], M[i]
        for r in range(k):
            if r != i and M[r][i]:
                ratio = M[r][i] / M[i][i]
                M[r] = [a - ratio * b for a, b in zip(M[r], M[i])]
    return [float(M[i][k] / M[i][i]) for i in range(k)]


def _positive_roots(a2: float, a1: float, a0: float) -> list:
    """The positive real roots of a2·x² + a1·x + a0 in closed form (the cancellation-free pair q/a2, a0/q), or of
    a1·x + a0 where a2 is 0: arithmetic, not np.roots' eigenvalues, whose last digits follow the LAPACK build."""
    if a2 == 0:
        return [-a0 / a1] if a1 > 0 else []
    disc = a1 * a1 - 4 * a2 * a0
    if disc < 0:
        return []
    q = -(a1 + np.copysign(np.sqrt(disc), a1)) / 2
    return [r for r in ([q / a2] + ([a0 / q] if q != 0 else [])) if r > 0]


def closed_forms(m: dict, f: dict, hw: dict, tp: int = 1, context_probe: int = 1000) -> ClosedForms:
    """Sympy expressions of the engine's totals for the columns of one configuration."""
    import sympy as sp

    B, P, C = sp.symbols("B P C", positive=True)
    peak = float(f["peak_matmul"] * hw["compute_efficiency"])
    bw = float(hw["bandwidth"] * hw["memory_efficiency"])
    # decode: flops = B(a + b(C+1)); bytes = W + B(c + d(C+1)); the new token attends C+1 keys
    pts = [(b, c) for b in (1.0, 2.0, 3.0) for c in (64.0, 256.0, 512.0)]
    tot = [_totals(m, f, hw, b, 1.0, c, tp, True) for b, c in pts]
    fl = _fit(pts, [t[0] for t in tot], [lambda b, c: b, lambda b, c: b * c])
    by = _fit(pts, [t[1] for t in tot], [lambda b, c: 1.0, lambda b, c: b, lambda b, c: b * c])
    kv = _fit(pts, [t[3] for t in tot], [lambda b, c: b, lambda b, c: b * c])
    weights = tot[0][2]
    check = _totals(m, f, hw, 7.0, 1.0, float(context_probe), tp, True)
    exact = (abs(fl[0] * 7 + fl[1] * 7 * context_probe - check[0]) <= 1e-6 * check[0]
             and abs(by[0] + by[1] * 7 + by[2] * 7 * context_probe - check[1]) <= 1e-6 * check[1])
    num = lambda x: sp.Float(float(x), 6)  # noqa: E731
    dflops = num(fl[0]) * B + num(fl[1]) * B * C
    dbytes = num(by[0]) + num(by[1]) * B + num(by[2]) * B * C
    dkv = num(kv[0]) * B + num(kv[1]) * B * C
    # prefill of P tokens (no cache): flops = B(aP + bP²); bytes = W + B(cP + dP²) for 128 <= P, B·P <= chunk
    chunk = float(hw["prefill_chunk_tokens"])
    pp = [(b, p) for b in (1.0, 2.0) for p in (128.0, 256.0, min(512.0, chunk / 2))]
    ptot = [_totals(m, f, hw, b, p, 0.0, tp, False) for b, p in pp]
    pfl = _fit(pp, [t[0] for t in ptot], [lambda b, p: b * p, lambda b, p: b * p * p])
    pby = _fit(pp, [t[1] for t in ptot], [lambda b, p: 1.0, lambda b, p: b * p, lambda b, p: b * p * p])
    # held out: B = 3 at a prompt the fit did not see (the LM head is per sequence, a chunked scan's state per chunk:
    # neither is a polynomial B·(aP + bP²), so the prefill forms are fits, not identities)
    p_probe = min(768.0, chunk / 4)
    probe = _totals(m, f, hw, 3.0, p_probe, 0.0, tp, False)
    fit_error = max(abs(3 * (pfl[0] * p_probe + pfl[1] * p_probe ** 2) / probe[0] - 1),
                    abs((pby[0] + 3 * (pby[1] * p_probe + pby[2] * p_probe ** 2)) / probe[1] - 1))
    domain = f"fitted on B = 1-2, P = 128-{pp[-1][1]:g}; for B·P within one chunk ({chunk:g} tokens)"
    pflops = num(pfl[0]) * B * P + num(pfl[1]) * B * P**2
    pbytes = num(pby[0]) + num(pby[1]) * B * P + num(pby[2]) * B * P**2
    dtime = sp.Max(dflops / num(peak), dbytes / num(bw))
    ptime = sp.Max(pflops / num(peak), pbytes / num(bw))
    cross = {}
    c_val = float(context_probe)
    # decode compute-bound batch at context C: B (a + bC)/peak = (W + B(c + dC))/bw
    denom = (fl[0] + fl[1] * c_val) / peak - (by[1] + by[2] * c_val) / bw
    cross["decode_compute_bound_batch"] = float(by[0] / bw / denom) if denom > 0 else float("inf")
    # prefill compute-bound prompt at B = 1: (aP + bP²)/peak = (W + cP + dP²)/bw
    a2 = pfl[1] / peak - pby[2] / bw
    a1 = pfl[0] / peak - pby[1] / bw
    a0 = -pby[0] / bw
    roots = _positive_roots(float(a2), float(a1), float(a0))
    cross["prefill_compute_bound_prompt"] = float(min(roots)) if roots else float("inf")
    kv_per_seq = kv[0] + kv[1] * c_val
    cross["kv_exceeds_weights_batch"] = float(weights / kv_per_seq) if kv_per_seq > 0 else float("inf")
    cross["context"] = c_val
    return ClosedForms(dflops, dbytes, weights, dkv, pflops, pbytes, peak, bw, dtime, ptime, cross, bool(exact),
                       (B, P, C), float(fit_error), domain)


def formula(model: str, hw: str = "h100-sxm", fmt: str = "bf16", tp: int = 1, context: int = 1000,
            engine: str = "auto") -> ClosedForms:
    """Closed forms for a catalogue configuration (columns gathered as `estimate` does).

        >>> costmodel.formula("llama-3.1-8b", hw="h100", fmt="fp8").decode_time   # a sympy expression
    """
    from costmodel.errors import WorkloadError
    from costmodel.estimate import columns_for, estimate

    e = estimate(model, hw, fmt, tp=tp, engine=engine)
    if e.model.is_encoder:  # its one forward pass is a prefill; the decode forms and their crossover have no meaning
        raise WorkloadError(f"{e.model.id} is an encoder: it generates no tokens, so it has no decode forms (its forward "
                            f"pass is `estimate {e.model.id} --prompt N`)")
    m, f, h = columns_for(e)
    return closed_forms(m, f, h, tp, context)
