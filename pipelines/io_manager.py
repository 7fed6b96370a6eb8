"""Our own small IO manager: each asset partition a folder of Parquet tables.

dagster-polars does not work with Polars 2, so assets hand over ``dict[str, DataFrame]``
and this stores ``<base>/<asset>/<partition>/<table>.parquet``. A partition is written into
a new folder and renamed into place, so a rerun overwrites it whole and a crash leaves the
previous version. Decimal columns round-trip exactly (Parquet decimal).

Memory: a date's fills and legs are the largest things a run holds, so neither side keeps
them longer than it must. An input is a :class:`Tables` that reads a table when it is asked
for (``eod_tables`` asks for three small tables of ``landing_rows`` and ``ledger_legs``, not
their fills and legs). An output dict is emptied once written: ``execute_in_process`` (what
``utl eod`` runs) keeps every step's output value for its result until the run ends, and
those values would otherwise be every table of the date at once.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import dagster as dg
import polars as pl


class Tables(Mapping[str, pl.DataFrame]):
    """A stored partition's tables by name, each read from its Parquet file when asked for
    (and not kept: ask once and hold the frame)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._names = sorted(path.stem for path in folder.glob("*.parquet"))

    def __getitem__(self, name: str) -> pl.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        return pl.read_parquet(self.folder / f"{name}.parquet")

    def __contains__(self, name: object) -> bool:  # Mapping's own would read the table to answer
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def with_prefix(self, prefix: str) -> dict[str, pl.DataFrame]:
        """The tables whose names start with ``prefix``, by the rest of their names (only those are read)."""
        return {name[len(prefix):]: self[name] for name in self._names if name.startswith(prefix)}


class ParquetTablesIOManager(dg.ConfigurableIOManager):
    base_dir: str

    def _folder(self, asset_key: dg.AssetKey, partition: str) -> Path:
        return Path(self.base_dir, *asset_key.path, partition)

    def handle_output(self, context: dg.OutputContext, obj: dict[str, pl.DataFrame]) -> None:
        folder = self._folder(context.asset_key, context.partition_key)
        partial = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
        partial.mkdir(parents=True)
        for name, frame in obj.items():
            # lz4: a date's legs are written once and read by the next step; zstd takes ~1.7x the CPU
            frame.write_parquet(partial / f"{name}.parquet", compression="lz4")
        old = folder.with_name(f".{folder.name}.old.{uuid.uuid4().hex[:8]}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(partial, folder)
        shutil.rmtree(old, ignore_errors=True)
        context.add_output_metadata({"path": str(folder), "tables": len(obj)})
        obj.clear()  # see the module doc: the run's result would hold every table till its end

    def load_input(self, context: dg.InputContext) -> Tables | None:
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        if not keys:  # the first business date's previous state: there is none
            return None
        folder = self._folder(context.asset_key, keys[0])
        if not folder.is_dir():
            raise dg.Failure(
                description=f"{context.asset_key.to_user_string()} of {keys[0]} is not materialized: "
                            f"materialize {keys[0]} first (dates run in order)",
            )
        return Tables(folder)

    def has(self, asset: str, partition: str) -> bool:
        return self._folder(dg.AssetKey(asset), partition).is_dir()
