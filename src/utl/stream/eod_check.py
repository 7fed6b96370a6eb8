"""The daily check that the stream agrees with the end-of-day run (stream.md).

Run after a date's EOD tables are written: the stream's state at the end of the date against
the EOD run's, for every (venue, account, asset) the stream books (accounts whose legs come
from a ledger export are booked from it, not from fills, and accounts the stream started
after the date have nothing to compare). The differences replace the date's rows of
``utl.stream_breaks``; the check passes when there are none, or when the stream has booked
nothing.

A landing's check compares that landing's stream state (the rows its own booker wrote,
``landing``, 011_stream_landing) with that landing's EOD run, and replaces only that
landing's breaks of the date: another landing's stream in the same database is not this
one's to compare.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import psycopg

from utl.checks import Check
from utl.settings import Settings
from utl.store.read import read_frame
from utl.store.write import replace_rows
from utl.stream.agreement import BREAKS, stream_breaks
from utl.stream.store import eod_day_state, stream_day_state, stream_key


def stream_state_with_books(conn: psycopg.Connection, day: dt.date, settings: Settings,
                            landing: Path | None) -> dict[str, pl.DataFrame]:
    state = stream_day_state(conn, day, landing)
    pnl = state["pnl"]
    books = [settings.book_of(v, a) for v, a in pnl.select("venue", "account").iter_rows()]
    return dict(state, pnl=pnl.with_columns(book=pl.Series(books, dtype=pl.String)))


def check_stream(conn: psycopg.Connection, storage: Path, day: dt.date, settings: Settings,
                 ledger_accounts: pl.DataFrame, landing: Path | None = None) -> Check:
    key = stream_key(landing)
    mine = {"landing": key, "business_date": day}
    starts = read_frame(conn, "SELECT venue, account, state_date FROM utl.stream_start WHERE landing = %(landing)s",
                        {"landing": key})
    if starts.height == 0:
        replace_rows(conn, "utl.stream_breaks", _landed(BREAKS.to_frame(), key), where=mine)
        return Check(True, "the stream has booked nothing: nothing to compare")
    accounts = (starts.filter(pl.col("state_date").is_null() | (pl.col("state_date") < day))
                .select("venue", "account").join(ledger_accounts.select("venue", "account"), on=["venue", "account"],
                                                 how="anti"))
    found = stream_breaks(day, stream_state_with_books(conn, day, settings, landing),
                          eod_day_state(conn, storage, day, landing), settings, accounts)
    replace_rows(conn, "utl.stream_breaks", _landed(found, key), where=mine)
    if found.height == 0:
        return Check(True, f"the stream agrees with the EOD run for {accounts.height} accounts, to the unit")
    return Check(False, f"{found.height} differences between the stream and the EOD run (utl.stream_breaks)",
                 failures=found.select("venue", "account", "asset", "what", "stream_value", "eod_value").to_dicts())


def _landed(breaks: pl.DataFrame, key: str) -> pl.DataFrame:
    return breaks.with_columns(landing=pl.lit(key, pl.String))
