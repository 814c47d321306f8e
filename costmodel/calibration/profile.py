"""`costmodel profile`: measure the machine it runs on and write schema rows + a hardware YAML.

Micro-benchmarks: matrix products over a grid of shapes and datatypes, streaming memory
bandwidth (copy), decode attention at several KV lengths. End to end: prefill and decode of
a real transformer with random weights built from a catalogue model's architecture
(numpy on the CPU; PyTorch on CUDA), timed per phase. Every number is the best of a few
repeats (the least disturbed run), and every row carries `source = profile:<host>:<date>`.
"""
from __future__ import annotations

import datetime
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costmodel.calibration.measurements import Measurement, write_measurements
from costmodel.calibration.profile_backend import Backend, ProfileError, device_id, first_line, host_id
from costmodel.calibration.profile_model import Transformer, eager_times
from costmodel.calibration.timing import best_time
from costmodel.spec.model import Model
from costmodel.spec.model_catalog import load_model


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


def kernel_time(fn, repeats: int, be, budget_s: float = 2e-3) -> float:
    """Seconds per call of a micro-benchmark: best_time on the CPU; on CUDA, calls replayed from a CUDA graph
    (profile_cuda.graph_time), so Python's launch does not count into a kernel of a few microseconds."""
    if be.torch is None:
        return best_time(fn, repeats, be.sync)
    from costmodel.calibration.profile_cuda import graph_time

    return graph_time(fn, repeats, be, budget_s)


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
                skipped.append(f"gemm {dt} {M}x{N}x{K}: {first_line(exc, 160)}")
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
            except be.out_of_memory as exc:  # this (batch, prompt) only: the others still measure (e2e_times has
                skipped.append(f"{arch.id} batch {B} prompt {P}: out of memory ({first_line(exc, 120)})")  # freed it)
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
