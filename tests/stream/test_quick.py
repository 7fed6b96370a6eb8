"""A caught-up booker's small batches are booked in Python (:mod:`utl.stream.quick`), every other
batch through the frames. Two bookers fed the same batches, one allowed the quick way and one
not, leave the same database after every batch, row for row and digit for digit, publish the
same positions, and end with the same books: whatever the batches hold (re-sends, refused
messages, late fills that replay a key, a new day, fees in the base asset valued at the mark,
pairs quoted in another currency, book-mates, starting lots from a snapshot, 18 places)."""

from __future__ import annotations

import datetime as dt
import json
import random
from decimal import Context, Decimal
from pathlib import Path

import polars as pl
import pytest

from tests.stream.helpers import write_landing
from tests.stream.test_commit_paths import TABLES, tables
from utl.schemas import LOTS_STATE
from utl.settings import Settings, load_settings
from utl.store import connect, migrate
from utl.stream.booker import Booker, BookerOptions
from utl.stream.books import DAY_PNL, HOLDINGS, LAST, OPENINGS, TRADES
from utl.stream.message import Message
from utl.stream.quick import QuickBatch, at18, position_messages
from utl.stream.store import LIVE_ROWS

ACCOUNTS = [("binance", "mm1"), ("okx", "desk"), ("bybit", "api"), ("okx", "o'brien"), ("kraken", "café")]
START = dt.datetime(2024, 3, 5, 9, tzinfo=dt.timezone.utc)


def batches(seed: int, marked: bool, count: int = 40, wide: bool = False) -> list[list[Message]]:
    """Mostly what a live stream brings (a few fills in time order), now and then something else;
    ``marked``: fees in the base asset and pairs quoted in BTC (valued at the landing's marks);
    ``wide``: SOL at 18 places and billions of dollars, so that holdings, costs and PnL in
    dollars pass 28 digits (Python's default decimal context would round them)."""
    rng = random.Random(seed)
    out, seq, sent, clock = [], 1, [], START
    for n in range(count):
        part = []
        for _ in range(rng.randint(1, 8)):
            clock += dt.timedelta(milliseconds=rng.choice([0, 1, 250, 4000]))
            at = clock
            roll = rng.random()
            if sent and roll < 0.04:  # a re-send: books nothing
                subject, body = rng.choice(sent)
                part.append(Message(subject, seq, body))
                seq += 1
                continue
            if roll < 0.07:  # refused
                part.append(Message("utl.fills.okx.desk", seq, b'{"id": "x", "symbol": "BTC/USD"}'))
                seq += 1
                continue
            if roll < 0.10:  # a late fill: its key is replayed
                at = clock - dt.timedelta(minutes=rng.randint(1, 30))
            if n == count // 2 and roll < 0.5:  # the next day begins
                clock = at = START + dt.timedelta(days=1)
            symbol = rng.choice(["BTC/USD"] * 6 + ["ETH/USD"] * 3 + ["SOL/USD"] * (5 if wide else 1) + (["ETH/BTC"] if marked else []))
            base, quote = symbol.split("/")
            price = f"{rng.randint(1, 9000)}.{rng.randint(0, 99):02d}"
            amount = f"{rng.randint(1, 40)}.{rng.randint(0, 9999):04d}"
            if symbol == "SOL/USD" and (wide or rng.random() < 0.3):  # 18 places (a whole price: the cost exact at 18 too)
                amount, price = f"0.{rng.randint(1, 10**18 - 1):018d}", str(rng.randint(1, 9000))
                if wide:
                    price = str(rng.randint(10**9, 4 * 10**9))
            trade = {"id": f"t{seq}", "timestamp": str(int(at.timestamp() * 1000)), "symbol": symbol,
                     "side": rng.choice(["buy", "sell"]), "amount": amount, "price": price}
            fee = rng.random()
            if fee < 0.4:
                trade["fee"] = {"cost": "0.01", "currency": quote}
            elif fee < 0.55 and marked:
                trade["fee"] = {"cost": "0.0001", "currency": base}  # valued at the mark
            elif fee < 0.6:
                trade["fee"] = None
            venue, account = rng.choice(ACCOUNTS)
            subject, body = f"utl.fills.{venue}.{account}", json.dumps(trade).encode()
            sent.append((subject, body))
            part.append(Message(subject, seq, body))
            seq += 1
        out.append(part)
    return out


def landing(folder: Path) -> Path:
    write_landing(folder, [])
    (folder / "marks" / "2024-03-05.csv").write_text("asset,price\nBTC,65000\nETH,3500\nSOL,150.5\nUSDT,0.9998\n")
    return folder


def run(url: str, settings: Settings, where: Path | None, method: str, quick: bool, parts: list[list[Message]]):
    written, published, kinds = [], [], []
    conn = connect(url)
    try:
        migrate(conn)
        booker = Booker(conn, settings, where, BookerOptions(nats_url="-", quick=quick))
        for part in parts:
            prepared = booker.prepare(part, part[-1].seq)
            kinds.append(len(prepared.starts) + 1 if isinstance(prepared, QuickBatch) else 0)
            published.append(sorted(booker.commit(prepared)))
            written.append(tables(conn))
        return written, published, kinds, booker.quick.whole(booker.books)
    finally:
        conn.close()


def same_rows(a: pl.DataFrame, b: pl.DataFrame, schema: pl.Schema) -> bool:
    a, b = a.select(schema.names()).cast(schema), b.select(schema.names()).cast(schema)
    return sorted(a.rows(), key=repr) == sorted(b.rows(), key=repr)


@pytest.mark.parametrize("method,seed,with_landing,mates,wide", [
    ("fifo", 1, False, False, False), ("lifo", 2, False, False, False), ("hifo", 3, False, False, False),
    ("fifo", 4, True, False, False), ("hifo", 5, True, True, False), ("wac", 6, True, False, False),
    ("fifo", 7, False, False, True), ("lifo", 12, True, False, True),
])
def test_quick_and_frame_batches_leave_the_same_database(new_database, tmp_path, method, seed, with_landing, mates, wide):
    where = landing(tmp_path / "landing") if with_landing else None
    settings = load_settings(where) if where else Settings()
    books = {"pair": ("okx/desk", "okx/o'brien")} if mates else {}
    settings = Settings(**{**settings.__dict__, "costing_method": method, "books": books})
    parts = batches(seed, with_landing, wide=wide)
    fast = run(new_database(), settings, where, method, True, parts)
    slow = run(new_database(), settings, where, method, False, parts)
    for n, (a, b) in enumerate(zip(fast[0], slow[0])):
        for table in TABLES:
            assert a[table] == b[table], f"batch {n + 1} ({'quick' if fast[2][n] else 'frames'}): utl.{table}"
        assert fast[1][n] == slow[1][n], f"batch {n + 1}: the positions published"
    one, other = fast[3], slow[3]
    for name, schema in [("trades", TRADES), ("openings", OPENINGS), ("lots", LOTS_STATE), ("day_pnl", DAY_PNL),
                         ("holdings", HOLDINGS), ("last", LAST)]:
        assert same_rows(getattr(one, name), getattr(other, name), schema), f"books.{name}"
    assert not any(slow[2])
    # The batches did what the test is about: both ways taken, turn and turn about, lots closed.
    quick = sum(map(bool, fast[2]))
    if method == "wac":
        assert quick == 0  # every WAC trade replays its key from the day's opening
    else:
        assert 8 <= quick <= len(parts) - 5, fast[2]
        assert any(not a and b for a, b in zip(fast[2], fast[2][1:]))  # frames, then quick again
        assert mates or any(kind > 1 for kind in fast[2])  # a quick batch started an account from zero
    last = fast[0][-1]
    assert last["stream_quarantine"] and last["stream_lots"]
    assert any(row[4] != 0 for row in last["stream_day_pnl"])  # (date, venue, account, asset, pnl, landing)
    if wide:  # quick batches wrote dollars past 28 digits: costs, PnL
        def wide_values(written, table, columns):
            return [v for row in written[table] for v in row[columns] if v is not None and len(v.normalize(Context(prec=100)).as_tuple().digits) > 28]
        quick_written = [written for written, kind in zip(fast[0], fast[2]) if kind]
        assert any(wide_values(w, "live_positions", slice(3, 7))  # (venue, account, asset, qty, cost, average, realized, ...)
                   + wide_values(w, "stream_day_pnl", slice(4, 5)) for w in quick_written)


def test_position_messages_are_the_frames_messages():
    from utl.stream.booker import position_messages as by_frames

    ts = dt.datetime(2024, 3, 5, 10, 0, 1, 250000, tzinfo=dt.timezone.utc)
    rows = [("okx", "o'brien", "BTC", Decimal("1.5"), Decimal("-97500.123456789012345678"), Decimal("65000.1"),
             Decimal("-0E-18"), ts, 7),
            ("kraken", "café", "USD", Decimal("0"), Decimal("0"), None, Decimal("12.000000000000000001"),
             ts.replace(microsecond=0), None)]
    frame = pl.DataFrame(rows, schema=LIVE_ROWS, orient="row")
    assert position_messages(rows, "/data/landing") == by_frames(frame, "/data/landing")


def test_at18_rounds_products_and_quotients_as_polars_decimals_do():
    rng = random.Random(7)
    def value() -> Decimal:
        return Decimal(f"{rng.choice(['', '-'])}{rng.randint(0, 999)}.{rng.randint(1, 10**18 - 1):018d}")
    a = [value() for _ in range(2000)] + [Decimal("0.000000000000000001"), Decimal("0.000000000000000003")]
    b = [value() for _ in range(2000)] + [Decimal("0.5"), Decimal("0.5")]  # exact ties: half-even
    frame = pl.DataFrame({"a": a, "b": b}, schema={"a": pl.Decimal(38, 18), "b": pl.Decimal(38, 18)})
    out = frame.select(p=pl.col("a") * pl.col("b"), q=pl.col("a") / pl.col("b"))
    assert [at18(x * y) for x, y in zip(a, b)] == out["p"].to_list()
    assert [at18(Context(prec=120).divide(x, y)) for x, y in zip(a, b)] == out["q"].to_list()


def _fill(seq: int, side: str) -> Message:
    trade = {"id": str(seq), "timestamp": str(1709629200000 + seq), "symbol": "BTC/USD", "side": side,
             "amount": "1", "price": "100"}
    return Message("utl.fills.okx.desk", seq, json.dumps(trade).encode())


@pytest.mark.parametrize("behind_its_back", ["a fill of the batch is there already", "the lot it closes is gone"])
def test_a_database_not_as_the_quick_books_hold_it_commits_nothing(new_database, behind_its_back):
    conn = connect(new_database())
    try:
        migrate(conn)
        booker = Booker(conn, Settings(), None, BookerOptions(nats_url="-"))
        first = booker.prepare([_fill(1, "buy")], 1)
        assert isinstance(first, QuickBatch)
        booker.commit(first)
        if behind_its_back.startswith("a fill"):
            conn.execute("INSERT INTO utl.stream_fills (landing, venue, account, symbol, trade_id, stream_seq, ts, counted) "
                         "VALUES ('', 'okx', 'desk', 'BTC/USD', '2', 99, now(), true)")
            match = "fill of the batch is there already"
        else:
            conn.execute("DELETE FROM utl.stream_lots")
            match = "lots the batch closed are there"
        conn.commit()
        before = tables(conn)
        second = booker.prepare([_fill(2, "sell")], 2)  # closes the first fill's lot
        assert isinstance(second, QuickBatch) and second.lots_gone
        with pytest.raises(RuntimeError, match=match):
            booker.commit(second)
        assert tables(conn) == before  # nothing of the batch committed
    finally:
        conn.close()


def test_one_fills_ledger_key_is_the_frames_ledger_key():
    from utl.stream.store import ledger_key, ledger_keys

    rows = [("okx", "o'brien", "BTC/USD", "t1"), ("kraken", "café", "ETH/USD:USD", "a:b"), ("v", "a1", "X/Y", "")]
    frame = pl.DataFrame(rows, schema=["venue", "account", "symbol", "trade_id"], orient="row")
    assert [ledger_key(*row) for row in rows] == ledger_keys(frame).to_list()


def test_a_quick_batch_upserts_only_the_day_pnl_it_changes(new_database):
    def fill(seq: int, side: str, price: str) -> Message:
        trade = {"id": str(seq), "timestamp": str(1709629200000 + seq), "symbol": "BTC/USD", "side": side,
                 "amount": "1", "price": price}
        return Message("utl.fills.okx.desk", seq, json.dumps(trade).encode())

    def day_pnl(conn) -> list[tuple]:
        return conn.execute("SELECT business_date, venue, account, asset, realized_pnl FROM utl.stream_day_pnl").fetchall()

    conn = connect(new_database())
    try:
        migrate(conn)
        booker = Booker(conn, Settings(), None, BookerOptions(nats_url="-"))
        written = []
        for seq, side, price in [(1, "buy", "100"), (2, "buy", "120"), (3, "sell", "150"), (4, "buy", "90")]:
            batch = booker.prepare([fill(seq, side, price)], seq)
            assert isinstance(batch, QuickBatch)
            booker.commit(batch)
            written.append((batch.day_pnl, day_pnl(conn)))
        day = dt.date(2024, 3, 5)
        # The first buy makes the day's row (at zero); the next buy realizes nothing and sends no
        # row; the sell (FIFO: the lot at 100) realizes 50; the last buy nothing again.
        assert [rows for rows, _ in written] == [[(day, "okx", "desk", "BTC", Decimal(0))], [],
                                                 [(day, "okx", "desk", "BTC", Decimal(50))], []]
        assert [held for _, held in written] == [[(day, "okx", "desk", "BTC", Decimal(0))]] * 2 + [
            [(day, "okx", "desk", "BTC", Decimal(50))]] * 2
        live = conn.execute("SELECT qty, realized_pnl FROM utl.live_positions WHERE asset = 'BTC'").fetchone()
        assert live == (Decimal(2), Decimal(50))
    finally:
        conn.close()
