"""An event-driven simulation of one replica's continuous-batching scheduler: the check on the
analytical load model (engine/serving.py) that `benchmarks/serving_sim_vs_analytical.py` measures
against the shipped serving rows, and `estimate --simulate` for one deployment.

The engine, as vLLM/SGLang/TensorRT-LLM schedule it (chunked prefill, FCFS):
  - a step decodes one token of every running sequence and prefills up to the token budget
    (`prefill_chunk_tokens`) of waiting prompts in arrival order, admitting while fewer than `cap`
    sequences run; step time = t_d(n running) + prefilled tokens · t_p / P (the same step costs as
    the analytical model: the decode step at batch n and the prefill per token of the mean prompt);
  - a request's first token comes at the end of the step that completes its prefill; it then
    decodes G − 1 more tokens, one per step; TTFT and E2E add the engine's request overhead;
  - closed loop: C clients each send the next request when the last completes, N in all; the first
    C start together (a benchmark's first wave) and later waves keep whatever synchrony the
    lengths leave them; Poisson: N arrivals at rate λ.
Steps without prefill work are advanced in blocks (until the next completion or arrival), so the
loop runs once per event, not per token: 10^4 requests take well under a second.
Outputs are per-request TTFT, TPOT, E2E and the inter-token gaps (each gap weighted by the tokens
that saw it), summarized as benchmarks do (mean and percentiles over requests; ITL over tokens).
"""
from __future__ import annotations

import itertools
import math
from collections import deque

import numpy as np

from costmodel.engine.serving import Dist, ReplicaPerf


def _lengths(d: Dist, n: int, rng: np.random.Generator, minimum: int) -> np.ndarray:
    """n lengths of a distribution (fixed, uniform on [lo, hi], lognormal), rounded, >= minimum."""
    if d.lo is not None:
        x = rng.uniform(d.lo, d.hi, n)
    elif d.sigma:
        x = rng.lognormal(math.log(d.mean) - d.sigma**2 / 2, d.sigma, n)
    else:
        x = np.full(n, d.mean)
    return np.maximum(np.round(x), minimum).astype(np.int64)


def simulate(perf: ReplicaPerf, prompt: Dist, gen: Dist, *, clients: int | None = None, rate: float | None = None,
             requests: int = 1000, cap: int | None = None, budget: float = 8192.0, seed: int = 0) -> dict:
    """Per-request latencies of one replica (seconds) and its completed request rate."""
    if (clients is None) == (rate is None):
        raise ValueError("simulate: give clients (closed loop) or rate (Poisson)")
    rng = np.random.default_rng(seed)
    n_req = int(requests)
    cap = int(cap or perf.max_batch)
    p_len = _lengths(prompt, n_req, rng, 1)
    g_len = _lengths(gen, n_req, rng, 1)
    per_token = perf.t_prefill / max(prompt.mean, 1.0)
    over = perf.request_overhead
    sent = np.full(n_req, np.nan)  # when the client sent it
    first = np.full(n_req, np.nan)
    done = np.full(n_req, np.nan)
    gaps_v: list = []  # inter-token gap value, and the number of tokens that saw it
    gaps_w: list = []
    if rate is not None:
        sent[:] = np.cumsum(rng.exponential(1.0 / rate, n_req))
        next_new = n_req  # all scheduled
    else:
        next_new = min(int(clients), n_req)
        sent[:next_new] = 0.0
    arrivals = deque(range(next_new))  # sent, not yet at the engine
    waiting: deque = deque()  # [request, prompt tokens left], in arrival order
    run_id = np.zeros(0, dtype=np.int64)
    run_rem = np.zeros(0, dtype=np.int64)
    t = 0.0
    finished = 0
    while finished < n_req:
        while arrivals and sent[arrivals[0]] + over <= t + 1e-15:  # reach the engine after the overhead
            i = arrivals.popleft()
            waiting.append([i, int(p_len[i])])
        n = len(run_id)
        if waiting and n < cap:  # a step with prefill work: the budget goes to the head of the queue
            left = budget
            completed = []
            for w in itertools.islice(waiting, cap - n):
                take = min(w[1], left)
                w[1] -= take
                left -= take
                if w[1] > 0:
                    break  # the budget is spent; the next prompts wait
                completed.append(w[0])
            dt = (perf.step(n) if n else 0.0) + (budget - left) * per_token
            t += dt
            if n:
                run_rem -= 1
                gaps_v.append(dt)
                gaps_w.append(n)
            for _ in completed:  # FCFS: the completed prompts are the head of the queue
                waiting.popleft()
            if completed:
                ids = np.array(completed, dtype=np.int64)
                first[ids] = t
                run_id = np.concatenate([run_id, ids])
                run_rem = np.concatenate([run_rem, g_len[ids] - 1])
        elif n:  # decode only: advance to the next completion or arrival in one block
            td = perf.step(n)
            k = int(run_rem.min())
            if arrivals:
                until = sent[arrivals[0]] + over - t
                k = min(k, max(1, math.ceil(until / td)))
            k = max(k, 1)
            t += k * td
            run_rem -= k
            gaps_v.append(td)
            gaps_w.append(k * n)
        else:  # idle: wait for the next arrival
            if not arrivals:
                break
            t = max(t, sent[arrivals[0]] + over)
            continue
        out = run_rem <= 0
        if out.any():
            ids = run_id[out]
            done[ids] = t
            finished += len(ids)
            run_id, run_rem = run_id[~out], run_rem[~out]
            if rate is None:  # each client sends its next request now
                for _ in ids:
                    if next_new < n_req:
                        sent[next_new] = t
                        arrivals.append(next_new)
                        next_new += 1
    ok = np.isfinite(done)
    ttft = first[ok] - sent[ok]
    e2e = done[ok] - sent[ok]
    g = g_len[ok]
    tpot = np.where(g > 1, (done[ok] - first[ok]) / np.maximum(g - 1, 1), np.nan)
    span = np.nanmax(done) - np.nanmin(sent) if ok.any() else math.nan
    return {"ttft": ttft, "tpot": tpot[np.isfinite(tpot)], "e2e": e2e, "itl_values": np.array(gaps_v),
            "itl_weights": np.array(gaps_w, dtype=float), "request_rate": ok.sum() / span if span > 0 else math.nan,
            "gen": g}


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """q-quantile of values with weights (the inter-token gaps over every token)."""
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w)
    return float(v[min(np.searchsorted(c, q * c[-1]), len(v) - 1)])


def summarize(sim: dict, qs: tuple = (0.5, 0.9, 0.99)) -> dict:
    """Benchmark-style metrics (seconds, per second) of a simulation, as engine.serving.load_metrics
    names them for one replica."""
    out = {"request_throughput_per_s": sim["request_rate"],
           "throughput_tokens_per_s": sim["request_rate"] * float(np.mean(sim["gen"]))}
    for name, x in (("ttft", sim["ttft"]), ("tpot", sim["tpot"]), ("e2e_latency", sim["e2e"])):
        out[f"{name}_s"] = float(np.mean(x))
        for q in qs:
            out[f"{name}_p{int(round(q * 100))}_s"] = float(np.quantile(x, q))
    v, w = sim["itl_values"], sim["itl_weights"]
    out["itl_s"] = float(np.sum(v * w) / np.sum(w))
    for q in qs:
        out[f"itl_p{int(round(q * 100))}_s"] = weighted_quantile(v, w, q)
    return out
