"""``utl.live_positions`` after every batch equals every holding's position worked out afresh,
where ``[books]`` groups accounts (a fill of one account moves its book-mates' share of the
book's cost, so their rows are rewritten too) and where a book is one account (then the booker
does not look for book-mates)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from utl.settings import Settings
from utl.store import connect, migrate
from utl.stream.booker import Booker, BookerOptions
from utl.stream.books import position_rows
from utl.stream.message import Message
from utl.stream.store import LIVE_ROWS

# (account, second, side, amount, price): okx/a and okx/b are one book; okx/c is its own.
BATCHES = [
    [("a", 1, "buy", "1", "100"), ("b", 2, "buy", "1", "200"), ("c", 3, "buy", "2", "50")],
    [("a", 4, "sell", "0.5", "150")],  # FIFO sells the book's first lot: b's share moves
    [("c", 5, "sell", "1", "60")],  # a book of one account
    [("b", 6, "buy", "3", "90"), ("a", 7, "sell", "0.25", "120")],
]


def messages(batch: list[tuple], first: int) -> list[Message]:
    out = []
    for n, (account, second, side, amount, price) in enumerate(batch):
        trade = {"id": str(first + n), "datetime": f"2024-03-05T10:00:{second:02d}.000Z", "symbol": "BTC/USD",
                 "side": side, "amount": amount, "price": price}
        out.append(Message(f"utl.fills.okx.{account}", first + n, json.dumps(trade).encode()))
    return out


def live_rows(conn) -> pl.DataFrame:
    cursor = conn.execute("SELECT venue, account, asset, qty, cost_basis, avg_cost, realized_pnl, last_trade_ts, "
                          "stream_seq FROM utl.live_positions")
    return pl.DataFrame(cursor.fetchall(), schema=LIVE_ROWS, orient="row").sort("venue", "account", "asset")


@pytest.mark.parametrize("method", ["fifo", "wac"])
def test_live_positions_equal_every_position_worked_out_afresh(pg_url, method):
    settings = Settings(costing_method=method, books={"desk": ("okx/a", "okx/b")})
    conn = connect(pg_url)
    try:
        migrate(conn)
        booker = Booker(conn, settings, None, BookerOptions(nats_url="-"))
        seq = 1
        shares = []
        for batch in BATCHES:
            part = messages(batch, seq)
            seq += len(part)
            booker.commit(booker.prepare(part, part[-1].seq))
            afresh = position_rows(booker.books, booker.books.holdings, settings.book_of, "USD").cast(LIVE_ROWS)
            assert live_rows(conn).equals(afresh.sort("venue", "account", "asset")), f"after {batch}"
            shares.append(afresh.filter(pl.col("account") == "b", pl.col("asset") == "BTC")["cost_basis"].item())
        if method == "fifo":  # (under WAC a sale leaves the average, so each share, as it was)
            assert shares[1] != shares[0]  # a's sale moved b's share: the test shows a mate's row rewritten
    finally:
        conn.close()
