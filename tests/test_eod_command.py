"""`utl eod` and `utl breaks` end to end on the sample landing folder (contract: eod.md).

Each test runs the real commands in a subprocess against a fresh PostgreSQL database:
the embedded server and, when TEST_DATABASE_URL is set, that server too. One test runs
with no database URL at all, so the command starts its own embedded server.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from utl.analytics import connect as analytics, pnl_by_book, top_exposures
from utl.home import landing_id

ROOT = Path(__file__).resolve().parents[1]
LANDING = ROOT / "data_samples" / "landing"
EXPECTED = json.loads((ROOT / "data_samples" / "landing_expected.json").read_text())
DATES = EXPECTED["business_dates"]
TABLES = ("positions", "breaks", "pnl", "pnl_explain", "quarantine", "break_history",
          "exposure_asset", "exposure_venue", "exposure_book")


def utl(*args: str, url: str | None, home: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("UTL_DATABASE_URL", "UTL_LANDING")}
    if url is not None:
        env["UTL_DATABASE_URL"] = url
    if home is not None:
        env["UTL_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "utl.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def eod(landing: Path, date: str, url: str | None, storage: Path, home: Path | None = None) -> subprocess.CompletedProcess:
    return utl("eod", "--landing", str(landing), "--date", date, "--storage", str(storage), url=url, home=home)


def breaks_csv(date: str, url: str | None, home: Path | None = None) -> list[dict]:
    done = utl("breaks", "--date", date, "--format", "csv", url=url, home=home)
    assert done.returncode == 0, done.stderr
    return list(csv.DictReader(io.StringIO(done.stdout)))


def expected_breaks(date: str) -> list[tuple]:
    return sorted((b["venue"], b["account"], b["asset"], Decimal(b["ledger_qty"]), Decimal(b["venue_qty"]),
                   Decimal(b["diff"]), Decimal(b["tolerance"]), b["first_seen"]) for b in EXPECTED["breaks"][date])


def as_tuples(rows: list[dict]) -> list[tuple]:
    return sorted((r["venue"], r["account"], r["asset"], Decimal(r["ledger_qty"]), Decimal(r["venue_qty"]),
                   Decimal(r["diff"]), Decimal(r["tolerance"]), r["first_seen"]) for r in rows)


def dump(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM utl.{t}").fetchall(), key=repr) for t in TABLES}


def test_sample_run_gives_exactly_the_planted_breaks(database, tmp_path):
    done = eod(LANDING, DATES[-1], database, tmp_path / "storage")
    assert done.returncode == 0, done.stderr
    assert f"{len(DATES)} business dates" in done.stdout
    for date in DATES:
        rows = breaks_csv(date, database)
        assert as_tuples(rows) == expected_breaks(date), date
        # Header: the table's columns, contract's first; numbers as exact decimal text.
        if rows:
            assert list(rows[0])[:9] == ["business_date", "venue", "account", "asset", "ledger_qty", "venue_qty",
                                         "diff", "tolerance", "first_seen"]
    # Progress is shown as it goes: a line per stage with counts and seconds.
    for stage in ("ingest:", "ledger:", *[f"{d}:" for d in DATES], "postgres:"):
        assert any(line.startswith(stage) and line.rstrip().endswith("s)") for line in done.stderr.splitlines()), stage
    with psycopg.connect(database) as conn:
        quarantine = conn.execute('SELECT file, "row", "column" FROM utl.quarantine').fetchall()
        positions = conn.execute(
            "SELECT venue, account, asset, qty, mark FROM utl.positions WHERE business_date = %s ORDER BY 1, 2, 3",
            (DATES[-1],)).fetchall()
        unexplained = conn.execute("SELECT max(abs(unexplained)) FROM utl.pnl_explain").fetchone()[0]
        runs = conn.execute("SELECT status FROM utl.runs").fetchall()
    assert quarantine == [(q["file"], q["row"], q["column"]) for q in EXPECTED["quarantine"]]
    expected_positions = sorted(
        (p["venue"], p["account"], p["asset"], Decimal(p["qty"]), Decimal(p["mark"]))
        for p in EXPECTED["positions"][DATES[-1]] if Decimal(p["qty"]) != 0 or Decimal(p["venue_qty"]) != 0
    )
    assert [tuple(r) for r in positions] == expected_positions
    assert unexplained == 0
    assert runs == [("completed",)]


def test_rerun_gives_identical_tables_and_no_duplicates(database, tmp_path):
    assert eod(LANDING, DATES[-1], database, tmp_path / "s").returncode == 0
    first = dump(database)
    assert eod(LANDING, DATES[-1], database, tmp_path / "s").returncode == 0
    assert dump(database) == first
    # A rerun of an earlier date replaces that date only (through it), never duplicates.
    assert eod(LANDING, DATES[0], database, tmp_path / "s").returncode == 0
    assert dump(database)["positions"] == first["positions"]


def test_fixing_a_landing_file_updates_breaks_and_first_seen(database, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    assert eod(landing, DATES[-1], database, tmp_path / "s").returncode == 0
    # Balance breaks (a position break's asset is its ccxt symbol, with a colon): both from 03-06.
    assert {r["first_seen"] for r in breaks_csv("2024-03-07", database) if ":" not in r["asset"]} == {"2024-03-06"}
    # The venue re-sends its 03-06 snapshot, now agreeing with the ledger.
    snapshot = landing / "binance" / "mm-spot-2" / "balances" / "2024-03-06.json"
    account = json.loads(snapshot.read_text())
    for balance in account["balances"]:
        if balance["asset"] == "ETH":
            balance["free"] = str(Decimal(balance["free"]) - Decimal("0.5"))
        if balance["asset"] == "USDT":
            balance["free"] = str(Decimal(balance["free"]) + Decimal("1901.9"))
    snapshot.write_text(json.dumps(account))
    assert eod(landing, DATES[-1], database, tmp_path / "s").returncode == 0
    assert breaks_csv("2024-03-06", database) == []
    late = breaks_csv("2024-03-07", database)
    assert {(r["asset"], r["first_seen"]) for r in late if ":" not in r["asset"]} == {("ETH", "2024-03-07"), ("USDT", "2024-03-07")}
    with psycopg.connect(database) as conn:
        history = conn.execute(
            "SELECT asset, first_seen::text, last_seen::text, cleared_on::text FROM utl.break_history "
            "WHERE account = 'mm-spot-2' ORDER BY asset").fetchall()
    assert history == [("ETH", "2024-03-07", "2024-03-07", None), ("USDT", "2024-03-07", "2024-03-07", None)]


def test_exit_codes_and_messages(database, tmp_path):
    done = eod(tmp_path / "nowhere", DATES[-1], database, tmp_path / "s")
    assert done.returncode != 0 and "no landing folder" in done.stderr
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    marks = landing / "marks" / "2024-03-06.csv"
    marks.write_text("".join(line for line in marks.read_text().splitlines(keepends=True) if not line.startswith("ETH,")))
    done = eod(landing, DATES[-1], database, tmp_path / "s")
    assert done.returncode != 0
    assert "no mark for ETH on 2024-03-06" in done.stderr
    with psycopg.connect(database) as conn:
        # Every attempt is on record, with why it failed.
        runs = conn.execute("SELECT status, message FROM utl.runs ORDER BY run_id").fetchall()
        assert [status for status, _ in runs] == ["failed", "failed"]
        assert "no landing folder" in runs[0][1] and "no mark for ETH on 2024-03-06" in runs[1][1]
        # The run is a fold over days: the date before the failed one is written whole, the
        # failed date and every later one are not (orchestration.md: later dates wait).
        written = conn.execute("SELECT DISTINCT business_date::text FROM utl.positions ORDER BY 1").fetchall()
        assert written == [(DATES[0],)]
        assert conn.execute("SELECT business_date::text FROM utl.day_runs").fetchall() == [(DATES[0],)]


def test_parquet_outputs_answer_duckdb_queries(database, tmp_path):
    storage = tmp_path / "storage"
    assert eod(LANDING, DATES[-1], database, storage).returncode == 0
    con = analytics(storage)
    import datetime as dt

    day = dt.date.fromisoformat(DATES[-1])
    top = top_exposures(con, day, n=3)
    assert top.height == 3 and top["gross_value"].is_sorted(descending=True)
    books = pnl_by_book(con, day)
    assert set(books["book"]) == {"binance/mm-spot-1", "binance/mm-spot-2", "bybit/api", "coinbase/retail",
                                  "kraken/main", "okx/main", "binance/futures", "okx/trading", "deribit/main"}
    with psycopg.connect(database) as conn:
        realized = dict(conn.execute(
            "SELECT book, sum(realized_pnl) FROM utl.pnl WHERE business_date = %s GROUP BY book", (day,)).fetchall())
    assert {b: r for b, r in books.select("book", "realized_pnl").rows()} == realized


def test_embedded_database_by_default(scratch_dir, tmp_path):
    """No UTL_DATABASE_URL: the command starts (and stops) an embedded PostgreSQL itself, with
    a database of the landing folder's own; `utl breaks` follows the last landing run."""
    done = utl("eod", "--landing", str(LANDING), "--date", DATES[-1], url=None, home=scratch_dir)
    assert done.returncode == 0, done.stderr
    database = f"utl_{landing_id(LANDING)}"
    assert (f"database: embedded PostgreSQL in {scratch_dir / 'pgdata'} (database {database}, landing {LANDING})"
            in done.stderr)
    storage = scratch_dir / "landings" / landing_id(LANDING) / "storage"
    assert f"Parquet under {storage}" in done.stdout and (storage / "positions").is_dir()
    assert as_tuples(breaks_csv("2024-03-06", None, home=scratch_dir)) == expected_breaks("2024-03-06")

    other = tmp_path / "other-landing"  # another landing folder: another database, no rows of the first
    other.mkdir()
    shown = utl("breaks", "--date", "2024-03-06", "--format", "csv", "--landing", str(other), url=None,
                home=scratch_dir)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1:] == [] and f"utl_{landing_id(other)}" in shown.stderr


def test_breaks_without_any_landing_says_what_to_do(scratch_dir):
    done = utl("breaks", "--date", "2024-03-06", "--format", "csv", url=None, home=scratch_dir / "fresh")
    assert done.returncode == 1 and done.stdout == ""
    assert "run `utl eod --landing LANDING --date D` first, or pass --landing" in done.stderr
