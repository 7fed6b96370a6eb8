"""Transfers of amounts past 28 significant digits move lots exactly (utl.transfers).

A Decimal(38, 18) amount such as 12345678901.123456789012345678 has 29 digits. Python's
decimal arithmetic in the thread's default context keeps 28, so a sum, difference or
negation of it rounds: a withdrawal's pieces would fall 4E-18 short of its amount (a phantom
short lot at the mark), a deposit would exceed its pieces (a phantom lot and flow), and the
legs' flows at cost would lose their last digit. Each case runs ``move_lots`` under the
default 28-digit context (tests/costing/conftest.py widens the main thread's context, which
would hide the rounding) and states every expected number as text, never computed here.
"""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal as D

import polars as pl
import pytest

from utl.schemas import TRANSIT_LOTS
from utl.transfers import TRADES, Arrival, Moved, Withdrawal, move_lots

UTC = dt.timezone.utc
DAY = dt.date(2024, 3, 5)
MARK = "12345678901"  # BTC's mark on DAY: a fee of 1.000000000000000001 BTC is worth 29 digits


def at(hour: int, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=UTC)


def narrow(carried: pl.DataFrame, withdrawals: list[Withdrawal], arrivals: list[Arrival],
           transit: pl.DataFrame) -> Moved:
    """``move_lots`` in Python's default 28-digit context, whatever the session's context is."""
    with decimal.localcontext(decimal.Context(prec=28)):
        assert decimal.getcontext().prec == 28
        return move_lots(carried, TRADES.to_frame(), withdrawals, arrivals, transit, {"BTC": D(MARK)}, "fifo")


def carried_lots(book: str, lots: list[tuple[str, str, str]]) -> pl.DataFrame:
    """(trade_id, qty, entry_price) held in ``book`` at the start of DAY, oldest first."""
    rows = [(book, "BTC", at(i, dt.date(2024, 1, 1)), t, D(q), D(p), True) for i, (t, q, p) in enumerate(lots)]
    return pl.DataFrame(rows, schema=TRADES, orient="row")


def in_transit(leg_id: str, lots: list[tuple[str, str, str]]) -> pl.DataFrame:
    """(trade_id, qty, entry_price) carried with withdrawal x/a/``leg_id``, in the order they left."""
    rows = [("x", "a", leg_id, t, at(i, dt.date(2024, 1, 1)), D(q), D(p)) for i, (t, q, p) in enumerate(lots)]
    return pl.DataFrame(rows, schema=TRANSIT_LOTS, orient="row")


def withdrawal(amount: str) -> Withdrawal:
    return Withdrawal("x", "a", "w1", "a", "BTC", at(10), "x/a/w1", D(amount))


def arrival(deposited: str) -> Arrival:
    return Arrival("x", "b", "d1", "b", "BTC", at(11), "x/b/d1", D(deposited), ("x", "a", "w1"), "a")


def lots_of(moved: Moved) -> list[tuple[str, str, D, D]]:
    return [(r["book"], r["trade_id"], r["qty"], r["entry_price"]) for r in moved.lots.iter_rows(named=True)]


def flows_of(moved: Moved) -> list[tuple[str, str, D]]:
    return [(r["book"], r["kind"], r["value"]) for r in moved.flows.iter_rows(named=True)]


# (lots held in a, oldest first; their total quantity = the amount withdrawn; their total cost).
# In 28 digits the first and third totals round down (a phantom 4E-18 short), the second up;
# every cost has 29 digits, so its negation rounds.
CASES = {
    "one lot, rounds down": ([("lot1", "12345678901.123456789012345674", "1")],
                             "12345678901.123456789012345674", "12345678901.123456789012345674"),
    "one lot, rounds up": ([("lot1", "12345678901.123456789012345678", "1")],
                           "12345678901.123456789012345678", "12345678901.123456789012345678"),
    "two lots": ([("lot1", "10000000000.000000000000000001", "2"), ("lot2", "2345678901.123456789012345673", "1")],
                 "12345678901.123456789012345674", "22345678901.123456789012345675"),
}


@pytest.mark.parametrize(("held", "amount", "cost"), CASES.values(), ids=CASES.keys())
def test_a_withdrawal_its_lots_exactly_cover_takes_them_all_into_transit_and_opens_no_short(held, amount, cost):
    moved = narrow(carried_lots("a", held), [withdrawal(amount)], [], TRANSIT_LOTS.to_frame())
    # Every lot left, to the last digit; no short lot at the mark stays behind in a.
    assert lots_of(moved) == []
    assert [(r["leg_id"], r["trade_id"], r["qty"], r["entry_price"]) for r in moved.transit.iter_rows(named=True)] == [
        ("w1", t, D(q), D(p)) for t, q, p in held]
    # The withdrawal is a flow at exactly minus the cost of what left.
    assert flows_of(moved) == [("a", "withdrawal", D("-" + cost))]
    assert moved.realized.height == 0


@pytest.mark.parametrize(("held", "amount", "cost"), CASES.values(), ids=CASES.keys())
def test_a_same_day_transfer_moves_the_lots_exactly_and_books_nothing_else(held, amount, cost):
    moved = narrow(carried_lots("a", held), [withdrawal(amount)], [arrival(amount)], TRANSIT_LOTS.to_frame())
    # b holds exactly a's lots; neither a phantom short in a nor a phantom excess lot in b.
    assert lots_of(moved) == [("b", t, D(q), D(p)) for t, q, p in held]
    # A transfer within the ledger: the legs' flows are exactly opposite, and nothing else.
    assert flows_of(moved) == [("a", "withdrawal", D("-" + cost)), ("b", "deposit", D(cost))]
    assert moved.realized.height == 0
    assert moved.transit.height == 0


@pytest.mark.parametrize(("held", "amount", "cost"), CASES.values(), ids=CASES.keys())
def test_a_deposit_its_pieces_exactly_cover_opens_no_excess_lot(held, amount, cost):
    moved = narrow(TRADES.to_frame(), [], [arrival(amount)], in_transit("w1", held))
    assert lots_of(moved) == [("b", t, D(q), D(p)) for t, q, p in held]
    assert flows_of(moved) == [("b", "deposit", D(cost))]
    assert moved.realized.height == 0
    assert moved.transit.height == 0


def test_what_did_not_arrive_is_a_fee_at_the_mark_booked_exactly():
    # lot1 arrives (12345678901.123456789012345678 BTC); lot2, 1.000000000000000001 BTC @ 1, did not.
    pieces = [("lot1", "12345678901.123456789012345678", "1"), ("lot2", "1.000000000000000001", "1")]
    moved = narrow(TRADES.to_frame(), [], [arrival("12345678901.123456789012345678")], in_transit("w1", pieces))
    assert lots_of(moved) == [("b", "lot1", D("12345678901.123456789012345678"), D("1"))]
    assert flows_of(moved) == [
        ("b", "deposit", D("12345678901.123456789012345678")),
        ("a", "transfer", D("1.000000000000000001")),
        # 1.000000000000000001 x 12,345,678,901: 29 digits, negated exactly.
        ("a", "fee", D("-12345678901.000000012345678901")),
    ]
    # Disposed of at the mark: 1.000000000000000001 x (12,345,678,901 - 1).
    assert [(r["book"], r["realized_pnl"]) for r in moved.realized.iter_rows(named=True)] == [
        ("a", D("12345678900.0000000123456789"))]
    assert moved.transit.height == 0
