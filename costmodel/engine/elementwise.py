"""numpy's where, maximum, minimum, clip, nan_to_num, ones_like, ceil, floor, isfinite, mod, power, divide and
asarray(dtype=float), with a path for float scalars that skips numpy's dispatch; and interp of one number over
a strictly increasing grid (`interp_one`).

An estimate evaluates one configuration: the engine's formulas then run on scalars, where np.where costs
1.5-4.5 µs (and returns a 0-d array, on which every later operation costs ~1.4 µs instead of ~0.1 µs),
np.maximum ~0.6-1.7 µs and np.clip ~3-8 µs; an estimate makes about 200 such calls. The scalar path returns
the value numpy 2 returns, NaN and signed zero included (measured: maximum is `a > b || isnan(a) ? a : b`,
minimum the same with <, so a tie gives b; clip raises x to lo where lo > x or lo is NaN, then lowers it to hi
where hi < x or hi is NaN, a NaN x staying NaN: a tie keeps x); tests/engine/test_elementwise.py checks the bits
against numpy's. Arrays, and anything else, go to numpy.

The result keeps the scalars' kind: a Python float where every operand is one, else a numpy float64. Python's
float arithmetic gives the same bits as numpy's (IEEE 754 double, round to nearest) at a quarter of the cost
per operation, but raises ZeroDivisionError where numpy returns inf or NaN: `divide` returns numpy's value
instead, and evaluate repeats an evaluation on numpy scalars when any other operation raises. NaN stays NaN,
but where two NaNs meet, x86 keeps one operand's and CPython's specialized float addition (after a few calls
of the same code) picks the other's: a NaN's sign bit is not part of the bit-for-bit promise.
"""
from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from costmodel.engine.traced import Traced, call, choice

_FLOAT = (float, np.float64)
_BOUND = (float, np.float64, int)
_BOOL = (bool, np.bool_)
_f64 = np.float64


def _kind(value, *operands):
    """value as a Python float where every operand is one, else as numpy's float64."""
    for x in operands:
        if type(x) is not float:
            return _f64(value)
    return value


# Each function tests for Python floats first, inline: an estimate calls them some 500 times
def where(condition, a, b):
    """np.where(condition, a, b)."""
    ta, tb = type(a), type(b)
    if ta is float and tb is float and type(condition) is bool:
        return a if condition else b
    if type(condition) in _BOOL and ta in _FLOAT and tb in _FLOAT:
        return _f64(a if condition else b)
    if Traced in (type(condition), ta, tb):
        return choice(where, condition, a, b)
    return np.where(condition, a, b)


def maximum(a, b):
    """np.maximum(a, b)."""
    ta, tb = type(a), type(b)
    if ta is float and tb is float:
        return a if (a > b or a != a) else b
    if ta in _FLOAT and tb in _FLOAT:
        return _f64(a if (a > b or a != a) else b)
    if Traced in (ta, tb):
        return call(maximum, a, b)
    return np.maximum(a, b)


def minimum(a, b):
    """np.minimum(a, b)."""
    ta, tb = type(a), type(b)
    if ta is float and tb is float:
        return a if (a < b or a != a) else b
    if ta in _FLOAT and tb in _FLOAT:
        return _f64(a if (a < b or a != a) else b)
    if Traced in (ta, tb):
        return call(minimum, a, b)
    return np.minimum(a, b)


def clip(x, lo, hi):
    """np.clip(x, lo, hi)."""
    if type(x) in _FLOAT and type(lo) in _BOUND and type(hi) in _BOUND:
        lo_f, hi_f = float(lo), float(hi)  # an int past float's range raises OverflowError, as numpy does
        y = lo_f if x == x and (lo_f > x or lo_f != lo_f) else x
        y = hi_f if y == y and (hi_f < y or hi_f != hi_f) else y
        return y if type(x) is float and type(lo) in (float, int) and type(hi) in (float, int) else _f64(y)
    if Traced in (type(x), type(lo), type(hi)):
        return call(clip, x, lo, hi)
    return np.clip(x, lo, hi)


_LARGEST = float(np.finfo(np.float64).max)


def nan_to_num(x):
    """np.nan_to_num(x): NaN as 0, ±inf as the largest finite float64 of its sign."""
    if type(x) in _FLOAT:
        if x != x:
            return _kind(0.0, x)
        return _kind(x if abs(x) != math.inf else (_LARGEST if x > 0 else -_LARGEST), x)
    if type(x) is Traced:
        return call(nan_to_num, x)
    return np.nan_to_num(x)


def ones_like(x):
    """np.ones_like(x) for a float column: 1.0 as a scalar of x's kind for a number (numpy returns a 0-d array)."""
    if type(x) in _FLOAT:
        return _kind(1.0, x)
    if type(x) is Traced:
        return call(ones_like, x)
    return np.ones_like(x)


def _rounding(numpy_fn, rounding, name: str):
    """np.ceil or np.floor (`numpy_fn`): for a Python float `rounding`'s integer (math.ceil's or math.floor's) as
    numpy's float, inf and NaN as they are, a zero with x's sign (np.ceil(-0.5) is -0.0); written out in the one
    function, not through a helper call: an estimate rounds some 40 numbers."""
    def rounded(x):
        if type(x) is not float:
            return call(rounded, x) if type(x) is Traced else numpy_fn(x)
        if x - x != 0:
            return x
        r = rounding(x)
        return float(r) if r else math.copysign(0.0, x)

    rounded.__name__ = rounded.__qualname__ = name
    rounded.__doc__ = f"np.{name}(x)."
    return rounded


ceil = _rounding(np.ceil, math.ceil, "ceil")
floor = _rounding(np.floor, math.floor, "floor")


def isfinite(x):
    """np.isfinite(x)."""
    if type(x) is float:
        return x - x == 0  # False for ±inf and NaN
    if type(x) is Traced:
        return call(isfinite, x)
    return np.isfinite(x)


def mod(a, b):
    """np.mod(a, b) (the remainder with b's sign; Python's float % is the same computation)."""
    if type(a) is float and type(b) is float and b != 0:
        return a % b
    if Traced in (type(a), type(b)):
        return call(mod, a, b)
    return np.mod(a, b)


def power(a, b):
    """np.power as it computes a column of float64 against a column of exponents, for numbers too: numpy's loop
    on AVX-512 machines is SVML's pow, a last bit or two from C's pow (math.pow, a numpy scalar's **) for about
    5 % of values, and an exponent held as one value takes its shortcuts (x·x for 2, sqrt(x) for 0.5, 1/x for
    -1). Numbers go through one-element arrays and an exponent is spread to the result's shape, so an
    estimate, a sweep's chunk (whose model columns may be one broadcast row) and a calibration compute the same
    bits on any one machine (tests/engine/test_elementwise.py). NaN or inf where pow has none, as numpy's."""
    ta, tb = type(a), type(b)
    if ta in _FLOAT and tb in _FLOAT:
        r = np.power(np.array([a]), np.array([b]))[0]
        return float(r) if ta is float and tb is float else r
    if Traced in (ta, tb):
        return call(power, a, b)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    shape = np.broadcast_shapes(a.shape, b.shape)
    if not shape:  # 0-d arrays: one-element columns, numpy's scalar as the result
        return np.power(a.reshape(1), b.reshape(1))[0]
    if b.shape != shape or 0 in b.strides:  # one exponent for many: an array of them (no shortcut)
        b = np.array(np.broadcast_to(b, shape))
    return np.power(a, b)


def divide(a, b):
    """np.divide(a, b) (callers hold np.errstate): for Python floats a / b, and over zero numpy's ±inf or NaN
    (its NaN's bits too: x86's 0/0 sets the sign bit) where Python raises."""
    if type(a) is float and type(b) is float:
        return a / b if b else float(np.divide(_f64(a), b))
    if Traced in (type(a), type(b)):
        return call(divide, a, b)
    return np.divide(a, b)


_NUMBER = (int, np.float64, np.int64)


def as_float(x):
    """np.asarray(x, dtype=float), a number as a float64 scalar: what numpy's arithmetic returns for a 0-d
    array anyway, at a tenth of the cost of every later operation on the 0-d array. A Python float stays
    one, and a Python bool becomes one (the engine's scalars on Python floats: the module's docstring)."""
    t = type(x)
    if t is float:
        return x
    if t in _NUMBER:
        return _f64(x)
    if t is bool:
        return 1.0 if x else 0.0
    if t is np.bool_:
        return _f64(x)
    if t is Traced:  # a recorded Python float stays itself, as a float does
        return x if type(x.value) is float else call(as_float, x)
    return np.asarray(x, dtype=float)


def interp_one(x: float, xp: list, fp: list) -> float:
    """np.interp(x, xp, fp) of one number x over a strictly increasing grid xp of two or more floats (lists), bit
    for bit (numpy/_core/src/multiarray/compiled_base.c, arr_interp): NaN gives x; below or above the grid its end
    values; on a grid point its value; else the line of slope (fp[j+1] − fp[j]) / (xp[j+1] − xp[j]) from the point
    below, or from the point above where that gives NaN, or fp[j] where that does too and the two are equal. numpy's
    wrapper costs about 4 µs a call on one number (a queueing model's bisections make 10^5 such calls)."""
    if x != x:
        return x
    if x < xp[0]:
        return fp[0]
    if x > xp[-1]:
        return fp[-1]
    j = bisect_right(xp, x) - 1  # xp[j] <= x < xp[j + 1], or j the last point where x is it
    if j == len(xp) - 1 or xp[j] == x:
        return fp[j]
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    y = slope * (x - xp[j]) + fp[j]
    if y != y:
        y = slope * (x - xp[j + 1]) + fp[j + 1]
        if y != y and fp[j] == fp[j + 1]:
            y = fp[j]
    return y


def increasing_grid(xp, fp) -> tuple[list, list] | None:
    """(xp, fp) as lists of floats where xp holds two or more strictly increasing numbers (interp_one's grid),
    else None (np.interp then)."""
    xs, ys = np.asarray(xp, dtype=float).tolist(), np.asarray(fp, dtype=float).tolist()
    if len(xs) < 2 or len(ys) != len(xs) or not all(a < b for a, b in zip(xs, xs[1:])):
        return None
    return xs, ys
