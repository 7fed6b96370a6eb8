"""utl.lookup.pair_rows: the distinct (venue, account) pairs of a long frame and each row's
pair, told by runs when equal pairs stand together and by codes otherwise: both must name
every row's own pair, nulls included."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.lookup import _pair_runs, pair_rows

value = st.one_of(st.none(), st.sampled_from(["binance", "kraken", "okx", "a/b", ""]))


def _check(first: pl.Series, second: pl.Series, rows: pl.Series, pair: np.ndarray) -> None:
    pairs = list(zip(first.to_list(), second.to_list(), strict=True))
    representatives = [pairs[r] for r in rows.to_list()]
    assert len(set(representatives)) == len(representatives) == len(set(pairs))  # each pair once
    assert [representatives[p] for p in pair.tolist()] == pairs  # every row's own pair


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(value, value, st.integers(1, 40)), max_size=12))
def test_pairs_in_runs_and_scattered(runs):
    # Runs of equal pairs (the shard's legs) and the same rows shuffled (no runs).
    first = pl.Series([a for a, _, k in runs for _ in range(k)], dtype=pl.String)
    second = pl.Series([b for _, b, k in runs for _ in range(k)], dtype=pl.String)
    for a, b in ((first, second), (first.shuffle(seed=3), second.shuffle(seed=3))):
        _check(a, b, *pair_rows(a, b))
    if len(first):
        found = _pair_runs(first, second)
        assert found is not None  # a few runs: told without codes
        _check(first, second, *found)


def test_many_runs_fall_back_to_codes():
    first = pl.Series(["x", "y"] * 5000)
    second = pl.Series(["1"] * 10000)
    assert _pair_runs(first, second) is None
    _check(first, second, *pair_rows(first, second))
