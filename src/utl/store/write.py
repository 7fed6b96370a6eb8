"""Replace a slice of a table with a frame, atomically, at binary COPY speed.

A rerun of a date replaces what that date wrote and never duplicates it (contract), so a
write is "delete the slice, COPY the frame in" in one transaction. A crash or a bad value
anywhere before the commit leaves the previous rows whole: an aborted transaction changes
nothing.

Two ways in, the same result (bench/store_write.py measures both):
- A large slice of one day of a date-partitioned table (``utl.positions``, ``utl.breaks``,
  ``utl.pnl``: month partitions split by day, ``utl.store.partitions``) is built as a fresh
  table with no index, filled by COPY, and swapped for the day's partition: the old one is
  dropped, the new one attached, which builds its indexes in one sorted pass. The slice's
  own values (the date, the landing) are the new table's column defaults while it is filled,
  so they are not sent and parsed on every row; its rows are written frozen (``COPY ...
  FREEZE``: the table is new in the transaction, so no other transaction can have seen it
  empty), its pages all-visible from the commit on (those COPY starts empty: all of them on
  PostgreSQL 15, 87% on 18), so neither the first reads nor a later VACUUM rewrite them; its
  key is sorted by the serving process alone, in memory (the write raises
  ``maintenance_work_mem`` for it, up to INDEX_SORT_MAX_KB, and turns parallel workers off:
  on two cores they cost 0.5 s more CPU per million rows, their sorted runs always going
  through temporary files, for no shorter wall time). When the day holds only the slice's
  landing (its key's minimum and maximum say so), no scan looks for other slices' rows. Deleting a
  million rows and inserting a million with the same keys through the primary key instead
  costs three times as long: every new key lands beside a dead one that must be checked.
  Dropping the old day locks its month partition until the caller's transaction commits:
  a reader of that month waits for the commit (other months are read as usual), where
  DELETE would have let it read the previous rows meanwhile.
  From SPLIT_MIN_ROWS rows (and no other slice's rows to carry over) the new day is built in
  two halves at once, split by range of its last key column at the median: a second
  connection fills and indexes the lower half and commits it unattached, this one the upper
  half, and the caller's transaction attaches both under the new day (partitioned in two)
  before it swaps it in, so the previous day stays whole until that commit. One server
  process per half: on two cores the server's parse, store and index build, which the
  client's encoding otherwise waits on, run side by side (``_swap_day_split``).
- Anything else (small frames, tables without day partitions, months created before days
  existed): DELETE the slice, then COPY into the table.

Numbers go in PostgreSQL's binary format from the Arrow buffers (``utl.store.copy``):
``Decimal`` digits to ``numeric`` digits, no float and no text in between. Float columns
are refused: UTL has none, and one here would mean an exactness bug upstream.

Rows are sent sorted by the primary key (byte order, as the COLLATE "C" key columns sort),
a key range at a time while the previous one is stored (``utl.store.copy``), so the server's
sort of the key is one pass over presorted input.

Commits stay synchronous: ``synchronous_commit = off`` would save only the last WAL flush
(10-30 ms of a 1 M-row write, measured) and would let a server crash lose a date the run was
told is written, after its Parquet files were moved in and its run recorded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
from collections.abc import Mapping

import polars as pl
import psycopg
from psycopg import sql

from utl.store.copy import copy_frame, table_column_types
from utl.store.partitions import (
    PARTITION_LOCK_KEY,
    day_partition,
    ensure_day_partitions,
    month_partition,
    range_partition_column,
    relation_kind,
)
from utl.store.read import read_frame  # the reading half lives in read.py; importable from here too

__all__ = ["read_frame", "replace_rows"]

SWAP_MIN_ROWS = 20_000
"""From this many rows a day's partition is rebuilt and swapped in rather than deleted and
re-inserted: below it the DDL (create, attach, drop) costs more than the index work it saves."""

SPLIT_MIN_ROWS = 200_000
"""From this many rows (and no other slice's rows to carry over) a swapped day is built as two
halves at once, on this connection and a second one: two server processes parse and index
them side by side (``_swap_day_split``)."""

INDEX_SORT_MAX_KB = 1024 * 1024
"""At most this much server memory (kB) for sorting a swapped day's key: 1 GB, about 7 M rows
of positions; a larger day's key is sorted through temporary files, as PostgreSQL does by default."""

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
    column_types = table_column_types(conn, schema, name)
    if not column_types:
        raise ValueError(f"table {schema}.{name} does not exist")
    _check_frame(frame, set(column_types), where, table)
    key = range_partition_column(conn, schema, name)
    if key is not None and key in frame.columns and frame.height > 0:
        if frame.schema[key] != pl.Date:
            raise TypeError(f"{table}: partition column {key} must be a Date column, not {frame.schema[key]}")
        ensure_day_partitions(conn, schema, name, frame.get_column(key).unique().drop_nulls().to_list())
    primary_key = [c for c in _primary_key(conn, schema, name) if c in frame.columns]

    target = sql.Identifier(schema, name)
    day = _swappable_day(conn, schema, name, key, frame, where)
    if day is not None:
        try:
            with conn.transaction():
                return _swap_day(conn, schema, name, key, day, frame, where, column_types, primary_key)  # type: ignore[arg-type]
        except BaseException:
            _drop_failed_halves(conn, schema, day_partition(name, day))
            raise
    with conn.transaction():
        if where:
            condition, params = _where_sql(where)
            conn.execute(sql.SQL("DELETE FROM {} WHERE {}").format(target, condition), params)
        else:
            # Transactional like DELETE; readers wait for the commit instead of seeing old rows.
            conn.execute(sql.SQL("TRUNCATE {}").format(target))
        return copy_frame(conn, target, frame, column_types, primary_key)


def _swappable_day(conn: psycopg.Connection, schema: str, name: str, key: str | None, frame: pl.DataFrame,
                   where: Mapping[str, object]) -> dt.date | None:
    """The day whose partition this write may rebuild and swap in, or None."""
    if key is None or frame.height < SWAP_MIN_ROWS:
        return None
    day = where.get(key)
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        return None
    if relation_kind(conn, schema, month_partition(name, day)) != "p":
        return None  # a month from before day partitions
    # 'p': a day built in two halves (_swap_day_split)
    return day if relation_kind(conn, schema, day_partition(name, day)) in ("r", "p") else None


def _swap_day(conn: psycopg.Connection, schema: str, name: str, key: str, day: dt.date, frame: pl.DataFrame,
              where: Mapping[str, object], column_types: dict[str, str], primary_key: list[str]) -> int:
    """Build ``day``'s partition afresh (the rows outside the slice, then the frame), swap it in."""
    leaf = day_partition(name, day)
    fresh = f"{leaf}_new"
    bound = f"{leaf}_bound"
    next_day = day + dt.timedelta(days=1)
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
    work_mem_kb, settings, no_cursors = conn.execute(
        "SELECT (SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'),"
        " ARRAY[current_setting('maintenance_work_mem'), current_setting('max_parallel_maintenance_workers')],"
        " NOT EXISTS (SELECT FROM pg_cursors)"
    ).fetchone()  # type: ignore[misc]
    _drop_unattached_halves(conn, schema, leaf)
    kept = {column: value for column, value in where.items() if column != key}
    carry = bool(kept) and not _only_in_slice(conn, schema, leaf, kept)
    constants = {c: v for c, v in where.items() if _is_text_or_date(v, column_types[c])}
    if not carry and frame.height >= SPLIT_MIN_ROWS:
        written = _swap_day_split(conn, schema, name, key, day, frame, constants, column_types, primary_key,
                                  work_mem_kb, freeze=no_cursors)
        if written is not None:
            _set_local(conn, *settings)  # the caller's transaction goes on with its own settings
            return written
    # The CHECK proves every row is in the day's range, so ATTACH skips scanning for it.
    conn.execute(
        sql.SQL(
            "CREATE TABLE {fresh} (LIKE {parent} INCLUDING ALL EXCLUDING INDEXES,"
            " CONSTRAINT {bound} CHECK ({key} >= {day} AND {key} < {next_day}))"
        ).format(
            fresh=sql.Identifier(schema, fresh), parent=sql.Identifier(schema, name), bound=sql.Identifier(bound),
            key=sql.Identifier(key), day=sql.Literal(day), next_day=sql.Literal(next_day),
        )
    )
    kept_rows = 0
    if carry:
        # the day's rows of other slices (another venue, another landing) stay as they are
        columns = sql.SQL(", ").join(map(sql.Identifier, column_types))
        condition, params = _where_sql(kept)
        kept_rows = conn.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} WHERE ({}) IS NOT TRUE").format(
                sql.Identifier(schema, fresh), columns, columns, sql.Identifier(schema, leaf), condition
            ),
            params,
        ).rowcount
    # The slice's own values (the date, the landing) go in as the new table's defaults, not row by row.
    if constants:
        _set_defaults(conn, schema, fresh, {c: sql.Literal(v) for c, v in constants.items()})
    # FREEZE: the table is new in this subtransaction; an open cursor would make COPY refuse it.
    written = copy_frame(conn, sql.Identifier(schema, fresh), frame.drop(list(constants)), column_types,
                         [c for c in primary_key if c not in constants], freeze=no_cursors)
    if constants:  # back to the table's own defaults
        parent_defaults = dict(conn.execute(
            "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = %s::regclass AND a.attname = ANY(%s)",
            (f"{schema}.{name}", list(constants)),
        ).fetchall())
        _set_defaults(conn, schema, fresh, {c: None if parent_defaults.get(c) is None else sql.SQL(parent_defaults[c])
                                            for c in constants})
    # The indexes are built when the day is attached: by this process alone, its sort in memory.
    sort_kb = max(work_mem_kb, min(_index_sort_kb(frame, primary_key, written + kept_rows), INDEX_SORT_MAX_KB))
    _set_local(conn, f"{sort_kb}kB", "0")
    conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, leaf)))
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(sql.Identifier(schema, fresh), sql.Identifier(leaf)))
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(schema, month_partition(name, day)), sql.Identifier(schema, leaf),
            sql.Literal(day), sql.Literal(next_day),
        )
    )
    conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(schema, leaf), sql.Identifier(bound)))
    _set_local(conn, *settings)  # the caller's transaction goes on with its own settings
    return written


def _swap_day_split(conn: psycopg.Connection, schema: str, name: str, key: str, day: dt.date, frame: pl.DataFrame,
                    constants: Mapping[str, object], column_types: dict[str, str], primary_key: list[str],
                    work_mem_kb: int, *, freeze: bool) -> int | None:
    """Build ``day``'s partition from ``frame`` in two halves at once and swap it in; None when
    the frame has no key column to split it by, or no second connection can be opened.

    One server process parses, stores and indexes a day's rows one after the other, while the
    client's encoding waits on it: on two cores the write is that one process's time. Here the
    day becomes a table partitioned by range of one key column, split at its median: a second
    connection builds the lower half (COPY FREEZE into a new table, then its primary key) and
    commits it, unattached, while this connection builds the upper half in the caller's
    transaction; then, still in that transaction, both are attached under a new day table that
    replaces the old day, as in ``_swap_day``. Until that commit readers see the previous day
    whole; the lower half of a write that fails or is rolled back is left unattached, and is
    dropped by the next write of the day (``_drop_unattached_halves``) if not already here.
    """
    order = [c for c in primary_key if c not in constants]
    split = _split_point(conn, schema, name, frame, [c for c in order if c != key])
    if split is None:
        return None
    column, value = split
    definitions = _half_table_columns(conn, schema, name, constants)
    if definitions is None:
        return None
    columns, restore, indexes = definitions
    if not conn.execute("SELECT current_user = session_user").fetchone()[0]:  # type: ignore[index]
        return None  # SET ROLE: a second session would own its half as another role, which ATTACH refuses
    try:
        helper = psycopg.connect(conn.info.dsn, password=conn.info.password or None, autocommit=True,
                                 application_name="utl-half", connect_timeout=10)
    except psycopg.OperationalError:
        return None
    leaf = day_partition(name, day)
    token = secrets.token_hex(4)
    lower, upper = f"{leaf}_{token}_1", f"{leaf}_{token}_2"
    next_day = day + dt.timedelta(days=1)
    bound = sql.SQL("CONSTRAINT {} CHECK ({} >= {} AND {} < {})").format(
        sql.Identifier(f"{leaf}_bound"), sql.Identifier(key), sql.Literal(day), sql.Identifier(key), sql.Literal(next_day))
    below = pl.col(column).cast(pl.String) < value if isinstance(value, str) else pl.col(column) < value
    # Each half's CHECK on the split column proves its range, so attaching it scans nothing.
    ranges = {lower: sql.SQL("<"), upper: sql.SQL(">=")}
    halves = {lower: below, upper: ~below}  # each filtered by the thread that writes it
    half_check = {half: sql.SQL("CONSTRAINT {} CHECK ({} {} {})").format(
        sql.Identifier(f"{leaf}_half"), sql.Identifier(column), ranges[half], sql.Literal(value)) for half in halves}
    fresh = sql.Identifier(schema, f"{leaf}_new")
    try:
        failure: list[BaseException] = []
        lower_rows: list[int] = []

        def build_lower() -> None:
            try:
                with helper.transaction():
                    lower_rows.append(_fill_half(
                        helper, schema, lower, columns, restore, indexes, bound, half_check[lower], frame,
                        halves[lower], constants, column_types, order, primary_key, work_mem_kb, freeze=True))
            except BaseException as error:  # raised by the caller
                failure.append(error)

        worker = threading.Thread(target=build_lower, name="utl-lower-half", daemon=True)
        worker.start()
        try:
            written = _fill_half(conn, schema, upper, columns, restore, indexes, bound, half_check[upper], frame,
                                 halves[upper], constants, column_types, order, primary_key, work_mem_kb, freeze=freeze)
        except BaseException:
            with contextlib.suppress(psycopg.Error):
                helper.cancel_safe()  # the write has failed: the lower half need not be finished
            raise
        finally:
            worker.join()
        if failure:
            raise failure[0]
        written += lower_rows[0]
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL EXCLUDING INDEXES, {}) PARTITION BY RANGE ({})").format(
                fresh, sql.Identifier(schema, name), bound, sql.Identifier(column)))
        for half, bounds in ((lower, (sql.SQL("MINVALUE"), sql.Literal(value))),
                             (upper, (sql.Literal(value), sql.SQL("MAXVALUE")))):
            conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                fresh, sql.Identifier(schema, half), *bounds))
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, leaf)))
        conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(fresh, sql.Identifier(leaf)))
        for number, half in enumerate((lower, upper), start=1):
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                sql.Identifier(schema, half), sql.Identifier(f"{leaf}_half")))
            conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(
                sql.Identifier(schema, half), sql.Identifier(f"{leaf}_{number}")))
            conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(schema, f"{half}_pkey"), sql.Identifier(f"{leaf}_{number}_pkey")))
        # The halves' primary keys become the day's: ATTACH finds them and builds none.
        conn.execute(sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            sql.Identifier(schema, month_partition(name, day)), sql.Identifier(schema, leaf),
            sql.Literal(day), sql.Literal(next_day)))
        conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
            sql.Identifier(schema, leaf), sql.Identifier(f"{leaf}_bound")))
        return written
    finally:
        helper.close()


def _fill_half(conn: psycopg.Connection, schema: str, table: str, columns: sql.Composable,
               restore: Mapping[str, sql.Composable | None], indexes: list[tuple[bool, str]], bound: sql.Composable,
               half_check: sql.Composable,
               frame: pl.DataFrame, half: pl.Expr, constants: Mapping[str, object], column_types: dict[str, str], order: list[str],
               primary_key: list[str], work_mem_kb: int, *, freeze: bool) -> int:
    """Create ``table`` (the day table's columns and CHECKs, the day's and the half's range), COPY
    the half in, build its primary key and the table's other indexes."""
    target = sql.Identifier(schema, table)
    frame = frame.filter(half)
    conn.execute(sql.SQL("CREATE TABLE {} ({}, {}, {})").format(target, columns, bound, half_check))
    written = copy_frame(conn, target, frame.drop(list(constants)), column_types, order, freeze=freeze)
    if restore:  # back to the table's own defaults
        _set_defaults(conn, schema, table, restore)
    sort_kb = max(work_mem_kb, min(_index_sort_kb(frame, primary_key, written), INDEX_SORT_MAX_KB))
    _set_local(conn, f"{sort_kb}kB", "0")
    index = sql.Identifier(f"{table}_pkey")
    conn.execute(sql.SQL("CREATE UNIQUE INDEX {} ON {} ({})").format(
        index, target, sql.SQL(", ").join(map(sql.Identifier, primary_key))))
    conn.execute(sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} PRIMARY KEY USING INDEX {}").format(target, index, index))
    for unique, using in indexes:
        conn.execute(sql.SQL("CREATE {}INDEX ON {} USING {}").format(sql.SQL("UNIQUE " if unique else ""), target, sql.SQL(using)))
    return written


def _split_point(conn: psycopg.Connection, schema: str, name: str, frame: pl.DataFrame,
                 candidates: list[str]) -> tuple[str, object] | None:
    """The key column to split the day by (the last varying one: the most distinct values) and its
    median, or None when that column cannot split the rows near the middle. Text splits only by a
    column sorted by its bytes (COLLATE "C"), where Polars' comparison is PostgreSQL's."""
    if not candidates:
        return None
    column = candidates[-1]
    dtype = frame.schema[column]
    values = frame.get_column(column)
    collation = conn.execute(
        "SELECT coalesce(c.collname, '') FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation"
        " WHERE a.attrelid = %s::regclass AND a.attname = %s", (f"{schema}.{name}", column)).fetchone()
    if dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum)):
        if collation is None or collation[0] not in ("C", "POSIX"):
            return None
        values = values.cast(pl.String)
    elif not (dtype == pl.Date or dtype.is_integer()):
        return None
    if values.null_count():
        return None
    sample = values.sample(n=min(values.len(), 10_001), seed=0).sort()
    value = sample[sample.len() // 2]
    below = int((values < value).sum())
    if not 0.25 * values.len() <= below <= 0.75 * values.len():
        return None
    return column, value


def _half_table_columns(conn: psycopg.Connection, schema: str, name: str, constants: Mapping[str, object]
                        ) -> tuple[sql.Composable, dict[str, sql.Composable | None], list[tuple[bool, str]]] | None:
    """The column and CHECK definitions of a half of a day of ``schema.name``, with the slice's
    values as defaults (as ``_swap_day`` does), the defaults to restore after its COPY, and the
    table's indexes other than the primary key (unique or not, ``USING`` and what follows); None
    for a table with generated or identity columns or an unvalidated CHECK. Read from the
    catalog, not by ``LIKE``: the second connection must not wait on a lock the caller's
    transaction may hold on the table (a new month's partition locks it until the commit)."""
    rows = conn.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attcollation <> t.typcollation THEN quote_ident(cn.nspname) || '.' || quote_ident(c.collname) END,
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attgenerated <> '' OR a.attidentity <> ''
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_collation c ON c.oid = a.attcollation
        LEFT JOIN pg_namespace cn ON cn.oid = c.collnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (f"{schema}.{name}",),
    ).fetchall()
    checks = conn.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                          " WHERE conrelid = %s::regclass AND contype = 'c' ORDER BY conname", (f"{schema}.{name}",)).fetchall()
    if any(row[5] for row in rows) or any(definition.endswith("NOT VALID") for _, definition in checks):
        return None
    parts: list[sql.Composable] = []
    for column, kind, collation, not_null, default, _ in rows:
        parts.append(sql.SQL(" ").join([
            sql.Identifier(column), sql.SQL(kind),
            *([sql.SQL("COLLATE ") + sql.SQL(collation)] if collation else []),
            *([sql.SQL("NOT NULL")] if not_null else []),
            *([sql.SQL("DEFAULT ") + sql.Literal(constants[column])] if column in constants
              else [sql.SQL("DEFAULT ") + sql.SQL(default)] if default is not None else []),
        ]))
    parts += [sql.SQL("CONSTRAINT {} {}").format(sql.Identifier(conname), sql.SQL(definition)) for conname, definition in checks]
    defaults = {row[0]: row[4] for row in rows}
    indexes = [(unique, definition.split(" USING ", 1)[1]) for unique, definition in conn.execute(
        "SELECT indisunique, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass AND NOT indisprimary"
        " ORDER BY indexrelid", (f"{schema}.{name}",)).fetchall()]
    return (sql.SQL(", ").join(parts), {c: None if defaults[c] is None else sql.SQL(defaults[c]) for c in constants},
            indexes)


def _drop_failed_halves(conn: psycopg.Connection, schema: str, leaf: str) -> None:
    """After a failed swap: drop the lower half its second connection committed, if any (the
    next write of the day would drop it too). Nothing here may hide the write's own error."""
    if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
        return
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK_KEY,))
            _drop_unattached_halves(conn, schema, leaf)
    except Exception:  # the connection may be gone with the write; the next write of the day drops them
        pass


def _drop_unattached_halves(conn: psycopg.Connection, schema: str, leaf: str) -> None:
    """Drop the lower halves of ``leaf`` that a failed or rolled-back write committed and never
    attached. Called under PARTITION_LOCK_KEY, which every write of a day holds from before its
    halves are made until its commit, so no other write's half can be in the making."""
    halves = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r' AND NOT c.relispartition AND c.relname ~ %s",
        (schema, f"^{leaf}_[0-9a-f]{{8}}_[12]$"),
    ).fetchall()
    for (half,) in halves:
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, half)))


def _only_in_slice(conn: psycopg.Connection, schema: str, table: str, kept: Mapping[str, object]) -> bool:
    """Whether every row of ``table`` has the one column of ``kept`` equal to its value: then no
    row of another slice is to be carried over, and the sequential scan of the whole previous day
    for them is saved. Its minimum and maximum are read from the primary key, whose leading
    column it is for the tables written by landing (an index-only scan of two entries)."""
    if len(kept) != 1:
        return False
    [(column, value)] = kept.items()
    if value is None or _is_many(value):
        return False
    return conn.execute(
        sql.SQL("SELECT coalesce(min({c}) = %s AND max({c}) = %s, true) AND NOT EXISTS (SELECT FROM {t} WHERE {c} IS NULL)"
                " FROM {t}").format(c=sql.Identifier(column), t=sql.Identifier(schema, table)),
        (value, value),
    ).fetchone()[0]  # type: ignore[index]


def _is_text_or_date(value: object, kind: str) -> bool:
    if isinstance(value, str):
        return kind in ("text", "character varying")
    return type(value) is dt.date and kind == "date"


def _set_defaults(conn: psycopg.Connection, schema: str, table: str, defaults: Mapping[str, sql.Composable | None]) -> None:
    """Set (or drop, for None) the defaults of ``table``'s columns."""
    actions = [
        sql.SQL("ALTER COLUMN {} DROP DEFAULT").format(sql.Identifier(column)) if default is None
        else sql.SQL("ALTER COLUMN {} SET DEFAULT {}").format(sql.Identifier(column), default)
        for column, default in defaults.items()
    ]
    conn.execute(sql.SQL("ALTER TABLE {} {}").format(sql.Identifier(schema, table), sql.SQL(", ").join(actions)))


def _set_local(conn: psycopg.Connection, maintenance_work_mem: str, parallel_workers: str) -> None:
    conn.execute(
        "SELECT set_config('maintenance_work_mem', %s, true), set_config('max_parallel_maintenance_workers', %s, true)",
        (maintenance_work_mem, parallel_workers),
    )


def _index_sort_kb(frame: pl.DataFrame, primary_key: list[str], rows: int) -> int:
    """Memory (kB) for PostgreSQL to sort the primary key of ``rows`` rows like ``frame``'s in
    memory: about 96 bytes a row besides the key's own (1 M positions: 110 MB measured by
    ``trace_sort``, 141 MB estimated here). Short of it, the sort spills to temporary files and
    merges them back: 0.1–0.3 s more of server CPU per million rows, measured."""
    widths = [
        pl.col(c).cast(pl.String).str.len_bytes().mean() + 1
        if frame.schema[c] in (pl.String, pl.Categorical) or isinstance(frame.schema[c], pl.Enum) else pl.lit(8)
        for c in primary_key
    ]
    key_bytes = frame.select(pl.sum_horizontal(widths)).item() if widths else 0
    return int(rows * (96 + (key_bytes or 0)) / 1024) + 1


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
