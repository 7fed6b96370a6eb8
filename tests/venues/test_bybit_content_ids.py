"""Bybit asset logs key a row without a trade id by its content and its occurrence number:
computed over the id-less rows alone, the keys are those computed over every row."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.venues.base import with_synthetic_id
from utl.venues.bybit import _content_ids

cell = st.one_of(st.none(), st.sampled_from(["", "1", "a", "--", "x|y", "#1", "2.5"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(cell, cell, cell), max_size=40))
def test_content_ids_of_the_id_less_rows_are_those_of_all_rows(rows: list[tuple[str | None, ...]]) -> None:
    frame = pl.DataFrame(rows, schema={"Change": pl.String, "Type": pl.String, "Trade ID": pl.String}, orient="row")
    trade = pl.col("Trade ID").str.strip_chars().replace("", None)
    columns = ["Change", "Type", "Trade ID"]
    got = _content_ids(frame, columns, trade)
    plain = with_synthetic_id(frame, columns, "__content").with_columns(
        pl.when(trade.is_null()).then(pl.col("__content")).alias("__content"))
    assert got["__content"].to_list() == plain["__content"].to_list()
    assert got.drop("__content").equals(frame)
