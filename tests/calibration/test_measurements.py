import re

import pytest

from costmodel.calibration.measurements import MeasurementError, read_measurements, shipped_measurements

HEADER = "id,source,hardware,devices,tp,model,format,kv_format,framework,batch,prompt_tokens,output_tokens,context_tokens,metric,value,notes\n"


def test_shipped_set_reads_with_sources():
    rows = read_measurements(shipped_measurements())
    perf = [r for r in rows if not r.is_memory and (r.load_mode == "static" or (r.load_mode == "offline" and r.batch < 0))]
    # the corrected published set (../shared/data/measurements.csv), 135 engine rows (import_engines.py) and
    # 169 llama-bench rows of 32 new sources (import_llamabench.py)
    assert len(perf) == 289 + 135 + 169
    assert sum(r.is_memory for r in rows) == 66 + 3  # engine start-up memory lines, Jetson Thor weights
    # closed-loop serving rows (+ EP / DP attention, + split prefill/decode: import_disagg.py)
    assert sum(r.load_mode == "closed" for r in rows) == 2146 + 524 + 180 + 357
    assert sum(r.load_mode == "poisson" for r in rows) == 213 + 18  # open-loop rows (+ prefix cache on/off)
    # prefix caching on and off (vLLM PR #1983): scored, not fitted
    assert sorted({r.prefix_hit for r in rows if r.prefix_hit is not None}) == [0.0, pytest.approx(200 / 230, abs=1e-4)]
    assert sum(r.scored_only for r in rows) == 357 + 18
    assert sum(r.load_mode == "offline" and r.batch > 0 for r in rows) == 425 + 27  # N requests at once
    assert all(r.source for r in rows)
    assert sum(r.load_mode == "offline" and r.batch < 0 for r in rows) == 73  # batch = max rows
    # every closed-loop row whose source states its total requests carries them (the first wave)
    assert sum(r.num_prompts is not None for r in rows if r.load_mode == "closed") == 2090 + 500 + 180 + 357
    # expert-parallel and DP-attention rows (issue 15): scored by validate, not fitted
    assert sum((r.dp > 1 or r.ep > 1) and not r.is_split for r in rows) == 551 + 180
    # split prefill/decode deployments (issue 18): 119 InferenceX runs x (TTFT, TPOT, output rate)
    split = [r for r in rows if r.is_split]
    assert len(split) == 357 and all(r.devices == r.prefill_workers * r.prefill_tp + r.decode_workers * r.decode_tp
                                     for r in split)


@pytest.mark.parametrize("body,needle", [
    ("a,s,h100-sxm,1,1,llama-2-7b,fp16,,llama.cpp,1,512,0,0,prefil_tokens_per_s,10,\n",
     "unknown metric 'prefil_tokens_per_s' (did you mean 'prefill_tokens_per_s'?)"),
    ("a,s,h100-sxm,1,1,llama-2-7b,fp16,,llama.cpp,1,512,0,0,prefill_tokens_per_s,fast,\n",
     "column 'value' is 'fast'; expected a positive number"),
    ("a,s,h100-sxm,1,1,llama-2-7b,fp16,,llama.cpp,two,512,0,0,prefill_tokens_per_s,10,\n",
     "column 'batch' is 'two'; expected an integer or 'max'"),
    ("a,s,h100-sxm,0,1,llama-2-7b,fp16,,llama.cpp,1,512,0,0,prefill_tokens_per_s,10,\n",
     "column 'devices' is '0'"),
    ("a,s,h100-sxm,1,1,llama-2-7b,fp16,,llama.cpp,1,512,0,0,prefill_tokens_per_s,10,\n"
     "a,s,h100-sxm,1,1,llama-2-7b,fp16,,llama.cpp,1,512,0,0,prefill_tokens_per_s,11,\n", "duplicate id 'a'"),
])
def test_bad_rows_name_line_column_and_expectation(tmp_path, body, needle):
    p = tmp_path / "m.csv"
    p.write_text(HEADER + body)
    with pytest.raises(MeasurementError) as info:
        read_measurements(p)
    assert f"{p}:2" in str(info.value) or f"{p}:3" in str(info.value)
    assert needle in str(info.value)


def test_missing_columns(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("id,hardware,model,metric,value\nx,h100-sxm,llama-2-7b,ttft_ms,3\n")
    with pytest.raises(MeasurementError, match="missing column"):
        read_measurements(p)


def test_bad_csv_on_the_command_line_is_one_line(run_cli, tmp_path):
    p = tmp_path / "m.csv"
    p.write_text(HEADER + "a,s,h100-sxm,1,1,llama-2-7b,fp16,,llama.cpp,1,512,0,0,speed,10,\n")
    code, _, err = run_cli("validate", str(p))
    assert code == 2 and "unknown metric 'speed'" in err and len(err.strip().splitlines()) == 1


SPLIT_HEADER = HEADER.strip() + ",load,prefill_workers,prefill_tp,decode_workers,decode_tp\n"


@pytest.mark.parametrize("tail,needle", [
    ("closed,2,4,1,4", "column 'devices' is 8; a split deployment's devices are prefill_workers x prefill_tp + "
                       "decode_workers x decode_tp = 12"),
    ("closed,2,2,,4", "needs prefill_workers and decode_workers"),
    ("static,1,4,1,4", "needs load closed or poisson"),
    ("closed,1,0,1,4", "column 'prefill_tp' is '0'"),
])
def test_bad_split_rows(tmp_path, tail, needle):
    p = tmp_path / "m.csv"
    p.write_text(SPLIT_HEADER + f"a,s,h100-sxm,8,4,llama-3.1-8b,bf16,,sglang,16,1000,100,0,tpot_ms,10,,{tail}\n")
    with pytest.raises(MeasurementError, match=re.escape(needle)):
        read_measurements(p)


def test_split_row_reads_and_round_trips(tmp_path):
    from costmodel.calibration.measurements import write_measurements

    p = tmp_path / "m.csv"
    p.write_text(SPLIT_HEADER + "a,s,h100-sxm,8,4,llama-3.1-8b,bf16,,sglang,16,1000,100,0,tpot_ms,10,,closed,2,2,1,4\n")
    (r,) = read_measurements(p)
    assert r.is_split and (r.prefill_workers, r.prefill_tp, r.decode_workers, r.decode_tp) == (2, 2, 1, 4)
    write_measurements(tmp_path / "out.csv", [r])
    assert read_measurements(tmp_path / "out.csv") == [r]


@pytest.mark.parametrize("tail,needle", [
    ("poisson,4,1.0", "column 'prefix_hit' is '1.0'; expected a fraction in [0, 1)"),
    (",,0.5", "column 'prefix_hit' needs load closed or poisson"),
])
def test_bad_prefix_hit(tmp_path, tail, needle):
    p = tmp_path / "m.csv"
    p.write_text(HEADER.strip() + ",load,request_rate,prefix_hit\n"
                 + f"a,s,h100-sxm,1,1,llama-3.1-8b,bf16,,vllm,1,1000,100,0,ttft_ms,10,,{tail}\n")
    with pytest.raises(MeasurementError, match=re.escape(needle)):
        read_measurements(p)
