"""The day's marks: what one unit of an asset is worth in the reporting currency at end of day.

``marks/D.csv`` is read by :mod:`utl.ingest`; here a date's marks are picked, the reporting
currency is pinned at exactly 1, and a missing mark stops the date: a position is never
valued at zero for want of a price.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.decimals import DECIMAL


class MissingMark(ValueError):
    """A position or leg needs a mark the landing folder does not have: the day stops."""

    def __init__(self, asset: str, day: dt.date, why: str):
        self.asset, self.day, self.why = asset, day, why
        super().__init__(f"no mark for {asset} on {day.isoformat()} ({why}): add it to marks/{day.isoformat()}.csv")

    def because(self, detail: str) -> str:
        """The message when the landing says why the mark is missing (a refused row, no data
        that late) instead of "add it"."""
        return f"no mark for {self.asset} on {self.day.isoformat()} ({self.why}): {detail}"


def marks_for(marks: pl.DataFrame, day: dt.date, reporting: str) -> pl.DataFrame:
    """The marks of one date, the reporting currency at exactly 1."""
    own = marks.filter(pl.col("business_date") == day).select("asset", pl.col("price").alias("mark"))
    own = own.filter(pl.col("asset") != reporting)
    return pl.concat([own, pl.DataFrame({"asset": [reporting], "mark": pl.Series([1], dtype=DECIMAL)})])


def require_marks(frame: pl.DataFrame, day: dt.date, why: str) -> None:
    missing = frame.filter(pl.col("mark").is_null())
    if missing.height:
        raise MissingMark(missing["asset"].sort()[0], day, why)
