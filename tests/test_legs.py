"""The universal ledger (utl.legs.book_legs): one leg per asset moved (eod.md, "Opening
state and booking").

Landing folders are built in ``tmp_path`` (venue exports in their real layouts, some copied
from tests/venues/fixtures), read with :func:`utl.ingest.ingest_landing`, and booked.
"""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest

from utl.ingest import DERIVATIVE_FORMATS, ingest_landing
from utl.legs import LEGS_OUT, book_legs
from utl.venues import all_formats

FIXTURES = Path(__file__).parent / "venues" / "fixtures"
SPOT_HEADER = "Time,Pair,Side,Price,Executed,Amount,Fee\n"


def put(landing: Path, rel: str, content: str) -> Path:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    return path


def copy_fixture(landing: Path, fixture: str, rel: str) -> None:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURES / fixture, path)


def ccxt_trade(trade_id: str, when: str, symbol: str, side: str, amount: str, price: str, cost: str,
               fee: str | None = None, fee_currency: str | None = None) -> str:
    """One line of ccxt unified trades; numbers are JSON number text as Python ccxt writes them."""
    ms = int(dt.datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() * 1000)
    fee_json = "null" if fee is None else f'{{"cost": {fee}, "currency": "{fee_currency}"}}'
    fees = "[]" if fee is None else f"[{fee_json}]"
    return (
        f'{{"info": {{}}, "id": "{trade_id}", "order": null, "timestamp": {ms}, "datetime": "{when}", '
        f'"symbol": "{symbol}", "type": "limit", "side": "{side}", "takerOrMaker": "maker", "price": {price}, '
        f'"amount": {amount}, "cost": {cost}, "fee": {fee_json}, "fees": {fees}}}\n'
    )


def ccxt_ledger(entry_id: str, when: str, direction: str, currency: str, amount: str, reference: str | None,
                kind: str = "trade") -> str:
    ms = int(dt.datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() * 1000)
    ref = "null" if reference is None else f'"{reference}"'
    return (
        f'{{"id": "{entry_id}", "timestamp": {ms}, "datetime": "{when}", "direction": "{direction}", '
        f'"account": null, "referenceId": {ref}, "referenceAccount": null, "type": "{kind}", '
        f'"currency": "{currency}", "amount": {amount}, "before": null, "after": null, "status": "ok", '
        f'"fee": null, "info": {{}}}}\n'
    )


def booked(landing: Path) -> tuple[object, pl.DataFrame]:
    ingested = ingest_landing(landing)
    return ingested, book_legs(ingested.fills, ingested.movements, ingested.ledger_accounts)


def positions(legs: pl.DataFrame, venue: str, account: str) -> dict[str, D]:
    mine = legs.filter((pl.col("venue") == venue) & (pl.col("account") == account))
    return dict(mine.group_by("asset").agg(pl.col("qty").sum()).sort("asset").rows())


# ---------------------------------------------------------------------------------------
# Spot fills: base ±qty, quote ∓quote_qty, fee −fee in its own asset
# ---------------------------------------------------------------------------------------

SPOT_FILE = "binance/mm/trades/Binance-Spot-Trade-History-202403051200(UTC+0)_ab12.csv"


def test_spot_fills_book_base_quote_and_fee_legs(tmp_path):
    put(tmp_path, SPOT_FILE, SPOT_HEADER + "\n".join([
        '24-03-05 09:15:02,BTCUSDT,BUY,65000.00,0.02000000BTC,"1,300.00000000USDT",0.00002000BTC',  # fee in the base
        "24-03-05 09:20:41,ETHBTC,SELL,0.05400,1.2000ETH,0.06480000BTC,0.00004120BNB",  # fee in BNB
        "24-03-05 09:30:00,BTCUSDT,SELL,65000.00,0.01000000BTC,650.00000000USDT,0.65000000USDT",  # fee in the quote
        "24-03-05 09:40:00,BTCUSDT,BUY,65000.00,0.01000000BTC,650.00000000USDT,0.00000000USDT",  # no fee
    ]) + "\n")
    ingested, legs = booked(tmp_path)
    assert ingested.quarantine.height == 0
    ids = dict(ingested.fills.select("source_row", "trade_id").rows())
    got = legs.sort("source_row", "leg_id").select("source_row", "leg_id", "kind", "asset", "qty", "price", "quote", "source").rows()
    assert got == [
        (1, ids[1] + "/base", "base", "BTC", D("0.02"), D("65000"), "USDT", "fills"),
        (1, ids[1] + "/fee", "fee", "BTC", D("-0.00002"), None, None, "fills"),
        (1, ids[1] + "/quote", "quote", "USDT", D("-1300"), None, None, "fills"),
        (2, ids[2] + "/base", "base", "ETH", D("-1.2"), D("0.054"), "BTC", "fills"),
        (2, ids[2] + "/fee", "fee", "BNB", D("-0.0000412"), None, None, "fills"),
        (2, ids[2] + "/quote", "quote", "BTC", D("0.0648"), None, None, "fills"),
        (3, ids[3] + "/base", "base", "BTC", D("-0.01"), D("65000"), "USDT", "fills"),
        (3, ids[3] + "/fee", "fee", "USDT", D("-0.65"), None, None, "fills"),
        (3, ids[3] + "/quote", "quote", "USDT", D("650"), None, None, "fills"),
        (4, ids[4] + "/base", "base", "BTC", D("0.01"), D("65000"), "USDT", "fills"),
        (4, ids[4] + "/quote", "quote", "USDT", D("-650"), None, None, "fills"),
    ]
    assert positions(legs, "binance", "mm") == {
        "BNB": D("-0.0000412"),
        "BTC": D("0.02") - D("0.00002") + D("0.0648") - D("0.01") + D("0.01"),
        "ETH": D("-1.2"),
        "USDT": D("-1300") + D("650") - D("0.65") - D("650"),
    }
    assert legs.schema == LEGS_OUT
    assert set(legs["ts"]) == set(ingested.fills["ts"])


def test_a_rebate_books_plus_and_a_missing_cost_is_qty_times_price(tmp_path):
    rel = "bybit/api/trades/t.jsonl"
    put(tmp_path, rel, "".join([
        # A maker rebate: ccxt writes it as a negative fee cost.
        ccxt_trade("9", "2024-03-05T12:02:00.000Z", "SOL/USDT", "buy", "4.642857142857143", "140.0",
                   "650.0000000000001", "-0.065", "USDT"),
        # No cost stated: the quote leg is amount × price.
        ccxt_trade("10", "2024-03-05T12:03:00.500Z", "BTC/USDT", "sell", "0.001", "65010.5", "null", "0.1", "USDT"),
    ]))
    ingested, legs = booked(tmp_path)
    assert ingested.quarantine.height == 0
    assert legs.sort("trade_id", "leg_id").select("leg_id", "asset", "qty").rows() == [
        ("10/base", "BTC", D("-0.001")),
        ("10/fee", "USDT", D("-0.1")),
        ("10/quote", "USDT", D("65.0105")),
        ("9/base", "SOL", D("4.642857142857143")),
        ("9/fee", "USDT", D("0.065")),
        ("9/quote", "USDT", D("-650.0000000000001")),
    ]


def test_identical_id_less_fills_book_twice(tmp_path):
    row = "24-03-05 11:00:00,BNBUSDT,BUY,400.0,0.10000000BNB,40.00000000USDT,0.00007500BNB\n"
    put(tmp_path, SPOT_FILE, SPOT_HEADER + row + row)
    _, legs = booked(tmp_path)
    assert legs.height == 6
    assert positions(legs, "binance", "mm") == {"BNB": D("0.19985"), "USDT": D("-80")}


# ---------------------------------------------------------------------------------------
# One source of legs per account
# ---------------------------------------------------------------------------------------

KRAKEN_LEDGER = "kraken/main/trades/ledgers.csv"
KRAKEN_TRADES = "kraken/main/trades/trades.csv"


def kraken_and_binance(landing: Path) -> Path:
    """kraken/main holds a Ledgers export and a Trades export (real fixtures; the Trades
    row TQ3RLB-4XHMD-7ZP2KC is the trade of the ledger's refid TQ3RLB-4XHMD-7ZP2KC).
    binance/mm holds only fills."""
    copy_fixture(landing, "kraken/ledgers_current.csv", KRAKEN_LEDGER)
    copy_fixture(landing, "kraken/trades_previous.csv", KRAKEN_TRADES)
    put(landing, SPOT_FILE, SPOT_HEADER + "24-03-05 09:15:02,BTCUSDT,BUY,65000.00,0.02000000BTC,1300USDT,0.00002000BTC\n")
    return landing


def test_an_account_with_a_ledger_books_from_the_ledger_only(tmp_path):
    ingested, legs = booked(kraken_and_binance(tmp_path))
    assert ingested.ledger_accounts == {("kraken", "main")}
    kraken = legs.filter(pl.col("venue") == "kraken")
    assert set(kraken["source"]) == {"ledger"}
    assert set(kraken["source_file"]) == {KRAKEN_LEDGER}
    # Its fills stay in the fills table (six of them book, six rows are refused) ...
    assert ingested.fills.filter(pl.col("venue") == "kraken").height == 6
    # ... but none is a leg: every ledger line books as it is, and nothing else.
    assert kraken.sort("source_row", "leg_id").select("source_row", "leg_id", "kind", "asset", "qty").rows() == [
        (1, "LD5E6F-G7H8J-K9L0M1", "deposit", "EUR", D("1000")),
        (2, "LA1B2C-D3E4F-G5H6I7", "trade", "EUR", D("-600")),
        (2, "LA1B2C-D3E4F-G5H6I7/fee", "fee", "EUR", D("-0.96")),
        (3, "LJ8K9L-M0N1P-Q2R3S4", "trade", "BTC", D("0.01")),
        (4, "LK1FEE-AAAAA-BBBBBB/fee", "fee", "KFEE", D("-120")),
        (5, "LW1DRW-AAAAA-BBBBBB", "withdrawal", "BTC", D("-0.005")),
        (5, "LW1DRW-AAAAA-BBBBBB/fee", "fee", "BTC", D("-0.00015")),
        (7, "LS1STK-AAAAA-BBBBBB", "interest", "DOT", D("0.0125")),
        (8, "LE1ERN-AAAAA-BBBBBB", "interest", "DOT", D("0.03")),
        (9, "LE2ERN-AAAAA-BBBBBB", "transfer", "DOT", D("-0.03")),
        (10, "LR1ROL-AAAAA-BBBBBB/fee", "fee", "EUR", D("-0.02")),
        (14, "LD2REV-AAAAA-BBBBBB", "deposit", "EUR", D("-50")),
        (14, "LD2REV-AAAAA-BBBBBB/fee", "fee", "EUR", D("0.5")),
        (15, "LM1MRG-AAAAA-BBBBBB", "realized_pnl", "USD", D("12.3456")),
        (15, "LM1MRG-AAAAA-BBBBBB/fee", "fee", "USD", D("-0.05")),
        (16, "LQ1ODD-AAAAA-BBBBBB", "other", "USD", D("5")),
    ]
    # Booking the fills too would add 0.01 BTC and -600.96 EUR a second time.
    assert positions(legs, "kraken", "main") == {
        "BTC": D("0.00485"), "DOT": D("0.0125"), "EUR": D("349.52"), "KFEE": D("-120"), "USD": D("17.2956"),
    }


def test_fills_add_their_price_to_the_ledger_line_of_the_same_trade(tmp_path):
    _, legs = booked(kraken_and_binance(tmp_path))
    trade = legs.filter(pl.col("trade_id") == "TQ3RLB-4XHMD-7ZP2KC").sort("leg_id")
    # The base line (XXBT, mapped to BTC) takes the fill's price and quote; the quote lines do not.
    assert trade.select("leg_id", "asset", "qty", "price", "quote").rows() == [
        ("LA1B2C-D3E4F-G5H6I7", "EUR", D("-600"), None, None),
        ("LA1B2C-D3E4F-G5H6I7/fee", "EUR", D("-0.96"), None, None),
        ("LJ8K9L-M0N1P-Q2R3S4", "BTC", D("0.01"), D("60000"), "EUR"),
    ]
    kraken = legs.filter(pl.col("venue") == "kraken")
    assert kraken.filter(pl.col("price").is_not_null())["leg_id"].to_list() == ["LJ8K9L-M0N1P-Q2R3S4"]


def test_an_account_with_only_fills_books_from_its_fills(tmp_path):
    ingested, legs = booked(kraken_and_binance(tmp_path))
    binance = legs.filter(pl.col("venue") == "binance")
    assert set(binance["source"]) == {"fills"}
    assert positions(legs, "binance", "mm") == {"BTC": D("0.01998"), "USDT": D("-1300")}


def test_a_ledger_in_one_account_does_not_silence_the_fills_of_another(tmp_path):
    """The ledger decides per (venue, account): the same venue's other account keeps its fills."""
    copy_fixture(tmp_path, "kraken/ledgers_previous.csv", "kraken/main/trades/ledgers.csv")
    put(tmp_path, "kraken/sub/trades/trades.csv",
        '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"\n'
        '"T9","O9","XXBTZUSD","2024-03-05 09:15:02.1234","buy","limit",60000.0,600.00000,0.96000,0.01000000,0.0,"",""\n')
    ingested, legs = booked(tmp_path)
    assert ingested.ledger_accounts == {("kraken", "main")}
    assert positions(legs, "kraken", "sub") == {"BTC": D("0.01"), "USD": D("-600.96")}
    assert positions(legs, "kraken", "main") == {"BTC": D("0.02116608"), "ETH": D("-1"), "GBP": D("100")}


def test_a_ledger_fee_line_in_the_base_asset_takes_no_fill_price(tmp_path):
    put(tmp_path, KRAKEN_LEDGER,
        '"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"\n'
        '"L1","T1","2024-03-05 09:15:02","trade","","currency","ZUSD",-600.0000,0.0000,400.0000\n'
        '"L2","T1","2024-03-05 09:15:02","trade","","currency","XXBT",0.0100000000,0.0000100000,0.0099900000\n')
    put(tmp_path, KRAKEN_TRADES,
        '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"\n'
        '"T1","O1","XXBTZUSD","2024-03-05 09:15:02.1234","buy","limit",60000.0,600.00000,0.00001,0.01000000,0.0,"","L1,L2"\n')
    _, legs = booked(tmp_path)
    assert legs.sort("leg_id").select("leg_id", "kind", "asset", "qty", "price", "quote").rows() == [
        ("L1", "trade", "USD", D("-600"), None, None),
        ("L2", "trade", "BTC", D("0.01"), D("60000"), "USD"),
        ("L2/fee", "fee", "BTC", D("-0.00001"), None, None),
    ]


def test_ccxt_fills_add_their_price_to_ccxt_ledger_lines(tmp_path):
    put(tmp_path, "okx/api/trades/ledger.jsonl",
        ccxt_ledger("L-1", "2024-03-05T09:15:02.123Z", "in", "BTC", "0.02", "28457")
        + ccxt_ledger("L-2", "2024-03-05T09:15:02.123Z", "out", "USDT", "1300.0", "28457"))
    put(tmp_path, "okx/api/trades/trades.jsonl",
        ccxt_trade("28457", "2024-03-05T09:15:02.123Z", "BTC/USDT", "buy", "0.02", "65000.0", "1300.0"))
    ingested, legs = booked(tmp_path)
    assert ingested.ledger_accounts == {("okx", "api")}
    assert positions(legs, "okx", "api") == {"BTC": D("0.02"), "USDT": D("-1300")}
    assert legs.filter(pl.col("asset") == "BTC").select("price", "quote").rows() == [(D("65000"), "USDT")]


# ---------------------------------------------------------------------------------------
# Derivatives: kept in fills; in fills-only accounts only their fee books
# ---------------------------------------------------------------------------------------


def test_derivative_formats_name_real_formats():
    names = {f.name for f in all_formats()}
    assert DERIVATIVE_FORMATS <= names


def test_derivative_fills_stay_in_fills_and_book_only_their_fee(tmp_path):
    """Fills-only accounts: a derivative fill's instrument leg moves no cash (it is in
    ``derivative_fills``); its fee is a spot leg in the fee asset (derivatives.md, Booking)."""
    put(tmp_path, "bybit/api/trades/t.jsonl", "".join([
        ccxt_trade("500001", "2024-03-05T10:00:00.000Z", "BTC/USDT:USDT", "sell", "0.01", "65100.0", "651.0", "0.2604", "USDT"),
        ccxt_trade("11", "2024-03-05T12:04:00.000Z", "BTC/USD:BTC-240628-60000-C", "buy", "1", "0.085", "0.085", "0.0003", "BTC"),
        ccxt_trade("12", "2024-03-05T12:05:00.000Z", "ETH/USDT", "buy", "0.1", "3500.0", "350.0", "0.35", "USDT"),
    ]))
    copy_fixture(tmp_path, "binance/Futures-Trade-History-202403051200(UTC+0)_gh78.csv",
                 "binance/futures/trades/Futures-Trade-History-202403051200(UTC+0)_gh78.csv")
    ingested, legs = booked(tmp_path)
    fills = ingested.fills.sort("venue", "source_row")
    assert fills.select("venue", "trade_id", "derivative").rows() == [
        # Binance numbers trades per symbol: its ids are qualified by pair (ledger.md).
        ("binance", "BTC/USDT-deriv:500001", True),
        ("binance", "BTC/USDT-deriv:500002", True),
        ("binance", "ETH/USDT-deriv:500002", True),
        ("bybit", "500001", True),
        ("bybit", "11", True),
        ("bybit", "12", False),
    ]
    # Spot ETH/USDT books base, quote and fee; each derivative fill only -fee (the fixture's
    # Fee column: 0.2604 USDT, 0.0325USDT, 0.0001 BNB; the ccxt lines' fee.cost).
    assert legs.select("venue", "account", "leg_id", "asset", "qty").sort("leg_id").rows() == [
        ("bybit", "api", "11/fee", "BTC", D("-0.0003")),
        ("bybit", "api", "12/base", "ETH", D("0.1")),
        ("bybit", "api", "12/fee", "USDT", D("-0.35")),
        ("bybit", "api", "12/quote", "USDT", D("-350")),
        ("bybit", "api", "500001/fee", "USDT", D("-0.2604")),
        ("binance", "futures", "BTC/USDT-deriv:500001/fee", "USDT", D("-0.2604")),
        ("binance", "futures", "BTC/USDT-deriv:500002/fee", "USDT", D("-0.0325")),
        ("binance", "futures", "ETH/USDT-deriv:500002/fee", "BNB", D("-0.0001")),
    ]
    assert legs.filter(pl.col("kind") == "fee")["source"].unique().to_list() == ["fills"]


def test_derivative_cash_flows_in_a_ledger_still_book(tmp_path):
    """In a ledger account futures fills book nothing, not even their fee: the ledger's
    lines (fee, PnL, funding) do, so the fee 0.2604 is booked once, from COMMISSION."""
    copy_fixture(tmp_path, "binance/futures_trades_older.csv", "binance/futures/trades/futures-trades.csv")
    copy_fixture(tmp_path, "binance/futures_transactions_older.csv", "binance/futures/trades/futures-transactions.csv")
    ingested, legs = booked(tmp_path)
    assert ingested.quarantine.height == 0
    assert ingested.fills.height == 2 and ingested.fills["derivative"].all()
    assert legs.sort("leg_id").select("kind", "asset", "qty").rows() == [
        ("fee", "USDT", D("-0.2604")),
        ("realized_pnl", "USDT", D("1")),
    ]


# ---------------------------------------------------------------------------------------
# Leg ids
# ---------------------------------------------------------------------------------------


def test_leg_ids_are_unique_within_an_account(tmp_path):
    kraken_and_binance(tmp_path)
    row = "24-03-05 11:00:00,BNBUSDT,BUY,400.0,0.10000000BNB,40.00000000USDT,0.00007500BNB\n"
    put(tmp_path, "binance/mm/trades/Binance-Spot-Trade-History-202403061200(UTC+8)_x.csv", SPOT_HEADER + row + row)
    copy_fixture(tmp_path, "ccxt/trades.jsonl", "bybit/api/trades/t.jsonl")
    copy_fixture(tmp_path, "binance/Binance-Transaction-History-202403061200(UTC+8)_ef56.csv",
                 "binance/ledger/trades/Binance-Transaction-History-202403061200(UTC+8)_ef56.csv")
    _, legs = booked(tmp_path)
    assert legs.height > 40
    assert legs.select("venue", "account", "leg_id").is_duplicated().sum() == 0
    assert legs["leg_id"].null_count() == 0


def test_leg_ids_are_unique_in_the_sample_landing():
    landing = Path(__file__).parents[1] / "data_samples" / "landing"
    ingested, legs = booked(landing)
    assert legs.select("venue", "account", "leg_id").is_duplicated().sum() == 0
    # Each ledger account books only from its ledger, every other one only from its fills.
    sources = dict(legs.group_by("venue", "account").agg(pl.col("source").unique().sort())
                   .select(pl.concat_str("venue", pl.lit("/"), "account"), pl.col("source").list.join(",")).rows())
    assert sources == {
        "binance/mm-spot-1": "fills", "binance/mm-spot-2": "fills", "bybit/api": "fills",
        "coinbase/retail": "ledger", "kraken/main": "ledger", "okx/main": "ledger",
        # The derivative accounts' settle-asset cash comes from their ledgers (derivatives.md).
        "binance/futures": "ledger", "deribit/main": "ledger", "okx/trading": "ledger",
    }
