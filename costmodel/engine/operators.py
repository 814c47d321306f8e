"""Lower a model to operators for one step of one phase: FLOPs and bytes as arrays.

Every quantity is per device (tensor-parallel shards divided by `tp`) and summed over the
layers an operator repeats in. Formulas (T = batch x new tokens, h = hidden size,
Hq = heads/tp, Hk = ceil(kv_heads/tp)):
  linear x->y     FLOPs 2·T·x·y, weights x·y·w_bits/8, activations T·(x+y)·a_bits/8
  DSA indexer     2·Hi·(di+1) FLOPs per causal (query, key) pair and di FP8 bytes + scale per key;
                  the main attention then has min(c+i, top-k) pairs per query
  attention       FLOPs 2·Hq·(d_qk+d_v) per (query, key) pair; pairs per sequence
                  sum_i (c+i) causal (min(c+i, window) on sliding-window layers; keys of the
                  token's own chunk on chunked local layers);
                  KV read = pairs · KV bytes per token / query rows per tile (FlashAttention)
  recurrent mixer (Gated DeltaNet, Mamba; spec/mixers.py) on its layers: projections as linears,
                  scan FLOPs per token (recurrent form decoding, chunked form prefilling) + the
                  causal conv 2·channels·kernel; state bytes read and written once per step
                  (decode) or per chunk (prefill), independent of the context
  MoE experts     distinct experts touched by T tokens: E·(1-(1-k/E)^T) (uniform routing)
  all-reduce      2 per layer under TP, 2·(tp-1)/tp of T·h·2 bytes on the wire (ring)
Parallel layout (engines' convention: SGLang --tp/--dp/--ep, TensorRT-LLM tp_size/enable_attention_dp/
moe_ep_size): `tp` ranks serve one replica; attention runs data-parallel over `dp` groups of tp/dp
ranks (each group its own B/dp sequences and KV), MLPs and experts over all tp ranks (experts
sharded over `ep`, each expert over tp/ep). Under DP attention the MLP layers gather the groups'
tokens (all-gather + reduce-scatter, (dp-1)/dp of T·h·2 bytes each), or with EP exchange them
all-to-all (DeepEP dispatch + combine: each rank's T/tp tokens go to the distinct remote ranks
holding their k experts, (tp-1)·(1-(1-1/ep)^k) of them, at the activation width, and come back
in 16-bit). A collective spanning more ranks than the device's scale-up domain sends its
cross-domain share over the scale-out link.
Conventions follow LLM-Viewer (arXiv 2402.16363) for element-wise work: norm 7 ops per
element, activation 5, softmax 5.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from itertools import chain

import numpy as np

from costmodel.engine.attention import ATTENTION_OPS, attention_terms, cross_attention_term, cross_rows
from costmodel.engine.backbone_ops import backbone_ops
from costmodel.engine.elementwise import as_float, ceil, clip, isfinite, maximum, minimum, ones_like, power, where
from costmodel.engine.spec_keys import FLOATS, Spec, spec_of
from costmodel.engine.specialize import Specialized
from costmodel.engine.traced import Traced, value_of
from costmodel.engine.truth import all_plus, all_positive, any_nonzero

OP_NAMES = ("embedding", "norms", "qkv_proj", "mla_kv_up", "attention", "attention_local", "attention_chunked",
            "attention_indexer", "o_proj",
            "ssm_in_proj", "ssm_scan", "ssm_out_proj",
            "mlp_up", "mlp_act", "mlp_down", "moe_router", "moe_up", "moe_act", "moe_down",
            "lm_head", "tp_allreduce", "dp_allgather", "ep_alltoall", "pp_sendrecv",
            "cross_proj", "cross_kv_proj", "cross_attention", "dwconv")
MATMUL, ATTENTION, VECTOR, COMM = 0, 1, 2, 3
OP_UNITS = np.array([VECTOR, VECTOR, MATMUL, MATMUL, ATTENTION, ATTENTION, ATTENTION, MATMUL, MATMUL,
                     MATMUL, ATTENTION, MATMUL,
                     MATMUL, VECTOR, MATMUL, MATMUL, MATMUL, VECTOR, MATMUL,
                     MATMUL, COMM, COMM, COMM, COMM,
                     MATMUL, MATMUL, ATTENTION, VECTOR])
UNIT_NAMES = ("matmul", "attention", "vector", "comm")
UNIT_OF = dict(zip(OP_NAMES, OP_UNITS.tolist()))
NORM_OPS, ACT_OPS = 7.0, 5.0
VECTOR_ROWS = 1e12  # element-wise work has no tile shape: full compute efficiency
WIRE_BYTES = 2.0  # bytes per activation element in collectives: 16-bit (NCCL bf16 all-reduce, DeepEP combine)


@dataclass(frozen=True)
class Ops:
    """Struct of arrays: axis 0 is the operator (OP_NAMES), the rest the configurations."""

    flops: np.ndarray
    weight_bytes: np.ndarray
    act_bytes: np.ndarray
    kv_bytes: np.ndarray
    launches: np.ndarray
    rows: np.ndarray  # rows of the matrix product (tokens per weight), drives efficiency
    dequant_flops: np.ndarray  # FP32 vector work beside the unit's: dequantization, Mamba-1's scan
    names: tuple = OP_NAMES
    columns = None  # NumberOps': each field's values as lower wrote them (not a dataclass field: no annotation)

    def take(self, idx) -> Ops:
        """The operators at positions `idx` (axis 0)."""
        idx = list(idx)
        return Ops(*(getattr(self, k)[idx] for k in OP_FIELDS), names=tuple(self.names[j] for j in idx))

    @property
    def units(self) -> np.ndarray:
        return OP_UNITS if len(self.names) == len(OP_NAMES) else units_of(self.names)

    @property
    def bytes(self) -> np.ndarray:
        return self.weight_bytes + self.act_bytes + self.kv_bytes


OP_FIELDS = tuple(k for k in Ops.__dataclass_fields__ if k != "names")  # the per-operator arrays


class NumberOps(Ops):
    """The Ops of one configuration whose entries are all Python floats (an estimate's lowering): `columns`, each
    field's values in OP_FIELDS' order as lower wrote them, which scalar_times times as they are, and the fields'
    arrays (what _pack gives: numpy's float64 of each entry) packed when one is first read."""

    def __init__(self, columns: tuple | None = None, names: tuple = OP_NAMES, **fields):
        if fields:  # dataclasses.replace's call: every field given, as Ops takes them (no columns: they may differ)
            Ops.__init__(self, **fields, names=names)
            return
        object.__setattr__(self, "columns", columns)  # the fields come when read (__getattr__)
        object.__setattr__(self, "names", names)

    def __getattr__(self, name: str):  # only where the instance holds no such attribute yet
        if name not in OP_FIELDS or "columns" not in self.__dict__:
            raise AttributeError(name)
        for k, row in zip(OP_FIELDS, np.array(self.columns, dtype=float)):
            object.__setattr__(self, k, row)
        return self.__dict__[name]


@functools.lru_cache(maxsize=64)
def units_of(names: tuple) -> np.ndarray:
    """The unit of each operator of `names` (shared between calls, like OP_UNITS: nothing writes into it)."""
    return np.array([UNIT_OF[n] for n in names], dtype=int)


def concat(*sets: Ops) -> Ops:
    """The operators of `sets` one after another (axis 0)."""
    return Ops(*(np.concatenate([getattr(s, k) for s in sets]) for k in OP_FIELDS),
               names=tuple(n for s in sets for n in s.names))


def lower(m: dict, f: dict, hw: dict, batch, new_tokens, context, tp, pp, decode: bool, dp=1.0, ep=1.0,
          busy_only: bool = False, coefficients: dict | None = None) -> Ops:
    """Operators of one forward step: `batch` sequences x `new_tokens` each, after `context`.

    `m`, `f`, `hw` are model, format and hardware columns (see columns.py) already gathered to the
    configurations' shape; `decode` switches MLA to its weight-absorbed form. `dp` and `ep` are the
    attention data-parallel groups and expert-parallel degree within the `tp` ranks of a replica.
    `busy_only`: the operators of no work and rows +0.0 or more and finite left out (no_work; where the workload is
    +0.0 or more and finite), which take +0.0 or -0.0 time wherever roofline.rates_finite holds.
    `coefficients`: the attention's pair coefficients (attention.attention_terms') where the caller holds them.
    On Python floats (an estimate's) the entries come from code compiled per spec (engine/specialize.py): the same.
    """
    spec = spec_of(m, f, hw, tp, pp, dp, ep, decode, batch, new_tokens, context) if type(decode) is bool else None
    if spec is None:
        return lower_formula(m, f, hw, batch, new_tokens, context, tp, pp, decode, dp, ep, busy_only, coefficients)
    return _packed(*_SPECIALIZED(spec, batch, new_tokens, context), busy_only)


def lower_formula(m: dict, f: dict, hw: dict, batch, new_tokens, context, tp, pp, decode: bool, dp=1.0, ep=1.0,
                  busy_only: bool = False, coefficients: dict | None = None) -> Ops:
    """lower with its formulas evaluated as they are (never compiled code)."""
    ops, plain = entries(m, f, hw, batch, new_tokens, context, tp, pp, decode, dp, ep, coefficients)
    return _packed(ops, plain, busy_only)


def _packed(ops: dict, plain: bool, busy_only: bool) -> Ops:
    """lower's Ops from its entries: with `busy_only` where `plain`, the operators with work alone."""
    if busy_only and plain:  # rows +0.0 or more and finite: the idle operators scalar_times times as their zeros too
        return _pack(ops, tuple(name for name in OP_NAMES if not (no_work(ops[name]) and all_plus(ops[name][5]))))
    return _pack(ops, OP_NAMES)


def entries(m: dict, f: dict, hw: dict, batch, new_tokens, context, tp, pp, decode: bool, dp=1.0, ep=1.0,
            coefficients: dict | None = None) -> tuple[dict, bool]:
    """lower's operators before packing, {name: its OP_FIELDS' values}, and whether the workload is +0.0 or more and
    finite and the layout positive (`plain`: then absent operators are exact zeros)."""
    n, c, tp, pp, dp, ep = map(as_float, (new_tokens, context, tp, pp, dp, ep))
    T = as_float(batch) * n  # tokens of the whole replica (MLPs and experts see them all)
    B = group_batch(batch, dp)  # sequences of the busiest attention group
    tp_all, tp = tp, tp / dp  # attention-side operators shard over the group's tp/dp ranks
    T_all, T = T, B * n
    h = m["h"]
    wb, ab, kvb = f["w_bits"] / 8, f["a_bits"] / 8, f["kv_bits"] / 8
    layers = m["layers"]
    Hq = m["heads"] / tp
    Hk = ceil(m["kv_heads"] / tp)
    mla = m["mla"] > 0
    d_qk, d_v, hd = m["d_qk"], m["d_v"], m["head_dim"]
    gated = 1.0 + m["gated"]
    ops: dict[str, tuple] = {}

    # prompts longer than the engine's tokens-per-step run as chunks, each re-reading the weights
    passes = 1.0 if decode else ceil(maximum(T, 1.0) / hw["prefill_chunk_tokens"])
    # an operator repeated in no layer of any configuration (a dense model's experts, a model without recurrent,
    # MLA or cross-attention layers) is zero work: +0.0, what its products with the count +0.0 give where the
    # workload is +0.0 or more and finite (-0.0 or NaN otherwise: then they are computed)
    plain = all_plus(T_all, B, n, c, passes) and all_positive(tp_all, dp, hw["dequant_tile_tokens"])

    def absent(count) -> bool:
        return plain and not any_nonzero(count)

    def matmul(name, tokens, k_in, n_out, count, weight_elems=None, kv=0.0, rows=None, w_bytes_per=None):
        if absent(count):
            ops[name] = _idle(count * passes, tokens if rows is None else rows, kv)
            return
        we = k_in * n_out if weight_elems is None else weight_elems
        wbytes = we * (wb if w_bytes_per is None else w_bytes_per) * count * passes
        flops = 2.0 * tokens * k_in * n_out * count
        act = tokens * (k_in + n_out) * ab * count
        r = tokens if rows is None else rows
        tiles = ceil(maximum(r, 1.0) / hw["dequant_tile_tokens"])
        dq = we * f["dequant_ops"] * tiles * count if w_bytes_per is None else 0.0
        ops[name] = (flops, wbytes, act, kv, count * passes, r, dq)

    def vector(name, elems, ops_per, count, bytes_per_elem):
        if absent(count):
            ops[name] = _idle(count, VECTOR_ROWS)
            return
        ops[name] = (elems * ops_per * count, 0.0, elems * bytes_per_elem * count, 0.0,
                     count, VECTOR_ROWS, 0.0)

    # embedding lookup (vocab-parallel) or ViT patch projection
    emb_read = T * h * f["emb_bits"] / 8 / tp
    if "bb" in m:  # a vision backbone's stem is a convolution: no embedding rows to read
        emb_read = where(m["bb"] > 0, 0.0, emb_read)
    patch = m["patch_dim"]
    ops["embedding"] = (2.0 * T * patch * h, patch * h * wb + emb_read, T * h * ab, 0.0,
                        ones_like(T), T, 0.0)
    # cross-attention layers attend to each sequence's V vision tokens; without image states engines
    # skip them whole (HF MllamaTextModel: 'For text-only path we should skip cross attention layers';
    # vLLM likewise): their norms and MLPs too
    xl, V = m["cross_layers"], m["cross_tokens"]
    xl_run = xl * (as_float(V) > 0)
    skipped = xl - xl_run
    vector("norms", T * h, NORM_OPS, m["norms"] - skipped * (m["norms"] - 1) / maximum(layers, 1.0), 2 * ab)

    # q/k/v projections (MLA: low-rank q and the shared kv latent) + writing new KV entries
    attn_l = m["attn_layers"]
    kv_out_std = 2 * Hk * hd
    kv_write = T * (where(mla, m["kv_lora"] + m["rope_dim"], kv_out_std) * kvb + m["dsa_key_bytes"]) * m["kv_layers"]
    q_w = where(m["q_lora"] > 0, h * m["q_lora"] + m["q_lora"] * Hq * d_qk, h * Hq * d_qk * (1 + m["q_gate"]))
    mla_w = q_w + h * (m["kv_lora"] + m["rope_dim"])
    # layers reusing an earlier layer's KV have no K/V projection: average the width over the layers
    own_kv = m["kv_layers"] / maximum(attn_l, 1.0)
    std_w = q_w + h * kv_out_std * own_kv
    qkv_w = where(mla, mla_w, std_w) + m["dsa_weights"]  # DSA's indexer projections, replicated over tp
    matmul("qkv_proj", T, h, qkv_w / h, attn_l, weight_elems=qkv_w, kv=kv_write)
    # the K/V outputs go to the cache (kv bytes above), not to activations: only x and q count here
    ops["qkv_proj"] = ops["qkv_proj"][:2] + (T * (h + Hq * d_qk) * ab * attn_l,) + ops["qkv_proj"][3:]

    # MLA: decompress the latent (prefill) or absorb W_UK/W_UV into q and o (decode)
    up_w = m["kv_lora"] * Hq * (m["nope_dim"] + d_v)
    ctx_tokens = B * (c + n)
    mla_layers = attn_l * m["mla"]
    if decode:
        matmul("mla_kv_up", T, m["kv_lora"], Hq * (m["nope_dim"] + d_v), mla_layers, weight_elems=up_w)
    else:
        matmul("mla_kv_up", ctx_tokens, m["kv_lora"], Hq * (m["nope_dim"] + d_v), mla_layers,
               weight_elems=up_w)

    ops.update(attention_terms(m, f, B, n, c, tp, decode, coefficients=coefficients))  # B, tp: an attention group's

    matmul("o_proj", T, Hq * d_v, h, attn_l)

    # cross-attention layers (Llama 3.2 Vision): q and o on the text tokens; k and v projected once, at
    # prefill, from each sequence's vision tokens and cached; the attention in cross_attention_term
    kv_cross = 2 * Hk * hd
    Tv = 0.0 * T if decode else B * V  # an attention group's vision tokens, projected at prefill
    kv_proj_layers = 0.0 * xl if decode else xl_run
    kv_proj_write = Tv * kv_cross * kvb * kv_proj_layers
    if absent(xl_run) and absent(kv_proj_layers):  # none run: the entries matmul and cross_attention_term give
        ops["cross_proj"] = _idle(xl_run * passes, T)
        ops["cross_kv_proj"] = _idle(kv_proj_layers * passes, Tv, kv_proj_write)
        ops["cross_attention"] = _idle(xl_run, cross_rows(n, Hq, Hk, decode))
    else:
        matmul("cross_proj", T, h, 2 * Hq * hd, xl_run, weight_elems=2 * h * Hq * hd)
        matmul("cross_kv_proj", Tv, h, kv_cross, kv_proj_layers, kv=kv_proj_write)
        ops["cross_attention"] = cross_attention_term(m, f, B, n, tp, decode, xl_run)

    # recurrent mixers (Gated DeltaNet, Mamba): heads split over tp like attention heads
    rec_l = m["rec_layers"]
    if absent(rec_l):  # none: the entries matmul and recurrent_scan give
        ops["ssm_in_proj"] = ops["ssm_out_proj"] = _idle(rec_l * passes, T)
        ops["ssm_scan"] = _idle(rec_l, scan_rows(m, B, n, decode))
    else:
        rec_in_w = (h * m["rec_in"] + m["rec_inner"]) / tp
        matmul("ssm_in_proj", T, h, rec_in_w / h, rec_l, weight_elems=rec_in_w)
        ops["ssm_scan"] = recurrent_scan(m, f, hw, B, n, tp, decode)
        matmul("ssm_out_proj", T, m["rec_out_in"] / tp, h, rec_l)

    # dense MLP: all tokens of the replica over all its ranks
    i_d = m["i_dense"] / tp_all
    dense_l = m["dense_layers"] - skipped
    matmul("mlp_up", T_all, h, gated * i_d, dense_l)
    vector("mlp_act", T_all * i_d, ACT_OPS, dense_l, (gated + 1) * ab)
    matmul("mlp_down", T_all, i_d, h, dense_l)

    # mixture of experts: router (per attention group), routed experts (distinct experts touched by
    # all the replica's tokens) + shared experts. A rank holds E/ep experts at 1/(tp/ep) of their width:
    # its expected share of touched expert weights is touched · width / tp whatever ep is
    E, k = m["experts"], m["top_k"]
    moe_l = m["moe_layers"]
    safe_E = maximum(E, 1.0)
    touched = where(E > 0, E * (1 - power(1 - k / safe_E, T_all)), 0.0) if any_nonzero(E) else 0.0
    # under EP the step waits for the rank whose experts drew the most tokens: `expert_imbalance`
    # times the mean, at most all of them (ep times the mean); its FLOPs and activations grow, the
    # touched weights are every rank's
    imb = where(ep > 1, minimum(hw.get("expert_imbalance", 1.0), ep), 1.0)
    k_r = k * imb
    rows_e = T_all * k_r / maximum(touched, 1.0)
    if absent(moe_l):  # a dense model: the entries matmul and vector give (the experts' rows)
        ops["moe_router"] = _idle(moe_l * passes, T)
        ops["moe_up"] = ops["moe_down"] = _idle(moe_l * passes, rows_e)
        ops["moe_act"] = _idle(moe_l, VECTOR_ROWS)
    else:
        i_e, S = m["i_expert"] / tp_all, m["shared"]
        # shared experts: split over tp, or under the all-to-all (DP attention + EP) whole on every rank,
        # each running its group's tokens (SGLang deepseek_v2.py: 'disable tp for shared experts when
        # enable deepep moe'): their FLOPs per device are those of width i/dp on the replica's tokens
        deepep = (dp > 1) & (ep > 1)
        i_s = where(deepep, m["i_shared"] / dp, m["i_shared"] / tp_all)  # for FLOPs and activations
        i_s_w = where(deepep, m["i_shared"], m["i_shared"] / tp_all)  # for the weights a rank reads
        matmul("moe_router", T, h, E, moe_l, w_bytes_per=2.0, rows=T)
        up_w = h * gated * (touched * i_e + S * i_s_w)
        up_out = gated * (k_r * i_e + S * i_s)
        matmul("moe_up", T_all, h, up_out, moe_l, weight_elems=up_w, rows=rows_e)
        vector("moe_act", T_all * (k_r * i_e + S * i_s), ACT_OPS, moe_l, (gated + 1) * ab)
        down_w = (touched * i_e + S * i_s_w) * h
        matmul("moe_down", T_all, k_r * i_e + S * i_s, h, moe_l, weight_elems=down_w, rows=rows_e)

    # LM head on the last position of each sequence (classifier for ViT, none for BERT)
    head_b = where(m["tied"] > 0, f["emb_bits"], f["head_bits"]) / 8
    head_out = m["head_out"] / tp
    has_head = as_float(m["head_out"] > 0)
    matmul("lm_head", B, h, head_out, has_head, w_bytes_per=head_b)

    ops.update(collectives(m, f, hw, T_all, tp_all, pp, dp, ep, has_head, plain))
    ops["dwconv"] = _idle(0.0, VECTOR_ROWS)  # depthwise convolutions: vision backbones only
    if "bb" in m and any_nonzero(m["bb"] > 0):
        _add_backbone(ops, m["bb"], batch, n, wb, ab, f["dequant_ops"], hw["dequant_tile_tokens"])
    return ops, plain


def _specialized_entries(spec: Spec, batch, new_tokens, context) -> tuple[dict, bool]:
    """entries at a Spec (spec_of's, tagged with `decode`): what engine/specialize.py compiles per spec."""
    m, f, hw, tp, pp, dp, ep, decode = spec.args
    return entries(m, f, hw, batch, new_tokens, context, tp, pp, decode, dp, ep)


_SPECIALIZED = Specialized(_specialized_entries)


def _idle(launches, rows, kv=0.0) -> tuple:
    """The entry (OP_FIELDS' order) of an operator no layer runs (lower's absent operators): zeros but its launches,
    its rows and the KV bytes it writes."""
    return (0.0, 0.0, 0.0, kv, launches, rows, 0.0)


def no_work(entry: tuple) -> bool:
    """An operator's fields (as lower holds them, in OP_FIELDS' order) with no work: its FLOPs, bytes, launches and
    dequantization work zeros (what lower gives an absent operator), its rows whatever they are."""
    return not any(any_nonzero(entry[i]) for i in _WORK)


_WORK = tuple(i for i, k in enumerate(OP_FIELDS) if k != "rows")  # no_work's fields: all but the rows


def _add_backbone(ops: dict, index, batch, n, wb, ab, dequant_ops, tile_tokens) -> None:
    """Add a hierarchical vision backbone's stages (engine/backbone_ops.py) to the generic terms (its
    stem conv and last norm); its matrix products take the backbone's rows."""
    on = np.asarray(index) > 0
    for name, t in backbone_ops(index, OP_NAMES, batch, n, wb, ab, dequant_ops, tile_tokens).items():
        old = ops[name]
        rows = where(on, t[5], old[5]) if UNIT_OF[name] == MATMUL else old[5]
        ops[name] = tuple(o + x for o, x in zip(old[:5], t[:5])) + (rows, old[6] + t[6])


def group_batch(batch, dp):
    """Sequences of the busiest of `dp` attention groups sharing `batch`: ceil(batch/dp) (the batch
    itself, fractional under pipeline micro-batches, without DP attention)."""
    b = as_float(batch)
    dp = as_float(dp)
    if type(b) is float and type(dp) is float:  # where's choice, the ceiling only where it is chosen
        return ceil(b / dp - 1e-9) if dp > 1 else b
    return where(dp > 1, ceil(b / dp - 1e-9), b)


def collectives(m: dict, f: dict, hw: dict, T, tp, pp, dp, ep, has_head, plain: bool = False) -> dict:
    """Communication of one step of T tokens (the replica's) on `tp` ranks with `dp` attention groups.

    Without DP attention: a ring all-reduce of T·h 16-bit activations after each mixer and each MLP
    (one per layer for parallel blocks), 2·(tp-1)/tp of the bytes on each rank's wire. With it: the
    attention groups' all-reduces over tp/dp ranks on T/dp tokens, and around each MLP layer either an
    all-gather + reduce-scatter of the groups' tokens or, for MoE layers under EP, the all-to-all
    dispatch (activation width) and combine (16-bit) of each rank's T/tp tokens to the distinct remote
    ranks holding their top-k experts ((tp-1)·(1-(1-1/ep)^k) of them, uniform routing). `plain`: T is +0.0 or
    more and finite, tp and dp positive (lower's absent operators): without EP the all-to-all's bytes are then +0.0
    where tp >= 1 (the product below).
    """
    h = m["h"]
    ab = f["a_bits"] / 8
    a_tp = tp / dp
    Ta = group_batch(T, dp)  # the busiest attention group's tokens
    layers, mlp_l, moe_l = m["layers"], m["mlp_layers"], m["moe_layers"]
    split = as_float(dp > 1)
    # all-reduces: every mixer and MLP without DP attention; under it only the attention groups' mixers
    n_mix = layers + 1 + has_head  # each mixer, the vocab-parallel embedding and the LM head
    n_ar_nodp = (tp > 1) * (n_mix + mlp_l - m["parallel_block"] * layers)
    n_ar_dp = (a_tp > 1) * n_mix
    n_ar = where(split > 0, n_ar_dp, n_ar_nodp)
    group = where(split > 0, a_tp, tp)
    wire = n_ar * Ta * h * WIRE_BYTES * 2 * (group - 1) / group
    # in-switch reduction (NVLS) where the engine uses it and the group stays in the domain: the bus
    # bandwidth gain over ring the device states for its full domain (`interconnect.in_switch_allreduce`),
    # none at 4 GPUs and growing linearly to the domain (nccl#1455: 370 GB/s at 4 GPUs, 420-480 at 5-8)
    D = hw.get("domain", np.inf)
    grows = clip((group - 4.0) / maximum(where(isfinite(D), D, 8.0) - 4.0, 1.0), 0.0, 1.0)
    gain = 1.0 + (hw.get("nvls", 1.0) - 1.0) * grows
    nvls = where((hw.get("allreduce_nvls", 0.0) > 0) & (group <= D), gain, 1.0)
    wire = wire / nvls
    out = {"tp_allreduce": (0.0, 0.0, cross_domain(wire, group, hw, ring=True), 0.0, n_ar, T, 0.0)}
    # under DP attention: all-gather + reduce-scatter around dense MLPs (and MoE layers without EP)
    expert_par = (ep > 1) & (split > 0)
    n_ag = split * 2 * (m["dense_layers"] + where(expert_par, 0.0, moe_l))
    ag = n_ag * T * h * WIRE_BYTES * (dp - 1) / dp
    out["dp_allgather"] = (0.0, 0.0, cross_domain(ag, tp, hw, ring=True), 0.0, n_ag, T, 0.0)
    # EP all-to-all (dispatch + combine) of MoE layers under DP attention
    k = m["top_k"]
    # a token's k experts sit in ep(1-(1-1/ep)^k) of the ep groups, each of tp/ep ranks; its own
    # group is among them with probability 1-(1-1/ep)^k: (tp-1)(1-(1-1/ep)^k) remote ranks
    n_a2a = expert_par * 2 * moe_l
    if plain and not any_nonzero(expert_par) and not any_nonzero(tp < 1):  # +0.0 bytes, as the product gives
        a2a = 0.0
    else:
        remote = (tp - 1) * (1 - power(1 - 1 / maximum(ep, 1.0), k))
        imb = where(ep > 1, minimum(hw.get("expert_imbalance", 1.0), ep), 1.0)  # the busiest rank's share
        a2a = expert_par * moe_l * T / tp * remote * h * (ab + WIRE_BYTES) * imb
    out["ep_alltoall"] = (0.0, 0.0, cross_domain(a2a, tp, hw, ring=False), 0.0, n_a2a, T, 0.0)
    n_p2p = pp - 1
    out["pp_sendrecv"] = (0.0, 0.0, n_p2p * Ta * h * WIRE_BYTES, 0.0, n_p2p, T, 0.0)
    return out


def cross_domain(wire, group, hw: dict, ring: bool):
    """Wire bytes in scale-up-link equivalents for a collective over `group` ranks.

    Within the device's scale-up domain (NVLink, Infinity Fabric) bytes move at the scale-up rate.
    Past it, NCCL runs one ring per NIC, so the D NICs of a domain carry a ring collective's
    cross-domain hops in parallel: its bytes slow by max(1, r/D), r = scale-up / scale-out rate. Ring
    bus bandwidth across nodes is the sum of a node's NICs: NVIDIA in nccl-tests#252 (NCCL_ALGO=RING,
    ~95 GB/s bus bandwidth: 'looks great with ~24GB/s per NIC'), nccl#495 (8 x 100 Gb/s NICs, ~600
    Gb/s 'roughly matching our expectation'). An all-to-all sends (g − D)/(g − 1) of each rank's
    bytes out of the domain over the rank's own NIC, in parallel with the rest.
    """
    D = hw.get("domain", np.inf)
    g = as_float(group)
    if not any_nonzero(g > D):  # every collective within its scale-up domain: the bytes as they are
        return wire
    out_bw = as_float(hw.get("scale_out", 0.0))
    slow = where(out_bw > 0, hw["interconnect"] / 2 / maximum(out_bw, 1.0), 1.0)
    spans = g > D
    with np.errstate(divide="ignore", invalid="ignore"):
        out_share = where(spans, (g - D) / maximum(g - 1, 1.0), 0.0)
    a2a = maximum(1 - out_share, out_share * slow)
    ring_factor = maximum(1.0, slow / where(isfinite(D), D, 1.0))
    factor = where(spans, ring_factor if ring else a2a, 1.0)
    return wire * factor


def recurrent_scan(m: dict, f: dict, hw: dict, B, n, tp, decode: bool) -> tuple:
    """The scan of the recurrent layers for n new tokens of B sequences (context-independent).

    FLOPs: T · (scan FLOPs per token + 2 · conv channels · kernel) / tp per layer. Bytes: the state
    (state_bits) and conv state (16-bit) read and written once per decode step, or once per chunk
    when prefilling (chunked kernels write each chunk's state), plus the token activations.
    """
    chunk = m["rec_chunk"]
    rows = scan_rows(m, B, n, decode)
    T = B * n
    ab = f["a_bits"] / 8
    rec_l = m["rec_layers"]
    per_tok = m["rec_decode_flops"] if decode else m["rec_prefill_flops"]
    flops = T * (per_tok + 2.0 * m["rec_conv"] * m["rec_kernel"]) / tp * rec_l
    state_b = (m["rec_state"] * hw["state_bits"] / 8 + m["rec_conv"] * (m["rec_kernel"] - 1) * 2.0) / tp
    visits = n if decode else where(chunk > 0, ceil(n / maximum(chunk, 1.0)), minimum(n, 1.0))
    state_io = B * visits * 2.0 * state_b * rec_l
    act = T * (m["rec_in"] + m["rec_out_in"]) / tp * ab * rec_l
    # chunked scans (SSD, DeltaNet) run on the tensor units; Mamba-1's scan is FP32 vector work,
    # timed on the vector peak through the same field as dequantization work
    tensor = m["rec_tensor"]
    return (flops * tensor, 0.0, act, state_io, rec_l, rows, flops * (1 - tensor))


def scan_rows(m: dict, B, n, decode: bool):
    """The recurrent scan's rows: one per step decoding (B·n's shape), its chunk's tokens prefilling (n, at most the
    chunk; 1 without chunks)."""
    chunk = m["rec_chunk"]
    return ones_like(B * n) if decode else minimum(n, where(chunk > 0, chunk, 1.0))


def _pack(ops: dict, names: tuple) -> Ops:
    """Struct of arrays (field, operator, *configurations) from per-operator tuples, each entry written once
    (numpy's zeros would clear the whole array first: in a sweep's retained heap calloc clears it by hand, the
    same bytes again)."""
    rows = [ops[name] for name in names]
    kinds = set(map(type, chain.from_iterable(rows)))
    if kinds == FLOATS or (Traced in kinds and set(map(type, map(value_of, chain.from_iterable(rows)))) == FLOATS):
        return NumberOps(tuple(zip(*rows)), names)  # an estimate's (or its recording's): packed only where read
    table = _numbers(rows)
    if table is not None:  # one configuration: every entry a number, one conversion
        return Ops(*table.T, names=names)
    # the arrays' shapes (scalars broadcast): one per distinct shape, not one np.shape call per entry
    shape = np.broadcast_shapes(*{x.shape for v in ops.values() for x in v if type(x) is np.ndarray})
    if len(names) == 1:  # one operator (the decode's attention, most models): each value is its field, no copy
        return Ops(*(_field(v, shape) for v in ops[names[0]]), names=names)
    out = np.empty((len(OP_FIELDS), len(names)) + shape)
    for j, name in enumerate(names):
        for i, value in enumerate(ops[name]):
            out[i, j] = value
    return Ops(*out, names=names)


def _numbers(rows: list) -> np.ndarray | None:
    """The operators' entries (a tuple of OP_FIELDS' values each) as an (operator, field) float array where each is a
    number or a 0-d array, else None: numpy refuses a mix of numbers and arrays of configurations before it copies
    anything."""
    try:
        table = np.array(rows, dtype=float)
    except ValueError:
        return None
    return table if table.ndim == 2 else None



def _field(value, shape: tuple) -> np.ndarray:
    """One operator's field of `shape` configurations, shaped (1, *shape): a view of the value where it is
    a float array of that shape (nothing writes into Ops fields: a field may share a column's memory), else
    as _pack writes it. Left writable: numba compiles a kernel once per pattern of read-only arguments."""
    if type(value) is np.ndarray and value.shape == shape and value.dtype == np.float64:
        return value.reshape((1,) + shape)
    out = np.empty((1,) + shape)
    out[0] = value
    return out


def lower_attention(m: dict, f: dict, B, n, c, tp, decode: bool, names: tuple = ATTENTION_OPS,
                    coefficients: dict | None = None) -> Ops:
    """Only the attention operators (the part of a step that depends on the context), those of `names`
    (`coefficients`: attention_terms')."""
    return attention_ops(attention_terms(m, f, B, n, c, tp, decode, names, coefficients), names)


def attention_ops(terms: dict, names: tuple) -> Ops:
    """The attention operators of `names` from their terms (attention.attention_terms' or terms_of's dict)."""
    return _pack(terms, names)
