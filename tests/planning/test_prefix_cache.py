"""Prefix caching (--prefix-hit): cached prompt tokens are read as context, not prefilled."""
import numpy as np
import pytest

from costmodel import estimate
from costmodel.errors import WorkloadError
from costmodel.planning.whatif import whatif
from costmodel.serving import serve_load


def test_cached_tokens_become_context():
    kw = dict(fmt="fp8", batch=4, gen=200)
    hit = estimate("llama-3.1-8b", "h100", prompt=4000, prefix_hit=0.75, **kw)
    # 3000 cached tokens: the same as prefilling 1000 new ones after a 3000-token context
    same = estimate("llama-3.1-8b", "h100", prompt=1000, context=3000, **kw)
    assert hit.metric("ttft_s") == pytest.approx(same.metric("ttft_s"), rel=1e-12)
    assert hit.metric("tpot_s") == pytest.approx(same.metric("tpot_s"), rel=1e-12)
    ttfts = [estimate("llama-3.1-8b", "h100", prompt=4000, prefix_hit=h, **kw).metric("ttft_s")
             for h in (0.0, 0.5, 0.9)]
    assert ttfts[0] > ttfts[1] > ttfts[2]


def test_under_load_and_in_plans():
    cold = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=32, prompt=4000, gen=200)
    warm = serve_load("llama-3.1-8b", "h100", "fp8", concurrency=32, prompt=4000, gen=200, prefix_hit=0.9)
    assert warm["ttft_s"] < cold["ttft_s"] and warm["throughput_tokens_per_s"] > cold["throughput_tokens_per_s"]
    rows = whatif(dict(model="llama-3.1-70b", qps=40, prompt=4000, gen=300, slo_ttft=1.0, slo_tpot=0.05,
                       candidates="b200", fmt="fp8"), "prefix-hit=0,0.9")
    cost = [r["best"]["usd_per_hour"] for r in rows]
    assert cost[1] < cost[0]  # fewer prompt tokens to prefill: fewer devices for the same SLOs


@pytest.mark.parametrize("args,needle", [
    (["estimate", "llama-3.1-8b", "--hw", "h100", "--prefix-hit", "1"], "--prefix-hit 1.0: expected the cached share"),
    (["estimate", "llama-3.1-8b", "--hw", "h100", "--prefix-hit", "nan"], "--prefix-hit nan"),
    (["whatif", "llama-3.1-8b", "--vary", "prefix-hit=0,-0.5", "--qps", "5", "--prompt", "100", "--gen", "50",
      "--slo-ttft", "1", "--candidates", "h100"], "--vary prefix-hit=-0.5: expected fractions in [0, 1)"),
])
def test_bad_prefix_hit(run_cli, args, needle):
    code, _, err = run_cli(*args)
    assert code == 2 and needle in err and "Traceback" not in err


def test_prefix_hit_edges_and_what_counts_the_whole_prompt():
    kw = dict(fmt="fp8", batch=1, gen=100)
    cold = estimate("llama-3.1-8b", "h100", prompt=1000, **kw)
    warm = estimate("llama-3.1-8b", "h100", prompt=1000, prefix_hit=0.9, **kw)
    # $ per million prompt + output tokens counts the cached prompt tokens too: cheaper, not dearer
    assert warm.metric("usd_per_million_total_tokens") < cold.metric("usd_per_million_total_tokens")
    assert warm.metric("prefill_tokens_per_s") > cold.metric("prefill_tokens_per_s")
    # a nearly fully cached short prompt still prefills one token: finite TTFT and rate
    tiny = estimate("llama-3.1-8b", "h100", prompt=2, prefix_hit=0.9, **kw)
    assert tiny.metric("ttft_s") > 0 and np.isfinite(tiny.metric("prefill_tokens_per_s"))


@pytest.mark.parametrize("args,needle", [
    (["estimate", "bert-base", "--hw", "h100", "--prefix-hit", "0.5"], "bert-base is an encoder (no prefix cache)"),
    (["estimate", "llama-3.1-8b", "--hw", "h100", "--prefix-hit", "0.5", "--kv-predict", "llama-3.2-1b"],
     "not modelled together"),
    (["plan", "llama-3.1-8b", "--qps", "5", "--prompt", "100", "--gen", "50", "--slo-ttft", "1", "--candidates",
      "h100", "--layouts", ","], "--layouts ',': an element of the comma-separated list is empty"),
])
def test_refused_combinations(run_cli, args, needle):
    code, _, err = run_cli(*args)
    assert code == 2 and needle in err


def test_conversation_closed_form():
    """8 turns of 200 new + 300 answer tokens: turn k resends (k − 1)·500 tokens of history. Prompts are evenly
    spaced from 200 to 3,700 (mean 1,950); 500·8·7/2 = 14,000 of the 15,600 prompt tokens are cached."""
    from costmodel.engine.serving import conversation

    dist, hit = conversation(200, 300, 8)
    assert (dist.lo, dist.hi, dist.mean) == (200.0, 3700.0, 1950.0)
    assert hit == pytest.approx(14000 / 15600)
    assert conversation(200, 300, 1)[1] == 0.0
    for bad in (0, 1.5, True, 20000):
        with pytest.raises(WorkloadError, match="--turns"):
            conversation(200, 300, bad)
    with pytest.raises(WorkloadError, match="--prefix-hit: --turns 4"):
        conversation(200, 300, 4, prefix_hit=0.5)


def test_turns_are_the_uniform_prompts_with_their_hit():
    from costmodel.serving import serve_load

    hit = 14000 / 15600
    a = serve_load("llama-3.1-8b", "h100", "fp8", request_rate=4, prompt=200, gen=300, turns=8)
    b = serve_load("llama-3.1-8b", "h100", "fp8", request_rate=4, prompt=3700, gen=300, prompt_dist=f"uniform:{200 / 3700!r}",
                   prefix_hit=hit)
    for key in ("ttft_s", "ttft_p99_s", "tpot_s", "e2e_latency_s"):
        assert a[key] == pytest.approx(b[key], rel=1e-9)
    from costmodel.planning.plan import request

    r = request("llama-3.1-8b", qps=4, prompt=200, gen=300, slo_ttft=1, candidates="h100", turns=8)
    assert r.prefix_hit == pytest.approx(hit) and r.prompt.mean == 1950.0
