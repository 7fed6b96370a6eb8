"""Average entry of a derivative position, and the PnL a fill realizes against it.

The problem
-----------
Per (venue, account, instrument), the instrument legs in order (``ts``, then input order)
move one signed quantity. Its average entry price is what the venues show:

- a leg that adds to the position (or meets it flat) re-averages: linear instruments weight
  the *price* by quantity, inverse ones weight *1/price* (the harmonic mean), since an
  inverse contract's value in its settle coin is ``size / price``;
- a leg that reduces it keeps the average and realizes PnL on the quantity it closed:
  linear ``closed · size · (exit − entry)``, inverse ``closed · size · (1/entry − 1/exit)``,
  signed by the side closed, in the settle asset (kind ``realized_pnl_computed``);
- a leg that goes through zero realizes on the whole position and restarts the average at
  its own price for what is left (a flip).

Options are priced in their premium (Deribit quotes BTC options in BTC): their average and
PnL follow the linear rule on the premium, whatever coin they settle in.

Worked example (linear, size 1): ``+1 @ 100``, ``+1 @ 200`` → entry 150; ``−1 @ 300``
realizes 1 · (300 − 150) = 150 and keeps 150; ``+1 @ 300`` → (1·150 + 1·300)/2 = 225.
Inverse, size 1 USD: ``+10000 @ 65000``, ``+10000 @ 70000`` → entry
20000 / (10000/65000 + 10000/70000) = 67407.407407…; see the tests for more.

Rounding
--------
Everything is exact integer arithmetic on values scaled by 10^18 (Python integers, which
never overflow, or range-checked 128-bit words); each result is one exact rational rounded
half-even to 18 places after the point, as the costing contract does for ``wac``: the
average after each re-averaging (then carried, so the next one starts from the rounded
average), and each leg's realized PnL (computed from the exact rational, then rounded once). A position is never rounded: it is
the exact sum of its legs (Polars, vectorized).

The walk is sequential (each average depends on the one before). Polars orders the legs
once (by a dense rank of the key, then time, then input order), and one compiled pass walks
them (:func:`_walk_compiled`, numba, ``cache=True``): quantities as ``int64`` at their own
scale, prices and averages as 128-bit words, with the costing kernels' exact arithmetic
(:mod:`utl.lots`) for linear instruments and options; an inverse instrument's harmonic
re-average multiplies three 128-bit numbers and its PnL divides by a product of two prices,
so those legs compute in wide integers of 32-bit limbs (:mod:`utl.limbs`, up to 384 bits).
A value out of any of these ranges sends the whole walk to Python's exact integers
(:func:`_walk_groups`, the same rules inlined), in chunks of whole groups so only a chunk's
legs are ever Python integers. Results go back to decimals as their raw 128-bit integers,
never through text. :func:`_walk` (one leg at a time, with :func:`reaverage` and
:func:`realized`) is the rule as first written; the tests hold the fast paths equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
from numba import njit

from utl.decimals import DECIMAL, PRECISION
from utl.derivatives.schemas import ENTRY_LEGS, ENTRY_STATE, INSTRUMENT_LEGS
from utl.ordering import _dense_pairs, fixed, group_time_order
from utl.limbs import LIMBS, add, divide_half_even, load, multiply, multiply_by, words
from utl.lots import _add128, _ge128, _mul64, _reaverage, _spread_times, _sub128
from utl.scaled import below_1e38, decimal_from_words, decimal_words, int64_to_decimal, signed_words, to_int64

SCALE_DIGITS = 18
SCALE = 10**SCALE_DIGITS
KEY = ["venue", "account", "instrument"]


@dataclass(frozen=True)
class EntryResult:
    legs: pl.DataFrame  # ENTRY_LEGS, in the input's row order
    positions: pl.DataFrame  # ENTRY_STATE: each (venue, account, instrument) at the end


def round_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` (denominator > 0) rounded half-even to an integer."""
    q, r = divmod(numerator, denominator)  # floor division: 0 <= r < denominator
    twice = 2 * r
    if twice > denominator or (twice == denominator and q % 2 == 1):
        q += 1
    return q


def to_scaled(values: pl.Series) -> list[int | None]:
    """Exact decimals as Python integers scaled by 10^18: the Decimal's own integer."""
    return values.cast(DECIMAL).to_physical().to_list()


_ARROW_DECIMAL = pa.decimal128(PRECISION, SCALE_DIGITS)


def from_scaled(values: list[int | None]) -> pl.Series:
    """Python integers scaled by 10^18 back to exact decimals, as the Decimal's own 128-bit
    integers: Polars builds them as ``Int128``, checks each fits 38 digits (``Decimal(38,
    0)``, which raises otherwise), and the same Arrow buffer is read at scale 18."""
    whole = pl.Series(values, dtype=pl.Int128).cast(pl.Decimal(PRECISION, 0)).to_arrow()
    if isinstance(whole, pa.ChunkedArray):
        whole = whole.combine_chunks()
    array = pa.Array.from_buffers(_ARROW_DECIMAL, len(whole), whole.buffers(), null_count=whole.null_count,
                                  offset=whole.offset)
    return pl.Series("", array, dtype=DECIMAL)


def from_scaled_text(values: list[int | None]) -> pl.Series:
    """:func:`from_scaled` through each value's decimal text (the former path, kept as the
    tests' reference)."""
    ints = pl.DataFrame({"n": pl.Series(values, dtype=pl.Int128)})
    digits = pl.col("n").abs().cast(pl.String).str.zfill(SCALE_DIGITS + 1)
    text = pl.concat_str(pl.when(pl.col("n") < 0).then(pl.lit("-")).otherwise(pl.lit("")),
                         digits.str.head(-SCALE_DIGITS), pl.lit("."), digits.str.tail(SCALE_DIGITS))
    return ints.select(text.str.to_decimal(scale=SCALE_DIGITS))[:, 0].cast(DECIMAL)


def reaverage(before: int, entry: int, qty: int, price: int, harmonic: bool) -> int:
    """The average entry after adding ``qty`` at ``price`` to ``before`` at ``entry`` (all of
    one sign, scaled by 10^18), rounded half-even to 18 places."""
    b, q, after = abs(before), abs(qty), abs(before + qty)
    if harmonic:  # after / (b/entry + q/price) = after·entry·price / (b·price + q·entry)
        return round_half_even(after * entry * price, b * price + q * entry)
    return round_half_even(b * entry + q * price, after)  # (b·entry + q·price) / after


def realized(closed: int, long: bool, size: int, entry: int, exit_price: int, harmonic: bool) -> int:
    """PnL of closing ``closed`` (> 0) of a long (or short) position entered at ``entry`` at
    ``exit_price``, in the settle asset, scaled by 10^18 and rounded half-even once."""
    sign = 1 if long else -1
    if harmonic:  # closed·size·(1/entry − 1/exit) = closed·size·(exit − entry) / (entry·exit)
        return round_half_even(sign * closed * size * (exit_price - entry), entry * exit_price)
    return round_half_even(sign * closed * size * (exit_price - entry), SCALE * SCALE)


def _walk(first: list[bool], before: list[int], qty: list[int], price: list[int], size: list[int],
          harmonic: list[bool], opening_entry: list[int | None]) -> tuple[list, list, list]:
    """Entry after each leg, quantity closed and PnL realized (all scaled), leg by leg."""
    n = len(qty)
    entries: list[int | None] = [None] * n
    closed_out = [0] * n
    pnl_out = [0] * n
    entry: int | None = None
    for i in range(n):
        if first[i]:
            entry = opening_entry[i]
        b, q, p = before[i], qty[i], price[i]
        after = b + q
        if b == 0 or (b > 0) == (q > 0):
            entry = p if b == 0 else reaverage(b, entry, q, p, harmonic[i])
        else:
            closed = min(abs(q), abs(b))
            closed_out[i] = closed
            pnl_out[i] = realized(closed, b > 0, size[i], entry, p, harmonic[i])
            if after == 0:
                entry = None
            elif (after > 0) != (b > 0):
                entry = p  # a flip: what is left opened at this leg's price
        entries[i] = entry
    return entries, closed_out, pnl_out


_SCALE2 = SCALE * SCALE
WALK_CHUNK = 1 << 17  # legs a chunk of the walk holds as Python integers (whole groups: more for a larger one)


def _walk_groups(starts: list[int], qty: list[int], price: list[int], size: list[int], harmonic: list[bool],
                 open_qty: list[int], open_entry: list[int | None]) -> tuple[list, list, list, list]:
    """:func:`_walk` over legs ordered by group: group ``g`` is legs ``starts[g]`` up to the
    next start, opening at ``open_qty[g]`` and ``open_entry[g]``. The same rules and the same
    roundings as :func:`reaverage`, :func:`realized` and :func:`round_half_even`, inlined
    (a call per leg is most of the cost). Returns (position after, entry after, closed,
    realized PnL) per leg, all scaled."""
    n = len(qty)
    after_out = [0] * n
    entries: list[int | None] = [None] * n
    closed_out = [0] * n
    pnl_out = [0] * n
    bounds = [*starts, n]
    for g in range(len(starts)):
        b = open_qty[g]
        entry = open_entry[g]
        for i in range(bounds[g], bounds[g + 1]):
            q = qty[i]
            p = price[i]
            after = b + q
            if b == 0:
                entry = p
            elif (b > 0) == (q > 0):  # adds: re-average, rounded half-even
                if harmonic[i]:  # |after|·entry·price / (|b|·price + |q|·entry)
                    num = (after if after > 0 else -after) * entry * p
                    den = (b if b > 0 else -b) * p + (q if q > 0 else -q) * entry
                else:  # (|b|·entry + |q|·price) / |after|
                    num = (b if b > 0 else -b) * entry + (q if q > 0 else -q) * p
                    den = after if after > 0 else -after
                e, r = divmod(num, den)
                if 2 * r > den or (2 * r == den and e & 1):
                    e += 1
                entry = e
            else:  # reduces (or flips): realizes on what it closes
                aq, ab = (q if q > 0 else -q), (b if b > 0 else -b)
                closed = aq if aq < ab else ab
                closed_out[i] = closed
                num = closed * size[i] * (p - entry if b > 0 else entry - p)
                den = entry * p if harmonic[i] else _SCALE2
                v, r = divmod(num, den)
                if 2 * r > den or (2 * r == den and v & 1):
                    v += 1
                pnl_out[i] = v
                if after == 0:
                    entry = None
                elif (after > 0) != (b > 0):
                    entry = p  # a flip: what is left opened at this leg's price
            entries[i] = entry
            after_out[i] = after
            b = after
    return after_out, entries, closed_out, pnl_out



# ---------------------------------------------------------------------------------------
# Linear instruments compiled: quantities as int64 at their own scale, prices and averages
# as 128-bit words at 18 places (the costing kernels' arithmetic, utl.lots). A linear
# re-average is homogeneous in the quantities, so their scale cancels; realized PnL divides
# by 10^(quantity scale + size scale) instead of 10^36. Anything out of range (a price or
# entry not positive, a quantity past 2^62, a product past 128 bits) returns False and the
# whole walk takes the exact Python path. Inverse instruments always do (their re-average
# multiplies three 128-bit numbers).
# ---------------------------------------------------------------------------------------

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_HALF64 = np.uint64(2**63)
_LIMIT62 = 1 << 62


@njit(cache=True, nogil=True)
def _harmonic_entry(eh, el, ph, pl_, after, b, q, x, y, t, num, den, quo, r, un, vn):
    """An inverse position's entry after adding ``q`` to ``b`` (``after`` = their sum, all
    int64 at one scale, which cancels): ``|after| · entry · price / (|b| · price + |q| ·
    entry)`` rounded half-even, as :func:`reaverage`; (fits, high, low)."""
    load(x, eh, el)
    load(y, ph, pl_)
    if not multiply_by(x, np.uint64(after if after > 0 else -after), t, num):
        return False, eh, el
    if not multiply(num, y, t):  # t = |after| · entry · price
        return False, eh, el
    if not multiply_by(y, np.uint64(b if b > 0 else -b), num, den):  # den = |b| · price
        return False, eh, el
    if not multiply_by(x, np.uint64(q if q > 0 else -q), num, y):  # y = |q| · entry
        return False, eh, el
    if not add(den, y, den):
        return False, eh, el
    if not divide_half_even(t, den, quo, r, un, vn):
        return False, eh, el
    fits, h, l = words(quo)
    if not fits or not below_1e38(h, l):
        return False, eh, el
    return True, h, l


@njit(cache=True, nogil=True)
def _harmonic_pnl(ph, pl_, eh, el, closed_size, up_qty, up_size, x, y, t, num, den, quo, r, un, vn):
    """What closing ``closed · size`` (``closed_size``, at the quantities' and sizes' scales,
    brought to 18 places each by ``up_qty`` and ``up_size``) of an inverse position entered
    at ``e`` realizes at price ``p``: ``closed · size · |p - e| / (e · p)`` rounded half-even,
    as :func:`realized`; (fits, p >= e, high, low), the sign left to the caller."""
    rising = _ge128(ph, pl_, eh, el)
    if rising:
        dh, dl = _sub128(ph, pl_, eh, el)
    else:
        dh, dl = _sub128(eh, el, ph, pl_)
    load(x, dh, dl)
    if not multiply_by(x, closed_size, t, num):
        return False, rising, _ZERO, _ZERO
    if not multiply_by(num, up_qty, t, x):
        return False, rising, _ZERO, _ZERO
    if not multiply_by(x, up_size, t, num):  # num = closed · size · |p - e|, all at 18 places
        return False, rising, _ZERO, _ZERO
    load(x, eh, el)
    load(y, ph, pl_)
    if not multiply(x, y, den):
        return False, rising, _ZERO, _ZERO
    if not divide_half_even(num, den, quo, r, un, vn):
        return False, rising, _ZERO, _ZERO
    fits, h, l = words(quo)
    return fits, rising, h, l


@njit(cache=True, nogil=True)
def _walk_compiled(first, harmonic, qty, price, size, open_qty, open_entry, open_valid, pow10, up_qty, up_size,
                   out_after, out_entry, out_valid, out_closed, out_pnl):
    """The walk of every leg (legs ordered by group, ``first`` marking each group's first
    leg); ``qty``/``open_qty``/``out_after``/``out_closed`` int64 at one
    scale, ``size`` int64 at another, ``pow10`` = 10^(both scales), ``up_qty`` and
    ``up_size`` = 10^(18 - each); words are (low, high). Legs marked ``harmonic`` (inverse
    instruments) re-average and realize by :func:`_harmonic_entry` and
    :func:`_harmonic_pnl`, in wide integers."""
    x = np.zeros(LIMBS, np.uint64)
    y = np.zeros(LIMBS, np.uint64)
    t = np.zeros(LIMBS, np.uint64)
    num = np.zeros(LIMBS, np.uint64)
    den = np.zeros(LIMBS, np.uint64)
    q_ = np.zeros(LIMBS, np.uint64)
    r = np.zeros(LIMBS, np.uint64)
    vn = np.zeros(LIMBS, np.uint64)
    un = np.zeros(LIMBS + 1, np.uint64)
    g = -1
    b = np.int64(0)
    eh = _ZERO
    el = _ZERO
    has = False
    for i in range(qty.shape[0]):
        if first[i]:
            g += 1
            b = open_qty[g]
            has = open_valid[g]
            el = open_entry[g, 0]
            eh = open_entry[g, 1]
            if has and (eh >= _HALF64 or (eh == _ZERO and el == _ZERO)):
                return False
        q = qty[i]
        pl_ = price[i, 0]
        ph = price[i, 1]
        if ph >= _HALF64 or (ph == _ZERO and pl_ == _ZERO):
            return False
        if q >= _LIMIT62 or q <= -_LIMIT62 or b >= _LIMIT62 or b <= -_LIMIT62:
            return False
        after = b + q
        if b == 0:
            eh = ph
            el = pl_
            has = True
        elif (b > 0) == (q > 0):
            if harmonic[i]:
                fits, eh, el = _harmonic_entry(eh, el, ph, pl_, after, b, q, x, y, t, num, den, q_, r, un, vn)
            else:
                fits, eh, el = _reaverage(eh, el, ph, pl_, q, b)
            if not fits:
                return False
        else:
            aq = -q if q < 0 else q
            ab = -b if b < 0 else b
            closed = aq if aq < ab else ab
            out_closed[i] = closed
            s = size[i]
            if s < 0:
                return False
            mh, ml = _mul64(np.uint64(closed), np.uint64(s))
            if mh != _ZERO:
                return False
            if harmonic[i]:
                fits, rising, vh, vl = _harmonic_pnl(ph, pl_, eh, el, ml, up_qty, up_size, x, y, t, num, den, q_, r, un, vn)
                if not fits:
                    return False
            else:
                fits, rising, vh, vl, rem = _spread_times(ph, pl_, eh, el, ml, pow10)
                if not fits:
                    return False
                twice = rem << _ONE
                if twice > pow10 or (twice == pow10 and (vl & _ONE) == _ONE):
                    vh, vl, ovf = _add128(vh, vl, _ZERO, _ONE)
                    if ovf:
                        return False
            if not below_1e38(vh, vl):
                return False
            # A long gains when the price rose, a short when it fell.
            out_pnl[i, 0], out_pnl[i, 1] = signed_words(vh, vl, rising != (b > 0))
            if after == 0:
                has = False
            elif (after > 0) != (b > 0):
                eh = ph
                el = pl_
                has = True
        out_after[i] = after
        out_valid[i] = has
        if has:
            out_entry[i, 0] = el
            out_entry[i, 1] = eh
        b = after
    return True


def _compiled_walk(ordered: pl.DataFrame, groups: pl.DataFrame, first: np.ndarray, harmonic: np.ndarray):
    """The compiled walk of every leg: (position after, entry, entry present, closed,
    realized PnL), quantities as words, or None when the exact Python path must walk them
    (a null, or a number out of the kernel's ranges)."""
    if any(ordered[c].null_count() for c in ("qty", "price", "contract_size")):
        return None
    n = len(first)
    # The legs' and the groups' opening quantities at one scale (chunks of one conversion).
    quantities = to_int64([decimal_words(ordered["qty"]), decimal_words(groups["qty"])])
    sizes = to_int64(decimal_words(ordered["contract_size"]))
    if quantities is None or sizes is None or quantities[0] + sizes[0] > 18:
        return None
    qty, open_qty = quantities[1][:n], quantities[1][n:]
    open_valid = groups["entry_price"].is_not_null().to_numpy()
    open_entry = decimal_words(groups["entry_price"]).copy()
    open_entry[~open_valid] = 0
    after, closed = np.zeros(n, np.int64), np.zeros(n, np.int64)
    entry, pnl = np.zeros((n, 2), np.uint64), np.zeros((n, 2), np.uint64)
    valid = np.zeros(n, np.bool_)
    ok = _walk_compiled(first, np.ascontiguousarray(harmonic, np.bool_), qty, decimal_words(ordered["price"]),
                        sizes[1], open_qty, open_entry, open_valid, np.uint64(10 ** (quantities[0] + sizes[0])),
                        np.uint64(10 ** (18 - quantities[0])), np.uint64(10 ** (18 - sizes[0])),
                        after, entry, valid, closed, pnl)
    if not ok:
        return None
    scale = quantities[0]
    return (decimal_words(int64_to_decimal(after, scale)), entry, valid,
            decimal_words(int64_to_decimal(closed, scale)), pnl)


def _words_series(words: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """Decimals from (low, high) words, null where ``valid`` is False."""
    series = decimal_from_words(words)
    return series if valid is None or valid.all() else pl.select(
        pl.when(pl.Series(valid)).then(series))[:, 0].cast(DECIMAL).rename("")


_WALKED = ("qty", "price", "contract_size", "__harmonic")


def _in_walk_order(legs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What the walk reads of ``legs`` (``__group``, ``ts``, ``__row``: the input row, and
    :data:`_WALKED`), in the walk's order: by (venue, account, instrument), then time, then
    input order; and each group's key, group ``g`` in row ``g``.

    The order is the costing's (:func:`utl.ordering.group_time_order`: the key's parts as
    categorical codes, a counting pass into groups, each group's times sorted in the CPU
    cache), groups numbered as they first appear. A Polars dense rank of the key and a sort
    by (rank, time, row) gave the same walk at several times the cost (3 M legs: ~2.2 s of
    ~4.6). A null key or time goes the Polars way, which orders nulls as it always did."""
    walked = legs.select(*KEY, "ts", "qty", "price", "contract_size",
                         __harmonic=pl.col("inverse").fill_null(False) & (pl.col("type") != "option"))
    if walked.height == 0 or walked.select(pl.any_horizontal(pl.col(*KEY, "ts").null_count() > 0)).item():
        base = walked.lazy().with_row_index("__row").with_columns(__group=pl.struct(KEY).rank("dense"))
        ordered, keys = pl.collect_all([
            base.select("__group", "ts", "__row", *_WALKED).sort(["__group", "ts", "__row"]),
            base.select(*KEY, "__group").unique("__group").sort("__group").select(KEY),
        ])
        return ordered, keys
    codes = walked.select(pl.col(*KEY).cast(pl.Categorical).to_physical(), pl.col("ts").dt.epoch("us"))
    first, second, instrument, ts = (codes[c].to_numpy() for c in (*KEY, "ts"))
    width = int(second.max()) + 1
    slots = (int(first.max()) + 1) * width
    direct = np.full(slots, -1, np.int64) if slots <= 1 << 20 else np.empty(0, np.int64)
    account, _ = _dense_pairs(fixed(first, np.uint32), fixed(second, np.uint32), direct, np.int64(width),
                              np.empty(len(first), np.uint32))
    order, group = group_time_order(account, instrument, ts)
    order = order.astype(np.int64)
    starts = np.flatnonzero(np.diff(group, prepend=-1))
    # Made whole first: a gather from a frame of many chunks (the day's legs come in ~30)
    # costs twice as much as the copy and a gather from one (3 M legs: ~0.5 s against ~0.2).
    ordered = walked.select("ts", *_WALKED).rechunk()[order].with_columns(
        __group=pl.Series(group, dtype=pl.Int64), __row=pl.Series(order, dtype=pl.UInt32))
    return ordered.select("__group", "ts", "__row", *_WALKED), walked.select(KEY)[order[starts]]


def _python_walk(ordered: pl.DataFrame, groups: pl.DataFrame, starts: np.ndarray, bounds: np.ndarray):
    """:func:`_walk_groups` over every group, in chunks of whole groups of about
    :data:`WALK_CHUNK` legs (only a chunk's legs are ever Python integers at once): the four
    results as words, and where an entry is present."""
    n = int(bounds[-1])
    words = tuple(np.zeros((n, 2), np.uint64) for _ in range(4))
    valid = np.zeros(n, np.bool_)
    open_qty, open_entry = to_scaled(groups["qty"]), to_scaled(groups["entry_price"])
    g0 = 0
    while g0 < len(starts):
        g1 = g0 + 1  # consecutive groups, up to about WALK_CHUNK legs
        while g1 < len(starts) and bounds[g1 + 1] - bounds[g0] <= WALK_CHUNK:
            g1 += 1
        lo, hi = int(bounds[g0]), int(bounds[g1])
        part = ordered.slice(lo, hi - lo)
        walked = _walk_groups(
            (starts[g0:g1] - lo).tolist(), to_scaled(part["qty"]), to_scaled(part["price"]),
            to_scaled(part["contract_size"]), part["__harmonic"].to_list(), open_qty[g0:g1], open_entry[g0:g1])
        for out, values in zip(words, walked):
            out[lo:hi] = decimal_words(from_scaled(values))
        valid[lo:hi] = [e is not None for e in walked[1]]
        g0 = g1
    return words, valid


def average_entry(legs: pl.DataFrame, opening: pl.DataFrame | None = None) -> EntryResult:
    """Walk ``legs`` (INSTRUMENT_LEGS plus each instrument's ``type``, ``inverse`` and
    ``contract_size``, e.g. from :func:`utl.derivatives.instruments.resolve_specs`) from
    ``opening`` (ENTRY_STATE: the carried position and entry, or the first snapshot's)."""
    opening = ENTRY_STATE.to_frame() if opening is None else opening.select(ENTRY_STATE.names()).cast(ENTRY_STATE)
    unknown = legs.filter(pl.col("contract_size").is_null() | pl.col("type").is_null())
    if unknown.height:
        names = ", ".join(sorted(set(f"{v}/{a} {i}" for v, a, i in unknown.select(KEY).iter_rows())))
        raise ValueError(f"legs of instruments without a spec (contract size, type): {names}")
    inconsistent = opening.filter((pl.col("qty") != 0) & pl.col("entry_price").is_null())
    if inconsistent.height:
        v, a, i = inconsistent.select(KEY).row(0)
        raise ValueError(f"{v}/{a} {i}: an open position without an entry price cannot be carried")
    ordered, keys = _in_walk_order(legs)
    n = ordered.height
    rank = ordered["__group"].to_numpy().astype(np.int64)
    starts = np.flatnonzero(np.diff(rank, prepend=-1))  # group g (keys row g) is legs starts[g] ..
    bounds = np.append(starts, n)
    groups = keys.join(opening, on=KEY, how="left", maintain_order="left").with_columns(
        pl.col("qty").fill_null(pl.lit(0, DECIMAL)))
    first = np.zeros(n, np.bool_)
    first[starts] = True
    harmonic = ordered["__harmonic"].to_numpy()
    fast = _compiled_walk(ordered, groups, first, harmonic) if n else None
    if fast is not None:
        words, valid = fast[:2] + fast[3:], fast[2]
    else:
        words, valid = _python_walk(ordered, groups, starts, bounds)
    words[1][~valid] = 0
    effects = pl.DataFrame({
        "position_after": _words_series(words[0]), "entry_price": _words_series(words[1], valid),
        "closed_qty": _words_series(words[2]), "realized_pnl_computed": _words_series(words[3]),
    })
    ends = bounds[1:] - 1
    last = keys.with_columns(qty=effects["position_after"].gather(ends),
                             entry_price=effects["entry_price"].gather(ends))
    # Back to the input's row order: row r of the input is leg back[r] of the walk.
    back = np.empty(n, dtype=np.int64)
    back[ordered["__row"].to_numpy()] = np.arange(n, dtype=np.int64)
    effects = effects.select(pl.all().gather(back))
    out_legs = pl.concat([legs.select(INSTRUMENT_LEGS.names()), effects], how="horizontal").cast(ENTRY_LEGS)
    untouched = opening.join(last, on=KEY, how="anti")
    positions = pl.concat([last.cast(ENTRY_STATE), untouched]).sort(KEY)
    return EntryResult(out_legs, positions)
