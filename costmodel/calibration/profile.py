"""`costmodel profile`: measure the machine it runs on and write schema rows + a hardware YAML.

Micro-benchmarks: matrix products over a grid of shapes and datatypes, streaming memory
bandwidth (copy), decode attention at several KV lengths. End to end: prefill and decode of
a real transformer with random weights built from a catalogue model's architecture
(numpy on the CPU; PyTorch on CUDA), timed per phase. Every number is the best of a few
repeats (the least disturbed run), and every row carries `source = profile:<host>:<date>`.
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodel.errors import CostModelError
from costmodel.calibration.measurements import Measurement, write_measurements
from costmodel.calibration.timing import best_time
from costmodel.spec.model import Model
from costmodel.spec.model_catalog import load_model


class ProfileError(CostModelError):
    """The requested device cannot be profiled here (no CUDA, no PyTorch, ...)."""


@dataclass(frozen=True)
class Plan:
    gemm_shapes: tuple  # (M, N, K)
    gemm_dtypes: tuple
    stream_bytes: int
    attention_kv: tuple
    model: str
    prompts: tuple
    gen: int
    batches: tuple
    repeats: int


def plan_for(device: str, quick: bool, model: str | None) -> Plan:
    if quick:
        return Plan(((1, 1024, 1024), (16, 1024, 1024), (128, 1024, 1024), (512, 1024, 1024)),
                    ("fp32",) if device == "cpu" else ("bf16", "fp32"), 64 << 20, (256, 2048),
                    model or "qwen2.5-0.5b", (32, 128), 6, (1, 4), 3)
    big = () if device == "cpu" else ((1, 14336, 4096), (16, 14336, 4096), (128, 14336, 4096), (512, 14336, 4096),
                                      (4096, 14336, 4096), (8192, 8192, 8192))  # weights past a GPU's L2
    return Plan(((1, 2048, 2048), (8, 2048, 2048), (64, 2048, 2048), (256, 2048, 2048), (1024, 2048, 2048),
                 (2048, 4096, 4096)) + big,
                ("fp32", "fp64") if device == "cpu" else ("bf16", "fp16", "fp32", "fp8"), 512 << 20,
                (256, 1024, 4096, 16384), model or ("qwen2.5-0.5b" if device == "cpu" else "llama-3.1-8b"),
                (128, 512, 2048), 32, (1, 8, 32), 5)


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

            # not cuDNN's kernel: it builds a plan per new sequence length, i.e. at every decode step
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


def kernel_time(fn, repeats: int, be, budget_s: float = 2e-3) -> float:
    """Seconds per call of a micro-benchmark: best_time on the CPU; on CUDA, calls replayed from a CUDA graph
    (profile_cuda.graph_time), so Python's launch does not count into a kernel of a few microseconds."""
    if be.torch is None:
        return best_time(fn, repeats, be.sync)
    from costmodel.calibration.profile_cuda import graph_time

    return graph_time(fn, repeats, be, budget_s)


class Transformer:
    """A decoder with random weights and the catalogue architecture (dense, GQA, gated MLP)."""

    def __init__(self, m: Model, be: Backend, dtype: str):
        if m.moe is not None or m.mla is not None or m.is_encoder:
            raise ProfileError(f"{m.id}: the end-to-end profiler builds dense decoders (no MoE, MLA or encoders)")
        self.m, self.be = m, be
        h, d = m.hidden_size, m.head_dim
        self.layers = [{
            "qkv": be.random((h, (m.heads + 2 * m.kv_heads) * d), dtype),
            "o": be.random((m.heads * d, h), dtype),
            "up": be.random((h, 2 * m.intermediate_size if m.gated_mlp else m.intermediate_size), dtype),
            "down": be.random((m.intermediate_size, h), dtype),
        } for _ in range(m.layers)]
        self.embed = be.random((m.vocab_size, h), dtype)
        self.head = self.embed if m.tied_embeddings else be.random((m.vocab_size, h), dtype)
        self.dtype = dtype

    @staticmethod
    def lin(x, w):
        """x @ w as one 2-D matrix product (a 3-D @ would re-read w once per sequence)."""
        return (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], w.shape[1])

    def forward(self, tokens, cache):
        """tokens: (B, T) ids; cache: list of (K, V) per layer, each (B, Hk, L, d) or None."""
        m, be = self.m, self.be
        B, T = tokens.shape
        H, Hk, d = m.heads, m.kv_heads, m.head_dim
        x = self.embed[tokens]  # (B, T, h)
        new_cache = []
        for layer, kv in zip(self.layers, cache):
            y = x * be.rsqrt_mean_sq(x)
            qkv = self.lin(y, layer["qkv"])
            q = be.swap(qkv[..., :H * d].reshape(B, T, H, d), 1, 2)
            k = be.swap(qkv[..., H * d:(H + Hk) * d].reshape(B, T, Hk, d), 1, 2)
            v = be.swap(qkv[..., (H + Hk) * d:].reshape(B, T, Hk, d), 1, 2)
            if kv is not None:
                k, v = be.cat([kv[0], k], 2), be.cat([kv[1], v], 2)
            new_cache.append((k, v))
            o = be.swap(be.attention(q, k, v), 1, 2).reshape(B, T, H * d)
            x = self.mlp(x + self.lin(o, layer["o"]), layer)
        return self.logits(x), new_cache

    def mlp(self, x, layer):
        """x + the layer's (gated) MLP of its normed input."""
        m, be = self.m, self.be
        u = self.lin(x * be.rsqrt_mean_sq(x), layer["up"])
        if m.gated_mlp:
            g, u = u[..., :m.intermediate_size], u[..., m.intermediate_size:]
            u = g / (1 + be.exp(-g)) * u
        else:
            u = u * (u > 0)
        return x + self.lin(u, layer["down"])

    def logits(self, x):
        """The last position's logits after the final norm."""
        x = x * self.be.rsqrt_mean_sq(x)
        return x[:, -1] @ self.be.swap(self.head, 0, 1)


def eager_times(net: Transformer, ids, gen: int, repeats: int) -> tuple:
    """(prefill seconds, seconds per decode step, how): the forward pass called op by op, the KV cache grown by
    concatenation at every step."""
    empty = [None] * net.m.layers
    t_pre = best_time(lambda: net.forward(ids, empty), repeats, net.be.sync)
    _, cache = net.forward(ids, empty)
    nxt = ids[:, -1:]
    net.be.sync()
    t0 = time.perf_counter()
    for _ in range(gen):
        _, cache = net.forward(nxt, cache)
    net.be.sync()
    return t_pre, (time.perf_counter() - t0) / gen, "eager"


def device_id(host: str, device: str, name: str) -> str:
    """The profiled device's catalogue id: `<host>-cpu`, or `<host>-<the GPU's name>` (`vm-nvidia-h200`), so one
    host's different GPUs get different specs."""
    if device == "cpu":
        return f"{host}-cpu"
    return f"{host}-" + (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or device)


def host_id() -> str:
    name = re.sub(r"[^a-z0-9]+", "-", socket.gethostname().lower()).strip("-") or "host"
    return name[:40]


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


def _check_room(arch: Model, be, bytes_per_param: int) -> None:
    """Refuse a --model whose random weights would not fit the device's free memory (half of it, leaving room for
    activations and the KV cache): the end-to-end run builds them whole, and the kernel killed the process."""
    from costmodel.spec.parameters import param_breakdown

    need = sum(v for k, v in param_breakdown(arch).items() if k != "experts_active") * bytes_per_param  # a subset
    free = _free_bytes(be)
    if free is not None and need > 0.5 * free:
        raise ProfileError(f"--model {arch.id}: its weights take {need / 2**30:.1f} GiB at {8 * bytes_per_param} bits, "
                           f"more than half of the {free / 2**30:.1f} GiB free here; profile a smaller model "
                           f"(the default qwen2.5-0.5b)")


def _free_bytes(be) -> float | None:
    """Free memory of the profiled device: CUDA's mem_get_info, else Linux's MemAvailable (None elsewhere)."""
    if be.torch is not None:
        return float(be.torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def profile(device: str = "cpu", quick: bool = False, out: str = "profile-out", model: str | None = None,
            progress=None, prompts: tuple | None = None, gen: int | None = None, batches: tuple | None = None) -> dict:
    """Run the benchmarks; write OUT/measurements.csv, OUT/microbench.csv, OUT/hardware/<id>.yaml.

        >>> costmodel.profile(device="cpu", quick=True, out="profile-out")   # then calibrate on profile-out/
    """
    if device not in ("cpu", "cuda"):
        raise ProfileError(f"--device {device}: expected cpu or cuda")
    if model is not None and not str(model).strip():
        raise ProfileError("--model '': expected a catalogue model id (run 'costmodel list models')")
    be = Backend(device)
    plan = plan_for(device, quick, model)
    if prompts:
        plan = Plan(**{**plan.__dict__, "prompts": tuple(prompts)})
    if gen:
        plan = Plan(**{**plan.__dict__, "gen": gen})
    if batches:
        plan = Plan(**{**plan.__dict__, "batches": tuple(batches)})
    arch = load_model(plan.model)
    e2e_dtype = "fp32" if device == "cpu" else "bf16"
    _check_room(arch, be, 4 if e2e_dtype == "fp32" else 2)
    date = datetime.date.today().isoformat()
    host = host_id()
    info = be.info()
    dev_id = device_id(host, device, info["name"])
    source = f"profile:{host}:{date}"
    steps = len(plan.gemm_shapes) * len(plan.gemm_dtypes) + 1 + len(plan.attention_kv) + 1 + \
        len(plan.prompts) * len(plan.batches)
    done = [0]

    def tick(what):
        done[0] += 1
        if progress:
            progress(done[0], steps, what)

    micro, skipped = [], []
    # matrix products
    for dt in plan.gemm_dtypes:
        for M, N, K in plan.gemm_shapes:
            try:
                t = kernel_time(be.matmul(M, N, K, dt), plan.repeats, be)
            except RuntimeError as exc:  # e.g. fp8 where cuBLASLt has no fp8 kernel (before Ada and Hopper)
                skipped.append(f"gemm {dt} {M}x{N}x{K}: {str(exc).splitlines()[0][:160]}")
                tick(f"gemm {dt} {M}x{N}x{K} skipped")
                continue
            micro.append({"kind": "gemm", "shape": f"{M}x{N}x{K}", "dtype": dt, "seconds": t,
                          "rate": 2.0 * M * N * K / t, "unit": "FLOP/s"})
            tick(f"gemm {dt} {M}x{N}x{K}")
    # streaming bandwidth: copy reads and writes every byte once
    n = plan.stream_bytes // 4
    src, dst = be.random((n,), "fp32", 1.0), be.random((n,), "fp32", 1.0)
    copy = (lambda: np.copyto(dst, src)) if be.torch is None else (lambda: dst.copy_(src))
    # eager calls: a device-to-device copy captured in a CUDA graph becomes a copy-engine node (2.7 against 4.2 TB/s)
    t = best_time(copy, plan.repeats, be.sync, calls=1 if be.torch is None else 8)
    micro.append({"kind": "stream_copy", "shape": f"{plan.stream_bytes}", "dtype": "fp32", "seconds": t,
                  "rate": 2.0 * plan.stream_bytes / t, "unit": "B/s"})
    # read-only streaming (a reduction): what reading the weights once per decode step does
    t = kernel_time(lambda: src.sum(), plan.repeats, be)
    micro.append({"kind": "stream_read", "shape": f"{plan.stream_bytes}", "dtype": "fp32", "seconds": t,
                  "rate": plan.stream_bytes / t, "unit": "B/s"})
    tick("stream copy and read")
    # decode attention: one query per head against L cached keys per head (the profiled model's heads)
    H, d = arch.heads, arch.head_dim
    for L in plan.attention_kv:
        q = be.random((1, H, 1, d), e2e_dtype, 1.0)
        k = be.random((1, H, L, d), e2e_dtype, 1.0)
        v = be.random((1, H, L, d), e2e_dtype, 1.0)

        t = kernel_time(lambda: be.attention(q, k, v), plan.repeats, be)
        bytes_kv = 2 * H * L * d * (4 if e2e_dtype == "fp32" else 2)
        micro.append({"kind": "attention_decode", "shape": f"H{H}xL{L}xd{d}", "dtype": e2e_dtype, "seconds": t,
                      "rate": bytes_kv / t, "unit": "B/s"})
        tick(f"attention L={L}")
    # end to end
    net = Transformer(arch, be, e2e_dtype)
    tick(f"built {arch.id} with random weights")
    rows = []
    rng = np.random.default_rng(1)
    for P in plan.prompts:
        for B in plan.batches:
            ids = rng.integers(0, arch.vocab_size, (B, P))
            if be.torch is not None:
                ids = be.torch.as_tensor(ids, device="cuda")
            try:
                if be.torch is None:
                    t_pre, t_dec, mode = eager_times(net, ids, plan.gen, max(1, plan.repeats - 2))
                else:
                    from costmodel.calibration.profile_cuda import e2e_times

                    t_pre, t_dec, mode = e2e_times(net, ids, plan.gen, max(1, plan.repeats - 2), eager_times)
            except be.out_of_memory as exc:  # this (batch, prompt) only: the others still measure
                if be.torch is not None:
                    be.torch.cuda.empty_cache()
                skipped.append(f"{arch.id} batch {B} prompt {P}: out of memory ({str(exc).splitlines()[0][:120]})")
                tick(f"{arch.id} batch {B} prompt {P} skipped")
                continue
            base = dict(source=source, hardware=dev_id, devices=1, tp=1, model=arch.id, format=e2e_dtype,
                        kv_format="", framework="numpy" if be.torch is None else "torch", batch=B,
                        context_tokens=0, notes=f"costmodel profile{' --quick' if quick else ''}; random weights; "
                                                f"{info['name']}; {mode}")
            tag = f"{dev_id}-{arch.id}-b{B}-p{P}"
            rows.append(Measurement(id=f"{tag}-prefill", prompt_tokens=P, output_tokens=0,
                                    metric="prefill_tokens_per_s", value=B * P / t_pre, **base))
            rows.append(Measurement(id=f"{tag}-ttft", prompt_tokens=P, output_tokens=1, metric="ttft_ms",
                                    value=t_pre * 1e3, **base))
            rows.append(Measurement(id=f"{tag}-decode", prompt_tokens=P, output_tokens=plan.gen + 1,
                                    metric="decode_tokens_per_s", value=1.0 / t_dec, **base))
            tick(f"{arch.id} batch {B} prompt {P}")
    outdir = Path(out)
    (outdir / "hardware").mkdir(parents=True, exist_ok=True)
    write_measurements(outdir / "measurements.csv", rows)
    _write_micro(outdir / "microbench.csv", micro, source)
    hw_path = _write_hardware(outdir / "hardware" / f"{dev_id}.yaml", dev_id, device, micro, source, info)
    return {"device": dev_id, "device_name": info["name"], "rows": len(rows), "micro": micro, "skipped": skipped,
            "measurements": str(outdir / "measurements.csv"), "hardware": str(hw_path), "source": source}


def _write_micro(path: Path, micro: list[dict], source: str) -> None:
    import csv

    from costmodel.spec.files import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["source", "kind", "shape", "dtype", "seconds", "rate", "unit"],
                           lineterminator="\n")
        w.writeheader()
        for r in micro:
            w.writerow({"source": source, **r})


def _write_hardware(path: Path, dev_id: str, device: str, micro: list[dict], source: str, info: dict) -> Path:
    import yaml

    best = {}
    for r in micro:
        if r["kind"] == "gemm":
            best[r["dtype"]] = max(best.get(r["dtype"], 0.0), r["rate"])
    bw = max(r["rate"] for r in micro if r["kind"] in ("stream_copy", "stream_read"))
    src_key = "measured"
    peak = {dt: {"value": f"{rate / 1e12:.4g} TFLOPS", "source": src_key,
                 "note": "best matrix product of the profile grid (measured, not a datasheet peak)"}
            for dt, rate in best.items()}
    if "fp32" not in peak:
        peak["fp32"] = {"value": f"{max(best.values()) / 1e12:.4g} TFLOPS", "source": src_key}
    entry = {
        "id": dev_id,
        "name": f"{info['name']} on {socket.gethostname()} (profiled)",
        "vendor": info["vendor"],
        "family": "cpu" if device == "cpu" else "nvidia-datacenter",
        "kind": "cpu" if device == "cpu" else "gpu",
        "memory_capacity": {"value": f"{info['memory_bytes'] / 1e9:.4g} GB", "source": info["memory_source"]},
        "memory_bandwidth": {"value": f"{bw / 1e9:.4g} GB/s", "source": src_key,
                             "note": "best of streaming read and copy (copy counts 2 bytes moved per byte)"},
        "peak": peak,
        "notes": f"Measured by costmodel profile; raw numbers in ../microbench.csv ({source}).",
    }
    doc = {"sources": {src_key: f"{source}: costmodel profile micro-benchmarks (microbench.csv beside this folder)",
                       info["memory_source"]: f"{source}: " + ("os.sysconf physical memory" if device == "cpu" else
                                                               "torch.cuda.get_device_properties(0).total_memory")},
           "devices": [entry]}
    from costmodel.spec.files import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
