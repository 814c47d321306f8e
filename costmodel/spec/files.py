"""Reading user-given text files safely: one clear error for a missing, unreadable, oversized,
binary or non-UTF-8 file, naming the file and what was expected."""
from __future__ import annotations

import os
from pathlib import Path

from costmodel.errors import CostModelError

MAX_BYTES = 64 << 20  # 64 MiB: far above any catalogue, measurement or accuracy file


def read_text(path: str | Path, what: str, error: type = CostModelError, max_bytes: int = MAX_BYTES) -> str:
    """The file's text (UTF-8, a byte-order mark allowed), or `error` saying why not."""
    p = Path(path).expanduser()
    with open_checked(p, what, error, max_bytes) as f:
        try:
            data = f.read()
        except OSError as exc:
            raise error(f"{p}: cannot read ({exc.strerror or exc}); expected {what}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); expected {what} "
                    f"saved as UTF-8") from None


def open_checked(p: Path, what: str, error: type = CostModelError, max_bytes: int = MAX_BYTES,
                 limit_for: str | None = None, advice: str = ""):
    """The file open for reading in binary (its first 64 KiB buffered), or `error` saying why not: a folder, over
    `max_bytes` (the message names `limit_for`, else `what`, and ends with `advice`), unreadable, or NUL bytes in
    its first 64 KiB (binary data). read_text's checks, for a reader that takes the file a part at a time."""
    try:
        if p.is_dir():
            raise error(f"{p}: is a folder; expected {what}")
        size = p.stat().st_size
        if size > max_bytes:
            raise error(f"{p}: {size / 2**20:,.0f} MiB is too large for {limit_for or what} (limit "
                        f"{max_bytes >> 20} MiB){advice}")
        f = open(p, "rb", buffering=1 << 16)  # peek's bytes: up to the buffer's size
    except OSError as exc:
        raise error(f"{p}: cannot read ({exc.strerror or exc}); expected {what}") from None
    if b"\x00" in f.peek(1 << 16)[:1 << 16]:
        f.close()
        raise error(f"{p}: binary data (NUL bytes), not text; expected {what} saved as UTF-8")
    return f


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A text cell made safe for CSV and spreadsheets: a leading formula character (= + - @ tab CR)
    gets an apostrophe (OWASP CSV injection), and quoting follows RFC 4180. Numbers are left as they are."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if text.startswith(FORMULA_STARTS):
        text = "'" + text
    if any(c in text for c in ',"\n\r'):
        text = '"' + text.replace('"', '""') + '"'
    return text


class atomic_output:
    """Write `path` through a temporary file beside it, renamed into place only on success: an error
    or Ctrl-C leaves no half-written file (and an existing file untouched)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.part-{os.getpid()}")

    def __enter__(self) -> Path:
        """The temporary file, created empty: a folder that cannot take a file (missing, read-only, /proc) is a
        CostModelError naming the path before any work is done, not an OSError after it."""
        try:
            open(self.tmp, "wb").close()
        except OSError as exc:
            raise CostModelError(f"{self.path}: cannot write a file there ({exc.strerror or exc})") from None
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            try:
                self.tmp.unlink()
            except OSError:
                pass
        return False
