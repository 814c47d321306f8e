"""costmodel: analytical cost and roofline modelling of transformer inference.

    >>> from costmodel import estimate
    >>> e = estimate("llama-3.1-8b", "h100-sxm", "fp8", batch=8, prompt=1024, gen=256)
    >>> e.metric("tpot_s")

Heavy libraries (matplotlib, scipy, sympy) are imported only by the functions that need them.
"""
from .errors import CostModelError
from .estimate import Estimate, Workload, estimate
from .formats import load_format
from .hardware import load_hardware
from .model import load_model

__all__ = ["CostModelError", "Estimate", "Workload", "estimate", "load_format", "load_hardware", "load_model"]
__version__ = "0.1.0"
