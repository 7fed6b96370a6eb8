"""What a run of ``utl eod`` decides and records, apart from how the dates are executed.

The run is a fold over dates (:mod:`utl.day`). Which dates need running: from the first
business date through D, every date from the earliest one that is missing from the
database, was written from other inputs than the landing holds now (its fingerprint,
:mod:`utl.memory`), or has no carried state to start the next date from. Each date starts
from the one before, so everything after that date runs again too; nothing before it does.

Every attempt is a row of ``utl.runs`` with its status and message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg

from utl.home import landing_key


class RunError(RuntimeError):
    """The run could not complete (no landing folder, nothing to run, a missing mark...)."""


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    dates: list[dt.date]  # every business date through D
    ran: list[dt.date]  # the dates this run materialized (missing, failed or stale)
    breaks: int  # open on the last date
    quarantined: int  # refused rows of the landing through D
    storage: Path


def refuse_unknown_files(unknown: pl.DataFrame, strict: str) -> None:
    """``[strict] unknown_files = "fail"``: a file no single reader takes (none recognises it,
    or two claim it) stops the run (one line naming the first such file and why)."""
    if strict != "fail" or unknown.height == 0:
        return
    first = unknown.row(0, named=True)
    more = f" (and {unknown.height - 1} more)" if unknown.height > 1 else ""
    raise RunError(f'{first["file"]}{more}: {first["reason"]}; [strict] unknown_files = "fail" stops the run')


def business_dates(first: dt.date, through: dt.date) -> list[dt.date]:
    if through < first:
        raise RunError(f"{through.isoformat()} is before the first business date {first.isoformat()}")
    return [first + dt.timedelta(days=i) for i in range((through - first).days + 1)]


def dates_to_run(dates: list[dt.date], fingerprint: Callable[[dt.date], str], written: dict[dt.date, str],
                 has_state: Callable[[dt.date], bool]) -> list[dt.date]:
    """The dates to run, in order: from the first that is missing, stale or without state.
    A date's fingerprint is asked for only when it is written and has its state (computing
    it reads the date's rows)."""
    for i, day in enumerate(dates):
        if day not in written or not has_state(day) or written[day] != fingerprint(day):
            return dates[i:]
    return []


def start_run(conn: psycopg.Connection, landing: Path, through: dt.date) -> int:
    row = conn.execute(
        "INSERT INTO utl.runs (started_at, landing, through_date, status) VALUES (now(), %(landing)s, %(through)s, 'running') "
        "RETURNING run_id",
        {"landing": landing_key(landing), "through": through},
    ).fetchone()
    return int(row[0])


INTERRUPTED = "the process ended before the run recorded an outcome (Ctrl-C, kill, or a lost connection)"


def mark_interrupted(conn: psycopg.Connection) -> list[int]:
    """Mark the runs left 'running' by a process that is gone as 'interrupted'; their ids.

    Call it holding the run lock (:func:`utl.store.run_lock`): a live run holds that lock for
    its whole length, so any 'running' row seen by the lock's holder is a dead one."""
    rows = conn.execute(
        "UPDATE utl.runs SET status = 'interrupted', finished_at = now(), "
        "message = coalesce(message || '; ', '') || %(why)s WHERE status = 'running' RETURNING run_id",
        {"why": INTERRUPTED},
    ).fetchall()
    return sorted(int(r[0]) for r in rows)


def finish_run(conn: psycopg.Connection, run_id: int, status: str, message: str) -> None:
    conn.execute(
        "UPDATE utl.runs SET finished_at = now(), status = %(status)s, message = %(message)s WHERE run_id = %(run_id)s",
        {"status": status, "message": message, "run_id": run_id},
    )


def record_counts(conn: psycopg.Connection, run_id: int, summary: RunSummary, legs: int) -> None:
    """What the run did, kept with it for ``utl runs`` (006_ops)."""
    conn.execute(
        "UPDATE utl.runs SET dates_total = %(total)s, dates_run = %(run)s, first_run_date = %(first)s, "
        "legs = %(legs)s, breaks = %(breaks)s, quarantined = %(quarantined)s WHERE run_id = %(run_id)s",
        {"total": len(summary.dates), "run": len(summary.ran), "first": summary.ran[0] if summary.ran else None,
         "legs": legs, "breaks": summary.breaks, "quarantined": summary.quarantined, "run_id": run_id},
    )


def run_counts(conn: psycopg.Connection, landing: Path, through: dt.date) -> tuple[int, int]:
    """``landing``'s (breaks open on ``through``, refused rows of dates through it or of no date)."""
    key = landing_key(landing)
    breaks = conn.execute("SELECT count(*) FROM utl.breaks WHERE landing = %s AND business_date = %s",
                          (key, through)).fetchone()[0]
    quarantined = conn.execute(
        "SELECT count(*) FROM utl.quarantine WHERE landing = %s AND (business_date IS NULL OR business_date <= %s)",
        (key, through),
    ).fetchone()[0]
    return int(breaks), int(quarantined)
