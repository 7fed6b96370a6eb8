"""`utl eod` and `utl report` end to end, with a real SMTP server in the test process
(report.md): the report arrives after a run, its CSV is `utl breaks --format csv`, a failed
send leaves the tables whole and exits 3, `utl report` sends it later, a failed run alerts."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from smtp_servers import Inbox, closed_port, smtp_server

ROOT = Path(__file__).resolve().parents[2]
LANDING = ROOT / "data_samples" / "landing"
LAST = "2024-03-07"
TABLES = ("positions", "breaks", "pnl", "pnl_explain", "quarantine", "break_history", "exposure_book")


def utl(*args: str, url: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("UTL_SMTP_", "UTL_REPORT_", "UTL_LANDING"))}
    return subprocess.run([sys.executable, "-m", "utl.cli", *args], capture_output=True, text=True, timeout=300,
                          env={**base, "UTL_DATABASE_URL": url, **env})


def eod(landing: Path, url: str, storage: Path, **env: str) -> subprocess.CompletedProcess:
    return utl("eod", "--landing", str(landing), "--date", LAST, "--storage", str(storage), url=url, **env)


def smtp_env(port: int) -> dict[str, str]:
    return {"UTL_SMTP_HOST": "127.0.0.1", "UTL_SMTP_PORT": str(port), "UTL_SMTP_FROM": "utl@desk.example"}


def open_breaks(url: str, day: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT venue, account, asset, ledger_qty, venue_qty, diff, tolerance, first_seen::text, "
                            "kind, mark, diff_value FROM utl.breaks WHERE business_date = %s ORDER BY 1, 2, 3",
                            (day,)).fetchall()


def tables(url: str) -> dict[str, list]:
    with psycopg.connect(url) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM utl.{t}").fetchall(), key=repr) for t in TABLES}


def report_columns(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT status, report_status, report_error FROM utl.runs ORDER BY run_id").fetchall()


def test_a_run_sends_the_report(database: str, tmp_path: Path) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        done = eod(LANDING, database, tmp_path / "s", **smtp_env(port))
    assert done.returncode == 0, done.stderr
    [got] = inbox.received  # one report for the last date, not one per date
    assert got.rcpt_tos == ["middle-office@example.com"] and got.mail_from == "utl@desk.example"
    message = got.message
    # Two balance breaks carried from 03-06 and the planted position break new on 03-07.
    assert message["Subject"] == "UTL breaks 2024-03-07: 3 open (1 new), 1 quarantined"
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.get_payload()
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    assert (attachment.get_content_type(), attachment.get_filename()) == ("text/csv", "breaks-2024-03-07.csv")
    # The CSV is byte for byte `utl breaks --format csv`, and parses back to exactly the open breaks.
    printed = utl("breaks", "--date", LAST, "--format", "csv", url=database)
    assert printed.returncode == 0 and attachment.get_payload(decode=True) == printed.stdout.encode()
    rows = list(csv.DictReader(io.StringIO(attachment.get_payload(decode=True).decode())))
    parsed = [(r["venue"], r["account"], r["asset"], Decimal(r["ledger_qty"]), Decimal(r["venue_qty"]),
               Decimal(r["diff"]), Decimal(r["tolerance"]), r["first_seen"], r["kind"],
               Decimal(r["mark"]) if r["mark"] else None, Decimal(r["diff_value"]) if r["diff_value"] else None)
              for r in rows]
    assert parsed == open_breaks(database, LAST) and len(parsed) == 3  # two balance, one position
    assert report_columns(database) == [("completed", "sent", None)]
    # The run summary a person reads.
    out = done.stdout
    assert "Summary of 2024-03-07 (amounts in USD)" in out
    assert "binance/mm-spot-2" in out and "gross exposure" in out and "total PnL" in out
    assert "1-3 days       2   largest: binance/mm-spot-2 ETH diff 0.5 (1,940.00 USD)" in out
    assert "quarantine: 1 row refused" in out
    assert "report 2024-03-07: sent to middle-office@example.com" in out
    assert "utl breaks --date 2024-03-07" in out and "utl report --date 2024-03-07 --out" in out


def test_escalation_flags_the_right_rows_and_the_subject(database: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    toml = landing / "utl.toml"
    # 2024-03-07: ETH is worth 1,940.00 at mark, USDT -1,902.09; only ETH is over 1,920.
    toml.write_text(toml.read_text() + 'escalate_value = "1920"\n')
    inbox = Inbox()
    with smtp_server(inbox) as port:
        assert eod(landing, database, tmp_path / "s", **smtp_env(port), UTL_REPORT_TO="a@x.com,b@x.com").returncode == 0
    [got] = inbox.received
    assert got.rcpt_tos == ["a@x.com", "b@x.com"]  # UTL_REPORT_TO wins over [report] to
    assert got.message["Subject"] == "[ESCALATED] UTL breaks 2024-03-07: 3 open (1 new), 1 quarantined"
    text, html = (p.get_content() for p in got.message.get_payload()[0].get_payload())
    flagged = [line for line in text.splitlines() if line.strip().startswith("[ESCALATED]")]
    assert len(flagged) == 1 and " ETH " in flagged[0]
    html_rows = [row for row in html.split("<tr") if "qty_mismatch" in row]
    # Rows in the breaks table's order: the position break (binance/futures) first, unvalued,
    # so never escalated; then ETH (escalated) and USDT.
    assert [("ESCALATED" in row, ">ETH<" in row) for row in html_rows] == [(False, False), (True, True), (False, False)]


def test_a_refused_report_keeps_the_run_exits_3_and_utl_report_sends_it(database: str, tmp_path: Path) -> None:
    with smtp_server(Inbox(refuse="554 5.7.1 relay denied")) as port:
        refused = eod(LANDING, database, tmp_path / "s", **smtp_env(port))
    assert refused.returncode == 3, refused.stderr
    assert "FAILED to send" in refused.stdout and "554 5.7.1 relay denied" in refused.stdout
    [(status, report_status, error)] = report_columns(database)
    assert (status, report_status) == ("completed", "failed") and "554 5.7.1 relay denied" in error

    refused_tables = tables(database)
    # The sample's 6 balance breaks and 1 position break; 23 positions a date over 3 dates
    # (the derivative accounts hold their settle assets: USDT, USDT, BTC).
    assert len(refused_tables["breaks"]) == 7 and len(refused_tables["positions"]) == 69

    # Nobody listening at all: the same.
    closed = eod(LANDING, database, tmp_path / "s", **smtp_env(closed_port()))
    assert closed.returncode == 3 and report_columns(database)[-1][:2] == ("completed", "failed")
    # The tables are whole: what a run without any email writes.
    assert eod(LANDING, database, tmp_path / "s").returncode == 0
    assert tables(database) == refused_tables

    # Later, with the server back: `utl report` sends it and the run records it.
    inbox = Inbox()
    with smtp_server(inbox) as port:
        resent = utl("report", "--date", LAST, "--landing", str(LANDING), url=database, **smtp_env(port))
    assert resent.returncode == 0, resent.stderr
    [got] = inbox.received
    assert got.message["Subject"] == "UTL breaks 2024-03-07: 3 open (1 new), 1 quarantined"
    # `utl report` records on the latest run through that date.
    assert report_columns(database)[-1] == ("completed", "sent", None)
    assert [r[1] for r in report_columns(database)] == ["failed", "failed", "sent"]


def test_no_smtp_host_sends_nothing_and_says_so_once(database: str, tmp_path: Path) -> None:
    done = eod(LANDING, database, tmp_path / "s")
    assert done.returncode == 0, done.stderr
    assert (done.stdout + done.stderr).count("UTL_SMTP_HOST is unset") == 1
    assert report_columns(database) == [("completed", "no_smtp", None)]
    again = utl("report", "--date", LAST, url=database)
    assert again.returncode == 3 and "UTL_SMTP_HOST is unset" in again.stderr


def test_a_failed_run_sends_one_alert(database: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    marks = landing / "marks" / "2024-03-06.csv"
    marks.write_text("".join(line for line in marks.read_text().splitlines(keepends=True) if not line.startswith("ETH,")))
    toml = landing / "utl.toml"
    toml.write_text(toml.read_text() + 'alerts_to = ["ops@example.com"]\n')
    inbox = Inbox()
    with smtp_server(inbox) as port:
        done = eod(landing, database, tmp_path / "s", **smtp_env(port))
    assert done.returncode == 1
    [got] = inbox.received
    assert got.rcpt_tos == ["ops@example.com"]
    assert got.message["Subject"].startswith("UTL run FAILED 2024-03-07: eod: ")
    assert "no mark for ETH on 2024-03-06" in got.message["Subject"]
    body = got.message.get_content()
    assert "no mark for ETH on 2024-03-06" in body and f"utl eod --landing {landing} --date 2024-03-07" in body
    assert "alert: sent to ops@example.com" in done.stderr


def test_report_out_writes_the_emailed_html(database: str, tmp_path: Path) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        assert eod(LANDING, database, tmp_path / "s", **smtp_env(port)).returncode == 0
    out = tmp_path / "report.html"
    done = utl("report", "--date", LAST, "--out", str(out), url=database, UTL_LANDING=str(LANDING))
    assert done.returncode == 0, done.stderr
    html_part = inbox.received[0].message.get_payload()[0].get_payload()[1]
    # Text parts travel with CRLF line ends (SMTP's); the HTML itself is the same.
    assert out.read_text(encoding="utf-8") == html_part.get_content().replace("\r\n", "\n")
    # A date no completed run covers is refused rather than mailed empty.
    assert utl("report", "--date", "2030-01-01", "--out", str(out), url=database).returncode == 1


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
def test_the_html_renders_in_headless_chromium(database: str, tmp_path: Path) -> None:
    assert eod(LANDING, database, tmp_path / "s").returncode == 0
    out, png, profile = tmp_path / "report.html", tmp_path / "report.png", tmp_path / "profile"
    profile.mkdir()
    assert utl("report", "--date", LAST, "--out", str(out), url=database,
               UTL_LANDING=str(LANDING)).returncode == 0
    shot = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--window-size=1200,900", f"--screenshot={png}", out.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert shot.returncode == 0, shot.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == 1200 and len(data) > 20_000  # a page with content, not blank
