"""The end-of-day run over a whole landing folder in memory (../shared/contracts/eod.md).

Reads the landing folder once (:mod:`utl.ingest`), books legs (:mod:`utl.legs`), then folds
:func:`utl.day.step` over every business date from the first through the requested one.
Nothing here touches a database: the caller writes each :class:`DayOutputs` where it wants.
``utl pnl`` and the tests use it; the incremental run (:mod:`utl.memory`, ``utl eod``) runs
the same step from stored per-date inputs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from utl.day import DayInputs, DayOutputs, DayState, step
from utl.derivatives.instruments import specs_in_force
from utl.errors import QUARANTINE_SCHEMA
from utl.ingest import Ingested, ingest_landing
from utl.legs import book_legs
from utl.run import RunError
from utl.schemas import DAY_LEGS, Legs, validate_rows
from utl.snapshots import holdings
from utl.transfer_legs import day_transfer_legs

RUN_LEG_COLUMNS = DAY_LEGS.names()


@dataclass(frozen=True)
class Prepared:
    ingested: Ingested  # settings, balances, marks, files, quarantine (fills and ledger lines emptied once booked)
    legs: pl.DataFrame  # booked legs of open accounts (RUN_LEG_COLUMNS), with business_date
    openings: pl.DataFrame  # (venue, account, asset, qty, first_date): opening snapshots
    first_dates: pl.DataFrame  # (venue, account, first_date)
    quarantine: pl.DataFrame  # the ingest's, plus legs that cannot be booked
    transfers: pl.DataFrame  # TRANSFER_LEGS of every date (utl.transfer_legs), by ts
    leg_refs: pl.DataFrame  # LEG_REFS of every date's disposals, with business_date


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
    openings = holdings(ingested.balances).join(firsts, left_on=["venue", "account", "business_date"],
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
    transfers, leg_refs, unlisted = day_transfer_legs(booked, ingested.transfers)
    leg_refs = leg_refs.join(booked.select("venue", "account", "leg_id", "business_date"),
                             on=["venue", "account", "leg_id"], how="left")
    quarantine = pl.concat([ingested.quarantine, refused_legs, orphan_rows.cast(QUARANTINE_SCHEMA),
                            unlisted.cast(QUARANTINE_SCHEMA)])
    # From here on the run needs only what a leg moves: keeping the fills, ledger lines and
    # every leg's provenance text for the whole run costs more memory than all the rest.
    booked = booked.select(RUN_LEG_COLUMNS)
    ingested = dataclasses.replace(ingested, fills=ingested.fills.clear(), movements=ingested.movements.clear())
    return Prepared(ingested, booked, openings, firsts.select("venue", "account", "first_date"), quarantine,
                    transfers, leg_refs)


def business_dates(prepared: Prepared, through: dt.date) -> list[dt.date]:
    if prepared.first_dates.height == 0:
        raise RunError("no balance snapshot in the landing folder: no account has an opening state")
    first = prepared.first_dates["first_date"].min()
    if through < first:
        raise RunError(f"{through.isoformat()} is before the first business date {first.isoformat()}")
    return [first + dt.timedelta(days=i) for i in range((through - first).days + 1)]


def inputs_of(prepared: Prepared, day: dt.date) -> DayInputs:
    """One date's inputs, cut from the whole landing folder."""
    balances = prepared.ingested.balances
    marks = prepared.ingested.marks
    before = day - dt.timedelta(days=1)
    return DayInputs(
        legs=prepared.legs.filter(pl.col("business_date") == day),
        snapshots=balances.filter(pl.col("business_date") == day),
        opening_snapshots=balances.filter(pl.col("business_date") == before),
        marks=marks.filter(pl.col("business_date").is_in([before, day])),
        transfers=prepared.transfers.filter(pl.col("ts").dt.date() == day),
        leg_refs=prepared.leg_refs.filter(pl.col("business_date") == day).drop("business_date"),
        **derivative_inputs(prepared.ingested, day),
    )


def derivative_inputs(ingested: Ingested, day: dt.date) -> dict[str, pl.DataFrame]:
    """The derivative fields of one date's :class:`DayInputs`, cut from the whole landing."""
    before = day - dt.timedelta(days=1)
    positions = ingested.positions
    return {
        "derivative_fills": ingested.derivative_fills.filter(pl.col("ts").dt.date() == day),
        "derivative_cash": ingested.derivative_cash.filter(pl.col("ts").dt.date() == day),
        "positions": positions.filter(pl.col("business_date") == day),
        "opening_positions": positions.filter(pl.col("business_date") == before),
        "specs": specs_in_force(ingested.specs, day),
        "ledger_accounts": pl.DataFrame(sorted(ingested.ledger_accounts), schema=["venue", "account"], orient="row")
        if ingested.ledger_accounts else pl.DataFrame(schema={"venue": pl.String, "account": pl.String}),
        "ledger_trade_accounts": pl.DataFrame(sorted(ingested.ledger_trade_accounts), schema=["venue", "account"],
                                              orient="row")
        if ingested.ledger_trade_accounts else pl.DataFrame(schema={"venue": pl.String, "account": pl.String}),
    }


def run_dates(prepared: Prepared, through: dt.date, progress: Progress = lambda _: None) -> Iterator[DayOutputs]:
    """Every business date from the first through ``through``, in order."""
    settings = prepared.ingested.settings
    dates = business_dates(prepared, through)
    state = DayState.empty(dates[0] - dt.timedelta(days=1))
    for day in dates:
        started = time.perf_counter()
        try:
            state, outputs = step(day, state, inputs_of(prepared, day), settings)
        except ValueError as exc:  # MissingMark, and any input a date cannot book
            raise RunError(f"{day.isoformat()}: {exc}") from exc
        progress(day_line(outputs, time.perf_counter() - started))
        yield outputs


def day_line(outputs: DayOutputs, seconds: float) -> str:
    """The progress line of one date."""
    return (f"{outputs.business_date.isoformat()}: {outputs.legs} legs, {outputs.positions.height} positions, "
            f"{outputs.breaks.height} breaks, {outputs.cleared.height} cleared ({seconds:.2f} s)")
