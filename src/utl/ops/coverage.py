"""Which dates a database holds, and which accounts a date reconciled.

A date is *covered* when a run wrote it (``utl.day_runs``). A covered date's accounts with
positions but no balance snapshot that day were *not reconciled* (``utl.reconciled``,
006_ops): for them, no row in ``utl.breaks`` does not mean no break. Their breaks are those
of their last reconciled date, carried.

Every answer is one landing folder's (``landing``, 008_landing_keys): a database shared by
several landing folders holds each one's dates apart. No landing (none was ever run into the
database) holds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import psycopg

from utl.home import landing_key

# 006_ops marks the dates written before it with this fingerprint: their reconciled
# accounts were never recorded.
UNRECORDED = "written before 006_ops"


@dataclass(frozen=True)
class Coverage:
    business_date: dt.date
    covered: bool  # a run wrote business_date
    first: dt.date | None  # the earliest and latest dates written; None: nothing ever run
    last: dt.date | None
    reconciled_known: bool  # False for a date written before 006_ops


@dataclass(frozen=True)
class Unreconciled:
    venue: str
    account: str
    last_reconciled: dt.date | None  # None: never reconciled before the date

    @property
    def name(self) -> str:
        return f"{self.venue}/{self.account}"


def _key(landing: Path | None) -> str | None:
    return landing_key(landing) if landing is not None else None


def coverage(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> Coverage:
    """What the database holds of ``landing`` around ``day``."""
    first, last, covered, unrecorded = conn.execute(
        """
        SELECT min(business_date), max(business_date), coalesce(bool_or(business_date = %(day)s), false),
               coalesce(bool_or(business_date = %(day)s AND fingerprint = %(unrecorded)s), false)
        FROM utl.day_runs WHERE landing = %(landing)s
        """,
        {"day": day, "landing": _key(landing), "unrecorded": UNRECORDED},
    ).fetchone()
    return Coverage(day, covered, first, last, not unrecorded)


def unreconciled_accounts(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> list[Unreconciled]:
    """``landing``'s accounts with positions on ``day`` and no balance snapshot that day,
    with the last date before it on which they were reconciled."""
    rows = conn.execute(
        """
        SELECT p.venue, p.account,
               (SELECT max(r.business_date) FROM utl.reconciled r
                WHERE r.landing = %(landing)s AND r.venue = p.venue AND r.account = p.account
                  AND r.business_date < %(day)s)
        FROM (SELECT DISTINCT venue, account FROM utl.positions
              WHERE landing = %(landing)s AND business_date = %(day)s) p
        WHERE NOT EXISTS (SELECT 1 FROM utl.reconciled r
                          WHERE r.landing = %(landing)s AND r.business_date = %(day)s
                            AND r.venue = p.venue AND r.account = p.account)
        ORDER BY 1, 2
        """,
        {"day": day, "landing": _key(landing)},
    ).fetchall()
    return [Unreconciled(*row) for row in rows]


def reconciled_count(conn: psycopg.Connection, day: dt.date, landing: Path | None) -> int:
    return int(conn.execute("SELECT count(*) FROM utl.reconciled WHERE landing = %s AND business_date = %s",
                            (_key(landing), day)).fetchone()[0])


def carried_counts(conn: psycopg.Connection, accounts: list[Unreconciled], landing: Path | None) -> dict[str, int]:
    """Per account of ``landing`` not reconciled, its breaks open on its last reconciled date."""
    counts = {}
    for u in accounts:
        counts[u.name] = 0 if u.last_reconciled is None else int(conn.execute(
            "SELECT count(*) FROM utl.breaks WHERE landing = %s AND business_date = %s AND venue = %s AND account = %s",
            (_key(landing), u.last_reconciled, u.venue, u.account)).fetchone()[0])
    return counts
