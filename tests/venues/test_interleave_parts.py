"""``interleave_parts`` (a ledger row's movements in file order without a sort) gives exactly
what the plain form gives: each part filtered and computed alone, stacked, sorted by row."""

from __future__ import annotations

from decimal import Decimal
from itertools import accumulate

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from utl.decimals import DECIMAL
from utl.venues.base import interleave_parts
from utl.venues.base import interleave

amount = st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal("1.5"), Decimal("-2"), Decimal("99999999999999999999.999999999999999999")]))
text = st.one_of(st.none(), st.sampled_from(["", "a", "id-1", "a much longer text than twelve bytes"]))


def parts() -> list:
    return [
        ((pl.col("cash") != 0) | ((pl.col("fee") == 0) & (pl.col("funding") == 0)), {"qty": pl.col("cash")}),
        (pl.col("fee") != 0, {"qty": pl.col("fee"), "kind": pl.lit("fee"), "entry_id": pl.col("entry_id") + "/fee"}),
        (pl.col("funding") != 0, {"qty": pl.col("funding").cast(DECIMAL), "kind": pl.lit("funding"), "entry_id": pl.concat_str("entry_id", pl.lit("/funding"))}),
    ]


def every_row_parts() -> list:
    # A part every row has (a literal condition) and a kind of its own per part.
    return [
        (pl.lit(True), {"qty": pl.col("cash"), "kind": pl.col("kind")}),
        (pl.col("fee").is_not_null() & (pl.col("fee") != 0), {"qty": -pl.col("fee"), "kind": pl.lit("fee"), "entry_id": pl.col("entry_id") + "/fee"}),
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), text, text, amount), max_size=30))
def test_interleave_parts_with_a_part_every_row_has(rows: list[tuple]) -> None:
    steps, entry_ids, kinds, amounts = zip(*rows) if rows else ((), (), (), ())
    frame = pl.DataFrame(
        {"source_row": pl.Series(list(accumulate(steps)), dtype=pl.Int64), "entry_id": pl.Series(entry_ids, dtype=pl.String),
         "kind": pl.Series(kinds, dtype=pl.String), "cash": pl.Series(amounts, dtype=DECIMAL), "fee": pl.Series(amounts[::-1], dtype=DECIMAL)})
    expected = interleave([frame.filter(when).with_columns(**own) for when, own in every_row_parts()])
    assert_frame_equal(interleave_parts(frame, every_row_parts()), expected, check_exact=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), text, text, amount, amount, amount), max_size=30), st.booleans())
def test_interleave_parts_is_the_plain_interleave(rows: list[tuple], narrow: bool) -> None:
    steps, entry_ids, kinds, cash, fee, funding = zip(*rows) if rows else ((), (), (), (), (), ())
    frame = pl.DataFrame(
        {"source_row": pl.Series(list(accumulate(steps)), dtype=pl.Int64),
         "entry_id": pl.Series(entry_ids, dtype=pl.String), "kind": pl.Series(kinds, dtype=pl.String),
         "cash": pl.Series(cash, dtype=DECIMAL), "fee": pl.Series(fee, dtype=DECIMAL), "funding": pl.Series(funding, dtype=DECIMAL)})
    columns = ["source_row", "entry_id", "kind", "qty"] if narrow else None
    plain = [frame.filter(when).with_columns(**own) for when, own in parts()]
    expected = interleave([p.select(columns) if columns else p for p in plain])
    assert_frame_equal(interleave_parts(frame, parts(), columns), expected, check_exact=True)


def test_rows_out_of_order_take_the_plain_form() -> None:
    frame = pl.DataFrame({"source_row": [3, 1, 2], "entry_id": ["c", "a", "b"], "kind": ["x"] * 3,
                          "cash": pl.Series([1, 0, 2], dtype=DECIMAL), "fee": pl.Series([1, 1, 0], dtype=DECIMAL),
                          "funding": pl.Series([0, 0, 0], dtype=DECIMAL)})
    got = interleave_parts(frame, parts())
    assert got["entry_id"].to_list() == ["a/fee", "b", "c", "c/fee"]
