"""Exact integers past 128 bits in limbs (:mod:`utl.limbs`) against Python's integers."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from utl import limbs
from utl.limbs import LIMBS

TOP = 2 ** (32 * LIMBS)


def of(value: int) -> np.ndarray:
    return np.array([(value >> (32 * i)) & 0xFFFFFFFF for i in range(LIMBS)], np.uint64)


def value(x: np.ndarray) -> int:
    return sum(int(v) << (32 * i) for i, v in enumerate(x))


def scratch(k: int = 1) -> list[np.ndarray]:
    return [np.zeros(LIMBS + k, np.uint64)]


# Numbers of every length, with the edge values the algorithm's corrections turn on:
# top limbs of all ones, exact powers of 2**32, and divisors with a small top limb.
sizes = st.one_of(
    st.integers(0, TOP - 1),
    st.integers(0, 2**64),
    st.sampled_from([0, 1, 2**32 - 1, 2**32, 2**64 - 1, 2**64, 2**128 - 1, 2**128, TOP - 1, 2**96 + 1, 2**160 - 2**32]),
    st.builds(lambda k, e: (2 ** (32 * k) - 1) << e, st.integers(1, 6), st.integers(0, 100)).filter(lambda v: v < TOP),
)


@settings(max_examples=600, deadline=None)
@given(sizes, sizes.filter(lambda v: v > 0))
def test_divide_is_divmod(u, v):
    q, r, vn = np.zeros(LIMBS, np.uint64), np.zeros(LIMBS, np.uint64), np.zeros(LIMBS, np.uint64)
    (un,) = scratch()
    assert limbs.divide(of(u), of(v), q, r, un, vn)
    assert (value(q), value(r)) == divmod(u, v)


@settings(max_examples=400, deadline=None)
@given(sizes, sizes.filter(lambda v: v > 0))
def test_half_even_rounding_is_pythons(u, v):
    q, r, vn = np.zeros(LIMBS, np.uint64), np.zeros(LIMBS, np.uint64), np.zeros(LIMBS, np.uint64)
    (un,) = scratch()
    want, rem = divmod(u, v)
    if 2 * rem > v or (2 * rem == v and want % 2 == 1):
        want += 1
    ok = limbs.divide_half_even(of(u), of(v), q, r, un, vn)
    assert ok == (want < TOP)
    if ok:
        assert value(q) == want


@settings(max_examples=400, deadline=None)
@given(sizes, sizes)
def test_multiply_and_add_report_what_does_not_fit(a, b):
    out = np.zeros(LIMBS, np.uint64)
    assert limbs.multiply(of(a), of(b), out) == (a * b < TOP)
    if a * b < TOP:
        assert value(out) == a * b
    assert limbs.add(of(a), of(b), out) == (a + b < TOP)
    if a + b < TOP:
        assert value(out) == a + b
    assert limbs.compare(of(a), of(b)) == (a > b) - (a < b)


def test_zero_divisor_is_refused():
    q, r, vn = np.zeros(LIMBS, np.uint64), np.zeros(LIMBS, np.uint64), np.zeros(LIMBS, np.uint64)
    (un,) = scratch()
    assert not limbs.divide(of(5), of(0), q, r, un, vn)


def test_words_of_what_fits_128_bits():
    assert limbs.words(of(2**128 - 1)) == (True, 2**64 - 1, 2**64 - 1)
    assert limbs.words(of(2**128))[0] is False
