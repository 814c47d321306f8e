"""Engine builds as a calibration key, and intervals that hold on held-out data."""
import dataclasses
import json

import numpy as np
import pytest
import yaml

from costmodel.calibration import coverage as V
from costmodel.calibration import intervals as I
from costmodel.calibration import fit as C
from costmodel.calibration.measurements import read_measurements, shipped_measurements
from costmodel.calibration.predict import predict, prepare
from costmodel.errors import CostModelError
from costmodel.spec.engine_params import efficiency_for, resolve_engine


def _shipped_fit() -> dict:
    return yaml.safe_load(open(shipped_measurements().parents[1] / "calibration" / "fitted.yaml"))


def test_build_names_resolve_with_aliases_and_suggestions():
    assert resolve_engine("llama.cpp/hip", "") == "llama.cpp/rocm"
    assert resolve_engine("LlamaCpp/Vulkan", "") == "llama.cpp/vulkan"
    with pytest.raises(CostModelError, match="did you mean 'llama.cpp/vulkan'"):
        resolve_engine("llama.cpp/vulkn", "")
    with pytest.raises(CostModelError, match="unknown engine"):
        resolve_engine("vllm/vulkan", "")  # vLLM declares no builds
    for bad in ("llama.cpp/", "/vulkan", "llama.cpp/vulkan/x"):
        with pytest.raises(CostModelError, match="unknown engine"):
            resolve_engine(bad, "")


def test_a_build_inherits_its_engine_and_adds_its_fitted_offsets():
    base = efficiency_for("ryzen-ai-max-395", "amd-radeon", "llama.cpp")
    for build in ("llama.cpp/rocm", "llama.cpp/vulkan"):
        e = efficiency_for("ryzen-ai-max-395", "amd-radeon", build)
        assert e.engine == build
        assert e.prefill_chunk_tokens == base.prefill_chunk_tokens == 512  # llama.cpp's n_ubatch
        assert e.kernel_overhead_s == base.kernel_overhead_s  # not a build-level parameter
        assert e.levels[-1] == f"{build}:ryzen-ai-max-395"
    rocm = efficiency_for("ryzen-ai-max-395", "amd-radeon", "llama.cpp/rocm")
    vulkan = efficiency_for("ryzen-ai-max-395", "amd-radeon", "llama.cpp/vulkan")
    assert rocm.compute_efficiency != vulkan.compute_efficiency
    # on a family no build was measured on, a build is its engine
    cuda_base = efficiency_for("rtx-4090", "nvidia-consumer", "llama.cpp")
    assert efficiency_for("rtx-4090", "nvidia-consumer", "llama.cpp/cuda").compute_efficiency == \
        cuda_base.compute_efficiency  # no CUDA-labelled rows: no offset


def test_fit_recovers_a_build_offset_from_rows_of_two_builds():
    rows = [r for r in read_measurements(shipped_measurements()) if r.hardware == "ryzen-ai-max-395"]
    rs = prepare(rows)
    assert {"llama.cpp/rocm", "llama.cpp/vulkan"} <= set(rs.engines)
    lay = C.build_layout(rs)
    vk = C.build_key("llama.cpp/vulkan", "amd-radeon")
    assert ("build", "llama.cpp", vk, "ec") in lay.names
    truth = lay.prior_mean.copy()
    for i, (level, _e, key, p) in enumerate(lay.names):
        if level == "engine" and p == "ec":
            truth[i] = C._logit(0.3)
        if level == "build" and key == vk and p == "ec":
            truth[i] = -1.0  # Vulkan's prefill reaches e^-1 of ROCm's odds
    hw, f = C.overrides(truth, lay, rs)
    pred, _ = predict(rs, hw, f)
    synth = [r.__class__(**{**r.__dict__, "value": float(v)}) for r, v in zip(rs.rows, pred)]
    rs2 = prepare(synth)
    theta = C.fit(rs2, lay)
    tab = C.tables_from(theta, lay)
    rocm, vulkan = (tab[b]["families"]["amd-radeon"] for b in ("llama.cpp/rocm", "llama.cpp/vulkan"))
    assert not tab["llama.cpp/vulkan"]["global"]  # a build's blocks only where it was measured
    odds = lambda p: p / (1 - p)  # noqa: E731
    assert np.log(odds(vulkan["compute_efficiency"]) / odds(rocm["compute_efficiency"])) == pytest.approx(-1.0, abs=0.3)
    assert np.median(np.abs(C.log_errors(theta, lay, rs2))) < 0.02


def test_leave_one_engine_out_holds_out_all_builds_of_an_engine():
    shipped = read_measurements(shipped_measurements())
    rows = [next(r for r in shipped if r.framework == b) for b in ("llama.cpp", "llama.cpp/rocm", "llama.cpp/vulkan")]
    rs = prepare(rows)
    assert set(rs.engines) == {"llama.cpp", "llama.cpp/rocm", "llama.cpp/vulkan"}
    assert {C.GROUPS["engine"](r, e) for r, e in zip(rs.rows, rs.engines)} == {"llama.cpp"}
    assert prepare([dataclasses.replace(rows[1], framework="llama.cpp/hip")]).engines == ("llama.cpp/rocm",)


def test_widening_closed_forms():
    # r = 0.3 outside [-0.1, 0.1]: half-width 0.1, so it needs 1 + (0.3 - 0.1)/0.1 = 3 half-widths
    f = V.needed_factor(np.array([0.3, -0.25, 0.05]), np.array([-0.1, -0.1, -0.1]), np.array([0.1, 0.1, 0.1]))
    assert f == pytest.approx([3.0, 2.5, 1.0])
    assert I.widen(-0.1, 0.1, 3.0) == pytest.approx((-0.3, 0.3))
    # a band on one side of zero widens on both
    assert I.widen(0.0, 0.2, 2.0) == pytest.approx((-0.1, 0.3))
    # the smallest factor that holds 80%: four of five rows need 1, so 1
    assert V.widening(np.array([1.0, 1.0, 1.0, 1.0, 5.0])) == 1.0
    assert V.widening(np.array([1.0, 1.0, 1.0, 4.0, 5.0])) == 4.0
    assert V.widening(np.array([np.inf] * 5)) is None and V.widening(np.array([])) is None


def test_fold_levels_follow_what_the_fold_saw():
    rows = [r for r in read_measurements(shipped_measurements())
            if r.source in ("kyuz0_strixhalo_toolboxes_2026_05", "tosukui_blog_strixhalo_rocm_2025_07",
                            "trtllm_perf_overview_v0.9") and not r.is_memory]
    rs = prepare(rows)
    lv = V.fold_levels(rs, [r.source for r in rs.rows])
    by = {(r.source, x) for r, x in zip(rs.rows, lv)}
    # another source measured the 395 under llama.cpp: a held-out Strix Halo source is at device level
    assert ("kyuz0_strixhalo_toolboxes_2026_05", "device") in by
    # TensorRT-LLM has no other source here: its held-out rows are an uncalibrated engine
    assert {x for s, x in by if s == "trtllm_perf_overview_v0.9"} == {"uncalibrated"}
    assert set(V.fold_levels(rs, [r.hardware for r in rs.rows])) <= {"family", "engine", "uncalibrated"}


def test_shipped_intervals_hold_on_every_held_out_split():
    """Issue 14: on every held-out split at least 75% of measured values fall inside the 80% interval,
    the band built without the scored group and its widening chosen without it."""
    prov = _shipped_fit()["provenance"]
    cov = prov["interval_coverage_held_out"]
    assert set(cov) == {"device", "source", "engine", "serving_source"}
    for split, c in cov.items():
        assert c["covered"] >= 0.75, split
        assert c["covered"] > c["covered_before_widening"], split  # the widening is what brings it there
        assert sum(e["n"] for e in c["by_engine"].values()) == c["n"]
    widen = _shipped_fit()["interval_widening"]
    assert {"device", "new-device", "uncalibrated", "load"} <= set(widen)
    assert widen["uncalibrated"] > 1.0 and widen["new-device"] > 1.0


def test_intervals_widen_with_the_calibration_level():
    from costmodel.calibration.intervals import lookup

    lo_d, hi_d, _ = lookup("trt-llm", "nvidia-datacenter", ("decode",), "device")
    lo_f, hi_f, basis = lookup("trt-llm", "nvidia-datacenter", ("decode",), "family")
    assert lo_f < lo_d <= 0 <= hi_d < hi_f
    assert "widened x" in basis  # the new-device factor
    lo_u, hi_u, basis_u = lookup("mlc", "nvidia-consumer", ("decode",), "uncalibrated")
    assert "engine uncalibrated" in basis_u and lo_u <= 0 <= hi_u


def test_an_uncalibrated_engine_falls_back_to_every_metric_of_every_engine():
    """The band the held-out coverage was measured on (coverage.nested_bands with band_keys): the
    family's over engines where two engines measured it, else every metric's (the `*` kind), which
    the estimate must look up as such, not as the metric's own pool."""
    import yaml

    from costmodel.calibration.intervals import lookup
    from costmodel.calibration.measurements import shipped_measurements

    doc = yaml.safe_load(open(shipped_measurements().parents[1] / "calibration" / "fitted.yaml"))
    every = doc["intervals"]["uncalibrated"]["*"]["*"]
    lo, hi, basis = lookup("mlc", "amd-radeon", ("prefill",), "uncalibrated", widened=False)
    assert "family *, every metric" in basis and f"n={every['n']}" in basis
    assert (lo, hi) == pytest.approx((every["low"], every["high"]))
    # where two engines measured the family, its own kind's band comes first (also for a fallback kind)
    _, _, basis = lookup("mlc", "nvidia-datacenter", ("throughput", "decode"), "uncalibrated")
    assert "family nvidia-datacenter, decode" in basis


def test_estimate_json_names_its_calibration_level(run_cli):
    def cli(*args):
        code, out, err = run_cli(*args)
        assert code == 0, err
        return out

    d = json.loads(cli("estimate", "llama-3.1-8b", "--hw", "h100", "--engine", "trt-llm", "--json"))
    assert d["calibration_level"] in ("device", "family") and d["calibration_case"].startswith("calibrated")
    d = json.loads(cli("estimate", "llama-3.2-3b", "--hw", "b580", "--engine", "llama.cpp/vulkan", "--fmt", "q4_k_m",
                       "--json"))
    assert d["engine"] == "llama.cpp/vulkan"
    assert d["calibration_level"] in ("device", "family", "engine")
    iv = d["interval"]["decode_tokens_per_s"]
    assert iv["low"] <= d["decode_tokens_per_s"] <= iv["high"]
    assert "widened x" in d["interval"]["groups"]["decode_tokens_per_s"]  # the held-out widening applies
    d = json.loads(cli("estimate", "llama-3.1-8b", "--hw", "rtx-4090", "--engine", "mlc", "--json"))
    assert d["calibration_level"] == "uncalibrated"
    assert d["interval"]["decode_tokens_per_s"]["low"] <= d["decode_tokens_per_s"] <= \
        d["interval"]["decode_tokens_per_s"]["high"]


@pytest.mark.parametrize("fmt,bits", [("mlx-q4", 4.5), ("mlx-q4-g32", 5.0), ("mlx-q5", 5.5), ("mlx-q5-g32", 6.0),
                                      ("mlx-q6", 6.5), ("mlx-q8", 8.5)])
def test_mlx_formats_cost_bits_plus_a_16_bit_scale_and_bias_per_group(fmt, bits):
    from costmodel.spec.formats import resolve_format

    f, _ = resolve_format(fmt)
    # affine: b bits per weight + (16-bit scale + 16-bit bias) / group size (MLX mlx.core.quantize)
    assert f.weight_bits == pytest.approx(bits)
    assert f.lm_head_bits == f.embedding_bits == pytest.approx(bits)  # mlx.nn.quantize: Linear and Embedding
    assert f.engine == "mlx" and f.activation_bits == 16


def test_mlx_engine_keeps_its_memory_rules_and_is_the_format_default():
    e = efficiency_for("m4-max-40c", "apple-gpu", "mlx")
    assert e.kv_block_tokens == 256  # mlx-lm KVCache.step
    assert e.prefill_chunk_tokens == 2048  # mlx-lm prefill_step_size
    assert e.usable_memory_fraction == 0.75  # Metal's recommended working set on Apple GPUs
    assert resolve_engine("mlx-lm", "") == "mlx"
    assert resolve_engine("auto", "apple-gpu", "m4-max-40c", "mlx") == "mlx"


def test_list_engines_says_which_engines_are_calibrated(run_cli):
    code, out, err = run_cli("list", "engines", "--json")
    assert code == 0, err
    rows = {r["id"]: r for r in json.loads(out)}
    assert rows["trt-llm"]["calibration"] == "fitted" and "nvidia-jetson" in rows["trt-llm"]["families"]
    assert rows["mlx"]["calibration"] == "fitted" and rows["mlx"]["kv_block_tokens"] == 256
    assert rows["mlc"]["calibration"] == "uncalibrated"
    assert rows["llama.cpp/vulkan"]["calibration"] == "build offsets fitted"
    assert rows["llama.cpp/metal"]["calibration"] == "as llama.cpp (no rows of this build)"
    assert rows["vllm"]["max_batch"] == 256  # vLLM's max_num_seqs default


def test_decode_aggregate_rate_is_batch_over_tpot_and_scores_as_a_rate():
    """llama-batched-bench's S_TG: B sequences' generated tokens per second of decode (prefill excluded)."""
    import dataclasses

    from costmodel import estimate

    e = estimate("llama-3.1-8b", hw="h100", fmt="bf16", engine="trt-llm", batch=16, prompt=512, gen=128)
    assert e.metric("decode_aggregate_tokens_per_s") == pytest.approx(16 / e.metric("tpot_s"), rel=1e-12)
    row = next(r for r in read_measurements(shipped_measurements()) if r.metric == "decode_tokens_per_s"
               and r.framework == "llama.cpp" and r.batch == 1)
    agg = dataclasses.replace(row, metric="decode_aggregate_tokens_per_s")
    p1, _ = predict(prepare([row]))
    p2, _ = predict(prepare([agg]))
    assert p2[0] == pytest.approx(p1[0], rel=1e-12)  # at batch 1 the aggregate is the per-sequence rate


def test_user_calibration_of_an_engine_device_wins_over_a_build_family_block(user_catalog):
    (user_catalog / "calibration" / "mine.yaml").write_text(
        "sources: {me: 'fit: my own llama.cpp runs'}\n"
        "engines:\n  llama.cpp:\n    devices:\n      rx-6800-xt:\n"
        "        compute_efficiency: {value: 0.55, source: me}\n"
        "  vllm:\n    families:\n      apple-gpu:\n        max_batch: {value: 8, source: me}\n")
    # (a device with no build block of its own in the shipped fit: one Vulkan row)
    e = efficiency_for("rx-6800-xt", "amd-radeon", "llama.cpp/vulkan")
    assert e.compute_efficiency == 0.55  # the device's own fit comes after the build's family block
    assert e.calibration_level("rx-6800-xt", "amd-radeon") == "device"
    # a family block of limits (no fitted efficiency) does not make an estimate family-level
    v = efficiency_for("m4-max-40c", "apple-gpu", "vllm")
    assert v.max_batch == 8 and v.calibration_level("m4-max-40c", "apple-gpu") == "engine"


def test_bad_build_declarations_are_refused(user_catalog):
    (user_catalog / "calibration" / "bad.yaml").write_text(
        "builds:\n  llama.cpp:\n    opencl: {source: x, aliases: cl}\n")
    with pytest.raises(CostModelError, match="builds.llama.cpp.opencl"):
        resolve_engine("llama.cpp/opencl", "")


def test_intervals_of_a_build_fall_back_to_its_engine_before_all_engines():
    table = {"llama.cpp": {"amd-radeon": {"decode": {"low": -0.1, "high": 0.2, "n": 9}}},
             "llama.cpp/vulkan": {"*": {"prefill": {"low": -0.5, "high": 0.5, "n": 9}}},
             "*": {"*": {"decode": {"low": -0.9, "high": 0.9, "n": 99}}}}
    q, e, f, _ = I._find(table, "llama.cpp/vulkan", "amd-radeon", ("decode",))
    assert (e, f, q["high"]) == ("llama.cpp", "amd-radeon", 0.2)


def test_coverage_counts_a_group_without_a_computable_widening_as_the_shipped_band_would():
    entries = ([("device", "A", i, "new-device", 1.0) for i in range(5)]
               + [("device", "B", 5 + i, "uncalibrated", 50.0) for i in range(5)])
    cov, widen = V.coverage_of(entries, ["vllm"] * 5 + ["mlx"] * 5)
    # group B's factor cannot be chosen without B: it is scored with no widening, and misses
    assert cov["device"]["covered"] == 0.5
    assert widen["uncalibrated"] == 50.0 and widen["new-device"] == 1.0


def test_a_build_is_refused_on_a_family_it_does_not_run_on(run_cli):
    from costmodel.errors import SpecError

    with pytest.raises(SpecError, match="metal build runs on apple-gpu"):
        efficiency_for("h100-sxm", "nvidia-datacenter", "llama.cpp/metal")
    assert efficiency_for("intel-arc-b580", "intel-arc", "llama.cpp/sycl").engine == "llama.cpp/sycl"
    assert efficiency_for("h100-sxm", "nvidia-datacenter", "llama.cpp/vulkan")  # Vulkan runs on any GPU
    code, out, err = run_cli("estimate", "llama-3.1-8b", "--hw", "m4-max-40c", "--engine", "llama.cpp/rocm")
    assert code == 2 and "rocm build runs on amd-instinct, amd-radeon" in err and "Traceback" not in err


def test_a_user_calibration_adds_bands_group_by_group():
    """intervals._merge: a group no earlier file holds takes the file's band; one an earlier file holds takes the
    band of more residuals (any engine: a user's 8 rows of one device leave the shipped bands of 40-356); each
    group cites the file it came from."""
    from costmodel.calibration.intervals import _merge

    band = lambda lo, n: {"low": lo, "high": -lo, "n": n}  # noqa: E731
    shipped = {"trt-llm": {"nvidia": {"prefill": band(-0.1, 50)}},
               "llama.cpp": {"cpu": {"prefill": band(-0.2, 40), "decode": band(-0.3, 40)}},
               "*": {"*": {"decode": band(-0.4, 356), "prefill": band(-0.5, 300)}},
               "uncalibrated": {"*": {"decode": band(-0.6, 356)}}}
    user = {"llama.cpp": {"cpu": {"prefill": band(-0.7, 8)}, "apple": {"decode": band(-0.8, 6)}},
            "trt-llm": {"nvidia": {"prefill": band(-0.9, 60)}, "amd": {"prefill": band(-1.0, 3)}},
            "*": {"*": {"prefill": band(-1.1, 8)}, "cpu": {"prefill": band(-1.2, 8)}},
            "uncalibrated": {"*": {"decode": band(-1.3, 400)}}}
    table, origin = {}, {}
    _merge(table, origin, shipped, "shipped")
    _merge(table, origin, user, "user")
    assert table["llama.cpp"] == {"cpu": {"prefill": band(-0.2, 40), "decode": band(-0.3, 40)},
                                  "apple": {"decode": band(-0.8, 6)}}
    assert table["trt-llm"] == {"nvidia": {"prefill": band(-0.9, 60)}, "amd": {"prefill": band(-1.0, 3)}}
    assert table["*"] == {"*": {"decode": band(-0.4, 356), "prefill": band(-0.5, 300)}, "cpu": {"prefill": band(-1.2, 8)}}
    assert table["uncalibrated"] == {"*": {"decode": band(-1.3, 400)}}
    assert origin == {("trt-llm", "nvidia", "prefill"): "user", ("llama.cpp", "cpu", "prefill"): "shipped",
                      ("llama.cpp", "cpu", "decode"): "shipped", ("*", "*", "decode"): "shipped",
                      ("*", "*", "prefill"): "shipped", ("uncalibrated", "*", "decode"): "user",
                      ("llama.cpp", "apple", "decode"): "user", ("trt-llm", "amd", "prefill"): "user",
                      ("*", "cpu", "prefill"): "user"}


USER_CPU_CALIBRATION = """\
engines:
  numpy:
    global:
      compute_efficiency: {value: 0.73101, source: fit}
provenance: {date: '2026-12-04', interval_residuals: in-sample}
intervals:
  numpy:
    cpu: {prefill: {low: -0.071522, high: 0.053896, n: 8}}
    '*': {prefill: {low: -0.071522, high: 0.053896, n: 8}}
  '*':
    '*': {prefill: {low: -0.071522, high: 0.053896, n: 8}, '*': {low: -0.40841, high: 0.41001, n: 12}}
  uncalibrated:
    '*': {prefill: {low: -0.092678, high: 0.22874, n: 8}, '*': {low: -0.092678, high: 0.76992, n: 12}}
"""


def test_a_user_calibration_of_one_cpu_keeps_every_other_engines_intervals(run_cli):
    """The bands `costmodel calibrate` installed for a profiled CPU (12 rows, in-sample, pools of 8-12) replaced the
    shipped pools: an H100 estimate lost its decode, energy and dollar intervals and cited the CPU's file. It keeps
    them now, cited from the shipped file; the CPU's own prefill band comes from its file."""
    from costmodel.spec.catalog import user_root

    h100 = ("estimate", "llama-3.1-70b", "--hw", "h100", "--fmt", "fp8", "--batch", "max", "--json")
    shipped = json.loads(run_cli(*h100)[1])["interval"]
    assert len(shipped) == 11 and "calibration/fitted.yaml" in shipped["basis"]
    (user_root() / "calibration").mkdir(parents=True)
    (user_root() / "calibration" / "user-cpu.yaml").write_text(USER_CPU_CALIBRATION)
    assert json.loads(run_cli(*h100)[1])["interval"] == shipped
    code, text, err = run_cli("estimate", "llama-3.2-1b", "--hw", "m2-pro-cpu", "--fmt", "bf16", "--engine", "numpy",
                              "--json")
    assert code == 0, err
    iv = json.loads(text)["interval"]
    assert iv["groups"]["ttft_s"].startswith("P10-P90 of in-sample residuals, calibration/user-cpu.yaml (2026-12-04): "
                                             "engine numpy, family cpu, prefill, n=8")
    assert "calibration/fitted.yaml" in iv["groups"]["tpot_s"]  # the shipped pool: the file's has no decode band
    assert iv["basis"].count("P10-P90") == 2


def test_a_band_is_widened_by_its_own_files_factors_and_a_null_band_is_none(run_cli):
    """A refit of the whole shipped set with its own widening factors: its bands (the engines it fitted, the pools
    of more residuals) are widened by its factors, not the shipped file's (the merged table kept the shipped ones
    for every plain level). A band left null in a user file is no band (it was an internal error)."""
    from costmodel.calibration.intervals import lookup
    from costmodel.spec.catalog import builtin_root, user_root

    est = ("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--engine", "vllm", "--json")
    shipped = json.loads(run_cli(*est)[1])["interval"]
    (user_root() / "calibration").mkdir(parents=True)
    doc = yaml.safe_load((builtin_root() / "calibration" / "fitted.yaml").read_text())
    doc["interval_widening"] = {k: 3.0 for k in doc["interval_widening"]}
    (user_root() / "calibration" / "user-refit.yaml").write_text(yaml.safe_dump(doc))
    refit = json.loads(run_cli(*est)[1])["interval"]
    assert "calibration/user-refit.yaml" in refit["basis"] and "widened x3 " in refit["groups"]["tpot_s"]
    assert refit["tpot_s"]["low"] < shipped["tpot_s"]["low"] and refit["tpot_s"]["high"] > shipped["tpot_s"]["high"]
    (user_root() / "calibration" / "user-refit.yaml").unlink()
    (user_root() / "calibration" / "user-null.yaml").write_text("intervals:\n  '*':\n    '*':\n      decode: null\n")
    code, text, err = run_cli(*est)
    assert code == 0, err
    assert json.loads(text)["interval"] == shipped and lookup("vllm", "nvidia-datacenter", ("decode",)) is not None


def test_a_user_calibration_of_one_device_leaves_the_engines_other_devices(run_cli, tmp_path):
    """8 vLLM rows of one device, installed into the user catalogue, refitted vLLM's global and family values for
    every device (a third reader: the H100's TPOT went from 8.22 to 5.13 ms, still labelled 'calibrated on this
    device'). For an engine the shipped calibration fits, the install now holds the measured device alone, with
    every value the fit resolves for it; other devices keep their predictions and their bands."""
    header = ("id,source,hardware,devices,tp,model,format,kv_format,framework,batch,prompt_tokens,output_tokens,"
              "context_tokens,metric,value,notes\n")
    rows = [f"u{i},mybench,l4,1,1,llama-3.1-8b,fp8,fp8,vllm,{b},{p},{g},0,{m},{v},mine\n"
            for i, (b, p, g, m, v) in enumerate([(1, 512, 0, "prefill_tokens_per_s", 4100), (1, 0, 128, "decode_tokens_per_s", 31),
                                                 (8, 0, 128, "decode_tokens_per_s", 220), (1, 2048, 0, "prefill_tokens_per_s", 3500),
                                                 (1, 512, 0, "ttft_ms", 130), (4, 0, 128, "decode_tokens_per_s", 115),
                                                 (16, 0, 128, "decode_tokens_per_s", 380), (1, 1024, 0, "ttft_ms", 270)])]
    f = tmp_path / "l4.csv"
    f.write_text(header + "".join(rows))
    est = ("estimate", "llama-3.1-8b", "--hw", "h100", "--fmt", "fp8", "--batch", "16", "--engine", "vllm", "--json")
    before = json.loads(run_cli(*est)[1])
    code, text, err = run_cli("calibrate", str(f), "--no-cross-validate", "--json")
    assert code == 0, err
    from costmodel.spec.catalog import user_root

    doc = yaml.safe_load(next((user_root() / "calibration").glob("user-*.yaml")).read_text())
    assert list(doc["engines"]) == ["vllm"] and list(doc["engines"]["vllm"]) == ["devices"]
    assert list(doc["engines"]["vllm"]["devices"]) == ["l4"]
    after = json.loads(run_cli(*est)[1])
    assert after["ttft_s"] == before["ttft_s"] and after["tpot_s"] == before["tpot_s"]
    assert after["interval"] == before["interval"]
    l4 = json.loads(run_cli("estimate", "llama-3.1-8b", "--hw", "l4", "--fmt", "fp8", "--json")[1])
    assert l4["engine"] == "vllm" and l4["calibration_level"] == "device"
