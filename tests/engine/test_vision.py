"""Vision-language models: the tower's size, visual tokens per image, and its time before the prefill."""
import numpy as np
import pytest

from costmodel import estimate
from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.evaluate import evaluate
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model
from costmodel.spec.model import vision_encoder
from costmodel.spec.parameters import active_param_count, param_breakdown, param_count


def test_visual_tokens_per_image():
    scout = load_model("llama-4-scout").vision_tower
    # Llama 4: 336-pixel tiles of 14-pixel patches, pixel shuffle 0.5: 144 tokens per tile (its tests assert 144)
    assert (scout.patches(336, 336), scout.tokens(336, 336)) == (576, 144)
    # a larger image: 336-pixel tiles (at most 16) and a global tile of the whole image: 1024 x 768 covers
    # 4 x 3 tiles + 1 = 13 tiles of 144 tokens; a huge image stops at 16 + 1
    assert scout.tiles(1024, 768) == 13 and scout.tokens(1024, 768) == 13 * 144 and scout.patches(1024, 768) == 13 * 576
    assert scout.tiles(5000, 5000) == 17 and scout.tokens(337, 336) == 3 * 144
    pixtral = load_model("mistral-small-3.1").vision_tower
    # one token per 28 x 28 pixels, sides rounded up: 37 x 28
    assert pixtral.tokens(1024, 768) == 37 * 28 and pixtral.patches(1024, 768) == 74 * 55


def test_tower_parameters_by_hand():
    t = load_model("mistral-small-3.1").vision_tower
    h, i, L = 1024, 4096, 24  # Pixtral's vision encoder (HF config vision_config): the spec states the same
    assert (t.hidden_size, t.intermediate_size, t.layers, t.patch_size, t.projector) == (h, i, L, 14,
                                                                                       (4096, 1024, 5120, 5120))
    # per layer: q, k, v, o with biases, gated MLP (3 h i) with biases, two RMSNorms; patch embedding
    # 3 x 14^2 x h + bias, the final norm; projector chain 4096 -> 1024 -> 5120 -> 5120 with biases
    per_layer = 4 * h * h + 4 * h + 3 * h * i + (2 * i + h) + 2 * h
    enc = L * per_layer + 3 * 14 * 14 * h + h + h + h
    proj = 4096 * 1024 + 1024 + 1024 * 5120 + 5120 + 5120 * 5120 + 5120
    got = param_breakdown(load_model("mistral-small-3.1"))["vision_tower"]
    assert got == pytest.approx(enc + proj, rel=2e-3)
    # images run only when there are images: the tower is not active per text token
    m = load_model("mistral-small-3.1")  # dense: all that is not active per text token is the tower
    assert param_count(m) - active_param_count(m) == pytest.approx(param_breakdown(m)["vision_tower"])


def test_visual_tokens_given_without_a_size():
    # 100 tokens of Pixtral (2x2 merge): the encoder runs over the 400 patches that merge into them
    e = estimate("mistral-small-3.1", "h100", "fp8", prompt=50, gen=10, images=1, visual_tokens=100)
    v = e.to_dict()["vision"]
    assert (v["visual_tokens_per_image"], v["patches_per_image"], e.workload.prompt) == (100, 400, 150)


def test_images_add_the_tower_before_the_prefill():
    kw = dict(fmt="fp8", batch=2, gen=100)
    e = estimate("mistral-small-3.1", "h100", prompt=200, images=2, image_size="1024x768", **kw)
    v = e.to_dict()["vision"]
    assert v["visual_tokens_per_image"] == 1036 and e.workload.prompt == 200 + 2 * 1036
    plain = estimate("mistral-small-3.1", "h100", prompt=200 + 2 * 1036, **kw)
    # the encoder over 4 images' patches, evaluated as the ViT encoder it is
    m, h = load_model("mistral-small-3.1"), load_hardware("h100-sxm")
    enc = vision_encoder(m)
    cols = lambda d: {k: np.asarray(x, dtype=float) for k, x in d.items()}  # noqa: E731
    r = evaluate(cols(model_row(enc)), cols(format_row(load_format("bf16"), h, None, False, e.efficiency.engine)),
                 cols(hardware_row(h, e.efficiency.engine)), 4, 74 * 55, 0, 0, 1, 1, 1)
    assert v["encoder_s"] == pytest.approx(float(r.metrics["ttft_s"]))
    assert e.metric("ttft_s") == pytest.approx(plain.metric("ttft_s") + v["encoder_s"] + v["projector_s"])
    assert e.metric("tpot_s") == pytest.approx(plain.metric("tpot_s"))
    assert 0 < v["projector_s"] < v["encoder_s"]


@pytest.mark.parametrize("args,needle", [
    (["llama-3.1-8b", "--images", "1"], "--images 1: llama-3.1-8b has no vision tower"),
    (["llama-4-scout", "--tp", "4", "--images", "1", "--image-size", "12x"], "--image-size '12x': expected WIDTHxHEIGHT"),
    (["llama-4-scout", "--tp", "4", "--image-size", "448x448"], "give --images N too"),
    (["llama-4-scout", "--tp", "4", "--images", "-1"], "--images -1: expected an integer >= 0"),
    (["llama-4-scout", "--tp", "4", "--images", "1", "--concurrency", "8"], "applies to a static batch"),
])
def test_bad_image_input(run_cli, args, needle):
    code, _, err = run_cli("estimate", *args[:1], "--hw", "h100", *args[1:])
    assert code == 2 and needle in err and "Traceback" not in err


def test_qwen25_vl_windowed_tower():
    """Qwen2.5-VL-7B: 8.29B published (its tower 32 x (attention with biases + gated MLP with biases + 2 RMSNorms),
    a Conv3d patch embedding over 2 frames x 3 channels and a 5120 -> 5120 -> 3584 merger); 2 x 2 merged patches of
    14 pixels make a 448 x 448 image 256 tokens; 28 of the 32 layers attend within 8 x 8 = 64 patches."""
    from costmodel.engine.attention import SOFTMAX_OPS, attention_terms

    m = load_model("qwen2.5-vl-7b")
    t = m.vision_tower
    assert param_count(m) == pytest.approx(8.29e9, rel=1e-3)
    h, i = 1280, 3420
    per_layer = 4 * h * h + 4 * h + 3 * h * i + (2 * i + h) + 2 * h
    tower = 32 * per_layer + 6 * 14 * 14 * h + h + h + h + 5120 * 5120 + 5120 + 5120 * 3584 + 3584
    assert param_breakdown(m)["vision_tower"] == pytest.approx(tower, rel=2e-3)
    assert (t.patches(448, 448), t.tokens(448, 448)) == (1024, 256)
    enc = {k: np.asarray(v, dtype=float) for k, v in model_row(vision_encoder(m)).items()}
    f16 = {k: np.asarray(v, dtype=float) for k, v in format_row(load_format("bf16"), load_hardware("h100"), None,
                                                                 False, "ideal").items()}
    ops = attention_terms(enc, f16, 1.0, 1024.0, 0.0, 1.0, False)
    per_pair = 16 * (2 * (80 + 80) + SOFTMAX_OPS)  # 16 heads of 80: QK^T and PV, and the softmax
    assert float(ops["attention_local"][0]) == pytest.approx(28 * 1024 * 64 * per_pair)
    assert float(ops["attention"][0]) == pytest.approx(4 * 1024 * 1024 * per_pair)


def test_qwen25_vl_config_import_matches_the_spec():
    from pathlib import Path

    path = Path(__file__).parents[1] / "data" / "hf" / "qwen2_5_vl_7b.json"
    imported, spec = load_model(str(path)), load_model("qwen2.5-vl-7b")
    assert imported.vision_tower == spec.vision_tower
    assert param_breakdown(imported) == param_breakdown(spec)
    assert "vision_config" not in (imported.notes or "")


def test_images_without_a_text_prompt_warn_of_nothing(run_cli):
    """Cross-attention images with no text prompt: the text prefill takes 0 s, and the prompt's rate over the TTFT is
    no division by zero (numpy printed a RuntimeWarning before); the TTFT is the tower's and the projector's."""
    import json
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # numpy's division warning raises here
        code, out, err = run_cli("estimate", "llama-3.2-11b-vision", "--hw", "h100", "--images", "2", "--prompt", "0",
                                 "--context", "50", "--json")
    assert code == 0 and "Warning" not in err

    d = json.loads(out)
    v = d["vision"]
    assert d["ttft_s"] == pytest.approx(v["encoder_s"] + v["projector_s"]) and d["prefill_tokens_per_s"] in (0, None)
