"""An in-memory sweep's batch-free columns, held once per batch-free code rather than once per configuration.

The engine computes a configuration's largest batch, weight bytes and capacity from its memory terms that do not
depend on the batch (evaluate's seq_groups: one set of terms per batch-free code, grid._batch_free, which keeps
every coordinate but the batch's and whether the batch is the largest that fits). Every configuration of a code
therefore holds the same values, and a grid with n_b batches (the sweep's sixth axis) holds each one n_b times
over. Packed, they are a table of (outer axes, batch class, inner axes); the batch column is then
memory.batch_of(requested, max_batch), the engine's own formula. A 10^7 benchmark sweep's result drops from 115 to
83 bytes a configuration (benchmarks/bench_sweep.py rate; docs/benchmarks-history.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# the columns packed, by their values' name in the result; "batch" is derived from max_batch and the request
PACKED = ("max_batch", "weights_bytes", "capacity_bytes")
DERIVED_FROM_PACKED = ("batch",)
# periods of the outer axes in a chunk up to which Packing.fill copies slices (one per period and class)
_SLICES = 64


@dataclass(frozen=True)
class Packing:
    """Where a configuration's packed values sit: its flat index f = (outer · n_b + b) · inner + r (b its batch
    index, r its place on the axes after the batch) goes to (outer · n_classes + class of b) · inner + r, the class
    0 for a batch given as a number and 1 for the largest ("max", a negative request) where both occur."""

    n_b: int  # the batch axis's length
    inner: int  # configurations per batch index: the product of the axes after the batch
    size: int  # the sweep's configurations
    classes: np.ndarray  # the class of each batch index (intp)
    firsts: tuple  # the first batch index of each class: the rows that fill its entries

    @property
    def n_classes(self) -> int:
        return len(self.firsts)

    @property
    def entries(self) -> int:
        return self.size // self.n_b * self.n_classes

    def table(self, dtype) -> np.ndarray:
        return np.empty(self.entries, dtype=dtype)

    def fill(self, tables: dict, part: dict, start: int) -> None:
        """Write into each of `tables` the entries held by the configurations from flat index `start` on (part[k]:
        their values of table k, one each). Each entry is written from one configuration: the one at its class's
        first batch index."""
        n = len(next(iter(part.values())))
        src, dst = self._rows(start, start + n)
        for k, t in tables.items():
            for s, d in zip(src, dst):
                t[d] = part[k][s]

    def _rows(self, start: int, stop: int) -> tuple[list, list]:
        """(the chunk's rows that fill entries, counted from `start`; those entries): two lists of slices, one
        slice per period of the outer axes in the chunk and class, or two lists of one index array each where the
        periods are more than _SLICES."""
        period = self.n_b * self.inner
        outers = range(start // period, (stop - 1) // period + 1)
        pairs = []
        for o in outers if len(outers) <= _SLICES else ():
            for cls, b in enumerate(self.firsts):
                lo, hi = (o * self.n_b + b) * self.inner, (o * self.n_b + b + 1) * self.inner
                a, z = max(lo, start), min(hi, stop)
                if a < z:
                    e = (o * self.n_classes + cls) * self.inner - lo
                    pairs.append((slice(a - start, z - start), slice(a + e, z + e)))
        if len(outers) <= _SLICES:
            return [p[0] for p in pairs], [p[1] for p in pairs]
        o = np.arange(outers.start, outers.stop)[:, None, None]
        cls = np.arange(self.n_classes)[None, :, None]
        r = np.arange(self.inner)[None, None, :]
        rows = (o * self.n_b + np.asarray(self.firsts)[None, :, None]) * self.inner + r
        entry = (o * self.n_classes + cls) * self.inner + r
        inside = (rows >= start) & (rows < stop)
        return [rows[inside] - start], [entry[inside]]

    def index(self, start: int, n: int) -> np.ndarray:
        """The table entry of each of the n configurations from flat index `start` on: each period of the outer
        axes the same pattern (class · inner + r along it), offset by the period's first entry."""
        if n == 0:
            return np.zeros(0, dtype=np.intp)
        period = self.n_b * self.inner
        pattern = (self.classes[:, None] * self.inner + np.arange(self.inner)[None, :]).reshape(-1)
        first, last = start // period, (start + n - 1) // period
        offsets = np.arange(first, last + 1, dtype=np.intp) * (self.n_classes * self.inner)
        at = (offsets[:, None] + pattern[None, :]).reshape(-1)
        skip = start - first * period
        return at[skip:skip + n]


def packing(batch: np.ndarray, shape: tuple) -> Packing | None:
    """The Packing of a grid of axes `shape` (grid.Axes.shape; the batch the sixth, `batch` its values, negative for
    the largest that fits), or None where it would hold as many entries as configurations (one batch per class)."""
    batch = np.asarray(batch)
    n_b = len(batch)
    largest = batch < 0
    firsts = tuple(int(np.argmax(largest == cls)) for cls in (False, True) if (largest == cls).any())
    if n_b <= len(firsts):
        return None
    classes = np.zeros(n_b, dtype=np.intp) if len(firsts) == 1 else largest.astype(np.intp)
    return Packing(n_b, int(np.prod(shape[6:], dtype=np.int64)), int(np.prod(shape, dtype=np.int64)), classes,
                   firsts)
