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


def test_a_table_written_a_shard_at_a_time_is_moved_in_and_read_whole_or_by_shard(tmp_path):
    import os
    import time

    from pipelines.io_manager import PartsWriter, spill_folder

    io = ParquetTablesIOManager(base_dir=str(tmp_path))
    stale = tmp_path / ".spill" / "left-by-a-crash"
    stale.mkdir(parents=True)
    os.utime(stale, (time.time() - 2 * 86_400,) * 2)
    fresh = tmp_path / ".spill" / "another-run-now"
    fresh.mkdir()
    spill = spill_folder(tmp_path)
    assert not stale.exists() and fresh.exists()  # a day-old spill is a crash's; a fresh one a run's
    writer = PartsWriter(spill)
    shards = [pl.DataFrame({"account": ["a", "a"], "qty": [Decimal("1.5"), Decimal("-2")]},
                           schema={"account": pl.String, "qty": pl.Decimal(38, 18)}),
              pl.DataFrame({"account": ["b"], "qty": [Decimal("0.000000000000000001")]},
                           schema={"account": pl.String, "qty": pl.Decimal(38, 18)})]
    for shard in shards:
        writer.add({"legs": shard, "marks": shard.head(0)})
    io.handle_output(dg.build_output_context(asset_key=KEY, partition_key="2024-03-05"),
                     {**writer.output(), "plan": pl.DataFrame({"shards": [2]})})
    assert not spill.exists()  # the parts were moved into the partition, the spill folder removed
    loaded = io.load_input(dg.build_input_context(asset_key=KEY, partition_key="2024-03-05"))
    assert sorted(loaded) == ["legs", "marks", "plan"]
    assert loaded.parts("legs") == 2 and loaded.parts("plan") == 1
    assert loaded["legs"].equals(pl.concat(shards))
    assert loaded.part("legs", 1).equals(shards[1]) and loaded.part("plan", 0)["shards"].to_list() == [2]
    assert loaded.scan("legs", [1]).collect().equals(shards[1])
    assert loaded["marks"].height == 0 and loaded["marks"].schema == shards[0].schema


def test_a_shard_whose_write_fails_fails_the_asset_at_its_next_step(tmp_path):
    """Parts are written on a thread while the next shard is booked: a failed write must not
    pass unnoticed, whether the asset adds another shard or asks for its output."""
    import pytest

    from pipelines.io_manager import PartsWriter

    good = pl.DataFrame({"qty": [Decimal("1.25")]}, schema={"qty": pl.Decimal(38, 18)})
    for ends_with in ("add", "output"):
        spill = tmp_path / ends_with
        spill.mkdir()
        writer = PartsWriter(spill)
        writer.add({"legs": good})
        from pipelines.io_manager import PART
        (spill / "marks" / PART.format(0)).mkdir(parents=True)  # a folder where the part file must go
        writer.add({"marks": good})
        with pytest.raises(OSError):
            writer.add({"legs": good}) if ends_with == "add" else writer.output()
    writer = PartsWriter(tmp_path / "ordered")
    for n in range(5):
        writer.add({"legs": good.with_columns(qty=pl.lit(Decimal(n)).cast(pl.Decimal(38, 18)))})
    parts = writer.output()["legs"].files
    assert [pl.read_parquet(p)["qty"].to_list() for p in parts] == [[Decimal(n)] for n in range(5)]
