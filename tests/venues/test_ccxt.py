"""ccxt trades, ledger entries and balances: detection by keys, exact numbers, quarantine."""

from __future__ import annotations

import gc
import json
import tempfile
import tracemalloc
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.schemas import BALANCES, FILLS, MOVEMENTS
from utl.venues import ccxt, deribit, generic, okx
from utl.venues.base import Source, head_text

FIXTURES = Path(__file__).parent / "fixtures"
CCXT = FIXTURES / "ccxt"
MINE = [*okx.FORMATS, *deribit.FORMATS, *ccxt.FORMATS, *generic.FORMATS]


@pytest.fixture(scope="module", autouse=True, params=["msgspec", "compiled scan"])
def reading_path(request):
    """Every test here runs on both ways a file is read: msgspec (files under
    ccxt.SCAN_FROM_BYTES, as these fixtures are) and the compiled scan (large pulls)."""
    kept = ccxt.SCAN_FROM_BYTES
    ccxt.SCAN_FROM_BYTES = kept if request.param == "msgspec" else 0
    yield request.param
    ccxt.SCAN_FROM_BYTES = kept


def source(path: Path, venue: str = "binance") -> Source:
    return Source(path, f"{venue}/mm-1/trades/{path.name}", venue, "mm-1")


def trades(name: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    parsed = ccxt.read_trades(source(CCXT / name))
    assert parsed.frame.schema == FILLS
    return parsed.frame, parsed.quarantine


def by_row(frame: pl.DataFrame) -> dict[int, dict]:
    return {r["source_row"]: r for r in frame.iter_rows(named=True)}


# ---------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("trades.jsonl", "ccxt.trades"),
        ("trades_bad.jsonl", "ccxt.trades"),
        ("ledger.jsonl", "ccxt.ledger"),
        ("balance.json", "ccxt.balance"),
        ("balance_truncated.json", "ccxt.balance"),
    ],
)
def test_each_shape_is_detected_by_exactly_one_format(name: str, expected: str) -> None:
    head = head_text(CCXT / name)
    assert [f.name for f in MINE if f.detect(head)] == [expected]


@pytest.mark.parametrize("path", sorted((FIXTURES / "generic" / "foreign_heads").iterdir()), ids=lambda p: p.name)
def test_other_venues_files_are_not_ccxt(path: Path) -> None:
    head = head_text(path)
    assert not any(f.detect(head) for f in ccxt.FORMATS)


def test_balance_with_a_large_raw_reply_is_detected_from_a_cut_head() -> None:
    # ccxt writes the venue's raw reply first; Binance's lists every asset.
    info = {"balances": [{"asset": f"A{i}", "free": "0.00000000", "locked": "0.00000000"} for i in range(400)]}
    text = json.dumps({"info": info, "free": {"BTC": 1.0}, "used": {"BTC": 0.0}, "total": {"BTC": 1.0}})
    assert len(text.encode()) > 8192
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "2024-03-06.json"
        path.write_text(text)
        head = head_text(path)
        assert [f.name for f in MINE if f.detect(head)] == ["ccxt.balance"]
        parsed = ccxt.read_balance(source(path))
    assert parsed.frame["total"].to_list() == [Decimal("1.0")]


def test_top_level_keys_ignore_nested_keys_and_strings() -> None:
    keys, closed = ccxt.top_level_keys('{"info": {"side": "x", "total": {}}, "a\\"b": "side:", "list": [{"amount": 1}]}')
    assert keys == ['info', 'a\\"b', "list"] and closed
    keys, closed = ccxt.top_level_keys('{"info": {"side": "buy", "am')
    assert keys == ["info"] and not closed


# ---------------------------------------------------------------- trades


def test_doc_trades_parse_exactly() -> None:
    frame, quarantine = trades("trades.jsonl")
    assert quarantine.is_empty()
    first = by_row(frame)[1]
    assert first["trade_id"] == "28457"  # the venue's id as written (ledger.md)
    assert first["order_id"] == "9012345"
    assert first["ts"] == datetime(2024, 3, 5, 9, 15, 2, 123000, tzinfo=timezone.utc)
    assert (first["base"], first["quote"], first["side"], first["liquidity"]) == ("BTC", "USDT", "buy", "maker")
    assert (first["qty"], first["price"], first["quote_qty"]) == (Decimal("0.02"), Decimal("65000.0"), Decimal("1300.0"))
    # `fee` repeats `fees[0]`: counted once
    assert (first["fee"], first["fee_asset"]) == (Decimal("3.1e-05"), "BNB")
    assert first["venue"] == "binance" and first["source_file"] == "binance/mm-1/trades/trades.jsonl"

    perp = by_row(frame)[2]
    assert perp["trade_id"] == "500001"
    assert perp["symbol"] == "BTC/USDT:USDT"
    assert (perp["base"], perp["quote"], perp["side"], perp["qty"]) == ("BTC", "USDT", "sell", Decimal("-0.01"))
    assert (perp["fee"], perp["fee_asset"], perp["liquidity"]) == (Decimal("0.2604"), "USDT", "taker")


def test_fee_sources_and_signs() -> None:
    rows = by_row(trades("trades.jsonl")[0])
    assert (rows[3]["fee"], rows[3]["fee_asset"]) == (Decimal("6.48e-05"), "BTC")  # empty `fees`: from `fee`
    assert rows[3]["order_id"] is None
    assert (rows[4]["fee"], rows[4]["fee_asset"], rows[4]["liquidity"]) == (None, None, None)  # no fee at all
    assert rows[5]["fee"] == Decimal("-0.065")  # negative cost: a rebate
    # `fees` wins over `fee` (0.1); same-currency entries add; a zero BNB entry says nothing
    assert (rows[6]["fee"], rows[6]["fee_asset"]) == (Decimal("0.065"), "USDT")


def test_float_noise_and_exponents_are_kept_exactly() -> None:
    rows = by_row(trades("trades.jsonl")[0])
    assert rows[5]["quote_qty"] == Decimal("650.0000000000001")
    assert rows[5]["qty"] == Decimal("4.642857142857143")


def test_missing_cost_is_amount_times_price_and_iso_time_is_used() -> None:
    row = by_row(trades("trades.jsonl")[0])[6]
    assert row["quote_qty"] == Decimal("0.001") * Decimal("65010.5")
    assert row["ts"] == datetime(2024, 3, 5, 12, 3, 0, 500000, tzinfo=timezone.utc)
    assert row["qty"] == Decimal("-0.001")


def test_option_symbol_splits_into_base_and_quote() -> None:
    row = by_row(trades("trades.jsonl")[0])[7]
    assert (row["symbol"], row["base"], row["quote"], row["trade_id"]) == (
        "BTC/USD:BTC-240628-60000-C", "BTC", "USD", "11")


def test_identical_trades_without_id_get_distinct_ids() -> None:
    rows = by_row(trades("trades.jsonl")[0])
    # line 8 is blank: line numbers stay the file's own
    assert 8 not in rows
    a, b = rows[9]["trade_id"], rows[10]["trade_id"]
    assert a != b
    assert a.endswith("#1") and b.endswith("#2")
    assert rows[9]["price"] == Decimal("0.55")  # numbers written as JSON strings


def test_codes_starting_with_digits() -> None:
    row = by_row(trades("trades.jsonl")[0])[11]
    assert (row["base"], row["quote"], row["qty"]) == ("1INCH", "USDT", Decimal("-1000"))


def test_bad_trade_lines_are_quarantined_and_the_rest_books() -> None:
    frame, quarantine = trades("trades_bad.jsonl")
    got = [(r["row"], r["column"]) for r in quarantine.iter_rows(named=True)]
    assert got == [
        (2, None),
        (3, "side"),
        (4, "amount"),
        (5, "price"),
        (6, "price"),
        (7, "timestamp"),
        (8, "amount"),
        (9, "fees"),
        (10, None),
        (11, None),
        (12, "timestamp"),
        (13, "fee"),
        (14, "symbol"),
    ]
    reasons = dict(zip(quarantine["row"], quarantine["reason"]))
    assert reasons[2].startswith("invalid JSON: ")
    assert reasons[3] == 'unknown side "hold"'
    assert reasons[4] == "amount must be positive (the side gives the sign)"
    assert reasons[6] == '"65,000.0x" is not a decimal'
    assert reasons[7] == '"yesterday" is not a time in ms since 1970'
    assert reasons[8] == '"NaN" is not a decimal'
    assert reasons[9] == "fees in several currencies (1.3 USDT, 0.002 BNB): one fill row carries one fee"
    assert reasons[10].startswith("not a ccxt trade")
    assert reasons[12] == "time outside 2000..2100"
    assert reasons[13] == "fee without a currency"
    assert reasons[14] == '"BTCUSDT" is not a BASE/QUOTE symbol'
    assert dict(zip(quarantine["row"], quarantine["raw"]))[2].startswith('{"id": "2"')
    assert frame["source_row"].to_list() == [1, 15]
    assert frame["qty"].to_list() == [Decimal("0.02"), Decimal("-0.02")]


def test_a_product_too_large_to_compute_is_quarantined_not_fatal() -> None:
    line = ('{"id": "1", "timestamp": 1709630102123, "datetime": null, "symbol": "BTC/USDT", "side": "buy", '
            '"price": 10000000000000, "amount": 100000000, "cost": %s, "fee": null}')
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_text(line % "null" + "\n" + line % "1" + "\n")
        parsed = ccxt.read_trades(source(path))
    assert [(r["row"], r["column"]) for r in parsed.quarantine.iter_rows(named=True)] == [(1, "cost")]
    assert parsed.frame["quote_qty"].to_list() == [Decimal("1")]


# ---------------------------------------------------------------- ledger


def test_ledger_entries_book_signed_changes_and_fees() -> None:
    parsed = ccxt.read_ledger(source(CCXT / "ledger.jsonl", "okx"))
    frame = parsed.frame
    assert frame.schema == MOVEMENTS
    got = [(r["entry_id"], r["kind"], r["asset"], r["qty"], r["ref_id"]) for r in frame.iter_rows(named=True)]
    assert got[:9] == [
        ("L-77", "trade", "USDT", Decimal("-1300.0"), "28457"),
        ("L-78", "fee", "USDT", Decimal("-0.4213"), None),
        ("L-79", "deposit", "BTC", Decimal("0.5"), "0xdeposit"),
        ("L-80", "withdrawal", "BTC", Decimal("-0.1"), "0xwithdrawal"),
        ("L-80/fee", "fee", "BTC", Decimal("-0.0005"), "0xwithdrawal"),
        ("L-83", "trade", "ETH", Decimal("1.5"), "28460"),
        ("L-83/fee", "fee", "BNB", Decimal("-3.1e-05"), "28460"),  # a fee in another asset is its own change
        ("L-84", "rebate", "USDT", Decimal("0.01"), None),
        ("L-85", "funding", "USDT", Decimal("-0.0421"), None),
    ]
    unnamed, interest = got[9], got[10]
    assert unnamed[1:4] == ("transfer", "USDT", Decimal("1e-08")) and unnamed[0].endswith("#1")
    assert interest == ("L-90", "interest", "USDC", Decimal("1.25"), None)  # a zero fee books nothing
    assert len(got) == 11
    assert frame["description"].to_list()[0] == "trade"
    assert frame["ts"].to_list()[0] == datetime(2024, 3, 5, 9, 15, 2, 123000, tzinfo=timezone.utc)


def test_unsettled_and_bad_ledger_entries_are_quarantined() -> None:
    quarantine = ccxt.read_ledger(source(CCXT / "ledger.jsonl")).quarantine
    got = [(r["row"], r["column"], r["reason"]) for r in quarantine.iter_rows(named=True)]
    assert got[:3] == [
        (5, "status", "status pending: not booked"),
        (6, "status", "status canceled: not booked"),
        (10, "direction", 'unknown direction "sideways"'),
    ]
    assert got[3][:2] == (11, None) and got[3][2].startswith("invalid JSON")
    assert got[4] == (12, "status", "status missing: not booked")
    assert len(got) == 5


# ---------------------------------------------------------------- balance


def test_balance_uses_the_total_map() -> None:
    parsed = ccxt.read_balance(source(CCXT / "balance.json"))
    assert parsed.frame.schema == BALANCES
    assert [(r["asset"], r["total"], r["source_row"]) for r in parsed.frame.iter_rows(named=True)] == [
        ("BTC", Decimal("0.62"), 1),
        ("USDT", Decimal("1200.0"), 2),
        ("PEPE", Decimal("12345678.9"), 4),
        ("DUST", Decimal("1e-08"), 5),
    ]
    assert [(r["row"], r["column"], r["reason"]) for r in parsed.quarantine.iter_rows(named=True)] == [
        (3, "total", "total is null: the venue did not report it"),
        (6, "total", '"12x" is not a decimal'),
    ]


def test_a_balance_that_is_not_json_fails_the_file() -> None:
    with pytest.raises(ValueError, match="invalid JSON"):
        ccxt.read_balance(source(CCXT / "balance_truncated.json"))


def test_a_balance_without_total_fails_the_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.json"
        path.write_text('{"info": {}, "free": {"BTC": 1}, "used": {"BTC": 0}}')
        with pytest.raises(ValueError, match="'total' map"):
            ccxt.read_balance(source(path))


# ---------------------------------------------------------------- properties

_amount = st.decimals(min_value=Decimal("1e-18"), max_value=Decimal("1e15"), places=18, allow_nan=False, allow_infinity=False)


def _json_number(value: Decimal, style: str) -> str:
    """How Python's float repr might write a number: plain, or with an exponent."""
    if style == "plain":
        return f"{value:f}"
    with localcontext(prec=80):  # normalize() would round to the default 28 digits
        mantissa, exponent = f"{value.normalize():e}".split("e")
    return f"{mantissa}e{int(exponent):+03d}" if style == "exp" else f"{mantissa}E{int(exponent)}"


@settings(max_examples=80, deadline=None)
@given(amount=_amount, price=_amount, fees=st.lists(_amount, min_size=1, max_size=3), style=st.sampled_from(["plain", "exp", "EXP"]))
def test_json_numbers_round_trip_exactly(amount: Decimal, price: Decimal, fees: list[Decimal], style: str) -> None:
    amount_text, price_text = _json_number(amount, style), _json_number(price, style)
    fee_texts = [_json_number(f, style) for f in fees]
    fee_list = ", ".join(f'{{"cost": {t}, "currency": "USDT"}}' for t in fee_texts)
    record = (
        # A perpetual, whose stated cost is not checked against amount × price (no contractSize):
        # here every number only has to round-trip.
        f'{{"id": "1", "timestamp": 1709630102123, "datetime": null, "symbol": "BTC/USDT:USDT", "side": "sell", '
        f'"price": {price_text}, "amount": {amount_text}, "cost": {price_text}, "fees": [{fee_list}]}}'
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.jsonl"
        path.write_text(record + "\n")
        parsed = ccxt.read_trades(source(path))
    assert parsed.quarantine.is_empty(), parsed.quarantine.to_dicts()
    row = parsed.frame.row(0, named=True)
    assert row["qty"] == Decimal(amount_text).copy_negate()
    assert row["price"] == row["quote_qty"] == Decimal(price_text)
    with localcontext(prec=80):
        assert row["fee"] == sum((Decimal(t) for t in fee_texts), Decimal(0))


def test_a_stated_cost_that_is_not_amount_times_price_is_refused(tmp_path: Path) -> None:
    line = ('{"id": "1", "timestamp": 1709630102123, "datetime": "2024-03-05T09:15:02.123Z", "symbol": "BTC/USDT", '
            '"side": "buy", "amount": 0.0001, "price": 73260.86, "cost": 1.364985341e-9, "fee": null}\n'
            '{"id": "2", "timestamp": 1709630102123, "datetime": "2024-03-05T09:15:02.123Z", "symbol": "BTC/USDT", '
            '"side": "buy", "amount": 0.0001, "price": 73260.86, "cost": 7.326086, "fee": null}\n'
            '{"id": "3", "timestamp": 1709630102123, "datetime": "2024-03-05T09:15:02.123Z", "symbol": "BTC/USDT", '
            '"side": "buy", "amount": 0.0001, "price": 73260.86, "cost": 7.3260865, "fee": null}\n')
    path = tmp_path / "pull.jsonl"
    path.write_text(line)
    parsed = ccxt.read_trades(Source(path=path, rel="binance/a/trades/pull.jsonl", venue="binance", account="a"))
    # 7.3260865 is off by 6.8e-8 relative: within 1e-6, booked as stated.
    assert parsed.frame["trade_id"].to_list() == ["2", "3"]
    refused = parsed.quarantine.row(0, named=True)
    assert (refused["row"], refused["column"], refused["raw"]) == (1, "cost", "1.364985341e-9")
    assert "7.326086" in refused["reason"] and "1.364985341e-9" in refused["reason"]


def _text_buffer_bytes(frame: pl.DataFrame) -> int:
    """Bytes of the data buffers behind the frame's text columns (Arrow string views)."""
    total = 0
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            array = frame[name].to_arrow(compat_level=pl.CompatLevel.newest())  # the views as they are
            total += sum(b.size for b in array.buffers()[2:] if b is not None)
    return total


def test_what_a_reader_returns_holds_no_view_into_the_file() -> None:
    """The scan's text columns point into the file's bytes; one row kept with them would keep
    the whole file in memory, so the frames returned own their text."""
    padding = "x" * 5000
    good = '{"id": "t%d", "order": "o-000000000000%d", "symbol": "BTC/USDT", "side": "buy", "price": 1.5, "amount": 2, "timestamp": 1709630102123, "info": {"pad": "%s"}}'
    bad = '{"id": "b%d", "symbol": "BTCUSDT", "side": "buy", "price": 1, "amount": 1, "timestamp": 1709630102123, "info": {"pad": "%s"}}'
    lines = [good % (k, k, padding) for k in range(200)] + [bad % (k, padding) for k in range(3)]
    entries = ['{"id": "e%d", "direction": "in", "referenceId": "r-00000000000%d", "currency": "USDT", "amount": 1, "status": "ok", "timestamp": 1709630102123, "type": "trade", "info": {"pad": "%s"}}' % (k, k, padding) for k in range(200)]
    with tempfile.TemporaryDirectory() as tmp:
        for name, text, read in [("t.jsonl", lines, ccxt.read_trades), ("l.jsonl", entries, ccxt.read_ledger)]:
            path = Path(tmp) / name
            path.write_text("\n".join(text) + "\n")
            read(source(path))  # caches filled on a first read are not what is held
            tracemalloc.start()  # the file's bytes are a Python object: traced while alive
            try:
                parsed = read(source(path))
                gc.collect()
                held, _ = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert parsed.frame.height == 200
            assert held < path.stat().st_size / 2
            for frame in (parsed.frame, parsed.quarantine):
                assert _text_buffer_bytes(frame) < path.stat().st_size / 10
