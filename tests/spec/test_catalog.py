"""Every required catalogue id resolves, every figure has a source, counts match publications."""
import shutil

import pytest

from costmodel.spec.catalog import index
from costmodel.errors import SpecError, UnknownIdError
from costmodel.spec.hardware import load_hardware, resolve_hardware
from costmodel.spec.model_catalog import load_model, resolve_model
from costmodel.spec.parameters import active_param_count, active_param_count_as_published, param_count

from tests.conftest import DATA

HARDWARE = """h100-sxm h100-pcie h100-nvl h200-sxm gh200-96gb gh200-144gb b200 gb200 b300 a100-sxm-80gb
a100-pcie-80gb a100-40gb l40s l4 rtx-3090 rtx-4090 rtx-5090 rtx-pro-6000 dgx-spark mi300x mi325x tpu-v5e
tpu-v5p tpu-v6e gaudi3 jetson-agx-orin-64gb jetson-agx-orin-32gb jetson-orin-nx-16gb jetson-orin-nano-8gb
jetson-orin-nano-super-8gb jetson-agx-thor m1-7c m1-8c m1-pro-14c m1-pro-16c m1-max-24c m1-max-32c
m1-ultra-48c m1-ultra-64c m2-8c m2-10c m2-pro-16c m2-pro-19c m2-max-30c m2-max-38c m2-ultra-60c
m2-ultra-76c m3-8c m3-10c m3-pro-14c m3-pro-18c m3-max-30c m3-max-40c m3-ultra-60c m3-ultra-80c m4-8c
m4-10c m4-pro-16c m4-pro-20c m4-max-32c m4-max-40c m2-pro-cpu""".split()
HW_ALIASES = {"h100": "h100-sxm", "h200": "h200-sxm", "gh200": "gh200-144gb", "b200": "b200",
              "blackwell": "b200", "a100": "a100-sxm-80gb", "m2-pro": "m2-pro-19c",
              "jetson-orin": "jetson-agx-orin-64gb", "orin-nano": "jetson-orin-nano-8gb"}
MODELS = """llama-2-7b llama-2-13b llama-2-70b llama-3-8b llama-3-70b llama-3.1-8b llama-3.1-70b llama-3.1-405b
llama-3.2-1b llama-3.2-3b llama-3.3-70b mistral-7b mixtral-8x7b qwen2.5-0.5b qwen2.5-1.5b qwen2.5-3b
qwen2.5-7b qwen2.5-14b qwen2.5-32b qwen2.5-72b qwen3-30b-a3b gemma-2-2b gemma-2-9b gemma-3-4b phi-3.5-mini
gpt-j-6b gpt-oss-20b gpt-oss-120b deepseek-v3 opt-175b bert-base bert-large vit-b-16 qwen3-coder-30b-a3b
tinyllama-1.1b""".split()
MODEL_ALIASES = {"llama-70b": "llama-3.1-70b", "llama-8b": "llama-3.1-8b", "llama-7b": "llama-2-7b",
                 "deepseek-v3.1": "deepseek-v3", "glm-4.6": "glm-4.5", "glm-4.7": "glm-4.5",
                 "qwen3-coder": "qwen3-coder-30b-a3b", "qwen3-coder-30b": "qwen3-coder-30b-a3b",
                 "qwen3-coder-30b-a3b-instruct": "qwen3-coder-30b-a3b", "tinyllama": "tinyllama-1.1b",
                 "tinyllama-1.1b-chat": "tinyllama-1.1b"}


@pytest.mark.parametrize("hw_id", HARDWARE)
def test_required_hardware_loads_with_sources(hw_id):
    hw = load_hardware(hw_id)
    assert hw.id == hw_id
    assert hw.memory_bytes > 0 and hw.memory_bandwidth > 0 and hw.peaks["fp32"] > 0
    # every figure that was read carries a non-empty source
    for field in ("memory_capacity", "memory_bandwidth", "peak.fp32"):
        assert hw.sources[field].strip()
    assert all(hw.sources[f"peak.{d}"].strip() for d in hw.peaks)


@pytest.mark.parametrize("alias,target", HW_ALIASES.items())
def test_hardware_aliases_resolve_and_say_so(alias, target):
    hw, resolved_to = resolve_hardware(alias)
    assert hw.id == target
    assert resolved_to == (None if alias == target else target)


def test_dense_peaks_never_sparse():
    # NVIDIA lists 1979 TFLOPS BF16 *with sparsity* for H100 SXM; dense is half.
    assert load_hardware("h100-sxm").peaks["bf16"] == pytest.approx(989.5e12)
    assert load_hardware("b200").peaks["fp4"] == pytest.approx(9e15)
    assert "fp4" not in load_hardware("h100-sxm").peaks


def test_apple_flops_are_derived_with_the_formula():
    hw = load_hardware("m2-pro-19c")
    assert hw.peaks["fp32"] == pytest.approx(19 * 128 * 2 * 1.398e9, rel=1e-3)
    assert "derived" in hw.sources["peak.fp32"]


@pytest.mark.parametrize("model_id", sorted(set(MODELS) | set(index("models").ids())))
def test_published_parameter_counts_within_one_percent(model_id):
    m = load_model(model_id)
    assert m.sources["published_params"].strip()
    assert param_count(m) == pytest.approx(m.published_params, rel=0.01)


@pytest.mark.parametrize("model_id,convention,tol", [
    ("gpt-oss-20b", "without_input_embedding", 0.01), ("gpt-oss-120b", "without_input_embedding", 0.01),
    ("mixtral-8x7b", "all", 0.01), ("glm-4.5", "without_embeddings", 0.01), ("deepseek-v3", "all", 0.02),
    ("qwen3-30b-a3b", "all", 0.02), ("qwen3-coder-30b-a3b", "all", 0.02),
])
def test_active_parameter_counts(model_id, convention, tol):
    """Each publisher's own convention, read from the spec: OpenAI leaves the input embedding out."""
    m = load_model(model_id)
    assert m.active_params_convention == convention
    as_published = active_param_count_as_published(m)
    assert as_published == pytest.approx(m.published_active_params, rel=tol)
    if convention == "without_input_embedding":
        assert active_param_count(m) - as_published == m.vocab_size * m.hidden_size
    if convention == "without_embeddings":  # untied: input embedding and LM head both left out
        assert active_param_count(m) - as_published == 2 * m.vocab_size * m.hidden_size


@pytest.mark.parametrize("alias,target", MODEL_ALIASES.items())
def test_model_aliases(alias, target):
    m, resolved_to = resolve_model(alias)
    assert m.id == target and resolved_to == target


def test_kv_bytes_per_token_gqa_and_mla():
    # GQA: 2 (K,V) x 8 kv heads x 128 dims x 32 layers = 65,536 elements per token
    m = load_model("llama-3.1-8b")
    assert m.kv_elements_per_token_per_layer * m.layers == 65536
    # MLA: (kv_lora_rank 512 + rope 64) x 61 layers = 35,136 elements per token (DeepSeek-V2 paper)
    d = load_model("deepseek-v3")
    assert d.kv_elements_per_token_per_layer * d.layers == 576 * 61


def test_sliding_window_layer_counts():
    assert load_model("gemma-2-2b").local_layers == 13
    assert load_model("gemma-3-4b").global_layers == 5
    assert load_model("mistral-7b").local_layers == 32


def test_unknown_ids_suggest_nearest():
    with pytest.raises(UnknownIdError, match="did you mean 'h100'"):
        load_hardware("h1000")
    with pytest.raises(UnknownIdError, match="did you mean 'llama-3.1-8b'"):
        load_model("llama-3.1-8")


def test_hf_config_json_is_a_model():
    m = load_model(str(DATA / "config.json"))
    assert (m.layers, m.hidden_size, m.kv_heads, m.intermediate_size) == (32, 4096, 8, 14336)
    assert param_count(m) == pytest.approx(param_count(load_model("llama-3.1-8b")))


def test_user_specs_on_costmodel_path(user_catalog):
    shutil.copy(DATA / "tiny.yaml", user_catalog / "models" / "tiny.yaml")
    assert param_count(load_model("tiny")) == 86848
    assert "tiny" in index("models").entries


def _write(folder, name, text):
    (folder / name).write_text(text)


def test_malformed_yaml_names_file_and_line(user_catalog):
    _write(user_catalog / "hardware", "bad.yaml", "devices:\n  - id: x\n    name: [unclosed\n")
    with pytest.raises(SpecError, match=r"bad.yaml:\d+: malformed YAML"):
        load_hardware("h100-sxm")


BOX = """
devices:
  - id: mybox
    name: My box
    vendor: Me
    family: cpu
    kind: cpu
    memory_capacity: {capacity}
    memory_bandwidth: {bandwidth}
    peak: {{fp32: {{value: 1 TFLOPS, source: me}}}}
"""
GOOD_CAPACITY, GOOD_BANDWIDTH = "{value: 64 GB, source: me}", "{value: 100 GB/s, source: me}"


def _box(folder, capacity=GOOD_CAPACITY, bandwidth=GOOD_BANDWIDTH):
    text = BOX.format(capacity=capacity, bandwidth=bandwidth)
    _write(folder / "hardware", "box.yaml", "\n".join(l for l in text.splitlines() if not l.endswith(": None")))


def test_valid_user_hardware_loads(user_catalog):
    _box(user_catalog)
    assert load_hardware("mybox").memory_bandwidth == 100e9


@pytest.mark.parametrize("capacity,bandwidth,message", [
    (GOOD_CAPACITY, None, r"box.yaml \[mybox\] field 'memory_bandwidth': missing"),
    (GOOD_CAPACITY, "{value: 100 GB/s}", "memory_bandwidth.*no source"),
    (GOOD_CAPACITY, "{value: 100 GB, source: me}", "memory_bandwidth.*expected a bandwidth"),
    ("{value: 0 GB, source: me}", GOOD_BANDWIDTH, "memory_capacity.*must be positive"),
])
def test_bad_hardware_yaml_names_file_field_and_expectation(user_catalog, capacity, bandwidth, message):
    _box(user_catalog, capacity, bandwidth)
    with pytest.raises(SpecError, match=message):
        load_hardware("mybox")


def test_module_power_is_named_where_energy_is_compared():
    """GH200's 1000 W covers Grace + Hopper + memory; Jetson and DGX Spark are module powers too."""
    from costmodel.estimate import estimate

    assert load_hardware("gh200-96gb").tdp_scope == "module"
    assert load_hardware("h100-sxm").tdp_scope == "device"
    assert load_hardware("m2-ultra-76c").tdp_scope == "system"
    notes = " ".join(estimate("llama-3.1-8b", "gh200-96gb", "bf16").notes)
    assert "covers the whole module" in notes
    assert not any("covers" in n for n in estimate("llama-3.1-8b", "h100", "bf16").notes)


def test_purchase_prices_for_devices_plan_may_buy():
    for hw in ("b200", "b300", "h100-sxm", "h200-sxm", "dgx-spark", "mi300x", "rtx-5090"):
        h = load_hardware(hw)
        assert h.list_price_usd and h.sources["price.list"].strip(), hw
    assert load_hardware("dgx-spark").list_price_usd == 4699


def test_one_id_twice_in_a_folder_is_refused_and_an_override_keeps_the_shipped_aliases(user_catalog):
    """A third reader: a user file defining one id twice dropped the second in silence, and a user entry replacing
    a shipped id lost the shipped aliases ('llama-8b' then unknown)."""
    import pytest

    from costmodel.errors import SpecError
    from costmodel.spec.model_catalog import load_model
    from tests.conftest import DATA

    tiny = (DATA / "tiny.yaml").read_text()
    body = tiny[tiny.index("  - id: tiny"):]
    (user_catalog / "models" / "twice.yaml").write_text(tiny + body.replace("Tiny test model", "Tiny again"))
    with pytest.raises(SpecError, match=r"twice.yaml: id 'tiny' is defined twice in .*models"):
        load_model("tiny")
    (user_catalog / "models" / "twice.yaml").unlink()
    (user_catalog / "models" / "mine.yaml").write_text(tiny.replace("id: tiny", "id: llama-3.1-8b"))
    assert load_model("llama-8b").layers == 2  # the shipped alias names the user's entry that replaces the id
