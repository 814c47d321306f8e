"""A closed-loop benchmark's first wave (num_prompts), and the intervals of estimates under load:
closed forms on a synthetic replica, the mixture's limits, bands that hold their estimates, and
validate's coverage of loaded rows."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.calibration.measurements import load_kind
from costmodel.engine.serving import _MIX_Q, ReplicaPerf, _mixture, closed
from costmodel.serving import serve_load


def perf(t_p=0.05, step0=0.01, slope=0.0001, gen=200, cap=256, table=None):
    grid = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)
    return ReplicaPerf(t_p, t_p, 0.0, grid, step0 + slope * grid, float(gen), 0.0, cap, 0.0, table)


def test_a_benchmark_that_is_all_first_wave():
    """N = C: every request is in the wave; the k-th waits for k prefills of t_p each, so the mean
    TTFT is t_p·(C + 1)/2 and the largest is C·t_p (batch-1 prefill times k without a table)."""
    p = perf()
    s = closed(p, 32, p.max_batch, prompts=32)
    assert s.ttft["mean"] == pytest.approx(0.05 * 33 / 2)
    assert s.ttft[0.99] == pytest.approx(32 * 0.05)
    assert s.ttft[0.5] == pytest.approx(16 * 0.05)
    steady = closed(p, 32, p.max_batch)
    steps = p.gen_mean - 1
    assert s.e2e["mean"] == pytest.approx(s.ttft["mean"] + steps * steady.tpot["mean"])
    assert s.tpot == steady.tpot and s.arrival_rps == pytest.approx(steady.arrival_rps)


def test_the_wave_is_a_share_c_over_n_and_uses_the_batched_prefill_table():
    table = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float) * 0.02 + 0.03  # T(k) = 0.03 + 0.02·k
    p = perf(table=table)
    steady = closed(p, 16, p.max_batch)
    long = closed(p, 16, p.max_batch, prompts=160)  # InferenceX: N = 10·C
    wave_mean = np.mean(0.03 + 0.02 * np.arange(1, 17))
    assert long.ttft["mean"] == pytest.approx(0.9 * steady.ttft["mean"] + 0.1 * wave_mean)
    # the top 1 % lies in the wave's last tenth: T(k) for k near 0.9·16
    assert 0.03 + 0.02 * 14 <= long.ttft[0.99] <= 0.03 + 0.02 * 16
    assert closed(p, 16, p.max_batch, prompts=1e9).ttft[0.5] == pytest.approx(steady.ttft[0.5], rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(w=st.floats(0.0, 1.0), q=st.sampled_from([0.5, 0.9, 0.99]))
def test_mixture_limits_and_order(w, q):
    wave = np.linspace(1.0, 2.0, 11)
    steady = {"mean": 0.5}
    got = _mixture(steady, 0.4 + 0.2 * _MIX_Q, wave, w, (0.5, 0.9, 0.99))
    assert got["mean"] == pytest.approx((1 - w) * 0.5 + w * 1.5)
    assert got[0.5] <= got[0.9] <= got[0.99]
    assert 0.4 <= got[q] <= 2.0
    if w == 0.0:
        assert got[q] == pytest.approx(0.4 + 0.2 * q, abs=2e-3)


def test_load_kinds():
    assert load_kind("ttft_ms") == load_kind("ttft_p50_ms") == "load_ttft"
    assert load_kind("ttft_p99_ms") == load_kind("ttft_p90_ms") == "load_ttft_tail"
    assert load_kind("e2e_latency_p99_ms") == "load_e2e_tail" and load_kind("itl_ms") == "load_itl"
    assert load_kind("throughput_tokens_per_s_per_gpu") == load_kind("request_throughput_per_s") == "load_rate"


@pytest.mark.parametrize("kw", [dict(concurrency=64), dict(concurrency=8, num_prompts=80), dict(request_rate=2.0)])
@pytest.mark.parametrize("engine", ["sglang", "vllm", "trt-llm", "llama.cpp"])
def test_every_band_holds_its_estimate(kw, engine):
    d = serve_load("llama-3.1-8b", "h100", "fp8", prompt=1000, gen=300, engine=engine, **kw)
    assert d["interval"], "the shipped calibration has loaded residuals"
    for key, iv in d["interval"].items():
        assert iv["low"] <= d[key] <= iv["high"], key
        assert math.isfinite(iv["low"]) and math.isfinite(iv["high"])
    if "request_rate" in kw:  # a stable open loop completes what arrives: no band on the rate
        assert "request_throughput_per_s" not in d["interval"]
    else:
        assert "request_throughput_per_s" in d["interval"]


def test_an_engine_without_loaded_rows_gets_the_pooled_band_widened():
    from costmodel.calibration.intervals import load_band

    pooled = load_band("load_tpot", "*", "*")
    own = load_band("load_tpot", "no-such-engine", "nvidia-datacenter")
    assert own is not None and "pooled" in own[2] and own[0] <= pooled[0] and own[1] >= pooled[1]


def test_cli_num_prompts(run_cli):
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "32", "--num-prompts", "320",
                           "--json")
    d = json.loads(out)
    base = serve_load("llama-3.1-8b", "h100", "bf16", concurrency=32)
    assert code == 0 and d["num_prompts"] == 320 and d["ttft_p99_s"] > base["ttft_p99_s"]
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "2", "--num-prompts", "9")
    assert code == 2 and "--num-prompts 9: applies to a closed loop" in err
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "2", "--num-prompts", "0")
    assert code == 2 and "--num-prompts 0" in err


def test_validate_counts_loaded_rows_in_its_coverage(tmp_path):
    from costmodel.calibration.validate import validate

    head = ("id,source,hardware,devices,tp,model,format,kv_format,framework,batch,prompt_tokens,output_tokens,"
            "context_tokens,metric,value,notes,load,request_rate,length_dist,num_prompts\n")
    body = ("a,s,h100-sxm,1,1,llama-3.1-8b,fp8,,sglang,16,1000,500,0,ttft_p99_ms,900,,closed,,fixed,160\n"
            "b,s,h100-sxm,1,1,llama-3.1-8b,fp8,,sglang,16,1000,500,0,tpot_ms,12,,closed,,fixed,160\n"
            "c,s,h100-sxm,1,1,llama-3.1-8b,fp8,,vllm,,1000,500,0,tpot_p50_ms,12,,poisson,4,fixed,\n")
    f = tmp_path / "m.csv"
    f.write_text(head + body)
    rep = validate([str(f)])
    cov = rep["interval_coverage"]
    assert cov["n"] == 3 and set(cov["by_load"]) == {"closed", "poisson"} and cov["by_load"]["closed"]["n"] == 2
    want = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=16, prompt=1000, gen=500, engine="sglang",
                      num_prompts=160)
    got = {d["id"]: d["predicted"] for d in rep["rows_detail"]}
    assert got["a"] == pytest.approx(want["ttft_p99_s"] * 1e3)
    f.write_text(head + "a,s,h100-sxm,1,1,llama-3.1-8b,fp8,,sglang,16,1000,500,0,tpot_ms,12,,closed,,fixed,0\n")
    with pytest.raises(Exception, match="num_prompts"):
        validate([str(f)])


def test_each_ttft_percentile_uses_its_own_prompt_length_quantile():
    """At a light load (no waits), TTFT P90 − P50 is the prefill of the P90 prompt minus the mean
    prompt's, and P99 uses the P99 prompt (lognormal lengths)."""
    from costmodel.engine.serving import parse_dist
    from costmodel.estimate import estimate

    d = serve_load("llama-3.1-8b", "h100", "bf16", request_rate=0.01, prompt=2000, gen=100,
                   prompt_dist="lognormal:2000,0.8", engine="vllm")
    dist = parse_dist("lognormal:2000,0.8", 2000, "prompt")

    def prefill(tokens):
        return estimate("llama-3.1-8b", "h100", "bf16", batch=1, prompt=max(1, round(tokens)), gen=1,
                        engine="vllm").metric("ttft_s")

    assert d["ttft_p90_s"] - d["ttft_p50_s"] == pytest.approx(prefill(dist.quantile(0.9)) - prefill(2000), rel=1e-6)
    assert d["ttft_p99_s"] - d["ttft_p50_s"] == pytest.approx(prefill(dist.quantile(0.99)) - prefill(2000), rel=1e-6)
