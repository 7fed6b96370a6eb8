"""One business date into PostgreSQL, alone and atomically (the run is a fold over days).

``write_day`` replaces every row of one date (positions, breaks, the breaks it cleared,
the accounts it reconciled, PnL, explain, exposure, that date's quarantine and ledger
exceptions) and records the date in ``utl.day_runs``
with the fingerprint of the inputs it was computed from, all in ONE transaction: a rerun
of a date replaces it and never duplicates it; a crash leaves the previous version whole.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import psycopg

from utl.day import DayOutputs
from utl.store.write import replace_rows

DAY_TABLES = ("positions", "breaks", "pnl", "pnl_explain", "exposure_asset", "exposure_venue", "exposure_book")


def write_day(conn: psycopg.Connection, landing: Path, outputs: DayOutputs, quarantine: pl.DataFrame,
              fingerprint: str, *, run_id: int | None = None, dagster_run: str | None = None) -> int:
    """Replace ``outputs.business_date``'s rows; return how many rows were written.

    ``quarantine``: the refused rows that belong to the date (DATED_QUARANTINE).
    """
    day = outputs.business_date
    where = {"business_date": day}
    written = 0
    with conn.transaction():
        for name in DAY_TABLES:
            written += replace_rows(conn, f"utl.{name}", getattr(outputs, name), where=where)
        cleared = outputs.cleared.select("venue", "account", "asset", "first_seen",
                                         business_date=pl.col("cleared_on"))
        written += replace_rows(conn, "utl.cleared_breaks", cleared, where=where)
        reconciled = outputs.reconciled.select("venue", "account", business_date=pl.lit(day, pl.Date))
        written += replace_rows(conn, "utl.reconciled", reconciled, where=where)
        written += replace_rows(conn, "utl.quarantine", quarantine, where=where)
        written += replace_rows(conn, "utl.exceptions", outputs.exceptions, where=where)  # ledger.md
        conn.execute(
            """
            INSERT INTO utl.day_runs (landing, business_date, fingerprint, run_id, dagster_run, legs)
            VALUES (%(landing)s, %(day)s, %(fingerprint)s, %(run_id)s, %(dagster_run)s, %(legs)s)
            ON CONFLICT (landing, business_date) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                run_id = EXCLUDED.run_id, dagster_run = EXCLUDED.dagster_run, legs = EXCLUDED.legs,
                written_at = now()
            """,
            {"landing": str(landing.resolve()), "day": day, "fingerprint": fingerprint, "run_id": run_id,
             "dagster_run": dagster_run, "legs": outputs.legs},
        )
    return written


def write_undated_quarantine(conn: psycopg.Connection, quarantine: pl.DataFrame) -> int:
    """Replace the refused rows whose business date is unknown (a whole-file refusal, a
    row of a trades export): they belong to the landing, not to a date."""
    return replace_rows(conn, "utl.quarantine", quarantine, where={"business_date": None})


def written_days(conn: psycopg.Connection, landing: Path) -> dict[dt.date, str]:
    """The dates written for ``landing``, with the fingerprint each was written from."""
    rows = conn.execute("SELECT business_date, fingerprint FROM utl.day_runs WHERE landing = %s",
                        (str(landing.resolve()),)).fetchall()
    return {day: fingerprint for day, fingerprint in rows}


def write_checks(conn: psycopg.Connection, day: dt.date, results: list[tuple[str, str, str, bool, str]]) -> None:
    """Record the date's latest result of each check: (name, asset, severity, passed, description)."""
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO utl.check_results (business_date, check_name, asset, severity, passed, description)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (business_date, check_name) DO UPDATE SET asset = EXCLUDED.asset,
                severity = EXCLUDED.severity, passed = EXCLUDED.passed, description = EXCLUDED.description,
                checked_at = now()
            """,
            [(day, *result) for result in results],
        )
