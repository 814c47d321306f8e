"""Model architecture specs: a frozen `Model` per architecture, from YAML or HF config.json."""
from __future__ import annotations

import functools

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from costmodel.spec.catalog import Entry
from costmodel.spec.backbone import Backbone
from costmodel.spec.mixers import GatedDeltaNet, Mamba
from costmodel.spec.vision import VisionTower
from costmodel.errors import SpecError

ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "gelu_pytorch_tanh", "gelu_new", "relu", "swiglu")
NORMS = ("rmsnorm", "layernorm")
POSITIONS = ("rope", "learned", "alibi", "none")
# what mixes tokens in each layer: full (global) attention, sliding-window (local) attention,
# chunked local attention (Llama 4), Gated DeltaNet linear attention, a Mamba selective scan, or
# cross-attention to an image's vision tokens (Llama 3.2 Vision: no KV of the text's own)
LAYER_TYPES = ("global", "local", "chunked", "linear", "mamba", "cross")
RECURRENT = ("linear", "mamba")


@dataclass(frozen=True)
class MoE:
    experts: int
    top_k: int
    expert_intermediate_size: int
    shared_experts: int = 0
    shared_intermediate_size: int = 0  # width of each shared expert
    dense_layers: int = 0  # leading layers with a dense MLP instead of experts
    dense_intermediate_size: int = 0


@dataclass(frozen=True)
class MLA:
    """DeepSeek multi-head latent attention ranks (arXiv 2405.04434)."""

    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    q_lora_rank: int = 0  # 0: queries projected directly from the hidden state


@dataclass(frozen=True)
class SparseAttention:
    """DeepSeek Sparse Attention (DSA, DeepSeek-V3.2): a lightning indexer of `index_heads` x
    `index_head_dim` FP8 heads scores every cached key; the main attention reads only the top_k."""

    index_heads: int
    index_head_dim: int
    top_k: int

    def params(self, hidden: int, q_lora_rank: int) -> int:
        """wq_b (q latent -> heads x dim), wk (h -> dim), weights_proj (h -> heads), k LayerNorm
        (DeepSeek-V3.2-Exp inference/model.py, class Indexer)."""
        q_in = q_lora_rank or hidden
        return (q_in * self.index_heads * self.index_head_dim + hidden * self.index_head_dim
                + hidden * self.index_heads + 2 * self.index_head_dim)

    @property
    def key_bytes(self) -> float:
        """Indexer key cache per token and layer: FP8 key + one FP32 scale per 128 dims."""
        return self.index_head_dim + 4.0 * -(-self.index_head_dim // 128)


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    kind: str  # decoder | encoder
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tied_embeddings: bool = False
    activation: str = "silu"
    gated_mlp: bool = True
    norm: str = "rmsnorm"
    norms_per_layer: int = 2
    position: str = "rope"
    max_position_embeddings: int = 0
    attention_bias: str = "none"  # none | qkv | all
    mlp_bias: bool = False
    lm_head_bias: bool = False
    parallel_block: bool = False
    sliding_window: int = 0
    attention_pattern: tuple = ()  # layer types (LAYER_TYPES), repeated over the layers
    attention_chunk: int = 0  # tokens per chunk of chunked local attention layers
    attention_output_gate: bool = False  # q_proj also emits a sigmoid gate per head (Qwen3-Next)
    kv_shared_layers: int = 0  # last layers that reuse an earlier layer's KV (no K/V of their own)
    mtp_layers: int = 0  # multi-token-prediction modules (one decoder layer each), loaded for --mtp only
    linear_attention: GatedDeltaNet | None = None
    mamba: Mamba | None = None
    moe: MoE | None = None
    mla: MLA | None = None
    sparse_attention: SparseAttention | None = None
    vision_tower: VisionTower | None = None  # a VLM's image encoder and projector (spec/vision.py)
    backbone: Backbone | None = None  # a hierarchical vision backbone's stages (spec/backbone.py; layers 0)
    type_vocab_size: int = 0
    pooler: bool = False
    image_size: int = 0
    patch_size: int = 0
    channels: int = 0
    num_classes: int = 0
    published_params: float | None = None
    published_active_params: float | None = None
    # how the publisher counts active parameters: "all", "without_input_embedding" (OpenAI's gpt-oss
    # card) or "without_embeddings" (neither the input embedding nor the LM head)
    active_params_convention: str = "all"
    aliases: tuple = ()
    notes: str = ""
    file: str = ""
    sources: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_encoder(self) -> bool:
        return self.kind == "encoder"

    @property
    def is_vision(self) -> bool:
        return self.patch_size > 0

    @functools.cached_property
    def layer_types(self) -> tuple:
        """The token mixer of every layer: the pattern repeated, or all local (a window and no
        pattern, Mistral 7B) or all global (computed once per spec: it is frozen)."""
        pat = self.attention_pattern or (("local",) if self.sliding_window else ("global",))
        return tuple(pat[i % len(pat)] for i in range(self.layers))

    def _count(self, kind: str, kv_only: bool = False) -> int:
        types = self.layer_types[:self.layers - self.kv_shared_layers] if kv_only else self.layer_types
        return sum(1 for t in types if t == kind)

    @property
    def local_layers(self) -> int:
        """Layers that attend over a sliding window of `sliding_window` tokens."""
        return self._count("local")

    @property
    def global_layers(self) -> int:
        return self._count("global")

    @property
    def chunked_layers(self) -> int:
        """Layers whose tokens attend only within their `attention_chunk`-token chunk (Llama 4)."""
        return self._count("chunked")

    @property
    def attention_layers(self) -> int:
        return self.global_layers + self.local_layers + self.chunked_layers

    @property
    def cross_layers(self) -> int:
        """Layers whose queries attend to the request's vision tokens (their keys and values are
        projected once from the image features and cached per sequence, whatever the text length)."""
        return self._count("cross")

    @property
    def recurrent_layers(self) -> int:
        """Layers with a fixed-size recurrent state (Gated DeltaNet or Mamba) instead of a KV cache."""
        return self._count("linear") + self._count("mamba")

    @property
    def recurrent_mixer(self):
        return self.linear_attention or self.mamba

    @property
    def kv_global_layers(self) -> int:
        """Global-attention layers that store KV (layers sharing an earlier layer's KV store none)."""
        return self._count("global", kv_only=True)

    @property
    def kv_local_layers(self) -> int:
        return self._count("local", kv_only=True)

    @property
    def kv_chunked_layers(self) -> int:
        return self._count("chunked", kv_only=True)

    @property
    def moe_layers(self) -> int:
        return 0 if self.moe is None else self.layers - self.moe.dense_layers

    @property
    def dense_layers(self) -> int:
        """Layers with a dense MLP (none in attention-free Mamba stacks: intermediate_size 0)."""
        return self.layers - self.moe_layers if self.dense_intermediate > 0 else 0

    @property
    def dense_intermediate(self) -> int:
        if self.moe is not None and self.moe.dense_intermediate_size:
            return self.moe.dense_intermediate_size
        return self.intermediate_size

    @property
    def kv_elements_per_token_per_layer(self) -> int:
        """Cached elements per token per layer: 2·kv_heads·head_dim, or MLA's latent + rope key."""
        if self.mla is not None:
            return self.mla.kv_lora_rank + self.mla.qk_rope_head_dim
        return 2 * self.kv_heads * self.head_dim

    @property
    def vision_tokens(self) -> int:
        """Tokens per image for a ViT: patches plus the class token (a backbone's stem: patches only)."""
        if not self.is_vision:
            return 0
        return (self.image_size // self.patch_size) ** 2 + (0 if self.backbone else 1)


def vision_encoder(m: Model) -> Model:
    """A VLM's vision tower as a ViT encoder spec (no class token, no classifier head) for the
    operators and the parameter count."""
    t = m.vision_tower
    # a windowed tower: its layers attend within `window` patches, but for the full-attention ones
    pattern = tuple("global" if i in t.full_layers else "local" for i in range(t.layers)) if t.window else ()
    return Model(id=f"{m.id}:vision", name=f"{m.id} vision tower", kind="encoder", layers=t.layers,
                 hidden_size=t.hidden_size, heads=t.heads, kv_heads=t.heads, head_dim=t.hidden_size // t.heads,
                 intermediate_size=t.intermediate_size, vocab_size=0, gated_mlp=t.gated_mlp,
                 activation="silu" if t.gated_mlp else "gelu", norm=t.norm, position="rope", attention_bias="all",
                 mlp_bias=True, image_size=t.image_size, patch_size=t.patch_size, channels=t.channels, num_classes=0,
                 sliding_window=t.window, attention_pattern=pattern)


def _backbone(e: Entry) -> Backbone:
    """A hierarchical vision backbone's `backbone:` block (spec/backbone.py): the stem is the model's
    `vision:` patch embedding at `hidden_size` = the first stage's width."""
    dims, depths, blocks = (e.get(f"backbone.{k}") for k in ("dims", "depths", "blocks"))
    for key, value in (("dims", dims), ("depths", depths)):
        if not isinstance(value, list) or not value or not all(isinstance(x, int) and not isinstance(x, bool)
                                                                and x > 0 for x in value):
            raise SpecError(f"{e.where('backbone.' + key)}: got {value!r}; expected a list of positive integers, "
                            f"one per stage")
    if not isinstance(blocks, list) or any(b not in ("evss", "ir") for b in blocks):
        raise SpecError(f"{e.where('backbone.blocks')}: got {blocks!r}; expected a list of evss or ir, one per stage")
    if not len(dims) == len(depths) == len(blocks):
        raise SpecError(f"{e.where('backbone')}: dims, depths and blocks have {len(dims)}, {len(depths)} and "
                        f"{len(blocks)} entries; expected one per stage each")
    if dims[0] != _int(e, "hidden_size"):
        raise SpecError(f"{e.where('hidden_size')}: must equal the first stage's width backbone.dims[0] ({dims[0]})")
    ratio = e.get("backbone.ssm_ratio", 2.0)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or ratio <= 0:
        raise SpecError(f"{e.where('backbone.ssm_ratio')}: got {ratio!r}; expected a positive number")
    return Backbone(dims=tuple(dims), depths=tuple(depths), blocks=tuple(blocks),
                    patch_size=_int(e, "vision.patch_size"), channels=_int(e, "vision.channels"),
                    image_size=_int(e, "vision.image_size"), num_classes=_int(e, "vision.num_classes"),
                    d_state=_int(e, "backbone.d_state", 16), ssm_ratio=float(ratio),
                    d_conv=_int(e, "backbone.d_conv", 3), directions=_int(e, "backbone.directions", 4),
                    scan_step=_int(e, "backbone.scan_step", 2), ir_expand=_int(e, "backbone.ir_expand", 4),
                    se_ratio=float(e.get("backbone.se_ratio", 0.125)))


def _vision_tower(e: Entry) -> VisionTower:
    """A VLM's `vision_tower:` block (spec/vision.py)."""
    proj = e.get("vision_tower.projector") or []
    if not isinstance(proj, list) or not all(isinstance(x, int) and x > 0 for x in proj) or len(proj) == 1:
        raise SpecError(f"{e.where('vision_tower.projector')}: got {proj!r}; expected the widths of the projector's "
                        f"linears as a list of at least two positive integers ([merge² x hidden, ..., hidden_size])")
    hidden, merge = _int(e, "vision_tower.hidden_size"), _int(e, "vision_tower.merge", 1)
    features = _int(e, "vision_tower.feature_layers", 1)
    if proj and proj[0] != merge * merge * hidden * features:
        raise SpecError(f"{e.where('vision_tower.projector')}: starts at {proj[0]}; expected merge² x hidden x "
                        f"feature_layers = {merge * merge * hidden * features}")
    if proj and proj[-1] != _int(e, "hidden_size"):
        raise SpecError(f"{e.where('vision_tower.projector')}: ends at {proj[-1]}; expected the model's hidden_size "
                        f"({_int(e, 'hidden_size')})")
    window = _int(e, "vision_tower.window", 0, 0)
    full = e.get("vision_tower.full_layers") or []
    layers = _int(e, "vision_tower.layers")
    if not isinstance(full, list) or not all(isinstance(i, int) and 0 <= i < layers for i in full) or (full and not window):
        raise SpecError(f"{e.where('vision_tower.full_layers')}: got {full!r}; expected the indexes (0 .. {layers - 1}) "
                        f"of a windowed tower's full-attention layers, with vision_tower.window > 0")
    heads = _int(e, "vision_tower.heads")
    if hidden % heads:
        raise SpecError(f"{e.where('vision_tower.heads')}: {heads} does not divide the tower's hidden_size ({hidden})")
    return VisionTower(layers=_int(e, "vision_tower.layers"), hidden_size=hidden, heads=heads,
                       intermediate_size=_int(e, "vision_tower.intermediate_size"),
                       patch_size=_int(e, "vision_tower.patch_size"), image_size=_int(e, "vision_tower.image_size"),
                       merge=merge, projector=tuple(proj), gated_mlp=bool(e.get("vision_tower.gated_mlp", False)),
                       feature_layers=features, max_tiles=_int(e, "vision_tower.max_tiles", 0, 0),
                       cls_token=bool(e.get("vision_tower.cls_token", False)),
                       global_tile=bool(e.get("vision_tower.global_tile", False)),
                       channels=_int(e, "vision_tower.channels", 3), window=window, full_layers=tuple(full),
                       norm=_choice(e, "vision_tower.norm", NORMS, "layernorm"))


def _int(e: Entry, name: str, default: int | None = None, minimum: int = 1) -> int:
    value = e.get(name, default)
    if value is None:
        raise SpecError(f"{e.where(name)}: missing; expected an integer >= {minimum}")
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SpecError(f"{e.where(name)}: got {value!r}; expected an integer >= {minimum}")
    return value


def _choice(e: Entry, name: str, choices: tuple, default: str) -> str:
    value = e.get(name, default)
    if value not in choices:
        raise SpecError(f"{e.where(name)}: got {value!r}; expected one of {', '.join(choices)}")
    return value


ACTIVE_CONVENTIONS = ("all", "without_input_embedding", "without_embeddings")


def _convention(e: Entry) -> str:
    value = str(e.get("active_params_convention") or "all")
    if value not in ACTIVE_CONVENTIONS:
        raise SpecError(f"{e.where('active_params_convention')}: got {value!r}; expected one of "
                        f"{', '.join(ACTIVE_CONVENTIONS)}")
    return value


def _count(e: Entry, name: str) -> tuple[float | None, str | None]:
    node = e.get(name)
    if node is None:
        return None, None
    if not isinstance(node, dict) or "value" not in node:
        raise SpecError(f"{e.where(name)}: expected {{value: <count>, source: ...}}")
    try:
        value = float(node["value"])  # YAML 1.1 reads '8.03e9' as a string
    except (TypeError, ValueError):
        raise SpecError(f"{e.where(name)}: got {node['value']!r}; expected a number like 8.03e9") from None
    return value, e.source_of(name, node)


def _mixers(e: Entry, hidden: int) -> tuple[tuple, GatedDeltaNet | None, Mamba | None]:
    """The layer pattern (`layer_pattern`, or its older name `attention_pattern`) and the recurrent
    mixers it names, each required exactly when the pattern uses it."""
    key = "layer_pattern" if e.get("layer_pattern") is not None else "attention_pattern"
    raw = e.get(key) or ()
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        raise SpecError(f"{e.where(key)}: got {raw!r}; expected a list of {', '.join(LAYER_TYPES)}")
    pattern = tuple(str(p) for p in raw)
    bad = [p for p in pattern if p not in LAYER_TYPES]
    if bad:
        raise SpecError(f"{e.where(key)}: got {bad[0]!r}; expected a list of {', '.join(LAYER_TYPES)}")
    linear = mamba = None
    if e.get("linear_attention"):
        linear = GatedDeltaNet(
            key_heads=_int(e, "linear_attention.key_heads"),
            value_heads=_int(e, "linear_attention.value_heads"),
            key_head_dim=_int(e, "linear_attention.key_head_dim"),
            value_head_dim=_int(e, "linear_attention.value_head_dim"),
            conv_kernel=_int(e, "linear_attention.conv_kernel", 4),
        )
        if linear.value_heads % linear.key_heads:
            raise SpecError(f"{e.where('linear_attention.key_heads')}: {linear.key_heads} does not divide "
                            f"value_heads ({linear.value_heads})")
    if e.get("mamba"):
        version = _int(e, "mamba.version", 2)
        if version not in (1, 2):
            raise SpecError(f"{e.where('mamba.version')}: got {version}; expected 1 or 2")
        d_inner = _int(e, "mamba.expand", 2) * hidden
        mamba = Mamba(version=version, d_inner=d_inner, d_state=_int(e, "mamba.d_state"),
                      conv_kernel=_int(e, "mamba.d_conv", 4), head_dim=_int(e, "mamba.head_dim", 64),
                      groups=_int(e, "mamba.groups", 1),
                      dt_rank=_int(e, "mamba.dt_rank", -(-hidden // 16), 0),
                      conv_bias=bool(e.get("mamba.conv_bias", True)), dt_norms=bool(e.get("mamba.dt_norms", False)))
        if version == 2 and d_inner % mamba.head_dim:
            raise SpecError(f"{e.where('mamba.head_dim')}: {mamba.head_dim} does not divide d_inner "
                            f"(expand x hidden_size = {d_inner})")
    if "cross" in pattern and not e.get("vision_tower"):
        raise SpecError(f"{e.where(key)}: has 'cross' layers but no 'vision_tower:' block whose image "
                        f"features they attend to")
    for kind, block, name in (("linear", linear, "linear_attention"), ("mamba", mamba, "mamba")):
        if kind in pattern and block is None:
            raise SpecError(f"{e.where(key)}: has '{kind}' layers but no '{name}:' block describing them")
        if block is not None and kind not in pattern:
            raise SpecError(f"{e.where(name)}: given, but {key} has no '{kind}' layers")
    return pattern, linear, mamba


def model_from_entry(e: Entry) -> Model:
    """Validate one catalogue entry into a `Model`."""
    sources = {"architecture": e.source_of("source", e.data)}
    hidden = _int(e, "hidden_size")
    heads = _int(e, "heads")
    backbone = _backbone(e) if e.get("backbone") else None
    layers = _int(e, "layers", None, 0 if backbone else 1)
    if backbone and (layers or e.get("kind") != "encoder"):
        raise SpecError(f"{e.where('backbone')}: a vision backbone is costed by its stages alone: give kind: encoder "
                        f"and layers: 0 (got kind {e.get('kind')!r}, layers {layers})")
    kv_heads = _int(e, "kv_heads", heads)
    if heads % kv_heads:
        raise SpecError(f"{e.where('kv_heads')}: {kv_heads} does not divide heads ({heads})")
    bias = e.get("attention_bias", False)
    attention_bias = {False: "none", True: "all", "qkv": "qkv", "all": "all", "none": "none"}.get(bias)
    if attention_bias is None:
        raise SpecError(f"{e.where('attention_bias')}: got {bias!r}; expected true, false or qkv")
    pattern, linear, mamba = _mixers(e, hidden)
    moe = mla = None
    if e.get("moe"):
        moe = MoE(
            experts=_int(e, "moe.experts"),
            top_k=_int(e, "moe.top_k"),
            expert_intermediate_size=_int(e, "moe.expert_intermediate_size"),
            shared_experts=_int(e, "moe.shared_experts", 0, 0),
            shared_intermediate_size=_int(e, "moe.shared_intermediate_size", 0, 0),
            dense_layers=_int(e, "moe.dense_layers", 0, 0),
            dense_intermediate_size=_int(e, "moe.dense_intermediate_size", 0, 0),
        )
        if moe.top_k > moe.experts:
            raise SpecError(f"{e.where('moe.top_k')}: {moe.top_k} exceeds experts ({moe.experts})")
        if moe.dense_layers > layers:
            raise SpecError(f"{e.where('moe.dense_layers')}: {moe.dense_layers} exceeds layers ({layers})")
    if e.get("mla"):
        mla = MLA(
            kv_lora_rank=_int(e, "mla.kv_lora_rank"),
            qk_nope_head_dim=_int(e, "mla.qk_nope_head_dim"),
            qk_rope_head_dim=_int(e, "mla.qk_rope_head_dim"),
            v_head_dim=_int(e, "mla.v_head_dim"),
            q_lora_rank=_int(e, "mla.q_lora_rank", 0, 0),
        )
    tower = _vision_tower(e) if e.get("vision_tower") else None
    dsa = None
    if e.get("sparse_attention"):
        dsa = SparseAttention(index_heads=_int(e, "sparse_attention.index_heads"),
                              index_head_dim=_int(e, "sparse_attention.index_head_dim"),
                              top_k=_int(e, "sparse_attention.top_k"))
    window = _int(e, "sliding_window", 0, 0)
    if "local" in pattern and not window:
        raise SpecError(f"{e.where('layer_pattern')}: has 'local' layers but no sliding_window; "
                        f"give the window in tokens")
    chunk = _int(e, "attention_chunk", 0, 0)
    if "chunked" in pattern and not chunk:
        raise SpecError(f"{e.where('layer_pattern')}: has 'chunked' layers but no attention_chunk; "
                        f"give the chunk in tokens")
    shared = _int(e, "kv_shared_layers", 0, 0)
    if shared and shared >= layers:
        raise SpecError(f"{e.where('kv_shared_layers')}: {shared} must be below layers ({layers}): "
                        f"the first layer stores its own KV")
    published, src = _count(e, "published_params")
    if published is None:
        raise SpecError(f"{e.where('published_params')}: missing; expected {{value: <count>, source: ...}}")
    sources["published_params"] = src
    active, src = _count(e, "published_active_params")
    if src:
        sources["published_active_params"] = src
    kind = _choice(e, "kind", ("decoder", "encoder"), "decoder")
    return Model(
        id=e.id.lower(),
        name=str(e.require("name", str, "the model's name")),
        kind=kind,
        layers=layers,
        hidden_size=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=_int(e, "head_dim", hidden // heads),
        intermediate_size=_int(e, "intermediate_size", None, 0 if (mamba or moe or backbone) else 1),
        vocab_size=_int(e, "vocab_size", None, 0),
        tied_embeddings=bool(e.get("tied_embeddings", False)),
        activation=_choice(e, "activation", ACTIVATIONS, "silu"),
        gated_mlp=bool(e.get("gated_mlp", True)),
        norm=_choice(e, "norm", NORMS, "rmsnorm"),
        norms_per_layer=_int(e, "norms_per_layer", 1 if e.get("parallel_block") else 2),
        position=_choice(e, "position", POSITIONS, "rope"),
        max_position_embeddings=_int(e, "max_position_embeddings", 0, 0),
        attention_bias=attention_bias,
        mlp_bias=bool(e.get("mlp_bias", False)),
        lm_head_bias=bool(e.get("lm_head_bias", False)),
        parallel_block=bool(e.get("parallel_block", False)),
        sliding_window=window,
        attention_pattern=pattern,
        attention_chunk=chunk,
        attention_output_gate=bool(e.get("attention_output_gate", False)),
        kv_shared_layers=shared,
        mtp_layers=_int(e, "mtp_layers", 0, 0),
        linear_attention=linear,
        mamba=mamba,
        moe=moe,
        mla=mla,
        sparse_attention=dsa,
        vision_tower=tower,
        backbone=backbone,
        type_vocab_size=_int(e, "encoder.type_vocab_size", 0, 0),
        pooler=bool(e.get("encoder.pooler", False)),
        image_size=_int(e, "vision.image_size", 0, 0),
        patch_size=_int(e, "vision.patch_size", 0, 0),
        channels=_int(e, "vision.channels", 0, 0),
        num_classes=_int(e, "vision.num_classes", 0, 0),
        published_params=published,
        published_active_params=active,
        active_params_convention=_convention(e),
        aliases=tuple(str(a).lower() for a in e.get("aliases") or ()),
        notes=str(e.get("notes") or "").strip(),
        file=str(e.file),
        sources=MappingProxyType(sources),
    )
