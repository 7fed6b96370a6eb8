"""A date's rows are read once, where they are booked: ``landing_rows`` reads the landing into
UTL's memory and plans the date (its shards of accounts and the stored files its rows come
from); ``ledger_legs`` reads each shard's rows from those files and books them. The rows are
never copied from one asset to the next, so ``ledger_legs`` must refuse rows that are not the
ones ``landing_rows`` planned (a landing file changed since), and still book a
``landing_rows`` stored by an earlier version, rows and all."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipelines.definitions import EOD_JOB, build_definitions
from pipelines.instance import dagster_instance
from pipelines.io_manager import PartsWriter, Tables, spill_folder
from utl.home import landing_home
from utl.memory import DayDigest, LandingMemory, book_day
from utl.settings import load_settings
from utl.shards import shard_accounts

ROOT = Path(__file__).resolve().parents[2]
DAY = dt.date(2024, 3, 5)
# 12:00 UTC on DAY (the file's zone is UTC+8, in its name): one more fill of the date.
EXTRA_FILL = "24-03-05 20:00:00,BTCUSDT,BUY,66000.00,0.00100000BTC,66.00000000USDT,0.00000100BTC\n"
TRADES = "binance/mm-spot-1/trades/Binance-Spot-Trade-History-202403062000(UTC+8)_ab12.csv"


@pytest.fixture
def landing(tmp_path, database, monkeypatch) -> Path:
    folder = tmp_path / "landing"
    shutil.copytree(ROOT / "data_samples" / "landing", folder)
    monkeypatch.setenv("UTL_DATABASE_URL", database)
    return folder


def materialize(landing: Path, *assets: str) -> dg.ExecuteInProcessResult:
    job = build_definitions(landing).resolve_job_def(EOD_JOB)
    return job.execute_in_process(partition_key=DAY.isoformat(), instance=dagster_instance(), raise_on_error=False,
                                  asset_selection=[dg.AssetKey(a) for a in assets])


def stored(landing: Path, asset: str) -> Tables:
    return Tables(landing_home(landing) / "dagster" / asset / DAY.isoformat())


def memory(landing: Path) -> LandingMemory:
    return LandingMemory(landing, landing_home(landing) / "memory", load_settings(landing))


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    event = next(e for e in result.get_asset_materialization_events()
                 if e.event_specific_data.materialization.asset_key == dg.AssetKey(asset))
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


def test_landing_rows_plans_and_ledger_legs_books_the_rows_of_its_sources(landing):
    result = materialize(landing, "landing_rows", "ledger_legs")
    assert result.success
    plan = stored(landing, "landing_rows")
    assert sorted(plan) == ["shards", "sources"]  # no rows handed over
    sources = plan["sources"]
    assert sources.columns == ["file", "key"] and sources.height == metadata(result, "landing_rows")["files"]
    assert TRADES in sources["file"].to_list()
    # The legs are those of the date's rows read whole, and the fingerprint that of those rows.
    whole = memory(landing).day_rows(DAY)
    inputs, refused = book_day(whole)
    legs = stored(landing, "ledger_legs")
    key = ["venue", "account", "leg_id"]
    assert legs["legs"].sort(key).equals(inputs.legs.sort(key))
    assert metadata(result, "ledger_legs")["fills"] == whole.fills.height > 0
    assert legs["fingerprint"]["fingerprint"][0] == memory(landing).fingerprint(DAY) \
        == DayDigest().add(whole).value(memory(landing)._settings_hash())


def test_rows_changed_after_landing_rows_are_refused_until_it_runs_again(landing):
    assert materialize(landing, "landing_rows", "ledger_legs").success
    fills_before = stored(landing, "ledger_legs")["legs"].height
    with (landing / TRADES).open("a") as handle:
        handle.write(EXTRA_FILL)
    memory(landing).refresh()  # another run, or the landing sensor, reads the changed file
    failed = materialize(landing, "ledger_legs")
    assert not failed.success
    message = failed.get_step_failure_events()[0].event_specific_data.error.message
    assert "2024-03-05: ledger_legs: the landing changed after landing_rows of 2024-03-05" in message
    assert "materialize landing_rows of 2024-03-05 again" in message
    assert stored(landing, "ledger_legs")["legs"].height == fills_before  # the last good state stands
    assert materialize(landing, "landing_rows", "ledger_legs").success
    assert stored(landing, "ledger_legs")["legs"].height == fills_before + 3  # base, quote and fee legs


def test_a_landing_rows_stored_by_an_earlier_version_books_its_stored_rows(landing):
    """Before, landing_rows stored every shard's rows and the date's fingerprint; ledger_legs
    books those rows (not the memory's) and hands the stored fingerprint on."""
    assert materialize(landing, "landing_rows").success
    remembered = memory(landing)
    plan = stored(landing, "landing_rows")["shards"]
    writer, digest = PartsWriter(spill_folder(landing_home(landing) / "dagster")), DayDigest()
    for shard, accounts in enumerate(shard_accounts(plan) or [None]):
        rows = remembered.day_rows(DAY, accounts, shared=shard == 0)
        digest.add(rows)
        writer.add(rows.tables())
    old = landing_home(landing) / "dagster" / "landing_rows" / DAY.isoformat()
    shutil.rmtree(old)
    old.mkdir()
    for name, parts in writer.output().items():
        (old / name).mkdir()
        for shard, path in enumerate(parts.files):
            shutil.move(path, old / name / f"part-{shard:05d}.parquet")
    plan.write_parquet(old / "shards.parquet")
    pl.DataFrame({"fingerprint": ["stored-by-an-earlier-version"]}).write_parquet(old / "fingerprint.parquet")
    with (landing / TRADES).open("a") as handle:  # the memory's rows differ now: the stored ones count
        handle.write(EXTRA_FILL)
    remembered.refresh()
    assert materialize(landing, "ledger_legs").success
    legs = stored(landing, "ledger_legs")
    assert legs["fingerprint"]["fingerprint"][0] == "stored-by-an-earlier-version"
    assert legs["legs"].height == book_day(memory(landing).day_rows(DAY))[0].legs.height - 3


@pytest.mark.parametrize("threads", ["1", "3"])
def test_shards_read_and_booked_on_threads_give_the_date_booked_whole(landing, monkeypatch, threads):
    """One account a shard, booked one or three at a time: the same legs, refusals and
    fingerprint as the date read and booked whole."""
    monkeypatch.setenv("UTL_SHARD_ROWS", "1")
    monkeypatch.setenv("UTL_SHARD_THREADS", threads)
    result = materialize(landing, "landing_rows", "ledger_legs")
    assert result.success
    assert metadata(result, "ledger_legs")["shards"] > 5
    whole = memory(landing).day_rows(DAY)
    inputs, refused = book_day(whole)
    legs = stored(landing, "ledger_legs")
    key = ["venue", "account", "leg_id"]
    assert legs["legs"].sort(key).equals(inputs.legs.sort(key))
    assert legs["quarantine"].sort("file", "row").equals(refused.sort("file", "row"))
    assert legs["fingerprint"]["fingerprint"][0] == DayDigest().add(whole).value(memory(landing)._settings_hash())
