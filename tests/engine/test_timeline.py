"""timeline.py's dollars: the price per token split into dollars a second (what a sweep's row fixes, computed once per
row by kernels.decode_pass) and their product with the seconds a token, the same operations in the same order."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.timeline import usd_per_million_at, usd_per_million_tokens, usd_per_second

NUMBERS = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.sampled_from([0.0, -0.0, 1.0, 3600.0, 1e-300])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(NUMBERS, NUMBERS, NUMBERS, NUMBERS), min_size=1, max_size=20))
def test_dollars_per_token_are_the_formulas_bits(rows):
    """usd_per_million_tokens = tp · pp · $/h / 3600 · seconds a token · 10^6, evaluated left to right as written,
    bit for bit on numpy arrays and on Python floats, through usd_per_second and usd_per_million_at."""
    tp, pp, price, per_token = (np.array(c) for c in zip(*rows))
    with np.errstate(all="ignore"):
        want = tp * pp * price / 3600.0 * per_token * 1e6
        got = usd_per_million_tokens(tp, pp, price, per_token)
        parts = usd_per_million_at(usd_per_second(tp, pp, price), per_token)
    for x in (got, parts):
        np.testing.assert_array_equal(np.asarray(x).view(np.uint64), want.view(np.uint64))
    for a, b, c, d in rows:
        try:
            plain = a * b * c / 3600.0 * d * 1e6
        except (OverflowError, ZeroDivisionError):  # Python floats raise where numpy's give inf
            continue
        assert repr(usd_per_million_tokens(a, b, c, d)) == repr(plain)


def test_dollars_per_token_of_an_hour_of_devices():
    """Eight devices at $2/h for 0.01 s a token: 8 · 2 / 3600 $/s · 0.01 s · 10^6 = 44.44 $ a million tokens."""
    assert usd_per_second(4.0, 2.0, 2.0) == 16.0 / 3600.0
    assert abs(usd_per_million_tokens(4.0, 2.0, 2.0, 0.01) - 16.0 / 3600.0 * 0.01 * 1e6) < 1e-9
    assert abs(usd_per_million_tokens(4.0, 2.0, 2.0, 0.01) - 44.444444) < 1e-5
