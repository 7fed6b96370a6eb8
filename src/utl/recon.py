"""Reconciliation: the ledger's positions against what the venues say they hold.

Per (date, venue, account, asset) of an account with a snapshot that date: ``diff =
venue_qty - ledger_qty``; a break where ``|diff|`` exceeds the asset's tolerance. An asset
absent from a snapshot is held at zero there; an account without a snapshot that date is
not reconciled (no rows), and a missing snapshot is never read as "flat".

Kinds: ``missing_at_venue`` (the ledger holds it, the snapshot does not list it),
``missing_in_ledger`` (the venue holds it, the ledger has nothing), ``qty_mismatch``.
``first_seen`` ages a break across the account's reconciled dates: it carries over while
the same (venue, account, asset) broke on the account's previous reconciled date.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from utl.decimals import DECIMAL
from utl.schemas import BREAKS, CLEARED
from utl.snapshots import holdings

KEY = ["venue", "account", "asset"]


def find_breaks(
    day: dt.date,
    ledger: pl.DataFrame,
    snapshot: pl.DataFrame,
    tolerance: dict[str, Decimal],
    marks: pl.DataFrame,
    previous: pl.DataFrame,
    venue_tolerance: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Breaks of ``day``.

    ``ledger``: (venue, account, asset, qty) end-of-day ledger positions. ``snapshot``:
    (venue, account, asset, total) of the accounts with a snapshot that day. ``marks``:
    (asset, mark) of the day. ``previous``: each account's breaks on its previous
    reconciled date (BREAKS schema), for ``first_seen``. ``venue_tolerance``: (venue, asset,
    tolerance) defaults for the assets ``tolerance`` does not name (asset ``*``: any other
    asset of the venue; :mod:`utl.precision`); without it the default is 0.
    """
    # An empty snapshot's marker row names its account (reconciled against zero), no asset.
    accounts = snapshot.select("venue", "account").unique()
    held = ledger.join(accounts, on=["venue", "account"], how="semi")
    snapshot = holdings(snapshot)
    tolerances = pl.DataFrame(
        {"asset": list(tolerance), "tolerance": pl.Series([tolerance[a] for a in tolerance], dtype=DECIMAL)},
        schema={"asset": pl.String, "tolerance": DECIMAL},
    )
    compared = (
        held.rename({"qty": "ledger_qty"})
        .join(snapshot.rename({"total": "venue_qty"}).select(*KEY, "venue_qty"), on=KEY, how="full", coalesce=True)
        .with_columns(
            listed=pl.col("venue_qty").is_not_null(),
            ledger_qty=pl.col("ledger_qty").fill_null(pl.lit(0, DECIMAL)),
            venue_qty=pl.col("venue_qty").fill_null(pl.lit(0, DECIMAL)),
        )
        .join(tolerances, on="asset", how="left")
        .pipe(_venue_defaults, venue_tolerance)
        .with_columns(tolerance=pl.col("tolerance").fill_null(pl.lit(0, DECIMAL)), diff=pl.col("venue_qty") - pl.col("ledger_qty"))
        .filter(pl.col("diff").abs() > pl.col("tolerance"))
    )
    carried = previous.select(*KEY, pl.col("first_seen").alias("was_first_seen"))
    return (
        compared.join(carried, on=KEY, how="left")
        .join(marks, on="asset", how="left")
        .select(
            business_date=pl.lit(day, pl.Date),
            venue="venue", account="account", asset="asset",
            ledger_qty="ledger_qty", venue_qty="venue_qty", diff="diff", tolerance="tolerance",
            first_seen=pl.coalesce("was_first_seen", pl.lit(day, pl.Date)),
            kind=pl.when(~pl.col("listed")).then(pl.lit("missing_at_venue"))
            .when(pl.col("ledger_qty") == 0).then(pl.lit("missing_in_ledger"))
            .otherwise(pl.lit("qty_mismatch")),
            mark="mark",
            # No mark: the difference is unpriced (null), never valued at zero.
            diff_value=pl.col("diff") * pl.col("mark"),
        )
        .cast(BREAKS)
        .sort(KEY)
    )


def _venue_defaults(compared: pl.DataFrame, venue_tolerance: pl.DataFrame | None) -> pl.DataFrame:
    """``tolerance`` filled, where ``[tolerance]`` named none, from the venue's own asset,
    then from its ``*`` row."""
    if venue_tolerance is None or venue_tolerance.height == 0:
        return compared
    own = venue_tolerance.filter(pl.col("asset") != "*").rename({"tolerance": "__own"})
    other = venue_tolerance.filter(pl.col("asset") == "*").select("venue", pl.col("tolerance").alias("__any"))
    return (
        compared.join(own, on=["venue", "asset"], how="left")
        .join(other, on="venue", how="left")
        .with_columns(tolerance=pl.coalesce("tolerance", "__own", "__any"))
        .drop("__own", "__any")
    )


def cleared(day: dt.date, previous: pl.DataFrame, breaks: pl.DataFrame, reconciled: pl.DataFrame) -> pl.DataFrame:
    """Breaks of the previous reconciled date that ``day`` (reconciled for their account)
    no longer shows: (venue, account, asset, first_seen, cleared_on)."""
    open_before = previous.join(reconciled, on=["venue", "account"], how="semi")
    return open_before.join(breaks, on=KEY, how="anti").select(*KEY, "first_seen", cleared_on=pl.lit(day, pl.Date))
