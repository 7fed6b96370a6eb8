"""``utl.toml``: the landing folder's settings; every key has a default (eod.md).

The file is checked against one typed model (:class:`_File`): an unknown key or section is
refused with its name and the nearest known one, a wrong type with the key and the value.
Code uses the plain :class:`Settings` that :func:`load_settings` returns."""

from __future__ import annotations

import datetime as dt
import difflib
import tomllib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, field_validator

METHODS = ("fifo", "lifo", "hifo", "wac")
UNKNOWN_FILES = ("quarantine", "fail")  # [strict] unknown_files
PRECISION_TOLERANCES = ("zero", "half_unit")  # [precision] tolerance


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
    timezones: dict[str, str] = field(default_factory=dict)  # "venue/account" -> "UTC+8" ([timezones])
    schedule_start_date: dt.date | None = None  # [schedule] start_date: the first partition
    schedule_cron: str = "30 0 * * *"  # [schedule] cron (UTC): when the EOD schedule runs
    transfer_window_hours: int = 24  # [transfers] window_hours: a deposit this long after a withdrawal still matches
    transfer_tolerance: Decimal = Decimal(0)  # [transfers] amount_tolerance: absolute, in the asset's units
    account_kinds: dict[str, str] = field(default_factory=dict)  # [accounts] "venue/account" -> margin | derivatives
    unknown_files: str = "quarantine"  # [strict] unknown_files: "fail" stops a run on a file no reader takes
    precision_tolerance: bool = False  # [precision] tolerance = "half_unit": the venue's places set the default

    def book_of(self, venue: str, account: str) -> str:
        """The book an account's lots match in: its own (venue/account) unless grouped."""
        key = f"{venue}/{account}"
        for book, members in self.books.items():
            if key in members:
                return book
        return key

    def may_go_short(self, venue: str, account: str) -> bool:
        """A margin or derivatives account ([accounts]) may hold a spot asset below zero knowingly."""
        return self.account_kinds.get(f"{venue}/{account}") in ACCOUNT_KINDS


ACCOUNT_KINDS = ("margin", "derivatives")


class SettingsError(ValueError):
    pass


# ---------------------------------------------------------------------------------------
# The file as written: one typed model. Every section forbids keys it does not know, so a
# typo (``costing_metod``) is refused by name instead of silently leaving the default.
# ---------------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _text_decimal(value: object, where: str, example: str) -> Decimal:
    """A decimal written as text (or a whole number): a TOML float is not the amount written."""
    try:
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise InvalidOperation
        number = Decimal(str(value))
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise ValueError(f"{where} = {value!r}: write it as text, e.g. {example!r}".replace("'", '"')) from None
    return number


class _Report(_Section):
    to: str | list[str] = ()
    alerts_to: str | list[str] | None = None
    escalate_after_days: StrictInt = 3
    escalate_value: object = "10000"

    @field_validator("escalate_after_days")
    @classmethod
    def _days(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"[report] escalate_after_days = {value!r}: a whole number of days")
        return value

    @field_validator("escalate_value")
    @classmethod
    def _value(cls, value: object) -> Decimal:
        number = _text_decimal(value, "[report] escalate_value", "10000")
        if number < 0:
            raise ValueError(f"[report] escalate_value = {value!r}: write it as text, e.g. \"10000\"")
        return number


class _Schedule(_Section):
    start_date: object = None
    cron: str = "30 0 * * *"

    @field_validator("start_date")
    @classmethod
    def _start(cls, value: object) -> dt.date | None:
        if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
            return value
        try:
            return dt.date.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"[schedule] start_date {value!r} is not a date YYYY-MM-DD") from None

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"[schedule] cron {value!r} is not a five-field cron expression")
        return value


class _Transfers(_Section):
    window_hours: StrictInt = 24
    amount_tolerance: object = "0"

    @field_validator("window_hours")
    @classmethod
    def _hours(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"[transfers] window_hours = {value!r}: a whole number of hours, 0 or more")
        return value

    @field_validator("amount_tolerance")
    @classmethod
    def _tolerance(cls, value: object) -> Decimal:
        number = _text_decimal(value, "[transfers] amount_tolerance", "0.0001")
        if number < 0:
            raise ValueError(f"[transfers] amount_tolerance = {value!r} is negative")
        return number


class _Strict(_Section):
    unknown_files: StrictStr = "quarantine"

    @field_validator("unknown_files")
    @classmethod
    def _unknown(cls, value: str) -> str:
        if value not in UNKNOWN_FILES:
            raise ValueError(f"[strict] unknown_files {value!r} is not one of {', '.join(UNKNOWN_FILES)}")
        return value


class _Precision(_Section):
    tolerance: StrictStr = "zero"

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, value: str) -> str:
        if value not in PRECISION_TOLERANCES:
            raise ValueError(f"[precision] tolerance {value!r} is not one of {', '.join(PRECISION_TOLERANCES)}")
        return value


class _File(_Section):
    reporting_currency: StrictStr = "USD"
    costing_method: StrictStr = "fifo"
    tolerance: dict[str, object] = {}
    report: _Report = _Report()
    aliases: dict[str, StrictStr] = {}
    pairs: dict[str, tuple[StrictStr, StrictStr]] = {}
    books: dict[str, list[StrictStr]] = {}
    timezones: dict[str, StrictStr] = {}  # "venue/account" -> "UTC+8": the zone of an export without one
    schedule: _Schedule = _Schedule()
    transfers: _Transfers = _Transfers()
    accounts: dict[str, StrictStr] = {}  # "venue/account" -> "margin" | "derivatives"
    strict: _Strict = _Strict()
    precision: _Precision = _Precision()

    @field_validator("accounts")
    @classmethod
    def _accounts(cls, value: dict[str, str]) -> dict[str, str]:
        for key, kind in value.items():
            if "/" not in key or not all(key.split("/")):
                raise ValueError(f'[accounts] "{key}": name an account as "venue/account" (a wallet: "venue/account/wallet")')
            if kind.lower() not in ACCOUNT_KINDS:
                raise ValueError(f'[accounts] "{key}" = "{kind}": one of {", ".join(ACCOUNT_KINDS)}')
        return {key: kind.lower() for key, kind in value.items()}

    @field_validator("costing_method")
    @classmethod
    def _method(cls, value: str) -> str:
        if value.lower() not in METHODS:
            raise ValueError(f"costing_method {value.lower()!r} is not one of {', '.join(METHODS)}")
        return value.lower()

    @field_validator("tolerance")
    @classmethod
    def _tolerance(cls, value: dict[str, object]) -> dict[str, Decimal]:
        tolerance = {}
        for asset, written in value.items():
            number = _text_decimal(written, f"[tolerance] {asset}", "0.00000001")
            if number < 0:
                raise ValueError(f"[tolerance] {asset} is negative")
            tolerance[str(asset).upper()] = number
        return tolerance


def _where(loc: tuple) -> str:
    """A pydantic location as the file spells it: ``costing_method``, ``[report] to``."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if len(parts) <= 1:
        return parts[0] if parts else "the file"
    return f"[{parts[0]}] {'.'.join(parts[1:])}"


def _known(loc: tuple) -> list[str]:
    model: type[BaseModel] = _File
    for part in loc[:-1]:
        field_info = model.model_fields.get(str(part))
        annotation = field_info.annotation if field_info else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _message(error: dict) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        name = str(loc[-1])
        section = f"[{loc[0]}] " if len(loc) > 1 else ""
        what = "section" if isinstance(error.get("input"), dict) else "key"
        near = difflib.get_close_matches(name, _known(loc), n=1, cutoff=0.6)
        hint = f"; did you mean {section}{near[0]}?" if near else f"; known: {', '.join(_known(loc))}"
        return f"unknown {what} {section}{name}{hint}"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return f"{_where(loc)} = {error.get('input')!r}: {error['msg'][:1].lower()}{error['msg'][1:]}"


def load_settings(landing: Path) -> Settings:
    path = landing / "utl.toml"
    if not path.exists():
        return Settings()
    try:
        raw = tomllib.loads(path.read_text("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"utl.toml: {str(exc).splitlines()[0]}") from exc
    except OSError as exc:
        raise SettingsError(f"utl.toml: cannot read it: {exc.strerror or exc}") from exc
    try:
        model = _File.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"utl.toml: {_message(exc.errors()[0])}") from None
    report = model.report
    return Settings(
        reporting_currency=model.reporting_currency.upper(),
        costing_method=model.costing_method,
        tolerance=dict(model.tolerance),
        report_to=_addresses(report.to),
        alerts_to=_addresses(report.alerts_to) if report.alerts_to is not None else None,
        escalate_after_days=report.escalate_after_days,
        escalate_value=report.escalate_value,
        aliases={k.upper(): v.upper() for k, v in model.aliases.items()},
        pairs={k.upper(): (v[0].upper(), v[1].upper()) for k, v in model.pairs.items()},
        books={k: tuple(v) for k, v in model.books.items()},
        timezones={k: v.strip() for k, v in model.timezones.items()},
        schedule_start_date=model.schedule.start_date,
        schedule_cron=model.schedule.cron,
        transfer_window_hours=model.transfers.window_hours,
        transfer_tolerance=model.transfers.amount_tolerance,
        account_kinds=dict(model.accounts),
        unknown_files=model.strict.unknown_files,
        precision_tolerance=model.precision.tolerance == "half_unit",
    )


def _addresses(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(str(v) for v in value)
