"""A date's report, from the tables to the recipients, and its fate recorded with the run.

``send_report`` is the one entry point for ``utl eod``, ``utl report`` and Dagster's report
asset. A failure to send never raises: the run's tables stand, and the outcome says why,
so the caller decides (``utl eod`` exits 3, an asset fails its materialization).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psycopg

from utl.report.data import ReportData, breaks_csv, load_report_data
from utl.report.message import build_report_message, report_subject
from utl.report.render import render_html
from utl.report.send import SendError, send_message
from utl.report.settings import SmtpSettings
from utl.settings import Settings

Status = Literal["sent", "not_sent", "failed", "no_smtp"]


@dataclass(frozen=True)
class ReportOutcome:
    business_date: dt.date
    status: Status  # sent | not_sent (no recipients) | failed | no_smtp (UTL_SMTP_HOST unset)
    subject: str
    recipients: tuple[str, ...]
    error: str | None = None

    @property
    def line(self) -> str:
        """One line for a terminal or a log."""
        day = self.business_date.isoformat()
        if self.status == "sent":
            return f"report {day}: sent to {', '.join(self.recipients)}: {self.subject}"
        if self.status == "no_smtp":
            return f"report {day}: not sent, UTL_SMTP_HOST is unset (utl report --date {day} --out FILE.html writes it)"
        if self.status == "not_sent":
            return f"report {day}: not sent, no recipients ([report] to in utl.toml, or UTL_REPORT_TO)"
        return f"report {day}: FAILED to send: {self.error}; resend with: utl report --date {day}"


def report_html(conn: psycopg.Connection, business_date: dt.date, settings: Settings, *, landing: Path | None) -> str:
    """The HTML part exactly as the email carries it (``utl report --out``)."""
    return render_html(load_report_data(conn, business_date, settings, landing=landing))


def send_report(conn: psycopg.Connection, business_date: dt.date, settings: Settings, smtp: SmtpSettings | None,
                to: Sequence[str], run_id: int | None = None, *, landing: Path | None) -> ReportOutcome:
    """Send the break report of ``landing``'s ``business_date`` to ``to``, read from the tables ``conn`` sees.

    ``settings`` are the landing's (reporting currency, escalation); ``smtp`` None means
    ``UTL_SMTP_HOST`` is unset and nothing is sent. When ``run_id`` is given the outcome is
    recorded in ``utl.runs`` (``report_status``, ``report_error``, ``report_sent_at``).
    """
    data = load_report_data(conn, business_date, settings, run_id, landing=landing)
    outcome = _deliver(conn, data, smtp, tuple(to), landing)
    if run_id is not None:
        record_outcome(conn, run_id, outcome)
    return outcome


def _deliver(conn: psycopg.Connection, data: ReportData, smtp: SmtpSettings | None,
             to: tuple[str, ...], landing: Path | None) -> ReportOutcome:
    subject = report_subject(data)
    if smtp is None:
        return ReportOutcome(data.business_date, "no_smtp", subject, to)
    if not to:
        return ReportOutcome(data.business_date, "not_sent", subject, to)
    message = build_report_message(data, breaks_csv(conn, data.business_date, landing), smtp.sender, to)
    try:
        send_message(message, smtp)
    except SendError as exc:
        return ReportOutcome(data.business_date, "failed", subject, to, str(exc))
    return ReportOutcome(data.business_date, "sent", subject, to)


def record_outcome(conn: psycopg.Connection, run_id: int, outcome: ReportOutcome) -> None:
    conn.execute(
        "UPDATE utl.runs SET report_status = %(status)s, report_error = %(error)s, "
        "report_sent_at = CASE WHEN %(status)s = 'sent' THEN now() ELSE report_sent_at END "
        "WHERE run_id = %(run_id)s",
        {"status": outcome.status, "error": outcome.error, "run_id": run_id},
    )
