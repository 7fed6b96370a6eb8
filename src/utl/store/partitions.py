"""Month and day partitions of the date-partitioned tables, created before the first write.

``utl.positions``, ``utl.breaks`` and ``utl.pnl`` are ``PARTITION BY RANGE (business_date)``
with a DEFAULT partition (``sql/001_core.sql``). Rows of a month go to that month's
partition, ``<table>_YYYY_MM``, itself partitioned by day into ``<table>_YYYY_MM_DD``,
created here on demand: a fixed list in a migration would run out, and a month left in
DEFAULT could never get its own partition later (PostgreSQL refuses to create a partition
whose rows already sit in DEFAULT). Old months stay whole for detaching or dropping; a day
of its own lets a rerun swap in a freshly built partition instead of deleting and
re-inserting a million rows through the primary key (``utl.store.write``).

A month created before days existed (one plain partition) stays as it is; its dates are
written by delete and COPY.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import psycopg
from psycopg import sql

PARTITION_LOCK_KEY = 0x75746C_70617274  # "utlpart": serializes partition creation


def range_partition_column(conn: psycopg.Connection, schema: str, table: str) -> str | None:
    """The single column ``schema.table`` is range-partitioned by, or None."""
    row = conn.execute(
        """
        SELECT a.attname
        FROM pg_partitioned_table p
        JOIN pg_class c ON c.oid = p.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
        WHERE n.nspname = %s AND c.relname = %s AND p.partstrat = 'r' AND p.partnatts = 1
        """,
        (schema, table),
    ).fetchone()
    return None if row is None else row[0]


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def month_partition(table: str, day: dt.date) -> str:
    return f"{table}_{day:%Y_%m}"


def day_partition(table: str, day: dt.date) -> str:
    return f"{table}_{day:%Y_%m_%d}"


def relation_kind(conn: psycopg.Connection, schema: str, name: str) -> str | None:
    """``'p'`` for a partitioned table, ``'r'`` for a plain one, None when there is none."""
    row = conn.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, name),
    ).fetchone()
    return None if row is None else row[0]


def ensure_day_partitions(conn: psycopg.Connection, schema: str, table: str, days: Iterable[dt.date]) -> None:
    """Create the month and day partitions of ``schema.table`` that ``days`` need and that are missing.

    Runs in its own short transaction (a savepoint when inside one): creating a partition
    locks the whole table, which should not last as long as the write that follows.
    """
    days = sorted(set(days))
    if not days:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
        for day in days:
            month = month_partition(table, day)
            kind = relation_kind(conn, schema, month)
            if kind is None:
                _create_partition(conn, schema, month, table, month_start(day), next_month(day), by_day=True)
                kind = "p"
            if kind == "p" and relation_kind(conn, schema, day_partition(table, day)) is None:
                _create_partition(conn, schema, day_partition(table, day), month, day, day + dt.timedelta(days=1))


def _create_partition(conn: psycopg.Connection, schema: str, name: str, parent: str, start: dt.date,
                      end: dt.date, *, by_day: bool = False) -> None:
    conn.execute(
        sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({}){}").format(
            sql.Identifier(schema, name),
            sql.Identifier(schema, parent),
            sql.Literal(start),  # DDL takes no bound parameters; a date literal is safe
            sql.Literal(end),
            sql.SQL(" PARTITION BY RANGE ({})").format(sql.Identifier(_range_column(conn, schema, parent)))
            if by_day else sql.SQL(""),
        )
    )


def _range_column(conn: psycopg.Connection, schema: str, table: str) -> str:
    column = range_partition_column(conn, schema, table)
    if column is None:
        raise ValueError(f"{schema}.{table} is not partitioned by range of one column")
    return column
