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
from typing import NamedTuple

import numpy as np
import polars as pl

from utl.costing import GROUP_TRADES, compute_costs, cost_groups
from utl.frames import conformed
from utl.marks import MissingMark, marks_for, require_marks
from utl.matching import match_transfers
from utl.pnl import day_pnl, price_legs
from utl.positions import add_legs, value_positions, with_book
from utl.schemas import (
    LOTS_STATE, PENDING_TRANSFERS, POSITIONS_STATE, TRANSFER_LEGS, TRANSFER_MATCHES, TRANSIT_LOTS,
)
from utl.settings import Settings
from utl.transfers import Arrival, Withdrawal, move_lots

__all__ = ["LedgerState", "DayResult", "MissingMark", "TransferBook", "empty_ledger", "run_day"]


@dataclass(frozen=True)
class TransferBook:
    """Transfers between own accounts (:mod:`utl.transfers`): the date's deposits and
    withdrawals, and the withdrawals still pending from earlier dates with their lots."""

    legs: pl.DataFrame  # TRANSFER_LEGS of the date
    pending: pl.DataFrame  # PENDING_TRANSFERS
    transit: pl.DataFrame  # TRANSIT_LOTS

    @classmethod
    def empty(cls) -> TransferBook:
        return cls(TRANSFER_LEGS.to_frame(), PENDING_TRANSFERS.to_frame(), TRANSIT_LOTS.to_frame())


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
    transfers: TransferBook | None = None  # at the end of the date: pending withdrawals and their lots
    matches: pl.DataFrame | None = None  # TRANSFER_MATCHES of the date
    external: pl.DataFrame | None = None  # TRANSFER_LEGS: the date's deposits that matched no withdrawal


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
    transfers: TransferBook | None = None,
    matched: Matched | None = None,
) -> DayResult:
    """Compute business date ``day``.

    ``start``: the previous date's end state. ``openings``: (venue, account, asset, qty) of
    accounts whose first business date is ``day`` (their opening snapshot). ``legs``: the
    day's legs (ts within the day) of accounts already open. ``marks``: all marks (the
    day's and the day before's are used). ``lap(step)`` is called after each step (timing).
    ``transfers``: the date's deposits and withdrawals and what is pending (None: none at all).
    ``matched``: :func:`match_day_transfers` of them when the caller has it (a shard of the
    date gets its rows of the whole date's matching; None: matched here).
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
    transfers = transfers or TransferBook.empty()
    withdrawals = transfers.legs.filter(pl.col("kind") == "withdrawal")
    matches, pending, external = matched or match_day_transfers(transfers, settings)
    moves = [w for w in withdrawals.iter_rows(named=True) if w["asset"] != reporting]
    arrivals = [m for m in matches.iter_rows(named=True) if m["asset"] != reporting]
    if moves or arrivals:
        # Lots move: costing runs in segments around the transfers (utl.transfers).
        mark_of = dict(marks_today.iter_rows())
        moved = move_lots(
            carried, today.collect(),
            [Withdrawal(w["venue"], w["account"], w["leg_id"], settings.book_of(w["venue"], w["account"]), w["asset"],
                        w["ts"], f"{w['venue']}/{w['account']}/{w['leg_id']}", w["amount"]) for w in moves],
            [Arrival(m["to_venue"], m["to_account"], m["deposit_id"], settings.book_of(m["to_venue"], m["to_account"]),
                     m["asset"], m["deposited_ts"], f"{m['to_venue']}/{m['to_account']}/{m['deposit_id']}",
                     m["deposited"], (m["from_venue"], m["from_account"], m["withdrawal_id"]),
                     settings.book_of(m["from_venue"], m["from_account"])) for m in arrivals],
            transfers.transit, mark_of, settings.costing_method,
        )
        lots = carry_lots(moved.lots, settings.costing_method)
        realized = moved.realized
        # The transfers' own legs are flows at the cost of the lots they move (moved.flows).
        moving = pl.DataFrame(
            [(w["venue"], w["account"], w["leg_id"]) for w in moves]
            + [(m["to_venue"], m["to_account"], m["deposit_id"]) for m in arrivals],
            schema={"venue": pl.String, "account": pl.String, "leg_id": pl.String}, orient="row")
        flows = pl.concat([
            priced.join(moving, on=["venue", "account", "leg_id"], how="anti").select("book", "asset", "kind", "value"),
            moved.flows,
        ])
        transit = moved.transit
    else:
        lots_and_realized = _cost_day(carried, priced, None if every_leg else costed, settings.costing_method)
        if lots_and_realized is None:
            # Ids are unique by construction: leg ids within (venue, account), lot ids carried over.
            costs = compute_costs(pl.concat([carried.lazy(), today]).collect(), settings.costing_method, ids_unique=True,
                                  positions=False)
            lots_and_realized = (carry_lots(costs.open_lots, settings.costing_method),
                                 costs.realized.select("book", "asset", "realized_pnl", "is_carry"))
            del costs
        del carried, today
        lots, realized = lots_and_realized
        flows, transit = priced, transfers.transit
    transit = transit.join(pending.select("venue", "account", "leg_id"), on=["venue", "account", "leg_id"], how="semi")
    lap("costing")

    end_positions = add_legs(start_positions, legs)
    positions = value_positions(end_positions, lots, marks_today, day, settings)
    lap("positions")
    pnl, explain = day_pnl(day, start_positions, start_lots, flows, realized, positions, marks_before, settings)
    lap("pnl and explain")
    return DayResult(LedgerState(day, end_positions, lots), positions, pnl, explain,
                     TransferBook(TRANSFER_LEGS.to_frame(), pending, transit), matches.cast(TRANSFER_MATCHES),
                     external)


class Matched(NamedTuple):
    """A date's transfer matching (:func:`utl.matching.match_transfers`)."""

    matches: pl.DataFrame  # TRANSFER_MATCHES
    pending: pl.DataFrame  # PENDING_TRANSFERS: withdrawals no deposit has matched yet
    external: pl.DataFrame  # TRANSFER_LEGS: deposits that matched no withdrawal

    def of_accounts(self, accounts: pl.DataFrame) -> Matched:
        """The rows of ``accounts``: a match by its withdrawal's account (its deposit's is
        in the same shard, :mod:`utl.shards`), a pending withdrawal or external deposit by its own."""
        return Matched(
            self.matches.join(accounts.rename({"venue": "from_venue", "account": "from_account"}),
                              on=["from_venue", "from_account"], how="semi"),
            self.pending.join(accounts, on=["venue", "account"], how="semi"),
            self.external.join(accounts, on=["venue", "account"], how="semi"),
        )


def match_day_transfers(transfers: TransferBook, settings: Settings) -> Matched:
    """The date's withdrawals (and those pending from earlier dates) matched to its deposits."""
    withdrawals = transfers.legs.filter(pl.col("kind") == "withdrawal")
    return Matched(*match_transfers(
        pl.concat([transfers.pending, withdrawals.select(PENDING_TRANSFERS.names()).cast(PENDING_TRANSFERS)]),
        transfers.legs.filter(pl.col("kind") == "deposit"), settings.transfer_window_hours,
        settings.transfer_tolerance))


def _cost_day(carried: pl.DataFrame, priced: pl.DataFrame, costed: pl.Expr | None,
              method: str) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(tomorrow's lots, realized PnL per (book, asset) of the day's trades) by
    :func:`utl.costing.cost_groups`, or None when it declines (the caller then runs
    ``compute_costs``, which names what is wrong). Only the open lots get a ``trade_id``:
    on a day of 10 M legs, formatting one for every leg cost more than the matching."""
    today_rows = None if costed is None else priced.select(pl.arg_where(costed.fill_null(False))).to_series()
    today = priced.lazy() if today_rows is None else priced.lazy().filter(costed)
    trades = pl.concat([
        carried.lazy().select(GROUP_TRADES.names()),
        today.select("book", "asset", "ts", "qty", price="unit_price"),
    ]).cast(GROUP_TRADES).collect()
    n_carried = carried.height
    costs = cost_groups(trades, method, counted_from=n_carried)  # type: ignore[arg-type]
    del trades
    if costs is None:
        return None
    lots = costs.open_lots
    if method != "wac":  # a pool gets its own id in carry_lots
        row = lots["row"]
        from_carry = (row < n_carried).to_numpy()
        at = row.filter(pl.Series(~from_carry)) - n_carried
        legs_at = at if today_rows is None else today_rows.gather(at)
        today_ids = priced.select("venue", "account", "leg_id")[legs_at].select(
            pl.format("{}/{}/{}", "venue", "account", "leg_id")).to_series()
        trade_id = (pl.Series("trade_id", [None] * lots.height, dtype=pl.String)
                    .scatter(np.flatnonzero(from_carry), carried["trade_id"].gather(row.filter(pl.Series(from_carry))))
                    .scatter(np.flatnonzero(~from_carry), today_ids))
        lots = lots.with_columns(trade_id)
    else:
        lots = lots.with_columns(trade_id=pl.lit(None, pl.String))
    return carry_lots(lots, method), costs.realized.with_columns(is_carry=pl.lit(False))


def carry_lots(open_lots: pl.DataFrame, method: str) -> pl.DataFrame:
    """Open lots as tomorrow's carried trades; a WAC pool gets a stable id of its own."""
    if method == "wac":
        open_lots = open_lots.with_columns(
            trade_id=pl.format("pool/{}/{}", pl.col("book"), pl.col("asset"))
        )
    return conformed(open_lots, LOTS_STATE)
