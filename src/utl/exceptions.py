"""Ledger exceptions: what the books cannot explain on their own (ledger.md, ``utl.exceptions``).

One row per (business_date, venue, account, asset, kind) while the case stands:

- ``in_transit``: withdrawals no deposit has matched once the window has passed (at the end
  of the date, ``ts + window`` is behind us), on every date they stay unmatched; quantity is
  their gross amount (what left: the amount and its stated fee);
- ``external_deposit``: the date's deposits that matched no withdrawal (booked at the day's
  mark as an acquisition); quantity is the deposit;
- ``missing_acquisition``: a spot position below zero at the end of the date, in an account
  not declared ``margin`` or ``derivatives`` in ``[accounts]``: something was disposed of
  that no file shows being acquired; quantity is the uncovered part;
- ``fee_asset_assumed``: the date's fees whose asset the export does not state (Kraken's
  trades export without its ledgers export, utl.fee_assumed): they may sit in the wrong
  asset; quantity is the fees charged in the asset assumed.

``value`` is quantity x the day's mark (null where the asset has none: unpriced, never
zero). ``first_seen`` is the first date of the unbroken run of dates with the row (carried
from the day before's rows). ``first_ts`` is when the case began: the oldest pending
withdrawal, the first deposit, the leg that took the position below zero; ``age_days`` is
the date less the day of ``first_ts``. ``refs`` lists the source rows, ``file:row;...``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.decimals import DECIMAL
from utl.schemas import EXCEPTIONS, UTC_TS
from utl.settings import Settings
from utl.transfer_legs import source_ref

KEY = ["venue", "account", "asset"]


def _end_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.timezone.utc)


def _rows(day: dt.date, kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """Per (venue, account, asset): quantity summed, first_ts the earliest, refs joined."""
    # Lazy: an eager Decimal sum in group_by can wrap silently on overflow (decimals.py).
    return (
        frame.lazy().sort("ts", "venue", "account", maintain_order=True).group_by(KEY, maintain_order=True)
        .agg(pl.col("quantity").sum(), pl.col("ts").min().alias("first_ts"), pl.col("refs").str.join(";"))
        .with_columns(kind=pl.lit(kind))
        .collect()
    )


def in_transit(day: dt.date, pending: pl.DataFrame, window_hours: int) -> pl.DataFrame:
    overdue = pending.filter(pl.col("ts") + dt.timedelta(hours=window_hours) < _end_of(day))
    return _rows(day, "in_transit", overdue.select(*KEY, "ts", "refs", quantity=pl.col("amount") + pl.col("fee")))


def external_deposits(day: dt.date, unmatched: pl.DataFrame) -> pl.DataFrame:
    return _rows(day, "external_deposit", unmatched.select(*KEY, "ts", "refs", quantity="amount"))


def missing_acquisitions(day: dt.date, start: pl.DataFrame, end: pl.DataFrame, legs: pl.DataFrame,
                         leg_refs: pl.DataFrame | pl.LazyFrame, previous: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Spot positions below zero at the end of ``day`` in accounts that may not go short.

    ``start``/``end``: (venue, account, asset, qty) at the start and end of the day; ``legs``:
    the day's legs; ``leg_refs``: LEG_REFS; ``previous``: the day before's exceptions. A run that goes on keeps the
    time and rows it began with; a new one starts at the leg after which the position first
    stood below zero (the day's start when it opened below zero)."""
    short = end.filter(pl.col("qty") < 0)
    if short.height == 0:
        return _rows(day, "missing_acquisition", pl.DataFrame(schema={**{k: pl.String for k in KEY}, "ts": UTC_TS,
                                                                         "refs": pl.String, "quantity": DECIMAL}))
    allowed = pl.Series([not settings.may_go_short(v, a) for v, a in short.select("venue", "account").iter_rows()],
                        dtype=pl.Boolean)
    short = short.filter(allowed)
    before = previous.filter(pl.col("kind") == "missing_acquisition").select(*KEY, "first_ts", prev_refs="refs")
    # Where the position first stood below zero today: a running sum over the short keys' legs only.
    running = (
        legs.join(short.select(KEY), on=KEY, how="semi").with_row_index("__n")
        .join(start.select(*KEY, pl.col("qty").alias("start_qty")), on=KEY, how="left")
        .sort("ts", "__n")
        .with_columns(after=pl.col("start_qty").fill_null(pl.lit(0, DECIMAL)) + pl.col("qty").cum_sum().over(KEY))
        .filter(pl.col("after") < 0)
        .group_by(KEY).agg(pl.col("ts").first().alias("cross_ts"), pl.col("leg_id").first())
    )
    refs = (leg_refs.lazy().filter(pl.col("leg_id").is_in(running["leg_id"].implode()))  # a few of millions
            .select("venue", "account", "leg_id", "source_file", "source_row").collect())
    running = (running.join(refs, on=["venue", "account", "leg_id"], how="left")
               .select(*KEY, "cross_ts", refs=source_ref()))
    opened = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
    found = (
        short.join(before, on=KEY, how="left").join(running, on=KEY, how="left")
        .select(
            *KEY, quantity=-pl.col("qty"),
            ts=pl.coalesce("first_ts", "cross_ts", pl.lit(opened, UTC_TS)),
            refs=pl.coalesce("prev_refs", "refs", pl.lit("")),
        )
    )
    return _rows(day, "missing_acquisition", found)


def fee_assets_assumed(day: dt.date, legs: pl.DataFrame, leg_refs: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """The day's fee legs whose asset their export does not state, per (venue, account, asset).

    ``legs``: the day's booked legs (DAY_LEGS); ``leg_refs``: LEG_REFS, which carry the flag.
    Quantity is the fees charged (positive); refs the fee rows. An account booked from its
    ledgers export has no such leg: the row is gone on the dates that export covers."""
    flagged = (leg_refs.lazy().filter(pl.col("fee_asset_assumed"))  # few
               .select("venue", "account", "leg_id", refs=source_ref()).collect())
    # The flagged legs are few (most days none): the day's legs are cut to their ids first.
    fees = (legs.clear() if flagged.height == 0 else legs).filter(pl.col("leg_id").is_in(flagged["leg_id"].implode()) & (pl.col("kind") == "fee")
                       & (pl.col("qty") < 0)).join(
        flagged, on=["venue", "account", "leg_id"], how="inner")
    return _rows(day, "fee_asset_assumed", fees.sort("ts", "leg_id").select(*KEY, "ts", "refs", quantity=-pl.col("qty")))


def day_exceptions(day: dt.date, found: list[pl.DataFrame], marks: pl.DataFrame,
                   previous: pl.DataFrame) -> pl.DataFrame:
    """The date's rows of utl.exceptions from the cases found, valued and aged."""
    rows = pl.concat([f.select(*KEY, "kind", "quantity", "first_ts", "refs").cast(
        {"quantity": DECIMAL, "first_ts": UTC_TS}) for f in found])
    carried = previous.select(*KEY, "kind", pl.col("first_seen").alias("was_first_seen"))
    return (
        rows.join(carried, on=[*KEY, "kind"], how="left")
        .join(marks, on="asset", how="left")
        .select(
            business_date=pl.lit(day, pl.Date), venue="venue", account="account", asset="asset", kind="kind",
            quantity="quantity", mark="mark", value=pl.col("quantity") * pl.col("mark"),
            first_seen=pl.coalesce("was_first_seen", pl.lit(day, pl.Date)), first_ts="first_ts",
            age_days=(pl.lit(day, pl.Date) - pl.col("first_ts").dt.date()).dt.total_days(), refs="refs",
        )
        .cast(EXCEPTIONS)
        .sort(*KEY, "kind")
    )


def provisional(pnl: pl.DataFrame, exceptions: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """utl.pnl rows of a (book, asset) with a missing acquisition that day, marked provisional."""
    missing = exceptions.filter(pl.col("kind") == "missing_acquisition")
    if missing.height == 0:
        return pnl
    books = missing.select(
        book=pl.Series([settings.book_of(v, a) for v, a in missing.select("venue", "account").iter_rows()],
                       dtype=pl.String),
        asset=missing["asset"], __hit=pl.lit(True),
    ).unique()
    return pnl.join(books, on=["book", "asset"], how="left").with_columns(
        provisional=pl.col("provisional") | pl.col("__hit").fill_null(False)).drop("__hit")


__all__ = ["day_exceptions", "external_deposits", "fee_assets_assumed", "in_transit", "missing_acquisitions",
           "provisional"]
