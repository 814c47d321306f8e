"""CLI commands for training cost: `train` (one run or --search) and `calibrate-train`."""
from __future__ import annotations

from typing import Optional

import typer


def _days(x: float) -> str:
    return f"{x:,.1f} days" if x >= 1 else f"{x * 24:,.1f} hours"


def register(app: typer.Typer, console, print_json) -> None:  # noqa: C901
    @app.command()
    def train(model: str = typer.Argument(..., help="Model id or alias (a decoder LM), a YAML spec or a HF config.json."),
              hw: str = typer.Option(..., "--hw", help="Hardware id or alias (h100, b200, gb200, mi300x)."),
              devices: int = typer.Option(..., "--devices", help="Total devices of the run."),
              tokens: float = typer.Option(..., "--tokens", help="Training tokens (e.g. 15e12)."),
              fmt: str = typer.Option("bf16", "--fmt", help="Training precision: bf16 fp16 fp8 mxfp8 nvfp4 mxfp4, or FWD:BWD (forward GEMMs in one, input- and weight-gradient GEMMs in the other, e.g. nvfp4:fp8)."),
              seq_len: int = typer.Option(4096, "--seq-len", help="Sequence length."),
              global_batch: Optional[int] = typer.Option(None, "--global-batch", help="Sequences per step [default: about 4M tokens, a multiple of dp]."),
              micro_batch: int = typer.Option(1, "--micro-batch", help="Sequences per micro-batch."),
              tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree (with sequence parallelism)."),
              pp: int = typer.Option(1, "--pp", help="Pipeline-parallel stages (1F1B)."),
              vpp: int = typer.Option(1, "--vpp", help="Virtual pipeline stages per device (interleaved 1F1B)."),
              cp: int = typer.Option(1, "--cp", help="Context-parallel degree (the sequence split over cp ranks)."),
              ep: int = typer.Option(1, "--ep", help="Expert-parallel degree (MoE), carved out of dp x cp x tp."),
              zero: int = typer.Option(1, "--zero", help="ZeRO stage: 0 (replicated), 1 (distributed optimizer), 2 (+ gradients), 3 (FSDP)."),
              recompute: str = typer.Option("selective", "--recompute", help="Activation recomputation: none, selective or full."),
              sparsity: Optional[str] = typer.Option(None, "--sparsity", help="Sparse training: 2:4 (semi-structured, sparse tensor cores) or a fraction of zeroed weights (unstructured)."),
              do_search: bool = typer.Option(False, "--search", help="Search tp, pp, cp, ep, ZeRO and recompute: the fastest layouts that fit."),
              limit: int = typer.Option(10, "--limit", help="Layouts shown with --search."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Time, MFU, memory per device, GPU-hours, dollars and energy of a training run."""
        from rich.table import Table

        if limit != 10 and not do_search:  # it shows --search's layouts: without it, it was ignored
            from costmodel.errors import WorkloadError

            raise WorkloadError(f"--limit {limit}: the layouts --search shows; give --search too")
        if do_search:
            from costmodel.analyses.training.search import search
            from costmodel.errors import WorkloadError

            given = [f for f, v, d in (("--tp", tp, 1), ("--pp", pp, 1), ("--cp", cp, 1), ("--ep", ep, 1), ("--zero", zero, 1),
                                       ("--recompute", recompute, "selective"), ("--micro-batch", micro_batch, 1),
                                       ("--sparsity", sparsity, None), ("--vpp", vpp, 1)) if v != d]
            if given:
                raise WorkloadError(f"--search chooses the layout itself: drop {', '.join(given)}")

            r = search(model, hw, devices, tokens, fmt, seq_len, global_batch, limit)
            if as_json:
                print_json(r)
                return
            t = Table(title=f"{r['model']} on {r['devices']} x {r['hardware']}, {r['precision']}, {r['tokens']:.3g} tokens, "
                            f"seq {r['seq_len']}: the fastest of {r['fitting']} fitting layouts ({r['searched']} searched; "
                            f"training calibration: {r['calibration_level']})", title_justify="left")
            for c in ("tp", "pp", "vpp", "cp", "dp", "ep", "ZeRO", "recompute", "batch", "step", "tok/s/device", "MFU (bf16 peak)",
                      "GiB/device", "wall time", "GPU-hours"):
                t.add_column(c, justify="left" if c == "recompute" else "right")
            for x in r["layouts"]:
                t.add_row(*(str(x[k]) for k in ("tp", "pp", "vpp", "cp", "dp", "ep", "zero", "recompute", "global_batch")),
                          f"{x['step_s']:.2f} s", f"{x['tokens_per_s_per_device']:,.0f}", f"{100 * x['mfu']:.1f}%",
                          f"{x['memory_gib']:.1f}", _days(x["wall_time_days"]), f"{x['gpu_hours']:,.0f}")
            console().print(t)
            if not r["layouts"]:
                console(stderr=True).print("[red]no layout fits in memory[/red]: add devices or use a smaller --seq-len")
                raise typer.Exit(1)
            return
        from costmodel.analyses.training.train import train as run

        r = run(model, hw, devices, tokens, fmt, seq_len, global_batch, tp, pp, cp, ep, zero, recompute, micro_batch,
                sparsity, vpp)
        if as_json:
            print_json(r)
            return
        lay = r["layout"]
        t = Table(title=f"{r['model']} on {r['devices']} x {r['hardware']}, {r['precision']} (GEMMs on {r['gemm_unit']} units), "
                        f"{r['tokens']:.3g} tokens", title_justify="left")
        t.add_column("", justify="left")
        t.add_column("estimate", justify="right")
        t.add_column("80% interval", justify="right")
        lo, hi = r["tokens_per_s_per_device_interval"]
        dlo, dhi = r["wall_time_days_interval"]
        rows = [
            ("Layout", f"tp {lay['tp']} x pp {lay['pp']}" + (f" (vpp {lay['vpp']})" if lay["vpp"] > 1 else "")
             + f" x cp {lay['cp']} x dp {lay['dp']}" + (f", ep {lay['ep']}" if lay['ep'] > 1 else "")
             + f"; ZeRO {lay['zero']}; recompute {lay['recompute']}", ""),
            ("Global batch", f"{r['global_batch']} x {r['seq_len']} tokens; {lay['microbatches_per_step']:.0f} micro-batches of {r['micro_batch']}", ""),
            ("Calibration", r["calibration_level"], ""),
            ("Step time", f"{r['step_s']:.3f} s (binding: {r['binding']})", ""),
            ("Tokens/s per device", f"{r['tokens_per_s_per_device']:,.0f}", f"{lo:,.0f} - {hi:,.0f}"),
            ("Model TFLOP/s per device", f"{r['model_tflops_per_device']:,.1f}", ""),
            ("MFU (bf16 peak) / vs unit peak / HFU", f"{100 * r['mfu']:.1f}% / {100 * r['mfu_unit']:.1f}% / {100 * r['hfu']:.1f}%", ""),
            ("Wall time", _days(r["wall_time_days"]), f"{_days(dlo)} - {_days(dhi)}"),
            ("GPU-hours", f"{r['gpu_hours']:,.0f}", ""),
            ("Cost (cloud price)", f"${r['usd']:,.0f}" if r["usd"] == r["usd"] else "no price in the spec", ""),
            ("Energy", f"{r['energy_mwh']:,.1f} MWh ({r['average_power_w']:.0f} W per device)"
             if r["energy_mwh"] == r["energy_mwh"] else "no TDP in the spec", ""),
        ]
        for k, v in r["phases_s"].items():
            if v > 0 and k not in ("dp_comm_s", "compute_s"):
                rows.append((f"  {k[:-2].replace('_', ' ')} per step", f"{v:.3f} s", ""))
        mem = r["memory_gib"]
        rows.append(("Memory per device", f"{mem['total']:.1f} of {mem['capacity']:.0f} GiB ({'fits' if r['fits'] else 'does NOT fit'})", ""))
        for k in ("weights", "gradients", "optimizer", "activations"):
            rows.append((f"  {k}", f"{mem[k]:.1f} GiB", ""))
        for row in rows:
            t.add_row(*row)
        console().print(t)
        for n in r["notes"]:
            console().print(f"note: {n}")

    @app.command(name="train-precision")
    def train_precision(model: str = typer.Argument(..., help="Model id or alias (a decoder LM)."),
                        hw: str = typer.Option(..., "--hw", help="Hardware id or alias."),
                        devices: int = typer.Option(..., "--devices", help="Devices of the run."),
                        budget_gpu_hours: Optional[float] = typer.Option(None, "--budget-gpu-hours", help="Budget in device-hours."),
                        budget_usd: Optional[float] = typer.Option(None, "--budget-usd", help="Budget in dollars at the spec's cloud price."),
                        fmts: str = typer.Option("bf16,fp8,nvfp4", "--fmts", help="Training precisions to compare (each one or FWD:BWD, e.g. nvfp4:fp8)."),
                        seq_len: int = typer.Option(4096, "--seq-len", help="Sequence length."),
                        as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """For a budget, the training precision that reaches the lowest loss (speed from the fit, loss from Quartet's law)."""
        from rich.table import Table

        from costmodel.analyses.training.economics import precision_economics

        r = precision_economics(model, hw, devices, budget_gpu_hours, budget_usd, fmts, seq_len)
        if as_json:
            print_json(r)
            return
        t = Table(title=f"{r['model']} on {r['devices']} x {r['hardware']}: {r['budget_gpu_hours']:,.0f} GPU-hours"
                        + (f" (${r['budget_usd']:,.0f})" if r["budget_usd"] else "") + f"; lowest loss: {r['best']}",
                  title_justify="left")
        for c in ("precision", "layout", "tok/s/device", "tokens bought", "tokens/param", "effN", "effD", "loss (Quartet law)"):
            t.add_column(c, justify="left" if c in ("precision", "layout") else "right")
        for o in r["options"]:
            lay = o["layout"]
            t.add_row(o["precision"] + (" *" if o["precision"] == r["best"] else ""),
                      f"tp{lay['tp']} pp{lay['pp']} dp{lay['dp']} zero{lay['zero']} {lay['recompute']}",
                      f"{o['tokens_per_s_per_device']:,.0f}", f"{o['tokens'] / 1e12:,.2f}T", f"{o['tokens_per_parameter']:,.0f}",
                      f"{o['effN']:.3f}", f"{o['effD']:.3f}", f"{o['loss']:.4f}")
        console().print(t)
        for s in r["skipped"]:
            console(stderr=True).print(f"[yellow]skipped[/yellow] {s['precision']}: {s['reason']}")
        console().print(f"note: {r['note']} ({r['law_source']})")

    @app.command(name="calibrate-train")
    def calibrate_train(file: str = typer.Argument(..., help="Training measurement CSV (data/SCHEMA.md, 'Training rows')."),
                        out: Optional[str] = typer.Option(None, "--out", help="Folder that receives calibration/training/fitted.yaml (default: the user catalogue)."),
                        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
        """Fit training efficiencies to measurements; report leave-one-source-out and leave-one-device-out error."""
        from costmodel.analyses.training.calibrate import run
        from costmodel.cli import checks

        from costmodel.cli.render import status

        # it refits once per held-out source and device: minutes, shown on a terminal
        with status(console(stderr=True), "fitting, then refitting without each source and each device"):
            s = run(file, out, force=checks.FORCE)
        if as_json:
            print_json(s)
            return
        from rich.table import Table

        con = console()
        con.print(f"fitted {len(s['parameters']) + len(s['devices'])} parameters on {s['rows_used']} rows "
                  f"({len(s['rows_skipped'])} skipped); wrote {s['path']}")
        t = Table(title="error (median / P90 |predicted/measured - 1|)", title_justify="left")
        for c in ("rows", "uncalibrated", "in sample", "leave one source out", "leave one device out"):
            t.add_column(c, justify="right")
        keys = ("uncalibrated", "in_sample", "leave_one_source_out", "leave_one_device_out")
        def cell(x):
            return "-" if x.get("median_ape") is None else f"{100 * x['median_ape']:.1f}% / {100 * x['p90_ape']:.1f}%"

        for g in s["in_sample"]:
            cells = [cell(s[k][g]) for k in keys]
            t.add_row(f"{g} ({s['in_sample'][g]['n']})", *cells)
        con.print(t)
        con.print("held-out interval coverage: " + ", ".join(
            f"{k} {100 * v:.0f}%" if v is not None else f"{k}: n/a (nothing held out)"
            for k, v in s["interval_coverage_held_out"].items()))
        for r in s["rows_skipped"][:5]:  # why, not only how many
            con.print(f"skipped {r['id']}: {r['reason']}")
        if len(s["rows_skipped"]) > 5:
            con.print(f"... and {len(s['rows_skipped']) - 5} more (--json lists every one)")
