"""spec/roof_order.py: a device whose roofs all reach another's of its family is never predicted slower."""
import collections
import dataclasses

import numpy as np

import costmodel
from costmodel.spec.engine_params import efficiency_for
from costmodel.spec.hardware import all_hardware, load_hardware
from costmodel.spec.roof_order import dominates


def test_the_a100_sxm_takes_the_pcie_cards_achieved_compute_roof():
    """llama.cpp's device fits: A100 SXM 0.339 of its peak, A100 PCIe 0.388 of the same peaks (fitted.yaml); the SXM's
    q4_0 TTFT was 13 % slower than the PCIe card's. Its compute efficiency is raised to the PCIe's, the memory
    efficiency it had (0.666 of 2,039 GB/s against 0.603 of 1,935 GB/s) kept."""
    sxm, pcie = load_hardware("a100-sxm-80gb"), load_hardware("a100-pcie-80gb")
    assert dominates(sxm, pcie) and not dominates(pcie, sxm)
    e, p = efficiency_for(sxm.id, sxm.family, "llama.cpp"), efficiency_for(pcie.id, pcie.family, "llama.cpp")
    assert e.compute_efficiency == p.compute_efficiency == 0.38794  # equal peaks: ratio 1
    assert e.memory_efficiency == 0.666 and "a100-pcie-80gb's achieved roof" in e.sources["compute_efficiency"]
    kw = dict(fmt="q4_0", prompt=2000, batch=8)
    a, b = costmodel.estimate("llama-3.1-8b", sxm.id, **kw), costmodel.estimate("llama-3.1-8b", pcie.id, **kw)
    assert a.metric("ttft_s") <= b.metric("ttft_s") and a.metric("tpot_s") <= b.metric("tpot_s")


def test_no_device_is_predicted_slower_than_one_whose_roofs_it_all_reaches():
    """Every catalogue device against every other of its family it dominates, under the engine both resolve to,
    in four formats at batch 1 and 16 (1,216 configurations): 73 had been slower by over 1 % (13 pairs: A100 SXM
    and PCIe, GH200 and H100/H200, Apple M1 Max and M2/M3 Pro, ...)."""
    hws = {h.id: h for h in all_hardware()}
    r = costmodel.sweep(models=["llama-3.1-8b"], hw=list(hws), fmt=["bf16", "fp8", "w4a16", "q4_0"], batch=[1, 16],
                        prompt=[2000], gen=[256])
    col = {k: np.asarray(r[k]) for k in ("hardware", "format", "batch", "engine", "ttft_s", "tpot_s", "valid", "fits")}
    at = collections.defaultdict(dict)
    for i in np.flatnonzero(col["valid"] & col["fits"]):
        at[(col["format"][i], col["batch"][i], col["engine"][i])][str(col["hardware"][i])] = i
    pairs = 0
    for rows in at.values():
        for a in rows:
            for b in rows:
                if a != b and hws[a].family == hws[b].family and dominates(hws[a], hws[b]):
                    pairs += 1
                    for m in ("ttft_s", "tpot_s"):
                        assert col[m][rows[a]] <= col[m][rows[b]] * (1 + 1e-9), (a, b, m)
    assert pairs > 100


def test_a_users_own_calibration_of_a_device_stands(user_catalog):
    """The floor applies between values of one fit: a user's calibration of the H100 (their measurements) is not
    raised to the achieved bandwidth of a shipped device whose roofs the H100's all reach."""
    (user_catalog / "calibration" / "mine.yaml").write_text(
        "engines:\n  vllm:\n    devices:\n      h100-sxm:\n        memory_efficiency: {value: 0.5, source: my bench}\n")
    e = efficiency_for("h100-sxm", "nvidia-datacenter", "vllm")
    assert e.memory_efficiency == 0.5 and e.sources["memory_efficiency"] == "my bench"
    h100 = load_hardware("h100-sxm")
    below = [o for o in all_hardware() if o.family == h100.family and o.id != h100.id and dominates(h100, o)]
    assert any(efficiency_for(o.id, o.family, "vllm").memory_efficiency * o.memory_bandwidth
               > 0.5 * h100.memory_bandwidth for o in below)  # the floor would have raised it


def test_a_raised_value_keeps_its_calibration_level_and_a_spec_file_is_ordered_too(user_catalog):
    """A second reader found: the GH200, its efficiency raised to the H100's achieved roof, was labelled
    'uncalibrated' (the level read the rewritten source) with that band; a device given as a spec file, every roof
    1 % above the H100's, was 1.5-2.4 % slower (no catalogue id to compare); and a user's refit of vLLM's family
    level (not of the H200 itself) left the H200 slower than the H100 (the sources differed)."""
    gh = costmodel.estimate("llama-3.1-8b", "gh200")
    assert gh.calibration_level == "family" and "raised to" in gh.efficiency.sources["compute_efficiency"]
    h = load_hardware("h100-sxm")
    e = costmodel.estimate("llama-3.1-8b", "h100", "bf16", batch=16)
    plus = dataclasses.replace(h, id="h100plus", memory_bandwidth=h.memory_bandwidth * 1.01,
                               peaks={k: v * 1.01 for k, v in h.peaks.items()})
    p = costmodel.estimate("llama-3.1-8b", plus, "bf16", batch=16)
    assert p.metric("ttft_s") <= e.metric("ttft_s") and p.metric("tpot_s") <= e.metric("tpot_s")
    (user_catalog / "calibration" / "refit.yaml").write_text(
        "engines:\n  vllm:\n    families:\n      nvidia-datacenter:\n"
        "        compute_efficiency: {value: 0.3, source: my refit}\n        memory_efficiency: {value: 0.5, source: my refit}\n")
    kw = dict(fmt="fp8", batch=16, engine="vllm")
    h200, h100 = costmodel.estimate("llama-3.1-8b", "h200", **kw), costmodel.estimate("llama-3.1-8b", "h100", **kw)
    assert h200.metric("ttft_s") <= h100.metric("ttft_s") and h200.metric("tpot_s") <= h100.metric("tpot_s")
