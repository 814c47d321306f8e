"""costmodel: analytical cost and roofline modelling of transformer inference.

    >>> from costmodel import estimate
    >>> e = estimate("llama-3.1-8b", "h100-sxm", "fp8", batch=8, prompt=1024, gen=256)
    >>> e.metric("tpot_s"), e.to_dict()["memory"]["fits"]

Names are imported lazily (PEP 562) so `costmodel --help` does not pay for numpy;
matplotlib, scipy and sympy load only in the functions that need them.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"
_EXPORTS = {
    "CostModelError": "errors", "Estimate": "estimator", "Workload": "estimator", "estimate": "estimator",
    "load_format": "formats", "load_hardware": "hardware", "load_model": "model",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'costmodel' has no attribute {name!r}")
