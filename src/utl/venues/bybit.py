"""Bybit exports: Asset Change Details (UTA and Funding account), the pre-UTA derivatives
log, and the spot Trade History.

Layouts, versions and quirks: ``/work/shared/venues/bybit.md``. What drives the code:

- Most files open with a ``UID: …`` line before the header; it is skipped by content.
- The asset-change logs are ledgers. One row can move its currency three ways at once: the
  cash flow (a spot leg, realized PnL, a transfer), the fee and the funding. Each non-zero
  part is its own movement (``…/fee``, ``…/funding``), so fees and funding stay visible.
  The row's ``Change`` is the wallet truth: a row whose parts do not add up to it is refused,
  never booked half right.
- Fee and funding signs differ by generation: UTA writes a paid fee as negative (as the
  wallet sees it), the pre-UTA log as positive. The movement is always the wallet's sign.
- Times are UTC. Spot Trade History gives only minutes (``HH:MM YYYY-MM-DD``).
"""

from __future__ import annotations

import concurrent.futures
from decimal import Decimal

import polars as pl

from utl.assets import split_symbol
from utl.decimals import DECIMAL
from utl.derivatives.snapshots import bybit_symbol
from utl.schemas import FILLS, MOVEMENTS
from utl.venues.base import CASH_KIND_CODES, cash_kind_text, interleave_parts
from utl.venues.contracts import derivative_cash, derivative_fills, fill_checks, venue_instruments
from utl.venues.base import (
    with_numbers,
    Layout,
    Check,
    Columns,
    Format,
    Parsed,
    Source,
    finish,
    first_line,
    head_text,
    interleave,
    number_checks,
    per_distinct,
    read_csv_rows,
    require_columns,
    shaped_time,
    side_checks,
    side_of,
    signed,
    split_refused,
    text_or_null,
    time_checks,
    to_schema,
    trailing_code,
    unsplit_reason,
    with_synthetic_id,
)

_SECONDS = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$"
_MINUTES = r"^\d{2}:\d{2} \d{4}-\d{2}-\d{2}$"


def preamble_lines(head: str) -> int:
    """1 when the file opens with Bybit's ``UID: <uid>,Company Name: ,Country:`` line."""
    return 1 if first_line(head).startswith("UID:") else 0


def _rows(source: Source) -> tuple[pl.DataFrame, pl.DataFrame]:
    return read_csv_rows(source, preamble_lines(head_text(source.path)))


def bybit_time(text: pl.Expr) -> pl.Expr:
    """UTC text: ``YYYY-MM-DD HH:MM:SS[.fff]`` or the spot history's ``HH:MM YYYY-MM-DD``."""
    return shaped_time(text, ((_SECONDS, "%Y-%m-%d %H:%M:%S%.f"), (_MINUTES, "%H:%M %Y-%m-%d")))


def with_time(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """``frame`` with ``ts`` read from ``column`` by :func:`bybit_time`."""
    return frame.with_columns(ts=bybit_time(pl.col(column)))


def present(cell: pl.Expr) -> pl.Expr:
    """The stripped text, null when empty or Bybit's ``--``."""
    return text_or_null(cell, ("", "--"))


# ---------------------------------------------------------------------------------------------
# Asset change logs (ledgers): UTA, pre-UTA derivatives, Funding account
# ---------------------------------------------------------------------------------------------

UTA_WITH_UID = (
    "Uid", "Currency", "Contract", "Type", "Direction", "Quantity", "Position", "Filled Price",
    "Funding", "Fee Paid", "Cash Flow", "Change", "Wallet Balance", "Action", "Time(UTC)",
)  # fmt: skip
UTA_WITH_IDS = (
    "Currency", "Contract", "Type", "Direction", "Quantity", "Position", "Filled Price",
    "Funding", "Fee Paid", "Cash Flow", "Change", "Wallet Balance", "Action", "OrderId", "TradeId", "Time",
)  # fmt: skip
DERIVATIVES_LEGACY = (
    "Time", "Currency", "Contract", "Type", "Direction", "Quantity", "Position", "Filled Price",
    "Funding", "Fee Paid", "Cash Flow", "Change", "Wallet Balance", "Fee Rate", "Trade ID", "Order ID",
)  # fmt: skip

# Below this size three parts cannot overflow Decimal(38, 18) when added.
_PART_LIMIT = pl.lit(Decimal(10) ** 19, DECIMAL)


def uta_kind(kind: pl.Expr, action: pl.Expr) -> pl.Expr:
    """The kind of a UTA row's cash flow: a spot leg is a trade, a derivative's is PnL."""
    t = kind.str.strip_chars().str.to_uppercase()
    a = action.str.strip_chars().str.to_uppercase()
    return (
        pl.when((t == "TRADE") & a.is_in(["OPEN", "CLOSE"]))
        .then(pl.lit("realized_pnl"))
        .when(t.is_in(["TRADE", "CURRENCY_SELL", "CURRENCY_BUY", "--"]))  # "--": dust conversion
        .then(pl.lit("trade"))
        .when(t.is_in(["SETTLEMENT", "DELIVERY"]) | t.str.contains("LIQUIDATION"))
        .then(pl.lit("realized_pnl"))
        .when(t.str.contains("TRANSFER"))
        .then(pl.lit("transfer"))
        .when(t.str.contains("INTEREST"))
        .then(pl.lit("interest"))
        .when(t.str.contains("REBATE|REFUND"))
        .then(pl.lit("rebate"))
        .otherwise(pl.lit("other"))
    )


LEGACY_KINDS = {
    "trade": "realized_pnl",
    "liquidation": "realized_pnl",
    "funding": "funding",
    "deposit": "deposit",
    "withdraw": "withdrawal",
    "transferin": "transfer",
    "transferout": "transfer",
    "exchangein": "trade",
    "exchangeout": "trade",
}


def legacy_kind(kind: pl.Expr) -> pl.Expr:
    t = kind.str.strip_chars().str.to_lowercase()
    return t.replace_strict(LEGACY_KINDS, default="other", return_dtype=pl.String)


def _read_asset_log(source: Source) -> Parsed:
    """UTA (both variants) and pre-UTA derivatives logs: each row's parts as movements."""
    rows, refused = _rows(source)
    legacy = "Fee Rate" in rows.columns
    time_column = "Time(UTC)" if "Time(UTC)" in rows.columns else "Time"
    id_column = "Trade ID" if legacy else ("TradeId" if "TradeId" in rows.columns else None)
    parts = ["Currency", "Type", "Funding", "Fee Paid", "Cash Flow", "Change", time_column]
    require_columns(rows, parts + ([] if legacy else ["Action"]) + ([id_column] if id_column else []), source.rel)
    # Wallet signs: UTA already writes them (fee paid < 0, funding paid < 0); the pre-UTA log
    # writes paid fees and paid funding as positive numbers.
    wallet_sign = (lambda part: -part) if legacy else (lambda part: part)
    # The trade id, read once (each use of the expression would strip every id again).
    rows_read = rows.columns
    rows = rows.with_columns(__trade=present(pl.col(id_column)) if id_column else pl.lit(None, pl.String))
    trade = pl.col("__trade")
    numbers = {"cash": pl.col("Cash Flow"), "fee_part": pl.col("Fee Paid"), "funding_part": pl.col("Funding"), "change": pl.col("Change")}
    words = dict(
        asset=present(pl.col("Currency")),
        description=pl.col("Type").str.strip_chars(),
        kind=legacy_kind(pl.col("Type")) if legacy else uta_kind(pl.col("Type"), pl.col("Action")),
        **_derivative_rows(legacy),
    )
    # Rows without an id are told apart by their content; the running Wallet Balance makes
    # true repeats rare, and the occurrence number keeps those that remain. The content is
    # written (pl.format lets go of the GIL) while the numbers and words are read, unless a
    # column of the row has the name of one those steps write (then it is read after them,
    # from the written column, as it always was).
    content_columns = [c for c in rows_read if c != "source_row"]
    written = {*numbers, *(f"{n}__bad" for n in numbers), "ts", *words}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        content = (pool.submit(lambda: _content_ids(rows, content_columns, trade)["__content"])
                   if written.isdisjoint(content_columns) else None)
        frame = with_numbers(rows, **numbers)
        frame = per_distinct(with_time(frame, time_column), ["Currency", "Type", *([] if legacy else ["Action"])], **words)
        frame = frame.with_columns(content.result()) if content is not None else _content_ids(frame, content_columns, trade)
    # A UTA spot fill is two rows (one per currency) under one TradeId.
    trade_key = trade if legacy else pl.concat_str([trade, pl.col("asset").fill_null("")], separator=":")
    frame = frame.with_columns(ref_id=trade).with_columns(
        entry_id=pl.when(trade.is_not_null()).then(trade_key).otherwise(pl.col("__content")),
    )
    checks = [
        *time_checks(time_column, "YYYY-MM-DD HH:MM:SS"),
        Check("Currency", pl.col("asset").is_null(), '"Currency" is missing'),
        *number_checks("Change", "change"),
        # "--" in a part means none: zero, not missing.
        *number_checks("Cash Flow", "cash", required=False),
        *number_checks("Fee Paid", "fee_part", required=False),
        *number_checks("Funding", "funding_part", required=False),
    ]
    for column, name in (("Cash Flow", "cash"), ("Fee Paid", "fee_part"), ("Funding", "funding_part"), ("Change", "change")):
        checks.append(Check(column, pl.col(name).abs() >= _PART_LIMIT, pl.format(f'"{column}": "{{}}" is too large', pl.col(column))))
    passed, quarantine = split_refused(frame, checks, source.rel)

    zero = pl.lit(0, DECIMAL)
    passed = passed.with_columns(
        cash=pl.col("cash").fill_null(zero),
        fee_part=wallet_sign(pl.col("fee_part").fill_null(zero)),
        funding_part=wallet_sign(pl.col("funding_part").fill_null(zero)),
    )
    sign = "-" if legacy else "+"
    adds_up = Check(
        "Change",
        pl.col("cash") + pl.col("fee_part") + pl.col("funding_part") != pl.col("change"),
        pl.format(
            f'"Change": "{{}}" is not Cash Flow {sign} Fee Paid {sign} Funding ("{{}}" {sign} "{{}}" {sign} "{{}}")',
            pl.col("Change"), pl.col("Cash Flow"), pl.col("Fee Paid"), pl.col("Funding"),
        ),
    )  # fmt: skip
    passed, unbalanced = split_refused(passed, [adds_up], source.rel)

    # A row whose parts are all zero still appears once, as its cash flow.
    keep_cash = (pl.col("cash") != 0) | ((pl.col("fee_part") == 0) & (pl.col("funding_part") == 0))
    rows = passed
    passed = passed.select("source_row", "entry_id", "ref_id", "ts", "kind", "asset", "description", "cash", "fee_part", "funding_part")
    movements = interleave_parts(
        passed,
        [
            (keep_cash, {"qty": pl.col("cash")}),
            (pl.col("fee_part") != 0,
             {"qty": pl.col("fee_part"), "kind": pl.lit("fee"), "entry_id": pl.col("entry_id") + "/fee"}),
            (pl.col("funding_part") != 0,
             {"qty": pl.col("funding_part"), "kind": pl.lit("funding"), "entry_id": pl.col("entry_id") + "/funding"}),
        ],
        # The booked columns only: the parts are read from, not gathered into, the movements.
        ["source_row", "entry_id", "ref_id", "ts", "kind", "asset", "description", "qty"],
    )
    movements = to_schema(source, movements, MOVEMENTS)
    fills, cash, bad_fills = _derivatives(source, rows, movements, legacy)
    everything = pl.concat([refused, quarantine, unbalanced, bad_fills]).sort("row", maintain_order=True)
    return Parsed(movements, everything, derivative_fills=fills, derivative_cash=cash)


def _content_ids(frame: pl.DataFrame, columns: list[str], trade: pl.Expr) -> pl.DataFrame:
    """``frame`` with ``__content``, :func:`with_synthetic_id` of ``columns``, where ``trade``
    is null (null elsewhere: those rows are keyed by their trade).

    Rows are counted as repeats only among identical rows, and a row with a trade id is never
    identical to one without, so the ids of the id-less rows alone are the ids they get among
    all rows; a log with trade ids is spared writing every row out as text.
    """
    no_trade = frame.select(trade.is_null()).to_series()
    if no_trade.all():
        return with_synthetic_id(frame, columns, "__content")
    at = no_trade.arg_true()
    content = with_synthetic_id(frame.select(columns).gather(at), columns, "__content")["__content"]
    nulls = pl.Series("__content", [None], pl.String).extend_constant(None, frame.height - 1)
    return frame.with_columns(nulls.scatter(at, content) if at.len() else nulls)


_LEGACY_BUY = ("buy", "open long", "close short")
_LEGACY_SELL = ("sell", "open short", "close long")


def _derivative_rows(legacy: bool) -> dict[str, pl.Expr]:
    """What :func:`_derivatives` reads of a row's ``Type`` (and UTA ``Action``): the type in
    lower case, whether the row is a fill, whether it is a derivative's."""
    kind = pl.col("Type").str.strip_chars().str.to_lowercase()
    if legacy:
        fill_row = kind.is_in(["trade", "liquidation"])
        derivative_row = fill_row | kind.is_in(["funding"])
    else:
        action = pl.col("Action").str.strip_chars().str.to_uppercase()
        fill_row = (kind == "trade") & action.is_in(["OPEN", "CLOSE"])
        derivative_row = fill_row | kind.is_in(["settlement", "delivery"]) | kind.str.contains("liquidation")
    return {"__kind": kind, "__fill_row": fill_row, "__derivative_row": derivative_row}


def _derivatives(source: Source, rows: pl.DataFrame, movements: pl.DataFrame, legacy: bool
                 ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The derivative rows of an asset log: each fill (UTA ``TRADE`` with ``Action``
    ``OPEN``/``CLOSE``; pre-UTA ``trade``/``liquidation``) is an instrument leg of
    ``Quantity`` (unsigned: linear base, inverse USD) signed by ``Direction``, at ``Filled
    Price``, its fee ``Fee Paid`` in ``Currency``; the row's cash parts (realized PnL, fee,
    funding, settlement, delivery) are attributed to the instrument of ``Contract``.

    A fill whose size or price cannot be read is refused as a fill; its cash, read exactly,
    stays booked (the wallet's Change is true), so the position shows as a break.
    """
    # A user may export the log without the trade columns (they are optional for its cash):
    # then a fill's instrument, size or price is missing and the fill is refused below.
    absent = [c for c in ("Contract", "Direction", "Quantity", "Filled Price") if c not in rows.columns]
    # Only the columns read below: the filters then gather those, not the row's synthesized
    # content id and other wide text.
    # __kind, __fill_row, __derivative_row: per distinct type and action (_derivative_rows),
    # read with the row's kind in _read_asset_log.
    used = ["source_row", "ts", "entry_id", "asset", "fee_part", "__kind", "__fill_row", "__derivative_row"]
    venue_columns = [c for c in ("Contract", "Direction", "Quantity", "Filled Price") if c not in absent]
    rows = rows.select(*used, *venue_columns, *[pl.lit(None, pl.String).alias(c) for c in absent])
    # Rows naming no contract are spot; a fill row without one is refused (its cash still books).
    rows = rows.filter(pl.col("__derivative_row"))
    # Contracts and directions are a venue's vocabulary: each is read once per distinct cell
    # (string work on every row was most of this step's CPU), a contract's instrument too.
    contract = present(pl.col("Contract"))
    instrument = contract.map_batches(lambda names: venue_instruments(names, bybit_symbol), return_dtype=pl.String)
    rows = per_distinct(rows, "Contract", __contract=contract, __instrument=instrument,
                        __option=instrument.str.contains(r"-[CP]$"))
    rows = rows.filter(pl.col("__contract").is_not_null() | pl.col("__fill_row"))
    direction = pl.col("Direction").str.strip_chars().str.to_lowercase()
    rows = per_distinct(rows, "Direction", __direction_bad=~direction.is_in([*_LEGACY_BUY, *_LEGACY_SELL]).fill_null(True),
                        __sell=direction.is_in(_LEGACY_SELL))
    trades = with_numbers(rows.filter(pl.col("__fill_row")), __qty=pl.col("Quantity"), __price=pl.col("Filled Price"))
    checks = fill_checks(instrument="__instrument", qty="__qty", price="__price",
                         names={"instrument": "Contract", "qty": "Quantity", "price": "Filled Price"})
    checks.append(Check("Direction", pl.col("__direction_bad"),
                        pl.format('"Direction": "{}" is neither a buy nor a sell', pl.col("Direction"))))
    fills, bad = derivative_fills(
        source, trades, checks,
        instrument=pl.col("__instrument"), ts=pl.col("ts"), leg_id=pl.col("entry_id"),
        qty=pl.when(pl.col("__sell")).then(-pl.col("__qty")).otherwise(pl.col("__qty")),
        price=pl.col("__price"), fee=-pl.col("fee_part"), fee_asset=pl.col("asset"), source=pl.lit("ledger"),
    )
    named = rows.filter(pl.col("__instrument").is_not_null()).select(
        "source_row", instrument="__instrument", __type="__kind", __option="__option",
    )
    # Chosen as a number, then named (utl.venues.base.cash_kind_text).
    kind, kind_type, code = pl.col("kind"), pl.col("__type"), CASH_KIND_CODES
    kinds = cash_kind_text(
        pl.when(pl.col("qty") == 0).then(None)
        .when(kind == "fee").then(code["fee"]).when(kind == "funding").then(code["funding"])
        .when(kind_type == "settlement").then(code["settlement"]).when(kind_type == "delivery").then(code["delivery"])
        .when(pl.col("__option")).then(code["premium"])
        .otherwise(code["realized_pnl"])
    )
    return fills, derivative_cash(movements, named, kinds), bad


read_uta = _read_asset_log
read_derivatives_legacy = _read_asset_log


FUND_CURRENT = ("Uid", "Date & Time(UTC)", "Coin", "QTY", "Type", "Account Balance", "Description")
FUND_OLDER = FUND_CURRENT[1:]


def fund_kind(kind: pl.Expr, description: pl.Expr, qty: pl.Expr) -> pl.Expr:
    """Funding-account ``Type`` (and ``Description``, which names withdrawals) -> kind."""
    t = kind.str.strip_chars().str.to_lowercase()
    d = description.str.strip_chars().str.to_lowercase()
    return (
        pl.when(t.str.contains("withdraw") | d.str.contains("withdraw"))
        .then(pl.lit("withdrawal"))
        .when(t.str.contains("deposit"))
        .then(pl.lit("deposit"))
        .when(t.str.contains("transfer"))
        .then(pl.lit("transfer"))
        .when((t == "earn") & d.str.contains("interest|yield|reward"))
        .then(pl.lit("interest"))
        .when(t == "earn")  # subscriptions and redemptions move between own accounts
        .then(pl.lit("transfer"))
        .when(t == "fiat")  # the sign tells a fiat deposit from a fiat withdrawal
        .then(pl.when(qty < 0).then(pl.lit("withdrawal")).otherwise(pl.lit("deposit")))
        .otherwise(pl.lit("other"))
    )


def read_fund(source: Source) -> Parsed:
    rows, refused = _rows(source)
    require_columns(rows, list(FUND_OLDER), source.rel)
    description = pl.col("Description").str.strip_chars()
    frame = per_distinct(
        with_time(with_numbers(rows, qty=pl.col("QTY")), "Date & Time(UTC)"),
        ["Coin", "Type", "Description"],
        asset=present(pl.col("Coin")),
        description=pl.when(description != "").then(description).otherwise(pl.col("Type").str.strip_chars()),
        # The kind depends on the sign only for fiat rows: both answers, then the sign picks.
        __kind_in=fund_kind(pl.col("Type"), pl.col("Description"), pl.lit(1)),
        __kind_out=fund_kind(pl.col("Type"), pl.col("Description"), pl.lit(-1)),
    )
    frame = frame.with_columns(
        kind=pl.when(pl.col("qty") < 0).then(pl.col("__kind_out")).otherwise(pl.col("__kind_in")),
        ref_id=pl.lit(None, pl.String),
    )
    # Without Uid, so that both versions of one row give one key.
    frame = with_synthetic_id(frame, list(FUND_OLDER), "entry_id")
    checks = [
        *time_checks("Date & Time(UTC)", "YYYY-MM-DD HH:MM:SS"),
        Check("Coin", pl.col("asset").is_null(), '"Coin" is missing'),
        *number_checks("QTY", "qty"),
    ]
    return finish(source, frame, checks, MOVEMENTS, refused)


# ---------------------------------------------------------------------------------------------
# Spot Trade History (fills)
# ---------------------------------------------------------------------------------------------

SPOT_CURRENT = (
    "Spot Pairs", "Order Type", "Direction", "feeCoin", "ExecFeeV2", "Filled Value", "Filled Price",
    "Filled Quantity", "Fees", "Transaction ID", "Order No.",
)  # fmt: skip
SPOT_PREVIOUS = (
    "Spot Pairs", "Order Type", "Direction", "Filled Value", "Filled Price", "Filled Quantity",
    "Fees", "Transaction ID", "Order No.",
)  # fmt: skip
SPOT_LEADING = ((), ("Uid",), ("Filled Time (Local Time)",))
SPOT_TIMESTAMPS = ("Timestamp (UTC)", "Timestamp (UTC+0)")
# The published versions (each with a fixture); the reader also takes their other
# combinations of leading column and timestamp name (SPOT_LAYOUTS).
SPOT_VERSIONS = (
    Layout("current", SPOT_CURRENT + ("Timestamp (UTC)",)),
    Layout("previous with Uid", ("Uid",) + SPOT_PREVIOUS + ("Timestamp (UTC+0)",)),
    Layout("pre-UTA", ("Filled Time (Local Time)",) + SPOT_PREVIOUS + ("Timestamp (UTC)",)),
)
SPOT_LAYOUTS = [lead + body + (ts,) for lead in SPOT_LEADING for body in (SPOT_CURRENT, SPOT_PREVIOUS) for ts in SPOT_TIMESTAMPS]


def read_spot_trades(source: Source) -> Parsed:
    """Spot fills. The fee is ``ExecFeeV2`` in ``feeCoin`` (current) or ``Fees`` in the asset
    received (previous: base on a buy, quote on a sell); positive = charged."""
    rows, refused = _rows(source)
    time_column = next((c for c in SPOT_TIMESTAMPS if c in rows.columns), SPOT_TIMESTAMPS[0])
    require_columns(rows, [*SPOT_PREVIOUS, time_column], source.rel)
    current = "ExecFeeV2" in rows.columns
    base, quote = split_symbol(pl.col("Spot Pairs"), source.pairs)
    frame = per_distinct(
        rows,
        ["Spot Pairs", "Direction", *(["feeCoin"] if current else [])],
        symbol=pl.col("Spot Pairs").str.strip_chars(),
        base=base,
        quote=quote,
        side=side_of(pl.col("Direction")),
        __fee_coin=present(pl.col("feeCoin")) if current else pl.lit(None, pl.String),
    )
    received = pl.when(pl.col("side") == "sell").then(pl.col("quote")).otherwise(pl.col("base"))
    # Pre-UTA files glue a unit to numbers ("99.687126 USDT"); a glued fee unit wins.
    frame = frame.with_columns(
        __exec_fee=present(pl.col("ExecFeeV2")) if current else pl.lit(None, pl.String),
        __old_fee=present(pl.col("Fees")),
        __fee_code=trailing_code(pl.col("Fees")).replace("", None),
    )
    exec_fee, old_fee = pl.col("__exec_fee"), pl.col("__old_fee")
    frame = frame.with_columns(
        fee_text=pl.coalesce(exec_fee, old_fee),
        fee_asset=pl.when(exec_fee.is_not_null())
        .then(pl.coalesce(pl.col("__fee_coin"), received))
        .when(old_fee.is_not_null())
        .then(pl.coalesce(pl.col("__fee_code"), received)),
    )
    frame = with_numbers(
        frame,
        qty=(pl.col("Filled Quantity"), pl.col("base")),
        price=(pl.col("Filled Price"), pl.col("quote")),
        quote_qty=(pl.col("Filled Value"), pl.col("quote")),
        fee=(pl.col("fee_text"), pl.col("fee_asset")),
    )
    frame = with_time(frame, time_column).with_columns(
        trade_id=present(pl.col("Transaction ID")),
        order_id=present(pl.col("Order No.")),  # written with a leading space
        liquidity=pl.lit(None, pl.String),
    )
    fee_column = "ExecFeeV2" if current else "Fees"
    checks = [
        *time_checks(time_column, "HH:MM YYYY-MM-DD" if time_column == "Timestamp (UTC)" else "YYYY-MM-DD HH:MM:SS"),
        Check("Spot Pairs", pl.col("base").is_null() | pl.col("quote").is_null(), unsplit_reason("Spot Pairs", pl.lit(None, pl.String))),
        *side_checks("Direction"),
        *number_checks("Filled Price", "price", sign="positive"),
        *number_checks("Filled Quantity", "qty", sign="positive"),
        *number_checks("Filled Value", "quote_qty", sign="non-negative"),
        Check(fee_column, pl.col("fee__bad"), pl.format(f'"{fee_column}": "{{}}" is not an exact decimal', pl.col("fee_text")), raw=pl.col("fee_text")),
        Check("Transaction ID", pl.col("trade_id").is_null(), '"Transaction ID" is missing'),
    ]
    return finish(source, frame, checks, FILLS, refused, qty=signed(pl.col("qty"), pl.col("side")))


# The columns each reader needs (utl.venues.base.Columns); all may follow the UID: line.
# The UTA log is told from the pre-UTA one by Action (UTA) and Fee Rate + Trade ID (pre-UTA),
# which also flip the fee and funding signs: a file with both is claimed by both, and refused.
_LOG_PARTS = ("Currency", "Type", "Funding", "Fee Paid", "Cash Flow", "Change")
_LOG_OPTIONAL = ("Contract", "Direction", "Quantity", "Position", "Filled Price", "Wallet Balance")
UTA_COLUMNS = Columns(required=(*_LOG_PARTS, ("Time(UTC)", "Time"), "Action"),
                      optional=("Uid", *_LOG_OPTIONAL, "OrderId", "TradeId"), preamble=1)
LEGACY_COLUMNS = Columns(required=("Time", *_LOG_PARTS, "Fee Rate", "Trade ID"),
                         optional=(*_LOG_OPTIONAL, "Order ID"), preamble=1)
# Account Balance is part of a row's content key.
FUND_COLUMNS = Columns(required=FUND_OLDER, optional=("Uid",), preamble=1)
# The reader requires every column of the previous layout (SPOT_PREVIOUS); the current
# layout's fee is ExecFeeV2 in feeCoin.
SPOT_COLUMNS = Columns(required=(*SPOT_PREVIOUS, SPOT_TIMESTAMPS), optional=("Uid", "Filled Time (Local Time)", "ExecFeeV2"),
                       needs_with={"ExecFeeV2": ("feeCoin",)}, preamble=1)

FORMATS = [
    Format("bybit.uta_asset_changes", "ledger", None, read_uta, columns=(UTA_COLUMNS,),
           layouts=(Layout("with Uid", UTA_WITH_UID), Layout("with ids", UTA_WITH_IDS))),
    Format("bybit.derivatives_legacy", "ledger", None, read_derivatives_legacy, columns=(LEGACY_COLUMNS,),
           layouts=(Layout("pre-UTA", DERIVATIVES_LEGACY),)),
    Format("bybit.fund_asset_changes", "ledger", None, read_fund, columns=(FUND_COLUMNS,),
           layouts=(Layout("current", FUND_CURRENT), Layout("older", FUND_OLDER))),
    Format("bybit.spot_trades", "fills", None, read_spot_trades, columns=(SPOT_COLUMNS,),
           layouts=SPOT_VERSIONS),
]
