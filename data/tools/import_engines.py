"""Append the gathered engine rows (incoming/engines_nvidia, engines_amd, engines_local: rows.csv) that
costmodel can score to data/measurements.csv. Idempotent: rows whose id is already shipped are skipped.

A row is kept when
  - it does not use speculative decoding (MTP, EAGLE: not modelled yet);
  - it carries none of the doubts the gatherers left unresolved in their README (DOUBTS below);
  - it does not repeat a row already shipped or gathered for incoming/serving (GPUStack's performance
    lab was read by both gatherers: the same number is shipped once, under `gpustack_perf_lab`);
  - its model (or an alias) and device are in the catalogue (a device inferred from its memory size is kept
    where the vendor sells that memory with one configuration only, M4_MAX_MEMORY), its engine is known, its format and
    KV format are known, its metric is one data/SCHEMA.md defines;
  - expert- and data-parallel degrees are 1 (stated, or the engine's default when unstated), no
    pipeline parallelism and no prefill/decode disaggregation;
  - its lengths are known: fixed lengths as stated; `uniform:0.8` for the InferenceX PR tables (the
    CI-wide --random-range-ratio, see data/measurements_sources.md); GPUStack runs (ShareGPT or random
    without --ignore-eos) take the means of the page's token totals / prompts, length_dist `mean`.
GPUStack bursts (all N prompts at rate inf) keep load `offline` with batch = N, as import_serving.py
does. The engine version stays in `notes`. A llama.cpp row whose notes state a ROCm, Vulkan or SYCL
backend is filed under that build (`llama.cpp/vulkan`, a calibration key: builds differ up to 2x on
one device); CUDA and Metal rows stay `llama.cpp`, the engine's own build on the devices most of its
rows measure.

    python data/tools/import_engines.py            # append and report counts
    python data/tools/import_engines.py --dry-run  # report only
"""
from __future__ import annotations

import argparse
import collections
import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_serving import write_rows  # noqa: E402  (one writer for the measurement file)
FOLDERS = ("engines_nvidia", "engines_amd", "engines_local")
DST = ROOT / "data" / "measurements.csv"
SERVING = ROOT / "incoming" / "serving" / "rows.csv"
OUT_COLUMNS = ("id", "source", "hardware", "devices", "tp", "model", "format", "kv_format", "framework", "batch",
               "prompt_tokens", "output_tokens", "context_tokens", "metric", "value", "notes", "mem_fraction",
               "max_model_len", "load", "request_rate", "dp", "ep")

# Source keys renamed to the key the same source already has in data/measurements_sources.md.
SOURCE_KEYS = {"gpustack_perflab": "gpustack_perf_lab"}
# Format labels resolved from the source: InferenceX configs/amd-master.yaml serves
# `qwen3.5-fp4-mi355x-sglang` from amd/Qwen3.5-397B-A17B-MXFP4 (data/measurements_sources.md).
FORMATS = {("inferencex_pr3311_qwen35_mi355x_sglang", "fp4"): "mxfp4"}
# Length distributions stated by the source's harness (data/measurements_sources.md).
LENGTH_DIST = {"inferencex_pr3311_qwen35_mi355x_sglang": "uniform:0.8",
               "inferencex_pr3318_dsr1_mi325x_sglang": "uniform:0.8"}

# Apple pairs memory with GPU cores: a 64 GB M4 Max has the 40-core GPU (resolves engines_local doubt 2).
M4_MAX_MEMORY = ("device from memory: the M4 Max comes as 14-core CPU / 32-core GPU with 36 GB only, or 16-core CPU / "
                 "40-core GPU with up to 128 GB (ITmedia report of Apple's October 2024 MacBook Pro line-up, copy in "
                 "huggingface.co/datasets/Yinxing/LLM_Dataset MacPro.txt)")
BUILD = re.compile(r"backend[=: ]+(ROCm|Vulkan|SYCL)\b", re.I)
SPECULATIVE = re.compile(r"num_nextn_predict_layers=[1-9]|--speculative-algorithm|\bMTP ?\d|\bwith MTP|"
                         r"MTP speculative|speculative decoding num_", re.I)


def _doubt(folder: str, r: dict) -> str | None:
    """The unresolved doubt of the gatherer's README that applies to this row, if any."""
    src, notes, metric = r["source"], r["notes"], r["metric"]
    if folder == "engines_nvidia":
        if src.startswith("trtllm_") and metric == "decode_tokens_per_s":
            return "TRT-LLM per-user TPS recorded as decode_tokens_per_s includes TTFT (engines_nvidia doubt 2)"
        if "PD-disaggregated" in notes:
            return "prefill/decode disaggregated, TP/DP/EP of the decode nodes not stated (engines_nvidia)"
    if folder == "engines_amd":
        if src.startswith("sglang_pr"):
            return "unmerged SGLang PR table, mean vs median not stated (engines_amd doubt 3)"
        if src == "vllm_blog_2024_10_serving_amd":
            return "device count conflicts (blog appendix: 4 MI300X vs -tp 8), ShareGPT lengths unstated"
    if folder == "engines_local":
        if r["hardware"] == "jetson-agx-thor" and metric == "decode_tokens_per_s":
            return "Jetson Thor decode rows without stated token counts (engines_local doubt 3)"
        if "inferred from the memory size" in notes and r["hardware"] != "m4-max-40c":
            return "device inferred from its memory size, which more than one configuration has (engines_local doubt 2)"
        if r["hardware"] in ("m4-max", "m3-pro"):
            return "GPU core count not stated (m4-max / m3-pro, engines_local doubt 2)"
    return None


def _means(notes: str) -> tuple[float, float, int] | None:
    """(mean prompt, mean output, prompts) from GPUStack's 'N prompts, total input tokens X, total generated tokens Y'."""
    n = re.search(r"(\d+) prompts", notes)
    i = re.search(r"total input tokens (\d+)", notes)
    o = re.search(r"total generated tokens (\d+)", notes)
    if not (n and i and o) or int(n.group(1)) <= 0:
        return None
    k = int(n.group(1))
    return int(i.group(1)) / k, int(o.group(1)) / k, k


def _key(r: dict) -> tuple:
    """What makes two gathered rows the same number (ids differ between gatherers)."""
    return (r["hardware"], r["framework"], r["format"], r["metric"], round(float(r["value"]), 2))


def select(folder: str, rows: list[dict], shipped: set, shipped_keys: set, serving_keys: set,
           ) -> tuple[list[dict], collections.Counter]:
    from costmodel.calibration.measurements import METRICS
    from costmodel.errors import CostModelError
    from costmodel.spec.engine_params import ENGINES
    from costmodel.spec.formats import resolve_format
    from costmodel.spec.hardware import load_hardware
    from costmodel.spec.model_catalog import resolve_model

    kept, why = [], collections.Counter()
    for r in rows:
        src, notes = r["source"], r["notes"]
        if r["id"] in shipped:
            why["already shipped"] += 1
            continue
        if SPECULATIVE.search(notes):
            why["speculative decoding (MTP/EAGLE, not modelled yet)"] += 1
            continue
        doubt = _doubt(folder, r)
        if doubt:
            why[f"doubt: {doubt}"] += 1
            continue
        if r["metric"] not in METRICS:
            why[f"metric {r['metric']} not in data/SCHEMA.md"] += 1
            continue
        if src.startswith("gpustack"):
            k = _key(r) + (r["model"],)
            if k in shipped_keys:
                why["same number already shipped (gpustack_perf_lab, via import_serving.py)"] += 1
                continue
            if k in serving_keys:
                why["same number gathered in incoming/serving (left to import_serving.py)"] += 1
                continue
        try:
            model, _ = resolve_model(r["model"])
        except CostModelError:
            why[f"model not in the catalogue ({r['model']})"] += 1
            continue
        try:
            load_hardware(r["hardware"])
        except CostModelError:
            why[f"device not in the catalogue ({r['hardware']})"] += 1
            continue
        if r["framework"] not in ENGINES:
            why[f"engine {r['framework']} unknown"] += 1
            continue
        fmt = FORMATS.get((src, r["format"]), r["format"])
        try:
            resolve_format(fmt)
            if r["kv_format"]:
                resolve_format(r["kv_format"])
        except CostModelError:
            why[f"format {r['format']} / kv {r['kv_format'] or '-'} unknown"] += 1
            continue
        if re.search(r"EP degree[^;]*not stated|TP/DP/EP[^;]*not stated", notes) and not r.get("ep"):
            why["expert-parallel degree not stated"] += 1
            continue
        if re.search(r"pipeline parallel|-pp \d", notes) or not r["tp"]:
            why["pipeline parallel or TP not stated (not modelled)"] += 1
            continue
        out = {k: r.get(k, "") for k in OUT_COLUMNS}
        out["source"] = SOURCE_KEYS.get(src, src)
        out["model"] = model.id
        out["format"] = fmt
        if "inferred from the memory size" in notes and r["hardware"] == "m4-max-40c":  # doubt 2, resolved
            out["notes"] = notes = f"{notes} [{M4_MAX_MEMORY}]"
        build = BUILD.search(notes)
        if r["framework"] == "llama.cpp" and build:
            out["framework"] = f"llama.cpp/{build.group(1).lower()}"
        extra = []
        if model.id != r["model"]:
            extra.append(f"gathered as model {r['model']}")
        if fmt != r["format"]:
            extra.append(f"precision label '{r['format']}' = {fmt} (InferenceX config)")
        if r.get("engine_version") and "engine version" not in notes:
            extra.append(f"engine version {r['engine_version']}")
        if extra:
            out["notes"] = f"{notes} [{'; '.join(extra)}]"
        if src.startswith("gpustack"):
            means = _means(notes)
            if means is None:
                why["lengths unknown"] += 1
                continue
            out["prompt_tokens"], out["output_tokens"] = str(round(means[0])), str(max(1, round(means[1])))
            out["length_dist"] = "mean"
            if r["load"] == "offline":  # N prompts sent at once: batch = N (data/SCHEMA.md)
                out["batch"] = str(means[2])
        elif src in LENGTH_DIST:
            out["length_dist"] = LENGTH_DIST[src]
        if out["load"] != "poisson":  # a rate belongs to poisson loads only (rate inf = offline)
            out["request_rate"] = ""
        if r["metric"] not in ("kv_cache_tokens", "kv_cache_gib", "weights_gib", "max_concurrency") and (
                out["prompt_tokens"] == "" or out["output_tokens"] == ""):
            why["lengths unknown"] += 1
            continue
        if out["load"] == "offline" and out["batch"] == "max" and r["metric"] in ("ttft_ms", "tpot_ms"):
            why["offline latency (queueing, not modelled)"] += 1
            continue
        kept.append(out)
    return kept, why


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    with DST.open(newline="") as fh:
        reader = csv.DictReader(fh)
        header, shipped_rows = reader.fieldnames, list(reader)
    shipped = {r["id"] for r in shipped_rows}
    shipped_keys = {_key(r) + (r["model"],) for r in shipped_rows}
    with SERVING.open(newline="") as fh:
        serving_keys = {_key(r) + (r["model"],) for r in csv.DictReader(fh)}
    all_kept = []
    for folder in FOLDERS:
        with (ROOT / "incoming" / folder / "rows.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        kept, why = select(folder, rows, shipped, shipped_keys, serving_keys)
        print(f"{folder}: {len(kept)} rows to add of {len(rows)} gathered")
        for k, v in why.most_common():
            print(f"  skipped {v}: {k}")
        for k, v in sorted(collections.Counter((r["framework"], r["hardware"], r["metric"]) for r in kept).items()):
            print(f"  add {v}: {' / '.join(k)}")
        all_kept += kept
    print(f"total: {len(all_kept)} rows to add")
    if not a.dry_run and all_kept:
        write_rows(header, all_kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
