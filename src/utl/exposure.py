"""Exposure: what the firm holds at end of day, valued at the day's marks, as a risk manager
reads it in the morning.

Input is one row per position, (business_date, venue, account, book, asset), with its
signed ``qty``, the day's ``mark`` and ``market_value = qty * mark`` in the reporting
currency. Per (business_date, X), X an asset, a venue or a book:

- ``net_value``   = Σ market_value: longs and shorts offset;
- ``gross_value`` = Σ |market_value|: nothing offsets, the size at risk;
- ``long_value``  = Σ of the positive values, ``short_value`` = Σ of the negative ones
  (≤ 0), so ``long_value + short_value == net_value`` exactly;
- ``share_of_gross`` = gross_value / the day's total gross (null when that total is 0);
- ``positions`` = how many position rows, ``unpriced`` = whether any of them has no mark.

Worked example: BTC +2 on venue A and -1.5 on venue B, mark 60,000, are worth +120,000
and -90,000: BTC net 30,000, gross 210,000, long 120,000, short -90,000. Venue A's share
of the day's gross is 120,000 / 210,000 = 4/7, i.e. 0.571428571428571429 (a quotient is
rounded half-even at 18 places, so shares that do not divide evenly may miss a sum of 1
by a few units of 1e-18).

A position without a mark has no value. It is never counted as zero: its
``market_value`` stays null, the group's ``unpriced`` flag is true and the value measures
sum the priced positions only; a group with no priced position at all has null values,
not zeros. Net quantity (per asset only: quantities of different assets do not add)
counts every position, priced or not.

Sums run lazily: Polars' eager group-by sum and eager ``sum().over()`` of a Decimal column
wrap around silently on overflow; the lazy engine raises.
"""

from __future__ import annotations

import polars as pl

from utl.decimals import DECIMAL
from utl.schemas import CONCENTRATION, EXPOSURE_BY_ASSET, EXPOSURE_BY_BOOK, EXPOSURE_BY_VENUE, EXPOSURE_INPUT
from utl.errors import BadInput, RowError

POSITIONS = EXPOSURE_INPUT

_REQUIRED = ("business_date", "venue", "account", "book", "asset", "qty")


def exposure_by_asset(positions: pl.DataFrame) -> pl.DataFrame:
    """Net, gross, long and short value and share of gross per (business_date, asset)."""
    return _exposure(positions, "asset", EXPOSURE_BY_ASSET)


def exposure_by_venue(positions: pl.DataFrame) -> pl.DataFrame:
    """The same measures per (business_date, venue), without a net quantity."""
    return _exposure(positions, "venue", EXPOSURE_BY_VENUE)


def exposure_by_book(positions: pl.DataFrame) -> pl.DataFrame:
    """The same measures per (business_date, book), without a net quantity."""
    return _exposure(positions, "book", EXPOSURE_BY_BOOK)


def concentration(positions: pl.DataFrame) -> pl.DataFrame:
    """Per business_date: the largest venue and asset by share of gross, and the Herfindahl
    index over assets' shares. Shares and the index are null on a day with no gross."""
    by_asset = exposure_by_asset(positions).lazy()
    by_venue = exposure_by_venue(positions).lazy()
    share = pl.col("share_of_gross")
    days = by_asset.group_by("business_date").agg(
        gross_value=_priced_sum(pl.col("gross_value"), pl.col("gross_value")),
        herfindahl=pl.when(share.is_not_null().any()).then((share * share).sum()),
        unpriced=pl.col("unpriced").any(),
    )
    return (
        days.join(_top(by_venue, "venue"), on="business_date", how="left")
        .join(_top(by_asset, "asset"), on="business_date", how="left")
        .select(CONCENTRATION.names())
        .sort("business_date")
        .collect()
        .cast(CONCENTRATION)
    )


def _exposure(positions: pl.DataFrame, key: str, schema: pl.Schema) -> pl.DataFrame:
    _check_positions(positions)
    value = pl.col("market_value")
    gross = pl.col("gross_value")
    day_gross = gross.sum().over("business_date")
    # Quantities of different assets do not add (and their sum could overflow for nothing).
    net_qty = [pl.col("qty").sum().alias("net_qty")] if key == "asset" else []
    return (
        positions.lazy()
        .group_by("business_date", key)
        .agg(
            *net_qty,
            net_value=_priced_sum(value, value),
            gross_value=_priced_sum(value, value.abs()),
            long_value=_priced_sum(value, value.filter(value > 0)),
            short_value=_priced_sum(value, value.filter(value < 0)),
            positions=pl.len(),
            unpriced=value.is_null().any(),
        )
        # A zero divisor becomes null first: Decimal division by zero raises, even in a
        # branch `when` would discard.
        .with_columns(share_of_gross=gross / pl.when(day_gross != 0).then(day_gross))
        .select(schema.names())
        .sort(["business_date", "gross_value", key], descending=[False, True, False], nulls_last=True)
        .collect()
        .cast(schema)
    )


def _priced_sum(value: pl.Expr, summed: pl.Expr) -> pl.Expr:
    """Σ summed, null (not Polars' zero for an all-null sum) when no position has a value."""
    return pl.when(value.is_not_null().any()).then(summed.sum())


def _top(exposure: pl.LazyFrame, key: str) -> pl.LazyFrame:
    """Per day, the name and share of the largest gross; equal gross goes to the first name."""
    ranked = [pl.col("gross_value"), pl.col(key)]
    return (
        exposure.filter(pl.col("share_of_gross").is_not_null())
        .group_by("business_date")
        .agg(
            pl.col(key).sort_by(ranked, descending=[True, False]).first().alias(f"top_{key}"),
            pl.col("share_of_gross").sort_by(ranked, descending=[True, False]).first().alias(f"top_{key}_share"),
        )
    )


def _check_positions(positions: pl.DataFrame) -> None:
    """Refuse a frame whose columns, types or pricing break POSITIONS, naming every bad row."""
    wrong = [
        f"{name} ({positions.schema[name]}, not {dtype})" if name in positions.schema else f"{name} (missing)"
        for name, dtype in POSITIONS.items()
        if positions.schema.get(name) != dtype
    ]
    if wrong:
        raise ValueError("positions: wrong or missing columns: " + ", ".join(wrong))
    priced, valued = pl.col("mark").is_not_null(), pl.col("market_value").is_not_null()
    checks = [(name, pl.col(name).is_null(), "missing") for name in _REQUIRED] + [
        ("market_value", priced & ~valued, "missing although the position has a mark"),
        ("market_value", ~priced & valued, "given although the position has no mark"),
    ]
    flags = positions.with_row_index("row", offset=1).select(
        "row", *[flag.alias(str(i)) for i, (_, flag, _) in enumerate(checks)]
    )
    errors = [
        RowError(file=None, row=row, column=column, reason=reason)
        for i, (column, _, reason) in enumerate(checks)
        for row in flags.filter(pl.col(str(i)))["row"].to_list()
    ]
    if errors:
        raise BadInput(sorted(errors, key=lambda e: e.row or 0))
