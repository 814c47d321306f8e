"""A sweep's CSV read back a chunk at a time gives what reading every row at once gave; bad files are clear errors."""
import csv
import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costmodel.sweeps import csv_table
from costmodel.sweeps.grid import SweepError
from costmodel.sweeps.sweep import read_table


def _every_row_at_once(text: str) -> dict:
    """The rule, row by row: a column of floats where every cell is float()-able, empty or 'nan' (NaN), else text."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], [r for r in rows[1:] if r]
    cols = {}
    for j, k in enumerate(header):
        vals = [r[j] for r in body]
        try:
            cols[k] = np.array([float(v) if v not in ("", "nan") else math.nan for v in vals])
        except ValueError:
            cols[k] = np.array(vals)
    return cols


CELLS = st.sampled_from(["", "nan", "1.5", "-0.0", "1e-300", "inf", "3", " 2", "1_0", "h100", "a,b", 'say "hi"',
                         "line\nbreak", "NaN", "x"])


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 4), body=st.lists(st.lists(CELLS, min_size=4, max_size=4), min_size=1, max_size=40),
       numeric_cols=st.lists(st.integers(0, 3), max_size=3), chunk=st.integers(1, 7))
def test_chunks_give_every_row_at_once(tmp_path_factory, k, body, numeric_cols, chunk):
    """Drawn cells (numbers, empty, nan, text with commas, quotes and newlines), columns mostly numbers with text
    late, read in chunks of 1-7 rows: the same columns, dtypes and bits as the rows read whole."""
    rows = [r[:k] for r in body]
    for j in numeric_cols:  # a column of numbers but perhaps its last cell, so text comes after chunks of numbers
        if j < k:
            for r in rows[:-1]:
                r[j] = str(float(len(r[j])))
    buf = io.StringIO()
    csv.writer(buf).writerows([[f"c{j}" for j in range(k)]] + rows)
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text(buf.getvalue(), encoding="utf-8", newline="")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(csv_table, "CHUNK_ROWS", chunk)
        got, want = read_table(str(path)), _every_row_at_once(buf.getvalue())
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype
        if want[key].dtype.kind == "f":
            assert np.array_equal(got[key].view(np.uint64), want[key].view(np.uint64))
        else:
            assert np.array_equal(got[key], want[key])


def test_text_after_empty_chunks_and_after_numbers(tmp_path, monkeypatch):
    """A column empty for its first chunks and text later is text, its empty cells ''; one of numbers and text later
    is read again as text, each cell as written ('1.50' stays '1.50')."""
    monkeypatch.setattr(csv_table, "CHUNK_ROWS", 2)
    path = tmp_path / "t.csv"
    path.write_text("reason,x,n\n,1.50,1\n,2,2\n,3,3\nno fit,oops,4\n", encoding="utf-8")
    got = read_table(str(path))
    assert got["reason"].tolist() == ["", "", "", "no fit"]
    assert got["x"].tolist() == ["1.50", "2", "3", "oops"]
    assert got["n"].tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("content, match", [
    ("a,b\n1,2\n3\n", "row 3 has 1 fields; expected 2"),
    ("a,b\n1,2,3\n", "row 2 has 3 fields; expected 2"),
    ("a,b\n", "no rows"),
    ("", "no rows"),
    ('a,b\n"1,2\n', "row 2 has 1 fields"),  # a quote left open takes the rest of the file
    ("a\n" + "x" * 200_000 + "\n", "malformed CSV"),  # past the csv module's field limit
])
def test_bad_csv_files_are_clear_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SweepError, match=match):
        read_table(str(path))


def test_unreadable_binary_large_and_non_utf8_files(tmp_path, monkeypatch):
    with pytest.raises(SweepError, match="cannot read"):
        read_table(str(tmp_path / "missing.csv"))
    with pytest.raises(SweepError, match="is a folder"):
        (tmp_path / "dir.csv").mkdir()
        read_table(str(tmp_path / "dir.csv"))
    (tmp_path / "nul.csv").write_bytes(b"a,b\n1,\x00\n")
    with pytest.raises(SweepError, match="binary data"):
        read_table(str(tmp_path / "nul.csv"))
    (tmp_path / "latin.csv").write_bytes(b"a,b\ncaf\xe9,1\n")
    with pytest.raises(SweepError, match="not UTF-8 text"):
        read_table(str(tmp_path / "latin.csv"))
    (tmp_path / "big.csv").write_text("a\n" + "1\n" * 100, encoding="utf-8")
    monkeypatch.setattr(csv_table, "MAX_CSV_BYTES", 100)
    with pytest.raises(SweepError, match=r"too large for a CSV sweep file .*\.parquet"):
        read_table(str(tmp_path / "big.csv"))


def test_blank_lines_and_a_byte_order_mark(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffa,b\n1,x\n\n2,y\n".encode("utf-8"))
    got = read_table(str(path))
    assert got["a"].tolist() == [1.0, 2.0] and got["b"].tolist() == ["x", "y"]
