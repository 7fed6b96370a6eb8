"""Key ranges sorted ahead of COPY: together, exactly the frame in byte order of its key."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from utl.store.copy import MAX_RANGES, _sorted_in_background, sorted_ranges


def byte_sorted(frame: pl.DataFrame, order: list[str]) -> list[tuple]:
    """The expected order, from Python: str compared as UTF-8 bytes (COLLATE "C")."""
    return sorted(frame.rows(), key=lambda row: tuple(
        row[frame.columns.index(c)].encode() if isinstance(row[frame.columns.index(c)], str) else row[frame.columns.index(c)]
        for c in order))


def frame_of(venues: list[str], n: int) -> pl.DataFrame:
    return pl.DataFrame({
        "business_date": [dt.date(2024, 5, 1)] * n,
        "venue": [venues[(i * 7) % len(venues)] for i in range(n)],
        "asset": [f"A{(i * 7919) % n}" for i in range(n)],
        "qty": list(range(n)),
    })


@pytest.mark.parametrize("venues", [["okx", "Binance", "binance", "é-venue", "zz", "Z"], ["only"],
                                    [f"v{i}" for i in range(MAX_RANGES + 1)]], ids=["ranges", "one", "too many"])
def test_ranges_together_are_the_frame_in_key_order(venues: list[str]) -> None:
    frame = frame_of(venues, 2_000)
    order = ["business_date", "venue", "asset"]
    parts = list(sorted_ranges(frame, order))
    assert pl.concat(parts).rows() == byte_sorted(frame, order)
    assert len(parts) == (len(venues) if len(venues) <= MAX_RANGES and len(venues) > 1 else 1)


def test_a_null_key_value_sorts_the_frame_whole() -> None:
    frame = frame_of(["a", "b"], 10).with_columns(venue=pl.when(pl.col("qty") == 3).then(None).otherwise(pl.col("venue")))
    parts = list(sorted_ranges(frame, ["venue", "asset"]))
    assert len(parts) == 1 and parts[0].height == 10
    assert parts[0].get_column("venue").to_list()[0] is None  # nulls first, as Polars sorts them


def test_the_worker_s_error_reaches_the_writer() -> None:
    frame = frame_of(["a", "b"], 10)
    with pytest.raises(pl.exceptions.ColumnNotFoundError):
        list(_sorted_in_background(frame, ["no_such_column"]))


def test_keys_with_one_value_are_not_sorted_and_leading_keys_split_into_ranges() -> None:
    n = 3_000
    frame = pl.DataFrame({
        "landing": ["/srv/landing"] * n,
        "business_date": [dt.date(2024, 5, 1)] * n,
        "venue": pl.Series([["okx", "Binance", "é-venue"][i % 3] for i in range(n)], dtype=pl.Enum(["okx", "é-venue", "Binance"])),
        "account": [["mm-2", "mm-10", "Z"][(i // 3) % 3] + ("" if i % 5 else "ß") for i in range(n)],
        "asset": [f"A{(i * 7919) % n}" for i in range(n)],
    })
    order = ["landing", "business_date", "venue", "account", "asset"]
    parts = list(sorted_ranges(frame, order))
    assert len(parts) == 3 * 6  # venue × account: one range each, sorted by asset alone
    expected = byte_sorted(frame.with_columns(pl.col("venue").cast(pl.String)), order)
    assert pl.concat(parts).with_columns(pl.col("venue").cast(pl.String)).rows() == expected  # Enum sorted as its text


def test_a_frame_whose_keys_have_one_value_is_one_range_as_it_came() -> None:
    frame = frame_of(["only"], 5).with_columns(asset=pl.lit("A"))
    parts = list(sorted_ranges(frame, ["business_date", "venue", "asset"]))
    assert len(parts) == 1 and parts[0].equals(frame)
