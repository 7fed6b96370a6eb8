"""PnL per (book, asset) and its explain per book, in the reporting currency.

``total_pnl = (market value at end of D) - (market value at end of D-1 of the day's
starting positions) - (external flows: deposits, withdrawals and transfers at D's mark)``,
explained exactly by ``realized + (change in unrealized) - fees + income + trade_residual +
unexplained`` (see :mod:`utl.daily` for what each term holds and when ``unexplained`` is
not zero).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.decimals import DECIMAL
from utl.lookup import rows_of
from utl.scaled import multiply
from utl.marks import require_marks
from utl.positions import with_book
from utl.schemas import PNL, PNL_EXPLAIN
from utl.settings import Settings

ZERO = pl.lit(0, DECIMAL)
EXTERNAL_KINDS = ("deposit", "withdrawal", "transfer")
# realized_pnl_computed: a fills-only account's derivative PnL against the average entry (derivatives.md)
INCOME_KINDS = ("funding", "interest", "rebate", "realized_pnl", "realized_pnl_computed", "other")
FEE_KINDS = ("fee",)


def price_legs(legs: pl.DataFrame, marks: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """Each leg's unit price and value in the reporting currency (see the module doc)."""
    # Each leg gets its mark's row number (utl.lookup): the legs' own columns are kept as
    # they are rather than copied by a join.
    # The marks are only a step to the unit price: they are not kept as columns of the legs.
    mark = marks["mark"].gather(rows_of(legs["asset"], marks["asset"])).alias("mark")
    quote_mark = marks["mark"].gather(rows_of(legs["quote"], marks["asset"])).alias("quote_mark")
    by_fill = pl.col("price").is_not_null() & pl.col("quote").is_not_null()
    missing = legs.select("asset", "quote", mark, quote_mark, by_fill.alias("by_fill")).filter(
        pl.col("mark").is_null() | pl.col("quote_mark").is_null())
    require_marks(missing.filter(~pl.col("by_fill")), day, "a leg of this asset is valued at its mark")
    require_marks(missing.filter("by_fill").select(asset="quote", mark="quote_mark"), day, "it is the quote asset of a fill")
    # Products of whole columns through utl.scaled.multiply: the same exact values as
    # Polars' Decimal product, without its several-fold working memory on 10 M rows.
    in_quote = multiply(legs["price"], quote_mark)
    del quote_mark
    unit_price = legs.select(pl.when(by_fill).then(in_quote).otherwise(mark).alias("unit_price")).to_series()
    del in_quote, mark
    return legs.with_columns(unit_price, multiply(legs["qty"], unit_price).alias("value"))


def day_pnl(day: dt.date, start_positions: pl.DataFrame, start_lots: pl.DataFrame, priced: pl.DataFrame,
            realized: pl.DataFrame, positions: pl.DataFrame, marks_before: pl.DataFrame,
            settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(PnL per book and asset, explain per book) of ``day``; ``realized`` is the costing
    result over carried lots (``is_carry``) and the day's trades."""
    reporting = settings.reporting_currency
    start_valued = with_book(start_positions, settings).join(marks_before, on="asset", how="left")
    require_marks(start_valued.filter(pl.col("qty") != 0), day - dt.timedelta(days=1), "a starting position is valued at the day before's mark")
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
    # Summed per kind first (a few hundred thousand rows at most), then split by kind: the
    # kind tests run on the small frame, not on every leg.
    flows = priced.lazy().group_by("book", "asset", "kind").agg(pl.col("value").sum()).group_by("book", "asset").agg(
        pl.col("value").filter(kind.is_in(EXTERNAL_KINDS)).sum().alias("external_flows"),
        (-pl.col("value").filter(kind.is_in(FEE_KINDS))).sum().alias("fees"),
        pl.col("value").filter(kind.is_in(INCOME_KINDS)).sum().alias("income"),
        pl.col("value").filter(~kind.is_in(EXTERNAL_KINDS + FEE_KINDS + INCOME_KINDS)).sum().alias("trade_residual"),
    ).collect()
    # Lazy, so that only the three columns used are read (a filter would copy every column).
    realized_book = (realized.lazy().filter(~pl.col("is_carry")).group_by("book", "asset")
                     .agg(pl.col("realized_pnl").sum()).collect())
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
        .with_columns(total_pnl=pl.col("realized_pnl") + pl.col("unrealized_change") - pl.col("fees") + pl.col("income"),
                      provisional=pl.lit(False))  # utl.day marks a book's asset held below zero
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
    return pnl.select(PNL.names()).cast(PNL), explain.select(PNL_EXPLAIN.names()).cast(PNL_EXPLAIN)
