"""Deribit transaction log: a ledger of one account's cash in one currency (deribit.md).

Every row books its `Change` of the file's currency, split so the parts stay visible and
still sum to `Change` exactly:

- the fee taken from cash, `Change − Cash Flow` (zero when the fee came out of the
  separate fee balance, or the row has none), kind "fee";
- the funding inside `Cash Flow` (`Funding`, + received), kind "funding";
- the rest of `Cash Flow`: realized PnL for futures and perpetuals, the premium or spot leg
  for options and spot, the amount for deposits, withdrawals and transfers.

The currency is not a column: Deribit writes it only in the file name
(``transaction_log-<uid>-<CURRENCY>-….csv``); a file whose name lost it has every row
refused rather than guessed. Trade rows of futures, perpetuals and options are also instrument
legs, and the cash of every row naming an instrument is attributed to it (:func:`_derivatives`).
"""

from __future__ import annotations

import re

import polars as pl

from utl.decimals import sum_overflows
from utl.derivatives.snapshots import deribit_symbol
from utl.schemas import MOVEMENTS
from utl.venues.contracts import derivative_cash, derivative_fills, fill_checks, venue_instruments
from utl.venues.base import CASH_KIND_CODES
from utl.venues.base import (
    with_numbers,
    Layout,
    Check,
    Columns,
    Format,
    Parsed,
    Source,
    first_line,
    header_cells,
    interleave,
    out_of_years,
    per_distinct,
    read_csv_columns,
    cash_kind_text,
    split_refused,
    strip_texts,
    text_or_null,
    to_schema,
    top_level_keys,
    utc,
)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_CURRENT = "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note"
_PREVIOUS = "ID,UserSeq,Date,Instrument,Type,Side,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note"
_OLDER = _PREVIOUS.removesuffix(",Note")
_OLDEST = "ID,UserSeq,Date,Instrument,Type,Side,Size,Position,Price,Mark Price,Cash Flow,Funding,Fee Rate,Fee Paid,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info"
HEADERS = [tuple(h.split(",")) for h in (_CURRENT, _PREVIOUS, _OLDER, _OLDEST)]

_CURRENCY_IN_NAME = re.compile(r"transaction_log-[^-]*-([A-Za-z0-9]{2,10})(?:[-_.]|$)", re.IGNORECASE)


def currency_from_name(name: str) -> str | None:
    m = _CURRENCY_IN_NAME.search(name)
    return m.group(1).upper() if m else None


def is_transaction_log(head: str) -> bool:
    return FORMATS[0].claims(head)


def _kind(kind: pl.Expr, instrument: pl.Expr) -> pl.Expr:
    """Our kind for the non-fee, non-funding part of a row, from Deribit's `Type`."""
    t = kind.str.to_lowercase()
    # Futures and perpetuals settle PnL in cash; an option or spot fill swaps cash for the instrument.
    future = instrument.str.contains(r"PERPETUAL$") | instrument.str.contains(r"^[A-Z0-9_]+-\d{1,2}[A-Z]{3}\d{2}$")
    return (
        pl.when(t == "trade").then(pl.when(future).then(pl.lit("realized_pnl")).otherwise(pl.lit("trade")))
        .when(t.is_in(["settlement", "delivery"])).then(pl.lit("realized_pnl"))
        .when(t == "deposit").then(pl.lit("deposit"))
        .when(t == "withdrawal").then(pl.lit("withdrawal"))
        .when(t.is_in(["transfer", "position move"])).then(pl.lit("transfer"))
        .when(t == "swap").then(pl.lit("trade"))
        .otherwise(pl.lit("other"))
    )


def _number_checks(name: str, column: str, required: bool) -> list[Check]:
    """Checks on the ``<name>_value`` / ``<name>_bad`` pair of a parsed number column."""
    checks = [Check(column, pl.col(f"{name}_bad"), pl.format('"{}" is not a decimal', pl.col(name)), raw=pl.col(name))]
    if required:
        checks.append(Check(column, pl.col(f"{name}_value").is_null() & ~pl.col(f"{name}_bad"), "missing value", raw=pl.col(name)))
    return checks


def _blank(column: str) -> pl.Expr:
    """Null for the empty or ``-`` cells Deribit writes where a field does not apply."""
    return text_or_null(pl.col(column), ("", "-"))


def _blank_stripped(column: str) -> pl.Expr:
    """:func:`_blank` of a column stripped already (read_transaction_log strips the columns
    it reads): the same values, without stripping a million cells again."""
    return pl.col(column).replace(["", "-"], None)


# The columns the reader reads (a fill's size and fee under any layout's name); the rest of
# a log's 21-24 columns are never made where Polars reads the file (read_csv_columns).
_READ = frozenset(("ID", "Date", "Instrument", "Type", "Side", "Amount", "Size", "Base Amount", "Price", "Cash Flow",
                   "Funding", "Fee Charged", "Fee Paid", "Change", "Trade ID", "Info"))


def _read_columns(header: tuple[str, ...]) -> list[str]:
    # Base Amount is a fill's size only in a layout with neither Amount nor Size (_size_column).
    sized = "Amount" in header or "Size" in header
    return [c for c in header if c in _READ and not (sized and c == "Base Amount")]


def read_transaction_log(source: Source) -> Parsed:
    frame, refused, header = read_csv_columns(source, _read_columns)
    if header not in HEADERS:
        raise ValueError(f"{source.rel}: not a Deribit transaction log header")
    names = {"ID": "id", "Date": "date", "Instrument": "instrument", "Type": "type", "Side": "side",
             "Cash Flow": "cash_flow", "Funding": "funding", "Change": "change", "Price": "price",
             "Trade ID": "trade_id", "Info": "info"}  # fmt: skip
    frame = strip_texts(frame.rename(names), list(names.values()))
    currency = currency_from_name(source.path.name)
    ts = utc(pl.col("date"), TIME_FORMAT)
    numbers = (("change", "Change", True), ("cash_flow", "Cash Flow", False), ("funding", "Funding", False))
    # Every number of the file in one pass, the derivative fills' too (_derivatives): a parse
    # is per cell, so parsing the trade rows' size, price and fee with the rest gives them
    # the values a parse of those rows alone would, at one pass's fixed cost instead of three.
    frame = with_numbers(
        frame, {f"{name}_value": name for name, _, _ in numbers},
        __qty=pl.col(_size_column(frame)), __price=pl.col("price"), __fee=pl.col(_fee_column(frame)),
    ).with_columns(ts=ts)
    frame = frame.rename({f"{name}_value__bad": f"{name}_bad" for name, _, _ in numbers})
    checks = [check for name, column, required in numbers for check in _number_checks(name, column, required)]
    checks = [
        Check("ID", pl.col("id") == "", "missing ID: it is the row key", raw=pl.col("id")),
        Check("Date", pl.col("date") == "", "missing date", raw=pl.col("date")),
        Check("Date", (pl.col("date") != "") & pl.col("ts").is_null(), pl.format('"{}" is not a time like 2024-03-05 09:15:02', pl.col("date")), raw=pl.col("date")),
        Check("Date", out_of_years(pl.col("ts")), "time outside 2000..2100", raw=pl.col("date")),
        *checks,
    ]
    # The row's parts are differences (fee = Change - Cash Flow, the rest = Cash Flow -
    # Funding): where one leaves Decimal(38, 18) the row is refused, not the file.
    change, cash, funding_value = pl.col("change_value"), pl.col("cash_flow_value"), pl.col("funding_value")
    checks += [
        Check("Cash Flow", sum_overflows(change, -cash), '"Change" - "Cash Flow" (the fee) overflows 38 digits (20 before the point)',
              raw=pl.format("{} - {}", pl.col("change"), pl.col("cash_flow"))),
        Check("Funding", sum_overflows(cash, -funding_value), '"Cash Flow" - "Funding" overflows 38 digits (20 before the point)',
              raw=pl.format("{} - {}", pl.col("cash_flow"), pl.col("funding"))),
    ]
    if currency is None:
        checks.append(Check(None, pl.lit(True), f"currency unknown: the file name {source.path.name!r} does not name it (transaction_log-<uid>-<CURRENCY>-…)", raw=pl.lit(None, pl.String)))
    ok, quarantine = split_refused(frame, checks, source.rel)

    # Without a Cash Flow the row's Change books whole, in one part.
    cash_flow = pl.coalesce("cash_flow_value", "change_value")
    funding = pl.when(pl.col("cash_flow_value").is_null()).then(0).otherwise(pl.col("funding_value").fill_null(0))
    price = pl.when(pl.col("price") == "").then(None).otherwise(pl.concat_str(pl.lit("@ "), "price"))
    # Types, sides and instruments take a handful of values: their words are read once.
    what = pl.concat_str([_blank("type"), _blank("side"), _blank("instrument")], separator=" ", ignore_nulls=True)
    # So are what _derivatives reads of them: the instrument's ccxt symbol, whether it is an
    # option, the type in lower case, the side's direction.
    instrument = pl.col("instrument").map_batches(lambda names: venue_instruments(names, deribit_symbol), return_dtype=pl.String)
    side = pl.col("side")
    ok = per_distinct(
        ok, ["type", "side", "instrument"], __what=what.replace("", None), __kind=_kind(pl.col("type"), pl.col("instrument")),
        __instrument=instrument, __option=instrument.str.contains(r"-[CP]$"), __type=pl.col("type").str.to_lowercase(),
        __side_bad=~side.str.contains(r"(?i)\b(buy|sell)\b"), __sell=side.str.to_lowercase().str.contains(r"\bsell\b"),
    )
    ok = ok.with_columns(
        row_key=pl.concat_str(pl.lit(f"{currency}:"), "id"),
        ref_id=_blank_stripped("trade_id"),
        description=pl.concat_str([pl.col("__what"), price, _blank_stripped("info")], separator=" ", ignore_nulls=True),
        fee_part=pl.col("change_value") - cash_flow,
        funding_part=funding,
        rest_part=cash_flow - funding,
    )
    part = ["source_row", "entry_id", "ref_id", "ts", "kind", "qty", "description"]
    # Each part filters only the columns it reads, not the forty of ok.
    narrow = ok.select("source_row", "row_key", "ref_id", "ts", "__kind", "description", "rest_part", "fee_part", "funding_part")
    parts = [
        narrow.filter((pl.col("rest_part") != 0) | ((pl.col("fee_part") == 0) & (pl.col("funding_part") == 0))).with_columns(
            entry_id="row_key", kind="__kind", qty="rest_part"),
        narrow.filter(pl.col("funding_part") != 0).with_columns(
            entry_id=pl.concat_str("row_key", pl.lit("/funding")), kind=pl.lit("funding"), qty="funding_part"),
        narrow.filter(pl.col("fee_part") != 0).with_columns(
            entry_id=pl.concat_str("row_key", pl.lit("/fee")), kind=pl.lit("fee"), qty="fee_part"),
    ]
    movements = interleave([p.select(part).cast({"qty": MOVEMENTS["qty"]}) for p in parts]).with_columns(asset=pl.lit(currency, pl.String))
    movements = to_schema(source, movements, MOVEMENTS)
    fills, cash, bad_fills = _derivatives(source, ok, movements, currency)
    everything = pl.concat([refused, quarantine, bad_fills]).sort("row", maintain_order=True)
    return Parsed(movements, everything, derivative_fills=fills, derivative_cash=cash)


def _size_column(frame: pl.DataFrame) -> str:
    """A fill's size: ``Amount`` (``Size`` in the oldest layout), else ``Base Amount``."""
    return next((c for c in ("Amount", "Size") if c in frame.columns), "Base Amount")


def _fee_column(frame: pl.DataFrame) -> str:
    return "Fee Charged" if "Fee Charged" in frame.columns else "Fee Paid"


def _derivatives(source: Source, ok: pl.DataFrame, movements: pl.DataFrame, currency: str | None
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Instrument legs of the trade rows of futures, perpetuals and options, and the cash of
    every row naming one (derivatives.md: Deribit futures in USD, options in base).

    Size: ``Amount`` (``Size`` in the oldest layout) is in the position unit; the previous
    layouts give only ``Base Amount``, which is the unit of options but not of futures (USD),
    so a future's fill there is refused rather than converted at the price.
    """
    # __instrument, __option, __type, __side_bad, __sell: per distinct type, side and instrument
    # (read_transaction_log); __qty, __price, __fee (and their __bad flags): parsed with the
    # file's other numbers.
    size_column, fee_column = _size_column(ok), _fee_column(ok)
    option, kind_type = pl.col("__option"), pl.col("__type")
    trades = ok.filter((kind_type == "trade") & pl.col("__instrument").is_not_null()).with_columns(
        Instrument=pl.col("instrument"), Price=pl.col("price"), Side=pl.col("side"))  # quarantine names the venue's columns
    checks = fill_checks(instrument="__instrument", qty="__qty", price="__price",
                         names={"instrument": "Instrument", "qty": size_column, "price": "Price"})
    checks += [
        Check(size_column, pl.lit(size_column == "Base Amount") & ~option,
              f'"{size_column}" is in the base coin; a future\'s position is in USD ("Amount"), which this layout lacks'),
        Check(fee_column, pl.col("__fee__bad"), pl.format('"{}": "{}" is not an exact decimal', pl.lit(fee_column), pl.col(fee_column))),
        Check("Side", pl.col("__side_bad"), pl.format('"Side": "{}" says neither buy nor sell', pl.col("side"))),
    ]
    sell = pl.col("__sell")
    fills, bad = derivative_fills(
        source, trades, checks,
        instrument=pl.col("__instrument"), ts=pl.col("ts"), leg_id=pl.col("row_key"),
        qty=pl.when(sell).then(-pl.col("__qty")).otherwise(pl.col("__qty")), price=pl.col("__price"),
        fee=pl.col("__fee"), fee_asset=pl.lit(currency, pl.String), source=pl.lit("ledger"),
    )
    # Each cash part of a row naming an instrument, by what it is: a future's trade realizes
    # PnL, an option's trade pays or receives its premium; settlement and delivery as named.
    rows = ok.filter(pl.col("__instrument").is_not_null()).select(
        "source_row", instrument="__instrument", __type=kind_type, __option=option,
        price=pl.when(kind_type.is_in(["settlement", "delivery"])).then(pl.col("__price")),
    )
    # Chosen as a number, then named: a choice among text columns gathers the text of every
    # branch (~0.07 CPU s per two million movements), numbers do not.
    kind, kind_type = pl.col("kind"), pl.col("__type")
    kinds = cash_kind_text(
        pl.when(pl.col("qty") == 0).then(None)
        .when(kind == "fee").then(_FEE).when(kind == "funding").then(_FUNDING)
        .when(kind_type == "trade").then(pl.when(pl.col("__option")).then(_PREMIUM).otherwise(_REALIZED))
        .when(kind_type == "settlement").then(_SETTLEMENT).when(kind_type == "delivery").then(_DELIVERY)
    )
    return fills, derivative_cash(movements, rows, kinds), bad


_FEE, _FUNDING, _PREMIUM, _REALIZED, _SETTLEMENT, _DELIVERY = (
    CASH_KIND_CODES[k] for k in ("fee", "funding", "premium", "realized_pnl", "settlement", "delivery"))


# How a file is claimed (utl.venues.base.Columns): the reader checks its whole header, so
# each version is matched whole (case, blanks and BOMs aside).
COLUMNS = tuple(Columns(required=h, exact=True) for h in HEADERS)

# The settle asset's wallet: private/get_account_summary (one currency) or
# get_account_summaries (``summaries``), the whole JSON-RPC reply or its ``result``.
_SUMMARY_KEYS = {"currency", "balance"}


def _summary_shape(head: str) -> bool:
    keys, _ = top_level_keys(head)
    if "jsonrpc" in keys or "result" in keys:
        inner = head[head.find('"result"'):] if '"result"' in head else ""
        return bool(re.match(r'"result"\s*:\s*\{', inner)) and (
            '"summaries"' in inner or all(f'"{k}"' in inner for k in ("currency", "balance", "equity")))
    return "summaries" in keys or (_SUMMARY_KEYS <= set(keys) and "equity" in keys)


def read_account_summary(source: Source) -> Parsed:
    """The wallet per currency: ``balance`` (cash, excluding unrealized PnL; derivatives.md)."""
    import json

    from utl.venues.contracts import wallet_balances

    text = source.path.read_bytes().decode("utf-8").removeprefix("\ufeff")
    reply = json.loads(text, parse_float=str, parse_int=str)  # a balance never passes through a float
    result = reply.get("result", reply) if isinstance(reply, dict) else None
    if not isinstance(result, dict):
        raise ValueError('not a Deribit account summary: no "result" object')
    entries = result["summaries"] if isinstance(result.get("summaries"), list) else [result]
    return wallet_balances(source, entries, "currency", "balance")


FORMATS = [Format("deribit.account_summary", "balances", _summary_shape, read_account_summary),
           Format("deribit.transaction_log", "ledger", None, read_transaction_log, columns=COLUMNS,
                  layouts=tuple(Layout(v, h) for v, h in zip(("current", "previous", "older", "oldest"), HEADERS)))]
