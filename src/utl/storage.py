"""The run's storage folder: one Parquet file per table and business date.

``<storage>/<table>/business_date=YYYY-MM-DD/part.parquet`` (Hive-style, so DuckDB reads
the date from the path). A rerun of a date overwrites its files; each file lands whole or
not at all (written aside, then renamed). A date's files are first written to a staging
folder (:func:`staged`) and moved in only when the date's PostgreSQL transaction has
committed, so a failed or interrupted date leaves the previous files, not a half-new set.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import polars as pl


# zstd at level 1: the 10 M-fill day's 5 M open lots in 154 MB either way, written in 2.4 CPU
# s where the default level took 3.3.
PARQUET = {"compression": "zstd", "compression_level": 1}


def partition_path(storage: Path, table: str, day: dt.date) -> Path:
    return storage / table / f"business_date={day.isoformat()}" / "part.parquet"


def write_partition(storage: Path, table: str, day: dt.date, frame: pl.DataFrame | pl.LazyFrame) -> Path:
    """``frame`` as ``table``'s file of ``day``; a LazyFrame is streamed to the file (the
    day's open lots, millions of rows, are never held whole)."""
    path = partition_path(storage, table, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(".part.parquet.partial")
    # The date lives in the path; a second copy inside the file would clash with it.
    frame = frame.drop("business_date", strict=False)
    frame.sink_parquet(partial, **PARQUET) if isinstance(frame, pl.LazyFrame) else frame.write_parquet(partial, **PARQUET)
    os.replace(partial, path)
    return path


@contextlib.contextmanager
def staged(storage: Path, day: dt.date) -> Iterator[Path]:
    """A staging folder for ``day``'s files (write them with :func:`write_partition` into it).

    When the block ends normally, each staged file is renamed into ``storage`` (each rename
    is atomic; the set is moved after the caller's commit, in a few milliseconds); when it
    raises, nothing is moved. The staging folder is removed either way."""
    staging = storage / f".staging-{day.isoformat()}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        for part in sorted(staging.rglob("part.parquet")):
            final = storage / part.relative_to(staging)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(part, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
