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

Layouts read beyond binance.md (issue 17, real exports as users keep them):

- Re-saved by Excel in a ``;`` locale: the same header and cells, ``;`` between them
  (:func:`utl.venues.base.read_csv_rows` takes the separator from the header). A decimal
  comma such as ``0,5`` is still refused, never guessed: it cannot be told from a
  thousands separator.
- The 2017-18 Trade History as ``.xlsx``, header ``Date,Market,Type,Price,Amount,Total,Fee,Fee
  Coin`` (the legacy layout of binance.md §1 before ``Date`` became ``Date(UTC)``; published in
  third-party importers, e.g. yabc ``binance`` format, row ``2018-01-07 20:42:29,VENBTC,BUY,
  0.0002915,34,0.009911,0.034,VEN``). ``Date`` is UTC, as the later ``Date(UTC)`` says; the
  workbook's numbers are binary doubles, read as their shortest round-trip decimal text
  (:func:`utl.venues.base.xlsx_as_csv`), which is exactly what the cell holds.
- Headers in the user's interface language: :data:`LOCALIZED` maps each seen translation to
  the English column (Czech Spot Trade History ``Čas,Pár,Strana,Cena,Provedeno,Částka,Poplatek``,
  as published in everytrade-io's importer tests). Cell values stay as in English exports
  (``BUY``/``SELL``, ``0.05BTC``); an unknown side word is refused, naming it.
- Transaction History rows that end at ``Change``, leaving out the trailing empty ``Remark``
  cell, are complete rows: the remark is empty.
- Transaction History's ``Account`` column names the wallet a row moves (``Spot``,
  ``Funding``, ``USD-M Futures``, ``Coin-M Futures``, ``Earn``, ``Cross Margin``...): each
  wallet has its own balance, so each row books to the sub-account ``<account>/<wallet>``
  (:func:`utl.venues.base.wallet_account`; ``Spot`` is the account itself, as
  ``/api/v3/account`` is the Spot wallet's balance). A wallet's snapshot is
  ``balances/YYYY-MM-DD.<wallet>.<csv|json>`` (:mod:`utl.landing`).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import polars as pl

from utl.assets import split_symbol
from utl.decimals import DECIMAL, with_venue_decimals
from utl.errors import empty_quarantine
from utl.derivatives.snapshots import binance_symbol
from utl.schemas import BALANCES, FILLS, MOVEMENTS
from utl.venues.contracts import derivative_cash, venue_instruments
from utl.venues.base import (
    with_numbers,
    entry_text,
    wallet_account_expr,
    Columns,
    Layout,
    BOM,
    Check,
    Format,
    Parsed,
    Source,
    code_at_end,
    finish,
    first_line,
    header_cells,
    normal,
    rename_columns,
    number_checks,
    per_distinct,
    read_csv_rows,
    rows_of,
    require_columns,
    shaped_time,
    side_checks,
    side_of,
    signed,
    time_checks,
    top_level_keys,
    trailing_code,
    unsplit_reason,
    utc_second_text,
    with_synthetic_id,
)

# The spelling tests/venues/test_binance.py uses for the shared parser.
with_decimals = with_venue_decimals


def keyed(frame: pl.DataFrame, time_column: str, columns: list[str], alias: str) -> pl.DataFrame:
    """The content key of an id-less row, its time written as the UTC instant (the local
    text would differ between two exports of one row in two zones)."""
    when = pl.coalesce(utc_second_text(pl.col("ts")), pl.col(time_column))
    return with_synthetic_id(frame.with_columns(__when=when), ["__when", *columns], alias).drop("__when")


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


_SHAPES = (
    (r"^\d{2}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%y-%m-%d %H:%M:%S"),
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%Y-%m-%d %H:%M:%S"),
)


def binance_time(text: pl.Expr, offset_minutes: int) -> pl.Expr:
    """``YY-MM-DD HH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS`` local text at a fixed offset, as UTC."""
    return shaped_time(text, _SHAPES, offset_minutes)


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
SPOT_XLSX = ("Date", "Market", "Type", "Price", "Amount", "Total", "Fee", "Fee Coin")  # 2017-18, UTC

# Headers in the user's interface language -> the English column. Keep one entry per seen
# translation; a header matches when every cell is English or in this table.
LOCALIZED: dict[str, str] = {
    # Czech (cs), Spot Trade History
    "Čas": "Time",
    "Pár": "Pair",
    "Strana": "Side",
    "Cena": "Price",
    "Provedeno": "Executed",
    "Částka": "Amount",
    "Poplatek": "Fee",
}


def _rows(source: Source, *, optional_last: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The file's rows, its columns named as in English exports (:data:`LOCALIZED`)."""
    rows, refused = read_csv_rows(source, optional_last=optional_last)
    names = {*SPOT_CURRENT, *SPOT_PREVIOUS, *SPOT_LEGACY, *SPOT_XLSX, *LEDGER_CURRENT, *LEDGER_PREVIOUS,
             *FUTURES_CURRENT, *FUTURES_OLDER, *FUTURES_TX_CURRENT}
    return rename_columns(rows, sorted(names), LOCALIZED), refused


def read_spot_trades(source: Source) -> Parsed:
    rows, refused = _rows(source)
    rows, time_column, checks = _timed(rows, source, "Time", "Date(UTC)")
    require_columns(rows, list(SPOT_CURRENT[1:]), source.rel)
    # Each cell is stripped once; the shared helpers' own strips then find nothing to do.
    frame = rows.with_columns(
        symbol=pl.col("Pair").str.strip_chars(),
        __executed=pl.col("Executed").str.strip_chars(),
        __amount=pl.col("Amount").str.strip_chars(),
        __fee=pl.col("Fee").str.strip_chars(),
    )
    # The quote is the code glued to Amount (quotes never start with a digit); the base is
    # what the pair leaves, which keeps digit-led bases such as 1INCH whole.
    frame = frame.with_columns(quote=trailing_code(pl.col("__amount")))
    if (frame["quote"] == "").any():  # no code on Amount: fall back to the quote table
        quote = pl.when(pl.col("quote") != "").then(pl.col("quote")).otherwise(split_symbol(pl.col("symbol"), source.pairs)[1])
        frame = frame.with_columns(quote=quote)
    splits = pl.col("symbol").str.ends_with(pl.col("quote")) & (
        pl.col("symbol").str.len_chars() > pl.col("quote").str.len_chars()
    )
    frame = frame.with_columns(
        base=pl.when(splits.fill_null(False)).then(
            pl.col("symbol").str.slice(0, pl.col("symbol").str.len_chars() - pl.col("quote").str.len_chars())
        )
    ).with_columns(fee_asset=code_at_end(pl.col("__fee"), pl.col("base"), pl.col("quote")))
    frame = with_numbers(
        frame,
        qty=(pl.col("__executed"), pl.col("base")),
        price=pl.col("Price"),
        quote_qty=(pl.col("__amount"), pl.col("quote")),
        fee=(pl.col("__fee"), pl.col("fee_asset")),
    )
    frame = per_distinct(frame, "Side", side=side_of(pl.col("Side")))
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
    quote ``Total``, and the fee's asset in its own ``Fee Coin`` column; also the 2017-18
    ``.xlsx`` whose time column is ``Date`` (UTC)."""
    rows, refused = _rows(source)
    if "Date(UTC)" not in rows.columns and "Date" in rows.columns:
        rows = rows.rename({"Date": "Date(UTC)"})
    require_columns(rows, list(SPOT_LEGACY), source.rel)
    rows, time_column, checks = _timed(rows, source, "Date(UTC)", "Date(UTC)")
    base, quote = split_symbol(pl.col("Market"), source.pairs)
    fee_coin = pl.col("Fee Coin").str.strip_chars()
    frame = per_distinct(
        rows,
        ["Market", "Type", "Fee Coin"],
        symbol=pl.col("Market").str.strip_chars(),
        base=base,
        quote=quote,
        fee_asset=pl.when(fee_coin != "").then(fee_coin),
        side=side_of(pl.col("Type")),
    )
    # Numbers are plain here; a code glued on anyway is stripped, never misread.
    frame = with_numbers(
        frame,
        qty=(pl.col("Amount"), pl.col("base")),
        price=(pl.col("Price"), pl.col("quote")),
        quote_qty=(pl.col("Total"), pl.col("quote")),
        fee=(pl.col("Fee"), pl.col("fee_asset")),
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

# Binance keeps 8 places for every asset in its balances (/api/v3/account: "0.52000000",
# "1200.00000000"; binance.md) and its Transaction History: see utl.precision.
PLACES: dict[str, int] = {"*": 8}

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
    rows, refused = _rows(source, optional_last=True)
    rows, time_column, checks = _timed(rows, source, "Time", "UTC_Time")
    require_columns(rows, list(LEDGER_OLDEST[1:]), source.rel)
    coin = pl.col("Coin").str.strip_chars()
    frame = per_distinct(
        with_numbers(rows, qty=pl.col("Change")),
        ["Coin", "Operation"],
        asset=pl.when(coin != "").then(coin),
        kind=operation_kind(pl.col("Operation")),
        description=pl.col("Operation").str.strip_chars(),
    ).with_columns(ref_id=pl.lit(None, pl.String))
    # The user id is left out so that the versions with and without it give one key.
    frame = keyed(frame, time_column, list(LEDGER_OLDEST[1:]), "entry_id")
    checks += [
        Check("Coin", pl.col("asset").is_null(), '"Coin" is missing'),
        *number_checks("Change", "qty"),
    ]
    parsed = finish(source, frame, checks, MOVEMENTS, refused)
    # Each wallet is its own balance: its rows book to the sub-account <account>/<wallet>.
    # A file names a few wallets: each one's account is worked out once; every booked row is
    # a row of ``frame``, so the lookup by row finds it (as the left join did).
    wallets = per_distinct(frame.select("source_row", "Account"), "Account",
                           __account=wallet_account_expr(source.account, pl.col("Account"))).drop("Account")
    booked = rows_of(parsed.frame, wallets)
    booked = booked.with_columns(account=pl.col("__account")).drop("__account")
    # Realized PnL, funding and fees of a futures wallet are derivative cash; this export
    # does not name the contract (the Futures Transaction History does).
    futures = frame.filter(pl.col("Account").str.to_lowercase().str.contains("futures")).select(
        "source_row", instrument=pl.lit(None, pl.String))
    kinds = pl.when((pl.col("qty") != 0) & pl.col("kind").is_in(["realized_pnl", "funding", "fee"])).then(pl.col("kind"))
    return Parsed(booked, parsed.quarantine, derivative_cash=derivative_cash(booked, futures, kinds))


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
    rows, refused = read_csv_rows(source)
    rows, time_column, checks = _timed(rows, source, "Time", "Date(UTC)")
    require_columns(rows, list(FUTURES_OLDER[1:]), source.rel)
    has_ids = "Trade ID" in rows.columns
    if has_ids:
        require_columns(rows, ["Maker", "Order ID"], source.rel)
    base, quote = split_symbol(pl.col("Symbol"), source.pairs)
    frame = per_distinct(rows, ["Symbol", "Side"], symbol=pl.col("Symbol").str.strip_chars(), base=base, quote=quote, side=side_of(pl.col("Side")))
    frame = frame.with_columns(fee_asset=trailing_code(pl.col("Fee"))).with_columns(
        # "0.26040000 USDT" or "0.26USDT"; a bare number is in the margin asset, the quote.
        fee_asset=pl.when(pl.col("fee_asset") != "").then(pl.col("fee_asset")).otherwise(pl.col("quote")),
    )
    frame = with_numbers(
        frame,
        qty=(pl.col("Quantity"), pl.col("base")),
        price=(pl.col("Price"), pl.col("quote")),
        quote_qty=(pl.col("Amount"), pl.col("quote")),
        fee=(pl.col("Fee"), pl.col("fee_asset")),
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
            # The venue's id as written; ingest qualifies it by pair (Binance numbers per symbol).
            trade_id=pl.when(trade != "").then(trade),
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
    rows, refused = _rows(source)
    rows, _, checks = _timed(rows, source, "Time", "Date(UTC)")
    rows = rows.rename({"type": "Type"}) if "type" in rows.columns else rows
    require_columns(rows, list(FUTURES_TX_CURRENT[1:]), source.rel)
    kind_text = pl.col("Type").str.strip_chars()
    asset = pl.col("Asset").str.strip_chars()
    tx = pl.col("Transaction ID").str.strip_chars()
    frame = with_numbers(rows, qty=pl.col("Amount")).with_columns(
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
    parsed = finish(source, frame, checks, MOVEMENTS, refused)
    symbol = pl.col("Symbol").str.strip_chars()
    named = frame.with_columns(__symbol=pl.when(symbol != "").then(symbol))
    named = named.select("source_row", instrument=venue_instruments(named["__symbol"], binance_symbol))
    kinds = pl.when((pl.col("qty") != 0) & pl.col("kind").is_in(["realized_pnl", "funding", "fee"])).then(pl.col("kind"))
    return Parsed(parsed.frame, parsed.quarantine, derivative_cash=derivative_cash(parsed.frame, named, kinds))


# ---------------------------------------------------------------------------------------------
# 4. Balance snapshot: GET /api/v3/account
# ---------------------------------------------------------------------------------------------


def detect_account(head: str) -> bool:
    """A top-level ``balances`` list of ``asset``/``free``/``locked`` entries (or an empty one)."""
    # Only depth-1 keys count: a ccxt ``fetch_balance`` file nests this very reply under
    # ``info`` and must not pass for it.
    keys, _ = top_level_keys(head)
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

    frame = pl.DataFrame(
        {
            "source_row": list(range(1, len(entries) + 1)),
            "entry": [json.dumps(e) for e in entries],
            "is_object": [isinstance(e, dict) for e in entries],
            "asset_text": [entry_text(e, "asset") for e in entries],
            "free_text": [entry_text(e, "free") for e in entries],
            "locked_text": [entry_text(e, "locked") for e in entries],
        },
        schema={"source_row": pl.Int64, "entry": pl.String, "is_object": pl.Boolean, "asset_text": pl.String, "free_text": pl.String, "locked_text": pl.String},
    )
    frame = with_numbers(frame, free=pl.col("free_text"), locked=pl.col("locked_text")).with_columns(
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


# The columns each reader needs (how a file is claimed: utl.venues.base.Columns). Time is
# either the local "Time" (zone in the file name) or a UTC column.
SPOT_COLUMNS = Columns(required=(("Time", "Date(UTC)"), "Pair", "Side", "Price", "Executed", "Amount", "Fee"),
                       localized=LOCALIZED)
SPOT_LEGACY_COLUMNS = Columns(
    required=(("Date(UTC)", "Date"), "Market", "Type", "Price", "Amount", "Total", "Fee", "Fee Coin"), localized=LOCALIZED,
)
# Remark is part of a row's content key, so it is needed even when empty.
LEDGER_COLUMNS = Columns(required=(("Time", "UTC_Time"), "Account", "Operation", "Coin", "Change", "Remark"),
                         optional=("User ID", "User_ID"), localized=LOCALIZED)
# Without Trade ID a fill is keyed by its content, Realized Profit included.
FUTURES_COLUMNS = Columns(
    required=(("Time", "Date(UTC)"), "Symbol", "Side", "Price", "Quantity", "Amount", "Fee", "Realized Profit"),
    optional=("Uid", "Buyer", "Trade ID"),
    needs_with={"Trade ID": ("Maker", "Order ID")},
    localized=LOCALIZED,
)
FUTURES_TX_COLUMNS = Columns(required=(("Time", "Date(UTC)"), "Type", "Amount", "Asset", "Symbol", "Transaction ID"),
                             localized=LOCALIZED)


# ---------------------------------------------------------------------------------------------
# 4b. Futures wallet: GET /fapi/v2/account (USDⓈ-M) and /dapi/v1/account (COIN-M)
# ---------------------------------------------------------------------------------------------


def detect_futures_account(head: str) -> bool:
    """A top-level ``assets`` list whose entries state ``walletBalance`` (the futures account
    reply; a ccxt ``fetch_balance`` nesting it under ``info`` does not pass)."""
    keys, _ = top_level_keys(head)
    if "assets" not in keys or {"info", "free", "used", "total", "balances"} & set(keys):
        return False
    listing = head[head.find('"assets"'):]
    return bool(re.match(r'"assets"\s*:\s*\[', listing)) and '"walletBalance"' in listing


def read_futures_account(source: Source) -> Parsed:
    """The futures wallet per asset: ``walletBalance``, which excludes unrealized PnL
    (derivatives.md: the settle asset's wallet is reconciled, positions apart)."""
    from utl.venues.contracts import wallet_balances

    reply = json.loads(source.path.read_bytes().decode("utf-8").replace(BOM, ""), parse_float=str, parse_int=str)
    if not isinstance(reply, dict) or not isinstance(reply.get("assets"), list):
        raise ValueError('not a Binance futures account reply: no top-level "assets" list')
    return wallet_balances(source, reply["assets"], "asset", "walletBalance")

FORMATS = [
    Format("binance.spot_trades", "fills", None, read_spot_trades, columns=(SPOT_COLUMNS,),
           layouts=(Layout("current", SPOT_CURRENT), Layout("previous", SPOT_PREVIOUS))),
    Format("binance.spot_trades_legacy", "fills", None, read_spot_trades_legacy, columns=(SPOT_LEGACY_COLUMNS,),
           layouts=(Layout("legacy", SPOT_LEGACY), Layout("2017-18 xlsx", SPOT_XLSX))),
    Format("binance.transactions", "ledger", None, read_transactions, columns=(LEDGER_COLUMNS,),
           layouts=(Layout("current", LEDGER_CURRENT), Layout("previous", LEDGER_PREVIOUS), Layout("oldest", LEDGER_OLDEST))),
    Format("binance.futures_trades", "fills", None, read_futures_trades, columns=(FUTURES_COLUMNS,),
           layouts=(Layout("current", FUTURES_CURRENT), Layout("older", FUTURES_OLDER))),
    Format("binance.futures_transactions", "ledger", None, read_futures_transactions, columns=(FUTURES_TX_COLUMNS,),
           layouts=(Layout("current", FUTURES_TX_CURRENT), Layout("older", FUTURES_TX_OLDER))),
    Format("binance.account", "balances", detect_account, read_account),
    Format("binance.futures_account", "balances", detect_futures_account, read_futures_account),
]
