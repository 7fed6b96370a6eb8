"""Live books: open lots, positions and realized PnL carried fill by fill (stream.md, "Order").

The costing is the end-of-day run's, call for call: a key (book, asset) is costed by
:func:`utl.costing.compute_costs` over its carried lots followed by its trades, exactly as
:func:`utl.daily.run_day` costs a date, and the lots it leaves are carried by the same rule
(:func:`utl.daily.carry_lots`). What the stream adds is *when* it costs:

- a batch whose trades of a key all come at or after the key's last booked trade continues
  from the key's current lots (costing is a fold: carrying lots mid-day changes nothing
  under FIFO, LIFO and HIFO, whose lots are exact);
- a trade older than the key's last one (a late fill), and every trade under WAC (whose pool
  average is rounded at each re-averaging, so where a pool is carried changes its last
  digit), replays the key from the opening lots of the trade's day through its last day.

So the lots and PnL of a day do not depend on the order fills arrived in, and equal what the
end-of-day run computes from the same opening lots and the same trades. Trades apply in
``ts`` order, then stream sequence (arrival), as the costing contract orders them.

Everything here is pure: frames in, frames out; the booker persists what changed.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal
from dataclasses import dataclass, field

import polars as pl

from utl.costing import compute_costs
from utl.daily import carry_lots
from utl.positions import share_book_cost
from utl.decimals import DECIMAL, WIDE as _WIDE
from utl.frames import conformed, rows_where, with_constants
from utl.schemas import LOTS_STATE, UTC_TS

KEY = ["book", "asset"]
ACCOUNT_ASSET = ["venue", "account", "asset"]
ZERO = pl.lit(0, DECIMAL)

TRADES = pl.Schema({"book": pl.String, "asset": pl.String, "venue": pl.String, "account": pl.String,
                    "business_date": pl.Date, "ts": UTC_TS, "stream_seq": pl.Int64, "trade_id": pl.String,
                    "qty": DECIMAL, "price": DECIMAL})
"""A costing trade: one priced leg of an asset other than the reporting currency."""
OPENINGS = pl.Schema({"business_date": pl.Date, **LOTS_STATE})
"""The lots of a key at the start of a date on which it has trades (and its starting lots)."""
DAY_PNL = pl.Schema({"business_date": pl.Date, "venue": pl.String, "account": pl.String, "asset": pl.String,
                     "realized_pnl": DECIMAL})
LAST = pl.Schema({"book": pl.String, "asset": pl.String, "last_ts": UTC_TS})
HOLDINGS = pl.Schema({"venue": pl.String, "account": pl.String, "asset": pl.String, "qty": DECIMAL,
                      "last_trade_ts": UTC_TS, "stream_seq": pl.Int64})


@dataclass
class Books:
    """The live state. ``trades`` is every costing trade since the starting state (what a
    replay needs); ``openings`` the lots each key started each of its dates with."""

    method: str
    trades: pl.DataFrame = field(default_factory=TRADES.to_frame)
    openings: pl.DataFrame = field(default_factory=OPENINGS.to_frame)
    lots: pl.DataFrame = field(default_factory=LOTS_STATE.to_frame)
    day_pnl: pl.DataFrame = field(default_factory=DAY_PNL.to_frame)
    holdings: pl.DataFrame = field(default_factory=HOLDINGS.to_frame)
    last: pl.DataFrame = field(default_factory=lambda: LAST.to_frame())  # each key's latest trade time


@dataclass(frozen=True)
class Changes:
    keys: pl.DataFrame  # (book, asset) whose lots changed
    openings: pl.DataFrame  # OPENINGS rows to write: all of a replayed key's, the new ones of the others
    replayed: pl.DataFrame  # (book, asset) whose openings are replaced whole (a replay rewrote them)
    day_pnl: pl.DataFrame  # DAY_PNL rows changed
    holdings: pl.DataFrame  # HOLDINGS rows changed (venue, account, asset)
    lots_before: pl.DataFrame = field(default_factory=LOTS_STATE.to_frame)  # the changed keys' lots, before
    lots_after: pl.DataFrame = field(default_factory=LOTS_STATE.to_frame)  # and after


def add_holdings(holdings: pl.DataFrame, legs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Ledger quantities plus the batch's legs; (all holdings, the changed rows)."""
    moved = (legs.lazy().group_by(ACCOUNT_ASSET)
             .agg(pl.col("qty").sum(), pl.col("ts").max().alias("last_trade_ts"), pl.col("stream_seq").max())
             .collect())
    held, kept = split_by(holdings, moved, ACCOUNT_ASSET)
    changed = (pl.concat([held.lazy(), moved.lazy().select(HOLDINGS.names()).cast(HOLDINGS)])
               .group_by(ACCOUNT_ASSET)
               .agg(pl.col("qty").sum(), pl.col("last_trade_ts").max(), pl.col("stream_seq").max())
               .collect())
    changed = conformed(changed, HOLDINGS)
    return compacted(pl.concat([kept, changed])), changed


MOST_CHUNKS = 16
"""Pieces a growing part of the books may be held in before its newest are merged."""


def compacted(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` in at most :data:`MOST_CHUNKS` pieces. Each part of the books grows by a piece
    or two a batch (the trades and openings by appending, the lots, holdings, day PnL and last
    times by a batch's rows put after the others, which keep their pieces), and every step over
    them pays for each piece: after 400 live batches of 50 fills the trades were in 401 pieces.
    Made whole each time, a live day's millions of trades would be copied every few batches
    (3 M trades: ~115 ms). So only the newest pieces are merged, back to the first piece more
    than twice their size: pieces shrink from oldest to newest, and a row is copied a few times
    in all (8 on average over 200,000 batches), not once every few batches."""
    counts = frame.n_chunks("all")
    if max(counts, default=0) <= MOST_CHUNKS:
        return frame
    if min(counts) != max(counts):  # columns cut in different places: no common boundary
        return frame.rechunk()
    lengths = frame.to_series(0).chunk_lengths()
    k, size = len(lengths) - 1, lengths[-1]
    while k > 0 and (2 * size >= lengths[k - 1] or len(lengths) - k < 2):
        k -= 1
        size += lengths[k]
    if k == 0:
        return frame.rechunk()
    kept = frame.height - size
    return pl.concat([frame.slice(0, kept), frame.slice(kept).rechunk()], rechunk=False)


def split_by(frame: pl.DataFrame, keys: pl.DataFrame, on: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(``frame``'s rows whose ``on`` columns are a row of ``keys``, the others), in ``frame``'s
    order. One pass over ``frame`` to mark its rows, where a semi and an anti join made two (on a
    million lots: 13 ms for the marks and ~5 ms a filter, against 18 and 38 ms for the joins):
    the books are as wide as every key the stream has booked, a batch's keys a few of them."""
    marks = frame.select(pl.struct(on).is_in(keys[on].to_struct().implode())).to_series()
    return rows_where(frame, marks), rows_where(frame, ~marks)


def book_trades(books: Books, new: pl.DataFrame) -> Changes:
    """Cost ``new`` trades (TRADES) into ``books`` (mutated); what changed."""
    new = conformed(new, TRADES)
    if new.height == 0:
        no_keys = pl.DataFrame(schema={"book": pl.String, "asset": pl.String})
        return Changes(no_keys, OPENINGS.to_frame(), no_keys, DAY_PNL.to_frame(), HOLDINGS.to_frame())
    first_new = new.group_by(KEY).agg(pl.col("ts").min().alias("first_ts"), pl.col("ts").max().alias("last_ts"))
    last_old, last_others = split_by(books.last, first_new, KEY)
    # The lots of the batch's keys, and every other key's (kept as they are).
    lots_before, lots_others = split_by(books.lots, first_new, KEY)
    keys = first_new.drop("last_ts").join(last_old, on=KEY, how="left").with_columns(
        replay=(pl.lit(books.method == "wac") | (pl.col("first_ts") < pl.col("last_ts"))).fill_null(books.method == "wac"),
        from_date=pl.col("first_ts").dt.date(),
    )
    replay = rows_where(keys, keys["replay"])
    if replay.height:
        onward = rows_where(keys, ~keys["replay"])
        old, replay_start, openings, dropped_pnl = _replay_from(books, lots_before, replay.select(*KEY, "from_date"))
        to_cost = pl.concat([old, new]).sort("ts", "stream_seq", maintain_order=True)
        start_lots = pl.concat([replay_start, lots_before.join(onward.select(KEY), on=KEY, how="semi")])
    else:  # the usual batch replays nothing: none of the steps over the trades and openings kept
        openings, dropped_pnl = books.openings, None
        to_cost = new.sort("ts", "stream_seq", maintain_order=True)
        start_lots = lots_before

    lots_now, new_openings, realized = _cost_by_day(start_lots, to_cost, openings, books.method)
    openings = pl.concat([openings, new_openings])

    # Realized PnL per (account, asset, date): replayed dates are recomputed whole, the
    # others add the new trades' PnL.
    day_realized = realized.group_by("business_date", "venue", "account", "asset").agg(pl.col("realized_pnl").sum())
    if dropped_pnl is not None and not dropped_pnl.height:
        dropped_pnl = None
    base = (books.day_pnl.join(dropped_pnl, on=["venue", "account", "asset", "business_date"], how="anti")
            if dropped_pnl is not None else books.day_pnl)
    touched = day_realized.select("business_date", "venue", "account", "asset")
    so_far, others = split_by(base, touched, touched.columns)
    updated = (pl.concat([so_far.lazy(), day_realized.lazy().select(DAY_PNL.names())])
               .group_by(touched.columns).agg(pl.col("realized_pnl").sum()).collect())
    changed_pnl = conformed(updated, DAY_PNL)
    if dropped_pnl is not None:
        # A replayed date that now has no trade of an account keeps a zero row.
        zeroed = dropped_pnl.join(touched, on=touched.columns, how="anti").with_columns(realized_pnl=ZERO)
        changed_pnl = pl.concat([changed_pnl, conformed(zeroed, DAY_PNL)])
        others = others.join(zeroed, on=touched.columns, how="anti")
    books.day_pnl = compacted(pl.concat([others, changed_pnl]))

    changed_keys = keys[KEY]
    books.lots = compacted(pl.concat([lots_others, lots_now]))
    books.openings = compacted(openings)
    books.trades = compacted(pl.concat([books.trades, new]))
    latest = pl.concat([last_old, first_new[LAST.names()]]).group_by(KEY).agg(pl.col("last_ts").max())
    books.last = compacted(pl.concat([last_others, latest[LAST.names()]]))
    # A key carried onward keeps the openings it had and adds the dates it had none: only
    # those are written (rewriting every opening of every touched key was most of a batch's
    # database work once the books were wide). A replayed key's are rewritten whole.
    replayed = replay.select(KEY)
    written = (pl.concat([openings.join(replayed, on=KEY, how="semi"), new_openings.join(replayed, on=KEY, how="anti")])
               if replayed.height else new_openings)
    return Changes(changed_keys, written, replayed, changed_pnl, HOLDINGS.to_frame(), lots_before, lots_now)


def _replay_from(books: Books, lots: pl.DataFrame,
                 from_day: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """What replaying keys (book, asset, ``from_date``; ``lots``: the batch's keys' current lots)
    starts from: (their trades kept from that date on, their lots at its opening (or the next
    date's: nothing happened to the key in between), the openings kept (those of later dates
    go), the (account, asset, date) whose realized PnL is recomputed)."""
    old = books.trades.join(from_day, on=KEY).filter(pl.col("business_date") >= pl.col("from_date")).drop("from_date")
    start = (books.openings.join(from_day, on=KEY).filter(pl.col("business_date") >= pl.col("from_date"))
             .filter(pl.col("business_date") == pl.col("business_date").min().over(KEY)).drop("from_date"))
    # Keys with a recorded opening start from it (its marker row holds no lot).
    start_keys = start.select(KEY).unique()
    start = start.filter(pl.col("qty") != 0)
    # Keys never seen before start from their current lots (none, or starting lots).
    no_opening = from_day.join(start_keys, on=KEY, how="anti").select(KEY)
    # (A join against no keys is skipped: it would pass over every key's lots for nothing.)
    replay_start = pl.concat([start.select(LOTS_STATE.names()),
                              lots.join(no_opening, on=KEY, how="semi") if no_opening.height else lots.clear()])
    dropped_openings = books.openings.join(from_day, on=KEY).filter(
        pl.col("business_date") > pl.col("from_date")).select(*KEY, "business_date")
    openings = (books.openings.join(dropped_openings, on=[*KEY, "business_date"], how="anti")
                if dropped_openings.height else books.openings)
    return old, replay_start, openings, old.select("venue", "account", "asset", "business_date").unique()


def _cost_by_day(start_lots: pl.DataFrame, trades: pl.DataFrame, openings: pl.DataFrame,
                 method: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Cost ``trades`` date by date from ``start_lots`` (lots of the trades' keys only): (lots at
    the end, openings recorded for dates a key had none, realized per trade and date)."""
    current = start_lots
    recorded, realized = [], []
    days = trades["business_date"].unique().sort().to_list()
    # One date (a live batch's usual): every key of the lots trades that date, so there is
    # nothing to pick out of the trades or the lots, nor to carry past it.
    one_day = len(days) == 1
    for day in days:
        todays = trades if one_day else trades.filter(pl.col("business_date") == day)
        day_keys = todays.select(KEY).unique()
        carried = current if one_day else current.join(day_keys, on=KEY, how="semi")
        have = openings.filter(pl.col("business_date") == day).select(KEY)
        # A key's opening of a date is recorded once, with a marker row (qty 0) so that an
        # empty opening is known to be empty.
        new_keys = day_keys.join(have, on=KEY, how="anti")
        marker = with_constants(new_keys, trade_id=(None, pl.String), opened_ts=(start_day(day), UTC_TS),
                                qty=(Decimal(0), DECIMAL), entry_price=(Decimal(0), DECIMAL))
        opening = pl.concat([carried.join(new_keys, on=KEY, how="semi"), conformed(marker, LOTS_STATE)])
        recorded.append(conformed(with_constants(opening, business_date=(day, pl.Date)), OPENINGS))
        run = pl.concat([
            carried.select(*KEY, pl.col("opened_ts").alias("ts"), "trade_id", "qty", pl.col("entry_price").alias("price"),
                           venue=pl.lit(None, pl.String), account=pl.lit(None, pl.String), is_carry=pl.lit(True)),
            todays.select(*KEY, "ts", "trade_id", "qty", "price", "venue", "account", is_carry=pl.lit(False)),
        ])
        costs = compute_costs(run, method, ids_unique=True, positions=False)
        carried_on = carry_lots(costs.open_lots, method)
        current = carried_on if one_day else pl.concat([current.join(day_keys, on=KEY, how="anti"), carried_on])
        realized.append(costs.realized.filter(~pl.col("is_carry")).select(
            "venue", "account", "asset", "realized_pnl", business_date=pl.lit(day, pl.Date)))
    lots = conformed(current if one_day else current.join(trades.select(KEY).unique(), on=KEY, how="semi"), LOTS_STATE)
    realized_frame = (pl.concat(realized) if realized else
                      pl.DataFrame(schema={"venue": pl.String, "account": pl.String, "asset": pl.String,
                                           "realized_pnl": DECIMAL, "business_date": pl.Date}))
    return lots, pl.concat(recorded) if recorded else OPENINGS.to_frame(), realized_frame


def position_rows(books: Books, holdings: pl.DataFrame, book_of, reporting: str, *, mates: bool = True) -> pl.DataFrame:
    """``utl.live_positions`` rows for ``holdings`` (venue, account, asset, qty, ...), and for
    every other account of the same (book, asset): where ``[books]`` groups accounts, the
    book's cost basis is shared out over its accounts as the end-of-day run shares it
    (:func:`utl.positions.share_book_cost`), so one account's fill moves the others' share.
    ``mates=False``: the caller knows no book of ``holdings`` holds another account (no pass
    over every holding to find none)."""
    def with_books(frame: pl.DataFrame) -> pl.DataFrame:
        pairs = frame.select("venue", "account").unique()
        books_of = pairs.with_columns(book=pl.Series([book_of(v, a) for v, a in pairs.iter_rows()], dtype=pl.String))
        return frame.join(books_of, on=["venue", "account"], how="left")

    asked = with_books(holdings)
    keys = asked.select(KEY).unique()
    # Only the rows asked for and their book-mates: the whole state is far larger than a batch.
    if mates:
        others = (with_books(books.holdings.join(keys.select("asset").unique(), on="asset", how="semi")
                             .join(asked.select(ACCOUNT_ASSET), on=ACCOUNT_ASSET, how="anti"))
                  .join(keys, on=KEY, how="semi"))
        booked = pl.concat([asked, others.select(asked.columns)])
    else:
        booked = asked
    basis = (books.lots.lazy().join(keys.lazy(), on=KEY, how="semi")
             .group_by(KEY).agg((pl.col("qty") * pl.col("entry_price")).sum().alias("book_cost")).collect())
    realized = (books.day_pnl.lazy().join(booked.lazy().select(ACCOUNT_ASSET), on=ACCOUNT_ASSET, how="semi")
                .group_by(ACCOUNT_ASSET).agg(pl.col("realized_pnl").sum()).collect())
    rows = (share_book_cost(booked, basis, reporting).join(realized, on=ACCOUNT_ASSET, how="left")
            .with_columns(realized_pnl=pl.col("realized_pnl").fill_null(ZERO)))
    return rows.select(
        "venue", "account", "asset", "qty", "cost_basis",
        avg_cost=pl.when(pl.col("qty") != 0).then(pl.col("cost_basis") / pl.col("qty")),
        realized_pnl="realized_pnl", last_trade_ts="last_trade_ts", stream_seq="stream_seq",
    )


_UNIT = Decimal("1e-18")


def at18(value: Decimal) -> Decimal:
    """``value`` rounded half-even at 18 places, as a ``Decimal(38, 18)`` product or quotient is."""
    return value.quantize(_UNIT, rounding=ROUND_HALF_EVEN, context=_WIDE)


def start_day(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
