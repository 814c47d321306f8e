"""One configuration takes shortcuts past numpy's per-call cost (truth.any_nonzero, operators._pack and
roofline.unit_peaks on scalars): the same values as the array path, bit for bit."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.columns import format_row, hardware_row, model_row, scalars
from costmodel.engine.evaluate import evaluate
from costmodel.engine.operators import OP_FIELDS
from costmodel.engine.truth import any_nonzero
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model

NUMBERS = st.sampled_from([0.0, -0.0, 1.0, -2.5, np.nan, np.inf])


@given(NUMBERS, st.lists(NUMBERS, min_size=1, max_size=5))
def test_any_nonzero_is_np_any(x, xs):
    for value in (x, np.float64(x), np.asarray(x), np.bool_(x != 0), np.array(xs), np.array(xs) > 0):
        assert any_nonzero(value) == bool(np.any(value))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b", "bert-base",
                        "llama-3.2-11b-vision", "mixtral-8x7b", "deepseek-v3.2"]),
       st.sampled_from(["h100-sxm", "mi300x", "l40s"]), st.sampled_from(["bf16", "fp8", "w4a16"]),
       st.sampled_from([1.0, 7.0, -1.0]), st.sampled_from([0.0, 1.0, 3000.0]), st.sampled_from([1.0, 8.0]))
def test_one_configuration_equals_a_column_of_one(model, device, fmt, batch, prompt, tp):
    """A configuration's columns as scalars (an estimate) give the bits of the same columns as arrays of one row."""
    m, hw = load_model(model), load_hardware(device)
    rows = model_row(m), format_row(load_format(fmt), hw), hardware_row(hw, "vllm")
    one = evaluate(*(scalars(r) for r in rows), batch, prompt, 200.0, 0.0, tp, 1.0, 1.0)
    col = evaluate(*({k: np.array([v], dtype=float) for k, v in r.items()} for r in rows), np.array([batch]),
                   np.array([prompt]), 200.0, 0.0, tp, 1.0, 1.0)
    for k, v in one.metrics.items():
        _same_bits(v, col.metrics[k], k)
    for a, b in ((one.prefill_ops, col.prefill_ops), (one.decode_ops, col.decode_ops)):
        for field in OP_FIELDS:
            _same_bits(getattr(a, field), getattr(b, field)[:, 0], field)
    for field in ("compute", "memory", "fixed", "comm"):
        _same_bits(getattr(one.prefill_times, field), getattr(col.prefill_times, field)[:, 0], field)
    _same_bits(one.decode_times, col.decode_times[:, 0], "decode_times")


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([1.0, 2.0, 3.0, 5.0]), st.floats(0.05, 0.999), st.sampled_from([1.0, 16.0]))
def test_draft_tokens_equal_a_column_of_one(mtp, accept, batch):
    """MTP drafting's E(α, N) on one configuration equals a column's. Before the engine's scalars, α was a
    0-d array, whose square numpy computes as x·x while a column (and a scalar) calls pow: one last bit
    apart for some α at N = 1 (0.8329, 0.5102)."""
    from costmodel.engine.speculative import tokens_per_step

    for a in (accept, 0.8329, 0.5102):
        _same_bits(tokens_per_step(a, mtp), tokens_per_step(np.array([a]), np.array([mtp])), "tokens_per_step")
    m, hw = load_model("deepseek-v3"), load_hardware("h200-sxm")
    rows = model_row(m), format_row(load_format("fp8"), hw), hardware_row(hw, "sglang")
    one = evaluate(*(scalars(r) for r in rows), batch, 1000.0, 200.0, 0.0, 8.0, 1.0, 1.0, mtp=mtp, accept=accept)
    col = evaluate(*({k: np.array([v], dtype=float) for k, v in r.items()} for r in rows), np.array([batch]),
                   np.array([1000.0]), 200.0, 0.0, 8.0, 1.0, 1.0, mtp=mtp, accept=accept)
    for k, v in one.metrics.items():
        _same_bits(v, col.metrics[k], k)


def _same_bits(a, b, what: str) -> None:
    """Equal bit for bit (-0.0 is not 0.0; NaNs must match too)."""
    a, b = np.reshape(np.asarray(a, dtype=float), -1), np.reshape(np.asarray(b, dtype=float), -1)
    np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64), err_msg=what)


def test_unit_peaks_of_one_unit_equal_the_gathered_peaks():
    """Operators all on one unit (the decode's attention) take that unit's peak broadcast: the values the
    general path gathers per operator."""
    from costmodel.engine.attention import ATTENTION_OPS
    from costmodel.engine.operators import OP_NAMES, OP_UNITS, Ops
    from costmodel.engine.roofline import _peaks_by_unit, attention_peak, unit_peaks

    devices = [load_hardware(h) for h in ("h100-sxm", "mi300x", "l40s")]
    hw = {k: np.array([hardware_row(h, "vllm")[k] for h in devices]) for k in hardware_row(devices[0], "vllm")}
    f = {k: np.array([format_row(load_format(x), h)[k] for h, x in zip(devices, ("bf16", "fp8", "w4a16"))])
         for k in format_row(load_format("bf16"), devices[0])}
    per_unit = _peaks_by_unit(hw, f, attention_peak(hw, f))
    for names in (ATTENTION_OPS[:1], ATTENTION_OPS[:3], ("qkv_proj", "attention_indexer"), OP_NAMES):
        ops = Ops(*np.ones((len(OP_FIELDS), len(names), 3)), names=names)
        want = np.stack([np.broadcast_to(per_unit[int(OP_UNITS[OP_NAMES.index(n)])], (3,)) for n in names])
        _same_bits(unit_peaks(ops, hw, f), want, ",".join(names))


def test_an_estimates_operators_are_packed_where_read():
    """An estimate's lowering (every entry a Python float) is a NumberOps: scalar_times times its entries as they
    are, and its fields, packed when one is first read, are those of the same entries packed at once (operators.
    _numbers), bit for bit, after a pickle and in `take` too; dataclasses.replace gives one of its own fields. A numpy scalar among the columns gives plain Ops of
    the same bits; a column of one row, arrays."""
    import dataclasses
    import pickle

    from costmodel.engine.operators import NumberOps, Ops, _numbers, lower

    m, hw = load_model("deepseek-v3"), load_hardware("h100-sxm")
    rows = model_row(m), format_row(load_format("fp8"), hw), hardware_row(hw, "sglang")
    cols = [{k: float(v) for k, v in r.items()} for r in rows]
    for decode in (False, True):
        ops = lower(*cols, 8.0, 1.0 if decode else 700.0, 300.0, 8.0, 1.0, decode=decode, dp=8.0, ep=8.0)
        assert type(ops) is NumberOps and "flops" not in vars(ops)  # nothing packed yet
        assert all(type(x) is float for c in ops.columns for x in c) and len(ops.columns) == len(OP_FIELDS)
        packed = Ops(*_numbers(list(zip(*ops.columns))).T, names=ops.names)
        for got in (ops, pickle.loads(pickle.dumps(ops))):
            for field in OP_FIELDS:
                _same_bits(getattr(got, field), getattr(packed, field), field)
        _same_bits(ops.take([2, 0]).flops, packed.flops[[2, 0]], "take")
        doubled = dataclasses.replace(ops, flops=ops.flops * 2)
        assert doubled.columns is None and doubled.names == ops.names  # its own fields, timed as arrays
        _same_bits(doubled.flops, packed.flops * 2, "replace")
        _same_bits(doubled.rows, packed.rows, "replace")
        numpy_scalar = {**cols[0], "h": np.float64(cols[0]["h"])}
        plain = lower(numpy_scalar, *cols[1:], 8.0, 1.0 if decode else 700.0, 300.0, 8.0, 1.0, decode=decode, dp=8.0,
                      ep=8.0)
        assert type(plain) is Ops and plain.columns is None
        for field in OP_FIELDS:
            _same_bits(getattr(plain, field), getattr(packed, field), field)
        column = lower(*({k: np.array([v]) for k, v in c.items()} for c in cols), 8.0, 700.0, 300.0, 8.0, 1.0,
                       decode=decode, dp=8.0, ep=8.0)
        assert type(column) is Ops and column.flops.shape == (len(column.names), 1)
