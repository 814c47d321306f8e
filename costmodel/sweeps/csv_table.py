"""A sweep's CSV file read back as columns, a chunk of rows at a time: memory for the columns, not for every
cell as a Python string (reading every row at once took 436 MB for a 33 MB file of 124,416 rows; this, 174 MB).

A column is numbers where every cell parses as a float (Python's float(), "nan" included) or is empty (NaN: what the
sweep's writer writes for NaN); otherwise it is text, every cell as written. A column found to be text after chunks
of numbers is read again as text, unless those chunks held only empty cells.
"""
from __future__ import annotations

import csv
import io
import math
from itertools import islice
from pathlib import Path

import numpy as np

from costmodel.spec.files import open_checked

CHUNK_ROWS = 16_384  # rows parsed at a time (a design choice: memory per chunk against numpy's calls per chunk)
MAX_CSV_BYTES = 512 << 20  # 512 MiB: about 2 x 10^6 rows of a sweep; Parquet beyond (no limit there)
WHAT = "a sweep file (.csv written by 'costmodel sweep --out' or .parquet)"


class _Text(Exception):
    """A column turned out to be text after chunks of numbers: read the file again with it as text."""

    def __init__(self, column: int):
        super().__init__(column)
        self.column = column


def read_csv_columns(path, error: type) -> dict:
    """The CSV file's columns as numpy arrays (float64, or text), by its header's names (a repeated name: the
    last column of it). `error`: the exception raised, with the file's name and what is wrong, for a missing,
    unreadable, binary, non-UTF-8, malformed or ragged file, or one without rows."""
    p = Path(path).expanduser()
    text_columns: set = set()
    while True:
        try:
            return _columns(p, text_columns, error)
        except _Text as again:
            text_columns.add(again.column)


def _columns(p: Path, text_columns: set, error: type) -> dict:
    with open_checked(p, WHAT, error, MAX_CSV_BYTES, "a CSV sweep file",
                      "; write the sweep as .parquet (costmodel sweep --out FILE.parquet)") as f:
        reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8-sig", newline=""))
        try:
            header = next(reader, None)
            if header is None:
                raise error(f"{p}: no rows")
            parts: list = [[] for _ in header]
            blank = [True] * len(header)  # every cell so far empty: chunks of numbers that text can replace
            line = 1
            while rows := [r for r in islice(reader, CHUNK_ROWS) if r]:  # blank lines skipped
                ragged = next((i for i, r in enumerate(rows) if len(r) != len(header)), None)
                if ragged is not None:
                    raise error(f"{p}: row {line + ragged + 1} has {len(rows[ragged])} fields; expected "
                                f"{len(header)}, as the header")
                line += len(rows)
                for j, cells in enumerate(zip(*rows)):
                    parts[j].append(_chunk(cells, j, text_columns, parts[j], blank))
        except csv.Error as exc:
            raise error(f"{p}: malformed CSV ({exc})") from None
        except UnicodeDecodeError as exc:
            raise error(f"{p}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); expected {WHAT} saved as "
                        "UTF-8") from None
    if line == 1:
        raise error(f"{p}: no rows")
    return {k: np.concatenate(parts[j]) for j, k in enumerate(header)}


def _chunk(cells: tuple, j: int, text_columns: set, done: list, blank: list) -> np.ndarray:
    """A chunk of column j as numbers, or as its text where the column is text (in `text_columns`, or a cell here is
    not a number: the chunks `done` before it then become empty text where every cell so far was empty, `blank`,
    and the column text from here on; else _Text, to read the file again). numpy parses a chunk of numbers alone
    (float() of each cell, twice as fast as a list of them); one with empty cells goes cell by cell."""
    if j in text_columns:
        return np.array(cells)
    try:
        numbers = np.array(cells, dtype=float)
    except ValueError:
        try:
            numbers = np.array([math.nan if v == "" else float(v) for v in cells])
        except ValueError:
            if not blank[j]:
                raise _Text(j) from None
            done[:] = [np.full(len(x), "") for x in done]
            text_columns.add(j)
            return np.array(cells)
    blank[j] = blank[j] and all(v == "" for v in cells)
    return numbers
