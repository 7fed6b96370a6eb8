"""A large CSV read without numba loaded (``base._read_regular_counted``): Polars reads the
file itself and numpy checks that its rows are the file's lines. It must give what the careful
way gives (the file copied with a marker cell per line) for every file it takes, and leave to
the careful way every file it cannot vouch for."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utl.venues import base
from utl.venues.base import Source

from test_csv_kernels import REGULAR


def _read(source: Source, skip: int, optional_last: bool) -> tuple[pl.DataFrame, pl.DataFrame] | str:
    try:
        return base._read_csv_rows(source, skip, optional_last)
    except Exception as e:  # a file refused whole: the same error either way
        return f"{type(e).__name__}: {e}"


def _both_ways(path: Path, skip: int, optional_last: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object, bool]:
    """(careful, counted, whether the counted path took the file)."""
    source = Source(path=path, rel=path.name, venue="v", account="a")
    monkeypatch.setattr(base, "kernels_for", lambda rows: False)  # as where numba is not loaded
    monkeypatch.setattr(base, "KERNEL_BYTES", 10**12)
    careful = _read(source, skip, optional_last)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    taken = base._read_regular_counted(source, skip) is not None
    return careful, _read(source, skip, optional_last), taken


def _same(careful: object, counted: object) -> None:
    if isinstance(careful, str):
        assert counted == careful
    else:
        assert not isinstance(counted, str), counted
        assert counted[0].equals(careful[0]) and counted[0].schema == careful[0].schema
        assert counted[1].equals(careful[1])


# A quote inside a quoted cell (``""``), which the compiled check takes: the counted path
# leaves it to the careful way.
ESCAPED_QUOTE = '"a","b"\n"x,1","y ""q"""\n"",\n'


@pytest.mark.parametrize(("text", "regular"), REGULAR)
def test_each_odd_shape_reads_as_the_careful_way(text: str, regular: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode("utf-8"))
    careful, counted, taken = _both_ways(path, 2 if "amble" in text else 0, "c" in text.split("\n", 1)[0], monkeypatch)
    assert taken == (regular and text != ESCAPED_QUOTE)
    _same(careful, counted)


def test_a_short_row_among_full_ones_is_refused_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n" + "1,2,3\n" * 50 + "4,5\n" + "6,7,\n" + "8,9,10")
    careful, counted, taken = _both_ways(path, 0, False, monkeypatch)
    assert not taken
    _same(careful, counted)
    assert counted[1]["row"].to_list() == [51]


def test_rows_whose_last_cell_is_empty_are_taken_when_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_text('a,b,c\n1,2,3\n4,5,\n"6,x",7,""\n8,9,10')
    careful, counted, taken = _both_ways(path, 0, False, monkeypatch)
    assert taken
    _same(careful, counted)
    assert counted[0]["c"].to_list() == ["3", "", "", "10"]


def test_too_many_rows_with_an_empty_last_cell_go_the_careful_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n" + "1,\n" * (base._SUSPECT_ROWS + 1))
    careful, counted, taken = _both_ways(path, 0, False, monkeypatch)
    assert not taken
    _same(careful, counted)


@pytest.mark.parametrize("header", ['"c0","c1","c2","c3"', "c0,c1,c2,c3"])
def test_a_last_line_with_an_empty_cell_too_many_and_no_line_end_is_refused(header: str, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # Found by the property test below: Polars reads ";,1,1,1," at the file's end as four cells.
    path = tmp_path / "x.csv"
    path.write_text(header + "\n1,2,3,4\n;,1,1,1,")
    careful, counted, taken = _both_ways(path, 0, False, monkeypatch)
    assert not taken
    _same(careful, counted)
    assert counted[1]["row"].to_list() == [2] and counted[0].height == 1


PLAIN = st.sampled_from(["1", "x", "", "2.5BTC", '"a,b"', '"q ""r"""', "é", " y "])
ODD = st.sampled_from(['"', '"q"x', '"x" ', 'x"y', '"l\nm"', "\ufeff", "\r", ";", ",", "\n", "   "])
CELL = st.integers(0, 29).flatmap(lambda n: ODD if n == 0 else PLAIN)  # one cell in 30 odd


@st.composite
def texts(draw: st.DrawFn) -> tuple[str, int, bool]:
    """A header, then rows mostly of its width and plain cells, some odd: a cell short or
    long, quotes, BOMs, blanks, separators and line ends inside cells; and the skip_lines
    and optional_last to read it with."""
    sep = draw(st.sampled_from([",", ";"]))
    width = draw(st.integers(2, 4))
    preamble = draw(st.sampled_from(["", "pre\namble\n"]))
    header = sep.join(draw(st.sampled_from(['"c{}"', "c{}"])).format(i) for i in range(width))
    ragged = draw(st.integers(0, 3)) == 0
    rows = draw(st.lists(st.integers(width - 1, width + 1) if ragged else st.just(width), max_size=12))
    lines = [sep.join(draw(st.lists(CELL, min_size=n, max_size=n))) for n in rows]
    end = draw(st.sampled_from(["\n", ""]))
    return preamble + header + "\n" + "\n".join(lines) + end, 2 if preamble else 0, draw(st.booleans())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=texts())
def test_any_small_text_reads_as_the_careful_way(case: tuple[str, int, bool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text, skip, optional_last = case
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode("utf-8"))
    careful, counted, _ = _both_ways(path, skip, optional_last, monkeypatch)
    _same(careful, counted)


def _fixtures() -> list[tuple[str, Path]]:
    from utl.venues import all_formats

    from fixture_files import fixture_heads

    return [(f.name, path) for path, head in fixture_heads() for f in all_formats() if f.columns and f.claims(head)]


@pytest.mark.parametrize(("name", "path"), _fixtures(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_every_csv_fixture_reads_the_same_counted(name: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each venue's fixture, read by its format where numba is not loaded, as a large file
    (the counted read) and as a small one (the careful way): the same rows and refusals."""
    from utl.venues import all_formats

    (fmt,) = [f for f in all_formats() if f.name == name]

    def read() -> tuple[pl.DataFrame, pl.DataFrame] | str:
        try:
            parsed = fmt.read(Source(path=path, rel=path.name, venue="v", account="a"))
        except Exception as e:  # a file refused whole: the same error either way
            return f"{type(e).__name__}: {e}"
        return parsed.frame, parsed.quarantine

    monkeypatch.setattr(base, "kernels_for", lambda rows: False)
    monkeypatch.setattr(base, "KERNEL_BYTES", 10**12)
    careful = read()
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    _same(careful, read())
