"""Hand a message to the SMTP server: plain, STARTTLS or implicit TLS, with login if set.

Certificates are verified against the system's trust store (``ssl.create_default_context``;
OpenSSL's ``SSL_CERT_FILE`` points it at another bundle). Every failure becomes one
``SendError`` whose text names the server and the reason and never the password.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from utl.report.settings import SmtpSettings

TIMEOUT_SECONDS = 30.0


class SendError(RuntimeError):
    """The SMTP server could not be reached or did not accept the message for everyone."""


def send_message(message: EmailMessage, smtp: SmtpSettings, timeout: float = TIMEOUT_SECONDS) -> None:
    """Deliver ``message`` to its To addresses; raise ``SendError`` unless all were accepted."""
    try:
        context = ssl.create_default_context()
        if smtp.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        with client:
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=context)
                client.ehlo()
            if smtp.login:
                client.login(smtp.user or "", smtp.password or "")
            refused = client.send_message(message, from_addr=smtp.sender)
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError is an OSError
        raise SendError(f"SMTP {smtp.description}: {_reason(exc)}") from None
    if refused:
        # A partial delivery still fails: someone who must read the report did not get it.
        raise SendError(f"SMTP {smtp.description}: refused " + ", ".join(
            f"{address} ({code} {text.decode(errors='replace')})" for address, (code, text) in sorted(refused.items())))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "refused every recipient: " + ", ".join(
            f"{address} ({code} {text.decode(errors='replace')})" for address, (code, text) in sorted(exc.recipients.items()))
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
