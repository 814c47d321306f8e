"""Split prefill/decode serving (engine/disagg.py, serving_split.py): closed forms, hand-computed KV
transfers, identities between the parts, monotonicity, and bad input."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.disagg import (Side, decode_only, kv_transfer_time, prefill_capacity, prefill_wait, split_closed,
                                     split_poisson)
from costmodel.engine.serving import ReplicaPerf, capacity, md1_wait, mm1_wait, simulate_single_server
from costmodel.errors import WorkloadError
from costmodel.serving_split import Workers, kv_bytes_per_device, parse_disagg, serve_disagg

GRID = np.array([1.0, 2, 4, 8, 16, 32, 64, 128, 256])


def perf(t_p=0.05, step0=0.01, slope=1e-4, gen=100, cap=256, batch_gain=None, cv2=0.0):
    """A replica with decode steps t_d(n) = step0 + slope·n; prefill of k prompts k·t_p (no batching
    gain) or, with batch_gain g, t_p·k^g."""
    t_batch = None if batch_gain is None else t_p * GRID ** batch_gain
    return ReplicaPerf(t_p, t_p, cv2, GRID, step0 + slope * GRID, float(gen), 0.0, cap, 0.0, t_batch)


def test_prefill_wait_is_pollaczek_khinchine_without_batching_gain():
    """T(k) = k·t_p: exactly M/G/1; deterministic prompts give M/D/1, exponential M/M/1."""
    p = perf(t_p=0.05)
    for lam in (2.0, 10.0, 18.0):
        w, pw = prefill_wait(p, lam)
        assert w == pytest.approx(md1_wait(lam, 0.05), rel=1e-9)
        assert pw == pytest.approx(lam * 0.05, rel=1e-9)
    w, _ = prefill_wait(perf(t_p=0.05, cv2=1.0), 10.0)
    assert w == pytest.approx(mm1_wait(10.0, 0.05), rel=1e-9)


def test_prefill_wait_matches_a_simulated_queue():
    lam, t_p = 15.0, 0.05  # rho 0.75
    sim = simulate_single_server(lam, np.full(200_000, t_p), seed=1)
    assert prefill_wait(perf(t_p=t_p), lam)[0] == pytest.approx(sim, rel=0.03)


def test_batching_gain_shortens_the_wait_and_raises_capacity():
    flat, batched = perf(t_p=0.05), perf(t_p=0.05, batch_gain=0.5)
    assert prefill_capacity(flat) == pytest.approx(20.0)
    assert prefill_capacity(batched) == pytest.approx(1 / (0.05 * 256 ** 0.5 / 256))  # 320 prompts/s at k = 256
    assert prefill_wait(batched, 18.0)[0] < prefill_wait(flat, 18.0)[0]
    assert math.isinf(prefill_wait(flat, 25.0)[0]) and math.isfinite(prefill_wait(batched, 25.0)[0])


def test_kv_transfer_time_hand_computed():
    # 330 MB over 2 prefill devices (165 MB each at 50 GB/s) and 4 decode devices (82.5 MB each at 25 GB/s)
    assert kv_transfer_time(165e6, 50e9, 82.5e6, 25e9) == pytest.approx(3.3e-3)
    # overlapped with a 0.2 s prefill of 80 layers: the prefill hides it all but the last layer's share
    assert kv_transfer_time(165e6, 50e9, 82.5e6, 25e9, 0.2, 80, True) == pytest.approx(3.3e-3 / 80)
    # a transfer longer than the prefill: what the prefill does not hide, 1.0 - 0.2·79/80
    assert kv_transfer_time(50e9, 50e9, 1.0, 1e12, 0.2, 80, True) == pytest.approx(1.0 - 0.2 * 79 / 80)


def test_split_parts_add_up_and_decode_carries_no_prefills():
    p, d = perf(t_p=0.05, batch_gain=0.6), perf(t_p=0.05)
    lam, t_kv = 12.0, 0.004
    got = split_poisson(Side(p, 2), Side(d, 1), lam, 256, t_kv)
    s = got.stats
    dec = decode_only(d)
    n = got.decode_running
    t_d = dec.step(n)
    assert n == pytest.approx(lam * 100 * t_d, rel=1e-6)  # Little's law on the decode worker
    assert s.tpot["mean"] == pytest.approx(t_d, rel=1e-12)  # no prefill interrupts a decode step
    w, _ = prefill_wait(p, lam / 2)
    residual = min(1.0, n) * t_d / 2
    assert s.ttft["mean"] == pytest.approx(w + 0.05 + t_kv + residual + 0.0 + t_d, rel=1e-9)  # no slot wait
    assert s.e2e["mean"] == pytest.approx(s.ttft["mean"] + 99 * t_d, rel=1e-12)
    assert got.prefill_utilization == pytest.approx(lam / 2 / prefill_capacity(p))
    assert capacity(dec, 256) == pytest.approx(256 / (100 * dec.step(256)))


def test_split_closed_loop_obeys_little():
    p, d = perf(t_p=0.05, batch_gain=0.6), perf(t_p=0.05)
    got = split_closed(Side(p, 1), Side(d, 1), 64.0, 256, 0.002)
    s = got.stats
    assert s.mode == "closed" and s.ok
    assert s.arrival_rps * s.e2e["mean"] == pytest.approx(64.0, rel=1e-6)


def test_overload_is_unbounded_never_a_number():
    p, d = perf(t_p=0.05), perf(t_p=0.05)
    s = split_poisson(Side(p, 1), Side(d, 1), 30.0, 256, 0.0).stats
    assert not s.ok and all(math.isinf(v) for v in s.ttft.values())


@settings(max_examples=40, deadline=None)
@given(lam=st.floats(0.5, 15.0), x=st.integers(1, 6), y=st.integers(1, 6), gain=st.sampled_from([None, 0.5, 0.8]))
def test_more_workers_never_slower(lam, x, y, gain):
    """Adding a prefill worker never raises TTFT; adding a decode worker never raises TPOT."""
    p, d = perf(t_p=0.05, batch_gain=gain), perf(t_p=0.05)
    base = split_poisson(Side(p, x), Side(d, y), lam, 64, 0.001).stats
    more_p = split_poisson(Side(p, x + 1), Side(d, y), lam, 64, 0.001).stats
    more_d = split_poisson(Side(p, x), Side(d, y + 1), lam, 64, 0.001).stats
    if base.ok:
        assert more_p.ok and more_p.ttft["mean"] <= base.ttft["mean"] * (1 + 1e-9)
        assert more_d.ok and more_d.tpot["mean"] <= base.tpot["mean"] * (1 + 1e-9)


def test_parse_disagg():
    assert parse_disagg("2p:tp4,1d:tp8") == (Workers(2, 4), Workers(1, 8))
    assert parse_disagg("1d:tp8:dp8:ep8, 3p:tp2@h100") == (Workers(3, 2, hardware="h100"), Workers(1, 8, 8, 8))
    for bad in ("2p:tp4", "2p:tp4,1p:tp2", "2x:tp4,1d", "0p,1d", "2p:tp0,1d", ""):
        with pytest.raises(WorkloadError, match="--disagg"):
            parse_disagg(bad)


def test_kv_handed_over_is_the_prompts_whole_kv():
    """Llama-3.1-70B with an FP8 KV cache: 80 layers x 8 KV heads x 128 x (K, V) x 1 byte = 163,840 bytes a
    token, in the engine's blocks."""
    from costmodel.estimate import columns_for, estimate

    one = estimate("llama-3.1-70b", "h100", "fp8", batch=1, prompt=2000, gen=2, tp=2)
    block = float(columns_for(one)[2]["kv_block_tokens"])
    assert kv_bytes_per_device(one, 2000, whole=True) == pytest.approx(163_840 * math.ceil(2000 / block) * block)


def test_serve_disagg_transfer_and_sides():
    d = serve_disagg("llama-3.1-70b", "h100", "fp8", "2p:tp2,1d:tp4", request_rate=4, prompt=2000, gen=200)
    s = d["disagg"]
    # a prefill worker and a decode worker (6 GPUs) fit one 8-GPU NVLink node: each of the 2 prefill devices
    # sends half the KV at half the H100's 900 GB/s bidirectional NVLink
    assert s["kv_transfer_s"] == pytest.approx(s["kv_bytes_per_request"] / 2 / 450e9, rel=1e-9)
    assert "NVLink 4" in s["kv_link"]
    assert s["devices"] == {"h100-sxm": 8}
    assert d["request_throughput_per_s"] == pytest.approx(4.0)
    assert d["tpot_s"] == pytest.approx(d["tpot_p99_s"])  # decode steps without prefills: no tail
    assert d["ttft_s"] > s["prefill"]["wait_s"] + s["kv_transfer_s"]
    assert "not calibrated" in d["interval"]["ttft_s"]["basis"]
    lo, hi = d["interval"]["ttft_s"]["low"], d["interval"]["ttft_s"]["high"]
    assert lo <= d["ttft_s"] <= hi
    # past one node (8 + 8 GPUs) the KV goes over each GPU's 50 GB/s ConnectX-7 NIC (the spec's scale-out)
    far = serve_disagg("llama-3.1-70b", "h100", "fp8", "1p:tp8,1d:tp8", request_rate=4, prompt=2000, gen=200)
    assert far["disagg"]["kv_transfer_s"] == pytest.approx(far["disagg"]["kv_bytes_per_request"] / 8 / 50e9, rel=1e-9)
    # a given link: 12.5 GB/s per device
    slow = serve_disagg("llama-3.1-70b", "h100", "fp8", "2p:tp2,1d:tp4", request_rate=4, prompt=2000, gen=200,
                        kv_link="12.5")
    assert slow["disagg"]["kv_transfer_s"] == pytest.approx(s["kv_bytes_per_request"] / 2 / 12.5e9, rel=1e-9)


def test_serve_disagg_bad_input():
    # MI300X: an 8-GPU Infinity Fabric board and no NIC in its spec, so 16 GPUs have no stated link
    with pytest.raises(WorkloadError, match="states no scale-out link"):
        serve_disagg("llama-3.1-8b", "mi300x", "bf16", "1p:tp8,1d:tp8", request_rate=1)
    with pytest.raises(WorkloadError, match="--kv-link"):
        serve_disagg("llama-3.1-8b", "h100", "bf16", "1p,1d", request_rate=1, kv_link="fast")
    with pytest.raises(WorkloadError, match="memory"):
        serve_disagg("llama-3.1-70b", "h100", "bf16", "1p:tp1,1d:tp4", request_rate=1)


def test_validate_scores_split_rows_with_the_split_model():
    """A split row is predicted by the split model: its TPOT equals serve_disagg's for the same deployment
    (closed loop, uniform:0.8 lengths, the engine's calibration), and validate reports it as its own layout."""
    from costmodel.calibration.predict import predict, prepare
    from costmodel.calibration.measurements import read_measurements, shipped_measurements

    rows = [r for r in read_measurements(shipped_measurements()) if r.is_split and r.metric == "tpot_ms"
            and r.hardware == "h200-sxm" and r.framework == "sglang"][:1]
    (r,) = rows
    pred, _ = predict(prepare(rows))
    spec = (f"{r.prefill_workers}p:tp{r.prefill_tp}:dp{r.prefill_dp}:ep{r.prefill_ep},"
            f"{r.decode_workers}d:tp{r.decode_tp}:dp{r.decode_dp}:ep{r.decode_ep}")
    d = serve_disagg(r.model, r.hardware, r.format, spec, concurrency=r.batch, prompt=r.prompt_tokens,
                     gen=r.output_tokens, prompt_dist=r.length_dist, gen_dist=r.length_dist, engine="sglang")
    assert pred[0] == pytest.approx(d["tpot_s"] * 1e3, rel=1e-6)


def test_prefix_rows_are_predicted_with_their_hit_rate():
    """A row's prefix_hit reaches the serving model: the cache-on row is predicted exactly as
    serve_load with --prefix-hit, and its TTFT is below its cache-off twin's."""
    from costmodel.calibration.measurements import read_measurements, shipped_measurements
    from costmodel.calibration.predict import predict, prepare
    from costmodel.serving import serve_load

    rows = [r for r in read_measurements(shipped_measurements())
            if r.source == "vllm_pr_1983" and r.metric == "ttft_ms" and r.request_rate == 10]
    on = next(r for r in rows if r.prefix_hit > 0)
    off = next(r for r in rows if r.prefix_hit == 0)
    pred, _ = predict(prepare([on, off]))
    want = serve_load("llama-2-13b", "a100-sxm-80gb", "fp16", request_rate=10, prompt=230, gen=50, engine="vllm",
                      prefix_hit=on.prefix_hit)
    assert pred[0] == pytest.approx(want["ttft_s"] * 1e3, rel=1e-9)
    assert pred[0] < pred[1]


def test_dp_ep_sides_span_their_devices_and_links_cover_the_deployment():
    assert parse_disagg("1p:dp8:ep8,2d:ep8") == (Workers(1, 8, 8, 8), Workers(2, 8, 1, 8))
    with pytest.raises(WorkloadError, match="--kv-link True"):
        serve_disagg("llama-3.1-8b", "h100", "bf16", "1p,1d", request_rate=1, kv_link=True)
    # 7 prefill GPUs + 2 decode workers of 2 = 11 GPUs: more than one 8-GPU NVLink node, so the NICs carry the KV
    d = serve_disagg("llama-3.1-70b", "h100", "fp8", "7p:tp1,2d:tp2", request_rate=40, prompt=1000, gen=300)
    assert "scale-out" in d["disagg"]["kv_link"]
    assert d["disagg"]["kv_transfer_s"] == pytest.approx(d["disagg"]["kv_bytes_per_request"] / 50e9, rel=1e-9)


def test_kv_links_queue_and_saturate():
    """A worker's link moves one request's KV at a time: utilization λ/workers · link_s, an M/D/1 wait added to
    TTFT, unbounded from ρ = 1, and the capacity workers / link_s (it took the transfer as a constant: 2 req/s
    'served' over a link that moves 0.15 of them a second)."""
    from costmodel.engine.disagg import link_load, split_capacity

    p, d = perf(t_p=0.01), perf()
    plain = split_poisson(Side(p, 2), Side(d, 1), 4.0, 256, 0.1)
    linked = split_poisson(Side(p, 2, 0.1), Side(d, 1, 0.05), 4.0, 256, 0.1)
    # prefill side 4/2 x 0.1 = 0.2, decode side 4/1 x 0.05 = 0.2: the first of the tied sides, t = 0.1
    rho, wait = link_load(Side(p, 2, 0.1), Side(d, 1, 0.05), 4.0)
    assert rho == pytest.approx(0.2) and wait == pytest.approx(md1_wait(2.0, 0.1))
    assert linked.link_utilization == pytest.approx(0.2) and plain.link_utilization == 0.0
    assert linked.stats.ttft["mean"] == pytest.approx(plain.stats.ttft["mean"] + wait, rel=1e-12)
    assert linked.stats.tpot == plain.stats.tpot  # the decode does not see the link
    over = split_poisson(Side(p, 2, 0.1), Side(d, 1), 25.0, 256, 0.1)  # 12.5/s x 0.1 s: ρ = 1.25
    assert not over.stats.ok and math.isinf(over.stats.ttft["mean"]) and "KV link" in over.stats.reason
    assert split_capacity(Side(p, 2, 0.1), Side(d, 1), 256) == pytest.approx(20.0)  # 2 workers / 0.1 s
    closed = split_closed(Side(p, 2, 0.1), Side(d, 1), 1000.0, 256, 0.1)
    assert closed.stats.ok and closed.stats.arrival_rps < 20.0  # the links bound the closed loop too


def test_cli_link_saturation(run_cli):
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "2", "--disagg", "1p,1d",
                           "--kv-link", "0.1")
    text = " ".join(out.split())
    assert code == 0 and "links saturated (offered 134.2% of capacity)" in text and "unbounded" in text
    code, out, _ = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--request-rate", "1", "--disagg", "1p,1d",
                           "--kv-link", "0.1")
    assert code == 0 and "links 67.11% busy" in " ".join(out.split())
