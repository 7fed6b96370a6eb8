"""The venue-neutral balance snapshot: a CSV with the header ``asset,total`` (eod.md).

One row per asset, ``total`` the account's whole holding at end of day. Also home of
:func:`read_csv_cells`, the all-text CSV read the CSV readers of this package share.
"""

from __future__ import annotations

import polars as pl

from utl.decimals import venue_decimal
from utl.schemas import BALANCES
from utl.venues.base import BOM, Check, Format, Parsed, Source, first_line, header_cells, split_refused

HEADER = ["asset", "total"]


def read_csv_cells(source: Source, skip_lines: int = 0) -> pl.DataFrame:
    """Every cell as stripped text ("" when empty), plus ``source_row``, the 1-based data row.

    Stands in for ``base.read_text_csv``, which passes an argument Polars 2.1 no longer
    takes. Blank lines carry no data and are left out (their numbers stay counted, so row
    numbers still match the file); a row with too many cells fails the whole file.
    """
    try:
        data = source.path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source.rel}: not UTF-8 text: {e}") from e
    if skip_lines:
        data = "\n".join(data.splitlines()[skip_lines:])
    try:
        frame = pl.read_csv(
            data.replace(BOM, "").encode(),
            infer_schema=False,
            has_header=True,
            truncate_ragged_lines=False,
            empty_string_is_null=False,
        )
    except pl.exceptions.PolarsError as e:
        raise ValueError(f"{source.rel}: not a well-formed CSV (a row with more cells than the header?): {e}") from e
    frame = frame.rename({c: c.strip() for c in frame.columns})
    cells = frame.columns
    frame = frame.with_columns(pl.col(c).fill_null("").str.strip_chars() for c in cells)
    frame = frame.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    if not cells:
        return frame
    return frame.filter(~pl.all_horizontal(pl.col(c) == "" for c in cells))


def is_balance_csv(head: str) -> bool:
    return [c.lower() for c in header_cells(first_line(head))] == HEADER


def read_balance_csv(source: Source) -> Parsed:
    frame = read_csv_cells(source)
    if frame.width != 3:
        raise ValueError(f"{source.rel}: expected the columns asset,total")
    frame = frame.rename(dict(zip(frame.columns[1:], HEADER)))
    total, bad = venue_decimal(pl.col("total"))
    frame = frame.with_columns(total_value=total, total_bad=bad, listed=pl.len().over("asset"))
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
    return Parsed(balances, quarantine)


FORMATS = [Format("generic.balance_csv", "balances", is_balance_csv, read_balance_csv)]
