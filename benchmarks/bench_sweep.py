"""Benchmark sweeps and Pareto filtering. Prints rates, peak memory and times; asserts nothing.

    python benchmarks/bench_sweep.py rate      [--configs 1000000] [--chunk N]  # costmodel.sweeps.sweep, in memory
                                     [--rounds 1] [--packed on|off]    # sweeps in turn; batch-free columns packed
                                     [--floor 1] [--floor-with mapped|numpy]  # writing its result alone first
    python benchmarks/bench_sweep.py rate --fast both                # numpy against [fast], one process
    python benchmarks/bench_sweep.py chunks    [--configs 11000000]    # chunks of 2^16, 2^17, 2^18, one process
    python benchmarks/bench_sweep.py heap      [--configs 11000000] [--chunk N]  # glibc's heap after a sweep
    python benchmarks/bench_sweep.py stream    [--configs 100000000] [--out /tmp/sweep.parquet] [--fast on|off]
    python benchmarks/bench_sweep.py stream --writer both            # written in turn against a background thread
    python benchmarks/bench_sweep.py pareto    [--rows 1000000] [--objectives 3]  # with and without pivots
    python benchmarks/bench_sweep.py loads                             # served at 8 concurrencies
    python benchmarks/bench_sweep.py write     [--configs 300000]      # the writers alone, rows/s
    python benchmarks/bench_sweep.py read      [--configs 100000]      # a CSV read back, against every row at once
    python benchmarks/bench_sweep.py kernels                           # the [fast] kernels of one chunk, and rows_of
    python benchmarks/bench_sweep.py stages    [--configs 11000000]    # where a warm sweep's time goes, by stage
"""
from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np


# the types of an in-memory sweep's result columns held per configuration: grid.METRICS and grid.MEMORY as float64
# but the batch and the three that sweeps/batch_free.py packs (held once per batch-free code: 0.6 MB a 10^7 grid);
# fits, valid and reason_code one byte each (83 bytes a configuration; 115 with every column, `--packed off`)
RESULT_TYPES = (np.float64,) * 10 + (np.bool_, np.bool_, np.int8)


def axes_for(n: int) -> dict:
    """A cartesian product of about n configurations over real catalogue entries."""
    models = ["llama-3.1-8b", "llama-3.1-70b", "qwen2.5-7b", "mixtral-8x7b", "gemma-2-9b", "deepseek-v3"]
    hw = ["h100", "h200", "b200", "a100", "l40s", "mi300x"]
    fmt = ["bf16", "fp8", "w4a16", "nvfp4"]
    base = len(models) * len(hw) * len(fmt) * 4  # x 4 tp values
    per = max(1, round((n / base) ** (1 / 3)))
    return dict(models=models, hw=hw, fmt=fmt, tp=[1, 2, 4, 8],
                batch=list(np.unique(np.geomspace(1, 1024, per).astype(int))),
                prompt=list(np.unique(np.geomspace(16, 32768, per).astype(int))),
                gen=list(np.unique(np.geomspace(16, 8192, per).astype(int))))


# the stages `stages` times: (label, module under costmodel, function), each timed wherever it is called from
STAGES = (("a chunk's evaluation", "sweeps.grid", "evaluate_chunk"),
          ("the result's pages", "sweeps.sweep", "_column"),
          ("the chunk's frame", "sweeps.grid", "_compiled_frame"),
          ("the phases' lowering", "engine.phases", "lower_phases"),
          ("  operators.lower", "engine.phases", "lower"),
          ("distinct-row searches (all)", "engine.fast", "distinct_rows"),
          ("the decode attention's arguments", "engine.fast", "attention_arguments"),
          ("the decode attention's and metrics' pass", "engine.fast", "decode_metrics"),
          ("the batches' memory", "engine.fast", "memory"),
          ("memory's batch-free terms", "engine.evaluate", "_shared_per_sequence"),
          ("the pool", "engine.evaluate", "_shared_pool"),
          ("the phases' sums", "engine.fast", "phase_sums"))


def stages(axes: dict, rounds: int = 3) -> None:
    """Where a warm in-memory sweep's time goes: timers around the functions of STAGES (each replaced, in every
    module that holds it, by one that adds its wall time), the last of `rounds` sweeps in one process."""
    import importlib
    import sys

    from costmodel.sweeps.sweep import sweep

    spent: dict = {}
    for label, module, name in STAGES:
        mod = importlib.import_module("costmodel." + module)
        real = getattr(mod, name)

        def timed(*args, _real=real, _label=label, **kw):
            t = time.perf_counter()
            try:
                return _real(*args, **kw)
            finally:
                spent[_label] = spent.get(_label, 0.0) + time.perf_counter() - t

        for held in [m for k, m in list(sys.modules.items()) if k.startswith("costmodel")]:
            for attr, value in list(vars(held).items()):
                if value is real:
                    setattr(held, attr, timed)
    for r in range(rounds):
        spent.clear()
        t = time.perf_counter()
        res = sweep(**axes)
        dt = time.perf_counter() - t
        n = len(res)
        del res
    print(f"sweep in memory, round {rounds} of {rounds}: {n:,} configurations in {dt:.2f} s = {n / dt:,.0f}/s; "
          "by stage (s; the indented one is inside the stage above it, the first holds all but the result's pages):")
    for label, _, _ in STAGES:
        print(f"  {label:28s} {spent.get(label, 0.0):6.3f}")


# a sweep's objectives, as `costmodel pareto --objectives` takes them
SWEEP_OBJECTIVES = ("min:usd_per_million_tokens,min:tpot_s",
                    "min:usd_per_million_tokens,min:tpot_s,max:throughput_tokens_per_s",
                    "min:ttft_s,min:tpot_s,min:energy_j_per_token",
                    "min:usd_per_million_tokens,min:e2e_latency_s,min:total_bytes,max:decode_tokens_per_s")


def pareto(rows: int, objectives: int, rounds: int = 3) -> None:
    """Pareto filters with the pivots' pass (pareto._pivot_filter) and without it (the sorted blocks alone), the
    best of `rounds` each: uniform random rows, then the 912k sweep's result under SWEEP_OBJECTIVES."""
    from costmodel.sweeps.pareto import non_dominated, pareto_front
    from costmodel.sweeps.sweep import sweep

    def best(fn, *args, **kw) -> tuple:
        times, mask = [], None
        for _ in range(rounds):
            t = time.perf_counter()
            mask = fn(*args, **kw)
            times.append(time.perf_counter() - t)
        return min(times), mask

    v = np.random.default_rng(0).random((rows, objectives))
    (on, m1), (off, m0) = best(non_dominated, v), best(non_dominated, v, pivots=False)
    print(f"Pareto filter, {rows:,} uniform rows x {objectives} objectives: {on:.3f} s with the pivots, {off:.3f} s "
          f"without ({off / on:.1f}x); {int(m1.sum())} on the frontier, the same rows: {bool(np.array_equal(m0, m1))}")
    r = sweep(**axes_for(1_000_000))
    for objs in SWEEP_OBJECTIVES:
        (on, m1), (off, m0) = best(pareto_front, r, objs), best(pareto_front, r, objs, pivots=False)
        print(f"  the {len(r):,}-row sweep, {objs}: {on:.3f} s against {off:.3f} s ({off / on:.1f}x); "
              f"{int(m1.sum())} on the frontier, the same rows: {bool(np.array_equal(m0, m1))}")


def _every_row_at_once(path: str) -> dict:
    """A sweep's CSV as read before sweeps/csv_table.py (kept as the baseline): every row at once as Python strings,
    then each column as floats where every cell is one or empty, else text."""
    import csv
    import io
    import math

    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(io.StringIO(f.read(), newline="")))
    header, body = rows[0], rows[1:]
    cols = {}
    for j, k in enumerate(header):
        vals = [r[j] for r in body]
        try:
            cols[k] = np.array([float(v) if v not in ("", "nan") else math.nan for v in vals])
        except ValueError:
            cols[k] = np.array(vals)
    return cols


def read_back(configs: int) -> None:
    """A streamed sweep's CSV read back by read_table (a chunk of rows at a time) and by _every_row_at_once: each
    one's time, its peak of traced memory (numpy's arrays and Python's objects, in a second read), and whether the
    columns agree."""
    import tempfile
    import tracemalloc

    from costmodel.sweeps.sweep import read_table, sweep_to_file

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sweep.csv")
        n = sweep_to_file(path, force=True, **axes_for(configs))
        size = os.path.getsize(path)
        got = {}
        for label, fn in (("read_table", read_table), ("every row at once", _every_row_at_once)):
            t = time.perf_counter()
            got[label] = fn(path)
            dt = time.perf_counter() - t
            tracemalloc.start()  # a second read for the memory: tracing slows Python's allocations several-fold
            fn(path)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"{label}: {n:,} rows, {size / 1e6:.0f} MB of CSV, in {dt:.2f} s ({n / dt:,.0f} rows/s), peak "
                  f"{peak / 1e6:,.0f} MB traced")
        a, b = got.values()
        same = a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and
                                            np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f") for k in a)
        print(f"the same columns: {same}")


def both(axes: dict, rounds: int = 3) -> None:
    """In-memory sweep rates with and without the [fast] kernels, interleaved round by round in one
    process after a warm-up of each (numba's import and kernel loading excluded: ~1.4 s a process)."""
    import statistics

    from costmodel.engine.fast import enabled
    from costmodel.sweeps.sweep import sweep

    if not enabled():
        print("[fast] not installed (pip install 'costmodel[fast]')")
        return
    rates: dict = {"0": [], "1": []}
    for flag in rates:  # warm-up
        os.environ["COSTMODEL_FAST"] = flag
        sweep(**axes_for(20_000))
    for _ in range(rounds):
        for flag in rates:
            os.environ["COSTMODEL_FAST"] = flag
            t = time.perf_counter()
            n = len(sweep(**axes))
            rates[flag].append(n / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"sweep in memory, {n:,} configurations, {rounds} interleaved rounds in one process: numpy "
          f"{', '.join(f'{r:,.0f}' for r in rates['0'])}/s; [fast] {', '.join(f'{r:,.0f}' for r in rates['1'])}/s; "
          f"median ratio {med['1'] / med['0']:.2f}")


def chunk_sizes(axes: dict, rounds: int = 3, sizes=(1 << 16, 1 << 17, 1 << 18)) -> None:
    """In-memory sweep rates in chunks of each of `sizes`, interleaved round by round in one process after a
    warm-up (the default chunk's), each against the first size's rate in its round."""
    from costmodel.sweeps.grid import chunk_size, make_axes
    from costmodel.sweeps.sweep import sweep

    n = make_axes(**axes).size
    sweep(**axes)
    rates: dict = {c: [] for c in sizes}
    for _ in range(rounds):
        for c in sizes:
            t = time.perf_counter()
            sweep(chunk=c, **axes)
            rates[c].append(n / (time.perf_counter() - t))
    print(f"sweep in memory, {n:,} configurations, {rounds} interleaved rounds in one process (default chunk "
          f"{chunk_size(n):,}):")
    for c, r in rates.items():
        ratios = ", ".join(f"{x / y:.2f}" for x, y in zip(r, rates[sizes[0]]))
        print(f"  chunks of {c:>9,}: {', '.join(f'{x:,.0f}' for x in r)}/s; against {sizes[0]:,}: {ratios}")


def heap_after(axes: dict, chunk: int | None) -> None:
    """glibc's heap (mallinfo2) after an in-memory sweep in chunks of `chunk`: what it holds in all, in use and free
    (the chunks' temporaries freed; the result's columns are mappings of their own), and the free bytes per row of a
    chunk, which sweeps/heap.ROW_BYTES bounds. The thresholds are raised past any chunk first: nothing is trimmed."""
    import ctypes
    import platform

    from costmodel.sweeps import heap
    from costmodel.sweeps.grid import chunk_size, make_axes
    from costmodel.sweeps.sweep import sweep

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        print("mallinfo2 is glibc's")
        return

    class Info(ctypes.Structure):
        _fields_ = [(k, ctypes.c_size_t) for k in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                   "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Info
    heap.retain(1 << 20)  # a trim threshold of 2 GiB: the heap keeps what the largest chunk freed
    n = make_axes(**axes).size
    chunk = chunk_size(n, chunk)
    sweep(chunk=chunk, **axes)
    info, mib = libc.mallinfo2(), 1 << 20
    print(f"after a sweep of {n:,} configurations in chunks of {chunk:,}: heap {info.arena / mib:.0f} MiB, in use "
          f"{info.uordblks / mib:.0f} MiB, free {info.fordblks / mib:.0f} MiB ({info.fordblks / chunk:,.0f} bytes a "
          f"row of a chunk; heap.ROW_BYTES {heap.ROW_BYTES:,})")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("rate", "chunks", "heap", "stream", "pareto", "loads", "write", "kernels", "stages",
                                    "read"))
    p.add_argument("--configs", type=int, default=None)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--objectives", type=int, default=3)
    p.add_argument("--out", default="/tmp/costmodel-bench.parquet")
    p.add_argument("--floor", type=int, choices=(0, 1), default=0,
                   help="rate (not --fast both): first write a result of the sweep's size into fresh memory, twice, as a baseline (its "
                        "pages, freed, are then the sweep's: 1 warms them for the sweep)")
    p.add_argument("--floor-with", choices=("mapped", "numpy"), default="mapped",
                   help="rate --floor 1: the baseline's columns allocated as the sweep allocates them, or by np.empty (huge pages)")
    p.add_argument("--chunk", type=int, default=None, help="configurations per engine call (default: the sweeps')")
    p.add_argument("--fast", choices=("auto", "on", "off", "both"), default="auto",
                   help="the [fast] kernels: as a sweep decides (auto), at any size (on), never (off); "
                        "rate --fast both: numpy and the kernels in interleaved rounds in one process")
    p.add_argument("--packed", choices=("on", "off"), default="on",
                   help="rate: the batch-free columns held once per code as sweeps do (on), or per configuration (off)")
    p.add_argument("--rounds", type=int, default=1, help="rate: sweeps in turn in one process")
    p.add_argument("--writer", choices=("auto", "thread", "turn", "both"), default="auto",
                   help="stream: the chunks written on a background thread, in turn on the evaluating thread, as "
                        "the sweep decides from the CPUs it may use (auto), or thread and turn in interleaved rounds")
    a = p.parse_args()
    from costmodel.sweeps import grid

    if a.fast in ("on", "both"):
        grid.FAST_MIN_CONFIGS = 0
    if a.fast == "off":
        os.environ["COSTMODEL_FAST"] = "0"
    if a.what == "rate" and a.fast == "both":
        both(axes_for(a.configs or 1_000_000))
        return
    if a.what == "chunks":
        chunk_sizes(axes_for(a.configs or 11_000_000))
        return
    if a.what == "heap":
        heap_after(axes_for(a.configs or 11_000_000), a.chunk)
        return
    if a.what == "pareto":
        pareto(a.rows, a.objectives)
        return
    if a.what == "read":
        read_back(a.configs or 100_000)
        return
    if a.what == "loads":
        loads()
        return
    if a.what == "write":
        writers(a.configs or 300_000)
        return
    if a.what == "kernels":
        kernels()
        return
    if a.what == "stages":
        stages(axes_for(a.configs or 11_000_000))
        return
    from costmodel.sweeps.grid import chunk_size, make_axes
    from costmodel.sweeps.sweep import sweep, sweep_to_file

    axes = axes_for(a.configs or (1_000_000 if a.what == "rate" else 100_000_000))
    n = make_axes(**axes).size
    # what sweep() and sweep_to_file() pick by themselves: an in-memory sweep timed by [fast] takes larger chunks
    chunk = chunk_size(n, a.chunk, fast=a.what == "rate" and grid.timed_fast(make_axes(**axes)))
    t = time.perf_counter()
    if a.what == "rate":
        first, nbytes = result_floor(n, chunk, a.floor_with) if a.floor else (0.0, 0)
        floor, _ = result_floor(n, chunk, a.floor_with) if a.floor else (0.0, 0)
        if a.packed == "off":
            from costmodel.sweeps import batch_free

            batch_free.packing = lambda *args: None  # every column held per configuration
        if a.rounds < 1:
            p.error(f"--rounds {a.rounds}: expected 1 or more")
        for k in range(a.rounds):  # each result freed before the next sweep
            r = None
            t = time.perf_counter()
            r = sweep(chunk=a.chunk, **axes)
            dt = time.perf_counter() - t
            print(f"sweep in memory, chunks of {chunk:,}{', round ' + str(k + 1) if a.rounds > 1 else ''}: {n:,} "
                  f"configurations in {dt:.2f} s = {n / dt:,.0f} configurations/s on one core; "
                  f"{int(r['fits'].sum()):,} fit; peak RSS {peak_rss_gb():.2f} GB; packed {r.packed is not None}")
        t = time.perf_counter()
        r["batch_requested"]
        t_in = time.perf_counter()
        for k in ("batch", "max_batch", "weights_bytes", "capacity_bytes"):
            r[k]
        print(f"  then read: the input column batch_requested (computed from the axes) {t_in - t:.2f} s; the batch "
              f"and the packed columns {time.perf_counter() - t_in:.2f} s ({'unpacked' if r.packed else 'held'})")
        if a.floor:
            print(f"  baseline in the same run: writing a result of the sweep's column types ({nbytes / 1e9:.2f} GB) "
                  f"chunk by chunk into memory newly allocated ({a.floor_with}), nothing evaluated: {first:.2f} s the first time, {floor:.2f} s "
                  f"the second (its pages freed just before, as the sweep's are: {floor / dt:.0%} of the sweep)")
    elif a.writer == "both":
        writers_compared(a.out, chunk, axes)
    else:
        _use_writer(a.writer)
        rows = sweep_to_file(a.out, chunk=chunk, force=True, **axes)
        dt = time.perf_counter() - t
        print(f"sweep streamed to {a.out}, chunks of {chunk:,}: {rows:,} configurations in {dt:.0f} s = {rows / dt:,.0f}/s; "
              f"peak RSS {peak_rss_gb():.2f} GB")


def result_floor(n: int, chunk: int, alloc: str = "mapped") -> tuple[float, int]:
    """(seconds, bytes) to write an in-memory sweep's result columns (RESULT_TYPES) for n configurations into
    newly allocated memory, chunk by chunk from one chunk's values, then free them: what the sweep pays for
    its result alone. Freed just before, its pages are the ones the next allocation gets. `alloc`: the
    columns allocated as the sweep allocates them (`mapped`: sweep._column), or by np.empty (which asks for
    transparent huge pages from 4 MiB)."""
    from costmodel.sweeps.sweep import _column

    new = _column if alloc == "mapped" else (lambda k, t: np.empty(k, dtype=t))
    src = [np.random.default_rng(0).random(chunk).astype(t) for t in RESULT_TYPES]
    t = time.perf_counter()
    cols = [new(n, t) for t in RESULT_TYPES]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        for c, v in zip(cols, src):
            c[start:stop] = v[:stop - start]
    dt = time.perf_counter() - t
    nbytes = sum(c.nbytes for c in cols)
    del cols
    return dt, nbytes


def _use_writer(kind: str) -> None:
    """Make sweep_to_file write its chunks on a background thread or in turn, through the CPUs it believes it
    may use (sweep._cpus: two, or one); `auto` leaves its own count."""
    from costmodel.sweeps import sweep as S

    if kind != "auto":
        S._cpus = lambda: 2 if kind == "thread" else 1


def writers_compared(out: str, chunk: int, axes: dict, rounds: int = 2) -> None:
    """A streamed sweep with its chunks written on a background thread and in turn on the evaluating thread,
    interleaved round by round in one process (numba's load, where it applies, paid before the first)."""
    import statistics

    from costmodel.sweeps import grid
    from costmodel.sweeps import sweep as S

    cpus = S._cpus()  # before _use_writer sets it
    at, grid.FAST_MIN_CONFIGS = grid.FAST_MIN_CONFIGS, 0
    S.sweep(**axes_for(20_000))  # warm-up: imports, and the [fast] kernels where installed
    grid.FAST_MIN_CONFIGS = at
    rates: dict = {"thread": [], "turn": []}
    for _ in range(rounds):
        for kind in rates:
            _use_writer(kind)
            t = time.perf_counter()
            rows = S.sweep_to_file(out, chunk=chunk, force=True, **axes)
            rates[kind].append(rows / (time.perf_counter() - t))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"sweep streamed to {out}, {rows:,} configurations, {rounds} interleaved rounds on {cpus} CPU(s): "
          f"background thread {', '.join(f'{r:,.0f}' for r in rates['thread'])}/s; in turn "
          f"{', '.join(f'{r:,.0f}' for r in rates['turn'])}/s; median ratio {med['turn'] / med['thread']:.2f} "
          f"(the sweep writes in turn {'never' if cpus >= 2 else 'here'}: it may use {cpus} CPU(s))")


def loads() -> None:
    """Load sweep (one replica evaluation per configuration, then the queueing model per load) next to
    the static sweep of the same configurations at the same number of batches, measured in this run."""
    from costmodel.sweeps.loads import load_sweep
    from costmodel.sweeps.sweep import sweep

    cfg = dict(models=["llama-3.1-8b", "qwen2.5-7b", "llama-3.1-70b"], hw=["h100", "a100", "l40s"], fmt=["bf16", "fp8"])
    levels = [1, 2, 4, 8, 16, 32, 64, 128]
    t = time.perf_counter()
    r = load_sweep(cfg["models"], cfg["hw"], cfg["fmt"], concurrency=levels)
    dt = time.perf_counter() - t
    configs = len(r) // len(levels) + len(r.dropped)
    t = time.perf_counter()
    s = sweep(**cfg, batch=levels)
    ds = time.perf_counter() - t
    print(f"load sweep: {configs} configurations x {len(levels)} concurrencies = {len(r)} rows in {dt:.2f} s "
          f"({configs / dt:.1f} configurations/s, {len(r) / dt:.0f} rows/s); static sweep of the same "
          f"{len(s)} rows in {ds:.3f} s: the load sweep is {dt / ds:.0f}x slower")


def kernels(rounds: int = 30) -> None:
    """The [fast] kernels of one chunk of a 10^7 sweep (their arguments captured from the chunk's evaluation),
    ms per chunk each; its distinct-row searches against numpy's; the decode's step, metrics and masking in one
    pass (decode_pass with its metrics) against the four passes before it (decode_pass for the attention alone,
    decode_step, finish_metrics, the masking into the result columns, with the gathers to every configuration they
    read), on the same arguments; then what
    kernels.rows_of buys: a kernel reading 14 columns and writing 11 rows of one chunk's length into rows a
    multiple of 4 KiB apart (np.empty((11, n))) against rows_of's. The heap retained as a sweep retains it (sweeps/heap.py): numpy's temporaries in reused
    pages, as in a sweep."""
    import numba

    from costmodel.engine import fast
    from costmodel.sweeps import heap
    from costmodel.sweeps.grid import CHUNK, Tables, evaluate_chunk, make_axes

    heap.retain(CHUNK)  # as a sweep in chunks of CHUNK sets it

    k = fast._kernels()
    if k is None:
        print("[fast] not installed (pip install 'costmodel[fast]')")
        return
    names = ("chunk_frame", "op_sums", "op_fields", "decode_pass", "batch_memory", "outcome",
             "batch_free", "pools", "code_groups", "steps", "distinct_rows")
    calls: dict = {n: [] for n in names}
    real = {n: getattr(k, n) for n in names}
    for n in names:
        setattr(k, n, lambda *args, n=n: calls[n].append(args) or real[n](*args))
    try:
        tab = Tables(make_axes(**axes_for(10_000_000)))
        evaluate_chunk(tab, np.arange(40 * CHUNK, 41 * CHUNK, dtype=np.int64))  # 9.3M: the kernels time it
    finally:
        for n in names:
            setattr(k, n, real[n])
    if not calls["decode_pass"]:
        print("the chunk was not timed by the kernels (COSTMODEL_FAST=0?)")
        return

    def ms(fn, arg_lists) -> float:
        for args in arg_lists:
            fn(*args)
        t = time.perf_counter()
        for _ in range(rounds):
            for args in arg_lists:
                fn(*args)
        return (time.perf_counter() - t) / rounds * 1e3

    print(f"one chunk of {CHUNK:,} configurations, ms per chunk (mean of {rounds} rounds): "
          + "; ".join(f"{n} {ms(real[n], calls[n]):.2f} ({len(calls[n])} calls)" for n in names))
    args = calls["decode_pass"][0]
    attention, keep, metrics = args[:-2], args[-2], args[-1]
    (overlap, d_rest, d_comm, d_busy, d_total, d_of, p_of, pre_total, u_pre, prompt, Bc, tp, pp, step, encoder, idle,
     tdp, price, replicas, gen, into) = metrics
    at, q_of = attention[fast._AT], attention[fast._Q_OF]
    q_inv, p_inv = q_of[at], p_of[at]

    def passes_apart():  # the attention, the decode's step, the metrics from columns gathered to every row, masked
        means = real["decode_pass"](*attention, keep, None)
        dec, u_dec = k.decode_step(means, at, q_of, overlap, d_rest, d_comm, d_busy, d_total, d_of)
        s_q = step[q_inv]
        rows = k.finish_metrics(pre_total[p_inv], s_q, dec + s_q, u_pre[p_inv], u_dec, prompt[p_inv], gen,
                                Bc[p_inv], encoder[q_inv], idle[q_inv], tdp[q_inv], tp[p_inv], pp[p_inv],
                                np.full(len(gen), replicas), price[q_inv])
        for column, i in zip(into, (0, 1, 6, 7, 8, 2, 9, 10)):  # fast.WRITTEN's rows of fast.METRICS
            column[...] = np.where(keep, rows[i], np.nan)

    print(f"the decode's attention to the chunk's metrics (8 written into their columns, NaN where not kept): "
          f"decode_pass {ms(real['decode_pass'], calls['decode_pass']):.2f} ms, decode_pass for the attention + "
          f"decode_step + finish_metrics + masking {ms(passes_apart, [()]):.2f} ms")

    from costmodel.engine.distinct import distinct

    searches = calls["distinct_rows"]  # the pool's, then the prefill's, the decode's and its attention's rows
    print("the chunk's distinct-row searches (kernel against numpy's distinct, ms; the prefill's among the rows "
          "whose metrics are written): " + "; ".join(
              f"{len(a[0]) + len(a[1])} keys of {len(a[0][0]):,} rows {ms(real['distinct_rows'], [a]):.2f} against "
              f"{ms(distinct, [(*a[0], *a[1])]):.2f}" for a in searches))  # a: (ints, floats, keep, starts)

    def two_passes(*args):  # the phases' sums as before op_sums: op_fields' four arrays, then sums over them
        skip, is_comm = args[9], args[10]
        c, m, fx, cm = real["op_fields"](*args[:9], *args[11:])
        for x in (c, m, fx, cm):
            x[skip] = 0.0
        none, empty = np.full(len(skip), -1, dtype=np.int64), np.zeros((0, 0))
        return k.sums(c, m, fx, cm, is_comm, none, empty, empty, empty, empty)

    print(f"the phases' sums at their distinct rows: op_sums {ms(real['op_sums'], calls['op_sums']):.2f} ms, "
          f"op_fields then sums {ms(two_passes, calls['op_sums']):.2f} ms")
    rng = np.random.default_rng(0)
    cols = [np.abs(rng.standard_normal(CHUNK)) + 1.0 for _ in range(14)]

    @numba.njit
    def write(out, cols):
        for j in range(out.shape[1]):
            s = 0.0
            for c in cols:
                s += c[j]
            for i in range(out.shape[0]):
                out[i, j] = s / (i + 1.0)
        return out

    typed = numba.typed.List(cols)
    aligned = ms(lambda: write(np.empty((11, CHUNK)), typed), [()])
    staggered = ms(lambda: write(k.rows_of(11, CHUNK), typed), [()])
    print(f"14 columns read, 11 rows written, {CHUNK:,} each: rows 4 KiB-aligned (np.empty) {aligned:.2f} ms, "
          f"staggered (kernels.rows_of) {staggered:.2f} ms: {aligned / staggered:.2f}x")


def writers(n: int) -> None:
    """Rows/s of the streamed writers on chunks evaluated beforehand: Parquet with text columns encoded
    from their codes (sweep.parquet_writer) and every column required, the same with the columns nullable, the
    same with pyarrow's dictionary for every column, the
    names spelled out per row and then dictionary-encoded (the writer before), and CSV against its writer before
    (every number spelled where it stands) and numpy's astype(str)."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    from costmodel.sweeps.grid import Tables, chunks, evaluate_chunk, make_axes
    from costmodel.sweeps.sweep import SweepResult, _append_csv, _arrow_table, csv_columns, parquet_writer

    ax = make_axes(**axes_for(n))
    tab = Tables(ax)
    parts = [SweepResult(ax, evaluate_chunk(tab, idx), tab.engine_names) for idx in chunks(min(ax.size, n))]
    rows = sum(len(r) for r in parts)

    def spelled(r):
        return pa.table({k: pa.array(v).dictionary_encode() if v.dtype.kind in "OU" else v
                         for k, v in r.to_dict().items()})

    def optional(r):  # the columns nullable (OPTIONAL in Parquet, with definition levels): the writer before
        t = _arrow_table(pa, r)
        return t.cast(pa.schema([fld.with_nullable(True) for fld in t.schema]))

    def parquet(make, path, every_dictionary=False):
        writer = None
        for r in parts:
            t = make(pa, r) if make is _arrow_table else make(r)
            writer = writer or (pq.ParquetWriter(path, t.schema) if every_dictionary else parquet_writer(pq, path, t.schema))
            writer.write_table(t)
        writer.close()

    with tempfile.TemporaryDirectory() as d:
        timings = {}
        for name, fn in (("codes", lambda: parquet(_arrow_table, f"{d}/a.parquet")),
                         ("optional", lambda: parquet(optional, f"{d}/o.parquet")),
                         ("every_dictionary", lambda: parquet(_arrow_table, f"{d}/d.parquet", True)),
                         ("spelled", lambda: parquet(spelled, f"{d}/b.parquet", True)),
                         ("csv", lambda: [_append_csv(f"{d}/c.csv", csv_columns(r), header=i == 0)
                                          for i, r in enumerate(parts)]),
                         ("csv_every", lambda: _csv_with(parts, f"{d}/f.csv", _every_value)),
                         ("csv_astype", lambda: _csv_with(parts, f"{d}/e.csv", lambda a: a.astype(str).tolist()))):
            fn()  # warm-up (first file, first allocations)
            best = []
            for _ in range(3):
                t = time.perf_counter()
                fn()
                best.append(time.perf_counter() - t)
            timings[name] = min(best)
    print(f"writers on {rows:,} evaluated rows: Parquet {rows / timings['codes']:,.0f} rows/s with text columns "
          f"encoded from their codes and dictionary pages for them alone, every column required, "
          f"{rows / timings['optional']:,.0f} rows/s with the columns nullable (the writer before: "
          f"{timings['optional'] / timings['codes']:.2f}x slower), {rows / timings['every_dictionary']:,.0f} "
          f"rows/s with pyarrow's default of a dictionary for every column "
          f"({timings['every_dictionary'] / timings['codes']:.1f}x slower), {rows / timings['spelled']:,.0f} rows/s "
          f"spelling the names out first as well ({timings['spelled'] / timings['codes']:.1f}x slower); CSV {rows / timings['csv']:,.0f} rows/s, "
          f"{rows / timings['csv_every']:,.0f} rows/s spelling every number where it stands (the writer before: "
          f"{timings['csv_every'] / timings['csv']:.2f}x slower), {rows / timings['csv_astype']:,.0f} rows/s "
          f"with numpy's astype(str) ({timings['csv_astype'] / timings['csv']:.1f}x slower)")


def _csv_with(parts, path, cells) -> None:
    """The CSV writer before: text columns spelled out first (to_dict), every number spelled by `cells` (in place
    of sweep._number_cells)."""
    from costmodel.sweeps import sweep as S

    fast = S._number_cells
    S._number_cells = cells
    try:
        for i, r in enumerate(parts):
            S._append_csv(path, r.to_dict(), header=i == 0)
    finally:
        S._number_cells = fast


def _every_value(a) -> list:
    """The number cells as the writer spelled them before each distinct value was spelled once: every value's
    repr where it stands (the same text)."""
    if a.dtype == np.float64:
        cells = list(map(float.__repr__, a.tolist()))
        for i in np.flatnonzero(np.isnan(a)).tolist():
            cells[i] = ""
        return cells
    return a.astype(str).tolist()


if __name__ == "__main__":
    main()
