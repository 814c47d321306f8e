"""Whether any element of a column is nonzero, without numpy's dispatch for a scalar.

np.any on a Python or numpy scalar costs about 4 µs (fromnumeric's wrappers) and an estimate asks it
some 50 times; bool(x) answers the same (NaN counts as nonzero in both) in a tenth of the time.
"""
from __future__ import annotations

import math

import numpy as np

from costmodel.engine.traced import Traced, holds


def any_nonzero(x) -> bool:
    """np.any(x): bool(x) for a scalar or 0-d array, x.any() for an array."""
    if type(x) is float:  # an estimate's (NaN is nonzero, -0.0 is not: as bool)
        return x != 0.0
    if isinstance(x, np.ndarray) and x.ndim:
        return bool(x.any())
    return bool(x)


def all_plus(*columns) -> bool:
    """Whether every element of every column is +0.0 or above and finite (no -0.0, inf or NaN): products of
    such numbers with +0.0 are +0.0. (Loops, not all() over a generator: an estimate asks twice per lowering.)"""
    for x in columns:
        if type(x) is float:
            if not (x < math.inf and math.copysign(1.0, x) > 0):
                return False
        elif type(x) is Traced:
            if not holds(all_plus, x):
                return False
        elif not bool(np.all((x < np.inf) & ~np.signbit(x))):
            return False
    return True


def all_positive(*columns) -> bool:
    """Whether every element of every column is finite and above zero."""
    for x in columns:
        if type(x) is float:
            if not 0.0 < x < math.inf:
                return False
        elif type(x) is Traced:
            if not holds(all_positive, x):
                return False
        elif not bool(np.all((x > 0) & (x < np.inf))):
            return False
    return True


def all_above_zero(*columns) -> bool:
    """Whether every element of every column is above zero (inf too; not NaN): a product of positive finite numbers
    that did not round to zero."""
    for x in columns:
        if type(x) is float:
            if not x > 0.0:
                return False
        elif type(x) is Traced:
            if not holds(all_above_zero, x):
                return False
        elif not bool(np.all(x > 0)):
            return False
    return True
