"""The changed positions the booker publishes: one JSON object per row of utl.live_positions,
its columns then ``landing``, numbers as exact decimal text (never a float), times as
``datetime.isoformat`` writes them, on ``utl.positions.<venue>.<account>``."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import polars as pl
from hypothesis import given, settings, strategies as st

from utl.stream.booker import position_messages
from utl.stream.store import LIVE_ROWS

UTC = dt.timezone.utc
decimals = st.decimals(min_value=Decimal("-99999999999999999999.999999999999999999"),
                       max_value=Decimal("99999999999999999999.999999999999999999"),
                       places=18, allow_nan=False, allow_infinity=False)
names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
times = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC))
rows = st.fixed_dictionaries({
    "venue": names, "account": names, "asset": names, "qty": decimals,
    "cost_basis": st.none() | decimals, "avg_cost": st.none() | decimals, "realized_pnl": decimals,
    "last_trade_ts": st.none() | times, "stream_seq": st.none() | st.integers(0, 2**62),
})


def reference(row: dict, landing: str) -> dict:
    """What the message says, read from the row as Python gives it back."""
    def text(value):
        if value is None:
            return None
        if isinstance(value, dt.datetime):
            return value.isoformat()
        return format(value, "f") if isinstance(value, Decimal) else value
    return {**{k: text(v) for k, v in row.items()}, "landing": landing}


@settings(max_examples=200, deadline=None)
@given(st.lists(rows, min_size=1, max_size=20), names)
def test_each_message_is_its_row_exactly(given_rows, landing):
    live = pl.DataFrame(given_rows, schema=LIVE_ROWS)
    messages = position_messages(live, landing)
    assert len(messages) == live.height
    for (subject, data), row in zip(messages, live.to_dicts()):
        assert subject == f"utl.positions.{row['venue']}.{row['account']}"
        decoded = json.loads(data)
        assert list(decoded) == [*LIVE_ROWS.names(), "landing"]
        assert decoded == reference(row, landing)


def test_decimal_text_keeps_every_digit_and_sign():
    live = pl.DataFrame([{"venue": "kraken", "account": "main", "asset": "BTC", "qty": Decimal("-0.000000000000000001"),
                          "cost_basis": Decimal("12345678901234567890.123456789012345678"), "avg_cost": None,
                          "realized_pnl": Decimal("0"), "last_trade_ts": dt.datetime(2024, 3, 5, 10, tzinfo=UTC),
                          "stream_seq": 7}], schema=LIVE_ROWS)
    (subject, data), = position_messages(live, "")
    decoded = json.loads(data)
    assert decoded["qty"] == "-0.000000000000000001"
    assert decoded["cost_basis"] == "12345678901234567890.123456789012345678"
    assert decoded["realized_pnl"] == "0.000000000000000000"
    assert decoded["avg_cost"] is None
    assert decoded["last_trade_ts"] == "2024-03-05T10:00:00+00:00"
    assert decoded["stream_seq"] == 7


def test_no_rows_no_messages():
    assert position_messages(LIVE_ROWS.to_frame(), "L") == []
