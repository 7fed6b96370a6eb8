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
