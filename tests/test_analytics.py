"""DuckDB over the run's Parquet partitions: exact decimals in, exact decimals out."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path

import duckdb
import polars as pl
import pytest

from utl.analytics import PNL_BY_BOOK, TOP_EXPOSURES, connect, pnl_by_book, top_exposures
from utl.decimals import DECIMAL
from utl.exposure import POSITIONS, exposure_by_asset

D1 = dt.date(2024, 5, 1)
D2 = dt.date(2024, 5, 2)
BIG = Decimal("12345678901234567890.123456789012345678")
ULP = Decimal("0.000000000000000001")
PNL = pl.Schema(
    {"book": pl.String, "asset": pl.String, "realized_pnl": DECIMAL, "unrealized_pnl": DECIMAL, "fees": DECIMAL, "total_pnl": DECIMAL}
)


def write(storage: Path, table: str, day: dt.date, frame: pl.DataFrame) -> None:
    folder = storage / table / f"business_date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / "part.parquet")


def pnl_rows(*rows: tuple) -> pl.DataFrame:
    """(book, asset, realized, unrealized, fees) as text; total = realized + unrealized - fees."""
    with localcontext(prec=80):  # Python's default 28 digits would round the total
        values = [
            (book, asset, *(None if v is None else Decimal(v) for v in (r, u, f)),
             None if None in (r, u, f) else Decimal(r) + Decimal(u) - Decimal(f))
            for book, asset, r, u, f in rows
        ]
    return pl.DataFrame(values, schema=PNL, orient="row")


@pytest.fixture
def storage(tmp_path: Path) -> Path:
    root = tmp_path / "run's storage"  # a quote in the path: the path is bound, not pasted
    write(root, "pnl", D1, pnl_rows(
        ("mm", "BTC", str(BIG), "0.000000000000000001", "1"),
        ("mm", "ETH", str(ULP), "-2.5", "0"),
        ("arb", "BTC", "-100", "50", "0.000000000000000002"),
        ("o'hare", "SOL", "7", None, "0"),  # unpriced: no unrealized PnL
        ("o'hare", "ETH", "3", "1", "0"),
    ))
    write(root, "pnl", D2, pnl_rows(("mm", "BTC", "1", "1", "1")))
    positions = pl.DataFrame(
        [
            (D1, "binance", "m1", "mm", "BTC", Decimal("0.5"), Decimal("60000")),
            (D1, "okx", "m2", "mm", "BTC", Decimal("-0.25"), Decimal("60000")),
            (D1, "binance", "m1", "mm", "ETH", Decimal("9"), Decimal("5000")),  # gross ties with BTC
            (D1, "binance", "m1", "mm", "XRP", Decimal("1"), None),
            (D1, "binance", "m1", "mm", "USD", BIG, Decimal("1")),
            (D1, "binance", "m1", "mm", "DOGE", ULP, Decimal("0.1")),  # 1e-19: rounds half-even to 0
            (D1, "binance", "m1", "mm", "SHIB", ULP, Decimal("3")),
        ],
        schema=list(POSITIONS.names())[:-1], orient="row",
    ).cast({"qty": DECIMAL, "mark": DECIMAL}).with_columns(market_value=pl.col("qty") * pl.col("mark"))
    # the exposure partition keeps business_date inside the file too: both layouts must read
    write(root, "exposure_asset", D1, exposure_by_asset(positions))
    return root


def test_decimal_38_18_stays_exact_through_duckdb(storage):
    con = connect(storage)
    types = {r[0]: r[1] for r in con.sql("DESCRIBE pnl").fetchall()}
    assert types["realized_pnl"] == "DECIMAL(38,18)" and types["business_date"] == "DATE"
    assert {r[0]: r[1] for r in con.sql("DESCRIBE exposure_asset").fetchall()}["business_date"] == "DATE"
    frame = con.sql("SELECT realized_pnl FROM pnl WHERE book = ? AND asset = ? AND business_date = ?",
                    params=["mm", "BTC", D1]).pl()
    assert frame.schema["realized_pnl"] == DECIMAL and frame.item() == BIG


def test_pnl_by_book_sums_exactly(storage):
    out = pnl_by_book(connect(storage), D1)
    assert out.schema == PNL_BY_BOOK
    assert out.rows() == [
        (D1, "arb", Decimal(-100), Decimal(50), Decimal("0.000000000000000002"), Decimal("-50.000000000000000002")),
        (D1, "mm", Decimal("12345678901234567890.123456789012345679"), Decimal("-2.499999999999999999"), Decimal(1),
         Decimal("12345678901234567886.623456789012345680")),
        # an unknown unrealized PnL makes the book's unrealized and total unknown, not partial
        (D1, "o'hare", Decimal(10), None, Decimal(0), None),
    ]
    assert pnl_by_book(connect(storage), D2).rows() == [(D2, "mm", Decimal(1), Decimal(1), Decimal(1), Decimal(1))]
    assert pnl_by_book(connect(storage), dt.date(2024, 5, 3)).is_empty()


def test_top_exposures_by_gross_then_name(storage):
    con = connect(storage)
    out = top_exposures(con, D1)
    assert out.schema == TOP_EXPOSURES
    assert out.select("asset", "gross_value").rows() == [
        ("USD", BIG),
        ("BTC", Decimal(45000)),  # |30000| + |-15000|
        ("ETH", Decimal(45000)),  # equal gross: by name
        ("SHIB", Decimal("0.000000000000000003")),
        ("DOGE", Decimal(0)),
        ("XRP", None),  # unpriced: no gross, last
    ]
    btc = out.row(1, named=True)
    assert btc["net_value"] == Decimal(15000) and btc["positions"] == 2 and btc["unpriced"] is False
    assert out.row(5, named=True)["unpriced"] is True
    with localcontext(prec=80, rounding=ROUND_HALF_EVEN):
        assert out["share_of_gross"][0] == (BIG / (BIG + 90000 + 3 * ULP)).quantize(ULP)
    assert top_exposures(con, D1, n=2)["asset"].to_list() == ["USD", "BTC"]
    assert top_exposures(con, D1, n=0).is_empty()
    assert top_exposures(con, D2).is_empty()
    with pytest.raises(ValueError, match="n must be"):
        top_exposures(con, D1, n=-1)


def test_exposure_round_trips_through_parquet_and_duckdb(storage):
    con = connect(storage)
    on_disk = pl.read_parquet(storage / "exposure_asset" / "business_date=2024-05-01" / "part.parquet")
    assert top_exposures(con, D1, n=100).equals(on_disk)


def test_only_tables_present_get_views_and_new_partitions_show(storage):
    con = connect(storage)
    views = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
    assert views == {"pnl", "exposure_asset"}
    (storage / "positions").mkdir()  # a folder without partitions is not a table yet
    assert "positions" not in {r[0] for r in connect(storage).sql("SELECT table_name FROM information_schema.tables").fetchall()}
    write(storage, "pnl", dt.date(2024, 5, 3), pnl_rows(("mm", "BTC", "2", "0", "0")))
    assert pnl_by_book(con, dt.date(2024, 5, 3))["total_pnl"].to_list() == [Decimal(2)]


def test_values_are_bound_not_pasted(storage):
    con = connect(storage)
    # pasted between quotes this would be valid SQL selecting both days; bound, it is no date
    with pytest.raises(duckdb.ConversionException):
        pnl_by_book(con, "2024-05-01' OR business_date = '2024-05-02")  # type: ignore[arg-type]


def test_overflowing_sum_raises_instead_of_wrapping(tmp_path):
    near_max = "60000000000000000000"
    write(tmp_path, "pnl", D1, pnl_rows(("mm", "BTC", near_max, "0", "0"), ("mm", "ETH", near_max, "0", "0")))
    with pytest.raises(duckdb.OutOfRangeException, match="Overflow"):
        pnl_by_book(connect(tmp_path), D1)


def test_a_float_result_is_refused_not_cast(tmp_path):
    floats = pl.DataFrame({"book": ["mm"], "asset": ["BTC"]}).with_columns(
        realized_pnl=pl.lit(0.1), unrealized_pnl=pl.lit(0.2), fees=pl.lit(0.0), total_pnl=pl.lit(0.3)
    )
    write(tmp_path, "pnl", D1, floats)
    with pytest.raises(TypeError, match="realized_pnl: Float64"):
        pnl_by_book(connect(tmp_path), D1)
