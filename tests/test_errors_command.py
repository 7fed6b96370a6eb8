"""Errors through the command line: one line, the right exit code, nothing half-written.

Every test runs the real ``utl`` in a subprocess (as tests/test_eod_command.py does); those
that need a database run against the embedded server and TEST_DATABASE_URL (``database``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from utl.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
LANDING = ROOT / "data_samples" / "landing"


def utl(*args: str, url: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("UTL_DATABASE_URL", "UTL_LANDING")}
    if url is not None:
        env["UTL_DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "utl.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def one_line(done: subprocess.CompletedProcess) -> str:
    """stderr holds exactly one line and no traceback (besides `utl eod`'s alert outcome); return it."""
    lines = [x for x in done.stderr.strip().splitlines() if not x.startswith("alert: ")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


def copy_landing(tmp_path: Path) -> Path:
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    return landing


COMMANDS = [
    ("eod", "--landing", str(LANDING), "--date", "2024-03-07"),
    ("breaks", "--date", "2024-03-07", "--format", "csv"),
    ("db", "migrate"),
    ("report", "--date", "2024-03-07", "--out", "report.html"),
]


@pytest.mark.parametrize("url, cause", [
    ("postgresql://ops:s3cret-pw@127.0.0.1:1/ledger", "Connection refused"),
    ("postgresql://ops:s3cret-pw@127.0.0.1:notaport/ledger", "port"),
    ("postgres//ops:s3cret-pw@127.0.0.1/ledger", "malformed"),
], ids=["refused", "bad-port", "malformed"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_unreachable_database_is_one_line_exit_1(tmp_path, url, cause, command):
    done = utl(*command, url=url)
    line = one_line(done)
    assert done.returncode == 1, done.stderr
    assert cause in line and "s3cret-pw" not in done.stderr + done.stdout
    assert "127.0.0.1" in line or "malformed" in line
    assert "database:" not in done.stderr  # said only once connected


def test_a_missing_database_and_a_refused_login_name_the_server(database):
    info = conninfo_to_dict(database)
    host = info.get("host") or "localhost"
    missing = make_conninfo(database, dbname="utl_no_such_database")
    done = utl("breaks", "--date", "2024-03-07", url=missing)
    line = one_line(done)
    assert done.returncode == 1 and host in line and 'database "utl_no_such_database" does not exist' in line
    stranger = make_conninfo(database, user="utl_no_such_role", password="s3cret-pw")
    done = utl("db", "migrate", url=stranger)
    line = one_line(done)
    assert done.returncode == 1 and host in line and "utl_no_such_role" in line
    assert "s3cret-pw" not in done.stderr


def test_an_unwritable_storage_folder_is_one_line(tmp_path, database):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = utl("eod", "--landing", str(LANDING), "--date", "2024-03-07", "--storage", str(blocker / "storage"),
               url=database)
    assert done.returncode == 1 and "cannot write to" in one_line(done)


# ----------------------------------------------------------------------------- settings


def test_a_misspelt_key_in_utl_toml_is_refused_by_pnl_with_the_nearest_name(tmp_path):
    landing = copy_landing(tmp_path)
    toml = landing / "utl.toml"
    toml.write_text('costing_metod = "lifo"\n' + toml.read_text())
    done = utl("pnl", "--landing", str(landing), "--date", "2024-03-05")
    line = one_line(done)
    assert done.returncode == 2
    assert line == "utl pnl: utl.toml: unknown key costing_metod; did you mean costing_method?"


@pytest.mark.parametrize("toml, message", [
    ('[tolerence]\nBTC = "0.1"\n', "unknown section tolerence; did you mean tolerance?"),
    ('[report]\nalert_to = ["ops@x.com"]\n', "unknown key [report] alert_to; did you mean [report] alerts_to?"),
    ('[schedule]\ncorn = "0 1 * * *"\n', "unknown key [schedule] corn; did you mean [schedule] cron?"),
    ("reporting_currency = 3\n", "reporting_currency = 3"),
    ('[books]\nmain = "binance/a"\n', "[books] main"),
])
def test_utl_toml_is_checked_against_its_model(tmp_path, toml, message):
    (tmp_path / "utl.toml").write_text(toml)
    with pytest.raises(SettingsError) as caught:
        load_settings(tmp_path)
    assert str(caught.value).startswith("utl.toml: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_bad_utl_toml_stops_eod_in_one_line(tmp_path, database):
    landing = copy_landing(tmp_path)
    (landing / "utl.toml").write_text('[tolerance]\nBTC = "0.1"\n[reprot]\nto = ["a@b.c"]\n')
    done = utl("eod", "--landing", str(landing), "--date", "2024-03-05", "--storage", str(tmp_path / "s"),
               url=database)
    assert done.returncode == 1
    assert "utl.toml: unknown section reprot; did you mean report?" in done.stderr and "Traceback" not in done.stderr


# ----------------------------------------------------------------------------- costing


TRADES_HEADER = "book,asset,ts,trade_id,qty,price\n"
TRADE = "b,BTC,2024-01-01T00:00:00Z,t1,1,100\n"


@pytest.mark.parametrize("content, reason", [
    (TRADES_HEADER + TRADE + "b,BTC,2024-01-01T00:00:01Z,t2,1\n", "row 2: the row has 5 cells, the header 6"),
    (TRADES_HEADER + TRADE + "b,BTC,2024-01-01T00:00:01Z,t2,1,100,9\n", "row 2: the row has 7 cells, the header 6"),
    ("", "the file is empty"),
], ids=["short-row", "long-row", "empty"])
def test_costing_refuses_a_ragged_or_empty_csv_in_one_line(tmp_path, content, reason):
    trades = tmp_path / "trades.csv"
    trades.write_text(content)
    done = utl("costing", "--trades", str(trades), "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and reason in one_line(done)
    assert not (tmp_path / "out").exists()


def test_costing_refuses_an_out_that_is_a_file(tmp_path):
    trades = tmp_path / "trades.csv"
    trades.write_text(TRADES_HEADER + TRADE)
    out = tmp_path / "out"
    out.write_text("keep me")
    done = utl("costing", "--trades", str(trades), "--out", str(out))
    assert done.returncode == 2 and "is a file, not a folder" in one_line(done)
    assert out.read_text() == "keep me"


# ----------------------------------------------------------------------------- marks


def eod(landing: Path, date: str, url: str, storage: Path) -> subprocess.CompletedProcess:
    return utl("eod", "--landing", str(landing), "--date", date, "--storage", str(storage), url=url)


def failure_line(done: subprocess.CompletedProcess) -> str:
    [line] = [x for x in done.stderr.splitlines() if x.startswith("utl eod: could not complete")]
    assert "Traceback" not in done.stderr
    return line


def rewrite_eth(landing: Path, day: str, lines: str) -> None:
    marks = landing / "marks" / f"{day}.csv"
    kept = [x for x in marks.read_text().splitlines(keepends=True) if not x.startswith("ETH,")]
    marks.write_text(kept[0] + lines + "".join(kept[1:]))


def test_a_mark_that_is_present_but_unreadable_says_what_is_wrong(tmp_path, database):
    landing = copy_landing(tmp_path)
    rewrite_eth(landing, "2024-03-06", "ETH,abc\n")
    done = eod(landing, "2024-03-07", database, tmp_path / "s")
    line = failure_line(done)
    assert done.returncode == 1
    assert "no mark for ETH on 2024-03-06" in line and "marks/2024-03-06.csv row 1: 'abc' is not a decimal" in line
    assert "add it" not in line


def test_a_mark_listed_twice_says_so(tmp_path, database):
    landing = copy_landing(tmp_path)
    rewrite_eth(landing, "2024-03-06", "ETH,3800\nETH,3801\n")
    done = eod(landing, "2024-03-07", database, tmp_path / "s")
    line = failure_line(done)
    assert done.returncode == 1 and "ETH listed twice" in line and "add it" not in line


def test_a_date_past_the_last_data_says_so(tmp_path, database):
    done = eod(LANDING, "2024-03-12", database, tmp_path / "s")
    line = failure_line(done)
    assert done.returncode == 1
    assert "2024-03-08 is past the last data in the landing folder" in line and "marks/2024-03-07.csv" in line


# ----------------------------------------------------------------------------- inputs


def quarantine(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute('SELECT file, "row", "column", reason FROM utl.quarantine ORDER BY 1, 2').fetchall()


def test_a_cut_csv_keeps_its_whole_rows_and_every_reason_is_one_line(tmp_path, database):
    landing = copy_landing(tmp_path)
    kraken = landing / "kraken" / "main" / "trades" / "trades.csv"
    lines = kraken.read_text().splitlines(keepends=True)
    # Row 1: a non-numeric value in a column the reader does not use (margin) is ignored;
    # row 2: one in a column it uses (vol) is quarantined; the last row is cut in a quote.
    cells = lines[1].split(",")
    cells[10] = "abc"
    lines[1] = ",".join(cells)
    cells = lines[2].split(",")
    cells[9] = "abc"
    lines[2] = ",".join(cells)
    kraken.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
    (landing / "binance" / "mm-spot-1" / "trades").mkdir(parents=True, exist_ok=True)
    (landing / "binance" / "mm-spot-1" / "trades" / "empty.csv").write_text("")
    done = eod(landing, "2024-03-07", database, tmp_path / "s")
    assert done.returncode == 0, done.stderr
    rows = quarantine(database)
    assert all("\n" not in reason for *_, reason in rows)
    mine = {(f, r, c): reason for f, r, c, reason in rows if f.startswith("kraken/main/trades/trades.csv")}
    assert mine == {
        ("kraken/main/trades/trades.csv", 2, "vol"): mine[("kraken/main/trades/trades.csv", 2, "vol")],
        ("kraken/main/trades/trades.csv", len(lines) - 1, None):
            "the file ends inside a quoted cell: this last row is cut short",
    }
    assert ("binance/mm-spot-1/trades/empty.csv", None, None, "the file is empty") in rows


# ----------------------------------------------------------------------------- half-written runs


def test_a_failed_date_leaves_no_parquet_of_its_own(tmp_path, database):
    """PostgreSQL refuses 2024-03-06's positions: that date's Parquet files must not appear."""
    assert utl("db", "migrate", url=database).returncode == 0
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("""
            CREATE FUNCTION utl_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.business_date = DATE '2024-03-06' THEN RAISE EXCEPTION 'refused by the test'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER utl_test_refuse BEFORE INSERT ON utl.positions
                FOR EACH ROW EXECUTE FUNCTION utl_test_refuse();
        """)
    storage = tmp_path / "storage"
    done = eod(LANDING, "2024-03-07", database, storage)
    assert done.returncode == 1 and "refused by the test" in failure_line(done)
    assert (storage / "positions" / "business_date=2024-03-05" / "part.parquet").exists()
    assert not list(storage.glob("*/business_date=2024-03-06"))
    assert not list(storage.glob(".staging*"))


def runs(url: str) -> list[tuple[int, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT run_id, status FROM utl.runs ORDER BY run_id").fetchall()


def test_a_killed_run_is_marked_interrupted_at_the_next_start(tmp_path, database):
    env = {k: v for k, v in os.environ.items() if k != "UTL_LANDING"} | {"UTL_DATABASE_URL": database}
    killed = subprocess.Popen([sys.executable, "-m", "utl.cli", "eod", "--landing", str(LANDING), "--date",
                               "2024-03-07", "--storage", str(tmp_path / "s")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                if runs(database):
                    break
            except psycopg.Error:
                pass  # not migrated yet
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)
    finally:
        killed.wait(timeout=30)
    assert runs(database) == [(1, "running")]
    done = eod(LANDING, "2024-03-07", database, tmp_path / "s")
    assert done.returncode == 0, done.stderr
    assert runs(database) == [(1, "interrupted"), (2, "completed")]
    assert "run 1 was interrupted" in done.stderr
