"""Commands about generated tokens refuse a model that generates none (an encoder) and a curve of no generated
tokens, with exit code 2 and the reason: they printed NaN, 'unbounded' at one client, or an internal error (a
fuzzing review)."""
import math

import pytest

from costmodel.sweeps.loads import load_sweep

PLAN = ("--qps", "10", "--prompt", "512", "--gen", "128", "--slo-ttft", "1", "--candidates", "h100")


@pytest.mark.parametrize("args, reason", [
    (("estimate", "vit-b-16", "--hw", "h100", "--concurrency", "4"), "vit-b-16 is an encoder: it generates no tokens"),
    (("estimate", "bert-base", "--hw", "h100", "--request-rate", "4"), "bert-base is an encoder: it generates no"),
    (("plan", "bert-base", *PLAN), "bert-base is an encoder: plan sizes deployments"),
    (("whatif", "bert-base", *PLAN, "--vary", "qps=1,2"), "bert-base is an encoder: plan sizes deployments"),
    (("serve-curve", "bert-base", "--hw", "h100", "--concurrency", "1,16"), "no curve: h100 bf16: bert-base is"),
    (("curve", "vit-b-16", "--hw", "h100,a100"), "a100-sxm-80gb bf16: vit-b-16 is an encoder"),
    (("curve", "llama-3.1-8b", "--hw", "h100", "--prompt", "0", "--gen", "0"), "--gen 0: a latency-throughput curve"),
    (("specdec", "--target", "llama-3.1-8b", "--draft", "bert-base", "--hw", "h100", "--alpha", "0.7"),
     "--draft bert-base is an encoder"),
    (("specdec", "--target", "vit-b-16", "--draft", "llama-3.2-1b", "--hw", "h100", "--alpha", "0.7"),
     "--target vit-b-16 is an encoder"),
])
def test_no_generated_tokens_is_a_clear_error(run_cli, args, reason):
    code, out, err = run_cli(*args)
    assert code == 2 and reason in " ".join(err.split()) and "nan" not in out.lower(), (code, out, err)


def test_a_load_sweep_drops_an_encoder_with_its_reason():
    """A load sweep keeps the decoders' rows and names the encoder it cannot serve (its row said 'stable no' with
    no reason)."""
    rows = load_sweep(["bert-base", "llama-3.1-8b"], ["h100"], ["bf16"], concurrency=[16])
    assert [r["model"] for r in rows] == ["llama-3.1-8b"] and all(math.isfinite(r["tpot_s"]) for r in rows)
    assert [d["model"] for d in rows.dropped] == ["bert-base"]
    assert "bert-base is an encoder" in rows.dropped[0]["reason"]
