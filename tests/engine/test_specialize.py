"""An estimate's lowering and timing on Python floats run code compiled per spec (engine/specialize.py,
engine/traced.py; phases.lower_phases, operators.lower): the same bits and types as the formulas evaluated as they
are, for every catalogue model."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine import evaluate, operators, phases, spec_keys
from costmodel.engine.attention import pair_coefficients
from costmodel.engine.columns import format_row, hardware_row, model_row, numbers
from costmodel.engine.operators import (OP_FIELDS, OP_NAMES, Specialized, _pack, entries, group_batch, lower,
                                       lower_attention, lower_formula, no_work)
from costmodel.engine.phases import PhaseOps, lower_phases
from costmodel.engine.specialize import compile_recording
from costmodel.engine.traced import Recording, Traced, Untraceable
from costmodel.engine.truth import all_plus
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import all_models, load_model

# workloads (batch, new tokens, context): plain ones first (a spec compiles on them), then edges its guards catch
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the edges' numpy retries (inf, NaN)

PLAIN = [(1.0, 1.0, 0.0), (7.0, 300.0, 0.0), (64.0, 1.0, 5000.0), (0.5, 2048.0, 100.0), (3.0, 1.0, 131072.0)]
EDGES = [(0.0, 0.0, 0.0), (1.0, 0.0, 7.0), (-0.0, 5.0, 0.0), (2.0, math.inf, 0.0), (1.0, 1.0, math.nan),
         (-3.0, 1.0, 0.0), (1e300, 1e300, 0.0)]


SPECIALIZED = (operators._SPECIALIZED, phases._SPECIALIZED, evaluate._SPECIALIZED)


@pytest.fixture(autouse=True)
def _compile_on_the_second_sighting():
    """The engine's specs compiled on their second sighting here (SIGHTINGS in use), so three calls test all paths."""
    saved = [s.after for s in SPECIALIZED]
    for s in SPECIALIZED:
        s.after = 2
    yield
    for s, after in zip(SPECIALIZED, saved):
        s.after = after


def _expected(args: tuple, busy_only: bool):
    """lower's result with its entries evaluated as they are (not compiled)."""
    ops, plain = entries(*args)
    if busy_only and plain:
        return _pack(ops, tuple(n for n in OP_NAMES if not (no_work(ops[n]) and all_plus(ops[n][5]))))
    return _pack(ops, OP_NAMES)


def _same(got, want, where: str) -> None:
    assert got.names == want.names, where
    for field in OP_FIELDS:
        a, b = getattr(got, field), getattr(want, field)
        assert a.dtype == b.dtype and a.shape == b.shape, (where, field)
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), (where, field, a, b)
    if want.columns is not None:  # an estimate's: the values as lower wrote them, Python floats
        assert got.columns is not None, where
        for col_a, col_b in zip(got.columns, want.columns):
            assert [type(x) for x in col_a] == [type(x) for x in col_b], where


def _lower_each(spec_cols, layout, work, decode, busy_only=False):
    m, f, hw = spec_cols
    tp, pp, dp, ep = layout
    args = (m, f, hw, *work, tp, pp, decode, dp, ep)
    want = _expected(args, busy_only)
    for _ in range(3):  # the formula, then compiled, then the compiled code's
        _same(lower(*args[:8], decode, dp, ep, busy_only), want, f"{work} {layout} decode={decode}")


def _columns(model, device, fmt, engine, kv=None):
    """Columns of Python floats as an estimate holds them (`kv`: a KV-cache format of its own)."""
    hw = load_hardware(device)
    f = format_row(load_format(fmt), hw, None if kv is None else load_format(kv), False, engine)
    return tuple(numbers(r) for r in (model_row(load_model(model)), f, hardware_row(hw, engine)))


@pytest.mark.parametrize("model", [m.id for m in all_models()])
def test_every_catalogue_model_lowers_the_same_compiled(model):
    """Every model of the catalogue at two devices, formats and tensor-parallel degrees, prefilling and decoding:
    compiled, the bits and types the formulas give; the edge workloads (zeros, -0.0, inf, NaN, negative batches)
    too, through the guards."""
    for device, fmt, tp in (("h100-sxm", "bf16", 1.0), ("mi300x", "fp8", 8.0), ("h100-sxm", "w4a16", 3.0)):
        cols = _columns(model, device, fmt, "vllm")
        for decode in (False, True):
            for work in PLAIN + EDGES:
                _lower_each(cols, (tp, 1.0, 1.0, 1.0), work, decode)
            _compiled(cols, (tp, 1.0, 1.0, 1.0), decode)


def _compiled(cols, layout, decode) -> None:
    """The spec's code was compiled (not left to the formula), but for a hierarchical vision backbone's, whose
    stages (backbone_ops) are numpy's tables: the formula's."""
    tp, pp, dp, ep = layout
    spec = spec_keys.spec_of(*cols, tp, pp, dp, ep, decode, 1.0, 1.0, 0.0)
    assert spec is not None
    if cols[0].get("bb", 0.0) > 0:
        assert operators._SPECIALIZED.codes.get(spec) == []
    else:
        assert operators._SPECIALIZED.codes.get(spec), (layout, decode)


def test_layouts_engines_and_kv_formats_lower_the_same_compiled():
    """DP attention, expert parallelism, pipeline stages, engines' flags (SGLang's overlap, NVLS) and KV formats:
    the same bits compiled, busy_only's operators too."""
    for model, engine, layout in itertools.product(
            ("deepseek-v3", "qwen3-30b-a3b", "llama-3.1-70b", "gemma-3-27b"), ("sglang", "trtllm", "vllm"),
            ((8.0, 1.0, 1.0, 1.0), (8.0, 2.0, 8.0, 8.0), (16.0, 1.0, 4.0, 4.0), (4.0, 4.0, 1.0, 2.0))):
        for fmt, kv in (("fp8", None), ("w4a16", "fp8"), ("bf16", "int4")):
            cols = _columns(model, "h200-sxm", fmt, engine, kv)
            for decode, busy_only in ((False, True), (False, False), (True, False)):
                for work in PLAIN[:3] + EDGES[:3]:
                    _lower_each(cols, layout, work, decode, busy_only)
                _compiled(cols, layout, decode)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["llama-3.1-8b", "deepseek-v3.2", "gemma-3-27b", "qwen3-next-80b-a3b", "bert-base",
                        "llama-3.2-11b-vision", "mixtral-8x7b", "llama-4-scout"]),
       st.floats(0.0, 1e4), st.floats(0.0, 1e5), st.floats(0.0, 1e6), st.booleans())
def test_any_workload_lowers_the_same_compiled(model, batch, n, c, decode):
    """Any batch, new tokens and context after a spec compiled on another: the formulas' bits."""
    cols = _columns(model, "h100-sxm", "bf16", "vllm")
    _lower_each(cols, (2.0, 1.0, 1.0, 1.0), PLAIN[1], decode)
    _lower_each(cols, (2.0, 1.0, 1.0, 1.0), (batch, n, c), decode)


def test_the_estimate_path_runs_compiled_code():
    """An estimate's lowerings are compiled on their second sighting and served from the code after."""
    import costmodel

    for s in SPECIALIZED:
        for held in (s.codes, s.tries, s.seen):
            held.clear()
    first = costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16", batch=4)
    assert not any(phases._SPECIALIZED.codes.values())
    for _ in range(2):
        again = costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16", batch=4)
        assert again.to_dict() == first.to_dict()
    codes = [c for c in phases._SPECIALIZED.codes.values() if c]
    assert len(codes) == 1 and "residual" in codes[0][0].source  # both phases lowered and timed in one code


@pytest.mark.parametrize("model", ["llama-3.1-70b", "deepseek-v3", "gemma-3-27b", "qwen3-next-80b-a3b", "bert-base",
                                   "llama-3.2-11b-vision", "llama-4-scout", "deepseek-v3.2", "mamba2-2.7b"])
def test_estimates_are_the_same_with_compiled_code(model, monkeypatch):
    """Whole estimates (every metric, memory, the phases' breakdown) at several workloads, engines and layouts:
    compiled code gives what the formulas evaluated on every call give."""
    import costmodel

    cases = [dict(batch=1), dict(batch=8, prompt=2000, gen=300, context=100), dict(batch="max", prompt=128),
             dict(batch=3, engine="sglang"), dict(batch=16, tp=2)]
    got = []
    for kw in cases:
        try:
            for _ in range(3):  # compiled by the second
                e = costmodel.estimate(model, "h200-sxm", "fp8", **kw)
        except Exception as err:  # a case the model refuses (an encoder's gen, tp over its heads): refused alike
            e = type(err)
        got.append(e if isinstance(e, type) else (e.to_dict(), e.explain()))
    monkeypatch.setattr(spec_keys, "columns_key", lambda d: None)  # no spec: the formulas on every call
    for kw, have in zip(cases, got):
        try:
            e = costmodel.estimate(model, "h200-sxm", "fp8", **kw)
        except Exception as err:
            assert have is type(err), kw
            continue
        assert have == (e.to_dict(), e.explain()), kw


PHASE_WORK = [(1.0, 512.0, 0.0, 1.0, 1.0, 512.0, 639.0), (8.0, 128.0, 0.0, 8.0, 1.0, 128.0, 383.0),
              (64.0, 4096.0, 1000.0, 64.0, 2.0, 5096.0, 5400.0), (3.0, 1.0, 0.0, 3.0, 1.0, 1.0, 1.0),
              (0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0), (1.0, 100.0, 0.0, 1.0, 1.0, 100.0, math.inf)]


@pytest.mark.parametrize("model", [m.id for m in all_models()])
def test_phases_lower_and_time_the_same_compiled(model):
    """Both phases of one configuration lowered and timed by compiled code (phases.lower_phases on Python floats):
    the Ops and the four figures of the formulas, bit for bit, every catalogue model, two layouts, plain and edge
    workloads."""
    for device, fmt, layout in (("h100-sxm", "bf16", (1.0, 1.0, 1.0, 1.0)), ("mi300x", "fp8", (8.0, 2.0, 2.0, 2.0))):
        m, f, hw = _columns(model, device, fmt, "sglang")
        tp, pp, dp, ep = layout
        for work in PHASE_WORK:
            Bc, prompt, context, Bd, n_dec, c0, c1 = work
            coef = pair_coefficients(m, f, n_dec, tp / dp, True)
            want = PhaseOps(lower_formula(m, f, hw, Bc, prompt, context, tp, pp, False, dp, ep),
                            lower_formula(m, f, hw, Bd, n_dec, c0, tp, pp, True, dp, ep, coefficients=coef),
                            lower_attention(m, f, group_batch(Bd, dp), n_dec, c1, tp / dp, True, coefficients=coef))
            try:
                want_t = want.times(hw, f)[:4]
            except ArithmeticError as err:
                want_t = type(err)
            for _ in range(3):
                got = lower_phases(m, f, hw, *work, tp, pp, dp, ep)
                for a, b in ((got.pre, want.pre), (got.d0, want.d0), (got.a1, want.a1)):
                    _same(a, b, f"{work} {layout}")
                try:
                    got_t = got.times(hw, f)[:4]
                except ArithmeticError as err:
                    got_t = type(err)
                if isinstance(want_t, type):
                    assert got_t is want_t
                    continue
                assert [type(x) for x in got_t] == [type(x) for x in want_t], work
                assert np.array_equal(np.array(got_t).view(np.int64), np.array(want_t).view(np.int64)), (work, got_t,
                                                                                                          want_t)
        spec = spec_keys.spec_of(m, f, hw, tp, pp, dp, ep, "phases", *PHASE_WORK[0])
        if m.get("bb", 0.0) > 0:  # a vision backbone's stages are numpy's tables: the formulas'
            assert phases._SPECIALIZED.codes.get(spec) == []
        else:
            assert phases._SPECIALIZED.codes.get(spec), (model, layout)


def test_a_recording_refuses_what_it_cannot_hold():
    """numpy's functions, float(), hashing and arrays raise Untraceable: the formula then runs as it is."""
    rec = Recording()
    x = Traced(2.0, "a0", rec)
    assert abs(-x).value == 2.0  # abs() is recorded, as the unary operators are
    for bad in (lambda: float(x), lambda: np.sqrt(x), lambda: hash(x), lambda: x * np.ones(2), lambda: x ** 2.0,
                lambda: np.asarray(x), lambda: np.where(True, x, 1.0)):
        with pytest.raises((Untraceable, TypeError)):
            bad()

    def formula(spec, a):
        return np.sqrt(a) if spec == "numpy" else (a * 3.0 + 1.0) / spec

    s = Specialized(formula, after=2)
    for _ in range(3):
        assert s("numpy", 4.0) == 2.0 and s(2.0, 1.0) == 2.0
    assert s.codes["numpy"] == [] and len(s.codes[2.0]) == 1


def test_guards_and_division_by_zero_fall_back_to_the_formula():
    """A branch taken on an input is a guard: other inputs get another compiled variant (at most VARIANTS) or the
    formula; a division by zero the formula raises is raised."""
    def formula(spec, a, b):
        return a / b if a > 0 else -a

    s = Specialized(formula, after=2)
    for a in (1.0, 1.0, 2.0, -1.0, -1.0, -2.0):
        assert s(None, a, 4.0) == formula(None, a, 4.0)
    assert len(s.codes[None]) == 2
    with pytest.raises(ZeroDivisionError):
        s(None, 1.0, 0.0)


def test_a_spec_is_recorded_on_its_sightings_th_call():
    """The formula alone until a spec's SIGHTINGS-th call (a CLI call lowers each spec once: no compile cost)."""
    from costmodel.engine.specialize import SIGHTINGS

    s = Specialized(lambda spec, a: a * 2.0)
    for i in range(1, SIGHTINGS + 2):
        assert s("x", float(i)) == 2.0 * i
        assert ("x" in s.codes) == (i >= SIGHTINGS)
    assert len(s.codes["x"]) == 1 and SIGHTINGS > 1


def test_a_spec_is_recorded_at_most_variants_times():
    """Inputs that take a branch of their own each: VARIANTS codes, then the formula alone (no more recordings)."""
    from costmodel.engine.specialize import VARIANTS

    def formula(spec, a):
        for k in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0):
            if a == k:
                return a * k
        return -a

    s = Specialized(formula, after=2)
    for a in (1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 2.0, 6.0):
        assert s("x", a) == formula("x", a)
    assert len(s.codes["x"]) == VARIANTS == s.tries["x"]


def test_a_decode_attention_crossing_its_roof_compiles_the_same():
    """mean_total's branch where compute minus memory changes sign over the context takes abs(): recorded, the same
    bits as the formulas. DeepSeek V3's weight-absorbed MLA decode on one device: memory-bound on its first keys
    (the activations' bytes), compute-bound over a long context."""
    m, f, hw = _columns("deepseek-v3", "h200-sxm", "fp8", "sglang")
    for work in ((1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 60000.0), (4.0, 100.0, 0.0, 4.0, 1.0, 100.0, 100000.0)):
        coef = pair_coefficients(m, f, work[4], 1.0, True)
        want = PhaseOps(lower_formula(m, f, hw, *work[:3], 1.0, 1.0, False),
                        lower_formula(m, f, hw, *work[3:6], 1.0, 1.0, True, coefficients=coef),
                        lower_attention(m, f, work[3], work[4], work[6], 1.0, True, coefficients=coef)).times(hw, f)
        for _ in range(3):
            got = lower_phases(m, f, hw, *work, 1.0, 1.0, 1.0, 1.0).times(hw, f)
            assert np.array_equal(np.array(got[:4]).view(np.int64), np.array(want[:4]).view(np.int64))
    spec = spec_keys.spec_of(m, f, hw, 1.0, 1.0, 1.0, 1.0, "phases", *work)
    assert any("abs(" in code.source for code in phases._SPECIALIZED.codes[spec])  # the branch was recorded


def test_dead_arithmetic_is_left_out_and_repeats_recorded_once():
    rec = Recording()
    a = Traced(2.0, "a0", rec)
    a * 5.0  # nothing reads it
    y = (a + 1.0) * (a + 1.0)
    code = compile_recording(rec, 1, (y, 0.0))
    assert code(3.0) == (16.0, 0.0)
    assert code.source.count("a0 + ") == 1 and "* k" not in code.source


def test_phase_figures_follow_columns_changed_after_lowering():
    """Figures compiled code gave at lowering are the timing's only while the device and format columns hold the
    values they were lowered with: a column changed in place (a caller timing other efficiencies) is timed anew."""
    m, f, hw = _columns("llama-3.1-8b", "h100-sxm", "bf16", "vllm")
    for _ in range(3):
        ops = lower_phases(m, f, hw, *PHASE_WORK[0], 1.0, 1.0, 1.0, 1.0)
    assert ops.timed is not None
    before = ops.times(hw, f)[:4]
    hw["kernel_overhead_s"] *= 2.0
    hw["compute_efficiency"] /= 2.0
    after = ops.times(hw, f)[:4]
    assert after == PhaseOps(ops.pre, ops.d0, ops.a1).times(hw, f)[:4] and after[0] > before[0]


def test_a_lowering_timed_on_other_columns_is_timed_on_them():
    """PhaseOps lowered by compiled code and timed on columns holding numpy values (a caller's other efficiencies):
    timed on those, as the formulas' PhaseOps is; no error."""
    m, f, hw = _columns("llama-3.1-8b", "h100-sxm", "bf16", "vllm")
    ops = lower_phases(m, f, hw, *PHASE_WORK[0], 1.0, 1.0, 1.0, 1.0)
    hw2 = dict(hw, compute_efficiency=np.float64(0.5))
    assert ops.times(hw2, f)[:4] == PhaseOps(ops.pre, ops.d0, ops.a1).times(hw2, f)[:4]


def test_lowering_never_raises_the_timings_errors(monkeypatch):
    """A zero memory efficiency divides by zero when timing, not when lowering (evaluate's stage one), compiled or
    not; evaluate then gives what it gives with the formulas (numpy's scalars)."""
    from costmodel.engine.evaluate import evaluate, lower_all

    m, f, hw = _columns("llama-3.1-8b", "h100-sxm", "bf16", "vllm")
    hw0 = dict(hw, memory_efficiency=0.0)
    args = (4.0, 512.0, 200.0, 0.0, 1.0, 1.0, 1.0)
    with np.errstate(all="ignore"):
        for _ in range(3):
            assert lower_all(m, f, hw0, *args).phases.timed is None
            got = evaluate(m, f, hw0, *args).metrics
        monkeypatch.setattr(spec_keys, "columns_key", lambda d: None)
        want = evaluate(m, f, hw0, *args).metrics
    assert {k: repr(v) for k, v in got.items()} == {k: repr(v) for k, v in want.items()}


def test_columns_changed_in_place_are_keyed_anew():
    """A columns dict changed in place after a lowering: a new value (-0.0 for 0.0 too: their results differ), or an
    array, gives what the formulas give."""
    m, f, hw = _columns("llama-3.1-8b", "h100-sxm", "bf16", "vllm")
    args = (1.0, 512.0, 0.0, 1.0, 1.0, False, 1.0, 1.0)
    for _ in range(3):
        lower(m, f, hw, *args)
    m["cross_tokens"] = -0.0  # a text model's: 0.0 in the catalogue
    want = _expected((m, f, hw, *args), False)
    for _ in range(3):
        _same(lower(m, f, hw, *args), want, "-0.0 column")
    hw["bandwidth"] = np.array([hw["bandwidth"]] * 2)
    got = lower(m, f, hw, *args)
    assert got.flops.shape == want.flops.shape  # the formulas' (no truth of an array asked)


def test_specialized_is_safe_between_threads():
    """Four threads calling one Specialized over more specs than it keeps: no errors, the formula's values."""
    import sys
    import threading

    from costmodel.engine import specialize

    s = Specialized(lambda spec, a: a * spec + 1.0, after=2)
    errors = []

    def run(seed):
        try:
            for i in range(6000):
                spec = float((i * 7 + seed) % (specialize.SPECS + 16))
                assert s(spec, 2.0) == 2.0 * spec + 1.0
        except Exception as err:  # noqa: BLE001 (any error fails the test below)
            errors.append(err)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    assert len(s.codes) <= specialize.SPECS


MEMORY_WORK = [(512.0, 128.0, 0.0, 1.0), (100.0, 8000.0, 0.0, 0.5), (0.0, 1.0, 0.0, 1.0), (4096.0, 0.0, 10000.0, 1.0),
               (1.0, 1.0, 1e300, 1.0), (-0.0, 2.0, 0.0, 1.0)]


@pytest.mark.parametrize("model", [m.id for m in all_models()])
def test_memory_terms_are_the_same_compiled(model):
    """memory.batch_free_terms (the largest batch, one sequence's memory, the pool in tokens, ...) by code compiled
    per spec (evaluate._per_sequence on Python floats): the formulas' bits and types, every catalogue model."""
    from costmodel.engine.memory import batch_free_terms, kv_pool

    for device, fmt, layout in (("h100-sxm", "bf16", (1.0, 1.0, 1.0, 1.0)), ("mi300x", "fp8", (8.0, 1.0, 2.0, 2.0))):
        m, f, hw = _columns(model, device, fmt, "vllm")
        pool = kv_pool(m, f, hw, *layout)
        for prompt, gen, context, held in MEMORY_WORK:
            with np.errstate(all="ignore"):
                want = batch_free_terms(m, f, hw, prompt, gen, context, *layout, held, *pool)
                for _ in range(3):
                    got = evaluate._per_sequence(m, f, hw, prompt, gen, context, *layout, held, pool)
            seq = tuple(getattr(got["seq"], k) for k in ("weights", "kv", "act", "work", "pool", "reserve",
                                                         "capacity"))
            flat = (got["bmax"], *seq, got["full_len"], got["one_long"], got["kv_tokens"], got["state"])
            assert [type(x) for x in flat] == [type(x) for x in want]
            assert np.array_equal(np.array(flat, dtype=float).view(np.int64),
                                  np.array(want, dtype=float).view(np.int64)), (prompt, gen, context, held)
        spec = spec_keys.spec_of(m, f, hw, *layout, "memory", *MEMORY_WORK[0], *pool)
        assert spec is not None
        if m.get("bb", 0.0) > 0:  # a vision backbone's working set is numpy's tables: the formulas'
            assert evaluate._SPECIALIZED.codes.get(spec) == []
        else:
            assert evaluate._SPECIALIZED.codes.get(spec)  # compiled


def test_estimates_never_write_into_their_shared_columns(monkeypatch):
    """An estimate's columns are one set of dicts per spec (estimate._spec_columns), shared by every estimate of it
    (their Keys remembered): estimates with every feature that sets a column leave them as they were."""
    import copy
    import importlib

    import costmodel

    est = importlib.import_module("costmodel.estimate")  # the module (costmodel.estimate is the function)
    given = []
    spec_columns = est._spec_columns

    def recorded(*args):
        out = spec_columns(*args)
        given.append(out)
        return out

    monkeypatch.setattr(est, "_spec_columns", recorded)
    calls = [("llama-3.2-11b-vision", "h100-sxm", "bf16", dict(images=2)),
             ("llama-3.1-8b", "h100-sxm", "bf16", dict(kv_predict="llama-3.2-1b", prompt=4000)),
             ("deepseek-v3", "h200-sxm", "fp8", dict(tp=8, dp=8, ep=8, mtp=2, batch=64, engine="sglang")),
             ("llama-3.1-8b", "h100-sxm", "bf16", dict(prefix_hit=0.5, batch="max", prompt=2000)),
             ("llama-3.1-70b", "h100-sxm", "w4a16", dict(batch=4, context=3000))]
    for model, device, fmt, kw in calls:
        given.clear()
        costmodel.estimate(model, device, fmt, **kw)
        shared = list(given)
        before = copy.deepcopy(shared)
        for _ in range(3):
            costmodel.estimate(model, device, fmt, **kw)
        assert given[-1] is shared[-1] or given[-1] == shared[-1]
        assert shared == before, (model, kw)
