"""The compiled kernels of :mod:`utl.venues.json_scan` (numba, cached on disk); imported on
first use, as loading numba takes a second."""

from __future__ import annotations

import numpy as np
from numba import njit

MAX_DEPTH = 64

# Line status.
_READ, _BLANK, _BACK = 0, 1, 2
# Value kinds.
_ABSENT, _NULL, _STRING, _NUMBER, _OTHER = 0, 1, 2, 3, 4


@njit(cache=True, inline="always")
def ws(b, i, end):
    while i < end and (b[i] == 32 or b[i] == 9 or b[i] == 13 or b[i] == 10):
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
                i = ws(b, i, end)
                if i >= end:
                    return -1
                if b[i] == 44:
                    i = ws(b, i + 1, end)
                    if i >= end:
                        return -1
                    continue
                if b[i] == closer:
                    i += 1
                    break
                return -1
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


@njit(cache=True)
def scan(b, nlines, keys, koff, nfields, required):
    """Per line: status, start, end (``\\r`` stripped), and per wanted field
    (``nfields`` text fields, then fee cost and currency) value start, end and kind."""
    status = np.full(nlines, _BACK, dtype=np.int8)
    line_start = np.zeros(nlines, dtype=np.int64)
    line_end = np.zeros(nlines, dtype=np.int64)
    width = nfields + 2
    # One row per field: each field's column is contiguous.
    vs = np.zeros((width, nlines), dtype=np.int64)
    ve = np.zeros((width, nlines), dtype=np.int64)
    kind = np.zeros((width, nlines), dtype=np.int8)
    seen = np.zeros(nfields + 2, dtype=np.bool_)
    fee_key, fees_key = nfields, nfields + 1
    nkeys = nfields + 2
    n = len(b)
    pos = 0
    for line in range(nlines):
        e = pos
        while e < n and b[e] != 10:
            e += 1
        end = e
        while end > pos and b[end - 1] == 13:
            end -= 1
        line_start[line] = pos
        line_end[line] = end
        start = pos
        pos = e + 1
        i = ws(b, start, end)
        if i >= end:
            status[line] = _BLANK
            continue
        if b[i] != 123:
            continue
        i = ws(b, i + 1, end)
        if i >= end:
            continue
        seen[:] = False
        fee_s = -1  # where the `fee` value starts (an object), -1 when null or absent
        fees_s = -1  # where the `fees` value starts (an array)
        ok = True
        if b[i] == 125:
            i += 1
        else:
            while True:
                if b[i] != 34:
                    ok = False
                    break
                ks = i + 1
                i, escaped = string(b, i, end)
                if i < 0 or escaped:
                    ok = False
                    break
                ke = i - 1
                i = ws(b, i, end)
                if i >= end or b[i] != 58:
                    ok = False
                    break
                i = ws(b, i + 1, end)
                if i >= end:
                    ok = False
                    break
                which = -1
                for k in range(nkeys):
                    if same(b, ks, ke, keys, koff[k], koff[k + 1]):
                        which = k
                        break
                at = i
                c = b[at]
                if c == 123 or c == 91:
                    i = value(b, i, end, 1)
                    got = _OTHER
                else:  # a scalar: read once, its kind with it
                    i, got = scalar(b, i, end)
                if i < 0:
                    ok = False
                    break
                if which >= 0:
                    if seen[which]:
                        ok = False
                        break
                    seen[which] = True
                    if which == fee_key:
                        if c == 123:
                            fee_s = at
                        elif got != _NULL:
                            ok = False
                            break
                    elif which == fees_key:
                        if c == 91:
                            fees_s = at
                        elif got != _NULL:
                            ok = False
                            break
                    elif got == _STRING:
                        vs[which, line], ve[which, line], kind[which, line] = at + 1, i - 1, _STRING
                    elif got == _NULL:
                        kind[which, line] = _NULL
                    elif got == _NUMBER:
                        vs[which, line], ve[which, line], kind[which, line] = at, i, _NUMBER
                    else:
                        ok = False
                        break
                i = ws(b, i, end)
                if i >= end:
                    ok = False
                    break
                if b[i] == 44:
                    i = ws(b, i + 1, end)
                    if i >= end:
                        ok = False
                        break
                    continue
                if b[i] == 125:
                    i += 1
                    break
                ok = False
                break
        if not ok or ws(b, i, end) != end:
            continue
        for k in range(nfields):
            if required[k] and not seen[k]:
                ok = False
        if not ok:
            continue
        # The fee: `fees` entries when non-empty, else `fee`; at most one with a cost.
        charged = 0
        entries = 0
        if fees_s >= 0:
            j = ws(b, fees_s + 1, end)
            if b[j] != 93:
                while True:
                    if b[j] != 123:
                        ok = False  # an entry that is not an object
                        break
                    j, f0, f1, f2, f3, f4, f5 = fee_entry(b, j, end, 2)
                    if j < 0:
                        ok = False
                        break
                    entries += 1
                    if f2 == _STRING or f2 == _NUMBER:
                        charged += 1
                        vs[nfields, line], ve[nfields, line], kind[nfields, line] = f0, f1, f2
                        vs[nfields + 1, line], ve[nfields + 1, line], kind[nfields + 1, line] = f3, f4, f5
                    j = ws(b, j, end)
                    if b[j] == 44:
                        j = ws(b, j + 1, end)
                        continue
                    break
        if ok and entries == 0 and fee_s >= 0:
            j, f0, f1, f2, f3, f4, f5 = fee_entry(b, fee_s, end, 1)
            if j < 0:
                ok = False
            elif f2 == _STRING or f2 == _NUMBER:
                charged += 1
                vs[nfields, line], ve[nfields, line], kind[nfields, line] = f0, f1, f2
                vs[nfields + 1, line], ve[nfields + 1, line], kind[nfields + 1, line] = f3, f4, f5
        if not ok or charged > 1:
            continue
        if charged == 0:
            kind[nfields, line] = _ABSENT
            kind[nfields + 1, line] = _ABSENT
        status[line] = _READ
    return status, line_start, line_end, vs, ve, kind


@njit(cache=True)
def gather(b, starts, ends, take):
    """The bytes of ``b[starts[k]:ends[k]]`` for rows where ``take``, back to back, and
    Arrow offsets (rows not taken are empty)."""
    n = len(starts)
    offsets = np.zeros(n + 1, dtype=np.int64)
    total = 0
    for k in range(n):
        if take[k]:
            total += ends[k] - starts[k]
        offsets[k + 1] = total
    data = np.empty(total, dtype=np.uint8)
    at = 0
    for k in range(n):
        if take[k]:
            for p in range(starts[k], ends[k]):
                data[at] = b[p]
                at += 1
    return data, offsets
