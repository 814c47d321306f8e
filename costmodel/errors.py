"""One exception family: every error a user can cause is a `CostModelError`.

The CLI prints `str(error)` as one line on stderr and exits with code 2.
"""
from __future__ import annotations

import difflib
from typing import Iterable


class CostModelError(Exception):
    """Base of every error caused by input (ids, files, values)."""


class UnknownIdError(CostModelError, KeyError):
    """An id that names no catalogue entry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class SpecError(CostModelError):
    """A malformed or incomplete spec file: names file, field, value and expectation."""


class UnitError(SpecError):
    """A quantity whose unit is missing or wrong for its field."""


class WorkloadError(CostModelError):
    """A workload value out of range (zero or negative sizes, bad parallelism)."""


class FormatNotSupportedError(CostModelError):
    """A numeric format the device can neither run natively nor emulate."""


class DoesNotFitError(CostModelError):
    """The model (and its KV cache) does not fit in the devices' memory."""


def suggest(name: str, known: Iterable[str], n: int = 1) -> list[str]:
    """Closest known names to `name` (difflib ratio), plus prefix matches like h1000 -> h100."""
    known = list(known)
    close = difflib.get_close_matches(name, known, n=n, cutoff=0.5)
    if close:
        return close
    prefixed = sorted((k for k in known if name.startswith(k) or k.startswith(name)), key=len)
    return prefixed[:n]


def unknown(kind: str, name: str, known: Iterable[str]) -> UnknownIdError:
    """Build the error for an unknown id, with the nearest known name."""
    hint = suggest(name, known)
    tip = f"; did you mean '{hint[0]}'?" if hint else ""
    if kind == "engine":
        return UnknownIdError(f"unknown engine '{name}'{tip} (known: {', '.join(known)})")
    return UnknownIdError(
        f"unknown {kind} '{name}'{tip} (run 'costmodel list {kind_plural(kind)}' to see all)"
    )


def kind_plural(kind: str) -> str:
    return {"hardware": "hardware", "model": "models", "format": "formats", "engine": "engines"}.get(kind, kind)
