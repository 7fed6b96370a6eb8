"""The report's rows for one business date, read from PostgreSQL.

Always from the tables, never from what a run still holds in memory, so that
``utl report --date D`` a week later sends the same message as the run did. Numbers stay
``Decimal``; formatting for reading is the job of ``formatting``, and the CSV keeps exact text.
Every read is one landing folder's rows (``landing``, 008_landing_keys): a database shared
by several landing folders reports each one apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
from psycopg.rows import dict_row

from utl.home import landing_key
from utl.report.escalation import is_escalated
from utl.settings import Settings
from utl.venues.base import is_layout_refusal
from utl.store import read_frame

_BREAKS = ("SELECT * FROM utl.breaks WHERE landing = %(landing)s AND business_date = %(day)s "
           "ORDER BY venue, account, asset")


def key_of(landing: Path | None) -> str | None:
    """The database's name of ``landing`` (None: no landing, so no rows)."""
    return landing_key(landing) if landing is not None else None


def read_breaks(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> pl.DataFrame:
    """``landing``'s ``utl.breaks`` rows of a date, numbers exact (what ``utl breaks`` shows):
    every column but ``landing``, which only says whose rows they are, and ``subject``
    (012_derivatives), so the CSV's header is the contract's byte for byte (eod.md) whether
    one landing or several share the database and whether or not it holds derivatives. A
    position break is the row whose ``asset`` is an instrument (a ccxt symbol, ``:settle``)."""
    return read_frame(conn, _BREAKS, {"day": day, "landing": key_of(landing)}).drop("landing", "subject", strict=False)


def breaks_csv(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> str:
    """What ``utl breaks --format csv`` prints and the report attaches: one function, one text."""
    return read_breaks(conn, day, landing).write_csv()


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    landing: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    through_date: dt.date | None
    status: str


@dataclass(frozen=True)
class BookLine:
    book: str
    positions: int
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    fees: Decimal | None
    total_pnl: Decimal | None
    net_exposure: Decimal | None  # null when nothing in the book is priced
    gross_exposure: Decimal | None
    unpriced: bool


@dataclass(frozen=True)
class BreakLine:
    venue: str
    account: str
    asset: str
    kind: str
    ledger_qty: Decimal
    venue_qty: Decimal
    diff: Decimal
    mark: Decimal | None
    diff_value: Decimal | None  # null when unpriced, never zero
    first_seen: dt.date
    age_days: int  # business_date - first_seen; 0 for a new break
    escalated: bool
    subject: str = "balance"  # position: an instrument's quantity against the positions file (012_derivatives)


@dataclass(frozen=True)
class ClearedLine:
    venue: str
    account: str
    asset: str
    first_seen: dt.date
    last_seen: dt.date
    last_diff: Decimal | None  # the difference on its last day as a break
    last_diff_value: Decimal | None


@dataclass(frozen=True)
class QuarantineLine:
    file: str
    row: int | None
    column: str | None
    reason: str


@dataclass(frozen=True)
class CheckLine:
    check_name: str
    asset: str
    severity: str
    description: str | None


@dataclass(frozen=True)
class ExceptionLine:
    """A row of utl.exceptions (ledger.md): in_transit, missing_acquisition, external_deposit, fee_asset_assumed."""

    venue: str
    account: str
    asset: str
    kind: str
    quantity: Decimal
    value: Decimal | None  # at mark; null when unpriced, never zero
    first_seen: dt.date
    first_ts: dt.datetime | None
    age_days: int | None  # days since first_ts
    refs: str


@dataclass(frozen=True)
class DerivativeLine:
    """A row of utl.derivative_positions (derivatives.md), with its book."""

    book: str
    venue: str
    account: str
    instrument: str
    settle_asset: str
    qty: Decimal
    venue_qty: Decimal | None  # null: no positions file that day
    entry_price: Decimal | None
    venue_entry_price: Decimal | None
    mark: Decimal | None
    unrealized_pnl: Decimal | None  # settle asset
    unrealized_pnl_usd: Decimal | None  # reporting currency; null when unpriced
    realized_pnl: Decimal
    funding: Decimal
    fees: Decimal
    delta: Decimal | None


@dataclass(frozen=True)
class ReportData:
    business_date: dt.date
    reporting_currency: str
    escalate_after_days: int
    escalate_value: Decimal
    run: RunInfo | None  # None when no run is on record for the date
    books: list[BookLine]
    new_breaks: list[BreakLine]
    ageing_breaks: list[BreakLine]  # by age (oldest first), then by absolute value at mark
    cleared: list[ClearedLine]
    quarantine: list[QuarantineLine]
    failed_checks: list[CheckLine]
    exceptions: list[ExceptionLine] = field(default_factory=list)  # beside the breaks: utl.exceptions
    derivatives: list[DerivativeLine] = field(default_factory=list)  # utl.derivative_positions, by book

    @property
    def unknown_layouts(self) -> list[QuarantineLine]:
        """Files no single reader takes, quarantined whole: none recognises it (the reason
        names the header seen and the nearest known layout) or two claim it (it names both)."""
        return [q for q in self.quarantine if q.row is None and is_layout_refusal(q.reason)]

    @property
    def open_breaks(self) -> int:
        return len(self.new_breaks) + len(self.ageing_breaks)

    @property
    def escalated(self) -> bool:
        return any(b.escalated for b in (*self.new_breaks, *self.ageing_breaks))


def load_report_data(conn: psycopg.Connection, day: dt.date, settings: Settings,
                     run_id: int | None = None, *, landing: Path | None) -> ReportData:
    """Everything the report shows for ``landing``'s ``day``; ``run_id`` picks the run
    (default: the latest completed run of ``landing`` that brought ``day`` up to date)."""
    key = key_of(landing)
    breaks = _breaks(conn, day, settings, key)
    new = [b for b in breaks if b.age_days == 0]
    # Oldest first; equal ages by absolute value at mark, unpriced last (unknown, not zero).
    ageing = sorted((b for b in breaks if b.age_days > 0),
                    key=lambda b: (-b.age_days, b.diff_value is None, -abs(b.diff_value or 0), b.venue, b.account, b.asset))
    return ReportData(
        business_date=day,
        reporting_currency=settings.reporting_currency,
        escalate_after_days=settings.escalate_after_days,
        escalate_value=settings.escalate_value,
        run=_run(conn, day, run_id, key),
        books=_books(conn, day, key),
        new_breaks=sorted(new, key=lambda b: (b.diff_value is None, -abs(b.diff_value or 0), b.venue, b.account, b.asset)),
        ageing_breaks=ageing,
        cleared=_cleared(conn, day, key),
        quarantine=_quarantine(conn, day, key),
        failed_checks=_failed_checks(conn, day, key),
        exceptions=read_exceptions(conn, day, key),
        derivatives=_derivatives(conn, day, settings, key),
    )


def _rows(conn: psycopg.Connection, query: str, params: dict[str, object]) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()  # type: ignore[arg-type]


def latest_run(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> RunInfo | None:
    """``landing``'s latest completed run that brought ``day`` up to date (its through date or later)."""
    return _run(conn, day, None, key_of(landing))


def _run(conn: psycopg.Connection, day: dt.date, run_id: int | None, landing: str | None) -> RunInfo | None:
    if run_id is not None:
        rows = _rows(conn, "SELECT * FROM utl.runs WHERE run_id = %(run_id)s", {"run_id": run_id})
    else:
        # Every run rewrites each date from the first through its own, so the latest
        # completed one through day or later wrote what the tables hold for day.
        rows = _rows(conn, "SELECT * FROM utl.runs WHERE landing = %(landing)s AND status = 'completed' "
                           "AND through_date >= %(day)s ORDER BY run_id DESC LIMIT 1", {"day": day, "landing": landing})
    if not rows:
        return None
    r = rows[0]
    return RunInfo(r["run_id"], r["landing"], r["started_at"], r["finished_at"], r["through_date"], r["status"])


def _books(conn: psycopg.Connection, day: dt.date, landing: str | None) -> list[BookLine]:
    rows = _rows(conn, """
        WITH p AS (SELECT coalesce(book, venue || '/' || account) AS book, count(*) AS positions
                   FROM utl.positions WHERE landing = %(landing)s AND business_date = %(day)s GROUP BY 1),
             l AS (SELECT book, sum(realized_pnl) AS realized_pnl, sum(unrealized_pnl) AS unrealized_pnl,
                          sum(fees) AS fees, sum(total_pnl) AS total_pnl
                   FROM utl.pnl WHERE landing = %(landing)s AND business_date = %(day)s GROUP BY book),
             e AS (SELECT book, net_value, gross_value, unpriced FROM utl.exposure_book
                   WHERE landing = %(landing)s AND business_date = %(day)s)
        SELECT coalesce(p.book, l.book, e.book) AS book, coalesce(p.positions, 0) AS positions,
               l.realized_pnl, l.unrealized_pnl, l.fees, l.total_pnl,
               e.net_value, e.gross_value, coalesce(e.unpriced, false) AS unpriced
        FROM p FULL JOIN l ON l.book = p.book FULL JOIN e ON e.book = coalesce(p.book, l.book)
        ORDER BY 1
        """, {"day": day, "landing": landing})
    return [BookLine(r["book"], r["positions"], r["realized_pnl"], r["unrealized_pnl"], r["fees"], r["total_pnl"],
                     r["net_value"], r["gross_value"], r["unpriced"]) for r in rows]


def _breaks(conn: psycopg.Connection, day: dt.date, settings: Settings, landing: str | None) -> list[BreakLine]:
    rows = _rows(conn, "SELECT venue, account, asset, kind, ledger_qty, venue_qty, diff, mark, diff_value, first_seen, "
                       "subject FROM utl.breaks WHERE landing = %(landing)s AND business_date = %(day)s",
                 {"day": day, "landing": landing})
    lines = []
    for r in rows:
        age = (day - r["first_seen"]).days
        escalated = is_escalated(age, r["diff_value"], settings.escalate_after_days, settings.escalate_value)
        lines.append(BreakLine(**r, age_days=age, escalated=escalated))
    return lines


def _derivatives(conn: psycopg.Connection, day: dt.date, settings: Settings, landing: str | None) -> list[DerivativeLine]:
    rows = _rows(conn, """
        SELECT venue, account, instrument, settle_asset, qty, venue_qty, entry_price, venue_entry_price, mark,
               unrealized_pnl, unrealized_pnl_usd, realized_pnl, funding, fees, delta
        FROM utl.derivative_positions WHERE landing = %(landing)s AND business_date = %(day)s
        """, {"day": day, "landing": landing})
    lines = [DerivativeLine(book=settings.book_of(r["venue"], r["account"]), **r) for r in rows]
    return sorted(lines, key=lambda d: (d.book, d.venue, d.account, d.instrument))


def _cleared(conn: psycopg.Connection, day: dt.date, landing: str | None) -> list[ClearedLine]:
    rows = _rows(conn, """
        SELECT h.venue, h.account, h.asset, h.first_seen, h.last_seen, b.diff AS last_diff, b.diff_value AS last_diff_value
        FROM utl.break_history h
        LEFT JOIN utl.breaks b ON b.landing = h.landing AND b.business_date = h.last_seen AND b.venue = h.venue
                               AND b.account = h.account AND b.asset = h.asset
        WHERE h.landing = %(landing)s AND h.cleared_on = %(day)s
        ORDER BY h.venue, h.account, h.asset
        """, {"day": day, "landing": landing})
    return [ClearedLine(**r) for r in rows]


def _quarantine(conn: psycopg.Connection, day: dt.date, landing: str | None) -> list[QuarantineLine]:
    # The run replaces the quarantine whole and most refused rows have no date of their
    # own, so a date's report lists the undated rows too.
    rows = _rows(conn, """
        SELECT file, "row", "column", reason FROM utl.quarantine
        WHERE landing = %(landing)s AND (business_date = %(day)s OR business_date IS NULL)
        ORDER BY file, "row" NULLS FIRST, "column" NULLS FIRST, reason
        """, {"day": day, "landing": landing})
    return [QuarantineLine(**r) for r in rows]


def read_exceptions(conn: psycopg.Connection, day: dt.date, landing: str | None) -> list[ExceptionLine]:
    """A landing's ledger exceptions of a date, largest value at mark first (unpriced last: unknown, not zero)."""
    rows = _rows(conn, "SELECT venue, account, asset, kind, quantity, value, first_seen, first_ts, age_days, refs "
                       "FROM utl.exceptions WHERE landing = %(landing)s AND business_date = %(day)s",
                 {"day": day, "landing": landing})
    lines = [ExceptionLine(**r) for r in rows]
    return sorted(lines, key=lambda e: (e.value is None, -abs(e.value or 0), e.kind, e.venue, e.account, e.asset))


def _failed_checks(conn: psycopg.Connection, day: dt.date, landing: str | None) -> list[CheckLine]:
    rows = _rows(conn, "SELECT check_name, asset, severity, description FROM utl.check_results "
                       "WHERE landing = %(landing)s AND business_date = %(day)s AND NOT passed "
                       "ORDER BY severity, check_name", {"day": day, "landing": landing})
    return [CheckLine(**r) for r in rows]
