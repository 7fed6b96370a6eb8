"""``landing_sensor``: changed landing files launch the dates they affect, in date order,
one run at a time, never past a failed date (orchestration.md, "Runs, failures, reruns")."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import EOD_JOB, build_definitions
from pipelines.instance import dagster_instance
from pipelines.resources import LandingResource, PostgresResource

ROOT = Path(__file__).resolve().parents[2]
DATES = json.loads((ROOT / "data_samples" / "landing_expected.json").read_text())["business_dates"]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@pytest.fixture
def landing(landing_in_database: Path) -> Path:
    return landing_in_database


def tick(landing: Path, instance: dg.DagsterInstance):
    sensor = build_definitions(landing).get_sensor_def("landing_sensor")
    context = dg.build_sensor_context(instance=instance, resources={
        "landing": LandingResource(path=str(landing)), "postgres": PostgresResource()})
    return sensor(context)


def test_a_changed_file_launches_its_date_then_the_later_ones(landing: Path) -> None:
    instance = dagster_instance()
    job = build_definitions(landing).resolve_job_def(EOD_JOB)
    nothing = tick(landing, instance)
    assert isinstance(nothing, dg.SkipReason) and "nothing materialized yet" in nothing.skip_message
    for day in DATES:
        assert job.execute_in_process(partition_key=day, instance=instance, run_config=QUIET).success
    quiet = tick(landing, instance)
    assert isinstance(quiet, dg.SkipReason) and "up to date" in quiet.skip_message

    snapshot = next((landing / "binance" / "mm-spot-2" / "balances").glob("2024-03-06.*"))
    snapshot.write_text(snapshot.read_text().replace('"free": "23.29230000"', '"free": "23.29230001"'))
    request = tick(landing, instance)
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2024-03-06"
    assert tick(landing, instance).run_key == request.run_key  # the same inputs: one launch
    # The daemon launches it; here the run is executed by hand with the request's tags.
    assert job.execute_in_process(partition_key=request.partition_key, instance=instance, run_config=QUIET,
                                  tags=request.tags).success
    request = tick(landing, instance)
    assert isinstance(request, dg.RunRequest) and request.partition_key == "2024-03-07"
    assert job.execute_in_process(partition_key=request.partition_key, instance=instance, run_config=QUIET,
                                  tags=request.tags).success
    assert "up to date" in tick(landing, instance).skip_message


def test_a_failed_date_holds_the_later_ones(landing: Path) -> None:
    instance = dagster_instance()
    job = build_definitions(landing).resolve_job_def(EOD_JOB)
    tags = {"utl/landing": job.tags["utl/landing"]}
    for day in DATES:
        assert job.execute_in_process(partition_key=day, instance=instance, run_config=QUIET, tags=tags).success
    marks = landing / "marks" / "2024-03-06.csv"
    marks.write_text("".join(line for line in marks.read_text().splitlines(keepends=True)
                             if not line.startswith("ETH,")))
    request = tick(landing, instance)
    assert request.partition_key == DATES[1]
    failed = job.execute_in_process(partition_key=DATES[1], instance=instance, run_config=QUIET, tags=tags,
                                    raise_on_error=False)
    assert not failed.success
    # 03-06 is still the earliest stale date: the sensor asks for it again with the same key
    # (Dagster launches a run key once), and never for 03-07 before it.
    again = tick(landing, instance)
    assert isinstance(again, dg.RunRequest) and again.partition_key == DATES[1] and again.run_key == request.run_key
