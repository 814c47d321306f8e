"""Normalize gathered training measurements (incoming/training/) into data/training_measurements.csv.

One row per configuration, with the metric the source states most directly, in this order:
tokens/s per device, step time, model TFLOP/s per device (the same run's MFU and HFU are the same
number divided by a peak, so they are left out: a row is one observation). Recompute and sharding
are mapped to the model's vocabulary (none|selective|full; ZeRO stage 0-3). Rows the model cannot
place are left out with the reason printed: no architecture (neither a catalogue model nor
layers/hidden/parameters), a device outside the catalogue, or GPU-hours without a layout.

    python data/tools/import_training.py            # rewrites data/training_measurements.csv

Reads incoming/training/training_measurements.csv and incoming/training/more/training_measurements.csv.
"""
from __future__ import annotations

import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = (ROOT / "incoming" / "training" / "training_measurements.csv",
           ROOT / "incoming" / "training" / "more" / "training_measurements.csv")
# gathered sources left out whole: not a publication of the numbers, or not the source itself
EXCLUDED = {
    "primus_moe_blog_draft_2608": "an unmerged draft blog branch (placeholders elsewhere; FP8 recipe unclear)",
    "megatron_core_moe_report_2603": "a blog summary of the report, not the report; sequence length and batch unknown",
}
OUT = ROOT / "data" / "training_measurements.csv"
COLUMNS = ("id,source,hardware,devices,model,params,active_params,layers,hidden,heads,vocab,seq_len,global_batch,"
           "tp,pp,cp,ep,vpp,micro_batch,precision,recompute,zero,framework,metric,value,notes").split(",")
PRIORITY = ("train_tokens_per_s_per_device", "step_time_s", "model_tflops_per_device")
CONFIG = ("source", "hardware", "devices", "model", "seq_len", "global_batch", "tp", "pp", "dp", "cp", "ep",
          "precision", "recompute", "zero", "framework")


def recompute(v: str) -> str:
    v = v.strip().lower()
    return "full" if v.startswith("full") else "selective" if v.startswith("selective") else "none"


def zero(v: str) -> int:
    """ZeRO stage: FSDP full shard (FSDP2, Megatron-FSDP) is 3; Megatron's distributed optimizer (its
    default in these recipes, 'ddp' or unstated) and ZeRO-1 shard the optimizer states only: 1."""
    v = v.strip().lower()
    if "fsdp" in v and "fsdp=0" not in v and "not resharded" not in v:
        return 3
    if "not resharded" in v:  # Llama 3: optimizer states and gradients sharded, parameters kept
        return 2
    return 1


def _per_device_batch(r: dict) -> str:
    """A pure data-parallel run (tp = pp = 1) whose table gives the batch per device: global = batch x devices
    (AMD's PyTorch training README: 'per-GPU batch N', TP1 PP1 DP8 with FSDP)."""
    m = re.search(r"per-GPU batch (\d+)", r["notes"])
    if m and (r["tp"] or "1") == "1" and (r["pp"] or "1") == "1" and r["devices"]:
        return str(int(m.group(1)) * int(r["devices"]))
    return ""


def _note_int(notes: str, key: str) -> int:
    """A `KEY=N` the source's table states (Megatron-Bridge / NeMo: MBS, VP), else 1."""
    m = re.search(rf"\b{key}=(\d+)", notes)
    return int(m.group(1)) if m else 1


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from costmodel.spec.hardware import resolve_hardware
    from costmodel.spec.model_catalog import resolve_model
    from costmodel.errors import CostModelError

    rows = [r for src in SOURCES for r in csv.DictReader(open(src, newline=""))]
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in CONFIG), []).append(r)
    out, skipped = [], []
    for key, rs in groups.items():
        if rs[0]["source"] in EXCLUDED:
            skipped.append((rs[0]["id"], f"source {rs[0]['source']}: {EXCLUDED[rs[0]['source']]}"))
            continue
        gb = rs[0]["global_batch"] or _per_device_batch(rs[0])
        if not (rs[0]["seq_len"] and gb):
            skipped.append((rs[0]["id"], "sequence length or global batch not stated"))
            continue
        ranked = sorted((r for r in rs if r["metric"] in PRIORITY), key=lambda r: PRIORITY.index(r["metric"]))
        if not ranked:
            skipped.append((rs[0]["id"], f"metrics {sorted({r['metric'] for r in rs})}: none of {', '.join(PRIORITY)}"))
            continue
        r = ranked[0]
        try:
            resolve_hardware(r["hardware"])
        except CostModelError:
            skipped.append((r["id"], f"device {r['hardware']!r} is not in the catalogue"))
            continue
        model = ""
        try:
            model = resolve_model(r["model"])[0].id
        except CostModelError:
            if not (r["layers"] and r["hidden"] and r["params_total"]):
                skipped.append((r["id"], f"model {r['model']!r}: not in the catalogue and no layers/hidden/parameters"))
                continue
        devices = int(r["devices"])
        tp, pp, cp = (int(r[k] or 1) for k in ("tp", "pp", "cp"))
        if not r["tp"] and not r["pp"]:
            skipped.append((r["id"], "model-parallel split (tp, pp) not stated"))
            continue
        out.append({"id": r["id"], "source": r["source"], "hardware": r["hardware"], "devices": devices,
                    "model": model, "params": r["params_total"], "active_params": r["params_active"],
                    "layers": r["layers"], "hidden": r["hidden"], "heads": r["heads"], "vocab": r["vocab"],
                    "seq_len": r["seq_len"], "global_batch": gb, "tp": tp, "pp": pp, "cp": cp,
                    "ep": int(r["ep"] or 1), "vpp": _note_int(r["notes"], "VP"), "micro_batch": _note_int(r["notes"], "MBS"),
                    "precision": {"fp16": "bf16"}.get(r["precision"], r["precision"]),
                    "recompute": recompute(r["recompute"]), "zero": zero(r["zero"]), "framework": r["framework"],
                    "metric": r["metric"], "value": r["value"],
                    "notes": (r["notes"] + (" [fp16 run: bf16 units, same peak]" if r["precision"] == "fp16" else ""))})
    with open(OUT, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(out)
    print(f"{len(out)} configurations written to {OUT.relative_to(ROOT)}; {len(skipped)} left out:")
    for i, why in skipped:
        print(f"  {i}: {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
