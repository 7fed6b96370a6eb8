"""Exact parsing of number text: every accepted value equals Python's Decimal of it."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.decimals import strict_decimal, venue_decimal


def parse(values, parser=venue_decimal):
    value, bad = parser(pl.col("t"))
    return pl.DataFrame({"t": values}, schema={"t": pl.String}).select(value.alias("v"), bad.alias("b")).rows()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1,300.50", "1300.5"), (" +2 ", "2"), ("$65,000.00", "65000"), ("-$3", "-3"), ("-3.605E-05", "-0.00003605"),
        ("0E-18", "0"), ("3.1e-05", "0.000031"), (".5", "0.5"), ("5.", "5"), ("1e19", "10000000000000000000"),
        ("-0.000000000000000001", "-1E-18"), ("0E-20", "0"), ("10E-19", "1E-18"), ("123.4500000000000000000000", "123.45"), ("12345678901234567890.123456789012345678", "12345678901234567890.123456789012345678"),
    ],
)
def test_venue_numbers_parse_exactly(text, expected):
    assert parse([text]) == [(Decimal(expected), False)]


@pytest.mark.parametrize("text", ["1,5", "12,34,5", ",5", ",", "abc", "1e-19", "1.5e-18", "1e20", "١٢", "٣.5", "1.2.3", "0.1234567890123456789"])
def test_venue_numbers_refused_never_rounded(text):
    assert parse([text]) == [(None, True)]


@pytest.mark.parametrize("text", ["", "--", None, "  "])
def test_blank_is_null_not_bad(text):
    assert parse([text]) == [(None, False)]


@pytest.mark.parametrize("text, ok", [("1.5", True), ("-0.000000000000000001", True), ("+1", False), ("1e5", False),
                                      ("1,0", False), (" 1", False), ("1.", False), ("١", False), ("123456789012345678901", False)])
def test_strict_grammar(text, ok):
    (value, bad), = parse([text], strict_decimal)
    assert bad is (not ok) and (value == Decimal(text) if ok else value is None)


@settings(max_examples=300, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False,
                   min_value=Decimal("-1e19"), max_value=Decimal("1e19")).filter(lambda d: d.as_tuple().exponent >= -18),
       st.sampled_from(["plain", "exp", "grouped", "plus"]))
def test_any_representable_value_round_trips(value, form):
    if form == "exp":
        text = f"{value:E}"
    elif form == "grouped":
        text = f"{value:,f}"
    elif form == "plus":
        text = f"+{value:f}" if value >= 0 else f"{value:f}"
    else:
        text = f"{value:f}"
    (parsed, bad), = parse([text])
    assert not bad and parsed == value, text
