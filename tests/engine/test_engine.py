"""Invariants of the array engine (hypothesis) and closed forms of its pieces."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.engine.columns import format_row, hardware_row, model_row
from costmodel.engine.evaluate import evaluate
from costmodel.estimate import estimate
from costmodel.spec.formats import load_format
from costmodel.spec.hardware import load_hardware
from costmodel.spec.model_catalog import load_model
from costmodel.engine.operators import lower
from costmodel.engine.roofline import mean_of_max

MODELS = ["llama-3.1-8b", "mixtral-8x7b", "gemma-2-2b", "deepseek-v3", "qwen2.5-0.5b", "llama-3.1-70b"]
DEVICES = ["h100-sxm", "b200", "m2-pro-19c", "rtx-4090", "jetson-agx-orin-64gb", "mi300x"]
FORMATS = ["bf16", "fp8", "w4a16", "nvfp4", "q4_0"]


def columns(model, hw, fmt):
    arr = lambda d: {k: np.asarray(v) for k, v in d.items()}  # noqa: E731
    h = load_hardware(hw)
    return arr(model_row(load_model(model))), arr(format_row(load_format(fmt), h)), arr(hardware_row(h))


config = st.fixed_dictionaries({
    "model": st.sampled_from(MODELS), "hw": st.sampled_from(DEVICES), "fmt": st.sampled_from(FORMATS),
    "batch": st.integers(1, 256), "prompt": st.integers(1, 8192), "gen": st.integers(1, 2048),
    "context": st.integers(0, 16384),
})


def run(c, hw_scale=None):
    m, f, h = columns(c["model"], c["hw"], c["fmt"])
    if hw_scale:
        for key, factor in hw_scale.items():
            (f if key == "peak_matmul" else h)[key] = (f if key == "peak_matmul" else h)[key] * factor
    return evaluate(m, f, h, c["batch"], c["prompt"], c["gen"], c["context"], 1, 1, 1).metrics


@settings(max_examples=60, deadline=None)
@given(config, st.floats(1.0, 8.0))
def test_more_bandwidth_is_never_slower(c, factor):
    base, fast = run(c), run(c, {"bandwidth": factor})
    assert fast["ttft_s"] <= base["ttft_s"] * (1 + 1e-12)
    assert fast["tpot_s"] <= base["tpot_s"] * (1 + 1e-12)


@settings(max_examples=60, deadline=None)
@given(config, st.floats(1.0, 8.0))
def test_more_peak_is_never_slower(c, factor):
    base = run(c)
    fast = run(c, {"peak_matmul": factor, "peak_vector": factor, "peak_attention": factor})
    assert fast["ttft_s"] <= base["ttft_s"] * (1 + 1e-12)
    assert fast["tpot_s"] <= base["tpot_s"] * (1 + 1e-12)


@settings(max_examples=40, deadline=None)
@given(config)
def test_decode_flops_are_linear_in_batch(c):
    m, f, h = columns(c["model"], c["hw"], c["fmt"])
    one = lower(m, f, h, c["batch"], 1, c["context"], 1, 1, decode=True)
    two = lower(m, f, h, 2 * c["batch"], 1, c["context"], 1, 1, decode=True)
    assert two.flops.sum() == pytest.approx(2 * one.flops.sum(), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(config)
def test_memory_terms_add_up_and_fit_is_consistent(c):
    m, f, h = columns(c["model"], c["hw"], c["fmt"])
    r = evaluate(m, f, h, c["batch"], c["prompt"], c["gen"], c["context"], 1, 1, 1)
    mem = r.memory
    assert mem.total == pytest.approx(mem.weights + mem.kv_cache + mem.activations + mem.reserve)
    assert bool(r.metrics["fits"]) == bool(mem.total <= mem.capacity)


@settings(max_examples=30, deadline=None)
@given(config)
def test_max_batch_fits_and_one_more_does_not(c):
    m, f, h = columns(c["model"], c["hw"], c["fmt"])
    r = evaluate(m, f, h, -1, c["prompt"], c["gen"], c["context"], 1, 1, 1)
    b = float(r.metrics["max_batch"])
    if b >= 1:
        assert bool(r.metrics["fits"])
        over = evaluate(m, f, h, b + 1, c["prompt"], c["gen"], c["context"], 1, 1, 1)
        assert not bool(over.metrics["fits"])


@settings(max_examples=200, deadline=None)
@given(*[st.floats(0, 10) for _ in range(4)])
def test_mean_of_max_matches_numeric_integration(a0, b0, a1, b1):
    s = np.linspace(0, 1, 20001)
    numeric = np.trapezoid(np.maximum(a0 + (a1 - a0) * s, b0 + (b1 - b0) * s), s)
    assert mean_of_max(np.float64(a0), np.float64(b0), np.float64(a1), np.float64(b1)) == pytest.approx(numeric, abs=1e-6)


def test_single_estimate_equals_one_row_of_a_sweep():
    models = [load_model(x) for x in ("llama-3.1-8b", "qwen2.5-7b")]
    hw = load_hardware("h100-sxm")
    f = load_format("fp8")
    mcols = {k: np.array([model_row(x)[k] for x in models]) for k in model_row(models[0])}
    fc = {k: np.asarray(v) for k, v in format_row(f, hw).items()}
    hc = {k: np.asarray(v) for k, v in hardware_row(hw).items()}
    batch = np.array([[1], [16], [64]])          # (3, 1) against 2 models -> (3, 2) sweep
    sweep = evaluate(mcols, fc, hc, batch, 1024, 256, 0, 1, 1, 1).metrics
    single = estimate("qwen2.5-7b", "h100-sxm", "fp8", batch=16, prompt=1024, gen=256, engine="ideal")
    assert sweep["tpot_s"].shape == (3, 2)
    assert sweep["tpot_s"][1, 1] == pytest.approx(single.metric("tpot_s"))
    assert sweep["ttft_s"][1, 1] == pytest.approx(single.metric("ttft_s"))


def test_decode_at_batch_one_is_memory_bound_near_bytes_over_bandwidth():
    e = estimate("llama-3.1-8b", "h100-sxm", "bf16", batch=1, prompt=1, gen=2, engine="ideal")
    weights = e.memory_dict()["weights_bytes"]
    roof = weights / (3.35e12 * 0.9)   # every weight read once per token at 90% of 3.35 TB/s
    assert roof < e.metric("tpot_s") < roof * 1.3


def test_prefill_at_long_prompt_is_compute_bound_near_2nd_flops():
    e = estimate("llama-3.1-8b", "h100-sxm", "bf16", batch=1, prompt=8192, gen=1, engine="ideal")
    flops = 2 * 8.03e9 * 8192   # ~2 FLOPs per parameter per token (attention adds the rest)
    roof = flops / (989.5e12 * 0.7)
    assert roof < e.metric("ttft_s") < roof * 1.5


def test_tensor_parallel_reduces_decode_time_for_big_models():
    one = estimate("llama-3.1-70b", "h100-sxm", "fp8", batch=1, engine="ideal")
    four = estimate("llama-3.1-70b", "h100-sxm", "fp8", batch=1, tp=4, engine="ideal")
    assert four.metric("tpot_s") < one.metric("tpot_s") / 2


def test_replicas_multiply_throughput_not_latency():
    one = estimate("llama-3.1-8b", "h100-sxm", "fp8", batch=8)
    four = estimate("llama-3.1-8b", "h100-sxm", "fp8", batch=8, devices=4)
    assert four.metric("throughput_tokens_per_s") == pytest.approx(4 * one.metric("throughput_tokens_per_s"))
    assert four.metric("tpot_s") == pytest.approx(one.metric("tpot_s"))
    assert four.metric("usd_per_million_tokens") == pytest.approx(one.metric("usd_per_million_tokens"))


def test_emulated_nvfp4_on_h100_is_slower_than_native_fp8_prefill():
    emu = estimate("llama-3.1-8b", "h100-sxm", "nvfp4", batch=8, prompt=4096)
    fp8 = estimate("llama-3.1-8b", "h100-sxm", "fp8", batch=8, prompt=4096)
    assert emu.plan.emulated and emu.metric("ttft_s") > fp8.metric("ttft_s")


def test_encoder_has_no_decode():
    e = estimate("bert-base", "l4", "fp16", batch=32, prompt=128, gen=0)
    assert e.metric("ttft_s") > 0 and np.isnan(e.metric("tpot_s"))
    assert e.memory_dict()["kv_cache_bytes"] == 0


def test_pipeline_parallel_splits_memory():
    one = estimate("llama-3.1-70b", "h100-sxm", "fp8", pp=1, batch=4)
    two = estimate("llama-3.1-70b", "h100-sxm", "fp8", pp=2, batch=4)
    assert two.memory_dict()["weights_bytes"] == pytest.approx(one.memory_dict()["weights_bytes"] / 2)
    assert two.memory_dict()["kv_cache_bytes"] == pytest.approx(one.memory_dict()["kv_cache_bytes"] / 2)


def test_vit_prompt_defaults_to_one_image():
    e = estimate("vit-b-16", "l4", "fp16", batch=64)
    assert e.workload.prompt == (224 // 16) ** 2 + 1 == 197


def test_an_array_workload_on_one_configurations_columns_equals_each_scalar_call():
    """One configuration's scalar columns with array-valued batches and contexts (how the serving model and
    `idealized` call the engine) give, element by element, the scalar calls' results, for models with
    and without attention layers (Mamba-2 and EfficientVMamba have none)."""
    from costmodel.estimate import columns_for

    batch, context = np.array([1.0, 4.0, 32.0]), np.array([0.0, 100.0, 5000.0])
    for model in ("mamba2-2.7b", "efficientvmamba-b", "llama-3.1-8b", "gemma-2-9b", "deepseek-v3.2"):
        cols = columns_for(estimate(model, "h100-sxm", "bf16"))
        arr = evaluate(*cols, batch, 128.0, 64.0, context, 1.0, 1.0, 1.0).metrics
        for i in range(3):
            one = evaluate(*cols, batch[i], 128.0, 64.0, context[i], 1.0, 1.0, 1.0).metrics
            for k in ("ttft_s", "tpot_s", "throughput_tokens_per_s", "energy_j_per_token", "max_batch"):
                np.testing.assert_allclose(np.asarray(arr[k])[i], one[k], rtol=1e-12, err_msg=(model, k, i))


def test_asked_for_metrics_are_the_whole_evaluations():
    """evaluate(metrics=names) computes only those, each the bits of the full evaluation's, in the order
    asked; by default every metric."""
    m, f, hw = columns("mixtral-8x7b", "h100-sxm", "fp8")
    args = (np.array([1.0, 8.0, -1.0]), np.array([128.0, 4096.0, 512.0]), 256.0, 0.0, 2.0, 1.0, 1.0)
    full = evaluate(m, f, hw, *args).metrics
    names = ("energy_j_per_token", "fits", "tpot_s", "max_batch")
    part = evaluate(m, f, hw, *args, metrics=names).metrics
    assert tuple(part) == names and len(full) == 21
    for k in names:
        np.testing.assert_array_equal(np.asarray(part[k], dtype=float).view(np.uint64),
                                      np.asarray(full[k], dtype=float).view(np.uint64), err_msg=k)
