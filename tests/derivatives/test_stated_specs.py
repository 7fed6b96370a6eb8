"""Specs the exports state, for instruments the ``instruments/`` file in force lacks
(derivatives.md: "specs ... from what the exports state"), worked by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest

from tests.derivatives.daybook import D0, D1, SPECS, balances, fills, first_day, instrument_marks, positions, row
from utl.derivatives.instruments import MissingSpec, stated_specs

ETH_PERP = "ETH/USDT:USDT"  # not in daybook's SPECS
COINM_DEC = "BTC/USD:BTC-261231"  # nor this one
OKX_FUT = "BTC/USDT:USDT-261231"


def on(frame: pl.DataFrame, venue: str) -> pl.DataFrame:
    return frame.with_columns(venue=pl.lit(venue))


def test_binance_usdm_states_a_size_of_one_base_unit() -> None:
    # Binance USDⓈ-M counts base quantity: size 1. +2 @ 3000, mark 3100 → unrealized
    # 2·1·(3100 − 3000) = 200 USDT = 200 USD; delta 2·1 = 2 ETH (no ETH mark: delta_usd null).
    _, out = first_day(derivative_fills=fills(D1, "+2 @ 3000", instrument=ETH_PERP),
                       marks_today=instrument_marks(D1, **{ETH_PERP: "3100"}))
    got = row(out.derivative_positions, instrument=ETH_PERP)
    assert (got["contract_size"], got["type"], got["settle_asset"], got["unrealized_pnl"]) == (D(1), "swap", "USDT", D(200))


def test_binance_coinm_states_100_usd_for_btc_and_the_symbol_its_expiry() -> None:
    # COIN-M BTC contracts are 100 USD: +10 @ 50000, mark 40000 → 10·100·(1/50000 − 1/40000)
    # = 1000·(−10000)/(50000·40000) = −0.005 BTC (= −300 USD at 60000); the expiry 2026-12-31
    # comes from the symbol.
    _, out = first_day(derivative_fills=fills(D1, "+10 @ 50000", instrument=COINM_DEC),
                       marks_today=instrument_marks(D1, **{COINM_DEC: "40000"}))
    got = row(out.derivative_positions, instrument=COINM_DEC)
    assert (got["contract_size"], got["type"], got["settle_asset"]) == (D(100), "future", "BTC")
    assert (got["unrealized_pnl"], got["unrealized_pnl_usd"]) == (D("-0.005"), D(-300))


def test_a_positions_row_states_the_size_where_the_venue_has_no_unit() -> None:
    # OKX counts contracts of ctVal each; its positions file (ccxt's contractSize) states 0.01.
    # +3 contracts @ 60000, mark 61000 → 3·0.01·(61000 − 60000) = 30 USDT.
    file = on(positions(D1, (OKX_FUT, "3", "60000", "61000")), "okx").with_columns(
        contract_size=pl.lit(D("0.01")).cast(SPECS["contract_size"].dtype))
    _, out = first_day(derivative_fills=on(fills(D1, "+3 @ 60000", instrument=OKX_FUT), "okx"),
                       opening=on(balances(D0, USDT="1000"), "okx"), positions_today=file)
    got = row(out.derivative_positions, instrument=OKX_FUT)
    assert (got["contract_size"], got["unrealized_pnl"], got["venue_qty"]) == (D("0.01"), D(30), D(3))


def test_rows_stating_different_sizes_state_none() -> None:
    # Two OKX accounts' files disagree (0.01 and 0.1): neither is used, the date stops.
    a = on(positions(D1, (OKX_FUT, "3", "60000", "61000")), "okx").with_columns(
        contract_size=pl.lit(D("0.01")).cast(SPECS["contract_size"].dtype))
    b = on(positions(D1, (OKX_FUT, "3", "60000", "61000"), account="other"), "okx").with_columns(
        contract_size=pl.lit(D("0.1")).cast(SPECS["contract_size"].dtype))
    with pytest.raises(MissingSpec, match=r"okx/fut BTC/USDT:USDT-261231"):
        first_day(derivative_fills=on(fills(D1, "+3 @ 60000", instrument=OKX_FUT), "okx"),
                  opening=pl.concat([on(balances(D0, USDT="1000"), "okx"),
                                     on(balances(D0, USDT="1000"), "okx").with_columns(account=pl.lit("other"))]),
                  positions_today=pl.concat([a, b]))


def test_deribits_ccxt_size_is_not_its_position_unit() -> None:
    # ccxt's Deribit markets count 10 USD a contract where Deribit's positions count USD (size
    # 1): the row's 10 is passed over for the venue's unit, 1.
    wanted = pl.DataFrame({"venue": ["deribit"], "instrument": ["BTC/USD:BTC"], "source_file": ["t.csv"],
                           "source_row": [1]})
    stated = pl.DataFrame({"venue": ["deribit"], "instrument": ["BTC/USD:BTC"], "contract_size": [D(10)],
                           "source_file": ["deribit/m/positions/x.json"], "source_row": [1]},
                          schema_overrides={"contract_size": SPECS["contract_size"].dtype})
    [spec] = stated_specs(D1, wanted, SPECS.clear(), stated).to_dicts()
    assert (spec["venue"], spec["contract_size"], spec["inverse"], spec["settle"], spec["source_file"]) == (
        "deribit", D(1), True, "BTC", "t.csv")


def test_the_instruments_file_wins_over_what_the_exports_state() -> None:
    # SPECS gives BTC/USD:BTC 100 for every venue: nothing is stated for it, on any venue.
    wanted = pl.DataFrame({"venue": ["deribit", "binance"], "instrument": ["BTC/USD:BTC"] * 2,
                           "source_file": ["a", "b"], "source_row": [1, 1]})
    stated = pl.DataFrame(schema={"venue": pl.String, "instrument": pl.String, "contract_size": SPECS["contract_size"].dtype,
                                  "source_file": pl.String, "source_row": pl.Int64})
    assert stated_specs(D1, wanted, SPECS, stated).height == 0
    assert dt.date(2026, 12, 31) == stated_specs(D1, wanted.with_columns(instrument=pl.lit(COINM_DEC)), SPECS,
                                                 stated)["expiry"][0]
