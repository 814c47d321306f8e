"""Serving as benchmarks measure it: one load model for `estimate --concurrency/--request-rate`,
`validate` and `plan` (engine/serving.py holds the queueing; this module asks the engine for a
replica's prefill and decode-step times and applies a load).

Load modes (data/SCHEMA.md `load`):
  static   B sequences start together (a latency benchmark at batch B): `estimate --batch B`
  offline  as many as fit, all at once (`--batch max`, `vllm bench throughput`)
  closed   C clients, each sending its next request when the last completes (`--max-concurrency C`)
  poisson  requests arrive at λ per second (`--request-rate λ`), optionally at most C in flight
Length distributions: fixed; uniform:R (a benchmark's random dataset with --random-range-ratio R:
uniform on [R·L, L], mean (1 + R)·L/2); lognormal:MEAN,SIGMA.
"""
from __future__ import annotations

import math

from costmodel.engine.serving import (QUANTILES, Dist, LoadStats, check_prefix_hit, closed, conversation, load_metrics,
                                      parse_dist,
                                      perf_from_columns, poisson)
from costmodel.errors import CostModelError, WorkloadError
from costmodel.spec.catalog import one_catalogue_state

LOADS = ("static", "offline", "closed", "poisson")


def replica_perf(model: str, hw: str, fmt: str, tp: int, prompt: Dist, gen: Dist, engine: str = "auto",
                 percentile: float = 0.9, pp: int = 1, kv_fmt: str | None = None, dp: int = 1, ep: int = 1,
                 prefix_hit: float = 0.0, **memory_flags):
    """(ReplicaPerf, batch-1 Estimate) of one replica, or (None, reason) when it cannot run (see
    engine.serving.perf_from_columns)."""
    from costmodel.estimate import columns_for, estimate, kv_pool_binds

    p_mean = max(1, int(round(prompt.mean)))
    try:
        one = estimate(model, hw, fmt, batch=1, prompt=p_mean, gen=2, tp=tp, pp=pp, engine=engine, kv_fmt=kv_fmt,
                       dp=dp, ep=ep, **memory_flags)
    except CostModelError as exc:
        return None, str(exc)
    if one.model.is_encoder:  # a load's latencies and rates all divide by the generated tokens: none
        return None, f"{one.model.id} is an encoder: it generates no tokens, so no load of requests to decode is served"
    if not one.fits:
        mem = one.memory_dict()
        if kv_pool_binds(mem):
            return None, (f"memory: the KV cache pool of {one.workload.tp * pp} x {one.hardware.id} "
                          f"({mem['kv_cache_tokens']:,.0f} tokens) holds {mem['max_concurrency']:.3g} of one sequence "
                          f"at its longest (--max-model-len, or prompt + gen); lower those or raise --mem-fraction")
        return None, (f"memory: does not fit {one.workload.tp * pp} x {one.hardware.id} "
                      f"(needs {mem['total_bytes'] / 2**30:.0f} GiB per device)")
    w = one.workload
    if prefix_hit and one.model.is_encoder:
        raise WorkloadError(f"--prefix-hit {prefix_hit}: {one.model.id} is an encoder (no prefix cache)")
    perf = perf_from_columns(*columns_for(one), w.tp, pp, prompt, gen, percentile, w.dp, w.ep, w.mtp, w.accept,
                             check_prefix_hit(prefix_hit))
    return (perf, one), ""


def serve_load(model: str, hw: str, fmt: str = "bf16", *, concurrency: float | None = None,
               request_rate: float | None = None, prompt: int = 512, gen: int = 128, prompt_dist: str | None = None,
               gen_dist: str | None = None, tp: int | None = None, pp: int = 1, devices: int | None = None,
               engine: str = "auto", kv_fmt: str | None = None, percentiles: tuple = QUANTILES,
               stream_interval: int | None = None, num_prompts: int | None = None, simulate: bool = False,
               **memory_flags) -> dict:
    """TTFT, TPOT, ITL and E2E (mean and percentiles), request and token throughput of a deployment
    under a closed loop of `concurrency` clients or Poisson arrivals at `request_rate` (with
    `concurrency` as its max concurrency). Replicas (devices / (tp·pp)) share the load evenly.
    `stream_interval` is the server's tokens per streamed chunk (default: the engine's, 1).
    `num_prompts` (closed loop): the benchmark's total requests, whose first `concurrency` start
    together (engine.serving.closed); default: the steady state only. `simulate`: the scheduler
    simulation's figures instead of the analytical ones (README, Serving: which is better where).

        >>> costmodel.serve_load("llama-3.1-8b", "h100", "fp8", concurrency=64, prompt=1000, gen=1000)["ttft_p99_s"]
    """
    if (concurrency is None) == (request_rate is None) and request_rate is None:
        raise WorkloadError("give --concurrency C (closed loop) or --request-rate R (open loop)")
    key, values = ("request_rate", [request_rate]) if request_rate is not None else ("concurrency", [concurrency])
    return serve_loads(model, hw, fmt, **{key: values}, max_concurrency=concurrency if request_rate is not None
                       else None, prompt=prompt, gen=gen, prompt_dist=prompt_dist, gen_dist=gen_dist, tp=tp, pp=pp,
                       devices=devices, engine=engine, kv_fmt=kv_fmt, percentiles=percentiles,
                       stream_interval=stream_interval, num_prompts=num_prompts, simulate=simulate,
                       **memory_flags)[0]


def check_load(concurrency, request_rate, stream_interval, num_prompts) -> None:
    """One line naming the option and the value for a load the model cannot take (exit code 2)."""
    if concurrency is not None and not (isinstance(concurrency, (int, float)) and not isinstance(concurrency, bool)
                                        and math.isfinite(concurrency) and concurrency >= 1):
        raise WorkloadError(f"--concurrency {concurrency}: expected a finite number of clients >= 1")
    if request_rate is not None and not (isinstance(request_rate, (int, float)) and not isinstance(request_rate, bool)
                                         and math.isfinite(request_rate) and request_rate > 0):
        raise WorkloadError(f"--request-rate {request_rate}: expected a finite number of requests/s > 0")
    if stream_interval is not None and (isinstance(stream_interval, bool) or not isinstance(stream_interval, int)
                                        or stream_interval < 1):
        raise WorkloadError(f"--stream-interval {stream_interval}: expected a whole number of tokens >= 1")
    if num_prompts is not None:
        if isinstance(num_prompts, bool) or not isinstance(num_prompts, int) or num_prompts < 1:
            raise WorkloadError(f"--num-prompts {num_prompts}: expected a whole number of requests >= 1")
        if request_rate is not None or concurrency is None:
            raise WorkloadError(f"--num-prompts {num_prompts}: applies to a closed loop (--concurrency without "
                                f"--request-rate)")


@one_catalogue_state  # one state of the catalogue for the replica's and every load's lookups
def serve_loads(model: str, hw: str, fmt: str = "bf16", *, concurrency=None, request_rate=None,
                max_concurrency: float | None = None, prompt: int = 512, gen: int = 128,
                prompt_dist: str | None = None, gen_dist: str | None = None, tp: int | None = None, pp: int = 1,
                devices: int | None = None, engine: str = "auto", kv_fmt: str | None = None,
                percentiles: tuple = QUANTILES, stream_interval: int | None = None, num_prompts: int | None = None,
                simulate: bool = False, seed: int = 0, prefix_tokens: float | None = None,
                kv_offload: str | None = None, turns: int | None = None, details: bool = True,
                **memory_flags) -> list[dict]:
    """`serve_load` at each of a list of concurrencies (closed loop) or request rates (Poisson, at
    most `max_concurrency` in flight), from one evaluation of the replica (its prefill and decode
    steps): the loads cost only the queueing model's arithmetic. `turns`: multi-turn conversations of
    `prompt` new and `gen` answer tokens a turn (engine.serving.conversation). With `simulate`, the latencies
    and rates come from the event-driven scheduler simulation (engine/simulate.py) on the same
    step costs instead (about 10 ms a load). `details` False: each load's metrics without its layout at the
    steady state and its 80 % bands (`layout`, `interval`), which a load sweep and a serving curve do not
    report: the layout's evaluation and the bands' lookups were two thirds of a load sweep's time."""
    if (concurrency is None) == (request_rate is None):
        raise WorkloadError("give --concurrency C (closed loop) or --request-rate R (open loop)")
    loads = list(concurrency if concurrency is not None else request_rate)
    for x in loads:
        check_load(x if concurrency is not None else max_concurrency, x if request_rate is not None else None,
                    stream_interval, num_prompts)
    p, g = parse_dist(prompt_dist, prompt, "prompt"), parse_dist(gen_dist, gen, "gen")
    if turns is not None:  # multi-turn conversations: the history is the cached prefix
        p, memory_flags["prefix_hit"] = conversation(prompt, g.mean, turns, prompt_dist, memory_flags.get("prefix_hit"))
    longest = memory_flags.get("max_model_len")
    if longest is not None and isinstance(longest, (int, float)) and p.mean + g.mean > longest:
        raise WorkloadError(f"--max-model-len {longest}: shorter than a mean request's {p.mean + g.mean:,.0f} tokens "
                            f"(prompt + gen), which the engine would refuse; raise it or shorten the requests")
    # tp None: estimate() takes the layout's devices from --dp and --ep
    got, why = replica_perf(model, hw, fmt, tp, p, g, engine, max(percentiles), pp, kv_fmt, **memory_flags)
    if got is None:
        raise WorkloadError(why)
    perf, one = got
    tp = one.workload.tp
    replicas = max(1, (devices or tp * pp) // (tp * pp))
    k = stream_interval or one.efficiency.stream_interval
    cache = prefix_cache(one, p, g, memory_flags.get("prefix_hit") or 0.0, prefix_tokens, kv_offload, pp,
                         max(percentiles))
    held = None
    if cache is not None:  # the reused tokens the pool's free part holds with nothing running (refined per load)
        perf, held = cache.perf(cache.pool, prefix_tokens)
    limit = one.model.max_position_embeddings  # as the static estimate notes it (estimate.validate_workload)
    length_note = (f"a mean request of {p.mean + g.mean:,.0f} tokens exceeds {one.model.id}'s {limit:,} positions "
                   f"(max_position_embeddings): it was not trained for that length"
                   if limit and p.mean + g.mean > limit else "")
    out = []
    for x in loads:
        if request_rate is None:
            cap = perf.max_batch
            clients = x / replicas
            load = lambda pf: closed(pf, clients, cap, percentiles,  # noqa: E731
                                     prompts=num_prompts / replicas if num_prompts else None)
        else:
            cap = (perf.max_batch if max_concurrency is None
                   else max(1, min(perf.max_batch, int(max_concurrency // replicas) or 1)))
            load = lambda pf: poisson(pf, x / replicas, cap, percentiles)  # noqa: E731
        if cache is not None:  # the running sequences' KV leaves the rest of the pool to the cache
            stats, perf_x, held_x = cache.settle(prefix_tokens, load)
        else:
            perf_x, held_x = perf, held
            stats = load(perf_x)
        if request_rate is None:
            sim = _simulated(perf_x, p, g, one, replicas, percentiles, k, seed, clients=x / replicas,
                             prompts=num_prompts / replicas if num_prompts else None) if simulate and stats.ok else None
            d = _result(stats, "closed", one, perf_x, p, g, replicas, cap, x, None, percentiles, k, sim, details)
        else:
            sim = _simulated(perf_x, p, g, one, replicas, percentiles, k, seed, rate=x / replicas,
                             cap=cap) if simulate and stats.ok else None
            d = _result(stats, "poisson", one, perf_x, p, g, replicas, cap, max_concurrency, x, percentiles, k, sim,
                        details)
        if cache is not None:
            d["prefix_cache"] = cache.report(held_x, prefix_tokens)
        d["num_prompts"] = num_prompts
        if length_note:
            d["length_note"] = length_note
        out.append(d)
    return out


def prefix_cache(one, p: Dist, g: Dist, hit: float, prefix_tokens, kv_offload, pp: int, q: float):
    """The replica's prefix cache (engine/kv_offload.PrefixCache) when a reused set is given
    (--prefix-tokens), else None; bad input names its option."""
    from costmodel.engine.kv_offload import PrefixCache, check_inputs, parse_offload
    from costmodel.estimate import columns_for

    check_inputs(prefix_tokens, kv_offload, hit)
    if prefix_tokens is None:
        return None
    w = one.workload
    tier = parse_offload(kv_offload, one.hardware.host_link_bandwidth, w.tp * pp)
    return PrefixCache(columns_for(one), w.tp, pp, w.dp, w.ep, w.mtp, w.accept, p, g, q, hit, tier)


def _result(s: LoadStats, mode, one, perf, p: Dist, g: Dist, replicas: int, cap: int, concurrency, rate, qs,
            stream_interval: float = 1.0, simulated: dict | None = None, details: bool = True) -> dict:
    out = {"load": mode, "model": one.model.id, "hardware": one.hardware.id, "format": one.format.id,
           "engine": one.efficiency.engine, "calibration": list(one.efficiency.levels),
           "calibration_case": one.calibration_case, "layout_calibration": one.layout_calibration,
           "tp": one.workload.tp, "pp": one.workload.pp, "dp": one.workload.dp, "ep": one.workload.ep,
           "mtp": one.workload.mtp, "accept_rate": one.workload.accept if one.workload.mtp else None,
           "replicas": replicas, "concurrency": concurrency,
           "request_rate": rate, "prompt_mean": p.mean, "gen_mean": g.mean, "stable": s.ok,
           "running_per_replica": s.running, "queued_per_replica": s.queued, "batch_cap": cap,
           "max_batch": perf.max_batch, "utilization": s.utilization, "stream_interval": stream_interval}
    out.update(load_metrics(s, replicas, p, g, qs, stream_interval))
    out["simulated"] = simulated is not None
    if simulated is not None:
        out.update(simulated)
    # $/Mtok under this load: the deployment's devices for the hour over the output tokens it completes
    price = one.hardware.price_per_hour
    tokens_per_h = out["throughput_tokens_per_s"] * 3600.0
    out["usd_per_million_tokens"] = (replicas * one.workload.tp * one.workload.pp * price / tokens_per_h * 1e6
                                     if price and tokens_per_h > 0 else None)
    if details:  # the steady state's layout and the 80 % bands (a stable open loop's rates carry none)
        if s.ok:
            out["layout"] = layout_at(one, s.running, p.mean + g.mean / 2)
        out["interval"] = _intervals(out, one.efficiency.engine, one.hardware.family,
                                     rates=not (mode == "poisson" and s.ok),
                                     layout=one.workload.dp > 1 or one.workload.ep > 1)
    if not s.ok:
        out["note"] = "the offered load exceeds the deployment's capacity: queues grow without bound"
    return out


def _simulated(perf, p: Dist, g: Dist, one, replicas: int, qs: tuple, k: float, seed: int, clients=None, prompts=None,
               rate=None, cap=None) -> dict:
    """The metrics of one replica's scheduler simulation, summed over replicas. A closed loop of
    a benchmark (`prompts`) runs its N requests from the first wave on; without it, 20·C requests
    run and the first C (the wave) are left out, leaving the steady state. Poisson: max(1,000,
    60 s of arrivals) requests."""
    from costmodel.engine.simulate import simulate

    budget = float(one.efficiency.prefill_chunk_tokens)
    if rate is None:
        c = max(1, int(round(clients)))
        n = max(int(round(prompts)), c) if prompts else 20 * c
        _simulable(n, f"--concurrency {clients:g}" + (f" --num-prompts {prompts:g}" if prompts else " (20 x the clients)"))
        sim = simulate(perf, p, g, clients=c, requests=n, budget=budget, seed=seed)
        if not prompts:  # the steady state: drop the first wave
            for key in ("ttft", "e2e"):
                sim[key] = sim[key][c:] if len(sim[key]) > c else sim[key]
    else:
        n = max(1000, int(min(60 * rate, 1e18)))
        _simulable(n, f"--request-rate {rate:g} (60 s of arrivals per replica)")
        sim = simulate(perf, p, g, rate=rate, requests=n, cap=cap, budget=budget, seed=seed)
    return simulated_metrics(sim, replicas, p, g, k, qs)


SIM_REQUESTS = 1_000_000  # the most requests --simulate runs: 5.7 s in a cold CLI call (10^7 took 40 s and 0.95 GB)


def _simulable(n: int, why: str) -> None:
    """A clear error where a simulation would run more than SIM_REQUESTS requests (it would take minutes or run out of
    memory)."""
    if n > SIM_REQUESTS:
        raise WorkloadError(f"--simulate: {why} makes {n:,} requests to simulate; at most {SIM_REQUESTS:,} (5-6 s "
                            f"on one core): fewer prompts or clients, or drop --simulate for the analytical model")


def simulated_metrics(sim: dict, replicas: int, p: Dist, g: Dist, stream_interval: float = 1.0,
                      qs: tuple = QUANTILES) -> dict:
    """One replica's simulation (engine/simulate.py) in load_metrics' names, rates summed over
    `replicas`; a server streaming every k tokens makes ITL = (k − 1)·TPOT + ITL(1)."""
    from costmodel.engine.simulate import summarize

    m = summarize(sim, qs)
    for key in [x for x in m if x.startswith("itl")]:
        m[key] += (stream_interval - 1) * m["tpot_s"]
    m["request_throughput_per_s"] *= replicas
    m["throughput_tokens_per_s"] *= replicas
    m["total_throughput_tokens_per_s"] = m["request_throughput_per_s"] * (p.mean + g.mean)
    return m


def layout_at(one, running: float, context: float) -> dict:
    """The replica's layout at the steady state's decode batch: sequences per attention group and the
    time of each collective in one decode step (at the mean context; engine/layout.py)."""
    import numpy as np

    from costmodel.engine.evaluate import evaluate
    from costmodel.engine.layout import layout_summary
    from costmodel.engine.speculative import tokens_per_step
    from costmodel.estimate import columns_for

    w = one.workload
    n = max(1.0, float(running))
    r = evaluate(*columns_for(one), n, 0.0, 2.0, context, float(w.tp), float(w.pp), 1.0, w.dp, w.ep, w.mtp, w.accept)
    step = float(np.asarray(r.metrics["tpot_s"]).reshape(-1)[0]) * float(tokens_per_step(w.accept, w.mtp))
    return layout_summary(w.tp, w.dp, w.ep, n, r.decode_times, step)


def _intervals(out: dict, engine: str, family: str, rates: bool = True, layout: bool = False) -> dict:
    """80 % bands of every latency and rate from the leave-one-source-out residuals of loaded rows
    (calibration/intervals.py `load_interval`); none for an unbounded (unstable) latency, and none
    for the rates of a stable open loop (it completes what arrives: the rate is the input)."""
    from costmodel.calibration.intervals import load_interval

    bands = {}
    for key, value in out.items():
        if (key.startswith(("ttft_", "tpot_", "itl_", "e2e_latency_")) and key.endswith("_s")) or (rates and key in (
                "request_throughput_per_s", "throughput_tokens_per_s", "total_throughput_tokens_per_s")):
            if isinstance(value, float) and math.isfinite(value):
                iv = load_interval(key, value, engine, family, layout)
                if iv:
                    bands[key] = iv
    for key in [k for k in bands if k.startswith("ttft_")]:  # E2E = TTFT + decoding: its band never ends below
        e2e = bands.get("e2e_latency_" + key[len("ttft_"):])  # TTFT's (each is fitted on its own residuals)
        if e2e is not None and (e2e["low"] < bands[key]["low"] or e2e["high"] < bands[key]["high"]):
            bands["e2e_latency_" + key[len("ttft_"):]] = {
                **e2e, "low": max(e2e["low"], bands[key]["low"]), "high": max(e2e["high"], bands[key]["high"]),
                "basis": e2e["basis"] + "; raised to TTFT's band (E2E includes it)"}
    return bands
