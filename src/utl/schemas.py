"""The canonical tables, each named once, as pandera models.

Readers turn a venue's export into one of the raw canonical frames below (venue asset codes
as written); :mod:`utl.ingest` maps codes to canonical ones, validates and books legs.
Every quantity, price and amount is ``Decimal(38, 18)``. The Polars schemas that code
builds frames with (``FILLS``, ``LEGS``, ...) are derived from these models, so the model
is the one truth.

:func:`validate_rows` checks a frame against its model at a boundary (pandera, all failures
at once): a row that fails a value check is returned for the quarantine, naming its file,
row and column; a frame of the wrong shape is a programming error and raises.
"""

from __future__ import annotations

from typing import Annotated, Optional

import pandera.polars as pa
import polars as pl

from utl.decimals import DECIMAL
from utl.errors import QUARANTINE_SCHEMA, empty_quarantine

Amount = Annotated[pl.Decimal, 38, 18]  # exact; never Float64
UtcTime = Annotated[pl.Datetime, "us", "UTC"]
UTC_TS = pl.Datetime("us", "UTC")

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


class Fills(pa.DataFrameModel):
    """What a venue reports as executed: one row per fill."""

    venue: str
    account: str
    trade_id: str  # the venue's id, or hash of the raw row + occurrence number
    order_id: Optional[str] = pa.Field(nullable=True)
    ts: UtcTime
    symbol: str  # as written by the venue
    base: str
    quote: str
    side: str = pa.Field(isin=["buy", "sell"])
    qty: Amount = pa.Field(ne=0)  # signed base quantity: + buy, - sell
    price: Amount = pa.Field(gt=0)  # quote per base
    quote_qty: Amount = pa.Field(ge=0)  # unsigned quote amount before fee
    fee: Optional[Amount] = pa.Field(nullable=True)  # + charged, - rebated
    fee_asset: Optional[str] = pa.Field(nullable=True)
    liquidity: Optional[str] = pa.Field(nullable=True, isin=["maker", "taker"])
    source_file: str
    source_row: int

    class Config:
        coerce = False


class Movements(pa.DataFrameModel):
    """One ledger line: a signed balance change of one asset (ledger exports)."""

    venue: str
    account: str
    entry_id: str
    ref_id: Optional[str] = pa.Field(nullable=True)  # links the lines of one trade
    ts: UtcTime
    kind: str = pa.Field(isin=list(MOVEMENT_KINDS))
    asset: str
    qty: Amount  # signed: + in, - out
    description: Optional[str] = pa.Field(nullable=True)
    source_file: str
    source_row: int


class Balances(pa.DataFrameModel):
    """A venue's total holding of an asset at end of a day (a snapshot row)."""

    venue: str
    account: str
    asset: str
    total: Amount
    source_file: str
    source_row: int


class Marks(pa.DataFrameModel):
    asset: str
    price: Amount = pa.Field(gt=0)


class Legs(pa.DataFrameModel):
    """The universal ledger: one row per asset moved."""

    venue: str
    account: str
    leg_id: str  # unique within (venue, account)
    ts: UtcTime
    asset: str  # canonical
    qty: Amount  # signed
    kind: str  # base | quote | fee | a MOVEMENT_KINDS value
    trade_id: Optional[str] = pa.Field(nullable=True)
    price: Optional[Amount] = pa.Field(nullable=True, gt=0)  # the fill's price, for base legs
    quote: Optional[str] = pa.Field(nullable=True)
    source_file: str
    source_row: int

    class Config:
        unique = ["venue", "account", "leg_id"]


def polars_schema(model: type[pa.DataFrameModel]) -> pl.Schema:
    """The model's columns and dtypes, in order, as a Polars schema."""
    return pl.Schema({name: column.dtype.type for name, column in model.to_schema().columns.items()})


FILLS = polars_schema(Fills)
MOVEMENTS = polars_schema(Movements)
BALANCES = polars_schema(Balances)
MARKS = polars_schema(Marks)
LEGS = polars_schema(Legs)


def validate_rows(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check ``frame`` against ``model``: (rows that pass, quarantine rows for those that
    do not, naming file, row, column and the failed check). Raises when the frame's shape
    (columns, dtypes) is wrong: that is a bug, not bad input."""
    try:
        model.validate(frame, lazy=True)
        return frame, empty_quarantine()
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    rows = failures.filter(pl.col("index").is_not_null())
    if rows.height < failures.height:
        raise ValueError(f"{model.__name__}: frame does not have the model's shape:\n{failures}")
    bad = rows.select(pl.col("index").cast(pl.Int64), "column", "check", "failure_case")
    numbered = frame.with_row_index("__index").with_columns(pl.col("__index").cast(pl.Int64))
    has_source = "source_file" in frame.columns
    refused = bad.join(numbered, left_on="index", right_on="__index").select(
        file=pl.col("source_file") if has_source else pl.lit(None, pl.String),
        row=pl.col("source_row") if has_source else pl.lit(None, pl.Int64),
        column=pl.col("column").cast(pl.String),
        reason=pl.format("fails the {} check {}", pl.lit(model.__name__), pl.col("check")),
        raw=pl.col("failure_case").cast(pl.String),
    )
    passing = numbered.join(bad.select("index").unique(), left_on="__index", right_on="index", how="anti").drop("__index")
    return passing, refused.cast(QUARANTINE_SCHEMA)


__all__ = [
    "Amount", "BALANCES", "Balances", "DECIMAL", "FILLS", "Fills", "LEGS", "Legs", "MARKS", "MOVEMENTS",
    "MOVEMENT_KINDS", "Marks", "Movements", "UTC_TS", "polars_schema", "validate_rows",
]
