"""Reading a trades file and writing a costing result: the I/O around :mod:`utl.costing`."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from utl.costing import CostingResult
from utl.errors import BadInput, RowError


def read_trades(path: Path) -> pl.DataFrame:
    """A Parquet file as written, or a CSV with every cell as text (no inference, no float)."""
    if not path.exists():
        raise BadInput([RowError(str(path), None, None, "no such file")])
    if path.suffix.lower() == ".parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


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
