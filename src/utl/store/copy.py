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

Rows go in key order (a btree built or appended in order needs no page splits in the middle,
and PostgreSQL's sort of presorted keys is one pass), sorted a key range at a time by a worker
thread while the previous range is encoded and stored: on two cores the sort overlaps the
server's work instead of preceding it. pgpq's encoder holds the GIL, so it runs in the calling
thread while psycopg's writer thread sends the previous chunk (an encoder thread of its own was
measured no faster).
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator, Sequence

import polars as pl
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

try:
    import pgpq
except ImportError:  # no wheel for this platform
    pgpq = None

MAX_RANGES = 1024
"""Key ranges sorted one by one at most; leading keys with more values together are sorted whole."""

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
               column_types: dict[str, str] | None, order: Sequence[str] = (), *, freeze: bool = False) -> int:
    """COPY ``frame`` into ``target`` in ``order`` (binary where every column has an exact
    binary form; CSV when ``column_types`` is None, as for a staging table whose types
    are not looked up); return the rows.

    ``freeze`` (only for a table created in the current subtransaction, with no cursor open)
    writes the rows frozen and their pages all-visible, as VACUUM would later, so the first
    reads after the commit set no hint bits and rewrite no page."""
    if frame.height == 0:
        return 0
    columns = sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    casts = None if column_types is None else binary_columns(frame, column_types)
    fmt = sql.SQL("csv" if casts is None else "binary")
    options = sql.SQL(", FREEZE" if freeze else "")
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {}{})").format(target, columns, fmt, options)
    ranges = _sorted_in_background(frame if casts is None else frame.select(casts), order)
    with conn.cursor() as cursor:
        with cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
            if casts is None:
                _write_csv(copy, ranges)
            else:
                _write_binary(copy, ranges)
        return cursor.rowcount


def sorted_ranges(frame: pl.DataFrame, order: Sequence[str]) -> Iterator[pl.DataFrame]:
    """``frame`` sorted by ``order`` (text by its bytes, as COLLATE "C"), one range of its leading
    keys at a time, in order.

    Key columns with one value (the date and landing of a day's write) are left out of the
    sort. The leading keys that vary are split into ranges while they name at most MAX_RANGES
    of them together (venue, then account), each range sorted by the keys left: a
    one-column text sort each, in about a third of the CPU of sorting the whole frame by every
    key. The whole frame is sorted at once where the first varying key has nulls or more than
    MAX_RANGES values.
    """
    keys = [c for c in order if not _constant(frame.get_column(c))]
    if not keys:
        yield frame
        return
    lead: list[str] = []
    ranges = 1
    for column in keys[:-1]:
        values = frame.get_column(column)
        if values.null_count() or ranges * values.n_unique() > MAX_RANGES:
            break
        lead.append(column)
        ranges *= values.n_unique()
    rest = [_byte_ordered(frame, c) for c in keys[len(lead):]]
    if not lead:
        yield frame.sort(rest)
        return
    parts = frame.partition_by(lead, as_dict=True)
    # Python orders str by code point, which is UTF-8 byte order.
    for key in sorted(parts, key=lambda k: tuple(v.encode() if isinstance(v, str) else v for v in k)):
        yield parts[key].sort(rest)


def _constant(values: pl.Series) -> bool:
    nulls = values.null_count()
    return nulls == values.len() or (nulls == 0 and bool((values == values[0]).all()))


def _byte_ordered(frame: pl.DataFrame, column: str) -> pl.Expr:
    """The sort key of ``column``: Polars sorts String by its UTF-8 bytes (tests/store/test_copy.py
    checks it), as COLLATE "C" does; a Categorical or Enum column sorts as its text."""
    dtype = frame.schema[column]
    text = dtype == pl.Categorical or isinstance(dtype, (pl.Categorical, pl.Enum))
    return pl.col(column).cast(pl.String) if text else pl.col(column)


def _sorted_in_background(frame: pl.DataFrame, order: Sequence[str]) -> Iterator[pl.DataFrame]:
    """:func:`sorted_ranges`, computed by a worker thread one range ahead (Polars sorts without the GIL)."""
    if not order:
        yield frame
        return
    ahead: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()  # the consumer gave up (COPY failed): stop sorting, let go of the frame
    done = object()

    def hand_over(item: object) -> None:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for part in sorted_ranges(frame, order):
                if stop.is_set():
                    return
                hand_over(part)
        except BaseException as error:  # handed to the consumer, raised there
            hand_over(error)
        hand_over(done)

    threading.Thread(target=produce, name="utl-sort-ranges", daemon=True).start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _write_binary(copy: psycopg.Copy, ranges: Iterator[pl.DataFrame]) -> None:
    encoder = None
    for part in ranges:
        table = part.to_arrow()
        if encoder is None:
            encoder = pgpq.ArrowToPostgresBinaryEncoder(table.schema)
            copy.write(encoder.write_header())
        for batch in table.to_batches(max_chunksize=BATCH_ROWS):
            copy.write(encoder.write_batch(batch))
    if encoder is not None:
        copy.write(encoder.finish())


def _write_csv(copy: psycopg.Copy, ranges: Iterator[pl.DataFrame]) -> None:
    for part in ranges:
        for offset in range(0, part.height, BATCH_ROWS):
            buffer = io.BytesIO()  # a fresh one: the writer thread may still hold the last
            # CSV as COPY reads it: null is an empty field, an empty string is "".
            part.slice(offset, BATCH_ROWS).write_csv(buffer, include_header=False)
            copy.write(buffer.getbuffer())
