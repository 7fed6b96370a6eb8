"""Business dates as Dagster partitions (orchestration.md, "Partitions").

One partition per UTC day, key ``YYYY-MM-DD``, from ``[schedule] start_date`` (else the day
after the landing folder's earliest balance snapshot) through yesterday.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg

from utl.landing import scan_landing
from utl.settings import Settings


def first_business_date(landing: Path, settings: Settings) -> dt.date:
    """The first partition. Read from snapshot file names alone: loading the code location
    must not read the landing folder's contents."""
    if settings.schedule_start_date is not None:
        return settings.schedule_start_date
    try:
        days = [day for day, _ in scan_landing(landing).balances]
    except FileNotFoundError:
        days = []
    if not days:  # nothing to run yet: one partition, yesterday, that will say so
        return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    return min(days) + dt.timedelta(days=1)


def business_dates(landing: Path, settings: Settings) -> dg.DailyPartitionsDefinition:
    # end_offset 0: the last partition is the last complete UTC day, yesterday.
    return dg.DailyPartitionsDefinition(start_date=first_business_date(landing, settings).isoformat(),
                                        timezone="UTC", end_offset=0)


def previous_day() -> dg.TimeWindowPartitionMapping:
    """A date's carried state comes from the date before; the first date has none."""
    return dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1, allow_nonexistent_upstream_partitions=True)
