"""A caught-up booker's small batch booked in Python, in a few milliseconds (stream.md, "Figures").

A live batch is a few dozen fills. Booked through the frames of :mod:`utl.stream.books` it
took ~40 ms and its commit ~10 ms, nearly all of it the fixed cost of some hundred Polars steps
and a dozen statements, where the contract asks 5 ms from publish to committed position. Here
the same batch is booked over per-key state held in Python (each (book, asset)'s open lots,
last trade time and openings; each account's holdings and realized PnL per date) and
committed in one round trip (:func:`utl.stream.store.commit_quick`).

The costing is the end-of-day run's kernel, called as :func:`utl.costing.compute_costs`
calls it (:func:`utl.lots.match_and_realize` over each key's carried lots followed by its
trades, in application order): no second costing. Everything around it (legs, prices,
openings, the lots written, positions and their cost basis) is what :mod:`utl.stream.books`
and the booker compute, in the same decimal arithmetic (products and quotients rounded
half-even at 18 places, as Polars' ``Decimal(38, 18)`` does).

Only the usual batch goes this way: FIFO, LIFO or HIFO; up to :data:`MOST` plain messages
(:mod:`utl.stream.plain_fills`) of spot fills, none refused; every fill after its account's
starting state (an account never seen starts from zero), one business date, no trade older than
its key's last; one account per book; the marks known that price its legs; integers within the
kernel's 64 bits.
Any other batch (:meth:`Quick.prepare` returns None having changed nothing) goes through the
frames. Once a quick batch has run, the Python state is the books' lots, last times, holdings
and PnL: a frames batch is given the part of them it reads, as frames (:meth:`Quick.subset`),
and what it changed is read back (:meth:`Quick.absorb`), so that going from one way to the
other costs what the batch touches, not what the day holds. ``tests/stream/test_quick.py``
holds the two ways to the same rows, books and messages, batch by batch.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import polars as pl

from utl.decimals import WIDE as _WIDE, exact_sum
from utl.frames import conformed
from utl.lots import group_totals_fit, match_and_realize
from utl.schemas import LOTS_STATE
from utl.stream.books import (
    DAY_PNL, HOLDINGS, LAST, OPENINGS, TRADES, Books, at18, compacted, split_by, start_day,
)
from utl.stream.message import Message, venue_account
from utl.stream.plain_fills import EPOCH, plain_message_rows
from utl.stream.store import FILLS_ROWS, LEGS_ROWS, LIVE_ROWS, START_ROWS, ledger_key

MOST = 5_000
"""Fills from which a batch goes through the frames: their cost is mostly per batch (~200 ms a
batch of 1,000 fills, ~50 us a fill in batches of 20,000), this path's per fill (~75 us)."""

SPILL = 2_000
"""New trades (or openings) from which the quick books append them to their frames."""

_ZERO = Decimal(0)
_INT64 = 2**63 - 1
_PRICE_MOST = 2**62
POSITIONS_PREFIX = "utl.positions"

Key = tuple[str, str]  # (book, asset)
Lot = tuple  # (trade_id, opened_ts, qty, entry_price), as LOTS_STATE's last four columns


@dataclass
class QuickBatch:
    """A batch booked by :func:`Quick.prepare`: its rows as Python tuples, in the columns of the
    tables they go to (``utl.stream.store.commit_quick``), and its position messages."""

    last_seq: int
    starts: list[tuple] = field(default_factory=list)  # START_ROWS: accounts starting from zero
    fills: list[tuple] = field(default_factory=list)  # FILLS_ROWS
    legs: list[tuple] = field(default_factory=list)  # LEGS_ROWS
    lots: list[tuple] = field(default_factory=list)  # LOTS_STATE: added (or all of lot_keys' lots)
    lots_gone: list[tuple] | None = None  # LOTS_STATE: closed; None: lots replace lot_keys' whole
    lot_keys: list[Key] = field(default_factory=list)
    openings: list[tuple] = field(default_factory=list)  # OPENINGS
    day_pnl: list[tuple] = field(default_factory=list)  # DAY_PNL
    live: list[tuple] = field(default_factory=list)  # LIVE_ROWS
    messages: list[tuple[str, bytes]] = field(default_factory=list)


class Quick:
    """The books of :class:`utl.stream.books.Books` per key in Python, and what they owe the frames."""

    def __init__(self, reporting: str):
        self.reporting = reporting
        self.loaded = False
        self.lots: dict[Key, list[Lot]] = {}
        self.last: dict[Key, dt.datetime] = {}
        self.opened: dict[Key, set[dt.date]] = {}
        self.holdings: dict[tuple[str, str, str], list] = {}  # [qty, last_trade_ts, stream_seq]
        self.pnl: dict[tuple[str, str, str], dict[dt.date, Decimal]] = {}
        self._marks: dict[dt.date, dict[str, Decimal]] = {}
        self._clean()

    def _clean(self) -> None:
        self.new_trades: list[tuple] = []
        self.new_openings: list[tuple] = []

    # ------------------------------------------------------------ state <-> frames

    def load(self, books: Books) -> None:
        """The Python state from the frames (once, before the first quick batch). From then on
        this state is the books' lots, last times, holdings and day PnL, and their frames are
        let go: a batch booked through the frames is given its own part of them
        (:meth:`subset`), and what it changed is read back (:meth:`absorb`)."""
        self.lots, self.last, self.opened, self.holdings, self.pnl = {}, {}, {}, {}, {}
        lots = books.lots
        for book, asset, *lot in _tuples(lots.select(LOTS_STATE.names())):
            self.lots.setdefault((book, asset), []).append(tuple(lot))
        self._read_last(books.last)
        self._read_openings(books.openings.select("book", "asset", "business_date").unique())
        self._read_holdings(books.holdings)
        self._read_pnl(books.day_pnl)
        books.lots, books.last = LOTS_STATE.to_frame(), LAST.to_frame()
        books.holdings, books.day_pnl = HOLDINGS.to_frame(), DAY_PNL.to_frame()
        self.loaded = True

    def _read_last(self, last: pl.DataFrame) -> None:
        for book, asset, ts in _tuples(last.select(LAST.names())):
            self.last[(book, asset)] = ts

    def _read_openings(self, dates: pl.DataFrame) -> None:
        for book, asset, day in dates.iter_rows():
            self.opened.setdefault((book, asset), set()).add(day)

    def _read_holdings(self, holdings: pl.DataFrame) -> None:
        for venue, account, asset, qty, ts, seq in _tuples(holdings.select(HOLDINGS.names())):
            self.holdings[(venue, account, asset)] = [qty, ts, seq]

    def _read_pnl(self, day_pnl: pl.DataFrame) -> None:
        for day, venue, account, asset, pnl in _tuples(day_pnl.select(DAY_PNL.names())):
            self.pnl.setdefault((venue, account, asset), {})[day] = pnl

    def spill(self, books: Books, *, every: bool = False) -> None:
        """The new trades and openings into their frames once :data:`SPILL` of either wait (or
        ``every``: all of them, before a batch goes through the frames). They are only appended
        to, and held as Python tuples took ~5 times the memory (a day's 3 M trades: gigabytes);
        a spill of 2,000 rows costs a few milliseconds."""
        if self.new_trades and (every or len(self.new_trades) >= SPILL):
            books.trades = compacted(pl.concat([books.trades, _frame(self.new_trades, TRADES)]))
            self.new_trades = []
        if self.new_openings and (every or len(self.new_openings) >= SPILL):
            books.openings = compacted(pl.concat([books.openings, _frame(self.new_openings, OPENINGS)]))
            self.new_openings = []

    def subset(self, books: Books, legs: pl.DataFrame, book_of, members: dict[str, set]) -> Books:
        """The books a batch booked through the frames reads, for its ``legs`` (venue, account,
        asset): its keys' lots and last times; the holdings of its accounts and of their
        book-mates in its assets, with their realized PnL of every date; every trade and opening
        (replays read them). Its cost is the batch's, not the day's."""
        self.spill(books, every=True)
        triples = set(zip(legs.get_column("venue").to_list(), legs.get_column("account").to_list(),
                          legs.get_column("asset").to_list()))
        book_by_pair = {(v, a): book_of(v, a) for v, a, _ in triples}
        keys = {(book_by_pair[(v, a)], asset) for v, a, asset in triples}
        assets: dict[str, set[str]] = defaultdict(set)
        for book, asset in keys:
            assets[book].add(asset)
        held = set(triples)
        for book, its in assets.items():
            for pair in members.get(book, ()):
                held.update((*pair, asset) for asset in its if (*pair, asset) in self.holdings)
        part = Books(books.method, trades=books.trades, openings=books.openings)
        part.lots = _frame([(*key, *lot) for key in keys for lot in self.lots.get(key, ())], LOTS_STATE)
        part.last = _frame([(*key, self.last[key]) for key in keys if key in self.last], LAST)
        part.holdings = _frame([(*k, *self.holdings[k]) for k in held if k in self.holdings], HOLDINGS)
        part.day_pnl = _frame([(d, *k, p) for k in held for d, p in self.pnl.get(k, {}).items()], DAY_PNL)
        self._part = (keys, held)
        return part

    def absorb(self, part: Books, books: Books) -> None:
        """Read back what a batch booked through the frames over ``part`` (:meth:`subset`) left:
        its keys' lots, last times and dated openings, its holdings and their PnL; the trades and
        openings frames it grew are the books' again."""
        keys, held = self._part
        books.trades, books.openings = part.trades, part.openings
        for key in keys:
            self.lots.pop(key, None)
            self.last.pop(key, None)
            self.opened.pop(key, None)
        for book, asset, *lot in _tuples(part.lots.select(LOTS_STATE.names())):
            self.lots.setdefault((book, asset), []).append(tuple(lot))
        self._read_last(part.last)
        self._read_holdings(part.holdings)
        for k in held:
            self.pnl.pop(k, None)
        self._read_pnl(part.day_pnl)
        if keys:
            frame = _frame(sorted(keys), pl.Schema({"book": pl.String, "asset": pl.String}))
            mine, _ = split_by(books.openings, frame, ["book", "asset"])
            self._read_openings(mine.select("book", "asset", "business_date").unique())

    def whole(self, books: Books) -> Books:
        """The books as frames, every part of them (what the frames held before :meth:`load`):
        for a reader of the whole state, a test or an inspection; not on the booking path."""
        if not self.loaded:
            return books
        self.spill(books, every=True)
        whole = Books(books.method, trades=books.trades, openings=books.openings)
        whole.lots = _frame([(*key, *lot) for key, lots in self.lots.items() for lot in lots], LOTS_STATE)
        whole.last = _frame([(*key, ts) for key, ts in self.last.items()], LAST)
        whole.holdings = _frame([(*key, *held) for key, held in self.holdings.items()], HOLDINGS)
        whole.day_pnl = _frame([(d, *key, p) for key, dates in self.pnl.items() for d, p in dates.items()], DAY_PNL)
        return whole

    # ------------------------------------------------------------ one batch

    def prepare(self, booker, messages: list[Message], through: int | None) -> QuickBatch | None:
        """Book ``messages`` (this booker's, in stream order) if they are a usual batch (see the
        module doc); None, with nothing changed, if not."""
        if booker.books.method not in ("fifo", "lifo", "hifo") or not messages or len(messages) > MOST:
            return None
        if not self.loaded and not booker.caught_up:
            return None  # a backlog: the frames' way is the cheaper until it is drained
        heads = []
        for message in messages:
            pair = venue_account(message.subject)
            if pair is None:
                return None
            heads.append((message.seq, message.subject, pair[0], pair[1]))
        rows = plain_message_rows(heads, [message.data for message in messages], booker.settings, most=MOST)
        if rows is None:
            return None
        rows.sort(key=lambda row: row[0])
        if not self.loaded:
            self.load(booker.books)
        return _Booking(self, booker, rows).book(max([m.seq for m in messages] + [through or 0]))

    def warm(self, method: str) -> None:
        """Load the costing kernel (numba's cache: ~150 ms on the first call) before the first
        batch waits for it."""
        if method in ("fifo", "lifo", "hifo"):
            at = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
            _cost(method, {("book", "asset"): [(("book", "asset"), at, 1, "t2", Decimal(-1), Decimal(2), "v", "a")]},
                  {("book", "asset"): [("t1", at, Decimal(1), Decimal(1))]})

    def marks(self, booker, day: dt.date) -> dict[str, Decimal]:
        known = self._marks.get(day)
        if known is None:
            frame = booker._marks_on(day)
            known = self._marks[day] = {a: m for a, m in frame.select("asset", "mark").iter_rows() if m is not None}
        return known


_UNSTARTED = object()


class _NotQuick(Exception):
    """This batch goes through the frames."""


class _Booking:
    """One quick batch: worked out whole before anything is changed."""

    def __init__(self, quick: Quick, booker, rows: list[tuple]):
        self.quick, self.booker, self.rows = quick, booker, rows

    def book(self, last_seq: int) -> QuickBatch | None:
        try:
            return self._book(last_seq)
        except _NotQuick:
            return None

    def _book(self, last_seq: int) -> QuickBatch:
        quick, booker = self.quick, self.booker
        reporting = quick.reporting
        settings = booker.settings
        # Exactly once on the payload's key (as the booker checks it).
        fresh, taken = [], set()
        for row in self.rows:
            venue, account, symbol, payload = row[3], row[4], row[1], row[2]
            key = ledger_key(venue, account, symbol, payload)
            if key not in booker.seen and key not in taken:
                fresh.append(row)
            taken.add(key)
        states = _state_dates(booker)
        days = set()
        books: dict[tuple[str, str], str] = {}
        started: dict[tuple[str, str], None] = {}  # accounts never seen: they start from zero
        for row in fresh:
            pair = (row[3], row[4])
            if row[21]:
                raise _NotQuick  # a derivative
            state_date = states.get(pair, _UNSTARTED)
            if state_date is _UNSTARTED:
                state_date = started[pair] = None
            day = row[7].date()
            if state_date is not None and day <= state_date:
                raise _NotQuick  # recorded, not counted
            days.add(day)
            if pair not in books:
                book = books[pair] = settings.book_of(*pair)
                if booker._members.get(book, {pair}) - {pair}:
                    raise _NotQuick  # book-mates share the book's cost
        if len(days) > 1:
            raise _NotQuick
        batch = QuickBatch(last_seq)
        batch.starts = [(venue, account, None, "zero") for venue, account in started]
        if not fresh:
            booker.seen.update(taken)
            return batch
        (day,) = days
        marks = quick.marks(booker, day)

        legs, trades = [], []  # trades: (key, ts, seq, trade id, qty, unit price, venue, account)
        for row in fresh:
            seq, symbol_text, payload, venue, account, trade_id, ts = row[0], row[1], row[2], row[3], row[4], row[5], row[7]
            base, quote, qty, price, quote_qty, fee, fee_asset = row[9], row[10], row[12], row[13], row[14], row[15], row[16]
            quote_mark = marks.get(quote)
            if quote_mark is None:
                raise _NotQuick  # a missing mark is the frames' error to raise
            # In the reporting currency as price_legs prices a fill's base leg (utl.scaled.multiply:
            # the product rounded half-even at 18 places).
            unit = price if quote_mark == 1 else at18(_WIDE.multiply(price, quote_mark))
            parts = [(f"{trade_id}/base", "base", base, qty, price, unit),
                     (f"{trade_id}/quote", "quote", quote, _WIDE.minus(quote_qty) if qty > 0 else quote_qty, None, None)]
            if fee is not None and fee != 0:
                parts.append((f"{trade_id}/fee", "fee", fee_asset, _WIDE.minus(fee), None, None))
            for leg_id, kind, asset, leg_qty, leg_price, unit in parts:
                if kind != "base":
                    unit = marks.get(asset)
                    if unit is None:
                        raise _NotQuick
                costed = asset != reporting
                legs.append((venue, account, symbol_text, payload, leg_id, kind, asset, leg_qty, ts, day, leg_price,
                             unit if costed else None, True, seq))
                if costed and leg_qty != 0:
                    if unit <= 0:
                        raise _NotQuick  # the costing refuses it, in its words
                    trades.append(((books[(venue, account)], asset), ts, seq, f"{venue}/{account}/{leg_id}", leg_qty, unit,
                                   venue, account))
        # Application order within a key: ts, then arrival (a fill's legs in base, quote, fee order).
        trades.sort(key=lambda t: (t[1], t[2]))
        by_key: dict[Key, list[tuple]] = {}
        for trade in trades:
            by_key.setdefault(trade[0], []).append(trade)
        for key, its in by_key.items():
            last = quick.last.get(key)
            if last is not None and its[0][1] < last:
                raise _NotQuick  # a late fill: the key is replayed from its opening
        costed = _cost(booker.books.method, by_key, quick.lots)

        # Everything is known: the batch's rows, then the state moves on.
        lots_before = {key: quick.lots.get(key, []) for key in by_key}
        lots_after = {key: lots for key, (lots, _) in costed.items()}
        batch.fills = [(r[3], r[4], r[1], r[2], r[0], r[7], True) for r in fresh]
        batch.legs = legs
        for key in by_key:
            if day not in quick.opened.get(key, ()):
                batch.openings += [(day, *key, *lot) for lot in lots_before[key]]
                batch.openings.append((day, *key, None, start_day(day), _ZERO, _ZERO))
        _lots_rows(batch, lots_before, lots_after)

        realized: dict[tuple[str, str, str], Decimal] = {}
        for key, (_, pnls) in costed.items():
            for trade, pnl in zip(by_key[key], pnls):
                account_asset = (trade[6], trade[7], key[1])
                realized[account_asset] = _WIDE.add(realized.get(account_asset, _ZERO), pnl)
        moved: dict[tuple[str, str, str], list] = {}
        for leg in legs:
            account_asset = (leg[0], leg[1], leg[6])
            held = moved.get(account_asset)
            if held is None:
                moved[account_asset] = [leg[7], leg[8], leg[13]]
            else:
                held[0] = _WIDE.add(held[0], leg[7])
                held[1] = max(held[1], leg[8])
                held[2] = max(held[2], leg[13])

        # The state moves on (nothing below can refuse the batch).
        booker.seen.update(taken)
        if batch.starts:
            booker.starts = pl.concat([booker.starts, _frame(batch.starts, START_ROWS)])
            booker._started |= started.keys()
        for pair, book in books.items():
            booker._members.setdefault(book, set()).add(pair)
        for key, its in by_key.items():
            quick.lots[key] = lots_after[key]
            quick.last[key] = max(its[-1][1], quick.last.get(key, its[-1][1]))
            quick.opened.setdefault(key, set()).add(day)
        quick.new_trades += [(k[0], k[1], v, a, day, ts, seq, tid, q, p) for k, ts, seq, tid, q, p, v, a in trades]
        quick.new_openings += batch.openings
        quick.spill(booker.books)
        for account_asset, pnl in realized.items():
            dates = quick.pnl.setdefault(account_asset, {})
            if pnl == 0 and day in dates:
                continue  # its row holds this value already: an upsert of it costs the server ~20 us
            dates[day] = _WIDE.add(dates.get(day, _ZERO), pnl)
            batch.day_pnl.append((day, *account_asset, dates[day]))
        for account_asset, (qty, ts, seq) in moved.items():
            held = quick.holdings.get(account_asset)
            if held is None:
                quick.holdings[account_asset] = [qty, ts, seq]
            else:
                held[0] = _WIDE.add(held[0], qty)
                held[1] = ts if held[1] is None else max(held[1], ts)
                held[2] = seq if held[2] is None else max(held[2], seq)
        for account_asset in sorted(moved.keys() | realized.keys()):
            batch.live.append(_position(quick, account_asset, books[account_asset[:2]], reporting))
        batch.messages = position_messages(batch.live, booker.key)
        return batch


def _state_dates(booker) -> dict[tuple[str, str], dt.date | None]:
    """Each started account's state date, read from ``booker.starts`` once per version of it."""
    starts = booker.starts
    cached = getattr(booker, "_quick_states", None)
    if cached is None or cached[0] is not starts:
        cached = booker._quick_states = (starts, {(v, a): d for v, a, d in starts.select("venue", "account", "state_date").iter_rows()})
    return cached[1]


def _cost(method: str, by_key: dict[Key, list[tuple]], lots: dict[Key, list[Lot]]) -> dict[Key, tuple[list[Lot], list[Decimal]]]:
    """Each key's carried lots followed by its trades through the costing kernel, as
    :func:`utl.costing.compute_costs` runs them: (the key's open lots after, each trade's realized
    PnL). Keys are costed in one call per scale their quantities need (9 places, or more): one
    key at 18 places does not take every other key past 64 bits."""
    by_scale: dict[int, dict[Key, list[tuple]]] = defaultdict(dict)
    for key, its in by_key.items():
        by_scale[_scale([lot[2] for lot in lots.get(key, [])] + [t[4] for t in its])][key] = its
    out: dict[Key, tuple[list[Lot], list[Decimal]]] = {}
    for qty_scale, part in by_scale.items():
        out.update(_cost_at(method, part, lots, qty_scale))
    return out


def _cost_at(method: str, by_key: dict[Key, list[tuple]], lots: dict[Key, list[Lot]],
             qty_scale: int) -> dict[Key, tuple[list[Lot], list[Decimal]]]:
    group, qty, price, ids, times, first = [], [], [], [], [], []
    for g, (key, its) in enumerate(by_key.items()):
        # In application order, as compute_costs orders carried lots: by the time each opened,
        # ties as they are held (lots read back from the database come in its order, not theirs).
        carried = sorted(lots.get(key, ()), key=_opened)
        first.append(len(qty) + len(carried))
        for trade_id, opened, q, p in carried:
            group.append(g), qty.append(q), price.append(p), ids.append(trade_id), times.append(opened)
        for trade in its:
            group.append(g), qty.append(trade[4]), price.append(trade[5]), ids.append(trade[3]), times.append(trade[1])
    qty_ints = _ints(qty, qty_scale, _INT64)
    price_scale = _scale(price)
    price_ints = _ints(price, price_scale, _PRICE_MOST)
    groups = np.asarray(group, np.int64)
    q = np.asarray(qty_ints, np.int64)
    if not group_totals_fit(groups, q):
        raise _NotQuick
    n = len(q)
    outcome = match_and_realize(groups, q, np.asarray(price_ints, np.int64), method, np.arange(n, dtype=np.int64),
                                qty_scale, price_scale, len(by_key))
    if outcome is None:
        raise _NotQuick
    (results, _, _), (open_trade, open_qty) = outcome
    pnl_words, _, _ = results.words(qty_scale)
    pnl = [_from_words(int(lo), int(hi)) for lo, hi in pnl_words.tolist()]
    after: dict[int, list[Lot]] = defaultdict(list)
    keep = np.argsort(open_trade, kind="stable")
    for row, amount in zip(open_trade[keep].tolist(), open_qty[keep].tolist()):
        after[group[row]].append((ids[row], times[row], Decimal(amount).scaleb(-qty_scale, _WIDE), price[row]))
    return {key: (after.get(g, []), pnl[first[g]:first[g] + len(its)]) for g, (key, its) in enumerate(by_key.items())}


def _opened(lot: Lot) -> dt.datetime:
    return lot[1]


def _scale(values: list[Decimal]) -> int:
    """The places the costing holds ``values`` at: 9, or the fewest that hold them all."""
    places = 0
    for value in values:
        exponent = value.as_tuple().exponent
        if exponent < -places:
            # Trailing zeros (a value read back at 18 places) hold no digit.
            places = max(places, -value.normalize(_WIDE).as_tuple().exponent)
    if places > 18:
        raise _NotQuick
    return 9 if places <= 9 else places


def _ints(values: list[Decimal], scale: int, most: int) -> list[int]:
    """``values`` as integers at ``scale`` places; not quick at ``most`` or past it."""
    ints = [int(value.scaleb(scale, _WIDE)) for value in values]
    if any(v >= most or -v >= most for v in ints):
        raise _NotQuick
    return ints


def _from_words(lo: int, hi: int) -> Decimal:
    value = lo | (hi << 64)
    if hi >= 2**63:
        value -= 2**128
    return Decimal(value).scaleb(-18, _WIDE)


def _lots_rows(batch: QuickBatch, before: dict[Key, list[Lot]], after: dict[Key, list[Lot]]) -> None:
    """The lots written, as the booker writes them (``_lots_written``): the difference where every
    lot of the batch's keys is told apart by its opening trade, else the keys' lots whole."""
    def distinct(side: dict[Key, list[Lot]]) -> bool:
        for lots in side.values():
            ids = [lot[0] for lot in lots]
            if None in ids or len(set(ids)) != len(ids):
                return False
        return True

    batch.lot_keys = list(before)
    if not (distinct(before) and distinct(after)):
        batch.lots = [(*key, *lot) for key, lots in after.items() for lot in lots]
        batch.lots_gone = None
        return
    batch.lots, batch.lots_gone = [], []
    for key in before:
        old, new = set(before[key]), set(after[key])
        batch.lots += [(*key, *lot) for lot in after[key] if lot not in old]
        batch.lots_gone += [(*key, *lot) for lot in before[key] if lot not in new]


def _position(quick: Quick, account_asset: tuple[str, str, str], book: str, reporting: str) -> tuple:
    """A ``utl.live_positions`` row (LIVE_ROWS) of an account alone in its book, as
    :func:`utl.stream.books.position_rows` makes it."""
    qty, ts, seq = quick.holdings[account_asset]
    asset = account_asset[2]
    if asset == reporting:
        cost = qty
    else:
        cost = exact_sum(at18(_WIDE.multiply(lot[2], lot[3])) for lot in quick.lots.get((book, asset), []))
    average = at18(_WIDE.divide(cost, qty)) if qty != 0 else None
    realized = exact_sum(quick.pnl.get(account_asset, {}).values())
    return (*account_asset, qty, cost, average, realized, ts, seq)


def _text(value: Decimal | None) -> str | None:
    if value is None:
        return None
    # Every 18 places (as Polars writes a Decimal(38, 18)), rounded half-even where there are more.
    return format(value, ".18f") if value else "0.000000000000000000"  # (no "-0": Polars writes none)


def position_messages(live: list[tuple], landing: str) -> list[tuple[str, bytes]]:
    """:func:`utl.stream.booker.position_messages` of LIVE_ROWS tuples: the same subjects and JSON
    (written here a row at a time: ``json.dumps`` of a dict cost ~13 us a position)."""
    out = []
    tail = ',"landing":' + _json_text(landing) + "}"
    for venue, account, asset, qty, cost, average, realized, ts, seq in live:
        body = "".join([
            '{"venue":', _json_text(venue), ',"account":', _json_text(account), ',"asset":', _json_text(asset),
            ',"qty":"', _text(qty), '","cost_basis":"', _text(cost),
            '","avg_cost":', "null" if average is None else '"' + _text(average) + '"',
            ',"realized_pnl":"', _text(realized),
            '","last_trade_ts":', "null" if ts is None else '"' + ts.astimezone(dt.timezone.utc).isoformat() + '"',
            ',"stream_seq":', "null" if seq is None else str(seq), tail])
        out.append((f"{POSITIONS_PREFIX}.{venue}.{account}", body.encode()))
    return out


_PLAIN_TEXT = re.compile(r'[^"\\\x00-\x1f]*\Z')


def _json_text(value: str) -> str:
    """A JSON string, as ``json.dumps(value, ensure_ascii=False)`` writes it."""
    return '"' + value + '"' if _PLAIN_TEXT.match(value) else json.dumps(value, ensure_ascii=False)


_MICROSECOND = dt.timedelta(microseconds=1)


def _frame(rows: list[tuple], schema: pl.Schema) -> pl.DataFrame:
    """``rows`` (tuples in ``schema``'s columns) as a frame, a column at a time. Polars reads a
    Python object at ~3 us when it must ask Python about it (an aware ``datetime``'s offset, a
    ``Decimal``'s digits): an aware time goes in as its count of units since the epoch, a
    decimal as its plain text (read by Polars' own parser, exact at the column's places; a
    column with a value past them, which that parser would round, goes Polars' object way, as
    every column did before). 2,000 decimals: 0.9 ms against 5.9 ms."""
    if not rows:
        return schema.to_frame()
    columns = []
    for (name, dtype), values in zip(schema.items(), zip(*rows)):
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None and dtype.time_unit == "us":
            counts = [None if v is None else (v - EPOCH) // _MICROSECOND for v in values]
            columns.append(pl.Series(name, counts, dtype=pl.Int64).cast(dtype))
        elif isinstance(dtype, pl.Decimal) and (texts := _plain_texts(values, dtype.scale)) is not None:
            columns.append(pl.Series(name, texts, dtype=pl.String).cast(dtype, strict=True))
        else:
            columns.append(pl.Series(name, values, dtype=dtype, strict=True))
    return conformed(pl.DataFrame(columns), schema)


def _plain_texts(values: tuple, scale: int) -> list[str | None] | None:
    """``values`` (Decimals or None) as plain decimal texts; None if one is not a finite Decimal
    or has more than ``scale`` places (Polars' parser would round it)."""
    texts = []
    for value in values:
        if value is None:
            texts.append(None)
            continue
        if type(value) is not Decimal or not value.is_finite():
            return None
        text = format(value, "f")
        point = text.find(".")
        if point >= 0 and len(text) - point - 1 > scale:
            return None
        texts.append(text)
    return texts


def _tuples(frame: pl.DataFrame) -> list[tuple]:
    """``frame.rows()``, value for value (a Decimal with the column's places, as Polars gives it),
    a column at a time: each Decimal made from the column's text (~0.45 us) rather than by
    Polars' conversion of each value (~0.8 us). Used where a frames batch's books are read back
    into the quick books (:meth:`Quick.absorb`) and where they are first loaded."""
    columns = []
    for series in frame.iter_columns():
        if isinstance(series.dtype, pl.Decimal):
            columns.append([None if text is None else Decimal(text) for text in series.cast(pl.String).to_list()])
        else:
            columns.append(series.to_list())
    return list(zip(*columns))


def as_frames(batch: QuickBatch) -> dict[str, pl.DataFrame]:
    """A quick batch's rows as the frames :func:`utl.stream.store.commit_batch` writes."""
    key_schema = pl.Schema({"book": pl.String, "asset": pl.String})
    frames = dict(starts=_frame(batch.starts, START_ROWS), fills=_frame(batch.fills, FILLS_ROWS), legs=_frame(batch.legs, LEGS_ROWS),
                  keys=_frame(batch.lot_keys, key_schema), lots=_frame(batch.lots, LOTS_STATE),
                  openings=_frame(batch.openings, OPENINGS), day_pnl=_frame(batch.day_pnl, DAY_PNL),
                  live=_frame(batch.live, LIVE_ROWS), replayed=key_schema.to_frame())
    if batch.lots_gone is not None:
        frames["lots_gone"] = _frame(batch.lots_gone, LOTS_STATE)
    return frames
