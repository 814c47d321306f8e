"""Time of one training step on one device, by phase (arrays broadcast over layouts).

    compute   = linear FLOPs / (peak(unit) · e · scale(unit) · w/(w + w½)) + attention FLOPs / (peak(bf16) · e)
                (attention runs in 16 bits in FP8/FP4 recipes; e = compute efficiency; expert GEMMs · moe_scale)
    bubble    = compute · (pp − 1) / m                        1F1B pipeline, m micro-batches (Narayanan et al. 2021)
    tp        = 4 ring all-reduces of b·s·h·2 bytes per layer and micro-batch (2 forward, 2 backward; Megatron-LM
                with sequence parallelism moves the same bytes as reduce-scatter + all-gather), +2 with full recompute
    cp        = keys and values of the other ranks, forward, and their gradients, backward, per layer
    ep        = 4 all-to-alls per MoE layer (dispatch, combine; forward and backward) of each token's h · 2 bytes to the
                ranks and domains holding its top-k experts
    pp        = activation send and gradient receive per micro-batch and stage boundary
    dp        = gradient reduce-scatter + parameter all-gather (ZeRO-1/2: 2 · 2 bytes per parameter; ZeRO-3 also
                gathers the parameters again for the backward: 3 · 2 bytes), overlapped with the backward pass
                (Megatron-LM --overlap-grad-reduce): only what exceeds it adds
    optimizer = Adam over the device's shard of the parameters, memory-bound: 16 bytes read, 14 written each
Collectives run at the scale-up link's per-direction bandwidth inside one scale-up domain and at the
device's scale-out (NIC) bandwidth across domains, times comm_efficiency (ring: 2(n−1)/n of the bytes).
"""
from __future__ import annotations

import numpy as np

ACT_BYTES = 2.0  # 16-bit activations and gradients on the wire


def _link(hw, group_span):
    """Per-direction bandwidth of a collective whose group spans `group_span` consecutive devices."""
    inside = np.asarray(group_span, dtype=float) <= (hw.scale_up_domain or 1)
    up = (hw.interconnect_bandwidth or 0.0) / 2.0
    out = hw.scale_out_bandwidth or up or 1.0
    return np.where(inside & (up > 0), up, out)


def _all_to_all(token_bytes, top_k, group, hw, eff):
    """Dispatch (or combine) of one token's `token_bytes` to the ranks of its top-k experts over `group`
    ranks. Inside a scale-up domain of D devices it goes to each remote rank holding one of its experts,
    (D−1)(1 − (1 − 1/g)^k) of them; across domains once per remote domain, (n−1)(1 − (1 − 1/n)^k) of the
    n = g/D domains, then forwarded over the scale-up links (DeepEP's internode kernels: 'forwarding data
    from NVLink domain to RDMA domain', github.com/deepseek-ai/DeepEP README)."""
    g = np.asarray(group, dtype=float)
    dom = np.minimum(float(hw.scale_up_domain or 1), g)
    n = np.maximum(g / dom, 1.0)
    up = (hw.interconnect_bandwidth or 0.0) / 2.0 or (hw.scale_out_bandwidth or 1.0)
    out = hw.scale_out_bandwidth or up
    local = (dom - 1) * (1 - (1 - 1 / g) ** top_k)
    remote = (n - 1) * (1 - (1 - 1 / n) ** top_k)
    return np.where(g > 1, token_bytes * (local / up + remote / out) / eff, 0.0)


def _ring(nbytes, n, bw, eff):
    n = np.asarray(n, dtype=float)
    return np.where(n > 1, 2.0 * (n - 1) / n * nbytes / (bw * eff), 0.0)


def step_phases(shape, hw, eff, unit: str, seq, global_batch, micro_batch, tp, pp, cp, ep, dp, zero,
                full_recompute) -> dict:
    """Seconds per step by phase, and the FLOPs behind them (per device)."""
    from costmodel.analyses.training.flops import executed_flops_per_token, model_flops_per_token
    from costmodel.analyses.training.memory import params_per_device

    seq, gb, b = (np.asarray(x, dtype=float) for x in (seq, global_batch, micro_batch))
    tp, pp, cp, ep, dp = (np.asarray(x, dtype=float) for x in (tp, pp, cp, ep, dp))
    devices = tp * pp * cp * dp
    micro = gb / (dp * b)  # micro-batches per pipeline per step
    tokens = gb * seq  # per step, all devices
    linear, attn = executed_flops_per_token(shape, seq, full_recompute)
    expert_share = shape.expert_active / shape.matmul_active if shape.matmul_active else 0.0
    w = shape.hidden / tp
    shape_eff = w / (w + eff.width_half)
    low = eff.compute_efficiency * eff.scale(unit) * shape_eff
    lin_rate = hw.peaks[unit] * low / (1.0 - expert_share + expert_share / eff.moe_scale)
    attn_rate = hw.peaks["bf16" if "bf16" in hw.peaks else "fp16"] * eff.compute_efficiency
    compute = tokens / devices * (linear / lin_rate + attn / attn_rate)
    bubble = compute * (pp - 1.0) / micro
    c = eff.comm_efficiency
    mb_bytes = b * seq / cp * shape.hidden * ACT_BYTES
    layers_here = shape.layers / pp
    n_ar = 4.0 + 2.0 * np.asarray(full_recompute, dtype=float)
    t_tp = layers_here * micro * n_ar * _ring(mb_bytes, tp, _link(hw, tp), c)
    kv_bytes = b * seq / cp * shape.kv_width * ACT_BYTES
    t_cp = layers_here * micro * 2.0 * (cp - 1) * kv_bytes / (_link(hw, tp * cp) * c)
    moe_layers = layers_here if shape.is_moe else 0.0
    tokens_mb = b * seq / cp / tp  # tokens one rank dispatches per micro-batch (sequence-parallel shards)
    t_ep = moe_layers * micro * 4.0 * tokens_mb * _all_to_all(shape.hidden * ACT_BYTES, shape.top_k,
                                                               np.where(ep > 1, ep * tp, 1.0), hw, c)
    t_pp = np.where(pp > 1, 2.0 * micro * mb_bytes / tp / (_link(hw, devices) * c), 0.0)
    p_dev = params_per_device(shape, tp, pp, ep)
    d = dp * cp
    dp_bytes = np.where(np.asarray(zero) >= 3, 3.0, 2.0) * ACT_BYTES * p_dev
    t_dp = _ring(dp_bytes / 2.0, d, _link(hw, devices), c)  # reduce-scatter + all-gather: one ring's bytes each
    backward = compute * 2.0 / 3.0
    t_dp_exposed = np.maximum(t_dp - backward, 0.0)
    shard = p_dev / np.where(np.asarray(zero) >= 1, d, 1.0)
    t_opt = shard * 30.0 / (hw.memory_bandwidth * eff.memory_efficiency)
    total = compute + bubble + t_tp + t_cp + t_ep + t_pp + t_dp_exposed + t_opt
    return {"compute_s": compute, "bubble_s": bubble, "tp_comm_s": t_tp, "cp_comm_s": t_cp, "ep_comm_s": t_ep,
            "pp_comm_s": t_pp, "dp_comm_s": t_dp, "dp_exposed_s": t_dp_exposed, "optimizer_s": t_opt,
            "step_s": total, "tokens_per_step": tokens + 0 * total, "devices": devices + 0 * total,
            "microbatches": micro + 0 * total,
            "model_flops_per_token": model_flops_per_token(shape, seq) + 0 * total,
            "executed_flops_per_token": linear + attn + 0 * total}
