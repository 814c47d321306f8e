import pytest

from costmodel.errors import FormatNotSupportedError, UnknownIdError
from costmodel.spec.formats import all_formats, load_format, plan_compute
from costmodel.spec.hardware import load_hardware

REQUIRED = "fp32 bf16 fp16 fp8 w8a8-int8 w8a16 w4a16 w4a8 nvfp4 mxfp4 mxfp8 mxint8 q8_0 q4_0 q4_k_m".split()


def test_all_required_formats_exist():
    assert set(REQUIRED) <= {f.id for f in all_formats()}


@pytest.mark.parametrize("fmt,w,a,kv", [
    ("bf16", 16, 16, 16),
    ("fp8", 8, 8, 8),
    ("nvfp4", 4 + 8 / 16, 4 + 8 / 16, 8),      # E2M1 + one E4M3 scale per 16
    ("mxfp4", 4 + 8 / 32, 4 + 8 / 32, 8),      # E2M1 + one E8M0 scale per 32
    ("mxfp8", 8 + 8 / 32, 8 + 8 / 32, 8),
    ("w4a16", 4 + (16 + 4) / 128, 16, 16),     # fp16 scale + 4-bit zero per 128
    ("q4_0", 18 * 8 / 32, 32, 16),             # 18-byte blocks of 32
    ("q8_0", 34 * 8 / 32, 32, 16),             # 34-byte blocks of 32
])
def test_bits_include_block_scales(fmt, w, a, kv):
    f = load_format(fmt)
    assert (f.weight_bits, f.activation_bits, f.kv_bits) == pytest.approx((w, a, kv))
    assert f.sources["weight_bits"]


def test_native_fp4_on_blackwell():
    plan = plan_compute(load_format("nvfp4"), load_hardware("b200"))
    assert plan.dtype == "fp4" and not plan.emulated and not plan.dequant


def test_nvfp4_on_h100_is_emulated_at_a_stated_cost_never_at_a_missing_peak():
    plan = plan_compute(load_format("nvfp4"), load_hardware("h100-sxm"))
    assert plan.emulated and plan.dtype == "bf16" and plan.dequant
    assert plan.activation_bits == 16 and "dequantiz" in plan.note


def test_native_only_refuses():
    with pytest.raises(FormatNotSupportedError, match="nvfp4 needs fp4"):
        plan_compute(load_format("nvfp4"), load_hardware("h100"), native_only=True)


def test_weight_only_formats_dequantize_on_16bit_units():
    plan = plan_compute(load_format("w4a16"), load_hardware("h100"))
    assert plan.dtype == "bf16" and plan.dequant and not plan.emulated


def test_llamacpp_quant_uses_integer_path_on_cuda_and_fp16_on_apple():
    assert plan_compute(load_format("q4_0"), load_hardware("rtx-4090")).dtype == "int8"
    assert plan_compute(load_format("q4_0"), load_hardware("m2-pro")).dtype == "fp16"


def test_unknown_format_suggests():
    with pytest.raises(UnknownIdError, match="did you mean 'nvfp4'"):
        load_format("nvfp5")


def test_gguf_formats_imply_llama_cpp():
    """q4_0 / q4_k_m / q8_0 on a Jetson get llama.cpp's calibration, not TensorRT-LLM's; --engine still wins."""
    from costmodel.estimate import estimate

    for fmt in ("q4_0", "q4_k_m", "q8_0"):
        assert load_format(fmt).engine == "llama.cpp"
        assert estimate("llama-3.1-8b", "jetson-agx-orin-64gb", fmt).efficiency.engine == "llama.cpp"
    assert estimate("llama-3.1-8b", "jetson-agx-orin-64gb", "w4a16").efficiency.engine == "trt-llm"
    assert estimate("llama-3.1-8b", "jetson-agx-orin-64gb", "q4_0", engine="trt-llm").efficiency.engine == "trt-llm"


def test_sweep_auto_engine_follows_the_format_like_estimate():
    from costmodel import sweep
    from costmodel.estimate import estimate

    r = sweep(models=["llama-3.1-8b"], hw=["jetson-agx-orin-64gb"], fmt=["q4_0", "w4a16"])
    assert list(r["engine"]) == ["llama.cpp", "trt-llm"]
    one = estimate("llama-3.1-8b", "jetson-agx-orin-64gb", "q4_0")
    assert r["tpot_s"][0] == pytest.approx(one.metric("tpot_s"), rel=1e-9)


# --- engine kernel paths (calibration/defaults.yaml compute_paths) ---

def _row(fmt, hw, engine):
    from costmodel.engine.columns import format_row

    return format_row(load_format(fmt), load_hardware(hw), None, False, engine)


def test_llamacpp_mxfp4_runs_on_int8_mmq_before_blackwell_and_fp4_on_it():
    from costmodel.spec.engine_params import efficiency_for

    fmt = load_format("mxfp4")
    ada = plan_compute(fmt, load_hardware("rtx-4090"), engine="llama.cpp")
    assert (ada.dtype, ada.emulated, ada.activation_bits, ada.engine_path) == ("int8", False, 32.0, True)
    # without the engine (or under another engine) the format's own rule: emulated on bf16 units
    assert plan_compute(fmt, load_hardware("rtx-4090")).label == "bf16 (emulated)"
    assert plan_compute(fmt, load_hardware("h100-sxm"), engine="vllm").label == "bf16 (emulated)"
    # Apple has no int8 units: llama.cpp's 16-bit kernels, natively
    assert plan_compute(fmt, load_hardware("m4-max-40c"), engine="llama.cpp").label == "fp16"
    # Blackwell: fp4 units at 1.26x the int8 path's speed (PR #17906's pp512 table: 13304.80 / 10560.64)
    bw = plan_compute(fmt, load_hardware("rtx-5090"), engine="llama.cpp")
    assert (bw.dtype, bw.rate_of) == ("fp4", ("int8", 1.26))
    hw = load_hardware("rtx-5090")
    row = _row("mxfp4", "rtx-5090", "llama.cpp")
    int_scale = efficiency_for(hw.id, hw.family, "llama.cpp").matmul_scale("int8")
    assert row["peak_raw"] == pytest.approx(hw.peaks["int8"] * 1.26)
    assert row["peak_matmul"] == pytest.approx(hw.peaks["int8"] * 1.26 * int_scale)
    # a build inherits its engine's paths
    assert plan_compute(fmt, load_hardware("rtx-4090"), engine="llama.cpp/vulkan").dtype == "int8"


def test_estimate_names_the_engine_kernel_path():
    import costmodel

    est = costmodel.estimate("gpt-oss-20b", "rtx-4090", "mxfp4", engine="llama.cpp")
    assert est.plan.label == "int8"
    assert any("int8 units under llama.cpp's kernels" in n for n in est.notes)


def test_bad_compute_path_is_refused_with_file_and_expectation(user_catalog):
    from costmodel.errors import CostModelError
    from costmodel.spec.engine_params import compute_path

    (user_catalog / "calibration" / "bad.yaml").write_text(
        "compute_paths:\n  llama.cpp:\n    q4_0: {compute: [int9], source: x}\n")
    with pytest.raises(CostModelError, match=r"bad.yaml: compute_paths.llama.cpp.q4_0: expected"):
        compute_path("llama.cpp", "q4_0")


def test_user_compute_path_overrides_and_a_build_wins_over_its_engine(user_catalog):
    from costmodel.spec.engine_params import compute_path

    (user_catalog / "calibration" / "mine.yaml").write_text(
        "compute_paths:\n  llama.cpp/vulkan:\n    mxfp4: {compute: [fp16], source: my kernels}\n")
    assert compute_path("llama.cpp/vulkan", "mxfp4").compute == ("fp16",)
    assert compute_path("llama.cpp", "mxfp4").compute == ("fp4", "int8", "fp16")
    assert plan_compute(load_format("mxfp4"), load_hardware("rtx-4090"), engine="llama.cpp/vulkan").dtype == "fp16"
