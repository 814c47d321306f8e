"""Parse human-written quantities (`3.35 TB/s`, `989.5 TFLOPS`, `80 GB`) into SI floats.

SI inside: bytes, bytes/s, FLOP/s, watts, US dollars. Decimal prefixes for GB/TB/...,
binary for KiB/MiB/GiB. Rendering back to human units lives in `format_si`.
"""
from __future__ import annotations

import re

from costmodel.errors import UnitError

HOURS_PER_MONTH = 8760.0 / 12  # 730: a year of hours over twelve months (monthly $ in plan and whatif)
_DEC = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_BIN = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}

# kind -> (regex for the unit part, how to turn the prefix into a factor)
_UNITS = {
    "bytes": r"(?P<p>Ki|Mi|Gi|Ti|[kKMGTP]?)B",
    "bandwidth": r"(?P<p>Ki|Mi|Gi|Ti|[kKMGTP]?)B/s",
    "flops": r"(?P<p>[kKMGTPE]?)(?:FLOPS|FLOP/s|OPS|OP/s)",
    "power": r"(?P<p>[kKM]?)W",
    "usd_per_hour": r"(?P<p>)(?:USD|\$)/h(?:our)?",
    "usd": r"(?P<p>[kKM]?)(?:USD|\$)",
    "devices": r"(?P<p>)(?:GPUs?|devices?|accelerators?)",
    "ratio": r"(?P<p>)(?:x|×)",
}
_EXPECT = {
    "bytes": "a size like '80 GB' or '50 MiB'",
    "bandwidth": "a bandwidth like '3.35 TB/s' or '900 GB/s'",
    "flops": "a rate like '989.5 TFLOPS' or '1979 TOPS'",
    "power": "a power like '700 W'",
    "usd_per_hour": "a price like '3.49 USD/h'",
    "usd": "a price like '25000 USD'",
    "devices": "a device count like '8 GPUs'",
    "ratio": "a ratio like '1.3 x'",
}
_NUM = r"(?P<n>[-+]?(?:\d[\d_,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"


def parse_quantity(value: object, kind: str, where: str = "") -> float:
    """Return the SI value of `value` ('3.35 TB/s', '700 W', ...) for a field of `kind`.

    Raises UnitError naming `where` (file and field), the value and the expected form.
    """
    if kind not in _UNITS:
        raise ValueError(f"unknown quantity kind {kind!r}")
    if isinstance(value, bool) or value is None:
        raise UnitError(f"{where}: got {value!r}, expected {_EXPECT[kind]}")
    if isinstance(value, (int, float)):
        raise UnitError(f"{where}: got the bare number {value!r} with no unit, expected {_EXPECT[kind]}")
    text = str(value).strip()
    m = re.fullmatch(_NUM + r"\s*" + _UNITS[kind], text)
    if not m:
        raise UnitError(f"{where}: cannot read {text!r}, expected {_EXPECT[kind]}")
    number = float(m.group("n").replace("_", "").replace(",", ""))
    prefix = m.group("p") or ""
    factor = _BIN.get(prefix) or _DEC[prefix]
    result = number * factor
    if result < 0:
        raise UnitError(f"{where}: {text!r} is negative, expected a positive {kind}")
    return result


_HUMAN = {
    "bytes": ("B", 1000.0),
    "bandwidth": ("B/s", 1000.0),
    "flops": ("FLOP/s", 1000.0),
    "power": ("W", 1000.0),
}


def format_si(x: float, unit: str, digits: int = 3) -> str:
    """Render 3.35e12, 'B/s' as '3.35 TB/s' (decimal prefixes)."""
    if x is None or x != x:
        return "n/a"
    prefixes = ["", "k", "M", "G", "T", "P", "E"]
    i = 0
    v = float(x)
    while abs(v) >= 1000.0 and i < len(prefixes) - 1:
        v /= 1000.0
        i += 1
    return f"{v:.{digits}g} {prefixes[i]}{unit}"


def format_gib(x: float, digits: int = 3) -> str:
    """Render a byte count in binary units as engines and vendors mean them: 85899345920 -> '80 GiB'."""
    if x is None or x != x:
        return "n/a"
    for unit, size in (("TiB", 2.0**40), ("GiB", 2.0**30), ("MiB", 2.0**20), ("KiB", 2.0**10)):
        if abs(x) >= size:
            return f"{x / size:.{digits}g} {unit}"
    return f"{x:.{digits}g} B"


def format_time(seconds: float) -> str:
    """Render seconds with a readable unit (µs, ms, s, min, h)."""
    if seconds is None or seconds != seconds:
        return "n/a"
    s = float(seconds)
    if s == float("inf"):
        return "inf"
    if s < 1e-3:
        return f"{s * 1e6:.3g} µs"
    if s < 1.0:
        return f"{s * 1e3:.3g} ms"
    if s < 120:
        return f"{s:.3g} s"
    if s < 7200:
        return f"{s / 60:.3g} min"
    return f"{s / 3600:.3g} h"
