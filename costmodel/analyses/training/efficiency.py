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
from costmodel.spec.catalog import builtin_root, catalog_key, read_yaml, search_roots

PARAMS = ("compute_efficiency", "width_half", "fp8_scale", "fp4_scale", "moe_scale", "memory_efficiency",
          "comm_efficiency", "idle_power_fraction")


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
    from costmodel.spec.engine_params import read_block

    return read_block(block, src, path, where, PARAMS)


def training_file(name: str) -> dict:
    """A shipped file of calibration/training/ (defaults.yaml, precision_law.yaml), never a user's copy."""
    return read_yaml(builtin_root() / "calibration" / "training" / name) or {}


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
