"""An in-memory sweep's batch-free columns (max_batch, weights_bytes, capacity_bytes) held once per batch-free code
and the batch derived from them (sweeps/batch_free.py): the bits, types and order of the columns evaluated per
configuration, for every arrangement of the batch axis and any chunking. The [fast] kernels' packed sweep has the
bits of numpy's: tests/engine/test_fast.py (test_a_sweep_is_the_same_with_and_without_the_kernels, batch [1, 64, max])."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.sweeps import batch_free, grid
from costmodel.sweeps import sweep as S
from costmodel.sweeps.grid import Tables, evaluate_chunk, make_axes
from costmodel.sweeps.sweep import SweepResult, read_table, sweep

PACKED_AND_BATCH = batch_free.PACKED + batch_free.DERIVED_FROM_PACKED

GRIDS = {
    "max in the middle, twice": dict(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "a100"],
                                     batch=[1, "max", 8, 64, "max"], tp=[1, 2], prompt=[128, 4096], gen=[16, 256]),
    "numbers alone": dict(models=["llama-3.1-8b"], hw=["h100", "l40s"], fmt=["bf16", "fp8"], batch=[1, 2, 3, 4]),
    "max first": dict(models=["qwen2.5-7b", "bert-base"], hw=["h100"], batch=["max", 3, 7], prompt=[1, 512],
                      context=[0, 300]),
    "layouts and lengths": dict(models=["mixtral-8x7b", "llama-3.1-8b"], hw=["h100", "l4"], fmt=["bf16", "fp8"],
                                batch=[1, 16, "max"], tp=[1, 2, 3], prompt=[128, 1024], gen=[16], context=[0, 500],
                                layouts=["tp", "ep", "dp-ep"]),
    "one length each": dict(models=["llama-3.1-70b"], hw=["h100", "b200", "mi300x"], fmt=["bf16", "w4a16"],
                            batch=[1, 2, 4, 8, 16, 32, 64, "max"]),
}


def _evaluated(kw: dict) -> tuple:
    """The grid's axes and its columns evaluated per configuration in one chunk (nothing packed)."""
    ax = make_axes(**kw)
    return ax, evaluate_chunk(Tables(ax), np.arange(ax.size))


def _same(a: np.ndarray, b: np.ndarray, key: str) -> None:
    assert a.dtype == b.dtype, key
    assert a.shape == b.shape and a.tobytes() == b.tobytes(), key


@pytest.mark.parametrize("name", list(GRIDS))
@pytest.mark.parametrize("chunk", [1, 7, 64, None])
def test_packed_columns_have_the_bits_of_the_columns_evaluated_per_configuration(name, chunk):
    kw = GRIDS[name]
    ax, full = _evaluated(kw)
    r = sweep(chunk=chunk, **kw)
    assert r.packed is not None  # every grid here has more batches than batch classes
    assert not set(PACKED_AND_BATCH) & set(r.cols)  # held packed until read
    for k in (*PACKED_AND_BATCH, "kv_cache_bytes", "total_bytes", "fits", "reason_code"):
        _same(r[k], full[k], k)


def test_packed_and_per_configuration_results_read_alike(monkeypatch):
    """Columns, their order, to_dict and the text columns: the same with the columns packed and without (a task's
    accuracy columns included)."""
    kw = dict(GRIDS["layouts and lengths"], task="mmlu")  # the accuracy columns after the reason's code
    packed = sweep(chunk=11, **kw)
    monkeypatch.setattr(batch_free, "packing", lambda *a: None)
    plain = sweep(chunk=11, **kw)
    assert packed.columns[-3:] == ["accuracy", "accuracy_recovery", "reason"]
    assert packed.packed is not None and plain.packed is None
    assert set(PACKED_AND_BATCH) <= set(plain.cols)
    assert packed.columns == plain.columns
    a, b = packed.to_dict(), plain.to_dict()
    assert list(a) == list(b)
    for k in a:
        if a[k].dtype.kind in "fiub":
            _same(a[k], b[k], k)
        else:
            assert list(a[k]) == list(b[k]), k


def test_a_sweep_of_one_batch_per_class_holds_its_columns_as_they_are():
    """Packing would hold as many entries as configurations: none (batch [1] or ["max"] or [4, "max"])."""
    for batch in ([1], ["max"], [4, "max"]):
        kw = dict(models=["llama-3.1-8b"], hw=["h100"], batch=batch, prompt=[128, 512])
        r = sweep(**kw)
        assert r.packed is None and set(PACKED_AND_BATCH) <= set(r.cols)
        _, full = _evaluated(kw)
        for k in PACKED_AND_BATCH:
            _same(r[k], full[k], k)


def test_packing_places_each_configuration_by_its_batch_free_code():
    """Packing.index(start, n) is a one-to-one map of batch-free codes (grid._batch_free) to entries: two
    configurations share an entry exactly where they share a code, and every entry is some configuration's."""
    kw = GRIDS["max in the middle, twice"]
    ax = make_axes(**kw)
    p = batch_free.packing(ax.batch, ax.shape)
    flat = np.arange(ax.size)
    codes = grid._batch_free(ax, flat, grid._chunk_columns(ax, flat))
    at = p.index(0, ax.size)
    pairs = set(zip(codes.tolist(), at.tolist()))
    assert len(pairs) == len(set(codes.tolist())) == len(set(at.tolist())) == p.entries
    assert p.entries == ax.size // len(ax.batch) * 2  # a number and the largest: two classes
    for start, n in ((0, 1), (5, 40), (ax.size - 3, 3), (17, ax.size - 17)):
        np.testing.assert_array_equal(p.index(start, n), at[start:start + n])


@settings(max_examples=60, deadline=None)
@given(batch=st.lists(st.sampled_from([-1.0, 1.0, 2.0, 8.0]), min_size=1, max_size=6),
       outer=st.integers(1, 9), inner=st.integers(1, 40), chunk=st.integers(1, 500))
def test_every_entry_is_filled_once_by_any_chunking(batch, outer, inner, chunk):
    """Packing.fill over chunks of any size fills every entry, each from a configuration of its own code, by slices
    (few periods of the outer axes in a chunk) or by index arrays (many), and Packing.index reads it back."""
    shape = (outer, 1, 1, 1, 1, len(batch), inner, 1, 1, 1, 1)
    p = batch_free.packing(np.array(batch), shape)
    if p is None:
        assert len(batch) == len(set(b < 0 for b in batch))
        return
    size = int(np.prod(shape))
    at = p.index(0, size)
    value = at.astype(float) * 3.0 + 1.0  # each configuration its entry's value
    table = np.full(p.entries, np.nan)
    for start in range(0, size, chunk):
        p.fill({"x": table}, {"x": value[start:start + chunk]}, start)
    assert not np.isnan(table).any()
    np.testing.assert_array_equal(table[at], value)


def test_fill_by_index_arrays_matches_fill_by_slices(monkeypatch):
    """The two ways Packing.fill finds its rows (slices per period, index arrays past _SLICES periods) agree."""
    shape = (300, 1, 1, 1, 1, 3, 5, 1, 1, 1, 1)
    p = batch_free.packing(np.array([2.0, -1.0, 4.0]), shape)
    size = int(np.prod(shape))
    value = np.arange(size, dtype=float)
    tables = {}
    for slices in (0, 10 ** 6):
        monkeypatch.setattr(batch_free, "_SLICES", slices)
        tables[slices] = np.full(p.entries, np.nan)
        for start in range(0, size, 700):
            p.fill({"x": tables[slices]}, {"x": value[start:start + 700]}, start)
    np.testing.assert_array_equal(tables[0], tables[10 ** 6])
    assert not np.isnan(tables[0]).any()


def test_a_packed_result_is_smaller_by_its_packed_columns():
    """The packed result holds 4 float64 columns fewer per configuration, its tables one entry per code; a column
    read is unpacked alone (or derived: the batch)."""
    kw = GRIDS["one length each"]
    r = sweep(**kw)
    own = [k for k in r.cols if k not in grid.DERIVED]
    assert sum(r.cols[k].itemsize for k in own) == 10 * 8 + 3  # ten float64 columns, fits, valid, the reason's code
    tables = sum(t.nbytes for t in r.packed[1].values())
    ax = make_axes(**kw)
    assert tables == ax.size // len(ax.batch) * 2 * 8 * len(batch_free.PACKED)
    r["batch"]  # read: derived from the request and the largest batch, then both held as the others are
    assert set(r.cols) - set(own) == {"batch", "max_batch", "batch_requested"}
    r["weights_bytes"]  # each packed column unpacked alone
    assert set(r.cols) - set(own) == {"batch", "max_batch", "batch_requested", "weights_bytes"}


def test_a_sweep_result_of_a_chunk_is_read_from_its_start():
    """SweepResult(start=...) of packed tables reads the rows of its own flat indices."""
    kw = GRIDS["numbers alone"]
    ax, full = _evaluated(kw)
    whole = sweep(**kw)
    tail = SweepResult(ax, {k: v[5:] for k, v in whole.cols.items()}, whole.engine_names, start=5,
                       packed=whole.packed, order=whole.order)
    for k in PACKED_AND_BATCH:
        _same(tail[k], full[k][5:], k)


def test_a_streamed_sweep_writes_every_column(tmp_path):
    """sweep_to_file writes every column per configuration (sweep() packs its own result's columns alone)."""
    kw = GRIDS["numbers alone"]
    S.sweep_to_file(str(tmp_path / "s.csv"), chunk=3, **kw)
    got, mem = read_table(str(tmp_path / "s.csv")), sweep(**kw)
    for k in PACKED_AND_BATCH:
        np.testing.assert_array_equal(np.asarray(got[k], dtype=float), mem[k], err_msg=k)


def test_columns_added_to_a_result_are_read_and_listed():
    """A column a caller adds to r.cols is read by r[...] and listed after the evaluated ones, as before packing."""
    r = sweep(models=["llama-3.1-8b"], hw=["h100"], batch=[1, 8, "max"])
    assert r.packed is not None
    r.cols["foo"] = np.zeros(len(r))
    assert r["foo"].tobytes() == np.zeros(len(r)).tobytes()
    assert r.columns[-2:] == ["foo", "reason"] and "foo" in r.to_dict()
