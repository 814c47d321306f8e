"""Training precisions and the matrix units their GEMMs run on.

BF16/FP16 mixed precision runs the GEMMs on 16-bit units. FP8 recipes (Transformer Engine per-tensor
delayed or current scaling, DeepSeek-V3's 1x128 / 128x128 blocks, MXFP8 with one E8M0 scale per 32)
run forward, input-gradient and weight-gradient GEMMs on FP8 units; NVFP4 (NVIDIA, 'Pretraining LLMs
with NVFP4', arXiv 2509.25149) and MXFP4 (Quartet, arXiv 2505.14669) on FP4 units. Attention's
softmax and the optimizer stay in higher precision in all of them. Their achieved speed relative to
BF16 (quantization, scaling, Hadamard transforms) is the fitted fp8_scale / fp4_scale.
"""
from __future__ import annotations

from costmodel.errors import WorkloadError, suggest

UNITS = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "mxfp8": "fp8", "nvfp4": "fp4", "mxfp4": "fp4"}
# block-scaled (MX, NVFP4) matrix instructions arrived with the FP4 units (NVIDIA Blackwell, AMD CDNA4): Transformer
# Engine's MXFP8 and NVFP4 recipes require Blackwell (docs.nvidia.com/deeplearning/transformer-engine, FP8 primer)
BLOCK_SCALED = ("mxfp8", "nvfp4", "mxfp4")


def unit_for(precision: str, hw) -> str:
    """The matrix unit a precision's GEMMs run on; refused where the device lacks it (no emulation in training)."""
    p = precision.strip().lower()
    if p not in UNITS:
        hint = suggest(p, list(UNITS))
        raise WorkloadError(f"--fmt {precision!r}: not a training precision; expected one of {', '.join(UNITS)}"
                            + (f" (did you mean '{hint[0]}'?)" if hint else ""))
    u = UNITS[p]
    if u == "bf16" and not hw.has("bf16") and hw.has("fp16"):
        u = "fp16"
    if p in BLOCK_SCALED and not hw.has("fp4"):
        raise WorkloadError(f"--fmt {precision}: block-scaled formats need the block-scaled units of FP4-capable devices "
                            f"(Blackwell, CDNA4); {hw.id} has none. Use "
                            + " or ".join(k for k, v in UNITS.items() if hw.has(v) and k not in BLOCK_SCALED and k != "fp16"))
    if not hw.has(u):
        raise WorkloadError(f"--fmt {precision}: {hw.id} has no {u} units (it has {', '.join(sorted(hw.peaks))}); "
                            f"training recipes do not emulate it. Use "
                            + " or ".join(k for k, v in UNITS.items() if hw.has(v) and k != "fp16"
                                          and (k not in BLOCK_SCALED or hw.has("fp4"))))
    return u


def precision_pair(precision: str) -> tuple[str, str]:
    """(forward, backward) precisions of `--fmt`: one name for every GEMM, or FWD:BWD for the forward GEMMs
    and the two backward ones (input and weight gradients), as Quartet's and NVIDIA's recipes split them."""
    parts = [p.strip().lower() for p in str(precision).split(":")]
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) != 2 or not all(parts):
        raise WorkloadError(f"--fmt {precision!r}: expected one precision or FORWARD:BACKWARD (e.g. nvfp4:fp8)")
    return parts[0], parts[1]


def units_for(precision: str, hw) -> tuple[str, str]:
    """The matrix units of the forward and the backward GEMMs."""
    f, b = precision_pair(precision)
    return unit_for(f, hw), unit_for(b, hw)


def as_pair(unit) -> tuple[str, str]:
    """(forward, backward) units from one unit or a pair."""
    return (unit, unit) if isinstance(unit, str) else tuple(unit)
