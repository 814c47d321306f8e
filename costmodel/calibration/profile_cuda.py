"""CUDA timings for `costmodel profile`: kernels replayed from CUDA graphs, and an end-to-end decode with a static
KV cache, one CUDA graph per step, as serving engines run it (vLLM captures decode steps in CUDA graphs:
docs.vllm.ai, "CUDA Graphs"). Launched op by op from Python, the lent H200 spent ~15 us per launch, and an 8B
model's decode step took 31 ms of CPU time for 5 ms of GPU work (torch.profiler, README)."""
from __future__ import annotations

import time

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
    """(prefill seconds, seconds per decode step, how): the prefill replayed from one CUDA graph; decode steps
    each replayed from one graph over a static KV cache of P + gen + 1 positions; `eager(net, ids, gen, repeats)`
    where capture fails."""
    t, be = net.be.torch, net.be
    try:
        empty = [None] * net.m.layers
        pre = capture(t, lambda: net.forward(ids, empty), 1)
        t_pre = best_time(pre.replay, repeats, be.sync)
        del pre
        t_dec = _graphed_decode(net, ids, gen)
        t.cuda.empty_cache()
        return t_pre, t_dec, "CUDA graphs, static KV cache"
    except RuntimeError as exc:
        t.cuda.empty_cache()
        if isinstance(exc, t.cuda.OutOfMemoryError):
            raise
        t_pre, t_dec, _ = eager(net, ids, gen, repeats)
        return t_pre, t_dec, f"eager (CUDA graph capture failed: {first_line(exc, 80)})"


def _graphed_decode(net, ids, gen: int) -> float:
    """Seconds per decode step: the step's graph replayed gen times at positions P .. P + gen - 1 (a step also sets
    the position and unmasks it: two small eager kernels, as an engine's per-step bookkeeping)."""
    t, m = net.be.torch, net.m
    B, P = ids.shape
    L = P + gen + 1
    _, cache = net.forward(ids, [None] * m.layers)
    kc = [t.zeros((B, m.kv_heads, L, m.head_dim), device="cuda", dtype=k.dtype) for k, _ in cache]
    vc = [t.zeros_like(k) for k in kc]
    for (k, v), K, V in zip(cache, kc, vc):
        K[:, :, :P] = k
        V[:, :, :P] = v
    del cache
    bias = t.full((L,), float("-inf"), device="cuda")
    bias[:P] = 0.0
    pos = t.full((1,), P, device="cuda", dtype=t.long)
    tok = ids[:, -1:].clone()
    step = capture(t, lambda: decode_static(net, tok, kc, vc, pos, bias), 1)
    net.be.sync()
    t0 = time.perf_counter()
    for i in range(gen):
        pos.fill_(P + i)
        bias[P + i] = 0.0
        step.replay()
    net.be.sync()
    return (time.perf_counter() - t0) / gen


def decode_static(net, tok, kc, vc, pos, bias):
    """One decode step of net's decoder over static caches kc, vc (B, Hk, L, d) per layer: the new key and value
    written at `pos`, attention over all L positions with `bias` (0 where filled, -inf beyond), query heads grouped
    per KV head (query head h reads KV head h // G, as repeat_interleave pairs them) so the cache is read once."""
    t, m, be = net.be.torch, net.m, net.be
    B = tok.shape[0]
    H, Hk, d = m.heads, m.kv_heads, m.head_dim
    x = net.embed[tok]  # (B, 1, h)
    for layer, K, V in zip(net.layers, kc, vc):
        qkv = net.lin(x * be.rsqrt_mean_sq(x), layer["qkv"])
        q = qkv[..., :H * d].reshape(B, Hk, H // Hk, d)
        K.index_copy_(2, pos, qkv[..., H * d:(H + Hk) * d].reshape(B, Hk, 1, d))
        V.index_copy_(2, pos, qkv[..., (H + Hk) * d:].reshape(B, Hk, 1, d))
        s = (q @ K.transpose(2, 3)) * (1.0 / d ** 0.5) + bias  # (B, Hk, G, L), float32
        o = (t.softmax(s, dim=-1).to(V.dtype) @ V).reshape(B, 1, H * d)
        x = net.mlp(x + net.lin(o, layer["o"]), layer)
    return net.logits(x)
