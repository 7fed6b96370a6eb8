"""One business date as a pure step over a carried state.

The end-of-day run is a fold over dates: everything that crosses midnight lives in one
:class:`DayState`; a date is ``step(day, before, inputs, settings) -> (after, outputs)``.
The step reads no clock, prints nothing and touches no database: frames in, frames out. The
CLI folds it over the dates that are missing or stale; a Dagster asset runs the same step
for its partition, from the state its previous partition stored.

What crosses midnight, and nothing else:

- ``positions``: ledger quantity per (venue, account, asset);
- ``lots``: open lots per (book, asset) for unit cost;
- ``accounts``: the accounts already open, with their first business date;
- ``open_breaks``: each account's breaks on its last reconciled date (``first_seen`` ages
  a break across the account's reconciled dates);
- ``pending`` and ``transit``: withdrawals no deposit has matched yet, and the lots each took
  out of its book (a withdrawal and its deposit may fall on different dates: ledger.md);
- ``open_exceptions``: the date's ledger exceptions (``first_seen`` of the next date's);
- ``derivatives``, ``derivative_references`` and ``derivative_accounts``: the open derivative
  positions with their average entry, the session reference of those a venue settles daily,
  and the accounts whose derivative positions are open (:mod:`utl.derivatives.day`).

Breaks carry a ``subject``: ``balance`` (a snapshot's asset) or ``position`` (a positions
file's instrument); each ages and clears against its own kind of file.

An account opens on the day after its earliest balance snapshot (eod.md): a date's inputs
hold the day before's snapshots, and an account not yet open that has one there opens
today from it. Legs of an account that is not open are already in its opening snapshot (or
it has none, which ingest reports): they book nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import polars as pl

from utl.daily import LedgerState, Matched, TransferBook, match_day_transfers, run_day
from utl.derivatives.day import book_derivatives, delta_exposure, is_instrument
from utl.derivatives.pnl import instrument_pnl, with_derivatives
from utl.derivatives.schemas import (
    CLEARED_BREAKS, DATED_INSTRUMENT_SPECS, DATED_POSITION_SNAPSHOT, DERIVATIVE_CASH, DERIVATIVE_FILLS,
    DERIVATIVE_POSITIONS, ENTRY_STATE, POSITION_BREAKS,
)
from utl.exceptions import (
    day_exceptions, external_deposits, fee_assets_assumed, in_transit, missing_acquisitions, provisional,
)
from utl.exposure import exposure_by_asset, exposure_by_book, exposure_by_venue
from utl.marks import marks_for
from utl.positions import positions_table, with_book
from utl.precision import venue_tolerances
from utl.recon import cleared, find_breaks
from utl.schemas import (
    ACCOUNTS_STATE, BALANCES_OUT, BREAKS, DAY_LEGS, EXCEPTIONS, EXPOSURE_INPUT, LEG_REFS, LOTS_STATE, LOTS_TABLE, MARKS_OUT,
    PENDING_TRANSFERS, POSITIONS_STATE, TRANSFER_LEGS, TRANSIT_LOTS,
)
from utl.settings import Settings
from utl.shards import in_order, of_accounts, shard_threads
from utl.snapshots import holdings

ACCOUNT = ["venue", "account"]
ACCOUNTS = pl.Schema({"venue": pl.String, "account": pl.String})


@dataclass(frozen=True)
class DayState:
    """The only thing that crosses midnight: the end of ``business_date``."""

    business_date: dt.date
    positions: pl.DataFrame  # POSITIONS_STATE
    lots: pl.DataFrame  # LOTS_STATE
    accounts: pl.DataFrame  # ACCOUNTS_STATE
    open_breaks: pl.DataFrame  # POSITION_BREAKS: BREAKS with subject
    pending: pl.DataFrame = field(default_factory=PENDING_TRANSFERS.to_frame)  # withdrawals not matched yet
    transit: pl.DataFrame = field(default_factory=TRANSIT_LOTS.to_frame)  # the lots they carry
    open_exceptions: pl.DataFrame = field(default_factory=EXCEPTIONS.to_frame)  # the date's utl.exceptions rows
    derivatives: pl.DataFrame = field(default_factory=ENTRY_STATE.to_frame)  # open derivative positions, average entry
    derivative_references: pl.DataFrame = field(default_factory=ENTRY_STATE.to_frame)  # session references
    derivative_accounts: pl.DataFrame = field(default_factory=ACCOUNTS_STATE.to_frame)  # derivative positions open

    TABLES = ("positions", "lots", "accounts", "open_breaks", "pending", "transit", "open_exceptions", "derivatives",
              "derivative_references", "derivative_accounts")
    SCHEMAS = {"positions": POSITIONS_STATE, "lots": LOTS_STATE, "accounts": ACCOUNTS_STATE,
               "open_breaks": POSITION_BREAKS, "pending": PENDING_TRANSFERS, "transit": TRANSIT_LOTS,
               "open_exceptions": EXCEPTIONS, "derivatives": ENTRY_STATE, "derivative_references": ENTRY_STATE,
               "derivative_accounts": ACCOUNTS_STATE}

    @classmethod
    def empty(cls, business_date: dt.date) -> DayState:
        """Before the first business date: nothing open, nothing held."""
        return cls(business_date, **{n: s.to_frame() for n, s in cls.SCHEMAS.items()})

    def tables(self) -> dict[str, pl.DataFrame]:
        return {name: getattr(self, name) for name in self.TABLES}

    @classmethod
    def from_tables(cls, business_date: dt.date, tables: dict[str, pl.DataFrame]) -> DayState:
        tables = dict(tables)
        breaks = tables.get("open_breaks")
        if breaks is not None and "subject" not in breaks.columns:  # a state stored before breaks had a subject
            tables["open_breaks"] = breaks.with_columns(subject=pl.lit("balance"))
        return cls(business_date, **{n: tables.get(n, s.to_frame()).select(s.names()).cast(s)
                                     for n, s in cls.SCHEMAS.items()})


@dataclass(frozen=True)
class DayInputs:
    """What one date reads from the landing folder, already canonical and deduplicated."""

    legs: pl.DataFrame  # DAY_LEGS: the day's legs (ts within the day), every account
    snapshots: pl.DataFrame  # BALANCES_OUT of the day: reconciled against
    opening_snapshots: pl.DataFrame  # BALANCES_OUT of the day before: accounts opening today
    marks: pl.DataFrame  # MARKS_OUT of the day and the day before
    transfers: pl.DataFrame = field(default_factory=TRANSFER_LEGS.to_frame)  # the day's deposits and withdrawals (utl.transfer_legs)
    # where the day's disposals came from (file:row), and which are fees of an assumed asset;
    # a LazyFrame from stored shards: one row per leg, of which an exception names a few
    leg_refs: pl.DataFrame | pl.LazyFrame = field(default_factory=LEG_REFS.to_frame)
    # Derivatives (DERIV-INTERFACE §3): the day's fills and settle-asset cash rows (by ts), the
    # day's positions files and the day before's (accounts opening today), the specs in force
    # (the latest instruments/ file on or before the day), and the accounts whose cash comes
    # from a ledger export (their realized PnL is the ledger's, never computed).
    derivative_fills: pl.DataFrame = field(default_factory=DERIVATIVE_FILLS.to_frame)
    derivative_cash: pl.DataFrame = field(default_factory=DERIVATIVE_CASH.to_frame)
    positions: pl.DataFrame = field(default_factory=DATED_POSITION_SNAPSHOT.to_frame)
    opening_positions: pl.DataFrame = field(default_factory=DATED_POSITION_SNAPSHOT.to_frame)
    specs: pl.DataFrame = field(default_factory=DATED_INSTRUMENT_SPECS.to_frame)
    ledger_accounts: pl.DataFrame = field(default_factory=ACCOUNTS.to_frame)
    # the accounts whose ledger states derivative trades: their instrument legs come from it
    ledger_trade_accounts: pl.DataFrame = field(default_factory=ACCOUNTS.to_frame)

    TABLES = ("legs", "snapshots", "opening_snapshots", "marks", "transfers", "leg_refs", "derivative_fills",
              "derivative_cash", "positions", "opening_positions", "specs", "ledger_accounts", "ledger_trade_accounts")
    SCHEMAS = {"legs": DAY_LEGS, "snapshots": BALANCES_OUT, "opening_snapshots": BALANCES_OUT, "marks": MARKS_OUT,
               "transfers": TRANSFER_LEGS, "leg_refs": LEG_REFS, "derivative_fills": DERIVATIVE_FILLS,
               "derivative_cash": DERIVATIVE_CASH, "positions": DATED_POSITION_SNAPSHOT,
               "opening_positions": DATED_POSITION_SNAPSHOT, "specs": DATED_INSTRUMENT_SPECS,
               "ledger_accounts": ACCOUNTS, "ledger_trade_accounts": ACCOUNTS}

    def tables(self) -> dict[str, pl.DataFrame]:
        return {name: getattr(self, name) for name in self.TABLES}

    @classmethod
    def from_tables(cls, tables: dict[str, pl.DataFrame]) -> DayInputs:
        return cls(**{n: tables.get(n, s.to_frame()).select(s.names()).cast(s) for n, s in cls.SCHEMAS.items()})


# DayInputs shared by every shard of a date (stored with shard 0); the rest are an account's own.
SHARED_INPUTS = ("marks", "specs", "ledger_accounts", "ledger_trade_accounts")


@dataclass(frozen=True)
class DayOutputs:
    """What a date writes: the PostgreSQL rows and Parquet partitions of ``business_date``."""

    business_date: dt.date
    positions: pl.DataFrame  # POSITIONS_TABLE: utl.positions
    lots: pl.DataFrame  # LOTS_TABLE
    pnl: pl.DataFrame  # PNL
    pnl_explain: pl.DataFrame  # PNL_EXPLAIN
    exposure_asset: pl.DataFrame
    exposure_venue: pl.DataFrame
    exposure_book: pl.DataFrame
    breaks: pl.DataFrame  # POSITION_BREAKS: utl.breaks, subject balance | position
    cleared: pl.DataFrame  # CLEARED_BREAKS: breaks of earlier dates this date cleared
    legs: int  # legs booked this date
    reconciled: pl.DataFrame  # (venue, account) reconciled this date
    exceptions: pl.DataFrame = field(default_factory=EXCEPTIONS.to_frame)  # utl.exceptions (ledger.md)
    derivative_positions: pl.DataFrame = field(default_factory=DERIVATIVE_POSITIONS.to_frame)
    derivative_legs: pl.DataFrame = field(default_factory=DAY_LEGS.to_frame)  # realized_pnl_computed, booked too

    TABLES = ("positions", "lots", "pnl", "pnl_explain", "exposure_asset", "exposure_venue", "exposure_book",
              "breaks", "cleared", "reconciled", "exceptions", "derivative_positions", "derivative_legs")
    OPTIONAL = ("exceptions", "derivative_positions", "derivative_legs")  # absent from partitions stored before

    def tables(self) -> dict[str, pl.DataFrame]:
        return {name: getattr(self, name) for name in self.TABLES}

    @classmethod
    def from_tables(cls, business_date: dt.date, tables: dict[str, pl.DataFrame], legs: int) -> DayOutputs:
        return cls(business_date=business_date, legs=legs,
                   **{n: tables[n] for n in cls.TABLES if n in tables or n not in cls.OPTIONAL})


def step(day: dt.date, before: DayState, inputs: DayInputs, settings: Settings) -> tuple[DayState, DayOutputs]:
    """Business date ``day`` from the state at the end of the day before.

    Raises :class:`utl.marks.MissingMark` when a position, a leg or an opening balance needs
    a mark the inputs do not have: a date never completes with a guessed value.
    """
    after, outputs, exposed = _step(day, before, inputs, settings, None)
    return after, _with_exposure(outputs, exposed)


def open_accounts(day: dt.date, before: DayState, opening_snapshots: pl.DataFrame) -> pl.DataFrame:
    """ACCOUNTS_STATE: the accounts open on ``day``: those open before and those whose
    snapshot of the day before opens them today."""
    opening = opening_snapshots.join(before.accounts, on=ACCOUNT, how="anti")
    opened = opening.select(ACCOUNT).unique().with_columns(first_date=pl.lit(day, pl.Date)).cast(ACCOUNTS_STATE)
    return pl.concat([before.accounts, opened]).sort(ACCOUNT)


def match_day(day: dt.date, before: DayState, transfers: pl.DataFrame, opening_snapshots: pl.DataFrame,
              settings: Settings) -> Matched:
    """The whole date's transfer matching, as :func:`step` would do it: a shard of the date
    takes its rows of it (:func:`step_shards`)."""
    movements = transfers.join(open_accounts(day, before, opening_snapshots), on=ACCOUNT, how="semi")
    return match_day_transfers(TransferBook(movements, before.pending, before.transit), settings)


def transfer_links(matched: Matched) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The pairs of accounts a matched transfer joins: they share a shard (lots move between them)."""
    pairs = matched.matches.select("from_venue", "from_account", "to_venue", "to_account").unique()
    return [((a, b), (c, d)) for a, b, c, d in pairs.iter_rows()]


def carried_accounts(before: DayState) -> pl.DataFrame:
    """(venue, account) of every account a row of ``before`` belongs to (lots: by their books'
    accounts, which these include: a lot is only open where a position is)."""
    frames = [frame.select(ACCOUNT) for frame in before.tables().values() if "account" in frame.columns]
    return pl.concat(frames).unique().sort(ACCOUNT) if frames else ACCOUNTS.to_frame()


def shard_state(before: DayState, accounts: pl.DataFrame, settings: Settings,
                carried_lots: pl.LazyFrame | None = None) -> DayState:
    """``before``'s rows of ``accounts`` (a shard): lots by the books of those accounts, from
    ``carried_lots`` when given (the day before's lots, read a shard at a time)."""
    books = pl.DataFrame({"book": sorted({settings.book_of(v, a) for v, a in accounts.iter_rows()})},
                         schema={"book": pl.String})
    tables = {name: (frame.join(books, on="book", how="semi") if name == "lots"
                     else frame.join(accounts, on=ACCOUNT, how="semi"))
              for name, frame in before.tables().items()}
    if carried_lots is not None:
        tables["lots"] = (carried_lots.join(books.lazy(), on="book", how="semi").select(LOTS_STATE.names())
                          .collect().cast(LOTS_STATE))
    return DayState(before.business_date, **tables)


def step_shards(day: dt.date, before: DayState, shards: Iterable[tuple[pl.DataFrame, DayInputs]],
                matched: Matched, settings: Settings,
                on_shard: Callable[[DayState, DayInputs, DayState, DayOutputs], None] = lambda *_: None,
                lots_to: Callable[[pl.DataFrame], None] | None = None,
                carried_lots: pl.LazyFrame | None = None,
                ) -> tuple[DayState, DayOutputs]:
    """:func:`step` of a date booked a shard of accounts at a time (:mod:`utl.shards`): each
    of ``shards`` is (its accounts, its inputs: their rows, and the shared marks, specs and
    account lists), loaded when its turn comes. ``matched``: :func:`match_day` of the whole
    date; every pair of accounts it links must be in one shard. The result equals
    :func:`step` of the whole date, row for row (the order of rows aside).
    ``on_shard(before, inputs, after, outputs)`` sees each shard's own (checks per shard).
    ``lots_to``: when given, each shard's open lots (LOTS_STATE) go there as they come and
    the result's lots are empty: a day's open lots can be millions of rows, and a caller
    that stores them a shard at a time need not hold them all. ``carried_lots``: likewise the
    day before's lots, read for each shard from this (``before.lots`` is then empty)."""
    if carried_lots is not None and before.lots.height:
        raise ValueError("the day before's lots are either in the state carried in or read a shard at a time")
    afters: list[DayState] = []
    parts: list[DayOutputs] = []
    exposed: list[pl.DataFrame] = []
    covered = dict.fromkeys(DayState.TABLES, 0)

    def book(accounts: pl.DataFrame, inputs: DayInputs) -> tuple[DayState, DayInputs, DayState, DayOutputs, pl.DataFrame]:
        mine = shard_state(before, accounts, settings, carried_lots)
        return mine, inputs, *_step(day, mine, inputs, settings, matched.of_accounts(accounts))

    # Shards are independent: a few are booked at once (Polars and the costing kernels run
    # outside the GIL), and each one's results are taken in the plan's order, so the stored
    # parts and every output are the same whatever the number of threads.
    for mine, inputs, after, outputs, shown in in_order(book, shards, shard_threads()):
        for name in DayState.TABLES:
            covered[name] += getattr(mine, name).height
        on_shard(mine, inputs, after, outputs)
        if lots_to is not None:
            lots_to(after.lots)
            after, outputs = replace(after, lots=after.lots.clear()), replace(outputs, lots=outputs.lots.clear())
        afters.append(after)
        parts.append(outputs)
        exposed.append(shown)
        del inputs, mine
    if not afters:
        raise ValueError(f"{day.isoformat()}: no shard to book (the plan has no account and no shared shard)")
    # Every row carried in is booked in exactly one shard: a plan that missed an account (or
    # a book) would otherwise drop its lots and positions without a word.
    carried = {name: getattr(before, name).height for name in DayState.TABLES}
    if carried_lots is not None:
        carried["lots"] = carried_lots.select(pl.len()).collect().item()
    for name, rows in covered.items():
        if rows != carried[name]:
            raise ValueError(f"{day.isoformat()}: the shards cover {rows} of the {carried[name]} "
                             f"{name} rows carried in from {before.business_date.isoformat()}")
    sorts = {"accounts": ACCOUNT, "open_breaks": ["venue", "account", "asset"]}
    after = DayState(day, **{name: _sorted(pl.concat([getattr(a, name) for a in afters]), sorts.get(name))
                             for name in DayState.TABLES})
    merged = {name: _sorted(pl.concat([getattr(o, name) for o in parts]), _OUTPUT_SORTS.get(name))
              for name in DayOutputs.TABLES if not name.startswith("exposure_")}
    outputs = DayOutputs(business_date=day, legs=sum(o.legs for o in parts), **merged,
                         **{name: pl.DataFrame() for name in ("exposure_asset", "exposure_venue", "exposure_book")})
    return after, _with_exposure(outputs, pl.concat(exposed))


_OUTPUT_SORTS = {"breaks": ["venue", "account", "asset"], "reconciled": ACCOUNT}


def _sorted(frame: pl.DataFrame, by: list[str] | None) -> pl.DataFrame:
    return frame.sort(by) if by else frame


def _with_exposure(outputs: DayOutputs, exposed: pl.DataFrame) -> DayOutputs:
    return replace(outputs, exposure_asset=exposure_by_asset(exposed), exposure_venue=exposure_by_venue(exposed),
                   exposure_book=exposure_by_book(exposed))


def derivative_arguments(day: dt.date, before: DayState, inputs: DayInputs, accounts: pl.DataFrame,
                         settings: Settings) -> tuple:
    """What the step passes :func:`utl.derivatives.day.book_derivatives` (``accounts``: those
    open on ``day``, :func:`open_accounts`)."""
    reporting = settings.reporting_currency
    spot = ~is_instrument(pl.col("asset"))
    return (
        day, before.derivatives, before.derivative_references, before.derivative_accounts, accounts,
        inputs.derivative_fills, inputs.derivative_cash, inputs.positions, inputs.opening_positions, inputs.specs,
        inputs.marks, marks_for(inputs.marks, day, reporting).filter(spot), inputs.ledger_accounts, settings.tolerance,
        before.open_breaks.filter(pl.col("subject") == "position"),
        marks_for(inputs.marks, before.business_date, reporting).filter(spot), inputs.ledger_trade_accounts,
    )


def _step(day: dt.date, before: DayState, inputs: DayInputs, settings: Settings,
          matched: Matched | None) -> tuple[DayState, DayOutputs, pl.DataFrame]:
    """:func:`step` without exposure (a shard's would be part of the date's): the state, the
    outputs and the rows exposure is computed from."""
    if before.business_date != day - dt.timedelta(days=1):
        raise ValueError(f"{day.isoformat()}: the state carried in is of {before.business_date.isoformat()}, "
                         f"not of the day before")
    reporting = settings.reporting_currency
    opening = inputs.opening_snapshots.join(before.accounts, on=ACCOUNT, how="anti")
    accounts = open_accounts(day, before, inputs.opening_snapshots)
    marks = marks_for(inputs.marks, day, reporting)

    # Derivatives first: a fills-only account's computed realized PnL is a spot leg of the day.
    derivative = book_derivatives(*derivative_arguments(day, before, inputs, accounts, settings))
    computed = derivative.computed_legs.join(accounts, on=ACCOUNT, how="semi")
    on_day = inputs.legs.select((pl.col("business_date") == day).all()).item() is not False
    legs = pl.concat([of_accounts(inputs.legs if on_day else inputs.legs.filter(pl.col("business_date") == day),
                                  accounts.select(ACCOUNT)), computed])

    movements = inputs.transfers.join(accounts, on=ACCOUNT, how="semi")
    start = pl.concat([before.positions, holdings(opening).select("venue", "account", "asset", pl.col("total").alias("qty"))
                       .cast(POSITIONS_STATE)])
    result = run_day(day, LedgerState(before.business_date, before.positions, before.lots),
                     holdings(opening).select("venue", "account", "asset", pl.col("total").alias("qty")), legs,
                     inputs.marks, settings, transfers=TransferBook(movements, before.pending, before.transit),
                     matched=matched)

    pending = result.transfers.pending
    exceptions = day_exceptions(day, [
        in_transit(day, pending, settings.transfer_window_hours),
        external_deposits(day, result.external),
        missing_acquisitions(day, start, result.state.positions, legs, inputs.leg_refs, before.open_exceptions,
                             settings),
        fee_assets_assumed(day, legs, inputs.leg_refs),
    ], marks, before.open_exceptions)
    snapshot = inputs.snapshots.filter(pl.col("business_date") == day).join(accounts, on=ACCOUNT, how="semi")
    reconciled = snapshot.select(ACCOUNT).unique().sort(ACCOUNT)
    balance_before = before.open_breaks.filter(pl.col("subject") == "balance")
    previous = balance_before.join(reconciled, on=ACCOUNT, how="semi")
    balance_breaks = find_breaks(day, result.state.positions, snapshot, settings.tolerance, marks,
                                 previous.select(BREAKS.names()),
                                 venue_tolerances() if settings.precision_tolerance else None)
    # Position breaks age and clear against the positions files, as balance breaks do
    # against the snapshots: an account without a file that day carries its breaks.
    position_before = before.open_breaks.filter(pl.col("subject") == "position")
    position_previous = position_before.join(derivative.reported, on=ACCOUNT, how="semi")
    gone = pl.concat([
        cleared(day, previous, balance_breaks, reconciled).with_columns(subject=pl.lit("balance")).cast(CLEARED_BREAKS),
        cleared(day, position_previous, derivative.breaks, derivative.reported)
        .with_columns(subject=pl.lit("position")).cast(CLEARED_BREAKS),
    ])
    breaks = pl.concat([balance_breaks.with_columns(subject=pl.lit("balance")).cast(POSITION_BREAKS),
                        derivative.breaks]).sort("venue", "account", "asset")
    open_breaks = pl.concat([
        balance_before.join(reconciled, on=ACCOUNT, how="anti"),
        position_before.join(derivative.reported, on=ACCOUNT, how="anti"),
        breaks,
    ]).sort("venue", "account", "asset")

    positions = positions_table(day, result.positions, snapshot, marks, settings)
    # A venue-only row (ledger 0) without a mark is worth 0 in utl.positions; exposure
    # counts it as unpriced, never as a zero value.
    exposed = positions.with_columns(market_value=pl.when(pl.col("mark").is_not_null()).then(pl.col("market_value")))
    # Derivatives count in exposure as their delta in the base asset (net and gross).
    deltas = delta_exposure(derivative.table, derivative.specs, marks)
    if deltas.height:
        exposed = pl.concat([exposed.select(EXPOSURE_INPUT.names()),
                             with_book(deltas, settings).select(EXPOSURE_INPUT.names()).cast(EXPOSURE_INPUT)])
    # Derivative lines in utl.pnl: each (book, instrument)'s value and unrealized PnL.
    pnl, explain = with_derivatives(
        provisional(result.pnl, exceptions, settings), result.explain,
        instrument_pnl(day, derivative.values_start, derivative.values_end,
                       with_book(pl.concat([derivative.values_start, derivative.values_end]).select(ACCOUNT).unique(),
                                 settings)))
    after = DayState(day, result.state.positions, result.state.lots, accounts, open_breaks, pending,
                     result.transfers.transit, exceptions, derivative.positions, derivative.references,
                     derivative.accounts)
    outputs = DayOutputs(
        business_date=day,
        positions=positions,
        lots=result.state.lots.with_columns(business_date=pl.lit(day, pl.Date)).cast(LOTS_TABLE),
        pnl=pnl,
        pnl_explain=explain,
        exposure_asset=pl.DataFrame(),  # the date's, from every shard's exposed rows (_with_exposure)
        exposure_venue=pl.DataFrame(),
        exposure_book=pl.DataFrame(),
        breaks=breaks,
        cleared=gone,
        legs=legs.height,
        reconciled=reconciled,
        exceptions=exceptions,
        derivative_positions=derivative.table,
        derivative_legs=computed,
    )
    return after, outputs, exposed.select(EXPOSURE_INPUT.names()).cast(EXPOSURE_INPUT)
