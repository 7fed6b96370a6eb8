"""Plain text tables for a terminal: one line per row, never wrapped, numbers right-aligned.

Cells are already text (formatted by :mod:`utl.report.formatting`); a wide table is wide
rather than folded, so ``grep`` and ``less -S`` keep working on it.
"""

from __future__ import annotations

from collections.abc import Sequence


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[str] = (),
                 indent: str = "  ") -> str:
    """The rows under their header; columns named in ``right`` are right-aligned."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    aligned = [h in right for h in header]
    lines = []
    for row in (header, *rows):
        cells = [str(c).rjust(w) if a else str(c).ljust(w) for c, w, a in zip(row, widths, aligned)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)
