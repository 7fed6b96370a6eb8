"""A date booked from its stored shards: the day step a shard of accounts at a time.

``ledger_legs`` stores a date's inputs as tables, the accounts' own ones a part file per
shard (:mod:`utl.shards`) with the plan of which accounts each part holds, the shared ones
(marks, specs, account lists) whole. :func:`book_stored_day` matches the date's transfers
once, plans the day's shards (the stored plan, the accounts carried in, the accounts a
transfer joins), reads each shard's rows when its turn comes and runs
:func:`utl.day.step_shards`; the Dagster asset only hands it the stored tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from utl import checks
from utl.day import (
    SHARED_INPUTS, DayInputs, DayOutputs, DayState, carried_accounts, match_day, step_shards, transfer_links,
)
from utl.settings import Settings
from utl.shards import ACCOUNT_SCHEMA, booked_accounts, of_accounts, plan_shards, shard_accounts


LAZY_INPUTS = ("leg_refs",)
"""Stored inputs handed to the day step as LazyFrames (DayInputs says which may be)."""


class StoredTables(Protocol):
    """A stored partition's tables: whole by name, or some shards of one, lazily."""

    def __getitem__(self, name: str) -> pl.DataFrame: ...

    def __contains__(self, name: object) -> bool: ...

    def scan(self, name: str, shards: list[int] | None = None) -> pl.LazyFrame: ...


@dataclass(frozen=True)
class StoredDay:
    """What :func:`book_stored_day` gives back besides the state and outputs."""

    after: DayState
    outputs: DayOutputs
    shards: int
    differences: pl.DataFrame  # checks.position_differences of every shard: empty when legs sum to positions


def book_stored_day(day: dt.date, before: DayState, stored: StoredTables, settings: Settings, max_rows: int,
                    lots_to: Callable[[pl.DataFrame], None] | None = None,
                    carried_lots: pl.LazyFrame | None = None) -> StoredDay:
    """``day`` from ``before`` and the date's stored inputs (``ledger_legs``' tables), in
    shards of at most ``max_rows`` rows. Raises ValueError when the shards would leave a
    stored leg or a carried row unbooked (never silently dropped); ``lots_to`` and
    ``carried_lots`` as in :func:`utl.day.step_shards`."""
    shared = {name: stored[name] for name in SHARED_INPUTS}
    matched = match_day(day, before, stored["transfers"], stored["opening_snapshots"], settings)
    own_tables = [name for name in DayInputs.TABLES if name not in SHARED_INPUTS and name in stored]
    # PLAN: the accounts each stored part holds; inputs stored before shards are one part.
    parts_of = stored["shards"] if "shards" in stored else booked_accounts({n: stored[n] for n in own_tables}, 0)
    # A stored part stays whole in one shard (its accounts linked), so each part file is read
    # once: a shard is whole parts, joined by transfers, and the accounts only carried in.
    together = [(a, b) for part in parts_of.sort("shard", "venue", "account").partition_by("shard")
                for a, b in zip(part.select("venue", "account").iter_rows(),
                                part.select("venue", "account").slice(1).iter_rows(), strict=False)]
    plan = plan_shards(pl.concat([parts_of.select("venue", "account", "rows"),
                                  carried_accounts(before).with_columns(rows=pl.lit(0, pl.Int64))]),
                       transfer_links(matched) + together, settings, max_rows)
    differences: list[pl.DataFrame] = []
    legs_read = 0

    def shards() -> Iterator[tuple[pl.DataFrame, DayInputs]]:
        nonlocal legs_read
        for accounts in shard_accounts(plan) or [ACCOUNT_SCHEMA.to_frame()]:
            parts = sorted(parts_of.join(accounts, on=["venue", "account"], how="semi")["shard"].unique().to_list())
            # A disposal's source is looked up for the few legs an exception names: the refs
            # (one per leg) are scanned for those, never read whole.
            own = {name: (stored.scan(name, parts).join(accounts.lazy(), on=["venue", "account"], how="semi")
                          if name in LAZY_INPUTS else of_accounts(stored.scan(name, parts).collect(), accounts))
                   for name in own_tables if parts}
            legs_read += own["legs"].height if "legs" in own else 0
            yield accounts, DayInputs.from_tables({**own, **shared})

    def check(before: DayState, inputs: DayInputs, after: DayState, outputs: DayOutputs) -> None:
        differences.append(checks.position_differences(before, inputs, after, outputs.derivative_legs))

    after, outputs = step_shards(day, before, shards(), matched, settings, check, lots_to, carried_lots)
    stored_legs = stored.scan("legs").select(pl.len()).collect().item()
    if legs_read != stored_legs:  # a leg of an account the plan left out would be lost
        raise ValueError(f"{day.isoformat()}: the shards read {legs_read} of the date's {stored_legs} legs")
    return StoredDay(after, outputs, max(1, plan["shard"].n_unique()), pl.concat(differences))
