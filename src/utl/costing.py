"""Lot-based unit cost: FIFO, LIFO, HIFO and WAC, exact to the last unit.

The outside face is ``../shared/contracts/costing.md``::

    result = compute_costs(trades, method="fifo")
    result.realized, result.positions, result.open_lots

How it works. Trades are validated (every bad value reported by row, column and
``trade_id``; clean typed input passes a few whole-column checks instead), put in
application order (book, asset, ts, input order) by one radix sort, and their quantities and
prices read as scaled integers straight from the Decimal columns' words (:mod:`utl.scaled`).
The compiled kernels (:mod:`utl.lots`) match lots and price every match exactly: closing
``q`` of a lot entered at ``p0`` with a trade at ``p1`` realizes ``q * (p1 - p0)`` for a long
lot and ``q * (p0 - p1)`` for a short one, each product rounded half-even at 18 digits; they
write each trade's results as Decimal words at its input row. Quantities are never rounded:
a book that ends flat holds exactly zero. When a number does not fit 64/128 bits the same
matching runs on Python integers, with Polars ``Decimal`` pricing the matches (the wide path).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

import numpy as np
import polars as pl

from utl.decimals import DECIMAL, SCALE, WIDE as _WIDE, count_decimals, strict_decimal
from utl.errors import BadInput, RowError
from utl.heap import give_back_freed
from utl.lots import group_totals_fit, match_and_realize, run_parts, two_at_once, match_lots, price_matches, realize_wac, wac_exact, wac_kernel
from utl.ordering import group_time_order, hashes_repeat, stable_argsort, take
from utl.short_text import short_text_codes
from utl.scaled import decimal_from_words, decimal_word_chunks, int64_to_decimal, to_int64, to_int64_at_nine

Method = Literal["fifo", "lifo", "hifo", "wac"]
METHODS: tuple[str, ...] = ("fifo", "lifo", "hifo", "wac")
REQUIRED = ("book", "asset", "ts", "trade_id", "qty", "price")
INT64_MAX = 2**63 - 1
_GROUP = "__group"
# utl.schemas.UTC_TS, spelled here: utl.schemas loads pandera (~9 MB), which costing never uses.
UTC_TS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class CostingResult:
    realized: pl.DataFrame  # every input trade, input order, + realized_pnl, closed_qty, position_after
    positions: pl.DataFrame | None  # one row per (book, asset), flat ones included; None when not asked for
    open_lots: pl.DataFrame  # lots still open ("wac": one pool per open position)


def compute_costs(
    trades: pl.DataFrame | pl.LazyFrame,
    method: Method = "fifo",
    *,
    source: str | None = None,
    ids_unique: bool = False,
    positions: bool = True,
) -> CostingResult:
    """Cost ``trades`` under ``method``; raises :class:`ValueError` (a :class:`BadInput`)
    naming every bad value's column, row and ``trade_id``; ``source`` names the file.
    ``ids_unique=True`` skips the duplicate ``trade_id`` check, for callers whose ids are
    unique by construction (the daily run's leg ids); everything else is still checked.
    ``positions=False`` leaves ``result.positions`` None, for callers that only carry the open
    lots and sum realized PnL (the day step, transfers, the stream): the per-position sums and
    exact averages are a good part of a small call's steps."""
    if method not in METHODS:
        raise ValueError(f"unknown costing method {method!r}: use one of {', '.join(METHODS)}")
    warm_kernels(method)
    frame = trades.collect() if isinstance(trades, pl.LazyFrame) else trades
    valid, codes = _validate(frame, source=source, ids_unique=ids_unique, ids_later=True)
    converted = None
    if codes is None:
        order, group = application_order(valid)
    else:
        # The order, the duplicate-id check and the numbers' conversion to integers are
        # independent passes over the input: two strands, one on each core.
        def strand_a():
            return group_time_order(*codes[:3])

        def strand_b():  # about as long as the order
            return _ids_repeat(codes), _qty_at_nine(valid), _prices(decimal_word_chunks(valid["price"]))

        jobs = [strand_a, strand_b]
        a, b = run_parts(jobs, lambda job: job()) if two_at_once(frame.height) else [job() for job in jobs]
        del codes, jobs
        ordered, (repeat, qty_at_nine, prices) = a, b
        del a, b
        if repeat:  # a duplicate id, or a hash collision: the exact check decides
            valid = _checked_row_by_row(frame, source=source, ids_unique=ids_unique)
            ordered = application_order(valid)
        else:
            converted = (qty_at_nine, prices)
        del qty_at_nine, prices
        order, group = ordered
        del ordered
    fast = _cost_in_words(valid, order, group, method, converted, positions)
    del converted
    if fast is not None:
        return fast
    # Past int64 at the data's scale (or past 128 bits in a product): the wide path below,
    # Python integers in the kernels and Polars Decimal around them.
    ordered = pl.DataFrame(
        {
            _GROUP: group,
            "qty": valid["qty"].gather(order),
            "price": valid["price"].gather(order),
        }
    )
    scale, fits = choose_scale(ordered["qty"], ordered[_GROUP])
    cost = _cost_wac if method == "wac" else _cost_lots
    realized_pnl, closed_qty, lots = cost(ordered, scale, fits, method)
    open_lots = _describe_lots(valid, order, lots, pooled=method == "wac")

    per_trade = ordered.select(
        _GROUP,
        pl.col("qty").cum_sum().over(_GROUP).alias("position_after"),
        realized_pnl.alias("realized_pnl"),
        closed_qty.alias("closed_qty"),
    )
    ends = np.flatnonzero(np.r_[group[1:] != group[:-1], True]) if len(group) else np.empty(0, np.int64)
    totals = per_trade.select(
        pl.col("position_after").alias("qty"), pl.col("realized_pnl").cum_sum().over(_GROUP).alias("realized_pnl")
    )[ends]
    by_position = None
    if positions:
        averages = (
            open_lots.select("book", "asset", pl.col("entry_price").alias("avg_price"))
            if method == "wac"
            else _exact_averages(open_lots)
        )
        by_position = _positions(valid, order[ends], totals, open_lots, averages)

    back = np.empty_like(order)
    back[order] = np.arange(len(order))  # application order -> input order
    realized = valid.with_columns(per_trade.select("realized_pnl", "closed_qty", "position_after")[back])
    return CostingResult(realized=realized, positions=by_position, open_lots=open_lots)


_warmed: set[str] = set()
_warm_lock = threading.Lock()


def warm_kernels(method: str) -> None:
    """Start loading the compiled kernels ``method`` runs, once per process and method, on a
    thread of its own: a few trades costed in the background.

    A process's first kernel call pays numba's own start (its typing and lowering
    registries, then each kernel read from its cache, or compiled in a cold checkout): some
    0.2-0.3 s, nearly all Python holding the GIL. Started here, that runs while the calling
    thread's Polars checks and casts run, which let go of the GIL; a kernel the caller
    reaches first is loaded by whichever thread comes first (numba's compile lock), never
    twice. Nothing is waited for and nothing is shared but numba's dispatchers, so this
    changes no result; a failure here only means the caller loads the kernels itself."""
    with _warm_lock:
        if method in _warmed:
            return
        _warmed.add(method)
    threading.Thread(target=_cost_a_few, args=(method,), name=f"utl-costing-warm-{method}", daemon=True).start()


def load_kernels(*methods: str) -> None:
    """Load the compiled kernels of ``methods`` (all four when none is named) now, on the
    calling thread, from numba's on-disk cache (compiling them into it in a checkout where
    it is cold): for a process that wants even its first :func:`compute_costs` at full
    speed, such as a service warming up before it takes work, or a benchmark. Without it,
    :func:`compute_costs` starts the same loading in the background on its first call."""
    for method in methods or METHODS:
        if method not in METHODS:
            raise ValueError(f"unknown costing method {method!r}: use one of {', '.join(METHODS)}")
        with _warm_lock:
            _warmed.add(method)
        compute_costs(_a_few(), method)  # type: ignore[arg-type]


def _cost_a_few(method: str) -> None:
    try:
        compute_costs(_a_few(), method)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - only a head start: the caller loads what this did not
        pass


def _a_few() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "book": ["b", "b", "b"],
            "asset": ["x", "x", "x"],
            "ts": pl.Series([0, 1, 2], dtype=pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "trade_id": ["1", "2", "3"],
            "qty": pl.Series(["2", "-3", "0.5"]).str.to_decimal(scale=SCALE),
            "price": pl.Series(["10.5", "11", "12"]).str.to_decimal(scale=SCALE),
        }
    )


@dataclass(frozen=True)
class GroupCosts:
    """What a business date needs from costing (:func:`cost_groups`): no per-trade columns."""

    realized: pl.DataFrame  # book, asset, realized_pnl: each (book, asset) with a counted trade, summed over those
    open_lots: pl.DataFrame  # book, asset, row (input row of the opening trade), opened_ts, qty, entry_price


GROUP_TRADES = pl.Schema({"book": pl.String, "asset": pl.String, "ts": UTC_TS, "qty": DECIMAL, "price": DECIMAL})


def cost_groups(trades: pl.DataFrame, method: Method = "fifo", *, counted_from: int = 0) -> GroupCosts | None:
    """The daily run's costing: the same matching and the same exact figures as
    :func:`compute_costs`, but only per (book, asset) realized PnL and the open lots, which
    name their opening trade by input ``row`` instead of a ``trade_id``.

    On 10 M legs the per-trade results (three Decimal columns), the ``trade_id`` text of every
    leg and the positions' averages are most of the costing's memory and a good part of its
    time, and a date uses none of them: it sums realized PnL per (book, asset) and carries
    the open lots. ``trades`` has :data:`GROUP_TRADES`' columns and types; realized PnL sums
    only rows from ``counted_from`` on (the carried lots come first). A (book, asset) is in
    ``realized`` when it has such a row, as a group-by of those rows would give.

    Returns None, with nothing done, when a value is missing, a quantity is zero, a price is
    not above zero, or a number does not fit 64 bits: the caller then runs
    :func:`compute_costs`, which names every bad value or takes the wide path.
    """
    if method not in METHODS:
        raise ValueError(f"unknown costing method {method!r}: use one of {', '.join(METHODS)}")
    if trades.schema != GROUP_TRADES:
        return None
    warm_kernels(method)
    checks = trades.select(
        pl.any_horizontal(pl.all().null_count() > 0).alias("nulls"),
        (pl.col("qty") == 0).any().alias("zero"),
        (pl.col("price") <= 0).any().alias("price"),
    ).row(0, named=True)
    if checks["nulls"] or checks["zero"] or checks["price"]:
        return None
    order, group = application_order(trades)
    n = len(order)
    as_qty = _quantities(decimal_word_chunks(trades["qty"]), group, order)
    if as_qty is None:
        return None
    qty_scale, qty = as_qty
    ends = np.flatnonzero(np.r_[group[1:] != group[:-1], True]) if n else np.empty(0, np.int64)
    n_groups = len(ends)
    if method == "wac":
        outcome = realize_wac(group, qty, decimal_word_chunks(trades["price"]), order, qty_scale, n_groups,
                              counted_from, per_trade=False)
        if outcome is None:
            return None
        _, (end_pos, end_avg_int, end_avg_frac, end_start, end_pnl) = outcome
        open_pool = end_pos != 0
        lots = _OpenLots(end_start[open_pool], int64_to_decimal(end_pos[open_pool], qty_scale),
                         _join_parts(end_avg_int[open_pool], end_avg_frac[open_pool]))
    else:
        as_price = _prices(decimal_word_chunks(trades["price"]))
        if as_price is None:
            return None
        price_scale, price_in, _ = as_price
        price = take(price_in, order)
        del price_in
        outcome = match_and_realize(group, qty, price, method, order, qty_scale, price_scale, n_groups,
                                    counted_from, per_trade=False)
        del price
        if outcome is None:
            return None
        (_, end_pos, end_pnl), (open_trade, open_qty) = outcome
        keep = np.argsort(open_trade, kind="stable")  # opening order
        lots = _OpenLots(open_trade[keep], int64_to_decimal(open_qty[keep], qty_scale),
                         _gather(trades["price"], order[open_trade[keep]]))
    del qty, outcome
    # Lots in (book, asset) order, each group's in opening order, as compute_costs gives them.
    names = pl.DataFrame({"book": trades["book"].gather(order[ends]), "asset": trades["asset"].gather(order[ends])})
    by_name = names.with_row_index("__g").sort("book", "asset")["__g"].to_numpy()
    rank = np.empty(n_groups, np.int64)
    rank[by_name] = np.arange(n_groups)
    lot_group = np.searchsorted(group[ends], group[lots.lot])
    keep = stable_argsort(rank[lot_group])
    rows = order[lots.lot[keep]]
    open_lots = pl.DataFrame(
        {
            "book": _gather(trades["book"], rows),
            "asset": _gather(trades["asset"], rows),
            "row": pl.Series(rows, dtype=pl.Int64),
            "opened_ts": _gather(trades["ts"], rows),
            "qty": lots.qty.gather(keep),
            "entry_price": lots.entry_price.gather(keep),
        }
    )
    # A group is counted when it holds more rows than carried ones (the carried are few:
    # they are found by position, not by a pass over every group).
    carried_at = np.flatnonzero(order < counted_from)
    carried_per_group = np.bincount(np.searchsorted(ends, carried_at), minlength=n_groups)
    counted = (np.diff(np.r_[-1, ends]) > carried_per_group)
    realized = names.with_columns(decimal_from_words(end_pnl, "realized_pnl")).filter(pl.Series(counted))
    return GroupCosts(realized=realized, open_lots=open_lots)


def _gather(column: pl.Series, rows: np.ndarray) -> pl.Series:
    """``column.gather(rows)`` for millions of rows: from a column collected in many chunks
    a gather costs several times more than one made whole first (one column at a time, so
    only one copy is held at once)."""
    return column.rechunk().gather(rows) if column.n_chunks() > 1 and len(rows) > 100_000 else column.gather(rows)


def _cost_in_words(valid: pl.DataFrame, order: np.ndarray, group: np.ndarray, method: str,
                   converted: tuple | None = None, with_positions: bool = True) -> CostingResult | None:
    """The whole costing on scaled integers, or None when a number does not fit.

    Quantities and prices leave their Decimal columns as raw integers (Arrow words), become
    ``int64`` at the fewest digits after the point that hold each column exactly, run
    through the kernels in application order, and come back as Decimal words written at
    each trade's input row: one conversion in, one out, no Decimal arithmetic in between.
    Per (book, asset) ends come from the kernels too (no running sum over every row).
    """
    # Each column's words are let go as soon as its integers are made (the kernels'
    # working memory comes at the peak). ``converted``: the quantities at 9 digits (input
    # order; None if they need another scale) and the prices (input order, at 9 digits or
    # the fewest that hold them; None if none fits below 2**62), made beside the ordering.
    price_words = decimal_word_chunks(valid["price"])  # read in place: no copy
    qty_at_nine, prices = converted if converted is not None else (_qty_at_nine(valid), _prices(price_words))
    del converted
    n = len(order)

    # Both columns into application order at once, one on each core.
    def quantities():
        return _quantities(decimal_word_chunks(valid["qty"]), group, order, qty_at_nine)

    def prices_in_order():
        return None if prices is None else (prices[0], take(prices[1], order))

    jobs = [quantities, prices_in_order]
    as_qty, as_price = run_parts(jobs, lambda job: job()) if two_at_once(n) else [job() for job in jobs]
    del jobs, qty_at_nine, prices
    if as_qty is None:
        return None
    qty_scale, qty = as_qty
    del as_qty
    ends = np.flatnonzero(np.r_[group[1:] != group[:-1], True]) if n else np.empty(0, np.int64)
    n_groups = len(ends)
    if method == "wac":
        outcome = realize_wac(group, qty, price_words, order, qty_scale, n_groups, taken=as_price)
        del price_words, as_price
        if outcome is None:
            return None
        results, (end_pos, end_avg_int, end_avg_frac, end_start, end_pnl) = outcome
        open_pool = end_pos != 0
        lots = _OpenLots(end_start[open_pool], int64_to_decimal(end_pos[open_pool], qty_scale),
                         _join_parts(end_avg_int[open_pool], end_avg_frac[open_pool]))
    else:
        del price_words
        if as_price is None:
            return None
        price_scale, price = as_price
        del as_price
        # HIFO compares entry prices; the scaled integers order exactly as the prices do.
        outcome = match_and_realize(group, qty, price, method, order, qty_scale, price_scale, n_groups)
        if outcome is None:
            return None
        (results, end_pos, end_pnl), (open_trade, open_qty) = outcome
        del price
        keep = np.argsort(open_trade, kind="stable")  # opening order
        lots = _OpenLots(open_trade[keep], int64_to_decimal(open_qty[keep], qty_scale),
                         valid["price"].gather(order[open_trade[keep]]))
    del qty, outcome  # what is left to do reads none of them
    # Lots and positions in (book, asset) order: only the groups' names are sorted, and the
    # lots follow their group's rank (a radix sort on integers, not a sort on text).
    names = pl.DataFrame({"book": valid["book"].gather(order[ends]), "asset": valid["asset"].gather(order[ends])})
    by_name = names.with_row_index("__g").sort("book", "asset")["__g"].to_numpy()
    rank = np.empty(n_groups, np.int64)
    rank[by_name] = np.arange(n_groups)
    lot_group = np.searchsorted(group[ends], group[lots.lot])  # each lot's group, 0..n_groups-1
    keep = stable_argsort(rank[lot_group])
    lots = _OpenLots(lots.lot[keep], lots.qty.gather(keep), lots.entry_price.gather(keep))
    open_lots = _describe_lots(valid, order, lots, pooled=method == "wac", sort=False)
    positions = None
    if with_positions:
        open_lots = open_lots.with_columns(__g=pl.Series(lot_group[keep], dtype=pl.Int64))
        averages = (
            open_lots.select("__g", pl.col("entry_price").alias("avg_price"))
            if method == "wac"
            else _exact_averages(open_lots, keys=("__g",))
        )
        totals = pl.DataFrame([int64_to_decimal(end_pos, qty_scale, "qty"), decimal_from_words(end_pnl, "realized_pnl")])
        positions = _positions(valid, order[ends], totals.with_row_index("__g").cast({"__g": pl.Int64}), open_lots,
                               averages, keys=("__g",))
        open_lots = open_lots.drop("__g")
    give_back_freed()  # the kernels' inputs, before the words' second halves are touched
    pnl, closed, position = results.words(qty_scale)
    realized = valid.with_columns(decimal_from_words(pnl, "realized_pnl"), decimal_from_words(closed, "closed_qty"),
                                  decimal_from_words(position, "position_after"))
    return CostingResult(realized=realized, positions=positions, open_lots=open_lots)


def _qty_at_nine(valid: pl.DataFrame) -> tuple[int, np.ndarray, int] | None:
    return to_int64_at_nine(decimal_word_chunks(valid["qty"]))


_UNSET = object()


def _quantities(words: list[np.ndarray], group: np.ndarray, order: np.ndarray,
                at_nine: tuple[int, np.ndarray, int] | None | object = _UNSET) -> tuple[int, np.ndarray] | None:
    """Quantities as int64 in application order, at 9 digits after the point (one cheap
    pass, and what venues write: ``at_nine``, in input order) or else at the fewest that
    hold them; None when no scale keeps every (book, asset)'s total traded quantity within
    int64."""
    first = to_int64_at_nine if at_nine is _UNSET else (lambda _: at_nine)
    for convert in (first, to_int64):
        got = convert(words)
        if got is not None:
            qty = take(got[1], order)
            if group_totals_fit(group, qty):
                return got[0], qty
    return None


def _prices(words: list[np.ndarray]) -> tuple[int, np.ndarray, int] | None:
    """Prices as int64 (input order) with room to subtract two (below 2**62)."""
    for convert in (to_int64_at_nine, to_int64):
        got = convert(words)
        if got is not None and got[2] < 2**62:
            return got
    return None


def application_order(valid: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The permutation that puts trades in the order they apply: by (book, asset), then
    ``ts``, then input order (a stable sort). Returns it with each trade's group code in
    that order; codes are equal exactly within a (book, asset) and number the groups from
    0 in the order they first appear in the input."""
    codes = valid.select(
        pl.col("book").cast(pl.Categorical).to_physical().alias("b"),
        pl.col("asset").cast(pl.Categorical).to_physical().alias("a"),
        pl.col("ts").dt.epoch("us").alias("t"),
    )
    return group_time_order(codes["b"].to_numpy(), codes["a"].to_numpy(), codes["t"].to_numpy())


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def _as_decimal(frame: pl.DataFrame, column: str) -> tuple[pl.Expr, pl.Expr, str]:
    """(value, is_bad, reason) for a qty/price column given as Decimal, integer or text."""
    dtype = frame.schema[column]
    if dtype == pl.Null:
        return pl.lit(None, DECIMAL), pl.lit(False), ""
    if dtype.is_float():
        # A float already lost the venue's digits: refuse it rather than guess them back.
        return pl.lit(None, DECIMAL), pl.col(column).is_not_null(), "is a float; give an exact decimal or its text"
    if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) <= SCALE:
        return pl.col(column).cast(DECIMAL), pl.lit(False), ""
    text = pl.col(column).cast(pl.String)
    if isinstance(dtype, pl.Decimal):
        text = text.str.replace(r"(\.\d*?)0+$", "${1}").str.strip_chars_end(".")
    value, bad = strict_decimal(text)
    return value, bad, "is not a decimal number (-?digits, up to 18 after the point)"


def _as_utc(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    dtype = frame.schema["ts"]
    if dtype == pl.Datetime("us", "UTC"):
        return pl.col("ts"), pl.lit(False)  # already what the engine uses: no new column
    if isinstance(dtype, pl.Datetime):
        ts = pl.col("ts").cast(pl.Datetime("us", dtype.time_zone))
        ts = ts.dt.convert_time_zone("UTC") if dtype.time_zone else ts.dt.replace_time_zone("UTC")
        return ts, pl.lit(False)
    if dtype == pl.Date:
        return pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), pl.lit(False)
    if dtype == pl.Null:
        return pl.lit(None, UTC_TS), pl.lit(False)
    text = pl.col("ts").cast(pl.String)
    # Unparseable text becomes null here and is reported just below, never dropped.
    ts = text.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return ts, text.is_not_null() & ts.is_null()


def validate_trades(frame: pl.DataFrame, *, source: str | None = None, ids_unique: bool = False) -> pl.DataFrame:
    """Check trades against the contract and return them with ``qty``/``price`` as exact
    decimals and ``ts`` in UTC; raise :class:`BadInput` listing every problem (missing
    column, null, unparseable or zero quantity, non-positive or unparseable price, bad
    timestamp, duplicate ``trade_id`` within a book)."""
    return _validate(frame, source=source, ids_unique=ids_unique)[0]


def _validate(frame: pl.DataFrame, *, source: str | None, ids_unique: bool,
              ids_later: bool = False) -> tuple[pl.DataFrame, tuple | None]:
    """:func:`validate_trades`, with the (book, asset, time) codes of the application order
    when the whole-column checks made them on the way (None otherwise). With ``ids_later``
    the codes carry a fourth member, the ``trade_id`` hashes, when the duplicate-id check
    is still to be made (:func:`_ids_repeat`); the caller makes it, and on a repeat runs
    :func:`_checked_row_by_row`."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BadInput([RowError(source, None, c, "missing column") for c in missing])
    clean = _clean_as_given(frame, ids_unique, ids_later)
    if clean is not None:
        return clean
    return _checked_row_by_row(frame, source=source, ids_unique=ids_unique), None


def _ids_repeat(codes: tuple) -> bool:
    """Whether two rows may share a (book code, ``trade_id`` hash): False proves every
    (book, trade_id) distinct. ``codes[3]`` is the ``trade_id`` column itself, hashed here
    (on the id check's core, beside the ordering)."""
    return len(codes) > 3 and hashes_repeat(codes[0], _hashed_in_slices(codes[3]))


def _checked_row_by_row(frame: pl.DataFrame, *, source: str | None, ids_unique: bool) -> pl.DataFrame:
    """Every row checked and every bad value named (:class:`BadInput`); the trades as
    :func:`validate_trades` returns them when none is bad."""
    qty, qty_bad, qty_reason = _as_decimal(frame, "qty")
    price, price_bad, price_reason = _as_decimal(frame, "price")
    ts, ts_bad = _as_utc(frame)
    parsed = frame.with_columns(
        pl.col("book", "asset", "trade_id").cast(pl.String),
        qty.alias("__qty"),
        price.alias("__price"),
        ts.alias("__ts"),
    )
    problems = [
        *[(c, pl.col(c).is_null(), "is null") for c in REQUIRED],
        ("qty", qty_bad, qty_reason),
        ("qty", pl.col("__qty") == 0, "is zero"),
        ("price", price_bad, price_reason),
        ("price", pl.col("__price") <= 0, "is not positive"),
        ("ts", ts_bad, "is not an ISO 8601 timestamp"),
    ]
    # A hash count finds whether any id repeats; which rows repeat is worked out only then.
    repeated = not ids_unique and parsed.lazy().group_by("book", "trade_id").len().select(
        (pl.col("len") > 1).any()).collect().item()
    if repeated:
        problems.append(("trade_id", ~pl.struct("book", "trade_id").is_first_distinct(), "is a duplicate within book"))
    flags = parsed.select([bad.fill_null(False).alias(f"__bad{i}") for i, (_, bad, _) in enumerate(problems)])
    if flags.select(pl.any_horizontal(pl.all()).any()).item():
        raise BadInput(_row_errors(parsed, flags, problems, source))
    return parsed.with_columns(qty=pl.col("__qty"), price=pl.col("__price"), ts=pl.col("__ts")).drop(
        "__qty", "__price", "__ts"
    )


def _clean_as_given(frame: pl.DataFrame, ids_unique: bool, ids_later: bool = False) -> tuple[pl.DataFrame, tuple] | None:
    """``frame`` normalised, when its columns already have exact types and a few whole-column
    checks find nothing wrong, with the book and asset codes and times that put it in
    application order (:func:`utl.ordering.group_time_order`); None sends it through the
    row-by-row checks (which parse text and name every bad value). Only ever a shortcut: it
    accepts nothing they refuse.

    The codes are book, asset, time and the ``trade_id`` column itself: duplicate ids are
    ruled out later (:func:`_ids_repeat`, beside the ordering) on the book's code and a
    64-bit hash of the ``trade_id``, made a slice at a time: no repeated pair proves every
    (book, trade_id) distinct; a repeat (a real duplicate, or a collision) leaves the verdict
    to the exact check.
    """
    schema = frame.schema
    decimal_given = all(isinstance(schema[c], pl.Decimal) and (schema[c].scale or 0) <= SCALE for c in ("qty", "price"))
    text_given = all(schema[c] in (pl.String, pl.Categorical) or isinstance(schema[c], pl.Enum) for c in ("book", "asset", "trade_id"))
    if not (decimal_given and text_given and isinstance(schema["ts"], pl.Datetime)):
        return None
    ts, _ = _as_utc(frame)
    checks = frame.select(
        pl.any_horizontal(pl.col(*REQUIRED).null_count() > 0).alias("nulls"),
        (pl.col("qty") == 0).any().alias("zero"),
        (pl.col("price") <= 0).any().alias("price"),
    ).row(0, named=True)
    if checks["nulls"] or checks["zero"] or checks["price"]:
        return None
    # book, asset, t as arrays numpy owns (Polars' allocator keeps freed pages for up to a
    # second or so, past the kernels' peak); times already in microseconds are read from the
    # input itself.
    # Book and asset codes straight from Polars' string views when every value is short
    # (utl.short_text), one column on each core; else a Categorical cast.
    found = tuple(run_parts(["book", "asset"], lambda c: short_text_codes(frame[c]))) if two_at_once(
        frame.height) else tuple(short_text_codes(frame[c]) for c in ("book", "asset"))
    if any(c is None for c in found):
        found = ()
    codes = frame.select(
        *([] if found else [pl.col(c).cast(pl.Categorical).to_physical().alias(c) for c in ("book", "asset")]),
        *([] if schema["ts"] == UTC_TS else [ts.dt.epoch("us").alias("t")]),
    )
    found += tuple(_numpy(codes[c]) for c in codes.columns)
    del codes
    if schema["ts"] == UTC_TS:
        found += (_numpy(frame["ts"].to_physical()),)
    if not ids_unique:
        found += (frame["trade_id"],)  # hashed a slice at a time by the id check
    if not ids_later and _ids_repeat(found):
        return None
    valid = frame.with_columns(
        pl.col("book", "asset", "trade_id").cast(pl.String), pl.col("qty", "price").cast(DECIMAL), ts.alias("ts")
    )
    return valid, found


_HASH_SLICE = 1 << 18


def _hashed_in_slices(column: pl.Series):
    """``column.hash()`` a slice at a time, each as numpy (Polars' memory, let go once the
    next is made): the id check never holds the whole column's hashes."""
    for at in range(0, column.len(), _HASH_SLICE):
        yield column.slice(at, _HASH_SLICE).hash().to_numpy()


def _numpy(column: pl.Series) -> np.ndarray:
    chunks = column.get_chunks()
    return np.concatenate([c.to_numpy() for c in chunks]) if len(chunks) > 1 else column.to_numpy()


def _row_errors(parsed: pl.DataFrame, flags: pl.DataFrame, problems, source: str | None) -> list[RowError]:
    """Every problem as a :class:`RowError`, in row order (only runs when something is bad)."""
    marked = pl.concat([parsed, flags], how="horizontal").with_row_index("__row", offset=1)
    found = pl.concat(
        [
            marked.filter(pl.col(f"__bad{i}")).select(
                pl.col("__row").cast(pl.Int64),
                pl.lit(column).alias("column"),
                (pl.format("{} {}", pl.lit(reason), pl.col("book")) if column == "trade_id" else pl.lit(reason)).alias("reason"),
                pl.col(column).cast(pl.String).alias("raw"),
                pl.col("trade_id"),
            )
            for i, (column, _, reason) in enumerate(problems)
        ]
    ).sort("__row", maintain_order=True)
    return [RowError(source, r["__row"], r["column"], r["reason"], r["raw"], r["trade_id"]) for r in found.iter_rows(named=True)]


# ---------------------------------------------------------------------------------------
# Scaled integers
# ---------------------------------------------------------------------------------------


def choose_scale(qty: pl.Series, group: pl.Series) -> tuple[int, bool]:
    """The scale quantities become integers at, and whether the compiled int64 kernel can run.

    No lot or position of a group can exceed the group's total traded quantity, so the
    largest scale at which every group's total fits int64 is safe; it is used if every
    quantity is a whole number of units at it. Otherwise the kernels run on Python integers
    at scale 18, which hold anything a Decimal(38, 18) does.
    """
    try:
        largest = (
            pl.DataFrame({"g": group, "q": qty}).lazy().group_by("g").agg(pl.col("q").abs().sum())
            .select(pl.col("q").max()).collect().item()
        )
    except pl.exceptions.ComputeError:  # the total itself overflowed Decimal(38, 18)
        return SCALE, False
    if largest is None:
        return SCALE, True
    scale = SCALE
    while scale > 0 and largest.scaleb(scale, _WIDE) > INT64_MAX:
        scale -= 1
    if largest.scaleb(scale, _WIDE) > INT64_MAX:
        return SCALE, False
    raw = qty.to_physical()  # the integer at 18 digits after the point
    exact = (raw % pl.Series([10 ** (SCALE - scale)], dtype=pl.Int128) == 0).all()
    return (scale, True) if exact else (SCALE, False)


def _scaled(values: pl.Series, scale: int, fits: bool) -> np.ndarray:
    if fits:
        return (values * pl.Series([Decimal(10) ** scale], dtype=pl.Decimal(38, 0))).cast(pl.Int64).to_numpy()
    return np.array([int(v.scaleb(scale, _WIDE)) for v in values.to_list()], dtype=object)


def _unscaled(values: np.ndarray, scale: int) -> pl.Series:
    if values.dtype == object:
        return pl.Series([Decimal(int(v)).scaleb(-scale, _WIDE) for v in values], dtype=DECIMAL)
    return pl.Series(values, dtype=pl.Int64).cast(DECIMAL) * pl.Series([Decimal(1).scaleb(-scale)], dtype=DECIMAL)


@dataclass(frozen=True)
class _OpenLots:
    lot: np.ndarray  # application-order index of the trade that opened each lot or pool
    qty: pl.Series
    entry_price: pl.Series


def _describe_lots(valid: pl.DataFrame, order: np.ndarray, lots: _OpenLots, *, pooled: bool, sort: bool = True) -> pl.DataFrame:
    rows = order[lots.lot]
    described = pl.DataFrame(
        {
            "book": valid["book"].gather(rows),
            "asset": valid["asset"].gather(rows),
            "trade_id": pl.Series([None] * len(rows), dtype=pl.String) if pooled else valid["trade_id"].gather(rows),
            "opened_ts": valid["ts"].gather(rows),
            "qty": lots.qty,
            "entry_price": lots.entry_price,
        }
    )
    return described.sort("book", "asset", maintain_order=True) if sort else described


def _positions(valid: pl.DataFrame, rows: np.ndarray, totals: pl.DataFrame, open_lots: pl.DataFrame, averages: pl.DataFrame,
               keys: tuple[str, ...] = ("book", "asset")) -> pl.DataFrame:
    """One row per (book, asset): end quantity, open cost, average, realized PnL. ``keys``
    name the columns that tell positions apart in ``totals``, ``open_lots`` and ``averages``
    (an integer group number is quicker to group by than text)."""
    keys = list(keys)
    basis = open_lots.lazy().group_by(keys).agg((pl.col("qty") * pl.col("entry_price")).sum().alias("cost_basis"))
    return (
        pl.DataFrame({"book": valid["book"].gather(rows), "asset": valid["asset"].gather(rows)})
        .with_columns(totals.drop([k for k in ("book", "asset") if k in totals.columns]))
        .lazy()
        .join(basis, on=keys, how="left")
        .join(averages.lazy(), on=keys, how="left")
        .select(
            "book",
            "asset",
            pl.col("qty").cast(DECIMAL),
            pl.col("cost_basis").fill_null(pl.lit(0, DECIMAL)).cast(DECIMAL),
            pl.col("avg_price").cast(DECIMAL),
            pl.col("realized_pnl").cast(DECIMAL),
        )
        .sort("book", "asset")
        .collect()
    )


def choose_price_scale(price: pl.Series) -> int | None:
    """The largest scale at which every price is a whole int64 with room to subtract two of
    them (below 2**62), or None when there is none."""
    largest = price.max()
    if largest is None:
        return SCALE
    scale = SCALE
    while scale > 0 and largest.scaleb(scale, _WIDE) >= 2**62:
        scale -= 1
    if largest.scaleb(scale, _WIDE) >= 2**62:
        return None
    exact = (price.to_physical() % pl.Series([10 ** (SCALE - scale)], dtype=pl.Int128) == 0).all()
    return scale if exact else None


def _price_in_polars(ordered: pl.DataFrame, m_close, m_lot, m_qty, scale: int) -> tuple[pl.Series, pl.Series]:
    """Price every match in Decimal and sum per trade: the path for numbers past int64."""
    price = ordered["price"]
    matches = pl.DataFrame(
        {
            "close": m_close,
            "closed": _unscaled(m_qty, scale),
            "exit_price": price.gather(m_close),
            "entry_price": price.gather(m_lot),
            "long": ordered["qty"].gather(m_lot) > 0,
        }
    ).select(
        "close",
        "closed",
        pl.when("long")
        .then(pl.col("closed") * (pl.col("exit_price") - pl.col("entry_price")))
        .otherwise(pl.col("closed") * (pl.col("entry_price") - pl.col("exit_price")))
        .alias("realized"),
    )
    n = ordered.height
    return _sum_per_trade(matches["realized"], m_close, n), _sum_per_trade(matches["closed"], m_close, n)


def _sum_per_trade(values: pl.Series, close: np.ndarray, n: int) -> pl.Series:
    """Sum match values per closing trade; zero for trades that closed nothing.

    The kernel emits matches in trade order, so each trade's matches are one run: a run's
    sum is the difference of a running total at its ends, with no hashing. Should that
    running total pass Decimal(38, 18)'s range (Polars raises), a group-by sums instead.
    """
    zeros = pl.Series([Decimal(0)], dtype=DECIMAL).extend_constant(Decimal(0), n - 1) if n else pl.Series([], dtype=DECIMAL)
    if len(close) == 0:
        return zeros
    first = np.flatnonzero(np.r_[True, close[1:] != close[:-1]])
    last = np.r_[first[1:] - 1, len(close) - 1]
    try:
        running = values.cum_sum()
    except pl.exceptions.ComputeError:
        sums = pl.DataFrame({"close": close, "v": values}).lazy().group_by("close", maintain_order=True).agg(pl.col("v").sum()).collect()
        return zeros.scatter(sums["close"], sums["v"].cast(DECIMAL))
    before = running.shift(1, fill_value=Decimal(0))
    return zeros.scatter(close[first], (running.gather(last) - before.gather(first)).cast(DECIMAL))


def _exact_averages(open_lots: pl.DataFrame, keys: tuple[str, ...] = ("book", "asset")) -> pl.DataFrame:
    """``avg_price`` per open position (told apart by ``keys``), divided out of the
    unrounded lot products and rounded half-even at 18 digits.

    Where every lot's ``qty * entry_price`` fits 18 places (the usual case: venue quantities
    and prices rarely need more than 18 digits between them), the products are exact in
    Decimal(38, 18), and so is their sum; one Decimal division rounds half-even. A
    position holding a lot whose product needs more places sums in Python's decimal, for
    those positions only.
    """
    keys = list(keys)
    schema = {**{k: open_lots.schema[k] for k in keys}, "avg_price": DECIMAL}
    if open_lots.height == 0:
        return pl.DataFrame(schema=schema)
    half = pl.Series([10 ** (SCALE - SCALE // 2)], dtype=pl.Int128)
    if ((open_lots["qty"].to_physical() % half == 0) & (open_lots["entry_price"].to_physical() % half == 0)).all():
        # Both need at most 9 places: every product fits 18 (one integer pass, no text).
        marked = open_lots.with_columns(exact=pl.lit(True))
    else:
        marked = open_lots.with_columns(
            exact=(count_decimals(pl.col("qty")) + count_decimals(pl.col("entry_price"))) <= SCALE
        )
    sums = (
        marked.lazy()
        .group_by(keys)
        .agg((pl.col("qty") * pl.col("entry_price")).sum().alias("cost"), pl.col("qty").sum(), pl.col("exact").all())
        .collect()
    )
    fast = sums.filter(pl.col("exact")).select(*keys, avg_price=pl.col("cost") / pl.col("qty"))
    slow_keys = sums.filter(~pl.col("exact")).select(keys)
    if slow_keys.height == 0:
        return fast.cast(schema)
    totals: dict[tuple, list[Decimal]] = {}
    slow_lots = marked.join(slow_keys, on=keys, how="semi")
    for *key, q, p in slow_lots.select(*keys, "qty", "entry_price").iter_rows():
        acc = totals.setdefault(tuple(key), [Decimal(0), Decimal(0)])
        acc[0] = _WIDE.add(acc[0], _WIDE.multiply(q, p))
        acc[1] = _WIDE.add(acc[1], q)
    quantum = Decimal(1).scaleb(-SCALE)
    slow = pl.DataFrame(
        [(*key, _WIDE.divide(cost, qty).quantize(quantum, rounding=ROUND_HALF_EVEN, context=_WIDE)) for key, (cost, qty) in totals.items()],
        schema=schema,
        orient="row",
    )
    return pl.concat([fast.cast(schema), slow])


# ---------------------------------------------------------------------------------------
# FIFO, LIFO, HIFO
# ---------------------------------------------------------------------------------------


def _cost_lots(ordered: pl.DataFrame, scale: int, fits: bool, method: str) -> tuple[pl.Series, pl.Series, _OpenLots]:
    """Match in the kernel, then price every match exactly; per-trade results in
    application order."""
    qty = _scaled(ordered["qty"], scale, fits)
    group = ordered[_GROUP].to_numpy()
    if method == "hifo":
        rank = ordered.select(pl.col("price").rank("dense").cast(pl.Int64)).to_series().to_numpy()
    else:
        rank = np.zeros(len(qty), np.int64)  # only HIFO compares prices
    m_close, m_lot, m_qty, open_trade, open_qty = match_lots(group, qty, rank, method)

    price = ordered["price"]
    priced = None
    if fits:
        price_scale = choose_price_scale(price)
        if price_scale is not None:
            priced = price_matches(m_close, m_lot, m_qty, _scaled(price, price_scale, True),
                                   (ordered["qty"] > 0).to_numpy(), scale, price_scale, len(qty))
    if priced is not None:
        r_int, r_frac, closed_per_trade = priced
        realized_pnl = _join_parts(r_int, r_frac)
        closed_qty = _unscaled(closed_per_trade, scale)
    else:
        realized_pnl, closed_qty = _price_in_polars(ordered, m_close, m_lot, m_qty, scale)

    keep = np.argsort(open_trade, kind="stable")  # opening order
    lots = _OpenLots(open_trade[keep], _unscaled(open_qty[keep], scale), price.gather(open_trade[keep]))
    return realized_pnl, closed_qty, lots


# ---------------------------------------------------------------------------------------
# WAC
# ---------------------------------------------------------------------------------------


def _price_parts(price: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Prices split at the point: integer part and the 18 digits after it, both int64."""
    integer = price.cast(pl.Int64)
    fraction = ((price - integer.cast(DECIMAL)) * pl.Series([Decimal(10) ** SCALE], dtype=pl.Decimal(38, 0))).cast(pl.Int64)
    return integer.to_numpy(), fraction.to_numpy()


def _cost_wac(ordered: pl.DataFrame, scale: int, fits: bool, method: str = "wac") -> tuple[pl.Series, pl.Series, _OpenLots]:
    """The pool average runs in the kernel (128-bit, exact); realized PnL is priced here."""
    n = ordered.height
    group = ordered[_GROUP].to_numpy()
    n_groups = int(np.count_nonzero(group[1:] != group[:-1])) + 1 if n else 0
    outcome = None
    if fits and (n == 0 or ordered["price"].max() < Decimal(INT64_MAX)):
        qty = _scaled(ordered["qty"], scale, True)
        price_int, price_frac = _price_parts(ordered["price"])
        closed = np.zeros(n, np.int64)
        avg_int = np.zeros(n, np.int64)
        avg_frac = np.zeros(n, np.int64)
        pool_start = np.empty(n, np.int64)
        end_pos = np.zeros(n_groups, np.int64)
        end_avg_int = np.zeros(n_groups, np.int64)
        end_avg_frac = np.zeros(n_groups, np.int64)
        end_start = np.empty(n_groups, np.int64)
        if wac_kernel(group, qty, price_int, price_frac, closed, avg_int, avg_frac, pool_start,
                      end_pos, end_avg_int, end_avg_frac, end_start):
            outcome = closed, _join_parts(avg_int, avg_frac), end_pos, _join_parts(end_avg_int, end_avg_frac), end_start
    if outcome is None:  # past int64/128 bits: the same recurrence in Python integers
        qty = _scaled(ordered["qty"], scale, False)
        price18 = [int(p.scaleb(SCALE, _WIDE)) for p in ordered["price"].to_list()]
        closed, avg18, _, end_pos, end_avg18, end_start = wac_exact(group, qty, price18)
        outcome = (
            np.array(closed, dtype=object),
            pl.Series([Decimal(a).scaleb(-SCALE, _WIDE) for a in avg18], dtype=DECIMAL),  # (28 digits without _WIDE)
            np.array(end_pos, dtype=object),
            pl.Series([Decimal(a).scaleb(-SCALE, _WIDE) for a in end_avg18], dtype=DECIMAL),
            np.array(end_start, dtype=np.int64),
        )
    closed, avg_before, end_pos, end_avg, end_start = outcome

    closed_qty = _unscaled(closed, scale)
    realized_pnl = ordered.select(
        pl.when(pl.col("qty") < 0)  # a sell closes a long pool, a buy a short one
        .then(closed_qty * (pl.col("price") - avg_before))
        .otherwise(closed_qty * (avg_before - pl.col("price")))
    ).to_series()
    open_pool = np.asarray(end_pos != 0, dtype=bool)
    lots = _OpenLots(
        end_start[open_pool],
        _unscaled(end_pos, scale).filter(pl.Series(open_pool)),
        end_avg.filter(pl.Series(open_pool)),
    )
    return realized_pnl, closed_qty, lots


def _join_parts(integer: np.ndarray, fraction: np.ndarray) -> pl.Series:
    return pl.Series(integer, dtype=pl.Int64).cast(DECIMAL) + pl.Series(fraction, dtype=pl.Int64).cast(DECIMAL) * pl.Series(
        [Decimal(1).scaleb(-SCALE)], dtype=DECIMAL
    )
