"""Benchmark: vectorized estimates per second and CLI cold-start time. Prints rates, asserts nothing.

    python benchmarks/bench_engine.py [--configs 1000000] [--chunk 16384]
"""
from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable

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


def grid_rate(shared: bool, fast: bool = False) -> float:
    """Configurations per second of a sweep's grid (GRID: 172,800 configurations), chunk by chunk as
    `costmodel sweep` evaluates it, with or without the engine's distinct-input sharing, with or without
    the compiled kernels (COSTMODEL_FAST; engine/fast.py)."""
    from costmodel.sweeps import grid
    from costmodel.sweeps.grid import Tables, chunks, evaluate_chunk, make_axes

    ax = make_axes(**GRID)
    tab = Tables(ax)
    os.environ["COSTMODEL_FAST"] = "1" if fast else "0"
    least, grid.FAST_MIN_CONFIGS = grid.FAST_MIN_CONFIGS, 0  # the kernels at this size too, where asked for
    try:
        start = time.perf_counter()
        for flat in chunks(ax.size):
            evaluate_chunk(tab, flat, shared=shared)
        return ax.size / (time.perf_counter() - start)
    finally:
        grid.FAST_MIN_CONFIGS = least


# an installed package has its bytecode cached (pip compiles it); a shell with PYTHONDONTWRITEBYTECODE
# would recompile costmodel's sources on every run while numpy & co. keep their .pyc files
CACHED_BYTECODE = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


ENGINE_MODULES = ("operators", "attention", "memory", "evaluate", "roofline", "phases", "speculative", "backbone_ops")


def numpy_functions() -> Callable[[], None]:
    """Replace the engine modules' element-wise functions (engine/elementwise.py) by numpy's own, as they
    were before their scalar paths; returns the function that puts them back."""
    numpy_own = dict(where=np.where, maximum=np.maximum, minimum=np.minimum, clip=np.clip, nan_to_num=np.nan_to_num,
                     ones_like=np.ones_like, as_float=lambda x: np.asarray(x, dtype=float), ceil=np.ceil,
                     floor=np.floor, isfinite=np.isfinite, mod=np.mod, power=np.power, divide=np.divide)
    saved = []
    for name in ENGINE_MODULES:
        module = importlib.import_module(f"costmodel.engine.{name}")
        for k, fn in numpy_own.items():
            if k in vars(module):
                saved.append((module, k, getattr(module, k)))
                setattr(module, k, fn)
    return lambda: [setattr(module, k, fn) for module, k, fn in saved]


def numpy_scalar_path() -> Callable[[], None]:
    """An estimate as before its Python floats: the engine's columns as numpy float64 scalars and the phases
    timed by numpy on arrays of operators (no scalar_times); returns the function that puts it back."""
    from costmodel.engine import columns
    from costmodel.engine.phases import PhaseOps

    est = importlib.import_module("costmodel.estimate")  # the module (costmodel.estimate is the function)
    numbers, scalar = est.numbers, PhaseOps._scalar
    est.numbers, PhaseOps._scalar = columns.scalars, lambda self, hw, f: None

    def restore():
        est.numbers, PhaseOps._scalar = numbers, scalar
    return restore


def formulas_as_they_are() -> Callable[[], None]:
    """Lower without code compiled per spec (engine/specialize.py): the formulas evaluated on every call, as before
    the two-stage evaluation; returns the function that puts it back."""
    from costmodel.engine import spec_keys

    key = spec_keys.columns_key
    spec_keys.columns_key = lambda d: None  # no spec: lower and the phases evaluate their formulas as they are

    def restore():
        spec_keys.columns_key = key
    return restore


# the variants estimate_ms times, each adding its change to the one before
VARIANTS = ("now", "formulas", "float64", "numpy", "arrays")


def _variant(name: str) -> Callable[[], None]:
    """Put the engine in variant `name` (VARIANTS); returns the function that puts it back."""
    est = importlib.import_module("costmodel.estimate")
    undo = []
    if name != "now":
        undo.append(formulas_as_they_are())
    if name not in ("now", "formulas"):
        undo.append(numpy_scalar_path())
    if name in ("numpy", "arrays"):
        undo.append(numpy_functions())
    if name == "arrays":
        est.numbers = lambda row: {k: np.asarray(v, dtype=float) for k, v in row.items()}
    est._spec_columns.cache_clear()  # the columns are built as this variant builds them

    def restore():
        for fn in reversed(undo):
            fn()
        est._spec_columns.cache_clear()
    return restore


def estimate_ms(calls: int = 200, repeats: int = 5) -> dict:
    """{variant: ms}: the median over `repeats` of the mean wall time of one in-process costmodel.estimate()
    (after a warm-up; `now, best`: the least of its rounds), interleaved with three baselines in the same run: the
    engine's columns as numpy float64 scalars timed by numpy on arrays of operators (`float64`: as before the
    estimate's Python floats), with numpy's own element-wise functions as well (`numpy`: as before their scalar
    paths), and with 0-d array columns as well (`arrays`: as before columns.scalars); and `varied`, a different
    workload each call (only the spec-derived columns are memoized, never a result)."""
    import costmodel

    costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16")
    times: dict = {k: [] for k in VARIANTS + ("varied",)}
    workloads = [dict(batch=b, prompt=p, gen=g) for b in (1, 8, 64) for p in (128, 512, 4096) for g in (16, 256)]
    for _ in range(repeats):
        t = time.perf_counter()  # a different workload each call: nothing of an estimate's result is cached
        for i in range(calls):
            costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16", **workloads[i % len(workloads)])
        times["varied"].append((time.perf_counter() - t) / calls)
        for name in VARIANTS:
            restore = _variant(name)
            try:
                costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16")
                t = time.perf_counter()
                for _ in range(calls):
                    costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16")
                times[name].append((time.perf_counter() - t) / calls)
            finally:
                restore()
    out = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    out["now, best"] = min(times["now"]) * 1e3  # timeit's reading: the rounds other processes slowed least
    return out


# llm-analysis (github.com/cli99/llm-analysis, `pip install llm-analysis`): the same question for its closest
# entries, Llama 2 70B on an H100 SXM 80GB with 4-bit weights and 16-bit activations, batch 1, 512 prompt
# tokens, 128 generated, on the tensor-parallel degree costmodel picks; timed inside its own process
LLM_ANALYSIS = """
import logging, sys, time
from llm_analysis.analysis import infer
kw = dict(model_name="upstage_Llama-2-70b-instruct-v2", gpu_name="h100-sxm-80gb", dtype_name="w4a16e16",
          log_level="ERROR", batch_size_per_gpu=1, seq_len=512, num_tokens_to_generate=128, tp_size=int(sys.argv[1]))
infer(**kw)
t = time.perf_counter()
for _ in range({calls}):
    infer(**kw)
print((time.perf_counter() - t) / {calls} * 1e3)
"""


def llm_analysis_ms(python: str | None, tp: int, calls: int = 200, repeats: int = 3) -> tuple[float, float] | None:
    """(costmodel ms, llm-analysis ms): the medians over `repeats` interleaved rounds of one in-process
    estimate each (same workload as LLM_ANALYSIS), llm-analysis run by `python` (an interpreter where it
    is installed; default this one), or None where it is not installed."""
    import costmodel

    python = python or sys.executable
    code = LLM_ANALYSIS.format(calls=calls)
    probe = subprocess.run([python, "-c", "import llm_analysis"], capture_output=True)
    if probe.returncode:
        return None
    ours, theirs = [], []
    costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16", prompt=512, gen=128)
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16", prompt=512, gen=128)
        ours.append((time.perf_counter() - t) / calls * 1e3)
        done = subprocess.run([python, "-c", code, str(tp)], capture_output=True, text=True, check=True)
        theirs.append(float(done.stdout.strip().splitlines()[-1]))
    return statistics.median(ours), statistics.median(theirs)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--configs", type=int, default=1_000_000)
    p.add_argument("--cold-only", action="store_true", help="Only the cold-start figures.")
    p.add_argument("--chunk", type=int, default=None, help="configurations per engine call (default: the sweeps')")
    p.add_argument("--llm-analysis", metavar="PYTHON", default=None,
                   help="an interpreter with llm-analysis installed (default: this one, where it is)")
    a = p.parse_args()
    if not a.cold_only:
        from costmodel.sweeps.grid import CHUNK

        chunk = a.chunk or CHUNK
        sweep_rate(min(a.configs, 20_000), chunk)  # warm-up
        rate, _ = sweep_rate(a.configs, chunk)
        old, _ = sweep_rate(a.configs, 1 << 14)  # the previous default, in the same run
        print(f"vectorized sweep: {a.configs:,} configurations, chunks of {chunk:,}: {rate:,.0f} estimates/s "
              f"(chunks of 16,384: {old:,.0f}/s, {rate / old:.2f}x; random rows share no inputs)")
        from costmodel.engine.fast import enabled

        user_flag = os.environ.get("COSTMODEL_FAST")
        kinds = {"every configuration": (False, False), "shared": (True, False)}
        if enabled():
            kinds["shared + [fast]"] = (True, True)
            grid_rate(True, True)  # warm-up (compiles the kernels or loads them from numba's cache)
        grid_rate(True)  # warm-up
        runs: dict = {k: [] for k in kinds}
        for _ in range(3):  # interleaved rounds; the median of each
            for k, args in kinds.items():
                runs[k].append(grid_rate(*args))
        rates = {k: statistics.median(v) for k, v in runs.items()}
        base = rates["every configuration"]
        print("sweep grid of 172,800 (6 models x 6 devices x 4 formats x 10 batches x 4 tp x 6 prompts x 5 gens), "
              "configurations/s: " + "; ".join(f"{k} {r:,.0f} ({r / base:.2f}x)" for k, r in rates.items())
              + ("" if enabled() else "; [fast] not installed (pip install 'costmodel[fast]')"))
        os.environ.pop("COSTMODEL_FAST")
        if user_flag is not None:
            os.environ["COSTMODEL_FAST"] = user_flag
        ms = estimate_ms()
        now = ms["now"]
        print(f"one in-process costmodel.estimate('llama-3.1-70b', 'h100-sxm', 'w4a16'): {now:.2f} ms "
              f"(the least round {ms['now, best']:.2f} ms; issue 16's target: 0.5 ms); {ms['formulas']:.2f} ms with the "
              f"formulas evaluated every call, not compiled per spec ({ms['formulas'] / now:.2f}x); "
              f"{ms['float64']:.2f} ms on numpy "
              f"float64 scalars timed by numpy "
              f"({ms['float64'] / now:.2f}x), {ms['numpy']:.2f} ms with numpy's element-wise functions as well "
              f"({ms['numpy'] / now:.2f}x), {ms['arrays']:.2f} ms with 0-d array columns as well "
              f"({ms['arrays'] / now:.2f}x); {ms['varied']:.2f} ms cycling through 18 workloads (batch, prompt, gen)")
        import costmodel

        tp = int(costmodel.estimate("llama-3.1-70b", "h100-sxm", "w4a16", prompt=512, gen=128).workload.tp)
        vs = llm_analysis_ms(a.llm_analysis, tp)
        if vs is None:
            print("llm-analysis not installed (pip install llm-analysis, or --llm-analysis PYTHON)")
        else:
            print(f"one estimate, Llama 70B on an H100 at W4A16, batch 1, 512 + 128 tokens, tp={tp}, 3 interleaved "
                  f"rounds: costmodel {vs[0]:.2f} ms, llm-analysis {vs[1]:.2f} ms ({vs[0] / vs[1]:.1f}x its time)")
    cold_figures()


WHOLE_APP = ("import sys; from costmodel.cli import main as M; M._app_for = lambda args: M.app; "
             "sys.argv = ['costmodel', *sys.argv[1:]]; M.main()")  # every command built, as before _app_for


def cold_figures(rounds: int = 9) -> None:
    """Cold starts, interleaved round by round (the machine's speed drifts between rounds): each figure
    is the median over rounds of its time over the bare imports' time in the same round."""
    import typer

    cmd = ["estimate", "llama-70b", "--hw", "h100", "--fmt", "w4a16", "--json"]
    with tempfile.TemporaryDirectory() as empty:  # a parse cache that is always empty: every YAML parsed
        no_cache = {"COSTMODEL_CACHE": os.path.join(empty, "none"), "COSTMODEL_NO_PARSE_CACHE": "1"}
        runs = {"python alone": ["-c", "pass"], "bare imports": ["-c", "import numpy, typer, rich, yaml"],
                "--help": ["-m", "costmodel", "--help"], "estimate": ["-m", "costmodel", *cmd],
                "estimate, every command built": ["-c", WHOLE_APP, *cmd],
                "estimate, every YAML parsed": ["-m", "costmodel", *cmd]}
        times: dict = {k: [] for k in runs}
        for r in range(rounds + 1):  # round 0 warms the bytecode and parse caches
            for name, args in runs.items():
                env = {**CACHED_BYTECODE, **(no_cache if "YAML" in name else {})}
                t = time.perf_counter()
                subprocess.run([sys.executable, *args], capture_output=True, check=True, env=env)
                if r:
                    times[name].append(time.perf_counter() - t)
    ratio = {k: statistics.median(x / b for x, b in zip(v, times["bare imports"])) for k, v in times.items()}
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"typer {typer.__version__} (0.29 coerces every option through pydantic: +0.25 s per call)")
    print(f"cold start, {rounds} interleaved rounds, bytecode cached; median time and median ratio to the bare "
          f"imports of numpy+typer+rich+yaml in the same round:")
    for k in runs:
        print(f"  {k:32s} {ms[k]:6.0f} ms  {ratio[k]:.2f}x")


if __name__ == "__main__":
    main()
