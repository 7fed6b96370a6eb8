"""Instruments (utl.derivatives.instruments): ccxt symbols and the specs files."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import polars as pl
import pytest

from utl.derivatives.instruments import (
    MissingSpec, missing_specs, parse_symbol, parse_symbols, read_specs, read_specs_file, require_specs, resolve_specs,
)
from tests.derivatives.factory import decimals

FILE = "instruments/2026-12-05.csv"


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("BTC/USDT:USDT", dict(base="BTC", quote="USDT", settle="USDT", type="swap", inverse=False, expiry=None, strike=None, option_type=None)),
        ("BTC/USD:BTC", dict(base="BTC", quote="USD", settle="BTC", type="swap", inverse=True, expiry=None, strike=None, option_type=None)),
        ("BTC/USDT:USDT-261225", dict(base="BTC", quote="USDT", settle="USDT", type="future", inverse=False,
                                      expiry=dt.date(2026, 12, 25), strike=None, option_type=None)),
        ("BTC/USD:BTC-261225-100000-C", dict(base="BTC", quote="USD", settle="BTC", type="option", inverse=True,
                                             expiry=dt.date(2026, 12, 25), strike=D("100000"), option_type="call")),
        ("XRP/USDC:USDC-261227-0.5-P", dict(base="XRP", quote="USDC", settle="USDC", type="option", inverse=False,
                                            expiry=dt.date(2026, 12, 27), strike=D("0.5"), option_type="put")),
        ("1000PEPE/USDT:USDT", dict(base="1000PEPE", quote="USDT", settle="USDT", type="swap", inverse=False,
                                    expiry=None, strike=None, option_type=None)),
        # Settles in neither base nor quote (a quanto): the symbol cannot say; a spec must.
        ("ETH/USD:USDC", dict(base="ETH", quote="USD", settle="USDC", type="swap", inverse=None, expiry=None, strike=None, option_type=None)),
    ],
)
def test_symbols_parse(symbol, expected):
    assert parse_symbol(symbol) == {"symbol": symbol, **expected}


def test_a_strike_is_exact():
    # 0.1 has no exact float; the strike keeps the written digits.
    assert parse_symbol("DOGE/USDT:USDT-261227-0.1-C")["strike"] == D("0.1")


@pytest.mark.parametrize(
    ("symbol", "why"),
    [("BTC/USDT", "not a ccxt derivative symbol"), ("BTCUSDT", "not a ccxt derivative symbol"),
     ("BTC/USDT:USDT-261332", "expiry 261332 is not a date"), ("BTC/USD:BTC-261225-100000-X", "not a ccxt derivative symbol")],
)
def test_bad_symbols_say_why(symbol, why):
    problem = parse_symbols(pl.Series([symbol]))["problem"][0]
    assert why in problem and symbol in problem


CSV = """venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type
,BTC/USDT:USDT,swap,USDT,1,false,,,
binance,BTC/USD:BTC,swap,BTC,100,true,,,
deribit,BTC/USD:BTC,,,1,,,,
,BTC/USD:BTC-261225-100000-C,option,BTC,1,,2026-12-25,100000,C
,ETH/USDT:USDT,swap,USDT,1.5e0,,,,
"""


def test_csv_specs_read_exactly_and_fill_from_the_symbol():
    rows = read_specs(CSV, FILE)
    assert rows.quarantine.height == 0
    specs = rows.specs.sort("source_row")
    assert specs["venue"].to_list() == [None, "binance", "deribit", None, None]
    assert specs["contract_size"].to_list() == [D(1), D(100), D(1), D(1), D("1.5")]
    # Row 3 left type, settle and inverse empty: the symbol says swap, BTC, inverse.
    third = specs.row(2, named=True)
    assert (third["type"], third["settle"], third["inverse"]) == ("swap", "BTC", True)
    option = specs.row(3, named=True)
    assert (option["expiry"], option["strike"], option["option_type"]) == (dt.date(2026, 12, 25), D(100000), "call")


BAD_CSV = """venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type
,BTC/USDT:USDT,swap,USDT,1,,,,
,ETH/USDT:USDT,swap,USDT,abc,,,,
,SOL/USDT:USDT,perpetual,USDT,1,,,,
,BTC/USDT:USDT-261225,future,USDT,1,maybe,2026-12-26,,
,ADA/USDT:USDT,swap,USDT,,,,,
,ETH/USD:USDC,swap,USDC,1,,,,
,BTC/USDT,swap,USDT,1,,,,
,XRP/USDT:USDT,swap,BTC,1,,,,
,DOT/USDT:USDT,swap,USDT,-1,,,,
,LTC/USDT:USDT,swap,USDT,1,,,,
binance,LTC/USDT:USDT,swap,USDT,1,,,,
binance,LTC/USDT:USDT,swap,USDT,2,,,,
"""


def test_bad_csv_rows_are_quarantined_by_row_and_column():
    rows = read_specs(BAD_CSV, FILE)
    found = {(r["row"], r["column"]) for r in rows.quarantine.iter_rows(named=True)}
    assert found == {
        (2, "contract_size"),  # "abc"
        (3, "type"),  # "perpetual"
        (4, "inverse"), (4, "expiry"),  # "maybe"; 2026-12-26 against the symbol's 261225
        (5, "contract_size"),  # empty
        (6, "inverse"),  # a quanto without an inverse flag
        (7, "symbol"),  # spot
        (8, "settle"),  # BTC against the symbol's USDT
        (9, "contract_size"),  # negative
        (11, "symbol"), (12, "symbol"),  # one venue's spec twice: neither is used
    }
    assert set(rows.quarantine["file"]) == {FILE}
    reason = rows.quarantine.filter((pl.col("row") == 2) & (pl.col("column") == "contract_size"))["reason"][0]
    assert '"abc" is not an exact decimal' == reason
    # The good rows are used: row 1 and row 10 (the every-venue LTC spec).
    assert sorted(rows.specs["source_row"].to_list()) == [1, 10]


def test_a_csv_with_another_header_is_one_entry():
    rows = read_specs("symbol,size\nBTC/USDT:USDT,1\n", FILE)
    assert rows.specs.height == 0
    assert rows.quarantine.select("row", "column").row(0) == (None, None)
    assert "unknown header" in rows.quarantine["reason"][0]


MARKETS = [
    {"id": "BTCUSDT", "symbol": "BTC/USDT:USDT", "base": "BTC", "quote": "USDT", "settle": "USDT", "type": "swap",
     "spot": False, "swap": True, "contract": True, "linear": True, "inverse": False, "contractSize": 1,
     "expiry": None, "expiryDatetime": None, "strike": None, "optionType": None},
    {"id": "BTCUSD_PERP", "symbol": "BTC/USD:BTC", "base": "BTC", "quote": "USD", "settle": "BTC", "type": "swap",
     "contract": True, "linear": False, "inverse": True, "contractSize": 100, "expiry": None},
    {"id": "BTC-261225-100000-C", "symbol": "BTC/USD:BTC-261225-100000-C", "type": "option", "contract": True,
     "linear": False, "inverse": True, "contractSize": 1, "expiry": 1798185600000, "strike": 100000, "optionType": "call"},
    {"id": "BTCUSDT", "symbol": "BTC/USDT", "type": "spot", "contract": False, "contractSize": None},
    {"id": "ETHUSDT", "symbol": "ETH/USDT:USDT", "type": "swap", "contract": True, "linear": True, "contractSize": None},
]


def _markets_text(markets) -> str:
    # contractSize 0.001 written as a JSON number: read as its text, never a float.
    return json.dumps(markets).replace('"contractSize": 1,', '"contractSize": 0.001,', 1)


@pytest.mark.parametrize("as_dict", [False, True])
def test_ccxt_markets_json_list_or_dict(as_dict):
    data = {m["symbol"]: m for m in MARKETS} if as_dict else MARKETS
    rows = read_specs(_markets_text(data), "instruments/2026-12-05.json")
    specs = rows.specs.sort("source_row")
    assert specs["symbol"].to_list() == ["BTC/USDT:USDT", "BTC/USD:BTC", "BTC/USD:BTC-261225-100000-C"]
    assert specs["contract_size"].to_list() == [D("0.001"), D(100), D(1)]
    assert specs["inverse"].to_list() == [False, True, True]
    assert specs["venue"].to_list() == [None, None, None]  # a markets dump applies to every venue
    # 1798185600000 ms = 1798185600 s = 20812 days + 8 h after 1970-01-01 = 2026-12-25 08:00 UTC.
    assert specs["expiry"][2] == dt.date(2026, 12, 25)
    # The spot market is passed over; the swap without a contract size is refused, by its key.
    assert rows.quarantine.select("row", "column").rows() == [(5, "contractSize")]


def test_ccxt_expiry_that_disagrees_with_the_symbol_is_refused():
    market = dict(MARKETS[2], expiry=1766649600000)  # 2025-12-25 08:00 UTC, the symbol says 2026-12-25
    rows = read_specs(json.dumps([market]), "instruments/x.json")
    assert rows.quarantine.select("row", "column").rows() == [(1, "expiry")]


def test_truncated_json_is_one_entry():
    rows = read_specs('[{"symbol": "BTC/USDT:USDT", ', "instruments/x.json")
    assert rows.specs.height == 0 and rows.quarantine["reason"][0].startswith("invalid JSON")


def _specs():
    return read_specs(CSV, FILE).specs


def test_a_named_venue_wins_over_every_venue():
    wanted = pl.DataFrame({"venue": ["binance", "deribit", "okx"], "instrument": ["BTC/USD:BTC"] * 3})
    resolved = resolve_specs(wanted, _specs())
    # binance and deribit have their own rows; okx has no row for BTC/USD:BTC at all.
    assert resolved["contract_size"].to_list() == [D(100), D(1), None]
    assert resolved["has_spec"].to_list() == [True, True, False]
    usdt = resolve_specs(pl.DataFrame({"venue": ["okx"], "instrument": ["BTC/USDT:USDT"]}), _specs())
    assert usdt["contract_size"].to_list() == [D(1)]  # the every-venue row


def test_every_instrument_held_without_a_spec_is_named_and_stops_the_date():
    positions = decimals(
        venue=["okx", "binance", "okx", "bybit"], account=["m", "m", "m", "b"],
        instrument=["BTC/USD:BTC", "BTC/USD:BTC", "SOL/USDT:USDT", "SOL/USDT:USDT"], qty=["-3", "1", "0", "2"],
    )
    # okx BTC/USD:BTC has no spec (only binance's and deribit's); SOL on okx is flat: not needed.
    assert missing_specs(positions, _specs()) == ["bybit/b SOL/USDT:USDT", "okx/m BTC/USD:BTC"]
    with pytest.raises(MissingSpec) as stopped:
        require_specs(dt.date(2026, 12, 5), positions, _specs())
    assert "bybit/b SOL/USDT:USDT" in str(stopped.value) and "okx/m BTC/USD:BTC" in str(stopped.value)
    assert "instruments/2026-12-05" in str(stopped.value)


def test_a_specs_file_of_a_landing_folder(tmp_path):
    folder = tmp_path / "instruments"
    folder.mkdir()
    (folder / "2026-12-05.csv").write_text(CSV)
    (folder / "2026-12-06.json").write_bytes(b"\xff[")
    assert read_specs_file(folder / "2026-12-05.csv", tmp_path).specs.height == 5
    bad = read_specs_file(folder / "2026-12-06.json", tmp_path)
    assert bad.quarantine.select("file", "row", "column").rows() == [("instruments/2026-12-06.json", None, None)]


def test_a_ragged_csv_row_is_refused_alone():
    text = CSV + ",SOL/USDT:USDT,swap,USDT,1\n,ADA/USDT:USDT,swap,USDT,1,,,,\n"
    rows = read_specs(text, FILE)
    assert rows.quarantine.select("row", "column", "raw").rows() == [(6, None, ",SOL/USDT:USDT,swap,USDT,1")]
    assert "5 cells where the header has 9" in rows.quarantine["reason"][0]
    assert "ADA/USDT:USDT" in rows.specs["symbol"].to_list()
