"""Operators that no layer of any configuration runs (a dense model's experts, recurrent, MLA or cross-attention
layers absent) are zero work without their formulas being evaluated (operators.lower's `absent`): the same bits
as the formulas give, and the formulas still run where the workload is not finite (0 x inf is NaN)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine import operators
from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.operators import OP_FIELDS, OP_NAMES, lower
from costmodel.engine.truth import all_plus, all_positive
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model

# dense, MoE with MLA, hybrid recurrent, cross-attention (vision), encoder: each has some operators absent
MODELS = ("llama-3.1-8b", "deepseek-v3", "qwen3-next-80b-a3b", "llama-3.2-11b-vision", "bert-base")


def _cols(model: str, shape=None):
    m, h, f = load_model(model), load_hardware("h100"), load_format("w4a16")
    rows = model_row(m), format_row(f, h), hardware_row(h, "vllm")
    if shape is None:  # one configuration on Python floats (an estimate's path)
        return tuple({k: float(v) for k, v in r.items()} for r in rows)
    return tuple({k: np.full(shape, float(v)) for k, v in r.items()} for r in rows)


def _lowered(monkeypatch, formulas: bool, *args, **kw):
    """lower(*args), with every operator's formulas evaluated (`formulas`: the shortcut's guard forced off)."""
    with monkeypatch.context() as mp:
        if formulas:
            mp.setattr(operators, "all_plus", lambda *a: False)
        return lower(*args, **kw)


def _bits(ops) -> list:
    return [np.asarray(getattr(ops, k), dtype=float).view(np.int64).tolist() for k in OP_FIELDS]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("decode", [False, True])
def test_absent_operators_have_the_formulas_bits(monkeypatch, model, decode):
    n = 4
    batch = np.array([1.0, 3.0, 64.0, 0.0])
    tokens = np.array([1.0, 700.0, 9000.0, 0.0]) if not decode else np.array([1.0, 2.0, 1.0, 1.0])
    context = np.array([0.0, 10.0, 4096.0, 0.0])
    tp, dp, ep = np.array([1.0, 2.0, 8.0, 4.0]), np.array([1.0, 1.0, 8.0, 4.0]), np.array([1.0, 2.0, 8.0, 4.0])
    m, f, hw = _cols(model, (n,))
    args = (m, f, hw, batch, tokens, context, tp, 1.0)
    kw = dict(decode=decode, dp=dp, ep=ep)
    assert _bits(_lowered(monkeypatch, False, *args, **kw)) == _bits(_lowered(monkeypatch, True, *args, **kw))
    m, f, hw = _cols(model)  # one configuration on Python floats
    args = (m, f, hw, 3.0, 1.0 if decode else 700.0, 100.0, 2.0, 1.0)
    kw = dict(decode=decode, dp=1.0, ep=2.0)
    assert _bits(_lowered(monkeypatch, False, *args, **kw)) == _bits(_lowered(monkeypatch, True, *args, **kw))


def test_a_dense_model_skips_its_experts_and_keeps_their_rows(monkeypatch):
    """The experts of a dense model: no FLOPs or bytes, no launches; their rows as the formulas give them."""
    m, f, hw = _cols("llama-3.1-8b", (2,))
    ops = lower(m, f, hw, np.array([2.0, 5.0]), np.array([100.0, 1.0]), 0.0, 1.0, 1.0, decode=False)
    for name in ("moe_router", "moe_up", "moe_act", "moe_down", "ssm_in_proj", "ssm_scan", "cross_attention"):
        j = OP_NAMES.index(name)
        for k in ("flops", "weight_bytes", "act_bytes", "kv_bytes", "launches", "dequant_flops"):
            assert getattr(ops, k)[j].tolist() == [0.0, 0.0], (name, k)
    assert ops.rows[OP_NAMES.index("moe_router")].tolist() == [200.0, 5.0]  # T = batch x tokens


@pytest.mark.parametrize("bad", [np.inf, np.nan, -0.0])
def test_a_workload_not_plus_keeps_the_formulas(bad):
    """0 x inf is NaN and +0.0 x -0.0 is -0.0: with such a batch the absent operators' FLOPs are what the
    formulas give."""
    m, f, hw = _cols("llama-3.1-8b", (2,))
    with np.errstate(invalid="ignore"):
        ops = lower(m, f, hw, np.array([2.0, bad]), 10.0, 0.0, 1.0, 1.0, decode=False)
    got = ops.flops[OP_NAMES.index("moe_up")]
    assert got[0] == 0.0 and not np.signbit(got[0])
    assert np.isnan(got[1]) if bad != 0 else (got[1] == 0.0 and np.signbit(got[1]))


values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3).map(float),
                   st.sampled_from([0.0, -0.0]))


@settings(max_examples=200, deadline=None)
@given(st.lists(values, min_size=1, max_size=5))
def test_all_plus_and_all_positive_match_numpy(xs):
    a = np.array(xs)
    plus = bool((np.isfinite(a) & (a >= 0) & ~np.signbit(a)).all())
    assert all_plus(a) == plus == all_plus(*xs) == all_plus(*a)  # arrays, Python floats, numpy scalars
    positive = bool(((a > 0) & np.isfinite(a)).all())
    assert all_positive(a) == positive == all_positive(*xs) == all_positive(*a)


def test_no_work_is_zeros_but_the_rows():
    """operators.no_work: an operator's FLOPs, bytes, launches and dequantization work all zeros (either sign, numbers
    or arrays), whatever its rows; a NaN, or one nonzero configuration, is work."""
    assert operators.no_work((0.0, -0.0, 0.0, np.zeros(3), np.zeros(3), np.ones(3), 0.0))
    assert not operators.no_work((0.0, 0.0, 0.0, 0.0, np.array([0.0, 1.0]), np.ones(2), 0.0))
    assert not operators.no_work((0.0, 0.0, np.array([0.0, np.nan]), 0.0, 0.0, 1.0, 0.0))
    assert not operators.no_work((0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1e-30))


@pytest.mark.parametrize("column, bad", [("compute_half_rows", 0.0), ("compute_efficiency", np.nan),
                                         ("memory_efficiency", -0.5), ("bandwidth", np.inf), ("peak_matmul", -1.0),
                                         ("peak_vector", 0.0), ("peak_attention", np.inf), ("attention_efficiency", 0.0),
                                         ("kernel_overhead_s", np.inf), ("comm_latency_s", np.nan),
                                         ("peak_vector", 5e-324), ("attention_efficiency", 5e-324)])
def test_rates_finite(column, bad):
    """roofline.rates_finite, which lets a sum leave out an operator of no work: every rate op_times divides by finite
    and above zero at every configuration, and its launch overhead and latency finite (zero too). A subnormal peak
    (1e-12 of it rounds to zero: 0 / 0) or attention efficiency (the bytes factor is inf: 0 x inf) is refused too,
    as scalar_times' idle operators refuse it (the same zeros_divide_to_zeros)."""
    from costmodel.engine.roofline import rates_finite

    hw = dict(compute_half_rows=np.array([64.0, 1.0]), compute_efficiency=0.5, memory_efficiency=0.7, bandwidth=3e12,
              kernel_overhead_s=0.0, comm_latency_s=np.array([0.0, 1e-6]), peak_vector=6e13, peak_attention=1e15)
    f = dict(peak_matmul=1e15, attn_fp32=0.0)
    assert rates_finite(hw, f)
    one_bad = np.array([1.0, bad])
    assert not (rates_finite(hw, dict(f, peak_matmul=one_bad)) if column == "peak_matmul" else
                rates_finite(dict(hw, **{column: one_bad}), f))
    if column == "peak_attention":  # attention computed in FP32 runs at the vector peak: the attention peak unread
        assert rates_finite(dict(hw, peak_attention=one_bad), dict(f, attn_fp32=1.0))


def test_an_idle_operator_of_nan_rows_is_kept():
    """lower(busy_only=True) leaves out an operator of no work only where its rows are +0.0 or more and finite: rows
    of NaN (a model of no attention heads: cross-attention's Hq / Hk is 0 / 0) give NaN time, which leaving it out
    would lose."""
    m, f, hw = _cols("llama-3.1-8b", (2,))
    m = dict(m, heads=np.zeros(2), kv_heads=np.zeros(2))
    with np.errstate(invalid="ignore", divide="ignore"):
        ops = lower(m, f, hw, np.array([2.0, 5.0]), np.array([100.0, 1.0]), 0.0, 1.0, 1.0, decode=False, busy_only=True)
        whole = lower(m, f, hw, np.array([2.0, 5.0]), np.array([100.0, 1.0]), 0.0, 1.0, 1.0, decode=False)
    j = OP_NAMES.index("cross_attention")
    assert operators.no_work(tuple(getattr(whole, k)[j] for k in OP_FIELDS)) and np.isnan(whole.rows[j]).all()
    assert "cross_attention" in ops.names and "moe_up" not in ops.names
