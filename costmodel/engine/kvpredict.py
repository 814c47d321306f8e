"""KV Prediction (Horton et al. 2024, arXiv 2410.08391): a small auxiliary model reads the
prompt; learned per-layer linear maps turn its KV cache into the base model's; the base model
then decodes from the predicted cache. TTFT = aux prefill(P) + projection + one base step.

  projection FLOPs = 2 · T · Σ_base layers (d_K,aux · d_K,base + d_V,aux · d_V,base)
                   = T · L_base · kv_aux · kv_base / 2   (kv = K+V elements per token per layer)
  bytes = projection weights (16-bit) + aux KV read + base KV written
"""
from __future__ import annotations

import numpy as np


def projection_time(aux, base, f, hc, batch: int, prompt: int) -> tuple[float, float]:
    """(seconds, weight bytes) of the KV projection for `batch` prompts of `prompt` tokens.

    `aux`, `base` are Model specs; `hc`, `f` the device's hardware and format columns.
    """
    T = batch * prompt
    kv_a, kv_b = aux.kv_elements_per_token_per_layer, base.kv_elements_per_token_per_layer
    flops = T * base.layers * kv_a * kv_b / 2
    weights = projection_weights(aux, base)
    kv_bytes = f["kv_bits"] / 8
    moved = weights + T * (aux.layers * kv_a + base.layers * kv_b) * kv_bytes
    compute = flops / (float(np.asarray(hc["peak_attention"])) * float(np.asarray(hc["compute_efficiency"])))
    memory = moved / (float(np.asarray(hc["bandwidth"])) * float(np.asarray(hc["memory_efficiency"])))
    return max(compute, memory) + base.layers * float(np.asarray(hc["kernel_overhead_s"])), weights


def projection_weights(aux, base) -> float:
    """Bytes of the 16-bit projection matrices: base layers · kv_aux · kv_base / 2 elements, 2 bytes each."""
    return base.layers * aux.kv_elements_per_token_per_layer * base.kv_elements_per_token_per_layer / 2 * 2.0
