"""Agreement with end of day (stream.md): the stream's state at the end of D against the
EOD run's, for every (venue, account, asset), to the unit. Every difference is a break
with ``subject`` = ``stream``.

Pure: both sides come in as frames. Positions are compared per (venue, account, asset);
open lots (the set of (trade_id, opened_ts, qty, entry_price)) and the day's realized PnL
per (book, asset), reported against the book's account (a book that groups several
accounts is named as its own venue, with account ``*``). A side with no row holds zero
(quantity and PnL) or no lot.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.decimals import DECIMAL
from utl.settings import Settings

BREAKS = pl.Schema({"business_date": pl.Date, "subject": pl.String, "venue": pl.String, "account": pl.String,
                    "asset": pl.String, "what": pl.String, "stream_value": pl.String, "eod_value": pl.String})
ZERO = pl.lit(0, DECIMAL)


def _account_of(settings: Settings) -> pl.Expr:
    grouped = {book for book, members in settings.books.items() if len(members) != 1}
    book = pl.col("book")
    single = {book_name: members[0] for book_name, members in settings.books.items() if len(members) == 1}
    name = book.replace(single) if single else book
    return pl.when(book.is_in(list(grouped))).then(pl.concat_str(book, pl.lit("/*"))).otherwise(name)


def _split(frame: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    named = frame.with_columns(_who=_account_of(settings))
    return named.with_columns(venue=pl.col("_who").str.extract(r"^([^/]+)/", 1),
                              account=pl.col("_who").str.extract(r"^[^/]+/(.+)$", 1)).drop("_who")


def stream_breaks(day: dt.date, stream: dict[str, pl.DataFrame], eod: dict[str, pl.DataFrame], settings: Settings,
                  accounts: pl.DataFrame | None = None) -> pl.DataFrame:
    """Differences between the two sides' ``positions`` (venue, account, asset, qty), ``lots``
    (LOTS_STATE) and ``pnl`` (book, asset, realized_pnl) of ``day``; ``accounts`` (venue,
    account) limits the comparison to the accounts the stream books."""
    parts = []
    on = ["venue", "account", "asset"]
    pos = (stream["positions"].select(*on, s=pl.col("qty").cast(DECIMAL))
           .join(eod["positions"].select(*on, e=pl.col("qty").cast(DECIMAL)), on=on, how="full", coalesce=True)
           .with_columns(pl.col("s").fill_null(ZERO), pl.col("e").fill_null(ZERO)))
    parts.append(_rows(pos.filter(pl.col("s") != pl.col("e")), "qty"))

    pnl = (stream["pnl"].select("book", "asset", s=pl.col("realized_pnl").cast(DECIMAL))
           .group_by("book", "asset").agg(pl.col("s").sum())
           .join(eod["pnl"].select("book", "asset", e=pl.col("realized_pnl").cast(DECIMAL)), on=["book", "asset"],
                 how="full", coalesce=True)
           .with_columns(pl.col("s").fill_null(ZERO), pl.col("e").fill_null(ZERO)))
    parts.append(_rows(_split(pnl.filter(pl.col("s") != pl.col("e")), settings), "realized_pnl"))

    parts.append(_rows(_split(_lot_differences(stream["lots"], eod["lots"]), settings), "lots"))
    found = pl.concat(parts)
    if accounts is not None:
        found = found.join(accounts.select("venue", "account"), on=["venue", "account"], how="semi")
    return found.with_columns(business_date=pl.lit(day, pl.Date), subject=pl.lit("stream")).select(
        BREAKS.names()).cast(BREAKS).sort("venue", "account", "asset", "what")


def _lots_text(lots: pl.DataFrame) -> pl.DataFrame:
    return (lots.with_columns(_lot=pl.format("{} {} {} @ {}", pl.col("trade_id").fill_null("pool"),
                                             pl.col("opened_ts").dt.to_string("%Y-%m-%dT%H:%M:%S%.fZ"),
                                             pl.col("qty").cast(DECIMAL), pl.col("entry_price").cast(DECIMAL)))
            .sort("_lot").group_by("book", "asset").agg(pl.col("_lot").str.join("; ")))


def _lot_differences(stream: pl.DataFrame, eod: pl.DataFrame) -> pl.DataFrame:
    s = _lots_text(stream).rename({"_lot": "s"})
    e = _lots_text(eod).rename({"_lot": "e"})
    both = s.join(e, on=["book", "asset"], how="full", coalesce=True).with_columns(
        pl.col("s").fill_null(""), pl.col("e").fill_null(""))
    return both.filter(pl.col("s") != pl.col("e"))


def _rows(frame: pl.DataFrame, what: str) -> pl.DataFrame:
    return frame.select("venue", "account", "asset", what=pl.lit(what), stream_value=pl.col("s").cast(pl.String),
                        eod_value=pl.col("e").cast(pl.String))
