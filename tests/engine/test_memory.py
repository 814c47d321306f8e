"""Memory as engines allocate it: capacities in GiB, per-engine KV pools, blocks, windows, start-up figures."""
import math

import pytest

from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.memory import activation_peak, kv_bytes_per_sequence, kv_pool, weight_bytes_total
from costmodel.estimate import estimate
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import all_hardware, load_hardware
from costmodel.spec.model_catalog import load_model

GIB = 2**30


def cols(model, hw, fmt, engine):
    m, h = load_model(model), load_hardware(hw)
    return model_row(m), format_row(load_format(fmt), h, None, False, engine), hardware_row(h, engine)


def test_capacities_are_binary_as_vendors_mean_them():
    """Datasheet "80 GB" of HBM is 80 GiB; the driver reports a little less (nvidia-smi totals)."""
    assert load_hardware("h100-sxm").memory_bytes == 80 * GIB
    assert load_hardware("h200-sxm").memory_bytes == 141 * GIB
    assert load_hardware("mi300x").memory_bytes == 192 * GIB
    assert load_hardware("h100-sxm").memory_reported_bytes == 81559 * 2**20
    from costmodel.spec.catalog import builtin_root

    for h in all_hardware():
        if not h.file.startswith(str(builtin_root())):
            continue  # a user's profiled device
        assert h.memory_bytes > 0
        if h.memory_reported_bytes:  # a reported total is the datasheet size less driver/ECC reserve
            assert 0.9 * h.memory_bytes <= h.memory_reported_bytes <= h.memory_bytes, h.id
        gib = h.memory_bytes / GIB
        assert abs(gib - round(gib)) < 1e-9 or h.id.startswith("tpu-v5e") or h.id.startswith("tpu-v6e"), h.id


def test_trt_llm_pool_is_a_fraction_of_free_memory_and_70b_fp8_fits_one_h100():
    m, f, hw = cols("llama-3.1-70b", "h100-sxm", "fp8", "trt-llm")
    C = 81559 * 2**20
    W = weight_bytes_total(m, f)
    A = activation_peak(m, f, hw, 1)
    R = 0.72 * GIB
    pool, _ = kv_pool(m, f, hw, 1, 1)
    assert float(pool) == pytest.approx(0.9 * (C - W - A - R))
    e = estimate("llama-3.1-70b", "h100", "fp8", engine="trt-llm")
    assert e.fits and e.memory_dict()["kv_pool_bytes"] == pytest.approx(float(pool))
    # the KV pool in tokens: pool / (80 layers x 8 KV heads x 128 x 2 x 1 byte), in 32-token blocks
    per_token = 80 * 8 * 128 * 2 * 1.0
    assert e.metric("kv_cache_tokens") == math.floor(float(pool) / per_token / 32) * 32


def test_vllm_and_sglang_pools_follow_their_own_rules():
    m, f, hw = cols("llama-3.1-8b", "h100-sxm", "bf16", "vllm")
    C = 81559 * 2**20
    W = weight_bytes_total(m, f)
    pool, _ = kv_pool(m, f, hw, 1, 1)
    assert float(pool) == pytest.approx(0.9 * C - W - activation_peak(m, f, hw, 1) - 0.72 * GIB)
    m, f, hw = cols("llama-3.1-8b", "h100-sxm", "bf16", "sglang")
    pool, _ = kv_pool(m, f, hw, 1, 1)
    assert float(pool) == pytest.approx(C - W - 10 * GIB)  # mem_fraction_static = (C - 10 GiB) / C


def test_memory_terms_add_up_to_capacity_at_the_limit():
    for engine in ("vllm", "trt-llm", "sglang", "llama.cpp"):
        e = estimate("llama-3.1-8b", "h100", "bf16", engine=engine, batch="max", prompt=1000, gen=1000)
        d = e.memory_dict()
        unused_pool = d["kv_pool_bytes"] - d["kv_cache_bytes"]
        assert d["total_bytes"] + unused_pool == pytest.approx(d["capacity_bytes"], rel=1e-9), engine
        assert e.fits and d["kv_cache_bytes"] <= d["kv_pool_bytes"]


def test_block_rounding_and_sliding_window_paging():
    m, f, hw = cols("llama-3.1-8b", "h100-sxm", "bf16", "vllm")  # blocks of 16 tokens
    one = kv_bytes_per_sequence(m, f, 1, 1, 1, hw)
    assert float(kv_bytes_per_sequence(m, f, 17, 1, 1, hw)) == pytest.approx(32 * float(one) / 16)
    g, fg, hg = cols("gemma-2-9b", "h100-sxm", "bf16", "vllm")  # 21 local layers with a 4096 window
    paged = float(kv_bytes_per_sequence(g, fg, 8192, 1, 1, hg))
    hg_full = {**hg, "window_kv_paged": 0.0}
    full = float(kv_bytes_per_sequence(g, fg, 8192, 1, 1, hg_full))
    per_token_layer = 8 * 256 * 2 * 2
    assert full == pytest.approx(42 * 8192 * per_token_layer)
    assert paged == pytest.approx((21 * 8192 + 21 * 4096) * per_token_layer)


def test_user_memory_flags_change_the_pool_and_are_checked(run_cli):
    base = estimate("llama-3.1-8b", "h100", "bf16", engine="vllm")
    more = estimate("llama-3.1-8b", "h100", "bf16", engine="vllm", mem_fraction=0.95)
    C = base.hardware.memory_visible_bytes
    assert more.memory_dict()["kv_pool_bytes"] - base.memory_dict()["kv_pool_bytes"] == pytest.approx(0.05 * C)
    e = estimate("llama-3.1-8b", "h100", "bf16", engine="vllm", max_model_len=8192)
    assert e.memory_dict()["max_concurrency"] == pytest.approx(e.metric("kv_cache_tokens") / 8192)
    assert not estimate("llama-3.1-8b", "l4", "bf16", engine="vllm", max_model_len=10_000_000).fits
    b32 = estimate("llama-3.1-8b", "h100", "bf16", engine="vllm", kv_block_size=32, prompt=17, gen=0)
    assert b32.memory_dict()["kv_cache_bytes"] == pytest.approx(32 * 32 * 8 * 128 * 2 * 2)
    for args, needle in ((("--mem-fraction", "1.5"), "--mem-fraction 1.5"),
                         (("--max-model-len", "0"), "--max-model-len 0"),
                         (("--kv-block-size", "x"), "kv-block-size")):
        code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "h100", *args)
        assert code == 2 and needle in err and "Traceback" not in err


def test_validate_scores_startup_memory_lines():
    from costmodel.calibration.measurements import shipped_measurements
    from costmodel.calibration.validate import validate

    d = validate([str(shipped_measurements())])
    for metric in ("kv_cache_tokens", "kv_cache_gib", "weights_gib"):
        s = d["by_metric"][metric]
        assert s["n"] >= 9 and s["median_ape"] < 0.05, (metric, s)


def test_memory_rows_may_leave_the_workload_empty(tmp_path):
    from costmodel.calibration.measurements import MeasurementError, read_measurements

    p = tmp_path / "m.csv"
    head = ("id,source,hardware,devices,tp,model,format,kv_format,framework,batch,prompt_tokens,output_tokens,"
            "context_tokens,metric,value,notes,mem_fraction,max_model_len\n")
    p.write_text(head + "a,s,h100-sxm,1,1,llama-3.1-8b,bf16,,vllm,,,,,kv_cache_tokens,476000,x,0.95,8192\n")
    r = read_measurements(p)[0]
    assert r.is_memory and r.batch == 1 and r.mem_fraction == 0.95 and r.max_model_len == 8192
    p.write_text(head + "a,s,h100-sxm,1,1,llama-3.1-8b,bf16,,vllm,,,,,kv_cache_tokens,476000,x,1.5,8192\n")
    with pytest.raises(MeasurementError, match="mem_fraction"):
        read_measurements(p)
