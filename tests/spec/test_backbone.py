"""EfficientVMamba (spec/backbone.py): parameters and multiply-adds against the repository's training
logs and the paper, and the engine's terms against hand counts."""
import math

import numpy as np
import pytest

from costmodel.engine.operators import MATMUL, UNIT_OF
from costmodel.spec.backbone import Backbone
from costmodel.spec.model_catalog import load_model
from costmodel.spec.parameters import param_count

# TerryPei/EfficientVMamba @ 0bc5ee2 classification/logs/log_efficient_vmamba_{tiny,small,base}.txt print
# the trained models' parameters (6.494 M, 11.274 M, 33.717 M); the paper and README round the multiply-adds
# to 0.8G, 1.3G and 4.0G (the small log: 1.343 G)
VARIANTS = {
    "efficientvmamba-t": ((48, 96, 192, 384), (2, 2, 4, 2), 6_493_660, 0.8e9),
    "efficientvmamba-s": ((64, 128, 256, 512), (2, 2, 4, 2), 11_273_688, 1.343e9),
    "efficientvmamba-b": ((96, 192, 384, 768), (2, 2, 9, 2), 33_717_136, 4.0e9),
}


@pytest.mark.parametrize("model_id", sorted(VARIANTS))
def test_parameters_and_multiply_adds_match_the_release(model_id):
    dims, depths, params, macs = VARIANTS[model_id]
    m = load_model(model_id)
    assert m.backbone.dims == dims and m.backbone.depths == depths
    assert m.backbone.params() == params
    assert param_count(m) == params  # the generic stem + norm and the backbone's stages add up
    assert m.published_params == pytest.approx(params, rel=1e-3)
    assert m.backbone.macs() == pytest.approx(macs, abs=0.05e9 if macs in (0.8e9, 4.0e9) else 0.0005e9)
    # the repository's fvcore count to the multiply-add (its einsum rounding aside: 806,431,376 for T)
    assert m.backbone.macs() == {"efficientvmamba-t": 806_436_096, "efficientvmamba-s": 1_342_574_592,
                                 "efficientvmamba-b": 3_996_672_000}[model_id]


def _tiny() -> Backbone:
    return load_model("efficientvmamba-t").backbone


def test_evss_block_by_hand():
    """Stage 1 of T: C = 48, E = 96, R = ceil(48/16) = 3, N = 16, K = 4, 56 x 56 pixels, 28 x 28 per
    direction; the block's weights and multiply-adds written out term by term."""
    C, E, R, N, K, r = 48, 96, 3, 16, 4, 6
    L, Lp = 56 * 56, 28 * 28
    weights = (2 * C + 2 * E * C + 9 * E + E + K * (R + 2 * N) * E + K * E * R + K * E + K * E * N + K * E + 2 * E
               + C * E + 9 * C + C + 2 * C + C * C + C + 2 * C + C * r + r + r * C + C)
    assert weights == 40_230
    assert sum(_tiny()._evss(C).values()) == weights
    scan = 9 * K * E * Lp * N + K * E * Lp
    assert scan == 43_653_120
    block = (5 * C * L + 2 * E * C * L + 9 * E * L + K * Lp * E * (R + 2 * N) + K * Lp * E * R + scan + 5 * E * L
             + C * E * L + 9 * C * L + 2 * C * L + C * C * L + 2 * (5 * C * L + 2 * C * r))
    assert block == 113_800_320
    one_block = Backbone((C,), (1,), ("evss",), num_classes=0)
    stem = 48 * C * L + 5 * C * L
    classifier = 5 * C * L + C * L
    assert one_block.macs() == stem + block + classifier


def test_inverted_residual_block_by_hand():
    """Stage 3 of T: C = 192, expansion 4 (M = 768), squeeze-excite to 96, 14 x 14 pixels."""
    C, M, s, L = 192, 768, 96, 14 * 14
    assert sum(_tiny()._ir(C).values()) == 12 * C * C + 58.5 * C == 453_600
    block = C * M * L + 2 * M * L + 9 * M * L + 2 * M * L + M * L + 2 * M * s + M * C * L + 2 * C * L
    assert block == 60_132_864


def test_engine_terms_by_hand():
    """The engine's FLOPs for T: 2 per multiply-add of every linear, 1x1 conv and projection, the
    depthwise convs at 2·9 per element, the scan at 8·E·N per scanned token (Mamba-1's)."""
    b = _tiny()
    ops = b.operators()
    matmul = sum(v[0] for k, v in ops.items() if UNIT_OF[k] == MATMUL)
    dims, depths, sides = (48, 96, 192, 384), (2, 2, 4, 2), (56, 28, 14, 7)
    macs = 0
    dw = scan = 0
    for i, (C, d, side) in enumerate(zip(dims, depths, sides)):
        L = side * side
        if i < 2:  # EVSS
            E, R, r, Lp = 2 * C, math.ceil(C / 16), C // 8, (side // 2) ** 2
            macs += d * (L * C * 2 * E + 4 * Lp * E * (R + 32) + 4 * Lp * R * E + L * E * C + L * C * C + 4 * C * r)
            dw += d * 9 * L * (E + C)
            scan += d * 8 * 4 * Lp * E * 16
        else:  # inverted residual
            M = 4 * C
            macs += d * (2 * L * C * M + 2 * M * (M // 8))
            dw += d * 9 * L * M
        if i < 3:
            macs += (L // 4) * 4 * C * 2 * C
    macs += 384 * 1000
    assert matmul == pytest.approx(2 * macs, rel=1e-12)
    assert ops["dwconv"][0] == pytest.approx(2 * dw, rel=1e-12)
    assert ops["ssm_scan"][0] == pytest.approx(scan, rel=1e-12) and scan == 115_605_504
    # the matrix products' weights (the squeeze-excite shared by both EVSS branches once) are all the
    # parameters but the stem's, the norms', the biases', the depthwise kernels' and the scan's vectors
    assert sum(v[1] for v in ops.values()) == b.params() - b.stem_params() - _non_matmul_params(b)


def _non_matmul_params(b: Backbone) -> int:
    """Norms, biases, depthwise kernels and the scan's small vectors: stored, not multiplied."""
    total = 0
    for C, d, kind in zip(b.dims, b.depths, b.blocks):
        if kind == "evss":
            E, N, K, r = 2 * C, 16, 4, C // 8
            total += d * (2 * C + 10 * E + K * E + K * E * N + K * E + 2 * E + 10 * C + 2 * C + C + 2 * C + r + C)
        else:
            M = 4 * C
            total += d * (2 * M + 9 * M + 2 * M + M // 8 + M + 2 * C)
    total += sum(8 * C for C in b.dims[:-1]) + 2 * b.dims[-1] + b.num_classes
    return total


def test_estimate_scales_with_images_and_refuses_model_parallelism():
    import costmodel
    from costmodel.errors import CostModelError

    t = {b: costmodel.estimate("efficientvmamba-b", "h100-sxm", "bf16", batch=b) for b in (256, 512, 1024)}
    assert t[256].workload.prompt == 3136  # (224/4)^2 stem tokens, no class token
    # at large batches the pass is at its roofs: the time grows by the same step per image (the kernel
    # launches are a fixed cost of the pass)
    step = [t[b].metric("ttft_s") for b in (256, 512, 1024)]
    assert (step[2] - step[1]) / 512 == pytest.approx((step[1] - step[0]) / 256, rel=0.05)
    with pytest.raises(CostModelError, match="vision backbone"):
        costmodel.estimate("efficientvmamba-t", "h100-sxm", "bf16", tp=2)


def test_a_backbone_beside_language_models_in_one_sweep():
    """The backbone's table joins only its own configurations (a mixed sweep gives each its own)."""
    import costmodel

    from costmodel.sweeps.sweep import sweep

    alone = costmodel.estimate("efficientvmamba-s", "a100-sxm-80gb", "bf16", batch=8, prompt=3136, gen=64)
    llm = costmodel.estimate("llama-3.1-8b", "a100-sxm-80gb", "bf16", batch=8, prompt=3136, gen=64)
    got = sweep(models=["efficientvmamba-s", "llama-3.1-8b"], hw=["a100-sxm-80gb"], fmt=["bf16"], batch=[8],
                prompt=[3136], gen=[64]).to_dict()
    ttft = dict(zip(got["model"], np.asarray(got["ttft_s"], dtype=float)))
    assert ttft["efficientvmamba-s"] == pytest.approx(alone.metric("ttft_s"), rel=1e-9)
    assert ttft["llama-3.1-8b"] == pytest.approx(llm.metric("ttft_s"), rel=1e-9)
    assert ttft["efficientvmamba-s"] < ttft["llama-3.1-8b"] / 10


def test_one_forward_pass_reads_the_weights_once_and_memory_bounds_the_batch():
    """A batch of images is one pass (no prefill chunks re-reading the weights), quantized weights pay
    their dequantization, and the batch is bounded by the images' working set, not by an engine limit."""
    import costmodel

    def weight_bytes(batch, fmt="bf16"):
        rows = costmodel.estimate("efficientvmamba-b", "h100-sxm", fmt, batch=batch).explain()
        return sum(r["weight_bytes"] for r in rows if r["phase"] == "prefill")

    # 256 images of 3,136 stem tokens are 100 prefill chunks of an LLM engine, and still one pass
    assert weight_bytes(256) == weight_bytes(1)
    b = load_model("efficientvmamba-b").backbone
    matmul_weights = sum(v[1] for v in b.operators().values()) + 48 * 96  # + the stem conv
    assert weight_bytes(1) == pytest.approx(2 * matmul_weights, rel=1e-9)
    # nvfp4 on an H100 (no FP4 units) dequantizes its weights: not faster than bf16 at one image
    assert (costmodel.estimate("efficientvmamba-b", "h100-sxm", "nvfp4").metric("ttft_s")
            >= 0.99 * costmodel.estimate("efficientvmamba-b", "h100-sxm", "bf16").metric("ttft_s"))
    big = costmodel.estimate("efficientvmamba-s", "rtx-4090", "q4_0", engine="llama.cpp", batch="max")
    assert 1 < big.batch < 10_000  # llama.cpp admits any batch: the 24 GB of the card decide
    # the widest point of S at 224: stage 1, 56 x 56 pixels of 64 channels, E = 128: 16-bit input, x and z,
    # conv and branch outputs (64 + 256 + 128 + 64) and FP32 u, dt, y, B, C (3 x 128 + 2 x 16)
    from costmodel.engine.backbone_ops import working_set_bytes
    from costmodel.engine.columns import model_row

    idx = model_row(load_model("efficientvmamba-s"))["bb"]
    assert float(working_set_bytes(np.array([idx]), 3136, 2.0)[0]) == 3136 * (512 * 2 + 416 * 4)


def test_kernel_count_by_hand():
    """Launches of an eager forward: an EVSS block 25 (4 LayerNorms, BN, in_proj, x_proj, dt_proj, two
    depthwise convs, the scan and its two layout copies, out_proj, the branch 1x1, the squeeze-excite's
    two linears on each branch, 6 element-wise steps), an inverted-residual block 13, patch merging 3,
    the classifier's norm and linear 2 (the stem's conv and norm are the generic embedding and norm)."""
    ops = load_model("efficientvmamba-t").backbone.operators()
    assert sum(v[3] for v in ops.values()) == 4 * 25 + 6 * 13 + 3 * 3 + 2 == 189
