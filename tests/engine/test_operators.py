"""Hand-computed FLOPs and bytes for a tiny model, closed forms of the lowering."""
import numpy as np
import pytest

from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model
from costmodel.engine.attention import causal_pairs
from costmodel.engine.operators import OP_NAMES, lower
from costmodel.spec.parameters import param_count

from tests.conftest import DATA


def cols(model="tiny", hw="h100-sxm", fmt="bf16"):
    m = load_model(str(DATA / "tiny.yaml")) if model == "tiny" else load_model(model)
    h = load_hardware(hw)
    f = load_format(fmt)
    as_arr = lambda d: {k: np.asarray(v) for k, v in d.items()}  # noqa: E731
    return as_arr(model_row(m)), as_arr(format_row(f, h)), as_arr(hardware_row(h))


def op(ops, name, field):
    return float(getattr(ops, field)[OP_NAMES.index(name)])


def test_tiny_param_count():
    # embed 100*64 + 2 x (q 64*64 + k,v 2*64*32 + o 64*64 + mlp 3*64*128 + 2 norms*64) + norm 64 + head 6400
    assert param_count(load_model(str(DATA / "tiny.yaml"))) == 6400 + 2 * (12288 + 24576 + 128) + 64 + 6400


def test_tiny_decode_flops_and_bytes_by_hand():
    m, f, hw = cols()
    ops = lower(m, f, hw, batch=1, new_tokens=1, context=9, tp=1, pp=1, decode=True)
    # q (4 heads x 16) + k,v (2 x 2 kv heads x 16) = 128 outputs from 64 inputs, 2 layers, bf16
    assert op(ops, "qkv_proj", "flops") == 2 * 64 * 128 * 2
    assert op(ops, "qkv_proj", "weight_bytes") == 64 * 128 * 2 * 2
    assert op(ops, "qkv_proj", "kv_bytes") == 64 * 2 * 2          # new K,V: 64 elements, 2 B, 2 layers
    # attention over 10 keys: 4 heads x (2 x (16+16) + 5 softmax) per pair, 2 layers
    assert op(ops, "attention", "flops") == 10 * 4 * 69 * 2
    assert op(ops, "attention", "kv_bytes") == 10 * (2 * 2 * 16 * 2) * 2
    assert op(ops, "o_proj", "flops") == 2 * 64 * 64 * 2
    assert op(ops, "mlp_up", "flops") == 2 * 64 * 256 * 2
    assert op(ops, "mlp_down", "weight_bytes") == 128 * 64 * 2 * 2
    assert op(ops, "lm_head", "flops") == 2 * 64 * 100
    assert op(ops, "lm_head", "weight_bytes") == 64 * 100 * 2
    assert op(ops, "moe_up", "flops") == 0 and op(ops, "tp_allreduce", "act_bytes") == 0


def test_tiny_prefill_attention_is_causal():
    m, f, hw = cols()
    ops = lower(m, f, hw, batch=2, new_tokens=8, context=0, tp=1, pp=1, decode=False)
    pairs = 2 * (8 * 9 / 2)  # two sequences, sum_{i=1..8} i
    assert op(ops, "attention", "flops") == pairs * 4 * 69 * 2
    assert op(ops, "qkv_proj", "flops") == 2 * 16 * 64 * 128 * 2
    assert op(ops, "lm_head", "flops") == 2 * 2 * 64 * 100   # last position of each sequence only


@pytest.mark.parametrize("n,c,w,expected", [
    (1, 9, 0, 10), (4, 0, 0, 10), (3, 5, 0, 6 + 7 + 8), (3, 5, 7, 6 + 7 + 7), (2, 100, 4, 8),
])
def test_causal_pairs(n, c, w, expected):
    assert causal_pairs(np.float64(n), np.float64(c), np.float64(w), np.float64(0)) == expected


def test_tensor_parallel_shards_weights_and_adds_allreduce():
    m, f, hw = cols("llama-3.1-70b")
    one = lower(m, f, hw, 1, 1, 100, tp=1, pp=1, decode=True)
    eight = lower(m, f, hw, 1, 1, 100, tp=8, pp=1, decode=True)
    assert op(eight, "mlp_up", "weight_bytes") == pytest.approx(op(one, "mlp_up", "weight_bytes") / 8)
    # 2 all-reduces per layer + embedding + LM head; ring moves 2(tp-1)/tp of T*h*2 bytes each
    assert op(eight, "tp_allreduce", "launches") == 2 * 80 + 2
    assert op(eight, "tp_allreduce", "act_bytes") == pytest.approx(162 * 8192 * 2 * 2 * 7 / 8)


def test_moe_touches_at_most_all_experts():
    m, f, hw = cols("mixtral-8x7b")
    expert_bytes = 3 * 4096 * 14336 * 2 * 32   # one expert, all 32 layers, bf16
    small = lower(m, f, hw, 1, 1, 10, 1, 1, decode=True)
    big = lower(m, f, hw, 4096, 1, 10, 1, 1, decode=True)
    touched_1 = (op(small, "moe_up", "weight_bytes") + op(small, "moe_down", "weight_bytes")) / expert_bytes
    touched_big = (op(big, "moe_up", "weight_bytes") + op(big, "moe_down", "weight_bytes")) / expert_bytes
    assert touched_1 == pytest.approx(2.0)   # one token -> top-2 experts
    assert touched_big == pytest.approx(8.0)  # thousands of tokens touch all 8


def test_mla_decode_reads_the_latent_cache():
    m, f, hw = cols("deepseek-v3", "h200-sxm", "fp8")
    ops = lower(m, f, hw, 1, 1, 999, 1, 1, decode=True)
    # 1000 tokens x (512 + 64) latent x 1 byte (fp8 KV) x 61 layers
    assert op(ops, "attention", "kv_bytes") == pytest.approx(1000 * 576 * 61)


def test_sliding_window_caps_local_attention():
    m, f, hw = cols("gemma-2-2b")
    ops = lower(m, f, hw, 1, 1, 20000, 1, 1, decode=True)
    per_layer_global = op(ops, "attention", "kv_bytes") / 13
    per_layer_local = op(ops, "attention_local", "kv_bytes") / 13
    assert per_layer_global / per_layer_local == pytest.approx(20001 / 4096)
