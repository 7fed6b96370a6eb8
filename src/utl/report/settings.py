"""Who gets the report and through which SMTP server (report.md, "Who gets it").

SMTP settings come only from the environment, so a password never lands in ``utl.toml``,
in ``utl.runs`` or in a message: ``SmtpSettings`` keeps it out of its ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from utl.settings import Settings

DEFAULT_PORT = 25
DEFAULT_FROM = "utl@localhost"


class SmtpSettingsError(ValueError):
    """An SMTP variable that cannot be used as it is (a port that is not a number...)."""


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = DEFAULT_PORT
    sender: str = DEFAULT_FROM
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    ssl: bool = False  # implicit TLS from the first byte (usually port 465)

    @property
    def login(self) -> bool:
        """Log in only when both a user and a password are set (report.md)."""
        return bool(self.user) and bool(self.password)

    @property
    def description(self) -> str:
        """For messages: where mail goes, without any secret."""
        how = "implicit TLS" if self.ssl else "STARTTLS" if self.starttls else "plain"
        who = f", as {self.user}" if self.login else ""
        return f"{self.host}:{self.port} ({how}{who})"


def smtp_from_env(env: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """The SMTP settings in ``UTL_SMTP_*``; None when ``UTL_SMTP_HOST`` is unset (send nothing)."""
    env = os.environ if env is None else env
    host = env.get("UTL_SMTP_HOST", "").strip()
    if not host:
        return None
    port_text = env.get("UTL_SMTP_PORT", "").strip() or str(DEFAULT_PORT)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SmtpSettingsError(f"UTL_SMTP_PORT={port_text!r} is not a port number")
    return SmtpSettings(
        host=host,
        port=int(port_text),
        sender=env.get("UTL_SMTP_FROM", "").strip() or DEFAULT_FROM,
        user=env.get("UTL_SMTP_USER") or None,
        password=env.get("UTL_SMTP_PASSWORD") or None,
        starttls=_flag(env, "UTL_SMTP_STARTTLS"),
        ssl=_flag(env, "UTL_SMTP_SSL"),
    )


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip() == "1"


def report_recipients(settings: Settings, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``UTL_REPORT_TO`` (comma-separated) when set, else ``[report] to``."""
    env = os.environ if env is None else env
    configured = env.get("UTL_REPORT_TO", "").strip()
    if configured:
        return tuple(a.strip() for a in configured.split(",") if a.strip())
    return settings.report_to


def alert_recipients(settings: Settings, env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``[report] alerts_to``, defaulting to the report's recipients."""
    if settings.alerts_to is not None:
        return settings.alerts_to
    return report_recipients(settings, env)
