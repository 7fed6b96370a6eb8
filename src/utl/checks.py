"""The checks of a business date (orchestration.md, "Asset checks"), as plain functions.

Each takes the date's frames and returns a :class:`Check`: whether it passed, one sentence
saying what was found, and the rows that failed (a few, for a person to look at). Dagster
shows them per partition; the tests call the same functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from utl.day import DayInputs, DayState
from utl.decimals import DECIMAL

KEY = ["venue", "account", "asset"]
# Under FIFO/LIFO/HIFO the explain ties exactly unless a product needs more than 18 places;
# under WAC the pool's average is rounded at 18 places per re-averaging (costing contract).
EXPLAIN_TOLERANCE = Decimal("1e-9")


@dataclass(frozen=True)
class Check:
    passed: bool
    description: str
    failures: list[dict] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, str]:
        return {"failures": "; ".join(str(f) for f in self.failures[:10])} if self.failures else {}


def legs_sum_to_positions(before: DayState, inputs: DayInputs, after: DayState,
                          computed: pl.DataFrame | None = None) -> Check:
    """Each ledger position = the day before's + the day's legs (+ an opening snapshot).
    ``computed``: the legs the step booked besides the inputs' (realized_pnl_computed)."""
    return legs_sum_check(position_differences(before, inputs, after, computed))


def legs_sum_check(differences: pl.DataFrame) -> Check:
    """:func:`legs_sum_to_positions` from the differences of a date's shards, concatenated."""
    failures = differences.sort(KEY).head(10).to_dicts()
    return Check(differences.height == 0,
                 f"{differences.height} positions differ from the day before plus the day's legs", failures)


def position_differences(before: DayState, inputs: DayInputs, after: DayState,
                         computed: pl.DataFrame | None = None) -> pl.DataFrame:
    """The positions that are not the day before's plus the day's legs (none: it holds)."""
    opened = after.accounts.join(before.accounts, on=["venue", "account"], how="anti")
    openings = inputs.opening_snapshots.join(opened, on=["venue", "account"], how="semi").select(
        *KEY, qty=pl.col("total"))
    # Lazy, reading the legs' four columns only: a day's legs are the largest frame of the run.
    # Summed per position before the open accounts are picked: the join then takes positions
    # (thousands), not legs (millions), and a position's key holds its account.
    day_legs = [f.lazy().select(*KEY, pl.col("qty").cast(DECIMAL)) for f in [inputs.legs, computed] if f is not None]
    legs = (pl.concat(day_legs).group_by(KEY).agg(pl.col("qty").sum())
            .join(after.accounts.lazy(), on=["venue", "account"], how="semi"))
    expected = (
        pl.concat([before.positions.lazy().select(*KEY, pl.col("qty").cast(DECIMAL)),
                   openings.lazy().select(*KEY, pl.col("qty").cast(DECIMAL)), legs])
        .group_by(KEY).agg(pl.col("qty").sum()).collect().filter(pl.col("qty") != 0)
    )
    return expected.join(after.positions, on=KEY, how="full", coalesce=True, suffix="_carried").filter(
        pl.col("qty").fill_null(0) != pl.col("qty_carried").fill_null(0))


def explain_ties(explain: pl.DataFrame) -> Check:
    """Every book's PnL explain leaves nothing unexplained (within rounding at 18 places)."""
    off = explain.filter(pl.col("unexplained").abs() > pl.lit(EXPLAIN_TOLERANCE, DECIMAL))
    return Check(off.height == 0, f"{off.height} of {explain.height} books leave PnL unexplained",
                 off.select("book", "total_pnl", "unexplained").to_dicts())


def marks_cover_positions(positions: pl.DataFrame) -> Check:
    """Every non-zero position has the day's mark: none is valued at zero for want of one."""
    unpriced = positions.filter((pl.col("qty") != 0) & pl.col("mark").is_null())
    return Check(unpriced.height == 0, f"{unpriced.height} positions have no mark",
                 unpriced.select(KEY).to_dicts())


def no_quarantine(quarantine: pl.DataFrame) -> Check:
    """A warning, not an error: refused rows are kept for a person to look at."""
    return Check(quarantine.height == 0, f"{quarantine.height} rows quarantined",
                 quarantine.select("file", "row", "column", "reason").head(10).to_dicts())


def no_breaks(breaks: pl.DataFrame) -> Check:
    """A warning: each break is a difference middle office must explain."""
    return Check(breaks.height == 0, f"{breaks.height} breaks",
                 breaks.select(*KEY, "diff").head(10).to_dicts())
