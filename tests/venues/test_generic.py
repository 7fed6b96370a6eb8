"""The `asset,total` balance CSV, and the all-text CSV read the CSV readers share."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.schemas import BALANCES
from utl.venues import ccxt, deribit, generic, okx
from utl.venues.base import Source, head_text

FIXTURES = Path(__file__).parent / "fixtures"
GENERIC = FIXTURES / "generic"
MINE = [*okx.FORMATS, *deribit.FORMATS, *ccxt.FORMATS, *generic.FORMATS]


def read(path: Path):
    parsed = generic.read_balance_csv(Source(path, f"kraken/main/balances/{path.name}", "kraken", "main"))
    assert parsed.frame.schema == BALANCES
    return parsed.frame, parsed.quarantine


@pytest.mark.parametrize("name", ["balance_quoted.csv", "balance_plain.csv", "balance_empty.csv"])
def test_balance_csv_is_detected_by_generic_only(name: str) -> None:
    head = head_text(GENERIC / name)
    assert [f.name for f in MINE if f.detect(head)] == ["generic.balance_csv"]


@pytest.mark.parametrize("path", sorted((GENERIC / "foreign_heads").iterdir()), ids=lambda p: p.name)
def test_other_files_are_not_a_balance_csv(path: Path) -> None:
    assert not generic.is_balance_csv(head_text(path))


@pytest.mark.parametrize("head", ["asset,price\nBTC,1\n", "total\n", "asset\n", "asset;free\n"])
def test_a_header_without_asset_and_total_is_not_a_balance_csv(head: str) -> None:
    assert not generic.is_balance_csv(head)


@pytest.mark.parametrize("head", ["asset,total,free\nBTC,1,1\n", "total,asset\n", "asset;total;free\n"])
def test_a_header_holding_asset_and_total_is_a_balance_csv(head: str) -> None:
    assert generic.is_balance_csv(head)


def test_columns_in_another_order_and_extra_ones_read_by_name(tmp_path: Path) -> None:
    path = tmp_path / "2024-03-05.csv"
    path.write_text("free,total,asset\n1,2.5,BTC\n")
    (fmt,) = [f for f in MINE if f.detect(head_text(path))]
    parsed = fmt.read(Source(path, "x/a/balances/2024-03-05.csv", "x", "a", header=fmt.declaration(head_text(path))))
    # total is 2.5, not the free 1 in the first column: columns are taken by name.
    assert parsed.frame.select("asset", "total").rows() == [("BTC", Decimal("2.5"))]


def test_a_balance_csv_resaved_by_excel_with_semicolons_is_read(tmp_path: Path) -> None:
    # Excel in a locale whose list separator is ";" (issue 17): same columns, ";" between.
    path = tmp_path / "2024-03-05.csv"
    path.write_text("\ufeffAsset;Total\r\nBTC;0.5\r\nUSDT;1200.25\r\n", "utf-8")
    assert generic.is_balance_csv(head_text(path))
    frame, quarantine = read(path)
    assert frame["total"].to_list() == [Decimal("0.5"), Decimal("1200.25")] and quarantine.height == 0


def test_balance_rows_and_refusals() -> None:
    frame, quarantine = read(GENERIC / "balance_quoted.csv")
    assert [(r["asset"], r["total"], r["source_row"]) for r in frame.iter_rows(named=True)] == [
        ("BTC", Decimal("0.62"), 1),
        ("USDT", Decimal("1200.00"), 2),
        ("XXBT", Decimal("1E-8"), 7),  # row 6 is blank; codes stay as written (aliases come later)
        ("1INCH", Decimal("-0.5"), 10),
    ]
    assert [(r["row"], r["column"], r["reason"], r["raw"]) for r in quarantine.iter_rows(named=True)] == [
        (3, "total", '"abc" is not a decimal', "abc"),
        (4, "asset", "missing asset", ""),
        (5, "total", "missing total", ""),
        (8, "asset", "asset listed 2 times", "DOGE"),
        (9, "asset", "asset listed 2 times", "DOGE"),
    ]
    assert set(frame["venue"]) == {"kraken"} and set(frame["source_file"]) == {"kraken/main/balances/balance_quoted.csv"}


def test_header_only_file_gives_no_rows() -> None:
    frame, quarantine = read(GENERIC / "balance_empty.csv")
    assert frame.is_empty() and quarantine.is_empty()


def test_bad_utf8_fails_the_file() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.csv"
        path.write_bytes(b"asset,total\nBTC,1\n\xff\xfe,2\n")
        with pytest.raises(ValueError, match="not UTF-8"):
            read(path)


@settings(max_examples=60, deadline=None)
@given(
    value=st.decimals(min_value=Decimal("-1e19"), max_value=Decimal("1e19"), places=18, allow_nan=False, allow_infinity=False),
    commas=st.booleans(),
)
def test_total_cells_round_trip_exactly(value: Decimal, commas: bool) -> None:
    text = f"{value:,f}" if commas else f"{value:f}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.csv"
        path.write_text(f'asset,total\nBTC,"{text}"\n')
        frame, quarantine = read(path)
    assert quarantine.is_empty()
    assert frame["total"].item() == Decimal(text.replace(",", ""))
