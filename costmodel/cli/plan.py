"""CLI commands for capacity planning: `plan` and `whatif` (registered by cli.py)."""
from __future__ import annotations

import sys
from typing import Optional

import typer


OPTS = dict(
    qps=typer.Option(..., "--qps", help="Requests per second to serve."),
    prompt=typer.Option(..., "--prompt", help="Mean prompt tokens."),
    gen=typer.Option(..., "--gen", help="Mean generated tokens."),
    prompt_dist=typer.Option("fixed", "--prompt-dist", help="fixed or lognormal:MEAN,SIGMA."),
    gen_dist=typer.Option("fixed", "--gen-dist", help="fixed or lognormal:MEAN,SIGMA."),
    slo_ttft=typer.Option(..., "--slo-ttft", help="TTFT target in seconds, at --percentile."),
    slo_tpot=typer.Option(None, "--slo-tpot", help="TPOT target in seconds."),
    percentile=typer.Option(90, "--percentile", help="50, 90 or 99."),
    candidates=typer.Option(..., "--candidates", help="Comma-separated devices."),
    fmt=typer.Option("bf16", "--fmt", help="Comma-separated formats."),
    engine=typer.Option("auto", "--engine", help="Calibration engine."),
    price=typer.Option("cloud", "--price", help="cloud (rent) or own (buy)."),
    years=typer.Option(None, "--years", help="Amortization years for --price own (default 3)."),
    electricity=typer.Option(None, "--electricity", help="USD per kWh for --price own (default 0.08)."),
    pue=typer.Option(None, "--pue", help="Power usage effectiveness for --price own (default 1.58)."),
    hosting=typer.Option(None, "--hosting-usd-per-device-year", help="Hosting cost per device-year for --price own."),
    price_per_hour=typer.Option(None, "--price-per-hour", help="Override a cloud price: HW=USD (repeatable)."),
    price_per_device=typer.Option(None, "--price-per-device", help="Purchase price for --price own: HW=USD (repeatable); overrides the spec's list price."),
    tp=typer.Option(None, "--tp", help="Comma-separated tensor-parallel degrees to search (default 1,2,4,8)."),
    prefix_hit=typer.Option(None, "--prefix-hit", help="Share of each prompt already in the prefix cache (0 to <1): not prefilled."),
    mtp=typer.Option(0, "--mtp", help="Draft tokens per decode step (DeepSeek MTP, EAGLE) in every deployment."),
    accept_rate=typer.Option(None, "--accept-rate", help="Their acceptance rate [default 0.875]."),
    api_price=typer.Option(None, "--api-price", help="Compare with an API: IN:OUT[:CACHED] USD per million tokens, or a name in data/api_prices.yaml (deepseek-v3.2, ...)."),
    turns=typer.Option(None, "--turns", help="Multi-turn conversations of T turns, each adding --prompt new and --gen answer tokens; a turn resends the history, which the prefix cache holds (sets the prompt lengths and --prefix-hit)."),
    prefix_tokens=typer.Option(None, "--prefix-tokens", help="With --prefix-hit: the distinct reused tokens of the whole deployment, split over its replicas by a prefix-aware router; what a replica's free KV pool cannot hold spills to --kv-offload or is prefilled again."),
    kv_offload=typer.Option(None, "--kv-offload", help="With --prefix-tokens: an offload tier per replica, cpu:GIB[@GB/s] (read over the spec's host link) or nvme:GIB@GB/s."),
    disagg=typer.Option("off", "--disagg", help="Split prefill/decode deployments: off, auto (search aggregated and split, keep the cheapest) or only (split only)."),
    kv_link=typer.Option(None, "--kv-link", help="Split deployments: the link KV moves on, per device: auto (default: the scale-up fabric when the whole deployment fits one scale-up domain, else the NIC), scale-out, scale-up or GB/s."),
    kv_overlap=typer.Option(False, "--kv-overlap", help="Split deployments: KV sent layer by layer during the prefill."),
    layouts=typer.Option(None, "--layouts", help="Layouts to search on each --tp for MoE models: tp, ep (experts over the tp devices), dp-ep (DP attention + EP) (default all three)."),
)


def register(app: typer.Typer, console, print_json) -> None:  # noqa: C901
    def table(result: dict, limit: int = 15):
        from rich.table import Table

        t = Table(title=f"{result['model']} at {result['qps']:g} req/s, {result['prompt_mean']:g} in / {result['gen_mean']:g} out "
                        f"tokens: TTFT P{result['percentile']} <= {result['slo_ttft_s']:g} s"
                        + (f", TPOT <= {result['slo_tpot_s']:g} s" if result["slo_tpot_s"] else "")
                        + f" ({result['price']} prices)", title_justify="left")
        api = bool(result.get("api"))
        for col in ("device", "count", "layout", "replicas", "format", "batch cap", "load", f"TTFT P{result['percentile']}",
                    "TPOT", "$/hour", "$/month", "$/Mtok", "kWh/month") + (("API / self-host", "break-even") if api else ()):
            t.add_column(col, justify="left" if col in ("device", "format") else "right")
        for d in result["deployments"][:limit]:
            extra = (f"{d['api_to_self_host']:.2f}x", _breakeven(d)) if api else ()
            t.add_row(d["hardware"], str(d["devices"]), d.get("layout", f"tp{d['tp']}"), str(d["replicas"]), d["format"], str(d["batch_cap"]),
                      f"{100 * d['utilization']:.0f}%", f"{d['ttft_s'] * 1e3:.0f} ms", f"{d['tpot_s'] * 1e3:.1f} ms",
                      f"${d['usd_per_hour']:,.2f}", f"${d['usd_per_month']:,.0f}", f"${d['usd_per_million_tokens']:.3f}",
                      f"{d['kwh_per_month']:,.0f}", *extra)
        return t

    def _breakeven(d: dict) -> str:
        if d.get("breakeven_qps") is None:
            return "never"
        share = d.get("breakeven_share_of_capacity")
        return f"{d['breakeven_qps']:.3g} req/s" + (f" ({100 * share:.0f}%)" if share is not None else "")

    def api_line(result: dict) -> str:
        a, best = result["api"], result["deployments"][0]
        be, share, cap = best.get("breakeven_qps"), best.get("breakeven_share_of_capacity"), best["capacity_qps"]
        if be is None:
            verdict = "self-hosting never breaks even: the API is cheaper at any load"
        elif share is not None and share > 1:
            verdict = (f"break-even at {be:.3g} req/s, {share:.1f}x the cheapest deployment's capacity ({cap:.3g} req/s): "
                       f"the API is cheaper at any load that deployment serves")
        else:
            verdict = (f"break-even at {be:.3g} req/s, {100 * share:.0f}% of the cheapest deployment's capacity "
                       f"({cap:.3g} req/s): self-hosting is cheaper above it")
        warn = "" if a["model_matches"] else f" [yellow](this price list serves another model than {result['model']})[/yellow]"
        return (f"API {a['name']} (${a['usd_per_million_input']:g} in, ${a['usd_per_million_cached_input']:g} cached, "
                f"${a['usd_per_million_output']:g} out per Mtok): ${a['usd_per_month']:,.0f}/month for this traffic, "
                f"{best['api_to_self_host']:.2f}x the cheapest deployment's cost; {verdict}{warn}.\nSource: {a['source']}")

    @app.command()
    def plan(ctx: typer.Context, model: str = typer.Argument(..., help="Model."), qps: float = OPTS["qps"], prompt: float = OPTS["prompt"],
             gen: float = OPTS["gen"], prompt_dist: str = OPTS["prompt_dist"], gen_dist: str = OPTS["gen_dist"],
             slo_ttft: float = OPTS["slo_ttft"], slo_tpot: Optional[float] = OPTS["slo_tpot"],
             percentile: int = OPTS["percentile"], candidates: str = OPTS["candidates"], fmt: str = OPTS["fmt"],
             engine: str = OPTS["engine"], price: str = OPTS["price"], years: Optional[float] = OPTS["years"],
             electricity: Optional[float] = OPTS["electricity"], pue: Optional[float] = OPTS["pue"],
             hosting: Optional[float] = OPTS["hosting"], price_per_hour: Optional[list[str]] = OPTS["price_per_hour"],
             price_per_device: Optional[list[str]] = OPTS["price_per_device"],
             tp: Optional[str] = OPTS["tp"], layouts: Optional[str] = OPTS["layouts"],
             prefix_hit: Optional[float] = OPTS["prefix_hit"], mtp: int = OPTS["mtp"],
             accept_rate: Optional[float] = OPTS["accept_rate"], api_price: Optional[str] = OPTS["api_price"],
             disagg: str = OPTS["disagg"], kv_link: Optional[str] = OPTS["kv_link"],
             kv_overlap: bool = OPTS["kv_overlap"], prefix_tokens: Optional[float] = OPTS["prefix_tokens"],
             kv_offload: Optional[str] = OPTS["kv_offload"], turns: Optional[int] = OPTS["turns"], limit: int = typer.Option(15, "--limit", help="Deployments shown (15; with --json every one, unless --limit is given)."),
             as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Cheapest deployments (device, count, tp, replicas, format, batch cap) that meet the SLOs."""
        from costmodel.planning.plan import plan as run
        from costmodel.planning.plan import request, stray_prices

        req = request(model, qps=qps, prompt=prompt, gen=gen, slo_ttft=slo_ttft, candidates=candidates, fmt=fmt,
                      slo_tpot=slo_tpot, percentile=percentile, prompt_dist=prompt_dist, gen_dist=gen_dist,
                      engine=engine, price=price, years=years, electricity=electricity, pue=pue,
                      hosting=hosting, price_per_hour=price_per_hour, tp=tp, price_per_device=price_per_device,
                      layouts=layouts, prefix_hit=prefix_hit, mtp=mtp, accept_rate=accept_rate,
                      api_price=api_price, disagg=disagg, kv_link=kv_link, kv_overlap=kv_overlap,
                      prefix_tokens=prefix_tokens, kv_offload=kv_offload, turns=turns)
        stray_prices(req)
        result = run(req)
        if as_json:
            from costmodel.cli.checks import on_command_line

            if on_command_line(ctx, "limit"):
                result = {**result, "deployments": result["deployments"][:limit]}
            print_json(result)
        else:
            con = console()
            if result["deployments"]:
                con.print(table(result, limit))
                if result.get("api"):
                    con.print(api_line(result))
                if result.get("disagg_why"):
                    con.print(result["disagg_why"])
            for r in result["rejected"]:
                console(stderr=True).print(f"[yellow]rejected[/yellow] {r['candidate']}: {r['reason']}")
            if not result["deployments"]:
                console(stderr=True).print(f"[red]no deployment meets the SLOs.[/red] {result['binding']}")
        if not result["deployments"]:
            sys.exit(1)

    @app.command()
    def whatif(model: str = typer.Argument(..., help="Model."),
               vary: list[str] = typer.Option(..., "--vary", help="One input to vary: qps=10,20,40 | candidates=h100|h200 | fmt=bf16|fp8 | slo-ttft=0.5,1 | prefix-hit=0,0.5,0.9 | disagg=off,auto | kv-offload=none|cpu:512 | prefix-tokens=1e6,1e7"),
               qps: float = OPTS["qps"], prompt: float = OPTS["prompt"], gen: float = OPTS["gen"],
               prompt_dist: str = OPTS["prompt_dist"], gen_dist: str = OPTS["gen_dist"], slo_ttft: float = OPTS["slo_ttft"],
               slo_tpot: Optional[float] = OPTS["slo_tpot"], percentile: int = OPTS["percentile"],
               candidates: str = OPTS["candidates"], fmt: str = OPTS["fmt"], engine: str = OPTS["engine"],
               price: str = OPTS["price"], years: Optional[float] = OPTS["years"],
               electricity: Optional[float] = OPTS["electricity"], pue: Optional[float] = OPTS["pue"],
               hosting: Optional[float] = OPTS["hosting"], price_per_hour: Optional[list[str]] = OPTS["price_per_hour"],
               price_per_device: Optional[list[str]] = OPTS["price_per_device"], tp: Optional[str] = OPTS["tp"],
               layouts: Optional[str] = OPTS["layouts"], prefix_hit: Optional[float] = OPTS["prefix_hit"],
               mtp: int = OPTS["mtp"], accept_rate: Optional[float] = OPTS["accept_rate"],
               api_price: Optional[str] = OPTS["api_price"], disagg: str = OPTS["disagg"],
               kv_link: Optional[str] = OPTS["kv_link"], kv_overlap: bool = OPTS["kv_overlap"],
               prefix_tokens: Optional[float] = OPTS["prefix_tokens"], kv_offload: Optional[str] = OPTS["kv_offload"],
               turns: Optional[int] = OPTS["turns"], plot: Optional[str] = typer.Option(None, "--plot", help="Draw cost vs the varied input per device."),
               as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
        """Re-run a plan while varying one input; compare the cheapest deployment per device."""
        from rich.table import Table

        from costmodel.planning.whatif import VARIABLES
        from costmodel.planning.whatif import whatif as run

        if len(vary) != 1:  # click kept the last one silently
            from costmodel.planning.plan import PlanError

            raise PlanError(f"--vary given {len(vary)} times ({' '.join(vary)}): whatif varies one input at a time")
        vary = vary[0]
        base = dict(model=model, qps=qps, prompt=prompt, gen=gen, prompt_dist=prompt_dist, gen_dist=gen_dist,
                    slo_ttft=slo_ttft, slo_tpot=slo_tpot, percentile=percentile, candidates=candidates, fmt=fmt,
                    engine=engine, price=price, years=years, electricity=electricity, pue=pue, hosting=hosting,
                    price_per_hour=price_per_hour, tp=tp, price_per_device=price_per_device, layouts=layouts,
                    prefix_hit=prefix_hit, mtp=mtp, accept_rate=accept_rate, api_price=api_price, disagg=disagg,
                    kv_link=kv_link, kv_overlap=kv_overlap, prefix_tokens=prefix_tokens, kv_offload=kv_offload,
                    turns=turns)
        varied = vary.split("=", 1)[0].strip()
        key = VARIABLES.get(varied)
        default = OPTS[key].default if key else ...
        if default is not ... and base[key] != default:  # an optional input given as well: the varied values replace it
            from costmodel.planning.plan import PlanError

            raise PlanError(f"--{varied} {base[key]}: whatif varies {varied} (--vary {vary}); drop --{varied}")
        rows = run(base, vary)
        if plot:
            from costmodel.plots import whatif_plot

            whatif_plot(rows, vary.split("=", 1)[0], plot, base=base)
        if as_json:
            print_json(rows)
            return
        t = Table(title=f"what if {vary.split('=', 1)[0]} varies", title_justify="left")
        api = bool(api_price)
        cols = ("value", "device", "count", "layout", "format", "batch cap", "$/month", "$/Mtok") + (
            ("API $/month", "break-even") if api else ()) + ("note",)
        for col in cols:
            t.add_column(col, justify="left" if col in ("value", "device", "format", "note") else "right")
        for r in rows:
            d = r["best"]
            if d:
                extra = (f"${d['api_usd_per_month']:,.0f}", _breakeven(d)) if api else ()
                t.add_row(str(r["value"]), d["hardware"], str(d["devices"]), d.get("layout", f"tp{d['tp']}"), d["format"], str(d["batch_cap"]),
                          f"${d['usd_per_month']:,.0f}", f"${d['usd_per_million_tokens']:.3f}", *extra, "")
            else:
                t.add_row(str(r["value"]), *["-"] * (len(cols) - 2), r.get("binding", "no deployment"))
        console().print(t)
        if plot:
            console(stderr=True).print(f"plot written to {plot}")
