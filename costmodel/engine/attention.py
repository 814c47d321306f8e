"""The attention operators of a step: (query, key) pairs, and their FLOPs, KV bytes and activations.

Per (query, key) pair 2·Hq·(d_qk + d_v) FLOPs plus the softmax (5 ops an element, LLM-Viewer's convention,
arXiv 2402.16363); the keys and values read once per query tile of FA_TILE_ROWS rows (FlashAttention).
Causal, sliding-window, chunked local (Llama 4) and bidirectional (encoders) layers differ in their pairs;
DSA's lightning indexer scores every causal pair and the main attention reads the top-k keys;
cross-attention layers attend to each sequence's vision tokens. operators.lower adds these to a step.
"""
from __future__ import annotations

from typing import NamedTuple

from costmodel.engine.distinct import rows
from costmodel.engine.elementwise import as_float, ceil, clip, floor, maximum, minimum, mod, where
from costmodel.engine.truth import any_nonzero

FA_TILE_ROWS = 128.0  # FlashAttention query-tile rows (Dao 2023, FlashAttention-2 block size)
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
    Hq, Hk = m["heads"] / tp, ceil(m["kv_heads"] / tp)
    q_rows = query_rows(n, decode)
    V = m["cross_tokens"]
    hd, ab, kvb = m["head_dim"], f["a_bits"] / 8, f["kv_bits"] / 8
    pairs = B * n * V
    flops = pairs * Hq * (4 * hd + SOFTMAX_OPS) * xl
    kv_read = pairs * 2 * Hk * hd * kvb / maximum(q_rows, 1.0) * xl
    act = B * n * Hq * 2 * hd * ab * xl
    return (flops, 0.0, act, kv_read, xl, cross_rows(n, Hq, Hk, decode), 0.0)


def cross_rows(n, Hq, Hk, decode: bool):
    """The cross-attention operator's rows: its query rows per tile (query_rows) times the query heads sharing a KV
    head, Hq/Hk (at least 1)."""
    return query_rows(n, decode) * maximum(Hq / Hk, 1.0)


def query_rows(n, decode: bool):
    """An attention kernel's query rows per tile for n new tokens a sequence: all n decoding, at most FA_TILE_ROWS
    prefilling."""
    return n if decode else minimum(n, FA_TILE_ROWS)


def attention_terms(m: dict, f: dict, B, n, c, tp, decode: bool, names: tuple = ATTENTION_OPS,
                    coefficients: dict | None = None) -> dict:
    """The fused attention operators (global, sliding-window and chunked local layers) for n new
    tokens after c: those of `names`. `coefficients`: pair_coefficients' dict for these n, tp and names where the
    caller holds it (an estimate's decode, at both ends of its context)."""
    B, n, c, tp = map(as_float, (B, n, c, tp))
    if coefficients is None:
        coefficients = pair_coefficients(m, f, n, tp, decode, names)
    return terms_of(coefficients, B, n, c, decode, m["encoder"], f["a_bits"] / 8)


def terms_of(coefficients: dict, B, n, c, decode: bool, encoder, ab) -> dict:
    """attention_terms from the variants' PairCoefficients (pair_coefficients' dict), B sequences of n new tokens
    after c, the encoder flag and activation bytes `ab` (a_bits / 8)."""
    T = B * n
    out = {}
    for name, v in coefficients.items():
        if v.absent:  # no such layers in these models: zero work (the configurations' shape kept)
            zero = no_work(T, c)
            out[name] = (0.0, 0.0, 0.0, 0.0, v.layers + zero, v.rows + zero, 0.0)
            continue
        flops, kv_read = variant_work(B, n, c, v.span, v.chunked, decode, encoder, v.heads, v.per_pair,
                                      v.kv_per_pair, v.q_tile, v.layers)
        act = T * v.heads * v.width * ab * v.layers
        out[name] = (flops, 0.0, act, kv_read, v.layers, v.rows, 0.0)
    return out


def no_work(T, c):
    """Zeros of the configurations' shape for an absent variant's fields, from its T tokens and context c (NaN
    where they are)."""
    return 0.0 * T * c


def variant_work(B, n, c, span, chunked: bool, decode: bool, encoder, heads, per_pair, kv_per_pair, q_tile,
                 layers) -> tuple:
    """(FLOPs, KV bytes read) of a present attention variant for B sequences of n new tokens after c: its pairs
    (chunked_pairs of chunks of `span`, or causal_pairs in a window or top-k of `span`) and pair_work. Plain
    arithmetic, on arrays or numbers: kernels.py compiles it as it is."""
    if chunked:
        pairs = chunked_pairs(n, c, span, decode)
    else:
        pairs = causal_pairs(n, c, span, encoder)
    return pair_work(B * pairs, heads, per_pair, kv_per_pair, q_tile, layers)


def pair_work(pairs, heads, per_pair, kv_per_pair, q_tile, layers) -> tuple:
    """(FLOPs, KV bytes read) of an attention variant over `pairs` (query, key) pairs: pairs · heads · FLOPs
    per pair and head · layers, and pairs · KV bytes per key / query-tile rows · layers. Plain arithmetic, on
    arrays or numbers: kernels.py compiles it as it is."""
    return pairs * heads * per_pair * layers, pairs * kv_per_pair / q_tile * layers


class PairCoefficients(NamedTuple):
    """An attention variant's terms other than its (query, key) pairs (attention_terms, pair_work): FLOPs
    per pair and head `per_pair`, KV bytes per key `kv_per_pair`, query-tile rows `q_tile` (at least 1),
    heads, the width (d_qk + d_v) its activations carry per head, layers, its operator's rows, and the
    pairs' shape: a window or DSA top-k of `span` keys, or chunks of `span` (`chunked`). `absent`: no model
    of the columns has such layers (zero work). A named tuple: an estimate builds a dozen."""

    heads: object
    per_pair: object
    kv_per_pair: object
    q_tile: object
    width: object
    layers: object
    rows: object
    span: object
    chunked: bool
    absent: bool


def coefficients_at(coefficients: dict, idx) -> dict:
    """pair_coefficients' dict at rows `idx` of the rows it was computed on (distinct.rows: a number, or one row for
    every row, stays as it is): the values pair_coefficients gives on the columns at those rows."""
    return {name: v._replace(**{k: rows(getattr(v, k), idx) for k in _COLUMNS}) for name, v in coefficients.items()}


_COLUMNS = tuple(k for k in PairCoefficients._fields if k not in ("chunked", "absent"))  # a value per row each


def pair_coefficients(m: dict, f: dict, n, tp, decode: bool, names: tuple = ATTENTION_OPS) -> dict:
    """{name: PairCoefficients} of the ATTENTION_OPS in `names` for n new tokens a sequence."""
    n, tp = as_float(n), as_float(tp)
    ab, kvb = f["a_bits"] / 8, f["kv_bits"] / 8
    Hq = m["heads"] / tp
    Hk = ceil(m["kv_heads"] / tp)
    mla = m["mla"] > 0
    d_qk, d_v, hd = m["d_qk"], m["d_v"], m["head_dim"]
    if decode:
        qk = where(mla, m["kv_lora"] + m["rope_dim"], d_qk)
        vd = where(mla, m["kv_lora"], d_v)
        kv_tok = where(mla, (m["kv_lora"] + m["rope_dim"]) * kvb, 2 * Hk * hd * kvb)
    else:
        qk, vd = d_qk, d_v
        kv_tok = where(mla, Hq * (d_qk + d_v) * ab, 2 * Hk * hd * kvb)
    q_rows = query_rows(n, decode)
    group = maximum(Hq / where(mla, 1.0, Hk), 1.0)
    q_tile = maximum(q_rows, 1.0)
    layers = variant_layers(m)
    out = {}
    # DSA: the main attention reads the top-k keys only (the sum of min(c+i, k) pairs, as a window)
    for name in names:
        count = layers[name]
        indexer, chunked = name == "attention_indexer", name == "attention_chunked"
        rows = q_rows * (m["dsa_heads"] if indexer else group)
        if not any_nonzero(count):  # no such layers in these models: only the launches and rows are read
            out[name] = PairCoefficients(0.0, 0.0, 0.0, q_tile, 0.0, count, rows, 0.0, chunked, True)
        elif not indexer:
            width = qk + vd
            span = m["dsa_topk"] if name == "attention" else m["window"] if name == "attention_local" else m["chunk"]
            out[name] = PairCoefficients(Hq, 2 * width + SOFTMAX_OPS, kv_tok, q_tile, width, count, rows, span,
                                         chunked, False)
        else:
            # DSA lightning indexer: every (query, key) pair scored by Hi heads of di (ReLU, weighted sum),
            # reading the FP8 indexer keys (DeepSeek-V3.2-Exp inference/model.py, class Indexer: replicated
            # over tensor-parallel ranks); it runs on the matrix unit in the deployment's datatype (FP8 in
            # DeepSeek's release, 'can be implemented in FP8')
            out[name] = PairCoefficients(m["dsa_heads"], 2 * m["dsa_dim"] + 2, m["dsa_key_bytes"], q_tile,
                                         m["dsa_dim"], count, rows, 0.0 * m["window"], False, False)
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
