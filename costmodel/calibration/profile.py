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
    return Plan(((1, 2048, 2048), (8, 2048, 2048), (64, 2048, 2048), (256, 2048, 2048), (1024, 2048, 2048),
                 (2048, 4096, 4096)),
                ("fp32", "fp64") if device == "cpu" else ("bf16", "fp16", "fp32"), 512 << 20,
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

    def dtype(self, name: str):
        if self.torch is None:
            return {"fp32": np.float32, "fp64": np.float64, "fp16": np.float16}[name]
        t = self.torch
        return {"fp32": t.float32, "fp64": t.float64, "fp16": t.float16, "bf16": t.bfloat16}[name]

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


def best_time(fn, repeats: int, sync) -> float:
    fn()  # warm-up
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


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
            kk, vv = be.repeat_heads(k, H // Hk, 1), be.repeat_heads(v, H // Hk, 1)
            s = (q @ be.swap(kk, 2, 3)) * (1.0 / d ** 0.5)  # (B, H, T, L)
            if T > 1:  # causal mask over the new tokens
                L = kk.shape[2]
                mask = np.triu(np.full((T, L), -1e9, dtype=np.float32), k=L - T + 1)
                s = s + (mask if be.torch is None else be.torch.as_tensor(mask, device="cuda", dtype=s.dtype))
            p = be.exp(s - be.max_last(s))
            p = p / be.sum_last(p)
            o = be.swap(p @ vv, 1, 2).reshape(B, T, H * d)
            x = x + self.lin(o, layer["o"])
            y = x * be.rsqrt_mean_sq(x)
            u = self.lin(y, layer["up"])
            if m.gated_mlp:
                g, u = u[..., :m.intermediate_size], u[..., m.intermediate_size:]
                u = g / (1 + be.exp(-g)) * u
            else:
                u = u * (u > 0)
            x = x + self.lin(u, layer["down"])
        x = x * be.rsqrt_mean_sq(x)
        logits = x[:, -1] @ be.swap(self.head, 0, 1)
        return logits, new_cache


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
    dev_id = f"{host}-{device}"
    source = f"profile:{host}:{date}"
    steps = len(plan.gemm_shapes) * len(plan.gemm_dtypes) + 1 + len(plan.attention_kv) + 1 + \
        len(plan.prompts) * len(plan.batches)
    done = [0]

    def tick(what):
        done[0] += 1
        if progress:
            progress(done[0], steps, what)

    micro = []
    # matrix products
    for dt in plan.gemm_dtypes:
        for M, N, K in plan.gemm_shapes:
            a, b = be.random((M, K), dt, 1.0), be.random((K, N), dt, 1.0)
            t = best_time(lambda: a @ b, plan.repeats, be.sync)
            micro.append({"kind": "gemm", "shape": f"{M}x{N}x{K}", "dtype": dt, "seconds": t,
                          "rate": 2.0 * M * N * K / t, "unit": "FLOP/s"})
            tick(f"gemm {dt} {M}x{N}x{K}")
    # streaming bandwidth: copy reads and writes every byte once
    n = plan.stream_bytes // 4
    src, dst = be.random((n,), "fp32", 1.0), be.random((n,), "fp32", 1.0)
    copy = (lambda: np.copyto(dst, src)) if be.torch is None else (lambda: dst.copy_(src))
    t = best_time(copy, plan.repeats, be.sync)
    micro.append({"kind": "stream_copy", "shape": f"{plan.stream_bytes}", "dtype": "fp32", "seconds": t,
                  "rate": 2.0 * plan.stream_bytes / t, "unit": "B/s"})
    # read-only streaming (a reduction): what reading the weights once per decode step does
    t = best_time(lambda: src.sum(), plan.repeats, be.sync)
    micro.append({"kind": "stream_read", "shape": f"{plan.stream_bytes}", "dtype": "fp32", "seconds": t,
                  "rate": plan.stream_bytes / t, "unit": "B/s"})
    tick("stream copy and read")
    # decode attention: one query per head against L cached keys per head (the profiled model's heads)
    H, d = arch.heads, arch.head_dim
    for L in plan.attention_kv:
        q = be.random((1, H, 1, d), e2e_dtype, 1.0)
        k = be.random((1, H, L, d), e2e_dtype, 1.0)
        v = be.random((1, H, L, d), e2e_dtype, 1.0)

        def attn():
            s = q @ be.swap(k, 2, 3)
            p = be.exp(s - be.max_last(s))
            return (p / be.sum_last(p)) @ v

        t = best_time(attn, plan.repeats, be.sync)
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
            empty = [None] * arch.layers
            t_pre = best_time(lambda: net.forward(ids, empty), max(1, plan.repeats - 2), be.sync)
            _, cache = net.forward(ids, empty)
            nxt = ids[:, -1:]
            be.sync()
            t0 = time.perf_counter()
            for _ in range(plan.gen):
                _, cache = net.forward(nxt, cache)
            be.sync()
            t_dec = (time.perf_counter() - t0) / plan.gen
            base = dict(source=source, hardware=dev_id, devices=1, tp=1, model=arch.id, format=e2e_dtype,
                        kv_format="", framework="numpy" if be.torch is None else "torch", batch=B,
                        context_tokens=0, notes=f"costmodel profile{' --quick' if quick else ''}; random weights; "
                                                f"{_cpu_name() if device == 'cpu' else 'cuda'}")
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
    hw_path = _write_hardware(outdir / "hardware" / f"{dev_id}.yaml", dev_id, device, micro, source)
    return {"device": dev_id, "rows": len(rows), "micro": micro, "measurements": str(outdir / "measurements.csv"),
            "hardware": str(hw_path), "source": source}


def _write_micro(path: Path, micro: list[dict], source: str) -> None:
    import csv

    from costmodel.spec.files import atomic_output

    with atomic_output(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["source", "kind", "shape", "dtype", "seconds", "rate", "unit"],
                           lineterminator="\n")
        w.writeheader()
        for r in micro:
            w.writerow({"source": source, **r})


def _write_hardware(path: Path, dev_id: str, device: str, micro: list[dict], source: str) -> Path:
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
        "name": f"{_cpu_name() if device == 'cpu' else 'CUDA device'} on {socket.gethostname()} (profiled)",
        "vendor": platform.machine(),
        "family": "cpu" if device == "cpu" else "nvidia-datacenter",
        "kind": "cpu" if device == "cpu" else "gpu",
        "memory_capacity": {"value": f"{_memory_bytes() / 1e9:.4g} GB", "source": "os"},
        "memory_bandwidth": {"value": f"{bw / 1e9:.4g} GB/s", "source": src_key,
                             "note": "best of streaming read and copy (copy counts 2 bytes moved per byte)"},
        "peak": peak,
        "notes": f"Measured by costmodel profile; raw numbers in ../microbench.csv ({source}).",
    }
    doc = {"sources": {src_key: f"{source}: costmodel profile micro-benchmarks (microbench.csv beside this folder)",
                       "os": f"{source}: os.sysconf physical memory"},
           "devices": [entry]}
    from costmodel.spec.files import atomic_output

    with atomic_output(path) as tmp:
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path
