"""Canonical asset codes of a long column are worked out per distinct code: the same codes,
row by row, as ``canonical_asset`` gives for every row."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings, strategies as st

from utl.assets import canonical_asset
from utl.ingest import _canonical_codes

CODES = st.one_of(st.none(), st.sampled_from(["XXBT", " xbt ", "XBT", "btc", "DOT28.S", "ETH2.S", "USDT", "ZUSD",
                                              "weird code", "", "BTC.F", "foo"]),
                  st.text(alphabet="abcXYZ019.- ", max_size=6))


@settings(max_examples=200, deadline=None)
@given(st.lists(CODES, max_size=40), st.dictionaries(st.sampled_from(["FOO", "BTC", "XYZ"]),
                                                     st.sampled_from(["BAR", "XBT", "ABC"]), max_size=2))
def test_per_distinct_code_equals_per_row(codes, aliases):
    column = pl.Series("asset", codes, dtype=pl.String)
    expected = pl.select(canonical_asset(pl.lit(column), aliases)).to_series()
    assert _canonical_codes(column, aliases).to_list() == expected.to_list()
