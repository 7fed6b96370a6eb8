"""Binance readers on fixture files in the venue's own layouts (``fixtures/binance/``)."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import datetime, timezone
from decimal import Context, Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.schemas import BALANCES, FILLS, MOVEMENTS
from utl.venues import binance
from utl.venues.base import Source, head_text

FIXTURES = Path(__file__).parent / "fixtures" / "binance"
SPOT_UTC8 = "Binance-Spot-Trade-History-202403051200(UTC+8)_ab12.csv"
SPOT_UTC_MINUS6 = "Binance-Spot-Trade-History-202403051200(UTC--6)_cd34.csv"
SPOT_BAD = "Binance-Spot-Trade-History-202403051200(UTC+0)_bad.csv"
LEDGER_UTC8 = "Binance-Transaction-History-202403061200(UTC+8)_ef56.csv"
LEDGER_BAD = "Binance-Transaction-History(UTC+0)_bad.csv"
FUTURES = "Futures-Trade-History-202403051200(UTC+0)_gh78.csv"
FUTURES_TX = "Futures-Transaction-History-202403061200(UTC+8).csv"

# Which format each fixture is, by name.
EXPECTED_FORMAT = {
    SPOT_UTC8: "binance.spot_trades",
    SPOT_UTC_MINUS6: "binance.spot_trades",
    SPOT_BAD: "binance.spot_trades",
    "spot_previous.csv": "binance.spot_trades",
    "spot_renamed_without_zone.csv": "binance.spot_trades",
    "spot_legacy.csv": "binance.spot_trades_legacy",
    LEDGER_UTC8: "binance.transactions",
    LEDGER_BAD: "binance.transactions",
    "ledger_previous.csv": "binance.transactions",
    "ledger_oldest.csv": "binance.transactions",
    FUTURES: "binance.futures_trades",
    "futures_trades_older.csv": "binance.futures_trades",
    FUTURES_TX: "binance.futures_transactions",
    "futures_transactions_older.csv": "binance.futures_transactions",
    "account.json": "binance.account",
    "account_bad.json": "binance.account",
}

# Heads of other venues' documented files (../shared/venues/*.md): none may look like Binance.
OTHER_VENUE_HEADS = [
    "UID: 123456789,Company Name: ,Country: \nUid,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,"
    "Funding,Fee Paid,Cash Flow,Change,Wallet Balance,Action,Time(UTC)\n",
    "Spot Pairs,Order Type,Direction,feeCoin,ExecFeeV2,Filled Value,Filled Price,Filled Quantity,Fees,"
    "Transaction ID,Order No.,Timestamp (UTC)\n",
    "Time,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,Change,"
    "Wallet Balance,Fee Rate,Trade ID,Order ID\n",
    "Uid,Date & Time(UTC),Coin,QTY,Type,Account Balance,Description\n",
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Order id,Time,Trade Type,Symbol,Action,Amount,"
    "Trading Unit,Filled Price,PnL,Fee,Fee Unit,Position Change,Position Balance,Balance Change,Balance,Balance Unit\n",
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Time,Type,Amount,Before Balance,After Balance,Symbol\n",
    "\nTransactions\nUser,<name>,<user uuid>\nID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,"
    "Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes\n",
    "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit\n",
    "portfolio,type,time,amount,balance,amount/balance unit,transfer id,trade id,order id\n",
    '"txid","refid","time","type","subtype","aclass","subclass","asset","wallet","amount","fee","balance"\n',
    '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"\n',
    "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,"
    "Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note\n",
    '{"id": "28457", "order": "9012345", "timestamp": 1709630102123, "symbol": "BTC/USDT", "side": "buy"}\n',
    '{"error": [], "result": {"ZEUR": "399.0400", "XXBT": "0.0100000000"}}',
    "asset,total\nBTC,0.5\n",
    # ccxt fetch_balance nests the Binance reply under "info": it is ccxt's, not ours.
    '{"info": {"balances": [{"asset": "BTC", "free": "0.52", "locked": "0.1"}]}, "free": {"BTC": 0.52}, '
    '"used": {"BTC": 0.1}, "total": {"BTC": 0.62}, "BTC": {"free": 0.52, "used": 0.1, "total": 0.62}}',
]


def source(name: str, folder: Path = FIXTURES) -> Source:
    return Source(path=folder / name, rel=f"binance/mm-1/trades/{name}", venue="binance", account="mm-1")


def read(name: str):
    fmt = next(f for f in binance.FORMATS if f.name == EXPECTED_FORMAT[name])
    return fmt.read(source(name))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def exact(frame: pl.DataFrame, column: str) -> list[Decimal | None]:
    return frame[column].to_list()


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("name", sorted(EXPECTED_FORMAT))
def test_each_fixture_is_detected_by_exactly_its_format(name: str) -> None:
    head = head_text(FIXTURES / name)
    assert [f.name for f in binance.FORMATS if f.detect(head)] == [EXPECTED_FORMAT[name]]


@pytest.mark.parametrize("head", OTHER_VENUE_HEADS)
def test_other_venues_headers_are_not_binance(head: str) -> None:
    assert [f.name for f in binance.FORMATS if f.detect(head)] == []


def test_detects_quoted_header_cells() -> None:
    head = '"Time","Pair","Side","Price","Executed","Amount","Fee"\n'
    assert binance.FORMATS[0].detect(head)


def test_detects_an_account_reply_longer_than_the_head() -> None:
    balances = [{"asset": f"A{i}", "free": "0.00000000", "locked": "0.00000000"} for i in range(400)]
    text = json.dumps({"makerCommission": 10, "updateTime": 1709683200000, "balances": balances})
    assert len(text) > 8192
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "2024-03-05.json"
        path.write_text(text)
        head = head_text(path)
        assert [f.name for f in binance.FORMATS if f.detect(head)] == ["binance.account"]
        parsed = binance.read_account(Source(path, "x.json", "binance", "mm-1"))
    assert parsed.frame.height == 400 and parsed.quarantine.height == 0


# --------------------------------------------------------------------------- spot trades


def test_spot_current_parses_every_number_exactly_and_signs_by_side() -> None:
    parsed = read(SPOT_UTC8)
    f = parsed.frame
    assert f.schema == FILLS
    assert parsed.quarantine.height == 0
    assert f["source_row"].to_list() == [1, 2, 3, 4, 5, 6, 7]
    assert f["symbol"].to_list() == ["BTCUSDT", "ETHBTC", "1INCHUSDT", "1000SATSUSDT", "BNBUSDT", "BNBUSDT", "BTCFDUSD"]
    assert f["base"].to_list() == ["BTC", "ETH", "1INCH", "1000SATS", "BNB", "BNB", "BTC"]
    assert f["quote"].to_list() == ["USDT", "BTC", "USDT", "USDT", "USDT", "USDT", "FDUSD"]
    assert f["side"].to_list() == ["buy", "sell", "sell", "buy", "buy", "buy", "sell"]
    D = Decimal
    assert exact(f, "qty") == [D("0.02"), D("-1.2"), D("-100.5"), D("1000000.00"), D("0.1"), D("0.1"), D("-0.01")]
    assert exact(f, "price") == [D("65000"), D("0.054"), D("0.45"), D("0.0003"), D("400"), D("400"), D("66000")]
    assert exact(f, "quote_qty") == [D("1300"), D("0.0648"), D("45.225"), D("300.0003"), D("40"), D("40"), D("660")]
    assert exact(f, "fee") == [D("0.00002"), D("0.0000412"), D("0.045225"), D("1000.00"), D("0.000075"), D("0.000075"), D("0")]
    assert f["fee_asset"].to_list() == ["BTC", "BNB", "USDT", "1000SATS", "BNB", "BNB", "FDUSD"]
    assert f["liquidity"].to_list() == [None] * 7 and f["order_id"].to_list() == [None] * 7
    assert f["venue"].unique().to_list() == ["binance"] and f["account"].unique().to_list() == ["mm-1"]
    assert f["source_file"].unique().to_list() == [f"binance/mm-1/trades/{SPOT_UTC8}"]


def test_spot_time_zone_comes_from_the_file_name() -> None:
    ts = read(SPOT_UTC8).frame["ts"].to_list()
    # 09:15:02 at UTC+8 is 01:15:02Z; the 4-digit-year row 2024-03-06 00:30 is 2024-03-05 16:30Z.
    assert ts[0] == utc(2024, 3, 5, 1, 15, 2)
    assert ts[6] == utc(2024, 3, 5, 16, 30, 0)
    # "(UTC--6)" is UTC-6: 20:15:02 local is 02:15:02Z the next day (and CRLF lines read).
    assert read(SPOT_UTC_MINUS6).frame["ts"].to_list() == [utc(2024, 3, 6, 2, 15, 2)]


def test_spot_file_without_zone_in_its_name_refuses_every_row() -> None:
    parsed = read("spot_renamed_without_zone.csv")
    assert parsed.frame.height == 0
    q = parsed.quarantine
    assert q["row"].to_list() == [1, 2]
    assert q["column"].to_list() == ["Time", "Time"]
    assert all("time zone unknown" in r for r in q["reason"].to_list())


def test_spot_identical_rows_get_distinct_ids_by_occurrence() -> None:
    ids = read(SPOT_UTC8).frame["trade_id"].to_list()
    assert len(set(ids)) == len(ids)
    assert ids[4].endswith("#1") and ids[5].endswith("#2")
    assert ids[4][:-2] == ids[5][:-2]


def test_spot_key_is_the_same_for_one_fill_exported_in_two_zones_or_versions() -> None:
    current = read(SPOT_UTC8).frame["trade_id"].to_list()[:2]
    previous = read("spot_previous.csv").frame["trade_id"].to_list()
    assert current == previous


def test_spot_previous_header_reads_utc() -> None:
    f = read("spot_previous.csv").frame
    assert f["ts"].to_list() == [utc(2024, 3, 5, 1, 15, 2), utc(2024, 3, 5, 1, 20, 41)]
    assert exact(f, "qty") == [Decimal("0.02"), Decimal("-1.2")]


def test_spot_bad_rows_are_quarantined_with_row_and_column_and_the_rest_books() -> None:
    parsed = read(SPOT_BAD)
    q = parsed.quarantine
    assert q.schema == pl.Schema({"file": pl.String, "row": pl.Int64, "column": pl.String, "reason": pl.String, "raw": pl.String})
    got = list(zip(q["row"].to_list(), q["column"].to_list()))
    assert got == [
        (1, "Executed"),
        (2, "Side"),
        (3, "Executed"),
        (4, "Price"),
        (5, "Time"),
        (6, "Pair"),
        (7, None),
        (9, "Fee"),
        (10, "Time"),
        (12, None),
    ]
    reasons = dict(zip(q["row"].to_list(), q["reason"].to_list()))
    assert reasons[1] == '"Executed": "0.0200000xBTC" is not an exact decimal'
    assert reasons[2] == '"Side": "HOLD" is not BUY or SELL'
    assert reasons[3] == '"Executed": "0.00000000BTC" is not positive'
    assert reasons[4] == '"Price": "0" is not positive'
    assert reasons[5] == '"Time": "24-03-05 25:15:05" is not a YY-MM-DD HH:MM:SS time'
    assert "does not end with the quote asset" in reasons[6]
    assert reasons[7] == "the row has 5 cells, the header 7"
    assert reasons[9] == '"Fee": "0.1234567890123456789BTC" is not an exact decimal'
    assert reasons[10] == '"Time": "99-01-01 00:00:00" is outside 2000..2099'
    assert reasons[12] == "the row has 8 cells, the header 7"
    raws = dict(zip(q["row"].to_list(), q["raw"].to_list()))
    assert raws[1] == "0.0200000xBTC" and raws[7] == "24-03-05 09:15:07,BTCUSDT,BUY,65000.00,0.02000000BTC"
    assert set(q["file"].to_list()) == {f"binance/mm-1/trades/{SPOT_BAD}"}
    # The blank line 8 is neither booked nor refused; row 11 books.
    assert parsed.frame["source_row"].to_list() == [11]
    assert exact(parsed.frame, "qty") == [Decimal("-0.01")]


def test_spot_legacy_layout() -> None:
    parsed = read("spot_legacy.csv")
    f = parsed.frame
    assert f.schema == FILLS
    assert f["base"].to_list() == ["BTC", "ETH", "BNB"] and f["quote"].to_list() == ["USDT", "BTC", "ETH"]
    assert exact(f, "qty") == [Decimal("0.5"), Decimal("-2"), Decimal("10")]
    assert exact(f, "quote_qty") == [Decimal("5000"), Decimal("0.04"), Decimal("1.0")]
    assert f["fee_asset"].to_list() == ["BTC", "BTC", "BNB"]
    assert f["ts"].to_list()[0] == utc(2019, 8, 1, 10, 0, 0)
    q = parsed.quarantine
    assert q["row"].to_list() == [4] and q["column"].to_list() == ["Fee Coin"]


def test_a_header_without_a_needed_column_fails_the_whole_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x(UTC+0).csv"
        path.write_text("Time,Pair,Side,Price,Executed,Amount\n24-03-05 09:15:02,BTCUSDT,BUY,1,1BTC,1USDT\n")
        with pytest.raises(ValueError, match="'Fee'"):
            binance.read_spot_trades(Source(path, "x.csv", "binance", "mm-1"))


def test_a_file_that_is_not_utf8_fails_the_whole_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x(UTC+0).csv"
        path.write_bytes(b"Time,Pair,Side,Price,Executed,Amount,Fee\n24-03-05 09:15:02,BTC\xffUSDT,BUY,1,1BTC,1USDT,0BTC\n")
        with pytest.raises(UnicodeDecodeError):
            binance.read_spot_trades(Source(path, "x.csv", "binance", "mm-1"))


# --------------------------------------------------------------------------- transaction history


def test_ledger_current_rows_are_signed_movements_with_kinds() -> None:
    parsed = read(LEDGER_UTC8)
    f = parsed.frame
    assert f.schema == MOVEMENTS
    assert parsed.quarantine.height == 0
    assert f.height == 18
    assert f["kind"].to_list() == [
        "trade", "trade", "fee", "funding", "deposit", "withdrawal", "transfer", "transfer", "realized_pnl",
        "fee", "interest", "rebate", "other", "other", "trade", "trade", "trade", "interest",
    ]  # fmt: skip
    assert f["description"].to_list()[3] == "Funding Fee"
    assert f["asset"].to_list()[:3] == ["BTC", "USDT", "BTC"]
    D = Decimal
    assert exact(f, "qty")[:4] == [D("0.02"), D("-1300"), D("-0.00002"), D("-0.4213")]
    assert exact(f, "qty")[11] == D("0.00003605")  # 3.605E-05
    assert f["ts"].to_list()[0] == utc(2024, 3, 5, 1, 15, 2)
    assert f["ref_id"].to_list() == [None] * 18


def test_ledger_repeated_rows_get_distinct_entry_ids() -> None:
    ids = read(LEDGER_UTC8).frame["entry_id"].to_list()
    assert len(set(ids)) == len(ids)
    assert ids[15].endswith("#1") and ids[16].endswith("#2") and ids[15][:-2] == ids[16][:-2]


def test_ledger_previous_and_oldest_versions_give_the_same_rows_and_keys() -> None:
    previous, oldest = read("ledger_previous.csv"), read("ledger_oldest.csv")
    assert previous.frame.drop("source_file").equals(oldest.frame.drop("source_file"))
    f = previous.frame
    assert f["kind"].to_list() == ["trade", "trade", "fee"]
    assert exact(f, "qty") == [Decimal("0.02"), Decimal("-1300"), Decimal("-0.00002")]
    assert f["ts"].to_list() == [utc(2024, 3, 5, 1, 15, 2)] * 3


def test_ledger_bad_rows() -> None:
    parsed = read(LEDGER_BAD)
    q = parsed.quarantine
    assert list(zip(q["row"].to_list(), q["column"].to_list())) == [(1, "Change"), (2, "Coin"), (3, "Change"), (4, "Time")]
    assert q["reason"].to_list()[0] == '"Change": "abc" is not an exact decimal'
    assert q["reason"].to_list()[2] == '"Change" is missing'
    assert parsed.frame["source_row"].to_list() == [5]


# --------------------------------------------------------------------------- futures


def test_futures_trades_keep_the_symbol_and_the_trade_id_as_written() -> None:
    parsed = read(FUTURES)
    f = parsed.frame
    assert f.schema == FILLS
    # Ids as Binance writes them (per symbol: ingest qualifies them by pair, ledger.md).
    assert f["trade_id"].to_list() == ["500001", "500002", "500002"]
    assert f["order_id"].to_list() == ["800001", "800002", "800003"]
    assert f["symbol"].to_list() == ["BTCUSDT", "BTCUSDT", "ETHUSDT"]
    assert f["base"].to_list() == ["BTC", "BTC", "ETH"] and f["quote"].to_list() == ["USDT"] * 3
    assert exact(f, "qty") == [Decimal("-0.010"), Decimal("0.005"), Decimal("0.1")]
    assert exact(f, "quote_qty") == [Decimal("651"), Decimal("325"), Decimal("350.05")]
    assert exact(f, "fee") == [Decimal("0.2604"), Decimal("0.0325"), Decimal("0.0001")]
    assert f["fee_asset"].to_list() == ["USDT", "USDT", "BNB"]
    assert f["liquidity"].to_list() == ["taker", "maker", "taker"]
    q = parsed.quarantine
    assert list(zip(q["row"].to_list(), q["column"].to_list())) == [(4, "Maker"), (5, "Trade ID")]


def test_futures_trades_older_header_uses_content_keys() -> None:
    f = read("futures_trades_older.csv").frame
    assert f["ts"].to_list() == [utc(2024, 3, 5, 10)] * 2
    ids = f["trade_id"].to_list()
    assert ids[0].endswith("#1") and ids[1].endswith("#2")
    assert exact(f, "fee") == [Decimal("0.2604")] * 2


def test_futures_transactions() -> None:
    parsed = read(FUTURES_TX)
    f = parsed.frame
    assert f.schema == MOVEMENTS
    assert f["kind"].to_list() == ["realized_pnl", "fee", "funding", "transfer", "other"]
    assert exact(f, "qty") == [Decimal("1"), Decimal("-0.2604"), Decimal("-0.0431"), Decimal("500"), Decimal("0.5")]
    # A PnL and a commission may share a transaction id: the type keeps keys apart.
    assert f["entry_id"].to_list()[:2] == ["9001:REALIZED_PNL:USDT", "9001:COMMISSION:USDT"]
    assert f["ts"].to_list()[0] == utc(2024, 3, 5, 10)
    assert parsed.quarantine["row"].to_list() == [6]
    older = read("futures_transactions_older.csv").frame
    assert older["entry_id"].to_list() == f["entry_id"].to_list()[:2]


# --------------------------------------------------------------------------- balances


def test_account_total_is_free_plus_locked() -> None:
    parsed = read("account.json")
    f = parsed.frame
    assert f.schema == BALANCES
    assert f["asset"].to_list() == ["BTC", "USDT", "1INCH"]
    assert exact(f, "total") == [Decimal("0.62"), Decimal("1200"), Decimal("0")]
    assert f["source_row"].to_list() == [1, 2, 3]
    assert parsed.quarantine.height == 0


def test_account_bad_entries() -> None:
    parsed = read("account_bad.json")
    q = parsed.quarantine
    assert list(zip(q["row"].to_list(), q["column"].to_list())) == [(1, "free"), (3, None), (4, "asset"), (5, "free"), (6, "free")]
    assert q["reason"].to_list()[0] == '"free": "0.5x" is not an exact decimal'
    f = parsed.frame
    # A bare JSON number is read from its text, never through a float.
    assert f["asset"].to_list() == ["ETH", "SOL"]
    assert exact(f, "total") == [Decimal("1.75"), Decimal("2.5")]


# --------------------------------------------------------------------------- properties

CODES = ["BTC", "ETH", "1INCH", "1000SATS", "BNB", "USDT"]
amounts = st.decimals(min_value=Decimal("0.000000000000000001"), max_value=Decimal("9" * 12), places=18, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    base=st.sampled_from(CODES[:5]),
    qty=amounts,
    price=amounts,
    total=amounts,
    fee=amounts,
    fee_code=st.sampled_from(["base", "quote", "BNB"]),
    commas=st.booleans(),
)
def test_spot_cells_round_trip_exactly(base, qty, price, total, fee, fee_code, commas) -> None:
    def text(d: Decimal) -> str:
        return format(d, ",f" if commas else "f")

    fee_asset = {"base": base, "quote": "USDT", "BNB": "BNB"}[fee_code]
    row = [
        "24-03-05 09:15:02", f"{base}USDT", "BUY", f'"{text(price)}"', f'"{text(qty)}{base}"',
        f'"{text(total)}USDT"', f'"{text(fee)}{fee_asset}"',
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t(UTC+0).csv"
        path.write_text("Time,Pair,Side,Price,Executed,Amount,Fee\n" + ",".join(row) + "\n")
        parsed = binance.read_spot_trades(Source(path, "t.csv", "binance", "mm-1"))
    assert parsed.quarantine.height == 0, parsed.quarantine.to_dicts()
    got = parsed.frame.row(0, named=True)
    assert (got["base"], got["quote"], got["fee_asset"]) == (base, "USDT", fee_asset)
    assert (got["qty"], got["price"], got["quote_qty"], got["fee"]) == (qty, price, total, fee)


finite = st.decimals(allow_nan=False, allow_infinity=False, places=20)
number_text = st.one_of(
    st.from_regex(r"\A[ +-]?\$?[0-9]{0,24}(\.[0-9]{0,22})?([eE][+-]?[0-9]{1,2})?[ ]?\Z", fullmatch=True),
    st.sampled_from(
        ["", "--", ",", "1,5", "1,3,0", "0E-18", "0E-20", "-3.605E-05", "$65,000.00", "1.", ".5", "abc", "1e", ".5e25", "١٢"]
    ),
    finite.map(str),  # Python's own spelling, exponents included
    finite.map(lambda d: format(d, ",f")),  # thousands commas
)
_WIDE = Context(prec=200)
_GROUPED = r"[+-]?[$€£]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?([eE][+-]?[0-9]+)?"


def python_decimal(cell: str) -> tuple[Decimal | None, bool]:
    """The oracle: (value, is_bad) by Python's Decimal, for a venue number cell (ASCII
    digits; commas only grouping thousands; a leading currency sign)."""
    text = cell.strip()
    if text in ("", "--"):
        return None, False
    if "," in text and not re.fullmatch(_GROUPED, text):
        return None, True
    text = re.sub(r"^([+-]?)[$€£]", r"\1", text.replace(",", ""))
    if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?", text):
        return None, True
    value = Decimal(text)
    fits = value == value.quantize(Decimal("1e-18"), context=_WIDE) and abs(value) < Decimal(10) ** 20
    return (value, False) if fits else (None, True)


@settings(max_examples=400, deadline=None)
@given(st.lists(number_text, min_size=1, max_size=8))
def test_number_cells_parse_exactly_as_python_decimal(cells: list[str]) -> None:
    frame = pl.DataFrame({"cell": cells}, schema={"cell": pl.String})
    ours = binance.with_decimals(frame, v=pl.col("cell"))
    assert list(zip(ours["v"].to_list(), ours["v__bad"].to_list())) == [python_decimal(c) for c in cells]


# ---------------------------------------------------------------- issue 17: layouts as users keep them


def _read17(path: Path):
    fmt = [f for f in binance.FORMATS if f.detect(head_text(path))]
    assert len(fmt) == 1, [f.name for f in fmt]
    parsed = fmt[0].read(Source(path, f"binance/main/trades/{path.name}", "binance", "main"))
    return fmt[0].name, parsed.frame, parsed.quarantine


def test_a_spot_export_resaved_by_excel_with_semicolons_reads_as_the_original() -> None:
    # binance.md §1 example rows; Excel in a ";" locale, CRLF, thousands comma gone.
    name, frame, quarantine = _read17(FIXTURES / "Binance-Spot-Trade-History-202403051200(UTC+8)_excel.csv")
    assert name == "binance.spot_trades" and quarantine.height == 0
    assert frame["qty"].to_list() == [Decimal("0.02"), Decimal("-1.2")]
    assert frame["quote_qty"].to_list() == [Decimal("1300"), Decimal("0.0648")]
    assert frame["ts"][0] == datetime(2024, 3, 5, 1, 15, 2, tzinfo=timezone.utc)


def test_a_czech_spot_export_reads_through_the_localized_header_table() -> None:
    # Header as published in everytrade-io's Czech Spot Trade History test (binance.py docstring).
    name, frame, quarantine = _read17(FIXTURES / "Binance-Spot-Trade-History-202403081200(UTC+1)_cs.csv")
    assert name == "binance.spot_trades" and quarantine.height == 0
    row = frame.row(0, named=True)
    assert (row["base"], row["quote"], row["qty"], row["quote_qty"], row["fee"], row["fee_asset"]) == (
        "BTC", "EUR", Decimal("0.05"), Decimal("2500"), Decimal("0.002"), "BNB")
    assert row["ts"] == datetime(2024, 3, 8, 9, 15, 42, tzinfo=timezone.utc)
    assert binance.LOCALIZED["Čas"] == "Time"


def test_ledger_rows_without_the_trailing_empty_remark_are_complete() -> None:
    name, frame, quarantine = _read17(FIXTURES / "Binance-Transaction-History-202403051200(UTC+0)_noremark.csv")
    assert name == "binance.transactions"
    # Row 4 ("Deposit,USDT") lacks Change too: two cells short, still refused as ragged.
    assert quarantine["row"].to_list() == [4] and "the row has 5 cells, the header 7" in quarantine["reason"][0]
    assert frame["qty"].to_list() == [Decimal("0.02"), Decimal("-1300"), Decimal("-0.00002")]


def _xlsx(path: Path, rows: list[list]) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


XLSX_HEADER = ["Date", "Market", "Type", "Price", "Amount", "Total", "Fee", "Fee Coin"]


def test_the_2017_trade_history_workbook_reads_each_number_as_its_shortest_decimal(tmp_path: Path) -> None:
    # Header of the 2017-18 .xlsx (binance.py docstring); Excel keeps numbers as doubles.
    path = _xlsx(tmp_path / "TradeHistory.xlsx", [
        XLSX_HEADER,
        [datetime(2018, 1, 7, 20, 42, 29), "VENBTC", "BUY", 0.0002915, 34, 0.009911, 0.034, "VEN"],
        ["2018-01-08 01:02:03", "ETHUSDT", "SELL", 1150.1, 0.1, 115.01, 0.11501, "USDT"],
        [],
        ["2018-01-09 00:00:00", "BNBBTC", "BUY", 0.1 + 0.2, 1e-05, 3e-06, 0, "BNB"],
    ])
    name, frame, quarantine = _read17(path)
    assert name == "binance.spot_trades_legacy" and quarantine.height == 0
    # 0.1 + 0.2 is stored as "0.3" (openpyxl, like Excel, writes 15 significant digits): the
    # cell holds 0.3's double, and its shortest round-trip text is "0.3".
    assert frame["price"].to_list() == [Decimal("0.0002915"), Decimal("1150.1"), Decimal("0.3")]
    assert frame["qty"].to_list() == [Decimal("34"), Decimal("-0.1"), Decimal("0.00001")]
    assert frame["quote_qty"].to_list() == [Decimal("0.009911"), Decimal("115.01"), Decimal("0.000003")]
    assert frame["fee"].to_list() == [Decimal("0.034"), Decimal("0.11501"), Decimal("0")]
    assert frame["source_row"].to_list() == [1, 2, 4]
    assert frame["ts"][0] == datetime(2018, 1, 7, 20, 42, 29, tzinfo=timezone.utc)


def test_bad_cells_of_a_workbook_are_refused_by_row(tmp_path: Path) -> None:
    path = _xlsx(tmp_path / "TradeHistory.xlsx", [
        XLSX_HEADER, ["2018-01-07 20:42:29", "VENBTC", "HOLD", 0.0002915, 34, 0.009911, 0.034, "VEN"]])
    _, frame, quarantine = _read17(path)
    assert frame.height == 0 and quarantine["column"].to_list() == ["Type"]


def test_each_wallet_of_the_transaction_history_books_to_its_sub_account(tmp_path: Path) -> None:
    from utl.landing import scan_landing
    from utl.venues import binance
    from utl.venues.base import Source, wallet_account

    path = tmp_path / "Binance-Transaction-History-202403051200(UTC+0).csv"
    path.write_text("User ID,Time,Account,Operation,Coin,Change,Remark\n"
                    "1,24-03-05 09:00:00,Spot,Deposit,USDT,10,\n"
                    "1,24-03-05 09:00:00,USD-M Futures,Realized Profit and Loss,USDT,2.5,\n"
                    "1,24-03-05 09:00:00,Coin-M Futures,Funding Fee,BTC,-0.0001,\n"
                    "1,24-03-05 09:00:00,Funding,Deposit,USDT,7,\n"
                    "1,24-03-05 09:00:00,Earn,Simple Earn Flexible Interest,USDT,0.01,\n")
    parsed = binance.read_transactions(Source(path, "binance/mm/trades/x.csv", "binance", "mm"))
    assert parsed.quarantine.is_empty()
    assert parsed.frame.select("account", "asset", "qty").rows() == [
        ("mm", "USDT", Decimal("10")), ("mm/usd-m-futures", "USDT", Decimal("2.5")),
        ("mm/coin-m-futures", "BTC", Decimal("-0.0001")), ("mm/funding", "USDT", Decimal("7")),
        ("mm/earn", "USDT", Decimal("0.01"))]
    assert wallet_account("mm", " Cross  Margin ") == "mm/cross-margin" and wallet_account("mm", "SPOT") == "mm"
    # A wallet's snapshot file names the same sub-account.
    landing = tmp_path / "landing"
    for name in ("2024-03-05.csv", "2024-03-05.usd-m-futures.csv", "2024-03-05.Funding.json", "2024-03-05.spot.csv"):
        (landing / "binance/mm/balances").mkdir(parents=True, exist_ok=True)
        (landing / "binance/mm/balances" / name).write_text("asset,total\n")
    files = scan_landing(landing)
    assert sorted((s.rel.rsplit("/", 1)[1], s.account) for _, s in files.balances) == [
        ("2024-03-05.Funding.json", "mm/funding"), ("2024-03-05.csv", "mm"), ("2024-03-05.spot.csv", "mm"),
        ("2024-03-05.usd-m-futures.csv", "mm/usd-m-futures")]
