"""Refused input: errors that name the file, the row and the column, and the quarantine.

Nothing is dropped silently. A reader that refuses a row returns it as a quarantine row
(file relative to the landing folder, 1-based data row, column or null for the whole row,
reason, raw text); a command that must refuse its whole input raises :class:`BadInput`
carrying every error it found, by row, not a count.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


def __getattr__(name: str):
    # The quarantine's schema is named once, in utl.schemas, which loads pandera (~9 MB, 0.15 s):
    # read from there only when asked for, so a process that only raises BadInput (the
    # costing engine) never loads it.
    if name == "QUARANTINE_SCHEMA":
        from utl.schemas import QUARANTINE

        return QUARANTINE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class RowError:
    """One refused value: where it is and why."""

    file: str | None
    row: int | None
    column: str | None
    reason: str
    raw: str | None = None
    trade_id: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}" + (f" (trade_id {self.trade_id!r})" if self.trade_id else ""))
        if self.column:
            where.append(f'column "{self.column}"')
        return (": ".join([", ".join(where), self.reason]) if where else self.reason) + (
            f": {self.raw!r}" if self.raw is not None else ""
        )


class BadInput(ValueError):
    """Input refused as a whole; ``errors`` lists every problem found, in row order."""

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        shown = "\n".join(str(e) for e in errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(shown + more)


def empty_quarantine() -> pl.DataFrame:
    from utl.schemas import QUARANTINE

    return QUARANTINE.to_frame()


def quarantine_file(file: str, reason: str, raw: str | None = None) -> pl.DataFrame:
    """A whole file refused (unknown header, bad encoding, truncated JSON): one entry."""
    from utl.schemas import QUARANTINE

    return pl.DataFrame(
        [{"file": file, "row": None, "column": None, "reason": reason, "raw": raw}],
        schema=QUARANTINE,
    )
