"""The vision tower of a vision-language model: a ViT over image patches, a merge of neighbouring
patches into visual tokens and a projector into the language model's width.

  patches per image        (W/p)·(H/p)                 (p = patch size)
  visual tokens per image  ceil(W/(p·m))·ceil(H/(p·m))  (m = spatial merge: Qwen2.5-VL's
                            spatial_merge_size, Pixtral's spatial_merge_size, Llama 4's pixel shuffle
                            ratio 0.5 = 2)
  projector                a chain of linears [m²·d_v, ..., d_llm] on the visual tokens
The encoder itself is costed as a ViT encoder (bidirectional attention over the image's patches)
by the same operators as every model (spec/model.py `vision_encoder`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class VisionTower:
    layers: int
    hidden_size: int
    heads: int
    intermediate_size: int
    patch_size: int
    image_size: int  # the native (or tile) image side in pixels
    merge: int = 1  # patches merged per side into one visual token
    projector: tuple = ()  # widths of the projector's chain of linears, first = merge² · hidden
    gated_mlp: bool = False
    channels: int = 3
    norm: str = "layernorm"

    def patches(self, width: int, height: int) -> int:
        """Patches of one image of width x height pixels (sides rounded up to whole patches)."""
        return math.ceil(width / self.patch_size) * math.ceil(height / self.patch_size)

    def tokens(self, width: int, height: int) -> int:
        """Visual tokens one image becomes in the language model."""
        side = self.patch_size * self.merge
        return math.ceil(width / side) * math.ceil(height / side)

    def projector_params(self) -> int:
        w = self.projector
        return sum(a * b + b for a, b in zip(w, w[1:]))

    def projector_flops_per_token(self) -> float:
        w = self.projector
        return 2.0 * sum(a * b for a, b in zip(w, w[1:]))
