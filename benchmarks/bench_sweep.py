"""Benchmark sweeps and Pareto filtering. Prints rates, peak memory and times; asserts nothing.

    python benchmarks/bench_sweep.py rate      [--configs 1000000]   # costmodel.sweeps.sweep, in memory
    python benchmarks/bench_sweep.py stream    [--configs 100000000] [--out /tmp/sweep.parquet]
    python benchmarks/bench_sweep.py pareto    [--rows 1000000] [--objectives 3]
    python benchmarks/bench_sweep.py loads                             # served at 8 concurrencies
"""
from __future__ import annotations

import argparse
import resource
import time

import numpy as np


def axes_for(n: int) -> dict:
    """A cartesian product of about n configurations over real catalogue entries."""
    models = ["llama-3.1-8b", "llama-3.1-70b", "qwen2.5-7b", "mixtral-8x7b", "gemma-2-9b", "deepseek-v3"]
    hw = ["h100", "h200", "b200", "a100", "l40s", "mi300x"]
    fmt = ["bf16", "fp8", "w4a16", "nvfp4"]
    base = len(models) * len(hw) * len(fmt) * 4  # x 4 tp values
    per = max(1, round((n / base) ** (1 / 3)))
    return dict(models=models, hw=hw, fmt=fmt, tp=[1, 2, 4, 8],
                batch=list(np.unique(np.geomspace(1, 1024, per).astype(int))),
                prompt=list(np.unique(np.geomspace(16, 32768, per).astype(int))),
                gen=list(np.unique(np.geomspace(16, 8192, per).astype(int))))


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("rate", "stream", "pareto", "loads"))
    p.add_argument("--configs", type=int, default=None)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--objectives", type=int, default=3)
    p.add_argument("--out", default="/tmp/costmodel-bench.parquet")
    a = p.parse_args()
    if a.what == "pareto":
        from costmodel.sweeps.pareto import non_dominated

        v = np.random.default_rng(0).random((a.rows, a.objectives))
        t = time.perf_counter()
        mask = non_dominated(v)
        print(f"Pareto filter: {a.rows:,} rows x {a.objectives} objectives in {time.perf_counter() - t:.2f} s "
              f"({int(mask.sum())} on the frontier)")
        return
    if a.what == "loads":
        loads()
        return
    from costmodel.sweeps.grid import make_axes
    from costmodel.sweeps.sweep import sweep, sweep_to_file

    axes = axes_for(a.configs or (1_000_000 if a.what == "rate" else 100_000_000))
    n = make_axes(**axes).size
    t = time.perf_counter()
    if a.what == "rate":
        r = sweep(**axes)
        dt = time.perf_counter() - t
        print(f"sweep in memory: {n:,} configurations in {dt:.1f} s = {n / dt:,.0f} configurations/s on one core; "
              f"{int(r['fits'].sum()):,} fit; peak RSS {peak_rss_gb():.2f} GB")
    else:
        rows = sweep_to_file(a.out, **axes)
        dt = time.perf_counter() - t
        print(f"sweep streamed to {a.out}: {rows:,} configurations in {dt:.0f} s = {rows / dt:,.0f}/s; "
              f"peak RSS {peak_rss_gb():.2f} GB")


def loads() -> None:
    """Load sweep (one replica evaluation per configuration, then the queueing model per load) next to
    the static sweep of the same configurations at the same number of batches, measured in this run."""
    from costmodel.sweeps.loads import load_sweep
    from costmodel.sweeps.sweep import sweep

    cfg = dict(models=["llama-3.1-8b", "qwen2.5-7b", "llama-3.1-70b"], hw=["h100", "a100", "l40s"], fmt=["bf16", "fp8"])
    levels = [1, 2, 4, 8, 16, 32, 64, 128]
    t = time.perf_counter()
    r = load_sweep(cfg["models"], cfg["hw"], cfg["fmt"], concurrency=levels)
    dt = time.perf_counter() - t
    configs = len(r) // len(levels) + len(r.dropped)
    t = time.perf_counter()
    s = sweep(**cfg, batch=levels)
    ds = time.perf_counter() - t
    print(f"load sweep: {configs} configurations x {len(levels)} concurrencies = {len(r)} rows in {dt:.2f} s "
          f"({configs / dt:.1f} configurations/s, {len(r) / dt:.0f} rows/s); static sweep of the same "
          f"{len(s)} rows in {ds:.3f} s: the load sweep is {dt / ds:.0f}x slower")


if __name__ == "__main__":
    main()
