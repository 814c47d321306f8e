"""The CUDA profile's static-cache decode step computes what the eager forward pass computes (needs a CUDA GPU and
PyTorch; skipped elsewhere). Both call the same fused attention on the same keys: on the lent H200 the comparison
differed by 0.0 in bf16 (qwen2.5-0.5b, llama-3.1-8b; data/profiles/h200-2026-12-04-fused/decode-check.txt), and this
test passed there in fp32."""
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device", allow_module_level=True)


def test_static_decode_step_matches_the_eager_forward():
    from costmodel.calibration.profile_backend import Backend
    from costmodel.calibration.profile_model import Transformer
    from costmodel.calibration.profile_cuda import decode_static
    from costmodel.spec.model_catalog import load_model

    net = Transformer(load_model("qwen2.5-0.5b"), Backend("cuda"), "fp32")
    m, P = net.m, 16
    ids = torch.randint(0, 1000, (2, P), device="cuda")
    _, cache = net.forward(ids, [None] * m.layers)
    nxt = torch.randint(0, 1000, (2, 1), device="cuda")
    ref, _ = net.forward(nxt, cache)
    L = P + 5
    kc = [torch.zeros((2, m.kv_heads, L, m.head_dim), device="cuda") for _ in cache]
    vc = [torch.zeros_like(k) for k in kc]
    for (k, v), K, V in zip(cache, kc, vc):
        K[:, :, :P], V[:, :, :P] = k, v
    out = decode_static(net, nxt, kc, vc, P)
    assert ((out - ref).abs().max() / ref.abs().max()).item() < 1e-3
