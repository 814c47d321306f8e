"""The `costmodel` command: parse, call one library function, render. Nothing else."""
from __future__ import annotations

import copy
import json
import sys
from enum import Enum
from typing import Optional

import typer

from costmodel.errors import CostModelError, WorkloadError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},  # -h as well: it was "No such option"
                  help="Analytical cost and roofline model for transformer inference.")


class Catalogue(str, Enum):
    hardware = "hardware"
    models = "models"
    formats = "formats"
    engines = "engines"


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, soft_wrap=False, width=160 if not sys.stdout.isatty() else None)


def _finite(obj):
    """JSON has no NaN or infinity: they become null."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _print_json(obj) -> None:
    typer.echo(json.dumps(_finite(obj), indent=2, allow_nan=False, default=str))


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show the traceback of errors."),
          force: bool = typer.Option(False, "--force", help="Replace a file that --out or --plot would overwrite "
                                                             "(anywhere on the line).")) -> None:  # main() reads it
    """Estimate latency, throughput, memory, energy and dollars of model M on hardware H in format F."""


Model = typer.Argument(..., help="Model id or alias (llama-3.1-70b, llama-70b), a YAML spec or a HF config.json.")
Hw = typer.Option(..., "--hw", help="Hardware id or alias (h100-sxm, h100, m2-pro) or a YAML spec.")
Fmt = typer.Option("bf16", "--fmt", help="Numeric format: fp32 bf16 fp16 fp8 w8a8-int8 w8a16 w4a16 w4a8 nvfp4 mxfp4 mxfp8 mxint8 q8_0 q4_0 q4_k_m.")
KvFmt = typer.Option(None, "--kv-fmt", help="KV-cache format (default: the format's own KV format).")
Batch = typer.Option("1", "--batch", help="Concurrent sequences per replica, or 'max' (largest that fits).")
Prompt = typer.Option(None, "--prompt", help="Prompt tokens per sequence (default 512; one image for ViT).")
Gen = typer.Option(128, "--gen", help="Generated tokens per sequence.")
Context = typer.Option(0, "--context", help="Tokens already in the KV cache before the prompt (prefix cache).")
Tp = typer.Option(None, "--tp", help="Tensor-parallel degree: the devices of one replica, as SGLang's --tp and TensorRT-LLM's tp_size count them [default: 1, or the lcm of --dp and --ep].")
Dp = typer.Option(1, "--dp", help="Attention data-parallel groups within the --tp devices (SGLang --dp with --enable-dp-attention; TensorRT-LLM enable_attention_dp): attention runs on tp/dp devices per group, each with its own sequences and KV.")
Imbalance = typer.Option(None, "--expert-imbalance", help="Busiest expert-parallel rank's routed tokens over the mean [default: 2.56, measured without EPLB; 1.11 with EPLB; 1 = uniform].")
Overlap = typer.Option(None, "--overlap-comm/--no-overlap-comm", help="Hide collectives under compute (SGLang --enable-two-batch-overlap) [default: the engine's, off].")
AllReduce = typer.Option(None, "--allreduce", help="All-reduce algorithm: ring (the fitted default) or nvls (in-switch reduction, where the device states its gain: H100/H200 SXM).")
Images = typer.Option(0, "--images", help="Images per request for a vision-language model: its vision tower runs on them and their visual tokens join the prompt (a cross-attention model's cross layers attend to them instead).")
ImageSize = typer.Option(None, "--image-size", help="Image size WIDTHxHEIGHT in pixels [default: the tower's native size].")
VisualTokens = typer.Option(None, "--visual-tokens", help="Visual tokens per image instead of the tower's count for --image-size.")
PrefixHit = typer.Option(None, "--prefix-hit", help="Share of each prompt already in the prefix cache (0 to <1): read as context, not prefilled.")
Mtp = typer.Option(0, "--mtp", help="Draft tokens per decode step (DeepSeek MTP, EAGLE), verified by the model in one forward.")
AcceptRate = typer.Option(None, "--accept-rate", help="Acceptance rate of each draft token [default: 0.875, DeepSeek-V3's report].")
AcceptLength = typer.Option(None, "--accept-length", help="Measured acceptance length instead: mean tokens per decode step (1 .. mtp+1).")
Ep = typer.Option(1, "--ep", help="Expert-parallel degree within the --tp devices (SGLang --ep, TensorRT-LLM moe_ep_size, vLLM --enable-expert-parallel): experts sharded over ep, each over tp/ep devices.")
Pp = typer.Option(1, "--pp", help="Pipeline-parallel degree.")
Devices = typer.Option(None, "--devices", help="Total devices; replicas = devices / (tp x pp).")
Native = typer.Option(False, "--native-only", help="Refuse formats the device cannot run natively instead of emulating.")
KvPredict = typer.Option(None, "--kv-predict", help="Auxiliary model whose prefill + KV projection replaces the base prefill (KV Prediction).")
OutputReduction = typer.Option(0.0, "--output-reduction", help="Scale generated tokens by 1 - R (early exit / effort control).")
Grid = typer.Option(None, "--grid-gco2-per-kwh", help="Grid carbon intensity: adds grams of CO2 per query and per million tokens.")
MemFraction = typer.Option(None, "--mem-fraction", help="The engine's memory fraction: vLLM gpu-memory-utilization (of total), SGLang mem-fraction-static, TensorRT-LLM free_gpu_memory_fraction (of memory free after weights).")
MaxModelLen = typer.Option(None, "--max-model-len", help="The engine's --max-model-len: the KV pool must hold one sequence this long; sets 'maximum concurrency'.")
StreamInterval = typer.Option(None, "--stream-interval", help="Under load: the server's tokens per streamed chunk (TensorRT-LLM/vLLM stream_interval; default 1). ITL becomes the time of that many decode steps.")
NumPrompts = typer.Option(None, "--num-prompts", help="With --concurrency: the benchmark's total requests (its --num-prompts). Its first C start together; their prefill queue is the TTFT tail of a short benchmark. Default: the steady state only.")
Simulate = typer.Option(False, "--simulate", help="Under load: latencies from an event-driven simulation of the scheduler (chunked prefill, FCFS) instead of the analytical model; better for TTFT means and tails of short benchmarks, about 10 ms.")
KvBlock = typer.Option(None, "--kv-block-size", help="KV block/page size in tokens (vLLM 16, TensorRT-LLM 32, SGLang 1, llama.cpp 256); sequences round up to it.")
Concurrency = typer.Option(None, "--concurrency", help="Serve a closed loop of C clients (a benchmark's --max-concurrency C); with --request-rate, the max concurrency. Reports mean and P50/P90/P99 TTFT, TPOT, ITL, E2E.")
Turns = typer.Option(None, "--turns", help="Under load: multi-turn conversations of T turns, each adding --prompt new and --gen answer tokens; a turn resends the history, which the prefix cache holds (sets the prompt lengths and --prefix-hit).")
PrefixTokens = typer.Option(None, "--prefix-tokens", help="Under load, with --prefix-hit: the distinct reused tokens per replica (the prefix cache's working set); the part the KV pool's free room cannot hold spills to --kv-offload or is prefilled again.")
KvOffload = typer.Option(None, "--kv-offload", help="With --prefix-tokens: an offload tier for the prefix cache, cpu:GIB[@GB/s] (host memory per replica, read over the spec's host link) or nvme:GIB@GB/s.")
Disagg = typer.Option(None, "--disagg", help="Under load: split prefill and decode workers, e.g. 2p:tp4,1d:tp8 (each side COUNT p|d, then :tpN :dpN :epN, @DEVICE for another device); the KV moves over --kv-link.")
KvLink = typer.Option(None, "--kv-link", help="With --disagg: the link KV moves on, per device: auto (default: the scale-up fabric when the whole deployment fits one scale-up domain, else the NIC), scale-out (the NIC in the device spec), scale-up (its NVLink / fabric) or GB/s.")
KvOverlap = typer.Option(False, "--kv-overlap", help="With --disagg: KV sent layer by layer during the prefill (only the part the prefill does not hide is waited for).")
RequestRate = typer.Option(None, "--request-rate", help="Serve Poisson arrivals at R requests/s (open loop).")
PromptDist = typer.Option(None, "--prompt-dist", help="Prompt lengths under load: fixed, uniform:R (on [R*P, P], a benchmark's --random-range-ratio) or lognormal:MEAN,SIGMA.")
GenDist = typer.Option(None, "--gen-dist", help="Output lengths under load: fixed, uniform:R or lognormal:MEAN,SIGMA.")
Engine = typer.Option("auto", "--engine", help="Inference engine whose calibration applies: auto (the device family's default), trt-llm, vllm, sglang, llama.cpp, mlc, ideal.")


def _estimate(model, hw, fmt, kv_fmt, batch, prompt, gen, context, tp, pp, devices, native_only, engine, **extra):
    from costmodel.estimate import estimate, require_fit

    e = estimate(model, hw, fmt, kv_fmt=kv_fmt, batch=batch, prompt=prompt, gen=gen, context=context,
                 tp=tp, pp=pp, devices=devices, native_only=native_only, engine=engine, **extra)
    return require_fit(e)


def _notes(e) -> None:
    err = _console(stderr=True)
    for alias, target in e.resolved.items():
        err.print(f"[dim]'{alias}' resolved to '{target}'[/dim]")
    for note in e.notes:
        err.print(f"[yellow]note:[/yellow] {note}")


@app.command()
def estimate(model: str = Model, hw: str = Hw, fmt: str = Fmt, kv_fmt: Optional[str] = KvFmt,
             batch: str = Batch, prompt: Optional[int] = Prompt, gen: int = Gen, context: int = Context,
             tp: Optional[int] = Tp, pp: int = Pp, devices: Optional[int] = Devices, native_only: bool = Native,
             dp: int = Dp, ep: int = Ep, expert_imbalance: Optional[float] = Imbalance,
             mtp: int = Mtp, accept_rate: Optional[float] = AcceptRate, accept_length: Optional[float] = AcceptLength,
             overlap_comm: Optional[bool] = Overlap, allreduce: Optional[str] = AllReduce,
             images: int = Images, image_size: Optional[str] = ImageSize, visual_tokens: Optional[int] = VisualTokens,
             prefix_hit: Optional[float] = PrefixHit, engine: str = Engine, kv_predict: Optional[str] = KvPredict,
             output_reduction: float = OutputReduction, grid_gco2_per_kwh: Optional[float] = Grid,
             mem_fraction: Optional[float] = MemFraction, max_model_len: Optional[int] = MaxModelLen,
             kv_block_size: Optional[int] = KvBlock, concurrency: Optional[float] = Concurrency,
             request_rate: Optional[float] = RequestRate, prompt_dist: Optional[str] = PromptDist,
             gen_dist: Optional[str] = GenDist, stream_interval: Optional[int] = StreamInterval,
             num_prompts: Optional[int] = NumPrompts, simulate: bool = Simulate, disagg: Optional[str] = Disagg,
             kv_link: Optional[str] = KvLink, kv_overlap: bool = KvOverlap,
             prefix_tokens: Optional[float] = PrefixTokens, kv_offload: Optional[str] = KvOffload,
             turns: Optional[int] = Turns,
             plot: Optional[str] = typer.Option(None, "--plot", help="Draw the memory breakdown per device to FILE.png/.svg."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON (SI units)."),
             as_csv: bool = typer.Option(False, "--csv", help="Print CSV (SI units).")) -> None:
    """Latency (TTFT, TPOT), throughput, memory, energy and $ of one configuration (a static batch),
    or under load with --concurrency / --request-rate."""
    from costmodel.cli.render import estimate_table, to_csv

    if stream_interval is not None and concurrency is None and request_rate is None:
        raise WorkloadError(f"--stream-interval {stream_interval}: applies under load; give --concurrency C or "
                            f"--request-rate R too")
    if simulate and concurrency is None and request_rate is None:
        raise WorkloadError("--simulate: applies under load; give --concurrency C or --request-rate R too")
    if as_json and as_csv:
        raise WorkloadError("--json and --csv: give one output format")
    if plot and (concurrency is not None or request_rate is not None):  # it drew nothing there, silently
        raise WorkloadError(f"--plot {plot}: draws a static batch's memory; under a load draw the curve with "
                            f"costmodel serve-curve --plot")
    for flag, value in (("--prompt-dist", prompt_dist), ("--gen-dist", gen_dist)):
        if value is not None and concurrency is None and request_rate is None:  # a static batch has one length
            raise WorkloadError(f"{flag} {value}: applies under load; give --concurrency C or --request-rate R too")
    if num_prompts is not None and (concurrency is None or request_rate is not None):
        raise WorkloadError(f"--num-prompts {num_prompts}: applies to a closed loop; give --concurrency C "
                            f"(without --request-rate)")
    if images and (concurrency is not None or request_rate is not None):
        raise WorkloadError(f"--images {images}: applies to a static batch (--batch) for now; under a load give the "
                            f"visual tokens in --prompt")
    if (prefix_tokens is not None or kv_offload is not None) and (concurrency is None and request_rate is None
                                                                    or disagg is not None):
        raise WorkloadError("--prefix-tokens / --kv-offload: apply under load to an aggregated deployment; give "
                            "--concurrency C or --request-rate R (without --disagg)")
    if turns is not None and (concurrency is None and request_rate is None or disagg is not None):
        raise WorkloadError(f"--turns {turns}: applies under load to an aggregated deployment; give --concurrency C "
                            f"or --request-rate R (without --disagg)")
    if (kv_link is not None or kv_overlap) and disagg is None:
        raise WorkloadError("--kv-link / --kv-overlap: apply to a split deployment; give --disagg too")
    if disagg is not None:
        if concurrency is None and request_rate is None:
            raise WorkloadError(f"--disagg {disagg}: applies under load; give --concurrency C or --request-rate R too")
        for name, value in (("--tp", tp), ("--devices", devices), ("--num-prompts", num_prompts),
                            ("--simulate", simulate or None), ("--dp", dp if dp != 1 else None),
                            ("--ep", ep if ep != 1 else None), ("--pp", pp if pp != 1 else None)):
            if value is not None:
                shown = name if value is True else f"{name} {value}"  # a flag has no value to print
                raise WorkloadError(f"{shown}: with --disagg each side's layout is in --disagg "
                                    f"(e.g. 2p:tp4,1d:tp8:dp8:ep8); the pipeline and the simulation are not modelled")
    if concurrency is not None or request_rate is not None:
        from costmodel.cli.render import serving_table
        from costmodel.serving import serve_load

        _static_only(batch, context, output_reduction, grid_gco2_per_kwh, kv_predict, image_size, visual_tokens)
        # the replica's estimate takes these as the static one does (--native-only refuses an emulated format there)
        flags = {k: v for k, v in (("native_only", native_only or None), ("mem_fraction", mem_fraction),
                                   ("max_model_len", max_model_len),
                                   ("kv_block_size", kv_block_size), ("expert_imbalance", expert_imbalance),
                                   ("mtp", mtp or None), ("accept_rate", accept_rate),
                                   ("accept_length", accept_length), ("overlap_comm", overlap_comm),
                                   ("allreduce", allreduce), ("prefix_hit", prefix_hit)) if v is not None}
        if disagg is not None:
            from costmodel.serving_split import serve_disagg

            d = serve_disagg(model, hw, fmt, disagg, concurrency=concurrency, request_rate=request_rate,
                             prompt=prompt if prompt is not None else 512, gen=gen, prompt_dist=prompt_dist,
                             gen_dist=gen_dist, engine=engine, kv_fmt=kv_fmt, stream_interval=stream_interval,
                             kv_link=kv_link, kv_overlap=kv_overlap, **flags)
        else:
            d = serve_load(model, hw, fmt, concurrency=concurrency, request_rate=request_rate,
                           prompt=prompt if prompt is not None else 512, gen=gen, prompt_dist=prompt_dist,
                           gen_dist=gen_dist, tp=tp, pp=pp, devices=devices, engine=engine, kv_fmt=kv_fmt, dp=dp,
                           ep=ep, stream_interval=stream_interval, num_prompts=num_prompts, simulate=simulate,
                           prefix_tokens=prefix_tokens, kv_offload=kv_offload, turns=turns, **flags)
        if as_json:
            _print_json(d)
        elif as_csv:
            typer.echo(to_csv([d]), nl=False)
        else:
            _console().print(serving_table(d))
        return

    e = _estimate(model, hw, fmt, kv_fmt, batch, prompt, gen, context, tp, pp, devices, native_only, engine,
                  kv_predict=kv_predict, output_reduction=output_reduction, grid_gco2_per_kwh=grid_gco2_per_kwh,
                  mem_fraction=mem_fraction, max_model_len=max_model_len, kv_block_size=kv_block_size, dp=dp, ep=ep,
                  expert_imbalance=expert_imbalance, mtp=mtp, accept_rate=accept_rate, accept_length=accept_length,
                  overlap_comm=overlap_comm, allreduce=allreduce, images=images, image_size=image_size,
                  visual_tokens=visual_tokens, prefix_hit=prefix_hit)
    d = e.to_dict()
    if plot:
        from costmodel.plots import memory_plot

        memory_plot([e], plot)
    if as_json:
        _print_json(d)
    elif as_csv:
        typer.echo(to_csv([d]), nl=False)
    else:
        _notes(e)
        _console().print(estimate_table(d))


@app.command()
def explain(model: str = Model, hw: str = Hw, fmt: str = Fmt, kv_fmt: Optional[str] = KvFmt,
            batch: str = Batch, prompt: Optional[int] = Prompt, gen: int = Gen, context: int = Context,
            tp: Optional[int] = Tp, pp: int = Pp, devices: Optional[int] = Devices, native_only: bool = Native,
            dp: int = Dp, ep: int = Ep, expert_imbalance: Optional[float] = Imbalance,
            mtp: int = Mtp, accept_rate: Optional[float] = AcceptRate, accept_length: Optional[float] = AcceptLength,
            overlap_comm: Optional[bool] = Overlap, allreduce: Optional[str] = AllReduce,
            engine: str = Engine, mem_fraction: Optional[float] = MemFraction,
            max_model_len: Optional[int] = MaxModelLen, kv_block_size: Optional[int] = KvBlock,
            plot: Optional[str] = typer.Option(None, "--plot", help="Draw the roofline with the operators to FILE.png/.svg."),
            as_json: bool = typer.Option(False, "--json", help="Print the per-operator rows as JSON.")) -> None:
    """Per-operator table (FLOPs, bytes, intensity, bound, time share) for prefill and decode."""
    from costmodel.cli.render import explain_table

    e = _estimate(model, hw, fmt, kv_fmt, batch, prompt, gen, context, tp, pp, devices, native_only, engine,
                  mem_fraction=mem_fraction, max_model_len=max_model_len, kv_block_size=kv_block_size, dp=dp, ep=ep,
                  expert_imbalance=expert_imbalance, mtp=mtp, accept_rate=accept_rate, accept_length=accept_length,
                  overlap_comm=overlap_comm, allreduce=allreduce)
    rows = e.explain()
    if plot:
        from costmodel.plots import roofline_plot

        roofline_plot(e, plot)
    if as_json:
        _print_json(rows)
        return
    _notes(e)
    title = (f"{e.model.id} on {e.hardware.id} in {e.format.id} ({e.plan.label}): batch {e.batch}, "
             f"prompt {e.workload.prompt}, decode context {e.workload.context + e.workload.prompt}..")
    _console().print(explain_table(rows, title))
    if plot:
        _console(stderr=True).print(f"roofline plot written to {plot}")


@app.command("list")
def list_(kind: Catalogue = typer.Argument(..., help="hardware, models, formats or engines"),
          as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List catalogue entries with their key figures."""
    from rich.table import Table

    from costmodel.cli.describe import list_rows
    from costmodel.cli.render import human

    rows = list_rows(kind.value)
    if as_json:
        _print_json(rows)
        return
    t = Table(title=f"{len(rows)} {kind.value}", title_justify="left")
    cols = [c for c in rows[0] if c not in ("name",)]
    headers = {"memory_bytes": "memory", "bandwidth_bytes_per_s": "bandwidth", "bf16_flops": "bf16 peak (dense)",
               "fp8_flops": "fp8 peak", "fp4_flops": "fp4 peak", "tdp_w": "TDP (W)", "usd_per_hour": "cloud $/hour",
               "active_params": "active params", "hidden_size": "hidden", "kv_heads": "KV heads",
               "weight_bits": "weight bits", "activation_bits": "activation bits", "kv_bits": "KV bits",
               "compute": "native units", "emulate": "emulated on"}
    for c in cols:  # ids never wrap or get cut: other columns fold instead
        t.add_column(headers.get(c, c.replace("_", " ")), no_wrap=c == "id",
                     min_width=max(len(str(r["id"])) for r in rows) if c == "id" else None, overflow="fold")
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, list):
                cells.append(", ".join(map(str, v)))
            elif c.endswith("flops") and v:
                cells.append(f"{v / 1e12:,.4g} TFLOP/s")
            elif c == "memory_bytes":
                cells.append(human("x_bytes", v))
            elif c == "bandwidth_bytes_per_s":
                cells.append(f"{v / 1e9:,.4g} GB/s")
            elif c in ("params", "active_params") and v:
                cells.append(f"{v / 1e9:.3f} B")
            else:
                cells.append(human(c, v))
        t.add_row(*cells)
    _console().print(t)


@app.command()
def show(name: str = typer.Argument(..., help="A hardware, model or format id or alias."),
         as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show one spec with the source of every figure."""
    from rich.table import Table

    from costmodel.cli.describe import show_rows

    kind, sid, rows = show_rows(name)
    if as_json:
        _print_json({"kind": kind, "id": sid, "fields": rows})
        return
    t = Table(title=f"{ {'models': 'model', 'formats': 'format'}.get(kind, kind)}: {sid}", title_justify="left", show_lines=False)
    t.add_column("field")
    t.add_column("value")
    t.add_column("source", overflow="fold")
    for r in rows:
        t.add_row(r["field"], str(r["value"]), r["source"])
    _console().print(t)


def _with_profile_dirs(paths: list[str]) -> None:
    """A measurement file next to hardware/ or models/ folders (a profile run) brings its specs."""
    from costmodel.calibration.run import env_with, spec_dirs

    for folder in spec_dirs(paths):
        env_with(str(folder))


@app.command()
def profile(device: str = typer.Option("cpu", "--device", help="cpu (numpy) or cuda (PyTorch)."),
            quick: bool = typer.Option(False, "--quick", help="A small grid that finishes in under a minute on 2 CPU cores."),
            out: str = typer.Option("profile-out", "--out", help="Folder for measurements.csv, microbench.csv, hardware/."),
            model: Optional[str] = typer.Option(None, "--model", help="Catalogue model whose architecture the end-to-end run builds."),
            as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Measure this machine: micro-benchmarks + end-to-end prefill/decode of a real transformer."""
    from pathlib import Path

    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn

    from costmodel.calibration.profile import profile as run_profile
    from costmodel.cli import checks
    from costmodel.cli.render import progress_bar

    if (Path(out) / "measurements.csv").exists() and not checks.FORCE:
        raise checks.OptionError(f"--out {out}: it already holds a profile (measurements.csv); pass --force to "
                                 f"replace it or another folder")
    cols = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
    with progress_bar(_console(stderr=True), *cols) as bar:
        task = bar.add_task("profiling", total=None)
        result = run_profile(device, quick, out, model,
                             progress=lambda i, n, what: bar.update(task, total=n, completed=i, description=what))
    if as_json:
        _print_json(result)
        return
    con = _console()
    for r in result["micro"]:
        unit = "GB/s" if r["unit"] == "B/s" else "GFLOP/s"
        con.print(f"{r['kind']:17s} {r['dtype']:5s} {r['shape']:>18s}  {r['rate'] / 1e9:10.1f} {unit}")
    for what in result["skipped"]:
        con.print(f"skipped {what}")
    con.print(f"wrote {result['rows']} rows to {result['measurements']} and the device spec {result['hardware']}")
    con.print(f"next: costmodel calibrate {result['measurements']} && costmodel validate {result['measurements']}")


@app.command()
def calibrate(files: list[str] = typer.Argument(..., help="Measurement CSVs (data/SCHEMA.md)."),
              out: Optional[str] = typer.Option(None, "--out", help="Folder that receives calibration/fitted.yaml (default: install into the user catalogue, ~/.config/costmodel or $COSTMODEL_HOME, so estimates use it from now on)."),
              engine: Optional[str] = typer.Option(None, "--engine", help="Treat every row as this engine (default: each row's framework)."),
              cross_validate: bool = typer.Option(True, "--cross-validate/--no-cross-validate",
                                                  help="Leave-one-device-out refits: honest error and the interval residuals."),
              as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Fit efficiencies and overheads (engine -> family -> device) to measurements."""
    from costmodel.calibration.run import run
    from costmodel.cli.render import progress_bar, stats_table

    _with_profile_dirs(files)
    with progress_bar(_console(stderr=True)) as bar:
        task = bar.add_task("leave-one-device-out", total=None)

        def progress(i, n, dev):
            bar.update(task, total=n, completed=i, description=f"leave-one-device-out: {dev}")

        from costmodel.cli import checks

        summary = run(files, out, engine, cross_validate, progress, force=checks.FORCE)
    if as_json:
        _print_json(summary)
        return
    con = _console()
    con.print(f"fitted {summary['parameters']} parameters on {summary['rows_used']} rows "
              f"({summary['rows_skipped']} skipped); wrote {summary['path']}")
    if summary.get("installed"):
        inst = summary["installed"]
        engines = ", ".join(f"{d} -> {e}" for d, e in inst["default_engine"].items())
        con.print(f"installed into the user catalogue {inst['catalogue']}: estimates on these devices now use this "
                  f"calibration by default ({engines}); delete {summary['path']} to undo")
    if summary.get("note"):
        con.print(f"[yellow]note:[/yellow] {summary['note']}")
    for key, title in (("uncalibrated", "datasheet engine, sourced defaults"), ("in_sample", "calibrated, in-sample"),
                       ("leave_one_device_out", "calibrated, leave-one-device-out")):
        if key in summary:
            con.print(stats_table(f"error: {title}", summary[key]))


@app.command()
def validate(files: list[str] = typer.Argument(None, help="Measurement CSVs (default: the shipped set)."),
             engine: Optional[str] = typer.Option(None, "--engine", help="Predict every row with this engine's calibration."),
             worst: int = typer.Option(10, "--worst", help="How many of the worst rows to list."),
             as_json: bool = typer.Option(False, "--json", help="Print the full report (rows_detail, skipped) as JSON.")) -> None:
    """Predict every measured row and report the error: overall, by device, metric, engine and source."""
    from costmodel.calibration.measurements import shipped_measurements
    from costmodel.cli.render import stats_table, worst_table
    from costmodel.calibration.validate import validate as run_validate

    paths = list(files) if files else [str(shipped_measurements())]
    _with_profile_dirs(paths)
    report = run_validate(paths, engine, worst)
    if as_json:
        _print_json(report)
        return
    con = _console()
    con.print(f"{report['scored']} of {report['rows']} rows scored, {report['skipped_count']} skipped")
    if report["scored"]:
        con.print(stats_table("overall", {"all": report["overall"]}))
        for key in ("by_metric", "by_engine", "by_layout", "by_source", "by_device"):
            con.print(stats_table(key.replace("_", " "), report[key]))
        cov = report["interval_coverage"]
        if cov["covered"] is not None:
            con.print(f"measured values inside the 80% interval: {100 * cov['covered']:.1f}% of {cov['n']} rows")
            for key in ("by_engine", "by_calibration_level", "by_load", "by_layout"):
                parts = ", ".join(f"{k} {100 * v['covered']:.0f}% ({v['n']})" for k, v in cov[key].items())
                con.print(f"  {key.replace('_', ' ')}: {parts}")
        con.print(worst_table(report["worst"]))
        if report["memory_disagreements"]:
            con.print(f"measured runs the memory model would not fit (scored anyway): "
                      f"{', '.join(report['memory_disagreements'])}")
    for s in report["skipped"][:20]:
        _console(stderr=True).print(f"[yellow]skipped[/yellow] {s['id']}: {s['reason']}")


@app.command("import-bench")
def import_bench(files: list[str] = typer.Argument(..., help="Result files of vllm bench serve (JSON), sglang.bench_serving (JSONL), genai-perf/AIPerf or GuideLLM."),
                 model: str = typer.Option(..., "--model", help="The model that was served (catalogue id, alias or spec path)."),
                 hw: str = typer.Option(..., "--hw", help="The device it ran on."),
                 fmt: str = typer.Option("bf16", "--fmt", help="Its numeric format."),
                 engine: str = typer.Option(..., "--engine", help="The serving engine: vllm, sglang, trt-llm, ..."),
                 tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree of one replica."),
                 devices: Optional[int] = typer.Option(None, "--devices", help="Total devices (replicas = devices / tp)."),
                 kv_fmt: str = typer.Option("", "--kv-fmt", help="KV-cache format, if not the format's own."),
                 out: str = typer.Option(..., "--out", help="Measurement CSV to write (data/SCHEMA.md); then run costmodel validate on it.")) -> None:
    """Turn serving-benchmark result files into measurement rows for validate and calibrate."""
    from costmodel.calibration.import_bench import import_bench as run
    from costmodel.calibration.measurements import write_measurements

    rows = run(files, model, hw, fmt, engine, tp, devices, kv_fmt)
    write_measurements(out, rows)
    loads = sorted({f"{r.load} {r.batch if r.load == 'closed' else r.request_rate}" for r in rows})
    _console().print(f"wrote {len(rows)} rows ({len(loads)} loads: {', '.join(loads)}) to {out}; next: "
                     f"costmodel validate {out}")


from costmodel.cli.analyses import register as _register_analyses  # noqa: E402

from costmodel.cli.sweeps import register as _register_sweeps  # noqa: E402

from costmodel.cli.plan import register as _register_plan  # noqa: E402

from costmodel.cli.train import register as _register_train  # noqa: E402

_register_analyses(app, _console, _print_json)
_register_sweeps(app, _console, _print_json)
_register_plan(app, _console, _print_json)
_register_train(app, _console, _print_json)


def _bare_help(original):
    def get_help_option(ctx):
        opt = original(ctx)
        if opt is not None:
            opt.metavar = ""
        return opt

    return get_help_option


def _app_for(args: list[str]) -> typer.Typer:
    """The app with only the command `args` name (the root takes no option with a value, so it is the
    first word that is not an option): typer builds every registered command's click parameters, 23 of
    them, on each start. Help, an unknown name or none get the whole app."""
    words = [a for a in args if not a.startswith("-")]
    name = words[0] if words else None
    if name is None or any(a in ("--help", "-h") for a in args[:args.index(name)]):
        return app  # `costmodel --help estimate` lists every command
    chosen = [c for c in app.registered_commands
              if (c.name or typer.main.get_command_name(c.callback.__name__)) == name]
    if not chosen or app.registered_groups:
        return app
    one = copy.copy(app)
    one.registered_commands = chosen
    return one


def _command(force: bool = False, args: list[str] | None = None):
    """The click command of the app (of only the command `args` run, when they name one), with every
    option checked at the edge (cli/checks.py) and on/off flags shown bare in --help (click >= 8.2
    would print them as `--json <bool>`)."""
    from costmodel.cli.checks import install

    cmd = typer.main.get_command(app if args is None else _app_for(args))
    install(cmd, force)
    stack = [cmd]
    while stack:
        c = stack.pop()
        for p in c.params:
            if getattr(p, "is_flag", False):  # typer vendors its own click: no isinstance check
                p.metavar = ""
        c.get_help_option = _bare_help(c.get_help_option)
        stack.extend(getattr(c, "commands", {}).values())
    return cmd


def main(argv: list[str] | None = None) -> None:
    """Entry point: CostModelError -> one line on stderr, exit code 2 (traceback with --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    force = "--force" in args
    args = [a for a in args if a not in ("--debug", "--force")]
    try:
        cmd = _command(force, args)
        _once_each(cmd, args)
        code = cmd(args=args, prog_name="costmodel", standalone_mode=False)
    except CostModelError as exc:
        if debug:
            raise
        _fail(_message(exc))
    except KeyboardInterrupt:
        sys.stderr.write("costmodel: interrupted\n")
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer vendors its own click): one line, exit 2
        if debug:
            raise
        if not hasattr(exc, "format_message"):  # a bug, not bad input: say so in one line
            _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug for the traceback and "
                  f"please report it", 70)
        if type(exc).__name__ == "Abort":
            sys.stderr.write("costmodel: interrupted\n")
            sys.exit(130)
        message = " ".join(exc.format_message().split())
        if not message:  # `costmodel` alone: the help was printed
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        _fail(message + where, getattr(exc, "exit_code", 2) or 2)
    if isinstance(code, int) and code:
        sys.exit(code)


def _once_each(cmd, args: list) -> None:
    """Refuse an option given twice where the command takes one value (click keeps the last one silently:
    `--batch 4 --batch 8` ran batch 8), counting a flag's two spellings as one (`--overlap-comm
    --no-overlap-comm`); options that take a list (`--price-per-hour`) may repeat."""
    sub = getattr(cmd, "commands", {}).get(next((a for a in args if not a.startswith("-")), ""), cmd)
    owner = {o: p for p in sub.params for o in (*getattr(p, "opts", ()), *getattr(p, "secondary_opts", ()))}
    given = [a.split("=", 1)[0] for a in args[:args.index("--") if "--" in args else len(args)] if a.startswith("--")]
    spellings: dict = {}  # each parameter's spellings on the line, in order
    for a in given:
        spellings.setdefault(owner[a].name if a in owner else a, []).append(a)
    for key, seen in spellings.items():
        if len(seen) > 1 and seen[0] != "--help" and not getattr(owner.get(seen[0]), "multiple", False):
            raise WorkloadError(f"{' / '.join(sorted(set(seen)))} given {len(seen)} times: give it once (only the "
                                f"last would count)")


def _static_only(batch, context, output_reduction, grid, kv_predict, image_size, visual_tokens) -> None:
    """Refuse, under a load, the estimate options only a static batch applies (the load model ignored them)."""
    for name, value in (("--batch", batch if batch != "1" else None), ("--context", context or None),
                        ("--output-reduction", output_reduction or None), ("--grid-gco2-per-kwh", grid),
                        ("--kv-predict", kv_predict), ("--image-size", image_size), ("--visual-tokens", visual_tokens)):
        if value is not None:
            instead = {"--batch": ": the load sets the batch", "--context": ": give a shared prefix with --prefix-hit or "
                       "--prefix-tokens"}.get(name, "")
            shown = f"{value:g}" if isinstance(value, float) else value
            raise WorkloadError(f"{name} {shown}: applies to a static batch, not under --concurrency/--request-rate"
                                f"{instead}")


def _message(exc: CostModelError) -> str:
    """The error's line for the command line: a plot's names the --plot option that asked for it, not the library
    function that draws it ('sweep_plot: no configuration fits' -> '--plot: no configuration fits')."""
    import re

    text = str(exc)
    return re.sub(r"^[a-z_]+_plot: ", "--plot: ", text) if type(exc).__name__ == "PlotError" else text


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"costmodel: error: {message}\n")
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
