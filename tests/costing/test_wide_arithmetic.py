"""The kernels' 128/192-bit integer arithmetic against Python's unbounded integers."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.lots import _divmod128_64, _divmod192_64, _mul128_64, _mul64
from utl.scaled import divmod_pow10 as _divmod_pow10

U64 = st.integers(0, 2**64 - 1)
U128 = st.integers(0, 2**128 - 1)


def split(v: int) -> tuple[np.uint64, np.uint64]:
    return np.uint64(v >> 64), np.uint64(v & (2**64 - 1))


def join(*limbs) -> int:
    value = 0
    for limb in limbs:
        value = (value << 64) | int(limb)
    return value


@settings(max_examples=500, deadline=None)
@given(U128, st.integers(0, 18))
def test_divide_by_a_power_of_ten(v, k):
    qh, ql, r = _divmod_pow10(*split(v), k)
    assert (join(qh, ql), int(r)) == divmod(v, 10**k)


@settings(max_examples=500, deadline=None)
@given(U128, st.integers(1, 2**63 - 1))
def test_divide_by_any_63_bit_number(v, d):
    qh, ql, r = _divmod128_64(*split(v), np.uint64(d))
    assert (join(qh, ql), int(r)) == divmod(v, d)


@settings(max_examples=500, deadline=None)
@given(U64, U64, U128, st.integers(1, 2**63 - 1))
def test_products_and_wide_division(a, b, v, d):
    assert join(*_mul64(np.uint64(a), np.uint64(b))) == a * b
    x2, x1, x0 = _mul128_64(*split(v), np.uint64(b))
    assert join(x2, x1, x0) == v * b
    overflow, qh, ql, r = _divmod192_64(np.uint64(x2), np.uint64(x1), np.uint64(x0), np.uint64(d))
    q, rem = divmod(v * b, d)
    assert int(r) == rem and overflow == (q >= 2**128)
    if not overflow:
        assert join(qh, ql) == q
