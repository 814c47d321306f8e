"""Model architecture specs: a frozen `Model` per architecture, from YAML or HF config.json."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from costmodel.spec.catalog import Entry
from costmodel.spec.files import read_text
from costmodel.errors import SpecError

ACTIVATIONS = ("silu", "gelu", "gelu_tanh", "gelu_pytorch_tanh", "gelu_new", "relu", "swiglu")
NORMS = ("rmsnorm", "layernorm")
POSITIONS = ("rope", "learned", "alibi", "none")


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
    attention_pattern: tuple = ()
    moe: MoE | None = None
    mla: MLA | None = None
    type_vocab_size: int = 0
    pooler: bool = False
    image_size: int = 0
    patch_size: int = 0
    channels: int = 0
    num_classes: int = 0
    published_params: float | None = None
    published_active_params: float | None = None
    # how the publisher counts active parameters: "all" or "without_input_embedding" (OpenAI's gpt-oss card)
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

    @property
    def local_layers(self) -> int:
        """Layers that attend over a sliding window of `sliding_window` tokens."""
        if not self.sliding_window:
            return 0
        if not self.attention_pattern:
            return self.layers
        pat = self.attention_pattern
        return sum(1 for i in range(self.layers) if pat[i % len(pat)] == "local")

    @property
    def global_layers(self) -> int:
        return self.layers - self.local_layers

    @property
    def moe_layers(self) -> int:
        return 0 if self.moe is None else self.layers - self.moe.dense_layers

    @property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers

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
        """Tokens per image for a ViT: patches plus the class token."""
        return (self.image_size // self.patch_size) ** 2 + 1 if self.is_vision else 0


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


ACTIVE_CONVENTIONS = ("all", "without_input_embedding")


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


def model_from_entry(e: Entry) -> Model:
    """Validate one catalogue entry into a `Model`."""
    sources = {"architecture": e.source_of("source", e.data)}
    hidden = _int(e, "hidden_size")
    heads = _int(e, "heads")
    layers = _int(e, "layers")
    kv_heads = _int(e, "kv_heads", heads)
    if heads % kv_heads:
        raise SpecError(f"{e.where('kv_heads')}: {kv_heads} does not divide heads ({heads})")
    bias = e.get("attention_bias", False)
    attention_bias = {False: "none", True: "all", "qkv": "qkv", "all": "all", "none": "none"}.get(bias)
    if attention_bias is None:
        raise SpecError(f"{e.where('attention_bias')}: got {bias!r}; expected true, false or qkv")
    pattern = tuple(e.get("attention_pattern") or ())
    if any(p not in ("local", "global") for p in pattern):
        raise SpecError(f"{e.where('attention_pattern')}: got {list(pattern)}; expected a list of local/global")
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
        intermediate_size=_int(e, "intermediate_size"),
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
        sliding_window=_int(e, "sliding_window", 0, 0),
        attention_pattern=pattern,
        moe=moe,
        mla=mla,
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


_HF_ACT = {"gelu_new": "gelu_tanh", "gelu_fast": "gelu_tanh", "gelu_pytorch_tanh": "gelu_pytorch_tanh",
           "silu": "silu", "swish": "silu", "gelu": "gelu", "relu": "relu"}


def entry_from_hf_config(path: str) -> Entry:
    """Map a HuggingFace `config.json` onto the catalogue schema (architecture only)."""
    p = Path(path).expanduser()
    text = read_text(p, "a HuggingFace config.json", SpecError)
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{p}:{exc.lineno}: malformed JSON ({exc.msg})") from None
    if not isinstance(cfg, dict):
        raise SpecError(f"{p}: expected a JSON object (a HuggingFace config.json)")
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers (Gemma 3, Llava, ...)
        cfg = {**cfg, **cfg["text_config"]}

    def get(*names, default=None):
        for n in names:
            if cfg.get(n) is not None:
                return cfg[n]
        return default

    hidden = get("hidden_size", "n_embd", "d_model")
    heads = get("num_attention_heads", "n_head")
    layers = get("num_hidden_layers", "n_layer", "num_layers")
    missing = [n for n, v in (("hidden_size", hidden), ("num_attention_heads", heads),
                              ("num_hidden_layers", layers)) if v is None]
    if missing:
        raise SpecError(f"{p}: field '{missing[0]}' missing; expected a HuggingFace transformer config.json")
    for name, value in (("hidden_size", hidden), ("num_attention_heads", heads), ("num_hidden_layers", layers)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{p}: field '{name}' is {value!r}; expected a positive integer")
    mtype = str(cfg.get("model_type", ""))
    is_encoder = mtype in ("bert", "roberta", "vit", "deberta", "deberta-v2", "distilbert")
    act = _HF_ACT.get(str(get("hidden_act", "hidden_activation", "activation_function", default="silu")), "silu")
    data: dict = {
        "id": p.parent.name.lower() if p.name == "config.json" else p.stem.lower(),
        "name": f"{mtype or 'model'} from {p}",
        "source": str(p),
        "published_params": {"value": 0, "source": f"{p} (no published count: computed)"},
        "kind": "encoder" if is_encoder else "decoder",
        "layers": layers,
        "hidden_size": hidden,
        "heads": heads,
        "kv_heads": get("num_key_value_heads", "num_kv_heads", default=heads),
        "head_dim": get("head_dim", default=hidden // heads),
        "intermediate_size": get("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden),
        "vocab_size": get("vocab_size", default=0),
        "tied_embeddings": bool(get("tie_word_embeddings", default=mtype in ("bert", "opt", "gemma2", "gemma3_text", "gemma3"))),
        "activation": act,
        "gated_mlp": mtype not in ("gptj", "gpt2", "opt", "bert", "vit", "gpt_neox", "falcon", "phi"),
        "norm": "layernorm" if mtype in ("gptj", "gpt2", "opt", "bert", "vit", "gpt_neox", "falcon", "phi") else "rmsnorm",
        "position": "learned" if mtype in ("gpt2", "opt", "bert", "vit") else "rope",
        "max_position_embeddings": get("max_position_embeddings", "n_positions", default=0),
        "attention_bias": "qkv" if mtype.startswith("qwen2") else bool(get("attention_bias", "bias", default=mtype in ("bert", "opt", "vit"))),
        "mlp_bias": bool(get("mlp_bias", default=mtype in ("bert", "opt", "vit", "gptj", "gpt2"))),
        "parallel_block": mtype in ("gptj",),
    }
    window = get("sliding_window")
    layer_types = get("layer_types")
    if window and (cfg.get("use_sliding_window", True) is not False):
        data["sliding_window"] = int(window)
        if isinstance(layer_types, list) and layer_types:
            data["attention_pattern"] = ["local" if "sliding" in str(t) else "global" for t in layer_types]
        elif get("sliding_window_pattern"):
            n = int(get("sliding_window_pattern"))
            data["attention_pattern"] = ["local"] * (n - 1) + ["global"]
    experts = get("num_local_experts", "num_experts", "n_routed_experts")
    if experts:
        first_dense = int(get("first_k_dense_replace", default=0))
        data["moe"] = {
            "experts": experts,
            "top_k": get("num_experts_per_tok", "experts_per_token", "moe_top_k"),
            "expert_intermediate_size": get("moe_intermediate_size", default=data["intermediate_size"]),
            "shared_experts": get("n_shared_experts", default=1 if get("shared_expert_intermediate_size") else 0),
            "shared_intermediate_size": get("shared_expert_intermediate_size", "moe_intermediate_size", default=0)
            if (get("n_shared_experts") or get("shared_expert_intermediate_size")) else 0,
            "dense_layers": first_dense,
            "dense_intermediate_size": data["intermediate_size"] if first_dense else 0,
        }
    if get("kv_lora_rank"):
        data["mla"] = {
            "kv_lora_rank": get("kv_lora_rank"), "q_lora_rank": get("q_lora_rank", default=0) or 0,
            "qk_nope_head_dim": get("qk_nope_head_dim"), "qk_rope_head_dim": get("qk_rope_head_dim"),
            "v_head_dim": get("v_head_dim"),
        }
    if mtype == "vit":
        data.update(vocab_size=0, image_size=None)
        data["vision"] = {"image_size": get("image_size", default=224), "patch_size": get("patch_size", default=16),
                          "channels": get("num_channels", default=3),
                          "num_classes": len(cfg.get("id2label") or {}) or 1000}
    if mtype == "bert":
        data["encoder"] = {"type_vocab_size": get("type_vocab_size", default=2), "pooler": True}
    data = {k: v for k, v in data.items() if v is not None}
    return Entry(data, p, {})
