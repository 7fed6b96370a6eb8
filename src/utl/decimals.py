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

_STRICT = r"^-?\d+(\.\d{1,18})?$"
_VENUE_NUMBER = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"


def strict_decimal(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Parse contract-grammar decimal text.

    Returns ``(value, is_bad)``: ``value`` is the exact decimal (null where bad), ``is_bad``
    is true where the text is present but not a decimal of the grammar or too large.
    A null input gives a null value and ``is_bad`` false: callers decide what null means.
    """
    integer_digits = text.str.extract(r"^-?(\d+)", 1).str.strip_chars_start("0").str.len_chars()
    ok = text.str.contains(_STRICT) & (integer_digits <= MAX_INTEGER_DIGITS)
    value = pl.when(ok).then(text).otherwise(None).str.to_decimal(scale=SCALE)
    return value, text.is_not_null() & ~ok


def venue_decimal(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Parse a number as venues write it, exactly.

    ``"1,300.50"``, ``" +2 "``, ``"$65,000.00"``, ``"-3.605E-05"`` and ``"0E-18"`` parse;
    ``"--"`` and ``""`` are null (not bad). A value needing more than 18 digits after the
    point or 20 before it is bad, never rounded.
    """
    cleaned = (
        text.str.strip_chars()
        .str.replace_all(",", "", literal=True)
        .str.replace(r"^([+-]?)[$€£]", "${1}")
    )
    blank = cleaned.is_null() | cleaned.is_in(["", "--"])
    well_formed = cleaned.str.contains(_VENUE_NUMBER)
    mantissa = cleaned.str.extract(r"^[+-]?([0-9.]+)", 1)
    exponent = cleaned.str.extract(r"[eE]([+-]?\d+)$", 1).cast(pl.Int64).fill_null(0)
    fraction = mantissa.str.extract(r"\.(\d*)$", 1).fill_null("").str.strip_chars_end("0")
    integer = mantissa.str.extract(r"^(\d*)", 1).str.strip_chars_start("0")
    # Shifting by the exponent moves digits between the two sides of the point.
    frac_digits = fraction.str.len_chars().cast(pl.Int64) - exponent
    int_digits = integer.str.len_chars().cast(pl.Int64) + exponent
    fits = (frac_digits <= SCALE) & ((int_digits <= MAX_INTEGER_DIGITS) | (integer.str.len_chars() == 0))
    ok = ~blank & well_formed & fits
    value = pl.when(ok).then(cleaned).otherwise(None).str.to_decimal(scale=SCALE)
    return value, ~blank & ~ok


def count_decimals(values: pl.Expr) -> pl.Expr:
    """Digits after the point a decimal needs (``1.50`` needs 1), as an integer expression."""
    return (
        values.cast(pl.String)
        .str.extract(r"\.(\d*)$", 1)
        .fill_null("")
        .str.strip_chars_end("0")
        .str.len_chars()
    )
