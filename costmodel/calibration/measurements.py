"""Measurement CSVs (data/SCHEMA.md): read, validate, write.

One row is one measured number of one run configuration. Bad input (missing columns,
non-numeric values, unknown metrics) raises a MeasurementError naming file, line, column,
value and what was expected. Unknown device/model/format ids are *not* errors here: the
validator skips such rows with a reason.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, fields
from pathlib import Path

from costmodel.errors import CostModelError, suggest
from costmodel.spec.files import read_text

COLUMNS = ("id", "source", "hardware", "devices", "tp", "model", "format", "kv_format", "framework",
           "batch", "prompt_tokens", "output_tokens", "context_tokens", "metric", "value", "notes")
OPTIONAL = ("mem_fraction", "max_model_len",  # the engine's memory flags, when the source states them
            "load", "request_rate", "dp", "ep", "length_dist",  # serving benchmarks (data/SCHEMA.md)
            "stream_interval", "num_prompts",
            # a split prefill/decode deployment (data/SCHEMA.md): batch = its concurrency, devices = its total
            "prefill_workers", "prefill_tp", "prefill_dp", "prefill_ep",
            "decode_workers", "decode_tp", "decode_dp", "decode_ep",
            "prefix_hit")  # the share of each prompt's tokens found in the prefix cache (served, not prefilled)
SPLIT = OPTIONAL[-9:-1]
LOADS = ("static", "offline", "closed", "poisson")
REQUIRED = tuple(c for c in COLUMNS if c not in ("kv_format", "notes", "context_tokens"))
METRICS = {  # metric -> (engine output, scale to the measured unit, "time" or "rate")
    "decode_tokens_per_s": ("decode_tokens_per_s", 1.0, "rate"),
    "decode_aggregate_tokens_per_s": ("decode_aggregate_tokens_per_s", 1.0, "rate"),
    "prefill_tokens_per_s": ("prefill_tokens_per_s", 1.0, "rate"),
    "ttft_ms": ("ttft_s", 1e3, "time"),
    "tpot_ms": ("tpot_s", 1e3, "time"),
    "e2e_latency_ms": ("e2e_latency_s", 1e3, "time"),
    "throughput_tokens_per_s": ("throughput_tokens_per_s", 1.0, "rate"),
    # memory as engines print it at start-up (per device); the workload columns may be empty
    "kv_cache_tokens": ("kv_cache_tokens", 1.0, "size"),
    "kv_cache_gib": ("kv_cache_gib", 1.0, "size"),
    "weights_gib": ("weights_gib", 1.0, "size"),
    "max_concurrency": ("max_concurrency", 1.0, "size"),
}
MEMORY_METRICS = ("kv_cache_tokens", "kv_cache_gib", "weights_gib", "max_concurrency")
# serving benchmarks: means and percentiles under a load (closed or poisson), request and token rates
for _name in ("ttft", "tpot", "itl", "e2e_latency"):
    METRICS.setdefault(f"{_name}_ms", (f"{_name}_s", 1e3, "time"))
    for _q in (50, 90, 99):
        METRICS[f"{_name}_p{_q}_ms"] = (f"{_name}_p{_q}_s", 1e3, "time")
METRICS.update({
    "request_throughput_per_s": ("request_throughput_per_s", 1.0, "rate"),
    "total_throughput_tokens_per_s": ("total_throughput_tokens_per_s", 1.0, "rate"),
    "throughput_tokens_per_s_per_gpu": ("throughput_tokens_per_s_per_gpu", 1.0, "rate"),
    "total_throughput_tokens_per_s_per_gpu": ("total_throughput_tokens_per_s_per_gpu", 1.0, "rate"),
})
LOAD_ONLY = tuple(m for m in METRICS if "_p50_" in m or "_p90_" in m or "_p99_" in m or m.startswith("itl"))
# which residual family a metric's error belongs to (for intervals)
METRIC_KIND = {"decode_tokens_per_s": "decode", "decode_aggregate_tokens_per_s": "decode", "tpot_ms": "decode", "prefill_tokens_per_s": "prefill",
               "ttft_ms": "prefill", "e2e_latency_ms": "e2e", "throughput_tokens_per_s": "throughput",
               **{m: "memory" for m in MEMORY_METRICS}}
for _m in METRICS:
    METRIC_KIND.setdefault(_m, "serving")


def r_time(log_err, rows):
    """log(measured time / predicted time) from log(pred / meas): -log_err for a time metric, log_err
    for a rate (time ~ 1/rate)."""
    import numpy as np

    return np.array([(e if METRICS[row.metric][2] == "rate" else -e) for e, row in zip(log_err, rows)])


def load_kind(metric: str) -> str:
    """Residual kind of a metric measured under a closed or Poisson load: `load_ttft`, `load_tpot`,
    `load_itl`, `load_e2e` (means and medians), the same with `_tail` (P90, P99), or `load_rate`."""
    m = re.fullmatch(r"(ttft|tpot|itl|e2e)(?:_latency)?(?:_p(\d+))?_ms", metric)
    if m is None:
        return "load_rate"
    return f"load_{m.group(1)}" + ("_tail" if m.group(2) and int(m.group(2)) > 50 else "")


class MeasurementError(CostModelError):
    """A malformed measurement file."""


@dataclass(frozen=True)
class Measurement:
    id: str
    source: str
    hardware: str
    devices: int
    tp: int
    model: str
    format: str
    kv_format: str
    framework: str
    batch: int  # -1 = max
    prompt_tokens: int
    output_tokens: int
    context_tokens: int
    metric: str
    value: float
    notes: str = ""
    mem_fraction: float | None = None
    max_model_len: int | None = None
    load: str = ""  # static | offline | closed | poisson; empty: static, or offline for batch = max
    request_rate: float | None = None  # requests/s of a poisson load
    dp: int = 1
    ep: int = 1
    length_dist: str = ""  # fixed | uniform:R | lognormal:MEAN,SIGMA (prompt and output lengths)
    stream_interval: int | None = None  # tokens per streamed chunk, when the source states the server flag
    num_prompts: int | None = None  # requests a closed-loop benchmark sent in all (its first C start together)
    prefill_workers: int = 0  # > 0: a split prefill/decode deployment of these workers (SPLIT columns)
    prefill_tp: int = 1
    prefill_dp: int = 1
    prefill_ep: int = 1
    decode_workers: int = 0
    decode_tp: int = 1
    decode_dp: int = 1
    decode_ep: int = 1
    prefix_hit: float | None = None  # stated: the run's prefix-cache hit share (0 = caching measured off)

    @property
    def is_split(self) -> bool:
        return self.prefill_workers > 0

    @property
    def scored_only(self) -> bool:
        """Scored by validate, never fitted by calibrate: split deployments and prefix-cache runs (and
        their cache-off twins), whose models have no fitted parameter of their own."""
        return self.is_split or self.prefix_hit is not None

    @property
    def load_mode(self) -> str:
        return self.load or ("offline" if self.batch < 0 else "static")

    @property
    def is_memory(self) -> bool:
        return self.metric in MEMORY_METRICS

    @property
    def batch_label(self) -> str:
        return "max" if self.batch < 0 else str(self.batch)

    def as_row(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["batch"] = self.batch_label
        for k in OPTIONAL:
            d[k] = "" if d[k] is None else d[k]
        for k in ("dp", "ep"):
            d[k] = "" if d[k] == 1 else d[k]
        if not self.is_split:
            d.update({k: "" for k in SPLIT})
        return d


def _int(path, line, col, text, minimum=0, allow_max=False) -> int:
    text = (text or "").strip()
    if allow_max and text.lower() == "max":
        return -1
    try:
        value = float(text)
    except ValueError:
        want = "an integer or 'max'" if allow_max else "an integer"
        raise MeasurementError(f"{path}:{line}: column '{col}' is {text!r}; expected {want} >= {minimum}") from None
    if not value.is_integer() or value < minimum:
        raise MeasurementError(f"{path}:{line}: column '{col}' is {text!r}; expected an integer >= {minimum}")
    return int(value)


def read_measurements(path: str | Path) -> list[Measurement]:
    """Parse and validate one measurement CSV."""
    p = Path(path)
    text = read_text(p, "a measurement CSV (data/SCHEMA.md)", MeasurementError)
    try:
        return _parse(p, text)
    except csv.Error as exc:
        raise MeasurementError(f"{p}: malformed CSV ({exc}); expected the columns of data/SCHEMA.md") from None


def _parse(p: Path, text: str) -> list[Measurement]:
    import io

    with io.StringIO(text, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise MeasurementError(f"{p}: missing column(s) {', '.join(missing)}; expected the columns of "
                                   f"data/SCHEMA.md: {', '.join(COLUMNS)}")
        out = []
        seen = set()
        for line, r in enumerate(reader, start=2):
            metric = (r["metric"] or "").strip()
            if metric not in METRICS:
                hint = suggest(metric, METRICS)
                tip = f" (did you mean '{hint[0]}'?)" if hint else ""
                raise MeasurementError(f"{p}:{line}: unknown metric {metric!r}{tip}; expected one of {', '.join(METRICS)}")
            try:
                value = float(r["value"])
            except (TypeError, ValueError):
                raise MeasurementError(f"{p}:{line}: column 'value' is {r['value']!r}; expected a positive number") from None
            if not (value > 0 and math.isfinite(value)):
                raise MeasurementError(f"{p}:{line}: column 'value' is {r['value']!r}; expected a positive finite number")
            rid = (r["id"] or "").strip() or f"{p.name}:{line}"
            if rid in seen:
                raise MeasurementError(f"{p}:{line}: duplicate id {rid!r}")
            seen.add(rid)
            devices = _int(p, line, "devices", r["devices"], 1)
            tp = _int(p, line, "tp", r["tp"], 1)
            blank = metric in MEMORY_METRICS  # start-up lines have no workload: empty means batch 1, no tokens
            for col, default in (("batch", "1"), ("prompt_tokens", "0"), ("output_tokens", "0")):
                if blank and not (r.get(col) or "").strip():
                    r[col] = default
            frac = (r.get("mem_fraction") or "").strip()
            try:
                mem_fraction = float(frac) if frac else None
            except ValueError:
                mem_fraction = -1.0
            if mem_fraction is not None and not 0 < mem_fraction <= 1:
                raise MeasurementError(f"{p}:{line}: column 'mem_fraction' is {frac!r}; expected a fraction in (0, 1]")
            si = (r.get("stream_interval") or "").strip()
            stream_interval = _int(p, line, "stream_interval", si, 1) if si else None
            npr = (r.get("num_prompts") or "").strip()
            num_prompts = _int(p, line, "num_prompts", npr, 1) if npr else None
            mml = (r.get("max_model_len") or "").strip()
            max_model_len = _int(p, line, "max_model_len", mml, 1) if mml else None
            load = (r.get("load") or "").strip()
            if load and load not in LOADS:
                raise MeasurementError(f"{p}:{line}: column 'load' is {load!r}; expected one of {', '.join(LOADS)}")
            rate_text = (r.get("request_rate") or "").strip()
            try:
                rate = float(rate_text) if rate_text else None
            except ValueError:
                rate = -1.0
            if rate is not None and not (rate > 0 and math.isfinite(rate)):
                raise MeasurementError(f"{p}:{line}: column 'request_rate' is {rate_text!r}; expected requests/s > 0")
            if load == "poisson" and rate is None:
                raise MeasurementError(f"{p}:{line}: load 'poisson' needs a request_rate")
            if load == "closed" and not (r.get("batch") or "").strip().isdigit():
                raise MeasurementError(f"{p}:{line}: load 'closed' needs batch = the number of clients")
            if metric in LOAD_ONLY and load not in ("closed", "poisson"):
                raise MeasurementError(f"{p}:{line}: metric {metric} needs load closed or poisson")
            if load == "poisson" and not (r.get("batch") or "").strip():
                r["batch"] = "max"  # no max concurrency
            if load in ("closed", "poisson") and not blank:
                for col in ("prompt_tokens", "output_tokens"):
                    if not (r.get(col) or "").strip():
                        r[col] = "0"
            split = _split(p, line, r, devices, load)
            hit_text = (r.get("prefix_hit") or "").strip()
            try:
                prefix_hit = float(hit_text) if hit_text else None
            except ValueError:
                prefix_hit = -1.0
            if prefix_hit is not None and not 0 <= prefix_hit < 1:
                raise MeasurementError(f"{p}:{line}: column 'prefix_hit' is {hit_text!r}; expected a fraction in [0, 1)")
            if prefix_hit is not None and load not in ("closed", "poisson"):
                raise MeasurementError(f"{p}:{line}: column 'prefix_hit' needs load closed or poisson")
            out.append(Measurement(
                id=rid, source=(r["source"] or "").strip(), hardware=r["hardware"].strip(), devices=devices, tp=tp,
                model=r["model"].strip(), format=r["format"].strip(), kv_format=(r.get("kv_format") or "").strip(),
                framework=(r["framework"] or "").strip(), batch=_int(p, line, "batch", r["batch"], 1, allow_max=True),
                prompt_tokens=_int(p, line, "prompt_tokens", r["prompt_tokens"]),
                output_tokens=_int(p, line, "output_tokens", r["output_tokens"]),
                context_tokens=_int(p, line, "context_tokens", r.get("context_tokens") or "0"),
                metric=metric, value=value, notes=(r.get("notes") or "").strip(), mem_fraction=mem_fraction,
                max_model_len=max_model_len, load=load, request_rate=rate,
                dp=_int(p, line, "dp", r.get("dp") or "1", 1), ep=_int(p, line, "ep", r.get("ep") or "1", 1),
                length_dist=(r.get("length_dist") or "").strip(), stream_interval=stream_interval,
                num_prompts=num_prompts, prefix_hit=prefix_hit, **split))
    return out


def _split(p, line: int, r: dict, devices: int, load: str) -> dict:
    """The split prefill/decode columns of a row ({} when it has none): both sides' workers, their
    devices adding up to `devices`, under a closed or Poisson load."""
    given = {k: (r.get(k) or "").strip() for k in SPLIT}
    if not any(given.values()):
        return {}
    out = {k: _int(p, line, k, v or "1", 1) for k, v in given.items()}
    if not (given["prefill_workers"] and given["decode_workers"]):
        raise MeasurementError(f"{p}:{line}: a split deployment needs prefill_workers and decode_workers (>= 1)")
    total = out["prefill_workers"] * out["prefill_tp"] + out["decode_workers"] * out["decode_tp"]
    if total != devices:
        raise MeasurementError(f"{p}:{line}: column 'devices' is {devices}; a split deployment's devices are "
                               f"prefill_workers x prefill_tp + decode_workers x decode_tp = {total}")
    if load not in ("closed", "poisson"):
        raise MeasurementError(f"{p}:{line}: a split deployment needs load closed or poisson")
    return out


def write_measurements(path: str | Path, rows: list[Measurement]) -> None:
    """Write rows in the schema (through a temporary file: no half-written CSV on error)."""
    from costmodel.spec.files import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS + OPTIONAL, lineterminator="\n")
        w.writeheader()
        for m in rows:
            w.writerow(m.as_row())


def shipped_measurements() -> Path:
    """The shipped calibration set (published measurements, data/measurements.csv)."""
    from costmodel.spec.catalog import builtin_root

    return builtin_root() / "data" / "measurements.csv"
