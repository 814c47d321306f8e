"""One exception family: every error a user can cause is a `CostModelError`.

The CLI prints `str(error)` as one line on stderr and exits with code 2.
"""
from __future__ import annotations

import re
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


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[-_.\s/]+", text.lower()) if t]


# the letter o typed for zeros after a digit (h1OO): tried only where the query as typed finds nothing
_DIGIT_LOOKALIKES = re.compile(r"(?<=\d)o+")
_AS_DIGITS = str.maketrans("o", "0")


def suggest(name: str, known: Iterable[str], n: int = 1) -> list[str]:
    """Closest known names to `name`, never a different entry the query merely extends.

    In order: names holding every token of the query (`thor` -> `jetson-agx-thor`,
    `orin-nano-super` -> `jetson-orin-nano-super-8gb`, fewest tokens first); the same name without
    separators (`rtx4090` -> `rtx-4090`); difflib's closest (`h1000` -> `h100`) unless the candidate's
    tokens are a strict subset of the query's (`orin-nano-super` is not `orin-nano`), among the names sharing the
    query's first token where some do (`h100-sxm-80gb` -> an h100, not `a100-sxm-80gb`). Where none is found, the
    same with the letter o after a digit read as a zero (`h1OO` -> an h100)."""
    known = list(known)
    query = name.strip().lower()
    qt = _tokens(query)
    if not qt:
        return []
    found = _suggest(query, qt, known, n)
    digits = _DIGIT_LOOKALIKES.sub(lambda m: m.group(0).translate(_AS_DIGITS), query)
    if found or digits == query:
        return found
    return _suggest(digits, _tokens(digits), known, n)  # h1OO: the letter typed for the zeros


def _suggest(query: str, qt: list, known: list, n: int) -> list[str]:
    """suggest's search for one spelling of the query."""

    def covers(k: str) -> bool:
        kt = _tokens(k)
        return all(any(u == t or u.startswith(t) for u in kt) for t in qt)

    covering = sorted((k for k in known if covers(k)), key=lambda k: (len(_tokens(k)), len(k), k))
    if covering:
        return covering[:n]
    squash = lambda s: re.sub(r"[-_.\s/]+", "", s.lower())  # noqa: E731
    same = [k for k in known if squash(k) == squash(query)]
    if same:
        return same[:n]
    qset = set(qt)
    import difflib  # only when a name is unknown: a cold call does not pay its import

    # the query's first token names the family (h100 in h100-sxm-80gb): its members first, so that a different
    # device one letter away (a100-sxm-80gb) is not offered while an h100 exists
    family = [k for k in known if _tokens(k)[:1] == qt[:1]]
    close = [k for k in difflib.get_close_matches(query, family or known, n=max(5, n), cutoff=0.6 if family else 0.55)
             if not set(_tokens(k)) < qset]
    if close:
        return close[:n]
    prefixed = sorted((k for k in known if (query.startswith(k) or k.startswith(query))
                       and not set(_tokens(k)) < qset), key=len)
    return prefixed[:n]


def unknown(kind: str, name: str, known: Iterable[str]) -> UnknownIdError:
    """Build the error for an unknown id, with the nearest known name."""
    hint = suggest(name, known)
    tip = f"; did you mean '{hint[0]}'?" if hint else ""
    if kind == "engine":
        return UnknownIdError(f"unknown engine '{name}'{tip} (known: {', '.join(known)})")
    if kind == "id":
        return UnknownIdError(f"unknown id '{name}'{tip} (run 'costmodel list hardware', 'costmodel list models' "
                              f"or 'costmodel list formats' to see all, or give the path of a spec file)")
    return UnknownIdError(
        f"unknown {kind} '{name}'{tip} (run 'costmodel list {kind_plural(kind)}' to see all)"
    )


def kind_plural(kind: str) -> str:
    return {"hardware": "hardware", "model": "models", "format": "formats", "engine": "engines"}.get(kind, kind)


def not_a_file(path) -> str:
    """Why `path` is not a readable regular file, in words: 'a folder', 'not a regular file (a device, pipe or
    socket)', 'not readable' or 'no such file' ('' where it is one)."""
    import os
    from pathlib import Path

    p = Path(path).expanduser()
    if p.is_dir():
        return "a folder"
    if p.exists() and not p.is_file():
        return "not a regular file (a device, pipe or socket)"
    if not p.exists():
        return "no such file"
    return "" if os.access(p, os.R_OK) else "not readable"
