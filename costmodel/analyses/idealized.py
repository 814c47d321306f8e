"""Idealized runtime (Narayanan et al. 2023, arXiv 2305.02440; HELM's implementation).

  runtime(p, o) = T_prompt(p) + g · max(o − 1, 0)
  T_prompt(p)   = table[k*] · p / k*,  k* = the smallest bucket >= p (the largest bucket, scaled
                  linearly, beyond it)
HELM's coefficients (A100, Megatron) ship in data/helm_idealized_runtimes.json; the engine
derives the same table on any device: T_prompt(k) = TTFT at batch 1 and prompt k, g = mean
decode step at batch 1 over the bucket range. Cost-aware variants (an assumption: the paper's
exact definitions were not available) multiply by the accelerators that hold the model:
accelerator-seconds = runtime · n_acc, $ = accelerator-seconds · $/device-hour / 3600,
J = accelerator-seconds · average power.
"""
from __future__ import annotations

import bisect
import functools
import json
from dataclasses import dataclass

from costmodel.spec.catalog import builtin_root
from costmodel.errors import CostModelError, FormatNotSupportedError, SpecError, UnknownIdError, unknown

BUCKETS = (1, 16, 32, 64, 128, 192, 256, 320, 384, 428, 472, 512, 576, 640, 704, 768, 832, 896, 960, 1024,
           1152, 1280, 1408, 1536, 1664, 1792, 1920)
# HELM names -> catalogue architecture (for accelerator counts of the cost-aware variants)
HELM_ARCH = {"openai/davinci": "opt-175b", "together/opt-175b": "opt-175b", "huggingface/gptj_6b": "gpt-j-6b",
             "gooseai/gpt-j-6b": "gpt-j-6b", "together/gpt-j-6b": "gpt-j-6b"}


@dataclass(frozen=True)
class Coefficients:
    name: str
    per_output_token_s: float
    prompt_table: dict  # bucket -> seconds
    source: str

    def prompt_time(self, p: int) -> float:
        """T_prompt(p): smallest bucket >= p, cost linear in p inside it; linear beyond the last."""
        keys = sorted(self.prompt_table)
        if p <= 0:
            return 0.0
        i = bisect.bisect_left(keys, p)
        k = keys[min(i, len(keys) - 1)]
        return self.prompt_table[k] * p / k

    def runtime(self, p: int, o: int) -> float:
        return self.prompt_time(p) + self.per_output_token_s * max(o - 1, 0)


@functools.lru_cache(maxsize=None)
def helm_table() -> dict:
    with open(builtin_root() / "data" / "helm_idealized_runtimes.json", encoding="utf-8") as fh:
        return json.load(fh)


def helm_coefficients(name: str) -> Coefficients:
    """HELM's published coefficients; `name` as HELM spells it or its part after the slash."""
    doc = helm_table()
    models = doc["models"]
    key = name if name in models else next((k for k in models if k.split("/", 1)[1] == name), None)
    if key is None:
        raise unknown("HELM model", name, list(models) + [k.split("/", 1)[1] for k in models])
    m = models[key]
    table = {int(k): float(v) for k, v in m["runtime_for_prompt_tokens"].items()}
    return Coefficients(key, float(m["runtime_per_output_token"]), table, doc["source"])


def fewest_devices(model: str, hw: str, fmt: str, engine: str | None) -> tuple[int, int]:
    """(tp, pp) of the fewest devices that hold the model at batch 1 (TP up to 8, then PP)."""
    from costmodel.estimate import estimate
    from costmodel.spec.model_catalog import load_model

    heads = load_model(model).heads
    for n in (1, 2, 4, 8, 16, 32, 64):
        tp = min(n, 8)
        while heads % tp:
            tp //= 2
        pp = n // tp
        try:
            e = estimate(model, hw, fmt, batch=1, prompt=1, gen=1, tp=tp, pp=pp, engine=engine)
        except (UnknownIdError, SpecError, FormatNotSupportedError):
            raise  # a name or format that no layout changes: its own error, not "does not fit"
        except CostModelError:
            continue
        if e.fits:
            return tp, pp
    raise CostModelError(f"{model} in {fmt} does not fit on 64 x {hw}")


def engine_coefficients(model: str, hw: str, fmt: str, tp: int, pp: int, engine: str | None) -> Coefficients:
    """The HELM table derived from the engine: TTFT per bucket (one vectorized call), mean decode
    step over the bucket range."""
    import numpy as np

    from costmodel.engine.evaluate import evaluate
    from costmodel.estimate import columns_for, estimate

    e = estimate(model, hw, fmt, batch=1, prompt=1, gen=BUCKETS[-1], tp=tp, pp=pp, engine=engine)
    res = evaluate(*columns_for(e), 1.0, np.array(BUCKETS, dtype=float), 1.0, 0.0, float(tp), float(pp), 1.0)
    ttft = dict(zip(BUCKETS, np.asarray(res.metrics["ttft_s"], dtype=float).tolist()))
    return Coefficients(f"{model} on {tp * pp} x {hw} in {fmt}", e.metric("tpot_s"), ttft, "costmodel engine")


@dataclass(frozen=True)
class IdealizedResult:
    coefficients: Coefficients
    prompt: int
    gen: int
    devices: int | None
    usd_per_device_hour: float | None
    watts_per_device: float | None

    def to_dict(self) -> dict:
        c = self.coefficients
        runtime = c.runtime(self.prompt, self.gen)
        acc = runtime * self.devices if self.devices else None
        return {
            "model": c.name, "source": c.source, "prompt": self.prompt, "gen": self.gen,
            "runtime_s": runtime, "prompt_s": c.prompt_time(self.prompt), "per_output_token_s": c.per_output_token_s,
            "devices": self.devices, "accelerator_seconds": acc,
            "usd": acc * self.usd_per_device_hour / 3600 if acc and self.usd_per_device_hour else None,
            "joules": acc * self.watts_per_device if acc and self.watts_per_device else None,
            "table": [{"prompt_tokens": k, "prompt_s": v} for k, v in sorted(c.prompt_table.items())],
        }


def idealized(model: str, hw: str = "a100-sxm-80gb", fmt: str = "fp16", tp: int | None = None,
              prompt: int = 1000, gen: int = 50, helm: bool = False, engine: str | None = "auto") -> IdealizedResult:
    """Idealized runtime of (prompt, gen): HELM's coefficients (`helm=True`) or the engine's.

        >>> costmodel.idealized("llama-3.1-70b", hw="a100-sxm-80gb", fmt="fp16", prompt=1000, gen=50)
    """
    from costmodel.estimate import estimate
    from costmodel.spec.hardware import load_hardware

    if prompt < 0 or gen < 0:
        raise CostModelError("--prompt and --gen must be >= 0")
    if prompt < 1 and not helm:  # as estimate: the first generated token is predicted from what precedes it
        raise CostModelError(f"--prompt {prompt}: a generated token needs at least one token before it (give 1 or more)")
    device = load_hardware(hw)
    if helm:
        coef = helm_coefficients(model)
        arch = HELM_ARCH.get(coef.name)
        n = None
        if arch:
            t, p = fewest_devices(arch, hw, fmt, engine)
            n = t * p
        watts = estimate(arch, hw, fmt, batch=1, prompt=prompt or 1, gen=max(gen, 1), tp=t, pp=p,
                         engine=engine).metric("average_power_w") if arch else None
        return IdealizedResult(coef, prompt, gen, n, device.price_per_hour, watts)
    from costmodel.estimate import require_fit
    from costmodel.spec.model_catalog import resolve_model

    spec = resolve_model(model)[0] if isinstance(model, str) else model
    if spec.is_encoder:  # runtime(p, o) = prefill + per output token x (o - 1): an encoder outputs none
        raise CostModelError(f"{spec.id} is an encoder: an idealized runtime prices generated tokens; use "
                             f"costmodel estimate {spec.id} for its forward pass")
    if tp is None:
        t, p = fewest_devices(model, hw, fmt, engine)
    else:
        t, p = tp, 1
    one = estimate(model, hw, fmt, batch=1, prompt=max(prompt, 1), gen=max(gen, 1), tp=t, pp=p, engine=engine)
    require_fit(one)  # a --tp that cannot hold the model (fewest_devices' choice always can)
    coef = engine_coefficients(model, hw, fmt, t, p, engine)
    watts = one.metric("average_power_w")
    return IdealizedResult(coef, prompt, gen, t * p, device.price_per_hour, watts)
