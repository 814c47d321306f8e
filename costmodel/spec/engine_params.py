"""Efficiency, overhead and engine-limit parameters, looked up per device and engine.

Every `calibration/*.yaml` may hold `global`, `families`, `devices` blocks and an `engines`
block with the same three levels per inference engine. Lookup for (device, family, engine),
later entries winning:
  global -> families[family] -> devices[device]
  -> engines[engine].global -> engines[engine].families[family] -> engines[engine].devices[device]
`defaults.yaml` holds sourced defaults; `fitted.yaml` (written by `costmodel calibrate`)
holds fitted values with their provenance.

A build (backend) of an engine, named `engine/build` (`llama.cpp/vulkan`), is declared under
`builds:`; it inherits everything of its engine, its own levels following the engine's at each level:
  ... -> engine.global -> build.global -> engine.families[f] -> build.families[f] -> engine.devices[d]
  -> build.devices[d]
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

from costmodel.spec.catalog import catalog_key, read_yaml, search_roots
from costmodel.spec.units import parse_quantity
from costmodel.errors import SpecError, unknown
from costmodel.spec.hardware import FAMILIES
from costmodel.spec.memo import by_identity

ENGINES = ("trt-llm", "vllm", "sglang", "llama.cpp", "mlx", "mlc", "numpy", "torch", "ideal")
ENGINE_ALIASES = {"tensorrt": "trt-llm", "tensorrt-llm": "trt-llm", "trtllm": "trt-llm", "trt": "trt-llm",
                  "llamacpp": "llama.cpp", "llama-cpp": "llama.cpp", "pytorch": "torch", "datasheet": "ideal",
                  "roofline": "ideal", "mlx-lm": "mlx", "mlx_lm": "mlx"}


@dataclass(frozen=True)
class Efficiency:
    """Roofline parameters for one device under one engine.

    time(op) = max(FLOPs / (peak · compute_efficiency · scale_dtype · M/(M + compute_half_rows)),
                   bytes / (bandwidth · memory_efficiency)) + kernels · kernel_overhead_s
    Fused attention operators (flash, paged or materialized kernels; not the DSA indexer or recurrent
    scans) reach attention_efficiency times both efficiencies: an engine's attention kernels are not its GEMMs.
    The memory policy (usable_memory_fraction, kv_pool_of_free, activations_in_budget,
    runtime_overhead_bytes, kv_block_tokens, window_kv_paged, max_model_len, state_bits) is the engine's
    own rule for sizing its KV pool (engine/memory.py).
    """

    compute_efficiency: float
    compute_half_rows: float
    memory_efficiency: float
    kernel_overhead_s: float
    step_overhead_s: float
    comm_efficiency: float
    comm_latency_s: float
    usable_memory_fraction: float
    prefill_chunk_tokens: float
    idle_power_fraction: float
    dequant_tile_tokens: float
    max_batch: float
    kv_reserved_gen_fraction: float
    int_matmul_scale: float
    fp8_matmul_scale: float
    fp4_matmul_scale: float
    runtime_overhead_bytes: float
    kv_pool_of_free: float
    activations_in_budget: float
    kv_block_tokens: float
    window_kv_paged: float
    max_model_len: float
    request_overhead_s: float
    state_bits: float
    stream_interval: float
    expert_imbalance: float  # busiest expert-parallel rank's routed tokens / the mean (1: uniform routing)
    comm_overlap: float  # 1: collectives overlap compute (two-batch overlap), 0: they add to it
    allreduce_nvls: float  # 1: all-reduces use the fabric's in-switch reduction (NCCL NVLS) where it has one
    attention_efficiency: float  # attention kernels' achieved fraction of both roofs relative to the GEMMs' (1: as good)
    engine: str = "ideal"
    levels: tuple = ()  # which calibration levels supplied values, most specific last
    compute_from: str = ""  # the level ('global', 'families', 'devices') that supplied compute_efficiency
    sources: Mapping[str, str] = field(default_factory=dict)

    def matmul_scale(self, dtype: str) -> float:
        """Achieved fraction of a datatype's peak relative to the 16-bit path."""
        if dtype.startswith("int"):
            return self.int_matmul_scale
        return {"fp8": self.fp8_matmul_scale, "fp6": self.fp8_matmul_scale, "fp4": self.fp4_matmul_scale}.get(dtype, 1.0)


    def calibration_level(self, device: str, family: str) -> str:
        """How close the fitted values come to this device: 'device' (fitted on it), 'family',
        'engine' (the engine is fitted, not on this family) or 'uncalibrated' (sourced defaults)."""
        if not str(self.sources.get("compute_efficiency", "")).startswith("fit"):
            return "uncalibrated"
        return {"devices": "device", "families": "family"}.get(self.compute_from, "engine")


PARAMS = tuple(f.name for f in fields(Efficiency) if f.name not in ("sources", "engine", "levels", "compute_from"))
_FRACTIONS = ("compute_efficiency", "memory_efficiency", "comm_efficiency", "usable_memory_fraction")
_AT_MOST_ONE = ("idle_power_fraction",)
_RATIOS = ("attention_efficiency",)  # relative to another efficiency: above 0, at most 4
_BYTES = ("runtime_overhead_bytes",)  # may be written '0.72 GiB'
_FLAGS = ("kv_pool_of_free", "activations_in_budget", "window_kv_paged", "comm_overlap", "allreduce_nvls")  # 0 or 1


def read_block(block, sources: dict, path: str, where: str, params: tuple = PARAMS) -> dict:
    """A calibration block {parameter: {value, source}} of `params`, each checked by its kind (fraction, at most
    one, bytes, flag): {parameter: (value, source text)}."""
    out = {}
    if block is None:
        return out
    if not isinstance(block, dict):
        raise SpecError(f"{path}: {where}: expected a mapping of parameter -> {{value, source}}")
    for name, node in block.items():
        if name not in params:
            raise SpecError(f"{path}: {where}.{name}: unknown parameter; expected one of {', '.join(params)}")
        if not isinstance(node, dict) or "value" not in node or not node.get("source"):
            raise SpecError(f"{path}: {where}.{name}: expected {{value: <number>, source: ...}}")
        try:
            value = (parse_quantity(node["value"], "bytes", f"{path}: {where}.{name}") if name in _BYTES
                     else float(node["value"]))
        except (TypeError, ValueError):
            raise SpecError(f"{path}: {where}.{name}: got {node['value']!r}; expected a number") from None
        if (value < 0 or (name in _FRACTIONS and not 0 < value <= 1) or (name in _AT_MOST_ONE and value > 1)
                or (name in _FLAGS and value not in (0.0, 1.0)) or (name in _RATIOS and not 0 < value <= 4)):
            raise SpecError(f"{path}: {where}.{name}: {value} is out of range")
        out[name] = (value, str(sources.get(node["source"], node["source"])))
    return out


@dataclass
class _Tables:
    levels: dict  # (engine or None, 'global'|family|device name, kind) -> {param: (value, source)}
    default_engine: dict
    builds: dict  # engine -> {build: Build}
    paths: dict = field(default_factory=dict)  # (engine or engine/build, format id) -> ComputePath


@dataclass(frozen=True)
class ComputePath:
    """The datatypes an engine's matrix kernels run one format on, best first (the first the device
    has natively is used), where they differ from the format's own `compute` list; `activation_bits`
    is what its kernels read (None: the format's)."""

    compute: tuple
    activation_bits: float | None
    source: str
    rates: Mapping = field(default_factory=dict)  # dtype -> (reference dtype, ratio): measured speed vs that path


def _read_paths(doc: dict, src: dict, p: str, paths: dict) -> None:
    """Add a calibration file's `compute_paths:` (engine[/build] -> {format: {compute, activation_bits?, source}})."""
    from costmodel.spec.hardware import DTYPES

    for engine, decl in (doc.get("compute_paths") or {}).items():
        if base_engine(str(engine)) not in ENGINES or not isinstance(decl, dict):
            raise SpecError(f"{p}: compute_paths.{engine}: expected a known engine ({', '.join(ENGINES)}) "
                            f"mapping format -> {{compute: [datatypes], source: ...}}")
        for fmt, node in decl.items():
            node = node if isinstance(node, dict) else {}
            dts = node.get("compute")
            bits = node.get("activation_bits")
            rates = node.get("rates") or {}
            ok_rates = isinstance(rates, dict) and all(
                k in dts and isinstance(v, dict) and v.get("of") in DTYPES and isinstance(v.get("ratio"), (int, float))
                and v["ratio"] > 0 for k, v in rates.items()) if isinstance(dts, list) else False
            if (not node.get("source") or not isinstance(dts, list) or not dts or set(map(str, dts)) - set(DTYPES)
                    or (bits is not None and (not isinstance(bits, (int, float)) or bits <= 0)) or not ok_rates):
                raise SpecError(f"{p}: compute_paths.{engine}.{fmt}: expected {{compute: [datatypes of "
                                f"{', '.join(DTYPES)}], source: ...[, activation_bits: <bits>][, rates: {{dtype: "
                                f"{{of: <dtype>, ratio: <speed relative to that path>}}}}]}}")
            paths[(str(engine), str(fmt))] = ComputePath(
                tuple(map(str, dts)), None if bits is None else float(bits), str(src.get(node["source"], node["source"])),
                MappingProxyType({str(k): (str(v["of"]), float(v["ratio"])) for k, v in rates.items()}))


@dataclass(frozen=True)
class Build:
    """A build (backend) of an engine as `builds:` declares it."""

    source: str
    aliases: tuple = ()
    families: tuple | None = None  # device families it runs on (None: any)


def _read_builds(doc: dict, src: dict, p: str, builds: dict) -> None:
    """Add a calibration file's `builds:` declarations (engine -> {build: {source, aliases, families}})."""
    for engine, decl in (doc.get("builds") or {}).items():
        if engine not in ENGINES or not isinstance(decl, dict):
            raise SpecError(f"{p}: builds.{engine}: expected a known engine ({', '.join(ENGINES)}) "
                            f"mapping build -> {{source[, aliases]}}")
        for build, node in decl.items():
            node = node if isinstance(node, dict) else {}
            aliases, fams = node.get("aliases") or [], node.get("families")
            if (not node.get("source") or not isinstance(aliases, list)
                    or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", str(build))
                    or (fams is not None and (not isinstance(fams, list) or set(fams) - set(FAMILIES)))):
                raise SpecError(f"{p}: builds.{engine}.{build}: expected a lower-case name with "
                                f"{{source: ...[, aliases: [names]][, families: [{', '.join(FAMILIES)}]]}}")
            builds.setdefault(engine, {})[str(build)] = Build(
                str(src.get(node["source"], node["source"])), tuple(map(str, aliases)),
                tuple(fams) if fams is not None else None)


def split_engine(name: str) -> tuple[str, str | None]:
    """('llama.cpp', 'vulkan') for 'llama.cpp/vulkan'; (name, None) for an engine without a build."""
    base, _, build = name.partition("/")
    return base, (build or None)


def base_engine(name: str) -> str:
    """'llama.cpp' for 'llama.cpp/vulkan'."""
    return split_engine(name)[0]


def _merge_level(tables: dict, key: tuple, block: dict) -> None:
    tables.setdefault(key, {}).update(block)


@functools.lru_cache(maxsize=None)
def _tables(path_env: str) -> _Tables:
    levels: dict = {}
    default_engine: dict = {}
    builds: dict = {}
    paths: dict = {}
    engine_keys: list = []
    for root in reversed(search_roots()):  # user roots last, so they override
        folder = root / "calibration"
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            doc = read_yaml(path) or {}
            src = doc.get("sources") or {}
            p = str(path)

            def three(engine, node, where):
                node = node or {}
                _merge_level(levels, (engine, "global", ""), read_block(node.get("global"), src, p, f"{where}global"))
                for kind in ("families", "devices"):
                    for name, block in (node.get(kind) or {}).items():
                        _merge_level(levels, (engine, kind, name), read_block(block, src, p, f"{where}{kind}.{name}"))

            three(None, doc, "")
            _read_builds(doc, src, p, builds)
            _read_paths(doc, src, p, paths)
            for engine, node in (doc.get("engines") or {}).items():
                engine_keys.append((p, engine))
                three(engine, node, f"engines.{engine}.")
            default_engine.update(doc.get("default_engine") or {})
    for engine, decl in builds.items():  # an alias never hides a build of that name
        for alias in [a for b in decl.values() for a in b.aliases if a in decl]:
            raise SpecError(f"calibration: builds.{engine}: alias '{alias}' is also a build")
    for p, engine in engine_keys:  # checked once every file's builds are known
        base, build = split_engine(engine)
        if base not in ENGINES or ("/" in engine and build not in builds.get(base, {})):
            known = list(ENGINES) + [f"{e}/{b}" for e, bs in builds.items() for b in bs]
            raise SpecError(f"{p}: engines.{engine}: unknown engine; expected one of {', '.join(known)}")
    missing = [k for k in PARAMS if k not in levels.get((None, "global", ""), {})]
    if missing:
        raise SpecError(f"calibration: global parameter '{missing[0]}' is defined in no calibration/*.yaml")
    for engine, _ in paths:
        base, build = split_engine(engine)
        if build and build not in builds.get(base, {}):
            raise SpecError(f"calibration: compute_paths.{engine}: unknown build of {base}")
    return _Tables(levels, default_engine, builds, paths)


def tables() -> _Tables:
    return _tables(catalog_key())


def resolve_engine(engine: str | None, family: str, device: str | None = None, fmt_engine: str | None = None) -> str:
    """A known engine name. 'auto' (or None) picks, in order: the engine a user calibrated this
    device with (`default_engine: {device: engine}` in a calibration file), the engine the format
    implies (GGUF quants: llama.cpp), the device family's default."""
    if engine in (None, "", "auto"):
        defaults = tables().default_engine
        if device and device in defaults:
            return resolve_engine(defaults[device], family)
        if fmt_engine:
            return resolve_engine(fmt_engine, family)
        return defaults.get(family, "ideal")
    base, build = split_engine(engine.strip().lower())
    base = ENGINE_ALIASES.get(base, base)
    if base not in ENGINES:
        raise unknown("engine", engine, ENGINES)
    if build is None and "/" not in engine:
        return base
    t = tables()
    known = t.builds.get(base, {})
    build = next((b for b, d in known.items() if build in d.aliases), build)
    if build not in known:
        raise unknown("engine", engine, [f"{base}/{b}" for b in known] or [base])
    return f"{base}/{build}"


def compute_path(engine: str | None, fmt_id: str) -> ComputePath | None:
    """The kernel path `compute_paths:` states for (engine, format): the build's own, else its engine's."""
    if not engine:
        return None
    paths = tables().paths
    return paths.get((engine, fmt_id)) or paths.get((base_engine(engine), fmt_id))


def engine_names() -> list[str]:
    """Every engine and engine/build the catalogue knows."""
    return list(ENGINES) + [f"{e}/{b}" for e, bs in tables().builds.items() for b in bs]


def efficiency_for(hardware_id: str, family: str, engine: str | None = "ideal",
                   fmt_engine: str | None = None, hardware=None) -> Efficiency:
    """Parameters for a device under an engine (most specific level wins), its compute and memory efficiencies kept
    in the order of the roofs (spec/roof_order.py; `hardware`, the device's spec, where it is not a catalogue id);
    computed once per state of the calibration tables."""
    return _ordered(tables(), hardware_id, family, engine, fmt_engine, hardware)


@by_identity()
def _ordered(t: _Tables, hardware_id: str, family: str, engine: str | None, fmt_engine: str | None,
             hardware) -> Efficiency:
    from costmodel.spec.roof_order import envelope

    def of(other):  # another device's own efficiency under the same engine, None where the engine does not run it
        try:
            return _efficiency(t, other.id, other.family, engine, fmt_engine)
        except SpecError:
            return None

    eff = _efficiency(t, hardware_id, family, engine, fmt_engine)
    own: dict = {}  # the sources of what this device's own blocks state, least specific first
    for e in (None, split_engine(eff.engine)[0], eff.engine):
        own.update({k: src for k, (_, src) in (t.levels.get((e, "devices", hardware_id)) or {}).items()})
    if hardware is None and hardware_id not in ("", "-"):
        from costmodel.errors import CostModelError
        from costmodel.spec.hardware import load_hardware

        try:
            hardware = load_hardware(hardware_id)
        except CostModelError:  # not a catalogue id: no device to compare
            hardware = None
    return envelope(eff, hardware, of, own)


@by_identity()
def _efficiency(t: _Tables, hardware_id: str, family: str, engine: str | None, fmt_engine: str | None) -> Efficiency:
    eng = resolve_engine(engine, family, hardware_id, fmt_engine)
    base, build = split_engine(eng)
    decl = t.builds.get(base, {}).get(build) if build else None
    if decl and decl.families and family not in ("", "-") and family not in decl.families:
        raise SpecError(f"--engine {eng}: the {build} build runs on {', '.join(decl.families)} devices "
                        f"({decl.source.split(',')[0]}); {hardware_id} is {family}")
    merged: dict = {}
    used = []
    compute_from = ""
    kinds = (("global", ""), ("families", family), ("devices", hardware_id))
    order = [(None, k) for k in kinds] + [(e, k) for k in kinds for e in (base,) + ((eng,) if build else ())]
    for e, (kind, name) in order:
        block = t.levels.get((e, kind, name))
        if block:
            merged.update(block)
            used.append(f"{e or 'defaults'}:{kind if kind == 'global' else name}")
            if "compute_efficiency" in block:
                compute_from = kind
    return Efficiency(**{k: merged[k][0] for k in PARAMS}, engine=eng, levels=tuple(used), compute_from=compute_from,
                      sources=MappingProxyType({k: merged[k][1] for k in PARAMS}))
