"""Rendering at the edge: human units, rich tables, CSV. No engine logic here."""
from __future__ import annotations

import csv
import io
import math

from costmodel.spec.units import format_gib, format_si, format_time


def progress_bar(err, *columns):
    """A transient rich progress bar on the stderr console `err`, drawn only on a terminal (off one, rich left a blank
    line on stderr before the next output)."""
    from rich.progress import Progress

    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


def status(err, text: str):
    """err.status(text) on a terminal, nothing off one (as progress_bar)."""
    import contextlib

    return err.status(text) if err.is_terminal else contextlib.nullcontext()


def human(name: str, value) -> str:
    """Human-readable value for a metric or field name."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name.endswith("tokens_per_s"):
        return f"{value:,.1f} tok/s"
    if name.endswith("_s"):
        return format_time(value)
    if name.endswith("_bytes"):
        return format_gib(value)
    if name.startswith("usd"):
        return f"${value:,.3f}"
    if name.startswith("energy"):
        return f"{value:.3g} J"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


ESTIMATE_ROWS = (
    ("ttft_s", "Time to first token"),
    ("tpot_s", "Time per output token"),
    ("prefill_tokens_per_s", "Prefill rate"),
    ("decode_tokens_per_s", "Decode rate per sequence"),
    ("throughput_tokens_per_s", "Throughput (all sequences, all replicas)"),
    ("e2e_latency_s", "End-to-end latency"),
    ("energy_j_per_token", "Energy per output token"),
    ("usd_per_million_tokens", "$ per million output tokens"),
    ("usd_per_million_total_tokens", "$ per million tokens (prompt + output)"),
)


def estimate_table(d: dict):
    from rich.table import Table

    title = (f"{d['model']} on {d['devices']} x {d['hardware']} in {d['format']}"
             f"{' (KV ' + d['kv_format'] + ')' if d['kv_format'] else ''}")
    caption = (f"batch {d['batch']}, prompt {d['prompt']}, gen {d['gen']}"
               + (f", context {d['context']}" if d["context"] else "")
               + (f", tp {d['tp']}" if d["tp"] > 1 else "") + (f", pp {d['pp']}" if d["pp"] > 1 else "")
               + "; times per sequence, memory per device"
               + ("\n" + layout_line(d["layout"], d.get("layout_calibration", ""))
                  if d.get("layout") and (d.get("dp", 1) > 1 or d.get("ep", 1) > 1) else "")
               + ("\nbatch max: the sequences start together (a static batch), so TTFT is the whole batch's prefill;"
                  " for the TTFT of a served request under load use 'costmodel plan'" if d.get("batch_requested") == "max"
                  else ""))
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    iv = d.get("interval") or {}
    t.add_column("80% interval", justify="right")
    for key, label in ESTIMATE_ROWS:
        band = iv.get(key)
        t.add_row(label, human(key, d[key]), f"{human(key, band['low'])} – {human(key, band['high'])}" if band else "")
    mem = d["memory"]
    t.add_section()
    state = mem.get("recurrent_state_bytes") or 0.0
    for key, label in (("weights_bytes", "weights"), ("kv_cache_bytes", "KV cache of this batch"),
                       ("activation_bytes", "activations"), ("reserve_bytes", "runtime + unused by the engine"),
                       ("total_bytes", "total"), ("capacity_bytes", "capacity the runtime sees")):
        value = human(key, mem[key])
        if key == "kv_cache_bytes" and state > 0:
            value += f" (recurrent state {human(key, state)}, constant in context)"
        t.add_row("Memory per device: " + label, value)
    pool = human('kv_pool_bytes', mem['kv_pool_bytes'])
    tokens = mem.get("kv_cache_tokens")
    if tokens:
        pool += f" = {int(tokens):,} tokens" + (" of attention KV" if state > 0 else "")
    elif state > 0:
        pool += " (recurrent state only: no per-token KV)"
    t.add_row("KV pool the engine allocates", pool)
    if mem.get("max_concurrency") is not None:
        t.add_row("Max concurrency at full length", f"{mem['max_concurrency']:.2f}x")
    t.add_row("Fits", human("fits", mem["fits"]))
    t.add_row("Max batch that fits", human("max_batch", d["max_batch"]))
    t.add_section()
    t.add_row("Engine (calibration)", f"{d['engine']} ({d['calibration'][-1]})" if d.get("calibration") else d.get("engine", ""))
    if d.get("calibration_case"):
        t.add_row("Calibration case", d["calibration_case"])
    a = d["assumptions"]
    t.add_row("Bits per weight / activation / KV", f"{a['weight_bits']:g} / {a['activation_bits']:g} / {a['kv_bits']:g}")
    t.add_row("Matrix unit", d["compute_unit"])
    if d.get("memory_policy"):
        t.add_row("Memory policy", d["memory_policy"])
    t.add_row("Efficiency compute / memory / attention kernels",
              f"{a['compute_efficiency']:.3g} / {a['memory_efficiency']:.3g} / x{a.get('attention_efficiency', 1.0):.3g}")
    t.add_row("Overhead per kernel / per step", f"{format_time(a['kernel_overhead_s'])} / {format_time(a['step_overhead_s'])}")
    return t


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        elif isinstance(v, (list, tuple)):
            out[prefix + k] = "; ".join(map(str, v))
        else:
            out[prefix + k] = v
    return out


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    from costmodel.spec.files import FORMULA_STARTS

    def safe(v):  # spreadsheet formula injection through a name (OWASP): prefix an apostrophe
        if isinstance(v, float) and not math.isfinite(v):  # unbounded or undefined: empty, as --json writes null
            return ""
        return "'" + v if isinstance(v, str) and v.startswith(FORMULA_STARTS) else v

    flat_rows = [{k: safe(v) for k, v in flat(r).items()} for r in rows]
    writer = csv.DictWriter(buf, fieldnames=list(flat_rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat_rows)
    return buf.getvalue()


def explain_table(rows: list[dict], title: str):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col, just in (("phase", "left"), ("op", "left"), ("unit", "left"), ("FLOPs", "right"), ("bytes", "right"),
                      ("FLOP/byte", "right"), ("bound", "left"), ("time", "right"), ("share", "right")):
        t.add_column(col, justify=just)
    last = None
    for r in rows:
        if last and r["phase"] != last:
            t.add_section()
        last = r["phase"]
        t.add_row(r["phase"], r["op"], r["unit"], format_si(r["flops"], "FLOP") if r["flops"] else
                  format_si(r["vector_flops"], "FLOP") + " (FP32 vector)" if r.get("vector_flops") else "0",
                  format_si(r["bytes"], "B"), f"{r['intensity']:.3g}" if r["intensity"] else "-",
                  r["bound"], format_time(r["time_s"]), f"{100 * r['share']:.1f}%")
    return t


def stats_table(title: str, groups: dict):
    from rich.table import Table

    t = Table(title=title, title_justify="left")
    for col in ("group", "n", "median |err|", "mean |err|", "P90 |err|", "bias"):
        t.add_column(col, justify="left" if col == "group" else "right")
    for g, s in groups.items():
        t.add_row(str(g), str(s["n"]), f"{100 * s['median_ape']:.1f}%", f"{100 * s.get('mean_ape', float('nan')):.1f}%",
                  f"{100 * s['p90_ape']:.1f}%", f"{100 * s['bias']:+.1f}%")
    return t


def worst_table(rows: list[dict]):
    from rich.table import Table

    t = Table(title="worst rows", title_justify="left")
    for col in ("id", "hardware", "model", "format", "engine", "metric", "measured", "predicted", "|err|"):
        t.add_column(col, justify="right" if col in ("measured", "predicted", "|err|") else "left")
    for r in rows:
        t.add_row(r["id"], r["hardware"], r["model"], r["format"], r["engine"], r["metric"], f"{r['measured']:.4g}",
                  f"{r['predicted']:.4g}", f"{100 * r['ape']:.0f}%")
    return t


def layout_line(lay: dict, calibration: str) -> str:
    """One line on a DP-attention / EP layout: groups, per-group batch, collectives per decode step."""
    comm = lay.get("decode_comm_s", {})
    parts = [f"{name} {format_time(comm[key])}" for key, name in
             (("ep_alltoall", "all-to-all"), ("dp_allgather", "all-gather"), ("tp_allreduce", "all-reduce"))
             if comm.get(key)]
    return (f"layout: attention TP {lay['attention_tp']} x DP {lay['dp_attention']}, EP {lay['ep']} (expert TP "
            f"{lay['moe_tp']}); {lay['batch_per_attention_group']:g} sequences per attention group; per decode "
            f"step {', '.join(parts) or 'no collectives'}; {calibration.split(' (')[0]}")


def split_where(split: dict) -> str:
    """'2 prefill workers of tp2 on h100-sxm + 1 decode worker of tp4 on h100-sxm' for a split deployment."""
    def side(role: str) -> str:
        w = split[role]
        lay = f"tp{w['tp']}" + (f" dp{w['dp']}" if w["dp"] > 1 else "") + (f" ep{w['ep']}" if w["ep"] > 1 else "")
        return f"{w['workers']} {role} worker{'s' if w['workers'] > 1 else ''} of {lay} on {w['hardware']}"

    return f"{side('prefill')} + {side('decode')}"


def serving_table(d: dict):
    """Latency under load: mean and percentiles per metric, then throughput and the steady state."""
    from rich.table import Table

    load = (f"{d['concurrency']:g} concurrent clients (closed loop)" if d["load"] == "closed"
            else f"Poisson arrivals at {d['request_rate']:g} req/s"
                 + (f", at most {d['concurrency']:g} in flight" if d.get("concurrency") else ""))
    per = d["tp"] * d["pp"]
    split = d.get("disagg")
    where = (f"{d['replicas'] * per} x {d['hardware']}" + (f" ({d['replicas']} replicas of {per})" if d["replicas"] > 1
                                                           else "")) if not split else split_where(split)
    title = f"{d['model']} on {where} in {d['format']} ({d['engine']}): {load}"

    def num(v):
        return f"{v:.4g}" if v is not None and math.isfinite(v) else "unbounded"

    caption = (f"prompt {d['prompt_mean']:,.0f} / output {d['gen_mean']:,.0f} tokens (means); per "
               f"{'decode worker' if split else 'replica'}: {num(d['running_per_replica'])} decoding, "
               f"{num(d['queued_per_replica'])} queued, batch cap {d['batch_cap']}, load "
               f"{num(100 * (split['decode']['utilization'] if split else d['utilization']))}% of capacity")
    if split:
        def busy(u):  # a worker is busy at most all the time: past its capacity the offered load is what grows
            return f"{num(100 * u)}% busy" if u < 1 else f"saturated (offered {num(100 * u)}% of capacity)"

        wait = split["prefill"]["wait_s"]
        caption += (f"\nprefill workers {busy(split['prefill']['utilization'])}, mean wait "
                    f"{format_time(wait) if math.isfinite(wait) else 'unbounded'}; decode workers "
                    f"{busy(split['decode']['utilization'])}; KV {split['kv_bytes_per_request'] / 1e6:,.0f} MB a request, "
                    f"{format_time(split['kv_transfer_s'])} over {split['kv_link']}"
                    + (" (overlapped with the prefill)" if split["kv_overlap"] else "")
                    + f", links {busy(split.get('kv_link_utilization', 0.0))}")
        caption += f"\n{d['calibration_case']}"
    if d.get("layout") and (d["dp"] > 1 or d["ep"] > 1):
        caption += "\n" + layout_line(d["layout"], d.get("layout_calibration", ""))
    if d.get("prefix_cache"):
        c = d["prefix_cache"]
        caption += (f"\nprefix cache: of the reused {100 * c['hit']:.0f}% of each prompt ({c['set_tokens']:,.0f} distinct "
                    f"tokens), {100 * c['hbm_share']:.0f}% in HBM, {100 * c['tier_share']:.0f}% offloaded"
                    + (f" ({c['tier']}; {format_time(c['reload_s_per_prompt'])} to load per prompt)" if c["tier"] else "")
                    + f", {100 * c['miss_share']:.0f}% prefilled again")
    if d.get("simulated"):
        caption += "\nlatencies and rates from the scheduler simulation (--simulate)"
    if d.get("note"):
        caption += f"\nnote: {d['note']}"
    if d.get("length_note"):
        caption += f"\nnote: {d['length_note']}"
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    pcts = sorted({k.rsplit("_p", 1)[1][:-2] for k in d if "_p" in k and k.endswith("_s") and k[:-2].rsplit("_p", 1)[1].isdigit()},
                  key=int)
    bands = d.get("interval") or {}
    for col in ["metric", "mean"] + [f"P{p}" for p in pcts] + (["80% interval of the mean"] if bands else []):
        t.add_column(col, justify="left" if col == "metric" else "right")

    def band(key, fmt):
        iv = bands.get(key)
        return [f"{fmt(iv['low'])} – {fmt(iv['high'])}" if iv else "–"] if bands else []

    def cell(v):
        return format_time(v) if v is not None and math.isfinite(v) else "unbounded"

    for key, label in (("ttft", "Time to first token"), ("tpot", "Time per output token"),
                       ("itl", "Inter-token latency"), ("e2e_latency", "End-to-end latency")):
        t.add_row(label, cell(d[f"{key}_s"]), *[cell(d[f"{key}_p{p}_s"]) for p in pcts], *band(f"{key}_s", cell))
    t.add_section()
    blanks = [""] * len(pcts)
    for key, label, fmt in (("request_throughput_per_s", "Requests per second", "{:,.3g}"),
                            ("throughput_tokens_per_s", "Output tokens per second", "{:,.0f}"),
                            ("total_throughput_tokens_per_s", "Total tokens per second", "{:,.0f}")):
        t.add_row(label, fmt.format(d[key]), *blanks, *band(key, fmt.format))
    if bands:
        files = dict.fromkeys(b["basis"].split(": engine")[0].split(": pooled")[0] for b in bands.values() if b)
        t.caption += "\n80% interval: " + "; ".join(files)  # the calibration files whose residuals apply
    return t
