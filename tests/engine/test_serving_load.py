"""The load model: closed loop and Poisson arrivals on one replica (engine/serving.py), the
deployment-level serve_load, and validate scoring benchmark rows with them."""
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from costmodel.engine.serving import ReplicaPerf, closed, parse_dist, poisson, serve
from costmodel.serving import serve_load


def perf(t_p=0.05, step0=0.01, slope=0.0001, gen=200, cap=256):
    grid = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)
    return ReplicaPerf(t_p, t_p * 1.2, 0.0, grid, step0 + slope * grid, float(gen), 0.0, cap)


def test_closed_loop_obeys_littles_law_and_queues_beyond_the_cap():
    p = perf()
    s = closed(p, 32, p.max_batch)
    assert s.ok and s.running == 32 and s.queued == 0
    assert s.arrival_rps * s.e2e["mean"] == pytest.approx(32, rel=1e-6)  # N = X · E2E
    big = closed(p, 1000, 256)
    assert big.running == 256 and big.queued == 744
    assert big.arrival_rps * big.e2e["mean"] == pytest.approx(1000, rel=1e-6)
    assert big.ttft["mean"] > 744 / big.arrival_rps  # waits for a slot


def test_one_client_is_a_sequential_request_stream():
    """C = 1: no interleaving, TTFT = residual-free prefill, TPOT = the batch-1 step."""
    p = perf()
    s = closed(p, 1, p.max_batch)
    assert s.tpot["mean"] == pytest.approx(p.step(1))
    assert s.ttft["mean"] == pytest.approx(p.t_prefill + p.step(1) / 2)  # the step in progress
    assert s.e2e["mean"] == pytest.approx(s.ttft["mean"] + (p.gen_mean - 1) * s.tpot["mean"])


def test_percentiles_are_ordered_and_itl_spikes_with_prefills():
    p = perf()
    for s in (closed(p, 64, 256), poisson(p, 5.0, 256)):
        for d in (s.ttft, s.tpot, s.itl, s.e2e):
            assert d[0.5] <= d[0.9] <= d[0.99]
        assert s.itl[0.99] == pytest.approx(p.step(s.running) + p.t_prefill)  # a step carrying a prefill


def test_poisson_matches_the_planning_model():
    """plan and estimate --request-rate share one model: same TPOT and P90 TTFT as `serve`."""
    p = perf()
    s = poisson(p, 15.0, 128, qs=(0.9,))
    ref = serve(p, 15.0, 128, 0.9)
    assert s.tpot["mean"] == pytest.approx(ref.tpot)
    assert s.ttft[0.9] - p.t_prefill_q - min(1.0, s.running) * p.step(s.running) / 2 == pytest.approx(
        ref.ttft_q - p.t_prefill_q, abs=1e-9)
    over = poisson(p, 1e6, 128)
    assert not over.ok and math.isinf(over.ttft["mean"])


def test_length_distributions():
    d = parse_dist("uniform:0.8", 1000, "prompt")
    assert d.mean == 900 and d.quantile(1.0) == 1000 and d.cv2 == pytest.approx((200**2 / 12) / 900**2)
    assert parse_dist(None, 512, "prompt").cv2 == 0
    with pytest.raises(Exception, match="uniform:R"):
        parse_dist("uniform:2", 100, "gen")


def test_serve_load_throughput_and_replicas():
    one = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=32, prompt=1000, gen=500)
    four = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=128, prompt=1000, gen=500, devices=4)
    assert four["request_throughput_per_s"] == pytest.approx(4 * one["request_throughput_per_s"], rel=1e-6)
    assert one["throughput_tokens_per_s"] == pytest.approx(one["request_throughput_per_s"] * 500)
    assert one["total_throughput_tokens_per_s"] == pytest.approx(one["request_throughput_per_s"] * 1500)
    more = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=256, prompt=1000, gen=500)
    assert more["tpot_s"] > one["tpot_s"] and more["request_throughput_per_s"] > one["request_throughput_per_s"]


def test_cli_concurrency_and_request_rate(run_cli):
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "16", "--json")
    d = json.loads(out)
    assert code == 0 and d["load"] == "closed" and d["ttft_p99_s"] >= d["ttft_p50_s"]
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "4",
                             "--prompt-dist", "uniform:0.8")
    assert code == 0 and "Poisson arrivals at" in out and "4 req/s" in out and "P99" in out
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1000000")
    assert code == 0 and "unbounded" in out and "nan" not in out.lower()
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "-3")
    assert code == 2


def test_validate_scores_closed_loop_rows(tmp_path):
    from costmodel.calibration.validate import validate

    head = ("id,source,hardware,devices,tp,model,format,kv_format,framework,batch,prompt_tokens,output_tokens,"
            "context_tokens,metric,value,notes,load,request_rate,dp,ep,length_dist\n")
    body = ("a,s,h100-sxm,1,1,llama-3.1-8b,fp8,,vllm,16,1000,500,0,ttft_p99_ms,120,,closed,,,,fixed\n"
            "b,s,h100-sxm,1,1,llama-3.1-8b,fp8,,vllm,16,1000,500,0,tpot_ms,12,,closed,,,,fixed\n"
            "c,s,h100-sxm,1,1,llama-3.1-8b,fp8,,vllm,,1000,500,0,tpot_ms,12,,poisson,4,,,uniform:0.8\n"
            "d,s,h100-sxm,8,8,llama-3.1-8b,fp8,,vllm,16,1000,500,0,tpot_ms,12,,closed,,,8,fixed\n")
    f = tmp_path / "m.csv"
    f.write_text(head + body)
    rep = validate([str(f)])
    assert rep["scored"] == 3 and {d["id"] for d in rep["rows_detail"]} == {"a", "b", "c"}
    want = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=16, prompt=1000, gen=500, engine="vllm")
    got = {d["id"]: d["predicted"] for d in rep["rows_detail"]}
    assert got["a"] == pytest.approx(want["ttft_p99_s"] * 1e3) and got["b"] == pytest.approx(want["tpot_s"] * 1e3)
    assert rep["skipped"][0]["reason"] == "--ep 8: llama-3.1-8b is dense (no experts to shard); use --ep 1"
    f.write_text(head + "a,s,h100-sxm,1,1,llama-3.1-8b,fp8,,vllm,16,1000,500,0,ttft_p99_ms,120,,,,,,\n")
    with pytest.raises(Exception, match="needs load closed or poisson"):
        validate([str(f)])


def test_serve_curve_over_concurrency(run_cli, tmp_path):
    from costmodel import serve_curve

    c = serve_curve("llama-3.1-70b", ["h100", "l4"], ["fp8"], concurrency=[1, 16, 64], prompt=1000, gen=200)
    assert [x["hardware"] for x in c] == ["h100-sxm"] and c.dropped[0]["hardware"] == "l4"
    curve = c[0]
    assert curve["batch"] == [1, 16, 64]
    assert np.all(np.diff(curve["throughput_tokens_per_s"]) > 0) and np.all(np.diff(curve["tpot_s"]) > 0)
    code, out, err = run_cli("serve-curve", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1,4,1e6",
                             "--plot", str(tmp_path / "c.png"), "--json")
    d = json.loads(out)
    assert code == 0 and d["curves"][0]["batch"] == [1.0, 4.0]  # the point over capacity is left out
    assert (tmp_path / "c.png").stat().st_size > 0
    code, out, err = run_cli("serve-curve", "llama-3.1-8b", "--hw", "h100")
    assert code == 2 and "--concurrency" in err


def test_streaming_every_k_tokens_makes_itl_k_decode_steps(run_cli, tmp_path):
    """ITL_q(k) = (k − 1)·TPOT + ITL_q(1); TPOT and the rest unchanged (TensorRT-LLM stream_interval)."""
    one = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=16, prompt=1000, gen=500, engine="trt-llm")
    ten = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=16, prompt=1000, gen=500, engine="trt-llm",
                     stream_interval=10)
    assert ten["tpot_s"] == one["tpot_s"] and ten["ttft_p99_s"] == one["ttft_p99_s"]
    for key in ("itl_s", "itl_p50_s", "itl_p99_s"):
        assert ten[key] == pytest.approx(9 * one["tpot_s"] + one[key])
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--stream-interval", "10")
    assert code == 2 and "--stream-interval 10: applies under load" in err
    # a measured row states the server flag
    from costmodel.calibration.validate import validate

    head = ("id,source,hardware,devices,tp,model,format,kv_format,framework,batch,prompt_tokens,output_tokens,"
            "context_tokens,metric,value,notes,load,length_dist,stream_interval\n")
    f = tmp_path / "m.csv"
    f.write_text(head + "a,s,h100-sxm,1,1,llama-3.1-8b,fp8,,trt-llm,16,1000,500,0,itl_ms,100,,closed,fixed,10\n")
    got = validate([str(f)])["rows_detail"][0]["predicted"]
    assert got == pytest.approx(ten["itl_s"] * 1e3)
    f.write_text(head + "a,s,h100-sxm,1,1,llama-3.1-8b,fp8,,trt-llm,16,1000,500,0,itl_ms,100,,closed,fixed,0\n")
    with pytest.raises(Exception, match="stream_interval"):
        validate([str(f)])


@pytest.mark.parametrize("model, hw, fmt, tp, mtp", [("llama-3.1-8b", "h100", "bf16", 1, 0),
                                                     ("llama-70b", "h100", "w4a16", 2, 0),
                                                     ("deepseek-v3", "h200", "fp8", 8, 1)])
def test_replica_max_batch_is_evaluates(model, hw, fmt, tp, mtp):
    """perf_from_columns takes the largest batch from memory.max_batch directly: the value evaluate's
    batch -1 finds (MTP weights included)."""
    from costmodel.engine.evaluate import evaluate
    from costmodel.engine.serving import perf_from_columns
    from costmodel.estimate import columns_for, estimate

    one = estimate(model, hw, fmt, batch=1, prompt=1000, gen=2, tp=tp)
    cols = columns_for(one)
    got = perf_from_columns(*cols, tp, 1, parse_dist(None, 1000, "prompt"), parse_dist(None, 300, "gen"), mtp=mtp)
    want = evaluate(*cols, -1.0, 1000.0, 300.0, 0.0, float(tp), 1.0, 1.0, 1, 1, mtp)
    assert got.max_batch == max(1, int(np.asarray(want.metrics["max_batch"]).reshape(-1)[0])) > 1


def test_replicas_in_one_engine_call_are_each_replicas():
    """perfs_from_columns (the loaded rows of a calibration, one engine call) gives each configuration the
    ReplicaPerf perf_from_columns gives it alone, field for field and bit for bit."""
    import dataclasses

    from costmodel.engine.serving import ReplicaConfig, perf_from_columns, perfs_from_columns
    from costmodel.estimate import columns_for, estimate

    cases = [("llama-3.1-8b", "h100", "bf16", 1, 1, 1, 0.0), ("llama-70b", "h100", "w4a16", 2, 1, 1, 0.5),
             ("mixtral-8x7b", "mi300x", "fp8", 4, 1, 4, 0.0), ("deepseek-v3", "h200", "fp8", 8, 8, 8, 0.2)]
    cols = [columns_for(estimate(m, hw, fmt, batch=1, prompt=512, gen=2, tp=tp)) for m, hw, fmt, tp, *_ in cases]
    stacked = [{k: np.array([c[j][k] for c in cols], dtype=float) for k in cols[0][j]} for j in range(3)]
    dists = [(parse_dist("lognormal:1000,0.6", 1000, "prompt"), parse_dist(None, 300, "gen")),
             (parse_dist(None, 2000, "prompt"), parse_dist("uniform:0.5", 200, "gen"))]
    configs = [ReplicaConfig(k, tp, 1, *dists[k % 2], dp, ep, hit) for k, (_, _, _, tp, dp, ep, hit) in enumerate(cases)]
    got = perfs_from_columns(*stacked, configs)
    for k, (row, tp, pp, p, g, dp, ep, hit) in enumerate(configs):
        want = perf_from_columns(*cols[k], tp, pp, p, g, dp=dp, ep=ep, prefix_hit=hit)
        for field in dataclasses.fields(want):
            a, b = getattr(want, field.name), getattr(got[k], field.name)
            assert np.array_equal(np.asarray(a), np.asarray(b)), (cases[k][0], field.name)
    assert perfs_from_columns(*stacked, []) == []


_Q_EDGES = [0.0, 1.0, 0.5, 0.9, 0.99, 0.999, 5e-324, 1 - 2 ** -53, float("nan"), -0.1, 1.1, float("inf")]


@settings(max_examples=120, deadline=None)
@given(st.floats(min_value=1e-300, max_value=1e13) | st.sampled_from([float("inf"), float("nan"), 0.3, 7.0, 1e6]),
       st.lists(st.floats(0.0, 1.0) | st.sampled_from(_Q_EDGES), min_size=1, max_size=12))
def test_the_poisson_quantile_is_scipy_stats(mu, qs):
    """engine.poisson.ppf (summed where that settles it, else scipy.special's pdtr and pdtrik, as
    scipy.stats.poisson.ppf calls them) gives scipy.stats.poisson.ppf's values: the quantile, -1 at q = 0, inf at
    q = 1, NaN outside [0, 1] or for a NaN mean; a number for a number."""
    import warnings

    from scipy.special import pdtr
    from scipy.stats import poisson as scipy_poisson

    from costmodel.engine.poisson import ppf

    # the CDF at integers (where ⌈pdtrik⌉ is one too many) and the floats either side of it
    edges = [float(pdtr(j, mu)) for j in range(4)] + [float(pdtr(math.floor(mu), mu))] if mu < 1e15 else []
    qs = qs + edges + [math.nextafter(x, 2.0) for x in edges] + [math.nextafter(x, -1.0) for x in edges]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = scipy_poisson.ppf(np.array(qs), mu)
        got = ppf(np.array(qs), mu)
        np.testing.assert_array_equal(got, want)
        for q in qs[:3]:
            one = ppf(q, mu)
            assert type(one) is float and (one == scipy_poisson.ppf(q, mu) or math.isnan(one))


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-12.0, max_value=6.0), st.integers(0, 2**32 - 1))
def test_the_summed_poisson_quantile_is_the_least_k_or_none(log_mu, seed):
    """engine.poisson._summed, where it gives a quantile, gives scipy's (the least k with pdtr(k, μ) >= q) for
    uniform q, q spread over the tails, and q at and beside CDF values; and it gives one for the quantiles a
    serving estimate asks for except where one lies within about MARGIN of a CDF value (scipy decides there)."""
    from scipy.special import pdtr
    from scipy.stats import poisson as scipy_poisson

    from costmodel.engine import poisson
    from costmodel.engine.serving import _MIX_Q, QUANTILES

    mu = 10.0**log_mu
    rng = np.random.default_rng(seed)
    at = rng.integers(0, int(mu + 6 * math.sqrt(mu) + 6), 3)
    cdf = [float(pdtr(j, mu)) for j in at]
    qs = np.concatenate([rng.random(8), 10.0 ** rng.uniform(-250, 0, 4), 1 - 10.0 ** rng.uniform(-9, 0, 4), cdf,
                         [math.nextafter(x, 2.0) for x in cdf], [x * (1 + 4 * poisson.MARGIN) for x in cdf]])
    qs = qs[(qs > 0) & (qs < 1)]
    for q, want in zip(qs, scipy_poisson.ppf(qs, mu)):
        got = poisson._summed(np.array([q]), mu)
        assert got is None or got[0] == want, (mu, q)
    served = np.concatenate([QUANTILES, _MIX_Q])
    k = scipy_poisson.ppf(served, mu)
    # within twice MARGIN of scipy's CDF (the sums may sit on either side of MARGIN there): scipy may decide
    near = [np.abs(pdtr(j, mu) / served - 1) <= 2 * poisson.MARGIN for j in (k, k - 1)]
    if not (near[0] | near[1]).any():
        np.testing.assert_array_equal(poisson._summed(served, mu), k)


def test_the_summed_poisson_quantile_defers_where_it_is_not_certain():
    """scipy decides within MARGIN of a CDF value, below TINY, and for means over DIRECT_MU or not finite."""
    from scipy.special import pdtr

    from costmodel.engine import poisson

    on_edge = float(pdtr(3, 7.0))
    assert poisson._summed(np.array([0.5, on_edge]), 7.0) is None
    assert poisson._summed(np.array([0.5, on_edge * (1 + poisson.MARGIN / 2)]), 7.0) is None
    assert poisson._summed(np.array([0.5, on_edge * (1 + 2 * poisson.MARGIN)]), 7.0).tolist() == [7.0, 4.0]
    assert poisson._summed(np.array([0.5, 1e-290]), 7.0) is None
    assert poisson._summed(np.array([0.5]), 2e6) is None and poisson._summed(np.array([0.5]), math.inf) is None
    assert poisson._summed(np.array([0.5]), 1e6).tolist() == [1e6]  # the median of Poisson(n) is n (Choi 1994)


@pytest.mark.parametrize("load", ["concurrency=64", "request_rate=5.0"])
def test_a_serving_estimate_does_not_import_scipy(load):
    """A load's percentiles come from the summed Poisson CDF: scipy.special costs a cold serving estimate 0.35 s to
    import (scipy.stats 0.6 s more)."""
    import subprocess
    import sys

    code = (f"import sys, costmodel; costmodel.serve_load('llama-3.1-8b', 'h100', 'fp8', {load}); "
            "print(sorted(k for k in sys.modules if k == 'scipy' or k.startswith('scipy.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["[]"]


def test_loads_without_details_are_the_same_metrics():
    """serve_loads(details=False), as a load sweep and a serving curve call it: each load's metrics as with
    details, without the steady state's layout and the bands (`layout`, `interval`)."""
    from costmodel.serving import serve_loads

    for kw in (dict(concurrency=[1, 64, 4096]), dict(request_rate=[0.5, 1e6], max_concurrency=256)):
        kw.update(prompt=1000, gen=200, tp=8, dp=8, ep=8)
        full = serve_loads("deepseek-v3", "h200", "fp8", **kw)
        bare = serve_loads("deepseek-v3", "h200", "fp8", details=False, **kw)
        assert full[0]["layout"]["ep"] == 8 and full[0]["interval"]["ttft_s"]["low"] < full[0]["ttft_s"]
        for a, b in zip(full, bare):
            assert "layout" not in b and "interval" not in b
            assert json.dumps({k: v for k, v in a.items() if k not in ("layout", "interval")}, sort_keys=True,
                              default=str) == json.dumps(b, sort_keys=True, default=str)
    assert not full[1]["stable"] and "layout" not in full[1]  # over capacity: no steady state


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(1e-6, 10.0), min_size=2, max_size=9), st.booleans(),
       st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=8))
def test_one_counts_prefill_is_the_arrays(times, tabled, ks):
    """ReplicaPerf.prefill_of of a number (a Python float or float64: a split deployment's bisections) is the value
    of the same count as an array element, bit for bit, past the table's last batch, below its first, without a
    table, and at inf, NaN and signed zeros; a number."""
    grid = np.array([1, 3, 7, 24, 100, 250, 600, 1000, 3000], dtype=float)[:len(times)]  # not powers of two
    table = np.cumsum(times) if tabled else None
    p = ReplicaPerf(0.05, 0.06, 0.0, grid, 0.01 + 0.001 * grid, 100.0, 0.0, 256, t_prefill_batch=table)
    ks = ks + [0.0, -0.0, 1.0, 1.5, float(grid[-1]), float(grid[-1]) * 1.37 + 0.1, 12345.678, 1e300]
    with np.errstate(all="ignore"):
        arrays = p.prefill_of(np.array(ks))
    for k, want in zip(ks, arrays.tolist()):
        with np.errstate(all="ignore"):  # a float64 overflows as the array does (1e300 prompts)
            both = (p.prefill_of(k), p.prefill_of(np.float64(k)))
        for got in both:
            assert isinstance(got, float)
            same_bits = np.array(got).view(np.int64) == np.array(want).view(np.int64)
            assert same_bits or (math.isnan(got) and math.isnan(want))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.fractions(min_value=0, max_value=1, max_denominator=1000))
@example(40, Fraction(1, 1000)).via("the recursion stops early")
@example(512, Fraction(999, 1000)).via("a heavy load over many slots")
def test_erlang_c_is_its_closed_form(c, share):
    """engine.serving.erlang_c (the Erlang B recursion) against the Erlang C formula in exact rationals,
    P(wait) = (a^c/c! · c/(c − a)) / (Σ_{k<c} a^k/k! + a^c/c! · c/(c − a)) at a = share · c < c, to 1e-12; where
    it is under 1e-30, the recursion may stop early (its docstring): then under 1e-28. M/M/1's is ρ."""
    from costmodel.engine.serving import erlang_c

    a = Fraction(share) * c
    if a >= c:
        return
    term = [Fraction(1)]
    for k in range(1, c + 1):
        term.append(term[-1] * a / k)
    tail = term[c] * c / (c - a)
    want = tail / (sum(term[:c]) + tail)
    if want < Fraction(1, 10 ** 30):
        assert 0 <= erlang_c(c, float(a)) < 1e-28
    else:
        assert erlang_c(c, float(a)) == pytest.approx(float(want), rel=1e-12)
    assert erlang_c(1, 0.25) == pytest.approx(0.25, rel=1e-15)


def test_a_closed_loop_is_never_unbounded_and_keeps_littles_law():
    """C clients cannot queue without bound. With 150k-token prompts the means' fixed point lies past the prefill's
    throughput bound: the loop runs at the bound and E2E = C/λ (it printed 'unbounded' beside 0.08 requests/s, and 3
    clients served more than 4)."""
    from costmodel.serving import serve_load

    for c in (1, 2, 4, 8):
        d = serve_load("llama-3.1-8b", "h100", concurrency=c, prompt=150000, gen=100)
        assert d["stable"] and math.isfinite(d["ttft_s"]) and d["ttft_s"] < d["e2e_latency_s"]
        assert d["request_throughput_per_s"] * d["e2e_latency_s"] == pytest.approx(c, rel=1e-6)


def test_a_prefill_bound_closed_loop_finds_its_one_fixed_point():
    """8,000-token prompts on an H100: λ = C/E2E(λ) has one root, but a damped iteration of it oscillated (the map's
    slope about −5 there) and stopped where it was: 99 clients got 7.39 req/s and an E2E of 139 s (1,029 clients by
    Little), 92 and 106 clients 3.78 and 4.16 req/s, and more clients sometimes meant lower latency. By bisection:
    Little at every count, latency and throughput never falling as clients are added, and the root's own E2E."""
    from costmodel.engine import serving as E
    from costmodel.serving import serve_load

    last = None
    for c in range(84, 134, 3):
        d = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=c, prompt=8000, gen=100)
        lam, e2e = d["request_throughput_per_s"], d["e2e_latency_s"]
        assert d["stable"] and lam * e2e == pytest.approx(c, rel=1e-9)
        if last is not None:
            assert e2e >= last[0] and lam >= last[1] and d["ttft_s"] >= last[2] and d["tpot_s"] >= last[3]
        last = (e2e, lam, d["ttft_s"], d["tpot_s"])
    # the root by hand on the replica's own tables: E2E at λ, with no slot wait, is C/λ (6.28 req/s at 99 clients;
    # the event simulation, --simulate, gives 6.24)
    p = perf(t_p=0.136, step0=0.02, slope=0.00005, gen=100, cap=126)
    s = closed(p, 99, 126)
    st = E._steady(p, "closed", s.arrival_rps, 99.0, 126, 1 - 1 / 99)
    assert E._e2e_mean(p, st, 0.0) == pytest.approx(99 / s.arrival_rps, rel=1e-9)
