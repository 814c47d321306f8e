"""The scalar paths of engine/elementwise.py return numpy's values bit for bit (NaN, infinities, signed
zeros): a Python float where every operand is one, else a float64 scalar; arrays go to numpy unchanged.
Python's float arithmetic gives numpy's bits too, where it does not raise."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel.engine.elementwise import (as_float, ceil, clip, divide, floor, isfinite, maximum, minimum, mod,
                                         nan_to_num, power, where)

SPECIAL = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]
floats = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True))
scalar = st.one_of(floats, floats.map(np.float64))


def same(got, want, *operands) -> bool:
    """The same float64 bits (every NaN is one NaN here: numpy returns the NaN operand it met), as a Python
    float where every one of `operands` is one, else as a float64 scalar."""
    python = bool(operands) and all(type(x) is float for x in operands)
    assert type(got) is (float if python else np.float64), (type(got), operands)
    want = np.float64(want)
    if math.isnan(want):
        return math.isnan(got)
    return np.asarray(got).tobytes() == np.asarray(want).tobytes()


@given(scalar, scalar)
def test_maximum_and_minimum_are_numpys(a, b):
    assert same(maximum(a, b), np.maximum(a, b), a, b)
    assert same(minimum(a, b), np.minimum(a, b), a, b)


@given(st.booleans(), scalar, scalar)
def test_where_is_numpys(c, a, b):
    assert same(where(c, a, b), np.where(c, a, b), a, b)
    assert same(where(np.bool_(c), a, b), np.where(np.bool_(c), a, b), np.bool_(c))


@given(scalar, st.one_of(scalar, st.integers(-3, 3)), st.one_of(scalar, st.integers(-3, 3)))
def test_clip_is_numpys(x, lo, hi):
    kinds = [x] + [float(v) if type(v) is int else v for v in (lo, hi)]  # an int bound is as a Python float
    assert same(clip(x, lo, hi), np.clip(x, lo, hi), *kinds)


@given(scalar)
def test_nan_to_num_is_numpys(x):
    assert same(nan_to_num(x), np.nan_to_num(x), x)


def test_as_float_is_numpys_value_as_a_scalar():
    for x in (3, 2**60 + 1, np.float64(2.5), np.int64(7), np.bool_(True)):
        assert same(as_float(x), np.asarray(x, dtype=float))
    for x in (-0.0, 1.5, True, False):  # a Python float stays one; a bool (a comparison of them) becomes one
        assert same(as_float(x), np.asarray(x, dtype=float), 1.0)
    assert as_float([1, 2]).dtype == np.float64 and as_float(np.array(3)).shape == ()


def test_every_pair_of_special_values_is_numpys():
    for a in SPECIAL:
        for b in SPECIAL:
            for x in (a, np.float64(a)):
                assert same(maximum(x, b), np.maximum(np.float64(a), b), x, b), (a, b)
                assert same(minimum(x, b), np.minimum(np.float64(a), b), x, b), (a, b)
                for c in SPECIAL:
                    assert same(clip(x, b, c), np.clip(np.float64(a), b, c), x), (a, b, c)
            with np.errstate(all="ignore"):
                assert same(divide(a, b), np.divide(np.float64(a), b), a, b), (a, b)
                assert same(power(a, b), np.float64(a) ** np.float64(b), a, b), (a, b)
                if b != 0:
                    assert same(mod(a, b), np.mod(np.float64(a), b), a, b), (a, b)


def test_signed_zeros_and_nans_follow_numpys_rules():
    assert math.copysign(1, maximum(-0.0, 0.0)) == 1  # a tie gives the second
    assert math.copysign(1, maximum(0.0, -0.0)) == -1
    assert math.copysign(1, clip(-0.0, 0.0, 1.0)) == -1  # a tie keeps x
    assert math.isnan(maximum(1.0, math.nan)) and math.isnan(minimum(math.nan, 1.0))
    assert clip(7.0, 0, 5) == 5.0 and type(clip(7.0, 0, 5)) is float
    assert type(clip(np.float64(7.0), 0, 5)) is np.float64
    assert math.copysign(1, ceil(-0.5)) == -1 and math.copysign(1, floor(0.5)) == 1  # numpy's signed zeros
    assert math.copysign(1, floor(-0.0)) == -1 and ceil(2.0) == 2.0 and floor(-2.5) == -3.0


def test_a_bound_past_floats_range_raises_as_numpy_does():
    for bounds in ((10**400, 1.0), (0.0, 10**400)):
        with pytest.raises(OverflowError):
            np.clip(np.float64(0.5), *bounds)
        with pytest.raises(OverflowError):
            clip(np.float64(0.5), *bounds)


def test_arrays_and_other_types_go_to_numpy():
    a = np.array([1.0, -2.0, np.nan])
    np.testing.assert_array_equal(maximum(a, 0.0), np.maximum(a, 0.0))
    np.testing.assert_array_equal(where(a > 0, a, 0.0), np.where(a > 0, a, 0.0))
    np.testing.assert_array_equal(clip(a, -1.0, 0.5), np.clip(a, -1.0, 0.5))
    # integers keep numpy's integer result; a 0-d array keeps numpy's type
    assert where(True, 1, 2).dtype == np.int64
    assert type(maximum(np.asarray(1.0), 2.0)) is np.float64
    assert isinstance(where(np.asarray(True), 1.0, 2.0), np.ndarray)


@given(scalar)
def test_ceil_floor_and_isfinite_are_numpys(x):
    assert same(ceil(x), np.ceil(x), x)
    assert same(floor(x), np.floor(x), x)
    assert isfinite(x) == np.isfinite(x)


@given(floats, floats)
def test_mod_divide_and_power_are_numpys_on_python_floats(a, b):
    with np.errstate(all="ignore"):
        assert same(divide(a, b), np.divide(np.float64(a), b), a, b)
        # numpy's scalar ** (C's pow), not the ufunc np.power, which takes x·x, sqrt(x) and 1/x for an exponent
        # of exactly 2, 0.5 and -1 (one last bit apart from pow for some x); the engine's arrays of exponents
        # (tokens, top-k) call pow element by element
        assert same(power(a, b), np.float64(a) ** np.float64(b), a, b)
        if b != 0:
            assert same(mod(a, b), np.mod(np.float64(a), b), a, b)


def test_division_by_zero_gives_numpys_bits():
    """inf of the right sign, and numpy's own NaN (on x86 0/0 sets its sign bit, which math.nan lacks)."""
    with np.errstate(all="ignore"):
        for a in (0.0, -0.0, 2.0, -2.0, math.inf, math.nan):
            for b in (0.0, -0.0):
                got, want = divide(a, b), np.divide(np.float64(a), b)
                assert type(got) is float and np.asarray(got).tobytes() == np.asarray(want).tobytes(), (a, b)


@given(st.floats(0.0, 1.0), st.one_of(st.floats(0.0, 1e7), st.integers(0, 10**7).map(float)))
def test_power_of_a_fraction_is_numpys(a, b):  # the engine's powers: (1 - k/E)^T, (1 - 1/ep)^k, alpha^(n+1)
    assert same(power(a, b), np.float64(a) ** np.float64(b), a, b)  # C's pow (an exponent of 2 is drawn too)


@given(floats, floats)
def test_python_float_arithmetic_is_numpys(a, b):
    """The engine's operators on Python floats give numpy's float64 bits wherever Python does not raise."""
    x, y = np.float64(a), np.float64(b)
    with np.errstate(all="ignore"):
        for got, want in ((a + b, x + y), (a - b, x - y), (a * b, x * y), (-a, -x), (a > b, x > y), (a == b, x == y)):
            assert same(float(got), want, 1.0)
        if b != 0:
            assert same(a / b, x / y, a, b)
