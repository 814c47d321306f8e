"""Plots (matplotlib is imported here only, never on the start-up path)."""
from __future__ import annotations

import numpy as np


def roofline_plot(e, path: str) -> str:
    """Roofline of the device (matrix peak, 16-bit attention peak, memory roof) with each
    operator of prefill and decode placed at its arithmetic intensity and achieved rate.

        >>> costmodel.roofline_plot(costmodel.estimate("llama-3.1-8b", "h100", "fp8"), "roofline.png")
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hw = e.hardware
    eff = e.efficiency
    rows = [r for r in e.explain() if r["flops"] > 0 and r["bytes"] > 0]
    bw = hw.memory_bandwidth
    peak = hw.peaks[e.plan.dtype]
    x = np.logspace(-1, 5, 400)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    ax.loglog(x, np.minimum(peak, x * bw), color="black", lw=2, label=f"datasheet roof ({e.plan.dtype} {peak / 1e12:.4g} TFLOP/s, {bw / 1e12:.3g} TB/s)")
    ax.loglog(x, np.minimum(peak * eff.compute_efficiency, x * bw * eff.memory_efficiency), color="gray", lw=1.2,
              ls="--", label=f"with efficiencies ({eff.compute_efficiency:g} compute, {eff.memory_efficiency:g} memory)")
    markers = {"prefill": "o", "decode": "s"}
    colors = plt.cm.tab10.colors
    names = sorted({r["op"] for r in rows})
    labelled = 0
    for r in rows:
        rate = r["flops"] / r["time_s"]
        ax.scatter(r["intensity"], rate, marker=markers[r["phase"]], s=30 + 300 * r["share"],
                   color=colors[names.index(r["op"]) % 10], edgecolor="black", linewidths=0.5, alpha=0.85, zorder=3)
        if r["share"] > 0.12 or (r["phase"] == "decode" and r["share"] > 0.08):
            # stagger labels so operators at the same intensity stay readable
            ax.annotate(f"{r['op']} ({r['phase']})", (r["intensity"], rate), fontsize=7,
                        xytext=(6, 8 - 11 * (labelled % 3)), textcoords="offset points")
            labelled += 1
    ax.scatter([], [], marker="o", color="white", edgecolor="black", label="prefill op (size = time share)")
    ax.scatter([], [], marker="s", color="white", edgecolor="black", label="decode op")
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("achieved rate (FLOP/s)")
    ax.set_title(f"{e.model.id} on {hw.id} in {e.format.id}: batch {e.batch}, prompt {e.workload.prompt}", fontsize=10)
    return _finish(fig, ax, path, {"fontsize": 7, "loc": "lower right"})


def _finish(fig, ax, path: str, legend: dict | None = None, grid: dict | None = None) -> str:
    """Grid, legend, layout, save, close: the common tail of every plot."""
    import matplotlib.pyplot as plt

    ax.grid(True, **(grid or {"which": "both", "alpha": 0.25}))
    ax.legend(**(legend or {"fontsize": 7}))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pareto_plot(table, objectives, mask, path: str, label_cols=("model", "hardware", "format"), max_labels: int = 25) -> str:
    """Scatter of the first two objectives: frontier highlighted and labelled, dominated points faint.

        >>> r = costmodel.sweep(models=["llama-3.1-8b"], hw=["h100", "b200"], fmt=["bf16", "fp8"])
        >>> objs = [("min", "tpot_s"), ("min", "usd_per_million_tokens")]
        >>> costmodel.pareto_plot(r, objs, costmodel.pareto_front(r, objs), "pareto.png")
    """
    plt = _plt()
    (s1, c1), (s2, c2) = objectives[0], objectives[1] if len(objectives) > 1 else objectives[0]
    x = np.asarray(table[c1], dtype=float)
    y = np.asarray(table[c2], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    ax.scatter(x[ok & ~mask], y[ok & ~mask], s=8, color="0.75", alpha=0.4, label="dominated", rasterized=True)
    color = None
    if len(objectives) > 2:
        color = np.asarray(table[objectives[2][1]], dtype=float)[mask]
    style = dict(c=color, cmap="viridis") if color is not None else dict(color="tab:red")
    sc = ax.scatter(x[mask], y[mask], s=36, edgecolor="black", linewidths=0.6, zorder=3, label="Pareto frontier", **style)
    if color is not None:
        fig.colorbar(sc, ax=ax, label=f"{objectives[2][0]}: {objectives[2][1]}")
    order = np.where(mask)[0][np.argsort(x[mask])]
    if len(order) > 1 and len(objectives) == 2:  # a staircase only means something in two objectives
        ax.plot(x[order], y[order], color="tab:red", lw=0.8, alpha=0.6, zorder=2)
    cols = [c for c in label_cols if c in (table.columns if hasattr(table, "columns") else table)]
    for n, i in enumerate(order[:max_labels]):
        text = "/".join(str(table[c][i]) for c in cols)
        ax.annotate(text, (x[i], y[i]), fontsize=6, xytext=(4, 4 - 9 * (n % 3)), textcoords="offset points")
    for axis, values, setter in ((c1, x[ok], ax.set_xscale), (c2, y[ok], ax.set_yscale)):
        if len(values) and values.min() > 0 and values.max() / values.min() > 30:
            setter("log")
    ax.set_xlabel(f"{c1} ({s1})")
    ax.set_ylabel(f"{c2} ({s2})")
    ax.set_title(f"Pareto frontier: {int(mask.sum())} of {int(ok.sum())} configurations", fontsize=10)
    return _finish(fig, ax, path)


def latency_throughput_plot(curves: list[dict], path: str) -> str:
    """TPOT against aggregate throughput as the batch grows, one line per configuration.

        >>> costmodel.latency_throughput_plot(costmodel.latency_throughput("llama-3.1-8b", ["h100"], ["fp8"]), "curve.png")
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    for c in curves:
        ax.plot(c["throughput_tokens_per_s"], np.asarray(c["tpot_s"]) * 1e3, marker="o", ms=3, label=c["label"])
        for b, x, y in zip(c["batch"], c["throughput_tokens_per_s"], np.asarray(c["tpot_s"]) * 1e3):
            if b in (1, 8, 64, 256) or b == c["batch"][-1]:
                ax.annotate(f"B={int(b)}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("throughput (generated tokens/s, all sequences)")
    ax.set_ylabel("time per output token (ms)")
    ax.set_title("latency-throughput trade-off over batch size", fontsize=10)
    return _finish(fig, ax, path)


def memory_plot(rows: list[dict], path: str) -> str:
    """Stacked bars of memory per device (weights, KV cache, activations, reserve) vs capacity.

        >>> e = costmodel.estimate("llama-3.1-70b", "h100", "fp8", batch=8)
        >>> costmodel.memory_plot([{"label": "70B fp8 b8", **e.memory_dict()}], "memory.png")
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(rows) + 3), 5), dpi=120)
    parts = (("weights_bytes", "weights", "tab:blue"), ("kv_cache_bytes", "KV cache", "tab:orange"),
             ("activation_bytes", "activations", "tab:green"), ("reserve_bytes", "runtime reserve", "0.7"))
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for key, label, color in parts:
        vals = np.array([r[key] for r in rows]) / 1e9
        ax.bar(x, vals, bottom=bottom, label=label, color=color, width=0.6)
        bottom += vals
    caps = np.array([r["capacity_bytes"] for r in rows]) / 1e9
    ax.scatter(x, caps, marker="_", s=900, color="red", label="capacity", zorder=3)
    ax.set_xticks(x, [r["label"] for r in rows], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("GB per device")
    ax.set_title("memory per device", fontsize=10)
    return _finish(fig, ax, path, {"fontsize": 7, "loc": "upper left", "bbox_to_anchor": (1.01, 1.0)},
                   {"axis": "y", "alpha": 0.25})


def whatif_plot(rows: list[dict], variable: str, path: str) -> str:
    """Monthly cost of the cheapest deployment per device against the varied input.

        >>> rows = costmodel.whatif(dict(model="llama-3.1-8b", qps=10, prompt=1000, gen=200, slo_ttft=0.5, candidates="h100,l40s"), "qps=5,10,20")
        >>> costmodel.whatif_plot(rows, "qps", "whatif.png")
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    devices = sorted({d for r in rows for d in r["per_device"]})
    numeric = all(_is_number(r["value"]) for r in rows)
    xs = [float(r["value"]) if numeric else i for i, r in enumerate(rows)]
    for dev in devices:
        pts = [(x, r["per_device"][dev]["usd_per_month"]) for x, r in zip(xs, rows) if dev in r["per_device"]]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=dev)
    if not numeric:
        ax.set_xticks(xs, [str(r["value"]) for r in rows])
    ax.set_xlabel(variable)
    ax.set_ylabel("cheapest deployment ($ per month)")
    ax.set_title(f"what if {variable} varies", fontsize=10)
    return _finish(fig, ax, path, grid={"alpha": 0.25})


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False
