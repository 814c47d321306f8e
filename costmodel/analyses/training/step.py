"""Time of one training step on one device, by phase (arrays broadcast over layouts).

    compute   = linear FLOPs / (peak(unit) · e · scale(unit) · w/(w + w½)) + attention FLOPs / (peak(bf16) · e)
                (attention runs in 16 bits in FP8/FP4 recipes; e = compute efficiency; expert GEMMs · moe_scale);
                split 2 : 4 : 2 into forward, backward and recomputed forward (full recompute), by their FLOPs;
                with --fmt FWD:BWD the forward GEMMs run on one unit and the input- and weight-gradient GEMMs on another
    bubble    = compute · (pp − 1) / (m · v)                  1F1B pipeline, m micro-batches, v virtual stages per device
                                                              (interleaved schedule; Narayanan et al. 2021)
    tp        = 4 ring all-reduces of b·s·h·2 bytes per layer and micro-batch (2 forward, 2 backward; Megatron-LM
                with sequence parallelism moves the same bytes as reduce-scatter + all-gather), +2 with full recompute
    cp        = the keys and values of the other cp − 1 ranks forward and their gradients backward, per attention
                layer (heads split over tp)
    ep        = 4 all-to-alls per MoE layer (dispatch, combine; forward and backward) of each token's h · 2 bytes to
                the ranks and domains holding its top-k experts
    pp        = activation send and gradient receive per micro-batch and stage boundary (v times as many interleaved)
    dp        = ZeRO 0-2: gradient reduce-scatter in fp32 (Megatron-LM reduces bf16 runs' gradients in fp32) and
                bf16 parameter all-gather, each once per step; only the last micro-batch's backward (resp. the first
                one's forward) hides them (--overlap-grad-reduce, --overlap-param-gather).
                ZeRO-3 / FSDP: per micro-batch two bf16 all-gathers (forward, backward) and an fp32 reduce-scatter,
                each hidden under that micro-batch's compute. Expert weights sync over their own data-parallel group.
    optimizer = Adam over the device's shard of the parameters, memory-bound: 16 bytes read, 14 written each
Collectives as the inference model prices them (engine/operators.cross_domain): inside the scale-up domain at
the link's per-direction rate; a ring spanning domains at min(link, D · NIC) (NCCL runs one ring per NIC); an
all-to-all's cross-domain bytes over the rank's own NIC. A device that states no domain reaches all its peers
over its link; one that states no NIC crosses domains at its link rate; comm_efficiency scales all of it.
"""
from __future__ import annotations

import numpy as np

ACT_BYTES = 2.0  # 16-bit activations, parameters and activation gradients on the wire
GRAD_BYTES = 4.0  # gradients reduced in fp32


def _rates(hw):
    """(per-direction scale-up rate, NIC rate, domain size) of a device. One that states neither link (an Apple or
    Jetson device: train runs it alone, train.py refuses more) has no collective to time: infinite rates, so its
    groups of one take 0 s (they were 0/0 = NaN, an internal error)."""
    up = (hw.interconnect_bandwidth or 0.0) / 2.0
    out = hw.scale_out_bandwidth or up
    up = up or out
    if not up:
        up = out = np.inf
    return up, out, float(hw.scale_up_domain or np.inf)


def _ring(nbytes, n, hw, eff):
    """Ring all-reduce (2(n−1)/n of the bytes) over n consecutive ranks; a reduce-scatter or all-gather is half."""
    up, out, dom = _rates(hw)
    n = np.asarray(n, dtype=float)
    bw = np.where(n > dom, np.minimum(up, out * (dom if np.isfinite(dom) else 1.0)), up)
    return np.where(n > 1, 2.0 * (n - 1) / np.maximum(n, 1) * nbytes / (bw * eff), 0.0)


def _all_to_all(token_bytes, top_k, group, hw, eff):
    """Dispatch (or combine) of one token's `token_bytes` to the ranks of its top-k experts over `group`
    ranks. Inside a scale-up domain of D devices it goes to each remote rank holding one of its experts,
    (D−1)(1 − (1 − 1/g)^k) of them; across domains once per remote domain, (n−1)(1 − (1 − 1/n)^k) of the
    n = g/D domains, then forwarded over the scale-up links (DeepEP's internode kernels: 'forwarding data
    from NVLink domain to RDMA domain', github.com/deepseek-ai/DeepEP README)."""
    up, out, dom = _rates(hw)
    g = np.asarray(group, dtype=float)
    d = np.minimum(dom, g)
    n = np.maximum(g / d, 1.0)
    local = (d - 1) * (1 - (1 - 1 / np.maximum(g, 1)) ** top_k)
    remote = (n - 1) * (1 - (1 - 1 / n) ** top_k)
    return np.where(g > 1, token_bytes * (local / up + remote / out) / eff, 0.0)


def step_phases(shape, hw, eff, unit, seq, global_batch, micro_batch, tp, pp, cp, ep, dp, zero,
                full_recompute, mlp_speedup=1.0, vpp=1) -> dict:
    """Seconds per step by phase, and the FLOPs behind them (per device)."""
    from costmodel.analyses.training.flops import executed_flops_per_token, model_flops_per_token
    from costmodel.analyses.training.memory import expert_dp, param_split
    from costmodel.analyses.training.precision import as_pair

    seq, gb, b = (np.asarray(x, dtype=float) for x in (seq, global_batch, micro_batch))
    tp, pp, cp, ep, dp = (np.asarray(x, dtype=float) for x in (tp, pp, cp, ep, dp))
    zero3 = np.asarray(zero) >= 3
    full = np.asarray(full_recompute, dtype=float)
    devices = tp * pp * cp * dp
    micro = gb / (dp * b)  # micro-batches per pipeline per step
    tokens = gb * seq  # per step, all devices
    linear, attn = executed_flops_per_token(shape, seq, full_recompute)
    expert_share = shape.expert_active / shape.matmul_active if shape.matmul_active else 0.0
    w = shape.hidden / tp
    unit_f, unit_b = as_pair(unit)

    def lin_rate(u):
        low = eff.compute_efficiency * eff.scale(u) * w / (w + eff.width_half)
        return hw.peaks[u] * low / (1.0 - expert_share + expert_share / eff.moe_scale)

    attn_rate = hw.peaks["bf16" if "bf16" in hw.peaks else "fp16"] * eff.compute_efficiency
    mlp_share = shape.mlp_active / shape.matmul_active if shape.matmul_active else 0.0
    fwd_share = (2.0 + 2.0 * np.asarray(full_recompute, dtype=float)) / (6.0 + 2.0 * np.asarray(full_recompute, dtype=float))
    # forward (and recomputed forward) GEMMs on the forward precision's units, the two backward ones on the backward's
    linear_time = (linear * (1.0 - mlp_share + mlp_share / mlp_speedup)  # sparse MLP GEMMs (--sparsity)
                   * (fwd_share / lin_rate(unit_f) + (1.0 - fwd_share) / lin_rate(unit_b)))
    compute = tokens / devices * (linear_time + attn / attn_rate)
    per_micro = compute / micro
    vpp = np.asarray(vpp, dtype=float)
    bubble = compute * (pp - 1.0) / (micro * vpp)  # interleaved 1F1B: v virtual stages shrink it v-fold
    c = eff.comm_efficiency
    mb_bytes = b * seq / cp * shape.hidden * ACT_BYTES
    t_tp = shape.layers / pp * micro * (4.0 + 2.0 * full) * _ring(mb_bytes, tp, hw, c)
    kv_bytes = b * seq / cp * shape.kv_width / tp * ACT_BYTES
    up, out, dom = _rates(hw)
    t_cp = (shape.attention_layers / pp * micro * (2.0 + full) * (cp - 1) * kv_bytes
            / np.where(tp * cp > dom, np.minimum(up, out), up) / c)
    tokens_mb = b * seq / cp / tp  # tokens one rank dispatches per micro-batch (sequence-parallel shards)
    t_ep = (shape.moe_layers / pp * micro * (4.0 + 2.0 * full) * tokens_mb
            * _all_to_all(shape.hidden * ACT_BYTES, shape.top_k, ep, hw, c))
    t_pp = np.where(pp > 1, 2.0 * micro * vpp * mb_bytes / tp / (up * c), 0.0)  # v times the boundaries
    p_dense, p_expert = param_split(shape, tp, pp, ep)
    d, d_e = dp * cp, expert_dp(tp, cp, dp, ep)
    # one reduce-scatter / all-gather of P parameters of `width` bytes over n ranks: half a ring all-reduce
    half = lambda width, n: _ring(width * p_dense, d, hw, c) / 2.0 + _ring(width * p_expert, n, hw, c) / 2.0  # noqa: E731
    rs, ag = half(GRAD_BYTES, d_e), half(ACT_BYTES, d_e)
    t_dp = np.where(zero3, micro * (2.0 * ag + rs), rs + ag)
    exposed = np.where(zero3, micro * np.maximum(2.0 * ag + rs - per_micro, 0.0),
                       np.maximum(rs - per_micro * 2.0 / 3.0, 0.0) + np.maximum(ag - per_micro / 3.0, 0.0))
    shard = p_dense / np.where(np.asarray(zero) >= 1, d, 1.0) + p_expert / np.where(np.asarray(zero) >= 1, d_e, 1.0)
    t_opt = shard * 30.0 / (hw.memory_bandwidth * eff.memory_efficiency)
    total = compute + bubble + t_tp + t_cp + t_ep + t_pp + exposed + t_opt
    z = 0 * total
    passes = 6.0 + 2.0 * full  # forward 2, backward 4, a recomputed forward 2 (per FLOP unit)
    return {"compute_s": compute, "forward_s": compute * 2.0 / passes, "backward_s": compute * 4.0 / passes,
            "recompute_s": compute * 2.0 * full / passes, "bubble_s": bubble, "tp_comm_s": t_tp, "cp_comm_s": t_cp, "ep_comm_s": t_ep,
            "pp_comm_s": t_pp, "dp_comm_s": t_dp + z, "dp_exposed_s": exposed + z, "optimizer_s": t_opt + z,
            "step_s": total, "tokens_per_step": tokens + z, "devices": devices + z, "microbatches": micro + z,
            "model_flops_per_token": model_flops_per_token(shape, seq) + z,
            "executed_flops_per_token": linear + attn + z}
