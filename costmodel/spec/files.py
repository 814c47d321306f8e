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
    try:
        if p.is_dir():
            raise error(f"{p}: is a folder; expected {what}")
        size = p.stat().st_size
        if size > max_bytes:
            raise error(f"{p}: {size / 2**20:,.0f} MiB is too large for {what} (limit {max_bytes >> 20} MiB)")
        data = p.read_bytes()
    except OSError as exc:
        raise error(f"{p}: cannot read ({exc.strerror or exc}); expected {what}") from None
    if b"\x00" in data[:65536]:
        raise error(f"{p}: binary data (NUL bytes), not text; expected {what} saved as UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); expected {what} "
                    f"saved as UTF-8") from None


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
