"""Memory per device of a training run: weights, gradients, optimizer states, activations.

Mixed precision with Adam (Megatron-LM docs/source/api-guide/dist_optimizer.md, table 'bf16 param,
fp32 grads'): 2 bytes of bf16 weight, 4 of fp32 gradient, 12 of fp32 master weight and two Adam
moments = 18 bytes per parameter; the distributed optimizer (ZeRO-1) keeps 6 + 12/d. ZeRO-2 also
shards the gradients (2 + 16/d), ZeRO-3 / FSDP everything (18/d) (Rajbhandari et al. 2020, fig. 1).
Activations per layer and micro-batch of b sequences of s tokens with tensor parallelism t and
sequence parallelism (Korthikanti et al. 2022, Table 2): 34 · s · b · h / t bytes with the attention
scores recomputed (selective; FlashAttention never stores them either, so `none` costs the same),
2 · s · b · h / t with full recomputation (each layer's input) plus one layer's full set while it is
recomputed. 1F1B keeps min(pp, m) micro-batches in flight on the first stage (Narayanan et al. 2021), which
holds ceil(L / pp) layers when pp does not divide them (frameworks place the remainder unevenly; step
time assumes they balance it).
"""
from __future__ import annotations

import numpy as np

BYTES_PER_PARAM = {"weights": 2.0, "grads": 4.0, "optimizer": 12.0}


def params_per_device(shape, tp, pp, ep):
    """Parameters one device holds: dense weights over tp x pp, routed experts over ep x pp (and tp
    when the experts are not expert-parallel)."""
    dense, expert = param_split(shape, tp, pp, ep)
    return dense + expert


def param_split(shape, tp, pp, ep):
    """(dense, routed-expert) parameters on one device."""
    tp, pp, ep = (np.asarray(x, dtype=float) for x in (tp, pp, ep))
    dense = shape.params - shape.expert_params
    return dense / (tp * pp), shape.expert_params / (pp * ep * np.where(ep > 1, 1.0, tp))


def expert_dp(tp, cp, dp, ep):
    """Data-parallel degree of the expert weights: the dp x cp x tp ranks of a stage over the ep that shard
    them (Megatron-LM's expert data parallelism); the dense weights' is dp x cp."""
    tp, cp, dp, ep = (np.asarray(x, dtype=float) for x in (tp, cp, dp, ep))
    return np.where(ep > 1, dp * cp * tp / ep, dp * cp)


def state_bytes(params, zero, d):
    """(weights, gradients, optimizer states) bytes for `params` per device, sharded over d by ZeRO stage."""
    zero, d = np.asarray(zero), np.asarray(d, dtype=float)
    w = BYTES_PER_PARAM["weights"] * params / np.where(zero >= 3, d, 1.0)
    g = BYTES_PER_PARAM["grads"] * params / np.where(zero >= 2, d, 1.0)
    o = BYTES_PER_PARAM["optimizer"] * params / np.where(zero >= 1, d, 1.0)
    return w, g, o


def activation_bytes(shape, seq, micro_batch, tp, pp, cp, microbatches, full_recompute):
    """Activations held by the busiest (first) pipeline stage, plus the fp32 logits of the last."""
    s = np.asarray(seq, dtype=float) / np.asarray(cp, dtype=float)
    tp = np.asarray(tp, dtype=float)
    per_layer_full = 34.0 * s * micro_batch * shape.hidden / tp
    per_layer = np.where(np.asarray(full_recompute, dtype=bool), 2.0 * s * micro_batch * shape.hidden / tp,
                         per_layer_full)
    in_flight = np.minimum(np.asarray(pp, dtype=float), np.asarray(microbatches, dtype=float))
    layers_here = np.ceil(shape.layers / np.asarray(pp, dtype=float))  # the first stage takes the remainder
    acts = layers_here * in_flight * per_layer + np.where(np.asarray(full_recompute, dtype=bool), per_layer_full, 0.0)
    logits = 4.0 * s * micro_batch * shape.vocab / tp
    return acts + logits
