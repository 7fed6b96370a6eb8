"""A small batch is written as one statement text (its rows as SQL literals), a larger one by a
COPY per table: the two leave the database exactly alike, row for row and digit for digit,
whatever the batch holds (re-sends, refused messages, late fills that replay a key, closed
lots, text with quotes, backslashes and non-ASCII, amounts at 18 places)."""

from __future__ import annotations

import json
import random

import psycopg
import pytest

import utl.stream.store as store
from utl.settings import Settings
from utl.store import connect, migrate
from utl.stream.booker import Booker, BookerOptions
from utl.stream.message import Message

TABLES = {
    "stream_fills": "venue, account, symbol, trade_id",
    "stream_legs": "stream_seq, kind",
    "stream_lots": "book, asset, trade_id, opened_ts, qty, entry_price",
    "stream_lot_openings": "book, asset, business_date, trade_id, opened_ts, qty, entry_price",
    "stream_day_pnl": "business_date, venue, account, asset",
    "live_positions": "venue, account, asset",
    "stream_quarantine": "stream_seq",
    "stream_start": "venue, account",
    "stream_offset": "consumer",
}
ACCOUNTS = ["desk", "o'brien", "back\\slash", "café"]


def batches(seed: int, count: int = 8) -> list[list[Message]]:
    rng = random.Random(seed)
    out, seq, sent = [], 1, []
    for _ in range(count):
        part = []
        for _ in range(rng.randint(1, 12)):
            if sent and rng.random() < 0.1:  # a re-send: books nothing
                subject, body = rng.choice(sent)
            elif rng.random() < 0.05 or (len(out) == 1 and not part):  # (one at least)
                subject, body = "utl.fills.okx.desk", b'{"id": "x", "symbol": "BTC/USD"}'  # refused
            else:
                day, second = rng.choice([5, 6, 7]), rng.randint(0, 59)  # days out of order: replays
                at = f"2024-03-{day:02d}T10:{second:02d}:00.{rng.randint(0, 999):03d}Z"
                trade = {"id": f"t{seq}'{rng.randint(0, 9)}", "datetime": at,
                         "symbol": rng.choice(["BTC/USD", "ETH/USD", "SOL/USD"]), "side": rng.choice(["buy", "sell"]),
                         "amount": f"{rng.randint(1, 300)}.{rng.randint(0, 10**18 - 1):018d}",
                         "price": f"{rng.randint(1, 9000)}.{rng.randint(0, 99):02d}"}
                subject, body = f"utl.fills.okx.{rng.choice(ACCOUNTS)}", json.dumps(trade).encode()
                sent.append((subject, body))
            part.append(Message(subject, seq, body))
            seq += 1
        out.append(part)
    return out


def tables(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    held = {}
    for table, order in TABLES.items():
        cursor = conn.execute(f"SELECT * FROM utl.{table} ORDER BY {order}")
        names = [d.name for d in cursor.description]
        written_at = ("updated_at", "received_at")  # the time of writing
        held[table] = [tuple(v for n, v in zip(names, row) if n not in written_at) for row in cursor.fetchall()]
    return held


def book(url: str, method: str, seed: int, as_text: bool, monkeypatch) -> list[dict[str, list[tuple]]]:
    monkeypatch.setattr(store, "SMALL_BATCH_ROWS", 10**9 if as_text else -1)
    written, sent = [], []
    monkeypatch.setattr(store, "_commit_as_text", _counting(store._commit_as_text, sent))
    conn = connect(url)
    try:
        migrate(conn)
        booker = Booker(conn, Settings(costing_method=method), None, BookerOptions(nats_url="-"))
        for part in batches(seed):
            booker.commit(booker.prepare(part, part[-1].seq))
            written.append(tables(conn))
    finally:
        conn.close()
    assert all(sent) and (len(sent) > 0) == as_text  # the path asked for is the path taken
    return written


def _counting(inner, sent: list):
    def counted(*args, **kwargs):
        sent.append(inner(*args, **kwargs))
        return sent[-1]
    return counted


@pytest.mark.parametrize("method,seed", [("fifo", 1), ("lifo", 2), ("hifo", 3), ("wac", 4)])
def test_one_statement_text_and_copy_leave_the_same_database(new_database, method, seed, monkeypatch):
    as_text = book(new_database(), method, seed, True, monkeypatch)
    by_copy = book(new_database(), method, seed, False, monkeypatch)
    for n, (text_state, copy_state) in enumerate(zip(as_text, by_copy)):
        for table in TABLES:
            assert text_state[table] == copy_state[table], f"batch {n + 1}: utl.{table}"
    last = as_text[-1]
    # The batches did what the test is about: quotes and backslashes reached the tables, a
    # message was refused, lots were closed and some are still open.
    accounts = {row[1] for row in last["stream_fills"]}  # (venue, account, ...)
    assert {"o'brien", "back\\slash"} & accounts
    assert last["stream_quarantine"] and last["stream_lots"]
    assert any(row[4] != 0 for row in last["stream_day_pnl"])  # realized PnL: lots were closed


def test_a_lot_the_database_lacks_stops_the_text_commit_too(new_database, monkeypatch):
    url = new_database()
    monkeypatch.setattr(store, "SMALL_BATCH_ROWS", 10**9)
    conn = connect(url)
    try:
        migrate(conn)
        booker = Booker(conn, Settings(), None, BookerOptions(nats_url="-", quick=False))
        def fill(seq: int, side: str) -> Message:
            trade = {"id": str(seq), "datetime": f"2024-03-05T10:00:0{seq}.000Z", "symbol": "BTC/USD", "side": side,
                     "amount": "1", "price": "100"}
            return Message("utl.fills.okx.desk", seq, json.dumps(trade).encode())

        booker.commit(booker.prepare([fill(1, "buy")], 1))
        conn.execute("DELETE FROM utl.stream_lots")  # not the state the booker holds
        conn.commit()
        before = tables(conn)
        prepared = booker.prepare([fill(2, "sell")], 2)
        assert prepared.rows["lots_gone"].height == 1  # the sale closes the lot the database lacks
        with pytest.raises(RuntimeError, match="lots the batch closed are there"):
            booker.commit(prepared)
        assert tables(conn) == before  # nothing of the batch committed
    finally:
        conn.close()
