"""utl.venues.base.rows_of (derivative cash's movement-to-instrument lookup) against the join it replaces."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.venues.base import rows_of

row_lists = st.lists(st.integers(1, 30), max_size=30)


@settings(max_examples=300, deadline=None)
@given(movements=row_lists.map(sorted), instruments=row_lists, unique=st.booleans(), sort=st.booleans())
def test_rows_of_is_the_inner_join_in_movement_order(movements: list[int], instruments: list[int], unique: bool, sort: bool) -> None:
    """Sorted unique instrument rows take the binary search; any other shape (repeats, out of
    order, empty) the join: every case gives the join's rows in the movements' order."""
    if unique:
        instruments = list(dict.fromkeys(instruments))
    if sort:
        instruments = sorted(instruments)
    left = pl.DataFrame({"source_row": movements, "qty": [f"m{i}" for i in range(len(movements))]}, schema={"source_row": pl.Int64, "qty": pl.String})
    right = pl.DataFrame({"source_row": instruments, "instrument": [f"i{r}" for r in instruments], "n": list(range(len(instruments)))},
                         schema={"source_row": pl.Int64, "instrument": pl.String, "n": pl.Int64})
    expected = left.join(right, on="source_row", how="inner", maintain_order="left")
    got = rows_of(left, right)
    assert got.schema == expected.schema
    assert got.rows() == expected.rows()


def test_rows_of_where_every_movement_has_its_row_and_where_one_has_none() -> None:
    # Every left row found: the frame is taken as it is, unfiltered; one not found: filtered.
    left = pl.DataFrame({"source_row": [1, 1, 2, 4, 4, 4], "qty": ["a", "b", "c", "d", "e", "f"]})
    for right_rows in ([1, 2, 4], [1, 2, 3, 4, 5], [1, 4]):
        right = pl.DataFrame({"source_row": right_rows, "instrument": [f"i{r}" for r in right_rows]})
        expected = left.join(right, on="source_row", how="inner", maintain_order="left")
        got = rows_of(left, right)
        assert got.schema == expected.schema and got.rows() == expected.rows()
        assert got.height == (6 if 2 in right_rows else 5)


def test_cash_kind_codes_name_the_derivative_cash_kinds() -> None:
    from utl.derivatives.schemas import DERIVATIVE_CASH_KINDS
    from utl.venues.base import CASH_KIND_CODES, cash_kind_text

    assert tuple(CASH_KIND_CODES) == DERIVATIVE_CASH_KINDS
    codes = pl.DataFrame({"c": [2, None, 0, 5]}, schema={"c": pl.Int32})
    assert codes.select(cash_kind_text(pl.col("c"))).to_series().to_list() == ["fee", None, "realized_pnl", "premium"]
