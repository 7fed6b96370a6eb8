"""``base._read_views``: a regular file's picked columns made without Polars' CSV reader, as
Arrow string views over the mapped file (or over one copy of the long cells), then taken by
Polars as they are. Every column must be exactly what ``pl.read_csv(path, columns=...)`` gives
(same strings, no nulls, same rows), and the pass must give up (None: the caller reads the
file the other way) on every file it does not take: a byte beyond ASCII, ``""`` inside a
quoted cell, a quoted line end, ``\\r`` (CRLF), a blank line, a row of another width."""

from __future__ import annotations

import gc
import re
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utl import arrow_c
from utl.venues import base
from utl.venues.base import Source


@pytest.fixture(autouse=True)
def loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "KERNELS_NEED_NUMBA_LOADED", False)
    base.warm_kernels()
    base._warming[0].join()


def views_rule(body: bytes, sep: bytes, width: int) -> list[list[bytes]] | None:
    """The reference, in plain Python: the rows of cells (a quoted cell without its quotes)
    when the pass takes ``body``, else None. Taken: ASCII, no ``\\r``, at least one line,
    every line (a last one without its line end counting) exactly ``width`` cells split by
    ``sep``, a quoted cell opening at its start and closing right before a separator or the
    line's end, with neither a quote nor a line end inside."""
    if not body or not body.isascii() or b"\r" in body:
        return None
    lines = body.split(b"\n")
    if body.endswith(b"\n"):
        lines.pop()
    cell = re.compile(rb'"([^"]*)"|([^"' + re.escape(sep) + rb"]*)")
    rows = []
    for line in lines:
        if not line:
            return None
        at, cells = 0, []
        while True:
            found = cell.match(line, at)
            cells.append(found.group(1) if found.group(1) is not None else found.group(2))
            at = found.end()
            if at == len(line):
                break
            if line[at : at + 1] != sep:
                return None
            at += 1
        if len(cells) != width:
            return None
        rows.append(cells)
    return rows


def _write(folder: Path, text: bytes) -> Path:
    path = folder / "x.csv"
    path.write_bytes(text)
    return path


def _views_and_polars(path: Path, skip: int, sep: str, picked: list[int]):
    """(the pass's frame or None, Polars' reader's frame of the same columns, the body)."""
    data = path.read_bytes()
    at = 0
    for _ in range(skip):
        at = data.index(b"\n", at) + 1
    header_end = data.index(b"\n", at)
    names = pl.read_csv(data[: header_end + 1], skip_lines=skip, separator=sep, n_rows=0, **base._CSV_OPTIONS).columns
    width = len(names)
    got = base._read_views(path, header_end + 1, sep, width, picked, [names[i] for i in picked])
    expected = pl.read_csv(path, skip_lines=skip, separator=sep, **{**base._CSV_OPTIONS, "columns": [names[i] for i in picked]})
    return got, expected, data[header_end + 1 :], width


GOOD = st.sampled_from([
    "", "1", "12.5", "abc", "abcdefghijkl", "abcdefghijklm", "12345678", "123456789", "2024-03-05 09:15:02 UTC",
    "Bought 3.99000000 SOL for 525.48300000 USD", '"q,r"', '"$1,207.43880000"', '""', '"short"', '"exactly 12 b"',
    '"thirteen byte"', '" "', " padded ", "x\ty", "\x00",
])
BAD = st.sampled_from(['"s ""t"""', '"', 'a"b', '"x"y', "\r", "é", "\u00a0", "\ufeff", '"a\nb"', "a\nb"])
# Mostly cells the pass takes, now and then one it must not.
CELLS = st.one_of(GOOD, GOOD, GOOD, GOOD, GOOD, GOOD, GOOD, GOOD, GOOD, BAD)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=st.integers(2, 5), sep=st.sampled_from([",", ";"]), end=st.sampled_from(["\n", "\n", "", "", "\r\n", "\n\n"]),
       preamble=st.integers(0, 2), filler=st.integers(0, 3), into_file=st.booleans(), data=st.data())
def test_the_views_are_polars_reader_column_for_column(width, sep, end, preamble, filler, into_file, data) -> None:
    """Any file: where the rule takes it, each picked column equals Polars' reader's and the
    rule's cells; elsewhere the pass gives None. Filler rows after the generated ones put
    those cells far from the file's end too (the pass loads them a word at a time there)."""
    if data.draw(st.booleans()):  # a file the pass should take, but for its end
        row = st.lists(GOOD, min_size=width, max_size=width)
    else:
        row = st.one_of(*[st.lists(CELLS, min_size=width, max_size=width)] * 9, st.lists(CELLS, min_size=1, max_size=6))
    rows = data.draw(st.lists(row, min_size=1, max_size=10))
    header = sep.join(f"c{i}" for i in range(width))
    lines = [sep.join(cells) for cells in rows] + [sep.join(["abcdefghijklmnopq"] * width)] * filler
    text = "".join(f"pre {i}\n" for i in range(preamble)) + header + "\n" + "\n".join(lines) + end
    picked = sorted(data.draw(st.sets(st.integers(0, width - 1), min_size=1)))
    old = base.VIEWS_INTO_FILE
    base.VIEWS_INTO_FILE = into_file
    try:
        with tempfile.TemporaryDirectory() as folder:
            got, expected, body, _ = _views_and_polars(_write(Path(folder), text.encode("utf-8")), preamble, sep, picked)
    except pl.exceptions.ComputeError:  # Polars cannot read it at all: the pass must not have
        base.VIEWS_INTO_FILE = old
        with tempfile.TemporaryDirectory() as folder:
            path = _write(Path(folder), text.encode("utf-8"))
            start = len("".join(f"pre {i}\n" for i in range(preamble))) + len(header) + 1
            assert base._read_views(path, start, sep, width, picked, [f"c{i}" for i in picked]) is None
        return
    finally:
        base.VIEWS_INTO_FILE = old
    rule = views_rule(body, sep.encode(), width)
    if rule is None:
        assert got is None
        return
    assert got is not None
    assert got.equals(expected) and got.schema == expected.schema
    for k, i in enumerate(picked):
        assert got.to_series(k).to_list() == [r[i].decode() for r in rule]
        assert got.to_series(k).null_count() == 0


@pytest.mark.parametrize("into_file", [True, False])
@pytest.mark.parametrize("text", [
    'a,b,c\n1,,x\n,2,\n"","q",""\n1,2,',  # empty cells, quoted empty cells, a last cell empty at the file's end
    'a,b,c\n"x,y","",3',  # commas inside quotes, no final line end
    "a,b,c\n" + "".join(f"{'x' * n},{'y' * (13 - n)},\"{'z' * n}\"\n" for n in range(26)),  # 0..25 bytes, by the 12-byte edge
    "a;b\n1,5;2\n3;4\n",
])
def test_shapes_read_as_polars(text: str, into_file: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "VIEWS_INTO_FILE", into_file)
    sep = ";" if text.startswith("a;") else ","
    width = text.split("\n")[0].count(sep) + 1
    for picked in ([0], [width - 1], list(range(width))):
        got, expected, _, _ = _views_and_polars(_write(tmp_path, text.encode()), 0, sep, picked)
        assert got is not None
        assert got.equals(expected) and got.schema == expected.schema
        assert got.null_count().sum_horizontal().item() == 0


@pytest.mark.parametrize("text", [
    'a,b\n1,2\r\n3,4\r\n',  # CRLF
    'a,b\n1,"x ""y"""\n',  # an escaped quote: left to Polars' reader
    'a,b\n1,"x\ny"\n',  # a quoted line end
    "a,b\n1,\u00e9\n",  # a byte beyond ASCII
    "a,b\n1,2\n\n3,4\n",  # a blank line
    "a,b\n1,2\n3\n",  # a short row
    "a,b\n1,2,3\n",  # a long row
    'a,b\n1,x"y\n',  # a quote inside a cell
    'a,b\n1,"x"y\n',  # text after a closing quote
    'a,b\n1,"xy\n',  # a quote never closed
    "a,b\n",  # no rows
])
def test_the_pass_gives_up_where_it_must(text: str, tmp_path: Path) -> None:
    path = _write(tmp_path, text.encode())
    start = text.index("\n") + 1
    assert base._read_views(path, start, ",", 2, [0, 1], ["a", "b"]) is None


def test_through_read_csv_columns_the_same_as_the_old_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """read_csv_columns over a larger file: the views' frame equals the one Polars' reader
    made before (the pass stubbed out), and the views were taken."""
    body = "".join(f'{i},2024-03-01 00:00:{i % 60:02d} UTC,"${i},{i % 1000:03d}.5",Bought {i} SOL for {i}.5 USD,\n' for i in range(5000))
    path = _write(tmp_path, ("title\n\nID,Time,Total,Notes,Empty\n" + body).encode())
    source = Source(path=path, rel="x.csv", venue="v", account="a")
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    pick = lambda header: ["Notes", "ID", "Total", "Empty"]  # noqa: E731
    calls = []
    real = base._read_views
    monkeypatch.setattr(base, "_read_views", lambda *a: calls.append(1) or real(*a))
    got = base.read_csv_columns(source, pick, 2)
    assert calls and base._read_views(path, len("title\n\nID,Time,Total,Notes,Empty\n"), ",", 5, [0, 2, 3, 4],
                                      ["ID", "Total", "Notes", "Empty"]) is not None
    monkeypatch.setattr(base, "_read_views", lambda *a: None)
    expected = base.read_csv_columns(source, pick, 2)
    assert got[0].equals(expected[0]) and got[0].schema == expected[0].schema
    assert got[1].equals(expected[1]) and got[2] == expected[2]
    assert got[0].columns == ["source_row", "Notes", "ID", "Total", "Empty"]


def test_the_mapping_lives_while_a_column_views_it(tmp_path: Path) -> None:
    """The columns outlive the read: a slice of one, kept after the frame is gone, still reads
    the file's bytes; once Polars lets go of every column, nothing is held."""
    gc.collect()
    held = len(arrow_c._LENT)
    text = "a,b\n" + "".join(f"row number {i:06d} of the file,{i}\n" for i in range(1000))
    path = _write(tmp_path, text.encode())
    frame = base._read_views(path, 4, ",", 2, [0, 1], ["a", "b"])
    assert frame is not None and len(arrow_c._LENT) == held + 2
    tail = frame["a"].slice(990, 3).filter(pl.Series([True, False, True]))
    del frame
    gc.collect()
    assert len(arrow_c._LENT) == held + 1  # column b released; a lives on in the slice
    assert tail.to_list() == ["row number 000990 of the file", "row number 000992 of the file"]
    del tail
    gc.collect()
    assert len(arrow_c._LENT) == held


def test_another_polars_version_reads_the_other_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(arrow_c, "SPOKEN", False)
    path = _write(tmp_path, b"a,b\n1,2\n")
    assert base._read_views(path, 4, ",", 2, [0, 1], ["a", "b"]) is None
    assert arrow_c.strings_from_views(np.zeros((1, 16), dtype=np.uint8), np.zeros(1, dtype=np.uint8), 1, None) is None


@pytest.mark.parametrize("head", ["a,b,c", " a , b ,c", "a,a,b", "x,y,z "])
def test_whole_files_read_as_polars_read_them(head: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """_read_regular (every column): the views' frame equals the one Polars' reader made
    (the pass stubbed out), names stripped and repeated names as Polars names them."""
    body = "".join(f'{i}, two {i} ,"three, {i:020d}"\n' for i in range(3000))
    path = _write(tmp_path, f"{head}\n{body}".encode())
    source = Source(path=path, rel="x.csv", venue="v", account="a")
    got = base._read_regular(source, 0)
    monkeypatch.setattr(base, "_read_views", lambda *a: None)
    expected = base._read_regular(source, 0)
    assert got is not None and expected is not None
    assert got.equals(expected) and got.schema == expected.schema and got.columns == expected.columns
