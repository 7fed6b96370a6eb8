"""The end-of-day run over a landing folder, date by date (../shared/contracts/eod.md).

Reads the landing folder once (:mod:`utl.ingest`), books legs (:mod:`utl.legs`), then
computes every business date from the first through the requested one, in order, each from
the previous date's state (:mod:`utl.daily`), and reconciles each account that has a
snapshot that date (:mod:`utl.recon`). Nothing here touches a database: the caller writes
each :class:`DayOutput` where it wants (PostgreSQL, Parquet).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from utl.daily import DayState, empty_state, marks_for, run_day, with_book
from utl.decimals import DECIMAL
from utl.errors import QUARANTINE_SCHEMA
from utl.ingest import Ingested, ingest_landing
from utl.legs import book_legs
from utl.recon import BREAKS, cleared, find_breaks
from utl.schemas import Legs, validate_rows

POSITIONS_TABLE = pl.Schema(
    {
        "business_date": pl.Date, "venue": pl.String, "account": pl.String, "asset": pl.String, "qty": DECIMAL,
        "mark": DECIMAL, "market_value": DECIMAL, "cost_basis": DECIMAL, "unrealized_pnl": DECIMAL, "book": pl.String,
    }
)


RUN_LEG_COLUMNS = ["venue", "account", "leg_id", "ts", "asset", "qty", "kind", "trade_id", "price", "quote", "business_date"]


class RunError(RuntimeError):
    """The run could not complete (no landing folder, nothing to run, a missing mark...)."""


@dataclass(frozen=True)
class DayOutput:
    business_date: dt.date
    positions: pl.DataFrame  # POSITIONS_TABLE: the contract's utl.positions rows
    lots: pl.DataFrame
    pnl: pl.DataFrame
    explain: pl.DataFrame
    breaks: pl.DataFrame  # BREAKS
    cleared: pl.DataFrame  # breaks of earlier dates that this date cleared
    legs: int


@dataclass(frozen=True)
class Prepared:
    ingested: Ingested  # settings, balances, marks, files, quarantine (fills and ledger lines emptied once booked)
    legs: pl.DataFrame  # booked legs of open accounts (RUN_LEG_COLUMNS), with business_date
    openings: pl.DataFrame  # (venue, account, asset, qty, first_date): opening snapshots
    first_dates: pl.DataFrame  # (venue, account, first_date)
    quarantine: pl.DataFrame  # the ingest's, plus legs that cannot be booked


Progress = Callable[[str], None]


def prepare(landing: Path, progress: Progress = lambda _: None) -> Prepared:
    if not landing.is_dir():
        raise RunError(f"no landing folder at {landing}")
    started = time.perf_counter()
    ingested = ingest_landing(landing)
    progress(
        f"ingest: {ingested.files.height} files, {ingested.fills.height} fills, {ingested.movements.height} ledger lines, "
        f"{ingested.balances.height} balances, {ingested.marks.height} marks, {ingested.quarantine.height} quarantined "
        f"({time.perf_counter() - started:.2f} s)"
    )
    started = time.perf_counter()
    legs, refused_legs = validate_rows(book_legs(ingested.fills, ingested.movements, ingested.ledger_accounts), Legs)
    firsts = (
        ingested.balances.lazy().group_by("venue", "account").agg(pl.col("business_date").min().alias("opened"))
        .with_columns(first_date=pl.col("opened") + pl.duration(days=1)).collect()
    )
    openings = ingested.balances.join(firsts, left_on=["venue", "account", "business_date"],
                                      right_on=["venue", "account", "opened"]).select(
        "venue", "account", "asset", pl.col("total").alias("qty"), "first_date"
    )
    legs = legs.with_columns(business_date=pl.col("ts").dt.date()).join(
        firsts.select("venue", "account", "first_date"), on=["venue", "account"], how="left"
    )
    # An account with no snapshot has no opening state: its legs cannot be booked. Say so.
    orphans = legs.filter(pl.col("first_date").is_null())
    orphan_rows = orphans.group_by("venue", "account").agg(pl.col("source_file").first(), pl.len()).select(
        file=pl.col("source_file"), row=pl.lit(None, pl.Int64), column=pl.lit(None, pl.String),
        reason=pl.format("account {}/{} has no balance snapshot, so no opening state: its {} legs are not booked",
                         pl.col("venue"), pl.col("account"), pl.col("len")),
        raw=pl.lit(None, pl.String),
    )
    # Legs before an account's first business date are already in its opening snapshot.
    booked = legs.filter(pl.col("first_date").is_not_null() & (pl.col("business_date") >= pl.col("first_date")))
    progress(f"ledger: {booked.height} legs booked, {legs.height - booked.height - orphans.height} before opening "
             f"snapshots ({time.perf_counter() - started:.2f} s)")
    quarantine = pl.concat([ingested.quarantine, refused_legs, orphan_rows.cast(QUARANTINE_SCHEMA)])
    # From here on the run needs only what a leg moves: keeping the fills, ledger lines and
    # every leg's provenance text for the whole run costs more memory than all the rest.
    booked = booked.select(RUN_LEG_COLUMNS)
    ingested = dataclasses.replace(ingested, fills=ingested.fills.clear(), movements=ingested.movements.clear())
    return Prepared(ingested, booked, openings, firsts.select("venue", "account", "first_date"), quarantine)


def business_dates(prepared: Prepared, through: dt.date) -> list[dt.date]:
    if prepared.first_dates.height == 0:
        raise RunError("no balance snapshot in the landing folder: no account has an opening state")
    first = prepared.first_dates["first_date"].min()
    if through < first:
        raise RunError(f"{through.isoformat()} is before the first business date {first.isoformat()}")
    return [first + dt.timedelta(days=i) for i in range((through - first).days + 1)]


def run_dates(prepared: Prepared, through: dt.date, progress: Progress = lambda _: None) -> Iterator[DayOutput]:
    """Every business date from the first through ``through``, in order."""
    settings = prepared.ingested.settings
    marks = prepared.ingested.marks
    balances = prepared.ingested.balances
    dates = business_dates(prepared, through)
    state: DayState = empty_state(dates[0] - dt.timedelta(days=1))
    last_breaks = BREAKS.to_frame()  # each account's breaks on its last reconciled date
    for day in dates:
        started = time.perf_counter()
        openings = prepared.openings.filter(pl.col("first_date") == day).drop("first_date")
        legs = prepared.legs.filter(pl.col("business_date") == day)
        try:
            result = run_day(day, state, openings, legs, marks, settings)
        except ValueError as exc:
            raise RunError(f"{day.isoformat()}: {exc}") from exc
        state = result.state
        snapshot = balances.filter(pl.col("business_date") == day).join(
            prepared.first_dates.filter(pl.col("first_date") <= day), on=["venue", "account"], how="semi"
        )
        reconciled = snapshot.select("venue", "account").unique()
        previous = last_breaks.join(reconciled, on=["venue", "account"], how="semi")
        breaks = find_breaks(day, state.positions, snapshot, settings.tolerance,
                             marks_for(marks, day, settings.reporting_currency), previous)
        gone = cleared(day, previous, breaks, reconciled)
        last_breaks = pl.concat([last_breaks.join(reconciled, on=["venue", "account"], how="anti"), breaks])
        positions = _positions_table(day, result.positions, snapshot,
                                     marks_for(marks, day, settings.reporting_currency), settings)
        progress(
            f"{day.isoformat()}: {legs.height} legs, {positions.height} positions, {breaks.height} breaks, "
            f"{gone.height} cleared ({time.perf_counter() - started:.2f} s)"
        )
        yield DayOutput(day, positions, result.state.lots.with_columns(business_date=pl.lit(day, pl.Date)),
                        result.pnl, result.explain, breaks, gone, legs.height)


def _positions_table(day: dt.date, valued: pl.DataFrame, snapshot: pl.DataFrame, marks: pl.DataFrame,
                     settings) -> pl.DataFrame:
    """The contract's rows: every non-zero ledger position, and every asset a snapshot holds
    non-zero that the ledger does not (quantity 0 there)."""
    venue_only = (
        snapshot.filter(pl.col("total") != 0)
        .join(valued, on=["venue", "account", "asset"], how="anti")
        .select("venue", "account", "asset")
    )
    zero = pl.lit(0, DECIMAL)
    extra = with_book(venue_only, settings).join(marks, on="asset", how="left").select(
        "venue", "account", "asset", qty=zero, mark="mark", market_value=zero, cost_basis=zero,
        unrealized_pnl=zero, book="book",
    )
    table = pl.concat([valued.select(extra.columns), extra], how="vertical_relaxed")
    return table.with_columns(business_date=pl.lit(day, pl.Date)).select(POSITIONS_TABLE.names()).cast(
        POSITIONS_TABLE).sort("venue", "account", "asset")
