"""Append the gathered serving rows (incoming/serving/rows.csv, or --from FOLDER's rows.csv) that
costmodel can score to data/measurements.csv. Idempotent: rows whose id is already shipped are skipped.

A row is kept when its model (or an alias) and device are in the catalogue, its engine is known,
and its lengths are known (expert- and data-parallel layouts are scored since issue 15):
  - nominal lengths of a random dataset: `uniform:0.8` (InferenceX, --random-range-ratio 0.8),
    `uniform:0` (SGLang cookbook, bench_serving's default ratio 0);
  - datasets whose lengths vary (ShareGPT) and runs without --ignore-eos (GPUStack): the means from
    the source's token totals / prompts, with length_dist `mean`.
Offline rows (all N prompts at once) keep batch = N and their throughputs only: their TTFT and
TPOT are mostly queueing.

    python data/tools/import_serving.py            # append and report counts
    python data/tools/import_serving.py --dry-run  # report only
    python data/tools/import_serving.py --from incoming/serving_poisson  # rows that state length_dist
"""
from __future__ import annotations

import argparse
import collections
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "incoming" / "serving" / "rows.csv"
DST = ROOT / "data" / "measurements.csv"
SOURCES = {"inferencex_api_fixture_2026_06", "gpustack_perf_lab", "sgl_cookbook"}  # incoming/serving's
THROUGHPUTS = ("request_throughput_per_s", "throughput_tokens_per_s", "total_throughput_tokens_per_s",
               "throughput_tokens_per_s_per_gpu", "total_throughput_tokens_per_s_per_gpu")


def _means(notes: str) -> tuple[float, float] | None:
    """(mean prompt, mean output) tokens from 'totals: X input / Y generated' and 'N prompts'."""
    t = re.search(r"totals:? (\d+) input / (\d+) generated", notes)
    n = re.search(r"(\d+) prompts", notes)
    if not (t and n) or int(n.group(1)) <= 0:
        return None
    k = int(n.group(1))
    return int(t.group(1)) / k, int(t.group(2)) / k


def num_prompts(load: str, batch: str, notes: str) -> str:
    """The benchmark's total requests of a closed-loop row, from its notes ('' when not stated):
    InferenceX sends 10 x the concurrency ('num_prompts=10x conc'), the SGLang cookbook and
    GPUStack state theirs ('num prompts N', 'N prompts')."""
    if load != "closed":
        return ""
    if "num_prompts=10x conc" in notes and batch.isdigit():
        return str(10 * int(batch))
    m = (re.search(r"num prompts (\d+)", notes) or re.search(r"(\d+) prompts", notes)
         or re.search(r"num-prompts (\d+)", notes))
    return m.group(1) if m else ""


def select(rows: list[dict], shipped: set) -> tuple[list[dict], collections.Counter]:
    from costmodel.errors import CostModelError
    from costmodel.spec.engine_params import ENGINES
    from costmodel.spec.hardware import load_hardware
    from costmodel.spec.model_catalog import resolve_model

    kept, why = [], collections.Counter()
    for r in rows:
        if r["id"] in shipped:
            why["already shipped"] += 1
            continue
        try:
            model, _ = resolve_model(r["model"])
            load_hardware(r["hardware"])
        except CostModelError:
            why[f"model or device not in the catalogue ({r['model']} on {r['hardware']})"] += 1
            continue
        if r["framework"] not in ENGINES:
            why[f"engine {r['framework']} unknown"] += 1
            continue
        out = {k: r.get(k, "") for k in ("id", "source", "hardware", "devices", "tp", "model", "format", "kv_format",
                                          "framework", "batch", "prompt_tokens", "output_tokens", "context_tokens",
                                          "metric", "value", "notes", "mem_fraction", "max_model_len", "load",
                                          "request_rate", "dp", "ep")}
        out["model"] = model.id
        if r.get("engine_version") and "engine version" not in r["notes"]:
            out["notes"] = f"{r['notes']} [engine version {r['engine_version']}]"
        if r["load"] == "offline" and r["metric"] not in THROUGHPUTS:
            why["offline latency (queueing, not modelled)"] += 1
            continue
        if r.get("length_dist"):  # the gatherer stated it (serving_poisson): lengths as given
            out["length_dist"] = r["length_dist"]
            for col in ("prompt_tokens", "output_tokens"):  # means as token counts
                out[col] = str(max(1, round(float(r[col])))) if r[col] else ""
        elif r["source"] == "inferencex_api_fixture_2026_06":
            out["length_dist"] = "uniform:0.8"
            if r["framework"] == "trt-llm":  # InferenceX's trtllm-serve config: stream_interval: 10
                out["stream_interval"] = "10"
        elif r["prompt_tokens"] and r["source"] == "sgl_cookbook":
            out["length_dist"] = "uniform:0"
        else:
            means = _means(r["notes"])
            if means is None:
                why["lengths unknown"] += 1
                continue
            out["prompt_tokens"], out["output_tokens"] = str(round(means[0])), str(max(1, round(means[1])))
            out["length_dist"] = "mean"
        if r["load"] == "offline":  # N prompts sent at once: batch = N (data/SCHEMA.md)
            n = re.search(r"(\d+) prompts", r["notes"])
            if not n:
                why["offline without its number of prompts"] += 1
                continue
            out["batch"], out["load"], out["request_rate"] = n.group(1), "offline", ""  # rate inf
        out["num_prompts"] = num_prompts(out["load"], out["batch"], out["notes"])
        steps = re.search(r"--num-scheduler-steps (\d+)", out["notes"])
        if steps:  # vLLM multi-step scheduling returns tokens to the client every N steps
            out["stream_interval"] = steps.group(1)
        kept.append(out)
    return kept, why


def write_rows(header: list, rows: list[dict], append: bool = True, path: Path = DST) -> None:
    """Append rows to (or rewrite) the measurement file in its own format: the csv module's CRLF
    lines, missing columns empty."""
    with path.open("a" if append else "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        if not append:
            w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) or "" for k in header})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--from", dest="folder", default=str(SRC.parent), help="a folder of incoming/ with rows.csv")
    a = ap.parse_args(argv)
    src = Path(a.folder) / "rows.csv"
    with DST.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, old = reader.fieldnames, list(reader)
    shipped = {r["id"] for r in old}
    if "num_prompts" not in header:
        header = header + ["num_prompts"]
    filled = 0
    for r in old:  # closed-loop rows shipped before the column existed
        if not r.get("num_prompts") and r["source"] in SOURCES:
            r["num_prompts"] = num_prompts(r.get("load", ""), r["batch"], r["notes"])
            filled += bool(r["num_prompts"])
    print(f"num_prompts filled on {filled} shipped rows")
    if not a.dry_run and filled:
        write_rows(header, old, append=False)
    with src.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    kept, why = select(rows, shipped)
    print(f"{len(kept)} rows to add of {len(rows)} gathered")
    for k, v in why.most_common():
        print(f"  skipped {v}: {k}")
    print(collections.Counter((r["framework"], r["load"]) for r in kept))
    if not a.dry_run and kept:
        write_rows(header, kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
