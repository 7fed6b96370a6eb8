"""A batch's deletes find its rows by the key index, one probe per staged row, however stale
the planner's view of tables that grew under a backlog: each statement commit_batch runs,
planned under the settings it runs with (and under PostgreSQL's defaults), on tables
PostgreSQL has never analyzed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import psycopg
import pytest

from utl.schemas import LOTS_STATE
from utl.store import connect, migrate
from utl.stream.books import OPENINGS
from utl.stream.store import _LOTS_GONE, _MOVES, BATCH_PLAN, _copy, _stage

TS = dt.datetime(2024, 3, 5, 12, tzinfo=dt.timezone.utc)
HELD = 30_000  # lots (and openings) of the landing, one per (book, asset)
STAGED = 500  # rows a batch stages
TRAP = "SET LOCAL enable_mergejoin = off; SET LOCAL enable_hashjoin = off"  # the settings before


def lots(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        [(f"b{i % 1000}", f"A{i // 1000}", f"t{i}", TS, Decimal("0.5"), Decimal("100.25")) for i in range(n)],
        schema=LOTS_STATE, orient="row")


def _move(staged: str) -> str:
    (statement,) = [text for reads, text in _MOVES if reads == (staged,)]
    return statement


DELETES = {  # statement, staging table, table, what is staged, its landing (as commit_batch stages it)
    "closed lots": (_LOTS_GONE, "s_lots_gone", "stream_lots", lambda some: some, ""),
    "lots of keys": (_move("s_lot_keys"), "s_lot_keys", "stream_lots", lambda some: some.select("book", "asset"), None),
    "openings of keys": (_move("s_keys"), "s_keys", "stream_lot_openings", lambda some: some.select("book", "asset"), None),
}


@pytest.fixture
def held(pg_url) -> str:
    """A database whose lots and openings grew faster than autovacuum visits them: rows, and
    no statistics."""
    url = pg_url
    with connect(url) as conn:
        migrate(conn)
        for table in ("stream_lots", "stream_lot_openings"):
            conn.execute(f"ALTER TABLE utl.{table} SET (autovacuum_enabled = false)")
        conn.commit()
        with conn.transaction():
            _copy(conn, None, "stream_lots", lots(HELD), "")
            _copy(conn, None, "stream_lot_openings", lots(HELD).with_columns(business_date=pl.lit(TS.date())).select(
                OPENINGS.names()), "")
        assert conn.execute("SELECT count(*) FROM utl.stream_lot_openings").fetchone()[0] == HELD
    return url


def _plan(conn, settings: str, delete: tuple) -> str:
    statement, staging, target, staged, landing = delete
    with conn.transaction():
        _copy(conn, staging, target, staged(lots(HELD).gather(range(0, HELD, HELD // STAGED))), landing)
        if settings:
            conn.execute(settings)
        plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + statement, {"landing": ""}).fetchall())
        raise psycopg.Rollback  # nothing is deleted: only the plan is read
    return plan


@pytest.mark.parametrize("name", DELETES)
def test_a_batch_deletes_by_index_probes_though_the_tables_were_never_analyzed(held, name):
    with connect(held) as conn:
        with conn.transaction():
            _stage(conn)  # the booker's staging tables, kept for the session
        table = DELETES[name][2]
        for settings in (BATCH_PLAN, ""):
            plan = _plan(conn, settings, DELETES[name])
            assert f"Index Scan using {table}_key on {table}" in plan, plan
            for whole in (f"Seq Scan on {table}", f"Bitmap Heap Scan on {table}", "Materialize", "Hash", "Merge"):
                assert whole not in plan, plan


def test_the_joins_these_deletes_were_walked_every_lot_of_the_landing_for_each_closed_one(held):
    """The trap the statements are shaped against, kept in view: the closed lots' delete as a
    join, planned with hash and merge joins off, as it was."""
    joined = """DELETE FROM utl.stream_lots l USING s_lots_gone g
                WHERE l.landing = %(landing)s AND l.book = g.book AND l.asset = g.asset AND l.trade_id = g.trade_id
                  AND l.opened_ts = g.opened_ts AND l.qty = g.qty AND l.entry_price = g.entry_price"""
    with connect(held) as conn:
        with conn.transaction():
            _stage(conn)
        plan = _plan(conn, TRAP, (joined, "s_lots_gone", "stream_lots", lambda some: some, ""))
    assert "Index Scan using stream_lots_key" not in plan, plan
