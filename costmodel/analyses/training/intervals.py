"""80% intervals of training estimates from the fit's out-of-sample residuals (calibration/training/
fitted.yaml `intervals`): 10th and 90th percentiles of log(predicted / measured), per calibration level:
  device        leave-one-source-out residuals (a new lab, framework or harness on a fitted device)
  family        leave-one-source-out and leave-one-device-out residuals together (a device never fitted)
  uncalibrated  the same, with the sourced defaults' residuals (no device of the family was ever fitted)
Each band is widened to contain the point estimate (a band is never one-sided past it)."""
from __future__ import annotations

import math

from costmodel.spec.catalog import search_roots


def _bands() -> dict:
    from costmodel.spec.catalog import read_yaml

    out: dict = {}
    for root in reversed(search_roots()):
        path = root / "calibration" / "training" / "fitted.yaml"
        if path.is_file():
            out.update((read_yaml(path) or {}).get("intervals") or {})
    return out


def interval(level: str, estimate: float) -> tuple[float, float]:
    """(low, high) of a rate whose point estimate is `estimate`, at this calibration level."""
    bands = _bands()
    band = bands.get(level) or bands.get("uncalibrated") or {"low": math.log(0.5), "high": math.log(2.0)}
    low_q, high_q = min(float(band["low"]), 0.0), max(float(band["high"]), 0.0)
    # predicted / measured = exp(q): the measured value lies at estimate / exp(q)
    return estimate / math.exp(high_q), estimate / math.exp(low_q)
