"""The grid of a sweep: its axes (resolved specs and numeric lists), the per-axis column tables,
and the evaluation of one chunk of flat configuration indices by the array engine.
Shared by the local sweep and the Dask workers."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from costmodel.engine import fast as compiled  # the [fast] kernels' wrappers (numba loads on first use)
from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.distinct import Gathered, block_runs
from costmodel.engine.fast import enabled as fast_enabled
from costmodel.engine.evaluate import evaluate
from costmodel.engine.layout import LAYOUTS
from costmodel.errors import CostModelError
from costmodel.spec.engine_params import resolve_engine
from costmodel.spec.formats import resolve_format
from costmodel.spec.hardware import resolve_hardware
from costmodel.spec.model_catalog import resolve_model

METRICS = ("ttft_s", "tpot_s", "prefill_tokens_per_s", "decode_tokens_per_s", "throughput_tokens_per_s",
           "e2e_latency_s", "energy_j_per_token", "usd_per_million_tokens", "batch", "max_batch")
MEMORY = ("weights_bytes", "kv_cache_bytes", "total_bytes", "capacity_bytes")
# the columns the engine's memory stage writes (evaluate's memory_into): the batches and MEMORY, by its names
MEMORY_OF = {"batch": "batch", "max_batch": "max_batch", "weights_bytes": "weights", "kv_cache_bytes": "kv_cache",
             "total_bytes": "total", "capacity_bytes": "capacity"}
REASONS = ("", "tp does not divide the attention heads", "tp/pp > 1 on a device without an interconnect",
           "does not fit in memory", "format not runnable on the device",
           "expert or DP-attention layout on a dense model or a single device")

# configurations per engine call. A grid's chunk evaluates its prefills, decode steps and memory once per
# distinct input, and those calls cost about as much per call as per row, so larger chunks pay while the heap
# holds their temporaries (heap.retain: a trim threshold scaled to the chunk; at glibc's 64 MiB chunks of 131,072
# took 1.4-2x longer, their temporaries faulted back in each chunk). In-memory sweeps in one process, three
# interleaved rounds on the development machine (benchmarks/bench_sweep.py chunks): the 10,077,696 grid
# with the [fast] kernels at 4.16-4.38 x 10^6/s in chunks of 65,536, 4.48-4.94 in 131,072 and 4.65-5.25 in
# 262,144 (4.68-5.32 in 393,216); on numpy's path 2.76-2.94, 2.93-3.23 and 3.07-3.16; the 2,663,424 grid
# 2.51-2.75, 2.86-3.03 and 2.66-2.82; the 912,384 grid (14 chunks of 65,536) 2.48-2.57, 2.24-2.58 and 2.15-2.43.
# Hence CHUNK to CHUNK_MAX, at least CHUNKS_FROM chunks a sweep (chunk_size). In memory with the [fast] kernels,
# where numpy's lowering at the distinct rows is most of what a chunk spends per call, up to CHUNK_MAX_FAST: the
# 10,077,696 grid's warm sweeps (benchmarks/bench_sweep.py rate --fast on --rounds 3 --chunk N, alternating
# processes) ran at 6.11-6.38 x 10^6/s in chunks of 524,288 against 5.56-5.89 in 262,144 (1.08-1.10x), a process's
# first sweep 2.36 s against 2.42 s, peak RSS 1.22 GB against 1.11; in 1,048,576 6.16-6.34, the first 3.24 s, 1.51
# GB. On numpy's path 524,288 ran slower (1.87-2.00 against 1.99-2.10 x 10^6/s, 1.38 against 1.12 GB), and a
# streamed sweep no faster (1.32-1.47 against 1.34-1.37 x 10^6 rows/s, 0.70 against 0.49 GB)
CHUNK, CHUNK_MAX, CHUNK_MAX_FAST, CHUNKS_FROM = 1 << 16, 1 << 18, 1 << 19, 16


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
    layouts: tuple = ("tp",)  # LAYOUTS keys
    names: dict = field(default_factory=dict)  # axis -> display names

    @property
    def shape(self) -> tuple:
        return (len(self.models), len(self.hardware), len(self.formats), len(self.kv_formats), len(self.engines),
                len(self.batch), len(self.tp), len(self.layouts), len(self.prompt), len(self.gen), len(self.context))

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


def _ids(flag: str, values, default, allow_none: bool = False) -> list:
    """_as_list's entries, each a catalogue id (a str; None too where `allow_none`): a number or None is named,
    not an AttributeError of the resolver."""
    out = _as_list(values, default)
    for v in out:
        if not (isinstance(v, str) or (allow_none and v is None)):
            raise SweepError(f"{flag} {v!r}: expected a catalogue id (a str)")
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
    return np.array(list(dict.fromkeys(out)), dtype=float)  # each value once, in the list's order


def make_axes(models=None, hw=None, fmt=None, kv_fmt=None, engine=None, batch=None, tp=None, prompt=None,
              gen=None, context=None, layouts=None) -> Axes:
    """The sweep's axes from its lists, each entry resolved (aliases, nearest-name errors) and counted once: a
    repeated entry, or two names of one spec ('h100' and 'h100-sxm'), would repeat configurations."""
    models = first_each([resolve_model(m)[0] for m in _ids("--models", models, ["llama-3.1-8b"])])
    hws = first_each([resolve_hardware(h)[0] for h in _ids("--hw", hw, ["h100-sxm"])])
    fmts = first_each([resolve_format(f)[0] for f in _ids("--fmt", fmt, ["bf16"])])
    kvs = first_each([None if k in (None, "", "default") else resolve_format(k)[0]
                      for k in _ids("--kv-fmt", kv_fmt, [None], allow_none=True)])
    engines = list(dict.fromkeys(str(e) for e in _as_list(engine, ["auto"])))
    for e in engines:
        resolve_engine(e, "nvidia-datacenter")  # validates the name
    ax = Axes(models, hws, fmts, kvs, engines,
              _ints("batch", _as_list(batch, [1]), allow_max=True, minimum=1),
              _ints("tp", _as_list(tp, [1]), minimum=1), _ints("prompt", _as_list(prompt, [512])),
              _ints("gen", _as_list(gen, [128])), _ints("context", _as_list(context, [0])), _layouts(layouts))
    return ax


def first_each(items, key=lambda spec: getattr(spec, "id", None)) -> list:
    """`items` in their order, the first of each key (default: a spec's id; None, the format's own KV format, once)."""
    first: dict = {}
    for item in items:
        first.setdefault(key(item), item)
    return list(first.values())


def _layouts(values) -> tuple:
    out = tuple(dict.fromkeys(str(v).strip() for v in _as_list(values, ["tp"])))
    for v in out:
        if v not in LAYOUTS:
            raise SweepError(f"--layouts {v!r}: expected tp, ep or dp-ep")
    return out


class Tables:
    """Per-axis column tables, gathered by index for each chunk. Device and format rows are per
    (format, device, engine) because 'auto' resolves per device and per format (GGUF quants imply
    llama.cpp) and a format's matrix path depends on the device."""

    def __init__(self, ax: Axes):
        self.ax = ax
        rows = [model_row(m) for m in ax.models]
        self.m = {k: np.array([r[k] for r in rows], dtype=float) for k in rows[0]}
        hrows, self.engine_names = [], []  # format x hardware x engine
        frows, ok = [], []  # format x hardware x kv x engine
        for f in ax.formats:
            for h in ax.hardware:
                for e in ax.engines:
                    name = resolve_engine(e, h.family, h.id, f.engine)
                    self.engine_names.append(name)
                    hrows.append(hardware_row(h, name))
                for kv in ax.kv_formats:
                    for e in ax.engines:
                        name = resolve_engine(e, h.family, h.id, f.engine)
                        try:
                            frows.append(format_row(f, h, kv, False, name))
                            ok.append(True)
                        except CostModelError:
                            frows.append(format_row(load_bf16(), h, kv, False, name))
                            ok.append(False)
        self.hw = {k: np.array([r[k] for r in hrows], dtype=float) for k in hrows[0]}
        self.f = {k: np.array([r[k] for r in frows], dtype=float) for k in frows[0]}
        self.f_ok = np.array(ok)
        self.layout_reason = _layout_reasons(self.m, ax)
        self.records = {k: compiled.records(getattr(self, k)) for k in ("m", "hw", "f")}  # the [fast] kernels' rows


def _layout_reasons(m: dict, ax: Axes) -> np.ndarray:
    """REASONS' code of each (model, tp, layout) that cannot run, flat over those axes: 5 where the layout
    does not apply (DP attention or EP needs an MoE model, tp > 1 and no more expert groups than experts), 1
    where tp/dp does not divide the attention heads, else 0. A chunk gathers its configurations' codes."""
    dp_of, ep_of = _layout_flags(ax)
    tp = ax.tp.astype(float)[None, :, None]
    dp, ep = _layout({"dp_of_tp": dp_of, "ep_of_tp": ep_of, "tp": tp})  # (1, tp, layout)
    experts = m["experts"][:, None, None]
    layout_ok = ((dp_of == 0) & (ep_of == 0)) | ((tp > 1) & (experts > 0) & (ep <= np.maximum(experts, 1.0)))
    heads_ok = np.mod(m["heads"][:, None, None], tp / dp) == 0
    return np.where(~layout_ok, 5, np.where(~heads_ok, 1, 0)).astype(np.int8).reshape(-1)


def load_bf16():
    return resolve_format("bf16")[0]


def _chunk_columns(ax: Axes, flat: np.ndarray) -> dict:
    axis = _Unravel(flat, ax.shape)
    im, ih, iff, ik, ie, ib = (axis.index(k) for k in range(6))  # the numeric axes' values below
    n_e, n_k, n_h = len(ax.engines), len(ax.kv_formats), len(ax.hardware)
    hw_i = hardware_row_index(ax, iff, ih, ie)
    f_i = ((iff * n_h + ih) * n_k + ik) * n_e + ie
    return {"im": im, "ih": ih, "if": iff, "ik": ik, "ie": ie, "ib": ib, "hw_i": hw_i, "f_i": f_i,
            "it": axis.index(6), "il": axis.index(7),
            **{k: axis.value(i, getattr(ax, k)) for k, i in NUMERIC_AXES.items()},
            **dict(zip(("dp_of_tp", "ep_of_tp"), (axis.value(7, x) for x in _layout_flags(ax))))}


# the numeric axes: Axes' attribute of each and its place in Axes.shape
NUMERIC_AXES = {"batch": 5, "tp": 6, "prompt": 8, "gen": 9, "context": 10}


def _layout_flags(ax: Axes) -> tuple[np.ndarray, np.ndarray]:
    """(DP attention over tp, experts over tp) of each of the axes' layouts, 1 or 0 (engine/layout.LAYOUTS)."""
    return tuple(np.array([LAYOUTS[x][i] for x in ax.layouts], dtype=float) for i in (0, 1))


def hardware_row_index(ax: Axes, iff, ih, ie):
    """Row of Tables.hw (and of engine_names) for format, hardware and engine indices: format-major."""
    return (iff * len(ax.hardware) + ih) * len(ax.engines) + ie


class _Unravel:
    """np.unravel_index(flat, shape), axis by axis. A chunk of consecutive flat indices (sweeps evaluate
    them in order) holds each axis as runs of `stride` equal indices, so an axis and the values along it
    are repeats of its few indices, cheaper than dividing every flat index."""

    def __init__(self, flat, shape: tuple):
        """`flat`: the flat indices, or a range of them (step 1: consecutive, no array made to find it)."""
        consecutive = isinstance(flat, range) and _consecutive(flat)
        flat = flat if consecutive else np.asarray(flat)
        self.n, self.shape = len(flat), shape
        self.start = int(flat[0]) if self.n else 0
        self.runs = self.n == 0 or consecutive or _consecutive(flat)
        self.idx = None if self.runs else np.unravel_index(flat, shape)
        self.strides = [math.prod(shape[k + 1:]) for k in range(len(shape))]  # Python's ints: no numpy call each

    def value(self, k: int, table: np.ndarray) -> np.ndarray:
        """table[index along axis k] for every flat index: an axis that cycles within the chunk as one cycle
        (each value repeated `stride` times) tiled from the chunk's start; another as each run's value
        repeated over the part of the run inside the chunk (O(rows + runs), whatever the stride)."""
        if not self.runs:
            return table[self.idx[k]]
        if self.n == 0:
            return table[:0]
        stride, size, start, stop = self.strides[k], self.shape[k], self.start, self.start + self.n
        period = stride * size
        if 2 * period <= self.n:  # an inner axis: its cycle over the axis, from the chunk's start, tiled
            cycle = np.repeat(table, stride) if stride > 1 else table
            off = start % period
            cycle = np.concatenate((cycle[off:], cycle[:off])) if off else cycle
            return np.broadcast_to(cycle, (-(-self.n // period), period)).reshape(-1)[:self.n]
        first, last = start // stride, (stop - 1) // stride
        at = table[np.arange(first, last + 1) % size]
        if stride == 1:
            return at
        return np.repeat(at, np.diff(np.append(_axis_runs(start, self.n, stride), self.n)))

    def index(self, k: int) -> np.ndarray:
        return self.value(k, np.arange(self.shape[k])) if self.runs else self.idx[k]


# the sweep size from which the [fast] kernels time the phases (engine/fast.py). A process pays about 0.4 s to import
# numba and load the cached kernels (0.39-0.40 s on the development machine, one core; compiling them into an empty
# cache the first time: 3.9 s when they were fewer, a first sweep's 95 s on 2026-12-04). They save about 0.13-0.15 µs
# a configuration: fresh in-memory sweeps pinned to one core (benchmarks/bench_sweep.py rate --fast on / off --floor
# 0, two interleaved pairs each) took 1.48-1.53 s both ways at 2.66 × 10^6 configurations, 2.12-2.16 s against
# 2.56-2.65 s at 4.8 × 10^6, 3.62-3.68 s against 4.75-4.99 s at 9.3 × 10^6, and 0.79-0.80 s against 0.61 s at 912k.
# The size is the whole sweep's: a Dask worker pays the load for its share.
FAST_MIN_CONFIGS = 3_000_000


def timed_fast(ax: Axes) -> bool:
    """The grid's chunks are timed by the [fast] kernels: FAST_MIN_CONFIGS or more, and numba installed and on."""
    return ax.size >= FAST_MIN_CONFIGS and fast_enabled()


# the index and input columns of a sweep: functions of the flat index and the axes alone, computed when read
DERIVED = ("im", "ih", "if", "ik", "ie", "tp", "prompt", "gen", "context", "dp", "ep", "batch_requested")


def derived_columns(ax: Axes, flat: np.ndarray, c: dict | None = None) -> dict:
    """The DERIVED columns of the configurations at flat indices `flat` (`c`: their _chunk_columns)."""
    c = _chunk_columns(ax, flat) if c is None else c
    out = {k: c[k].astype(np.int32) for k in DERIVED[:5]}
    dp, ep = _layout(c)
    out.update(tp=c["tp"], prompt=c["prompt"], gen=c["gen"], context=c["context"], dp=dp, ep=ep,
               batch_requested=c["batch"])
    return out


def derived_column(ax: Axes, flat, key: str) -> np.ndarray:
    """One of the DERIVED columns at flat indices `flat` (an array or a range), from the axes it reads alone:
    derived_columns' values and type (a 10^7 sweep's batch_requested in 0.04 s, where reading one computed all
    twelve in 2.3-2.8 s: benchmarks/bench_sweep.py rate)."""
    axis = _Unravel(flat, ax.shape)
    if key in DERIVED[:5]:
        return axis.index(DERIVED.index(key)).astype(np.int32)
    if key in ("dp", "ep"):
        flags = _layout_flags(ax)[("dp", "ep").index(key)]
        return _over_tp(axis.value(7, flags), axis.value(NUMERIC_AXES["tp"], ax.tp))
    name = "batch" if key == "batch_requested" else key
    return axis.value(NUMERIC_AXES[name], getattr(ax, name))


def _batch_free(ax: Axes, flat: np.ndarray, c: dict) -> np.ndarray:
    """Each configuration's batch-free code: equal codes, equal inputs but for the batch's value (evaluate's
    seq_groups). Its flat index o·(n_b·S) + i_b·S + r (o on the five axes before the batch, i_b the batch's index, r
    on the axes after it, S their product) as (2·o + c)·S + r, c = 1 for the largest batch, else 0
    (batch_free.Packing's entry with two classes): in the same order, so the same groups, and with n_b ≥ 2 batches
    the codes of a chunk span about 2/n_b of its flat indices, so fast.code_groups' table over their range is that
    much smaller (one batch: no codes are grouped, evaluate shares nothing by them)."""
    stride = int(np.prod(ax.shape[6:]))  # of the batch axis (Axes.shape: the sixth)
    flat = np.asarray(flat, dtype=np.int64)
    spare = (2 - len(ax.batch)) * stride
    return flat + ((c["batch"] < 0) - c["ib"]).astype(np.int64) * stride + flat // (len(ax.batch) * stride) * spare


def _layout(c: dict) -> tuple[np.ndarray, np.ndarray]:
    """(dp, ep) of each configuration: 1 or its tp (DP attention over single-device groups, experts over all tp)."""
    return _over_tp(c["dp_of_tp"], c["tp"]), _over_tp(c["ep_of_tp"], c["tp"])


def _over_tp(flag, tp):
    """A layout's dp or ep: its tp where the layout's flag (_layout_flags') is set, else 1."""
    return np.where(flag > 0, tp, 1.0)


def evaluate_chunk(tab: Tables, flat, task: str | None = None, accuracy_file: str | None = None,
                   shared: bool = True, inputs: bool = True, into: dict | None = None) -> dict:
    """Metric columns for the configurations with flat indices `flat` (an array, or a range: `chunks`'), one engine
    call, and with `inputs`
    their DERIVED columns. `shared`: the engine evaluates each phase once per distinct input
    (engine/distinct.py; same results). A sweep of FAST_MIN_CONFIGS or more is timed by the [fast]
    kernels where numba is installed (same results). `into`: arrays of the chunk's length (a sweep's result
    columns at its rows) that the columns of their names are written into, and returned as."""
    fast = timed_fast(tab.ax)
    consecutive = _consecutive(flat)  # a sweep's chunk (a range: no pass to know)
    flat = np.arange(flat.start, flat.stop, flat.step, dtype=np.int64) if isinstance(flat, range) else np.asarray(flat)
    fr = _compiled_frame(tab, flat, consecutive) if fast else None
    c = _chunk_columns(tab.ax, flat) if fr is None or inputs or task else None
    fr = _frame(tab, flat, c) if fr is None else fr
    starts = _block_starts(tab.ax, flat) if consecutive else None
    m, hw, f = (Gathered(getattr(tab, k), fr[i], tab.records[k],
                         block_runs(fr[i], starts) if starts is not None and np.shape(fr[i]) == flat.shape else None)
                for k, i in (("m", "im"), ("hw", "hw_i"), ("f", "f_i")))
    first, link_ok, fmt_ok, run = fr["first"], fr["link_ok"], fr["fmt_ok"], fr["run"]
    valid = run & fmt_ok
    into = into or {}
    timed = {k: into[k] if k in into else np.empty(len(first)) for k in METRICS[:8]}  # NaN where not valid or fits
    memory = {e: into[k] if k in into else np.empty(len(first)) for k, e in MEMORY_OF.items()}  # every one's
    res = evaluate(m, f, hw, fr["batch"], fr["prompt"], fr["gen"], fr["context"], fr["tp"], 1.0, 1.0, fr["dp"],
                   fr["ep"], groups=fr["groups"] if shared else None, seq_groups=fr["seq"] if shared else None,
                   fast=fast, metrics=METRICS + ("fits",), into=timed, valid=valid, memory_into=memory,
                   group_starts=_layout_starts(tab.ax, flat) if consecutive else None,
                   prefill_starts=_prefill_starts(tab.ax, flat) if consecutive else None)
    fits = np.asarray(res.metrics["fits"], dtype=bool)
    out = {k: res.metrics[k] for k in METRICS[:8]}
    out.update(_outcome(first, link_ok, fmt_ok, valid, fits, into, fast))
    out.update((k, memory[e]) for k, e in MEMORY_OF.items())
    out = {k: out[k] for k in (*METRICS, *MEMORY, "fits", "valid", "reason_code")}  # the columns' order
    if inputs:
        out.update(derived_columns(tab.ax, flat, c))
    if task:
        out["accuracy"], out["accuracy_recovery"] = _accuracy_column(tab, c, task, accuracy_file)
    return out


def _frame(tab: Tables, flat: np.ndarray, c: dict) -> dict:
    """The columns evaluate_chunk evaluates from (fast.FRAME's names) for its chunk columns `c`: the model, device
    and format rows, the engine's inputs (gen 0 for an encoder; tp, dp and ep 1 where the layout cannot run: its
    reason in `first`, 5 the layout, 1 the heads, else 0; no link for tp > 1; `run`), the groups and the batch-free
    codes (evaluate's groups and seq_groups), and whether the device runs the format."""
    tp = c["tp"]
    dp, ep = _layout(c)
    n_t, n_l = len(tab.ax.tp), len(tab.ax.layouts)
    first = tab.layout_reason[(c["im"] * n_t + c["it"]) * n_l + c["il"]]
    link_ok = (tp == 1) | (tab.hw["interconnect"][c["hw_i"]] > 0)
    run = (first == 0) & link_ok
    encoder = tab.m["encoder"][c["im"]]
    return dict(im=c["im"], hw_i=c["hw_i"], f_i=c["f_i"], groups=c["im"] * len(tab.f_ok) + c["f_i"],
                seq=_batch_free(tab.ax, flat, c), batch=c["batch"], prompt=c["prompt"],
                gen=np.where(encoder > 0, 0.0, c["gen"]), context=c["context"], tp=np.where(run, tp, 1.0),
                dp=np.where(run, dp, 1.0), ep=np.where(run, ep, 1.0), first=first, link_ok=link_ok,
                fmt_ok=tab.f_ok[c["f_i"]], run=run)


def _compiled_frame(tab: Tables, flat: np.ndarray, consecutive: bool | None = None) -> dict | None:
    """_frame by the [fast] kernel (fast.chunk_frame, an odometer over the axes) for a run of consecutive flat
    indices (a sweep's chunk; `consecutive`: whether they are, where the caller knows), the same values; None for
    others or where the kernels do not load."""
    flat = np.asarray(flat)
    if not (_consecutive(flat) if consecutive is None else consecutive):
        return None
    ax = tab.ax
    return compiled.chunk_frame(int(flat[0]), len(flat), ax.shape, (ax.batch, ax.tp, ax.prompt, ax.gen, ax.context),
                                _layout_flags(ax), tab.layout_reason, tab.f_ok, tab.m["encoder"],
                                tab.hw["interconnect"])


def _outcome(first, link_ok, fmt_ok, valid, fits, into: dict, fast: bool) -> dict:
    """{fits (valid and fits), valid, reason_code} of the configurations, written into `into`'s arrays where it has
    them; by the [fast] kernel (fast.outcome) with `fast`, the same values."""
    got = compiled.outcome(first, link_ok, fmt_ok, valid, fits) if fast else None
    if got is None:
        reason = np.where(first != 0, first, np.where(~link_ok, 2, np.where(~fmt_ok, 4, np.where(~fits, 3, 0))))
        got = valid & fits, reason.astype(np.int8)
    ok, reason = got
    return {k: _put(into, k, v) for k, v in (("fits", ok), ("valid", valid), ("reason_code", reason))}


def _put(into: dict, k: str, v: np.ndarray) -> np.ndarray:
    """v written into into[k] and that array, where `into` has one of the name; else v."""
    if k not in into:
        return v
    into[k][...] = v
    return into[k]


def _block_starts(ax: Axes, flat: np.ndarray) -> np.ndarray:
    """Where in a chunk of consecutive flat indices (1-D, at least one) a block of the grid's five categorical axes
    (model, device, format, KV format, engine: what fixes the chunk's model, device and format rows) starts, 0
    first: the runs of the engine axis, the innermost of them."""
    return _axis_runs(int(flat[0]), len(flat), int(np.prod(ax.shape[5:], dtype=np.int64)))


def _layout_starts(ax: Axes, flat: np.ndarray) -> np.ndarray:
    """Where in a chunk of consecutive flat indices (1-D, at least one) a run of the grid's eight outer axes (all but
    prompt, gen and context) starts, 0 first: the runs of the layout axis, the innermost of them. The frame's groups,
    tp, dp and ep are functions of those axes (_frame), so each of their changes is at one of these rows (evaluate's
    group_starts)."""
    return _axis_runs(int(flat[0]), len(flat), int(np.prod(ax.shape[8:], dtype=np.int64)))


def _prefill_starts(ax: Axes, flat: np.ndarray) -> np.ndarray | None:
    """Where in a chunk of consecutive flat indices (1-D, at least one) a run of the prompt axis starts, 0 first, where
    the grid has one context and no largest batch ("max", whose batch depends on the generated length); else None.
    The prefill's key (evaluate.lower_all's: the groups, the batch, prompt and context) is then a function of the
    axes outside the generated length's, so each of its changes is at one of these rows (evaluate's prefill_starts)."""
    if len(ax.context) != 1 or bool((ax.batch < 0).any()):
        return None
    return _axis_runs(int(flat[0]), len(flat), int(np.prod(ax.shape[9:], dtype=np.int64)))


def _axis_runs(start: int, n: int, stride: int) -> np.ndarray:
    """Where, in n consecutive flat indices from `start` (at least one), an axis of `stride` starts a run of equal
    indices, 0 first (positions in the chunk)."""
    first, last = start // stride, (start + n - 1) // stride
    return np.concatenate(([0], np.arange(first + 1, last + 1, dtype=np.int64) * stride - start))


def _consecutive(flat) -> bool:
    """The flat indices (an array, or a range: known without a pass) are 1-D, at least one, and run one after another
    (a sweep's chunk)."""
    if isinstance(flat, range):
        return flat.step == 1 and len(flat) > 0
    return (flat.ndim == 1 and len(flat) > 0 and int(flat[-1]) - int(flat[0]) == len(flat) - 1
            and bool(np.all(np.diff(flat) == 1)))


def _accuracy_column(tab: Tables, c: dict, task: str, accuracy_file: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, recovery vs bf16 of the same source) per configuration; NaN where the table has none
    (a sweep never borrows another format's accuracy)."""
    from costmodel.spec.quality import QualityError, accuracy, load

    load(accuracy_file)  # a file that cannot be read, lacks a column or holds a bad value: its error, not NaN rows
    table = np.full((len(tab.ax.models), len(tab.ax.formats)), np.nan)
    recovery = np.full_like(table, np.nan)
    for i, m in enumerate(tab.ax.models):
        for j, f in enumerate(tab.ax.formats):
            try:
                acc = accuracy(m.id, f.id, task, accuracy_file)
                if acc.basis == "exact":
                    table[i, j] = acc.value
                    recovery[i, j] = np.nan if acc.recovery is None else acc.recovery
            except QualityError as exc:
                if "unknown task" in str(exc):
                    raise
    return table[c["im"], c["if"]], recovery[c["im"], c["if"]]


def chunk_size(n: int, chunk=None, fast: bool = False) -> int:
    """`chunk` (configurations per engine call, a whole number of 1 or more), or by default for a sweep of n
    configurations the largest power of two from CHUNK to CHUNK_MAX (CHUNK_MAX_FAST for an in-memory sweep timed by
    the [fast] kernels: `fast`, timed_fast's) that makes CHUNKS_FROM chunks or more."""
    if chunk is None:
        largest = 1 << (max(int(n) // CHUNKS_FROM, 1).bit_length() - 1)  # the power of two at or under n/16
        return min(CHUNK_MAX_FAST if fast else CHUNK_MAX, max(CHUNK, largest))
    if isinstance(chunk, (bool, np.bool_)) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise SweepError(f"chunk={chunk!r}: expected a whole number of configurations per engine call, 1 or more")
    return int(chunk)


def chunks(n: int, size: int = CHUNK) -> Iterator[range]:
    """The flat indices of n configurations in runs of `size`, each a range (evaluate_chunk then knows them consecutive
    without a pass over them: 2 % of a warm 10^7 [fast] sweep, benchmarks/bench_sweep.py stages)."""
    for start in range(0, n, size):
        yield range(start, min(n, start + size))
