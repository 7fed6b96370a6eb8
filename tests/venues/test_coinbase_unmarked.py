"""Coinbase amounts: dropping the mark and commas of an in-range amount before the shared
parser reads it gives the value and refusal the parser gives the cell as written."""

from __future__ import annotations

import random

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.venues.coinbase import _unmarked, with_decimals

digits = st.text("0123456789", min_size=0, max_size=24)
grouped = st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=9).map(",".join)
amount = st.builds(
    lambda sign, mark, whole, point, fraction, tail: f"{sign}{mark}{whole}{point}{fraction}{tail}",
    st.sampled_from(["", "-", "+", "--", " "]), st.sampled_from(["", "$", "€", "£", "$$", "US$"]),
    st.one_of(digits, grouped), st.sampled_from(["", ".", ".", ","]), digits, st.sampled_from(["", "", " ", "e5", "x", "$"]),
)
cells = st.lists(st.one_of(st.none(), amount, st.sampled_from(["", "$", "-$0.00", "$1,234.5", "$99,999,999,999,999,999,999.5"])), max_size=40)


def parsed(text: pl.Series) -> tuple[list, list]:
    frame = with_decimals(pl.DataFrame({"t": text}), {"a": pl.col("t")})
    return frame["a__value"].to_list(), frame["a__value__bad"].to_list()


@settings(max_examples=500, deadline=None)
@given(cells)
def test_unmarked_amounts_parse_as_written(texts: list[str | None]) -> None:
    text = pl.Series("t", texts, dtype=pl.String)
    assert parsed(_unmarked(text)) == parsed(text)


def test_a_large_column_parses_as_written() -> None:
    # Large enough for the compiled number pass where numba is loaded (from 20,000 rows).
    rng = random.Random(7)
    pool = ["$1,234.50", "-$5,250.00", "$0.52548301", "$48,673.57095000", "1,234", "12,34", "$1.1234567890123456789",
            "$123,456,789,012,345,678,901.5", "$12345678901234567890.5", "", None, "abc", "$", "€7", "£-3", "-£3,000"]
    text = pl.Series("t", [rng.choice(pool) for _ in range(25_000)], dtype=pl.String)
    unmarked = _unmarked(text)
    assert unmarked.to_list() != text.to_list()  # the marks were dropped somewhere
    assert parsed(unmarked) == parsed(text)
