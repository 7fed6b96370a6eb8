"""The venue fixtures as the readers' tests walk them (not a test module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from utl.venues.base import head_text

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_heads() -> Iterator[tuple[Path, str]]:
    """Every text fixture with its head (the lines a format is recognised by), in path order."""
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file():
            continue
        try:
            yield path, head_text(path)
        except (UnicodeDecodeError, ValueError):
            continue
