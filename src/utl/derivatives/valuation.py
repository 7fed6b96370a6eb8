"""Valuation of open derivative positions: unrealized PnL, delta, expiry, funding's date.

Unrealized PnL at the mark, in the settle asset, on the ledger quantity (derivatives.md):

- linear (swap, future): ``qty · size · (mark − reference)``
- inverse (swap, future): ``qty · size · (1/reference − 1/mark)``
- options: ``qty · size · mark − premium paid``, the premium paid being ``qty · size · entry``
  (the average entry is the average premium): the linear rule on the premium.

``reference`` is the average entry, except where the venue settles session PnL into cash
(Deribit futures daily at 08:00 UTC, Bybit USDC contracts): there the settlement is a cash
leg, and PnL runs from the session's own average (:func:`session_entry`: the position at
the settlement price, re-averaged by the legs since), while ``entry_price`` stays the
average entry. Options settle no session PnL here: their premium is the cash.

Delta in base units: linear ``qty · size``, inverse ``qty · size / mark``, options the
snapshot's delta (null without one: unknown, never zero). ``delta_usd`` is delta at the
base asset's mark, ``unrealized_pnl_usd`` the PnL at the settle asset's mark, both in the
reporting currency; a missing mark leaves them null (unpriced).

Each PnL and inverse delta is one exact rational rounded half-even to 18 places (Polars
would round every product and quotient on the way); the reporting-currency products are
Polars ``Decimal`` products, rounded to 18 places once.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.decimals import DECIMAL
from utl.derivatives.entry import KEY, SCALE, from_scaled, to_scaled, average_entry, round_half_even
from utl.derivatives.schemas import DELIVERIES, ENTRY_STATE, EXPIRY_LEGS, POSITION_BREAKS, VALUED_DERIVATIVES
from utl.schemas import UTC_TS

DELIVERY_HOUR = 8  # Deribit, Binance, OKX and Bybit deliver dated contracts at 08:00 UTC


def business_date_of(ts: pl.Expr) -> pl.Expr:
    """The business date a stamp belongs to: its UTC calendar day. A funding stamped exactly
    ``00:00:00`` UTC belongs to the day that starts then, never to the one that ends."""
    return ts.dt.convert_time_zone("UTC").dt.date()


def session_settled(venue: pl.Expr, type_: pl.Expr, settle: pl.Expr) -> pl.Expr:
    """Whether a venue settles this instrument's session PnL into cash (then unrealized PnL
    runs from the last settlement): Deribit futures and perpetuals, Bybit USDC contracts."""
    contract = type_.is_in(["swap", "future"])
    return contract & ((venue.str.to_lowercase() == "deribit") | ((venue.str.to_lowercase() == "bybit") & (settle == "USDC")))


def session_entry(legs: pl.DataFrame, opening: pl.DataFrame, settlements: pl.DataFrame) -> pl.DataFrame:
    """The reference price of each settled position: from its last settlement (``venue``,
    ``account``, ``instrument``, ``ts``, ``price``), the position then at the settlement price,
    re-averaged by the legs after it. ``legs`` and ``opening`` as for
    :func:`utl.derivatives.entry.average_entry` (the day's legs and the carried state).
    Returns ENTRY_STATE rows (``entry_price`` = the reference) for settled positions only."""
    last = settlements.sort("ts").group_by(KEY, maintain_order=True).last().select(
        *KEY, settled_ts="ts", settled_price="price")
    before = legs.join(last, on=KEY, how="inner").filter(pl.col("ts") <= pl.col("settled_ts"))
    held = (
        opening.select(*KEY, "qty").join(last.select(KEY), on=KEY, how="right")
        .with_columns(pl.col("qty").fill_null(pl.lit(0, DECIMAL)))
        .join(before.lazy().group_by(KEY).agg(moved=pl.col("qty").sum()).collect(), on=KEY, how="left")
        .select(*KEY, qty=pl.col("qty") + pl.col("moved").fill_null(pl.lit(0, DECIMAL)))
    )
    start = held.join(last, on=KEY).select(
        *KEY, "qty", entry_price=pl.when(pl.col("qty") != 0).then(pl.col("settled_price")))
    after = legs.join(last, on=KEY, how="inner").filter(pl.col("ts") > pl.col("settled_ts")).drop("settled_ts", "settled_price")
    return average_entry(after, start.cast(ENTRY_STATE)).positions


def _pnl(qty: int, size: int, reference: int, mark: int, harmonic: bool) -> int:
    if harmonic:  # qty·size·(1/ref − 1/mark) = qty·size·(mark − ref) / (ref·mark)
        return round_half_even(qty * size * (mark - reference), reference * mark)
    return round_half_even(qty * size * (mark - reference), SCALE * SCALE)


def value_positions(positions: pl.DataFrame, asset_marks: pl.DataFrame) -> pl.DataFrame:
    """Unrealized PnL and delta of open positions.

    ``positions``: ``venue``, ``account``, ``instrument``, ``qty``, ``entry_price``, the spec
    columns ``type``, ``inverse``, ``contract_size``, ``base``, ``settle``, the instrument's
    ``mark`` (in its quote), and optional ``reference_price`` (from :func:`session_entry`)
    and ``snapshot_delta``. ``asset_marks``: (``asset``, ``mark``) in the reporting currency.
    Flat rows get null PnL and zero delta. Returns :data:`VALUED_DERIVATIVES`.
    """
    frame = positions
    for column in ("reference_price", "snapshot_delta"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, DECIMAL).alias(column))
    frame = frame.with_columns(
        reference_price=pl.when(pl.col("type") != "option").then(pl.coalesce("reference_price", "entry_price"))
        .otherwise(pl.col("entry_price")),
        __harmonic=pl.col("inverse").fill_null(False) & (pl.col("type") != "option"),
    )
    qty, size = to_scaled(frame["qty"]), to_scaled(frame["contract_size"])
    ref, mark = to_scaled(frame["reference_price"]), to_scaled(frame["mark"])
    harmonic = frame["__harmonic"].to_list()
    pnl, delta = [], []
    for q, s, r, m, h in zip(qty, size, ref, mark, harmonic):
        pnl.append(None if q == 0 or r is None or m is None else _pnl(q, s, r, m, h))
        if q == 0:
            delta.append(0)
        elif h:  # coins: qty·size USD at the mark
            delta.append(None if m is None else round_half_even(q * s, m))
        else:
            delta.append(round_half_even(q * s, SCALE))
    marks = asset_marks.select("asset", "mark")
    valued = (
        frame.with_columns(unrealized_pnl=from_scaled(pnl), __delta=from_scaled(delta))
        .with_columns(delta=pl.when(pl.col("type") == "option").then(
            pl.when(pl.col("qty") == 0).then(pl.lit(0, DECIMAL)).otherwise(pl.col("snapshot_delta")))
            .otherwise(pl.col("__delta")))
        .join(marks.rename({"asset": "base", "mark": "__base_mark"}), on="base", how="left", validate="m:1")
        .join(marks.rename({"asset": "settle", "mark": "__settle_mark"}), on="settle", how="left", validate="m:1")
    )
    return valued.select(
        *KEY, "qty", "entry_price", "reference_price", "mark", "unrealized_pnl", "delta",
        delta_usd=pl.col("delta") * pl.col("__base_mark"),
        unrealized_pnl_usd=pl.col("unrealized_pnl") * pl.col("__settle_mark"),
    ).cast(VALUED_DERIVATIVES)


class MissingExpiryPrice(ValueError):
    """An expired position with neither a delivery row nor a mark: the date stops."""


def expire_positions(day: dt.date, positions: pl.DataFrame, deliveries: pl.DataFrame, marks: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Close each position whose instrument has expired by ``day``.

    ``positions``: ENTRY_STATE columns plus the spec's ``expiry``. ``deliveries``:
    :data:`DELIVERIES` (the venue's delivery rows). ``marks``: (``instrument``, ``mark``), the
    expiry's mark. A delivery row closes the position at its price (kind ``delivery``);
    without one it closes at the mark, at 08:00 UTC of the expiry date (kind ``expiry``), with
    an ``expiry_without_delivery`` break (``subject`` = ``position``, ``venue_qty`` 0: the
    venue stated no delivery). Returns (:data:`EXPIRY_LEGS`, :data:`POSITION_BREAKS`).
    """
    expired = positions.filter((pl.col("qty") != 0) & pl.col("expiry").is_not_null() & (pl.col("expiry") <= day))
    delivered = deliveries.cast(DELIVERIES).sort("ts").group_by(KEY, maintain_order=True).last()
    joined = (
        expired.join(delivered.rename({"ts": "delivery_ts", "price": "delivery_price"}), on=KEY, how="left")
        .join(marks.select(pl.col("instrument"), pl.col("mark")), on="instrument", how="left", validate="m:1")
    )
    unpriced = joined.filter(pl.col("delivery_price").is_null() & pl.col("mark").is_null())
    if unpriced.height:
        v, a, i = unpriced.select(KEY).row(0)
        raise MissingExpiryPrice(
            f"{v}/{a} {i} expired by {day.isoformat()} with no delivery row and no mark to close it at: "
            f"add its mark to marks/{day.isoformat()}.csv")
    at_expiry = pl.col("expiry").cast(pl.Datetime("us")).dt.replace_time_zone("UTC") + pl.duration(hours=DELIVERY_HOUR)
    legs = joined.select(
        *KEY,
        ts=pl.coalesce("delivery_ts", at_expiry).cast(UTC_TS),
        leg_id=pl.format("{}:{}", pl.when(pl.col("delivery_price").is_not_null()).then(pl.lit("delivery")).otherwise(pl.lit("expiry")), pl.col("instrument")),
        qty=-pl.col("qty"),
        price=pl.coalesce("delivery_price", "mark"),
        kind=pl.when(pl.col("delivery_price").is_not_null()).then(pl.lit("delivery")).otherwise(pl.lit("expiry")),
    ).cast(EXPIRY_LEGS)
    breaks = joined.filter(pl.col("delivery_price").is_null()).select(
        business_date=pl.lit(day, pl.Date), venue="venue", account="account", asset="instrument",
        ledger_qty="qty", venue_qty=pl.lit(0, DECIMAL), diff=-pl.col("qty"), tolerance=pl.lit(0, DECIMAL),
        first_seen=pl.lit(day, pl.Date), kind=pl.lit("expiry_without_delivery"), mark="mark",
        # The mark is in the instrument's quote, not the reporting currency: no value claimed.
        diff_value=pl.lit(None, DECIMAL), subject=pl.lit("position"),
    ).cast(POSITION_BREAKS)
    return legs, breaks
