"""data/tools/import_llamabench.py: what it keeps of gathered llama-bench rows, and that the shipped data
holds what it imported (stable ids, a section per source)."""
import csv
from pathlib import Path

import pytest

from tests.conftest import load_data_tool

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    return load_data_tool("import_llamabench")


def _row(**kw):
    base = {"id": "", "source": "newsrc", "hardware": "rtx-4090", "devices": "1", "tp": "1", "model": "llama-2-7b",
            "format": "q4_0", "kv_format": "", "framework": "llama.cpp", "batch": "1", "prompt_tokens": "512",
            "output_tokens": "0", "context_tokens": "0", "metric": "prefill_tokens_per_s", "value": "12000",
            "notes": "llama-bench pp512", "load": "static"}
    base.update(kw)
    return base


DOCS = {"newsrc": "- **URL:** https://github.com/ggml-org/llama.cpp/pull/1\n",
        "bad": "- **URL:** https://github.com/some-org/some-repo/discussions/99001\n"}
# a made-up reserved list in the form of ../shared/RESERVED-SOURCES.md (never read by tests)
RESERVED = ("- Rows of the some-repo discussions #99001 and #99002 are kept for validation.\n"
            "- example-lab/held-out-bench and https://example.org/held-out-page.\n")


def test_keeps_new_sources_and_refuses_the_rest(tool):
    rows = [_row(),
            _row(value="11000", notes="fa=1"),  # the same configuration again: the first listed is kept
            _row(source="bad"),  # its section cites a reserved discussion
            _row(notes="copied from https://github.com/example-lab/held-out-bench/blob/x.md"),  # reserved, in notes
            _row(source="shipped"),  # a source already shipped
            _row(notes="model Qwen3-30B-A3B-UD-Q4_K_XL.gguf"),  # Unsloth's dynamic mix is not q4_k_m
            _row(source="nodoc"),  # no SOURCES.md section
            _row(source="ghfile_52700641288_gpuext_rtx5090"),  # excluded: a modified llama.cpp
            _row(hardware="rtx-9999"), _row(format="q5_k_m"), _row(framework="vllm"),
            _row(batch="4"), _row(metric="tpot_ms"), _row(value="0"),
            _row(hardware="h100", metric="decode_tokens_per_s", prompt_tokens="0", output_tokens="128")]
    kept, why = tool.select(rows, {**DOCS, "shipped": "x", "ghfile_52700641288_gpuext_rtx5090": "x"},
                            {"shipped"}, set(), tool.reserved_patterns(RESERVED))
    assert [(r["metric"], r["value"]) for r in kept] == [("prefill_tokens_per_s", "12000"),
                                                         ("decode_tokens_per_s", "12000")]
    assert kept[1]["hardware"] == "h100-sxm"  # an alias is filed under the catalogue id
    assert why["reserved source"] == 2 and why["repeats a kept row"] == 1 and why["source already shipped"] == 1
    assert sum(v for k, v in why.items() if k.startswith("not in the catalogue")) == 2
    assert sum(why.values()) + len(kept) == len(rows)


def test_the_reserved_list_is_read_not_written_into_the_tool(tool):
    p = tool.reserved_patterns(RESERVED)
    assert p.search("https://github.com/some-org/some-repo/discussions/99002")
    assert not p.search("https://github.com/some-org/some-repo/discussions/990021")  # another number
    assert p.search("https://example.org/held-out-page") and p.search("https://x.io/example-lab/held-out-bench")
    assert not p.search("https://github.com/some-org/some-repo/pull/5")
    assert tool.reserved_patterns("nothing is reserved") is None


def test_ids_hash_the_configuration(tool):
    a, b = _row(), _row(value="1", notes="another run")
    assert tool.row_id(a) == tool.row_id(b)  # value and notes are not part of the configuration
    assert tool.row_id(a) != tool.row_id(_row(prompt_tokens="4096"))


def test_shipped_rows_reproduce(tool):
    with (ROOT / "data" / "measurements.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    text = (ROOT / "data" / "measurements_sources.md").read_text()
    marker = "Imported by `data/tools/import_llamabench.py`"
    sources = {line[3:].split(" (")[0] for line, nxt in zip(text.splitlines(), text.splitlines()[1:])
               if line.startswith("## ") and nxt.startswith(marker)}
    new = [r for r in rows if r["source"] in sources]
    assert len(sources) == 32 and len(new) == 169
    assert all(tool.row_id(r) == r["id"] for r in new)  # a re-run adds nothing twice
    assert not [r for r in new if tool.DOUBTS.search(r["notes"])]
