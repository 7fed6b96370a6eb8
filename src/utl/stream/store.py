"""The stream's rows in PostgreSQL: one transaction per batch, and the state read back.

A batch's fills, legs, changed lots, lot openings, day PnL, live positions, refused
messages and the last stream sequence commit together (stream.md, "Exactly once"): the
frames are COPYed into temporary staging tables, then moved by set-based statements
(insert-if-new for the ledger keys, delete-and-insert per key for lots, upserts for the
rest). A crash before the commit leaves the previous batch's state whole, and the booker
resumes after the sequence that state holds.

Every row carries the landing folder whose booker wrote it (``landing``, 011_stream_landing,
named as 008_landing_keys names it: :func:`utl.home.landing_key`, ``''`` for a booker run
without one), first in its key: two landing folders booking into one shared database keep
their own fills, lots, live positions, committed sequence and agreement breaks.

One booker per shard of books of a landing: a session-level advisory lock keyed by the
landing and the consumer name; PostgreSQL drops it when a killed booker's session ends.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from decimal import Decimal
from pathlib import Path

import polars as pl
import psycopg
from psycopg import sql

from utl.schemas import LOTS_STATE
from utl.storage import partition_path
from utl.store.read import read_frame
from utl.home import landing_key
from utl.store.copy import binary_columns, copy_frame, pgpq, table_column_types
from utl.stream.books import DAY_PNL, HOLDINGS, OPENINGS, Books

FILLS_ROWS = pl.Schema({"venue": pl.String, "account": pl.String, "symbol": pl.String, "trade_id": pl.String,
                        "stream_seq": pl.Int64, "ts": pl.Datetime("us", "UTC"), "counted": pl.Boolean})
LEGS_ROWS = pl.Schema({"venue": pl.String, "account": pl.String, "symbol": pl.String, "trade_id": pl.String,
                       "leg_id": pl.String, "kind": pl.String, "asset": pl.String, "qty": pl.Decimal(38, 18),
                       "ts": pl.Datetime("us", "UTC"), "business_date": pl.Date, "price": pl.Decimal(38, 18),
                       "unit_price": pl.Decimal(38, 18), "counted": pl.Boolean, "stream_seq": pl.Int64})
START_ROWS = pl.Schema({"venue": pl.String, "account": pl.String, "state_date": pl.Date, "source": pl.String})
LIVE_ROWS = pl.Schema({"venue": pl.String, "account": pl.String, "asset": pl.String, "qty": pl.Decimal(38, 18),
                       "cost_basis": pl.Decimal(38, 18), "avg_cost": pl.Decimal(38, 18),
                       "realized_pnl": pl.Decimal(38, 18), "last_trade_ts": pl.Datetime("us", "UTC"),
                       "stream_seq": pl.Int64})

SEEN = pl.Schema({"venue": pl.String, "account": pl.String, "symbol": pl.String, "trade_id": pl.String})

_STAGING = {
    "stream_fills": "utl.stream_fills", "stream_legs": "utl.stream_legs", "stream_start": "utl.stream_start",
    "stream_lots": "utl.stream_lots", "stream_lot_openings": "utl.stream_lot_openings",
    "stream_day_pnl": "utl.stream_day_pnl", "stream_quarantine": "utl.stream_quarantine",
}


# In key order: the primary key's index is walked once, not hit at random row by row.
_FILLS_IN = """INSERT INTO utl.stream_fills SELECT * FROM s_stream_fills
               ORDER BY landing, venue, account, symbol, trade_id ON CONFLICT DO NOTHING RETURNING stream_seq"""
"""A fill whose ledger key is there already brings none of its legs (:func:`_fills_and_legs`)."""


def _probed_delete(table: str, staged: str, columns: tuple[str, ...]) -> str:
    """DELETE from ``utl.<table>`` the landing's rows that match a row of ``staged`` on
    ``columns``. Each staged row looks its rows up by the table's key index on its own (a
    LATERAL subquery behind ``OFFSET 0``, which the planner keeps as written rather than
    turning it into a join of its choosing), and the rows found go by their ``ctid``: one index
    probe per staged row, whatever the planner believes of either table's size (with no
    statistics it took 30,000 lots for 44 and compared each with every staged row)."""
    match = " AND ".join(f"t.{c} = s.{c}" for c in columns)
    return f"""DELETE FROM utl.{table} WHERE ctid = ANY (ARRAY(
                SELECT f.ctid FROM {staged} s CROSS JOIN LATERAL (
                    SELECT t.ctid FROM utl.{table} t WHERE t.landing = %(landing)s AND {match} OFFSET 0) f))"""


# Staging to tables, set-based: the ledger keys insert-if-new, lots replaced per key, the rest upserted.
_MOVES = [
    # (the staging tables a statement reads: it runs only when one of them has rows, statement)
    (("s_stream_start",), """INSERT INTO utl.stream_start SELECT * FROM s_stream_start ON CONFLICT DO NOTHING"""),
    (("s_lot_keys",), _probed_delete("stream_lots", "s_lot_keys", ("book", "asset"))),
    (("s_stream_lots",), """INSERT INTO utl.stream_lots SELECT * FROM s_stream_lots"""),
    (("s_keys",), _probed_delete("stream_lot_openings", "s_keys", ("book", "asset"))),
    (("s_stream_lot_openings",), """INSERT INTO utl.stream_lot_openings SELECT * FROM s_stream_lot_openings"""),
    (("s_stream_day_pnl",), """INSERT INTO utl.stream_day_pnl SELECT * FROM s_stream_day_pnl
                ON CONFLICT (landing, business_date, venue, account, asset) DO UPDATE SET realized_pnl = EXCLUDED.realized_pnl"""),
    (("s_live",), """INSERT INTO utl.live_positions (landing, venue, account, asset, qty, cost_basis, avg_cost, realized_pnl,
                                            last_trade_ts, stream_seq, updated_at)
                SELECT landing, venue, account, asset, qty, cost_basis, avg_cost, realized_pnl, last_trade_ts,
                       stream_seq, now()
                FROM s_live
                ON CONFLICT (landing, venue, account, asset) DO UPDATE SET qty = EXCLUDED.qty,
                    cost_basis = EXCLUDED.cost_basis, avg_cost = EXCLUDED.avg_cost,
                    realized_pnl = EXCLUDED.realized_pnl, last_trade_ts = EXCLUDED.last_trade_ts,
                    stream_seq = EXCLUDED.stream_seq, updated_at = now()"""),
    (("s_stream_quarantine",), """INSERT INTO utl.stream_quarantine (landing, subject, stream_seq, reason, raw)
                SELECT landing, subject, stream_seq, reason, raw FROM s_stream_quarantine ON CONFLICT DO NOTHING"""),
]
_LOTS_GONE = _probed_delete("stream_lots", "s_lots_gone", ("book", "asset", "trade_id", "opened_ts", "qty", "entry_price"))
"""A batch's lots written as a difference: the rows that went (each one row, by all its columns)."""

BATCH_PLAN = "SET LOCAL enable_mergejoin = off; SET LOCAL enable_hashjoin = off; SET LOCAL enable_material = off"
"""How a batch's statements are planned: a batch's rows are found by their key's index, one
probe per staged row (:func:`_probed_delete` shapes the deletes so; these settings keep the
planner from the plans it took before for the joins they were: with no statistics of the
staging tables and stale ones, or none, of tables growing under a backlog, it sorted every lot
of the landing to merge-join them (~150 ms a 20,000-fill batch at 200,000 fills booked, and
growing), or held them in memory, taking them for a few hundred, and compared every closed lot
with all of them (40 M comparisons, 5.6 s a 2,000-fill batch at 100,000 fills booked);
``tests/stream/test_batch_plan.py``)."""


ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"
"""A batch's commit does not wait for its WAL to reach the disk (~1 ms a commit here, seconds
while a checkpoint's full-page writes crowd the log). The stream, not the database, is the
record of the fills: a batch commits whole with the sequence it consumed through, so a server
crash that loses the last fraction of a second of commits loses their sequence with them, and
the booker (whose connection the crash broke) stops, and its successor books those fills again
from the stream. Nothing is lost or doubled; a position published from a lost commit is
published again, the same."""


def stream_key(landing: Path | None) -> str:
    """How the stream's tables name a landing folder: as every per-date table does
    (:func:`utl.home.landing_key`), and ``''`` for a booker run without one."""
    return landing_key(landing) if landing is not None else ""


def shard_lock_key(key: str, consumer: str) -> int:
    """A bigint advisory-lock key for a landing's consumer (one writer per shard of books)."""
    # The landing's path first, then a NUL no path holds: no two (landing, consumer) pairs collide.
    name = f"utl stream {key}\0{consumer}" if key else f"utl stream {consumer}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def try_lock_shard(conn: psycopg.Connection, key: str, consumer: str) -> bool:
    with conn.transaction():
        return bool(conn.execute("SELECT pg_try_advisory_lock(%s)", (shard_lock_key(key, consumer),)).fetchone()[0])


_STAGED: set[tuple[int, int]] = set()


def _stage(conn: psycopg.Connection) -> None:
    """The staging tables, once per session (they empty themselves at each commit)."""
    session = (id(conn), conn.info.backend_pid)
    if session in _STAGED:
        return
    for name, target in _STAGING.items():
        conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
            sql.Identifier(f"s_{name}"), sql.SQL(target)))
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS s_live (LIKE utl.live_positions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS s_keys (book text COLLATE \"C\", asset text COLLATE \"C\") "
                 "ON COMMIT DELETE ROWS")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS s_lot_keys (book text COLLATE \"C\", asset text COLLATE \"C\") "
                 "ON COMMIT DELETE ROWS")
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS s_lots_gone (LIKE utl.stream_lots INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
    _STAGED.add(session)


_TYPES: dict[tuple[int, int, str], dict[str, str]] = {}


def _copy(conn: psycopg.Connection, staging: str | None, target: str, frame: pl.DataFrame,
          key: str | None = None, order: tuple[str, ...] = ()) -> int:
    """COPY ``frame`` (with ``landing`` = ``key`` unless None) into a staging table shaped as
    ``utl.<target>`` (``staging`` None: into ``utl.<target>`` itself), rows in ``order``; the rows.

    A batch's frames are small (a few thousand rows, tens of thousands under a backlog): they
    are encoded and sent in this thread, in one piece (:func:`utl.store.copy.copy_frame`'s
    sorting and sending threads, made for a day's millions of rows, cost a few milliseconds
    of hand-over per COPY, and a batch makes up to nine). Where a column has no exact binary
    form, or pgpq is not installed, ``copy_frame`` sends CSV as before."""
    if not frame.height:
        return 0
    if key is not None:
        frame = frame.with_columns(landing=pl.lit(key, pl.String))
    session = (id(conn), conn.info.backend_pid, target)
    if session not in _TYPES:
        _TYPES[session] = table_column_types(conn, "utl", target)
    into = sql.Identifier(staging) if staging is not None else sql.Identifier("utl", target)
    casts = binary_columns(frame, _TYPES[session])
    if casts is None:
        copy_frame(conn, into, frame, _TYPES[session], order)
        return frame.height
    # Polars sorts text by its UTF-8 bytes, as COLLATE "C" orders the keys.
    table = (frame.select(casts).sort(list(order)) if order else frame.select(casts)).to_arrow()
    encoder = pgpq.ArrowToPostgresBinaryEncoder(table.schema)
    columns = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    with conn.cursor() as cursor, cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(into, columns)) as copy:
        copy.write(encoder.write_header())
        for batch in table.to_batches():
            copy.write(encoder.write_batch(batch))
        copy.write(encoder.finish())
    return frame.height


_LEDGER_KEY = ("venue", "account", "symbol", "trade_id")

_FILLS_AND_LEGS_IN = """WITH f AS (""" + _FILLS_IN + """)
    INSERT INTO utl.stream_legs SELECT * FROM s_stream_legs WHERE stream_seq IN (SELECT stream_seq FROM f)"""
"""The ledger keys insert-if-new from staging, and the legs of the fills that went in."""


def _fills_and_legs(conn: psycopg.Connection, key: str, fills: pl.DataFrame, legs: pl.DataFrame) -> None:
    """The batch's ledger keys insert-if-new; the legs of the fills that went in are COPYed
    straight into ``utl.stream_legs`` (no staging pass, no join in the database).

    The booker's own check (its set of keys seen, loaded from this table) makes every key of a
    batch new, so the fills are COPYed straight into ``utl.stream_fills`` in key order, under a
    savepoint: the primary key refuses a key that is there already, and then (a state the
    booker did not load: never expected) the savepoint is rolled back and the fills go the
    insert-if-new way through a staging table, and only the legs of the sequences that insert
    returned go in. The direct COPY costs the server a third of the insert-if-new (no
    speculative insertion, no second pass over a staging table)."""
    if not fills.height:
        return
    try:
        with conn.transaction():
            _copy(conn, None, "stream_fills", fills, key, ("landing", *_LEDGER_KEY))
    except psycopg.errors.UniqueViolation:
        _copy(conn, "s_stream_fills", "stream_fills", fills, key)
        cursor = conn.execute(_FILLS_IN)
        if cursor.rowcount != fills.height:
            fresh = pl.Series("stream_seq", [row[0] for row in cursor.fetchall()], dtype=pl.Int64)
            legs = legs.join(fresh.to_frame(), on="stream_seq", how="semi")
    _copy(conn, None, "stream_legs", legs, key)


def _lots_difference(conn: psycopg.Connection, key: str, gone: pl.DataFrame, added: pl.DataFrame) -> None:
    if _copy(conn, "s_lots_gone", "stream_lots", gone, key):
        deleted = conn.execute(_LOTS_GONE, {"landing": key}).rowcount
        if deleted != gone.height:
            raise _lots_missing(key, deleted, gone.height)
    _copy(conn, None, "stream_lots", added, key)


SMALL_BATCH_ROWS = 2_000
"""Rows (over every table) up to which a batch is written as one statement text, in one round
trip, rather than a COPY per table. A COPY costs ~1 ms here however few its rows (the frame to
Arrow, the encoder, its own round trip): a caught-up booker's batch of 20 fills made seven,
16-18 ms of a commit of 18; its rows as SQL literals go with the statements that move them."""


@functools.lru_cache(maxsize=64)
def _row_literal(schema: tuple[tuple[str, pl.DataType], ...]) -> pl.Expr | None:
    """The expression writing a row of ``schema`` as SQL literals ``v1,v2,..``, every value exact:
    text quoted (only ``'`` is special with ``standard_conforming_strings``, checked by the
    caller), numbers and integers as their full text, times as ISO 8601 in UTC with every
    microsecond; None when a column has a type this does not write (the batch then goes by
    COPY). Made once per schema: making it cost ~1 ms a table, ten times what evaluating it
    costs on a batch's rows."""
    parts = []
    for name, dtype in schema:
        column = pl.col(name)
        if dtype == pl.String:
            text = "'" + column.str.replace_all("'", "''", literal=True) + "'"
        elif isinstance(dtype, pl.Decimal) or dtype.is_integer():
            text = column.cast(pl.String)
        elif dtype == pl.Boolean:
            text = pl.when(column).then(pl.lit("true")).when(~column).then(pl.lit("false"))
        elif dtype == pl.Date:
            text = "'" + column.dt.strftime("%Y-%m-%d") + "'"
        elif isinstance(dtype, pl.Datetime) and dtype.time_zone == "UTC":
            text = "'" + column.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f") + "+00'"
        else:
            return None
        parts.append(text.fill_null(pl.lit("NULL")))
    return pl.concat_str(parts, separator=",")


def _insert_values(table: str, frame: pl.DataFrame, key: str | None) -> sql.Composable | None:
    """INSERT of ``frame``'s rows (with ``landing`` = ``key`` unless None) into ``table``, its
    values as literals; None when a value has no literal form here."""
    row = _row_literal(tuple(frame.schema.items()))
    if row is None:
        return None
    columns = frame.columns
    if key is not None:  # the same first value in every row
        row = pl.lit("'" + key.replace("'", "''") + "',") + row
        columns = ["landing", *columns]
    values = frame.select(("(" + row + ")").str.join(",")).item()
    return sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
        sql.SQL(table), sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(values))


_LITERAL_SAFE: dict[tuple[int, int], bool] = {}


def _literals_safe(conn: psycopg.Connection) -> bool:
    """Whether this session reads a quoted literal as written but for ``''`` (the default since
    PostgreSQL 9.1; with it off a backslash escapes)."""
    session = (id(conn), conn.info.backend_pid)
    if session not in _LITERAL_SAFE:
        _LITERAL_SAFE[session] = conn.execute("SHOW standard_conforming_strings").fetchone()[0] == "on"
    return _LITERAL_SAFE[session]


def _commit_as_text(conn: psycopg.Connection, key: str, consumer: str, last_seq: int,
                    tables: list[tuple[str, pl.DataFrame, bool]], added: pl.DataFrame | None) -> bool:
    """A small batch in one round trip: each staged frame as INSERT ... VALUES (``tables``: staging
    table as :data:`_MOVES` names it, frame, whether it takes ``landing``), then the statements
    that move them and the sequence, as the COPY path runs them. Lots written as a difference
    (``added`` not None): the staged ``s_lots_gone`` rows are deleted, and the count checked,
    before ``added`` go in. False, with nothing sent, when a value has no literal form."""
    inserts, staged = [], {}
    for name, frame, keyed in tables:
        if frame.height:
            insert = _insert_values(name, frame, key if keyed else None)
            if insert is None:
                return False
            inserts.append(insert)
        staged[name] = frame.height
    if added is not None and added.height:
        lots_in = _insert_values("utl.stream_lots", added, key)
        if lots_in is None:
            return False
    literal = {"landing": sql.Literal(key)}
    statements = [sql.SQL(BATCH_PLAN), sql.SQL(ASYNC_COMMIT), *inserts]
    if staged["s_stream_fills"]:
        statements.append(sql.SQL(_FILLS_AND_LEGS_IN))
    lots_gone = staged.get("s_lots_gone", 0)
    if lots_gone:
        statements.append(sql.SQL("WITH gone AS (" + _LOTS_GONE.replace("%(landing)s", "{landing}")
                                  + " RETURNING 1) SELECT 'lots gone', count(*) FROM gone").format(**literal))
    if added is not None and added.height:
        statements.append(lots_in)
    statements += [*_moves(key, staged), _offset(key, consumer, last_seq)]
    cursor = conn.execute(sql.SQL(";\n").join(statements))
    while True:
        if cursor.description is not None:
            row = cursor.fetchone()
            if row is not None and row[0] == "lots gone" and row[1] != lots_gone:
                raise _lots_missing(key, row[1], lots_gone)
        if not cursor.nextset():
            break
    return True


def _moves(key: str, staged: dict[str, int]) -> list[sql.Composable]:
    """The statements of :data:`_MOVES` that read a staging table holding rows (``staged``: rows
    per staging table), the landing a quoted literal in each."""
    literal = {"landing": sql.Literal(key)}
    return [sql.SQL(statement.replace("%(landing)s", "{landing}")).format(**literal)
            for reads, statement in _MOVES if any(staged.get(name) for name in reads)]


def _lots_missing(key: str, found: int, closed: int) -> RuntimeError:
    return RuntimeError(f"utl.stream_lots of landing {key or '(none)'}: {found} of the {closed} lots the batch "
                        f"closed are there; the database is not the state this booker holds")


def _offset(key: str, consumer: str, last_seq: int) -> sql.Composable:
    return sql.SQL("""
        INSERT INTO utl.stream_offset (landing, consumer, last_seq, updated_at) VALUES ({}, {}, {}, now())
        ON CONFLICT (landing, consumer) DO UPDATE
            SET last_seq = GREATEST(utl.stream_offset.last_seq, EXCLUDED.last_seq), updated_at = now()
    """).format(sql.Literal(key), sql.Literal(consumer), sql.Literal(int(last_seq)))


def last_sequence(conn: psycopg.Connection, key: str, consumer: str) -> int:
    row = conn.execute("SELECT last_seq FROM utl.stream_offset WHERE landing = %s AND consumer = %s",
                       (key, consumer)).fetchone()
    return row[0] if row else 0


def commit_batch(conn: psycopg.Connection, key: str, consumer: str, last_seq: int, *, fills: pl.DataFrame,
                 legs: pl.DataFrame, starts: pl.DataFrame, keys: pl.DataFrame, lots: pl.DataFrame,
                 openings: pl.DataFrame, day_pnl: pl.DataFrame, live: pl.DataFrame, quarantine: pl.DataFrame,
                 lots_gone: pl.DataFrame | None = None, replayed: pl.DataFrame | None = None) -> None:
    """Everything one batch of landing ``key``'s booker produced, and the sequence it consumed
    through, in ONE transaction.

    ``keys``: the (book, asset) whose lots and openings changed. Their openings are replaced
    whole, unless ``replayed`` names the keys whose are: then the other keys' ``openings`` are
    added to what they hold. Their lots too (``lots`` = all of them) unless ``lots_gone`` is given: then the
    lots are a difference, the rows ``lots_gone`` deleted (each must be there: else the
    database is not the state the booker holds, and nothing commits) and ``lots`` added."""
    fills, legs, starts = _columns(fills, FILLS_ROWS.names()), _columns(legs, LEGS_ROWS.names()), _columns(starts, START_ROWS.names())
    quarantine = _columns(quarantine, ["subject", "stream_seq", "reason", "raw"])
    changed = (keys if replayed is None else replayed).select("book", "asset").unique()
    lots, openings = _columns(lots, LOTS_STATE.names()), _columns(openings, OPENINGS.names())
    day_pnl, live = _columns(day_pnl, DAY_PNL.names()), _columns(live, LIVE_ROWS.names())
    gone = None if lots_gone is None else _columns(lots_gone, LOTS_STATE.names())
    with conn.transaction():
        _stage(conn)
        rows = sum(frame.height for frame in (fills, legs, starts, changed, lots, openings, day_pnl, live, quarantine))
        if rows + (0 if gone is None else gone.height) <= SMALL_BATCH_ROWS and _literals_safe(conn):
            tables = [("s_stream_fills", fills, True), ("s_stream_legs", legs, True), ("s_stream_start", starts, True),
                      ("s_keys", changed, False)]
            if gone is None:
                tables += [("s_lot_keys", keys.select("book", "asset").unique(), False), ("s_stream_lots", lots, True)]
            else:
                tables.append(("s_lots_gone", gone, True))
            tables += [("s_stream_lot_openings", openings, True), ("s_stream_day_pnl", day_pnl, True),
                       ("s_live", live, True), ("s_stream_quarantine", quarantine, True)]
            if _commit_as_text(conn, key, consumer, last_seq, tables, None if gone is None else lots):
                return
        conn.execute(BATCH_PLAN)
        conn.execute(ASYNC_COMMIT)
        _fills_and_legs(conn, key, fills, legs)
        staged = {
            "s_stream_start": _copy(conn, "s_stream_start", "stream_start", starts, key),
            "s_keys": _copy(conn, "s_keys", "stream_lots", changed),
        }
        if gone is None:
            staged["s_lot_keys"] = _copy(conn, "s_lot_keys", "stream_lots", keys.select("book", "asset").unique())
            staged["s_stream_lots"] = _copy(conn, "s_stream_lots", "stream_lots", lots, key)
        else:
            _lots_difference(conn, key, gone, lots)
        staged |= {
            "s_stream_lot_openings": _copy(conn, "s_stream_lot_openings", "stream_lot_openings", openings, key),
            # In their primary key's order: the upserts walk the index once, not at random.
            "s_stream_day_pnl": _copy(conn, "s_stream_day_pnl", "stream_day_pnl", day_pnl, key,
                                      ("business_date", "venue", "account", "asset")),
            "s_live": _copy(conn, "s_live", "live_positions", live, key, ("venue", "account", "asset")),
            "s_stream_quarantine": _copy(conn, "s_stream_quarantine", "stream_quarantine", quarantine, key),
        }
        # A statement over empty staging tables changes nothing: a small batch skips it. The rest,
        # and the consumed sequence, go in one round trip (no parameters: the simple query
        # protocol takes several statements; the values are quoted literals).
        conn.execute(sql.SQL(";\n").join([*_moves(key, staged), _offset(key, consumer, last_seq)]))


def _columns(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """``frame``'s ``names`` columns in that order (most frames come so already: no step then)."""
    return frame if frame.columns == list(names) else frame.select(names)


def ledger_key(venue: str, account: str, symbol: str, trade_id: str) -> str:
    """One fill's :func:`ledger_keys` text (the quick way's, a fill at a time)."""
    return f"{len(venue)}:{venue}{len(account)}:{account}{len(symbol)}:{symbol}{trade_id}"


def ledger_keys(frame: pl.DataFrame) -> pl.Series:
    """Each row's ledger key (venue, account, symbol, trade id) as one text: the length of each
    part before it, so no two keys give the same text whatever their parts hold. One short
    string a fill, not a tuple of four: a million keys seen take ~120 MB, not ~330 MB."""
    parts = ["venue", "account", "symbol", "trade_id"]
    return frame.select(pl.format("{}:{}{}:{}{}:{}{}", *[e for c in parts[:3] for e in (pl.col(c).str.len_chars(), pl.col(c))],
                                  pl.col("trade_id")).alias("ledger_key")).to_series()


def load_books(conn: psycopg.Connection, key: str,
               method: str) -> tuple[Books, pl.DataFrame, pl.DataFrame]:
    """(live books, starting states, ledger keys seen: venue, account, symbol, trade_id) of
    landing ``key`` as its last commit left them."""
    mine = {"landing": key}
    books = Books(method)
    books.trades = read_frame(conn, """
        SELECT l.venue, l.account, l.asset, l.business_date, l.ts, l.stream_seq, l.leg_id, l.qty, l.unit_price
        FROM utl.stream_legs l WHERE l.landing = %(landing)s AND l.counted AND l.unit_price IS NOT NULL
        ORDER BY l.stream_seq, l.leg_id""", mine)
    books.openings = _cast(read_frame(conn, "SELECT * FROM utl.stream_lot_openings WHERE landing = %(landing)s",
                                      mine), OPENINGS)
    books.lots = _cast(read_frame(conn, "SELECT * FROM utl.stream_lots WHERE landing = %(landing)s", mine), LOTS_STATE)
    books.day_pnl = _cast(read_frame(conn, "SELECT * FROM utl.stream_day_pnl WHERE landing = %(landing)s", mine),
                          DAY_PNL)
    books.holdings = _cast(read_frame(conn, "SELECT venue, account, asset, qty, last_trade_ts, stream_seq "
                                            "FROM utl.live_positions WHERE landing = %(landing)s", mine), HOLDINGS)
    starts = _cast(read_frame(conn, "SELECT * FROM utl.stream_start WHERE landing = %(landing)s", mine), START_ROWS)
    seen = _cast(read_frame(conn, "SELECT venue, account, symbol, trade_id FROM utl.stream_fills "
                              "WHERE landing = %(landing)s", mine), SEEN)
    return books, starts, seen


def _cast(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    if frame.height == 0:
        return schema.to_frame()
    return frame.select(schema.names()).cast(schema)


def stream_day_state(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> dict[str, pl.DataFrame]:
    """``landing``'s stream state at the end of ``day``: positions (from its start and legs),
    open lots (the opening of each key's next traded date, else its lots now) and realized PnL."""
    mine = {"day": day, "landing": stream_key(landing)}
    positions = read_frame(conn, """
        WITH legs AS (
            SELECT * FROM utl.stream_legs WHERE landing = %(landing)s AND counted
        ), moved AS (
            SELECT venue, account, asset, sum(qty) AS qty FROM legs
            WHERE business_date <= %(day)s GROUP BY venue, account, asset
        ), started AS (
            SELECT p.venue, p.account, p.asset, p.qty - coalesce(m.qty, 0) AS qty
            FROM utl.live_positions p
            LEFT JOIN (SELECT venue, account, asset, sum(qty) AS qty FROM legs
                       GROUP BY venue, account, asset) m USING (venue, account, asset)
            WHERE p.landing = %(landing)s
        )
        SELECT venue, account, asset, sum(qty) AS qty FROM (
            SELECT * FROM started UNION ALL SELECT * FROM moved) x
        GROUP BY venue, account, asset
    """, mine)
    lots = read_frame(conn, """
        WITH openings AS (
            SELECT * FROM utl.stream_lot_openings WHERE landing = %(landing)s
        ), nxt AS (
            SELECT book, asset, min(business_date) AS business_date FROM openings
            WHERE business_date > %(day)s GROUP BY book, asset
        )
        SELECT o.book, o.asset, o.trade_id, o.opened_ts, o.qty, o.entry_price
        FROM openings o JOIN nxt USING (book, asset, business_date) WHERE o.qty <> 0
        UNION ALL
        SELECT l.book, l.asset, l.trade_id, l.opened_ts, l.qty, l.entry_price
        FROM utl.stream_lots l WHERE l.landing = %(landing)s
            AND NOT EXISTS (SELECT 1 FROM nxt WHERE nxt.book = l.book AND nxt.asset = l.asset)
    """, mine)
    pnl = read_frame(conn, "SELECT venue, account, asset, realized_pnl FROM utl.stream_day_pnl "
                           "WHERE landing = %(landing)s AND business_date = %(day)s", mine)
    return {"positions": positions, "lots": lots, "pnl": pnl}


def of_landing(conn: psycopg.Connection, table: str, landing: Path | None) -> tuple[str, dict]:
    """A WHERE clause's landing part for ``utl.<table>``: where the table keeps each landing's
    rows apart (a ``landing`` column, the folder's absolute path), only ``landing``'s."""
    if landing is None:
        return "", {}
    found = conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = 'utl' AND table_name = %s "
                         "AND column_name = 'landing'", (table,)).fetchone()
    return (" AND landing = %(landing)s", {"landing": str(landing.resolve())}) if found else ("", {})


def eod_day_positions(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> pl.DataFrame:
    where, params = of_landing(conn, "positions", landing)
    return read_frame(conn, "SELECT venue, account, asset, qty FROM utl.positions WHERE business_date = %(d)s" + where,
                      {"d": day, **params})


def eod_day_state(conn: psycopg.Connection, storage: Path, day: dt.date,
                  landing: Path | None = None) -> dict[str, pl.DataFrame]:
    """The EOD run's state at the end of ``day``: utl.positions, its lots Parquet, utl.pnl."""
    positions = eod_day_positions(conn, day, landing)
    path = partition_path(storage, "lots", day)
    lots = pl.read_parquet(path) if path.exists() else LOTS_STATE.to_frame()
    where, params = of_landing(conn, "pnl", landing)
    pnl = read_frame(conn, "SELECT book, asset, realized_pnl FROM utl.pnl WHERE business_date = %(d)s" + where,
                     {"d": day, **params})
    return {"positions": positions, "lots": lots, "pnl": pnl}


# ---------------------------------------------------------------- a quick batch (utl.stream.quick)

def _text_literal(value: str) -> str:
    return "'" + (value.replace("'", "''") if "'" in value else value) + "'"


_LITERAL = {
    # Exact as they are: every Decimal of a quick batch holds at most 18 places (read at them,
    # summed, or rounded to them), and PostgreSQL reads ``1E+1`` or ``0E-18`` as the numbers they are.
    Decimal: str,
    str: _text_literal,
    int: str,
    bool: lambda value: "true" if value else "false",
    type(None): lambda value: "NULL",
    dt.datetime: lambda value: "'" + _time_text(value) + "'",
    dt.date: lambda value: "'" + value.isoformat() + "'",
}
"""A Python value of a quick batch's rows as an SQL literal, by its type (one look-up a value:
a batch writes ~85 values a fill)."""


_TIMES: dict[dt.datetime, str] = {}


def _time_text(value: dt.datetime) -> str:
    """An aware time as PostgreSQL reads it, with its offset (an SQL literal's text and a COPY
    value alike); remembered (a fill's time is written ~10 times: its row, its legs, its
    positions), up to 100,000 of them."""
    text = _TIMES.get(value)
    if text is None:
        if len(_TIMES) >= 100_000:
            _TIMES.clear()
        text = _TIMES[value] = value.isoformat()
    return text


def _literal(value) -> str:
    return _LITERAL[type(value)](value)


def _values(rows: list[tuple], key: str | None = None, casts: tuple[str, ...] = ()) -> str:
    lead = "(" if key is None else "(" + _text_literal(key) + ","
    form = _LITERAL
    if casts:
        return ",".join(lead + ",".join([form[type(v)](v) + c for v, c in zip(row, casts)]) + ")" for row in rows)
    return ",".join([lead + ",".join([form[type(v)](v) for v in row]) + ")" for row in rows])


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _copy_str(value: str) -> str:
    # isprintable() is false for a tab, a line end and every other control character: only those
    # four are escaped (COPY reads any other character as itself).
    return value if value.isprintable() and "\\" not in value else value.translate(_COPY_ESCAPES)


_COPY = {
    Decimal: str,  # exact as it is (see _LITERAL)
    str: _copy_str,
    int: str,
    bool: lambda value: "t" if value else "f",
    type(None): lambda value: "\\N",
    dt.datetime: _time_text,
    dt.date: dt.date.isoformat,
}
"""A Python value of a quick batch's rows in COPY's text format, by its type."""


def copy_text(rows: list[tuple], key: str | None = None) -> str:
    """``rows`` (of the types :data:`_COPY` names) as the data of ``COPY ... FROM STDIN`` in text
    format, each led by ``key`` unless None. psycopg's ``write_row`` dumps each value through its
    adapters one call at a time: ~40% of a quick commit's own CPU, ~4 times this."""
    lead = "" if key is None else _copy_str(key) + "\t"
    form = _COPY
    return "".join([lead + "\t".join([form[type(v)](v) for v in row]) + "\n" for row in rows])


def _insert(table: str, columns: list[str], rows: list[tuple], key: str, tail: str = "") -> str:
    names = ", ".join(["landing", *columns])
    return f"INSERT INTO utl.{table} ({names}) VALUES {_values(rows, key)}{tail}"


_LOT_CASTS = ("::text", "::text", "::text", "::timestamptz", "::numeric", "::numeric")


def commit_quick(conn: psycopg.Connection, key: str, consumer: str, batch) -> None:
    """A quick batch (:class:`utl.stream.quick.QuickBatch`) and its last sequence in ONE
    transaction, straight into the tables: what :func:`commit_batch` writes for the same rows,
    without its staging tables (each costs a truncation at commit) and frames. The rows that
    only go in (fills, legs, lots, openings) are COPYed, a row at a time from the tuples (a
    third of what the server spends on the same rows as INSERT ... VALUES: 13 against 39 us a
    fill's legs here); the deletes before them and the upserts and the sequence after them go as
    statement texts. A fill whose ledger key is there already, or a closed lot that is not,
    means the database is not the state the booker holds: nothing commits and the booker
    stops, and its successor loads what the database holds."""
    if not _literals_safe(conn):
        from utl.stream.quick import as_frames  # a backslash is an escape here: the frames' COPY path
        commit_batch(conn, key, consumer, batch.last_seq,
                     quarantine=pl.DataFrame(schema={"subject": pl.String, "stream_seq": pl.Int64, "reason": pl.String,
                                                     "raw": pl.String}), **as_frames(batch))
        return
    landing = _literal(key)
    before = [BATCH_PLAN, ASYNC_COMMIT]
    if batch.starts:
        before.append(_insert("stream_start", START_ROWS.names(), batch.starts, key, " ON CONFLICT DO NOTHING"))
    # Deleted as the frames' commit deletes (:func:`_probed_delete`): one index probe per row named.
    if batch.lots_gone is None:
        if batch.lot_keys:
            keys = f"(SELECT * FROM (VALUES {_values(batch.lot_keys, casts=_LOT_CASTS[:2])}) AS v(book, asset))"
            before.append(_probed_delete("stream_lots", keys, ("book", "asset")).replace("%(landing)s", landing))
    elif batch.lots_gone:
        gone = f"(SELECT * FROM (VALUES {_values(batch.lots_gone, casts=_LOT_CASTS)}) AS v({', '.join(LOTS_STATE.names())}))"
        before.append("WITH gone AS (" + _probed_delete("stream_lots", gone, tuple(LOTS_STATE.names()))
                      .replace("%(landing)s", landing) + " RETURNING 1) SELECT 'lots gone', count(*) FROM gone")
    after = []
    if batch.day_pnl:
        after.append(_insert("stream_day_pnl", DAY_PNL.names(), batch.day_pnl, key,
                             " ON CONFLICT (landing, business_date, venue, account, asset) "
                             "DO UPDATE SET realized_pnl = EXCLUDED.realized_pnl"))
    if batch.live:
        after.append(_insert("live_positions", LIVE_ROWS.names(), batch.live, key, """
                ON CONFLICT (landing, venue, account, asset) DO UPDATE SET qty = EXCLUDED.qty,
                    cost_basis = EXCLUDED.cost_basis, avg_cost = EXCLUDED.avg_cost,
                    realized_pnl = EXCLUDED.realized_pnl, last_trade_ts = EXCLUDED.last_trade_ts,
                    stream_seq = EXCLUDED.stream_seq, updated_at = now()"""))
    after.append(_offset(key, consumer, batch.last_seq).as_string(conn))
    with conn.transaction():
        cursor = conn.execute(";\n".join(before))
        while True:
            if cursor.description is not None:
                row = cursor.fetchone()
                if row is not None and row[0] == "lots gone" and row[1] != len(batch.lots_gone):
                    raise _lots_missing(key, row[1], len(batch.lots_gone))
            if not cursor.nextset():
                break
        try:
            with conn.cursor() as cursor:
                for table, columns, rows in (("stream_fills", FILLS_ROWS.names(), batch.fills),
                                             ("stream_legs", LEGS_ROWS.names(), batch.legs),
                                             ("stream_lots", LOTS_STATE.names(), batch.lots),
                                             ("stream_lot_openings", OPENINGS.names(), batch.openings)):
                    if rows:
                        names = ", ".join(["landing", *columns])
                        with cursor.copy(f"COPY utl.{table} ({names}) FROM STDIN") as copy:
                            copy.write(copy_text(rows, key))
        except psycopg.errors.UniqueViolation as exc:
            raise RuntimeError(f"utl.stream_fills of landing {key or '(none)'}: a fill of the batch is there already "
                               f"({exc.diag.message_detail}); the database is not the state this booker holds") from exc
        conn.execute(";\n".join(after))
