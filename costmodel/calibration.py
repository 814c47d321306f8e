"""Efficiency and overhead parameters of the roofline, looked up per device family.

`calibration/defaults.yaml` holds sourced defaults (`global`, overridden per `families`).
Later calibrations add fitted files beside it; lookup order is device -> family -> global.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Mapping

from .catalog import read_yaml, search_roots
from .errors import SpecError


@dataclass(frozen=True)
class Efficiency:
    """Roofline parameters for one device.

    time(op) = max(FLOPs / (peak · compute_efficiency · M/(M + compute_half_rows)),
                   bytes / (bandwidth · memory_efficiency)) + kernels · kernel_overhead_s
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
    power_fraction: float
    dequant_tile_tokens: float
    sources: Mapping[str, str] = field(default_factory=dict)


PARAMS = tuple(f.name for f in fields(Efficiency) if f.name != "sources")
_BOUNDS = {
    "compute_efficiency": (0.0, 1.0), "memory_efficiency": (0.0, 1.0), "comm_efficiency": (0.0, 1.0),
    "usable_memory_fraction": (0.0, 1.0), "power_fraction": (0.0, 2.0),
}


def _read_block(block: dict, sources: dict, path: str, where: str) -> dict:
    out = {}
    for name, node in (block or {}).items():
        if name not in PARAMS:
            raise SpecError(f"{path}: {where}.{name}: unknown parameter; expected one of {', '.join(PARAMS)}")
        if not isinstance(node, dict) or "value" not in node or not node.get("source"):
            raise SpecError(f"{path}: {where}.{name}: expected {{value: <number>, source: ...}}")
        try:
            value = float(node["value"])
        except (TypeError, ValueError):
            raise SpecError(f"{path}: {where}.{name}: got {node['value']!r}; expected a number") from None
        lo, hi = _BOUNDS.get(name, (0.0, float("inf")))
        if not (lo <= value <= hi) or (name in _BOUNDS and value == 0.0):
            raise SpecError(f"{path}: {where}.{name}: {value} is out of range ({lo}, {hi}]")
        out[name] = (value, str(sources.get(node["source"], node["source"])))
    return out


@functools.lru_cache(maxsize=None)
def _tables(path_env: str) -> tuple[dict, dict, dict]:
    """(global, per-family, per-device) parameter tables from every calibration/*.yaml."""
    glob: dict = {}
    fams: dict = {}
    devs: dict = {}
    for root in reversed(search_roots()):  # user roots last, so they override
        folder = root / "calibration"
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            doc = read_yaml(path) or {}
            sources = doc.get("sources") or {}
            glob.update(_read_block(doc.get("global"), sources, str(path), "global"))
            for fam, block in (doc.get("families") or {}).items():
                fams.setdefault(fam, {}).update(_read_block(block, sources, str(path), f"families.{fam}"))
            for dev, block in (doc.get("devices") or {}).items():
                devs.setdefault(dev, {}).update(_read_block(block, sources, str(path), f"devices.{dev}"))
    missing = [p for p in PARAMS if p not in glob]
    if missing:
        raise SpecError(f"calibration: global parameter '{missing[0]}' is defined in no calibration/*.yaml")
    return glob, fams, devs


def efficiency_for(hardware_id: str, family: str) -> Efficiency:
    """The parameters that apply to a device: device, then family, then global values."""
    import os

    glob, fams, devs = _tables(os.environ.get("COSTMODEL_PATH", ""))
    merged = {**glob, **fams.get(family, {}), **devs.get(hardware_id, {})}
    return Efficiency(**{k: v[0] for k, v in merged.items()},
                      sources=MappingProxyType({k: v[1] for k, v in merged.items()}))
