"""Codes of short text from Polars' string views (utl.short_text) against the values
themselves: equal codes exactly for equal values, numbered by first appearance, and None
(the Categorical path) whenever a value is not held whole in its view."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.short_text import short_text_codes


def _first_appearance(values: list[str]) -> list[int]:
    seen: dict[str, int] = {}
    return [seen.setdefault(v, len(seen)) for v in values]


# Up to 12 bytes in UTF-8: letters, digits, accents and 4-byte characters.
SHORT = st.text(st.characters(codec="utf-8"), max_size=12).filter(lambda v: len(v.encode()) <= 12)


@settings(max_examples=150, deadline=None)
@given(st.lists(SHORT, min_size=1, max_size=8), st.data())
def test_codes_are_the_values_numbered_by_first_appearance(names, data):
    rows = data.draw(st.lists(st.sampled_from(names), max_size=400))
    chunks = data.draw(st.integers(1, 4))
    cut = np.array_split(np.arange(len(rows)), chunks)
    column = pl.concat([pl.Series("v", [rows[i] for i in part], dtype=pl.String) for part in cut], rechunk=False)
    codes = short_text_codes(column)
    assert codes is not None and codes.dtype == np.uint32
    assert codes.tolist() == _first_appearance(rows)
    # A slice (an offset into the views) codes its own rows.
    lo = data.draw(st.integers(0, len(rows)))
    assert short_text_codes(column.slice(lo)).tolist() == _first_appearance(rows[lo:])


def test_many_distinct_values_grow_the_table():
    rows = [f"v{i % 30_000}" for i in range(100_000)]
    assert short_text_codes(pl.Series(rows)).tolist() == _first_appearance(rows)


def test_values_not_held_whole_in_a_view_take_the_categorical_path():
    assert short_text_codes(pl.Series(["exactly12byt", "b"])) is not None
    assert short_text_codes(pl.Series(["thirteen byte", "b"])) is None  # 13 bytes: a pointer, not the value
    assert short_text_codes(pl.Series(["é" * 7])) is None  # 14 bytes
    assert short_text_codes(pl.Series(["a", None])) is None
    assert short_text_codes(pl.Series(["a"], dtype=pl.Categorical)) is None
    assert short_text_codes(pl.Series([], dtype=pl.String)).tolist() == []
