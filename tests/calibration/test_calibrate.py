"""Calibration recovers known parameters from synthetic measurements made by the engine itself."""
import dataclasses

import numpy as np
import pytest
import yaml

from costmodel.calibration import fit as C
from costmodel.calibration.run import run
from costmodel.calibration.measurements import read_measurements, shipped_measurements, write_measurements
from costmodel.calibration.predict import predict, prepare


def synthetic_rows(theta_fn, noise=0.02, seed=0):
    """Shipped row configurations with values predicted under known parameters (+ noise)."""
    rows = [r for r in read_measurements(shipped_measurements())
            if r.hardware in ("h100-sxm", "a100-sxm-80gb", "m1-max-32c", "m2-ultra-76c", "rtx-4090", "h200-sxm")
            and not r.is_memory and (r.load_mode == "static" or (r.load_mode == "offline" and r.batch < 0))]
    rs = prepare(rows)
    lay = C.build_layout(rs, min_device_rows=10**9)
    theta = theta_fn(lay)
    hw, f = C.overrides(theta, lay, rs)
    pred, fits = predict(rs, hw, f)
    rng = np.random.default_rng(seed)
    noisy = pred * np.exp(rng.normal(0, noise, len(pred)))
    out = [dataclasses.replace(r, value=float(v)) for r, v, ok in zip(rs.rows, noisy, fits) if ok]
    return out, lay, theta


def truth(lay):
    t = lay.prior_mean.copy()
    for i, (level, engine, key, p) in enumerate(lay.names):
        if level == "engine" and p == "ec":
            t[i] = C._logit(0.55 if engine == "llama.cpp" else 0.75)
        if level == "engine" and p == "em":
            t[i] = C._logit(0.7 if engine == "llama.cpp" else 0.88)
        if level == "engine" and p == "so":
            t[i] = np.log(3e-3 if engine == "llama.cpp" else 4e-4)
    return t


def test_calibration_recovers_known_parameters():
    rows, lay_true, theta_true = synthetic_rows(truth)
    rs = prepare(rows)
    lay = C.build_layout(rs)
    theta = C.fit(rs, lay)
    got = C.tables_from(theta, lay)
    assert got["llama.cpp"]["global"]["memory_efficiency"] == pytest.approx(0.7, abs=0.06)
    assert got["trt-llm"]["global"]["memory_efficiency"] == pytest.approx(0.88, abs=0.06)
    err = C.log_errors(theta, lay, rs)
    assert np.median(np.abs(err)) < 0.03  # back to the injected 2% noise
    # step and kernel overheads trade off on one model; what must be recovered is their effect:
    # predictions on devices the fit never saw agree with the true parameters
    held = [r for r in read_measurements(shipped_measurements()) if r.hardware in ("m3-max-40c", "h100-pcie", "l40s")]
    hs = prepare(held)
    lay_h, th_fit = C.transfer(lay, theta, hs)
    lay_t, th_true = C.transfer(lay_true, theta_true, hs)
    fitted = np.exp(C.log_errors(th_fit, lay_h, hs))
    true = np.exp(C.log_errors(th_true, lay_t, hs))
    assert np.median(np.abs(fitted / true - 1)) < 0.05


def test_leave_one_device_out_predicts_unseen_devices():
    rows, _, _ = synthetic_rows(truth)
    rs = prepare(rows)
    lay = C.build_layout(rs)
    theta = C.fit(rs, lay)
    lodo = C.leave_one_device_out(rs, theta, lay)
    assert np.isfinite(lodo).all()
    assert np.median(np.abs(lodo)) < 0.1  # same family, same engine: small out-of-sample error


def test_shipped_calibration_is_reproducible(tmp_path):
    summary = run([str(shipped_measurements())], str(tmp_path), cross_validate=False)
    fresh = yaml.safe_load((tmp_path / "calibration" / "fitted.yaml").read_text())
    shipped = yaml.safe_load(open(shipped_measurements().parents[1] / "calibration" / "fitted.yaml"))
    for engine, block in shipped["engines"].items():
        for name, node in block["global"].items():
            assert fresh["engines"][engine]["global"][name]["value"] == pytest.approx(node["value"], rel=0.02), (engine, name)
    assert summary["rows_used"] == shipped["provenance"]["rows_used"]
    # the fit beats the uncalibrated datasheet engine on the same rows
    assert summary["in_sample"]["all"]["median_ape"] < summary["uncalibrated"]["all"]["median_ape"]


def test_shipped_error_targets_hold():
    prov = yaml.safe_load(open(shipped_measurements().parents[1] / "calibration" / "fitted.yaml"))["provenance"]
    loso = prov["errors"]["leave_one_source_out"]
    # the headline (issue 14): a source the fit never saw, median |error| at most 15%
    assert loso["all"]["median_ape"] <= 0.15
    lodo = prov["errors"]["leave_one_device_out"]
    # a device held out takes its family's values; the llama-bench rows of new sources put discrete
    # Radeons beside the Strix Halo iGPU in one family (README, Calibration): 15.1% now, 10.4% before them
    assert lodo["all"]["median_ape"] <= 0.16
    # the published metrics; closed-loop TPOT rows of SGLang and vLLM are harder (README)
    for metric in ("throughput_tokens_per_s", "ttft_ms"):
        assert lodo[metric]["p90_ape"] <= 0.40, metric
    # decode also holds the Intel Arc and MLX rows: left out, their device takes its family (or, for MLX's
    # only device, the engine) with no sibling measured (README)
    assert lodo["decode_tokens_per_s"]["p90_ape"] <= 0.45
    # prefill: the Ryzen AI Max+ 395 held out gets the discrete Radeons' family efficiency against its
    # derived WMMA peak, 2.8x too fast (README); leaving a source out keeps the median and P90 bounded
    assert loso["prefill_tokens_per_s"]["median_ape"] <= 0.25
    assert loso["prefill_tokens_per_s"]["p90_ape"] <= 1.2


def test_calibrate_writes_provenance(tmp_path):
    rows = read_measurements(shipped_measurements())[:40]
    p = tmp_path / "few.csv"
    write_measurements(p, rows)
    summary = run([str(p)], str(tmp_path / "out"), cross_validate=False)
    doc = yaml.safe_load(open(summary["path"]))
    prov = doc["provenance"]
    assert prov["inputs"][0]["rows"] == 40 and len(prov["inputs"][0]["sha256"]) == 16
    assert prov["rows_used"] + prov["rows_skipped"] == 40
    assert all(v["source"] == "fit" for v in doc["engines"]["llama.cpp"]["global"].values())


def test_closed_loop_tpot_calibrates_only_engines_whose_static_rows_are_fewer():
    from dataclasses import replace

    from costmodel.calibration.run import _decode_from_serving

    shipped = read_measurements(shipped_measurements())
    served = [r for r in shipped if r.load_mode == "closed"]
    static = [r for r in shipped if not r.is_memory and r.load_mode == "static"]
    rows = _decode_from_serving(served, static)
    # TensorRT-LLM: 120 static rows against 20 closed-loop TPOT rows; SGLang: 4 static against 120
    assert rows and {r.framework for r in rows} == {"sglang", "vllm"}
    # split prefill/decode rows are scored, not fitted: none of them becomes a decode row
    assert len([r for r in rows if r.framework == "sglang"]) == sum(
        r.framework == "sglang" and r.metric == "tpot_ms" and not r.is_split for r in served)
    assert not any(r.is_split for r in rows) and any(r.is_split for r in served)
    many = [replace(static[0], id=f"x{i}", framework="sglang") for i in range(200)]
    assert {r.framework for r in _decode_from_serving(served, static + many)} == {"vllm"}
    assert all(r.load_mode == "static" and r.metric == "tpot_ms" for r in rows)
    # uniform:0.8 lengths of nominal 1024 decode at their mean, 0.9 x 1024
    inferencex = [r for r in rows if r.length_dist == "uniform:0.8" and r.output_tokens]
    assert inferencex and all(r.prompt_tokens == round(0.9 * 1024) for r in inferencex if r.notes.find("ISL/OSL 1024/") >= 0)
