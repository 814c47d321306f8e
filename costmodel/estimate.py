"""`estimate()`: the library entry point behind `costmodel estimate` and `explain`.

Resolves ids (aliases, YAML or config.json paths), validates the workload, gathers the
columns and calls the array engine once: a single estimate is a sweep of size one.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from costmodel.spec.catalog import one_catalogue_state
from costmodel.spec.engine_params import PARAMS, Efficiency, efficiency_for
from costmodel.engine.columns import format_row, hardware_row, model_row, numbers, scalars
from costmodel.engine.evaluate import EngineResult, evaluate
from costmodel.engine.layout import COLLECTIVES, check_layout, layout_summary
from costmodel.spec.parameters import mtp_param_count, param_breakdown
from costmodel.engine.speculative import DEFAULT_ACCEPT, alpha_for_length, tokens_per_step
from costmodel.errors import DoesNotFitError, WorkloadError
from costmodel.spec.formats import ComputePlan, Format, plan_compute, resolve_format
from costmodel.spec.hardware import Hardware, resolve_hardware
from costmodel.spec.memo import by_identity
from costmodel.spec.model import Model, vision_encoder
from costmodel.spec.model_catalog import resolve_model
from costmodel.engine.operators import OP_NAMES, UNIT_NAMES
from costmodel.engine.roofline import BOUND_NAMES, bound_of

DEFAULT_PROMPT = 512  # llama-bench's pp512
DEFAULT_GEN = 128  # llama-bench's tg128


@dataclass(frozen=True)
class Workload:
    batch: int | str = 1  # or "max"
    prompt: int = DEFAULT_PROMPT
    gen: int = DEFAULT_GEN
    context: int = 0
    tp: int = 1
    pp: int = 1
    devices: int | None = None  # total; replicas = devices / (tp·pp)
    dp: int = 1  # attention data-parallel groups within the tp ranks of a replica
    ep: int = 1  # expert-parallel degree within them
    mtp: int = 0  # draft tokens per decode step (multi-token prediction / a draft head)
    accept: float = DEFAULT_ACCEPT  # acceptance rate of each draft token

    @property
    def replicas(self) -> int:
        return (self.devices or self.tp * self.pp) // (self.tp * self.pp)


def _as_int(name: str, value, minimum: int) -> int:
    if type(value) is int and value >= minimum:  # most calls (not a bool: its type is bool)
        return value
    if isinstance(value, bool):
        raise WorkloadError(f"--{name} {value}: expected an integer >= {minimum}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise WorkloadError(f"--{name} {value}: expected an integer >= {minimum}") from None
    if not as_float.is_integer() or as_float < minimum:
        raise WorkloadError(f"--{name} {value}: expected an integer >= {minimum}")
    return int(as_float)


MAX_BATCH = 10_000_000  # sequences of a static batch, as cli/checks.py bounds --prompt (1e30 gave 'needs 7.8e28 GiB')


def validate_workload(w: Workload, model: Model, hw: Hardware) -> tuple[Workload, list[str]]:
    """Check ranges and parallelism against the model and device; returns notes for the user."""
    notes = []
    batch = w.batch
    if isinstance(batch, str) and batch.strip().lower() == "max":
        batch = "max"
    else:
        try:
            whole = _as_int("batch", batch, 1)
        except WorkloadError:
            whole = None
        if whole is None or whole > MAX_BATCH:
            raise WorkloadError(f"--batch {batch}: expected an integer from 1 to {MAX_BATCH:,} or 'max'")
        batch = whole
    prompt = _as_int("prompt", w.prompt, 0)
    gen = _as_int("gen", w.gen, 0)
    context = _as_int("context", w.context, 0)
    tp = _as_int("tp", w.tp, 1)
    pp = _as_int("pp", w.pp, 1)
    devices = _as_int("devices", w.devices if w.devices is not None else tp * pp, 1)
    if devices % (tp * pp):
        raise WorkloadError(f"--devices {devices} is not a multiple of tp x pp = {tp * pp}")
    if model.backbone and (tp > 1 or pp > 1):
        raise WorkloadError(f"--tp {tp} --pp {pp}: {model.id} is a vision backbone, costed on one device per "
                            f"replica (use --devices N for replicas)")
    dp, ep = check_layout(tp, _as_int("dp", w.dp, 1), _as_int("ep", w.ep, 1), model)
    domain = hw.scale_up_domain
    if domain and tp > domain:
        link = (f"the {hw.scale_out_bandwidth / 1e9:g} GB/s scale-out link per device" if hw.scale_out_bandwidth
                else "the scale-up rate (its spec states no scale-out link: optimistic)")
        notes.append(f"--tp {tp} spans {math.ceil(tp / domain)} scale-up domains of {domain:g} {hw.id}: collectives "
                     f"crossing them run at {link}")
    if ep > 1 and model.moe.experts % ep:
        slots = -(-model.moe.experts // ep)
        notes.append(f"--ep {ep} does not divide the {model.moe.experts} experts of {model.id}: each rank holds "
                     f"{slots} expert slots, {slots * ep - model.moe.experts} of them in all redundant copies "
                     f"(as SGLang's --ep-num-redundant-experts / DeepSeek's EPLB place them)")
    if pp > max(model.layers, 1):
        raise WorkloadError(f"--pp {pp} exceeds the {model.layers} layers of {model.id}")
    if (tp > 1 or pp > 1) and not hw.interconnect_bandwidth:
        raise WorkloadError(f"{hw.id} has no device interconnect in its spec: use --tp 1 --pp 1 "
                            f"(replicas via --devices still work)")
    if model.is_encoder:
        if prompt < 1:
            raise WorkloadError(f"--prompt must be >= 1 for the encoder {model.id}")
        if gen:
            notes.append(f"{model.id} is an encoder: --gen {gen} ignored (one forward pass)")
            gen = 0
    elif prompt + gen < 1:
        raise WorkloadError("--prompt and --gen are both 0: nothing to run")
    limit = model.max_position_embeddings
    if limit and context + prompt + gen > limit:
        notes.append(f"context {context + prompt + gen} tokens exceeds {model.id}'s "
                     f"max_position_embeddings ({limit})")
    mtp, accept = _speculation(w.mtp, w.accept, notes)
    if mtp and model.is_encoder:
        raise WorkloadError(f"--mtp {mtp}: {model.id} is an encoder (nothing to decode)")
    return Workload(batch, prompt, gen, context, tp, pp, devices, dp, ep, mtp, accept), notes


def _speculation(mtp, accept, notes: list) -> tuple[int, float]:
    """(draft tokens, acceptance rate) checked; `accept` may be ('length', L), a measured acceptance
    length (mean tokens per step), converted to the rate that gives it."""
    n = _as_int("mtp", mtp, 0)
    if n > 32:
        raise WorkloadError(f"--mtp {n}: expected at most 32 draft tokens per step")
    if isinstance(accept, tuple):
        length = accept[1]
        if not (isinstance(length, (int, float)) and not isinstance(length, bool) and math.isfinite(length)
                and 1 <= length <= n + 1):
            raise WorkloadError(f"--accept-length {length}: expected the mean tokens per decode step, between 1 and "
                                f"--mtp + 1 = {n + 1}")
        accept = alpha_for_length(float(length), n)
        notes.append(f"--accept-length {length:g} with --mtp {n}: acceptance rate {accept:.3f} per draft token")
    if not (isinstance(accept, (int, float)) and not isinstance(accept, bool) and math.isfinite(accept)
            and 0 <= accept <= 1):
        raise WorkloadError(f"--accept-rate {accept}: expected a fraction in [0, 1]")
    return n, float(accept)


@dataclass(frozen=True, repr=False)
class Estimate:
    """One configuration's metrics, memory and the assumptions behind them."""

    model: Model
    hardware: Hardware
    format: Format
    kv_format: Format | None
    plan: ComputePlan
    efficiency: Efficiency
    workload: Workload
    result: EngineResult
    notes: tuple = ()
    resolved: dict = field(default_factory=dict)  # alias -> id

    def __repr__(self) -> str:
        w = self.workload
        head = (f"<Estimate {self.model.id} on {w.tp * w.pp} x {self.hardware.id} in {self.format.id}, "
                f"batch {self.batch}, prompt {w.prompt}, gen {w.gen}")
        if not self.fits:
            return head + ": does not fit>"
        return (head + f": TTFT {self.metric('ttft_s') * 1e3:.4g} ms, TPOT {self.metric('tpot_s') * 1e3:.4g} ms, "
                f"{self.metric('throughput_tokens_per_s'):,.0f} tok/s, "
                f"{self.memory_dict()['total_bytes'] / 2**30:.3g} GiB/device>")

    def metric(self, name: str) -> float:
        """One metric's value by its name (`ttft_s`, `tpot_s`, ...); an unknown name suggests the nearest."""
        metrics = self.result.metrics
        if name not in metrics:
            from costmodel.errors import UnknownIdError, suggest

            hint = suggest(str(name), list(metrics))
            raise UnknownIdError(f"unknown metric {name!r}" + (f"; did you mean '{hint[0]}'?" if hint else "")
                                 + f" (known: {', '.join(sorted(metrics))})")
        return float(np.asarray(metrics[name]).reshape(-1)[0])

    @property
    def fits(self) -> bool:
        return bool(np.asarray(self.result.metrics["fits"]).reshape(-1)[0])

    @property
    def batch(self) -> int:
        return int(self.metric("batch"))

    def memory_dict(self) -> dict:
        mem = self.result.memory
        get = lambda a: float(np.asarray(a).reshape(-1)[0])  # noqa: E731
        return {"weights_bytes": get(mem.weights), "kv_cache_bytes": get(mem.kv_cache),
                "activation_bytes": get(mem.activations), "reserve_bytes": get(mem.reserve),
                "total_bytes": get(mem.total), "capacity_bytes": get(mem.capacity),
                "kv_pool_bytes": max(get(mem.kv_pool), 0.0), "fits": self.fits,
                "kv_cache_tokens": self.metric("kv_cache_tokens"),
                "max_concurrency": self.metric("max_concurrency"),
                "recurrent_state_bytes": self.metric("state_bytes")}

    @property
    def calibration_level(self) -> str:
        """'device', 'family', 'engine' or 'uncalibrated' (Efficiency.calibration_level)."""
        return self.efficiency.calibration_level(self.hardware.id, self.hardware.family)

    @property
    def calibration_case(self) -> str:
        """Which case the estimate is in, in words; its intervals widen with it (calibration/intervals.py)."""
        e, level = self.efficiency, self.calibration_level
        return {"uncalibrated": "uncalibrated engine: datasheet roofline with sourced defaults",
                "device": "calibrated on this device",
                "family": f"calibrated on its family ({self.hardware.family}), not this device",
                "engine": f"{e.engine} calibrated, but not on this device family"}[level]

    @property
    def layout_calibration(self) -> str:
        """Whether the parallel layout's own terms were fitted: TP/PP layouts are; expert parallelism
        and DP attention are scored against their rows but not fitted (their intervals widen)."""
        w = self.workload
        if w.dp == 1 and w.ep == 1:
            return "calibrated (tensor/pipeline parallel)"
        return ("uncalibrated layout (EP / DP attention: scored against published rows, not fitted; "
                "intervals united with those rows' band)")

    def memory_policy(self) -> str:
        """The engine's rule for its KV pool, in words (engine/memory.py)."""
        e = self.efficiency
        basis = "free after weights" if e.kv_pool_of_free else "total"
        return (f"KV pool {e.usable_memory_fraction:g} x {basis}; runtime {e.runtime_overhead_bytes / 2**30:.3g} GiB; "
                f"{e.kv_block_tokens:g}-token blocks")

    def to_dict(self) -> dict:
        """Plain-Python view for --json (SI units; NaN becomes None)."""
        def clean(x):
            return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x

        names = ("ttft_s", "tpot_s", "prefill_tokens_per_s", "decode_tokens_per_s", "throughput_tokens_per_s",
                 "e2e_latency_s", "energy_j_per_token", "energy_j_per_query", "average_power_w",
                 "usd_per_million_tokens", "usd_per_million_total_tokens")
        w = self.workload
        out = {
            "model": self.model.id, "hardware": self.hardware.id, "format": self.format.id,
            "kv_format": self.kv_format.id if self.kv_format else None,
            "compute_unit": self.plan.label, "emulated": self.plan.emulated,
            "engine": self.efficiency.engine, "calibration": list(self.efficiency.levels),
            "calibration_case": self.calibration_case, "calibration_level": self.calibration_level,
            "layout_calibration": self.layout_calibration,
            **{n: clean(self.metric(n)) for n in names},
            "batch": self.batch, "batch_requested": w.batch, "max_batch": clean(self.metric("max_batch")),
            "prompt": w.prompt, "gen": w.gen, "context": w.context, "tp": w.tp, "pp": w.pp,
            "devices": w.devices, "replicas": w.replicas, "dp": w.dp, "ep": w.ep,
            "speculative": ({"draft_tokens": w.mtp, "accept_rate": w.accept,
                             "tokens_per_step": float(tokens_per_step(w.accept, w.mtp))} if w.mtp else None),
            "layout": self.layout(),
            "vision": self.result.metrics.get("vision"),
            "memory": self.memory_dict(),
            "memory_policy": self.memory_policy(),
            "assumptions": {
                "weight_bits": self.format.weight_bits, "activation_bits": self.plan.activation_bits,
                "kv_bits": self.kv_format.weight_bits if self.kv_format else self.format.kv_bits,
                **{p: getattr(self.efficiency, p) for p in PARAMS},
            },
            "kwh_per_million_tokens": clean(self.metric("energy_j_per_token") * 1e6 / 3.6e6),
            **({"gco2_per_million_tokens": clean(self.metric("gco2_per_million_tokens")),
                "gco2_per_query": clean(self.metric("gco2_per_query"))}
               if "gco2_per_query" in self.result.metrics else {}),
            "interval": self.intervals(),
            "resolved": dict(self.resolved),
            "notes": list(self.notes),
        }
        return out

    def layout(self) -> dict:
        """The parallel layout of one replica and the time its collectives take per step
        (engine/layout.py `layout_summary`; with --mtp a decode step is one verified step of E tokens)."""
        w, r = self.workload, self.result
        step = None if self.model.is_encoder else (
            float(np.asarray(self.metric("tpot_s")).reshape(-1)[0]) * float(tokens_per_step(w.accept, w.mtp)))
        out = layout_summary(w.tp, w.dp, w.ep, self.batch, r.decode_times, step)
        pre = np.asarray(r.prefill_times.total).reshape(len(OP_NAMES), -1)[:, 0]
        out.update(devices_per_replica=w.tp * w.pp, pp=w.pp,
                   prefill_comm_s={n: float(pre[OP_NAMES.index(n)]) for n in COLLECTIVES})
        return out

    def intervals(self) -> dict:
        """Low/high of each headline metric from the calibration residuals that apply."""
        from costmodel.calibration.intervals import HEADLINE, interval

        out, bases = {}, {}
        for name in HEADLINE:
            iv = interval(name, self.metric(name), self.efficiency.engine, self.hardware.family,
                          self.calibration_level, layout=self.workload.dp > 1 or self.workload.ep > 1)
            if iv:
                out[name] = {"low": iv["low"], "high": iv["high"]}
                bases[name] = iv["basis"].partition(": engine")
        files = dict.fromkeys(b[0] for b in bases.values())  # one calibration file's residuals, or several
        if bases:
            out["basis"] = "; ".join(files)
            out["groups"] = {name: (b[0] + ": " if len(files) > 1 else "") + "engine" + b[2] for name, b in bases.items()}
        return out

    def explain(self) -> list[dict]:
        """Per-operator rows for prefill and decode: FLOPs on the operator's unit, FP32 vector FLOPs beside them
        (dequantization, Mamba-1's scan: `vector_flops`), bytes, intensity (of the unit's FLOPs, or of the vector
        work where that is all the operator does), bound, time share."""
        rows = []
        r = self.result
        phases = [("prefill", r.prefill_ops, r.prefill_times.total, bound_of(r.prefill_times))]
        if not self.model.is_encoder:
            from costmodel.engine.roofline import op_times

            _, fc, hc = columns_for(self)
            d_t = op_times(r.decode_ops, hc, fc)
            phases.append(("decode", r.decode_ops, r.decode_times, bound_of(d_t)))
        for phase, ops, times, bounds in phases:
            times = np.asarray(times).reshape(len(OP_NAMES), -1)[:, 0]
            total = times.sum()
            for i, name in enumerate(OP_NAMES):
                fl = float(np.asarray(ops.flops[i]).reshape(-1)[0])
                vec = float(np.asarray(ops.dequant_flops[i]).reshape(-1)[0])
                by = float(np.asarray(ops.bytes[i]).reshape(-1)[0])
                launches = float(np.asarray(ops.launches[i]).reshape(-1)[0])
                if launches == 0 and fl == 0 and by == 0 and vec == 0:
                    continue
                work = fl if fl else vec  # an operator whose work is all FP32 vector work (Mamba-1's scan) shows it
                rows.append({
                    "phase": phase, "op": name, "unit": UNIT_NAMES[int(ops.units[i])],
                    "flops": fl, "vector_flops": vec, "bytes": by,
                    "weight_bytes": float(np.asarray(ops.weight_bytes[i]).reshape(-1)[0]),
                    "kv_bytes": float(np.asarray(ops.kv_bytes[i]).reshape(-1)[0]),
                    "intensity": work / by if by else None,
                    "bound": BOUND_NAMES[int(np.asarray(bounds[i]).reshape(-1)[0])],
                    "time_s": float(times[i]), "share": float(times[i] / total) if total else 0.0,
                })
        return rows


def columns_for(e: Estimate) -> tuple[dict, dict, dict]:
    """(model, format, hardware) columns of an estimate as numpy scalars, to evaluate many workloads in one call."""
    return tuple(scalars(c) for c in _spec_columns(e.model, e.hardware, e.format, e.kv_format, False, e.efficiency))


@by_identity()
def _spec_columns(m: Model, h: Hardware, f: Format, kv: Format | None, native_only: bool, eff) -> tuple:
    """(model, format, hardware) columns as Python floats, once per spec objects and engine parameters: `eff` is
    efficiency_for's object for the calibration tables' state (a new one when they change), or a new one with a
    user's flags applied. Python floats: the engine's arithmetic on them costs a quarter of numpy's scalars'
    (engine/elementwise.py), and evaluate repeats on numpy's where a Python float division by zero raises. The dicts
    are shared by every estimate of the spec, so nothing writes into them (a caller changes a copy); being the same
    objects each call, their keys for code compiled per spec (engine/spec_keys.py) are remembered."""
    return (numbers(model_row(m)), numbers(format_row(f, h, kv, native_only, eff.engine)),
            numbers(hardware_row(h, eff.engine, eff)))


@one_catalogue_state
def estimate(model: str | Model, hw: str | Hardware, fmt: str | Format = "bf16", *, kv_fmt: str | None = None,
             batch: int | str = 1, prompt: int | None = None, gen: int = DEFAULT_GEN, context: int = 0,
             tp: int | None = None, pp: int = 1, devices: int | None = None, native_only: bool = False,
             engine: str | None = "auto", kv_predict: str | None = None, output_reduction: float = 0.0,
             grid_gco2_per_kwh: float | None = None, mem_fraction: float | None = None,
             max_model_len: int | None = None, kv_block_size: int | None = None, dp: int = 1,
             ep: int = 1, expert_imbalance: float | None = None, mtp: int = 0, accept_rate: float | None = None,
             accept_length: float | None = None, overlap_comm: bool | None = None,
             allreduce: str | None = None, images: int = 0, image_size: str | tuple | None = None,
             visual_tokens: int | None = None, prefix_hit: float | None = None) -> Estimate:
    """Estimate one configuration. Ids may be aliases (`llama-70b`, `h100`) or spec paths.

        >>> e = costmodel.estimate("llama-70b", "h100", "w4a16", batch=8, prompt=1024, gen=256)
        >>> e.metric("tpot_s"), e.to_dict()["memory"]["fits"], e.intervals()

    `prompt` defaults to 512 tokens (llama-bench's pp512), or to one image's tokens for a ViT.
    `engine` selects the calibration ('auto': the device family's default engine).
    `kv_predict` names an auxiliary model whose prefill + KV projection replaces the base prefill
    (KV Prediction); `output_reduction` R scales generated tokens by 1 − R (early exit, effort
    control); `grid_gco2_per_kwh` adds grams of CO2 from the energy. `mem_fraction`,
    `max_model_len` and `kv_block_size` override the engine's memory policy as its own flags would
    (vLLM --gpu-memory-utilization, SGLang --mem-fraction-static, TensorRT-LLM
    free_gpu_memory_fraction; --max-model-len; --block-size / tokens_per_block / page size).
    `tp` devices serve one replica (default: 1, or the larger of `dp` and `ep`); `dp` splits them into
    attention data-parallel groups and `ep` shards the experts over them (check_layout);
    `expert_imbalance` is the busiest EP rank's routed tokens over the mean (default: the engine's).
    `mtp` draft tokens per decode step (DeepSeek MTP, EAGLE) are accepted at `accept_rate` each
    (default 0.875, DeepSeek-V3's report) or give a measured `accept_length` tokens per step.
    `overlap_comm` hides collectives under compute (SGLang's two-batch overlap; default: the engine's);
    `allreduce` 'nvls' uses the fabric's in-switch reduction where the device states its gain.
    `images` per request of `image_size` ('WxH' pixels, default the tower's native size) run a VLM's
    vision tower and add their visual tokens (or `visual_tokens` per image) to the prompt.
    `prefix_hit` is the share of each prompt already in the KV cache (prefix caching): those tokens
    are read as context, not prefilled.
    """
    resolved = {}

    def res(value, resolver, given, name, kind):
        if isinstance(value, str):
            obj, alias_of = resolver(value)
            if alias_of:
                resolved[given] = alias_of
            return obj
        if not isinstance(value, kind):  # None, a number: a clear error, not an AttributeError deep inside
            raise WorkloadError(f"{name} {value!r}: expected a catalogue id (a str) or a {kind.__name__}")
        return value

    m = res(model, resolve_model, model if isinstance(model, str) else "", "model", Model)
    h = res(hw, resolve_hardware, hw if isinstance(hw, str) else "", "--hw", Hardware)
    f = res(fmt, resolve_format, fmt if isinstance(fmt, str) else "", "--fmt", Format)
    kv = res(kv_fmt, resolve_format, kv_fmt, "--kv-fmt", Format) if kv_fmt else None
    if prompt is None:
        prompt = m.vision_tokens or DEFAULT_PROMPT
    vision = _vision_workload(m, images, image_size, visual_tokens)
    if vision and not m.cross_layers:  # cross-attention models attend to them instead (engine/operators.py)
        prompt = _as_int("prompt", prompt, 0) + vision["images"] * vision["visual_tokens_per_image"]
    if not 0 <= output_reduction < 1:
        raise WorkloadError(f"--output-reduction {output_reduction}: expected a fraction in [0, 1)")
    if grid_gco2_per_kwh is not None and grid_gco2_per_kwh < 0:
        raise WorkloadError(f"--grid-gco2-per-kwh {grid_gco2_per_kwh}: expected a non-negative intensity")
    reduction_note = None
    if output_reduction:
        reduced = int(round(_as_int("gen", gen, 0) * (1 - output_reduction)))
        reduction_note = f"--output-reduction {output_reduction:g}: {gen} generated tokens -> {reduced}"
        gen = reduced
    if tp is None:
        tp = math.lcm(_as_int("dp", dp, 1), _as_int("ep", ep, 1))
    if accept_rate is not None and accept_length is not None:
        raise WorkloadError("--accept-rate and --accept-length: give one (the length is E(rate, --mtp))")
    accept = ("length", accept_length) if accept_length is not None else (
        DEFAULT_ACCEPT if accept_rate is None else accept_rate)
    if (accept_rate is not None or accept_length is not None) and not mtp:
        raise WorkloadError("--accept-rate / --accept-length apply to draft tokens: give --mtp N too")
    w, notes = validate_workload(Workload(batch, prompt, gen, context, tp, pp, devices, dp, ep, mtp, accept), m, h)
    if w.context + w.prompt < 1 and w.gen > 0 and not vision:  # the first token is predicted from what precedes it
        raise WorkloadError(f"--prompt 0 with --gen {w.gen}: a generated token needs at least one token or image "
                            f"before it (a prompt of 1 is the start-of-sequence token alone)")
    if reduction_note:
        notes.append(reduction_note)
    if w.mtp:
        mtp_params = mtp_param_count(m)
        notes.append(f"--mtp {w.mtp}: " + (f"the model's {m.mtp_layers} multi-token-prediction module(s) "
                                           f"({mtp_params / 1e9:.3g}B parameters) load beside its weights"
                                           if mtp_params else
                                           f"{m.id} has no MTP module in its spec: a draft head's or draft model's "
                                           f"weights are not counted"))
    if max_model_len is not None and w.context + w.prompt + w.gen > _as_int("max-model-len", max_model_len, 1):
        raise WorkloadError(f"--max-model-len {max_model_len}: shorter than a request's {w.context + w.prompt + w.gen:,} "
                            f"tokens (context + prompt + gen), which the engine would refuse; raise it or shorten "
                            f"the request")
    if max_model_len is not None and m.max_position_embeddings and int(max_model_len) > m.max_position_embeddings:
        notes.append(f"--max-model-len {int(max_model_len):,} exceeds {m.id}'s max_position_embeddings "
                     f"({m.max_position_embeddings:,}), from which engines derive their own limit: the KV pool is "
                     f"sized for it as given")
    eff = with_memory_flags(efficiency_for(h.id, h.family, engine, f.engine, h), mem_fraction, max_model_len,
                            kv_block_size, expert_imbalance, overlap_comm, allreduce)
    plan = plan_compute(f, h, native_only, eff.engine)
    if plan.emulated or plan.engine_path:
        notes.append(plan.note)
    if expert_imbalance is not None and w.ep == 1:
        notes.append(f"--expert-imbalance {expert_imbalance:g}: applies to expert parallelism (--ep > 1); ignored")
    if eff.allreduce_nvls and not h.in_switch_allreduce:
        raise WorkloadError(f"--allreduce nvls: {h.id} states no in-switch reduction (interconnect.in_switch_allreduce "
                            f"in its spec); use --allreduce ring")
    mc, fc, hc = _spec_columns(m, h, f, kv, native_only, eff)
    if vision and m.cross_layers:  # a copy: the columns are shared
        mc = {**mc, "cross_tokens": float(vision["images"] * vision["visual_tokens_per_image"])}
    batch_value = -1 if w.batch == "max" else w.batch
    cached = 0
    if prefix_hit:
        from costmodel.engine.serving import check_prefix_hit

        if m.is_encoder:
            raise WorkloadError(f"--prefix-hit {prefix_hit}: {m.id} is an encoder (no prefix cache)")
        # at least one token is prefilled (the one whose logits start the output)
        cached = min(int(round(w.prompt * check_prefix_hit(prefix_hit))), max(w.prompt - 1, 0))
        notes.append(f"--prefix-hit {prefix_hit:g}: {cached} of the {w.prompt} prompt tokens come from the prefix "
                     f"cache (read as context, not prefilled)")
    if kv_predict and (w.dp > 1 or w.ep > 1 or w.mtp or vision or prefix_hit):
        raise WorkloadError("--kv-predict with --dp, --ep, --mtp, --images or --prefix-hit: not modelled together; "
                            "drop one")
    aux = _kv_predictor(kv_predict, m, fc, w, resolved) if kv_predict else None
    # the auxiliary model's weights are loaded before the engine sizes its KV pool: the device holds that much less
    hc_pool = hc if aux is None else {**hc, "capacity": hc["capacity"] - aux[1]}
    result = evaluate(mc, fc, hc_pool, *map(float, (batch_value, w.prompt - cached, w.gen, w.context + cached, w.tp,
                                                    w.pp, w.replicas, w.dp, w.ep, w.mtp, w.accept)))
    if cached:  # rates and prices per prompt token count the whole prompt, cached tokens included
        met = result.metrics
        met["prefill_tokens_per_s"] = met["prefill_tokens_per_s"] * w.prompt / (w.prompt - cached)
        met["usd_per_million_total_tokens"] = (met["usd_per_million_total_tokens"] * (w.prompt - cached + w.gen)
                                               / (w.prompt + w.gen))
    if vision:
        result = _apply_vision(result, m, h, eff, hc, w, vision, notes)
    if aux is not None:
        result = _apply_kv_prediction(result, aux, m, hc, fc, w, notes)
    if w.gen == 0 and not m.is_encoder:  # nothing decoded: no time per output token, no decode rate (n/a; --json
        # null), as energy and $ per output token; the decode step the engine would take is in `explain`
        result.metrics["tpot_s"] = result.metrics["decode_tokens_per_s"] = np.asarray(math.nan)
    if grid_gco2_per_kwh is not None:
        met = result.metrics
        met["gco2_per_million_tokens"] = met["energy_j_per_token"] * 1e6 / 3.6e6 * grid_gco2_per_kwh
        met["gco2_per_query"] = met["energy_j_per_query"] / 3.6e6 * grid_gco2_per_kwh
    if h.tdp_w is None:
        notes.append(f"{h.id} has no TDP in its spec: energy is n/a")
    elif h.tdp_scope != "device":
        what = {"module": "the whole module (CPU + accelerator + memory)", "system": "the whole system at the wall"}
        notes.append(f"{h.id}'s TDP ({h.tdp_w:g} W) covers {what[h.tdp_scope]}: energy is an upper bound, "
                     f"not comparable with a GPU board's TDP")
    if h.price_per_hour is None:
        notes.append(f"{h.id} has no cloud price in its spec: $ per million tokens is n/a")
    return Estimate(m, h, f, kv, plan, eff, w, result, tuple(notes), resolved)


def with_memory_flags(eff: Efficiency, mem_fraction: float | None = None, max_model_len: int | None = None,
                      kv_block_size: int | None = None, expert_imbalance: float | None = None,
                      overlap_comm: bool | None = None, allreduce: str | None = None) -> Efficiency:
    """The engine's parameters with a user's memory flags (and --expert-imbalance) applied, each
    checked and named on error."""
    changes = {}
    if expert_imbalance is not None:
        if not (isinstance(expert_imbalance, (int, float)) and not isinstance(expert_imbalance, bool)
                and math.isfinite(expert_imbalance) and expert_imbalance >= 1):
            raise WorkloadError(f"--expert-imbalance {expert_imbalance}: expected the busiest expert-parallel rank's "
                                f"tokens over the mean, a number >= 1 (1.11 with EPLB, 2.56 without)")
        changes["expert_imbalance"] = float(expert_imbalance)
    if overlap_comm is not None:
        changes["comm_overlap"] = 1.0 if overlap_comm else 0.0
    if allreduce is not None:
        if allreduce not in ("ring", "nvls"):
            raise WorkloadError(f"--allreduce {allreduce!r}: expected ring or nvls")
        changes["allreduce_nvls"] = 1.0 if allreduce == "nvls" else 0.0
    if mem_fraction is not None:
        if not (isinstance(mem_fraction, (int, float)) and 0 < mem_fraction <= 1):
            raise WorkloadError(f"--mem-fraction {mem_fraction}: expected a fraction in (0, 1]")
        changes["usable_memory_fraction"] = float(mem_fraction)
    if max_model_len is not None:
        changes["max_model_len"] = float(_as_int("max-model-len", max_model_len, 1))
    if kv_block_size is not None:
        changes["kv_block_tokens"] = float(_as_int("kv-block-size", kv_block_size, 1))
    if not changes:
        return eff
    sources = {**eff.sources, **{k: "given by the user" for k in changes}}
    return dataclasses.replace(eff, **changes, sources=MappingProxyType(sources))


def _vision_workload(m: Model, images, image_size, visual_tokens) -> dict | None:
    """Images per request of a VLM, checked: their size, patches and visual tokens (spec/vision.py)."""
    images = _as_int("images", images or 0, 0)
    tower = m.vision_tower
    if tower is None and (images or image_size is not None or visual_tokens is not None):  # before 'give --images'
        given = f"--images {images}" if images else "--image-size / --visual-tokens"
        raise WorkloadError(f"{given}: {m.id} has no vision tower in its spec (a VLM's vision_tower block)")
    if not images:
        if image_size is not None or visual_tokens is not None:
            raise WorkloadError("--image-size / --visual-tokens describe images: give --images N too")
        return None
    if tower is None:
        raise WorkloadError(f"--images {images}: {m.id} has no vision tower in its spec (a VLM's vision_tower block)")
    if image_size is None:
        width = height = tower.image_size
    else:
        text = image_size if isinstance(image_size, str) else "x".join(map(str, image_size))
        parts = text.lower().replace("×", "x").split("x")
        try:
            width, height = (int(p) for p in parts)
        except ValueError:
            raise WorkloadError(f"--image-size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 448x448") from None
        if not (1 <= width <= 1 << 16 and 1 <= height <= 1 << 16):
            raise WorkloadError(f"--image-size {text!r}: expected sides of 1 to 65536 pixels")
    tokens = tower.tokens(width, height) if visual_tokens is None else _as_int("visual-tokens", visual_tokens, 1)
    # given tokens without a size: the patches that merge into them
    patches = (tokens * tower.merge ** 2 if visual_tokens is not None and image_size is None
               else tower.patches(width, height))
    return {"images": images, "width": width, "height": height, "patches_per_image": patches,
            "visual_tokens_per_image": tokens}


def _apply_vision(result, m: Model, h, eff, hc, w, vision: dict, notes: list):
    """The result with the vision tower's time added before the prefill: the ViT encoder over every
    image's patches (bidirectional, 16-bit, its heads split as the LLM's tensor parallelism allows)
    and the projector on the visual tokens (a roofline of its FLOPs and 16-bit weights)."""
    from costmodel.spec.formats import load_format

    tower = m.vision_tower
    met = result.metrics
    batch = float(np.asarray(met["batch"]).reshape(-1)[0])
    n_img = max(batch, 1.0) * vision["images"]
    enc = vision_encoder(m)
    ec = scalars(model_row(enc))
    f16 = scalars(format_row(load_format("bf16"), h, None, False, eff.engine))
    tp_v = math.gcd(w.tp, tower.heads)
    enc_s = float(np.asarray(evaluate(ec, f16, hc, n_img, vision["patches_per_image"], 0, 0, tp_v, 1, 1)
                             .metrics["ttft_s"]).reshape(-1)[0])
    tokens = n_img * vision["visual_tokens_per_image"]
    peak = float(np.asarray(f16["peak_matmul"]).reshape(-1)[0]) * eff.compute_efficiency
    proj_s = max(tokens * tower.projector_flops_per_token() / tp_v / peak,
                 tower.projector_params() * 2.0 / tp_v / (h.memory_bandwidth * eff.memory_efficiency))
    extra = enc_s + proj_s
    old_e2e = met["e2e_latency_s"]
    met["ttft_s"] = met["ttft_s"] + extra
    met["e2e_latency_s"] = old_e2e + extra
    scale = met["e2e_latency_s"] / old_e2e
    # the prompt's tokens over the whole TTFT: rate · (text prefill) / TTFT (0 without a text prompt, not 0/0)
    met["prefill_tokens_per_s"] = met["prefill_tokens_per_s"] * (met["ttft_s"] - extra) / met["ttft_s"]
    met["throughput_tokens_per_s"] = met["throughput_tokens_per_s"] / scale
    for k in ("energy_j_per_token", "energy_j_per_query", "usd_per_million_tokens", "usd_per_million_total_tokens"):
        met[k] = met[k] * scale
    vision.update(encoder_s=enc_s, projector_s=proj_s, tower_params=param_breakdown(m)["vision_tower"])
    met["vision"] = vision
    where = "as cross-attention keys" if m.cross_layers else "in the prompt"
    notes.append(f"--images {vision['images']} of {vision['width']}x{vision['height']}: "
                 f"{vision['visual_tokens_per_image']} visual tokens each {where}; the vision tower adds "
                 f"{enc_s * 1e3:.3g} ms (encoder over {vision['patches_per_image']} patches per image) + "
                 f"{proj_s * 1e3:.3g} ms (projector) before the prefill")
    return result


def _kv_predictor(aux_name, m, fc, w, resolved) -> tuple:
    """(the auxiliary model of --kv-predict, the bytes per device its weights and the KV projection take)."""
    from costmodel.engine.kvpredict import projection_weights
    from costmodel.engine.memory import weight_bytes_per_device

    aux, alias_of = resolve_model(aux_name)
    if alias_of:
        resolved[aux_name] = alias_of
    if m.is_encoder or aux.is_encoder:
        raise WorkloadError("--kv-predict needs decoder models")
    aux_w = float(weight_bytes_per_device(scalars(model_row(aux)), fc, float(w.tp), float(w.pp)))
    return aux, aux_w + projection_weights(aux, m) / (w.tp * w.pp)


def _apply_kv_prediction(result, aux_of, m, hc, fc, w, notes):
    """The result with the base prefill replaced by aux prefill + KV projection + one base decode step, and the
    auxiliary weights (`aux_of`: _kv_predictor's) counted in the memory (the result was evaluated on a capacity
    less them: its KV pool, fit and largest batch hold them already)."""
    import dataclasses

    from costmodel.engine.kvpredict import projection_time

    aux, aux_w = aux_of
    batch_value = float(np.asarray(result.metrics["batch"]).reshape(-1)[0])
    ac = scalars(model_row(aux))
    aux_res = evaluate(ac, fc, hc, batch_value, w.prompt, 1, w.context, w.tp, w.pp, 1)
    aux_prefill = float(np.asarray(aux_res.metrics["ttft_s"]).reshape(-1)[0])
    base_step = evaluate(scalars(model_row(m)), fc, hc, batch_value, 0, 2,
                         w.context + w.prompt, w.tp, w.pp, 1).metrics["tpot_s"]
    proj_s, _ = projection_time(aux, m, fc, hc, int(batch_value), w.prompt)
    met = result.metrics
    old_ttft, old_e2e = met["ttft_s"], met["e2e_latency_s"]
    ttft = aux_prefill + proj_s + float(np.asarray(base_step).reshape(-1)[0])
    e2e = old_e2e - old_ttft + ttft
    scale = e2e / old_e2e
    met["ttft_s"] = np.asarray(ttft)
    met["e2e_latency_s"] = np.asarray(e2e)
    met["prefill_tokens_per_s"] = np.asarray(batch_value * w.prompt / ttft)
    for k in ("throughput_tokens_per_s",):
        met[k] = met[k] / scale
    for k in ("energy_j_per_token", "energy_j_per_query", "usd_per_million_tokens"):
        met[k] = met[k] * scale
    mem = dataclasses.replace(result.memory, weights=result.memory.weights + aux_w,
                              capacity=result.memory.capacity + aux_w)
    met["weights_gib"] = mem.weights / 2**30
    notes.append(f"--kv-predict {aux.id}: TTFT = {aux.id} prefill {aux_prefill * 1e3:.3g} ms + KV projection "
                 f"{proj_s * 1e3:.3g} ms + one {m.id} step; {aux.id} weights add {aux_w / 2**30:.2f} GiB, loaded "
                 f"before the engine sizes its KV pool")
    return dataclasses.replace(result, memory=mem)


def devices_needed(e: Estimate) -> tuple[int, str]:
    """Smallest device count that holds the model (and batch-1 KV), with a --tp/--pp suggestion."""
    mem = e.memory_dict()
    w = e.workload
    eff = e.efficiency
    # what the engine's memory policy leaves for weights + KV on one device (engine/memory.py with W = 0)
    per_dev_usable = eff.usable_memory_fraction * (e.hardware.memory_visible_bytes - mem["activation_bytes"]
                                                   - eff.runtime_overhead_bytes)
    need_total = (mem["weights_bytes"] + mem["kv_cache_bytes"] / max(e.batch, 1)) * w.tp * w.pp
    n = max(1, math.ceil(need_total / max(per_dev_usable, 1.0)))
    tp = 1
    while tp < min(n, 8) and e.model.heads % (tp * 2) == 0:
        tp *= 2
    pp = math.ceil(n / tp)
    hint = f"--tp {tp}" + (f" --pp {pp}" if pp > 1 else "")
    return n, hint


def kv_pool_binds(mem: dict) -> bool:
    """Memory holds the model and its batch, but the engine's KV pool does not hold one sequence at its longest
    (`Estimate.memory_dict()`'s terms): the engine refuses such a max model length (vLLM, SGLang)."""
    return mem["total_bytes"] <= mem["capacity_bytes"] and mem["max_concurrency"] < 1


def require_fit(e: Estimate) -> Estimate:
    """Raise DoesNotFitError when the estimate does not fit, naming what binds: the device's memory (with how many
    devices would do), the share of it the engine's memory fraction leaves, its KV pool, or the KV block size."""
    if e.fits:
        return e
    mem = e.memory_dict()
    gib = 2.0 ** 30
    batch = e.workload.batch
    head = (f"{e.model.id} in {e.format.id} does not fit on {e.hardware.id}"
            + (" at batch max (no batch of 1 fits)" if batch == "max" else f" at batch {batch}"))
    if kv_pool_binds(mem):
        raise DoesNotFitError(
            f"{head}: the engine's KV cache pool ({mem['kv_pool_bytes'] / gib:.1f} GiB, "
            f"{mem['kv_cache_tokens']:,.0f} tokens) holds {mem['max_concurrency']:.3g} of one sequence at its longest "
            f"(--max-model-len, or prompt + gen); lower those, raise --mem-fraction, or shard the KV over more "
            f"devices (--tp)")
    n, hint = devices_needed(e)
    room = mem["capacity_bytes"] - mem["reserve_bytes"]  # what the engine's memory policy leaves it
    fraction = e.efficiency.usable_memory_fraction
    if mem["weights_bytes"] <= mem["capacity_bytes"] and mem["weights_bytes"] > room and fraction < 1:
        raise DoesNotFitError(
            f"{head}: the weights alone need {mem['weights_bytes'] / gib:.1f} GiB per device, more than the "
            f"{max(room, 0.0) / gib:.1f} GiB of {mem['capacity_bytes'] / gib:.0f} GiB the engine's memory fraction "
            f"{fraction:g} leaves it (--mem-fraction); raise --mem-fraction"
            + (f" or shard the weights ({hint})" if e.hardware.interconnect_bandwidth and n <= 1024 else ""))
    what = "the weights alone" if mem["weights_bytes"] > mem["capacity_bytes"] else "weights + KV cache + activations"
    blocks = _block_note(e)
    if (not blocks and fraction < 1 and mem["max_concurrency"] < 1  # the model fits; the fraction leaves its pool
            and mem["weights_bytes"] + mem["activation_bytes"] <= mem["capacity_bytes"]):  # no sequence (TRT-LLM's
        raise DoesNotFitError(  # pool is a fraction of the memory free after the weights; the rest counts as unused)
            f"{head}: the engine's memory fraction {fraction:g} (--mem-fraction) leaves a KV cache pool of "
            f"{mem['kv_cache_tokens']:,.0f} tokens, {mem['max_concurrency']:.3g} of one sequence; raise --mem-fraction")
    if n > e.workload.tp * e.workload.pp and not e.hardware.interconnect_bandwidth:  # it cannot shard: no --tp/--pp
        advice = (f"{e.hardware.id} has no device interconnect to shard it over {n} devices: use a device with more "
                  f"memory or a smaller format (--fmt)")
    elif n > e.workload.tp * e.workload.pp:
        advice = f"it needs about {n} x {e.hardware.id} (try {hint})"
    else:  # more devices of the same kind hold the model's weights: the batch is what does not fit
        most = e.metric("max_batch")
        advice = (f"at most {most:,.0f} sequences fit: lower --batch" if most >= 1 else
                  "not one sequence fits: lower --prompt/--gen or shard the KV over more devices (--tp)")
    raise DoesNotFitError(
        f"{head}: {what} need {mem['total_bytes'] / gib:.1f} GiB of {mem['capacity_bytes'] / gib:.0f} GiB per "
        f"device{blocks}; {advice}")


def _block_note(e: Estimate) -> str:
    """Where the engine's KV block holds more tokens than a sequence has (--kv-block-size), the note that each
    sequence's KV rounds up to a whole block (engine/memory.py's kv_bytes_per_sequence), else ''."""
    w, block = e.workload, e.efficiency.kv_block_tokens
    tokens = w.context + w.prompt + w.gen
    if block <= max(tokens, 1):
        return ""
    return f" (each sequence's {tokens:,} tokens of KV round up to a whole {block:,.0f}-token block: --kv-block-size)"
