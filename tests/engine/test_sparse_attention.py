"""DeepSeek Sparse Attention (DeepSeek-V3.2): indexer parameters, FLOPs, key cache, top-k pairs."""
import numpy as np
import pytest

from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.memory import kv_bytes_per_sequence
from costmodel.engine.operators import OP_NAMES, lower
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model
from costmodel.spec.parameters import param_breakdown


def cols(model, fmt="fp8"):
    h, f = load_hardware("h200-sxm"), load_format(fmt)
    arr = lambda d: {k: np.asarray(v, dtype=float) for k, v in d.items()}  # noqa: E731
    return arr(model_row(load_model(model))), arr(format_row(f, h)), arr(hardware_row(h))


def op(ops, name, field):
    return float(getattr(ops, field)[OP_NAMES.index(name)])


def test_indexer_parameters_by_hand():
    v31, v32 = param_breakdown(load_model("deepseek-v3")), param_breakdown(load_model("deepseek-v3.2"))
    # wq_b 1536 -> 64 x 128, wk 7168 -> 128, weights_proj 7168 -> 64, LayerNorm 128 (weight, bias)
    per_layer = 1536 * 8192 + 7168 * 128 + 7168 * 64 + 256
    assert v32["attention"] - v31["attention"] == 61 * per_layer


def test_indexer_scores_every_pair_and_attention_reads_top_k():
    m, f, hw = cols("deepseek-v3.2")
    m31, _, _ = cols("deepseek-v3")
    c = 10000
    ops = lower(m, f, hw, batch=1, new_tokens=1, context=c, tp=1, pp=1, decode=True)
    ref = lower(m31, f, hw, batch=1, new_tokens=1, context=c, tp=1, pp=1, decode=True)
    keys = c + 1
    assert op(ops, "attention_indexer", "flops") == keys * 64 * (2 * 128 + 2) * 61
    assert op(ops, "attention_indexer", "kv_bytes") == keys * (128 + 4) * 61  # FP8 key + FP32 scale
    # MLA attends to 2048 of the 10001 keys: FLOPs and latent reads scale by the ratio
    assert op(ops, "attention", "flops") == pytest.approx(op(ref, "attention", "flops") * 2048 / keys)
    assert op(ops, "attention", "kv_bytes") == pytest.approx(op(ref, "attention", "kv_bytes") * 2048 / keys)
    assert op(ref, "attention_indexer", "flops") == 0.0


def test_indexer_keys_sit_beside_the_latent_in_the_cache():
    m, f, hw = cols("deepseek-v3.2")
    # fp8 latent (512 + 64) and the indexer's 128 FP8 dims + one 4-byte scale, 61 layers
    per_seq = float(kv_bytes_per_sequence(m, f, 4096, 8, 1, hw))
    assert per_seq == 4096 * 61 * (576 + 132)


def test_config_json_import_reads_the_indexer():
    from tests.conftest import DATA
    imported, spec = load_model(str(DATA / "hf" / "deepseek_v32.json")), load_model("deepseek-v3.2")
    assert imported.sparse_attention == spec.sparse_attention
    assert param_breakdown(imported) == param_breakdown(spec)
    assert "index_topk" not in imported.notes
