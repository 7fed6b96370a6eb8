"""A small batch of plain messages is read a message at a time (utl.stream.plain_fills): the
fills, legs and refusals must be exactly the batch reader's, whatever the messages hold; a
message that path cannot judge sends the whole batch to the reader."""

from decimal import Decimal

import hypothesis.strategies as st
from hypothesis import HealthCheck, event, given, settings as hsettings
from polars.testing import assert_frame_equal

from utl.settings import Settings
from utl.stream.message import KEYED_FILLS, Message, parse_batch, venue_account
from utl.stream.plain_fills import plain_fills

SETTINGS = Settings(aliases={"XBT": "BTC"})


def _digits(draw, before: int, after: int, nonzero: bool = False) -> str:
    whole = (draw(st.sampled_from("123456789")) + draw(st.text("0123456789", max_size=before - 1)) if nonzero
             else draw(st.text("0123456789", min_size=1, max_size=before)))
    part = draw(st.text("0123456789", min_size=0, max_size=after))
    return whole + ("." + part if part else "")


@st.composite
def number_text(draw, *, signed: bool = False, plain: bool = False) -> str:
    """A number's JSON text: a plain decimal (as a number or a string), or (unless ``plain``)
    one in the shapes only the reader judges (exponents, blanks, signs, too many digits, junk)."""
    odd = ["exp", "blank", "plus", "minus", "long", "junk", "null", "zero"]
    shape = draw(st.sampled_from(["plain"] * 8 + ["wide"] if plain else ["plain"] * 8 + ["wide"] + odd))
    if shape == "plain":
        text = _digits(draw, 6, 9 if plain else 10, nonzero=plain)
    elif shape == "wide":  # past the 28 digits of Python's default decimal context
        text = draw(st.text("123456789", min_size=15, max_size=20)) + "." + draw(st.text("0123456789", min_size=12, max_size=18))
    elif shape == "exp":
        text = f"{draw(st.integers(1, 99))}e-{draw(st.integers(1, 20))}"
    elif shape == "blank":
        return f'" {_digits(draw, 3, 3)} "'
    elif shape == "plus":
        text = "+" + _digits(draw, 3, 3)
    elif shape == "minus":
        text = "-" + _digits(draw, 3, 3)
    elif shape == "long":
        text = _digits(draw, 22, 20)
    elif shape == "junk":
        return draw(st.sampled_from(['"abc"', '""', '"--"', "true", "[1]"]))
    elif shape == "null":
        return "null"
    else:
        text = "0"
    if signed and draw(st.booleans()) and shape in ("plain", "wide"):
        text = "-" + text
    as_string = draw(st.booleans()) or shape == "plus"  # JSON has no leading +
    return f'"{text}"' if as_string else text


def _one(draw, plain: bool, usual: list, odd: list):
    return draw(st.sampled_from(usual if plain else usual + odd))


@st.composite
def message_text(draw, n: int, plain: bool) -> str:
    """A ccxt trade's JSON text, drawn from the shapes the quick path reads when ``plain``,
    else from every shape."""
    symbol = _one(draw, plain, ["BTC/USDT", "XBT/USD", "eth/usdc", "BTC/USDT:USDT", "ETH/USD:ETH-261225", "SOL/EUR"],
                  ["BTC-USDT", "BTC/", "A@B/USD", "ÉTH/USD"])
    fields = {"id": f'"t{n}"', "symbol": f'"{symbol}"', "side": _one(draw, plain, ['"buy"', '"sell"'], ['"BUY"', '" sell"', '"hold"'])}
    amount = draw(number_text(plain=plain))
    price = draw(number_text(plain=plain))
    fields["amount"], fields["price"] = amount, price
    when = _one(draw, plain, ["ms", "ms_text"], ["iso", "tiny", "frac", "none"])
    ms = draw(st.integers(1_500_000_000_000, 1_900_000_000_000))
    fields.update({"ms": {"timestamp": str(ms)}, "ms_text": {"timestamp": f'"{ms}"'},
                   "iso": {"datetime": '"2024-03-05T10:00:00.000Z"'}, "tiny": {"timestamp": "1000"},
                   "frac": {"timestamp": f"{ms}.5"}, "none": {}}[when])
    cost = _one(draw, plain, ["absent", "null", "product", "near"], ["off", "edge", "text"])
    try:
        product = Decimal(amount.strip('"')) * Decimal(price.strip('"'))
    except ArithmeticError:
        product = None
    if cost == "null":
        fields["cost"] = "null"
    elif cost == "text":
        fields["cost"] = draw(number_text(plain=plain))
    elif cost != "absent" and product is not None and product.is_finite():
        scale = {"product": Decimal(0), "near": Decimal("1e-9"), "off": Decimal("1e-3"), "edge": Decimal("1e-6")}[cost]
        stated = product * (1 + scale) if cost != "edge" else product + abs(product) / 1_000_000
        fields["cost"] = f'"{stated:f}"'
    fee = _one(draw, plain, ["absent", "null", "one", "zero_no_ccy", "cost_null", "fees_one", "fees_empty"],
               ["no_ccy", "fees_two", "not_object", "numeric_ccy"])
    currency = _one(draw, plain, ["USDT", "xbt", "BNB"], ["B@D"])
    entry = f'{{"cost": {draw(number_text(signed=True, plain=plain))}, "currency": "{currency}"}}'
    fields.update({
        "absent": {}, "null": {"fee": "null"}, "one": {"fee": entry}, "zero_no_ccy": {"fee": '{"cost": "0"}'},
        "no_ccy": {"fee": '{"cost": "0.5"}'}, "cost_null": {"fee": '{"cost": null, "currency": "USDT"}'},
        "fees_one": {"fees": f"[{entry}]", "fee": entry}, "fees_two": {"fees": f"[{entry}, {entry}]"},
        "fees_empty": {"fees": "[]", "fee": entry}, "not_object": {"fee": "5"},
        "numeric_ccy": {"fee": '{"cost": "1", "currency": 7}'},
    }[fee])
    order = _one(draw, plain, [None, '"o-1"', "123", "null"], ["true", "1.5e3"])
    if order is not None:
        fields["order"] = order
    liquidity = draw(st.sampled_from([None, '"maker"', '"taker"', '"MAKER"', "null", "1"]))
    if liquidity is not None:
        fields["takerOrMaker"] = liquidity
    if not plain and draw(st.integers(0, 10)) == 0:
        fields["direction"] = '"in"'
    fields["info"] = '{"raw": [1, 2.5, "x"]}'
    return "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"


SUBJECTS = ["utl.fills.binance.main", "utl.fills.Coinbase.api", "utl.fills.kraken.k1", "utl.fills.okx.sub-2"]


@st.composite
def batches(draw) -> list[Message]:
    """Half the batches plain throughout (so that they take the quick path), half mixed."""
    n = draw(st.integers(1, 6))
    all_plain = draw(st.booleans())
    return [Message(draw(st.sampled_from(SUBJECTS)), 100 + i,
                    draw(message_text(i, all_plain or draw(st.integers(0, 3)) > 0)).encode()) for i in range(n)]


def _both(messages: list[Message]):
    quick = parse_batch(messages, SETTINGS)
    read = parse_batch(messages, SETTINGS, reader_from=None)  # the batch reader alone
    return quick, read


def _same(quick, read) -> None:
    assert_frame_equal(quick.fills, read.fills)
    assert_frame_equal(quick.legs, read.legs)
    assert_frame_equal(quick.quarantine, read.quarantine)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_a_batch_books_what_the_batch_reader_books_whichever_path_reads_it(messages):
    quick, read = _both(messages)
    _same(quick, read)
    event("read a message at a time" if plain_fills(_items(messages), SETTINGS, KEYED_FILLS) is not None else "read by the reader")


def _items(messages: list[Message]):
    return [(m.seq, m.subject, *venue_account(m.subject), f"t{i}", m.data.decode()) for i, m in enumerate(messages)]


PLAIN = [
    '{"id": "t0", "timestamp": 1709615261367, "symbol": "BTC/USDT", "side": "buy", "amount": "0.5", "price": 65000.25,'
    ' "cost": "32500.125", "fee": {"cost": "0.0005", "currency": "BNB"}, "order": 42, "takerOrMaker": "maker"}',
    '{"id": "t1", "timestamp": "1709615262000", "symbol": "XBT/USD", "side": "sell", "amount": 2, "price": "0.000000000000000001"}',
    '{"id": "t2", "timestamp": 1709615263000, "symbol": "ETH/USDT:USDT", "side": "sell", "amount": "3", "price": "3000",'
    ' "cost": "9000", "fees": [{"cost": "-0.1", "currency": "usdt"}], "fee": {"cost": "-0.1", "currency": "usdt"}}',
    '{"id": "t3", "timestamp": 1709615264000, "symbol": "SOL/EUR", "side": "buy", "amount": "1.5", "price": "20",'
    ' "cost": "30.00001", "fee": null, "fees": [], "info": {"nested": [1, 2]}}',
]


def test_plain_messages_are_read_a_message_at_a_time_and_book_as_the_reader_books_them():
    messages = [Message(SUBJECTS[i % len(SUBJECTS)], 7 + i, body.encode()) for i, body in enumerate(PLAIN)]
    assert plain_fills(_items(messages), SETTINGS, KEYED_FILLS) is not None
    quick, read = _both(messages)
    _same(quick, read)
    fills = {r["payload_id"]: r for r in quick.fills.iter_rows(named=True)}
    assert fills["t0"]["trade_id"] == "BTC/USDT:t0"  # Binance numbers trades per symbol
    assert fills["t1"]["base"] == "BTC" and fills["t1"]["trade_id"] == "BTC/USD:t1"  # the alias; Coinbase too
    assert fills["t1"]["quote_qty"] == Decimal("0.000000000000000002")  # amount × price, exact
    assert fills["t2"]["derivative"] and fills["t2"]["fee"] == Decimal("-0.1") and fills["t2"]["fee_asset"] == "USDT"
    assert fills["t3"]["quote_qty"] == Decimal("30.00001")  # as stated, within 1e-6


def test_a_message_the_quick_path_cannot_judge_sends_the_whole_batch_to_the_reader():
    plain = [Message(SUBJECTS[0], 1, PLAIN[0].encode())]
    for odd in [
        '"amount": "1e-3"',  # an exponent
        '"amount": " 0.5 "',  # blanks around
        '"side": "BUY"',
        '"cost": "32500.2"',  # a stated cost off by more than 1e-6
        '"fees": [{"cost": "1", "currency": "BNB"}, {"cost": "2", "currency": "BNB"}]',  # summed by the reader
        '"timestamp": "2024-03-05"',
        '"direction": "in"',
    ]:
        key = odd.split(":")[0]
        body = PLAIN[0].replace("{", "{" + odd + ", ", 1) if key not in PLAIN[0] else _replace(PLAIN[0], key, odd)
        messages = [*plain, Message(SUBJECTS[1], 2, body.replace('"t0"', '"t9"', 1).encode())]
        assert plain_fills(_items(messages), SETTINGS, KEYED_FILLS) is None, odd
        _same(*_both(messages))


def _replace(body: str, key: str, field: str) -> str:
    start = body.index(key)
    end = start + len(key)
    depth, i = 0, body.index(":", end) + 1
    while i < len(body):  # the value's end: a comma or brace at depth 0
        c = body[i]
        if c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            break
        i += 1
    return body[:start] + field + body[i:]


def test_a_batch_of_reader_from_messages_or_more_is_read_by_the_batch_reader(monkeypatch):
    import utl.stream.message as message

    calls = []
    read_file = message.read_trades_file
    monkeypatch.setattr(message, "read_trades_file", lambda *a: calls.append(1) or read_file(*a))
    messages = [Message(SUBJECTS[2], i + 1, PLAIN[1].replace('"t1"', f'"t{i}"').encode()) for i in range(3)]
    below = parse_batch(messages, SETTINGS, reader_from=4)
    assert calls == []
    at = parse_batch(messages, SETTINGS, reader_from=3)
    assert calls == [1]
    _same(below, at)


def _read_twice(messages: list[Message]):
    """The envelope's check, then plain_rows: what a quick batch read before plain_message_rows."""
    from utl.stream.message import _plain_batch
    from utl.stream.plain_fills import plain_rows

    heads = [(m.seq, m.subject, *venue_account(m.subject)) for m in messages]
    envelope = _plain_batch(messages)
    if envelope is None or any(e is None for e in envelope):
        return None
    return plain_rows([(*h, e[2], e[0]) for h, e in zip(heads, envelope)], SETTINGS, most=10_000)


def _read_once(messages: list[Message]):
    from utl.stream.plain_fills import plain_message_rows

    heads = [(m.seq, m.subject, *venue_account(m.subject)) for m in messages]
    return plain_message_rows(heads, [m.data for m in messages], SETTINGS, most=10_000)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches())
def test_one_decode_reads_what_the_envelope_and_plain_rows_read(messages):
    once = _read_once(messages)
    assert once == _read_twice(messages)
    event("plain" if once is not None else "not plain")


def test_one_decode_refuses_what_either_refused():
    good = [Message(SUBJECTS[i % len(SUBJECTS)], 7 + i, body.encode()) for i, body in enumerate(PLAIN)]
    assert _read_once(good) is not None and _read_once(good) == _read_twice(good)
    odd = {
        "blank id": PLAIN[1].replace('"id": "t1"', '"id": " "').encode(),
        "blank symbol": PLAIN[1].replace('"symbol": "XBT/USD"', '"symbol": "  "').encode(),
        "no id": PLAIN[1].replace('"id": "t1", ', "").encode(),
        "numeric id": PLAIN[1].replace('"id": "t1"', '"id": 1').encode(),
        "not UTF-8 where nothing reads": PLAIN[3].replace('"nested"', '"n\xe9"').encode("latin-1"),
        "empty": b"",
        "an escape": PLAIN[1].replace('"t1"', '"t\\u0031"').encode(),
    }
    for why, body in odd.items():
        messages = [good[0], Message(SUBJECTS[1], 99, body)]
        assert _read_once(messages) is None, why
        assert _read_twice(messages) is None, why
