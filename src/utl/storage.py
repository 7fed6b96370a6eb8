"""The run's storage folder: one Parquet file per table and business date.

``<storage>/<table>/business_date=YYYY-MM-DD/part.parquet`` (Hive-style, so DuckDB reads
the date from the path). A rerun of a date overwrites its files; each file lands whole or
not at all (written aside, then renamed).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl


def partition_path(storage: Path, table: str, day: dt.date) -> Path:
    return storage / table / f"business_date={day.isoformat()}" / "part.parquet"


def write_partition(storage: Path, table: str, day: dt.date, frame: pl.DataFrame) -> Path:
    path = partition_path(storage, table, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(".part.parquet.partial")
    # The date lives in the path; a second copy inside the file would clash with it.
    frame.drop("business_date", strict=False).write_parquet(partial)
    os.replace(partial, path)
    return path
