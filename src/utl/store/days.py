"""One business date into PostgreSQL, alone and atomically (the run is a fold over days).

``write_day`` replaces every row of one date of one landing folder (positions, derivative
positions, breaks, the breaks it cleared, the accounts it reconciled, PnL, explain, exposure, that date's
quarantine and ledger exceptions) and records the date in ``utl.day_runs`` with the
fingerprint of the inputs it was computed from, all in ONE transaction: a rerun of a date
replaces it and never duplicates it; a crash leaves the previous version whole.

Every row carries its landing folder (``landing``, 008_landing_keys), named as
``utl.day_runs`` and ``utl.runs`` name it: :func:`utl.home.landing_key`. Two landing folders run into
one shared database keep their own dates, quarantine and break history: a write replaces
the slice of its own landing and nothing of another's.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import psycopg
from psycopg import sql

from utl.home import landing_key
from utl.store.write import replace_rows

if TYPE_CHECKING:  # only named in annotations: readers of the tables need not load the day's engine
    from utl.day import DayOutputs

DAY_TABLES = ("positions", "breaks", "pnl", "pnl_explain", "exposure_asset", "exposure_venue", "exposure_book",
              "derivative_positions")
LANDING_TABLES = (*DAY_TABLES, "cleared_breaks", "reconciled", "quarantine", "exceptions", "check_results")
"""Every table whose rows belong to one landing folder's date (``landing`` in their key)."""


def _keyed(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    return frame.with_columns(landing=pl.lit(key, pl.String))


def write_day(conn: psycopg.Connection, landing: Path, outputs: DayOutputs, quarantine: pl.DataFrame,
              fingerprint: str, *, run_id: int | None = None, dagster_run: str | None = None) -> int:
    """Replace ``landing``'s rows of ``outputs.business_date``; return how many rows were written.

    ``quarantine``: the refused rows that belong to the date (DATED_QUARANTINE).
    """
    day = outputs.business_date
    key = landing_key(landing)
    where = {"landing": key, "business_date": day}
    written = 0
    with conn.transaction():
        for name in DAY_TABLES:
            written += replace_rows(conn, f"utl.{name}", _keyed(getattr(outputs, name), key), where=where)
        cleared = outputs.cleared.select("venue", "account", "asset", "first_seen",
                                         *(["subject"] if "subject" in outputs.cleared.columns else []),
                                         business_date=pl.col("cleared_on"))
        written += replace_rows(conn, "utl.cleared_breaks", _keyed(cleared, key), where=where)
        reconciled = outputs.reconciled.select("venue", "account", business_date=pl.lit(day, pl.Date))
        written += replace_rows(conn, "utl.reconciled", _keyed(reconciled, key), where=where)
        written += replace_rows(conn, "utl.quarantine", _keyed(quarantine, key), where=where)
        written += replace_rows(conn, "utl.exceptions", _keyed(outputs.exceptions, key), where=where)  # ledger.md
        conn.execute(
            """
            INSERT INTO utl.day_runs (landing, business_date, fingerprint, run_id, dagster_run, legs)
            VALUES (%(landing)s, %(day)s, %(fingerprint)s, %(run_id)s, %(dagster_run)s, %(legs)s)
            ON CONFLICT (landing, business_date) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
                run_id = EXCLUDED.run_id, dagster_run = EXCLUDED.dagster_run, legs = EXCLUDED.legs,
                written_at = now()
            """,
            {"landing": key, "day": day, "fingerprint": fingerprint, "run_id": run_id,
             "dagster_run": dagster_run, "legs": outputs.legs},
        )
    return written


def read_derivative_positions(conn: psycopg.Connection, landing: Path, day: dt.date) -> pl.DataFrame:
    """``landing``'s ``utl.derivative_positions`` rows of ``day`` (DERIVATIVE_POSITIONS), exact."""
    from utl.derivatives.schemas import DERIVATIVE_POSITIONS
    from utl.store.read import read_frame

    columns = sql.SQL(", ").join(map(sql.Identifier, DERIVATIVE_POSITIONS.names()))
    query = sql.SQL("SELECT {} FROM utl.derivative_positions WHERE landing = %(landing)s AND business_date = %(day)s "
                    "ORDER BY venue, account, instrument").format(columns)
    frame = read_frame(conn, query, {"landing": landing_key(landing), "day": day})
    return frame.select(DERIVATIVE_POSITIONS.names()).cast(DERIVATIVE_POSITIONS) if frame.height \
        else DERIVATIVE_POSITIONS.to_frame()


def write_undated_quarantine(conn: psycopg.Connection, landing: Path, quarantine: pl.DataFrame) -> int:
    """Replace ``landing``'s refused rows whose business date is unknown (a whole-file
    refusal, a row of a trades export): they belong to the landing, not to a date."""
    key = landing_key(landing)
    return replace_rows(conn, "utl.quarantine", _keyed(quarantine, key),
                        where={"landing": key, "business_date": None})


def written_days(conn: psycopg.Connection, landing: Path) -> dict[dt.date, str]:
    """The dates written for ``landing``, with the fingerprint each was written from."""
    rows = conn.execute("SELECT business_date, fingerprint FROM utl.day_runs WHERE landing = %s",
                        (landing_key(landing),)).fetchall()
    return {day: fingerprint for day, fingerprint in rows}


def remove_days_before(conn: psycopg.Connection, landing: Path, first: dt.date) -> list[dt.date]:
    """Remove ``landing``'s dates before its first business date ``first``: a run no longer
    covers them (the earliest snapshot that opened them is gone). Other landings' rows of
    the same dates stay. Returns the dates that were written and are now removed."""
    key = landing_key(landing)
    with conn.transaction():
        removed = conn.execute(
            "DELETE FROM utl.day_runs WHERE landing = %s AND business_date < %s RETURNING business_date",
            (key, first)).fetchall()
        for name in LANDING_TABLES:
            conn.execute(sql.SQL("DELETE FROM {} WHERE landing = %s AND business_date < %s").format(
                sql.Identifier("utl", name)), (key, first))
    return sorted(row[0] for row in removed)


def last_written_landing(conn: psycopg.Connection) -> Path | None:
    """The landing folder written into this database last (a date written by ``utl eod`` or
    the Dagster assets), else the one of the latest recorded run; None when nothing ran."""
    row = conn.execute(
        """
        SELECT landing FROM (
            (SELECT landing, 1 AS rank FROM utl.day_runs ORDER BY written_at DESC, business_date DESC LIMIT 1)
            UNION ALL
            (SELECT landing, 2 FROM utl.runs WHERE landing IS NOT NULL ORDER BY run_id DESC LIMIT 1)
        ) AS found ORDER BY rank LIMIT 1
        """).fetchone()
    return Path(row[0]) if row else None


def write_checks(conn: psycopg.Connection, landing: Path, day: dt.date,
                 results: list[tuple[str, str, str, bool, str]]) -> None:
    """Record ``landing``'s latest result of each check of ``day``: (name, asset, severity, passed, description)."""
    key = landing_key(landing)
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO utl.check_results (landing, business_date, check_name, asset, severity, passed, description)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (landing, business_date, check_name) DO UPDATE SET asset = EXCLUDED.asset,
                severity = EXCLUDED.severity, passed = EXCLUDED.passed, description = EXCLUDED.description,
                checked_at = now()
            """,
            [(key, day, *result) for result in results],
        )
