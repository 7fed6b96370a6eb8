"""Bybit readers on fixture files in the venue's own layouts (``fixtures/bybit/``)."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.schemas import FILLS, MOVEMENTS
from utl.venues import binance, bybit
from utl.venues.base import Source, head_text

FIXTURES = Path(__file__).parent / "fixtures" / "bybit"
UTA = "AssetChangeDetails_uta_123456789_20240301_20240306_0.csv"
UTA_IDS = "AssetChangeDetails_uta_ids.csv"
UTA_BAD = "AssetChangeDetails_uta_bad.csv"
FUND = "AssetChangeDetails_fund_123456789_20240301_20240307_0.csv"

EXPECTED_FORMAT = {
    UTA: "bybit.uta_asset_changes",
    UTA_IDS: "bybit.uta_asset_changes",
    UTA_BAD: "bybit.uta_asset_changes",
    "derivatives_legacy.csv": "bybit.derivatives_legacy",
    FUND: "bybit.fund_asset_changes",
    "fund_older.csv": "bybit.fund_asset_changes",
    "spot_current.csv": "bybit.spot_trades",
    "spot_uid_previous.csv": "bybit.spot_trades",
    "spot_pre_uta.csv": "bybit.spot_trades",
    "spot_bad.csv": "bybit.spot_trades",
}

# Heads of other venues' documented files (../shared/venues/*.md), including Binance's.
OTHER_VENUE_HEADS = [
    "Time,Pair,Side,Price,Executed,Amount,Fee\n",
    "Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n",
    "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin\n",
    "User ID,Time,Account,Operation,Coin,Change,Remark\n",
    '"User_ID","UTC_Time","Account","Operation","Coin","Change","Remark"\n',
    "Uid,Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID\n",
    "Time,Type,Amount,Asset,Symbol,Transaction ID\n",
    '{"makerCommission": 10, "balances": [{"asset": "BTC", "free": "0.52", "locked": "0.1"}]}',
    # OKX shares the "UID:" preamble, not the header.
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Order id,Time,Trade Type,Symbol,Action,Amount,"
    "Trading Unit,Filled Price,PnL,Fee,Fee Unit,Position Change,Position Balance,Balance Change,Balance,Balance Unit\n",
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Time,Type,Amount,Before Balance,After Balance,Symbol\n",
    "\nTransactions\nUser,<name>,<user uuid>\nID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,"
    "Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n",
    "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit\n",
    '"txid","refid","time","type","subtype","aclass","subclass","asset","wallet","amount","fee","balance"\n',
    '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"\n',
    "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,"
    "Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note\n",
    '{"id": "28457", "order": "9012345", "timestamp": 1709630102123, "symbol": "BTC/USDT", "side": "buy"}\n',
    "asset,total\nBTC,0.5\n",
]

D = Decimal


def source(name: str, folder: Path = FIXTURES) -> Source:
    return Source(path=folder / name, rel=f"bybit/uta-1/trades/{name}", venue="bybit", account="uta-1")


def read(name: str):
    fmt = next(f for f in bybit.FORMATS if f.name == EXPECTED_FORMAT[name])
    return fmt.read(source(name))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def rows_of(frame: pl.DataFrame) -> list[tuple]:
    return list(frame.select("source_row", "kind", "asset", "qty").iter_rows())


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("name", sorted(EXPECTED_FORMAT))
def test_each_fixture_is_detected_by_exactly_its_format(name: str) -> None:
    head = head_text(FIXTURES / name)
    mine = [f.name for f in bybit.FORMATS + binance.FORMATS if f.detect(head)]
    assert mine == [EXPECTED_FORMAT[name]]


@pytest.mark.parametrize("head", OTHER_VENUE_HEADS)
def test_other_venues_headers_are_not_bybit(head: str) -> None:
    assert [f.name for f in bybit.FORMATS if f.detect(head)] == []


# --------------------------------------------------------------------------- UTA ledger


def test_uta_rows_split_into_cash_fee_and_funding_movements() -> None:
    parsed = read(UTA)
    f = parsed.frame
    assert f.schema == MOVEMENTS
    assert parsed.quarantine.height == 0
    assert rows_of(f) == [
        (1, "realized_pnl", "USDT", D("25")),
        (1, "fee", "USDT", D("-0.9625")),  # UTA: a paid fee is already negative
        (2, "trade", "USDT", D("-650")),
        (3, "trade", "BTC", D("0.01")),
        (3, "fee", "BTC", D("-0.00001")),  # the spot fee sits on the received asset
        (4, "funding", "USDT", D("-0.175")),  # no zero cash-flow line beside it
        (5, "transfer", "USDT", D("1000")),
        (6, "fee", "USDC", D("0.0325")),  # positive Fee Paid is a rebate: money in
        (7, "interest", "BTC", D("0.0000002")),  # 2.00000000000E-7
        (8, "realized_pnl", "USDT", D("0")),  # all parts zero: still one line
        (9, "trade", "ETH", D("-0.5")),  # 20 decimals, trailing zeros
    ]
    assert f["ts"].to_list()[0] == utc(2024, 3, 5, 10)
    assert f["description"].to_list()[5] == "SETTLEMENT"


def test_uta_movements_add_up_to_each_rows_change() -> None:
    f = read(UTA).frame
    by_row = f.group_by("source_row").agg(pl.col("qty").sum()).sort("source_row")
    changes = [D("24.0375"), D("-650"), D("0.00999"), D("-0.175"), D("1000"), D("0.0325"), D("2E-7"), D("0"), D("-0.5")]
    assert by_row["qty"].to_list() == changes


def test_uta_entry_ids_are_unique_and_mark_their_part() -> None:
    ids = read(UTA).frame["entry_id"].to_list()
    assert len(set(ids)) == len(ids)
    assert ids[1] == ids[0] + "/fee"
    assert ids[0].startswith("123456789|USDT|ETHUSDT|TRADE|SELL|") and ids[0].endswith("#1")


def test_uta_variant_with_trade_ids_keys_by_trade_and_currency() -> None:
    parsed = read(UTA_IDS)
    f = parsed.frame
    assert parsed.quarantine.height == 0
    assert f["entry_id"].to_list()[:3] == [
        "2290000000522830001:USDT",
        "2290000000522830001:BTC",
        "2290000000522830001:BTC/fee",
    ]
    assert f["ref_id"].to_list() == ["2290000000522830001"] * 3 + [None]
    assert f["entry_id"].to_list()[3].endswith("#1")  # the transfer has no id
    assert f["ts"].to_list()[0] == utc(2024, 3, 5, 9, 15, 2)


def test_uta_bad_rows() -> None:
    parsed = read(UTA_BAD)
    q = parsed.quarantine
    assert list(zip(q["row"].to_list(), q["column"].to_list())) == [
        (1, "Change"),
        (2, "Fee Paid"),
        (3, "Time(UTC)"),
        (4, "Currency"),
        (5, "Change"),
    ]
    reasons = q["reason"].to_list()
    assert reasons[0] == '"Change": "-0.176" is not Cash Flow + Fee Paid + Funding ("0" + "0" + "-0.175")'
    assert reasons[1] == '"Fee Paid": "abc" is not an exact decimal'
    assert reasons[4] == '"Change" is missing'
    assert q["raw"].to_list()[2] == "2024/03/05 09:15"
    assert sorted(set(parsed.frame["source_row"].to_list())) == [6]


def test_legacy_derivatives_fee_and_funding_paid_are_positive_in_the_file() -> None:
    parsed = read("derivatives_legacy.csv")
    f = parsed.frame
    assert parsed.quarantine.height == 0
    assert rows_of(f) == [
        (1, "funding", "BTC", D("-0.0000015")),
        (2, "realized_pnl", "BTC", D("0.000125")),
        (2, "fee", "BTC", D("-0.00001875")),
        (3, "fee", "BTC", D("-0.00001899")),
        (4, "transfer", "BTC", D("0.1")),
    ]
    assert f["entry_id"].to_list()[1:4] == ["a1b2c3d4-0001", "a1b2c3d4-0001/fee", "a1b2c3d4-0000/fee"]
    assert f["entry_id"].to_list()[0].endswith("/funding")


# --------------------------------------------------------------------------- Funding account


def test_fund_file() -> None:
    parsed = read(FUND)
    f = parsed.frame
    assert f.schema == MOVEMENTS
    assert rows_of(f) == [
        (1, "deposit", "USDT", D("1000")),
        (2, "transfer", "USDT", D("-1000")),
        (3, "interest", "USDT", D("0.012345678901234567")),
        (4, "withdrawal", "USDT", D("-0.012345678901234567")),
        (5, "deposit", "EUR", D("500")),
    ]
    assert f["description"].to_list()[1] == "Transfer to Unified Trading Account"
    assert f["ts"].to_list()[0] == utc(2024, 3, 4, 12)
    q = parsed.quarantine
    assert list(zip(q["row"].to_list(), q["column"].to_list())) == [(6, "QTY")]


def test_fund_versions_with_and_without_uid_give_the_same_keys() -> None:
    older = read("fund_older.csv").frame
    current = read(FUND).frame
    assert older["entry_id"].to_list() == current["entry_id"].to_list()[:2]


# --------------------------------------------------------------------------- spot trades


def test_spot_current_fee_is_execfeev2_in_feecoin() -> None:
    parsed = read("spot_current.csv")
    f = parsed.frame
    assert f.schema == FILLS
    assert parsed.quarantine.height == 0
    assert f["trade_id"].to_list() == ["2290000000522830001", "2290000000522830002", "2290000000522830003"]
    assert f["order_id"].to_list() == ["1836393090823490001", "1836393090823490002", "1836393090823490003"]
    assert f["qty"].to_list() == [D("0.01"), D("-0.5"), D("10")]
    assert f["price"].to_list() == [D("65000"), D("3500"), D("140.05")]
    assert f["quote_qty"].to_list() == [D("650"), D("1750"), D("1400.5")]
    assert f["fee"].to_list() == [D("0.00001"), D("1.75"), D("0.02")]
    assert f["fee_asset"].to_list() == ["BTC", "USDT", "MNT"]
    assert f["ts"].to_list() == [utc(2024, 3, 5, 9, 15), utc(2024, 3, 5, 10, 2), utc(2024, 3, 5, 10, 3)]


def test_spot_previous_fee_is_in_the_received_asset() -> None:
    f = read("spot_uid_previous.csv").frame
    assert f["fee"].to_list() == [D("0.00001"), D("1.75")]
    assert f["fee_asset"].to_list() == ["BTC", "USDT"]  # base on a buy, quote on a sell
    assert f["ts"].to_list() == [utc(2024, 3, 5, 9, 15, 2), utc(2024, 3, 5, 10, 2)]


def test_spot_pre_uta_slashed_pairs_and_unit_suffixes() -> None:
    parsed = read("spot_pre_uta.csv")
    f = parsed.frame
    assert parsed.quarantine.height == 0
    row = f.row(0, named=True)
    assert (row["symbol"], row["base"], row["quote"]) == ("NEIRO/USDT", "NEIRO", "USDT")
    assert (row["qty"], row["price"], row["quote_qty"]) == (D("62304.45375"), D("0.0016"), D("99.687126"))
    assert (row["fee"], row["fee_asset"]) == (D("62.30445375"), "NEIRO")
    assert row["ts"] == utc(2024, 9, 20, 10)


def test_spot_bad_rows() -> None:
    parsed = read("spot_bad.csv")
    q = parsed.quarantine
    assert list(zip(q["row"].to_list(), q["column"].to_list())) == [
        (1, "Filled Price"),
        (2, "Spot Pairs"),
        (3, "Transaction ID"),
        (4, "Timestamp (UTC)"),
        (5, "Direction"),
        (6, "ExecFeeV2"),
    ]
    assert q["reason"].to_list()[0] == '"Filled Price": "-65000" is not positive'
    assert q["reason"].to_list()[3] == '"Timestamp (UTC)": "9:15 2024-03-05" is not a HH:MM YYYY-MM-DD time'
    assert parsed.frame["source_row"].to_list() == [7]


def test_uid_preamble_without_a_header_fails_the_whole_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.csv"
        path.write_text("UID: 1,Company Name: ,Country: \n")
        with pytest.raises(ValueError, match="no header"):
            bybit.read_uta(Source(path, "a.csv", "bybit", "uta-1"))


# --------------------------------------------------------------------------- properties

amounts = st.decimals(min_value=Decimal("-99999999"), max_value=Decimal("99999999"), places=18, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(cash=amounts, fee=amounts, funding=amounts, exponent=st.booleans(), padding=st.integers(0, 2))
def test_uta_parts_round_trip_exactly(cash: Decimal, fee: Decimal, funding: Decimal, exponent: bool, padding: int) -> None:
    """Venue spellings (exponent form, 20 decimals padded with zeros) give the exact value,
    and the movements of a row add up to its Change."""

    def text(d: Decimal) -> str:
        return f"{d:E}" if exponent else format(d, "f") + ("0" * padding if "." in format(d, "f") else "")

    change = cash + fee + funding
    row = ["1", "USDT", "BTCUSDT", "TRADE", "BUY", "1", "0", "1", text(funding), text(fee), text(cash), text(change), "0", "--", "2024-03-05 10:00:00"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uta.csv"
        path.write_text("UID: 1,Company Name: ,Country: \n" + ",".join(bybit.UTA_WITH_UID) + "\n" + ",".join(row) + "\n")
        parsed = bybit.read_uta(Source(path, "uta.csv", "bybit", "uta-1"))
    assert parsed.quarantine.height == 0, parsed.quarantine.to_dicts()
    parts = dict(zip(parsed.frame["kind"].to_list(), parsed.frame["qty"].to_list()))
    assert parts.get("trade", D(0)) == cash
    assert parts.get("fee", D(0)) == fee
    assert parts.get("funding", D(0)) == funding
    assert sum(parsed.frame["qty"].to_list()) == change
