"""A date's accounts in shards, so that a run holds one shard's rows at a time.

A day's work is local to a group of accounts: a fill, its legs and their dedupe belong to
one (venue, account); lots match within a book (an account's own, or a ``[books]`` group);
lots move between books only through a matched transfer. A shard is a set of whole groups
of accounts so linked, and the shards of a date are independent: booking them one after
the other gives the same rows as booking the date at once, while the largest frame the run
holds is one shard's.

Groups are packed in (venue, account) order into shards of at most ``max_rows`` rows (what
the caller weighs: the landing's rows per account when reading and booking legs, the legs
per account for the day step, whose shards are whole stored parts); a group larger than that
is a shard of its own, whole.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import polars as pl

from utl.settings import Settings

T = TypeVar("T")

# Two shards are booked at once, each holding its rows and legs: at half a million rows a
# shard the 10 M-fill benchmark day peaks at 2.4 GB in the same time as at a million, where
# it reached 3.4-4.1 GB (README, "Performance"). UTL_SHARD_ROWS changes it (tests set it to 1
# to book each account alone).
DEFAULT_SHARD_ROWS = 500_000
ACCOUNT = ["venue", "account"]
ACCOUNT_SCHEMA = pl.Schema({"venue": pl.String, "account": pl.String})
PLAN = pl.Schema({"venue": pl.String, "account": pl.String, "rows": pl.Int64, "shard": pl.Int32})


def whole_number_setting(name: str, default: int) -> int:
    """The environment variable ``name`` as a whole number of at least 1 (``default`` when
    unset or blank); anything else stops the run with a message that names it."""
    value = os.environ.get(name, "").strip()
    try:
        number = int(value) if value else default
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None
    if number < 1:
        raise ValueError(f"{name} must be at least 1, not {number}")
    return number


def shard_rows() -> int:
    """``UTL_SHARD_ROWS``: at most this many rows in a shard (a larger group is a shard alone)."""
    return whole_number_setting("UTL_SHARD_ROWS", DEFAULT_SHARD_ROWS)


def shard_threads() -> int:
    """``UTL_SHARD_THREADS``: how many shards of a date's day step are booked at once (default
    2, or 1 on a one-core machine): each holds its own rows, so memory grows with it."""
    return whole_number_setting("UTL_SHARD_THREADS", min(2, os.cpu_count() or 1))


def plan_shards(weights: pl.DataFrame, links: Iterable[tuple[tuple[str, str], tuple[str, str]]],
                settings: Settings, max_rows: int) -> pl.DataFrame:
    """PLAN: each (venue, account) of ``weights`` (venue, account, rows) with its shard.

    ``links``: pairs of accounts that must share a shard (a matched transfer); accounts of
    one ``[books]`` group always do. Shard numbers start at 0 and follow (venue, account)
    order of each shard's first account.
    """
    rows = (weights.group_by(ACCOUNT).agg(pl.col("rows").sum()).sort(ACCOUNT) if weights.height
            else PLAN.to_frame().drop("shard"))
    accounts: list[tuple[str, str]] = [(v, a) for v, a in rows.select(ACCOUNT).iter_rows()]
    size = dict(zip(accounts, rows["rows"].to_list(), strict=True))
    parent = {a: a for a in accounts}

    def root(a: tuple[str, str]) -> tuple[str, str]:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def join(a: tuple[str, str], b: tuple[str, str]) -> None:
        if a in parent and b in parent:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)

    by_book: dict[str, tuple[str, str]] = {}
    for account in accounts:
        book = settings.book_of(*account)
        if book in by_book:
            join(by_book[book], account)
        else:
            by_book[book] = account
    for a, b in links:
        join(a, b)

    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for account in accounts:  # sorted: each group listed from its first account
        groups.setdefault(root(account), []).append(account)
    shard_of: dict[tuple[str, str], int] = {}
    shard, filled = 0, 0
    for members in groups.values():
        weight = sum(size[m] for m in members)
        if filled and filled + weight > max_rows:
            shard, filled = shard + 1, 0
        for member in members:
            shard_of[member] = shard
        filled += weight
    return rows.with_columns(
        shard=pl.Series([shard_of[a] for a in accounts], dtype=pl.Int32)
    ).select(PLAN.names()).cast(PLAN)


def shard_accounts(plan: pl.DataFrame) -> list[pl.DataFrame]:
    """The accounts (venue, account) of each shard of ``plan``, in shard order."""
    if plan.height == 0:
        return []
    return [part.select(ACCOUNT) for part in plan.sort("shard", *ACCOUNT).partition_by("shard", maintain_order=True)]


def of_accounts(frame: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """The rows of ``frame`` whose (venue, account) is one of ``accounts``: ``frame`` itself,
    not a copy, when every row's is (finding that out is a pass over two columns, where the
    join would copy every column of millions of legs)."""
    if frame.height == 0 or outside(frame, accounts).height == 0:
        return frame
    return frame.join(accounts, on=ACCOUNT, how="semi")


def outside(frame: pl.DataFrame, accounts: pl.DataFrame) -> pl.DataFrame:
    """The (venue, account) pairs ``frame`` has rows of that are not among ``accounts``."""
    present = frame.lazy().select(ACCOUNT).unique().collect()
    return present.join(accounts.select(ACCOUNT), on=ACCOUNT, how="anti")


def booked_accounts(tables: dict[str, pl.DataFrame], shard: int) -> pl.DataFrame:
    """PLAN of one stored shard: every (venue, account) its tables hold a row of, weighed by
    its legs (0 for an account with snapshots or positions only)."""
    mine = [frame.lazy().select(ACCOUNT).unique().collect() for frame in tables.values()
            if "account" in frame.columns and "venue" in frame.columns]
    accounts = pl.concat(mine).unique() if mine else ACCOUNT_SCHEMA.to_frame()
    legs = (tables["legs"].lazy().group_by(ACCOUNT).agg(rows=pl.len().cast(pl.Int64)).collect()
            if "legs" in tables else None)
    rows = (accounts.join(legs, on=ACCOUNT, how="left") if legs is not None
            else accounts.with_columns(rows=pl.lit(None, pl.Int64)))
    return rows.with_columns(pl.col("rows").fill_null(0), shard=pl.lit(shard, pl.Int32)).sort(ACCOUNT).select(
        PLAN.names()).cast(PLAN)


def in_order(work: Callable[..., T], items: Iterable[tuple], threads: int) -> Iterator[T]:
    """``work(*item)`` of each of ``items``, given back in their order, with up to ``threads``
    of them running at once. ``items`` is advanced on the caller's thread (it may read the
    next shard from disk while the others run), and the oldest result is given back as soon
    as ``threads`` are under way, so at most ``threads`` items are held besides the one being
    read. An item whose work raises stops the iteration with its error, once those in
    flight end."""
    if threads <= 1:
        for item in items:
            yield work(*item)
        return
    with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="utl-shard") as pool:
        window: collections.deque[concurrent.futures.Future] = collections.deque()
        for item in items:
            window.append(pool.submit(work, *item))
            if len(window) >= threads:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
