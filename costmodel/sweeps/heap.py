"""The C heap a sweep's chunks are evaluated in.

glibc serves a request of at least its mmap threshold with a mapping of its own, unmapped when freed, and
returns the heap's top to the system once more than its trim threshold lies free there (mallopt(3)). It
raises both as a process frees large blocks (the threshold to the largest block unmapped, up to 32 MiB; the
trim threshold to twice that), so whether a chunk's temporaries (arrays of 0.5-6 MB, tens of MB a chunk)
land in pages the chunk before freed or in fresh ones, each first written page a fault, depends on what the
process happened to free before. Measured in the chunks of a 10^7 sweep with the [fast] kernels (page faults
from getrusage, fresh processes): 0.03 and 0.11 x 10^6 in two runs of the same code; 0.50 x 10^6 (1.6-2.4 s of
system time, against 0.5-1.3) after a change that only stopped allocating eight arrays a chunk; with the
thresholds below, 0.017-0.019 x 10^6 both before and after it, most of them the first chunk's.
"""
from __future__ import annotations

import ctypes
import functools
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_FROM = 32 << 20  # glibc's own ceiling for the dynamic threshold (DEFAULT_MMAP_THRESHOLD_MAX, 64-bit)
TRIM_FROM = 2 * MMAP_FROM  # twice the threshold, as glibc's dynamic rule sets it
# the heap a chunk's row leaves free at the chunk's end, with a margin: glibc's mallinfo2 after a 10^7 sweep
# (benchmarks/bench_sweep.py heap --chunk N) measured 0.67 KiB a row with the [fast] kernels and 1.1 KiB on numpy's
# path (43 and 71 MiB free in chunks of 65,536; 173 and 274 MiB in chunks of 262,144), and 1.4 KiB in a sweep streamed
# to Parquet (its chunks carry their input columns; 350 MiB free in chunks of 262,144)
ROW_BYTES = 2 << 10
TRIM_MAX = (1 << 31) - 1  # mallopt's value is a C int

_trim = [0]  # the trim threshold set so far in this process


def retain(rows: int = 0) -> bool:
    """On glibc: requests under MMAP_FROM come from the heap, and its top goes back to the system only past
    max(TRIM_FROM, rows · ROW_BYTES) free, at most TRIM_MAX: a process evaluating chunks of `rows` configurations
    keeps what one chunk freed for the next. Set when it rises, never lowered; whether it is set."""
    mallopt = _mallopt()
    trim = min(max(TRIM_FROM, int(rows) * ROW_BYTES), TRIM_MAX)
    if mallopt is None:
        return False
    if trim > _trim[0]:
        if not (mallopt(M_MMAP_THRESHOLD, MMAP_FROM) and mallopt(M_TRIM_THRESHOLD, trim)):
            return False
        _trim[0] = trim
    return True


@functools.lru_cache(maxsize=None)
def _mallopt():
    """glibc's mallopt, or None where the system has none (not Linux, no C library symbols, no mallopt)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library symbols to look up, or one without mallopt
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt
