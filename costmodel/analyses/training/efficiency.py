"""Training efficiencies per device: sourced defaults (calibration/training/defaults.yaml), then the
fit (calibration/training/fitted.yaml: global values and per-device compute efficiency), then a
user's own files of the same form under COSTMODEL_PATH or the user catalogue.

    time(GEMMs) = FLOPs / (peak(unit) · compute_efficiency · scale(unit) · w / (w + width_half))
with w = hidden / tp, the width of one device's GEMMs; expert GEMMs also · moe_scale.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from costmodel.errors import SpecError
from costmodel.spec.catalog import catalog_key, read_yaml, search_roots

PARAMS = ("compute_efficiency", "width_half", "fp8_scale", "fp4_scale", "moe_scale", "memory_efficiency",
          "comm_efficiency", "idle_power_fraction")
_FRACTIONS = ("compute_efficiency", "memory_efficiency", "comm_efficiency", "idle_power_fraction")


@dataclass(frozen=True)
class TrainEfficiency:
    compute_efficiency: float
    width_half: float
    fp8_scale: float
    fp4_scale: float
    moe_scale: float
    memory_efficiency: float
    comm_efficiency: float
    idle_power_fraction: float
    level: str = "uncalibrated"  # 'device' (fitted on it), 'family' (a device of its family fitted), 'uncalibrated'
    sources: Mapping[str, str] = field(default_factory=dict)

    def scale(self, unit: str) -> float:
        return {"fp8": self.fp8_scale, "fp4": self.fp4_scale}.get(unit, 1.0)


def _block(block, src, path, where) -> dict:
    out = {}
    for name, node in (block or {}).items():
        if name not in PARAMS:
            raise SpecError(f"{path}: {where}.{name}: unknown parameter; expected one of {', '.join(PARAMS)}")
        if not isinstance(node, dict) or "value" not in node or not node.get("source"):
            raise SpecError(f"{path}: {where}.{name}: expected {{value: <number>, source: ...}}")
        try:
            v = float(node["value"])
        except (TypeError, ValueError):
            raise SpecError(f"{path}: {where}.{name}: got {node['value']!r}; expected a number") from None
        if v < 0 or (name in _FRACTIONS and v > 1) or (name in _FRACTIONS[:3] and v == 0):
            raise SpecError(f"{path}: {where}.{name}: {v} is out of range")
        out[name] = (v, str(src.get(node["source"], node["source"])))
    return out


@functools.lru_cache(maxsize=None)
def _tables(key) -> tuple[dict, frozenset]:
    levels: dict = {}
    fitted: set = set()
    for root in reversed(search_roots()):
        folder = root / "calibration" / "training"
        for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else ():
            doc = read_yaml(path) or {}
            src = doc.get("sources") or {}
            levels.setdefault(("global", ""), {}).update(_block(doc.get("global"), src, str(path), "global"))
            for kind in ("families", "devices"):
                for name, block in (doc.get(kind) or {}).items():
                    levels.setdefault((kind, name), {}).update(_block(block, src, str(path), f"{kind}.{name}"))
            fitted.update(map(str, doc.get("fitted_families") or ()))
    missing = [p for p in PARAMS if p not in levels.get(("global", ""), {})]
    if missing:
        raise SpecError(f"calibration/training: parameter '{missing[0]}' is defined in no file")
    return levels, frozenset(fitted)


def train_efficiency(device: str, family: str) -> TrainEfficiency:
    """Parameters for one device (most specific level wins) and how close the fit comes to it:
    'device' (its own rows were fitted), 'family' (devices of its family were), 'uncalibrated'."""
    levels, fitted = _tables(catalog_key())
    merged: dict = {}
    own = False
    for kind, name in (("global", ""), ("families", family), ("devices", device)):
        block = levels.get((kind, name), {})
        merged.update(block)
        own = own or (kind == "devices" and block.get("compute_efficiency", (0, ""))[1].startswith("fit"))
    level = "device" if own else "family" if family in fitted else "uncalibrated"
    return TrainEfficiency(**{p: merged[p][0] for p in PARAMS}, level=level,
                           sources=MappingProxyType({p: merged[p][1] for p in PARAMS}))
