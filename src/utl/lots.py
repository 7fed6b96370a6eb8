"""Which lot closes first: the sequential heart of unit costing.

The problem
-----------
A (book, asset) position is a set of open lots of one sign. A trade of the same sign (or one
meeting a flat position) opens a lot; a trade of the opposite sign closes lots one at a time
in the method's order until it is used up or the position is flat, and what is left opens a
lot of its own sign (a flip). FIFO closes the oldest lot, LIFO the newest, HIFO the lot with
the least gain (highest entry price when long, lowest when short; ties to the oldest). All
three are one routine here: only the choice of the next lot differs.

Matching only *moves quantities*: it adds, subtracts and compares. So the kernel works on
quantities as scaled integers. :func:`match_and_realize` prices each match as it is made
(128-bit products of scaled integers) and writes per-trade results as Decimal words; the
older :func:`match_lots` emits ``(closing trade, lot, quantity)`` matches for the wide path,
where Polars prices them in ``Decimal`` (:mod:`utl.costing`). HIFO needs to compare prices,
never to compute with them, so it gets each trade's price *rank* (or the scaled price).

Worked example (FIFO, quantities scaled by 10): trades ``t0 +10``, ``t1 +20``, ``t2 -15``.
``t2`` closes 10 of ``t0`` and 5 of ``t1``: matches ``(2, 0, 10)``, ``(2, 1, 5)``; the lot
``t1`` stays open with 15. Under LIFO the single match is ``(2, 1, 15)``.

WAC is different: the pool's average entry price changes every time the position grows, so
the kernel must carry the average itself. It does so exactly, as an integer at 18 digits
after the point, in 128-bit arithmetic built from 64-bit halves (numba has no 128-bit
integer), rounding half-even after each re-averaging as the contract allows.

Both kernels are compiled with numba over ``int64``. When the numbers do not fit (a
quantity that is huge at the data's scale, an average or product past 128 bits) the same
matching kernel runs as plain Python over Python integers, which never overflow, and WAC
has a plain-Python twin; :mod:`utl.costing` chooses, and both paths are tested.
"""

from __future__ import annotations

import os
import threading

import numpy as np
from numba import njit

from utl.heap import give_back_freed
from utl.ordering import take
from utl.scaled import _divmod_1e9, below_1e38, divmod_pow10, signed_words, to_int64, to_int64_at_nine

FIFO, LIFO, HIFO = 0, 1, 2
METHOD_CODES = {"fifo": FIFO, "lifo": LIFO, "hifo": HIFO}


# ---------------------------------------------------------------------------------------
# FIFO / LIFO / HIFO
# ---------------------------------------------------------------------------------------


def _match(group, qty, rank, method, m_close, m_lot, m_qty, open_trade, open_qty, lot_trade, lot_qty, heap):
    """Match closing trades against open lots, trade by trade, group by group.

    ``group`` (sorted, contiguous), ``qty`` (signed, scaled) and ``rank`` describe the
    trades in application order. Fills ``m_close``/``m_lot``/``m_qty`` (trade indices and the
    positive quantity closed) and ``open_trade``/``open_qty`` (the lots open at the end of
    each group). ``lot_trade``, ``lot_qty`` and ``heap`` are scratch space of the trades'
    length. Returns ``(n_matches, n_open)``.

    HIFO keeps lot slots in a binary heap ordered by (entry price rank, best first for the
    position's side; then slot, i.e. the oldest). The heap steps are written out inline:
    one self-contained function is what lets numba cache it and Python run it unchanged.
    """
    n = qty.shape[0]
    k = 0
    n_open = 0
    start = 0
    while start < n:
        end = start
        while end < n and group[end] == group[start]:
            end += 1
        head = 0  # FIFO closes from head, LIFO from tail - 1, HIFO from the heap's top
        tail = 0
        size = 0
        lot_sign = 0
        for i in range(start, end):
            q = qty[i]
            sign = 1 if q > 0 else -1
            live = (tail - head) if method != HIFO else size
            if live > 0 and sign != lot_sign:
                remaining = -q if q < 0 else q
                while remaining > 0 and live > 0:
                    if method == FIFO:
                        s = head
                    elif method == LIFO:
                        s = tail - 1
                    else:
                        s = heap[0]
                    held = lot_qty[s] if lot_qty[s] > 0 else -lot_qty[s]
                    take = held if held < remaining else remaining
                    m_close[k] = i
                    m_lot[k] = lot_trade[s]
                    m_qty[k] = take
                    k += 1
                    remaining -= take
                    if take == held:
                        if method == FIFO:
                            head += 1
                        elif method == LIFO:
                            tail -= 1
                        else:
                            # Pop the heap's top: move the last slot up, sift it down.
                            size -= 1
                            heap[0] = heap[size]
                            j = 0
                            while True:
                                best = j
                                for child in (2 * j + 1, 2 * j + 2):
                                    if child < size:
                                        rc = rank[lot_trade[heap[child]]]
                                        rb = rank[lot_trade[heap[best]]]
                                        if rc != rb:
                                            first = rc > rb if lot_sign > 0 else rc < rb
                                        else:
                                            first = heap[child] < heap[best]
                                        if first:
                                            best = child
                                if best == j:
                                    break
                                heap[j], heap[best] = heap[best], heap[j]
                                j = best
                        live -= 1
                    else:
                        lot_qty[s] -= take * lot_sign
                if remaining > 0:
                    # The trade flips the position: its rest opens a lot of its own sign.
                    lot_trade[0] = i
                    lot_qty[0] = remaining * sign
                    head = 0
                    tail = 1
                    lot_sign = sign
                    if method == HIFO:
                        heap[0] = 0
                        size = 1
            else:
                if live == 0:
                    head = 0
                    tail = 0
                lot_trade[tail] = i
                lot_qty[tail] = q
                lot_sign = sign
                if method == HIFO:
                    # Push the new slot and sift it up. Long: highest entry price first;
                    # short: lowest; equal prices: the older (smaller) slot first.
                    j = size
                    heap[j] = tail
                    size += 1
                    while j > 0:
                        parent = (j - 1) // 2
                        rj = rank[lot_trade[heap[j]]]
                        rp = rank[lot_trade[heap[parent]]]
                        if rj != rp:
                            first = rj > rp if lot_sign > 0 else rj < rp
                        else:
                            first = heap[j] < heap[parent]
                        if not first:
                            break
                        heap[j], heap[parent] = heap[parent], heap[j]
                        j = parent
                tail += 1
        if method == HIFO:
            for j in range(size):
                open_trade[n_open] = lot_trade[heap[j]]
                open_qty[n_open] = lot_qty[heap[j]]
                n_open += 1
        else:
            for s in range(head, tail):
                open_trade[n_open] = lot_trade[s]
                open_qty[n_open] = lot_qty[s]
                n_open += 1
        start = end
    return k, n_open


_match_compiled = njit(cache=True)(_match)
_match_python = _match


def match_lots(group: np.ndarray, qty: np.ndarray, rank: np.ndarray, method: str):
    """Run the matching kernel: compiled for ``int64`` quantities, in Python integers (which
    never overflow) for ``object`` ones. Returns ``(m_close, m_lot, m_qty, open_trade,
    open_qty)``; open lots are grouped by (book, asset) group, not otherwise ordered."""
    n = qty.shape[0]
    exact = qty.dtype == object
    qdtype = object if exact else np.int64
    m_close = np.empty(2 * n, np.int64)
    m_lot = np.empty(2 * n, np.int64)
    m_qty = np.zeros(2 * n, qdtype)
    open_trade = np.empty(n, np.int64)
    open_qty = np.zeros(n, qdtype)
    lot_trade = np.empty(n, np.int64)
    lot_qty = np.zeros(n, qdtype)
    heap = np.empty(n, np.int64)
    kernel = _match_python if exact else _match_compiled
    k, n_open = kernel(group, qty, rank, METHOD_CODES[method], m_close, m_lot, m_qty,
                       open_trade, open_qty, lot_trade, lot_qty, heap)
    return m_close[:k], m_lot[:k], m_qty[:k], open_trade[:n_open], open_qty[:n_open]


# ---------------------------------------------------------------------------------------
# 128-bit unsigned arithmetic on (hi, lo) pairs of uint64, for the WAC average
# ---------------------------------------------------------------------------------------

_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ONE = np.uint64(1)
_ZERO = np.uint64(0)


@njit(cache=True, nogil=True)
def _mul64(a, b):
    """Full 128-bit product of two uint64."""
    a_lo = a & _M32
    a_hi = a >> _S32
    b_lo = b & _M32
    b_hi = b >> _S32
    ll = a_lo * b_lo
    lh = a_lo * b_hi
    hl = a_hi * b_lo
    hh = a_hi * b_hi
    mid = (ll >> _S32) + (lh & _M32) + (hl & _M32)
    lo = (ll & _M32) | ((mid & _M32) << _S32)
    hi = hh + (lh >> _S32) + (hl >> _S32) + (mid >> _S32)
    return hi, lo


@njit(cache=True, nogil=True)
def _add128(ah, al, bh, bl):
    lo = al + bl
    carry = _ONE if lo < al else _ZERO
    hi = ah + bh + carry
    overflow = hi < ah or (carry == _ONE and hi == ah)
    return hi, lo, overflow


@njit(cache=True, nogil=True)
def _sub128(ah, al, bh, bl):
    """a - b for a >= b."""
    lo = al - bl
    borrow = _ONE if al < bl else _ZERO
    return ah - bh - borrow, lo


@njit(cache=True, nogil=True)
def _ge128(ah, al, bh, bl):
    return ah > bh or (ah == bh and al >= bl)


@njit(cache=True, nogil=True)
def _mul128_64(h, l, m):
    """(h, l) * m as three 64-bit limbs, high first: never overflows."""
    a1, a0 = _mul64(l, m)
    b1, b0 = _mul64(h, m)
    mid = a1 + b0
    carry = _ONE if mid < a1 else _ZERO
    return b1 + carry, mid, a0


_B32 = np.uint64(1 << 32)


@njit(cache=True, nogil=True)
def _div_step(r, lo, d):
    """(r * 2**64 + lo) // d and its remainder, for r < d < 2**63.

    Two native divisions of 32-bit digits after normalising ``d`` (Hacker's Delight,
    ``divlu``; Knuth's algorithm D for a two-digit quotient): each estimate is at most two
    too large and is corrected before it is used, so the result is exact.
    """
    s = np.uint64(0)  # leading zeros of d: shifting them out makes its top bit 1
    if d <= np.uint64(0x00000000FFFFFFFF):
        s += np.uint64(32)
    if (d << s) <= np.uint64(0x0000FFFFFFFFFFFF):
        s += np.uint64(16)
    if (d << s) <= np.uint64(0x00FFFFFFFFFFFFFF):
        s += np.uint64(8)
    if (d << s) <= np.uint64(0x0FFFFFFFFFFFFFFF):
        s += np.uint64(4)
    if (d << s) <= np.uint64(0x3FFFFFFFFFFFFFFF):
        s += np.uint64(2)
    if (d << s) <= np.uint64(0x7FFFFFFFFFFFFFFF):
        s += _ONE
    v = d << s
    vn1 = v >> _S32
    vn0 = v & _M32
    # s >= 1 (d < 2**63), so the shift by 64 - s is defined.
    un32 = (r << s) | (lo >> (np.uint64(64) - s))
    un10 = lo << s
    un1 = un10 >> _S32
    un0 = un10 & _M32
    q1 = un32 // vn1
    rhat = un32 - q1 * vn1
    while q1 >= _B32 or q1 * vn0 > ((rhat << _S32) | un1):
        q1 -= _ONE
        rhat += vn1
        if rhat >= _B32:
            break
    un21 = (un32 << _S32) + un1 - q1 * v
    q0 = un21 // vn1
    rhat = un21 - q0 * vn1
    while q0 >= _B32 or q0 * vn0 > ((rhat << _S32) | un0):
        q0 -= _ONE
        rhat += vn1
        if rhat >= _B32:
            break
    rem = ((un21 << _S32) + un0 - q0 * v) >> s
    return (q1 << _S32) | q0, rem


@njit(cache=True, nogil=True)
def _divmod128_64(h, l, d):
    """(h, l) // d and (h, l) % d for 0 < d < 2**63."""
    qh = h // d
    ql, r = _div_step(h % d, l, d)
    return qh, ql, r


@njit(cache=True, nogil=True)
def _divmod192_64(x2, x1, x0, d):
    """(x2, x1, x0) // d as (overflow, hi, lo) of a 128-bit quotient, and the remainder."""
    q2 = x2 // d
    q1, r = _div_step(x2 % d, x1, d)
    q0, r = _div_step(r, x0, d)
    return q2 != _ZERO, q1, q0, r


_E18 = np.uint64(10**18)
_HALF64 = np.uint64(2**63)


@njit(cache=True, nogil=True)
def _end_pool(g, ah, al, pos, start_i, end_avg_int, end_avg_frac, end_pos, end_start):
    """Group ``g``'s end state (average, position, where its pool started); False when the
    average does not fit its two words."""
    fits, end_avg_int[g], end_avg_frac[g] = _split18(ah, al)
    if not fits:
        return False
    end_pos[g] = pos
    end_start[g] = start_i
    return True


@njit(cache=True, nogil=True)
def _end_pnl(g, gph, gpl, gnh, gnl, end_pnl):
    """Group ``g``'s realized PnL, its gains less its losses; False when it does not fit."""
    fits, mh, ml, neg = _net(gph, gpl, gnh, gnl)
    if not fits:
        return False
    _put(end_pnl, g, mh, ml, neg)
    return True


@njit(cache=True, nogil=True)
def _realized_against(ph, pl, ah, al, c, q, scale, d):
    """What closing ``c`` units of a pool held at average ``ah:al`` with a trade of sign ``q``
    at price ``ph:pl`` realizes: ``c * |price - avg|`` at the quantities' scale (``d`` =
    10**scale), rounded half-even, and whether it is a loss. Returns (fits, high, low,
    negative); it does not fit past 128 bits or 38 digits."""
    above = _ge128(ph, pl, ah, al)  # price >= average
    if above:
        dh, dl = _sub128(ph, pl, ah, al)
    else:
        dh, dl = _sub128(ah, al, ph, pl)
    # A sell (closing a long pool) gains when the price is above the average.
    negative = above != (q < 0)
    if dh == _ZERO and dl == _ZERO:
        negative = False
    x2, x1, x0 = _mul128_64(dh, dl, np.uint64(c))
    if scale == 0:
        if x2 != _ZERO:
            return False, _ZERO, _ZERO, negative
        return below_1e38(x1, x0), x1, x0, negative
    # Divide by 10**scale in two 128-bit steps of a few native divisions (a long division
    # bit by bit is several times slower); at 9 digits (what venues write) by a constant
    # divisor, which compiles to multiplications.
    if scale == 9:
        th, tl, r = _divmod_1e9(x2, x1)
    else:
        th, tl, r = divmod_pow10(x2, x1, scale)
    if th != _ZERO:
        return False, _ZERO, _ZERO, negative  # the quotient passes 128 bits
    if scale == 9:
        _, l, r = _divmod_1e9(r, x0)
    else:
        _, l, r = divmod_pow10(r, x0, scale)  # r < 10**scale: this quotient fits 64 bits
    h = tl
    twice = r << _ONE
    if twice > d or (twice == d and (l & _ONE) == _ONE):
        h, l, ovf = _add128(h, l, _ZERO, _ONE)
        if ovf:
            return False, h, l, negative
    return below_1e38(h, l), h, l, negative


@njit(cache=True, inline="always")
def _spread_times(xh, xl, yh, yl, m, d):
    """``|x - y| * m / d`` of 128-bit words ``x``, ``y`` and 64-bit ``m``, ``d``: (fits,
    x >= y, quotient high, low, remainder), the rounding left to the caller."""
    above = _ge128(xh, xl, yh, yl)
    if above:
        dh, dl = _sub128(xh, xl, yh, yl)
    else:
        dh, dl = _sub128(yh, yl, xh, xl)
    n2, n1, n0 = _mul128_64(dh, dl, m)
    ovf, qh, ql, rem = _divmod192_64(n2, n1, n0, d)
    return not ovf, above, qh, ql, rem


@njit(cache=True, nogil=True)
def _reaverage(ah, al, ph, pl, q, pos):
    """The pool's average after adding ``q`` at price ``ph:pl`` to ``pos`` held at ``ah:al``
    (128-bit words at 18 places): ``avg + (price - avg) * q / (pos + q)``, rounded half-even
    on the new average. Returns (fits, high, low)."""
    bq = np.uint64(q if q > 0 else -q)
    bp = np.uint64(pos if pos > 0 else -pos)
    after = bq + bp
    # q / (pos + q) <= 1, so the quotient never exceeds |price - avg|.
    fits, rising, sh, sl, rem = _spread_times(ph, pl, ah, al, bq, after)
    if not fits:
        return False, ah, al
    twice = rem << _ONE
    if rising:
        ah, al, ovf = _add128(ah, al, sh, sl)
    else:
        ah, al = _sub128(ah, al, sh, sl)
    if ovf:
        return False, ah, al
    # Past half always moves away from the old average.
    if twice > after or (twice == after and (al & _ONE) == _ONE):
        if rising:
            ah, al, ovf = _add128(ah, al, _ZERO, _ONE)
        else:
            ah, al = _sub128(ah, al, _ZERO, _ONE)
    return True, ah, al


@njit(cache=True, nogil=True)
def _split18(ah, al):
    """A 128-bit value at 18 digits as (fits, integer part, fraction digits)."""
    qh, ql, r = divmod_pow10(ah, al, 18)
    return qh == _ZERO and ql < _HALF64, np.int64(ql), np.int64(r)


@njit(cache=True, nogil=True)
def _wac_kernel(group, qty, price_int, price_frac, closed, avg_int, avg_frac, pool_start, end_pos, end_avg_int, end_avg_frac, end_start):
    """Weighted-average cost over scaled quantities and prices split at the point.

    Per trade: ``closed`` (positive quantity closed), for closing trades the pool average
    *before* the trade (``avg_int`` + ``avg_frac``/1e18; left as given otherwise) and ``pool_start`` (index of the trade that opened the
    pool in force after it, -1 when flat). Per group (in order): position, average and pool
    start at the end. Returns False when a number outgrew 128 bits (the caller then takes
    the exact Python path).
    """
    n = qty.shape[0]
    g = 0
    pos = np.int64(0)
    ah = _ZERO  # the pool's average as a 128-bit integer at 18 digits after the point
    al = _ZERO
    start_i = -1
    for i in range(n):
        if i > 0 and group[i] != group[i - 1]:
            if not _end_pool(g, ah, al, pos, start_i, end_avg_int, end_avg_frac, end_pos, end_start):
                return False
            g += 1
            pos = np.int64(0)
            ah = _ZERO
            al = _ZERO
            start_i = -1
        q = qty[i]
        ph, pl = _mul64(np.uint64(price_int[i]), _E18)
        ph, pl, ovf = _add128(ph, pl, _ZERO, np.uint64(price_frac[i]))
        if ovf:
            return False
        if pos == 0 or (pos > 0) == (q > 0):
            closed[i] = 0
            if pos == 0:
                ah, al = ph, pl
                start_i = i
            else:
                fits, ah, al = _reaverage(ah, al, ph, pl, q, pos)
                if not fits:
                    return False
            pos += q
        else:
            # Only a closing trade needs the average it realizes against.
            fits, avg_int[i], avg_frac[i] = _split18(ah, al)
            if not fits:
                return False
            held = pos if pos > 0 else -pos
            size = q if q > 0 else -q
            if size <= held:
                closed[i] = size
                pos += q
                if pos == 0:
                    ah = _ZERO
                    al = _ZERO
                    start_i = -1
            else:
                closed[i] = held
                pos += q
                ah, al = ph, pl
                start_i = i
        pool_start[i] = start_i
    if n > 0:
        if not _end_pool(g, ah, al, pos, start_i, end_avg_int, end_avg_frac, end_pos, end_start):
            return False
    return True


def wac_exact(group, qty, price18):
    """The WAC recurrence in Python integers: the exact path for numbers past 128 bits.

    ``qty`` are scaled integers, ``price18`` prices as integers at 18 digits. Returns
    per-trade ``closed``, ``avg_before`` (int at 18 digits), ``pool_start`` and per-group
    ``end_pos``, ``end_avg``, ``end_start``.
    """
    n = len(qty)
    closed = [0] * n
    avg_before = [0] * n
    pool_start = [-1] * n
    end_pos, end_avg, end_start = [], [], []
    pos = avg = 0
    start_i = -1
    for i in range(n):
        if i > 0 and group[i] != group[i - 1]:
            end_pos.append(pos)
            end_avg.append(avg)
            end_start.append(start_i)
            pos = avg = 0
            start_i = -1
        avg_before[i] = avg
        q = int(qty[i])
        p = int(price18[i])
        if pos == 0:
            avg, start_i = p, i
            pos = q
        elif (pos > 0) == (q > 0):
            after = abs(pos) + abs(q)
            num = avg * abs(pos) + p * abs(q)
            quot, rem = divmod(num, after)
            if 2 * rem > after or (2 * rem == after and quot % 2 == 1):
                quot += 1
            avg = quot
            pos += q
        elif abs(q) <= abs(pos):
            closed[i] = abs(q)
            pos += q
            if pos == 0:
                avg, start_i = 0, -1
        else:
            closed[i] = abs(pos)
            pos += q
            avg, start_i = p, i
        pool_start[i] = start_i
    if n:
        end_pos.append(pos)
        end_avg.append(avg)
        end_start.append(start_i)
    return closed, avg_before, pool_start, end_pos, end_avg, end_start

wac_kernel = _wac_kernel


# ---------------------------------------------------------------------------------------
# Pricing matches: realized PnL per trade, exactly, in 128-bit integers
# ---------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _round_shift(h, l, shift):
    """(h, l) / 10**shift rounded half-even (shift > 0), or * 10**-shift; (ok, h, l)."""
    if shift > 0:
        d = np.uint64(10) ** np.uint64(shift)
        qh, ql, r = divmod_pow10(h, l, shift)
        twice = r << _ONE
        if twice > d or (twice == d and (ql & _ONE) == _ONE):
            qh, ql, ovf = _add128(qh, ql, _ZERO, _ONE)
            if ovf:
                return False, qh, ql
        return True, qh, ql
    if shift < 0:
        x2, x1, x0 = _mul128_64(h, l, np.uint64(10) ** np.uint64(-shift))
        return x2 == _ZERO, x1, x0
    return True, h, l


@njit(cache=True, nogil=True)
def _price_matches(m_close, m_lot, m_qty, price, lot_long, shift, r_int, r_frac, closed):
    """Realized PnL and closed quantity per closing trade.

    Each match realizes ``qty * (exit - entry)`` (long lot) or ``qty * (entry - exit)``
    (short), the product exact in 128 bits at the scale of quantity plus price, then
    rounded half-even to 18 places; a trade's matches are summed. Quantities and prices
    arrive as int64 at their scales, ``shift`` = their scales' sum - 18. Results land as
    integer part + 18 fraction digits, both signed like the value. Returns False when a
    number outgrows the representation (the caller then prices in Polars).
    """
    k = m_close.shape[0]
    ph = _ZERO  # gains and losses of the current trade, kept apart as magnitudes
    pl_ = _ZERO
    nh = _ZERO
    nl = _ZERO
    for j in range(k):
        i = m_close[j]
        lot = m_lot[j]
        q = m_qty[j]
        closed[i] += q
        d = price[i] - price[lot]
        if not lot_long[lot]:
            d = -d
        gain = d >= 0
        h, l = _mul64(np.uint64(q), np.uint64(d if gain else -d))
        ok, h, l = _round_shift(h, l, shift)
        if not ok:
            return False
        if gain:
            ph, pl_, ovf = _add128(ph, pl_, h, l)
        else:
            nh, nl, ovf = _add128(nh, nl, h, l)
        if ovf:
            return False
        if j == k - 1 or m_close[j + 1] != i:
            if _ge128(ph, pl_, nh, nl):
                mh, ml = _sub128(ph, pl_, nh, nl)
                sign = 1
            else:
                mh, ml = _sub128(nh, nl, ph, pl_)
                sign = -1
            fits, whole, frac = _split18(mh, ml)
            if not fits:
                return False
            r_int[i] = sign * whole
            r_frac[i] = sign * frac
            ph = _ZERO
            pl_ = _ZERO
            nh = _ZERO
            nl = _ZERO
    return True


def price_matches(m_close, m_lot, m_qty, price, lot_long, qty_scale: int, price_scale: int, n: int):
    """Per-trade ``(realized integer part, fraction digits, closed qty)`` arrays, or None
    when the numbers do not fit (see :func:`_price_matches`)."""
    r_int = np.zeros(n, np.int64)
    r_frac = np.zeros(n, np.int64)
    closed = np.zeros(n, np.int64)
    ok = _price_matches(m_close, m_lot, m_qty, price, lot_long, qty_scale + price_scale - 18, r_int, r_frac, closed)
    return (r_int, r_frac, closed) if ok else None


# ---------------------------------------------------------------------------------------
# Per-trade results straight to Decimal words: realized PnL, closed quantity, position
# ---------------------------------------------------------------------------------------
#
# The kernels below write each trade's results as the raw 128-bit integers of a
# Decimal(38, 18) (see :mod:`utl.scaled`), at the trade's *input* row, so that no Polars
# Decimal arithmetic, running sum or reordering is needed afterwards. They check every
# value against 38 digits and return False when one does not fit (the caller then takes
# the exact wide path, which reports or handles it); nothing wraps.


@njit(cache=True, nogil=True)
def _put(out, row, h, l, negative):
    out[row, 0], out[row, 1] = signed_words(h, l, negative)


_STAGED = 4096
"""Trades whose results a kernel holds before writing them at their input rows."""


@njit(cache=True, nogil=True)
def _staging(per_trade):
    """Room for :data:`_STAGED` trades' results (none without ``per_trade``): input rows,
    realized PnL words, and closed quantity and position after as ``int64``.

    A trade's three results go to its *input* row, which in application order jumps about
    the whole output: written one trade at a time, between the matching's own steps, each
    write waits on a cache miss (on 2 M shuffled trades, ~75 of FIFO's ~130 ms of CPU).
    Held here, in the cache, and written a few thousand at a time by a loop doing nothing
    else, the misses overlap."""
    k = _STAGED if per_trade else 0
    return np.empty(k, np.int64), np.empty((k, 2), np.uint64), np.empty((k, 2), np.int64)


@njit(cache=True, nogil=True)
def _hold(rows, words, ints, k, row, h, l, negative, closed, position):
    """Hold a trade's results as entry ``k``: its realized PnL (magnitude ``h``, ``l``) as
    words, its closed quantity and position after as int64. Returns how many are held.
    (The kernel itself writes them out when the room is full: a call per trade that also
    took the output arrays made FIFO's kernel 2.4 times slower here, 207-223 against
    77-113 ms of CPU on 2 M trades.)"""
    rows[k] = row
    words[k, 0], words[k, 1] = signed_words(h, l, negative)
    ints[k, 0] = closed
    ints[k, 1] = position
    return k + 1


@njit(cache=True, nogil=True)
def _write_staged(rows, words, ints, k, pnl, closed, position):
    """Write the ``k`` held results at their rows; returns 0 (none held now)."""
    for j in range(k):
        r = rows[j]
        pnl[r, 0] = words[j, 0]
        pnl[r, 1] = words[j, 1]
        closed[r] = ints[j, 0]
        position[r] = ints[j, 1]
    return 0


@njit(cache=True, nogil=True)
def _net(ph, pl_, nh, nl):
    """gains - losses as (fits in 38 digits, magnitude high, low, negative)."""
    if _ge128(ph, pl_, nh, nl):
        mh, ml = _sub128(ph, pl_, nh, nl)
        return below_1e38(mh, ml), mh, ml, False
    mh, ml = _sub128(nh, nl, ph, pl_)
    return below_1e38(mh, ml), mh, ml, True


@njit(cache=True, nogil=True)
def _realize_wac(group, qty, price_int, price_frac, closed, avg_int, avg_frac, scale, order, pnl, closed_out, position, end_pnl,
                 counted_from, per_trade):
    """WAC's per-trade results from :func:`_wac_kernel`'s ``closed`` and pool averages.

    A closing trade realizes ``closed * (price - avg)`` against a long pool (a sell) and
    ``closed * (avg - price)`` against a short one, the product exact (192 bits at the
    quantities' scale + 18) and rounded half-even to 18 places. Inputs in application
    order, outputs at input rows (``order``), as in :func:`_match_and_realize`; ``counted_from``
    and ``per_trade`` as there.
    """
    n = qty.shape[0]
    d = np.uint64(10) ** np.uint64(scale)
    staged_row, staged_words, staged_ints = _staging(per_trade)
    staged = 0
    g = -1
    pos = np.int64(0)
    gph = _ZERO
    gpl = _ZERO
    gnh = _ZERO
    gnl = _ZERO
    for i in range(n):
        if i == 0 or group[i] != group[i - 1]:
            if g >= 0:
                if not _end_pnl(g, gph, gpl, gnh, gnl, end_pnl):
                    return False
            g += 1
            pos = np.int64(0)
            gph = _ZERO
            gpl = _ZERO
            gnh = _ZERO
            gnl = _ZERO
        c = closed[i]
        h = _ZERO
        l = _ZERO
        negative = False
        if c > 0:
            xh, xl = _mul64(np.uint64(price_int[i]), _E18)
            xh, xl, ovf = _add128(xh, xl, _ZERO, np.uint64(price_frac[i]))
            ah, al = _mul64(np.uint64(avg_int[i]), _E18)
            ah, al, ovf2 = _add128(ah, al, _ZERO, np.uint64(avg_frac[i]))
            if ovf or ovf2:
                return False
            fits, h, l, negative = _realized_against(xh, xl, ah, al, c, qty[i], scale, d)
            if not fits:
                return False
            if order[i] >= counted_from:
                if negative:
                    gnh, gnl, ovf = _add128(gnh, gnl, h, l)
                else:
                    gph, gpl, ovf = _add128(gph, gpl, h, l)
                if ovf:
                    return False
        pos += qty[i]
        if per_trade:
            staged = _hold(staged_row, staged_words, staged_ints, staged, order[i], h, l, negative, c, pos)
            if staged == _STAGED:
                staged = _write_staged(staged_row, staged_words, staged_ints, staged, pnl, closed_out, position)
    _write_staged(staged_row, staged_words, staged_ints, staged, pnl, closed_out, position)
    if g >= 0:
        if not _end_pnl(g, gph, gpl, gnh, gnl, end_pnl):
            return False
    return True


@njit(cache=True, nogil=True)
def _group_totals_fit(group, qty):
    """Whether every group's total traded quantity (sum of |qty|) fits int64: no lot or
    position of a group can exceed it, so the int64 kernels cannot overflow."""
    total = np.int64(0)
    for i in range(qty.shape[0]):
        if i > 0 and group[i] != group[i - 1]:
            total = np.int64(0)
        q = qty[i]
        m = -q if q < 0 else q
        if total > np.int64(9223372036854775807) - m:
            return False
        total += m
    return True


@njit(cache=True, nogil=True)
def _split_prices(words, order, price_int, price_frac):
    """Prices (words at 18 places, input order) as integer part and 18 fraction digits,
    in application order; False when an integer part passes int64."""
    for i in range(order.shape[0]):
        row = order[i]
        qh, ql, r = divmod_pow10(words[row, 1], words[row, 0], 18)
        if qh != _ZERO or ql >= _HALF64:
            return False
        price_int[i] = np.int64(ql)
        price_frac[i] = np.int64(r)
    return True


@njit(cache=True, nogil=True)
def _wac_words(group, qty, price, p_up, scale, order, counted_from, per_trade, pnl, closed_out, position,
               end_pos, end_avg_int, end_avg_frac, end_start, end_pnl):
    """:func:`_wac_kernel` and :func:`_realize_wac` in one pass, on prices given as int64 at
    their own scale (``p_up`` = 10**(18 - that scale), each below 2**62): the same pool
    average (an integer at 18 digits after the point, re-averaged with half-even rounding),
    each closing trade realized against it as it is met (``closed * (price - avg)`` for a
    sell, ``closed * (avg - price)`` for a buy, exact, rounded half-even to 18 places),
    per-trade results at input rows (:class:`Results`), per-group ends. No per-trade scratch arrays. Returns
    False when a number does not fit (the caller then takes the two-pass or the exact path).
    """
    n = qty.shape[0]
    d = np.uint64(10) ** np.uint64(scale)
    staged_row, staged_words, staged_ints = _staging(per_trade)
    staged = 0
    g = -1
    pos = np.int64(0)
    ah = _ZERO  # the pool's average as a 128-bit integer at 18 digits after the point
    al = _ZERO
    start_i = -1
    gph = _ZERO  # the group's gains and losses so far, as magnitudes
    gpl = _ZERO
    gnh = _ZERO
    gnl = _ZERO
    for i in range(n):
        if i == 0 or group[i] != group[i - 1]:
            if g >= 0:
                if not _end_pool(g, ah, al, pos, start_i, end_avg_int, end_avg_frac, end_pos, end_start):
                    return False
                if not _end_pnl(g, gph, gpl, gnh, gnl, end_pnl):
                    return False
            g += 1
            pos = np.int64(0)
            ah = _ZERO
            al = _ZERO
            start_i = -1
            gph = _ZERO
            gpl = _ZERO
            gnh = _ZERO
            gnl = _ZERO
        q = qty[i]
        ph, pl = _mul64(np.uint64(price[i]), p_up)
        c = np.int64(0)
        h = _ZERO
        l = _ZERO
        negative = False
        if pos == 0 or (pos > 0) == (q > 0):
            if pos == 0:
                ah, al = ph, pl
                start_i = i
            else:
                fits, ah, al = _reaverage(ah, al, ph, pl, q, pos)
                if not fits:
                    return False
            pos += q
        else:
            held = pos if pos > 0 else -pos
            size = q if q > 0 else -q
            c = size if size <= held else held
            fits, h, l, negative = _realized_against(ph, pl, ah, al, c, q, scale, d)
            if not fits:
                return False
            if order[i] >= counted_from:
                if negative:
                    gnh, gnl, ovf = _add128(gnh, gnl, h, l)
                else:
                    gph, gpl, ovf = _add128(gph, gpl, h, l)
                if ovf:
                    return False
            pos += q
            if size <= held:
                if pos == 0:
                    ah = _ZERO
                    al = _ZERO
                    start_i = -1
            else:  # a flip: the rest opens a new pool at this trade's price
                ah, al = ph, pl
                start_i = i
        if per_trade:
            staged = _hold(staged_row, staged_words, staged_ints, staged, order[i], h, l, negative, c, pos)
            if staged == _STAGED:
                staged = _write_staged(staged_row, staged_words, staged_ints, staged, pnl, closed_out, position)
    _write_staged(staged_row, staged_words, staged_ints, staged, pnl, closed_out, position)
    if g >= 0:
        if not _end_pool(g, ah, al, pos, start_i, end_avg_int, end_avg_frac, end_pos, end_start):
            return False
        if not _end_pnl(g, gph, gpl, gnh, gnl, end_pnl):
            return False
    return True


class Results:
    """Each trade's realized PnL, closed quantity and position after, as words.

    The kernels write closed quantity and position as ``int64`` at the quantities' scale,
    into the first half of the very memory their words take (``closed``, ``position``:
    views), and :meth:`words` then widens them in place. Memory the process has not used
    before costs the kernel's zeroing of every page on first touch (a first call's main
    extra cost here): this way the words' second halves are touched only once the kernels'
    inputs are let go, and no second set of arrays is ever made."""

    def __init__(self, n: int):
        self.pnl = np.zeros((n, 2), np.uint64)
        self._closed = np.zeros((n, 2), np.uint64)
        self._position = np.zeros((n, 2), np.uint64)
        self.closed = self._closed.reshape(-1)[:n].view(np.int64)
        self.position = self._position.reshape(-1)[:n].view(np.int64)

    def words(self, qty_scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(realized PnL, closed, position after) as words; call once, after letting go of
        the kernels' inputs."""
        up = np.uint64(10 ** (18 - qty_scale))
        both = [self._closed, self._position]
        widen = lambda words: _widen_in_place(words.reshape(-1), up)  # noqa: E731
        if two_at_once(len(self.pnl)):
            run_parts(both, widen)  # one on each core
        else:
            for words in both:
                widen(words)
        return self.pnl, self._closed, self._position


@njit(cache=True, nogil=True)
def _widen_in_place(flat, up):
    """The ``int64`` values held in the first half of ``flat`` (``2n`` words), times ``up``,
    as ``n`` pairs of words over all of it. From the last value down: pair ``i`` overwrites
    values ``2i`` and ``2i + 1``, never one still to be read."""
    n = flat.shape[0] // 2
    for i in range(n - 1, -1, -1):
        v = np.int64(flat[i])
        m = np.uint64(-v) if v < 0 else np.uint64(v)
        h, l = _mul64(m, up)
        flat[2 * i], flat[2 * i + 1] = signed_words(h, l, v < 0)


def realize_wac(group, qty, price_words, order, qty_scale: int, n_groups: int, counted_from: int = 0,
                per_trade: bool = True, taken: tuple[int, np.ndarray] | None = None):
    """WAC in int64/128-bit words: the per-trade :class:`Results` (realized PnL, closed,
    position after, at input rows), per group ``(end_pos, end_avg_int, end_avg_frac,
    end_start, end_pnl)``; None when a
    number does not fit (the caller then takes the exact Python path). ``counted_from`` and
    ``per_trade`` as in :func:`match_and_realize`. ``taken``: the prices already as int64 in
    application order (``(scale, values)``, each below 2**62), as :func:`int64_prices` and
    :func:`take` make them."""
    n = qty.shape[0]
    if taken is None:
        as_price = int64_prices(price_words)
        if as_price is not None:
            taken = as_price[0], take(as_price[1], order)
        del as_price
    if taken is not None:
        price_scale, price = taken
        del taken
        results = Results(n if per_trade else 0)
        end_pos = np.zeros(n_groups, np.int64)
        end_avg_int = np.zeros(n_groups, np.int64)
        end_avg_frac = np.zeros(n_groups, np.int64)
        end_start = np.empty(n_groups, np.int64)
        end_pnl = np.zeros((n_groups, 2), np.uint64)

        def run(part: tuple[int, int, int, int]) -> bool:
            lo, hi, g_lo, g_hi = part
            ok = _wac_words(group[lo:hi], qty[lo:hi], price[lo:hi], np.uint64(10 ** (18 - price_scale)), qty_scale,
                            order[lo:hi], np.int64(counted_from), per_trade,
                            results.pnl, results.closed, results.position, end_pos[g_lo:g_hi], end_avg_int[g_lo:g_hi],
                            end_avg_frac[g_lo:g_hi], end_start[g_lo:g_hi], end_pnl[g_lo:g_hi])
            pooled = end_start[g_lo:g_hi]
            pooled[pooled >= 0] += lo  # the part's own trade numbers, made the whole's
            return bool(ok)

        if per_trade:
            give_back_freed()  # the conversions' freed arrays, before the output words are written
        if all(run_parts(trade_parts(group), run)):
            del price
            return results, (end_pos, end_avg_int, end_avg_frac, end_start, end_pnl)
        del results, price
    # Prices past int64 at their scale (or a number the one pass could not hold): two passes
    # on prices split at the point.
    price_int = np.empty(n, np.int64)
    price_frac = np.empty(n, np.int64)
    if not isinstance(price_words, np.ndarray):  # chunks: this path reads rows in any order
        price_words = np.concatenate(price_words) if price_words else np.zeros((0, 2), np.uint64)
    if not _split_prices(price_words, order, price_int, price_frac):
        return None
    closed = np.zeros(n, np.int64)
    avg_int = np.zeros(n, np.int64)
    avg_frac = np.zeros(n, np.int64)
    pool_start = np.empty(n, np.int64)
    end_pos = np.zeros(n_groups, np.int64)
    end_avg_int = np.zeros(n_groups, np.int64)
    end_avg_frac = np.zeros(n_groups, np.int64)
    end_start = np.empty(n_groups, np.int64)
    if not _wac_kernel(group, qty, price_int, price_frac, closed, avg_int, avg_frac, pool_start,
                       end_pos, end_avg_int, end_avg_frac, end_start):
        return None
    results = Results(n if per_trade else 0)
    end_pnl = np.zeros((n_groups, 2), np.uint64)
    if not _realize_wac(group, qty, price_int, price_frac, closed, avg_int, avg_frac, qty_scale,
                        order, results.pnl, results.closed, results.position, end_pnl,
                        np.int64(counted_from), per_trade):
        return None
    return results, (end_pos, end_avg_int, end_avg_frac, end_start, end_pnl)


def int64_prices(words) -> tuple[int, np.ndarray] | None:
    """Prices (words or a list of chunks of words, input order) as int64 at 9 digits after the point, or else at the
    fewest that hold them, each below 2**62 (room to subtract two); None when none fits."""
    for convert in (to_int64_at_nine, to_int64):
        got = convert(words)
        if got is not None and got[2] < 2**62:
            return got[0], got[1]
    return None


def group_totals_fit(group: np.ndarray, qty: np.ndarray) -> bool:
    return bool(_group_totals_fit(group, qty))


@njit(cache=True, nogil=True)
def _match_and_realize(group, qty, price, method, shift, order, counted_from, per_trade, pnl, closed, position,
                       end_pos, end_pnl, open_trade, open_qty, lot_trade, lot_qty, heap):
    """:func:`_match` with every match priced as it is made (no match list), per-trade
    results written at input rows (``order``) and per-group ends. A match realizes ``qty *
    (exit - entry)`` for a long lot, ``qty * (entry - exit)`` for a short one, exact in 128
    bits at the quantities' and prices' scales summed, then rounded half-even to 18 places
    (``shift`` = that sum - 18). ``price`` (int64 at its scale, below 2**62) is also the
    HIFO rank. Per-group PnL sums only trades whose input row is at least ``counted_from``
    (the daily run's carried lots come first and are not the day's PnL); with ``per_trade``
    false no per-trade result is written (the arrays may be empty). Returns ``(ok,
    n_open)``; ok is False when a number does not fit."""
    n = qty.shape[0]
    rank = price
    mult = np.uint64(10) ** np.uint64(-shift if shift < 0 else 0)
    staged_row, staged_words, staged_ints = _staging(per_trade)
    staged = 0
    n_open = 0
    start = 0
    g = 0
    while start < n:
        gph = _ZERO  # the group's gains and losses so far, as magnitudes
        gpl = _ZERO
        gnh = _ZERO
        gnl = _ZERO
        pos = np.int64(0)
        end = start
        while end < n and group[end] == group[start]:
            end += 1
        # A group's lots take slots from 0 (a group never holds more lots than it has
        # trades, so the scratch is the largest group's length, not every trade's).
        head = 0  # FIFO closes from head, LIFO from tail - 1, HIFO from the heap's top
        tail = 0
        size = 0
        lot_sign = 0
        for i in range(start, end):
            q = qty[i]
            sign = 1 if q > 0 else -1
            ph = _ZERO
            pl_ = _ZERO
            nh = _ZERO
            nl = _ZERO
            done = np.int64(0)
            live = (tail - head) if method != HIFO else size
            if live > 0 and sign != lot_sign:
                remaining = -q if q < 0 else q
                while remaining > 0 and live > 0:
                    if method == FIFO:
                        s = head
                    elif method == LIFO:
                        s = tail - 1
                    else:
                        s = heap[0]
                    held = lot_qty[s] if lot_qty[s] > 0 else -lot_qty[s]
                    take = held if held < remaining else remaining
                    done += take
                    d = price[i] - price[lot_trade[s]]
                    if lot_sign < 0:
                        d = -d
                    gain = d >= 0
                    h, l = _mul64(np.uint64(take), np.uint64(d if gain else -d))
                    if shift < 0:
                        x2, h, l = _mul128_64(h, l, mult)
                        if x2 != _ZERO:
                            return False, 0
                    elif shift > 0:
                        ok, h, l = _round_shift(h, l, shift)
                        if not ok:
                            return False, 0
                    if gain:
                        ph, pl_, ovf = _add128(ph, pl_, h, l)
                    else:
                        nh, nl, ovf = _add128(nh, nl, h, l)
                    if ovf:
                        return False, 0
                    remaining -= take
                    if take == held:
                        if method == FIFO:
                            head += 1
                        elif method == LIFO:
                            tail -= 1
                        else:
                            # Pop the heap's top: move the last slot up, sift it down.
                            size -= 1
                            heap[0] = heap[size]
                            j = 0
                            while True:
                                best = j
                                for child in (2 * j + 1, 2 * j + 2):
                                    if child < size:
                                        rc = rank[lot_trade[heap[child]]]
                                        rb = rank[lot_trade[heap[best]]]
                                        if rc != rb:
                                            first = rc > rb if lot_sign > 0 else rc < rb
                                        else:
                                            first = heap[child] < heap[best]
                                        if first:
                                            best = child
                                if best == j:
                                    break
                                heap[j], heap[best] = heap[best], heap[j]
                                j = best
                        live -= 1
                    else:
                        lot_qty[s] -= take * lot_sign
                if remaining > 0:
                    # The trade flips the position: its rest opens a lot of its own sign.
                    lot_trade[0] = i
                    lot_qty[0] = remaining * sign
                    head = 0
                    tail = 1
                    lot_sign = sign
                    if method == HIFO:
                        heap[0] = 0
                        size = 1
            else:
                if live == 0:
                    head = 0
                    tail = 0
                lot_trade[tail] = i
                lot_qty[tail] = q
                lot_sign = sign
                if method == HIFO:
                    # Push the new slot and sift it up. Long: highest entry price first;
                    # short: lowest; equal prices: the older (smaller) slot first.
                    j = size
                    heap[j] = tail
                    size += 1
                    while j > 0:
                        parent = (j - 1) // 2
                        rj = rank[lot_trade[heap[j]]]
                        rp = rank[lot_trade[heap[parent]]]
                        if rj != rp:
                            first = rj > rp if lot_sign > 0 else rj < rp
                        else:
                            first = heap[j] < heap[parent]
                        if not first:
                            break
                        heap[j], heap[parent] = heap[parent], heap[j]
                        j = parent
                tail += 1
            pos += q
            row = order[i]
            fits, mh, ml, neg = _net(ph, pl_, nh, nl)
            if not fits:
                return False, 0
            if per_trade:
                staged = _hold(staged_row, staged_words, staged_ints, staged, row, mh, ml, neg, done, pos)
                if staged == _STAGED:
                    staged = _write_staged(staged_row, staged_words, staged_ints, staged, pnl, closed, position)
            if row >= counted_from:
                gph, gpl, ovf = _add128(gph, gpl, ph, pl_)
                if ovf:
                    return False, 0
                gnh, gnl, ovf = _add128(gnh, gnl, nh, nl)
                if ovf:
                    return False, 0
        fits, mh, ml, neg = _net(gph, gpl, gnh, gnl)
        if not fits:
            return False, 0
        end_pos[g] = pos
        _put(end_pnl, g, mh, ml, neg)
        g += 1
        # In slot (= opening) order.
        if method == HIFO:
            live_slots = np.sort(heap[:size])
            for j in range(size):
                open_trade[n_open] = lot_trade[live_slots[j]]
                open_qty[n_open] = lot_qty[live_slots[j]]
                n_open += 1
        else:
            for s in range(head, tail):
                open_trade[n_open] = lot_trade[s]
                open_qty[n_open] = lot_qty[s]
                n_open += 1
        start = end
    _write_staged(staged_row, staged_words, staged_ints, staged, pnl, closed, position)
    return True, n_open


def match_and_realize(group, qty, price, method: str, order, qty_scale: int, price_scale: int, n_groups: int,
                      counted_from: int = 0, per_trade: bool = True):
    """FIFO/LIFO/HIFO on int64 quantities and prices, priced as matched: the per-trade
    :class:`Results` (realized PnL, closed, position after, at input rows; empty unless
    ``per_trade``), per group ``(end_pos, end_pnl)`` (``end_pnl`` over input rows from ``counted_from`` on), and the
    open lots ``(open_trade, open_qty)`` (application-order index, int64 quantity), grouped
    by (book, asset). None when a number does not fit."""
    n = qty.shape[0]
    results = Results(n if per_trade else 0)
    end_pos = np.zeros(n_groups, np.int64)
    end_pnl = np.zeros((n_groups, 2), np.uint64)
    cuts = np.flatnonzero(group[1:] != group[:-1]) + 1
    largest = int(np.diff(np.r_[0, cuts, n]).max()) if n else 0  # the longest group's trades
    del cuts

    def run(part: tuple[int, int, int, int]):
        lo, hi, g_lo, g_hi = part
        lot_trade = np.empty(largest, np.int64)
        lot_qty = np.empty(largest, np.int64)
        heap = np.empty(largest if method == "hifo" else 1, np.int64)  # only HIFO keeps a heap
        # Room for every trade's lot, but only the pages the open lots are written to are
        # ever touched (held in memory).
        open_trade = np.empty(hi - lo, np.int64)
        open_qty = np.empty(hi - lo, np.int64)
        ok, n_open = _match_and_realize(group[lo:hi], qty[lo:hi], price[lo:hi], METHOD_CODES[method],
                                        qty_scale + price_scale - 18, order[lo:hi],
                                        np.int64(counted_from), per_trade, results.pnl, results.closed, results.position,
                                        end_pos[g_lo:g_hi], end_pnl[g_lo:g_hi], open_trade, open_qty,
                                        lot_trade, lot_qty, heap)
        # Lots name their opening trade by the part's own numbers: made the whole's.
        return bool(ok), open_trade[:n_open] + lo, open_qty[:n_open].copy()

    if per_trade:
        give_back_freed()  # the ordering's and conversions' freed arrays, before the output words are written
    done = run_parts(trade_parts(group), run)
    if not all(ok for ok, _, _ in done):
        return None
    return (results, end_pos, end_pnl), (
        np.concatenate([lots for _, lots, _ in done]),
        np.concatenate([open_qty for _, _, open_qty in done]),
    )


SPLIT_FROM = 200_000
"""Trades from which the kernels cost two halves of the (book, asset) groups at once."""
_CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def two_at_once(n: int) -> bool:
    """Whether ``n`` trades are costed two parts at a time (:func:`trade_parts`)."""
    return n >= SPLIT_FROM and _CORES >= 2


def trade_parts(group: np.ndarray, split_from: int | None = None) -> list[tuple[int, int, int, int]]:
    """The parts the kernels cost trades in: ``(first trade, end trade, first group, end
    group)``, in application order. (Book, asset) groups are independent, so with two or
    more cores and ``split_from`` trades or more (:data:`SPLIT_FROM`) they are two halves
    cut at the group boundary nearest the middle, each costed on its own thread (the
    compiled kernels let go of the GIL); else one part. ``group`` is non-decreasing."""
    n = len(group)
    parts = [(0, n, 0, int(np.count_nonzero(group[1:] != group[:-1])) + 1 if n else 0)]
    if (not two_at_once(n)) if split_from is None else n < split_from:
        return parts
    middle = group[n // 2]
    first = int(np.searchsorted(group, middle, "left"))
    after = int(np.searchsorted(group, middle, "right"))
    cut = first if n // 2 - first <= after - n // 2 else after
    if cut in (0, n):
        return parts  # one group holds the middle and reaches an end
    groups_before = int(np.count_nonzero(group[1:cut] != group[: cut - 1])) + 1
    return [(0, cut, 0, groups_before), (cut, n, groups_before, parts[0][3])]


def run_parts(parts: list, run):
    """``run(part)`` for every part, all but the first on threads of their own; results
    in the parts' order, and an exception in any part raised here."""
    if len(parts) == 1:
        return [run(parts[0])]
    results: list = [None] * len(parts)
    failed: list[BaseException] = []

    def one(k: int) -> None:
        try:
            results[k] = run(parts[k])
        except BaseException as exc:  # noqa: BLE001 - raised again on the calling thread
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(k,), name="utl-costing-part") for k in range(1, len(parts))]
    for thread in threads:
        thread.start()
    one(0)
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    return results
