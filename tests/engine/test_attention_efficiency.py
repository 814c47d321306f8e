"""Per-engine attention efficiency (issue 14): attention kernels reach their own fraction of the roofs."""
import numpy as np
import pytest

from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.attention import FUSED_ATTENTION
from costmodel.engine.operators import ATTENTION, OP_NAMES, OP_UNITS, lower
from costmodel.engine.roofline import op_times
from costmodel.spec.engine_params import efficiency_for
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model


def _cols(engine="ideal", **over):
    m, h, f = load_model("llama-3.1-8b"), load_hardware("h100-sxm"), load_format("bf16")
    arr = lambda d: {k: np.asarray(v, dtype=float) for k, v in d.items()}  # noqa: E731
    hc = arr(hardware_row(h, engine))
    hc.update({k: np.asarray(v, dtype=float) for k, v in over.items()})
    return arr(model_row(m)), arr(format_row(f, h, None, False, engine)), hc


@pytest.mark.parametrize("decode,context", [(False, 32768), (True, 32768)])  # prefill: compute-bound; decode: KV reads
def test_attention_time_scales_by_one_over_its_efficiency_and_nothing_else_moves(decode, context):
    m, f, hw1 = _cols(compute_efficiency=0.7, memory_efficiency=0.9, attention_efficiency=1.0)
    hw2 = {**hw1, "attention_efficiency": np.asarray(0.5)}
    ops = lower(m, f, hw1, batch=8, new_tokens=1 if decode else 2048, context=context, tp=1, pp=1, decode=decode)
    t1, t2 = op_times(ops, hw1, f), op_times(ops, hw2, f)
    a = OP_NAMES.index("attention")
    # llama-3.1-8b: 32 global layers; the attention operator's core time doubles (0.7 x 0.5, 0.9 x 0.5)
    assert float(np.maximum(t2.compute, t2.memory)[a]) == pytest.approx(
        2 * float(np.maximum(t1.compute, t1.memory)[a]), rel=1e-12)
    others = [i for i, n in enumerate(OP_NAMES) if n not in FUSED_ATTENTION]
    np.testing.assert_array_equal(t1.total[others], t2.total[others])


def test_hand_computed_prefill_attention_time():
    # one sequence, 2048 new tokens at context 0 (causal: 2048*2049/2 pairs), 32 layers, 32 heads x 128:
    # FLOPs = 32 heads * (2 * (128 + 128) + 5 softmax ops) * pairs * 32 layers; time = FLOPs / (989.4e12 * 0.7 * 0.6 * rows/(rows+16))
    m, f, hw = _cols(compute_efficiency=0.7, attention_efficiency=0.6, compute_half_rows=16.0)
    ops = lower(m, f, hw, batch=1, new_tokens=2048, context=0, tp=1, pp=1, decode=False)
    a = OP_NAMES.index("attention")
    pairs = 2048 * 2049 / 2
    flops = 32 * (2 * 256 + 5) * pairs * 32
    assert float(ops.flops[a]) == pytest.approx(flops, rel=1e-9)
    rows = float(ops.rows[a])
    peak = float(hw["peak_attention"])
    want = flops / (peak * 0.7 * 0.6 * rows / (rows + 16))
    assert float(op_times(ops, hw, f).compute[a]) == pytest.approx(want, rel=1e-9)


def test_efficiency_product_is_capped_at_the_roof():
    m, f, hw = _cols(compute_efficiency=0.9, memory_efficiency=0.95, attention_efficiency=3.0, compute_half_rows=1e-9)
    ops = lower(m, f, hw, batch=1, new_tokens=4096, context=0, tp=1, pp=1, decode=False)
    a = OP_NAMES.index("attention")
    t = op_times(ops, hw, f)
    assert float(t.compute[a]) == pytest.approx(float(ops.flops[a]) / float(hw["peak_attention"]), rel=1e-6)
    assert float(t.memory[a]) == pytest.approx(float(ops.bytes[a]) / float(hw["bandwidth"]), rel=1e-9)


def test_only_the_fused_attention_kernels_take_the_attention_efficiency():
    # not the DSA indexer (a GEMM-like scoring pass) nor the recurrent scans that share the attention unit
    assert FUSED_ATTENTION == ("attention", "attention_local", "attention_chunked", "cross_attention")
    assert {OP_NAMES[i] for i in np.where(OP_UNITS == ATTENTION)[0]} >= set(FUSED_ATTENTION)
    m, f, hw1 = _cols(attention_efficiency=1.0)
    hw2 = {**hw1, "attention_efficiency": np.asarray(0.25)}
    ops = lower(m, f, hw1, batch=4, new_tokens=512, context=4096, tp=1, pp=1, decode=False)
    moved = np.where(op_times(ops, hw1, f).total != op_times(ops, hw2, f).total)[0]
    assert {OP_NAMES[i] for i in moved} == {"attention"}  # llama-3.1-8b: global layers only


def test_default_is_sourced_and_calibration_leaves_it_alone():
    eff = efficiency_for("h100-sxm", "nvidia-datacenter", "ideal")
    assert eff.attention_efficiency == 1.0 and "Shah et al. 2024" in eff.sources["attention_efficiency"]
    # fitted engines keep the stated value: a fitted one did not lower held-out error (defaults.yaml)
    fitted = efficiency_for("h100-sxm", "nvidia-datacenter", "trt-llm")
    assert fitted.sources["compute_efficiency"].startswith("fit")
    assert fitted.attention_efficiency == 1.0 and not fitted.sources["attention_efficiency"].startswith("fit")


def test_an_engine_block_sets_its_attention_kernels_and_long_contexts_slow_down(user_catalog):
    import costmodel

    def tpot(**kw):
        return costmodel.estimate("llama-3.1-8b", "h100-sxm", "bf16", engine="vllm", batch=16, prompt=32768,
                                  gen=256, **kw).metric("tpot_s")

    before = float(np.asarray(tpot()).reshape(-1)[0])
    (user_catalog / "calibration" / "mine.yaml").write_text(
        "engines:\n  vllm:\n    global:\n      attention_efficiency: {value: 0.5, source: my profile}\n")
    from costmodel.spec import engine_params

    engine_params._tables.cache_clear()  # calibration files are read once per search path
    eff = efficiency_for("h100-sxm", "nvidia-datacenter", "vllm")
    assert eff.attention_efficiency == 0.5 and eff.sources["attention_efficiency"] == "my profile"
    after = float(np.asarray(tpot()).reshape(-1)[0])
    assert after > before * 1.2  # 16 sequences at 32k context: KV reads dominate a decode step


@pytest.mark.parametrize("value", [0, -1, 5])
def test_out_of_range_attention_efficiency_is_refused_with_the_file(user_catalog, value):
    from costmodel.errors import CostModelError

    (user_catalog / "calibration" / "bad.yaml").write_text(
        f"engines:\n  vllm:\n    global:\n      attention_efficiency: {{value: {value}, source: mine}}\n")
    with pytest.raises(CostModelError, match=rf"bad.yaml: .*attention_efficiency: {float(value)} is out of range"):
        efficiency_for("h100-sxm", "nvidia-datacenter", "vllm")
