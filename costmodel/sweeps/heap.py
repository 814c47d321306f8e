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


@functools.lru_cache(maxsize=None)
def retain() -> bool:
    """Once a process, on glibc: requests under MMAP_FROM come from the heap, and its top goes back to the
    system only past TRIM_FROM free (so a sweep's process keeps up to 64 MiB it freed). Whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library symbols to look up, or one without mallopt
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_FROM)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_FROM))
