"""Lot-based unit cost: FIFO, LIFO, HIFO and WAC, exact to the last unit.

The outside face is ``../shared/contracts/costing.md``::

    result = compute_costs(trades, method="fifo")
    result.realized, result.positions, result.open_lots

How it works. Trades are validated (every bad value reported by row, column and
``trade_id``), put in application order (book, asset, ts, input order), and their
quantities turned into integers at the smallest scale that holds them all. The sequential
part, deciding which lot each closing trade consumes, runs in a compiled kernel
(:mod:`utl.lots`) that only moves quantities; every match is then priced here in Polars
``Decimal(38, 18)``: closing ``q`` of a lot entered at ``p0`` with a trade at ``p1``
realizes ``q * (p1 - p0)`` for a long lot and ``q * (p0 - p1)`` for a short one, each
product rounded half-even at 18 digits (Polars' Decimal product). Quantities are never
rounded: a book that ends flat holds exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Literal

import numpy as np
import polars as pl

from utl.decimals import DECIMAL, SCALE, count_decimals, strict_decimal
from utl.errors import BadInput, RowError
from utl.lots import match_lots, wac_exact, wac_kernel
from utl.schemas import UTC_TS

Method = Literal["fifo", "lifo", "hifo", "wac"]
METHODS: tuple[str, ...] = ("fifo", "lifo", "hifo", "wac")
REQUIRED = ("book", "asset", "ts", "trade_id", "qty", "price")
INT64_MAX = 2**63 - 1
_WIDE = Context(prec=200, rounding=ROUND_HALF_EVEN)
_ROW = "__row"
_GROUP = "__group"


@dataclass(frozen=True)
class CostingResult:
    realized: pl.DataFrame  # every input trade, input order, + realized_pnl, closed_qty, position_after
    positions: pl.DataFrame  # one row per (book, asset), flat ones included
    open_lots: pl.DataFrame  # lots still open ("wac": one pool per open position)


def compute_costs(trades: pl.DataFrame | pl.LazyFrame, method: Method = "fifo", *, source: str | None = None) -> CostingResult:
    """Cost ``trades`` under ``method``; raises :class:`ValueError` (a :class:`BadInput`)
    naming every bad value's column, row and ``trade_id``; ``source`` names the file."""
    if method not in METHODS:
        raise ValueError(f"unknown costing method {method!r}: use one of {', '.join(METHODS)}")
    frame = trades.collect() if isinstance(trades, pl.LazyFrame) else trades
    valid = validate_trades(frame, source=source)
    ordered = valid.sort("book", "asset", "ts", _ROW).with_columns(
        ((pl.col("book") != pl.col("book").shift()) | (pl.col("asset") != pl.col("asset").shift()))
        .fill_null(True)
        .cum_sum()
        .cast(pl.Int64)
        .sub(1)
        .alias(_GROUP)
    )
    scale = int(ordered.select(count_decimals(pl.col("qty")).max()).item() or 0)
    if method == "wac":
        per_trade, positions, open_lots = _cost_wac(ordered, scale)
    else:
        per_trade, positions, open_lots = _cost_lots(ordered, scale, method)
    realized = (
        ordered.with_columns(per_trade)
        .with_columns(position_after=pl.col("qty").cum_sum().over(_GROUP))
        .sort(_ROW)
        .drop(_ROW, _GROUP)
    )
    return CostingResult(realized=realized, positions=positions, open_lots=open_lots)


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------


def _as_decimal(frame: pl.DataFrame, column: str) -> tuple[pl.Expr, pl.Expr, str]:
    """(value, is_bad, reason) for a qty/price column given as Decimal, integer or text."""
    dtype = frame.schema[column]
    if dtype == pl.Null:
        return pl.lit(None, DECIMAL), pl.lit(False), ""
    if dtype.is_float():
        # A float already lost the venue's digits: refuse it rather than guess them back.
        return pl.lit(None, DECIMAL), pl.col(column).is_not_null(), "is a float; give an exact decimal or its text"
    if isinstance(dtype, pl.Decimal) and (dtype.scale or 0) <= SCALE:
        return pl.col(column).cast(DECIMAL), pl.lit(False), ""
    text = pl.col(column).cast(pl.String)
    if isinstance(dtype, pl.Decimal):
        text = text.str.replace(r"(\.\d*?)0+$", "${1}").str.strip_chars_end(".")
    value, bad = strict_decimal(text)
    return value, bad, "is not a decimal number (-?digits, up to 18 after the point)"


def _as_utc(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    dtype = frame.schema["ts"]
    if isinstance(dtype, pl.Datetime):
        ts = pl.col("ts").cast(pl.Datetime("us", dtype.time_zone))
        ts = ts.dt.convert_time_zone("UTC") if dtype.time_zone else ts.dt.replace_time_zone("UTC")
        return ts, pl.lit(False)
    if dtype == pl.Date:
        return pl.col("ts").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), pl.lit(False)
    if dtype == pl.Null:
        return pl.lit(None, UTC_TS), pl.lit(False)
    text = pl.col("ts").cast(pl.String)
    # Unparseable text becomes null here and is reported just below, never dropped.
    ts = text.str.to_datetime(time_unit="us", time_zone="UTC", strict=False)
    return ts, text.is_not_null() & ts.is_null()


def validate_trades(frame: pl.DataFrame, *, source: str | None = None) -> pl.DataFrame:
    """Check trades against the contract and return them with ``qty``/``price`` as exact
    decimals, ``ts`` in UTC and the input row number; raise :class:`BadInput` listing every
    problem (missing column, null, unparseable or zero quantity, non-positive or unparseable
    price, bad timestamp, duplicate ``trade_id`` within a book)."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise BadInput([RowError(source, None, c, "missing column") for c in missing])
    qty, qty_bad, qty_reason = _as_decimal(frame, "qty")
    price, price_bad, price_reason = _as_decimal(frame, "price")
    ts, ts_bad = _as_utc(frame)
    checked = frame.with_columns(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(_ROW),
        pl.col("book").cast(pl.String),
        pl.col("asset").cast(pl.String),
        pl.col("trade_id").cast(pl.String),
        qty.alias("__qty"),
        qty_bad.alias("__qty_bad"),
        price.alias("__price"),
        price_bad.alias("__price_bad"),
        ts.alias("__ts"),
        ts_bad.alias("__ts_bad"),
    )
    problems = [
        *[(c, pl.col(c).is_null(), pl.lit("is null")) for c in REQUIRED],
        ("qty", pl.col("__qty_bad"), pl.lit(qty_reason)),
        ("qty", pl.col("__qty") == 0, pl.lit("is zero")),
        ("price", pl.col("__price_bad"), pl.lit(price_reason)),
        ("price", pl.col("__price") <= 0, pl.lit("is not positive")),
        ("ts", pl.col("__ts_bad"), pl.lit("is not an ISO 8601 timestamp")),
        (
            "trade_id",
            pl.int_range(pl.len()).over("book", "trade_id") > 0,
            pl.format("is a duplicate within book {}", pl.col("book")),
        ),
    ]
    found = pl.concat(
        [
            checked.filter(bad.fill_null(False)).select(
                pl.col(_ROW),
                pl.lit(column).alias("column"),
                reason.alias("reason"),
                pl.col(column).cast(pl.String).alias("raw"),
                pl.col("trade_id"),
            )
            for column, bad, reason in problems
        ]
    ).sort(_ROW, maintain_order=True)
    if found.height:
        raise BadInput(
            [
                RowError(source, r[_ROW], r["column"], r["reason"], r["raw"], r["trade_id"])
                for r in found.iter_rows(named=True)
            ]
        )
    return checked.with_columns(
        qty=pl.col("__qty"), price=pl.col("__price"), ts=pl.col("__ts")
    ).drop("__qty", "__qty_bad", "__price", "__price_bad", "__ts", "__ts_bad")


# ---------------------------------------------------------------------------------------
# Scaled integers
# ---------------------------------------------------------------------------------------


def _fits_int64(ordered: pl.DataFrame, scale: int) -> bool:
    """Whether every position and lot of every group fits int64 at ``scale``: no lot or
    position can exceed the group's total traded quantity."""
    bound = Decimal(INT64_MAX).scaleb(-scale, _WIDE)
    try:
        largest = (
            ordered.lazy().group_by(_GROUP).agg(pl.col("qty").abs().sum()).select(pl.col("qty").max()).collect().item()
        )
    except pl.exceptions.ComputeError:  # the total itself overflowed Decimal(38, 18)
        return False
    return largest is None or largest <= bound


def _scaled(values: pl.Series, scale: int, fits: bool) -> np.ndarray:
    if fits:
        return (values * pl.Series([Decimal(10) ** scale], dtype=pl.Decimal(38, 0))).cast(pl.Int64).to_numpy()
    return np.array([int(v.scaleb(scale, _WIDE)) for v in values.to_list()], dtype=object)


def _unscaled(values: np.ndarray, scale: int) -> pl.Series:
    if values.dtype == object:
        return pl.Series([Decimal(int(v)).scaleb(-scale, _WIDE) for v in values], dtype=DECIMAL)
    return pl.Series(values, dtype=pl.Int64).cast(DECIMAL) * pl.Series([Decimal(1).scaleb(-scale)], dtype=DECIMAL)


# ---------------------------------------------------------------------------------------
# FIFO, LIFO, HIFO
# ---------------------------------------------------------------------------------------


def _cost_lots(ordered: pl.DataFrame, scale: int, method: str):
    fits = _fits_int64(ordered, scale)
    qty = _scaled(ordered["qty"], scale, fits)
    group = ordered[_GROUP].to_numpy()
    rank = ordered.select(pl.col("price").rank("dense").cast(pl.Int64)).to_series().to_numpy()
    m_close, m_lot, m_qty, open_trade, open_qty = match_lots(group, qty, rank, method)

    price = ordered["price"]
    matches = pl.DataFrame(
        {
            "close": m_close,
            "closed": _unscaled(m_qty, scale),
            "exit_price": price.gather(m_close),
            "entry_price": price.gather(m_lot),
            "long": ordered["qty"].gather(m_lot) > 0,
        }
    )
    per_close = (
        matches.lazy()
        .select(
            "close",
            "closed",
            pl.when("long")
            .then(pl.col("closed") * (pl.col("exit_price") - pl.col("entry_price")))
            .otherwise(pl.col("closed") * (pl.col("entry_price") - pl.col("exit_price")))
            .alias("realized_pnl"),
        )
        .group_by("close")
        .agg(pl.col("realized_pnl").sum(), pl.col("closed").sum().alias("closed_qty"))
        .collect()
    )
    realized_pnl, closed_qty = _scatter(ordered.height, per_close)

    lots = pl.DataFrame({"lot": open_trade, "qty": _unscaled(open_qty, scale)}).sort("lot")
    open_lots = pl.DataFrame(
        {
            "book": ordered["book"].gather(lots["lot"]),
            "asset": ordered["asset"].gather(lots["lot"]),
            "trade_id": ordered["trade_id"].gather(lots["lot"]),
            "opened_ts": ordered["ts"].gather(lots["lot"]),
            "qty": lots["qty"],
            "entry_price": price.gather(lots["lot"]),
        }
    )
    positions = _positions(ordered, realized_pnl, open_lots, _exact_averages(open_lots))
    return [realized_pnl, closed_qty], positions, open_lots


def _scatter(n: int, per_close: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """Per-trade realized PnL and closed quantity, zero for trades that only opened."""
    full = (
        pl.DataFrame({"close": np.arange(n, dtype=np.int64)})
        .join(per_close, on="close", how="left")
        .sort("close")
        .with_columns(pl.col("realized_pnl", "closed_qty").fill_null(pl.lit(0, DECIMAL)))
    )
    return full["realized_pnl"].cast(DECIMAL), full["closed_qty"].cast(DECIMAL)


def _exact_averages(open_lots: pl.DataFrame) -> pl.DataFrame:
    """``avg_price`` per open position, divided out of the unrounded lot products.

    ``sum(qty * entry_price)`` can need 36 digits after the point, more than a Decimal(38,18)
    holds, so this sum runs in Python's decimal over the open lots only (few, next to the
    trades) and the quotient is rounded half-even at 18 digits.
    """
    if open_lots.height == 0:
        return pl.DataFrame(schema={"book": pl.String, "asset": pl.String, "avg_price": DECIMAL})
    keys = open_lots.select("book", "asset").rows()
    qtys = open_lots["qty"].to_list()
    prices = open_lots["entry_price"].to_list()
    totals: dict[tuple[str, str], list[Decimal]] = {}
    for key, q, p in zip(keys, qtys, prices):
        acc = totals.setdefault(key, [Decimal(0), Decimal(0)])
        acc[0] = _WIDE.add(acc[0], _WIDE.multiply(q, p))
        acc[1] = _WIDE.add(acc[1], q)
    quantum = Decimal(1).scaleb(-SCALE)
    rows = [
        (book, asset, _WIDE.divide(cost, qty).quantize(quantum, rounding=ROUND_HALF_EVEN))
        for (book, asset), (cost, qty) in totals.items()
    ]
    return pl.DataFrame(rows, schema={"book": pl.String, "asset": pl.String, "avg_price": DECIMAL}, orient="row")


def _positions(ordered: pl.DataFrame, realized_pnl: pl.Series, open_lots: pl.DataFrame, averages: pl.DataFrame) -> pl.DataFrame:
    totals = (
        ordered.lazy()
        .with_columns(realized_pnl=realized_pnl)
        .group_by("book", "asset")
        .agg(pl.col("qty").sum(), pl.col("realized_pnl").sum())
    )
    basis = (
        open_lots.lazy()
        .group_by("book", "asset")
        .agg((pl.col("qty") * pl.col("entry_price")).sum().alias("cost_basis"))
    )
    return (
        totals.join(basis, on=["book", "asset"], how="left")
        .join(averages.lazy(), on=["book", "asset"], how="left")
        .select(
            "book",
            "asset",
            pl.col("qty").cast(DECIMAL),
            pl.col("cost_basis").fill_null(pl.lit(0, DECIMAL)).cast(DECIMAL),
            pl.col("avg_price").cast(DECIMAL),
            pl.col("realized_pnl").cast(DECIMAL),
        )
        .sort("book", "asset")
        .collect()
    )


# ---------------------------------------------------------------------------------------
# WAC
# ---------------------------------------------------------------------------------------


def _price_parts(price: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Prices split at the point: integer part and the 18 digits after it, both int64."""
    integer = price.cast(pl.Int64)
    fraction = ((price - integer.cast(DECIMAL)) * pl.Series([Decimal(10) ** SCALE], dtype=pl.Decimal(38, 0))).cast(pl.Int64)
    return integer.to_numpy(), fraction.to_numpy()


def _cost_wac(ordered: pl.DataFrame, scale: int):
    n = ordered.height
    group = ordered[_GROUP].to_numpy()
    n_groups = int(group[-1]) + 1 if n else 0
    result = None
    if _fits_int64(ordered, scale) and (n == 0 or ordered["price"].max() < Decimal(2**63 - 1)):
        qty = _scaled(ordered["qty"], scale, True)
        price_int, price_frac = _price_parts(ordered["price"])
        closed = np.zeros(n, np.int64)
        avg_int = np.zeros(n, np.int64)
        avg_frac = np.zeros(n, np.int64)
        pool_start = np.empty(n, np.int64)
        end_pos = np.zeros(n_groups, np.int64)
        end_avg_int = np.zeros(n_groups, np.int64)
        end_avg_frac = np.zeros(n_groups, np.int64)
        end_start = np.empty(n_groups, np.int64)
        if wac_kernel(group, qty, price_int, price_frac, closed, avg_int, avg_frac, pool_start,
                      end_pos, end_avg_int, end_avg_frac, end_start):
            avg_before = _join_parts(avg_int, avg_frac)
            end_avg = _join_parts(end_avg_int, end_avg_frac)
            result = closed, avg_before, end_pos, end_avg, end_start
    if result is None:
        qty = _scaled(ordered["qty"], scale, False)
        price18 = [int(p.scaleb(SCALE, _WIDE)) for p in ordered["price"].to_list()]
        closed, avg18, _, end_pos, end_avg18, end_start = wac_exact(group, qty, price18)
        closed = np.array(closed, dtype=object)
        end_pos = np.array(end_pos, dtype=object)
        end_start = np.array(end_start, dtype=np.int64)
        avg_before = pl.Series([Decimal(a).scaleb(-SCALE) for a in avg18], dtype=DECIMAL)
        end_avg = pl.Series([Decimal(a).scaleb(-SCALE) for a in end_avg18], dtype=DECIMAL)
        result = closed, avg_before, end_pos, end_avg, end_start
    closed, avg_before, end_pos, end_avg, end_start = result

    closed_qty = _unscaled(closed, scale)
    per_trade = ordered.select(
        pl.when(pl.col("qty") < 0)  # a sell closes a long pool, a buy a short one
        .then(closed_qty * (pl.col("price") - avg_before))
        .otherwise(closed_qty * (avg_before - pl.col("price")))
        .alias("realized_pnl"),
        closed_qty.alias("closed_qty"),
    )
    ends = pl.DataFrame(
        {
            "book": ordered["book"].gather(_group_firsts(group, n_groups)),
            "asset": ordered["asset"].gather(_group_firsts(group, n_groups)),
            "qty": _unscaled(end_pos, scale),
            "avg": end_avg,
            "start": end_start,
        }
    )
    open_ends = ends.filter(pl.col("qty") != 0)
    open_lots = pl.DataFrame(
        {
            "book": open_ends["book"],
            "asset": open_ends["asset"],
            "trade_id": pl.Series([None] * open_ends.height, dtype=pl.String),
            "opened_ts": ordered["ts"].gather(open_ends["start"]),
            "qty": open_ends["qty"],
            "entry_price": open_ends["avg"],
        }
    )
    averages = open_ends.select("book", "asset", pl.col("avg").alias("avg_price"))
    positions = _positions(ordered, per_trade["realized_pnl"], open_lots, averages)
    return [per_trade["realized_pnl"], per_trade["closed_qty"]], positions, open_lots


def _join_parts(integer: np.ndarray, fraction: np.ndarray) -> pl.Series:
    return pl.Series(integer, dtype=pl.Int64).cast(DECIMAL) + pl.Series(fraction, dtype=pl.Int64).cast(DECIMAL) * pl.Series(
        [Decimal(1).scaleb(-SCALE)], dtype=DECIMAL
    )


def _group_firsts(group: np.ndarray, n_groups: int) -> np.ndarray:
    firsts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.empty(0, np.int64)
    return firsts[:n_groups]
