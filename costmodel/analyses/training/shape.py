"""What training cost depends on in a model: matmul parameters per token, attention width, layers.

From a catalogue model (spec/parameters.py) or from the counts a publication states (parameters,
layers, hidden size), as for the GPT shapes of the Megatron-LM tables.
"""
from __future__ import annotations

from dataclasses import dataclass

from costmodel.spec.model import Model
from costmodel.spec.parameters import active_param_count, param_breakdown, param_count


@dataclass(frozen=True)
class TrainShape:
    name: str
    params: float  # every parameter (all experts)
    matmul_active: float  # parameters a token multiplies through (LM head included, input embedding not)
    expert_params: float  # routed experts, all of them
    expert_active: float  # routed experts a token uses (top-k)
    layers: int  # every block (attention, recurrent or both): activations and pipeline stages
    hidden: int
    heads: int
    attn_width: float  # query heads x head dim: the width of QK^T and PV
    kv_width: float  # keys + values per token per layer (context parallelism exchanges them)
    vocab: int
    top_k: int = 0
    attn_layers: int = -1  # layers with softmax attention (-1: all)
    moe_layers: int = 0  # layers with routed experts
    experts: int = 0
    kv_heads: int = 0
    mlp_active: float = 0.0  # MLP (dense, shared and the token's routed experts) parameters a token multiplies through

    @property
    def attention_layers(self) -> int:
        return self.layers if self.attn_layers < 0 else self.attn_layers

    @property
    def is_moe(self) -> bool:
        return self.expert_params > 0


def shape_of_model(m: Model) -> TrainShape:
    """Counts of a catalogue model: the input embedding is a lookup, not a matmul; a tied LM head
    multiplies through the embedding matrix."""
    b = param_breakdown(m)
    active = active_param_count(m) - b["embedding"]
    if m.tied_embeddings:
        active += m.vocab_size * m.hidden_size
    if m.mla is not None:
        a = m.mla
        width = m.heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim) / 2
        kv = a.kv_lora_rank + a.qk_rope_head_dim
    else:
        width = m.heads * m.head_dim
        kv = 2 * m.kv_heads * m.head_dim
    return TrainShape(m.id, param_count(m), active, b["experts"],
                      b["experts_active"], m.layers, m.hidden_size, m.heads, width, kv, m.vocab_size,
                      m.moe.top_k if m.moe else 0, m.attention_layers, m.moe_layers if m.moe else 0,
                      m.moe.experts if m.moe else 0, m.kv_heads,
                      b["mlp"] + b["experts_active"] + b["shared_experts"])


def shape_from_counts(name: str, params: float, layers: int, hidden: int, vocab: int, heads: int = 0) -> TrainShape:
    """A dense GPT-style model known by its counts (multi-head attention over the hidden width, LM head
    tied to the embedding as in Megatron-LM's GPT): every parameter is a matmul parameter."""
    return TrainShape(name, float(params), float(params), 0.0, 0.0, int(layers), int(hidden), int(heads or 0),
                      float(hidden), 2.0 * hidden, int(vocab), kv_heads=int(heads or 0),
                      mlp_active=2.0 / 3.0 * (float(params) - float(vocab) * hidden))  # 8h² of a 12h² GPT layer
