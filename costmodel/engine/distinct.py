"""Distinct rows of key columns, so a term is evaluated once per distinct input and gathered back.

A sweep's grid repeats most inputs: a prefill does not depend on the generated length, a decode
step's operators other than attention not on any length. For key columns k1..kn (1-D, equal length
or scalars) `distinct` returns (first, inverse) with k[first][inverse] == k for every column: the
rows of `first` are evaluated and `[..., inverse]` scatters them back.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def distinct(*keys, starts=None) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) over the rows of the key columns. Runs of equal consecutive rows (a sweep's
    chunk in grid order repeats a key over its inner axes) are found first, by comparing each row with
    the one before, and only the runs' first rows are grouped, where that leaves under a quarter of the
    rows; rows are grouped by a 64-bit hash of their keys (one sort of one column, where a lexicographic
    sort sorts every column), checked against the keys themselves; a collision, or a NaN key (never
    equal to itself), takes the lexicographic sort. A number, or one broadcast to every row, is no key;
    integer columns are compared and hashed as integers (no conversion pass). `starts` (optional): rows,
    rising from 0, among which is every row where a key differs from the row before (a grid's chunk knows
    where its axes' runs start): the runs are not searched for, and each starts at one of them."""
    cols, n = key_columns(keys)
    if not cols or n == 0:
        return np.zeros(min(n, 1), dtype=np.intp), np.zeros(n, dtype=np.intp)
    if n > _RUNS_FROM:
        heads = run_starts(cols) if starts is None else np.asarray(starts, dtype=np.intp)
        if 4 * (len(heads) - 1) < n:  # group the runs' first rows; every row takes its run's group
            first, inverse = _hashed([c[heads] for c in cols], len(heads))
            return heads[first], np.repeat(inverse, np.diff(np.append(heads, n)))
    return _hashed(cols, n)


def key_columns(keys) -> tuple[list, int]:
    """(the key columns, 1-D, and the number of rows): a number, or a number broadcast to every row (stride 0), is
    the same on every row, so no key; integer columns (a grid's codes) stay integers, the rest are floats."""
    cols = [np.asarray(k) for k in keys]
    n = max((c.size for c in cols if c.ndim), default=1)
    return [(c if c.dtype.kind in "iu" else c.astype(float, copy=False)).reshape(-1) for c in cols
            if c.ndim and not (c.size > 1 and c.ndim == 1 and c.strides[0] == 0)], n


def run_starts(cols: list) -> np.ndarray:
    """The rows where a run of equal consecutive rows (over every key column) starts: 0 first."""
    new = cols[0][1:] != cols[0][:-1]
    for c in cols[1:]:
        new |= c[1:] != c[:-1]
    return np.concatenate(([0], np.flatnonzero(new) + 1))


# below 64 rows the comparison pass costs more than it could save; and the runs' first rows are hashed only
# where they are under a quarter of the rows, since the pass that finds them costs about as much as hashing
# a quarter of the rows (design choices, not fitted: the results are the same either way)
_RUNS_FROM = 64


def _hashed(cols: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    """distinct of 1-D key columns of n rows by a hash of each row's keys, checked."""
    h = np.zeros(n, dtype=np.uint64)
    bits = np.empty(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:  # multiply-add of each key's bits (+0.0: -0.0 and 0.0 are one key), then a shift-xor
            np.multiply(h, _MIX, out=h)
            if c.dtype.kind == "f":
                np.add(c, 0.0, out=bits.view(np.float64))
                h += bits
            else:
                h += c.astype(np.uint64)
            np.right_shift(h, _SHIFT, out=bits)
            h ^= bits
    first, inverse = _unique(h)
    if all(np.array_equal(c[first][inverse], c) for c in cols):
        return first, inverse
    return _sorted_distinct(cols, n)


def _unique(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(h, return_index=True, return_inverse=True)[1:] by an unstable sort (numpy's vectorized
    quicksort, twice as fast as the stable sort np.unique takes for its first indices) and each group's
    smallest index: the same arrays."""
    order = np.argsort(h)
    s = h[order]
    new = np.empty(len(h), dtype=bool)
    new[:1] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    return np.minimum.reduceat(order, np.flatnonzero(new)), _ranks(order, new)


def _ranks(order: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Each row's group: the number of group starts (`new`, in sorted order) up to its place in `order`."""
    inverse = np.empty(len(order), dtype=np.intp)
    inverse[order] = np.cumsum(new) - 1
    return inverse


_MIX, _SHIFT = np.uint64(0x9E3779B97F4A7C15), np.uint64(31)  # 2^64 / golden ratio (Knuth's multiplicative hash)


def _sorted_distinct(cols: list, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(first, inverse) by a lexicographic sort of the key columns and one pass to mark changes."""
    order = np.lexsort(cols[::-1])
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = False
    for c in cols:
        s = c[order]
        new[1:] |= s[1:] != s[:-1]
    return order[new], _ranks(order, new)


def distinct_codes(codes) -> tuple[np.ndarray, np.ndarray]:
    """distinct of one column of integer codes (rows with equal codes have equal inputs, by the caller's
    construction: a grid's coordinates). Where the codes span under four times the rows, a table over
    their range marks the ones present, and each row's group is the count of present codes below its own
    (no sort); otherwise `distinct`. `first` holds one row of each group (any row of a group has the same
    inputs, so the terms evaluated there are the same)."""
    codes = np.asarray(codes).reshape(-1)
    n = codes.size
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    lo, hi = int(codes.min()), int(codes.max())
    if hi - lo >= 4 * n:
        return distinct(codes)
    at = codes - lo
    present = np.zeros(hi - lo + 1, dtype=bool)
    present[at] = True
    inverse = (np.cumsum(present) - 1)[at]
    first = np.empty(int(present.sum()), dtype=np.intp)
    first[inverse] = np.arange(n)  # one row of each group (numpy does not say which of repeated targets wins)
    return first, inverse


def varies(x) -> bool:
    """x (1-D) takes more than one value."""
    x = np.asarray(x)
    return x.ndim > 0 and x.size > 1 and bool((x != x.flat[0]).any())


def rows(x, idx):
    """x at rows `idx` (a scalar, or one row broadcast over all, stays as it is)."""
    x = np.asarray(x)
    return x if x.ndim == 0 or x.shape[0] == 1 else x[idx]


class Gathered(Mapping):
    """The columns of a table (one row per catalogue entry) at row indices, each gathered on first use:
    a sweep's chunk reads most model columns only at its distinct rows, never at full size. Where every
    index is the same row (a chunk inside one block of a grid's categorical axes), each column is that
    one row, shape (1,), and broadcasts over the configurations: the same values element by element."""

    __slots__ = ("_table", "_idx", "_cache", "_runs", "records")

    def __init__(self, table: dict, idx, records: np.ndarray | None = None, runs: tuple | None = None):
        """`runs` (optional, for a 1-D idx): its runs of equal consecutive values as (value of each, length), where
        the caller knows them (a sweep's chunk, from its grid's blocks): no pass over idx to find them."""
        idx = np.asarray(idx)
        one = (idx.ndim == 1 and idx.size > 1 and idx[0] == idx[-1] and not varies(idx)) if runs is None else \
            len(runs[0]) == 1
        if one:  # every index the same row: that row, broadcast
            idx, runs = idx[:1], None
        elif runs is None:
            runs = _runs_of(idx)
        elif not _few(len(runs[0]), idx.size):  # short runs: gather row by row
            runs = None
        self._table, self._idx, self._cache, self._runs = table, idx, {}, runs
        self.records = records  # the table as records (fast.records), for the [fast] kernels that read rows

    def row_index(self, n: int) -> np.ndarray:
        """The table row of each of the n rows (an index of one row repeated)."""
        return np.ascontiguousarray(np.broadcast_to(self._idx, (n,)), dtype=np.int64)

    def __getitem__(self, key):
        try:
            return self._cache[key]
        except KeyError:
            x = self._table[key]
            if self._runs is not None and np.ndim(x) == 1 and len(x) > 1:  # a few long runs: repeat each value
                value = np.repeat(x[self._runs[0]], self._runs[1])
            else:
                value = rows(x, self._idx)
            self._cache[key] = value
            return value

    def __contains__(self, key) -> bool:
        return key in self._table

    def __iter__(self):
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)

    def table_rows(self) -> Gathered:
        """The table at the rows the indices hold, each once, where their runs (or a single row) tell them without a
        pass over the indices: columns holding the same set of values (for what asks whether any row has one);
        else this one."""
        if self._runs is None:
            return self
        return Gathered(self._table, np.unique(self._runs[0]), self.records)

    def at(self, idx) -> Gathered:
        return self if self._idx.shape == (1,) else Gathered(self._table, self._idx[idx], self.records)


def _runs_of(idx: np.ndarray) -> tuple | None:
    """(value of each run, its length) where a long index is a few runs of equal values (a chunk spanning a
    few blocks of the grid's categorical axes), else None: np.repeat of a run's value is ~3.6x cheaper
    than gathering each row (benchmarks/bench_sweep.py rate)."""
    if idx.ndim != 1 or idx.size < _RUNS_FROM:
        return None
    starts = run_starts([idx])
    if not _few(len(starts), idx.size):  # short runs: gather row by row
        return None
    return idx[starts], np.diff(np.append(starts, idx.size))


def _few(runs: int, n: int) -> bool:
    """Whether `runs` runs of n rows are few enough to repeat their values (_runs_of) rather than gather each row."""
    return n >= _RUNS_FROM and 16 * runs <= n


def block_runs(values: np.ndarray, starts: np.ndarray) -> tuple:
    """_runs_of's (value of each run, its length) of a 1-D column whose values change only at `starts` (rising
    indices, 0 first: blocks of rows of equal values, a grid's categorical axes): the blocks' values, equal
    neighbours merged, found at the blocks' first rows alone."""
    at = values[starts]
    merged = run_starts([at])  # the blocks where a run starts
    return at[merged], np.diff(np.append(starts[merged], len(values)))


def columns_at(cols, idx):
    """Every column at rows `idx` (of a Gathered table: its table at the composed index, lazily)."""
    if isinstance(cols, Gathered):
        return cols.at(idx)
    return {k: rows(v, idx) for k, v in cols.items()}
