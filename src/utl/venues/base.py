"""What every venue reader shares: a source file, its text table, its refused rows.

A *format* is one export layout (Binance Spot Trade History, Kraken Ledgers, ...). It says
whether a file is its own from the file's first bytes (:meth:`Format.detect`), never from
the file's name, and reads the file into one of the raw canonical frames of
:mod:`utl.schemas` plus the rows it refused. Readers read every cell as text
(:func:`read_csv_rows`: no type inference, no float) and parse numbers with
:func:`utl.decimals.with_venue_decimals`.

The helpers below are the one implementation each reader uses: reading a CSV and refusing
its ragged rows, ids for rows without one, codes glued to numbers, time text of known
shapes, per-row checks, and putting a row's movements in file order. They are written for
a million rows a second: each step is one pass of Polars over a column, costly steps run
only on the cells that need them, and values of a few distinct keys (pairs, operation
types) are worked out once per key (:func:`per_distinct`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import functools
import io
import json
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np
import polars as pl

from utl.errors import QUARANTINE_SCHEMA, empty_quarantine

Kind = Literal["fills", "ledger", "balances"]
HEAD_BYTES = 8192
BOM = "\ufeff"


@dataclass(frozen=True)
class Source:
    """A file in the landing folder and the (venue, account) folder it sits in."""

    path: Path
    rel: str  # path relative to the landing folder: what quarantine rows name
    venue: str
    account: str
    # utl.toml [pairs]: glued symbols split as the user says, whatever the known quotes suggest.
    pairs: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # utl.toml [timezones] "venue/account": the zone of an export that does not state its own.
    timezone: str | None = None
    # The columns the file was claimed by (set by ingest): read_csv_rows names its columns
    # as declared and leaves out the ones the format does not read.
    header: Columns | None = None


@dataclass(frozen=True)
class Parsed:
    """A reader's result: the booked rows and the refused ones (never dropped)."""

    frame: pl.DataFrame
    quarantine: pl.DataFrame
    # The export's derivative rows (utl.venues.contracts): DERIVATIVE_FILLS and DERIVATIVE_CASH,
    # asset codes as written; None where the export has none.
    derivative_fills: pl.DataFrame | None = None
    derivative_cash: pl.DataFrame | None = None


@dataclass(frozen=True)
class Layout:
    """One version of a CSV export's header, as the venue published it.

    A version is known by its *fingerprint*: a hash of its cells compared as
    :func:`normal` compares them (case, blanks, quotes and BOMs ignored), so the same header
    re-saved in another case has the same fingerprint. Every version has a fixture under
    ``tests/venues/fixtures/<venue>/`` with that header (tests/venues/test_layouts.py).
    """

    version: str  # "2017", "current", ...
    columns: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        return header_fingerprint(self.columns)


@dataclass(frozen=True)
class Columns:
    """The columns a CSV format reads: how a reader is chosen (see :meth:`Format.claims`).

    A header (cells compared by :func:`normal`, through ``localized``) is claimed when it
    holds every ``required`` column; a tuple among them is alternatives, any one of which
    will do (``("Time", "Date(UTC)")``). ``optional`` columns are read when present and read
    as empty when absent; ``needs_with`` lists columns that, when present, bring others the
    reader then needs (Binance futures: a ``Trade ID`` comes with ``Maker`` and ``Order ID``).
    Any other column is ignored. ``exact``: the reader maps cells by position (OKX repeats
    ``Unit``, Deribit checks its whole header), so the header must be ``required`` exactly.
    ``preamble``: how many lines may come before the header (Bybit's ``UID:`` line).
    """

    required: tuple[str | tuple[str, ...], ...]
    optional: tuple[str, ...] = ()
    needs_with: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    localized: Mapping[str, str] = field(default_factory=dict)  # user's interface language -> column
    preamble: int = 0
    exact: bool = False
    # holds() per header already asked: every format is asked about every file's header,
    # and a landing's files share a few headers.
    _held: dict[tuple[str, ...], bool] = field(default_factory=dict, init=False, repr=False, compare=False)

    def names(self) -> tuple[str, ...]:
        """Every declared column, in its canonical spelling."""
        out: list[str] = []
        for entry in self.required:
            out.extend((entry,) if isinstance(entry, str) else entry)
        out.extend(self.optional)
        for extra in self.needs_with.values():
            out.extend(extra)
        return tuple(dict.fromkeys(out))

    def cells(self, header: Sequence[str]) -> list[str]:
        """Header cells as matched: :func:`normal`, a localized name as its English column."""
        local = {normal(k): normal(v) for k, v in self.localized.items()}
        return [local.get(normal(c), normal(c)) for c in header]

    def missing(self, header: Sequence[str]) -> tuple[str, ...]:
        """The required columns ``header`` lacks (alternatives written ``"a" or "b"``)."""
        have = set(self.cells(header))
        out = []
        for entry in self.required:
            options = (entry,) if isinstance(entry, str) else entry
            if not any(normal(o) in have for o in options):
                out.append(" or ".join(f'"{o}"' for o in options))
        for column, extra in self.needs_with.items():
            if normal(column) in have:
                out.extend(f'"{e}"' for e in extra if normal(e) not in have)
        return tuple(out)

    def holds(self, header: Sequence[str]) -> bool:
        key = tuple(header)
        held = self._held.get(key)
        if held is None:
            if len(self._held) >= 4096:
                self._held.clear()
            held = self._held[key] = self._holds(key)
        return held

    def _holds(self, header: Sequence[str]) -> bool:
        cells = self.cells(header)
        if self.exact:
            return cells == [normal(c) for c in self.required if isinstance(c, str)]
        declared = [c for c in cells if c in {normal(n) for n in self.names()}]
        # A declared column written twice: which cell is the value cannot be told.
        return not self.missing(header) and len(set(declared)) == len(declared)


def header_at(head: str, declarations: Sequence[Columns]) -> tuple[int, Columns] | None:
    """(line, declaration) of the first header line in ``head`` that one of ``declarations``
    holds, looking as far below the top as the declaration allows; None when none does."""
    lines = _lines(head)
    for columns in declarations:
        for number in range(min(columns.preamble + 1, len(lines))):
            cells = _header_line(lines[number])
            if cells and columns.holds(cells):
                return number, columns
    return None


@functools.lru_cache(maxsize=64)
def _lines(head: str) -> tuple[str, ...]:
    """``head.splitlines()``, once per file head (every format looks at the same head)."""
    return tuple(head.splitlines())


@functools.lru_cache(maxsize=4096)
def _header_line(line: str) -> tuple[str, ...]:
    """:func:`header_cells` of a line, without the empty cells some writers end it with."""
    cells = header_cells(line)
    while cells and cells[-1] == "":  # some writers end every line with a comma
        cells.pop()
    return tuple(cells)


def conform(frame: pl.DataFrame, columns: Columns) -> pl.DataFrame:
    """Rows of a claimed file with the declared columns only, named as declared (case,
    blanks, BOMs and the user's language aside); other columns are left out."""
    if columns.exact:
        # Matched whole, cell by cell: each cell takes its declared spelling, except where
        # that spelling repeats (OKX's two ``Unit``), which the reader maps by position.
        declared = [c for c in columns.required if isinstance(c, str)]
        names = [c for c in frame.columns if c != "source_row"]
        repeated = {d for d in declared if declared.count(d) > 1}
        rename = {c: d for c, d in zip(names, declared) if d and c != d and d not in repeated and d not in names}
        return frame.rename(rename) if rename else frame
    canonical = {normal(n): n for n in columns.names()}
    canonical.update({normal(k): v for k, v in columns.localized.items()})
    keep: dict[str, str] = {}
    for c in frame.columns:
        name = canonical.get(normal(c))
        if c == "source_row" or (name is not None and name not in keep.values()):
            keep[c] = "source_row" if c == "source_row" else name
    return frame.select(list(keep)).rename({k: v for k, v in keep.items() if k != v})


@dataclass(frozen=True)
class Format:
    name: str  # "binance.spot_trades"
    kind: Kind
    # JSON formats: given the head of the file as text (BOM stripped), whether it is theirs.
    # CSV formats declare ``columns`` instead and leave this None.
    detect: Callable[[str], bool] | None
    read: Callable[[Source], Parsed]
    # The header versions this format reads (CSV formats; JSON formats have none): what an
    # unknown file is compared with to name its nearest known layout.
    layouts: tuple[Layout, ...] = ()
    # False where the export does not say which asset a fee was charged in and the reader
    # assumes one (Kraken's trades export): its fills are flagged fee_asset_assumed.
    fee_asset_stated: bool = True
    # CSV formats: the columns each header version needs (usually one declaration).
    columns: tuple[Columns, ...] = ()

    def __post_init__(self) -> None:
        if self.detect is None:  # a CSV format: detect is its columns' claim
            if not self.columns:
                raise ValueError(f"format {self.name}: neither columns nor a detect function")
            object.__setattr__(self, "detect", self.claims)

    def declaration(self, head: str) -> Columns | None:
        """The declaration this file's header holds, None when the file is not this format's."""
        if self.columns:
            found = header_at(head, self.columns)
            return found[1] if found else None
        return None

    def claims(self, head: str) -> bool:
        """Whether the file is this format's: its header holds the declared columns (CSV),
        or its content has the format's shape (JSON)."""
        if self.columns:
            return self.declaration(head) is not None
        return bool(self.detect(head))


def header_fingerprint(cells: Sequence[str]) -> str:
    """A header's fingerprint: 12 hex digits of the SHA-256 of its :func:`normal` cells."""
    import hashlib

    return hashlib.sha256("\x1f".join(normal(c) for c in cells).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Nearest:
    """The known layout closest to a header no reader recognised."""

    format: str
    layout: Layout
    seen: tuple[str, ...]  # the header cells seen in the file
    missing: tuple[str, ...]  # the layout's columns the file lacks
    extra: tuple[str, ...]  # the file's columns the layout does not have

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append("missing " + ", ".join(f'"{c}"' for c in self.missing))
        if self.extra:
            parts.append("extra " + ", ".join(f'"{c}"' for c in self.extra))
        if not parts:
            parts.append("the same columns in another order" if self.seen else "no columns")
        return f"{self.format} ({self.layout.version}): {'; '.join(parts)}"


_HEADER_LINES = 20  # a header may follow a short preamble (Coinbase, OKX, Bybit)


def nearest_layout(head: str, formats: Sequence[Format]) -> Nearest | None:
    """The known layout nearest a header in the first lines of ``head``; None when no
    layout shares a column with it.

    Nearest is first the format missing the smallest share of what it needs (its required
    columns, or a whole layout for formats matched by role), so that an export whose user
    left out one needed column is compared with its own format; then the layout sharing the
    most columns (Jaccard similarity of :func:`normal` cells, localized headers translated).
    """
    best: tuple[tuple[float, float], int, Nearest] | None = None
    for number, line in enumerate(head.splitlines()[:_HEADER_LINES]):
        if not line.strip():
            continue
        seen = tuple(header_cells(line))
        for fmt in formats:
            localized = {normal(k): normal(v) for c in fmt.columns for k, v in c.localized.items()}
            have = {localized.get(normal(c), normal(c)) for c in seen if c.strip()}
            needs = [len(c.missing(seen)) / max(len(c.required), 1) for c in fmt.columns]
            for layout in fmt.layouts:
                want = {normal(c) for c in layout.columns}
                shared = len(have & want)
                if not shared:
                    continue
                lacking = min(needs) if needs else len(want - have) / len(want)
                score = (-lacking, shared / len(have | want))
                if best is None or score > best[0]:
                    missing = tuple(c for c in layout.columns if normal(c) not in have)
                    extra = tuple(c for c in seen if c.strip() and localized.get(normal(c), normal(c)) not in want)
                    best = (score, number, Nearest(fmt.name, layout, seen, missing, extra))
    return best[2] if best else None


def unknown_reason(head: str, formats: Sequence[Format]) -> tuple[str, str]:
    """The one-line reason (and the header text shown) for a file no reader recognises.

    When the nearest layout's format declares its columns, the reason also names the ones
    it needs that the file lacks: an export whose user left out a needed column.
    """
    near = nearest_layout(head, formats)
    seen = ",".join(near.seen) if near else first_line(head)
    shown = seen if len(seen) <= 200 else seen[:197] + "..."
    where = f"; nearest known layout: {near.describe()}" if near else "; no known layout shares a column with it"
    if near is not None:
        fmt = next(f for f in formats if f.name == near.format)
        lacks = min((c.missing(near.seen) for c in fmt.columns), key=len, default=())
        if lacks:
            where += f"; {fmt.name} needs {', '.join(lacks)}"
    return f'{UNKNOWN_FORMAT}; header seen: "{shown}"{where}', shown


def ambiguous_reason(head: str, claimed: Sequence[Format]) -> tuple[str, str]:
    """The one-line reason (and the header shown) for a file two or more formats claim: it
    is read by none, since either reading would be a guess."""
    found = next((header_at(head, f.columns) for f in claimed if f.columns), None)
    line = head.splitlines()[found[0]] if found else first_line(head)
    shown = ",".join(header_cells(line))
    shown = shown if len(shown) <= 200 else shown[:197] + "..."
    names = [f.name for f in claimed]
    both = " and ".join(names) if len(names) == 2 else ", ".join(names[:-1]) + " and " + names[-1]
    return f'{AMBIGUOUS_FORMAT} ({both}); header seen: "{shown}"', shown


UNKNOWN_FORMAT = "unknown format: no reader recognises this file"
AMBIGUOUS_FORMAT = "ambiguous format: more than one reader claims this file"
# Reasons of a file refused whole for its layout: listed in the run summary and the report,
# and what [strict] unknown_files = "fail" stops on.
LAYOUT_REFUSALS = (UNKNOWN_FORMAT, AMBIGUOUS_FORMAT)


def is_layout_refusal(reason: str) -> bool:
    return reason.startswith(LAYOUT_REFUSALS)


# ---------------------------------------------------------------------------------------------
# Wallets: one venue account holds several (Binance Spot, Funding, USD-M Futures, Earn...)
# ---------------------------------------------------------------------------------------------

MAIN_WALLETS = ("", "spot")  # the account folder itself: where /api/v3/account's Spot balances are


def wallet_slug(name: str) -> str:
    """A wallet's name as a sub-account name: lower case, each run of other characters one
    ``-`` (``USD-M Futures`` -> ``usd-m-futures``, ``Coin-M Futures`` -> ``coin-m-futures``)."""
    return re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")


def wallet_account(account: str, wallet: str) -> str:
    """The sub-account ``<account>/<wallet>`` a wallet's rows and snapshots book to; the Spot
    wallet (or none) is the account itself, so a Spot-only account keeps its folder's name."""
    slug = wallet_slug(wallet)
    return account if slug in MAIN_WALLETS else f"{account}/{slug}"


def wallet_account_expr(account: str, wallet: pl.Expr) -> pl.Expr:
    """:func:`wallet_account` over a column of wallet names."""
    slug = wallet.fill_null("").str.strip_chars().str.to_lowercase().str.replace_all(r"[^a-z0-9]+", "-").str.strip_chars("-")
    return pl.when(slug.is_in(list(MAIN_WALLETS))).then(pl.lit(account)).otherwise(pl.lit(account + "/") + slug)


def head_text(path: Path, size: int = HEAD_BYTES) -> str:
    """The first bytes of a file as text, BOMs removed; raises UnicodeDecodeError if not UTF-8.

    A workbook (``.xlsx``) is first written as CSV text (:func:`xlsx_as_csv`), so that it is
    recognised by its header like any export.
    """
    with open(path, "rb") as fh:
        raw = fh.read(size)
    if raw.startswith(XLSX_MAGIC):
        raw = xlsx_as_csv(path.read_bytes())[:size]
    # A multi-byte character may be cut at the end of the head: decode what is whole.
    text = raw.decode("utf-8", errors="strict") if len(raw) < size else _decode_prefix(raw)
    return text.replace(BOM, "")


def _decode_prefix(raw: bytes) -> str:
    for cut in range(0, 4):
        try:
            return raw[: len(raw) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8")  # raises with the position of the bad byte


# ---------------------------------------------------------------------------------------------
# Workbooks: Binance's 2017-18 Trade History came as .xlsx
# ---------------------------------------------------------------------------------------------

XLSX_MAGIC = b"PK\x03\x04"  # a zip archive: an Office Open XML workbook


def xlsx_as_csv(data: bytes) -> bytes:
    """The first sheet of a workbook as UTF-8 CSV text, every cell as text.

    Excel stores a number as a binary double (the sheet XML holds its decimal text, which
    openpyxl reads with ``float``). Each number is written as its shortest round-trip decimal
    text, ``repr(float)``: the shortest decimal that reads back as the very double Excel
    stored, so it is exact for what the workbook holds (``0.0002915`` stays ``0.0002915``; a
    value Excel itself computed as ``0.30000000000000004`` stays that, never rounded here).
    No float is ever turned into a Decimal: the text is, by the readers' one parser. Dates
    become ``YYYY-MM-DD HH:MM:SS[.ffffff]``. Rows with no cell are written as blank lines, so
    row numbers still match the sheet.
    """
    from openpyxl import load_workbook  # only workbooks need it

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = book.worksheets[0]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for values in sheet.iter_rows(values_only=True):
            cells = [_xlsx_cell(v) for v in values]
            if all(c == "" for c in cells):
                out.write("\n")
            else:
                writer.writerow(cells)
    finally:
        book.close()
    return out.getvalue().encode("utf-8")


def _xlsx_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text of the stored double
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return str(value)


def first_line(head: str, skip: int = 0) -> str:
    lines = head.splitlines()
    return lines[skip].strip() if len(lines) > skip else ""


def top_level_keys(text: str) -> tuple[list[str], bool]:
    """Keys of the JSON object ``text`` starts with, and whether it closed within ``text``.

    Works on a cut head: a raw ``info`` object can make a line longer than the head.
    """
    stripped = text.lstrip()
    if not stripped.startswith("{"):
        return [], False
    keys: list[str] = []
    depth, i, n = 0, 0, len(stripped)
    while i < n:
        ch = stripped[i]
        if ch == '"':
            j = i + 1
            while j < n and stripped[j] != '"':
                j += 2 if stripped[j] == "\\" else 1
            if j >= n:
                break
            if depth == 1:
                k = j + 1
                while k < n and stripped[k] in " \t\r\n":
                    k += 1
                if k < n and stripped[k] == ":":
                    keys.append(stripped[i + 1 : j])
            i = j + 1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return keys, True
        i += 1
    return keys, False


def text_or_null(cell: pl.Expr, blanks: Sequence[str] = ("",)) -> pl.Expr:
    """A cell's text, stripped; null when it is one of the venue's ``blanks`` (empty, ``--``)."""
    return cell.str.strip_chars().replace(list(blanks), None)


def separator_of(line: str) -> str:
    """``;`` for a line Excel re-saved in a locale whose list separator is ``;``, else ``,``."""
    return ";" if line.count(";") > line.count(",") else ","


def one_line(exc: BaseException) -> str:
    """An error as one plain line: stored reasons and messages are one sentence."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def entry_text(entry: object, key: str) -> str | None:
    """A JSON reply entry's value at ``key`` as text: a string as it is, a number (read with
    ``parse_float=str``) or anything else as its JSON, None when absent or not an object."""
    value = entry.get(key) if isinstance(entry, dict) else None
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def header_cells(line: str) -> list[str]:
    """Header cells of a CSV line (``,`` or ``;`` separated), unquoted and stripped."""
    line = line.replace(BOM, "")
    return [c.strip().strip('"').strip() for c in line.split(separator_of(line))]


@functools.lru_cache(maxsize=1 << 16)
def normal(cell: str) -> str:
    """A header cell as matched: case, surrounding blanks, quotes and BOMs ignored."""
    # Cached: every format's declaration is matched against every file's header (a landing of
    # 150 files asked ~440,000 times for a few hundred distinct cells).
    return cell.replace(BOM, "").strip().strip('"').strip().casefold()


def header_is(head: str, layouts: list[tuple[str, ...]], skip: int = 0) -> bool:
    """The header row (after ``skip`` preamble lines) is one of ``layouts``, cells compared by
    :func:`normal` (``TXID``, `` Time ``, ``\ufeffid`` match ``txid``, ``Time``, ``id``)."""
    cells = tuple(normal(c) for c in header_cells(first_line(head, skip)))
    return any(cells == tuple(normal(c) for c in layout) for layout in layouts)


def header_holds(cells: Sequence[str], required: Sequence[str], known: Sequence[str]) -> bool:
    """A header chosen by its columns: it holds every ``required`` column and no column
    outside ``known`` (an export whose user picked a subset of the columns)."""
    have = [normal(c) for c in cells]
    allowed = {normal(c) for c in known}
    return len(set(have)) == len(have) and {normal(c) for c in required} <= set(have) and set(have) <= allowed


def rename_columns(frame: pl.DataFrame, names: Sequence[str], localized: Mapping[str, str] | None = None) -> pl.DataFrame:
    """Columns renamed to their canonical spelling in ``names`` when they match it by
    :func:`normal`, or by a ``localized`` header (the user's interface language -> name)."""
    table = {normal(n): n for n in names}
    table.update({normal(k): v for k, v in (localized or {}).items()})
    mapping = {c: table[normal(c)] for c in frame.columns if normal(c) in table and table[normal(c)] != c}
    return frame.rename(mapping) if mapping else frame


def require_columns(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    """A matched header that lacks a column the reader needs fails the whole file."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(repr(c) for c in missing)}")


# Appended to every line before Polars reads the file: the column it lands in tells how
# many cells the row has (see read_csv_rows). A control character no export writes.
_END = "\x1e"


def read_csv_rows(
    source: Source, skip_lines: int = 0, *, optional_last: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every cell as written (text, ``""`` when empty, never null) with ``source_row``, the
    1-based data row; and, as quarantine rows, the rows refused whole.

    A row with more or fewer cells than the header (a file cut short, a stray comma) is
    refused alone, its line as raw text: Polars would pad a short row with empty cells or
    cut a long one, which could book a truncated number. Lines holding only blanks carry no
    data and are skipped (their numbers still count, so rows match the file). BOMs anywhere
    are removed (OKX repeats U+FEFF in cells); ``skip_lines`` skips a preamble before the
    header (Bybit's ``UID:`` line, Coinbase's title). A file that is not UTF-8 fails whole,
    and so does an empty one. A file whose last row is cut inside a quoted cell keeps the
    rows before it; the cut row is refused alone. A header with more ``;`` than ``,`` (Excel
    re-saving in a ``;`` locale) makes ``;`` the separator of the whole file. A workbook is
    read as the CSV :func:`xlsx_as_csv` writes. ``optional_last``: a row one cell short, where
    that cell is the last column (Binance's trailing empty ``Remark``, which some writers leave
    out), is complete: the cell is ``""``.

    How cells are counted without a second pass over the text: a marker cell is appended to
    every line, so in a row of the header's width it lands in the column after the last; a
    short row puts it earlier and a long row pushes a cell of its own there.

    A file ingest claimed for a format (``source.header``) comes back with the declared
    columns only, named as declared (:func:`conform`): readers never see extra columns.
    """
    frame, refused = _read_csv_rows(source, skip_lines, optional_last)
    return (conform(frame, source.header) if source.header is not None else frame), refused


def read_csv_columns(
    source: Source, pick: Callable[[tuple[str, ...]], Sequence[str]], skip_lines: int = 0
) -> tuple[pl.DataFrame, pl.DataFrame, tuple[str, ...]]:
    """``(frame.select("source_row", *pick(header)), refused, header)`` of
    ``frame, refused = read_csv_rows(source, skip_lines)``, ``header`` its columns (after
    ``source_row``): the same values, rows and refusals. ``pick`` names the columns a reader
    reads, from the header; where Polars reads the file itself (a regular file, the kernels
    loaded: :func:`_read_regular`), the others are never made (Deribit's log: 13 of 24).
    ``pick`` must name columns of the header, each once: any other answer is read whole and
    then selected, which fails as that select would."""
    if source.path.stat().st_size >= KERNEL_BYTES and kernels_for(KERNEL_ROWS):
        warm_kernels()
        if not _warming[0].is_alive():
            read = _read_regular_picked(source, skip_lines, pick)
            if read is not None:
                frame, header = read
                return frame, _no_refusals(), header
    frame, refused = read_csv_rows(source, skip_lines)
    header = tuple(frame.columns[1:])
    return frame.select("source_row", *pick(header)), refused, header


def _read_csv_rows(source: Source, skip_lines: int, optional_last: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    if source.path.stat().st_size >= KERNEL_BYTES:
        if kernels_for(KERNEL_ROWS):
            warm_kernels()  # the kernels load while the file is read and split
        compiled = kernels_for(KERNEL_ROWS) and bool(_warming) and not _warming[0].is_alive()
        regular = _read_regular(source, skip_lines) if compiled else _read_regular_counted(source, skip_lines)
        if regular is not None:
            return regular, _no_refusals()
    data = _file_bytes(source.path)
    if data.startswith(XLSX_MAGIC):
        data = xlsx_as_csv(data)
    data = _normalised(data)
    if data.isspace():  # a final line end was added: never empty here; no stripped copy made
        raise ValueError(f"{source.rel}: the file is empty")
    quotes, newlines = _quotes_and_newlines(data)
    cut = _cut_record(data, quotes)
    if cut is None or cut <= _line_start(data, min(skip_lines + 1, data.count(b"\n"))):
        return _read_rows(source, data, skip_lines, optional_last, newlines)
    # The last record opens a quoted cell that never closes (a download or copy cut short):
    # the rows before it are whole and book; the cut one is refused alone.
    frame, refused = _read_rows(source, data[:cut], skip_lines, optional_last)
    body = data[_line_start(data, skip_lines) : cut].decode("utf-8", errors="replace")
    sep = separator_of(body.split("\n", 1)[0])
    row = len(list(csv.reader(io.StringIO(body), delimiter=sep)))  # the header and the records before the cut one
    raw = data[cut:].decode("utf-8", errors="replace").strip()
    cut_row = pl.DataFrame(
        {"file": [source.rel], "row": [row], "column": [None],
         "reason": ["the file ends inside a quoted cell: this last row is cut short"], "raw": [raw[:200]]},
        schema=QUARANTINE_SCHEMA,
    )
    return frame, pl.concat([refused, cut_row])


@contextlib.contextmanager
def _mapped_with_header(path: Path, skip_lines: int) -> Iterator[tuple | None]:
    """The file mapped (read only) with its plain header (:func:`_plain_header`): (mapping,
    header start, header end, bytes to the header's end, separator); None for an empty file,
    a workbook, or a header the careful way must read."""
    import mmap

    with open(path, "rb") as fh:
        start = fh.read(len(XLSX_MAGIC))
        if not start or start == XLSX_MAGIC:
            yield None
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            header = _plain_header(mapped, skip_lines)
            yield None if header is None else (mapped, *header)


def _plain_header(mapped, skip_lines: int) -> tuple[int, int, bytes, str] | None:
    """Where the header starts and ends in the mapped file, the bytes up to its end and its
    separator; None where the careful way must read the file: no header line, a blank one,
    a ``\r``, a BOM anywhere but the file's start (which Polars skips, as _file_bytes does),
    bad UTF-8."""
    header_at = 0
    for _ in range(skip_lines):
        header_at = mapped.find(b"\n", header_at) + 1
        if header_at == 0:
            return None
    header_end = mapped.find(b"\n", header_at)
    if header_end < 0:
        return None
    head = mapped[:header_end]
    bom = BOM.encode()
    if b"\r" in head or b"\xef" in head[len(bom) if head.startswith(bom) else 0 :] or not head[header_at:].strip():
        return None
    try:
        text = head[header_at:].decode("utf-8")
        head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return header_at, header_end, head, separator_of(text)


def _read_regular(source: Source, skip_lines: int) -> pl.DataFrame | None:
    """The file as :func:`_read_rows` reads it, when every row has the header's width and
    is written plainly (:func:`utl.venues._csv_kernels.regular_rows_by_words`, over the file mapped,
    not copied): Polars then reads the file itself, and the file's bytes are neither copied
    into Python nor again with a marker per line (~0.45 CPU s per 200 MB). None for any
    other file (a ragged, blank or multi-line row, ``\r``, a BOM, bad UTF-8...): the careful
    way reads it, with the same result. While the kernels load, and where numba is not
    loaded, :func:`_read_regular_counted` stands in."""
    read = _read_regular_picked(source, skip_lines)
    return None if read is None else read[0]


def _read_regular_picked(
    source: Source, skip_lines: int, pick: Callable[[tuple[str, ...]], Sequence[str]] | None = None
) -> tuple[pl.DataFrame, tuple[str, ...] | None] | None:
    """:func:`_read_regular`, and with ``pick`` (:func:`read_csv_columns`) only the columns
    it picks from the header (named as :func:`read_csv_rows` names them), read by Polars
    alone, and the header; None where :func:`_read_regular` gives None, or where the picked
    read could differ from the whole one (a byte that is not ASCII: Polars checks UTF-8 only
    in the columns it reads). A regular ASCII file without an escaped quote, nearly every
    export, is not read by Polars' reader at all: its columns are string views over the
    mapped file (:func:`_read_views`), the same values."""
    if not _warming or _warming[0].is_alive():
        return None
    from utl.venues._csv_kernels import regular_rows_by_words

    with _mapped_with_header(source.path, skip_lines) as found:
        if found is None:
            return None
        mapped, header_at, header_end, head, sep = found
        width = _header_width(head[header_at:], sep)
        picked = None
        if pick is not None:
            picked = _picked_columns(source, head, skip_lines, sep, pick)
            if picked is None:
                return None
            width = picked[4]
        body = np.frombuffer(mapped, dtype=np.uint8)
        # Most files: the columns made as string views over the file, without Polars' reader.
        viewed = None
        if width and width == _header_width(head[header_at:], sep) and _ascii_only(body, header_end + 1):
            if picked is not None:
                viewed = _read_views(source.path, header_end + 1, sep, width, picked[0], picked[2])
            else:
                names = _header_names(head, skip_lines, sep)
                if names is not None and len(names) == width >= 2:
                    viewed = _read_views(source.path, header_end + 1, sep, width, range(width), names)
        if viewed is not None:
            del body  # the mapping closes only once no array views it
            frame = viewed.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
            if picked is None:
                return frame.rename({c: c.strip() for c in frame.columns}), None
            header = picked[3]
            return frame.select("source_row", *pick(header)), header

        # Else Polars reads it; the check runs beside its read (the kernel lets go of the GIL;
        # Polars reads a file on about one core): it needs only the header's width, told from its text.
        def check(width: int) -> int:
            rows = regular_rows_by_words(body, body[: len(body) // 8 * 8].view(np.uint64), header_end + 1, ord(sep), width)
            if rows >= 0 and picked is not None and not _ascii_only(body, header_end + 1):
                return -1
            return rows

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            counted = pool.submit(check, width) if width else None
            try:
                options = {**_CSV_OPTIONS, "columns": picked[0]} if picked is not None else _CSV_OPTIONS
                frame = pl.read_csv(source.path, skip_lines=skip_lines, separator=sep, **options)
            except Exception:  # the careful way says what is wrong
                frame = None
            rows = counted.result() if counted is not None else None
        if picked is None and frame is not None and frame.width >= 2 and frame.width != width:  # told wrong: count again
            rows = check(frame.width)
        del body  # the mapping closes only once no array views it
    if frame is None or (picked is None and frame.width < 2) or rows != frame.height:
        return None
    frame = frame.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    if picked is None:
        return frame.rename({c: c.strip() for c in frame.columns}), None
    _, read_as, names, header, _ = picked
    if frame.columns[1:] != read_as:
        return None
    frame = frame.rename(dict(zip(read_as, names)))
    return frame.select("source_row", *pick(header)), header


# Where the views' bytes live: the file mapped (nothing copied; the mapping stays open while
# any column views it) or one compiled copy of the cells longer than 12 bytes.
VIEWS_INTO_FILE = True


def _read_views(path: Path, start: int, sep: str, width: int, positions: Sequence[int], names: Sequence[str]) -> pl.DataFrame | None:
    """The columns at ``positions`` (in file order) of the rows from byte ``start`` on, named
    ``names``, as Polars' reader gives them, made without it: one compiled pass
    (:func:`utl.venues._csv_kernels.regular_views`) writes each picked cell's Arrow string
    view, its bytes in the file itself (``VIEWS_INTO_FILE``) or copied once, and Polars takes
    the columns as they are (:func:`utl.arrow_c.strings_from_views`). None where the pass
    does not take the file (a byte not ASCII, ``""`` inside a quoted cell, anything
    :func:`_read_regular` would not take), or the Polars version is not the one the import
    was tested with: the caller reads it the other way, with the same result."""
    import mmap

    from utl import arrow_c
    from utl.venues._csv_kernels import line_ends, regular_views

    if not arrow_c.SPOKEN:
        return None
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        if size <= start or size > 0xFFFF_FFFF:  # no rows; or offsets past 32 bits
            return None
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    b = np.frombuffer(mapped, dtype=np.uint8)
    first = -(-start // 8) * 8
    last = first + (size - first) // 8 * 8
    lines = int(line_ends(b[first:last].view(np.uint64), np.concatenate([b[start:first], b[last:]]))) + 1
    slot = np.full(width, -1, dtype=np.int64)
    slot[list(positions)] = np.arange(len(positions))
    views = np.empty((len(positions), lines, 2), dtype=np.uint64)  # untouched past the rows: never made
    data = np.zeros(0, dtype=np.uint8) if VIEWS_INTO_FILE else np.empty(size - start, dtype=np.uint8)
    rows, used = regular_views(b, b[: size // 8 * 8].view(np.uint64), start, ord(sep), width, slot, views, data)
    columns = buffer = None
    if rows > 0:
        buffer, buffer_size = (b, size) if VIEWS_INTO_FILE else (data, used)
        columns = [arrow_c.strings_from_views(views[k, :rows].view(np.uint8).reshape(rows, 16), buffer, buffer_size, None, name)
                   for k, name in enumerate(names)]
        if any(c is None for c in columns):
            columns = None
    del b, views, data, buffer  # the mapping closes once no column views it
    if columns is None:
        return None
    return pl.DataFrame(columns)


def _ascii_only(body: np.ndarray, start: int) -> bool:
    """Whether ``body[start:]`` is ASCII (``body``: a mapped file, its start 8-byte aligned)."""
    from utl.venues._csv_kernels import ascii_only

    first = min(len(body), -(-start // 8) * 8)
    last = first + (len(body) - first) // 8 * 8
    words = body[first:last].view(np.uint64)
    return bool(ascii_only(words, np.concatenate([body[start:first], body[last:]])))


def _header_names(head: bytes, skip_lines: int, sep: str) -> list[str] | None:
    """The columns' names as Polars reads the header line (the last line of ``head``)."""
    try:
        return pl.read_csv(head + b"\n", skip_lines=skip_lines, separator=sep, n_rows=0, **_CSV_OPTIONS).columns
    except Exception:
        return None


def _picked_columns(source: Source, head: bytes, skip_lines: int, sep: str,
                    pick: Callable[[tuple[str, ...]], Sequence[str]]
                    ) -> tuple[list[int], list[str], list[str], tuple[str, ...], int] | None:
    """(the file's positions of the columns ``pick`` picks, in file order; their names as
    Polars reads them; as :func:`read_csv_rows` names them; that whole header; the header's
    width), from the header line alone; None
    where the header's names do not map one for one (repeated, dropped or unknown names) or
    ``pick`` picks none, or a column twice or not in the header."""
    try:
        names = pl.read_csv(head + b"\n", skip_lines=skip_lines, separator=sep, n_rows=0, **_CSV_OPTIONS).columns
    except Exception:
        return None
    stripped = [c.strip() for c in names]
    if len(names) < 2 or len(set(stripped)) != len(stripped):
        return None
    # Each column's position, carried through the renaming (and dropping) read_csv_rows does.
    frame = pl.DataFrame([pl.Series(c, [str(i)], pl.String) for i, c in enumerate(stripped)])
    frame = frame.with_row_index("source_row")
    if source.header is not None:
        frame = conform(frame, source.header)
    header = tuple(frame.columns[1:])
    wanted = list(pick(header))
    if not wanted or len(set(wanted)) != len(wanted) or not set(wanted) <= set(header):  # Polars reads none as all
        return None
    positions = sorted(int(frame[c].item()) for c in wanted)
    by_position = {int(frame[c].item()): c for c in header}
    return positions, [names[i] for i in positions], [by_position[i] for i in positions], header, len(names)


def _header_width(header: bytes, sep: str) -> int | None:
    """How many cells the header line holds (what Polars' read gives it), told from its
    text: its separators, none of them inside a quoted cell; None for a header with a quote
    (the rows are then counted after the read, at the width it gives)."""
    if b'"' in header:
        return None
    return header.count(sep.encode()) + 1


# A row with its last cell empty may be a short row that Polars filled; more such rows than
# this and the file is read the careful way (a column usually empty: Binance's Remark).
_SUSPECT_ROWS = 1000
_CHUNK = 1 << 22  # bytes compared at a time when counting line ends: a small temporary


def _read_regular_counted(source: Source, skip_lines: int) -> pl.DataFrame | None:
    """:func:`_read_regular` where the kernels are not loaded (a process reading one export):
    the same frame, or None for a file the careful way must read, told without a compiled
    pass. Polars reads the file itself, refusing a long row (``truncate_ragged_lines`` off);
    its rows must be the file's lines one for one (no blank line skipped, no quoted line
    end), counted by numpy over the mapped file; a short row reads as one whose last cell
    is empty, so each row with an empty last cell is read again with the careful way's
    marker, which must land past the last column. No ``\r`` or 0xEF byte (a BOM's first)
    anywhere: the careful way rewrites those. The file is neither copied into Python nor
    again with a marker per line (~0.5-0.9 CPU s per million rows)."""
    with _mapped_with_header(source.path, skip_lines) as found:
        if found is None:
            return None
        mapped, header_at, header_end, head, sep = found
        if mapped.find(b"\r", header_end) >= 0 or mapped.find(b"\xef", header_end) >= 0:
            return None
        # Polars takes a last line without its line end and with one cell too many, the last
        # empty (``1,2,3,`` under three columns), as a row of the header's width.
        if len(mapped) > header_end + 1 and mapped[-1] == ord(sep):
            return None
        try:
            frame = pl.read_csv(source.path, skip_lines=skip_lines, separator=sep,
                                **{**_CSV_OPTIONS, "truncate_ragged_lines": False})
        except Exception:  # a long row, bad UTF-8...: the careful way says what is wrong
            return None
        if frame.width < 2:
            return None
        if mapped.find(b'"', header_at) >= 0:  # most exports quote nothing: one memchr
            table = np.frombuffer(mapped, dtype=np.uint8)[header_at:]
            plain = _plainly_quoted(table, ord(sep))
            del table  # the mapping closes only once no array views it
            if not plain:
                return None
        body = np.frombuffer(mapped, dtype=np.uint8)[header_end + 1 :]
        ends = sum(int(np.count_nonzero(body[i : i + _CHUNK] == 10)) for i in range(0, len(body), _CHUNK))
        lines = ends + (1 if len(body) and body[-1] != 10 else 0)
        suspects = frame.select((pl.col(frame.columns[-1]) == "").arg_true()).to_series() if lines == frame.height else None
        fits = suspects is not None and (suspects.len() == 0 or (
            suspects.len() <= _SUSPECT_ROWS and _marked_rows_fit(source, body, suspects.to_numpy(), head[header_at:], sep, frame.width)))
        del body  # the mapping closes only once no array views it
    if not fits:
        return None
    frame = frame.rename({c: c.strip() for c in frame.columns})
    return frame.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))


def _plainly_quoted(text: np.ndarray, separator: int) -> bool:
    """Whether every quote in ``text`` (lines, from a line's start) opens a cell right after a
    separator or line start, or closes one right before a separator, line end or the end, in
    turn: cells quoted plainly, no quote inside a cell (not even ``""``). Polars reads a stray
    quote differently as the careful way's marker follows it or not (``1,x"y`` at the end of a
    file is a row, followed by the marker a malformed file), so such a file is read the
    careful way; a line end inside a quoted cell is caught by the count of lines."""
    inside = 0  # 1 when the part before ended inside a quoted cell
    for at in range(0, len(text), _CHUNK):
        quotes = np.flatnonzero(text[at : at + _CHUNK] == 34) + at
        opening, closing = quotes[inside::2], quotes[1 - inside :: 2]
        before = text[np.maximum(opening - 1, 0)]
        after = text[np.minimum(closing + 1, len(text) - 1)]
        if not (((before == separator) | (before == 10) | (opening == 0)).all()
                and ((after == separator) | (after == 10) | (closing == len(text) - 1)).all()):
            return False
        inside = (inside + len(quotes)) % 2
    return inside == 0


def _marked_rows_fit(source: Source, body: np.ndarray, rows: np.ndarray, header: bytes, sep: str, width: int) -> bool:
    """Whether the lines ``rows`` (0-based) of ``body`` each hold ``width`` cells, told as the
    careful way tells them: read with a marker cell appended, which must land past the last
    column."""
    ends = np.concatenate([np.flatnonzero(body[i : i + _CHUNK] == 10) + i for i in range(0, len(body), _CHUNK)] + [[len(body)]])
    starts = np.concatenate([[0], ends[:-1] + 1])[rows]
    lengths = ends[rows] - starts
    marker = np.frombuffer(f"{sep}{_END}\n".encode(), dtype=np.uint8)
    # Each line then the marker, gathered byte by byte: which line and where in it.
    sizes = lengths + len(marker)
    line = np.repeat(np.arange(len(rows)), sizes)
    at = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    from_line = at < lengths[line]
    lines = np.empty(len(at), dtype=np.uint8)
    lines[from_line] = body[starts[line[from_line]] + at[from_line]]
    lines[~from_line] = marker[at[~from_line] - lengths[line[~from_line]]]
    marked = header + marker.tobytes() + lines.tobytes()
    try:
        read = _read(source, marked, 0, sep)
    except Exception:
        return False
    return read.height == len(rows) and read.width == width + 1 and bool((read[read.columns[-1]] == _END).all())


def _file_bytes(path: Path) -> bytes:
    """The file's bytes without a leading BOM, which is skipped as the file is read: cutting
    it off afterwards copies the whole file (~0.15 s per 200 MB)."""
    bom = BOM.encode()
    with open(path, "rb") as fh:
        if fh.read(len(bom)) != bom:
            fh.seek(0)
        return fh.read()


def _normalised(data: bytes) -> bytes:
    """BOMs removed, ``\\n`` line ends, a final line end."""
    bom = BOM.encode()
    if b"\xef" in data and bom in data:  # one memchr when there is none: most files
        data = data.replace(bom, b"")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    return data


def _quotes_and_newlines(data: bytes) -> tuple[int | None, int | None]:
    """``data.count(b'"'), data.count(b"\\n")`` in one compiled pass (~0.2 s less per 200 MB
    of quoted text) when the kernels are loaded already; (None, None) while they load: the
    counts are then made as before, never waited for."""
    if len(data) < KERNEL_BYTES or not _warming or _warming[0].is_alive():
        return None, None
    from utl.venues._csv_kernels import count_two

    words = np.frombuffer(data, dtype=np.uint64, count=len(data) // 8)
    quotes, newlines = count_two(np.frombuffer(data, dtype=np.uint8), words, ord('"'), ord("\n"))
    return int(quotes), int(newlines)


def _cut_record(data: bytes, quotes: int | None = None) -> int | None:
    """Where the record that never closes its quoted cell starts, or None when every quote
    closes. A doubled quote inside a cell counts twice, so an odd count of quote characters
    means the file ends inside a cell; that record starts at the last line that begins
    outside any quoted cell. ``quotes``: the count of quote characters, if made already."""
    if quotes is not None:
        if quotes % 2 == 0:
            return None
    elif b'"' not in data or data.count(b'"') % 2 == 0:  # most exports quote nothing: one memchr
        return None
    start, outside, at = 0, True, 0
    for line in data.split(b"\n"):
        if outside:
            start = at
        if line.count(b'"') % 2:
            outside = not outside
        at += len(line) + 1
    return start


def _read_rows(source: Source, data: bytes, skip_lines: int,
               optional_last: bool = False, newlines: int | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`read_csv_rows` of normalised text whose quoted cells all close (``newlines``:
    its count of line ends, if made already)."""
    # Without quotes or carriage returns every line is one row (the marker keeps blank lines):
    # the lines need not be counted to tell a cell spanning lines (~0.1 s per 200 MB).
    if b'"' in data or b"\r" in data:
        lines = newlines if newlines is not None else data.count(b"\n")
    else:
        lines = None
    has_header = lines > skip_lines if lines is not None else _has_line(data, skip_lines)
    header_at = _line_start(data, skip_lines) if has_header else len(data)
    header = data[header_at : data.find(b"\n", header_at)]
    if not header.strip():
        raise ValueError(f"{source.rel}: the file has no header row")
    _check_utf8(source, data[:header_at])  # Polars checks the rest as it reads
    sep = separator_of(header.decode("utf-8", errors="replace"))
    marked = data.replace(b"\n", f"{sep}{_END}\n".encode())
    frame = _read(source, marked, skip_lines, sep)
    columns = frame.columns[:-1]
    frame = frame.rename({c: c.strip() for c in columns})
    columns = [c.strip() for c in columns]
    rows = frame.height
    if lines is not None and rows != lines - skip_lines - 1:
        # A quoted cell spans lines: the marker fell inside it. Count cells the slow way.
        return _read_multiline(source, data, skip_lines, sep, optional_last)
    end = frame.columns[-1]
    if optional_last and len(columns) > 2:
        # One cell short: the marker sits in the last column (only such a row puts it there).
        short = (pl.col(columns[-1]) == _END).fill_null(False)
        frame = frame.with_columns(
            pl.when(short).then(pl.lit("")).otherwise(pl.col(columns[-1])).alias(columns[-1]),
            pl.when(short).then(pl.lit(_END)).otherwise(pl.col(end)).alias(end),
        )
    odd = frame.select((pl.col(end) != _END).arg_true()).to_series()
    frame = frame.drop(end).with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    if odd.len() == 0:
        return frame, _no_refusals()
    suspects = frame.select(columns).gather(odd)
    # A blank line reads as one cell of blanks followed by the marker.
    second = pl.lit(_END) if len(columns) == 1 else pl.col(columns[1])
    blank = suspects.select((second == _END) & (pl.col(columns[0]).str.strip_chars() == "")).to_series()
    text = data.split(b"\n")
    ragged = odd.filter(~blank)
    raw = [text[skip_lines + 1 + i].decode("utf-8") for i in ragged.to_list()]
    refused = _refused(source, (ragged + 1).cast(pl.Int64).to_list(), raw, len(columns), sep=sep)
    keep = pl.repeat(True, rows, eager=True).scatter(odd, False)
    return frame.filter(keep), refused


def _has_line(data: bytes, line: int) -> bool:
    """Whether line ``line`` (0-based) ends in ``data``: ``data.count(b"\\n") > line``."""
    at = 0
    for _ in range(line + 1):
        at = data.find(b"\n", at) + 1
        if at == 0:
            return False
    return True


def _line_start(data: bytes, line: int) -> int:
    """Byte offset where line ``line`` (0-based) starts."""
    at = 0
    for _ in range(line):
        at = data.index(b"\n", at) + 1
    return at


def _check_utf8(source: Source, data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnicodeDecodeError(e.encoding, e.object, e.start, e.end, f"{source.rel}: not UTF-8 text ({e.reason})") from None


# How every CSV is read: all cells text, a present empty cell "" (a missing one null).
_CSV_OPTIONS = dict(infer_schema=False, has_header=True, empty_string_is_null=False, truncate_ragged_lines=True, raise_if_empty=False)


def _read(source: Source, data: bytes, skip_lines: int, sep: str = ",") -> pl.DataFrame:
    try:
        return pl.read_csv(data, skip_lines=skip_lines, separator=sep, **_CSV_OPTIONS)
    except pl.exceptions.ComputeError as e:
        _check_utf8(source, data)  # name the bad byte if that is the trouble
        # Polars explains at length; the first line says what is wrong.
        raise ValueError(f"{source.rel}: not a well-formed CSV: {one_line(e)}") from e


def _read_multiline(
    source: Source, data: bytes, skip_lines: int, sep: str = ",", optional_last: bool = False
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`read_csv_rows` for files whose quoted cells span lines, with Python's csv."""
    body = data[_line_start(data, skip_lines) :]
    frame = _read(source, body, 0, sep)
    records = list(csv.reader(io.StringIO(body.decode("utf-8")), delimiter=sep))
    width = frame.width
    if len(records) - 1 != frame.height:
        raise ValueError(f"{source.rel}: not a well-formed CSV: {len(records) - 1} records, {frame.height} rows")
    frame = frame.rename({c: c.strip() for c in frame.columns})
    frame = frame.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    skip, ragged, raw, counts, padded = [], [], [], [], []
    for row, cells in enumerate(records[1:], 1):
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            skip.append(row)
        elif optional_last and width > 2 and len(cells) == width - 1:
            padded.append(row)
        elif len(cells) != width:
            skip.append(row)
            ragged.append(row)
            line = io.StringIO()
            csv.writer(line, lineterminator="", delimiter=sep).writerow(cells)
            raw.append(line.getvalue())
            counts.append(len(cells))
    refused = _refused(source, ragged, raw, width, counts)
    if padded:  # Polars fills the missing last cell with null
        last = frame.columns[-1]
        frame = frame.with_columns(pl.when(pl.col("source_row").is_in(padded)).then(pl.lit("")).otherwise(pl.col(last)).alias(last))
    return frame.filter(~pl.col("source_row").is_in(skip)), refused


def _refused(
    source: Source, rows: list[int], raw: list[str], width: int, cells: list[int] | None = None, sep: str = ","
) -> pl.DataFrame:
    """Quarantine rows for ragged rows: their line and how many cells it has."""
    if cells is None:
        cells = [len(next(csv.reader([line], delimiter=sep), [])) for line in raw]
    return pl.DataFrame(
        {
            "file": [source.rel] * len(rows),
            "row": rows,
            "column": [None] * len(rows),
            "reason": [f"the row has {n} cells, the header {width}" for n in cells],
            "raw": raw,
        },
        schema=QUARANTINE_SCHEMA,
    )


def read_text_csv(source: Source, skip_lines: int = 0) -> pl.DataFrame:
    """Every cell as stripped text, plus ``source_row``; any ragged row fails the whole file.

    For callers whose whole input is refused on a malformed line (marks files);
    venue readers use :func:`read_csv_rows`, which refuses such rows alone.
    """
    frame, refused = read_csv_rows(source, skip_lines)
    if refused.height:
        first = refused.row(0, named=True)
        raise ValueError(f"{source.rel}: not a well-formed CSV: row {first['row']}: {first['reason']}")
    return frame.with_columns(pl.exclude("source_row").str.strip_chars())


@dataclass(frozen=True)
class Check:
    """A per-row check: where ``bad`` is true the row is refused for ``column``."""

    column: str | None
    bad: pl.Expr
    reason: str | pl.Expr
    raw: pl.Expr | None = None  # defaults to the column's text


@functools.cache
def _empty_quarantine() -> pl.DataFrame:
    return empty_quarantine()


def _no_refusals() -> pl.DataFrame:
    """``empty_quarantine()``, made once (a frame from a schema costs ~0.3 ms; most reads
    refuse nothing) and handed out as a copy."""
    return _empty_quarantine().clone()


def split_refused(frame: pl.DataFrame, checks: list[Check], file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the checks; returns (rows that passed every check, one quarantine row per failure).

    ``frame`` must hold ``source_row`` and the raw text columns the checks name. Reasons and
    raw texts are computed for the refused rows only.
    """
    if not checks:
        return frame, _no_refusals()
    flags = frame.select([c.bad.fill_null(False).alias(f"__bad{i}") for i, c in enumerate(checks)])
    any_bad = flags.select(pl.any_horizontal(pl.all())).to_series()
    if not any_bad.any():
        return frame, _no_refusals()
    # One chunk: Polars 2.1 can panic formatting a reason from text columns of a frame
    # filtered and stacked this way ("assertion failed: i < self.len()"); the frame is small.
    flagged = frame.filter(any_bad).hstack(flags.filter(any_bad)).rechunk()
    refused_parts = []
    for i, c in enumerate(checks):
        raw = c.raw if c.raw is not None else (pl.col(c.column).cast(pl.String) if c.column else pl.lit(None, pl.String))
        reason = c.reason if isinstance(c.reason, pl.Expr) else pl.lit(c.reason)
        refused_parts.append(
            flagged.filter(pl.col(f"__bad{i}")).select(
                file=pl.lit(file, pl.String),
                row=pl.col("source_row"),
                column=pl.lit(c.column, pl.String),
                reason=reason.cast(pl.String),
                raw=raw.cast(pl.String),
            )
        )
    quarantine = pl.concat(refused_parts).sort("row", maintain_order=True)
    return frame.filter(~any_bad), quarantine.cast(QUARANTINE_SCHEMA)


def with_synthetic_id(frame: pl.DataFrame, columns: list[str], alias: str) -> pl.DataFrame:
    """``alias``: an id for formats that have none, the raw row's fields + its occurrence number.

    Identical rows do repeat in such exports; the occurrence number (1, 2, ...) among
    identical rows of the same file keeps each one (contract: eod.md, Landing folder).
    Occurrences are counted only among rows whose text repeats (few), found by hash: a
    collision merely sends a row to the exact count.
    """
    # Written as a first occurrence in one pass ("a|b|c#1"): most rows are.
    first = pl.format("|".join(["{}"] * len(columns)) + "#1", *[pl.col(c).fill_null("") for c in columns])
    frame = frame.with_columns(first.alias(alias))
    hashes = frame.select(pl.col(alias).hash()).to_series()
    if hashes.n_unique() == frame.height:
        return frame
    repeats = hashes.is_duplicated().arg_true()
    counted = (
        frame.select(pl.col(alias).str.strip_suffix("#1"))
        .gather(repeats)
        .select(pl.format("{}#{}", alias, pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(alias)))
    )
    return frame.with_columns(frame[alias].scatter(repeats, counted.to_series()))


def per_distinct(frame: pl.DataFrame, keys: str | list[str], **columns: pl.Expr) -> pl.DataFrame:
    """``frame`` with ``columns``, expressions of the ``keys`` columns alone, each computed once
    per distinct key and joined back: a pair's base and quote, an operation's kind. A file
    has a handful of pairs or types over a million rows, and some of these expressions run
    a dozen regexes."""
    keys = [keys] if isinstance(keys, str) else keys
    codes = _key_codes(frame, keys)
    if codes is None:
        distinct = frame.select(keys).unique().with_columns(**columns)
        # Join the keys alone, then place the new columns beside the (wide) frame.
        joined = frame.select(keys).join(distinct, on=keys, how="left", nulls_equal=True, maintain_order="left")
        return frame.hstack(joined.drop(keys))
    # Each distinct key at its first row; every row finds its key's place among them by a
    # binary search of a few integers (a join on the text keys cost ~0.1 s per million rows).
    first = codes.arg_unique()
    distinct = frame.select(keys).gather(first).with_columns(**columns)
    values = codes.gather(first).to_numpy()
    order = np.argsort(values)
    at = order[np.searchsorted(values[order], codes.to_numpy())]
    return frame.hstack(distinct.drop(keys).gather(at))


def _key_codes(frame: pl.DataFrame, keys: list[str]) -> pl.Series | None:
    """One integer per row, equal exactly where the rows' ``keys`` (text, null equal to null)
    are: each key's categorical code, null as one more code, the codes combined positionally.
    None when a key is not text, the frame is empty, or the combination would not fit.

    The codes come from Polars' global categories, which keep each distinct text for the
    life of the process: fine for the keys readers pass (sides, types, pairs, coins,
    instruments: a venue's vocabulary), not for ids or free text."""
    if frame.height == 0 or any(frame.schema[k] != pl.String for k in keys):
        return None
    parts = frame.select(pl.col(k).cast(pl.Categorical).to_physical().cast(pl.Int64) for k in keys)
    combined, span = None, 1
    for part in parts.iter_columns():
        top = part.max()
        width = (top if top is not None else 0) + 2  # codes 0..top, then null
        span *= width
        if span >= 2**62:
            return None
        part = part.fill_null(width - 1)
        combined = part if combined is None else combined * width + part
    return combined


def rows_of(left_rows: pl.DataFrame, right_rows: pl.DataFrame) -> pl.DataFrame:
    """``left_rows.join(right_rows, on="source_row", how="inner", maintain_order="left")``.

    Where ``right_rows`` has one row per source row, in file order (as readers build it),
    each left row is found by a binary search of the sorted keys and gathered, instead
    of a hash join (~0.5 s for two million rows). Any other shape takes the join.
    """
    right = right_rows["source_row"]
    left = left_rows["source_row"]
    shared = set(left_rows.columns) & set(right_rows.columns) - {"source_row"}
    if right.len() == 0 or shared or right.null_count() or left.null_count():
        return left_rows.join(right_rows, on="source_row", how="inner", maintain_order="left")
    keys, wanted = right.to_numpy(), left.to_numpy()
    if not (keys[1:] > keys[:-1]).all():  # not unique and sorted
        return left_rows.join(right_rows, on="source_row", how="inner", maintain_order="left")
    at = np.searchsorted(keys, wanted).clip(max=len(keys) - 1)
    hit = keys[at] == wanted
    if hit.all():  # every left row found (a reader's derivative rows, often all): no filter copies them
        return left_rows.hstack(right_rows.drop("source_row").gather(at))
    return left_rows.filter(pl.Series(hit)).hstack(right_rows.drop("source_row").gather(at[hit]))


# Derivative cash kinds (utl.derivatives.schemas.DERIVATIVE_CASH_KINDS) by a number: a reader
# picks the number of a movement's kind by conditions on its columns, then names it.
CASH_KIND_CODES = {kind: code for code, kind in enumerate(("realized_pnl", "funding", "fee", "settlement", "delivery", "premium"))}
_CASH_KINDS = pl.Series("kind", list(CASH_KIND_CODES), pl.String)


def cash_kind_text(code: pl.Expr) -> pl.Expr:
    """The kind named by ``code`` (:data:`CASH_KIND_CODES`), null where it is null: the text
    of one choice, where a ``when``/``then`` choosing among text columns and literals gathers
    the text of every branch (~0.07 CPU s per two million rows against ~0.01)."""
    return pl.lit(_CASH_KINDS).gather(code)


def to_schema(source: Source, frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` as the canonical ``schema``: ``venue``, ``account`` and ``source_file`` from
    the source, the schema's columns in its order and types."""
    return (
        frame.with_columns(venue=pl.lit(source.venue), account=pl.lit(source.account), source_file=pl.lit(source.rel))
        .select(list(schema.names()))
        .cast(schema)
    )


def interleave(parts: list[pl.DataFrame]) -> pl.DataFrame:
    """Rows of several frames, each in file order, merged into file order (by ``source_row``),
    the parts of one row in list order: a row's own movement, then its fee, ...

    The frames must have the same columns; keep them narrow (the booked columns only), as
    every column is gathered once. One integer sort; Polars' ``merge_sorted`` is slower here
    (and so, measured on the Bybit and Coinbase parts, is a numpy argsort and a gather).
    """
    present = [p for p in parts if p.height]
    if len(present) <= 1:  # one part is in file order already
        return present[0] if present else parts[0]
    keyed = [p.with_columns(__order=pl.col("source_row") * len(parts) + i) for i, p in enumerate(parts) if p.height]
    return pl.concat(keyed).sort("__order").drop("__order")


# A ledger row books up to three movements (its cash, fee, funding), each a filter of the same
# frame with a few columns of its own: interleave_parts puts them in file order without the
# sort interleave does (which gathers every column of every movement from a stacked,
# many-chunk frame, ~0.5 CPU s per two million movements), gathering the columns no part
# changes once from the row frame itself.
InterleavePart = tuple[pl.Expr, dict[str, pl.Expr]]


def interleave_parts(frame: pl.DataFrame, parts: list[InterleavePart], columns: list[str] | None = None) -> pl.DataFrame:
    """``interleave([frame.filter(when).with_columns(**own).select(columns) for when, own in parts])``.

    ``frame`` holds one row per source row (``source_row`` strictly increasing, as readers
    build it); a part's ``own`` expressions are evaluated on that part's rows alone, as in the
    plain form, so values and types are the same. ``columns`` defaults to every column.
    """
    def plain() -> pl.DataFrame:
        frames = [frame.filter(when).with_columns(**own) for when, own in parts]
        return interleave([f.select(columns) if columns is not None else f for f in frames])

    sources = frame["source_row"]
    rows_of_source = sources.to_numpy()
    if frame.height == 0 or sources.null_count() or not (rows_of_source[1:] > rows_of_source[:-1]).all():
        return plain()
    # Part p of row r comes before part p + 1 of r and every part of r + 1: flat positions of
    # the (row, part) table, read row by row, are the output order.
    # with_columns: a literal condition (a part every row has) is spread over the rows.
    taken = np.column_stack([frame.with_columns(__part_taken=when.fill_null(False))["__part_taken"].to_numpy() for when, _ in parts])
    flat = np.flatnonzero(taken.ravel())
    if len(flat) == 0:
        return plain()
    row, part = flat // len(parts), flat % len(parts)
    names = frame.head(0).with_columns(**parts[0][1])
    names = (names.select(columns) if columns is not None else names).columns
    changed = [c for c in names if any(c in own for _, own in parts)]
    # A part's own columns, computed on its rows alone (from the columns they read), stacked
    # in part order; the m-th movement of part p is then row m of part p in the stack.
    own_parts = []
    for when, own in parts:
        reads = {root for expr in [when, *own.values()] for root in expr.meta.root_names()} | set(changed)
        narrow = frame.select([c for c in frame.columns if c in reads]).filter(when)
        own_parts.append(narrow.with_columns(**own).select(changed))
    starts = np.cumsum([0, *[p.height for p in own_parts[:-1]]])
    in_stack = np.empty(len(flat), dtype=np.int64)
    for p in range(len(parts)):
        at = np.flatnonzero(part == p)
        in_stack[at] = starts[p] + np.arange(len(at))
    out = frame.select([c for c in names if c not in changed]).rechunk().gather(row)
    stack = pl.concat(own_parts).rechunk()
    return out.hstack(stack.gather(in_stack)).select(names)


# ---------------------------------------------------------------------------------------------
# Per-row checks in the common wording (Binance, Bybit)
# ---------------------------------------------------------------------------------------------


def number_checks(column: str, name: str, *, required: bool = True, sign: str | None = None, when: pl.Expr | None = None) -> list[Check]:
    """Checks for a number parsed by :func:`utl.decimals.with_venue_decimals` from the venue column ``column``.

    ``sign`` is ``"positive"`` or ``"non-negative"``; ``when`` limits the checks to rows
    where the number's unit was known (so a bad pair is not reported twice).
    """
    gate = when if when is not None else pl.lit(True)
    value = pl.col(name)
    checks = [Check(column, gate & pl.col(f"{name}__bad"), pl.format(f'"{column}": "{{}}" is not an exact decimal', pl.col(column)))]
    if required:
        checks.append(Check(column, gate & value.is_null() & ~pl.col(f"{name}__bad"), f'"{column}" is missing'))
    if sign == "positive":
        checks.append(Check(column, value <= 0, pl.format(f'"{column}": "{{}}" is not positive', pl.col(column))))
    elif sign == "non-negative":
        checks.append(Check(column, value < 0, pl.format(f'"{column}": "{{}}" is negative', pl.col(column))))
    return checks


_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
_LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
# The same literals a comparison with the datetimes makes, made once (~0.25 ms each).
_EARLIEST_LIT, _LATEST_LIT = pl.lit(_EARLIEST), pl.lit(_LATEST)


def out_of_years(ts: pl.Expr) -> pl.Expr:
    """The time falls outside 2000..2099: a typo'd year, not a trade (null stays null)."""
    return (ts < _EARLIEST_LIT) | (ts >= _LATEST_LIT)


def time_checks(column: str, shape: str) -> list[Check]:
    """The parsed ``ts`` must exist and fall in 2000..2099 (a typo'd year is not a trade)."""
    ts = pl.col("ts")
    return [
        Check(column, ts.is_null(), pl.format(f'"{column}": "{{}}" is not a {shape} time', pl.col(column))),
        Check(column, out_of_years(ts), pl.format(f'"{column}": "{{}}" is outside 2000..2099', pl.col(column))),
    ]


def side_checks(column: str) -> list[Check]:
    return [Check(column, pl.col("side").is_null(), pl.format(f'"{column}": "{{}}" is not BUY or SELL', pl.col(column)))]


def side_of(cell: pl.Expr) -> pl.Expr:
    """``BUY``/``SELL`` (any case) -> ``buy``/``sell``; null for anything else."""
    return cell.str.strip_chars().str.to_lowercase().replace_strict({"buy": "buy", "sell": "sell"}, default=None)


def signed(qty: pl.Expr, side: pl.Expr) -> pl.Expr:
    return pl.when(side == "sell").then(-qty).otherwise(qty)


def finish(
    source: Source, frame: pl.DataFrame, checks: list[Check], schema: pl.Schema, refused: pl.DataFrame, **after: pl.Expr
) -> Parsed:
    """Refuse failing rows, shape the rest to ``schema``, and gather every refusal by row.

    ``after`` holds the columns computed only from rows that passed: signs are applied after
    the checks on unsigned values, and sums after the checks that keep them in range.
    """
    passed, quarantine = split_refused(frame, checks, source.rel)
    out = to_schema(source, passed.with_columns(**after) if after else passed, schema)
    return Parsed(out, pl.concat([refused, quarantine]).sort("row", maintain_order=True))


def unsplit_reason(column: str, quote: pl.Expr, where: str = "") -> pl.Expr:
    cell = pl.col(column)
    return (
        pl.when(quote.is_null())
        .then(pl.format(f'"{column}": "{{}}" cannot be split into base and quote', cell))
        .otherwise(pl.format(f'"{column}": "{{}}" does not end with the quote asset "{{}}" {where}'.rstrip(), cell, quote))
    )



# ---------------------------------------------------------------------------------------------
# Numbers written with their unit (``0.01000000BTC``, ``"1,300.00USDT"``, ``0.26 USDT``)
# ---------------------------------------------------------------------------------------------

_NUMBER_THEN_CODE = r"(?s)^[0-9.,+\- ]*(?:[eE][+-]?[0-9][0-9+\- ]*)?(.*)$"
_DIGITS_THEN_LETTERS = r"^[0-9.,+\- ]*[A-Za-z]*$"


def trailing_code(cell: pl.Expr) -> pl.Expr:
    """The asset code glued after a number (``0.1BNB`` -> ``BNB``), "" when none.

    Only for codes that cannot start with a digit (quotes, third-asset fees): the number is
    read greedily, so ``0.011INCH`` would give ``INCH``. Strip known codes with
    :func:`strip_code` instead. ``2.0E-7BTC``: the E starts an exponent, not a code
    (``0.5ETH`` keeps its E).
    """
    return cell.map_batches(_trailing_codes, return_dtype=pl.String, is_elementwise=True)


def _trailing_codes(cells: pl.Series) -> pl.Series:
    if not kernels_for(len(cells)):
        return _trailing_codes_by_polars(cells)
    import pyarrow as pa

    from utl.venues._csv_kernels import glued_codes

    # The plain cells (a number, then letters) in one compiled pass; the rest as before.
    _wait_for_kernels()
    n = len(cells)
    offsets, data, valid = _string_buffers(cells)
    code_offsets, code_data, plain = np.zeros(n + 1, dtype=np.int64), np.zeros(len(data), dtype=np.uint8), np.zeros(n, dtype=np.bool_)
    glued_codes(offsets, data, valid, code_offsets, code_data, plain)
    array = pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(code_offsets), pa.py_buffer(code_data)], 0)
    codes = pl.Series(cells.name, array, dtype=pl.String)
    left = np.flatnonzero(~plain)
    if len(left):
        codes = codes.scatter(left, _trailing_codes_by_polars(cells.gather(left)))
    return codes


def _trailing_codes_by_polars(cells: pl.Series) -> pl.Series:
    text = cells.str.strip_chars()
    # Most cells are a number then letters: the letters at the end are the code, found by
    # one backward match. Only the others take the full pattern (exponents, junk).
    codes = text.str.extract(r"[A-Za-z]*$", 0)
    other = (~text.str.contains(_DIGITS_THEN_LETTERS) & text.is_not_null()).arg_true()
    if other.len():
        codes = codes.scatter(other, text.gather(other).str.extract(_NUMBER_THEN_CODE, 1))
    return codes.fill_null("")


def strip_code(cell: pl.Expr, code: pl.Expr) -> pl.Expr:
    """``cell`` without ``code`` (and a blank before it) at its end; unchanged otherwise."""
    # Stripped first, a cell that keeps its code has no blank at its end: the last strip
    # changes only the cells that lost their code ("0.26 USDT"). Three passes over the text,
    # none gathered or scattered (half the CPU of finding the coded cells first).
    return cell.str.strip_chars().str.strip_suffix(code.fill_null("")).str.strip_chars_end()


def code_at_end(cell: pl.Expr, first: pl.Expr, second: pl.Expr) -> pl.Expr:
    """Which of two known codes ends ``cell`` (the longer wins: ``BETH`` over ``ETH``), else
    the glued code read greedily; null when the cell names no code."""
    # The struct takes the cell's name (its first field), and so does the result.
    parts = pl.struct(cell.str.strip_chars(), first.alias("__first"), second.alias("__second"))
    return parts.map_batches(_codes_at_end, return_dtype=pl.String, is_elementwise=True)


def _codes_at_end(parts: pl.Series) -> pl.Series:
    frame = parts.struct.unnest()
    frame.columns = ["text", "first", "second"]
    frame = frame.with_columns(
        by_first=pl.col("text").str.ends_with(pl.col("first")).fill_null(False),
        by_second=pl.col("text").str.ends_with(pl.col("second")).fill_null(False),
    )
    first_longer = pl.col("first").str.len_chars() >= pl.col("second").str.len_chars()
    code = frame.select(
        pl.when(pl.col("by_first") & pl.col("by_second"))
        .then(pl.when(first_longer).then(pl.col("first")).otherwise(pl.col("second")))
        .when(pl.col("by_first"))
        .then(pl.col("first"))
        .when(pl.col("by_second"))
        .then(pl.col("second"))
    ).to_series()
    # Neither known code: the glued one, computed for those cells only.
    other = (~(frame["by_first"] | frame["by_second"])).arg_true()
    if other.len():
        code = code.scatter(other, _trailing_codes(frame["text"].gather(other)))
    return code.replace("", None).alias(parts.name)


# ---------------------------------------------------------------------------------------------
# Numbers, with or without their unit, parsed in one compiled pass
# ---------------------------------------------------------------------------------------------

Number = str | pl.Expr | tuple[str | pl.Expr, str | pl.Expr]

# Below this many rows the Polars passes alone parse (tests set it to 0).
KERNEL_ROWS = 20_000
KERNEL_BYTES = 1 << 20  # a file this large has about KERNEL_ROWS rows or more
# The kernels run only in a process that has loaded numba already (the end-of-day run and
# ingest load it with utl.lots): loading it costs ~0.45 s of CPU and ~120 MB, about what
# they save on a million-row file, so a process reading one export alone keeps the Polars
# passes (tests set this False to run the kernels anyway).
KERNELS_NEED_NUMBA_LOADED = True
_warming: list[threading.Thread] = []


def kernels_for(rows: int) -> bool:
    """Whether a column of ``rows`` cells is parsed by the compiled passes."""
    return rows >= KERNEL_ROWS and (not KERNELS_NEED_NUMBA_LOADED or "numba" in sys.modules)


def warm_kernels() -> None:
    """Load the number kernel in a thread (once per process), so that a reader can read its
    file meanwhile; :func:`with_numbers` waits for it."""
    if not _warming:
        thread = threading.Thread(target=_load_kernels, daemon=True)
        _warming.append(thread)
        thread.start()


def _load_kernels() -> None:
    from utl.venues._csv_kernels import count_two, regular_rows_by_words

    count_two(np.zeros(9, dtype=np.uint8), np.zeros(1, dtype=np.uint64), 34, 10)
    _ascii_only(np.frombuffer(b"a,b\n" * 4, dtype=np.uint8), 1)  # read-only, as a mapped file
    text = np.frombuffer(b'"a",b\n' * 8, dtype=np.uint8)
    regular_rows_by_words(text, text.view(np.uint64), 0, ord(","), 2)
    from utl.venues._csv_kernels import line_ends, regular_views

    line_ends(text.view(np.uint64), text[:1])  # read-only, as a mapped file
    regular_views(text, text.view(np.uint64), 0, ord(","), 2, np.array([0, -1], dtype=np.int64),
                  np.empty((1, 8, 2), dtype=np.uint64), np.zeros(0, dtype=np.uint8))
    _decimal_column("x", np.ones(1, dtype=np.int64), np.ones(1, dtype=np.int64), np.ones(1, dtype=np.bool_))
    _plain_numbers(pl.Series(["1"]), None)
    _kernel_times(pl.Series(["2024-03-05 09:15:02"]), 4, ord(" "), 0, b"")
    from utl.venues._csv_kernels import glued_codes, second_texts

    glued_codes(np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.uint8), np.ones(1, dtype=np.bool_),
                np.zeros(2, dtype=np.int64), np.zeros(0, dtype=np.uint8), np.zeros(1, dtype=np.bool_))

    second_texts(np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.bool_), np.zeros(20, dtype=np.uint8), np.zeros(1, dtype=np.bool_))
    from utl.venues._csv_kernels import edge_blanks

    edge_blanks(*_string_buffers(pl.Series([" a"])))
    from utl.venues._csv_kernels import decimal_cells, field_bytes, field_offsets, note_tokens

    # Coinbase's transaction report notes (utl.venues.coinbase._note_groups); read-only
    # buffers where the reader's are (Arrow's): numba compiles each kind apart.
    rows, bounds, exact = np.zeros(1, dtype=np.int64), np.zeros((1, 2), dtype=np.int64), np.zeros(1, dtype=np.bool_)
    note_tokens(np.frombuffer(np.array([0, 3], dtype=np.int64).tobytes(), dtype=np.int64), np.frombuffer(b"a b", dtype=np.uint8), rows,
                np.frombuffer(b"a", dtype=np.uint8), np.array([0, 1, 1], dtype=np.int64), np.array([-1, -1], dtype=np.int64), bounds, exact)
    field_at, wanted = np.zeros((1, 2), dtype=np.int64), np.zeros(1, dtype=np.int64)
    field_offsets(bounds, rows, exact, wanted, field_at)
    field_bytes(np.frombuffer(b"a b", dtype=np.uint8), bounds, rows, exact, wanted, field_at, np.zeros(3, dtype=np.uint8))
    decimal_cells(np.frombuffer(np.array([0, 1], dtype=np.int64).tobytes(), dtype=np.int64), np.frombuffer(b"1", dtype=np.uint8),
                  np.ones(1, dtype=np.bool_), np.zeros((1, 2), dtype=np.uint64), np.zeros(1, dtype=np.bool_))


def _wait_for_kernels() -> None:
    if _warming and _warming[0] is not threading.current_thread():
        _warming[0].join()


def with_numbers(frame: pl.DataFrame, texts: Mapping[str, Number] | None = None, /, **named: Number) -> pl.DataFrame:
    """:func:`utl.decimals.with_venue_decimals`, the same columns (``name``, the exact decimal,
    and ``name__bad``) and the same values, for each ``name: text`` or ``name: (cell, code)``;
    the second is the number of ``strip_code(cell, code)``: a cell with its unit glued on.

    One compiled pass per column (:func:`utl.venues._csv_kernels.coded_decimals`) reads the
    cells written the plain way (a sign, ``$``, thousands commas, at most 18 digits a side),
    which is nearly all of them; only the others (blank, an exponent, ``€``, junk, a blank
    other than a space) take ``strip_code`` and the venue parser's passes, gathered alone.
    Such a decimal has one value, so which path read a cell never shows in the result.
    """
    from utl.decimals import parse_venue_numbers, with_venue_decimals

    texts = {**(texts or {}), **named}
    if not texts:
        return frame
    exprs: dict[str, pl.Expr] = {}
    for name, text in texts.items():
        cell, code = text if isinstance(text, tuple) else (text, None)
        exprs[name] = (pl.col(cell) if isinstance(cell, str) else cell).cast(pl.String)
        if code is not None:
            exprs[f"{name}__code"] = (pl.col(code) if isinstance(code, str) else code).cast(pl.String)
    cells = frame.select(**exprs)
    if not kernels_for(frame.height):
        stripped = {n: strip_code(pl.col(n), pl.col(f"{n}__code")) if f"{n}__code" in cells.columns else pl.col(n) for n in texts}
        parsed_all = with_venue_decimals(cells, stripped)
        return frame.with_columns(parsed_all.select(c for n in texts for c in (n, f"{n}__bad")))
    def parse(name: str) -> tuple[pl.Series, pl.Series]:
        coded = f"{name}__code" in cells.columns
        whole, fraction, exact = _plain_numbers(cells[name], cells[f"{name}__code"] if coded else None)
        value = _decimal_column(name, whole, fraction, exact)
        bad = pl.Series(f"{name}__bad", np.zeros(len(exact), dtype=bool))
        left = np.flatnonzero(~exact)
        if len(left):
            rest = cells[[name, f"{name}__code"] if coded else [name]][left]
            text = rest.select(strip_code(pl.col(name), pl.col(f"{name}__code")) if coded else pl.col(name)).to_series()
            odd_values, odd_bad = parse_venue_numbers(text)
            value = value.scatter(left, odd_values)
            bad = bad.scatter(left, odd_bad)
        return value, bad

    # The kernel lets go of the GIL: columns are read two at a time, as Polars' passes were.
    with concurrent.futures.ThreadPoolExecutor(min(2, len(texts))) as pool:
        parsed = [series for pair in pool.map(parse, texts) for series in pair]
    return frame.with_columns(parsed)


def strip_texts(frame: pl.DataFrame, columns: Sequence[str]) -> pl.DataFrame:
    """``frame.with_columns(pl.col(columns).str.strip_chars())``, the same values; where the
    compiled passes read a file's numbers, a column in which no cell can start or end with a
    blank (:func:`utl.venues._csv_kernels.edge_blanks`, a look at each cell's first and last
    byte) is kept as it is instead of copied stripped, as nearly every column of an export is."""
    columns = list(columns)
    if not columns or not kernels_for(frame.height):
        return frame.with_columns(pl.col(columns).str.strip_chars())
    from utl.venues._csv_kernels import edge_blanks

    _wait_for_kernels()

    def blanks(name: str) -> bool:
        cells = frame[name]
        return cells.dtype != pl.String or edge_blanks(*_string_buffers(cells))

    # The pass lets go of the GIL: two columns at a time.
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        bare = [name for name, blank in zip(columns, pool.map(blanks, columns)) if blank]
    return frame.with_columns(pl.col(bare).str.strip_chars()) if bare else frame


def _string_buffers(cells: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A text column's Arrow offsets and bytes (no copy) and where it is not null."""
    import pyarrow as pa

    array = cells.rechunk().to_arrow()
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array.type != pa.large_string():
        array = array.cast(pa.large_string())
    _, offsets, data = array.buffers()
    n = len(array)
    offsets = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + n + 1]
    data = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)
    valid = np.ones(n, dtype=np.bool_) if array.null_count == 0 else cells.is_not_null().to_numpy()
    return offsets, data, valid


def _plain_numbers(cells: pl.Series, codes: pl.Series | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(whole, fraction in 1e-18 units, exact) per cell: :func:`coded_decimals`."""
    from utl.venues._csv_kernels import coded_decimals

    _wait_for_kernels()
    n = len(cells)
    whole, fraction, exact = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.bool_)
    if n == 0:
        return whole, fraction, exact
    offsets, data, valid = _string_buffers(cells)
    if codes is None:
        code_offsets, code_data, code_valid = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8), valid
    else:
        code_offsets, code_data, code_valid = _string_buffers(codes)
    coded_decimals(offsets, data, valid, code_offsets, code_data, code_valid, whole, fraction, exact)
    return whole, fraction, exact


def _decimal_column(name: str, whole: np.ndarray, fraction: np.ndarray, exact: np.ndarray) -> pl.Series:
    """``whole + fraction * 1e-18`` as ``Decimal(38, 18)``, null where not ``exact``: its
    128-bit units made by :func:`utl.venues._csv_kernels.decimal_units`, taken by Arrow as
    they are."""
    import pyarrow as pa

    from utl.venues._csv_kernels import decimal_units

    units = np.zeros((len(whole), 2), dtype=np.uint64)
    decimal_units(whole, fraction, exact, units)
    nulls = int(len(exact) - np.count_nonzero(exact))
    validity = pa.py_buffer(np.packbits(exact, bitorder="little")) if nulls else None
    array = pa.Array.from_buffers(pa.decimal128(38, 18), len(exact), [validity, pa.py_buffer(units)], nulls)
    return pl.Series(name, array)


def shaped_time(text: pl.Expr, shapes: Sequence[tuple[str, str]], offset_minutes: int = 0) -> pl.Expr:
    """Time text in one of the documented ``shapes`` (a regex the stripped text must match,
    and the ``strptime`` format for it), local at a fixed offset, as UTC; null otherwise.

    The regex comes first because Polars' parser alone accepts text not of the shape. Each
    shape is tried only on the cells the shapes before it did not match.
    """
    shapes = tuple(shapes)
    return text.map_batches(lambda cells: _shaped_times(cells, shapes, offset_minutes), return_dtype=pl.Datetime("us", "UTC"), is_elementwise=True)


def _shaped_times(cells: pl.Series, shapes: tuple[tuple[str, str], ...], offset_minutes: int) -> pl.Series:
    text = cells.cast(pl.String)
    kernel = _KERNEL_SHAPES.get(shapes[0]) if shapes else None
    if kernel is None or not kernels_for(len(text)):
        naive = _naive_times(text, shapes)
    else:
        # The first shape's cells in one compiled pass; the rest (other shapes, junk) as before.
        micros, exact = _kernel_times(text, *kernel)
        naive = pl.Series(cells.name, micros).cast(pl.Datetime("us"))
        left = np.flatnonzero(~exact)
        if len(left):
            naive = naive.scatter(left, _naive_times(text.gather(left), shapes))
    if offset_minutes:
        naive = naive - timedelta(minutes=offset_minutes)
    return naive.dt.replace_time_zone("UTC").alias(cells.name)


def _naive_times(cells: pl.Series, shapes: tuple[tuple[str, str], ...]) -> pl.Series:
    """The naive time of each cell by the first of ``shapes`` its stripped text matches."""
    text = cells.str.strip_chars()
    # All null to start with (pl.repeat: a list of a million Nones costs ~30 ms to convert).
    naive = pl.repeat(None, len(text), dtype=pl.Datetime("us"), eager=True).alias(cells.name)
    left = text.is_not_null().arg_true()
    for pattern, fmt in shapes:
        if left.len() == 0:
            break
        rest = text.gather(left) if left.len() < len(text) else text
        hit = rest.str.contains(pattern)
        if hit.all():
            parsed = _strptime(rest, fmt)
            naive = parsed if left.len() == len(text) else naive.scatter(left, parsed)
            break
        naive = naive.scatter(left.filter(hit), _strptime(rest.filter(hit), fmt))
        left = left.filter(~hit)
    return naive.alias(cells.name)


_ANY_PLACES = 1 << 30
# Shapes the compiled pass reads (utl.venues._csv_kernels.shaped_times): (pattern, format) ->
# (year digits, the byte between date and time, most fraction digits, suffix). Each pattern
# matches every text the kernel takes, and the format reads it as the kernel does.
_KERNEL_SHAPES: dict[tuple[str, str], tuple[int, int, int, bytes]] = {
    (r"^\d{2}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%y-%m-%d %H:%M:%S"): (2, ord(" "), 0, b""),
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%Y-%m-%d %H:%M:%S"): (4, ord(" "), 0, b""),
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$", "%Y-%m-%d %H:%M:%S%.f"): (4, ord(" "), 9, b""),
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$", "%Y-%m-%d %H:%M:%S%.f"): (4, ord(" "), _ANY_PLACES, b""),
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? UTC$", "%Y-%m-%d %H:%M:%S%.f UTC"): (4, ord(" "), _ANY_PLACES, b" UTC"),
    (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$", "%Y-%m-%dT%H:%M:%S%.fZ"): (4, ord("T"), _ANY_PLACES, b"Z"),
}


def _kernel_times(text: pl.Series, year_digits: int, separator: int, max_places: int, suffix: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(naive microseconds since 1970, exact) per cell: :func:`utl.venues._csv_kernels.shaped_times`."""
    from utl.venues._csv_kernels import shaped_times

    _wait_for_kernels()
    n = len(text)
    micros, exact = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.bool_)
    offsets, data, valid = _string_buffers(text)
    shaped_times(offsets, data, valid, year_digits, separator, max_places, np.frombuffer(suffix, dtype=np.uint8), micros, exact)
    return micros, exact


_WHOLE_SECONDS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")  # 19 characters of text


def _strptime(text: pl.Series, fmt: str) -> pl.Series:
    """``text.str.strptime(fmt)``, the same result. A fraction of a second (``%.f``) sends
    Polars to a parser several times slower, so ``<date time>%.f<suffix>`` is read in two
    parts: the 19 characters of whole seconds by the fast parser, then the fraction's first
    6 digits (Polars truncates to microseconds) as an integer.
    """
    whole, _, suffix = fmt.partition("%.f")
    if whole not in _WHOLE_SECONDS or "%" in suffix:
        # No cache: export times are nearly all distinct, and caching hashes every cell first.
        return text.str.strptime(pl.Datetime("us"), fmt, strict=False, cache=False)
    t = pl.col("t")
    tail = t.str.slice(len("2024-03-05 09:15:02"))
    places = (tail.str.len_chars().cast(pl.Int64) - len(suffix) - 1).clip(0, 6)
    scale = {n: 10 ** (6 - n) for n in range(7)}
    micros = tail.str.slice(1, places).cast(pl.Int64, strict=False) * places.replace_strict(scale, return_dtype=pl.Int64)
    seconds = t.str.slice(0, len("2024-03-05 09:15:02")).str.strptime(pl.Datetime("us"), whole, strict=False, cache=False)
    parsed = (
        pl.when(tail == suffix)
        .then(seconds)
        .when(tail.str.contains(r"^\.[0-9]+" + re.escape(suffix) + "$"))
        .then(seconds + pl.duration(microseconds=micros))
    )
    return pl.DataFrame({"t": text}).select(parsed).to_series().alias(text.name)


_SECOND_TEXT = "%Y-%m-%dT%H:%M:%SZ"


def utc_second_text(ts: pl.Expr) -> pl.Expr:
    """``ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ")`` of a UTC time (``Datetime("us", "UTC")``), the
    same text; written by a compiled pass where the kernels run (strftime: ~0.12 CPU s per
    million times), strftime writing the rest (years outside 1000..9999)."""
    return ts.map_batches(_second_texts, return_dtype=pl.String, is_elementwise=True)


def _second_texts(times: pl.Series) -> pl.Series:
    if times.dtype != pl.Datetime("us", "UTC") or not kernels_for(len(times)):
        return times.dt.strftime(_SECOND_TEXT)
    import pyarrow as pa

    from utl.venues._csv_kernels import second_texts

    _wait_for_kernels()
    n = len(times)
    valid = times.is_not_null().to_numpy()
    micros = times.to_physical().fill_null(0).to_numpy()
    text, exact = np.zeros(20 * n, dtype=np.uint8), np.zeros(n, dtype=np.bool_)
    second_texts(micros, valid, text, exact)
    offsets = np.arange(0, 20 * n + 1, 20, dtype=np.int64)
    nulls = int(n - np.count_nonzero(exact))
    validity = pa.py_buffer(np.packbits(exact, bitorder="little")) if nulls else None
    array = pa.Array.from_buffers(pa.large_string(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(text)], nulls)
    written = pl.Series(times.name, array, dtype=pl.String)
    left = np.flatnonzero(valid & ~exact)
    if len(left):
        written = written.scatter(left, times.gather(left).dt.strftime(_SECOND_TEXT))
    return written


def utc(expr: pl.Expr, fmt: str, offset_minutes: int = 0) -> pl.Expr:
    """Parse naive local-time text in ``fmt`` into UTC, shifting by a fixed offset."""
    if fmt in _KERNEL_FORMATS:
        naive = expr.map_batches(lambda cells: _formatted_times(cells, fmt), return_dtype=pl.Datetime("us"), is_elementwise=True)
    else:
        naive = expr.str.strip_chars().str.strptime(pl.Datetime("us"), fmt, strict=False, cache=False)
    return (naive - pl.duration(minutes=offset_minutes)).dt.replace_time_zone("UTC")


# Formats whose texts the compiled pass reads where they have the format's exact shape (as
# :data:`_KERNEL_SHAPES`); Polars' parser reads the rest, which it may accept more loosely.
_KERNEL_FORMATS: dict[str, tuple[int, int, int, bytes]] = {"%Y-%m-%d %H:%M:%S": (4, ord(" "), 0, b"")}


def _formatted_times(cells: pl.Series, fmt: str) -> pl.Series:
    text = cells.cast(pl.String)

    def by_polars(t: pl.Series) -> pl.Series:
        return t.str.strip_chars().str.strptime(pl.Datetime("us"), fmt, strict=False, cache=False)

    if not kernels_for(len(text)):
        return by_polars(text).alias(cells.name)
    micros, exact = _kernel_times(text, *_KERNEL_FORMATS[fmt])
    naive = pl.Series(cells.name, micros).cast(pl.Datetime("us"))
    left = np.flatnonzero(~exact)
    if len(left):
        naive = naive.scatter(left, by_polars(text.gather(left)))
    return naive.alias(cells.name)
