"""CUDA timings for `costmodel profile`: kernels replayed from CUDA graphs, and an end-to-end decode over a static
KV cache replayed from a CUDA graph, as serving engines run decode steps (vLLM captures them in CUDA graphs:
docs.vllm.ai, "CUDA Graphs"). Launched op by op from Python, the lent H200 spent ~15 us per launch, and an 8B
model's decode step took 31 ms of CPU time for 5 ms of GPU work (torch.profiler, README)."""
from __future__ import annotations

from costmodel.calibration.profile_backend import first_line
from costmodel.calibration.timing import best_time


def capture(t, fn, calls: int):
    """A CUDA graph of `calls` calls of fn, captured after two warm-up calls on a side stream (as capture requires)."""
    side = t.cuda.Stream()
    side.wait_stream(t.cuda.current_stream())
    with t.cuda.stream(side):
        fn()
        fn()
    t.cuda.current_stream().wait_stream(side)
    g = t.cuda.CUDAGraph()
    with t.cuda.graph(g):
        for _ in range(calls):
            fn()
    return g


def graph_time(fn, repeats: int, be, budget_s: float = 2e-3) -> float:
    """Seconds per call: the best of `repeats` replays of a graph of as many calls as fill about budget_s (10 to
    2,000), so neither the launches nor the final synchronisation (~20 us) count; eager back-to-back calls where
    capture fails."""
    t = be.torch
    try:
        per = best_time(capture(t, fn, 10).replay, 2, be.sync) / 10
        calls = max(10, min(2000, int(budget_s / max(per, 1e-9))))
        return best_time(capture(t, fn, calls).replay, repeats, be.sync) / calls
    except RuntimeError:
        one = best_time(fn, 1, be.sync)
        return best_time(fn, repeats, be.sync, calls=max(1, int(budget_s / max(one, 1e-9))))


def e2e_times(net, ids, gen: int, repeats: int, eager) -> tuple:
    """(prefill seconds, seconds per decode step, how): the prefill replayed from one CUDA graph; gen decode steps
    replayed from one graph over a static KV cache of P + gen positions (_graphed_decode); `eager(net, ids, gen,
    repeats)` where capture fails."""
    t, be = net.be.torch, net.be
    try:
        empty = [None] * net.m.layers
        pre = capture(t, lambda: net.forward(ids, empty), 1)
        t_pre = best_time(pre.replay, repeats, be.sync)
        del pre
        t_dec = _graphed_decode(net, ids, gen, repeats)
        t.cuda.empty_cache()
        return t_pre, t_dec, "CUDA graphs, static KV cache, fused decode attention"
    except RuntimeError as exc:
        t.cuda.empty_cache()
        if isinstance(exc, t.cuda.OutOfMemoryError):
            raise
        t_pre, t_dec, _ = eager(net, ids, gen, repeats)
        return t_pre, t_dec, f"eager (CUDA graph capture failed: {first_line(exc, 80)})"


def _graphed_decode(net, ids, gen: int, repeats: int) -> float:
    """Seconds per decode step: gen steps at cache lengths P + 1 .. P + gen captured in one CUDA graph (each step's
    attention over exactly its filled positions, so a graph holds no mask and no length it does not read), the best
    of `repeats` replays divided by gen."""
    t, m = net.be.torch, net.m
    B, P = ids.shape
    _, cache = net.forward(ids, [None] * m.layers)
    kc = [t.zeros((B, m.kv_heads, P + gen, m.head_dim), device="cuda", dtype=k.dtype) for k, _ in cache]
    vc = [t.zeros_like(k) for k in kc]
    for (k, v), K, V in zip(cache, kc, vc):
        K[:, :, :P] = k
        V[:, :, :P] = v
    del cache
    tok = ids[:, -1:].clone()
    steps = capture(t, lambda: [decode_static(net, tok, kc, vc, P + i) for i in range(gen)], 1)
    return best_time(steps.replay, repeats, net.be.sync) / gen


def decode_static(net, tok, kc, vc, n: int):
    """One decode step of net's decoder over static caches kc, vc (B, Hk, L, d) per layer, L > n: the new key and
    value written at position n, then attention of the new query over positions 0 .. n with the profile's fused
    attention (Backend.attention: PyTorch's flash kernel, GQA without copying heads), the cache read once."""
    m, be = net.m, net.be
    B = tok.shape[0]
    H, Hk, d = m.heads, m.kv_heads, m.head_dim
    x = net.embed[tok]  # (B, 1, h)
    for layer, K, V in zip(net.layers, kc, vc):
        qkv = net.lin(x * be.rsqrt_mean_sq(x), layer["qkv"])
        q = qkv[..., :H * d].reshape(B, H, 1, d)
        K[:, :, n] = qkv[..., H * d:(H + Hk) * d].reshape(B, Hk, d)
        V[:, :, n] = qkv[..., (H + Hk) * d:].reshape(B, Hk, d)
        o = be.attention(q, K[:, :, :n + 1], V[:, :, :n + 1]).reshape(B, 1, H * d)
        x = net.mlp(x + net.lin(o, layer["o"]), layer)
    return net.logits(x)
