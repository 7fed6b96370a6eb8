"""Sending against real aiosmtpd servers: plain, STARTTLS with login, implicit TLS, and the
ways it fails (a refusing server, nobody listening, a wrong password, an untrusted cert)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path

import pytest

from smtp_servers import PASSWORD, USER, Inbox, closed_port, self_signed, smtp_server
from utl.report.alert import alert_subject, send_alert
from utl.report.send import SendError, send_message
from utl.report.settings import SmtpSettings


def note(to: str = "mo@example.com") -> EmailMessage:
    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = "hello", "utl@localhost", to
    message.set_content("body\n")
    return message


@pytest.fixture
def tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cert, context = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts exactly this certificate
    return context


def test_plain_delivery_to_every_recipient() -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        send_message(note("a@example.com, b@example.com"), SmtpSettings("127.0.0.1", port, sender="utl@desk"))
    [got] = inbox.received
    assert got.mail_from == "utl@desk" and got.rcpt_tos == ["a@example.com", "b@example.com"]
    assert got.message["Subject"] == "hello"


def test_starttls_and_login_against_a_server_that_requires_both(tls) -> None:
    inbox = Inbox()
    with smtp_server(inbox, tls=tls, starttls=True, login=True) as port:
        smtp = SmtpSettings("127.0.0.1", port, user=USER, password=PASSWORD, starttls=True)
        send_message(note(), smtp)
        # Without STARTTLS the server offers no login at all (it requires TLS first).
        with pytest.raises(SendError, match="AUTH extension not supported"):
            send_message(note(), SmtpSettings("127.0.0.1", port, user=USER, password=PASSWORD))
        with pytest.raises(SendError) as wrong:
            send_message(note(), SmtpSettings("127.0.0.1", port, user=USER, password="not-it", starttls=True))
    assert inbox.logins == [USER] and len(inbox.received) == 1
    assert "535" in str(wrong.value) and "not-it" not in str(wrong.value)
    assert PASSWORD not in repr(smtp) and PASSWORD not in smtp.description


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the socket is TLS; aiosmtpd cannot tell
def test_implicit_tls(tls) -> None:
    inbox = Inbox()
    with smtp_server(inbox, tls=tls, implicit_tls=True, login=True) as port:
        send_message(note(), SmtpSettings("127.0.0.1", port, user=USER, password=PASSWORD, ssl=True))
    assert len(inbox.received) == 1 and inbox.logins == [USER]


def test_an_untrusted_certificate_is_refused(tmp_path: Path) -> None:
    _, context = self_signed(tmp_path)  # SSL_CERT_FILE not set: the system store does not know it
    with smtp_server(Inbox(), tls=context, starttls=True) as port:
        with pytest.raises(SendError, match="CERTIFICATE_VERIFY_FAILED"):
            send_message(note(), SmtpSettings("127.0.0.1", port, starttls=True))


def test_refusing_and_closed_servers_raise_send_error() -> None:
    with smtp_server(Inbox(refuse="554 5.7.1 not today")) as port:
        with pytest.raises(SendError, match="554 5.7.1 not today"):
            send_message(note(), SmtpSettings("127.0.0.1", port))
    with pytest.raises(SendError, match="Connection ?Refused|refused"):
        send_message(note(), SmtpSettings("127.0.0.1", closed_port()))


def test_alert_subject_and_body() -> None:
    inbox = Inbox()
    error = "no mark for ETH on 2024-03-06\nsecond line of detail"
    with smtp_server(inbox) as port:
        status = send_alert(SmtpSettings("127.0.0.1", port), ["ops@example.com"], dt.date(2024, 3, 7), "positions",
                            error, "utl eod --landing L --date 2024-03-07")
    assert status == "sent"
    [got] = inbox.received
    assert got.message["Subject"] == "UTL run FAILED 2024-03-07: positions: no mark for ETH on 2024-03-06"
    body = got.message.get_content()
    assert "second line of detail" in body and "utl eod --landing L --date 2024-03-07" in body
    assert alert_subject(dt.date(2024, 3, 7), "eod", "\n\n  boom  \n") == "UTL run FAILED 2024-03-07: eod: boom"
    assert send_alert(None, ["ops@example.com"], dt.date(2024, 3, 7), "eod", "x", "r") == "no_smtp"
