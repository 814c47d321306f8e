"""Evaluating each phase once per distinct input (engine/distinct.py) gives today's results: the shared
path of a sweep agrees with evaluating every configuration to 1e-12 relative, over the whole model
catalogue and the edge cases (encoders, vision backbones, MLA, DSA, sliding window, chunked attention,
recurrent layers, MoE under EP and DP attention, tp=3, zero lengths, context, KV formats, engines)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.columns import format_columns, hardware_columns, model_columns, take
from costmodel.engine.distinct import distinct
from costmodel.engine.evaluate import evaluate
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import all_models, load_model
from costmodel.sweeps.grid import Tables, chunks, evaluate_chunk, make_axes

REL = 1e-12


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.5, 1.0, np.nan]), st.integers(-2, 2)),
                min_size=1, max_size=40))
def test_distinct_rows_rebuild_every_key(rows):
    a, b, c = (np.array(x, dtype=float) for x in zip(*rows))
    first, inverse = distinct(a, b, c, 7.0)  # a scalar key is the same on every row
    for k in (a, b, c):
        np.testing.assert_array_equal(k[first][inverse], k)  # NaN keys are never merged: still equal
    keys = {(x, y, z) for x, y, z in zip(a[first], b[first], c[first]) if not np.isnan(y)}
    assert len(keys) == int(np.sum(~np.isnan(b[first])))  # one row per distinct key


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3, 3), st.sampled_from([0.0, -0.0, 2.0, np.nan])), min_size=1, max_size=300))
def test_integer_keys_and_broadcast_numbers_group_as_floats_do(rows):
    """Integer key columns (a grid's codes) are grouped as integers and a number broadcast to every row
    (stride 0) is no key: the same groups as the keys all as float columns, through the runs, the hash and the
    sort alike."""
    ints, floats = np.array([r[0] for r in rows], dtype=np.int64), np.array([r[1] for r in rows])
    n = len(rows)
    for keys in ((ints, floats), (np.sort(ints), np.broadcast_to(np.float64(4.0), (n,)), floats), (ints,)):
        first, inverse = distinct(*keys)
        want_first, want_inverse = distinct(*(np.array(k, dtype=float) for k in keys))
        for k in keys:
            np.testing.assert_array_equal(np.asarray(k)[first][inverse], k)
        assert len(first) == len(want_first)  # as many groups
        assert np.array_equal(want_inverse[first][inverse], want_inverse)  # the same partition


def test_distinct_of_a_known_grid():
    a = np.array([2.0, 1.0, 2.0, 1.0, 3.0])
    b = np.array([0.0, 5.0, 0.0, 4.0, 0.0])
    first, inverse = distinct(a, b)
    assert sorted(zip(a[first], b[first])) == [(1.0, 4.0), (1.0, 5.0), (2.0, 0.0), (3.0, 0.0)]
    assert inverse[0] == inverse[2] and len(set(inverse.tolist())) == 4


def _partition(first, inverse) -> set:
    """The groups of row indices (first/inverse's grouping, whatever the order of the distinct rows)."""
    groups: dict = {}
    for i, g in enumerate(inverse.tolist()):
        groups.setdefault(g, []).append(i)
    assert sorted(first.tolist()) == sorted(min(v) for v in groups.values())  # each group's first row
    return {tuple(v) for v in groups.values()}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([0.0, -0.0, 1.0, 1e30, 3.5]),
                          st.sampled_from([1.0, 2.0, 4.0])), min_size=1, max_size=60))
def test_hashed_rows_group_as_the_sort_does(rows):
    """distinct groups rows by a hash checked against the keys: the groups the lexicographic sort finds."""
    from costmodel.engine.distinct import _sorted_distinct

    cols = [np.array(x, dtype=float) for x in zip(*rows)]
    assert _partition(*distinct(*cols)) == _partition(*_sorted_distinct(cols, len(cols[0])))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0.0, -0.0, 2.0, np.nan]), st.integers(1, 40)),
                min_size=1, max_size=30))
def test_runs_of_equal_rows_group_as_the_sort_does(rows):
    """Long runs of equal consecutive rows (a grid chunk's order) are grouped by their first rows: the
    groups the lexicographic sort finds, each group's first row its first occurrence."""
    from costmodel.engine.distinct import _RUNS_FROM, _sorted_distinct

    a = np.repeat([r[0] for r in rows], [r[2] for r in rows]).astype(float)
    b = np.repeat([r[1] for r in rows], [r[2] for r in rows])
    first, inverse = distinct(a, b)
    assert _partition(first, inverse) == _partition(*_sorted_distinct([a, b], len(a)))
    for k in (a, b):
        np.testing.assert_array_equal(k[first][inverse], k)
    if len(a) > _RUNS_FROM and not np.isnan(b).any():
        assert len(first) == len({(x, y + 0.0) for x, y in zip(a, b)})


def test_a_grid_chunk_is_grouped_by_its_runs(monkeypatch):
    """A chunk in grid order (batch outer, gen inner) groups its prefill keys from the runs' first rows
    alone: the hash sees one row per run."""
    from costmodel.engine import distinct as D

    batch, prompt, gen = (x.ravel() for x in np.meshgrid([1.0, 8.0, 64.0], [16.0, 512.0], np.arange(1.0, 21.0),
                                                         indexing="ij"))
    seen = []
    real = D._hashed
    monkeypatch.setattr(D, "_hashed", lambda cols, n: seen.append(n) or real(cols, n))
    first, inverse = D.distinct(batch, prompt)
    assert seen == [6] and len(first) == 6  # 120 rows, 6 runs of 20 generated lengths
    np.testing.assert_array_equal(batch[first][inverse], batch)
    np.testing.assert_array_equal(prompt[first][inverse], prompt)
    D.distinct(batch, prompt, gen)  # every row its own key: no runs to group, all 120 hashed
    assert seen[-1] == 120


def test_a_hash_collision_takes_the_sort(monkeypatch):
    from costmodel.engine import distinct as D

    monkeypatch.setattr(D, "_MIX", np.uint64(0))  # every row hashes to its last key alone: collisions
    a, b = np.array([1.0, 2.0, 1.0, 2.0]), np.array([5.0, 5.0, 5.0, 6.0])
    first, inverse = D.distinct(a, b)
    assert _partition(first, inverse) == {(0, 2), (1,), (3,)}
    for k in (a, b):
        np.testing.assert_array_equal(k[first][inverse], k)


def _agree(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.dtype.kind in "biu":
            np.testing.assert_array_equal(x, y, err_msg=k)
            continue
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=k)
        np.testing.assert_allclose(np.nan_to_num(y), np.nan_to_num(x), rtol=REL, atol=0, err_msg=k)


def _sweep_agrees(**kw) -> int:
    ax = make_axes(**kw)
    tab = Tables(ax)
    for flat in chunks(ax.size):
        _agree(evaluate_chunk(tab, flat, shared=False), evaluate_chunk(tab, flat, shared=True))
    return ax.size


def test_shared_sweep_matches_every_catalogue_model():
    n = _sweep_agrees(models=[m.id for m in all_models()], hw=["h100-sxm", "mi300x"], fmt=["bf16", "w4a16"],
                      batch=[1, "max"], tp=[1, 3, 8], layouts=["tp", "dp-ep"], prompt=[0, 1, 5000],
                      gen=[0, 2, 200], context=[0, 4096])
    assert n > 50_000


def test_shared_sweep_matches_kv_formats_engines_and_small_devices():
    _sweep_agrees(models=["llama-3.1-8b", "deepseek-v3", "gemma-3-4b", "qwen3-next-80b-a3b", "llama-4-scout",
                          "efficientvmamba-b", "bert-base"],
                  hw=["h200-sxm", "l40s", "rtx-4090"], fmt=["bf16", "fp8", "q4_k_m"], kv_fmt=["default", "fp8"],
                  engine=["auto", "vllm", "sglang"], batch=[1, 5, 64, "max"], tp=[1, 2], layouts=["tp", "ep"],
                  prompt=[7, 2048], gen=[1, 129], context=[0, 30000])


def test_shared_engine_result_details_match():
    """The per-operator detail (explain's tables) gathered from the distinct rows equals the full one."""
    models = [load_model(x) for x in ("llama-3.1-70b", "deepseek-v3", "gemma-2-9b", "qwen3-next-80b-a3b")]
    hws = [load_hardware("h100-sxm")]
    mc, hc = model_columns(models), hardware_columns(hws)
    fc = format_columns([(load_format("fp8"), hws[0], None, False)])
    rng = np.random.default_rng(3)
    n = 400
    mi = rng.integers(0, len(models), n)
    zeros = np.zeros(n, dtype=int)
    batch = rng.choice([1.0, 8.0, -1.0], n)
    prompt, gen = rng.choice([128.0, 1024.0], n), rng.choice([2.0, 300.0], n)
    tp = rng.choice([1.0, 8.0], n)
    args = (take(mc, mi), take(fc, zeros), take(hc, zeros), batch, prompt, gen, 0.0, tp, 1.0, 1.0)
    full, shared = evaluate(*args), evaluate(*args, groups=mi)
    _agree(full.metrics, shared.metrics)
    for a, b in ((full.prefill_ops, shared.prefill_ops), (full.decode_ops, shared.decode_ops)):
        for field in ("flops", "weight_bytes", "act_bytes", "kv_bytes", "launches", "rows", "dequant_flops"):
            np.testing.assert_allclose(getattr(b, field), getattr(a, field), rtol=REL, err_msg=field)
    np.testing.assert_allclose(shared.prefill_times.total, full.prefill_times.total, rtol=REL)
    np.testing.assert_allclose(shared.decode_times, full.decode_times, rtol=REL)


def test_mtp_varying_within_a_group_is_split_by_it():
    """MTP drafting loads the MTP modules' weights row by row: rows of one group with different `mtp`
    are not one distinct input (the shared path splits the group by it)."""
    models = [load_model("deepseek-v3")]
    hws = [load_hardware("h200-sxm")]
    cols = (take(model_columns(models), np.zeros(4, int)),
            take(format_columns([(load_format("fp8"), hws[0], None, False)]), np.zeros(4, int)),
            take(hardware_columns(hws), np.zeros(4, int)))
    args = (*cols, -1.0, 1000.0, 200.0, 0.0, 8.0, 1.0, 1.0, 1.0, 1.0, np.array([0.0, 2.0, 0.0, 2.0]))
    full, shared = evaluate(*args), evaluate(*args, groups=np.zeros(4, int))
    _agree(full.metrics, shared.metrics)
    assert full.metrics["max_batch"][0] > full.metrics["max_batch"][1]  # the MTP weights take KV room


def test_groups_with_broadcast_columns_or_workloads_give_the_same_results():
    """`groups` with columns of one row (broadcast over every configuration) or a 2-D workload (which
    distinct rows cannot take: evaluated per configuration) gives evaluate's results without groups."""
    models = [load_model("llama-3.1-8b")]
    hws = [load_hardware("h100-sxm")]
    one = (model_columns(models), format_columns([(load_format("fp8"), hws[0], None, False)]), hardware_columns(hws))
    prompt = np.array([128.0, 128.0, 4096.0, 4096.0])
    gen = np.array([64.0, 512.0, 64.0, 512.0])
    _agree(evaluate(*one, 8.0, prompt, gen, 0.0, 1.0, 1.0, 1.0).metrics,
           evaluate(*one, 8.0, prompt, gen, 0.0, 1.0, 1.0, 1.0, groups=np.zeros(4, int)).metrics)
    batch2d = np.array([[1.0], [16.0]])
    _agree(evaluate(*one, batch2d, prompt, gen, 0.0, 1.0, 1.0, 1.0).metrics,
           evaluate(*one, batch2d, prompt, gen, 0.0, 1.0, 1.0, 1.0, groups=np.zeros(4, int)).metrics)


def test_columns_of_one_entry_broadcast_to_the_same_results():
    """A Gathered table whose indices are all one entry keeps each column as that row, shape (1,),
    broadcast over the configurations: every metric is the same, bit for bit, as with full columns."""
    from costmodel.engine.distinct import Gathered

    models = [load_model(x) for x in ("llama-3.1-8b", "deepseek-v3", "qwen3-next-80b-a3b")]
    hws = [load_hardware("h100-sxm"), load_hardware("mi300x")]
    mc, hc = model_columns(models), hardware_columns(hws)
    fc = format_columns([(load_format("fp8"), h, None, False) for h in hws])
    n = 60
    rng = np.random.default_rng(5)
    batch, prompt = rng.choice([1.0, 16.0, -1.0], n), rng.choice([0.0, 100.0, 3000.0], n)
    for mi, hi in ((1, 0), (2, 1), (0, 1)):
        im, ih = np.full(n, mi), np.full(n, hi)
        one = Gathered(mc, im)
        assert one["h"].shape == (1,) and one.at(np.arange(5)) is one
        args = (batch, prompt, 200.0, 0.0, 8.0, 1.0, 1.0)
        full = evaluate(take(mc, im), take(fc, ih), take(hc, ih), *args, groups=im)
        got = evaluate(one, Gathered(fc, ih), Gathered(hc, ih), *args, groups=im)
        for k, v in full.metrics.items():
            assert np.shape(got.metrics[k]) == np.shape(v), k
            x, y = np.asarray(got.metrics[k], dtype=float), np.asarray(v, dtype=float)
            np.testing.assert_array_equal(x.view(np.uint64), y.view(np.uint64), err_msg=k)  # bit for bit


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([0.0, 1.0, 3.0, np.nan]), st.sampled_from([0.0, -0.0, 16.0]),
                          st.sampled_from([0.0, 64.0])), min_size=1, max_size=80),
       st.sampled_from([1.0, 2.0]), st.booleans())
def test_the_prefills_rows_on_four_keys_where_the_decodes_follow(rows, pp, fast):
    """lower_phases(follows=True), as lower_all calls it: where the decode's batch, new tokens and c0 are timeline.steps
    of the batch, prompt and context (pp and the drafts fixed by the group), the prefill's rows searched on the group,
    batch, prompt and context alone are the rows searched with the decode's keys too: the same groups of the prefill,
    the decode and its attention, the prefill's led by the same rows (numpy numbers its groups by their keys' hash,
    so in another order, and the decode's rows, searched among the prefill's, may be other rows of equal keys), and
    with the [fast] kernel the same arrays; NaN batches, signed zeros."""
    from costmodel.engine.phases import lower_phases
    from costmodel.engine.timeline import steps

    g, B, prompt, context = (np.array(c) for c in zip(*rows))
    pp = np.full(len(B), pp)  # one pp, as a group fixes it
    Bc, Bd, c0, c1 = steps(B, pp, context, prompt, 7.0)
    h100 = load_hardware("h100")
    m, hw = model_columns([load_model("llama-3.1-8b")]), hardware_columns([h100])
    f = format_columns([(load_format("bf16"), h100, None, False)])
    args = (m, f, hw, Bc, prompt, context, Bd, 1.0, c0, c1, 1.0, pp, 1.0, 1.0)
    with np.errstate(invalid="ignore"):
        both, four = (lower_phases(*args, groups=g, fast=fast, follows=x) for x in (False, True))

    def groups_of(ops) -> list:  # the configurations' groups of the prefill, the decode and its attention
        return [{tuple(np.flatnonzero(at == k)) for k in np.unique(at)}
                for at in (ops.p_inv, ops.d_of_p[ops.p_inv], ops.q_of_p[ops.p_inv])]

    assert groups_of(four) == groups_of(both)
    np.testing.assert_array_equal(four.p[four.p_inv], both.p[both.p_inv])  # each group's first row
    if fast:  # the kernel numbers groups as they first appear: the same arrays
        for k in ("p", "p_inv", "d", "d_of_p", "q", "q_of_p"):
            np.testing.assert_array_equal(getattr(four, k), getattr(both, k), err_msg=k)


def test_the_decodes_last_attention_from_its_rows_coefficients_is_every_configurations():
    """SharedPhaseOps.a1 (the decode's attention at every configuration's last step, from the pair coefficients at
    the distinct rows q) is lower_attention at each configuration's own columns, bit for bit: models with global,
    sliding-window, chunked, MLA and DSA attention and an encoder, under tp and DP attention, NaN and infinite
    lengths."""
    from costmodel.engine.evaluate import lower_all
    from costmodel.engine.operators import OP_FIELDS, group_batch, lower_attention

    models = [load_model(x) for x in ("llama-3.1-8b", "gemma-2-9b", "llama-4-scout", "deepseek-v3.2-exp", "bert-base")]
    hws = [load_hardware("h100-sxm"), load_hardware("mi300x")]
    rng = np.random.default_rng(11)
    n = 400
    im, ih = rng.integers(0, len(models), n), rng.integers(0, len(hws), n)
    mc, hc = take(model_columns(models), im), take(hardware_columns(hws), ih)
    fc = take(format_columns([(load_format("fp8"), h, None, False) for h in hws]), ih)
    tp, dp = rng.choice([1.0, 2.0, 8.0], n), rng.choice([1.0, 2.0], n)
    prompt, gen = rng.choice([16.0, 700.0, 9000.0], n), rng.choice([1.0, 300.0, 5000.0], n)
    gen[:2] = (np.nan, np.inf)
    with np.errstate(all="ignore"):
        lw = lower_all(mc, fc, hc, rng.choice([1.0, 7.0, -1.0], n), prompt, gen, 0.0, tp, 1.0, 1.0, dp=dp,
                       groups=im * len(hws) + ih)
        ph = lw.phases
        m, f, Bd, dp_, new, c1, tp_ = ph.last
        want = lower_attention(m, f, group_batch(Bd, dp_), new, c1, tp_ / dp_, decode=True, names=ph.present)
        got = ph.a1
    assert got.names == want.names and len(ph.q) < n
    for k in OP_FIELDS:
        x, y = np.broadcast_to(getattr(got, k), getattr(want, k).shape), getattr(want, k)
        np.testing.assert_array_equal(np.ascontiguousarray(x).view(np.uint64), y.view(np.uint64), err_msg=k)


def test_attention_variants_present_per_model():
    """A sweep's decode attention at every configuration holds only the variants its models have layers for."""
    from costmodel.engine.attention import attention_present

    def present(*ids):
        return attention_present(model_columns([load_model(x) for x in ids]))

    assert present("llama-3.1-8b") == ("attention",)
    assert present("gemma-2-9b") == ("attention", "attention_local")
    assert present("llama-4-scout") == ("attention", "attention_chunked")
    assert present("deepseek-v3.2") == ("attention", "attention_indexer")
    assert present("mamba2-2.7b") == ("attention",)  # none: the global entry, zero work
    assert present("llama-3.1-8b", "gemma-2-9b", "llama-4-scout") == ("attention", "attention_local",
                                                                        "attention_chunked")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1) | st.sampled_from([0, 1, 2**63]), min_size=1, max_size=300))
def test_unique_by_an_unstable_sort_equals_numpys(values):
    """distinct's _unique (quicksort, then each group's smallest index) gives np.unique's first indices
    and inverse."""
    from costmodel.engine.distinct import _unique

    h = np.array(values, dtype=np.uint64)
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    got_first, got_inverse = _unique(h)
    np.testing.assert_array_equal(got_first, first)
    np.testing.assert_array_equal(got_inverse, inverse.reshape(-1))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 50) | st.integers(0, 10**12), min_size=0, max_size=200))
def test_distinct_codes_group_equal_codes(values):
    """distinct_codes: one row per distinct code (a table over a narrow range, else distinct's hash),
    every row mapped to a row with its code."""
    from costmodel.engine.distinct import distinct_codes

    codes = np.array(values, dtype=np.int64)
    first, inverse = distinct_codes(codes)
    np.testing.assert_array_equal(codes[first][inverse], codes)
    assert len(first) == len(np.unique(codes))


def test_batch_free_codes_of_a_grid_fix_every_input_but_the_batch():
    """A sweep's seq_groups (grid._batch_free): rows with equal codes have equal model, format, device,
    layout, lengths and sign of the batch, and rows that differ in any of them differ in code."""
    from costmodel.sweeps.grid import _batch_free, _chunk_columns

    ax = make_axes(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l40s"], fmt=["bf16", "fp8"],
                   batch=[1, 8, "max", 64], tp=[1, 2], layouts=["tp", "ep"], prompt=[16, 512], gen=[1, 9],
                   context=[0, 100])
    flat = np.arange(3, ax.size - 5, dtype=np.int64)
    c = _chunk_columns(ax, flat)
    codes = _batch_free(ax, flat, c)
    key = np.stack([c[k] for k in ("im", "f_i", "tp", "dp_of_tp", "ep_of_tp", "prompt", "gen", "context")]
                   + [c["batch"] < 0]).T
    _, by_key = np.unique(key, axis=0, return_inverse=True)
    _, by_code = np.unique(codes, return_inverse=True)
    pairs = set(zip(by_key.reshape(-1).tolist(), by_code.tolist()))
    assert len(pairs) == len(set(by_key.reshape(-1).tolist())) == len(set(by_code.tolist())) < len(flat)  # one partition


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 400)), min_size=1, max_size=12), st.booleans())
def test_gathered_columns_equal_the_rows_they_index(runs, one_row_entry):
    """A Gathered column is table[idx] whatever the index's shape: long runs of one entry (repeated run
    by run), short runs, one entry (a broadcast row); a one-row table column stays as it is."""
    from costmodel.engine.distinct import Gathered

    idx = np.repeat([v for v, _ in runs], [k for _, k in runs])
    table = {"x": np.arange(7) * 1.5 - 3.0, "y": np.array([-0.0]) if one_row_entry else np.arange(7) * -0.0}
    g = Gathered(table, idx)
    for key in table:
        want = table[key] if len(table[key]) == 1 else table[key][idx]
        got = np.broadcast_to(g[key], want.shape)
        np.testing.assert_array_equal(got.view(np.uint64), want.view(np.uint64), err_msg=key)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 400)), min_size=1, max_size=12))
def test_a_gathered_tables_rows_hold_the_same_values(runs):
    """Gathered.table_rows (what attention_present reads for a sweep's chunk): the table at the entries the index
    holds, each once, where its runs tell them; so any question of whether some row has a value gets the full
    gather's answer."""
    from costmodel.engine.attention import attention_present
    from costmodel.engine.distinct import Gathered

    idx = np.repeat([v for v, _ in runs], [k for _, k in runs])
    models = [load_model(x) for x in ("llama-3.1-8b", "gemma-2-9b", "llama-4-scout", "deepseek-v3.2", "mamba2-2.7b",
                                      "qwen2.5-7b", "mixtral-8x7b")]
    table = model_columns(models)
    g = Gathered(table, idx)
    rows = g.table_rows()
    for key in ("global_layers", "local_layers", "chunked_layers", "dsa_heads", "heads", "experts"):
        assert set(np.broadcast_to(rows[key], (len(rows._idx),)).tolist()) == set(table[key][idx].tolist()), key
    assert attention_present(rows) == attention_present({k: v[idx] for k, v in table.items()})
    if rows is not g:  # found from the runs: each entry once
        assert sorted(rows._idx.tolist()) == sorted(set(idx.tolist()))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 300)), min_size=1, max_size=12), st.data())
def test_runs_from_blocks_are_the_runs_found(blocks, data):
    """distinct.block_runs (a column's runs from the rows where its blocks start, equal neighbouring blocks
    merged) gives a Gathered table the index and runs _runs_of finds in the whole column; blocks are cut anywhere
    (a chunk starting inside one)."""
    from costmodel.engine.distinct import Gathered, block_runs

    idx = np.repeat([v for v, _ in blocks], [k for _, k in blocks])
    cut = data.draw(st.integers(0, len(idx) - 1))  # the chunk starts `cut` rows into the grid's first block
    starts = np.concatenate(([0], np.cumsum([k for _, k in blocks])[:-1])) - cut
    idx, starts = idx[cut:], np.concatenate(([0], starts[starts > 0]))
    table = {"x": np.arange(4) * 2.5}
    found, known = Gathered(table, idx), Gathered(table, idx, runs=block_runs(idx, starts))
    assert found._idx.shape == known._idx.shape and np.array_equal(found._idx, known._idx)
    assert (found._runs is None) == (known._runs is None)
    if found._runs is not None:
        assert all(np.array_equal(a, b) for a, b in zip(found._runs, known._runs))
    np.testing.assert_array_equal(np.broadcast_to(known["x"], idx.shape), table["x"][idx])


def test_a_chunks_blocks_are_its_categorical_axes():
    """grid._block_starts: a chunk's rows where the model, device, format, KV format and engine change are among
    the blocks it gives, wherever the chunk starts and ends."""
    from costmodel.sweeps.grid import _block_starts, _chunk_columns

    ax = make_axes(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["bf16", "fp8"],
                   kv_fmt=["bf16", "fp8"], batch=[1, 8], tp=[1, 2], prompt=[16, 64, 256], gen=[1, 9])
    for start, n in ((0, ax.size), (5, 100), (ax.size - 31, 31), (47, 1)):
        flat = np.arange(start, start + n, dtype=np.int64)
        c = _chunk_columns(ax, flat)
        _assert_starts_cover([c[k] for k in ("im", "hw_i", "f_i")], _block_starts(ax, flat))


def _assert_starts_cover(columns: list, starts: np.ndarray) -> np.ndarray:
    """`starts` are rows of the columns' chunk, rising from 0, among which is every row where one of the columns
    changes; returns those rows."""
    key = np.stack([np.asarray(c, dtype=float) for c in columns])
    changes = np.concatenate(([0], np.flatnonzero((key[:, 1:] != key[:, :-1]).any(axis=0)) + 1))
    assert set(changes.tolist()) <= set(starts.tolist()) and starts[0] == 0 and (np.diff(starts) > 0).all()
    assert starts[-1] < key.shape[1]
    return changes


def test_one_attention_operator_is_packed_without_copies():
    """lower_attention of one variant holds its computed values as its fields (views, no copies), the same
    bits as the packed fields of all four variants."""
    from costmodel.engine.attention import ATTENTION_OPS
    from costmodel.engine.operators import OP_FIELDS, lower_attention

    m = model_columns([load_model("llama-3.1-8b")] * 5)
    f = format_columns([(load_format("fp8"), load_hardware("h100-sxm"), None, False)] * 5)
    B, n, c = np.array([1.0, 2, 8, 64, 3]), 1.0, np.array([0.0, 10, 4000, 9, 1e5])
    one = lower_attention(m, f, B, n, c, 2.0, decode=True, names=ATTENTION_OPS[:1])
    full = lower_attention(m, f, B, n, c, 2.0, decode=True)
    assert one.flops.base is not None and one.kv_bytes.base is not None  # views of the computed values
    for name in OP_FIELDS:
        a, b = getattr(one, name), getattr(full, name)[:1]
        assert a.shape == (1, 5), name
        np.testing.assert_array_equal(a.view(np.uint64), b.view(np.uint64), err_msg=name)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([1.0, 3.0]), st.sampled_from([16.0, 64.0]),
                          st.sampled_from([1.0, 2.0, 3.0]), st.sampled_from([1.0, 2.0]), st.sampled_from([16.0, 80.0])),
                min_size=1, max_size=80))
def test_the_decodes_rows_are_searched_among_the_prefills(rows):
    """lower_phases finds the decode's distinct rows among the prefill's (its key holds the decode's batch, new
    tokens and c0): the same groups as searching every row, even where those are not functions of the prefill's
    inputs as lower_all makes them."""
    from costmodel.engine.operators import group_batch
    from costmodel.engine.phases import lower_phases

    g, Bc, prompt, Bd, n_dec, c0 = (np.array(c) for c in zip(*rows))
    h100 = load_hardware("h100")
    m, hw = model_columns([load_model("llama-3.1-8b")]), hardware_columns([h100])
    f = format_columns([(load_format("bf16"), h100, None, False)])
    ops = lower_phases(m, f, hw, Bc, prompt, 0.0, Bd, n_dec, c0, c0 + 5.0, 1.0, 1.0, 1.0, 1.0, groups=g)
    def groups(first, inverse) -> set:  # the groups, each represented by one of its rows (any: equal inputs)
        assert np.array_equal(inverse[first], np.arange(len(first)))
        return _partition(np.array([np.flatnonzero(inverse == k)[0] for k in range(len(first))]), inverse)

    assert groups(ops.p, ops.p_inv) == _partition(*distinct(g, Bc, prompt, 0.0, Bd, n_dec, c0))
    assert groups(ops.d, ops.d_inv) == _partition(*distinct(g, Bd, n_dec))
    assert groups(ops.q, ops.q_inv) == _partition(*distinct(g, group_batch(Bd, 1.0), n_dec, c0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3), st.sampled_from([0.0, -0.0, 1.0, 2.5, np.nan])),
                min_size=1, max_size=12), st.data())
def test_runs_given_where_they_start(runs, data):
    """distinct(starts=): the rows given where every run of equal keys starts (any more rows among them, as a grid's
    chunk gives its axes' runs) group the rows as the runs it finds itself, the same first rows (each group's
    earliest), NaN keys each a group of their own row; and fast.distinct_rows(starts=) the same arrays as without
    (with a mask `keep`, given the runs alone: more rows split the runs it leaves unsearched)."""
    from costmodel.engine import fast

    g = np.repeat([r[1] for r in runs], [r[0] for r in runs]).astype(np.int64)
    a = np.repeat([r[2] for r in runs], [r[0] for r in runs])
    n = len(g)
    changes = np.flatnonzero(np.r_[True, (g[1:] != g[:-1]) | ~(a[1:] == a[:-1])])
    extra = data.draw(st.lists(st.integers(0, n - 1), max_size=8))
    starts = np.unique(np.r_[changes, extra])
    want, got = distinct(g, a, 3.0), distinct(g, a, 3.0, starts=starts)
    assert _partition(*got) == _partition(*want)
    for c in (g, a):
        assert np.array_equal(c[got[0]][got[1]], c, equal_nan=True)
    fast_want = fast.distinct_rows(g, a)
    if fast_want is not None:  # the kernels load
        assert all(np.array_equal(x, y) for x, y in zip(fast.distinct_rows(g, a, starts=starts), fast_want))
        keep = np.asarray(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))  # the runs themselves given
        assert all(np.array_equal(x, y) for x, y in zip(fast.distinct_rows(g, a, keep=keep, starts=changes),
                                                        fast.distinct_rows(g, a, keep=keep)))


def test_a_chunks_layout_runs_hold_the_pools_keys():
    """grid._layout_starts: every row of a chunk where the frame's groups, tp, dp or ep change is among the rows it
    gives (evaluate's group_starts), wherever the chunk starts and ends, layouts and unrunnable layouts included."""
    from costmodel.sweeps.grid import Tables, _chunk_columns, _frame, _layout_starts

    ax = make_axes(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["bf16", "fp8"],
                   batch=[1, 8, "max"], tp=[1, 2, 3], layouts=["tp", "ep", "dp-ep"], prompt=[16, 64], gen=[1, 9])
    tab = Tables(ax)
    for start, n in ((0, ax.size), (5, 100), (ax.size - 31, 31), (47, 1), (11, 300)):
        flat = np.arange(start, start + n, dtype=np.int64)
        fr = _frame(tab, flat, _chunk_columns(ax, flat))
        changes = _assert_starts_cover([fr[k] for k in ("groups", "tp", "dp", "ep")], _layout_starts(ax, flat))
        if n > 100:  # a chunk that long holds changes of the keys: the covering is tested
            assert len(changes) > 1


def test_a_chunks_prompt_runs_hold_the_prefills_keys_where_no_batch_is_the_largest():
    """grid._prefill_starts: every row of a chunk where the prefill's key changes (the frame's groups, layout, batch,
    prompt and context) is among the rows it gives, wherever the chunk starts and ends; None where a batch is "max"
    (its batch follows the generated length) or the grid has several contexts. A sweep gives the same bits with
    the starts as without, on numpy's path and the [fast] kernels', with configurations that do not fit."""
    from costmodel.sweeps import grid
    from costmodel.engine import phases
    from costmodel.engine.distinct import _RUNS_FROM as RUNS_FROM
    from costmodel.sweeps.grid import Tables, _chunk_columns, _frame, _prefill_starts
    from costmodel.sweeps.sweep import sweep

    kw = dict(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["bf16", "fp8"], tp=[1, 2, 3],
              layouts=["tp", "ep", "dp-ep"], prompt=[16, 64, 8192], gen=[1, 9, 700])
    ax = make_axes(batch=[1, 8, 256], **kw)
    tab = Tables(ax)
    for start, n in ((0, ax.size), (5, 100), (ax.size - 31, 31), (47, 1), (11, 300)):
        flat = np.arange(start, start + n, dtype=np.int64)
        fr = _frame(tab, flat, _chunk_columns(ax, flat))
        starts = _prefill_starts(ax, flat)
        changes = _assert_starts_cover([fr[k] for k in ("groups", "tp", "dp", "ep", "batch", "prompt", "context")],
                                       starts)
        if n > 100:
            assert len(changes) > 1 and len(starts) < n  # fewer rows than the chunk: the gen axis' runs are one
    flat = np.arange(ax.size, dtype=np.int64)
    assert _prefill_starts(make_axes(batch=[1, "max"], **kw), flat) is None
    assert _prefill_starts(make_axes(batch=[1], context=[0, 100], **kw), flat) is None
    # six generated lengths: a chunk of 97 gives 17 starts, few enough that numpy's distinct groups at them alone
    small = dict(kw, models=["llama-3.1-70b", "mixtral-8x7b"], batch=[1, 64], tp=[1, 2], layouts=["tp", "ep"],
                 gen=[1, 9, 33, 120, 700, 2000])
    for fast in (False, True):
        if fast:
            pytest.importorskip("numba")
        used = []

        def spy(*keys, starts=None, _real=phases.distinct):
            n = max(np.size(k) for k in keys)
            used.append(len(keys) == 4 and starts is not None and n > RUNS_FROM and 4 * (len(starts) - 1) < n)
            return _real(*keys, starts=starts)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(grid, "FAST_MIN_CONFIGS", 0 if fast else grid.FAST_MIN_CONFIGS)
            mp.setattr(phases, "distinct", spy)  # numpy's search (the [fast] one: fast.distinct_rows)
            with_starts = sweep(chunk=97, **small)
            assert fast or any(used)  # numpy's prefill search (its four keys) grouped at the starts alone
            assert 0 < int(np.sum(with_starts["fits"])) < len(with_starts)  # some do not fit: the keep mask acts
            mp.setattr(grid, "_prefill_starts", lambda ax, flat: None)
            without = sweep(chunk=97, **small)
        for k in with_starts.columns:
            x, y = np.asarray(with_starts[k]), np.asarray(without[k])
            assert x.dtype == y.dtype and (x.tobytes() == y.tobytes() if x.dtype.kind in "fiub"
                                           else x.tolist() == y.tolist()), (fast, k)


@pytest.mark.parametrize("fast", [False, True])
def test_a_chunk_given_as_a_range_is_the_chunk_given_as_indices(fast, monkeypatch):
    """evaluate_chunk of a range (grid.chunks', a sweep's) and of the same flat indices as an array: the same columns,
    bit for bit, on numpy's path and the [fast] kernels'; with the batch-free codes shared on one batch (no batch
    varies) as where several do, the values of every configuration evaluated alone."""
    from costmodel.sweeps import grid

    if fast:
        pytest.importorskip("numba")
        monkeypatch.setattr(grid, "FAST_MIN_CONFIGS", 0)
    for batch in ([1, 8, "max"], [4]):
        ax = make_axes(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["bf16"], batch=batch,
                       tp=[1, 2], prompt=[128, 1024], gen=[16, 64], layouts=["tp", "ep"])
        tab = Tables(ax)
        for idx in chunks(ax.size, 37):
            assert isinstance(idx, range)
            as_range, as_array = evaluate_chunk(tab, idx), evaluate_chunk(tab, np.arange(idx.start, idx.stop))
            plain = evaluate_chunk(tab, np.arange(idx.start, idx.stop), shared=False)
            assert list(as_range) == list(as_array)
            for k in as_range:
                x, y = np.asarray(as_range[k]), np.asarray(as_array[k])
                assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), k
            _agree(plain, as_range)
