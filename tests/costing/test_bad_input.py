"""Bad input is refused with the column, the 1-based row and its trade_id; nothing is written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from utl.costing import compute_costs
from utl.errors import BadInput

from .factory import trades

GOOD = ["t1 +1 @ 100", "t2 +2 @ 110", "t3 -1.5 @ 120"]


def with_cell(row: int, column: str, value) -> pl.DataFrame:
    frame = trades(*GOOD)
    cells = frame[column].to_list()
    cells[row - 1] = value
    return frame.with_columns(pl.Series(column, cells, dtype=frame.schema[column]))


BAD_CELLS = [
    ("qty", "1,5", "is not a decimal"),
    ("qty", "+1", "is not a decimal"),
    ("qty", "1e5", "is not a decimal"),
    ("qty", " 1", "is not a decimal"),
    ("qty", "0.1234567890123456789", "is not a decimal"),  # 19 places would be rounded
    ("qty", "0", "is zero"),
    ("qty", "-0.000", "is zero"),
    ("qty", None, "is null"),
    ("price", "0", "is not positive"),
    ("price", "-3", "is not positive"),
    ("price", "abc", "is not a decimal"),
    ("price", None, "is null"),
    ("book", None, "is null"),
    ("asset", None, "is null"),
    ("trade_id", None, "is null"),
]


@pytest.mark.parametrize("column, value, reason", BAD_CELLS)
def test_api_names_column_row_and_trade_id(column, value, reason):
    with pytest.raises(ValueError) as caught:
        compute_costs(with_cell(2, column, value), "fifo")
    message = str(caught.value)
    assert f'column "{column}"' in message
    assert "row 2" in message
    assert reason in message
    if column != "trade_id":
        assert "'t2'" in message
    assert isinstance(caught.value, BadInput) and [e.row for e in caught.value.errors] == [2]


def test_null_timestamp_and_bad_timestamp_text():
    frame = trades(*GOOD).with_columns(pl.col("ts").cast(pl.String))
    frame = frame.with_columns(pl.Series("ts", [frame["ts"][0], "yesterday", None]))
    with pytest.raises(ValueError) as caught:
        compute_costs(frame)
    rows = {(e.row, e.column, e.reason) for e in caught.value.errors}
    assert rows == {(2, "ts", "is not an ISO 8601 timestamp"), (3, "ts", "is null")}


def test_duplicate_trade_id_within_a_book_even_across_assets():
    frame = trades("A:BTC x +1 @ 1", "A:ETH x +1 @ 1", "B:BTC x +1 @ 1")
    with pytest.raises(ValueError) as caught:
        compute_costs(frame)
    assert [(e.row, e.column, e.trade_id) for e in caught.value.errors] == [(2, "trade_id", "x")]
    assert "duplicate within book A" in str(caught.value)


def test_missing_column_and_float_column():
    with pytest.raises(ValueError, match='column "price": missing column'):
        compute_costs(trades(*GOOD).drop("price"))
    with pytest.raises(ValueError, match="is a float"):
        compute_costs(trades(*GOOD).with_columns(pl.col("qty").cast(pl.Float64)))


def test_every_error_is_listed_not_just_the_first():
    frame = trades(*GOOD).with_columns(pl.Series("qty", ["x", "0", "1"]), pl.Series("price", ["1", "1", "-1"]))
    with pytest.raises(BadInput) as caught:
        compute_costs(frame)
    assert [(e.row, e.column) for e in caught.value.errors] == [(1, "qty"), (2, "qty"), (3, "price")]


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown costing method"):
        compute_costs(trades(*GOOD), "avco")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "utl.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("column, value, reason", [BAD_CELLS[0], BAD_CELLS[5], BAD_CELLS[9], BAD_CELLS[13]])
def test_cli_refuses_and_writes_nothing(tmp_path: Path, column, value, reason):
    path = tmp_path / "trades.csv"
    with_cell(3, column, value).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)
    out = tmp_path / "out"
    done = run_cli("costing", "--method", "fifo", "--trades", str(path), "--out", str(out))
    assert done.returncode != 0
    assert f'column "{column}"' in done.stderr and "row 3" in done.stderr and reason in done.stderr
    assert not out.exists()


def test_cli_duplicate_and_missing_column(tmp_path: Path):
    path = tmp_path / "trades.parquet"
    trades("a +1 @ 1", "a -1 @ 2").write_parquet(path)
    done = run_cli("costing", "--trades", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode != 0 and "row 2 (trade_id 'a'), column \"trade_id\"" in done.stderr
    trades(*GOOD).drop("book").write_parquet(path)
    done = run_cli("costing", "--trades", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode != 0 and 'column "book": missing column' in done.stderr
    assert not (tmp_path / "out").exists()


def test_cli_writes_three_files_from_csv(tmp_path: Path):
    path = tmp_path / "trades.csv"
    trades(*GOOD).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")).write_csv(path)
    out = tmp_path / "new" / "dir"
    done = run_cli("costing", "--method", "lifo", "--trades", str(path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    positions = pl.read_parquet(out / "positions.parquet")
    assert str(positions["avg_price"][0]) == "103.333333333333333333"
    assert pl.read_parquet(out / "realized.parquet")["realized_pnl"].cast(pl.String).to_list()[-1] == "15.000000000000000000"
    assert pl.read_parquet(out / "open_lots.parquet").height == 2
    assert str(out / "positions.parquet") in done.stdout
