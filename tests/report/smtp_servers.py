"""Real SMTP servers in the test process (aiosmtpd), on 127.0.0.1 at a free port.

``Inbox`` keeps every message a server accepted, parsed, with its envelope. A server can
refuse every message (``refuse="554 ..."``), require STARTTLS and a login, or speak TLS
from the first byte; ``closed_port`` is a port where nothing listens.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

USER = "utl-sender"
PASSWORD = "s3cret-Pa55word"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    refuse: str | None = None  # an SMTP reply to every DATA, e.g. "554 5.7.1 not today"
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        if self.refuse:
            return self.refuse
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))  # type: ignore[arg-type]
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


closed_port = free_port  # bound once, then released: nothing listens there


def _authenticator(inbox: Inbox):
    def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER \
            and auth_data.password.decode() == PASSWORD
        if ok:
            inbox.logins.append(USER)
        return AuthResult(success=ok, handled=False)
    return check


@contextlib.contextmanager
def smtp_server(inbox: Inbox, *, tls: ssl.SSLContext | None = None, starttls: bool = False,
                implicit_tls: bool = False, login: bool = False) -> Iterator[int]:
    """Run a server for the block; yield its port."""
    port = free_port()
    kwargs: dict = {}
    if starttls:
        kwargs.update(tls_context=tls, require_starttls=True)
    if implicit_tls:
        kwargs.update(ssl_context=tls)
    if login:
        # Under implicit TLS aiosmtpd does not know the socket is encrypted and would hide AUTH.
        kwargs.update(authenticator=_authenticator(inbox), auth_required=True, auth_require_tls=not implicit_tls)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def self_signed(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (and localhost) and a server context holding it; the
    certificate file doubles as the client's trust store (``SSL_CERT_FILE``)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context
