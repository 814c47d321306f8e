"""costmodel: analytical cost and roofline modelling of transformer inference.

    >>> import costmodel
    >>> e = costmodel.estimate("llama-3.1-8b", "h100", "fp8", batch=8, prompt=1024, gen=256)
    >>> e                                   # a one-line summary; e.to_dict() has everything
    >>> r = costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8"])
    >>> front = costmodel.pareto_front(r, [("min", "tpot_s"), ("min", "usd_per_million_tokens")])

Names are imported lazily (PEP 562), so `import costmodel` and `costmodel --help` do not pay
for numpy; matplotlib, scipy and sympy load only in the functions that need them. The layers
are sub-packages: spec <- engine <- calibration <- estimate <- analyses, planning, sweeps <- cli.
"""
from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

# public name -> (module, attribute)
_EXPORTS = {
    "CostModelError": ("errors", "CostModelError"),
    # specs
    "load_model": ("spec.model_catalog", "load_model"),
    "load_hardware": ("spec.hardware", "load_hardware"),
    "load_format": ("spec.formats", "load_format"),
    # one configuration
    "estimate": ("estimate", "estimate"),
    "Estimate": ("estimate", "Estimate"),
    "Workload": ("estimate", "Workload"),
    "serve_load": ("serving", "serve_load"),
    "serve_disagg": ("serving_split", "serve_disagg"),
    # many configurations
    "sweep": ("sweeps.sweep", "sweep"),
    "sweep_to_file": ("sweeps.sweep", "sweep_to_file"),
    "pareto_front": ("sweeps.pareto", "pareto_front"),
    "latency_throughput": ("sweeps.curves", "latency_throughput"),
    "serve_curve": ("sweeps.curves", "serve_curve"),
    # analyses
    "idealized": ("analyses.idealized", "idealized"),
    "cost_of_pass": ("analyses.cost_of_pass", "cost_of_pass"),
    "test_time_scaling": ("analyses.tts_report", "report"),
    "speculative_decoding": ("analyses.specdec", "analyze"),
    "formula": ("analyses.formula", "formula"),
    "vlm_tokens": ("analyses.vlm_tokens", "report"),
    "train": ("analyses.training.train", "train"),
    "train_search": ("analyses.training.search", "search"),
    "calibrate_train": ("analyses.training.calibrate", "run"),
    "precision_economics": ("analyses.training.economics", "precision_economics"),
    # planning
    "plan": ("planning.plan", "plan"),
    "whatif": ("planning.whatif", "whatif"),
    # calibration
    "profile": ("calibration.profile", "profile"),
    "calibrate": ("calibration.run", "run"),
    "validate": ("calibration.validate", "validate"),
    # plots
    "roofline_plot": ("plots", "roofline_plot"),
    "memory_plot": ("plots", "memory_plot"),
    "pareto_plot": ("plots", "pareto_plot"),
    "latency_throughput_plot": ("plots", "latency_throughput_plot"),
    "whatif_plot": ("plots", "whatif_plot"),
    "sweep_plot": ("plots", "sweep_plot"),
    "estimates_plot": ("plots", "estimates_plot"),
    "test_time_scaling_plot": ("plots", "test_time_scaling_plot"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attr = _EXPORTS[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value  # later look-ups skip this hook
        return value
    raise AttributeError(f"module 'costmodel' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(__all__ + ["__version__"])


class _Package(types.ModuleType):
    """Importing the sub-module `costmodel.estimate` must not replace the function `costmodel.estimate`."""

    def __setattr__(self, name: str, value) -> None:
        if name in _EXPORTS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
