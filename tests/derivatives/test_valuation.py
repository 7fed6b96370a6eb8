"""Valuation (utl.derivatives.valuation): unrealized PnL, delta, session reference, expiry,
and the business date of a funding stamp; worked examples checked by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest

from utl.decimals import DECIMAL
from utl.derivatives.schemas import DELIVERIES
from utl.derivatives.valuation import (
    MissingExpiryPrice, business_date_of, expire_positions, session_entry, session_settled, value_positions,
)
from tests.derivatives.factory import decimals, legs, state

UTC = dt.timezone.utc
MARKS = decimals(asset=["BTC", "USDT", "USD"], mark=["66000", "0.9998", "1"])


def position(instrument, qty, entry, mark, *, type_="swap", inverse=False, size="1", base="BTC", settle="USDT",
             snapshot_delta=None, reference_price=None):
    return decimals(
        venue=["v"], account=["a"], instrument=[instrument], qty=[qty], entry_price=[entry], mark=[mark],
        type=[type_], inverse=[inverse], contract_size=[size], base=[base], settle=[settle],
        snapshot_delta=[snapshot_delta], reference_price=[reference_price],
    )


def valued(frame):
    return value_positions(frame, MARKS).row(0, named=True)


def test_linear_unrealized_delta_and_reporting_currency():
    # Binance BTCUSDT: 0.25 BTC from 65000.5, mark 66000: 0.25·(66000 − 65000.5) = 249.875 USDT
    # (what positionRisk states as unRealizedProfit). Delta 0.25 BTC, at 66000 = 16500 USD;
    # the PnL at USDT's mark 0.9998: 249.875·0.9998 = 249.825025 USD.
    row = valued(position("BTC/USDT:USDT", "0.25", "65000.5", "66000"))
    assert (row["unrealized_pnl"], row["delta"], row["delta_usd"], row["unrealized_pnl_usd"]) == (
        D("249.875"), D("0.25"), D(16500), D("249.825025"))


def test_inverse_unrealized_and_delta():
    # Long $10,000 of BTC/USD:BTC from 65000, mark 65500:
    # 10000·(1/65000 − 1/65500) = 5000000/4257500000 = 0.001174398120963006|459 BTC.
    # Delta 10000/65500 = 0.152671755725190839|69 → 0.152671755725190840 BTC.
    row = valued(position("BTC/USD:BTC", "10000", "65000", "65500", inverse=True, settle="BTC"))
    assert row["unrealized_pnl"] == D("0.001174398120963006")
    assert row["delta"] == D("0.152671755725190840")
    # At BTC's mark of 66000 USD: 0.001174398120963006·66000 = 77.510275983558396 USD.
    assert row["unrealized_pnl_usd"] == D("77.510275983558396")


def test_inverse_matches_the_venues_own_figure():
    # Bybit's documented reply: Sell 300 BTCUSD from 27464.50441675, mark 28224.50, unrealisedPnl
    # −0.00029413 (8 places). −300·(1/27464.50441675 − 1/28224.50) = −0.000294126597636825|57.
    row = valued(position("BTC/USD:BTC", "-300", "27464.50441675", "28224.50", inverse=True, settle="BTC"))
    assert row["unrealized_pnl"] == D("-0.000294126597636826")
    assert abs(row["unrealized_pnl"] - D("-0.00029413")) < D("0.000000005")


def test_option_is_marked_minus_premium_and_takes_the_snapshots_delta():
    # Deribit: short 1 BTC call sold @ 0.0125 BTC, mark 0.013: −1·1·0.013 − (−1·1·0.0125)
    # = −0.0005 BTC (get_positions states floating_profit_loss −0.0005). Delta −0.31 from the
    # snapshot; −0.31 BTC at 66000 = −20460 USD.
    row = valued(position("BTC/USD:BTC-261227-100000-C", "-1", "0.0125", "0.013", type_="option", inverse=True,
                          settle="BTC", snapshot_delta="-0.31", reference_price="0.0128"))
    assert (row["unrealized_pnl"], row["delta"], row["delta_usd"]) == (D("-0.0005"), D("-0.31"), D(-20460))
    # An option's session settlement price is no reference: the premium is.
    assert row["reference_price"] == D("0.0125")


def test_option_without_a_stated_delta_has_none():
    row = valued(position("BTC/USD:BTC-261227-100000-C", "1", "0.0125", "0.013", type_="option", inverse=True, settle="BTC"))
    assert row["delta"] is None and row["delta_usd"] is None


def test_settled_sessions_run_from_the_settlement_price():
    # Deribit get_positions: 50 USD of BTC-PERPETUAL, average 7440.18, last settlement 7476.65,
    # mark 7476.65: 50·(1/7476.65 − 1/7476.65) = 0, as floating_profit_loss says, while
    # 50·(1/7440.18 − 1/7476.65) would not be.
    row = valued(position("BTC/USD:BTC", "50", "7440.18", "7476.65", inverse=True, settle="BTC", reference_price="7476.65"))
    assert (row["unrealized_pnl"], row["entry_price"]) == (D(0), D("7440.18"))


def test_a_flat_row_has_no_pnl_and_no_delta():
    row = valued(position("BTC/USDT:USDT", "0", None, "66000"))
    assert (row["unrealized_pnl"], row["delta"], row["delta_usd"]) == (None, D(0), D(0))


def test_no_mark_for_the_settle_asset_leaves_reporting_values_unpriced():
    row = value_positions(position("ETH/USDC:USDC", "2", "3000", "3100", base="ETH", settle="USDC"), MARKS).row(0, named=True)
    # 2·(3100 − 3000) = 200 USDC, but no USDC and no ETH mark: null, never zero.
    assert (row["unrealized_pnl"], row["unrealized_pnl_usd"], row["delta"], row["delta_usd"]) == (D(200), None, D(2), None)


def test_session_entry_restarts_at_the_settlement_and_reaverages():
    # Carried: 10000 USD @ 65000. 07:00 +5000 @ 64000 (before the settlement), 08:00
    # settlement at 65500, 09:00 +10000 @ 66000. At settlement: 15000 @ 65500; then
    # 25000 / (15000/65500 + 10000/66000) = 25·65500·66000 / (15·66000 + 10·65500)
    # = 108075000000 / 1645000 = 65699.088145896656534954|4 → ...534954.
    day_legs = legs("+5000 @ 64000", "+10000 @ 66000", instrument="BTC/USD:BTC", inverse=True).with_columns(
        ts=pl.Series([dt.datetime(2026, 12, 5, 7, tzinfo=UTC), dt.datetime(2026, 12, 5, 9, tzinfo=UTC)]))
    opening = state(("v", "a", "BTC/USD:BTC", "10000", "65000"))
    settlements = pl.DataFrame({"venue": ["v"], "account": ["a"], "instrument": ["BTC/USD:BTC"],
                                "ts": [dt.datetime(2026, 12, 5, 8, tzinfo=UTC)], "price": [D(65500)]},
                               schema_overrides={"price": DECIMAL})
    ref = session_entry(day_legs, opening, settlements)
    assert ref.rows() == [("v", "a", "BTC/USD:BTC", D(25000), D("65699.088145896656534954"))]


def test_which_venues_settle_sessions():
    frame = pl.DataFrame({"venue": ["deribit", "deribit", "bybit", "bybit", "binance"],
                          "type": ["swap", "option", "future", "swap", "swap"],
                          "settle": ["BTC", "BTC", "USDC", "USDT", "USDT"]})
    assert frame.select(session_settled(pl.col("venue"), pl.col("type"), pl.col("settle")))[:, 0].to_list() == [
        True, False, True, False, False]


def test_funding_at_midnight_belongs_to_the_day_that_starts_then():
    # Binance's ledger example: "24-03-06 00:00:00 ... Funding Fee" is 2024-03-06's.
    stamps = pl.Series([
        dt.datetime(2024, 3, 6, 0, 0, 0, tzinfo=UTC),
        dt.datetime(2024, 3, 5, 23, 59, 59, 999999, tzinfo=UTC),
        dt.datetime(2024, 3, 6, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),  # 00:00 UTC
    ]).dt.convert_time_zone("UTC")
    assert pl.DataFrame({"ts": stamps}).select(business_date_of(pl.col("ts")))["ts"].to_list() == [
        dt.date(2024, 3, 6), dt.date(2024, 3, 5), dt.date(2024, 3, 6)]


# ---------------------------------------------------------------------- expiry

EXPIRY_DAY = dt.date(2026, 12, 27)


def expiring(qty="-1000"):
    return state(("deribit", "main", "BTC/USD:BTC-261227", qty, "66000")).with_columns(expiry=pl.lit(EXPIRY_DAY))


def test_expiry_closes_at_the_delivery_row():
    deliveries = pl.DataFrame({"venue": ["deribit"], "account": ["main"], "instrument": ["BTC/USD:BTC-261227"],
                               "ts": [dt.datetime(2026, 12, 27, 8, tzinfo=UTC)], "price": [D("67000")]}, schema=DELIVERIES)
    close, breaks = expire_positions(EXPIRY_DAY, expiring(), deliveries, decimals(instrument=["BTC/USD:BTC-261227"], mark=["66900"]))
    # Short 1000 closes with +1000 at the delivery price, not the mark; no break.
    assert close.select("qty", "price", "kind").rows() == [(D(1000), D(67000), "delivery")]
    assert breaks.height == 0


def test_expiry_without_delivery_closes_at_the_mark_with_a_break():
    close, breaks = expire_positions(EXPIRY_DAY, expiring(), DELIVERIES.to_frame(),
                                     decimals(instrument=["BTC/USD:BTC-261227"], mark=["66900"]))
    assert close.select("ts", "qty", "price", "kind").rows() == [
        (dt.datetime(2026, 12, 27, 8, tzinfo=UTC), D(1000), D(66900), "expiry")]
    assert breaks.select("asset", "kind", "subject", "ledger_qty", "venue_qty").rows() == [
        ("BTC/USD:BTC-261227", "expiry_without_delivery", "position", D(-1000), D(0))]


def test_not_yet_expired_is_left_open_and_no_price_stops_the_date():
    close, breaks = expire_positions(EXPIRY_DAY - dt.timedelta(days=1), expiring(), DELIVERIES.to_frame(),
                                     decimals(instrument=[], mark=[]))
    assert close.height == 0 and breaks.height == 0
    with pytest.raises(MissingExpiryPrice, match="BTC/USD:BTC-261227"):
        expire_positions(EXPIRY_DAY, expiring(), DELIVERIES.to_frame(), decimals(instrument=[], mark=[]))
