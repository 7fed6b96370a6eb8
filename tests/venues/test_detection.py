"""How a reader is chosen (issue 17): by the columns it declares.

- Every export fixture under tests/ is claimed by exactly one format, so two declarations
  that overlap show up here, when they are written, not in a user's landing folder.
- What a format declares required is what its reader needs: leave out a required column
  and no reader takes the file, the reason naming the column and the nearest layout; leave
  out an optional one and the same reader still reads the file.
- Columns a reader does not read are ignored: with one more column, a file books exactly
  the rows it booked without it.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from utl.ingest import read_source
from utl.summary import unknown_layout_lines
from utl.report.data import QuarantineLine
from utl.venues import all_formats
from utl.venues.base import (
    AMBIGUOUS_FORMAT, UNKNOWN_FORMAT, Columns, Format, Source, head_text, header_at, normal, separator_of,
)

TESTS = Path(__file__).parents[1]
FORMATS = all_formats()
# Files under tests/ that are not venue exports, each with what reads it instead.
NOT_EXPORTS = {
    "derivatives/fixtures": "position snapshots, read by utl.derivatives.snapshots",
    "venues/fixtures/generic/foreign_heads/marks.csv": "a marks file, read by utl.marks",
}
EXPORT_SUFFIXES = (".csv", ".json", ".jsonl", ".xlsx")


def _exports() -> list[Path]:
    paths = [p for p in sorted(TESTS.rglob("*")) if p.is_file() and p.suffix in EXPORT_SUFFIXES]
    return [p for p in paths if not any(p.relative_to(TESTS).as_posix().startswith(k) for k in NOT_EXPORTS)]


EXPORTS = _exports()


@pytest.mark.parametrize("path", EXPORTS, ids=lambda p: p.relative_to(TESTS).as_posix())
def test_every_export_fixture_is_claimed_by_exactly_one_format(path: Path) -> None:
    head = head_text(path)
    assert len([f.name for f in FORMATS if f.claims(head)]) == 1, [f.name for f in FORMATS if f.claims(head)]


# ------------------------------------------------------------------ required and optional columns


def _declared_csv_fixtures() -> list[tuple[Format, Columns, Path]]:
    """(format, the declaration its header holds, fixture) for each CSV fixture of a format
    that names its columns (formats matched whole are left out: they have no optional part)."""
    out = []
    for path in EXPORTS:
        if path.suffix != ".csv":
            continue
        head = head_text(path)
        [fmt] = [f for f in FORMATS if f.claims(head)]
        columns = fmt.declaration(head)
        if columns is not None and not columns.exact:
            out.append((fmt, columns, path))
    return out


DECLARED = _declared_csv_fixtures()


def _rewritten(path: Path, change) -> str:
    """The file's text with ``change(cells)`` applied to its header and every row, the lines
    above the header kept as they are."""
    text = path.read_text(encoding="utf-8-sig")
    line, _ = header_at(text, [c for f in FORMATS for c in f.columns if f.claims(text)])
    lines = text.splitlines(keepends=True)
    above, body = "".join(lines[:line]), "".join(lines[line:])
    sep = separator_of(lines[line])
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n")
    for cells in csv.reader(io.StringIO(body), delimiter=sep):
        writer.writerow(change(cells) if cells else cells)
    return above + out.getvalue()


def _read(tmp: Path, path: Path, text: str):
    """``text`` under the fixture's own file name (Binance reads the zone from it), through ingest."""
    tmp.mkdir(parents=True, exist_ok=True)
    target = tmp / path.name
    target.write_text(text, encoding="utf-8")
    source = Source(target, f"v/a/trades/{path.name}", path.parent.name, "a")
    return read_source(source, FORMATS, ("fills", "ledger", "balances"))


def _position(header: list[str], columns: Columns, name: str) -> int | None:
    cells = columns.cells(header)
    return cells.index(normal(name)) if normal(name) in cells else None


def _cases(kind: str) -> list[tuple[Format, Columns, Path, tuple[str, ...]]]:
    """Per fixture, each optional column it has (``kind="optional"``) or each required entry
    (all its alternatives) and each column another one brings (``kind="required"``)."""
    out = []
    for fmt, columns, path in DECLARED:
        text = path.read_text(encoding="utf-8-sig")
        line, _ = header_at(text, [columns])
        header = next(csv.reader([text.splitlines()[line]], delimiter=separator_of(text.splitlines()[line])))
        if kind == "optional":
            groups = [(c,) for c in columns.optional if _position(header, columns, c) is not None]
        else:
            groups = [(e,) if isinstance(e, str) else tuple(e) for e in columns.required]
            groups += [(c,) for key, extra in columns.needs_with.items() if _position(header, columns, key) is not None
                       for c in extra]
        out += [(fmt, columns, path, g) for g in groups]
    return out


def _drop(text_header: list[str], columns: Columns, names: tuple[str, ...]) -> set[int]:
    return {i for n in names if (i := _position(text_header, columns, n)) is not None}


def _dropping(path: Path, columns: Columns, names: tuple[str, ...]) -> str:
    text = path.read_text(encoding="utf-8-sig")
    line, _ = header_at(text, [columns])
    header_line = text.splitlines()[line]
    header = next(csv.reader([header_line], delimiter=separator_of(header_line)))
    gone = _drop(header, columns, names)
    return _rewritten(path, lambda cells: [c for i, c in enumerate(cells) if i not in gone])


OPTIONAL = _cases("optional")
REQUIRED = _cases("required")


def _id(case) -> str:
    fmt, _, path, names = case
    return f"{path.name}-{'|'.join(names)}"


@pytest.mark.parametrize("case", REQUIRED, ids=[_id(c) for c in REQUIRED])
def test_a_file_without_a_required_column_is_refused_naming_it(case, tmp_path: Path) -> None:
    fmt, columns, path, names = case
    chosen, parsed = _read(tmp_path, path, _dropping(path, columns, names))
    assert chosen is None
    [reason] = parsed.quarantine["reason"].to_list()
    assert reason.startswith(UNKNOWN_FORMAT)
    # The nearest layout is the format's own, and the reason says what it needs.
    assert f"nearest known layout: {fmt.name} (" in reason, reason
    assert f"{fmt.name} needs " in reason and all(f'"{n}"' in reason.split(" needs ")[-1] for n in names), reason


@pytest.mark.parametrize("case", OPTIONAL, ids=[_id(c) for c in OPTIONAL])
def test_a_file_without_an_optional_column_is_still_read_by_its_reader(case, tmp_path: Path) -> None:
    fmt, columns, path, names = case
    _, plain = _read(tmp_path / "plain", path, _rewritten(path, lambda cells: cells))
    chosen, parsed = _read(tmp_path / "without", path, _dropping(path, columns, names))
    whole_file = parsed.quarantine.filter(pl.col("row").is_null())["reason"].to_list()
    assert chosen is not None and chosen.name == fmt.name, whole_file
    # Every row is still booked or refused, none lost for the column left out (which rows
    # pass may change: without Trade ID a Binance fill is keyed by its content instead).
    assert _accounted(parsed) == _accounted(plain)


def _accounted(parsed) -> set[int]:
    return set(parsed.frame["source_row"].to_list()) | set(parsed.quarantine["row"].drop_nulls().to_list())


@pytest.mark.parametrize("case", DECLARED, ids=[p.name for _, _, p in DECLARED])
def test_a_column_the_reader_does_not_read_is_ignored(case, tmp_path: Path) -> None:
    fmt, columns, path = case
    # One more column second in the header and in every row (a user's note, a newer field).
    plain = _rewritten(path, lambda cells: cells)
    rows_seen: list[int] = []

    def widen(cells: list[str]) -> list[str]:
        extra = "x" if rows_seen else "Note to self"  # the header first, then the rows
        rows_seen.append(1)
        return cells[:1] + [extra] + cells[1:]

    wider = _rewritten(path, widen)
    first, read_plain = _read(tmp_path / "plain", path, plain)
    second, read_wider = _read(tmp_path / "wider", path, wider)
    assert first is not None and second is not None and first.name == second.name == fmt.name
    assert_frame_equal(read_wider.frame, read_plain.frame)
    assert read_wider.quarantine["row"].to_list() == read_plain.quarantine["row"].to_list()


# ------------------------------------------------------------------ two claimants


def test_two_real_formats_claiming_one_file_quarantine_it_naming_both(tmp_path: Path) -> None:
    # A UTA asset log (Action) that also carries the pre-UTA Fee Rate and Trade ID columns:
    # the two logs write fee and funding with opposite signs, so either reading is a guess.
    path = tmp_path / "both.csv"
    path.write_text(
        "Time,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,Change,"
        "Wallet Balance,Action,Fee Rate,Trade ID\n"
        "2024-03-05 10:00:00,USDT,ETHUSDT,TRADE,SELL,0.5,0,3500,0,-0.9625,25,24.0375,373.8625,CLOSE,0.00055,T1\n"
    )
    chosen, parsed = read_source(Source(path, "bybit/a/trades/both.csv", "bybit", "a"), FORMATS, ("fills", "ledger"))
    assert chosen is None
    [row] = parsed.quarantine.to_dicts()
    assert row["row"] is None and row["column"] is None
    assert row["reason"].startswith(
        f"{AMBIGUOUS_FORMAT} (bybit.uta_asset_changes and bybit.derivatives_legacy); header seen: \"Time,Currency,")
    # The run summary lists it with the files no reader recognises.
    line = QuarantineLine(file=row["file"], row=None, column=None, reason=row["reason"])
    lines = unknown_layout_lines([line])
    assert lines[0].startswith("unknown layouts: 1 file no single reader takes")
    assert lines[1].startswith("  bybit/a/trades/both.csv: ambiguous format:") and "bybit.derivatives_legacy" in lines[1]
