"""Pareto frontiers: vectorized non-dominated filtering over any number of objectives.

A point dominates another when it is no worse in every objective and better in one. Rows dominated
by a few frontier points (pivots: the minima of weighted sums of the objectives, each scaled) are
dropped first, a pass over the rows each; the rest are sorted by the first objective and blocks of
candidates checked against the frontier found so far and against each other, objective by objective as
(candidates, frontier rows) matrices. The same rows as checking every pair; the sizes (blocks of 2,048,
slices of 128 frontier rows) are design choices timed by benchmarks/bench_sweep.py pareto, not fitted.
"""
from __future__ import annotations

import numpy as np

from costmodel.errors import CostModelError, suggest


class ParetoError(CostModelError):
    """Bad objective specification."""


def parse_objectives(text: str, columns) -> list[tuple[str, str]]:
    """'min:usd_per_million_tokens,max:accuracy' -> [('min', 'usd_...'), ('max', 'accuracy')]."""
    pairs = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if ":" not in part:
            raise ParetoError(f"objective '{part}': expected min:COLUMN or max:COLUMN")
        pairs.append(tuple(x.strip() for x in part.split(":", 1)))
    return checked_objectives(pairs, columns)


def checked_objectives(pairs, columns) -> list[tuple[str, str]]:
    """(sense, column) pairs, each sense min or max and each column one of `columns`, at least one."""
    out = []
    columns = list(columns)
    for sense, col in pairs:
        if sense not in ("min", "max"):
            raise ParetoError(f"objective '{sense}:{col}': expected min or max before the colon")
        if col not in columns:
            hint = suggest(col, columns)
            tip = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ParetoError(f"objective column '{col}' is not in the sweep{tip} (columns: {', '.join(columns)})")
        out.append((sense, col))
    if not out:
        raise ParetoError("no objectives: give at least one min:COLUMN or max:COLUMN")
    return out


def non_dominated(values: np.ndarray, block: int = 2048, pivots: bool = True) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `values` (n x k, every column minimized).

    Rows with NaN or inf are never on the frontier. Duplicates of a frontier point are all kept (each run of equal
    rows checked once, _equal_runs). `pivots`: drop the rows the pivots dominate first (_pivot_filter; the same mask either way).
    """
    v = np.asarray(values, dtype=float)
    if v.ndim == 1:
        v = v[:, None]
    n = len(v)
    mask = np.zeros(n, dtype=bool)
    finite = np.isfinite(v[:, 0])
    for j in range(1, v.shape[1]):  # column by column (_pivot_filter)
        finite &= np.isfinite(v[:, j])
    ok = np.flatnonzero(finite)
    if pivots and len(ok) > block:
        ok = _pivot_filter(v, ok, block)
    if len(ok) == 0:
        return mask
    order = ok[np.lexsort(v[ok].T[::-1])]  # by first objective, ties by the next ones
    heads, run = _equal_runs(v, order)
    front = np.empty((0, v.shape[1]))
    front_idx: list = []
    k = v.shape[1]
    for start in range(0, len(heads), block):  # one row of each run of equal rows: they share the answer
        idx = heads[start:start + block]
        cand = v[idx]
        if len(front) and k in (2, 3):
            # staircase pre-filter: a candidate is strictly dominated when an earlier frontier point
            # (no worse in objective 1 by the sort) is no worse in objective 2 and better in the last
            idx, cand = _staircase_filter(front, idx, cand)
        if len(front) and len(idx):  # dominated by the current frontier? its latest rows first, the nearest
            keep = ~_dominated(front[::-1], cand)  # in the first objective (the 912k sweep's 4 objectives: 1.4x)
            idx, cand = idx[keep], cand[keep]
        if len(idx):
            keep = ~_dominated(cand, cand)
            idx, cand = idx[keep], cand[keep]
            front = np.vstack([front, cand])
            front_idx.extend(idx.tolist())
    mask[np.array(front_idx, dtype=int)] = True
    mask[order] = mask[heads][run]  # each row as the first of its run
    return mask


def _equal_runs(v: np.ndarray, order: np.ndarray) -> tuple:
    """(the first row of each run of rows equal in every objective along `order`, each row's run): rows of v sorted
    lexicographically, so equal rows (==, -0.0 as 0.0) are consecutive (distinct.run_starts). Duplicates are either
    all on the frontier or none, so non_dominated checks one of each: a frontier of many copies is not compared with
    itself copy by copy."""
    from costmodel.engine.distinct import run_starts

    starts = run_starts([v[order, j] for j in range(v.shape[1])])
    return order[starts], np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(order))))


def _dominated(by: np.ndarray, cand: np.ndarray, part: int = 128) -> np.ndarray:
    """Whether each row of `cand` is dominated by a row of `by` (both rows x objectives): no worse in every objective
    and better in one. Against `part` rows of `by` at a time, each time only the candidates none has dominated yet
    (most fall to the first: a large frontier is not compared whole with each), objective by objective as
    (candidates, rows) matrices, where numpy's (cand, by, objectives) broadcast compares a few values per inner loop
    (about 10x slower)."""
    out = np.zeros(len(cand), dtype=bool)
    left = np.arange(len(cand))
    for start in range(0, len(by), part):
        rows, c = by[start:start + part], cand[left]
        le = np.ones((len(c), len(rows)), dtype=bool)
        lt = np.zeros((len(c), len(rows)), dtype=bool)
        step = np.empty((len(c), len(rows)), dtype=bool)
        for j in range(by.shape[1]):
            a, b = np.ascontiguousarray(rows[:, j]), c[:, j, None]
            le &= np.less_equal(a, b, out=step)
            lt |= np.less(a, b, out=step)
        hit = np.any(le & lt, axis=1)
        out[left[hit]] = True
        left = left[~hit]
        if not len(left):
            break
    return out


def _pivot_filter(v: np.ndarray, ok: np.ndarray, enough: int) -> np.ndarray:
    """The rows of `ok` (finite rows of v) that no pivot dominates. A pivot is the row of least weighted sum of the
    objectives (_unit's scales): all weights equal, then each objective's weight k times the others'. The weights
    are above zero, so a row that dominates another has a smaller sum and the least is on the frontier, up to
    rounding. Dropping rows a pivot dominates leaves the frontier as it is: each dropped row is dominated by a row
    that stays (a pivot, or one dominating it). Stops once `enough` rows or fewer remain. Column by column: numpy's
    reductions along a row of a few objectives cost several times a pass over each column."""
    cols = [v[ok, j] for j in range(v.shape[1])]
    lo = [float(c.min()) for c in cols]
    scale = [_unit(c, a) for c, a in zip(cols, lo)]
    k = len(cols)
    for j in range(-1, k if k > 1 else 0):  # all weights equal (j = -1), then objective j's k times the others'
        total = np.zeros(len(ok))
        with np.errstate(over="ignore", invalid="ignore"):  # values near float's limits: any pivot is a row
            for i, c in enumerate(cols):
                total += (c - lo[i]) * (scale[i] * (k if i == j else 1.0))
        at = int(np.argmin(total))
        le, lt = np.ones(len(ok), dtype=bool), np.zeros(len(ok), dtype=bool)
        for c in cols:
            le &= c >= c[at]
            lt |= c > c[at]
        dominated = le & lt
        if dominated.any():
            ok, cols = ok[~dominated], [c[~dominated] for c in cols]
        if len(ok) <= enough:
            break
    return ok


def _unit(c: np.ndarray, lo: float, sample: int = 65_536) -> float:
    """1 / (the median − lo) of an evenly spaced sample of at most about `sample` values of c, or 1 / (the largest −
    lo) where that is 0, or 1: a sweep's objectives span decades, and scaled by their range a few rows would outweigh
    the rest (the 912k sweep's frontiers keep 2-4x more rows after the pivots so). A scale for the pivots alone: no
    pass over all the values for it."""
    x = c[::max(1, len(c) // sample)]
    mid = float(np.partition(x, len(x) // 2)[len(x) // 2])
    top = mid if mid > lo else float(c.max())
    return 1.0 / (top - lo) if top > lo else 1.0  # Python floats: inf past float's range, a scale of 0


def _staircase_filter(front: np.ndarray, idx: np.ndarray, cand: np.ndarray):
    """Drop candidates strictly dominated by the frontier's (objective 2, last objective) staircase."""
    if front.shape[1] == 2:
        best = front[:, 1].min()
        keep = ~(best < cand[:, 1])
        return idx[keep], cand[keep]
    order = np.argsort(front[:, 1], kind="stable")
    x = front[order, 1]
    y = np.minimum.accumulate(front[order, 2])
    pos = np.searchsorted(x, cand[:, 1], side="right") - 1
    dominated = (pos >= 0) & (y[np.maximum(pos, 0)] < cand[:, 2])
    keep = ~dominated
    return idx[keep], cand[keep]


def _objectives(table, objectives) -> tuple[list, list]:
    """(the table's columns, [(sense, column)]) from 'min:a,max:b' or a list of pairs."""
    columns = table.columns if hasattr(table, "columns") else list(table)
    if isinstance(objectives, str):
        return columns, parse_objectives(objectives, columns)
    return columns, checked_objectives(objectives, columns)  # (sense, column) pairs: checked as the text's


def pareto_front(table, objectives, pivots: bool = True) -> np.ndarray:
    """Mask of the frontier of a sweep result / column dict under objectives like
    'min:usd_per_million_tokens,min:tpot_s,max:accuracy' (string or list of (sense, column)).

        >>> r = costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8", "nvfp4"])
        >>> mask = costmodel.pareto_front(r, "min:usd_per_million_tokens,min:tpot_s")
        >>> r["hardware"][mask], r["format"][mask]

    `pivots`: non_dominated's (the same mask either way).
    """
    columns, objs = _objectives(table, objectives)
    cols = []
    for sense, c in objs:
        try:
            cols.append((np.asarray(table[c], dtype=float), 1.0 if sense == "min" else -1.0))
        except (TypeError, ValueError):
            numeric = [k for k in columns if np.asarray(table[k]).dtype.kind in "fiub"
                       and np.isfinite(np.asarray(table[k], dtype=float)).any()]
            raise ParetoError(f"objective column '{c}' is not numeric; objectives need numbers "
                              + (f"(numeric columns: {', '.join(numeric)})" if numeric else
                                 "(the table has no numeric column)")) from None
    mat = np.empty((len(cols[0][0]), len(cols)), order="F")  # each objective's values one column, contiguous
    unfit = ~np.asarray(table["fits"]).astype(bool) if "fits" in columns else None
    for j, (x, sign) in enumerate(cols):
        np.multiply(x, sign, out=mat[:, j])
        if unfit is not None:
            mat[unfit, j] = np.nan
    return non_dominated(mat, pivots=pivots)


def excluded(table, objectives) -> list[dict]:
    """Configurations that fit but cannot be placed because an objective is missing (e.g. no
    accuracy for a format on the task): grouped by what is missing, so none vanishes silently."""
    columns, objs = _objectives(table, objectives)
    fits = np.asarray(table["fits"]).astype(bool) if "fits" in columns else np.ones(len(table[objs[0][1]]), bool)
    names = [np.asarray(table[k]) if k in columns else np.full(len(fits), "") for k in ("model", "format")]  # once
    groups: dict = {}
    for _, col in objs:
        at = np.flatnonzero(fits & ~np.isfinite(np.asarray(table[col], dtype=float)))
        (ms, im), (fs, jf) = (np.unique(x[at].astype(str), return_inverse=True) for x in names)  # as str() spells
        pair, count = np.unique(im * len(fs) + jf, return_counts=True)  # a count per (model, format) present
        for p, n in zip(pair.tolist(), count.tolist()):
            key = (col, str(ms[p // len(fs)]), str(fs[p % len(fs)]))
            groups[key] = groups.get(key, 0) + n
    return [{"column": c, "model": m, "format": f, "configurations": n,
             "reason": f"no {c} for {m} in {f}" + (" in the accuracy table (add rows with --accuracy FILE)"
                                                    if c.startswith("accuracy") else "")}
            for (c, m, f), n in sorted(groups.items())]
