"""A hierarchical vision backbone (EfficientVMamba: Pei, Huang, Xu, arXiv 2403.09977; code
github.com/TerryPei/EfficientVMamba @ 0bc5ee2, classification/models/vmamba_efficient.py).

A p x p stride-p stem conv + LayerNorm, four stages at 1/p, 1/2p, 1/4p, 1/8p of the image side joined
by patch merging (2x2 neighbours -> LayerNorm(4C) -> linear 4C -> 2C) and a LayerNorm + average pool +
linear classifier. Stages of kind
  `evss` (the EVSS block, width C, E = ssm_ratio·C, N = d_state, R = ceil(C/16), K = 4 directions):
      LN; SS2D: in_proj C -> 2E, depthwise d x d conv + SiLU on E channels, per direction x_proj
      E -> R + 2N and dt_proj R -> E, a selective scan over one stride-s sub-grid per direction
      (atrous: every pixel scanned once, L' = HW/s² tokens per direction), LN(E), SiLU gate,
      out_proj E -> C; a conv branch (depthwise 3x3 + BN + GELU + 1x1 C -> C); one squeeze-excite
      (LN, mean, C -> C/8 -> C, sigmoid) applied to both branches, their sum added to the input;
  `ir` (inverted residual): 1x1 C -> eC + BN + ReLU, depthwise 3x3 + BN + ReLU, squeeze-excite
      (eC -> eC/8 -> eC, ReLU, sigmoid), 1x1 eC -> C + BN, residual.
`params()` counts every weight (EfficientVMamba-T: 6,493,660, the training log's 6.494 M); `macs()`
reproduces the repository's fvcore count (multiply-adds; LayerNorm 5 and BatchNorm 2 per element,
the scan 9·L·D·N + L·D: 806,436,096 for T against its 0.8 G). `operators()` gives the engine's terms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

# the engine's conventions for element-wise work (engine/operators.py, after LLM-Viewer)
NORM_OPS, ACT_OPS, BN_OPS = 7.0, 5.0, 2.0
SCAN_OPS = 8.0  # FLOPs per (channel, state) element per scanned token: Mamba-1's selective scan (spec/mixers.py)


@dataclass(frozen=True)
class Backbone:
    dims: tuple  # width of each stage
    depths: tuple  # blocks of each stage
    blocks: tuple  # block kind of each stage: "evss" or "ir"
    patch_size: int = 4
    channels: int = 3
    image_size: int = 224
    num_classes: int = 1000
    d_state: int = 16
    ssm_ratio: float = 2.0
    d_conv: int = 3
    directions: int = 4
    scan_step: int = 2
    ir_expand: int = 4
    se_ratio: float = 0.125

    def sides(self, image_size: int | None = None) -> list[int]:
        """Feature-map side of each stage (the image side over p, 2p, 4p, ...)."""
        side = (image_size or self.image_size) // self.patch_size
        return [side // 2**i for i in range(len(self.dims))]

    # ----- parameters -------------------------------------------------------------------------
    def _evss(self, C: int) -> dict:
        E, N, K = int(self.ssm_ratio * C), self.d_state, self.directions
        R, r, d = math.ceil(C / 16), int(C * self.se_ratio), self.d_conv
        return {"in_proj": 2 * E * C, "conv": E * d * d + E, "x_proj": K * (R + 2 * N) * E, "dt_proj": K * E * R,
                "small": K * E + K * E * N + K * E, "out_proj": C * E, "cb_dw": 9 * C + C, "cb_pw": C * C + C,
                "se": C * r + r + r * C + C, "norms": 2 * C + 2 * E + 2 * C + 2 * C}

    def _ir(self, C: int) -> dict:
        M = self.ir_expand * C
        s = int(M * self.se_ratio)
        return {"pw": C * M, "dw": 9 * M, "se": M * s + s + s * M + M, "pw2": M * C, "norms": 2 * M + 2 * M + 2 * C}

    def stem_params(self) -> int:
        """Stem conv (with bias) and its LayerNorm."""
        c0 = self.dims[0]
        return self.channels * self.patch_size**2 * c0 + c0 + 2 * c0

    def params(self) -> int:
        total = self.stem_params()
        for i, (C, depth, kind) in enumerate(zip(self.dims, self.depths, self.blocks)):
            block = self._evss(C) if kind == "evss" else self._ir(C)
            total += depth * sum(block.values())
            if i < len(self.dims) - 1:
                total += 8 * C + 8 * C * C  # patch merging: LayerNorm(4C), linear 4C -> 2C
        c = self.dims[-1]
        return total + 2 * c + c * self.num_classes + self.num_classes

    # ----- the repository's FLOPs count (fvcore) ------------------------------------------------
    def macs(self, image_size: int | None = None) -> int:
        """Multiply-adds as the repository counts them (fvcore; analyze/get_flops.py)."""
        sides = self.sides(image_size)
        c0 = self.dims[0]
        L0 = sides[0] ** 2
        total = self.channels * self.patch_size**2 * c0 * L0 + 5 * c0 * L0
        N, K = self.d_state, self.directions
        for i, (C, depth, kind) in enumerate(zip(self.dims, self.depths, self.blocks)):
            L = sides[i] ** 2
            if kind == "evss":
                E, R, r = int(self.ssm_ratio * C), math.ceil(C / 16), int(C * self.se_ratio)
                Lp = math.ceil(sides[i] / self.scan_step) ** 2
                block = (5 * C * L + 2 * E * C * L + self.d_conv**2 * E * L + K * Lp * E * (R + 2 * N)
                         + K * Lp * E * R + 9 * K * E * Lp * N + K * E * Lp + 5 * E * L + C * E * L
                         + 9 * C * L + 2 * C * L + C * C * L + 2 * (5 * C * L + 2 * C * r))
            else:
                M = self.ir_expand * C
                s = int(M * self.se_ratio)
                block = C * M * L + 2 * M * L + 9 * M * L + 2 * M * L + M * L + 2 * M * s + M * C * L + 2 * C * L
            total += depth * block
            if i < len(self.dims) - 1:
                total += 5 * 4 * C * (L // 4) + 8 * C * C * (L // 4)
        c, L = self.dims[-1], sides[-1] ** 2
        return total + 5 * c * L + c * L + self.num_classes * c

    # ----- the engine's operators ---------------------------------------------------------------
    def operators(self, image_size: int | None = None) -> dict:
        """Per image at `image_size`: {operator: (FLOPs, weight elements, activation elements moved,
        kernels, rows)}, in the engine's conventions: 2 FLOPs per multiply-add, element-wise work at
        7 (LayerNorm), 2 (BatchNorm), 5 (activation) and 2·k² (k x k depthwise conv) FLOPs per element,
        the scan 8·E·N per scanned token (FP32 vector work, as Mamba-1's). Activations are each operator's
        inputs and outputs; kernels are the steps an eager forward launches (an EVSS block 25, an
        inverted-residual block 13; T 189 in all). `rows` is the operator's FLOP-weighted harmonic mean
        of the tokens its matrix products see (exact for a compute time of F/(peak·M/(M + M_half))
        summed over stages).
        The stem conv (the `embedding` operator) and its LayerNorm are the model's generic patch
        embedding and final norm, not listed here."""
        sides = self.sides(image_size)
        N, K = self.d_state, self.directions
        acc: dict = {}

        def add(op, flops, weights, acts, kernels, tokens):
            f, w, a, k, inv = acc.get(op, (0.0, 0.0, 0.0, 0.0, 0.0))
            acc[op] = (f + flops, w + weights, a + acts, k + kernels, inv + (flops / tokens if tokens else 0.0))

        def mm(op, tokens, k_in, n_out, count=1, groups=1, uses=1):
            # `uses`: times one set of weights runs per block (EVSS's squeeze-excite, shared by its branches)
            add(op, 2.0 * tokens * k_in * n_out * groups * count * uses, k_in * n_out * groups * count,
                tokens * (k_in + n_out) * groups * count * uses, count * uses, tokens)

        def vec(op, elems, ops_per, count=1, kernels=1):
            # `kernels` per block: element-wise steps an eager forward runs as separate kernels
            add(op, elems * ops_per * count, 0.0, 2.0 * elems * count, kernels * count, 0)

        for i, (C, depth, kind) in enumerate(zip(self.dims, self.depths, self.blocks)):
            L = sides[i] ** 2
            if kind == "evss":
                E, R, r = int(self.ssm_ratio * C), math.ceil(C / 16), int(C * self.se_ratio)
                Lp = math.ceil(sides[i] / self.scan_step) ** 2
                vec("norms", L * (C + E + 2 * C), NORM_OPS, depth, kernels=4)  # block LN, out_norm, the SE's LN twice
                vec("norms", L * C, BN_OPS, depth)  # conv branch BN
                mm("ssm_in_proj", L, C, 2 * E, depth)
                mm("ssm_in_proj", Lp, E, R + 2 * N, depth, groups=K)  # x_proj per direction
                mm("ssm_in_proj", Lp, R, E, depth, groups=K)  # dt_proj per direction
                vec("dwconv", L * E, 2.0 * self.d_conv**2, depth)
                vec("dwconv", L * C, 2.0 * 9, depth)
                # the scan kernel and the EfficientScan / EfficientMerge layout copies around it
                add("ssm_scan", SCAN_OPS * K * Lp * E * N * depth, 0.0, K * Lp * (3 * E + 2 * N) * depth, 3 * depth, 0)
                mm("ssm_out_proj", L, E, C, depth)
                mm("mlp_up", L, C, C, depth)  # conv branch 1x1
                mm("mlp_up", 1, C, r, depth, uses=2)  # squeeze-excite reduce, on both branches
                mm("mlp_down", 1, r, C, depth, uses=2)  # squeeze-excite expand
                # SiLU x, SiLU z, the gate; GELU; the SE gates on both branches; the residual sum
                vec("mlp_act", L * (3 * E + C + 4 * C), ACT_OPS, depth, kernels=6)
            else:
                M = self.ir_expand * C
                s = int(M * self.se_ratio)
                mm("mlp_up", L, C, M, depth)
                vec("norms", L * (2 * M + C), BN_OPS, depth, kernels=3)
                vec("dwconv", L * M, 2.0 * 9, depth)
                mm("mlp_up", 1, M, s, depth)
                mm("mlp_down", 1, s, M, depth)
                vec("mlp_act", L * (3 * M), ACT_OPS, depth, kernels=5)  # two ReLUs, the SE pool and gate, the residual
                mm("mlp_down", L, M, C, depth)
            if i < len(self.dims) - 1:  # patch merging to the next stage
                vec("norms", L * C, NORM_OPS, kernels=2)  # the 2x2 gather copy and LayerNorm(4C)
                mm("mlp_down", L // 4, 4 * C, 2 * C)
        c, L = self.dims[-1], sides[-1] ** 2
        vec("norms", L * c, NORM_OPS)
        mm("lm_head", 1, c, self.num_classes)
        out = {}
        for op, (f, w, a, k, inv) in acc.items():
            out[op] = (f, w, a, k, f / inv if inv else 0.0)
        return out

    def working_sets(self, image_size: int | None = None) -> list[tuple[int, int]]:
        """(16-bit elements, FP32 elements) one image holds at once in each part of the forward pass:
        the stem (patches and their embedding), an EVSS block (its input, in_proj's x and z, the conv
        output and the conv branch's; the scan's u, dt and output in FP32 with its B and C: 3E + 2N per
        pixel), an inverted-residual block (input, the expanded map and the depthwise output)."""
        sides = self.sides(image_size)
        c0 = self.dims[0]
        out = [(sides[0] ** 2 * (self.channels * self.patch_size**2 + c0), 0)]
        for i, (C, kind) in enumerate(zip(self.dims, self.blocks)):
            L = sides[i] ** 2
            if kind == "evss":
                E = int(self.ssm_ratio * C)
                out.append((L * (C + 2 * E + E + C), L * (3 * E + 2 * self.d_state)))
            else:
                M = self.ir_expand * C
                out.append((L * (C + 2 * M), 0))
        return out

    def extra_params(self) -> int:
        """Parameters beyond the stem (the model's generic patch embedding and final norm)."""
        return self.params() - self.stem_params()
