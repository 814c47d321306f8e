"""Calibrated efficiencies kept in the order of the roofs: a device whose roofs all reach another's is not predicted
slower because the two were fitted apart.

For every catalogue device D' of D's family that D dominates (every peak D' states, D states at least as high, and
D's memory bandwidth is at least D''s), under the same engine:
    compute_efficiency(D) >= compute_efficiency(D') · max_u peak_u(D') / peak_u(D)
    memory_efficiency(D)  >= memory_efficiency(D')  · bandwidth(D') / bandwidth(D)
so that D's achieved roofs (peak × efficiency, bandwidth × efficiency) are at least D''s, where both values come
from the same fit (the same source): a user's calibration of D, from their own measurements, stands. Device fits
apart had
inverted them: llama.cpp's A100 SXM compute efficiency 0.339 against the A100 PCIe's 0.388 (same peaks) predicted
the SXM's q4_0 TTFT 13 % slower, where the measurements of both on a common workload have it 1.10x faster
(README, Defaults: a device with higher roofs is not predicted slower).
"""
from __future__ import annotations

import dataclasses
import functools
from types import MappingProxyType


@functools.lru_cache(maxsize=None)
def _dominated(key, hardware_id: str) -> tuple:
    """The catalogue devices of hardware_id's family that it dominates (`key`: the catalogue's state)."""
    from costmodel.errors import CostModelError
    from costmodel.spec.hardware import all_hardware, load_hardware

    try:
        d = load_hardware(hardware_id)
    except CostModelError:  # not a catalogue id ('-', a spec file): nothing to compare with
        return ()
    return tuple(o for o in all_hardware() if o.id != d.id and o.family == d.family and dominates(d, o))


def dominates(d, o) -> bool:
    """d's peaks (every format o states) and memory bandwidth are all at least o's."""
    return (d.memory_bandwidth >= o.memory_bandwidth > 0
            and all(d.peaks.get(u, 0.0) >= p for u, p in o.peaks.items()))


def envelope(eff, hardware_id: str, efficiency_of):
    """`eff` (hardware_id's Efficiency) with its compute and memory efficiencies raised to the dominated devices'
    achieved roofs where those are higher; `efficiency_of(device)` gives another device's Efficiency (None where
    the engine does not run on it). The source names the device that set a raised value."""
    from costmodel.spec.catalog import catalog_key
    from costmodel.spec.hardware import load_hardware

    others = _dominated(catalog_key(), hardware_id)
    if not others:
        return eff
    d = load_hardware(hardware_id)
    best = {"compute_efficiency": (eff.compute_efficiency, None), "memory_efficiency": (eff.memory_efficiency, None)}
    for o in others:
        e = efficiency_of(o)
        if e is None or e.engine != eff.engine:
            continue
        ratio = {"compute_efficiency": max((p / d.peaks[u] for u, p in o.peaks.items() if d.peaks[u] > 0), default=0.0),
                 "memory_efficiency": o.memory_bandwidth / d.memory_bandwidth}
        for name, r in ratio.items():
            if e.sources.get(name) != eff.sources.get(name):  # a value of another fit (a user's measurements of
                continue                                       # this device) is not overruled by the shipped one
            floor = getattr(e, name) * r
            if floor > best[name][0]:
                best[name] = (floor, o.id)
    raised = {k: v for k, (v, by) in best.items() if by is not None}
    if not raised:
        return eff
    sources = dict(eff.sources)
    for k, (v, by) in best.items():
        if by is not None:
            sources[k] = (f"{getattr(eff, k):.3g} ({eff.sources.get(k, '?')}) raised to {by}'s achieved roof, whose "
                          f"roofs this device's all reach (spec/roof_order.py)")
    return dataclasses.replace(eff, sources=MappingProxyType(sources), **raised)
