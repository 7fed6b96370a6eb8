"""The canonical models refuse what the contract forbids, by row, and keep the rest."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from utl.schemas import FILLS, LEGS, Fills, Legs, keys_distinct, validate_rows

T = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)


def fill(**over) -> dict:
    row = dict(venue="binance", account="a", trade_id="t1", order_id=None, ts=T, symbol="BTCUSDT", base="BTC",
               quote="USDT", side="buy", qty=Decimal("1"), price=Decimal("65000"), quote_qty=Decimal("65000"),
               fee=None, fee_asset=None, liquidity=None, source_file="binance/a/trades/x.csv", source_row=1)
    row.update(over)
    return row


def test_good_rows_pass_and_bad_rows_are_named():
    frame = pl.DataFrame(
        [fill(), fill(trade_id="t2", side="hold", source_row=2), fill(trade_id="t3", price=Decimal("0"), source_row=3),
         fill(trade_id="t4", qty=Decimal("0"), source_row=4), fill(trade_id="t5", liquidity="both", source_row=5)],
        schema=FILLS,
    )
    passed, refused = validate_rows(frame, Fills)
    assert passed["trade_id"].to_list() == ["t1"]
    assert sorted(refused.select("row", "column").rows()) == [(2, "side"), (3, "price"), (4, "qty"), (5, "liquidity")]
    assert set(refused["file"]) == {"binance/a/trades/x.csv"}
    assert all("Fills" in reason for reason in refused["reason"])


def test_a_frame_of_the_wrong_shape_is_a_bug_not_bad_input():
    frame = pl.DataFrame([fill()], schema=FILLS).with_columns(pl.col("qty").cast(pl.Float64))
    with pytest.raises(ValueError, match="shape"):
        validate_rows(frame, Fills)


def test_leg_ids_are_unique_within_an_account():
    leg = dict(venue="v", account="a", leg_id="x", ts=T, asset="BTC", qty=Decimal("1"), kind="base", trade_id=None,
               price=None, quote=None, source_file="f", source_row=1)
    frame = pl.DataFrame([leg, {**leg, "source_row": 2}, {**leg, "account": "b", "source_row": 3}], schema=LEGS)
    passed, refused = validate_rows(frame, Legs)
    assert passed["account"].to_list() == ["b"]
    assert sorted(refused["row"].to_list()) == [1, 2]


def test_distinct_keys_are_proved_by_their_hashes_and_a_repeat_is_never_missed():
    frame = pl.DataFrame({"venue": ["v", "v", "w"], "account": ["a", "b", "a"], "leg_id": ["x", "x", "x"]})
    assert keys_distinct(frame, ["venue", "account", "leg_id"])
    assert not keys_distinct(frame, ["leg_id"])
    assert not keys_distinct(pl.concat([frame, frame.head(1)]), ["venue", "account", "leg_id"])
    # a null key repeated is a repeat too (pandera's unique check counts it so)
    nulls = pl.DataFrame({"venue": ["v", "v"], "account": [None, None], "leg_id": ["x", "x"]})
    assert not keys_distinct(nulls, ["venue", "account", "leg_id"])


def test_leg_ids_checked_fast_when_distinct_and_the_slow_way_when_not():
    leg = dict(venue="v", account="a", leg_id="x", ts=T, asset="BTC", qty=Decimal("1"), kind="base", trade_id=None,
               price=None, quote=None, source_file="f", source_row=1)
    distinct = pl.DataFrame([{**leg, "leg_id": f"x{i}", "source_row": i} for i in range(50)]
                            + [{**leg, "leg_id": "y", "price": Decimal("0"), "source_row": 99}], schema=LEGS)
    passed, refused = validate_rows(distinct, Legs)  # the other checks still run on the fast path
    assert passed.height == 50 and refused.select("row", "column").rows() == [(99, "price")]
    repeated = pl.concat([distinct.head(50), distinct.head(1).with_columns(source_row=pl.lit(7, pl.Int64))])
    passed, refused = validate_rows(repeated, Legs)
    assert passed.height == 49 and sorted(refused["row"].to_list()) == [0, 7]
