"""Published training measurements (data/training_measurements.csv; sources in
data/training_sources.md): one configuration per row with the metric its source states."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from costmodel.errors import CostModelError, not_a_file

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
    vpp: int = 1
    micro_batch: int = 1


def shipped_training_measurements() -> Path:
    from costmodel.spec.catalog import builtin_root

    return builtin_root() / "data" / "training_measurements.csv"


def read_training(path) -> list[TrainRow]:
    """Rows of a training measurement CSV; a bad cell names its line, column and what was expected."""
    import math

    from costmodel.analyses.training.flops import RECOMPUTE

    path = Path(path)
    problem = not_a_file(path)
    if problem:
        raise CostModelError(f"{path}: {problem} (a training measurement CSV, data/SCHEMA.md 'Training rows')")
    out = []
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CostModelError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); expected a CSV") from None
    import io

    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    if missing:
        raise CostModelError(f"{path}: missing column(s) {', '.join(missing)} (data/SCHEMA.md 'Training rows')")
    seen = set()
    for n, r in enumerate(reader, start=2):
        def num(col, whole=False, blank=None, low=0.0, positive=False):
            v = (r.get(col) or "").strip()
            if v == "":
                if blank is not None:
                    return blank
                raise CostModelError(f"{path}:{n}: column '{col}' is empty; expected a number")
            try:
                x = float(v)
            except ValueError:
                raise CostModelError(f"{path}:{n}: column '{col}' is {v!r}; expected a number") from None
            if not math.isfinite(x) or x < low or (positive and x <= 0) or (whole and x != int(x)):
                kind = "a whole number" if whole else "a number"
                raise CostModelError(f"{path}:{n}: column '{col}' is {v!r}; expected {kind} "
                                     f"{'> 0' if positive else f'>= {low:g}'}")
            return int(x) if whole else x
        if r["metric"] not in METRICS:
            raise CostModelError(f"{path}:{n}: metric {r['metric']!r}; expected one of {', '.join(METRICS)}")
        rec = (r.get("recompute") or "none").strip()
        if rec not in RECOMPUTE:
            raise CostModelError(f"{path}:{n}: recompute {rec!r}; expected one of {', '.join(RECOMPUTE)}")
        if r["id"] in seen:
            raise CostModelError(f"{path}:{n}: duplicate id {r['id']!r}")
        seen.add(r["id"])
        out.append(TrainRow(r["id"], r["source"], r["hardware"], num("devices", True, low=1), r["model"],
                            num("params", blank=0.0), num("active_params", blank=0.0), num("layers", True, 0),
                            num("hidden", True, 0), num("heads", True, 0), num("vocab", True, 0),
                            num("seq_len", True, low=1), num("global_batch", True, low=1), num("tp", True, 1, 1),
                            num("pp", True, 1, 1), num("cp", True, 1, 1), num("ep", True, 1, 1),
                            (r["precision"] or "").strip(), rec, num("zero", True, 1, 0), r["metric"],
                            num("value", positive=True), num("vpp", True, 1, 1), num("micro_batch", True, 1, 1)))
        if out[-1].zero > 3:
            raise CostModelError(f"{path}:{n}: column 'zero' is {out[-1].zero}; expected 0, 1, 2 or 3")
    return out
