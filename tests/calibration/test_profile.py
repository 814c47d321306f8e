"""profile on the CPU produces well-formed rows that calibrate and validate end to end."""
import json

import pytest

from costmodel.calibration.measurements import read_measurements
from costmodel.calibration.profile import ProfileError, profile


def test_cpu_profile_calibrate_validate_end_to_end(tmp_path, run_cli, monkeypatch):
    out = tmp_path / "prof"
    r = profile("cpu", quick=True, out=str(out), prompts=(16,), gen=2, batches=(1, 2))
    rows = read_measurements(r["measurements"])
    assert len(rows) == 6 and all(x.source.startswith("profile:") for x in rows)
    assert {x.metric for x in rows} == {"prefill_tokens_per_s", "ttft_ms", "decode_tokens_per_s"}
    assert (out / "microbench.csv").read_text().count("gemm") >= 4
    assert (out / "hardware" / f"{r['device']}.yaml").is_file()
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("calibrate", str(out / "measurements.csv"), "--out", str(out), "--no-cross-validate")
    assert code == 0, err
    assert (out / "calibration" / "fitted.yaml").is_file()
    code, text, err = run_cli("validate", str(out / "measurements.csv"), "--json")
    assert code == 0, err
    rep = json.loads(text)
    assert rep["scored"] == 6 and all(d["predicted"] > 0 for d in rep["rows_detail"])
    assert 0 <= rep["overall"]["median_ape"] < float("inf")  # timings on a shared CI core: no accuracy threshold

    # without --out the calibration installs into the user catalogue and applies to the profiled device by default,
    # with no COSTMODEL_PATH: a later estimate on it uses the numpy calibration, not the family's llama.cpp default
    monkeypatch.delenv("COSTMODEL_PATH", raising=False)
    h100 = ("estimate", "llama-3.1-70b", "--hw", "h100", "--fmt", "fp8", "--batch", "max", "--json")
    shipped = json.loads(run_cli(*h100)[1])["interval"]
    code, text, err = run_cli("calibrate", str(out / "measurements.csv"), "--no-cross-validate", "--json")
    assert code == 0, err
    installed = json.loads(text)["installed"]
    assert installed["default_engine"] == {r["device"]: "numpy"}
    from costmodel.spec.catalog import user_root

    assert (user_root() / "hardware" / f"{r['device']}.yaml").is_file()
    code, text, err = run_cli("estimate", "qwen2.5-0.5b", "--hw", r["device"], "--json")
    assert code == 0, err
    d = json.loads(text)
    assert d["engine"] == "numpy" and any(level.endswith(r["device"]) for level in d["calibration"])
    code, text, _ = run_cli("estimate", "qwen2.5-0.5b", "--hw", "m2-pro", "--json")
    assert json.loads(text)["engine"] == "llama.cpp"  # other devices keep their family's engine
    # other engines keep every band of the shipped calibration (the user file's pools of 6 CPU rows replaced the
    # shipped pools, and the H100's decode, energy and dollar intervals were gone), cited from the shipped file
    assert json.loads(run_cli(*h100)[1])["interval"] == shipped
    assert len(shipped) == 11 and "calibration/fitted.yaml" in shipped["basis"]


def test_cuda_without_torch_says_so():
    try:
        import torch  # noqa: F401
        pytest.skip("torch is installed here")
    except ImportError:
        pass
    with pytest.raises(ProfileError, match="needs PyTorch"):
        profile("cuda", quick=True)


def test_unknown_device(run_cli):
    code, _, err = run_cli("profile", "--device", "tpu")
    assert code == 2 and "expected cpu or cuda" in err


def test_best_time_runs_calls_back_to_back_and_divides():
    from costmodel.calibration.timing import best_time

    n, syncs = [0], [0]
    best_time(lambda: n.__setitem__(0, n[0] + 1), 3, lambda: syncs.__setitem__(0, syncs[0] + 1), calls=7)
    assert n[0] == 1 + 3 * 7 and syncs[0] == 1 + 3  # one warm-up call; one synchronisation per sample


def test_device_ids_name_the_gpu():
    from costmodel.calibration.profile_backend import device_id

    assert device_id("vm", "cuda", "NVIDIA H200") == "vm-nvidia-h200"
    assert device_id("box", "cuda", "NVIDIA GeForce RTX 4090") == "box-nvidia-geforce-rtx-4090"
    assert device_id("box", "cpu", "AMD EPYC 7B13") == "box-cpu"
    assert device_id("box", "cuda", "") == "box-cuda"


def test_cuda_hardware_spec_takes_the_devices_memory(tmp_path):
    import yaml

    from costmodel.calibration.profile import _write_hardware

    micro = [{"kind": "gemm", "dtype": "bf16", "rate": 7.9e14}, {"kind": "gemm", "dtype": "fp8", "rate": 1.4e15},
             {"kind": "gemm", "dtype": "fp32", "rate": 5.1e13}, {"kind": "stream_copy", "dtype": "fp32", "rate": 3.9e12},
             {"kind": "stream_read", "dtype": "fp32", "rate": 4.07e12}]
    info = {"name": "NVIDIA H200", "memory_bytes": 150.1e9, "memory_source": "cuda", "vendor": "NVIDIA"}
    path = _write_hardware(tmp_path / "h.yaml", "vm-nvidia-h200", "cuda", micro, "profile:vm:2026-12-04", info)
    doc = yaml.safe_load(path.read_text())
    dev = doc["devices"][0]
    assert dev["memory_capacity"] == {"value": "150.1 GB", "source": "cuda"}  # not the host's RAM
    assert "total_memory" in doc["sources"]["cuda"] and dev["vendor"] == "NVIDIA"
    assert dev["peak"]["fp8"]["value"] == "1400 TFLOPS" and dev["peak"]["fp32"]["value"] == "51 TFLOPS"
    assert dev["memory_bandwidth"]["value"] == "4070 GB/s"


def test_a_configuration_out_of_memory_is_skipped_and_the_others_measured(tmp_path, monkeypatch):
    import costmodel.calibration.profile as prof

    real = prof.eager_times

    def eager(net, ids, gen, repeats):
        if ids.shape[0] == 2:
            raise MemoryError("Unable to allocate 3 GiB")
        return real(net, ids, gen, repeats)

    monkeypatch.setattr(prof, "eager_times", eager)
    r = profile("cpu", quick=True, out=str(tmp_path / "p"), prompts=(8,), gen=1, batches=(1, 2))
    assert r["rows"] == 3 and len(r["skipped"]) == 1
    assert "batch 2 prompt 8: out of memory (Unable to allocate 3 GiB)" in r["skipped"][0]
    assert {x.batch for x in read_measurements(r["measurements"])} == {1}
