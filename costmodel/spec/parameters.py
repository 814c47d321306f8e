"""Parameter counts from an architecture, split by the precision they are stored in.

Counts follow the HuggingFace module layout: embeddings (+ learned positions, token types,
ViT patch projection), per attention layer q/k/v/o (or MLA's low-rank projections), per recurrent
layer its mixer (spec/mixers.py), MLP or experts
plus router, norms and biases, final norm, LM head unless tied, BERT pooler / ViT classifier.
"""
from __future__ import annotations

from costmodel.spec.mixers import mixer_params
from costmodel.spec.model import Model, vision_encoder


def attention_params(m: Model) -> int:
    """Matrix weights of one layer's attention block."""
    h, H = m.hidden_size, m.heads
    indexer = m.sparse_attention.params(h, m.mla.q_lora_rank if m.mla else 0) if m.sparse_attention else 0
    if m.mla is not None:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        q = h * a.q_lora_rank + a.q_lora_rank * H * qk if a.q_lora_rank else h * H * qk
        kv = h * (a.kv_lora_rank + a.qk_rope_head_dim) + a.kv_lora_rank * H * (a.qk_nope_head_dim + a.v_head_dim)
        return q + kv + H * a.v_head_dim * h + indexer
    d = m.head_dim
    q = h * H * d * (2 if m.attention_output_gate else 1)  # the gate doubles q_proj (Qwen3-Next)
    return q + 2 * h * m.kv_heads * d + H * d * h + indexer


def kv_projection_params(m: Model) -> int:
    """K and V projections of one layer, absent where a layer reuses another layer's KV."""
    return 0 if m.mla is not None else 2 * m.hidden_size * m.kv_heads * m.head_dim


def recurrent_matmul_params(m: Model) -> int:
    """One recurrent-mixer layer's matrices: input, inner and output projections."""
    mx = m.recurrent_mixer
    return 0 if mx is None else m.hidden_size * mx.in_width + mx.inner_weights + mx.out_in * m.hidden_size


def recurrent_small_params(m: Model) -> int:
    """One recurrent-mixer layer's convolution and per-channel vectors (kept in 16 bits)."""
    mx = m.recurrent_mixer
    return 0 if mx is None else mixer_params(mx) - mx.inner_weights


def attention_bias_params(m: Model) -> int:
    if m.attention_bias == "none" or m.mla is not None:
        return 0
    qkv = (m.heads + 2 * m.kv_heads) * m.head_dim
    return qkv + (m.hidden_size if m.attention_bias == "all" else 0)


def mlp_params(m: Model, width: int) -> int:
    """One (dense or expert) MLP of intermediate `width`: gate+up+down, or up+down."""
    return (3 if m.gated_mlp else 2) * m.hidden_size * width


def mlp_bias_params(m: Model, width: int) -> int:
    return ((2 if m.gated_mlp else 1) * width + m.hidden_size) if m.mlp_bias else 0


def _norm_widths(m: Model) -> tuple[int, int]:
    """(one norm's parameters: h for RMSNorm, 2h with LayerNorm's bias; MLA's q and kv latent norms per layer)."""
    norm = m.hidden_size if m.norm == "rmsnorm" else 2 * m.hidden_size
    return norm, (m.mla.kv_lora_rank + m.mla.q_lora_rank) if m.mla is not None else 0


def param_breakdown(m: Model) -> dict[str, float]:
    """Parameters by role. `experts` is every routed expert; `experts_active` those used per token."""
    h, V = m.hidden_size, m.vocab_size
    norm, mla_norms = _norm_widths(m)
    embed = V * h
    if m.position == "learned":
        embed += m.max_position_embeddings * h
    embed += m.type_vocab_size * h
    if m.is_vision:  # patch projection + bias, class token (none in a hierarchical backbone)
        embed += m.channels * m.patch_size**2 * h + h + (0 if m.backbone else h)
    out = {
        "embedding": float(embed),
        # cross-attention layers: q/k/v/o as a self-attention layer's (k/v read the image features)
        "attention": float((m.attention_layers + m.cross_layers) * attention_params(m)
                           - m.kv_shared_layers * kv_projection_params(m)),
        "recurrent": float(m.recurrent_layers * recurrent_matmul_params(m)),
        "recurrent_small": float(m.recurrent_layers * recurrent_small_params(m)),
        "mlp": float(m.dense_layers * mlp_params(m, m.dense_intermediate)),
        "experts": 0.0,
        "experts_active": 0.0,
        "shared_experts": 0.0,
        "router": 0.0,
        # + per cross-attention layer its q and k RMSNorms and two scalar tanh gates (Llama 3.2 Vision)
        "norms": float(m.layers * (m.norms_per_layer * norm + mla_norms) + norm + m.cross_layers * (2 * m.head_dim + 2)),
        "biases": float(m.attention_layers * attention_bias_params(m) + m.dense_layers * mlp_bias_params(m, m.dense_intermediate)),
        "lm_head": 0.0 if m.tied_embeddings or m.is_encoder else float(V * h + (V if m.lm_head_bias else 0)),
        "head": 0.0,
    }
    if m.moe is not None:
        e, L = m.moe, m.moe_layers
        out["experts"] = float(L * e.experts * mlp_params(m, e.expert_intermediate_size))
        out["experts_active"] = float(L * e.top_k * mlp_params(m, e.expert_intermediate_size))
        out["shared_experts"] = float(L * e.shared_experts * mlp_params(m, e.shared_intermediate_size))
        out["router"] = float(L * h * e.experts)
        out["biases"] += float(L * (e.experts * mlp_bias_params(m, e.expert_intermediate_size) + (e.experts if m.mlp_bias else 0)))
    if m.pooler:
        out["head"] += float(h * h + h)
    if m.is_vision and m.num_classes and not m.backbone:
        out["head"] += float(h * m.num_classes + m.num_classes)
    # a hierarchical backbone's stages, patch merging and classifier (its stem is the patch embedding and
    # the final norm above)
    out["backbone"] = float(m.backbone.extra_params()) if m.backbone else 0.0
    out["vision_tower"] = 0.0
    if m.vision_tower is not None:  # the image encoder and projector of a VLM (not active per text token)
        t = m.vision_tower
        out["vision_tower"] = float(param_count(vision_encoder(m)) + t.projector_params())
    return out


def mtp_breakdown(m: Model) -> dict[str, float]:
    """Parameters of the model's multi-token-prediction modules, per kind, all `mtp_layers` together.

    One module = one decoder layer of the model's last kind (MoE where the model has experts) + the
    projection of [embedding; hidden] (2h -> h) + two input RMSNorms and the shared head's norm;
    it shares the embedding and the LM head with the model (DeepSeek-V3, arXiv 2412.19437 §2.2)."""
    if not m.mtp_layers:
        return {"mixer": 0.0, "experts": 0.0, "shared": 0.0, "linear": 0.0, "small": 0.0}
    h, n = m.hidden_size, m.mtp_layers
    norm, mla_norms = _norm_widths(m)
    mixer = attention_params(m)
    small = m.norms_per_layer * norm + mla_norms + attention_bias_params(m) + 3 * norm
    if m.moe is not None:
        e = m.moe
        experts = e.experts * mlp_params(m, e.expert_intermediate_size)
        shared = e.shared_experts * mlp_params(m, e.shared_intermediate_size)
        small += h * e.experts
        mlp = experts + shared
    else:
        experts = shared = 0
        mlp = mlp_params(m, m.dense_intermediate)
    linear = mixer + mlp + 2 * h * h
    return {"mixer": float(n * mixer), "experts": float(n * experts), "shared": float(n * shared),
            "linear": float(n * linear), "small": float(n * small)}


def mtp_param_count(m: Model) -> float:
    """All parameters of the multi-token-prediction modules (0 without them)."""
    b = mtp_breakdown(m)
    return b["linear"] + b["small"]


def param_count(m: Model) -> float:
    """Total parameters (every routed expert counted once)."""
    b = param_breakdown(m)
    return sum(v for k, v in b.items() if k != "experts_active")


def active_param_count(m: Model) -> float:
    """Parameters used per text token: routed experts counted top-k of E; a VLM's vision tower runs
    on images only and is not counted."""
    b = param_breakdown(m)
    return sum(v for k, v in b.items() if k not in ("experts", "vision_tower"))


def active_param_count_as_published(m: Model) -> float:
    """Active parameters counted the way the model's publisher counts them (`active_params_convention`):
    OpenAI's gpt-oss card leaves the input embedding out (arXiv 2508.10925, Table 1)."""
    active = active_param_count(m)
    if m.active_params_convention in ("without_input_embedding", "without_embeddings"):
        active -= param_breakdown(m)["embedding"]
    if m.active_params_convention == "without_embeddings":
        active -= param_breakdown(m)["lm_head"]
    return active
