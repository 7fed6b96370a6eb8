"""Average entry and computed realized PnL (utl.derivatives.entry): worked examples, checked
by hand in the comments, and properties."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.decimals import DECIMAL
from utl.derivatives.entry import average_entry, round_half_even
from tests.derivatives.factory import legs, state


def walk(frame: pl.DataFrame, opening: pl.DataFrame | None = None) -> list[tuple]:
    out = average_entry(frame, opening).legs
    return out.select("position_after", "entry_price", "closed_qty", "realized_pnl_computed").rows()


def test_linear_reaverages_on_adds_and_keeps_on_reductions():
    # +1 @ 100: entry 100.  +1 @ 200: (1·100 + 1·200)/2 = 150.
    # -1 @ 300: reduces, keeps 150, realizes 1·(300 − 150) = 150.
    # +1 @ 300: (1·150 + 1·300)/2 = 225 (from the position held, not from every leg ever).
    assert walk(legs("+1 @ 100", "+1 @ 200", "-1 @ 300", "+1 @ 300")) == [
        (D(1), D(100), D(0), D(0)),
        (D(2), D(150), D(0), D(0)),
        (D(1), D(150), D(1), D(150)),
        (D(2), D(225), D(0), D(0)),
    ]


def test_linear_contract_size_scales_pnl():
    # OKX BTC-USDT-SWAP, 0.01 BTC a contract: long 25 @ 60000, close 25 @ 61000:
    # 25 · 0.01 · (61000 − 60000) = 250 USDT; the position is exactly flat, entry null.
    assert walk(legs("+25 @ 60000", "-25 @ 61000", size="0.01"))[-1] == (D(0), None, D(25), D(250))


def test_short_realizes_with_its_sign():
    # Short 2 @ 100, buy 1 back @ 90: 1 · (100 − 90) = +10 for the short.
    assert walk(legs("-2 @ 100", "+1 @ 90"))[-1] == (D(-1), D(100), D(1), D(10))


def test_flip_restarts_at_the_flip_price():
    # The costing contract's flip: u1 -2 @ 50; u2 +3 @ 40 closes the short, realizing
    # 2·(50 − 40) = 20, and opens a long of 1 @ 40; u3 -0.5 @ 45 realizes 0.5·(45 − 40) = 2.5.
    assert walk(legs("-2 @ 50", "+3 @ 40", "-0.5 @ 45")) == [
        (D(-2), D(50), D(0), D(0)),
        (D(1), D(40), D(2), D(20)),
        (D("0.5"), D(40), D("0.5"), D("2.5")),
    ]


def test_inverse_entry_is_the_harmonic_mean():
    # Deribit BTC-PERPETUAL (USD): +10000 @ 65000, +10000 @ 70000:
    # 20000 / (10000/65000 + 10000/70000) = 2·65000·70000 / 135000 = 9100000000/135000
    # = 67407.407407407407407407|407... → 18 places, next digit 4: round down.
    rows = walk(legs("+10000 @ 65000", "+10000 @ 70000", instrument="BTC/USD:BTC", inverse=True))
    assert rows[-1][1] == D("67407.407407407407407407")


def test_inverse_realized_in_the_coin():
    # The Deribit transaction-log example: long $10,000 from 65,000, session closed at 65,500:
    # 10000·(1/65000 − 1/65500) = 10000·500 / (65000·65500) = 5000000 / 4257500000
    # = 0.001174398120963006|459... BTC → 0.001174398120963006.
    # (The venue doc's own figure, 0.00117426, does not follow from its formula.)
    rows = walk(legs("+10000 @ 65000", "-10000 @ 65500", instrument="BTC/USD:BTC", inverse=True))
    assert rows[-1] == (D(0), None, D(10000), D("0.001174398120963006"))


def test_inverse_contracts_of_100_usd_short():
    # Binance COIN-M BTCUSD_PERP, 100 USD a contract: short 12 @ 65000, bought back @ 66000:
    # −12·100·(1/65000 − 1/66000) = −1200·1000/(65000·66000) = −1200000/4290000000
    # = −0.000279720279720279|72... → −0.000279720279720280 (Binance shows −0.00027972).
    rows = walk(legs("-12 @ 65000", "+12 @ 66000", instrument="BTC/USD:BTC", inverse=True, size="100"))
    assert rows[-1][3] == D("-0.000279720279720280")


def test_inverse_flip():
    # +100 @ 50000, -300 @ 40000: closes 100 realizing 100·(1/50000 − 1/40000)
    # = 100·(−10000)/(2·10^9) = −0.0005 BTC; a short of 200 opens at 40000.
    rows = walk(legs("+100 @ 50000", "-300 @ 40000", instrument="BTC/USD:BTC", inverse=True))
    assert rows[-1] == (D(-200), D(40000), D(100), D("-0.0005"))


def test_option_premium_follows_the_linear_rule():
    # Deribit BTC call quoted in BTC: sold 1 @ 0.0125, bought back @ 0.013:
    # short closed: −1·1·(0.013 − 0.0125) = −0.0005 BTC, although it settles in BTC.
    rows = walk(legs("-1 @ 0.0125", "+1 @ 0.013", instrument="BTC/USD:BTC-261227-100000-C", type_="option", inverse=True))
    assert rows[-1] == (D(0), None, D(1), D("-0.0005"))


def test_the_walk_starts_from_the_carried_state():
    opening = state(("v", "a", "BTC/USDT:USDT", "2", "150"), ("v", "a", "ETH/USDT:USDT", "-3", "3000"))
    result = average_entry(legs("-1 @ 300"), opening)
    # 2 @ 150 carried; -1 @ 300 realizes 1·(300 − 150) = 150 and keeps 150.
    assert result.legs.select("position_after", "entry_price", "realized_pnl_computed").row(0) == (D(1), D(150), D(150))
    # ETH had no leg today: carried unchanged.
    assert result.positions.rows() == [("v", "a", "BTC/USDT:USDT", D(1), D(150)), ("v", "a", "ETH/USDT:USDT", D(-3), D(3000))]


def test_order_is_by_time_and_the_output_keeps_the_input_rows():
    frame = legs("+1 @ 100", "+1 @ 200", "-1 @ 300")
    shuffled = frame[[2, 0, 1]]
    out = average_entry(shuffled).legs
    assert out["leg_id"].to_list() == shuffled["leg_id"].to_list()
    assert out["realized_pnl_computed"].to_list() == [D(150), D(0), D(0)]


def test_legs_without_a_spec_are_refused():
    frame = legs("+1 @ 100").with_columns(contract_size=pl.lit(None, DECIMAL))
    with pytest.raises(ValueError, match="without a spec"):
        average_entry(frame)


@pytest.mark.parametrize(("n", "d", "q"), [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (10, 3, 3), (-10, 3, -3), (2, 3, 1)])
def test_round_half_even(n, d, q):
    assert round_half_even(n, d) == q


# ---------------------------------------------------------------------- properties

quantities = st.integers(min_value=-10**12, max_value=10**12).filter(bool).map(lambda n: D(n).scaleb(-8))
prices = st.integers(min_value=1, max_value=10**13).map(lambda n: D(n).scaleb(-4))


def frame_of(pairs, inverse=False, instrument="BTC/USDT:USDT"):
    return legs(*(f"{q} @ {p}" for q, p in pairs), inverse=inverse, instrument=instrument)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(quantities, prices), min_size=1, max_size=30), st.booleans(),
       st.lists(st.tuples(quantities, prices), max_size=10))
def test_position_is_the_sum_of_its_legs(pairs, inverse, other):
    frame = pl.concat([frame_of(pairs, inverse), frame_of(other, inverse, "ETH/USDT:USDT")])
    result = average_entry(frame)
    held = {i: q for _, _, i, q, _ in result.positions.iter_rows()}
    assert held["BTC/USDT:USDT"] == sum((q for q, _ in pairs), D(0))
    if other:
        assert held["ETH/USDT:USDT"] == sum((q for q, _ in other), D(0))
    flat = result.positions.filter(pl.col("qty") == 0)
    assert flat["entry_price"].null_count() == flat.height  # flat is exactly zero, and has no entry


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(quantities.map(abs), prices), min_size=1, max_size=20), st.booleans())
def test_inverse_average_entry_is_the_quantity_weighted_harmonic_mean(pairs, short):
    sign = -1 if short else 1
    frame = frame_of([(sign * q, p) for q, p in pairs], inverse=True, instrument="BTC/USD:BTC")
    entry = average_entry(frame).positions["entry_price"][0]
    exact = Fraction(sum(q for q, _ in pairs)) / sum(Fraction(q) / Fraction(p) for q, p in pairs)
    # Each re-averaging rounds by at most half a unit in the 18th place, i.e. a relative
    # error of 0.5e-18/E_k; the next average carries a relative error on by the factor
    # (b/E)/(b/E + q/p) <= 1, so the relative errors at most add up:
    # |entry − exact| <= exact · n · 0.5e-18 / min E_k, and every E_k >= the lowest price.
    lowest = min(Fraction(p) for _, p in pairs)
    assert abs(Fraction(entry) - exact) <= exact * len(pairs) / (2 * 10**18 * lowest)


@settings(max_examples=60, deadline=None)
@given(st.lists(quantities, min_size=1, max_size=20), prices, st.booleans())
def test_a_round_trip_at_one_price_realizes_exactly_zero(qtys, price, inverse):
    total = sum(qtys, D(0))
    pairs = [(q, price) for q in qtys] + ([(-total, price)] if total else [])
    result = average_entry(frame_of(pairs, inverse=inverse))
    assert result.positions["qty"][0] == 0
    assert all(pnl == 0 for pnl in result.legs["realized_pnl_computed"])


def test_timestamps_keep_their_zone():
    out = average_entry(legs("+1 @ 100")).legs
    assert out.schema["ts"] == pl.Datetime("us", "UTC") and out["ts"][0].tzinfo is not None
    assert out["ts"][0] == dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.timezone.utc)
