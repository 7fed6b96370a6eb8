"""The quick books' rows go into frames a column at a time, aware times as counts of
microseconds (:func:`utl.stream.quick._frame`): the frame is Polars' own reading of the rows,
value for value, whatever the times' offsets, the nulls and the decimals' places."""

from __future__ import annotations

import datetime as dt
from decimal import Context, Decimal

import polars as pl
import pytest
from hypothesis import given, settings, strategies as st

from utl.frames import conformed
from utl.schemas import LOTS_STATE
from utl.stream.books import DAY_PNL, HOLDINGS, LAST, OPENINGS, TRADES
from utl.stream.quick import _frame
from utl.stream.store import FILLS_ROWS, LEGS_ROWS, LIVE_ROWS, START_ROWS

SCHEMAS = [TRADES, OPENINGS, LOTS_STATE, DAY_PNL, HOLDINGS, LAST, FILLS_ROWS, LEGS_ROWS, LIVE_ROWS, START_ROWS]

_offsets = st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=9)), dt.timezone(dt.timedelta(hours=-5, minutes=-30))])


def _value(dtype: pl.DataType) -> st.SearchStrategy:
    if isinstance(dtype, pl.Datetime):
        return st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1), timezones=_offsets)
    if isinstance(dtype, pl.Decimal):
        return st.decimals(min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=18, allow_nan=False)
    if dtype == pl.Date:
        return st.dates()
    if dtype == pl.Int64:
        return st.integers(-2**63, 2**63 - 1)
    if dtype == pl.Boolean:
        return st.booleans()
    return st.text(max_size=12)


@st.composite
def schema_and_rows(draw):
    schema = draw(st.sampled_from(SCHEMAS))
    row = st.tuples(*(st.none() | _value(dtype) for dtype in schema.values()))
    return schema, draw(st.lists(row, max_size=30))


@settings(max_examples=300, deadline=None)
@given(schema_and_rows())
def test_a_frame_of_rows_is_polars_reading_of_them(case):
    schema, rows = case
    got = _frame(rows, schema)
    assert got.schema == schema
    if rows:
        assert got.equals(conformed(pl.DataFrame(rows, schema=schema, orient="row"), schema))
    else:
        assert got.height == 0
    for row, back in zip(rows, got.rows()):  # and both are the rows themselves
        assert back == tuple(None if v is None else v.astimezone(dt.timezone.utc) if isinstance(v, dt.datetime) else v
                             for v in row)


@settings(max_examples=300, deadline=None)
@given(schema_and_rows())
def test_a_frames_rows_read_back_are_polars_rows_digit_for_digit(case):
    from utl.stream.quick import _tuples

    schema, rows = case
    frame = conformed(pl.DataFrame(rows, schema=schema, orient="row"), schema) if rows else schema.to_frame()
    got, polars_rows = _tuples(frame), frame.rows()
    assert got == polars_rows
    # The same digits and exponent (a Decimal's text is what the commit writes).
    assert [[v.as_tuple() if isinstance(v, Decimal) else v for v in row] for row in got] == \
        [[v.as_tuple() if isinstance(v, Decimal) else v for v in row] for row in polars_rows]


@pytest.mark.parametrize("value", [Decimal("0.0000000000000000015"), Decimal("1E-19"), Decimal("NaN"), Decimal("Infinity"), 1.5])
def test_a_decimal_past_the_columns_places_or_not_a_number_is_not_read_as_text(value):
    # Polars' parser would round 19 places to 18: such a column goes the way every column went
    # before (Polars' reading of the objects), whatever that does with it.
    from utl.stream.quick import _plain_texts

    assert _plain_texts((Decimal("1.5"), None, value), 18) is None
    if isinstance(value, Decimal) and value.is_finite():
        schema = pl.Schema({"x": pl.Decimal(38, 18)})
        assert _frame([(value,)], schema).equals(conformed(pl.DataFrame([(value,)], schema=schema, orient="row"), schema))


def test_decimals_as_text_keep_their_places():
    values = [Decimal("1.5"), Decimal("-0.000000000000000001"), Decimal("0E-18"), Decimal("1E+2"), None,
              Decimal("99999999999999999999.999999999999999999")]
    got = _frame([(v,) for v in values], pl.Schema({"x": pl.Decimal(38, 18)}))["x"].to_list()
    assert got == values
    assert [v.as_tuple() for v in got if v is not None] == \
        [v.quantize(Decimal("1E-18"), context=Context(prec=60)).as_tuple() for v in values if v is not None]
