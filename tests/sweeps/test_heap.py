"""A sweep's process keeps the heap its chunks freed (sweeps/heap.py): the next chunk's temporaries land in
pages already there, not in fresh ones, each a page fault."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from costmodel.sweeps import heap

ROUNDS = """
import resource, sys
import numpy as np
rows, size = int(sys.argv[2]), int(sys.argv[3])
if sys.argv[1] == "retain":
    from costmodel.sweeps import heap
    assert heap.retain(rows)
def rounds(k):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(k):  # a chunk's temporaries: 40 arrays written, then freed together
        held = [np.ones(size) for _ in range(40)]
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
rounds(1)
print(rounds(10))
"""


def _faults(how: str, rows: int = 0, size: int = 1 << 16) -> int:
    """Page faults over ten rounds of 40 arrays of `size` float64s, with glibc's thresholds ("default") or
    heap.retain(rows)'s."""
    done = subprocess.run([sys.executable, "-c", ROUNDS, how, str(rows), str(size)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


GLIBC = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")


@GLIBC
def test_a_retained_heap_takes_no_page_fault_per_chunk():
    """The control: glibc's default thresholds return the 20 MiB each round frees to the system, and the next
    round faults its pages back in (at least one fault per 4 KiB page of half of them); retained, the rounds
    reuse the heap (measured: 50,899 faults against 0 over ten rounds)."""
    assert _faults("default") >= 10 * 20 * 256 // 2
    assert _faults("retain") < 1000


@GLIBC
def test_the_heap_retained_grows_with_the_chunk():
    """Rounds of 80 MiB (40 arrays of 2 MiB, under the 32 MiB mmap threshold): past the 64 MiB trim threshold
    that chunks of 32,768 rows set (glibc's own), the heap's top goes back to the system each round and faults back
    in; chunks of 131,072 rows keep 256 MiB (ROW_BYTES a row), and the rounds reuse it."""
    size = 1 << 18
    assert heap.ROW_BYTES * (1 << 15) == heap.TRIM_FROM == 64 << 20
    assert _faults("retain", 1 << 15, size) >= 10 * 80 * 256 // 2
    assert _faults("retain", 1 << 17, size) < 1000


def test_retain_sets_glibcs_thresholds_when_they_rise(monkeypatch):
    """retain(rows) calls mallopt with glibc's parameter numbers (malloc.h: M_MMAP_THRESHOLD -3, M_TRIM_THRESHOLD
    -1): 32 MiB, and max(64 MiB, rows x 2 KiB) up to a C int, only when that is more than the process has set;
    it says whether both took. Where mallopt refuses (returns 0) or the C library has none, False; on another
    system it does not look."""
    calls = []

    class Libc:
        def __init__(self, answer):
            self.answer = answer

        @property
        def mallopt(self):
            if self.answer is None:
                raise AttributeError("mallopt")

            def mallopt(param, value):
                calls.append((param, value))
                return self.answer
            return mallopt

    def fresh(answer, system="linux"):
        heap._mallopt.cache_clear()
        heap._trim[0] = 0
        calls.clear()
        monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: Libc(answer))
        monkeypatch.setattr(heap.sys, "platform", system)
        return heap.retain(), heap.retain(1000)

    set_before = heap._trim[0]
    try:
        assert fresh(1) == (True, True) and calls == [(-3, 32 << 20), (-1, 64 << 20)]  # 1,000 rows: 64 MiB too
        assert heap.retain(1 << 17) and calls[2:] == [(-3, 32 << 20), (-1, 256 << 20)]  # raised
        assert heap.retain(1 << 16) and heap.retain(1 << 17) and len(calls) == 4  # never lowered, not set again
        assert heap.retain(10 ** 7) and calls[4:] == [(-3, 32 << 20), (-1, 2 ** 31 - 1)]  # a C int's largest
        assert fresh(0) == (False, False) and calls == [(-3, 32 << 20)] * 2  # refused: the second not tried
        assert fresh(None) == (False, False) and not calls
        assert fresh(1, "darwin") == (False, False) and not calls
    finally:
        heap._mallopt.cache_clear()  # the real C library again for the process's next sweep
        heap._trim[0] = set_before
