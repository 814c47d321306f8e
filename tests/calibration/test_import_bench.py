"""Serving-benchmark result files (vLLM, SGLang, genai-perf/AIPerf, GuideLLM) become schema rows that
validate scores; written in each tool's documented result format (tests/data/bench/)."""
import pytest

from costmodel.calibration.import_bench import BenchFileError, import_bench, results_in
from costmodel.calibration.measurements import read_measurements
from costmodel.calibration.validate import validate
from tests.conftest import DATA

BENCH = DATA / "bench"


@pytest.mark.parametrize("name,kind,n", [("vllm_serve.json", "vllm", 1), ("sglang_bench.jsonl", "sglang", 2),
                                         ("genai_perf.json", "genai-perf", 1), ("guidellm.json", "guidellm", 2)])
def test_each_format_is_recognized(name, kind, n):
    got = results_in(BENCH / name)
    assert len(got) == n and all(k == kind for k, _ in got)


def test_vllm_result_rows():
    rows = import_bench([str(BENCH / "vllm_serve.json")], "llama-8b", "h100", "fp8", "vllm")
    by = {r.metric: r for r in rows}
    assert by["ttft_ms"].value == 61.2 and by["ttft_p50_ms"].value == 55.0 and by["ttft_p99_ms"].value == 140.7
    assert by["e2e_latency_p90_ms"].value == 7900.0 and by["request_throughput_per_s"].value == 3.99
    r = by["tpot_ms"]
    assert (r.model, r.hardware, r.load, r.batch, r.prompt_tokens, r.output_tokens) == (
        "llama-3.1-8b", "h100-sxm", "closed", 32, 1000, 500)


def test_loads_of_sglang_and_guidellm():
    s = import_bench([str(BENCH / "sglang_bench.jsonl")], "llama-3.1-8b", "h100", "fp8", "sglang")
    assert {(r.load, r.batch, r.request_rate) for r in s} == {("poisson", -1, 4.0), ("closed", 16, None)}
    g = import_bench([str(BENCH / "guidellm.json")], "llama-3.1-8b", "h100", "fp8", "vllm")
    assert {(r.load, r.batch, r.request_rate) for r in g} == {("closed", 8, None), ("poisson", -1, 2.0)}
    assert {r.value for r in g if r.metric == "e2e_latency_ms"} == {4100.0, 4000.0}  # seconds -> ms
    gp = import_bench([str(BENCH / "genai_perf.json")], "llama-3.1-8b", "h100", "fp8", "trt-llm")
    assert {r.metric for r in gp} >= {"ttft_p99_ms", "itl_ms", "tpot_ms", "e2e_latency_p50_ms"}


def test_import_then_validate_end_to_end(run_cli, tmp_path):
    out = tmp_path / "rows.csv"
    code, text, err = run_cli("import-bench", str(BENCH / "vllm_serve.json"), str(BENCH / "guidellm.json"),
                              "--model", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--engine", "vllm",
                              "--out", str(out))
    assert code == 0, err
    rows = read_measurements(out)
    rep = validate([str(out)])
    assert rep["scored"] == len(rows) and rep["skipped_count"] == 0
    assert all(d["predicted"] > 0 for d in rep["rows_detail"])


def test_unrecognized_files_fail_clearly(tmp_path, run_cli):
    f = tmp_path / "x.json"
    f.write_text('{"hello": 1}')
    with pytest.raises(BenchFileError, match="no benchmark result recognized"):
        results_in(f)
    code, _, err = run_cli("import-bench", str(f), "--model", "llama-3.1-8b", "--hw", "h100", "--engine", "vllm",
                           "--out", str(tmp_path / "o.csv"))
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_rows_validate_would_skip_are_refused_at_import(run_cli, tmp_path):
    """import-bench wrote rows validate then refused or skipped whole: a negative rate, an unknown KV format, tp that
    does not divide the devices, tp on a device without an interconnect, a file given twice (duplicate ids)."""
    import json

    from costmodel.errors import CostModelError

    src = BENCH / "vllm_serve.json"
    doc = json.loads(src.read_text())
    doc["request_rate"] = -3
    bad = tmp_path / "negative.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(BenchFileError, match="request rate -3"):
        import_bench([str(bad)], "llama-3.1-8b", "h100", "fp8", "vllm")
    doc = json.loads(src.read_text())
    ttft = next(k for k in doc if k == "mean_ttft_ms")
    doc[ttft] = -5.0  # was dropped with the row count the only trace
    bad.write_text(json.dumps(doc))
    with pytest.raises(BenchFileError, match=r"result 1 has ttft_ms -5; a measured time or rate is never negative"):
        import_bench([str(bad)], "llama-3.1-8b", "h100", "fp8", "vllm")
    for kw, needle in ((dict(kv_format="fp8e"), "unknown format 'fp8e'"), (dict(tp=2, devices=3), "--devices 3"),
                       (dict(tp=3), "must divide the 32 attention heads")):
        with pytest.raises(CostModelError, match=needle):
            import_bench([str(src)], "llama-3.1-8b", "h100", "fp8", "vllm", **kw)
    with pytest.raises(BenchFileError, match="no device interconnect"):
        import_bench([str(src)], "llama-3.1-8b", "jetson-agx-orin-64gb", "bf16", "vllm", tp=2)
    code, _, err = run_cli("import-bench", str(src), str(src), "--model", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8",
                           "--engine", "vllm", "--out", str(tmp_path / "rows.csv"))
    assert code == 2 and "given twice" in err
