"""Hybrid and attention-free architectures: layer patterns, recurrent mixers, shared KV, config import."""
import pytest

from costmodel.errors import SpecError
from costmodel.spec.model_catalog import load_model
from costmodel.spec.parameters import active_param_count, param_breakdown, param_count

from tests.conftest import DATA

HF = DATA / "hf"


def test_qwen3_next_layers_and_gated_delta_net_shapes():
    m = load_model("qwen3-next-80b-a3b")
    assert (m.global_layers, m.recurrent_layers, m.local_layers) == (12, 36, 0)  # card: 12 x (3 DeltaNet + 1 attention)
    g = m.linear_attention
    # q, k: 16 heads x 128; v, z: 32 heads x 128; beta, alpha: one per value head
    assert g.in_width == 2 * 2048 + 2 * 4096 + 64
    assert g.conv_channels == 2 * 2048 + 4096
    assert g.state == 32 * 128 * 128  # one 128 x 128 state per value head
    assert g.decode_flops == 7 * 32 * 128 * 128
    assert g.prefill_flops == 32 * (2 * 64 * (3 * 128 + 2 * 128) + 6 * 128 * 128)


def test_qwen3_next_parameters_by_hand():
    m = load_model("qwen3-next-80b-a3b")
    b = param_breakdown(m)
    # gated attention: q_proj 2048 -> 2 x 16 x 256 (query + gate), k/v 2048 -> 2 x 256, o 4096 -> 2048
    assert b["attention"] == 12 * (2048 * 8192 + 2 * 2048 * 512 + 4096 * 2048)
    # DeltaNet: in_proj_qkvz + in_proj_ba (2048 -> 12352), out_proj 4096 -> 2048
    assert b["recurrent"] == 36 * (2048 * 12352 + 4096 * 2048)
    # conv 8192 x 4 (no bias), dt_bias + A_log (32 each), gated RMSNorm over 128
    assert b["recurrent_small"] == 36 * (8192 * 4 + 64 + 128)
    assert param_count(m) == pytest.approx(80e9, rel=0.01)  # card: 80B in total


def test_mamba2_state_and_parameters_by_hand():
    m = load_model("mamba2-2.7b")
    mx = m.mamba
    assert (m.recurrent_layers, m.attention_layers, m.dense_layers) == (64, 0, 0)
    assert (mx.d_inner, mx.heads) == (5120, 80)
    assert mx.in_width == 2 * 5120 + 2 * 128 + 80 == 10576  # z, x, B, C, dt
    assert mx.conv_channels == 5120 + 256
    assert mx.state == 80 * 64 * 128
    b = param_breakdown(m)
    assert b["recurrent"] == 64 * (2560 * 10576 + 5120 * 2560)
    assert b["recurrent_small"] == 64 * (5376 * 4 + 5376 + 3 * 80 + 5120)  # conv + bias, dt_bias/A/D, norm
    assert b["lm_head"] == 0 and b["embedding"] == 50288 * 2560  # tied, vocab padded to 16
    assert param_count(m) == pytest.approx(2.7e9, rel=0.01)


def test_jamba_mamba1_and_moe_counts():
    m = load_model("jamba-v0.1")
    assert (m.global_layers, m.recurrent_layers, m.moe_layers, m.dense_layers) == (4, 28, 16, 16)
    mx = m.mamba
    assert mx.inner_weights == 8192 * (256 + 32) + 256 * 8192  # x_proj + dt_proj
    assert mx.state == 8192 * 16
    assert param_count(m) == pytest.approx(52e9, rel=0.01)  # card: 52B total
    assert active_param_count(m) == pytest.approx(12e9, rel=0.01)  # card: 12B active


@pytest.mark.parametrize("model_id,tol", [("qwen3.5-397b-a17b", 0.03), ("jamba-v0.1", 0.01)])
def test_hybrid_active_parameters(model_id, tol):
    """Qwen3.5's card rounds to whole billions ('17B activated'): within the rounding."""
    m = load_model(model_id)
    assert active_param_count(m) == pytest.approx(m.published_active_params, rel=tol)


@pytest.mark.parametrize("fixture,catalogue", [("qwen3_next.json", "qwen3-next-80b-a3b"),
                                               ("qwen3_5_moe.json", "qwen3.5-397b-a17b"),
                                               ("mamba2_state_spaces.json", "mamba2-2.7b"),
                                               ("jamba_v0.1.json", "jamba-v0.1")])
def test_config_json_import_matches_the_catalogue(fixture, catalogue):
    imported, spec = load_model(str(HF / fixture)), load_model(catalogue)
    assert imported.layer_types == spec.layer_types
    assert param_breakdown(imported) == param_breakdown(spec)
    assert imported.recurrent_mixer == spec.recurrent_mixer


def test_config_import_names_what_it_does_not_model(tmp_path):
    q = load_model(str(HF / "qwen3_5_moe.json"))
    assert "vision_config" in q.notes and "mtp" not in q.notes and q.mtp_layers == 1  # MTP: imported (--mtp)
    p = tmp_path / "config.json"
    p.write_text('{"model_type": "llama", "hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,'
                 ' "intermediate_size": 128, "vocab_size": 100, "cross_attention_layers": [3], "altup_num_inputs": 4}')
    notes = load_model(str(p)).notes
    assert "fields not modelled" in notes and "altup_num_inputs, cross_attention_layers" in notes


def _spec(tmp_path, extra: str) -> str:
    base = (DATA / "tiny.yaml").read_text()
    p = tmp_path / "m.yaml"
    p.write_text(base.rstrip() + "\n" + "\n".join("    " + line for line in extra.strip().splitlines()) + "\n")
    return str(p)


@pytest.mark.parametrize("extra,message", [
    ("layer_pattern: [linear, global]", "no 'linear_attention:' block"),
    ("layer_pattern: [local, global]", "no sliding_window"),
    ("layer_pattern: [global, ssm]", "got 'ssm'; expected a list of global, local, chunked, linear, mamba"),
    ("layer_pattern: [chunked, global]", "no attention_chunk"),
    ("mamba: {d_state: 16}", "has no 'mamba' layers"),
    ("kv_shared_layers: 2", "must be below layers"),
    ("layer_pattern: [mamba]\nmamba: {version: 3, d_state: 16}", "expected 1 or 2"),
])
def test_bad_layer_specs_name_the_field(tmp_path, extra, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_model(_spec(tmp_path, extra))


def test_cross_layer_shared_kv_drops_kv_projections(tmp_path):
    base = load_model(str(DATA / "tiny.yaml"))
    shared = load_model(_spec(tmp_path, "kv_shared_layers: 1"))
    assert (shared.kv_global_layers, shared.global_layers) == (1, 2)
    # the sharing layer has no K/V projection: 2 x 64 x (2 kv heads x 16)
    assert param_count(base) - param_count(shared) == 2 * 64 * 32


def test_llama4_maverick_chunked_layers_and_interleaved_moe():
    m = load_model("llama-4-maverick")
    assert (m.chunked_layers, m.global_layers, m.moe_layers, m.dense_layers) == (36, 12, 24, 24)
    b = param_breakdown(m)
    assert b["experts"] == 24 * 128 * 3 * 5120 * 8192
    assert b["shared_experts"] == 24 * 3 * 5120 * 8192
    assert b["mlp"] == 24 * 3 * 5120 * 16384
    assert param_count(m) == pytest.approx(400e9, rel=0.01)
    assert active_param_count(m) == pytest.approx(17e9, rel=0.02)  # card: '17B (Activated)'


def test_llama4_config_import_matches_the_catalogue():
    imported, spec = load_model(str(HF / "llama4_maverick.json")), load_model("llama-4-maverick")
    assert imported.layer_types == spec.layer_types and imported.attention_chunk == 8192
    assert param_breakdown(imported) == param_breakdown(spec)
    assert "vision_config of llama4 not modelled" in imported.notes
