"""Append InferenceX's split prefill/decode runs (disagg = true) to data/measurements.csv.

The source is the InferenceX API snapshot already shipped for its single-node runs
(`inferencex_api_fixture_2026_06`, data/measurements_sources.md): repo vngcloud/InferenceX-app, commit
7fe6d62ad57a3df061be692e86578c7111d880c7, packages/app/cypress/fixtures/api/benchmarks.json. Give its
path (it is not shipped). Idempotent: rows whose id is already in the file are skipped.

A run is kept when it has no speculative decoding (spec_method none), its device is in the catalogue,
and both sides' workers x tp equal the GPUs the API lists for them (older entries list 0 workers or a
tp that does not add up: their layout is unknown). Per run three rows: mean TTFT and mean TPOT (ms),
and the output token rate, `output_tput_per_gpu` x the decode GPUs (InferenceX divides output tokens
by the decode GPUs and total tokens by all GPUs: total/output per GPU x GPUs = (ISL + OSL)/OSL checks
it on every kept run to 1%).

    python data/tools/import_disagg.py benchmarks.json            # append and report counts
    python data/tools/import_disagg.py benchmarks.json --dry-run  # report only
"""
from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DST = ROOT / "data" / "measurements.csv"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_serving import write_rows  # noqa: E402  (one writer for the measurement file)
SOURCE = "inferencex_api_fixture_2026_06"
HARDWARE = {"h100": "h100-sxm", "h200": "h200-sxm", "b200": "b200", "b300": "b300", "gb200": "gb200",
            "gb300": "gb300", "mi355x": "mi355x"}
FRAMEWORK = {"dynamo-trt": "trt-llm", "dynamo-sglang": "sglang", "mori-sglang": "sglang"}


def fmt_of(hw: str, precision: str) -> str:
    """InferenceX's precision: fp8 = DeepSeek-R1-0528's block-scaled FP8; fp4 = NVFP4 on NVIDIA,
    MXFP4 on AMD (configs/*-master.yaml, as for the single-node rows)."""
    if precision == "fp8":
        return "fp8"
    return "mxfp4" if hw.startswith("mi") else "nvfp4"


def rows_of(e: dict) -> tuple[list[dict], str]:
    """The run's rows, or ([], why it is left out)."""
    if not e.get("disagg"):
        return [], "not disaggregated"
    if e.get("spec_method") != "none":
        return [], "speculative decoding"
    hw = HARDWARE.get(e["hardware"])
    if hw is None:
        return [], f"device {e['hardware']} not in the catalogue"
    pw, ptp, dw, dtp = e["prefill_num_workers"], e["prefill_tp"], e["decode_num_workers"], e["decode_tp"]
    if not (pw >= 1 and dw >= 1 and pw * ptp == e["num_prefill_gpu"] and dw * dtp == e["num_decode_gpu"]):
        return [], "workers x tp do not add up to the GPUs listed"
    m = e["metrics"]
    isl, osl = e["isl"], e["osl"]
    ratio = m["tput_per_gpu"] * (e["num_prefill_gpu"] + e["num_decode_gpu"]) / (m["output_tput_per_gpu"] * e["num_decode_gpu"])
    if abs(ratio / ((isl + osl) / osl) - 1) > 0.01:
        return [], f"per-GPU rates do not check ((ISL+OSL)/OSL {ratio:.3f})"
    side = {"prefill_workers": pw, "prefill_tp": ptp, "prefill_dp": ptp if e["prefill_dp_attention"] else 1,
            "prefill_ep": e["prefill_ep"], "decode_workers": dw, "decode_tp": dtp,
            "decode_dp": dtp if e["decode_dp_attention"] else 1, "decode_ep": e["decode_ep"]}
    notes = (f"InferenceX (SemiAnalysis) disaggregated run {e['date']} {e['run_url']}; {e['framework']} "
             f"[image {e.get('image') or 'not stated'}]; prefill {pw} x (tp{ptp} ep{e['prefill_ep']} dp_attention="
             f"{str(e['prefill_dp_attention']).lower()}) on {e['num_prefill_gpu']} GPUs, decode {dw} x (tp{dtp} "
             f"ep{e['decode_ep']} dp_attention={str(e['decode_dp_attention']).lower()}) on {e['num_decode_gpu']} GPUs; "
             f"benchmark_serving random dataset ISL/OSL {isl}/{osl} with --random-range-ratio 0.8, --max-concurrency "
             f"{e['conc']} --request-rate inf --ignore-eos, num_prompts=10x conc; no speculative decoding; values from "
             f"InferenceX API snapshot (Cypress fixture)")
    base = {"source": SOURCE, "hardware": hw, "devices": e["num_prefill_gpu"] + e["num_decode_gpu"], "tp": dtp,
            "model": "deepseek-r1", "format": fmt_of(e["hardware"], e["precision"]), "kv_format": "",
            "framework": FRAMEWORK[e["framework"]], "batch": e["conc"], "prompt_tokens": isl, "output_tokens": osl,
            "context_tokens": 0, "notes": notes, "load": "closed", "dp": side["decode_dp"], "ep": side["decode_ep"],
            "length_dist": "uniform:0.8", "num_prompts": 10 * e["conc"], **side}
    out = []
    for metric, value in (("ttft_ms", m["mean_ttft"] * 1e3), ("tpot_ms", m["mean_tpot"] * 1e3),
                          ("throughput_tokens_per_s", m["output_tput_per_gpu"] * e["num_decode_gpu"])):
        rid = hashlib.sha1(f"{e['run_url']}|{e['hardware']}|{e['framework']}|{e['precision']}|{isl}|{osl}|{e['conc']}|"
                           f"{metric}".encode()).hexdigest()[:10]
        out.append({**base, "id": rid, "metric": metric, "value": f"{value:.6g}"})
    return out, ""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fixture", help="benchmarks.json of the InferenceX API snapshot")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    with open(args.fixture, encoding="utf-8") as fh:
        entries = json.load(fh)
    with open(DST, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header, shipped = list(reader.fieldnames), {r["id"] for r in reader}
    new, why = [], collections.Counter()
    for e in entries:
        got, reason = rows_of(e)
        if reason:
            why[reason] += 1
        new += [r for r in got if r["id"] not in shipped]
    missing = [k for k in new[0] if k not in header] if new else []
    print(f"{len(new)} new rows from {sum(1 for e in entries if e.get('disagg'))} disaggregated runs; left out: "
          + ", ".join(f"{n} {k}" for k, n in why.most_common() if k != "not disaggregated"))
    if args.dry_run or not new:
        return 0
    if missing:  # the split columns (data/SCHEMA.md): rewrite the file with them, rows unchanged
        with open(DST, newline="", encoding="utf-8") as fh:
            old = list(csv.DictReader(fh))
        header += missing
        write_rows(header, old, append=False)
    write_rows(header, [{k: str(v) for k, v in r.items()} for r in new])  # 0 stays "0"
    return 0


if __name__ == "__main__":
    sys.exit(main())
