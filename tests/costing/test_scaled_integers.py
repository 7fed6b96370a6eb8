"""The scaled-integer path: Decimal words in and out, the scale chosen, and the wide path
taken (exactly) when a value does not fit; overflow is an error, never a wrap."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl import costing
from utl.costing import compute_costs
from utl.decimals import DECIMAL
from utl.scaled import decimal_from_words, decimal_words, int64_to_decimal, to_int64, to_int64_at_nine

from .factory import trades
from .reference import reference_costs

EDGES = [D("0"), D("1"), D("-1"), D("0.000000000000000001"), D("-0.000000000000000001"),
         D("99999999999999999999.999999999999999999"), D("-99999999999999999999.999999999999999999"),
         D("18446744073.709551616"), D("-9223372036.854775808"), D("12345.6789")]


def decimals(*values) -> pl.Series:
    return pl.Series([D(v) if not isinstance(v, D) else v for v in values], dtype=DECIMAL)


def test_words_round_trip_every_edge_of_decimal_38_18():
    words = decimal_words(decimals(*EDGES))
    # Each value's words are its integer at 18 places in two's complement, low word first.
    for (low, high), value in zip(words.tolist(), EDGES):
        raw = int(value.scaleb(18))
        assert low | (high << 64) == raw % 2**128
    assert decimal_from_words(words).to_list() == EDGES


def test_words_of_a_sliced_series_start_at_the_slice():
    series = decimals("1", "2", "3", "4").slice(2, 2)
    assert decimal_from_words(decimal_words(series)).to_list() == [D("3"), D("4")]


def test_nine_places_is_one_pass_and_refuses_what_needs_more():
    assert to_int64_at_nine(decimal_words(decimals("1.5", "-0.000000001", "50"))) is not None
    scale, values, largest = to_int64_at_nine(decimal_words(decimals("1.5", "-0.000000001", "50")))
    assert (scale, values.tolist(), largest) == (9, [1_500_000_000, -1, 50_000_000_000], 50_000_000_000)
    assert to_int64_at_nine(decimal_words(decimals("0.0000000001"))) is None  # 10 places
    assert to_int64_at_nine(decimal_words(decimals("10000000000"))) is None  # 1e19 at 9 places > int64


def test_fewest_places_that_hold_every_value():
    scale, values, _ = to_int64(decimal_words(decimals("1.5", "-2.25", "3")))
    assert (scale, values.tolist()) == (2, [150, -225, 300])
    scale, values, _ = to_int64(decimal_words(decimals("0.000000000000000001")))
    assert (scale, values.tolist()) == (18, [1])
    # 9.3e18 whole units: no scale holds it in int64.
    assert to_int64(decimal_words(decimals("9300000000000000000"))) is None
    scale, values, _ = to_int64(decimal_words(decimals("9223372036854775807")))
    assert (scale, values.tolist()) == (0, [2**63 - 1])


def test_int64_back_to_decimal_is_exact():
    values = np.array([2**63 - 1, -(2**63 - 1), 1, 0], np.int64)
    assert int64_to_decimal(values, 18).to_list() == [D(2**63 - 1).scaleb(-18), D(-(2**63 - 1)).scaleb(-18), D("1E-18"), 0]
    assert int64_to_decimal(values[:1], 0).to_list() == [D(2**63 - 1)]


def rows_of(frame: pl.DataFrame) -> list[dict]:
    return [{**r, "qty": D(r["qty"]), "price": D(r["price"])} for r in frame.iter_rows(named=True)]


def taken_path(frame: pl.DataFrame, method: str) -> str:
    valid = costing.validate_trades(frame)
    order, group = costing.application_order(valid)
    return "words" if costing._cost_in_words(valid, order, group, method) is not None else "wide"


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@pytest.mark.parametrize(
    ("lines", "path"),
    [
        # Venue-sized numbers: the scaled-integer path.
        (("t1 +1.5 @ 100.25", "t2 +2 @ 110", "t3 -3 @ 120.125", "t4 -1 @ 99"), "words"),
        # 1e-18 beside 1e12: no int64 scale holds both; the wide path, exact all the same.
        (("t1 +1000000000000 @ 3", "t2 +0.000000000000000001 @ 7", "t3 -1000000000000.000000000000000001 @ 5"), "wide"),
        # A price with 18 places and a quantity with 18 places: a product past 18 places,
        # rounded half-even per lot product.
        (("t1 +0.000000000000000003 @ 1.5", "t2 -0.000000000000000003 @ 2.000000000000000001"), "words"),
    ],
)
def test_each_path_equals_the_reference(lines, path, method):
    frame = trades(*lines)
    assert taken_path(frame, method) == path
    result = compute_costs(frame, method)
    per_trade, positions, open_lots = reference_costs(rows_of(frame), method)
    assert result.realized.select("realized_pnl", "closed_qty", "position_after").rows() == per_trade
    assert {(r[0], r[1]): r[2:] for r in result.positions.rows()} == positions
    assert result.open_lots.select("book", "asset", "trade_id", "qty", "entry_price").rows() == open_lots


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@pytest.mark.parametrize(
    "lines",
    [
        # Fits int64 at scale 0, but the realized PnL (3.6e37) passes Decimal(38, 18)'s 20 digits.
        ("t1 +9000000000000000000 @ 1", "t2 -9000000000000000000 @ 4000000000000000001"),
        # Each trade's PnL fits; their sum in the position's total does not.
        ("t1 +60000000000 @ 1", "t2 -60000000000 @ 1000000000", "t3 +60000000000 @ 1",
         "t4 -60000000000 @ 1000000000"),
        # The position itself passes 20 digits.
        ("t1 +90000000000000000000 @ 1", "t2 +90000000000000000000 @ 1"),
    ],
)
def test_overflow_is_an_error_never_a_wrap(lines, method):
    frame = trades(*lines)
    assert taken_path(frame, method) == "wide"  # the kernels refused it rather than wrap
    with pytest.raises((pl.exceptions.ComputeError, RuntimeError, OverflowError, ValueError)):
        compute_costs(frame, method)


def test_typed_input_with_a_duplicate_id_is_still_refused_by_row():
    frame = trades("t1 +1 @ 100", "t2 +1 @ 100", "t1 -1 @ 100").with_columns(
        pl.col("qty", "price").cast(pl.String).str.to_decimal(scale=18))
    with pytest.raises(ValueError, match="row 3.*duplicate|duplicate.*row 3|t1"):
        compute_costs(frame)


@pytest.mark.parametrize(("column", "value"), [("qty", "0"), ("price", "0"), ("price", "-1")])
def test_typed_input_with_a_bad_value_is_still_refused_by_row(column, value):
    frame = trades("t1 +1 @ 100", "t2 +1 @ 100").with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
    ).with_columns(pl.col("qty", "price").str.to_decimal(scale=18))
    with pytest.raises(ValueError, match=f"{column}.*row 2|row 2.*{column}"):
        compute_costs(frame)


def test_column_products_equal_decimal_products_rounded_half_even():
    from decimal import ROUND_HALF_EVEN, Context

    from utl.scaled import multiply

    exact = Context(prec=100)
    pairs = [("1.5", "2.25"), ("-0.000000001", "0.000000001"), ("99999999999.123456789", "-1000"),
             ("4294967296.000000001", "4294967296.5"), (None, "1"), ("3", None),
             # More than 9 places: Polars' own product, rounded half-even at 18 places.
             ("0.000000000000000005", "0.5"), ("0.000000000000000015", "0.5")]
    a = pl.Series("a", [D(x) if x else None for x, _ in pairs], dtype=DECIMAL)
    b = pl.Series("b", [D(y) if y else None for _, y in pairs], dtype=DECIMAL)
    expected = [exact.multiply(D(x), D(y)).quantize(D("1E-18"), rounding=ROUND_HALF_EVEN) if x and y else None
                for x, y in pairs]
    assert multiply(a, b).to_list() == expected
    assert multiply(a.head(4), b.head(4)).to_list() == expected[:4]  # the compiled pass alone
    # 1e11 x 1e10 = 1e21 passes Decimal(38, 18)'s 20 digits: an error, never a wrapped value.
    with pytest.raises(pl.exceptions.ComputeError):
        multiply(pl.Series([D("100000000000")], dtype=DECIMAL), pl.Series([D("10000000000")], dtype=DECIMAL))


def _at_nine_by_python(value: D) -> int | None:
    scaled = value.scaleb(9)
    if scaled != scaled.to_integral_value() or not -(2**63) < int(scaled) < 2**63:
        return None
    return int(scaled)


# Around every edge the 9-digit conversion has: int64 at 9 places, 2**64 at 18 places (one
# word), 10**9 * 2**64 (where its two-step division gives way to the general one), 38 digits.
NINE_EDGES = [D(2**63 - 1).scaleb(-9), D(2**63).scaleb(-9), D(-(2**63) + 1).scaleb(-9), D(-(2**63)).scaleb(-9),
              D(2**64).scaleb(-18), D(2**64 - 1).scaleb(-18), D(10**9 * 2**64).scaleb(-18),
              D(10**9 * 2**64 - 10**9).scaleb(-18), D(10**9 * 2**64 + 10**9).scaleb(-18),
              D("99999999999999999999.999999999"), D("-0.000000001"), D("0.0000000001")]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(NINE_EDGES),
                 st.integers(-(10**38) + 1, 10**38 - 1).map(lambda i: D(i).scaleb(-18)),
                 st.integers(-(2**63), 2**63).map(lambda i: D(i).scaleb(-9))))
def test_nine_places_equals_python_at_every_size(value):
    got = to_int64_at_nine(decimal_words(decimals(value)))
    expected = _at_nine_by_python(value)
    assert (None if got is None else int(got[1][0])) == expected
    if got is not None:
        assert got[2] == abs(expected)
