"""Accuracy table (model, format, task) -> value, with sources; users bring their own with --accuracy.

Columns: model, format, task, metric, value (0..1), n_shot, source_id, notes (data/quality.csv).
Several rows for one (model, format, task) from different sources are averaged (their sources
listed). A missing format falls back to the model's bf16 row and says so. A format's recovery
(its accuracy / bf16's) is computed only against the bf16 figure of the same source, since
sources differ in prompts, shots and harness; with no such pair it is not computed.
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

from costmodel.spec.catalog import builtin_root
from costmodel.errors import CostModelError, suggest
from costmodel.spec.files import read_text

REQUIRED = ("model", "format", "task", "value")


class QualityError(CostModelError):
    """A malformed accuracy table or a missing accuracy."""


@dataclass(frozen=True)
class Accuracy:
    value: float
    sources: tuple
    basis: str  # 'exact' or the fallback used
    recovery: float | None = None  # value / bf16 value, same source only
    recovery_basis: str = ""


def shipped_quality() -> Path:
    return builtin_root() / "data" / "quality.csv"


@functools.lru_cache(maxsize=None)
def load(path: str | None = None) -> dict:
    """(model, format, task) -> list of (value, source)."""
    import io

    p = Path(path) if path else shipped_quality()
    text = read_text(p, "an accuracy CSV (model, format, task, value)", QualityError)
    table: dict = {}
    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise QualityError(f"{p}: missing column(s) {', '.join(missing)}; expected model, format, task, value "
                               f"(and optionally source_id)")
        for line, r in enumerate(reader, start=2):
            try:
                v = float(r["value"])
            except (TypeError, ValueError):
                raise QualityError(f"{p}:{line}: value {r['value']!r} is not a number; expected an accuracy in [0, 1]") from None
            if not 0 <= v <= 1:
                raise QualityError(f"{p}:{line}: value {v} is outside [0, 1]")
            key = (r["model"].strip().lower(), r["format"].strip().lower(), r["task"].strip().lower())
            table.setdefault(key, []).append((v, (r.get("source_id") or str(p)).strip()))
    return table


def tasks(path: str | None = None) -> list[str]:
    return sorted({k[2] for k in load(path)})


def accuracy(model: str, fmt: str, task: str, path: str | None = None) -> Accuracy:
    table = load(path)
    task = task.lower()
    known = tasks(path)
    if task not in known:
        hint = suggest(task, known)
        tip = f"; did you mean '{hint[0]}'?" if hint else ""
        raise QualityError(f"unknown task '{task}'{tip} (tasks in the accuracy table: {', '.join(known)})")
    for f, basis in ((fmt, "exact"), ("bf16", f"bf16 row: no {fmt} accuracy for {model} on {task}")):
        rows = table.get((model.lower(), f.lower(), task))
        if rows:
            recovery, why = _recovery(table, model.lower(), fmt.lower(), task) if basis == "exact" else (None, basis)
            return Accuracy(sum(v for v, _ in rows) / len(rows), tuple(sorted({s for _, s in rows})), basis,
                            recovery, why)
    raise QualityError(f"no accuracy for {model} ({fmt}) on {task} in the accuracy table; pass --accuracy FILE "
                       f"with a row for it")


def _recovery(table: dict, model: str, fmt: str, task: str) -> tuple[float | None, str]:
    """Mean over sources that report both of (format accuracy / bf16 accuracy), with its basis."""
    if fmt == "bf16":
        return 1.0, "the bf16 baseline itself"
    def by_source(f):
        out: dict = {}
        for v, src in table.get((model, f, task), []):
            out.setdefault(src, []).append(v)
        return {k: sum(v) / len(v) for k, v in out.items()}
    q, b = by_source(fmt), by_source("bf16")
    shared = sorted(set(q) & set(b))
    if not shared:
        return None, (f"not computed: no source reports both {fmt} and bf16 for {model} on {task} "
                      f"(sources differ in prompts and harness)")
    ratios = [q[s] / b[s] for s in shared if b[s] > 0]
    return sum(ratios) / len(ratios), f"vs bf16 of the same source ({', '.join(shared)})"
