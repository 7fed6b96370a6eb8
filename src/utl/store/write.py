"""Replace a slice of a table with a frame, atomically, at COPY speed.

A rerun of a date replaces what that date wrote and never duplicates it (contract), so a
write is "delete the slice, COPY the frame in" in one transaction. A crash or a bad value
anywhere before the commit leaves the previous rows whole: an aborted transaction changes
nothing. The frame goes straight into the target by ``COPY FROM STDIN`` after the DELETE,
not through a TEMP staging table: the atomicity is the same, and a second pass over the
rows (staging, then ``INSERT ... SELECT``) cost as much again (bench/store_write.py).

Numbers travel as text: Polars writes ``Decimal`` columns to CSV with every digit (no
exponent, no rounding), and PostgreSQL parses that text into ``numeric`` exactly. Float
columns are refused: UTL has none, and one here would mean an exactness bug upstream.

Speed: rows are sent sorted by the primary key, so index entries are appended to the
btree instead of scattered over it; CSV for the next chunk is formatted while a psycopg
worker thread sends the previous one; replacing a whole table is a TRUNCATE (no dead
rows to check the new keys against, nothing left for VACUUM).
"""

from __future__ import annotations

import io
from collections.abc import Mapping

import polars as pl
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from utl.store.partitions import ensure_month_partitions, range_partition_column
from utl.store.read import read_frame  # the reading half lives in read.py; importable from here too

__all__ = ["read_frame", "replace_rows"]

CHUNK_ROWS = 100_000
"""Rows per CSV chunk sent to COPY: big enough to amortize calls, small enough to stream."""

_REFUSED_DTYPES = (pl.Float32, pl.Float64, pl.Object, pl.List, pl.Array, pl.Struct, pl.Binary, pl.Duration)


def replace_rows(conn: psycopg.Connection, table: str, frame: pl.DataFrame, *, where: Mapping[str, object]) -> int:
    """Make the rows of ``table`` matching ``where`` exactly ``frame``'s rows; return their count.

    ``table`` is ``schema.name``. ``where`` maps columns to a value (``column = value``), a
    list/tuple/set (``column = ANY(values)``) or None (``column IS NULL``), all ANDed;
    ``{}`` is the whole table. Every frame row must lie inside that slice, else the write
    would leave rows a later replace of the same slice could not see. Frame columns are
    matched to table columns by name; table columns absent from the frame get their
    defaults. Works inside the caller's transaction too (then as a savepoint).
    """
    schema, name = _split_table(table)
    _check_frame(frame, _table_columns(conn, schema, name), where, table)
    key = range_partition_column(conn, schema, name)
    if key is not None and key in frame.columns and frame.height > 0:
        if frame.schema[key] != pl.Date:
            raise TypeError(f"{table}: partition column {key} must be a Date column, not {frame.schema[key]}")
        ensure_month_partitions(conn, schema, name, frame.get_column(key).unique().drop_nulls().to_list())
    primary_key = [c for c in _primary_key(conn, schema, name) if c in frame.columns]
    if primary_key:
        frame = frame.sort(primary_key)  # byte order, as the COLLATE "C" key columns sort

    target = sql.Identifier(schema, name)
    with conn.transaction():
        if where:
            condition, params = _where_sql(where)
            conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(target, condition), params)
        else:
            # Transactional like DELETE; readers wait for the commit instead of seeing old rows.
            conn.execute(sql.SQL("TRUNCATE {}").format(target))
        return _copy_frame(conn, target, frame)


def _copy_frame(conn: psycopg.Connection, target: sql.Identifier, frame: pl.DataFrame) -> int:
    if frame.height == 0:
        return 0
    columns = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(target, columns)
    with conn.cursor() as cursor:
        with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
            for offset in range(0, frame.height, CHUNK_ROWS):
                buffer = io.BytesIO()  # a fresh one: the writer thread may still hold the last
                # CSV as COPY reads it: null is an empty field, an empty string is "".
                frame.slice(offset, CHUNK_ROWS).write_csv(buffer, include_header=False)
                copy.write(buffer.getbuffer())
        return cursor.rowcount


def _primary_key(conn: psycopg.Connection, schema: str, name: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT a.attname
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
        ORDER BY k.position
        """,
        (schema, name),
    ).fetchall()
    return [row[0] for row in rows]


def _split_table(table: str) -> tuple[str, str]:
    schema, dot, name = table.partition(".")
    if not dot or not schema or not name or "." in name:
        raise ValueError(f"table {table!r}: expected schema.name")
    return schema, name


def _table_columns(conn: psycopg.Connection, schema: str, name: str) -> set[str]:
    rows = conn.execute(
        """
        SELECT a.attname
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        """,
        (schema, name),
    ).fetchall()
    if not rows:
        raise ValueError(f"table {schema}.{name} does not exist")
    return {row[0] for row in rows}


def _check_frame(frame: pl.DataFrame, table_columns: set[str], where: Mapping[str, object], table: str) -> None:
    unknown = [c for c in (*frame.columns, *where) if c not in table_columns]
    if unknown:
        raise ValueError(f"{table} has no column(s) {', '.join(sorted(set(unknown)))}")
    refused = [f"{c} ({dtype})" for c, dtype in frame.schema.items() if isinstance(dtype, _REFUSED_DTYPES)]
    if refused:
        raise TypeError(f"{table}: cannot write column(s) {', '.join(refused)} exactly; use Decimal or text")
    if frame.height == 0 or not where:
        return
    missing = [c for c in where if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: the frame lacks the replaced slice's column(s) {', '.join(missing)}")
    outside = frame.filter(~_slice_mask(where).fill_null(False))
    if outside.height:
        raise ValueError(
            f"{table}: {outside.height} frame row(s) lie outside the replaced slice {dict(where)}, "
            f"first: {outside.row(0, named=True)}"
        )


def _is_many(value: object) -> bool:
    return isinstance(value, (list, tuple, set, frozenset))


def _slice_mask(where: Mapping[str, object]) -> pl.Expr:
    """The ``where`` slice as a Polars predicate, mirroring ``_where_sql``."""
    tests = []
    for column, value in where.items():
        if value is None:
            tests.append(pl.col(column).is_null())
        elif _is_many(value):
            tests.append(pl.col(column).is_in(list(value)))  # type: ignore[call-overload]
        else:
            tests.append(pl.col(column) == pl.lit(value))
    return pl.all_horizontal(tests)


def _where_sql(where: Mapping[str, object]) -> tuple[sql.Composable, list[object]]:
    if not where:
        return sql.SQL("TRUE"), []
    parts: list[sql.Composable] = []
    params: list[object] = []
    for column, value in where.items():
        if value is None:
            parts.append(sql.SQL("{} IS NULL").format(sql.Identifier(column)))
        elif _is_many(value):
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
            params.append(list(value))  # type: ignore[call-overload]
        else:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    return sql.SQL(" AND ").join(parts), params
