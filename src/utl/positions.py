"""Positions: ledger quantities per (venue, account, asset), valued at the day's marks.

The ledger position of (venue, account, asset) at end of D is its opening quantity plus its
legs up to end of D (eod.md). Cost basis comes from the open lots of the account's book.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.decimals import DECIMAL
from utl.lookup import pair_rows
from utl.marks import require_marks
from utl.schemas import POSITIONS_STATE, POSITIONS_TABLE, VALUED_POSITIONS
from utl.settings import Settings

ZERO = pl.lit(0, DECIMAL)


def with_book(frame: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """``frame`` with its ``book`` column added last (its rows and columns as they were)."""
    # One book per distinct (venue, account), then gathered by pair number: the frame's
    # own columns are kept as they are, not copied by a join.
    rows, pair = pair_rows(frame["venue"], frame["account"])
    pairs = frame.select("venue", "account")[rows]
    books = pl.Series("book", [settings.book_of(v, a) for v, a in pairs.iter_rows()], dtype=pl.String)
    return frame.with_columns(books.gather(pair))


def add_legs(start: pl.DataFrame, legs: pl.DataFrame) -> pl.DataFrame:
    """End-of-day ledger quantities: ``start`` plus the legs, flat positions dropped."""
    # The legs are summed first, reading only their four columns (a concat would copy them).
    moved = legs.lazy().select(POSITIONS_STATE.names()).group_by("venue", "account", "asset").agg(pl.col("qty").sum())
    return (
        pl.concat([start.lazy().select(POSITIONS_STATE.names()).cast(POSITIONS_STATE), moved.cast(POSITIONS_STATE)])
        .group_by("venue", "account", "asset").agg(pl.col("qty").sum()).collect()
        .filter(pl.col("qty") != 0)
        .sort("venue", "account", "asset")
    )


def value_positions(end_positions: pl.DataFrame, lots: pl.DataFrame, marks: pl.DataFrame, day: dt.date,
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
    require_marks(valued, day, "it has a non-zero position")
    basis = lots.lazy().group_by("book", "asset").agg((pl.col("qty") * pl.col("entry_price")).sum().alias("book_cost")).collect()
    shared = share_book_cost(valued, basis, reporting)
    return shared.select(
        "venue", "account", "book", "asset", "qty", "mark",
        market_value=pl.col("qty") * pl.col("mark"),
        cost_basis="cost_basis",
    ).with_columns(
        unrealized_pnl=pl.col("market_value") - pl.col("cost_basis"),
    ).sort("venue", "account", "asset").select(VALUED_POSITIONS.names()).cast(VALUED_POSITIONS)


def share_book_cost(positions: pl.DataFrame, basis: pl.DataFrame, reporting: str) -> pl.DataFrame:
    """``positions`` (``book``, ``venue``, ``account``, ``asset``, ``qty``: every account of
    each (book, asset) present) with ``cost_basis``: the book's ``book_cost`` (``basis``) shared
    out as :func:`value_positions` says; the reporting currency's cost basis is its quantity."""
    return (
        positions.join(basis, on=["book", "asset"], how="left")
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
        .drop("book_cost", "book_qty", "taker", "share", "others")
    )


def positions_table(day: dt.date, valued: pl.DataFrame, snapshot: pl.DataFrame, marks: pl.DataFrame,
                    settings: Settings) -> pl.DataFrame:
    """utl.positions rows of ``day``: every non-zero ledger position, and every asset a
    snapshot holds non-zero that the ledger does not (quantity 0 there)."""
    venue_only = (
        snapshot.filter(pl.col("total") != 0)
        .join(valued, on=["venue", "account", "asset"], how="anti")
        .select("venue", "account", "asset")
    )
    extra = with_book(venue_only, settings).join(marks, on="asset", how="left").select(
        "venue", "account", "asset", qty=ZERO, mark="mark", market_value=ZERO, cost_basis=ZERO,
        unrealized_pnl=ZERO, book="book",
    )
    table = pl.concat([valued.select(extra.columns), extra], how="vertical_relaxed")
    return table.with_columns(business_date=pl.lit(day, pl.Date)).select(POSITIONS_TABLE.names()).cast(
        POSITIONS_TABLE).sort("venue", "account", "asset")
