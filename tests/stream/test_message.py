"""Messages are read exactly, and everything refused is quarantined with subject and sequence."""

from decimal import Decimal

from utl.settings import Settings
from utl.stream.message import Message, parse_batch


def msg(seq: int, body: str, subject: str = "utl.fills.bybit.api") -> Message:
    return Message(subject, seq, body.encode())


def test_numbers_are_read_as_their_text_never_a_float():
    # 0.1 + 0.2 in binary floating point is not 0.3; 1e-18 is beyond a float's 17 digits next to 1.
    body = ('{"id": "7", "timestamp": 1709615261367, "symbol": "ETH/USD", "side": "buy", '
            '"amount": 1.000000000000000001, "price": "0.3", "cost": 0.3, '
            '"fee": {"cost": 1e-18, "currency": "ETH"}}')
    parsed = parse_batch([msg(5, body)], Settings())
    assert parsed.quarantine.height == 0
    legs = {r["kind"]: r for r in parsed.legs.iter_rows(named=True)}
    assert legs["base"]["qty"] == Decimal("1.000000000000000001")
    assert legs["quote"]["qty"] == -Decimal("0.300000000000000000")  # the stated cost, exactly
    assert legs["fee"]["qty"] == Decimal("-0.000000000000000001")
    assert {r["stream_seq"] for r in parsed.legs.iter_rows(named=True)} == {5}
    assert set(parsed.legs["payload_id"]) == {"7"}


def test_bad_messages_are_quarantined_with_subject_sequence_reason_and_raw():
    good = '{"id": "1", "datetime": "2024-03-05T10:00:00.000Z", "symbol": "BTC/USD", "side": "sell", "amount": "2", "price": "10"}'
    messages = [
        msg(1, good),
        msg(2, "{not json"),
        msg(3, '{"id": "3", "datetime": "2024-03-05T10:00:00.000Z", "symbol": "BTC/USD", "side": "sell", "amount": "2"}'),
        # cost 20.001 is 5e-5 relative off 2 × 10: more than 1e-6
        msg(4, '{"id": "4", "datetime": "2024-03-05T10:00:00.000Z", "symbol": "BTC/USD", "side": "buy", "amount": "2", '
               '"price": "10", "cost": "20.001"}'),
        msg(5, '[1, 2]'),
        msg(6, '{"datetime": "2024-03-05T10:00:00.000Z", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "1"}'),
    ]
    parsed = parse_batch(messages, Settings())
    assert parsed.fills["stream_seq"].to_list() == [1]
    q = {r["stream_seq"]: r for r in parsed.quarantine.iter_rows(named=True)}
    assert sorted(q) == [2, 3, 4, 5, 6]
    assert q[2]["reason"].startswith("invalid JSON") and q[2]["raw"] == "{not json"
    assert "missing price" in q[3]["reason"]
    assert "cost" in q[4]["reason"] and "20.001" in q[4]["reason"]
    assert "missing id" in q[6]["reason"]
    assert all(r["subject"] == "utl.fills.bybit.api" for r in q.values())


def test_a_cost_within_one_millionth_books_as_stated():
    body = ('{"id": "9", "datetime": "2024-03-05T10:00:00.000Z", "symbol": "BTC/USD", "side": "buy", "amount": "2", '
            '"price": "10", "cost": "20.00001"}')  # 5e-7 relative
    parsed = parse_batch([msg(1, body)], Settings())
    quote = parsed.legs.filter(kind="quote")
    assert quote["qty"].to_list() == [Decimal("-20.00001")]


def test_no_fee_and_empty_fees_book_no_fee_leg_and_the_subject_names_venue_and_account():
    bodies = ['{"id": "a", "datetime": "2024-03-05T10:00:00Z", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "5", "fee": null}',
              '{"id": "b", "datetime": "2024-03-05T10:00:00Z", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "5", "fees": []}']
    parsed = parse_batch([msg(1, bodies[0], "utl.fills.okx.desk1"), msg(2, bodies[1], "utl.fills.kraken.main")], Settings())
    assert sorted(parsed.legs["kind"].to_list()) == ["base", "base", "quote", "quote"]
    assert sorted(zip(parsed.fills["venue"], parsed.fills["account"])) == [("kraken", "main"), ("okx", "desk1")]


def test_a_re_send_in_the_same_batch_keeps_its_own_legs_and_sequence():
    body = '{"id": "1", "datetime": "2024-03-05T10:00:00Z", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "5"}'
    parsed = parse_batch([msg(1, body), msg(2, body, "utl.fills.okx.x"), msg(3, body)], Settings())
    assert sorted(parsed.legs["stream_seq"].to_list()) == [1, 1, 2, 2, 3, 3]
    assert parsed.fills["stream_seq"].to_list() == [1, 2, 3]


def test_a_message_read_at_a_glance_books_as_one_read_in_full():
    # The same trade twice: plain, and with a line break and an escape (\u0035 is "5"), which
    # the quick envelope leaves to json.loads; the legs must not differ by a digit.
    plain = ('{"id": "q1", "timestamp": 1709632800000, "symbol": "ETH/BTC", "side": "sell", "amount": 0.10000000000000001, '
             '"price": "0.0525", "fee": {"cost": 3.1e-05, "currency": "BTC"}}')
    escaped = plain.replace('"0.0525"', '"0.052\\u0035"').replace(', "side"', ',\n "side"')
    parsed = parse_batch([msg(1, plain), msg(2, escaped, "utl.fills.okx.x")], Settings())
    assert parsed.quarantine.height == 0
    rows = lambda seq: sorted((r["kind"], r["asset"], r["qty"]) for r in parsed.legs.iter_rows(named=True)
                              if r["stream_seq"] == seq)
    # amount 0.10000000000000001 exactly; quote 0.10000000000000001 × 0.0525 = 0.005250000000000000525,
    # rounded to 18 places 0.005250000000000001; fee 0.000031 BTC.
    assert rows(1) == rows(2) == sorted([("base", "ETH", Decimal("-0.10000000000000001")),
                                         ("quote", "BTC", Decimal("0.005250000000000001")),
                                         ("fee", "BTC", Decimal("-0.000031"))])


def test_blank_ids_are_refused_and_numeric_ids_read_as_their_text_as_before():
    body = '{"id": %s, "datetime": "2024-03-05T10:00:00Z", "symbol": "BTC/USD", "side": "buy", "amount": "1", "price": "5"}'
    parsed = parse_batch([msg(1, body % '"  "'), msg(2, body % "12"), msg(3, body % '"\\u00a0"')], Settings())
    q = {r["stream_seq"]: r["reason"] for r in parsed.quarantine.iter_rows(named=True)}
    assert q == {1: "not a ccxt trade: missing id", 3: "not a ccxt trade: missing id"}
    assert parsed.fills["payload_id"].to_list() == ["12"]
