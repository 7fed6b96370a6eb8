"""The report's content from seeded tables: sections, order, escalation, subject, parts."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from smtp_servers import Inbox, smtp_server
from utl.report import send_report
from utl.report.data import breaks_csv, load_report_data
from utl.report.message import report_subject
from utl.report.render import render_html, render_text
from utl.report.settings import SmtpSettings
from utl.settings import Settings
from utl.store import connect

DAY = dt.date(2024, 3, 10)
LANDING = Path("/data/landing")
OTHER = "/data/other-landing"  # another landing folder's rows in the same database: never in this one's report

# (account, asset, ledger, venue, mark, first_seen): diff = venue - ledger; value = diff * mark
BREAKS = [
    ("a", "ADA", "0", "200", "0.5", "2024-03-05"),    # age 5, value 100: escalated by age
    ("a", "BTC", "1", "0.9", "50000", "2024-03-05"),  # age 5, value -5000: escalated by age
    ("b", "XYZ", "10", "11", None, "2024-03-09"),      # age 1, unpriced
    ("b", "ETH", "1", "6", "4000", "2024-03-09"),      # age 1, value 20000: escalated by value
    ("c", "SOL", "5", "6", "50", "2024-03-10"),        # new, value 50
]


@pytest.fixture
def seeded(migrated_database: str) -> str:
    with connect(migrated_database) as conn:
        conn.execute("INSERT INTO utl.runs (landing, through_date, status, finished_at) "
                     "VALUES ('/data/landing', %s, 'completed', now())", (DAY,))
        for account, asset, ledger, venue, mark, first in BREAKS:
            diff = Decimal(venue) - Decimal(ledger)
            conn.execute(
                "INSERT INTO utl.breaks VALUES (%s, 'binance', %s, %s, %s, %s, %s, 0, %s, 'qty_mismatch', %s, %s, %s)",
                (DAY, account, asset, Decimal(ledger), Decimal(venue), diff, first,
                 Decimal(mark) if mark else None, diff * Decimal(mark) if mark else None, str(LANDING)))
        for landing in (str(LANDING), OTHER):
            conn.execute("INSERT INTO utl.breaks VALUES ('2024-03-09', 'kraken', 'main', 'DOT', 1, 3, 2, 0, "
                         "'2024-03-01', 'qty_mismatch', 7, 14, %s)", (landing,))
        conn.execute("INSERT INTO utl.cleared_breaks VALUES (%s, 'kraken', 'main', 'DOT', '2024-03-01', %s)",
                     (DAY, str(LANDING)))
        # The other landing: the same key still open on DAY, a break of its own, its own refused row and check.
        conn.execute("INSERT INTO utl.breaks VALUES (%s, 'kraken', 'main', 'DOT', 1, 4, 3, 0, '2024-03-01', "
                     "'qty_mismatch', 7, 21, %s), (%s, 'binance', 'z', 'DOGE', 0, 9, 9, 0, %s, 'missing_in_ledger', "
                     "1, 9, %s)", (DAY, OTHER, DAY, DAY, OTHER))
        conn.execute("""INSERT INTO utl.quarantine (business_date, file, "row", "column", reason, landing) VALUES
                        (NULL, 'okx/main/trades/bills.csv', NULL, NULL, 'ragged file', %(l)s),
                        (%(day)s, 'kraken/main/trades/t.csv', 7, 'vol', 'not a decimal: 1,5', %(l)s),
                        (NULL, 'other/file.csv', 1, NULL, 'of the other landing', %(o)s)""",
                     {"day": DAY, "l": str(LANDING), "o": OTHER})
        conn.execute("INSERT INTO utl.check_results (business_date, check_name, asset, severity, passed, description, "
                     "landing) VALUES (%s, 'explain_ties', 'pnl_explain', 'error', false, 'unexplained 0.01 in book x', "
                     "%s), (%s, 'marks_present', 'marks', 'warn', true, NULL, %s), "
                     "(%s, 'no_breaks', 'day_state', 'warn', false, 'the other landing', %s)",
                     (DAY, str(LANDING), DAY, str(LANDING), DAY, OTHER))
        for landing, qty in ((str(LANDING), 1.5), (OTHER, 3)):
            conn.execute("INSERT INTO utl.positions VALUES (%s, 'binance', 'a', 'BTC', %s, 50000, 75000, 70000, 5000, "
                         "'desk', %s)", (DAY, qty, landing))
            conn.execute("INSERT INTO utl.pnl VALUES (%s, 'desk', 'BTC', 1234.5, 5000, 100, 12.345, 0, 0, 0, 0, 75000, "
                         "1322.155, %s)", (DAY, landing))
        conn.execute("INSERT INTO utl.exposure_book VALUES (%s, 'desk', 75000, 1234567.891, 75000, 0, 1, 1, false, %s)",
                     (DAY, str(LANDING)))
    return migrated_database


def test_sections_order_and_escalation(seeded: str) -> None:
    with connect(seeded) as conn:
        data = load_report_data(conn, DAY, Settings(), landing=LANDING)
    assert [(b.asset, b.age_days, b.escalated) for b in data.ageing_breaks] == \
        [("BTC", 5, True), ("ADA", 5, True), ("ETH", 1, True), ("XYZ", 1, False)]
    assert [(b.asset, b.escalated) for b in data.new_breaks] == [("SOL", False)]
    assert [(c.asset, c.last_diff) for c in data.cleared] == [("DOT", Decimal("2"))]
    assert [(q.file, q.row, q.column) for q in data.quarantine] == \
        [("kraken/main/trades/t.csv", 7, "vol"), ("okx/main/trades/bills.csv", None, None)]
    assert [c.check_name for c in data.failed_checks] == ["explain_ties"]
    assert report_subject(data) == "[ESCALATED] UTL breaks 2024-03-10: 5 open (1 new), 2 quarantined"
    # The other landing's position and PnL in the same book are not added in.
    assert [(b.book, b.positions, b.realized_pnl) for b in data.books] == [("desk", 1, Decimal("1234.5"))]
    calm = Settings(escalate_after_days=10, escalate_value=Decimal("1000000"))
    with connect(seeded) as conn:
        assert report_subject(load_report_data(conn, DAY, calm, landing=LANDING)) == "UTL breaks 2024-03-10: 5 open (1 new), 2 quarantined"


def test_both_parts_say_the_same_and_read_well(seeded: str) -> None:
    with connect(seeded) as conn:
        data = load_report_data(conn, DAY, Settings(), landing=LANDING)
    text, html = render_text(data), render_html(data)
    for part in (text, html):
        # 12.345 and 1322.155 round half-even at two places: 12.34, 1,322.16.
        for shown in ("1,234.50", "12.34", "1,322.16", "1,234,567.89", "-5,000.00", "20,000.00", "unpriced",
                      "explain_ties", "unexplained 0.01 in book x", "okx/main/trades/bills.csv", "not a decimal: 1,5",
                      "/data/landing", "2024-03-01"):
            assert shown in part, shown
    # Flags: one per escalated break in the text; the HTML flags the same rows.
    assert len(re.findall(r"\[ESCALATED\] binance/", text)) == 3
    flagged_rows = [row for row in html.split("<tr") if "ESCALATED</span>" in row and "qty_mismatch" in row]
    assert sorted(re.search(r">(ADA|BTC|ETH|XYZ|SOL)<", row).group(1) for row in flagged_rows) == ["ADA", "BTC", "ETH"]
    # Ageing order in the text: by age, then absolute value.
    assert [m for m in re.findall(r"binance/\w (\w+) qty", text)] == ["SOL", "BTC", "ADA", "ETH", "XYZ"]
    # For a mail client: inline styles only, nothing fetched, nothing run.
    assert "<script" not in html.lower() and "<link" not in html.lower() and "<style" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I) and "<img" not in html.lower()
    assert "style=" in html and "<table" in html


def test_message_parts_and_the_outcome_on_the_run(seeded: str) -> None:
    inbox = Inbox()
    with connect(seeded) as conn, smtp_server(inbox) as port:
        run_id = conn.execute("SELECT run_id FROM utl.runs").fetchone()[0]
        outcome = send_report(conn, DAY, Settings(), SmtpSettings("127.0.0.1", port), ["mo@example.com"], run_id=run_id,
                              landing=LANDING)
        expected_csv = breaks_csv(conn, DAY, LANDING)
        recorded = conn.execute("SELECT report_status, report_error, report_sent_at IS NOT NULL FROM utl.runs").fetchone()
    assert outcome.status == "sent" and recorded == ("sent", None, True)
    # The table's columns but the landing, which only says whose rows they are; none of the other landing's.
    assert expected_csv.splitlines()[0] == ("business_date,venue,account,asset,ledger_qty,venue_qty,diff,tolerance,"
                                            "first_seen,kind,mark,diff_value")
    assert len(expected_csv.splitlines()) == 1 + len(BREAKS) and "DOGE" not in expected_csv
    [got] = inbox.received
    message = got.message
    assert message.get_content_type() == "multipart/mixed"
    alternative, attachment = message.get_payload()
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    assert attachment.get_content_type() == "text/csv" and attachment.get_filename() == "breaks-2024-03-10.csv"
    assert attachment.get_payload(decode=True) == expected_csv.encode()
    assert message["Subject"] == outcome.subject


def test_no_smtp_and_no_recipients_send_nothing_and_say_so(seeded: str) -> None:
    with connect(seeded) as conn:
        assert send_report(conn, DAY, Settings(), None, ["mo@example.com"], landing=LANDING).status == "no_smtp"
        outcome = send_report(conn, DAY, Settings(), SmtpSettings("127.0.0.1", 1), [], run_id=1, landing=LANDING)
        assert outcome.status == "not_sent" and "no recipients" in outcome.line
        assert conn.execute("SELECT report_status FROM utl.runs").fetchone()[0] == "not_sent"
