"""Build rows.csv for incoming/serving_poisson from hand-transcribed published tables.

Every value below was copied by hand from the source text named in sources.md and
then checked against the source by verify.py (see README.md). Nothing is derived
except the per-request mean prompt/output lengths (total tokens / prompts), which
the brief asks for.

Run:  python build.py   (writes rows.csv next to this file)
"""
import csv
import hashlib
import os

HEADER = ["id", "source", "hardware", "devices", "tp", "model", "format", "kv_format",
          "framework", "batch", "prompt_tokens", "output_tokens", "context_tokens", "metric",
          "value", "notes", "load", "request_rate", "dp", "ep", "engine_version",
          "mem_fraction", "max_model_len", "length_dist"]

ROWS = []


def _id(*parts):
    return hashlib.sha1("|".join(str(p) for p in parts).encode()).hexdigest()[:10]


def add(source, cfg, metrics):
    """cfg: dict of the non-metric columns; metrics: {metric: value}."""
    for metric, value in metrics.items():
        if value is None:
            continue
        row = {k: "" for k in HEADER}
        row.update(cfg)
        row["source"] = source
        row["metric"] = metric
        row["value"] = value
        row.setdefault("context_tokens", 0)
        if row["context_tokens"] == "":
            row["context_tokens"] = 0
        key = [source] + [cfg.get(k, "") for k in HEADER if k not in ("id", "notes", "value", "metric")]
        key += [cfg.get("_variant", ""), metric]
        row["id"] = _id(*key)
        ROWS.append(row)


# ---------------------------------------------------------------------------
# 1. zhjunqin/LLM-Learning inference/benchmark/README.md (RTX 3090, Llama-3-8B-Instruct)
#    commit e4ed097e0bce6eb453e9848bbec9ff4096a3e4a9 (2024-05-26); tables added 2024-05-04/05.
#    Columns per table row: request-rate, num-prompts, duration, total input tokens,
#    total generated tokens, req/s, input tok/s, output tok/s, P50/P90/P99 TTFT,
#    P50/P90/P99 TPOT.
# ---------------------------------------------------------------------------
ZJ = "zhjunqin_llm_learning_3090"
ZJ_TABLES = {
    # key: (framework, engine_version, format, kv_format, mem_fraction, max_model_len, notes, rows)
    "vllm_xformers": (
        "vllm", "0.4.1", "bf16", "", 0.9, 8192,
        "vLLM 0.4.1 OpenAI server `python -m vllm.entrypoints.openai.api_server --model Meta-Llama-3-8B-Instruct "
        "--dtype auto --disable-log-requests` (log: dtype=torch.bfloat16, max_seq_len=8192, gpu_memory_utilization=0.9, "
        "max_num_seqs=256, enable_chunked_prefill=False, enable_prefix_caching=False, XFormers attention backend because "
        "flash_attn was not installed, CUDA graphs on); client `python benchmarks/benchmark_serving.py --backend vllm "
        "--dataset-name sharegpt --dataset-path ShareGPT_V3_unfiltered_cleaned_split.json --request-rate R --num-prompts N` "
        "(vLLM-0.4.1-era benchmark_serving: Poisson arrivals, seed 0, max_tokens = the ShareGPT completion length, no --ignore-eos in the command so requests may stop at EOS; the same client is used for every engine in this source).",
        [(1, 100, 105.08, 22925, 21789, 0.95, 218.17, 207.35, 68.75, 172.66, 216.07, 24.68, 26.86, 33.59),
         (2, 200, 112.79, 42889, 44132, 1.77, 380.26, 391.28, 68.18, 186.67, 244.08, 29.64, 33.58, 45.39),
         (5, 1000, 218.21, 213987, 199774, 4.58, 980.65, 915.52, 119.85, 232.46, 370.85, 82.95, 82.95, 96.64),
         (8, 1000, 202.53, 213987, 199774, 4.94, 1056.55, 986.37, 24919.84, 49774.61, 53385.48, 104.71, 128.04, 199.54)]),
    "vllm_flashattn": (
        "vllm", "0.4.1", "bf16", "", 0.9, 8192,
        "vLLM 0.4.1 as in the first vLLM table but re-run 'with flash attention' installed (the author says it did not "
        "help, slightly worse); same benchmark_serving ShareGPT client.",
        [(5, 1000, 218.53, 213987, 199778, 4.58, 979.21, 914.19, 123.25, 231.46, 370.58, 84.14, 98.26, 158.75)]),
    "vllm_awq": (
        "vllm", "0.4.1", "w4a16", "", 0.9, "",
        "vLLM 0.4.1 serving an AWQ-quantized Llama-3-8B-Instruct ('使用 AWQ 量化后的性能'); the AWQ checkpoint and the "
        "launch command are not given (INT4 weights, 16-bit activations; group size not stated); same ShareGPT client.",
        [(5, 1000, 230.33, 213987, 199771, 4.34, 929.05, 867.33, 180.10, 321.00, 538.60, 139.76, 219.49, 298.66)]),
    "lmdeploy": (
        "lmdeploy", "0.4.0", "fp16", "", "", "",
        "LMDeploy 0.4.0 TurboMind `lmdeploy serve api_server Meta-Llama-3-8B-Instruct --server-port 23333` (defaults); "
        "client `benchmark_serving.py --backend lmdeploy --model llama3 --dataset-name sharegpt --request-rate R "
        "--num-prompts N --endpoint /v1/completions --tokenizer Meta-Llama-3-8B-Instruct`. Weight dtype not printed: "
        "TurboMind of that era converted HF weights to fp16 (assumed, see README doubts).",
        [(1, 100, 104.29, 22925, 20520, 0.96, 219.83, 196.77, 69.06, 182.00, 216.00, 22.40, 24.54, 28.94),
         (2, 200, 111.77, 42889, 41697, 1.79, 383.73, 373.07, 67.81, 195.30, 267.04, 26.59, 29.49, 37.77),
         (5, 1000, 212.51, 213987, 187896, 4.71, 1006.94, 884.16, 97.06, 230.58, 369.00, 32.18, 44.24, 68.68),
         (8, 1000, 144.06, 213987, 187694, 6.94, 1485.41, 1302.89, 217.03, 515.88, 3661.76, 74.94, 94.23, 141.89)]),
    "lmdeploy_kv8": (
        "lmdeploy", "0.4.0", "fp16", "int8", "", "",
        "LMDeploy 0.4.0 TurboMind with KV-cache quantization `lmdeploy serve api_server Meta-Llama-3-8B-Instruct "
        "--quant-policy 8` (online int8 KV cache); same client as the LMDeploy table.",
        [(5, 1000, 212.48, 213987, 188221, 4.71, 1007.09, 885.82, 93.89, 230.55, 376.01, 31.07, 42.60, 67.52),
         (8, 1000, 142.92, 213987, 186820, 7.00, 1497.24, 1307.16, 184.06, 376.53, 1024.51, 68.76, 86.98, 136.48)]),
    "mlc": (
        "mlc", "0.1.dev1166", "w4a16", "", 0.9, "",
        "MLC-LLM 0.1.dev1166 `mlc_llm serve ... --model-lib-path Meta-Llama-3-8B-Instruct-MLC-q4f16_1-cuda.so "
        "--max-batch-size 48 --gpu-memory-utilization 0.90 --mode server` (q4f16_1: 4-bit weights with an fp16 scale per "
        "group of 32, fp16 activations; engine log: max batch 48, KV capacity 126754 tokens, prefill chunk 8192); client "
        "`benchmark_serving.py --backend mlc-llm --endpoint /v1/chat/completions --dataset-name sharegpt`.",
        [(1, 100, 100.11, 22925, 20586, 1.00, 228.99, 205.63, 63.30, 149.08, 171.03, 12.83, 29.01, 34.72),
         (2, 200, 108.81, 42889, 39678, 1.81, 393.48, 364.65, 71.64, 171.24, 226.43, 36.07, 40.28, 53.17),
         (5, 1000, 215.88, 213987, 179858, 4.61, 990.13, 833.13, 2550.71, 6156.20, 7806.20, 52.74, 62.02, 85.82)]),
    "trtllm": (
        "trt-llm", "0.9.0 (Triton tensorrtllm_backend, tritonserver 2.42.0; engine config says version 0.8.0)", "fp16", "", 0.9, "",
        "TensorRT-LLM via Triton tensorrtllm_backend (`scripts/launch_triton_server.py --world_size=1`), engine built "
        "with max-batch-size 40 (log: maxNumSequences 40, maxAttentionWindowSize 2048, 31616 tokens in paged KV cache, "
        "kv_cache_free_gpu_mem_fraction default 0.9, chunked context off, scheduler forced to guaranteed_no_evict, no "
        "quant_algo -> 16-bit weights; dtype fp16 assumed from the convert_checkpoint default); client "
        "`benchmark_serving.py --backend tensorrt-llm --endpoint /v2/models/ensemble/generate_stream --dataset-name sharegpt`.",
        [(1, 100, 105.14, 22925, 19565, 0.95, 218.05, 186.09, 103.37, 211.27, 242.60, 23.80, 25.97, 30.24),
         (2, 200, 112.26, 42889, 38134, 1.78, 382.04, 339.68, 103.35, 231.81, 278.98, 27.18, 30.89, 43.36),
         (5, 1000, 212.84, 213987, 169192, 4.70, 1005.39, 794.93, 1648.60, 5476.14, 6814.99, 44.70, 53.81, 75.73),
         (8, 1000, 206.76, 213987, 168655, 4.84, 1034.95, 815.71, 37581.12, 64263.81, 67850.86, 45.30, 55.20, 73.75)]),
}

for variant, (fw, ver, fmt, kvf, memf, mml, note, rows) in ZJ_TABLES.items():
    for (rate, n, dur, tin, tout, rps, itps, otps, t50, t90, t99, p50, p90, p99) in rows:
        cfg = dict(hardware="rtx-3090", devices=1, tp=1, model="llama-3-8b", format=fmt, kv_format=kvf,
                   framework=fw, batch="", prompt_tokens=round(tin / n, 2), output_tokens=round(tout / n, 2),
                   load="poisson", request_rate=rate, dp=1, ep=1, engine_version=ver, mem_fraction=memf,
                   max_model_len=mml, length_dist="mean", _variant=variant)
        cfg["notes"] = (f"{note} Table row: request-rate {rate}, num-prompts {n}, duration {dur} s, total input tokens "
                        f"{tin}, total generated tokens {tout} (prompt/output columns = these totals / {n}, ShareGPT "
                        f"means); model meta-llama/Meta-Llama-3-8B-Instruct; 1x RTX 3090 24GB, driver 535, CUDA 12.2.")
        if variant == "vllm_xformers" and rate == 5:
            cfg["notes"] += " Doubt: P50 and P90 TPOT are both printed as 82.95 (possible copy error in the source)."
        add(ZJ, cfg, {"request_throughput_per_s": rps, "throughput_tokens_per_s": otps,
                      "ttft_p50_ms": t50, "ttft_p90_ms": t90, "ttft_p99_ms": t99,
                      "tpot_p50_ms": p50, "tpot_p90_ms": p90, "tpot_p99_ms": p99})


# ---------------------------------------------------------------------------
# 2. sgl-project/sglang benchmark/benchmark_vllm_060/README.md (SGLang v0.3.0 vs vLLM v0.6.0)
#    read at commit 120affb9613cc3f5bcd055ec09c7621d3ced0ebc
# ---------------------------------------------------------------------------
SG = "sglang_benchmark_vllm_060"
# ShareGPT token totals: sglang.bench_serving samples ShareGPT deterministically (seed 1, ignore_eos on by
# default, output length = dataset completion length), so totals depend only on num_prompts and tokenizer.
# 1200 prompts with the Llama-3.1 tokenizer: sglang issue #2097 prints Total input tokens 269081 and Total
# generated tokens 226901 for exactly `--dataset-name sharegpt --num-prompts 1200 --request-rate 4`.
IN_1200, OUT_1200 = round(269081 / 1200, 2), round(226901 / 1200, 2)

SG_COMMON = ("Source table from SGLang's 'How to reproduce the benchmark results for SGLang v0.3.0 compared to vLLM "
             "v0.6.0' README; client `python3 -m sglang.bench_serving --backend {be} --dataset-name sharegpt "
             "--num-prompts {n} {rr}` (ShareGPT_V3 unfiltered, seed 1; bench_serving sends ignore_eos unless --disable-ignore-eos (default in the versions inspected, assumed for v0.3.0), so outputs are the "
             "dataset completion lengths). ")
SG_SERVERS = {
    ("sglang", "8b"): "SGLang v0.3.0 `python -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B-Instruct "
                      "--enable-torch-compile --disable-radix-cache` (mem_frac default 0.88 at TP1 per README).",
    ("vllm", "8b"): "vLLM v0.6.0 `python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3.1-8B-Instruct "
                    "--disable-log-requests --num-scheduler-steps 10 --max_model_len 4096` (multi-step scheduling, "
                    "gpu_memory_utilization default 0.9).",
    ("sglang", "70b_online"): "SGLang v0.3.0 `python -m sglang.launch_server --model-path meta-llama/Llama-3.1-70B-Instruct "
                              "--disable-radix-cache --tp 4` (mem_frac default 0.85 at TP4 per README).",
    ("sglang", "70b_offline"): "SGLang v0.3.0 `python -m sglang.launch_server --model-path meta-llama/Llama-3.1-70B-Instruct "
                               "--disable-radix-cache --tp 4 --mem-frac 0.88`.",
    ("vllm", "70b"): "vLLM v0.6.0 `python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3.1-70B-Instruct "
                     "--disable-log-requests --num-scheduler-steps 10 --tensor 4 --max_model_len 4096`.",
}

SG_ONLINE = [
    # (model, hw, devices, rate, n, engine, e2e_p50, ttft_p50, tpot_p50, itl_p50)
    ("llama-3.1-8b", "a100-sxm-80gb", 1, 4, 1200, "sglang", 1564.17, 31.98, 13.17, 11.93),
    ("llama-3.1-8b", "a100-sxm-80gb", 1, 4, 1200, "vllm", 1691.97, 100.48, 14.14, 129.32),
    ("llama-3.1-8b", "a100-sxm-80gb", 1, 8, 2400, "sglang", 2175.02, 35.68, 17.85, 14.41),
    ("llama-3.1-8b", "a100-sxm-80gb", 1, 8, 2400, "vllm", 2137.16, 120.39, 17.09, 158.63),
    ("llama-3.1-70b", "h100-sxm", 4, 4, 1200, "sglang", 3005.24, 53.94, 25.03, 21.67),
    ("llama-3.1-70b", "h100-sxm", 4, 4, 1200, "vllm", 2915.60, 179.15, 23.58, 231.23),
    ("llama-3.1-70b", "h100-sxm", 4, 8, 2400, "sglang", 4064.98, 58.11, 33.07, 24.45),
    ("llama-3.1-70b", "h100-sxm", 4, 8, 2400, "vllm", 3752.38, 207.12, 29.15, 275.32),
]
SG_OFFLINE = [
    # (model, hw, devices, n, engine, req/s, output tok/s)
    ("llama-3.1-8b", "a100-sxm-80gb", 1, 5000, "sglang", 22.03, 4281.51),
    ("llama-3.1-8b", "a100-sxm-80gb", 1, 5000, "vllm", 21.27, 4132.37),
    ("llama-3.1-70b", "h100-sxm", 4, 5000, "sglang", 19.84, 3856.01),
    ("llama-3.1-70b", "h100-sxm", 4, 5000, "vllm", 19.04, 3700.64),
]
HW_NOTE = {"a100-sxm-80gb": "hardware stated as '1 x A100 80G' (form factor not stated; SXM assumed)",
           "h100-sxm": "hardware stated as '4 x H100 80G' (form factor not stated; SXM assumed)"}


def _sg_cfg(model, hw, dev, eng, rate, n, load, batch, variant):
    size = "8b" if model.endswith("8b") else "70b"
    if eng == "sglang":
        key = (eng, size if size == "8b" else ("70b_online" if load == "poisson" else "70b_offline"))
        # README: SGLang mem_frac is 0.88 at TP1 and 0.85 at TP4 by default; 0.88 set for the 70B offline run
        ver, memf, mml = "0.3.0", (0.88 if size == "8b" or load == "offline" else 0.85), ""
    else:
        key = (eng, size)
        # README: vLLM gpu_memory_utilization is 0.9 by default at TP1 and TP4
        ver, memf, mml = "0.6.0", 0.9, 4096
    be = "sglang" if eng == "sglang" else "vllm"
    rr = f"--request-rate {rate}" if load == "poisson" else "(request rate inf)"
    if n == 1200:
        lens = (f"prompt/output = ShareGPT means for these 1200 prompts, 269081/1200 and 226901/1200, taken from the "
                f"identical command's output in sglang issue #2097 (same sampler, seed and tokenizer family).")
    else:
        lens = (f"Doubt: totals for {n} prompts are not printed anywhere found; prompt/output columns hold the "
                f"1200-prompt means (the first 1200 of the {n} sampled prompts are the same requests), approximate.")
        if load == "offline":
            lens += (" The printed throughputs imply an output mean of about 194.3 tokens for the 5000 prompts "
                     "(output tok/s / req/s).")
    cfg = dict(hardware=hw, devices=dev, tp=dev, model=model, format="bf16", kv_format="", framework=eng,
               batch=batch, prompt_tokens=IN_1200, output_tokens=OUT_1200, load=load,
               request_rate=(rate if load == "poisson" else "inf"), dp=1, ep=1, engine_version=ver,
               mem_fraction=memf, max_model_len=mml, length_dist="mean", _variant=variant)
    cfg["notes"] = (SG_COMMON.format(be=be, n=n, rr=rr) + SG_SERVERS[key] + f" {HW_NOTE[hw]}; num prompts {n}; "
                    + lens + " Weights: the model's BF16 checkpoint (no quantization flag).")
    return cfg


for (model, hw, dev, rate, n, eng, e2e, ttft, tpot, itl) in SG_ONLINE:
    cfg = _sg_cfg(model, hw, dev, eng, rate, n, "poisson", "", "online")
    add(SG, cfg, {"e2e_latency_p50_ms": e2e, "ttft_p50_ms": ttft, "tpot_p50_ms": tpot, "itl_p50_ms": itl})
for (model, hw, dev, n, eng, rps, otps) in SG_OFFLINE:
    cfg = _sg_cfg(model, hw, dev, eng, "inf", n, "offline", n, "offline")
    add(SG, cfg, {"request_throughput_per_s": rps, "throughput_tokens_per_s": otps})


# ---------------------------------------------------------------------------
# 3. pegainfer-project/pegainfer docs/benchmarks/qwen3-4b-serving-vllm-rtx5090.md, vLLM 0.22.1 columns only
#    (a) version of 2026-06-10 (commit 414b64764c46b814ccca5ef34720662ebb9c973f): prefix cache OFF
#    (b) version of 2026-06-13 (commit 9fecb6395f06828198ac7e5163227ce25a97159d): prefix cache ON (default)
# ---------------------------------------------------------------------------
PG_A = "pegainfer_qwen3_4b_5090_0610"
PG_B = "pegainfer_qwen3_4b_5090_0613"
PG_CLIENT = ("client `vllm bench serve` 0.22.1 (tools/bench/qps_sweep.sh): random dataset input_len 1024 / output_len "
             "128 (vLLM 0.22.1 default --random-range-ratio 0.0 = fixed lengths), --ignore-eos --temperature 0, "
             "Poisson arrivals (--burstiness 1.0), --seed 42, num_prompts = 60 x QPS, no max concurrency; an unrecorded "
             "8-request warmup before the sweep. 1x RTX 5090 32GB (driver 590.48.01), model Qwen3-4B BF16 safetensors, TP1. "
             "QPS 12/16 are past the knee (req/s < QPS, TTFT includes queueing).")
PG_A_ROWS = [  # QPS, req/s, out tok/s, TTFT p50, TTFT p99, TPOT p50, TPOT p99, ITL p99
    (1, 0.99, 126, 57.8, 73.2, 6.65, 7.77, 12.8),
    (2, 1.97, 252, 58.8, 103.7, 7.17, 8.92, 35.3),
    (4, 3.93, 504, 61.8, 115.8, 8.57, 10.60, 38.2),
    (8, 7.88, 1008, 68.1, 192.4, 11.82, 15.80, 46.7),
    (10, 9.80, 1254, 75.7, 243.3, 13.99, 20.90, 80.0),
    (12, 11.72, 1501, 119.5, 409.3, 19.41, 49.21, 102.5),
    (16, 13.20, 1690, 3933.9, 10684.2, 76.21, 80.17, 118.5),
]
for (q, rps, otps, t50, t99, p50, p99, i99) in PG_A_ROWS:
    cfg = dict(hardware="rtx-5090", devices=1, tp=1, model="qwen3-4b", format="bf16", kv_format="", framework="vllm",
               batch="", prompt_tokens=1024, output_tokens=128, load="poisson", request_rate=q, dp=1, ep=1,
               engine_version="0.22.1 (PyPI, torch 2.11.0+cu130)", mem_fraction=0.9, max_model_len=8192,
               length_dist="fixed", _variant="0610")
    cfg["notes"] = ("Server `vllm serve /data/Qwen3-4B --max-model-len 8192 --gpu-memory-utilization 0.9 "
                    "--no-enable-prefix-caching` (otherwise default engine config); " + PG_CLIENT +
                    f" num prompts {60 * q}. Table 'Test 1 — QPS sweep, vLLM 0.22.1' of the 2026-06-10 write-up "
                    "(out tok/s printed as integers).")
    add(PG_A, cfg, {"request_throughput_per_s": rps, "throughput_tokens_per_s": otps, "ttft_p50_ms": t50,
                    "ttft_p99_ms": t99, "tpot_p50_ms": p50, "tpot_p99_ms": p99, "itl_p99_ms": i99})

PG_B_ROWS = [  # QPS, vllm out tok/s, vllm TTFT p50, vllm TPOT p50, vllm TPOT p99
    (1, 126.0, 57.1, 6.90, 8.02),
    (2, 252.3, 39.4, 7.05, 9.18),
    (4, 503.4, 42.4, 7.91, 10.30),
    (8, 1007.5, 69.1, 12.09, 16.14),
    (10, 1253.6, 79.4, 14.44, 21.08),
    (12, 1499.9, 119.5, 19.75, 49.10),
    (16, 1692.6, 3712.4, 78.22, 81.46),
]
for (q, otps, t50, p50, p99) in PG_B_ROWS:
    cfg = dict(hardware="rtx-5090", devices=1, tp=1, model="qwen3-4b", format="bf16", kv_format="", framework="vllm",
               batch="", prompt_tokens=1024, output_tokens=128, load="poisson", request_rate=q, dp=1, ep=1,
               engine_version="0.22.1 (PyPI)", mem_fraction="", max_model_len="", length_dist="fixed",
               _variant="0613")
    cfg["notes"] = ("Re-run of 2026-06-13 (supersedes the 06-10 run): vLLM 0.22.1 with prefix cache ON (the default; "
                    "random prompts, so little reuse expected); server flags otherwise not restated; " + PG_CLIENT +
                    f" num prompts {60 * q} (per the 06-10 method). Table 'QPS sweep (Poisson, in1024/out128, seed 42)', "
                    "vLLM columns.")
    add(PG_B, cfg, {"throughput_tokens_per_s": otps, "ttft_p50_ms": t50, "tpot_p50_ms": p50, "tpot_p99_ms": p99})


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rows.csv")
    ids = [r["id"] for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate ids"
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=HEADER, extrasaction="ignore")
        w.writeheader()
        for r in ROWS:
            w.writerow(r)
    print(f"wrote {len(ROWS)} rows to {out}")


if __name__ == "__main__":
    main()
