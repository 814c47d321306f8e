"""Reading user-given text files safely: one clear error for a missing, unreadable, oversized,
binary or non-UTF-8 file, naming the file and what was expected."""
from __future__ import annotations

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
