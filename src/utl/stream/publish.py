"""``utl publish``: a landing folder's fills of one date onto ``UTL_FILLS``, in time order.

Each fill the end-of-day run would book from a fill export (accounts whose legs come from a
ledger export are left out: their ledger, not their fills, is their book) becomes one ccxt
unified trade on ``utl.fills.<venue>.<account>`` with ``Nats-Msg-Id`` =
``<venue>:<account>:<symbol>:<id>``. The id is the venue's own, as the export wrote it (the
booker qualifies it by pair again where the venue numbers trades per symbol), numbers travel
as JSON strings holding their exact text, and the time as ISO 8601 to the microsecond.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path

import nats
import polars as pl

from utl.ingest import ingest_landing
from utl.stream.broker import STREAM, SUBJECTS, ensure_stream, servers


def day_fills(landing: Path, day: dt.date) -> tuple[pl.DataFrame, list[str]]:
    """(spot fills of ``day`` from fill-sourced accounts in time order, accounts left out)."""
    ingested = ingest_landing(landing)
    ledger = sorted(f"{v}/{a}" for v, a in ingested.ledger_accounts)
    fills = ingested.fills.filter((pl.col("ts").dt.date() == day) & ~pl.col("derivative"))
    if ingested.ledger_accounts:
        keys = pl.DataFrame(sorted(ingested.ledger_accounts), schema={"venue": pl.String, "account": pl.String}, orient="row")
        fills = fills.join(keys, on=["venue", "account"], how="anti")
    return fills.sort("ts", "venue", "account", "trade_id"), ledger


def ccxt_trades(fills: pl.DataFrame) -> list[tuple[str, str, bytes]]:
    """(subject, Nats-Msg-Id, payload) per fill."""
    out = []
    for f in fills.iter_rows(named=True):
        symbol = f"{f['base']}/{f['quote']}"
        venue_id = f["trade_id"].removeprefix(f"{symbol}:")  # the pair qualification is the booker's to add
        trade = {
            "id": venue_id, "order": f["order_id"],
            "datetime": f["ts"].astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "symbol": symbol, "side": "buy" if f["qty"] > 0 else "sell",
            "amount": format(f["qty"].copy_abs(), "f"), "price": format(f["price"], "f"),
            "cost": format(f["quote_qty"], "f"),
            "fee": None if f["fee"] is None else {"cost": format(f["fee"], "f"), "currency": f["fee_asset"]},
            "takerOrMaker": f["liquidity"], "info": {"source_file": f["source_file"], "source_row": f["source_row"]},
        }
        out.append((f"utl.fills.{f['venue']}.{f['account']}", f"{f['venue']}:{f['account']}:{symbol}:{venue_id}",
                    json.dumps(trade).encode()))
    return out


async def publish(url: str, messages: list[tuple[str, str, bytes]], rate: float | None = None,
                  stream: str = STREAM, subjects: str = SUBJECTS, say: Callable[[str], None] = print) -> int:
    """Publish with JetStream acks (pipelined); ``rate`` messages per second, or as fast as it can."""
    nc = await nats.connect(servers(url))
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream, subjects, warn=lambda w: say(f"warning: {w}"))
        started = time.monotonic()
        pending = []
        for i, (subject, msg_id, payload) in enumerate(messages):
            if rate:
                ahead = started + i / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            pending.append(asyncio.ensure_future(js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})))
            if len(pending) >= 1000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
        return len(messages)
    finally:
        await nc.close()
