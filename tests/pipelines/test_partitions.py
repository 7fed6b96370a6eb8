"""Business dates as Dagster partitions, materialized in-process against real PostgreSQL
(the embedded server and TEST_DATABASE_URL), with our Parquet IO manager (orchestration.md).

The reference for every table is the whole-landing fold in memory (utl.eod.run_dates) and
the planted expectations of the sample (data_samples/landing_expected.json).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from decimal import Decimal
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pipelines.definitions import EOD_JOB, build_definitions
from pipelines.eod import run_eod
from pipelines.instance import dagster_instance
from utl.eod import prepare, run_dates
from utl.run import RunError
from utl.store import Database, read_frame

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_samples" / "landing"
EXPECTED = json.loads((ROOT / "data_samples" / "landing_expected.json").read_text())
DATES = [dt.date.fromisoformat(d) for d in EXPECTED["business_dates"]]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
DAY_TABLES = ("positions", "breaks", "pnl", "pnl_explain", "exposure_asset", "exposure_venue", "exposure_book",
              "exceptions")


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    copy = tmp_path / "landing"
    shutil.copytree(SAMPLE, copy)
    return copy


@pytest.fixture
def db(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The assets' PostgreSQL resource reads UTL_DATABASE_URL, as in production."""
    monkeypatch.setenv("UTL_DATABASE_URL", database)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # this test's own run history
    return database


def materialize(landing: Path, day: dt.date) -> dg.ExecuteInProcessResult:
    job = build_definitions(landing).resolve_job_def(EOD_JOB)
    return job.execute_in_process(partition_key=day.isoformat(), instance=dagster_instance(), raise_on_error=False,
                                  run_config=QUIET)


def table(url: str, name: str, day: dt.date) -> pl.DataFrame:
    with psycopg.connect(url) as conn:
        frame = read_frame(conn, f"SELECT * FROM utl.{name} WHERE business_date = %s", (day,))
    rows = frame.drop("business_date", "landing", strict=False)  # one landing, one date here
    return rows.sort(rows.columns[:3])


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures, "expected a failed step"
    return f"{failures[0].step_key}: {failures[0].step_failure_data.error.message}"


def test_partitions_materialized_one_by_one_equal_the_whole_run(landing: Path, db: str) -> None:
    for day in DATES:
        assert materialize(landing, day).success
    reference = {o.business_date: o for o in run_dates(prepare(landing), DATES[-1])}
    for day in DATES:
        for name in DAY_TABLES:
            want = getattr(reference[day], name).drop("business_date", strict=False)
            got = table(db, name, day).select(want.columns)
            assert got.sort(got.columns[:3]).equals(want.sort(want.columns[:3])), (day, name)
    planted = sorted((b["venue"], b["account"], b["asset"], Decimal(b["diff"]), b["first_seen"])
                     for b in EXPECTED["breaks"][DATES[-1].isoformat()])
    got = rows(db, f"SELECT venue, account, asset, diff, first_seen::text FROM utl.breaks "
                   f"WHERE business_date = '{DATES[-1]}' ORDER BY 1, 2, 3")
    assert [tuple(r) for r in got] == planted


def test_the_same_tables_as_utl_eod(landing: Path, db: str, server_url: str) -> None:
    for day in DATES:
        assert materialize(landing, day).success
    by_assets = {n: [table(db, n, d) for d in DATES] for n in DAY_TABLES}
    # utl eod into another fresh database: it runs every date again (none is written there).
    name = conninfo_to_dict(db)["dbname"] + "_eod"
    other = make_conninfo(db, dbname=name)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        summary = run_eod(landing, DATES[-1], landing.parent / "storage", Database(url=other, data_dir=None))
        assert summary.ran == DATES
        for n in DAY_TABLES:
            for day, by_asset in zip(DATES, by_assets[n]):
                assert table(other, n, day).equals(by_asset), (n, day)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_missing_mark_fails_its_date_and_a_rerun_after_the_fix_repairs_it(landing: Path, db: str) -> None:
    marks = landing / "marks" / "2024-03-06.csv"
    good = marks.read_text()
    lines = good.splitlines()
    dropped = next(line for line in lines[1:] if line.startswith("ETH,"))
    marks.write_text("\n".join(line for line in lines if line != dropped) + "\n")

    assert materialize(landing, DATES[0]).success
    failed = materialize(landing, DATES[1])
    assert not failed.success
    message = failure_of(failed)
    assert message.startswith("day_state:") and "2024-03-06" in message and "ETH" in message
    assert "marks/2024-03-06.csv" in message
    # The failed date wrote nothing; the next one cannot start without its state.
    assert rows(db, "SELECT count(*) FROM utl.positions WHERE business_date = '2024-03-06'") == [(0,)]
    later = materialize(landing, DATES[2])
    assert not later.success and "2024-03-06 first" in failure_of(later)

    marks.write_text(good)
    for day in DATES[1:]:
        assert materialize(landing, day).success
    for day in DATES:  # a second pass: reruns replace, never duplicate
        assert materialize(landing, day).success
    reference = {o.business_date: o for o in run_dates(prepare(landing), DATES[-1])}
    for day in DATES:
        assert table(db, "positions", day).height == reference[day].positions.height
        assert table(db, "breaks", day).height == reference[day].breaks.height
    assert rows(db, "SELECT count(*), count(DISTINCT (business_date, landing)) FROM utl.day_runs") == [(3, 3)]


def test_utl_eod_runs_only_what_is_missing_or_stale(landing: Path, db: str) -> None:
    storage = landing.parent / "storage"
    database = Database(url=db, data_dir=None)
    assert run_eod(landing, DATES[-1], storage, database).ran == DATES
    assert run_eod(landing, DATES[-1], storage, database).ran == []
    # The last date's marks: only that date is stale.
    marks = landing / "marks" / "2024-03-07.csv"
    marks.write_text(marks.read_text().replace("\n", "\r\n"))  # same values, other bytes: same rows
    assert run_eod(landing, DATES[-1], storage, database).ran == []
    marks.write_text(marks.read_text().replace("\r\n", "\n") + "ZZZ,2\n")
    assert run_eod(landing, DATES[-1], storage, database).ran == [DATES[-1]]
    # A snapshot of the middle date: it and every later date.
    snapshot = next((landing / "binance" / "mm-spot-2" / "balances").glob("2024-03-06.*"))
    snapshot.write_text(snapshot.read_text().replace('"free": "23.29230000"', '"free": "23.29230001"'))
    assert run_eod(landing, DATES[-1], storage, database).ran == DATES[1:]
    # A date before the first business date is refused, naming it.
    with pytest.raises(RunError, match="before the first business date"):
        run_eod(landing, DATES[0] - dt.timedelta(days=5), storage, database)
