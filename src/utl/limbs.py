"""Exact unsigned integers past 128 bits for compiled kernels.

Most of UTL's kernels fit 128 bits (:mod:`utl.lots`). An inverse contract does not: its
harmonic average entry multiplies three numbers (``|position| · entry · price``) and its
realized PnL divides by the product of two prices, each a 128-bit word at 18 places, so an
exact result needs some 320 bits on the way. Here a number is an array of :data:`LIMBS`
32-bit limbs (least significant first) held in ``uint64``, so that a limb times a limb plus
two more still fits 64 bits; division is Knuth's algorithm D (The Art of Computer
Programming, vol. 2, 4.3.1) in the form of Hacker's Delight's ``divmnu``. Every function
reports an overflow instead of wrapping: the caller then takes its exact Python path.

The arrays are the caller's scratch (no allocation per call): ``out`` never aliases an
input unless a docstring says so.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LIMBS = 12  # 384 bits: the largest product the derivative walk forms is under 330
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)


@njit(cache=True, nogil=True)
def load(x, h, l):
    """``x`` = the 128-bit number ``h:l``."""
    x[:] = 0
    x[0] = l & _M32
    x[1] = l >> _S32
    x[2] = h & _M32
    x[3] = h >> _S32


@njit(cache=True, nogil=True)
def used(x):
    """Limbs up to the highest non-zero one (0 for zero)."""
    n = x.shape[0]
    while n > 0 and x[n - 1] == _ZERO:
        n -= 1
    return n


@njit(cache=True, nogil=True)
def multiply(a, b, out):
    """``out = a · b``; False when the product passes :data:`LIMBS` limbs."""
    out[:] = 0
    na = used(a)
    nb = used(b)
    if na + nb > out.shape[0] + 1:
        return False
    for i in range(na):
        carry = _ZERO
        ai = a[i]
        for j in range(nb):
            if i + j >= out.shape[0]:
                if ai * b[j] + carry != _ZERO:
                    return False
                continue
            t = ai * b[j] + out[i + j] + carry
            out[i + j] = t & _M32
            carry = t >> _S32
        k = i + nb
        while carry != _ZERO:
            if k >= out.shape[0]:
                return False
            t = out[k] + carry
            out[k] = t & _M32
            carry = t >> _S32
            k += 1
    return True


@njit(cache=True, nogil=True)
def multiply_by(x, m, scratch, out):
    """``out = x · m`` for a 64-bit ``m`` (``scratch`` holds ``m``); False past :data:`LIMBS` limbs."""
    load(scratch, _ZERO, m)
    return multiply(x, scratch, out)


@njit(cache=True, nogil=True)
def add(a, b, out):
    """``out = a + b`` (``out`` may be ``a``); False on a carry out of the top limb."""
    carry = _ZERO
    for i in range(out.shape[0]):
        t = a[i] + b[i] + carry
        out[i] = t & _M32
        carry = t >> _S32
    return carry == _ZERO


@njit(cache=True, nogil=True)
def compare(a, b):
    """-1, 0 or 1 as ``a`` is below, equal to or above ``b``."""
    for i in range(a.shape[0] - 1, -1, -1):
        if a[i] != b[i]:
            return 1 if a[i] > b[i] else -1
    return 0


@njit(cache=True, nogil=True)
def _leading_zeros32(v):
    n = 0
    while n < 32 and (v & (np.uint64(1) << np.uint64(31 - n))) == _ZERO:
        n += 1
    return n


@njit(cache=True, nogil=True)
def divide(u, v, q, r, un, vn):
    """``q, r = divmod(u, v)`` for ``v`` > 0; ``un`` (LIMBS + 1 limbs) and ``vn`` are
    scratch. Returns False when ``v`` is zero."""
    q[:] = 0
    r[:] = 0
    n = used(v)
    m = used(u)
    if n == 0:
        return False
    if m < n:
        r[:m] = u[:m]
        return True
    if n == 1:  # a one-limb divisor: short division
        d = v[0]
        rem = _ZERO
        for j in range(m - 1, -1, -1):
            t = (rem << _S32) | u[j]
            q[j] = t // d
            rem = t - q[j] * d
        r[0] = rem
        return True
    # Normalise: shift both so the divisor's top limb has its high bit set.
    s = np.uint64(_leading_zeros32(v[n - 1]))
    back = np.uint64(32) - s
    for i in range(n - 1, 0, -1):
        vn[i] = ((v[i] << s) | ((v[i - 1] >> back) if s != _ZERO else _ZERO)) & _M32
    vn[0] = (v[0] << s) & _M32
    un[m] = (u[m - 1] >> back) if s != _ZERO else _ZERO
    for i in range(m - 1, 0, -1):
        un[i] = ((u[i] << s) | ((u[i - 1] >> back) if s != _ZERO else _ZERO)) & _M32
    un[0] = (u[0] << s) & _M32
    b = np.uint64(1) << _S32
    top = vn[n - 1]
    for j in range(m - n, -1, -1):
        num = (un[j + n] << _S32) | un[j + n - 1]
        qhat = num // top
        rhat = num - qhat * top
        while qhat >= b or qhat * vn[n - 2] > ((rhat << _S32) | un[j + n - 2]):
            qhat -= _ONE
            rhat += top
            if rhat >= b:
                break
        # un[j .. j+n] -= qhat · vn, with a borrow that may go past zero (then added back).
        borrow = np.int64(0)
        for i in range(n):
            p = qhat * vn[i]
            t = np.int64(un[i + j]) - borrow - np.int64(p & _M32)
            un[i + j] = np.uint64(t) & _M32
            borrow = np.int64(p >> _S32) - (t >> np.int64(32))
        t = np.int64(un[j + n]) - borrow
        un[j + n] = np.uint64(t) & _M32
        q[j] = qhat
        if t < 0:  # qhat was one too many (rare): add the divisor back
            q[j] = qhat - _ONE
            carry = _ZERO
            for i in range(n):
                t2 = un[i + j] + vn[i] + carry
                un[i + j] = t2 & _M32
                carry = t2 >> _S32
            un[j + n] = (un[j + n] + carry) & _M32
    for i in range(n - 1):
        r[i] = ((un[i] >> s) | ((un[i + 1] << back) & _M32 if s != _ZERO else _ZERO)) & _M32
    r[n - 1] = un[n - 1] >> s
    return True


@njit(cache=True, nogil=True)
def divide_half_even(u, v, q, r, un, vn):
    """``q = u / v`` rounded half-even (``r`` is left holding twice the remainder);
    False when ``v`` is zero or rounding up overflows."""
    if not divide(u, v, q, r, un, vn):
        return False
    # Twice the remainder past LIMBS limbs is above any divisor that fits them.
    c = compare(r, v) if add(r, r, r) else 1
    if c > 0 or (c == 0 and (q[0] & _ONE) == _ONE):
        vn[:] = 0
        vn[0] = _ONE
        return add(q, vn[: q.shape[0]], q)
    return True


@njit(cache=True, nogil=True)
def words(x):
    """``x`` as 128-bit words: (fits, high, low)."""
    for i in range(4, x.shape[0]):
        if x[i] != _ZERO:
            return False, _ZERO, _ZERO
    return True, x[2] | (x[3] << _S32), x[0] | (x[1] << _S32)
