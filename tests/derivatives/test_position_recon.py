"""Position reconciliation and utl.derivative_positions rows (utl.derivatives.recon)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest

from utl.derivatives.instruments import MissingSpec, read_specs
from utl.derivatives.recon import derivative_positions, find_position_breaks
from utl.derivatives.schemas import DAY_FLOWS, DERIVATIVE_POSITIONS, POSITION_BREAKS
from utl.derivatives.snapshots import read_positions
from utl.marks import MissingMark
from utl.settings import load_settings
from tests.derivatives.factory import decimals, state

DAY = dt.date(2026, 12, 5)
FIXTURES = Path(__file__).parent / "fixtures"
NO_BREAKS = POSITION_BREAKS.to_frame()


def snapshot(venue: str, account: str, fixture: str) -> pl.DataFrame:
    return read_positions((FIXTURES / fixture).read_text(), f"{venue}/{account}/positions/{DAY}.json", venue, account).positions


def reported(*accounts: tuple[str, str]) -> pl.DataFrame:
    return pl.DataFrame(accounts, schema={"venue": pl.String, "account": pl.String}, orient="row")


def ledger(*rows):
    return state(*rows).select("venue", "account", "instrument", "qty")


def test_tolerance_is_keyed_by_symbol_as_written_in_toml(tmp_path):
    (tmp_path / "utl.toml").write_text('[tolerance]\n"BTC/USDT:USDT" = "0.001"\n')
    tolerance = load_settings(tmp_path).tolerance
    venue = snapshot("binance", "mm", "binance_position_risk.json")  # BTC 0.25, ETH future -1.5
    within = ledger(("binance", "mm", "BTC/USDT:USDT", "0.2509", None), ("binance", "mm", "ETH/USDT:USDT-261225", "-1.5", None))
    assert find_position_breaks(DAY, within, venue, reported(("binance", "mm")), tolerance, NO_BREAKS).height == 0
    beyond = ledger(("binance", "mm", "BTC/USDT:USDT", "0.2511", None), ("binance", "mm", "ETH/USDT:USDT-261225", "-1.5", None))
    breaks = find_position_breaks(DAY, beyond, venue, reported(("binance", "mm")), tolerance, NO_BREAKS)
    # 0.25 − 0.2511 = −0.0011, beyond 0.001.
    assert breaks.select("asset", "ledger_qty", "venue_qty", "diff", "tolerance", "kind", "subject").rows() == [
        ("BTC/USDT:USDT", D("0.2511"), D("0.25"), D("-0.0011"), D("0.001"), "qty_mismatch", "position")]


def test_kinds_and_accounts_without_a_file():
    venue = snapshot("deribit", "main", "deribit_get_positions.json")  # perp 50, option -1, future -1000
    held = ledger(
        ("deribit", "main", "BTC/USD:BTC", "50", None),
        ("deribit", "main", "ETH/USD:ETH", "10", None),  # the venue does not list it
        ("okx", "m", "BTC/USDT:USDT", "5", None),  # okx/m has no positions file today: not reconciled
        ("bybit", "b", "BTC/USD:BTC", "-300", None),  # bybit/b's file lists nothing
    )
    breaks = find_position_breaks(DAY, held, venue, reported(("deribit", "main"), ("bybit", "b")), {}, NO_BREAKS)
    assert breaks.select("venue", "asset", "kind", "diff").sort("venue", "asset").rows() == [
        ("bybit", "BTC/USD:BTC", "missing_at_venue", D(300)),
        ("deribit", "BTC/USD:BTC-261227", "missing_in_ledger", D(-1000)),
        ("deribit", "BTC/USD:BTC-261227-100000-C", "missing_in_ledger", D(-1)),
        ("deribit", "ETH/USD:ETH", "missing_at_venue", D(-10)),
    ]
    assert set(breaks["subject"]) == {"position"}


def test_first_seen_carries_only_position_breaks():
    earlier = dt.date(2026, 12, 1)
    previous = pl.DataFrame([
        {"business_date": DAY - dt.timedelta(days=1), "venue": "bybit", "account": "b", "asset": "BTC/USD:BTC",
         "ledger_qty": D(-300), "venue_qty": D(0), "diff": D(300), "tolerance": D(0), "first_seen": earlier,
         "kind": "missing_at_venue", "mark": None, "diff_value": None, "subject": "position"},
    ], schema=POSITION_BREAKS)
    held = ledger(("bybit", "b", "BTC/USD:BTC", "-300", None))
    breaks = find_position_breaks(DAY, held, snapshot("bybit", "b", "bybit_position_list_linear.json"),
                                  reported(("bybit", "b")), {}, previous)
    assert breaks.filter(pl.col("asset") == "BTC/USD:BTC")["first_seen"].to_list() == [earlier]
    # ETH/USDT:USDT (venue +1.5, ledger nothing) is new today.
    assert breaks.filter(pl.col("asset") == "ETH/USDT:USDT")["first_seen"].to_list() == [DAY]


SPECS = read_specs("""venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type
,BTC/USDT:USDT,swap,USDT,1,,,,
,ETH/USDT:USDT-261225,future,USDT,1,,,,
deribit,BTC/USD:BTC,swap,BTC,1,,,,
,BTC/USD:BTC-261227,future,BTC,1,,,,
,BTC/USD:BTC-261227-100000-C,option,BTC,1,,,,
""", "instruments/2026-12-05.csv").specs
ASSET_MARKS = decimals(asset=["BTC", "ETH", "USDT", "USD"], mark=["66000", "3400", "1", "1"])
NO_FLOWS = DAY_FLOWS.to_frame()


def test_the_table_row_per_open_instrument():
    venue = snapshot("binance", "mm", "binance_position_risk.json")
    held = state(
        ("binance", "mm", "BTC/USDT:USDT", "0.25", "65000"),
        ("binance", "mm", "ETH/USDT:USDT-261225", "0", None),  # flat in the ledger, -1.5 at the venue
    )
    instrument_marks = decimals(instrument=["BTC/USDT:USDT"], mark=["66100"])  # wins over markPrice 66000
    flows = decimals(venue=["binance"], account=["mm"], instrument=["BTC/USDT:USDT"],
                     realized_pnl=["12.5"], funding=["-0.4213"], fees=["0.26"])
    table = derivative_positions(DAY, held, venue, reported(("binance", "mm")), SPECS, instrument_marks, ASSET_MARKS, flows)
    assert table.schema == DERIVATIVE_POSITIONS
    btc, eth = table.sort("instrument").iter_rows(named=True)
    # 0.25·(66100 − 65000) = 275 USDT; delta 0.25 BTC = 16500 USD.
    assert (btc["qty"], btc["venue_qty"], btc["entry_price"], btc["venue_entry_price"], btc["mark"]) == (
        D("0.25"), D("0.25"), D(65000), D("65000.5"), D(66100))
    assert (btc["unrealized_pnl"], btc["unrealized_pnl_usd"], btc["delta"], btc["delta_usd"]) == (D(275), D(275), D("0.25"), D(16500))
    assert (btc["realized_pnl"], btc["funding"], btc["fees"], btc["type"], btc["settle_asset"]) == (
        D("12.5"), D("-0.4213"), D("0.26"), "swap", "USDT")
    # Ledger-flat ETH future: listed because the venue holds it; entry and PnL null; the
    # venue's mark 3420 is used (no marks-file row); no flows that day: zero.
    assert (eth["qty"], eth["venue_qty"], eth["entry_price"], eth["unrealized_pnl"], eth["mark"], eth["funding"]) == (
        D(0), D("-1.5"), None, None, D(3420), D(0))


def test_without_a_positions_file_the_venue_columns_are_null_and_unlisted_is_zero():
    held = state(("binance", "mm", "BTC/USDT:USDT", "0.25", "65000"), ("okx", "m", "BTC/USDT:USDT", "1", "65000"))
    marks = decimals(instrument=["BTC/USDT:USDT"], mark=["66000"])
    empty = snapshot("binance", "mm", "binance_position_risk.json").clear()
    table = derivative_positions(DAY, held, empty, reported(("binance", "mm")), SPECS, marks, ASSET_MARKS, NO_FLOWS)
    by_venue = {r["venue"]: r for r in table.iter_rows(named=True)}
    assert (by_venue["binance"]["venue_qty"], by_venue["binance"]["venue_entry_price"]) == (D(0), None)  # file, not listed
    assert (by_venue["okx"]["venue_qty"], by_venue["okx"]["venue_entry_price"]) == (None, None)  # no file


def test_an_open_position_without_a_mark_or_a_spec_stops_the_date():
    held = state(("okx", "m", "BTC/USDT:USDT", "1", "65000"))
    no_marks = decimals(instrument=[], mark=[])
    empty = snapshot("okx", "m", "okx_positions_list.json").clear()
    with pytest.raises(MissingMark, match="BTC/USDT:USDT"):
        derivative_positions(DAY, held, empty, reported(), SPECS, no_marks, ASSET_MARKS, NO_FLOWS)
    unknown = state(("okx", "m", "SOL/USDT:USDT", "1", "150"))
    with pytest.raises(MissingSpec, match="okx/m SOL/USDT:USDT"):
        derivative_positions(DAY, unknown, empty, reported(), SPECS, no_marks, ASSET_MARKS, NO_FLOWS)
