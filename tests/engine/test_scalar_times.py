"""One configuration on Python floats (an estimate): scalar_times' phase times and the whole evaluation give
numpy's bits (NaN as NaN), and a Python float division by zero falls back to numpy's scalars (inf and NaN, not
an error), also in what an estimate computes after the engine (images, KV prediction)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from costmodel.engine import evaluate as evaluate_module
from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.evaluate import evaluate, lower_all
from costmodel.engine.operators import OP_NAMES
from costmodel.engine.phases import over_ops
from costmodel.engine.scalar_times import array_sum
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model

SPECIAL = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 5e-324, 1e300, -1e300]
VALUES = st.one_of(st.sampled_from(SPECIAL), st.floats(allow_nan=True, allow_infinity=True),
                   st.floats(-1e3, 1e3))
MODELS = ["llama-3.1-8b", "llama-3.1-70b", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b", "bert-base",
          "llama-3.2-11b-vision", "mixtral-8x7b", "deepseek-v3.2", "mamba2-2.7b", "jamba-v0.1", "llama-4-scout"]


def _bits(x) -> np.ndarray:
    """The float64 bits, every NaN as one: x86 returns one operand's NaN where two meet, and CPython's specialized
    float addition (after a few calls of the same code) picks the other operand from its generic path's."""
    x = np.reshape(np.asarray(x, dtype=float), -1)
    return np.where(np.isnan(x), np.float64(np.nan), x).view(np.uint64)


def _same(a, b, what: str) -> None:
    np.testing.assert_array_equal(_bits(a), _bits(b), err_msg=what)


@settings(max_examples=300, deadline=None)
@given(st.lists(VALUES, max_size=300))
def test_array_sum_is_the_sum_of_a_configuration_among_others(values):
    """One configuration's sum over its operators has the bits of its column in numpy's sum of two or more
    configurations' (each operator added in turn), and of phases.over_ops of it alone (which numpy's own sum of a
    1-D array, pairwise, need not have)."""
    with np.errstate(all="ignore"):
        x = np.array(values, dtype=float)
        want = np.stack([x, np.zeros_like(x)], axis=1).sum(axis=0)[0] if values else 0.0
        _same(array_sum(values), want, f"{len(values)} values")
        _same(array_sum(values), over_ops(x) if values else 0.0, f"{len(values)} values, over_ops")


def _columns(model: str, device: str, fmt: str, engine: str, kind) -> tuple[dict, dict, dict]:
    m, hw = load_model(model), load_hardware(device)
    rows = model_row(m), format_row(load_format(fmt), hw, None, False, engine), hardware_row(hw, engine)
    return tuple({k: kind(v) for k, v in r.items()} for r in rows)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(["h100-sxm", "mi300x", "l40s", "b200"]),
       st.sampled_from(["bf16", "fp8", "w4a16"]), st.sampled_from(["vllm", "sglang", "trtllm", "llama.cpp"]),
       st.sampled_from([1.0, 7.0, -1.0]), st.sampled_from([1.0, 512.0, 9000.0]), st.sampled_from([0.0, 3000.0]),
       st.sampled_from([1.0, 2.0, 8.0]), st.sampled_from([1.0, 0.55, 1.6]), st.sampled_from([0.0, 1.0]),
       st.sampled_from([float, np.float64]))
def test_scalar_phase_times_are_numpys(model, device, fmt, engine, batch, prompt, context, tp, attention, overlap,
                                       kind):
    """PhaseOps._scalar's four figures (prefill and decode step times and busy fractions) equal _numpy's, with
    the attention kernels' own efficiency on and off, collectives overlapped or not, dequantization work."""
    m, f, hw = _columns(model, device, fmt, engine, kind)
    hw.update(attention_efficiency=kind(attention), comm_overlap=kind(overlap))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's inf and NaN where a model lacks a part
        try:
            lw = lower_all(m, f, hw, batch, prompt, 200.0, context, tp, 1.0, 1.0)
            got = lw.phases._scalar(hw, f)
        except ArithmeticError:  # a Python float over zero: evaluate repeats on numpy's scalars (below)
            assert kind is float
            return
        want = lw.phases._numpy(hw, f)
    assert got is not None
    for name, a, b in zip(("prefill step", "prefill busy", "decode step", "decode busy"), got[:4], want[:4]):
        _same(a, b, name)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(MODELS), st.sampled_from(["h100-sxm", "mi300x", "l40s"]), st.sampled_from(["bf16", "fp8",
                                                                                               "w4a16"]),
       st.sampled_from([1.0, 7.0, -1.0]), st.sampled_from([0.0, 1.0, 3000.0]), st.sampled_from([1.0, 8.0]),
       st.sampled_from([0.0, 2.0]))
def test_python_floats_give_numpy_scalars_bits(model, device, fmt, batch, prompt, tp, mtp):
    """An evaluation on Python floats (estimate's columns) equals the array path's on a column of one: every
    metric and memory figure, bit for bit."""
    got = evaluate(*_columns(model, device, fmt, "vllm", float), batch, prompt, 200.0, 0.0, tp, 1.0, 1.0, mtp=mtp)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = evaluate(*_columns(model, device, fmt, "vllm", lambda v: np.array([v], dtype=float)),
                        *(np.array([x]) for x in (batch, prompt, 200.0, 0.0, tp, 1.0, 1.0)), mtp=np.array([mtp]))
    for k, v in want.metrics.items():
        _same(got.metrics[k], v, k)
    for k in want.memory.__dataclass_fields__:
        _same(getattr(got.memory, k), getattr(want.memory, k), k)


def test_a_python_float_division_by_zero_falls_back_to_numpys_scalars(monkeypatch):
    """With no half-rows constant an operator of no rows divides 0 by 0: Python raises, numpy gives NaN.
    evaluate repeats the evaluation on numpy's scalars and returns numpy's values."""
    calls = []
    real = evaluate_module.numpy_scalars
    monkeypatch.setattr(evaluate_module, "numpy_scalars", lambda x: calls.append(1) or real(x))
    m, f, hw = _columns("llama-3.1-8b", "h100-sxm", "bf16", "vllm", float)
    hw["compute_half_rows"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ZeroDivisionError):
            lower_all(m, f, hw, 4.0, 512.0, 200.0, 0.0, 1.0, 1.0, 1.0).phases.times(hw, f)
        got = evaluate(m, f, hw, 4.0, 512.0, 200.0, 0.0, 1.0, 1.0, 1.0)
        want = evaluate(*(real(c) for c in (m, f, hw)), *map(np.float64, (4.0, 512.0, 200.0, 0.0, 1.0, 1.0, 1.0)))
    assert calls, "the evaluation on Python floats did not raise"
    for k, v in want.metrics.items():
        _same(got.metrics[k], v, k)
    assert all(type(v) is not float for k, v in got.metrics.items() if k not in ("fits",))


@settings(max_examples=200, deadline=None)
@given(st.floats(0.01, 0.999), st.sampled_from([1, 2, 3]))
def test_draft_acceptance_powers_are_pows(alpha, n):
    """E(α, N) = (1 − α^(N+1)) / (1 − α) with N an integer (an estimate's --mtp): the scalar path computes α^(N+1)
    as a column of α against a column of exponents does (elementwise.power), never by numpy's shortcut for one
    exponent of 2 (α·α) nor by C's pow where numpy's loop is SVML's (AVX-512)."""
    from costmodel.engine.elementwise import power
    from costmodel.engine.speculative import alpha_for_length, tokens_per_step

    _same(tokens_per_step(alpha, n), tokens_per_step(np.array([alpha]), np.array([float(n)])), "E(alpha, N)")
    _same(power(alpha, np.float64(2.0)), np.power(np.array([alpha]), np.array([2.0]))[0], "alpha^2")
    length = float(tokens_per_step(alpha, n))
    _same(alpha_for_length(length, n), _bisection(length, n), "alpha for a length")


def _bisection(length: float, n: int) -> float:
    """alpha_for_length's bisection on numpy scalars and columns of one (the array path's arithmetic)."""
    from costmodel.engine.speculative import tokens_per_step

    lo, hi = 0.0, 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if float(tokens_per_step(np.array([mid]), np.array([float(n)]))[0]) < length:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def test_an_estimates_steps_after_the_engine_divide_as_numpy():
    """Images and KV prediction rescale the engine's metrics after it returns: with no prompt tokens their rates
    divide zero by zero, which gives NaN as before (numpy's scalars), not a ZeroDivisionError."""
    import costmodel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for e in (costmodel.estimate("llama-3.2-11b-vision", "h100-sxm", images=1, prompt=0, gen=1),
                  costmodel.estimate("llama-3.2-11b-vision", "h100-sxm", images=1, prompt=0, gen=128)):
            assert math.isfinite(e.metric("ttft_s")) and e.metric("ttft_s") > 0
            assert not any(type(v) in (float, bool) for v in e.result.metrics.values())  # numpy's, as before
    # without an image nothing precedes the first generated token: refused (KV prediction has no prompt to read)
    from costmodel.errors import WorkloadError

    with pytest.raises(WorkloadError, match="--prompt 0 with --gen 1: a generated token needs"):
        costmodel.estimate("llama-3.1-8b", "h100-sxm", kv_predict="llama-3.2-1b", prompt=0, gen=1)


RATES = st.one_of(st.sampled_from([1.0, 0.5, 3e-7, 1e15, 5e-324, 1e-310, 1e300, 0.0, -1.0, math.inf, math.nan]),
                  st.floats(1e-3, 1e16))
ZERO = st.sampled_from([0.0, -0.0])
_RATE_KEYS = ("compute_half_rows", "compute_efficiency", "memory_efficiency", "bandwidth", "peak_vector", "peak_attention",
              "attention_efficiency", "peak_matmul")
ROWS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 512.0, 1e12, -3.0, math.inf, math.nan]), st.floats(0.0, 1e6))


@settings(max_examples=300, deadline=None)
@example(entries=[(0.0,) * 7] * len(OP_NAMES), busy=[], work=1.0, overhead=0.0, fp32=0.0,  # scale = 1/5e-324: inf
         rates=dict.fromkeys(_RATE_KEYS, 1.0) | {"attention_efficiency": 5e-324})
@given(st.lists(st.tuples(ZERO, ZERO, ZERO, ZERO, st.sampled_from([0.0, -0.0, 1.0, 80.0]), ROWS, ZERO),
                min_size=len(OP_NAMES), max_size=len(OP_NAMES)),
       st.lists(st.integers(0, len(OP_NAMES) - 1), max_size=4), st.floats(1.0, 1e12),
       st.fixed_dictionaries(dict.fromkeys(_RATE_KEYS, RATES)),
       st.sampled_from([0.0, 5e-6, -1e-6, math.inf]), st.sampled_from([0.0, 1.0]))
def test_idle_operators_time_as_numpy(entries, busy, work, rates, overhead, fp32):
    """scalar_times.op_times leaves out the roofline of an operator of zero work (±0.0 FLOPs, bytes and dequantization)
    where every rate it would divide by is finite and above zero: its times are then the zeros themselves, with
    their signs, and the launches' overhead. Each field equals roofline.op_times' (numpy's) bit for bit, over rates
    that are zero, subnormal, huge, negative, inf or NaN, and rows that are negative, inf or NaN; where a Python float
    divides by zero the estimate repeats on numpy's scalars (evaluate), so there is nothing to compare."""
    from costmodel.engine import roofline, scalar_times
    from costmodel.engine.operators import Ops

    table = [list(e) for e in entries]
    for j in busy:  # a few operators with work, one field each
        table[j][j % 4] = work
    fields = np.array(table, dtype=float).T.copy()
    ops = Ops(*fields)
    f = {"peak_matmul": rates.pop("peak_matmul"), "attn_fp32": fp32}
    hw = {**rates, "kernel_overhead_s": overhead, "comm_latency_s": 2e-6, "interconnect": 9e11, "comm_efficiency": 0.8}
    try:
        got = scalar_times.op_times(ops, hw, f)
    except ArithmeticError:
        return
    with np.errstate(all="ignore"):
        want = roofline.op_times(ops, hw, f)
        total = want.total
    for name, a, b in zip(("compute", "memory", "fixed", "comm", "total"), (*got[:4], got[5]),
                          (want.compute, want.memory, want.fixed, want.comm, total)):
        _same(np.array(a), b, name)
