"""A deployment's electrical power: each device draws its TDP times the engine's idle fraction plus the
busy share of the rest, TDP·(idle + (1 − idle)·utilization) (calibration/defaults.yaml `idle_power_fraction`)."""
from __future__ import annotations


def watts(est, devices: int, utilization: float) -> float:
    """Watts of `devices` devices of the estimate's hardware at `utilization` (0 = idle, 1 = busy)."""
    idle = est.efficiency.idle_power_fraction
    return devices * (est.hardware.tdp_w or 0.0) * (idle + (1 - idle) * utilization)
