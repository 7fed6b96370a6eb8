"""What every venue reader shares: a source file, its text table, its refused rows.

A *format* is one export layout (Binance Spot Trade History, Kraken Ledgers, ...). It says
whether a file is its own from the file's first bytes (:meth:`Format.detect`), never from
the file's name, and reads the file into one of the raw canonical frames of
:mod:`utl.schemas` plus the rows it refused. Readers read every cell as text (no type
inference, no float) and parse numbers with :func:`utl.decimals.venue_decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

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


@dataclass(frozen=True)
class Parsed:
    """A reader's result: the booked rows and the refused ones (never dropped)."""

    frame: pl.DataFrame
    quarantine: pl.DataFrame


@dataclass(frozen=True)
class Format:
    name: str  # "binance.spot_trades"
    kind: Kind
    detect: Callable[[str], bool]  # given the head of the file as text (BOM stripped)
    read: Callable[[Source], Parsed]


def head_text(path: Path, size: int = HEAD_BYTES) -> str:
    """The first bytes of a file as text, BOMs removed; raises UnicodeDecodeError if not UTF-8."""
    with open(path, "rb") as fh:
        raw = fh.read(size)
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


def first_line(head: str, skip: int = 0) -> str:
    lines = head.splitlines()
    return lines[skip].strip() if len(lines) > skip else ""


def header_cells(line: str) -> list[str]:
    """Header cells of a CSV line, unquoted and stripped."""
    return [c.strip().strip('"').strip() for c in line.replace(BOM, "").split(",")]


def read_text_csv(source: Source, skip_lines: int = 0) -> pl.DataFrame:
    """Every cell as stripped text ("" when empty), plus ``source_row``, the 1-based data row.

    ``skip_lines`` skips a preamble before the header (Coinbase, OKX, Bybit). BOMs anywhere
    (OKX repeats U+FEFF in cells) are removed. Blank lines carry no data and are left out;
    their numbers stay counted, so row numbers still match the file. A file that is not
    UTF-8, or a row with more cells than the header, fails the whole file.
    """
    try:
        data = source.path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source.rel}: not UTF-8 text: {e}") from e
    if skip_lines:
        data = "\n".join(data.splitlines()[skip_lines:])
    try:
        frame = pl.read_csv(
            data.replace(BOM, "").encode(),
            infer_schema=False,
            has_header=True,
            truncate_ragged_lines=False,
            empty_string_is_null=False,
        )
    except pl.exceptions.PolarsError as e:
        raise ValueError(f"{source.rel}: not a well-formed CSV (a row with more cells than the header?): {e}") from e
    frame = frame.rename({c: c.strip() for c in frame.columns})
    cells = frame.columns
    frame = frame.with_columns(pl.col(c).fill_null("").str.strip_chars() for c in cells)
    frame = frame.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    if not cells:
        return frame
    return frame.filter(~pl.all_horizontal(pl.col(c) == "" for c in cells))


@dataclass(frozen=True)
class Check:
    """A per-row check: where ``bad`` is true the row is refused for ``column``."""

    column: str | None
    bad: pl.Expr
    reason: str | pl.Expr
    raw: pl.Expr | None = None  # defaults to the column's text


def split_refused(frame: pl.DataFrame, checks: list[Check], file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Apply the checks; returns (rows that passed every check, one quarantine row per failure).

    ``frame`` must hold ``source_row`` and the raw text columns the checks name.
    """
    if not checks:
        return frame, empty_quarantine()
    flagged = frame.with_columns(
        [c.bad.fill_null(False).alias(f"__bad{i}") for i, c in enumerate(checks)]
    )
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
    any_bad = pl.any_horizontal([pl.col(f"__bad{i}") for i in range(len(checks))])
    passed = flagged.filter(~any_bad).drop([f"__bad{i}" for i in range(len(checks))])
    quarantine = pl.concat(refused_parts).sort("row", maintain_order=True) if refused_parts else empty_quarantine()
    return passed, quarantine.cast(QUARANTINE_SCHEMA)


def synthetic_id(columns: list[str]) -> pl.Expr:
    """An id for formats that have none: the raw row's fields + its occurrence number.

    Identical rows do repeat in such exports; the occurrence number (1, 2, ...) among
    identical rows of the same file keeps each one (contract: eod.md, Landing folder).
    """
    raw = pl.concat_str([pl.col(c).fill_null("") for c in columns], separator="|")
    occurrence = pl.int_range(1, pl.len() + 1).over(raw)
    return pl.concat_str([raw, occurrence.cast(pl.String)], separator="#")


def utc(expr: pl.Expr, fmt: str, offset_minutes: int = 0) -> pl.Expr:
    """Parse naive local-time text in ``fmt`` into UTC, shifting by a fixed offset."""
    naive = expr.str.strip_chars().str.strptime(pl.Datetime("us"), fmt, strict=False)
    return (naive - pl.duration(minutes=offset_minutes)).dt.replace_time_zone("UTC")
