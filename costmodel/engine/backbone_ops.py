"""The operators of a hierarchical vision backbone (spec/backbone.py), added to the generic lowering.

Each backbone's terms per image at its native image size (FLOPs, weight elements, activation elements,
kernels, rows) are tabulated once; a configuration of B images of n stem tokens each (n0 at the native
size) scales them by images = B·n/n0 (the feature maps grow with the image's area), its rows by n/n0,
and the classifier by B:
  FLOPs = images·F, weights = W·w_bits/8 per pass, activations = images·A·a_bits/8 (the scan's in FP32),
  rows = B·(n/n0)·M (M: the FLOP-weighted harmonic mean of the tokens each matrix product sees).
The selective scan is FP32 vector work, timed on the vector peak as Mamba-1's (engine/operators.py).
"""
from __future__ import annotations

import numpy as np

from costmodel.engine.elementwise import maximum, where

FIELDS = 5  # FLOPs, weight elements, activation elements, kernels, rows (per image)
SCAN_BYTES = 4.0  # the scan's inputs and outputs are cast to FP32 (selective_scan custom_fwd)

STAGES = 8  # working-set parts tabulated per backbone (stem + stages), padded with zeros
_INDEX: dict = {}  # backbone -> its row (from 1) in the stacked tables below; row 0 is "no backbone"
_STACK: dict = {"tables": None, "tokens0": np.ones(1), "work": np.zeros((1, STAGES, 2))}


def register(backbone, names: tuple) -> int:
    """Index (from 1) of a backbone's rows in the stacked tables (operators `names`: engine/operators.py
    OP_NAMES; its stem tokens at the native image size; its working sets), tabulated the first time."""
    if backbone in _INDEX:
        return _INDEX[backbone]
    table = np.zeros((1, len(names), FIELDS))
    for name, terms in backbone.operators().items():
        table[0, names.index(name)] = terms
    work = np.zeros((1, STAGES, 2))
    sets = backbone.working_sets()[:STAGES]
    work[0, :len(sets)] = sets
    tables = _STACK["tables"] if _STACK["tables"] is not None else np.zeros((1, len(names), FIELDS))
    _STACK.update(tables=np.concatenate([tables, table]),
                  tokens0=np.append(_STACK["tokens0"], float((backbone.image_size // backbone.patch_size) ** 2)),
                  work=np.concatenate([_STACK["work"], work]))
    _INDEX[backbone] = len(_STACK["tokens0"]) - 1
    return _INDEX[backbone]


def working_set_bytes(index, n, ab) -> np.ndarray:
    """Bytes one image of n stem tokens holds at its forward pass's widest point (0: no backbone):
    max over parts of 16-bit elements · a_bits/8 + FP32 elements · 4, scaled by n/n0."""
    idx = np.asarray(index, dtype=int)
    work = _STACK["work"][idx]  # (*configurations, part, 2)
    ab = np.asarray(ab, dtype=float)[..., None]
    peak = np.max(work[..., 0] * ab + work[..., 1] * SCAN_BYTES, axis=-1)
    return where(idx > 0, peak * np.asarray(n, dtype=float) / _STACK["tokens0"][idx], 0.0)


def backbone_ops(index, names: tuple, B, n, wb, ab, dequant_ops, tile_tokens) -> dict:
    """{operator: (FLOPs, weight bytes, activation bytes, 0, kernels, rows, FP32 vector FLOPs)} for the
    configurations whose model is a backbone (`index` > 0); zeros elsewhere. Weights are read once per
    forward pass (no prefill chunks: a batch of images is one pass) and dequantized per tile of
    `tile_tokens` rows (`dequant_ops` per weight), as the generic matrix products are."""
    tables, tokens0 = _STACK["tables"], _STACK["tokens0"]
    idx = np.asarray(index, dtype=int)
    on = idx > 0
    scale = where(on, np.asarray(n, dtype=float) / tokens0[idx], 0.0)
    images = np.asarray(B, dtype=float) * scale
    per = np.moveaxis(tables[idx], -2, 0)  # (operator, *configurations, field)
    out = {}
    for j, name in enumerate(names):
        f, w, a, k, r = (per[j][..., i] for i in range(FIELDS))
        if not (f.any() or w.any()):
            continue
        if name == "lm_head":  # the classifier: once per image whatever its size
            flops, acts, rows = np.asarray(B, dtype=float) * f * on, np.asarray(B, dtype=float) * a * on, B * r
        else:
            flops, acts, rows = images * f, images * a, images * r
        if name == "ssm_scan":
            out[name] = (0.0 * flops, 0.0, acts * SCAN_BYTES, 0.0, k * on, np.ones_like(flops), flops)
        else:
            dq = w * on * dequant_ops * np.ceil(maximum(rows, 1.0) / tile_tokens) if w.any() else 0.0
            out[name] = (flops, w * wb * on, acts * ab, 0.0, k * on, rows, dq)
    return out
