"""The break report as one ``email.message.EmailMessage`` (report.md, "The break report").

``multipart/mixed``: first a ``multipart/alternative`` (plain text, then HTML: clients show
the last part they can), then ``breaks-YYYY-MM-DD.csv``. The CSV goes in as bytes so the
attachment is base64 and arrives byte for byte, line endings included.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from utl.report.data import ReportData
from utl.report.render import render_html, render_text


def report_subject(data: ReportData) -> str:
    subject = (f"UTL breaks {data.business_date.isoformat()}: {data.open_breaks} open "
               f"({len(data.new_breaks)} new), {len(data.quarantine)} quarantined")
    return f"[ESCALATED] {subject}" if data.escalated else subject


def attachment_name(data: ReportData) -> str:
    return f"breaks-{data.business_date.isoformat()}.csv"


def build_report_message(data: ReportData, csv_text: str, sender: str, to: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = report_subject(data)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(render_text(data))
    message.add_alternative(render_html(data), subtype="html")
    message.add_attachment(csv_text.encode("utf-8"), maintype="text", subtype="csv", filename=attachment_name(data))
    return message
