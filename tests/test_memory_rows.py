"""The stored rows of a file: one Parquet file per non-empty table, each in date order; a
table the file leaves empty is read back as an empty frame of its schema."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from utl.errors import empty_quarantine, quarantine_file
from utl.ingest import FileRows
from utl.memory import LandingMemory, _empty_schema
from utl.schemas import BALANCES_OUT, FILLS_OUT, MARKS_OUT, MOVEMENTS_OUT

SAMPLE = Path(__file__).resolve().parents[1] / "data_samples" / "landing"
T = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)


def test_only_non_empty_tables_are_stored_and_every_table_reads_back(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    for row in memory.catalog.iter_rows(named=True):
        folder = tmp_path / "memory" / "rows" / row["key"]
        stored = {p.stem for p in folder.glob("*.parquet")}
        assert stored <= set(FileRows.TABLES)
        for name in FileRows.TABLES:
            frame = memory._read_rows(row["key"], name)
            assert frame.schema == _empty_schema(name), (row["file"], name)
            assert (name in stored) == (frame.height > 0), (row["file"], name)
            assert memory._scan(row["key"], name, pl.lit(True)).equals(frame)
        assert ("quarantine" in stored) == (row["refused"] > 0)


def fill(row: int, minute: int) -> dict:
    return dict(venue="v", account="a", trade_id=f"t{row}", order_id=None, ts=T + dt.timedelta(minutes=minute),
                symbol="BTCUSDT", base="BTC", quote="USDT", side="buy", qty=Decimal(1), price=Decimal(2),
                quote_qty=Decimal(2), fee=None, fee_asset=None, liquidity=None, source_file="f.csv", source_row=row,
                format="x", derivative=False, fee_asset_assumed=False)


def rows_of(fills: pl.DataFrame, **tables: pl.DataFrame) -> FileRows:
    return FileRows("f.csv", "x", "fills", "v", "a", fills=fills, movements=tables.get("movements", MOVEMENTS_OUT.to_frame()),
                    balances=BALANCES_OUT.to_frame(), marks=MARKS_OUT.to_frame(),
                    quarantine=tables.get("quarantine", empty_quarantine()), rows=fills.height)


def test_rows_are_stored_in_time_order_keeping_the_order_of_ties(tmp_path: Path) -> None:
    memory = LandingMemory(tmp_path / "landing", tmp_path / "memory")
    unsorted = pl.DataFrame([fill(1, 5), fill(2, 1), fill(3, 5), fill(4, 0), fill(5, 1)], schema=FILLS_OUT)
    memory._store_rows("k1", rows_of(unsorted, quarantine=quarantine_file("f.csv", "why")))
    back = memory._read_rows("k1", "fills")
    assert back["source_row"].to_list() == [4, 2, 5, 1, 3]
    assert back.equals(unsorted.sort("ts", maintain_order=True))
    assert sorted(p.name for p in (tmp_path / "memory" / "rows" / "k1").iterdir()) == ["fills.parquet", "quarantine.parquet"]
    ordered = unsorted.sort("ts", maintain_order=True)
    memory._store_rows("k2", rows_of(ordered))
    assert memory._read_rows("k2", "fills").equals(ordered)
    assert memory._read_rows("k2", "quarantine").equals(empty_quarantine())
    assert memory._scan("k2", "movements", pl.lit(True)).equals(MOVEMENTS_OUT.to_frame())


def test_an_empty_table_of_another_schema_is_still_stored(tmp_path: Path) -> None:
    memory = LandingMemory(tmp_path / "landing", tmp_path / "memory")
    odd = MOVEMENTS_OUT.to_frame().with_columns(pl.lit(None, pl.String).alias("extra"))
    memory._store_rows("k", rows_of(FILLS_OUT.to_frame(), movements=odd))
    assert [p.name for p in (tmp_path / "memory" / "rows" / "k").iterdir()] == ["movements.parquet"]
    assert memory._read_rows("k", "movements").schema == odd.schema


def test_a_table_s_schema_is_told_exactly() -> None:
    from utl.memory import _of_table_schema

    fills = FILLS_OUT.to_frame()
    assert _of_table_schema(fills, "fills") and not _of_table_schema(fills, "movements")
    assert _of_table_schema(empty_quarantine(), "quarantine")
    for changed in (fills.with_columns(pl.col("qty").cast(pl.Decimal(38, 10))),
                    fills.with_columns(pl.col("ts").dt.replace_time_zone(None)),
                    fills.with_columns(pl.col("source_row").cast(pl.Int32)),
                    fills.select(list(reversed(fills.columns))), fills.drop("format")):
        assert changed.schema != fills.schema and not _of_table_schema(changed, "fills")


def _stored(memory: LandingMemory) -> dict[tuple[str, str], pl.DataFrame]:
    return {(row["file"], name): memory._read_rows(row["key"], name)
            for row in memory.catalog.iter_rows(named=True) for name in FileRows.TABLES}


@pytest.mark.parametrize("alone", ["none", "the larger half"])
def test_files_read_on_several_threads_store_what_one_thread_stores(tmp_path: Path, monkeypatch, alone: str) -> None:
    import utl.memory

    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    if alone != "none":  # files past the median size are read with nothing else in flight
        sizes = sorted(p.stat().st_size for p in landing.rglob("*") if p.is_file())
        monkeypatch.setattr(utl.memory, "ALONE_BYTES", sizes[len(sizes) // 2])
    results = {}
    for threads in ("1", "3"):
        monkeypatch.setenv("UTL_INGEST_THREADS", threads)
        memory = LandingMemory(landing, tmp_path / f"memory{threads}")
        refresh = memory.refresh()
        results[threads] = refresh, memory.catalog, _stored(memory)
    (one, catalog1, stored1), (three, catalog3, stored3) = results["1"], results["3"]
    assert one == three and len(one.read) == catalog1.height > 3
    assert catalog1.equals(catalog3)  # same rows in the same order: keys, dates, counts
    assert stored1.keys() == stored3.keys()
    for key, frame in stored1.items():
        assert frame.equals(stored3[key]), key


def test_a_reader_that_fails_on_a_thread_fails_the_refresh_and_stores_no_catalog(tmp_path: Path, monkeypatch) -> None:
    import utl.memory

    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    real = utl.memory.read_trades_file
    calls = []

    def read(source, formats, settings):
        calls.append(source.rel)
        if len(calls) == 2:
            raise OSError(f"disk gone under {source.rel}")
        return real(source, formats, settings)

    monkeypatch.setattr(utl.memory, "read_trades_file", read)
    monkeypatch.setenv("UTL_INGEST_THREADS", "2")
    memory = LandingMemory(landing, tmp_path / "memory")
    import pytest
    with pytest.raises(OSError, match="disk gone"):
        memory.refresh()
    assert not (tmp_path / "memory" / "catalog.parquet").exists()


def test_the_thread_count_is_told_plainly(monkeypatch) -> None:
    import pytest
    from utl.memory import ingest_threads

    monkeypatch.setenv("UTL_INGEST_THREADS", "3")
    assert ingest_threads() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("UTL_INGEST_THREADS", bad)
        with pytest.raises(ValueError, match="UTL_INGEST_THREADS"):
            ingest_threads()


def test_unset_the_thread_count_is_twice_the_cores_at_most_four(monkeypatch) -> None:
    import os

    from utl.memory import ingest_threads

    monkeypatch.delenv("UTL_INGEST_THREADS", raising=False)
    for cores, threads in ((1, 2), (2, 4), (8, 4)):
        monkeypatch.setattr(os, "cpu_count", lambda cores=cores: cores)
        assert ingest_threads() == threads
