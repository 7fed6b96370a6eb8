"""From a landing folder to the canonical tables (utl.ingest, utl.landing, utl.settings).

Every test builds a small landing folder in ``tmp_path`` in the contract's layout (eod.md,
"Landing folder"), some files copied from the venues' real-layout fixtures, runs
:func:`utl.ingest.ingest_landing` and asserts exact decimals and exact quarantine rows:
file (relative to the landing folder), 1-based row, column, and a piece of the reason.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest

from utl.ingest import ingest_landing, read_marks
from utl.settings import SettingsError, load_settings

FIXTURES = Path(__file__).parent / "venues" / "fixtures"
UTC = dt.timezone.utc

# A Binance Spot Trade History file: the zone is written only in its name (binance.md).
SPOT_HEADER = "Time,Pair,Side,Price,Executed,Amount,Fee\n"


def put(landing: Path, rel: str, content: str | bytes) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def copy_fixture(landing: Path, fixture: str, rel: str) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / fixture, path)
    return path


def ccxt_trade(trade_id: str | None, when: str, symbol: str, side: str, amount: str, price: str, cost: str,
               fee: str | None = None, fee_currency: str | None = None, timestamp: str | None = None) -> str:
    """One line of ccxt unified trades; numbers are JSON number text as Python ccxt writes them."""
    moment = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    ms = timestamp if timestamp is not None else str(int(moment.timestamp() * 1000))
    fee_json = "null" if fee is None else f'{{"cost": {fee}, "currency": "{fee_currency}"}}'
    fees = "[]" if fee is None else f"[{fee_json}]"
    id_json = "null" if trade_id is None else f'"{trade_id}"'
    return (
        f'{{"info": {{}}, "id": {id_json}, "order": null, "timestamp": {ms}, "datetime": "{when}", '
        f'"symbol": "{symbol}", "type": "limit", "side": "{side}", "takerOrMaker": "maker", "price": {price}, '
        f'"amount": {amount}, "cost": {cost}, "fee": {fee_json}, "fees": {fees}}}\n'
    )


def quarantined(ingested) -> list[tuple]:
    """(file, row, column) of every quarantine row, in the table's order."""
    return [(r["file"], r["row"], r["column"]) for r in ingested.quarantine.iter_rows(named=True)]


def reason_of(ingested, file: str, row: int | None, column: str | None = None) -> str:
    hit = ingested.quarantine.filter(
        (pl.col("file") == file)
        & (pl.col("row").is_null() if row is None else pl.col("row") == row)
        & (pl.col("column").is_null() if column is None else pl.col("column") == column)
    )
    assert hit.height == 1, ingested.quarantine
    return hit["reason"][0]


def fill_rows(ingested, *columns: str) -> list[tuple]:
    return ingested.fills.sort("source_file", "source_row").select(columns).rows()


# ---------------------------------------------------------------------------------------
# A landing folder that books: the files every refusal test adds one bad file to
# ---------------------------------------------------------------------------------------

GOOD_TRADES = "bybit/api/trades/good.jsonl"
GOOD_BALANCE = "bybit/api/balances/2024-03-05.csv"


def good_landing(landing: Path) -> Path:
    put(landing, GOOD_TRADES,
        ccxt_trade("1", "2024-03-05T09:00:00.000Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0", "0.03", "USDT")
        + ccxt_trade("2", "2024-03-05T10:00:00.000Z", "BTC/USDT", "sell", "0.2", "61000.5", "12200.1", "2e-05", "BTC"))
    put(landing, GOOD_BALANCE, "asset,total\nBTC,1.3\nUSDT,100.25\n")
    put(landing, "marks/2024-03-05.csv", "asset,price\nBTC,67000.5\n")
    return landing


def assert_good_booked(ingested) -> None:
    """The good files booked in full, whatever else was refused."""
    good = ingested.fills.filter(pl.col("source_file") == GOOD_TRADES).sort("source_row")
    assert good.select("source_file", "trade_id", "qty", "price", "quote_qty", "fee", "fee_asset").rows() == [
        (GOOD_TRADES, "1", D("0.5"), D("60000"), D("30000"), D("0.03"), "USDT"),
        (GOOD_TRADES, "2", D("-0.2"), D("61000.5"), D("12200.1"), D("0.00002"), "BTC"),
    ]
    assert ingested.balances.filter(pl.col("source_file") == GOOD_BALANCE).select("business_date", "asset", "total").rows() == [
        (dt.date(2024, 3, 5), "BTC", D("1.3")),
        (dt.date(2024, 3, 5), "USDT", D("100.25")),
    ]
    assert ingested.marks.select("asset", "price").rows() == [("BTC", D("67000.5"))]


def test_good_landing_books_everything_and_refuses_nothing(tmp_path):
    ingested = ingest_landing(good_landing(tmp_path))
    assert_good_booked(ingested)
    assert ingested.quarantine.height == 0
    assert ingested.fills.schema["qty"] == pl.Decimal(38, 18)
    assert ingested.files.select("file", "format", "kind", "rows", "refused").sort("file").rows() == [
        (GOOD_BALANCE, "generic.balance_csv", "balances", 2, 0),
        (GOOD_TRADES, "ccxt.trades", "fills", 2, 0),
    ]


# ---------------------------------------------------------------------------------------
# Whole-file refusals: one quarantine entry naming the file; the run goes on
# ---------------------------------------------------------------------------------------

LATIN1_SPOT = (SPOT_HEADER + "24-03-05 09:15:02,BTCUSDT,BUY,65000.00,0.02000000BTC,1300.00USDT,0.00002000BTC\n").encode() + (
    "# Händler: café\n".encode("latin-1")
)
GOOD_SPOT_ROW = b"24-03-05 09:15:02,BTCUSDT,BUY,65000.00,0.02000000BTC,1300.00USDT,0.00002000BTC\n"

WHOLE_FILE_CASES = [
    pytest.param("binance/mm/trades/export.csv", b"Date,Instrument,Qty\n2024-03-05,BTC,1\n",
                 "unknown format: no reader recognises this file", id="unknown-header"),
    pytest.param("binance/mm/trades/Binance-Spot-Trade-History(UTC+0)_x.csv", LATIN1_SPOT,
                 "not UTF-8 text", id="latin-1-in-head"),
    # The bad byte past the 8 KiB head: detected as Binance, refused by the reader.
    pytest.param("binance/mm/trades/Binance-Spot-Trade-History(UTC+0)_y.csv",
                 SPOT_HEADER.encode() + GOOD_SPOT_ROW * 200 + "café\n".encode("latin-1"),
                 "can't decode byte 0xe9", id="latin-1-after-head"),
    pytest.param("okx/main/balances/2024-03-05.json", (FIXTURES / "ccxt/balance_truncated.json").read_bytes(),
                 "invalid JSON", id="truncated-json-balance"),
    pytest.param("kraken/main/balances/2024-03-05.json", b'{"error": [], "result": {"XXBT": "0.0100000000", "ZUS',
                 "unreadable", id="truncated-kraken-balance"),
    pytest.param("binance/mm/trades/empty.csv", b"", "the file is empty", id="empty-trades-file"),
    pytest.param("binance/mm/balances/2024-03-05.csv", b"", "the file is empty", id="empty-balance-file"),
    pytest.param("binance/mm/trades/account.json", (FIXTURES / "binance/account.json").read_bytes(),
                 "a balances file (binance.account) does not belong in trades/", id="balance-under-trades"),
    pytest.param("binance/mm/balances/2024-03-05.csv", (FIXTURES / "binance/spot_previous.csv").read_bytes(),
                 "a fills file (binance.spot_trades) does not belong in balances/", id="trades-under-balances"),
    pytest.param("binance/notes.txt", b"call the desk\n", "not in marks/, <venue>/<account>/trades/",
                 id="file-in-venue-folder"),
    pytest.param("notes.txt", b"call the desk\n", "not in marks/", id="file-at-top"),
    pytest.param("binance/mm/trade/export.csv", (FIXTURES / "binance/spot_previous.csv").read_bytes(),
                 "not in marks/", id="misspelt-trades-folder"),
    pytest.param("binance/mm/trades/2024/export.csv", (FIXTURES / "binance/spot_previous.csv").read_bytes(),
                 "not in marks/", id="trades-subfolder"),
    pytest.param("binance/mm/balances/balance-2024-03-05.json", (FIXTURES / "binance/account.json").read_bytes(),
                 "a balance snapshot is named YYYY-MM-DD.json or YYYY-MM-DD.csv", id="badly-named-balance"),
    pytest.param("binance/mm/balances/2024-02-30.json", (FIXTURES / "binance/account.json").read_bytes(),
                 "a balance snapshot is named YYYY-MM-DD", id="balance-named-for-no-date"),
    pytest.param("binance/mm/balances/2024-03-05.txt", b"asset,total\nBTC,1\n",
                 "a balance snapshot is named YYYY-MM-DD", id="balance-wrong-extension"),
    pytest.param("marks/eod-2024-03-06.csv", b"asset,price\nETH,3500\n", "a marks file is named YYYY-MM-DD.csv",
                 id="badly-named-marks"),
    pytest.param("marks/2024-03-06.json", b'{"ETH": "3500"}', "a marks file is named YYYY-MM-DD.csv",
                 id="marks-not-csv"),
    pytest.param("marks/2024-03-06.csv", b"coin,value\nETH,3500\n", "a marks file needs the columns asset,price",
                 id="marks-without-asset-price"),
]


@pytest.mark.parametrize(("rel", "content", "reason"), WHOLE_FILE_CASES)
def test_a_file_that_cannot_be_read_is_one_entry_and_the_run_goes_on(tmp_path, rel, content, reason):
    landing = good_landing(tmp_path)
    put(landing, rel, content)
    ingested = ingest_landing(landing)
    assert quarantined(ingested) == [(rel, None, None)]
    assert reason in reason_of(ingested, rel, None)
    assert_good_booked(ingested)


def test_bad_encoding_reason_names_the_byte(tmp_path):
    landing = good_landing(tmp_path)
    rel = "binance/mm/trades/Binance-Spot-Trade-History(UTC+0)_x.csv"
    put(landing, rel, LATIN1_SPOT)
    reason = reason_of(ingest_landing(landing), rel, None)
    assert "0xe4" in reason  # "ä" in latin-1: the first byte that is not UTF-8


def test_a_truncated_json_line_is_refused_alone(tmp_path):
    """A JSON-lines file cut short: its last line is refused (row = line number), the
    lines before it book."""
    landing = good_landing(tmp_path)
    rel = "okx/api/trades/pull.jsonl"
    whole = ccxt_trade("77", "2024-03-05T11:00:00.000Z", "ETH/USDT", "buy", "1.5", "3500.25", "5250.375")
    cut = ccxt_trade("78", "2024-03-05T11:01:00.000Z", "ETH/USDT", "sell", "1", "3501", "3501")[:70]
    put(landing, rel, whole + "\n" + cut)  # a blank line 2, the cut line is line 3
    ingested = ingest_landing(landing)
    assert quarantined(ingested) == [(rel, 3, None)]
    assert "invalid JSON" in reason_of(ingested, rel, 3)
    assert ingested.quarantine["raw"][0] == cut
    assert ingested.fills.filter(pl.col("source_file") == rel).select("trade_id", "qty", "quote_qty", "source_row").rows() == [
        ("77", D("1.5"), D("5250.375"), 1)
    ]


def test_a_truncated_json_line_in_the_middle_is_refused_alone(tmp_path):
    landing = good_landing(tmp_path)
    rel = "okx/api/trades/pull.jsonl"
    lines = [
        ccxt_trade("77", "2024-03-05T11:00:00.000Z", "ETH/USDT", "buy", "1.5", "3500.25", "5250.375"),
        ccxt_trade("78", "2024-03-05T11:01:00.000Z", "ETH/USDT", "sell", "1", "3501", "3501")[:90] + "\n",
        ccxt_trade("79", "2024-03-05T11:02:00.000Z", "ETH/USDT", "sell", "0.25", "3502", "875.5"),
    ]
    put(landing, rel, "".join(lines))
    ingested = ingest_landing(landing)
    assert quarantined(ingested) == [(rel, 2, None)]
    assert ingested.fills.filter(pl.col("source_file") == rel)["trade_id"].to_list() == ["77", "79"]
    assert_good_booked(ingested)


def test_files_table_names_each_file_format_and_counts(tmp_path):
    landing = good_landing(tmp_path)
    put(landing, "binance/mm/trades/export.csv", "Date,Instrument,Qty\n")
    files = ingest_landing(landing).files.sort("file")
    assert files.select("file", "format", "kind").rows() == [
        ("binance/mm/trades/export.csv", None, None),
        (GOOD_BALANCE, "generic.balance_csv", "balances"),
        (GOOD_TRADES, "ccxt.trades", "fills"),
    ]


def test_dot_files_and_utl_toml_are_not_reported(tmp_path):
    landing = good_landing(tmp_path)
    put(landing, ".DS_Store", b"\x00\x01")
    put(landing, "binance/mm/trades/.~lock.export.csv#", "x")
    put(landing, "utl.toml", 'reporting_currency = "USD"\n')
    ingested = ingest_landing(landing)
    assert ingested.quarantine.height == 0
    assert_good_booked(ingested)


def test_no_landing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no landing folder"):
        ingest_landing(tmp_path / "missing")


# ---------------------------------------------------------------------------------------
# Per-row refusals: file, row, column; the rest of the file books
# ---------------------------------------------------------------------------------------

SPOT_FILE = "binance/mm/trades/Binance-Spot-Trade-History-202403051200(UTC+0)_ab12.csv"


def test_bad_rows_of_a_spot_export_are_refused_alone(tmp_path):
    put(tmp_path, SPOT_FILE, SPOT_HEADER + "\n".join([
        '24-03-05 09:15:02,BTCUSDT,BUY,65000.00,0.02000000BTC,"1,300.00000000USDT",0.00002000BTC',  # 1 books
        '24-03-05 09:16:00,BTCUSDT,BUY,65000.00,0.0x000000BTC,"1,300.00000000USDT",0.00002000BTC',  # 2 Executed
        '24-03-05 09:17:00,BTCUSDT,HOLD,65000.00,0.02000000BTC,"1,300.00000000USDT",0.00002000BTC',  # 3 Side
        '99-01-01 00:00:00,BTCUSDT,BUY,65000.00,0.02000000BTC,"1,300.00000000USDT",0.00002000BTC',  # 4 Time: 1999
        "24-03-05 09:18:00,ETHBTC,SELL,0.05400,1.2000ETH,0.06480000BTC,0.00004120BNB",  # 5 books
        '24-03-05 09:19:00,BTCUSDT,BUY,"6,5000.00",0.01000000BTC,650.00000000USDT,0.00001000BTC',  # 6 Price
    ]) + "\n")
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [
        (SPOT_FILE, 2, "Executed"),
        (SPOT_FILE, 3, "Side"),
        (SPOT_FILE, 4, "Time"),
        (SPOT_FILE, 6, "Price"),
    ]
    q = ingested.quarantine
    assert q["raw"].to_list() == ["0.0x000000BTC", "HOLD", "99-01-01 00:00:00", "6,5000.00"]
    assert "is not an exact decimal" in q["reason"][0]
    assert "is not BUY or SELL" in q["reason"][1]
    assert "outside 2000..2099" in q["reason"][2]
    assert fill_rows(ingested, "source_row", "ts", "base", "quote", "side", "qty", "price", "quote_qty", "fee", "fee_asset") == [
        (1, dt.datetime(2024, 3, 5, 9, 15, 2, tzinfo=UTC), "BTC", "USDT", "buy", D("0.02"), D("65000"), D("1300"), D("0.00002"), "BTC"),
        (5, dt.datetime(2024, 3, 5, 9, 18, tzinfo=UTC), "ETH", "BTC", "sell", D("-1.2"), D("0.054"), D("0.0648"), D("0.0000412"), "BNB"),
    ]


def test_bad_rows_of_a_ccxt_pull_are_refused_alone(tmp_path):
    rel = "bybit/api/trades/pull.jsonl"
    put(tmp_path, rel, "".join([
        ccxt_trade("1", "2024-03-05T09:00:00.000Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0"),  # books
        ccxt_trade("2", "2024-03-05T09:01:00.000Z", "BTC/USDT", "buy", "0.5", '"60,000.0x"', "30000.0"),  # price
        ccxt_trade("3", "2024-03-05T09:02:00.000Z", "BTC/USDT", "short", "0.5", "60000.0", "30000.0"),  # side
        ccxt_trade("4", "2100-01-01T00:00:00.000Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0"),  # time
        ccxt_trade("5", "1999-12-31T23:59:59.999Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0"),  # time
        ccxt_trade("6", "2024-03-05T09:03:00.000Z", "ETH/USDT", "sell", "2", "3500", "7000", "7", "USDT"),  # books
    ]))
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [(rel, 2, "price"), (rel, 3, "side"), (rel, 4, "timestamp"), (rel, 5, "timestamp")]
    assert ingested.quarantine["raw"].to_list() == ["60,000.0x", "short", "4102444800000", "946684799999"]
    assert fill_rows(ingested, "source_row", "trade_id", "qty", "quote_qty", "fee") == [
        (1, "1", D("0.5"), D("30000"), None),
        (6, "6", D("-2"), D("7000"), D("7")),
    ]


def test_an_asset_code_that_cannot_be_an_asset_is_refused_with_its_column(tmp_path):
    """Codes are mapped centrally, then must be [A-Z0-9]: the row is refused, naming its
    own file, row and the column, the raw code kept."""
    rel = "bybit/api/trades/pull.jsonl"
    put(tmp_path, rel, "".join([
        ccxt_trade("1", "2024-03-05T09:00:00.000Z", "BT-C/USDT", "buy", "0.5", "60000.0", "30000.0"),
        ccxt_trade("2", "2024-03-05T09:01:00.000Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0", "0.1", "B N B"),
        ccxt_trade("3", "2024-03-05T09:02:00.000Z", "ÉTH/USDT", "buy", "1", "3500", "3500"),
        ccxt_trade("4", "2024-03-05T09:03:00.000Z", "btc/usdt", "sell", "0.1", "60000.0", "6000.0"),  # books, upper-cased
    ]))
    put(tmp_path, "kraken/main/balances/2024-03-05.csv", "asset,total\nXXBT,1\nUS$D,5\n")
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [
        (rel, 1, "base"),
        (rel, 2, "fee_asset"),
        (rel, 3, "base"),
        ("kraken/main/balances/2024-03-05.csv", 2, "asset"),
    ]
    assert ingested.quarantine["raw"].to_list() == ["BT-C", "B N B", "ÉTH", "US$D"]
    assert all("unknown asset code" in r for r in ingested.quarantine["reason"])
    assert fill_rows(ingested, "source_row", "base", "quote", "qty") == [(4, "BTC", "USDT", D("-0.1"))]
    assert ingested.balances.select("asset", "total").rows() == [("BTC", D("1"))]


def test_a_row_with_more_cells_than_the_header_is_refused_alone(tmp_path):
    rel = "kraken/main/balances/2024-03-06.csv"
    put(tmp_path, rel, "asset,total\nBTC,1,2\nETH,3.5\n")
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [(rel, 1, None)]
    assert ingested.quarantine["raw"].to_list() == ["BTC,1,2"]
    assert ingested.balances.select("asset", "total").rows() == [("ETH", D("3.5"))]


def test_a_bad_row_of_a_fill_export_is_quarantined_even_where_legs_come_from_a_ledger(tmp_path):
    copy_fixture(tmp_path, "kraken/ledgers_previous.csv", "kraken/main/trades/ledgers.csv")
    put(tmp_path, "kraken/main/trades/trades.csv",
        '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"\n'
        '"TJKLXX-PGMUI-4NTLXU","O1","XETHXXBT","2019-11-05 10:10:10.0000","sell","limit",0.0212,0.0212,0.0000339200,1.0,0.0,"",""\n'
        '"TBAD01-AAAAA-000001","O2","XETHXXBT","2019-11-05 10:11:00.0000","sell","limit",0.02x,0.02,0.0,1.0,0.0,"",""\n')
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [("kraken/main/trades/trades.csv", 2, "price")]
    assert ingested.ledger_accounts == {("kraken", "main")}


# ---------------------------------------------------------------------------------------
# Dedupe: each fill once, by the venue's id or the row's content and occurrence
# ---------------------------------------------------------------------------------------


def test_the_same_export_twice_books_each_fill_once(tmp_path):
    for name in ("Binance-Spot-Trade-History-202403051200(UTC+8)_ab12.csv",
                 "Binance-Spot-Trade-History-202403051200(UTC+8)_ab12 (1).csv"):
        copy_fixture(tmp_path, "binance/Binance-Spot-Trade-History-202403051200(UTC+8)_ab12.csv", f"binance/mm/trades/{name}")
    for name in ("my-trades.jsonl", "my-trades-copy.jsonl"):
        copy_fixture(tmp_path, "ccxt/trades.jsonl", f"bybit/api/trades/{name}")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    fills = ingested.fills
    assert fills.select("venue", "account", "trade_id").is_duplicated().sum() == 0
    # Every fill of the first-read copy, none of the second.
    binance = fills.filter(pl.col("venue") == "binance")
    assert binance["source_file"].unique().to_list() == ["binance/mm/trades/Binance-Spot-Trade-History-202403051200(UTC+8)_ab12 (1).csv"]
    assert binance["source_row"].to_list() == [1, 2, 3, 4, 5, 6, 7]
    # "1000000.001000SATS" is 1000000.00 of 1000SATS: the code is stripped from the end.
    assert binance["qty"].to_list() == [D(q) for q in ("0.02", "-1.2", "-100.5", "1000000", "0.1", "0.1", "-0.01")]
    bybit = fills.filter(pl.col("venue") == "bybit")
    assert bybit.height == 10
    assert bybit["source_file"].unique().to_list() == ["bybit/api/trades/my-trades-copy.jsonl"]


def test_identical_rows_of_one_file_without_ids_are_two_fills(tmp_path):
    """Binance spot rows have no id: two identical rows in one file are two fills, told
    apart by their occurrence number (eod.md)."""
    row = "24-03-05 11:00:00,BNBUSDT,BUY,400.0,0.10000000BNB,40.00000000USDT,0.00007500BNB\n"
    put(tmp_path, SPOT_FILE, SPOT_HEADER + row + row + row)
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    ids = ingested.fills.sort("source_row")["trade_id"].to_list()
    assert [i.rsplit("#", 1)[1] for i in ids] == ["1", "2", "3"]
    assert len({i.rsplit("#", 1)[0] for i in ids}) == 1
    assert ingested.fills["qty"].sum() == D("0.3")
    assert ingested.fills["fee"].sum() == D("0.000225")


def test_an_overlapping_re_export_adds_only_the_rows_it_has_more_of(tmp_path):
    """File A has a row once, file B (a later export) has it twice: two fills, not three."""
    row = "24-03-05 11:00:00,BNBUSDT,BUY,400.0,0.10000000BNB,40.00000000USDT,0.00007500BNB\n"
    other = "24-03-05 12:00:00,BNBUSDT,SELL,401.0,0.05000000BNB,20.05000000USDT,0.00003750BNB\n"
    put(tmp_path, "binance/mm/trades/Binance-Spot-Trade-History-202403051200(UTC+0)_a.csv", SPOT_HEADER + row)
    put(tmp_path, "binance/mm/trades/Binance-Spot-Trade-History-202403061200(UTC+0)_b.csv", SPOT_HEADER + row + row + other)
    fills = ingest_landing(tmp_path).fills
    assert fills.height == 3
    assert fills["qty"].sum() == D("0.15")


def test_one_row_exported_in_two_time_zones_is_one_fill(tmp_path):
    """The id-less key holds the UTC instant, not the local text of the export's zone."""
    put(tmp_path, "binance/mm/trades/Binance-Spot-Trade-History-202403051200(UTC+8)_a.csv",
        SPOT_HEADER + "24-03-05 17:15:02,BTCUSDT,BUY,65000.00,0.02000000BTC,1300.00000000USDT,0.00002000BTC\n")
    put(tmp_path, "binance/mm/trades/Binance-Spot-Trade-History-202403051200(UTC--6)_b.csv",
        SPOT_HEADER + "24-03-05 03:15:02,BTCUSDT,BUY,65000.00,0.02000000BTC,1300.00000000USDT,0.00002000BTC\n")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.fills.select("ts", "qty").rows() == [(dt.datetime(2024, 3, 5, 9, 15, 2, tzinfo=UTC), D("0.02"))]


def test_one_trade_id_with_different_content_is_a_conflict_and_books_nothing(tmp_path):
    a, b = "bybit/api/trades/a.jsonl", "bybit/api/trades/b.jsonl"
    put(tmp_path, a, ccxt_trade("100", "2024-03-05T09:00:00.000Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0")
        + ccxt_trade("101", "2024-03-05T09:05:00.000Z", "BTC/USDT", "sell", "0.1", "60100.0", "6010.0"))
    put(tmp_path, b, ccxt_trade("102", "2024-03-05T09:06:00.000Z", "BTC/USDT", "sell", "0.1", "60200.0", "6020.0")
        + ccxt_trade("100", "2024-03-05T09:00:00.000Z", "BTC/USDT", "buy", "0.5", "60001.0", "30000.5"))
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [(a, 1, "trade_id"), (b, 2, "trade_id")]
    for file, other in ((a, f"{b} row 2"), (b, f"{a} row 1")):
        reason = reason_of(ingested, file, 1 if file == a else 2, "trade_id")
        assert reason.startswith("conflict")
        assert other in reason
        assert "trade id 100 " in reason
    assert sorted(ingested.fills["trade_id"]) == ["101", "102"]


def test_a_conflict_refuses_every_copy_including_identical_ones(tmp_path):
    """Two identical copies and one different: which is right cannot be told; all three go."""
    same = ccxt_trade("100", "2024-03-05T09:00:00.000Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0")
    put(tmp_path, "bybit/api/trades/a.jsonl", same)
    put(tmp_path, "bybit/api/trades/b.jsonl", same)
    put(tmp_path, "bybit/api/trades/c.jsonl",
        ccxt_trade("100", "2024-03-05T09:00:00.000Z", "BTC/USDT", "sell", "0.5", "60000.0", "30000.0"))
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [
        ("bybit/api/trades/a.jsonl", 1, "trade_id"),
        ("bybit/api/trades/b.jsonl", 1, "trade_id"),
        ("bybit/api/trades/c.jsonl", 1, "trade_id"),
    ]
    assert ingested.fills.height == 0


def test_the_same_id_in_two_accounts_is_two_fills(tmp_path):
    line = ccxt_trade("100", "2024-03-05T09:00:00.000Z", "BTC/USDT", "buy", "0.5", "60000.0", "30000.0")
    put(tmp_path, "bybit/api-1/trades/t.jsonl", line)
    put(tmp_path, "bybit/api-2/trades/t.jsonl", line)
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert sorted(ingested.fills["account"]) == ["api-1", "api-2"]


def test_ledger_entries_repeated_in_two_exports_book_once(tmp_path):
    copy_fixture(tmp_path, "kraken/ledgers_previous.csv", "kraken/main/trades/ledgers-2019.csv")
    copy_fixture(tmp_path, "kraken/ledgers_previous.csv", "kraken/main/trades/ledgers-2019-again.csv")
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.movements.select("entry_id", "asset", "qty").sort("entry_id").rows() == [
        ("L4UESK-KG3EQ-UFO4T5", "ETH", D("-1")),
        ("LFZLQ4-7BQSH-Q2WAGC", "BTC", D("0.0212")),
        ("LFZLQ4-7BQSH-Q2WAGC/fee", "BTC", D("-0.00003392")),
        ("LSPD5R-YVQX6-JG6X5G", "GBP", D("100")),
    ]


def test_one_kraken_trade_in_two_export_versions_books_once(tmp_path):
    put(tmp_path, "kraken/main/trades/trades-old.csv",
        '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"\n'
        '"TQ3RLB-4XHMD-7ZP2KC","OHYD2K-QV4TN-5XJ7WL","XXBTZUSD","2024-03-05 09:15:02.1234","buy","limit",'
        '60000.0,600.00000,0.96000,0.01000000,0.00000,"",""\n')
    put(tmp_path, "kraken/main/trades/trades-new.csv",
        '"txid","ordertxid","pair","aclass","subclass","time","type","ordertype","price","cost","fee","vol","margin",'
        '"misc","ledgers","posttxid","posstatuscode","cprice","ccost","cfee","cvol","cmargin","net","trades"\n'
        '"TQ3RLB-4XHMD-7ZP2KC","OHYD2K-QV4TN-5XJ7WL","BTC/USD","forex","crypto","2024-03-05 09:15:02.1234","buy","limit",'
        '60000.0,600.00000,0.96000,0.01000000,0.00000,"","","","","","","","","","",""\n')
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.fills.select("trade_id", "base", "quote", "qty").rows() == [("TQ3RLB-4XHMD-7ZP2KC", "BTC", "USD", D("0.01"))]


def test_one_bybit_trade_in_its_csv_and_in_a_ccxt_pull_books_once(tmp_path):
    put(tmp_path, "bybit/main/trades/spot.csv",
        "Spot Pairs,Order Type,Direction,feeCoin,ExecFeeV2,Filled Value,Filled Price,Filled Quantity,Fees,"
        "Transaction ID,Order No.,Timestamp (UTC)\n"
        "BTCUSDT,LIMIT,BUY,BTC,0.00001,650,65000,0.01,--,2290000000522830001, 1836393090823490001,09:15 2024-03-05\n")
    put(tmp_path, "bybit/main/trades/pull.jsonl",
        ccxt_trade("2290000000522830001", "2024-03-05T09:15:02.123Z", "BTC/USDT", "buy", "0.01", "65000", "650",
                   "0.00001", "BTC"))
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.fills.select("trade_id", "base", "quote", "qty").rows() == [
        ("2290000000522830001", "BTC", "USDT", D("0.01"))]


def test_one_binance_futures_trade_in_its_export_and_a_ccxt_pull_books_once(tmp_path):
    copy_fixture(tmp_path, "binance/Futures-Trade-History-202403051200(UTC+0)_gh78.csv",
                 "binance/fut/trades/Futures-Trade-History-202403051200(UTC+0)_gh78.csv")
    put(tmp_path, "binance/fut/trades/pull.jsonl",
        ccxt_trade("500001", "2024-03-05T10:00:00.000Z", "BTC/USDT:USDT", "sell", "0.01", "65100.0", "651.0",
                   "0.2604", "USDT"))
    ingested = ingest_landing(tmp_path)
    # Binance numbers trades per symbol: 500002 of BTCUSDT and of ETHUSDT are two trades.
    assert sorted(ingested.fills["trade_id"]) == [
        "BTC/USDT-deriv:500001", "BTC/USDT-deriv:500002", "ETH/USDT-deriv:500002"]


def test_one_coinbase_fill_in_its_export_and_a_ccxt_pull_books_once(tmp_path):
    put(tmp_path, "coinbase/pro/trades/fills.csv",
        "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit\n"
        "default,7001,BTC-USD,BUY,2021-02-01T10:00:00.123Z,0.50000000,BTC,33000.00,82.5000000000,-16582.5000000000,USD\n")
    put(tmp_path, "coinbase/pro/trades/pull.jsonl",
        ccxt_trade("7001", "2021-02-01T10:00:00.123Z", "BTC/USD", "buy", "0.5", "33000", "16500", "82.5", "USD"))
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.fills.select("trade_id", "qty").rows() == [("BTC/USD:7001", D("0.5"))]


def test_one_kraken_trade_in_its_export_and_a_ccxt_pull_books_once(tmp_path):
    put(tmp_path, "kraken/main/trades/trades.csv", KRAKEN_TRADES_PREVIOUS
        + '"TQ3RLB-4XHMD-7ZP2KC","O1","XXBTZUSD","2024-03-05 09:15:02.1234","buy","limit",60000.0,600.00000,0.96000,'
          '0.01000000,0.0,"",""\n')
    put(tmp_path, "kraken/main/trades/pull.jsonl",
        ccxt_trade("TQ3RLB-4XHMD-7ZP2KC", "2024-03-05T09:15:02.123Z", "BTC/USD", "buy", "0.01", "60000", "600",
                   "0.96", "USD"))
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.fills.select("trade_id", "qty").rows() == [("TQ3RLB-4XHMD-7ZP2KC", D("0.01"))]


def test_the_same_identity_with_other_amounts_is_still_a_conflict(tmp_path):
    put(tmp_path, "kraken/main/trades/trades.csv", KRAKEN_TRADES_PREVIOUS
        + '"TQ3RLB-4XHMD-7ZP2KC","O1","XXBTZUSD","2024-03-05 09:15:02.1234","buy","limit",60000.0,600.00000,0.96000,'
          '0.01000000,0.0,"",""\n')
    put(tmp_path, "kraken/main/trades/pull.jsonl",
        ccxt_trade("TQ3RLB-4XHMD-7ZP2KC", "2024-03-05T09:15:02.123Z", "BTC/USD", "buy", "0.02", "60000", "1200",
                   "0.96", "USD"))
    ingested = ingest_landing(tmp_path)
    assert ingested.fills.height == 0
    assert sorted(ingested.quarantine["file"]) == ["kraken/main/trades/pull.jsonl", "kraken/main/trades/trades.csv"]
    assert all("conflict" in r for r in ingested.quarantine["reason"])


# ---------------------------------------------------------------------------------------
# Canonical assets and settings
# ---------------------------------------------------------------------------------------

KRAKEN_TRADES_PREVIOUS = '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"\n'


def test_kraken_codes_book_as_canonical_assets(tmp_path):
    put(tmp_path, "kraken/main/trades/trades.csv", KRAKEN_TRADES_PREVIOUS
        + '"T1","O1","XXBTZUSD","2024-03-05 09:15:02.1234","buy","limit",60000.0,600.00000,0.96000,0.01000000,0.0,"",""\n'
        + '"T2","O2","XETHXXBT","2024-03-05 10:00:00.0001","sell","market",0.05400,0.0648000000,0.0001036800,1.20000000,0.0,"",""\n')
    put(tmp_path, "kraken/main/balances/2024-03-05.json",
        '{"error": [], "result": {"ZUSD": "399.0400", "XXBT": "0.0100000000", "XETH": "1.5", "DOT.S": "12.5"}}')
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert fill_rows(ingested, "symbol", "base", "quote", "fee_asset", "qty", "price", "quote_qty", "fee") == [
        ("XXBTZUSD", "BTC", "USD", "USD", D("0.01"), D("60000"), D("600"), D("0.96")),
        ("XETHXXBT", "ETH", "BTC", "BTC", D("-1.2"), D("0.054"), D("0.0648"), D("0.00010368")),
    ]
    assert ingested.balances.select("asset", "total").rows() == [
        ("BTC", D("0.01")), ("DOT", D("12.5")), ("ETH", D("1.5")), ("USD", D("399.04")),
    ]


def test_codes_that_map_together_add_up_in_a_snapshot(tmp_path):
    put(tmp_path, "kraken/main/balances/2024-03-05.json",
        '{"error": [], "result": {"DOT": "1.25", "DOT.S": "10.5", "XXBT": "0.1", "XBT.M": "0.2"}}')
    ingested = ingest_landing(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.balances.select("asset", "total").rows() == [("BTC", D("0.3")), ("DOT", D("11.75"))]


def test_aliases_in_utl_toml_extend_the_table(tmp_path):
    line = ccxt_trade("1", "2024-03-05T09:00:00.000Z", "BCC/XBT", "buy", "2", "0.01", "0.02", "0.001", "bcc")
    put(tmp_path, "bybit/api/trades/t.jsonl", line)
    put(tmp_path, "bybit/api/balances/2024-03-05.csv", "asset,total\nBCC,2\nXXBT,0.98\n")
    before = ingest_landing(tmp_path)
    assert before.fills.select("base", "quote", "fee_asset").rows() == [("BCC", "BTC", "BCC")]

    put(tmp_path, "utl.toml", '[aliases]\nBCC = "BCH"\n')
    after = ingest_landing(tmp_path)
    assert after.settings.aliases == {"BCC": "BCH"}
    assert after.quarantine.height == 0
    # The table is extended, not replaced: XBT/XXBT still map to BTC.
    assert after.fills.select("base", "quote", "fee_asset", "qty", "fee").rows() == [("BCH", "BTC", "BCH", D("2"), D("0.001"))]
    assert after.balances.select("asset", "total").rows() == [("BCH", D("2")), ("BTC", D("0.98"))]


def test_an_alias_to_a_code_that_cannot_be_an_asset_refuses_the_rows(tmp_path):
    put(tmp_path, "bybit/api/trades/t.jsonl",
        ccxt_trade("1", "2024-03-05T09:00:00.000Z", "BCC/USDT", "buy", "2", "500", "1000"))
    put(tmp_path, "utl.toml", '[aliases]\nBCC = "BCH-OLD"\n')
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [("bybit/api/trades/t.jsonl", 1, "base")]
    assert ingested.quarantine["raw"].to_list() == ["BCC"]


def test_tolerance_is_text_read_exactly(tmp_path):
    put(tmp_path, "utl.toml", '[tolerance]\nBTC = "0.00000001"\nusdt = "0.01"\nETH = 0\n')
    settings = load_settings(tmp_path)
    assert settings.tolerance == {"BTC": D("0.00000001"), "USDT": D("0.01"), "ETH": D("0")}


@pytest.mark.parametrize("value", ["0.1", "1e-8", "inf", "nan"])
def test_a_toml_float_tolerance_is_refused(tmp_path, value):
    put(tmp_path, "utl.toml", f"[tolerance]\nBTC = {value}\n")
    with pytest.raises(SettingsError, match=r'\[tolerance\] BTC = .*write it as text, e\.g\. "0\.00000001"'):
        load_settings(tmp_path)
    good_landing(tmp_path)
    with pytest.raises(SettingsError, match="write it as text"):
        ingest_landing(tmp_path)


@pytest.mark.parametrize(("toml", "message"), [
    ('[tolerance]\nBTC = "abc"\n', "write it as text"),
    ('[tolerance]\nBTC = "-0.1"\n', "negative"),
    ('costing_method = "average"\n', "costing_method 'average' is not one of fifo, lifo, hifo, wac"),
    ("reporting_currency = \n", "utl.toml"),
])
def test_bad_settings_are_refused_with_a_clear_message(tmp_path, toml, message):
    put(tmp_path, "utl.toml", toml)
    with pytest.raises(SettingsError, match=message):
        load_settings(tmp_path)


def test_settings_default_without_utl_toml(tmp_path):
    settings = load_settings(tmp_path)
    assert (settings.reporting_currency, settings.costing_method, settings.tolerance, settings.aliases, settings.pairs) == (
        "USD", "fifo", {}, {}, {}
    )


BINANCE_LEGACY_HEADER = "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin\n"


def test_an_unknown_glued_pair_is_refused_without_a_pairs_entry(tmp_path):
    rel = "binance/mm/trades/legacy.csv"
    put(tmp_path, rel, BINANCE_LEGACY_HEADER + "2019-08-01 10:00:00,BTCMXN,BUY,200000.00,0.5,100000.00,0.0005,BTC\n")
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [(rel, 1, "Market")]
    assert "cannot be split" in ingested.quarantine["reason"][0]


def test_pairs_in_utl_toml_split_a_glued_symbol_as_given(tmp_path):
    rel = "binance/mm/trades/legacy.csv"
    put(tmp_path, rel, BINANCE_LEGACY_HEADER + "2019-08-01 10:00:00,BTCMXN,BUY,200000.00,0.5,100000.00,0.0005,BTC\n"
        + "2019-08-01 11:00:00,BTCBUSD,SELL,65000.0,1.0,65000.0,0.001,BNB\n")
    # BTCB (Bitcoin BEP2) in USD, though the quote table alone would read BTC/BUSD.
    put(tmp_path, "utl.toml", '[pairs]\nBTCMXN = ["BTC", "MXN"]\nBTCBUSD = ["BTCB", "USD"]\n')
    ingested = ingest_landing(tmp_path)
    assert ingested.settings.pairs == {"BTCMXN": ("BTC", "MXN"), "BTCBUSD": ("BTCB", "USD")}
    assert ingested.quarantine.height == 0
    assert fill_rows(ingested, "symbol", "base", "quote", "qty", "quote_qty") == [
        ("BTCMXN", "BTC", "MXN", D("0.5"), D("100000")),
        ("BTCBUSD", "BTCB", "USD", D("-1"), D("65000")),
    ]


# ---------------------------------------------------------------------------------------
# Marks
# ---------------------------------------------------------------------------------------


def test_marks_refuse_duplicates_and_bad_prices(tmp_path):
    rel = "marks/2024-03-05.csv"
    put(tmp_path, rel, "asset,price\n" + "\n".join([
        "BTC,67000.50",  # 1 listed twice (as XXBT on row 7)
        "ETH,0",  # 2 not positive
        "SOL,-1",  # 3 not positive
        "XRP,abc",  # 4 not a decimal
        "BNB,",  # 5 missing
        "USDT,1.0001",  # 6 books
        "XXBT,67001",  # 7 BTC again
        'ADA,"1,234.5"',  # 8 books
        "DOGE,1e-3",  # 9 books
        "ETC,1.2x",  # 10 not a decimal
    ]) + "\n")
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [
        (rel, 1, "asset"), (rel, 2, "price"), (rel, 3, "price"), (rel, 4, "price"),
        (rel, 5, "price"), (rel, 7, "asset"), (rel, 10, "price"),
    ]
    reasons = ingested.quarantine["reason"].to_list()
    assert "more than once" in reasons[0] and "more than once" in reasons[5]
    assert [("not positive" in r) for r in reasons[1:3]] == [True, True]
    assert "not a decimal" in reasons[3] and "not a decimal" in reasons[6]
    assert "missing" in reasons[4]
    assert ingested.quarantine["raw"].to_list()[1:5] == ["0", "-1", "abc", ""]
    assert ingested.marks.select("business_date", "asset", "price", "source_row").rows() == [
        (dt.date(2024, 3, 5), "USDT", D("1.0001"), 6),
        (dt.date(2024, 3, 5), "ADA", D("1234.5"), 8),
        (dt.date(2024, 3, 5), "DOGE", D("0.001"), 9),
    ]


def test_marks_same_asset_twice_refuses_both_rows(tmp_path):
    rel = "marks/2024-03-06.csv"
    put(tmp_path, rel, "asset,price\nETH,3500\nBTC,67000\nETH,3501\n")
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [(rel, 1, "asset"), (rel, 3, "asset")]
    assert ingested.marks.select("asset", "price").rows() == [("BTC", D("67000"))]


def test_marks_quarantine_keeps_the_asset_as_written(tmp_path):
    rel = "marks/2024-03-06.csv"
    put(tmp_path, rel, "asset,price\nBTC,67000\nXXBT,67001\n")
    assert ingest_landing(tmp_path).quarantine["raw"].to_list() == ["BTC", "XXBT"]


def test_read_marks_names_the_file_relative_to_the_landing(tmp_path):
    path = put(tmp_path, "marks/2024-03-07.csv", "Asset, Price\nbtc,67050.00\n")
    marks, refused = read_marks(dt.date(2024, 3, 7), path, tmp_path)
    assert refused.height == 0
    assert marks.rows() == [(dt.date(2024, 3, 7), "BTC", D("67050"), "marks/2024-03-07.csv", 1)]


# ---------------------------------------------------------------------------------------
# Two snapshots for one account and date
# ---------------------------------------------------------------------------------------


def test_two_snapshots_for_one_account_and_date_refuse_both(tmp_path):
    put(tmp_path, "kraken/main/balances/2024-03-05.csv", "asset,total\nBTC,1\n")
    put(tmp_path, "kraken/main/balances/2024-03-05.json", '{"error": [], "result": {"XXBT": "1.0"}}')
    put(tmp_path, "kraken/main/balances/2024-03-06.csv", "asset,total\nBTC,2\n")
    ingested = ingest_landing(tmp_path)
    assert quarantined(ingested) == [
        ("kraken/main/balances/2024-03-05.csv", 1, None),
        ("kraken/main/balances/2024-03-05.json", 1, None),
    ]
    assert ingested.balances.select("business_date", "asset", "total").rows() == [(dt.date(2024, 3, 6), "BTC", D("2"))]


# ---------------------------------------------------------------------------------------
# The sample landing folder
# ---------------------------------------------------------------------------------------


def test_sample_landing_quarantines_exactly_the_planted_row():
    landing = Path(__file__).parents[1] / "data_samples" / "landing"
    ingested = ingest_landing(landing)
    rel = "binance/mm-spot-1/trades/Binance-Spot-Trade-History-202403080800(UTC+8)_cd34.csv"
    assert ingested.quarantine.select("file", "row", "column", "raw").rows() == [(rel, 14, "Executed", "0.5x0000000ETH")]
    assert ingested.fills.select("venue", "account", "trade_id").is_duplicated().sum() == 0
    assert ingested.ledger_accounts == {("coinbase", "retail"), ("kraken", "main"), ("okx", "main"),
                                        ("binance", "futures"), ("deribit", "main"), ("okx", "trading")}
    codes = set(ingested.fills["base"]) | set(ingested.fills["quote"]) | set(ingested.movements["asset"]) | set(ingested.balances["asset"])
    assert not codes & {"XXBT", "XETH", "ZUSD", "XBT"}


# ---------------------------------------------------------------- issue 17: layouts through ingest


def test_issue_17_layouts_book_through_ingest(tmp_path):
    landing = tmp_path / "landing"
    put(landing, "utl.toml", '[timezones]\n"okx/main" = "UTC+8"\n')
    copy_fixture(landing, "okx/trading_resaved.csv", "okx/main/trades/trading.csv")
    copy_fixture(landing, "okx/funding_resaved.csv", "okx/other/trades/funding.csv")  # no zone for okx/other
    copy_fixture(landing, "kraken/ledgers_2017.csv", "kraken/main/trades/ledgers.csv")
    copy_fixture(landing, "binance/Binance-Spot-Trade-History-202403081200(UTC+1)_cs.csv",
                 "binance/main/trades/Binance-Spot-Trade-History-202403081200(UTC+1)_cs.csv")
    copy_fixture(landing, "coinbase/pro_account_capitalised.csv", "coinbase/pro/trades/account.csv")
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    for row in (["Date", "Market", "Type", "Price", "Amount", "Total", "Fee", "Fee Coin"],
                ["2018-01-07 20:42:29", "VENBTC", "BUY", 0.0002915, 34, 0.009911, 0.034, "VEN"]):
        book.active.append(row)
    (landing / "binance/old/trades").mkdir(parents=True)
    book.save(landing / "binance/old/trades/TradeHistory.xlsx")
    ingested = ingest_landing(landing)
    files = dict(zip(ingested.files["file"], ingested.files["format"]))
    assert files == {
        "binance/main/trades/Binance-Spot-Trade-History-202403081200(UTC+1)_cs.csv": "binance.spot_trades",
        "binance/old/trades/TradeHistory.xlsx": "binance.spot_trades_legacy",
        "coinbase/pro/trades/account.csv": "coinbase.pro_account",
        "kraken/main/trades/ledgers.csv": "kraken.ledgers",
        "okx/main/trades/trading.csv": "okx.trading_account",
        "okx/other/trades/funding.csv": "okx.funding_account",
    }
    assert set(ingested.quarantine["file"]) == {"okx/other/trades/funding.csv"}
    assert 'utl.toml [timezones] has no "okx/other"' in ingested.quarantine["reason"][0]
    okx_ts = ingested.movements.filter(pl.col("venue") == "okx")["ts"].to_list()
    assert okx_ts[0] == dt.datetime(2024, 3, 5, 9, 0, tzinfo=dt.timezone.utc)
    old = ingested.fills.filter(pl.col("account") == "old").row(0, named=True)
    assert (old["base"], old["quote"], old["price"], old["fee"], old["fee_asset"]) == ("VEN", "BTC", D("0.0002915"), D("0.034"), "VEN")
    assert ingested.movements.filter(pl.col("venue") == "kraken")["asset"].to_list() == ["EUR", "BTC", "EUR", "EUR"]
