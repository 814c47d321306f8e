"""Calibrated efficiencies kept in the order of the roofs: a device whose roofs all reach another's is not predicted
slower because the two were fitted apart.

For every catalogue device D' of D's family that D dominates (every peak D' states, D states at least as high, and
D's memory bandwidth is at least D''s), under the same engine:
    compute_efficiency(D) >= compute_efficiency(D') · max_u peak_u(D') / peak_u(D)
    memory_efficiency(D)  >= memory_efficiency(D')  · bandwidth(D') / bandwidth(D)
so that D's achieved roofs (peak × efficiency, bandwidth × efficiency) are at least D''s; a value D's own device
block states from another fit than D''s (a user's calibration of D, from their measurements) stands. Device fits
apart had inverted them: llama.cpp's A100 SXM compute efficiency 0.339 against the A100 PCIe's 0.388 (same peaks)
predicted the SXM's q4_0 TTFT 13 % slower, where the measurements of both on a common workload have it 1.10x faster
(README, Defaults: a device with higher roofs is not predicted slower).
"""
from __future__ import annotations

import dataclasses
import functools
from types import MappingProxyType


def _dominated(d) -> tuple:
    """The catalogue devices of d's family that d dominates, computed once per catalogue state and device."""
    from costmodel.spec.catalog import catalog_key

    return _dominated_in(catalog_key(), d.id, d.family, d.memory_bandwidth, tuple(sorted(d.peaks.items())))


@functools.lru_cache(maxsize=None)
def _dominated_in(key, device_id: str, family: str, bandwidth: float, peaks: tuple) -> tuple:
    from costmodel.spec.hardware import all_hardware

    return tuple(o for o in all_hardware() if o.id != device_id and o.family == family
                 and _reaches(bandwidth, dict(peaks), o))


def dominates(d, o) -> bool:
    """d's peaks (every format o states) and memory bandwidth are all at least o's."""
    return _reaches(d.memory_bandwidth, d.peaks, o)


def _reaches(bandwidth: float, peaks: dict, o) -> bool:
    return bandwidth >= o.memory_bandwidth > 0 and all(peaks.get(u, 0.0) >= p for u, p in o.peaks.items())


def envelope(eff, d, efficiency_of, own: dict):
    """`eff` (device d's Efficiency; d its Hardware, None where unknown) with its compute and memory efficiencies
    raised to the dominated devices' achieved roofs where those are higher; `efficiency_of(device)` gives another
    device's Efficiency (None where the engine does not run on it); `own` the sources of the values d's own
    device-level blocks state. A value of d's own device block from another fit than the other device's (a user's
    calibration of d, from their measurements) stands. The source keeps its own text and names the device that
    raised it."""
    others = _dominated(d) if d is not None else ()
    if not others:
        return eff
    best = {"compute_efficiency": (eff.compute_efficiency, None), "memory_efficiency": (eff.memory_efficiency, None)}
    for o in others:
        e = efficiency_of(o)
        if e is None or e.engine != eff.engine:
            continue
        ratio = {"compute_efficiency": max((p / d.peaks[u] for u, p in o.peaks.items() if d.peaks.get(u, 0) > 0),
                                           default=0.0),
                 "memory_efficiency": o.memory_bandwidth / d.memory_bandwidth}
        for name, r in ratio.items():
            mine = eff.sources.get(name)
            if own.get(name) == mine and e.sources.get(name) != mine:
                continue
            floor = getattr(e, name) * r
            if floor > best[name][0]:
                best[name] = (floor, o.id)
    raised = {k: v for k, (v, by) in best.items() if by is not None}
    if not raised:
        return eff
    sources = dict(eff.sources)
    for k, (v, by) in best.items():
        if by is not None:
            sources[k] = (f"{eff.sources.get(k, '?')}; {getattr(eff, k):.3g} raised to {by}'s achieved roof, whose "
                          f"roofs this device's all reach (spec/roof_order.py)")
    return dataclasses.replace(eff, sources=MappingProxyType(sources), **raised)
