"""``utl eod``: the end-of-day run from a landing folder into PostgreSQL and Parquet.

Runs every business date from the first through the requested one (:mod:`utl.eod`), writes
each date's positions, lots, PnL and exposure as Parquet under the storage folder, and
brings PostgreSQL to the state of that complete run in ONE transaction: every date's rows
are replaced (never duplicated), the quarantine and break history are replaced whole, and
a crash at any point leaves the previous state as it was. Two runs against one database
take turns (an advisory lock).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg

from utl.day import DayOutputs
from utl.eod import Progress, RunError, prepare, run_dates
from utl.exposure import exposure_by_asset, exposure_by_book, exposure_by_venue
from utl.storage import write_partition
from utl.store import Database, migrate, replace_rows, run_lock


@dataclass(frozen=True)
class RunSummary:
    run_id: int
    dates: list[dt.date]
    breaks: int
    quarantined: int
    storage: Path


def exposures(positions: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {
        "exposure_asset": exposure_by_asset(positions),
        "exposure_venue": exposure_by_venue(positions),
        "exposure_book": exposure_by_book(positions),
    }


def break_history(days: list[DayOutputs]) -> pl.DataFrame:
    """One row per unbroken run of a key's breaks, with the date it cleared (if it did)."""
    breaks = pl.concat([d.breaks for d in days]) if days else pl.DataFrame()
    if breaks.height == 0:
        return pl.DataFrame(schema={"venue": pl.String, "account": pl.String, "asset": pl.String,
                                    "first_seen": pl.Date, "last_seen": pl.Date, "cleared_on": pl.Date})
    runs = breaks.group_by("venue", "account", "asset", "first_seen").agg(pl.col("business_date").max().alias("last_seen"))
    gone = pl.concat([d.cleared for d in days]).select("venue", "account", "asset", "first_seen", "cleared_on")
    return runs.join(gone, on=["venue", "account", "asset", "first_seen"], how="left").sort(
        "venue", "account", "asset", "first_seen")


def run_eod(landing: Path, through: dt.date, storage: Path, database: Database, progress: Progress = lambda _: None) -> RunSummary:
    started = time.perf_counter()
    with database.connect() as conn:
        migrate(conn)
        with run_lock(conn):
            run_id = _start_run(conn, landing, through)
            try:
                summary = _run(conn, run_id, landing, through, storage, progress)
            except Exception as exc:
                _finish_run(conn, run_id, "failed", str(exc))
                raise
            _finish_run(conn, run_id, "completed", f"{len(summary.dates)} dates, {summary.breaks} breaks")
    progress(f"done: run {run_id}, {len(summary.dates)} dates through {through.isoformat()} in "
             f"{time.perf_counter() - started:.2f} s")
    return summary


def _run(conn: psycopg.Connection, run_id: int, landing: Path, through: dt.date, storage: Path,
         progress: Progress) -> RunSummary:
    prepared = prepare(landing, progress)
    days: list[DayOutputs] = []
    tables: dict[str, list[pl.DataFrame]] = {}
    for day in run_dates(prepared, through, progress):
        days.append(day)
        per_table = {name: getattr(day, name) for name in (
            "positions", "lots", "pnl", "pnl_explain", "breaks", "exposure_asset", "exposure_venue", "exposure_book")}
        for name, frame in per_table.items():
            if name != "breaks":
                write_partition(storage, name, day.business_date, frame)
            tables.setdefault(name, []).append(frame)
    started = time.perf_counter()
    dates = [d.business_date for d in days]
    written = 0
    with conn.transaction():
        for name in ("positions", "breaks", "pnl", "pnl_explain", "exposure_asset", "exposure_venue", "exposure_book"):
            written += replace_rows(conn, f"utl.{name}", pl.concat(tables[name]), where={"business_date": dates})
        quarantine = prepared.quarantine.with_columns(business_date=pl.lit(None, pl.Date))
        written += replace_rows(conn, "utl.quarantine", quarantine, where={})
        written += replace_rows(conn, "utl.break_history", break_history(days), where={})
    seconds = time.perf_counter() - started
    progress(f"postgres: {written} rows written in one transaction ({seconds:.2f} s, "
             f"{written / seconds if seconds else 0:,.0f} rows/s)")
    return RunSummary(run_id, dates, sum(d.breaks.height for d in days), prepared.quarantine.height, storage)


def _start_run(conn: psycopg.Connection, landing: Path, through: dt.date) -> int:
    row = conn.execute(
        "INSERT INTO utl.runs (started_at, landing, through_date, status) VALUES (now(), %(landing)s, %(through)s, 'running') "
        "RETURNING run_id",
        {"landing": str(landing.resolve()), "through": through},
    ).fetchone()
    return int(row[0])


def _finish_run(conn: psycopg.Connection, run_id: int, status: str, message: str) -> None:
    conn.execute(
        "UPDATE utl.runs SET finished_at = now(), status = %(status)s, message = %(message)s WHERE run_id = %(run_id)s",
        {"status": status, "message": message, "run_id": run_id},
    )


__all__ = ["RunError", "RunSummary", "run_eod", "break_history"]
