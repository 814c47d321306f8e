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
if sys.argv[1] == "retain":
    from costmodel.sweeps import heap
    assert heap.retain()
def rounds(k):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(k):  # a chunk's temporaries: 40 arrays of 512 KiB written, then freed together
        held = [np.ones(1 << 16) for _ in range(40)]
        del held
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
rounds(1)
print(rounds(10))
"""


def _faults(how: str) -> int:
    done = subprocess.run([sys.executable, "-c", ROUNDS, how], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_a_retained_heap_takes_no_page_fault_per_chunk():
    """The control: glibc's default thresholds return the 20 MiB each round frees to the system, and the next
    round faults its pages back in (at least one fault per 4 KiB page of half of them); retained, the rounds
    reuse the heap (measured: 50,899 faults against 0 over ten rounds)."""
    assert _faults("default") >= 10 * 20 * 256 // 2
    assert _faults("retain") < 1000


def test_retain_sets_glibcs_thresholds_once_a_process(monkeypatch):
    """retain() calls mallopt with glibc's parameter numbers (malloc.h: M_MMAP_THRESHOLD -3, M_TRIM_THRESHOLD -1)
    and 32 MiB / 64 MiB, once however often a sweep calls it, and says whether both took; where mallopt refuses
    (returns 0) or the C library has none, False; on another system it does not look."""
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
        heap.retain.cache_clear()
        calls.clear()
        monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: Libc(answer))
        monkeypatch.setattr(heap.sys, "platform", system)
        return heap.retain(), heap.retain()

    try:
        assert fresh(1) == (True, True) and calls == [(-3, 32 << 20), (-1, 64 << 20)]  # one pair of calls
        assert fresh(0) == (False, False) and len(calls) == 1  # refused: the second parameter not tried
        assert fresh(None) == (False, False) and not calls
        assert fresh(1, "darwin") == (False, False) and not calls
    finally:
        heap.retain.cache_clear()  # the real C library again for the process's next sweep
