"""Intel Arc (B580, A310, Pro B50) and AMD Radeon RX 9070 XT: sourced figures load as written.

Expected values are written by hand from the sources in hardware/intel-arc.yaml and
hardware/amd-radeon.yaml (SI units: bytes, B/s, FLOP/s, W, USD).
"""
import pytest

from costmodel.spec.hardware import FAMILIES, load_hardware, resolve_hardware

GIB = 2**30
T = 1e12

EXPECTED = {
    "intel-arc-b580": {
        "vendor": "Intel", "family": "intel-arc", "memory": 12 * GIB, "bandwidth": 456e9,
        "peaks": {"fp32": 14.6 * T, "fp16": 117 * T, "bf16": 117 * T, "int8": 233 * T},
        "tdp": 190, "price": 249, "llc": 18 * 2**20,
    },
    "intel-arc-a310": {
        "vendor": "Intel", "family": "intel-arc", "memory": 4 * GIB, "bandwidth": 124e9,
        "peaks": {"fp32": 3.072 * T, "fp16": 24.576 * T, "bf16": 24.576 * T, "int8": 49.152 * T},
        "tdp": 75, "price": None, "llc": 4 * 2**20,
    },
    "intel-arc-pro-b50": {
        "vendor": "Intel", "family": "intel-arc", "memory": 16 * GIB, "bandwidth": 224e9,
        "peaks": {"fp32": 10.65 * T, "fp16": 85.2 * T, "bf16": 85.2 * T, "int8": 170.39 * T},
        "tdp": 70, "price": 349, "llc": None,
    },
    "radeon-rx-9070-xt": {
        "vendor": "AMD", "family": "amd-radeon", "memory": 16 * GIB, "bandwidth": 640e9,
        "peaks": {"fp32": 48.7 * T, "fp16": 194.6 * T, "bf16": 194.6 * T, "fp8": 389.3 * T,
                  "int8": 389.3 * T, "int4": 778.5 * T},
        "tdp": 304, "price": 599, "llc": 64 * 2**20,
    },
}

ALIASES = {
    "b580": "intel-arc-b580", "arc-b580": "intel-arc-b580",
    "a310": "intel-arc-a310", "arc-a310": "intel-arc-a310",
    "pro-b50": "intel-arc-pro-b50", "arc-pro-b50": "intel-arc-pro-b50", "b50": "intel-arc-pro-b50",
    "rx-9070-xt": "radeon-rx-9070-xt", "9070xt": "radeon-rx-9070-xt", "9070-xt": "radeon-rx-9070-xt",
    "rx9070xt": "radeon-rx-9070-xt",
}


def test_intel_arc_is_a_known_family():
    assert "intel-arc" in FAMILIES and "amd-radeon" in FAMILIES


@pytest.mark.parametrize("hw_id", EXPECTED)
def test_device_figures_match_their_sources(hw_id):
    want = EXPECTED[hw_id]
    hw = load_hardware(hw_id)
    assert hw.id == hw_id and hw.kind == "gpu"
    assert hw.vendor == want["vendor"] and hw.family == want["family"]
    assert hw.memory_bytes == want["memory"]
    assert hw.memory_bandwidth == pytest.approx(want["bandwidth"])
    assert hw.memory_kind == "GDDR6"
    assert set(hw.peaks) == set(want["peaks"])  # no fp8/fp4 on Arc; nothing unsourced added
    for dtype, value in want["peaks"].items():
        assert hw.peaks[dtype] == pytest.approx(value), dtype
    assert hw.tdp_w == want["tdp"] and hw.tdp_scope == "device"
    assert hw.list_price_usd == want["price"]
    assert hw.last_level_cache_bytes == want["llc"]
    assert hw.year in (2022, 2024, 2025)


@pytest.mark.parametrize("hw_id", EXPECTED)
def test_every_figure_has_a_source(hw_id):
    hw = load_hardware(hw_id)
    for field in ("memory_capacity", "memory_bandwidth", "tdp", *(f"peak.{d}" for d in hw.peaks)):
        assert hw.sources[field].strip(), field
    if hw.list_price_usd:
        assert hw.sources["price.list"].strip()


def test_derived_peaks_follow_their_stated_formulas():
    # A310: 96 XMX engines x 128 FP16 (256 INT8) ops/clock x 2.0 GHz; 768 lanes x 2 x 2.0 GHz
    a310 = load_hardware("intel-arc-a310")
    assert a310.peaks["fp16"] == pytest.approx(96 * 128 * 2.0e9)
    assert a310.peaks["int8"] == pytest.approx(96 * 256 * 2.0e9)
    assert a310.peaks["fp32"] == pytest.approx(768 * 2 * 2.0e9)
    assert "derived" in a310.sources["peak.fp16"]
    # B580 and Pro B50: Xe2 cores x 2048 FP16 / 4096 INT8 ops per clock x clock
    b580 = load_hardware("intel-arc-b580")
    assert b580.peaks["int8"] == pytest.approx(20 * 4096 * 2.85e9, rel=0.005)
    assert b580.peaks["fp16"] == pytest.approx(20 * 2048 * 2.85e9, rel=0.005)
    b50 = load_hardware("intel-arc-pro-b50")
    assert b50.peaks["int8"] == pytest.approx(16 * 4096 * 2.6e9, rel=1e-3)
    assert b50.peaks["fp16"] == pytest.approx(16 * 2048 * 2.6e9, rel=1e-3)
    # RX 9070 XT: 64 CU x per-CU WMMA rate x 2.97 GHz; dense = half AMD's sparse 779 / 1557 TOPS
    rx = load_hardware("radeon-rx-9070-xt")
    assert rx.peaks["fp16"] == pytest.approx(64 * 1024 * 2.97e9, rel=1e-3)
    assert rx.peaks["int8"] == pytest.approx(64 * 2048 * 2.97e9, rel=1e-3)
    assert rx.peaks["int8"] == pytest.approx(779e12 / 2, rel=2e-3)
    assert rx.peaks["int4"] == pytest.approx(1557e12 / 2, rel=1e-3)
    assert all("derived" in rx.sources[f"peak.{d}"] for d in ("fp16", "bf16", "fp8", "int8", "int4"))


@pytest.mark.parametrize("alias,target", ALIASES.items())
def test_short_names_resolve(alias, target):
    hw, resolved_to = resolve_hardware(alias)
    assert hw.id == target
    assert resolved_to == target


@pytest.mark.parametrize("hw_id", EXPECTED)
def test_ids_resolve_to_themselves(hw_id):
    hw, resolved_to = resolve_hardware(hw_id)
    assert hw.id == hw_id and resolved_to is None


@pytest.mark.parametrize("hw", ["b580", "9070xt"])
def test_estimate_runs_on_the_new_devices(hw):
    from costmodel.estimate import estimate

    e = estimate("llama-3.1-8b", hw, "q4_k_m", engine="llama.cpp")
    assert e.hardware.id in EXPECTED
    assert e.metric("tpot_s") > 0
