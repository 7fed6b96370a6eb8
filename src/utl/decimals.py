"""Exact decimal numbers from text.

Every quantity, price and amount in UTL is a Polars ``Decimal(38, 18)``: 20 digits before
the point and 18 after. Text becomes a decimal here and nowhere else, and never passes
through a float. Polars' own ``str.to_decimal`` rounds digits past the scale and accepts
forms a contract may forbid, so each parser first decides, from the text alone, whether the
value is representable exactly; only then is the text converted.

Two grammars:

- ``strict``: the costing contract's ``-?\\d+(\\.\\d{1,18})?`` (no ``+``, exponent,
  separator or blank).
- ``venue``: what venue exports write (see ``../shared/venues/README.md``): surrounding
  blanks, a leading ``+``, thousands commas, a currency sign, scientific notation, and
  ``--`` or an empty cell for "no value". Unit suffixes (``0.5BTC``) are stripped by the
  venue reader that knows the asset, not here.
"""

from __future__ import annotations

import polars as pl

SCALE = 18
PRECISION = 38
DECIMAL = pl.Decimal(PRECISION, SCALE)
"""The one numeric type for quantities, prices and money."""

MAX_INTEGER_DIGITS = PRECISION - SCALE

_STRICT = r"^-?[0-9]+(\.[0-9]{1,18})?$"
_VENUE_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# Commas may only group thousands: "1,300.5" is a number, "1,5" (a decimal comma) is not.
_GROUPED = r"^[+-]?[$€£]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?([eE][+-]?[0-9]+)?$"


def strict_decimal(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Parse contract-grammar decimal text.

    Returns ``(value, is_bad)``: ``value`` is the exact decimal (null where bad), ``is_bad``
    is true where the text is present but not a decimal of the grammar or too large.
    A null input gives a null value and ``is_bad`` false: callers decide what null means.
    """
    integer_digits = text.str.extract(r"^-?([0-9]+)", 1).str.strip_chars_start("0").str.len_chars()
    ok = text.str.contains(_STRICT) & (integer_digits <= MAX_INTEGER_DIGITS)
    value = pl.when(ok).then(text).otherwise(None).str.to_decimal(scale=SCALE)
    return value, text.is_not_null() & ~ok


def venue_decimal(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Parse a number as venues write it, exactly.

    ``"1,300.50"``, ``" +2 "``, ``"$65,000.00"``, ``"-3.605E-05"`` and ``"0E-18"`` parse;
    ``"--"`` and ``""`` are null (not bad). A value needing more than 18 digits after the
    point or 20 before it is bad, never rounded. Returns ``(value, is_bad)``.
    """
    value = text.map_batches(lambda s: parse_venue_numbers(s)[0], return_dtype=DECIMAL, is_elementwise=True)
    bad = text.map_batches(lambda s: parse_venue_numbers(s)[1], return_dtype=pl.Boolean, is_elementwise=True)
    return value, bad


_PLAIN = r"^-?[0-9]{1,20}(\.[0-9]{1,18})?$"


def parse_venue_numbers(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Whole-column venue number parsing: ``(values, is_bad)``.

    Most cells are already plain decimals: one regex and Polars' own parser take those.
    Only the rest (separators, signs, exponents, blanks, junk) go through the step-by-step
    normalisation, each step computed once over just those cells.
    """
    text = text.cast(pl.String)
    plain = text.str.contains(_PLAIN).fill_null(False)
    frame = pl.DataFrame({"t": text, "plain": plain})
    values = frame.select(pl.when("plain").then(pl.col("t")).otherwise(None).str.to_decimal(scale=SCALE)).to_series()
    bad = pl.Series([False], dtype=pl.Boolean).extend_constant(False, len(text) - 1) if len(text) else pl.Series([], dtype=pl.Boolean)
    odd = (~plain).arg_true()
    if odd.len() == 0:
        return values.alias(text.name), bad.alias(text.name)
    sub_values, sub_bad = _parse_odd(text.gather(odd))
    return values.scatter(odd, sub_values).alias(text.name), bad.scatter(odd, sub_bad).alias(text.name)


def _parse_odd(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    steps = (
        pl.DataFrame({"raw": text})
        .with_columns(stripped=pl.col("raw").str.strip_chars())
        .with_columns(
            commas_ok=~pl.col("stripped").str.contains(",", literal=True) | pl.col("stripped").str.contains(_GROUPED),
            cleaned=pl.col("stripped").str.replace_all(",", "", literal=True).str.replace(r"^([+-]?)[$€£]", "${1}"),
        )
        .with_columns(
            # Blank is judged before commas go: a lone "," is bad, not empty.
            blank=pl.col("stripped").is_null() | pl.col("stripped").is_in(["", "--"]),
            well_formed=pl.col("cleaned").str.contains(_VENUE_NUMBER).fill_null(False),
            parts=pl.col("cleaned").str.extract_groups(r"^[+-]?([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?$"),
        )
        .with_columns(
            whole=pl.col("parts").struct.field("1"),
            fraction=pl.col("parts").struct.field("2"),
            exponent=pl.col("parts").struct.field("3").cast(pl.Int64, strict=False).fill_null(0),
        )
        .with_columns(digits=(pl.col("whole") + pl.col("fraction")).str.strip_chars_start("0"))
        .with_columns(
            # Places the value needs: the written fraction, shifted by the exponent, less the
            # trailing zeros of all its digits ("10E-19" is 1E-18: 18 places; "0E-20": none).
            places=pl.when(pl.col("digits") == "").then(0).otherwise(
                pl.col("fraction").str.len_chars().cast(pl.Int64) - pl.col("exponent")
                - (pl.col("digits").str.len_chars() - pl.col("digits").str.strip_chars_end("0").str.len_chars()).cast(pl.Int64)
            ),
            integer_digits=pl.col("whole").str.strip_chars_start("0").str.len_chars().cast(pl.Int64) + pl.col("exponent"),
        )
        .with_columns(
            ok=~pl.col("blank")
            & pl.col("well_formed")
            & pl.col("commas_ok")
            & (pl.col("places") <= SCALE)
            & ((pl.col("integer_digits") <= MAX_INTEGER_DIGITS) | (pl.col("digits") == ""))
        )
        .with_columns(value=pl.when("ok").then(pl.col("cleaned")).otherwise(None).str.to_decimal(scale=SCALE))
        # Whatever is not blank and did not become a value is bad: never a silent null.
        .select("value", bad=~pl.col("blank") & pl.col("value").is_null())
    )
    return steps["value"], steps["bad"]


def count_decimals(values: pl.Expr) -> pl.Expr:
    """Digits after the point a decimal needs (``1.50`` needs 1), as an integer expression."""
    return (
        values.cast(pl.String)
        .str.extract(r"\.([0-9]*)$", 1)
        .fill_null("")
        .str.strip_chars_end("0")
        .str.len_chars()
    )
