"""Live books: the result does not depend on arrival order or batch boundaries, and equals one
end-of-day pass of the costing engine over the same opening lots and trades."""

import datetime as dt
import random
from decimal import Decimal

import polars as pl
import pytest

from utl.costing import compute_costs
from utl.decimals import DECIMAL
from utl.stream.books import TRADES, Books, book_trades

DAY = dt.date(2024, 3, 5)
T0 = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)


def trades_frame(rows) -> pl.DataFrame:
    """rows: (book, asset, second of the day, trade_id, qty, price)."""
    return pl.DataFrame(
        [{"book": b, "asset": a, "venue": b.split("/")[0], "account": b.split("/")[1], "business_date": DAY,
          "ts": T0 + dt.timedelta(seconds=s), "stream_seq": i + 1, "trade_id": t, "qty": Decimal(q), "price": Decimal(p)}
         for i, (b, a, s, t, q, p) in enumerate(rows)],
        schema=TRADES,
    )


def book_in_batches(method: str, frame: pl.DataFrame, sizes: list[int]) -> Books:
    books = Books(method)
    at = 0
    for size in sizes:
        book_trades(books, frame.slice(at, size))
        at += size
    book_trades(books, frame.slice(at))
    return books


def test_the_worked_example_arriving_backwards_books_as_in_order():
    # costing.md: t1 +1 @ 100, t2 +2 @ 110, t3 -1.5 @ 120 under FIFO realizes 1×20 + 0.5×10 = 25, leaves t2 1.5 @ 110.
    rows = [("v/a", "BTC", 3, "t3", "-1.5", "120"), ("v/a", "BTC", 2, "t2", "2", "110"), ("v/a", "BTC", 1, "t1", "1", "100")]
    books = book_in_batches("fifo", trades_frame(rows), [1, 1])
    assert books.day_pnl["realized_pnl"].to_list() == [Decimal(25)]
    lots = books.lots.select("trade_id", "qty", "entry_price").rows()
    assert lots == [("t2", Decimal("1.5"), Decimal(110))]
    # The key was replayed from the day's opening (empty): recorded once, as a marker holding no lot.
    assert books.openings.select("business_date", "qty").rows() == [(DAY, Decimal(0))]


def random_day(seed: int, n: int = 300) -> list:
    rng = random.Random(seed)
    rows, held = [], {}
    for i in range(n):
        key = (rng.choice(["x/a", "x/b"]), rng.choice(["BTC", "ETH", "SOL"]))
        q = Decimal(rng.randint(1, 500)) / 100
        side = 1 if held.get(key, 0) <= 0 or rng.random() < 0.5 else -1
        held[key] = held.get(key, 0) + side * q
        rows.append((key[0], key[1], i, f"f{i}", str(side * q), str(Decimal(rng.randint(9000, 11000)) / 100)))
    return rows


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
def test_shuffled_fills_give_the_same_lots_and_realized_pnl_as_one_pass(method):
    rows = random_day(7)
    in_order = trades_frame(rows)
    shuffled_rows = rows[:]
    random.Random(11).shuffle(shuffled_rows)
    shuffled = trades_frame(shuffled_rows)

    one_pass = compute_costs(in_order.select("book", "asset", "ts", "trade_id", "qty", "price", "venue", "account"), method)
    expected_pnl = (one_pass.realized.group_by("venue", "account", "asset").agg(pl.col("realized_pnl").sum())
                    .sort("venue", "account", "asset"))
    expected_lots = one_pass.open_lots.select("book", "asset", "qty", "entry_price").sort("book", "asset", "qty", "entry_price")

    for frame, sizes in [(in_order, [1, 7, 50, 100]), (shuffled, [3, 40, 1, 90]), (shuffled, [299])]:
        books = book_in_batches(method, frame, sizes)
        got_pnl = (books.day_pnl.group_by("venue", "account", "asset").agg(pl.col("realized_pnl").sum())
                   .sort("venue", "account", "asset"))
        assert got_pnl.rows() == expected_pnl.select(got_pnl.columns).rows()
        got_lots = books.lots.select("book", "asset", "qty", "entry_price").sort("book", "asset", "qty", "entry_price")
        assert got_lots.rows() == expected_lots.rows()
        if method != "wac":
            assert sorted(books.lots["trade_id"].to_list()) == sorted(one_pass.open_lots["trade_id"].to_list())


def test_a_flat_book_holds_exactly_zero_and_realizes_minus_the_sum_of_qty_times_price():
    rows = [("v/a", "ETH", 1, "b1", "0.1", "3000.01"), ("v/a", "ETH", 2, "b2", "0.2", "2999.99"),
            ("v/a", "ETH", 3, "s1", "-0.3", "3100")]
    books = book_in_batches("fifo", trades_frame(rows[::-1]), [1, 1])
    assert books.lots.height == 0
    expected = -sum(Decimal(q) * Decimal(p) for *_, q, p in rows)
    assert books.day_pnl["realized_pnl"].sum() == expected
    assert books.day_pnl.schema["realized_pnl"] == DECIMAL


def test_a_late_fill_of_yesterday_replays_from_yesterdays_opening_through_today():
    day2 = DAY + dt.timedelta(days=1)
    rows = [("v/a", "BTC", 10, "a1", "2", "100"), ("v/a", "BTC", 20, "a2", "-1", "130"),   # day 1
            ("v/a", "BTC", 86_400 + 10, "b1", "-0.5", "150"), ("v/a", "BTC", 86_400 + 20, "b2", "1", "90")]  # day 2
    frame = trades_frame(rows).with_columns(business_date=pl.col("ts").dt.date())
    # Arrival: day 2's fills, then day 1's second fill, then (late again) day 1's first.
    arrived = pl.concat([frame[2:4], frame[1:2], frame[0:1]])
    books = book_in_batches("fifo", arrived, [2, 1])
    # By hand, FIFO: a1 opens 2 @ 100; a2 closes 1 of it: +30. b1 closes 0.5 of a1: +25;
    # b2 opens 1 @ 90. Day 1 realizes 30, day 2 25; left: a1 0.5 @ 100, b2 1 @ 90.
    by_day = dict(books.day_pnl.select("business_date", "realized_pnl").rows())
    assert by_day == {DAY: Decimal(30), day2: Decimal(25)}
    assert sorted(books.lots.select("trade_id", "qty", "entry_price").rows()) == [
        ("a1", Decimal("0.5"), Decimal(100)), ("b2", Decimal(1), Decimal(90))]
    # Day 2 opened with what day 1 left: a1 1 @ 100.
    day2_open = books.openings.filter((pl.col("business_date") == day2) & (pl.col("qty") != 0))
    assert day2_open.select("trade_id", "qty").rows() == [("a1", Decimal(1))]


def test_a_grouped_book_shares_its_cost_basis_over_its_accounts_as_the_eod_run_does():
    from utl.stream.books import add_holdings, position_rows

    # [books] desk = ["v/a", "v/b"]: one FIFO book of two accounts.
    book_of = lambda venue, account: "desk"  # noqa: E731
    rows = [("v/a", "BTC", 1, "a1", "1", "100"), ("v/b", "BTC", 2, "b1", "3", "200")]
    trades = trades_frame(rows).with_columns(book=pl.lit("desk"))
    books = Books("fifo")
    book_trades(books, trades)
    legs = trades.select("venue", "account", asset="asset", qty="qty", ts="ts", stream_seq="stream_seq")
    books.holdings, _ = add_holdings(books.holdings, legs)
    live = {r["account"]: r for r in position_rows(books, books.holdings, book_of, "USD").iter_rows(named=True)}
    # Book lots 1 @ 100 + 3 @ 200 = 700 over 4 BTC: a holds 1/4 of it, 175; b (the largest) the rest, 525.
    assert (live["a"]["cost_basis"], live["b"]["cost_basis"]) == (Decimal(175), Decimal(525))
    assert live["b"]["avg_cost"] == Decimal(175)

    # a sells its 1 BTC at 150: book FIFO closes the 1 @ 100 lot (a realizes 50), the book keeps 3 @ 200.
    sell = trades_frame([("v/a", "BTC", 3, "a2", "-1", "150")]).with_columns(book=pl.lit("desk"), stream_seq=pl.lit(3, pl.Int64))
    book_trades(books, sell)
    moved = sell.select("venue", "account", "asset", "qty", "ts", "stream_seq")
    books.holdings, changed = add_holdings(books.holdings, moved)
    # Asked only for a's row, b's comes too: its share moved although it did not trade.
    live = {r["account"]: r for r in position_rows(books, changed, book_of, "USD").iter_rows(named=True)}
    assert set(live) == {"a", "b"}
    assert (live["a"]["qty"], live["a"]["cost_basis"], live["a"]["avg_cost"]) == (Decimal(0), Decimal(0), None)
    assert (live["b"]["qty"], live["b"]["cost_basis"]) == (Decimal(3), Decimal(600))
    assert live["a"]["realized_pnl"] == Decimal(50) and live["b"]["realized_pnl"] == Decimal(0)


@pytest.mark.parametrize("method", ["fifo", "wac"])
def test_the_growing_parts_of_the_books_stay_in_few_pieces_and_lose_nothing(method):
    """Each part of the books grows by a piece or two a batch once it is past the size at which
    it is filtered in place (``utl.frames.SMALL``); a live day's thousands of small batches once
    left the parts in thousands of pieces, each step over them paying for every one."""
    from utl.frames import SMALL
    from utl.stream.books import MOST_CHUNKS

    wide = [(f"w/{k}", "BTC", 0, f"w{k}", "1", "100") for k in range(SMALL + 500)]  # one trade each of many keys
    rows = random_day(5, n=60)
    frame = trades_frame(wide + [(b, a, s + 1, t, q, p) for b, a, s, t, q, p in rows])
    one_at_a_time = book_in_batches(method, frame, [len(wide)] + [1] * (len(rows) - 1))
    for part in ("trades", "openings", "lots", "day_pnl", "last"):
        assert max(getattr(one_at_a_time, part).n_chunks("all")) <= MOST_CHUNKS, part
    assert sorted(one_at_a_time.trades["trade_id"].to_list()) == sorted(frame["trade_id"].to_list())
    in_one = book_in_batches(method, frame, [])
    for part in ("lots", "day_pnl"):
        got, want = getattr(one_at_a_time, part), getattr(in_one, part)
        assert got.sort(got.columns).rows() == want.sort(want.columns).rows()


def test_compacting_merges_only_the_newest_pieces_and_keeps_every_row_in_order():
    from utl.stream.books import MOST_CHUNKS, compacted

    frame = pl.DataFrame(schema={"n": pl.Int64, "text": pl.String})
    parts, copied_whole = [], 0
    for i in range(3000):
        part = pl.DataFrame({"n": list(range(i % 7 + 1)), "text": [str(i)] * (i % 7 + 1)})
        parts.append(part)
        before = frame.to_series(0).chunk_lengths()
        frame = compacted(pl.concat([frame, part], rechunk=False))
        lengths = frame.to_series(0).chunk_lengths()
        assert len(lengths) <= MOST_CHUNKS and all(lengths)
        copied_whole += len(lengths) == 1 and len(before) > 1
    assert frame.equals(pl.concat(parts))
    # The oldest rows stay where they are: the frame was made whole only a few times in 3,000 batches.
    assert frame.to_series(0).chunk_lengths()[0] > frame.height // 2
    assert copied_whole <= 12


def test_holdings_added_batch_after_batch_stay_in_few_pieces_and_sum_exactly():
    from utl.stream.books import HOLDINGS, MOST_CHUNKS, add_holdings

    from utl.frames import SMALL

    many = SMALL + 500  # past the size at which the holdings are filtered in place
    holdings = pl.DataFrame({"venue": ["w"] * many, "account": [f"a{k}" for k in range(many)], "asset": ["BTC"] * many,
                             "qty": [Decimal(1)] * many, "last_trade_ts": [T0] * many, "stream_seq": [0] * many},
                            schema=HOLDINGS)
    expected: dict[tuple[str, str, str], Decimal] = {("w", f"a{k}", "BTC"): Decimal(1) for k in range(many)}
    rng = random.Random(3)
    for n in range(200):
        rows = []
        for _ in range(3):
            key = ("v", rng.choice(["a", "b"]), rng.choice(["BTC", "ETH", "SOL", "USD"]))
            qty = Decimal(rng.randint(-500, 500)) / 100
            expected[key] = expected.get(key, Decimal(0)) + qty
            rows.append({"venue": key[0], "account": key[1], "asset": key[2], "qty": qty,
                         "ts": T0 + dt.timedelta(seconds=n), "stream_seq": n + 1})
        legs = pl.DataFrame(rows, schema={"venue": pl.String, "account": pl.String, "asset": pl.String,
                                          "qty": DECIMAL, "ts": HOLDINGS["last_trade_ts"], "stream_seq": pl.Int64})
        holdings, _ = add_holdings(holdings, legs)
        assert max(holdings.n_chunks("all")) <= MOST_CHUNKS
    got = {(v, a, s): q for v, a, s, q in holdings.select("venue", "account", "asset", "qty").iter_rows()}
    assert got == expected
