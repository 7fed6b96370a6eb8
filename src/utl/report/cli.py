"""``utl report``: a date's break report again, from the tables, or its HTML to a file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from utl.home import last_landing
from utl.report.data import latest_run
from utl.report.deliver import report_html, send_report
from utl.report.settings import SmtpSettingsError, report_recipients, smtp_from_env
from utl.settings import Settings, SettingsError, load_settings
from utl.store import database_url, migrate, open_database
from utl.store.days import last_written_landing

NOT_SENT = 3  # as `utl eod`: the report was not sent (report.md)


def report_command(day: dt.date, landing: Path | None, to: tuple[str, ...], out: Path | None,
                   say: Callable[[str], None]) -> int:
    """Send (or with ``out``, write) the report of ``landing``'s ``day``; return the exit code.

    No ``landing``: the last one ``utl eod`` ran with this UTL_HOME (its embedded database),
    or with UTL_DATABASE_URL the landing last written into that shared database."""
    if landing is None and database_url() is None:
        landing = last_landing()
    try:
        settings = load_settings(landing) if landing is not None and landing.is_dir() else Settings()
        smtp = None if out is not None else smtp_from_env()
    except (SettingsError, SmtpSettingsError) as exc:
        say(f"utl report: {exc}")
        return 2
    with open_database(landing) as database, database.connect() as conn:
        migrate(conn)
        if landing is None:
            landing = last_written_landing(conn)
            if landing is not None and landing.is_dir():
                try:
                    settings = load_settings(landing)
                except SettingsError as exc:
                    say(f"utl report: {exc}")
                    return 2
        run = latest_run(conn, day, landing)
        if run is None:
            say(f"utl report: no completed run covers {day.isoformat()}"
                + (f" for landing {landing}" if landing is not None else "")
                + f"; run utl eod --date {day.isoformat()} first")
            return 1
        if out is not None:
            out.write_text(report_html(conn, day, settings, landing=landing), encoding="utf-8")
            say(f"report {day.isoformat()}: HTML written to {out}")
            return 0
        # A resend to the configured recipients is the run's report; one to --to is a copy.
        recipients = to or report_recipients(settings)
        record_with = run.run_id if not to and run.through_date == day else None
        outcome = send_report(conn, day, settings, smtp, recipients, run_id=record_with, landing=landing)
    say(outcome.line)
    return 0 if outcome.status == "sent" else NOT_SENT
