"""Derivatives in ``utl.pnl`` and its explain: one row per (book, instrument).

A derivative position is worth what it would bring if closed at the mark, in the reporting
currency; that is its row's market value:

- swaps and futures: their unrealized PnL (no cash changed hands on the fill);
- options of an account whose cash comes from a ledger: ``qty · size · mark`` at the settle
  asset's mark (the ledger booked the premium as cash: the option holds it now);
- options of a fills-only account: their unrealized PnL, as a future's (a fill moves no
  cash, derivatives.md; the premium's difference is realized, computed, on closing).

Each instrument row (``asset`` = the ccxt symbol) of a book carries

- ``market_value_start``: the book's positions carried into the day (and those opened from
  the day before's positions file), valued at the day before's marks: exactly the day
  before's ``market_value_end``;
- ``market_value_end``, ``unrealized_pnl``: the positions at end of day at the day's marks
  (``utl.derivative_positions``' ``unrealized_pnl_usd``, summed over the book's accounts);
- ``unrealized_change`` = unrealized end − unrealized start;
- ``trade_residual`` = (value end − value start) − ``unrealized_change``: zero for swaps and
  futures; for options the premium paid today less the premium received (the cash legs'
  counterpart, which the settle asset's line shows with the opposite sign), plus the
  carried premium's change of value at the settle asset's mark;
- ``realized_pnl``, ``fees``, ``income``, ``external_flows``: zero. The day's realized PnL,
  funding and fees are cash in the settle asset: the ledger's own rows (or the realized PnL
  computed for a fills-only account) already book there as income and fees, on the settle
  asset's line of the same book. Counting them on the instrument's line too would count them
  twice.
- ``total_pnl`` = ``unrealized_change`` (the per-line rule: realized + unrealized change −
  fees + income).

So each instrument line ties on its own (value change = unrealized change + trade residual)
and every book's explain still ties: the explain sums its lines, spot and derivative.

Worked example (a linear perpetual, one account, fills only): yesterday +3 @ 150, mark 200 →
start value 3·(200 − 150) = 150 USD; today −1 @ 300 realizes 1·(300 − 150) = 150 USDT (a
USDT leg: income on the USDT line), mark 250 → end value 2·(250 − 150) = 200. The
instrument's line: unrealized 200, change 200 − 150 = 50, total 50; the book's PnL is
150 + 50 = 200: the unit sold gained 300 − 200 = 100 since yesterday's mark, the two kept
gained 2·(250 − 200) = 100.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.decimals import DECIMAL
from utl.derivatives.entry import KEY
from utl.marks import MissingMark
from utl.schemas import PNL, PNL_EXPLAIN

VALUES = pl.Schema({"venue": pl.String, "account": pl.String, "instrument": pl.String,
                    "market_value": DECIMAL, "unrealized_pnl": DECIMAL})
"""The value of each open derivative position in the reporting currency."""

ZERO = pl.lit(0, DECIMAL)


def position_values(table: pl.DataFrame, asset_marks: pl.DataFrame, day: dt.date,
                    ledger_accounts: pl.DataFrame) -> pl.DataFrame:
    """:data:`VALUES` of the open rows of a ``utl.derivative_positions`` frame (see the module
    doc); ``ledger_accounts``: (venue, account) whose cash (an option's premium) comes from a
    ledger export. An open position whose settle asset has no mark stops the date
    (:class:`utl.marks.MissingMark`): its PnL is never taken as zero."""
    held = table.filter(pl.col("qty") != 0)
    unpriced = held.filter(pl.col("unrealized_pnl_usd").is_null()).sort(KEY)
    if unpriced.height:
        r = unpriced.row(0, named=True)
        raise MissingMark(r["settle_asset"], day, f"it is the settle asset of {r['venue']}/{r['account']} "
                                                  f"{r['instrument']}, whose unrealized PnL counts in utl.pnl")
    marks = asset_marks.select(settle_asset="asset", __settle_mark="mark")
    ledger = ledger_accounts.select("venue", "account").unique().with_columns(__ledger=pl.lit(True))
    return (
        held.join(marks, on="settle_asset", how="left")
        .join(ledger, on=["venue", "account"], how="left")
        .select(
            *KEY,
            market_value=pl.when((pl.col("type") == "option") & pl.col("__ledger").fill_null(False))
            .then(pl.col("qty") * pl.col("contract_size") * pl.col("mark") * pl.col("__settle_mark"))
            .otherwise(pl.col("unrealized_pnl_usd")),
            unrealized_pnl="unrealized_pnl_usd",
        )
        .cast(VALUES)
    )


def instrument_pnl(day: dt.date, start: pl.DataFrame, end: pl.DataFrame, books: pl.DataFrame) -> pl.DataFrame:
    """:data:`utl.schemas.PNL` rows per (book, instrument) from the :data:`VALUES` at the start
    and the end of ``day``; ``books``: (venue, account, book)."""
    both = (
        pl.concat([
            start.select(*KEY, mv_start="market_value", u_start="unrealized_pnl", mv_end=ZERO, u_end=ZERO),
            end.select(*KEY, mv_start=ZERO, u_start=ZERO, mv_end="market_value", u_end="unrealized_pnl"),
        ])
        .join(books.select("venue", "account", "book"), on=["venue", "account"], how="left")
        .group_by("book", "instrument").agg(pl.col("mv_start", "u_start", "mv_end", "u_end").sum())
    )
    return (
        both.select(
            business_date=pl.lit(day, pl.Date), book="book", asset="instrument", realized_pnl=ZERO,
            unrealized_pnl="u_end", unrealized_change=pl.col("u_end") - pl.col("u_start"), fees=ZERO, income=ZERO,
            trade_residual=(pl.col("mv_end") - pl.col("mv_start")) - (pl.col("u_end") - pl.col("u_start")),
            external_flows=ZERO, market_value_start="mv_start", market_value_end="mv_end",
            total_pnl=pl.col("u_end") - pl.col("u_start"), provisional=pl.lit(False),
        )
        .select(PNL.names()).cast(PNL)
        .sort("book", "asset")
    )


def with_derivatives(pnl: pl.DataFrame, explain: pl.DataFrame, rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The day's ``utl.pnl`` and ``utl.pnl_explain`` with the instrument lines ``rows`` added:
    each book's explain sums its lines again (a book holding only derivatives gets one), its
    total is value end − value start − external flows and ``unexplained`` what the parts leave."""
    if rows.height == 0:
        return pnl, explain
    parts = ["market_value_start", "market_value_end", "external_flows", "realized_pnl", "unrealized_change", "fees",
             "income", "trade_residual"]
    added = rows.group_by("business_date", "book").agg(pl.col(parts).sum())
    # The spot explain's parts, plus the derivative lines'; its own unexplained is kept
    # (recomputed from the sums, it is the same number plus the derivative lines' zero).
    summed = (
        pl.concat([explain.select("business_date", "book", *parts), added.select("business_date", "book", *parts)
                   .cast(explain.select("business_date", "book", *parts).schema)])
        .group_by("business_date", "book").agg(pl.col(parts).sum())
        .with_columns(total_pnl=pl.col("market_value_end") - pl.col("market_value_start") - pl.col("external_flows"))
        .with_columns(unexplained=pl.col("total_pnl") - (pl.col("realized_pnl") + pl.col("unrealized_change")
                                                         - pl.col("fees") + pl.col("income") + pl.col("trade_residual")))
    )
    lines = pl.concat([pnl, rows.select(pnl.columns).cast(pnl.schema)]).sort("book", "asset")
    return lines, summed.select(PNL_EXPLAIN.names()).cast(PNL_EXPLAIN).sort("book")
