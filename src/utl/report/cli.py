"""``utl report``: a date's break report again, from the tables, or its HTML to a file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from utl.report.data import latest_run
from utl.report.deliver import report_html, send_report
from utl.report.settings import SmtpSettingsError, report_recipients, smtp_from_env
from utl.settings import Settings, SettingsError, load_settings
from utl.store import migrate, open_database

NOT_SENT = 3  # as `utl eod`: the report was not sent (report.md)


def report_command(day: dt.date, landing: Path | None, to: tuple[str, ...], out: Path | None,
                   say: Callable[[str], None]) -> int:
    """Send (or with ``out``, write) the report of ``day``; return the exit code."""
    try:
        settings = load_settings(landing) if landing is not None else Settings()
        smtp = None if out is not None else smtp_from_env()
    except (SettingsError, SmtpSettingsError) as exc:
        say(f"utl report: {exc}")
        return 2
    with open_database() as database, database.connect() as conn:
        migrate(conn)
        run = latest_run(conn, day)
        if run is None:
            say(f"utl report: no completed run covers {day.isoformat()}; run utl eod --date {day.isoformat()} first")
            return 1
        if out is not None:
            out.write_text(report_html(conn, day, settings), encoding="utf-8")
            say(f"report {day.isoformat()}: HTML written to {out}")
            return 0
        # A resend to the configured recipients is the run's report; one to --to is a copy.
        recipients = to or report_recipients(settings)
        record_with = run.run_id if not to and run.through_date == day else None
        outcome = send_report(conn, day, settings, smtp, recipients, run_id=record_with)
    say(outcome.line)
    return 0 if outcome.status == "sent" else NOT_SENT
