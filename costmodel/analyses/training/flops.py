"""FLOPs of one training token.

Model FLOPs (what MFU counts; PaLM, Chowdhery et al. 2022, App. B; Megatron-LM's
72·B·s·L·h²·(1 + s/6h + V/12hL), Narayanan et al. 2021, eq. 3):
    6 · N_matmul + 12 · L · s · w              (w = query heads x head dim; attention not halved)
Executed FLOPs (what the device runs, for time and HFU): causal attention does half the pairs,
    linear = 6 · N_matmul,  attention = 6 · L · s · w   (forward 2 · s · w per layer, backward twice it)
and activation recomputation adds a forward pass of what it recomputes (Korthikanti et al. 2022):
full recompute one more forward of everything (2 · N_matmul + 2 · L · s · w); selective recompute
the attention core, which FlashAttention's backward already recomputes (counted in neither). L counts
softmax-attention layers; recurrent mixers (Mamba, Gated DeltaNet) enter through their matmul
parameters only (their scans are not counted), sliding windows are counted as full attention.
"""
from __future__ import annotations

import numpy as np

RECOMPUTE = ("none", "selective", "full")


def model_flops_per_token(shape, seq):
    """6 N + 12 L s w (the convention of the published MFU figures)."""
    return 6.0 * shape.matmul_active + 12.0 * shape.attention_layers * np.asarray(seq, dtype=float) * shape.attn_width


def executed_flops_per_token(shape, seq, full_recompute):
    """(linear, attention) FLOPs one token costs on the device: causal attention, recompute included."""
    seq = np.asarray(seq, dtype=float)
    extra = np.where(np.asarray(full_recompute, dtype=bool), 1.0, 0.0)  # one more forward of 3
    linear = (6.0 + 2.0 * extra) * shape.matmul_active
    attention = (6.0 + 2.0 * extra) * shape.attention_layers * seq * shape.attn_width
    return linear, attention
