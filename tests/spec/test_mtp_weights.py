"""Multi-token-prediction modules (issue 17): counted from the spec, loaded with --mtp only."""
import pytest

from costmodel.spec.model_catalog import load_model
from costmodel.spec.parameters import attention_params, mtp_breakdown, mtp_param_count, param_breakdown, param_count


def test_deepseek_v3_main_plus_mtp_is_the_hubs_685b():
    # DeepSeek-V3 card: 685B on the Hub = 671B main model + 14B MTP module; the checkpoint's module
    # carries its own copies of the embedding and LM head (129,280 x 7,168 each)
    m = load_model("deepseek-v3")
    b = param_breakdown(m)
    hub = param_count(m) + mtp_param_count(m) + b["embedding"] + b["lm_head"]
    assert hub == pytest.approx(685e9, rel=0.005)
    assert m.mtp_layers == 1 and mtp_param_count(m) + b["embedding"] + b["lm_head"] == pytest.approx(14e9, rel=0.05)


def test_deepseek_v3_module_hand_counted():
    m = load_model("deepseek-v3")
    h, E = 7168, 256
    experts = E * 3 * h * 2048
    shared = 3 * h * 2048
    mla_norms = 512 + 1536
    small = 2 * h + mla_norms + 3 * h + h * E  # layer norms, latent norms, enorm/hnorm/head norm, router
    linear = attention_params(m) + experts + shared + 2 * h * h
    got = mtp_breakdown(m)
    assert got["experts"] == experts and got["shared"] == shared and got["mixer"] == attention_params(m)
    assert got["linear"] == linear and got["small"] == small


def test_estimate_loads_the_module_only_with_mtp():
    import costmodel
    import numpy as np

    kw = dict(tp=8, devices=8, batch=32)
    base = costmodel.estimate("deepseek-r1", "h200-sxm", "fp8", **kw).memory_dict()["weights_bytes"]
    same = costmodel.estimate("deepseek-r1", "h200-sxm", "fp8", mtp=0, **kw).memory_dict()["weights_bytes"]
    with_mtp = costmodel.estimate("deepseek-r1", "h200-sxm", "fp8", mtp=2, **kw)
    b = mtp_breakdown(load_model("deepseek-r1"))
    # FP8 matrices (1 byte), norms and router in 16 bits, all over 8 tensor-parallel ranks
    assert base == same
    assert with_mtp.memory_dict()["weights_bytes"] - base == pytest.approx((b["linear"] * 1 + b["small"] * 2) / 8, rel=1e-9)
    assert any("11.6B parameters" in n for n in with_mtp.notes)
    dense = costmodel.estimate("llama-3.1-8b", "h100-sxm", "bf16", mtp=2)
    assert any("no MTP module" in n for n in dense.notes)
    assert dense.memory_dict()["weights_bytes"] == costmodel.estimate("llama-3.1-8b", "h100-sxm", "bf16").memory_dict()["weights_bytes"]
    assert np.isfinite(with_mtp.metric("tpot_s")).all()


def test_mtp_layers_are_read_from_specs_and_checked(tmp_path):
    from costmodel.errors import SpecError

    assert load_model("glm-4.5").mtp_layers == 1 and load_model("minimax-m2").mtp_layers == 3
    assert load_model("llama-3.1-8b").mtp_layers == 0 and mtp_param_count(load_model("llama-3.1-8b")) == 0
    bad = tmp_path / "bad.yaml"
    text = (load_model("llama-3.2-1b").file and open(load_model("llama-3.2-1b").file).read())
    bad.write_text(text.replace("    kind: decoder\n", "    kind: decoder\n    mtp_layers: -1\n", 1))
    with pytest.raises(SpecError, match="mtp_layers"):
        load_model(str(bad))
