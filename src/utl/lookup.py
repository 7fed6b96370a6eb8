"""Looking up a small table from a long column without joining the long frame.

A left join gathers every column of the long frame into a new one (10 M legs: the whole
frame again); here the long column's text is dictionary-encoded (Polars ``Enum`` or
``Categorical``) and each row gets the *row number* of its key in the small table, so one
column is added and nothing else is copied. Codes are only compared within one column.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def _codes(values: pl.Series) -> np.ndarray:
    return values.cast(pl.String).cast(pl.Categorical).to_physical().cast(pl.Int64).fill_null(-1).to_numpy()


def rows_of(values: pl.Series, keys: pl.Series) -> pl.Series:
    """For each of ``values`` the row of ``keys`` (distinct, no null) holding it; null
    where none does or the value is null. The keys become an ``Enum`` in their own order,
    so a value's code *is* its key's row."""
    as_keys = values.cast(pl.String).cast(pl.Enum(keys.cast(pl.String)), strict=False)
    return as_keys.to_physical().cast(pl.Int64)


def pair_rows(first: pl.Series, second: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct (first, second) pairs: ``(one row holding each pair, each row's pair
    number)``; pair numbers index the first result."""
    runs = _pair_runs(first, second)
    if runs is not None:
        return runs
    a = _codes(first) + 1
    b = _codes(second) + 1
    width = int(b.max(initial=0)) + 1
    key = a * width + b
    size = (int(a.max(initial=0)) + 1) * width
    if size <= 1 << 24:  # a table over the codes: no sort
        seen = np.zeros(size, bool)
        seen[key] = True
        distinct = np.flatnonzero(seen)
        number = np.full(size, -1, np.int64)
        number[distinct] = np.arange(len(distinct))
        pair = number[key]
    else:
        distinct, pair = np.unique(key, return_inverse=True)
    row = np.empty(len(distinct), np.int64)
    row[pair] = np.arange(len(key))  # any row of each pair will do
    return pl.Series(row), pair


def _pair_runs(first: pl.Series, second: pl.Series) -> tuple[pl.Series, np.ndarray] | None:
    """:func:`pair_rows` where equal pairs stand in a few runs (a shard's legs come account
    by account): told by comparing each row with the one before, no text hashed; None when
    the runs are many."""
    n = len(first)
    if n == 0:
        return None
    changed = first.ne_missing(first.shift(1)) | second.ne_missing(second.shift(1))
    flags = changed.to_numpy().copy()
    flags[0] = True
    starts = np.flatnonzero(flags)
    if len(starts) > max(64, n // 256):
        return None
    number: dict[tuple, int] = {}
    run_pair = np.array([number.setdefault(pair, len(number)) for pair in
                         zip(first.gather(starts).to_list(), second.gather(starts).to_list(), strict=True)], np.int64)
    row = np.empty(len(number), np.int64)
    row[run_pair] = starts  # any row of each pair will do
    return pl.Series(row), np.repeat(run_pair, np.diff(np.append(starts, n)))
