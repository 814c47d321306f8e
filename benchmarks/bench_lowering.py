"""Benchmark a sweep's lowering: a chunk's prefill and decode operators (operators.lower) with the absent
operators' shortcut against every formula evaluated, and the prefill's distinct rows among the configurations a
sweep writes against all of them; one chunk of each model of the grid. Prints times, ratios and counts; asserts
nothing.

    python benchmarks/bench_lowering.py [--configs 11000000] [--rounds 20]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench_sweep import axes_for


def captured(configs: int, at: float) -> tuple[str, list, list]:
    """(the chunk's model, the arguments of every operators.lower call, the prefill's distinct rows with and without
    `keep`) of the chunk at fraction `at` of the grid, evaluated as a sweep evaluates it."""
    from costmodel.engine import phases
    from costmodel.sweeps import heap
    from costmodel.sweeps.grid import Tables, chunk_size, evaluate_chunk, make_axes

    ax = make_axes(**axes_for(configs))
    chunk = chunk_size(ax.size)
    heap.retain(chunk)
    tab = Tables(ax)
    start = int(ax.size * at) // chunk * chunk
    flat = np.arange(start, min(start + chunk, ax.size), dtype=np.int64)
    calls, rows = [], []
    real_lower, real_find = phases.lower, phases.find_distinct

    def lower(*args, **kw):
        calls.append((args, kw))
        return real_lower(*args, **kw)

    def find(fast, *keys, keep=None):
        if keep is not None:  # the prefill's search: its rows among those written, and among all
            rows.append((len(real_find(fast, *keys, keep=keep)[0]), len(real_find(fast, *keys)[0])))
        return real_find(fast, *keys, keep=keep)

    phases.lower, phases.find_distinct = lower, find
    try:
        evaluate_chunk(tab, flat, inputs=False)
    finally:
        phases.lower, phases.find_distinct = real_lower, real_find
    return ax.models[start * len(ax.models) // ax.size].id, calls, rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--configs", type=int, default=11_000_000)
    p.add_argument("--rounds", type=int, default=20)
    a = p.parse_args()
    n = len(axes_for(a.configs)["models"])
    for k in range(n):  # the grid's models are its outermost axis: the middle chunk of each
        model, calls, rows = captured(a.configs, (k + 0.5) / n)
        med = timed(calls, a.rounds)
        sizes = ", ".join(f"{np.shape(args[3])[0]:,}" for args, _ in calls)
        print(f"{model}: one chunk's lowering ({len(calls)} calls, {sizes} rows), median of {a.rounds} interleaved "
              f"rounds: absent operators skipped {med['shortcut']:.2f} ms, every formula evaluated "
              f"{med['formulas']:.2f} ms: {med['formulas'] / med['shortcut']:.2f}x; the prefill's distinct rows "
              + "; ".join(f"{w:,} among the configurations written (valid and fitting), {e:,} among all"
                          for w, e in rows))


def timed(calls: list, rounds: int) -> dict:
    """The median ms of the lowering calls with the absent operators' shortcut and with it forced off (interleaved
    rounds: the machine's speed drifts between minutes)."""
    from costmodel.engine import operators

    times: dict = {"shortcut": [], "formulas": []}
    real = operators.all_plus
    for _ in range(rounds):
        for way in times:
            operators.all_plus = real if way == "shortcut" else (lambda *cols: False)
            try:
                t = time.perf_counter()
                for args, kw in calls:
                    operators.lower(*args, **kw)
                times[way].append((time.perf_counter() - t) * 1e3)
            finally:
                operators.all_plus = real
    return {k: statistics.median(v) for k, v in times.items()}

if __name__ == "__main__":
    main()
