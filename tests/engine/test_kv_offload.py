"""KV offload for the prefix cache (engine/kv_offload.py, serve_load --prefix-tokens / --kv-offload): hand-computed
shares and reload times, identities with the plain prefix-hit model, monotonicity, and bad input."""
import pytest

from costmodel.engine.kv_offload import Tier, effective, parse_offload, shares
from costmodel.errors import WorkloadError
from costmodel.serving import serve_load


def test_shares_hand_computed():
    tier = Tier("cpu", 200e9, 64e9, "")
    # 1e6 reused tokens at 1e5 bytes each = 100 GB per device: 40 GB of free pool holds 40%, the tier the rest
    assert shares(1e6, 1e5, 40e9, tier) == pytest.approx((0.4, 0.6))
    assert shares(1e6, 1e5, 40e9, Tier("cpu", 30e9, 64e9, "")) == pytest.approx((0.4, 0.3))
    assert shares(1e6, 1e5, 40e9, None) == pytest.approx((0.4, 0.0))
    assert shares(1e5, 1e5, 40e9, tier) == (1.0, 0.0)  # 10 GB fits the pool
    # a prompt reuses 90%; 60% of that comes from the tier: 0.9 x 0.6 x 1e5 B / 64 GB/s per prompt token
    hit, reload = effective(0.9, 0.4, 0.6, 1e5, tier)
    assert hit == pytest.approx(0.9) and reload == pytest.approx(0.9 * 0.6 * 1e5 / 64e9)
    assert effective(0.9, 0.4, 0.0, 1e5, None) == pytest.approx((0.36, 0.0))


def test_parse_offload():
    h100_link = 128e9  # the H100 spec's PCIe Gen5 x16, both directions
    t = parse_offload("cpu:512", h100_link, 2)
    assert t.bytes_per_device == pytest.approx(256 * 2**30) and t.bandwidth == pytest.approx(64e9)
    assert parse_offload("cpu:512@200", h100_link, 1).bandwidth == pytest.approx(64e9)  # the link caps it
    assert parse_offload("nvme:4000@7", h100_link, 8).bandwidth == pytest.approx(7e9)
    assert parse_offload("none", h100_link, 1) is None and parse_offload(None, None, 1) is None
    for bad, needle in (("cpu", "expected none"), ("gpu:10", "expected none"), ("cpu:-1", "expected none"),
                        ("nvme:100", "read rate"), ("cpu:nan", "expected none")):
        with pytest.raises(WorkloadError, match=needle):
            parse_offload(bad, h100_link, 1)
    with pytest.raises(WorkloadError, match="states no host link"):
        parse_offload("cpu:100", None, 1)


BASE = dict(request_rate=8, prompt=8000, gen=200, tp=1)


@pytest.fixture(scope="module")
def runs():
    """Llama-3.1-8B FP8 on one H100 at 8 req/s of 8,000-token prompts, 75% of each reused."""
    run = lambda **kw: serve_load("llama-3.1-8b", "h100", "fp8", prefix_hit=0.75, **BASE, **kw)  # noqa: E731
    return {"plain": run(), "fits": run(prefix_tokens=1e5), "spills": run(prefix_tokens=5e6),
            "cpu": run(prefix_tokens=5e6, kv_offload="cpu:512"), "slow": run(prefix_tokens=5e6, kv_offload="cpu:512@4")}


def test_a_set_that_fits_the_pool_is_the_plain_prefix_model(runs):
    for key in ("ttft_s", "ttft_p90_s", "tpot_s", "e2e_latency_s"):
        assert runs["fits"][key] == pytest.approx(runs["plain"][key], rel=1e-12)
    assert runs["fits"]["prefix_cache"]["hbm_share"] == 1.0


def test_offload_serves_what_hbm_cannot(runs):
    # 5e6 reused tokens x 65,536 bytes (32 layers x 8 KV heads x 128 x K,V x 1 byte FP8) = 328 GB: most spills
    c = runs["cpu"]["prefix_cache"]
    assert c["kv_bytes_per_token_per_device"] == 65536
    assert c["hbm_share"] + c["tier_share"] == pytest.approx(1.0) and c["miss_share"] == pytest.approx(0.0)
    assert c["reload_s_per_prompt"] == pytest.approx(8000 * 0.75 * c["tier_share"] * 65536 / 64e9, rel=1e-9)
    # without the tier the misses are prefilled again: 8 req/s of ~6,400 new tokens overload the H100
    assert not runs["spills"]["stable"] and runs["cpu"]["stable"]
    assert runs["spills"]["prefix_cache"]["miss_share"] > 0.7
    # reloading costs time the plain model does not have, and a slower link costs more
    assert runs["plain"]["ttft_s"] < runs["cpu"]["ttft_s"] < runs["slow"]["ttft_s"]


def test_cli_offload_line_and_errors(run_cli):
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--request-rate", "8",
                             "--prompt", "8000", "--gen", "200", "--prefix-hit", "0.75", "--prefix-tokens", "5e6",
                             "--kv-offload", "cpu:512")
    assert code == 0 and "offloaded (cpu 512 GiB per replica over the host link, 64 GB/s per device" in " ".join(out.split())
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "8", "--prefix-tokens", "1e6")
    assert code == 2 and "--prefix-hit H" in err
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--prefix-hit", "0.5", "--prefix-tokens", "1e6")
    assert code == 2 and "apply under load" in err
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "8", "--prefix-hit", "0.5",
                           "--prefix-tokens", "inf")
    assert code == 2 and "--prefix-tokens inf" in err


def test_interpolated_prefill_tables_match_the_engine():
    """PrefixCache interpolates the prefill over the served share h; at h between its grid points it stays
    within 0.1% of the engine evaluated at h itself."""
    from costmodel.engine.kv_offload import PrefixCache
    from costmodel.engine.serving import Dist, perf_from_columns
    from costmodel.estimate import columns_for, estimate

    one = estimate("llama-3.1-70b", "h100", "fp8", batch=1, prompt=8000, gen=2, tp=4)
    p, g = Dist(8000.0, 0.5), Dist(200.0)
    cache = PrefixCache(columns_for(one), 4, 1, 1, 1, 0, 0.875, p, g, 0.9, 0.8, None)
    perf, held = cache.perf(cache.pool * 0.3, 4e6)  # a set four times what the pool holds
    h = 0.8 * held[0]
    exact = perf_from_columns(*columns_for(one), 4, 1, p, g, 0.9, prefix_hit=h)
    assert 0 < h < 0.8
    assert perf.t_prefill == pytest.approx(exact.t_prefill, rel=1e-3)
    assert perf.t_prefill_q == pytest.approx(exact.t_prefill_q, rel=1e-3)
    assert perf.t_prefill_batch == pytest.approx(exact.t_prefill_batch, rel=1e-3)
    assert list(perf.t_step) == list(exact.t_step)


PLAN = dict(qps=16, prompt=8000, gen=200, slo_ttft=2.0, candidates="h100", fmt="fp8", prefix_hit=0.75,
            prefix_tokens=2e7)


def test_plan_offload_against_more_gpus():
    """20 million reused tokens (1.3 TB of FP8 KV): three H100 split the set and still prefill most of it again;
    with 512 GiB of host memory per replica, two suffice."""
    from costmodel.planning.plan import plan

    none = plan("llama-3.1-8b", tp="1", **PLAN)["deployments"][0]
    cpu = plan("llama-3.1-8b", tp="1", kv_offload="cpu:512", **PLAN)["deployments"][0]
    assert (none["devices"], cpu["devices"]) == (3, 2)
    assert none["prefix_cache"]["miss_share"] > 0.5 and cpu["prefix_cache"]["miss_share"] < none["prefix_cache"]["miss_share"]
    assert cpu["prefix_cache"]["set_tokens"] == pytest.approx(2e7 / 2)  # a prefix-aware router splits the set
    # the chosen deployment is serve_load's at the same layout: 1/r of the set per replica
    got = serve_load("llama-3.1-8b", "h100", "fp8", request_rate=16, prompt=8000, gen=200, tp=1, devices=2,
                     concurrency=cpu["batch_cap"] * 2, prefix_hit=0.75, prefix_tokens=1e7, kv_offload="cpu:512")
    assert got["ttft_p90_s"] == pytest.approx(cpu["ttft_s"], rel=1e-9)
    assert got["tpot_s"] == pytest.approx(cpu["tpot_s"], rel=1e-9)


def test_plan_cache_input_errors():
    from costmodel.planning.plan import plan, request

    kw = {k: v for k, v in PLAN.items() if k not in ("prefix_hit", "prefix_tokens")}
    with pytest.raises(WorkloadError, match="--prefix-hit H"):
        request("llama-3.1-8b", prefix_tokens=1e6, **kw)
    with pytest.raises(WorkloadError, match="--prefix-tokens N"):
        request("llama-3.1-8b", kv_offload="cpu:64", **kw)
    with pytest.raises(WorkloadError, match="expected none"):
        request("llama-3.1-8b", prefix_hit=0.5, prefix_tokens=1e6, kv_offload="ram:64", **kw)
    # a device whose spec states no host link: that candidate is rejected, with the reason
    r = plan("llama-3.1-8b", tp="1", kv_offload="cpu:512", **{**PLAN, "candidates": "b200,h100"})
    assert any(x["candidate"].startswith("b200") and "host link" in x["reason"] for x in r["rejected"])
    assert r["deployments"] and all(d["hardware"] == "h100-sxm" for d in r["deployments"])


def test_the_cache_and_the_running_batch_settle_together():
    """The cache's room is the pool less the running batch's KV, and the batch grows as the cache shrinks:
    the steady state is their fixed point (checked), or unstable when the feedback runs away (8 req/s, where
    one or two passes would have called it stable)."""
    from costmodel.engine.kv_offload import shares
    from costmodel.estimate import estimate

    kw = dict(prompt=8000, gen=200, prefix_hit=0.75, prefix_tokens=1e6, tp=1)
    assert not serve_load("llama-3.1-8b", "h100", "fp8", request_rate=8, **kw)["stable"]
    d = serve_load("llama-3.1-8b", "h100", "fp8", request_rate=4, **kw)
    c = d["prefix_cache"]
    from costmodel.engine.serving import Dist
    from costmodel.serving import prefix_cache

    one = estimate("llama-3.1-8b", "h100", "fp8", batch=1, prompt=8000, gen=2, tp=1)
    cache = prefix_cache(one, Dist(8000.0), Dist(200.0), 0.75, 1e6, None, 1, 0.99)
    free = cache.free_after(d["running_per_replica"])
    assert shares(1e6, cache.kv_token, free, None)[0] == pytest.approx(c["hbm_share"], rel=1e-6)
