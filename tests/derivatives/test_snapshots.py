"""Position snapshots (utl.derivatives.snapshots): every shape through its reader.

``../shared/venues/`` documents no position replies, so the fixtures follow the venues' own
API references, field for field (sizes and prices changed where the documented example is
flat, so that each fixture holds a position):

- ``binance_position_risk*.json``: Binance Derivatives "Position Information V2" (``GET
  /fapi/v2/positionRisk``) response example, one-way (``BOTH``) and hedge mode
  (``LONG``/``SHORT``); ``binance_coinm_position_risk.json``: COIN-M ``GET
  /dapi/v1/positionRisk`` (``maxQty``, ``notionalValue``).
- ``bybit_position_list.json``: Bybit v5 "Get Position Info" (``GET /v5/position/list``)
  response example, the whole reply (category ``inverse``);
  ``bybit_position_list_linear.json``: just ``result.list``, hedge mode (positionIdx 1/2).
- ``okx_account_positions.json``: OKX v5 "Get positions" (``GET /api/v5/account/positions``)
  response example, whole; ``okx_positions_list.json``: just ``data``.
- ``deribit_get_positions.json``: Deribit API reference ``private/get_positions`` example
  (the BTC-PERPETUAL row verbatim), plus an option and a dated future.
- ``ccxt_fetch_positions.json``: ccxt Manual, "Position Structure" example.
"""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest

from utl.derivatives.schemas import POSITION_SNAPSHOT
from utl.derivatives.snapshots import (
    binance_symbol, bybit_symbol, deribit_symbol, okx_symbol, opening_positions, read_positions, read_positions_file,
)

FIXTURES = Path(__file__).parent / "fixtures"
FILE = "binance/mm/positions/2026-12-05.json"


def read(name: str, venue: str = "v"):
    rows = read_positions((FIXTURES / name).read_text("utf-8"), FILE, venue, "main")
    assert rows.positions.schema == POSITION_SNAPSHOT
    return rows


def by_instrument(rows) -> dict[str, dict]:
    return {r["instrument"]: r for r in rows.positions.iter_rows(named=True)}


def test_binance_usdm_position_risk():
    rows = read("binance_position_risk.json", "binance")
    assert rows.shape == "binance" and rows.quarantine.height == 0
    got = by_instrument(rows)
    # ETHUSDT has positionAmt "0.000": flat, not listed. Quantities are base units, signed.
    assert set(got) == {"BTC/USDT:USDT", "ETH/USDT:USDT-261225"}
    btc = got["BTC/USDT:USDT"]
    assert (btc["qty"], btc["entry_price"], btc["mark_price"], btc["unrealized_pnl"]) == (
        D("0.25"), D("65000.5"), D("66000"), D("249.875"))
    assert (btc["venue"], btc["account"], btc["venue_symbol"], btc["source_row"]) == ("binance", "main", "BTCUSDT", 1)
    assert got["ETH/USDT:USDT-261225"]["qty"] == D("-1.5")


def test_binance_coinm_position_risk_in_contracts():
    got = by_instrument(read("binance_coinm_position_risk.json"))
    assert got["BTC/USD:BTC"]["qty"] == D(-12)  # contracts of 100 USD
    assert got["BTC/USD:BTC-261225"]["qty"] == D(3)


def test_binance_hedge_mode_rows_are_netted():
    rows = read("binance_position_risk_hedge.json")
    assert rows.positions.height == 1
    btc = rows.positions.row(0, named=True)
    # LONG 0.300 and SHORT -0.100 net to 0.2; their unrealized PnL adds (600 + 100); the
    # short reduced the long, and reducing keeps the entry: the long's 64000.
    assert (btc["qty"], btc["unrealized_pnl"], btc["entry_price"]) == (D("0.2"), D("700"), D(64000))


def test_bybit_whole_reply_inverse():
    rows = read("bybit_position_list.json")
    assert rows.shape == "bybit"
    (row,) = rows.positions.iter_rows(named=True)
    # side "Sell", size "300" (USD, inverse): -300 of BTC/USD:BTC.
    assert (row["instrument"], row["qty"], row["entry_price"], row["mark_price"], row["unrealized_pnl"]) == (
        "BTC/USD:BTC", D(-300), D("27464.50441675"), D("28224.50"), D("-0.00029413"))


def test_bybit_list_only_hedge_mode():
    rows = read("bybit_position_list_linear.json")
    (row,) = rows.positions.iter_rows(named=True)
    # Buy 2.5 and Sell 1 of ETHUSDT net to +1.5; SOLUSDT (size "0", side "") is flat.
    assert (row["instrument"], row["qty"], row["unrealized_pnl"], row["entry_price"]) == (
        "ETH/USDT:USDT", D("1.5"), D("144.5"), D("3450.2"))
    assert rows.quarantine.height == 0


def test_okx_whole_reply():
    rows = read("okx_account_positions.json")
    (row,) = rows.positions.iter_rows(named=True)
    assert (row["instrument"], row["qty"], row["entry_price"], row["mark_price"], row["unrealized_pnl"]) == (
        "ETH/USD:ETH-210430", D(1), D("2566.31"), D("2353.849"), D("-0.0000009932766034"))
    assert row["delta"] is None  # deltaPA is "" for futures


def test_okx_list_only_with_sides_options_and_a_margin_row():
    rows = read("okx_positions_list.json")
    got = by_instrument(rows)
    assert got["BTC/USDT:USDT"]["qty"] == D(-25)  # net mode: pos is signed
    assert got["BTC/USD:BTC"]["qty"] == D(-40)  # posSide short, pos 40
    option = got["BTC/USD:BTC-261225-100000-C"]
    assert (option["qty"], option["delta"]) == (D(10), D("0.0321"))
    # A MARGIN position is no derivative: refused by name, never dropped silently.
    assert rows.quarantine.select("row", "column", "raw").rows() == [(4, "instId", "BTC-USDT")]


def test_deribit_whole_reply():
    rows = read("deribit_get_positions.json")
    got = by_instrument(rows)
    perp = got["BTC/USD:BTC"]
    # JSON numbers are read as their text: 7440.18, 0.006687487 exactly.
    assert (perp["qty"], perp["entry_price"], perp["mark_price"], perp["delta"], perp["settlement_price"]) == (
        D(50), D("7440.18"), D("7476.65"), D("0.006687487"), D("7476.65"))
    option = got["BTC/USD:BTC-261227-100000-C"]
    assert (option["qty"], option["delta"], option["unrealized_pnl"]) == (D(-1), D("-0.31"), D("-0.0005"))
    assert got["BTC/USD:BTC-261227"]["qty"] == D(-1000)


def test_ccxt_fetch_positions():
    rows = read("ccxt_fetch_positions.json")
    got = by_instrument(rows)
    assert rows.shape == "ccxt"
    assert (got["BTC/USD:BTC"]["qty"], got["BTC/USD:BTC"]["contract_size"]) == (D(5), D(100))
    assert got["ETH/USDT:USDT"]["qty"] == D("-0.32")  # "3.2e-1", short


@pytest.mark.parametrize(
    ("text", "column", "why"),
    [
        ('[{"symbol": "BTCUSDT", "positionAmt": "1,5", "entryPrice": "1", "markPrice": "1"}]', "positionAmt", "not an exact decimal"),
        ('[{"symbol": "BTCUSDT", "positionAmt": null, "entryPrice": "1", "markPrice": "1"}]', "positionAmt", "no size"),
        ('{"result": {"list": [{"positionIdx": 0, "symbol": "BTCUSDT", "side": "Buy", "size": "", "avgPrice": "1"}]}}', "size", "no size"),
        ('{"result": [{"instrument_name": "BTC-PERPETUAL", "size": "abc", "mark_price": 1}]}', "size", "not an exact decimal"),
        ('{"data": [{"instId": "BTC-USDT-SWAP", "pos": "1e-30", "posSide": "net"}]}', "pos", "not an exact decimal"),
        ('[{"symbol": "BTC/USDT:USDT", "contracts": 2, "side": null}]', "side", "without a side"),
    ],
)
def test_a_size_that_cannot_be_read_is_quarantined_never_zero(text, column, why):
    rows = read_positions(text, FILE, "v", "main")
    assert rows.positions.height == 0
    (refused,) = rows.quarantine.iter_rows(named=True)
    assert (refused["file"], refused["row"], refused["column"]) == (FILE, 1, column)
    assert why in refused["reason"]


def test_unknown_shape_and_bad_json_are_one_entry_each():
    for text, why in [('{"foo": [1]}', "unknown positions shape"), ('[{"symbol": "x"', "invalid JSON")]:
        rows = read_positions(text, FILE, "v", "main")
        assert rows.shape is None and rows.positions.height == 0
        assert rows.quarantine.select("row", "column").rows() == [(None, None)]
        assert rows.quarantine["reason"][0].startswith(why)


def test_an_empty_list_is_a_file_with_no_open_position():
    for text in ("[]", '{"jsonrpc": "2.0", "result": []}', '{"retCode": 0, "result": {"list": [], "category": "linear"}}'):
        rows = read_positions(text, FILE, "v", "main")
        assert (rows.shape, rows.positions.height, rows.quarantine.height) == ("empty", 0, 0)


def test_an_unmappable_venue_name_is_refused_with_its_name():
    rows = read_positions('[{"symbol": "BTCEUR", "positionAmt": "1"}]', FILE, "binance", "main")
    assert rows.quarantine.select("row", "column", "raw").rows() == [(1, "symbol", "BTCEUR")]


@pytest.mark.parametrize(
    ("mapper", "name", "symbol"),
    [
        (binance_symbol, "BTCUSDT", "BTC/USDT:USDT"),
        (binance_symbol, "1000PEPEUSDT", "1000PEPE/USDT:USDT"),
        (binance_symbol, "BTCUSDT_261225", "BTC/USDT:USDT-261225"),
        (binance_symbol, "BTCUSD_PERP", "BTC/USD:BTC"),
        (binance_symbol, "ETHUSD_261225", "ETH/USD:ETH-261225"),
        (okx_symbol, "BTC-USDT-SWAP", "BTC/USDT:USDT"),
        (okx_symbol, "BTC-USD-SWAP", "BTC/USD:BTC"),
        (okx_symbol, "BTC-USD-261225", "BTC/USD:BTC-261225"),
        (okx_symbol, "BTC-USDT-261225", "BTC/USDT:USDT-261225"),
        (okx_symbol, "BTC-USD-261225-100000-C", "BTC/USD:BTC-261225-100000-C"),
        (deribit_symbol, "BTC-PERPETUAL", "BTC/USD:BTC"),
        (deribit_symbol, "BTC-27DEC26", "BTC/USD:BTC-261227"),
        (deribit_symbol, "BTC-27DEC26-100000-C", "BTC/USD:BTC-261227-100000-C"),
        (deribit_symbol, "ETH-3JAN27-4000-P", "ETH/USD:ETH-270103-4000-P"),
        (deribit_symbol, "ETH_USDC-PERPETUAL", "ETH/USDC:USDC"),
        (deribit_symbol, "XRP_USDC-27DEC26-0d5-C", "XRP/USDC:USDC-261227-0.5-C"),
        (deribit_symbol, "BTC_USDC", None),  # spot
        (lambda n: bybit_symbol(n, "linear"), "BTCUSDT", "BTC/USDT:USDT"),
        (lambda n: bybit_symbol(n, "inverse"), "BTCUSD", "BTC/USD:BTC"),
        (lambda n: bybit_symbol(n, "linear"), "BTCUSD", None),  # an inverse name in a linear list
        (lambda n: bybit_symbol(n, None), "BTCPERP", "BTC/USDC:USDC"),
        (lambda n: bybit_symbol(n, None), "BTC-27DEC24", "BTC/USDC:USDC-241227"),
        (lambda n: bybit_symbol(n, "option"), "BTC-27DEC24-60000-C", "BTC/USDC:USDC-241227-60000-C"),
        # March 2025's last Friday is the 28th.
        (lambda n: bybit_symbol(n, "inverse"), "BTCUSDH25", "BTC/USD:BTC-250328"),
    ],
)
def test_venue_names_map_to_ccxt_symbols(mapper, name, symbol):
    assert mapper(name) == symbol


def test_quantities_are_never_floats():
    rows = read("deribit_get_positions.json")
    assert all(rows.positions.schema[c] == pl.Decimal(38, 18) for c in ("qty", "entry_price", "delta"))


def test_files_from_a_landing_folder_and_the_opening_state(tmp_path):
    folder = tmp_path / "deribit" / "main" / "positions"
    folder.mkdir(parents=True)
    (folder / "2026-12-05.json").write_text((FIXTURES / "deribit_get_positions.json").read_text())
    (folder / "2026-12-06.json").write_bytes(b"\xff\xfe[]")
    rows = read_positions_file(folder / "2026-12-05.json", tmp_path, "deribit", "main")
    assert rows.file == "deribit/main/positions/2026-12-05.json"
    opening = opening_positions(rows.positions)
    assert opening.filter(pl.col("instrument") == "BTC/USD:BTC").rows() == [("deribit", "main", "BTC/USD:BTC", D(50), D("7440.18"))]
    bad = read_positions_file(folder / "2026-12-06.json", tmp_path, "deribit", "main")
    assert bad.quarantine.select("file", "row").rows() == [("deribit/main/positions/2026-12-06.json", None)]
    assert bad.quarantine["reason"][0].startswith("not UTF-8")
