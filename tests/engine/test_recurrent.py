"""Recurrent layers (Gated DeltaNet, Mamba) in the operators and the memory model, by hand."""
import math

import numpy as np
import pytest

from costmodel import estimate
from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.memory import kv_bytes_per_sequence, state_bytes_per_sequence
from costmodel.engine.operators import OP_NAMES, lower
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model


def cols(model, engine="ideal", hw="h100-sxm", fmt="bf16"):
    h, f = load_hardware(hw), load_format(fmt)
    arr = lambda d: {k: np.asarray(v, dtype=float) for k, v in d.items()}  # noqa: E731
    return arr(model_row(load_model(model))), arr(format_row(f, h, engine=engine)), arr(hardware_row(h, engine))


def op(ops, name, field):
    return float(getattr(ops, field)[OP_NAMES.index(name)])


def test_gated_delta_net_decode_by_hand():
    m, f, hw = cols("qwen3-next-80b-a3b")
    B = 4
    ops = lower(m, f, hw, batch=B, new_tokens=1, context=1000, tp=1, pp=1, decode=True)
    assert op(ops, "ssm_in_proj", "flops") == 2 * B * 2048 * 12352 * 36
    assert op(ops, "ssm_in_proj", "weight_bytes") == 2048 * 12352 * 2 * 36
    assert op(ops, "ssm_out_proj", "flops") == 2 * B * 4096 * 2048 * 36
    # scan: 7 dk dv per value head + causal conv 2 x 8192 channels x 4 taps, 36 layers
    assert op(ops, "ssm_scan", "flops") == B * (7 * 32 * 128 * 128 + 2 * 8192 * 4) * 36
    # state read and written once per step: bf16 state (vLLM default) + 3 conv inputs per channel
    assert op(ops, "ssm_scan", "kv_bytes") == B * 2 * (32 * 128 * 128 * 2 + 8192 * 3 * 2) * 36
    # attention only on the 12 full-attention layers; the gated q_proj is twice as wide
    assert op(ops, "attention", "launches") == 12
    assert op(ops, "qkv_proj", "weight_bytes") == 2048 * (2 * 16 * 256 + 2 * 2 * 256) * 2 * 12


def test_gated_delta_net_prefill_writes_state_per_chunk():
    m, f, hw = cols("qwen3-next-80b-a3b")
    n = 1000
    ops = lower(m, f, hw, batch=1, new_tokens=n, context=0, tp=2, pp=1, decode=False)
    chunks = math.ceil(n / 64)
    assert op(ops, "ssm_scan", "kv_bytes") == chunks * 2 * (32 * 128 * 128 * 2 + 8192 * 3 * 2) / 2 * 36
    per_token = 32 * (2 * 64 * (3 * 128 + 2 * 128) + 6 * 128 * 128) + 2 * 8192 * 4
    assert op(ops, "ssm_scan", "flops") == pytest.approx(n * per_token / 2 * 36)


def test_mamba1_scan_is_vector_work():
    m, f, hw = cols("jamba-v0.1")
    ops = lower(m, f, hw, batch=1, new_tokens=256, context=0, tp=1, pp=1, decode=False)
    assert op(ops, "ssm_scan", "flops") == 0.0
    assert op(ops, "ssm_scan", "dequant_flops") == 256 * (8 * 8192 * 16 + 2 * 8192 * 4) * 28
    # the Mamba-1 scan keeps its state on chip: written once per step, not per chunk
    assert op(ops, "ssm_scan", "kv_bytes") == 2 * (8192 * 16 * 2 + 8192 * 3 * 2) * 28


@pytest.mark.parametrize("model", ["mamba2-2.7b", "qwen3-next-80b-a3b", "jamba-v0.1"])
def test_state_is_constant_in_context_and_kv_grows_only_on_attention_layers(model):
    m, f, hw = cols(model)
    short, long = (float(kv_bytes_per_sequence(m, f, t, 1, 1, hw)) for t in (1024, 65536))
    state = float(state_bytes_per_sequence(m, hw, 1, 1))
    kv_per_token = float(m["kv_layers"] * m["kv_elems"] * 2)  # bf16, every KV head on one device
    assert state > 0
    assert long - short == pytest.approx(kv_per_token * (65536 - 1024))
    assert short == pytest.approx(state + kv_per_token * 1024)


def test_state_dtype_is_the_engines():
    """vLLM keeps the state in the model dtype, SGLang and llama.cpp in FP32."""
    states = {e: float(state_bytes_per_sequence(cols("mamba2-2.7b", e)[0], cols("mamba2-2.7b", e)[2], 1, 1))
              for e in ("vllm", "sglang", "llama.cpp")}
    conv = 64 * 5376 * 3 * 2
    assert states["vllm"] == 64 * 80 * 64 * 128 * 2 + conv
    assert states["sglang"] == states["llama.cpp"] == 64 * 80 * 64 * 128 * 4 + conv


def test_hybrid_estimate_state_constant_and_attention_kv_linear_in_context():
    kw = dict(hw="h100", fmt="fp8", engine="vllm", tp=2, batch=8, gen=64)
    short = estimate("qwen3-next-80b-a3b", prompt=2048, **kw)
    long = estimate("qwen3-next-80b-a3b", prompt=32768, **kw)
    s, l_ = short.memory_dict(), long.memory_dict()
    assert s["recurrent_state_bytes"] == l_["recurrent_state_bytes"] > 0
    # fp8 KV, one of two KV heads per device, 12 attention layers, 256-dim heads: 12 x 2 x 256 B per token
    grown = 8 * (32768 - 2048) * 12 * 2 * 256 * 1
    assert l_["kv_cache_bytes"] - s["kv_cache_bytes"] == pytest.approx(grown)
    assert long.fits and long.metric("tpot_s") > short.metric("tpot_s")


def test_attention_free_model_has_no_kv_tokens_but_a_concurrency_limit():
    e = estimate("mamba2-2.7b", hw="l4", fmt="bf16", engine="vllm", batch=1)
    mem = e.memory_dict()
    assert mem["kv_cache_tokens"] == 0
    per_seq = 64 * (80 * 64 * 128 * 2 + 5376 * 3 * 2)
    assert mem["max_concurrency"] == pytest.approx(mem["kv_pool_bytes"] / per_seq)


def test_chunked_local_attention_pairs_by_hand():
    from costmodel.engine.attention import chunked_pairs
    # chunk 4: positions 0..9 attend 1,2,3,4,1,2,3,4,1,2 keys
    assert chunked_pairs(10.0, 0.0, 4.0, False) == 1 + 2 + 3 + 4 + 1 + 2 + 3 + 4 + 1 + 2
    assert chunked_pairs(3.0, 5.0, 4.0, False) == 2 + 3 + 4  # positions 5, 6, 7
    assert chunked_pairs(1.0, 2.0, 4.0, True) == 3  # inside the first chunk: exact
    assert chunked_pairs(1.0, 100.0, 4.0, True) == 2.5  # past it: the mean over a chunk


def test_chunked_layers_hold_one_chunk_of_kv():
    m, f, hw = cols("llama-4-maverick", engine="vllm")
    per_token_layer = 2 * 8 * 128 * 2  # bf16, all 8 KV heads on one device
    got = float(kv_bytes_per_sequence(m, f, 32768, 1, 1, hw))
    assert got == 12 * 32768 * per_token_layer + 36 * 8192 * per_token_layer
    ops = lower(m, f, hw, batch=1, new_tokens=16384, context=0, tp=1, pp=1, decode=False)
    pairs_chunked = 2 * (8192 * 8193 / 2)
    assert op(ops, "attention_chunked", "flops") == pytest.approx(pairs_chunked * 40 * (2 * 256 + 5) * 36)
