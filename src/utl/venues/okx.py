"""OKX account history: the Trading account and the Funding account downloads.

Both are balance-change logs, so both read into MOVEMENTS (see ../shared/venues/okx.md).
A Trading account row is one bill: one asset's change (`Balance Change` of `Balance Unit`).
On a spot fill the fee sits on the received leg and is already inside its `Balance Change`
(received = Amount + Fee, Fee negative when paid); we split it out as its own "fee" movement
so fees stay visible, and the row's movements still sum to `Balance Change` exactly. The
fill detail the bill carries (order id, symbol, price) is kept in `ref_id` / `description`.

Times are local to the zone the file's preamble names (`Time Zone:UTC+8`). A file re-saved
without its preamble line (a spreadsheet drops it; issue 17) starts at the header: its zone
comes from utl.toml, `[timezones] "okx/<account>" = "UTC+8"` (Source.timezone); where
neither states one, every row is refused, naming both places, rather than guessed.

Before both, OKEx's 2020 trade history (:func:`read_okex_2020`): ``time,type,size,balance,
fee,currency``, one row per asset of a fill, times in ``CST``; a ledger too.
"""

from __future__ import annotations

import re

import polars as pl

from utl.decimals import sum_overflows
from utl.schemas import MOVEMENTS
from utl.derivatives.snapshots import okx_symbol
from utl.venues.contracts import derivative_cash, derivative_fills, fill_checks, venue_instruments
from utl.venues.base import (
    with_numbers,
    Columns,
    with_synthetic_id,
    Layout,
    Check,
    Format,
    Parsed,
    Source,
    head_text,
    header_cells,
    normal,
    interleave,
    out_of_years,
    per_distinct,
    read_csv_rows,
    split_refused,
    text_or_null,
    to_schema,
    utc,
)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# header cells -> our names for them, by position (the previous layout has two `Unit`s).
TRADING_LAYOUTS: dict[tuple[str, ...], tuple[str, ...]] = {
    (  # current
        "id", "Order id", "Time", "Trade Type", "Symbol", "Action", "Amount", "Trading Unit",
        "Filled Price", "PnL", "Fee", "Fee Unit", "Position Change", "Position Balance",
        "Balance Change", "Balance", "Balance Unit",
    ): (
        "id", "order_id", "time", "trade_type", "symbol", "action", "amount", "trading_unit",
        "filled_price", "pnl", "fee", "fee_unit", "position_change", "position_balance",
        "balance_change", "balance", "balance_unit",
    ),
    (  # with units
        "id", "Order id", "Time", "Trade Type", "Symbol", "Action", "Amount", "Trading Unit",
        "Filled Price", "Filled Price Unit", "PnL", "Fee", "Fee Unit", "Position Change",
        "Position Balance", "Position Unit", "Balance Change", "Balance", "Balance Unit",
    ): (
        "id", "order_id", "time", "trade_type", "symbol", "action", "amount", "trading_unit",
        "filled_price", "filled_price_unit", "pnl", "fee", "fee_unit", "position_change",
        "position_balance", "position_unit", "balance_change", "balance", "balance_unit",
    ),
    (  # previous: no Fee Unit (the fee is in the row's asset), no price
        "id", "Order id", "Time", "Trade Type", "Instrument", "Type", "Amount", "Unit", "PL",
        "Fee", "Position Change", "Position Balance", "Balance Change", "Balance", "Unit",
    ): (
        "id", "order_id", "time", "trade_type", "symbol", "action", "amount", "trading_unit", "pnl",
        "fee", "position_change", "position_balance", "balance_change", "balance", "balance_unit",
    ),
}
PREVIOUS_TRADING = tuple(TRADING_LAYOUTS)[2]

FUNDING_LAYOUTS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("id", "Time", "Type", "Amount", "Before Balance", "After Balance", "Symbol"): (
        "id", "time", "type", "amount", "before", "after", "symbol",
    ),
    ("id", "Time", "Type", "Amount", "Before Balance", "After Balance", "Fee", "Symbol"): (
        "id", "time", "type", "amount", "before", "after", "fee", "symbol",
    ),
    ("id", "", "Time", "Type", "Amount", "Before Balance", "After Balance", "Fee", "Symbol"): (
        "id", "unnamed", "time", "type", "amount", "before", "after", "fee", "symbol",
    ),
}

_ZONE = re.compile(r"^(?:UTC|GMT)\s*(?:([+-])\s*(\d{1,2})(?::?(\d{2}))?)?$", re.IGNORECASE)


def _layout(head: str, layouts: dict[tuple[str, ...], tuple[str, ...]]) -> tuple[str | None, tuple[str, ...]] | None:
    """(preamble line or None, header cells) when the head is one of ``layouts``."""
    lines = head.splitlines()
    if not lines:
        return None
    preamble = None
    if header_cells(lines[0])[0].upper().startswith("UID:"):
        preamble, lines = lines[0], lines[1:]
    if not lines:
        return None
    cells = tuple(normal(c) for c in header_cells(lines[0]))
    for layout in layouts:  # case, blanks and BOMs aside; the layout's own spelling is returned
        if cells == tuple(normal(c) for c in layout):
            return preamble, layout
    return None


def zone_offset_minutes(preamble: str | None) -> int | None:
    """Minutes east of UTC named by the preamble's ``Time Zone:`` field; None when absent."""
    for cell in header_cells(preamble or ""):
        if cell.lower().startswith("time zone:"):
            return offset_of(cell.split(":", 1)[1])
    return None


def offset_of(zone: str | None) -> int | None:
    """Minutes east of UTC of ``UTC+8``, ``UTC-5:30``, ``GMT``, ``UTC``; None if not one."""
    m = _ZONE.match((zone or "").strip())
    if not m:
        return None
    sign = -1 if m.group(1) == "-" else 1
    hours, minutes = int(m.group(2) or 0), int(m.group(3) or 0)
    return sign * (hours * 60 + minutes) if hours <= 14 and minutes < 60 else None


def _read_layout(
    source: Source, layouts: dict[tuple[str, ...], tuple[str, ...]], used: set[str]
) -> tuple[pl.DataFrame, tuple[str, ...], int | str]:
    """The rows with our column names (the ``used`` ones stripped), the header cells, and the
    zone offset, or why it is unknown. A row with more or fewer cells than the header fails the file."""
    found = _layout(head_text(source.path), layouts)
    if found is None:
        raise ValueError(f"{source.rel}: not an OKX account history header")
    preamble, header = found
    frame, ragged = read_csv_rows(source, skip_lines=1 if preamble is not None else 0)
    if ragged.height:
        first = ragged.row(0, named=True)
        raise ValueError(f"{source.rel}: not a well-formed CSV: row {first['row']}: {first['reason']}")
    if frame.width - 1 != len(header):
        raise ValueError(f"{source.rel}: expected {len(header)} columns, found {frame.width - 1}")
    names = layouts[header]
    frame = frame.rename(dict(zip(frame.columns[1:], names)))
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in names if c in used)
    return frame, header, _zone(source, preamble)


def _zone(source: Source, preamble: str | None) -> int | str:
    """The file's UTC offset in minutes: its preamble's, else utl.toml's; else why neither."""
    offset = zone_offset_minutes(preamble)
    if offset is not None:
        return offset
    key = f"{source.venue}/{source.account}"
    if source.timezone is not None:
        offset = offset_of(source.timezone)
        if offset is None:
            return f'time zone unknown: utl.toml [timezones] "{key}" = "{source.timezone}" is not like "UTC+8"'
        return offset
    where = "the file has no preamble line" if preamble is None else "the preamble names no Time Zone"
    return f'time zone unknown: {where} (Time Zone:UTC+8) and utl.toml [timezones] has no "{key}"'


def _time_checks(offset: int | str, column: str = "Time") -> tuple[pl.Expr, list[Check]]:
    if isinstance(offset, str):
        refuse_all = Check(column, pl.lit(True), offset, raw=pl.col("time"))
        return pl.lit(None, pl.Datetime("us", "UTC")), [refuse_all]
    ts = pl.col("ts")  # the caller adds the parsed column before the checks run
    checks = [
        Check(column, pl.col("time") == "", "missing time", raw=pl.col("time")),
        Check(column, (pl.col("time") != "") & ts.is_null(), pl.format('"{}" is not a time like 2024-03-05 17:15:02', pl.col("time")), raw=pl.col("time")),
        Check(column, out_of_years(ts), "time outside 2000..2100", raw=pl.col("time")),
    ]
    return utc(pl.col("time"), TIME_FORMAT, offset), checks


def _number_checks(name: str, column: str, required: bool) -> list[Check]:
    """Checks on the ``<name>`` value / ``<name>_bad`` flag pair made by :func:`_with_numbers`."""
    checks = [Check(column, pl.col(f"{name}_bad"), pl.format('"{}" is not a decimal', pl.col(name)), raw=pl.col(name))]
    if required:
        checks.append(Check(column, pl.col(f"{name}_value").is_null() & ~pl.col(f"{name}_bad"), "missing value", raw=pl.col(name)))
    return checks


def _with_numbers(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Adds ``<name>_value`` (exact) and ``<name>_bad`` for number columns."""
    frame = with_numbers(frame, {f"{n}_value": n for n in names})
    return frame.rename({f"{n}_value__bad": f"{n}_bad" for n in names})


def _fee_unit() -> pl.Expr:
    """The fee's asset: ``Fee Unit``, else the row's own."""
    return pl.when(pl.col("fee_unit") == "").then(pl.col("balance_unit")).otherwise(pl.col("fee_unit"))


def _fee_in_row_asset() -> pl.Expr:
    return _fee_unit() == pl.col("balance_unit")


def _missing(name: str, column: str, why: str = "missing value") -> Check:
    return Check(column, pl.col(name) == "", why, raw=pl.col(name))


_PART = ["source_row", "entry_id", "ref_id", "ts", "kind", "asset", "qty", "description"]


def _null_if_blank(name: str) -> pl.Expr:
    return text_or_null(pl.col(name))


# ---------------------------------------------------------------- Trading account history


def _trading_kind(action: pl.Expr, trade_type: pl.Expr) -> pl.Expr:
    """Our movement kind for a bill's non-fee change, from OKX's own words."""
    a, t = action.str.to_lowercase(), trade_type.str.to_lowercase()
    return (
        pl.when(a.str.starts_with("transfer") | (t == "transfer")).then(pl.lit("transfer"))
        .when(a.is_in(["buy", "sell"])).then(pl.lit("trade"))
        .when(a.str.contains("funding") | t.str.contains("funding")).then(pl.lit("funding"))
        .when(a.str.contains("interest") | t.str.contains("interest")).then(pl.lit("interest"))
        .when(a.str.contains(r"open|close|liquidat|deliver|settle|exercise|adl")).then(pl.lit("realized_pnl"))
        .otherwise(pl.lit("other"))
    )


def read_trading(source: Source) -> Parsed:
    used = {"id", "order_id", "time", "trade_type", "symbol", "action", "amount", "filled_price", "fee", "fee_unit", "balance_change",
            "balance_unit"}
    frame, header, offset = _read_layout(source, TRADING_LAYOUTS, used)
    display = dict(zip(TRADING_LAYOUTS[header], header))
    if "fee_unit" not in frame.columns:
        frame = frame.with_columns(fee_unit=pl.col("balance_unit"))
    if "filled_price" not in frame.columns:
        frame = frame.with_columns(filled_price=pl.lit(""))
    frame = _with_numbers(frame, ["balance_change", "fee"])
    ts, time_checks = _time_checks(offset)
    frame = frame.with_columns(ts=ts)
    checks = [
        _missing("id", "id", "missing id: it is the row key"),
        *time_checks,
        _missing("balance_unit", display["balance_unit"], "missing asset"),
        *_number_checks("balance_change", "Balance Change", required=True),
        *_number_checks("fee", "Fee", required=False),
        # A fee in the row's asset is taken out of its balance change: where that leaves
        # Decimal(38, 18) the row is refused, not the file.
        Check("Fee", _fee_in_row_asset() & sum_overflows(pl.col("balance_change_value"), -pl.col("fee_value")),
              '"Balance Change" - "Fee" overflows 38 digits (20 before the point)',
              raw=pl.format("{} - {}", pl.col("balance_change"), pl.col("fee"))),
    ]
    ok, quarantine = split_refused(frame, checks, source.rel)

    # The previous layout repeats one `id` on both legs of a fill: the key adds the asset.
    row_key = pl.concat_str(["id", "balance_unit"], separator=":") if header == PREVIOUS_TRADING else pl.col("id")
    fee = pl.col("fee_value").fill_null(0)
    fee_unit = _fee_unit()
    fee_in_row_asset = _fee_in_row_asset()
    price = pl.when(pl.col("filled_price").is_in(["", "0"])).then(None).otherwise(pl.concat_str(pl.lit("@ "), "filled_price"))
    # Types, actions and symbols take a handful of values: their words are read once.
    what = pl.concat_str([_null_if_blank("trade_type"), _null_if_blank("action"), _null_if_blank("symbol")], separator=" ", ignore_nulls=True)
    ok = per_distinct(
        ok, ["trade_type", "action", "symbol"], __what=what.replace("", None), __kind=_trading_kind(pl.col("action"), pl.col("trade_type"))
    )
    description = pl.concat_str([pl.col("__what"), price], separator=" ", ignore_nulls=True)
    ok = ok.with_columns(
        row_key=row_key, fee=fee, fee_asset=fee_unit, description=description, ref_id=_null_if_blank("order_id"),
        main_qty=pl.when(fee_in_row_asset).then(pl.col("balance_change_value") - fee).otherwise(pl.col("balance_change_value")),
    )
    main = ok.filter((pl.col("main_qty") != 0) | (pl.col("fee") == 0)).select(
        "source_row", "ref_id", "ts", "description",
        entry_id="row_key", kind="__kind", asset="balance_unit", qty="main_qty",
    )  # fmt: skip
    fees = ok.filter(pl.col("fee") != 0).select(
        "source_row", "ref_id", "ts", "description", entry_id=pl.concat_str("row_key", pl.lit("/fee")), kind=pl.lit("fee"), asset="fee_asset", qty="fee",
    )
    movements = interleave([part.select(_PART).cast({"qty": MOVEMENTS["qty"]}) for part in (main, fees)])
    movements = to_schema(source, movements, MOVEMENTS)
    fills, cash, bad_fills = _derivatives(source, ok, movements, display)
    return Parsed(movements, pl.concat([quarantine, bad_fills]).sort("row", maintain_order=True),
                  derivative_fills=fills, derivative_cash=cash)


_BUYS = ("open long", "close short")
_SELLS = ("open short", "close long")


def _derivatives(source: Source, ok: pl.DataFrame, movements: pl.DataFrame, display: dict[str, str]
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Rows of swaps, futures and options (``BTC-USDT-SWAP``, ``BTC-USD-261225``,
    ``BTC-USD-261225-100000-C``): a fill (``Action`` open/close long/short) is an instrument
    leg of ``Amount`` contracts (derivatives.md: OKX positions count contracts; the contract
    value ``ctVal`` comes from the specs file, the export does not state it), + for open long
    and close short; its fee is −``Fee`` in ``Fee Unit``. Every cash part of such a row is
    attributed to its instrument."""
    ok = ok.with_columns(__instrument=venue_instruments(ok["symbol"], okx_symbol))
    action = pl.col("action").str.to_lowercase()
    fill_row = pl.col("__instrument").is_not_null() & action.is_in([*_BUYS, *_SELLS])
    trades = with_numbers(ok.filter(fill_row), __qty=pl.col("amount"), __price=pl.col("filled_price"))
    columns = {"instrument": display.get("symbol", "Symbol"), "qty": display.get("amount", "Amount"),
               "price": display.get("filled_price", "Filled Price")}
    trades = trades.with_columns(pl.col(name).alias(columns[key]) for key, name in
                                 (("instrument", "symbol"), ("qty", "amount"), ("price", "filled_price")))
    checks = fill_checks(instrument="__instrument", qty="__qty", price="__price", names=columns)
    fills, bad = derivative_fills(
        source, trades, checks,
        instrument=pl.col("__instrument"), ts=pl.col("ts"), leg_id=pl.col("row_key"),
        qty=pl.when(action.is_in(_SELLS)).then(-pl.col("__qty")).otherwise(pl.col("__qty")),
        price=pl.col("__price"), fee=-pl.col("fee"), fee_asset=pl.col("fee_asset"), source=pl.lit("ledger"),
    )
    named = ok.filter(pl.col("__instrument").is_not_null()).select(
        "source_row", instrument="__instrument", __action=action, __option=pl.col("__instrument").str.contains(r"-[CP]$"),
    )
    kinds = (
        pl.when(pl.col("qty") == 0).then(None)
        .when(pl.col("kind").is_in(["fee", "funding"])).then(pl.col("kind"))
        .when(pl.col("__action").str.contains("deliver")).then(pl.lit("delivery"))
        .when(pl.col("__action").str.contains("settle")).then(pl.lit("settlement"))
        .when(pl.col("__option")).then(pl.lit("premium"))
        .otherwise(pl.lit("realized_pnl"))
    )
    return fills, derivative_cash(movements, named, kinds), bad


# ---------------------------------------------------------------- Funding account history


def _funding_kind(kind: pl.Expr) -> pl.Expr:
    t = kind.str.to_lowercase()
    return (
        pl.when(t.str.contains("rebate")).then(pl.lit("rebate"))
        .when(t.str.contains(r"yield|interest|reward")).then(pl.lit("interest"))
        .when(t.str.contains("deposit")).then(pl.lit("deposit"))
        .when(t.str.contains("withdraw")).then(pl.lit("withdrawal"))
        .when(t.str.contains(r"transfer|trading account|stak|savings|subscri|redeem|redemption")).then(pl.lit("transfer"))
        .otherwise(pl.lit("other"))
    )


def read_funding(source: Source) -> Parsed:
    frame, header, offset = _read_layout(source, FUNDING_LAYOUTS, {"id", "time", "type", "amount", "fee", "symbol"})
    frame = _with_numbers(frame, ["amount", *(["fee"] if "fee" in frame.columns else [])])
    ts, time_checks = _time_checks(offset)
    frame = frame.with_columns(ts=ts)
    checks = [
        _missing("id", "id", "missing id: it is the row key"),
        *time_checks,
        _missing("symbol", "Symbol", "missing asset"),
        *_number_checks("amount", "Amount", required=True),
    ]
    ok, quarantine = split_refused(frame, checks, source.rel)
    # `Amount` is the whole change (After = Before + Amount, fee included); a `Fee` column is
    # only information, kept in the description so it is not booked twice.
    fee_note = pl.lit(None, pl.String)
    if "fee" in ok.columns:
        fee_note = pl.when((pl.col("fee") == "") | (pl.col("fee_value") == 0)).then(None).otherwise(pl.format("(fee {})", pl.col("fee")))
    movements = per_distinct(ok, "type", kind=_funding_kind(pl.col("type"))).with_columns(
        entry_id="id",
        ref_id=pl.lit(None, pl.String),
        asset="symbol",
        qty="amount_value",
        description=pl.concat_str([_null_if_blank("type"), fee_note], separator=" ", ignore_nulls=True),
    )
    return Parsed(to_schema(source, movements, MOVEMENTS), quarantine)


# ---------------------------------------------------------------- OKEx 2020 trade history

OKEX_2020 = ("time", "type", "size", "balance", "fee", "currency")
_CST = " CST"  # China Standard Time, UTC+8: how the 2020 export wrote its zone
_CST_MINUTES = 8 * 60


def read_okex_2020(source: Source) -> Parsed:
    """The OKEx trade history of 2020, before the OKX rename (issue 17).

    Documented by BittyTax's parser ``src/bittytax/conv/parsers/okx.py`` ("OKX Trades",
    ``parse_okx_trades_v1``: header ``time,type,size,balance,fee,currency``, times in
    ``CST``). What differs from its neighbours: no preamble and no ids; one row per asset
    of a fill (rows come in pairs, the ``buy`` row for the asset received, the ``sell`` row
    for the asset given), the asset in ``currency``, the balance after in ``balance``; the
    fee sits on the received row, in its currency. Signs are not relied on (the parser takes
    ``abs`` of both): the direction is the ``type``. A time ending `` CST`` is UTC+8; a bare
    time takes ``[timezones]`` of utl.toml, else its row is refused, naming both places.

    Each row books ``±|size|`` of ``currency`` (kind trade) and, where ``fee`` is not zero,
    ``-|fee|`` of it (kind fee). The key is the row's content and its occurrence number.
    """
    rows, refused = read_csv_rows(source)
    names = dict(zip(rows.columns[1:], OKEX_2020))
    rows = rows.rename(names).with_columns(pl.col(list(OKEX_2020)).str.strip_chars())
    rows = _with_numbers(rows, ["size", "fee"])
    side = pl.col("type").str.to_lowercase()
    cst = pl.col("time").str.ends_with(_CST)
    bare = pl.col("time").str.strip_suffix(_CST)
    offset = offset_of(source.timezone) if source.timezone is not None else None
    key = f"{source.venue}/{source.account}"
    in_cst = utc(bare, TIME_FORMAT, _CST_MINUTES)
    ts = pl.when(cst).then(in_cst).otherwise(utc(bare, TIME_FORMAT, offset) if offset is not None else None)
    rows = with_synthetic_id(rows.with_columns(ts=ts), list(OKEX_2020), "entry_id")
    no_zone = (f'time zone unknown: "{{}}" names none (2020-06-05 11:13:34 CST) and utl.toml [timezones] '
               f'has no "{key}"' if source.timezone is None else
               f'time zone unknown: "{{}}" names none and utl.toml [timezones] "{key}" = "{source.timezone}" '
               f'is not like "UTC+8"')
    checks = [
        Check("time", ~cst & pl.lit(offset is None), pl.format(no_zone, pl.col("time"))),
        Check("time", (cst | pl.lit(offset is not None)) & pl.col("ts").is_null(),
              pl.format('"{}" is not a time like 2020-06-05 11:13:34 CST', pl.col("time"))),
        Check("time", out_of_years(pl.col("ts")), "time outside 2000..2100"),
        Check("type", ~side.is_in(["buy", "sell"]), pl.format('"{}" is not buy or sell', pl.col("type"))),
        _missing("currency", "currency", "missing asset"),
        *_number_checks("size", "size", required=True),
        *_number_checks("fee", "fee", required=False),
    ]
    ok, quarantine = split_refused(rows, checks, source.rel)
    size = pl.col("size_value").abs()
    ok = ok.with_columns(
        ref_id=pl.lit(None, pl.String), asset="currency", description=pl.format("OKEx 2020 {}", pl.col("type")),
        qty=pl.when(side == "buy").then(size).otherwise(-size), kind=pl.lit("trade"),
    )
    fees = ok.filter(pl.col("fee_value").fill_null(0) != 0).with_columns(
        entry_id=pl.concat_str("entry_id", pl.lit("/fee")), kind=pl.lit("fee"), qty=-pl.col("fee_value").abs(),
    )
    movements = interleave([part.select(_PART).cast({"qty": MOVEMENTS["qty"]}) for part in (ok, fees)])
    return Parsed(to_schema(source, movements, MOVEMENTS), pl.concat([refused, quarantine]).sort("row", maintain_order=True))


# How a file is claimed (utl.venues.base.Columns): OKX readers map cells by position (the
# previous trading layout has two ``Unit`` columns, a funding layout an unnamed one), so each
# layout is matched whole, below an optional ``UID:`` / ``Time Zone:`` line.
TRADING_COLUMNS = tuple(Columns(required=h, exact=True, preamble=1) for h in TRADING_LAYOUTS)
FUNDING_COLUMNS = tuple(Columns(required=h, exact=True, preamble=1) for h in FUNDING_LAYOUTS)
OKEX_2020_COLUMNS = Columns(required=OKEX_2020, exact=True)

FORMATS = [
    Format("okx.trading_account", "ledger", None, read_trading, columns=TRADING_COLUMNS,
           layouts=tuple(Layout(v, h) for v, h in zip(("current", "with units", "previous"), TRADING_LAYOUTS))),
    Format("okx.funding_account", "ledger", None, read_funding, columns=FUNDING_COLUMNS,
           layouts=tuple(Layout(v, h) for v, h in zip(("previous", "current", "unnamed column"), FUNDING_LAYOUTS))),
    Format("okx.okex_2020_trades", "ledger", None, read_okex_2020, columns=(OKEX_2020_COLUMNS,),
           layouts=(Layout("2020", OKEX_2020),)),
]
