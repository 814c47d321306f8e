"""A cache of parsed YAML documents, so a cold CLI call does not parse the whole catalogue again.

One file per YAML source under the user cache directory (`COSTMODEL_CACHE`, else
`$XDG_CACHE_HOME/costmodel`, else `~/.cache/costmodel`), keyed on the source's resolved path and
valid while its modification time (ns) and size are unchanged. Safe to delete at any time; a
cache that cannot be read or written is skipped silently; COSTMODEL_NO_PARSE_CACHE=1 turns it off. The pickles are loaded with an
unpickler that admits only the types YAML safe-loading produces (builtins, dates), never code.
"""
from __future__ import annotations

import datetime
import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

VERSION = 1
MISS = object()
_ALLOWED = {("datetime", "date"): datetime.date, ("datetime", "datetime"): datetime.datetime,
            ("datetime", "timedelta"): datetime.timedelta, ("datetime", "timezone"): datetime.timezone,
            ("builtins", "set"): set, ("builtins", "frozenset"): frozenset}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"{module}.{name} is not a YAML type") from None


def cache_dir() -> Path:
    explicit = os.environ.get("COSTMODEL_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "costmodel"


def _slot(path: Path) -> tuple[Path, tuple] | None:
    try:
        real = path.resolve()
        st = real.stat()
    except OSError:
        return None
    name = hashlib.sha256(str(real).encode()).hexdigest()[:32]
    return cache_dir() / "yaml" / f"{name}.pickle", (VERSION, str(real), st.st_mtime_ns, st.st_size)


def enabled() -> bool:
    """Off when COSTMODEL_NO_PARSE_CACHE is set (to measure or rule out the cache)."""
    return not os.environ.get("COSTMODEL_NO_PARSE_CACHE")


def get(path: Path) -> Any:
    """The cached document of `path`, or MISS."""
    slot = _slot(path) if enabled() else None
    if slot is None:
        return MISS
    file, key = slot
    try:
        data = file.read_bytes()
        stored_key, doc = _SafeUnpickler(io.BytesIO(data)).load()
    except Exception:  # absent, truncated, foreign or stale: parse the source again
        return MISS
    return doc if stored_key == key else MISS


def put(path: Path, doc: Any) -> None:
    """Store `path`'s parsed document (atomically; errors ignored: the cache is optional)."""
    slot = _slot(path) if enabled() else None
    if slot is None:
        return
    file, key = slot
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps((key, doc), protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, file)
    except Exception:
        try:
            tmp.unlink()
        except Exception:
            pass
