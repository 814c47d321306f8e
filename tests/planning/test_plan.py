"""Capacity planning: SLOs hold, costs move the right way, the queueing model's closed forms."""
import json
import math

import numpy as np
import pytest

from costmodel.planning.plan import Dist, PlanError, Request, plan, replica_perf
from costmodel.engine.serving import (ReplicaPerf, capacity, md1_wait, mgc_wait, mm1_wait, poisson, serve,
                                      simulate_single_server)


def request(**kw):
    base = dict(model="llama-3.1-8b", qps=20.0, prompt=Dist(1000), gen=Dist(300), slo_ttft=1.0, slo_tpot=0.05,
                percentile=0.9, candidates=["h100", "l40s"], formats=["fp8", "bf16"], tp_options=(1, 2))
    base.update(kw)
    return Request(**base)


@pytest.fixture(scope="module")
def result():
    return plan(request())


def test_every_deployment_meets_its_slos_under_the_engine(result):
    req = request()
    assert result["deployments"]
    for d in result["deployments"]:
        (perf, _), _ = replica_perf(req.model, d["hardware"], d["format"], d["tp"], req)
        load = poisson(perf, req.qps / d["replicas"], d["batch_cap"], (req.percentile,))
        assert load.ok and load.ttft[req.percentile] <= req.slo_ttft and load.tpot["mean"] <= req.slo_tpot
        assert req.qps / d["replicas"] < capacity(perf, d["batch_cap"])
        assert d["devices"] == d["tp"] * d["replicas"]
        assert d["usd_per_month"] == pytest.approx(d["usd_per_hour"] * 730)
    costs = [d["usd_per_hour"] for d in result["deployments"]]
    assert costs == sorted(costs)


def test_plan_agrees_with_estimate_request_rate_for_its_deployment(result):
    """plan and `estimate --request-rate` are one model: the chosen deployment's P90 TTFT and TPOT
    are what serve_load gives for it at the same traffic (replicas share it evenly)."""
    from costmodel.serving import serve_load

    d = result["deployments"][0]
    got = serve_load("llama-3.1-8b", d["hardware"], d["format"], request_rate=20.0, prompt=1000, gen=300, tp=d["tp"],
                     devices=d["devices"], concurrency=d["batch_cap"] * d["replicas"])
    assert got["ttft_p90_s"] == pytest.approx(d["ttft_s"], rel=1e-9)
    assert got["tpot_s"] == pytest.approx(d["tpot_s"], rel=1e-9)
    assert got["ttft_s"] == pytest.approx(d["ttft_mean_s"], rel=1e-9)


def test_cost_is_non_decreasing_in_qps():
    costs = [plan(request(qps=q, candidates=["h100"], formats=["fp8"]))["deployments"][0]["usd_per_hour"]
             for q in (1, 5, 10, 20, 40, 80)]
    assert all(b >= a for a, b in zip(costs, costs[1:]))


def test_tightening_an_slo_never_lowers_the_cost():
    loose = plan(request(slo_ttft=2.0, slo_tpot=0.1))["deployments"][0]["usd_per_hour"]
    tight = plan(request(slo_ttft=0.3, slo_tpot=0.03))["deployments"][0]["usd_per_hour"]
    assert tight >= loose


def test_model_too_big_for_every_candidate():
    r = plan(request(model="llama-3.1-405b", candidates=["l4"], formats=["bf16"], tp_options=(1, 2, 4, 8)))
    assert not r["deployments"] and r["binding"].startswith("memory")
    assert all(x["reason"].startswith("memory") for x in r["rejected"])


def test_unreachable_ttft_names_the_binding_constraint():
    r = plan(request(slo_ttft=0.001))
    assert not r["deployments"] and "TTFT binds" in r["binding"] and "relax --slo-ttft" in r["binding"]


def test_no_candidate_that_can_run_names_why_not_an_infinite_ttft():
    """Where no candidate ran (memory and no interconnect on an M1; tp not dividing the heads), the binding says why
    each could not, not 'the fastest prefill is inf s; relax --slo-ttft to >= inf s' (a fuzzing review)."""
    r = plan(request(candidates=["m1-7c"], formats=["bf16"]))
    assert not r["deployments"] and r["binding"].startswith("no candidate can run: memory: does not fit")
    assert "inf" not in r["binding"] and "no device interconnect" in r["binding"]
    r = plan(request(candidates=["h100"], tp_options=(3,)))
    assert r["binding"].startswith("no candidate can run: --tp 3 must divide the 32 attention heads"), r["binding"]


def test_an_unknown_engine_or_no_format_fails_before_any_candidate():
    """plan and whatif checked --engine per candidate (rejecting each, exit 1) and took --fmt '' as no format."""
    from costmodel.errors import UnknownIdError
    from costmodel.planning.plan import request as plan_request

    args = ("llama-3.1-8b", 10.0, 512.0, 128.0, 1.0, "h100")
    with pytest.raises(UnknownIdError, match="unknown engine 'vlm'; did you mean 'vllm'"):
        plan_request(*args, engine="vlm")
    with pytest.raises(PlanError, match="--fmt '': empty"):
        plan_request(*args, fmt="")
    assert plan_request(*args, engine="sglang").engine == "sglang"


def test_own_prices_show_each_term():
    r = plan(request(price="own", candidates=["h100"], formats=["fp8"], electricity=0.1, pue=1.2, years=4))
    d = r["deployments"][0]
    assert d["usd_per_hour"] == pytest.approx(d["capex_usd_per_hour"] + d["power_usd_per_hour"] + d["hosting_usd_per_hour"])
    assert d["capex_usd_per_hour"] == pytest.approx(d["devices"] * 30678 / (4 * 8760))
    r = plan(request(price="own", candidates=["a100"], formats=["fp8"]))
    assert any("no purchase price" in x["reason"] and "--price-per-device" in x["reason"] for x in r["rejected"])


def test_queueing_matches_md1_and_mm1_closed_forms():
    # degenerate setting: batch cap 1, one request in service at a time, fixed lengths -> M/D/1
    perf = ReplicaPerf(0.05, 0.05, 0.0, np.array([1.0]), np.array([0.01]), 10.0, 0.0, 1)
    service = 0.05 + 10 * 0.01
    for lam in (1.0, 3.0, 5.0):
        load = serve(perf, lam, 1, 0.5)
        assert load.ttft_mean - 0.05 == pytest.approx(md1_wait(lam, service), rel=0.02)
    assert mgc_wait(4.0, 0.2, 1, 1.0)[0] == pytest.approx(mm1_wait(4.0, 0.2), rel=1e-12)
    # and the closed forms against a simulation of the queue
    rng = np.random.default_rng(1)
    assert simulate_single_server(4.0, np.full(200_000, 0.2)) == pytest.approx(md1_wait(4.0, 0.2), rel=0.02)
    assert simulate_single_server(4.0, rng.exponential(0.2, 200_000)) == pytest.approx(mm1_wait(4.0, 0.2), rel=0.03)


def test_saturation_matches_the_engines_max_load_throughput():
    from costmodel import estimate

    req = request(candidates=["h100"], formats=["fp8"])
    (perf, _), _ = replica_perf(req.model, "h100", "fp8", 1, req)
    cap = int(perf.batches[-2])
    e = estimate("llama-3.1-8b", "h100", "fp8", batch=cap, prompt=1, gen=2, context=1150)
    # a saturated queue prefills its prompts in batches: the engine's prefill of k prompts at once,
    # per prompt, at the k where it is least (k = the largest grid batch here: weights read once)
    k = int(perf.batches[-1])
    wave = estimate("llama-3.1-8b", "h100", "fp8", batch=k, prompt=1000, gen=1).metric("ttft_s")
    assert perf.min_prefill_per_prompt() == pytest.approx(min(perf.t_prefill, wave / k), rel=0.01)
    # the engine at max load with B = cap: B·G / (B·t_prompt + G·t_step(B)) tokens/s
    engine_tps = cap * 300 / (cap * perf.min_prefill_per_prompt() + 300 * e.metric("tpot_s"))
    assert capacity(perf, cap) * 300 == pytest.approx(engine_tps, rel=0.01)


def test_bad_input():
    with pytest.raises(PlanError):
        plan(request(qps=0))
    with pytest.raises(PlanError):
        plan(request(price="lease"))


def test_plan_and_whatif_cli(run_cli, tmp_path):
    args = ["plan", "llama-3.1-8b", "--qps", "20", "--prompt", "1000", "--gen", "300", "--slo-ttft", "1",
            "--slo-tpot", "0.05", "--candidates", "h100,l40s", "--fmt", "fp8", "--json"]
    code, out, err = run_cli(*args)
    d = json.loads(out)
    assert code == 0, err
    keys = {"hardware", "devices", "tp", "replicas", "format", "batch_cap", "ttft_s", "tpot_s", "usd_per_hour",
            "usd_per_month", "usd_per_million_tokens", "kwh_per_month"}
    assert keys <= set(d["deployments"][0]) and isinstance(d["rejected"], list)
    code, _, err = run_cli("plan", "llama-3.1-8b", "--qps", "20", "--prompt", "1000", "--gen", "300", "--slo-ttft",
                           "0.001", "--candidates", "h100", "--fmt", "fp8")
    assert code == 1 and "TTFT binds" in err
    code, _, err = run_cli("plan", "llama-3.1-8b", "--qps", "20", "--prompt", "1000", "--gen", "300", "--slo-ttft", "1",
                           "--candidates", "h100", "--prompt-dist", "gaussian:3")
    assert code == 2 and "lognormal:MEAN,SIGMA" in err
    png = tmp_path / "w.png"
    code, out, err = run_cli("whatif", "llama-3.1-8b", "--vary", "qps=5,10,20", "--qps", "10", "--prompt", "1000",
                             "--gen", "300", "--slo-ttft", "1", "--candidates", "h100,l40s", "--fmt", "fp8",
                             "--plot", str(png), "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 3 and png.stat().st_size > 10_000, err
    costs = [r["best"]["usd_per_month"] for r in rows]
    assert costs == sorted(costs)


def test_lognormal_lengths_raise_the_percentile_ttft():
    fixed = plan(request(candidates=["h100"], formats=["fp8"]))["deployments"][0]
    spread = plan(request(candidates=["h100"], formats=["fp8"], prompt=Dist(1000, 0.8)))["deployments"][0]
    assert spread["ttft_s"] >= fixed["ttft_s"] * 0.99 or spread["usd_per_hour"] >= fixed["usd_per_hour"]
    assert math.isfinite(spread["ttft_s"])


def test_buying_b200_is_costed_and_a_missing_purchase_price_is_named(run_cli):
    """B200 has a sourced purchase price; GB200 has none, and the message says which flag supplies it."""
    code, out, err = run_cli("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "1000", "--gen", "200", "--slo-ttft", "1",
                             "--candidates", "b200", "--price", "own", "--json")
    assert code == 0
    import json

    best = json.loads(out)["deployments"][0]
    assert best["hardware"] == "b200" and best["capex_usd_per_hour"] > 0
    code, out, err = run_cli("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "1000", "--gen", "200", "--slo-ttft", "1",
                             "--candidates", "gb200", "--price", "own")
    assert code == 1 and "price: no purchase price for gb200" in err and "--price-per-device" in err
    assert "throughput binds" not in err and "TTFT binds" not in err


def test_price_per_device_sets_the_capital_cost():
    from costmodel.planning.plan import plan as run

    kw = dict(qps=5, prompt=1000, gen=200, slo_ttft=1, candidates=["gb200"], price="own", tp="1", years=3)
    a = run("llama-3.1-8b", price_per_device=["gb200=45000"], **kw)["deployments"][0]
    b = run("llama-3.1-8b", price_per_device=["gb200=90000"], **kw)["deployments"][0]
    assert a["capex_usd_per_hour"] == pytest.approx(a["devices"] * 45000 / (3 * 8760))
    assert b["capex_usd_per_hour"] == pytest.approx(2 * a["capex_usd_per_hour"])


@pytest.mark.parametrize("bad", ["gb200=-4", "gb200=abc", "gb200", "gb200=inf", "gb200=nan"])
def test_bad_price_per_device_is_one_line(run_cli, bad):
    code, out, err = run_cli("plan", "llama-3.1-8b", "--qps", "5", "--prompt", "1000", "--gen", "200", "--slo-ttft", "1",
                             "--candidates", "gb200", "--price", "own", "--price-per-device", bad)
    assert code == 2 and "--price-per-device" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_plan_searches_expert_and_attention_data_parallel_layouts():
    from costmodel.planning.plan import plan

    out = plan("deepseek-r1", qps=5, prompt=1000, gen=500, slo_ttft=2.0, candidates=["h200"], fmt=["fp8"], tp="8")
    layouts = {d["layout"]: d for d in out["deployments"]}
    assert set(layouts) == {"tp8", "tp8 ep8", "tp8 dp8 ep8"}
    assert (layouts["tp8 dp8 ep8"]["dp"], layouts["tp8 dp8 ep8"]["ep"]) == (8, 8)
    # DP attention splits the MLA latent cache over the groups: twice the batch cap of TP alone here
    assert layouts["tp8 dp8 ep8"]["batch_cap"] > layouts["tp8"]["batch_cap"]
    dense = plan("llama-3.1-8b", qps=5, prompt=1000, gen=200, slo_ttft=1.0, candidates=["h100"], fmt=["fp8"], tp="1,2")
    assert {d["layout"] for d in dense["deployments"]} <= {"tp1", "tp2"}  # no EP for a dense model


def test_plan_rejects_an_unknown_layout(run_cli):
    code, _, err = run_cli("plan", "deepseek-r1", "--qps", "5", "--prompt", "1000", "--gen", "500", "--slo-ttft", "2",
                           "--candidates", "h200", "--fmt", "fp8", "--tp", "8", "--layouts", "tp,xx")
    assert code == 2 and "--layouts 'xx': expected tp, ep or dp-ep" in err


def test_plan_with_multi_token_prediction():
    from costmodel.planning.plan import plan

    kw = dict(qps=5, prompt=1000, gen=500, slo_ttft=2.0, slo_tpot=0.03, candidates=["h200"], fmt=["fp8"], tp="8",
              layouts="tp")
    plain, mtp = plan("deepseek-r1", **kw), plan("deepseek-r1", mtp=2, **kw)
    # two drafts at 0.875 acceptance cut TPOT: the 30 ms target then holds on one replica, not two
    assert mtp["deployments"][0]["tpot_s"] < plain["deployments"][0]["tpot_s"]
    assert mtp["deployments"][0]["devices"] < plain["deployments"][0]["devices"]


@pytest.mark.parametrize("extra,needle", [
    (["--mtp", "2", "--accept-rate", "3"], "--accept-rate 3.0: expected a fraction in [0, 1]"),
    (["--accept-rate", "0.5"], "--accept-rate applies to draft tokens: give --mtp N too"),
    (["--mtp", "40"], "--mtp 40: expected 0 to 32"),
])
def test_plan_rejects_bad_speculation(run_cli, extra, needle):
    code, _, err = run_cli("plan", "deepseek-r1", "--qps", "5", "--prompt", "1000", "--gen", "500", "--slo-ttft", "2",
                           "--candidates", "h200", "--fmt", "fp8", "--tp", "8", *extra)
    assert code == 2 and needle in err
