"""Distinct rows of key columns, so a term is evaluated once per distinct input and gathered back.

A sweep's grid repeats most inputs: a prefill does not depend on the generated length, a decode
step's operators other than attention not on any length. For key columns k1..kn (1-D, equal length
or scalars) `distinct` returns (first, inverse) with k[first][inverse] == k for every column: the
rows of `first` are evaluated and `[..., inverse]` scatters them back.
"""
from __future__ import annotations

import numpy as np


def distinct(*keys) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) over the rows of the key columns (lexicographic sort, one pass to mark changes)."""
    cols = [np.asarray(k, dtype=float) for k in keys]
    n = max((c.size for c in cols if c.ndim), default=1)
    cols = [c.reshape(-1) for c in cols if c.ndim]  # scalar keys are the same on every row
    if not cols or n == 0:
        return np.zeros(min(n, 1), dtype=np.intp), np.zeros(n, dtype=np.intp)
    order = np.lexsort(cols[::-1])
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = False
    for c in cols:
        s = c[order]
        new[1:] |= s[1:] != s[:-1]
    inverse = np.empty(n, dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return order[new], inverse


def rows(x, idx):
    """x at rows `idx` (a scalar stays a scalar)."""
    x = np.asarray(x)
    return x if x.ndim == 0 else x[idx]


def columns_at(cols: dict, idx) -> dict:
    """Every column at rows `idx`."""
    return {k: rows(v, idx) for k, v in cols.items()}
