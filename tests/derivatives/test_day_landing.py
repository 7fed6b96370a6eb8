"""A landing folder with a perpetual, from the files to the date's outputs (utl.eod).

The balances, marks and ccxt trades are read by the readers on main; the positions file by
``read_positions_file`` and the specs by ``read_specs_file``. Until the readers fill
``Ingested.derivative_fills``, ``positions`` and ``specs`` themselves (branch deriv-readers),
``with_derivatives`` below does it from those same files, as DERIV-INTERFACE §2 says they will.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal as D
from pathlib import Path

import polars as pl

from utl.derivatives.instruments import read_specs_file
from utl.derivatives.schemas import DATED_INSTRUMENT_SPECS, DATED_POSITION_SNAPSHOT, DERIVATIVE_FILLS
from utl.derivatives.snapshots import read_positions_file
from utl.eod import Prepared, prepare, run_dates
from utl.ingest import ingest_landing

SYMBOL = "BTC/USDT:USDT"


def put(landing: Path, rel: str, text: str) -> None:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def ccxt_trade(trade_id: str, when: str, side: str, amount: str, price: str) -> str:
    ms = int(dt.datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() * 1000)
    cost = str(D(amount) * D(price))
    return json.dumps({"info": {}, "id": trade_id, "order": None, "timestamp": ms, "datetime": when, "symbol": SYMBOL,
                       "type": "limit", "side": side, "takerOrMaker": "maker", "price": float(price),
                       "amount": float(amount), "cost": float(cost), "fee": None, "fees": []}) + "\n"


def landing_folder(root: Path) -> Path:
    put(root, "binance/fut/balances/2026-12-01.json",
        json.dumps({"info": {}, "free": {"USDT": 1000.0}, "used": {"USDT": 0}, "total": {"USDT": 1000.0}}))
    for day in ("2026-12-01", "2026-12-02"):
        put(root, f"marks/{day}.csv", "asset,price\nUSDT,1\nBTC,60000\n")
    put(root, "binance/fut/trades/pull.jsonl",
        ccxt_trade("1", "2026-12-02T09:00:00.000Z", "buy", "2", "100")
        + ccxt_trade("2", "2026-12-02T10:00:00.000Z", "sell", "1", "300"))
    put(root, "binance/fut/positions/2026-12-02.json", json.dumps([
        {"symbol": SYMBOL, "contracts": 1, "side": "long", "entryPrice": 100, "markPrice": 250, "contractSize": 1}]))
    put(root, "instruments/2026-12-01.csv",
        "venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type\n,BTC/USDT:USDT,swap,USDT,1,false,,,\n")
    return root


def with_derivatives(prepared: Prepared, landing: Path) -> Prepared:
    """What the readers will hand the step: the ccxt derivative fills as instrument legs
    (qty in the position unit: base for a linear swap), the positions files, the specs."""
    fills = ingest_landing(landing).fills.filter(pl.col("derivative"))
    derivative_fills = fills.select(
        "venue", "account", instrument="symbol", ts="ts", leg_id="trade_id", qty="qty", price="price", fee="fee",
        fee_asset="fee_asset", source=pl.lit("fills"), source_file="source_file", source_row="source_row",
    ).cast(DERIVATIVE_FILLS)
    snapshot = read_positions_file(landing / "binance/fut/positions/2026-12-02.json", landing, "binance", "fut")
    assert snapshot.quarantine.height == 0
    positions = snapshot.positions.with_columns(business_date=pl.lit(dt.date(2026, 12, 2)))
    specs = read_specs_file(landing / "instruments/2026-12-01.csv", landing)
    assert specs.quarantine.height == 0
    ingested = dataclasses.replace(
        prepared.ingested, derivative_fills=derivative_fills,
        positions=positions.select(DATED_POSITION_SNAPSHOT.names()).cast(DATED_POSITION_SNAPSHOT),
        specs=specs.specs.with_columns(business_date=pl.lit(dt.date(2026, 12, 1)))
        .select(DATED_INSTRUMENT_SPECS.names()).cast(DATED_INSTRUMENT_SPECS))
    return dataclasses.replace(prepared, ingested=ingested)


def test_a_perpetual_from_landing_files_to_the_dates_outputs(tmp_path: Path) -> None:
    # buy 2 @ 100, sell 1 @ 300: entry 100, realized 1·(300 − 100) = 200 USDT computed (a
    # trades export only); +1 @ 100 open, mark 250 from the positions file (no marks/ row):
    # unrealized 1·(250 − 100) = 150 USDT; the file says +1: no position break.
    landing = landing_folder(tmp_path / "landing")
    prepared = with_derivatives(prepare(landing), landing)
    [out] = list(run_dates(prepared, dt.date(2026, 12, 2)))
    [row] = out.derivative_positions.to_dicts()
    assert (row["instrument"], row["qty"], row["venue_qty"], row["entry_price"], row["mark"]) == (
        SYMBOL, D(1), D(1), D(100), D(250))
    assert (row["realized_pnl"], row["unrealized_pnl"], row["delta_usd"]) == (D(200), D(150), D(60000))
    assert out.breaks.height == 0
    usdt = out.positions.filter(pl.col("asset") == "USDT").row(0, named=True)
    assert usdt["qty"] == D(1200)
    assert out.exposure_asset.filter(pl.col("asset") == "BTC")["net_qty"].to_list() == [D(1)]
