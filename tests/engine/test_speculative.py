"""Speculative decoding inside a deployment (--mtp): E(α, N), its inverse, the decode step's cost,
and TensorRT-LLM's published MTP speed-up on DeepSeek-R1."""
import json

import numpy as np
import pytest

from costmodel import estimate
from costmodel.engine.operators import OP_NAMES
from costmodel.engine.speculative import alpha_for_length, draft_pass, tokens_per_step


def test_tokens_per_step_and_its_inverse():
    # E(α, N) = (1 - α^(N+1)) / (1 - α): 1 + 0.875 for one draft at DeepSeek-V3's 85-90% acceptance
    assert float(tokens_per_step(0.875, 1)) == pytest.approx(1.875)
    assert float(tokens_per_step(0.5, 3)) == pytest.approx(1 + 0.5 + 0.25 + 0.125)
    assert float(tokens_per_step(1.0, 3)) == 4.0 and float(tokens_per_step(0.0, 3)) == 1.0
    for length, n in ((2.82, 3), (1.9, 1), (1.0, 2), (4.0, 3)):
        assert float(tokens_per_step(alpha_for_length(length, n), n)) == pytest.approx(length, abs=1e-7)


def test_draft_pass_is_a_mean_layer_plus_head_and_projection():
    names = OP_NAMES
    t = np.zeros(len(names))
    t[names.index("attention")] = 0.6  # 60 layers' worth
    t[names.index("moe_up")] = 1.2
    t[names.index("lm_head")] = 0.05
    t[names.index("embedding")] = 0.01
    m = {"layers": np.asarray(60.0), "h": np.asarray(1000.0)}
    f = {"w_bits": np.asarray(8.0)}
    hw = {"bandwidth": np.asarray(1e12), "memory_efficiency": np.asarray(0.5)}
    # (0.6 + 1.2) / 60 + 0.05 + 0.01 + 2 * 1000^2 bytes / 2 ranks / 0.5e12 B/s
    assert float(draft_pass(t, names, m, f, hw, 2)) == pytest.approx(0.03 + 0.06 + 2e-6)


def test_accepting_every_draft_halves_the_time_per_token_of_rejecting_them():
    # the same verified step and draft pass yield E(1, 1) = 2 tokens or E(0, 1) = 1
    kw = dict(fmt="fp8", tp=8, batch=4, prompt=1000, gen=500)
    all_in = estimate("deepseek-r1", "h200", mtp=1, accept_rate=1.0, **kw).metric("tpot_s")
    none = estimate("deepseek-r1", "h200", mtp=1, accept_rate=0.0, **kw).metric("tpot_s")
    plain = estimate("deepseek-r1", "h200", **kw).metric("tpot_s")
    assert none == pytest.approx(2 * all_in, rel=1e-12)
    assert none > plain  # a draft nobody accepts only costs
    assert all_in < plain  # at a small batch the verified step costs about one step: drafts pay


def test_trtllm_mtp_speedup_on_deepseek_r1():
    # TensorRT-LLM tech blog 1 (DeepSeek-R1 on 8 B200, NVFP4, ISL 1k / OSL 2k, batch 1): 111 tokens/s
    # per user without MTP, 253 with three MTP drafts at acceptance length 2.82: 2.28x. Within 20%.
    kw = dict(fmt="nvfp4", tp=8, batch=1, prompt=1024, gen=2048, engine="trt-llm")
    base = estimate("deepseek-r1", "b200", **kw).metric("tpot_s")
    mtp = estimate("deepseek-r1", "b200", mtp=3, accept_length=2.82, **kw).metric("tpot_s")
    assert base / mtp == pytest.approx(253 / 111, rel=0.15)


@pytest.mark.parametrize("args,needle", [
    (["--accept-rate", "0.8"], "--accept-rate / --accept-length apply to draft tokens: give --mtp N too"),
    (["--mtp", "2", "--accept-length", "4"], "--accept-length 4.0: expected the mean tokens per decode step"),
    (["--mtp", "2", "--accept-rate", "1.5"], "--accept-rate 1.5: expected a fraction in [0, 1]"),
    (["--mtp", "2", "--accept-rate", "0.8", "--accept-length", "2"], "give one"),
])
def test_bad_speculation_input(run_cli, args, needle):
    code, _, err = run_cli("estimate", "deepseek-r1", "--hw", "h200", "--tp", "8", "--fmt", "fp8", *args)
    assert code == 2 and needle in err and "Traceback" not in err


def test_mtp_under_load_reports_it(run_cli):
    args = ["estimate", "deepseek-r1", "--hw", "h200", "--dp", "8", "--ep", "8", "--fmt", "fp8", "--concurrency", "64"]
    code, out, err = run_cli(*args, "--mtp", "2", "--json")
    d = json.loads(out)
    assert code == 0 and d["mtp"] == 2 and d["accept_rate"] == 0.875 and d["stable"]
    plain = json.loads(run_cli(*args, "--json")[1])
    assert d["tpot_s"] < plain["tpot_s"]  # drafts are accepted at 0.875: fewer steps per token
    # the layout's decode step is one verified step of E(0.875, 2) = 2.64 tokens at the steady batch
    n = int(round(d["running_per_replica"]))
    one = estimate("deepseek-r1", "h200", "fp8", dp=8, ep=8, batch=n, prompt=0, gen=2, context=512 + 64, mtp=2)
    assert d["layout"]["decode_step_s"] == pytest.approx(one.metric("tpot_s") * float(tokens_per_step(0.875, 2)))
