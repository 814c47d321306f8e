"""data/tools/import_engines.py: what it keeps from incoming/engines_* and that the shipped data holds it."""
import csv
from pathlib import Path

import pytest

from tests.conftest import load_data_tool

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("gpustack_perf_lab", "lmsys_blog_gptoss_2025", "inferencex_pr3318_dsr1_mi325x_sglang",
           "inferencex_pr3311_qwen35_mi355x_sglang", "geerlingguy_aibench_issue48_m1ultra",
           "jetson_ai_lab_gtcdc2025_workshop", "kyuz0_strixhalo_toolboxes_2026_05",
           "kyuz0_strixhalo_toolboxes_2026_02", "tosukui_blog_strixhalo_rocm_2025_07",
           "geerlingguy_aibench_issue25_rx9070xt", "geerlingguy_aibench_issue26_arc_b580",
           "geerlingguy_aibench_issue27_arc_pro_b50", "geerlingguy_aibench_issue29_arc_a310",
           "ipexllm_issue12991_arc_b580", "mlxlm_benchmarks_md_m4max")


@pytest.fixture(scope="module")
def tool():
    return load_data_tool("import_engines")


def _row(**kw):
    base = {"id": "x", "source": "s", "hardware": "h100-sxm", "devices": "1", "tp": "1", "model": "qwen3-14b",
            "format": "bf16", "kv_format": "", "framework": "vllm", "batch": "8", "prompt_tokens": "1024",
            "output_tokens": "128", "context_tokens": "0", "metric": "tpot_ms", "value": "10", "notes": "",
            "load": "closed", "request_rate": "", "dp": "1", "ep": "1", "engine_version": "v1",
            "mem_fraction": "", "max_model_len": ""}
    return {**base, **kw}


@pytest.mark.parametrize("notes,speculative", [
    ("MTP speculative decoding num_nextn_predict_layers=3", True),
    ("--speculative-algorithm EAGLE --speculative-num-steps 1", True),
    ("MTP 3-token window topk=1", True),
    ("no MTP; attention DP", False),
    ("high-throughput strategy (no EAGLE)", False),
    ("no speculative decoding, 8k/1k", False),
])
def test_data_import_skips_speculative_decoding(tool, notes, speculative):
    kept, why = tool.select("engines_nvidia", [_row(notes=notes)], set(), set(), set())
    assert (not kept) == speculative
    if speculative:
        assert any("speculative" in k for k in why)


def test_data_import_filters_and_maps(tool):
    rows = [_row(id="ep", ep="2"), _row(id="dev", hardware="no-such-gpu-x1"), _row(id="eng", framework="exllama"),
            _row(id="len", prompt_tokens=""), _row(id="ok", engine_version="vX"),
            _row(id="fp4", source="inferencex_pr3311_qwen35_mi355x_sglang", format="fp4", hardware="mi355x",
                 model="qwen3.5-397b-a17b", tp="2", devices="2", request_rate="inf")]
    kept, why = tool.select("engines_amd", rows, set(), set(), set())
    # expert-parallel rows are kept since issue 15 (validate scores them; calibrate does not fit them)
    assert [r["id"] for r in kept] == ["ep", "ok", "fp4"] and kept[0]["ep"] == "2"
    assert "[engine version vX]" in kept[1]["notes"]
    assert kept[2]["format"] == "mxfp4" and kept[2]["length_dist"] == "uniform:0.8"
    assert kept[2]["request_rate"] == ""  # a rate belongs to poisson loads only
    assert sum(why.values()) == 3


def test_data_import_unresolved_doubts(tool):
    amd = _row(source="sglang_pr31044_minimax_m27_mi300x", metric="ttft_ms")
    assert tool._doubt("engines_amd", amd)
    thor = _row(hardware="jetson-agx-thor", metric="decode_tokens_per_s")
    assert tool._doubt("engines_local", thor)
    assert tool._doubt("engines_local", _row(hardware="jetson-agx-thor", metric="weights_gib")) is None


def test_data_import_gpustack_means_and_burst(tool):
    notes = ("section '2. Async scheduling in vLLM'; ShareGPT dataset (ShareGPT_V3), 1000 prompts, "
             "total input tokens 215312, total generated tokens 195312")
    r = _row(source="gpustack_perflab", load="offline", batch="max", request_rate="inf", prompt_tokens="",
             output_tokens="", metric="throughput_tokens_per_s", notes=notes)
    kept, _ = tool.select("engines_nvidia", [r], set(), set(), set())
    (out,) = kept
    assert (out["source"], out["batch"], out["prompt_tokens"], out["output_tokens"], out["length_dist"]) == (
        "gpustack_perf_lab", "1000", "215", "195", "mean")
    key = tool._key(r) + (r["model"],)
    assert tool.select("engines_nvidia", [r], set(), {key}, set())[0] == []  # already shipped by import_serving


def test_data_import_is_idempotent_and_shipped_rows_score(tool):
    from costmodel.calibration.measurements import read_measurements

    with tool.DST.open(newline="") as fh:
        shipped_rows = list(csv.DictReader(fh))
    shipped = {r["id"] for r in shipped_rows}
    keys = {tool._key(r) + (r["model"],) for r in shipped_rows}
    for folder in tool.FOLDERS:
        with (ROOT / "incoming" / folder / "rows.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert tool.select(folder, rows, shipped, keys, set())[0] == [], folder
    new = [r for r in read_measurements(tool.DST) if r.source in SOURCES[1:]]
    # 90 llama.cpp rows on the Ryzen AI Max+ 395 (amd-radeon), 15 on Intel Arc and the RX 9070 XT
    assert len(new) == 67 + 90 + 15 + 22  # and 22 MLX rows on the M4 Max
    assert sum(r.hardware == "ryzen-ai-max-395" for r in new) == 90
    # rows that state a ROCm, Vulkan or SYCL backend are filed under that llama.cpp build
    assert sum(r.framework == "mlx" for r in new) == 22
    builds = {r.framework for r in new if r.framework.startswith("llama.cpp")}
    assert builds == {"llama.cpp", "llama.cpp/rocm", "llama.cpp/vulkan", "llama.cpp/sycl"}
    assert all(r.framework != "llama.cpp" for r in new if r.hardware == "ryzen-ai-max-395")
    assert all(r.dp == 1 and r.ep == 1 for r in new)
    text = (ROOT / "data" / "measurements_sources.md").read_text()
    assert all(f"## {s}" in text for s in SOURCES)
