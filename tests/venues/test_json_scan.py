"""The compiled JSON-lines scan: a line it reads gives what ``json.loads`` and ccxt's rules give,
and every line it is not sure of is handed back (property test against ``json.loads``)."""

from __future__ import annotations

import json

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.decimals import DECIMAL, parse_venue_numbers
from utl.venues.ccxt import _fee, _text, loads
from utl.venues.json_scan import MAX_DEPTH, scan_lines

FIELDS = ["id", "price", "side"]


def reference(line: str) -> tuple | None:
    """What the line-by-line reader gives, or None where it refuses the line or adds fees up."""
    try:
        record = loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or "side" not in record:
        return None
    cost, currency, problem = _fee(record)
    if problem is not None:
        return None
    return (*(_text(record.get(f)) for f in FIELDS), cost, currency)


def scanned(lines: list[str], parts: int = 1) -> tuple[dict[int, tuple], dict[int, str]]:
    frame, back = scan_lines("\n".join(lines).encode(), FIELDS, {"side"}, parts=parts)
    rows = {r[0]: r[2:] for r in frame.rows()}
    return rows, dict(back)


def test_values_are_the_text_json_loads_keeps() -> None:
    lines = [
        '{"id": "t1", "price": 0.1000000000000000055, "side": "buy", "fee": {"cost": 123456789.123456789, "currency": "BNB"}}',
        '{"side":"sell","price":-0,"id":"x","fees":[{"cost":null,"currency":"A"},{"currency":"B","cost":"3.1e-05"}]}',
        '{"id": null, "price": 1E+2, "side": "ünï", "info": {"price": 5, "side": "no", "a": [[{"b": "\\"}]"}]]}}\r',
        "  ",
        '{"side": "buy", "fees": [], "fee": {"cost": 0.5, "rate": {"x": [1, 2]}}}',
    ]
    rows, back = scanned(lines)
    assert back == {}
    assert rows == {
        1: ("t1", "0.1000000000000000055", "buy", "123456789.123456789", "BNB"),
        2: ("x", "-0", "sell", "3.1e-05", "B"),
        3: (None, "1E+2", "ünï", None, None),
        5: (None, None, "buy", "0.5", None),
    }
    for number, values in rows.items():
        assert values == reference(lines[number - 1].rstrip("\r"))


def test_lines_it_is_not_sure_of_are_handed_back() -> None:
    lines = [
        '{"id": "a\\u00e9", "price": 1, "side": "buy"}',  # an escape in a wanted value
        '{"id": "x", "price": 1, "side": "buy"',  # cut short
        '{"id": "x", "price": 1}',  # no side
        '{"id": "x", "price": true, "side": "buy"}',
        '{"id": "x", "price": NaN, "side": "buy"}',
        '{"id": "x", "price": 01, "side": "buy"}',
        '{"id": "x", "price": 1., "side": "buy"}',
        '{"id": "x", "price": 1, "side": "buy",}',
        '{"id": "x", "id": "y", "price": 1, "side": "buy"}',
        '{"\\u0069d": "x", "side": "buy"}',
        '{"side": "buy", "fees": [{"cost": 1, "currency": "A"}, {"cost": 2, "currency": "A"}]}',
        '{"side": "buy", "fees": [null]}',
        '{"side": "buy", "fee": 0.5}',
        '["side", "x"]',
        '{"side": "buy"} x',
        '{"side": "b\tuy"}',
        '{"side": "buy", "info": "\\x"}',
        '\x0c',
        '{"side": "buy", "info": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}",
    ]
    rows, back = scanned(lines)
    assert rows == {}
    assert back == {n: line for n, line in enumerate(lines, 1)}


def test_nesting_up_to_the_limit_is_read() -> None:
    line = '{"side": "buy", "info": ' + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1) + "}"
    rows, back = scanned([line])
    assert back == {} and rows == {1: (None, None, "buy", None, None)}


_scalars = st.one_of(
    st.sampled_from(["null", "true", "false", "0", "-0", "1.5", "1e5", "-2.5E-3", "01", "1.", ".5", "NaN", "-", '"', '""', '"a"',
                     '"\\u00e9"', '"\\n"', '"\\q"', '"ä"', '"x\ty"', "[]", "{}", "[1,]", '{"a":1}', '{"cost": 1}',
                     '{"cost": "2", "currency": "X"}', '{"cost": null}', '[{"cost": 1}]', '[{"cost": 1}, {"cost": 2}]', '[null]',
                     '{"cost": 1, "cost": 2}', '{"currency": true, "cost": 1}', '{"cost": {"a": 1}}', '{"cost": "\\u0031"}',
                     '[{"cost": "1", "currency": null}, {"cost": null}]', '{"cost": 1e5, "currency": "X", "rate": [1, {"b": null}]}',
                     '{"curr": "X", "costs": 1, "cost": -0.5}']),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.text(alphabet='ab"\\ {}[],:0-.eE\x01', max_size=6).map(json.dumps),
)
_keys = st.sampled_from(["id", "price", "side", "fee", "fees", "cost", "currency", "info", "x", "\\u0069d"])


@st.composite
def _lines(draw) -> str:
    members = draw(st.lists(st.tuples(_keys, _scalars), max_size=6))
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in members) + "}"
    if draw(st.booleans()):  # a random cut or splice
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", ",", "}", "{", '"', " ", "]", "\r", "\\"])) + text[at + draw(st.integers(0, 2)):]
    return text


@settings(max_examples=400, deadline=None)
@given(st.lists(_lines(), min_size=1, max_size=8), st.integers(1, 4))
def test_a_line_read_here_reads_as_json_loads_reads_it(lines: list[str], parts: int) -> None:
    rows, back = scanned(lines, parts)
    for number, line in enumerate(lines, 1):
        expected = reference(line.rstrip("\r"))
        if number in rows:
            assert expected is not None, line
            assert rows[number] == expected, line
        elif line.strip():
            assert back[number] == line.rstrip("\r")


def test_a_file_read_in_parts_reads_as_in_one() -> None:
    """Each thread reads a run of whole lines; the rows, their numbers and the lines handed
    back do not depend on where the runs start (blank lines, a last line without ``\\n``)."""
    lines = []
    for k in range(300):
        lines += [
            f'{{"id": "{"x" * (k % 20)}", "price": {k}.5{"5" * (k % 15)}, "side": "sëll", "fees": [{{"cost": {k}e-3, "currency": "C{k}"}}]}}',
            "" if k % 7 else " \r",
            '{"id": "cut", "price": 1, "side": "buy"' if k % 11 == 0 else '{"side": "buy", "id": null}\r',
        ]
    whole = scanned(lines)
    assert len(whole[0]) == 300 + 300 - 28 and len(whole[1]) == 28
    for parts in (2, 3, 7, 64):
        assert scanned(lines, parts) == whole
    text = "\n".join(lines)
    frame, _ = scan_lines(text.encode(), FIELDS, {"side"}, raw_when_null="id", parts=5)
    assert frame.filter(frame["id"].is_null())["raw"].to_list() == [line.rstrip("\r") for line in lines if "null" in line]
    assert frame.filter(frame["id"].is_not_null())["raw"].null_count() == frame["id"].is_not_null().sum()


_number_texts = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=18).map(lambda d: f"{d:f}"),
    st.integers(-(10**21), 10**21).map(str),
    st.from_regex(r"-?[0-9]{1,20}(\.[0-9]{1,20})?", fullmatch=True),
    st.sampled_from(["0", "-0", "-0.0", "0.000000000000000001", "-0.000000000000000001", "999999999999999999.999999999999999999",
                     "-999999999999999999.999999999999999999", "1000000000000000000", "007.50", "1.", ".5", "1e5", "3.1e-05", "",
                     "+1", " 1", "1,000", "--", "1.0000000000000000001"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_number_texts, st.booleans()), min_size=1, max_size=12), st.integers(1, 3))
def test_decimals_read_by_the_scan_are_what_the_text_reads_as(numbers: list[tuple[str, bool]], parts: int) -> None:
    """A value the scan reads from its digits equals Polars' reading of its text (the reader's
    rules, :func:`utl.decimals.parse_venue_numbers`); the scan leaves the rest to that reading."""
    lines = [f'{{"side": "x", "price": {json.dumps(text) if quoted else text or "null"}}}' for text, quoted in numbers]
    frame, back = scan_lines("\n".join(lines).encode(), FIELDS, {"side"}, parts=parts, decimals=["price"])
    read = frame.filter(pl.col("price__value").is_not_null())
    values, bad = parse_venue_numbers(read["price"])
    assert bad.sum() == 0
    assert read["price__value"].to_list() == values.to_list()
    plain = read["price"].str.contains(r"^-?[0-9]{1,18}(\.[0-9]{1,18})?$")
    assert plain.all()
    unread = frame.filter(pl.col("price__value").is_null() & pl.col("price").str.contains(r"^-?[0-9]{1,18}(\.[0-9]{1,18})?$"))
    assert unread.height == 0
    assert frame["price__value"].dtype == DECIMAL


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(-10, 10**17).map(str), st.from_regex(r"[0-9]{0,17}(\.[0-9])?", fullmatch=True),
                          st.sampled_from(["", "1e3", "-0", "٣", "0000000000000001", "1709630102123", " 1"])),
                min_size=1, max_size=10), st.booleans(), st.integers(1, 3))
def test_a_count_read_by_the_scan_is_the_digits_the_reader_takes(texts: list[str], quoted: bool, parts: int) -> None:
    """``<count>__int``: the ms since 1970 where the text is 1 to 15 digits (as the reader's
    ``^\\d{1,15}$``, in ASCII), null where it is anything else."""
    lines = [f'{{"side": "x", "id": {json.dumps(t) if quoted else t or "null"}}}' for t in texts]
    frame, _ = scan_lines("\n".join(lines).encode(), FIELDS, {"side"}, parts=parts, count="id")
    for text, value in zip(frame["id"], frame["id__int"]):
        plain = text is not None and text.isascii() and text.isdigit() and 1 <= len(text) <= 15
        assert value == (int(text) if plain else None), text
