"""How the [fast] kernels (fast.py) load numba: where their compiled cache lives, keyed on every source they
compile, and numba's array functions loaded without the BLAS probe that would import scipy.linalg."""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.abc
import sys
from pathlib import Path

from costmodel.spec.parse_cache import cache_dir

# the modules whose functions the kernels compile (kernels.py and the kernel modules it imports, and what they jit
# or overload)
KERNEL_SOURCES = ("kernels", "kernel_base", "memory_kernels", "grid_kernels", "attention", "backbone_ops",
                  "elementwise", "memory", "operators", "scalar_times", "timeline", "truth")


def sources_key() -> str:
    """A hash of KERNEL_SOURCES' text: numba checks only the file that defines a kernel, so a kernel cached
    before another of these files changed would run its old code; each version of them gets its own cache."""
    h = hashlib.sha256()
    for name in KERNEL_SOURCES:
        h.update((Path(__file__).with_name(f"{name}.py")).read_bytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def numba_cache():
    """numba's compiled cache for the kernels created meanwhile: under the user cache directory (parse_cache.
    cache_dir(), safe to delete) in numba/<sources_key()>; numba's own choice where that cannot be written."""
    import numba

    old = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = str(cache_dir() / "numba" / sources_key())
    try:
        yield
    finally:
        numba.config.CACHE_DIR = old


class _NoScipy(importlib.abc.MetaPathFinder):
    """An import finder that refuses scipy's modules, as where scipy is not installed."""

    def find_spec(self, name, path, target=None):
        if name == "scipy" or name.startswith("scipy."):
            raise ImportError(f"{name} is not imported while numba loads its array functions (numba_setup.py)")
        return None


def array_functions() -> None:
    """Import numba.np.arraymath (numba's array functions, which the first kernel call loads anyway). Its import
    probes for a BLAS by importing scipy.linalg.cython_blas (numba/np/arraymath.py, _check_blas): 0.21-0.31 s of a
    fresh process on the development machine, for np.correlate and np.convolve in compiled code, which no kernel
    calls. Where scipy.linalg is not imported yet, the probe is refused (numba's own loops then serve those two in
    this process, for any code it compiles; another thread importing scipy during this one import is refused too);
    where it is, the probe costs nothing and runs."""
    refuse = "numba.np.arraymath" not in sys.modules and "scipy.linalg" not in sys.modules
    finder = _NoScipy()
    if refuse:
        sys.meta_path.insert(0, finder)
    try:
        importlib.import_module("numba.np.arraymath")
    finally:
        if refuse:
            sys.meta_path.remove(finder)
