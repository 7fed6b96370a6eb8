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
    aliases: dict[str, str] = field(default_factory=dict)  # venue code -> canonical code
    pairs: dict[str, tuple[str, str]] = field(default_factory=dict)  # glued symbol -> (base, quote)
    books: dict[str, tuple[str, ...]] = field(default_factory=dict)  # book -> ["venue/account", ...]
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
    to = report.get("to", [])
    to = (to,) if isinstance(to, str) else tuple(to)
    pairs = {str(k).upper(): (str(v[0]).upper(), str(v[1]).upper()) for k, v in (raw.get("pairs") or {}).items()}
    books = {str(k): tuple(v) for k, v in (raw.get("books") or {}).items()}
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
        aliases={str(k).upper(): str(v).upper() for k, v in (raw.get("aliases") or {}).items()},
        pairs=pairs,
        books=books,
        schedule_start_date=start,
        schedule_cron=cron,
    )
