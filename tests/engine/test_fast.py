"""The compiled kernels (engine/fast.py, the `costmodel[fast]` extra) give the numpy path's bits: the
phases' step times and busy fractions over the whole catalogue, every layout and timing column."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from costmodel.engine import fast, numba_setup
from costmodel.engine.columns import format_columns, hardware_columns, model_columns, take
from costmodel.engine.evaluate import finish, lower_all
from costmodel.engine.memory import Memory
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import all_models

pytest.importorskip("numba")


def test_the_kernels_load():
    """Every comparison below is numpy against the kernels only if they load (a failed load falls back to numpy)."""
    assert fast._kernels() is not None


def _columns(n=800, seed=3):
    """Random catalogue configurations: every model (dense, MoE, MLA, windows, encoders, recurrent),
    three devices, four formats (dequantized weights among them), zero lengths, tp up to 8."""
    models = all_models()
    hws = [load_hardware(h) for h in ("h100-sxm", "mi300x", "rtx-4090")]
    fmts = ("bf16", "fp8", "w4a16", "nvfp4")
    pairs = [(load_format(f), h, None, False) for h in hws for f in fmts]
    rng = np.random.default_rng(seed)
    mi, hi = rng.integers(0, len(models), n), rng.integers(0, len(hws), n)
    fi = hi * len(fmts) + rng.integers(0, len(fmts), n)
    cols = take(model_columns(models), mi), take(format_columns(pairs), fi), take(hardware_columns(hws), hi)
    work = (rng.choice([1.0, 16.0, -1.0], n), rng.choice([0.0, 1.0, 900.0], n), rng.choice([1.0, 2.0, 300.0], n),
            rng.choice([0.0, 5000.0], n), rng.choice([1.0, 2.0, 3.0, 8.0], n), 1.0, 1.0)
    return cols, work, rng


def _groups(*tables) -> np.ndarray:
    """Rows with equal model, format and device columns share a group (evaluate's `groups`): every column's
    value, not a few of them (two models of equal layers and peaks differ in their attention)."""
    cols = [np.broadcast_to(np.asarray(v, dtype=float), (n,)) for t in tables for v in t.values()
            if np.ndim(v) <= 1 and np.asarray(v).dtype.kind in "fiub" for n in [len(tables[0]["layers"])]]
    return np.unique(np.nan_to_num(np.column_stack(cols), nan=-1.0), axis=0, return_inverse=True)[1].ravel()


def _same(a, b) -> bool:
    """The same values bit for bit (-0.0 is not 0.0; any NaN is NaN), and the same shape."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
        return False
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    a, b = a.astype(np.float64), b.astype(np.float64)
    return bool(((a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))).all())


@pytest.mark.parametrize("layout", ["tp", "dp-ep-pp"])
def test_phase_times_are_numpys_bits(layout):
    (m, f, hw), work, rng = _columns()
    kw = {}
    if layout != "tp":  # DP attention and EP over the tp ranks, two pipeline stages
        work = work[:5] + (2.0,) + work[6:]
        kw = dict(dp=work[4], ep=work[4])
    lw = lower_all(m, f, hw, *work, **kw)
    n = len(work[0])
    for trial in range(4):  # the shipped columns, then timing columns drawn per row
        if trial:
            hw = dict(hw, compute_efficiency=rng.uniform(0.05, 1.0, n), memory_efficiency=rng.uniform(0.05, 1.0, n),
                      compute_half_rows=rng.uniform(0.0, 300.0, n), kernel_overhead_s=rng.uniform(0, 2e-5, n),
                      attention_efficiency=rng.choice([1.0, 0.6, 1.4], n), comm_overlap=rng.choice([0.0, 1.0], n),
                      comm_efficiency=rng.uniform(0.3, 1.0, n))
            f = dict(f, peak_matmul=f["peak_matmul"] * rng.uniform(0.5, 2.0, n))
        want, got = lw.phases.times(hw, f), lw.phases.times(hw, f, fast=True)
        assert fast.config_count(hw, f, lw.phases.pre, lw.phases.d0, lw.phases.a1) == n
        assert lw.phases._compiled(hw, f) is not None  # the kernels timed it, not the numpy fallback
        for a, b in zip(want[:4], got[:4]):
            assert _same(a, b)
        for a, b in zip(finish(lw, hw, f).metrics.values(), finish(lw, hw, f, fast=True).metrics.values()):
            assert _same(a, b)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_few_configurations(n):
    """numpy sums one configuration's operators pairwise (not one by one): one configuration takes the
    numpy path, two or more the kernels; both give numpy's bits."""
    (m, f, hw), work, _ = _columns(n=400, seed=7)
    big = np.flatnonzero((m["experts"] > 0) & (work[4] == 8.0))[:n]  # many non-zero operators, collectives
    pick = lambda cols: {k: v[big] if np.ndim(v) else v for k, v in cols.items()}  # noqa: E731
    m, f, hw = pick(m), pick(f), pick(hw)
    work = tuple(x[big] if np.ndim(x) else x for x in work)
    lw = lower_all(m, f, hw, *work)
    assert fast.usable(n) == (n >= 2)
    for a, b in zip(lw.phases.times(hw, f)[:4], lw.phases.times(hw, f, fast=True)[:4]):
        assert _same(a, b)


def test_op_sums_is_op_fields_then_sums():
    """kernels.op_sums (a phase's sums at its distinct rows in one pass) gives the bits of op_fields' four arrays
    with the skipped operators zeroed, then sums: every unit, collectives, skipped operators, attention efficiency
    and dequantization on and off, NaN, inf and zero entries."""
    k = fast._kernels()
    rng = np.random.default_rng(5)
    K, N = 12, 257
    for any_dq, any_ae in ((False, False), (True, True)):
        f = [np.abs(rng.standard_normal((K, N))) * 10.0 ** rng.integers(0, 12, (K, 1)) for _ in range(7)]
        f[0][0, :5] = [np.nan, np.inf, 0.0, -0.0, 1e300]
        kind = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 0, 3, 2], dtype=np.int64)
        fused = rng.random(K) < 0.5
        skip, is_comm = rng.random(K) < 0.3, kind == 3
        cols = [np.abs(rng.standard_normal(N)) + 0.1 for _ in range(11)]
        cols[1][:3] = [np.nan, np.inf, 0.0]
        got = k.op_sums(*f, kind, fused, skip, is_comm, *cols, any_dq, any_ae)
        c, m, fx, cm = k.op_fields(*f, kind, fused, *cols, any_dq, any_ae)
        for x in (c, m, fx, cm):
            x[skip] = 0.0
        empty = np.zeros((0, 0))
        want = k.sums(c, m, fx, cm, is_comm, np.full(K, -1, dtype=np.int64), empty, empty, empty, empty)
        for a, b in zip(want, got):
            assert _same(a, b)


def test_nan_and_inf_columns_give_numpys_values():
    (m, f, hw), work, rng = _columns(n=300, seed=13)
    lw = lower_all(m, f, hw, *work)
    n = len(work[0])
    bad = rng.choice([np.nan, np.inf, 0.0, 0.5], n)
    for key in ("compute_efficiency", "memory_efficiency", "bandwidth", "kernel_overhead_s", "interconnect"):
        hw2 = dict(hw, **{key: bad})
        with np.errstate(all="ignore"):
            want, got = lw.phases.times(hw2, f), lw.phases.times(hw2, f, fast=True)
        for a, b in zip(want[:4], got[:4]):
            assert _same(a, b), key
    for key in ("tdp", "idle_power_fraction", "price_per_hour", "step_overhead_s"):  # finish's timeline
        hw2 = dict(hw, **{key: np.where(bad == 0.5, hw[key], bad) if np.ndim(hw[key]) else bad})
        with np.errstate(all="ignore"):
            want, got = finish(lw, hw2, f).metrics, finish(lw, hw2, f, fast=True).metrics
        assert all(_same(want[k], got[k]) for k in want), key


@pytest.mark.parametrize("layout", ["tp", "dp-ep"])
def test_a_sweeps_memory_is_numpys_bits(layout):
    """fast.memory (kernels.batch_memory): the batch, the largest batch, every Memory field and whether each
    configuration runs, from the batch-free terms at the distinct rows, against lower_all's numpy path: largest
    batches among the requests, encoders, DP groups of a batch, engines with and without a longest sequence."""
    (m, f, hw), work, rng = _columns(n=700, seed=19)
    groups = _groups(m, f, hw)
    kw = dict(dp=work[4], ep=work[4]) if layout != "tp" else {}
    hw = dict(hw, max_model_len=np.where(rng.uniform(size=len(groups)) < 0.5, 0.0, 4096.0))
    calls = []
    real = fast.memory
    try:
        fast.memory = lambda *a: calls.append(1) or real(*a)
        got = lower_all(m, f, hw, *work, groups=groups, fast=True, **kw)
    finally:
        fast.memory = real
    want = lower_all(m, f, hw, *work, groups=groups, **kw)
    assert calls and np.any(work[0] < 0) and np.any(m["encoder"] > 0)
    for k in Memory.__dataclass_fields__:
        assert _same(getattr(got.memory, k), getattr(want.memory, k)), k
    for k in ("B", "bmax", "fits", "Bc"):
        assert _same(got.work[k], want.work[k]), k
    assert not got.work["fits"].all() and got.work["fits"].any()
    for a, b in zip(finish(got, hw, f, fast=True).metrics.values(), finish(want, hw, f).metrics.values()):
        assert _same(a, b)
    n = len(groups)
    for flag in (True, False):  # evaluate's memory_into (a sweep's columns): written in place, the same bits
        into = {k: np.full(n, 7.0) for k in ("batch", "max_batch", "weights", "kv_cache", "capacity", "total")}
        lw = lower_all(m, f, hw, *work, groups=groups, fast=flag, memory_into=into, **kw)
        assert lw.memory.weights is into["weights"] and lw.work["B"] is into["batch"]
        assert _same(into["total"], want.memory.total) and _same(into["batch"], want.work["B"])
        assert _same(into["max_batch"], want.work["bmax"])
        for k in ("weights", "kv_cache", "capacity"):
            assert _same(into[k], getattr(want.memory, k)), k


def test_finish_takes_the_compiled_metrics_on_one_axis():
    """fast.metrics computes finish's timeline and its rates, energy and price per token for configurations on one
    axis (none on two), and finish then returns them: numpy's bits for every metric, encoders and empty prompts
    among the rows."""
    (m, f, hw), work, _ = _columns(n=500, seed=17)
    lw = lower_all(m, f, hw, *work)
    assert np.any(m["encoder"] > 0) and np.any(work[1] == 0.0)
    calls = []
    real = fast.metrics
    try:
        fast.metrics = lambda *a: calls.append(1) or real(*a)
        got = finish(lw, hw, f, fast=True).metrics
    finally:
        fast.metrics = real
    want = finish(lw, hw, f).metrics
    assert calls and all(_same(want[k], got[k]) for k in want)
    assert fast.metrics((np.ones((2, 3)),) * 11, 1.0, 1.0, 1.0, 1.0) is None


def test_kernels_apply_only_on_one_axis_of_configurations():
    (m, f, hw), work, _ = _columns(n=6)
    grid = tuple(np.reshape(x, (2, 3)) if np.ndim(x) else x for x in work)
    cols = tuple({k: np.reshape(v, (2, 3)) if np.ndim(v) == 1 else v for k, v in c.items()} for c in (m, f, hw))
    lw = lower_all(*cols, *grid)
    assert fast.config_count(cols[2], cols[1], lw.phases.pre) is None  # 2-D: the numpy path, same results
    for a, b in zip(lw.phases.times(cols[2], cols[1])[:4], lw.phases.times(cols[2], cols[1], fast=True)[:4]):
        assert _same(a, b) and np.shape(a) == (2, 3)


def test_enabled_follows_the_environment(monkeypatch):
    monkeypatch.setenv("COSTMODEL_FAST", "0")
    assert not fast.enabled()
    monkeypatch.setenv("COSTMODEL_FAST", "1")
    assert fast.enabled()  # numba is installed (importorskip above)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # 0 x inf in numpy's timing
@pytest.mark.parametrize("layout", ["tp", "dp-ep-pp"])
def test_shared_phase_times_are_numpys_bits(layout):
    """SharedPhaseOps (a sweep's distinct rows, groups of equal model/format/device) timed by the kernels;
    under DP attention the decode's attention has fewer distinct rows than its other operators."""
    (m, f, hw), work, rng = _columns(n=900, seed=11)
    groups = _groups(m, f, hw)
    kw = {}
    if layout != "tp":  # DP attention and EP over the tp ranks, two pipeline stages
        work = work[:5] + (2.0,) + work[6:]
        kw = dict(dp=work[4], ep=work[4])
    lw = lower_all(m, f, hw, *work, groups=groups, **kw)
    assert type(lw.phases).__name__ == "SharedPhaseOps" and len(lw.phases.p) < len(groups)
    for trial in range(4):  # the shipped columns, then timing columns drawn per group (equal within one)
        hw, f = _timing_columns(hw, f, groups, rng, trial)
        assert lw.phases._compiled(hw, f) is not None  # the kernels timed it, not the numpy fallback
        for a, b in zip(lw.phases.times(hw, f)[:4], lw.phases.times(hw, f, fast=True)[:4]):
            assert _same(a, b)
        assert _same(lw.phases.times(hw, f)[4]()[3], lw.phases.times(hw, f, fast=True)[4]()[3])
        for a, b in zip(finish(lw, hw, f).metrics.values(), finish(lw, hw, f, fast=True).metrics.values()):
            assert _same(a, b)
        _check_written(lw, hw, f, rng)


def _timing_columns(hw: dict, f: dict, groups, rng, trial: int) -> tuple:
    """(hw, f) for a trial of timing: as they are (0), timing columns drawn per group, equal within one (1, 2), and
    (3) with a group of NaN efficiencies (NaN where numpy gives NaN), one that takes no time (inf rates, zero
    overheads) and some of infinite launch overheads."""
    if not trial:
        return hw, f
    g = int(groups.max()) + 1
    draw = lambda x: x[groups]  # noqa: E731
    hw = dict(hw, compute_efficiency=draw(rng.uniform(0.05, 1.0, g)), memory_efficiency=draw(rng.uniform(0.05, 1.0, g)),
              compute_half_rows=draw(rng.uniform(0.0, 300.0, g)), kernel_overhead_s=draw(rng.uniform(0, 2e-5, g)),
              attention_efficiency=draw(rng.choice([1.0, 0.6, 1.4], g)),
              comm_overlap=draw(rng.choice([0.0, 1.0], g)), comm_efficiency=draw(rng.uniform(0.3, 1.0, g)))
    f = dict(f, peak_matmul=f["peak_matmul"] * draw(rng.uniform(0.5, 2.0, g)))
    if trial == 3:  # and groups of infinite launch overheads: an operator of no launches then takes 0 x inf, NaN
        hw["compute_efficiency"] = np.where(groups == 0, np.nan, hw["compute_efficiency"])
        hw["kernel_overhead_s"] = np.where(groups % 3 == 2, np.inf, hw["kernel_overhead_s"])
        free = groups == 1
        for k in ("bandwidth", "interconnect", "peak_vector", "peak_attention"):
            hw[k] = np.where(free, np.inf, hw[k])
        for k in ("kernel_overhead_s", "comm_latency_s"):
            hw[k] = np.where(free, 0.0, hw[k])
        f["peak_matmul"] = np.where(free, np.inf, f["peak_matmul"])
    return hw, f


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # 0 x inf in numpy's timing
@pytest.mark.parametrize("layout, models", [("tp", "all"), ("dp-ep-pp", "all"), ("tp", "dense"), ("dp-ep-pp", "dense")])
def test_a_prefill_of_its_operators_with_work_times_as_all(layout, models):
    """lower_phases lowers the prefill's operators that have work alone (operators.lower's busy_only): the operators
    left out are those of no work in the whole lowering, the others' fields are its bits, and numpy and the kernels
    time them to the bits of numpy's timing of all of them, for drawn timing columns too; where a group's rates are
    not finite and positive (NaN efficiencies, inf peaks, inf launch overheads), they time all of them (pre_all).
    The phases' detail holds every operator and its times."""
    from costmodel.engine.operators import OP_FIELDS, OP_NAMES

    (m, f, hw), work, rng = _columns(n=900, seed=17)
    if models == "dense":  # plain dense attention models: every other operator is left out for every row
        plain_rows = sum(m[k] for k in ("chunk", "cross_layers", "dsa_heads", "rec_layers", "window", "experts", "mla",
                                        "encoder", "bb")) == 0
        at = np.flatnonzero(plain_rows & (m["attn_layers"] == m["layers"]))
        m, f, hw = ({k: v[at] if np.ndim(v) else v for k, v in t.items()} for t in (m, f, hw))
        work = tuple(w[at] if np.ndim(w) else w for w in work)
    groups = _groups(m, f, hw)
    kw = dict(dp=work[4], ep=work[4]) if layout != "tp" else {}
    if layout != "tp":
        work = work[:5] + (2.0,) + work[6:]
    quick = lower_all(m, f, hw, *work, groups=groups, fast=True, **kw).phases
    plain = lower_all(m, f, hw, *work, groups=groups, **kw).phases
    whole = dataclasses.replace(plain, pre=plain.pre_all, full=None)  # every operator lowered and timed
    names = quick.pre.names
    assert whole.pre.names == quick.pre_all.names == OP_NAMES and 0 < len(names) < len(OP_NAMES)
    for k in OP_FIELDS:  # each configuration's (the kernel's distinct rows are numpy's in another order)
        every, part = getattr(whole.pre, k)[:, plain.p_inv], getattr(quick.pre, k)[:, quick.p_inv]
        assert _same(getattr(quick.pre_all, k)[:, quick.p_inv], every)
        assert _same(part, every[[OP_NAMES.index(x) for x in names]])
        if k != "rows":
            assert not every[[OP_NAMES.index(x) for x in OP_NAMES if x not in names]].any(), k  # no work left out
    for trial in range(4):
        hw_t, f_t = _timing_columns(hw, f, groups, rng, trial)
        assert quick._compiled(hw_t, f_t) is not None
        want = whole.times(hw_t, f_t)
        for got in (plain.times(hw_t, f_t), quick.times(hw_t, f_t, fast=True)):
            assert all(_same(a, b) for a, b in zip(want[:4], got[:4]))
            assert all(_same(getattr(want[4]()[i], k), getattr(got[4]()[i], k)) for i in (0, 1)
                       for k in (OP_FIELDS if i == 0 else ("compute", "memory", "fixed", "comm")))


def test_one_prefill_row_times_every_operator():
    """One distinct prefill row: numpy sums its operators pairwise, where leaving the zeros out would add the others
    in another order, so SharedPhaseOps times all of them (timed_pre): the bits of the whole lowering's timing."""
    from costmodel.spec.model_catalog import load_model

    h100 = load_hardware("h100-sxm")
    cols = (model_columns([load_model("llama-3.1-70b")]), format_columns([(load_format("fp8"), h100, None, False)]),
            hardware_columns([h100]))
    m, f, hw = ({k: np.repeat(v, 3) if np.ndim(v) else v for k, v in c.items()} for c in cols)
    for batch, prompt, tp in ((1.0, 512.0, 1.0), (16.0, 3000.0, 2.0), (3.0, 77.0, 8.0), (64.0, 8192.0, 4.0)):
        work = (np.full(3, batch), np.full(3, prompt), np.array([2.0, 50.0, 300.0]), np.zeros(3), np.full(3, tp), 1.0,
                1.0)
        ph = lower_all(m, f, hw, *work, groups=np.zeros(3, dtype=int)).phases
        assert len(ph.p) == 1 and len(ph.pre.names) < len(ph.pre_all.names)
        whole = dataclasses.replace(ph, pre=ph.pre_all, full=None)
        assert all(_same(a, b) for a, b in zip(whole.times(hw, f)[:4], ph.times(hw, f)[:4]))


def _check_written(lw, hw, f, rng):
    """finish with `into` and `valid` (a sweep's): the timed metrics written into the arrays given, NaN where a
    configuration is not valid or does not fit, by the one compiled pass (kernels.decode_pass) and by numpy,
    the same bits as np.where of finish's own metrics."""
    from costmodel.engine.evaluate import _written

    n = len(lw.work["fits"])
    names = fast.WRITTEN + ("batch", "max_batch", "fits")
    plain = finish(lw, hw, f, metrics=names).metrics
    valid = rng.random(n) < 0.8
    keep = valid & lw.work["fits"]
    assert 0 < keep.sum() < n
    for flag in (False, True):
        into = {k: np.full(n, 7.0) for k in fast.WRITTEN}
        got = finish(lw, hw, f, fast=flag, metrics=names, into=into, valid=valid).metrics
        for k in fast.WRITTEN:
            assert got[k] is into[k] and _same(into[k], np.where(keep, plain[k], np.nan)), (flag, k)
        for k in ("batch", "max_batch", "fits"):
            assert _same(got[k], plain[k])
    assert _written(lw, hw, f, names, {k: np.empty(n) for k in fast.WRITTEN}, keep)  # the compiled pass applied
    assert not _written(lw, hw, f, names + ("decode_aggregate_tokens_per_s",), into, keep)  # one it does not compute


@pytest.mark.parametrize("layout", ["tp", "dp-ep-pp"])
def test_phases_lowered_for_the_written_configurations(layout):
    """lower_all's `read` (evaluate's, where `into` holds every timed metric asked for): the prefill lowered only at
    the rows of configurations that are valid and fit (fewer distinct rows), the others' a placeholder's; the
    metrics written are those of the whole lowering, NaN elsewhere, bit for bit."""
    (m, f, hw), work, rng = _columns(n=900, seed=13)
    groups = _groups(m, f, hw)
    kw = dict(dp=work[4], ep=work[4]) if layout != "tp" else {}
    if layout != "tp":
        work = work[:5] + (2.0,) + work[6:]
    whole = lower_all(m, f, hw, *work, groups=groups, fast=True, **kw)
    names = fast.WRITTEN + ("batch", "max_batch", "fits")
    plain = finish(whole, hw, f, metrics=names).metrics
    valid = rng.random(len(groups)) < 0.5
    keep = valid & whole.work["fits"]
    assert 0 < keep.sum() < len(groups)
    lw = lower_all(m, f, hw, *work, groups=groups, fast=True, read=valid, **kw)
    assert len(lw.phases.p) < len(whole.phases.p)
    into = {k: np.full(len(groups), 7.0) for k in fast.WRITTEN}
    got = finish(lw, hw, f, fast=True, metrics=names, into=into, valid=valid).metrics
    for k in fast.WRITTEN:
        assert _same(into[k], np.where(keep, plain[k], np.nan)), k
    for k in ("batch", "max_batch", "fits"):
        assert _same(got[k], plain[k])


def test_one_distinct_prefill_takes_the_numpy_path():
    """Shared rows with one distinct prefill or decode (only the generated length varies): numpy's
    pairwise sum of one column, so the numpy path; the same results."""
    (m, f, hw), work, _ = _columns(n=400, seed=7)
    i = int(np.flatnonzero((m["experts"] > 0) & (work[4] == 8.0))[0])
    one = lambda cols: {k: np.repeat(v[i:i + 1], 3) if np.ndim(v) else v for k, v in cols.items()}  # noqa: E731
    m, f, hw = one(m), one(f), one(hw)
    work = (np.full(3, 16.0), np.full(3, 900.0), np.array([2.0, 50.0, 300.0]), np.zeros(3), np.full(3, 8.0), 1.0, 1.0)
    lw = lower_all(m, f, hw, *work, groups=np.zeros(3, dtype=int))
    assert len(lw.phases.p) == 1 and lw.phases._compiled(hw, f) is None
    for a, b in zip(lw.phases.times(hw, f)[:4], lw.phases.times(hw, f, fast=True)[:4]):
        assert _same(a, b)


def test_a_sweep_is_the_same_with_and_without_the_kernels(monkeypatch):
    from costmodel.sweeps import grid
    from costmodel.sweeps.sweep import sweep

    monkeypatch.setattr(grid, "FAST_MIN_CONFIGS", 0)  # this small sweep too

    axes = dict(models=["llama-3.1-8b", "mixtral-8x7b", "deepseek-v3", "bert-base"], hw=["h100", "mi300x"],
                fmt=["bf16", "w4a16"], engine=["auto", "sglang"], layouts=["tp", "ep", "dp-ep"], tp=[1, 8],
                batch=[1, 64, "max"], prompt=[0, 1, 512], gen=[0, 1, 256], context=[0, 30000])
    got = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("COSTMODEL_FAST", flag)
        got[flag] = sweep(**axes)
    assert got["0"].packed is not None and got["1"].packed is not None  # the batch-free columns packed on both paths
    for k in got["0"].columns:
        a, b = np.asarray(got["0"][k]), np.asarray(got["1"][k])
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), k
    assert np.asarray(got["1"]["fits"]).sum() > 0


def test_a_small_sweep_does_not_load_numba():
    """Below FAST_MIN_CONFIGS the kernels would cost more to load than they save."""
    import subprocess
    import sys

    code = ("import sys, costmodel\n"
            "costmodel.sweep(models=['llama-3.1-8b'], hw=['h100'], fmt=['bf16', 'fp8'], batch=[1, 8], prompt=[512])\n"
            "print('numba' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_each_kernel_compiles_one_signature():
    """The kernels see the same argument types whatever a sweep holds: a full operator list and the decode
    attention's few variants (their masks, cached per list, writable like the full list's): one compiled
    signature each, not one per pattern of read-only arguments (each costs a compile)."""
    import subprocess
    import sys

    code = ("import os\n"
            "os.environ['COSTMODEL_FAST'] = '1'\n"
            "from costmodel.sweeps import grid\n"
            "grid.FAST_MIN_CONFIGS = 0\n"
            "from costmodel.sweeps.sweep import sweep\n"
            "sweep(models=['llama-3.1-8b', 'mixtral-8x7b'], hw=['h100'], fmt=['bf16'], batch=[1, 8, 'max'],"
            " prompt=[128, 1024], gen=[16, 128])\n"
            "from costmodel.engine import fast\n"
            "k = fast._kernels()\n"
            "print(max(len(getattr(k, n).signatures) for n in ('op_sums', 'op_fields', 'decode_pass', '_metrics',"
            " 'attention_rows', 'batch_memory', 'outcome', 'batch_free', 'code_groups', 'pools', 'chunk_frame', 'steps')))")
    # (distinct_rows compiles once per count of its integer and float keys: the searches' keys differ)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "1", done.stdout + done.stderr


def test_decode_step_of_any_attention_is_numpys_bits():
    """kernels.decode_pass and decode_step, which lower the decode's attention at every configuration's last step
    from the pair coefficients of its distinct row: causal, windowed (a window or DSA top-k shorter and longer than the
    context), chunked and bidirectional pairs, an absent variant, NaN and infinite contexts, attention
    efficiencies above and below 1 and a device that takes no time, against SharedPhaseOps._numpy's formulas:
    attention.attention_terms at every configuration, timed on its columns, averaged with the first step's,
    added to the other operators' sums and overlapped."""
    from costmodel.engine.attention import PairCoefficients, causal_pairs, chunked_pairs, pair_work
    from costmodel.engine.operators import Ops
    from costmodel.engine.phases import overlap, share
    from costmodel.engine.roofline import mean_times, op_times

    (m, f, hw), work, rng = _columns(n=300, seed=3)
    names = ("attention", "attention_local", "attention_chunked", "attention_indexer")
    nq, n, nd = 40, 300, 25
    q_inv, d_inv = rng.integers(0, nq, n), rng.integers(0, nd, n)
    q = np.array([int(np.flatnonzero(q_inv == i)[0]) if (q_inv == i).any() else 0 for i in range(nq)])
    hq = {k: (v[q] if np.ndim(v) else v) for k, v in hw.items()}  # configuration j's columns: row q_inv[j]'s
    fq = {k: (v[q] if np.ndim(v) else v) for k, v in f.items()}
    hq.update(attention_efficiency=rng.choice([1.0, 0.6, 1.4], nq), comm_overlap=rng.choice([0.0, 1.0], nq))
    free = np.arange(nq) == 0  # infinite roofs and no overheads: no time
    for k in ("bandwidth", "peak_vector", "peak_attention"):
        hq[k] = np.where(free, np.inf, hq[k])
    hq["kernel_overhead_s"] = np.where(free, 0.0, hq["kernel_overhead_s"])
    fq["peak_matmul"] = np.where(free, np.inf, fq["peak_matmul"])
    at = lambda x: x[..., q_inv] if np.ndim(x) else x  # noqa: E731
    hn, fn = ({k: at(v) for k, v in cols.items()} for cols in (hq, fq))
    B, new, enc = rng.choice([1.0, 7.0, 64.0], nq), rng.choice([1.0, 2.0, 4.0], nq), rng.choice([0.0, 0.0, 1.0], nq)
    c1 = rng.choice([0.0, 3.0, 100.0, 5000.0, 1e6], n)
    c1[:3] = (np.nan, np.inf, 0.5)
    for absent in ((False, False, False, False), (False, True, False, True)):
        coef = {}
        for k, name in enumerate(names):
            draw = lambda lo, hi: rng.uniform(lo, hi, nq)  # noqa: E731
            span = rng.choice([0.0, 2.0, 64.0, 2048.0], nq) if name != "attention_indexer" else 0.0 * B
            layers = 0.0 * B if absent[k] else rng.choice([0.0, 1.0, 30.0], nq)
            coef[name] = PairCoefficients(draw(1, 64), draw(100, 600), draw(1e2, 1e4), np.maximum(new, 1.0),
                                          draw(64, 512), layers, draw(1, 64), span, name == "attention_chunked",
                                          absent[k])
        with np.errstate(all="ignore"):  # the NaN and infinite contexts
            a1 = []  # attention_terms' fields at every configuration, from its row's coefficients
            for v in coef.values():
                if v.absent:
                    zero = 0.0 * (B * new)[q_inv] * c1
                    a1.append((0.0 * c1, 0.0 * c1, 0.0 * c1, 0.0 * c1, at(v.layers) + zero, at(v.rows) + zero, 0.0 * c1))
                    continue
                pairs = at(B) * (chunked_pairs(at(new), c1, at(v.span), True) if v.chunked else
                                 causal_pairs(at(new), c1, at(v.span), at(enc)))
                flops, kv = pair_work(pairs, at(v.heads), at(v.per_pair), at(v.kv_per_pair), at(v.q_tile), at(v.layers))
                act = at(B * new * v.heads * v.width * 0.5 * v.layers)
                a1.append((flops, 0.0 * c1, act, kv, at(v.layers), at(v.rows), 0.0 * c1))
        a1 = Ops(*np.array(a1).transpose(1, 0, 2), names=names)
        a0 = Ops(rng.uniform(0, 1e12, (4, nq)), np.zeros((4, nq)), a1.act_bytes[:, q], rng.uniform(0, 1e9, (4, nq)),
                 a1.launches[:, q], a1.rows[:, q], np.zeros((4, nq)), names=names)
        d_sums = tuple(rng.uniform(0, 1e-2, nd) for _ in range(4))
        d_sums[3][0] = 0.0  # a decode whose other operators take no time
        with np.errstate(all="ignore"):
            t0 = op_times(a0, hq, fq).at((slice(None), q_inv))
            t1 = op_times(a1, hn, fn)
            want_step = overlap(d_sums[0][d_inv] + mean_times(t0, t1).sum(axis=0), d_sums[1][d_inv], hn)
            want_u = share(d_sums[2][d_inv] + np.maximum(t0.compute, t0.memory).sum(axis=0),
                           d_sums[3][d_inv] + t0.total.sum(axis=0))
        cols = fast.columns(hq, fq, nq)
        attention = fast.decode_attention(fast.fields(a0, cols), a0, coef, B, new, enc, c1, q_inv, cols)
        got_step, got_u = fast.decode_step(attention, q_inv, nq, hq["comm_overlap"], d_sums, d_inv)
        assert _same(got_step, want_step) and _same(got_u, want_u)
        assert np.isnan(got_step[0]) and not np.isnan(got_step[3:]).all()  # the NaN context, and the numbers
        keep = rng.random(n) < 0.6  # a sweep's written configurations: the mean there alone, the same bits
        mean, at_q = fast.decode_attention(fast.fields(a0, cols), a0, coef, B, new, enc, c1, q_inv, cols, keep)
        assert _same(mean[keep], attention[0][keep]) and (mean[~keep] == 0.0).all() and _same(at_q, attention[1])


def test_a_sweeps_steps_are_numpys_bits():
    """fast.steps (kernels.steps: timeline.steps per configuration) gives numpy's timed batch, the decode's batch
    per micro-batch and its first and last contexts bit for bit, pp one number or one per configuration: batches
    under one, NaN and infinite inputs, zero and negative lengths; None (numpy's then) off one axis."""
    from costmodel.engine.timeline import steps

    rng = np.random.default_rng(17)
    n = 3001
    pick = lambda *v: rng.choice(np.array(v, dtype=float), n)  # noqa: E731
    B, context = pick(0, 0.5, 1, 3, 64, 1e9, np.nan, np.inf), pick(0, 7, 30000, -1, np.nan, np.inf)
    prompt, gen = pick(0, 1, 512, 1e6, np.nan), pick(0, 1, 2, 3, 200, -5, np.nan, np.inf)
    for pp in (1.0, 4.0, pick(1, 2, 3, 0, np.nan)):
        with np.errstate(all="ignore"):
            want = steps(B, pp, context, prompt, gen)
        got = fast.steps(B, pp, context, prompt, gen)
        assert len(got) == 4 and all(_same(a, b) for a, b in zip(got, want))
    assert steps(3.0, 2.0, 100.0, 28.0, 10.0) == (3.0, 1.5, 128.0, 136.0)  # 2 micro-batches; 8 steps after the first
    assert fast.steps(B[:, None], 1.0, context, prompt, gen) is None
    assert fast.steps(B, 1.0, context, 512.0, gen) is None


@pytest.mark.parametrize("order", ["runs", "shuffled"])
def test_distinct_rows_are_distincts_groups(order):
    """fast.distinct_rows (kernels.distinct_rows: runs, then a hash table) groups rows as distinct.distinct does:
    the same groups, each first row the earliest of its group, rows in runs (a sweep's chunk) or shuffled; -0.0
    and 0.0 one key, a NaN key a group of its own row, infinities, integer and float keys, keys the same on every
    row (no key), and the first rows' keys give back every row's."""
    from costmodel.engine.distinct import distinct

    rng = np.random.default_rng(23)
    n = 20000
    g = np.repeat(rng.integers(0, 40, n // 50), 50)
    a = np.repeat(rng.choice(np.array([0.0, -0.0, 1.0, 2.5, np.inf, 1e300]), n // 10), 10)
    b = np.repeat(rng.choice(np.array([3.0, 7.0, -1.0]), n // 5), 5)
    a[rng.integers(0, n, 30)] = np.nan
    if order == "shuffled":
        at = rng.permutation(n)
        g, a, b = g[at], a[at], b[at]
    keys = (g, a, np.broadcast_to(2.0, (n,)), b, 4.0)
    want, got = distinct(*keys), fast.distinct_rows(*keys)
    (f0, i0), (f1, i1) = want, got
    assert len(f1) == len(f0) and i1.shape == i0.shape == (n,)
    assert len(np.unique(np.stack([i0, i1]), axis=1)[0]) == len(f0)  # one group of one is one group of the other
    assert np.array_equal(np.sort(f1), np.sort(f0))
    earliest = np.full(len(f1), n)
    np.minimum.at(earliest, i1, np.arange(n))
    assert np.array_equal(f1, earliest) and np.array_equal(f1, np.sort(f1))  # numbered as they first appear
    for c in (g, a, b):
        assert np.array_equal(c[f1][i1], c, equal_nan=c.dtype.kind == "f")
    assert np.isnan(a[f1]).sum() == np.isnan(a).sum() == 30  # each NaN row its own group
    assert fast.distinct_rows(a, b) is None and fast.distinct_rows(g) is None  # numpy's distinct for those


@pytest.mark.parametrize("order", ["runs", "shuffled"])
def test_distinct_rows_among_the_kept_rows(order):
    """fast.distinct_rows with a mask `keep`: the runs of equal keys holding a kept row are grouped as distinct
    groups them (every row of such a run, kept or not, in its group, whose keys are its own); the rows of the other
    runs are one group more, whose first row is the earliest of them; groups numbered as they first appear."""
    from costmodel.engine.distinct import distinct

    rng = np.random.default_rng(29)
    n = 20000
    g = np.repeat(rng.integers(0, 30, n // 40), 40)
    a = np.repeat(rng.choice(np.array([0.0, -0.0, 1.0, 2.5, np.inf]), n // 8), 8)
    keep = rng.random(n) < 0.05
    if order == "shuffled":
        at = rng.permutation(n)
        g, a = g[at], a[at]
    first, inv = fast.distinct_rows(g, a, keep=keep)
    run = np.cumsum(np.r_[True, (g[1:] != g[:-1]) | (a[1:] != a[:-1])]) - 1  # each row's run of equal keys
    with_kept = np.zeros(run[-1] + 1, dtype=bool)
    with_kept[run[keep]] = True
    searched = with_kept[run]
    assert 0 < searched.sum() < n
    for c in (g, a):  # every row of a searched run has its group's keys
        assert np.array_equal(c[first][inv][searched], c[searched])
    (f0, i0) = distinct(g[searched], a[searched])
    assert len(np.unique(np.stack([i0, inv[searched]]), axis=1)[0]) == len(f0) == len(np.unique(inv[searched]))
    spare = np.unique(inv[~searched])
    assert len(spare) == 1 and len(first) == len(f0) + 1 and spare[0] not in inv[searched]
    assert first[spare[0]] == np.flatnonzero(~searched)[0]
    earliest = np.full(len(first), n)
    np.minimum.at(earliest, inv, np.arange(n))
    assert np.array_equal(first, earliest) and np.array_equal(first, np.sort(first))
    assert all(np.array_equal(x, y) for x, y in zip(fast.distinct_rows(g, a, keep=np.ones(n, dtype=bool)),
                                                    fast.distinct_rows(g, a)))  # all kept: no group more


def test_compiled_pairs_are_numpys():
    """attention.causal_pairs, chunked_pairs and pair_work compiled on numbers (kernels.py: numba, with
    elementwise.py's functions on numbers) give their values on arrays, bit for bit: windows shorter and longer
    than the context, chunks, encoders, zeros, NaN and infinities, negatives."""
    from costmodel.engine import attention, kernels

    rng = np.random.default_rng(5)
    pick = lambda *v: rng.choice(np.array(v, dtype=float), 4000)  # noqa: E731
    n, c = pick(0, 1, 2, 3, 7, 128, 4096, np.nan, np.inf, -1), pick(0, 1, 5, 100, 2047, 2048, 1e6, np.nan, np.inf, -3)
    span, enc = pick(0, 1, 4, 64, 2048, 8192, np.nan, np.inf, -2), pick(0, 0, 1, np.nan)
    with np.errstate(all="ignore"):
        want = (attention.causal_pairs(n, c, span, enc), attention.chunked_pairs(n, c, span, True),
                attention.chunked_pairs(n, c, span, False), attention.pair_work(n, c, span, enc, n + 1, span))
    for i in range(len(n)):
        got = (kernels.causal_pairs(n[i], c[i], span[i], enc[i]), kernels.chunked_pairs(n[i], c[i], span[i], True),
               kernels.chunked_pairs(n[i], c[i], span[i], False),
               kernels.pair_work(n[i], c[i], span[i], enc[i], n[i] + 1, span[i]))
        for k, (w, g) in enumerate(zip(want, got)):
            w = tuple(x[i] for x in w) if k == 3 else w[i]
            assert _same(w, g), (k, n[i], c[i], span[i], enc[i])
    assert attention.causal_pairs(3.0, 5.0, 4.0, 0.0) == kernels.causal_pairs(3.0, 5.0, 4.0, 0.0) == 4 + 4 + 4


def test_the_kernels_cache_is_keyed_on_every_source_they_compile(tmp_path, monkeypatch):
    """numba checks only the file that defines a kernel; the kernels compile functions of the engine modules
    kernels.py imports, so their cache lives in a folder named by a hash of all of them (numba_setup.sources_key,
    KERNEL_SOURCES in numba_setup.py), under the user cache directory: a change to any of them, say timeline.py, gives a new
    folder and a fresh compile, never a kernel cached with the old code."""
    import ast
    from pathlib import Path

    from costmodel.spec.parse_cache import cache_dir

    kernels = fast._kernels()
    key = numba_setup.sources_key()
    for dispatcher in (kernels.finish_metrics, kernels.decode_step, kernels.causal_pairs, kernels.batch_memory):
        assert Path(dispatcher._cache._cache_path).is_relative_to(cache_dir() / "numba" / key)
    here = Path(fast.__file__).parent
    modules = {"kernels"} | {n for n in numba_setup.KERNEL_SOURCES if n.endswith("kernels") or n == "kernel_base"}
    imported = set()
    for name in modules:
        tree = ast.parse((here / f"{name}.py").read_text())
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "costmodel.engine"
                     for a in n.names}
        imported |= {n.module.rsplit(".", 1)[1] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                     and (n.module or "").startswith("costmodel.engine.")}
    assert {"memory_kernels", "grid_kernels", "kernel_base", "memory"} <= imported
    assert imported | modules <= set(numba_setup.KERNEL_SOURCES)  # every module whose code is compiled
    for name in numba_setup.KERNEL_SOURCES:
        (tmp_path / f"{name}.py").write_bytes((here / f"{name}.py").read_bytes())
    monkeypatch.setattr(numba_setup, "__file__", str(tmp_path / "numba_setup.py"))
    assert numba_setup.sources_key() == key  # the same text, the same key
    for name in numba_setup.KERNEL_SOURCES:
        path = tmp_path / f"{name}.py"
        text = path.read_bytes()
        path.write_bytes(text + b"\n# changed\n")
        assert numba_setup.sources_key() != key, name
        path.write_bytes(text)


LOADING = """
import sys
if sys.argv[1] == "scipy first":
    import scipy.linalg
from costmodel.engine import fast
kernels = fast._kernels()
import numba.np.arraymath
finders = [type(f).__name__ for f in sys.meta_path]
print("scipy.linalg" in sys.modules, numba.np.arraymath._HAVE_BLAS, "_NoScipy" in finders, float(kernels.causal_pairs(3.0, 5.0, 4.0, 0.0)))
import scipy.linalg.cython_blas
print("scipy.linalg" in sys.modules)
"""


@pytest.mark.parametrize("how, lines", [("fresh", ["False False False 12.0", "True"]),
                                        ("scipy first", ["True True False 12.0", "True"])])
def test_loading_the_kernels_imports_no_scipy(how, lines):
    """numba's array functions probe for a BLAS by importing scipy.linalg (0.21-0.31 s a process): loading the
    kernels in a fresh process refuses that import (numba_setup.array_functions), leaves no finder behind, the
    kernels run, and scipy.linalg imports afterwards as ever; where scipy.linalg is already imported the probe
    runs and finds it."""
    import subprocess
    import sys

    pytest.importorskip("numba")
    done = subprocess.run([sys.executable, "-c", LOADING, how], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == lines


def test_rows_of_staggers_a_kernels_output_rows():
    """kernels.rows_of(k, n): k rows of n values, each contiguous, starting (n + 24) · 8 bytes apart, so no two
    of a chunk's 11 rows share an offset modulo 4 KiB (the cache's sets; benchmarks/bench_sweep.py kernels);
    the metrics kernel's rows come back as those rows, contiguous."""
    from costmodel.engine import kernels

    out = kernels.rows_of(11, 65536)
    assert out.shape == (11, 65536) and out.strides == ((65536 + 24) * 8, 8)
    assert all(row.flags.c_contiguous for row in out)
    assert len({row.ctypes.data % 4096 for row in out}) == 11  # 192 bytes apart: 0, 192, ..., 1920 past the first
    n = 300
    cols = [np.full(n, 2.0) for _ in range(8)] + [np.zeros(n, dtype=bool)] + [np.full(n, 0.5)] * 6
    rows = kernels.finish_metrics(*cols)
    assert rows.shape == (11, n) and rows.strides == ((n + 24) * 8, 8)
    assert all(r.flags.c_contiguous for r in rows)


def test_a_chunks_outcome_is_numpys_where_chain():
    """grid._outcome by the kernel (fast.outcome) gives numpy's fits and reason codes, the same values, written
    into the arrays given; the metrics' masking is finish's (_check_written)."""
    from costmodel.sweeps import grid

    rng = np.random.default_rng(7)
    n = 4099
    first = rng.choice(np.array([0, 0, 0, 1, 5], dtype=np.int8), n)
    link_ok, fmt_ok, fits = (rng.random(n) < p for p in (0.8, 0.7, 0.6))
    valid = (first == 0) & link_ok & fmt_ok
    numpy_way = grid._outcome(first, link_ok, fmt_ok, valid, fits, {}, fast=False)
    into = {"fits": np.zeros(n, dtype=bool), "reason_code": np.full(n, 9, dtype=np.int8)}
    kernel_way = grid._outcome(first, link_ok, fmt_ok, valid, fits, into, fast=True)
    assert list(kernel_way) == list(numpy_way) == ["fits", "valid", "reason_code"]
    for k, a in numpy_way.items():
        b = kernel_way[k]
        assert a.dtype == b.dtype and a.shape == b.shape == (n,) and np.array_equal(a, b), k
        if k in into:
            assert b is into[k]
    reason = numpy_way["reason_code"]
    assert set(np.unique(reason)) == {0, 1, 2, 3, 4, 5}  # every code drawn
    assert np.array_equal(numpy_way["fits"], valid & fits)
    assert np.array_equal(numpy_way["fits"], (reason == 0))  # runs and fits exactly where there is no reason


def _rows_of_a_grid(models, **axes):
    """A grid's configurations as the chunk of all of them: its Tables, Gathered columns (with their records)
    and the inputs of evaluate._per_sequence at every row."""
    from costmodel.engine.distinct import Gathered
    from costmodel.engine.elementwise import where
    from costmodel.engine.memory import kv_pool
    from costmodel.sweeps.grid import Tables, _chunk_columns, _layout, make_axes

    ax = make_axes(models=models, **axes)
    tab = Tables(ax)
    c = _chunk_columns(ax, np.arange(ax.size, dtype=np.int64))
    m, hw, f = (Gathered(getattr(tab, k), c[i], tab.records[k]) for k, i in (("m", "im"), ("hw", "hw_i"), ("f", "f_i")))
    dp, ep = _layout(c)
    tp, pp = c["tp"], np.ones(ax.size)
    held = where(c["batch"] < 0, hw["kv_reserved_gen_fraction"], 1.0)
    pool = kv_pool(m, f, hw, tp, pp, dp, ep)
    return ax.size, (m, f, hw), (c["prompt"], c["gen"], c["context"], tp, pp, dp, ep, held), pool


def test_batch_free_terms_are_numpys_bits():
    """kernels.batch_free (memory.batch_free_terms compiled as it is, the model, format and hardware rows read as
    records) gives evaluate._per_sequence's bits: every catalogue model but the vision backbones (encoders, MLA,
    DSA, sliding windows, chunked local layers, recurrent layers, cross-attention), devices with and without a
    longest sequence, engines, layouts, zero lengths and a long context."""
    from costmodel.engine.evaluate import _per_sequence

    models = [m.id for m in all_models() if not m.backbone]
    n, tables, rows, pool = _rows_of_a_grid(models, hw=["h100", "mi300x", "l4"], fmt=["bf16", "w4a16"],
                                            engine=["auto", "sglang", "llama.cpp"], batch=[1, "max"], tp=[1, 8],
                                            layouts=["tp", "ep", "dp-ep"], prompt=[0, 3000], gen=[1, 500],
                                            context=[0, 40000])
    got = fast.batch_free(*tables, n, *rows, *pool)
    want = _per_sequence(*tables, *rows, pool)
    want = (want["bmax"], *(getattr(want["seq"], k) for k in ("weights", "kv", "act", "work", "pool", "reserve",
                                                              "capacity")),
            want["full_len"], want["one_long"], want["kv_tokens"], want["state"])
    assert got is not None and len(got) == len(want) == 12
    for i, (a, b) in enumerate(zip(want, got)):
        a = np.broadcast_to(np.asarray(a, dtype=float), (n,))
        assert np.array_equal(a.view(np.uint64), b.view(np.uint64)), i
    assert np.isfinite(got[0]).all() and (got[0] > 0).any() and (got[4] > 0).any()  # batches fit; encoders' work


def test_kv_pools_are_numpys_bits():
    """kernels.pools (memory.kv_pool compiled as it is, on records) gives kv_pool's bits on every catalogue model,
    devices, formats, engines and layouts; a table without records is numpy's (None)."""
    from costmodel.engine.memory import kv_pool

    n, tables, rows, pool = _rows_of_a_grid([m.id for m in all_models()], hw=["h100", "mi300x", "l4"],
                                            fmt=["bf16", "fp8", "w4a16"], engine=["auto", "vllm", "sglang"],
                                            tp=[1, 2, 8], layouts=["tp", "ep", "dp-ep"])
    tp, pp, dp, ep = rows[3:7]
    got = fast.pools(*tables, n, tp, pp, dp, ep)
    for a, b in zip(kv_pool(*tables, tp, pp, dp, ep), got):
        a = np.broadcast_to(np.asarray(a, dtype=float), (n,))
        assert np.array_equal(a.view(np.uint64), b.view(np.uint64))
    assert (got[0] > 0).any() and (got[0] < 0).any()  # pools that hold sequences and ones that cannot
    assert fast.pools(dict(tables[0]), *tables[1:], n, tp, pp, dp, ep) is None


def test_a_vision_backbone_leaves_batch_free_terms_to_numpy():
    """A backbone's working set reads module tables (a cached kernel would keep them): numpy's, so None."""
    backbone = next(m.id for m in all_models() if m.backbone)
    n, tables, rows, pool = _rows_of_a_grid([backbone, "llama-3.1-8b"], hw=["h100"], fmt=["bf16"], batch=[1])
    assert fast.batch_free(*tables, n, *rows, *pool) is None
    n, tables, rows, pool = _rows_of_a_grid(["llama-3.1-8b"], hw=["h100"], fmt=["bf16"], batch=[1])
    assert fast.batch_free(*tables, n, *rows, *pool) is not None


def test_a_record_reads_as_its_dict_of_columns():
    """record.get(name, default) and `name in record` in compiled code: the field where the table has the column,
    the default where not, as on the dict of columns the numpy path reads."""
    import numba

    rows = fast.records({"h": np.array([3.0, 5.0]), "p_vision": np.array([0.5, 0.25])})

    @numba.njit
    def read(r):
        return r.get("p_vision", 7.0) + r.get("absent", 100.0) + ("h" in r) * 1000.0 + ("absent" in r) * 1e6

    assert [read(r) for r in rows] == [1100.5, 1100.25]


@pytest.mark.parametrize("n, span", [(65536, 60000), (4099, 16000), (7, 3), (1, 1), (300, -50)])
def test_code_groups_are_distinct_codes(n, span):
    """kernels.code_groups: distinct_codes' table path, the same inverse and a row of each group's code; codes
    spanning four times the rows or more are left to distinct's hash (None)."""
    from costmodel.engine.distinct import distinct_codes

    codes = np.random.default_rng(n).integers(-7, -7 + abs(span), n) * (1 if span > 0 else -3)
    first, inverse = distinct_codes(codes)
    got = fast.code_groups(codes)
    assert got is not None
    np.testing.assert_array_equal(got[1], inverse)
    np.testing.assert_array_equal(codes[got[0]], codes[first])
    assert fast.code_groups(np.array([0, 10**9, 5])) is None and fast.code_groups(np.array([], dtype=int)) is None


def test_a_chunks_frame_is_numpys():
    """kernels.chunk_frame (an odometer over the grid's axes) gives grid._frame's columns (numpy's unravelled
    indices and masks), the same values and types, for chunks starting anywhere: every reason a layout cannot
    run (heads, layouts on dense models, no link), encoders, formats a device cannot run, the largest batch."""
    from costmodel.sweeps.grid import Tables, _chunk_columns, _compiled_frame, _frame, make_axes

    ax = make_axes(models=["llama-3.1-8b", "bert-base", "mixtral-8x7b", "qwen2.5-7b"], hw=["h100", "l4", "m2-ultra-76c"],
                   fmt=["bf16", "fp8", "q4_k_m"], kv_fmt=["bf16", "fp8"], engine=["auto", "vllm"], batch=[1, "max", 64],
                   tp=[1, 2, 3], layouts=["tp", "ep", "dp-ep"], prompt=[0, 128], gen=[1, 300], context=[0, 1000])
    tab = Tables(ax)
    for start, n in ((0, ax.size), (3, 1000), (ax.size - 777, 777), (12345, 1)):
        flat = np.arange(start, start + n, dtype=np.int64)
        want, got = _frame(tab, flat, _chunk_columns(ax, flat)), _compiled_frame(tab, flat)
        assert list(got) == list(want) == list(fast.FRAME)
        for k, a in want.items():
            a = np.broadcast_to(a, (n,))
            assert got[k].dtype == a.dtype and np.array_equal(got[k], a), (start, k)
        if n == ax.size:
            whole = want
    assert set(np.unique(whole["first"]).tolist()) == {0, 1, 5} and not whole["link_ok"].all()
    assert whole["run"].any() and (whole["gen"] == 0).any() and (whole["seq"] != np.arange(ax.size)).any()
    assert _compiled_frame(tab, np.array([5, 4, 3])) is None  # not a run of consecutive indices
