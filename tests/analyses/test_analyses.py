"""Economics: every formula against hand-computed and published numbers, invariants, bad input."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel import estimate
from costmodel.analyses import specdec as S
from costmodel.analyses import tts as T
from costmodel.analyses.cost_of_pass import CostOfPassError, cost_of_pass, parse_candidate
from costmodel.analyses.idealized import helm_coefficients, idealized
from costmodel.analyses.tts_report import report as T_report


@pytest.mark.parametrize("p,eps,fmax,n", [(0.1, 0.01, 1.0, 22), (0.3, 0.01, 1.0, 10), (0.2, 0.005, 0.8, 16),
                                          (0.5, 0.001, 1.0, 9)])
def test_saturation_points(p, eps, fmax, n):
    assert T.saturation_point(p, eps, fmax) == n
    assert T.marginal_gain(n, p, fmax) < eps <= T.marginal_gain(n - 1, p, fmax)


def test_saturation_zero_when_first_gain_is_small():
    assert T.saturation_point(0.005, 0.01) == 0


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 0.99), st.floats(0.05, 1.0), st.integers(0, 200))
def test_more_samples_never_lower_accuracy(p, fmax, n):
    assert T.accuracy(n + 1, p, fmax) >= T.accuracy(n, p, fmax)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 0.99), st.floats(1e-4, 0.1), st.floats(0.1, 0.9))
def test_saturation_grows_as_eps_shrinks(p, eps, shrink):
    assert T.saturation_point(p, eps * shrink) >= T.saturation_point(p, eps)


@pytest.mark.parametrize("r,f,bound", [(0.9, 0.1, 0.9890), (0.5, 0.2, 0.8333), (0.3, 0.25, 0.6316)])
def test_verifier_ceiling(r, f, bound):
    assert T.verifier_ceiling(r, f) == pytest.approx(bound, abs=5e-5)
    assert T.resample_accuracy(10_000, r, f) == pytest.approx(T.verifier_ceiling(r, f), abs=1e-6)


@pytest.mark.parametrize("penalty,k,u1", [(0.7, 3, 0.4821), (1.0, 2, 0.4490), (2.0, 1, 0.3388)])
def test_optimal_attempts_with_penalty(penalty, k, u1):
    # Stroebl et al. notebook: r_easy 0.87, r_hard 0.13, shares 0.58/0.42, soundness 0.75
    types = [(0.58, 0.87), (0.42, 0.13)]
    assert T.optimal_attempts(types, 0.25, penalty)[0] == k
    assert T.expected_utility(1, types, 0.25, penalty) == pytest.approx(u1, abs=5e-5)


@pytest.mark.parametrize("ratio,k", [(0.16, 257.75), (0.79, 63.37), (22, 15.77)])
def test_compute_matched_exchange(ratio, k):
    assert T.compute_matched_multiplier(14, ratio) == pytest.approx(k, abs=5e-3)


@pytest.mark.parametrize("args,needle", [(("tts", "--p", "1.5"), "--p 1.5"), (("tts", "--p", "0.3", "--eps", "-1"), "--eps"),
                                          (("tts", "--p", "0.3", "--penalty", "1"), "--penalty needs --false-positive")])
def test_tts_bad_input(run_cli, args, needle):
    code, _, err = run_cli(*args)
    assert code == 2 and needle in err


def test_tts_json(run_cli):
    code, out, _ = run_cli("tts", "--p", "0.1", "--eps", "0.01", "--false-positive", "0.05", "--json")
    d = json.loads(out)
    # verifier-aware: 0.1 * (0.9 * 0.95)^N < 0.01 first at N = ceil(14.7) = 15 (22 without the verifier)
    assert code == 0 and d["saturation_n"] == 15 and d["ceiling"] == pytest.approx(0.1 / (0.1 + 0.9 * 0.05))
    beta = 0.9 * 0.95
    assert d["accuracy_at_saturation"] == pytest.approx(0.1 * (1 - beta**15) / (1 - beta))
    assert len(d["curve"]) == 64
    code, out, _ = run_cli("tts", "--p", "0.1", "--eps", "0.01", "--json")
    d = json.loads(out)  # without a verifier: F(N) = 1 - 0.9^N, gain 0.1 * 0.9^N < 0.01 first at N = 22
    assert d["saturation_n"] == 22 and d["accuracy_at_saturation"] == pytest.approx(1 - 0.9**22)


def test_tts_prices_budgets_with_shared_prefill(run_cli):
    code, out, err = run_cli("tts", "--p", "0.3", "--model", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8",
                             "--n-max", "8", "--json")
    assert code == 0, err
    curve = json.loads(out)["curve"]
    usd = [r["usd"] for r in curve]
    assert all(b > a for a, b in zip(usd, usd[1:]))           # more samples cost more
    assert usd[7] < 8 * usd[0]                                 # but less than 8 separate queries


@pytest.mark.parametrize("alpha,gamma,c,s", [(0.8, 2, 0.1, 2.0333), (0.6, 3, 0.05, 1.8922), (0.75, 7, 0.02, 3.158)])
def test_speedup(alpha, gamma, c, s):
    assert S.speedup(alpha, gamma, c) == pytest.approx(s, abs=1e-3)  # published to 3-4 digits


def test_tokens_per_step():
    assert S.tokens_per_step(0.8, 4) == pytest.approx(3.3616)
    assert S.tokens_per_step(0.75, 7) == pytest.approx(3.5995, abs=5e-5)
    assert S.tokens_per_step(1.0, 4) == 5


@pytest.mark.parametrize("alpha,c,gamma,s", [(0.8, 0.05, 8, 3.092), (0.6, 0.1, 3, 1.674), (0.9, 0.01, 24, 7.486),
                                             (0.75, 0.02, 9, 3.199)])
def test_best_gamma(alpha, c, gamma, s):
    g, sp = S.best_gamma(alpha, c)
    assert g == gamma and sp == pytest.approx(s, abs=5e-4)


def test_specdec_with_engine(run_cli):
    code, out, err = run_cli("specdec", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hw", "h100",
                             "--fmt", "fp8", "--alpha", "0.8", "--gamma", "4", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert 0 < d["cost_ratio"] < 1 and d["tokens_per_step"] == pytest.approx(3.3616)
    assert d["speedup"] == pytest.approx(3.3616 / (4 * d["cost_ratio"] + 1))
    code, _, err = run_cli("specdec", "--target", "llama-3.1-8b", "--draft", "llama-3.2-1b", "--hw", "h100",
                           "--alpha", "1.5")
    assert code == 2 and "--alpha 1.5" in err


@pytest.mark.parametrize("p,o,runtime", [(1000, 50, 4.28443), (2500, 1, 0.77734), (100, 0, 0.07344), (1, 1, 0.084)])
def test_helm_davinci_reproduced(p, o, runtime):
    assert helm_coefficients("davinci").runtime(p, o) == pytest.approx(runtime, abs=5e-6)


def test_helm_cli_and_names(run_cli):
    code, out, _ = run_cli("idealized", "davinci", "--helm", "--prompt", "1000", "--gen", "50", "--json")
    d = json.loads(out)
    assert code == 0 and round(d["runtime_s"], 3) == 4.284 and d["model"] == "openai/davinci"
    assert {"runtime_s", "per_output_token_s", "prompt_s", "accelerator_seconds", "usd", "joules"} <= set(d)
    assert helm_coefficients("openai/davinci").per_output_token_s == 0.081
    code, _, err = run_cli("idealized", "davinchi", "--helm")
    assert code == 2 and "did you mean 'davinci'" in err


def test_engine_idealized_table():
    r = idealized("llama-3.1-8b", prompt=1000, gen=50, engine="ideal").to_dict()
    assert r["devices"] == 1 and r["per_output_token_s"] > 0
    table = [row["prompt_s"] for row in r["table"]]
    assert table[-1] > table[0]
    assert r["runtime_s"] == pytest.approx(r["prompt_s"] + 49 * r["per_output_token_s"])
    assert r["accelerator_seconds"] == pytest.approx(r["runtime_s"])


def test_cost_of_pass_worked_example(tmp_path):
    acc = tmp_path / "acc.csv"
    acc.write_text("model,format,task,value,source_id\nmodel-a,bf16,aime2024,0.6,hand\nmodel-b,bf16,aime2024,0.0,hand\n")
    d = cost_of_pass("aime2024", ["model-a@api:3/15", "model-b@api:3/15"], 500, 1500, accuracy_file=str(acc))
    a, b = d["candidates"]
    assert a["cost_per_attempt_usd"] == pytest.approx(0.024) and a["cost_of_pass_usd"] == pytest.approx(0.040)
    assert b["cost_of_pass_usd"] == np.inf and not b["on_frontier"]
    assert d["frontier_cost_of_pass_usd"] == pytest.approx(0.040) and a["on_frontier"]
    only_b = cost_of_pass("aime2024", ["model-b@api:3/15"], 500, 1500, accuracy_file=str(acc))
    assert only_b["frontier_cost_of_pass_usd"] == 20.0 and only_b["frontier_is_human_expert"]


def test_cost_of_pass_methods(tmp_path):
    acc = tmp_path / "acc.csv"
    acc.write_text("model,format,task,value\nm,bf16,gsm8k,0.6\n")
    best = cost_of_pass("gsm8k", ["m@api:0/1"], 0, 1000, "best-of@4", str(acc))["candidates"][0]
    maj = cost_of_pass("gsm8k", ["m@api:0/1"], 0, 1000, "majority@3", str(acc))["candidates"][0]
    assert best["accuracy"] == pytest.approx(1 - 0.4**4) and best["cost_per_attempt_usd"] == pytest.approx(4e-3)
    assert maj["accuracy"] == pytest.approx(0.6**3 + 3 * 0.6**2 * 0.4)


def test_engine_priced_candidates_from_the_quality_table():
    d = cost_of_pass("gsm8k", ["llama-3.1-8b@h100:fp8", "llama-3.1-70b@h100:fp8"], 500, 300)
    small, big = d["candidates"]
    assert small["accuracy"] == pytest.approx(0.82) and small["priced_by"] == "engine"
    assert big["cost_per_attempt_usd"] > small["cost_per_attempt_usd"]
    assert sum(r["on_frontier"] for r in d["candidates"]) == 1


@pytest.mark.parametrize("args,needle", [
    (("--task", "gsm9k", "--candidates", "llama-3.1-8b@h100:fp8"), "did you mean 'gsm8k'"),
    (("--task", "gsm8k", "--candidates", "m@api:-1/2"), "prices must be >= 0"),
    (("--task", "gsm8k", "--candidates", "nonsense"), "expected MODEL@HW:FMT"),
    (("--task", "gsm8k", "--candidates", "llama-3.1-8b@h100:fp8", "--method", "vote@3"), "--method vote@3"),
])
def test_cost_of_pass_bad_input(run_cli, args, needle):
    code, _, err = run_cli("cost-of-pass", *args)
    assert code == 2 and needle in err, err


def test_cost_of_pass_cli_json(run_cli):
    code, out, err = run_cli("cost-of-pass", "--task", "gsm8k", "--candidates",
                             "llama-3.1-8b@h100:fp8,llama-3.1-8b@h100:w4a16", "--tokens-in", "500", "--tokens-out", "300", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert {"candidate", "cost_per_attempt_usd", "accuracy", "cost_of_pass_usd", "on_frontier"} <= set(rows[0])


def test_parse_candidate():
    c = parse_candidate("llama-3.1-8b@h100:fp8")
    assert (c.model, c.hardware, c.format) == ("llama-3.1-8b", "h100", "fp8")
    with pytest.raises(CostOfPassError):
        parse_candidate("x@api:1")


def test_kv_prediction_cuts_ttft_of_long_prompts():
    base = estimate("llama-3.1-8b", "h100", "fp8", batch=1, prompt=8192, gen=64)
    kvp = estimate("llama-3.1-8b", "h100", "fp8", batch=1, prompt=8192, gen=64, kv_predict="llama-3.2-1b")
    assert kvp.metric("ttft_s") < base.metric("ttft_s") / 2
    assert kvp.metric("tpot_s") == pytest.approx(base.metric("tpot_s"))
    assert kvp.memory_dict()["weights_bytes"] > base.memory_dict()["weights_bytes"]


def test_output_reduction_scales_generated_tokens():
    e = estimate("llama-3.1-8b", "h100", "fp8", gen=1000, output_reduction=0.4)
    assert e.workload.gen == 600


def test_energy_between_idle_and_tdp_and_carbon():
    e = estimate("llama-3.1-8b", "h100", "fp8", batch=32, grid_gco2_per_kwh=400.0)
    d = e.to_dict()
    assert 0.2 * 700 <= d["average_power_w"] <= 700
    assert d["energy_j_per_token"] == pytest.approx(d["average_power_w"] * d["e2e_latency_s"] / (32 * 128))
    assert d["gco2_per_million_tokens"] == pytest.approx(d["kwh_per_million_tokens"] * 400)


def test_verifier_curve_never_exceeds_its_ceiling_and_sets_n_star():
    d = T_report(p=0.3, eps=0.01, false_positive=0.05, n_max=200)
    assert max(r["accuracy"] for r in d["curve"]) <= d["ceiling"] + 1e-12
    # resample-until-accepted gains r * beta^N, beta = 0.7 * 0.95: first N below 0.01 is ceil(8.34) = 9
    assert d["saturation_n"] == 9
    beta = 0.7 * 0.95
    assert d["accuracy_at_saturation"] == pytest.approx(0.3 * (1 - beta**9) / (1 - beta))


def test_tts_prices_budgets_as_cost_of_pass_does():
    """N samples cost one shared prefill + N decode shares at the same serving batch in both analyses."""
    d = T_report(p=0.5, eps=0.01, model="llama-3.1-8b", hw="h100", fmt="fp8", prompt=500, gen=1000, n_max=8)
    cp = cost_of_pass("gsm8k", ["llama-3.1-8b@h100:fp8"], tokens_in=500, tokens_out=1000, method="best-of@4")
    assert d["curve"][3]["usd"] == pytest.approx(cp["candidates"][0]["cost_per_attempt_usd"], rel=1e-9)
    assert d["pricing_basis"] == cp["pricing_basis"]


def test_recovery_is_against_bf16_of_the_same_source(tmp_path):
    from costmodel.spec.quality import accuracy, load

    f = tmp_path / "acc.csv"
    f.write_text("model,format,task,value,source_id\n"
                 "m,bf16,t,0.80,A\nm,fp8,t,0.78,A\nm,bf16,t,0.60,B\nm,w4a16,t,0.70,C\n")
    load.cache_clear()
    a = accuracy("m", "fp8", "t", str(f))
    assert a.recovery == pytest.approx(0.78 / 0.80) and "same source (A)" in a.recovery_basis
    w = accuracy("m", "w4a16", "t", str(f))  # only source C has w4a16 and it reports no bf16
    assert w.recovery is None and w.recovery_basis.startswith("not computed")


def test_formats_without_accuracy_are_reported_not_dropped():
    from costmodel import sweep
    from costmodel.sweeps.pareto import excluded

    r = sweep(models=["llama-3.1-8b"], hw=["h100"], fmt=["bf16", "fp8", "nvfp4"], task="mmlu")
    out = excluded(r, "min:usd_per_million_tokens,max:accuracy")
    assert [(x["format"], x["configurations"]) for x in out] == [("nvfp4", 1)]
    assert "no accuracy" in out[0]["reason"]


def test_majority_vote_of_many_samples(monkeypatch, run_cli):
    # comb(K, K/2) overflows a float past K = 1030: the terms come from their logarithms there (it raised
    # OverflowError at majority@1100 and took 15 s at majority@10^6, which is now refused)
    import costmodel.analyses.tts as T

    exact = [T.majority_accuracy(1000, p) for p in (0.3, 0.5, 0.51, 0.9)]
    monkeypatch.setattr(T, "EXACT_K", 0)
    assert [T.majority_accuracy(1000, p) for p in (0.3, 0.5, 0.51, 0.9)] == pytest.approx(exact, rel=1e-11)
    monkeypatch.undo()
    assert T.majority_accuracy(2000, 0.5) == pytest.approx(0.5, abs=1e-9)  # symmetry: half the votes, half the ties
    assert T.majority_accuracy(2001, 0.5) == pytest.approx(0.5, abs=1e-9)
    assert T.majority_accuracy(10_000, 0.51) > T.majority_accuracy(2000, 0.51) > 0.8  # more votes, nearer 1
    code, out, _ = run_cli("cost-of-pass", "--task", "mmlu", "--candidates", "llama-3.1-8b@h100:fp8", "--method",
                           "majority@2000")
    assert code == 0 and "nan" not in out.lower()
    code, _, err = run_cli("cost-of-pass", "--task", "mmlu", "--candidates", "llama-3.1-8b@h100:fp8", "--method",
                           "majority@20000")
    assert code == 2 and "K from 1 to 10,000" in err
