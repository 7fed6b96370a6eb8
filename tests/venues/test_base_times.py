"""Time helpers: out_of_years at its bounds (its literals made once), shaped_time on columns
with nulls and cells of no shape."""

from __future__ import annotations

from datetime import datetime, timezone

import polars as pl

from utl.venues.base import out_of_years, shaped_time

UTC = timezone.utc


def test_out_of_years_bounds() -> None:
    ts = [datetime(1999, 12, 31, 23, 59, 59, 999999, UTC), datetime(2000, 1, 1, tzinfo=UTC),
          datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), None]
    frame = pl.DataFrame({"ts": ts}, schema={"ts": pl.Datetime("us", "UTC")})
    assert frame.select(out_of_years(pl.col("ts")))["ts"].to_list() == [True, False, False, True, None]
    written = (pl.col("ts") < datetime(2000, 1, 1, tzinfo=UTC)) | (pl.col("ts") >= datetime(2100, 1, 1, tzinfo=UTC))
    assert out_of_years(pl.col("ts")).meta.serialize(format="json") == written.meta.serialize(format="json")


def test_shaped_time_keeps_nulls_and_refuses_other_shapes() -> None:
    shapes = [(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", "%Y-%m-%d %H:%M:%S"), (r"^\d{2}/\d{2}/\d{4}$", "%d/%m/%Y")]
    cells = [None, "2024-03-05 09:15:02", "05/03/2024", "yesterday", None]
    got = pl.DataFrame({"t": cells}, schema={"t": pl.String}).select(shaped_time(pl.col("t"), shapes, 60))["t"]
    assert got.dtype == pl.Datetime("us", "UTC") and got.name == "t"
    assert got.to_list() == [None, datetime(2024, 3, 5, 8, 15, 2, tzinfo=UTC), datetime(2024, 3, 4, 23, 0, tzinfo=UTC),
                             None, None]
    nothing = pl.DataFrame({"t": [None, None]}, schema={"t": pl.String}).select(shaped_time(pl.col("t"), shapes))["t"]
    assert nothing.to_list() == [None, None] and nothing.dtype == pl.Datetime("us", "UTC")
