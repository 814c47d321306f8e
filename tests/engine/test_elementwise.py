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
                assert same(power(a, b), column_power(a, b), a, b), (a, b)
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
        # a column's value (numpy's loop over arrays: SVML's pow on AVX-512 machines, not C's)
        assert same(power(a, b), column_power(a, b), a, b)
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
    assert same(power(a, b), column_power(a, b), a, b)  # an exponent of 2 is drawn too


def _bits(a, b) -> bool:
    """The same float64 bits element by element (a NaN as any NaN)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(((a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))).all())


def column_power(a, b) -> float:
    """a ** b as numpy computes it in a column of float64 against a column of exponents."""
    with np.errstate(all="ignore"):
        return np.power(np.array([a], dtype=float), np.array([b], dtype=float))[0]


def test_a_number_a_column_and_one_exponent_give_the_same_powers():
    """power of numbers, of numpy scalars and of 0-d arrays, of a column against one exponent (a number, a
    broadcast row, a stride-0 view) and against a column of exponents: the same bits element by element, for
    the exponents numpy takes shortcuts for (2, 0.5, -1, 1, 0) and any other; numpy's own ufunc with one
    exponent is not (x·x for 2), nor is C's pow (SVML's on AVX-512 machines, where numpy has it)."""
    rng = np.random.default_rng(11)
    base = np.concatenate([rng.uniform(0.0, 1.0, 4000), rng.uniform(1.0, 1e3, 1000), [0.0, 1.0, np.inf, np.nan]])
    for e in (2.0, 0.5, -1.0, 1.0, 0.0, 3.0, 7.0, 1.7, 1e6):
        with np.errstate(all="ignore"):
            want = np.power(base, np.full(base.shape, e))
            for exponent in (e, np.float64(e), np.array(e), np.array([e]), np.broadcast_to(np.float64(e), base.shape)):
                assert _bits(power(base, exponent), want), e
            assert _bits(power(base[:, None], np.array([[e, e]]))[:, 1], want)  # two axes
            for i in range(0, len(base), 97):
                assert same(power(float(base[i]), e), want[i], 1.0, 1.0)  # a Python float
                assert same(power(np.float64(base[i]), e), want[i])  # numpy's scalar
                assert same(power(np.array(base[i]), np.array(e)), want[i])
    assert power(0.5, 2.0) == 0.25 and power(2.0, -1.0) == 0.5 and power(4.0, 0.5) == 2.0


@given(floats, floats)
def test_python_float_arithmetic_is_numpys(a, b):
    """The engine's operators on Python floats give numpy's float64 bits wherever Python does not raise."""
    x, y = np.float64(a), np.float64(b)
    with np.errstate(all="ignore"):
        for got, want in ((a + b, x + y), (a - b, x - y), (a * b, x * y), (-a, -x), (a > b, x > y), (a == b, x == y)):
            assert same(float(got), want, 1.0)
        if b != 0:
            assert same(a / b, x / y, a, b)


_ANY = st.floats(allow_nan=True, allow_infinity=True, width=64)


@given(st.lists(st.floats(-1e300, 1e300) | st.integers(-8, 8).map(float), min_size=2, max_size=10, unique=True),
       st.data())
def test_interp_of_one_number_is_numpys(points, data):
    """elementwise.interp_one is np.interp of one number over a strictly increasing grid, bit for bit: below, above,
    on and between its points, at the floats next to them, at inf, NaN and signed zeros, with values of any kind
    (inf and NaN values make numpy's fallbacks: the line from the point above, then the equal values)."""
    from costmodel.engine.elementwise import increasing_grid, interp_one

    xp = np.sort(np.array(points))
    fp = np.array(data.draw(st.lists(_ANY | st.sampled_from([0.0, -0.0, math.inf, -math.inf]), min_size=len(xp),
                                     max_size=len(xp))))
    xs = data.draw(st.lists(_ANY, max_size=4)) + xp.tolist() + np.nextafter(xp, np.inf).tolist() + \
        np.nextafter(xp, -np.inf).tolist() + [0.0, -0.0]
    xs_grid, fs_grid = increasing_grid(xp, fp)
    assert xs_grid == xp.tolist() and np.array_equal(np.array(fs_grid), fp, equal_nan=True)
    for x in xs:
        want, got = np.interp(x, xp, fp), interp_one(x, xp.tolist(), fp.tolist())
        assert type(got) is float
        assert np.array(got).view(np.int64) == np.array(want).view(np.int64) or (math.isnan(got) and math.isnan(want))


def test_a_grid_interp_one_cannot_take_is_none():
    """increasing_grid: None for fewer than two points, a point repeated or out of order, a NaN point, or values
    of another length (np.interp serves those)."""
    from costmodel.engine.elementwise import increasing_grid

    got = increasing_grid(np.array([1.0, 2.0, 4.0]), np.array([3.0, math.nan, -0.0]))
    assert got[0] == [1.0, 2.0, 4.0] and got[1][0] == 3.0 and math.isnan(got[1][1]) and math.copysign(1, got[1][2]) < 0
    for xp, fp in (([1.0], [2.0]), ([1.0, 1.0], [2.0, 3.0]), ([2.0, 1.0], [2.0, 3.0]), ([1.0, math.nan], [1.0, 2.0]),
                   ([1.0, 2.0], [1.0])):
        assert increasing_grid(xp, fp) is None
