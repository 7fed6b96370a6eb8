"""Deribit: the size, price and fee of a derivative fill are parsed with the log's other
numbers, over every row; only a trade row's are checked, so a junk cell elsewhere refuses
nothing, and a trade row's bad cell is refused naming the venue's column."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from utl.venues.base import Source
from utl.venues.deribit import read_transaction_log

HEADER = ("ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,"
          "Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note\n")
OLDEST = ("ID,UserSeq,Date,Instrument,Type,Side,Size,Position,Price,Mark Price,Cash Flow,Funding,Fee Rate,Fee Paid,"
          "Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info\n")


def read(tmp_path: Path, text: str):
    path = tmp_path / "transaction_log-4242-BTC-2024.csv"
    path.write_text(text)
    return read_transaction_log(Source(path=path, rel="log.csv", venue="deribit", account="main"))


def test_junk_in_a_non_trade_row_s_size_price_or_fee_refuses_nothing(tmp_path: Path) -> None:
    parsed = read(tmp_path, HEADER
                  # a deposit and a transfer whose fill columns hold junk: never read as a fill
                  + "1,1,2024-03-05 09:00:00,,deposit,-,junk,,,n/a,,,0.5,0,0,1e-40,0,0.5,0.5,0.5,,,,\n"
                  + "2,2,2024-03-05 09:10:00,BTC-PERPETUAL,transfer,-,1,2,3,abc,,,0.1,0,0,x,0,0.1,0.6,0.6,,,,\n"
                  + "3,3,2024-03-05 09:15:02,BTC-PERPETUAL,trade,open buy,10000,0.15,10000,65000,65010,65005,0,0,"
                  "0.0005,0.00007692,0,-0.00007692,0.6,0.6,300001,40001,,\n"
                  # settlements: a junk price is no price; a good one is the settlement's
                  + "4,4,2024-03-06 08:00:00,BTC-PERPETUAL,settlement,long,,,10000,junk,,,0.001,0,,0,0,0.001,0.6,0.6,,,,\n"
                  + "5,5,2024-03-06 08:00:00,BTC-PERPETUAL,settlement,long,,,10000,65500,,,0.002,0,,0,0,0.002,0.6,0.6,,,,\n")
    assert parsed.quarantine.height == 0
    assert parsed.derivative_fills.select("source_row", "qty", "price", "fee").rows() == [
        (3, D("10000"), D("65000"), D("0.00007692"))]
    assert parsed.derivative_cash.select("source_row", "kind", "qty", "price").rows() == [
        (3, "fee", D("-0.00007692"), None), (4, "settlement", D("0.001"), None), (5, "settlement", D("0.002"), D("65500"))]


def test_a_trade_row_s_bad_numbers_are_refused_by_the_venue_s_columns(tmp_path: Path) -> None:
    parsed = read(tmp_path, HEADER
                  + "1,1,2024-03-05 09:15:02,BTC-PERPETUAL,trade,open buy,10000,0.15,10000,-5,65010,65005,0,0,"
                  "0.0005,0.00007692,0,-0.00007692,0.6,0.6,300001,40001,,\n"
                  + "2,2,2024-03-05 09:16:02,BTC-PERPETUAL,trade,open buy,10,0.15,10000,65000,65010,65005,0,0,"
                  "0.0005,1e-40,0,-0.00007692,0.6,0.6,300002,40002,,\n"
                  + "3,3,2024-03-05 09:17:02,BTC-PERPETUAL,trade,open buy,,0.15,10000,65000,65010,65005,0,0,"
                  "0.0005,0,0,-0.00007692,0.6,0.6,300003,40003,,\n")
    assert parsed.derivative_fills.height == 0
    assert parsed.quarantine.select("row", "column").rows() == [(1, "Price"), (2, "Fee Charged"), (3, "Amount")]


def test_the_oldest_layout_reads_size_and_fee_paid(tmp_path: Path) -> None:
    parsed = read(tmp_path, OLDEST
                  + "1,1,2024-03-05 09:15:02,BTC-PERPETUAL,trade,buy,20,20,65000,65010,0,0,0.0005,0.00003,0,"
                  "-0.00003,0.6,0.6,300001,40001,\n"
                  + "2,2,2024-03-05 09:16:02,BTC-PERPETUAL,trade,sell,1.5.5,0,65000,65010,0,0,0.0005,abc,0,"
                  "-0.00003,0.6,0.6,300002,40002,\n")
    assert parsed.derivative_fills.select("source_row", "qty", "fee").rows() == [(1, D("20"), D("0.00003"))]
    assert parsed.quarantine.select("row", "column").rows() == [(2, "Size"), (2, "Fee Paid")]
