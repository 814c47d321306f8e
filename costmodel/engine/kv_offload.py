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

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from costmodel.errors import WorkloadError


@dataclass(frozen=True)
class Tier:
    """An offload tier: `bytes_per_device` of cache behind each device of a replica, read at `bandwidth`
    bytes/s per device (one direction)."""

    kind: str  # cpu | nvme
    bytes_per_device: float
    bandwidth: float
    description: str


def offload_form(text: str) -> tuple[str, float, float | None]:
    """(kind, GiB, GB/s or None) of a --kv-offload `cpu:GIB[@GBPS]` or `nvme:GIB@GBPS`, its form only."""
    usage = "expected none, cpu:GIB[@GB/s] or nvme:GIB@GB/s (capacity per replica, read rate per device)"
    m = re.fullmatch(r"(cpu|nvme):([0-9.eE+]+)(?:@([0-9.eE+]+))?", str(text).strip())
    try:
        gib, rate = (float(m.group(2)), float(m.group(3)) if m.group(3) else None) if m else (math.nan, None)
    except ValueError:
        gib, rate = math.nan, None
    if not m or not (math.isfinite(gib) and gib > 0) or (rate is not None and not (math.isfinite(rate) and rate > 0)):
        raise WorkloadError(f"--kv-offload {text}: {usage}")
    if rate is None and m.group(1) == "nvme":
        raise WorkloadError(f"--kv-offload {text}: give the drives' read rate per device, nvme:GIB@GB/s")
    return m.group(1), gib, rate


def parse_offload(text: str | None, host_link: float | None, devices: int) -> Tier | None:
    """--kv-offload `cpu:GIB[@GBPS]` (host memory per replica; read over the device's host link, half its
    bidirectional figure, unless GB/s are given) or `nvme:GIB@GBPS` (drives per replica and their read
    rate per device), or `none`. GIB is split evenly over the replica's devices."""
    if text is None or str(text).strip() in ("", "none"):
        return None
    kind, gib, rate = offload_form(text)
    link = host_link / 2 if host_link else None  # one direction of the spec's bidirectional host link
    if rate is None:
        if link is None:
            raise WorkloadError(f"--kv-offload {text}: the device's spec states no host link "
                                f"(interconnect.host); give cpu:GIB@GB/s")
        bw, how = link, f"the host link, {link / 1e9:g} GB/s per device"
    else:
        bw = rate * 1e9 if link is None else min(rate * 1e9, link)
        how = f"{bw / 1e9:g} GB/s per device" + (" (the host link's limit)" if link is not None and link < rate * 1e9
                                                  else "")
    return Tier(kind, gib * 2**30 / max(devices, 1), bw, f"{kind} {gib:g} GiB per replica over {how}")


def check_inputs(prefix_tokens, kv_offload, hit) -> None:
    """--prefix-tokens needs --prefix-hit; --kv-offload needs --prefix-tokens and its own form (a device's
    host link is checked where the device is known)."""
    if kv_offload not in (None, "", "none") and prefix_tokens is None:
        raise WorkloadError(f"--kv-offload {kv_offload}: give the reused set too, --prefix-tokens N (and "
                            f"--prefix-hit H)")
    if prefix_tokens is None:
        return
    if not (isinstance(prefix_tokens, (int, float)) and not isinstance(prefix_tokens, bool)
            and math.isfinite(prefix_tokens) and prefix_tokens >= 1):
        raise WorkloadError(f"--prefix-tokens {prefix_tokens}: expected the distinct reused tokens, >= 1")
    if not hit:
        raise WorkloadError(f"--prefix-tokens {prefix_tokens}: give the share of each prompt reused, --prefix-hit H")
    if kv_offload not in (None, "", "none"):
        offload_form(kv_offload)


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


class PrefixCache:
    """A replica's prefix cache over its KV pool and an offload tier. `perf(free, set_tokens)` is the
    replica (engine.serving.ReplicaPerf) when `free` bytes of the pool per device and the tier hold what
    they can of `set_tokens` reused tokens; its prefill tables are evaluated once over a grid of served
    shares h in [0, H] (H a grid point) and interpolated in h (prefill time is smooth in h)."""

    GRID = 64  # intervals of the served-share grid

    def __init__(self, cols: tuple, tp: int, pp: int, dp: int, ep: int, mtp: int, accept: float, prompt, gen,
                 percentile: float, hit: float, tier: Tier | None):
        from costmodel.engine.memory import kv_bytes_per_sequence, kv_bytes_per_token_layer, kv_pool
        from costmodel.engine.serving import perf_from_columns, prefill_lengths, prefill_tables

        m, f, hw = cols
        self.hit, self.tier, self.prompt = hit, tier, prompt
        self.base = perf_from_columns(m, f, hw, tp, pp, prompt, gen, percentile, dp, ep, mtp, accept, hit)
        self.hits = np.unique(np.append(np.linspace(0.0, hit, self.GRID + 1), hit))
        _, self.t_pre, self.wave = prefill_tables(m, f, hw, tp, pp, prompt, percentile, self.base.batches, self.hits,
                                                  dp, ep, mtp, accept)
        self.lengths = prefill_lengths(prompt, percentile)[1]
        a_tp = tp / dp
        self.pool = float(np.asarray(kv_pool(m, f, hw, tp, pp, dp, ep)[0]).reshape(-1)[0])
        self.kv_token = float(np.asarray(kv_bytes_per_token_layer(m, f, a_tp, pp) * m["kv_layers"]).reshape(-1)[0])
        self.kv_seq = float(np.asarray(kv_bytes_per_sequence(m, f, prompt.mean + gen.mean / 2, a_tp, pp, hw)).reshape(-1)[0])
        self.dp = dp

    def free_after(self, running: float) -> float:
        """The pool's bytes per device left to the cache with `running` sequences decoding (over dp groups)."""
        return self.pool - running / self.dp * self.kv_seq

    def perf(self, free: float, set_tokens: float):
        """(ReplicaPerf, (f_hbm, f_tier))."""
        held = shares(set_tokens, self.kv_token, free, self.tier)
        h, reload = effective(self.hit, *held, self.kv_token, self.tier)
        if h == self.hit and reload == 0.0:
            return self.base, held
        i = int(np.clip(np.searchsorted(self.hits, h), 1, len(self.hits) - 1))  # linear in h between grid points
        w = (h - self.hits[i - 1]) / (self.hits[i] - self.hits[i - 1])
        t_pre = (1 - w) * self.t_pre[i - 1] + w * self.t_pre[i] + self.lengths * reload
        wave = (1 - w) * self.wave[i - 1] + w * self.wave[i] + self.base.batches * self.lengths[0] * reload
        qs = tuple((q, float(t)) for (q, _), t in zip(self.base.prefill_quantiles, t_pre[2:]))
        return dataclasses.replace(self.base, t_prefill=float(t_pre[0]), t_prefill_q=float(t_pre[1]),
                                   t_prefill_batch=wave, prefill_quantiles=qs), held

    def settle(self, set_tokens: float, load, passes: int = 60):
        """(LoadStats, ReplicaPerf, (f_hbm, f_tier)) of the steady state under `load` (a function of a
        ReplicaPerf): the running batch n and the cache's room solve n = running(perf(pool − n·KV)) from
        n = 0. More running sequences leave less room, so more is prefilled and more runs: the iteration
        rises to the fixed point, or the load turns unstable on the way."""
        perf, held = self.perf(self.pool, set_tokens)
        stats = load(perf)
        for _ in range(passes):
            if not stats.ok:
                break
            nxt, nxt_held = self.perf(self.free_after(stats.running), set_tokens)
            new = load(nxt)
            done = new.ok and abs(new.running - stats.running) <= 1e-9 * max(1.0, stats.running)
            perf, held, stats = nxt, nxt_held, new
            if done:
                break
        return stats, perf, held

    def report(self, held: tuple, set_tokens: float) -> dict:
        f_hbm, f_tier = held
        h, reload = effective(self.hit, f_hbm, f_tier, self.kv_token, self.tier)
        return {"hit": self.hit, "set_tokens": set_tokens, "hbm_share": f_hbm, "tier_share": f_tier,
                "miss_share": 1 - f_hbm - f_tier, "served_share_of_prompt": h,
                "reload_s_per_prompt": reload * self.prompt.mean, "kv_bytes_per_token_per_device": self.kv_token,
                "tier": self.tier.description if self.tier else None}
