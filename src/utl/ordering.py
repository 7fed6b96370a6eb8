"""Compiled helpers for putting trades in application order and checking their ids.

Trades apply by (book, asset), then ``ts``, then input order. With the (book, asset) group
code and the time packed into one unsigned 64-bit key, a stable least-significant-digit
radix sort (digits of equal width, at most 16 bits a pass, passes over constant digits skipped) gives that order in a few
linear passes, where a comparison sort of 2 M keys costs several times more.

Id uniqueness is first decided on 64-bit hashes: if no two rows share a hash, no two share
an id. A shared hash (a real duplicate, or a collision) only means the exact check runs.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numba import njit

@njit(cache=True, nogil=True)
def _radix_argsort(keys, bits):
    n = keys.shape[0]
    passes = (bits + 15) // 16
    # Digits of equal width (at most 16 bits): 50 bits sort in 4 passes of 13 bits, whose
    # 8,192 counters and write heads stay in the cache better than 65,536 would.
    width = (bits + passes - 1) // passes if passes else 1
    mask = np.uint64((1 << width) - 1)
    idx = np.arange(n)
    cur = keys.copy()
    idx_tmp = np.empty(n, np.int64)
    cur_tmp = np.empty(n, np.uint64)
    counts = np.zeros((1 << width) + 1, np.int64)
    for p in range(passes):
        s = np.uint64(p * width)
        counts[:] = 0
        for i in range(n):
            counts[((cur[i] >> s) & mask) + np.uint64(1)] += 1
        if counts.max() < n:  # every key has the same digit here: nothing to move
            for d in range(1 << width):
                counts[d + 1] += counts[d]
            for i in range(n):
                d = (cur[i] >> s) & mask
                at = counts[d]
                counts[d] = at + 1
                idx_tmp[at] = idx[i]
                cur_tmp[at] = cur[i]
            idx, idx_tmp = idx_tmp, idx
            cur, cur_tmp = cur_tmp, cur
    return idx


def fixed(values: np.ndarray, dtype) -> np.ndarray:
    """``values`` as a contiguous, read-only array of ``dtype`` (a view when it already is
    one). Numba compiles, caches and loads a kernel once per argument type, and an array's
    write flag is part of its type: arrays from Polars are read-only or not depending on
    how their column was chunked, so fixing the flag keeps every call on the one loaded
    kernel."""
    values = np.ascontiguousarray(values, dtype=dtype).view()
    values.flags.writeable = False
    return values


@njit(cache=True, nogil=True)
def _taken(values, rows, out):
    for i in range(rows.shape[0]):
        out[i] = values[rows[i]]
    return out


def take(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``values[rows]`` for ``int64`` values (e.g. a column put in application order): a
    compiled loop, two to five times cheaper than numpy's fancy indexing on millions of
    shuffled rows here. ``rows`` must lie within ``values`` (unchecked, as the costing's
    own permutations do)."""
    values = fixed(values, np.int64)
    return _taken(values, fixed(rows, rows.dtype), np.empty(len(rows), np.int64))


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """The stable ascending order of non-negative ``int64`` keys (equal keys keep their
    input order)."""
    if len(keys) == 0:
        return np.empty(0, np.int64)
    bits = int(keys.max()).bit_length()
    return _radix_argsort(np.ascontiguousarray(keys, dtype=np.int64).view(np.uint64), bits)


def _fingerprint_table(n: int) -> np.ndarray:
    size = 1
    while size < n + n // 2 + 1:
        size *= 2
    return np.zeros(size, np.uint32)  # 0 marks an empty slot; a fingerprint of 0 counts as 1


@njit(cache=True, nogil=True)
def _any_repeated(first, second, table):
    # Open addressing over 32-bit fingerprints: a slot from the combined hash's low bits,
    # the fingerprint its high 32. Half the memory of a table of whole hashes (16 MB for
    # 2 M rows, every page of it fresh) and ~2.5x faster here; the price is a rare false
    # repeat (two hashes whose fingerprints meet in one probe chain, ~1 call in 1,000 at
    # 2 M rows), which only sends the rows to the exact check. A true repeat always meets.
    mask = np.uint64(table.shape[0] - 1)
    for i in range(first.shape[0]):
        v = first[i] * np.uint64(0x9E3779B97F4A7C15) ^ second[i]
        f = np.uint32(v >> np.uint64(32))
        if f == np.uint32(0):
            f = np.uint32(1)
        s = (v ^ (v >> np.uint64(29))) & mask
        while table[s] != np.uint32(0):
            if table[s] == f:
                return True
            s = (s + np.uint64(1)) & mask
        table[s] = f
    return False


def hashes_repeat(first: np.ndarray, second: np.ndarray | Iterable[np.ndarray]) -> bool:
    """Whether two rows may share (``first``, ``second``) (``second`` a ``uint64`` hash of a
    column, or that column's hashes as consecutive slices; ``first`` another hash or an
    unsigned code): False proves every pair distinct; True is a real repeat, or rarely a
    fingerprint collision, for the exact check to tell."""
    if len(first) == 0:
        return False
    first = fixed(first, first.dtype)
    table = _fingerprint_table(len(first))
    at = 0
    for part in ([second] if isinstance(second, np.ndarray) else second):
        if _any_repeated(first[at:at + len(part)], fixed(part, np.uint64), table):
            return True
        at += len(part)
    return False


@njit(cache=True, nogil=True)
def _dense_pairs(first, second, direct, width, out):
    """Dense codes 0..k-1 for the pairs (``first[i]``, ``second[i]``) of two ``uint32``
    columns, in order of first appearance, written to ``out`` (int32 where the rows are
    fewer than 2**31: half the memory, at the costing's peak). With ``direct`` (a table of one slot per
    possible pair, -1 filled, ``width`` slots per value of ``first``) a pair is looked up
    by its own value; otherwise through an
    open-addressing table that grows as pairs appear. Either stays in the cache for the
    few thousand (book, asset) pairs of a day."""
    n = first.shape[0]
    k = 0
    if direct.shape[0] > 0:
        for i in range(n):
            at = np.int64(first[i]) * width + np.int64(second[i])
            c = direct[at]
            if c < 0:
                c = k
                direct[at] = k
                k += 1
            out[i] = c
        return out, k
    size = 1024
    keys = np.empty(size, np.uint64)
    codes = np.full(size, -1, np.int64)
    shift = np.uint64(64 - 10)
    for i in range(n):
        key = (np.uint64(first[i]) << np.uint64(32)) | np.uint64(second[i])
        s = (key * np.uint64(0x9E3779B97F4A7C15)) >> shift
        while codes[s] >= 0 and keys[s] != key:
            s = (s + np.uint64(1)) & np.uint64(size - 1)
        if codes[s] < 0:
            keys[s] = key
            codes[s] = k
            k += 1
            if 2 * k > size:  # keep the table at most half full: rehash into twice the slots
                old_keys = keys
                old_codes = codes
                size *= 2
                shift -= np.uint64(1)
                keys = np.empty(size, np.uint64)
                codes = np.full(size, -1, np.int64)
                for j in range(old_codes.shape[0]):
                    if old_codes[j] >= 0:
                        t = (old_keys[j] * np.uint64(0x9E3779B97F4A7C15)) >> shift
                        while codes[t] >= 0:
                            t = (t + np.uint64(1)) & np.uint64(size - 1)
                        keys[t] = old_keys[j]
                        codes[t] = old_codes[j]
            out[i] = k - 1
        else:
            out[i] = codes[s]
    return out, k


@njit(cache=True, nogil=True)
def _group_time_order(code, t, n_groups, order):
    """Rows in application order, written to ``order``: by group code, then ``t``, then
    row (stable).

    One counting pass puts the rows, with their times, in their group's bucket (in row
    order); each group is then put in time order on its own by a least-significant-digit
    radix sort of digits of at most 11 bits over the bits its times span (counters small
    enough to stay in the cache), skipping digits all its times share (a group already in time order, as trades usually come, is only read). A
    sort of the whole column on one (group, time) key would move every row several times
    through memory instead."""
    n = code.shape[0]
    starts = np.zeros(n_groups + 1, np.int64)
    for i in range(n):
        starts[code[i] + 1] += 1
    largest = 0
    for g in range(n_groups):
        if starts[g + 1] > largest:
            largest = starts[g + 1]
        starts[g + 1] += starts[g]
    head = starts[:-1].copy()
    times = np.empty(n, np.int64)
    for i in range(n):
        g = code[i]
        at = head[g]
        order[at] = i
        times[at] = t[i]
        head[g] = at + 1
    rows_tmp = np.empty_like(order[:largest])
    keys = np.empty(largest, np.uint64)
    keys_tmp = np.empty(largest, np.uint64)
    counts = np.zeros((6, (1 << 11) + 1), np.int64)
    for g in range(n_groups):
        a = starts[g]
        m = starts[g + 1] - a
        in_order = True
        low = times[a] if m > 0 else 0
        high = low
        for j in range(1, m):
            v = times[a + j]
            if v < times[a + j - 1]:
                in_order = False
            if v < low:
                low = v
            if v > high:
                high = v
        if in_order:
            continue
        # Digits of equal width, at most 11 bits, over the bits the group's times span:
        # ~39 bits of a day's microseconds sort in 4 passes of 10 bits.
        bits = 0
        span = np.uint64(high - low)
        while span > np.uint64(0):
            bits += 1
            span >>= np.uint64(1)
        passes = (bits + 10) // 11
        width = (bits + passes - 1) // passes
        mask = np.uint64((1 << width) - 1)
        counts[:passes, :(1 << width) + 1] = 0
        for j in range(m):
            k = np.uint64(times[a + j] - low)
            keys[j] = k
            for p in range(passes):
                counts[p, ((k >> np.uint64(width * p)) & mask) + np.uint64(1)] += 1
        rows = order[a:a + m]
        src_k = keys
        src_r = rows
        dst_k = keys_tmp
        dst_r = rows_tmp
        moves = 0
        for p in range(passes):
            if counts[p, 1:(1 << width) + 1].max() == m:  # one digit for every time: nothing to move
                continue
            for d in range(1 << width):
                counts[p, d + 1] += counts[p, d]
            s = np.uint64(width * p)
            for j in range(m):
                d = (src_k[j] >> s) & mask
                at = counts[p, d]
                counts[p, d] = at + 1
                dst_k[at] = src_k[j]
                dst_r[at] = src_r[j]
            src_k, dst_k = dst_k, src_k
            src_r, dst_r = dst_r, src_r
            moves += 1
        if moves % 2 == 1:  # the sorted rows are in the scratch copy
            for j in range(m):
                rows[j] = src_r[j]
    return order, starts


def group_time_order(first: np.ndarray, second: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Application order of rows keyed by two ``uint32`` codes (e.g. the categorical codes
    of book and asset) and an ``int64`` time: ``(order, group)``, where ``order`` sorts by
    (pair, time, row) with pairs numbered by first appearance, and ``group[i]`` is the pair
    number of row ``order[i]`` (non-decreasing). Both are ``int32`` below 2**31 rows."""
    if len(first) == 0:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    # A table of one slot per possible pair when that is small (codes of a few hundred
    # books and assets), else hashing.
    width = int(second.max()) + 1
    slots = (int(first.max()) + 1) * width
    direct = np.full(slots, -1, np.int64) if slots <= 1 << 20 else np.empty(0, np.int64)
    # Codes and row numbers as int32 (half the memory of int64 at the costing's peak) while they fit.
    rows = np.int32 if len(first) < 2**31 else np.int64
    code, n_groups = _dense_pairs(fixed(first, np.uint32), fixed(second, np.uint32), direct, np.int64(width),
                                  np.empty(len(first), rows))
    order = np.empty(len(first), rows)
    order, starts = _group_time_order(code, fixed(t, np.int64), n_groups, order)
    del code  # before the group numbers are made
    # Group numbers as int32 (half the memory of int64 at the kernels' peak) while they fit.
    group = np.repeat(np.arange(n_groups, dtype=np.int32 if n_groups < 2**31 else np.int64), np.diff(starts))
    return order, group
