"""Cross-attention to image tokens (issue 17): Llama 3.2 Vision's cross layers, hand-checked."""
import numpy as np
import pytest

from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.memory import kv_bytes_per_sequence
from costmodel.engine.attention import SOFTMAX_OPS
from costmodel.engine.operators import OP_NAMES, lower
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model
from costmodel.spec.parameters import attention_params, mlp_params, param_count

MODEL = "llama-3.2-11b-vision"
V = 4 * 1601  # one 1120x1120 image: 4 tiles of 40x40 patches + a class token each


def _cols(model=MODEL, cross_tokens=0.0):
    m, h, f = load_model(model), load_hardware("h100-sxm"), load_format("bf16")
    arr = lambda d: {k: np.asarray(v, dtype=float) for k, v in d.items()}  # noqa: E731
    mc = arr(model_row(m))
    mc["cross_tokens"] = np.asarray(float(cross_tokens))
    return mc, arr(format_row(f, h, None, False, "ideal")), arr(hardware_row(h, "ideal"))


def op(ops, name, field):
    return float(getattr(ops, field)[OP_NAMES.index(name)])


def test_parameters_match_the_card_and_decompose():
    m, base = load_model(MODEL), load_model("llama-3.1-8b")
    assert (m.layers, m.cross_layers, m.attention_layers) == (40, 8, 32)
    assert param_count(m) == pytest.approx(10.6e9, rel=0.01)  # card: '11B (10.6)'
    # Llama 3.1 8B + 8 cross layers (q/k/v/o, SwiGLU MLP, 2 RMSNorms, q/k norms, 2 gates) + the tower
    cross = 8 * (attention_params(m) + mlp_params(m, 14336) + 2 * 4096 + 2 * 128 + 2)
    tower = (40 * (4 * 1280 * 1280 + 4 * 1280 + 2 * 1280 * 5120 + 5120 + 1280 + 4 * 1280)
             + 3 * 14 * 14 * 1280 + 1280 + 1280 + 2 * 1280 + 7680 * 4096 + 4096)
    assert param_count(m) == pytest.approx(param_count(base) + cross + tower, abs=1)


def test_vision_tokens_by_tiles():
    t = load_model(MODEL).vision_tower
    assert t.tokens(560, 560) == 1601 and t.tokens(1120, 1120) == V
    assert t.tokens(2000, 300) == V and t.tokens(3000, 3000) == V  # at most 4 tiles
    assert t.patches(1120, 1120) == V  # the encoder runs over every tile's patches and class tokens


def test_prefill_cross_attention_and_kv_projection_hand_computed():
    m, f, hw = _cols(cross_tokens=V)
    n = 200
    ops = lower(m, f, hw, batch=1, new_tokens=n, context=0, tp=1, pp=1, decode=False)
    # every text query attends to all V image keys: 32 heads x (2 x (128 + 128) + softmax) per pair, 8 layers
    assert op(ops, "cross_attention", "flops") == pytest.approx(n * V * 32 * (4 * 128 + SOFTMAX_OPS) * 8)
    # keys and values of the V image tokens, projected once: 4096 -> 2 x 8 x 128 in each of 8 layers,
    # written to the cache in 16 bits
    assert op(ops, "cross_kv_proj", "flops") == pytest.approx(2 * V * 4096 * 2048 * 8)
    assert op(ops, "cross_kv_proj", "kv_bytes") == pytest.approx(V * 2048 * 2 * 8)
    # q and o on the text tokens
    assert op(ops, "cross_proj", "flops") == pytest.approx(4 * n * 4096 * 32 * 128 * 8)


def test_decode_reads_the_cached_image_keys_and_projects_nothing():
    m, f, hw = _cols(cross_tokens=V)
    ops = lower(m, f, hw, batch=4, new_tokens=1, context=500, tp=1, pp=1, decode=True)
    assert op(ops, "cross_kv_proj", "flops") == 0 and op(ops, "cross_kv_proj", "weight_bytes") == 0
    # one query per sequence reads its sequence's V keys and values in each cross layer
    assert op(ops, "cross_attention", "kv_bytes") == pytest.approx(4 * V * 2 * 8 * 128 * 2 * 8)


def test_kv_memory_holds_the_image_whatever_the_text_length():
    m, f, hw = _cols(cross_tokens=V)
    text_only = _cols(cross_tokens=0.0)[0]
    per = lambda cols, t: float(kv_bytes_per_sequence(cols, f, t, 1.0, 1.0, {**hw, "kv_block_tokens": np.asarray(1.0)}))  # noqa: E731
    assert per(m, 1000) - per(text_only, 1000) == pytest.approx(V * 8 * 2 * 8 * 128 * 2)  # the image's keys
    assert per(m, 1000) - per(m, 100) == pytest.approx(900 * 32 * 2 * 8 * 128 * 2)  # self-attention only


def test_text_only_request_skips_the_cross_layers_whole():
    import costmodel

    kw = dict(prompt=300, gen=100, batch=4)
    vision = costmodel.estimate(MODEL, "h100", "bf16", **kw)
    text = costmodel.estimate("llama-3.1-8b", "h100", "bf16", **kw)
    for metric in ("ttft_s", "tpot_s"):
        assert float(np.asarray(vision.metric(metric))) == pytest.approx(float(np.asarray(text.metric(metric))), rel=1e-9)
    with_image = costmodel.estimate(MODEL, "h100", "bf16", images=1, image_size="1120x1120", **kw)
    assert float(np.asarray(with_image.metric("tpot_s"))) > float(np.asarray(vision.metric("tpot_s")))
    assert any("6404 visual tokens each as cross-attention keys" in n for n in with_image.notes)


@pytest.mark.parametrize("extra,message", [
    ("    layer_pattern: [global, cross]\n", "has 'cross' layers but no 'vision_tower:' block"),
])
def test_cross_layers_need_a_tower(tmp_path, extra, message):
    from costmodel.errors import SpecError

    text = open(load_model("llama-3.2-1b").file).read().replace("    kind: decoder\n", "    kind: decoder\n" + extra, 1)
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_model(str(p))


def test_projector_width_counts_the_concatenated_feature_layers(tmp_path):
    from costmodel.errors import SpecError

    text = open(load_model(MODEL).file).read().replace("feature_layers: 6", "feature_layers: 5")
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(SpecError, match=r"expected merge² x hidden x feature_layers = 6400"):
        load_model(str(p))


def test_config_import_reads_the_cross_layers_and_the_tiled_tower():
    from pathlib import Path

    from costmodel.spec.parameters import param_breakdown

    path = Path(__file__).parents[1] / "data" / "hf" / "mllama_11b_vision.json"
    imported, spec = load_model(str(path)), load_model(MODEL)
    assert imported.layer_types == spec.layer_types and imported.vision_tower == spec.vision_tower
    assert param_breakdown(imported) == param_breakdown(spec)
    assert "cross_attention_layers" not in (imported.notes or "") and "vision_config" not in (imported.notes or "")
