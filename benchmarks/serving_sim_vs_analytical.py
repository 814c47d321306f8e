"""The analytical load model against the event-driven scheduler simulation (engine/simulate.py), both
scored on the shipped closed-loop and Poisson rows with the same step costs (the shipped calibration):
which one describes each metric's mean and percentiles better, and what the simulation costs.
Prints tables; asserts nothing.

    python benchmarks/serving_sim_vs_analytical.py [--max-configs 400]
"""
from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from costmodel.calibration.measurements import METRICS, read_measurements, shipped_measurements
from costmodel.calibration.predict import loaded_replica, predict, prepare
from costmodel.engine.simulate import simulate
from costmodel.serving import simulated_metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-configs", type=int, default=10**9)
    a = ap.parse_args()
    # TP/PP layouts, as benchmarks/serving_baseline.py (EP and DP-attention rows: README, Parallel layouts)
    rows = [r for r in read_measurements(shipped_measurements())
            if r.load_mode in ("closed", "poisson") and r.dp == 1 and r.ep == 1]
    rs = prepare(rows)
    analytical, _ = predict(rs)
    hw = {**rs.hw}
    for name, given in (rs.flags or {}).items():
        if np.isfinite(given).any():
            hw[name] = np.where(np.isfinite(given), given, hw[name])
    cache: dict = {}
    sim = np.full(len(rs), np.nan)
    t_sim = 0.0
    n_sim = 0
    for i, r in enumerate(rs.rows):
        key = (r.source, r.model, r.hardware, r.format, rs.engines[i], r.devices, r.tp, r.batch, r.prompt_tokens,
               r.output_tokens, r.load_mode, r.request_rate, r.length_dist, r.num_prompts, r.stream_interval)
        if key not in cache:
            if len(cache) >= a.max_configs:
                continue
            got = loaded_replica(rs, hw, rs.f, i)
            if got is None:
                cache[key] = None
                continue
            perf, p, g, replicas = got
            k = float(hw["stream_interval"][i])
            t = time.perf_counter()
            if r.load_mode == "closed":
                c = max(1, round(r.batch / replicas))
                n = int(r.num_prompts / replicas) if r.num_prompts else 10 * c
                s = simulate(perf, p, g, clients=c, requests=max(n, c), budget=float(hw["prefill_chunk_tokens"][i]))
            else:
                cap = perf.max_batch if r.batch < 1 else max(1, min(perf.max_batch, r.batch // replicas))
                lam = r.request_rate / replicas
                s = simulate(perf, p, g, rate=lam, requests=max(200, int(60 * lam)), cap=cap,
                             budget=float(hw["prefill_chunk_tokens"][i]))
            t_sim += time.perf_counter() - t
            n_sim += 1
            m = simulated_metrics(s, replicas, p, g, k)
            devices = r.devices
            m["throughput_tokens_per_s_per_gpu"] = m["throughput_tokens_per_s"] / devices
            m["total_throughput_tokens_per_s_per_gpu"] = m["total_throughput_tokens_per_s"] / devices
            cache[key] = m
        m = cache.get(key)
        engine_name, scale, _ = METRICS[r.metric]
        if m is not None and engine_name in m:
            sim[i] = m[engine_name] * scale
    meas = rs.measured
    groups = collections.defaultdict(list)
    for i, r in enumerate(rs.rows):
        if np.isfinite(sim[i]) and np.isfinite(analytical[i]):
            for g in (r.metric, f"load:{r.load_mode}", "all"):
                groups[g].append(i)
    print(f"{n_sim} configurations simulated in {t_sim:.1f} s ({1e3 * t_sim / max(n_sim, 1):.0f} ms each)")
    print(f"{'metric':36s} {'n':>5s} {'analytical':>17s} {'simulation':>17s}   median pred/meas (an. / sim.)")
    for g in sorted(groups, key=lambda x: (x.count(":"), x)):
        ix = np.array(groups[g])
        ea, es = np.abs(analytical[ix] / meas[ix] - 1), np.abs(sim[ix] / meas[ix] - 1)
        f = lambda e: f"{100 * np.median(e):5.1f}% / {100 * np.percentile(e, 90):5.1f}%"  # noqa: E731
        print(f"{g:36s} {len(ix):5d} {f(ea):>17s} {f(es):>17s}   {np.median(analytical[ix] / meas[ix]):.2f} / "
              f"{np.median(sim[ix] / meas[ix]):.2f}")


if __name__ == "__main__":
    main()
