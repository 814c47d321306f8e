"""The decoder `costmodel profile` times end to end: random weights, a catalogue model's architecture (dense, GQA,
gated MLP), on a profile Backend; and its eager timing (the CPU's, and CUDA's where graph capture fails)."""
from __future__ import annotations

import time

from costmodel.calibration.profile_backend import Backend, ProfileError
from costmodel.calibration.timing import best_time
from costmodel.spec.model import Model


class Transformer:
    """A decoder with random weights and the catalogue architecture (dense, GQA, gated MLP)."""

    def __init__(self, m: Model, be: Backend, dtype: str):
        if m.moe is not None or m.mla is not None or m.is_encoder:
            raise ProfileError(f"{m.id}: the end-to-end profiler builds dense decoders (no MoE, MLA or encoders)")
        self.m, self.be = m, be
        h, d = m.hidden_size, m.head_dim
        self.layers = [{
            "qkv": be.random((h, (m.heads + 2 * m.kv_heads) * d), dtype),
            "o": be.random((m.heads * d, h), dtype),
            "up": be.random((h, 2 * m.intermediate_size if m.gated_mlp else m.intermediate_size), dtype),
            "down": be.random((m.intermediate_size, h), dtype),
        } for _ in range(m.layers)]
        self.embed = be.random((m.vocab_size, h), dtype)
        self.head = self.embed if m.tied_embeddings else be.random((m.vocab_size, h), dtype)

    @staticmethod
    def lin(x, w):
        """x @ w as one 2-D matrix product (a 3-D @ would re-read w once per sequence)."""
        return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[1])

    def forward(self, tokens, cache):
        """tokens: (B, T) ids; cache: list of (K, V) per layer, each (B, Hk, L, d) or None."""
        m, be = self.m, self.be
        B, T = tokens.shape
        H, Hk, d = m.heads, m.kv_heads, m.head_dim
        x = self.embed[tokens]  # (B, T, h)
        new_cache = []
        for layer, kv in zip(self.layers, cache):
            y = x * be.rsqrt_mean_sq(x)
            qkv = self.lin(y, layer["qkv"])
            q = be.swap(qkv[..., :H * d].reshape(B, T, H, d), 1, 2)
            k = be.swap(qkv[..., H * d:(H + Hk) * d].reshape(B, T, Hk, d), 1, 2)
            v = be.swap(qkv[..., (H + Hk) * d:].reshape(B, T, Hk, d), 1, 2)
            if kv is not None:
                k, v = be.cat([kv[0], k], 2), be.cat([kv[1], v], 2)
            new_cache.append((k, v))
            o = be.swap(be.attention(q, k, v), 1, 2).reshape(B, T, H * d)
            x = self.mlp(x + self.lin(o, layer["o"]), layer)
        return self.logits(x), new_cache

    def mlp(self, x, layer):
        """x + the layer's (gated) MLP of its normed input."""
        m, be = self.m, self.be
        u = self.lin(x * be.rsqrt_mean_sq(x), layer["up"])
        if m.gated_mlp:
            g, u = u[..., :m.intermediate_size], u[..., m.intermediate_size:]
            u = g / (1 + be.exp(-g)) * u
        else:
            u = u * (u > 0)
        return x + self.lin(u, layer["down"])

    def logits(self, x):
        """The last position's logits after the final norm."""
        x = x * self.be.rsqrt_mean_sq(x)
        return x[:, -1] @ self.be.swap(self.head, 0, 1)


def eager_times(net: Transformer, ids, gen: int, repeats: int) -> tuple:
    """(prefill seconds, seconds per decode step, how): the forward pass called op by op, the KV cache grown by
    concatenation at every step."""
    empty = [None] * net.m.layers
    t_pre = best_time(lambda: net.forward(ids, empty), repeats, net.be.sync)
    _, cache = net.forward(ids, empty)
    nxt = ids[:, -1:]
    net.be.sync()
    t0 = time.perf_counter()
    for _ in range(gen):
        _, cache = net.forward(nxt, cache)
    net.be.sync()
    return t_pre, (time.perf_counter() - t0) / gen, "eager"
