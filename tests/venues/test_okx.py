"""OKX Trading and Funding account history: detection, exact movements, quarantine."""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.schemas import MOVEMENTS
from utl.venues import ccxt, deribit, generic, okx
from utl.venues.base import Source, head_text

BOM = "\ufeff"
FIXTURES = Path(__file__).parent / "fixtures"
OKX = FIXTURES / "okx"
MINE = [*okx.FORMATS, *deribit.FORMATS, *ccxt.FORMATS, *generic.FORMATS]


def read(name: str, fmt=None) -> tuple[pl.DataFrame, pl.DataFrame]:
    path = OKX / name
    fmt = fmt or next(f for f in okx.FORMATS if f.detect(head_text(path)))
    parsed = fmt.read(Source(path, f"okx/main/trades/{name}", "okx", "main"))
    assert parsed.frame.schema == MOVEMENTS
    return parsed.frame, parsed.quarantine


def rows(frame: pl.DataFrame) -> list[tuple]:
    return [(r["entry_id"], r["kind"], r["asset"], r["qty"]) for r in frame.iter_rows(named=True)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("trading_current.csv", "okx.trading_account"),
        ("trading_units.csv", "okx.trading_account"),
        ("trading_previous.csv", "okx.trading_account"),
        ("trading_no_zone.csv", "okx.trading_account"),
        ("trading_bad.csv", "okx.trading_account"),
        ("funding_current.csv", "okx.funding_account"),
        ("funding_previous.csv", "okx.funding_account"),
        ("funding_unnamed.csv", "okx.funding_account"),
    ],
)
def test_each_version_is_detected_by_exactly_one_format(name: str, expected: str) -> None:
    head = head_text(OKX / name)
    assert [f.name for f in MINE if f.detect(head)] == [expected]


def test_header_without_preamble_is_still_detected() -> None:
    head = "id,Time,Type,Amount,Before Balance,After Balance,Symbol\n1,2024-03-04 12:00:00,Deposit,1,0,1,BTC\n"
    assert [f.name for f in okx.FORMATS if f.detect(head)] == ["okx.funding_account"]


@pytest.mark.parametrize("path", sorted((FIXTURES / "generic" / "foreign_heads").iterdir()), ids=lambda p: p.name)
def test_other_venues_headers_are_not_okx(path: Path) -> None:
    head = head_text(path)
    assert not any(f.detect(head) for f in okx.FORMATS)


def test_trading_account_books_each_bill_with_fee_split_out() -> None:
    frame, quarantine = read("trading_current.csv")
    assert quarantine.is_empty()
    assert rows(frame) == [
        ("710000000000000001", "transfer", "USDT", Decimal("1000")),
        # received leg: Balance Change 0.00999 = Amount 0.01 + Fee -0.00001
        ("710000000000000002", "trade", "BTC", Decimal("0.01")),
        ("710000000000000002/fee", "fee", "BTC", Decimal("-0.00001")),
        ("710000000000000003", "trade", "USDT", Decimal("-650")),
        ("710000000000000004", "trade", "ETH", Decimal("-0.5")),
        ("710000000000000005", "trade", "USDT", Decimal("1750")),
        ("710000000000000005/fee", "fee", "USDT", Decimal("-1.75")),
        # opening a perp moves only the fee
        ("710000000000000006/fee", "fee", "USDT", Decimal("-0.3255")),
        ("710000000000000007", "funding", "USDT", Decimal("-0.0421")),
        ("710000000000000008", "realized_pnl", "USDT", Decimal("4")),
        ("710000000000000008/fee", "fee", "USDT", Decimal("-0.3275")),
        # a positive fee is a rebate: it adds to the balance
        ("710000000000000009", "trade", "OKB", Decimal("2")),
        ("710000000000000009/fee", "fee", "OKB", Decimal("0.0001")),
        ("710000000000000010", "trade", "USDT", Decimal("-100")),
        ("710000000000000011", "transfer", "USDT", Decimal("-1.5549")),
    ]


def test_movements_of_a_bill_sum_to_its_balance_change() -> None:
    frame, _ = read("trading_current.csv")
    raw = pl.read_csv(OKX / "trading_current.csv", skip_rows=1, infer_schema=False)
    expected = {r["id"].lstrip("\ufeff"): Decimal(r["Balance Change"]) for r in raw.iter_rows(named=True)}
    sums = frame.group_by(pl.col("entry_id").str.replace("/fee$", "")).agg(pl.col("qty").sum())
    assert {r["entry_id"]: r["qty"] for r in sums.iter_rows(named=True)} == expected


def test_trading_times_are_shifted_from_the_preamble_zone() -> None:
    frame, _ = read("trading_current.csv")
    by_id = {r["entry_id"]: r for r in frame.iter_rows(named=True)}
    assert by_id["710000000000000002"]["ts"] == utc(2024, 3, 5, 9, 15, 2)
    assert by_id["710000000000000007"]["ts"] == utc(2024, 3, 5, 16, 0, 0)
    units, _ = read("trading_units.csv")  # UTC-5
    assert units["ts"].to_list()[0] == utc(2024, 3, 5, 9, 15, 2)


def test_fill_detail_is_kept_in_ref_id_and_description() -> None:
    frame, _ = read("trading_current.csv")
    by_id = {r["entry_id"]: r for r in frame.iter_rows(named=True)}
    buy = by_id["710000000000000002"]
    assert buy["ref_id"] == "690000000000000001"
    assert buy["description"] == "Spot Buy BTC-USDT @ 65000"
    assert by_id["710000000000000003"]["ref_id"] == by_id["710000000000000002/fee"]["ref_id"] == "690000000000000001"
    assert by_id["710000000000000001"]["ref_id"] is None
    assert by_id["710000000000000001"]["description"] == "Transfer Transfer in"
    assert (frame["source_file"] == "okx/main/trades/trading_current.csv").all()
    assert frame.filter(pl.col("entry_id") == "710000000000000011")["source_row"].item() == 11


def test_nineteen_column_variant_reads_by_name() -> None:
    frame, quarantine = read("trading_units.csv")
    assert quarantine.is_empty()
    assert rows(frame) == [
        ("720000000000000001", "trade", "SOL", Decimal("3")),
        ("720000000000000001/fee", "fee", "SOL", Decimal("-0.003")),
        ("720000000000000002", "trade", "USDC", Decimal("-421.5")),
        ("720000000000000003", "transfer", "USDC", Decimal("1000")),  # "1,000" quoted
    ]


def test_previous_layout_keys_legs_by_id_and_balance_unit() -> None:
    frame, quarantine = read("trading_previous.csv")
    assert quarantine.is_empty()
    assert rows(frame) == [
        ("5001:BTC", "trade", "BTC", Decimal("0.02")),
        ("5001:BTC/fee", "fee", "BTC", Decimal("-0.00002")),
        ("5001:USDT", "trade", "USDT", Decimal("-400")),
    ]
    assert frame["entry_id"].is_unique().all()
    assert frame["ts"].to_list()[0] == utc(2023, 1, 10, 10, 0, 0)


def test_missing_time_zone_refuses_every_row() -> None:
    frame, quarantine = read("trading_no_zone.csv")
    assert frame.is_empty()
    assert quarantine["row"].to_list() == [1, 2]
    assert set(quarantine["column"]) == {"Time"}
    assert all("time zone unknown" in r for r in quarantine["reason"])


def test_bad_trading_rows_are_quarantined_and_the_rest_books() -> None:
    frame, quarantine = read("trading_bad.csv")
    assert [(r["row"], r["column"]) for r in quarantine.iter_rows(named=True)] == [
        (2, "Balance Change"),
        (3, "Time"),
        (4, "id"),
        (5, "Fee"),
        (6, "Balance Unit"),
        (7, "Time"),
        (8, "Balance Change"),
    ]
    reasons = dict(zip(quarantine["row"], quarantine["reason"]))
    assert reasons[2] == '"12x" is not a decimal'
    assert reasons[5] == '"abc" is not a decimal'
    assert reasons[7] == "time outside 2000..2100"
    assert reasons[8] == "missing value"
    assert dict(zip(quarantine["row"], quarantine["raw"]))[3] == "2024/03/05 17:02"
    assert (quarantine["file"] == "okx/main/trades/trading_bad.csv").all()
    assert frame["source_row"].to_list() == [1, 9]
    assert frame["qty"].to_list() == [Decimal("1000"), Decimal("-4")]


def test_funding_account_rows() -> None:
    frame, quarantine = read("funding_current.csv")
    assert quarantine.is_empty()
    assert rows(frame) == [
        ("10021300001", "deposit", "BTC", Decimal("0.5")),
        ("10021300002", "transfer", "BTC", Decimal("-0.1")),
        ("10021300003", "withdrawal", "BTC", Decimal("-0.4")),
        ("10021300004", "interest", "ETH", Decimal("0.000123456789012345")),
        ("10021300005", "rebate", "USDT", Decimal("1.5")),
        ("10021300006", "transfer", "USDT", Decimal("-1.5")),
        ("10021300007", "other", "DOGS", Decimal("25")),
        ("10021300008", "transfer", "BTC", Decimal("2.5E-7")),
    ]
    assert frame["description"].to_list()[2] == "Withdrawal"
    assert frame["ts"].to_list()[0] == utc(2024, 3, 4, 4, 0, 0)


def test_funding_fee_column_is_described_not_booked_twice() -> None:
    frame, quarantine = read("funding_previous.csv")
    assert rows(frame) == [
        ("20021300001", "deposit", "USDT", Decimal("100")),
        ("20021300002", "withdrawal", "USDT", Decimal("-51")),
    ]
    assert frame["description"].to_list() == ["Deposit", "Withdrawal (fee 1)"]
    assert [(r["row"], r["column"], r["reason"]) for r in quarantine.iter_rows(named=True)] == [
        (3, "Amount", '"-x" is not a decimal'),
        (4, "Symbol", "missing asset"),
    ]


def test_funding_variant_with_unnamed_column() -> None:
    frame, quarantine = read("funding_unnamed.csv")
    assert quarantine.is_empty()
    assert rows(frame) == [
        ("30021300001", "deposit", "ETH", Decimal("2")),
        ("30021300002", "transfer", "ETH", Decimal("0.75")),
    ]


def test_zone_offsets() -> None:
    assert okx.zone_offset_minutes("UID:1,Account Type:Main,Time Zone:UTC+8") == 480
    assert okx.zone_offset_minutes("UID:1,Time Zone:UTC-5") == -300
    assert okx.zone_offset_minutes("UID:1,Time Zone:UTC+05:30") == 330
    assert okx.zone_offset_minutes("UID:1,Time Zone:UTC") == 0
    assert okx.zone_offset_minutes("UID:1,Time Zone:Asia/Shanghai") is None
    assert okx.zone_offset_minutes("UID:1,Account Type:Main") is None


def test_a_row_with_more_cells_than_the_header_fails_the_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.csv"
        path.write_text("UID:1,Time Zone:UTC+8\nid,Time,Type,Amount,Before Balance,After Balance,Symbol\n1,2024-03-04 12:00:00,Deposit,1,0,1,BTC,extra\n")
        with pytest.raises(ValueError, match="x.csv: not a well-formed CSV"):
            okx.read_funding(Source(path, "x.csv", "okx", "main"))


_decimal_text = st.decimals(min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=18, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(value=_decimal_text, style=st.sampled_from(["plain", "exponent", "padded"]), bom=st.booleans())
def test_funding_amount_text_round_trips_exactly(value: Decimal, style: str, bom: bool) -> None:
    text = {"plain": f"{value:f}", "exponent": f"{value:E}", "padded": f"{value:.18f}"}[style]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_text(
            "\ufeffUID:1,\ufeffTime Zone:UTC+8\nid,Time,Type,Amount,Before Balance,After Balance,Symbol\n"
            f"{BOM if bom else ''}1,2024-03-04 12:00:00,Deposit,{text},0,0,BTC\n",
            encoding="utf-8",
        )
        parsed = okx.read_funding(Source(path, "f.csv", "okx", "main"))
    assert parsed.quarantine.is_empty()
    assert parsed.frame["qty"].item() == Decimal(text)


# Issue 17: a trading or funding export re-saved without its `UID:`/`Time Zone:` preamble line
# (okx.md §1, §2: the same header, line 1 gone). The zone then comes from utl.toml [timezones].
@pytest.mark.parametrize("name", ["trading_resaved.csv", "funding_resaved.csv"])
def test_a_resaved_export_takes_its_zone_from_the_settings(name: str) -> None:
    path = OKX / name
    fmt = next(f for f in okx.FORMATS if f.detect(head_text(path)))
    parsed = fmt.read(Source(path, f"okx/main/trades/{name}", "okx", "main", timezone="UTC+8"))
    assert parsed.quarantine.height == 0 and parsed.frame.height > 0
    # 17:15:02 / 12:00:00 at UTC+8 (the original preamble's zone)
    assert parsed.frame["ts"][0] in (utc(2024, 3, 5, 9, 0, 0), utc(2024, 3, 4, 4, 0, 0))


@pytest.mark.parametrize("name", ["trading_resaved.csv", "funding_resaved.csv"])
def test_a_resaved_export_without_a_zone_setting_says_where_the_zone_is_missing(name: str) -> None:
    frame, quarantine = read(name)
    assert frame.height == 0 and quarantine.height > 0
    assert set(quarantine["reason"]) == {
        'time zone unknown: the file has no preamble line (Time Zone:UTC+8) and utl.toml [timezones] has no "okx/main"'
    }


def test_a_zone_setting_that_is_no_zone_is_named() -> None:
    path = OKX / "funding_resaved.csv"
    parsed = okx.FORMATS[1].read(Source(path, "okx/main/trades/f.csv", "okx", "main", timezone="Asia/Shanghai"))
    assert parsed.frame.height == 0
    assert 'utl.toml [timezones] "okx/main" = "Asia/Shanghai" is not like "UTC+8"' in parsed.quarantine["reason"][0]


def test_the_preamble_zone_wins_over_the_setting() -> None:
    path = OKX / "trading_current.csv"
    parsed = okx.FORMATS[0].read(Source(path, "okx/main/trades/t.csv", "okx", "main", timezone="UTC-5"))
    assert parsed.frame["ts"][0] == utc(2024, 3, 5, 9, 0, 0)


# ---------------------------------------------------------------- OKEx 2020 trade history (issue 17)


def test_okex_2020_is_detected_alone_and_books_each_row_with_its_fee() -> None:
    head = head_text(OKX / "okex_2020.csv")
    assert [f.name for f in MINE if f.detect(head)] == ["okx.okex_2020_trades"]
    frame, quarantine = read("okex_2020.csv")
    assert quarantine.is_empty()
    booked = [(r["kind"], r["asset"], r["qty"], r["ts"]) for r in frame.iter_rows(named=True)]
    # CST is UTC+8; direction from `type`, never from the written sign; the fee off the received row.
    assert booked == [
        ("trade", "BTC", Decimal("0.05"), utc(2020, 6, 5, 3, 13, 34)),
        ("fee", "BTC", Decimal("-0.0001"), utc(2020, 6, 5, 3, 13, 34)),
        ("trade", "USDT", Decimal("-485.5"), utc(2020, 6, 5, 3, 13, 34)),
        ("trade", "BTC", Decimal("-0.02"), utc(2020, 6, 6, 1, 0)),
        ("trade", "USDT", Decimal("195.2"), utc(2020, 6, 6, 1, 0)),
        ("fee", "USDT", Decimal("-0.1952"), utc(2020, 6, 6, 1, 0)),
    ]
    # Each asset's movements end at the fixture's own running balance (from 0 BTC, 1000 USDT).
    sums = frame.group_by("asset").agg(pl.col("qty").sum()).sort("asset").rows()
    assert sums == [("BTC", Decimal("0.0299")), ("USDT", Decimal("709.5048") - 1000)]
    assert frame["entry_id"].n_unique() == frame.height


def test_okex_2020_bare_times_take_the_toml_zone_or_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "okex.csv"
    path.write_text("time,type,size,balance,fee,currency\n2020-06-05 11:13:34,buy,1,1,0,BTC\n")
    unzoned = okx.read_okex_2020(Source(path, "okx/main/trades/okex.csv", "okx", "main"))
    assert unzoned.frame.is_empty()
    assert unzoned.quarantine["reason"].to_list() == [
        'time zone unknown: "2020-06-05 11:13:34" names none (2020-06-05 11:13:34 CST) and utl.toml '
        '[timezones] has no "okx/main"']
    zoned = okx.read_okex_2020(Source(path, "okx/main/trades/okex.csv", "okx", "main", timezone="UTC-5"))
    assert zoned.quarantine.is_empty() and zoned.frame["ts"].to_list() == [utc(2020, 6, 5, 16, 13, 34)]
