"""Memory footprint per device: weights, KV cache, activations, runtime reserve; max batch.

  weights     = (linear params · w_bits + embeddings · emb_bits + head · head_bits
                 + norms/biases/router · 16) / 8 / (tp · pp)
  KV cache    = batch · tokens · layers/pp · KV elements per token per layer · (Hk/kv_heads)
                · kv_bits/8, tokens capped at the window on sliding-window layers
  activations = min(batch · prompt, prefill chunk) · per-token working set + batch · logits
  reserve     = capacity · (1 - usable fraction)   (runtime, allocator, OS share)
Fits when the sum is at most the capacity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Memory:
    weights: np.ndarray
    kv_cache: np.ndarray
    activations: np.ndarray
    reserve: np.ndarray
    capacity: np.ndarray

    @property
    def total(self) -> np.ndarray:
        return self.weights + self.kv_cache + self.activations + self.reserve

    @property
    def fits(self) -> np.ndarray:
        return self.total <= self.capacity


def weight_bytes_total(m: dict, f: dict) -> np.ndarray:
    """Bytes of all weights of one model copy in the format."""
    head_bits = np.where(m["tied"] > 0, 0.0, f["head_bits"])
    return (m["p_linear"] * f["w_bits"] + m["p_embedding"] * f["emb_bits"]
            + m["p_lm_head"] * head_bits + m["p_small"] * 16.0) / 8.0


def kv_bytes_per_sequence(m: dict, f: dict, tokens, tp, pp) -> np.ndarray:
    """KV-cache bytes of one sequence of `tokens` on one device."""
    shard = np.ceil(m["kv_heads"] / tp) / m["kv_heads"]
    local = np.minimum(tokens, np.where(m["window"] > 0, m["window"], tokens))
    elems = m["kv_elems"] * (m["global_layers"] * tokens + m["local_layers"] * local)
    return elems * shard * f["kv_bits"] / 8.0 / pp * (1.0 - m["encoder"])


def activation_bytes_per_token(m: dict, f: dict, tp) -> np.ndarray:
    """Transient working set per token in flight: residual stream plus the widest projection."""
    tp = np.asarray(tp, dtype=float)
    gated = 1.0 + m["gated"]
    qkv = m["heads"] / tp * m["d_qk"] + 2 * np.ceil(m["kv_heads"] / tp) * m["head_dim"]
    mlp = gated * np.maximum(m["i_dense"], m["top_k"] * m["i_expert"] + m["shared"] * m["i_shared"]) / tp
    return (2 * m["h"] + np.maximum(qkv, mlp)) * np.maximum(f["a_bits"], 16.0) / 8.0


def footprint(m: dict, f: dict, hw: dict, batch, prompt, gen, context, tp, pp) -> Memory:
    """Memory per device for `batch` sequences of context+prompt+gen tokens."""
    B = np.asarray(batch, dtype=float)
    tokens = np.asarray(context, dtype=float) + prompt + gen
    weights = weight_bytes_total(m, f) / (np.asarray(tp, dtype=float) * pp)
    kv = B * kv_bytes_per_sequence(m, f, tokens, tp, pp)
    in_flight = np.minimum(B * np.maximum(prompt, 1), hw["prefill_chunk_tokens"])
    act = in_flight * activation_bytes_per_token(m, f, tp) + B * m["head_out"] / tp * 4.0
    reserve = hw["capacity"] * (1.0 - hw["usable_memory_fraction"])
    cap = np.broadcast_to(hw["capacity"], np.shape(weights + kv))
    return Memory(weights + 0 * kv, kv + 0 * weights, act + 0 * kv, reserve + 0 * kv, cap)


def max_batch(m: dict, f: dict, hw: dict, prompt, gen, context, tp, pp) -> np.ndarray:
    """Largest batch whose weights + KV + activations + reserve fit one device (0 if none),
    capped by the engine's limit on concurrent sequences. Each sequence holds the KV of its
    context + prompt + `kv_reserved_gen_fraction` of its output (1 = reserved up front)."""
    tokens = np.asarray(context, dtype=float) + prompt + hw["kv_reserved_gen_fraction"] * np.asarray(gen, dtype=float)
    free = hw["capacity"] * hw["usable_memory_fraction"] - weight_bytes_total(m, f) / (np.asarray(tp, dtype=float) * pp)
    per_seq = kv_bytes_per_sequence(m, f, tokens, tp, pp) + m["head_out"] / tp * 4.0
    apt = activation_bytes_per_token(m, f, tp)
    chunk = hw["prefill_chunk_tokens"]
    p = np.maximum(prompt, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        capped = np.floor((free - chunk * apt) / per_seq)  # prefill working set at the chunk cap
        small = np.floor(free / (per_seq + p * apt))  # batch·prompt below the chunk
    # weights + B·per_seq + min(B·p, chunk)·apt grows with B: if the batch at the chunk cap still
    # reaches the cap it is the answer, otherwise the largest batch is below the cap
    b = np.where(capped * p >= chunk, capped, small)
    b = np.where(np.isfinite(b), b, 1e9)  # encoders hold no KV: bounded only by activations
    return np.clip(b, 0.0, hw["max_batch"])
