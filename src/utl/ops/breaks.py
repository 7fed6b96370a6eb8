"""``utl breaks --date D``: what is broken on D, and why the answer may be empty.

Three different things look alike as "no rows in utl.breaks": no run covers D; accounts
were not reconciled on D (no snapshot), so their breaks are those of their last reconciled
date, carried; or nothing is broken. The answer says which. Each break carries its age in
days, its status (``new``: first seen on D; ``ageing``: older; ``cleared``: broken on the
account's previous reconciled date, not on D) and its value at mark; rows are sorted by
absolute value at mark, largest first, unpriced last (unknown, not zero).

A position break (012_derivatives: an instrument against its positions file) shows
``(position)`` beside its symbol.

Beside the balance breaks, a second section lists the date's ledger exceptions
(``utl.exceptions``, ledger.md): withdrawals in transit, missing acquisitions, external
deposits, fees of an assumed asset, each with its value at mark, age and source rows.

The CSV (``--format csv``) is the contract's: :func:`utl.report.data.breaks_csv`, byte for
byte, when no filter is given; it holds utl.breaks only. Every answer is one landing
folder's (``landing``, 008_landing_keys), whatever other landing folders share the database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
from psycopg.rows import dict_row

from utl.ops.coverage import Coverage, Unreconciled, coverage, reconciled_count, unreconciled_accounts
from utl.ops.table import render_table
from utl.report.data import ExceptionLine, breaks_csv, key_of, read_breaks, read_exceptions
from utl.report.formatting import money, quantity


@dataclass(frozen=True)
class Filters:
    venue: str | None = None
    account: str | None = None
    asset: str | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.venue, self.account, self.asset))

    def keeps(self, venue: str, account: str, asset: str) -> bool:
        return ((self.venue is None or venue == self.venue) and (self.account is None or account == self.account)
                and (self.asset is None or asset == self.asset))

    def describe(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in vars(self).items() if v is not None)


@dataclass(frozen=True)
class BreakRow:
    status: str  # new | ageing | cleared
    age_days: int  # business_date - first_seen
    venue: str
    account: str
    asset: str
    kind: str | None  # None for a cleared break whose last row is gone
    ledger_qty: Decimal | None
    venue_qty: Decimal | None
    diff: Decimal | None
    diff_value: Decimal | None  # at mark; None when unpriced, never zero
    first_seen: dt.date
    as_of: dt.date  # the date of the row: D, the last reconciled date (carried) or the last broken one (cleared)
    subject: str = "balance"  # position: an instrument against its positions file (012_derivatives)


@dataclass(frozen=True)
class BreaksAnswer:
    business_date: dt.date
    coverage: Coverage
    filters: Filters
    breaks: list[BreakRow] = field(default_factory=list)  # open on D, accounts reconciled on D
    carried: list[BreakRow] = field(default_factory=list)  # open, of accounts not reconciled on D
    cleared: list[BreakRow] = field(default_factory=list)
    unreconciled: list[Unreconciled] = field(default_factory=list)
    reconciled: int = 0  # accounts reconciled on D
    exceptions: list[ExceptionLine] = field(default_factory=list)  # utl.exceptions of D (ledger.md)


def answer_breaks(conn: psycopg.Connection, day: dt.date, landing: Path | None,
                  filters: Filters = Filters()) -> BreaksAnswer:
    covered = coverage(conn, day, landing)
    if not covered.covered:
        return BreaksAnswer(day, covered, filters)
    key = key_of(landing)
    unreconciled = [u for u in unreconciled_accounts(conn, day, landing)
                    if (filters.venue in (None, u.venue)) and (filters.account in (None, u.account))]
    carried = [b for u in unreconciled if u.last_reconciled
               for b in _open_breaks(conn, key, day, u.last_reconciled, u)]

    def keep(rows: list[BreakRow]) -> list[BreakRow]:
        return [b for b in rows if filters.keeps(b.venue, b.account, b.asset)]

    return BreaksAnswer(day, covered, filters, breaks=_by_value(keep(_open_breaks(conn, key, day, day, None))),
                        carried=_by_value(keep(carried)), cleared=_by_value(keep(_cleared(conn, key, day))),
                        unreconciled=unreconciled, reconciled=reconciled_count(conn, day, landing),
                        exceptions=[e for e in read_exceptions(conn, day, key)
                                    if filters.keeps(e.venue, e.account, e.asset)])


def filtered_csv(conn: psycopg.Connection, day: dt.date, filters: Filters, landing: Path | None) -> str:
    """The contract's CSV of ``landing``'s ``day``; with filters, the same text keeping the matching rows."""
    if not filters:
        return breaks_csv(conn, day, landing)
    frame = read_breaks(conn, day, landing)
    for column in ("venue", "account", "asset"):
        value = getattr(filters, column)
        if value is not None:
            frame = frame.filter(pl.col(column) == value)
    return frame.write_csv()


def _rows(conn: psycopg.Connection, query: str, params: dict) -> list[dict]:
    with conn.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()


def _open_breaks(conn: psycopg.Connection, landing: str | None, day: dt.date, as_of: dt.date,
                 account: Unreconciled | None) -> list[BreakRow]:
    rows = _rows(conn, """
        SELECT venue, account, asset, kind, ledger_qty, venue_qty, diff, diff_value, first_seen, subject FROM utl.breaks
        WHERE landing = %(landing)s AND business_date = %(as_of)s
          AND (%(venue)s::text IS NULL OR (venue = %(venue)s AND account = %(account)s))
        """, {"landing": landing, "as_of": as_of, "venue": account.venue if account else None,
              "account": account.account if account else None})
    return [BreakRow("new" if r["first_seen"] == day else "ageing", (day - r["first_seen"]).days, as_of=as_of, **r)
            for r in rows]


def _cleared(conn: psycopg.Connection, landing: str | None, day: dt.date) -> list[BreakRow]:
    # The cleared break's last row as a break: its last date before D with that first_seen.
    rows = _rows(conn, """
        SELECT c.venue, c.account, c.asset, c.first_seen, c.subject, b.kind, b.ledger_qty, b.venue_qty, b.diff, b.diff_value,
               coalesce(b.business_date, c.first_seen) AS as_of
        FROM utl.cleared_breaks c
        LEFT JOIN LATERAL (SELECT * FROM utl.breaks x
                           WHERE x.landing = c.landing AND x.venue = c.venue AND x.account = c.account
                             AND x.asset = c.asset AND x.first_seen = c.first_seen
                             AND x.business_date < c.business_date
                           ORDER BY x.business_date DESC LIMIT 1) b ON true
        WHERE c.landing = %(landing)s AND c.business_date = %(day)s
        """, {"landing": landing, "day": day})
    return [BreakRow("cleared", (day - r["first_seen"]).days, **r) for r in rows]


def _by_value(rows: list[BreakRow]) -> list[BreakRow]:
    return sorted(rows, key=lambda b: (b.diff_value is None, -abs(b.diff_value or 0), b.venue, b.account, b.asset))


_HEADER = ("status", "age", "venue", "account", "asset", "diff", "value at mark", "ledger_qty", "venue_qty",
           "first_seen", "as of")
_RIGHT = ("age", "diff", "value at mark", "ledger_qty", "venue_qty")


def _cells(b: BreakRow) -> tuple[str, ...]:
    asset = f"{b.asset} (position)" if b.subject == "position" else b.asset
    return (b.status, str(b.age_days), b.venue, b.account, asset, quantity(b.diff), money(b.diff_value),
            quantity(b.ledger_qty), quantity(b.venue_qty), b.first_seen.isoformat(), b.as_of.isoformat())


def format_breaks(answer: BreaksAnswer, landing: Path | None = None) -> str:
    """The answer for a terminal: what covers the date, then the breaks by value at mark."""
    day = answer.business_date.isoformat()
    where = f" ({answer.filters.describe()})" if answer.filters else ""
    cov = answer.coverage
    if not cov.covered:
        of = f" of {landing}" if landing is not None else ""
        held = (f"this database holds {cov.first.isoformat()} to {cov.last.isoformat()}{of}" if cov.first
                else f"nothing{of} has been run against this database yet")
        rerun = f"utl eod --landing {landing or 'LANDING'} --date {day}"
        return f"no run covers {day}: {held}; `{rerun}` runs it"
    lines = []
    open_now = answer.breaks
    new = sum(b.status == "new" for b in open_now)
    lines.append(f"breaks on {day}{where}: {len(open_now)} open ({new} new, {len(open_now) - new} ageing), "
                 f"{len(answer.cleared)} cleared; {answer.reconciled} accounts reconciled"
                 + (f", {len(answer.unreconciled)} not" if answer.unreconciled else ""))
    if not cov.reconciled_known:
        lines.append(f"  {day} was written before reconciled accounts were recorded: rerun `utl eod` to know "
                     f"which accounts had no snapshot")
    if answer.unreconciled:
        n = len(answer.unreconciled)
        lines.append(f"{n} {'account' if n == 1 else 'accounts'} not reconciled on {day} (no snapshot), "
                     f"open breaks carried from their last reconciled date:")
        for u in answer.unreconciled:
            carried = sum(b.venue == u.venue and b.account == u.account for b in answer.carried)
            since = (f"last reconciled {u.last_reconciled.isoformat()}, {carried} open "
                     f"{'break' if carried == 1 else 'breaks'} carried") if u.last_reconciled else "never reconciled"
            lines.append(f"  {u.name}: {since}")
    rows = [*open_now, *answer.carried, *answer.cleared]
    if not rows:
        lines.append(f"no breaks on {day}{where}" + ("" if answer.unreconciled else
                                                      ": every account with positions reconciled, none broken"))
    else:
        lines.append(render_table(_HEADER, [_cells(b) for b in _by_value(rows)], right=_RIGHT))
    lines.append("")
    lines.extend(format_exceptions(answer.exceptions, day, where))
    return "\n".join(lines)


_EXCEPTION_HEADER = ("kind", "age", "venue", "account", "asset", "quantity", "value at mark", "first_seen", "since",
                     "rows")


def format_exceptions(rows: list[ExceptionLine], day: str, where: str = "") -> list[str]:
    """The second section: the date's ledger exceptions (ledger.md), largest value first."""
    if not rows:
        return [f"ledger exceptions on {day}{where}: none (no transfer in transit, no missing acquisition, "
                f"no external deposit, no fee of an assumed asset)"]
    counts = ", ".join(f"{sum(e.kind == k for e in rows)} {k}" for k in sorted({e.kind for e in rows}))
    cells = [(e.kind, "" if e.age_days is None else str(e.age_days), e.venue, e.account, e.asset, quantity(e.quantity),
              money(e.value), e.first_seen.isoformat(), e.first_ts.strftime("%Y-%m-%d %H:%M") if e.first_ts else "",
              e.refs) for e in rows]
    return [f"ledger exceptions on {day}{where}: {counts}",
            render_table(_EXCEPTION_HEADER, cells, right=("age", "quantity", "value at mark"))]

