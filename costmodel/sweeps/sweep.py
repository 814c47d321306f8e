"""Sweeps: the cartesian product of lists of models, devices, formats, engines and workloads,
evaluated by the array engine in chunks of bounded size (one code path with `estimate`).

    >>> r = costmodel.sweeps.sweep(models=["llama-3.1-8b", "llama-3.1-70b"], hw=["h100", "b200"],
    ...                     fmt=["bf16", "fp8", "nvfp4"], batch=[1, 8, "max"], tp=[1, 2, 4])
    >>> len(r), r["tpot_s"][:3], r.to_pandas()

Configurations that cannot run (tp not dividing the heads, tp without an interconnect) or do
not fit in memory stay in the result with `valid` / `fits` False and a `reason`; nothing is
dropped silently.
"""
from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np

from costmodel.engine.memory import batch_of
from costmodel.sweeps import batch_free, heap
from costmodel.sweeps.grid import (DERIVED, REASONS, Axes, SweepError, Tables, chunk_size, chunks, derived_column,
                                   evaluate_chunk, hardware_row_index, make_axes, timed_fast)


TEXT_COLUMNS = ("model", "hardware", "format", "kv_format", "engine", "reason")


class SweepResult:
    """Columnar result: `len(r)`, `r["tpot_s"]` (numpy), `r["model"]` (names), `.to_pandas()`. The index
    and input columns (grid.DERIVED) that `cols` lacks are computed from the axes when first read, each alone,
    and the batch-free columns `packed` holds are unpacked then, for the configurations from flat index `start`
    on."""

    def __init__(self, ax: Axes, cols: dict, engine_names: list, start: int = 0, packed: tuple | None = None,
                 order: list | None = None):
        """`packed` (an in-memory sweep's): (batch_free.Packing, its tables), the batch-free columns and the batch
        held once per batch-free code, unpacked when first read; `order`: an evaluated chunk's keys, packed ones
        included (default: cols')."""
        self.ax = ax
        self.cols = cols
        self.engine_names = engine_names
        self.start = start
        self.packed = packed
        self.order = list(cols) if order is None else order

    def __len__(self) -> int:
        return len(self.cols["tpot_s"])

    def _col(self, key: str) -> np.ndarray:
        if key not in self.cols and key in DERIVED:  # each from the axes it reads
            self.cols[key] = derived_column(self.ax, range(self.start, self.start + len(self)), key)
        if key not in self.cols and self.packed and key in batch_free.PACKED:
            packing, tables = self.packed
            self.cols[key] = tables[key][packing.index(self.start, len(self))]
        if key not in self.cols and self.packed and key == "batch":  # the engine's batch, from its two sources
            self.cols[key] = batch_of(self._col("batch_requested"), self._col("max_batch"))
        return self.cols[key]

    def _order(self) -> list:
        """The columns' keys in the order of an evaluated chunk (the derived ones after reason_code)."""
        keys = [k for k in (*self.order, *(k for k in self.cols if k not in self.order)) if k not in DERIVED]
        at = keys.index("reason_code") + 1 if "reason_code" in keys else len(keys)
        return keys[:at] + list(DERIVED) + keys[at:]

    def categorical(self, key: str) -> tuple[np.ndarray, list]:
        """(codes, names) of a text column: row i holds names[codes[i]]."""
        ax = self.ax
        if key == "model":
            return self._col("im"), [m.id for m in ax.models]
        if key == "hardware":
            return self._col("ih"), [h.id for h in ax.hardware]
        if key == "format":
            return self._col("if"), [f.id for f in ax.formats]
        if key == "kv_format":
            return self._col("ik"), [k.id if k else "" for k in ax.kv_formats]
        if key == "engine":
            return hardware_row_index(ax, self._col("if"), self._col("ih"), self._col("ie")), list(self.engine_names)
        if key == "reason":
            return self.cols["reason_code"], list(REASONS)
        raise KeyError(key)

    def _names(self, key: str) -> np.ndarray:
        codes, names = self.categorical(key)
        return np.array(names)[codes]

    def __getitem__(self, key: str) -> np.ndarray:
        if key in TEXT_COLUMNS:
            return self._names(key)
        if key in self.cols or key in self.order or key in DERIVED:
            return self._col(key)
        raise KeyError(f"no column {key!r}; columns: {', '.join(self.columns)}")

    @property
    def columns(self) -> list:
        hidden = {"im", "ih", "if", "ik", "ie", "reason_code"}
        inner = [k for k in self._order() if k not in hidden]
        return ["model", "hardware", "format", "kv_format", "engine"] + inner + ["reason"]

    def to_dict(self) -> dict:
        return {k: self[k] for k in self.columns}

    def to_pandas(self):
        try:
            import pandas as pd
        except ImportError:
            raise SweepError("to_pandas() needs pandas (pip install pandas)") from None
        return pd.DataFrame(self.to_dict())


def sweep(models=None, hw=None, fmt=None, kv_fmt=None, engine=None, batch=None, tp=None, prompt=None, gen=None,
          context=None, layouts=None, task: str | None = None, accuracy_file: str | None = None,
          chunk: int | None = None, progress: Callable | None = None, max_rows: int = 20_000_000,
          scheduler: str | None = None, workers: int | None = None) -> SweepResult:
    """Evaluate the cartesian product in memory (use `sweep_to_file` for very large sweeps).

    With `scheduler` (a Dask scheduler address) or `workers` (a local Dask cluster of that many
    processes), chunks run on the cluster; the result is identical to the local run. `layouts`
    ('tp', 'ep', 'dp-ep') adds EP and DP attention + EP over each tp for MoE models. `chunk`: configurations
    per engine call (default: grid.chunk_size's for the sweep's size).

        >>> r = costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8"], batch=[1, 8, "max"])
        >>> r["tpot_s"], r.to_pandas()
    """
    kwargs = dict(models=models, hw=hw, fmt=fmt, kv_fmt=kv_fmt, engine=engine, batch=batch, tp=tp, prompt=prompt,
                  gen=gen, context=context, layouts=layouts)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or not 1 <= workers <= 1024):  # the CLI's --workers range
        raise SweepError(f"--workers {workers!r}: expected a whole number of processes from 1 to 1024")
    ax = make_axes(**kwargs)
    if ax.size > max_rows:
        raise SweepError(f"{ax.size:,} configurations do not belong in memory: stream them with "
                         f"--out FILE.parquet (costmodel.sweep_to_file)")
    chunk = chunk_size(ax.size, chunk, fast=not (scheduler or workers) and timed_fast(ax))  # in this process
    tab = Tables(ax)
    heap.retain(chunk)  # the chunks' temporaries in pages the chunk before freed
    if scheduler or workers:
        from costmodel.sweeps.distributed import run_chunks

        parts = run_chunks(kwargs, ax.size, chunk, task, accuracy_file, scheduler, workers, progress)
        cols = {k: _joined([p[k] for p in parts]) for k in parts[0]}
    else:
        packing = batch_free.packing(ax.batch, ax.shape)  # None where packing saves nothing
        held = set(batch_free.PACKED + batch_free.DERIVED_FROM_PACKED) if packing else set()  # not per configuration
        cols, tables, order = {}, {}, None
        for idx in chunks(ax.size, chunk):  # each chunk written into the columns in place: no second copy
            at = slice(int(idx[0]), int(idx[-1]) + 1)
            into = {k: v[at] for k, v in cols.items()}  # the first chunk's columns give the result's types
            part = evaluate_chunk(tab, idx, task, accuracy_file, inputs=False, into=into)  # inputs: read when asked
            if order is None:
                order = list(part)
                cols = {k: _column(ax.size, v.dtype, i) for i, (k, v) in enumerate(part.items()) if k not in held}
                tables = {k: packing.table(part[k].dtype) for k in batch_free.PACKED} if packing else {}
            for k, v in part.items():
                if k in cols and v is not into.get(k):
                    cols[k][at] = v
            if tables:  # the batch-free columns: the entries this chunk holds
                packing.fill(tables, {k: part[k] for k in tables}, at.start)
            if progress:
                progress(int(idx[-1]) + 1, ax.size)
        return SweepResult(ax, cols, tab.engine_names, packed=(packing, tables) if tables else None, order=order)
    return SweepResult(ax, cols, tab.engine_names)


def _column(n: int, dtype, stagger: int = 0) -> np.ndarray:
    """An uninitialised array of n values; on Linux from HUGE_FROM bytes in its own private anonymous mapping,
    under the system's page policy, where numpy's np.empty asks for transparent huge pages, and populated when
    mapped (MAP_POPULATE: the kernel backs every page in one call, not one fault per page as the sweep first
    writes it). On the development machine (a virtual machine whose host backs memory on first use; huge pages
    only where asked for) writing a 10^7 sweep's 1.07 GB result took 2.07-2.50 s in huge pages the first time in
    a process and 0.22-1.96 s the second, against 0.45-0.48 s both times in small pages (benchmarks/bench_sweep.py
    rate --floor 1 --floor-with numpy|mapped; docs/benchmarks-history.md); on a later one, 1.51-1.75 s the first time
    faulted page by page and 0.41-0.79 s populated. The mapping's array starts `stagger` x 192 bytes in (modulo 4
    KiB): the columns a kernel writes at once then do not share the cache's sets (kernel_base.rows_of)."""
    dtype = np.dtype(dtype)
    size = n * dtype.itemsize
    if size >= HUGE_FROM and sys.platform.startswith("linux"):  # numpy asks for huge pages on Linux only
        import mmap

        skip = stagger * STAGGER % 4096
        try:  # private: a process forked after the sweep writes into its own copy, as with numpy's arrays
            return np.frombuffer(mmap.mmap(-1, size + skip, flags=mmap.MAP_PRIVATE | getattr(mmap, "MAP_POPULATE", 0)),
                                 dtype=dtype, count=n, offset=skip)
        except (OSError, ValueError, OverflowError):  # a mapping refused: numpy's allocation, and its MemoryError
            pass
    return np.empty(n, dtype=dtype)


def _joined(parts: list) -> np.ndarray:
    """np.concatenate(parts) into a _column: the same values, in the memory an in-memory sweep's columns take."""
    return np.concatenate(parts, out=_column(sum(len(p) for p in parts), np.result_type(*parts)))


STAGGER = 192  # bytes between the columns' starts modulo 4 KiB, as kernel_base.rows_of's rows (a multiple of 64)
# numpy asks for huge pages for arrays of 4 MiB or more (numpy/_core/src/multiarray/alloc.c: madvise(MADV_HUGEPAGE)
# where the size is at least 1 << 22 bytes)
HUGE_FROM = 1 << 22


def sweep_to_file(path: str, progress: Callable | None = None, chunk: int | None = None, task=None,
                  accuracy_file=None, force: bool = False, **axes) -> int:
    """Stream a sweep to CSV or Parquet chunk by chunk (bounded memory: a chunk in flight); returns the row count.
    `chunk`: configurations per engine call (default: grid.chunk_size's for the sweep's size). An existing file is
    replaced only with `force` (the CLI's --force).

        >>> costmodel.sweep_to_file("grid.parquet", models=["llama-3.1-8b"], hw=["h100"], batch=list(range(1, 513)))
    """
    ax = make_axes(**axes)
    chunk = chunk_size(ax.size, chunk)
    tab = Tables(ax)
    heap.retain(chunk)
    path = str(path)
    pa = pq = None
    if path.lower().endswith(".parquet"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise SweepError("writing .parquet needs pyarrow: pip install 'costmodel[parquet]'") from None
    elif not path.lower().endswith(".csv"):
        raise SweepError(f"--out {path}: expected a .csv or .parquet file")
    if os.path.isdir(path):
        raise SweepError(f"--out {path}: is a folder; expected a .csv or .parquet file")
    if os.path.lexists(path) and not force:
        raise SweepError(f"--out {path}: the file exists; pass force=True (--force) to replace it")
    from costmodel.spec.files import atomic_output

    with atomic_output(path) as tmp:  # a failed or interrupted sweep leaves no half-written file
        sink = _ParquetSink(pa, pq, str(tmp)) if path.lower().endswith(".parquet") else _CsvSink(str(tmp))
        try:
            with _writer() as background:  # chunk k written while k + 1 is evaluated, given two CPUs
                writing = None
                for idx in chunks(ax.size, chunk):  # the input columns evaluated with the chunk: the file has them
                    result = SweepResult(ax, evaluate_chunk(tab, idx, task, accuracy_file), tab.engine_names)
                    if writing is not None:
                        _written(writing, progress, ax.size)  # one chunk in flight at most: bounded memory
                    writing = background.submit(sink.write, result)
                if writing is not None:
                    _written(writing, progress, ax.size)
        finally:
            sink.close()
    return sink.rows


def _writer():
    """Where the chunks are written: a background thread while the next chunk is evaluated where this process
    may run on two CPUs or more, else in turn on this thread. On one CPU the two threads only take turns and
    evict each other's cache: a streamed 10^7 sweep pinned to one core ran 1.00-1.21x faster writing in turn
    (five runs of benchmarks/bench_sweep.py stream --writer both; docs/benchmarks-history.md)."""
    if _cpus() >= 2:
        return ThreadPoolExecutor(max_workers=1)
    return _InTurn()


def _cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class _InTurn:
    """ThreadPoolExecutor's context and `submit`, running each call at once on the calling thread: a failed
    write raises there, before another chunk is evaluated."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


def _written(writing, progress: Callable | None, total: int) -> None:
    """Wait for a chunk's write (its failure raises here) and report the rows written so far."""
    rows = writing.result()
    if progress:
        progress(rows, total)


class _ParquetSink:
    """Chunks appended to one Parquet file (pyarrow writes without the GIL: beside the next chunk's evaluation)."""

    def __init__(self, pa, pq, path: str):
        self.pa, self.pq, self.path, self.writer, self.rows = pa, pq, path, None, 0

    def write(self, result: SweepResult) -> int:
        """Append the chunk; the rows written so far."""
        table = _arrow_table(self.pa, result)
        if self.writer is None:
            self.writer = parquet_writer(self.pq, self.path, table.schema)
        self.writer.write_table(table)
        self.rows += len(result)
        return self.rows

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class _CsvSink:
    """Chunks appended to one CSV file, the header with the first."""

    def __init__(self, path: str):
        self.path, self.rows = path, 0

    def write(self, result: SweepResult) -> int:
        """Append the chunk; the rows written so far."""
        _append_csv(self.path, csv_columns(result), header=self.rows == 0)
        self.rows += len(result)
        return self.rows

    def close(self) -> None:
        pass


def parquet_writer(pq, path: str, schema):
    """A Parquet writer with dictionary pages for the text columns only: pyarrow's default tries one for
    every column, and a float column of distinct values fills it and falls back to plain pages, for
    about twice the writing time and a larger file (benchmarks/bench_sweep.py write)."""
    return pq.ParquetWriter(path, schema, use_dictionary=[k for k in schema.names if k in TEXT_COLUMNS])


def _arrow_table(pa, result: SweepResult):
    """The chunk as an Arrow table: text columns (a few names over many rows) dictionary-encoded straight
    from their codes, never spelled out row by row. Every column is required (not nullable): a sweep's columns
    hold a value in every row (NaN is a value), and Parquet then writes no definition levels, which took a third
    of the writer's time (benchmarks/bench_sweep.py write)."""
    out = {}
    for k in result.columns:
        if k in TEXT_COLUMNS:
            codes, names = result.categorical(k)
            out[k] = pa.DictionaryArray.from_arrays(pa.array(np.asarray(codes, dtype=np.int32)), pa.array(names))
        else:
            out[k] = pa.array(result[k])
    return pa.table(out, schema=pa.schema([pa.field(k, a.type, nullable=False) for k, a in out.items()]))


def csv_columns(result: SweepResult) -> dict:
    """The chunk's columns as _append_csv takes them: text columns as their (codes, names), never spelled out."""
    return {k: result.categorical(k) if k in TEXT_COLUMNS else result[k] for k in result.columns}


def _append_csv(path: str, cols: dict, header: bool) -> None:
    """The columns (arrays, or a text column as its (codes, names): SweepResult.categorical's) appended to a CSV
    file as rows, after the header line where `header`."""
    from costmodel.spec.files import csv_cell

    keys = list(cols)
    with open(path, "w" if header else "a", encoding="utf-8") as fh:
        if header:
            fh.write(",".join(keys) + "\n")
        arrays = [cols[k] for k in keys]
        # numbers as numpy prints them; text cells quoted and escaped against spreadsheet formulas,
        # once per distinct value (a sweep's text columns hold a few names over many rows)
        text = [_text_cells(a, csv_cell) if type(a) is tuple or a.dtype.kind not in "fiub" else _number_cells(a)
                for a in arrays]
        if text and text[0]:
            fh.write("\n".join(map(",".join, zip(*text))) + "\n")


def _number_cells(a: np.ndarray) -> list:
    """Numbers as numpy prints them (the shortest repr that reads back exactly): float64's str is
    Python's float repr, which costs half of numpy's astype(str). NaN, a metric that a configuration which
    cannot run or fit has not, is an empty cell, never the text nan (`--json` writes null): read_table,
    pandas and DuckDB read it back as missing; so is ±inf, a per-output-token figure of a configuration that
    generates no token (`estimate --gen 0` prints n/a, `--json` null). Each distinct value is spelled once and its cell gathered to
    its rows (a sweep's inputs, memory and prefill columns repeat theirs over its inner axes, and a decode's a third
    of them; floats told apart by their bits, so -0.0 stays -0.0), unless nine in ten are distinct: a design
    choice, not fitted (the text is the same either way), since a repr costs far more than a cell's gathering
    (0.6-1.5 µs against tens of ns on the development machine; benchmarks/bench_sweep.py write times both
    writers)."""
    if a.dtype == np.float64:
        bits = np.ascontiguousarray(a).view(np.int64)
        values, inverse = np.unique(bits, return_inverse=True)
        if 10 * len(values) > 9 * len(a):  # nearly all distinct: each value spelled where it stands
            values, inverse = bits, None
        values = values.view(np.float64)
        cells = list(map(float.__repr__, values.tolist()))
        for i in np.flatnonzero(~np.isfinite(values)).tolist():
            cells[i] = ""
        return cells if inverse is None else _gathered(cells, inverse)
    if a.dtype.kind in "iub":  # integers and flags: str of each distinct value
        values, inverse = np.unique(a, return_inverse=True)
        return _gathered(values.astype(str).tolist(), inverse)
    return a.astype(str).tolist()


def _text_cells(a, csv_cell) -> list:
    """csv_cell of each value, computed once per distinct value (on the value itself: numbers in an
    object column stay numbers); of a (codes, names) pair, once per name."""
    if type(a) is tuple:
        codes, names = a
        return _gathered([csv_cell(x) for x in names], codes)
    _, first, inv = np.unique(np.asarray(a, dtype=str), return_index=True, return_inverse=True)
    return _gathered([csv_cell(a[i]) for i in first.tolist()], inv)


def _gathered(cells: list, index) -> list:
    """cells[i] for each i of `index` (an integer array), gathered by numpy."""
    return np.array(cells, dtype=object)[np.asarray(index)].tolist()


def read_table(path: str) -> dict:
    """A sweep file (CSV or Parquet) as columns of numpy arrays."""
    if str(path).lower().endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise SweepError("reading .parquet needs pyarrow") from None
        try:
            t = pq.read_table(path)
        except Exception as exc:  # pyarrow raises its own error types for unreadable files
            raise SweepError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0][:120]}); expected a "
                             f"file written by 'costmodel sweep --out FILE.parquet'") from None
        return {k: t.column(k).to_numpy() for k in t.column_names}
    from costmodel.sweeps.csv_table import read_csv_columns

    return read_csv_columns(path, SweepError)
