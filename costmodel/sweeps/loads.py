"""Sweeps under load: the cartesian product of models, devices, formats, engines, tensor-parallel
degrees and lengths, each served at a list of concurrencies (closed loop) or request rates
(Poisson) by the one load model of `estimate --concurrency/--request-rate` (costmodel/serving.py).

The replica of each configuration is evaluated once by the array engine (its prefill and its
decode step over a grid of batches); each load then costs only the queueing model's scalar
arithmetic (serve_loads without the layout and bands, which a sweep's rows do not hold). That replica
evaluation bounds the rate: 159-168 configurations a second of 8 loads each in a fresh process (no scipy import:
engine/poisson.py), against millions for the static sweep (`benchmarks/bench_sweep.py loads`).

    >>> rows = costmodel.sweeps.loads.load_sweep(["llama-3.1-8b"], ["h100", "l40s"], ["fp8"],
    ...                                          concurrency=[1, 16, 64, 256])
"""
from __future__ import annotations

import itertools
import math

COLUMNS = ("model", "hardware", "format", "engine", "tp", "prompt", "gen", "load", "concurrency", "request_rate",
           "stable", "ttft_s", "ttft_p50_s", "ttft_p90_s", "ttft_p99_s", "tpot_s", "tpot_p50_s", "tpot_p90_s",
           "tpot_p99_s", "itl_s", "itl_p99_s", "e2e_latency_s", "e2e_latency_p99_s", "request_throughput_per_s",
           "throughput_tokens_per_s", "total_throughput_tokens_per_s", "usd_per_million_tokens",
           "running_per_replica", "queued_per_replica", "utilization", "reason")


class LoadSweep(list):
    """Rows (dicts with COLUMNS), with `dropped`: configurations that cannot serve and why."""

    dropped: list

    def __init__(self, rows=(), dropped=()):
        super().__init__(rows)
        self.dropped = list(dropped)


def load_sweep(models, hw, fmt, engine=("auto",), tp=(1,), prompt=(512,), gen=(128,), concurrency=None,
               request_rate=None, max_concurrency: float | None = None, prompt_dist: str | None = None,
               gen_dist: str | None = None, num_prompts: int | None = None) -> LoadSweep:
    """Every configuration at every load; a configuration that cannot run (does not fit, tp does not
    divide the heads, unknown id) is in `.dropped` with the reason, a load over capacity is a row with
    `stable` False and unbounded (inf) latencies."""
    from costmodel.engine.serving import parse_dist
    from costmodel.errors import CostModelError, WorkloadError
    from costmodel.serving import check_load, serve_loads

    if (concurrency is None) == (request_rate is None):
        raise WorkloadError("a load sweep needs --concurrency C1,C2,... or --request-rate R1,R2,... (not both)")
    key = "concurrency" if concurrency is not None else "request_rate"
    loads = list(dict.fromkeys(float(x) for x in (concurrency if concurrency is not None else request_rate)))
    # bad options fail here, once; inside the loop an error is a configuration that cannot serve
    for x in loads:
        check_load(x if key == "concurrency" else max_concurrency, x if key == "request_rate" else None, None,
                    num_prompts)
    for p in prompt:
        parse_dist(prompt_dist, p, "prompt")
    for g in gen:
        parse_dist(gen_dist, g, "gen")
    out = LoadSweep()
    models, hw, fmt = (distinct_names(x, k) for x, k in ((models, "model"), (hw, "hardware"), (fmt, "format")))
    lists = (models, hw, fmt) + tuple(list(dict.fromkeys(x)) for x in (engine, tp, prompt, gen))
    for m, h, f, e, t, p, g in itertools.product(*lists):
        try:
            got = serve_loads(m, h, f, **{key: loads}, max_concurrency=max_concurrency, prompt=int(p), gen=int(g),
                              prompt_dist=prompt_dist, gen_dist=gen_dist, tp=int(t), engine=e,
                              num_prompts=num_prompts, details=False)
        except CostModelError as exc:
            out.dropped.append({"model": m, "hardware": h, "format": f, "engine": e, "tp": t, "reason": str(exc)})
            continue
        for d in got:
            row = {c: d.get(c) for c in COLUMNS}
            row.update(tp=int(t), prompt=int(p), gen=int(g), reason=d.get("note", ""))
            out.append(row)
    return out


def distinct_names(names, kind: str) -> list:
    """`names` in their order, each spec once: a repeated name or two names of one spec ('h100' and 'h100-sxm')
    would repeat rows. A name that does not resolve stays (its row is dropped with the reason)."""
    from costmodel.errors import CostModelError
    from costmodel.spec.formats import resolve_format
    from costmodel.spec.hardware import resolve_hardware
    from costmodel.spec.model_catalog import resolve_model
    from costmodel.sweeps.grid import first_each

    resolve = {"model": resolve_model, "hardware": resolve_hardware, "format": resolve_format}[kind]

    def spec_id(name):
        try:
            return resolve(name)[0].id
        except CostModelError:
            return name

    return first_each(names, spec_id)


def write_csv(path: str, rows: LoadSweep) -> None:
    """The rows as CSV (atomic: an interrupted write leaves no half-written file)."""
    from costmodel.errors import CostModelError
    from costmodel.spec.files import atomic_output, csv_cell

    if not str(path).lower().endswith(".csv"):
        raise CostModelError(f"--out {path}: a load sweep writes .csv")
    with atomic_output(str(path)) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(",".join(COLUMNS) + "\n")
            for r in rows:
                fh.write(",".join(_cell(r[c], csv_cell) for c in COLUMNS) + "\n")


def _cell(value, csv_cell) -> str:
    """One CSV cell: a missing value (None, NaN) or an unbounded one (inf: a load past capacity; `--json` null,
    the table "unbounded") empty, a float as its repr, text escaped (csv_cell)."""
    if value is None or value != value or (isinstance(value, float) and math.isinf(value)):
        return ""
    if isinstance(value, float):
        return repr(float(value))
    return str(value) if isinstance(value, (int, bool)) else csv_cell(value)
