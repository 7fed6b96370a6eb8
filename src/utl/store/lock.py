"""One end-of-day run at a time per database.

A run rewrites every date from the first through D; two at once would interleave their
deletes and inserts. A session-level advisory lock (not a transaction one) spans the
run's many transactions, and PostgreSQL drops it by itself when a killed run's session
ends, so a crash never leaves the database locked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg
from psycopg.pq import TransactionStatus

RUN_LOCK_KEY = 0x75746C_656F6472  # "utleodr": a fixed bigint for "utl eod run"


@contextlib.contextmanager
def run_lock(conn: psycopg.Connection) -> Iterator[None]:
    """Hold the run lock for the block; waits while another session holds it."""
    # A transaction block works whether or not conn is autocommit or already in a
    # transaction (then it is a savepoint); the lock itself outlives it.
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock(%s)", (RUN_LOCK_KEY,))
    try:
        yield
    finally:
        if not conn.closed:  # a lost session has released its locks already
            if conn.info.transaction_status == TransactionStatus.INERROR:
                # The block failed inside the caller's own transaction; that transaction
                # can only be rolled back, and the unlock cannot run before it is.
                conn.rollback()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))
