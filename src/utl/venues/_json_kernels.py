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
def literal(b, i, end, word):
    n = len(word)
    if i + n > end:
        return -1
    for k in range(n):
        if b[i + k] != word[k]:
            return -1
    return i + n


TRUE = np.frombuffer(b"true", dtype=np.uint8)
FALSE = np.frombuffer(b"false", dtype=np.uint8)
NULL = np.frombuffer(b"null", dtype=np.uint8)


@njit(cache=True, inline="always")
def scalar(b, i, end, true, false, null):
    """A value that is not a container at ``b[i]``: (index after it, kind), or (-1, _)."""
    c = b[i]
    if c == 34:
        j, escaped = string(b, i, end)
        return j, (_OTHER if escaped else _STRING)
    if c == 45 or (48 <= c <= 57):
        return number(b, i, end), _NUMBER
    if c == 110:
        return literal(b, i, end, null), _NULL
    if c == 116:
        return literal(b, i, end, true), _OTHER
    if c == 102:
        return literal(b, i, end, false), _OTHER
    return -1, _OTHER


@njit(cache=True)
def value(b, i, end, depth, stack, true, false, null):
    """Any JSON value at ``b[i]`` (``depth`` containers already open): the index after it, or -1."""
    c = b[i]
    if c != 123 and c != 91:
        j, _ = scalar(b, i, end, true, false, null)
        return j
    top = 0
    while True:
        # b[i] opens a container.
        if depth + top + 1 > MAX_DEPTH:
            return -1
        stack[top] = b[i]
        top += 1
        i = ws(b, i + 1, end)
        if i >= end:
            return -1
        closer = 125 if stack[top - 1] == 123 else 93
        if b[i] == closer:  # empty container
            i += 1
        else:
            opened = False
            while True:
                if stack[top - 1] == 123:  # a member: key, colon
                    if b[i] != 34:
                        return -1
                    i, _ = string(b, i, end)
                    if i < 0:
                        return -1
                    i = ws(b, i, end)
                    if i >= end or b[i] != 58:
                        return -1
                    i = ws(b, i + 1, end)
                    if i >= end:
                        return -1
                if b[i] == 123 or b[i] == 91:
                    opened = True
                    break
                i, _ = scalar(b, i, end, true, false, null)
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
        while True:
            if top == 0:
                return i
            i = ws(b, i, end)
            if i >= end:
                return -1
            closer = 125 if stack[top - 1] == 123 else 93
            if b[i] == 44:
                i = ws(b, i + 1, end)
                if i >= end:
                    return -1
                # The next element of the parent: go on reading it.
                if stack[top - 1] == 123:
                    if b[i] != 34:
                        return -1
                    i, _ = string(b, i, end)
                    if i < 0:
                        return -1
                    i = ws(b, i, end)
                    if i >= end or b[i] != 58:
                        return -1
                    i = ws(b, i + 1, end)
                    if i >= end:
                        return -1
                if b[i] == 123 or b[i] == 91:
                    break  # descend
                i, _ = scalar(b, i, end, true, false, null)
                if i < 0:
                    return -1
                continue  # the same parent: next separator or its end
            if b[i] == closer:
                i += 1
                top -= 1
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
def fee_entry(b, i, end, depth, stack, true, false, null, keys, koff, cost_key, currency_key, out):
    """A fee object at ``b[i]``: the index after it, or -1 (or -2: read it elsewhere).
    ``out`` receives (cost start, cost end, cost kind, currency start, currency end, kind)."""
    for k in range(6):
        out[k] = 0
    i = ws(b, i + 1, end)
    if i >= end:
        return -1
    if b[i] == 125:
        return i + 1
    while True:
        if b[i] != 34:
            return -1
        ks = i + 1
        i, escaped = string(b, i, end)
        if i < 0:
            return -1
        if escaped:
            return -2
        ke = i - 1
        i = ws(b, i, end)
        if i >= end or b[i] != 58:
            return -1
        i = ws(b, i + 1, end)
        if i >= end:
            return -1
        slot = -1
        if same(b, ks, ke, keys, koff[cost_key], koff[cost_key + 1]):
            slot = 0
        elif same(b, ks, ke, keys, koff[currency_key], koff[currency_key + 1]):
            slot = 3
        vs = i
        i = value(b, i, end, depth + 1, stack, true, false, null)
        if i < 0:
            return -1
        if slot >= 0:
            if out[slot + 2] != _ABSENT:
                return -2  # the key twice
            c = b[vs]
            if c == 34:
                _, escaped = string(b, vs, end)
                if escaped:
                    return -2
                out[slot], out[slot + 1], out[slot + 2] = vs + 1, i - 1, _STRING
            elif c == 110:
                out[slot + 2] = _NULL
            elif c == 45 or (48 <= c <= 57):
                out[slot], out[slot + 1], out[slot + 2] = vs, i, _NUMBER
            else:
                return -2
        i = ws(b, i, end)
        if i >= end:
            return -1
        if b[i] == 44:
            i = ws(b, i + 1, end)
            if i >= end:
                return -1
            continue
        if b[i] == 125:
            return i + 1
        return -1


@njit(cache=True)
def scan(b, nlines, keys, koff, nfields, required, true, false, null):
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
    stack = np.zeros(MAX_DEPTH + 1, dtype=np.uint8)
    fee = np.zeros(6, dtype=np.int64)
    seen = np.zeros(nfields + 2, dtype=np.bool_)
    fee_key, fees_key, cost_key, currency_key = nfields, nfields + 1, nfields + 2, nfields + 3
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
                    i = value(b, i, end, 1, stack, true, false, null)
                    got = _OTHER
                else:  # a scalar: read once, its kind with it
                    i, got = scalar(b, i, end, true, false, null)
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
                    j = fee_entry(b, j, end, 2, stack, true, false, null, keys, koff, cost_key, currency_key, fee)
                    if j < 0:
                        ok = False
                        break
                    entries += 1
                    if fee[2] == _STRING or fee[2] == _NUMBER:
                        charged += 1
                        vs[nfields, line], ve[nfields, line], kind[nfields, line] = fee[0], fee[1], fee[2]
                        vs[nfields + 1, line], ve[nfields + 1, line], kind[nfields + 1, line] = fee[3], fee[4], fee[5]
                    j = ws(b, j, end)
                    if b[j] == 44:
                        j = ws(b, j + 1, end)
                        continue
                    break
        if ok and entries == 0 and fee_s >= 0:
            j = fee_entry(b, fee_s, end, 1, stack, true, false, null, keys, koff, cost_key, currency_key, fee)
            if j < 0:
                ok = False
            elif fee[2] == _STRING or fee[2] == _NUMBER:
                charged += 1
                vs[nfields, line], ve[nfields, line], kind[nfields, line] = fee[0], fee[1], fee[2]
                vs[nfields + 1, line], ve[nfields + 1, line], kind[nfields + 1, line] = fee[3], fee[4], fee[5]
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
