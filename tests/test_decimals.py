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


# ---------------------------------------------------------------- whole columns, once each

from decimal import localcontext  # noqa: E402

from utl.decimals import parse_venue_numbers, with_venue_decimals  # noqa: E402


def oracle(text: str | None) -> tuple[Decimal | None, bool]:
    """What a venue number cell means, by Python's Decimal: (value, is_bad)."""
    import re

    if text is None or text.strip() in ("", "--"):
        return None, False
    s = text.strip()
    if "," in s and not re.fullmatch(r"[+-]?[$€£]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?([eE][+-]?[0-9]+)?", s):
        return None, True
    s = re.sub(r"^([+-]?)[$€£]", r"\1", s.replace(",", ""))
    if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]{1,4})?", s):
        return None, True
    value = Decimal(s)
    if value == 0:
        return value, False
    with localcontext(prec=400):
        exact = value.normalize()
    fits = exact.as_tuple().exponent >= -18 and exact.adjusted() < 20
    return (value, False) if fits else (None, True)


@pytest.mark.parametrize(
    "text, expected",
    [
        # Leading zeros after the point make room for a large exponent: these fit.
        ("0.000000000008848567e21", "8848567000"),
        ("0.0000000000000000000001E+30", "100000000"),
        ("+$0.00000000000000000001E+37", "100000000000000000"),
    ],
)
def test_exponents_count_the_digits_of_the_value_not_the_text(text, expected):
    assert parse([text]) == [(Decimal(expected), False)]


number_cells = st.one_of(
    st.from_regex(r"\A[ +-]?\$?[0-9]{0,22}(\.[0-9]{0,22})?([eE][+-]?[0-9]{1,2})?[ ]?\Z", fullmatch=True),
    st.decimals(allow_nan=False, allow_infinity=False, places=20).map(lambda d: format(d, ",f")),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["", "--", ",", "1,5", "-$5,250.00", "$65,000.00", "0E-20", "١٢", None]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(number_cells, min_size=1, max_size=12))
def test_whole_column_parse_matches_pythons_decimal(cells):
    values, bad = parse_venue_numbers(pl.Series("t", cells, dtype=pl.String))
    assert list(zip(values.to_list(), bad.to_list())) == [oracle(c) for c in cells]


def test_with_venue_decimals_adds_a_value_and_a_flag_per_name():
    frame = pl.DataFrame({"Price": ["65,000.50", "x"], "Fee": [" 0.1BNB", "--"]})
    out = with_venue_decimals(frame, {"price": "Price"}, fee=pl.col("Fee").str.strip_chars().str.strip_suffix("BNB"))
    assert out.columns == ["Price", "Fee", "price", "price__bad", "fee", "fee__bad"]
    assert out.schema["price"] == pl.Decimal(38, 18)
    assert out.select("price", "price__bad", "fee", "fee__bad").rows() == [
        (Decimal("65000.5"), False, Decimal("0.1"), False),
        (None, True, None, False),
    ]
