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

import copy
import functools
from typing import Annotated, Optional

import pandera.polars as pa
import polars as pl

from utl.decimals import DECIMAL

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


# ---------------------------------------------------------------------------------------
# Every other table of the run, named once. Frames are built and cast with these; the
# PostgreSQL tables of the same names (sql/) hold the same columns.
# ---------------------------------------------------------------------------------------

QUARANTINE = pl.Schema(
    {
        "file": pl.String,  # relative to the landing folder
        "row": pl.Int64,  # 1-based data row; null when the whole file is refused
        "column": pl.String,  # null when the whole row (or file) is refused
        "reason": pl.String,
        "raw": pl.String,  # the refused text, for a person to read
    }
)
DATED_QUARANTINE = pl.Schema({"business_date": pl.Date, **QUARANTINE})  # null date: the row's date is unknown

# What ingest hands on: the canonical tables plus where each row came from.
# fee_asset_assumed: the export does not say which asset the fee was charged in (utl.fee_assumed).
FILLS_OUT = pl.Schema({**FILLS, "format": pl.String, "derivative": pl.Boolean, "fee_asset_assumed": pl.Boolean})
MOVEMENTS_OUT = pl.Schema({**MOVEMENTS, "format": pl.String})
BALANCES_OUT = pl.Schema({"business_date": pl.Date, **BALANCES})
MARKS_OUT = pl.Schema({"business_date": pl.Date, **MARKS, "source_file": pl.String, "source_row": pl.Int64})
FILES_OUT = pl.Schema({"file": pl.String, "format": pl.String, "kind": pl.String, "rows": pl.Int64, "refused": pl.Int64})
LEGS_OUT = pl.Schema({**LEGS, "source": pl.String, "fee_asset_assumed": pl.Boolean})  # source: "fills" | "ledger"
DAY_LEGS = pl.Schema(
    {name: LEGS[name] for name in ("venue", "account", "leg_id", "ts", "asset", "qty", "kind", "trade_id", "price", "quote")}
    | {"business_date": pl.Date}
)
"""What a booked leg carries through the run: only what it moves (provenance stays in ingest)."""

# The state carried from one business date to the next (utl.day.DayState).
POSITIONS_STATE = pl.Schema({"venue": pl.String, "account": pl.String, "asset": pl.String, "qty": DECIMAL})
LOTS_STATE = pl.Schema(
    {
        "book": pl.String, "asset": pl.String, "trade_id": pl.String, "opened_ts": UTC_TS,
        "qty": DECIMAL, "entry_price": DECIMAL,
    }
)
ACCOUNTS_STATE = pl.Schema({"venue": pl.String, "account": pl.String, "first_date": pl.Date})

# Transfers between own accounts (ledger.md). The rows of ``transfers/*.csv``, read exactly:
LISTED_TRANSFERS = pl.Schema(
    {
        "ts": UTC_TS, "asset": pl.String, "amount": DECIMAL, "from_venue": pl.String, "from_account": pl.String,
        "to_venue": pl.String, "to_account": pl.String, "tx_hash": pl.String, "source_file": pl.String,
        "source_row": pl.Int64,
    }
)
# A date's deposits and withdrawals as the matching sees them: ``amount`` is the movement's
# size (positive), ``fee`` the network fee its venue states beside it (the ``<id>/fee`` line;
# 0 when none), ``to_venue``/``to_account`` where a transfers/ listing sends a withdrawal.
TRANSFER_LEGS = pl.Schema(
    {
        "venue": pl.String, "account": pl.String, "asset": pl.String, "leg_id": pl.String, "ts": UTC_TS,
        "kind": pl.String, "amount": DECIMAL, "fee": DECIMAL, "tx_hash": pl.String, "to_venue": pl.String,
        "to_account": pl.String, "refs": pl.String,
    }
)
LEG_REFS = pl.Schema(
    {"venue": pl.String, "account": pl.String, "leg_id": pl.String, "source_file": pl.String,
     "source_row": pl.Int64, "fee_asset_assumed": pl.Boolean}
)
"""Where a disposal leg of the date came from (file and row: the few an exception names are
written ``file:row``, not the millions of a day), and whether it is a fee whose asset its
export does not state (utl.fee_assumed)."""
PENDING_TRANSFERS = pl.Schema({k: v for k, v in TRANSFER_LEGS.items() if k != "kind"})
"""Withdrawals not matched yet: carried from date to date (utl.day.DayState)."""
TRANSIT_LOTS = pl.Schema(
    {"venue": pl.String, "account": pl.String, "leg_id": pl.String, "trade_id": pl.String, "opened_ts": UTC_TS,
     "qty": DECIMAL, "entry_price": DECIMAL}
)
"""The lots a pending withdrawal took out of its book, in the order they left (positive qty)."""
TRANSFER_MATCHES = pl.Schema(
    {
        "from_venue": pl.String, "from_account": pl.String, "withdrawal_id": pl.String, "to_venue": pl.String,
        "to_account": pl.String, "deposit_id": pl.String, "asset": pl.String, "withdrawn": DECIMAL,
        "fee": DECIMAL, "deposited": DECIMAL, "withdrawn_ts": UTC_TS, "deposited_ts": UTC_TS, "listed": pl.Boolean,
    }
)
EXCEPTIONS = pl.Schema(
    {
        "business_date": pl.Date, "venue": pl.String, "account": pl.String, "asset": pl.String, "kind": pl.String,
        "quantity": DECIMAL, "mark": DECIMAL, "value": DECIMAL, "first_seen": pl.Date, "first_ts": UTC_TS,
        "age_days": pl.Int64, "refs": pl.String,
    }
)
"""utl.exceptions (ledger.md): one row per (business_date, venue, account, asset, kind)."""

# A date's outputs.
VALUED_POSITIONS = pl.Schema(
    {
        "venue": pl.String, "account": pl.String, "book": pl.String, "asset": pl.String, "qty": DECIMAL,
        "mark": DECIMAL, "market_value": DECIMAL, "cost_basis": DECIMAL, "unrealized_pnl": DECIMAL,
    }
)
POSITIONS_TABLE = pl.Schema(
    {
        "business_date": pl.Date, "venue": pl.String, "account": pl.String, "asset": pl.String, "qty": DECIMAL,
        "mark": DECIMAL, "market_value": DECIMAL, "cost_basis": DECIMAL, "unrealized_pnl": DECIMAL, "book": pl.String,
    }
)
"""utl.positions (eod.md)."""
LOTS_TABLE = pl.Schema({**LOTS_STATE, "business_date": pl.Date})
BREAKS = pl.Schema(
    {
        "business_date": pl.Date, "venue": pl.String, "account": pl.String, "asset": pl.String,
        "ledger_qty": DECIMAL, "venue_qty": DECIMAL, "diff": DECIMAL, "tolerance": DECIMAL,
        "first_seen": pl.Date, "kind": pl.String, "mark": DECIMAL, "diff_value": DECIMAL,
    }
)
"""utl.breaks (eod.md)."""
CLEARED = pl.Schema(
    {"venue": pl.String, "account": pl.String, "asset": pl.String, "first_seen": pl.Date, "cleared_on": pl.Date}
)
"""Breaks of an account's previous reconciled date that a date no longer shows."""
PNL = pl.Schema(
    {
        "business_date": pl.Date, "book": pl.String, "asset": pl.String,
        **{c: DECIMAL for c in ("realized_pnl", "unrealized_pnl", "unrealized_change", "fees", "income", "trade_residual",
                                "external_flows", "market_value_start", "market_value_end", "total_pnl")},
        "provisional": pl.Boolean,  # an account of the book holds the asset below zero (missing_acquisition)
    }
)
"""utl.pnl: per (book, asset), reporting currency."""
PNL_EXPLAIN = pl.Schema(
    {
        "business_date": pl.Date, "book": pl.String,
        **{c: DECIMAL for c in ("market_value_start", "market_value_end", "external_flows", "realized_pnl",
                                "unrealized_change", "fees", "income", "trade_residual", "total_pnl", "unexplained")},
    }
)
"""utl.pnl_explain: per book."""

EXPOSURE_INPUT = pl.Schema(
    {
        "business_date": pl.Date,
        "venue": pl.String,
        "account": pl.String,
        "book": pl.String,
        "asset": pl.String,
        "qty": DECIMAL,  # signed
        "mark": DECIMAL,  # null: unpriced
        "market_value": DECIMAL,  # qty * mark; null exactly when mark is
    }
)
"""The columns exposure reads (others are ignored)."""
_MEASURES = {
    "net_value": DECIMAL,
    "gross_value": DECIMAL,
    "long_value": DECIMAL,
    "short_value": DECIMAL,  # <= 0
    "share_of_gross": DECIMAL,  # of the day's total gross; null when that is 0
    "positions": pl.Int64,
    "unpriced": pl.Boolean,  # some position of the group has no mark
}
EXPOSURE_BY_ASSET = pl.Schema({"business_date": pl.Date, "asset": pl.String, "net_qty": DECIMAL, **_MEASURES})
EXPOSURE_BY_VENUE = pl.Schema({"business_date": pl.Date, "venue": pl.String, **_MEASURES})
EXPOSURE_BY_BOOK = pl.Schema({"business_date": pl.Date, "book": pl.String, **_MEASURES})
CONCENTRATION = pl.Schema(
    {
        "business_date": pl.Date,
        "gross_value": DECIMAL,  # the day's total gross over priced positions
        "top_venue": pl.String,  # largest share of gross; ties go to the first name
        "top_venue_share": DECIMAL,
        "top_asset": pl.String,
        "top_asset_share": DECIMAL,
        "herfindahl": DECIMAL,  # Σ share² over assets: 1 = one asset, 1/n = n equal ones
        "unpriced": pl.Boolean,  # some position of the day has no mark: shares cover the priced ones
    }
)
# The landing memory (utl.memory): what is remembered of each file, and of each date.
CATALOG = pl.Schema(
    {
        "file": pl.String, "size": pl.Int64, "mtime_ns": pl.Int64, "sha256": pl.String, "key": pl.String,
        "format": pl.String, "kind": pl.String, "venue": pl.String, "account": pl.String,
        "first_date": pl.Date, "last_date": pl.Date, "rows": pl.Int64, "refused": pl.Int64,
    }
)
FINGERPRINTS = pl.Schema({"business_date": pl.Date, "fingerprint": pl.String})

PNL_BY_BOOK = pl.Schema(
    {
        "business_date": pl.Date,
        "book": pl.String,
        "realized_pnl": DECIMAL,  # each null when some row of the book has none: unknown, not 0
        "unrealized_pnl": DECIMAL,
        "fees": DECIMAL,
        "total_pnl": DECIMAL,
    }
)


def keys_distinct(frame: pl.DataFrame, key: list[str]) -> bool:
    """True when no two rows share ``key``, proved cheaply: distinct hashes mean distinct keys.
    False means "maybe not" (a repeat, or two keys whose hashes collide): check the slow way."""
    if frame.height < 2:
        return True
    return frame.select(key).hash_rows(seed=11).n_unique() == frame.height


@functools.cache
def _without_unique(model: type[pa.DataFrameModel]) -> pa.DataFrameSchema:
    # pandera's uniqueness check costs more than the rest of a large frame's checks together;
    # it runs only where keys_distinct cannot prove the keys distinct.
    schema = copy.deepcopy(model.to_schema())  # to_schema() is pandera's own cached object
    schema.unique = None
    return schema


# The builtin checks whose whole work is one ``lazyframe.select(<expression>)`` over the
# column (pandera.backends.polars.builtin_checks): :func:`_fast_checks` fuses them.
_FUSABLE_CHECKS = frozenset({
    "equal_to", "not_equal_to", "greater_than", "greater_than_or_equal_to", "less_than",
    "less_than_or_equal_to", "in_range", "isin", "notin", "str_matches", "str_contains", "str_startswith",
    "str_endswith",
})


class _Selecting:
    """Stands for the LazyFrame a builtin check selects from: gives back its expression."""

    def select(self, *exprs: pl.Expr) -> pl.Expr:
        if len(exprs) != 1 or not isinstance(exprs[0], pl.Expr):
            raise TypeError("not a single expression")
        return exprs[0]


def _builtin_name(check) -> str | None:
    """The builtin check function ``check`` runs (None: a custom check)."""
    name = getattr(check._check_fn, "__name__", None)
    return name if name is not None and check.is_builtin_check(name) else None


def _passes(check, column: str) -> pl.Expr:
    """True when ``check`` passes on every row of ``column``: pandera's own check expression,
    with its null rule (``ignore_na``: a null result passes; else it fails)."""
    import pandera.backends.polars.builtin_checks  # noqa: F401  (registers the polars check functions)
    from pandera.api.polars.types import PolarsData

    # As pandera's Check.__call__: the builtin function by its own name, from the registry
    # (where the polars implementation is registered beside the generic one).
    function = check.get_builtin_check_fn(_builtin_name(check))
    result = function(PolarsData(_Selecting(), column), **check._check_kwargs)
    if not isinstance(result, pl.Expr):
        raise TypeError(f"check {check.name} is not one expression")
    result = (result | result.is_null()) if check.ignore_na else result.fill_null(False)
    return result.all()


_FAST_CHECKS: dict[int, tuple[pa.DataFrameSchema, tuple | None]] = {}


def _fast_checks(schema: pa.DataFrameSchema) -> tuple[tuple[str, object, bool, bool, tuple[pl.Expr, ...]], ...] | None:
    """:func:`_column_checks` of ``schema``, worked out once per schema object (the models'
    schemas are pandera's cached objects and :func:`_without_unique`'s)."""
    known = _FAST_CHECKS.get(id(schema))
    if known is None or known[0] is not schema:
        known = _FAST_CHECKS[id(schema)] = (schema, _column_checks(schema))
    return known[1]


def _column_checks(schema: pa.DataFrameSchema) -> tuple[tuple[str, object, bool, bool, tuple[pl.Expr, ...]], ...] | None:
    """The schema's column checks as expressions for :func:`_surely_valid`: per column
    (name, pandera dtype, required, nullable, the checks' "all rows pass" expressions).
    None when the schema asks for anything else (frame-level checks, coercion, strict or
    ordered columns, parsers, defaults, regex or unique columns, element-wise or custom
    checks): pandera alone validates those."""
    if (schema.checks or schema.coerce or schema.strict or schema.ordered or schema.parsers
            or getattr(schema, "add_missing_columns", False) or schema.drop_invalid_rows):
        return None
    columns = []
    for name, column in schema.columns.items():
        if (column.regex or column.coerce or column.unique or column.parsers or column.default is not None
                or column.drop_invalid_rows or column.dtype is None or column.name != name):
            return None
        exprs = []
        for check in column.checks:
            if _builtin_name(check) not in _FUSABLE_CHECKS or check.element_wise or check.groupby is not None:
                return None
            try:
                exprs.append(_passes(check, name))
            except Exception:  # a check that is not one expression: pandera runs it
                return None
        columns.append((name, column.dtype, column.required, column.nullable, tuple(exprs)))
    return tuple(columns)


def _surely_valid(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> bool:
    """True only when pandera would find nothing wrong with ``frame`` (every value check of
    the schema over every row, in one select); False means "maybe not": pandera decides.
    The same column presence, dtype (pandera's own comparison), nullability and value
    checks as pandera's, so a True never hides a row pandera would refuse."""
    from pandera.config import get_config_context

    columns = _fast_checks(schema)
    if columns is None or get_config_context().use_narwhals_backend:  # then pandera runs other check code
        return False
    exprs = []
    for name, dtype, required, nullable, checks in columns:
        if name not in frame.schema:
            if required:
                return False
            continue
        written = frame.schema[name]
        if dtype.check(written) is not True:  # pandera's own dtype comparison
            return False
        if not nullable:
            present = pl.col(name).is_not_null()
            if written in (pl.Float32, pl.Float64):  # pandera counts NaN as null
                present = present & pl.col(name).is_not_nan()
            exprs.append(present.all())
        exprs += checks
    if not exprs or frame.height == 0:
        return True
    try:
        return frame.select(pl.all_horizontal(exprs)).item() is True
    except Exception:  # a check pandera would report as an error: pandera reports it
        return False


def validate_rows(frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Check ``frame`` against ``model``: (rows that pass, quarantine rows for those that
    do not, naming file, row, column and the failed check). Raises when the frame's shape
    (columns, dtypes) is wrong: that is a bug, not bad input.

    pandera is the validator of record. A frame that passes every check of the model in one
    fused select (:func:`_surely_valid`: the usual case, and much cheaper on a small frame
    than pandera's check-by-check run) is returned as pandera would return it; any other
    frame is validated by pandera, whose failure cases make the quarantine."""
    return _validate(frame, model, fused=True)


def _validate(frame: pl.DataFrame, model: type[pa.DataFrameModel], fused: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`validate_rows`; ``fused=False``: by pandera alone (tests compare the two)."""
    try:
        schema = model.to_schema()
        if schema.unique and keys_distinct(frame, list(schema.unique)):
            schema = _without_unique(model)
        if fused and not schema.unique and _surely_valid(frame, schema):
            return frame, QUARANTINE.to_frame()
        schema.validate(frame, lazy=True)
        return frame, QUARANTINE.to_frame()
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    return _refused(frame, model, failures)


def _refused(frame: pl.DataFrame, model: type[pa.DataFrameModel], failures: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(passing rows, quarantine) from pandera's failure cases."""
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
    return passing, refused.cast(QUARANTINE)
