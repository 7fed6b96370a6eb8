"""utl.frames: each helper gives exactly the frame the Polars query it stands for gives."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.frames import conformed, rows_where, with_constants

D = pl.Decimal(38, 18)
UTC = pl.Datetime("us", "UTC")


def frame_of(n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "book": [f"b{i % 3}" if i % 5 else None for i in range(n)],
        "qty": pl.Series([Decimal(i).scaleb(-3) for i in range(n)], dtype=pl.Decimal(38, 10)),  # exact in any context
        "ts": pl.Series([dt.datetime(2024, 1, 1, i % 24, tzinfo=dt.timezone.utc) for i in range(n)], dtype=UTC),
        "n": list(range(n)),
    })


@settings(max_examples=60, deadline=None)
@given(mask=st.lists(st.one_of(st.none(), st.booleans()), max_size=30))
def test_rows_where_is_filter(mask):
    frame = frame_of(len(mask))
    series = pl.Series(mask, dtype=pl.Boolean)
    assert rows_where(frame, series).equals(frame.filter(series))
    assert rows_where(frame, series).schema == frame.schema


@pytest.mark.parametrize("small", [True, False])
def test_rows_where_of_chunked_columns(small, monkeypatch):
    """Columns cut into one-row chunks (as a batch's frames come from concats): the rows come
    out as the query gives them and a later step over text runs (columns filtered chunk by
    chunk kept empty chunks, on which Polars' format panicked)."""
    import utl.frames

    monkeypatch.setattr(utl.frames, "SMALL", 1000 if small else 1)
    frame = pl.concat([frame_of(7).slice(i, 1) for i in range(7)], rechunk=False)
    assert frame.n_chunks() == 7
    mask = pl.concat([pl.Series([i % 2 == 0]) for i in range(7)], rechunk=False)
    got = rows_where(frame, mask)
    assert got.equals(frame.filter(mask))
    if small:  # (a large frame goes by Polars' own filter, whose chunks the same format trips on)
        formatted = got.select(pl.format("{}/{}", pl.col("book").fill_null("-"), "n"))
        assert formatted.to_series().to_list() == ["-/0", "b2/2", "b1/4", "b0/6"]
    assert with_constants(frame, extra=(1, pl.Int64)).equals(frame.with_columns(extra=pl.lit(1, pl.Int64)))


def test_rows_where_of_no_columns():
    assert rows_where(pl.DataFrame(), pl.Series([], dtype=pl.Boolean)).shape == (0, 0)


@pytest.mark.parametrize("n", [0, 1, 7])
def test_conformed_is_select_and_cast(n):
    frame = frame_of(n)
    same = pl.Schema({"n": pl.Int64, "ts": UTC, "book": pl.String})
    got = conformed(frame, same)
    assert got.equals(frame.select(same.names()).cast(same)) and got.schema == same
    cast = pl.Schema({"qty": D, "n": pl.Int32})  # types differ: cast, as the query casts
    got = conformed(frame, cast)
    assert got.equals(frame.select(cast.names()).cast(cast)) and got.schema == cast


def test_conformed_refuses_what_the_cast_refuses():
    frame = pl.DataFrame({"n": ["not a number"]})
    with pytest.raises(pl.exceptions.InvalidOperationError):
        conformed(frame, pl.Schema({"n": pl.Int64}))


@pytest.mark.parametrize("n", [0, 1, 5])
def test_with_constants_is_with_columns(n):
    frame = frame_of(n)
    day = dt.date(2024, 3, 5)
    start = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)
    got = with_constants(frame, qty=(Decimal(0), D), extra=(None, pl.String), ts=(start, UTC), day=(day, pl.Date))
    want = frame.with_columns(qty=pl.lit(Decimal(0), D), extra=pl.lit(None, pl.String), ts=pl.lit(start, UTC),
                              day=pl.lit(day, pl.Date))
    assert got.equals(want)
    assert got.schema == want.schema
