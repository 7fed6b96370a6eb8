"""The alert a failed run sends (report.md, "Alerts"): one plain-text email per failed run.

The caller says which run failed (date, asset, error, how to rerun) and calls this once:
``utl eod`` when its run raises, the Dagster run-failure sensor once per failed run (a
sensor's cursor, not a retry, decides "once"). A failure to send raises ``SendError``, so a
sensor shows as failed in the UI and the CLI prints it; nothing fails silently.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from utl.report.send import send_message
from utl.report.settings import SmtpSettings

AlertStatus = Literal["sent", "no_smtp", "not_sent"]


def alert_subject(business_date: dt.date, asset: str, error: str) -> str:
    first_line = next((line.strip() for line in error.splitlines() if line.strip()), "unknown error")
    return f"UTL run FAILED {business_date.isoformat()}: {asset}: {first_line}"


def build_alert(business_date: dt.date, asset: str, error: str, rerun: str, sender: str,
                to: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = alert_subject(business_date, asset, error)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(
        f"The UTL run for {business_date.isoformat()} could not complete.\n\n"
        f"Date:  {business_date.isoformat()}\n"
        f"Asset: {asset}\n\n"
        f"Error:\n{error.rstrip()}\n\n"
        f"The tables keep the state of the last completed run. Once the cause is fixed, rerun:\n"
        f"  {rerun}\n"
    )
    return message


def send_alert(smtp: SmtpSettings | None, to: Sequence[str], business_date: dt.date, asset: str, error: str,
               rerun: str) -> AlertStatus:
    """Email that the run of ``business_date`` failed in ``asset`` with ``error``.

    ``rerun`` is the command (or UI action) that reruns it. Returns ``"no_smtp"`` when
    ``UTL_SMTP_HOST`` is unset and ``"not_sent"`` when there is nobody to tell; raises
    ``utl.report.send.SendError`` when the server cannot take it.
    """
    if smtp is None:
        return "no_smtp"
    if not to:
        return "not_sent"
    send_message(build_alert(business_date, asset, error, rerun, smtp.sender, to), smtp)
    return "sent"
