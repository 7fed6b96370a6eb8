"""The application order kernel against numpy's stable sort: groups by (first, second)
pair, then time, then row, whichever table numbers the pairs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl import ordering
from utl.ordering import group_time_order


def _check(first, second, t):
    order, group = group_time_order(first, second, t)
    assert np.array_equal(np.sort(order), np.arange(len(t)))
    assert np.all(np.diff(group) >= 0)
    # One group number per pair, and pairs numbered by first appearance.
    pair = (first.astype(np.int64) << 32) | second.astype(np.int64)
    assert len(np.unique(group)) == len(np.unique(pair))
    first_seen = {}
    for p, g in zip(pair[order], group):
        assert first_seen.setdefault(p, g) == g
    _, at = np.unique(pair, return_index=True)
    numbered = group[np.argsort(order)][np.sort(at)]
    assert np.array_equal(numbered, np.arange(len(at)))
    # Within a group: time, then row, as a stable sort of (group, time) gives it.
    expected = np.lexsort((np.arange(len(t)), t, group[np.argsort(order)]))
    assert np.array_equal(order, expected)


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_order_is_the_stable_group_time_order(data):
    n = data.draw(st.integers(0, 300))
    pairs = data.draw(st.integers(1, 6))
    wide = data.draw(st.booleans())  # codes far apart: the hashing table instead of the direct one
    code = st.integers(0, 2**32 - 1) if wide else st.integers(0, 5)
    names = [(data.draw(code), data.draw(code)) for _ in range(pairs)]
    pick = data.draw(st.lists(st.integers(0, pairs - 1), min_size=n, max_size=n))
    first = np.array([names[p][0] for p in pick], np.uint32)
    second = np.array([names[p][1] for p in pick], np.uint32)
    span = data.draw(st.sampled_from([1, 3, 1000, 2**11, 2**40, 2**62, 2**63 - 1]))  # spans of 1 to 64 bits
    t = np.array(data.draw(st.lists(st.integers(-span, span), min_size=n, max_size=n)), np.int64)
    if data.draw(st.booleans()):
        t = np.sort(t)  # already in time order: the groups are only read
    order, group = group_time_order(first, second, t)
    if n == 0:
        assert len(order) == 0 and len(group) == 0
        return
    _check(first, second, t)


@pytest.mark.parametrize("groups", [1, 7, 5000])
def test_many_rows_many_groups(groups):
    rng = np.random.default_rng(groups)
    n = 50_000
    first = rng.integers(0, groups, n).astype(np.uint32)
    second = (first * 7 % 13).astype(np.uint32)
    t = rng.integers(0, 2**50, n)
    t[::3] = t[0]  # many equal times: their rows' order must be kept
    _check(first, second, t)


def test_hash_table_grows_past_its_first_size():
    n = 5000
    first = (np.arange(n) * 2654435761 % 2**32).astype(np.uint32)
    second = np.zeros(n, np.uint32)
    code, k = ordering._dense_pairs(first, second, np.empty(0, np.int64), np.int64(0), np.empty(len(first), np.int64))
    assert k == n
    assert np.array_equal(code, np.arange(n))


@pytest.mark.parametrize("n", [1, 2, 4_095, 70_000])
def test_a_repeated_pair_is_found_wherever_it_sits(n):
    """The duplicate check deals hashes into parts by their top bits: a repeated (first,
    second) pair is found whichever rows hold it, and distinct pairs never are."""
    from utl.ordering import hashes_repeat

    rng = np.random.default_rng(n)
    first = rng.integers(0, 50, n).astype(np.uint32)
    second = rng.integers(1, 2**63, n, dtype=np.int64).astype(np.uint64)  # as id hashes are
    assert not hashes_repeat(first, second)
    if n < 2:
        return
    for a, b in ((0, n - 1), (n // 3, n // 2), (n - 2, n - 1)):
        twice_first, twice_second = first.copy(), second.copy()
        twice_first[b], twice_second[b] = first[a], second[a]
        assert hashes_repeat(twice_first, twice_second)
        # Given a slice at a time (as the id column is hashed), across slices too.
        assert hashes_repeat(twice_first, np.array_split(twice_second, 3))
        # The same hash under another book is no repeat.
        twice_first[b] = first[a] + 1
        assert not hashes_repeat(twice_first, twice_second)
        assert not hashes_repeat(twice_first, np.array_split(twice_second, 3))



def test_a_fingerprint_collision_is_a_false_repeat_for_the_exact_check():
    """Two different hashes with one fingerprint in one probe chain count as a repeat
    (never the other way round): the costing then takes the exact check."""
    from utl.ordering import hashes_repeat

    x = np.uint64(0x1234_5678_0000_0000)
    assert hashes_repeat(np.zeros(2, np.uint32), np.array([x, x + np.uint64(4)], np.uint64))


@pytest.mark.parametrize("method", ["fifo", "wac"])
def test_a_false_repeat_costs_as_the_exact_check_says(method, monkeypatch):
    """When the hash check says "maybe a repeat" on distinct ids, the rows go through the
    exact check and the order again: the same figures as without it."""
    import polars as pl

    from utl import costing
    from utl.lots import SPLIT_FROM

    from .test_fast_paths import _shuffled_trades

    frame = _shuffled_trades(SPLIT_FROM + 500, groups=5, seed=3)
    expected = costing.compute_costs(frame, method)
    monkeypatch.setattr(costing, "_ids_repeat", lambda codes: True)
    got = costing.compute_costs(frame, method)
    for a, b in ((expected.realized, got.realized), (expected.positions, got.positions),
                 (expected.open_lots, got.open_lots)):
        assert a.equals(b)
    with pytest.raises(ValueError, match="duplicate"):
        costing.compute_costs(pl.concat([frame, frame.head(1)]), method)
