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

from costmodel.engine.serving import (QUANTILES, Dist, LoadStats, closed, load_metrics, parse_dist,
                                      perf_from_columns, poisson)
from costmodel.errors import CostModelError, WorkloadError

LOADS = ("static", "offline", "closed", "poisson")


def replica_perf(model: str, hw: str, fmt: str, tp: int, prompt: Dist, gen: Dist, engine: str = "auto",
                 percentile: float = 0.9, pp: int = 1, kv_fmt: str | None = None, **memory_flags):
    """(ReplicaPerf, batch-1 Estimate) of one replica, or (None, reason) when it cannot run (see
    engine.serving.perf_from_columns)."""
    from costmodel.estimate import columns_for, estimate

    p_mean = max(1, int(round(prompt.mean)))
    try:
        one = estimate(model, hw, fmt, batch=1, prompt=p_mean, gen=2, tp=tp, pp=pp, engine=engine, kv_fmt=kv_fmt,
                       **memory_flags)
    except CostModelError as exc:
        return None, str(exc)
    if not one.fits:
        return None, (f"memory: does not fit {tp * pp} x {one.hardware.id} "
                      f"(needs {one.memory_dict()['total_bytes'] / 2**30:.0f} GiB per device)")
    perf = perf_from_columns(*columns_for(one), tp, pp, prompt, gen, percentile)
    return (perf, one), ""


def serve_load(model: str, hw: str, fmt: str = "bf16", *, concurrency: float | None = None,
               request_rate: float | None = None, prompt: int = 512, gen: int = 128, prompt_dist: str | None = None,
               gen_dist: str | None = None, tp: int = 1, pp: int = 1, devices: int | None = None,
               engine: str = "auto", kv_fmt: str | None = None, percentiles: tuple = QUANTILES,
               stream_interval: int | None = None, **memory_flags) -> dict:
    """TTFT, TPOT, ITL and E2E (mean and percentiles), request and token throughput of a deployment
    under a closed loop of `concurrency` clients or Poisson arrivals at `request_rate` (with
    `concurrency` as its max concurrency). Replicas (devices / (tp·pp)) share the load evenly.
    `stream_interval` is the server's tokens per streamed chunk (default: the engine's, 1).

        >>> costmodel.serve_load("llama-3.1-8b", "h100", "fp8", concurrency=64, prompt=1000, gen=1000)["ttft_p99_s"]
    """
    if (concurrency is None) == (request_rate is None) and request_rate is None:
        raise WorkloadError("give --concurrency C (closed loop) or --request-rate R (open loop)")
    if concurrency is not None and not (isinstance(concurrency, (int, float)) and math.isfinite(concurrency)
                                        and concurrency >= 1):
        raise WorkloadError(f"--concurrency {concurrency}: expected a finite number of clients >= 1")
    if request_rate is not None and not (isinstance(request_rate, (int, float)) and math.isfinite(request_rate)
                                         and request_rate > 0):
        raise WorkloadError(f"--request-rate {request_rate}: expected a finite number of requests/s > 0")
    if stream_interval is not None and (isinstance(stream_interval, bool) or not isinstance(stream_interval, int)
                                        or stream_interval < 1):
        raise WorkloadError(f"--stream-interval {stream_interval}: expected a whole number of tokens >= 1")
    p, g = parse_dist(prompt_dist, prompt, "prompt"), parse_dist(gen_dist, gen, "gen")
    replicas = max(1, (devices or tp * pp) // (tp * pp))
    got, why = replica_perf(model, hw, fmt, tp, p, g, engine, max(percentiles), pp, kv_fmt, **memory_flags)
    if got is None:
        raise WorkloadError(why)
    perf, one = got
    if request_rate is None:
        cap = perf.max_batch
        stats = closed(perf, concurrency / replicas, cap, percentiles)
        mode = "closed"
    else:
        cap = perf.max_batch if concurrency is None else max(1, min(perf.max_batch, int(concurrency // replicas) or 1))
        stats = poisson(perf, request_rate / replicas, cap, percentiles)
        mode = "poisson"
    k = stream_interval or one.efficiency.stream_interval
    return _result(stats, mode, one, perf, p, g, replicas, cap, concurrency, request_rate, percentiles, k)


def _result(s: LoadStats, mode, one, perf, p: Dist, g: Dist, replicas: int, cap: int, concurrency, rate, qs,
            stream_interval: float = 1.0) -> dict:
    out = {"load": mode, "model": one.model.id, "hardware": one.hardware.id, "format": one.format.id,
           "engine": one.efficiency.engine, "calibration": list(one.efficiency.levels),
           "calibration_case": one.calibration_case,
           "tp": one.workload.tp, "pp": one.workload.pp, "replicas": replicas, "concurrency": concurrency,
           "request_rate": rate, "prompt_mean": p.mean, "gen_mean": g.mean, "stable": s.ok,
           "running_per_replica": s.running, "queued_per_replica": s.queued, "batch_cap": cap,
           "max_batch": perf.max_batch, "utilization": s.utilization, "stream_interval": stream_interval}
    out.update(load_metrics(s, replicas, p, g, qs, stream_interval))
    if not s.ok:
        out["note"] = "the offered load exceeds the deployment's capacity: queues grow without bound"
    return out
