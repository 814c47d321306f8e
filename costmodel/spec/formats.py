"""Numeric formats as first-class objects, and how a device runs each one.

A format states bits per weight, activation and KV entry (block scales included,
e.g. NVFP4 = 4 + 8/16 = 4.5 bits) and which datatypes can run its matrix products.
`plan_compute` picks the unit on a given device: native, emulated (weights dequantized
to a wider type at a stated cost) or refused.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from costmodel.spec.catalog import Entry, index, resolve
from costmodel.errors import FormatNotSupportedError, SpecError
from costmodel.spec.hardware import DTYPES, Hardware
from costmodel.spec.memo import by_identity

@dataclass(frozen=True)
class Format:
    id: str
    name: str
    weight_dtype: str
    weight_bits: float
    activation_bits: float
    kv_bits: float
    embedding_bits: float
    lm_head_bits: float
    compute: tuple
    emulate: tuple
    dequant_ops_per_weight: float = 0.0
    aliases: tuple = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    engine: str | None = None  # the engine a file in this format implies (GGUF quants: llama.cpp)



@dataclass(frozen=True)
class ComputePlan:
    """How one device runs one format's matrix products."""

    dtype: str  # datatype whose peak is used
    emulated: bool  # the format's own datatype is not native on the device
    dequant: bool  # weights are converted before the math (charged dequant work)
    activation_bits: float  # activation bits in memory (16 when emulated below 16)
    note: str
    engine_path: bool = False  # chosen by the engine's `compute_paths` entry, not the format's list
    rate_of: tuple | None = None  # (dtype, ratio): the path runs at ratio x the engine's speed on that dtype

    @property
    def label(self) -> str:
        return f"{self.dtype} (emulated)" if self.emulated else self.dtype


def _bits(e: Entry, name: str, sources: dict, default: float | None = None) -> float:
    node = e.get(name)
    if node is None:
        if default is None:
            raise SpecError(f"{e.where(name)}: missing; expected {{value: <bits>, source: ...}}")
        return default
    if not isinstance(node, dict) or "value" not in node:
        raise SpecError(f"{e.where(name)}: expected {{value: <bits>, source: ...}}")
    try:
        value = float(node["value"])
    except (TypeError, ValueError):
        raise SpecError(f"{e.where(name)}: got {node['value']!r}; expected a number of bits") from None
    if not 0 < value <= 64:
        raise SpecError(f"{e.where(name)}: {value} bits is out of range (0, 64]")
    sources[name] = e.source_of(name, node)
    return value


def format_from_entry(e: Entry) -> Format:
    sources: dict = {}
    dtypes = []
    for key in ("compute", "emulate"):
        value = e.get(key, [])
        if not isinstance(value, list) or any(d not in DTYPES for d in value):
            raise SpecError(f"{e.where(key)}: got {value!r}; expected a list of datatypes from {', '.join(DTYPES)}")
        dtypes.append(tuple(value))
    if not dtypes[0]:
        raise SpecError(f"{e.where('compute')}: empty; expected at least one datatype")
    weight_dtype = e.require("weight_dtype", str, "a datatype")
    if weight_dtype not in DTYPES:
        raise SpecError(f"{e.where('weight_dtype')}: got {weight_dtype!r}; expected one of {', '.join(DTYPES)}")
    w = _bits(e, "weight_bits", sources)
    return Format(
        id=e.id.lower(),
        name=e.require("name", str, "a descriptive name"),
        weight_dtype=weight_dtype,
        weight_bits=w,
        activation_bits=_bits(e, "activation_bits", sources),
        kv_bits=_bits(e, "kv_bits", sources),
        embedding_bits=_bits(e, "embedding_bits", sources, w),
        lm_head_bits=_bits(e, "lm_head_bits", sources, w),
        compute=dtypes[0],
        emulate=dtypes[1],
        dequant_ops_per_weight=_bits(e, "dequant_ops_per_weight", sources, 0.0) if e.get("dequant_ops_per_weight") else 0.0,
        aliases=tuple(str(a).lower() for a in e.get("aliases") or ()),
        sources=MappingProxyType(sources),
        engine=_engine(e, sources),
    )


def _engine(e: Entry, sources: dict) -> str | None:
    node = e.get("engine")
    if node is None:
        return None
    if not isinstance(node, dict) or not node.get("value") or not node.get("source"):
        raise SpecError(f"{e.where('engine')}: expected {{value: <engine>, source: ...}}")
    sources["engine"] = str(e.sources.get(node["source"], node["source"]))
    return str(node["value"])


def resolve_format(name: str) -> tuple[Format, str | None]:
    """(Format, id an alias resolved to or None) for an id or alias."""
    return resolve("formats", name, format_from_entry)


def load_format(name: str) -> Format:
    """A numeric Format (bits per weight, activation and KV entry; compute unit) from its id or alias.

    >>> costmodel.load_format("nvfp4").weight_bits
    """
    return resolve_format(name)[0]


def all_formats() -> list[Format]:
    return [load_format(i) for i in index("formats").ids()]


def plan_compute(fmt: Format, hw: Hardware, native_only: bool = False, engine: str | None = None) -> ComputePlan:
    """Choose the datatype that runs `fmt`'s matrix products on `hw` (under `engine`'s kernels).

    Native: the first of `fmt.compute` the device has; an engine's `compute_paths` entry for the
    format (calibration/defaults.yaml, e.g. llama.cpp's MXFP4 on its int8 MMQ kernels) replaces that
    list. Otherwise the first of `fmt.emulate` it has, with weights dequantized (charged
    `dequant_ops_per_weight` per weight per tile) and activations kept at 16 bits. Refused when
    neither exists or `native_only` is set.
    """
    from costmodel.spec.engine_params import tables

    return _plan(tables(), fmt, hw, native_only, engine)


@by_identity()
def _plan(t, fmt: Format, hw: Hardware, native_only: bool, engine: str | None) -> ComputePlan:
    """plan_compute under the calibration tables `t` (their compute_paths), once per state of them."""
    from costmodel.spec.engine_params import compute_path

    path = compute_path(engine, fmt.id)
    if path is not None:
        for dtype in path.compute:
            if hw.has(dtype):
                dequant = fmt.weight_dtype != dtype and fmt.dequant_ops_per_weight > 0
                bits = fmt.activation_bits if path.activation_bits is None else path.activation_bits
                rate = path.rates.get(dtype)
                return ComputePlan(dtype, False, dequant, bits,
                                   f"{fmt.id} runs on {hw.id} {dtype} units under {engine}'s kernels"
                                   + (f" at {rate[1]:g}x the speed of its {rate[0]} path" if rate else "")
                                   + f" (source: {path.source.split(' (')[0]})", True,
                                   rate if rate and hw.has(rate[0]) else None)
    for dtype in fmt.compute:
        if hw.has(dtype):
            dequant = fmt.weight_dtype != dtype and fmt.dequant_ops_per_weight > 0
            return ComputePlan(dtype, False, dequant, fmt.activation_bits,
                               f"{fmt.id} runs natively on {hw.id} {dtype} units")
    wanted = "/".join(fmt.compute)
    if native_only:
        raise FormatNotSupportedError(
            f"{fmt.id} needs {wanted} units, which {hw.id} does not have natively "
            f"(it has {', '.join(sorted(hw.peaks))}); drop --native-only to emulate it")
    for dtype in fmt.emulate:
        if hw.has(dtype):
            return ComputePlan(dtype, True, fmt.dequant_ops_per_weight > 0, max(fmt.activation_bits, 16.0),
                               f"{hw.id} has no {wanted} units: {fmt.id} is emulated by dequantizing weights "
                               f"to {dtype} ({fmt.dequant_ops_per_weight:g} ops per weight per tile) "
                               f"with 16-bit activations")
    raise FormatNotSupportedError(
        f"{fmt.id} needs {wanted} units (or {'/'.join(fmt.emulate) or 'no emulation'}), "
        f"which {hw.id} does not have (it has {', '.join(sorted(hw.peaks))})")
