"""One source of instrument legs per account, the same on every date (derivatives.md)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import polars as pl

from tests.derivatives.daybook import D1, LINEAR, VENUE, ACCOUNT, day_inputs, fills, instrument_marks, row, balances, D0
from utl.day import DayState, step
from utl.settings import Settings
from utl.venues.contracts import LEDGER_TRADE_FORMATS, ledger_trade_accounts

ME = pl.DataFrame({"venue": [VENUE], "account": [ACCOUNT]})


def _day(ledger_trades: bool, *frames: pl.DataFrame):
    inputs = day_inputs(D1, opening=balances(D0, USDT="1000"), derivative_fills=pl.concat(frames),
                        marks_today=instrument_marks(D1, **{LINEAR: "100"}), ledger=True)
    if ledger_trades:
        inputs = dataclasses.replace(inputs, ledger_trade_accounts=ME)
    return step(D1, DayState.empty(D0), inputs, Settings())


def test_a_ledger_that_states_trades_is_the_source_even_on_a_day_it_states_none() -> None:
    # The account's ledger (a Deribit-like log) states its trades; today it states none and
    # the trades export has +5 @ 100. Per account, the ledger is the source: nothing books,
    # the position stays flat (a break shows against the positions file if the venue holds 5).
    # Decided per day, the export's +5 would have booked.
    _, out = _day(True, fills(D1, "+5 @ 100"))
    assert out.derivative_positions.height == 0
    _, per_day = _day(False, fills(D1, "+5 @ 100"))
    assert row(per_day.derivative_positions, instrument=LINEAR)["qty"] == D(5)


def test_a_ledger_that_states_trades_books_them_and_not_the_exports() -> None:
    # Both on the same day: the ledger's +1 @ 100 books, the export's +5 @ 100 does not.
    _, out = _day(True, fills(D1, "+5 @ 100"), fills(D1, "+1 @ 100", source="ledger"))
    assert row(out.derivative_positions, instrument=LINEAR)["qty"] == D(1)


def test_which_ledger_formats_state_derivative_trades() -> None:
    files = pl.DataFrame({
        "venue": ["deribit", "binance", "binance", "okx", "bybit"],
        "account": ["main", "futures", "futures", "trading", "api"],
        "format": ["deribit.transaction_log", "binance.futures_transactions", "binance.futures_trades",
                   "okx.trading_account", "bybit.fund_asset_changes"],
    })
    # Binance's futures ledgers state cash only (its fills come from the trades export); Bybit's
    # funding log holds no trades; OKX's trading account history and Deribit's log do.
    assert ledger_trade_accounts(files).rows() == [("deribit", "main"), ("okx", "trading")]
    assert "binance.transactions" not in LEDGER_TRADE_FORMATS
