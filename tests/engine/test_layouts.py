"""Parallel layouts (DP attention, expert parallelism): hand-computed collectives, memory per
device, the legal combinations and published figures (DeepSeek-R1: 61 layers, 3 dense, 58 MoE,
256 experts, top-8, hidden 7168, MLA latent 512 + 64 rope)."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.memory import footprint, kv_bytes_per_sequence, max_batch, weight_bytes_per_device
from costmodel.engine.operators import OP_NAMES, cross_domain, lower
from costmodel.engine.roofline import op_times
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model

H = 7168
MOE_LAYERS, DENSE_LAYERS = 58, 3


def cols(model="deepseek-r1", hw="h200-sxm", fmt="fp8", engine="sglang", **over):
    m, h, f = load_model(model), load_hardware(hw), load_format(fmt)
    arr = lambda d: {k: np.asarray(v, dtype=float) for k, v in d.items()}  # noqa: E731
    hc = arr(hardware_row(h, engine))
    hc.update({k: np.asarray(v, dtype=float) for k, v in over.items()})
    return arr(model_row(m)), arr(format_row(f, h, None, False, engine)), hc


def op(ops, name, field):
    return float(getattr(ops, field)[OP_NAMES.index(name)])


def test_published_shape_of_deepseek_r1():
    m = load_model("deepseek-r1")
    assert (m.layers, m.moe_layers, m.dense_layers, m.hidden_size) == (61, MOE_LAYERS, DENSE_LAYERS, H)
    assert (m.moe.experts, m.moe.top_k, m.mla.kv_lora_rank, m.mla.qk_rope_head_dim) == (256, 8, 512, 64)


def test_all_to_all_and_all_gather_by_hand():
    # 8 x H200, DP attention 8 x EP 8, decode of 64 sequences: each rank holds 8 of them
    m, f, hw = cols(expert_imbalance=1.0)
    ops = lower(m, f, hw, batch=64, new_tokens=1, context=1000, tp=8, pp=1, decode=True, dp=8, ep=8)
    # each rank's 8 tokens go to the distinct other ranks holding their 8 experts:
    # 8 * (1 - (7/8)^8) ranks hit, 7/8 of them remote = 4.59474; FP8 dispatch (1 B) + BF16 combine (2 B)
    remote = 8 * (1 - 0.875 ** 8) * 7 / 8
    assert remote == pytest.approx(4.59474, rel=1e-5)
    assert op(ops, "ep_alltoall", "act_bytes") == pytest.approx(MOE_LAYERS * 8 * remote * H * 3)
    assert op(ops, "ep_alltoall", "launches") == 2 * MOE_LAYERS
    # the 3 dense layers gather the groups' tokens and scatter them back: 2 x 7/8 of 64 x 7168 x 2 B each
    assert op(ops, "dp_allgather", "act_bytes") == pytest.approx(2 * DENSE_LAYERS * 64 * H * 2 * 7 / 8)
    assert op(ops, "dp_allgather", "launches") == 2 * DENSE_LAYERS
    # attention TP 1: no all-reduce at all
    assert op(ops, "tp_allreduce", "act_bytes") == 0 and op(ops, "tp_allreduce", "launches") == 0
    # attention runs 128 heads on the group's 8 sequences: the same FLOPs per device as 16 heads on 64
    tp_only = lower(m, f, hw, batch=64, new_tokens=1, context=1000, tp=8, pp=1, decode=True)
    assert op(ops, "attention", "flops") == pytest.approx(op(tp_only, "attention", "flops"))
    # but reads the latent KV of 8 sequences, not 64 (MLA's latent is not split by heads)
    assert op(ops, "attention", "kv_bytes") == pytest.approx(op(tp_only, "attention", "kv_bytes") / 8)


def test_expert_parallel_without_dp_moves_nothing_on_average():
    # uniform routing: a rank holds E/ep experts at full width instead of every expert at 1/tp of it,
    # so its expected weights and FLOPs are the same; the all-reduce after the MoE stays
    m, f, hw = cols(expert_imbalance=1.0)
    a = lower(m, f, hw, batch=16, new_tokens=1, context=500, tp=8, pp=1, decode=True)
    b = lower(m, f, hw, batch=16, new_tokens=1, context=500, tp=8, pp=1, decode=True, ep=8)
    for field in ("flops", "weight_bytes", "act_bytes", "kv_bytes", "launches"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-12)


def test_expert_imbalance_scales_the_busiest_ranks_routed_work():
    m, f, hw = cols(expert_imbalance=2.56)
    _, _, flat = cols(expert_imbalance=1.0)
    hot = lower(m, f, hw, batch=64, new_tokens=1, context=1000, tp=8, pp=1, decode=True, dp=8, ep=8)
    even = lower(m, f, flat, batch=64, new_tokens=1, context=1000, tp=8, pp=1, decode=True, dp=8, ep=8)
    assert op(hot, "ep_alltoall", "act_bytes") == pytest.approx(2.56 * op(even, "ep_alltoall", "act_bytes"))
    # routed FLOPs x 2.56, the shared expert's (1 x 2048 wide) not: 2T h (8 i k + i_s) per matrix
    i_e, i_s = 2048 / 8, 2048 / 8
    ratio = (2.56 * 8 * i_e + i_s) / (8 * i_e + i_s)
    assert op(hot, "moe_down", "flops") == pytest.approx(ratio * op(even, "moe_down", "flops"))
    assert op(hot, "moe_down", "weight_bytes") == pytest.approx(op(even, "moe_down", "weight_bytes"))


def test_memory_per_device_under_dp_attention():
    m, f, hw = cols()
    # the MLA latent (512 + 64 FP8 bytes per token per layer) is held once per sequence: TP does not
    # split it, DP attention does (each group holds its own sequences)
    per_seq = float(kv_bytes_per_sequence(m, f, 2048, 8, 1, hw))
    assert per_seq == pytest.approx(2048 * 61 * 576 * 1.0)
    tp_only = footprint(m, f, hw, 64, 1024, 1024, 0, 8, 1)
    dp8 = footprint(m, f, hw, 64, 1024, 1024, 0, 8, 1, dp=8)
    assert float(dp8.kv_cache) == pytest.approx(float(tp_only.kv_cache) / 8)
    # attention, embedding and head weights are replicated across the 8 groups (1 rank each), the MLPs
    # and experts are not: the difference is 7/8 of the replicated part
    w1, w8 = float(weight_bytes_per_device(m, f, 8, 1)), float(weight_bytes_per_device(m, f, 8, 1, dp=8))
    rest = (m["p_mixer"] * 8 + m["p_embedding"] * f["emb_bits"] + m["p_lm_head"] * f["head_bits"]
            + m["p_small"] * 16) / 8
    assert w8 - w1 == pytest.approx(float(rest) * 7 / 8)
    # so more sequences fit: the pool is smaller, but each sequence costs 1/8
    assert float(max_batch(m, f, hw, 1024, 1024, 0, 8, 1, dp=8)) > 4 * float(max_batch(m, f, hw, 1024, 1024, 0, 8, 1))


def test_redundant_expert_slots_when_ep_does_not_divide_the_experts():
    m, f, hw = cols()
    # 256 experts on 72 ranks: 4 slots each (288, 32 redundant), 288/256 of the expert weights
    base, ep72 = weight_bytes_per_device(m, f, 72, 1), weight_bytes_per_device(m, f, 72, 1, ep=72)
    assert float(ep72 - base) == pytest.approx(float(m["p_experts"]) * (288 / 256 - 1) * f["w_bits"] / 8 / 72)


def test_collectives_past_the_scale_up_domain():
    hw = {"interconnect": np.asarray(900e9), "domain": np.asarray(8.0), "scale_out": np.asarray(50e9)}
    # a ring over 16 GPUs crosses boards on 8 NICs at once (one ring per NIC): 450 / 50 / 8 = 1.125x
    assert float(cross_domain(1.0, 16, hw, ring=True)) == pytest.approx(450 / 50 / 8)
    slow_nic = {**hw, "scale_out": np.asarray(12.5e9)}  # a 100 Gb/s NIC: 36 / 8 = 4.5x
    assert float(cross_domain(1.0, 16, slow_nic, ring=True)) == pytest.approx(4.5)
    # an all-to-all sends 8 of its 15 peers' shares off the board, in parallel with the rest
    assert float(cross_domain(1.0, 16, hw, ring=False)) == pytest.approx(8 / 15 * 9)
    assert float(cross_domain(1.0, 8, hw, ring=False)) == 1.0 and float(cross_domain(1.0, 8, hw, ring=True)) == 1.0
    # a device without a stated domain reaches all its peers at the interconnect's rate
    assert float(cross_domain(1.0, 64, {"interconnect": np.asarray(900e9)}, ring=True)) == 1.0


def test_scale_out_bandwidth_against_deepep():
    # DeepEP README (deepseek-ai/DeepEP @ 0a08009, normal kernels, H800 + CX7 400 Gb/s): internode
    # dispatch at EP 16 reaches 43 GB/s of the NIC's ~50 GB/s; the model's all-to-all past the domain
    # moves at the scale-out link x the NCCL-derived comm efficiency (0.82): within 10% of it
    from costmodel.spec.engine_params import efficiency_for

    h = load_hardware("h200-sxm")
    eff = efficiency_for(h.id, h.family, "sglang")
    assert h.scale_out_bandwidth * eff.comm_efficiency == pytest.approx(43e9, rel=0.1)


def test_hardware_domains_are_sourced():
    for dev, domain, out in (("h100-sxm", 8, 50e9), ("b200", 8, 50e9), ("gb200", 72, 50e9), ("b300", 8, 100e9),
                             ("mi355x", 8, 50e9)):
        h = load_hardware(dev)
        assert (h.scale_up_domain, h.scale_out_bandwidth) == (domain, out)
        assert h.sources["interconnect.domain"]


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 16), batch=st.integers(1, 512), more=st.integers(1, 64), ep=st.sampled_from([1, 2, 8]))
def test_moe_decode_cost_monotone_in_top_k_and_tokens(k, batch, more, ep):
    m, f, hw = cols(expert_imbalance=1.0)
    moe = [OP_NAMES.index(n) for n in ("moe_up", "moe_act", "moe_down", "ep_alltoall")]

    def t(top_k, b):
        mm = {**m, "top_k": np.asarray(float(top_k))}
        ops = lower(mm, f, hw, batch=b, new_tokens=1, context=256, tp=8, pp=1, decode=True, dp=8, ep=ep)
        return float(op_times(ops, hw, f).total[moe].sum())

    base = t(k, batch)
    assert t(k + 1, batch) >= base * (1 - 1e-12)
    assert t(k, batch + more) >= base * (1 - 1e-12)


@pytest.mark.parametrize("args,needle", [
    (["--tp", "8", "--dp", "3"], "--dp 3 must divide --tp 8"),
    (["--tp", "8", "--ep", "3"], "--ep 3 must divide --tp 8"),
    (["--tp", "512", "--dp", "4", "--ep", "512"], "--ep 512 exceeds the 256 experts of deepseek-r1"),
    (["--tp", "3", "--dp", "1"], "--tp 3 must divide the 128 attention heads of deepseek-r1"),
])
def test_illegal_layouts_are_one_line_errors(run_cli, args, needle):
    code, out, err = run_cli("estimate", "deepseek-r1", "--hw", "h200", "--fmt", "fp8", *args)
    assert code == 2 and needle in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2


def test_ep_on_a_dense_model_is_refused(run_cli):
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--tp", "2", "--ep", "2")
    assert code == 2 and "--ep 2: llama-3.1-8b is dense (no experts to shard); use --ep 1" in err


def test_nvl72_deployment_under_load(run_cli):
    # issue 15's example: DeepSeek-R1 on a GB200 NVL72 rack, DP attention 72 x EP 72, 4096 clients
    code, out, err = run_cli("estimate", "deepseek-r1", "--hw", "gb200", "--devices", "72", "--dp", "72", "--ep",
                             "72", "--fmt", "nvfp4", "--concurrency", "4096", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert (d["tp"], d["dp"], d["ep"], d["replicas"], d["stable"]) == (72, 72, 72, 1, True)
    lay = d["layout"]
    assert lay["attention_tp"] == 1 and lay["moe_tp"] == 1
    assert lay["batch_per_attention_group"] == math.ceil(d["running_per_replica"] / 72)
    # the all-to-all of a 72-GPU NVLink domain is on the wire every decode step, and takes less than it
    assert 0 < lay["decode_comm_s"]["ep_alltoall"] < lay["decode_step_s"]
    assert d["layout_calibration"].startswith("uncalibrated layout")


def test_static_estimate_reports_its_layout(run_cli):
    code, out, err = run_cli("estimate", "deepseek-r1", "--hw", "h200", "--dp", "8", "--ep", "8", "--fmt", "fp8",
                             "--batch", "100", "--json")
    d = json.loads(out)
    lay = d["layout"]
    assert (d["tp"], lay["attention_tp"], lay["batch_per_attention_group"]) == (8, 1, 13)
    assert lay["decode_comm_s"]["ep_alltoall"] > 0 and lay["decode_comm_s"]["tp_allreduce"] == 0
    assert 0 < lay["decode_comm_share"] < 1
    code, out, err = run_cli("estimate", "deepseek-r1", "--hw", "h200", "--tp", "8", "--fmt", "fp8", "--json")
    d = json.loads(out)
    assert d["layout"]["decode_comm_s"]["ep_alltoall"] == 0 and d["layout_calibration"].startswith("calibrated")


def test_prompts_batch_into_steps_past_light_load():
    from costmodel.engine.serving import ReplicaPerf, capacity

    # prefill of k prompts T(k) = a + b k on the grid (a = 10 ms fixed, b = 2 ms per prompt)
    a, b, t_d = 0.010, 0.002, 0.020
    ks = np.array([1.0, 2.0, 4.0, 1024.0])
    perf = ReplicaPerf(t_prefill=a + b, t_prefill_q=a + b, prefill_cv2=0.0, batches=ks, t_step=np.full(4, t_d),
                       gen_mean=100.0, gen_cv2=0.0, max_batch=1024, t_prefill_batch=a + b * ks)
    # light load, lambda (t_d + t_p) <= 1: one prompt per step that carries one
    assert perf.prefill_batch(20.0, t_d) == (1.0, a + b)
    # past it every step carries the prompts that arrived during the last: k = lam (t_d + a + b k),
    # k = lam (t_d + a) / (1 - lam b)
    lam = 200.0
    k, t_k = perf.prefill_batch(lam, t_d)
    assert k == pytest.approx(lam * (t_d + a) / (1 - lam * b)) and t_k == pytest.approx(a + b * k)
    # close to the limit (lam b = 0.98) the same closed form holds: 735 prompts a step
    assert perf.prefill_batch(490.0, t_d)[0] == pytest.approx(490 * (t_d + a) / (1 - 490 * b))
    # no batch keeps up once prompts arrive faster than 1/b
    assert perf.prefill_batch(600.0, t_d) == (math.inf, math.inf)
    # the capacity counts a prompt at the least time per prompt a batch reaches: T(1024)/1024
    assert capacity(perf, 1024) == pytest.approx(1 / ((a + b * 1024) / 1024 + 100 * t_d / 1024))


def test_overlapping_collectives_hides_them_under_compute():
    from costmodel import estimate
    from costmodel.engine.phases import COMM_OPS, step_time

    per_op = np.zeros(len(OP_NAMES))
    per_op[OP_NAMES.index("moe_up")] = 3.0
    per_op[OP_NAMES.index("ep_alltoall")] = 1.0
    assert COMM_OPS[OP_NAMES.index("ep_alltoall")] and not COMM_OPS[OP_NAMES.index("moe_up")]
    assert float(step_time(per_op, {})) == 4.0
    assert float(step_time(per_op, {"comm_overlap": np.asarray(1.0)})) == 3.0
    per_op[OP_NAMES.index("ep_alltoall")] = 5.0  # more communication than compute: it shows
    assert float(step_time(per_op, {"comm_overlap": np.asarray(1.0)})) == 5.0
    # on DeepSeek-R1 with DP attention + EP the decode step loses exactly its (smaller) collectives
    kw = dict(fmt="fp8", dp=8, ep=8, batch=512, prompt=1000, gen=200)
    plain, hidden = estimate("deepseek-r1", "h200", **kw), estimate("deepseek-r1", "h200", overlap_comm=True, **kw)
    comm = sum(plain.to_dict()["layout"]["decode_comm_s"].values())
    assert plain.metric("tpot_s") - hidden.metric("tpot_s") == pytest.approx(comm, rel=1e-9)
    assert hidden.to_dict()["assumptions"]["comm_overlap"] == 1.0 and plain.efficiency.comm_overlap == 0.0


def test_in_switch_allreduce_where_the_fabric_states_it():
    # NCCL on 8 x H100: ring ~370 GB/s bus bandwidth, NVLS ~480 (hardware/nvidia-hopper.yaml nccl-nvls)
    m, f, hw = cols(model="llama-3.1-70b", hw="h100-sxm", fmt="fp8", engine="vllm")
    assert float(hw["nvls"]) == 1.3
    ring = lower(m, f, hw, batch=16, new_tokens=1, context=100, tp=8, pp=1, decode=True)
    nvls_hw = {**hw, "allreduce_nvls": np.asarray(1.0)}
    nvls = lower(m, f, nvls_hw, batch=16, new_tokens=1, context=100, tp=8, pp=1, decode=True)
    assert op(nvls, "tp_allreduce", "act_bytes") == pytest.approx(op(ring, "tp_allreduce", "act_bytes") / 1.3)
    # the gain grows with the GPUs on the switch: none at 4 (nccl#1455), half of it at 6
    for tp, gain in ((4, 1.0), (6, 1.15), (2, 1.0)):
        a = lower(m, f, hw, batch=16, new_tokens=1, context=100, tp=tp, pp=1, decode=True)
        b = lower(m, f, nvls_hw, batch=16, new_tokens=1, context=100, tp=tp, pp=1, decode=True)
        assert op(b, "tp_allreduce", "act_bytes") == pytest.approx(op(a, "tp_allreduce", "act_bytes") / gain)
    # past the 8-GPU switch the ring crosses boards and no one switch reduces it
    wide = lower(m, f, nvls_hw, batch=16, new_tokens=1, context=100, tp=16, pp=1, decode=True)
    wide_ring = lower(m, f, hw, batch=16, new_tokens=1, context=100, tp=16, pp=1, decode=True)
    assert op(wide, "tp_allreduce", "act_bytes") == op(wide_ring, "tp_allreduce", "act_bytes")


@pytest.mark.parametrize("args,needle", [
    (["--hw", "a100", "--allreduce", "nvls"], "--allreduce nvls: a100-sxm-80gb states no in-switch reduction"),
    (["--hw", "h100", "--allreduce", "tree"], "--allreduce 'tree': expected ring or nvls"),
])
def test_allreduce_choice_errors(run_cli, args, needle):
    code, _, err = run_cli("estimate", "llama-3.1-70b", "--tp", "8", *args)
    assert code == 2 and needle in err


def test_all_to_all_against_deepep_at_ep64():
    # DeepEP README (deepseek-ai/DeepEP @ 0a08009, low-latency kernels, H800 + CX7 400 Gb/s RDMA,
    # 128 tokens per rank, hidden 7168, top-8, FP8 dispatch / BF16 combine): EP 64 dispatch 173 us +
    # combine 314 us. Past an 8-GPU board the exchange is bound by the 50 GB/s NIC, which an H200 board
    # shares: DeepSeek-R1 decode with 128 tokens per rank on 64 H200 (DP attention 64, EP 64, uniform
    # routing) spends its per-layer all-to-all within 15% of that
    m, f, hw = cols(expert_imbalance=1.0)
    ops = lower(m, f, hw, batch=64 * 128, new_tokens=1, context=1000, tp=64, pp=1, decode=True, dp=64, ep=64)
    t = op_times(ops, hw, f)
    i = OP_NAMES.index("ep_alltoall")
    per_layer = float(t.comm[i] + t.fixed[i]) / MOE_LAYERS
    assert per_layer == pytest.approx((173 + 314) * 1e-6, rel=0.07)


def test_busiest_rank_holds_at_most_all_routed_tokens():
    # at EP 2 the busiest rank can carry at most twice the mean: the 2.56 default is capped at 2
    m, f, hot = cols(expert_imbalance=2.56)
    _, _, flat = cols(expert_imbalance=1.0)
    a = lower(m, f, hot, batch=64, new_tokens=1, context=100, tp=8, pp=1, decode=True, dp=8, ep=2)
    b = lower(m, f, flat, batch=64, new_tokens=1, context=100, tp=8, pp=1, decode=True, dp=8, ep=2)
    i_e, i_s = 2048 / 8, 2048 / 8  # routed at 1/tp width; the shared expert whole, on the group's tokens
    assert op(a, "moe_down", "flops") == pytest.approx((2 * 8 * i_e + i_s) / (8 * i_e + i_s) * op(b, "moe_down", "flops"))


def test_all_to_all_counts_the_other_ranks_of_an_expert_group():
    # tp 8, ep 2: each expert is split over 4 ranks; a token's 8 experts fall in both groups with
    # probability 1 - (1/2)^8, so it goes to (8 - 1)(1 - 1/256) = 6.97 other ranks
    m, f, hw = cols(expert_imbalance=1.0)
    ops = lower(m, f, hw, batch=64, new_tokens=1, context=100, tp=8, pp=1, decode=True, dp=8, ep=2)
    remote = 7 * (1 - 0.5 ** 8)
    assert op(ops, "ep_alltoall", "act_bytes") == pytest.approx(MOE_LAYERS * 8 * remote * H * 3)


def test_shared_experts_are_whole_on_every_rank_under_deepep():
    # SGLang keeps the shared expert unsplit with DeepEP (tp_size=1): its weights per device are the
    # whole 3 x 7168 x 2048 FP8 per MoE layer, not an eighth of it
    m, f, hw = cols(expert_imbalance=1.0)
    dpep = float(weight_bytes_per_device(m, f, 8, 1, dp=8, ep=8))
    dp_only = float(weight_bytes_per_device(m, f, 8, 1, dp=8))
    assert dpep - dp_only == pytest.approx(MOE_LAYERS * 3 * H * 2048 * (1 - 1 / 8))


@pytest.mark.parametrize("args,needle", [
    (["deepseek-r1", "--hw", "h200", "--dp", "8", "--ep", "8", "--kv-predict", "llama-3.2-1b"],
     "--kv-predict with --dp, --ep, --mtp, --images or --prefix-hit: not modelled together"),
    (["deepseek-r1", "--hw", "h200", "--tp", "8", "--mtp", "40"], "--mtp 40: expected at most 32"),
    (["bert-base", "--hw", "h100", "--mtp", "1"], "--mtp 1: bert-base is an encoder"),
])
def test_combinations_that_are_refused(run_cli, args, needle):
    code, _, err = run_cli("estimate", *args)
    assert code == 2 and needle in err and "Traceback" not in err


def test_expert_imbalance_without_ep_is_noted(run_cli):
    code, out, err = run_cli("estimate", "deepseek-r1", "--hw", "h200", "--tp", "8", "--fmt", "fp8",
                             "--expert-imbalance", "1.5")
    assert code == 0 and "--expert-imbalance 1.5: applies to expert parallelism (--ep > 1); ignored" in err


def test_serve_load_infers_the_replica_from_dp_and_ep():
    from costmodel.serving import serve_load

    d = serve_load("deepseek-r1", "h200", "fp8", concurrency=32, dp=8, ep=8)
    assert (d["tp"], d["dp"], d["ep"], d["replicas"]) == (8, 8, 8, 1)
