"""Plots (matplotlib is imported here only, never on the start-up path)."""
from __future__ import annotations

import numpy as np


def roofline_plot(e, path: str) -> str:
    """Roofline of the device (matrix peak, 16-bit attention peak, memory roof) with each
    operator of prefill and decode placed at its arithmetic intensity and achieved rate."""
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
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
