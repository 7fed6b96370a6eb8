"""Derivatives in ``utl.pnl`` and its explain (:mod:`utl.derivatives.pnl`), worked by hand.

The account ``binance/fut`` opens on D1 from a D0 snapshot (``daybook.py``); USDT is worth
1 USD, BTC 60000 USD on every date unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest

from tests.derivatives.daybook import (
    expired_option_day,
    D0, D1, D2, INVERSE, LINEAR, OPTION, VENUE, ACCOUNT, balances, day_inputs, fills, first_day,
    instrument_marks, marks, row,
)
from utl.checks import explain_ties
from utl.day import step
from utl.marks import MissingMark
from utl.schemas import DAY_LEGS
from utl.settings import Settings

BOOK = f"{VENUE}/{ACCOUNT}"


def line(out, asset: str) -> dict:
    return row(out.pnl, book=BOOK, asset=asset)


def test_a_linear_perpetual_over_two_days_in_pnl_and_the_explain() -> None:
    # D1 (fills only, opened from USDT 1000 and BTC 1): +3 @ 150, mark 200 → value = unrealized
    # 3·1·(200 − 150) = 150 USD; start 0 → change 150, trade residual 0, line total 150.
    # BTC and USDT are unchanged at their marks, so the book's PnL is 150 and the explain ties.
    state, out = first_day(derivative_fills=fills(D1, "+3 @ 150"), marks_today=instrument_marks(D1, **{LINEAR: "200"}))
    got = line(out, LINEAR)
    assert (got["market_value_start"], got["market_value_end"], got["unrealized_pnl"]) == (D(0), D(150), D(150))
    assert (got["unrealized_change"], got["trade_residual"], got["total_pnl"]) == (D(150), D(0), D(150))
    assert (got["realized_pnl"], got["income"], got["fees"], got["provisional"]) == (D(0), D(0), D(0), False)
    explain = out.pnl_explain.row(0, named=True)
    assert (explain["total_pnl"], explain["unrealized_change"], explain["unexplained"]) == (D(150), D(150), D(0))
    assert explain_ties(out.pnl_explain).passed
    # D2: -1 @ 300 realizes 1·(300 − 150) = 150 USDT (computed: income on the USDT line); mark
    # 250 → end value 2·(250 − 150) = 200; start is D1's end, 150, at D1's mark → change 50.
    # Book PnL 150 + 50 = 200 (the unit sold gained 300 − 200 = 100 since D1's mark, the two
    # kept 2·(250 − 200) = 100).
    _, out2 = step(D2, state, day_inputs(D2, derivative_fills=fills(D2, "-1 @ 300"),
                                         marks_before=instrument_marks(D1, **{LINEAR: "200"}),
                                         marks_today=instrument_marks(D2, **{LINEAR: "250"})), Settings())
    got = line(out2, LINEAR)
    assert got["market_value_start"] == line(out, LINEAR)["market_value_end"] == D(150)
    assert (got["market_value_end"], got["unrealized_pnl"], got["unrealized_change"], got["total_pnl"]) == (
        D(200), D(200), D(50), D(50))
    assert line(out2, "USDT")["income"] == D(150)
    explain = out2.pnl_explain.row(0, named=True)
    assert (explain["total_pnl"], explain["income"], explain["unrealized_change"], explain["unexplained"]) == (
        D(200), D(150), D(50), D(0))
    # utl.pnl's per-line totals of the book add up to the explain's total (no residual here).
    assert out2.pnl["total_pnl"].sum() + out2.pnl["trade_residual"].sum() == explain["total_pnl"]


def test_an_inverse_position_values_its_coin_pnl_at_the_coins_mark() -> None:
    # COIN-M 100 USD a contract: +100 @ 50000 on D1, mark 40000; BTC at 60000 USD.
    # Unrealized 100·100·(1/50000 − 1/40000) = 10000·(−10000)/(50000·40000) = −0.05 BTC
    # = −3000 USD. No cash moved: the book's PnL is −3000, all of it the instrument's line.
    _, out = first_day(derivative_fills=fills(D1, "+100 @ 50000", instrument=INVERSE),
                       marks_today=instrument_marks(D1, **{INVERSE: "40000"}))
    got = line(out, INVERSE)
    assert (got["market_value_end"], got["unrealized_pnl"], got["total_pnl"]) == (D(-3000), D(-3000), D(-3000))
    assert out.pnl_explain.row(0, named=True)["total_pnl"] == D(-3000)
    assert explain_ties(out.pnl_explain).passed


def test_an_option_of_a_ledger_account_holds_the_premium_it_paid() -> None:
    # A ledger account buys 2 calls @ 0.05 BTC (size 1): its ledger moves −0.1 BTC of premium
    # (a "trade" leg, worth −6000 USD at 60000: trade residual on the BTC line). Mark 0.06:
    # the option is worth 2·1·0.06 = 0.12 BTC = 7200 USD, unrealized 2·(0.06 − 0.05) = 0.02 BTC
    # = 1200 USD; the instrument's residual is 7200 − 1200 = 6000, the premium's counterpart.
    # Book: BTC 1 → 0.9 (−6000) + option 7200 = +1200 = the unrealized; the explain ties.
    premium = pl.DataFrame([{"venue": VENUE, "account": ACCOUNT, "leg_id": "premium", "ts": dt.datetime(
        2026, 12, 2, 9, tzinfo=dt.timezone.utc), "asset": "BTC", "qty": D("-0.1"), "kind": "trade", "trade_id": None,
        "price": None, "quote": None, "business_date": D1}], schema=DAY_LEGS)
    inputs = dataclasses.replace(
        day_inputs(D1, opening=balances(D0, USDT="1000", BTC="1"),
                   derivative_fills=fills(D1, "+2 @ 0.05", instrument=OPTION, source="ledger"),
                   marks_today=instrument_marks(D1, **{OPTION: "0.06"}), ledger=True),
        legs=premium)
    from utl.day import DayState
    _, out = step(D1, DayState.empty(D0), inputs, Settings())
    got = line(out, OPTION)
    assert (got["market_value_end"], got["unrealized_pnl"], got["trade_residual"], got["total_pnl"]) == (
        D(7200), D(1200), D(6000), D(1200))
    assert line(out, "BTC")["trade_residual"] == D(-6000)
    explain = out.pnl_explain.row(0, named=True)
    assert (explain["total_pnl"], explain["trade_residual"], explain["unexplained"]) == (D(1200), D(0), D(0))


def test_an_option_of_a_fills_only_account_is_worth_its_unrealized_pnl() -> None:
    # Fills only: a fill moves no cash (the premium's difference is realized, computed, on
    # closing), so the option's value is its unrealized PnL: 2·(0.06 − 0.05) = 0.02 BTC = 1200.
    _, out = first_day(derivative_fills=fills(D1, "+2 @ 0.05", instrument=OPTION),
                       marks_today=instrument_marks(D1, **{OPTION: "0.06"}))
    got = line(out, OPTION)
    assert (got["market_value_end"], got["unrealized_pnl"], got["trade_residual"]) == (D(1200), D(1200), D(0))
    assert out.pnl_explain.row(0, named=True)["total_pnl"] == D(1200)


def test_an_expired_option_leaves_its_value_to_the_cash_it_realized() -> None:
    # Fills only: +1 call @ 0.05 on D1; D2 mark 0.09 → value 1·(0.09 − 0.05) = 0.04 BTC = 2400.
    # D3 (expiry, no delivery): it closes at D3's mark 0.1, realizing 0.05 BTC = 3000 USD
    # (income on the BTC line); the instrument's line goes from 2400 to 0 (change −2400): the
    # book makes 600 = 1·(0.1 − 0.09) BTC at 60000.
    out = expired_option_day()
    got = line(out, OPTION)
    assert (got["market_value_start"], got["market_value_end"], got["unrealized_change"]) == (D(2400), D(0), D(-2400))
    assert line(out, "BTC")["income"] == D(3000)
    explain = out.pnl_explain.row(0, named=True)
    assert (explain["total_pnl"], explain["unexplained"]) == (D(600), D(0))


def test_a_position_opened_from_the_day_befores_file_starts_at_that_days_value() -> None:
    # The account opens on D1 from D0's positions file: +2 @ 100 with markPrice 120 → its start
    # value is 2·(120 − 100) = 40 (at D0's file mark, D0 having no marks/ row for it); D1 mark
    # 130 → end 60, change 20 = the day's PnL on 2 units (130 − 120).
    from tests.derivatives.daybook import positions
    _, out = first_day(positions_before=positions(D0, (LINEAR, "2", "100", "120")),
                       marks_today=instrument_marks(D1, **{LINEAR: "130"}))
    got = line(out, LINEAR)
    assert (got["market_value_start"], got["market_value_end"], got["unrealized_change"]) == (D(40), D(60), D(20))
    assert out.pnl_explain.row(0, named=True)["total_pnl"] == D(20)


def test_an_open_position_whose_settle_asset_has_no_mark_stops_the_date() -> None:
    # An inverse BTC position with no BTC mark: its PnL in USD is unknown, never zero.
    no_btc = marks(D1).filter(pl.col("asset") != "BTC")
    with pytest.raises(MissingMark, match="BTC"):
        first_day(opening=balances(D0, USDT="1000"), derivative_fills=fills(D1, "+100 @ 50000", instrument=INVERSE),
                  marks_today=pl.concat([no_btc, instrument_marks(D1, **{INVERSE: "40000"}).filter(
                      pl.col("asset") == INVERSE)]))


def test_a_book_without_derivatives_has_the_pnl_it_had() -> None:
    _, out = first_day()
    assert set(out.pnl["asset"]) <= {"USDT", "BTC"}


def _deribit_day_two(**kwargs):
    """The Deribit account of test_day_step's settlement test: +10000 @ 65000 (1 USD a
    contract, inverse, ledger account) on D1; returns D2's state and outputs."""
    from tests.derivatives.daybook import SPECS
    from utl.day import DayState
    deribit = SPECS.head(0).vstack(pl.DataFrame([{**SPECS.row(1, named=True), "venue": "deribit",
                                                  "contract_size": D(1)}], schema=SPECS.schema))
    specs = pl.concat([SPECS, deribit])
    ledger = pl.DataFrame({"venue": ["deribit"], "account": ["fut"]})

    def on(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(venue=pl.lit("deribit"))

    inputs = day_inputs(D1, derivative_fills=on(fills(D1, "+10000 @ 65000", instrument=INVERSE, source="ledger")),
                        marks_today=instrument_marks(D1, **{INVERSE: "65000"}), specs=specs,
                        opening=on(balances(D0, BTC="1")))
    state, _ = step(D1, DayState.empty(D0), dataclasses.replace(inputs, ledger_accounts=ledger), Settings())
    inputs = day_inputs(D2, marks_before=instrument_marks(D1, **{INVERSE: "65000"}),
                        marks_today=instrument_marks(D2, **{INVERSE: "66000"}), specs=specs,
                        **{k: on(v) for k, v in kwargs.items()})
    return step(D2, state, dataclasses.replace(inputs, ledger_accounts=ledger), Settings())


def test_the_session_reference_is_the_ledgers_settlement_price() -> None:
    # D2's ledger states the 08:00 settlement: Price 65500, Change 10000·(1/65000 − 1/65500)
    # = 0.001174398… BTC (realized, ledger's own figure here 0.00117). No positions file:
    # unrealized runs from 65500 at mark 66000: 10000·(1/65500 − 1/66000)
    # = 10000·500/(65500·66000) = 0.001156553… BTC; the entry stays 65000.
    from tests.derivatives.daybook import cash
    settlement = cash((dt.datetime(2026, 12, 3, 8, tzinfo=dt.timezone.utc), "settlement", INVERSE, "BTC", "0.00117"))
    after, out = _deribit_day_two(derivative_cash=settlement.with_columns(price=pl.lit(D(65500)).cast(settlement["price"].dtype)))
    got = row(out.derivative_positions, instrument=INVERSE)
    assert got["entry_price"] == D(65000) and got["venue_qty"] is None
    assert got["unrealized_pnl"] == (D(10000) * 500 / (D(65500) * 66000)).quantize(D("1e-18"))
    assert row(after.derivative_references, instrument=INVERSE)["entry_price"] == D(65500)


def test_the_ledgers_settlement_wins_over_the_positions_files() -> None:
    # The file says 65400, the ledger's row 65500: the ledger's (the cash it booked) is the reference.
    from tests.derivatives.daybook import cash, positions
    settlement = cash((dt.datetime(2026, 12, 3, 8, tzinfo=dt.timezone.utc), "settlement", INVERSE, "BTC", "0.00117"))
    after, _ = _deribit_day_two(
        derivative_cash=settlement.with_columns(price=pl.lit(D(65500)).cast(settlement["price"].dtype)),
        positions_today=positions(D2, (INVERSE, "10000", "65000", "66000"), settlement={INVERSE: D(65400)}))
    assert row(after.derivative_references, instrument=INVERSE)["entry_price"] == D(65500)
    # Without the ledger's price, the file's.
    after, _ = _deribit_day_two(
        derivative_cash=settlement,
        positions_today=positions(D2, (INVERSE, "10000", "65000", "66000"), settlement={INVERSE: D(65400)}))
    assert row(after.derivative_references, instrument=INVERSE)["entry_price"] == D(65400)
