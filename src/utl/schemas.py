"""The canonical tables, each named once.

Readers turn a venue's export into one of the raw canonical frames below (venue asset codes
as written); :mod:`utl.ingest` maps codes to canonical assets, validates and books legs.
Every quantity, price and amount is :data:`utl.decimals.DECIMAL`.
"""

from __future__ import annotations

import polars as pl

from utl.decimals import DECIMAL

UTC_TS = pl.Datetime("us", "UTC")

FILLS = pl.Schema(
    {
        "venue": pl.String,
        "account": pl.String,
        "trade_id": pl.String,  # the venue's id, or hash of the raw row + occurrence number
        "order_id": pl.String,
        "ts": UTC_TS,
        "symbol": pl.String,  # as written by the venue
        "base": pl.String,
        "quote": pl.String,
        "side": pl.String,  # buy | sell
        "qty": DECIMAL,  # signed base quantity: + buy, - sell
        "price": DECIMAL,  # quote per base
        "quote_qty": DECIMAL,  # unsigned quote amount before fee
        "fee": DECIMAL,  # + charged, - rebated; null when none
        "fee_asset": pl.String,
        "liquidity": pl.String,  # maker | taker | null
        "source_file": pl.String,
        "source_row": pl.Int64,
    }
)

# One ledger line: a signed balance change of one asset (ledger exports only).
MOVEMENTS = pl.Schema(
    {
        "venue": pl.String,
        "account": pl.String,
        "entry_id": pl.String,  # the venue's id, or hash of the raw row + occurrence number
        "ref_id": pl.String,  # links the lines of one trade (Kraken refid...); may be null
        "ts": UTC_TS,
        "kind": pl.String,  # see MOVEMENT_KINDS
        "asset": pl.String,
        "qty": DECIMAL,  # signed: + in, - out
        "description": pl.String,  # the venue's own operation text
        "source_file": pl.String,
        "source_row": pl.Int64,
    }
)

MOVEMENT_KINDS = (
    "trade",  # a balance change that is one side of a trade
    "fee",
    "deposit",
    "withdrawal",
    "transfer",
    "funding",
    "interest",
    "rebate",
    "realized_pnl",
    "other",
)

BALANCES = pl.Schema(
    {
        "venue": pl.String,
        "account": pl.String,
        "asset": pl.String,
        "total": DECIMAL,
        "source_file": pl.String,
        "source_row": pl.Int64,
    }
)

MARKS = pl.Schema({"asset": pl.String, "price": DECIMAL})

# The universal ledger: one row per asset moved.
LEGS = pl.Schema(
    {
        "venue": pl.String,
        "account": pl.String,
        "leg_id": pl.String,  # unique within (venue, account)
        "ts": UTC_TS,
        "asset": pl.String,  # canonical
        "qty": DECIMAL,  # signed
        "kind": pl.String,  # base | quote | fee | a MOVEMENT_KINDS value
        "trade_id": pl.String,
        "price": DECIMAL,  # fill price (quote per base) for base legs; null otherwise
        "quote": pl.String,  # the fill's quote asset for base legs
        "source_file": pl.String,
        "source_row": pl.Int64,
    }
)
