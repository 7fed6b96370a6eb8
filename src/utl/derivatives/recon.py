"""Derivative positions against the venues' snapshots, and the ``utl.derivative_positions`` rows.

Per (venue, account, instrument) of an account with a positions file that date: the ledger
quantity against the snapshot's (an instrument the file does not list is flat there), a
break where the difference exceeds the instrument's ``[tolerance]`` (keyed by symbol,
``"BTC/USDT:USDT" = "0.001"``, default 0). Break rows are :mod:`utl.recon`'s, with
``asset`` = the symbol and ``subject`` = ``position``; an account without a positions file
that date is not reconciled (a missing file is never "flat"). The venue's entry price is
shown beside the ledger's in ``utl.derivative_positions``: a difference is not a break.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from utl.decimals import DECIMAL
from utl.derivatives.entry import KEY
from utl.derivatives.instruments import require_specs, resolve_specs
from utl.derivatives.schemas import DAY_FLOWS, DERIVATIVE_POSITIONS, POSITION_BREAKS, POSITION_SNAPSHOT
from utl.derivatives.valuation import value_positions
from utl.marks import MissingMark
from utl.recon import find_breaks
from utl.schemas import BREAKS


def find_position_breaks(
    day: dt.date,
    ledger: pl.DataFrame,
    snapshot: pl.DataFrame,
    reported: pl.DataFrame,
    tolerance: dict[str, Decimal],
    previous: pl.DataFrame,
) -> pl.DataFrame:
    """Position breaks of ``day`` (:data:`POSITION_BREAKS`).

    ``ledger``: (venue, account, instrument, qty) at end of day. ``snapshot``:
    :data:`POSITION_SNAPSHOT` rows of the day. ``reported``: (venue, account) with a
    positions file that day, even an empty one. ``previous``: each account's position
    breaks on its previous reconciled date, for ``first_seen``. ``mark`` and
    ``diff_value`` stay null: an instrument's mark is in its quote, not the reporting
    currency, and its quantity in contracts.
    """
    venue_rows = snapshot.select(*KEY, "qty")
    # Each reported account gets a zero row so find_breaks reconciles it even when its file lists nothing.
    anchor = reported.select("venue", "account", asset=pl.lit(None, pl.String), total=pl.lit(0, DECIMAL))
    listed = pl.concat([venue_rows.rename({"instrument": "asset", "qty": "total"}), anchor])
    breaks = find_breaks(
        day,
        ledger.select("venue", "account", pl.col("instrument").alias("asset"), "qty"),
        listed,
        tolerance,
        pl.DataFrame(schema={"asset": pl.String, "mark": DECIMAL}),
        previous.filter(pl.col("subject") == "position").select(BREAKS.names()) if "subject" in previous.columns
        else previous.select(BREAKS.names()),
    )
    return breaks.filter(pl.col("asset").is_not_null()).with_columns(subject=pl.lit("position")).cast(POSITION_BREAKS)


def derivative_positions(
    day: dt.date,
    ledger: pl.DataFrame,
    snapshot: pl.DataFrame,
    reported: pl.DataFrame,
    specs: pl.DataFrame,
    instrument_marks: pl.DataFrame,
    asset_marks: pl.DataFrame,
    flows: pl.DataFrame,
    references: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The ``utl.derivative_positions`` rows of ``day``: one per (venue, account, instrument)
    open in the ledger or in the snapshot.

    ``ledger``: ENTRY_STATE at end of day. ``snapshot``, ``reported``: as for
    :func:`find_position_breaks`. ``specs``: INSTRUMENT_SPECS. ``instrument_marks``:
    (``instrument``, ``mark``) from ``marks/D.csv`` (they win over the snapshot's
    ``mark_price``). ``asset_marks``: (``asset``, ``mark``) in the reporting currency.
    ``flows``: :data:`DAY_FLOWS` (absent: zero that day). ``references``: ENTRY_STATE rows
    whose ``entry_price`` is the session reference of a settled position
    (:func:`utl.derivatives.valuation.session_entry`).

    Stops the date (raises) for an instrument with a position and no spec, and for an open
    ledger position without a mark.
    """
    snapshot = snapshot.select(POSITION_SNAPSHOT.names()).cast(POSITION_SNAPSHOT)
    open_ledger = ledger.filter(pl.col("qty") != 0).select(*KEY)
    keys = pl.concat([open_ledger, snapshot.filter(pl.col("qty") != 0).select(KEY)]).unique(maintain_order=True)
    held = keys.join(ledger.select(*KEY, "qty", "entry_price"), on=KEY, how="left").with_columns(
        pl.col("qty").fill_null(pl.lit(0, DECIMAL)))
    require_specs(day, pl.concat([held.select(*KEY, "qty"), snapshot.select(*KEY, "qty")]), specs)
    reported_flag = reported.select("venue", "account").unique().with_columns(__reported=pl.lit(True))
    venue = snapshot.select(*KEY, venue_qty="qty", venue_entry_price="entry_price", snapshot_mark="mark_price",
                            snapshot_delta="delta")
    frame = (
        resolve_specs(held, specs)
        .join(venue, on=KEY, how="left")
        .join(reported_flag, on=["venue", "account"], how="left")
        .join(instrument_marks.select("instrument", file_mark="mark"), on="instrument", how="left", validate="m:1")
        .with_columns(
            # An instrument the file does not list is flat at the venue; no file: unknown.
            venue_qty=pl.when(pl.col("__reported").fill_null(False)).then(pl.col("venue_qty").fill_null(pl.lit(0, DECIMAL))),
            mark=pl.coalesce("file_mark", "snapshot_mark"),
            entry_price=pl.when(pl.col("qty") != 0).then(pl.col("entry_price")),
        )
    )
    unmarked = frame.filter((pl.col("qty") != 0) & pl.col("mark").is_null()).sort(KEY)
    if unmarked.height:
        v, a, i = unmarked.select(KEY).row(0)
        raise MissingMark(i, day, f"open derivative position in {v}/{a}, and its positions file states no markPrice")
    if references is not None:
        frame = frame.join(references.select(*KEY, reference_price="entry_price"), on=KEY, how="left")
    valued = value_positions(frame, asset_marks)
    flows = flows.select(DAY_FLOWS.names()).cast(DAY_FLOWS)
    zero = pl.lit(0, DECIMAL)
    return (
        frame.select(*KEY, "type", "settle", "contract_size", "venue_qty", "venue_entry_price")
        .join(valued.select(*KEY, "qty", "entry_price", "mark", "unrealized_pnl", "unrealized_pnl_usd", "delta", "delta_usd"), on=KEY)
        .join(flows, on=KEY, how="left")
        .select(
            business_date=pl.lit(day, pl.Date), venue="venue", account="account", instrument="instrument", type="type",
            settle_asset="settle", qty="qty", venue_qty="venue_qty", contract_size="contract_size",
            entry_price="entry_price", venue_entry_price="venue_entry_price", mark="mark",
            unrealized_pnl="unrealized_pnl", unrealized_pnl_usd="unrealized_pnl_usd",
            realized_pnl=pl.col("realized_pnl").fill_null(zero), funding=pl.col("funding").fill_null(zero),
            fees=pl.col("fees").fill_null(zero), delta="delta", delta_usd="delta_usd",
        )
        .cast(DERIVATIVE_POSITIONS)
        .sort(KEY)
    )
