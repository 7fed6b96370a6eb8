"""Our own small IO manager: each asset partition a folder of Parquet tables.

dagster-polars does not work with Polars 2, so assets hand over ``dict[str, DataFrame]``
and this stores ``<base>/<asset>/<partition>/<table>.parquet``. A partition is written into
a new folder and renamed into place, so a rerun overwrites it whole and a crash leaves the
previous version. Decimal columns round-trip exactly (Parquet decimal).
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import dagster as dg
import polars as pl


class ParquetTablesIOManager(dg.ConfigurableIOManager):
    base_dir: str

    def _folder(self, asset_key: dg.AssetKey, partition: str) -> Path:
        return Path(self.base_dir, *asset_key.path, partition)

    def handle_output(self, context: dg.OutputContext, obj: dict[str, pl.DataFrame]) -> None:
        folder = self._folder(context.asset_key, context.partition_key)
        partial = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}")
        partial.mkdir(parents=True)
        for name, frame in obj.items():
            frame.write_parquet(partial / f"{name}.parquet")
        old = folder.with_name(f".{folder.name}.old.{uuid.uuid4().hex[:8]}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(partial, folder)
        shutil.rmtree(old, ignore_errors=True)
        context.add_output_metadata({"path": str(folder), "tables": len(obj)})

    def load_input(self, context: dg.InputContext) -> dict[str, pl.DataFrame] | None:
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        if not keys:  # the first business date's previous state: there is none
            return None
        folder = self._folder(context.asset_key, keys[0])
        if not folder.is_dir():
            raise dg.Failure(
                description=f"{context.asset_key.to_user_string()} of {keys[0]} is not materialized: "
                            f"materialize {keys[0]} first (dates run in order)",
            )
        return {path.stem: pl.read_parquet(path) for path in sorted(folder.glob("*.parquet"))}

    def has(self, asset: str, partition: str) -> bool:
        return self._folder(dg.AssetKey(asset), partition).is_dir()
