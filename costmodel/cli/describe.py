"""Rows describing catalogue entries for `costmodel list` and `costmodel show` (with sources)."""
from __future__ import annotations

from pathlib import Path

from costmodel.errors import SpecError, not_a_file, unknown
from costmodel.spec.catalog import entries_in_file, index, looks_like_path, read_yaml
from costmodel.spec.formats import all_formats, load_format
from costmodel.spec.hardware import DTYPES, Hardware, all_hardware, load_hardware
from costmodel.spec.model import Model
from costmodel.spec.model_catalog import all_models, load_model
from costmodel.spec.parameters import active_param_count, active_param_count_as_published, mtp_param_count, param_count
from costmodel.spec.units import format_gib, format_si


def list_rows(kind: str) -> list[dict]:
    if kind == "hardware":
        return [{"id": h.id, "name": h.name, "family": h.family, "memory_bytes": h.memory_bytes,
                 "bandwidth_bytes_per_s": h.memory_bandwidth,
                 "bf16_flops": h.peaks.get("bf16") or h.peaks.get("fp16"), "fp8_flops": h.peaks.get("fp8"),
                 "fp4_flops": h.peaks.get("fp4"), "tdp_w": h.tdp_w, "usd_per_hour": h.price_per_hour,
                 "aliases": list(h.aliases)} for h in all_hardware()]
    if kind == "models":
        return [{"id": m.id, "name": m.name, "kind": m.kind, "params": param_count(m),
                 "active_params": active_param_count(m) if m.moe else None, "layers": m.layers,
                 "hidden_size": m.hidden_size, "heads": m.heads, "kv_heads": m.kv_heads,
                 "attention": _attention_kind(m), "aliases": list(m.aliases)} for m in all_models()]
    if kind == "formats":
        return [{"id": f.id, "name": f.name, "weight_bits": f.weight_bits, "activation_bits": f.activation_bits,
                 "kv_bits": f.kv_bits, "compute": list(f.compute), "emulate": list(f.emulate),
                 "aliases": list(f.aliases)} for f in all_formats()]
    if kind == "engines":
        return engine_rows()
    raise unknown("catalogue", kind, ["hardware", "models", "formats", "engines"])


def engine_rows() -> list[dict]:
    """Every engine and build with its calibration status: the families and devices it was fitted on
    (a build: those its own rows measured), or uncalibrated (sourced defaults; intervals from
    leave-one-engine-out residuals)."""
    from costmodel.spec.engine_params import efficiency_for, engine_names, split_engine, tables

    t = tables()
    fitted: dict = {}  # (engine, kind) -> names of levels with a fitted value
    for (e, kind, name), block in t.levels.items():
        if e and any(str(src).startswith("fit") for _, src in block.values()):
            fitted.setdefault((e, kind), []).append(name)
    rows = []
    for name in engine_names():
        base, build = split_engine(name)
        own = any(fitted.get((name, k)) for k in ("global", "families"))
        if build is None:
            status = "fitted" if own else "uncalibrated"
        else:  # a build shares its engine's fit and adds its own offsets where rows name it
            status = ("build offsets fitted" if own else f"as {base} (no rows of this build)"
                      if fitted.get((base, "global")) else "uncalibrated")
        eff = efficiency_for("-", "-", name)
        rows.append({"id": name, "name": name, "calibration": status,
                     "families": sorted(fitted.get((name, "families"), [])),
                     "devices": len(fitted.get((name, "devices"), [])),
                     "max_batch": None if eff.max_batch >= 1e9 else int(eff.max_batch),
                     "prefill_chunk_tokens": int(eff.prefill_chunk_tokens),
                     "kv_block_tokens": int(eff.kv_block_tokens)})
    return rows


def _attention_kind(m: Model) -> str:
    if m.attention_layers == 0:
        parts = []
    elif m.mla is not None:
        parts = ["MLA"]
    else:
        parts = ["MHA" if m.kv_heads == m.heads else ("MQA" if m.kv_heads == 1 else "GQA")]
    if m.sliding_window and m.local_layers:
        parts.append(f"window {m.sliding_window} on {m.local_layers}/{m.layers} layers")
    if m.recurrent_layers:
        kind = "Gated DeltaNet" if m.linear_attention else f"Mamba-{m.mamba.version}"
        if parts:
            parts[0] += f" on {m.attention_layers}/{m.layers} layers"
        parts.append(f"{kind} on {m.recurrent_layers}/{m.layers} layers")
    if m.kv_shared_layers:
        parts.append(f"last {m.kv_shared_layers} layers share KV")
    return ", ".join(parts)


def find_any(name: str) -> tuple[str, object]:
    """('hardware'|'model'|'format', spec) for an id or alias of any catalogue kind, or a spec path
    (a one-entry YAML file or a HuggingFace config.json)."""
    if looks_like_path(name):
        return _from_path(name)
    key = name.strip().lower()
    for kind, loader in (("hardware", load_hardware), ("models", load_model), ("formats", load_format)):
        idx = index(kind)
        if key in idx.entries or key in idx.aliases:
            return kind, loader(key)
    known = [k for kind in ("hardware", "models", "formats") for k in (*index(kind).entries, *index(kind).aliases)]
    raise unknown("id", name, known)


def _from_path(name: str) -> tuple[str, object]:
    p = Path(name).expanduser()
    problem = not_a_file(p)
    if problem:
        raise SpecError(f"{p}: {problem}; give a catalogue id (costmodel list hardware|models|formats) "
                        f"or the path of a spec file")
    if p.suffix.lower() == ".json":
        return "models", load_model(str(p))
    doc = read_yaml(p)
    for kind, key, loader in (("hardware", "devices", load_hardware), ("models", "models", load_model),
                              ("formats", "formats", load_format)):
        if isinstance(doc, dict) and key in doc:
            found = entries_in_file(p, kind)
            if len(found) == 1:
                return kind, (loader(str(p)) if kind != "formats" else load_format(found[0].id))
            ids = ", ".join(e.id for e in found)
            raise SpecError(f"{p}: holds {len(found)} {kind} entries ({ids}); show one with "
                            f"'costmodel show ID'")
    raise SpecError(f"{p}: not a catalogue file; expected a 'devices:', 'models:' or 'formats:' list "
                    f"(docs/catalog-schema.md) or a HuggingFace config.json")


def show_rows(name: str) -> tuple[str, str, list[dict]]:
    """(kind, id, rows of field/value/source) for `costmodel show`."""
    kind, spec = find_any(name)
    rows: list[dict] = []

    def add(field, value, source=""):
        rows.append({"field": field, "value": value, "source": source})

    if isinstance(spec, Hardware):
        s = spec.sources
        add("name", spec.name)
        add("family / kind", f"{spec.family} / {spec.kind}")
        add("memory capacity", f"{format_gib(spec.memory_bytes)} ({format_si(spec.memory_bytes, 'B')})",
            s.get("memory_capacity", ""))
        if spec.memory_reported_bytes:
            add("memory the driver reports", f"{format_gib(spec.memory_reported_bytes)} "
                f"({format_si(spec.memory_reported_bytes, 'B')})", s.get("memory_reported", ""))
        add("memory bandwidth", format_si(spec.memory_bandwidth, "B/s"), s.get("memory_bandwidth", ""))
        for d in DTYPES:
            if d in spec.peaks:
                add(f"peak {d} (dense)", format_si(spec.peaks[d], "FLOP/s" if not d.startswith("int") else "OP/s"),
                    s.get(f"peak.{d}", ""))
        if spec.last_level_cache_bytes:
            add("last-level cache", format_si(spec.last_level_cache_bytes, "B"), s.get("last_level_cache", ""))
        if spec.tdp_w:
            add("TDP" + ("" if spec.tdp_scope == "device" else f" (whole {spec.tdp_scope})"), f"{spec.tdp_w:g} W",
                s.get("tdp", ""))
        if spec.interconnect_bandwidth:
            add("interconnect", f"{format_si(spec.interconnect_bandwidth, 'B/s')} bidirectional ({spec.interconnect_kind})",
                s.get("interconnect.bandwidth", ""))
        if spec.price_per_hour:
            add("cloud price", f"${spec.price_per_hour:g}/device-hour", s.get("price.cloud", ""))
        if spec.list_price_usd:
            add("list price", f"${spec.list_price_usd:,.0f}", s.get("price.list", ""))
        if spec.aliases:
            add("aliases", ", ".join(spec.aliases))
        if spec.notes:
            add("notes", spec.notes)
        add("file", spec.file)
    elif isinstance(spec, Model):
        m = spec
        add("name", m.name)
        add("kind", m.kind, m.sources.get("architecture", ""))
        for f in ("layers", "hidden_size", "heads", "kv_heads", "head_dim", "intermediate_size", "vocab_size",
                  "tied_embeddings", "activation", "gated_mlp", "norm", "position", "max_position_embeddings"):
            add(f, getattr(m, f))
        add("attention", _attention_kind(m))
        if m.moe:
            add("moe", f"{m.moe.experts} experts, top-{m.moe.top_k}, {m.moe.shared_experts} shared, "
                       f"expert width {m.moe.expert_intermediate_size}, {m.moe.dense_layers} dense layers")
        if m.mla:
            add("mla", f"kv_lora_rank {m.mla.kv_lora_rank}, q_lora_rank {m.mla.q_lora_rank}, "
                       f"rope {m.mla.qk_rope_head_dim}, nope {m.mla.qk_nope_head_dim}, v {m.mla.v_head_dim}")
        if m.backbone:
            b = m.backbone
            add("backbone stages", ", ".join(f"{k} x{d} at width {c}" for k, d, c in zip(b.blocks, b.depths, b.dims)))
            add("backbone image", f"{b.image_size}x{b.image_size}, {b.patch_size}x{b.patch_size} stem "
                                  f"({(b.image_size // b.patch_size) ** 2} tokens); {b.macs() / 1e9:.3f} G multiply-adds "
                                  f"(the repository's fvcore count)")
        if m.attention_pattern:
            add("layer pattern (repeated)", " ".join(m.attention_pattern))
        mx = m.recurrent_mixer
        if mx is not None:
            add("recurrent mixer", repr(mx).replace("(", ": ").rstrip(")"))
            add("recurrent state per sequence per layer", f"{mx.state:,} elements + conv {mx.conv_channels:,} x "
                f"{mx.conv_kernel - 1}")
        if m.attention_layers:
            add("KV elements per token per layer", m.kv_elements_per_token_per_layer)
        add("parameters (computed)", f"{param_count(m) / 1e9:.3f} B")
        add("parameters (published)", f"{m.published_params / 1e9:.3f} B", m.sources.get("published_params", ""))
        if m.moe:
            add("active parameters (computed)", f"{active_param_count(m) / 1e9:.3f} B")
            if m.active_params_convention != "all":
                add("active parameters (computed as published)",
                    f"{active_param_count_as_published(m) / 1e9:.3f} B",
                    f"{m.active_params_convention.replace('_', ' ')}, as the publisher counts them")
            if m.published_active_params:
                add("active parameters (published)", f"{m.published_active_params / 1e9:.3f} B",
                    m.sources.get("published_active_params", ""))
        if m.mtp_layers:
            add("MTP modules (loaded with --mtp)", f"{m.mtp_layers} x one decoder layer + 2h x h projection: "
                f"{mtp_param_count(m) / 1e9:.3f} B")
        if m.aliases:
            add("aliases", ", ".join(m.aliases))
        if m.notes:
            add("notes", m.notes)
        add("file", m.file)
    else:
        f = spec
        add("name", f.name)
        add("weight bits", f"{f.weight_bits:g} ({f.weight_dtype})", f.sources.get("weight_bits", ""))
        add("activation bits", f"{f.activation_bits:g}", f.sources.get("activation_bits", ""))
        add("KV bits (default)", f"{f.kv_bits:g}", f.sources.get("kv_bits", ""))
        add("embedding / LM head bits", f"{f.embedding_bits:g} / {f.lm_head_bits:g}",
            f.sources.get("lm_head_bits", f.sources.get("embedding_bits", "")))
        add("matrix units (native, best first)", ", ".join(f.compute))
        add("emulated on", ", ".join(f.emulate) or "refused")
        add("dequantization ops per weight", f"{f.dequant_ops_per_weight:g}", f.sources.get("dequant_ops_per_weight", ""))
        if f.aliases:
            add("aliases", ", ".join(f.aliases))
    return kind, spec.id, rows
