"""Shards of books: several bookers of one landing, each the only writer of its books.

A booker run as ``utl stream --shard I/N`` books only the fills whose book
(``Settings.book_of(venue, account)``: an account, or the group it belongs to) falls in
shard I of N, by a hash of the book's name that every booker computes alike. Costing is per
book, so bookers of different shards never touch the same lots, positions or PnL rows and
may commit side by side; each commits its own stream sequence under its own consumer name
(``utl-stream[I/N]``) and holds its own PostgreSQL advisory lock, so two bookers of the same
shard cannot interleave. Every booker still reads every message (the subject names a venue
and account, and the book they belong to is the landing's ``utl.toml``'s to say); it parses,
costs and writes only its own.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int = 1  # 1-based
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        """``I/N`` with 1 ≤ I ≤ N."""
        found = _SPEC.match(text)
        if not found or not 1 <= int(found[1]) <= int(found[2]):
            raise ValueError(f"--shard {text!r}: give I/N with 1 <= I <= N, e.g. 1/4")
        return cls(int(found[1]), int(found[2]))

    @property
    def whole(self) -> bool:
        return self.count == 1

    def consumer(self, base: str) -> str:
        """The name the shard commits its sequence and takes its lock under."""
        return base if self.whole else f"{base}[{self.index}/{self.count}]"

    def owns(self, book: str) -> bool:
        return self.whole or book_shard(book, self.count) == self.index


def book_shard(book: str, count: int) -> int:
    """The shard (1..count) of a book: the same on every machine and every run."""
    return int.from_bytes(hashlib.sha256(book.encode()).digest()[:8], "big") % count + 1


def shard_count_of(consumer: str, base: str) -> int | None:
    """How many shards a committed consumer name was booked with (None: another consumer)."""
    if consumer == base:
        return 1
    found = re.fullmatch(re.escape(base) + r"\[(\d+)/(\d+)\]", consumer)
    return int(found[2]) if found else None


def owned(frame: pl.DataFrame, shard: Shard, book_of: Callable[[str, str], str]) -> pl.DataFrame:
    """The rows of ``frame`` (with ``book``, else ``venue`` and ``account``) in ``shard``."""
    if shard.whole or frame.height == 0:
        return frame
    if "book" in frame.columns:
        books = frame["book"].unique().to_list()
        return frame.filter(pl.col("book").is_in([b for b in books if shard.owns(b)]))
    pairs = frame.select("venue", "account").unique()
    mine = pairs.filter(pl.Series([shard.owns(book_of(v, a)) for v, a in pairs.iter_rows()], dtype=pl.Boolean))
    return frame.join(mine, on=["venue", "account"], how="semi")
