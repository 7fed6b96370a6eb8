"""The derivative half of one business date (derivatives.md), called by :func:`utl.day.step`.

A pure function of the state carried in and the date's inputs, like the step itself:

1. Accounts open their derivative positions once: on the day after their earliest positions
   file, at the stated quantities and entry prices, or with their spot account when that opens
   first (then flat). Fills of an account not open yet are already in its opening file.
2. The day's instrument legs (one source per account: a ledger account's ledger trade rows,
   else its trades exports' fills) walk the average entry from the carried positions
   (:mod:`utl.derivatives.entry`); every instrument held or traded needs a spec in force.
3. Expired positions close at the venue's delivery, else at the expiry's mark with an
   ``expiry_without_delivery`` break (:func:`utl.derivatives.valuation.expire_positions`).
4. An account whose cash does not come from a ledger gets its realized PnL computed against
   the average entry: a spot leg of kind ``realized_pnl_computed`` in the settle asset, which
   the caller adds to the day's spot legs before positions and costing.
5. Open positions are valued at the marks (``marks/D.csv``'s instrument rows win over the
   snapshot's ``markPrice``; no mark stops the date), settled ones from their session
   reference (the last settlement price, re-averaged by the legs since), and reconciled
   against the day's positions files (breaks with ``subject`` = ``position``).

Funding, fees and ledger-stated realized PnL are cash rows that are ALSO ordinary ledger
movements: they book in the spot ledger already; here they are only attributed to their
instrument for ``utl.derivative_positions`` (``DAY_FLOWS``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from utl.decimals import DECIMAL
from utl.derivatives.entry import KEY, average_entry
from utl.derivatives.instruments import MissingSpec, missing_specs, resolve_specs, stated_specs
from utl.derivatives.pnl import VALUES, position_values
from utl.derivatives.recon import derivative_positions, find_position_breaks
from utl.derivatives.schemas import (
    DATED_INSTRUMENT_SPECS, DAY_FLOWS, DELIVERIES, ENTRY_STATE, INSTRUMENT_LEGS, POSITION_BREAKS, POSITION_SNAPSHOT,
)
from utl.derivatives.valuation import DELIVERY_HOUR, expire_positions, session_entry, session_settled
from utl.schemas import ACCOUNTS_STATE, DAY_LEGS, UTC_TS

ACCOUNT = ["venue", "account"]
COMPUTED = "realized_pnl_computed"
SPEC_COLUMNS = ["type", "inverse", "contract_size", "settle", "expiry"]


@dataclass(frozen=True)
class DerivativeDay:
    positions: pl.DataFrame  # ENTRY_STATE at end of day, open positions only
    references: pl.DataFrame  # ENTRY_STATE: session reference of session-settled positions
    accounts: pl.DataFrame  # ACCOUNTS_STATE: accounts whose derivative positions are open
    computed_legs: pl.DataFrame  # DAY_LEGS: realized_pnl_computed of fills-only accounts
    table: pl.DataFrame  # DERIVATIVE_POSITIONS: utl.derivative_positions
    breaks: pl.DataFrame  # POSITION_BREAKS of the day (position and expiry_without_delivery)
    reported: pl.DataFrame  # (venue, account) with a positions file on the day
    specs: pl.DataFrame = field(default_factory=DATED_INSTRUMENT_SPECS.to_frame)  # in force, with those the exports state
    values_start: pl.DataFrame = field(default_factory=VALUES.to_frame)  # VALUES carried in, at the day before's marks
    values_end: pl.DataFrame = field(default_factory=VALUES.to_frame)  # VALUES at end of day, at the day's marks


def is_instrument(asset: pl.Expr) -> pl.Expr:
    """A ccxt derivative symbol names its settle currency after a colon (``BTC/USDT:USDT``);
    no canonical asset code has one."""
    return asset.str.contains(":", literal=True)


def instrument_marks(marks: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """(``instrument``, ``mark``): the instrument rows of ``marks/D.csv`` of ``day``, in the
    instrument's quote."""
    return marks.filter((pl.col("business_date") == day) & is_instrument(pl.col("asset"))).select(
        instrument="asset", mark="price").unique("instrument", keep="last")


def snapshot_rows(positions: pl.DataFrame) -> pl.DataFrame:
    """The positions the files list, without the markers of files that list none."""
    return positions.filter(pl.col("instrument").is_not_null() & (pl.col("qty") != 0))


def book_derivatives(
    day: dt.date,
    carried: pl.DataFrame,
    carried_references: pl.DataFrame,
    derivative_accounts: pl.DataFrame,
    spot_accounts: pl.DataFrame,
    fills: pl.DataFrame,
    cash: pl.DataFrame,
    positions: pl.DataFrame,
    opening_positions: pl.DataFrame,
    specs: pl.DataFrame,
    marks: pl.DataFrame,
    asset_marks: pl.DataFrame,
    ledger_accounts: pl.DataFrame,
    tolerance: dict,
    previous_breaks: pl.DataFrame,
    asset_marks_before: pl.DataFrame | None = None,
    ledger_trade_accounts: pl.DataFrame | None = None,
) -> DerivativeDay:
    """The derivative positions, PnL legs and breaks of ``day``.

    ``carried``/``carried_references``: ENTRY_STATE at the end of the day before (positions,
    and the session reference of settled ones). ``derivative_accounts``: ACCOUNTS_STATE of
    accounts already open here; ``spot_accounts``: the step's open accounts. ``fills``:
    DERIVATIVE_FILLS of the day; ``cash``: DERIVATIVE_CASH of the day; ``positions`` and
    ``opening_positions``: DATED_POSITION_SNAPSHOT of the day and the day before (a row
    without an instrument marks a file listing none); ``specs``: the specs in force;
    ``marks``: MARKS_OUT (instrument rows of the day are the instruments' marks);
    ``asset_marks``: (asset, mark) of the day in the reporting currency; ``ledger_accounts``:
    (venue, account) whose cash comes from a ledger export; ``previous_breaks``: each
    account's position breaks on its previous reconciled date. ``asset_marks_before``:
    (asset, mark) of the day before; given, the positions carried in are valued at the day
    before's marks (``values_start``, for ``utl.pnl``: :mod:`utl.derivatives.pnl`).
    ``ledger_trade_accounts``: (venue, account) whose ledger export states derivative trades
    (:data:`utl.venues.contracts.LEDGER_TRADE_FORMATS`): their legs are the ledger's trade rows
    on every date, a trades export's never.
    """
    ledger_accounts = ledger_accounts.select(ACCOUNT).unique()
    # 1. Accounts that open today: from the day before's positions file, else with the spot account.
    candidates = pl.concat([opening_positions.select(ACCOUNT), spot_accounts.select(ACCOUNT)]).unique()
    opened = candidates.join(derivative_accounts, on=ACCOUNT, how="anti").with_columns(
        first_date=pl.lit(day, pl.Date)).cast(ACCOUNTS_STATE)
    accounts = pl.concat([derivative_accounts.cast(ACCOUNTS_STATE), opened]).sort(ACCOUNT)
    opening = snapshot_rows(opening_positions.join(opened, on=ACCOUNT, how="semi")).select(ENTRY_STATE.names())
    unpriced = opening.filter(pl.col("entry_price").is_null())
    if unpriced.height:
        v, a, i = unpriced.select(KEY).row(0)
        raise ValueError(f"{v}/{a} {i}: the positions file of {(day - dt.timedelta(days=1)).isoformat()} that opens "
                         f"this account states no entry price, so its position cannot be carried")
    start = pl.concat([carried.cast(ENTRY_STATE), opening.cast(ENTRY_STATE)])
    # A session-settled position opened from a file runs from the session the file states.
    opening_refs = snapshot_rows(opening_positions.join(opened, on=ACCOUNT, how="semi")).select(
        *KEY, "qty", entry_price=pl.coalesce("settlement_price", "entry_price"))
    start_refs = pl.concat([carried_references.cast(ENTRY_STATE), opening_refs.cast(ENTRY_STATE)])

    # 2. The day's legs: one source per account, the same on every date. An account whose
    # ledger states derivative trades takes them from it (a trades export of the same account
    # only repeats them); a ledger without trade rows (Binance's Transaction History states
    # only cash) leaves the instrument legs to the account's trades export. An account with a
    # ledger trade row today is one of the first kind whatever the list says.
    ledger_trades = pl.concat([
        fills.filter(pl.col("source") == "ledger").select(ACCOUNT),
        *([] if ledger_trade_accounts is None else [ledger_trade_accounts.select(ACCOUNT)]),
    ]).unique().with_columns(__ledger_trades=pl.lit(True))
    # The day's legs as one lazy query, in the fills' order: what is read of them (the keys
    # traded, where they were met, the legs with their specs) is each collected on its own,
    # with only its columns.
    day_fills = (
        fills.lazy()
        .join(ledger_trades.lazy(), on=ACCOUNT, how="left", maintain_order="left")
        .filter(pl.col("__ledger_trades").fill_null(False) == (pl.col("source") == "ledger"))
        .join(accounts.lazy(), on=ACCOUNT, how="semi", maintain_order="left")
        .filter(pl.col("ts").dt.date() == day)
    )
    traded, pairs = pl.collect_all([
        day_fills.filter(pl.col("qty") != 0).select(*KEY, "qty").unique(KEY, keep="first"),
        day_fills.select("venue", "instrument").unique(),
    ])
    day_snapshot = snapshot_rows(positions).select(POSITION_SNAPSHOT.names()).cast(POSITION_SNAPSHOT)
    # Each instrument held or traded needs a spec (missing_specs reads each key once).
    wanted = pl.concat([
        start.filter(pl.col("qty") != 0).select(*KEY, "qty"),
        traded,
        day_snapshot.join(accounts, on=ACCOUNT, how="semi").select(*KEY, "qty"),
    ])
    # An instrument the instruments/ file in force lacks takes the spec its exports state
    # (its symbol, a positions row's contract size, the venue's position unit), if they do;
    # where every instrument met has a spec, there is nothing to state.
    met_pairs = pl.concat([f.select("venue", "instrument") for f in (
        start.filter(pl.col("qty") != 0), pairs, day_snapshot.join(accounts, on=ACCOUNT, how="semi"))]).unique()
    if resolve_specs(met_pairs, specs).filter(~pl.col("has_spec")).height:
        met = pl.concat([
            start.filter(pl.col("qty") != 0).select("venue", "instrument", source_file=pl.lit(None, pl.String),
                                                    source_row=pl.lit(None, pl.Int64)),
            day_fills.select("venue", "instrument", "source_file", "source_row").collect(),
            day_snapshot.join(accounts, on=ACCOUNT, how="semi").select("venue", "instrument", "source_file",
                                                                        "source_row"),
        ])
        sizes = pl.concat([snapshot_rows(p).select("venue", "instrument", "contract_size", "source_file", "source_row")
                           for p in (positions, opening_positions)])
        specs = pl.concat([specs, stated_specs(day, met, specs, sizes)])
    missing = missing_specs(wanted, specs)
    if missing:
        raise MissingSpec(day, missing)
    # Specs resolved once per (venue, instrument), joined onto the legs.
    with_specs = (
        day_fills.select(INSTRUMENT_LEGS.names())
        .join(resolve_specs(pairs, specs).select("venue", "instrument", "type", "inverse", "contract_size").lazy(),
              on=["venue", "instrument"], how="left", maintain_order="left")
        .collect()
    )
    walked = average_entry(with_specs, start)

    # 3. Expiry: what is still open in an instrument expired by today closes.
    marks_today = instrument_marks(marks, day)
    open_now = resolve_specs(walked.positions.filter(pl.col("qty") != 0), specs)
    deliveries = (
        # The delivery row's own price; the day's mark where the row states none.
        cash.filter(pl.col("kind") == "delivery")
        .join(marks_today.rename({"mark": "__mark"}), on="instrument", how="left")
        .select(*KEY, "ts", price=pl.coalesce("price", "__mark")).cast(DELIVERIES)
    )
    expiry_legs, expiry_breaks = expire_positions(day, open_now, deliveries, marks_today)
    if expiry_legs.height:
        closing = resolve_specs(expiry_legs.select(INSTRUMENT_LEGS.names()), specs)
        expired = average_entry(closing, walked.positions)
        end, closed_legs = expired.positions, expired.legs
    else:
        end, closed_legs = walked.positions, walked.legs.clear()
    end = end.filter(pl.col("qty") != 0)

    # 4. Realized PnL where no ledger states it: a spot leg in the settle asset.
    effects = pl.concat([
        walked.legs.join(ledger_accounts, on=ACCOUNT, how="anti"),
        closed_legs.join(ledger_accounts, on=ACCOUNT, how="anti"),
    ])
    computed = (
        resolve_specs(effects.filter(pl.col(COMPUTED) != 0), specs)
        .select(
            "venue", "account", leg_id=pl.format("{}/{}", pl.col("leg_id"), pl.lit(COMPUTED)), ts="ts",
            asset="settle", qty=COMPUTED, kind=pl.lit(COMPUTED), trade_id=pl.lit(None, pl.String),
            price=pl.lit(None, DECIMAL), quote=pl.lit(None, pl.String), business_date=pl.lit(day, pl.Date),
        )
        .cast(DAY_LEGS)
    )

    # 5. Session references, the day's cash per instrument, valuation and reconciliation.
    references = session_references(day, with_specs, start, start_refs, day_snapshot, specs, end, cash,
                                    walked=walked.positions)
    flows = day_flows(cash, effects, fills.lazy().join(ledger_accounts.lazy(), on=ACCOUNT, how="anti").filter(
        pl.col("ts").dt.date() == day).select(*KEY, "fee").collect(), specs)
    reported = positions.join(accounts, on=ACCOUNT, how="semi").select(ACCOUNT).unique().sort(ACCOUNT)
    own_snapshot = day_snapshot.join(accounts, on=ACCOUNT, how="semi")
    table = derivative_positions(day, end, own_snapshot, reported, specs, marks_today, asset_marks, flows, references)
    found = find_position_breaks(day, end, own_snapshot, reported, tolerance,
                                 previous_breaks.join(reported, on=ACCOUNT, how="semi"))
    # An expiry without delivery is the break of its key that day (the venue lists it no more).
    breaks = pl.concat([expiry_breaks, found.join(expiry_breaks, on=["venue", "account", "asset"], how="anti")])
    values_start, values_end = VALUES.to_frame(), VALUES.to_frame()
    if asset_marks_before is not None:
        values_end = position_values(table, asset_marks, day, ledger_accounts)
        values_start = start_values(day, start, start_refs, opening_positions, specs, marks, asset_marks_before,
                                    ledger_accounts)
    return DerivativeDay(
        positions=end.select(ENTRY_STATE.names()).cast(ENTRY_STATE).sort(KEY),
        references=references.join(end, on=KEY, how="semi").cast(ENTRY_STATE).sort(KEY),
        accounts=accounts,
        computed_legs=computed,
        table=table,
        breaks=breaks.cast(POSITION_BREAKS).sort("venue", "account", "asset"),
        reported=reported,
        specs=specs,
        values_start=values_start,
        values_end=values_end,
    )


def start_values(day: dt.date, start: pl.DataFrame, start_refs: pl.DataFrame, opening_positions: pl.DataFrame,
                 specs: pl.DataFrame, marks: pl.DataFrame, asset_marks_before: pl.DataFrame,
                 ledger_accounts: pl.DataFrame) -> pl.DataFrame:
    """:data:`VALUES` of the positions the day starts from (carried, or opened from the day
    before's file), valued as the day before valued them: its ``marks/D.csv`` instrument rows,
    else its positions file's ``markPrice``, its settle asset marks, and the session reference
    carried. The same function as the day before's end, on the same numbers: equal to them."""
    held = start.filter(pl.col("qty") != 0)
    if held.height == 0:
        return VALUES.to_frame()
    before = day - dt.timedelta(days=1)
    own = snapshot_rows(opening_positions).join(held.select(KEY), on=KEY, how="semi")
    table = derivative_positions(
        before, held, own.select(POSITION_SNAPSHOT.names()).cast(POSITION_SNAPSHOT), own.select(ACCOUNT).clear(),
        specs, instrument_marks(marks, before), asset_marks_before, DAY_FLOWS.to_frame(), start_refs,
    )
    return position_values(table, asset_marks_before, before, ledger_accounts)


def session_references(day: dt.date, legs: pl.DataFrame, start: pl.DataFrame, start_refs: pl.DataFrame,
                       snapshot: pl.DataFrame, specs: pl.DataFrame, end: pl.DataFrame,
                       cash: pl.DataFrame | None = None, walked: pl.DataFrame | None = None) -> pl.DataFrame:
    """The session reference (ENTRY_STATE) of each open position whose venue settles session
    PnL into cash: from today's settlement the position then at that price re-averaged by the
    legs after it; without a settlement today, the carried reference re-averaged by the day's
    legs. Today's settlement is the ledger's ``settlement`` row (``cash``: DERIVATIVE_CASH,
    its own stamp and ``price``, Deribit's ``Price``) where the export states one, else the
    positions file's ``settlement_price`` stamped at the session's 08:00 UTC.

    ``walked``: optionally, ``average_entry(legs, start).positions``, already computed by the
    caller. A position whose carried reference is its carried entry (the same single row, or
    neither carried) walks the same legs from the same state: its reference is that walk's
    result, taken from ``walked`` instead of walked again."""
    settled = resolve_specs(end.select(KEY), specs).filter(
        session_settled(pl.col("venue"), pl.col("type"), pl.col("settle"))).select(KEY)
    if settled.height == 0:
        return ENTRY_STATE.to_frame()
    session = dt.datetime.combine(day, dt.time(DELIVERY_HOUR), tzinfo=dt.timezone.utc)
    # A settlement row's parts (funding, the session PnL) each carry the row's price.
    ledger = (
        cash.filter(pl.col("instrument").is_not_null() & pl.col("price").is_not_null()
                      & (pl.col("kind") != "delivery"))
        .join(settled, on=KEY, how="semi").select(*KEY, "ts", "price").unique(maintain_order=True)
    ) if cash is not None else None
    from_file = snapshot.join(settled, on=KEY, how="semi").filter(pl.col("settlement_price").is_not_null()).select(
        *KEY, ts=pl.lit(session, UTC_TS), price="settlement_price")
    settlements = from_file if ledger is None else pl.concat([
        ledger.cast({"ts": UTC_TS}), from_file.join(ledger, on=KEY, how="anti")])
    own_legs = legs.join(settled, on=KEY, how="semi")
    today = session_entry(own_legs, start, settlements) if settlements.height else ENTRY_STATE.to_frame()
    rest = settled.join(today, on=KEY, how="anti")
    # The carried reference (the entry where none is carried) moved by the day's legs.
    carried = pl.concat([
        start_refs.join(rest, on=KEY, how="semi"),
        start.join(rest, on=KEY, how="semi").join(start_refs, on=KEY, how="anti"),
    ])
    if walked is None:
        moved = average_entry(own_legs.join(rest, on=KEY, how="semi"), carried).positions
    else:
        refs = carried.select(ENTRY_STATE.names()).cast(ENTRY_STATE)
        entries = start.join(rest, on=KEY, how="semi").select(ENTRY_STATE.names()).cast(ENTRY_STATE)
        once = [f.group_by(KEY).len().filter(pl.col("len") == 1).select(KEY) for f in (refs, entries)]
        same = pl.concat([
            refs.join(entries, on=ENTRY_STATE.names(), how="semi", nulls_equal=True)
            .join(once[0], on=KEY, how="semi").join(once[1], on=KEY, how="semi").select(KEY),
            rest.join(refs, on=KEY, how="anti").join(entries, on=KEY, how="anti"),
        ])
        again = rest.join(same, on=KEY, how="anti")
        moved = pl.concat([
            walked.select(ENTRY_STATE.names()).cast(ENTRY_STATE).join(same, on=KEY, how="semi"),
            average_entry(own_legs.join(again, on=KEY, how="semi"), refs.join(again, on=KEY, how="semi")).positions,
        ]).sort(KEY)
    return pl.concat([today.cast(ENTRY_STATE), moved.cast(ENTRY_STATE)]).filter(pl.col("qty") != 0)


def day_flows(cash: pl.DataFrame, effects: pl.DataFrame, own_fills: pl.DataFrame, specs: pl.DataFrame) -> pl.DataFrame:
    """:data:`DAY_FLOWS`: per instrument, the day's realized PnL (ledger rows of kinds
    realized_pnl, settlement and delivery, or the computed one), funding, and fees (charged
    positive: the ledger's fee rows negated, or a fills-only account's fills' fees)."""
    zero = pl.lit(0, DECIMAL)
    stated = cash.filter(pl.col("instrument").is_not_null()).select(
        *KEY,
        realized_pnl=pl.when(pl.col("kind").is_in(["realized_pnl", "settlement", "delivery"])).then("qty").otherwise(zero),
        funding=pl.when(pl.col("kind") == "funding").then("qty").otherwise(zero),
        fees=pl.when(pl.col("kind") == "fee").then(-pl.col("qty")).otherwise(zero),
    )
    computed = effects.select(*KEY, realized_pnl=COMPUTED, funding=zero, fees=zero)
    fees = own_fills.filter(pl.col("fee").is_not_null()).select(*KEY, realized_pnl=zero, funding=zero, fees="fee")
    return (
        pl.concat([f.cast(DAY_FLOWS) for f in (stated, computed, fees)])
        .group_by(KEY).agg(pl.col("realized_pnl", "funding", "fees").sum())
        .cast(DAY_FLOWS)
    )


def delta_exposure(table: pl.DataFrame, specs: pl.DataFrame, asset_marks: pl.DataFrame) -> pl.DataFrame:
    """Exposure rows (EXPOSURE_INPUT less ``book``) of the derivatives: each open position as
    its delta in the base asset, at the base asset's mark (``delta_usd``), so exposure by
    asset, venue and book adds it to the spot quantity (derivatives.md). A position without a
    delta (an option whose file states none) is left out: its delta is unknown, never zero;
    ``utl.derivative_positions`` shows it with a null delta."""
    held = table.filter(pl.col("delta").is_not_null() & (pl.col("qty") != 0))
    based = resolve_specs(held.select(*KEY, "business_date", "delta", "delta_usd"), specs)
    return based.join(asset_marks.select(pl.col("asset").alias("base"), "mark"), on="base", how="left").select(
        "business_date", "venue", "account", asset="base", qty="delta",
        mark=pl.when(pl.col("delta_usd").is_not_null()).then(pl.col("mark")),
        market_value="delta_usd",
    )
