"""``eod_tables`` writes a date's rows to PostgreSQL in one transaction and its Parquet outputs
beside it; the open lots (millions on a big day) are streamed to their file while the rest is
written. A date whose lots file cannot be written commits nothing: neither half lands."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import psycopg

from pipelines.definitions import EOD_JOB, build_definitions
from pipelines.instance import dagster_instance
from utl.home import landing_home

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2024, 3, 5)


def materialize(landing: Path, *assets: str) -> dg.ExecuteInProcessResult:
    job = build_definitions(landing).resolve_job_def(EOD_JOB)
    return job.execute_in_process(partition_key=DAY.isoformat(), instance=dagster_instance(), raise_on_error=False,
                                  asset_selection=[dg.AssetKey(a) for a in assets])


def test_a_lots_file_that_cannot_be_written_fails_the_date_and_lands_nothing(tmp_path, database, monkeypatch):
    landing = tmp_path / "landing"
    shutil.copytree(ROOT / "data_samples" / "landing", landing)
    monkeypatch.setenv("UTL_DATABASE_URL", database)
    storage = tmp_path / "storage"
    monkeypatch.setenv("UTL_STORAGE", str(storage))
    assert materialize(landing, "landing_rows", "ledger_legs", "day_state").success
    lots = landing_home(landing) / "dagster" / "day_state" / DAY.isoformat() / "state.lots"
    parts = sorted(lots.iterdir()) if lots.is_dir() else [lots.with_suffix(".parquet")]
    for part in parts:
        part.write_bytes(b"not a Parquet file")  # the lots can no longer be read
    failed = materialize(landing, "eod_tables")
    assert not failed.success
    with psycopg.connect(database) as conn:
        written = conn.execute("SELECT count(*) FROM utl.positions WHERE business_date = %s", (DAY,)).fetchone()[0]
        runs = conn.execute("SELECT count(*) FROM utl.day_runs WHERE business_date = %s", (DAY,)).fetchone()[0]
    assert (written, runs) == (0, 0)
    assert not list(storage.rglob("*.parquet"))  # not the positions either: the date's files land together
    # With its lots readable again (day_state rerun), the date lands whole.
    assert materialize(landing, "day_state", "eod_tables").success
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM utl.positions WHERE business_date = %s", (DAY,)).fetchone()[0] > 0
    assert (storage / "lots" / f"business_date={DAY.isoformat()}" / "part.parquet").is_file()
    assert (storage / "positions" / f"business_date={DAY.isoformat()}" / "part.parquet").is_file()
