"""Monthly partitions of the date-partitioned tables, created before the first write.

``utl.positions`` and ``utl.breaks`` are ``PARTITION BY RANGE (business_date)`` with a
DEFAULT partition (``sql/001_core.sql``). Rows of a month go to that month's partition,
``<table>_YYYY_MM``, created here on demand: a fixed list in a migration would run out,
and a month left in DEFAULT could never get its own partition later (PostgreSQL refuses
to create a partition whose rows already sit in DEFAULT).
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


def ensure_month_partitions(conn: psycopg.Connection, schema: str, table: str, days: Iterable[dt.date]) -> None:
    """Create the monthly partitions of ``schema.table`` that ``days`` fall in and that are missing.

    Runs in its own short transaction (a savepoint when inside one): creating a partition
    locks the whole table, which should not last as long as the write that follows.
    """
    months = sorted({month_start(day) for day in days})
    if not months:
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
        for start in months:
            name = f"{table}_{start:%Y_%m}"
            exists = conn.execute(
                "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relname = %s",
                (schema, name),
            ).fetchone()
            if exists is not None:
                continue
            conn.execute(
                sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(schema, name),
                    sql.Identifier(schema, table),
                    sql.Literal(start),  # DDL takes no bound parameters; a date literal is safe
                    sql.Literal(next_month(start)),
                )
            )
