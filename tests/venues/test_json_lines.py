"""JSON lines to text columns: numbers as written, and every line the fast path cannot read
exactly handed back (ccxt reads those one by one)."""

from __future__ import annotations

from utl.venues.json_lines import text_columns

FIELDS = ["id", "price", "side"]


def test_numbers_keep_their_text_and_plain_strings_lose_their_quotes() -> None:
    lines = [
        (1, '{"id": "t1", "price": 3.1e-05, "side": "buy", "fee": {"cost": 0.1, "currency": "BNB"}, "fees": []}'),
        (2, '{"id": 7, "price": 650.0000000000001, "side": "sell", "fees": [{"cost": null}, {"cost": "2", "currency": "USDT"}]}'),
        (4, '{"id": "t3", "price": 123456789012345678901234567890.123456789, "side": null, "other": [1, {"a": 2}]}'),
        (5, '{"id": "", "price": -0, "side": "ünï"}'),
    ]
    frame, left = text_columns(lines, FIELDS, {"side"})
    assert left == []
    assert frame.rows() == [
        (1, lines[0][1], "t1", "3.1e-05", "buy", "0.1", "BNB", None, None),
        (2, lines[1][1], "7", "650.0000000000001", "sell", "2", "USDT", None, None),
        (4, lines[2][1], "t3", "123456789012345678901234567890.123456789", None, None, None, None, None),
        (5, lines[3][1], "", "-0", "ünï", None, None, None, None),
    ]


def test_what_it_cannot_read_exactly_is_handed_back_in_order() -> None:
    lines = [
        (1, '{"id": "a\\u00e9", "price": 1, "side": "buy"}'),  # an escape: json.loads unescapes it
        (2, '{"id": "x", "price": 1, "side": "buy"'),  # truncated
        (3, '{"id": "x", "price": 1}'),  # the required side is missing
        (4, '{"id": "x", "price": true, "side": "buy"}'),  # not text
        (5, '{"id": "x", "price": 1, "side": "buy", "fees": [{"cost": 1, "currency": "A"}, {"cost": 2, "currency": "A"}]}'),
        (6, '["id", "x"]'),  # not an object
        (7, '{"id": "x", "price": 1, "side": "buy", "fee": 0.5}'),  # a fee that is not an object
        (8, '{"id": "ok", "price": 2, "side": "sell"}'),
    ]
    frame, left = text_columns(lines, FIELDS, {"side"})
    assert left == lines[:7]
    assert frame.select("source_row", "id", "price", "side").rows() == [(8, "ok", "2", "sell")]
