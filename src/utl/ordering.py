"""Compiled helpers for putting trades in application order and checking their ids.

Trades apply by (book, asset), then ``ts``, then input order. With the (book, asset) group
code and the time packed into one unsigned 64-bit key, a stable least-significant-digit
radix sort (digits of equal width, at most 16 bits a pass, passes over constant digits skipped) gives that order in a few
linear passes, where a comparison sort of 2 M keys costs several times more.

Id uniqueness is first decided on 64-bit hashes: if no two rows share a hash, no two share
an id. A shared hash (a real duplicate, or a collision) only means the exact check runs.
"""

from __future__ import annotations

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


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """The stable ascending order of non-negative ``int64`` keys (equal keys keep their
    input order)."""
    if len(keys) == 0:
        return np.empty(0, np.int64)
    bits = int(keys.max()).bit_length()
    return _radix_argsort(np.ascontiguousarray(keys, dtype=np.int64).view(np.uint64), bits)


@njit(cache=True, nogil=True)
def _any_repeated(first, second):
    n = first.shape[0]
    size = 1
    while size < n + n // 2 + 1:
        size *= 2
    table = np.zeros(size, np.uint64)  # 0 marks an empty slot; a hash of 0 counts as 1
    mask = np.uint64(size - 1)
    for i in range(n):
        v = first[i] * np.uint64(0x9E3779B97F4A7C15) ^ second[i]
        if v == np.uint64(0):
            v = np.uint64(1)
        s = (v ^ (v >> np.uint64(29))) & mask
        while table[s] != np.uint64(0):
            if table[s] == v:
                return True
            s = (s + np.uint64(1)) & mask
        table[s] = v
    return False


def hashes_repeat(first: np.ndarray, second: np.ndarray) -> bool:
    """Whether two rows share the combined hash of (``first``, ``second``) (``uint64``
    hashes of two columns): False proves every (first, second) pair distinct."""
    return bool(_any_repeated(first, second)) if len(first) else False
