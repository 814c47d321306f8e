"""CLI commands for sweeps, Pareto frontiers, curves and closed forms (registered by cli.py)."""
from __future__ import annotations

from typing import Optional

import typer


def _split(text: Optional[str]) -> Optional[list]:
    return None if text is None else [t.strip() for t in text.split(",") if t.strip()]


def _numbers(text, name):
    """Positive numbers of a comma-separated option (a clear error names the option and the value)."""
    vals = []
    for t in (_split(text) if text else []):
        try:
            v = float(t)
        except ValueError:
            v = float("nan")
        if not (v > 0 and v < 1e7):
            from costmodel.errors import CostModelError

            raise CostModelError(f"--{name} {t}: expected positive numbers below 1e7")
        vals.append(v)
    return vals or None


def _some_work(prompt: str, gen: str) -> None:
    """A clear error where --prompt holds 0, as `estimate` gives: with --gen 0 too the configuration has nothing to
    run, and otherwise its first generated token has nothing before it. The library's sweep keeps such rows, of zero
    work (the engine's edge cases are tested on them)."""
    def zero(text):
        try:
            return any(float(t) == 0 for t in _split(text) or [])
        except ValueError:
            return False  # the sweep names the bad value

    if zero(prompt):
        from costmodel.errors import CostModelError

        if zero(gen):
            raise CostModelError(f"--prompt {prompt} --gen {gen}: both list 0, and a configuration with neither prompt "
                                 f"nor generated tokens has nothing to run; drop 0 from one of them")
        raise CostModelError(f"--prompt {prompt}: a generated token needs at least one token before it (a prompt of "
                             f"1 is the start-of-sequence token alone); drop 0 from --prompt")


def _some_curve(curves) -> None:
    """A clear error (exit code 2) where every device and format was dropped: each one's reason, not an empty
    result with exit code 0."""
    if not len(curves) and curves.dropped:
        from costmodel.errors import CostModelError

        raise CostModelError("no curve: " + "; ".join(f"{d['hardware']} {d['format']}: {d['reason']}"
                                                      for d in curves.dropped))


def _whole(text, name):
    """Whole numbers >= 1 of a comma-separated option."""
    vals = _numbers(text, name) or []
    for v in vals:
        if v != int(v):
            from costmodel.errors import CostModelError

            raise CostModelError(f"--{name} {v:g}: expected whole numbers")
    return [int(v) for v in vals]


SWEEP_OPTS = {
    "models": typer.Option("llama-3.1-8b", "--models", help="Comma-separated models."),
    "hw": typer.Option("h100-sxm", "--hw", help="Comma-separated devices."),
    "fmt": typer.Option("bf16", "--fmt", help="Comma-separated formats."),
    "kv_fmt": typer.Option(None, "--kv-fmt", help="Comma-separated KV formats ('default' = the format's own)."),
    "batch": typer.Option("1", "--batch", help="Comma-separated batches; 'max' = the largest that fits."),
    "tp": typer.Option("1", "--tp", help="Comma-separated tensor-parallel degrees."),
    "prompt": typer.Option("512", "--prompt", help="Comma-separated prompt lengths."),
    "gen": typer.Option("128", "--gen", help="Comma-separated generated lengths."),
    "engine": typer.Option("auto", "--engine", help="Comma-separated engines."),
    "task": typer.Option(None, "--task", help="Attach an 'accuracy' column from the accuracy table for this task."),
    "layouts": typer.Option("tp", "--layouts", help="Comma-separated layouts on each --tp for MoE models: tp, ep (experts over the tp devices), dp-ep (DP attention + EP)."),
}


def register(app: typer.Typer, console, print_json) -> None:  # noqa: C901
    def run_sweep(models, hw, fmt, kv_fmt, batch, tp, prompt, gen, engine, task, accuracy=None, scheduler=None,
                  workers=None, layouts="tp"):
        from costmodel.cli.render import progress_bar
        from costmodel.sweeps.sweep import sweep

        with progress_bar(console(stderr=True)) as bar:
            t = bar.add_task("sweep", total=None)
            return sweep(models=_split(models), hw=_split(hw), fmt=_split(fmt), kv_fmt=_split(kv_fmt),
                         batch=_split(batch), tp=_split(tp), prompt=_split(prompt), gen=_split(gen),
                         engine=_split(engine), layouts=_split(layouts), task=task, accuracy_file=accuracy,
                         scheduler=scheduler,
                         workers=workers, progress=lambda d, n: bar.update(t, total=n, completed=d))

    def _load_sweep(models, hw, fmt, engine, tp, prompt, gen, conc, rate, num_prompts, prompt_dist, gen_dist):
        from costmodel.cli.render import status
        from costmodel.sweeps.loads import load_sweep

        with status(console(stderr=True), "serving each configuration at each load"):
            return load_sweep(_split(models), _split(hw), _split(fmt), engine=_split(engine), tp=_whole(tp, "tp"),
                              prompt=_whole(prompt, "prompt"), gen=_whole(gen, "gen"), concurrency=conc,
                              request_rate=rate, num_prompts=num_prompts, prompt_dist=prompt_dist, gen_dist=gen_dist)

    def _render_loads(result, out, n_rows):
        import math

        from costmodel.sweeps.loads import COLUMNS

        err = console(stderr=True)
        for d in result.dropped:
            err.print(f"[yellow]cannot serve[/yellow] {d['model']} on {d['hardware']} in {d['format']} "
                      f"(tp {d['tp']}, {d['engine']}): {d['reason']}")
        if out:
            from costmodel.sweeps.loads import write_csv

            write_csv(out, result)
            console().print(f"wrote {len(result):,} rows to {out}")
            return
        cols = {c: [r[c] for r in result] for c in COLUMNS}
        cost = [r["usd_per_million_tokens"] if r["stable"] and r["usd_per_million_tokens"] else math.inf for r in result]
        order = sorted(range(len(result)), key=lambda i: cost[i])[:n_rows]
        keys = ["model", "hardware", "format", "engine", "tp", "concurrency" if result and result[0]["load"] == "closed"
                else "request_rate", "ttft_p99_s", "tpot_s", "e2e_latency_s", "throughput_tokens_per_s",
                "usd_per_million_tokens", "stable"]
        console().print(table_of(cols, order, f"{len(result):,} served configurations "
                                              f"({sum(1 for r in result if r['stable']):,} stable); cheapest "
                                              f"{len(order)} by $/Mtok", keys))

    def table_of(cols: dict, rows, title: str, keys: list):
        from rich.table import Table

        from costmodel.cli.render import human

        t = Table(title=title, title_justify="left")
        for k in keys:
            t.add_column(k, justify="left" if k in ("model", "hardware", "format", "engine", "reason") else "right")
        for i in rows:
            t.add_row(*[human(k, cols[k][i].item() if hasattr(cols[k][i], "item") else cols[k][i]) for k in keys])
        return t

    @app.command()
    def sweep(models: str = SWEEP_OPTS["models"], hw: str = SWEEP_OPTS["hw"], fmt: str = SWEEP_OPTS["fmt"],
              kv_fmt: Optional[str] = SWEEP_OPTS["kv_fmt"], batch: str = SWEEP_OPTS["batch"], tp: str = SWEEP_OPTS["tp"],
              prompt: str = SWEEP_OPTS["prompt"], gen: str = SWEEP_OPTS["gen"], engine: str = SWEEP_OPTS["engine"],
              task: Optional[str] = SWEEP_OPTS["task"], layouts: str = SWEEP_OPTS["layouts"],
              out: Optional[str] = typer.Option(None, "--out", help="Write every configuration to FILE.csv or FILE.parquet (streamed)."),
              rows: int = typer.Option(30, "--rows", help="Rows shown in the table (cheapest $/Mtok first)."),
              scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address (costmodel[distributed])."),
              workers: Optional[int] = typer.Option(None, "--workers", help="Run on a local Dask cluster of N processes."),
              plot: Optional[str] = typer.Option(None, "--plot", help="Draw TPOT vs throughput of the configurations that "
                                                 "fit to FILE.png/.svg/.pdf (with --out, read back from the file)."),
              concurrency: Optional[str] = typer.Option(None, "--concurrency", help="Comma-separated concurrencies: serve each configuration as a closed loop of C clients (instead of --batch)."),
              request_rate: Optional[str] = typer.Option(None, "--request-rate", help="Comma-separated request rates: serve each configuration with Poisson arrivals (instead of --batch)."),
              num_prompts: Optional[int] = typer.Option(None, "--num-prompts", help="With --concurrency: the benchmark's total requests (first wave)."),
              prompt_dist: Optional[str] = typer.Option(None, "--prompt-dist", help="Under load: fixed, uniform:R or lognormal:MEAN,SIGMA."),
              gen_dist: Optional[str] = typer.Option(None, "--gen-dist", help="Under load: fixed, uniform:R or lognormal:MEAN,SIGMA.")) -> None:
        """Evaluate the cartesian product of the lists (vectorized, chunked); table, file or plot.
        With --concurrency or --request-rate, every configuration is served at each load instead."""
        from costmodel.cli.render import progress_bar
        from costmodel.sweeps.sweep import sweep_to_file

        if concurrency is not None or request_rate is not None:
            if batch != "1":
                from costmodel.errors import WorkloadError

                raise WorkloadError(f"--batch {batch}: a load sweep sets the batch from --concurrency/--request-rate; "
                                    f"drop --batch")
            rows_ = _load_sweep(models, hw, fmt, engine, tp, prompt, gen, _numbers(concurrency, "concurrency"),
                                _numbers(request_rate, "request-rate"), num_prompts, prompt_dist, gen_dist)
            _render_loads(rows_, out, rows)
            return

        _some_work(prompt, gen)
        for flag, value in (("--num-prompts", num_prompts), ("--prompt-dist", prompt_dist), ("--gen-dist", gen_dist)):
            if value is not None:  # a static sweep has one length and no benchmark: it was ignored
                from costmodel.errors import WorkloadError

                raise WorkloadError(f"{flag} {value}: applies to a sweep under load; give --concurrency or "
                                    f"--request-rate too")
        if plot:
            from costmodel.plots import check_path

            check_path(plot)  # a bad extension fails before the sweep runs

        if out:
            with progress_bar(console(stderr=True)) as bar:
                t = bar.add_task(f"sweep -> {out}", total=None)
                n = sweep_to_file(out, progress=lambda d, n: bar.update(t, total=n, completed=d), task=task, force=True,
                                  models=_split(models), hw=_split(hw), fmt=_split(fmt), kv_fmt=_split(kv_fmt),
                                  batch=_split(batch), tp=_split(tp), prompt=_split(prompt), gen=_split(gen),
                                  engine=_split(engine), layouts=_split(layouts))
            console().print(f"wrote {n:,} configurations to {out}")
            if plot:
                from costmodel.plots import sweep_plot
                from costmodel.sweeps.sweep import read_table

                sweep_plot(read_table(out), plot)
                console(stderr=True).print(f"plot written to {plot}")
            return
        import numpy as np

        r = run_sweep(models, hw, fmt, kv_fmt, batch, tp, prompt, gen, engine, task, None, scheduler, workers, layouts)
        cols = r.to_dict()
        cost = np.where(np.isfinite(cols["usd_per_million_tokens"]) & cols["fits"], cols["usd_per_million_tokens"], np.inf)
        order = np.argsort(cost, kind="stable")[:rows]
        keys = ["model", "hardware", "format", "batch", "tp"] + (["dp", "ep"] if layouts != "tp" else []) + [
                "prompt", "gen", "ttft_s", "tpot_s",
                "throughput_tokens_per_s", "usd_per_million_tokens", "fits", "reason"] + (["accuracy"] if task else [])
        console().print(table_of(cols, order, f"{len(r):,} configurations ({int(cols['fits'].sum()):,} fit); "
                                              f"cheapest {len(order)} by $/Mtok", keys))
        if plot:
            from costmodel.plots import sweep_plot

            sweep_plot(r, plot)
            console(stderr=True).print(f"plot written to {plot}")

    @app.command()
    def pareto(ctx: typer.Context, sweep_file: Optional[str] = typer.Argument(None, help="A sweep file (CSV/Parquet); without it, sweep the options below."),
               objectives: str = typer.Option("min:usd_per_million_tokens,min:tpot_s", "--objectives",
                                              help="Comma-separated min:COLUMN / max:COLUMN."),
               models: str = SWEEP_OPTS["models"], hw: str = SWEEP_OPTS["hw"], fmt: str = SWEEP_OPTS["fmt"],
               kv_fmt: Optional[str] = SWEEP_OPTS["kv_fmt"], batch: str = SWEEP_OPTS["batch"], tp: str = SWEEP_OPTS["tp"],
               prompt: str = SWEEP_OPTS["prompt"], gen: str = SWEEP_OPTS["gen"], engine: str = SWEEP_OPTS["engine"],
               task: Optional[str] = SWEEP_OPTS["task"],
               accuracy: Optional[str] = typer.Option(None, "--accuracy", help="Your own accuracy CSV for --task."),
               plot: Optional[str] = typer.Option(None, "--plot", help="Draw the frontier to FILE.png/.svg."),
               rows: int = typer.Option(100, "--rows", help="Frontier rows shown in the table, by the first objective "
                                                            "(--json prints every row)."),
               as_json: bool = typer.Option(False, "--json", help="Print the frontier rows as JSON.")) -> None:
        """Non-dominated configurations under any objectives; table, JSON or plot."""
        import numpy as np

        from costmodel.sweeps.pareto import ParetoError, parse_objectives, pareto_front
        from costmodel.sweeps.sweep import read_table

        if sweep_file:  # an option given on the line, even at its default value, would be ignored
            from costmodel.cli.checks import on_command_line

            given = ("models", "hw", "fmt", "kv_fmt", "batch", "tp", "prompt", "gen", "engine", "task")
            ignored = [SWEEP_OPTS[k].param_decls[0] for k in given if on_command_line(ctx, k)]
            ignored += ["--accuracy"] if accuracy is not None else []
            if ignored:  # they would be ignored silently: the file holds its columns
                raise ParetoError(f"{', '.join(ignored)}: apply where pareto sweeps itself; {sweep_file} already holds "
                                  f"its configurations (sweep with them, --task for accuracy, and --out a file)")
            cols = read_table(sweep_file)
        else:
            if accuracy is not None and task is None:  # the file was never read
                raise ParetoError(f"--accuracy {accuracy}: gives the accuracies of --task; give --task too")
            _some_work(prompt, gen)
            cols = run_sweep(models, hw, fmt, kv_fmt, batch, tp, prompt, gen, engine, task, accuracy).to_dict()
        if not len(next(iter(cols.values()))):
            raise ParetoError("the sweep is empty")
        objs = parse_objectives(objectives, list(cols))
        if "fits" in cols:
            cols["fits"] = np.asarray(cols["fits"]).astype(str) == "True" if cols["fits"].dtype.kind in "US" else cols["fits"].astype(bool)
        mask = pareto_front(cols, objs)
        from costmodel.sweeps.pareto import excluded

        for x in excluded(cols, objs):  # nothing leaves the frontier silently
            console(stderr=True).print(f"[yellow]excluded[/yellow] {x['configurations']} configuration(s): {x['reason']}")
        idx = np.where(mask)[0]
        idx = idx[np.argsort(np.asarray(cols[objs[0][1]], dtype=float)[idx])]
        if plot:
            from costmodel.plots import pareto_plot

            pareto_plot(cols, objs, mask, plot)
        if as_json:
            import math

            def clean(v):
                v = v.item() if hasattr(v, "item") else v
                return None if isinstance(v, float) and not math.isfinite(v) else v

            print_json([{k: clean(cols[k][i]) for k in cols} for i in idx])
            return
        keys = [k for k in ("model", "hardware", "format", "batch", "tp", "prompt", "gen") if k in cols]
        keys += [c for _, c in objs if c not in keys]
        shown = idx[:rows]  # a table of every row of a large frontier takes minutes to draw
        more = (f"; the first {len(shown):,} by {objs[0][1]} (--rows N for more, --json for every row)"
                if len(shown) < len(idx) else "")
        console().print(table_of(cols, shown, f"Pareto frontier: {len(idx):,} of {len(mask):,} configurations "
                                              f"({objectives}){more}", keys))
        if plot:
            console(stderr=True).print(f"plot written to {plot}")

    @app.command()
    def curve(model: str = typer.Argument(..., help="Model."),
              hw: str = typer.Option(..., "--hw", help="Comma-separated devices."),
              fmt: str = typer.Option("bf16", "--fmt", help="Comma-separated formats."),
              prompt: int = typer.Option(512, "--prompt", help="Prompt tokens per sequence."),
              gen: int = typer.Option(128, "--gen", help="Generated tokens per sequence."),
              tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree."),
              engine: str = typer.Option("auto", "--engine", help="Inference engine whose calibration applies (auto: the device's)."),
              plot: Optional[str] = typer.Option(None, "--plot", help="Draw the curves to FILE.png/.svg/.pdf."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Latency-throughput curves over batch size, one per device and format."""
        from costmodel.sweeps.curves import latency_throughput

        curves = latency_throughput(model, _split(hw), _split(fmt), prompt, gen, engine=engine, tp=tp)
        _some_curve(curves)
        if plot:
            from costmodel.plots import latency_throughput_plot

            latency_throughput_plot(curves, plot, model=model, prompt=prompt, gen=gen, tp=tp)
        if as_json:
            print_json({"curves": list(curves), "dropped": curves.dropped})
            return
        con = console()
        for d in curves.dropped:
            console(stderr=True).print(f"[yellow]dropped[/yellow] {d['hardware']} {d['format']}: {d['reason']}")
        for c in curves:
            con.print(f"[bold]{c['label']}[/bold]: " + ", ".join(
                f"B={int(b)} {t * 1e3:.3g} ms/{x:,.0f} tok/s" for b, t, x in zip(c["batch"], c["tpot_s"], c["throughput_tokens_per_s"])))
        if plot:
            console(stderr=True).print(f"plot written to {plot}")

    @app.command("serve-curve")
    def serve_curve(model: str = typer.Argument(..., help="Model."),
                    hw: str = typer.Option(..., "--hw", help="Comma-separated devices."),
                    fmt: str = typer.Option("bf16", "--fmt", help="Comma-separated formats."),
                    concurrency: Optional[str] = typer.Option(None, "--concurrency", help="Comma-separated client counts (closed loop), e.g. 1,4,16,64,256."),
                    request_rate: Optional[str] = typer.Option(None, "--request-rate", help="Comma-separated request rates per second (Poisson)."),
                    prompt: int = typer.Option(512, "--prompt", help="Prompt tokens (mean)."),
                    gen: int = typer.Option(128, "--gen", help="Generated tokens (mean)."),
                    prompt_dist: Optional[str] = typer.Option(None, "--prompt-dist", help="fixed, uniform:R or lognormal:MEAN,SIGMA."),
                    gen_dist: Optional[str] = typer.Option(None, "--gen-dist", help="fixed, uniform:R or lognormal:MEAN,SIGMA."),
                    tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree of a replica."),
                    engine: str = typer.Option("auto", "--engine", help="Inference engine whose calibration applies."),
                    plot: Optional[str] = typer.Option(None, "--plot", help="Draw TPOT against throughput to FILE.png/.svg/.pdf."),
                    as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Latency against throughput as the concurrency or request rate grows (serving dashboards)."""
        from costmodel.spec.units import format_time
        from costmodel.sweeps.curves import serve_curve as run

        conc, rate = _numbers(concurrency, "concurrency"), _numbers(request_rate, "request-rate")
        curves = run(model, _split(hw), _split(fmt), conc, rate, prompt, gen, prompt_dist, gen_dist, tp, engine)
        _some_curve(curves)
        varied = "concurrency" if concurrency else "request rate"
        if plot:
            from costmodel.plots import latency_throughput_plot

            latency_throughput_plot(curves, plot, model=model, prompt=prompt, gen=gen, tp=tp, varied=varied)
        if as_json:
            print_json({"curves": list(curves), "dropped": curves.dropped})
            return
        from rich.table import Table

        for d in curves.dropped:
            console(stderr=True).print(f"[yellow]dropped[/yellow] {d['hardware']} {d['format']}: {d['reason']}")
        for c in curves:
            over = [x for x in dict.fromkeys(conc or rate) if x not in set(c["batch"])]
            if over:  # points over capacity have unbounded latencies: say which were left out
                console(stderr=True).print(f"[yellow]over capacity[/yellow] {c['label']}: {varied} "
                                           f"{', '.join(f'{x:g}' for x in over)} left out (unbounded latency)")
            t = Table(title=f"{c['label']}: prompt {prompt:,}, gen {gen:,}, TP {tp}", title_justify="left")
            for col in (varied, "req/s", "output tok/s", "TTFT P50", "TTFT P99", "TPOT", "TPOT P99", "E2E"):
                t.add_column(col, justify="right")
            for i, x in enumerate(c["batch"]):
                t.add_row(f"{x:g}", f"{c['request_throughput_per_s'][i]:,.3g}", f"{c['throughput_tokens_per_s'][i]:,.0f}",
                          *(format_time(c[k][i]) for k in ("ttft_p50_s", "ttft_p99_s", "tpot_s", "tpot_p99_s",
                                                           "e2e_latency_s")))
            console().print(t)
        if plot:
            console(stderr=True).print(f"plot written to {plot}")

    @app.command()
    def formula(model: str = typer.Argument(..., help="Model."),
                hw: str = typer.Option("h100-sxm", "--hw", help="Device."),
                fmt: str = typer.Option("bf16", "--fmt", help="Numeric format."),
                tp: int = typer.Option(1, "--tp", help="Tensor-parallel degree."), context: int = typer.Option(1000, "--context",
                                                                            help="Context C at which the crossovers are solved."),
                engine: str = typer.Option("auto", "--engine", help="Inference engine whose calibration applies."),
                latex: bool = typer.Option(False, "--latex", help="Print LaTeX."),
                as_json: bool = typer.Option(False, "--json", help="Print JSON (expressions as strings).")) -> None:
        """Closed forms of FLOPs, bytes and roofline time in B, P, C, and the crossovers."""
        import sympy as sp

        from costmodel.analyses.formula import formula as run

        cf = run(model, hw, fmt, tp, context, engine)
        show = sp.latex if latex else (lambda e: str(e))
        items = [("decode FLOPs(B, C)", cf.decode_flops), ("decode bytes(B, C)", cf.decode_bytes),
                 ("decode time(B, C) [s]", cf.decode_time), ("prefill FLOPs(B, P)", cf.prefill_flops),
                 ("prefill bytes(B, P)", cf.prefill_bytes), ("prefill time(B, P) [s]", cf.prefill_time)]
        if as_json:
            print_json({"expressions": {k: str(v) for k, v in items}, "crossovers": cf.crossovers, "exact": cf.exact,
                        "prefill_fit_error": cf.prefill_fit_error, "prefill_domain": cf.prefill_domain})
            return
        con = console()
        for k, v in items:
            con.print(f"{k} = {show(v)}", soft_wrap=True)
        cr = cf.crossovers
        fmt_ = lambda x: "never" if x == float("inf") else f"{x:,.1f}"  # noqa: E731
        con.print(f"decode turns compute-bound at B = {fmt_(cr['decode_compute_bound_batch'])} (context {int(cr['context'])})")
        con.print(f"prefill turns compute-bound at P = {fmt_(cr['prefill_compute_bound_prompt'])} tokens (batch 1)")
        con.print(f"KV traffic outweighs weight traffic at B = {fmt_(cr['kv_exceeds_weights_batch'])} (context {int(cr['context'])})")
        if not cf.exact:
            con.print("[yellow]note:[/yellow] this model's traffic is not polynomial (MoE expert coverage or sliding "
                      "windows): the expressions are a least-squares approximation of the engine")
        con.print(f"[yellow]note:[/yellow] the prefill forms are {cf.prefill_domain}: off by "
                  f"{100 * cf.prefill_fit_error:.2g}% at B = 3 inside it; not for extrapolation (a long prompt runs in "
                  f"chunks that re-read the weights)")
