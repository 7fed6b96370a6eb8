"""The contract's worked examples and hand-derived cases, method by method."""

from __future__ import annotations

from decimal import Decimal as D

import polars as pl
import pytest

from utl.costing import compute_costs
from utl.decimals import DECIMAL

from .factory import trades

EXAMPLE = trades("t1 +1 @ 100", "t2 +2 @ 110", "t3 -1.5 @ 120")


@pytest.mark.parametrize(
    "method, t3_realized, lots, cost_basis, avg_price",
    [
        ("fifo", D("25"), [("t2", D("1.5"), D("110"))], D("165"), D("110")),
        ("lifo", D("15"), [("t1", D("1"), D("100")), ("t2", D("0.5"), D("110"))], D("155"), D("103.333333333333333333")),
        ("hifo", D("15"), [("t1", D("1"), D("100")), ("t2", D("0.5"), D("110"))], D("155"), D("103.333333333333333333")),
        ("wac", D("20.000000000000000000"), [(None, D("1.5"), D("106.666666666666666667"))], D("160"), D("106.666666666666666667")),
    ],
)
def test_contract_example(method, t3_realized, lots, cost_basis, avg_price):
    result = compute_costs(EXAMPLE, method)
    assert result.realized["realized_pnl"].to_list() == [0, 0, t3_realized]
    assert result.realized["closed_qty"].to_list() == [0, 0, D("1.5")]
    assert result.realized["position_after"].to_list() == [1, 3, D("1.5")]
    assert result.open_lots.select("trade_id", "qty", "entry_price").rows() == lots
    position = result.positions.row(0, named=True)
    assert (position["qty"], position["cost_basis"], position["avg_price"]) == (D("1.5"), cost_basis, avg_price)
    assert position["realized_pnl"] == t3_realized


def test_wac_pool_opened_at_first_trade():
    lots = compute_costs(EXAMPLE, "wac").open_lots
    assert lots["opened_ts"].to_list() == EXAMPLE["ts"][:1].to_list()


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
def test_contract_flip(method):
    result = compute_costs(trades("u1 -2 @ 50", "u2 +3 @ 40", "u3 -0.5 @ 45"), method)
    assert result.realized.select("realized_pnl", "closed_qty", "position_after").rows() == [
        (0, 0, -2),
        (20, 2, 1),
        (D("2.5"), D("0.5"), D("0.5")),
    ]
    lots = result.open_lots.select("trade_id", "qty", "entry_price").rows()
    assert lots == [(None if method == "wac" else "u2", D("0.5"), 40)]
    assert result.positions["cost_basis"].to_list() == [20]
    assert result.positions["avg_price"].to_list() == [40]
    if method == "wac":  # the flip starts the new pool at u2
        assert result.open_lots["opened_ts"].to_list() == [result.realized["ts"][1]]


SHORT = trades("s1 -1 @ 100", "s2 -2 @ 90", "s3 -1 @ 95", "s4 +2.5 @ 80")


@pytest.mark.parametrize(
    "method, realized, open_lots",
    [
        # FIFO closes s1 (1 @ 100) then 1.5 of s2: 1*20 + 1.5*10
        ("fifo", D("35"), [("s2", D("-0.5"), D("90")), ("s3", D("-1"), D("95"))]),
        # LIFO closes s3 (1 @ 95) then 1.5 of s2: 15 + 15
        ("lifo", D("30"), [("s1", D("-1"), D("100")), ("s2", D("-0.5"), D("90"))]),
        # HIFO on a short closes the lowest entry first: s2 (2 @ 90) then 0.5 of s3: 20 + 7.5
        ("hifo", D("27.5"), [("s1", D("-1"), D("100")), ("s3", D("-0.5"), D("95"))]),
    ],
)
def test_short_positions(method, realized, open_lots):
    result = compute_costs(SHORT, method)
    assert result.realized["realized_pnl"].to_list()[-1] == realized
    assert result.open_lots.select("trade_id", "qty", "entry_price").rows() == open_lots
    assert result.positions["qty"].to_list() == [D("-1.5")]


def test_wac_reaverages_on_adds_and_keeps_average_on_reductions():
    # avg after w2: (1*100 + 1*200)/2 = 150; w3 sells 1 at 170: +20; avg stays 150;
    # w4 buys 2 at 90: (1*150 + 2*90)/3 = 110; w5 sells 3 at 100: 3*(100-110) = -30, flat.
    result = compute_costs(trades("w1 +1 @ 100", "w2 +1 @ 200", "w3 -1 @ 170", "w4 +2 @ 90", "w5 -3 @ 100"), "wac")
    assert result.realized["realized_pnl"].to_list() == [0, 0, 20, 0, -30]
    assert result.positions.row(0) == ("b", "BTC", 0, 0, None, -10)
    assert result.open_lots.height == 0


def test_wac_rounds_average_half_even_at_18_digits():
    # (1*1 + 2*2)/3 = 1.6666...: the pool average is 1.666666666666666667.
    result = compute_costs(trades("a +1 @ 1", "b +2 @ 2"), "wac")
    assert result.open_lots["entry_price"].to_list() == [D("1.666666666666666667")]


def test_hifo_ties_go_to_the_oldest_lot():
    result = compute_costs(trades("h1 +1 @ 100", "h2 +1 @ 120", "h3 +1 @ 120", "h4 -1 @ 130"), "hifo")
    assert result.open_lots["trade_id"].to_list() == ["h1", "h3"]
    assert result.realized["realized_pnl"].to_list()[-1] == 10


def test_equal_timestamps_apply_in_input_order_per_book():
    # Same ts everywhere; books interleaved in the input; each book applies its own in input order.
    frame = trades("A:BTC a1 +1 @ 10", "B:BTC b1 -1 @ 10", "A:BTC a2 +1 @ 20", "B:BTC b2 -1 @ 30",
                   "A:BTC a3 -1 @ 25", "B:BTC b3 +1 @ 5", same_ts=True)
    fifo = compute_costs(frame, "fifo").realized
    lifo = compute_costs(frame, "lifo").realized
    assert fifo["realized_pnl"].to_list() == [0, 0, 0, 0, 15, 5]  # a3 closes a1; b3 closes b1
    assert lifo["realized_pnl"].to_list() == [0, 0, 0, 0, 5, 25]  # a3 closes a2; b3 closes b2
    assert fifo["trade_id"].to_list() == ["a1", "b1", "a2", "b2", "a3", "b3"]  # input order kept


def test_ts_order_beats_input_order():
    frame = trades("late +1 @ 20 ts=10", "early +1 @ 10 ts=5", "close -1 @ 30 ts=20")
    assert compute_costs(frame, "fifo").realized["realized_pnl"].to_list() == [0, 0, 20]


def test_assets_within_a_book_are_independent():
    frame = trades("BK:BTC x1 +1 @ 10", "BK:ETH x2 -1 @ 5", "BK:BTC x3 -1 @ 12")
    result = compute_costs(frame, "fifo")
    assert result.realized["realized_pnl"].to_list() == [0, 0, 2]
    assert result.positions.select("asset", "qty").rows() == [("BTC", 0), ("ETH", -1)]


def test_tiny_and_huge_quantities_in_one_book_are_exact():
    frame = trades("e1 +1000000000000 @ 2", "e2 +0.000000000000000001 @ 3", "e3 -1000000000000 @ 2.5",
                   "e4 -0.000000000000000001 @ 4")
    for method in ("fifo", "lifo", "hifo", "wac"):
        result = compute_costs(frame, method)
        assert result.positions["qty"].to_list() == [0], method
        assert result.realized["position_after"].to_list() == [
            D("1000000000000"), D("1000000000000.000000000000000001"), D("0.000000000000000001"), 0
        ], method
    fifo = compute_costs(frame, "fifo")
    # e3 closes e1 (1e12 * 0.5); e4 closes e2: 1e-18 * 1 = 1e-18, exactly.
    assert fifo.realized["realized_pnl"].to_list() == [0, 0, D("500000000000"), D("0.000000000000000001")]


def test_flat_position_is_exactly_zero_and_listed():
    frame = trades("z1 +0.1 @ 1", "z2 +0.2 @ 1", "z3 -0.3 @ 1")
    positions = compute_costs(frame, "fifo").positions
    assert positions.row(0) == ("b", "BTC", 0, 0, None, 0)
    assert str(positions["qty"][0]) == "0E-18"


def test_output_types_are_decimal_and_extra_columns_carry_through():
    frame = trades("t1 +1 @ 100", "t2 -1 @ 101").with_columns(venue=pl.lit("binance"))
    result = compute_costs(frame.lazy(), "fifo")
    for column in ("qty", "price", "realized_pnl", "closed_qty", "position_after"):
        assert result.realized.schema[column] == DECIMAL
    for column in ("qty", "cost_basis", "avg_price", "realized_pnl"):
        assert result.positions.schema[column] == DECIMAL
    assert result.open_lots.columns == ["book", "asset", "trade_id", "opened_ts", "qty", "entry_price"]
    assert result.realized["venue"].to_list() == ["binance", "binance"]


def test_prices_too_large_for_int64_are_priced_in_decimal():
    # 1e19 does not fit int64 at any scale: the matches are priced in Polars Decimal instead.
    frame = trades("p1 +0.5 @ 10000000000000000000", "p2 -0.25 @ 10000000000000000004.5")
    for method in ("fifo", "lifo", "hifo"):
        result = compute_costs(frame, method)
        assert result.realized["realized_pnl"].to_list() == [0, D("1.125")], method
        assert result.positions["cost_basis"].to_list() == [D("2500000000000000000")], method


def test_realized_rounds_half_even_per_match_in_the_kernel():
    # 0.000000000000000001 * (1.5 - 1) = 5e-19 -> 0 (half-even); * (2.5 - 1) = 1.5e-18 -> 2e-18.
    frame = trades("k1 +0.000000000000000001 @ 1", "k2 +0.000000000000000001 @ 1",
                   "k3 -0.000000000000000001 @ 1.5", "k4 -0.000000000000000001 @ 2.5")
    assert compute_costs(frame, "fifo").realized["realized_pnl"].to_list() == [0, 0, 0, D("2E-18")]
