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

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext

import numpy as np
import polars as pl

SCALE = 18
PRECISION = 38
DECIMAL = pl.Decimal(PRECISION, SCALE)
"""The one numeric type for quantities, prices and money."""

MAX_INTEGER_DIGITS = PRECISION - SCALE

WIDE = Context(prec=200, rounding=ROUND_HALF_EVEN)
"""The context for Python's decimal arithmetic on a quantity or an amount: a thread's own keeps
28 significant digits and rounds past them without a word, and a Decimal(38, 18) value of 10^10
or more at 18 places has 29. Every sum, difference, negation or rounding goes through it."""


def exact_sum(values: Iterable[Decimal], start: Decimal = Decimal(0)) -> Decimal:
    """``sum(values, start)`` in :data:`WIDE` (``start`` sets a zero sum's exponent, as in ``sum``)."""
    total = start
    for value in values:
        total = WIDE.add(total, value)
    return total

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

    Each of the two expressions parses the whole column: for a reader's columns use
    :func:`with_venue_decimals`, which parses each once; this is for small uses.
    """
    value = text.map_batches(lambda s: parse_venue_numbers(s)[0], return_dtype=DECIMAL, is_elementwise=True)
    bad = text.map_batches(lambda s: parse_venue_numbers(s)[1], return_dtype=pl.Boolean, is_elementwise=True)
    return value, bad


MARKED_NUMBER = r"^[+-]?[$€£]?([0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]+)?$"
"""A decimal written plainly but for a sign, a currency mark and thousands commas
(``-$5,250.00``): :func:`parse_venue_numbers` reads these without its slow path."""


def parse_venue_numbers(text: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Whole-column venue number parsing: ``(values, is_bad)``, the rules of :func:`venue_decimal`.

    Three passes, each over the cells the one before left:

    1. Polars' own parser reads the column. Its value is taken where the text cannot have
       been rounded: it parsed, has no exponent, and at most 18 digits after the point
       (Polars refuses junk and integers past 20 digits itself, but would round places).
    2. Decimals with a currency mark or thousands commas (``-$5,250.00``) lose them and are
       read the same way.
    3. The rest (blanks, blanks around, exponents, junk) go through the step-by-step
       normalisation of :func:`_parse_odd`, each step computed once over just those cells.
    """
    frame = _parse_plain(pl.DataFrame({"t": text.cast(pl.String)}), ["t"])
    return _parse_rest(frame["t"], frame["t__value"], frame["t__ok"])


def _parse_plain(cells: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Pass 1 for the text columns ``names`` of ``cells``, all columns at once (in parallel):
    ``<name>__value`` is Polars' parse, ``<name>__ok`` where it is exact."""

    def places(t: pl.Expr) -> pl.Expr:
        return (t.str.len_bytes() - t.str.find(".", literal=True) - 1).fill_null(0)

    cells = cells.with_columns(pl.col(n).str.to_decimal(scale=SCALE).alias(f"{n}__value") for n in names)
    return cells.with_columns(
        (pl.col(f"{n}__value").is_not_null() & (places(pl.col(n)) <= SCALE) & ~pl.col(n).str.contains("[eE]")).alias(f"{n}__ok")
        for n in names
    )


def _parse_rest(text: pl.Series, values: pl.Series, ok: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Passes 2 and 3 over the cells pass 1 did not take."""
    name = text.name
    no_bad = pl.Series(name, np.zeros(len(text), dtype=bool))  # as pl.repeat(False, ...), made ~5x cheaper
    if ok.all():  # every cell pass 1 took (a null ok is no cell left either): the usual column
        return values.alias(name), no_bad
    left = (~ok & text.is_not_null()).arg_true()
    if left.len() == 0:
        return values.alias(name), no_bad.alias(name)
    rest = text.gather(left)
    marked = rest.str.contains(MARKED_NUMBER)
    if marked.any():
        digits = pl.DataFrame({"t": rest.filter(marked).str.replace_many({",": "", "$": "", "€": "", "£": ""})})
        digits = _parse_plain(digits, ["t"])
        marked_ok = digits["t__ok"]
        values = values.scatter(left.filter(marked).filter(marked_ok), digits["t__value"].filter(marked_ok))
        done = marked.scatter(marked.arg_true(), marked_ok)
        left, rest = left.filter(~done), rest.filter(~done)
    if left.len() == 0:
        return values.alias(name), no_bad.alias(name)
    odd_values, odd_bad = _parse_odd(rest)
    return values.scatter(left, odd_values).alias(name), no_bad.scatter(left, odd_bad).alias(name)


def with_venue_decimals(
    frame: pl.DataFrame, texts: Mapping[str, str | pl.Expr] | None = None, /, **named: str | pl.Expr
) -> pl.DataFrame:
    """``frame`` with, for each ``name: text`` (given as a mapping or as keywords), the columns
    ``name`` (the exact decimal) and ``name__bad`` (text present but not an exact decimal);
    ``text`` is a column name or a text expression. Each column is parsed once, by the
    passes of :func:`parse_venue_numbers` (the first over all columns at once);
    :func:`venue_decimal` would parse it once per expression.
    """
    texts = {**(texts or {}), **named}
    if not texts:
        return frame
    names = list(texts)
    cells = frame.select(**{name: (pl.col(t) if isinstance(t, str) else t).cast(pl.String) for name, t in texts.items()})
    cells = _parse_plain(cells, names)
    parsed = []
    for name in names:
        value, bad = _parse_rest(cells[name], cells[f"{name}__value"], cells[f"{name}__ok"])
        parsed += [value.alias(name), bad.alias(f"{name}__bad")]
    return frame.with_columns(parsed)


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
            # Digits before the point once the exponent has moved it: the significant digits
            # less those written after the point ("0.00012e6" is 120: 3 digits, not 6).
            integer_digits=pl.col("digits").str.len_chars().cast(pl.Int64)
            - pl.col("fraction").str.len_chars().cast(pl.Int64)
            + pl.col("exponent"),
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


# ---------------------------------------------------------------- arithmetic that may not fit

# Polars fails a whole column when one sum or product leaves Decimal(38, 18) ("overflow in
# decimal multiplication"): a reader tells those rows first, refuses them, and computes only
# on the rest, so one huge cell costs its row, not the file.
LARGEST = pl.lit(Decimal("9" * MAX_INTEGER_DIGITS + "." + "9" * SCALE), DECIMAL)
"""The largest Decimal(38, 18): 99999999999999999999.999999999999999999."""

_POWERS = [pl.lit(Decimal(10**k), DECIMAL) for k in range(MAX_INTEGER_DIGITS)]
_FEW_DIGITS = Decimal(10**10)  # two factors below it in size cannot leave 20 digits


def sum_overflows(a: pl.Expr, b: pl.Expr) -> pl.Expr:
    """Whether ``a + b`` leaves Decimal(38, 18) (for ``a - b`` pass ``-b``): only when both
    have one sign and ``|a| > LARGEST - |b|``, which is computed without leaving it. False
    where either is null."""
    same_sign = ((a > 0) & (b > 0)) | ((a < 0) & (b < 0))
    return (same_sign & (a.abs() > LARGEST - b.abs())).fill_null(False)


def _integer_digits(value: pl.Expr) -> pl.Expr:
    """Digits before the point (0 below 1), counted by comparing with 1, 10, 100, ...: no text."""
    magnitude = value.abs()
    return pl.sum_horizontal([(magnitude >= power).cast(pl.Int8) for power in _POWERS])


def product_overflows(frame: pl.DataFrame, a: pl.Expr, b: pl.Expr) -> pl.Series:
    """Per row of ``frame``, whether ``a × b`` as Polars computes it (rounded half to even to
    18 places) leaves Decimal(38, 18); false where either is null.

    Factors of d and e digits before the point (d + e ≤ 20) always fit and (d + e ≥ 22)
    never do; only d + e = 21 is decided by the exact product, in Python's decimal (such rows
    are rare: a product of 10^19 or more). Usually no factor has 11 digits and nothing is counted.
    """
    bounds = frame.select(a.min().alias("a0"), a.max().alias("a1"), b.min().alias("b0"), b.max().alias("b1")).row(0)
    if all(v is None or abs(v) < _FEW_DIGITS for v in bounds):
        return pl.Series("overflows", np.zeros(frame.height, dtype=bool))
    few = pl.lit(_FEW_DIGITS, DECIMAL)
    large = frame.select(a.alias("a"), b.alias("b")).with_row_index("i").filter(
        ((pl.col("a").abs() >= few) | (pl.col("b").abs() >= few)) & pl.col("a").is_not_null() & pl.col("b").is_not_null()
    )
    digits = large.select("i", "a", "b", d=_integer_digits(pl.col("a")) + _integer_digits(pl.col("b")))
    certain = digits.filter(pl.col("d") >= 22)["i"]
    edge = digits.filter(pl.col("d") == 21)
    with localcontext() as context:
        context.prec = 2 * PRECISION + 4
        unit = Decimal(1).scaleb(-SCALE)
        limit = Decimal(10**MAX_INTEGER_DIGITS)
        over = [i for i, x, y in edge.select("i", "a", "b").iter_rows() if abs((x * y).quantize(unit, ROUND_HALF_EVEN)) >= limit]
    overflows = np.zeros(frame.height, dtype=bool)
    overflows[certain.to_numpy()] = True
    overflows[np.asarray(over, dtype=np.int64)] = True
    return pl.Series("overflows", overflows)
