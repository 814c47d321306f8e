"""Cached-input pricing in cost-of-pass (issue 18): prefix-cache hits billed at an API's cached price."""
import pytest

from costmodel.analyses.cost_of_pass import cost_of_pass, parse_candidate


def test_api_candidate_with_a_cached_price_hand_computed():
    c = parse_candidate("llama-3.1-70b@api:0.56/1.68/0.07")
    assert (c.price_in, c.price_out, c.price_cached) == (0.56, 1.68, 0.07)
    # 2000 in (80% cached) + 500 out: (2000 x (0.2 x 0.56 + 0.8 x 0.07) + 500 x 1.68) / 1e6
    got = cost_of_pass("gsm8k", ["llama-3.1-70b@api:0.56/1.68/0.07"], tokens_in=2000, tokens_out=500, prefix_hit=0.8)
    assert got["candidates"][0]["cost_per_attempt_usd"] == pytest.approx((2000 * 0.168 + 500 * 1.68) / 1e6)
    # without a cached price the hits cost the full input price
    full = cost_of_pass("gsm8k", ["llama-3.1-70b@api:0.56/1.68"], tokens_in=2000, tokens_out=500, prefix_hit=0.8)
    assert full["candidates"][0]["cost_per_attempt_usd"] == pytest.approx((2000 * 0.56 + 500 * 1.68) / 1e6)


def test_engine_priced_candidate_prefills_only_the_uncached_part():
    kw = dict(tokens_in=4000, tokens_out=100, batch=8)
    cold = cost_of_pass("gsm8k", ["llama-3.1-8b@h100:fp8"], **kw)["candidates"][0]["cost_per_attempt_usd"]
    warm = cost_of_pass("gsm8k", ["llama-3.1-8b@h100:fp8"], prefix_hit=0.9, **kw)["candidates"][0]["cost_per_attempt_usd"]
    assert warm < cold


@pytest.mark.parametrize("args,needle", [
    (["--candidates", "x@api:1/2/-1"], "prices must be >= 0"),
    (["--candidates", "llama-3.1-8b@api:1/2", "--prefix-hit", "1.5"], "--prefix-hit 1.5: expected"),
])
def test_bad_input(run_cli, args, needle):
    code, _, err = run_cli("cost-of-pass", "--task", "gsm8k", *args)
    assert code == 2 and needle in err and "Traceback" not in err
