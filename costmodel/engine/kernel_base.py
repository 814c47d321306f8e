"""What the [fast] kernels share (kernels.py, memory_kernels.py, grid_kernels.py): numba's decorators as the
kernels use them, and rows_of."""
import numba
import numpy as np

jit = numba.njit(cache=True, error_model="numpy")  # x/0 is inf or NaN, as numpy's
inline = numba.njit(inline="always", error_model="numpy")  # compiled into each kernel that calls it


@jit
def rows_of(k, n):
    """An uninitialized (k, n) array whose rows start 192 bytes apart modulo 4 KiB (a row stride of n + 24): a
    kernel that writes k rows at once while reading other columns then does not evict its own lines (rows a
    multiple of 4 KiB apart share the cache's sets; measured in benchmarks/bench_sweep.py kernels)."""
    return np.empty((k, n + 24))[:, :n]
