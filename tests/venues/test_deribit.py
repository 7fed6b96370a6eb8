"""Deribit transaction log: detection of all four headers, exact cash movements, quarantine."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.schemas import MOVEMENTS
from utl.venues import ccxt, deribit, generic, okx
from utl.venues.base import Source, head_text

FIXTURES = Path(__file__).parent / "fixtures"
DERIBIT = FIXTURES / "deribit"
MINE = [*okx.FORMATS, *deribit.FORMATS, *ccxt.FORMATS, *generic.FORMATS]
HEADER = "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note"


def read(name: str, path: Path | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    path = path or DERIBIT / name
    parsed = deribit.read_transaction_log(Source(path, f"deribit/main/trades/{name}", "deribit", "main"))
    assert parsed.frame.schema == MOVEMENTS
    return parsed.frame, parsed.quarantine


def rows(frame: pl.DataFrame) -> list[tuple]:
    return [(r["entry_id"], r["kind"], r["asset"], r["qty"]) for r in frame.iter_rows(named=True)]


@pytest.mark.parametrize("path", sorted(DERIBIT.iterdir()), ids=lambda p: p.name)
def test_every_header_version_is_detected_by_deribit_only(path: Path) -> None:
    head = head_text(path)
    assert [f.name for f in MINE if f.detect(head)] == ["deribit.transaction_log"]


def test_the_four_versions_are_all_covered() -> None:
    seen = {tuple(head_text(p).splitlines()[0].split(",")) for p in DERIBIT.iterdir()}
    assert set(deribit.HEADERS) <= seen


@pytest.mark.parametrize("path", sorted((FIXTURES / "generic" / "foreign_heads").iterdir()), ids=lambda p: p.name)
def test_other_venues_headers_are_not_deribit(path: Path) -> None:
    assert not deribit.FORMATS[0].detect(head_text(path))


def test_a_header_missing_a_column_is_not_detected() -> None:
    assert not deribit.is_transaction_log(HEADER.replace(",Funding", "") + "\n")


def test_current_log_splits_change_into_pnl_funding_and_fee() -> None:
    frame, quarantine = read("transaction_log-4242-BTC-2024.csv")
    assert quarantine.is_empty()
    assert rows(frame) == [
        ("BTC:90001", "deposit", "BTC", Decimal("0.5")),
        ("BTC:90002/fee", "fee", "BTC", Decimal("-0.00007692")),
        # settlement: Cash Flow 0.00116996 = PnL 0.00117426 + funding -0.0000043
        ("BTC:90003", "realized_pnl", "BTC", Decimal("0.00117426")),
        ("BTC:90003/funding", "funding", "BTC", Decimal("-0.0000043")),
        # negative Fee Charged is a rebate: it adds to cash
        ("BTC:90004/fee", "fee", "BTC", Decimal("0.00001527")),
        # option premium is a trade leg, not PnL
        ("BTC:90005", "trade", "BTC", Decimal("-0.085")),
        ("BTC:90005/fee", "fee", "BTC", Decimal("-0.0003")),
        # fee taken from the fee balance: Change = Cash Flow, no cash fee
        ("BTC:90006", "realized_pnl", "BTC", Decimal("0.00002")),
        ("BTC:90007", "withdrawal", "BTC", Decimal("-0.1")),
        ("BTC:90007/fee", "fee", "BTC", Decimal("-0.0001")),
        ("BTC:90008", "transfer", "BTC", Decimal("-0.01")),
        ("BTC:90009", "other", "BTC", Decimal("0.00000001")),
    ]


def test_movements_of_each_row_sum_to_its_change() -> None:
    for name in ["transaction_log-4242-BTC-2024.csv", "transaction_log-4242-ETH-previous.csv",
                 "transaction_log-77-USDC-older.csv", "transaction_log-77-BTC-oldest.csv"]:
        frame, _ = read(name)
        raw = pl.read_csv(DERIBIT / name, infer_schema=False).with_row_index("source_row", offset=1)
        expected = {r["source_row"]: Decimal(r["Change"]) for r in raw.iter_rows(named=True)}
        sums = frame.group_by("source_row").agg(pl.col("qty").sum())
        assert {r["source_row"]: r["qty"] for r in sums.iter_rows(named=True)} == expected, name


def test_ids_times_and_descriptions() -> None:
    frame, _ = read("transaction_log-4242-BTC-2024.csv")
    by_id = {r["entry_id"]: r for r in frame.iter_rows(named=True)}
    assert by_id["BTC:90002/fee"]["ref_id"] == "300001"
    assert by_id["BTC:90001"]["ref_id"] is None
    assert by_id["BTC:90002/fee"]["ts"] == datetime(2024, 3, 5, 9, 15, 2, tzinfo=timezone.utc)
    assert by_id["BTC:90002/fee"]["description"] == "trade open buy BTC-PERPETUAL @ 65000"
    assert by_id["BTC:90001"]["description"] == "deposit bc1qexampleaddress0000"
    assert by_id["BTC:90009"]["source_row"] == 9
    assert frame["entry_id"].is_unique().all()


def test_currency_comes_from_the_file_name() -> None:
    eth, _ = read("transaction_log-4242-ETH-previous.csv")
    assert set(eth["asset"]) == {"ETH"}
    assert rows(eth) == [
        ("ETH:80001", "realized_pnl", "ETH", Decimal("-0.0025")),
        ("ETH:80001/funding", "funding", "ETH", Decimal("0.0004")),
        ("ETH:80002", "realized_pnl", "ETH", Decimal("0.0028")),
        ("ETH:80002/fee", "fee", "ETH", Decimal("-0.00026455")),
    ]
    usdc, _ = read("transaction_log-77-USDC-older.csv")
    assert rows(usdc) == [
        ("USDC:70001/fee", "fee", "USDC", Decimal("-0.4")),
        ("USDC:70002", "realized_pnl", "USDC", Decimal("5")),
        ("USDC:70002/funding", "funding", "USDC", Decimal("0.0625")),
        ("USDC:70003", "trade", "USDC", Decimal("-200")),  # BTC_USDC spot leg
    ]
    oldest, _ = read("transaction_log-77-BTC-oldest.csv")
    assert rows(oldest) == [
        ("BTC:60001", "deposit", "BTC", Decimal("1")),
        ("BTC:60002/fee", "fee", "BTC", Decimal("-0.00001041")),
    ]


def test_currency_names_in_file_names() -> None:
    assert deribit.currency_from_name("transaction_log-4242-BTC-2024.csv") == "BTC"
    assert deribit.currency_from_name("transaction_log-4242-usdt-2024-03-01.csv") == "USDT"
    assert deribit.currency_from_name("transaction_log-4242-ETH.csv") == "ETH"
    assert deribit.currency_from_name("deribit-export.csv") is None


def test_unknown_currency_refuses_every_row() -> None:
    frame, quarantine = read("export.csv")
    assert frame.is_empty()
    assert quarantine["row"].to_list() == [1, 2]
    assert quarantine["column"].to_list() == [None, None]
    assert all(r.startswith("currency unknown") for r in quarantine["reason"])


def test_bad_rows_are_quarantined_and_the_rest_books() -> None:
    frame, quarantine = read("transaction_log-4242-BTC-bad.csv")
    assert [(r["row"], r["column"], r["reason"]) for r in quarantine.iter_rows(named=True)] == [
        (2, "Change", '"0.5x" is not a decimal'),
        (3, "Date", '"05/03/2024 09:02" is not a time like 2024-03-05 09:15:02'),
        (4, "ID", "missing ID: it is the row key"),
        (5, "Cash Flow", '"abc" is not a decimal'),
        (6, "Funding", '"1.2.3" is not a decimal'),
        (7, "Change", "missing value"),
    ]
    assert quarantine["raw"].to_list()[0] == "0.5x"
    assert rows(frame) == [("BTC:91001", "deposit", "BTC", Decimal("0.5")), ("BTC:91008", "deposit", "BTC", Decimal("0.25"))]


_amount = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=18, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(change=_amount, fee=_amount, style=st.sampled_from(["plain", "exponent"]))
def test_change_round_trips_and_parts_sum_exactly(change: Decimal, fee: Decimal, style: str) -> None:
    """Change = Cash Flow − fee on a trade; the booked parts add back to Change exactly."""
    with localcontext(prec=60):  # Python's default 28 digits would round the sum
        cash_flow = change + fee
    fmt = (lambda d: f"{d:f}") if style == "plain" else (lambda d: f"{d:E}")
    line = f"1,1,2024-03-05 09:15:02,BTC-PERPETUAL,trade,close sell,10,0.1,0,65000,65000,65000,{fmt(cash_flow)},0,0.0005,{fmt(fee)},0,{fmt(change)},1,1,7,8,,"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "transaction_log-1-BTC-x.csv"
        path.write_text(HEADER + "\n" + line + "\n")
        frame, quarantine = read(path.name, path)
    assert quarantine.is_empty()
    by_kind = dict(zip(frame["kind"], frame["qty"]))
    assert by_kind.get("fee", Decimal(0)) == Decimal(fmt(fee)).copy_negate()
    with localcontext(prec=60):
        assert sum(frame["qty"].to_list(), Decimal(0)) == Decimal(fmt(change))
