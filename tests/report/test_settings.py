"""SMTP settings from the environment, recipients, escalation settings, number formats."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from utl.report.escalation import is_escalated
from utl.report.formatting import money, quantity
from utl.report.settings import SmtpSettingsError, alert_recipients, report_recipients, smtp_from_env
from utl.settings import Settings, SettingsError, load_settings


def test_no_host_means_nothing_is_sent() -> None:
    assert smtp_from_env({}) is None
    assert smtp_from_env({"UTL_SMTP_HOST": "  ", "UTL_SMTP_PORT": "2525"}) is None


def test_smtp_defaults_and_overrides() -> None:
    smtp = smtp_from_env({"UTL_SMTP_HOST": "mail"})
    assert (smtp.host, smtp.port, smtp.sender, smtp.login, smtp.starttls, smtp.ssl) == \
        ("mail", 25, "utl@localhost", False, False, False)
    smtp = smtp_from_env({"UTL_SMTP_HOST": "mail", "UTL_SMTP_PORT": "465", "UTL_SMTP_FROM": "eod@desk",
                          "UTL_SMTP_USER": "u", "UTL_SMTP_PASSWORD": "hunter2", "UTL_SMTP_SSL": "1",
                          "UTL_SMTP_STARTTLS": "0"})
    assert (smtp.port, smtp.sender, smtp.login, smtp.ssl, smtp.starttls) == (465, "eod@desk", True, True, False)
    assert "hunter2" not in repr(smtp) and "hunter2" not in smtp.description
    # Login only when both are set.
    assert not smtp_from_env({"UTL_SMTP_HOST": "mail", "UTL_SMTP_USER": "u"}).login
    with pytest.raises(SmtpSettingsError, match="UTL_SMTP_PORT"):
        smtp_from_env({"UTL_SMTP_HOST": "mail", "UTL_SMTP_PORT": "smtp"})


def test_recipients_env_wins_and_alerts_default_to_the_report_list() -> None:
    settings = Settings(report_to=("mo@example.com",))
    assert report_recipients(settings, {}) == ("mo@example.com",)
    assert report_recipients(settings, {"UTL_REPORT_TO": "a@x.com, b@x.com,"}) == ("a@x.com", "b@x.com")
    assert alert_recipients(settings, {}) == ("mo@example.com",)
    assert alert_recipients(Settings(report_to=("mo@x.com",), alerts_to=("ops@x.com",)), {}) == ("ops@x.com",)


def test_report_section_of_utl_toml(tmp_path: Path) -> None:
    (tmp_path / "utl.toml").write_text('[report]\nto = "mo@x.com"\nalerts_to = ["ops@x.com"]\n'
                                       'escalate_after_days = 5\nescalate_value = "2500.50"\n')
    settings = load_settings(tmp_path)
    assert (settings.report_to, settings.alerts_to, settings.escalate_after_days, settings.escalate_value) == \
        (("mo@x.com",), ("ops@x.com",), 5, Decimal("2500.50"))
    assert (Settings().escalate_after_days, Settings().escalate_value, Settings().alerts_to) == (3, Decimal("10000"), None)
    for bad in ("escalate_value = 2500.5", "escalate_after_days = -1", 'escalate_value = "lots"'):
        (tmp_path / "utl.toml").write_text(f"[report]\n{bad}\n")
        with pytest.raises(SettingsError, match=r"\[report\]"):
            load_settings(tmp_path)


def test_escalation_by_age_or_value() -> None:
    value = Decimal("10000")
    assert not is_escalated(3, Decimal("10000"), 3, value)  # exactly the limits: not beyond them
    assert is_escalated(4, Decimal("0"), 3, value)
    assert is_escalated(0, Decimal("-10000.01"), 3, value)  # either sign
    assert not is_escalated(0, None, 3, value) and is_escalated(4, None, 3, value)  # unpriced: by age only


def test_numbers_for_reading() -> None:
    assert [quantity(Decimal(v)) for v in ("0.500000000000000000", "1234567.1234", "-1E+3", "0E-18")] == \
        ["0.5", "1,234,567.1234", "-1,000", "0"]
    assert [money(Decimal(v)) for v in ("1234567.125", "1234567.135", "-0.001", "-1901.9")] == \
        ["1,234,567.12", "1,234,567.14", "0.00", "-1,901.90"]
    assert quantity(None) == money(None) == "—"
