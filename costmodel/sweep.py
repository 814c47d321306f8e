"""Sweeps: the cartesian product of lists of models, devices, formats, engines and workloads,
evaluated by the array engine in chunks of bounded size (one code path with `estimate`).

    >>> r = costmodel.sweep(models=["llama-3.1-8b", "llama-3.1-70b"], hw=["h100", "b200"],
    ...                     fmt=["bf16", "fp8", "nvfp4"], batch=[1, 8, "max"], tp=[1, 2, 4])
    >>> len(r), r["tpot_s"][:3], r.to_pandas()

Configurations that cannot run (tp not dividing the heads, tp without an interconnect) or do
not fit in memory stay in the result with `valid` / `fits` False and a `reason`; nothing is
dropped silently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from .calibration import resolve_engine
from .columns import format_row, hardware_row, model_row
from .engine import evaluate
from .errors import CostModelError
from .formats import resolve_format
from .hardware import resolve_hardware
from .model import resolve_model

METRICS = ("ttft_s", "tpot_s", "prefill_tokens_per_s", "decode_tokens_per_s", "throughput_tokens_per_s",
           "e2e_latency_s", "energy_j_per_token", "usd_per_million_tokens", "batch", "max_batch")
MEMORY = ("weights_bytes", "kv_cache_bytes", "total_bytes", "capacity_bytes")
REASONS = ("", "tp does not divide the attention heads", "tp/pp > 1 on a device without an interconnect",
           "does not fit in memory", "format not runnable on the device")
CHUNK = 1 << 16


class SweepError(CostModelError):
    """Bad sweep input."""


@dataclass(frozen=True)
class Axes:
    """The sweep's axes: categorical choices (resolved specs) and numeric lists."""

    models: list
    hardware: list
    formats: list
    kv_formats: list  # Format or None
    engines: list  # engine names per hardware handled at gather time ('auto' resolved per device)
    batch: np.ndarray  # -1 = max
    tp: np.ndarray
    prompt: np.ndarray
    gen: np.ndarray
    context: np.ndarray
    names: dict = field(default_factory=dict)  # axis -> display names

    @property
    def shape(self) -> tuple:
        return (len(self.models), len(self.hardware), len(self.formats), len(self.kv_formats), len(self.engines),
                len(self.batch), len(self.tp), len(self.prompt), len(self.gen), len(self.context))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


def _as_list(x, default):
    if x is None:
        return list(default)
    if isinstance(x, (str, int, float)):
        return [x]
    out = list(x)
    if not out:
        raise SweepError("an axis of the sweep is empty: every list needs at least one value")
    return out


def _ints(name: str, values, allow_max=False, minimum=0) -> np.ndarray:
    out = []
    for v in values:
        if allow_max and isinstance(v, str) and v.strip().lower() == "max":
            out.append(-1)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise SweepError(f"--{name} {v!r}: expected integers{' or max' if allow_max else ''}") from None
        if not f.is_integer() or f < minimum:
            raise SweepError(f"--{name} {v!r}: expected integers >= {minimum}")
        out.append(int(f))
    return np.array(out, dtype=float)


def make_axes(models=None, hw=None, fmt=None, kv_fmt=None, engine=None, batch=None, tp=None, prompt=None,
              gen=None, context=None) -> Axes:
    models = [resolve_model(m)[0] for m in _as_list(models, ["llama-3.1-8b"])]
    hws = [resolve_hardware(h)[0] for h in _as_list(hw, ["h100-sxm"])]
    fmts = [resolve_format(f)[0] for f in _as_list(fmt, ["bf16"])]
    kvs = [None if k in (None, "", "default") else resolve_format(k)[0] for k in _as_list(kv_fmt, [None])]
    engines = [str(e) for e in _as_list(engine, ["auto"])]
    for e in engines:
        resolve_engine(e, "nvidia-datacenter")  # validates the name
    ax = Axes(models, hws, fmts, kvs, engines,
              _ints("batch", _as_list(batch, [1]), allow_max=True, minimum=1),
              _ints("tp", _as_list(tp, [1]), minimum=1), _ints("prompt", _as_list(prompt, [512])),
              _ints("gen", _as_list(gen, [128])), _ints("context", _as_list(context, [0])))
    return ax


class Tables:
    """Per-axis column tables, gathered by index for each chunk."""

    def __init__(self, ax: Axes):
        self.ax = ax
        rows = [model_row(m) for m in ax.models]
        self.m = {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}
        # hardware x engine
        hrows, self.engine_names = [], []
        for h in ax.hardware:
            for e in ax.engines:
                name = resolve_engine(e, h.family)
                self.engine_names.append(name)
                hrows.append(hardware_row(h, name))
        self.hw = {k: np.array([r[k] for r in hrows], dtype=float) for k in hrows[0]}
        # format x hardware x kv x engine (format rows depend on the device and engine)
        frows, ok = [], []
        for f in ax.formats:
            for h in ax.hardware:
                for kv in ax.kv_formats:
                    for e in ax.engines:
                        try:
                            frows.append(format_row(f, h, kv, False, resolve_engine(e, h.family)))
                            ok.append(True)
                        except CostModelError:
                            frows.append(format_row(load_bf16(), h, kv, False, resolve_engine(e, h.family)))
                            ok.append(False)
        self.f = {k: np.array([r[k] for r in frows], dtype=float) for k in frows[0]}
        self.f_ok = np.array(ok)


def load_bf16():
    return resolve_format("bf16")[0]


def _chunk_columns(tab: Tables, flat: np.ndarray) -> dict:
    ax = tab.ax
    idx = np.unravel_index(flat, ax.shape)
    im, ih, iff, ik, ie, ib, it, ip, ig, ic = idx
    n_e, n_k, n_h = len(ax.engines), len(ax.kv_formats), len(ax.hardware)
    hw_i = ih * n_e + ie
    f_i = ((iff * n_h + ih) * n_k + ik) * n_e + ie
    return {"im": im, "ih": ih, "if": iff, "ik": ik, "ie": ie, "hw_i": hw_i, "f_i": f_i,
            "batch": ax.batch[ib], "tp": ax.tp[it], "prompt": ax.prompt[ip], "gen": ax.gen[ig],
            "context": ax.context[ic]}


def evaluate_chunk(tab: Tables, flat: np.ndarray, task: str | None = None, accuracy_file: str | None = None) -> dict:
    """Metric columns for the configurations with flat indices `flat` (one engine call)."""
    c = _chunk_columns(tab, flat)
    m = {k: v[c["im"]] for k, v in tab.m.items()}
    hw = {k: v[c["hw_i"]] for k, v in tab.hw.items()}
    f = {k: v[c["f_i"]] for k, v in tab.f.items()}
    tp = c["tp"]
    heads_ok = np.mod(m["heads"], tp) == 0
    link_ok = (tp == 1) | (hw["interconnect"] > 0)
    fmt_ok = tab.f_ok[c["f_i"]]
    tp_eval = np.where(heads_ok & link_ok, tp, 1.0)
    res = evaluate(m, f, hw, c["batch"], c["prompt"], np.where(m["encoder"] > 0, 0.0, c["gen"]), c["context"],
                   tp_eval, 1.0, 1.0)
    out = {k: np.asarray(res.metrics[k], dtype=float) for k in METRICS}
    mem = res.memory
    out.update(weights_bytes=mem.weights, kv_cache_bytes=mem.kv_cache, total_bytes=mem.total,
               capacity_bytes=np.broadcast_to(mem.capacity, mem.total.shape).astype(float))
    fits = np.asarray(res.metrics["fits"], dtype=bool)
    valid = heads_ok & link_ok & fmt_ok
    reason = np.where(~heads_ok, 1, np.where(~link_ok, 2, np.where(~fmt_ok, 4, np.where(~fits, 3, 0))))
    for k in METRICS[:8]:
        out[k] = np.where(valid, out[k], np.nan)
    out["fits"] = fits & valid
    out["valid"] = valid
    out["reason_code"] = reason.astype(np.int8)
    for key in ("im", "ih", "if", "ik", "ie"):
        out[key] = c[key].astype(np.int32)
    for key in ("tp", "prompt", "gen", "context"):
        out[key] = c[key]
    out["batch_requested"] = c["batch"]
    if task:
        out["accuracy"] = _accuracy_column(tab, c, task, accuracy_file)
    return out


def _accuracy_column(tab: Tables, c: dict, task: str, accuracy_file: str | None) -> np.ndarray:
    from .analyses.quality import QualityError, accuracy

    table = np.full((len(tab.ax.models), len(tab.ax.formats)), np.nan)
    for i, m in enumerate(tab.ax.models):
        for j, f in enumerate(tab.ax.formats):
            try:
                acc = accuracy(m.id, f.id, task, accuracy_file)
                if acc.basis == "exact":  # never borrow another format's accuracy in a sweep
                    table[i, j] = acc.value
            except QualityError as exc:
                if "unknown task" in str(exc):
                    raise
    return table[c["im"], c["if"]]


class SweepResult:
    """Columnar result: `len(r)`, `r["tpot_s"]` (numpy), `r["model"]` (names), `.to_pandas()`."""

    def __init__(self, ax: Axes, cols: dict, engine_names: list):
        self.ax = ax
        self.cols = cols
        self.engine_names = engine_names

    def __len__(self) -> int:
        return len(self.cols["tpot_s"])

    def _names(self, key: str) -> np.ndarray:
        ax = self.ax
        if key == "model":
            return np.array([m.id for m in ax.models])[self.cols["im"]]
        if key == "hardware":
            return np.array([h.id for h in ax.hardware])[self.cols["ih"]]
        if key == "format":
            return np.array([f.id for f in ax.formats])[self.cols["if"]]
        if key == "kv_format":
            return np.array([k.id if k else "" for k in ax.kv_formats])[self.cols["ik"]]
        if key == "engine":
            hw_i = self.cols["ih"] * len(ax.engines) + self.cols["ie"]
            return np.array(self.engine_names)[hw_i]
        if key == "reason":
            return np.array(REASONS)[self.cols["reason_code"]]
        raise KeyError(key)

    def __getitem__(self, key: str) -> np.ndarray:
        if key in ("model", "hardware", "format", "kv_format", "engine", "reason"):
            return self._names(key)
        if key in self.cols:
            return self.cols[key]
        raise KeyError(f"no column {key!r}; columns: {', '.join(self.columns)}")

    @property
    def columns(self) -> list:
        hidden = {"im", "ih", "if", "ik", "ie", "reason_code"}
        return ["model", "hardware", "format", "kv_format", "engine"] + [k for k in self.cols if k not in hidden] + ["reason"]

    def to_dict(self) -> dict:
        return {k: self[k] for k in self.columns}

    def to_pandas(self):
        try:
            import pandas as pd
        except ImportError:
            raise SweepError("to_pandas() needs pandas (pip install pandas)") from None
        return pd.DataFrame(self.to_dict())


def chunks(n: int, size: int = CHUNK) -> Iterator[np.ndarray]:
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size), dtype=np.int64)


def sweep(models=None, hw=None, fmt=None, kv_fmt=None, engine=None, batch=None, tp=None, prompt=None, gen=None,
          context=None, task: str | None = None, accuracy_file: str | None = None, chunk: int = CHUNK,
          progress: Callable | None = None, max_rows: int = 20_000_000, scheduler: str | None = None,
          workers: int | None = None) -> SweepResult:
    """Evaluate the cartesian product in memory (use `sweep_to_file` for very large sweeps).

    With `scheduler` (a Dask scheduler address) or `workers` (a local Dask cluster of that many
    processes), chunks run on the cluster; the result is identical to the local run.
    """
    kwargs = dict(models=models, hw=hw, fmt=fmt, kv_fmt=kv_fmt, engine=engine, batch=batch, tp=tp, prompt=prompt,
                  gen=gen, context=context)
    ax = make_axes(**kwargs)
    if ax.size > max_rows:
        raise SweepError(f"{ax.size:,} configurations do not belong in memory: stream them with "
                         f"--out FILE.parquet (costmodel.sweep_to_file)")
    tab = Tables(ax)
    if scheduler or workers:
        from .distributed import run_chunks

        parts = run_chunks(kwargs, ax.size, chunk, task, accuracy_file, scheduler, workers, progress)
    else:
        parts = []
        done = 0
        for idx in chunks(ax.size, chunk):
            parts.append(evaluate_chunk(tab, idx, task, accuracy_file))
            done += len(idx)
            if progress:
                progress(done, ax.size)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return SweepResult(ax, cols, tab.engine_names)


def sweep_to_file(path: str, progress: Callable | None = None, chunk: int = CHUNK, task=None, accuracy_file=None,
                  **axes) -> int:
    """Stream a sweep to CSV or Parquet chunk by chunk (bounded memory); returns the row count."""
    ax = make_axes(**axes)
    tab = Tables(ax)
    path = str(path)
    writer = None
    done = 0
    if path.endswith(".parquet"):
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise SweepError("writing .parquet needs pyarrow: pip install 'costmodel[parquet]'") from None
    elif not path.endswith(".csv"):
        raise SweepError(f"--out {path}: expected a .csv or .parquet file")
    try:
        for idx in chunks(ax.size, chunk):
            cols = evaluate_chunk(tab, idx, task, accuracy_file)
            res = SweepResult(ax, cols, tab.engine_names).to_dict()
            if path.endswith(".parquet"):
                table = pa.table(res)
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema)
                writer.write_table(table)
            else:
                _append_csv(path, res, header=done == 0)
            done += len(idx)
            if progress:
                progress(done, ax.size)
    finally:
        if writer is not None:
            writer.close()
    return done


def _append_csv(path: str, cols: dict, header: bool) -> None:
    keys = list(cols)
    with open(path, "w" if header else "a", encoding="utf-8") as fh:
        if header:
            fh.write(",".join(keys) + "\n")
        arrays = [cols[k] for k in keys]
        text = [a.astype(str) if a.dtype.kind in "fiub" else a for a in arrays]
        for row in zip(*text):
            fh.write(",".join(row) + "\n")


def read_table(path: str) -> dict:
    """A sweep file (CSV or Parquet) as columns of numpy arrays."""
    if str(path).endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise SweepError("reading .parquet needs pyarrow") from None
        t = pq.read_table(path)
        return {k: t.column(k).to_numpy() for k in t.column_names}
    import csv

    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2:
        raise SweepError(f"{path}: no rows")
    header, body = rows[0], rows[1:]
    cols = {}
    for j, k in enumerate(header):
        vals = [r[j] for r in body]
        try:
            cols[k] = np.array([float(v) if v not in ("", "nan") else math.nan for v in vals])
        except ValueError:
            cols[k] = np.array(vals)
    return cols


