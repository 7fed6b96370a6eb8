"""Two landing folders in one database keep their results apart (issue 12, 008_landing_keys).

Landing A is the sample landing folder; landing B is a copy with three changes whose
effects are known without running anything: binance/mm-spot-2 re-sends its 03-06 snapshot
agreeing with the ledger (so B has no break on 03-06, and its 03-07 breaks are first seen on
03-07), BTC's 03-07 mark is 70000.00 instead of 67050.00, and a file no reader takes sits in
kraken/main/trades (one more refused row, of no date). Both run into the SAME database
(UTL_DATABASE_URL: the test server's, and a database on the embedded server), on the same
dates, through the command line; then A runs again with changed inputs and with its
earliest snapshots removed, and B's rows must not move. One more test runs both on the
embedded default, a database per landing.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from tests.test_eod_command import DATES, EXPECTED, LANDING, as_tuples, expected_breaks, utl

# `utl breaks --format csv` printed exactly this header before landings were keyed (eod.md:
# the contract's columns first); a key column must not change it.
BREAKS_HEADER = "business_date,venue,account,asset,ledger_qty,venue_qty,diff,tolerance,first_seen,kind,mark,diff_value"
B_BTC_MARK = Decimal("70000.00")
JUNK = "kraken/main/trades/desk-notes.csv"
TABLES = ("positions", "breaks", "cleared_breaks", "pnl", "pnl_explain", "exposure_asset", "exposure_venue",
          "exposure_book", "quarantine", "reconciled", "check_results", "day_runs")


def make_b(folder: Path) -> Path:
    shutil.copytree(LANDING, folder)
    snapshot = folder / "binance" / "mm-spot-2" / "balances" / "2024-03-06.json"
    account = json.loads(snapshot.read_text())
    for balance in account["balances"]:  # the same fix as test_fixing_a_landing_file_updates_breaks_and_first_seen
        if balance["asset"] == "ETH":
            balance["free"] = str(Decimal(balance["free"]) - Decimal("0.5"))
        if balance["asset"] == "USDT":
            balance["free"] = str(Decimal(balance["free"]) + Decimal("1901.9"))
    snapshot.write_text(json.dumps(account))
    marks = folder / "marks" / "2024-03-07.csv"
    marks.write_text(marks.read_text().replace("BTC,67050.00", f"BTC,{B_BTC_MARK}"))
    (folder / JUNK).write_text("note,owner\nrebalance on friday,desk\n")
    return folder


def ok(*args: str, url: str | None, home: Path | None = None) -> tuple[str, str]:
    done = utl(*args, url=url, home=home)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def breaks_of(landing: Path, date: str, url: str | None, home: Path | None = None) -> tuple[str, list[tuple]]:
    out, _ = ok("breaks", "--date", date, "--format", "csv", "--landing", str(landing), url=url, home=home)
    return out.splitlines()[0] if out else "", as_tuples(list(csv.DictReader(io.StringIO(out))))


def quarantined(landing: Path, url: str) -> list[tuple]:
    out, _ = ok("quarantine", "--format", "csv", "--landing", str(landing), url=url)
    return sorted((r["file"], r["row"], r["column"]) for r in csv.DictReader(io.StringIO(out)))


def rows_of(url: str, landing: Path) -> dict[str, list[tuple]]:
    """Every row of ``landing`` in every table keyed by landing (written_at aside)."""
    with psycopg.connect(url) as conn:
        found = {}
        for table in TABLES:
            rows = conn.execute(f"SELECT * FROM utl.{table} WHERE landing = %s", (str(landing.resolve()),))
            names = [c.name for c in rows.description]
            found[table] = sorted((tuple(v for n, v in zip(names, r) if n not in ("written_at", "checked_at"))
                                   for r in rows.fetchall()), key=repr)
        return found


def b_breaks(date: str) -> list[tuple]:
    """B's breaks: mm-spot-2 agrees on 03-06, so its breaks of 03-07 are new that day."""
    rows = [b for b in expected_breaks(date) if not (date == "2024-03-06" and b[1] == "mm-spot-2")]
    return sorted(b[:-1] + ("2024-03-07",) if b[1] == "mm-spot-2" else b for b in rows)


def expected_positions(date: str, btc_mark: Decimal | None = None) -> list[tuple]:
    return sorted((p["venue"], p["account"], p["asset"], Decimal(p["qty"]),
                   btc_mark if btc_mark is not None and p["asset"] == "BTC" else Decimal(p["mark"]))
                  for p in EXPECTED["positions"][date] if Decimal(p["qty"]) != 0 or Decimal(p["venue_qty"]) != 0)


def positions_of(url: str, landing: Path, date: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT venue, account, asset, qty, mark FROM utl.positions WHERE landing = %s AND business_date = %s "
            "ORDER BY 1, 2, 3", (str(landing.resolve()), date)).fetchall()]


def history_of(url: str, landing: Path) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT account, asset, first_seen::text, last_seen::text, cleared_on::text FROM utl.break_history "
            "WHERE landing = %s ORDER BY 1, 2, 3", (str(landing.resolve()),)).fetchall()


@pytest.fixture
def landings(tmp_path: Path) -> tuple[Path, Path]:
    a = tmp_path / "desk-a" / "landing"
    shutil.copytree(LANDING, a)
    return a, make_b(tmp_path / "desk-b" / "landing")


def test_two_landings_in_one_database_keep_their_own_results(database: str, landings, tmp_path: Path) -> None:
    a, b = landings
    for landing in (a, b):  # B runs last: on the same dates it must not replace A's rows
        ok("eod", "--landing", str(landing), "--date", DATES[-1], "--storage", str(tmp_path / landing.parent.name),
           url=database)

    for date in DATES:
        header_a, rows_a = breaks_of(a, date, database)
        header_b, rows_b = breaks_of(b, date, database)
        assert rows_a == expected_breaks(date), date
        assert rows_b == b_breaks(date), date
        for header in (header_a, header_b):
            assert header in ("", BREAKS_HEADER)  # "" only for a date without breaks
    assert breaks_of(a, "2024-03-06", database)[1] != breaks_of(b, "2024-03-06", database)[1]
    assert breaks_of(a, "2024-03-07", database)[0] == BREAKS_HEADER

    # No --landing on a shared database: the landing written last (B), and it says so.
    out, err = ok("breaks", "--date", "2024-03-06", "--format", "csv", url=database)
    assert out.splitlines()[1:] == [] and f"landing: {b.resolve()}" in err
    table, _ = ok("breaks", "--date", "2024-03-07", "--landing", str(a), url=database)
    assert "3 open (1 new, 2 ageing)" in table  # + the sample's position break, new on 03-07

    assert positions_of(database, a, DATES[-1]) == expected_positions(DATES[-1])
    assert positions_of(database, b, DATES[-1]) == expected_positions(DATES[-1], B_BTC_MARK)

    expected_quarantine = sorted((q["file"], str(q["row"]), q["column"]) for q in EXPECTED["quarantine"])
    assert quarantined(a, database) == expected_quarantine
    assert quarantined(b, database) == sorted([*expected_quarantine, (JUNK, "", "")])

    # The break history of each landing: bybit's breaks of 03-05 cleared on 03-06 in both;
    # mm-spot-2's run from 03-06 in A, from 03-07 in B.
    cleared = [("api", "BTC", "2024-03-05", "2024-03-05", "2024-03-06"),
               ("api", "USDT", "2024-03-05", "2024-03-05", "2024-03-06")]
    # The sample's position break (binance/futures) opens on 03-07 in both.
    position = [("futures", "BTC/USDT:USDT", "2024-03-07", "2024-03-07", None)]
    assert history_of(database, a) == cleared + position + [("mm-spot-2", "ETH", "2024-03-06", "2024-03-07", None),
                                                            ("mm-spot-2", "USDT", "2024-03-06", "2024-03-07", None)]
    assert history_of(database, b) == cleared + position + [("mm-spot-2", "ETH", "2024-03-07", "2024-03-07", None),
                                                            ("mm-spot-2", "USDT", "2024-03-07", "2024-03-07", None)]

    # Each landing's runs, and each run's counts of its own landing (3 breaks open on 03-07 each:
    # two balance breaks and the sample's position break).
    for landing in (a, b):
        out, _ = ok("runs", "--format", "csv", "--landing", str(landing), url=database)
        runs = list(csv.DictReader(io.StringIO(out)))
        assert [(r["landing"], r["status"], r["breaks"]) for r in runs] == [(str(landing.resolve()), "completed", "3")]

    # A runs again from changed inputs (a new ETH mark on the first date: every date is
    # stale), then without its earliest snapshots: 03-05 is no longer covered for A, and
    # goes; B's rows, 03-05 included, do not move.
    before = rows_of(database, b)
    marks = a / "marks" / "2024-03-05.csv"
    marks.write_text(marks.read_text().replace("ETH,3560.00", "ETH,3561.00"))
    out, _ = ok("eod", "--landing", str(a), "--date", DATES[-1], "--storage", str(tmp_path / "a2"), url=database)
    assert f"({len(DATES)} run now)" in out
    assert rows_of(database, b) == before
    with psycopg.connect(database) as conn:
        eth = conn.execute("SELECT landing, mark FROM utl.positions WHERE business_date = '2024-03-05' "
                           "AND asset = 'ETH' AND mark IS NOT NULL GROUP BY 1, 2 ORDER BY 1").fetchall()
    assert eth == sorted([(str(a.resolve()), Decimal("3561")), (str(b.resolve()), Decimal("3560"))])

    for opening in a.glob("*/*/balances/2024-03-04.*"):
        opening.unlink()
    _, err = ok("eod", "--landing", str(a), "--date", DATES[-1], "--storage", str(tmp_path / "a3"), url=database)
    assert "removed 1 dates of this landing before its first business date 2024-03-06" in err
    table, _ = ok("breaks", "--date", "2024-03-05", "--landing", str(a), url=database)
    assert table.startswith("no run covers 2024-03-05: this database holds 2024-03-06 to 2024-03-07")
    assert positions_of(database, a, "2024-03-05") == []
    assert rows_of(database, b) == before
    assert breaks_of(b, "2024-03-05", database) == (BREAKS_HEADER, b_breaks("2024-03-05"))
    assert positions_of(database, b, DATES[-1]) == expected_positions(DATES[-1], B_BTC_MARK)


def test_embedded_default_keeps_a_database_per_landing(scratch_dir: Path, landings) -> None:
    """No UTL_DATABASE_URL: each landing its own embedded database, as before; the commands
    without --landing follow the landing run last, `utl report` too."""
    a, b = landings
    for landing in (a, b):
        ok("eod", "--landing", str(landing), "--date", DATES[-1], url=None, home=scratch_dir)
    assert breaks_of(a, "2024-03-06", None, scratch_dir) == (BREAKS_HEADER, expected_breaks("2024-03-06"))
    assert breaks_of(b, "2024-03-06", None, scratch_dir)[1] == []
    assert breaks_of(b, "2024-03-07", None, scratch_dir) == (BREAKS_HEADER, b_breaks("2024-03-07"))
    out, _ = ok("breaks", "--date", "2024-03-07", "--format", "csv", url=None, home=scratch_dir)
    assert as_tuples(list(csv.DictReader(io.StringIO(out)))) == b_breaks("2024-03-07")
    # The report of the last landing run (B), from its own database: its breaks, new on 03-07.
    report = scratch_dir / "report.html"
    ok("report", "--date", "2024-03-07", "--out", str(report), url=None, home=scratch_dir)
    html = report.read_text(encoding="utf-8")
    assert str(b.resolve()) in html and "3 open breaks (3 new, 0 ageing)" in html
