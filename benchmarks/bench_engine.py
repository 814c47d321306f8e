"""Benchmark: vectorized estimates per second and CLI cold-start time. Prints rates, asserts nothing.

    python benchmarks/bench_engine.py [--configs 1000000] [--chunk 16384]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from costmodel.engine.columns import format_columns, hardware_columns, model_columns, take
from costmodel.engine.evaluate import evaluate
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model

MODELS = ["llama-3.1-8b", "llama-3.1-70b", "mixtral-8x7b", "qwen2.5-7b", "gemma-2-9b", "deepseek-v3"]
DEVICES = ["h100-sxm", "h200-sxm", "b200", "a100-sxm-80gb", "l40s", "mi300x"]
FORMATS = ["bf16", "fp8", "w4a16", "nvfp4"]


def sweep_rate(n: int, chunk: int, seed: int = 0) -> tuple[float, float]:
    """Configurations per second over n random (model, device, format, batch, lengths) rows."""
    rng = np.random.default_rng(seed)
    models = [load_model(m) for m in MODELS]
    devices = [load_hardware(h) for h in DEVICES]
    formats = [load_format(f) for f in FORMATS]
    mc = model_columns(models)
    hc = hardware_columns(devices)
    pairs = [(f, h, None, False) for h in devices for f in formats]
    fc = format_columns(pairs)
    start = time.perf_counter()
    done = 0
    checksum = 0.0
    while done < n:
        k = min(chunk, n - done)
        mi = rng.integers(0, len(models), k)
        hi = rng.integers(0, len(devices), k)
        fi = hi * len(formats) + rng.integers(0, len(formats), k)
        batch = rng.integers(1, 257, k).astype(float)
        prompt = rng.integers(1, 8193, k).astype(float)
        gen = rng.integers(1, 2049, k).astype(float)
        r = evaluate(take(mc, mi), take(fc, fi), take(hc, hi), batch, prompt, gen, 0.0, 1.0, 1.0, 1.0)
        checksum += float(np.nansum(r.metrics["tpot_s"]))
        done += k
    elapsed = time.perf_counter() - start
    return n / elapsed, checksum


GRID = dict(models=MODELS, hw=DEVICES, fmt=FORMATS, batch=[1, 2, 4, 8, 16, 32, 64, 128, 256, "max"], tp=[1, 2, 4, 8],
            prompt=[128, 512, 1024, 2048, 4096, 8192], gen=[64, 128, 256, 512, 1024])


def grid_rate(shared: bool) -> float:
    """Configurations per second of a sweep's grid (GRID: 172,800 configurations), chunk by chunk as
    `costmodel sweep` evaluates it, with or without the engine's distinct-input sharing."""
    from costmodel.sweeps.grid import Tables, chunks, evaluate_chunk, make_axes

    ax = make_axes(**GRID)
    tab = Tables(ax)
    start = time.perf_counter()
    for flat in chunks(ax.size):
        evaluate_chunk(tab, flat, shared=shared)
    return ax.size / (time.perf_counter() - start)


# an installed package has its bytecode cached (pip compiles it); a shell with PYTHONDONTWRITEBYTECODE
# would recompile costmodel's sources on every run while numpy & co. keep their .pyc files
CACHED_BYTECODE = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def estimate_ms(calls: int = 200, repeats: int = 5) -> float:
    """Median over `repeats` of the mean wall time of one in-process costmodel.estimate() (after a warm-up)."""
    import costmodel

    costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16")
        times.append((time.perf_counter() - t) / calls)
    return statistics.median(times) * 1e3


def cold_start(args: list[str], repeats: int = 5, env: dict | None = None) -> float:
    env = {**CACHED_BYTECODE, **(env or {})}
    subprocess.run([sys.executable, "-m", "costmodel", *args], capture_output=True, check=True, env=env)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "costmodel", *args], capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def python_run(code: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=CACHED_BYTECODE)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--configs", type=int, default=1_000_000)
    p.add_argument("--cold-only", action="store_true", help="Only the cold-start figures.")
    p.add_argument("--chunk", type=int, default=None, help="configurations per engine call (default: the sweeps')")
    a = p.parse_args()
    if not a.cold_only:
        from costmodel.sweeps.grid import CHUNK

        chunk = a.chunk or CHUNK
        sweep_rate(min(a.configs, 20_000), chunk)  # warm-up
        rate, _ = sweep_rate(a.configs, chunk)
        old, _ = sweep_rate(a.configs, 1 << 16)  # the previous default, in the same run
        print(f"vectorized sweep: {a.configs:,} configurations, chunks of {chunk:,}: {rate:,.0f} estimates/s "
              f"(chunks of 65,536: {old:,.0f}/s, {rate / old:.2f}x)")
        grid_rate(True)  # warm-up
        rates = {s: statistics.median(grid_rate(s) for _ in range(3)) for s in (False, True)}
        print(f"sweep grid of 172,800 (6 models x 6 devices x 4 formats x 10 batches x 4 tp x 6 prompts x 5 gens): "
              f"{rates[True]:,.0f} configurations/s evaluating each phase once per distinct input, "
              f"{rates[False]:,.0f}/s evaluating every configuration ({rates[True] / rates[False]:.2f}x)")
        print(f"one in-process costmodel.estimate('llama-3.1-70b', 'h100-sxm', 'w4a16'): {estimate_ms():.2f} ms "
              f"(issue 16's target: 0.5 ms)")
    py = python_run("pass")
    bare = python_run("import numpy, typer, rich, yaml")
    helptime = cold_start(["--help"])
    cmd = ["estimate", "llama-70b", "--hw", "h100", "--fmt", "w4a16", "--json"]
    with tempfile.TemporaryDirectory() as empty:  # a parse cache that is always empty: every YAML parsed
        no_cache = cold_start(cmd, env={"COSTMODEL_CACHE": os.path.join(empty, "none"),
                                        "COSTMODEL_NO_PARSE_CACHE": "1"})
    est = cold_start(cmd)
    import typer

    print(f"typer {typer.__version__} (0.29 coerces every option through pydantic: +0.25 s per call)")
    print(f"cold start (median of 5, bytecode cached): python alone {py * 1e3:.0f} ms, bare imports of numpy+typer+rich+yaml "
          f"{bare * 1e3:.0f} ms, 'costmodel --help' {helptime * 1e3:.0f} ms ({helptime / bare:.2f}x the bare imports)")
    print(f"'costmodel {' '.join(cmd)}': {est * 1e3:.0f} ms with the parse cache ({est / bare:.2f}x the bare imports), "
          f"{no_cache * 1e3:.0f} ms parsing every YAML ({no_cache / bare:.2f}x)")

if __name__ == "__main__":
    main()
