"""A huge but valid number (20 digits before the point) whose product or difference leaves
Decimal(38, 18) costs its row, refused naming file, row and column, never the whole file
(Polars would fail the file with "overflow in decimal multiplication")."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl

from utl.decimals import DECIMAL, product_overflows, sum_overflows
from utl.venues import all_formats
from utl.venues.base import Source, head_text

HUGE = "12345678901234567890.5"
LARGEST = "99999999999999999999.999999999999999999"


def _read(path: Path, name: str):
    (fmt,) = [f for f in all_formats() if f.detect(head_text(path))]
    assert fmt.name == name
    return fmt.read(Source(path, path.name, "v", "a"))


def _refused(parsed) -> list[tuple[int, str | None, str, str | None]]:
    return parsed.quarantine.select("row", "column", "reason", "raw").rows()


def test_product_overflows_as_polars_would_fail() -> None:
    pairs = [
        (HUGE, "2"), (HUGE, "10"), (HUGE, "-100"), ("10000000000", "9999999999.999999999999999999"), ("10000000000", "10000000000"),
        ("0.5", LARGEST), ("1.000000000000000001", LARGEST), (LARGEST, "0.999999999999999999"), ("1", LARGEST),
        ("99999999999", "1000000000"), ("-99999999999", "1000000001"), (None, HUGE), ("0.1", "0.1"),
    ]
    frame = pl.DataFrame([(None if a is None else Decimal(a), Decimal(b)) for a, b in pairs], schema={"a": DECIMAL, "b": DECIMAL},
                         orient="row")
    expected = []
    for i in range(frame.height):
        try:
            frame.slice(i, 1).select(pl.col("a") * pl.col("b"))
            expected.append(False)
        except pl.exceptions.ComputeError:
            expected.append(True)
    assert product_overflows(frame, pl.col("a"), pl.col("b")).to_list() == expected
    assert expected == [False, True, True, False, True, False, True, False, False, False, True, False, False]


def test_sum_overflows_as_polars_would_fail() -> None:
    pairs = [(LARGEST, "0"), (LARGEST, "0.000000000000000001"), (LARGEST, "-1"), ("-" + LARGEST, "-0.000000000000000001"),
             ("50000000000000000000", "50000000000000000000"), ("50000000000000000000", "49999999999999999999.999999999999999999")]
    frame = pl.DataFrame([(Decimal(a), Decimal(b)) for a, b in pairs], schema={"a": DECIMAL, "b": DECIMAL}, orient="row")
    got = frame.select(sum_overflows(pl.col("a"), pl.col("b")))[:, 0].to_list()
    assert got == [False, True, False, True, True, False]
    frame.filter(~pl.Series(got)).select(pl.col("a") + pl.col("b"))  # the rest does add


KRAKEN_TRADES = '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"'


def test_kraken_trades_refuse_a_vol_times_price_that_overflows(tmp_path: Path) -> None:
    path = tmp_path / "trades.csv"
    path.write_text("\n".join([
        KRAKEN_TRADES,
        '"T1","O1","XXBTZUSD","2024-03-05 09:00:00","buy","limit",65000.5,,,0.02,0,"",""',
        f'"T2","O2","XXBTZUSD","2024-03-05 09:01:00","buy","limit",100,,,{HUGE},0,"",""',
        f'"T3","O3","XXBTZUSD","2024-03-05 09:02:00","sell","limit",100,5.5,,{HUGE},0,"",""',  # a stated cost: no product
        '"T4","O4","XXBTZUSD","2024-03-05 09:03:00","sell","limit",2,,,3,0,"",""',
    ]) + "\n")
    parsed = _read(path, "kraken.trades")
    assert _refused(parsed) == [(2, "vol", 'no "cost", and "vol" × "price" overflows 38 digits (20 before the point)', f"{HUGE} × 100")]
    assert parsed.frame["trade_id"].to_list() == ["T1", "T3", "T4"]
    assert [str(v) for v in parsed.frame["quote_qty"]] == ["1300.010000000000000000", "5.500000000000000000", "6.000000000000000000"]


PRO_FILLS = "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit"


def test_coinbase_pro_fills_refuse_a_size_times_price_that_overflows(tmp_path: Path) -> None:
    path = tmp_path / "fills.csv"
    path.write_text("\n".join([
        PRO_FILLS,
        "default,7001,BTC-USD,BUY,2021-02-01T10:00:00.123Z,0.5,BTC,33000.00,1,-16501,USD",
        f"default,7002,BTC-USD,SELL,2021-02-02T11:30:00.456Z,{HUGE},BTC,34000.00,1,1,USD",
        "default,7003,BTC-USD,SELL,2021-02-02T11:31:00Z,0.2,BTC,34000.00,1,6799,USD",
    ]) + "\n")
    parsed = _read(path, "coinbase.pro_fills")
    assert _refused(parsed) == [(2, "size", '"size" × "price" overflows 38 digits (20 before the point)', f"{HUGE} × 34000.00")]
    assert parsed.frame["trade_id"].to_list() == ["7001", "7003"]


REPORT = (
    "\nTransactions\nUser,Jane Doe,3f1c0a52-7d1e-4c8e-9a0b-5e6f7a8b9c0d\n"
    "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,"
    "Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n"
)


def test_coinbase_report_refuses_an_advanced_trade_whose_quote_or_fee_overflows(tmp_path: Path) -> None:
    path = tmp_path / "report.csv"
    path.write_text(REPORT + "\n".join([
        'a1,2024-03-06 14:00:00 UTC,Advanced Trade Sell,ETH,-1.5,USD,"$3,500.00","-$5,250.00","-$5,229.00",$21.00,'
        "Sold 1.5 ETH for 5229.00 USDC on ETH-USDC at 3500.00 USDC/ETH",
        f'a2,2024-03-06 14:01:00 UTC,Advanced Trade Sell,ETH,-{HUGE},USD,"$3,500.00","-$5,250.00","-$5,229.00",$21.00,'
        f"Sold {HUGE} ETH for 5229.00 USDC on ETH-USDC at 3500.00 USDC/ETH",
        # size × rate fits; the fee, 90000000000000000000 less -(that product), does not
        'a3,2024-03-06 14:02:00 UTC,Advanced Trade Buy,ETH,9,USD,"$3,500.00","$5,250.00","$5,229.00",$21.00,'
        "Bought 9 ETH for -90000000000000000000 USDC on ETH-USDC at 9000000000000000000 USDC/ETH",
        "a4,2024-03-07 08:00:00 UTC,Send,BTC,-0.005,USD,\"$66,000.00\",-$330.00,-$330.00,$0.00,",
    ]) + "\n")
    parsed = _read(path, "coinbase.transaction_report")
    assert _refused(parsed) == [
        (2, "Quantity Transacted", "\"Quantity Transacted\" × the note's rate overflows 38 digits (20 before the point)",
         f"-{HUGE} × 3500.00"),
        (3, "Notes", '"Notes": the fee (-90000000000000000000 less 9 × 9000000000000000000) overflows 38 digits (20 before the point)',
         "Bought 9 ETH for -90000000000000000000 USDC on ETH-USDC at 9000000000000000000 USDC/ETH"),
    ]
    assert parsed.frame["source_row"].unique(maintain_order=True).to_list() == [1, 4]


DERIBIT = ("ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,Funding,"
           "Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note")


def test_deribit_refuses_a_row_whose_fee_or_rest_part_overflows(tmp_path: Path) -> None:
    path = tmp_path / "transaction_log-4242-BTC-2024.csv"
    path.write_text("\n".join([
        DERIBIT,
        "90001,1001,2024-03-05 09:00:00,,deposit,-,,,,,,,0.5,0,0,0,0,0.5,0.5,0.5,,,addr,",
        f"90002,1002,2024-03-05 09:01:00,,deposit,-,,,,,,,-{LARGEST},0,0,0,0,1,0.5,0.5,,,addr,",  # fee part 1 + LARGEST
        f"90003,1003,2024-03-05 09:02:00,,deposit,-,,,,,,,{LARGEST},-1,0,0,0,{LARGEST},0.5,0.5,,,addr,",  # rest part LARGEST + 1
        "90004,1004,2024-03-05 09:03:00,,deposit,-,,,,,,,0.25,0,0,0,0,0.25,0.5,0.5,,,addr,",
    ]) + "\n")
    parsed = _read(path, "deribit.transaction_log")
    assert _refused(parsed) == [
        (2, "Cash Flow", '"Change" - "Cash Flow" (the fee) overflows 38 digits (20 before the point)', f"1 - -{LARGEST}"),
        (3, "Funding", '"Cash Flow" - "Funding" overflows 38 digits (20 before the point)', f"{LARGEST} - -1"),
    ]
    assert parsed.frame["source_row"].to_list() == [1, 4]


OKX = ("UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Order id,Time,Trade Type,Symbol,Action,Amount,Trading Unit,"
       "Filled Price,PnL,Fee,Fee Unit,Position Change,Position Balance,Balance Change,Balance,Balance Unit")


def test_okx_refuses_a_balance_change_less_fee_that_overflows(tmp_path: Path) -> None:
    path = tmp_path / "trading.csv"
    path.write_text("\n".join([
        OKX,
        "7101,6901,2024-03-05 17:15:02,Spot,BTC-USDT,Buy,0.01,BTC,65000,0,-0.00001,BTC,0,0,0.00999,0.00999,BTC",
        f"7102,6902,2024-03-05 17:16:02,Spot,BTC-USDT,Buy,0.01,BTC,65000,0,-1,BTC,0,0,{LARGEST},1,BTC",
        f"7103,6903,2024-03-05 17:17:02,Spot,BTC-USDT,Buy,0.01,BTC,65000,0,-1,USDT,0,0,{LARGEST},1,BTC",  # fee apart: fits
    ]) + "\n")
    parsed = _read(path, "okx.trading_account")
    assert _refused(parsed) == [(2, "Fee", '"Balance Change" - "Fee" overflows 38 digits (20 before the point)', f"{LARGEST} - -1")]
    assert parsed.frame["source_row"].unique(maintain_order=True).to_list() == [1, 3]


def test_ccxt_trades_refuse_what_overflows_and_book_a_product_that_just_fits(tmp_path: Path) -> None:
    def trade(i: int, amount: str, price: str, cost: str | None) -> str:
        return json.dumps({"id": str(i), "order": f"o{i}", "timestamp": 1709630102123, "datetime": "2024-03-05T09:15:02.123Z",
                           "symbol": "BTC/USDT", "side": "buy", "price": price, "amount": amount, "cost": cost, "fee": None})

    path = tmp_path / "trades.jsonl"
    path.write_text("\n".join([
        trade(1, "0.02", "65000", "1300"),
        # a refused negative amount whose cost less amount × price leaves Decimal(38, 18)
        trade(2, "-90000000000000000000", "0.9", "90000000000000000000"),
        trade(3, "12345678901234567890", "9", None),  # 21 digits, and the product leaves 20
        trade(4, "12345678901234567890", "1.5", None),  # 21 digits, yet the product fits
    ]) + "\n")
    parsed = _read(path, "ccxt.trades")
    assert [(r, c) for r, c, _, _ in _refused(parsed)] == [(2, "amount"), (2, "cost"), (3, "cost")]
    assert parsed.quarantine.filter(pl.col("row") == 3)["reason"].item() == "no cost, and amount × price is too large to compute"
    assert parsed.frame["trade_id"].to_list() == ["1", "4"]
    assert str(parsed.frame["quote_qty"][1]) == "18518518351851851835.000000000000000000"
