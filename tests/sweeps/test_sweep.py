"""Sweeps equal single estimates; frontiers are right; plots, closed forms, distributed runs."""
import json
import mmap
import os
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel import estimate
from costmodel.analyses.formula import formula
from costmodel.engine.operators import lower
from costmodel.sweeps.pareto import ParetoError, non_dominated, pareto_front
from costmodel.sweeps.grid import SweepError, chunk_size
from costmodel.sweeps.sweep import read_table, sweep, sweep_to_file

AXES = dict(models=["llama-3.1-8b", "mixtral-8x7b", "llama-3.1-405b"], hw=["h100", "m2-pro", "b200"],
            fmt=["bf16", "fp8", "q4_0"], batch=[1, 8, "max"], tp=[1, 2, 3], prompt=[128, 2048], gen=[64])


@pytest.fixture(scope="module")
def result():
    return sweep(**AXES)


def test_sweep_shape_and_columns(result):
    assert len(result) == 3 * 3 * 3 * 3 * 3 * 2
    for col in ("ttft_s", "tpot_s", "throughput_tokens_per_s", "usd_per_million_tokens", "fits", "valid", "batch"):
        assert len(result[col]) == len(result)
    assert set(result["model"]) == {"llama-3.1-8b", "mixtral-8x7b", "llama-3.1-405b"}


def test_sweep_equals_single_estimates(result):
    rng = np.random.default_rng(0)
    ok = np.where(result["valid"] & result["fits"])[0]
    for i in rng.choice(ok, 25, replace=False):
        b = result["batch_requested"][i]
        e = estimate(result["model"][i], result["hardware"][i], result["format"][i],
                     batch="max" if b < 0 else int(b), prompt=int(result["prompt"][i]), gen=int(result["gen"][i]),
                     tp=int(result["tp"][i]), engine=result["engine"][i])
        for k in ("ttft_s", "tpot_s", "throughput_tokens_per_s", "energy_j_per_token"):
            assert result[k][i] == pytest.approx(e.metric(k), rel=1e-9), (i, k)
        assert result["batch"][i] == e.batch


def test_invalid_and_unfit_configurations_are_marked_not_dropped(result):
    reason = result["reason"]
    tp3 = result["tp"] == 3
    assert np.all(reason[tp3] == "tp does not divide the attention heads") and not result["valid"][tp3].any()
    apple_tp2 = (result["hardware"] == "m2-pro-19c") & (result["tp"] == 2)
    assert np.all(reason[apple_tp2] == "tp/pp > 1 on a device without an interconnect")
    big = (result["model"] == "llama-3.1-405b") & (result["hardware"] == "h100-sxm") & (result["tp"] == 1)
    assert not result["fits"][big].any() and np.all(reason[big] == "does not fit in memory")
    assert np.isnan(result["tpot_s"][tp3]).all()


def test_to_pandas(result):
    pytest.importorskip("pandas")
    df = result.to_pandas()
    assert len(df) == len(result) and "usd_per_million_tokens" in df.columns


def test_empty_axis_is_a_clear_error():
    with pytest.raises(SweepError, match="empty"):
        sweep(models=[], hw=["h100"])
    with pytest.raises(SweepError, match="--batch 'lots'"):
        sweep(batch=["lots"])


def _brute_force_frontier(v: np.ndarray) -> np.ndarray:
    """The finite rows no finite row dominates (no worse in every objective, better in one), row by row."""
    finite = np.all(np.isfinite(v), axis=1)
    w = v[finite]
    dominated = np.array([np.any(np.all(w <= x, axis=1) & np.any(w < x, axis=1)) for x in v])
    return finite & ~dominated


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.integers(1, 4), st.integers(0, 2**31 - 1), st.booleans())
def test_frontier_matches_brute_force(n, k, seed, pivots):
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 8, (n, k)).astype(float)  # integers: many ties and duplicates
    v[rng.random((n, k)) < 0.02] = np.nan  # never on the frontier, as a row with inf
    v[rng.random((n, k)) < 0.02] = rng.choice([np.inf, -np.inf])
    v[rng.random((n, k)) < 0.02] = rng.choice([1e308, -1e308])
    v[-2:, 0] = [1e308, -1e308][-n:]  # a difference past float's range (the pivots' sums), and no warning of it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = non_dominated(v, block=int(rng.integers(1, 64)), pivots=pivots)  # blocks under n: the pivots run
    assert np.array_equal(got, _brute_force_frontier(v))


def test_many_copies_of_frontier_rows_are_all_on_it():
    """A frontier of many copies (30 distinct rows, each 400 times, -0.0 beside 0.0, shuffled) is the frontier of the
    distinct rows, every copy of a frontier row kept: non_dominated checks one row of each run of equal rows
    (_equal_runs), which the brute force on the distinct rows confirms."""
    from costmodel.sweeps.pareto import _equal_runs

    rng = np.random.default_rng(3)
    distinct = rng.integers(0, 6, (30, 3)).astype(float)
    distinct[0] = [0.0, 5.0, 5.0]
    copies = np.repeat(np.arange(30), 400)
    rng.shuffle(copies)
    v = distinct[copies]
    v[np.flatnonzero(copies == 0)[::2], 0] = -0.0  # equal to 0.0: the same run
    want = _brute_force_frontier(distinct)[copies]
    for pivots in (True, False):
        assert np.array_equal(non_dominated(v, block=64, pivots=pivots), want)
    order = np.lexsort(v.T[::-1])
    heads, run = _equal_runs(v, order)
    assert len(heads) == len(np.unique(distinct, axis=0)) and np.array_equal(v[heads][run], v[order])


def test_pivots_drop_only_dominated_rows_and_most_of_a_cloud():
    """_pivot_filter keeps every frontier row, and each row it drops is dominated by one it keeps. On 10^4 uniform
    points in the unit cube the pivot of least sum p dominates a share Π(1 − p_i) ≥ 1 − s of them, where s, the least
    of 10^4 sums of three uniforms (CDF s³/6 near 0), is about (6/10^4)^(1/3) ≈ 0.084: under a tenth stay."""
    from costmodel.sweeps.pareto import _pivot_filter

    v = np.random.default_rng(5).random((10_000, 3))
    kept = _pivot_filter(v, np.arange(len(v)), 16)
    assert len(kept) < len(v) / 10
    assert not non_dominated(v, pivots=False)[np.setdiff1d(np.arange(len(v)), kept)].any()  # brute force: above
    w = v[kept]
    for x in v[np.setdiff1d(np.arange(len(v)), kept)][:500]:
        assert np.any(np.all(w <= x, axis=1) & np.any(w < x, axis=1))


def test_pareto_front_senses_and_unfit_rows():
    table = {"cost": np.array([1.0, 2.0, 3.0, 1.0]), "accuracy": np.array([0.5, 0.9, 0.8, 0.95]),
             "fits": np.array([True, True, True, False])}
    mask = pareto_front(table, "min:cost,max:accuracy")
    assert mask.tolist() == [True, True, False, False]


def test_excluded_counts_missing_objectives_by_model_and_format():
    """Rows that fit but lack an objective, counted per (column, model, format), sorted; a sweep's result and its
    columns as a dict give the same (the result's name columns read once, not once a row)."""
    from costmodel.sweeps.pareto import excluded

    table = {"model": np.array(["a", "b", "a", "a", "b"]), "format": np.array(["x", "x", "y", "x", "x"]),
             "acc": np.array([np.nan, np.nan, 1.0, np.nan, np.inf]), "fits": np.array([True, True, True, True, False])}
    got = [(x["column"], x["model"], x["format"], x["configurations"]) for x in excluded(table, "max:acc")]
    assert got == [("acc", "a", "x", 2), ("acc", "b", "x", 1)]
    assert excluded(table, "min:fits") == []
    r = sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8", "nvfp4"], batch=[1, 8], task="mmlu")
    objs = "min:usd_per_million_tokens,max:accuracy"
    assert excluded(r, objs) == excluded(r.to_dict(), objs) != []


def test_bad_objectives():
    with pytest.raises(ParetoError, match="did you mean 'tpot_s'"):
        pareto_front({"tpot_s": np.ones(3)}, "min:tpot")
    with pytest.raises(ParetoError, match="min or max"):
        pareto_front({"tpot_s": np.ones(3)}, "low:tpot_s")
    # (sense, column) pairs are checked as the text is, not met by a KeyError, a silent pass or an IndexError
    with pytest.raises(ParetoError, match="did you mean 'tpot_s'"):
        pareto_front({"tpot_s": np.ones(3)}, [("min", "tpot")])
    with pytest.raises(ParetoError, match="min or max"):
        pareto_front({"tpot_s": np.ones(3)}, [("low", "tpot_s")])
    with pytest.raises(ParetoError, match="no objectives"):
        pareto_front({"tpot_s": np.ones(3)}, [])


def test_stream_to_csv_and_parquet(tmp_path):
    n = sweep_to_file(str(tmp_path / "s.csv"), chunk=7, models=["llama-3.1-8b"], hw=["h100", "l4"], fmt=["fp8", "bf16"],
                      batch=[1, 4, 16])
    cols = read_table(str(tmp_path / "s.csv"))
    assert n == 12 and len(cols["tpot_s"]) == 12
    mem = sweep(models=["llama-3.1-8b"], hw=["h100", "l4"], fmt=["fp8", "bf16"], batch=[1, 4, 16])
    assert np.allclose(cols["tpot_s"], mem["tpot_s"], rtol=1e-12)
    pytest.importorskip("pyarrow")
    sweep_to_file(str(tmp_path / "s.parquet"), chunk=5, models=["llama-3.1-8b"], hw=["h100", "l4"], fmt=["fp8", "bf16"],
                  batch=[1, 4, 16])
    pq = read_table(str(tmp_path / "s.parquet"))
    assert np.allclose(pq["tpot_s"], mem["tpot_s"], rtol=1e-12) and list(pq["model"][:1]) == ["llama-3.1-8b"]


@pytest.mark.parametrize("kw", [
    dict(models=["llama-3.1-8b"], hw=["h100"], fmt=["bf16"], batch=[1, 8]),  # every text column one name
    dict(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["fp8", "bf16"], kv_fmt=["fp8"],
         engine=["auto", "vllm"], batch=[1, "max"], tp=[1, 3], prompt=[16, 100000])])  # reasons, dropped KV
def test_a_streamed_csv_is_its_columns_spelled_out(tmp_path, kw):
    """sweep_to_file's CSV, whose text columns are written from their codes (one cell a name), has the bytes of
    the in-memory sweep's columns spelled out row by row and written in one go."""
    from costmodel.sweeps.sweep import _append_csv

    sweep_to_file(str(tmp_path / "s.csv"), chunk=5, **kw)
    _append_csv(str(tmp_path / "m.csv"), sweep(**kw).to_dict(), header=True)
    assert (tmp_path / "s.csv").read_bytes() == (tmp_path / "m.csv").read_bytes()


def test_distributed_equals_local():
    pytest.importorskip("distributed")
    kw = dict(models=["llama-3.1-8b", "qwen2.5-7b"], hw=["h100", "l40s"], fmt=["bf16", "fp8"], batch=[1, "max"])
    a = sweep(**kw, chunk=5)
    b = sweep(**kw, chunk=5, workers=1)
    assert a.columns == b.columns
    for k in ("tpot_s", "ttft_s", "usd_per_million_tokens", "fits", "batch", "tp", "batch_requested"):
        assert np.array_equal(a[k], b[k], equal_nan=True)
    assert list(a["model"]) == list(b["model"]) and list(a["engine"]) == list(b["engine"])


def test_closed_forms_agree_with_the_engine():
    cf = formula("llama-3.1-8b", "h100", "bf16", context=64, engine="ideal")
    assert cf.exact
    from costmodel.engine.columns import format_row, hardware_row, model_row
    from costmodel.spec.formats import load_format
    from costmodel.spec.hardware import load_hardware
    from costmodel.spec.model_catalog import load_model

    arr = lambda d: {k: np.asarray(v, dtype=float) for k, v in d.items()}  # noqa: E731
    h = load_hardware("h100")
    m, f, hw = arr(model_row(load_model("llama-3.1-8b"))), arr(format_row(load_format("bf16"), h)), arr(hardware_row(h))

    def ratio(B, n, C, decode):  # compute time / memory time of the engine's totals
        ops = lower(m, f, hw, B, n, C, 1, 1, decode)
        return (ops.flops.sum() / cf.peak) / (ops.bytes.sum() / cf.bandwidth)

    b_star = cf.crossovers["decode_compute_bound_batch"]
    assert ratio(np.floor(b_star), 1.0, 64.0, True) < 1 < ratio(np.ceil(b_star) + 1, 1.0, 64.0, True)
    p_star = cf.crossovers["prefill_compute_bound_prompt"]
    assert 128 <= p_star and ratio(1.0, np.floor(p_star) - 1, 0.0, False) < 1 < ratio(1.0, np.ceil(p_star) + 1, 0.0, False)
    b_kv = cf.crossovers["kv_exceeds_weights_batch"]
    ops = lower(m, f, hw, b_kv, 1.0, 64.0, 1, 1, True)
    # weight traffic includes the embedding rows gathered per token, a 0.1% term that grows with B
    assert ops.kv_bytes.sum() == pytest.approx(ops.weight_bytes.sum(), rel=2e-3)


def test_cli_sweep_pareto_curve_formula_plots(run_cli, tmp_path):
    common = ["--models", "llama-3.1-8b,llama-3.1-70b", "--hw", "h100,b200", "--fmt", "bf16,fp8,nvfp4", "--batch", "1,max",
              "--tp", "1,2"]
    code, out, err = run_cli("sweep", *common, "--rows", "5")
    assert code == 0 and "48 configurations" in out, err
    csv_path = tmp_path / "s.csv"
    code, out, _ = run_cli("sweep", *common, "--out", str(csv_path))
    assert code == 0 and csv_path.stat().st_size > 0
    png = tmp_path / "p.png"
    code, out, err = run_cli("pareto", str(csv_path), "--objectives", "min:usd_per_million_tokens,min:tpot_s",
                             "--plot", str(png), "--json")
    assert code == 0, err
    front = json.loads(out)
    assert front and png.stat().st_size > 10_000
    code, out, err = run_cli("pareto", str(csv_path), "--objectives", "min:ttft_s,max:throughput_tokens_per_s",
                             "--rows", "2")  # the table shows the first rows of a frontier of more
    n = len(json.loads(run_cli("pareto", str(csv_path), "--objectives", "min:ttft_s,max:throughput_tokens_per_s",
                                "--json")[1]))
    title = " ".join(out.split())  # the title as words (rich wraps it)
    assert code == 0 and n > 2 and f"Pareto frontier: {n} of 48" in title and "the first 2 by ttft_s" in title, err
    assert out.count("llama-3.1-") == 2
    code, _, err = run_cli("pareto", str(csv_path), "--task", "mmlu", "--hw", "b200")  # ignored silently before
    assert code == 2 and "--hw, --task: apply where pareto sweeps itself" in err, err
    bad = tmp_path / "acc.csv"
    bad.write_text("model,format,task,value\nllama-3.1-8b,fp8,mmlu,5\n")  # read as NaN rows before
    code, _, err = run_cli("pareto", "--models", "llama-3.1-8b", "--task", "mmlu", "--accuracy", str(bad),
                           "--objectives", "min:usd_per_million_tokens,max:accuracy")
    assert code == 2 and "acc.csv:2: value 5.0 is outside [0, 1]" in err, err
    code, _, err = run_cli("pareto", str(csv_path), "--objectives", "min:usd_per_mtok")
    assert code == 2 and "did you mean 'usd_per_million_tokens'" in err
    curve_png = tmp_path / "c.png"
    code, out, err = run_cli("curve", "llama-3.1-8b", "--hw", "h100,l40s", "--fmt", "fp8", "--plot", str(curve_png), "--json")
    assert code == 0 and len(json.loads(out)) == 2 and curve_png.stat().st_size > 10_000, err
    mem_png = tmp_path / "m.png"
    code, _, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--plot", str(mem_png), "--json")
    assert code == 0 and mem_png.stat().st_size > 5_000, err
    code, out, _ = run_cli("formula", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--json")
    d = json.loads(out)
    assert code == 0 and "B*C" in d["expressions"]["decode FLOPs(B, C)"] and d["exact"]
    code, out, _ = run_cli("formula", "llama-3.1-8b", "--latex")
    assert code == 0 and "\\max" in out


def test_unfit_configurations_carry_no_metrics_only_their_reason():
    r = sweep(models=["llama-3.1-70b"], hw=["l4", "h100"], fmt=["bf16"], batch=[1])
    l4 = list(r["hardware"]).index("l4")
    assert not r["fits"][l4] and r["reason"][l4] == "does not fit in memory"
    assert all(np.isnan(r[k][l4]) for k in ("ttft_s", "tpot_s", "throughput_tokens_per_s", "usd_per_million_tokens"))
    assert r["weights_bytes"][l4] > 0  # the memory that explains why stays


@pytest.mark.parametrize("args, reason", [(("serve-curve", "llama-3.1-8b", "--hw", "h10", "--concurrency", "1,16"),
                                           "did you mean 'h100'"),
                                          (("curve", "llama-3.1-8b", "--hw", "h100", "--tp", "3"),
                                           "tp does not divide the attention heads"),
                                          (("serve-curve", "llama-3.1-8b", "--hw", "h100", "--concurrency", "4",
                                            "--prompt-dist", "lognormal:512,30"), "0 <= SIGMA <= 4")])
def test_curves_with_every_device_dropped_are_an_error(run_cli, args, reason):
    """curve and serve-curve exit with code 2 and each device's reason where none is left (they exited 0 with
    nothing but the dropped lines)."""
    code, out, err = run_cli(*args)
    assert code == 2 and "no curve:" in err and reason in err and not out.strip(), (out, err)


def test_curve_says_which_devices_it_dropped_and_why():
    from costmodel import latency_throughput

    c = latency_throughput("llama-3.1-70b", ["h100", "l4"], ["fp8"])
    assert [x["hardware"] for x in c] == ["h100-sxm"]
    assert c.dropped == [{"hardware": "l4", "format": "fp8", "reason": "does not fit in memory"}]


def test_parquet_text_columns_are_dictionaries_of_the_names(tmp_path):
    """Parquet text columns are written from their codes as dictionaries; read back they are the names."""
    pa = pytest.importorskip("pyarrow.parquet")
    kw = dict(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["fp8", "q4_k_m"], kv_fmt=["default", "fp8"],
              engine=["auto", "vllm"], batch=[1, "max"], tp=[1, 3], layouts=["tp", "ep"])
    path = str(tmp_path / "s.parquet")
    n = sweep_to_file(path, chunk=11, **kw)
    mem = sweep(**kw)
    table = pa.read_table(path)
    back = read_table(path)
    assert n == len(mem) == table.num_rows
    for k in ("model", "hardware", "format", "kv_format", "engine", "reason"):
        assert str(table.schema.field(k).type).startswith("dictionary"), k
        assert back[k].tolist() == mem[k].tolist(), k
    assert set(back["reason"]) >= {"", "tp does not divide the attention heads"}
    assert np.array_equal(back["tpot_s"], mem["tpot_s"], equal_nan=True)


def test_csv_numbers_are_spelled_as_numpy_prints_them():
    from costmodel.sweeps.sweep import _number_cells

    special = [0.0, -0.0, 1.0, 0.1, 1 / 3, 1e-5, 1.5e-7, 123456789.123, 1e15, 1e16, 2.5e300, 5e-324,
               float("nan"), float("inf"), -float("inf"), 8.0, 65536.0]
    rng = np.random.default_rng(2)
    values = np.concatenate([np.array(special), rng.lognormal(0, 12, 2000), -rng.random(200)])
    # NaN and ±inf (no output to count per token): empty
    assert _number_cells(values) == ["" if v in ("nan", "inf", "-inf") else v for v in values.astype(str).tolist()]
    for a in (np.arange(5, dtype=np.int32), np.array([True, False]), np.arange(3, dtype=np.int8)):
        assert _number_cells(a) == a.astype(str).tolist()


_CELL_VALUES = [0.0, -0.0, float("nan"), -float("nan"), float("inf"), -float("inf"), 5e-324, -5e-324, 0.1, 1 / 3,
                1e16, 1e-7, 2.0 ** 53 + 2, 1.7976931348623157e308]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_CELL_VALUES) | st.floats(allow_nan=False, width=64), max_size=60),
       st.integers(1, 8))
def test_csv_numbers_spelled_once_per_distinct_value_are_each_values_cell(values, repeat):
    """_number_cells spells each distinct value once and gathers its cell (where under nine in ten are distinct):
    every cell is that value's repr (-0.0 apart from 0.0, by its bits), NaN of either sign and ±inf empty; integers and
    flags as numpy's str of each; the same whether the values repeat or not."""
    from costmodel.sweeps.sweep import _number_cells

    a = np.repeat(np.array(values, dtype=np.float64), repeat)
    assert _number_cells(a) == ["" if not np.isfinite(v) else repr(v) for v in a.tolist()]
    assert _number_cells(a[::-1]) == ["" if not np.isfinite(v) else repr(v) for v in a[::-1].tolist()]  # a strided view
    ints = np.array([int(v) % 7 - 3 for v in range(len(a))], dtype=np.int64)
    for x in (ints, ints.astype(np.uint8), ints > 0):
        assert _number_cells(x) == x.astype(str).tolist()


def test_a_csv_chunk_of_no_rows_writes_its_header_alone(tmp_path):
    """_append_csv of a chunk without rows: the header (or nothing, appended); a chunk after it reads back."""
    from costmodel.sweeps.sweep import _append_csv

    path = str(tmp_path / "s.csv")
    empty = {"model": np.array([], dtype=object), "tpot_s": np.array([]), "fits": np.array([], dtype=bool)}
    _append_csv(path, empty, header=True)
    _append_csv(path, empty, header=False)
    assert open(path).read() == "model,tpot_s,fits\n"
    rows = {"model": np.array(["=a", "b"], dtype=object), "tpot_s": np.array([-0.0, np.nan]),
            "fits": np.array([True, False])}
    _append_csv(path, rows, header=False)
    assert open(path).read().splitlines()[1:] == ["'=a,-0.0,True", "b,,False"]  # a formula escaped


def test_chunk_axes_of_a_large_grid_cost_the_chunk_not_the_grid():
    """An outer axis of a 10^12-configuration grid (runs of 10^9) is built from the chunk's rows alone."""
    from costmodel.sweeps.grid import _Unravel

    shape = (1000, 1000, 1000, 1000)
    flat = np.arange(987_654_321_000 - 50, 987_654_321_000 + 70, dtype=np.int64)  # across an inner boundary
    axis = _Unravel(flat, shape)
    want = np.unravel_index(flat, shape)
    for k in range(4):
        np.testing.assert_array_equal(axis.index(k), want[k])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=6), st.integers(0, 10_000), st.integers(0, 400),
       st.booleans())
def test_chunk_axes_equal_unravel_index(shape, start, n, shuffled):
    """A chunk's axis indices and values, built as repeats of each axis's runs for consecutive flat
    indices (or by unravel_index otherwise), equal np.unravel_index's."""
    from costmodel.sweeps.grid import _Unravel

    size = int(np.prod(shape))
    start = start % size
    flat = np.arange(start, min(size, start + n), dtype=np.int64)
    if shuffled:
        flat = np.random.default_rng(n).permutation(flat)
    axis = _Unravel(flat, tuple(shape))
    want = np.unravel_index(flat, tuple(shape))
    for k, size_k in enumerate(shape):
        np.testing.assert_array_equal(axis.index(k), want[k])
        table = np.arange(size_k) * 10.0 + 0.5
        np.testing.assert_array_equal(axis.value(k, table), table[want[k]])


def test_an_in_memory_sweep_takes_the_fast_kernels_chunk_where_they_time_it(monkeypatch):
    """sweep asks chunk_size for the [fast] kernels' ceiling exactly where grid.timed_fast holds (COSTMODEL_FAST and
    the sweep's size), and a streamed sweep never does."""
    from costmodel.sweeps import grid
    from costmodel.sweeps import sweep as S

    asked = []
    monkeypatch.setattr(S, "chunk_size", lambda n, chunk=None, fast=False: asked.append(fast) or chunk_size(n, chunk))
    monkeypatch.setattr(grid, "FAST_MIN_CONFIGS", 0)
    kw = dict(models=["llama-3.1-8b"], hw=["h100"], batch=[1, 2], prompt=[64, 128])
    expected = []
    for flag in ("1", "0"):
        monkeypatch.setenv("COSTMODEL_FAST", flag)
        expected.append(grid.fast_enabled())  # numba installed: True, then off
        sweep(**kw)
    assert asked == expected and expected[1] is False
    monkeypatch.setenv("COSTMODEL_FAST", "1")
    monkeypatch.setattr(grid, "FAST_MIN_CONFIGS", 10 ** 9)
    sweep(**kw)
    assert asked[-1] is False


def test_the_default_chunk_and_a_bad_one():
    """Powers of two from 65,536 to 262,144 configurations per engine call (524,288 in memory with the [fast]
    kernels), 16 chunks or more where the sweep's size allows (grid.chunk_size: 14 chunks of 65,536 for the 912k
    benchmark grid, 39 of 262,144 for the 10^7 one, 20 of 524,288 with the kernels); a chunk the user names is kept;
    one that is not a whole number of 1 or more is a SweepError naming it."""
    sizes = (0, 1, 912_384, 16 * 131_071, 16 * 131_072, 2_663_424, 16 * 524_287, 10_077_696, 10 ** 9)
    assert [chunk_size(n) for n in sizes] == \
        [65_536, 65_536, 65_536, 65_536, 131_072, 131_072, 262_144, 262_144, 262_144]
    assert [chunk_size(n, fast=True) for n in sizes] == \
        [65_536, 65_536, 65_536, 65_536, 131_072, 131_072, 262_144, 524_288, 524_288]
    assert chunk_size(10 ** 9, 37) == 37 and chunk_size(5, np.int64(3)) == 3 and chunk_size(10 ** 9, 37, True) == 37
    for bad in (0, -4, 1.5, True, "4096", 2.0):
        with pytest.raises(SweepError, match=f"chunk={bad!r}: expected a whole number"):
            chunk_size(100, bad)
    with pytest.raises(SweepError, match="chunk=0"):
        sweep(models=["llama-3.1-8b"], hw=["h100"], fmt=["bf16"], chunk=0)


def test_chunk_size_does_not_change_a_sweep():
    """Columns written chunk by chunk into the result equal one chunk's and any other chunking's."""
    kw = dict(models=["llama-3.1-8b", "deepseek-v3"], hw=["h100", "mi300x"], fmt=["bf16", "fp8"], batch=[1, 8, "max"],
              tp=[1, 8], prompt=[128, 4096], gen=[16, 512], context=[0, 1000], layouts=["tp", "ep"])
    one, small = sweep(**kw, chunk=1 << 20), sweep(**kw, chunk=37)
    assert one.columns == small.columns
    for k in one.columns:  # every column, those read from the axes included, bit for bit
        a, b = one[k], small[k]
        assert a.dtype == b.dtype, k
        if a.dtype.kind == "f":
            a, b = a.view(np.uint64), b.view(np.uint64)
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_parquet_dictionary_pages_for_text_columns_only(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "s.parquet")
    sweep_to_file(path, models=["llama-3.1-8b"], hw=["h100", "l4"], fmt=["fp8", "bf16"], batch=[1, 4, 16])
    col = {c.path_in_schema: c for c in (pq.ParquetFile(path).metadata.row_group(0).column(j)
                                         for j in range(pq.ParquetFile(path).metadata.num_columns))}
    assert "PLAIN_DICTIONARY" in col["model"].encodings or "RLE_DICTIONARY" in col["model"].encodings
    assert not any("DICTIONARY" in e for e in col["tpot_s"].encodings)
    assert col["tpot_s"].statistics is not None and col["tpot_s"].statistics.has_min_max


def test_parquet_columns_are_required_with_their_statistics_and_nan_kept(tmp_path):
    """Every column is written REQUIRED (no definition levels: sweep._arrow_table), the row groups keep min/max
    statistics for text and number columns alike, and a configuration that does not fit reads back NaN, not null."""
    pq = pytest.importorskip("pyarrow.parquet")
    path = str(tmp_path / "s.parquet")
    kw = dict(models=["llama-3.1-70b"], hw=["h100", "l4"], fmt=["bf16"], batch=[1, 64])
    sweep_to_file(path, chunk=3, **kw)
    f = pq.ParquetFile(path)
    assert all(f.schema.column(j).max_definition_level == 0 for j in range(f.metadata.num_columns))
    assert not any(field.nullable for field in f.schema_arrow)
    meta = f.metadata.row_group(0)
    stats = {meta.column(j).path_in_schema: meta.column(j).statistics for j in range(meta.num_columns)}
    assert stats["model"].has_min_max and stats["model"].min == "llama-3.1-70b"
    assert stats["batch"].has_min_max and stats["batch"].min == 1.0
    got, mem = f.read(), sweep(**kw)
    tpot = got.column("tpot_s").to_numpy()
    assert got.column("tpot_s").null_count == 0 and np.isnan(tpot).sum() == (~np.asarray(mem["fits"])).sum() > 0
    np.testing.assert_array_equal(tpot, mem["tpot_s"])


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_a_failed_write_leaves_no_file_and_raises(tmp_path, monkeypatch, suffix, cpus):
    """Chunks are written on a background thread while the next is evaluated (two CPUs or more), or in turn
    (one): a write that fails stops the sweep with its error, and neither the file nor a temporary is left."""
    if suffix == "parquet":
        pytest.importorskip("pyarrow")
    from costmodel.sweeps import sweep as S

    monkeypatch.setattr(S, "_cpus", lambda: cpus)

    sink = S._ParquetSink if suffix == "parquet" else S._CsvSink
    real, calls = sink.write, []

    def failing(self, result):
        calls.append(len(result))
        if len(calls) == 2:
            raise OSError("disk full")
        real(self, result)

    monkeypatch.setattr(sink, "write", failing)
    path = tmp_path / f"s.{suffix}"
    with pytest.raises(OSError, match="disk full"):
        sweep_to_file(str(path), chunk=5, models=["llama-3.1-8b"], hw=["h100", "l4"], fmt=["fp8", "bf16"],
                      batch=[1, 4, 16])
    assert len(calls) == 2 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("cpus", [1, 2])
def test_streamed_chunks_arrive_in_order(tmp_path, monkeypatch, cpus):
    """Either writer (a background thread, or in turn on one CPU) keeps the chunks' order: the file equals
    the in-memory sweep row by row."""
    pytest.importorskip("pyarrow")
    from costmodel.sweeps import sweep as S

    monkeypatch.setattr(S, "_cpus", lambda: cpus)
    kw = dict(models=["llama-3.1-8b", "qwen2.5-7b"], hw=["h100", "l4"], fmt=["fp8", "bf16"], batch=[1, 4, 16, "max"],
              prompt=[128, 1024], gen=[16, 256])
    sweep_to_file(str(tmp_path / "s.parquet"), chunk=9, **kw)
    got, mem = read_table(str(tmp_path / "s.parquet")), sweep(**kw)
    for k in ("tpot_s", "ttft_s", "batch", "prompt", "gen"):
        np.testing.assert_array_equal(got[k], mem[k], err_msg=k)
    assert list(got["model"]) == list(mem["model"])


def test_input_columns_read_from_the_axes_equal_the_evaluated_ones():
    """A sweep's index and input columns (grid.DERIVED) are computed from the axes when read: the values,
    types and column order of a chunk that evaluates them."""
    from costmodel.sweeps.grid import DERIVED, Tables, chunks, evaluate_chunk, make_axes
    from costmodel.sweeps.sweep import SweepResult

    kw = dict(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["fp8", "bf16"], batch=[1, "max"],
              tp=[1, 2], prompt=[128, 1024], gen=[16], context=[0, 500], layouts=["tp", "ep"])
    ax = make_axes(**kw)
    tab = Tables(ax)
    hidden = {"im", "ih", "if", "ik", "ie", "reason_code"}
    for idx in chunks(ax.size, 13):
        evaluated = evaluate_chunk(tab, idx, task="mmlu")
        full = SweepResult(ax, evaluated, tab.engine_names)
        lazy = SweepResult(ax, evaluate_chunk(tab, idx, task="mmlu", inputs=False), tab.engine_names, int(idx[0]))
        assert not set(DERIVED) & set(lazy.cols)
        # the order evaluate_chunk writes them in, the accuracy columns last
        assert lazy.columns == (["model", "hardware", "format", "kv_format", "engine"]
                                + [k for k in evaluated if k not in hidden] + ["reason"])
        assert lazy.columns[-3:] == ["accuracy", "accuracy_recovery", "reason"]
        for k in full.columns:
            a, b = full[k], lazy[k]
            assert a.dtype == b.dtype, k
            np.testing.assert_array_equal(a, b, err_msg=k)


def test_each_input_column_is_computed_alone_from_the_axes_it_reads():
    """grid.derived_column: derived_columns' values and types, one column at a time, from a range of flat indices,
    their array, or indices out of order; a sweep's result computes the column read alone."""
    from costmodel.sweeps.grid import DERIVED, derived_column, derived_columns, make_axes

    ax = make_axes(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l4"], fmt=["fp8", "bf16"], batch=[1, "max"],
                   tp=[1, 2], prompt=[128, 1024], gen=[16], context=[0, 500], layouts=["tp", "ep"])
    for flat in (np.arange(ax.size), np.arange(7, ax.size - 5), np.random.default_rng(1).permutation(ax.size)[:50]):
        every = derived_columns(ax, flat)
        for k in DERIVED:
            for indices in (flat, range(int(flat[0]), int(flat[0]) + len(flat))) if np.all(np.diff(flat) == 1) else (flat,):
                got = derived_column(ax, indices, k)
                assert got.dtype == every[k].dtype and got.tobytes() == every[k].tobytes(), k
    r = sweep(models=["llama-3.1-8b"], hw=["h100", "l4"], batch=[1, 8], prompt=[128, 1024])
    r["prompt"]
    assert set(DERIVED) & set(r.cols) == {"prompt"}


def test_a_chunk_writes_its_columns_into_the_arrays_given():
    """evaluate_chunk(into=...) writes each column it is given an array for there and returns that array (a
    sweep's result columns at the chunk's rows: no second copy); the values and types of a chunk without."""
    from costmodel.sweeps.grid import Tables, evaluate_chunk, make_axes

    ax = make_axes(models=["llama-3.1-8b", "bert-base", "llama-3.1-70b"], hw=["h100", "l4"], fmt=["fp8", "bf16"], batch=[1, "max"],
                   tp=[1, 2], prompt=[128, 1024], gen=[16], context=[0, 500])
    tab = Tables(ax)
    idx = np.arange(3, ax.size - 2, dtype=np.int64)
    plain = evaluate_chunk(tab, idx, inputs=False)
    into = {k: np.full(len(idx), 7, dtype=v.dtype) for k, v in plain.items() if k not in ("tpot_s", "valid")}
    got = evaluate_chunk(tab, idx, inputs=False, into=into)
    assert list(got) == list(plain)
    for k, v in plain.items():
        assert got[k].dtype == v.dtype, k
        np.testing.assert_array_equal(got[k], v, err_msg=k)
        assert (got[k] is into.get(k)) == (k in into), k
    assert {3, 0} <= set(np.unique(plain["reason_code"]).tolist())  # some do not fit, some run


def test_the_writer_follows_the_cpus_the_process_may_use(monkeypatch):
    """A background thread given two CPUs or more; on one, each chunk written in turn, at once (a failure
    raises from submit, before another chunk is evaluated)."""
    from concurrent.futures import ThreadPoolExecutor

    from costmodel.sweeps import sweep as S

    monkeypatch.setattr(S, "_cpus", lambda: 2)
    with S._writer() as w:
        assert isinstance(w, ThreadPoolExecutor)
    monkeypatch.setattr(S, "_cpus", lambda: 1)
    calls = []
    with S._writer() as w:
        assert isinstance(w, S._InTurn)
        done = w.submit(lambda n: calls.append(n) or n + 1, 41)
        assert calls == [41] and done.done() and done.result() == 42
        with pytest.raises(OSError, match="disk full"):
            w.submit(lambda: (_ for _ in ()).throw(OSError("disk full")))
    monkeypatch.undo()
    assert 1 <= S._cpus() <= (os.cpu_count() or 1)


def test_a_csv_leaves_missing_metrics_empty_and_reads_them_back_as_nan(tmp_path):
    """A configuration that does not fit or cannot run has no metrics: empty CSV cells (never the text nan),
    read back as NaN, as in memory."""
    import csv

    kw = dict(models=["llama-3.1-405b", "llama-3.1-8b"], hw=["l4", "h100"], batch=[1, "max"], tp=[1, 3])
    path = tmp_path / "s.csv"
    sweep_to_file(str(path), **kw)
    text = path.read_text()
    assert "nan" not in text
    rows = list(csv.DictReader(text.splitlines()))
    missing = [r for r in rows if r["fits"] == "False"]
    assert missing and all(r["tpot_s"] == "" and r["ttft_s"] == "" for r in missing)
    back, mem = read_table(str(path)), sweep(**kw)
    for k in ("tpot_s", "ttft_s", "usd_per_million_tokens", "max_batch"):
        np.testing.assert_array_equal(back[k], mem[k], err_msg=k)  # NaN where memory has NaN
    assert np.isnan(back["tpot_s"]).sum() == len(missing)


@pytest.mark.parametrize("dtype", [np.float64, np.bool_, np.int8, np.int32])
@pytest.mark.parametrize("n", [0, 1, 65_537, (1 << 22) + 3])
def test_result_columns_are_writable_arrays_of_their_own_memory(dtype, n):
    """sweep._column: n values of `dtype`, writable, each column its own memory (writing one leaves
    another as it was), on Linux mapped on its own from 4 MiB."""
    import sys

    from costmodel.sweeps.sweep import HUGE_FROM, _column

    a, b = _column(n, dtype), _column(n, dtype)
    assert a.shape == (n,) and a.dtype == np.dtype(dtype) and a.flags.writeable and a.flags.c_contiguous
    a[:] = np.arange(n).astype(dtype)
    b[:] = 0
    assert np.array_equal(a, np.arange(n).astype(dtype)) and not b.any()
    if n:
        assert not np.shares_memory(a, b)
        assert a.ctypes.data % 8 == 0  # aligned for any of the sweep's types
    mapped = isinstance(a.base, memoryview) and isinstance(a.base.obj, mmap.mmap)
    assert mapped == (a.nbytes >= HUGE_FROM and sys.platform.startswith("linux"))


@pytest.mark.skipif(not hasattr(mmap, "MAP_POPULATE"), reason="MAP_POPULATE: Linux")
def test_a_mapped_column_is_backed_before_the_sweep_writes_it():
    """A mapped column comes populated (MAP_POPULATE): writing its 64 MiB then takes well under one page fault
    per 4 KiB page (16,384 of them), where a mapping backed on first write takes at least one each."""
    import resource

    from costmodel.sweeps.sweep import _column

    faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt  # noqa: E731
    a = _column(1 << 23, np.float64)
    before = faults()
    a[:] = 1.0
    assert faults() - before < 1024
    plain = np.frombuffer(mmap.mmap(-1, 1 << 26, flags=mmap.MAP_PRIVATE), dtype=np.float64)
    before = faults()
    plain[:] = 1.0
    assert faults() - before >= (1 << 26) // resource.getpagesize() // 512  # huge pages at most: 32 faults


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_process_writes_into_its_own_copy_of_a_result_column():
    """A mapped column is private, as numpy's arrays are: a child forked after the sweep that writes into it
    leaves the parent's values as they were."""
    from costmodel.sweeps.sweep import HUGE_FROM, _column

    a = _column(HUGE_FROM // 8, np.float64)
    a[:] = 1.0
    pid = os.fork()
    if pid == 0:  # the child
        a[:] = 42.0
        os._exit(0 if a[0] == 42.0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert (a == 1.0).all()


def test_a_sweep_gives_the_same_bits_in_mapped_columns_and_in_numpys(monkeypatch):
    """sweep() writes its result into _column's arrays: with every column mapped (HUGE_FROM 1 byte) and
    with none (HUGE_FROM beyond any size), every column has the same bits."""
    import sys

    from costmodel.sweeps import sweep as S

    kw = dict(models=["llama-3.1-8b", "mixtral-8x7b"], hw=["h100", "l40s"], fmt=["bf16", "fp8"],
              batch=[1, 16, "max"], tp=[1, 2], prompt=[128, 4096], gen=[64, 1024])
    got = {}
    for at in (1, 1 << 62):
        monkeypatch.setattr(S, "HUGE_FROM", at)
        got[at] = sweep(chunk=37, **kw)
    mapped, plain = got[1].cols, got[1 << 62].cols
    assert all(isinstance(v.base, memoryview) for v in mapped.values()) == sys.platform.startswith("linux")
    assert not any(isinstance(v.base, memoryview) for v in plain.values())
    assert mapped.keys() == plain.keys()
    for k in mapped:
        assert mapped[k].dtype == plain[k].dtype and mapped[k].tobytes() == plain[k].tobytes(), k


def test_a_refused_mapping_falls_back_to_numpy(monkeypatch):
    """Where the system refuses an anonymous mapping, a result column is numpy's array (where memory is short,
    numpy's MemoryError then, as before the mapping, never the mapping's OSError)."""
    from costmodel.sweeps import sweep as S

    def refuse(*a, **k):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(mmap, "mmap", refuse)
    a = S._column(1 << 20, np.float64)
    assert a.shape == (1 << 20,) and a.dtype == np.float64 and not isinstance(a.base, memoryview)
    a[:] = 1.5
    assert a.sum() == 1.5 * (1 << 20)


def test_joined_parts_equal_numpys_concatenation(monkeypatch):
    """sweep._joined (a distributed sweep's parts into one column) equals np.concatenate, value, type and bits,
    mapped (HUGE_FROM 1 byte) or not."""
    from costmodel.sweeps import sweep as S

    parts = [np.array([1.5, -0.0, np.nan]), np.array([], dtype=float), np.array([np.inf, 2.0])]
    for at in (1, 1 << 62):
        monkeypatch.setattr(S, "HUGE_FROM", at)
        for ps in (parts, [np.array([1, 2], dtype=np.int8), np.array([3], dtype=np.int8)],
                   [np.array([True]), np.array([False, True])]):
            got, want = S._joined(ps), np.concatenate(ps)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_repeated_entries_count_once():
    # a repeated entry, or two names of one spec, repeated configurations (8 equal rows for 2 x 2 x 2 entries)
    r = sweep(models=["llama-3.1-8b", "llama-3.1-8b"], hw=["h100", "h100-sxm", "l40s"], fmt=["bf16", "bf16"],
              kv_fmt=["default", None, "fp8"], batch=[1, "max", 1], tp=[1, 1], prompt=[512, 512], gen=[128, 64, 128])
    cols = r.to_dict()
    assert len(r) == 1 * 2 * 1 * 2 * 2 * 1 * 1 * 2
    assert list(dict.fromkeys(cols["hardware"])) == ["h100-sxm", "l40s"]  # the list's order, each device once
    keys = list(zip(*(cols[k] for k in ("hardware", "kv_format", "batch_requested", "gen"))))
    assert len(set(keys)) == len(keys)



def test_both_lengths_zero_is_refused_by_the_cli(run_cli):
    # the library keeps the row (zero work; the engine's edge cases are tested on such rows), the CLI refuses it
    assert len(sweep(prompt=[0, 512], gen=[128, 0])) == 4
    for cmd in ("sweep", "pareto"):
        code, _, err = run_cli(cmd, "--prompt", "0,512", "--gen", "128,0")
        assert code == 2 and "--prompt 0,512 --gen 128,0: both list 0" in err
    code, _, err = run_cli("sweep", "--prompt", "0,512", "--gen", "128")  # as estimate: nothing before the first token
    assert code == 2 and "--prompt 0,512: a generated token needs at least one token before it" in err
    assert run_cli("sweep", "--prompt", "512", "--gen", "128,0")[0] == 0  # a 0 in --gen alone has work
