"""A cache of parsed YAML documents and of the catalogue's indexes, so a cold CLI call does not parse
or read the whole catalogue again.

Under the user cache directory (`COSTMODEL_CACHE`, else `$XDG_CACHE_HOME/costmodel`, else
`~/.cache/costmodel`): one file per YAML source (`yaml/`), keyed on the source's resolved path and valid
while its modification time (ns) and size are unchanged; and one file per catalogue folder and kind
(`index/`): its entries, valid while its files (paths, times, sizes, inodes) and the code that merges
them (spec/catalog.py) are unchanged. Safe to delete at any time; a cache that cannot be read or written
is skipped silently; COSTMODEL_NO_PARSE_CACHE=1 turns it off. The pickles are loaded with an unpickler
that admits only the types YAML safe-loading produces (builtins, dates), never code.
"""
from __future__ import annotations

import datetime
import io
import os
import pickle
import zlib
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
    return cache_dir() / "yaml" / f"{_name(str(real))}.pickle", (VERSION, str(real), st.st_mtime_ns, st.st_size)


def _name(text: str) -> str:
    """A file name for `text`: two 32-bit checksums (zlib, already loaded with numpy; hashlib's OpenSSL
    costs a cold call ~8 ms). Names that collide only share a slot: the key stored inside tells them apart."""
    data = text.encode()
    return f"{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def enabled() -> bool:
    """Off when COSTMODEL_NO_PARSE_CACHE is set (to measure or rule out the cache)."""
    return not os.environ.get("COSTMODEL_NO_PARSE_CACHE")


def get(path: Path) -> Any:
    """The cached document of `path`, or MISS."""
    slot = _slot(path) if enabled() else None
    return MISS if slot is None else _load(*slot)


def put(path: Path, doc: Any) -> None:
    """Store `path`'s parsed document (atomically; errors ignored: the cache is optional)."""
    slot = _slot(path) if enabled() else None
    if slot is not None:
        _store(*slot, doc)


def _index_slot(kind: str, folder: str, stamps: tuple) -> tuple[Path, tuple]:
    return cache_dir() / "index" / f"{kind}-{_name(folder)}.pickle", (VERSION, kind, folder, stamps)


def get_index(kind: str, folder: str, stamps: tuple) -> Any:
    """The cached entries of catalogue `kind` in `folder` whose files (and merging code) have `stamps`, or
    MISS."""
    return _load(*_index_slot(kind, folder, stamps)) if enabled() else MISS


def put_index(kind: str, folder: str, stamps: tuple, value: Any) -> None:
    """Store a folder's entries (builtins only) for get_index (errors ignored)."""
    if enabled():
        _store(*_index_slot(kind, folder, stamps), value)


def _load(file: Path, key: tuple) -> Any:
    try:
        data = file.read_bytes()
        stored_key, value = _SafeUnpickler(io.BytesIO(data)).load()
    except Exception:  # absent, truncated, foreign or stale: build it again
        return MISS
    return value if stored_key == key else MISS


def _store(file: Path, key: tuple, value: Any) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, file)
    except Exception:
        try:
            tmp.unlink()
        except Exception:
            pass
