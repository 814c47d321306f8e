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
