"""Kraken Ledgers, Trades, Balance and BalanceEx: detection, exact numbers, signs, quarantine."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.schemas import BALANCES, FILLS, MOVEMENTS
from utl.venues import coinbase, kraken
from utl.venues.base import Source, head_text

KRAKEN = Path(__file__).parent / "fixtures" / "kraken"
FORMATS = {f.name: f for f in kraken.FORMATS}
SCHEMAS = {"ledger": MOVEMENTS, "fills": FILLS, "balances": BALANCES}

LEDGER_CURRENT = '"txid","refid","time","type","subtype","aclass","subclass","asset","wallet","amount","fee","balance"'
LEDGER_WALLET = '"txid","refid","time","type","subtype","aclass","asset","wallet","amount","fee","balance"'
LEDGER_PREVIOUS = '"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"'
TRADES_CURRENT = (
    '"txid","ordertxid","pair","aclass","subclass","time","type","ordertype","price","cost","fee","vol","margin",'
    '"misc","ledgers","posttxid","posstatuscode","cprice","ccost","cfee","cvol","cmargin","net","trades"'
)
TRADES_PREVIOUS = '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"'
TRADES_INTERMEDIATE = TRADES_PREVIOUS + ',"postxid","posstatus","cprice","ccost","cfee","cvol","cmargin","net","trades"'

# Headers and heads of every other documented export (shared/venues/*.md).
OTHER_VENUES = [
    "Time,Pair,Side,Price,Executed,Amount,Fee",
    "Date(UTC),Pair,Side,Price,Executed,Amount,Fee",
    "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin",
    "User ID,Time,Account,Operation,Coin,Change,Remark",
    '"User_ID","UTC_Time","Account","Operation","Coin","Change","Remark"',
    "Uid,Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID",
    "Date(UTC),Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit",
    "Time,Type,Amount,Asset,Symbol,Transaction ID",
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Order id,Time,Trade Type,Symbol,Action,Amount,Trading Unit,"
    "Filled Price,PnL,Fee,Fee Unit,Position Change,Position Balance,Balance Change,Balance,Balance Unit",
    "UID:1234567890,Account Type:Main,Time Zone:UTC+8\nid,Time,Type,Amount,Before Balance,After Balance,Symbol",
    "UID: 123456789,Company Name: ,Country: \nUid,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,"
    "Funding,Fee Paid,Cash Flow,Change,Wallet Balance,Action,Time(UTC)",
    "Spot Pairs,Order Type,Direction,feeCoin,ExecFeeV2,Filled Value,Filled Price,Filled Quantity,Fees,Transaction ID,"
    "Order No.,Timestamp (UTC)",
    "Uid,Date & Time(UTC),Coin,QTY,Type,Account Balance,Description",
    "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,Funding,"
    "Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note",
    "\nTransactions\nUser,Jane,uuid\nID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,"
    "Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes",
    "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit",
    "portfolio,type,time,amount,balance,amount/balance unit,transfer id,trade id,order id",
    '{"id": "28457", "order": "9012345", "timestamp": 1709630102123, "symbol": "BTC/USDT", "side": "buy", "amount": 0.02}',
    '{"makerCommission": 10, "balances": [{"asset": "BTC", "free": "0.52000000", "locked": "0.10000000"}]}',
    # A ccxt balance: Kraken's own reply sits inside "info" and must not make it a Kraken file.
    '{"info": {"error": [], "result": {"XXBT": "0.62"}}, "free": {"BTC": 0.52}, "used": {"BTC": 0.1},'
    ' "total": {"BTC": 0.62}, "BTC": {"free": 0.52, "used": 0.1, "total": 0.62}}',
]


def read(name: str, fmt_name: str | None = None, path: Path | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    path = path or KRAKEN / name
    matches = [f for f in kraken.FORMATS if f.detect(head_text(path))]
    assert len(matches) == 1, f"{name}: detected as {[f.name for f in matches]}"
    fmt = matches[0]
    if fmt_name:
        assert fmt.name == fmt_name
    parsed = fmt.read(Source(path, f"kraken/main/trades/{name}", "kraken", "main"))
    assert parsed.frame.schema == SCHEMAS[fmt.kind]
    assert set(parsed.quarantine["file"].to_list()) <= {f"kraken/main/trades/{name}"}
    return parsed.frame, parsed.quarantine


def refused(quarantine: pl.DataFrame) -> list[tuple[int, str | None]]:
    return [(r["row"], r["column"]) for r in quarantine.iter_rows(named=True)]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [row for row in csv.DictReader(fh) if any(row.values())]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (LEDGER_CURRENT, "kraken.ledgers"),
        (LEDGER_WALLET, "kraken.ledgers"),
        (LEDGER_PREVIOUS, "kraken.ledgers"),
        (LEDGER_CURRENT + ',"amountusd"', "kraken.ledgers"),
        (LEDGER_WALLET + ',"amountusd"', "kraken.ledgers"),
        (LEDGER_PREVIOUS + ',"amountusd"', "kraken.ledgers"),
        (LEDGER_PREVIOUS.replace('"', ""), "kraken.ledgers"),  # unquoted
        (LEDGER_PREVIOUS + ",", "kraken.ledgers"),  # every line ends with a comma
        (TRADES_CURRENT, "kraken.trades"),
        (TRADES_PREVIOUS, "kraken.trades"),
        (TRADES_INTERMEDIATE, "kraken.trades"),
        ('{"error": [], "result": {"ZEUR": "399.0400"}}', "kraken.balance"),
        ('{"error":[],"result":{}}', "kraken.balance"),
        ('{"result": {"ZEUR": "1"}, "error": []}', "kraken.balance"),
        ('{"error": ["EAPI:Invalid key"]}', "kraken.balance"),
        ('{\n  "error": [],\n  "result": {\n    "ZEUR": {"balance": "1", "hold_trade": "0"}}}', "kraken.balance_ex"),
    ],
)
def test_each_version_is_detected_by_exactly_one_format(head: str, name: str) -> None:
    assert [f.name for f in kraken.FORMATS if f.detect(head + "\n")] == [name]


@pytest.mark.parametrize("head", OTHER_VENUES)
def test_other_venues_are_not_kraken(head: str) -> None:
    assert [f.name for f in kraken.FORMATS if f.detect(head + "\n")] == []


@pytest.mark.parametrize("head", [LEDGER_CURRENT, LEDGER_PREVIOUS, TRADES_CURRENT, TRADES_PREVIOUS])
def test_kraken_headers_are_not_coinbase(head: str) -> None:
    assert [f.name for f in coinbase.FORMATS if f.detect(head + "\n")] == []


def test_near_miss_headers_are_not_detected() -> None:
    assert not any(f.detect(LEDGER_CURRENT.replace('"fee",', "") + "\n") for f in kraken.FORMATS)
    assert not any(f.detect(TRADES_PREVIOUS.replace(',"vol"', "") + "\n") for f in kraken.FORMATS)
    assert not any(f.detect('{"error": [], "result": [1, 2]}') for f in kraken.FORMATS)
    assert not any(f.detect('{"error": [], "result": {}, "extra": 1}') for f in kraken.FORMATS)


def test_balance_longer_than_the_head_is_still_recognised(tmp_path: Path) -> None:
    result = {f"ASSET{i}": f"{i}.5" for i in range(2000)}
    path = tmp_path / "2024-03-06.json"
    path.write_text(json.dumps({"error": [], "result": result}))
    assert path.stat().st_size > 8192
    assert [f.name for f in kraken.FORMATS if f.detect(head_text(path))] == ["kraken.balance"]
    parsed = FORMATS["kraken.balance"].read(Source(path, "b.json", "kraken", "main"))
    frame, quarantine = parsed.frame, parsed.quarantine
    assert frame.height == 2000 and quarantine.height == 0
    assert frame.filter(pl.col("asset") == "ASSET1999")["total"].item() == Decimal("1999.5")


# ---------------------------------------------------------------- ledgers


def expected_movements(path: Path, refused_rows: set[int]) -> list[tuple[str, str, Decimal]]:
    """Movements computed from the file's text with Python Decimal, row by row."""
    out = []
    for number, row in enumerate(csv_rows(path), start=1):
        if number in refused_rows:
            continue
        amount, fee = Decimal(row["amount"]), Decimal(row["fee"])
        if amount != 0:
            out.append((row["txid"], row["asset"], amount))
        if fee != 0:
            out.append((row["txid"] + "/fee", row["asset"], fee.copy_negate()))
    return out


@pytest.mark.parametrize(
    ("name", "refused_rows"),
    [("ledgers_current.csv", {6, 11, 12, 13}), ("ledgers_previous.csv", set()), ("ledgers_wallet_amountusd.csv", set())],
)
def test_ledger_movements_equal_decimal_of_the_text(name: str, refused_rows: set[int]) -> None:
    frame, quarantine = read(name, "kraken.ledgers")
    assert {r for r, _ in refused(quarantine)} == refused_rows
    got = [(r["entry_id"], r["asset"], r["qty"]) for r in frame.iter_rows(named=True)]
    assert got == expected_movements(KRAKEN / name, refused_rows)
    assert frame["entry_id"].is_unique().all()


def test_ledger_fee_is_a_separate_movement_and_wallet_change_is_amount_minus_fee() -> None:
    frame, _ = read("ledgers_current.csv")
    by_id = {r["entry_id"]: r for r in frame.iter_rows(named=True)}
    # The doc's trade: -600 EUR with a 0.96 fee, +0.01 BTC with none.
    assert by_id["LA1B2C-D3E4F-G5H6I7"]["qty"] == Decimal("-600.0000")
    assert by_id["LA1B2C-D3E4F-G5H6I7/fee"]["qty"] == Decimal("-0.9600")
    assert by_id["LA1B2C-D3E4F-G5H6I7/fee"]["kind"] == "fee"
    assert "LJ8K9L-M0N1P-Q2R3S4/fee" not in by_id  # a zero fee books nothing
    # Fee-credit row: zero amount, so only its fee moves KFEE.
    assert "LK1FEE-AAAAA-BBBBBB" not in by_id
    assert by_id["LK1FEE-AAAAA-BBBBBB/fee"]["qty"] == Decimal("-120.00")
    # A withdrawal: the network fee leaves on top of the amount.
    assert by_id["LW1DRW-AAAAA-BBBBBB"]["qty"] + by_id["LW1DRW-AAAAA-BBBBBB/fee"]["qty"] == Decimal("-0.00515")
    # A reversed deposit carries a negative fee: the fee comes back.
    assert by_id["LD2REV-AAAAA-BBBBBB"]["qty"] == Decimal("-50")
    assert by_id["LD2REV-AAAAA-BBBBBB/fee"]["qty"] == Decimal("0.5")
    # Rows of one trade share ref_id = refid = the Trades txid.
    assert by_id["LA1B2C-D3E4F-G5H6I7/fee"]["ref_id"] == by_id["LJ8K9L-M0N1P-Q2R3S4"]["ref_id"] == "TQ3RLB-4XHMD-7ZP2KC"
    # Asset codes stay as Kraken writes them.
    assert by_id["LS1STK-AAAAA-BBBBBB"]["asset"] == "DOT.S"
    assert by_id["LS1STK-AAAAA-BBBBBB"]["qty"] == Decimal("0.0125")  # written 1.25E-2


def test_ledger_balance_column_agrees_with_amount_minus_fee_per_asset() -> None:
    """Kraken's own running balance checks the sign convention: balance = previous + amount - fee."""
    frame, _ = read("ledgers_current.csv")
    opening = frame.filter(pl.col("source_row") <= 3).group_by("asset").agg(pl.col("qty").sum())
    assert dict(opening.iter_rows()) == {"ZEUR": Decimal("399.0400"), "XXBT": Decimal("0.0100000000")}


def test_ledger_kinds_and_descriptions() -> None:
    frame, _ = read("ledgers_current.csv")
    own = frame.filter(~pl.col("entry_id").str.ends_with("/fee"))
    kinds = dict(zip(own["entry_id"], zip(own["kind"], own["description"])))
    assert kinds["LD5E6F-G7H8J-K9L0M1"] == ("deposit", "deposit")
    assert kinds["LA1B2C-D3E4F-G5H6I7"] == ("trade", "trade/tradespot")
    assert kinds["LW1DRW-AAAAA-BBBBBB"] == ("withdrawal", "withdrawal")
    assert kinds["LS1STK-AAAAA-BBBBBB"] == ("interest", "staking")
    assert kinds["LE1ERN-AAAAA-BBBBBB"] == ("interest", "earn/reward")
    assert kinds["LE2ERN-AAAAA-BBBBBB"] == ("transfer", "earn/allocation")
    assert kinds["LM1MRG-AAAAA-BBBBBB"] == ("realized_pnl", "margin")
    assert kinds["LQ1ODD-AAAAA-BBBBBB"] == ("other", "invite bonus")
    assert set(frame.filter(pl.col("entry_id").str.ends_with("/fee"))["kind"]) == {"fee"}
    wallet, _ = read("ledgers_wallet_amountusd.csv")
    assert wallet["kind"].to_list() == ["trade", "fee", "trade", "transfer", "transfer"]


def test_ledger_times_are_utc_with_optional_fraction() -> None:
    frame, _ = read("ledgers_current.csv")
    ts = dict(zip(frame["entry_id"], frame["ts"]))
    assert ts["LD5E6F-G7H8J-K9L0M1"] == utc(2024, 3, 4, 18, 0, 0)
    assert ts["LK1FEE-AAAAA-BBBBBB/fee"] == datetime(2024, 3, 5, 10, 0, 0, 500000, tzinfo=timezone.utc)


def test_ledger_bad_rows_are_quarantined_with_row_column_reason_and_raw() -> None:
    _, quarantine = read("ledgers_current.csv")
    rows = {(r["row"], r["column"]): r for r in quarantine.iter_rows(named=True)}
    assert set(rows) == {(6, "txid"), (11, "amount"), (12, "time"), (13, None)}
    assert "failed" in rows[(6, "txid")]["reason"] and "FTwdrl-0000000000000000000002" in rows[(6, "txid")]["raw"]
    assert rows[(11, "amount")]["reason"] == '"amount": "1,5x" is not a decimal'
    assert rows[(11, "amount")]["raw"] == "1,5x"
    assert rows[(12, "time")]["raw"] == "2024-02-30 05:00:00"
    assert "both zero" in rows[(13, None)]["reason"]


def test_ledger_without_a_required_column_fails_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_text(LEDGER_PREVIOUS.replace('"fee"', '"fees"') + "\n")
    with pytest.raises(ValueError, match="fee"):
        kraken.read_ledgers(Source(path, "l.csv", "kraken", "main"))


def test_ledger_that_is_not_utf8_fails_as_a_whole(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(LEDGER_PREVIOUS.encode() + b'\n"L1","R1","2024-01-01 00:00:00","deposit","","currency","Z\xff",1,0,1\n')
    with pytest.raises(UnicodeDecodeError):
        kraken.read_ledgers(Source(path, "l.csv", "kraken", "main"))


# ---------------------------------------------------------------- trades


@pytest.mark.parametrize(
    ("pair", "base", "quote"),
    [
        ("XXBTZEUR", "XXBT", "ZEUR"),
        ("XETHXXBT", "XETH", "XXBT"),
        ("XLTCZEUR", "XLTC", "ZEUR"),
        ("USDTZUSD", "USDT", "ZUSD"),
        ("XTZEUR", "XTZ", "EUR"),  # not XT/ZEUR
        ("CHZUSD", "CHZ", "USD"),
        ("SNXXBT", "SNX", "XBT"),  # not SN/XXBT
        ("ICXETH", "ICX", "ETH"),  # not IC/XETH
        ("DOTUSD", "DOT", "USD"),
        ("KSMDOT", "KSM", "DOT"),
        ("XBTUSDT", "XBT", "USDT"),
        ("ETHPYUSD", "ETH", "PYUSD"),
        ("ETH2.SETH", "ETH2.S", "ETH"),
        ("BTC/USD", "BTC", "USD"),
        ("ETH/BTC", "ETH", "BTC"),
        ("FOOBAR", None, None),
        ("USD", None, None),
    ],
)
def test_split_pair(pair: str, base: str | None, quote: str | None) -> None:
    b, q = kraken.split_pair(pl.col("pair"))
    got = pl.DataFrame({"pair": [pair]}).select(b=b, q=q).row(0)
    assert got == (base, quote)


@pytest.mark.parametrize(
    ("name", "refused_rows"),
    [("trades_previous.csv", {7, 8, 9, 10, 11, 12}), ("trades_current.csv", set()), ("trades_intermediate.csv", set())],
)
def test_trade_numbers_equal_decimal_of_the_text(name: str, refused_rows: set[int]) -> None:
    frame, quarantine = read(name, "kraken.trades")
    assert {r for r, _ in refused(quarantine)} == refused_rows
    expected = [
        (
            row["txid"],
            row["ordertxid"],
            Decimal(row["vol"]) if row["type"] == "buy" else Decimal(row["vol"]).copy_negate(),
            Decimal(row["price"]),
            Decimal(row["cost"]),
            Decimal(row["fee"]),
        )
        for number, row in enumerate(csv_rows(KRAKEN / name), start=1)
        if number not in refused_rows
    ]
    got = [
        (r["trade_id"], r["order_id"], r["qty"], r["price"], r["quote_qty"], r["fee"]) for r in frame.iter_rows(named=True)
    ]
    assert got == expected
    assert frame["trade_id"].is_unique().all()


def test_trades_sides_pairs_and_fee_in_quote() -> None:
    frame, _ = read("trades_previous.csv")
    got = [(r["symbol"], r["base"], r["quote"], r["side"], r["fee_asset"]) for r in frame.iter_rows(named=True)]
    assert got == [
        ("XXBTZEUR", "XXBT", "ZEUR", "buy", "ZEUR"),
        ("XETHXXBT", "XETH", "XXBT", "sell", "XXBT"),
        ("XTZEUR", "XTZ", "EUR", "buy", "EUR"),
        ("SNXXBT", "SNX", "XBT", "sell", "XBT"),
        ("USDTZUSD", "USDT", "ZUSD", "sell", "ZUSD"),
        ("DOTUSD", "DOT", "USD", "buy", "USD"),
    ]
    first = frame.row(0, named=True)
    assert first["ts"] == datetime(2024, 3, 5, 9, 15, 2, 123400, tzinfo=timezone.utc)
    assert first["liquidity"] is None
    assert first["source_file"] == "kraken/main/trades/trades_previous.csv" and first["source_row"] == 1
    assert frame.filter(pl.col("symbol") == "DOTUSD")["fee"].item() == Decimal("3.1e-05")
    current, _ = read("trades_current.csv")
    assert current.select("base", "quote").rows() == [("BTC", "USD"), ("ETH", "BTC")]


def test_trades_bad_rows_are_quarantined_and_the_rest_books() -> None:
    frame, quarantine = read("trades_previous.csv")
    assert refused(quarantine) == [(7, "pair"), (8, "type"), (9, "vol"), (10, "price"), (11, "fee"), (12, "txid")]
    assert quarantine.filter(pl.col("column") == "fee")["reason"].item() == '"fee": "1.0.4" is not a decimal'
    assert quarantine.filter(pl.col("column") == "pair")["raw"].item() == "FOOBAR"
    assert frame["source_row"].to_list() == [1, 2, 3, 4, 5, 6]


def test_trades_without_cost_fall_back_to_vol_times_price(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        TRADES_PREVIOUS + '\n"T1","O1","XXBTZUSD","2024-03-05 09:00:00","sell","limit",65000.5,,,0.02,0,"",""\n'
    )
    parsed = FORMATS["kraken.trades"].read(Source(path, "t.csv", "kraken", "main"))
    frame, quarantine = parsed.frame, parsed.quarantine
    assert quarantine.height == 0
    row = frame.row(0, named=True)
    assert (row["qty"], row["quote_qty"], row["fee"], row["fee_asset"]) == (Decimal("-0.02"), Decimal("1300.01"), None, None)


# ---------------------------------------------------------------- balances


def test_balance_reply() -> None:
    frame, quarantine = read("balance.json", "kraken.balance")
    assert quarantine.height == 0
    assert frame.select("asset", "total", "source_row").rows() == [
        ("ZEUR", Decimal("399.0400"), 1),
        ("XXBT", Decimal("0.0100000000"), 2),
        ("DOT.S", Decimal("12.5000000000"), 3),
        ("USDT", Decimal("0"), 4),
    ]
    assert set(frame["venue"]) == {"kraken"} and set(frame["account"]) == {"main"}


def test_balance_ex_uses_balance_and_refuses_entries_without_one() -> None:
    frame, quarantine = read("balance_ex.json", "kraken.balance_ex")
    assert frame.select("asset", "total", "source_row").rows() == [
        ("ZEUR", Decimal("399.0400"), 1),
        ("XXBT", Decimal("0.0100000000"), 2),  # balance, not balance - hold_trade
    ]
    assert refused(quarantine) == [(3, "balance"), (4, "balance")]
    assert quarantine["reason"].to_list() == ["ADA: the balance is not a decimal string", 'SOL: "1.2.3" is not a decimal']


def test_balance_error_reply_fails_as_a_whole() -> None:
    path = KRAKEN / "balance_error.json"
    with pytest.raises(ValueError, match="EAPI:Invalid key"):
        FORMATS["kraken.balance"].read(Source(path, "balance_error.json", "kraken", "main"))


def test_balance_numbers_written_as_json_numbers_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"error": [], "result": {"XXBT": 0.100000000000000005, "ZUSD": 12345678901234567890}}')
    parsed = FORMATS["kraken.balance"].read(Source(path, "b.json", "kraken", "main"))
    frame, quarantine = parsed.frame, parsed.quarantine
    assert quarantine.height == 0
    assert frame["total"].to_list() == [Decimal("0.100000000000000005"), Decimal("12345678901234567890")]


# ---------------------------------------------------------------- number text


@pytest.mark.parametrize(
    ("text", "value", "bad"),
    [
        ("1.5", Decimal("1.5"), False),
        ("-0.000000000000000001", Decimal("-1E-18"), False),
        ("-3.605E-05", Decimal("-0.00003605"), False),
        ("0E-18", Decimal("0"), False),
        ("+2", Decimal("2"), False),
        ("1,300.5", Decimal("1300.5"), False),
        ("1,5", None, True),  # a decimal comma, not fifteen
        ("12,34,5", None, True),
        ("١٢", None, True),  # non-ASCII digits
        ("0.0000000000000000001", None, True),  # needs 19 places: refused, never rounded
        ("1.2.3", None, True),
        ("--", None, False),
        ("", None, False),
    ],
)
def test_number_cells(text: str, value: Decimal | None, bad: bool) -> None:
    frame = pl.DataFrame({"source_row": [1], "n": [text]}, schema={"source_row": pl.Int64, "n": pl.String})
    row = kraken.with_decimals(frame, ["n"]).row(0, named=True)
    assert (row["n__value"], row["n__bad"]) == (value, bad)


kraken_numbers = st.decimals(
    min_value=Decimal("-99999999999999999999"), max_value=Decimal("99999999999999999999"), places=18, allow_nan=False
)


def kraken_text(value: Decimal, style: int) -> str:
    if style == 0:
        return f"{value:f}"
    if style == 1:
        return f"{value:E}"  # exponent form, as spreadsheets re-save it
    return f"{value:f}" + "0" * 3  # trailing zeros


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(kraken_numbers, kraken_numbers, st.integers(0, 2)), min_size=1, max_size=30))
def test_ledger_amounts_round_trip_exactly(cells: list[tuple[Decimal, Decimal, int]]) -> None:
    lines = [LEDGER_PREVIOUS]
    for i, (amount, fee, style) in enumerate(cells):
        lines.append(
            f'"L{i}","R{i}","2024-03-05 09:15:02","trade","","currency","XXBT",'
            f"{kraken_text(amount, style)},{kraken_text(fee, style)},0"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "l.csv"
        path.write_text("\n".join(lines) + "\n")
        parsed = FORMATS["kraken.ledgers"].read(Source(path, "l.csv", "kraken", "main"))
    frame, quarantine = parsed.frame, parsed.quarantine
    both_zero = {i + 1 for i, (a, f, _) in enumerate(cells) if a == 0 and f == 0}
    assert set(quarantine["row"]) == both_zero
    expected = []
    for i, (amount, fee, _) in enumerate(cells):
        if amount != 0:
            expected.append((f"L{i}", amount))
        if fee != 0:
            expected.append((f"L{i}/fee", fee.copy_negate()))  # unary minus would round to 28 digits
    assert list(zip(frame["entry_id"], frame["qty"])) == expected


# ---------------------------------------------------------------- issue 17


def _read17(name: str):
    path = KRAKEN / name
    (fmt,) = [f for f in kraken.FORMATS if f.detect(head_text(path))]
    parsed = fmt.read(Source(path, f"kraken/main/trades/{name}", "kraken", "main"))
    return fmt.name, parsed.frame, parsed.quarantine


def test_the_2017_ledgers_book_a_row_without_txid_as_a_final_deposit() -> None:
    # The 2017 layout (kraken.py docstring): no subtype, unquoted.
    name, frame, quarantine = _read17("ledgers_2017.csv")
    assert name == "kraken.ledgers" and quarantine.height == 0
    assert [(r["kind"], r["asset"], r["qty"]) for r in frame.iter_rows(named=True)] == [
        ("deposit", "ZEUR", Decimal("1000")), ("deposit", "XXBT", Decimal("0.5")),
        ("trade", "ZEUR", Decimal("-600")), ("fee", "ZEUR", Decimal("-0.96"))]
    assert frame["entry_id"][1].startswith("QGBDX3I-VCBWK5-YHFLOK|2017-06-05 09:00:00|deposit|XXBT|")


def test_a_ledgers_subset_export_is_read_and_its_txid_less_row_is_not_final() -> None:
    name, frame, quarantine = _read17("ledgers_subset.csv")
    assert name == "kraken.ledgers"
    assert frame["qty"].to_list() == [Decimal("-600"), Decimal("-0.96")] and frame["ref_id"].to_list() == [None, None]
    assert quarantine["row"].to_list() == [2] and "no ledger id (txid)" in quarantine["reason"][0]


def test_a_trades_subset_export_is_read() -> None:
    name, frame, quarantine = _read17("trades_subset.csv")
    assert name == "kraken.trades" and quarantine.height == 0
    row = frame.row(0, named=True)
    assert (row["qty"], row["quote_qty"], row["fee"], row["order_id"]) == (Decimal("0.01"), Decimal("600"), None, None)


def test_a_subset_without_a_needed_column_is_not_claimed() -> None:
    assert not [f.name for f in kraken.FORMATS if f.detect('"txid","time","type","asset","amount"\n')]


def test_a_column_kraken_does_not_write_is_ignored() -> None:
    # Extra columns (a user's own, a newer Kraken field) do not stop a reader: it reads its own.
    head = '"txid","time","type","asset","amount","fee","colour"\n'
    assert [f.name for f in kraken.FORMATS if f.detect(head)] == ["kraken.ledgers"]
