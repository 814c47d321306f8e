"""Self-hosting against an API (issue 18): the API's cost of a plan's traffic and the break-even load."""
import math

import pytest

from costmodel.planning.api_compare import compare
from costmodel.spec.api_prices import ApiPrice, parse_api_price, shipped_prices


def _result(**d):
    dep = {"hardware": "h100-sxm", "usd_per_hour": 10.0, "usd_per_hour_idle": 10.0, "usd_per_hour_full": 10.0,
           "capacity_qps": 20.0, **d}
    return {"model": "m", "qps": 5.0, "prompt_mean": 1000.0, "gen_mean": 200.0, "deployments": [dep]}


def test_api_cost_and_break_even_for_a_rented_deployment_hand_computed():
    # $/request = (1000 x 0.5 x 1.0 + 1000 x 0.5 x 0.1 + 200 x 2.0) / 1e6 = 0.00095; k = 3600 x that = 3.42 $/h per req/s
    out = compare(_result(), ApiPrice(1.0, 2.0, 0.1), prefix_hit=0.5)
    d = out["deployments"][0]
    k = 3600 * (500 * 1.0 + 500 * 0.1 + 200 * 2.0) / 1e6
    assert out["api"]["usd_per_hour"] == pytest.approx(5 * k)
    assert d["breakeven_qps"] == pytest.approx(10.0 / k)  # rented: a flat $/hour
    assert d["breakeven_share_of_capacity"] == pytest.approx(10.0 / k / 20.0)
    assert d["api_to_self_host"] == pytest.approx(5 * k / 10.0) and d["cheaper"] == "self-host"


def test_owned_deployment_power_grows_with_load():
    # a + b x / C = k x  ->  x = a / (k - b / C)
    out = compare(_result(usd_per_hour_idle=4.0, usd_per_hour_full=8.0, usd_per_hour=6.0), ApiPrice(1.0, 1.0, 1.0))
    k = 3600 * 1200 / 1e6
    assert out["deployments"][0]["breakeven_qps"] == pytest.approx(4.0 / (k - 4.0 / 20.0))


def test_never_breaks_even_when_the_load_driven_cost_outgrows_the_api():
    out = compare(_result(usd_per_hour_idle=1.0, usd_per_hour_full=1000.0), ApiPrice(0.01, 0.01, 0.01))
    d = out["deployments"][0]
    assert d["breakeven_qps"] is None and d["breakeven_share_of_capacity"] is None and d["cheaper"] == "api"


def test_prices_parse_and_shipped_entries_carry_sources():
    p = parse_api_price("0.28:0.42")
    assert (p.input, p.output, p.cached_input) == (0.28, 0.42, 0.28)
    assert parse_api_price("0.28:0.42:0.028").cached_input == 0.028
    ds = shipped_prices()["deepseek-v3.2"]
    assert (ds.input, ds.cached_input, ds.output) == (0.28, 0.028, 0.42) and "api-docs.deepseek.com" in ds.source
    assert all(v.source and v.model for v in shipped_prices().values())


@pytest.mark.parametrize("text,needle", [
    ("deepseek-v3.3", "did you mean 'deepseek-v3.2'?"),
    ("0.1:-1", "expected IN:OUT[:CACHED] USD per million tokens"),
    ("0:0", "expected IN:OUT[:CACHED]"),
    ("nan:1", "expected IN:OUT[:CACHED]"),
])
def test_bad_prices_are_refused(text, needle):
    from costmodel.errors import CostModelError

    with pytest.raises(CostModelError, match=needle.replace("[", r"\[").replace("]", r"\]").replace("?", r"\?")):
        parse_api_price(text)


def test_plan_carries_capacity_and_the_comparison():
    from costmodel.planning.plan import plan

    out = plan("llama-3.1-8b", qps=20, prompt=1000, gen=200, slo_ttft=1.0, candidates=["h100"], tp="1",
               api_price="0.10:0.10")
    d = out["deployments"][0]
    assert d["capacity_qps"] >= 20 and d["usd_per_hour_idle"] == d["usd_per_hour_full"] == d["usd_per_hour"]
    k = 3600 * 1200 * 0.10 / 1e6
    assert d["breakeven_qps"] == pytest.approx(d["usd_per_hour"] / k)
    assert out["api"]["model_matches"] and math.isclose(out["api"]["usd_per_month"], 20 * k * 730)


def test_cli_prints_the_verdict_and_refuses_bad_prices(run_cli):
    code, out, _ = run_cli("plan", "llama-3.1-8b", "--qps", "20", "--prompt", "1000", "--gen", "200", "--slo-ttft", "1",
                           "--candidates", "h100", "--tp", "1", "--api-price", "0.10:0.10")
    assert code == 0 and "self-hosting is cheaper above it" in out
    code, _, err = run_cli("plan", "llama-3.1-8b", "--qps", "20", "--prompt", "1000", "--gen", "200", "--slo-ttft", "1",
                           "--candidates", "h100", "--api-price", "cheap")
    assert code == 2 and "--api-price 'cheap'" in err and "Traceback" not in err
