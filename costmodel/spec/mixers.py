"""Recurrent token mixers (layers with a fixed-size state instead of a KV cache): shapes and costs.

Each mixer reduces to the same numbers per layer, which the operators and the memory model use:
input projections (h -> in_width, plus inner matrices), output projection (out_in -> h), a short
causal convolution (channels x kernel), the state per sequence (constant in context), and the
scan's FLOPs per token when decoding (recurrent form) and when prefilling (chunked form).

  Gated DeltaNet (Yang et al. 2024, arXiv 2412.06464; HF Qwen3NextGatedDeltaNet):
    in  = 2·Hk·dk + 2·Hv·dv + 2·Hv (q, k, v, output gate z; beta, alpha), conv over 2·Hk·dk + Hv·dv
    state = Hv·dk·dv; decode 7·dk·dv per value head per token (decay, S·k, delta rank-1 update,
    S·q); chunked prefill (chunk C, WY form, arXiv 2406.06484 §3) 2·C·(3·dk + 2·dv) + 6·dk·dv
  Mamba-2 / SSD (Dao & Gu 2024, arXiv 2405.21060 §6; mamba_ssm/modules/mamba2.py):
    d_inner = expand·h, heads = d_inner/P, in = 2·d_inner + 2·G·N + heads, conv over d_inner + 2·G·N
    state = d_inner·N; decode 5·d_inner·N (dA·S, dt·x·Bᵀ, C·S); chunked prefill (chunk Q)
    2·Q·(G·N + d_inner) + 4·d_inner·N per token
  Mamba-1 selective scan (Gu & Dao 2023, arXiv 2312.00752 Alg. 2; HF JambaMambaMixer):
    in = 2·d_inner, inner x_proj d_inner -> R + 2N and dt_proj R -> d_inner, conv over d_inner
    state = d_inner·N; 8·d_inner·N per token in both phases (exp(ΔA), ΔB·x, Ā·h + B̄x, C·h), a scan
"""
from __future__ import annotations

from dataclasses import dataclass

GDN_CHUNK = 64  # fla chunk_gated_delta_rule chunk size (flash-linear-attention, ops/gated_delta_rule)


@dataclass(frozen=True)
class GatedDeltaNet:
    """Gated DeltaNet linear attention (Qwen3-Next, Qwen3.5)."""

    key_heads: int
    value_heads: int
    key_head_dim: int
    value_head_dim: int
    conv_kernel: int = 4
    chunk: int = GDN_CHUNK

    on_tensor_cores = True  # the chunked WY form is matrix products

    @property
    def state_chunk(self) -> int:
        return self.chunk

    @property
    def in_width(self) -> int:
        return 2 * self.key_heads * self.key_head_dim + 2 * self.value_heads * self.value_head_dim + 2 * self.value_heads

    @property
    def inner_weights(self) -> int:
        return 0

    @property
    def out_in(self) -> int:
        return self.value_heads * self.value_head_dim

    @property
    def conv_channels(self) -> int:
        return 2 * self.key_heads * self.key_head_dim + self.value_heads * self.value_head_dim

    @property
    def conv_bias(self) -> bool:
        return False

    @property
    def small_params(self) -> int:
        """dt_bias and A_log per value head, the gated RMSNorm over one value head."""
        return 2 * self.value_heads + self.value_head_dim

    @property
    def state(self) -> int:
        return self.value_heads * self.key_head_dim * self.value_head_dim

    @property
    def decode_flops(self) -> float:
        return 7.0 * self.state

    @property
    def prefill_flops(self) -> float:
        dk, dv = self.key_head_dim, self.value_head_dim
        return self.value_heads * (2.0 * self.chunk * (3 * dk + 2 * dv) + 6.0 * dk * dv)


@dataclass(frozen=True)
class Mamba:
    """Mamba-1 (version 1) or Mamba-2 (version 2, SSD) selective state-space mixer."""

    version: int
    d_inner: int
    d_state: int
    conv_kernel: int = 4
    head_dim: int = 64  # Mamba-2
    groups: int = 1  # Mamba-2
    dt_rank: int = 0  # Mamba-1
    conv_bias: bool = True
    dt_norms: bool = False  # Jamba: RMSNorms on dt, B and C
    chunk: int = 256  # Mamba-2 SSD chunk size (mamba2.py default)

    @property
    def heads(self) -> int:
        return self.d_inner // self.head_dim if self.version == 2 else self.d_inner

    @property
    def in_width(self) -> int:
        if self.version == 2:
            return 2 * self.d_inner + 2 * self.groups * self.d_state + self.heads
        return 2 * self.d_inner

    @property
    def inner_weights(self) -> int:
        """Mamba-1's x_proj (d_inner -> R + 2N) and dt_proj (R -> d_inner), run on every token."""
        if self.version == 2:
            return 0
        return self.d_inner * (self.dt_rank + 2 * self.d_state) + self.dt_rank * self.d_inner

    @property
    def out_in(self) -> int:
        return self.d_inner

    @property
    def conv_channels(self) -> int:
        return self.d_inner + (2 * self.groups * self.d_state if self.version == 2 else 0)

    @property
    def small_params(self) -> int:
        """A, D, dt bias (+ Mamba-2's gated RMSNorm, Jamba's dt/B/C norms)."""
        if self.version == 2:
            return 3 * self.heads + self.d_inner
        return (self.d_inner * self.d_state + 2 * self.d_inner
                + ((self.dt_rank + 2 * self.d_state) if self.dt_norms else 0))

    @property
    def state(self) -> int:
        return self.d_inner * self.d_state

    @property
    def state_chunk(self) -> int:
        """Tokens per chunk whose state the prefill kernel writes out (SSD); 0: the Mamba-1 scan
        carries its state on chip through the whole sequence."""
        return self.chunk if self.version == 2 else 0

    @property
    def on_tensor_cores(self) -> bool:
        """SSD's chunked form is matrix products; Mamba-1's selective scan is element-wise FP32 work."""
        return self.version == 2

    @property
    def decode_flops(self) -> float:
        return (5.0 if self.version == 2 else 8.0) * self.state

    @property
    def prefill_flops(self) -> float:
        if self.version == 2:
            return 2.0 * self.chunk * (self.groups * self.d_state + self.d_inner) + 4.0 * self.state
        return 8.0 * self.state


def mixer_params(mx) -> int:
    """Parameters of one recurrent-mixer layer (projections, conv, small vectors), hidden size h
    excluded: add h·in_width + out_in·h for the input and output projections."""
    conv = mx.conv_channels * mx.conv_kernel + (mx.conv_channels if mx.conv_bias else 0)
    return mx.inner_weights + conv + mx.small_params
