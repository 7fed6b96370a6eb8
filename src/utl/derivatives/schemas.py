"""The derivative tables, each named once (moved into :mod:`utl.schemas` when wired in).

Every quantity, price and amount is ``Decimal(38, 18)``; an instrument is named by its ccxt
symbol (``BTC/USDT:USDT``, ``BTC/USD:BTC``, ``BTC/USDT:USDT-261225``,
``BTC/USD:BTC-261225-100000-C``). Contract: ``../shared/contracts/derivatives.md``.
"""

from __future__ import annotations

import polars as pl

from utl.decimals import DECIMAL
from utl.schemas import BREAKS, CLEARED, UTC_TS

INSTRUMENT_TYPES = ("swap", "future", "option")
OPTION_TYPES = ("call", "put")

INSTRUMENT = pl.Schema(
    {
        "symbol": pl.String,  # ccxt symbol, as written
        "base": pl.String,
        "quote": pl.String,
        "settle": pl.String,
        "type": pl.String,  # swap | future | option
        "inverse": pl.Boolean,  # settle == base; null when the symbol cannot say (quanto)
        "expiry": pl.Date,  # null for a perpetual
        "strike": DECIMAL,  # options only
        "option_type": pl.String,  # call | put, options only
    }
)
"""What a ccxt symbol says of its instrument (:func:`utl.derivatives.instruments.parse_symbols`)."""

INSTRUMENT_SPECS = pl.Schema(
    {
        "venue": pl.String,  # null: applies to every venue (a named venue's row wins)
        **INSTRUMENT,
        "contract_size": DECIMAL,  # one unit of position quantity: base units (linear), USD (inverse)
        "source_file": pl.String,
        "source_row": pl.Int64,
    }
)
"""``instruments/D.<json|csv>``: one row per (venue, symbol)."""

POSITION_SNAPSHOT = pl.Schema(
    {
        "venue": pl.String,
        "account": pl.String,
        "instrument": pl.String,  # ccxt symbol
        "venue_symbol": pl.String,  # as the venue wrote it (BTCUSDT, BTC-PERPETUAL)
        "qty": DECIMAL,  # signed, in the position unit of the contract's table; hedge legs netted
        "entry_price": DECIMAL,  # the venue's average entry (null when not stated)
        "mark_price": DECIMAL,
        "delta": DECIMAL,  # base units, where the venue states it
        "unrealized_pnl": DECIMAL,  # settle asset, where stated
        "settlement_price": DECIMAL,  # Deribit: the last session settlement
        "contract_size": DECIMAL,  # where the reply states it (ccxt contractSize)
        "source_file": pl.String,
        "source_row": pl.Int64,  # 1-based place in the list (the first row of a netted pair)
    }
)
"""``<venue>/<account>/positions/D.json``: the venue's open derivative positions."""

DATED_POSITION_SNAPSHOT = pl.Schema({"business_date": pl.Date, **POSITION_SNAPSHOT})
DATED_INSTRUMENT_SPECS = pl.Schema({"business_date": pl.Date, **INSTRUMENT_SPECS})

INSTRUMENT_LEGS = pl.Schema(
    {
        "venue": pl.String,
        "account": pl.String,
        "instrument": pl.String,
        "ts": UTC_TS,
        "leg_id": pl.String,
        "qty": DECIMAL,  # signed, position unit: + buy, - sell
        "price": DECIMAL,  # the fill's price (quote per base; options: the premium per unit)
    }
)
"""What the average entry reads: the instrument legs of derivative fills, in any order."""

DERIVATIVE_FILLS = pl.Schema(
    {
        **INSTRUMENT_LEGS,  # venue, account, instrument (ccxt symbol), ts, leg_id, qty (signed, position unit), price
        "fee": DECIMAL,  # + charged, - rebated; null when none stated
        "fee_asset": pl.String,
        "source": pl.String,  # "fills" (a trades export) | "ledger" (a ledger export's trade row)
        "source_file": pl.String,
        "source_row": pl.Int64,
    }
)
"""Every derivative fill of the landing: one instrument leg each (contract: Booking)."""

DERIVATIVE_CASH_KINDS = ("realized_pnl", "funding", "fee", "settlement", "delivery", "premium")
DERIVATIVE_CASH = pl.Schema(
    {
        "venue": pl.String, "account": pl.String,
        "instrument": pl.String,  # ccxt symbol; null when the ledger row does not name one
        "ts": UTC_TS, "entry_id": pl.String,
        "kind": pl.String,  # DERIVATIVE_CASH_KINDS
        "asset": pl.String,  # the settle asset, canonical
        "qty": DECIMAL,  # signed: + in, - out
        "source_file": pl.String, "source_row": pl.Int64,
        "price": DECIMAL,  # added by deriv-readers: the settlement/delivery price the row states (Deribit Price)
    }
)
"""The settle-asset ledger rows of derivatives, by instrument (they are ALSO movements)."""

ENTRY_STATE = pl.Schema(
    {
        "venue": pl.String, "account": pl.String, "instrument": pl.String,
        "qty": DECIMAL,  # signed
        "entry_price": DECIMAL,  # null exactly when flat
    }
)
"""The derivative position carried across midnight (and opened from the first snapshot)."""

ENTRY_LEGS = pl.Schema(
    {
        **INSTRUMENT_LEGS,
        "position_after": DECIMAL,
        "entry_price": DECIMAL,  # the average entry after the leg; null when flat
        "closed_qty": DECIMAL,  # unsigned quantity this leg closed
        "realized_pnl_computed": DECIMAL,  # settle asset; 0 for a leg that only opened
    }
)
"""Each leg with its effect (:func:`utl.derivatives.entry.average_entry`)."""

VALUED_DERIVATIVES = pl.Schema(
    {
        "venue": pl.String, "account": pl.String, "instrument": pl.String,
        "qty": DECIMAL, "entry_price": DECIMAL, "reference_price": DECIMAL, "mark": DECIMAL,
        "unrealized_pnl": DECIMAL, "delta": DECIMAL, "delta_usd": DECIMAL, "unrealized_pnl_usd": DECIMAL,
    }
)
"""Open positions valued at the mark (:func:`utl.derivatives.valuation.value_positions`)."""

DELIVERIES = pl.Schema(
    {
        "venue": pl.String, "account": pl.String, "instrument": pl.String,
        "ts": UTC_TS,
        "price": DECIMAL,  # the delivery (settlement) price the venue states
    }
)
"""The venue's delivery rows (Deribit ``delivery``), for expiry."""

EXPIRY_LEGS = pl.Schema({**INSTRUMENT_LEGS, "kind": pl.String})  # delivery | expiry
"""Legs that close expired positions."""

POSITION_BREAKS = pl.Schema({**BREAKS, "subject": pl.String})  # position | balance
"""utl.breaks with the contract's new ``subject`` column; ``asset`` holds the symbol."""

CLEARED_BREAKS = pl.Schema({**CLEARED, "subject": pl.String})  # position | balance
"""utl.cleared_breaks with ``subject``: a position break clears as a balance break does."""

DERIVATIVE_POSITIONS = pl.Schema(
    {
        "business_date": pl.Date,
        "venue": pl.String,
        "account": pl.String,
        "instrument": pl.String,
        "type": pl.String,
        "settle_asset": pl.String,
        "qty": DECIMAL,  # ledger
        "venue_qty": DECIMAL,  # null on a date without a positions file
        "contract_size": DECIMAL,
        "entry_price": DECIMAL,  # null where the ledger is flat
        "venue_entry_price": DECIMAL,  # null on a date without a positions file
        "mark": DECIMAL,
        "unrealized_pnl": DECIMAL,  # settle asset; null where the ledger is flat
        "unrealized_pnl_usd": DECIMAL,
        "realized_pnl": DECIMAL,  # the day's, settle asset
        "funding": DECIMAL,
        "fees": DECIMAL,
        "delta": DECIMAL,  # base units
        "delta_usd": DECIMAL,
    }
)
"""utl.derivative_positions (derivatives.md), one row per (business_date, venue, account,
instrument) open in the ledger or the snapshot."""

DAY_FLOWS = pl.Schema(
    {
        "venue": pl.String, "account": pl.String, "instrument": pl.String,
        "realized_pnl": DECIMAL, "funding": DECIMAL, "fees": DECIMAL,
    }
)
"""A date's cash of each instrument, in its settle asset (from ledgers, or computed)."""
