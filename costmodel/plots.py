"""Figures for papers and reports: roofline, memory, Pareto, latency-throughput, what-if, sweep,
estimates with their intervals, and test-time scaling.

matplotlib is imported inside the functions only, never on the start-up path, and pyplot is not
used at all: each figure is a `matplotlib.figure.Figure` drawn on the Agg canvas, so plotting
never changes a notebook's backend. Every plot goes through one style (`_style`) and one save
(`_save`): the output format follows the file extension (.png, .svg or .pdf; anything else is a
`PlotError`), SVG keeps its text as text and PDF embeds TrueType fonts, as publishers ask.
Axis labels are words with units (`_axis_label`), never column names.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import os
import textwrap

import numpy as np

from costmodel.errors import CostModelError

EXTENSIONS = (".png", ".svg", ".pdf")
DPI = 200  # PNG resolution (read at each save: set costmodel.plots.DPI = 110 for lighter notebooks); SVG/PDF ignore it

# column -> (words, unit, factor from the column's SI value to the unit shown)
COLUMNS = {
    "ttft_s": ("Time to first token", "ms", 1e3),
    "tpot_s": ("Time per output token", "ms", 1e3),
    "e2e_latency_s": ("End-to-end latency", "s", 1.0),
    "prefill_tokens_per_s": ("Prefill rate", "tokens/s", 1.0),
    "decode_tokens_per_s": ("Decode rate per sequence", "tokens/s", 1.0),
    "throughput_tokens_per_s": ("Aggregate throughput", "output tokens/s, all sequences", 1.0),
    "energy_j_per_token": ("Energy per token", "J", 1.0),
    "energy_j_per_query": ("Energy per query", "J", 1.0),
    "average_power_w": ("Average power", "W", 1.0),
    "kwh_per_million_tokens": ("Energy", "kWh per million tokens", 1.0),
    "gco2_per_query": ("Carbon per query", "g CO2", 1.0),
    "gco2_per_million_tokens": ("Carbon", "g CO2 per million tokens", 1.0),
    "usd_per_million_tokens": ("Cost", "$ per million tokens", 1.0),
    "usd_per_hour": ("Cost", "$ per hour", 1.0),
    "usd_per_month": ("Cost", "$ per month", 1.0),
    "cost_of_pass_usd": ("Cost-of-pass", "$ per correct answer", 1.0),
    "accuracy": ("Accuracy", "%", 100.0),
    "batch": ("Batch", "sequences", 1.0),
    "max_batch": ("Largest batch that fits", "sequences", 1.0),
    "weights_bytes": ("Weights per device", "GiB", 2.0**-30),
    "kv_cache_bytes": ("KV cache per device", "GiB", 2.0**-30),
    "activation_bytes": ("Activations per device", "GiB", 2.0**-30),
    "total_bytes": ("Memory per device", "GiB", 2.0**-30),
    "capacity_bytes": ("Memory capacity per device", "GiB", 2.0**-30),
    "tp": ("Tensor-parallel degree", "devices", 1.0),
    "devices": ("Devices", "count", 1.0),
    "prompt": ("Prompt length", "tokens", 1.0),
    "gen": ("Generated length", "tokens", 1.0),
    "context": ("Cached context", "tokens", 1.0),
}

# what-if variables -> (words, unit, factor)
VARIABLES = {
    "qps": ("Traffic", "requests/s", 1.0),
    "slo-ttft": ("TTFT target", "s", 1.0),
    "slo-tpot": ("TPOT target", "ms", 1e3),
    "prompt": ("Prompt length", "tokens", 1.0),
    "gen": ("Generated length", "tokens", 1.0),
    "candidates": ("Candidate devices", "", 1.0),
    "fmt": ("Formats considered", "", 1.0),
}

OPERATORS = {
    "embedding": "embedding lookup", "norms": "norms", "qkv_proj": "QKV projection", "mla_kv_up": "MLA KV up-projection",
    "attention": "attention", "attention_local": "attention (sliding window)",
    "attention_chunked": "attention (chunked local)", "attention_indexer": "DSA indexer", "o_proj": "output projection",
    "ssm_in_proj": "recurrent in-projection", "ssm_scan": "recurrent scan (DeltaNet / Mamba)",
    "ssm_out_proj": "recurrent out-projection",
    "mlp_up": "MLP up + gate", "mlp_act": "MLP activation", "mlp_down": "MLP down", "moe_router": "MoE router",
    "moe_up": "MoE experts up + gate", "moe_act": "MoE activation", "moe_down": "MoE experts down", "lm_head": "LM head",
    "tp_allreduce": "TP all-reduce", "dp_allgather": "DP all-gather + reduce-scatter",
    "ep_alltoall": "EP all-to-all (dispatch + combine)", "pp_sendrecv": "PP send/receive",
}

# one consistent look for every figure
_RC = {
    "font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "legend.title_fontsize": 8,
    "legend.frameon": False, "axes.grid": True, "axes.axisbelow": True, "grid.alpha": 0.35,
    "grid.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False, "axes.titlelocation": "left",
    "figure.dpi": 100, "svg.fonttype": "none", "pdf.fonttype": 42, "ps.fonttype": 42,
    "image.cmap": "viridis", "lines.linewidth": 1.4,
}
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h", "<", ">", "p")


class PlotError(CostModelError):
    """A plot that cannot be written (bad file extension, missing folder, nothing to draw)."""


# ---------------------------------------------------------------------------------------------
# the shared machinery: path check, style, figure, axes formatting, label placement, save


def check_path(path) -> str:
    """The path as a string if its extension is one we write (.png, .svg, .pdf) and its folder exists."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in EXTENSIONS:
        got = f"extension '{ext}'" if ext else "no extension"
        raise PlotError(f"cannot write a plot to '{path}': {got}; use one of {', '.join(EXTENSIONS)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise PlotError(f"cannot write a plot to '{path}': the folder '{folder}' does not exist")
    return path


@contextlib.contextmanager
def _style():
    """The one style of every figure (fonts, grid, dpi, vector text), applied while a figure is built and saved."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield matplotlib


def _figure(size):
    """A constrained-layout figure on the Agg canvas (no pyplot, so no global state or backend change)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(h_pad=0.06, w_pad=0.06)
    return fig


def _layout(fig) -> None:
    """Place the axes, legends and colour bars as the saved figure will have them (no drawing)."""
    fig.get_layout_engine().execute(fig)


def _save(fig, path: str) -> str:
    """Write the figure in the format its extension names; metadata without dates keeps files reproducible."""
    from costmodel.spec.files import atomic_output

    ext = os.path.splitext(path)[1].lower()
    meta = {".svg": {"Date": None}, ".pdf": {"CreationDate": None}}.get(ext, {})
    with atomic_output(path) as tmp:  # an error or Ctrl-C leaves no half-written figure
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format=ext[1:], dpi=DPI, bbox_inches="tight", pad_inches=0.08, metadata=meta)
    return path


def _title(ax, subject: str, detail: str = "", across=None) -> None:
    """The title: the subject, then the configuration it shows (model, device, format, workload,
    parallelism), wrapped to the width of the axes (or of the row of axes `across`) so it never
    runs into a legend beside them. Call it after the legends are added: they take width."""
    from matplotlib.font_manager import FontProperties

    fig = ax.get_figure()
    _layout(fig)
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in (across or [ax])]
    room = max(b.x1 for b in boxes) - min(b.x0 for b in boxes)
    props = FontProperties(size=9.5)

    def wide(text: str) -> float:
        return renderer.get_text_width_height_descent(_tex(text), props, ismath=False)[0]

    lines = []
    for part in (subject, detail):
        line = ""
        for word in part.split():
            trial = f"{line} {word}".strip()
            if line and wide(trial) > room:
                lines.append(line)
                line = word
            else:
                line = trial
        if line:
            lines.append(line)
    ax.set_title(_tex("\n".join(lines)), fontsize=9.5, loc="left", linespacing=1.35)


def _tex(text: str) -> str:
    """Escape dollar signs, which matplotlib would otherwise read as mathtext."""
    return text.replace("$", r"\$")


def _axis_label(column: str, extra: str = "") -> str:
    """'tpot_s' -> 'Time per output token (ms)': words and the unit, never the column name."""
    words, unit, _ = COLUMNS.get(column, (column.replace("_", " ").strip().capitalize(), "", 1.0))
    inside = ", ".join(p for p in (unit, extra) if p)
    return _tex(f"{words} ({inside})" if inside else words)


def _scale(column: str) -> float:
    return COLUMNS.get(column, ("", "", 1.0))[2]


def _number(v: float) -> str:
    """A tick or annotation number with thousands separators and no needless digits."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else str(v)
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:,.4g}"
    return f"{v:.3g}"


def _format_axes(ax, categorical_x: bool = False, categorical_y: bool = False) -> None:
    """Thousands separators on every numeric axis; log axes get 1-2-5 ticks when they span few decades, and become
    linear where the data span under half a decade."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    fmt = FuncFormatter(lambda v, pos: _number(v))
    axes = []
    if not categorical_x:
        axes.append((ax.xaxis, ax.get_xscale(), ax.get_xlim()))
    if not categorical_y:
        axes.append((ax.yaxis, ax.get_yscale(), ax.get_ylim()))
    for axis, scale, lim in axes:
        if scale == "log" and min(lim) > 0 and max(lim) / min(lim) < 3:  # under half a decade: a log axis labels
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("linear")  # one tick or none (806-1,156 tok/s)
            scale = "linear"
        if scale == "log":
            lo, hi = sorted(lim)
            decades = math.log10(hi / lo) if lo > 0 else 10
            subs = (1.0, 2.0, 5.0) if decades <= 2.5 else (1.0, 3.0) if decades <= 4 else (1.0,)
            axis.set_major_locator(LogLocator(base=10, subs=subs))
            if decades > 4:  # minor lines at 2..9 of each decade only where there are few decades
                axis.set_minor_locator(NullLocator())
            axis.set_minor_formatter(NullFormatter())
            axis.set_major_formatter(fmt)
        elif scale == "linear":
            axis.set_major_formatter(fmt)
    ax.grid(True, which="major")
    ax.grid(True, which="minor", alpha=0.12)


def _log_if_wide(ax, xs, ys, ratio: float = 15.0) -> None:
    for values, setter in ((xs, ax.set_xscale), (ys, ax.set_yscale)):
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        if len(v) and v.min() > 0 and v.max() / v.min() > ratio:
            setter("log")


def _place_labels(fig, ax, xy, texts, avoid=(), fontsize: float = 7.0, color="0.15", colors=None, lines=(),
                  rings=(), ring_pt: float = 8.0) -> int:
    """Put each label next to its point where it overlaps no other label, no point and no edge.

    A greedy placement in display space (what adjustText does, by hand): candidate offsets in
    eight directions at growing distances, first fit wins, a leader line when the label sits
    away from its point. Labels keep off other labels, the points in `avoid` and the `lines`
    ((xs, ys) pairs). Labels that find no free place are left out; returns how many were drawn.
    """
    from matplotlib.transforms import Bbox

    if not len(texts):
        return 0
    _layout(fig)  # so the data-to-display transform is final
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72.0
    pts = [ax.transData.transform(p) for p in list(xy) + list(avoid)]
    pts = [p for p in pts if np.all(np.isfinite(p))]
    for p in rings:  # large hollow markers: points around their circle
        c = ax.transData.transform(p)
        pts.extend(c + ring_pt * px * np.array([math.cos(a), math.sin(a)]) for a in np.linspace(0, 2 * math.pi, 16))
    for lx, ly in lines:  # points every few pixels along each drawn line, so labels keep off the lines too
        v = ax.transData.transform(np.column_stack([np.asarray(lx, dtype=float), np.asarray(ly, dtype=float)]))
        v = v[np.all(np.isfinite(v), axis=1)]
        for a, b in itertools.pairwise(v):
            k = max(2, int(np.hypot(*(b - a)) / (3 * px)))
            pts.extend(a + (b - a) * t for t in np.linspace(0, 1, k))
    taken = []
    r_pt = 3.5 * px  # half a marker, in pixels
    directions = [(1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1)]
    drawn = 0
    colors = list(colors) if colors is not None else [color] * len(texts)
    for (x, y), text, tint in zip(xy, texts, colors):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        probe = ax.text(0, 0, text, fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        probe.remove()
        w, h = bb.width, bb.height
        cx, cy = ax.transData.transform((x, y))
        best = None
        for dist in (5, 10, 18, 28, 40):
            for dx, dy in directions:
                ox, oy = dx * dist * px, dy * dist * px
                x0 = cx + ox if dx > 0 else cx + ox - w if dx < 0 else cx - w / 2
                y0 = cy + oy if dy > 0 else cy + oy - h if dy < 0 else cy - h / 2
                box = Bbox.from_bounds(x0, y0, w, h)
                if box.x0 < frame.x0 + 2 or box.x1 > frame.x1 - 2 or box.y0 < frame.y0 + 2 or box.y1 > frame.y1 - 2:
                    continue
                padded = box.padded(2 * px)
                if any(padded.overlaps(t) for t in taken):
                    continue
                if any(box.x0 - r_pt < p[0] < box.x1 + r_pt and box.y0 - r_pt < p[1] < box.y1 + r_pt for p in pts):
                    continue
                if dist >= 10:  # the leader line must not cross a label already placed
                    end = np.array([x0 + w / 2 if dx == 0 else (x0 if dx > 0 else x0 + w),
                                    y0 + h / 2 if dy == 0 else (y0 if dy > 0 else y0 + h)])
                    lead = [np.array([cx, cy]) + (end - [cx, cy]) * t for t in np.linspace(0.15, 0.95, 12)]
                    if any(t.padded(1 * px).contains(*q) for t in taken for q in lead):
                        continue
                best = (box, ox, oy, dx, dy, dist)
                break
            if best:
                break
        if best is None:
            continue
        box, ox, oy, dx, dy, dist = best
        taken.append(box)
        if dist >= 10:  # later labels keep off this leader line
            end = np.array([box.x0 if dx > 0 else box.x1 if dx < 0 else (box.x0 + box.x1) / 2,
                            box.y0 if dy > 0 else box.y1 if dy < 0 else (box.y0 + box.y1) / 2])
            pts.extend(np.array([cx, cy]) + (end - [cx, cy]) * t for t in np.linspace(0.1, 0.9, 10))
        ha = "left" if dx > 0 else "right" if dx < 0 else "center"
        va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
        arrow = {"arrowstyle": "-", "lw": 0.5, "color": "0.45", "shrinkA": 0, "shrinkB": 2.5}  # a leader to its point
        ann = ax.annotate(text, (x, y), xytext=(ox / px, oy / px), textcoords="offset points", fontsize=fontsize,
                          ha=ha, va=va, color=tint, arrowprops=arrow, zorder=5)
        ann.set_in_layout(False)
        drawn += 1
    return drawn


def _get(table, column):
    """A column of a sweep result or a dict of columns, or None."""
    cols = table.columns if hasattr(table, "columns") and not isinstance(table, dict) else list(table)
    return np.asarray(table[column]) if column in cols else None


def _fits(table, n: int) -> np.ndarray:
    f = _get(table, "fits")
    if f is None:
        return np.ones(n, dtype=bool)
    if f.dtype.kind in "US":
        return np.char.lower(f.astype(str)) == "true"
    return f.astype(bool)


def _listing(values, limit: int = 6) -> str:
    vals = _distinct_strings(values)
    if len(vals) > limit:
        return ", ".join(vals[:limit - 1]) + f" and {len(vals) - limit + 1} more"
    return ", ".join(vals)


def _distinct_strings(values) -> list:
    """The distinct str() of `values` in order of first appearance. A 1-D numpy array of text, numbers or flags is
    reduced to its distinct values by np.unique first (floats by their bits, so -0.0 and NaNs' payloads stay apart
    until spelled): a sweep's 10^6 rows in milliseconds, where spelling each row took seconds."""
    if (isinstance(values, np.ndarray) and values.ndim == 1 and len(values)
            and (values.dtype.kind in "USbiu" or values.dtype.kind == "f" and values.itemsize in (2, 4, 8))):
        keys = values.view(f"u{values.itemsize}") if values.dtype.kind == "f" else values
        values = values[np.sort(np.unique(keys, return_index=True)[1])]
    return list(dict.fromkeys(str(v) for v in values))


def _finite_values(values) -> list:
    """The distinct finite numbers of `values` (None and non-finite left out), ascending (np.unique's for a numeric
    numpy array, as _distinct_strings)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        a = values.astype(float).reshape(-1)
        return np.unique(a[np.isfinite(a)]).tolist()
    return sorted({float(v) for v in values if v is not None and np.isfinite(float(v))})


def _ints(values) -> str:
    return ", ".join(_number(v) for v in _finite_values(values))


def _config_text(table, idx) -> str:
    """'llama-3.1-8b on h100-sxm, b200 in bf16, fp8; prompt 2,000, gen 256 tokens; batch 16, max; TP 1, 2'."""
    parts = []
    names = [(_get(table, c), c) for c in ("model", "hardware", "format")]
    head = []
    for col, c in names:
        if col is not None:
            head.append(_listing(col[idx]))
    if head:
        parts.append(" on ".join(head[:2]) + (f" in {head[2]}" if len(head) > 2 else ""))
    work = []
    for c, word in (("prompt", "prompt"), ("gen", "gen")):
        col = _get(table, c)
        if col is not None and len(idx):
            work.append(f"{word} {_ints(col[idx])}")
    if work:
        parts.append(", ".join(work) + " tokens")
    req = _get(table, "batch_requested")
    if req is not None and len(idx):
        numeric = req.dtype.kind in "biuf" and np.isfinite(req[idx]).all()  # else each value, as read
        vals = sorted(_finite_values(req[idx]) if numeric else {float(v) for v in req[idx]},
                      key=lambda v: math.inf if v < 0 else v)
        parts.append("batch " + ", ".join("the largest that fits" if v < 0 else _number(v) for v in vals))
    elif _get(table, "batch") is not None and len(idx):
        parts.append("batch " + _ints(_get(table, "batch")[idx]))
    tp = _get(table, "tp")
    if tp is not None and len(idx):
        parts.append("TP " + _ints(tp[idx]))
    return "; ".join(parts)


def _varying_label(table, i, cols) -> str:
    out = []
    for c in cols:
        v = table[c][i]
        if c == "batch":
            out.append(f"B={_number(float(v))}")
        elif c == "tp":
            out.append(f"TP{int(float(v))}")
        else:
            out.append(str(v))
    return " ".join(out)


# ---------------------------------------------------------------------------------------------
# roofline


def _unit_dtypes(e) -> dict:
    """The datatype whose peak runs each compute unit, as the engine charges it (engine/roofline.py)."""
    peaks = e.hardware.peaks
    sixteen = "bf16" if "bf16" in peaks else "fp16" if "fp16" in peaks else "fp32"
    return {"matmul": e.plan.dtype, "attention": "fp32" if e.plan.dtype == "fp32" else sixteen, "vector": "fp32"}


def roofline_plot(e, path: str) -> str:
    """Roofline of one configuration: a roof for each compute unit its operators use (e.g. the fp8
    GEMM roof beside the bf16 attention roof and the fp32 vector roof), the memory roof, and each
    operator of prefill and decode at its arithmetic intensity and achieved rate (colour: operator;
    marker: phase; area: share of the phase's time). Dashed roofs apply the calibrated efficiencies.

        >>> costmodel.roofline_plot(costmodel.estimate("llama-3.1-8b", "h100", "fp8", batch=8), "roofline.png")
    """
    path = check_path(path)
    hw, eff, w = e.hardware, e.efficiency, e.workload
    rows = [r for r in e.explain() if r["flops"] > 0 and r["bytes"] > 0 and r["time_s"] > 0 and r["unit"] != "comm"]
    if not rows:
        raise PlotError(f"{e.model.id}: no operator with FLOPs to place on a roofline")
    dtypes = _unit_dtypes(e)
    gemms = f"GEMMs, {e.format.id} emulated" if e.plan.emulated else "GEMMs"
    uses = {"matmul": gemms, "attention": "attention", "vector": "norms, activations"}
    roofs: dict = {}
    for unit in ("matmul", "attention", "vector"):
        if any(r["unit"] == unit for r in rows):
            dt = dtypes[unit]
            scale = eff.matmul_scale(dt) if unit == "matmul" else 1.0
            roof = roofs.setdefault(dt, {"peak": hw.peaks[dt], "uses": [], "attainable": 0.0})
            roof["uses"].append(uses[unit])
            roof["attainable"] = max(roof["attainable"], hw.peaks[dt] * eff.compute_efficiency * scale)
    bw = hw.memory_bandwidth
    top = max(r["peak"] for r in roofs.values())
    unit_scale, rate_unit = (1e12, "TFLOP/s") if top >= 1e13 else (1e9, "GFLOP/s")
    intensities = np.array([r["intensity"] for r in rows])
    lo = 10 ** math.floor(math.log10(max(intensities.min() / 3, 1e-3)))
    ridge = top / bw
    hi = 10 ** math.ceil(math.log10(max(intensities.max() * 3, ridge * 10)))
    ops = list(dict.fromkeys(r["op"] for r in rows))
    with _style() as mpl:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        fig = _figure((9.2, 5.4))
        ax = fig.add_subplot()
        roof_colors = ["#1b1b1b", "#a0522d", "#1f4e9e", "#6a3d9a"]
        handles = []
        mem_eff = bw * eff.memory_efficiency
        # the memory roof is shared: one sloped line up to the highest ridge; each compute roof starts at its ridge
        ax.plot([lo, top / bw], [lo * bw / unit_scale, top / unit_scale], color="0.35", lw=1.8, zorder=2)
        top_att = max(r["attainable"] for r in roofs.values())
        ax.plot([lo, top_att / mem_eff], [lo * mem_eff / unit_scale, top_att / unit_scale], color="0.35", lw=0.9, ls="--",
                zorder=2)
        for k, (dt, roof) in enumerate(sorted(roofs.items(), key=lambda kv: -kv[1]["peak"])):
            c = roof_colors[k % len(roof_colors)]
            ax.plot([roof["peak"] / bw, hi], [roof["peak"] / unit_scale] * 2, color=c, lw=1.8, zorder=2)
            ax.plot([roof["attainable"] / mem_eff, hi], [roof["attainable"] / unit_scale] * 2, color=c, lw=0.9, ls="--",
                    zorder=2)
            handles.append(Line2D([], [], color=c, lw=1.8, label=f"{dt} compute roof: {_number(roof['peak'] / unit_scale)} "
                                                                 f"{rate_unit} ({', '.join(roof['uses'])})"))
        mem = hw.memory_kind or "memory"
        factor = eff.matmul_scale(e.plan.dtype)
        extra = f" (x {factor:.2f} more on {e.plan.dtype} GEMMs)" if abs(factor - 1) > 1e-9 else ""
        handles.append(Line2D([], [], color="0.35", lw=1.8, label=f"memory roof: {bw / 1e12:.3g} TB/s {mem}"))
        handles.append(Line2D([], [], color="0.35", lw=0.9, ls="--",
                              label=f"dashed: calibrated ({eff.engine}) efficiency, compute x {eff.compute_efficiency:.2f}"
                                    f"{extra}, memory x {eff.memory_efficiency:.2f}"))
        left_out = sorted({OPERATORS.get(r["op"], r["op"]) for r in e.explain()
                           if not (r["flops"] > 0 and r["bytes"] > 0 and r["time_s"] > 0) or r["unit"] == "comm"})
        if left_out:
            handles.append(Line2D([], [], lw=0, label=f"not placed (no FLOPs or interconnect time): {', '.join(left_out)}"))
        cmap = mpl.colormaps["tab20" if len(ops) > 10 else "tab10"]
        colors = {op: cmap(i) for i, op in enumerate(ops)}
        markers = {"prefill": "o", "decode": "s"}
        for r in rows:
            rate = r["flops"] / r["time_s"] / unit_scale
            ax.scatter(r["intensity"], rate, marker=markers[r["phase"]], s=25 + 320 * r["share"], color=colors[r["op"]],
                       edgecolor="black", linewidths=0.5, alpha=0.9, zorder=4)
        ax.set_xscale("log")
        ax.set_yscale("log")
        rates = np.array([r["flops"] / r["time_s"] for r in rows]) / unit_scale
        ax.set_xlim(lo, hi)
        ax.set_ylim(10 ** math.floor(math.log10(rates.min() / 2)), 10 ** math.ceil(math.log10(top * 2 / unit_scale)))
        ax.set_xlabel("Arithmetic intensity (FLOP per byte of memory traffic)")
        ax.set_ylabel(f"Achieved rate ({rate_unit} per device)")
        dev = f"{w.devices} x {hw.id}" if w.devices > 1 else hw.id
        par = (f"TP {w.tp}, PP {w.pp}" + (f", DP attention {w.dp}" if w.dp > 1 else "") + (f", EP {w.ep}" if w.ep > 1 else "")
               + (f", {w.devices // (w.tp * w.pp)} replicas" if w.devices > w.tp * w.pp else ""))
        _format_axes(ax)
        fig.legend(handles=handles, loc="outside lower center", ncols=2, title="Roofs (per device)")
        phase = [Line2D([], [], marker=m, ls="", color="0.55", markeredgecolor="black", markersize=7, label=p)
                 for p, m in markers.items() if any(r["phase"] == p for r in rows)]
        fig.legend(handles=phase + [Patch(color=colors[op], label=OPERATORS.get(op, op)) for op in ops],
                   loc="outside right upper", title="Phase (marker area:\nshare of phase time)\nand operator")
        how = f"GEMMs emulated on {e.plan.dtype} units" if e.plan.emulated else f"GEMMs on {e.plan.dtype} units"
        _title(ax, f"Roofline: {e.model.id} on {dev} in {e.format.id}, {how}",
               f"batch {e.batch:,}, prompt {w.prompt:,} tokens, gen {w.gen:,} tokens, {par}; {eff.engine} calibration")
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# memory


def _gib(v: float) -> str:
    return f"{v:,.1f}" if v >= 0.95 else f"{v:.2g}"


def _memory_item(row) -> dict:
    if hasattr(row, "memory_dict"):  # an Estimate
        d = row.to_dict()
        return {**d["memory"], "model": d["model"], "format": d["format"], "batch": d["batch"], "hardware": d["hardware"],
                "prompt": d["prompt"], "gen": d["gen"], "tp": d["tp"], "pp": d["pp"], "devices": d["devices"]}
    return dict(row)


def memory_plot(rows, path: str) -> str:
    """Stacked bars of memory per device in GiB (weights, KV cache of the batch, activations,
    runtime + unused by the engine) against the capacity the runtime sees, with the KV pool the
    engine allocates beside each bar. `rows` are Estimates or `memory_dict()`s (with an optional
    'label', and 'model', 'format', 'batch', 'hardware' for the title).

        >>> costmodel.memory_plot([costmodel.estimate("llama-3.1-70b", "h100", "fp8", batch=8)], "memory.png")
    """
    path = check_path(path)
    items = [_memory_item(r) for r in rows]
    if not items:
        raise PlotError("memory_plot: no configurations to draw")
    gib = 2.0**30
    meta = ("model", "hardware", "format", "batch", "prompt", "gen", "tp")
    common = {k: items[0][k] for k in meta if all(k in it for it in items) and len({str(it[k]) for it in items}) == 1}
    varying = [k for k in meta if all(k in it for it in items) and k not in common]

    def describe(d: dict, keys) -> str:
        words = []
        if "model" in keys:
            words.append(str(d["model"]) + (f" in {d['format']}" if "format" in keys else ""))
        elif "format" in keys:
            words.append(str(d["format"]))
        if "batch" in keys:
            words.append(f"batch {int(d['batch']):,}")
        if "prompt" in keys and "gen" in keys:
            words.append(f"prompt {int(d['prompt']):,}, gen {int(d['gen']):,} tokens")
        if "hardware" in keys:
            n = int(d.get("devices", 1) or 1)
            where = f"on {n} x {d['hardware']}" if n > 1 else f"on {d['hardware']}"
            words.append(where + (f" (TP {int(d['tp'])})" if "tp" in d else ""))
        elif "tp" in keys:
            words.append(f"TP {int(d['tp'])}")
        return ", ".join(words)

    if varying == ["hardware"]:
        labels = [it.get("label") or str(it["hardware"]) for it in items]
    else:
        labels = [it.get("label") or describe(it, varying) or f"#{i + 1}" for i, it in enumerate(items)]
    if common:
        detail = describe(items[0], list(common))
    elif len(items) == 1:
        detail = labels[0]
    else:
        detail = ""
    if len(items) == 1 and common:
        labels = [items[0].get("label") or str(items[0].get("hardware", "this configuration"))]
    parts = (("weights_bytes", "Weights", "#3b6fb6"), ("activation_bytes", "Activations", "#59a14f"),
             ("kv_cache_bytes", "KV cache of this batch", "#f28e2b"), ("reserve_bytes", "Runtime + unused by the engine",
                                                                      "#bab0ac"))
    with _style():
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        fig = _figure((max(6.8, 1.9 * len(items) + 2.5), 5.4))
        ax = fig.add_subplot()
        x = np.arange(len(items), dtype=float)
        width = 0.42
        bottom = np.zeros(len(items))
        top_all = 0.0
        seg_values = []
        for key, label, color in parts:
            vals = np.array([float(it.get(key, 0.0)) for it in items]) / gib
            ax.bar(x, vals, width=width, bottom=bottom, color=color, edgecolor="white", linewidth=0.6, zorder=3)
            seg_values.append(vals)
            bottom += vals
        top_all = max(top_all, bottom.max())
        pool_x = x + width / 2 + 0.09
        has_pool = any("kv_pool_bytes" in it for it in items)
        ticks = []
        for i, it in enumerate(items):
            cap = float(it["capacity_bytes"]) / gib
            ax.plot([x[i] - width / 2 - 0.08, pool_x[i] + 0.12], [cap, cap], color="#c0392b", lw=2, zorder=5)
            total = float(it["total_bytes"]) / gib
            fits = bool(it.get("fits", total <= cap))
            top_all = max(top_all, cap)
            # the numbers go under the bar, where nothing else is drawn
            weights = float(it["weights_bytes"]) / gib
            lines = [textwrap.fill(labels[i], 30), f"{_gib(total)} of {_gib(cap)} GiB in use, weights {_gib(weights)}"
                     + ("" if fits else ": does not fit")]
            if "kv_pool_bytes" in it:
                base = (float(it["weights_bytes"]) + float(it["activation_bytes"])) / gib
                pool = float(it["kv_pool_bytes"]) / gib
                ax.bar(pool_x[i], pool, width=0.18, bottom=base, color="#fde3c8", edgecolor="#f28e2b", hatch="///",
                       linewidth=0.8, zorder=3)
                tokens = it.get("kv_cache_tokens")
                lines.append(f"KV pool {_gib(pool)} GiB" + (f" = {float(tokens):,.0f} tokens" if tokens else ""))
                top_all = max(top_all, base + pool)
            ticks.append("\n".join(lines))
        ax.set_ylim(0, top_all * 1.06)
        # a segment's size written inside it when it is tall enough to hold the text
        base = np.zeros(len(items))
        for (key, _, color), vals in zip(parts, seg_values):
            for xi, b, v in zip(x, base, vals):
                if v >= 0.06 * top_all * 1.06:
                    ax.text(xi, b + v / 2, f"{v:,.1f}", ha="center", va="center", fontsize=7.5,
                            color="white" if key != "reserve_bytes" else "0.15", zorder=4)
            base += vals
        ax.set_xlim(-0.6, len(items) - 0.4 + 0.2)
        ax.set_xticks(x + 0.09, ticks, fontsize=8)
        for tick, it in zip(ax.get_xticklabels(), items):
            if not it.get("fits", True):
                tick.set_color("#c0392b")
        ax.set_ylabel("Memory per device (GiB)")
        _format_axes(ax, categorical_x=True)
        ax.grid(False, axis="x", which="both")
        if len(items) == 1:  # one configuration: every segment's size in the legend, small ones included
            handles = [Patch(facecolor=c, label=f"{lb}: {_gib(float(items[0].get(k, 0.0)) / gib)} GiB") for k, lb, c in parts]
        else:
            handles = [Patch(facecolor=c, label=lb) for _, lb, c in parts]
        if has_pool:
            handles.append(Patch(facecolor="#fde3c8", edgecolor="#f28e2b", hatch="///",
                                 label="KV pool the engine allocates (from the bottom of this batch's KV cache)"))
        handles.append(Line2D([], [], color="#c0392b", lw=2, label="Capacity the runtime sees"))
        fig.legend(handles=handles, loc="outside lower center", ncols=2 if len(items) == 1 else 3)
        _title(ax, "Memory per device against the capacity the runtime sees", detail)
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# Pareto


def pareto_plot(table, objectives, mask=None, path: str | None = None,
                label_cols=("model", "hardware", "format", "batch", "tp"), max_labels: int = 12) -> str:
    """Scatter of the first two objectives over the configurations that fit: the frontier highlighted
    and labelled (at most `max_labels`, placed so they do not overlap), dominated points faint, log
    axes where the range is wide, and a third objective as colour with a labelled colour bar.

        >>> r = costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8"], batch=[1, 16, "max"])
        >>> objs = "min:usd_per_million_tokens,min:tpot_s"
        >>> costmodel.pareto_plot(r, objs, costmodel.pareto_front(r, objs), "pareto.png")
    """
    if path is None:
        raise PlotError("pareto_plot: give the file to write (path=...png/.svg/.pdf)")
    path = check_path(path)
    cols = table.columns if hasattr(table, "columns") and not isinstance(table, dict) else list(table)
    if isinstance(objectives, str):
        from costmodel.sweeps.pareto import parse_objectives

        objectives = parse_objectives(objectives, cols)
    objectives = list(objectives)
    if mask is None:
        from costmodel.sweeps.pareto import pareto_front

        mask = pareto_front(table, objectives)
    mask = np.asarray(mask, dtype=bool)
    (s1, c1) = objectives[0]
    (s2, c2) = objectives[1] if len(objectives) > 1 else objectives[0]
    x = np.asarray(table[c1], dtype=float) * _scale(c1)
    y = np.asarray(table[c2], dtype=float) * _scale(c2)
    fits = _fits(table, len(x))
    ok = np.isfinite(x) & np.isfinite(y) & fits
    front = mask & ok
    if not ok.any():
        raise PlotError("pareto_plot: no configuration that fits has finite values of the objectives")
    better = {"min": "lower is better", "max": "higher is better"}
    order = np.where(front)[0][np.lexsort((y[front], x[front]))]
    shown = [c for c in label_cols if c in cols and len(_distinct_strings(np.asarray(table[c])[order])) > 1]
    if not shown:
        shown = [c for c in ("hardware", "format") if c in cols]
    # what every frontier point shares, where the sweep itself varies (e.g. all on one model)
    shared = [str(np.asarray(table[c])[order[0]]) for c in ("model", "hardware", "format") if c in cols and c not in shown
              and len(order) and len(_distinct_strings(np.asarray(table[c])[ok])) > 1]
    all_on = f", all {' '.join(shared)}" if shared else ""
    with _style():
        from matplotlib.lines import Line2D

        fig = _figure((8.6, 5.6))
        ax = fig.add_subplot()
        dom = ok & ~front
        ax.scatter(x[dom], y[dom], s=9, color="0.72", alpha=0.45, linewidths=0, zorder=2, rasterized=True)
        third = objectives[2] if len(objectives) > 2 else None
        if third is not None:
            cvals = np.asarray(table[third[1]], dtype=float)[order] * _scale(third[1])
            sc = ax.scatter(x[order], y[order], c=cvals, cmap="viridis" if third[0] == "max" else "viridis_r", s=42,
                            edgecolor="black", linewidths=0.7, zorder=4)
            cb = fig.colorbar(sc, ax=ax, pad=0.02, fraction=0.05)
            cb.set_label(_axis_label(third[1], better[third[0]]))
            cb.ax.yaxis.set_major_formatter(_number_formatter())
            colour_of = COLUMNS.get(third[1], (third[1].replace("_", " "),))[0].lower()
            front_handle = Line2D([], [], marker="o", ls="", markerfacecolor="#5ec962", markeredgecolor="black",
                                  label=f"Pareto frontier ({len(order):,}{all_on}; colour: {colour_of})")
        else:
            ax.scatter(x[order], y[order], s=42, color="#d62728", edgecolor="black", linewidths=0.7, zorder=4)
            front_handle = Line2D([], [], marker="o", ls="", markerfacecolor="#d62728", markeredgecolor="black",
                                  label=f"Pareto frontier ({len(order):,}{all_on})")
        if len(order) > 1 and third is None:
            where = "post" if (s1, s2) in (("min", "min"), ("max", "max")) else "pre"
            ax.step(x[order], y[order], where=where, color="#d62728", lw=0.9, alpha=0.6, zorder=3)
        _log_if_wide(ax, x[ok], y[ok])
        ax.set_xlabel(_axis_label(c1, better[s1]))
        ax.set_ylabel(_axis_label(c2, better[s2]))
        idx = np.where(ok)[0]
        _format_axes(ax)
        handles = [front_handle, Line2D([], [], marker="o", ls="", color="0.72", label=f"Dominated ({int(dom.sum()):,})")]
        if (~fits).any():
            handles.append(Line2D([], [], ls="", label=f"Not shown: {int((~fits).sum()):,} that do not fit"))
        fig.legend(handles=handles, loc="outside lower center", ncols=3)
        _title(ax, f"Pareto frontier: {len(order):,} of {len(idx):,} configurations that fit",
               _config_text(table, idx))
        pick = order
        if len(order) > max_labels:
            pick = order[np.unique(np.linspace(0, len(order) - 1, max_labels).round().astype(int))]
        texts = [_varying_label(table, i, shown) for i in pick]
        _place_labels(fig, ax, list(zip(x[pick], y[pick])), texts, avoid=list(zip(x[order], y[order])))
        return _save(fig, path)


def _number_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, pos: _number(v))


# ---------------------------------------------------------------------------------------------
# latency-throughput curves


def _palette(mpl, names):
    cmap = mpl.colormaps["tab10"]
    return {n: cmap(i % 10) for i, n in enumerate(names)}


def latency_throughput_plot(curves: list[dict], path: str, model: str | None = None, prompt: int | None = None,
                            gen: int | None = None, tp: int | None = None, varied: str = "batch") -> str:
    """Time per output token against aggregate throughput as the batch grows, one line per device
    (colour) and format (marker), with the batch written at a few points.

        >>> curves = costmodel.latency_throughput("llama-3.1-8b", ["h100", "b200"], ["fp8"], prompt=1000, gen=200)
        >>> costmodel.latency_throughput_plot(curves, "curve.png", prompt=1000, gen=200)
    """
    path = check_path(path)
    curves = [c for c in curves if len(c.get("batch", []))]
    if not curves:
        raise PlotError("latency_throughput_plot: no curve has a batch that fits")
    if model is None:
        names = {c.get("model") or c["label"].removesuffix(f" {c['hardware']} {c['format']}") for c in curves}
        model = ", ".join(sorted(names))
    prompt = prompt or curves[0].get("prompt")
    gen = gen or curves[0].get("gen")
    tp = tp or curves[0].get("tp")
    devices = list(dict.fromkeys(c["hardware"] for c in curves))
    formats = list(dict.fromkeys(c["format"] for c in curves))
    with _style() as mpl:
        from matplotlib.lines import Line2D

        fig = _figure((8.8, 5.4))
        ax = fig.add_subplot()
        colors = _palette(mpl, devices)
        marks = {f: _MARKERS[i % len(_MARKERS)] for i, f in enumerate(formats)}
        styles = {f: ["-", "--", ":", "-."][i % 4] for i, f in enumerate(formats)}
        xs_all, ys_all, label_xy, label_text, label_color = [], [], [], [], []
        for c in curves:
            xs = np.asarray(c["throughput_tokens_per_s"], dtype=float)
            ys = np.asarray(c["tpot_s"], dtype=float) * 1e3
            ax.plot(xs, ys, color=colors[c["hardware"]], marker=marks[c["format"]], ms=4, ls=styles[c["format"]], zorder=3)
            xs_all += xs.tolist()
            ys_all += ys.tolist()
            batches = [float(b) for b in c["batch"]]  # a request rate may be fractional (int() printed 0.5 as 0)
            for k, (b, xv, yv) in enumerate(zip(batches, xs, ys)):
                if b in (1, 16) or k in (0, len(batches) - 1):  # the first and last of each curve, and 1 and 16
                    label_xy.append((xv, yv))
                    label_text.append({"batch": f"B={b:,.0f}", "concurrency": f"C={b:,.0f}"}.get(varied, f"λ={_number(b)}/s"))
                    label_color.append(colors[c["hardware"]])
        ax.set_xscale("log")
        _log_if_wide(ax, [1.0], ys_all)
        ax.set_xlabel("Aggregate throughput (generated tokens/s, all sequences)")
        ax.set_ylabel("Time per output token (ms)")
        work = [f"prompt {int(prompt):,}" if prompt else "", f"gen {int(gen):,} tokens" if gen else "",
                f"TP {int(tp)}" if tp else ""]
        _format_axes(ax)
        handles = [Line2D([], [], color=colors[d], lw=2, label=d) for d in devices]
        handles += [Line2D([], [], color="0.3", marker=marks[f], ls=styles[f], label=f) for f in formats]
        fig.legend(handles=handles, loc="outside right upper", title="Device (colour)\nformat (marker, line)")
        _title(ax, f"Latency against throughput as the {varied} grows: {model}",
               f"on {_listing(devices, 6)} in {_listing(formats, 6)}"
               + ("; " + ", ".join(w for w in work if w) if any(work) else "")
               + f"; {varied} {_number(min(min(c['batch']) for c in curves))} to {_number(max(max(c['batch']) for c in curves))}"
               + (" req/s" if varied == "request rate" else ""))
        lines = [(c["throughput_tokens_per_s"], np.asarray(c["tpot_s"], dtype=float) * 1e3) for c in curves]
        _place_labels(fig, ax, label_xy, label_text, avoid=list(zip(xs_all, ys_all)), colors=label_color, lines=lines)
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# what-if


def whatif_plot(rows: list[dict], variable: str, path: str, base: dict | None = None) -> str:
    """Monthly cost of the cheapest deployment per device against the varied input, each point
    labelled with its deployment (devices x format, TP) and the cheapest overall ringed. `base`
    (the plan's inputs, as given to `whatif`) names the model, traffic and targets in the title.

        >>> base = dict(model="llama-3.1-8b", qps=10, prompt=1000, gen=200, slo_ttft=0.5, candidates="h100,l40s")
        >>> costmodel.whatif_plot(costmodel.whatif(base, "qps=5,10,20"), "qps", "whatif.png", base=base)
    """
    path = check_path(path)
    if not rows:
        raise PlotError("whatif_plot: no rows to draw")
    words, unit, factor = VARIABLES.get(variable, (variable.replace("-", " ").capitalize(), "", 1.0))
    devices = list(dict.fromkeys(d for r in rows for d in r["per_device"]))
    numeric = all(_is_number(r["value"]) for r in rows)
    xs = [float(r["value"]) * factor if numeric else float(i) for i, r in enumerate(rows)]
    with _style() as mpl:
        from matplotlib.lines import Line2D

        fig = _figure((8.8, 5.2))
        ax = fig.add_subplot()
        colors = _palette(mpl, devices)
        label_xy, label_text, label_color, all_xy, lines = [], [], [], [], []
        for k, dev in enumerate(devices):
            pts = [(x, r["per_device"][dev]) for x, r in zip(xs, rows) if dev in r["per_device"]]
            if not pts:
                continue
            px = [p[0] for p in pts]
            py = [p[1]["usd_per_month"] for p in pts]
            # categories (formats, device lists) are not a scale: markers alone, no line implying values between them
            ax.plot(px, py, marker=_MARKERS[k % len(_MARKERS)], color=colors[dev], ms=5 if numeric else 7, zorder=3,
                    ls="-" if numeric else "none")
            lines.append((px, py) if numeric else ([], []))
            for xv, d in pts:
                all_xy.append((xv, d["usd_per_month"]))
                label_xy.append((xv, d["usd_per_month"]))
                label_text.append(f"{d['devices']}x {d['format']} TP{d['tp']}")
                label_color.append(colors[dev])
        best = [(x, r["best"]) for x, r in zip(xs, rows) if r.get("best")]
        if best:
            ax.scatter([b[0] for b in best], [b[1]["usd_per_month"] for b in best], s=160, facecolors="none",
                       edgecolors="black", linewidths=1.2, zorder=4)
        missing = [(x, r) for x, r in zip(xs, rows) if not r.get("best")]
        for x, r in missing:
            ax.axvline(x, color="#c0392b", lw=0.8, ls=":", zorder=1)
        if numeric:
            _log_if_wide(ax, xs, [1.0])
            ax.margins(x=0.08)
        else:
            ax.set_xticks(xs, [str(r["value"]).replace("+", ", ") for r in rows])
            ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
        ax.set_xlabel(_tex(f"{words} ({unit})" if unit else words))
        ax.set_ylabel(_tex("Cheapest deployment ($ per month)"))
        costs = [p[1] for p in all_xy if p[1] > 0]
        if costs and max(costs) / min(costs) > 15:  # costs that grow with traffic: log, so each step reads as a ratio
            ax.set_yscale("log")
            ax.set_ylim(min(costs) / 1.6, max(costs) * 1.6)
        else:
            ax.set_ylim(0, max(costs + [1.0]) * 1.15)
        _format_axes(ax, categorical_x=not numeric)
        handles = [Line2D([], [], color=colors[d], marker=_MARKERS[k % len(_MARKERS)], ls="-" if numeric else "none",
                          label=d) for k, d in enumerate(devices)]
        handles.append(Line2D([], [], marker="o", ls="", markersize=11, markerfacecolor="none", markeredgecolor="black",
                              label="cheapest overall"))
        if missing:
            handles.append(Line2D([], [], color="#c0392b", lw=0.8, ls=":", label="no deployment meets the targets"))
        fig.legend(handles=handles, loc="outside right upper", title="Device\n(label: devices x format, TP)")
        if numeric:  # ticks at the values tried, nowhere else
            from matplotlib.ticker import FixedLocator, NullLocator

            ax.xaxis.set_major_locator(FixedLocator(sorted(set(xs))))
            ax.xaxis.set_minor_locator(NullLocator())
        _title(ax, f"Monthly cost of the cheapest deployment per device, by {words.lower()}", _plan_text(base, variable))
        rings = [(b[0], b[1]["usd_per_month"]) for b in best]
        first = sorted(range(len(label_xy)), key=lambda i: label_xy[i] not in rings)  # the cheapest get their labels first
        label_xy, label_text, label_color = ([v[i] for i in first] for v in (label_xy, label_text, label_color))
        _place_labels(fig, ax, label_xy, label_text, avoid=all_xy, fontsize=6.5, colors=label_color, lines=lines,
                      rings=rings)
        return _save(fig, path)


def _plan_text(base: dict | None, variable: str) -> str:
    if not base:
        return ""
    b = dict(base)
    parts = [str(b.get("model", ""))]
    if variable != "qps" and b.get("qps"):
        parts.append(f"{_number(float(b['qps']))} requests/s")
    if variable not in ("prompt", "gen") and b.get("prompt") and b.get("gen"):
        parts.append(f"prompt {_number(float(b['prompt']))}, gen {_number(float(b['gen']))} tokens")
    slo = []
    if variable != "slo-ttft" and b.get("slo_ttft"):
        slo.append(f"TTFT P{int(b.get('percentile') or 90)} ≤ {_number(float(b['slo_ttft']))} s")
    if variable != "slo-tpot" and b.get("slo_tpot"):
        slo.append(f"TPOT ≤ {_number(float(b['slo_tpot']) * 1e3)} ms")
    if slo:
        parts.append(", ".join(slo))
    if variable != "fmt" and b.get("fmt"):
        f = b["fmt"]
        parts.append("formats " + ", ".join(t.strip() for t in (f.split(",") if isinstance(f, str) else f)))
    parts.append(f"{b.get('price') or 'cloud'} prices")
    return "; ".join(p for p in parts if p)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# sweeps

# metric columns a sweep plot may use, in order of preference for (x, y)
_SWEEP_AXES = ("throughput_tokens_per_s", "tpot_s", "usd_per_million_tokens", "ttft_s", "e2e_latency_s",
               "energy_j_per_token", "decode_tokens_per_s", "prefill_tokens_per_s", "total_bytes")


def sweep_plot(table, path: str, x: str | None = None, y: str | None = None, max_points: int = 20000) -> str:
    """The configurations of a sweep that fit: by default time per output token against aggregate
    throughput (or the first two metric columns with values), colour by device, marker by format,
    and a faint line joining the batches of each configuration.

        >>> r = costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8"], batch=[1, 8, 64, "max"])
        >>> costmodel.plots.sweep_plot(r, "sweep.png")
    """
    path = check_path(path)
    cols = table.columns if hasattr(table, "columns") and not isinstance(table, dict) else list(table)
    n = len(np.asarray(table[cols[0]])) if cols else 0
    fits = _fits(table, n)

    def usable(c):
        if c not in cols:
            return False
        v = np.asarray(table[c])
        if v.dtype.kind not in "fiu":
            return False
        v = v.astype(float)[fits]
        return bool(np.isfinite(v).any())

    for given in (x, y):
        if given is not None and given not in cols:
            raise PlotError(f"sweep_plot: no column '{given}' in the sweep")
    choice = [c for c in _SWEEP_AXES if usable(c)]
    x = x or next((c for c in choice if c != y), None)
    y = y or next((c for c in choice if c != x), None)
    if x is None or y is None:
        raise PlotError("sweep_plot: no configuration fits, so there is nothing to draw")
    xs = np.asarray(table[x], dtype=float) * _scale(x)
    ys = np.asarray(table[y], dtype=float) * _scale(y)
    ok = fits & np.isfinite(xs) & np.isfinite(ys)
    idx = np.where(ok)[0]
    if not len(idx):
        raise PlotError("sweep_plot: no configuration fits, so there is nothing to draw")
    thinned = len(idx) > max_points
    if thinned:
        idx = idx[np.linspace(0, len(idx) - 1, max_points).round().astype(int)]
    hw = _get(table, "hardware")
    fm = _get(table, "format")
    hw = hw if hw is not None else np.array(["device"] * n)
    fm = fm if fm is not None else np.array(["format"] * n)
    devices = list(dict.fromkeys(hw[idx].tolist()))
    formats = list(dict.fromkeys(fm[idx].tolist()))
    with _style() as mpl:
        from matplotlib.lines import Line2D

        fig = _figure((8.8, 5.4))
        ax = fig.add_subplot()
        colors = _palette(mpl, devices)
        if len(devices) > 10:
            cmap = mpl.colormaps["tab20"]
            colors = {d: cmap(i % 20) for i, d in enumerate(devices)}
        marks = {f: _MARKERS[i % len(_MARKERS)] for i, f in enumerate(formats)}
        # a second model (and a fourth...) gets hollow markers, and each model its own line style
        mdl = _get(table, "model")
        mdl = mdl if mdl is not None else np.array([""] * n)
        models = list(dict.fromkeys(mdl[idx].tolist()))
        hollow = {m: len(models) > 1 and k % 2 == 1 for k, m in enumerate(models)}
        dashes = {m: ["-", "--", ":", "-."][(k // 2) % 4] if len(models) > 2 else "-" for k, m in enumerate(models)}
        # join the batches of one configuration (same everything but the batch) when there are few such lines
        keys = [c for c in ("model", "hardware", "format", "kv_format", "engine", "tp", "prompt", "gen", "context") if c in cols]
        batch = _get(table, "batch")
        joined = False
        if batch is not None and not thinned:
            groups: dict = {}
            key_cols = [np.asarray(table[c])[idx].astype(str) for c in keys]  # each read once: a sweep's result
            for i, key in zip(idx.tolist(), zip(*key_cols)):  # spells a text column whole at every read
                groups.setdefault(key, []).append(i)
            lines = [g for g in groups.values() if len(g) > 1]
            if 0 < len(lines) <= 60:
                joined = True
                for g in lines:
                    g = sorted(g, key=lambda i: float(batch[i]))
                    ax.plot(xs[g], ys[g], color=colors[hw[g[0]]], lw=0.8, alpha=0.45, ls=dashes[mdl[g[0]]], zorder=2)
        for m in models:
            for d in devices:
                for f in formats:
                    sel = idx[(hw[idx] == d) & (fm[idx] == f) & (mdl[idx] == m)]
                    if not len(sel):
                        continue
                    face = "white" if hollow[m] else colors[d]
                    ax.scatter(xs[sel], ys[sel], facecolor=face, marker=marks[f], s=26,
                               edgecolor=colors[d] if hollow[m] else "black", linewidths=1.0 if hollow[m] else 0.4,
                               alpha=0.9, zorder=3, rasterized=len(idx) > 5000)
        _log_if_wide(ax, xs[idx], ys[idx])
        ax.set_xlabel(_axis_label(x))
        ax.set_ylabel(_axis_label(y))
        total = int(ok.sum())
        shown = f" ({len(idx):,} shown, evenly thinned)" if thinned else ""
        _format_axes(ax)
        handles = [Line2D([], [], marker="o", ls="", color=colors[d], markeredgecolor="black", label=d) for d in devices]
        handles += [Line2D([], [], marker=marks[f], ls="", color="0.6", markeredgecolor="black", label=f) for f in formats]
        if len(models) > 1:
            handles += [Line2D([], [], marker="o", color="0.4", ls=dashes[m] if joined else "", lw=0.8,
                               markerfacecolor="white" if hollow[m] else "0.6",
                               markeredgecolor="0.4" if hollow[m] else "black", label=m) for m in models]
        if joined:
            handles.append(Line2D([], [], color="0.5", lw=0.8, label="same configuration,\nbatch growing"))
        title = "Device (colour)\nformat (marker)" + ("\nmodel (fill, line)" if len(models) > 1 else "")
        fig.legend(handles=handles, loc="outside right upper", title=title)
        _title(ax, f"{COLUMNS.get(y, (y,))[0]} against {COLUMNS.get(x, (x,))[0].lower()}: "
                   f"{total:,} of {n:,} configurations fit{shown}", _config_text(table, np.where(ok)[0]))
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# many estimates of one metric, with their intervals


def estimates_plot(estimates, path: str, metric: str = "decode_tokens_per_s", target: float | None = None,
                   target_label: str | None = None) -> str:
    """One metric of many estimates with their 80% intervals: a row per device, colour by model,
    marker by format, and an optional target line (in the metric's SI units), e.g. which edge
    device reaches 20 tokens/s.

        >>> es = [costmodel.estimate(m, h, "q4_0") for m in ("llama-3.2-3b", "llama-3.1-8b") for h in ("m4-pro-20c", "dgx-spark")]
        >>> costmodel.plots.estimates_plot(es, "decode.png", target=20)
    """
    path = check_path(path)
    estimates = list(estimates)
    if not estimates:
        raise PlotError("estimates_plot: no estimates to draw")
    if metric not in COLUMNS:
        raise PlotError(f"estimates_plot: unknown metric '{metric}'; use one of {', '.join(sorted(COLUMNS))}")
    factor = _scale(metric)
    rows = [e.to_dict() for e in estimates]
    unfit = [r for r in rows if not r["memory"]["fits"]]
    rows = [r for r in rows if r["memory"]["fits"]]
    if not rows:
        raise PlotError("estimates_plot: no estimate fits in its device's memory")
    devices = list(dict.fromkeys(r["hardware"] for r in rows))
    models = list(dict.fromkeys(r["model"] for r in rows))
    formats = list(dict.fromkeys(r["format"] for r in rows))
    slots = [(m, f) for m in models for f in formats if any(r["model"] == m and r["format"] == f for r in rows)]
    with _style() as mpl:
        from matplotlib.lines import Line2D

        fig = _figure((8.8, max(3.2, 0.42 * len(devices) * max(1.0, len(slots) / 4) + 1.8)))
        ax = fig.add_subplot()
        colors = _palette(mpl, models)
        marks = {f: _MARKERS[i % len(_MARKERS)] for i, f in enumerate(formats)}
        height = 0.7
        values = []
        for r in rows:
            v = r.get(metric)
            if v is None or not np.isfinite(float(v)):
                continue
            k = slots.index((r["model"], r["format"]))
            y = devices.index(r["hardware"]) + (k - (len(slots) - 1) / 2) * height / max(len(slots), 1)
            iv = (r.get("interval") or {}).get(metric) or {}
            lo, hi = iv.get("low"), iv.get("high")
            x = float(v) * factor
            values.append(x)
            if lo is not None and hi is not None:
                ax.plot([lo * factor, hi * factor], [y, y], color=colors[r["model"]], lw=1.2, alpha=0.7, zorder=2)
                values += [lo * factor, hi * factor]
            ax.scatter([x], [y], color=colors[r["model"]], marker=marks[r["format"]], s=34, edgecolor="black",
                       linewidths=0.5, zorder=3)
        ax.set_yticks(range(len(devices)), devices)
        ax.set_ylim(len(devices) - 0.5, -0.5)
        for k in range(1, len(devices)):
            ax.axhline(k - 0.5, color="0.85", lw=0.6, zorder=1)
        ax.grid(False, axis="y")
        _log_if_wide(ax, values, [1.0], ratio=8.0)
        handles = [Line2D([], [], marker="o", ls="-", lw=1.2, color=colors[m], markeredgecolor="black", label=m)
                   for m in models]
        handles += [Line2D([], [], marker=marks[f], ls="", color="0.6", markeredgecolor="black", label=f) for f in formats]
        handles.append(Line2D([], [], color="0.4", lw=1.2, label="bar: 80% interval\n(leave-one-device-out)"))
        if target is not None:
            ax.axvline(target * factor, color="#c0392b", ls="--", lw=1.1, zorder=1)
            unit = COLUMNS[metric][1]
            handles.append(Line2D([], [], color="#c0392b", ls="--", lw=1.1,
                                  label=target_label or f"target: {_number(target * factor)} {unit}"))
        ax.set_xlabel(_axis_label(metric))
        ax.set_ylabel("Device")
        _format_axes(ax, categorical_y=True)
        ax.grid(False, axis="y", which="both")
        fig.legend(handles=handles, loc="outside right upper", title="Model (colour)\nformat (marker)")
        first = rows[0]
        same = all(r["batch"] == first["batch"] and r["prompt"] == first["prompt"] and r["gen"] == first["gen"]
                   and r["tp"] == first["tp"] for r in rows)
        work = (f"batch {first['batch']:,}, prompt {first['prompt']:,}, gen {first['gen']:,} tokens, TP {first['tp']}"
                if same else "workloads vary")
        engines = _listing({r["engine"] for r in rows}, 4)
        _title(ax, f"{COLUMNS[metric][0]} of {_listing(models, 5)} in {_listing(formats, 5)}",
               f"{work}; {engines} calibration; {len(devices)} devices"
               + (f"; not shown: {len(unfit)} that do not fit in memory" if unfit else ""))
        return _save(fig, path)


# ---------------------------------------------------------------------------------------------
# test-time scaling


def test_time_scaling_plot(reports, path: str, model: str | None = None, fmt: str | None = None,
                           prompt: int | None = None, gen: int | None = None) -> str:
    """Accuracy and cost-of-pass against the number of samples N for one or more
    `costmodel.test_time_scaling` reports (a dict label -> report, or one report), with each
    saturation point N* and verifier ceiling marked.

        >>> kw = dict(p=0.3, eps=0.01, n_max=24, model="deepseek-r1-distill-qwen-7b", hw="h100", prompt=200, gen=4000)
        >>> reports = {"perfect verifier": costmodel.test_time_scaling(**kw),
        ...            "5% false positives": costmodel.test_time_scaling(false_positive=0.05, **kw)}
        >>> costmodel.plots.test_time_scaling_plot(reports, "tts.png", model="deepseek-r1-distill-qwen-7b", prompt=200, gen=4000)
    """
    path = check_path(path)
    if isinstance(reports, dict) and "curve" in reports:
        reports = {"resample until the verifier accepts" if reports.get("ceiling") else "perfect verifier": reports}
    reports = dict(reports)
    if not reports:
        raise PlotError("test_time_scaling_plot: no reports to draw")
    priced = all("cost_of_pass_usd" in (rep["curve"][0] if rep["curve"] else {}) for rep in reports.values())
    with _style() as mpl:
        from matplotlib.lines import Line2D

        fig = _figure((9.4, 4.6))
        axes = [fig.add_subplot(1, 2 if priced else 1, 1)]
        if priced:
            axes.append(fig.add_subplot(1, 2, 2, sharex=axes[0]))
        colors = _palette(mpl, list(reports))
        handles = []
        per_query: list = []
        for label, rep in reports.items():
            c = colors[label]
            n = np.array([row["n"] for row in rep["curve"]])
            acc = np.array([row["accuracy"] for row in rep["curve"]]) * 100
            axes[0].plot(n, acc, color=c, marker="o", ms=3, zorder=3)
            star = rep["saturation_n"]
            axes[0].axvline(star, color=c, ls=":", lw=1.0, zorder=2)
            if rep.get("ceiling"):
                axes[0].axhline(rep["ceiling"] * 100, color=c, ls="--", lw=0.9, zorder=2)
            text = f"{label}: N* = {star}, accuracy {rep['accuracy_at_saturation'] * 100:.1f}%"
            if rep.get("ceiling"):
                text += f", ceiling {rep['ceiling'] * 100:.1f}%"
            handles.append(Line2D([], [], color=c, marker="o", ms=3, label=text))
            if priced:
                cop = np.array([row["cost_of_pass_usd"] for row in rep["curve"]])
                usd = np.array([row["usd"] for row in rep["curve"]])
                axes[1].plot(n, cop, color=c, marker="o", ms=3, zorder=3)
                if not any(len(u) == len(usd) and np.allclose(u, usd) for u in per_query):
                    per_query.append(usd)
                    axes[1].plot(n, usd, color="0.45" if len(reports) > 1 else c, ls="--", lw=1.0, zorder=2)
                axes[1].axvline(star, color=c, ls=":", lw=1.0, zorder=2)
        axes[0].set_xlabel("Samples per problem N (count)")
        axes[0].set_ylabel("Accuracy (% of problems solved)")
        axes[0].set_ylim(0, 102)
        handles.append(Line2D([], [], color="0.4", ls=":", lw=1.0, label="dotted: saturation point N* (gain of one more sample < eps)"))
        if any(rep.get("ceiling") for rep in reports.values()):
            handles.append(Line2D([], [], color="0.4", ls="--", lw=0.9, label="dashed (left): verifier ceiling r / (r + (1 - r) f)"))
        if priced:
            axes[1].set_yscale("log")
            axes[1].set_xlabel("Samples per problem N (count)")
            axes[1].set_ylabel(_tex("Cost per problem ($)"))
            handles.append(Line2D([], [], color="0.4", lw=1.4, label="solid (right): cost-of-pass, $ per correct answer"))
            same = " (the same for every curve)" if len(per_query) == 1 and len(reports) > 1 else ""
            handles.append(Line2D([], [], color="0.45", ls="--", lw=1.0, label=f"dashed (right): $ per query, all N samples{same}"))
        for a in axes:
            _format_axes(a)
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        first = next(iter(reports.values()))
        on = first.get("priced_on") or {}
        parts = [f"one sample solves {first['p'] * 100:g}% of problems (p = {first['p']:g}), eps = {first['eps']:g}"]
        if model:
            parts.append(f"{model}" + (f" in {fmt}" if fmt else "") + (f" on {on['hardware']}" if on.get("hardware") else "")
                         + (f" (TP {on['tp']})" if on.get("tp") else ""))
        if prompt and gen:
            parts.append(f"prompt {int(prompt):,}, gen {int(gen):,} tokens per sample")
        if on.get("batch"):
            parts.append(f"priced at a serving batch of {int(on['batch']):,}")
        _title(axes[0], "Best-of-N test-time scaling: accuracy and cost against samples", "; ".join(parts), across=axes)
        return _save(fig, path)


def vlm_tokens_plot(report: dict, path: str, data: str | None = None) -> str:
    """Downstream error against inference FLOPs per query for a `costmodel.vlm_tokens` report: the
    fitted law's curve of each measured LLM size as the visual tokens grow from 1 to 576 (solid),
    the authors' measured points on it, and the compute-optimal frontier at V* visual tokens (dotted).

        >>> costmodel.plots.vlm_tokens_plot(costmodel.vlm_tokens(text_tokens=50), "vlm_tokens.png")
    """
    from costmodel.analyses.vlm_tokens import V_RANGE, law_error, read_points

    path = check_path(path)
    law, q = report["law"], float(report["text_tokens"])
    n_pts, v_pts, s_pts = read_points(report["task"], data)
    sizes = list(law["llm_sizes_b"])

    with _style() as mpl:
        from matplotlib.lines import Line2D

        fig = _figure((7.6, 4.8))
        ax = fig.add_subplot(1, 1, 1)
        colors = _palette(mpl, sizes)
        v = np.geomspace(V_RANGE[0], V_RANGE[1], 120)
        handles = []
        for n_b in sizes:
            c = colors[n_b]
            ax.plot(2 * n_b * (q + v), 100 * law_error(law, n_b, v), color=c, lw=1.4, zorder=2)
            sel = n_pts == n_b
            ax.scatter(2 * n_b * (q + v_pts[sel]), 100 * (1 - s_pts[sel]), color=c, s=16, zorder=3,
                       edgecolors="white", linewidths=0.5)
            handles.append(Line2D([], [], color=c, marker="o", ms=4, lw=1.4, label=f"{n_b:g}B LLM: law and measured points"))
        v_star = float(report["optimal_visual_tokens"])
        n_line = np.geomspace(min(sizes) / 2, max(sizes) * 4, 60)
        ax.plot(2 * n_line * (q + v_star), 100 * law_error(law, n_line, v_star), color="0.15", ls=":", lw=1.3, zorder=4)
        handles.append(Line2D([], [], color="0.15", ls=":", lw=1.3,
                              label=f"compute-optimal: V* = {v_star:.3g} visual tokens, the largest LLM the budget buys "
                                    f"(beyond {max(sizes):g}B the law is extrapolated)"))
        ax.set_xscale("log")
        ax.set_xlabel("Inference compute (GFLOP per query, 2·N·(Q + V))")
        ax.set_ylabel("Downstream error (% of answers wrong)")
        _format_axes(ax)
        fig.legend(handles=handles, loc="outside lower center", ncols=2)
        task = report["task"].replace("_", " ")
        _title(ax, f"Visual tokens against LLM size at a fixed budget: {task}",
               f"Q = {q:g} text tokens; law error = {law['A']:.3f} N^-{law['alpha']:.3f} V^-{law['beta']:.4f} "
               f"+ {law['D']:.3f} refitted on Li et al. (arXiv:2411.03312), LLaVA-Next with Qwen-1.5 0.5B-7B")
        return _save(fig, path)
