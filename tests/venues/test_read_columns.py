"""``base.read_csv_columns``: a reader's columns only, read by Polars alone where the file is
regular and the kernels are loaded (``base._read_regular_picked``). It must give exactly
``read_csv_rows`` then a select (the same values, rows, refusals and errors) for every file,
whichever path reads it; the readers that use it (Deribit's log) give the same output both ways."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from utl.venues import all_formats, base
from utl.venues.base import Columns, Source

from odd_files import odd_file
from test_csv_kernels import REGULAR


@pytest.fixture(autouse=True)
def loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "KERNELS_NEED_NUMBA_LOADED", False)
    base.warm_kernels()
    base._warming[0].join()


def _outcome(read) -> object:
    try:
        return read()
    except Exception as e:  # a file refused whole: the same error either way
        return f"{type(e).__name__}: {e}"


def _both_ways(source: Source, skip: int, pick, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object, bool]:
    """(read_csv_rows then select, read_csv_columns, whether Polars read the picked columns alone)."""
    def plain():
        frame, refused = base.read_csv_rows(source, skip)
        header = tuple(frame.columns[1:])
        return frame.select("source_row", *pick(header)), refused, header

    monkeypatch.setattr(base, "KERNEL_BYTES", 10**12)  # the careful way
    expected = _outcome(plain)
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    taken = base._read_regular_picked(source, skip, pick) is not None
    return expected, _outcome(lambda: base.read_csv_columns(source, pick, skip)), taken


def _same(expected: object, got: object) -> None:
    if isinstance(expected, str):
        assert got == expected
        return
    assert not isinstance(got, str), got
    assert got[0].equals(expected[0]) and got[0].schema == expected[0].schema
    assert got[1].equals(expected[1])
    assert got[2] == expected[2]


PICKS = {
    "all": lambda header: list(header),
    "first": lambda header: list(header[:1]),
    "last, then first": lambda header: [*header[-1:], *header[:1]],
    "none": lambda header: [],
}


@pytest.mark.parametrize("pick", list(PICKS))
@pytest.mark.parametrize(("text", "regular"), REGULAR)
def test_each_odd_shape_reads_as_read_csv_rows_then_a_select(text: str, regular: bool, pick: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode("utf-8"))
    source = Source(path=path, rel="x.csv", venue="v", account="a")
    skip = 2 if "amble" in text else 0
    expected, got, taken = _both_ways(source, skip, PICKS[pick], monkeypatch)
    # Polars reads a column it leaves out without checking its UTF-8: only files whose rows are
    # ASCII are taken; and Polars reads no columns as every column, so a pick of none reads whole.
    rows = text.split("\n", skip + 1)[-1]
    assert taken == (regular and rows.isascii() and pick != "none")
    _same(expected, got)


@pytest.mark.parametrize("body", ["1,x\xe9,3\n4,5,6\n", "1,2,3\n4,5,\xe9\n"])
def test_a_byte_beyond_ascii_in_a_column_left_out_sends_the_file_the_whole_way(body: str, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(("a,b,c\n" + body).encode("utf-8"))
    source = Source(path=path, rel="x.csv", venue="v", account="a")
    expected, got, taken = _both_ways(source, 0, lambda header: ["a"], monkeypatch)
    assert not taken
    _same(expected, got)
    assert got[0]["a"].to_list() == ["1", "4"]


def test_bad_utf8_in_a_column_left_out_fails_the_file_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"a,b,c\n1,2,3\n4,\xff\xfe,6\n")
    source = Source(path=path, rel="x.csv", venue="v", account="a")
    expected, got, taken = _both_ways(source, 0, lambda header: ["a", "c"], monkeypatch)
    assert not taken and isinstance(expected, str) and "UTF-8" in expected
    _same(expected, got)


def test_a_claimed_header_is_picked_by_its_declared_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Declared names in another case and with blanks; an undeclared column is left out before
    # pick sees the header, as read_csv_rows leaves it out.
    path = tmp_path / "x.csv"
    path.write_text("pre\n TIME ,extra,Amount,fee\n" + "".join(f"2024-01-0{i % 9 + 1},e{i},{i}.5,{i}\n" for i in range(40)))
    declared = Columns(required=("Time", "Amount"), optional=("Fee",), preamble=1)
    source = Source(path=path, rel="x.csv", venue="v", account="a", header=declared)
    expected, got, taken = _both_ways(source, 1, lambda header: [c for c in header if c != "Time"], monkeypatch)
    assert taken
    _same(expected, got)
    assert got[2] == ("Time", "Amount", "Fee") and got[0].columns == ["source_row", "Amount", "Fee"]


@pytest.mark.parametrize("pick", [lambda header: ["missing"], lambda header: ["a", "a"]])
def test_a_pick_naming_no_column_or_one_twice_fails_as_the_select_would(pick, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    source = Source(path=path, rel="x.csv", venue="v", account="a")
    expected, got, taken = _both_ways(source, 0, pick, monkeypatch)
    assert not taken and isinstance(expected, str)
    _same(expected, got)


def _regular_odd_file(folder: Path, name: str, seed: int, ascii_only: bool) -> Path:
    """The seeded odd file (odd_files.py) without its short and long rows: a regular file, which
    the kernels' read takes, its cells still odd (blanks, junk, exponents, quoted commas...)."""
    path = odd_file(folder, name, seed)
    text = path.read_text(encoding="utf-8")
    if ascii_only:
        text = text.replace("\u00a0", " ")
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if line.count(",") >= 10)  # the header
    width = len(next(csv.reader([lines[start]])))
    body = [line for line in lines[start + 1 :] if line and len(next(csv.reader([line]))) == width]
    path.write_bytes("\n".join([*lines[: start + 1], *body, ""]).encode("utf-8"))
    return path


@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("name", ["deribit.transaction_log", "bybit.uta_asset_changes", "bybit.derivatives_legacy"])
def test_the_readers_give_the_same_when_polars_reads_the_file_itself(name: str, seed: int, ascii_only: bool, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pass compiled or not, the file read by Polars or the careful way (and Deribit's
    columns alone where its rows are ASCII): the same rows, refusals, fills and cash."""
    path = _regular_odd_file(tmp_path, name, seed, ascii_only)
    (fmt,) = [f for f in all_formats() if f.name == name]
    source = Source(path=path, rel=path.name, venue="v", account="a")

    def read():
        parsed = fmt.read(source)
        return [parsed.frame, parsed.quarantine, parsed.derivative_fills, parsed.derivative_cash]

    monkeypatch.setattr(base, "KERNEL_BYTES", 10**12)
    monkeypatch.setattr(base, "KERNEL_ROWS", 10**9)
    expected = read()
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    from utl.venues import bybit, deribit

    if name.startswith("deribit"):
        assert (base._read_regular_picked(source, 0, deribit._read_columns) is not None) == ascii_only
    else:
        assert base._read_regular(source, bybit.preamble_lines(base.head_text(path))) is not None
    got = read()
    assert expected[1].height > 20 and expected[0].height > 1000  # odd cells refused, the rest booked
    for e, g in zip(expected, got):
        assert_frame_equal(g, e, check_exact=True)
