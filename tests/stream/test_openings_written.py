"""What a batch writes of the lots' openings: a key carried onward adds only the dates it had
none (its earlier openings stay as they are in the database), a replayed key's are rewritten
whole; either way the database holds exactly the openings and lots the booker holds."""

from __future__ import annotations

import json

import polars as pl
import pytest

from utl.settings import Settings
from utl.store import connect, migrate
from utl.stream.booker import Booker, BookerOptions
from utl.stream.books import OPENINGS
from utl.stream.message import Message
from utl.schemas import LOTS_STATE

# (account, asset, day, second, side, amount, price): days out of order, so later batches
# both carry keys onward to new dates and replay keys from an earlier one.
BATCHES = [
    [("a1", "BTC", 5, 1, "buy", "1", "100"), ("a1", "ETH", 5, 2, "buy", "2", "10"), ("a2", "BTC", 5, 3, "buy", "1", "101")],
    [("a1", "BTC", 5, 4, "sell", "0.5", "105"), ("a2", "BTC", 6, 1, "buy", "3", "99")],
    [("a1", "BTC", 7, 1, "sell", "0.25", "110"), ("a1", "ETH", 6, 5, "sell", "1", "12")],
    [("a1", "BTC", 6, 9, "buy", "4", "90"), ("a2", "BTC", 5, 9, "sell", "0.5", "100")],  # late: replays
    [("a1", "BTC", 8, 1, "sell", "1", "120"), ("a2", "ETH", 8, 1, "buy", "1", "11"), ("a1", "ETH", 8, 2, "buy", "1", "9")],
]


def messages(batch: list[tuple], first_seq: int) -> list[Message]:
    out = []
    for n, (account, asset, day, second, side, amount, price) in enumerate(batch):
        seq = first_seq + n
        trade = {"id": str(seq), "datetime": f"2024-03-{day:02d}T10:00:{second:02d}.000Z", "symbol": f"{asset}/USD",
                 "side": side, "amount": amount, "price": price}
        out.append(Message(f"utl.fills.okx.{account}", seq, json.dumps(trade).encode()))
    return out


def stored(conn, query: str, schema: pl.Schema) -> pl.DataFrame:
    cursor = conn.execute(query)
    frame = pl.DataFrame(cursor.fetchall(), schema=[d.name for d in cursor.description], orient="row")
    return frame.select(schema.names()).cast(schema).sort(pl.all())


@pytest.mark.parametrize("method", ["fifo", "hifo", "wac"])
def test_the_database_holds_the_openings_and_lots_the_booker_holds_after_every_batch(pg_url, method):
    conn = connect(pg_url)
    try:
        migrate(conn)
        booker = Booker(conn, Settings(costing_method=method), None, BookerOptions(nats_url="-"))
        seq = 1
        for batch in BATCHES:
            part = messages(batch, seq)
            seq += len(part)
            booker.commit(booker.prepare(part, part[-1].seq))
            openings = stored(conn, "SELECT * FROM utl.stream_lot_openings", OPENINGS)
            assert openings.equals(booker.books.openings.select(OPENINGS.names()).sort(pl.all()))
            assert not openings.is_duplicated().any()
            lots = stored(conn, "SELECT * FROM utl.stream_lots", LOTS_STATE)
            assert lots.equals(booker.books.lots.select(LOTS_STATE.names()).sort(pl.all()))
        # The run made openings on several dates, and replayed (else the test shows nothing).
        assert booker.books.openings["business_date"].n_unique() >= 3
    finally:
        conn.close()
