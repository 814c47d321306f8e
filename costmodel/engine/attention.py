"""The attention operators of a step: (query, key) pairs, and their FLOPs, KV bytes and activations.

Per (query, key) pair 2·Hq·(d_qk + d_v) FLOPs plus the softmax (5 ops an element, LLM-Viewer's convention,
arXiv 2402.16363); the keys and values read once per query tile of FA_TILE_ROWS rows (FlashAttention).
Causal, sliding-window, chunked local (Llama 4) and bidirectional (encoders) layers differ in their pairs;
DSA's lightning indexer scores every causal pair and the main attention reads the top-k keys;
cross-attention layers attend to each sequence's vision tokens. operators.lower adds these to a step.
"""
from __future__ import annotations

from costmodel.engine.elementwise import as_float, ceil, clip, floor, maximum, minimum, mod, where
from costmodel.engine.truth import any_nonzero

FA_TILE_ROWS = 128  # FlashAttention query-tile rows (Dao 2023, FlashAttention-2 block size)
SOFTMAX_OPS = 5.0  # per score element (LLM-Viewer, arXiv 2402.16363)
ATTENTION_OPS = ("attention", "attention_local", "attention_chunked", "attention_indexer")
FUSED_ATTENTION = ATTENTION_OPS[:3] + ("cross_attention",)  # the engine's attention kernels: attention_efficiency


def causal_pairs(n, c, window, encoder):
    """(query, key) pairs per sequence for n new tokens after c cached ones.

    Causal: sum_{i=1..n} (c+i) = n·c + n(n+1)/2; with a window W: sum min(c+i, W);
    encoder (bidirectional): n·(c+n); with windows of W tokens (a windowed vision tower): n·min(W, c+n).
    """
    full = n * c + n * (n + 1) / 2
    if not any_nonzero(window > 0) and not any_nonzero(encoder > 0):  # causal without windows: the wheres pick it
        return as_float(full)
    k = clip(window - c, 0, n)
    windowed = k * c + k * (k + 1) / 2 + (n - k) * window
    causal = where(window > 0, windowed, full)
    both = where(window > 0, n * minimum(window, c + n), n * (c + n))
    return where(encoder > 0, both, causal)


def chunked_pairs(n, c, chunk, decode: bool):
    """(query, key) pairs per sequence on a chunked local attention layer (Llama 4): position j
    attends to the (j mod C) + 1 keys of its chunk, so n new tokens after c cached ones have
    S(c+n) − S(c) pairs, S(x) = floor(x/C)·C(C+1)/2 + r(r+1)/2, r = x mod C. A decode step past the
    first chunk counts the mean over a chunk, (C+1)/2 keys (the decode mean is taken between two
    contexts, and the exact count is a saw-tooth)."""
    C = maximum(chunk, 1.0)

    def S(x):
        r = mod(x, C)
        return floor(x / C) * C * (C + 1) / 2 + r * (r + 1) / 2

    exact = S(c + n) - S(c)
    if decode:
        exact = where(c >= C, n * (C + 1) / 2, exact)
    return where(chunk > 0, exact, 0.0 * exact)


def cross_attention_term(m: dict, f: dict, B, n, tp, decode: bool, xl) -> tuple:
    """Cross-attention of n new tokens of B sequences to each sequence's V cached vision keys in `xl`
    running cross layers (Llama 3.2 Vision, HF MllamaTextCrossAttention: no mask, every query sees all
    V keys): 2·Hq·(d + d) FLOPs per (query, key) pair plus the softmax, the keys and values read once
    per query tile."""
    B, n, tp = map(as_float, (B, n, tp))
    V = m["cross_tokens"]
    hd, ab, kvb = m["head_dim"], f["a_bits"] / 8, f["kv_bits"] / 8
    Hq, Hk = m["heads"] / tp, ceil(m["kv_heads"] / tp)
    q_rows = n if decode else minimum(n, FA_TILE_ROWS)
    pairs = B * n * V
    flops = pairs * Hq * (4 * hd + SOFTMAX_OPS) * xl
    kv_read = pairs * 2 * Hk * hd * kvb / maximum(q_rows, 1.0) * xl
    act = B * n * Hq * 2 * hd * ab * xl
    return (flops, 0.0, act, kv_read, xl, q_rows * maximum(Hq / Hk, 1.0), 0.0)


def attention_terms(m: dict, f: dict, B, n, c, tp, decode: bool, names: tuple = ATTENTION_OPS) -> dict:
    """The fused attention operators (global, sliding-window and chunked local layers) for n new
    tokens after c: those of `names`."""
    B, n, c, tp = map(as_float, (B, n, c, tp))
    T = B * n
    ab, kvb = f["a_bits"] / 8, f["kv_bits"] / 8
    Hq = m["heads"] / tp
    Hk = ceil(m["kv_heads"] / tp)
    mla = m["mla"] > 0
    d_qk, d_v, hd = m["d_qk"], m["d_v"], m["head_dim"]
    if decode:
        qk = where(mla, m["kv_lora"] + m["rope_dim"], d_qk)
        vd = where(mla, m["kv_lora"], d_v)
        kv_tok = where(mla, (m["kv_lora"] + m["rope_dim"]) * kvb, 2 * Hk * hd * kvb)
        q_rows = n
    else:
        qk, vd = d_qk, d_v
        kv_tok = where(mla, Hq * (d_qk + d_v) * ab, 2 * Hk * hd * kvb)
        q_rows = minimum(n, FA_TILE_ROWS)
    group = maximum(Hq / where(mla, 1.0, Hk), 1.0)
    out = {}

    def zero():  # an absent variant keeps the configurations' shape (the pairs need not be counted)
        return 0.0 * T * c

    layers = variant_layers(m)
    # DSA: the main attention reads the top-k keys only (the sum of min(c+i, k) pairs, as a window)
    for name, window in (("attention", m["dsa_topk"]), ("attention_local", m["window"]), ("attention_chunked", None)):
        if name not in names:
            continue
        count = layers[name]
        if not any_nonzero(count):  # no such layers in these models: zero work
            out[name] = (0.0, 0.0, 0.0, 0.0, count + zero(), q_rows * group + zero(), 0.0)
            continue
        if window is None:
            pairs = B * chunked_pairs(n, c, m["chunk"], decode)
        else:
            pairs = B * causal_pairs(n, c, window, m["encoder"])
        flops = pairs * Hq * (2 * (qk + vd) + SOFTMAX_OPS) * count
        kv_read = pairs * kv_tok / maximum(q_rows, 1.0) * count
        act = T * Hq * (qk + vd) * ab * count
        out[name] = (flops, 0.0, act, kv_read, count, q_rows * group, 0.0)
    # DSA lightning indexer: every (query, key) pair scored by Hi heads of di (ReLU, weighted sum),
    # reading the FP8 indexer keys (DeepSeek-V3.2-Exp inference/model.py, class Indexer: replicated
    # over tensor-parallel ranks); it runs on the matrix unit in the deployment's datatype (FP8 in
    # DeepSeek's release, 'can be implemented in FP8')
    idx_layers = layers["attention_indexer"]
    if "attention_indexer" not in names:
        return out
    if not any_nonzero(idx_layers):
        out["attention_indexer"] = (0.0, 0.0, 0.0, 0.0, idx_layers + zero(), q_rows * m["dsa_heads"] + zero(), 0.0)
        return out
    pairs = B * causal_pairs(n, c, 0.0 * m["window"], m["encoder"])
    flops = pairs * m["dsa_heads"] * (2 * m["dsa_dim"] + 2) * idx_layers
    kv_read = pairs * m["dsa_key_bytes"] / maximum(q_rows, 1.0) * idx_layers
    act = T * m["dsa_heads"] * m["dsa_dim"] * ab * idx_layers
    out["attention_indexer"] = (flops, 0.0, act, kv_read, idx_layers, q_rows * m["dsa_heads"], 0.0)
    return out


def variant_layers(m: dict) -> dict:
    """Layers of each ATTENTION_OPS variant: global, sliding-window and chunked local layers, and the DSA
    indexer on the global layers of a model that has one."""
    return {"attention": m["global_layers"], "attention_local": m["local_layers"],
            "attention_chunked": m["chunked_layers"], "attention_indexer": m["global_layers"] * (m["dsa_heads"] > 0)}


def attention_present(m: dict) -> tuple:
    """The ATTENTION_OPS that the models of `m` have layers for (any row); the others are zero work on
    every row. At least one (a model without attention layers still has the global entry)."""
    layers = variant_layers(m)
    return tuple(k for k in ATTENTION_OPS if any_nonzero(layers[k])) or ATTENTION_OPS[:1]
