"""Coinbase transaction report and Coinbase Pro fills/account: detection, exact movements, ids, quarantine."""

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
from utl.venues import coinbase, kraken
from utl.venues.base import Source, head_text

COINBASE = Path(__file__).parent / "fixtures" / "coinbase"
FORMATS = {f.name: f for f in coinbase.FORMATS}
SCHEMAS = {"ledger": MOVEMENTS, "fills": FILLS}
D = Decimal

PREAMBLE = "\nTransactions\nUser,Jane Doe,3f1c0a52-7d1e-4c8e-9a0b-5e6f7a8b9c0d\n"
REPORT_CURRENT = (
    "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,"
    "Total (inclusive of fees and/or spread),Fees and/or Spread,Notes"
)
REPORT_SPOT = (
    "Timestamp,Transaction Type,Asset,Quantity Transacted,Spot Price Currency,Spot Price at Transaction,Subtotal,"
    "Total (inclusive of fees and/or spread),Fees and/or Spread,Notes"
)
REPORT_SPOT_FEES = (
    "Timestamp,Transaction Type,Asset,Quantity Transacted,Spot Price Currency,Spot Price at Transaction,Subtotal,"
    "Total (inclusive of fees),Fees,Notes"
)
REPORT_OLDEST = (
    "Timestamp,Transaction Type,Asset,Quantity Transacted,GBP Spot Price at Transaction,GBP Subtotal,"
    "GBP Total (inclusive of fees),GBP Fees,Notes"
)
PRO_FILLS = "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit"
PRO_ACCOUNT = "portfolio,type,time,amount,balance,amount/balance unit,transfer id,trade id,order id"

# Headers and heads of every other documented export (shared/venues/*.md).
OTHER_VENUES = [
    "Time,Pair,Side,Price,Executed,Amount,Fee",
    "Date(UTC),Pair,Side,Price,Executed,Amount,Fee",
    "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin",
    "User ID,Time,Account,Operation,Coin,Change,Remark",
    '"User_ID","UTC_Time","Account","Operation","Coin","Change","Remark"',
    "Uid,Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID",
    "Time,Type,Amount,Asset,Symbol,Transaction ID",
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Order id,Time,Trade Type,Symbol,Action,Amount,Trading Unit,"
    "Filled Price,PnL,Fee,Fee Unit,Position Change,Position Balance,Balance Change,Balance,Balance Unit",
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Time,Type,Amount,Before Balance,After Balance,Symbol",
    "UID: 123456789,Company Name: ,Country: \nUid,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,"
    "Funding,Fee Paid,Cash Flow,Change,Wallet Balance,Action,Time(UTC)",
    "Spot Pairs,Order Type,Direction,Filled Value,Filled Price,Filled Quantity,Fees,Transaction ID,Order No.,"
    "Timestamp (UTC)",
    "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,Funding,"
    "Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note",
    '"txid","refid","time","type","subtype","aclass","subclass","asset","wallet","amount","fee","balance"',
    '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"',
    '{"error": [], "result": {"ZEUR": "399.0400"}}',
    '{"id": "28457", "order": "9012345", "timestamp": 1709630102123, "symbol": "BTC/USDT", "side": "buy", "amount": 0.02}',
]


def read(name: str, fmt_name: str | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    path = COINBASE / name
    matches = [f for f in coinbase.FORMATS if f.detect(head_text(path))]
    assert len(matches) == 1, f"{name}: detected as {[f.name for f in matches]}"
    fmt = matches[0]
    if fmt_name:
        assert fmt.name == fmt_name
    parsed = fmt.read(Source(path, f"coinbase/main/trades/{name}", "coinbase", "main"))
    assert parsed.frame.schema == SCHEMAS[fmt.kind]
    assert set(parsed.quarantine["file"].to_list()) <= {f"coinbase/main/trades/{name}"}
    return parsed.frame, parsed.quarantine


def moves(frame: pl.DataFrame) -> list[tuple]:
    return [(r["entry_id"], r["kind"], r["asset"], r["qty"]) for r in frame.iter_rows(named=True)]


def refused(quarantine: pl.DataFrame) -> list[tuple[int, str | None]]:
    return [(r["row"], r["column"]) for r in quarantine.iter_rows(named=True)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (PREAMBLE + REPORT_CURRENT, "coinbase.transaction_report"),
        (PREAMBLE + REPORT_CURRENT + ",Sender Address,Recipient Address", "coinbase.transaction_report"),
        (REPORT_CURRENT, "coinbase.transaction_report"),  # no preamble
        (PREAMBLE + REPORT_SPOT, "coinbase.transaction_report"),
        (PREAMBLE + REPORT_SPOT_FEES, "coinbase.transaction_report"),
        (PREAMBLE + REPORT_OLDEST, "coinbase.transaction_report"),
        (PREAMBLE.replace("\n", "\r\n") + '"' + REPORT_CURRENT.replace(",", '","') + '"', "coinbase.transaction_report"),
        (PRO_FILLS, "coinbase.pro_fills"),
        (PRO_FILLS.removeprefix("portfolio,"), "coinbase.pro_fills"),
        (PRO_ACCOUNT, "coinbase.pro_account"),
        (PRO_ACCOUNT.removeprefix("portfolio,"), "coinbase.pro_account"),
    ],
)
def test_each_version_is_detected_by_exactly_one_format(head: str, name: str) -> None:
    assert [f.name for f in coinbase.FORMATS if f.detect(head + "\n")] == [name]


@pytest.mark.parametrize("head", OTHER_VENUES)
def test_other_venues_are_not_coinbase(head: str) -> None:
    assert [f.name for f in coinbase.FORMATS if f.detect(head + "\n")] == []


@pytest.mark.parametrize("head", [PREAMBLE + REPORT_CURRENT, REPORT_OLDEST, PRO_FILLS, PRO_ACCOUNT])
def test_coinbase_headers_are_not_kraken(head: str) -> None:
    assert [f.name for f in kraken.FORMATS if f.detect(head + "\n")] == []


def test_near_miss_headers_are_not_detected() -> None:
    heads = [
        REPORT_CURRENT.replace(",Notes", ""),
        REPORT_OLDEST.replace("GBP Fees", "EUR Fees"),  # the prefixes must agree
        PRO_FILLS.replace(",price,", ","),  # a column the reader needs is left out
        "\n" * 25 + REPORT_CURRENT,  # a header this far down is not below a preamble
    ]
    assert not any(f.detect(h + "\n") for h in heads for f in coinbase.FORMATS)


def test_a_column_the_pro_fills_reader_does_not_read_is_ignored() -> None:
    assert [f.name for f in coinbase.FORMATS if f.detect(PRO_FILLS + ",extra\n")] == ["coinbase.pro_fills"]


# ---------------------------------------------------------------- transaction report


def test_report_books_each_type_as_signed_movements() -> None:
    frame, _ = read("report_current.csv", "coinbase.transaction_report")
    assert moves(frame)[:23] == [
        # Buy: +BTC, -Subtotal and -Fees in the price currency.
        ("65f1a2b3c4d5e6f708192a3b", "trade", "BTC", D("0.01")),
        ("65f1a2b3c4d5e6f708192a3b/quote", "trade", "USD", D("-650.00")),
        ("65f1a2b3c4d5e6f708192a3b/fee", "fee", "USD", D("-9.99")),
        # Advanced Trade Sell: the quote is USDC (from Notes), 1.5 x 3500 = 5250, fee 5250 - 5229.
        ("65f1a2b3c4d5e6f708192a3c", "trade", "ETH", D("-1.5")),
        ("65f1a2b3c4d5e6f708192a3c/quote", "trade", "USDC", D("5250")),
        ("65f1a2b3c4d5e6f708192a3c/fee", "fee", "USDC", D("-21")),
        ("65f1a2b3c4d5e6f708192a3d", "withdrawal", "BTC", D("-0.005")),
        # Advanced Trade Buy: 2.5 x 140 = 350 USDC, fee 350.70 - 350.
        ("65f1a2b3c4d5e6f708192a40", "trade", "SOL", D("2.5")),
        ("65f1a2b3c4d5e6f708192a40/quote", "trade", "USDC", D("-350")),
        ("65f1a2b3c4d5e6f708192a40/fee", "fee", "USDC", D("-0.70")),
        # Convert: out of ETH, into BTC; the fiat spread books nothing.
        ("65f1a2b3c4d5e6f708192a41", "trade", "ETH", D("-0.5")),
        ("65f1a2b3c4d5e6f708192a41/to", "trade", "BTC", D("0.0265")),
        # Sell: -BTC, +Subtotal, -Fees.
        ("65f1a2b3c4d5e6f708192a42", "trade", "BTC", D("-0.002")),
        ("65f1a2b3c4d5e6f708192a42/quote", "trade", "USD", D("132.00")),
        ("65f1a2b3c4d5e6f708192a42/fee", "fee", "USD", D("-1.98")),
        ("65f1a2b3c4d5e6f708192a43", "deposit", "ETH", D("0.75")),
        ("65f1a2b3c4d5e6f708192a44", "interest", "ETH", D("0.00012345")),
        ("65f1a2b3c4d5e6f708192a45", "deposit", "USD", D("1000.00")),  # written "1,000.00"
        ("65f1a2b3c4d5e6f708192a46", "withdrawal", "USD", D("-250")),
        ("65f1a2b3c4d5e6f708192a47", "transfer", "BTC", D("-0.001")),  # to Coinbase Pro
        ("65f1a2b3c4d5e6f708192a48", "transfer", "ETH", D("-0.1")),  # no fixed direction: as written
        ("65f1a2b3c4d5e6f708192a49", "rebate", "USDC", D("1.5")),  # written 1.5E+0
        ("65f1a2b3c4d5e6f708192a4a", "other", "XLM", D("-3.25")),  # unknown type: as written
    ]
    assert frame["entry_id"].is_unique().all()


def test_advanced_trade_quote_movements_net_to_the_notes_amount() -> None:
    frame, _ = read("report_current.csv")
    quote_side = frame.filter(pl.col("asset") == "USDC", pl.col("kind").is_in(["trade", "fee"]))
    net = dict(quote_side.group_by("ref_id").agg(pl.col("qty").sum()).iter_rows())
    assert net == {"65f1a2b3c4d5e6f708192a3c": D("5229.00"), "65f1a2b3c4d5e6f708192a40": D("-350.70")}


def test_report_ids_times_and_descriptions() -> None:
    frame, _ = read("report_current.csv")
    first = frame.row(0, named=True)
    assert first["ts"] == utc(2024, 3, 5, 9, 15, 2)
    assert first["ref_id"] == "65f1a2b3c4d5e6f708192a3b"
    assert first["description"] == "Buy: Bought 0.01 BTC for 659.99 USD"
    assert (first["venue"], first["account"], first["source_row"]) == ("coinbase", "main", 1)
    send = frame.filter(pl.col("entry_id") == "65f1a2b3c4d5e6f708192a3d").row(0, named=True)
    assert send["ref_id"] is None and send["description"] == "Send"


def test_report_bad_rows_are_quarantined_and_the_rest_books() -> None:
    frame, quarantine = read("report_current.csv")
    assert refused(quarantine) == [
        (15, "Quantity Transacted"),
        (16, "Quantity Transacted"),
        (17, "Timestamp"),
        (18, "Notes"),
        (19, "ID"),
        (20, "Subtotal"),
    ]
    reasons = dict(zip(quarantine["row"], quarantine["reason"]))
    assert reasons[15] == '"Quantity Transacted": "1,5x" is not a decimal'
    assert reasons[16] == '"Quantity Transacted" is zero'
    assert reasons[20] == '"Subtotal": "-$6,5.00" is not a decimal'  # a misplaced comma, never 65
    assert dict(zip(quarantine["row"], quarantine["raw"]))[18] == "Sold 1 ETH on ETH-USDC"
    assert sorted(set(frame["source_row"])) == list(range(1, 15))


def test_report_with_addresses_bom_crlf_and_other_currencies() -> None:
    frame, quarantine = read("report_addresses.csv")
    assert quarantine.height == 0
    assert moves(frame) == [
        ("6601aa00bb11cc22dd33ee44", "trade", "ETH", D("0.25")),
        ("6601aa00bb11cc22dd33ee44/quote", "trade", "EUR", D("-800.00")),
        ("6601aa00bb11cc22dd33ee44/fee", "fee", "EUR", D("-11.94")),
        ("6601aa00bb11cc22dd33ee45", "withdrawal", "ETH", D("-0.1")),
        ("6601aa00bb11cc22dd33ee46", "trade", "ETH", D("-0.05")),
        ("6601aa00bb11cc22dd33ee46/quote", "trade", "SEK", D("1750")),
        ("6601aa00bb11cc22dd33ee46/fee", "fee", "SEK", D("-25")),
    ]


def test_older_reports_without_id_get_synthetic_ids_with_occurrence_numbers() -> None:
    frame, quarantine = read("report_spot.csv")
    assert quarantine.height == 0
    rewards = frame.filter(pl.col("kind") == "interest")
    first, second = rewards["entry_id"].to_list()
    assert first.endswith("#1") and second.endswith("#2") and first[:-2] == second[:-2]
    assert "Rewards Income|ALGO|0.5" in first
    again, _ = read("report_spot.csv")
    assert again["entry_id"].to_list() == frame["entry_id"].to_list()  # the same file, the same keys
    buy = frame.filter(pl.col("source_row") == 1)
    assert buy["entry_id"].to_list() == [buy["ref_id"][0], buy["ref_id"][0] + "/quote", buy["ref_id"][0] + "/fee"]
    # Old files write quantities unsigned: the type gives the direction.
    assert moves(frame.filter(pl.col("source_row").is_in([2, 5])).select(pl.exclude("entry_id"), entry_id=pl.lit(""))) == [
        ("", "trade", "BTC", D("-0.001")),
        ("", "trade", "USD", D("43.00")),
        ("", "fee", "USD", D("-0.99")),
        ("", "withdrawal", "BTC", D("-0.0005")),
    ]
    assert frame["ts"][0] == utc(2022, 1, 10, 10, 0, 0)


def test_oldest_report_takes_its_currency_from_the_column_prefix() -> None:
    frame, quarantine = read("report_oldest_eur.csv")
    assert quarantine.height == 0
    assert [(r[1], r[2], r[3]) for r in moves(frame)] == [
        ("trade", "BTC", D("0.1")),
        ("trade", "EUR", D("-950.00")),
        ("fee", "EUR", D("-14.25")),
        ("trade", "BTC", D("-0.05")),
        ("trade", "EUR", D("480.00")),
        ("fee", "EUR", D("-7.20")),
    ]


def test_report_with_fees_column_and_no_preamble() -> None:
    frame, quarantine = read("report_spot_fees.csv")
    assert quarantine.height == 0
    assert [(r[1], r[2], r[3]) for r in moves(frame)] == [
        ("trade", "ETH", D("1.0")),
        ("trade", "GBP", D("-170.00")),
        ("fee", "GBP", D("-2.49")),
        ("interest", "XLM", D("10")),
    ]


# ---------------------------------------------------------------- Coinbase Pro


def test_pro_fills() -> None:
    frame, _ = read("pro_fills.csv", "coinbase.pro_fills")
    got = [
        (r["trade_id"], r["symbol"], r["base"], r["quote"], r["side"], r["qty"], r["price"], r["quote_qty"], r["fee"], r["fee_asset"])
        for r in frame.iter_rows(named=True)
    ]
    assert got == [
        ("7001", "BTC-USD", "BTC", "USD", "buy", D("0.5"), D("33000.00"), D("16500"), D("82.5"), "USD"),
        ("7002", "BTC-USD", "BTC", "USD", "sell", D("-0.2"), D("34000.00"), D("6800"), D("34"), "USD"),
        # Trade ids count per product: the same id in another product is another fill.
        ("7001", "ETH-USD", "ETH", "USD", "buy", D("1"), D("1700"), D("1700"), D("0"), "USD"),
        ("204623", "BAT-ETH", "BAT", "ETH", "sell", D("-1"), D("0.00131511"), D("0.00131511"), D("0.00000657555"), "ETH"),
    ]
    assert frame["ts"].to_list()[:3] == [
        datetime(2021, 2, 1, 10, 0, 0, 123000, tzinfo=timezone.utc),
        datetime(2021, 2, 2, 11, 30, 0, 456000, tzinfo=timezone.utc),
        utc(2021, 2, 2, 12, 0, 0),
    ]
    # The venue's signed total = -(size*price + fee) on a buy, size*price - fee on a sell.
    assert frame["quote_qty"][0] + frame["fee"][0] == D("16582.5")
    assert frame["quote_qty"][1] - frame["fee"][1] == D("6766")


def test_pro_fills_bad_rows_are_quarantined() -> None:
    frame, quarantine = read("pro_fills.csv")
    assert refused(quarantine) == [
        (5, "product"),
        (6, "side"),
        (7, "created at"),
        (8, "size"),
        (9, "price"),
        (10, "size unit"),
        (11, "fee"),
        (12, "trade id"),
    ]
    assert frame["source_row"].to_list() == [1, 2, 3, 4]
    old, quarantine = read("pro_fills_no_portfolio.csv")
    assert quarantine.height == 0 and old["trade_id"].to_list() == ["598831"]
    assert old["quote_qty"].item() == D("0.0008336")


def test_pro_account_statement() -> None:
    frame, quarantine = read("pro_account.csv", "coinbase.pro_account")
    assert refused(quarantine) == [(7, "amount")]
    assert [(r[1], r[2], r[3]) for r in moves(frame)] == [
        ("deposit", "USD", D("20000")),
        ("trade", "BTC", D("0.5")),
        ("trade", "USD", D("-16500")),
        ("fee", "USD", D("-82.5")),
        ("withdrawal", "BTC", D("-0.1")),
        ("rebate", "USD", D("0.015")),
    ]
    ref = frame["ref_id"].to_list()
    assert ref[1] == ref[2] == ref[3] == "5b2c9d7e-0000-4000-8000-000000000001:7001"
    assert ref[0] == "0c5b4a3e-1111-4000-8000-000000000001" and ref[5] is None
    assert frame["entry_id"].is_unique().all()
    twins, _ = read("pro_account_no_portfolio.csv")
    first, second = twins["entry_id"].to_list()
    assert first.endswith("#1") and second.endswith("#2") and first[:-2] == second[:-2]


# ---------------------------------------------------------------- amounts with currencies


def report_with_subtotals(cells: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    lines = [REPORT_CURRENT]
    for i, cell in enumerate(cells):
        quoted = '"' + cell.replace('"', '""') + '"'
        lines.append(f"{i:024x},2024-03-05 09:15:02 UTC,Sell,BTC,-0.01,USD,$1.00,{quoted},$0.00,$0.00,")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.csv"
        path.write_text(PREAMBLE + "\n".join(lines) + "\n", encoding="utf-8")
        parsed = FORMATS["coinbase.transaction_report"].read(Source(path, "report.csv", "coinbase", "main"))
    return parsed.frame, parsed.quarantine


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("$65,000.00", D("65000")),
        ("-$5,250.00", D("5250")),
        ("€1,040.00", D("1040")),
        ("kr100", D("100")),
        ("CA$1,234.5", D("1234.5")),
        ("100 SEK", D("100")),
        ("£0.01", D("0.01")),
        ("$1.5E+3", D("1500")),
    ],
)
def test_money_cells(cell: str, value: Decimal) -> None:
    frame, quarantine = report_with_subtotals([cell])
    assert quarantine.height == 0
    assert frame.filter(pl.col("entry_id").str.ends_with("/quote"))["qty"].item() == value


@pytest.mark.parametrize("cell", ["$1,5", "$12,34,5", "$1,5x", "abc", "$1.2.3", "$١٢", "$0.0000000000000000001"])
def test_bad_money_cells_are_refused(cell: str) -> None:
    frame, quarantine = report_with_subtotals([cell])
    assert refused(quarantine) == [(1, "Subtotal")]
    assert frame.height == 0


money = st.decimals(min_value=D("-99999999999999999999"), max_value=D("99999999999999999999"), places=2, allow_nan=False)
prefixes = st.sampled_from(["$", "€", "£", "kr", "CA$", ""])


def write_money(value: Decimal, prefix: str, grouped: bool) -> str:
    body = f"{abs(value):,f}" if grouped else f"{abs(value):f}"
    return ("-" if value < 0 else "") + prefix + body


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(money, prefixes, st.booleans()), min_size=1, max_size=30))
def test_money_cells_round_trip_exactly(cells: list[tuple[Decimal, str, bool]]) -> None:
    frame, quarantine = report_with_subtotals([write_money(v, p, g) for v, p, g in cells])
    assert quarantine.height == 0
    quote = frame.filter(pl.col("entry_id").str.ends_with("/quote"))
    assert quote["qty"].to_list() == [abs(v) for v, _, _ in cells if v != 0]  # a Sell receives |Subtotal|


def test_the_pro_account_statement_with_a_capitalised_header_is_read() -> None:
    # coinbase.md §3 rows under the capitalised header of issue 17 (`Timestamp` for `time`).
    from utl.venues import coinbase as cb
    path = Path(__file__).parent / "fixtures" / "coinbase" / "pro_account_capitalised.csv"
    (fmt,) = [f for f in cb.FORMATS if f.detect(head_text(path))]
    parsed = fmt.read(Source(path, "coinbase/pro/trades/a.csv", "coinbase", "pro"))
    assert fmt.name == "coinbase.pro_account" and parsed.quarantine.height == 0
    assert [(r["kind"], r["asset"], r["qty"]) for r in parsed.frame.iter_rows(named=True)] == [
        ("trade", "BTC", Decimal("0.5")), ("trade", "USD", Decimal("-16500")), ("fee", "USD", Decimal("-82.5"))]


# ---------------------------------------------------------------- issue 17: 2017 Transfers, 2018 report

CB = Path(__file__).parent / "fixtures" / "coinbase"


def _read(name: str) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    from utl.venues import all_formats

    path = CB / name
    [fmt] = [f for f in all_formats() if f.detect(head_text(path))]
    parsed = fmt.read(Source(path, f"coinbase/retail/trades/{name}", "coinbase", "retail"))
    assert parsed.frame.schema == MOVEMENTS
    return fmt.name, parsed.frame, parsed.quarantine


def _booked(frame: pl.DataFrame) -> list[tuple]:
    return [(r["entry_id"], r["kind"], r["asset"], r["qty"]) for r in frame.iter_rows(named=True)]


def test_2017_transfers_report_books_card_buys_as_acquisitions_at_their_cost() -> None:
    name, frame, quarantine = _read("transfers_2017.csv")
    assert name == "coinbase.transfers_2017" and quarantine.is_empty()
    card, wallet, sell, deposit = ("5918a1b2c3d4e5f601234567", "5968a1b2c3d4e5f601234568", "59c7a1b2c3d4e5f601234569",
                                   "59c8a1b2c3d4e5f60123456a")
    assert _booked(frame) == [
        # Paid by card: the 9.99 EUR arrives from outside and pays 9.00 + 0.99 fee.
        (f"{card}/payment", "deposit", "EUR", Decimal("9.99")),
        (card, "trade", "BTC", Decimal("0.00382377")),
        (f"{card}/quote", "trade", "EUR", Decimal("-9.0")),
        (f"{card}/fee", "fee", "EUR", Decimal("-0.99")),
        # Paid from the EUR Wallet: no money from outside.
        (wallet, "trade", "BTC", Decimal("0.01")),
        (f"{wallet}/quote", "trade", "EUR", Decimal("-20.00")),
        (f"{wallet}/fee", "fee", "EUR", Decimal("-0.30")),
        # Sold to a bank: the 14.78 EUR net of the fee leaves.
        (f"{sell}/payment", "withdrawal", "EUR", Decimal("-14.78")),
        (sell, "trade", "BTC", Decimal("-0.005")),
        (f"{sell}/quote", "trade", "EUR", Decimal("15.00")),
        (f"{sell}/fee", "fee", "EUR", Decimal("-0.22")),
        (deposit, "deposit", "EUR", Decimal("50.00")),
    ]
    # Times carry their own offset: 09:06:58 -0700 is 16:06:58 UTC.
    assert frame["ts"][0] == datetime(2017, 5, 14, 16, 6, 58, tzinfo=timezone.utc)
    assert frame.filter(pl.col("entry_id") == f"{card}/fee")["ref_id"].to_list() == [card]


def test_2017_transfers_refuses_a_bad_time_and_an_unknown_type(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("Timestamp,Type,ETH,Subtotal,Fees,Total,Currency,Price Per Coin,Payment Method,ID,Share\n"
                    "2017-05-14 09:06:58,Buy,1,300,3,303,USD,300,Visa,a1,0\n"
                    "2017-05-14 09:06:58 -0700,Gift,1,300,3,303,USD,300,Visa,a2,0\n")
    parsed = coinbase.read_transfers(Source(path, "coinbase/r/trades/t.csv", "coinbase", "r"))
    assert parsed.frame.is_empty()
    assert [(r["row"], r["column"]) for r in parsed.quarantine.iter_rows(named=True)] == [(1, "Timestamp"), (2, "Type")]


def test_2018_report_reads_us_dates_and_the_native_currency() -> None:
    name, frame, quarantine = _read("report_2018_eur.csv")
    assert name == "coinbase.report_2018" and quarantine.is_empty()
    booked = [(r["kind"], r["asset"], r["qty"], r["ts"].date().isoformat()) for r in frame.iter_rows(named=True)]
    assert booked == [
        ("trade", "BTC", Decimal("0.01"), "2018-01-15"),
        ("trade", "EUR", Decimal("-118.49"), "2018-01-15"),  # the cash moved, fee included
        ("trade", "ETH", Decimal("-0.5"), "2018-02-03"),
        ("trade", "EUR", Decimal("370.10"), "2018-02-03"),
        ("withdrawal", "BTC", Decimal("-0.002"), "2018-12-24"),  # 12/24: month first
    ]
    assert frame["entry_id"].n_unique() == frame.height


def test_2018_report_refuses_a_day_first_date(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    header = ("Timestamp,Transaction Type,Asset,Quantity Transacted,SEK Spot Price at Transaction,"
              "SEK quantity Transacted (Inclusive of Coinbase Fees),Address,Notes\n")
    path.write_text(header + "24/12/2018,Buy,BTC,0.01,30000,301,,\n01/02/2018,Buy,BTC,0.01,30000,301,,\n")
    parsed = coinbase.read_report_2018(Source(path, "coinbase/r/trades/r.csv", "coinbase", "r"))
    assert parsed.quarantine["row"].to_list() == [1]
    assert parsed.frame.filter(pl.col("asset") == "SEK")["qty"].to_list() == [Decimal("-301")]


@pytest.mark.parametrize("name", ["report_current.csv", "report_spot_fees.csv", "report_oldest_eur.csv",
                                  "transfers_2017.csv", "report_2018_eur.csv"])
def test_report_headers_in_another_case_read_the_same(name: str, tmp_path: Path) -> None:
    # Issue 17: header matching ignores case and surrounding blanks, for the reports found by
    # role too (their columns may be named after the user's currency or the wallet's asset).
    from utl.ingest import read_source
    from utl.venues import all_formats

    original = COINBASE / name
    lines = original.read_text(encoding="utf-8-sig").splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.lower().startswith(("timestamp", "id,")))
    lines[at] = ",".join(f" {c.upper()} " for c in lines[at].rstrip("\n").split(",")) + "\n"
    shouted = tmp_path / "shouted" / name
    shouted.parent.mkdir()
    shouted.write_text("".join(lines))
    formats = all_formats()
    first, plain = read_source(Source(original, name, "coinbase", "a"), formats, ("ledger", "fills"))
    second, loud = read_source(Source(shouted, name, "coinbase", "a"), formats, ("ledger", "fills"))
    assert first is not None and second is not None and first.name == second.name
    assert loud.frame.height > 0 and loud.frame.equals(plain.frame)
