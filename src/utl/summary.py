"""What ``utl eod`` prints when it is done: a short summary a person reads in a terminal.

Read from PostgreSQL, like the report, so it shows what the tables hold: per book the
positions, PnL and exposure in the reporting currency with two places; breaks open on the
date by age band with the largest of each by value; the accounts not reconciled that day (no
snapshot: their breaks are carried, not counted as open); the accounts not booked at all
(no snapshot ever); the quarantine by file; whether the report went out; and where to look
next.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import psycopg

from utl.fee_assumed import ADVICE
from utl.ops.coverage import Unreconciled, carried_counts, unreconciled_accounts
from utl.report.data import BreakLine, QuarantineLine, ReportData, load_report_data
from utl.report.deliver import ReportOutcome
from utl.report.formatting import money, quantity
from utl.settings import Settings
from utl.venues.base import UNKNOWN_FORMAT, is_layout_refusal

# (label, lowest age, highest age) in days since first seen; None: no upper end.
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("new", 0, 0), ("1-3 days", 1, 3), ("4-7 days", 4, 7), ("over 7 days", 8, None))

_BOOK_COLUMNS = ("positions", "realized", "unrealized", "fees", "total PnL", "net exposure", "gross exposure")


def run_summary(conn: psycopg.Connection, business_date: dt.date, settings: Settings,
                report: ReportOutcome | None = None, run_id: int | None = None, *, landing: Path | None,
                fee_assumed: list[str] = ()) -> str:
    """The summary of ``landing``'s ``business_date`` as lines of text (no trailing newline).
    ``fee_assumed``: accounts whose fees' asset is assumed (:mod:`utl.fee_assumed`)."""
    unreconciled = unreconciled_accounts(conn, business_date, landing)
    return format_summary(load_report_data(conn, business_date, settings, run_id, landing=landing), report,
                          unreconciled, carried_counts(conn, unreconciled, landing), fee_assumed)


# The reason prepare/LandingMemory give the legs of an account that has no snapshot at all.
_NOT_BOOKED = re.compile(r"account (\S+) has no balance snapshot")


def format_summary(data: ReportData, report: ReportOutcome | None,
                   unreconciled: list[Unreconciled] = (), carried: dict[str, int] | None = None,
                   fee_assumed: list[str] = ()) -> str:
    day = data.business_date.isoformat()
    lines = [f"Summary of {day} (amounts in {data.reporting_currency}):", *_book_table(data), ""]
    lines.append(f"breaks: {data.open_breaks} open, {len(data.new_breaks)} new, {len(data.cleared)} cleared today"
                 + (f", ESCALATED (older than {data.escalate_after_days} days or over "
                    f"{money(data.escalate_value)} {data.reporting_currency})" if data.escalated else ""))
    breaks = [*data.new_breaks, *data.ageing_breaks]
    for label, low, high in AGE_BANDS:
        band = [b for b in breaks if b.age_days >= low and (high is None or b.age_days <= high)]
        largest = f"   largest: {_describe(max(band, key=_value_rank), data.reporting_currency)}" if band else ""
        lines.append(f"  {label:<12}{len(band):>4}{largest}")
    if unreconciled:
        lines.append(f"not reconciled on {day} (no snapshot; their breaks are carried, not counted above): "
                     + ", ".join(u.name + (f" (last reconciled {u.last_reconciled.isoformat()}, "
                                           f"{(carried or {}).get(u.name, 0)} breaks carried)"
                                           if u.last_reconciled else " (never reconciled)") for u in unreconciled))
    lines.extend(_exception_lines(data))
    not_booked = sorted({m.group(1) for q in data.quarantine if (m := _NOT_BOOKED.search(q.reason))})
    if not_booked:
        lines.append(f"not booked (no balance snapshot, so no opening state): {', '.join(not_booked)}")
    if fee_assumed:
        lines.append(f"fee asset assumed (a trades export alone does not say which asset each fee was charged in; "
                     f"{ADVICE}): {', '.join(fee_assumed)}")
    lines.extend(unknown_layout_lines(data.quarantine))
    lines.extend(_quarantine_lines(data.quarantine))
    if data.failed_checks:
        lines.append(f"failed asset checks: {len(data.failed_checks)}")
    if report is not None:
        lines.append(report.line)
    lines.append(f"next: utl breaks --date {day} | utl quarantine --date {day} | utl report --date {day} --out report-{day}.html | utl ui")
    return "\n".join(lines)


def _exception_lines(data: ReportData) -> list[str]:
    """Ledger exceptions (utl.exceptions): a count per kind, then each with its value at mark."""
    if not data.exceptions:
        return ["ledger exceptions: none (no transfer in transit, no missing acquisition, no external deposit, "
                "no fee of an assumed asset)"]
    kinds = Counter(e.kind for e in data.exceptions)
    lines = ["ledger exceptions: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))]
    for e in data.exceptions:
        value = f"{money(e.value)} {data.reporting_currency}" if e.value is not None else "unpriced"
        age = f", {e.age_days} days old" if e.age_days is not None else ""
        lines.append(f"  {e.kind:<20}{e.venue}/{e.account} {e.asset} {quantity(e.quantity)} ({value}), "
                     f"since {e.first_seen.isoformat()}{age}")
    return lines


def unknown_layout_lines(rows: list[QuarantineLine]) -> list[str]:
    """Files no single reader takes: each with the header seen and its nearest known layout,
    or with the readers that both claim it."""
    unknown = [q for q in rows if q.row is None and is_layout_refusal(q.reason)]
    if not unknown:
        return []
    lines = [f"unknown layouts: {len(unknown)} {'file' if len(unknown) == 1 else 'files'} no single reader takes "
             f"(quarantined whole; [strict] unknown_files = \"fail\" stops the run instead):"]
    lines += [f"  {q.file}: {q.reason.removeprefix(UNKNOWN_FORMAT).removeprefix('; ')}" for q in unknown]
    return lines


def _quarantine_lines(rows: list[QuarantineLine]) -> list[str]:
    n = len(rows)
    by_file = Counter(q.file for q in rows)
    lines = [f"quarantine: {n} {'row' if n == 1 else 'rows'} refused"
             + (f" in {len(by_file)} {'file' if len(by_file) == 1 else 'files'}:" if n else "")]
    lines += [f"  {count:>4}  {file}" for file, count in sorted(by_file.items())]
    return lines


def _book_table(data: ReportData) -> list[str]:
    if not data.books:
        return ["  no positions on this date"]
    rows = [(b.book, str(b.positions), money(b.realized_pnl), money(b.unrealized_pnl), money(b.fees),
             money(b.total_pnl), money(b.net_exposure), money(b.gross_exposure)) for b in data.books]
    header = ("book", *_BOOK_COLUMNS)
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r))
            for r in (header, *rows)]


def _value_rank(b: BreakLine) -> tuple[bool, object]:
    # Largest by absolute value at mark; an unpriced break ranks below any priced one.
    return (b.diff_value is not None, abs(b.diff_value) if b.diff_value is not None else 0)


def _describe(b: BreakLine, currency: str) -> str:
    value = f"{money(b.diff_value)} {currency}" if b.diff_value is not None else "unpriced"
    flag = " [ESCALATED]" if b.escalated else ""
    return f"{b.venue}/{b.account} {b.asset} diff {quantity(b.diff)} ({value}), since {b.first_seen.isoformat()}{flag}"
