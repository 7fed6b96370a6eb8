"""Numbers for reading (report.md): the CSV attachment keeps exact text, the email does not.

- a quantity keeps every digit it has, trailing zeros trimmed (``0.50000000`` → ``0.5``),
  with thousands separators: the ledger holds the asset's own places, so trimming is all
  that is needed;
- money is in the reporting currency with two places (half-even) and thousands separators;
- a missing value reads as a dash, never as zero.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from utl.decimals import WIDE as _WIDE

MISSING = "—"
_CENT = Decimal("0.01")


def quantity(value: Decimal | None) -> str:
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    return f"{value.normalize(_WIDE):,f}"


def money(value: Decimal | None) -> str:
    if value is None:
        return MISSING
    rounded = value.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    return f"{rounded + 0:,.2f}"  # + 0 turns -0.00 into 0.00
