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
from utl.marks import MissingMark, marks_for, require_marks
from utl.pnl import day_pnl, price_legs
from utl.positions import add_legs, value_positions, with_book
from utl.schemas import LOTS_STATE, POSITIONS_STATE
from utl.settings import Settings

__all__ = ["LedgerState", "DayResult", "MissingMark", "empty_ledger", "run_day"]


@dataclass(frozen=True)
class LedgerState:
    """The ledger at the end of a business date: what costing carries into the next."""

    business_date: dt.date
    positions: pl.DataFrame  # POSITIONS_STATE: ledger quantity per (venue, account, asset)
    lots: pl.DataFrame  # LOTS_STATE: open lots per (book, asset)


@dataclass(frozen=True)
class DayResult:
    state: LedgerState
    positions: pl.DataFrame  # VALUED_POSITIONS: per (venue, account, asset)
    pnl: pl.DataFrame  # PNL: per (book, asset)
    explain: pl.DataFrame  # PNL_EXPLAIN: per book


def empty_ledger(day: dt.date) -> LedgerState:
    return LedgerState(day, POSITIONS_STATE.to_frame(), LOTS_STATE.to_frame())


def run_day(
    day: dt.date,
    start: LedgerState,
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
    require_marks(opening_lots, before, "an opening balance is valued at its snapshot day's mark")
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
    carried = start_lots.select("book", "asset", pl.col("opened_ts").alias("ts"), "trade_id", "qty",
                                pl.col("entry_price").alias("price"), is_carry=pl.lit(True))
    # Lazy: a filter gathers only the columns costing reads, not every column of the legs;
    # when it would keep every leg it is left out, and those columns are not copied at all.
    costed = (pl.col("asset") != reporting) & (pl.col("qty") != 0)
    every_leg = priced.select(costed.fill_null(False).all()).item()
    today = (priced.lazy() if every_leg else priced.lazy().filter(costed)).select(
        "book", "asset", "ts", trade_id=pl.format("{}/{}/{}", pl.col("venue"), pl.col("account"), pl.col("leg_id")),
        qty="qty", price="unit_price", is_carry=pl.lit(False),
    )
    # Ids are unique by construction: leg ids within (venue, account), lot ids carried over.
    costs = compute_costs(pl.concat([carried.lazy(), today]).collect(), settings.costing_method, ids_unique=True)
    del carried, today
    lots = _carry_lots(costs.open_lots, settings.costing_method)
    # Only these columns of each costed trade are used from here on: let the rest go.
    realized = costs.realized.select("book", "asset", "realized_pnl", "is_carry")
    del costs
    lap("costing")

    end_positions = add_legs(start_positions, legs)
    positions = value_positions(end_positions, lots, marks_today, day, settings)
    lap("positions")
    pnl, explain = day_pnl(day, start_positions, start_lots, priced, realized, positions, marks_before, settings)
    lap("pnl and explain")
    return DayResult(LedgerState(day, end_positions, lots), positions, pnl, explain)


def _carry_lots(open_lots: pl.DataFrame, method: str) -> pl.DataFrame:
    """Open lots as tomorrow's carried trades; a WAC pool gets a stable id of its own."""
    if method == "wac":
        open_lots = open_lots.with_columns(
            trade_id=pl.format("pool/{}/{}", pl.col("book"), pl.col("asset"))
        )
    return open_lots.select(LOTS_STATE.names()).cast(LOTS_STATE)
