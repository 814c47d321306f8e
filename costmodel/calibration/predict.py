"""Predict measurement rows with the array engine: one vectorized call for a whole file.

Each row becomes one configuration (model, device, format, engine, workload); the metric
it names is read from the engine's output in the row's unit. Rows that cannot be scored
(unknown ids, configurations that do not fit, unsupported parallelism) are skipped with
the reason. Schema interpretation per engine:
  - llama.cpp splits a model across devices by layers (`--split-mode layer`): devices/tp
    pipeline stages, one replica;
  - otherwise devices/(tp) replicas serve independently (data/SCHEMA.md);
  - `batch = max` is maximum load: as many sequences as fit the KV memory and the engine's
    limit, each costing its share of prefill plus its decode steps (continuous batching).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from costmodel.spec.engine_params import engine_names
from costmodel.engine.columns import format_row, hardware_row, model_row, row_at
from costmodel.engine.evaluate import TIMING, finish, lower_all
from costmodel.engine.layout import check_layout
from costmodel.engine.memory import max_batch
from costmodel.errors import CostModelError
from costmodel.spec.formats import resolve_format
from costmodel.spec.hardware import resolve_hardware
from costmodel.calibration.measurements import METRICS, Measurement
from costmodel.spec.model_catalog import resolve_model

ENGINE_OF_FRAMEWORK = {"trt-llm": "trt-llm", "tensorrt-llm": "trt-llm", "vllm": "vllm", "sglang": "sglang",
                       "llama.cpp": "llama.cpp", "mlx": "mlx", "mlx-lm": "mlx", "mlc": "mlc", "numpy": "numpy", "torch": "torch", "ideal": "ideal",
                       # a vLLM fork (PygmalionAI/aphrodite-engine) that keeps vLLM's memory policy
                       "aphrodite": "vllm"}


@dataclass(frozen=True)
class RowSet:
    """Scorable rows with their engine columns gathered once (reused by the calibrator)."""

    rows: tuple  # Measurement objects that can be scored
    skipped: tuple  # (Measurement, reason)
    m: dict
    f: dict
    hw: dict
    work: dict  # batch, prompt, gen, context, tp, pp, replicas arrays
    families: tuple  # per row
    engines: tuple  # per row
    dtypes: tuple  # per row: datatype running the matmuls
    flags: dict = None  # hardware column -> per-row value given by the row (NaN: the engine's default)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def measured(self) -> np.ndarray:
        return self.masks["measured"]

    def metric_is(self, name: str) -> np.ndarray:
        masks = self.masks["metric"]
        return masks[name] if name in masks else np.zeros(len(self.rows), dtype=bool)

    @functools.cached_property
    def lowered(self):
        """The rows lowered with their own columns (engine/evaluate.lower_all), once per row set: a fit
        changes only columns the lowering never reads (UNLOWERED) and times it for each parameter vector."""
        return _lower(self, _with_flags(self, dict(self.hw)), self.f)

    @functools.cached_property
    def masks(self) -> dict:
        """Per-row masks, built once per row set (a fit evaluates it hundreds of times; read-only):
        {"metric": {name: mask}, "loaded" (closed or Poisson load), "capped" (N requests sent at once),
        "measured" (the values)}."""
        metrics = np.array([r.metric for r in self.rows], dtype=object)
        masks = {"metric": {m: metrics == m for m in set(metrics.tolist())},
                 "loaded": np.array([r.load_mode in ("closed", "poisson") for r in self.rows], dtype=bool),
                 "capped": np.array([r.load_mode == "offline" and r.batch > 0 for r in self.rows], dtype=bool),
                 "measured": np.array([r.value for r in self.rows], dtype=float)}
        for a in [*masks["metric"].values(), masks["loaded"], masks["capped"], masks["measured"]]:
            a.setflags(write=False)
        return masks


def engine_of(framework: str) -> str:
    """The engine (or engine/build, `llama.cpp/vulkan`) a row's framework names; 'ideal' if unknown."""
    from costmodel.spec.engine_params import split_engine

    from costmodel.errors import CostModelError
    from costmodel.spec.engine_params import resolve_engine

    base, build = split_engine(framework.strip().lower())
    eng = ENGINE_OF_FRAMEWORK.get(base, "ideal")
    if not build or eng == "ideal":
        return eng
    try:
        return resolve_engine(f"{eng}/{build}", "")  # build aliases: llama.cpp/hip is llama.cpp/rocm
    except CostModelError:
        return f"{eng}/{build}"  # reported by prepare as an unknown engine


def prepare(rows: list[Measurement], engine: str | None = None) -> RowSet:
    """Resolve every row; `engine` forces one engine's calibration for all rows."""
    from costmodel.spec.formats import plan_compute

    if engine:
        from costmodel.spec.engine_params import resolve_engine

        engine = resolve_engine(engine, "")  # an unknown --engine fails here with a suggestion
    keep, skipped = [], []
    known_engines = set(engine_names())
    memo: dict = {}  # column rows per distinct (model, device, format, kv format, engine)

    def rows_for(model, hw, fmt, kv, eng):
        key = (model.id, hw.id, fmt.id, kv.id if kv else None, eng)
        if key not in memo:
            memo[key] = (model_row(model), hardware_row(hw, eng), format_row(fmt, hw, kv, False, eng))
        return memo[key]

    mr, fr, hr, work = [], [], [], []
    fams, engs, dts = [], [], []
    for r in rows:
        try:
            model, _ = resolve_model(r.model)
            hw, _ = resolve_hardware(r.hardware)
            fmt, _ = resolve_format(r.format)
            kv = resolve_format(r.kv_format)[0] if r.kv_format else None
            eng = engine or engine_of(r.framework)
            if eng not in known_engines:
                raise CostModelError(f"unknown engine {eng!r}")
            plan = plan_compute(fmt, hw, engine=eng)
            tp = r.tp
            # a split deployment's columns are its decode workers' (predicted by _split_metrics, each side
            # at its own layout)
            devices = r.decode_workers * r.decode_tp if r.is_split else r.devices
            if devices % tp:
                raise CostModelError(f"devices {devices} is not a multiple of tp {tp}")
            check_layout(tp, r.dp, r.ep, model)
            if r.is_split:
                check_layout(r.prefill_tp, r.prefill_dp, r.prefill_ep, model)
            stages = devices // tp if eng == "llama.cpp" else 1
            replicas = 1 if eng == "llama.cpp" else devices // tp
            if (tp > 1 or stages > 1) and not hw.interconnect_bandwidth and eng != "llama.cpp":
                raise CostModelError(f"{hw.id} has no interconnect for tp {tp}")
            if r.metric == "prefill_tokens_per_s" and r.prompt_tokens == 0:
                raise CostModelError("prefill rate with 0 prompt tokens")
            if r.metric in ("decode_tokens_per_s", "tpot_ms") and model.is_encoder:
                raise CostModelError(f"{model.id} is an encoder: it has no decode")
            row_m, row_h, row_f = rows_for(model, hw, fmt, kv, eng)
            mr.append(row_m)
            hr.append(row_h)
            fr.append(row_f)
        except CostModelError as exc:
            skipped.append((r, str(exc)))
            continue
        gen = r.output_tokens if not model.is_encoder else 0
        if r.is_memory and r.devices != tp:
            skipped.append((r, "start-up memory is per device of one replica: devices must equal tp"))
            mr.pop(), hr.pop(), fr.pop()
            continue
        if r.metric == "throughput_tokens_per_s" and gen == 0:
            skipped.append((r, "throughput of generated tokens with 0 output tokens"))
            mr.pop(), hr.pop(), fr.pop()
            continue
        work.append((r.batch, r.prompt_tokens, max(gen, 1) if r.metric != "prefill_tokens_per_s" else gen,
                     r.context_tokens, tp, stages, replicas, r.dp, r.ep))
        keep.append(r)
        fams.append(hw.family)
        engs.append(eng)
        dts.append((plan.rate_of or (plan.dtype,))[0])
    stack = lambda rows_: {k: np.array([x[k] for x in rows_], dtype=float) for k in rows_[0]} if rows_ else {}  # noqa: E731
    w = np.array(work, dtype=float).reshape(-1, 9)
    names = ("batch", "prompt", "gen", "context", "tp", "pp", "replicas", "dp", "ep")
    flags = {"usable_memory_fraction": np.array([r.mem_fraction if r.mem_fraction else np.nan for r in keep]),
             "max_model_len": np.array([r.max_model_len if r.max_model_len else np.nan for r in keep]),
             "stream_interval": np.array([r.stream_interval if r.stream_interval else np.nan for r in keep])}
    return RowSet(tuple(keep), tuple(skipped), stack(mr), stack(fr), stack(hr),
                  {n: w[:, i] for i, n in enumerate(names)}, tuple(fams), tuple(engs), tuple(dts), flags)


def predict(rs: RowSet, hw_overrides: dict | None = None, f_overrides: dict | None = None,
            fast: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(predicted values in each row's unit, fits flag) for every scorable row. `fast`: time the row set's
    lowering with the compiled kernels (engine/fast.py; the same results), for a fit's many evaluations."""
    if not len(rs):
        return np.zeros(0), np.zeros(0, dtype=bool)
    hw = _with_flags(rs, {**rs.hw, **(hw_overrides or {})})
    f = {**rs.f, **(f_overrides or {})}
    w = rs.work
    if set(hw_overrides or {}) | set(f_overrides or {}) <= UNLOWERED:  # a fit's parameters: lowered once
        res = finish(rs.lowered, hw, f, fast)
    else:
        res = finish(_lower(rs, hw, f), hw, f, fast)
    met = dict(res.metrics)
    with np.errstate(divide="ignore", invalid="ignore"):  # rates a static or offline benchmark also reports
        met["request_throughput_per_s"] = met["throughput_tokens_per_s"] / w["gen"]
        met["total_throughput_tokens_per_s"] = met["throughput_tokens_per_s"] * (w["prompt"] + w["gen"]) / w["gen"]
    out = np.full(len(rs), np.nan)
    for name, sel in rs.masks["metric"].items():  # the metrics the rows measure
        engine_name, scale, _ = METRICS.get(name, (None, 1.0, None))
        if engine_name in met:
            out[sel] = np.asarray(met[engine_name])[sel] * scale
    fits = np.array(res.metrics["fits"], dtype=bool)  # a copy: the row set's lowering holds the metric's array
    loaded = rs.masks["loaded"]
    if loaded.any():
        _predict_loaded(rs, hw, f, np.where(loaded)[0], out, fits)
    devices = w["tp"] * w["pp"] * w["replicas"]
    for name in ("throughput_tokens_per_s_per_gpu", "total_throughput_tokens_per_s_per_gpu"):
        sel = rs.metric_is(name) & ~loaded
        base = met["throughput_tokens_per_s" if "total" not in name else "total_throughput_tokens_per_s"]
        out[sel] = (np.asarray(base) / devices)[sel]
    return out, fits


# columns the lowering never reads (engine/evaluate.TIMING; request_overhead_s only the serving model
# reads): overriding them reuses a row set's lowering
UNLOWERED = set(TIMING) | {"request_overhead_s"}


def _with_flags(rs: RowSet, hw: dict) -> dict:
    for name, given in (rs.flags or {}).items():  # a row's stated engine flags win
        if np.isfinite(given).any():
            hw[name] = np.where(np.isfinite(given), given, hw[name])
    return hw


def _lower(rs: RowSet, hw: dict, f: dict):
    w = rs.work
    return lower_all(rs.m, f, hw, _offline_batch(rs, f, hw), w["prompt"], w["gen"], w["context"], w["tp"], w["pp"],
                     w["replicas"], w["dp"], w["ep"])


def _offline_batch(rs: RowSet, f: dict, hw: dict) -> np.ndarray:
    """Batches to evaluate: N requests sent at once (load offline, batch = N) run as a saturated
    batch of min(N, the largest batch that fits and the engine admits), the throughput of
    continuous batching draining them; other rows keep theirs (-1: as many as fit)."""
    w = rs.work
    capped = rs.masks["capped"]
    if not capped.any():
        return w["batch"]
    fit = max_batch(rs.m, f, hw, w["prompt"], w["gen"], w["context"], w["tp"], w["pp"], w["dp"], w["ep"])
    return np.where(capped, np.maximum(np.minimum(w["batch"] / np.maximum(w["replicas"], 1.0), fit), 1.0),
                    w["batch"])


def loaded_replicas(rs: RowSet, hw: dict, f: dict, idx) -> dict:
    """{i: (ReplicaPerf, prompt Dist, gen Dist, replicas)} for loaded rows idx, None for a row whose
    lengths are not understood; the replicas' engine work in one call (serving.perfs_from_columns)."""
    from costmodel.engine.serving import ReplicaConfig, parse_dist, perfs_from_columns

    w = rs.work
    out: dict = {}
    configs, dists = [], []
    for i in idx:
        r = rs.rows[i]
        try:
            p = parse_dist(r.length_dist or None, max(r.prompt_tokens, 1), "prompt")
            g = parse_dist(r.length_dist or None, max(r.output_tokens, 2), "gen")
        except CostModelError:
            out[i] = None
            continue
        configs.append(ReplicaConfig(i, int(w["tp"][i]), int(w["pp"][i]), p, g, int(w["dp"][i]), int(w["ep"][i]),
                                     r.prefix_hit or 0.0))
        dists.append((i, p, g, max(1, int(w["replicas"][i]))))
    for (i, p, g, replicas), perf in zip(dists, perfs_from_columns(rs.m, f, hw, configs)):
        out[i] = (perf, p, g, replicas)
    return out


def loaded_replica(rs: RowSet, hw: dict, f: dict, i: int):
    """loaded_replicas of the one row i."""
    return loaded_replicas(rs, hw, f, [i])[i]


def _load_key(r) -> tuple:
    """What a loaded row's prediction depends on (rows with equal keys share it)."""
    key = (r.model, r.hardware, r.format, r.kv_format, r.devices, r.tp, r.dp, r.ep, r.batch,
           r.prompt_tokens, r.output_tokens, r.load_mode, r.request_rate, r.length_dist, r.mem_fraction,
           r.max_model_len, r.stream_interval, r.num_prompts, r.prefix_hit)
    if r.is_split:
        key = (key, r.prefill_workers, r.prefill_tp, r.prefill_dp, r.prefill_ep, r.decode_workers, r.decode_tp,
               r.decode_dp, r.decode_ep)
    return key


def _predict_loaded(rs: RowSet, hw: dict, f: dict, idx: np.ndarray, out: np.ndarray, fits: np.ndarray) -> None:
    """Rows measured under a closed or Poisson load: the serving model (engine/serving.py) on each
    configuration's columns, computed once per distinct configuration and load (the replicas' engine
    work for all of them in one call)."""
    from costmodel.engine.serving import closed, load_metrics, poisson

    w = rs.work
    keys = {i: (_load_key(rs.rows[i]), rs.engines[i]) for i in idx}
    cache: dict = {}
    first: dict = {}  # key -> the first row with it, for the unsplit rows the serving model computes
    for i in idx:
        r, key = rs.rows[i], keys[i]
        if key in cache or key in first:
            continue
        if r.is_split:
            cache[key] = _split_metrics(rs, hw, f, i)
        else:
            first[key] = i
    replicas = loaded_replicas(rs, hw, f, list(first.values()))
    for key, i in first.items():
        r = rs.rows[i]
        if replicas[i] is None:
            cache[key] = None
            continue
        perf, p, g, n_rep = replicas[i]
        tp, pp = int(w["tp"][i]), int(w["pp"][i])
        if r.load_mode == "closed":
            stats = closed(perf, r.batch / n_rep, perf.max_batch, prompts=r.num_prompts / n_rep if r.num_prompts else None)
        else:
            cap = perf.max_batch if r.batch < 1 else max(1, min(perf.max_batch, r.batch // n_rep))
            stats = poisson(perf, r.request_rate / n_rep, cap)
        got = load_metrics(stats, n_rep, p, g, stream_interval=float(hw["stream_interval"][i]))
        devices = tp * pp * n_rep
        got["throughput_tokens_per_s_per_gpu"] = got["throughput_tokens_per_s"] / devices
        got["total_throughput_tokens_per_s_per_gpu"] = got["total_throughput_tokens_per_s"] / devices
        cache[key] = got
    for i in idx:
        got = cache[keys[i]]
        engine_name, scale, _ = METRICS[rs.rows[i].metric]
        if got is None or engine_name not in got:
            out[i] = np.nan
        else:
            out[i] = got[engine_name] * scale
            fits[i] = True  # the load model admits what fits; the source ran it


def _split_metrics(rs: RowSet, hw: dict, f: dict, i: int) -> dict | None:
    """load_metrics of split row i: each side's replica from the row's columns at its own layout, the KV
    moving on the link engine.disagg.link_rate picks for the deployment's devices (None without one)."""
    from costmodel.engine.disagg import Side, kv_transfer_time, link_rate, split_closed, split_poisson
    from costmodel.engine.memory import kv_bytes_per_sequence
    from costmodel.engine.serving import load_metrics, parse_dist, perf_from_columns

    r = rs.rows[i]
    m, fc, hc = (row_at(d, i) for d in (rs.m, f, hw))
    try:
        p = parse_dist(r.length_dist or None, max(r.prompt_tokens, 1), "prompt")
        g = parse_dist(r.length_dist or None, max(r.output_tokens, 2), "gen")
    except CostModelError:
        return None
    sides = [(r.prefill_workers, r.prefill_tp, r.prefill_dp, r.prefill_ep),
             (r.decode_workers, r.decode_tp, r.decode_dp, r.decode_ep)]
    perfs = [perf_from_columns(m, fc, hc, tp, 1, p, g, dp=dp, ep=ep) for _, tp, dp, ep in sides]
    bw, _ = link_rate("auto", float(hc["scale_out"]), float(hc["interconnect"]), float(hc["domain"]), r.devices)
    if bw <= 0:
        return None
    tokens = max(1.0, float(round(p.mean)))
    kv = [float(np.asarray(kv_bytes_per_sequence(m, fc, tokens, tp / dp, 1.0, hc)).reshape(-1)[0])
          for _, tp, dp, _ in sides]
    t_kv = kv_transfer_time(kv[0], bw, kv[1], bw)
    pre, dec = Side(perfs[0], r.prefill_workers, kv[0] / bw), Side(perfs[1], r.decode_workers, kv[1] / bw)
    if r.load_mode == "closed":
        stats = split_closed(pre, dec, float(r.batch), perfs[1].max_batch, t_kv, prompts=r.num_prompts).stats
    else:
        cap = perfs[1].max_batch if r.batch < 1 else max(1, min(perfs[1].max_batch, r.batch // r.decode_workers))
        stats = split_poisson(pre, dec, r.request_rate, cap, t_kv).stats
    got = load_metrics(stats, 1, p, g, stream_interval=float(hc["stream_interval"]))
    got["throughput_tokens_per_s_per_gpu"] = got["throughput_tokens_per_s"] / r.devices
    got["total_throughput_tokens_per_s_per_gpu"] = got["total_throughput_tokens_per_s"] / r.devices
    return got


def with_rows(rs: RowSet, index) -> RowSet:
    """The subset of a RowSet at `index` (boolean mask or integer array)."""
    idx = np.arange(len(rs))[index]
    pick = lambda d: {k: v[idx] for k, v in d.items()}  # noqa: E731
    return replace(rs, rows=tuple(rs.rows[i] for i in idx), m=pick(rs.m), f=pick(rs.f), hw=pick(rs.hw),
                   flags=pick(rs.flags or {}),
                   work=pick(rs.work), families=tuple(rs.families[i] for i in idx),
                   engines=tuple(rs.engines[i] for i in idx), dtypes=tuple(rs.dtypes[i] for i in idx))
