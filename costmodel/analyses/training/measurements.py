"""Published training measurements (data/training_measurements.csv; sources in
data/training_sources.md): one configuration per row with the metric its source states."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from costmodel.errors import CostModelError

METRICS = ("train_tokens_per_s_per_device", "step_time_s", "model_tflops_per_device")
REQUIRED = ("id", "source", "hardware", "devices", "model", "params", "layers", "hidden", "vocab", "seq_len",
            "global_batch", "tp", "pp", "cp", "ep", "precision", "recompute", "zero", "metric", "value")


@dataclass(frozen=True)
class TrainRow:
    id: str
    source: str
    hardware: str
    devices: int
    model: str
    params: float
    active_params: float
    layers: int
    hidden: int
    heads: int
    vocab: int
    seq_len: int
    global_batch: int
    tp: int
    pp: int
    cp: int
    ep: int
    precision: str
    recompute: str
    zero: int
    metric: str
    value: float


def shipped_training_measurements() -> Path:
    from costmodel.spec.catalog import builtin_root

    return builtin_root() / "data" / "training_measurements.csv"


def read_training(path) -> list[TrainRow]:
    """Rows of a training measurement CSV; a bad cell names its line, column and what was expected."""
    path = Path(path)
    if not path.is_file():
        raise CostModelError(f"{path}: no such file (a training measurement CSV, data/SCHEMA.md 'Training rows')")
    out = []
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise CostModelError(f"{path}: missing column(s) {', '.join(missing)}")
        for n, r in enumerate(reader, start=2):
            def num(col, kind=float, blank=None):
                v = r.get(col, "")
                if v in ("", None):
                    if blank is not None:
                        return blank
                    raise CostModelError(f"{path}:{n}: column '{col}' is empty; expected a number")
                try:
                    x = kind(float(v))
                except ValueError:
                    raise CostModelError(f"{path}:{n}: column '{col}' is {v!r}; expected a number") from None
                if x < 0:
                    raise CostModelError(f"{path}:{n}: column '{col}' is {v!r}; expected a non-negative number")
                return x
            if r["metric"] not in METRICS:
                raise CostModelError(f"{path}:{n}: metric {r['metric']!r}; expected one of {', '.join(METRICS)}")
            out.append(TrainRow(r["id"], r["source"], r["hardware"], num("devices", int), r["model"],
                                num("params", float, 0.0), num("active_params", float, 0.0), num("layers", int, 0),
                                num("hidden", int, 0), num("heads", int, 0), num("vocab", int, 0), num("seq_len", int),
                                num("global_batch", int), num("tp", int, 1), num("pp", int, 1), num("cp", int, 1),
                                num("ep", int, 1), r["precision"], r["recompute"] or "none", num("zero", int, 1),
                                r["metric"], num("value")))
    return out
