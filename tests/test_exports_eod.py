"""Issue 17 through `utl eod` on a small landing folder: Binance wallets as sub-accounts
reconciled each against its own snapshot, a header-only snapshot as an account holding
nothing, unknown layouts listed (and, with [strict], stopping the run), Kraken fees whose
asset a trades export alone cannot tell."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg

from utl.fee_assumed import fee_asset_assumed_accounts
from utl.ingest import ingest_landing
from utl.legs import book_legs
from utl.memory import LandingMemory

BINANCE_LEDGER = """User ID,Time,Account,Operation,Coin,Change,Remark
1,24-03-05 09:15:02,Spot,Transaction Buy,BTC,0.02,
1,24-03-05 09:15:02,Spot,Transaction Spend,USDT,-1300,
1,24-03-05 10:00:00,USD-M Futures,Realized Profit and Loss,USDT,120.5,
1,24-03-05 10:00:00,USD-M Futures,Funding Fee,USDT,-0.25,
1,24-03-05 11:00:00,Funding,Deposit,USDT,50,
"""
KRAKEN_TRADES = """"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"
"TAAAAA-AAAAA-AAAAA1","OAAAAA-AAAAA-AAAAA1","XXBTZUSD","2024-03-05 09:00:00.0000","buy","limit",60000.0,600.00000,0.96000,0.01000000,0.00000,"",""
"""
KRAKEN_LEDGERS = """"txid","refid","time","type","subtype","aclass","asset","amount","fee","balance"
"LAAAAA-AAAAA-AAAAA1","TAAAAA-AAAAA-AAAAA1","2024-03-05 09:00:00","trade","","currency","ZUSD",-600.0000,0.9600,399.0400
"LAAAAA-AAAAA-AAAAA2","TAAAAA-AAAAA-AAAAA1","2024-03-05 09:00:00","trade","","currency","XXBT",0.0100000000,0,0.0100000000
"""
# A Spot Trade History without Executed (a column the reader needs) and with one of its own.
MYSTERY = "Time,Pair,Side,Price,Amount,Fee,Rebate\n2024-03-05 09:00:00,BTCUSDT,BUY,1,1,0,0\n"


def put(landing: Path, rel: str, text: str) -> None:
    path = landing / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def small_landing(root: Path) -> Path:
    landing = root / "landing"
    for day in ("2024-03-04", "2024-03-05"):
        put(landing, f"marks/{day}.csv", "asset,price\nBTC,65000\nUSDT,1\n")
    put(landing, "binance/mm/trades/Binance-Transaction-History-202403051200(UTC+0).csv", BINANCE_LEDGER)
    put(landing, "binance/mm/balances/2024-03-04.csv", "asset,total\nUSDT,2000\n")
    put(landing, "binance/mm/balances/2024-03-04.usd-m-futures.csv", "asset,total\nUSDT,500\n")
    put(landing, "binance/mm/balances/2024-03-05.csv", "asset,total\nBTC,0.02\nUSDT,700\n")
    # 500 + 120.5 - 0.25 = 620.25 in the ledger: the venue says 620, a break of -0.25 there.
    put(landing, "binance/mm/balances/2024-03-05.usd-m-futures.csv", "asset,total\nUSDT,620\n")
    put(landing, "binance/mm/trades/mystery.csv", MYSTERY)
    put(landing, "kraken/empty/balances/2024-03-04.csv", "asset,total\nBTC,1\n")
    put(landing, "kraken/empty/balances/2024-03-05.csv", "asset,total\n")
    put(landing, "kraken/none/balances/2024-03-04.csv", "asset,total\nBTC,1\n")
    put(landing, "kraken/tr/balances/2024-03-04.csv", "asset,total\nUSD,1000\n")
    put(landing, "kraken/tr/trades/trades.csv", KRAKEN_TRADES)
    return landing


def utl(*args: str, url: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("UTL_DATABASE_URL", "UTL_LANDING")}
    env.update(UTL_DATABASE_URL=url, UTL_HOME=str(home), DAGSTER_HOME=str(home / "dagster"))
    return subprocess.run([sys.executable, "-m", "utl.cli", *args], capture_output=True, text=True, env=env, timeout=300)


def test_wallets_empty_snapshots_and_unknown_layouts_through_eod(database: str, tmp_path: Path) -> None:
    landing = small_landing(tmp_path)
    done = utl("eod", "--landing", str(landing), "--date", "2024-03-05", url=database, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    listed = utl("breaks", "--date", "2024-03-05", "--format", "csv", "--landing", str(landing), url=database,
                 home=tmp_path / "home")
    breaks = sorted((r["venue"], r["account"], r["asset"], Decimal(r["ledger_qty"]), Decimal(r["venue_qty"]),
                     Decimal(r["diff"])) for r in csv.DictReader(io.StringIO(listed.stdout)))
    assert breaks == [
        # The header-only snapshot: reconciled, the BTC the ledger holds is missing at the venue.
        ("binance", "mm/usd-m-futures", "USDT", Decimal("620.25"), Decimal("620"), Decimal("-0.25")),
        ("kraken", "empty", "BTC", Decimal("1"), Decimal("0"), Decimal("-1")),
    ]
    # Spot holds exactly its own rows (2000 - 1300 USDT, 0.02 BTC): no futures PnL in it; the
    # account with no snapshot on the date is not reconciled at all.
    with psycopg.connect(database) as conn:
        positions = dict(((a, s), q) for a, s, q in conn.execute(
            "SELECT account, asset, qty FROM utl.positions WHERE venue = 'binance' AND business_date = '2024-03-05'"))
        reasons = [r for (r,) in conn.execute("SELECT reason FROM utl.quarantine WHERE file LIKE 'binance/%'")]
    assert positions == {("mm", "BTC"): Decimal("0.02"), ("mm", "USDT"): Decimal("700"),
                         ("mm/usd-m-futures", "USDT"): Decimal("620.25")}
    assert any("account binance/mm/funding has no balance snapshot" in r for r in reasons), reasons
    # The run summary lists the unknown file with its header and nearest layout, and the
    # Kraken account booked from its trades export alone.
    out = done.stdout
    assert "unknown layouts: 1 file no single reader takes" in out
    assert ('binance/mm/trades/mystery.csv: header seen: "Time,Pair,Side,Price,Amount,Fee,Rebate"; '
            'nearest known layout: binance.spot_trades (current): missing "Executed"; extra "Rebate"; '
            'binance.spot_trades needs "Executed"') in out
    assert "load the ledgers export for exact fees): kraken/tr" in out
    report = utl("report", "--date", "2024-03-05", "--landing", str(landing), "--out", str(tmp_path / "r.html"),
                 url=database, home=tmp_path / "home")
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "r.html").read_text()
    assert "Unknown layouts (1)" in html and "binance/mm/trades/mystery.csv" in html


def test_strict_unknown_files_stops_the_run_in_one_line(database: str, tmp_path: Path) -> None:
    landing = small_landing(tmp_path)
    put(landing, "utl.toml", '[strict]\nunknown_files = "fail"\n')
    done = utl("eod", "--landing", str(landing), "--date", "2024-03-05", url=database, home=tmp_path / "home")
    assert done.returncode == 1
    [line] = [x for x in done.stderr.splitlines() if x.startswith("utl eod:")]
    assert line.startswith("utl eod: could not complete: binance/mm/trades/mystery.csv: unknown format")
    assert line.endswith('[strict] unknown_files = "fail" stops the run')
    # Without the file the same landing runs.
    (landing / "binance/mm/trades/mystery.csv").unlink()
    again = utl("eod", "--landing", str(landing), "--date", "2024-03-05", url=database, home=tmp_path / "home")
    assert again.returncode == 0, again.stderr


def test_kraken_fees_from_trades_alone_are_flagged_until_the_ledgers_come(tmp_path: Path) -> None:
    landing = small_landing(tmp_path)
    ingested = ingest_landing(landing)
    kraken = ingested.fills.filter(pl.col("venue") == "kraken")
    assert kraken["fee_asset_assumed"].to_list() == [True]
    assert not ingested.fills.filter(pl.col("venue") != "kraken")["fee_asset_assumed"].any()
    legs = book_legs(ingested.fills, ingested.movements, ingested.ledger_accounts).filter(pl.col("venue") == "kraken")
    flagged = legs.filter("fee_asset_assumed")
    assert flagged.select("kind", "asset", "qty").rows() == [("fee", "USD", Decimal("-0.96"))]
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    assert fee_asset_assumed_accounts(memory.catalog) == ["kraken/tr"]
    put(landing, "kraken/tr/trades/ledgers.csv", KRAKEN_LEDGERS)
    memory.refresh()
    assert fee_asset_assumed_accounts(memory.catalog) == []


def test_venue_precision_sets_the_default_tolerance_only_when_asked(tmp_path: Path) -> None:
    import datetime as dt

    import pytest

    from utl.eod import prepare, run_dates
    from utl.settings import SettingsError, load_settings

    landing = tmp_path / "landing"
    for day in ("2024-03-04", "2024-03-05"):
        put(landing, f"marks/{day}.csv", "asset,price\nBTC,65000\n")
    put(landing, "kraken/tr/balances/2024-03-04.csv", "asset,total\nUSD,1000\n")
    # The trades export keeps 5 places of cost; Kraken's balance keeps USD to 4.
    put(landing, "kraken/tr/trades/trades.csv", KRAKEN_TRADES.replace("600.00000", "600.00004"))
    put(landing, "kraken/tr/balances/2024-03-05.csv", "asset,total\nUSD,399.0400\nBTC,0.0100000000\n")

    def breaks() -> list[tuple]:
        [outputs] = list(run_dates(prepare(landing), dt.date(2024, 3, 5)))
        return [(r["asset"], r["diff"], r["tolerance"]) for r in outputs.breaks.iter_rows(named=True)]

    # 1000 - 600.00004 - 0.96 = 399.03996 in the ledger: 0.00004 off, a break at the default 0.
    assert breaks() == [("USD", Decimal("0.00004"), Decimal("0"))]
    put(landing, "utl.toml", '[precision]\ntolerance = "half_unit"\n')
    assert breaks() == []  # within half a unit of Kraken's 4th place (0.00005)
    put(landing, "utl.toml", '[precision]\ntolerance = "half_unit"\n[tolerance]\nUSD = "0.00001"\n')
    assert breaks() == [("USD", Decimal("0.00004"), Decimal("0.00001"))]  # [tolerance] wins
    put(landing, "utl.toml", '[precision]\ntolerance = "half"\n')
    with pytest.raises(SettingsError, match=r"\[precision\] tolerance 'half' is not one of zero, half_unit"):
        load_settings(landing)
    put(landing, "utl.toml", '[strict]\nunknown_files = "stop"\n')
    with pytest.raises(SettingsError, match=r"\[strict\] unknown_files 'stop' is not one of quarantine, fail"):
        load_settings(landing)


# A second Kraken trade on 03-06: sell 0.005 BTC @ 70,000 for 350 USD, fee 0.56 (charged in
# the quote, as the trades export assumes), and the ledgers export lines of both trades.
KRAKEN_SECOND_TRADE = (
    '"TAAAAA-AAAAA-AAAAA2","OAAAAA-AAAAA-AAAAA2","XXBTZUSD","2024-03-06 10:00:00.0000","sell","limit",70000.0,'
    '350.00000,0.56000,0.00500000,0.00000,"",""\n'
)
KRAKEN_SECOND_LEDGERS = (
    '"LAAAAA-AAAAA-AAAAA3","TAAAAA-AAAAA-AAAAA2","2024-03-06 10:00:00","trade","","currency","ZUSD",350.0000,0.5600,'
    '748.4800\n'
    '"LAAAAA-AAAAA-AAAAA4","TAAAAA-AAAAA-AAAAA2","2024-03-06 10:00:00","trade","","currency","XXBT",-0.0050000000,0,'
    '0.0050000000\n'
)


def test_kraken_fees_from_trades_alone_are_ledger_exceptions_until_the_ledgers_come(database: str,
                                                                                    tmp_path: Path) -> None:
    landing = small_landing(tmp_path)
    put(landing, "marks/2024-03-06.csv", "asset,price\nBTC,70000\nUSDT,1\n")
    put(landing, "kraken/tr/trades/trades.csv", KRAKEN_TRADES + KRAKEN_SECOND_TRADE)
    home = tmp_path / "home"

    def eod() -> subprocess.CompletedProcess:
        done = utl("eod", "--landing", str(landing), "--date", "2024-03-06", url=database, home=home)
        assert done.returncode == 0, done.stderr
        return done

    def assumed() -> list[tuple]:
        with psycopg.connect(database) as conn:
            return conn.execute(
                "SELECT business_date::text, venue, account, asset, quantity, mark, value, first_seen::text, refs "
                "FROM utl.exceptions WHERE kind = 'fee_asset_assumed' ORDER BY business_date").fetchall()

    done = eod()
    trades = "kraken/tr/trades/trades.csv"
    # One row a date, in the asset the export assumed (USD, the quote, the reporting currency
    # at 1): the fee of the date's trade; the run of dates starts on 03-05.
    assert assumed() == [
        ("2024-03-05", "kraken", "tr", "USD", Decimal("0.96"), Decimal("1"), Decimal("0.96"), "2024-03-05",
         f"{trades}:1"),
        ("2024-03-06", "kraken", "tr", "USD", Decimal("0.56"), Decimal("1"), Decimal("0.56"), "2024-03-05",
         f"{trades}:2"),
    ]
    assert "1 fee_asset_assumed" in done.stdout
    shown = utl("breaks", "--date", "2024-03-06", "--landing", str(landing), url=database, home=home)
    assert shown.returncode == 0, shown.stderr
    section = shown.stdout[shown.stdout.index("ledger exceptions on 2024-03-06"):]
    assert section.splitlines()[0] == "ledger exceptions on 2024-03-06: 1 fee_asset_assumed"
    [row] = [line.split() for line in section.splitlines() if line.split()[:1] == ["fee_asset_assumed"]]
    assert (row[2], row[3], row[4], row[-1]) == ("kraken", "tr", "USD", f"{trades}:2")

    # With the ledgers export beside it the account's legs come from that export: the fees'
    # asset is stated, and the rerun dates have no such row left.
    put(landing, "kraken/tr/trades/ledgers.csv", KRAKEN_LEDGERS + KRAKEN_SECOND_LEDGERS)
    eod()
    assert assumed() == []
    shown = utl("breaks", "--date", "2024-03-06", "--landing", str(landing), url=database, home=home)
    assert "fee_asset_assumed" not in shown.stdout


# Issue 17, readers chosen by their columns, through `utl eod`: a Kraken ledgers export with
# a user-chosen subset of its columns in another order plus one of the user's own, a Czech
# Binance Spot Trade History with an extra column, and a file two readers claim.
KRAKEN_CHOSEN_COLUMNS = """"time","txid","type","asset","amount","fee","my note"
"2024-03-05 09:00:00","LAAAAA-AAAAA-AAAAA1","trade","ZUSD",-600.0000,0.9600,"dca"
"2024-03-05 09:00:00","LAAAAA-AAAAA-AAAAA2","trade","XXBT",0.0100000000,0,"dca"
"""
BINANCE_CZECH_NOTED = "\ufeffČas,Pár,Strana,Cena,Provedeno,Částka,Poplatek,Poznámka\n" \
    "24-03-05 10:15:02,BTCUSDT,BUY,65000,0.02BTC,1300USDT,0.00002BTC,nákup\n"
# The UTA log (Action) and the pre-UTA one (Fee Rate, Trade ID) write fees with opposite signs.
BYBIT_BOTH = ("Time,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,"
              "Change,Wallet Balance,Action,Fee Rate,Trade ID\n"
              "2024-03-05 10:00:00,USDT,ETHUSDT,TRADE,SELL,0.5,0,3500,0,-0.9625,25,24.0375,373.8625,CLOSE,0.00055,T1\n")


def chosen_columns_landing(root: Path) -> Path:
    landing = root / "landing"
    for day in ("2024-03-04", "2024-03-05"):
        put(landing, f"marks/{day}.csv", "asset,price\nBTC,65000\nUSDT,1\nUSD,1\n")
    put(landing, "kraken/sub/balances/2024-03-04.csv", "asset,total\nUSD,1000\n")
    put(landing, "kraken/sub/trades/ledgers.csv", KRAKEN_CHOSEN_COLUMNS)
    put(landing, "binance/cz/balances/2024-03-04.csv", "asset,total\nUSDT,2000\n")
    put(landing, "binance/cz/trades/Binance-Spot-Trade-History-202403051200(UTC+1).csv", BINANCE_CZECH_NOTED)
    put(landing, "bybit/u/balances/2024-03-04.csv", "asset,total\nUSDT,349.825\n")
    put(landing, "bybit/u/trades/both.csv", BYBIT_BOTH)
    return landing


def test_readers_chosen_by_their_columns_through_eod(database: str, tmp_path: Path) -> None:
    landing = chosen_columns_landing(tmp_path)
    done = utl("eod", "--landing", str(landing), "--date", "2024-03-05", url=database, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(database) as conn:
        positions = {(v, a, s): q for v, a, s, q in conn.execute(
            "SELECT venue, account, asset, qty FROM utl.positions WHERE business_date = '2024-03-05'")}
    # Kraken: 1000 - 600 - 0.96 fee = 399.04 USD and 0.01 BTC; the user's "my note" ignored.
    assert positions[("kraken", "sub", "USD")] == Decimal("399.04")
    assert positions[("kraken", "sub", "BTC")] == Decimal("0.01")
    # Binance (Czech header, UTC+1 from the file name): 0.02 - 0.00002 fee = 0.01998 BTC,
    # 2000 - 1300 = 700 USDT; the Poznámka column ignored.
    assert positions[("binance", "cz", "BTC")] == Decimal("0.01998")
    assert positions[("binance", "cz", "USDT")] == Decimal("700")
    # The file both Bybit logs claim books nothing: the opening 349.825 USDT stands.
    assert positions[("bybit", "u", "USDT")] == Decimal("349.825")
    out = done.stdout
    assert "unknown layouts: 1 file no single reader takes" in out
    assert ("bybit/u/trades/both.csv: ambiguous format: more than one reader claims this file "
            "(bybit.uta_asset_changes and bybit.derivatives_legacy)") in out

    put(landing, "utl.toml", '[strict]\nunknown_files = "fail"\n')
    strict = utl("eod", "--landing", str(landing), "--date", "2024-03-05", url=database, home=tmp_path / "home2")
    assert strict.returncode == 1
    [line] = [x for x in strict.stderr.splitlines() if x.startswith("utl eod:")]
    assert line.startswith("utl eod: could not complete: bybit/u/trades/both.csv: ambiguous format")
