"""The array operations `costmodel profile` runs on numpy (the CPU) or PyTorch (CUDA), and what it reads of the
device: its name, memory and vendor, and the id its spec gets."""
from __future__ import annotations

import os
import platform
import re
import socket

import numpy as np

from costmodel.errors import CostModelError


class ProfileError(CostModelError):
    """The requested device cannot be profiled here (no CUDA, no PyTorch, ...)."""


class Backend:
    """The few array operations the profiler needs, on numpy or torch."""

    def __init__(self, device: str):
        self.device = device
        if device == "cpu":
            self.torch = None
        else:
            try:
                import torch
            except ImportError:
                raise ProfileError("profiling --device cuda needs PyTorch, which is not importable here "
                                   "(pip install torch); --device cpu profiles with numpy") from None
            if not torch.cuda.is_available():
                raise ProfileError("PyTorch is installed but torch.cuda.is_available() is False: no CUDA device here")
            self.torch = torch
        self.out_of_memory = (MemoryError,) if self.torch is None else (MemoryError, self.torch.cuda.OutOfMemoryError)

    def dtype(self, name: str):
        if self.torch is None:
            return {"fp32": np.float32, "fp64": np.float64, "fp16": np.float16}[name]
        t = self.torch
        return {"fp32": t.float32, "fp64": t.float64, "fp16": t.float16, "bf16": t.bfloat16}[name]

    def info(self) -> dict:
        """Name and memory of the profiled device: torch.cuda.get_device_properties on CUDA; the CPU's model name and
        os.sysconf's physical memory on the CPU."""
        if self.torch is None:
            return {"name": _cpu_name(), "memory_bytes": _memory_bytes(), "memory_source": "os",
                    "vendor": platform.machine()}
        p = self.torch.cuda.get_device_properties(0)
        return {"name": p.name, "memory_bytes": float(p.total_memory), "memory_source": "cuda",
                "vendor": "AMD" if getattr(self.torch.version, "hip", None) else "NVIDIA"}

    def matmul(self, M: int, N: int, K: int, dtype: str):
        """A timed (M, K) x (K, N) product. fp8 (CUDA only) is torch._scaled_mm on e4m3 inputs with unit scales and
        bf16 output, the second operand column-major as cuBLASLt requires."""
        if dtype != "fp8":
            a, b = self.random((M, K), dtype, 1.0), self.random((K, N), dtype, 1.0)
            return lambda: a @ b
        t = self.torch
        a = t.randn((M, K), device="cuda").to(t.float8_e4m3fn)
        b = t.randn((N, K), device="cuda").to(t.float8_e4m3fn).t()
        one = t.ones((), device="cuda")
        return lambda: t._scaled_mm(a, b, scale_a=one, scale_b=one, out_dtype=t.bfloat16)

    def random(self, shape, dtype: str, scale: float = 0.02):
        """Random-valued tensor, filled by tiling one random block (fast for GB-sized weights)."""
        n = int(np.prod(shape))
        if self.torch is not None:
            return (self.torch.randn(shape, device="cuda", dtype=self.dtype(dtype)) * scale)
        block = (np.random.default_rng(0).standard_normal(min(n, 1 << 20)) * scale).astype(self.dtype(dtype))
        return np.resize(block, n).reshape(shape)

    def sync(self) -> None:
        if self.torch is not None:
            self.torch.cuda.synchronize()

    def exp(self, x):
        return np.exp(x) if self.torch is None else self.torch.exp(x)

    def rsqrt_mean_sq(self, x):
        if self.torch is None:
            return 1.0 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-6)
        return self.torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + 1e-6)

    def max_last(self, x):
        return x.max(axis=-1, keepdims=True) if self.torch is None else x.amax(dim=-1, keepdim=True)

    def sum_last(self, x):
        return x.sum(axis=-1, keepdims=True) if self.torch is None else x.sum(dim=-1, keepdim=True)

    def cat(self, xs, axis):
        return np.concatenate(xs, axis=axis) if self.torch is None else self.torch.cat(xs, dim=axis)

    def repeat_heads(self, x, reps, axis):
        return np.repeat(x, reps, axis=axis) if self.torch is None else x.repeat_interleave(reps, dim=axis)

    def swap(self, x, a, b):
        return np.swapaxes(x, a, b) if self.torch is None else x.transpose(a, b)

    def attention(self, q, k, v):
        """softmax(q k^T / sqrt(d) + causal mask) v for q (B, H, T, d) against the last T of k, v (B, Hk, L, d).
        CUDA: PyTorch's fused scaled_dot_product_attention (flash kernels, GQA without copying the heads); the CPU:
        the explicit product, the heads repeated."""
        T, L, H, Hk = q.shape[2], k.shape[2], q.shape[1], k.shape[1]
        if self.torch is not None and (T == 1 or T == L):
            from torch.nn.attention import SDPBackend, sdpa_kernel

            # not cuDNN's kernel: with it, eager decode steps ran 3x slower on the lent H200 (a plan per new length?)
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]):
                return self.torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=T > 1,
                                                                             enable_gqa=H != Hk)
        kk, vv = self.repeat_heads(k, H // Hk, 1), self.repeat_heads(v, H // Hk, 1)
        s = (q @ self.swap(kk, 2, 3)) * (1.0 / q.shape[-1] ** 0.5)  # (B, H, T, L)
        if T > 1:  # causal mask over the new tokens
            mask = np.triu(np.full((T, L), -1e9, dtype=np.float32), k=L - T + 1)
            s = s + (mask if self.torch is None else self.torch.as_tensor(mask, device="cuda", dtype=s.dtype))
        p = self.exp(s - self.max_last(s))
        return (p / self.sum_last(p)) @ vv


def device_id(host: str, device: str, name: str) -> str:
    """The profiled device's catalogue id: `<host>-cpu`, or `<host>-<the GPU's name>` (`vm-nvidia-h200`), so one
    host's different GPUs get different specs."""
    return f"{host}-" + ("cpu" if device == "cpu" else (_slug(name) or device))


def host_id() -> str:
    return (_slug(socket.gethostname()) or "host")[:40]


def _slug(text: str) -> str:
    """Lower case, each run of other characters than letters and digits one '-', none at either end."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def first_line(exc: BaseException, chars: int) -> str:
    """An exception's first line, cut to `chars` characters: what a skipped measurement's note quotes."""
    return (str(exc).splitlines() or [""])[0][:chars]


def _memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16e9


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
