"""``utl stream``: the booker (stream.md, "Commands" and "Guarantees").

A consumer of ``UTL_FILLS`` from the sequence after the last one committed (its own pull
consumer read in bulk, :mod:`utl.stream.pull`; nats-py's ordered push consumer where the
server requires TLS), handing over messages in stream order; each
batch of messages is read (:mod:`utl.stream.message`), checked against the ledger keys
already seen (a re-sent fill books nothing, whatever its header), priced, costed
(:mod:`utl.stream.books`) and committed with its last sequence in one transaction
(:mod:`utl.stream.store`); then each changed position is published on core NATS
``utl.positions.<venue>.<account>`` (the JSON names its ``landing``). SIGINT or SIGTERM: the
batch in hand is finished and committed, then the booker exits 0.

One landing folder per booker (``utl stream --landing L``): it books into L's slice of the
stream's tables only (``landing``, 011_stream_landing), from L's starting state, with L's
``utl.toml``. Each landing's booker is its own consumer of the whole ``UTL_FILLS`` stream
(every subject: a subject names a venue and account, not a landing, and an account the
landing folder does not hold yet starts from zero as the contract says), with its own
committed sequence (``utl.stream_offset`` per (landing, consumer)) and its own advisory lock:
two landings sharing one database and one broker each book every fill once, apart.

With ``--shard I/N`` (:mod:`utl.stream.shard`) a booker keeps, loads and writes only the books
of its shard, under the consumer name ``NAME[I/N]`` and that name's lock; the other shards'
messages only move its committed sequence on.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import polars as pl
from nats.js.api import ConsumerConfig, DeliverPolicy

from utl.frames import conformed, rows_where
from utl.pnl import price_legs
from utl.positions import with_book
from utl.settings import Settings
from utl.store import Database, migrate
from utl.schemas import LOTS_STATE
from utl.stream.books import (
    DAY_PNL, HOLDINGS, LAST, OPENINGS, TRADES, Books, add_holdings, book_trades, position_rows,
)
from utl.stream.broker import STREAM, SUBJECTS, ensure_stream, servers
from utl.stream.message import Message, parse_batch, venue_account
from utl.stream.pull import PullReader, Unsupported, supported
from utl.stream.quick import MOST as QUICK_MOST, Quick, QuickBatch
from utl.stream.shard import Shard, owned, shard_count_of
from utl.stream.start import Start, landing_marks, marks_on, starting_state
from utl.stream.store import (
    FILLS_ROWS, LEGS_ROWS, LIVE_ROWS, START_ROWS, commit_batch, commit_quick, last_sequence, ledger_keys, load_books,
    stream_key, try_lock_shard,
)

POSITIONS_PREFIX = "utl.positions"


class BookerError(RuntimeError):
    """The booker cannot go on: one line saying why (nothing of the batch was committed)."""


@dataclass(frozen=True)
class BookerOptions:
    nats_url: str
    consumer: str = "utl-stream"
    stream: str = STREAM
    subjects: str = SUBJECTS
    batch: int = 20000  # a backlog amortizes each batch's fixed cost; caught up, batches are small
    wait_s: float = 0.002  # the longest a partial batch waits for more messages
    storage: Path | None = None
    shard: Shard = Shard()
    quick: bool = True  # a caught-up batch booked in Python (utl.stream.quick); False: every batch by the frames

    @property
    def name(self) -> str:
        """The consumer name the sequence commits and the lock is taken under (one per shard)."""
        return self.shard.consumer(self.consumer)


@dataclass(frozen=True)
class Batch:
    """A batch booked in memory, not yet committed."""

    last_seq: int
    rows: dict[str, pl.DataFrame]


class Booker:
    """The live books of one consumer, loaded from what its last commit left (or from the
    starting state), and the booking of one batch."""

    def __init__(self, conn, settings: Settings, landing: Path | None, options: BookerOptions,
                 say: Callable[[str], None] = print):
        self.conn, self.settings, self.landing, self.options, self.say = conn, settings, landing, options, say
        self.reporting = settings.reporting_currency
        self.key = stream_key(landing)
        books, starts, seen = load_books(conn, self.key, settings.costing_method)
        self.shard = options.shard
        self._owner: dict[str, bool] = {}
        if not self.shard.whole:  # the landing's other shards' rows are theirs
            for name in ("openings", "lots", "day_pnl", "holdings"):
                setattr(books, name, owned(getattr(books, name), self.shard, settings.book_of))
            starts = owned(starts, self.shard, settings.book_of)
            seen = owned(seen, self.shard, settings.book_of)
        books.trades = owned(self._as_trades(books.trades), self.shard, settings.book_of)
        books.last = books.trades.group_by("book", "asset").agg(pl.col("ts").max().alias("last_ts")).cast(LAST)
        if starts.height == 0 and last_sequence(conn, self.key, options.name) == 0:
            start = starting_state(conn, landing, options.storage, settings)
            books, starts = self._begin(books, start)
            self.marks = start.marks
        else:
            self.marks = landing_marks(landing, settings)
        self.books, self.starts = books, starts
        self._marks_by_day: dict[dt.date, pl.DataFrame] = {}
        self._started = set(zip(starts.get_column("venue").to_list(), starts.get_column("account").to_list()))
        self.seen: set[str] = set(ledger_keys(seen).to_list())
        # The accounts holding something, by book: a book of one account has no book-mates
        # whose share of its cost a fill moves (position_rows need not look for them).
        self._members: dict[str, set[tuple[str, str]]] = {}
        self._joined(books.holdings)
        self.last_seq = last_sequence(conn, self.key, options.name)
        self.quick = Quick(self.reporting)
        self.caught_up = True  # nothing waits behind the batch in hand (the consuming loop says)

    def _as_trades(self, stored: pl.DataFrame) -> pl.DataFrame:
        if stored.height == 0:
            return TRADES.to_frame()
        return with_book(stored, self.settings).select(
            "book", "asset", "venue", "account", "business_date", "ts", "stream_seq",
            trade_id=pl.format("{}/{}/{}", "venue", "account", "leg_id"), qty="qty", price="unit_price",
        ).cast(TRADES)

    def _begin(self, books: Books, start: Start) -> tuple[Books, pl.DataFrame]:
        """Commit the starting state before the first message."""
        start = Start(owned(start.starts, self.shard, self.settings.book_of),
                      owned(start.positions, self.shard, self.settings.book_of),
                      owned(start.lots, self.shard, self.settings.book_of), start.marks)
        lots = start.lots
        openings = lots.join(self._first_dates(start.starts), on="book", how="inner").select(
            "business_date", *lots.columns)
        books.lots, books.openings = lots, openings
        holdings = start.positions.with_columns(last_trade_ts=pl.lit(None, pl.Datetime("us", "UTC")),
                                                stream_seq=pl.lit(None, pl.Int64)).cast(HOLDINGS)
        books.holdings = holdings
        live = position_rows(books, holdings, self.settings.book_of, self.reporting)
        commit_batch(self.conn, self.key, self.options.name, 0, fills=FILLS_ROWS.to_frame(), legs=LEGS_ROWS.to_frame(),
                     starts=start.starts, keys=lots.select("book", "asset"), lots=lots, openings=openings,
                     day_pnl=books.day_pnl, live=live.cast(LIVE_ROWS), quarantine=_no_quarantine())
        return books, start.starts

    def _first_dates(self, starts: pl.DataFrame) -> pl.DataFrame:
        """Each starting book's first business date (the day after its state)."""
        rows = [(self.settings.book_of(v, a), d + dt.timedelta(days=1)) for v, a, d, _ in starts.iter_rows() if d]
        return _book_dates(rows)

    # ---------------------------------------------------------------- one batch

    def book(self, messages: list[Message]) -> list[dict]:
        """Book a batch and commit it; the changed positions to publish."""
        return self.commit(self.prepare(messages))

    def mine(self, messages: list[Message]) -> list[Message]:
        """The messages of this booker's shard (a subject that names no account: shard 1's,
        which quarantines it)."""
        if self.shard.whole:
            return messages
        kept = []
        for message in messages:
            owner = self._owner.get(message.subject)
            if owner is None:
                pair = venue_account(message.subject)
                owner = self._owner[message.subject] = (
                    self.shard.owns(self.settings.book_of(*pair)) if pair else self.shard.index == 1)
            if owner:
                kept.append(message)
        return kept

    def prepare(self, messages: list[Message], through: int | None = None) -> Batch | QuickBatch | None:
        """Book a batch into the live books (memory only); what :meth:`commit` writes.

        The next batch may be prepared while this one commits: memory runs ahead of the
        database by at most one batch, and a failed commit ends the booker, whose successor
        loads the books the last commit left.
        """
        if not messages:
            # Another shard's messages only: the sequence moves on all the same.
            return None if through is None else Batch(through, _no_rows())
        if self.options.quick:
            quick = self.quick.prepare(self, messages, through)
            if quick is not None:
                return quick
        parsed = parse_batch(messages, self.settings)
        fills = parsed.fills
        # Exactly once on the payload's key: seen before, or twice in this batch.
        keys = ledger_keys(fills.select("venue", "account", symbol="symbol_text", trade_id="payload_id")).to_list()
        fresh, taken = [], set()
        for key in keys:
            ok = key not in self.seen and key not in taken
            fresh.append(ok)
            taken.add(key)
        legs = parsed.legs
        if not all(fresh):
            fills = fills.filter(pl.Series(fresh, dtype=pl.Boolean))
            legs = legs.join(fills.select("stream_seq"), on="stream_seq", how="semi")

        starts, new_starts = self._starts_for(fills)
        states = starts.select("venue", "account", "state_date")
        legs = legs.join(states, on=["venue", "account"], how="left").with_columns(
            business_date=pl.col("ts").dt.date(),
            counted=pl.col("state_date").is_null() | (pl.col("ts").dt.date() > pl.col("state_date")),
        )
        counted = rows_where(legs, legs["counted"])
        # Once quick batches have run, the books' lots, holdings and PnL are theirs (utl.stream.quick):
        # this batch is given its part of them, and what it changes is read back.
        books = self.quick.subset(self.books, counted, self.settings.book_of, self._members) if self.quick.loaded \
            else self.books
        priced = self._price(counted)
        trades = rows_where(priced, (priced["asset"] != self.reporting) & (priced["qty"] != 0)).select(
            "book", "asset", "venue", "account", "business_date", "ts", "stream_seq",
            trade_id=pl.format("{}/{}/{}", "venue", "account", "leg_id"), qty="qty", price="unit_price",
        )
        changes = book_trades(books, trades)
        lots = _lots_written(changes.lots_before, changes.lots_after, changes.keys)
        books.holdings, _ = add_holdings(books.holdings, counted[["venue", "account", "asset", "qty", "ts", "stream_seq"]])
        touched = pl.concat([counted[["venue", "account", "asset"]], changes.day_pnl[["venue", "account", "asset"]]]).unique()
        books_of = self._joined(counted)
        live = conformed(position_rows(books, books.holdings.join(touched, on=["venue", "account", "asset"], how="semi"),
                                       self.settings.book_of, self.reporting,
                                       mates=any(len(self._members[book]) > 1 for book in books_of)), LIVE_ROWS)
        if books is not self.books:
            self.quick.absorb(books, self.books)
        unit = priced[["venue", "account", "leg_id", "unit_price"]]
        leg_rows = legs.join(unit, on=["venue", "account", "leg_id"], how="left").select(
            "venue", "account", symbol="symbol_text", trade_id="payload_id", leg_id="leg_id", kind="kind", asset="asset",
            qty="qty", ts="ts", business_date="business_date", price="price",
            unit_price=pl.when(pl.col("asset") != self.reporting).then(pl.col("unit_price")),
            counted="counted", stream_seq="stream_seq",
        )
        leg_rows = conformed(leg_rows, LEGS_ROWS)
        fill_rows = fills.join(states, on=["venue", "account"], how="left").select(
            "venue", "account", symbol="symbol_text", trade_id="payload_id", stream_seq="stream_seq", ts="ts",
            counted=pl.col("state_date").is_null() | (pl.col("ts").dt.date() > pl.col("state_date")),
        )
        fill_rows = conformed(fill_rows, FILLS_ROWS)
        self.seen.update(taken)
        return Batch(max([m.seq for m in messages] + [through or 0]), dict(
            fills=fill_rows, legs=leg_rows, starts=new_starts, keys=changes.keys, **lots, openings=changes.openings,
            replayed=changes.replayed,
            day_pnl=changes.day_pnl, live=live, quarantine=parsed.quarantine))

    def commit(self, batch: Batch | QuickBatch | None) -> list[tuple[str, bytes]]:
        """Write a prepared batch in one transaction; the changed positions to publish
        (subject, JSON)."""
        if batch is None:
            return []
        if isinstance(batch, QuickBatch):
            commit_quick(self.conn, self.key, self.options.name, batch)
            self.last_seq = batch.last_seq
            return batch.messages
        commit_batch(self.conn, self.key, self.options.name, batch.last_seq, **batch.rows)
        self.last_seq = batch.last_seq
        return position_messages(batch.rows["live"], self.key)

    def _joined(self, holders: pl.DataFrame) -> set[str]:
        """Note the accounts of ``holders`` (venue, account) as members of their books; the
        books."""
        books = set()
        for pair in set(zip(holders.get_column("venue").to_list(), holders.get_column("account").to_list())):
            book = self.settings.book_of(*pair)
            self._members.setdefault(book, set()).add(pair)
            books.add(book)
        return books

    def _starts_for(self, fills: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Starting states of the batch's accounts; accounts never seen start from zero."""
        pairs = set(zip(fills.get_column("venue").to_list(), fills.get_column("account").to_list()))
        if pairs <= self._started:  # the usual batch: every account has its start already (a set of them)
            return self.starts, START_ROWS.to_frame()
        accounts = fills.select("venue", "account").unique()
        new = accounts.join(self.starts, on=["venue", "account"], how="anti").with_columns(
            state_date=pl.lit(None, pl.Date), source=pl.lit("zero")).cast(START_ROWS)
        if new.height:
            self.starts = pl.concat([self.starts, new])
            self._started |= pairs
        return self.starts, new

    def _marks_on(self, day: dt.date) -> pl.DataFrame:
        """:func:`marks_on` of ``day``, made once per date (the booker's marks are fixed at its
        start; a batch made them again, seven Polars steps)."""
        known = self._marks_by_day.get(day)
        if known is None:
            known = self._marks_by_day[day] = marks_on(self.marks, day, self.reporting)
        return known

    def _price(self, legs: pl.DataFrame) -> pl.DataFrame:
        """Each leg's unit price in the reporting currency, as the end-of-day run prices it."""
        if legs.height == 0:
            return legs.with_columns(book=pl.lit(None, pl.String), unit_price=pl.lit(None, pl.Decimal(38, 18)))
        booked = with_book(legs, self.settings)
        parts = []
        days = booked["business_date"].unique().sort().to_list()
        for day in days:
            todays = booked if len(days) == 1 else rows_where(booked, booked["business_date"] == day)
            in_reporting = todays["asset"] == self.reporting
            costed = rows_where(todays, ~in_reporting)
            rest = rows_where(todays, in_reporting)
            rest = rest.hstack([pl.Series("unit_price", dtype=pl.Decimal(38, 18)).extend_constant(None, rest.height)])
            priced = price_legs(costed, self._marks_on(day), day) if costed.height else \
                costed.with_columns(unit_price=pl.lit(None, pl.Decimal(38, 18)))
            parts.append(priced[rest.columns])
            parts.append(rest)
        return pl.concat(parts, how="vertical_relaxed")


def _lots_written(before: pl.DataFrame, after: pl.DataFrame, keys: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """What :func:`commit_batch` writes of the changed keys' lots: the difference (``lots_gone``
    and the new ``lots``; a FIFO or LIFO batch closes and opens a few lots of each key it
    touches and leaves the rest as they were), or, where a row is not told apart from every
    other by its opening trade, all of them (``lots``, replacing the keys' rows)."""
    key = ["book", "asset"]
    if keys.height == 0:
        return {"lots": after.clear()}
    old = before.join(keys, on=key, how="semi")
    new = after.join(keys, on=key, how="semi")
    ident = [*key, "trade_id"]
    distinct = all(frame.get_column("trade_id").null_count() == 0 and not frame.select(ident).is_duplicated().any()
                   for frame in (old, new))
    if not distinct:
        return {"lots": new}
    whole = LOTS_STATE.names()
    return {"lots": new.join(old, on=whole, how="anti", nulls_equal=True),
            "lots_gone": old.join(new, on=whole, how="anti", nulls_equal=True)}


def _book_dates(rows: list[tuple[str, dt.date]]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema={"book": pl.String, "business_date": pl.Date}, orient="row")
    return frame.group_by("book").agg(pl.col("business_date").min())


def _no_rows() -> dict[str, pl.DataFrame]:
    return dict(fills=FILLS_ROWS.to_frame(), legs=LEGS_ROWS.to_frame(), starts=START_ROWS.to_frame(),
                keys=pl.DataFrame(schema={"book": pl.String, "asset": pl.String}), lots=LOTS_STATE.to_frame(),
                openings=OPENINGS.to_frame(), day_pnl=DAY_PNL.to_frame(), live=LIVE_ROWS.to_frame(),
                quarantine=_no_quarantine())


def _no_quarantine() -> pl.DataFrame:
    return pl.DataFrame(schema={"subject": pl.String, "stream_seq": pl.Int64, "reason": pl.String, "raw": pl.String})


def position_messages(live: pl.DataFrame, landing: str) -> list[tuple[str, bytes]]:
    """Each changed position's subject ``utl.positions.<venue>.<account>`` and JSON: its
    columns in order, then ``landing``; numbers as exact decimal text, times as ISO 8601 (as
    ``datetime.isoformat`` writes them), integers as numbers. Encoded by Polars in one pass: a
    backlog's batch changes ~20,000 positions, and a ``json.dumps`` of each held the event
    loop ~240 ms a batch."""
    if live.height == 0:
        return []

    def text(name: str, dtype: pl.DataType) -> pl.Expr:
        column = pl.col(name)
        if isinstance(dtype, pl.Decimal):
            return column.cast(pl.String)  # every digit of the scale, as format(v, "f") gives
        if isinstance(dtype, pl.Datetime):
            whole = column.dt.microsecond() == 0
            return (pl.when(whole).then(column.dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
                    .otherwise(column.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")))
        if isinstance(dtype, pl.Date):
            return column.dt.strftime("%Y-%m-%d")
        return column

    encoded = live.select(
        subject=pl.format(f"{POSITIONS_PREFIX}.{{}}.{{}}", "venue", "account"),
        data=pl.struct(*[text(name, dtype) for name, dtype in live.schema.items()],
                       pl.lit(landing, pl.String).alias("landing")).struct.json_encode(),
    )
    return [(subject, data.encode()) for subject, data in encoded.iter_rows()]


async def run(database: Database, settings: Settings, landing: Path | None, options: BookerOptions,
              say: Callable[[str], None] = print) -> int:
    """Consume until SIGINT/SIGTERM; 0 after the last batch committed."""
    conn = database.connect()
    try:
        migrate(conn)
        # A booker killed a moment ago may still hold the lock until PostgreSQL notices its
        # session is gone: wait a little before refusing.
        key = stream_key(landing)
        for _ in range(50):
            if try_lock_shard(conn, key, options.name):
                break
            await asyncio.sleep(0.2)
        else:
            raise BookerError(f"another booker holds consumer {options.name!r} of landing {key or '(none)'} "
                              f"(one writer per shard of books)")
        _same_shard_count(conn, key, options)
        booker = Booker(conn, settings, landing, options, say)
        if options.quick:
            booker.quick.warm(settings.costing_method)
        _settle_collector()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        nc = await nats.connect(servers(options.nats_url), max_reconnect_attempts=-1, reconnect_time_wait=0.5)
        source = None
        try:
            js = nc.jetstream()
            await ensure_stream(js, options.stream, options.subjects, warn=lambda w: say(f"warning: {w}"))
            source = await _open_source(nc, js, booker.last_seq + 1, options, say)
            say("ready")
            # Worker threads book and commit while the loop reads the next messages off the
            # socket (Polars and psycopg release the GIL while they work); batch n+1 is
            # prepared while batch n commits, and batches commit in order.
            # A batch's positions are published by a task of their own, after the previous
            # batch's (so in commit order), while the next batch commits.
            committing: asyncio.Future | None = None
            publishing: asyncio.Future | None = None
            consumed = booker.last_seq
            first = True
            batches = 0
            # UTL_STREAM_TRACE=FILE: a line per batch (time, messages, which way, ms to book it).
            trace = open(os.environ["UTL_STREAM_TRACE"], "a", buffering=1) if os.environ.get("UTL_STREAM_TRACE") else None
            if trace is not None:
                _trace_collector(trace)
                booker.commit = _traced(booker.commit, trace)
            while not stop.is_set():
                messages = await source.take(options.batch, options.wait_s, stop)
                messages = [m for m in messages if m.seq > consumed]
                if not messages:
                    continue
                consumed = max(m.seq for m in messages)
                # The quick books are first loaded once caught up: a backlog goes through the
                # frames whole, with none of the quick books' reading in and out.
                booker.caught_up = source.empty() and getattr(source, "pending", 0) < QUICK_MOST
                started = time.perf_counter()
                prepared = await asyncio.to_thread(booker.prepare, booker.mine(messages), consumed)
                if trace is not None:
                    trace.write(f"{time.time():.4f} {len(messages)} {'quick' if isinstance(prepared, QuickBatch) else 'frames'} "
                                f"{1000 * (time.perf_counter() - started):.2f}\n")
                if committing is not None:
                    publishing = _publish_after(publishing, nc, await committing)
                committing = asyncio.ensure_future(asyncio.to_thread(booker.commit, prepared))
                if first:  # what the first batch loaded (numba, pandera, plans) stays: out of the collector's way
                    first = False
                    gc.freeze()
                batches += 1
                if batches % FREEZE_EVERY == 0:
                    gc.freeze()
                if source.empty():  # nothing to prepare meanwhile: publish as soon as it commits
                    publishing = _publish_after(publishing, nc, await committing)
                    committing = None
            if committing is not None:
                publishing = _publish_after(publishing, nc, await committing)
            if publishing is not None:
                await publishing
        finally:
            if source is not None:
                await source.close()
            await nc.close()
        return 0
    finally:
        conn.close()


def _trace_collector(trace) -> None:
    """UTL_STREAM_TRACE: a line per collection of the older generations (time, ms)."""
    began = {}

    def note(phase: str, info: dict) -> None:
        if info["generation"] < 1:
            return
        if phase == "start":
            began["at"] = time.perf_counter()
        else:
            trace.write(f"{time.time():.4f} gc{info['generation']} {1000 * (time.perf_counter() - began['at']):.2f}\n")
    gc.callbacks.append(note)


def _traced(commit, trace):
    """UTL_STREAM_TRACE: a line per commit (time, ms)."""
    def traced(batch):
        started = time.perf_counter()
        try:
            return commit(batch)
        finally:
            trace.write(f"{time.time():.4f} commit {1000 * (time.perf_counter() - started):.2f}\n")
    return traced


FREEZE_EVERY = 256
"""Batches after which what has lived through them is set aside from the collector (``gc.freeze``):
the quick books (:mod:`utl.stream.quick`) hold a tuple per open lot and a list per position,
millions in a day, and a collection of the oldest generation walked them all (~120 ms at
150,000 fills, a pause every ~40 s at 5,000 fills/s). What is frozen is still freed when its
last reference goes; only a reference cycle among frozen objects would stay, and the books make
none."""


def _settle_collector() -> None:
    """Python's cyclic collector off the booking path. Every batch makes hundreds of thousands of
    short-lived objects (messages, the reader's tuples), each few hundred of which start a
    collection, and each full one walked every object the imports and the loaded books made
    (12% of the booker's CPU under a backlog). The objects alive now are set aside for good
    (``gc.freeze``) and a collection starts after 50,000 allocations, not 700: the booker's
    objects hold no cycles that matter (they are freed by their counts), so this only
    spaces the collections out."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _same_shard_count(conn, key: str, options: BookerOptions) -> None:
    """Books move between shards when their count changes: a landing's consumer keeps the
    count it first committed with (another count would book some fills twice and others never)."""
    rows = conn.execute("SELECT consumer, last_seq FROM utl.stream_offset WHERE landing = %s", (key,)).fetchall()
    counts = {n for name, seq in rows if seq > 0 and (n := shard_count_of(name, options.consumer)) is not None}
    if counts - {options.shard.count}:
        raise BookerError(f"consumer {options.consumer!r} of landing {key or '(none)'} has committed with "
                          f"{', '.join(map(str, sorted(counts)))} shard(s), not {options.shard.count}: run it with that "
                          f"count, or under another --consumer name (which starts from the stream's first message)")


def _stream_seq(msg) -> int:
    """The stream sequence of a JetStream message: from its v1 reply subject
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>`` read
    directly (no metadata object per message), else as nats-py reads any other form."""
    reply = msg.reply
    if reply and reply.startswith("$JS.ACK."):
        tokens = reply.split(".")
        if len(tokens) == 9:
            return int(tokens[5])
    return msg.metadata.sequence.stream


def _publish_after(previous: asyncio.Future | None, nc, messages: list[tuple[str, bytes]]) -> asyncio.Future:
    """Publish ``messages`` once ``previous`` (the last batch's) is done."""
    async def publish() -> None:
        if previous is not None:
            await previous
        for n, (subject, data) in enumerate(messages, 1):
            await nc.publish(subject, data)
            if n % 2000 == 0:
                await asyncio.sleep(0)  # the reader's turn: a backlog's batch publishes ~20,000
    return asyncio.ensure_future(publish())


async def _open_source(nc, js, start_seq: int, options: BookerOptions, say: Callable[[str], None]):
    """What the booker reads the stream through: its own pull consumer read in bulk
    (:mod:`utl.stream.pull`), or, where that reader cannot serve the server (TLS), nats-py's
    ordered push consumer."""
    urls = servers(options.nats_url)
    if all(supported(url) for url in urls):
        reader = PullReader(urls, options.stream, options.subjects, start_seq, options.batch, say)
        try:
            await reader.open()
            return reader
        except Unsupported:
            await reader.close()
    source = _PushSource(options.batch)
    await source.subscribe(js, start_seq, options)
    return source


class _PushSource:
    """nats-py's ordered push consumer, its messages queued for the booker."""

    def __init__(self, batch: int):
        # Bounded: while two batches wait, the callback waits, nats-py delivers no further
        # message and so answers no flow control, and the server holds the rest of a
        # backlog (a million messages held in Python objects were most of the booker's memory).
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=2 * max(batch, 1000))

    async def subscribe(self, js, start_seq: int, options: BookerOptions) -> None:
        async def arrived(msg) -> None:
            await self.queue.put(msg)

        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start_seq)
        await js.subscribe(options.subjects, stream=options.stream, cb=arrived, ordered_consumer=True,
                           config=config, pending_msgs_limit=-1, pending_bytes_limit=-1)

    async def take(self, most: int, wait_s: float, stop: asyncio.Event) -> list[Message]:
        batch = await _take(self.queue, most, wait_s, stop)
        return [Message(m.subject, _stream_seq(m), m.data) for m in batch]

    def empty(self) -> bool:
        return self.queue.empty()

    async def close(self) -> None:
        """The subscription ends with the connection."""


async def _take(queue: asyncio.Queue, most: int, wait_s: float, stop: asyncio.Event) -> list:
    """Up to ``most`` messages: waits for the first (or the stop), then at most ``wait_s`` more."""
    batch = []
    while not batch:
        if stop.is_set():
            return batch
        try:
            batch.append(await asyncio.wait_for(queue.get(), timeout=0.1))
        except asyncio.TimeoutError:
            continue
    deadline = time.monotonic() + wait_s
    while len(batch) < most:
        try:
            batch.append(queue.get_nowait())
        except asyncio.QueueEmpty:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 0.0005))
    return batch
