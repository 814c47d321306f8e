"""The vision tower of a vision-language model: a ViT over image patches, a merge of neighbouring
patches into visual tokens and a projector into the language model's width.

  patches per image        (W/p)·(H/p)                 (p = patch size)
  visual tokens per image  ceil(W/(p·m))·ceil(H/(p·m))  (m = spatial merge: Qwen2.5-VL's
                            spatial_merge_size, Pixtral's spatial_merge_size, Llama 4's pixel shuffle
                            ratio 0.5 = 2)
  projector                a chain of linears [m²·d_v·F, ..., d_llm] on the visual tokens (F feature
                            layers concatenated: Llama 3.2 Vision joins 5 intermediate layers' outputs to
                            the last, F = 6)
  tiled towers (Llama 3.2 Vision: 560-pixel tiles, at most 4): an image covers
                            min(T_max, ceil(W/s)·ceil(H/s)) tiles of side s, each (s/p)² patches + a
                            class token, all of them visual tokens (Llama 4: 336-pixel tiles, at most 16,
                            plus a global tile of the whole image when there are several)
The encoder itself is costed as a ViT encoder (bidirectional attention over the image's patches)
by the same operators as every model (spec/model.py `vision_encoder`). Windowed towers (Qwen2.5-VL:
window attention over 112-pixel windows, 8 x 8 patches, except a few full-attention layers) attend
within their window: n·min(W, n) (query, key) pairs per image on those layers instead of n².
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
    feature_layers: int = 1  # encoder layers whose outputs are concatenated into the projector
    max_tiles: int = 0  # > 0: the image is cut into tiles of image_size pixels, at most this many
    cls_token: bool = False  # a class token per tile (or image) joins the visual tokens
    global_tile: bool = False  # a resized whole-image tile joins an image cut into more than one tile (Llama 4)
    window: int = 0  # > 0: patches per attention window on the tower's windowed layers (Qwen2.5-VL: (112/14)² = 64)
    full_layers: tuple = ()  # with a window: the layers that attend over the whole image (Qwen2.5-VL: 7, 15, 23, 31)

    def tiles(self, width: int, height: int) -> int:
        """Tiles one image covers (1 for a tower without tiling)."""
        if not self.max_tiles:
            return 1
        s = self.image_size
        n = min(self.max_tiles, math.ceil(width / s) * math.ceil(height / s))
        return n + (1 if self.global_tile and n > 1 else 0)

    def patches(self, width: int, height: int) -> int:
        """Patches of one image of width x height pixels (sides rounded up to whole patches; a tiled
        tower's tiles each hold (image_size/patch)² patches), class tokens included."""
        cls = 1 if self.cls_token else 0
        if self.max_tiles:
            return self.tiles(width, height) * ((self.image_size // self.patch_size) ** 2 + cls)
        return math.ceil(width / self.patch_size) * math.ceil(height / self.patch_size) + cls

    def tokens(self, width: int, height: int) -> int:
        """Visual tokens one image becomes in the language model."""
        cls = 1 if self.cls_token else 0
        if self.max_tiles:
            side = self.image_size // (self.patch_size * self.merge)
            return self.tiles(width, height) * (side * side + cls)
        side = self.patch_size * self.merge
        return math.ceil(width / side) * math.ceil(height / side) + cls

    def projector_params(self) -> int:
        w = self.projector
        return sum(a * b + b for a, b in zip(w, w[1:]))

    def projector_flops_per_token(self) -> float:
        w = self.projector
        return 2.0 * sum(a * b for a, b in zip(w, w[1:]))
