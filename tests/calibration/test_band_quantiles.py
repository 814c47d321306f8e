"""band_quantiles groups residuals under each row's band keys and takes numpy's linear percentiles."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.calibration.intervals import MIN_POOLED_ENGINES, band_index, band_keys, band_quantiles, linear_quantiles

finite = st.floats(-5, 5, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(finite, min_size=1, max_size=40), min_size=1, max_size=6),
       st.sampled_from([0.0, 10.0, 25.0, 50.0, 90.0, 99.0, 100.0]))
def test_linear_quantiles_are_numpys_bits(groups, q):
    vals = np.concatenate([np.sort(g) for g in groups])
    n = np.array([len(g) for g in groups])
    got = linear_quantiles(vals, np.cumsum(n) - n, n, q / 100)
    want = [np.percentile(g, q) for g in groups]
    assert got.tolist() == want  # equal bits, not approximately


def test_empty_group_is_nan():
    got = linear_quantiles(np.array([1.0, 2.0]), np.array([0, 2]), np.array([2, 0]), 0.5)
    assert got[0] == 1.5 and np.isnan(got[1])


def _loop(r, keys, engines, min_n):
    """The grouping written out row by row (the definition band_quantiles vectorizes)."""
    groups, seen = {}, {}
    for i in np.where(np.isfinite(r))[0]:
        for k in keys[i]:
            groups.setdefault(k, []).append(r[i])
            seen.setdefault(k, set()).add(engines[i])
    return {k: (float(np.percentile(v, 10)), float(np.percentile(v, 90)), len(v)) for k, v in groups.items()
            if len(v) >= min_n and not (k[0] == "*" and k[1] != "*" and len(seen[k]) < MIN_POOLED_ENGINES)}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["vllm", "sglang", "llama.cpp", "llama.cpp/vulkan"]),
                          st.sampled_from(["nvidia", "amd", "apple"]), st.sampled_from(["decode", "prefill"]),
                          st.booleans(), st.one_of(finite, st.just(float("nan")))), min_size=1, max_size=60),
       st.integers(1, 6))
def test_band_quantiles_match_the_row_loop(rows, min_n):
    keys = [band_keys(e, f, k, pooled) for e, f, k, pooled, _ in rows]
    engines = [e.partition("/")[0] for e, *_ in rows]
    r = np.array([x for *_, x in rows])
    got = band_quantiles(r, band_index(keys, engines), min_n)
    want = _loop(r, keys, engines, min_n)
    assert list(got) == list(want)  # the same keys in the order they first occur
    assert got == want


def test_pooled_family_band_needs_two_engines():
    keys = [band_keys("vllm", "nvidia", "decode", True)] * 10
    r = np.linspace(-0.2, 0.2, 10)
    alone = band_quantiles(r, band_index(keys, ["vllm"] * 10), 8)
    assert ("*", "nvidia", "decode") not in alone and alone[("*", "*", "*")][2] == 10
    both = band_quantiles(r, band_index(keys, ["vllm"] * 5 + ["sglang"] * 5), 8)
    lo, hi, n = both[("*", "nvidia", "decode")]
    assert n == 10 and np.isclose(lo, -0.2 + 0.9 * 0.4 / 9) and np.isclose(hi, 0.2 - 0.9 * 0.4 / 9)
