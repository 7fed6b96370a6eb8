"""The venue-neutral balance snapshot: a CSV with the header ``asset,total`` (eod.md).

One row per asset, ``total`` the account's whole holding at end of day.
"""

from __future__ import annotations

import polars as pl

from utl.schemas import BALANCES
from utl.venues.base import Check, Columns, Format, Layout, Parsed, Source, read_csv_rows, rename_columns, split_refused, with_numbers

HEADER = ["asset", "total"]


# How a file is claimed (utl.venues.base.Columns): it holds both columns; others are ignored.
COLUMNS = Columns(required=tuple(HEADER))


def is_balance_csv(head: str) -> bool:
    return FORMATS[0].claims(head)


def read_balance_csv(source: Source) -> Parsed:
    frame, refused = read_csv_rows(source)
    frame = rename_columns(frame, HEADER)  # by name: the columns may come in any order
    if not set(HEADER) <= set(frame.columns):
        raise ValueError(f"{source.rel}: expected the columns asset,total")
    frame = frame.with_columns(pl.col(HEADER).str.strip_chars())
    frame = with_numbers(frame, total_value="total").rename({"total_value__bad": "total_bad"})
    frame = frame.with_columns(listed=pl.len().over("asset"))
    checks = [
        Check("asset", pl.col("asset") == "", "missing asset"),
        # Two totals for one asset: which one is the holding cannot be told, so neither books.
        Check("asset", (pl.col("asset") != "") & (pl.col("listed") > 1), pl.format("asset listed {} times", pl.col("listed"))),
        Check("total", pl.col("total_bad"), pl.format('"{}" is not a decimal', pl.col("total"))),
        Check("total", pl.col("total_value").is_null() & ~pl.col("total_bad"), "missing total"),
    ]
    ok, quarantine = split_refused(frame, checks, source.rel)
    balances = ok.select(
        venue=pl.lit(source.venue),
        account=pl.lit(source.account),
        asset="asset",
        total="total_value",
        source_file=pl.lit(source.rel),
        source_row="source_row",
    ).cast(BALANCES)
    return Parsed(balances, pl.concat([refused, quarantine]).sort("row", maintain_order=True))


FORMATS = [Format("generic.balance_csv", "balances", None, read_balance_csv, columns=(COLUMNS,),
                  layouts=(Layout("asset,total", tuple(HEADER)),))]
