"""The scalar paths of engine/elementwise.py return numpy's values bit for bit (NaN, infinities, signed
zeros), as float64 scalars, and arrays go to numpy unchanged."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costmodel.engine.elementwise import as_float, clip, maximum, minimum, nan_to_num, where

SPECIAL = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308]
floats = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True))
scalar = st.one_of(floats, floats.map(np.float64))


def same(got, want) -> bool:
    """The same float64 bits (every NaN is one NaN here: numpy returns the NaN operand it met)."""
    assert type(got) is np.float64
    want = np.float64(want)
    if math.isnan(want):
        return math.isnan(got)
    return np.asarray(got).tobytes() == np.asarray(want).tobytes()


@given(scalar, scalar)
def test_maximum_and_minimum_are_numpys(a, b):
    assert same(maximum(a, b), np.maximum(a, b))
    assert same(minimum(a, b), np.minimum(a, b))


@given(st.booleans(), scalar, scalar)
def test_where_is_numpys(c, a, b):
    assert same(where(c, a, b), np.where(c, a, b))
    assert same(where(np.bool_(c), a, b), np.where(np.bool_(c), a, b))


@given(scalar, st.one_of(scalar, st.integers(-3, 3)), st.one_of(scalar, st.integers(-3, 3)))
def test_clip_is_numpys(x, lo, hi):
    assert same(clip(x, lo, hi), np.clip(x, lo, hi))


@given(scalar)
def test_nan_to_num_is_numpys(x):
    assert same(nan_to_num(x), np.nan_to_num(x))


def test_as_float_is_numpys_value_as_a_scalar():
    for x in (3, 2**60 + 1, -0.0, 1.5, np.float64(2.5), np.int64(7)):
        got = as_float(x)
        assert type(got) is np.float64 and same(got, np.asarray(x, dtype=float))
    assert as_float([1, 2]).dtype == np.float64 and as_float(np.array(3)).shape == ()


def test_every_pair_of_special_values_is_numpys():
    for a in SPECIAL:
        for b in SPECIAL:
            assert same(maximum(np.float64(a), b), np.maximum(np.float64(a), b)), (a, b)
            assert same(minimum(np.float64(a), b), np.minimum(np.float64(a), b)), (a, b)
            for c in SPECIAL:
                assert same(clip(np.float64(a), b, c), np.clip(np.float64(a), b, c)), (a, b, c)


def test_signed_zeros_and_nans_follow_numpys_rules():
    assert math.copysign(1, maximum(-0.0, 0.0)) == 1  # a tie gives the second
    assert math.copysign(1, maximum(0.0, -0.0)) == -1
    assert math.copysign(1, clip(-0.0, 0.0, 1.0)) == -1  # a tie keeps x
    assert math.isnan(maximum(1.0, math.nan)) and math.isnan(minimum(math.nan, 1.0))
    assert clip(7.0, 0, 5) == 5.0 and type(clip(7.0, 0, 5)) is np.float64


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
