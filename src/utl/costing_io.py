"""Reading a trades file and writing a costing result: the I/O around :mod:`utl.costing`."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from utl.costing import CostingResult
from utl.errors import BadInput, RowError
from utl.venues.base import Source, read_csv_rows


def read_trades(path: Path) -> pl.DataFrame:
    """A Parquet file as written, or a CSV with every cell as text (no inference, no float).

    Refused whole (:class:`BadInput`, one plain reason per problem): a missing or empty file,
    a file that is not Parquet or CSV, a CSV row with more or fewer cells than the header
    (Polars would pad or cut it, which could cost a truncated number)."""
    if not path.exists():
        raise BadInput([RowError(str(path), None, None, "no such file")])
    if path.is_dir():
        raise BadInput([RowError(None, None, None, "a folder, not a trades file")])
    if path.stat().st_size == 0:
        raise BadInput([RowError(None, None, None, "the file is empty")])
    if path.suffix.lower() == ".parquet":
        try:
            return pl.read_parquet(path)
        except pl.exceptions.PolarsError as exc:
            raise BadInput([RowError(None, None, None, f"not a readable Parquet file ({_first_line(exc)})")]) from None
    try:
        frame, ragged = read_csv_rows(Source(path=path, rel=str(path), venue="", account=""))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput([RowError(None, None, None, _first_line(exc))]) from None
    if ragged.height:
        raise BadInput([RowError(None, r["row"], None, r["reason"], r["raw"]) for r in ragged.iter_rows(named=True)])
    # An empty cell is a missing value (a null), as pl.read_csv reads it.
    cells = [c for c in frame.columns if c != "source_row"]
    return frame.drop("source_row").with_columns(
        [pl.when(pl.col(c) == "").then(None).otherwise(pl.col(c)).alias(c) for c in cells])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_out_dir(out_dir: Path) -> None:
    """``--out`` must be a folder or not exist yet: refused before anything is computed."""
    if out_dir.exists() and not out_dir.is_dir():
        raise BadInput([RowError(None, None, None, f"--out {out_dir} is a file, not a folder")])


def write_result(result: CostingResult, out_dir: Path) -> list[Path]:
    """Write realized/positions/open_lots Parquet files; each lands whole or not at all."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("realized", result.realized), ("positions", result.positions), ("open_lots", result.open_lots)):
        final = out_dir / f"{name}.parquet"
        partial = out_dir / f".{name}.parquet.partial"
        frame.write_parquet(partial)
        os.replace(partial, final)
        written.append(final)
    return written
