"""Memory per device as engines allocate it: weights, KV pool, activations, runtime; max batch.

  weights     W = (linear params · w_bits + embeddings · emb_bits + head · head_bits
                   + norms/biases/router and a VLM's vision tower · 16) / 8 / (tp · pp); under DP attention (dp groups of
                  tp/dp ranks) all but the MLP and expert weights shard over tp/dp only
  KV per seq    = (on the tp/dp ranks of its attention group, which holds B/dp of the sequences)
                  tokens rounded up to the engine's block · layers/pp · KV elements per token
                  per layer · (kv heads on this rank / kv heads) · kv_bits/8; sliding-window
                  layers hold min(tokens, window) when the engine pages them separately, chunked
                  local layers min(tokens, chunk) (vLLM ChunkedLocalAttentionSpec); layers
                  reusing an earlier layer's KV hold none; recurrent layers (Gated DeltaNet, Mamba)
                  hold a state of constant size instead (vLLM's hybrid allocator and SGLang's
                  mamba pool draw it from the same memory)
  activations A = token budget per step (prefill chunk) · per-token working set (logits
                  included in the budget's working set): engines size it for their budget (vLLM's profile run at max_num_batched_tokens, TRT-LLM's
                  max_num_tokens, llama.cpp's n_ubatch)
  KV pool       = f · (C − W − s·A − R)  when the engine's fraction f applies to free memory
                                           (TensorRT-LLM kv_cache_free_gpu_mem_fraction)
                = f · C − W − s·A − R    when it applies to total memory (vLLM
                                           gpu_memory_utilization; SGLang with f = 1, s = 0 and
                                           its reserve in R; llama.cpp with f = 1)
  C is the capacity the runtime sees, R the engine's runtime memory (CUDA context, graphs,
  non-torch buffers), s = 1 when the engine counts its activation peak inside the budget.
Fits when the batch's KV (plus logits) fits the pool; `reserve` is R plus what the engine's
fraction leaves unused, so weights + KV + activations + reserve = C exactly at the limit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from costmodel.engine.backbone_ops import working_set_bytes
from costmodel.engine.elementwise import (as_float, ceil, clip, divide, floor, isfinite, maximum, minimum, ones_like,
                                         where)
from costmodel.engine.operators import group_batch
from costmodel.engine.truth import any_nonzero

GIB = float(1 << 30)


@dataclass(frozen=True)
class Memory:
    weights: np.ndarray
    kv_cache: np.ndarray  # KV of the batch in flight (what the sequences occupy)
    activations: np.ndarray
    reserve: np.ndarray  # runtime memory + what the engine's memory fraction leaves unused
    capacity: np.ndarray
    kv_pool: np.ndarray  # KV memory the engine allocates (preallocating engines: all of it)
    transient: np.ndarray | float = 0.0  # an encoder batch's working set beyond the activation budget

    @property
    def total(self) -> np.ndarray:
        return total_of(self.weights, self.kv_cache, self.activations, self.reserve)

    @property
    def fits(self) -> np.ndarray:
        return pool_fits(self.kv_cache, self.transient, self.kv_pool)


def total_of(weights, kv_cache, activations, reserve):
    """A device's memory: weights + KV + activations + reserve, left to right. Plain arithmetic on arrays or numbers
    (memory_kernels.py compiles it as it is)."""
    return weights + kv_cache + activations + reserve


def pool_fits(kv_cache, transient, kv_pool):
    """The batch's KV and an encoder batch's working set fit a pool that exists. Plain arithmetic on arrays or
    numbers (memory_kernels.py compiles it as it is)."""
    return (kv_cache + transient <= kv_pool) & (kv_pool > 0)


def runs(pool_ok, batch, max_len, one_long, kv_pool):
    """A configuration runs: it fits its pool (pool_fits), holds a sequence, and the engine's longest sequence
    (`one_long` bytes of KV, where the engine has a `max_len`) fits the pool too."""
    return pool_ok & (batch >= 1) & ((max_len <= 0) | (one_long <= kv_pool))


def batch_of(requested, bmax):
    """The batch evaluated: the requested one, or the largest that fits where the request is negative ("max")."""
    return where(requested < 0, bmax, requested)


def weight_bytes_total(m: dict, f: dict) -> np.ndarray:
    """Bytes of all weights of one model copy in the format."""
    head_bits = where(m["tied"] > 0, 0.0, f["head_bits"])
    return (m["p_linear"] * f["w_bits"] + m["p_embedding"] * f["emb_bits"]
            + m["p_lm_head"] * head_bits + (m["p_small"] + m.get("p_vision", 0.0)) * 16.0) / 8.0


def weight_bytes_per_device(m: dict, f: dict, tp, pp, dp=1.0, ep=1.0) -> np.ndarray:
    """Weights on one device: MLP and expert weights over all tp ranks, the rest (attention,
    recurrent mixers, embeddings, head, norms, router) over the tp/dp ranks of an attention group,
    shared experts whole under DP attention + EP. With `ep` not dividing E experts a rank holds
    ceil(E/ep) expert slots (redundant copies)."""
    tp = as_float(tp)
    ep = as_float(ep)
    dp = as_float(dp)
    E = maximum(m["experts"], 1.0)
    slots = ceil(E / ep - 1e-9) * ep / E
    # shared experts whole on every rank under the all-to-all (DP attention + EP; operators.py)
    shared = where((dp > 1) & (ep > 1), m.get("p_shared", 0.0), 0.0) * f["w_bits"] / 8.0
    mlp = (m["p_linear"] - m["p_mixer"] + (slots - 1) * m["p_experts"]) * f["w_bits"] / 8.0 - shared
    rest = weight_bytes_total(m, f) - (m["p_linear"] - m["p_mixer"]) * f["w_bits"] / 8.0
    return (mlp / tp + rest * dp / tp + shared) / pp


def kv_bytes_per_token_layer(m: dict, f: dict, tp, pp) -> np.ndarray:
    """KV bytes of one token in one layer's share on one device (GQA heads sharded over tp)."""
    shard = ceil(m["kv_heads"] / tp) / m["kv_heads"]
    # DSA's indexer keys (FP8 + scale per token) sit beside the latent, replicated like it
    return (m["kv_elems"] * shard * f["kv_bits"] / 8.0 + m["dsa_key_bytes"]) / pp * (1.0 - m["encoder"])


def kv_bytes_per_sequence(m: dict, f: dict, tokens, tp, pp, hw: dict) -> np.ndarray:
    """KV-cache bytes of one sequence of `tokens` on one device, in the engine's blocks."""
    tokens = as_float(tokens)
    block = maximum(hw["kv_block_tokens"], 1.0)
    paged = hw["window_kv_paged"] > 0
    full = ceil(tokens / block) * block
    window = where(m["window"] > 0, m["window"], np.inf)
    local = where(paged, ceil(minimum(tokens, window) / block) * block, full)
    chunk = where(m["chunk"] > 0, m["chunk"], np.inf)
    chunked = where(paged, ceil(minimum(tokens, chunk) / block) * block, full)
    kv = kv_bytes_per_token_layer(m, f, tp, pp) * (m["kv_global_layers"] * full + m["kv_local_layers"] * local
                                                   + m["kv_chunked_layers"] * chunked
                                                   # cross-attention keys and values of the request's images
                                                   + m["cross_layers"] * m["cross_tokens"])
    return kv + state_bytes_per_sequence(m, hw, tp, pp)


def state_bytes_per_sequence(m: dict, hw: dict, tp, pp) -> np.ndarray:
    """Recurrent state of one sequence on one device, whatever its length: per recurrent layer the
    scan state (the engine's state_bits: vLLM the model dtype, SGLang and llama.cpp FP32) and the
    convolution's last kernel-1 inputs (16-bit), heads split over tp."""
    per_layer = m["rec_state"] * hw["state_bits"] / 8.0 + m["rec_conv"] * maximum(m["rec_kernel"] - 1, 0.0) * 2.0
    return m["rec_layers"] * per_layer / as_float(tp) / pp


def activation_bytes_per_token(m: dict, f: dict, tp) -> np.ndarray:
    """Transient working set per token in flight: residual stream plus the widest projection."""
    tp = as_float(tp)
    gated = 1.0 + m["gated"]
    qkv = maximum(m["heads"] / tp * m["d_qk"] * (1 + m["q_gate"]) + 2 * ceil(m["kv_heads"] / tp) * m["head_dim"],
                     m["rec_in"] / tp)
    mlp = gated * maximum(m["i_dense"], m["top_k"] * m["i_expert"] + m["shared"] * m["i_shared"]) / tp
    return (2 * m["h"] + maximum(qkv, mlp)) * maximum(f["a_bits"], 16.0) / 8.0


def encoder_working_set(m: dict, f: dict, prompt, tp) -> np.ndarray:
    """Bytes one encoder sequence holds during its single forward pass (it keeps no KV): its tokens'
    working set (activation_bytes_per_token), or a vision backbone's widest point per image
    (engine/backbone_ops.working_set_bytes); 0 for decoders."""
    if not any_nonzero(m["encoder"] > 0):
        return 0.0 * (as_float(prompt) * m["encoder"] * as_float(tp) * f["a_bits"])
    per = as_float(prompt) * activation_bytes_per_token(m, f, tp)
    if "bb" in m and any_nonzero(m["bb"] > 0):
        per = where(m["bb"] > 0, working_set_bytes(m["bb"], prompt, maximum(f["a_bits"], 16.0) / 8.0), per)
    return where(m["encoder"] > 0, per, 0.0)


def activation_peak(m: dict, f: dict, hw: dict, tp) -> np.ndarray:
    """Activation memory the engine sets aside: its per-step token budget times the working set."""
    return hw["prefill_chunk_tokens"] * activation_bytes_per_token(m, f, tp)


def kv_pool(m: dict, f: dict, hw: dict, tp, pp, dp=1.0, ep=1.0) -> tuple[np.ndarray, np.ndarray]:
    """(KV pool bytes, unused headroom bytes) per device under the engine's memory policy."""
    C = hw["capacity"]
    W = weight_bytes_per_device(m, f, tp, pp, dp, ep)
    sA = hw["activations_in_budget"] * activation_peak(m, f, hw, as_float(tp) / dp)
    R = hw["runtime_overhead_bytes"]
    frac = hw["usable_memory_fraction"]
    of_free = hw["kv_pool_of_free"] > 0
    free = C - W - sA - R
    pool = where(of_free, frac * free, frac * C - W - sA - R)
    headroom = where(of_free, (1.0 - frac) * maximum(free, 0.0), (1.0 - frac) * C)
    return pool, headroom


@dataclass(frozen=True)
class SequenceMemory:
    """A configuration's memory that does not depend on its batch (per device): what one sequence of
    context + prompt + gen_held · gen tokens holds, and the pool, budget and reserve around it."""

    weights: np.ndarray
    kv: np.ndarray  # one sequence's KV on its attention group's ranks
    act: np.ndarray  # the activation budget counted in memory
    work: np.ndarray  # one encoder sequence's forward working set (0 for decoders)
    pool: np.ndarray
    reserve: np.ndarray
    capacity: np.ndarray


def sequence_memory(m: dict, f: dict, hw: dict, prompt, gen, context, tp, pp, gen_held=1.0, dp=1.0, ep=1.0,
                    pool=None) -> SequenceMemory:
    """footprint's terms that do not depend on the batch (`pool`: kv_pool's result where the caller has it)."""
    pool, headroom = kv_pool(m, f, hw, tp, pp, dp, ep) if pool is None else pool
    return SequenceMemory(*sequence_terms(m, f, hw, prompt, gen, context, tp, pp, gen_held, dp, ep, pool, headroom))


def sequence_terms(m: dict, f: dict, hw: dict, prompt, gen, context, tp, pp, gen_held, dp, ep, pool, headroom) -> tuple:
    """SequenceMemory's fields in its order, from the KV pool and its unused headroom (kv_pool's). Plain
    arithmetic on arrays or numbers (memory_kernels.py compiles it as it is)."""
    a_tp = as_float(tp) / dp
    tokens = as_float(context) + prompt + gen_held * as_float(gen)
    return (weight_bytes_per_device(m, f, tp, pp, dp, ep), kv_bytes_per_sequence(m, f, tokens, a_tp, pp, hw),
            hw["activations_in_budget"] * activation_peak(m, f, hw, a_tp), encoder_working_set(m, f, prompt, a_tp),
            pool, hw["runtime_overhead_bytes"] + headroom, hw["capacity"])


def batch_memory(s: SequenceMemory, batch, dp=1.0) -> Memory:
    """footprint of `batch` sequences from their SequenceMemory: the busiest attention group's
    ceil(batch/dp) sequences' KV; an encoder's batch runs in one forward pass, its working set beyond
    the activation budget taking free memory."""
    kv, over = batch_terms(s.kv, s.work, s.act, batch, dp)
    shape = _shape(s.weights, kv, s.pool, over)
    z = np.zeros(shape) if shape else 0.0 * ones_like(s.weights)  # one configuration: a number of its kind
    capacity = np.broadcast_to(s.capacity, shape) if shape else s.capacity
    return Memory(s.weights + z, kv + z, s.act + over + z, s.reserve + z, capacity + z, s.pool + z, over + z)


def batch_terms(kv, work, act, batch, dp) -> tuple:
    """(the batch's KV: its busiest attention group's sequences times one sequence's `kv`, the working set of an
    encoder batch beyond the activation budget `act`). Plain arithmetic on arrays or numbers (memory_kernels.py)."""
    return group_batch(batch, dp) * kv, maximum(as_float(batch) * work - act, 0.0)


def _shape(*xs) -> tuple:
    """The shape of xs added together, without adding them (numbers: ())."""
    shapes = [x.shape for x in xs if type(x) is np.ndarray]
    return np.broadcast_shapes(*shapes) if shapes else ()


def footprint(m: dict, f: dict, hw: dict, batch, prompt, gen, context, tp, pp, gen_held=1.0, dp=1.0,
              ep=1.0, pool=None) -> Memory:
    """Memory per device for `batch` sequences of context + prompt + gen_held · gen tokens
    (gen_held < 1 at maximum load, where sequences hold part of their output on average); under
    DP attention a device holds the KV of its group's ceil(batch/dp) sequences. `pool`: kv_pool's
    result where the caller has it."""
    return batch_memory(sequence_memory(m, f, hw, prompt, gen, context, tp, pp, gen_held, dp, ep, pool), batch, dp)


def max_batch(m: dict, f: dict, hw: dict, prompt, gen, context, tp, pp, dp=1.0, ep=1.0, pool=None) -> np.ndarray:
    """Largest batch whose KV fits the engine's pool (0 if none), capped by the engine's limit on
    concurrent sequences (per attention group: dp groups hold dp times as many). Each sequence holds
    the KV of its context + prompt + `kv_reserved_gen_fraction` of its output (1 = reserved up front)."""
    pool, _ = kv_pool(m, f, hw, tp, pp, dp, ep) if pool is None else pool
    with np.errstate(divide="ignore", invalid="ignore"):
        return batch_limit(m, f, hw, prompt, gen, context, tp, pp, dp, pool)


def batch_limit(m: dict, f: dict, hw: dict, prompt, gen, context, tp, pp, dp, pool):
    """max_batch for a KV pool of `pool` bytes. Plain arithmetic on arrays or numbers (memory_kernels.py compiles it
    as it is; the caller holds np.errstate)."""
    tokens = as_float(context) + prompt + hw["kv_reserved_gen_fraction"] * as_float(gen)
    a_tp = as_float(tp) / dp
    per_seq = kv_bytes_per_sequence(m, f, tokens, a_tp, pp, hw)
    # an encoder holds no KV: its batch's forward working set fills the pool and the activation budget
    work = encoder_working_set(m, f, prompt, a_tp)
    room = pool + where(work > 0, hw["activations_in_budget"] * activation_peak(m, f, hw, a_tp), 0.0)
    b = floor(divide(maximum(room, 0.0), per_seq + work))
    b = where(isfinite(b), b, 1e9)  # no KV and no working set: bounded by the engine's limit
    return clip(b, 0.0, hw["max_batch"]) * dp


def batch_free_terms(m: dict, f: dict, hw: dict, prompt, gen, context, tp, pp, dp, ep, held, pool, headroom) -> tuple:
    """A configuration's memory terms that do not depend on its batch: (the largest batch (max_batch), the seven
    fields of SequenceMemory holding `held` of the output, the engine's longest sequence and its KV bytes, the
    pool in tokens (pool_in_tokens), one sequence's recurrent state), from the KV pool and its headroom
    (kv_pool's). Plain arithmetic on arrays or numbers (memory_kernels.py compiles it as it is; the caller holds
    np.errstate)."""
    a_tp = tp / dp
    max_len = hw["max_model_len"]
    full_len = where(max_len > 0, max_len, context + prompt + gen)
    return (batch_limit(m, f, hw, prompt, gen, context, tp, pp, dp, pool),
            *sequence_terms(m, f, hw, prompt, gen, context, tp, pp, held, dp, ep, pool, headroom),
            full_len, kv_bytes_per_sequence(m, f, full_len, a_tp, pp, hw), pool_tokens(m, f, hw, pool, a_tp, pp),
            state_bytes_per_sequence(m, hw, a_tp, pp))


def pool_in_tokens(m: dict, f: dict, hw: dict, pool, tp, pp) -> np.ndarray:
    """The pool in tokens as engines print it at start-up: pool / KV bytes of one token over all
    layers, in whole blocks (vLLM "GPU KV cache size: N tokens" = blocks · block size with
    blocks = pool // page // layers; SGLang max_total_num_tokens = pool // cell size). Engines count
    sliding-window layers like full ones here, so a hybrid model's real capacity is larger; only
    attention layers count (recurrent layers hold no per-token cache)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return pool_tokens(m, f, hw, pool, tp, pp)


def pool_tokens(m: dict, f: dict, hw: dict, pool, tp, pp):
    """pool_in_tokens. Plain arithmetic on arrays or numbers (memory_kernels.py compiles it as it is; the caller holds
    np.errstate)."""
    per_tok = kv_bytes_per_token_layer(m, f, tp, pp) * m["kv_layers"]
    block = maximum(hw["kv_block_tokens"], 1.0)
    t = floor(divide(maximum(pool, 0.0), per_tok) / block) * block
    return where(isfinite(t), t, 0.0)
