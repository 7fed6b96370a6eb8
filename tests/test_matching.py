"""The transfer matching rule (utl.matching) and how lots leave a book (utl.transfers).

Each case is written in movements: ``w("a", "1.0", "10:00")`` is a withdrawal of 1.0 BTC
from account x/a at 2024-03-05 10:00 UTC, ``d("b", "1.0", "11:30")`` a deposit into x/b.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest

from utl.decimals import DECIMAL
from utl.matching import match_transfers
from utl.schemas import LOTS_STATE, PENDING_TRANSFERS, TRANSFER_LEGS
from utl.settings import SettingsError, load_settings
from utl.transfers import split_transit, take_lots

UTC = dt.timezone.utc
DAY = dt.date(2024, 3, 5)


def at(text: str, day: dt.date = DAY) -> dt.datetime:
    hour, minute = map(int, text.split(":"))
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=UTC)


def w(account: str, amount: str, when: str, *, leg: str | None = None, fee: str = "0", asset: str = "BTC",
      tx: str | None = None, to: str | None = None, day: dt.date = DAY) -> dict:
    return {"venue": "x", "account": account, "asset": asset, "leg_id": leg or f"w-{account}-{when}", "ts": at(when, day),
            "kind": "withdrawal", "amount": D(amount), "fee": D(fee), "tx_hash": tx,
            "to_venue": "x" if to else None, "to_account": to, "refs": f"{account}.csv:1"}


def d(account: str, amount: str, when: str, *, leg: str | None = None, asset: str = "BTC", tx: str | None = None,
      day: dt.date = DAY) -> dict:
    return {"venue": "x", "account": account, "asset": asset, "leg_id": leg or f"d-{account}-{when}", "ts": at(when, day),
            "kind": "deposit", "amount": D(amount), "fee": D(0), "tx_hash": tx, "to_venue": None, "to_account": None,
            "refs": f"{account}.csv:2"}


def match(withdrawals: list[dict], deposits: list[dict], *, window: int = 24, tolerance: str = "0"):
    wf = pl.DataFrame([{k: v for k, v in r.items() if k != "kind"} for r in withdrawals], schema=PENDING_TRANSFERS,
                      orient="row")
    df = pl.DataFrame(deposits, schema=TRANSFER_LEGS, orient="row")
    matches, pending, external = match_transfers(wf, df, window, D(tolerance))
    pairs = sorted(zip(matches["withdrawal_id"].to_list(), matches["deposit_id"].to_list()))
    return pairs, sorted(pending["leg_id"].to_list()), sorted(external["leg_id"].to_list())


def test_ties_go_to_the_nearest_time():
    # w1 10:00 and w2 11:00 could both be the 11:30 deposit; w2 is 30 minutes away, w1 90.
    assert match([w("a", "1", "10:00", leg="w1"), w("a", "1", "11:00", leg="w2")], [d("b", "1", "11:30", leg="d")]) == (
        [("w2", "d")], ["w1"], [])


def test_each_movement_matches_at_most_once():
    # Two equal deposits, one withdrawal: the nearer deposit matches, the other is external.
    assert match([w("a", "1", "10:00", leg="w")], [d("b", "1", "12:00", leg="d1"), d("c", "1", "11:00", leg="d2")]) == (
        [("w", "d2")], [], ["d1"])
    # Two withdrawals, two deposits, the nearest pairs first: (w2, d2) 10 min, then (w1, d1) 2 h.
    assert match([w("a", "1", "09:00", leg="w1"), w("a", "1", "10:50", leg="w2")],
                 [d("b", "1", "11:00", leg="d1"), d("b", "1", "11:00", leg="d2")])[0] in (
        [("w1", "d1"), ("w2", "d2")], [("w1", "d2"), ("w2", "d1")])


def test_amounts_must_agree_within_the_tolerance():
    one = [w("a", "1.0", "10:00", leg="w")]
    assert match(one, [d("b", "0.9999", "11:00", leg="d")])[0] == []
    assert match(one, [d("b", "0.9999", "11:00", leg="d")], tolerance="0.0001")[0] == [("w", "d")]  # at the boundary
    assert match(one, [d("b", "0.99989", "11:00", leg="d")], tolerance="0.0001")[0] == []
    assert match(one, [d("b", "1.0001", "11:00", leg="d")], tolerance="0.0001")[0] == [("w", "d")]


def test_the_stated_network_fee_is_not_part_of_what_arrives():
    # The venue wrote -1.0 and a fee line of -0.0005: 1.0005 left, 1.0 should arrive.
    stated = [w("a", "1.0", "10:00", leg="w", fee="0.0005")]
    assert match(stated, [d("b", "1.0", "11:00", leg="d")])[0] == [("w", "d")]
    # A venue that wrote the gross on the withdrawal line: 1.0 - 0.0005 arrives.
    assert match(stated, [d("b", "0.9995", "11:00", leg="d")])[0] == [("w", "d")]
    assert match(stated, [d("b", "0.9990", "11:00", leg="d")])[0] == []
    assert match(stated, [d("b", "0.9996", "11:00", leg="d")])[0] == []
    assert match(stated, [d("b", "0.9996", "11:00", leg="d")], tolerance="0.0001")[0] == [("w", "d")]


def test_the_deposit_must_follow_within_the_window():
    one = [w("a", "1", "10:00", leg="w")]
    assert match(one, [d("b", "1", "09:59", leg="d")])[0] == []  # before the withdrawal
    assert match(one, [d("b", "1", "10:00", leg="d", day=DAY + dt.timedelta(days=1))])[0] == [("w", "d")]  # 24 h exactly
    assert match(one, [d("b", "1", "10:01", leg="d", day=DAY + dt.timedelta(days=1))])[0] == []
    assert match(one, [d("b", "1", "10:01", leg="d", day=DAY + dt.timedelta(days=1))], window=48)[0] == [("w", "d")]


def test_an_account_never_transfers_to_itself_and_assets_must_agree():
    assert match([w("a", "1", "10:00", leg="w")], [d("a", "1", "11:00", leg="d")])[0] == []
    assert match([w("a", "1", "10:00", leg="w")], [d("b", "1", "11:00", leg="d", asset="ETH")])[0] == []


def test_hashes_decide_when_both_rows_carry_one():
    one = [w("a", "1", "10:00", leg="w", tx="0xaa")]
    assert match(one, [d("b", "1", "11:00", leg="d", tx="0xbb")])[0] == []
    assert match(one, [d("b", "0.7", "11:00", leg="d", tx="0xaa")])[0] == [("w", "d")]
    # The hash wins over a nearer deposit without one.
    assert match(one, [d("b", "1", "10:30", leg="near"), d("c", "1", "11:00", leg="hashed", tx="0xaa")])[0] == [
        ("w", "hashed")]


def test_a_listed_withdrawal_matches_only_the_listed_account_whatever_the_amounts():
    listed = [w("a", "2", "10:00", leg="w", to="g")]
    assert match(listed, [d("b", "2", "11:00", leg="other"), d("g", "1.9", "12:00", leg="listed")]) == (
        [("w", "listed")], [], ["other"])
    assert match(listed, [d("b", "2", "11:00", leg="other")]) == ([], ["w"], ["other"])


# ---------------------------------------------------------------------------------------
# Lots leaving a book in the method's order
# ---------------------------------------------------------------------------------------


def book_lots(*rows: tuple[str, str, str]) -> pl.DataFrame:
    """(trade_id, qty, entry_price) in opening order."""
    return pl.DataFrame(
        [("bk", "BTC", t, at(f"{i:02d}:00"), D(q), D(p)) for i, (t, q, p) in enumerate(rows)],
        schema=LOTS_STATE, orient="row")


LOTS = book_lots(("old", "1", "100"), ("dear", "1", "300"), ("new", "1", "200"))


@pytest.mark.parametrize(("method", "taken", "left"), [
    ("fifo", [("old", "1"), ("dear", "0.5")], [("dear", "0.5"), ("new", "1")]),
    ("lifo", [("new", "1"), ("dear", "0.5")], [("old", "1"), ("dear", "0.5")]),
    ("hifo", [("dear", "1"), ("new", "0.5")], [("old", "1"), ("new", "0.5")]),
])
def test_lots_leave_in_the_costing_methods_order_keeping_time_and_cost(method, taken, left):
    rest, gone = take_lots(LOTS, D("1.5"), method)
    assert [(r["trade_id"], r["qty"]) for r in gone.iter_rows(named=True)] == [(t, D(q)) for t, q in taken]
    assert [(r["trade_id"], r["qty"]) for r in rest.iter_rows(named=True)] == [(t, D(q)) for t, q in left]
    # Each piece keeps its lot's time and unit cost.
    original = {r["trade_id"]: (r["opened_ts"], r["entry_price"]) for r in LOTS.iter_rows(named=True)}
    assert all((r["opened_ts"], r["entry_price"]) == original[r["trade_id"]] for r in gone.iter_rows(named=True))
    # Quantities only move: exactly what left plus what stayed is what was held.
    assert gone["qty"].sum() + rest["qty"].sum() == D("3")


def test_more_than_is_held_takes_everything_and_short_lots_are_never_taken():
    rest, gone = take_lots(LOTS, D("5"), "fifo")
    assert (rest.height, gone["qty"].sum()) == (0, D("3"))
    short = book_lots(("s", "-1", "100"))
    rest, gone = take_lots(short, D("1"), "fifo")
    assert (rest["qty"].to_list(), gone.height) == ([D("-1")], 0)


def test_what_arrives_is_the_first_part_in_the_order_it_left():
    pieces = LOTS.select("trade_id", "opened_ts", "qty", "entry_price")
    first, rest = split_transit(pieces, D("1.25"))
    assert [(r["trade_id"], r["qty"]) for r in first.iter_rows(named=True)] == [("old", D("1")), ("dear", D("0.25"))]
    assert [(r["trade_id"], r["qty"]) for r in rest.iter_rows(named=True)] == [("dear", D("0.75")), ("new", D("1"))]
    assert first.schema["qty"] == DECIMAL


# ---------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------


def settings_of(tmp_path, text: str):
    (tmp_path / "utl.toml").write_text(text, encoding="utf-8")
    return load_settings(tmp_path)


def test_transfer_and_account_settings_have_defaults_and_are_read_exactly(tmp_path):
    default = settings_of(tmp_path, "")
    assert (default.transfer_window_hours, default.transfer_tolerance, default.account_kinds) == (24, D(0), {})
    read = settings_of(tmp_path, '[transfers]\nwindow_hours = 48\namount_tolerance = "0.00000001"\n'
                                 '[accounts]\n"kraken/m1" = "margin"\n"deribit/d1" = "derivatives"\n')
    assert (read.transfer_window_hours, read.transfer_tolerance) == (48, D("0.00000001"))
    assert read.may_go_short("kraken", "m1") and read.may_go_short("deribit", "d1")
    assert not read.may_go_short("kraken", "spot")


@pytest.mark.parametrize(("text", "message"), [
    ('[transfers]\nwindow_hour = 3\n', "unknown key [transfers] window_hour; did you mean [transfers] window_hours?"),
    ('[transfers]\namount_tolerance = 0.1\n', 'write it as text'),
    ('[transfers]\namount_tolerance = "-1"\n', "is negative"),
    ('[accounts]\n"kraken/m1" = "spot"\n', "one of margin, derivatives"),
    ('[accounts]\n"kraken" = "margin"\n', '"venue/account"'),
])
def test_bad_transfer_and_account_settings_are_refused_by_name(tmp_path, text, message):
    with pytest.raises(SettingsError, match=message.replace("[", r"\[").replace("]", r"\]").replace("?", r"\?")):
        settings_of(tmp_path, text)
