"""Sparse training as a speed factor on the MLP GEMMs (calibration/training/defaults.yaml `sparsity:`).

`--sparsity 2:4`: semi-structured weights on sparse tensor cores, the MLP linears forward and backward
1.3x faster where measured (the weight gradient stays dense); refused on families without them.
`--sparsity S` (0 < S < 1): unstructured; no GPU runs faster for it (its published FLOP savings were
measured on Cerebras), so time is unchanged and the estimate says so. Model FLOPs stay dense.
"""
from __future__ import annotations

from costmodel.errors import WorkloadError


def _table() -> dict:
    from costmodel.analyses.training.efficiency import training_file

    return training_file("defaults.yaml").get("sparsity") or {}


def mlp_speedup(sparsity, hw) -> tuple[float, str | None]:
    """(speed factor of the MLP GEMMs, note) for a --sparsity value on a device."""
    text = str(sparsity).strip().lower() if sparsity is not None else ""
    if text in ("", "none"):
        return 1.0, None
    table = _table()
    if text == "2:4":
        row = table["2:4"]
        if hw.family not in row.get("families", ()):
            raise WorkloadError(f"--sparsity 2:4: {hw.id} ({hw.family}) has no sparse tensor cores in the data "
                                f"(families with them: {', '.join(row['families'])})")
        return float(row["mlp_speedup"]), (f"--sparsity 2:4: MLP GEMMs {row['mlp_speedup']:g}x faster forward and "
                                           f"backward (measured with PyTorch/xFormers on A100; "
                                           f"calibration/training/defaults.yaml)")
    try:
        s = float(text)
    except ValueError:
        raise WorkloadError(f"--sparsity {sparsity!r}: expected 2:4 (semi-structured) or a fraction 0-1 of "
                            f"weights zeroed (unstructured)") from None
    if s == 0:  # 0, 0.0, -0, 0e0: no weight zeroed, the dense model
        return 1.0, None
    if not 0 < s < 1:
        raise WorkloadError(f"--sparsity {sparsity!r}: a fraction of zeroed weights must lie in (0, 1)")
    row = table["unstructured"]
    return float(row["mlp_speedup"]), (f"--sparsity {s:g}: unstructured sparsity is not faster on GPUs "
                                       f"(its FLOP savings, {100 * s:.0f}% of the sparse GEMMs, were measured on "
                                       f"Cerebras CS-2): time unchanged")
