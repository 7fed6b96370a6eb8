"""The break report and failure alerts by email (contract: ../shared/contracts/report.md).

One idea per module:

- ``settings``: SMTP from the environment, recipients from ``utl.toml`` or ``UTL_REPORT_TO``.
- ``data``: the report's rows for one date, read from PostgreSQL (never from a run's memory),
  and the breaks CSV that ``utl breaks --format csv`` prints too.
- ``formatting``: numbers formatted for reading.
- ``render``: the HTML and plain-text parts from Jinja2 templates.
- ``message``: the ``email.message.EmailMessage`` (subject, parts, CSV attachment).
- ``send``: ``smtplib`` with STARTTLS, implicit TLS and login.
- ``deliver``: ``send_report``, a date's report from the database to the recipients, and the
  outcome recorded with the run.
- ``alert``: ``send_alert``, the one email a failed run sends.
- ``finish``: what ``utl eod`` does once its run completed.

``send_report`` and ``send_alert`` take a connection or settings only, so the CLI and
Dagster (the report asset, the run-failure sensor) call the same code.
"""

from utl.report.alert import send_alert
from utl.report.deliver import ReportOutcome, send_report
from utl.report.settings import SmtpSettings

__all__ = ["ReportOutcome", "SmtpSettings", "send_alert", "send_report"]
