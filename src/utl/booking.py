"""A date's legs booked a shard of accounts at a time, from the rows UTL's memory holds.

Each shard's rows are read from the stored files of its accounts (:meth:`LandingMemory.day_rows`)
and booked (:func:`utl.memory.book_day`) on one of ``threads`` threads, while the caller
stores the shard before: reading and booking are Polars work that releases the GIL, and a
date's shards are independent once the first has read the shared files (marks, listed
transfers, instruments, account lists), which every shard books with. Shards come back in
the plan's order whatever the threads, with their rows' digest, so the date's fingerprint and
everything stored are those of one shard at a time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from utl.day import DayInputs
from utl.memory import SHARD_ROWS, SHARED_ROWS, DayDigest, LandingMemory, book_day, shard_day_rows
from utl.shards import in_order, shard_accounts


@dataclass(frozen=True)
class BookedShard:
    shard: int
    inputs: DayInputs
    refused: pl.DataFrame  # every refusal of the shard's rows (DATED_QUARANTINE)
    digest: DayDigest  # of the rows read, for the date's fingerprint
    counts: Counter  # rows read: fills, ledger lines, snapshot rows, marks


def book_shards(memory: LandingMemory, day: dt.date, plan: pl.DataFrame, threads: int) -> Iterator[BookedShard]:
    """Every shard of ``plan`` (PLAN; empty: the date whole, as one shard) booked, in order."""
    shards = list(enumerate(shard_accounts(plan) or [None]))
    shared: dict[str, pl.DataFrame] = {}

    def book(shard: int, accounts: pl.DataFrame | None) -> BookedShard:
        read = memory.day_rows(day, accounts, shared=shard == 0)
        digest = DayDigest().add(read)
        counts = Counter({"fills": read.fills.height, "ledger_lines": read.movements.height,
                          "snapshot_rows": read.balances.height, "marks": read.marks.height})
        if shard == 0:  # the shared files are read with the first shard, once
            shared.update({name: getattr(read, name) for name in SHARED_ROWS})
        rows = shard_day_rows(day, {name: getattr(read, name) for name in SHARD_ROWS}, shared, plan, shard)
        del read
        inputs, refused = book_day(rows)
        return BookedShard(shard, inputs, refused, digest, counts)

    yield book(*shards[0])
    yield from in_order(book, shards[1:], threads)


class StoredRows(Protocol):
    """A ``landing_rows`` partition stored by an earlier version: every shard's rows."""

    def __getitem__(self, name: str) -> pl.DataFrame: ...

    def parts(self, name: str) -> int: ...

    def part(self, name: str, shard: int) -> pl.DataFrame: ...


def book_stored_shards(stored: StoredRows, day: dt.date, plan: pl.DataFrame) -> Iterator[BookedShard]:
    """The shards of rows stored whole by an earlier version (a part file each, the shared
    tables with shard 0), booked as they were stored: no digest (their fingerprint was stored
    with them) and no counts."""
    shared = {name: stored[name] for name in SHARED_ROWS}
    for shard in range(stored.parts("fills")):
        rows = shard_day_rows(day, {name: stored.part(name, shard) for name in SHARD_ROWS}, shared, plan, shard)
        yield BookedShard(shard, *book_day(rows), DayDigest(), Counter())
