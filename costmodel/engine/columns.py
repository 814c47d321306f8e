"""Categorical choices (model, device, format) turned into columns of numbers.

A sweep gathers each choice's numeric parameters into arrays indexed by configuration;
a single estimate is the same with arrays of size one. The engine only sees these columns.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from costmodel.engine.backbone_ops import register
from costmodel.engine.operators import OP_NAMES
from costmodel.spec.engine_params import PARAMS, Efficiency, efficiency_for
from costmodel.spec.formats import Format, plan_compute
from costmodel.spec.hardware import Hardware
from costmodel.spec.memo import by_identity
from costmodel.spec.model import Model
from costmodel.spec.parameters import mtp_breakdown, param_breakdown

Columns = dict  # name -> numpy array, all of one length (one row per catalogue entry)


def _stack(rows: list[dict]) -> Columns:
    return {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}


def model_row(m: Model) -> dict:
    """Numbers the operator lowering needs from one architecture (computed once per spec object;
    a copy is returned)."""
    return dict(_model_row(m))


@by_identity()
def _model_row(m: Model) -> dict:
    b = param_breakdown(m)
    mla = m.mla
    moe = m.moe
    if mla is not None:
        d_qk, d_v = mla.qk_nope_head_dim + mla.qk_rope_head_dim, mla.v_head_dim
    else:
        d_qk = d_v = m.head_dim
    head_out = m.num_classes if m.is_vision and not m.backbone else (0 if m.is_encoder else m.vocab_size)
    return {
        "layers": m.layers, "h": m.hidden_size, "heads": m.heads, "kv_heads": 1 if mla else m.kv_heads,
        "d_qk": d_qk, "d_v": d_v, "head_dim": m.head_dim,
        "kv_elems": m.kv_elements_per_token_per_layer,
        "gated": 1.0 if m.gated_mlp else 0.0,
        "dense_layers": m.dense_layers, "moe_layers": m.moe_layers,
        "i_dense": m.dense_intermediate,
        "global_layers": m.global_layers, "local_layers": m.local_layers,
        "chunked_layers": m.chunked_layers, "chunk": m.attention_chunk,
        "attn_layers": m.attention_layers,
        "kv_layers": m.kv_global_layers + m.kv_local_layers + m.kv_chunked_layers,
        "kv_global_layers": m.kv_global_layers, "kv_local_layers": m.kv_local_layers,
        "kv_chunked_layers": m.kv_chunked_layers,
        "q_gate": 1.0 if m.attention_output_gate else 0.0,
        # cross-attention layers and the vision tokens each sequence brings them (set per request by
        # estimate --images; 0: no image, the layers' attention does nothing)
        "cross_layers": m.cross_layers, "cross_tokens": 0.0,
        **_sparse(m),
        "mlp_layers": m.dense_layers + m.moe_layers,
        **_recurrent(m),
        "window": m.sliding_window or 0,
        "experts": moe.experts if moe else 0, "top_k": moe.top_k if moe else 0,
        "i_expert": moe.expert_intermediate_size if moe else 0,
        "shared": moe.shared_experts if moe else 0, "i_shared": moe.shared_intermediate_size if moe else 0,
        "mla": 1.0 if mla else 0.0,
        "q_lora": mla.q_lora_rank if mla else 0, "kv_lora": mla.kv_lora_rank if mla else 0,
        "rope_dim": mla.qk_rope_head_dim if mla else 0, "nope_dim": mla.qk_nope_head_dim if mla else 0,
        "vocab": m.vocab_size, "head_out": head_out, "tied": 1.0 if m.tied_embeddings else 0.0,
        "norms": m.layers * m.norms_per_layer + 1,
        "encoder": 1.0 if m.is_encoder else 0.0,
        "patch_dim": m.channels * m.patch_size**2 if m.is_vision else 0,
        "bb": register(m.backbone, OP_NAMES) if m.backbone else 0,  # a vision backbone's table (engine/backbone_ops.py)
        "parallel_block": 1.0 if m.parallel_block else 0.0,
        # parameter counts by storage precision
        "p_linear": b["attention"] + b["recurrent"] + b["mlp"] + b["experts"] + b["shared_experts"] + b["backbone"],
        "p_mixer": b["attention"] + b["recurrent"],  # replicated over DP attention groups
        "p_experts": b["experts"],
        "p_shared": b["shared_experts"],
        "p_embedding": b["embedding"], "p_lm_head": b["lm_head"] + b["head"],
        "p_small": b["norms"] + b["biases"] + b["router"] + b["recurrent_small"],
        "p_vision": b["vision_tower"],  # held in 16 bits whatever the LLM's format (engines do not quantize it)
        "p_total": sum(v for k, v in b.items() if k != "experts_active"),
        # the multi-token-prediction modules, added to the weights when --mtp drafts with them
        **{f"mtp_{k}": v for k, v in mtp_breakdown(m).items()},
    }


def _sparse(m: Model) -> dict:
    """DeepSeek Sparse Attention: indexer shape, top-k keys, indexer weights and key-cache bytes."""
    s = m.sparse_attention
    if s is None:
        return {"dsa_heads": 0.0, "dsa_dim": 0.0, "dsa_topk": 0.0, "dsa_weights": 0.0, "dsa_key_bytes": 0.0}
    return {"dsa_heads": s.index_heads, "dsa_dim": s.index_head_dim, "dsa_topk": s.top_k,
            "dsa_weights": s.params(m.hidden_size, m.mla.q_lora_rank if m.mla else 0) - 2 * s.index_head_dim,
            "dsa_key_bytes": s.key_bytes}


def _recurrent(m: Model) -> dict:
    """Per-layer numbers of the model's recurrent mixer (zeros when it has none)."""
    mx = m.recurrent_mixer
    if mx is None:
        return {k: 0.0 for k in ("rec_layers", "rec_in", "rec_inner", "rec_out_in", "rec_conv", "rec_kernel",
                                 "rec_state", "rec_decode_flops", "rec_prefill_flops", "rec_chunk", "rec_tensor")}
    return {"rec_layers": m.recurrent_layers, "rec_in": mx.in_width, "rec_inner": mx.inner_weights,
            "rec_out_in": mx.out_in, "rec_conv": mx.conv_channels, "rec_kernel": mx.conv_kernel,
            "rec_state": mx.state, "rec_decode_flops": mx.decode_flops, "rec_prefill_flops": mx.prefill_flops,
            "rec_chunk": mx.state_chunk, "rec_tensor": 1.0 if mx.on_tensor_cores else 0.0}


def model_columns(models: Sequence[Model]) -> Columns:
    return _stack([model_row(m) for m in models])


def hardware_row(hw: Hardware, engine: str | None = "ideal", eff: Efficiency | None = None) -> dict:
    """Numbers for one device under one engine: datasheet figures + efficiency parameters
    (`eff` replaces the engine's looked-up parameters, e.g. with a user's --mem-fraction)."""
    eff = eff or efficiency_for(hw.id, hw.family, engine, hardware=hw)
    peak16 = hw.peaks.get("bf16") or hw.peaks.get("fp16") or hw.peaks["fp32"]
    ic = hw.interconnect_bandwidth or 0.0
    return {
        "capacity": hw.memory_visible_bytes, "bandwidth": hw.memory_bandwidth,
        "peak_vector": hw.peaks["fp32"], "peak_attention": peak16,
        "interconnect": ic,
        # a device with no stated domain is taken to reach all its peers at the interconnect's rate
        "domain": hw.scale_up_domain or np.inf, "scale_out": hw.scale_out_bandwidth or 0.0,
        "nvls": hw.in_switch_allreduce or 1.0,
        "tdp": hw.tdp_w if hw.tdp_w else np.nan,
        "price_per_hour": hw.price_per_hour if hw.price_per_hour else np.nan,
        **{p: getattr(eff, p) for p in PARAMS},
    }


def hardware_columns(devices: Sequence[Hardware], engine: str | None = "ideal") -> Columns:
    return _stack([hardware_row(h, engine) for h in devices])


def format_row(fmt: Format, hw: Hardware, kv: Format | None = None, native_only: bool = False,
               engine: str | None = "ideal") -> dict:
    """Numbers for one (format, device) pair: bits, the peak that runs the matmuls, dequant work.

    `peak_matmul` includes the engine's achieved fraction for that datatype path relative
    to the 16-bit path (e.g. llama.cpp's integer kernels), which calibration fits.
    """
    plan = plan_compute(fmt, hw, native_only, engine)
    # a kernel path measured against another path of the engine (compute_paths `rates`) runs at that
    # path's achieved speed times the measured ratio
    dtype, ratio = plan.rate_of or (plan.dtype, 1.0)
    scale = efficiency_for(hw.id, hw.family, engine, hardware=hw).matmul_scale(dtype)
    return {
        "w_bits": fmt.weight_bits,
        "a_bits": plan.activation_bits,
        "kv_bits": kv.weight_bits if kv is not None else fmt.kv_bits,
        "emb_bits": fmt.embedding_bits,
        "head_bits": fmt.lm_head_bits,
        "peak_matmul": hw.peaks[dtype] * ratio * scale,
        "peak_raw": hw.peaks[dtype] * ratio,
        "dequant_ops": fmt.dequant_ops_per_weight if plan.dequant else 0.0,
        # attention runs in 16-bit (or fp32 for fp32 formats) on the tensor units
        "attn_fp32": 1.0 if plan.dtype == "fp32" else 0.0,
    }


def format_columns(pairs: Sequence[tuple]) -> Columns:
    """Rows for (Format, Hardware, kv Format or None, native_only[, engine]) tuples."""
    return _stack([format_row(*p) for p in pairs])


def take(cols: Columns, idx) -> Columns:
    """Gather rows by an index array (the configuration's choice), keeping its shape."""
    idx = np.asarray(idx)
    return {k: v[idx] for k, v in cols.items()}


def scalars(row: dict) -> dict:
    """One configuration's columns as numpy float64 scalars: the engine's arithmetic on them costs about
    half what it costs on 0-d arrays (benchmarks/bench_engine.py prints both)."""
    return {k: np.float64(v) for k, v in row.items()}


def numbers(row: dict) -> dict:
    """One configuration's columns as Python floats: the engine's arithmetic on them gives the bits of numpy's
    float64 scalars at a quarter of the cost (engine/elementwise.py; an estimate's columns)."""
    return {k: float(v) for k, v in row.items()}


def row_at(cols: dict, i: int) -> dict:
    """Row i of columns as `scalars` (a column of one value, or a scalar, is every row's)."""
    return scalars({k: np.asarray(v).reshape(-1)[i if np.size(v) > 1 else 0] for k, v in cols.items()})
