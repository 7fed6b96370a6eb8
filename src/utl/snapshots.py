"""Balance snapshots: what a venue says an account holds at the end of a day.

A snapshot that lists no asset (a header-only ``asset,total`` CSV, a balance JSON with no
holdings) is an account holding nothing: it is reconciled, every ledger position against
zero. It is not the same as no snapshot, which leaves the account unreconciled that day
(eod.md). So that "this account has a snapshot on D" survives every step that stores or
passes rows (the landing memory's Parquet, the day's inputs), an empty snapshot is carried
as one *marker* row: the account and date, a null asset and a zero total. Readers of the
holdings use :func:`holdings`; readers of "which accounts have a snapshot" see the marker
like any row.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.schemas import BALANCES_OUT


def nothing_held(day: dt.date, venue: str, account: str, file: str) -> pl.DataFrame:
    """The marker row (BALANCES_OUT) of a snapshot file that lists no asset."""
    return pl.DataFrame(
        {"business_date": [day], "venue": [venue], "account": [account], "asset": [None], "total": [0],
         "source_file": [file], "source_row": [0]},
    ).cast(BALANCES_OUT)


def holdings(snapshots: pl.DataFrame) -> pl.DataFrame:
    """The assets snapshots list, without the markers of empty ones."""
    return snapshots.filter(pl.col("asset").is_not_null())
