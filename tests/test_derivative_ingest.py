"""Derivative rows of the venue exports through their readers and ``ingest_landing`` (#14).

Every export below is written in the layout of ``/work/shared/venues/<venue>.md`` (the
section is cited beside it) with rows of our own; expected legs and cash are worked by hand
in the comments. The contract: ``/work/shared/contracts/derivatives.md``; the frames:
``DERIVATIVE_FILLS``, ``DERIVATIVE_CASH``, ``DATED_POSITION_SNAPSHOT``, ``DATED_INSTRUMENT_SPECS``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal as D
from pathlib import Path

import polars as pl

from utl.derivatives.schemas import DATED_INSTRUMENT_SPECS, DATED_POSITION_SNAPSHOT, DERIVATIVE_CASH, DERIVATIVE_FILLS
from utl.ingest import ingest_landing
from utl.venues.base import Source
from utl.venues.deribit import read_transaction_log

FIXTURES = Path(__file__).parent / "derivatives" / "fixtures"
UTC = dt.timezone.utc


def put(landing: Path, rel: str, content: str) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def fills_of(ingested) -> list[tuple]:
    return ingested.derivative_fills.sort("source_file", "source_row").select(
        "account", "instrument", "leg_id", "qty", "price", "fee", "fee_asset", "source").rows()


def cash_of(ingested) -> list[tuple]:
    return ingested.derivative_cash.sort("source_file", "source_row", "entry_id").select(
        "account", "instrument", "kind", "asset", "qty").rows()


def refused(ingested) -> list[tuple]:
    return ingested.quarantine.select("file", "row", "column", "raw").rows()


# --------------------------------------------------------------------------- Binance


def test_binance_usdm_and_coinm_trades_are_instrument_legs(tmp_path):
    # binance.md §3, current header. Row 2 is a COIN-M fill: Quantity counts contracts
    # (derivatives.md: COIN-M positions in contracts), so 3 stays 3, never 3 x 100 USD.
    put(tmp_path, "binance/fut/trades/Futures-Trade-History-202403051200(UTC+0)_a.csv",
        "Uid,Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID\n"
        "1,24-03-05 10:00:00,BTCUSDT,SELL,65100.0,0.010,651.0,0.26040000 USDT,1.0,false,false,500001,800001\n"
        "1,24-03-05 10:05:00,BTCUSD_PERP,BUY,65000.0,3,0.00461538,0.00000231 BTC,0,true,true,700001,900001\n"
        "1,24-03-05 10:06:00,ETHUSDT_261225,BUY,3500,0.1,350,0.07USDT,0,true,true,700002,900002\n")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.derivative_fills.schema == DERIVATIVE_FILLS
    # SELL -> -0.010; BUY +3 contracts; the dated future keeps its expiry in the symbol.
    # leg_id is the fill's trade identity; the split of BTCUSD_PERP/ETHUSDT_261225 keeps
    # each contract's ids apart (Binance numbers trades per symbol).
    assert fills_of(ingested) == [
        ("fut", "BTC/USDT:USDT", "BTC/USDT-deriv:500001", D("-0.01"), D("65100"), D("0.2604"), "USDT", "fills"),
        ("fut", "BTC/USD:BTC", "BTCUSD/PERP-deriv:700001", D("3"), D("65000"), D("0.00000231"), "BTC", "fills"),
        ("fut", "ETH/USDT:USDT-261225", "ETHUSDT/261225-deriv:700002", D("0.1"), D("3500"), D("0.07"), "USDT", "fills"),
    ]
    # They stay in fills, flagged derivative, as before.
    assert ingested.fills["derivative"].to_list() == [True, True, True]


def test_binance_futures_wallet_rows_are_derivative_cash(tmp_path):
    # binance.md §2 (Transaction History: futures wallet operations) and §3 (Futures
    # Transaction History `Time,Type,Amount,Asset,Symbol,Transaction ID`).
    put(tmp_path, "binance/m/trades/Binance-Transaction-History(UTC+0).csv",
        "User ID,Time,Account,Operation,Coin,Change,Remark\n"
        "1,24-03-05 09:15:02,Spot,Transaction Fee,BTC,-2E-05,\n"
        "1,24-03-06 00:00:00,USD-M Futures,Funding Fee,USDT,-0.4213,\n"
        "1,24-03-06 01:00:00,USD-M Futures,Realized Profit and Loss,USDT,12.5,\n"
        "1,24-03-06 01:00:00,USD-M Futures,Fee,USDT,-0.26,\n")
    put(tmp_path, "binance/f/trades/Futures-Transaction-History(UTC+0).csv",
        "Time,Type,Amount,Asset,Symbol,Transaction ID\n"
        "24-03-06 00:00:00,FUNDING_FEE,-0.4213,USDT,BTCUSDT,9001\n"
        "24-03-06 01:00:00,COMMISSION,-0.26,USDT,BTCUSDT,9002\n"
        "24-03-06 02:00:00,TRANSFER,100,USDT,,9003\n")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.derivative_cash.schema == DERIVATIVE_CASH
    # The spot fee (row 1) is no derivative cash; the transfer (row 3 of the futures file) neither.
    assert cash_of(ingested) == [
        ("f", "BTC/USDT:USDT", "funding", "USDT", D("-0.4213")),
        ("f", "BTC/USDT:USDT", "fee", "USDT", D("-0.26")),
        ("m/usd-m-futures", None, "funding", "USDT", D("-0.4213")),
        ("m/usd-m-futures", None, "realized_pnl", "USDT", D("12.5")),
        ("m/usd-m-futures", None, "fee", "USDT", D("-0.26")),
    ]
    # The same rows are still ordinary movements of the settle asset.
    assert ingested.movements.filter(pl.col("account") == "m/usd-m-futures")["qty"].sum() == D("11.8187")


# --------------------------------------------------------------------------- Bybit

BYBIT_UTA = (
    # bybit.md §1, the `Uid` variant with its preamble.
    "UID: 123456789,Company Name: ,Country: \n"
    "Uid,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,Change,"
    "Wallet Balance,Action,Time(UTC)\n"
    "123456789,USDT,ETHUSDT,TRADE,BUY,0.5,0.5,3400,0,-0.935,0,-0.935,999.065,OPEN,2024-03-05 07:00:00\n"
    "123456789,USDT,ETHUSDT,SETTLEMENT,BUY,--,0.5,--,-0.175,0,0,-0.175,998.89,SETTLEMENT,2024-03-05 08:00:00\n"
    "123456789,USDT,BTCUSDT,TRADE,BUY,-650,0,65000,0,0,-650,-650,348.89,--,2024-03-05 09:15:02\n"
    "123456789,BTC,BTCUSDT,TRADE,BUY,0.01,0,65000,0,-0.00001,0.01,0.00999,0.00999,--,2024-03-05 09:15:02\n"
    "123456789,USDT,ETHUSDT,TRADE,SELL,0.5,0,3500,0,-0.9625,50,49.0375,397.9275,CLOSE,2024-03-05 10:00:00\n"
    "123456789,USDT,BTCUSDT,TRADE,SELL,1e,0,3500,0,-0.5,0,-0.5,397.4275,OPEN,2024-03-05 11:00:00\n"
)


def test_bybit_uta_trade_rows_are_ledger_fills_and_cash(tmp_path):
    put(tmp_path, "bybit/uta/trades/AssetChangeDetails_uta_123456789_20240301_20240306_0.csv", BYBIT_UTA)
    ingested = ingest_landing(tmp_path)
    legs = ingested.derivative_fills.sort("source_row")
    # OPEN BUY 0.5 -> +0.5 at 3400, fee -(-0.935) = 0.935 USDT; CLOSE SELL 0.5 -> -0.5 at 3500.
    # The spot BTCUSDT rows (Action --) are no derivative.
    assert legs.select("instrument", "qty", "price", "fee", "fee_asset", "source").rows() == [
        ("ETH/USDT:USDT", D("0.5"), D("3400"), D("0.935"), "USDT", "ledger"),
        ("ETH/USDT:USDT", D("-0.5"), D("3500"), D("0.9625"), "USDT", "ledger"),
    ]
    # Row 1: fee -0.935; row 2: funding -0.175; row 5: Cash Flow 50 realized, fee -0.9625;
    # row 6's fee is cash of BTC/USDT:USDT although its size is unreadable.
    assert cash_of(ingested) == [
        ("uta", "ETH/USDT:USDT", "fee", "USDT", D("-0.935")),
        ("uta", "ETH/USDT:USDT", "funding", "USDT", D("-0.175")),
        ("uta", "ETH/USDT:USDT", "realized_pnl", "USDT", D("50")),
        ("uta", "ETH/USDT:USDT", "fee", "USDT", D("-0.9625")),
        ("uta", "BTC/USDT:USDT", "fee", "USDT", D("-0.5")),
    ]
    # The unreadable size is quarantined, naming Bybit's column; never a zero leg.
    assert refused(ingested) == [("bybit/uta/trades/AssetChangeDetails_uta_123456789_20240301_20240306_0.csv", 6,
                                  "Quantity", "1e")]
    # Cash still books as movements: the wallet's USDT change is the sum of Change,
    # -0.935 - 0.175 - 650 + 49.0375 - 0.5 = -602.5725.
    assert ingested.movements.filter(pl.col("asset") == "USDT")["qty"].sum() == D("-602.5725")


def test_bybit_pre_uta_log_signs_from_open_close_words(tmp_path):
    # bybit.md §4: `Direction` Open Long / Close Long...; `Fee Paid` and `Funding` positive when paid.
    put(tmp_path, "bybit/old/trades/derivatives.csv",
        "Time,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,Change,"
        "Wallet Balance,Fee Rate,Trade ID,Order ID\n"
        "2021-03-05 10:00:00,BTC,BTCUSD,trade,Open Short,1000,-1000,50000,0,0.0000150,0,-0.000015,0.999985,0.00075,t1,o1\n"
        "2021-03-05 16:00:00,BTC,BTCUSD,funding,--,--,-1000,--,-0.000002,0,0,0.000002,0.999987,0,f1,--\n"
        "2021-03-05 18:00:00,BTC,BTCUSD,trade,Close Short,1000,0,49000,0,0.0000153,0.00040816,0.00039286,1.00038,0.00075,t2,o2\n")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    # Inverse contract BTCUSD -> BTC/USD:BTC, quantity in USD: Open Short -1000, Close Short +1000.
    assert fills_of(ingested) == [
        ("old", "BTC/USD:BTC", "t1", D("-1000"), D("50000"), D("0.000015"), "BTC", "ledger"),
        ("old", "BTC/USD:BTC", "t2", D("1000"), D("49000"), D("0.0000153"), "BTC", "ledger"),
    ]
    # Funding paid -(-0.000002) = +0.000002 received (the pre-UTA sign is reversed).
    assert cash_of(ingested) == [
        ("old", "BTC/USD:BTC", "fee", "BTC", D("-0.000015")),
        ("old", "BTC/USD:BTC", "funding", "BTC", D("0.000002")),
        ("old", "BTC/USD:BTC", "realized_pnl", "BTC", D("0.00040816")),
        ("old", "BTC/USD:BTC", "fee", "BTC", D("-0.0000153")),
    ]


# --------------------------------------------------------------------------- OKX


def test_okx_trading_history_swap_rows_count_contracts(tmp_path):
    # okx.md §1, the 17-column header; times at UTC+8.
    put(tmp_path, "okx/main/trades/trading.csv",
        "UID:1234567890,Account Type:Main,Time Zone:UTC+8\n"
        "id,Order id,Time,Trade Type,Symbol,Action,Amount,Trading Unit,Filled Price,PnL,Fee,Fee Unit,"
        "Position Change,Position Balance,Balance Change,Balance,Balance Unit\n"
        "7101,6901,2024-03-05 17:15:02,Spot,BTC-USDT,Buy,0.01,BTC,65000,0,-0.00001,BTC,0,0,0.00999,0.00999,BTC\n"
        "7102,6901,2024-03-05 17:15:02,Spot,BTC-USDT,Sell,650,USDT,65000,0,0,USDT,0,0,-650,350,USDT\n"
        "7103,6902,2024-03-05 18:00:00,Perpetual,BTC-USDT-SWAP,Open short,3,cont,65000,0,-0.975,USDT,-3,-3,-0.975,349.025,USDT\n"
        "7104,6903,2024-03-05 19:00:00,Perpetual,BTC-USDT-SWAP,Close short,1,cont,64000,10,-0.32,USDT,1,-2,9.68,358.705,USDT\n"
        "7105,6904,2024-03-05 19:30:00,Perpetual,BTC-USDT-SWAP,Close short,,cont,64000,0,0,USDT,1,-1,0,358.705,USDT\n")
    ingested = ingest_landing(tmp_path)
    # Open short 3 contracts -> -3; Close short 1 -> +1; fee = -Fee. 17:15 UTC+8 = 09:15 UTC.
    assert fills_of(ingested) == [
        ("main", "BTC/USDT:USDT", "7103", D("-3"), D("65000"), D("0.975"), "USDT", "ledger"),
        ("main", "BTC/USDT:USDT", "7104", D("1"), D("64000"), D("0.32"), "USDT", "ledger"),
    ]
    assert ingested.derivative_fills["ts"].to_list()[0] == dt.datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
    # Balance Change 9.68 = PnL 10 + Fee -0.32: booked as two parts, both attributed.
    assert cash_of(ingested) == [
        ("main", "BTC/USDT:USDT", "fee", "USDT", D("-0.975")),
        ("main", "BTC/USDT:USDT", "realized_pnl", "USDT", D("10")),
        ("main", "BTC/USDT:USDT", "fee", "USDT", D("-0.32")),
    ]
    assert refused(ingested) == [("okx/main/trades/trading.csv", 5, "Amount", "")]


# --------------------------------------------------------------------------- Deribit

DERIBIT_LOG = (
    # deribit.md "Example", current header, plus an option sale and an unreadable size.
    "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,"
    "Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note\n"
    "90001,1001,2024-03-05 09:00:00,,deposit,-,,,,,,,0.5,0,0,0,0,0.5,0.5,0.5,,,bc1qexampleaddress0000,\n"
    "90002,1002,2024-03-05 09:15:02,BTC-PERPETUAL,trade,open buy,10000,0.15384615,10000,65000,65010,65005,0,0,"
    "0.0005,0.00007692,0,-0.00007692,0.49992308,0.49994674,300001,40001,,\n"
    "90003,1003,2024-03-06 08:00:00,BTC-PERPETUAL,settlement,long,,,10000,65500,65500,65490,0.00116996,-0.0000043,"
    ",0,0,0.00116996,0.50109304,0.50109304,,,,\n"
    "90004,1004,2024-03-06 09:00:00,BTC-27DEC24-60000-C,trade,open sell,0.5,0.5,-0.5,0.05,,,0.025,0,0,0.0001,0,"
    "0.0249,0.52599304,0.5,300002,40002,,\n"
    "90005,1005,2024-03-06 10:00:00,BTC-PERPETUAL,trade,close sell,ten,,0,65000,,,0,0,0,0.0001,0,-0.0001,"
    "0.52589304,0.5,300003,40003,,\n"
)


def test_deribit_reader_futures_in_usd_options_in_base(tmp_path):
    path = put(tmp_path, "deribit/main/trades/transaction_log-4242-BTC-2024.csv", DERIBIT_LOG)
    parsed = read_transaction_log(Source(path=path, rel="log.csv", venue="deribit", account="main"))
    # Perpetual: Amount 10000 USD (open buy +); option: 0.5 BTC sold (-0.5) at 0.05 BTC.
    assert parsed.derivative_fills.select("instrument", "qty", "price", "fee", "fee_asset").rows() == [
        ("BTC/USD:BTC", D("10000"), D("65000"), D("0.00007692"), "BTC"),
        ("BTC/USD:BTC-241227-60000-C", D("-0.5"), D("0.05"), D("0.0001"), "BTC"),
    ]
    assert parsed.quarantine.select("row", "column", "raw").rows() == [(5, "Amount", "ten")]


def test_deribit_log_through_ingest_splits_settlement_and_funding(tmp_path):
    put(tmp_path, "deribit/main/trades/transaction_log-4242-BTC-2024.csv", DERIBIT_LOG)
    ingested = ingest_landing(tmp_path)
    cash = ingested.derivative_cash.sort("source_row", "entry_id")
    # Settlement row: Change 0.00116996 includes funding -0.0000043, so the session PnL
    # part is 0.00116996 + 0.0000043 = 0.00117426, at the settlement price 65500.
    # Option sale: Cash Flow +0.025 is premium received; fee Change - Cash Flow = -0.0001.
    assert cash.select("instrument", "entry_id", "kind", "qty", "price").rows() == [
        ("BTC/USD:BTC", "BTC:90002/fee", "fee", D("-0.00007692"), None),
        ("BTC/USD:BTC", "BTC:90003", "settlement", D("0.00117426"), D("65500")),
        ("BTC/USD:BTC", "BTC:90003/funding", "funding", D("-0.0000043"), None),
        ("BTC/USD:BTC-241227-60000-C", "BTC:90004", "premium", D("0.025"), None),
        ("BTC/USD:BTC-241227-60000-C", "BTC:90004/fee", "fee", D("-0.0001"), None),
        ("BTC/USD:BTC", "BTC:90005/fee", "fee", D("-0.0001"), None),
    ]
    assert ingested.derivative_fills.height == 2


def test_overlapping_ledger_exports_attribute_each_row_once(tmp_path):
    put(tmp_path, "deribit/main/trades/transaction_log-4242-BTC-2024.csv", DERIBIT_LOG)
    put(tmp_path, "deribit/main/trades/transaction_log-4242-BTC-2024-copy.csv", DERIBIT_LOG)
    ingested = ingest_landing(tmp_path)
    assert ingested.derivative_fills.height == 2
    assert ingested.derivative_cash.height == 6


# --------------------------------------------------------------------------- ccxt


def test_ccxt_settle_symbols_take_amount_as_contracts(tmp_path):
    # ccxt.md "Trade": amount counts contracts for derivatives. On Deribit ccxt's amount is
    # the USD size (docs/derivatives.md, the trap): kept as is, never x contractSize 10.
    line = ('{{"id": "{i}", "order": null, "timestamp": 1709632800000, "datetime": "2024-03-05T10:00:00.000Z", '
            '"symbol": "{s}", "side": "{side}", "type": null, "takerOrMaker": "taker", "price": {p}, "amount": {a}, '
            '"cost": {c}, "fee": {{"cost": {f}, "currency": "{fc}"}}, "fees": [{{"cost": {f}, "currency": "{fc}"}}], "info": {{}}}}\n')
    put(tmp_path, "deribit/api/trades/t.jsonl",
        line.format(i="d1", s="BTC/USD:BTC", side="sell", p="65000.0", a="10000", c="0.15384615", f="0.0000077", fc="BTC"))
    put(tmp_path, "okx/api/trades/t.jsonl",
        line.format(i="o1", s="BTC/USDT:USDT-261225", side="buy", p="66000.5", a="2", c="1320.01", f="0.66", fc="USDT")
        + line.format(i="o2", s="BTC/USDT", side="buy", p="65000.0", a="0.01", c="650.0", f="0.65", fc="USDT")
        + line.format(i="o3", s="BTC/USDT:USDT-2612", side="buy", p="66000.5", a="1", c="660.0", f="0.33", fc="USDT"))
    ingested = ingest_landing(tmp_path)
    # A settle symbol that is no ccxt instrument (a 4-digit expiry) cannot book: refused, and
    # out of fills, never a leg of some guessed instrument.
    assert ingested.quarantine.select("file", "row", "column", "raw").rows() == [
        ("okx/api/trades/t.jsonl", 3, "symbol", "BTC/USDT:USDT-2612")]
    assert sorted(ingested.fills["trade_id"].to_list()) == ["d1", "o1", "o2"]
    assert ingested.derivative_fills.sort("instrument").select("instrument", "qty", "price", "fee", "source").rows() == [
        ("BTC/USD:BTC", D("-10000"), D("65000"), D("0.0000077"), "fills"),
        ("BTC/USDT:USDT-261225", D("2"), D("66000.5"), D("0.66"), "fills"),
    ]


# --------------------------------------------------------------------------- landing: positions/, instruments/, marks


def test_positions_and_instruments_files_are_read_not_unknown(tmp_path):
    shutil.copyfile(FIXTURES / "binance_position_risk.json", put(tmp_path, "binance/fut/positions/2026-12-05.json", ""))
    put(tmp_path, "binance/fut/positions/2026-12-06.json",
        '[{"symbol": "BTCUSDT", "positionAmt": "0.25x", "entryPrice": "65000.5", "markPrice": "66000"}]')
    put(tmp_path, "instruments/2026-12-05.csv",
        "venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type\n"
        "deribit,BTC/USD:BTC,swap,BTC,1,true,,,\n"
        ",BTC/USD:BTC-261225,future,BTC,-100,true,2026-12-25,,\n")
    put(tmp_path, "binance/fut/positions/notes.txt", "x")
    ingested = ingest_landing(tmp_path)
    assert ingested.positions.schema == DATED_POSITION_SNAPSHOT
    assert ingested.specs.schema == DATED_INSTRUMENT_SPECS
    # The fixture lists BTCUSDT 0.250 (and flat symbols, which are not listed).
    btc = ingested.positions.filter(pl.col("instrument") == "BTC/USDT:USDT")
    assert btc.select("business_date", "account", "qty", "entry_price").rows() == [
        (dt.date(2026, 12, 5), "fut", D("0.25"), D("65000.5"))]
    assert ingested.specs.select("business_date", "venue", "symbol", "contract_size").rows() == [
        (dt.date(2026, 12, 5), "deribit", "BTC/USD:BTC", D("1"))]
    q = ingested.quarantine.select("file", "row", "column").rows()
    # Unreadable size: quarantined with the venue's key, never a zero position.
    assert ("binance/fut/positions/2026-12-06.json", 1, "positionAmt") in q
    assert ("instruments/2026-12-05.csv", 2, "contract_size") in q
    # Only the stray note is an unknown file.
    whole = ingested.quarantine.filter(pl.col("row").is_null())["file"].to_list()
    assert whole == ["binance/fut/positions/notes.txt"]
    assert set(ingested.files["kind"].to_list()) >= {"positions", "instruments"}


def test_marks_keep_instrument_symbols_as_written(tmp_path):
    put(tmp_path, "marks/2024-03-05.csv", "asset,price\nBTC,65000\nBTC/USDT:USDT,65010.5\nBTC/USD:BTC-241227-60000-C,0.051\nBTC/USDT:,1\n")
    ingested = ingest_landing(tmp_path)
    assert ingested.marks.select("asset", "price").rows() == [
        ("BTC", D("65000")), ("BTC/USDT:USDT", D("65010.5")), ("BTC/USD:BTC-241227-60000-C", D("0.051"))]
    # A malformed symbol is still refused as an unknown asset code.
    assert ingested.quarantine.select("row", "column", "raw").rows() == [(4, "asset", "BTC/USDT:")]


# --------------------------------------------------------------------------- the incremental memory (utl.memory)


def test_memory_cuts_the_derivative_frames_to_each_date(tmp_path):
    from utl.memory import LandingMemory

    landing = tmp_path / "landing"
    put(landing, "deribit/main/trades/transaction_log-4242-BTC-2024.csv", DERIBIT_LOG)
    put(landing, "deribit/main/positions/2024-03-05.json",
        '{"jsonrpc": "2.0", "result": [{"instrument_name": "BTC-PERPETUAL", "size": 10000, "kind": "future", '
        '"direction": "buy", "average_price": 65000, "mark_price": 65010}]}')
    put(landing, "instruments/2024-03-04.csv",
        "venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type\nderibit,BTC/USD:BTC,swap,BTC,1,true,,,\n")
    put(landing, "instruments/2024-03-06.csv",
        "venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type\nderibit,BTC/USD:BTC,swap,BTC,1,true,,,\n"
        ",BTC/USD:BTC-241227-60000-C,option,BTC,1,true,,,\n")
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    assert memory.unknown_files().height == 0
    day5, day6 = memory.day_rows(dt.date(2024, 3, 5)), memory.day_rows(dt.date(2024, 3, 6))
    # 03-05: the perpetual's buy (row 2) and its fee; 03-06: the option sale, the settlement.
    assert day5.derivative_fills["leg_id"].to_list() == ["BTC:90002"]
    assert day6.derivative_fills["leg_id"].to_list() == ["BTC:90004"]
    assert sorted(day5.derivative_cash["entry_id"].to_list()) == ["BTC:90002/fee"]
    assert "BTC:90003" in day6.derivative_cash["entry_id"].to_list()
    # Positions of the date and the day before (the opening): 03-05's file reaches both.
    assert day5.positions.select("business_date", "instrument", "qty").rows() == [
        (dt.date(2024, 3, 5), "BTC/USD:BTC", D("10000"))]
    assert day6.positions["business_date"].to_list() == [dt.date(2024, 3, 5)]
    # Specs in force: the latest instruments/ file on or before the date.
    assert day5.specs["business_date"].unique().to_list() == [dt.date(2024, 3, 4)]
    assert day6.specs.sort("symbol")["symbol"].to_list() == ["BTC/USD:BTC", "BTC/USD:BTC-241227-60000-C"]


def test_a_binance_futures_symbol_naming_no_contract_is_refused(tmp_path):
    # binance.md §3, older header (UTC). BTCEUR is no USDⓈ-M or COIN-M contract name.
    put(tmp_path, "binance/fut/trades/futures.csv",
        "Date(UTC),Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit\n"
        "2024-03-05 10:00:00,BTCUSDT,BUY,65000,0.002,130,0.052 USDT,0\n"
        "2024-03-05 10:01:00,BTCEUR,BUY,60000,0.002,120,0.048 EUR,0\n")
    ingested = ingest_landing(tmp_path)
    assert ingested.derivative_fills.select("instrument", "qty").rows() == [("BTC/USDT:USDT", D("0.002"))]
    assert refused(ingested) == [("binance/fut/trades/futures.csv", 2, "Symbol", "BTCEUR")]
    assert ingested.fills.height == 1


# --------------------------------------------------------------------------- each reader alone (utl.venues.*)


def test_each_ledger_reader_hands_on_its_derivative_frames(tmp_path):
    """The readers themselves return DERIVATIVE_FILLS / DERIVATIVE_CASH beside their
    movements (asset codes as written; ingest makes them canonical)."""
    from utl.venues.binance import read_futures_transactions
    from utl.venues.bybit import read_uta

    uta = put(tmp_path, "uta.csv", BYBIT_UTA)
    parsed = read_uta(Source(path=uta, rel="bybit/uta/trades/uta.csv", venue="bybit", account="uta"))
    assert parsed.derivative_fills.schema == DERIVATIVE_FILLS
    assert parsed.derivative_fills.select("venue", "account", "source_file", "source_row").rows() == [
        ("bybit", "uta", "bybit/uta/trades/uta.csv", 1), ("bybit", "uta", "bybit/uta/trades/uta.csv", 5)]
    # Row 6 (size "1e") is refused as a fill; its fee -0.5 is still a movement.
    assert parsed.quarantine.select("row", "column").rows() == [(6, "Quantity")]
    assert parsed.frame.filter(pl.col("source_row") == 6)["qty"].to_list() == [D("-0.5")]

    futures = put(tmp_path, "Futures-Transaction-History(UTC+0).csv",
                  "Time,Type,Amount,Asset,Symbol,Transaction ID\n"
                  "24-03-06 00:00:00,FUNDING_FEE,0.1,USDT,ETHUSDT_261225,9001\n"
                  "24-03-06 00:00:00,FUNDING_FEE,0.2,BTC,BTCUSD_PERP,9002\n")
    parsed = read_futures_transactions(Source(path=futures, rel="f.csv", venue="binance", account="f"))
    assert parsed.derivative_fills is None  # this export has no fills
    assert parsed.derivative_cash.select("instrument", "kind", "asset", "qty").rows() == [
        ("ETH/USDT:USDT-261225", "funding", "USDT", D("0.1")), ("BTC/USD:BTC", "funding", "BTC", D("0.2"))]
