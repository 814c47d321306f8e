"""numpy's where, maximum, minimum, clip, nan_to_num, ones_like and asarray(dtype=float), with a path for float scalars that skips numpy's dispatch.

An estimate evaluates one configuration: the engine's formulas then run on numpy float64 scalars, where
np.where costs 1.5-4.5 µs (and returns a 0-d array, on which every later operation costs ~1.4 µs instead of
~0.1 µs), np.maximum ~0.6-1.7 µs and np.clip ~3-8 µs; an estimate makes about 200 such calls. The scalar
path returns the float64 value numpy 2 returns, NaN and signed zero included (measured: maximum is
`a > b || isnan(a) ? a : b`, minimum the same with <, so a tie gives b; clip raises x to lo where
lo > x or lo is NaN, then lowers it to hi where hi < x or hi is NaN, a NaN x staying NaN: a tie keeps x);
tests/engine/test_elementwise.py checks the bits against numpy's. Arrays, and anything else, go to numpy.
"""
from __future__ import annotations

import numpy as np

_FLOAT = (float, np.float64)
_BOUND = (float, np.float64, int)
_BOOL = (bool, np.bool_)
_f64 = np.float64


def where(condition, a, b):
    """np.where(condition, a, b)."""
    if type(condition) in _BOOL and type(a) in _FLOAT and type(b) in _FLOAT:
        return _f64(a if condition else b)
    return np.where(condition, a, b)


def maximum(a, b):
    """np.maximum(a, b)."""
    if type(a) in _FLOAT and type(b) in _FLOAT:
        return _f64(a if (a > b or a != a) else b)
    return np.maximum(a, b)


def minimum(a, b):
    """np.minimum(a, b)."""
    if type(a) in _FLOAT and type(b) in _FLOAT:
        return _f64(a if (a < b or a != a) else b)
    return np.minimum(a, b)


def clip(x, lo, hi):
    """np.clip(x, lo, hi)."""
    if type(x) in _FLOAT and type(lo) in _BOUND and type(hi) in _BOUND:
        lo, hi = float(lo), float(hi)  # an int past float's range raises OverflowError, as numpy does
        y = lo if x == x and (lo > x or lo != lo) else x
        return _f64(hi if y == y and (hi < y or hi != hi) else y)
    return np.clip(x, lo, hi)


_LARGEST = float(np.finfo(np.float64).max)


def nan_to_num(x):
    """np.nan_to_num(x): NaN as 0, ±inf as the largest finite float64 of its sign."""
    if type(x) in _FLOAT:
        if x != x:
            return _f64(0.0)
        return _f64(x if abs(x) != np.inf else (_LARGEST if x > 0 else -_LARGEST))
    return np.nan_to_num(x)


def ones_like(x):
    """np.ones_like(x) for a float column: 1.0 as a float64 scalar for a number (numpy returns a 0-d array)."""
    if type(x) in _FLOAT:
        return _f64(1.0)
    return np.ones_like(x)


_NUMBER = (float, int, np.float64, np.int64)


def as_float(x):
    """np.asarray(x, dtype=float), a number as a float64 scalar: what numpy's arithmetic returns for a 0-d
    array anyway, at a tenth of the cost of every later operation on the 0-d array."""
    if type(x) in _NUMBER:
        return _f64(x)
    return np.asarray(x, dtype=float)
