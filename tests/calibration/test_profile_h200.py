"""The profiles of the lent H200 (costmodel profile --device cuda) against the catalogue's datasheet H200: measured
roofs below the datasheet's, the runs agreeing, and the uncalibrated engine's error on their end-to-end rows.
data/profiles/h200-2026-12-04: the first loan, three runs, decode attention a masked matrix product;
data/profiles/h200-2026-12-04-fused: the second loan, four runs, decode attention PyTorch's flash kernel."""
import csv
import json
import statistics
from pathlib import Path


from costmodel.spec.hardware import load_hardware

PROFILE = Path(__file__).resolve().parents[2] / "data" / "profiles" / "h200-2026-12-04"
FUSED = PROFILE.with_name("h200-2026-12-04-fused")


def test_measured_roofs_sit_below_the_datasheet():
    measured = load_hardware(str(PROFILE / "hardware" / "vm-nvidia-h200.yaml"))  # read as any catalogue spec
    sheet = load_hardware("h200")
    fractions = {dt: measured.peaks[dt] / sheet.peaks[dt] for dt in ("bf16", "fp16", "fp8", "fp32")}
    # best matrix products: bf16 794.6 of 989.5, fp16 753.5, fp8 1,395 of 1,979, fp32 51.35 of 67 TFLOPS
    assert all(0.6 < f < 1.0 for f in fractions.values()), fractions
    assert 0.80 < measured.memory_bandwidth / sheet.memory_bandwidth < 0.9  # 4,070 of 4,800 GB/s
    # torch's total_memory (150.1 GB) is the driver's 143,771 MiB less what the driver reserves
    assert 0.99 < measured.memory_bytes / sheet.memory_reported_bytes <= 1.0


def _rates_by_run(folder) -> list:
    """Each micro-benchmark's {run: rate} in folder/microbench.csv."""
    by = {}
    for r in csv.DictReader(open(folder / "microbench.csv", encoding="utf-8")):
        by.setdefault((r["kind"], r["shape"], r["dtype"]), {})[r["run"]] = float(r["rate"])
    return list(by.values())


def test_the_three_runs_agree_within_five_percent():
    repeated = [v for v in _rates_by_run(PROFILE) if len(v) == 3]
    assert len(repeated) == 50  # the attention shapes differ with each run's model
    assert all(max(v.values()) / min(v.values()) < 1.05 for v in repeated)


def test_uncalibrated_error_on_the_end_to_end_rows(run_cli):
    code, text, err = run_cli("validate", str(PROFILE / "measurements.csv"), "--json")
    assert code == 0, err
    rep = json.loads(text)
    assert rep["scored"] == 81
    ape = {}
    for d in rep["rows_detail"]:
        ape.setdefault(d["metric"], []).append(abs(d["predicted"] / d["measured"] - 1))
    # prefill is compute-bound and close (5.5 % median); decode runs the profile's own matrix-product attention,
    # which the roofline over-predicts at long contexts (47 % median, up to 199 %)
    assert statistics.median(ape["prefill_tokens_per_s"]) < 0.10
    assert 0.3 < statistics.median(ape["decode_tokens_per_s"]) < 0.6


def _values(folder):
    return {(r["model"], r["batch"], r["prompt_tokens"], r["metric"]): float(r["value"])
            for r in csv.DictReader(open(folder / "measurements.csv", encoding="utf-8"))}


def test_the_fused_profile_roofs_and_its_five_runs():
    measured = load_hardware(str(FUSED / "hardware" / "vm-nvidia-h200.yaml"))
    sheet = load_hardware("h200")
    assert 0.75 < measured.peaks["bf16"] / sheet.peaks["bf16"] < 0.85  # 790.2 of 989.5 TFLOPS (run 1)
    assert 0.84 < measured.memory_bandwidth / sheet.memory_bandwidth < 0.9  # 4,159 of 4,800 GB/s
    repeated = [v for v in _rates_by_run(FUSED) if len(v) == 5]
    assert len(repeated) == 50
    assert all(max(v.values()) / min(v.values()) < 1.1 for v in repeated)  # 0.92-1.00 measured


def test_fused_decode_is_faster_where_the_cache_is_long_and_prefill_repeats():
    old, new = _values(PROFILE), _values(FUSED)
    shared = [k for k in old if k in new]
    assert len(shared) == 81  # the first loan's three models at batch 1-32; qwen2.5-32b and batch 64-256 are new
    for k in shared:
        ratio = new[k] / old[k]
        if k[3] == "decode_tokens_per_s":  # the masked product read the cache at 0.17-0.61 TB/s
            assert ratio > 1.0, k
        else:  # the same prefill code on the same kind of machine: 0.96-1.05x measured
            assert 0.9 < ratio < 1.1, k
    long_batched = [new[k] / old[k] for k in shared if k[1:] == ("32", "2048", "decode_tokens_per_s")]
    assert min(long_batched) > 1.8  # 2.05-2.24x measured


def test_uncalibrated_error_on_the_fused_rows(run_cli):
    code, text, err = run_cli("validate", str(FUSED / "measurements.csv"), "--json")
    assert code == 0, err
    rep = json.loads(text)
    assert rep["scored"] == 120  # two configurations ran out of memory and were skipped (README)
    ape = {}
    for d in rep["rows_detail"]:
        ape.setdefault(d["metric"], []).append(d["predicted"] / d["measured"] - 1)
    # prefill 5.1 %, decode 10.3 % median (the first loan's rows: 47 %); decode's roofline a little too fast against
    # a real kernel (34 of 40 rows; 19-47 % at batch 64-256)
    assert statistics.median(abs(e) for e in ape["prefill_tokens_per_s"]) < 0.10
    assert statistics.median(abs(e) for e in ape["decode_tokens_per_s"]) < 0.15
    assert statistics.median(ape["decode_tokens_per_s"]) > 0
    assert rep["interval_coverage"]["covered"] >= 0.9
