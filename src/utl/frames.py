"""Reshaping a frame without running a query.

A Polars frame's ``filter``, ``select`` and ``cast`` each plan and run a query (~100-170 us here
however few the rows); the same reshaping done on the frame's columns is a direct call of a
few microseconds. A live stream batch makes dozens of them on frames of a few rows
(:mod:`utl.stream.booker`), where that fixed cost is most of the batch's time; on large frames
both ways cost alike.
"""

from __future__ import annotations

import functools

import polars as pl


SMALL = 20_000
"""Rows up to which a frame is made whole (one chunk a column) before its columns are reshaped
one by one: columns filtered chunk by chunk can keep empty chunks, on which some of Polars'
later steps panic (``format``), and copying a few thousand rows costs less than the query it
saves."""


def rows_where(frame: pl.DataFrame, mask: pl.Series) -> pl.DataFrame:
    """``frame.filter(mask)`` (a null in ``mask`` drops its row, as there), a column at a time
    where the frame is whole or small enough to be made so; a larger one by the query (its
    fixed cost is nothing beside the rows)."""
    if not frame.width:
        return frame
    whole = _whole(frame)
    if whole is None:
        return frame.filter(mask)
    mask = mask.rechunk() if mask.n_chunks() > 1 else mask
    return pl.DataFrame([column.filter(mask) for column in whole.get_columns()])


def _whole(frame: pl.DataFrame) -> pl.DataFrame | None:
    """``frame`` with every column in one chunk (made so when it is small), else None."""
    if all(n == 1 for n in frame.n_chunks("all")):
        return frame
    return frame.rechunk() if frame.height <= SMALL else None


def conformed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame.select(schema.names()).cast(schema)``: only the columns whose type differs are cast
    (one query), and none when every type is the schema's already (the usual case)."""
    columns = [frame.get_column(name) for name in schema.names()]
    if all(column.dtype == dtype for column, dtype in zip(columns, schema.dtypes())):
        return pl.DataFrame(columns) if columns else pl.DataFrame(schema=schema)
    return frame.select(schema.names()).cast(schema)


def with_constants(frame: pl.DataFrame, **columns: tuple[object, pl.DataType]) -> pl.DataFrame:
    """``frame.with_columns(name=pl.lit(value, dtype), ...)``: each (value, dtype) a column of
    ``frame.height`` equal values, replacing the column of that name in its place or added
    after the others, in order."""
    whole = _whole(frame)
    if whole is None:
        return frame.with_columns(**{name: pl.lit(value, dtype) for name, (value, dtype) in columns.items()})
    made = {name: _one(name, value, dtype).new_from_index(0, frame.height) if frame.height else _one(name, value, dtype).clear()
            for name, (value, dtype) in columns.items()}
    existing = [made.pop(column.name, column) for column in whole.get_columns()]
    return pl.DataFrame([*existing, *made.values()])


@functools.lru_cache(maxsize=256)
def _one(name: str, value: object, dtype: pl.DataType) -> pl.Series:
    """A one-value series, made once: a zone-aware time from Python takes two queries."""
    return pl.select(pl.lit(value, dtype).alias(name)).to_series()
