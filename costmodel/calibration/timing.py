"""Wall-clock timing of a benchmark call for `costmodel profile` (numpy and PyTorch alike)."""
from __future__ import annotations

import time


def best_time(fn, repeats: int, sync, calls: int = 1) -> float:
    """Seconds per call of fn: the best of `repeats` samples of `calls` back-to-back calls, after a warm-up."""
    fn()  # warm-up
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        best = min(best, (time.perf_counter() - t) / calls)
    return best
