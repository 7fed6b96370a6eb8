"""Python's decimal arithmetic runs in the thread's context, 28 digits unless widened, and a
quantity or amount can have 38 (20 before the point, 18 after): every sum, negation, absolute
value and normalization of one is done in a wide context. These run the code in the 28 digits
a thread starts with (a conftest widens the tests' own main thread)."""

from __future__ import annotations

import datetime as dt
from decimal import Context, Decimal, localcontext

import polars as pl

from utl.ops.pnl import PNL_COLUMNS, _total_cells
from utl.report.formatting import quantity
from utl.stream.publish import ccxt_trades

WIDE = "12345678901.123456789012345678"  # 29 digits


def test_a_quantity_for_reading_keeps_every_digit():
    with localcontext(Context()):
        assert quantity(Decimal(WIDE)) == "12,345,678,901.123456789012345678"
        assert quantity(Decimal("-" + WIDE + "0")) == "-12,345,678,901.123456789012345678"


def test_a_books_pnl_total_is_rounded_to_cents_once():
    # 10000000000.014999999999999990 + 0.000000000000000005: exactly ...0.014999999999999995,
    # one cent; rounded first to 28 digits it reads ...0.015, two.
    values = {c: [Decimal(0)] for c in PNL_COLUMNS}
    values["total_pnl"], values["trade_residual"] = [Decimal("10000000000.014999999999999990")], [Decimal("0.000000000000000005")]
    frame = pl.DataFrame(values, schema={c: pl.Decimal(38, 18) for c in PNL_COLUMNS})
    with localcontext(Context()):
        cells = _total_cells(frame)
    assert cells[-1] == "10,000,000,000.01"


def test_a_published_fill_states_its_amount_to_the_last_digit():
    fills = pl.DataFrame([{
        "venue": "binance", "account": "mm1", "base": "SHIB", "quote": "USDT", "trade_id": "SHIB/USDT:7", "order_id": None,
        "ts": dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc), "qty": Decimal("-" + WIDE), "price": Decimal("0.000012345678901234"),
        "quote_qty": Decimal("152415.787517146776"), "fee": None, "fee_asset": None, "liquidity": None,
        "source_file": "f.csv", "source_row": 1,
    }], schema_overrides={"qty": pl.Decimal(38, 18), "price": pl.Decimal(38, 18), "quote_qty": pl.Decimal(38, 18),
                          "fee": pl.Decimal(38, 18), "order_id": pl.String, "fee_asset": pl.String, "liquidity": pl.String})
    with localcontext(Context()):
        (_, _, body), = ccxt_trades(fills)
    assert b'"amount": "' + WIDE.encode() + b'"' in body and b'"side": "sell"' in body


def test_a_break_worth_a_hair_more_than_the_escalation_value_escalates():
    from utl.report.escalation import is_escalated

    with localcontext(Context()):
        assert is_escalated(0, Decimal("-10000000000.000000000000000001"), 3, Decimal("10000000000"))
        assert not is_escalated(0, Decimal("-10000000000.000000000000000000"), 3, Decimal("10000000000"))
