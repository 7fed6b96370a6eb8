"""Decimals as scaled integers, without passing through Python objects or floats.

A Polars ``Decimal(38, 18)`` is stored as a 128-bit two's-complement integer: the value
times 10**18. Arrow's ``decimal128`` uses the same 16 bytes (low word first), so a column's
raw integers are read and written here as pairs of ``uint64`` *words* (``words[i] = (low,
high)``) straight from and into Arrow buffers: no Python ``Decimal``, no Polars ``Int128``
arithmetic (which wraps silently), nothing rounded.

:func:`to_int64` then finds the scale at which a column is a whole number of units and,
when every value fits ``int64`` there, returns those integers: the form the costing kernels
run on. Every step checks its range: a value that does not fit is reported (``ok`` false)
and the caller takes its exact wide path; nothing ever wraps.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from numba import njit

from utl.arrow_c import decimal_from_words, decimal_words_of_chunk  # noqa: F401 - decimal_from_words is used from here
from utl.decimals import DECIMAL, SCALE

_ONE = np.uint64(1)
_ZERO = np.uint64(0)
_M21 = np.uint64((1 << 21) - 1)
_HALF64 = np.uint64(2**63)


def decimal_words(values: pl.Series) -> np.ndarray:
    """The raw 128-bit integers (value x 10**18) of a ``Decimal(38, 18)`` series as an
    ``(n, 2)`` array of ``uint64`` (low, high), read-only; nulls read as whatever the buffer
    holds, so callers check nulls first."""
    values = values.cast(DECIMAL)
    return decimal_words_of_chunk(values.rechunk() if values.n_chunks() > 1 else values)


def decimal_word_chunks(values: pl.Series) -> list[np.ndarray]:
    """:func:`decimal_words` of each chunk of ``values``, read in place: a column read from
    a file comes in many chunks, and making it whole first would copy all of it (memory
    Polars and Arrow then keep for a while)."""
    values = values.cast(DECIMAL)
    return [decimal_words(chunk) for chunk in values.get_chunks()] if values.n_chunks() > 1 else [decimal_words(values)]


def _chunks(words: np.ndarray | list[np.ndarray]) -> list[np.ndarray]:
    return [words] if isinstance(words, np.ndarray) else list(words)


# ---------------------------------------------------------------------------------------
# 128-bit helpers on (high, low) pairs of uint64
# ---------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def magnitude(hi, lo):
    """|x| of a two's-complement 128-bit value, and whether it was negative."""
    if hi >= _HALF64:
        lo = ~lo + _ONE
        hi = ~hi + (_ONE if lo == _ZERO else _ZERO)
        return hi, lo, True
    return hi, lo, False


@njit(cache=True, nogil=True)
def signed_words(hi, lo, negative):
    """(low, high) words of the two's complement of a magnitude (negated when asked)."""
    if negative and (hi != _ZERO or lo != _ZERO):
        lo = ~lo + _ONE
        hi = ~hi + (_ONE if lo == _ZERO else _ZERO)
    return lo, hi


@njit(cache=True, nogil=True)
def divmod_pow10(h, l, k):
    """(h, l) // 10**k and the remainder, for 0 <= k <= 18, in a few native divisions.

    10**k = 2**k * 5**k: shift out the k low bits, then divide by 5**k (< 2**42) in base
    2**21, where a remainder times 2**21 plus a digit still fits 64 bits.
    """
    if k == 0:
        return h, l, _ZERO
    uk = np.uint64(k)
    low = l & ((_ONE << uk) - _ONE)
    sl = (l >> uk) | (h << (np.uint64(64) - uk))
    sh = h >> uk
    five = np.uint64(5) ** uk
    qh = _ZERO
    ql = _ZERO
    r = _ZERO
    for p in (126, 105, 84, 63, 42, 21, 0):
        if p >= 64:
            digit = (sh >> np.uint64(p - 64)) & _M21
        elif p + 21 <= 64:
            digit = (sl >> np.uint64(p)) & _M21
        else:
            digit = ((sl >> np.uint64(p)) | (sh << np.uint64(64 - p))) & _M21
        cur = (r << np.uint64(21)) | digit
        # The leading parts of a value far below 2**128 are zero: no division for them.
        qd = cur // five if cur != _ZERO else _ZERO
        r = cur - qd * five
        qh = (qh << np.uint64(21)) | (ql >> np.uint64(43))
        ql = (ql << np.uint64(21)) | qd
    return qh, ql, (r << uk) | low


@njit(cache=True, nogil=True)
def _scale_of(words):
    """Fewest digits after the point that every value needs (0..18)."""
    zeros = 18  # trailing decimal zeros every value has at scale 18
    for i in range(words.shape[0]):
        if zeros == 0:
            break
        hi, lo, _ = magnitude(words[i, 1], words[i, 0])
        if hi == _ZERO and lo == _ZERO:
            continue
        while zeros > 0:
            # 10**zeros divides only what 2**zeros divides: the low bits tell that at once.
            if lo & ((_ONE << np.uint64(zeros)) - _ONE) == _ZERO:
                _, _, r = divmod_pow10(hi, lo, zeros)
                if r == _ZERO:
                    break
            zeros -= 1
    return 18 - zeros


@njit(cache=True, nogil=True)
def _to_int64(words, scale, out):
    """Values at ``scale`` into ``out``; the largest magnitude, or -1 when one does not fit."""
    k = 18 - scale
    largest = np.int64(0)
    for i in range(words.shape[0]):
        hi, lo, negative = magnitude(words[i, 1], words[i, 0])
        qh, ql, _ = divmod_pow10(hi, lo, k)
        if qh != _ZERO or ql >= _HALF64:
            return np.int64(-1)
        v = np.int64(ql)
        if v > largest:
            largest = v
        out[i] = -v if negative else v
    return largest


def to_int64(words: np.ndarray | list[np.ndarray]) -> tuple[int, np.ndarray, int] | None:
    """``(scale, integers, largest magnitude)``: the values (words, or a list of chunks of
    words) as ``int64`` at the fewest digits after the point that represent every one
    exactly, or None when one does not fit ``int64`` there."""
    chunks = [c for c in _chunks(words) if len(c)]
    scale = max((int(_scale_of(c)) for c in chunks), default=0)
    out = np.empty(sum(len(c) for c in chunks), np.int64)
    largest = at = 0
    for c in chunks:
        got = int(_to_int64(c, scale, out[at : at + len(c)]))
        if got < 0:
            return None
        largest = max(largest, got)
        at += len(c)
    return scale, out, largest


@njit(cache=True, nogil=True)
def _int64_words(values, up, out):
    """``values`` times ``up`` (a power of ten) as 128-bit words; False if a product passes 38 digits."""
    for i in range(values.shape[0]):
        v = values[i]
        m = np.uint64(-v) if v < 0 else np.uint64(v)
        h, l = mul64(m, up)
        if not below_1e38(h, l):
            return False
        out[i, 0], out[i, 1] = signed_words(h, l, v < 0)
    return True


def int64_to_decimal(values: np.ndarray, scale: int, name: str = "") -> pl.Series:
    """``int64`` integers at ``scale`` (0..18) as an exact ``Decimal(38, 18)`` series."""
    out = np.zeros((len(values), 2), np.uint64)
    if not _int64_words(np.ascontiguousarray(values, dtype=np.int64), np.uint64(10 ** (SCALE - scale)), out):
        raise OverflowError("a value passes Decimal(38, 18)")  # cannot happen for scale <= 18
    return decimal_from_words(out, name)


_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
# 10**38 as (high, low): the first magnitude past Decimal(38, 18).
_E38_HI = np.uint64(10**38 >> 64)
_E38_LO = np.uint64(10**38 & (2**64 - 1))


@njit(cache=True, nogil=True)
def mul64(a, b):
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
def below_1e38(h, l):
    """Whether a magnitude fits Decimal(38, 18) (38 digits in all)."""
    return h < _E38_HI or (h == _E38_HI and l < _E38_LO)


_E9 = np.uint64(10**9)
_FIVE9 = np.uint64(5**9)  # < 2**21: a remainder shifted by 32 bits still fits 64
_M32 = np.uint64(0xFFFFFFFF)


@njit(inline="always")
def _digit_step(r, part, divisor):
    """One step of long division in base 2**32: (r * 2**32 + part) // divisor and the
    remainder (r < divisor < 2**32, so nothing overflows). Inlined where it is used, so a
    constant divisor still compiles to multiplies."""
    x = (r << _S32) | part
    q = x // divisor
    return q, x - q * divisor


@njit(cache=True, nogil=True)
def _divmod_1e9(hi, lo):
    """(hi, lo) // 10**9 and the remainder, by a constant divisor (compiled to multiplies)."""
    low = lo & np.uint64(511)
    sl = (lo >> np.uint64(9)) | (hi << np.uint64(55))
    sh = hi >> np.uint64(9)
    q3, r = _digit_step(_ZERO, sh >> _S32, _FIVE9)
    q2, r = _digit_step(r, sh & _M32, _FIVE9)
    q1, r = _digit_step(r, sl >> _S32, _FIVE9)
    q0, r = _digit_step(r, sl & _M32, _FIVE9)
    return (q3 << _S32) | q2, (q1 << _S32) | q0, (r << np.uint64(9)) | low


@njit(cache=True, nogil=True)
def _at_nine(words, out):
    """Values at 9 digits after the point into ``out``: 0 done, 1 a value needs more
    digits, 2 a value does not fit int64 there. Also returns the largest magnitude."""
    largest = np.int64(0)
    for i in range(words.shape[0]):
        hi, lo, negative = magnitude(words[i, 1], words[i, 0])
        if hi < _E9:
            # Below 10**9 * 2**64 (every value that can fit int64 at 9 digits): two
            # divisions of 64 bits by 10**9, half the work of the general 128-bit one.
            qh, r = _digit_step(hi, lo >> _S32, _E9)
            ql, r = _digit_step(r, lo & _M32, _E9)
            ql |= qh << _S32  # qh < 2**32: the quotient is below 2**64
            qh = _ZERO
        else:
            qh, ql, r = _divmod_1e9(hi, lo)
        if r != _ZERO:
            return 1, largest
        if qh != _ZERO or ql >= _HALF64:
            return 2, largest
        v = np.int64(ql)
        if v > largest:
            largest = v
        out[i] = -v if negative else v
    return 0, largest


def to_int64_at_nine(words: np.ndarray | list[np.ndarray]) -> tuple[int, np.ndarray, int] | None:
    """The values (words, or a list of chunks of words) as ``int64`` at 9 digits after the
    point (the usual venue precision: one cheap pass), or None when a value needs more
    digits or does not fit."""
    chunks = [c for c in _chunks(words) if len(c)]
    out = np.empty(sum(len(c) for c in chunks), np.int64)
    largest = at = 0
    for c in chunks:
        status, got = _at_nine(c, out[at : at + len(c)])
        if status != 0:
            return None
        largest = max(largest, int(got))
        at += len(c)
    return 9, out, largest


@njit(cache=True, nogil=True)
def _products(a, b, out):
    """``a * b`` as words, where both have at most 9 digits after the point (their product
    then needs at most 18: exact, nothing to round); False where one has more or a
    product passes 38 digits."""
    for i in range(a.shape[0]):
        ah, al, a_neg = magnitude(a[i, 1], a[i, 0])
        bh, bl, b_neg = magnitude(b[i, 1], b[i, 0])
        aqh, aql, ar = _divmod_1e9(ah, al)
        bqh, bql, br = _divmod_1e9(bh, bl)
        if ar != _ZERO or br != _ZERO or aqh != _ZERO or bqh != _ZERO:
            return False
        h, l = mul64(aql, bql)
        if not below_1e38(h, l):
            return False
        out[i, 0], out[i, 1] = signed_words(h, l, a_neg != b_neg)
    return True


def multiply(a: pl.Series, b: pl.Series) -> pl.Series:
    """``a * b`` of two ``Decimal(38, 18)`` columns, as Polars computes it (rounded
    half-even at 18 places; null where either is null), in one compiled pass over their
    words when both have at most 9 digits after the point. Polars' own product of long
    columns holds several times the columns' size while it runs; this holds the result.
    Anything else is left to Polars."""
    a_words = decimal_words(a.fill_null(0))
    b_words = decimal_words(b.fill_null(0))
    out = np.empty((len(a), 2), np.uint64)
    if len(a) != len(b) or not _products(a_words, b_words, out):
        return (a.cast(DECIMAL) * b.cast(DECIMAL)).alias(a.name)
    del a_words, b_words
    product = decimal_from_words(out, a.name)
    nulls = a.is_null() | b.is_null()
    return product.set(nulls, None) if nulls.any() else product
