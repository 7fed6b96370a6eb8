"""Costing in two halves of the (book, asset) groups, each on its own thread, gives exactly
what costing them in one pass gives: every per-trade column, every position and open lot,
and the daily run's per-group figures."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from polars.testing import assert_frame_equal

from utl import lots
from utl.costing import GROUP_TRADES, compute_costs, cost_groups
from utl.lots import trade_parts

from .test_cost_groups import typed
from .test_properties import SETTINGS, books


def _both(monkeypatch, run):
    monkeypatch.setattr(lots, "SPLIT_FROM", 10**12)
    whole = run()
    monkeypatch.setattr(lots, "SPLIT_FROM", 2)
    monkeypatch.setattr(lots, "_CORES", 2)
    return whole, run()


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@SETTINGS
@given(rows=books())
def test_halves_equal_one_pass(method, rows):
    with pytest.MonkeyPatch.context() as monkeypatch:
        frame = typed(rows)
        whole, halves = _both(monkeypatch, lambda: compute_costs(frame, method))
        for name in ("realized", "positions", "open_lots"):
            assert_frame_equal(getattr(whole, name), getattr(halves, name))
        day = frame.select(GROUP_TRADES.names())
        whole, halves = _both(monkeypatch, lambda: cost_groups(day, method, counted_from=min(3, frame.height)))
        assert_frame_equal(whole.realized, halves.realized)
        assert_frame_equal(whole.open_lots, halves.open_lots)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ([0, 0, 0, 1, 1, 1], [(0, 3, 0, 1), (3, 6, 1, 2)]),
        ([0, 1, 1, 1, 1, 2], [(0, 1, 0, 1), (1, 6, 1, 3)]),  # the middle group's nearer end
        ([5, 5, 5, 5, 5, 5], [(0, 6, 0, 1)]),  # one group: nothing to split
        ([0, 1], [(0, 1, 0, 1), (1, 2, 1, 2)]),
    ],
)
def test_parts_cut_at_a_group_boundary(group, expected):
    assert trade_parts(np.array(group, np.int64), split_from=2) == expected
