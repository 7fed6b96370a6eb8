"""The compiled kernels of :mod:`utl.venues.json_scan` (numba, cached on disk); imported on
first use, as loading numba takes a second."""

from __future__ import annotations

import numpy as np
from numba import njit, uint64

from utl.venues._csv_kernels import _POW10, digit_run  # one digit reader for both kernels

MAX_DEPTH = 64
# A long value's view points into data buffer k: the file's bytes from k * STEP, 2 * STEP of them
# (Arrow's offsets are int32); lines of STEP bytes or more are handed back.
STEP_BITS = 30
STEP = 1 << STEP_BITS

# Line status.
_READ, _BLANK, _BACK = 0, 1, 2
# Value kinds.
_ABSENT, _NULL, _STRING, _NUMBER, _OTHER = 0, 1, 2, 3, 4


@njit(cache=True, inline="always")
def ws(b, i, end):
    """Past JSON's blanks but ``\\n``: lines are split on it, so it ends a line's value."""
    while i < end and (b[i] == 32 or b[i] == 9 or b[i] == 13):
        i += 1
    return i


@njit(cache=True, inline="always")
def string(b, i, end):
    """``b[i]`` is an opening quote: (index after the closing quote, escaped), or (-1, _)."""
    i += 1
    escaped = False
    while i < end:
        c = b[i]
        if c == 34:
            return i + 1, escaped
        if c < 32:
            return -1, escaped
        if c == 92:
            escaped = True
            if i + 1 >= end:
                return -1, escaped
            e = b[i + 1]
            if e == 117:  # \uXXXX
                if i + 5 >= end:
                    return -1, escaped
                for k in range(i + 2, i + 6):
                    h = b[k]
                    if not ((48 <= h <= 57) or (65 <= h <= 70) or (97 <= h <= 102)):
                        return -1, escaped
                i += 6
                continue
            if e == 34 or e == 92 or e == 47 or e == 98 or e == 102 or e == 110 or e == 114 or e == 116:
                i += 2
                continue
            return -1, escaped
        i += 1
    return -1, escaped


@njit(cache=True, inline="always")
def number(b, i, end):
    """JSON's number grammar from ``b[i]``: the index after it, or -1."""
    if i < end and b[i] == 45:
        i += 1
    if i >= end:
        return -1
    if b[i] == 48:
        i += 1
    elif 49 <= b[i] <= 57:
        while i < end and 48 <= b[i] <= 57:
            i += 1
    else:
        return -1
    if i < end and b[i] == 46:
        i += 1
        if i >= end or not (48 <= b[i] <= 57):
            return -1
        while i < end and 48 <= b[i] <= 57:
            i += 1
    if i < end and (b[i] == 101 or b[i] == 69):
        i += 1
        if i < end and (b[i] == 43 or b[i] == 45):
            i += 1
        if i >= end or not (48 <= b[i] <= 57):
            return -1
        while i < end and 48 <= b[i] <= 57:
            i += 1
    return i


@njit(cache=True, inline="always")
def literal(b, i, end, c1, c2, c3, c4):
    """``b[i]`` starts ``null``, ``true`` or ``false`` (its first letter already seen; ``c4``
    0 for four letters): the index after it, or -1."""
    n = 4 if c4 == 0 else 5
    if i + n > end or b[i + 1] != c1 or b[i + 2] != c2 or b[i + 3] != c3 or (c4 != 0 and b[i + 4] != c4):
        return -1
    return i + n


@njit(cache=True, inline="always")
def scalar(b, i, end):
    """A value that is not a container at ``b[i]``: (index after it, kind), or (-1, _)."""
    c = b[i]
    if c == 34:
        j, escaped = string(b, i, end)
        return j, (_OTHER if escaped else _STRING)
    if c == 45 or (48 <= c <= 57):
        return number(b, i, end), _NUMBER
    if c == 110:
        return literal(b, i, end, 117, 108, 108, 0), _NULL  # null
    if c == 116:
        return literal(b, i, end, 114, 117, 101, 0), _OTHER  # true
    if c == 102:
        return literal(b, i, end, 97, 108, 115, 101), _OTHER  # false
    return -1, _OTHER


@njit(cache=True, inline="always")
def after_value(b, i, end, closer):
    """After a value in an object or array: (-1, 0) when the text is not JSON, else the index
    of what comes next and 0 when a comma says another member follows, or 1 when ``closer``
    closed the container (the index then just past it)."""
    i = ws(b, i, end)
    if i >= end:
        return -1, 0
    if b[i] == 44:
        i = ws(b, i + 1, end)
        if i >= end:
            return -1, 0
        return i, 0
    if b[i] == closer:
        return i + 1, 1
    return -1, 0


@njit(cache=True, inline="always")
def member_value(b, i, end):
    """Past an object member's key and colon, at the start of its value (blanks skipped);
    -1 when ``b[i]`` does not start ``"key":`` or the line ends first."""
    if b[i] != 34:
        return -1
    i, _ = string(b, i, end)
    if i < 0:
        return -1
    i = ws(b, i, end)
    if i >= end or b[i] != 58:
        return -1
    i = ws(b, i + 1, end)
    return -1 if i >= end else i


@njit(cache=True)
def value(b, i, end, depth):
    """Any JSON value at ``b[i]`` (``depth`` containers already open): the index after it, or -1."""
    c = b[i]
    if c != 123 and c != 91:
        j, _ = scalar(b, i, end)
        return j
    top = 0  # containers open in this value
    objects = 0  # one bit per open container, the innermost lowest: 1 for an object, 0 for an array
    while True:
        # b[i] opens a container.
        if depth + top + 1 > MAX_DEPTH:
            return -1
        objects = (objects << 1) | (1 if b[i] == 123 else 0)
        top += 1
        i = ws(b, i + 1, end)
        if i >= end:
            return -1
        closer = 125 if (objects & 1) == 1 else 93
        if b[i] == closer:  # empty container
            i += 1
        else:
            opened = False
            while True:
                if (objects & 1) == 1:  # a member: key, colon
                    i = member_value(b, i, end)
                    if i < 0:
                        return -1
                if b[i] == 123 or b[i] == 91:
                    opened = True
                    break
                i, _ = scalar(b, i, end)
                if i < 0:
                    return -1
                i, closed = after_value(b, i, end, closer)
                if i < 0:
                    return -1
                if closed:
                    break
            if opened:
                continue  # descend: b[i] opens the next container
        # A container closed at i; climb while its parent closes too.
        top -= 1
        objects >>= 1
        while True:
            if top == 0:
                return i
            i = ws(b, i, end)
            if i >= end:
                return -1
            closer = 125 if (objects & 1) == 1 else 93
            if b[i] == 44:
                i = ws(b, i + 1, end)
                if i >= end:
                    return -1
                # The next element of the parent: go on reading it.
                if (objects & 1) == 1:
                    i = member_value(b, i, end)
                    if i < 0:
                        return -1
                if b[i] == 123 or b[i] == 91:
                    break  # descend
                i, _ = scalar(b, i, end)
                if i < 0:
                    return -1
                continue  # the same parent: next separator or its end
            if b[i] == closer:
                i += 1
                top -= 1
                objects >>= 1
                continue
            return -1


@njit(cache=True, inline="always")
def same(b, s, e, keys, k0, k1):
    if e - s != k1 - k0:
        return False
    for k in range(e - s):
        if b[s + k] != keys[k0 + k]:
            return False
    return True


@njit(cache=True)
def fee_entry(b, i, end, depth):
    """A fee object at ``b[i]``: (index after it, cost start, end, kind, currency start, end,
    kind); the index is -1 when the object is not JSON, -2 when it must be read elsewhere."""
    cs = ce = ck = us = ue = uk = 0
    i = ws(b, i + 1, end)
    if i >= end:
        return -1, cs, ce, ck, us, ue, uk
    if b[i] == 125:
        return i + 1, cs, ce, ck, us, ue, uk
    while True:
        if b[i] != 34:
            return -1, cs, ce, ck, us, ue, uk
        ks = i + 1
        i, escaped = string(b, i, end)
        if i < 0:
            return -1, cs, ce, ck, us, ue, uk
        if escaped:
            return -2, cs, ce, ck, us, ue, uk
        ke = i - 1
        i = ws(b, i, end)
        if i >= end or b[i] != 58:
            return -1, cs, ce, ck, us, ue, uk
        i = ws(b, i + 1, end)
        if i >= end:
            return -1, cs, ce, ck, us, ue, uk
        # "cost" or "currency"
        is_cost = ke - ks == 4 and b[ks] == 99 and b[ks + 1] == 111 and b[ks + 2] == 115 and b[ks + 3] == 116
        is_currency = (ke - ks == 8 and b[ks] == 99 and b[ks + 1] == 117 and b[ks + 2] == 114 and b[ks + 3] == 114
                       and b[ks + 4] == 101 and b[ks + 5] == 110 and b[ks + 6] == 99 and b[ks + 7] == 121)
        at = i
        c = b[at]
        if c == 123 or c == 91:
            i = value(b, i, end, depth + 1)
            got = _OTHER
        else:
            i, got = scalar(b, i, end)
        if i < 0:
            return -1, cs, ce, ck, us, ue, uk
        if is_cost or is_currency:
            if (ck if is_cost else uk) != _ABSENT or got == _OTHER:
                return -2, cs, ce, ck, us, ue, uk  # the key twice, or not plain text
            s0, s1 = (at + 1, i - 1) if got == _STRING else (at, i)
            if got == _NULL:
                s0, s1 = 0, 0
            if is_cost:
                cs, ce, ck = s0, s1, got
            else:
                us, ue, uk = s0, s1, got
        i = ws(b, i, end)
        if i >= end:
            return -1, cs, ce, ck, us, ue, uk
        if b[i] == 44:
            i = ws(b, i + 1, end)
            if i >= end:
                return -1, cs, ce, ck, us, ue, uk
            continue
        if b[i] == 125:
            return i + 1, cs, ce, ck, us, ue, uk
        return -1, cs, ce, ck, us, ue, uk


@njit(cache=True, inline="always")
def view(b, out32, out8, row, s, e):
    """The Arrow string view of ``b[s:e]`` into row ``row`` of ``out32`` (int32, 4 a row; zeroed)
    and ``out8`` (the same memory as bytes, 16 a row): the length, then the bytes themselves
    when at most 12, else the first 4, the data buffer (:data:`STEP`) and the offset in it."""
    n = e - s
    out32[row, 0] = n
    if n <= 12:
        for k in range(n):
            out8[row, 4 + k] = b[s + k]
    else:
        for k in range(4):
            out8[row, 4 + k] = b[s + k]
        block = s >> STEP_BITS
        out32[row, 2] = block
        out32[row, 3] = s - (block << STEP_BITS)


@njit(cache=True, inline="always")
def key_index(b, ks, ke, keys, koff, table, chain):
    """Which wanted key ``b[ks:ke]`` is (-1 for none): candidates by length and first byte."""
    length = ke - ks
    k = table[min(length, 63) * 256 + (b[ks] if length > 0 else 0)]
    while k >= 0:
        if same(b, ks, ke, keys, koff[k], koff[k + 1]):
            return k
        k = chain[k]
    return -1


@njit(cache=True)
def record(b, i, n, line, keys, koff, table, chain, nfields, required, seen, vs, ve, kind):
    """The object at ``b[i]`` (``{``), a line's one value: the index after it and the blanks
    after it (the line's ``\\n``, or ``n``), or -1 when the line is handed back. Notes each
    wanted value's start, end (``vs``, ``ve``) and kind (``kind[:, line]``)."""
    seen[:] = False
    fee_key, fees_key = nfields, nfields + 1
    fee_s = -1  # where the `fee` value starts (an object), -1 when null or absent
    fees_s = -1  # where the `fees` value starts (an array)
    i = ws(b, i + 1, n)
    if i >= n:
        return -1
    if b[i] == 125:
        i += 1
    else:
        while True:
            if b[i] != 34:
                return -1
            ks = i + 1
            i, escaped = string(b, i, n)
            if i < 0 or escaped:
                return -1
            ke = i - 1
            i = ws(b, i, n)
            if i >= n or b[i] != 58:
                return -1
            i = ws(b, i + 1, n)
            if i >= n:
                return -1
            which = key_index(b, ks, ke, keys, koff, table, chain)
            at = i
            c = b[at]
            if c == 123 or c == 91:
                i = value(b, i, n, 1)
                got = _OTHER
            else:  # a scalar: read once, its kind with it
                i, got = scalar(b, i, n)
            if i < 0:
                return -1
            if which >= 0:
                if seen[which]:
                    return -1
                seen[which] = True
                if which == fee_key:
                    if c == 123:
                        fee_s = at
                    elif got != _NULL:
                        return -1
                elif which == fees_key:
                    if c == 91:
                        fees_s = at
                    elif got != _NULL:
                        return -1
                elif got == _STRING:
                    vs[which], ve[which], kind[which, line] = at + 1, i - 1, _STRING
                elif got == _NULL:
                    kind[which, line] = _NULL
                elif got == _NUMBER:
                    vs[which], ve[which], kind[which, line] = at, i, _NUMBER
                else:
                    return -1
            i, closed = after_value(b, i, n, 125)
            if i < 0:
                return -1
            if closed:
                break
    i = ws(b, i, n)
    if i < n and b[i] != 10:
        return -1
    for k in range(nfields):
        if required[k] and not seen[k]:
            return -1
    # The fee: `fees` entries when non-empty, else `fee`; at most one with a cost.
    charged = 0
    entries = 0
    if fees_s >= 0:
        j = ws(b, fees_s + 1, n)
        if b[j] != 93:
            while True:
                if b[j] != 123:
                    return -1  # an entry that is not an object
                j, f0, f1, f2, f3, f4, f5 = fee_entry(b, j, n, 2)
                if j < 0:
                    return -1
                entries += 1
                if f2 == _STRING or f2 == _NUMBER:
                    charged += 1
                    vs[nfields], ve[nfields], kind[nfields, line] = f0, f1, f2
                    vs[nfields + 1], ve[nfields + 1], kind[nfields + 1, line] = f3, f4, f5
                j = ws(b, j, n)
                if b[j] == 44:
                    j = ws(b, j + 1, n)
                    continue
                break
    if entries == 0 and fee_s >= 0:
        j, f0, f1, f2, f3, f4, f5 = fee_entry(b, fee_s, n, 1)
        if j < 0:
            return -1
        if f2 == _STRING or f2 == _NUMBER:
            charged += 1
            vs[nfields], ve[nfields], kind[nfields, line] = f0, f1, f2
            vs[nfields + 1], ve[nfields + 1], kind[nfields + 1, line] = f3, f4, f5
    if charged > 1:
        return -1
    if charged == 0:
        kind[nfields, line] = _ABSENT
        kind[nfields + 1, line] = _ABSENT
    return i


@njit(cache=True, inline="always")
def plain_decimal(b, s, e):
    """``b[s:e]`` as ``-?D+(.D+)?`` with at most 18 digits before the point and 18 after:
    (True, integer part, fraction in units of 1e-18), both signed; else (False, 0, 0), for
    Polars' reading of the text (exponents, more digits, anything else)."""
    i = s
    negative = i < e and b[i] == 45
    if negative:
        i += 1
    i, whole, digits = digit_run(b, i, e)
    if digits == 0 or digits > 18:
        return False, 0, 0
    fraction = 0
    places = 0
    if i < e and b[i] == 46:
        i, fraction, places = digit_run(b, i + 1, e)
        if places == 0 or places > 18:
            return False, 0, 0
    if i != e:
        return False, 0, 0
    fraction *= _POW10[18 - places]
    if negative:
        return True, -whole, -fraction
    return True, whole, fraction


@njit(cache=True, nogil=True)
def scan(b, pos, line0, nlines, keys, koff, table, chain, nfields, required, status, line_start, line_end, line32, line8,
         views32, views8, kind, slots, whole, fraction, exact, count_field, counted, count):
    """Lines ``line0`` to ``line0 + nlines`` of ``b``, the first starting at byte ``pos``: per
    line its status, start, end and view (``\\r`` stripped), and per wanted field (``nfields``
    text fields, then fee cost and currency) the value's view and kind; written into the
    arrays given (the caller's, zeroed, ``status`` filled with _BACK), so that parts of a file
    can be read at once by several threads. Lines of :data:`STEP` bytes or more are handed
    back. Fields with a slot (``slots[k] >= 0``) are numbers: where the text is a plain
    decimal (:func:`plain_decimal`), ``exact[slot, line]`` is set and ``whole``,
    ``fraction`` hold its value. Where field ``count_field`` is 1 to 15 ASCII digits (a
    time in ms), ``counted[line]`` is set and ``count[line]`` holds it. Each line is read in one pass: blanks never include ``\\n``, so a line's value ends
    at its ``\\n`` or is refused there; only a line handed back is walked again to find its end."""
    nkeys = nfields + 2
    seen = np.zeros(nkeys, dtype=np.bool_)
    vs = np.zeros(nkeys, dtype=np.int64)
    ve = np.zeros(nkeys, dtype=np.int64)
    n = len(b)
    for line in range(line0, line0 + nlines):
        start = pos
        i = ws(b, start, n)
        blank = i >= n or b[i] == 10
        j = -1
        if not blank and b[i] == 123:
            j = record(b, i, n, line, keys, koff, table, chain, nfields, required, seen, vs, ve, kind)
        e = j if j >= 0 else i
        while e < n and b[e] != 10:
            e += 1
        end = e
        while end > start and b[end - 1] == 13:
            end -= 1
        pos = e + 1
        line_start[line] = start
        line_end[line] = end
        if end - start >= STEP:
            continue
        view(b, line32, line8, line, start, end)
        if blank:
            status[line] = _BLANK
            continue
        if j < 0:
            continue
        for k in range(nkeys):
            if kind[k, line] == _STRING or kind[k, line] == _NUMBER:
                view(b, views32[k], views8[k], line, vs[k], ve[k])
                slot = slots[k]
                if slot >= 0:
                    ok, w, f = plain_decimal(b, vs[k], ve[k])
                    if ok:
                        exact[slot, line], whole[slot, line], fraction[slot, line] = True, w, f
                if k == count_field and 1 <= ve[k] - vs[k] <= 15:
                    value = 0
                    digits = True
                    for i in range(vs[k], ve[k]):
                        if not 48 <= b[i] <= 57:
                            digits = False
                            break
                        value = value * 10 + (b[i] - 48)
                    if digits:
                        counted[line], count[line] = True, value
        status[line] = _READ


_NL = np.uint64(0x0A0A0A0A0A0A0A0A)
_LOW7 = np.uint64(0x7F7F7F7F7F7F7F7F)
_HIGH = np.uint64(0x8080808080808080)
_ONES = np.uint64(0x0101010101010101)
_S7, _S56 = np.uint64(7), np.uint64(56)


@njit(cache=True, nogil=True)
def newlines(b, words, lo, hi):
    """How many ``\\n`` bytes ``b[lo:hi]`` holds; ``words`` is ``b`` as uint64, 8 bytes at a
    time: a byte of ``x ^ 0x0A..`` is zero where ``x`` has a newline, and the bit trick sets
    the high bit of each non-zero byte (no carry crosses bytes)."""
    count = 0
    first, last = min((lo + 7) // 8, hi // 8), hi // 8
    for i in range(lo, min(first * 8, hi)):
        count += b[i] == 10
    nonzero = uint64(0)
    for k in range(first, last):
        t = words[k] ^ _NL
        y = (((t & _LOW7) + _LOW7) | t) & _HIGH
        nonzero += ((y >> _S7) * _ONES) >> _S56
    count += 8 * (last - first) - nonzero
    for i in range(max(last * 8, lo), hi):
        count += b[i] == 10
    return count
