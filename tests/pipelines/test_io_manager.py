"""The run's own IO manager: each partition a folder of Parquet tables, read a table at a
time, and an output let go once written (pipelines/io_manager.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import polars as pl
import pytest

from pipelines.io_manager import ParquetTablesIOManager, Tables

KEY = dg.AssetKey("day_state")


def test_an_output_is_stored_exactly_and_let_go_and_an_input_reads_only_what_is_asked(tmp_path):
    io = ParquetTablesIOManager(base_dir=str(tmp_path))
    legs = pl.DataFrame({"qty": [Decimal("0.000000000000000001"), Decimal("-12345678901234567890.5")]},
                        schema={"qty": pl.Decimal(38, 18)})
    tables = {"state.positions": legs, "out.legs": legs.head(1), "fingerprint": pl.DataFrame({"f": ["x"]})}
    io.handle_output(dg.build_output_context(asset_key=KEY, partition_key="2024-03-05"), tables)
    # execute_in_process keeps each output value for its result: the frames must not stay in it
    assert tables == {}
    loaded = io.load_input(dg.build_input_context(asset_key=KEY, partition_key="2024-03-05"))
    assert isinstance(loaded, Tables)
    assert sorted(loaded) == ["fingerprint", "out.legs", "state.positions"] and len(loaded) == 3
    assert loaded["state.positions"].equals(legs)  # Decimal(38,18) exact both ways
    assert list(loaded.with_prefix("state.")) == ["positions"]
    (loaded.folder / "out.legs.parquet").unlink()  # only the tables asked for are read
    assert "out.legs" in loaded and "missing" not in loaded
    assert loaded.with_prefix("state.")["positions"].height == 2
    with pytest.raises(KeyError):
        loaded["missing"]


def test_a_rerun_replaces_the_partition_whole_and_a_missing_one_is_named(tmp_path):
    io = ParquetTablesIOManager(base_dir=str(tmp_path))
    def context():
        return dg.build_output_context(asset_key=KEY, partition_key="2024-03-05")

    io.handle_output(context(), {"a": pl.DataFrame({"x": [1]}), "b": pl.DataFrame({"x": [2]})})
    io.handle_output(context(), {"a": pl.DataFrame({"x": [3]})})
    loaded = io.load_input(dg.build_input_context(asset_key=KEY, partition_key="2024-03-05"))
    assert list(loaded) == ["a"] and loaded["a"]["x"].to_list() == [3]
    assert io.has("day_state", "2024-03-05") and not io.has("day_state", str(dt.date(2024, 3, 6)))
    with pytest.raises(dg.Failure, match="2024-03-06 is not materialized"):
        io.load_input(dg.build_input_context(asset_key=KEY, partition_key="2024-03-06"))
