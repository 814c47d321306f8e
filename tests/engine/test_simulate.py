"""The scheduler simulation (engine/simulate.py): closed forms where the schedule is deterministic,
agreement with the analytical model where its assumptions hold, and what benchmarks measure."""
import json
import math

import numpy as np
import pytest

from costmodel.engine.serving import Dist, ReplicaPerf, poisson
from costmodel.engine.simulate import simulate, summarize, weighted_quantile
from costmodel.errors import WorkloadError
from costmodel.serving import serve_load


def perf(t_p=0.05, step0=0.01, slope=0.0001, gen=200, cap=256, overhead=0.0):
    grid = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256], dtype=float)
    return ReplicaPerf(t_p, t_p, 0.0, grid, step0 + slope * grid, float(gen), 0.0, cap, overhead)


def test_one_client_is_sequential():
    """C = 1: TTFT = overhead + t_p, TPOT = t_d(1), E2E = TTFT + (G − 1)·t_d(1), rate = 1/E2E."""
    p = perf(overhead=0.1)
    s = simulate(p, Dist(1000.0), Dist(200.0), clients=1, requests=20, budget=8192)
    assert np.allclose(s["ttft"], 0.1 + 0.05)
    assert np.allclose(s["tpot"], p.step(1))
    e2e = 0.1 + 0.05 + 199 * p.step(1)
    assert np.allclose(s["e2e"], e2e)
    assert s["request_rate"] == pytest.approx(1 / e2e, rel=1e-9)


def test_first_wave_prefills_one_prompt_per_step_under_a_budget_of_one_prompt():
    """N = C = 8 at once, budget = one prompt, negligible decode: the k-th first token after k·t_p."""
    p = ReplicaPerf(0.05, 0.05, 0.0, np.array([1.0, 256.0]), np.array([1e-12, 1e-12]), 100.0, 0.0, 256)
    s = simulate(p, Dist(1000.0), Dist(100.0), clients=8, requests=8, budget=1000)
    assert np.allclose(np.sort(s["ttft"]), 0.05 * np.arange(1, 9), rtol=1e-9)


def test_light_poisson_load_agrees_with_the_analytical_model():
    p = perf()
    lam = 2.0
    s = summarize(simulate(p, Dist(1000.0), Dist(200.0), rate=lam, requests=4000, budget=8192, seed=1))
    a = poisson(p, lam, 256)
    assert s["request_throughput_per_s"] == pytest.approx(lam, rel=0.05)
    assert s["tpot_s"] == pytest.approx(a.tpot["mean"], rel=0.05)
    assert s["ttft_p50_s"] == pytest.approx(a.ttft[0.5], rel=0.25)


def test_weighted_quantile():
    v, w = np.array([3.0, 1.0, 2.0]), np.array([1.0, 8.0, 1.0])
    assert weighted_quantile(v, w, 0.5) == 1.0 and weighted_quantile(v, w, 0.95) == 3.0


def test_serve_load_simulate(run_cli):
    a = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=16, prompt=1000, gen=300, prompt_dist="uniform:0.5",
                   gen_dist="uniform:0.5")
    s = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=16, prompt=1000, gen=300, prompt_dist="uniform:0.5",
                   gen_dist="uniform:0.5", simulate=True)
    assert s["simulated"] and not a["simulated"]
    assert s["tpot_s"] == pytest.approx(a["tpot_s"], rel=0.1)  # the steady state, first wave left out
    assert s["request_throughput_per_s"] == pytest.approx(a["request_throughput_per_s"], rel=0.1)
    for key, iv in s["interval"].items():
        assert iv["low"] <= s[key] <= iv["high"]
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "8", "--simulate")
    assert code == 0 and "scheduler simulation" in out
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--simulate")
    assert code == 2 and "--simulate: applies under load" in err


@pytest.mark.parametrize("load, many", [(("--concurrency", "16", "--num-prompts", "1000000000"), "1,000,000,000"),
                                        (("--concurrency", "1e6"), "20,000,000")])
def test_a_simulation_too_large_to_run_is_a_clear_error(run_cli, load, many):
    """More than SIM_REQUESTS requests to simulate (10^9 took 23 GB before it was killed; 10^7 ran 40 s): exit code 2
    naming the options and the count, before anything runs."""
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", *load, "--simulate")
    assert code == 2 and f"makes {many} requests to simulate; at most 1,000,000" in err and load[0] in err, err
    from costmodel.serving import SIM_REQUESTS, _simulable

    _simulable(SIM_REQUESTS, "--request-rate 16667")  # the most it runs
    with pytest.raises(WorkloadError, match="1,000,001 requests"):
        _simulable(SIM_REQUESTS + 1, "--request-rate 16667")


def test_lengths_lognormal_up_to_sigma_4_simulate_and_past_it_are_refused(run_cli):
    """A lognormal's sigma is at most 4 (e^sigma^2 overflowed past 26.6, a simulation found no request to summarize
    past 7) and its mean at most --prompt's limit; sigma 4 runs, NaN-free."""
    from costmodel.engine.serving import MAX_SIGMA, parse_dist

    assert parse_dist(f"lognormal:512,{MAX_SIGMA}", 512, "prompt").cv2 == pytest.approx(math.expm1(16.0))
    for bad in ("lognormal:512,4.01", "lognormal:512,100", "lognormal:1e30,1", "lognormal:0,1"):
        with pytest.raises(WorkloadError, match="0 <= SIGMA <= 4"):
            parse_dist(bad, 512, "prompt")
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "16", "--simulate",
                             "--gen-dist", "lognormal:128,4", "--json")
    assert code == 0 and "NaN" not in out and json.loads(out)["simulated"], err
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--concurrency", "16", "--prompt-dist",
                           "lognormal:512,30")
    assert code == 2 and "--prompt-dist lognormal:512,30" in err
