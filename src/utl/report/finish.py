"""What ``utl eod`` does after its run: send the report, record it, print the summary; and
the one alert when the run could not complete.

Kept apart from ``utl.run`` so that the run itself knows nothing about email.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from utl.report.alert import send_alert
from utl.report.deliver import ReportOutcome, record_outcome, send_report
from utl.report.send import SendError
from utl.report.settings import SmtpSettingsError, alert_recipients, report_recipients, smtp_from_env
from utl.settings import Settings, SettingsError, load_settings
from utl.store import Database
from utl.summary import run_summary

Say = Callable[[str], None]


def finish_run(database: Database, landing: Path, run_id: int, business_date: dt.date, say: Say,
               show: Say) -> ReportOutcome:
    """Send ``business_date``'s report (the last date the run brought up to date), record
    the outcome with run ``run_id`` and ``show`` the summary, which says it (stdout).
    The caller exits 3 when ``outcome.status == "failed"``."""
    settings = load_settings(landing)
    with database.connect() as conn:
        try:
            smtp = smtp_from_env()
        except SmtpSettingsError as exc:
            outcome = ReportOutcome(business_date, "failed", "", report_recipients(settings), str(exc))
            record_outcome(conn, run_id, outcome)
        else:
            outcome = send_report(conn, business_date, settings, smtp, report_recipients(settings), run_id=run_id,
                                  landing=landing)
        # The summary's own line says whether the report went out: said once (report.md).
        show(run_summary(conn, business_date, settings, outcome, run_id, landing=landing,
                         fee_assumed=_fee_assumed(landing, settings)))
    return outcome


def _fee_assumed(landing: Path, settings: Settings) -> list[str]:
    """Accounts whose fees' asset is assumed, from the landing memory the run just refreshed."""
    from utl.fee_assumed import fee_asset_assumed_accounts
    from utl.home import landing_home
    from utl.memory import LandingMemory

    return fee_asset_assumed_accounts(LandingMemory(landing, landing_home(landing) / "memory", settings).catalog)


def alert_failed_eod(landing: Path, business_date: dt.date, error: str, say: Say) -> None:
    """The alert for a failed ``utl eod``: sent once, its fate said; never raises."""
    try:
        settings = load_settings(landing) if landing.is_dir() else Settings()
    except SettingsError:
        settings = Settings()  # the broken utl.toml is the error itself; UTL_REPORT_TO may still say who
    rerun = f"utl eod --landing {landing} --date {business_date.isoformat()}"
    try:
        status = send_alert(smtp_from_env(), alert_recipients(settings), business_date, "eod", error, rerun)
    except (SendError, SmtpSettingsError) as exc:
        say(f"alert: FAILED to send: {exc}")
        return
    if status == "sent":
        say(f"alert: sent to {', '.join(alert_recipients(settings))}")
    elif status == "no_smtp":
        say("alert: not sent, UTL_SMTP_HOST is unset")
    else:
        say("alert: not sent, no recipients ([report] alerts_to or to in utl.toml, or UTL_REPORT_TO)")
