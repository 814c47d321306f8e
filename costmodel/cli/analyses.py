"""CLI commands for the analyses (idealized runtime, cost-of-pass, test-time scaling, specdec).
Registered on the main app by cli.py; each parses, calls one library function, renders."""
from __future__ import annotations

import math
from typing import Optional

import typer


def register(app: typer.Typer, console, print_json) -> None:  # noqa: C901 (one small function per command)
    @app.command()
    def idealized(model: str = typer.Argument(..., help="Catalogue model, or with --helm a HELM name (openai/davinci or davinci)."),
                  hw: str = typer.Option("a100-sxm-80gb", "--hw", help="Reference device (default: A100 80GB, as HELM)."),
                  fmt: str = typer.Option("fp16", "--fmt", help="Numeric format (default fp16)."),
                  tp: Optional[int] = typer.Option(None, "--tp", help="Tensor parallel degree (default: fewest devices that hold the model)."),
                  prompt: int = typer.Option(1000, "--prompt", help="Prompt tokens."),
                  gen: int = typer.Option(50, "--gen", help="Generated tokens."),
                  helm: bool = typer.Option(False, "--helm", help="Use HELM's published A100 coefficients."),
                  engine: str = typer.Option("auto", "--engine", help="Calibration engine for the derived table."),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Idealized runtime T_prompt(p) + g·max(o−1, 0) (Narayanan et al. 2023, HELM) with cost variants."""
        from rich.table import Table

        from costmodel.analyses.idealized import idealized as run
        from costmodel.spec.units import format_time

        d = run(model, hw, fmt, tp, prompt, gen, helm, engine).to_dict()
        if as_json:
            print_json(d)
            return
        t = Table(title=f"idealized runtime: {d['model']}", title_justify="left")
        t.add_column("prompt tokens (bucket)", justify="right")
        t.add_column("T_prompt", justify="right")
        for row in d["table"]:
            t.add_row(str(row["prompt_tokens"]), format_time(row["prompt_s"]))
        con = console()
        con.print(t)
        con.print(f"source: {d['source']}")
        con.print(f"per output token g = {format_time(d['per_output_token_s'])}")
        con.print(f"runtime(prompt={prompt}, gen={gen}) = {format_time(d['prompt_s'])} + {format_time(d['per_output_token_s'])}"
                  f" x {max(gen - 1, 0)} = [bold]{d['runtime_s']:.4g} s[/bold]")
        if d["accelerator_seconds"]:
            extra = [f"{d['accelerator_seconds']:.4g} accelerator-seconds on {d['devices']} x {hw}"]
            if d["usd"] is not None:
                extra.append(f"${d['usd']:.4g}")
            if d["joules"] is not None:
                extra.append(f"{d['joules']:.4g} J")
            con.print("per query: " + ", ".join(extra))

    @app.command("cost-of-pass")
    def cost_of_pass(task: str = typer.Option(..., "--task", help="Task in the accuracy table (gsm8k, math500, aime2024, gpqa-diamond, mmlu, ...)."),
                     candidates: str = typer.Option(..., "--candidates", help="Comma-separated MODEL@HW:FMT, MODEL@api:IN/OUT or MODEL@api:IN/OUT/CACHED ($ per million tokens; CACHED: cached input)."),
                     prefix_hit: Optional[float] = typer.Option(None, "--prefix-hit", help="Share of each prompt in a prefix cache (0 to <1): an API bills it at its cached price, an engine does not prefill it."),
                     tokens_in: int = typer.Option(500, "--tokens-in", help="Prompt tokens per attempt."),
                     tokens_out: int = typer.Option(1500, "--tokens-out", help="Generated tokens per attempt."),
                     method: str = typer.Option("single", "--method", help="single, majority@K or best-of@K."),
                     accuracy: Optional[str] = typer.Option(None, "--accuracy", help="Your own accuracy CSV (model, format, task, value[, source_id])."),
                     batch: str = typer.Option("max", "--batch", help="Serving batch for engine-priced candidates (default: max load)."),
                     engine: str = typer.Option("auto", "--engine", help="Calibration engine."),
                     price: str = typer.Option("cloud", "--price", help="cloud ($/device-hour from the specs) or energy (needs --usd-per-kwh)."),
                     usd_per_kwh: Optional[float] = typer.Option(None, "--usd-per-kwh", help="Electricity price for --price energy."),
                     as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Cost per correct answer (Erol et al. 2025) of each candidate, and the frontier with the human expert."""
        from rich.table import Table

        from costmodel.analyses.cost_of_pass import cost_of_pass as run

        if price not in ("cloud", "energy"):
            from costmodel.errors import CostModelError

            raise CostModelError(f"--price {price}: expected cloud or energy")
        d = run(task, [c for c in candidates.split(",") if c.strip()], tokens_in, tokens_out, method, accuracy, batch,
                engine, None, price, usd_per_kwh, prefix_hit)
        if as_json:
            print_json([{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                        for r in d["candidates"]])
            return
        t = Table(title=f"cost-of-pass on {task} ({method}, {tokens_in} in / {tokens_out} out tokens)", title_justify="left")
        for col in ("candidate", "$ per attempt", "accuracy", "cost-of-pass", "frontier"):
            t.add_column(col, justify="left" if col == "candidate" else "right")
        for r in d["candidates"]:
            t.add_row(r["candidate"], f"${r['cost_per_attempt_usd']:.3g}", f"{r['accuracy']:.3f}",
                      f"${r['cost_of_pass_usd']:.3g}" if math.isfinite(r["cost_of_pass_usd"]) else "inf",
                      "*" if r["on_frontier"] else "")
        con = console()
        con.print(t)
        if d["human_expert_usd"] is not None:
            con.print(f"human expert: ${d['human_expert_usd']:g} per problem; frontier cost-of-pass "
                      f"${d['frontier_cost_of_pass_usd']:.3g}" + (" (the expert)" if d["frontier_is_human_expert"] else ""))
        for r in d["candidates"]:
            if r["accuracy_basis"] != "exact":
                con.print(f"[yellow]note:[/yellow] {r['candidate']}: {r['accuracy_basis']}")
            elif r.get("recovery_vs_bf16") is not None and r["recovery_vs_bf16"] != 1.0:
                con.print(f"{r['candidate']}: {100 * r['recovery_vs_bf16']:.1f}% of bf16 accuracy, {r['recovery_basis']}")
            elif r.get("recovery_basis", "").startswith("not computed"):
                con.print(f"{r['candidate']}: recovery vs bf16 {r['recovery_basis']}")
        if any(r.get("priced_by") == "engine" for r in d["candidates"]):
            con.print(f"pricing: {d['pricing_basis']}")

    @app.command()
    def tts(p: float = typer.Option(..., "--p", help="Single-sample (or per-round) success probability."),
            eps: float = typer.Option(0.01, "--eps", help="Smallest worthwhile accuracy gain per extra unit of budget."),
            fmax: float = typer.Option(1.0, "--fmax", help="Attainable accuracy ceiling F_max."),
            false_positive: Optional[float] = typer.Option(None, "--false-positive", help="Verifier false-positive rate f."),
            penalty: Optional[float] = typer.Option(None, "--penalty", help="Cost of a false positive relative to a correct answer (with --false-positive)."),
            mix: Optional[str] = typer.Option(None, "--mix", help="Task types 'share:accuracy,...' for the penalty optimum (default: one type at --p)."),
            n_max: int = typer.Option(64, "--n-max", help="Largest budget in the curve."),
            model: Optional[str] = typer.Option(None, "--model", help="Price each budget with this model..."),
            hw: Optional[str] = typer.Option(None, "--hw", help="...on this device..."),
            fmt: str = typer.Option("bf16", "--fmt", help="...in this format."),
            prompt: int = typer.Option(500, "--prompt", help="Prompt tokens (prefilled once, shared by parallel samples)."),
            gen: int = typer.Option(1000, "--gen", help="Generated tokens per sample."),
            engine: str = typer.Option("auto", "--engine", help="Calibration engine."),
            batch: str = typer.Option("max", "--batch", help="Serving batch the samples are priced in (as cost-of-pass; default: the largest that fits)."),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Test-time scaling: F(N), marginal gain, saturation point N*, verifier ceiling, cost per budget."""
        from rich.table import Table

        from costmodel.analyses.tts_report import report

        d = report(p, eps, fmax, false_positive, penalty, mix, n_max, model, hw, fmt, prompt, gen, engine, batch)
        if as_json:
            print_json(d)
            return
        con = console()
        con.print(f"saturation point N* = [bold]{d['saturation_n']}[/bold] (first N with gain < {eps:g}); "
                  f"accuracy there {d['accuracy_at_saturation']:.4f}")
        con.print(f"accuracy curve: {d['curve_formula']}")
        if d["ceiling"] is not None:
            con.print(f"verifier ceiling r/(r+(1-r)f) = {d['ceiling']:.4f} (the curve approaches it, never above)")
        if d.get("optimal_attempts") is not None:
            con.print(f"optimal attempts with penalty {penalty:g}: K* = {d['optimal_attempts']} "
                      f"(expected utility {d['optimal_utility']:.4f})")
        t = Table(title="budget curve", title_justify="left")
        cols = ["N", "accuracy", "gain of next"] + (["$ per query", "cost-of-pass"] if model else [])
        for c in cols:
            t.add_column(c, justify="right")
        for row in d["curve"]:
            if row["n"] in (1, 2, 4, 8, 16, 32, 64, 128) or row["n"] == d["saturation_n"]:
                cells = [str(row["n"]), f"{row['accuracy']:.4f}", f"{row['marginal_gain']:.4f}"]
                if model:
                    cells += [f"${row['usd']:.3g}", f"${row['cost_of_pass_usd']:.3g}"]
                t.add_row(*cells)
        con.print(t)
        if model:
            on = d["priced_on"]
            con.print(f"priced on {on['tp'] * on['pp']} x {on['hardware']} at batch {on['batch']}: {d['pricing_basis']}")

    @app.command("vlm-tokens")
    def vlm_tokens(task: str = typer.Option("visual_reasoning", "--task", help="visual_reasoning (nine benchmarks) or ocr."),
                   text_tokens: float = typer.Option(50.0, "--text-tokens", help="Text tokens Q per query (0: cached)."),
                   budget: str = typer.Option("1e11,3e11,7e11,1e12,3e12,1e13", "--budget",
                                              help="Inference FLOPs per query, comma-separated (2·N·(Q+V))."),
                   data: Optional[str] = typer.Option(None, "--data", help="Your own points (data/vlm_token_scaling.csv columns)."),
                   plot: Optional[str] = typer.Option(None, "--plot", help="Draw error against FLOPs per LLM size with the frontier (.png, .svg, .pdf)."),
                   as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Visual tokens against LLM size at a fixed inference compute (Li et al. 2024): the fitted
        law, the optimal visual tokens and the frontier per budget."""
        from rich.table import Table

        from costmodel.analyses.vlm_tokens import report
        from costmodel.errors import CostModelError

        try:
            budgets = [float(b) for b in budget.split(",") if b.strip()]
        except ValueError:
            raise CostModelError(f"--budget {budget!r}: expected FLOPs per query, e.g. 1e12,3e12") from None
        d = report(task, text_tokens, budgets, data)
        if plot:
            from costmodel.plots import vlm_tokens_plot

            vlm_tokens_plot(d, plot, data)
            console(stderr=True).print(f"plot written to {plot}")
        if as_json:
            print_json(d)
            return
        law, con = d["law"], console()
        held = law["leave_one_size_out"]
        con.print(f"{d['task']}: error = {law['A']:.4f} · N^-{law['alpha']:.4f} · V^-{law['beta']:.4f} + {law['D']:.4f}"
                  f" ({law['points']} points, LLMs {', '.join(f'{n:g}B' for n in law['llm_sizes_b'])})")
        con.print(f"fit: in-sample RMSE {law['rmse_points']:.2f} accuracy points; leaving one LLM size out "
                  f"{held['median_abs_points']:.2f} median, {held['max_abs_points']:.2f} max")
        con.print(f"optimal visual tokens at Q = {d['text_tokens']:g}: V* = {d['optimal_visual_tokens']:.1f} ({d['rule']})")
        t = Table(title="at each budget: the law's optimum against the same FLOPs at 576 visual tokens",
                  title_justify="left")
        for c in ("FLOPs/query", "LLM (V*)", "error", "LLM (576)", "error (576)", "gain", "best measured", "best at 576"):
            t.add_column(c, justify="right")
        fmt_m = lambda m: "-" if m is None else f"{m['llm_params_b']:g}B, {m['visual_tokens']:g} tok: {m['score']:.3f}"  # noqa: E731
        for f, m in zip(d["frontier"], d["measured_frontier"]):
            star = lambda x: "*" if x else ""  # noqa: E731
            t.add_row(f"{f['budget_flops']:.3g}", f"{f['llm_params_b']:.3g}B{star(f['extrapolated'])}", f"{f['error']:.3f}",
                      f"{f['baseline_llm_params_b']:.3g}B{star(f['baseline_extrapolated'])}", f"{f['baseline_error']:.3f}",
                      f"{f['accuracy_gain_points']:+.1f} pts", fmt_m(m["best"]), fmt_m(m["at_baseline_tokens"]))
        con.print(t)
        lo, hi = min(law["llm_sizes_b"]), max(law["llm_sizes_b"])
        con.print(f"* outside the measured {lo:g}-{hi:g}B LLMs: the law extrapolated. Measured columns: the best "
                  f"score among the source's points within the budget (score, higher is better).")

    @app.command()
    def specdec(target: str = typer.Option(..., "--target", help="Target model."),
                draft: str = typer.Option(..., "--draft", help="Draft model."),
                hw: str = typer.Option(..., "--hw", help="Device."),
                fmt: str = typer.Option("bf16", "--fmt", help="Format of both models."),
                alpha: float = typer.Option(..., "--alpha", help="Expected acceptance rate α."),
                gamma: int = typer.Option(4, "--gamma", help="Draft tokens per step γ."),
                context: int = typer.Option(512, "--context", help="Tokens already in context."),
                tp: int = typer.Option(1, "--tp", help="Tensor parallel degree of both models."),
                engine: str = typer.Option("auto", "--engine", help="Calibration engine."),
                as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Speculative decoding speedup (Leviathan et al. 2023) with step costs from the engine."""
        from costmodel.analyses.specdec import analyze

        d = analyze(target, draft, hw, fmt, alpha, gamma, context, engine, 32, tp).to_dict()
        if as_json:
            print_json(d)
            return
        con = console()
        con.print(f"tokens per target step E = {d['tokens_per_step']:.4f}; cost ratio c = {d['cost_ratio']:.4f} "
                  f"(draft step {d['draft_step_s'] * 1e3:.3g} ms / target step {d['target_step_s'] * 1e3:.3g} ms)")
        con.print(f"speedup S(α={alpha:g}, γ={gamma}, c) = [bold]{d['speedup']:.3f}x[/bold]; with the engine's cost "
                  f"of verifying γ+1 tokens ({d['verify_step_s'] * 1e3:.3g} ms): {d['speedup_engine']:.3f}x")
        best = f"best γ for α={alpha:g}: {d['best_gamma']} ({d['best_speedup']:.3f}x)"
        if d["best_speedup"] < 1.0:  # every γ is slower than decoding without a draft
            best += "; below 1x at every γ: at this acceptance the draft does not pay, decode without it"
        con.print(best)
