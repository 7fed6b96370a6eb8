"""run_lock: one EOD run at a time; released on exit, on error, and when a session dies."""

from __future__ import annotations

import time

import psycopg
import pytest

import workers
from utl.store import connect, run_lock
from utl.store.lock import RUN_LOCK_KEY


def lock_is_free(url: str) -> bool:
    """Whether another session can take the run lock right now (and gives it back)."""
    with connect(url) as probe:
        taken = probe.execute("SELECT pg_try_advisory_lock(%s)", (RUN_LOCK_KEY,)).fetchone()[0]
        if taken:
            probe.execute("SELECT pg_advisory_unlock(%s)", (RUN_LOCK_KEY,))
        return taken


def test_second_process_waits_for_the_first(database: str) -> None:
    with connect(database) as conn:
        conn.execute("CREATE TABLE lock_log (label text, event text, at timestamptz)")
        first = workers.start("hold-lock", database, "first", "1")
        deadline = time.monotonic() + 120
        while not conn.execute("SELECT count(*) FROM lock_log WHERE label = 'first'").fetchone()[0]:
            assert time.monotonic() < deadline and first.poll() is None, "the first holder never got the lock"
            time.sleep(0.05)
        second = workers.start("hold-lock", database, "second", "0")
        assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
        log = conn.execute("SELECT label, event FROM lock_log ORDER BY at").fetchall()
    # The first saw the second queued behind it, and the second entered only after the first left.
    assert log == [("first", "enter"), ("first", "saw_waiter"), ("first", "exit"), ("second", "enter"), ("second", "exit")]


def test_released_after_the_block_and_after_an_error(database: str) -> None:
    with connect(database) as conn:
        with run_lock(conn):
            assert not lock_is_free(database)
        assert lock_is_free(database)

        with pytest.raises(psycopg.errors.DivisionByZero):
            with run_lock(conn):
                conn.execute("SELECT 1 / 0")
        assert lock_is_free(database)


def test_released_when_the_caller_transaction_failed(database: str) -> None:
    with psycopg.connect(database) as conn:  # not autocommit: the block runs in one transaction
        with pytest.raises(psycopg.errors.DivisionByZero):
            with run_lock(conn):
                conn.execute("SELECT 1 / 0")
        assert lock_is_free(database)


def test_released_when_the_session_ends(database: str) -> None:
    conn = connect(database)
    context = run_lock(conn)
    context.__enter__()
    assert not lock_is_free(database)
    conn.close()  # as when a run's process dies: the server drops session locks
    deadline = time.monotonic() + 30
    while not lock_is_free(database):
        assert time.monotonic() < deadline
        time.sleep(0.05)
