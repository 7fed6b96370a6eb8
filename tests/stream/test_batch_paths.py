"""The booker's batch-wide shortcuts give what the message-by-message paths give: the envelope
decoded for a whole batch in one call, the stream sequence read off the reply subject, and
lots written as a difference."""

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest

from utl.schemas import LOTS_STATE
from utl.stream.booker import _lots_written, _stream_seq
from utl.stream.message import Message, _plain, _plain_batch

GOOD = '{"id": "%s", "timestamp": "1709615261367", "symbol": "BTC/USD", "side": "buy", "amount": "0.5", "price": "10"}'


def msg(seq: int, body: str) -> Message:
    return Message("utl.fills.okx.desk", seq, body.encode())


def test_a_plain_batch_decodes_in_one_call_as_each_message_alone():
    messages = [msg(i, GOOD % i) for i in range(1, 50)]
    assert _plain_batch(messages) == [_plain(m) for m in messages]
    assert _plain_batch(messages)[0] == (GOOD % 1, "BTC/USD", "1")


@pytest.mark.parametrize("odd", [
    '{"id": " ", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "1"}',  # blank id
    '{"id": "x", "symbol": "BTC/USD", "side": "buy", "amount": null, "price": "1"}',  # null amount
    '{"id": "x", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "  "}',  # blank price
    '{"id": "x", "symbol": "BTC/USD", "amount": "1", "price": "1"}',  # no side
])
def test_a_message_the_envelope_refuses_goes_its_own_way_within_a_plain_batch(odd):
    messages = [msg(1, GOOD % 1), msg(2, odd), msg(3, GOOD % 3)]
    batch = _plain_batch(messages)
    assert batch == [_plain(m) for m in messages]
    assert batch[1] is None and batch[0] is not None and batch[2] is not None


@pytest.mark.parametrize("odd", [
    '{"id": 7, "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "1"}',  # id not text
    '{not json',
    '',  # an empty message is no line of its own
    '{"id": "a\\u0041", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "1"}',  # an escape
    '{"id": "x", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "1"} {"id": "y"}',
])
def test_a_batch_that_is_not_one_plain_object_per_line_is_read_message_by_message(odd):
    assert _plain_batch([msg(1, GOOD % 1), msg(2, odd)]) is None


class _Msg:
    def __init__(self, reply):
        self.reply = reply

    @property
    def metadata(self):
        raise AssertionError("read off the reply subject")


def test_the_stream_sequence_is_read_off_a_v1_reply_subject():
    assert _stream_seq(_Msg("$JS.ACK.UTL_FILLS.consumer.1.4711.12.1709615261367000000.3")) == 4711


def lots(*rows) -> pl.DataFrame:
    ts = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)
    return pl.DataFrame([(b, a, t, ts, Decimal(q), Decimal(p)) for b, a, t, q, p in rows], schema=LOTS_STATE,
                        orient="row")


def apply(before: pl.DataFrame, written: dict, keys: pl.DataFrame) -> pl.DataFrame:
    """What the database holds after :func:`commit_batch` writes ``written``."""
    if "lots_gone" not in written:
        return pl.concat([before.join(keys, on=["book", "asset"], how="anti"), written["lots"]])
    kept = before.join(written["lots_gone"], on=LOTS_STATE.names(), how="anti", nulls_equal=True)
    return pl.concat([kept, written["lots"]])


def test_lots_are_written_as_a_difference_that_gives_the_new_lots():
    keys = pl.DataFrame({"book": ["b1"], "asset": ["BTC"]})
    before = lots(("b1", "BTC", "t1", "1", "10"), ("b1", "BTC", "t2", "2", "11"), ("b2", "BTC", "t3", "5", "9"))
    # t1 closed, t2 partly closed, t4 opened; b2 untouched.
    after = lots(("b2", "BTC", "t3", "5", "9"), ("b1", "BTC", "t2", "1.5", "11"), ("b1", "BTC", "t4", "3", "12"))
    written = _lots_written(before, after, keys)
    assert sorted(written["lots_gone"]["trade_id"]) == ["t1", "t2"]
    assert sorted(written["lots"]["trade_id"]) == ["t2", "t4"]
    assert apply(before, written, keys).sort("trade_id").equals(after.sort("trade_id"))


def test_lots_not_told_apart_by_their_trade_are_replaced_whole():
    keys = pl.DataFrame({"book": ["b1"], "asset": ["BTC"]})
    before = lots(("b1", "BTC", "t1", "1", "10"), ("b1", "BTC", "t1", "1", "10"))
    after = lots(("b1", "BTC", "t1", "1", "10"))
    written = _lots_written(before, after, keys)
    assert "lots_gone" not in written
    assert apply(before, written, keys).equals(after)
