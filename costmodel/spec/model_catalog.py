"""Find a model: a catalogue id, an alias, a YAML spec path or a HuggingFace config.json path.

A config.json has no published parameter count, so its computed count stands in for one.
"""
from __future__ import annotations

from dataclasses import replace

from costmodel.spec.catalog import entry_from_file, index, resolve
from costmodel.spec.hf_config import entry_from_hf_config
from costmodel.spec.model import Model, model_from_entry
from costmodel.spec.parameters import param_count


def _from_path(name: str) -> Model:
    """A YAML spec, or a HF config.json whose computed count stands in for a published one."""
    if not name.endswith(".json"):
        return model_from_entry(entry_from_file(name, "models"))
    model = model_from_entry(entry_from_hf_config(name))
    return replace(model, published_params=param_count(model))


def resolve_model(name: str) -> tuple[Model, str | None]:
    """(Model, id an alias resolved to or None) for an id, alias, YAML path or config.json path."""
    return resolve("models", name, model_from_entry, _from_path)


def load_model(name: str) -> Model:
    """A Model from a catalogue id, an alias, a YAML spec path or a HuggingFace config.json path.

    >>> costmodel.load_model("llama-70b").layers, costmodel.load_model("path/to/config.json")
    """
    return resolve_model(name)[0]


def all_models() -> list[Model]:
    return [load_model(i) for i in index("models").ids()]
