"""``utl.toml``: the landing folder's settings; every key has a default (eod.md)."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

METHODS = ("fifo", "lifo", "hifo", "wac")


@dataclass(frozen=True)
class Settings:
    reporting_currency: str = "USD"
    costing_method: str = "fifo"
    tolerance: dict[str, Decimal] = field(default_factory=dict)  # absolute qty per asset; default 0
    report_to: tuple[str, ...] = ()
    alerts_to: tuple[str, ...] | None = None  # None: the same as report_to (report.md)
    escalate_after_days: int = 3  # a break older than this many days is escalated
    escalate_value: Decimal = Decimal("10000")  # or worth more than this at mark (reporting currency)
    aliases: dict[str, str] = field(default_factory=dict)  # venue code -> canonical code
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # glued symbol -> (base, quote)
    books: dict[str, tuple[str, ...]] = field(default_factory=dict)  # book -> ["venue/account", ...]
    timezones: dict[str, str] = field(default_factory=dict)  # "venue/account" -> "UTC+8": for exports that omit it
    schedule_start_date: dt.date | None = None  # [schedule] start_date: the first partition
    schedule_cron: str = "30 0 * * *"  # [schedule] cron (UTC): when the EOD schedule runs

    def book_of(self, venue: str, account: str) -> str:
        """The book an account's lots match in: its own (venue/account) unless grouped."""
        key = f"{venue}/{account}"
        for book, members in self.books.items():
            if key in members:
                return book
        return key


class SettingsError(ValueError):
    pass


def load_settings(landing: Path) -> Settings:
    path = landing / "utl.toml"
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"utl.toml: {exc}") from exc
    method = str(raw.get("costing_method", "fifo")).lower()
    if method not in METHODS:
        raise SettingsError(f"utl.toml: costing_method {method!r} is not one of {', '.join(METHODS)}")
    tolerance = {}
    for asset, value in (raw.get("tolerance") or {}).items():
        try:
            # Text, never a TOML float: 0.1 as a float is not 0.1.
            if not isinstance(value, (str, int)):
                raise InvalidOperation
            tolerance[str(asset).upper()] = Decimal(str(value))
        except InvalidOperation:
            raise SettingsError(f'utl.toml: [tolerance] {asset} = {value!r}: write it as text, e.g. "0.00000001"') from None
        if tolerance[str(asset).upper()] < 0:
            raise SettingsError(f"utl.toml: [tolerance] {asset} is negative")
    report = raw.get("report") or {}
    to = _addresses(report.get("to", []))
    alerts_to = _addresses(report["alerts_to"]) if "alerts_to" in report else None
    escalate_after_days = report.get("escalate_after_days", 3)
    if not isinstance(escalate_after_days, int) or isinstance(escalate_after_days, bool) or escalate_after_days < 0:
        raise SettingsError(f"utl.toml: [report] escalate_after_days = {escalate_after_days!r}: a whole number of days")
    escalate_value = report.get("escalate_value", "10000")
    try:
        # Text, like tolerances: a TOML float would not be the amount written.
        if not isinstance(escalate_value, (str, int)) or isinstance(escalate_value, bool):
            raise InvalidOperation
        escalate_value = Decimal(str(escalate_value))
        if not escalate_value.is_finite() or escalate_value < 0:
            raise InvalidOperation
    except InvalidOperation:
        raise SettingsError(f'utl.toml: [report] escalate_value = {escalate_value!r}: write it as text, e.g. "10000"') from None
    pairs = {str(k).upper(): (str(v[0]).upper(), str(v[1]).upper()) for k, v in (raw.get("pairs") or {}).items()}
    books = {str(k): tuple(v) for k, v in (raw.get("books") or {}).items()}
    timezones = {str(k): str(v).strip() for k, v in (raw.get("timezones") or {}).items()}
    schedule = raw.get("schedule") or {}
    start = schedule.get("start_date")
    if start is not None and not isinstance(start, dt.date):
        try:
            start = dt.date.fromisoformat(str(start))
        except ValueError:
            raise SettingsError(f"utl.toml: [schedule] start_date {start!r} is not a date YYYY-MM-DD") from None
    cron = str(schedule.get("cron", "30 0 * * *"))
    if len(cron.split()) != 5:
        raise SettingsError(f"utl.toml: [schedule] cron {cron!r} is not a five-field cron expression")
    return Settings(
        reporting_currency=str(raw.get("reporting_currency", "USD")).upper(),
        costing_method=method,
        tolerance=tolerance,
        report_to=to,
        alerts_to=alerts_to,
        escalate_after_days=escalate_after_days,
        escalate_value=escalate_value,
        aliases={str(k).upper(): str(v).upper() for k, v in (raw.get("aliases") or {}).items()},
        pairs=pairs,
        books=books,
        timezones=timezones,
        schedule_start_date=start,
        schedule_cron=cron,
    )


def _addresses(value: object) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)  # type: ignore[union-attr]
