"""A prefix cache that spills from HBM to host memory or NVMe (KV offload): which share of the reused
prompt tokens each tier serves, and what reloading them costs.

A workload reuses prompt prefixes: a share H of each prompt's tokens belongs to a working set of S
distinct cached tokens (per replica). The replica keeps cached blocks in the free part of its KV pool
(the pool less the running sequences' KV: vLLM's prefix cache and SGLang's radix cache evict cached
blocks when running sequences need room), then in an offload tier of C_t bytes per device. With reuse
spread evenly over the set (LRU under uniform popularity keeps a random C/S of it), of the reused
tokens the tiers serve
    f_hbm = min(1, C_hbm / (S·b)),   f_tier = min(1 − f_hbm, C_t / (S·b)),   b = KV bytes per token per device,
and the rest miss and are prefilled again. A prompt of P tokens prefills P·(1 − H·(f_hbm + f_tier)) tokens
after waiting P·H·f_tier·b / bw_t to load the tier's share over its link (vLLM's CPU offloading
connector and LMCache load a request's cached blocks before its prefill).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from costmodel.errors import WorkloadError


@dataclass(frozen=True)
class Tier:
    """An offload tier: `bytes_per_device` of cache behind each device of a replica, read at `bandwidth`
    bytes/s per device (one direction)."""

    kind: str  # cpu | nvme
    bytes_per_device: float
    bandwidth: float
    description: str


def parse_offload(text: str | None, host_link: float | None, devices: int) -> Tier | None:
    """--kv-offload `cpu:GIB[@GBPS]` (host memory per replica; read over the device's host link, half its
    bidirectional figure, unless GB/s are given) or `nvme:GIB@GBPS` (drives per replica and their read
    rate per device), or `none`. GIB is split evenly over the replica's devices."""
    if text is None or str(text).strip() in ("", "none"):
        return None
    usage = "expected none, cpu:GIB[@GB/s] or nvme:GIB@GB/s (capacity per replica, read rate per device)"
    m = re.fullmatch(r"(cpu|nvme):([0-9.eE+]+)(?:@([0-9.eE+]+))?", str(text).strip())
    try:
        gib, rate = (float(m.group(2)), float(m.group(3)) if m.group(3) else None) if m else (math.nan, None)
    except ValueError:
        gib, rate = math.nan, None
    if not m or not (math.isfinite(gib) and gib > 0) or (rate is not None and not (math.isfinite(rate) and rate > 0)):
        raise WorkloadError(f"--kv-offload {text}: {usage}")
    kind = m.group(1)
    link = host_link / 2 if host_link else None  # one direction of the spec's bidirectional host link
    if rate is None:
        if kind == "nvme":
            raise WorkloadError(f"--kv-offload {text}: give the drives' read rate per device, nvme:GIB@GB/s")
        if link is None:
            raise WorkloadError(f"--kv-offload {text}: the device's spec states no host link "
                                f"(interconnect.host); give cpu:GIB@GB/s")
        bw, how = link, f"the host link, {link / 1e9:g} GB/s per device"
    else:
        bw = rate * 1e9 if link is None else min(rate * 1e9, link)
        how = f"{bw / 1e9:g} GB/s per device" + (" (the host link's limit)" if link is not None and link < rate * 1e9
                                                  else "")
    return Tier(kind, gib * 2**30 / max(devices, 1), bw, f"{kind} {gib:g} GiB per replica over {how}")


def shares(set_tokens: float, kv_per_token: float, hbm_free: float, tier: Tier | None) -> tuple[float, float]:
    """(f_hbm, f_tier): the shares of reused tokens the free KV pool and the offload tier hold (module
    docstring), per device: `kv_per_token` bytes, `hbm_free` bytes."""
    need = set_tokens * kv_per_token
    if need <= 0:
        return 1.0, 0.0
    f_hbm = min(1.0, max(hbm_free, 0.0) / need)
    f_tier = min(1.0 - f_hbm, tier.bytes_per_device / need) if tier is not None else 0.0
    return f_hbm, f_tier


def effective(hit: float, f_hbm: float, f_tier: float, kv_per_token: float, tier: Tier | None) -> tuple[float, float]:
    """(share of each prompt served from a cache, seconds of reload per prompt token): H·(f_hbm + f_tier)
    and H·f_tier·b / bw."""
    reload = hit * f_tier * kv_per_token / tier.bandwidth if tier is not None and f_tier > 0 else 0.0
    return hit * (f_hbm + f_tier), reload
