"""Trades in trade notation: ``"t1 +1 @ 100"`` (one book, one asset unless given)."""

from __future__ import annotations

import datetime as dt

import polars as pl

T0 = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)


def trades(*lines: str, book: str = "b", asset: str = "BTC", same_ts: bool = False) -> pl.DataFrame:
    rows = []
    for i, line in enumerate(lines):
        parts = line.split()
        # "[book:asset] id qty @ price [ts=seconds]"
        b, a = book, asset
        if ":" in parts[0]:
            b, a = parts.pop(0).split(":")
        trade_id, qty, _, price = parts[:4]
        ts = T0 + dt.timedelta(seconds=0 if same_ts else i)
        for extra in parts[4:]:
            if extra.startswith("ts="):
                ts = T0 + dt.timedelta(seconds=int(extra[3:]))
        rows.append({"book": b, "asset": a, "ts": ts, "trade_id": trade_id, "qty": qty.lstrip("+"), "price": price})
    return pl.DataFrame(rows, schema={"book": pl.String, "asset": pl.String, "ts": pl.Datetime("us", "UTC"),
                                      "trade_id": pl.String, "qty": pl.String, "price": pl.String})
