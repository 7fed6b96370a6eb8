"""The second pass of issue 16's fast paths, each against what it replaced or the reference:
the radix sort's digit widths, the 128/64 division by native 32-bit digits, and WAC's one
pass over prices at their own scale (with the two-pass path kept for prices at or past
2**62 at their scale, and the wide path past int64)."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl import costing
from utl.costing import compute_costs
from utl.lots import Results, _divmod128_64, int64_prices, _realize_wac, _split_prices, _wac_kernel, realize_wac
from utl.ordering import stable_argsort
from utl.scaled import decimal_words, to_int64

from .factory import trades
from .reference import reference_costs
from .test_scaled_integers import rows_of, taken_path


@pytest.mark.parametrize("bits", [0, 1, 2, 13, 16, 17, 31, 32, 33, 50, 51, 63])
def test_radix_order_is_the_stable_order_at_every_width(bits):
    rng = np.random.default_rng(bits)
    high = 2**bits if bits else 1
    keys = rng.integers(0, high, 20_000, dtype=np.int64) if bits < 63 else rng.integers(0, 2**63 - 1, 20_000, dtype=np.int64)
    keys[::7] = keys[0]  # many equal keys: their input order must be kept
    assert np.array_equal(stable_argsort(keys), np.argsort(keys, kind="stable"))


@pytest.mark.parametrize(
    ("v", "d"),
    [
        (2**128 - 1, 1), (2**128 - 1, 2**63 - 1), (2**128 - 1, 2**32), (2**128 - 1, 2**32 - 1), (2**128 - 1, 2**32 + 1),
        (2**64, 3), (2**64 - 1, 2**63 - 1), (0, 7), (2**127 + 1, 2**62 + 1), (10**38 - 1, 10**18), (2**96, 2**33 - 1),
    ],
)
def test_division_at_the_edges_of_its_digits(v, d):
    qh, ql, r = _divmod128_64(np.uint64(v >> 64), np.uint64(v & (2**64 - 1)), np.uint64(d))
    assert ((int(qh) << 64) | int(ql), int(r)) == divmod(v, d)


def _two_pass(group, qty, price_words, order, qty_scale, n_groups):
    """WAC as it ran before the one-pass kernel: prices split at the point, then realized."""
    n = len(qty)
    price_int = np.empty(n, np.int64)
    price_frac = np.empty(n, np.int64)
    assert _split_prices(price_words, order, price_int, price_frac)
    closed, avg_int, avg_frac = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    ends = [np.zeros(n_groups, np.int64) for _ in range(4)]
    if not _wac_kernel(group, qty, price_int, price_frac, closed, avg_int, avg_frac, np.empty(n, np.int64), *ends):
        return None
    results = Results(n)
    end_pnl = np.zeros((n_groups, 2), np.uint64)
    if not _realize_wac(group, qty, price_int, price_frac, closed, avg_int, avg_frac, qty_scale,
                        order, results.pnl, results.closed, results.position, end_pnl, np.int64(0), True):
        return None
    return results.words(qty_scale), ends, end_pnl


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_wac_one_pass_equals_the_two_passes(data):
    n = data.draw(st.integers(1, 60))
    n_groups = data.draw(st.integers(1, 4))
    group = np.sort(np.array(data.draw(st.lists(st.integers(0, n_groups - 1), min_size=n, max_size=n)), np.int64))
    _, group = np.unique(group, return_inverse=True)
    n_groups = int(group.max()) + 1
    magnitude = st.integers(1, data.draw(st.sampled_from([10, 10**6, 10**12])))
    qty = np.array([data.draw(magnitude) * data.draw(st.sampled_from([-1, 1])) for _ in range(n)], np.int64)
    qty_scale = data.draw(st.integers(0, 9))
    price_places = data.draw(st.integers(0, 18))
    prices = [D(data.draw(st.integers(1, 10**15))).scaleb(-price_places) for _ in range(n)]
    order = np.array(data.draw(st.permutations(range(n))), np.int64)
    # Prices given in input order; the kernels read them at order[i].
    in_input_order = [None] * n
    for i, row in enumerate(order):
        in_input_order[row] = prices[i]
    words_in = decimal_words(pl.Series(in_input_order, dtype=pl.Decimal(38, 18)))
    assert to_int64(words_in) is not None  # the one-pass path is the one taken
    got = realize_wac(group, qty, words_in, order, qty_scale, n_groups)
    before = _two_pass(group, qty, words_in, order, qty_scale, n_groups)
    # A number past 128 bits or 38 digits: both decline alike (the caller takes the wide path).
    assert (got is None) == (before is None)
    if got is None:
        return
    words, (end_pos, end_int, end_frac, end_start), end_pnl = before
    results, (g_pos, g_int, g_frac, g_start, g_pnl) = got
    pnl, closed, position = results.words(qty_scale)
    for a, b in ((pnl, words[0]), (closed, words[1]), (position, words[2]), (g_pos, end_pos), (g_int, end_int),
                 (g_frac, end_frac), (g_start, end_start), (g_pnl, end_pnl)):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@pytest.mark.parametrize(
    ("lines", "path"),
    [
        # 2**62 - 1 at scale 0: the last price the one-pass kernels take.
        (("e1 +1.5 @ 4611686018427387903", "e2 -0.5 @ 4611686018427387902", "e3 +1 @ 4611686018427387900"), "words"),
        # 2**62 at scale 0: no room to subtract two prices in int64; WAC takes its two-pass
        # path (integer part and 18 fraction digits), the lot methods price in Decimal.
        (("e1 +1.5 @ 4611686018427387904", "e2 -0.5 @ 4611686018427387906", "e3 +1 @ 4611686018427387905.5"), None),
        # 2**63 - 1 and past: past int64 at any scale, the wide path for every method.
        (("e1 +1 @ 9223372036854775807", "e2 -0.5 @ 9223372036854775808", "e3 -1 @ 9223372036854775806"), "wide"),
    ],
)
def test_prices_at_the_int64_edge_take_the_wide_enough_path_exactly(lines, path, method):
    frame = trades(*lines)
    if path is not None:
        assert taken_path(frame, method) == path
    elif method == "wac":
        assert taken_path(frame, method) == "words"
    result = compute_costs(frame, method)
    per_trade, positions, open_lots = reference_costs(rows_of(frame), method)
    assert result.realized.select("realized_pnl", "closed_qty", "position_after").rows() == per_trade
    assert {(r[0], r[1]): r[2:] for r in result.positions.rows()} == positions
    assert result.open_lots.select("book", "asset", "trade_id", "qty", "entry_price").rows() == open_lots


def test_wac_two_pass_path_is_the_one_taken_for_prices_at_2_62():
    frame = trades("e1 +1.5 @ 4611686018427387904", "e2 +0.5 @ 4611686018427387906.25", "e3 -1 @ 4611686018427387905")
    valid = costing.validate_trades(frame)
    order, group = costing.application_order(valid)
    words = decimal_words(valid["price"])
    assert int64_prices(words) is None  # the one-pass kernel declines these prices
    assert costing._cost_in_words(valid, order, group, "wac") is not None  # the two passes take them


def _shuffled_trades(n: int, groups: int, seed: int) -> pl.DataFrame:
    """``n`` trades over ``groups`` (book, asset) pairs in shuffled input order, quantities
    that often close or flip the position, venue-sized prices."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, groups, n)
    qty = rng.integers(1, 5_000, n) * np.where(rng.random(n) < 0.5, -1, 1)
    running = np.zeros(groups, np.int64)
    for i in range(n):  # every ~10th trade closes its position exactly
        if running[group[i]] != 0 and rng.random() < 0.1:
            qty[i] = -running[group[i]]
        running[group[i]] += qty[i]
    return pl.DataFrame(
        {
            "book": [f"b{g % 2}" for g in group],
            "asset": [f"A{g}" for g in group],
            "ts": pl.Series(rng.integers(0, n // 3, n) * 1_000_000, dtype=pl.Datetime("us")).dt.replace_time_zone("UTC"),
            "trade_id": [str(i) for i in range(n)],
            "qty": pl.Series([f"{q / 1000:.3f}" for q in qty]).str.to_decimal(scale=18),
            "price": pl.Series([f"{p / 100:.2f}" for p in rng.integers(10_000, 9_000_000, n)]).str.to_decimal(scale=18),
        }
    )


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
def test_results_held_back_in_batches_reach_every_trades_own_row(method):
    """The kernels hold a few thousand trades' results before writing them at their input
    rows (:data:`utl.lots._STAGED`): with several batches, a last partial one and shuffled
    rows, every trade's result is its own, as the reference computes it."""
    from utl.lots import _STAGED

    frame = _shuffled_trades(3 * _STAGED + 17, groups=5, seed=11)
    assert taken_path(frame, method) == "words"
    result = compute_costs(frame, method)
    per_trade, positions, _ = reference_costs(rows_of(frame), method)
    assert result.realized.select("realized_pnl", "closed_qty", "position_after").rows() == per_trade
    assert {(r[0], r[1]): r[2:] for r in result.positions.rows()} == positions


def test_wac_two_passes_write_every_batch_of_held_back_results():
    """WAC's two-pass kernel (prices past int64 take it) holds results back as the one-pass
    kernel does: on more trades than one batch, both write the same words at every row."""
    from utl.lots import _STAGED

    valid = costing.validate_trades(_shuffled_trades(2 * _STAGED + 5, groups=3, seed=5))
    order, group = costing.application_order(valid)
    words = decimal_words(valid["price"])
    qty_scale, qty_in, _ = to_int64(decimal_words(valid["qty"]))
    qty = qty_in[order]
    n_groups = int(group.max()) + 1
    got = realize_wac(group, qty, words, order, qty_scale, n_groups)
    before = _two_pass(group, qty, words, order, qty_scale, n_groups)
    assert got is not None and before is not None
    for a, b in zip(got[0].words(qty_scale), before[0]):
        assert np.array_equal(a, b)
    assert np.count_nonzero(before[0][2]) > len(order) // 2  # positions were written, not left zero


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50), st.integers(0, 18))
def test_int64_results_widen_in_place_to_the_words_int64_to_decimal_makes(values, scale):
    """Closed quantity and position are written as int64 into the first half of their words'
    own memory and widened in place, from the last value down (each pair overwrites two
    values already read): the words are those of a fresh conversion, for every value."""
    from utl.scaled import int64_to_decimal

    n = len(values)
    results = Results(n)
    results.closed[:] = values
    results.position[:] = values[::-1]
    _, closed, position = results.words(scale)
    assert np.array_equal(closed, decimal_words(int64_to_decimal(np.array(values, np.int64), scale)))
    assert np.array_equal(position, decimal_words(int64_to_decimal(np.array(values[::-1], np.int64), scale)))


@pytest.mark.parametrize("method", ["fifo", "hifo", "wac"])
def test_long_book_and_asset_names_cost_as_short_ones(method):
    """Names longer than a string view holds (utl.short_text declines them) take the
    Categorical codes: the same groups, the same figures, row for row, on both sides of the
    split into two parts."""
    from utl.lots import SPLIT_FROM

    short = _shuffled_trades(SPLIT_FROM + 1_000, groups=7, seed=5)
    long = short.with_columns(pl.col("book") + "-a-long-desk-name", pl.col("asset") + "-PERPETUAL-USDT")
    from utl.short_text import short_text_codes

    assert short_text_codes(short["asset"]) is not None and short_text_codes(long["asset"]) is None
    a, b = compute_costs(short, method), compute_costs(long, method)
    figures = ("realized_pnl", "closed_qty", "position_after")
    assert a.realized.select(figures).rows() == b.realized.select(figures).rows()
    assert a.positions.drop("book", "asset").rows() == b.positions.drop("book", "asset").rows()
    assert a.open_lots.drop("book", "asset").rows() == b.open_lots.drop("book", "asset").rows()
