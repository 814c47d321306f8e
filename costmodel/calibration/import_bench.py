"""Turn the result files of serving benchmarks into measurement rows (data/SCHEMA.md), so a user
validates and calibrates on their own deployment in one step.

Formats (detected from the file):
  vllm      `vllm bench serve --save-result` / benchmark_serving.py JSON: mean_/median_/pNN_ttft_ms,
            tpot, itl, e2el; request_throughput, output_throughput, total_token_throughput;
            max_concurrency, request_rate, completed, total_input_tokens, total_output_tokens
  sglang    `python -m sglang.bench_serving --output-file` JSONL (one result per line): the same
            names with e2e_latency, plus random_input_len / random_output_len / random_range_ratio
  genai-perf / aiperf   profile_export_genai_perf.json / profile_export_aiperf.json: metrics as
            {"unit", "avg", "p50", "p90", "p99"} under time_to_first_token, inter_token_latency,
            request_latency, output_token_throughput, request_throughput, input/output_sequence_length,
            with the load under input_config (concurrency, request_rate)
  guidellm  benchmarks.json: {"benchmarks": [{"args"|"config": {"strategy": {"type_": "concurrent",
            "streams": N} | {"type_": "constant"|"poisson", "rate": R}}, "metrics": {name: {"successful":
            {"mean", "median", "percentiles": {"p90", "p99"}}}}}]} (request_latency in seconds)
The deployment (model, device, format, engine, tp, devices) is not in these files: it is given on
the command line, as the benchmark's user knows it.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from costmodel.calibration.measurements import Measurement, MeasurementError
from costmodel.spec.files import read_text

SPEC = {"ttft": "ttft", "tpot": "tpot", "itl": "itl", "e2el": "e2e_latency", "e2e_latency": "e2e_latency"}


class BenchFileError(MeasurementError):
    """A benchmark result file that cannot be read or recognized."""


def _num(x):
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _vllm_like(d: dict) -> dict:
    """Metrics of a vLLM / SGLang result dict: {schema metric: value} and the load."""
    out = {}
    for key, name in SPEC.items():
        for stat, suffix in (("mean", ""), ("median", "_p50")):
            v = _num(d.get(f"{stat}_{key}_ms"))
            if v is not None:
                out[f"{name}{suffix}_ms"] = v
        for q in (50, 90, 99):
            v = _num(d.get(f"p{q}_{key}_ms"))
            if v is not None:
                out[f"{name}_p{q}_ms"] = v
    for src, dst in (("request_throughput", "request_throughput_per_s"), ("output_throughput", "throughput_tokens_per_s"),
                     ("total_token_throughput", "total_throughput_tokens_per_s")):
        if _num(d.get(src)) is not None:
            out[dst] = _num(d[src])
    if "total_throughput_tokens_per_s" not in out and _num(d.get("input_throughput")) is not None \
            and "throughput_tokens_per_s" in out:
        out["total_throughput_tokens_per_s"] = _num(d["input_throughput"]) + out["throughput_tokens_per_s"]
    done = _num(d.get("completed")) or 0
    prompt = (_num(d.get("total_input_tokens")) or 0) / done if done else _num(d.get("random_input_len"))
    gen = (_num(d.get("total_output_tokens")) or 0) / done if done else _num(d.get("random_output_len"))
    rate = _num(d.get("request_rate"))
    conc = _num(d.get("max_concurrency"))  # SGLang's "concurrency" is the measured mean, not the cap
    return {"metrics": out, "prompt": prompt, "gen": gen, "rate": rate, "concurrency": conc}


def _stat_block(d: dict, key: str, scale: float = 1.0) -> dict:
    block = d.get(key) or {}
    out = {}
    if isinstance(block, dict):
        for stat, suffix in (("avg", ""), ("mean", ""), ("p50", "_p50"), ("median", "_p50"), ("p90", "_p90"),
                             ("p99", "_p99")):
            v = _num(block.get(stat))
            if v is not None:
                out[suffix] = v * scale
    return out


def _genai_perf(d: dict) -> dict:
    out = {}
    for key, name in (("time_to_first_token", "ttft"), ("inter_token_latency", "itl"), ("request_latency", "e2e_latency")):
        for suffix, v in _stat_block(d, key).items():
            out[f"{name}{suffix}_ms"] = v
    if "itl_ms" in out:  # genai-perf's inter-token latency excludes the first token: the TPOT of vLLM
        out["tpot_ms"] = out["itl_ms"]
    for key, name in (("request_throughput", "request_throughput_per_s"),
                      ("output_token_throughput", "throughput_tokens_per_s")):
        v = _stat_block(d, key).get("")
        if v is not None:
            out[name] = v
    cfg = d.get("input_config") or {}
    load = cfg.get("perf_analyzer", cfg) if isinstance(cfg, dict) else {}
    stim = load.get("stimulus", load) if isinstance(load, dict) else {}
    conc = _num((stim or {}).get("concurrency")) or _num(cfg.get("concurrency")) or _num(
        ((cfg.get("loadgen") or {}) if isinstance(cfg.get("loadgen"), dict) else {}).get("concurrency"))
    rate = _num((stim or {}).get("request_rate")) or _num(cfg.get("request_rate"))
    return {"metrics": out, "prompt": _stat_block(d, "input_sequence_length").get(""),
            "gen": _stat_block(d, "output_sequence_length").get(""), "rate": rate, "concurrency": conc}


def _guidellm(b: dict) -> dict:
    m = b.get("metrics") or {}

    def stats(key, scale=1.0):
        s = (m.get(key) or {}).get("successful") or {}
        out = {}
        for stat, suffix in (("mean", ""), ("median", "_p50")):
            if _num(s.get(stat)) is not None:
                out[suffix] = _num(s[stat]) * scale
        for q, v in (s.get("percentiles") or {}).items():
            if q in ("p50", "p90", "p99") and _num(v) is not None:
                out[f"_{q}"] = _num(v) * scale
        return out

    out = {}
    for key, name, scale in (("time_to_first_token_ms", "ttft", 1.0), ("time_per_output_token_ms", "tpot", 1.0),
                             ("inter_token_latency_ms", "itl", 1.0), ("request_latency", "e2e_latency", 1e3)):
        for suffix, v in stats(key, scale).items():
            out[f"{name}{suffix}_ms"] = v
    for key, name in (("requests_per_second", "request_throughput_per_s"),
                      ("output_tokens_per_second", "throughput_tokens_per_s")):
        if "" in stats(key):
            out[name] = stats(key)[""]
    args = b.get("args") or b.get("config") or {}
    strat = args.get("strategy") or b.get("strategy") or {}
    kind = str(strat.get("type_") or strat.get("type") or "")
    conc = _num(strat.get("streams")) if kind == "concurrent" else None
    rate = _num(strat.get("rate")) if kind in ("constant", "poisson") else None
    return {"metrics": out, "prompt": stats("prompt_token_count").get(""), "gen": stats("output_token_count").get(""),
            "rate": rate, "concurrency": conc}


def results_in(path: str | Path) -> list[tuple[str, dict]]:
    """(format, parsed result) for every benchmark result in a file."""
    text = read_text(path, "a benchmark result file (vLLM/SGLang/genai-perf/AIPerf/GuideLLM JSON)", BenchFileError)
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise BenchFileError(f"{path}: not JSON or JSON lines ({exc.msg} at line {exc.lineno})") from None
        except RecursionError:
            raise BenchFileError(f"{path}: JSON nested too deeply to be a benchmark result") from None
    except RecursionError:  # [[[[...]]]] a hundred thousand deep: Python's decoder recurses
        raise BenchFileError(f"{path}: JSON nested too deeply to be a benchmark result") from None
    out = []
    for d in docs:
        if not isinstance(d, dict):
            continue
        if isinstance(d.get("benchmarks"), list):
            out.extend(("guidellm", _guidellm(b)) for b in d["benchmarks"] if isinstance(b, dict))
        elif "time_to_first_token" in d and isinstance(d["time_to_first_token"], dict):
            out.append(("genai-perf", _genai_perf(d)))
        elif "mean_ttft_ms" in d:
            out.append(("sglang" if "mean_e2e_latency_ms" in d else "vllm", _vllm_like(d)))
    if not out:
        raise BenchFileError(f"{path}: no benchmark result recognized; expected the result file of vllm bench serve, "
                             f"sglang.bench_serving, genai-perf, AIPerf or GuideLLM")
    return out


def import_bench(paths: list[str], model: str, hardware: str, fmt: str, framework: str, tp: int = 1,
                 devices: int | None = None, kv_format: str = "", source: str | None = None) -> list[Measurement]:
    """Schema rows from benchmark result files, for the deployment given (ids are checked)."""
    from costmodel.spec.engine_params import resolve_engine
    from costmodel.spec.formats import resolve_format
    from costmodel.spec.hardware import resolve_hardware
    from costmodel.spec.model_catalog import resolve_model

    from costmodel.engine.layout import check_layout

    spec, hw = resolve_model(model)[0], resolve_hardware(hardware)[0]
    model_id, hw_id, fmt_id = spec.id, hw.id, resolve_format(fmt)[0].id
    kv_format = resolve_format(kv_format)[0].id if kv_format else ""  # validate skipped every row of a bad one
    engine = resolve_engine(framework, "")
    devices = devices or tp
    # the deployment as validate will read it: rows it would skip whole are refused here, with the reason
    if devices % tp:
        raise BenchFileError(f"--devices {devices}: not a multiple of --tp {tp} (replicas of tp devices each)")
    check_layout(tp, 1, 1, spec)
    if tp > 1 and not hw.interconnect_bandwidth:
        raise BenchFileError(f"--tp {tp}: {hw_id} has no device interconnect in its spec; use --tp 1")
    if spec.is_encoder:
        raise BenchFileError(f"--model {model_id} is an encoder: serving benchmarks time generated tokens")
    if len({Path(p).resolve() for p in paths}) < len(paths):
        raise BenchFileError("a result file is given twice: its rows would repeat (give each file once)")
    rows = []
    for path in paths:
        for n, (kind, r) in enumerate(results_in(path)):
            if not r["prompt"] or not r["gen"] or r["prompt"] < 0 or r["gen"] < 0:
                raise BenchFileError(f"{path}: result {n + 1} states no positive input/output token counts")
            if r["rate"] is not None and not (math.isfinite(r["rate"]) and r["rate"] > 0):
                raise BenchFileError(f"{path}: result {n + 1} has request rate {r['rate']:g}; expected a positive rate")
            if r["concurrency"] is not None and r["concurrency"] and not r["concurrency"] >= 1:
                raise BenchFileError(f"{path}: result {n + 1} has max concurrency {r['concurrency']:g}; expected 1 or "
                                     f"more")
            if r["rate"] is not None:
                load, rate, batch = "poisson", r["rate"], int(r["concurrency"]) if r["concurrency"] else -1
            elif r["concurrency"]:
                load, rate, batch = "closed", None, int(r["concurrency"])
            else:
                raise BenchFileError(f"{path}: result {n + 1} has neither a max concurrency nor a finite request "
                                     f"rate; an unbounded burst is not a load costmodel can score")
            src = source or f"bench:{Path(path).name}"
            for metric, value in sorted(r["metrics"].items()):
                if value < 0:  # a corrupt result: rows were dropped without a word
                    raise BenchFileError(f"{path}: result {n + 1} has {metric} {value:g}; a measured time or rate "
                                         f"is never negative")
                if value == 0:  # a figure the benchmark states as 0 (no gap between tokens of a 1-token answer)
                    continue
                rid = hashlib.sha1(f"{path}|{n}|{metric}".encode()).hexdigest()[:10]
                rows.append(Measurement(
                    id=rid, source=src, hardware=hw_id, devices=devices, tp=tp, model=model_id, format=fmt_id,
                    kv_format=kv_format, framework=engine, batch=batch, prompt_tokens=int(round(r["prompt"])),
                    output_tokens=int(round(r["gen"])), context_tokens=0, metric=metric, value=value,
                    notes=f"{kind} result {n + 1} of {Path(path).name}; mean lengths", load=load, request_rate=rate,
                    length_dist="fixed"))
    return rows
