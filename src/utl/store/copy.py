"""A frame into a table by ``COPY ... (FORMAT binary)``, straight from its Arrow buffers.

PostgreSQL's binary COPY takes each value in the column's own wire format: ``numeric`` as
base-10000 digits with its scale, so a ``Decimal(38,18)`` goes in digit for digit and the
server parses no text (bench/store_write.py: the binary rows are stored in about 70% of
the time of the same rows as CSV). The ``pgpq`` encoder turns Arrow record batches into
that format in compiled code; a psycopg worker thread sends one batch while the next is
encoded. pgpq ships no wheel for Linux on aarch64, where it is not installed
(pyproject.toml) and every frame goes as CSV: exact too, only slower.

Binary COPY does not convert: an ``int8`` value sent to an ``int4`` column is an error, not
a cast. So every frame column is first cast to the dtype whose Arrow type encodes as the
column's PostgreSQL type, exactly (a strict cast: an integer that does not fit refuses the
write). A column whose values have no exact binary form here (text into ``numeric``, a
``jsonb`` column, ...) sends the whole frame as CSV instead, as PostgreSQL parses that text
itself.
"""

from __future__ import annotations

import io

import polars as pl
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

try:
    import pgpq
except ImportError:  # no wheel for this platform
    pgpq = None

BATCH_ROWS = 50_000
"""Rows per encoded batch: small enough that sending overlaps encoding, big enough to amortize calls."""

_INTEGERS = {"smallint": pl.Int16, "integer": pl.Int32, "bigint": pl.Int64}
_TEXT = ("text", "character varying")


def table_column_types(conn: psycopg.Connection, schema: str, name: str) -> dict[str, str]:
    """Column name → PostgreSQL type as ``format_type`` spells it (``numeric``, ``text``, ...)."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, NULL)
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, name),
    ).fetchall()
    return {column: kind for column, kind in rows}


def binary_columns(frame: pl.DataFrame, column_types: dict[str, str]) -> list[pl.Expr] | None:
    """The casts that give each column its exact binary form, or None when one has none."""
    if pgpq is None:
        return None
    casts = []
    for column, dtype in frame.schema.items():
        target = _binary_dtype(dtype, column_types[column])
        if target is None:
            return None
        casts.append(pl.col(column) if target == dtype else pl.col(column).cast(target, strict=True))
    return casts


def _binary_dtype(dtype: pl.DataType, kind: str) -> pl.DataType | None:
    is_null = dtype == pl.Null
    if kind == "numeric":
        if isinstance(dtype, pl.Decimal):
            return dtype
        if dtype.is_integer() or is_null:
            return pl.Decimal(38, 0)
        return None
    if kind in _INTEGERS:
        return _INTEGERS[kind] if dtype.is_integer() or is_null else None
    if kind in _TEXT:
        return pl.String if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum) or is_null else None
    if kind == "date":
        return pl.Date if dtype == pl.Date or is_null else None
    if kind == "boolean":
        return pl.Boolean if dtype == pl.Boolean or is_null else None
    if kind == "timestamp with time zone":
        # A naive timestamp has no instant; CSV lets the server read it in the session's zone.
        aware = isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
        return pl.Datetime("us", "UTC") if aware or is_null else None
    if kind == "timestamp without time zone":
        naive = isinstance(dtype, pl.Datetime) and dtype.time_zone is None
        return pl.Datetime("us") if naive or is_null else None
    return None


def copy_frame(conn: psycopg.Connection, target: sql.Composable, frame: pl.DataFrame,
               column_types: dict[str, str]) -> int:
    """COPY ``frame`` into ``target`` (binary where every column has an exact binary form); return the rows."""
    if frame.height == 0:
        return 0
    columns = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    casts = binary_columns(frame, column_types)
    fmt = sql.SQL("csv" if casts is None else "binary")
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(target, columns, fmt)
    with conn.cursor() as cursor:
        with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
            if casts is None:
                _write_csv(copy, frame)
            else:
                _write_binary(copy, frame.select(casts))
        return cursor.rowcount


def _write_binary(copy: psycopg.Copy, frame: pl.DataFrame) -> None:
    table = frame.to_arrow()
    encoder = pgpq.ArrowToPostgresBinaryEncoder(table.schema)
    copy.write(encoder.write_header())
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        copy.write(encoder.write_batch(batch))
    copy.write(encoder.finish())


def _write_csv(copy: psycopg.Copy, frame: pl.DataFrame) -> None:
    for offset in range(0, frame.height, BATCH_ROWS):
        buffer = io.BytesIO()  # a fresh one: the writer thread may still hold the last
        # CSV as COPY reads it: null is an empty field, an empty string is "".
        frame.slice(offset, BATCH_ROWS).write_csv(buffer, include_header=False)
        copy.write(buffer.getbuffer())
