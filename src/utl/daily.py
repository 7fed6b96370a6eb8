"""One business date: positions, unit cost, PnL and its explain, from the day before.

A date is computed from the previous date's end state (ledger positions and open lots)
and that date's legs alone, so dates can run one after another, or be rerun, independently.

Positions. The ledger position of (venue, account, asset) at end of D is its opening
quantity plus its legs up to end of D (eod.md). An account opens on the day after its
earliest balance snapshot: each asset held then opens one lot at that snapshot day's mark.

Unit cost. Lots match per (book, asset) with the method of ``utl.toml``; a book is an
account unless ``[books]`` groups accounts. Every leg of an asset other than the reporting
currency is a costing trade, priced in the reporting currency:

- a fill's base leg at the fill price times the quote asset's mark for D (1 for the
  reporting currency itself);
- every other leg (quote, fee, deposit, ledger line) at its asset's mark for D.

Marks are end-of-day values, so a trade in a non-reporting quote (BTC/USDT) is costed at
D's USDT mark, not the rate at the trade's minute: the day's drift of the quote asset
lands in that asset's PnL. A fee leg is a disposal at its price whose proceeds are the fee.

PnL, per book. ``total_pnl = (market value at end of D) - (market value at end of D-1 of
the day's starting positions) - (external flows: deposits, withdrawals and transfers at
D's mark)``. It is explained, exactly, by

    realized + (change in unrealized) - fees + income + trade_residual + unexplained

where income is funding, interest, rebates and the like at mark, and trade_residual is the
value of the day's trade legs (zero when every trade's legs are priced consistently, e.g.
a venue's stated quote amount equals quantity times price). ``unexplained`` is what is left:
under FIFO, LIFO and HIFO it is zero whenever each product of a quantity and a price fits in
18 decimal places, and at most half a unit in the 18th place per rounded product otherwise.
Under WAC the pool's average is rounded at 18 places after each re-averaging (as the costing
contract allows), which moves the cost basis by up to half a unit in the 18th place times
the position; that drift shows in ``unexplained``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from utl.costing import compute_costs
from utl.decimals import DECIMAL
from utl.settings import Settings

ZERO = pl.lit(0, DECIMAL)
EXTERNAL_KINDS = ("deposit", "withdrawal", "transfer")
INCOME_KINDS = ("funding", "interest", "rebate", "realized_pnl", "other")
FEE_KINDS = ("fee",)

POSITIONS_STATE = pl.Schema({"venue": pl.String, "account": pl.String, "asset": pl.String, "qty": DECIMAL})
LOTS_STATE = pl.Schema(
    {
        "book": pl.String, "asset": pl.String, "trade_id": pl.String, "opened_ts": pl.Datetime("us", "UTC"),
        "qty": DECIMAL, "entry_price": DECIMAL,
    }
)


class MissingMark(ValueError):
    """A position or leg needs a mark the landing folder does not have: the day stops."""

    def __init__(self, asset: str, day: dt.date, why: str):
        self.asset, self.day = asset, day
        super().__init__(f"no mark for {asset} on {day.isoformat()} ({why}): add it to marks/{day.isoformat()}.csv")


@dataclass(frozen=True)
class DayState:
    """What one business date hands to the next."""

    business_date: dt.date
    positions: pl.DataFrame  # POSITIONS_STATE: ledger quantity per (venue, account, asset)
    lots: pl.DataFrame  # LOTS_STATE: open lots per (book, asset)


@dataclass(frozen=True)
class DayResult:
    state: DayState
    positions: pl.DataFrame  # per (venue, account, asset): qty, mark, market_value, cost_basis, unrealized_pnl
    pnl: pl.DataFrame  # per (book, asset)
    explain: pl.DataFrame  # per book


def empty_state(day: dt.date) -> DayState:
    return DayState(day, POSITIONS_STATE.to_frame(), LOTS_STATE.to_frame())


def with_book(frame: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    pairs = frame.select("venue", "account").unique()
    books = pairs.with_columns(
        book=pl.Series([settings.book_of(v, a) for v, a in pairs.iter_rows()], dtype=pl.String)
    )
    return frame.join(books, on=["venue", "account"], how="left")


def marks_for(marks: pl.DataFrame, day: dt.date, reporting: str) -> pl.DataFrame:
    """The marks of one date, the reporting currency at exactly 1."""
    own = marks.filter(pl.col("business_date") == day).select("asset", pl.col("price").alias("mark"))
    own = own.filter(pl.col("asset") != reporting)
    return pl.concat([own, pl.DataFrame({"asset": [reporting], "mark": pl.Series([1], dtype=DECIMAL)})])


def _require_marks(frame: pl.DataFrame, day: dt.date, why: str) -> None:
    missing = frame.filter(pl.col("mark").is_null())
    if missing.height:
        raise MissingMark(missing["asset"].sort()[0], day, why)


def price_legs(legs: pl.DataFrame, marks: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Each leg's unit price and value in the reporting currency (see the module doc)."""
    quote_marks = marks.rename({"asset": "quote", "mark": "quote_mark"})
    priced = legs.join(marks, on="asset", how="left").join(quote_marks, on="quote", how="left")
    by_fill = pl.col("price").is_not_null() & pl.col("quote").is_not_null()
    _require_marks(priced.filter(~by_fill), day, "a leg of this asset is valued at its mark")
    _require_marks(priced.filter(by_fill).drop("mark").rename({"quote_mark": "mark"}).drop("asset").rename({"quote": "asset"}),
                   day, "it is the quote asset of a fill")
    priced = priced.with_columns(
        unit_price=pl.when(by_fill).then(pl.col("price") * pl.col("quote_mark")).otherwise(pl.col("mark"))
    )
    return priced.with_columns(value=pl.col("qty") * pl.col("unit_price"))


def run_day(
    day: dt.date,
    start: DayState,
    openings: pl.DataFrame,
    legs: pl.DataFrame,
    marks: pl.DataFrame,
    settings: Settings,
    lap: Callable[[str], None] = lambda _: None,
) -> DayResult:
    """Compute business date ``day``.

    ``start``: the previous date's end state. ``openings``: (venue, account, asset, qty) of
    accounts whose first business date is ``day`` (their opening snapshot). ``legs``: the
    day's legs (ts within the day) of accounts already open. ``marks``: all marks (the
    day's and the day before's are used). ``lap(step)`` is called after each step (timing).
    """
    reporting = settings.reporting_currency
    before = day - dt.timedelta(days=1)
    marks_today = marks_for(marks, day, reporting)
    marks_before = marks_for(marks, before, reporting)
    opened_at = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)

    # Start of day: yesterday's positions and lots, plus the accounts that open today.
    opening_lots = (
        with_book(openings, settings)
        .filter((pl.col("asset") != reporting) & (pl.col("qty") != 0))
        .join(marks_before, on="asset", how="left")
    )
    _require_marks(opening_lots, before, "an opening balance is valued at its snapshot day's mark")
    opening_lots = opening_lots.select(
        "book", "asset",
        trade_id=pl.format("{}/{}/open/{}", pl.col("venue"), pl.col("account"), pl.col("asset")),
        opened_ts=pl.lit(opened_at, pl.Datetime("us", "UTC")), qty="qty", entry_price="mark",
    )
    start_positions = (
        pl.concat([start.positions, openings.select(POSITIONS_STATE.names()).cast(POSITIONS_STATE)])
        .lazy().group_by("venue", "account", "asset").agg(pl.col("qty").sum()).collect()
    )
    start_lots = pl.concat([start.lots, opening_lots.cast(LOTS_STATE)])
    lap("start of day")

    # The day's legs, priced; costing over carried lots then the day's trades.
    priced = price_legs(with_book(legs, settings), marks_today, day)
    lap("price legs")
    costed_legs = priced.filter((pl.col("asset") != reporting) & (pl.col("qty") != 0))
    carried = start_lots.select("book", "asset", pl.col("opened_ts").alias("ts"), "trade_id", "qty",
                                pl.col("entry_price").alias("price"), is_carry=pl.lit(True))
    today = costed_legs.select(
        "book", "asset", "ts", trade_id=pl.format("{}/{}/{}", pl.col("venue"), pl.col("account"), pl.col("leg_id")),
        qty="qty", price="unit_price", is_carry=pl.lit(False),
    )
    # Ids are unique by construction: leg ids within (venue, account), lot ids carried over.
    costs = compute_costs(pl.concat([carried, today]), settings.costing_method, ids_unique=True)
    lots = _carry_lots(costs.open_lots, settings.costing_method)
    lap("costing")

    end_positions = (
        pl.concat([start_positions, legs.select(POSITIONS_STATE.names()).cast(POSITIONS_STATE)])
        .lazy().group_by("venue", "account", "asset").agg(pl.col("qty").sum()).collect()
        .filter(pl.col("qty") != 0)
        .sort("venue", "account", "asset")
    )
    positions = _value_positions(end_positions, lots, marks_today, day, settings)
    lap("positions")
    pnl, explain = _pnl(day, start_positions, start_lots, priced, costs.realized, positions, marks_before, settings)
    lap("pnl and explain")
    return DayResult(DayState(day, end_positions, lots), positions, pnl, explain)


def _carry_lots(open_lots: pl.DataFrame, method: str) -> pl.DataFrame:
    """Open lots as tomorrow's carried trades; a WAC pool gets a stable id of its own."""
    if method == "wac":
        open_lots = open_lots.with_columns(
            trade_id=pl.format("pool/{}/{}", pl.col("book"), pl.col("asset"))
        )
    return open_lots.select(LOTS_STATE.names()).cast(LOTS_STATE)


def _value_positions(end_positions: pl.DataFrame, lots: pl.DataFrame, marks: pl.DataFrame, day: dt.date,
                     settings: Settings) -> pl.DataFrame:
    """Per (venue, account, asset): qty, mark, market value, cost basis, unrealized PnL.

    Lots belong to a book, not an account. With one account per book (the default) the
    account's cost basis is its book's. Where ``[books]`` groups accounts, the book's cost
    basis is shared out in proportion to each account's quantity (rounded half-even at 18
    places), and the account with the largest position takes the rounding remainder, so the
    accounts always add up to the book exactly.
    """
    reporting = settings.reporting_currency
    valued = with_book(end_positions, settings).join(marks, on="asset", how="left")
    _require_marks(valued, day, "it has a non-zero position")
    basis = lots.lazy().group_by("book", "asset").agg((pl.col("qty") * pl.col("entry_price")).sum().alias("book_cost")).collect()
    shared = (
        valued.join(basis, on=["book", "asset"], how="left")
        .with_columns(
            book_cost=pl.col("book_cost").fill_null(ZERO),
            book_qty=pl.col("qty").sum().over("book", "asset"),
            # The largest position (then the first by name) takes the remainder.
            taker=pl.int_range(pl.len()).sort_by(pl.col("qty").abs(), pl.col("venue"), pl.col("account"),
                                                descending=[True, False, False]).over("book", "asset") == 0,
        )
        .with_columns(
            share=pl.when(pl.col("book_qty") == 0).then(ZERO)
            .otherwise(pl.col("book_cost") * pl.col("qty") / pl.col("book_qty"))
        )
        .with_columns(
            others=(pl.col("share").sum().over("book", "asset") - pl.col("share")),
        )
        .with_columns(
            cost_basis=pl.when(pl.col("asset") == reporting).then(pl.col("qty"))
            .when(pl.col("taker")).then(pl.col("book_cost") - pl.col("others"))
            .otherwise(pl.col("share"))
        )
    )
    return shared.select(
        "venue", "account", "book", "asset", "qty", "mark",
        market_value=pl.col("qty") * pl.col("mark"),
        cost_basis="cost_basis",
    ).with_columns(
        unrealized_pnl=pl.col("market_value") - pl.col("cost_basis"),
    ).sort("venue", "account", "asset")


def _pnl(day, start_positions, start_lots, priced, realized, positions, marks_before, settings):
    reporting = settings.reporting_currency
    start_valued = with_book(start_positions, settings).join(marks_before, on="asset", how="left")
    _require_marks(start_valued.filter(pl.col("qty") != 0), day - dt.timedelta(days=1), "a starting position is valued at the day before's mark")
    start_basis = start_lots.lazy().group_by("book", "asset").agg((pl.col("qty") * pl.col("entry_price")).sum().alias("cb")).collect()
    start_book = (
        start_valued.lazy().group_by("book", "asset").agg(pl.col("qty").sum(), (pl.col("qty") * pl.col("mark").fill_null(ZERO)).sum().alias("mv"))
        .collect().join(start_basis, on=["book", "asset"], how="left")
        .select("book", "asset", mv_start="mv",
                unrealized_start=pl.when(pl.col("asset") == reporting).then(ZERO).otherwise(pl.col("mv") - pl.col("cb").fill_null(ZERO)))
    )
    end_book = positions.lazy().group_by("book", "asset").agg(
        pl.col("market_value").sum().alias("mv_end"), pl.col("cost_basis").sum().alias("cost_basis"),
        pl.col("qty").sum(),
    ).collect().with_columns(unrealized=pl.when(pl.col("asset") == reporting).then(ZERO).otherwise(pl.col("mv_end") - pl.col("cost_basis")))
    kind = pl.col("kind")
    flows = priced.lazy().group_by("book", "asset").agg(
        pl.col("value").filter(kind.is_in(EXTERNAL_KINDS)).sum().alias("external_flows"),
        (-pl.col("value").filter(kind.is_in(FEE_KINDS))).sum().alias("fees"),
        pl.col("value").filter(kind.is_in(INCOME_KINDS)).sum().alias("income"),
        pl.col("value").filter(~kind.is_in(EXTERNAL_KINDS + FEE_KINDS + INCOME_KINDS)).sum().alias("trade_residual"),
    ).collect()
    todays = realized.filter(~pl.col("is_carry"))
    realized_book = todays.lazy().group_by("book", "asset").agg(pl.col("realized_pnl").sum()).collect()
    keys = pl.concat([f.select("book", "asset") for f in (start_book, end_book, flows, realized_book)]).unique()
    pnl = (
        keys.join(start_book, on=["book", "asset"], how="left")
        .join(end_book.drop("qty"), on=["book", "asset"], how="left")
        .join(flows, on=["book", "asset"], how="left")
        .join(realized_book, on=["book", "asset"], how="left")
        .with_columns(pl.exclude("book", "asset").fill_null(ZERO))
        .select(
            business_date=pl.lit(day, pl.Date), book="book", asset="asset",
            realized_pnl="realized_pnl", unrealized_pnl="unrealized",
            unrealized_change=pl.col("unrealized") - pl.col("unrealized_start"),
            fees="fees", income="income", trade_residual="trade_residual", external_flows="external_flows",
            market_value_start="mv_start", market_value_end="mv_end",
        )
        # Per asset, a trade leg's value is not PnL (buying BTC is not a BTC gain): the
        # trade residual only appears in the book's explain, where a trade's legs net out.
        .with_columns(total_pnl=pl.col("realized_pnl") + pl.col("unrealized_change") - pl.col("fees") + pl.col("income"))
        .sort("book", "asset")
    )
    explain = (
        pnl.lazy().group_by("business_date", "book").agg(
            pl.col("market_value_start", "market_value_end", "external_flows", "realized_pnl", "unrealized_change",
                   "fees", "income", "trade_residual").sum()
        ).collect()
        .with_columns(total_pnl=pl.col("market_value_end") - pl.col("market_value_start") - pl.col("external_flows"))
        .with_columns(
            unexplained=pl.col("total_pnl") - (pl.col("realized_pnl") + pl.col("unrealized_change") - pl.col("fees")
                                               + pl.col("income") + pl.col("trade_residual"))
        )
        .sort("book")
    )
    return pnl, explain
