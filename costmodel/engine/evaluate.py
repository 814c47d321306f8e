"""The array engine: columns + workload arrays -> metric arrays, one code path for all sizes.

  TTFT  = sum of prefill operator times + per-step overhead
  TPOT  = mean decode-step time over the generated context (exact for the piecewise-linear
          roofline), with batch/m sequences per step under pipeline parallelism
          (m = min(pp, batch) micro-batches in flight); with N draft tokens per step (MTP), the
          verification step of N + 1 tokens plus N draft passes over E(α, N) tokens
  e2e   = TTFT + (gen - 1) · TPOT
  throughput = replicas · batch · gen / e2e (static batch, prefill included)
  power        = TDP · (idle + (1 − idle) · u), u = busy fraction of the phase: the share of its time
                 that operators spend at their compute or memory roof (overheads count as idle)
  energy/token = devices · average power · e2e / output tokens
  $/Mtok = devices · $/h · e2e / output tokens (usd_per_million_tokens), or / (prompt + output) tokens
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from costmodel.engine import fast as compiled  # the [fast] kernels' wrappers (numba loads on first use)
from costmodel.engine.distinct import columns_at, distinct, distinct_codes, varies
from costmodel.engine.distinct import rows as rows_at
from costmodel.engine.elementwise import as_float, divide, maximum, where
from costmodel.engine.memory import GIB, Memory, SequenceMemory, batch_free_terms, batch_memory, batch_of, kv_pool, runs
from costmodel.engine.operators import OP_NAMES, Ops, lower
from costmodel.engine.phases import find_distinct, lower_phases
from costmodel.engine.roofline import OpTimes, op_times
from costmodel.engine.spec_keys import Spec, spec_of
from costmodel.engine.specialize import Specialized
from costmodel.engine.speculative import DEFAULT_ACCEPT, draft_pass, tokens_per_step, with_mtp_weights
from costmodel.engine.timeline import (TIMELINE, decode_rate, energy_per_token, prefill_rate, prefill_seconds, steps,
                                      throughput, timeline, usd_per_million_tokens)
from costmodel.engine.truth import any_nonzero


@dataclass(frozen=True)
class EngineResult:
    metrics: dict  # name -> array
    memory: Memory
    _detail: Callable  # () -> (prefill Ops, prefill OpTimes, decode Ops at the first step, decode per-op times)

    @cached_property
    def _full(self) -> tuple:
        return self._detail()

    @property
    def prefill_ops(self) -> Ops:
        return self._full[0]

    @property
    def prefill_times(self) -> OpTimes:
        return self._full[1]

    @property
    def decode_ops(self) -> Ops:  # at the first decode step
        return self._full[2]

    @property
    def decode_times(self) -> np.ndarray:  # per-operator mean over the decode
        return self._full[3]


def evaluate(m: dict, f: dict, hw: dict, batch, prompt, gen, context, tp, pp, replicas, dp=1.0,
             ep=1.0, mtp=0.0, accept=DEFAULT_ACCEPT, groups=None, fast=False, seq_groups=None,
             metrics=None, into: dict | None = None, valid=None, memory_into: dict | None = None,
             group_starts=None, prefill_starts=None) -> EngineResult:
    """Evaluate every configuration at once. `batch` < 0 means the largest batch that fits.
    `dp` attention data-parallel groups and `ep`-way expert parallelism split the `tp` ranks of a
    replica (operators.py); `batch` is the replica's. `mtp` draft tokens per decode step accepted
    at `accept` each make a decode step a verification of mtp + 1 tokens (speculative.py).
    `groups` (optional, 1-D like every column): rows with equal values have equal model, format and
    hardware columns; each phase is then lowered once per distinct input (phases.py), with the same
    results. `seq_groups` (optional, with `groups`): integer codes, rows with equal codes have equal groups,
    layout, drafts, prompt, gen, context and sign of `batch` (a grid builds them from its coordinates); the
    memory terms that do not depend on the batch are then evaluated once per code (distinct_codes), with
    the same results. `fast`: the phases timed by the compiled kernels (fast.py) where they apply, the
    same bits. `metrics`: the names of the metrics to compute (default: all of finish's). `into`: arrays, one
    per configuration, that the metrics of their names are written into (a sweep's result columns), NaN where
    a configuration is not `valid` (default: all are) or does not fit; where `into` holds every timed metric asked
    for, the others' phases may be another configuration's (lower_all's `read`), so a result's phase detail
    (EngineResult.prefill_ops, ...) holds only for the configurations written. `memory_into`: arrays, one per
    configuration, of fast.MEMORY_OUT's names (the batch, the largest batch, memory.Memory's fields and "total")
    that the memory stage writes those of their names into (a sweep's result columns), every configuration's.
    `group_starts` (optional, with `groups`): rows, rising from 0, among which is every row where the groups, tp, pp,
    dp, ep or mtp differ from the row before (a grid's chunk: where its outer axes' runs start), so the pool's
    distinct rows are searched among them alone (distinct.distinct's `starts`), with the same results.
    `prefill_starts` (optional, with `groups`): rows, rising from 0, among which is every row where the groups,
    layout, drafts, batch, prompt or context differ from the row before (a grid's chunk with no largest batch asked
    for and one context: where its prompt axis' runs start), so the prefill's distinct rows are searched among them
    alone, with the same results."""
    args = (batch, prompt, gen, context, tp, pp, replicas, dp, ep, mtp, accept)
    read = _read(metrics, into, valid) if fast else None
    shared = (groups, seq_groups, fast, read, memory_into, group_starts, prefill_starts)
    try:
        return finish(lower_all(m, f, hw, *args, *shared), hw, f, fast, metrics, into, valid)
    except ArithmeticError:  # Python floats over zero (elementwise.py): numpy's scalars give its inf or NaN
        m, f, hw, args = (numpy_scalars(x) for x in (m, f, hw, args))
        return finish(lower_all(m, f, hw, *args, *shared), hw, f, fast, metrics, into, valid)


def _written_memory(B, bmax, mem: Memory, into: dict) -> tuple:
    """(B, bmax, mem) with those of fast.MEMORY_OUT's names in `into` written into its arrays ("total": Memory.total),
    and those arrays in their place."""
    if "total" in into:
        into["total"][...] = mem.total
    values = dict(batch=B, max_batch=bmax, **{k: getattr(mem, k) for k in Memory.__dataclass_fields__})
    for k, v in values.items():
        if k in into:
            into[k][...] = v
            values[k] = into[k]
    return values.pop("batch"), values.pop("max_batch"), Memory(**values)


def _read(metrics, into: dict | None, valid):
    """lower_all's `read`: where `into` holds every metric asked for that needs the phases' times (_all_written),
    `valid` (True where None: every configuration), of which lower_all keeps those that fit (finish writes NaN at
    the others); else None (all)."""
    if not _all_written(metrics, into):
        return None
    return True if valid is None else valid


def _all_written(metrics, into: dict | None) -> bool:
    """`into` holds every metric of `metrics` that needs the phases' times (the others are UNTIMED)."""
    return into is not None and metrics is not None and set(metrics) <= set(into) | set(UNTIMED)


def numpy_scalars(x):
    """x with its Python floats as numpy float64 scalars (in a dict's values and a tuple's items)."""
    if type(x) is float:
        return np.float64(x)
    if isinstance(x, dict):
        return {k: np.float64(v) if type(v) is float else v for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(numpy_scalars(v) for v in x)
    return x


@dataclass(frozen=True)
class Lowered:
    """Everything of an evaluation that the roofline's efficiencies, peaks and overheads (TIMING) leave
    unchanged: memory, batches and the phases' operators. A calibration lowers its rows once and
    times them for every parameter vector (calibration/predict.py)."""

    m: dict
    memory: Memory
    phases: object  # phases.PhaseOps or SharedPhaseOps
    draft_ops: Ops | None  # a one-token decode step, with MTP drafting
    work: Mapping  # the workload arrays and the memory figures the metrics read (Later: some on first read)


# the columns only `finish` reads (roofline.op_times, the step overhead, speculative.draft_pass): changing
# them needs no new lowering (tests/engine/test_two_stage.py perturbs each)
TIMING = ("compute_efficiency", "memory_efficiency", "kernel_overhead_s", "compute_half_rows", "step_overhead_s",
          "peak_matmul")


def lower_all(m: dict, f: dict, hw: dict, batch, prompt, gen, context, tp, pp, replicas, dp=1.0, ep=1.0, mtp=0.0,
              accept=DEFAULT_ACCEPT, groups=None, seq_groups=None, fast=False, read=None,
              memory_into: dict | None = None, group_starts=None, prefill_starts=None) -> Lowered:
    """Stage one of `evaluate`: memory, the batch and both phases' operators (`fast`: a sweep's memory of its
    batches by the [fast] kernels where they apply, the same bits). `read` (optional, a mask or True): the
    configurations whose phase times are read where they fit; with `groups` and `fast`, the phases of the others
    may be another configuration's (phases.lower_phases' `keep`). `memory_into`, `group_starts`, `prefill_starts`:
    evaluate's."""
    prompt, gen, context, tp, pp, replicas, dp, ep = map(as_float, (prompt, gen, context, tp, pp, replicas, dp, ep))
    m = with_mtp_weights(m, mtp)  # drafting with the model's own MTP modules loads their weights
    spec = as_float(mtp)
    if groups is not None and (np.ndim(groups) != 1 or any(np.ndim(x) > 1 for x in (batch, prompt, gen, context, tp,
                                                                                    pp, dp, ep, spec))):
        groups = None  # distinct rows need one axis of configurations: evaluate each (the same results)
    if groups is None:
        pool = kv_pool(m, f, hw, tp, pp, dp, ep)
    else:  # one row per distinct (group, layout, MTP drafts: their weights): the pool's, and the phases' key
        pool, groups = _shared_pool(m, f, hw, tp, pp, dp, ep, spec, groups, fast, group_starts)  # pool at those rows
    requested = as_float(batch)
    if groups is None or not varies(requested):  # one batch: the terms' rows are every configuration's
        per_seq = _per_sequence(m, f, hw, prompt, gen, context, tp, pp, dp, ep, _held(requested, hw),
                                pool if groups is None else tuple(x[groups] for x in pool))
    else:  # a sweep's batches share their batch-free terms
        per_seq = _shared_per_sequence(m, f, hw, prompt, gen, context, tp, pp, dp, ep, requested, pool, groups,
                                       seq_groups, fast)
    got = compiled.memory(*per_seq["at_rows"], requested, memory_into) if fast and "at_rows" in per_seq else None
    if got is None:
        max_len = hw["max_model_len"]
        bmax = per_seq["bmax"]
        B = batch_of(requested, bmax)
        mem = batch_memory(per_seq["seq"], B, dp)
        fits = runs(mem.fits, B, max_len, per_seq["one_long"], mem.kv_pool)
        if memory_into:
            B, bmax, mem = _written_memory(B, bmax, mem, memory_into)
    else:
        B, bmax, mem, fits = got
    # evaluate times even where it does not fit (flagged by `fits`); the [fast] kernel on a sweep's rows
    Bc, Bd, c0, c1 = (compiled.steps(B, pp, context, prompt, gen) if fast else None) or steps(B, pp, context,
                                                                                                prompt, gen)
    n_dec = 1.0 + spec  # new tokens per sequence in a decode step (the drafts and the next one)
    keep = None if read is None or groups is None else read & fits
    phases = lower_phases(m, f, hw, Bc, prompt, context, Bd, n_dec, c0, c1, tp, pp, dp, ep, groups, fast, keep,
                          follows=True, starts=prefill_starts)  # groups: _shared_pool's, which fix pp and the drafts
    draft = lower(m, f, hw, Bd, 1.0, c0, tp, pp, decode=True, dp=dp, ep=ep) if any_nonzero(spec > 0) else None
    work = Later(dict(prompt=prompt, gen=gen, tp=tp, pp=pp, replicas=replicas, dp=dp, B=B, Bc=Bc, bmax=bmax,
                      fits=fits, spec=spec, accept=accept),
                 {k: (lambda k=k: per_seq[k]) for k in ("one_long", "full_len", "kv_tokens", "state")})  # few read
    return Lowered(m, mem, phases, draft, work)


def finish(lw: Lowered, hw: dict, f: dict, fast: bool = False, metrics=None, into: dict | None = None,
           valid=None) -> EngineResult:
    """Stage two of `evaluate`: the lowered operators timed on `hw` and `f`, and the metrics named in
    `metrics` (default: all; `fast`: the compiled kernels of fast.py time the phases and compute the
    timeline (timeline.py) where they apply, with the same results); those named in `into` written into its
    arrays, NaN where a configuration is not `valid` or does not fit (evaluate)."""
    m, mem, w = lw.m, lw.memory, lw.work
    prompt, gen, tp, pp, replicas, dp = w["prompt"], w["gen"], w["tp"], w["pp"], w["replicas"], w["dp"]
    B, Bc = w["B"], w["Bc"]
    keep = None if into is None else w["fits"] if valid is None else valid & w["fits"]
    detail = _written(lw, hw, f, metrics, into, keep) if fast else None  # the decode and WRITTEN's metrics
    written = detail is not None  # in one pass
    with np.errstate(divide="ignore", invalid="ignore"):
        if written:  # metrics holds only WRITTEN's and UNTIMED's
            done, line = {k: into[k] for k in compiled.WRITTEN}, (None,) * len(TIMELINE)
        else:
            done, line, detail = _timed(lw, hw, f, fast)
        prefill_s, tpot, e2e, out_tokens, power, per_token_s = line
        formulas = {  # each computed only where asked for (`metrics`)
            "ttft_s": lambda: prefill_s,
            "tpot_s": lambda: tpot,
            "prefill_tokens_per_s": lambda: prefill_rate(Bc, prompt, prefill_s),
            "decode_tokens_per_s": lambda: decode_rate(tpot),
            # llama-batched-bench's S_TG: generated tokens of all sequences per second of decode only
            "decode_aggregate_tokens_per_s": lambda: divide(replicas * Bc, tpot),
            "throughput_tokens_per_s": lambda: throughput(replicas, out_tokens, e2e),
            "e2e_latency_s": lambda: e2e,
            "energy_j_per_token": lambda: energy_per_token(tp, pp, power, per_token_s),
            "energy_j_per_query": lambda: tp * pp * power * e2e / Bc,
            "average_power_w": lambda: power,
            "usd_per_million_tokens": lambda: usd_per_million_tokens(tp, pp, hw["price_per_hour"], per_token_s),
            # the same dollars spread over every token processed (prompt + generated), as API prices mix them
            "usd_per_million_total_tokens": lambda: divide(tp * pp * hw["price_per_hour"] / 3600.0 * e2e,
                                                           Bc * (prompt + where(m["encoder"] > 0, 0.0, gen))) * 1e6,
            "batch": lambda: B,
            "max_batch": lambda: w["bmax"],
            "fits": lambda: w["fits"],
            "devices": lambda: tp * pp * replicas + 0 * B,
            # memory as engines print it at start-up (per device)
            "weights_gib": lambda: mem.weights / GIB,
            "kv_cache_gib": lambda: maximum(mem.kv_pool, 0.0) / GIB,
            "kv_cache_tokens": lambda: _shaped(w["kv_tokens"], mem.kv_pool),  # per configuration, as the pool
            # vLLM's "Maximum concurrency for N tokens per request": pool tokens / N; with recurrent
            # layers, the pool over one sequence's KV and state
            "max_concurrency": lambda: dp * where(m["rec_layers"] > 0,
                                                     divide(maximum(mem.kv_pool, 0.0), w["one_long"]),
                                                     divide(w["kv_tokens"], w["full_len"])),
            "state_bytes": lambda: B / dp * w["state"],
        }
        out = {k: done[k] if k in done else formulas[k]() for k in (formulas if metrics is None else metrics)}
        if into is not None and not written:
            for k in into:  # np.where(keep, x, NaN) written into the caller's array
                x = out[k] if k in out else done[k] if k in done else formulas[k]()
                into[k][...] = np.where(keep, np.asarray(x, dtype=float), np.nan)
                if k in out:
                    out[k] = into[k]
    return EngineResult(_numpy_values(out), mem, detail)


def _timed(lw: Lowered, hw: dict, f: dict, fast: bool) -> tuple:
    """finish's timing: (the metrics the [fast] kernels computed beyond timeline.TIMELINE, by name; TIMELINE's
    values; the phases' detail), by the kernels where they apply (`fast`), else numpy."""
    m, w = lw.m, lw.work
    pre_total, u_pre, dec_step, u_dec, detail = lw.phases.times(hw, f, fast)
    step = hw["step_overhead_s"]
    step_s = dec_step + step
    if lw.draft_ops is not None:  # N sequential draft passes, E(α, N) tokens per verified step
        draft = draft_pass(op_times(lw.draft_ops, hw, f).total, OP_NAMES, m, f, hw, w["tp"] / w["dp"])
        step_s = (step_s + w["spec"] * draft) / tokens_per_step(w["accept"], w["spec"])
    prompt = w["prompt"]
    args = (pre_total, step, step_s, u_pre, u_dec, prompt, w["gen"], w["Bc"], m["encoder"] > 0,
            hw["idle_power_fraction"], hw["tdp"])
    done = compiled.metrics(args, w["tp"], w["pp"], w["replicas"], hw["price_per_hour"]) if fast else None
    if done is None:
        prefill_s = prefill_seconds(pre_total, prompt, step)
        return {}, (prefill_s, *timeline(prefill_s, step_s, *args[3:])), detail
    return done, tuple(done.pop(k) for k in TIMELINE), detail


# the metrics that need no time of a phase: _written computes the others in its one pass
UNTIMED = ("batch", "max_batch", "fits", "devices", "weights_gib", "kv_cache_gib", "kv_cache_tokens",
           "max_concurrency", "state_bytes")


def _written(lw: Lowered, hw: dict, f: dict, metrics, into: dict | None, keep) -> Callable | None:
    """The decode's step and fast.WRITTEN's metrics written into `into` (NaN where not `keep`) by one compiled
    pass (fast.decode_metrics) where it applies: SharedPhaseOps timed by the [fast] kernels, no drafts, one
    number of replicas, `into` holding exactly those metrics and `metrics` none other but UNTIMED. Then the
    phases' detail (as times' fifth item), else None."""
    w = lw.work
    if not _all_written(metrics, into) or set(into) != set(compiled.WRITTEN) or lw.draft_ops is not None or \
            np.size(w["replicas"]) != 1:
        return None
    parts = lw.phases.compiled_parts(hw, f)
    if parts is None:
        return None
    pre_total, u_pre, attention, step, detail = parts
    ph = lw.phases
    hq = columns_at(hw, ph.q)
    at_p = (pre_total, u_pre, *(rows_at(w[k], ph.p) for k in ("prompt", "Bc", "tp", "pp")))
    at_q = (hq["step_overhead_s"], ph.at_q[0]["encoder"] > 0, hq["idle_power_fraction"], hq["tdp"],
            hq["price_per_hour"])
    compiled.decode_metrics(attention, *step, (ph.p_inv, np.arange(len(ph.p))), at_p, at_q, w["replicas"], w["gen"],
                            keep, into)
    return detail


class Later(Mapping):
    """A read-only mapping whose entries in `later` (key -> function of nothing) are computed when first read.
    A copy or a pickle is a plain dict with every entry computed."""

    __slots__ = ("_values", "_later")

    def __init__(self, values: dict, later: dict):
        self._values, self._later = dict(values), dict(later)

    def __getitem__(self, key):
        try:
            return self._values[key]
        except KeyError:
            value = self._values[key] = self._later.pop(key)()  # KeyError where neither holds it
            return value

    def __contains__(self, key) -> bool:
        return key in self._values or key in self._later

    def __iter__(self):
        return iter([*self._values, *self._later])

    def __len__(self) -> int:
        return len(self._values) + len(self._later)

    def __reduce__(self):
        return dict, (dict(self),)


def _shaped(x, like):
    """x with `like`'s shape (x + zeros: the same values)."""
    if type(x) is float and type(like) is float:  # an estimate's: np.shape of a number costs more than the rest
        return x
    return x if np.shape(x) == np.shape(like) else x + np.zeros(np.shape(like))


def _numpy_values(metrics: dict) -> dict:
    """The metrics as numpy values, however the engine computed them: one configuration's Python floats
    (elementwise.py) as float64 scalars, its Python bools as numpy's, so that what a caller computes with
    them divides as numpy does (inf or NaN over zero)."""
    return {k: np.float64(v) if type(v) is float else np.bool_(v) if type(v) is bool else v for k, v in metrics.items()}


def _per_sequence(m, f, hw, prompt, gen, context, tp, pp, dp, ep, held, pool) -> dict:
    """The memory stage's terms that do not depend on the batch: the largest batch, one sequence's memory
    (memory.SequenceMemory, holding `held` of its output), the longest sequence's KV, the pool in tokens
    and one sequence's recurrent state."""
    spec = spec_of(m, f, hw, tp, pp, dp, ep, "memory", prompt, gen, context, held, *pool)
    with np.errstate(divide="ignore", invalid="ignore"):
        if spec is None:
            t = batch_free_terms(m, f, hw, prompt, gen, context, tp, pp, dp, ep, held, *pool)
        else:  # an estimate's (Python floats): code compiled per spec (engine/specialize.py), the same bits
            t = _SPECIALIZED(spec, prompt, gen, context, held, *pool)
    return _per_sequence_dict(t)


def _batch_free_terms(spec: Spec, prompt, gen, context, held, pool, headroom) -> tuple:
    """memory.batch_free_terms at a Spec (spec_of's): what engine/specialize.py compiles per spec."""
    m, f, hw, tp, pp, dp, ep, _ = spec.args
    return batch_free_terms(m, f, hw, prompt, gen, context, tp, pp, dp, ep, held, pool, headroom)


_SPECIALIZED = Specialized(_batch_free_terms)


def _per_sequence_dict(t: tuple) -> dict:
    """_per_sequence's dict of memory.batch_free_terms."""
    return dict(bmax=t[0], seq=SequenceMemory(*t[1:8]), full_len=t[8], one_long=t[9], kv_tokens=t[10], state=t[11])


def _held(requested, hw: dict):
    """The share of its output a sequence's KV holds in memory.py's terms: the engine's reserve for the generation
    where the batch is the largest that fits (requested < 0), else all of it."""
    return where(requested < 0, hw["kv_reserved_gen_fraction"], 1.0)


def _shared_per_sequence(m, f, hw, prompt, gen, context, tp, pp, dp, ep, requested, pool, groups, codes=None,
                         fast=False) -> Mapping:
    """_per_sequence once per distinct (group, prompt, gen, context, held): a sweep's batches share it
    (`groups` fix the layout: _shared_pool's index, `pool` its pool at its rows), or once per code of `codes`
    (evaluate's seq_groups, which fix the sign of the `requested` batch: `held` taken at the codes' rows alone);
    `fast`: by the [fast] kernel where it applies (fast.batch_free), the same bits."""
    g = np.asarray(groups)
    prompt, gen, context, tp, pp, dp, ep = (np.broadcast_to(np.asarray(x, dtype=float), g.shape)
                                            for x in (prompt, gen, context, tp, pp, dp, ep))
    if codes is None:
        u, inv = distinct(g, prompt, gen, context, np.broadcast_to(np.asarray(_held(requested, hw), dtype=float),
                                                                   g.shape))
    else:
        u, inv = (compiled.code_groups(codes) if fast else None) or distinct_codes(codes)
    at = (columns_at(m, u), columns_at(f, u), columns_at(hw, u))
    held = _held(np.broadcast_to(requested, g.shape)[u], at[2])  # at the rows u only
    rows = (prompt[u], gen[u], context[u], tp[u], pp[u], dp[u], ep[u], held)
    pool_u = tuple(x[g[u]] for x in pool)  # the pool at the rows u (`pool` at _shared_pool's rows, row g's)
    terms = compiled.batch_free(*at, len(u), *rows, *pool_u) if fast else None
    got = _per_sequence(*at, *rows, pool_u) if terms is None else _per_sequence_dict(terms)

    def back(x):
        return np.broadcast_to(x, u.shape)[inv]

    seq = got["seq"]
    later = {k: (lambda v=v: back(v)) for k, v in got.items() if k != "seq"}  # gathered where read
    later["seq"] = lambda: SequenceMemory(*(back(getattr(seq, k)) for k in SequenceMemory.__dataclass_fields__))
    at_rows = dict(got, dp=rows[5], max_len=at[2]["max_model_len"], read=len(u))  # what fast.memory reads there
    return Later({"at_rows": (at_rows, inv)}, later)


def _shared_pool(m, f, hw, tp, pp, dp, ep, spec, groups, fast=False, starts=None) -> tuple:
    """(kv_pool once per distinct (group, layout, MTP drafts), as (pool, headroom) at those rows; the index of each
    row's (group, layout, drafts): its row of them).
    The drafts are in the key because drafting loads the model's MTP weights (with_mtp_weights). `fast`: by the
    [fast] kernel where it applies (fast.pools), the same bits. `starts`: evaluate's group_starts."""
    g = np.asarray(groups)
    tp, pp, dp, ep, spec = (np.broadcast_to(np.asarray(x, dtype=float), g.shape) for x in (tp, pp, dp, ep, spec))
    d, inv = find_distinct(fast, g, tp, pp, dp, ep, spec, starts=starts)
    at, rows = (columns_at(m, d), columns_at(f, d), columns_at(hw, d)), (tp[d], pp[d], dp[d], ep[d])
    got = compiled.pools(*at, len(d), *rows) if fast else None
    pool, headroom = kv_pool(*at, *rows) if got is None else got
    return (np.broadcast_to(pool, d.shape), np.broadcast_to(headroom, d.shape)), inv
