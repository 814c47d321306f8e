"""plan --disagg: split prefill/decode deployments searched beside aggregated ones, priced, explained, and
agreeing with serve_disagg for the same layout."""
import pytest

from costmodel.errors import WorkloadError
from costmodel.planning.plan import PlanError, plan, request
from costmodel.serving_split import serve_disagg


@pytest.fixture(scope="module")
def busy():
    """Llama-3.1-70B at 40 req/s on H100 (TTFT P90 <= 1 s, TPOT <= 50 ms): the README's planning session."""
    return plan("llama-3.1-70b", qps=40, prompt=1000, gen=300, slo_ttft=1.0, slo_tpot=0.05, candidates="h100",
                fmt="fp8", tp="1,2,4", disagg="auto")


def test_split_wins_under_load_and_says_why(busy):
    best = busy["deployments"][0]
    agg = min((d for d in busy["deployments"] if d["mode"] == "aggregated"), key=lambda d: d["usd_per_hour"])
    assert best["mode"] == "split" and best["usd_per_hour"] < agg["usd_per_hour"]
    assert busy["disagg_why"].startswith("split: ")
    assert f"{best['usd_per_hour'] / agg['usd_per_hour']:.2f}x" in busy["disagg_why"]
    # the decode steps carry no prefills: the split's TPOT is below the aggregated one at a larger batch
    assert best["tpot_s"] < agg["tpot_s"] and best["ttft_s"] <= 1.0 and best["tpot_s"] <= 0.05
    # priced as its devices: x prefill workers of tp_p and y decode workers of tp_d at $/device-hour
    p, d = best["prefill"], best["decode"]
    assert best["devices"] == p["workers"] * p["tp"] + d["workers"] * d["tp"]
    assert best["usd_per_hour"] == pytest.approx(best["devices"] * 3.49)  # H100 SXM at RunPod (hardware spec)


def test_chosen_split_matches_serve_disagg(busy):
    best = busy["deployments"][0]
    p, d = best["prefill"], best["decode"]
    got = serve_disagg("llama-3.1-70b", "h100", "fp8", f"{p['workers']}p:tp{p['tp']},{d['workers']}d:tp{d['tp']}",
                       request_rate=40, concurrency=best["batch_cap"] * d["workers"], prompt=1000, gen=300)
    assert got["ttft_p90_s"] == pytest.approx(best["ttft_s"], rel=1e-9)
    assert got["tpot_s"] == pytest.approx(best["tpot_s"], rel=1e-9)
    assert got["disagg"]["kv_transfer_s"] == pytest.approx(best["kv_transfer_s"], rel=1e-12)


def test_the_search_is_minimal(busy):
    """One prefill worker fewer misses the TTFT target; one decode worker fewer misses TPOT or saturates."""
    best = busy["deployments"][0]
    p, d = best["prefill"], best["decode"]

    def run(x, y):
        return serve_disagg("llama-3.1-70b", "h100", "fp8", f"{x}p:tp{p['tp']},{y}d:tp{d['tp']}", request_rate=40,
                            concurrency=best["batch_cap"] * y, prompt=1000, gen=300)

    assert p["workers"] > 1 and d["workers"] > 1  # at 40 req/s neither side is a single worker
    fewer = run(p["workers"] - 1, d["workers"])
    assert not fewer["stable"] or fewer["ttft_p90_s"] > 1.0
    fewer = run(p["workers"], d["workers"] - 1)
    assert not fewer["stable"] or fewer["tpot_s"] > 0.05


def test_aggregated_wins_at_light_load():
    r = plan("llama-3.1-8b", qps=1, prompt=1000, gen=200, slo_ttft=1.0, candidates="h100", fmt="fp8", tp="1",
             disagg="auto")
    assert r["deployments"][0]["mode"] == "aggregated" and r["deployments"][0]["devices"] == 1
    assert r["disagg_why"].startswith("aggregated: the cheapest split deployment")
    assert any(d["mode"] == "split" for d in r["deployments"])  # found, but dearer: two devices at least


def test_only_and_off():
    kw = dict(qps=1, prompt=1000, gen=200, slo_ttft=1.0, candidates="h100", fmt="fp8", tp="1")
    assert all(d["mode"] == "split" for d in plan("llama-3.1-8b", disagg="only", **kw)["deployments"])
    off = plan("llama-3.1-8b", **kw)
    assert all(d["mode"] == "aggregated" for d in off["deployments"]) and "disagg_why" not in off


def test_bad_disagg_input():
    kw = dict(qps=1, prompt=1000, gen=200, slo_ttft=1.0, candidates="h100")
    with pytest.raises(PlanError, match="--disagg sometimes"):
        request("llama-3.1-8b", disagg="sometimes", **kw)
    with pytest.raises(PlanError, match="give --disagg auto or only"):
        request("llama-3.1-8b", kv_link="scale-out", **kw)
    with pytest.raises(WorkloadError, match="--kv-link fast"):
        request("llama-3.1-8b", disagg="auto", kv_link="fast", **kw)


def test_no_link_is_the_binding_reason():
    # MI300X states no NIC: a pair of 8-GPU workers spans two boards with no stated link between them
    r = plan("llama-3.1-8b", qps=1, prompt=1000, gen=200, slo_ttft=1.0, candidates="mi300x", fmt="bf16", tp="8",
             disagg="only")
    assert not r["deployments"] and r["binding"].startswith("KV link:") and "mi300x" in r["binding"]


def test_cli_plan_and_whatif(run_cli):
    code, out, err = run_cli("whatif", "llama-3.1-70b", "--vary", "disagg=off,auto", "--qps", "40", "--prompt", "1000", "--gen",
                  "300", "--slo-ttft", "1", "--slo-tpot", "0.05", "--candidates", "h100", "--fmt", "fp8", "--tp", "1,2,4")
    assert code == 0 and "7p:tp1 2d:tp2" in out
    code, out, err = run_cli("estimate", "llama-3.1-70b", "--hw", "h100", "--fmt", "fp8", "--disagg", "2p:tp2")
    assert code == 2 and "--disagg 2p:tp2: applies under load" in err
    code, out, err = run_cli("estimate", "llama-3.1-70b", "--hw", "h100", "--fmt", "fp8", "--disagg", "2p:tp2", "--request-rate", "1")
    assert code == 2 and "expected prefill and decode workers" in err
    code, out, err = run_cli("estimate", "llama-3.1-70b", "--hw", "h100", "--fmt", "fp8", "--disagg", "2p:tp2,1d:tp4",
                  "--request-rate", "4", "--tp", "4")
    assert code == 2 and "--tp 4: with --disagg" in err
    code, out, err = run_cli("estimate", "llama-3.1-70b", "--hw", "h100", "--fmt", "fp8", "--kv-link", "50", "--request-rate", "4")
    assert code == 2 and "give --disagg too" in err
    code, out, err = run_cli("estimate", "llama-3.1-70b", "--hw", "h100", "--fmt", "fp8", "--disagg", "2p:tp2,1d:tp4",
                  "--request-rate", "4", "--prompt", "2000", "--gen", "200")
    assert code == 0 and "2 prefill workers of tp2 on h100-sxm + 1 decode worker of tp4" in out


def test_decode_workers_are_scanned_past_the_fewest():
    """At 300 req/s the fewest decode workers for the load (11) leave a slot wait that eats the TTFT budget; 12
    leave room for far fewer prefill workers: 10p + 12d = 22 H100 (the review's case), and one fewer decode
    worker at that prefill count misses the TTFT target."""
    r = plan("llama-3.1-8b", qps=300, prompt=2000, gen=500, slo_ttft=0.5, candidates="h100", fmt="fp8", tp="1",
             disagg="only")
    best = r["deployments"][0]
    assert (best["prefill"]["workers"], best["decode"]["workers"]) == (10, 12)
    fewer = serve_disagg("llama-3.1-8b", "h100", "fp8", "10p:tp1,11d:tp1", request_rate=300,
                         concurrency=best["batch_cap"] * 11, prompt=2000, gen=500)
    assert not fewer["stable"] or fewer["ttft_p90_s"] > 0.5


def test_a_side_without_a_price_is_a_price_reason():
    r = plan("deepseek-r1", qps=20, prompt=8000, gen=1000, slo_ttft=3, slo_tpot=0.05, candidates="gb300",
             fmt="nvfp4", tp="8", disagg="only")
    assert r["rejected"] and all(x["reason"].startswith("price: gb300 has no cloud price") for x in r["rejected"])
    assert r["binding"].startswith("price: no cloud price for gb300")


def test_whatif_disagg_off_drops_the_split_options():
    from costmodel.planning.whatif import whatif

    rows = whatif(dict(model="llama-3.1-8b", qps=1, prompt=1000, gen=200, slo_ttft=1.0, candidates="h100", fmt="fp8",
                       tp="1", kv_link="scale-out"), "disagg=off,auto")
    assert [r["value"] for r in rows] == ["off", "auto"] and all(r["best"] for r in rows)
    assert rows[0]["best"]["mode"] == "aggregated"
