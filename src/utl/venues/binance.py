"""Binance exports: Spot Trade History, Transaction History, USDⓈ-M Futures Trade and
Transaction History, and the ``GET /api/v3/account`` balance reply.

Layouts, versions and quirks: ``/work/shared/venues/binance.md``. Three things drive the code:

- A ``Time`` column is in the zone chosen at export, written only in the file name
  (``…(UTC+8)_ab12.csv``; ``(UTC--6)`` is UTC-6). Without it a local time cannot be placed,
  so every row of such a file is refused rather than guessed.
- Spot cells carry their asset glued to the number (``0.01000000BTC``, ``"1,300.50USDT"``).
  Codes may begin with digits (``1INCH``), so a number cannot be told from its code by
  scanning letters: the base and quote are taken from the pair and stripped from the end.
- Spot fills and ledger lines have no id: the key is the row's content plus its occurrence
  number. The time in the key is the UTC instant, not the local text, so the same row
  exported in two zones is one fill.

The CSV helpers at the top are shared with :mod:`utl.venues.bybit`.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from decimal import Decimal

import polars as pl

from utl.assets import split_symbol
from utl.decimals import DECIMAL, venue_decimal
from utl.errors import QUARANTINE_SCHEMA, empty_quarantine
from utl.schemas import BALANCES, FILLS, MOVEMENTS
from utl.venues.base import BOM, Check, Format, Parsed, Source, first_line, header_cells, split_refused, utc

# ---------------------------------------------------------------------------------------------
# Text-table helpers (shared with bybit)
# ---------------------------------------------------------------------------------------------


def read_rows(source: Source, skip_lines: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every cell as text, with ``source_row`` (1-based data row); and the rows refused whole.

    A row with more or fewer cells than the header (a file cut short, a stray comma) is
    refused alone with its line as raw text: Polars pads a short row with empty cells, which
    could book a truncated number. Blank lines hold nothing and are skipped (row numbers
    still count them). ``skip_lines`` skips a preamble such as Bybit's ``UID:`` line.
    """
    data = source.path.read_bytes()
    data.decode("utf-8")  # refuse a file that is not UTF-8, naming the bad byte
    if data.find(BOM.encode()) != -1:  # OKX-style files repeat it inside cells
        data = data.replace(BOM.encode(), b"")
    lines = pl.read_csv(
        data, has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
        new_columns=["line"], empty_string_is_null=False, truncate_ragged_lines=True, raise_if_empty=False,
    )  # fmt: skip
    if lines.height <= skip_lines:
        raise ValueError("the file has no header row")
    body = lines.to_series().slice(skip_lines + 1)
    if skip_lines:
        data = data.split(b"\n", skip_lines)[-1]
    read = lambda ragged_ok: pl.read_csv(  # noqa: E731
        data, infer_schema=False, has_header=True, empty_string_is_null=False, truncate_ragged_lines=ragged_ok
    )
    frame = read(True)
    frame = frame.rename({c: c.strip() for c in frame.columns})
    frame = frame.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    if body.len() != frame.height:
        # A quoted cell spans lines, so lines are not rows: let Polars refuse long rows.
        read(False)
        return frame, empty_quarantine()
    # Separators in a line = its commas less those inside quoted cells ("1,300.00USDT").
    columns = [c for c in frame.columns if c != "source_row"]
    inside = frame.select(pl.sum_horizontal(pl.col(c).str.count_matches(",", literal=True) for c in columns)).to_series()
    cells = body.str.count_matches(",", literal=True) - inside + 1
    blank = body.str.strip_chars() == ""
    ragged = ~blank & (cells != len(columns))
    refused = (
        pl.DataFrame({"line": body, "cells": cells, "ragged": ragged})
        .with_row_index("row", offset=1)
        .filter(pl.col("ragged"))
        .select(
            file=pl.lit(source.rel),
            row=pl.col("row").cast(pl.Int64),
            column=pl.lit(None, pl.String),
            reason=pl.format("the row has {} cells, the header {}", pl.col("cells"), pl.lit(len(columns))),
            raw=pl.col("line"),
        )
        .cast(QUARANTINE_SCHEMA)
    )
    return frame.filter(~(blank | ragged)), refused


def require_columns(frame: pl.DataFrame, columns: list[str], what: str) -> None:
    """A matched header that lacks a column the reader needs fails the whole file."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {', '.join(repr(c) for c in missing)}")


def header_is(head: str, layouts: list[tuple[str, ...]], skip: int = 0) -> bool:
    return tuple(header_cells(first_line(head, skip))) in layouts


def trailing_code(cell: pl.Expr) -> pl.Expr:
    """The asset code glued after a number (``0.1BNB`` -> ``BNB``), "" when none.

    Only for codes that cannot start with a digit (quotes, third-asset fees): the number is
    read greedily, so ``0.011INCH`` would give ``INCH``. Strip known codes with
    :func:`strip_code` instead.
    """
    after = cell.str.strip_chars().str.strip_chars_start("0123456789.,+- ")
    # "2.0E-7BTC": the E starts an exponent, not a code ("0.5ETH" keeps its E).
    exponent = after.str.contains(r"^[eE][+-]?[0-9]")
    code = pl.when(exponent).then(after.str.slice(1).str.strip_chars_start("0123456789+- ")).otherwise(after)
    return code.fill_null("")


def strip_code(cell: pl.Expr, code: pl.Expr) -> pl.Expr:
    """``cell`` without ``code`` (and a blank before it) at its end; unchanged otherwise."""
    text = cell.str.strip_chars()
    return pl.coalesce(text.str.strip_suffix(code), text).str.strip_chars()


def code_at_end(cell: pl.Expr, first: pl.Expr, second: pl.Expr) -> pl.Expr:
    """Which of two known codes ends ``cell`` (the longer wins: ``BETH`` over ``ETH``), else
    the glued code read greedily; null when the cell names no code."""
    text = cell.str.strip_chars()
    first_longer = first.str.len_chars() >= second.str.len_chars()
    longer = pl.when(first_longer).then(first).otherwise(second)
    shorter = pl.when(first_longer).then(second).otherwise(first)
    code = (
        pl.when(text.str.ends_with(longer).fill_null(False))
        .then(longer)
        .when(text.str.ends_with(shorter).fill_null(False))
        .then(shorter)
        .otherwise(trailing_code(text))
    )
    return pl.when(code == "").then(None).otherwise(code)


# ASCII digits, commas only grouping thousands, at most 18 decimals unless the rest are
# zeros (Bybit writes 20). Exactly these cells convert directly; see with_decimals.
_PLAIN = r"^-?([0-9]{1,3}(,[0-9]{3}){1,5}|[0-9]{1,20})(\.[0-9]{1,18}0*)?$"


def unexponent(text: pl.Expr) -> pl.Expr:
    """Scientific text (``-3.605E-05``, ``0E-20``) as plain decimal text, exactly: the point
    moves, the digits stay. Null for other text and for exponents no decimal here can hold."""
    parts = text.str.extract_groups(r"^([+-]?)[$€£]?([0-9]*)\.?([0-9]*)[eE]([+-]?[0-9]{1,4})$")
    sign = pl.when(parts.struct.field("1") == "-").then(pl.lit("-")).otherwise(pl.lit(""))
    integer, fraction = parts.struct.field("2"), parts.struct.field("3")
    written = pl.concat_str([integer, fraction])
    digits = written.str.strip_chars_start("0")
    n = digits.str.len_chars().cast(pl.Int64)
    # Digits before the point once the exponent has moved it.
    point = integer.str.len_chars().cast(pl.Int64) - (written.str.len_chars().cast(pl.Int64) - n)
    point = point + parts.struct.field("4").cast(pl.Int64)
    # Every branch is evaluated on every row: keep lengths in range even where unused.
    ahead, behind = point.clip(0, 40), (n - point).clip(0, 80)
    plain = (
        pl.when(digits == "")
        .then(pl.lit("0"))
        .when((point < -40) | (point > 40))
        .then(None)
        .when(point <= 0)
        .then(pl.concat_str([pl.lit("0."), digits.str.zfill(behind)]))
        .when(point >= n)
        .then(digits.str.pad_end(ahead, "0"))
        .otherwise(pl.concat_str([digits.str.slice(0, ahead), pl.lit("."), digits.str.slice(ahead)]))
    )
    return pl.when((integer != "") | (fraction != "")).then(pl.concat_str([sign, plain]))


def with_decimals(frame: pl.DataFrame, **texts: pl.Expr) -> pl.DataFrame:
    """Add each named number as ``name`` (exact decimal) and ``name__bad``.

    Three passes, each over the cells the last one left: plain numbers convert directly;
    exponent forms convert once their point is moved in the text (``0E-20`` is zero; the
    shared parser refuses it); only the rest (signs, currency marks, ``--``, junk) go to
    :func:`venue_decimal`. Tested against Python's ``Decimal``. Text that is present but
    gives no value is bad whatever the parser says (a lone ``","``): never read as "none".
    """
    columns = []
    for name, text in texts.items():
        cells = frame.select(text.str.strip_chars().alias("cell")).to_series()
        values = pl.repeat(None, len(cells), dtype=DECIMAL, eager=True)
        bad = pl.repeat(False, len(cells), eager=True)
        left = pl.int_range(0, len(cells), dtype=pl.UInt32, eager=True)  # rows not yet read
        for spell in (lambda cell: cell, unexponent):
            spelled = pl.DataFrame({"cell": cells.gather(left)}).select(spell(pl.col("cell"))).to_series()
            hit = spelled.str.contains(_PLAIN).fill_null(False)
            number = spelled.filter(hit).str.replace_all(",", "", literal=True).str.to_decimal(scale=18)
            values = values.scatter(left.filter(hit), number.cast(DECIMAL))
            left = left.filter(~hit)
        if left.len():
            value, is_bad = venue_decimal(pl.col("cell"))
            present = ~pl.col("cell").is_in(["", "--"])
            rest = pl.DataFrame({"cell": cells.gather(left)}).select(
                v=value.cast(DECIMAL), b=(is_bad | (value.is_null() & present)).fill_null(False)
            )
            values, bad = values.scatter(left, rest["v"]), bad.scatter(left, rest["b"])
        columns += [values.alias(name), bad.alias(f"{name}__bad")]
    return frame.with_columns(columns)


def with_content_id(frame: pl.DataFrame, columns: list[str], alias: str) -> pl.DataFrame:
    """``alias`` = :func:`synthetic_id` of ``columns``: the row's text + its occurrence number.

    Same ids; counting occurrences only among rows whose text repeats (few) keeps it fast.
    """
    raw = pl.concat_str([pl.col(c).fill_null("") for c in columns], separator="|")
    frame = frame.with_columns(raw.alias(alias))
    # Hash first: a collision only sends a row to the exact count below.
    repeats = frame.select(pl.col(alias).hash().is_duplicated()).to_series().arg_true()
    occurrence = pl.repeat(1, frame.height, dtype=pl.Int64, eager=True)
    if repeats.len():
        counted = frame.select(pl.col(alias)).gather(repeats).select(pl.int_range(1, pl.len() + 1, dtype=pl.Int64).over(alias))
        occurrence = occurrence.scatter(repeats, counted.to_series())
    return frame.with_columns(pl.concat_str([pl.col(alias), occurrence.cast(pl.String)], separator="#"))


def number_checks(column: str, name: str, *, required: bool = True, sign: str | None = None, when: pl.Expr | None = None) -> list[Check]:
    """Checks for a number parsed by :func:`with_decimals` from the venue column ``column``.

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


def time_checks(column: str, shape: str) -> list[Check]:
    """The parsed ``ts`` must exist and fall in 2000..2099 (a typo'd year is not a trade)."""
    ts = pl.col("ts")
    return [
        Check(column, ts.is_null(), pl.format(f'"{column}": "{{}}" is not a {shape} time', pl.col(column))),
        Check(column, (ts < _EARLIEST) | (ts >= _LATEST), pl.format(f'"{column}": "{{}}" is outside 2000..2099', pl.col(column))),
    ]


def side_checks(column: str) -> list[Check]:
    return [Check(column, pl.col("side").is_null(), pl.format(f'"{column}": "{{}}" is not BUY or SELL', pl.col(column)))]


def side_of(cell: pl.Expr) -> pl.Expr:
    """``BUY``/``SELL`` (any case) -> ``buy``/``sell``; null for anything else."""
    word = cell.str.strip_chars().str.to_lowercase()
    return pl.when(word.is_in(["buy", "sell"])).then(word)


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
    out = (
        passed.with_columns(**after)
        .with_columns(venue=pl.lit(source.venue), account=pl.lit(source.account), source_file=pl.lit(source.rel))
        .select(list(schema.names()))
        .cast(schema)
    )
    return Parsed(out, pl.concat([refused, quarantine]).sort("row", maintain_order=True))


def unsplit_reason(column: str, quote: pl.Expr, where: str = "") -> pl.Expr:
    cell = pl.col(column)
    return (
        pl.when(quote.is_null())
        .then(pl.format(f'"{column}": "{{}}" cannot be split into base and quote', cell))
        .otherwise(pl.format(f'"{column}": "{{}}" does not end with the quote asset "{{}}" {where}'.rstrip(), cell, quote))
    )


def keyed(frame: pl.DataFrame, time_column: str, columns: list[str], alias: str) -> pl.DataFrame:
    """The content key of an id-less row, its time written as the UTC instant (the local
    text would differ between two exports of one row in two zones)."""
    when = pl.coalesce(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"), pl.col(time_column))
    return with_content_id(frame.with_columns(__when=when), ["__when", *columns], alias).drop("__when")


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------

# "(UTC+8)", "(UTC--6)" (= UTC-6), "(UTC+5:30)", "(UTC)".
_ZONE = re.compile(r"\(UTC(?:(--|\+|-)(\d{1,2})(?::?(\d{2}))?)?\)")


def zone_offset_minutes(file_name: str) -> int | None:
    """The export's UTC offset from the file name; None when the name carries none."""
    found = _ZONE.findall(file_name)
    if not found:
        return None
    sign, hours, minutes = found[-1]
    if not sign:
        return 0
    total = int(hours) * 60 + int(minutes or 0)
    if total > 14 * 60:
        return None
    return -total if sign in ("-", "--") else total


def binance_time(text: pl.Expr, offset_minutes: int) -> pl.Expr:
    """``YY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS`` local text at a fixed offset, as UTC."""
    t = text.str.strip_chars()
    return (
        pl.when(t.str.contains(r"^\d{2}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"))
        .then(utc(t, "%y-%m-%d %H:%M:%S", offset_minutes))
        .when(t.str.contains(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$"))
        .then(utc(t, "%Y-%m-%d %H:%M:%S", offset_minutes))
    )


def _timed(rows: pl.DataFrame, source: Source, local: str, universal: str) -> tuple[pl.DataFrame, str, list[Check]]:
    """Add ``ts`` from whichever time column the file has; the checks for it."""
    if universal in rows.columns:
        return rows.with_columns(ts=binance_time(pl.col(universal), 0)), universal, time_checks(universal, "YYYY-MM-DD HH:MM:SS")
    require_columns(rows, [local], source.rel)
    offset = zone_offset_minutes(source.path.name)
    if offset is None:
        reason = (
            f'"{local}": time zone unknown: Binance writes it only in the file name, '
            f'like "(UTC+8)", and "{source.path.name}" has none'
        )
        return rows.with_columns(ts=pl.lit(None, pl.Datetime("us", "UTC"))), local, [Check(local, pl.lit(True), reason)]
    return rows.with_columns(ts=binance_time(pl.col(local), offset)), local, time_checks(local, "YY-MM-DD HH:MM:SS")


# ---------------------------------------------------------------------------------------------
# 1. Spot Trade History (fills)
# ---------------------------------------------------------------------------------------------

SPOT_CURRENT = ("Time", "Pair", "Side", "Price", "Executed", "Amount", "Fee")
SPOT_PREVIOUS = ("Date(UTC)", "Pair", "Side", "Price", "Executed", "Amount", "Fee")
SPOT_LEGACY = ("Date(UTC)", "Market", "Type", "Price", "Amount", "Total", "Fee", "Fee Coin")


def read_spot_trades(source: Source) -> Parsed:
    rows, refused = read_rows(source)
    rows, time_column, checks = _timed(rows, source, "Time", "Date(UTC)")
    require_columns(rows, list(SPOT_CURRENT[1:]), source.rel)
    pair = pl.col("Pair").str.strip_chars()
    # The quote is the code glued to Amount (quotes never start with a digit); the base is
    # what the pair leaves, which keeps digit-led bases such as 1INCH whole.
    frame = rows.with_columns(symbol=pair, quote=trailing_code(pl.col("Amount")))
    if (frame["quote"] == "").any():  # no code on Amount: fall back to the quote table
        frame = frame.with_columns(quote=pl.when(pl.col("quote") != "").then(pl.col("quote")).otherwise(split_symbol(pair)[1]))
    splits = pl.col("symbol").str.ends_with(pl.col("quote")) & (
        pl.col("symbol").str.len_chars() > pl.col("quote").str.len_chars()
    )
    frame = frame.with_columns(
        base=pl.when(splits.fill_null(False)).then(
            pl.col("symbol").str.slice(0, pl.col("symbol").str.len_chars() - pl.col("quote").str.len_chars())
        )
    ).with_columns(fee_asset=code_at_end(pl.col("Fee"), pl.col("base"), pl.col("quote")))
    frame = with_decimals(
        frame,
        qty=strip_code(pl.col("Executed"), pl.col("base")),
        price=pl.col("Price"),
        quote_qty=strip_code(pl.col("Amount"), pl.col("quote")),
        fee=strip_code(pl.col("Fee"), pl.col("fee_asset")),
    ).with_columns(side=side_of(pl.col("Side")))
    frame = keyed(frame, time_column, list(SPOT_CURRENT[1:]), "trade_id").with_columns(
        order_id=pl.lit(None, pl.String), liquidity=pl.lit(None, pl.String)
    )
    has_pair = pl.col("base").is_not_null()
    checks += [
        Check("Pair", ~has_pair, unsplit_reason("Pair", pl.col("quote"), "of Amount")),
        *side_checks("Side"),
        *number_checks("Price", "price", sign="positive"),
        *number_checks("Executed", "qty", sign="positive", when=has_pair),
        *number_checks("Amount", "quote_qty", sign="non-negative", when=has_pair),
        *number_checks("Fee", "fee", required=False),
        Check("Fee", pl.col("fee_asset").is_null() & (pl.col("fee") != 0), pl.format('"Fee": "{}" names no asset', pl.col("Fee"))),
    ]
    return finish(source, frame, checks, FILLS, refused, qty=signed(pl.col("qty"), pl.col("side")))


def read_spot_trades_legacy(source: Source) -> Parsed:
    """The old xlsx layout saved as CSV: pair in ``Market``, side in ``Type``, base ``Amount``,
    quote ``Total``, and the fee's asset in its own ``Fee Coin`` column."""
    rows, refused = read_rows(source)
    require_columns(rows, list(SPOT_LEGACY), source.rel)
    rows, time_column, checks = _timed(rows, source, "Date(UTC)", "Date(UTC)")
    base, quote = split_symbol(pl.col("Market"))
    fee_coin = pl.col("Fee Coin").str.strip_chars()
    frame = rows.with_columns(
        symbol=pl.col("Market").str.strip_chars(),
        base=base,
        quote=quote,
        fee_asset=pl.when(fee_coin != "").then(fee_coin),
        side=side_of(pl.col("Type")),
    )
    # Numbers are plain here; a code glued on anyway is stripped, never misread.
    frame = with_decimals(
        frame,
        qty=strip_code(pl.col("Amount"), pl.col("base")),
        price=strip_code(pl.col("Price"), pl.col("quote")),
        quote_qty=strip_code(pl.col("Total"), pl.col("quote")),
        fee=strip_code(pl.col("Fee"), pl.col("fee_asset")),
    ).with_columns(order_id=pl.lit(None, pl.String), liquidity=pl.lit(None, pl.String))
    frame = keyed(frame, time_column, list(SPOT_LEGACY[1:]), "trade_id")
    has_pair = pl.col("base").is_not_null() & pl.col("quote").is_not_null()
    checks += [
        Check("Market", ~has_pair, unsplit_reason("Market", pl.lit(None, pl.String))),
        *side_checks("Type"),
        *number_checks("Price", "price", sign="positive"),
        *number_checks("Amount", "qty", sign="positive"),
        *number_checks("Total", "quote_qty", sign="non-negative"),
        *number_checks("Fee", "fee", required=False),
        Check("Fee Coin", pl.col("fee_asset").is_null() & (pl.col("fee") != 0), pl.format('"Fee Coin" is empty for a fee of "{}"', pl.col("Fee"))),
    ]
    return finish(source, frame, checks, FILLS, refused, qty=signed(pl.col("qty"), pl.col("side")))


# ---------------------------------------------------------------------------------------------
# 2. Transaction History (ledger)
# ---------------------------------------------------------------------------------------------

LEDGER_CURRENT = ("User ID", "Time", "Account", "Operation", "Coin", "Change", "Remark")
LEDGER_PREVIOUS = ("User_ID", "UTC_Time", "Account", "Operation", "Coin", "Change", "Remark")
LEDGER_OLDEST = ("UTC_Time", "Account", "Operation", "Coin", "Change", "Remark")

# Operation (lower case) -> movement kind. Unlisted operations fall to the word rules below,
# then to "other"; the venue's text is kept in ``description`` either way.
OPERATION_KINDS = {
    "transaction buy": "trade",
    "transaction spend": "trade",
    "transaction sold": "trade",
    "transaction revenue": "trade",
    "transaction related": "trade",
    "buy": "trade",
    "sell": "trade",
    "binance convert": "trade",
    "small assets exchange bnb": "trade",
    "large otc trading": "trade",
    "transaction fee": "fee",
    "fee": "fee",
    "deposit": "deposit",
    "fiat deposit": "deposit",
    "withdraw": "withdrawal",
    "withdrawal": "withdrawal",
    "fiat withdraw": "withdrawal",
    "fiat withdrawal": "withdrawal",
    "funding fee": "funding",
    "realized profit and loss": "realized_pnl",
    "commission rebate": "rebate",
    "referral commission": "rebate",
    "referral kickback": "rebate",
    "commission history": "rebate",
    "simple earn flexible interest": "interest",
    "simple earn locked rewards": "interest",
    "staking rewards": "interest",
    "savings interest": "interest",
    "pos savings interest": "interest",
    "airdrop assets": "other",
    "insurance fund compensation": "other",
}


def operation_kind(operation: pl.Expr) -> pl.Expr:
    op = operation.str.strip_chars().str.to_lowercase()
    listed = op.replace_strict(OPERATION_KINDS, default=None, return_dtype=pl.String)
    by_word = (
        pl.when(op.str.contains("transfer|subscription|redemption"))
        .then(pl.lit("transfer"))
        .when(op.str.contains("interest|reward"))
        .then(pl.lit("interest"))
        .when(op.str.contains("rebate|commission|kickback"))
        .then(pl.lit("rebate"))
        .otherwise(pl.lit("other"))
    )
    return pl.coalesce(listed, by_word)


def read_transactions(source: Source) -> Parsed:
    rows, refused = read_rows(source)
    rows, time_column, checks = _timed(rows, source, "Time", "UTC_Time")
    require_columns(rows, list(LEDGER_OLDEST[1:]), source.rel)
    coin = pl.col("Coin").str.strip_chars()
    frame = with_decimals(rows, qty=pl.col("Change")).with_columns(
        asset=pl.when(coin != "").then(coin),
        kind=operation_kind(pl.col("Operation")),
        description=pl.col("Operation").str.strip_chars(),
        ref_id=pl.lit(None, pl.String),
    )
    # The user id is left out so that the versions with and without it give one key.
    frame = keyed(frame, time_column, list(LEDGER_OLDEST[1:]), "entry_id")
    checks += [
        Check("Coin", pl.col("asset").is_null(), '"Coin" is missing'),
        *number_checks("Change", "qty"),
    ]
    return finish(source, frame, checks, MOVEMENTS, refused)


# ---------------------------------------------------------------------------------------------
# 3. USDⓈ-M Futures Trade History (fills) and Futures Transaction History (ledger)
# ---------------------------------------------------------------------------------------------

FUTURES_CURRENT = (
    "Uid", "Time", "Symbol", "Side", "Price", "Quantity", "Amount", "Fee",
    "Realized Profit", "Buyer", "Maker", "Trade ID", "Order ID",
)  # fmt: skip
FUTURES_OLDER = ("Date(UTC)", "Symbol", "Side", "Price", "Quantity", "Amount", "Fee", "Realized Profit")


def read_futures_trades(source: Source) -> Parsed:
    """Fills of USDⓈ-M contracts, as written (``BTCUSDT``), base and quote from the symbol.

    ``Realized Profit`` is not a fill field: derivative PnL books from a ledger export.
    """
    rows, refused = read_rows(source)
    rows, time_column, checks = _timed(rows, source, "Time", "Date(UTC)")
    require_columns(rows, list(FUTURES_OLDER[1:]), source.rel)
    has_ids = "Trade ID" in rows.columns
    if has_ids:
        require_columns(rows, ["Maker", "Order ID"], source.rel)
    base, quote = split_symbol(pl.col("Symbol"))
    frame = rows.with_columns(symbol=pl.col("Symbol").str.strip_chars(), base=base, quote=quote)
    fee_code = trailing_code(pl.col("Fee"))
    frame = frame.with_columns(
        # "0.26040000 USDT" or "0.26USDT"; a bare number is in the margin asset, the quote.
        fee_asset=pl.when(fee_code != "").then(fee_code).otherwise(pl.col("quote")),
        side=side_of(pl.col("Side")),
    )
    frame = with_decimals(
        frame,
        qty=strip_code(pl.col("Quantity"), pl.col("base")),
        price=strip_code(pl.col("Price"), pl.col("quote")),
        quote_qty=strip_code(pl.col("Amount"), pl.col("quote")),
        fee=strip_code(pl.col("Fee"), pl.col("fee_asset")),
    )
    has_pair = pl.col("base").is_not_null() & pl.col("quote").is_not_null()
    checks += [
        Check("Symbol", ~has_pair, unsplit_reason("Symbol", pl.lit(None, pl.String))),
        *side_checks("Side"),
        *number_checks("Price", "price", sign="positive"),
        *number_checks("Quantity", "qty", sign="positive"),
        *number_checks("Amount", "quote_qty", sign="non-negative"),
        *number_checks("Fee", "fee", required=False),
    ]
    if has_ids:
        maker = pl.col("Maker").str.strip_chars().str.to_lowercase()
        trade = pl.col("Trade ID").str.strip_chars()
        order = pl.col("Order ID").str.strip_chars()
        frame = frame.with_columns(
            liquidity=pl.when(maker == "true").then(pl.lit("maker")).when(maker == "false").then(pl.lit("taker")),
            trade_id=pl.when(trade != "").then(pl.concat_str([pl.col("symbol"), trade], separator=":")),
            order_id=pl.when(order != "").then(order),
        )
        checks += [
            Check("Trade ID", pl.col("trade_id").is_null(), '"Trade ID" is missing'),
            Check("Maker", pl.col("liquidity").is_null() & (maker != ""), pl.format('"Maker": "{}" is not true or false', pl.col("Maker"))),
        ]
    else:
        frame = frame.with_columns(liquidity=pl.lit(None, pl.String), order_id=pl.lit(None, pl.String))
        frame = keyed(frame, time_column, list(FUTURES_OLDER[1:]), "trade_id")
    return finish(source, frame, checks, FILLS, refused, qty=signed(pl.col("qty"), pl.col("side")))


FUTURES_TX_CURRENT = ("Time", "Type", "Amount", "Asset", "Symbol", "Transaction ID")
FUTURES_TX_OLDER = ("Date(UTC)", "type", "Amount", "Asset", "Symbol", "Transaction ID")

FUTURES_TX_KINDS = {
    "REALIZED_PNL": "realized_pnl",
    "COMMISSION": "fee",
    "FUNDING_FEE": "funding",
    "TRANSFER": "transfer",
    "INTERNAL_TRANSFER": "transfer",
    "COMMISSION_REBATE": "rebate",
    "API_REBATE": "rebate",
    "REFERRAL_KICKBACK": "rebate",
}


def read_futures_transactions(source: Source) -> Parsed:
    """Futures Transaction History: one signed cash change per row.

    Key: ``Transaction ID`` with the type and asset, since a commission and the realized PnL
    of one trade may share a transaction id.
    """
    rows, refused = read_rows(source)
    rows, _, checks = _timed(rows, source, "Time", "Date(UTC)")
    rows = rows.rename({"type": "Type"}) if "type" in rows.columns else rows
    require_columns(rows, list(FUTURES_TX_CURRENT[1:]), source.rel)
    kind_text = pl.col("Type").str.strip_chars()
    asset = pl.col("Asset").str.strip_chars()
    tx = pl.col("Transaction ID").str.strip_chars()
    frame = with_decimals(rows, qty=pl.col("Amount")).with_columns(
        asset=pl.when(asset != "").then(asset),
        kind=kind_text.str.to_uppercase().replace_strict(FUTURES_TX_KINDS, default="other", return_dtype=pl.String),
        description=kind_text,
        ref_id=pl.lit(None, pl.String),
        entry_id=pl.when(tx != "").then(pl.concat_str([tx, kind_text.str.to_uppercase(), asset], separator=":")),
    )
    checks += [
        Check("Asset", pl.col("asset").is_null(), '"Asset" is missing'),
        Check("Transaction ID", pl.col("entry_id").is_null() & pl.col("asset").is_not_null(), '"Transaction ID" is missing'),
        *number_checks("Amount", "qty"),
    ]
    return finish(source, frame, checks, MOVEMENTS, refused)


# ---------------------------------------------------------------------------------------------
# 4. Balance snapshot: GET /api/v3/account
# ---------------------------------------------------------------------------------------------


def top_level_keys(head: str) -> list[str]:
    """Keys of the outermost JSON object found in ``head`` (which may be cut short).

    Only depth-1 keys count: a ccxt ``fetch_balance`` file nests this very reply under
    ``info`` and must not pass for it.
    """
    text = head.lstrip()
    if not text.startswith("{"):
        return []
    keys: list[str] = []
    depth, i, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            k = j + 1
            while k < n and text[k] in " \t\r\n":
                k += 1
            if depth == 1 and k < n and text[k] == ":":
                keys.append(text[i + 1 : j])
            i = j + 1
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        i += 1
    return keys


def detect_account(head: str) -> bool:
    """A top-level ``balances`` list of ``asset``/``free``/``locked`` entries (or an empty one)."""
    keys = top_level_keys(head)
    if "balances" not in keys or {"info", "free", "used", "total"} & set(keys):
        return False
    listing = head[head.find('"balances"') :]
    if re.match(r'"balances"\s*:\s*\[\s*\]', listing):
        return True
    return bool(re.match(r'"balances"\s*:\s*\[\s*\{', listing)) and all(
        f'"{key}"' in listing for key in ("asset", "free", "locked")
    )


def read_account(source: Source) -> Parsed:
    """Spot balances: total = free + locked per asset; ``source_row`` is the entry's position."""
    # Numbers stay text: json would otherwise turn a bare 0.1 into a float.
    reply = json.loads(source.path.read_bytes().decode("utf-8").replace(BOM, ""), parse_float=str, parse_int=str)
    if not isinstance(reply, dict) or not isinstance(reply.get("balances"), list):
        raise ValueError('not a Binance account reply: no top-level "balances" list')
    entries = reply["balances"]

    def text(entry: object, key: str) -> str | None:
        value = entry.get(key) if isinstance(entry, dict) else None
        return None if value is None else value if isinstance(value, str) else json.dumps(value)

    frame = pl.DataFrame(
        {
            "source_row": list(range(1, len(entries) + 1)),
            "entry": [json.dumps(e) for e in entries],
            "is_object": [isinstance(e, dict) for e in entries],
            "asset_text": [text(e, "asset") for e in entries],
            "free_text": [text(e, "free") for e in entries],
            "locked_text": [text(e, "locked") for e in entries],
        },
        schema={"source_row": pl.Int64, "entry": pl.String, "is_object": pl.Boolean, "asset_text": pl.String, "free_text": pl.String, "locked_text": pl.String},
    )
    frame = with_decimals(frame, free=pl.col("free_text"), locked=pl.col("locked_text")).with_columns(
        asset=pl.col("asset_text").str.strip_chars(),
    )
    limit = pl.lit(Decimal(10) ** 19, DECIMAL)  # below it, free + locked cannot overflow
    checks = [Check(None, ~pl.col("is_object"), "the entry is not an object", raw=pl.col("entry"))]
    for key in ("free", "locked"):
        value, text_col = pl.col(key), pl.col(f"{key}_text")
        checks += [
            Check(key, pl.col("is_object") & pl.col(f"{key}__bad"), pl.format(f'"{key}": "{{}}" is not an exact decimal', text_col), raw=text_col),
            Check(key, pl.col("is_object") & value.is_null() & ~pl.col(f"{key}__bad"), f'"{key}" is missing', raw=pl.col("entry")),
            Check(key, value < 0, pl.format(f'"{key}": "{{}}" is negative', text_col), raw=text_col),
            Check(key, value >= limit, pl.format(f'"{key}": "{{}}" is too large', text_col), raw=text_col),
        ]
    checks.append(Check("asset", pl.col("is_object") & (pl.col("asset").fill_null("") == ""), '"asset" is missing', raw=pl.col("entry")))
    return finish(source, frame, checks, BALANCES, empty_quarantine(), total=pl.col("free") + pl.col("locked"))


FORMATS = [
    Format("binance.spot_trades", "fills", lambda head: header_is(head, [SPOT_CURRENT, SPOT_PREVIOUS]), read_spot_trades),
    Format("binance.spot_trades_legacy", "fills", lambda head: header_is(head, [SPOT_LEGACY]), read_spot_trades_legacy),
    Format(
        "binance.transactions",
        "ledger",
        lambda head: header_is(head, [LEDGER_CURRENT, LEDGER_PREVIOUS, LEDGER_OLDEST]),
        read_transactions,
    ),
    Format("binance.futures_trades", "fills", lambda head: header_is(head, [FUTURES_CURRENT, FUTURES_OLDER]), read_futures_trades),
    Format(
        "binance.futures_transactions",
        "ledger",
        lambda head: header_is(head, [FUTURES_TX_CURRENT, FUTURES_TX_OLDER]),
        read_futures_transactions,
    ),
    Format("binance.account", "balances", detect_account, read_account),
]
