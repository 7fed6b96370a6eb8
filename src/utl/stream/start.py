"""Where each (venue, account) starts (stream.md, "Starting state").

From the positions and open lots of the last end-of-day date the database completed for the
landing folder; else from the landing's opening snapshot (its earliest balance file, each
asset held opening one lot at that day's mark, exactly as :func:`utl.daily.run_day` opens an
account); else from zero. Fills at or before the starting state's end of day are recorded
and change nothing. Also the marks the stream prices legs with: a leg of date D is priced
as the end-of-day run prices it, at D's mark when ``marks/D.csv`` is there, else at the
latest earlier mark (intraday, D's own marks do not exist yet; the agreement check compares
once they do).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psycopg

from utl.decimals import DECIMAL
from utl.ingest import Ingested, combine, read_balances_file, read_marks_file
from utl.landing import scan_landing
from utl.marks import marks_for, require_marks
from utl.positions import with_book
from utl.schemas import LOTS_STATE, MARKS_OUT, POSITIONS_STATE
from utl.settings import Settings
from utl.storage import partition_path
from utl.stream.books import start_day
from utl.stream.store import START_ROWS, eod_day_positions
from utl.venues import all_formats


@dataclass(frozen=True)
class Start:
    starts: pl.DataFrame  # START_ROWS
    positions: pl.DataFrame  # POSITIONS_STATE
    lots: pl.DataFrame  # LOTS_STATE
    marks: pl.DataFrame  # MARKS_OUT (all the landing's)


def _marks_and_balances(landing: Path, settings: Settings, balances: bool = True) -> Ingested:
    """The landing's marks (and balance files), read as the end-of-day ingest reads them; its
    fills are the stream's business, and reading a large day's exports at every start would
    hold a restarted booker back for seconds."""
    files = scan_landing(landing, settings.pairs, settings.timezones)
    read = [read_marks_file(day, path, landing, settings) for day, path in files.marks]
    if balances:
        formats = all_formats()
        read += [read_balances_file(day, source, formats, settings) for day, source in files.balances]
    return combine(read, settings)


def landing_marks(landing: Path | None, settings: Settings) -> pl.DataFrame:
    if landing is None:
        return MARKS_OUT.to_frame()
    return _marks_and_balances(landing, settings, balances=False).marks


def marks_on(marks: pl.DataFrame, day: dt.date, reporting: str) -> pl.DataFrame:
    """(asset, mark): each asset's mark of ``day``, else its latest earlier one."""
    known = (marks.filter(pl.col("business_date") <= day).sort("business_date")
             .group_by("asset").agg(pl.col("price").last(), pl.col("business_date").last()))
    return marks_for(known.with_columns(business_date=pl.lit(day, pl.Date)), day, reporting)


def starting_state(conn: psycopg.Connection, landing: Path | None, storage: Path | None, settings: Settings) -> Start:
    if landing is None:
        empty = START_ROWS.to_frame()
        return Start(empty, POSITIONS_STATE.to_frame(), LOTS_STATE.to_frame(), MARKS_OUT.to_frame())
    ingested = _marks_and_balances(landing, settings)
    parts_positions, parts_lots, starts = [], [], []
    row = conn.execute("SELECT max(business_date) FROM utl.day_runs WHERE landing = %s",
                       (str(landing.resolve()),)).fetchone()
    eod_day = row[0] if row else None
    done: set[tuple[str, str]] = set()
    if eod_day is not None and storage is not None:
        positions = eod_day_positions(conn, eod_day, landing)
        lots_path = partition_path(storage, "lots", eod_day)
        lots = pl.read_parquet(lots_path) if lots_path.exists() else LOTS_STATE.to_frame()
        if positions.height:
            parts_positions.append(positions.select(POSITIONS_STATE.names()).cast(POSITIONS_STATE))
            parts_lots.append(lots.select(LOTS_STATE.names()).cast(LOTS_STATE))
            for venue, account in positions.select("venue", "account").unique().iter_rows():
                starts.append((venue, account, eod_day, "eod"))
                done.add((venue, account))
    balances = ingested.balances
    if balances.height:
        first = balances.group_by("venue", "account").agg(pl.col("business_date").min().alias("opened"))
        opening = balances.join(first, left_on=["venue", "account", "business_date"], right_on=["venue", "account", "opened"])
        for (venue, account), group in opening.group_by(["venue", "account"], maintain_order=True):
            if (venue, account) in done:
                continue
            day = group["business_date"][0]
            held = group.select("venue", "account", "asset", pl.col("total").alias("qty"))
            parts_positions.append(held.cast(POSITIONS_STATE))
            parts_lots.append(opening_lots(held, day, ingested.marks, settings))
            starts.append((venue, account, day, "snapshot"))
    return Start(
        pl.DataFrame(starts, schema=START_ROWS, orient="row"),
        pl.concat(parts_positions) if parts_positions else POSITIONS_STATE.to_frame(),
        pl.concat(parts_lots) if parts_lots else LOTS_STATE.to_frame(),
        ingested.marks,
    )


def opening_lots(held: pl.DataFrame, snapshot_day: dt.date, marks: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """An opening snapshot's lots, as :func:`utl.daily.run_day` opens an account."""
    reporting = settings.reporting_currency
    lots = (with_book(held, settings).filter((pl.col("asset") != reporting) & (pl.col("qty") != 0))
            .join(marks_for(marks, snapshot_day, reporting), on="asset", how="left"))
    require_marks(lots, snapshot_day, "an opening balance is valued at its snapshot day's mark")
    opened = start_day(snapshot_day + dt.timedelta(days=1))
    return lots.select(
        "book", "asset", trade_id=pl.format("{}/{}/open/{}", pl.col("venue"), pl.col("account"), pl.col("asset")),
        opened_ts=pl.lit(opened, pl.Datetime("us", "UTC")), qty="qty", entry_price=pl.col("mark").cast(DECIMAL),
    ).cast(LOTS_STATE)
