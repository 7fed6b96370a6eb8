"""``utl runs``: every recorded run of ``utl eod``, newest first, with what it did.

The counts are those the run recorded when it completed (006_ops); a run that failed, is
still running, or predates them shows none.
"""

from __future__ import annotations

import polars as pl
import psycopg

from utl.ops.table import render_table
from utl.report.formatting import MISSING
from utl.store import read_frame


def read_runs(conn: psycopg.Connection, landing: str | None = None, limit: int | None = None) -> pl.DataFrame:
    return read_frame(conn, """
        SELECT run_id, landing, through_date, first_run_date, dates_run, dates_total, started_at, finished_at, status,
               legs, breaks, quarantined, report_status, message
        FROM utl.runs WHERE %(landing)s::text IS NULL OR landing = %(landing)s
        ORDER BY run_id DESC LIMIT %(limit)s
        """, {"landing": landing, "limit": limit})


def _text(value: object) -> str:
    return MISSING if value is None else str(value)


def _when(value) -> str:
    return MISSING if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _dates(r: dict) -> str:
    if r["dates_run"] is None:
        return f"through {r['through_date']}" if r["through_date"] else MISSING
    if r["dates_run"] == 0:
        return f"none run, all {r['dates_total']} up to date through {r['through_date']}"
    return f"{r['first_run_date']}..{r['through_date']} ({r['dates_run']} of {r['dates_total']} run)"


def format_runs(frame: pl.DataFrame) -> str:
    if frame.height == 0:
        return "no runs recorded in this database"
    rows = [(str(r["run_id"]), r["status"], _dates(r), _when(r["started_at"]), _when(r["finished_at"]),
             _text(r["legs"]), _text(r["breaks"]), _text(r["quarantined"]), _text(r["report_status"]),
             _text(r["landing"]), (r["message"] or "").splitlines()[0] if r["message"] else "")
            for r in frame.iter_rows(named=True)]
    header = ("run", "status", "dates", "started (UTC)", "finished (UTC)", "legs", "breaks", "quarantined", "report",
              "landing", "message")
    return render_table(header, rows, right=("run", "legs", "breaks", "quarantined"))
