"""HuggingFace `config.json` -> a catalogue entry (architecture only), saying what it leaves out.

Understood model types: dense decoders (llama, mistral, qwen2/3, gemma 1-3, phi, gpt-j/neox, opt),
MoE (mixtral, qwen2/3_moe, deepseek_v2/v3, kimi_k2, glm4_moe, minimax, gpt_oss), sliding-window
layer types, MLA, hybrid linear attention (qwen3_next, qwen3_5 text: Gated DeltaNet layers by
`layer_types` or `full_attention_interval`), Mamba-1/2 (mamba, mamba2, state-spaces ssm_cfg),
Jamba (attention and expert periods), Llama 4 (chunked local attention, interleaved MoE),
DeepSeek-V3.2 sparse attention (index_topk), BERT and ViT encoders. Fields that change the cost but are
not modelled are listed in the entry's notes instead of guessed.
"""
from __future__ import annotations

import json
from pathlib import Path

from costmodel.errors import SpecError
from costmodel.spec.catalog import Entry
from costmodel.spec.files import read_text

_HF_ACT = {"gelu_new": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu_pytorch_tanh": "gelu_pytorch_tanh",
           "silu": "silu", "swish": "silu", "gelu": "gelu", "relu": "relu"}
_LAYERNORM_TYPES = ("gptj", "gpt2", "opt", "bert", "vit", "gpt_neox", "falcon", "phi")
_MAMBA_TYPES = ("mamba", "mamba2", "falcon_mamba")
# read by this importer, or known not to change FLOPs, bytes or memory (numerics, tokens, training)
_USED = {
    "model_type", "hidden_size", "n_embd", "d_model", "num_attention_heads", "n_head", "num_hidden_layers",
    "n_layer", "num_layers", "num_key_value_heads", "num_kv_heads", "head_dim", "intermediate_size", "n_inner",
    "ffn_dim", "d_intermediate", "vocab_size", "tie_word_embeddings", "tie_embeddings", "hidden_act",
    "hidden_activation", "activation_function", "max_position_embeddings", "n_positions", "attention_bias", "bias",
    "mlp_bias", "sliding_window", "use_sliding_window", "layer_types", "sliding_window_pattern",
    "num_local_experts", "num_experts", "n_routed_experts", "num_experts_per_tok", "experts_per_token",
    "moe_top_k", "moe_intermediate_size", "n_shared_experts", "shared_expert_intermediate_size",
    "first_k_dense_replace", "mlp_only_layers", "decoder_sparse_step", "kv_lora_rank", "q_lora_rank",
    "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim", "image_size", "patch_size", "num_channels", "id2label",
    "label2id", "type_vocab_size", "full_attention_interval", "attn_output_gate", "linear_num_key_heads",
    "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim",
    "ssm_cfg", "attn_layer_idx", "attn_cfg", "state_size", "expand", "conv_kernel", "n_groups", "time_step_rank",
    "use_conv_bias", "use_bias", "attn_layer_period", "attn_layer_offset", "expert_layer_period",
    "expert_layer_offset", "mamba_d_state", "mamba_d_conv", "mamba_expand", "mamba_dt_rank", "mamba_conv_bias",
    "mamba_proj_bias", "pad_vocab_size_multiple", "text_config", "vision_config", "num_heads",
    # numerics, tokens, positions, training and loading: no effect on the cost model
    "architectures", "auto_map", "transformers_version", "torch_dtype", "dtype", "use_cache", "bos_token_id",
    "eos_token_id", "pad_token_id", "initializer_range", "rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon",
    "norm_eps", "rope_theta", "rope_scaling", "rope_parameters", "partial_rotary_factor", "rotary_dim",
    "attention_dropout", "hidden_dropout", "hidden_dropout_prob", "attention_probs_dropout_prob", "dropout",
    "resid_pdrop", "embd_pdrop", "attn_pdrop", "output_router_logits", "router_aux_loss_coef", "norm_topk_prob",
    "max_window_layers", "quantization_config", "rms_norm", "residual_in_fp32", "fused_add_norm",
    "routed_scaling_factor", "scoring_func", "topk_method", "n_group", "topk_group", "aux_loss_alpha",
    "seq_aux", "query_pre_attn_scalar", "final_logit_softcapping", "attn_logit_softcapping", "use_qk_norm",
    "qkv_bias", "is_decoder", "classifier_dropout", "position_embedding_type", "pretraining_tp", "router_jitter_noise",
    "num_nextn_predict_layers", "mtp_num_hidden_layers", "rope_local_base_freq", "use_mamba_kernels",
    "time_step_min", "time_step_max", "time_step_floor", "time_step_init_scheme", "time_step_scale",
    "residual_dropout", "chunk_size", "rescale_prenorm_residual", "tie_word_embedding", "name_or_path", "_name_or_path",
    "num_logits_to_keep", "output_attentions", "output_hidden_states", "return_dict", "image_token_index",
    "image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "mm_tokens_per_image",
    "boi_token_index", "eoi_token_index", "initializer_factor", "qkv_proj_bias", "attention_chunk_size",
    "no_rope_layer_interval", "no_rope_layers", "interleave_moe_layer_step", "intermediate_size_mlp",
    "attn_temperature_tuning", "floor_scale", "attn_scale", "moe_layers", "index_n_heads", "index_head_dim",
    "index_topk", "moe_layer_freq",
}


def _layer_pattern(cfg: dict, get, mtype: str, layers: int) -> list | None:
    """Layer types from `layer_types`, `full_attention_interval`, Jamba's periods or a Mamba stack."""
    types = get("layer_types")
    if isinstance(types, list) and types:
        names = {"linear_attention": "linear", "full_attention": "global", "sliding_attention": "local",
                 "chunked_attention": "local", "mamba": "mamba", "attention": "global"}
        return [names.get(str(t), "global") for t in types]
    if get("attention_chunk_size"):  # Llama 4: RoPE layers chunked, every 4th (NoPE) layer global
        k = int(get("no_rope_layer_interval", default=4))  # HF Llama4TextConfig default
        return ["chunked"] * (k - 1) + ["global"]
    if get("full_attention_interval") and get("linear_num_value_heads"):
        k = int(get("full_attention_interval"))
        return ["linear"] * (k - 1) + ["global"]
    if get("attn_layer_period"):
        period, offset = int(get("attn_layer_period")), int(get("attn_layer_offset", default=0))
        return ["global" if i == offset else "mamba" for i in range(period)]
    if mtype in _MAMBA_TYPES or isinstance(cfg.get("ssm_cfg"), dict):
        attn = set(cfg.get("attn_layer_idx") or [])
        return ["global" if i in attn else "mamba" for i in range(layers)]
    return None


def _mamba_block(cfg: dict, get, mtype: str, hidden: int) -> dict:
    ssm = cfg.get("ssm_cfg") if isinstance(cfg.get("ssm_cfg"), dict) else {}
    version = 2 if (mtype == "mamba2" or ssm.get("layer") == "Mamba2") else 1
    # state-spaces configs give only {'layer': 'Mamba2'}: the rest are the class defaults
    # (mamba_ssm/modules/mamba2.py: d_state 128, d_conv 4, expand 2, headdim 64, ngroups 1;
    #  mamba_simple.py: d_state 16, d_conv 4, expand 2, dt_rank ceil(d_model/16))
    d_state = ssm.get("d_state") or get("state_size", "mamba_d_state", default=128 if version == 2 else 16)
    block = {"version": version, "d_state": d_state,
             "d_conv": ssm.get("d_conv") or get("conv_kernel", "mamba_d_conv", default=4),
             "expand": ssm.get("expand") or get("expand", "mamba_expand", default=2),
             "conv_bias": bool(get("use_conv_bias", "mamba_conv_bias", default=True))}
    if version == 2:
        block.update(head_dim=ssm.get("headdim") or get("head_dim", default=64),
                     groups=ssm.get("ngroups") or get("n_groups", default=1))
    else:
        rank = get("time_step_rank", "mamba_dt_rank", default="auto")
        block["dt_rank"] = -(-hidden // 16) if rank == "auto" else int(rank)
        block["dt_norms"] = mtype == "jamba"
    return block


def entry_from_hf_config(path: str) -> Entry:
    """Map a HuggingFace `config.json` onto the catalogue schema (architecture only)."""
    p = Path(path).expanduser()
    text = read_text(p, "a HuggingFace config.json", SpecError)
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    except RecursionError:
        raise SpecError(f"{p}: JSON nested too deeply to be a config.json") from None
    if not isinstance(cfg, dict):
        raise SpecError(f"{p}: expected a JSON object (a HuggingFace config.json)")
    outer_type = str(cfg.get("model_type", ""))
    has_vision = isinstance(cfg.get("vision_config"), dict)
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers (Gemma 3, Qwen3.5, Llava, ...)
        cfg = {**cfg, **cfg["text_config"]}

    def get(*names, default=None):
        for n in names:
            if cfg.get(n) is not None:
                return cfg[n]
        return default

    mtype = str(cfg.get("model_type", ""))
    attention_free = mtype in _MAMBA_TYPES or (isinstance(cfg.get("ssm_cfg"), dict) and not cfg.get("attn_layer_idx"))
    hidden = get("hidden_size", "n_embd", "d_model")
    heads = get("num_attention_heads", "n_head", default=1 if attention_free else None)
    layers = get("num_hidden_layers", "n_layer", "num_layers")
    missing = [n for n, v in (("hidden_size", hidden), ("num_attention_heads", heads),
                              ("num_hidden_layers", layers)) if v is None]
    if missing:
        raise SpecError(f"{p}: field '{missing[0]}' missing; expected a HuggingFace transformer config.json")
    for name, value in (("hidden_size", hidden), ("num_attention_heads", heads), ("num_hidden_layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{p}: field '{name}' is {value!r}; expected a positive integer")
    is_encoder = mtype in ("bert", "roberta", "vit", "deberta", "deberta-v2", "distilbert")
    act = _HF_ACT.get(str(get("hidden_act", "hidden_activation", "activation_function", default="silu")), "silu")
    vocab = get("vocab_size", default=0)
    if get("pad_vocab_size_multiple") and vocab:
        m = int(get("pad_vocab_size_multiple"))
        vocab = -(-vocab // m) * m
    ffn = 0 if mtype in _MAMBA_TYPES else get("intermediate_size", "n_inner", "ffn_dim", "d_intermediate",
                                                default=4 * hidden)
    data: dict = {
        "id": p.parent.name.lower() if p.name == "config.json" else p.stem.lower(),
        "name": f"{mtype or 'model'} from {p}",
        "source": str(p),
        "published_params": {"value": 0, "source": f"{p} (no published count: computed)"},
        "kind": "encoder" if is_encoder else "decoder",
        "layers": layers,
        "hidden_size": hidden,
        "heads": heads,
        "kv_heads": get("num_key_value_heads", "num_kv_heads", default=heads),
        "head_dim": get("head_dim", default=hidden // heads) if not attention_free else hidden // heads,
        "intermediate_size": ffn,
        "vocab_size": vocab,
        "tied_embeddings": bool(get("tie_word_embeddings", "tie_embeddings",
                                    default=mtype in ("bert", "opt", "gemma2", "gemma3_text", "gemma3", "mamba",
                                                      "mamba2"))),
        "activation": act,
        "gated_mlp": mtype not in _LAYERNORM_TYPES,
        "norm": "layernorm" if mtype in _LAYERNORM_TYPES else "rmsnorm",
        "position": "learned" if mtype in ("gpt2", "opt", "bert", "vit") else ("none" if attention_free else "rope"),
        "max_position_embeddings": get("max_position_embeddings", "n_positions", default=0),
        "attention_bias": "qkv" if mtype.startswith("qwen2") else bool(get("attention_bias", "bias", default=mtype in ("bert", "opt", "vit"))),
        "mlp_bias": bool(get("mlp_bias", default=mtype in ("bert", "opt", "vit", "gptj", "gpt2"))),
        "parallel_block": mtype in ("gptj",),
    }
    if attention_free or (ffn == 0 and not get("num_experts", "num_local_experts", "n_routed_experts")):
        data["norms_per_layer"] = 1
    pattern = _layer_pattern(cfg, get, mtype, layers)
    window = get("sliding_window")
    if window and (cfg.get("use_sliding_window", True) is not False):
        data["sliding_window"] = int(window)
        if pattern is None and get("sliding_window_pattern"):
            n = int(get("sliding_window_pattern"))
            pattern = ["local"] * (n - 1) + ["global"]
    elif pattern:
        pattern = ["global" if t == "local" else t for t in pattern]  # window disabled: full attention
    if pattern:
        data["layer_pattern"] = pattern
    if pattern and "chunked" in pattern:
        data["attention_chunk"] = int(get("attention_chunk_size"))
    if pattern and "linear" in pattern:
        data["linear_attention"] = {"key_heads": get("linear_num_key_heads"),
                                    "value_heads": get("linear_num_value_heads"),
                                    "key_head_dim": get("linear_key_head_dim"),
                                    "value_head_dim": get("linear_value_head_dim"),
                                    "conv_kernel": get("linear_conv_kernel_dim", default=4)}
    mtp = get("num_nextn_predict_layers", "mtp_num_hidden_layers", default=0)
    if mtp:
        data["mtp_layers"] = int(mtp)  # weights loaded with --mtp (spec/parameters.py mtp_breakdown)
    if mtype in ("qwen3_next",) or get("attn_output_gate"):
        data["attention_output_gate"] = True
    if pattern and "mamba" in pattern:
        data["mamba"] = _mamba_block(cfg, get, mtype, hidden)
    experts = get("num_local_experts", "num_experts", "n_routed_experts")
    if experts:
        dense = int(get("first_k_dense_replace", default=0))
        dense_width = data["intermediate_size"]
        if get("expert_layer_period"):
            period, offset = int(get("expert_layer_period")), int(get("expert_layer_offset", default=0))
            dense = layers - sum(1 for i in range(layers) if i % period == offset)
        elif get("interleave_moe_layer_step"):  # Llama 4: MoE on every step-th layer, dense MLP between
            step = int(get("interleave_moe_layer_step"))
            dense = sum(1 for i in range(layers) if (i + 1) % step != 0)
            dense_width = get("intermediate_size_mlp", default=dense_width)
        elif get("mlp_only_layers") or (get("decoder_sparse_step") or 1) > 1:
            only = set(get("mlp_only_layers", default=[]))
            step = int(get("decoder_sparse_step", default=1))
            dense = sum(1 for i in range(layers) if i in only or (i + 1) % step != 0)
        data["moe"] = {
            "experts": experts,
            "top_k": get("num_experts_per_tok", "experts_per_token", "moe_top_k"),
            "expert_intermediate_size": get("moe_intermediate_size", default=data["intermediate_size"]),
            "shared_experts": get("n_shared_experts", default=1 if (get("shared_expert_intermediate_size")
                                                                     or mtype == "llama4_text") else 0),
            "shared_intermediate_size": get("shared_expert_intermediate_size", "moe_intermediate_size",
                                            "intermediate_size", default=0)
            if (get("n_shared_experts") or get("shared_expert_intermediate_size") or mtype == "llama4_text") else 0,
            "dense_layers": dense,
            "dense_intermediate_size": dense_width if dense else 0,
        }
    if get("kv_lora_rank"):
        data["mla"] = {
            "kv_lora_rank": get("kv_lora_rank"), "q_lora_rank": get("q_lora_rank", default=0) or 0,
            "qk_nope_head_dim": get("qk_nope_head_dim"), "qk_rope_head_dim": get("qk_rope_head_dim"),
            "v_head_dim": get("v_head_dim"),
        }
    if get("index_topk"):  # DeepSeek-V3.2 sparse attention
        data["sparse_attention"] = {"index_heads": get("index_n_heads"), "index_head_dim": get("index_head_dim"),
                                    "top_k": get("index_topk")}
    if mtype == "vit":
        data.update(vocab_size=0, image_size=None)
        data["vision"] = {"image_size": get("image_size", default=224), "patch_size": get("patch_size", default=16),
                          "channels": get("num_channels", default=3),
                          "num_classes": len(cfg.get("id2label") or {}) or 1000}
    if mtype == "bert":
        data["encoder"] = {"type_vocab_size": get("type_vocab_size", default=2), "pooler": True}
    tower = _mllama_tower(cfg, hidden, layers) if has_vision and get("cross_attention_layers") else None
    if tower:  # Llama 3.2 Vision: cross-attention layers over a tiled tower's image tokens
        data["layer_pattern"], data["vision_tower"] = tower
    elif has_vision and outer_type == "qwen2_5_vl":
        tower = _qwen25vl_tower(cfg, hidden)
        if tower:
            data["vision_tower"] = tower
    data["notes"] = _not_modelled(cfg, outer_type, has_vision and not tower,
                                  used=("cross_attention_layers",) if tower else ())
    data = {k: v for k, v in data.items() if v is not None}
    return Entry(data, p, {})


def _mllama_tower(cfg: dict, hidden: int, layers: int) -> tuple[list, dict] | None:
    """Llama 3.2 Vision (mllama): the layer pattern with its `cross_attention_layers` and the tiled
    vision tower of `vision_config` (local + global encoder layers, a class token per tile, the
    intermediate layers' outputs concatenated into vision_output_dim; transformers MllamaVisionModel)."""
    v = cfg.get("vision_config") or {}
    need = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "image_size", "patch_size")
    if any(not isinstance(v.get(k), int) for k in need):
        return None
    cross = set(cfg.get("cross_attention_layers") or [])
    out_dim = int(v.get("vision_output_dim") or v["hidden_size"])
    tower = {"layers": v["num_hidden_layers"] + int(v.get("num_global_layers") or 0), "hidden_size": v["hidden_size"],
             "heads": v["num_attention_heads"], "intermediate_size": v["intermediate_size"], "gated_mlp": False,
             "patch_size": v["patch_size"], "image_size": v["image_size"], "merge": 1,
             "max_tiles": int(v.get("max_num_tiles") or 1), "cls_token": True,
             "feature_layers": out_dim // v["hidden_size"], "projector": [out_dim, hidden]}
    return ["cross" if i in cross else "global" for i in range(layers)], tower


def _qwen25vl_tower(cfg: dict, hidden: int) -> dict | None:
    """Qwen2.5-VL: a windowed ViT (window_size pixels, full attention at fullatt_block_indexes), a Conv3d
    patch embedding over temporal_patch_size frames, and a merger of spatial_merge_size² patches
    (transformers Qwen2_5_VisionTransformerPretrainedModel); image_size is only the default request size."""
    v = cfg.get("vision_config") or {}
    need = ("depth", "hidden_size", "intermediate_size", "num_heads", "patch_size", "window_size")
    if any(not isinstance(v.get(k), int) for k in need):
        return None
    merge = int(v.get("spatial_merge_size") or 2)
    side = v["window_size"] // v["patch_size"]
    return {"layers": v["depth"], "hidden_size": v["hidden_size"], "heads": v["num_heads"],
            "intermediate_size": v["intermediate_size"], "gated_mlp": True, "norm": "rmsnorm",
            "patch_size": v["patch_size"], "image_size": 448, "merge": merge,
            "channels": int(v.get("in_channels") or 3) * int(v.get("temporal_patch_size") or 1),
            "window": side * side, "full_layers": list(v.get("fullatt_block_indexes") or []),
            "projector": [merge * merge * v["hidden_size"], merge * merge * v["hidden_size"],
                          int(v.get("out_hidden_size") or hidden)]}


def _not_modelled(cfg: dict, outer_type: str, has_vision: bool, used: tuple = ()) -> str | None:
    """A note naming what the config holds that this importer does not model."""
    parts = []
    unknown = sorted(k for k in cfg if k not in _USED and k not in used and not k.endswith("_token_id"))
    if unknown:
        parts.append("config.json fields not modelled (costmodel does not know how they change the cost): "
                     + ", ".join(unknown))
    if has_vision:
        parts.append(f"vision_config of {outer_type or 'the model'} not modelled: language model only")
    if (cfg.get("moe_layer_freq") or 1) != 1:
        parts.append(f"moe_layer_freq = {cfg['moe_layer_freq']} not modelled (every layer after the dense ones "
                     f"is taken as MoE)")
    return "; ".join(parts) or None
