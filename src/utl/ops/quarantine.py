"""``utl quarantine``: the refused input rows, with the whole raw row.

A row carries the business date it belongs to where that is known (a snapshot or marks
file, a dated leg); a row of a trades export or a file no reader takes has none. ``--date D``
lists D's rows and the undated ones, as the report does: an undated row may belong to D.
The rows are one landing folder's (``landing``, 008_landing_keys), whatever other landing
folders share the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import polars as pl
import psycopg

from utl.ops.table import render_table
from utl.report.data import key_of
from utl.report.formatting import MISSING
from utl.store import read_frame

_HEADED = (".csv", ".tsv", ".txt")  # data row N is record N after a header line
_LINES = (".jsonl", ".ndjson")  # data row N is line N


def read_quarantine(conn: psycopg.Connection, landing: Path | None, day: dt.date | None = None,
                    file: str | None = None) -> pl.DataFrame:
    """``landing``'s refused rows, by file and row; ``file`` is a path relative to the landing
    or a folder of it."""
    return read_frame(conn, """
        SELECT business_date, file, "row", "column", reason, raw FROM utl.quarantine
        WHERE landing = %(landing)s AND (%(day)s::date IS NULL OR business_date = %(day)s OR business_date IS NULL)
          AND (%(file)s::text IS NULL OR file = %(file)s OR starts_with(file, %(folder)s))
        ORDER BY file, "row" NULLS FIRST, "column" NULLS FIRST, reason
        """, {"landing": key_of(landing), "day": day, "file": file,
              "folder": (file.rstrip("/") + "/") if file else None})


def with_raw_rows(frame: pl.DataFrame, landing: Path | None) -> pl.DataFrame:
    """Add ``raw_row``: the whole refused row as the file holds it (``raw`` is the refused
    value). Read from the landing folder where the file is still there and its row still
    holds that value; null otherwise (a whole file refused, a JSON document, a file since
    changed), never a guess."""
    cache: dict[str, list[str] | None] = {}
    found = []
    for file, row, raw in frame.select("file", "row", "raw").iter_rows():
        if file not in cache:
            cache[file] = _records(landing / file) if landing is not None else None
        records = cache[file]
        line = records[row - 1] if records is not None and row is not None and 0 < row <= len(records) else None
        found.append(line if line is not None and (raw is None or raw in line) else None)
    return frame.with_columns(raw_row=pl.Series(found, dtype=pl.String))


def _records(path: Path) -> list[str] | None:
    suffix = path.suffix.lower()
    if suffix not in (*_HEADED, *_LINES) or not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    if suffix in _LINES:
        return [line for line in text.splitlines() if line.strip()]
    delimiter = "\t" if suffix == ".tsv" else ","
    records = []
    for record in list(csv.reader(io.StringIO(text), delimiter=delimiter))[1:]:
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="").writerow(record)
        records.append(out.getvalue())
    return records


def format_quarantine(frame: pl.DataFrame, day: dt.date | None, file: str | None) -> str:
    scope = " ".join(s for s in ((f"of {day.isoformat()} or of no known date" if day else ""),
                                 (f"in {file}" if file else "")) if s)
    if frame.height == 0:
        return f"no refused rows{' ' + scope if scope else ''}"
    files = frame["file"].n_unique()
    head = (f"{frame.height} refused {'row' if frame.height == 1 else 'rows'} in {files} "
            f"{'file' if files == 1 else 'files'}{' ' + scope if scope else ''}:")
    rows = [(r["business_date"].isoformat() if r["business_date"] else MISSING, r["file"],
             str(r["row"]) if r["row"] is not None else MISSING, r["column"] or MISSING, r["reason"],
             r["raw_row"] or r["raw"] or MISSING)
            for r in frame.iter_rows(named=True)]
    return head + "\n" + render_table(("date", "file", "row", "column", "reason", "raw row"), rows, right=("row",))
