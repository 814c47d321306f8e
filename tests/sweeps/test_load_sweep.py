"""Sweeps under load: every configuration served at each concurrency or request rate by the same
model as `estimate --concurrency/--request-rate`, configurations that cannot serve named."""
import csv
import math

import pytest

from costmodel.serving import serve_load
from costmodel.sweeps.loads import COLUMNS, load_sweep


def test_rows_are_serve_load_at_each_load():
    r = load_sweep(["llama-3.1-8b", "llama-3.1-70b"], ["h100", "l40s"], ["fp8"], concurrency=[1, 32], prompt=[1000],
                   gen=[300])
    assert len(r) == 3 * 2 and [d["hardware"] for d in r.dropped] == ["l40s"]  # 70B FP8 does not fit one L40S
    assert "does not fit" in r.dropped[0]["reason"]
    for row in r:
        want = serve_load(row["model"], row["hardware"], "fp8", concurrency=row["concurrency"], prompt=1000, gen=300)
        for key in ("ttft_p99_s", "tpot_s", "e2e_latency_s", "throughput_tokens_per_s", "usd_per_million_tokens"):
            assert row[key] == pytest.approx(want[key], rel=1e-12), key
    one = next(x for x in r if x["model"] == "llama-3.1-8b" and x["hardware"] == "h100-sxm" and x["concurrency"] == 32)
    # $/Mtok = devices x $/h / output tokens per hour
    from costmodel.spec.hardware import resolve_hardware

    price = resolve_hardware("h100")[0].price_per_hour
    assert one["usd_per_million_tokens"] == pytest.approx(price / (one["throughput_tokens_per_s"] * 3600) * 1e6)


def test_open_loop_over_capacity_is_a_row_with_unbounded_latency():
    r = load_sweep(["llama-3.1-8b"], ["h100"], ["bf16"], request_rate=[1.0, 1e6])
    ok, over = r
    assert ok["stable"] and ok["request_throughput_per_s"] == pytest.approx(1.0)
    assert not over["stable"] and math.isinf(over["ttft_s"]) and "capacity" in over["reason"]
    # the deployment completes what it can: its capacity, not the offered million
    assert over["request_throughput_per_s"] < 1e3


def test_cli_load_sweep(run_cli, tmp_path):
    out = tmp_path / "loads.csv"
    code, text, err = run_cli("sweep", "--models", "llama-3.1-8b", "--hw", "h100,l4", "--fmt", "fp8",
                              "--concurrency", "1,8", "--out", str(out))
    assert code == 0 and "wrote 4 rows" in text
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == list(COLUMNS) and {r["hardware"] for r in rows} == {"h100-sxm", "l4"}
    code, text, err = run_cli("sweep", "--hw", "h100", "--concurrency", "4", "--batch", "8")
    assert code == 2 and "--batch 8" in err
    code, text, err = run_cli("sweep", "--hw", "h100", "--request-rate", "0")
    assert code == 2 and "--request-rate 0" in err
    code, text, err = run_cli("sweep", "--hw", "h100", "--concurrency", "2", "--tp", "1.5")
    assert code == 2 and "--tp 1.5" in err


def test_a_load_sweep_csv_cell_leaves_missing_values_empty():
    """None and NaN are empty cells (never the text nan); floats their repr; text escaped against formulas."""
    from costmodel.spec.files import csv_cell
    from costmodel.sweeps.loads import _cell

    assert [_cell(v, csv_cell) for v in (None, float("nan"), 0.1, 3, True, "=SUM(A1)")] == [
        "", "", "0.1", "3", "True", csv_cell("=SUM(A1)")]
    assert csv_cell("=SUM(A1)").lstrip('"').startswith("'")


def test_repeated_entries_count_once():
    r = load_sweep(["llama-3.1-8b", "llama-3.1-8b"], ["h100", "h100-sxm", "nosuch"], ["fp8", "fp8"],
                   concurrency=[4, 4, 8], tp=[1, 1], prompt=[512, 512])
    assert [(x["hardware"], x["concurrency"]) for x in r] == [("h100-sxm", 4.0), ("h100-sxm", 8.0)]
    assert [d["hardware"] for d in r.dropped] == ["nosuch"]  # an unknown name stays, with its reason
