"""with_venue_decimals' passes give, for every column, what the step-by-step parse of every
cell (decimals._parse_odd, the general rules) gives: a column pass 1 takes whole, one with
nulls, marked numbers, odd forms, junk, and an empty column."""

from __future__ import annotations

import polars as pl
import pytest

from utl.decimals import _parse_odd, with_venue_decimals

COLUMNS = {
    "plain": ["1", "-2.5", "0.000000000000000001", "123456789012345678.5", "0"],
    "with_nulls": ["1.5", None, "2", None, "3"],
    "all_null": [None, None, None, None, None],
    "marked": ["$1,300.50", "-€2", "1,000", "7", "£3.25"],
    "odd": [" 2 ", "+3", "1e-5", "--", ""],
    "junk": ["1,5", "abc", "1.0000000000000000001", "1e40", "2"],
}


@pytest.mark.parametrize("name", list(COLUMNS))
def test_every_pass_agrees_with_the_step_by_step_parse(name: str) -> None:
    frame = pl.DataFrame({"t": COLUMNS[name]}, schema={"t": pl.String})
    got = with_venue_decimals(frame, v="t")
    value, bad = _parse_odd(frame["t"])
    assert got["v"].to_list() == value.to_list()
    assert got["v__bad"].to_list() == bad.to_list()
    assert got["v__bad"].dtype == pl.Boolean and got["v__bad"].null_count() == 0


def test_an_empty_column() -> None:
    got = with_venue_decimals(pl.DataFrame({"t": []}, schema={"t": pl.String}), v="t")
    assert got.height == 0 and got.schema["v__bad"] == pl.Boolean
