"""Small frames for the derivative tests, written in trade notation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl

from utl.decimals import DECIMAL
from utl.derivatives.schemas import ENTRY_STATE, INSTRUMENT_LEGS

T0 = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.timezone.utc)


def legs(*trades: str, instrument: str = "BTC/USDT:USDT", type_: str = "swap", inverse: bool = False,
         size: str = "1", venue: str = "v", account: str = "a") -> pl.DataFrame:
    """``legs("+1 @ 100", "-0.5 @ 110")``: instrument legs a second apart, with their spec columns."""
    rows = []
    for i, trade in enumerate(trades):
        qty, price = (part.strip() for part in trade.split("@"))
        rows.append({
            "venue": venue, "account": account, "instrument": instrument, "ts": T0 + dt.timedelta(seconds=i),
            "leg_id": f"{instrument}#{i}", "qty": D(qty.replace("+", "")), "price": D(price),
            "type": type_, "inverse": inverse, "contract_size": D(size),
        })
    schema = {**INSTRUMENT_LEGS, "type": pl.String, "inverse": pl.Boolean, "contract_size": DECIMAL}
    return pl.DataFrame(rows, schema=schema)


def state(*rows: tuple[str, str, str, str, str | None]) -> pl.DataFrame:
    """ENTRY_STATE rows: (venue, account, instrument, qty, entry_price)."""
    return pl.DataFrame(
        [(v, a, i, D(q), None if e is None else D(e)) for v, a, i, q, e in rows], schema=ENTRY_STATE, orient="row")


def decimals(**columns: list) -> pl.DataFrame:
    """A frame whose columns named in ``NUMERIC`` hold exact decimals written as text."""
    return pl.DataFrame({
        name: pl.Series(name, [None if v is None else D(v) for v in values], dtype=DECIMAL) if name in NUMERIC
        else (values if values else pl.Series(name, [], dtype=pl.String))
        for name, values in columns.items()
    })


NUMERIC = {"qty", "price", "mark", "entry_price", "contract_size", "realized_pnl", "funding", "fees", "snapshot_delta",
           "reference_price", "strike", "total"}
