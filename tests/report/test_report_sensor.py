"""The report of a UI or scheduled run: the ``break_report`` run-status sensor sends it once,
for the run's date, to a real SMTP server; ``utl eod``'s own runs are left to ``utl eod``.
A backfill's report is ``backfill_report``'s: once the backfill has succeeded as a whole, for
its last date; none for a backfill with a failed date."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import dagster as dg
import pytest

from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

from pipelines.definitions import EOD_JOB, build_definitions
from pipelines.instance import dagster_instance
from pipelines.resources import LandingResource, PostgresResource
from smtp_servers import Inbox, smtp_server

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = json.loads((ROOT / "data_samples" / "landing_expected.json").read_text())
DATES = EXPECTED["business_dates"]
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@pytest.fixture
def landing(landing_in_database: Path) -> Path:
    return landing_in_database


def evaluate(landing: Path, result: dg.ExecuteInProcessResult):
    defs = build_definitions(landing)
    instance = dagster_instance()
    context = dg.build_run_status_sensor_context(
        sensor_name="break_report", dagster_instance=instance,
        dagster_run=instance.get_run_by_id(result.run_id), dagster_event=result.get_run_success_event(),
        resources={"landing": LandingResource(path=str(landing)), "postgres": PostgresResource()},
    )
    return defs.get_sensor_def("break_report")(context)


def test_a_ui_run_sends_the_report_of_its_date(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        monkeypatch.setenv("UTL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("UTL_SMTP_PORT", str(port))
        monkeypatch.setenv("UTL_REPORT_TO", "middle-office@example.com")
        job = build_definitions(landing).resolve_job_def(EOD_JOB)
        results = [job.execute_in_process(partition_key=d, instance=dagster_instance(), run_config=QUIET) for d in DATES]
        outcome = evaluate(landing, results[-1])
        assert isinstance(outcome, dg.SkipReason) and "sent to middle-office@example.com" in outcome.skip_message
        assert len(inbox.received) == 1
        subject = inbox.received[0].message["Subject"]
        open_breaks = len(EXPECTED["breaks"][DATES[-1]])
        assert f"UTL breaks {DATES[-1]}: {open_breaks} open" in subject

        eod_job = build_definitions(landing).resolve_job_def(EOD_JOB)
        by_eod = eod_job.execute_in_process(partition_key=DATES[-1], instance=dagster_instance(), run_config=QUIET,
                                            tags={"utl/command": "utl eod"})
        skipped = evaluate(landing, by_eod)
        assert "utl eod sends its own report" in skipped.skip_message
        assert len(inbox.received) == 1


def test_a_refused_report_fails_the_sensor_tick(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = Inbox(refuse="554 5.7.1 not today")
    with smtp_server(inbox) as port:
        monkeypatch.setenv("UTL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("UTL_SMTP_PORT", str(port))
        monkeypatch.setenv("UTL_REPORT_TO", "middle-office@example.com")
        job = build_definitions(landing).resolve_job_def(EOD_JOB)
        result = job.execute_in_process(partition_key=DATES[0], instance=dagster_instance(), run_config=QUIET)
        with pytest.raises(Exception, match="FAILED to send"):
            evaluate(landing, result)



def recorded_backfill(landing: Path, instance: dg.DagsterInstance, backfill_id: str, dates: list[str],
                      status: BulkActionStatus) -> None:
    """A backfill of the sample's assets as the UI records one, ended with ``status``."""
    defs = build_definitions(landing)
    graph = defs.resolve_asset_graph()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=backfill_id, asset_graph=graph, partition_names=dates,
        asset_selection=list(graph.get_all_asset_keys()), backfill_timestamp=time.time(), tags={},
        dynamic_partitions_store=instance, all_partitions=False, title=None, description=None, run_config=None)
    instance.add_backfill(backfill.with_status(status).with_end_timestamp(time.time()))


def tick(landing: Path, instance: dg.DagsterInstance, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={
        "landing": LandingResource(path=str(landing)), "postgres": PostgresResource()})
    outcome = build_definitions(landing).get_sensor_def("backfill_report")(context)
    return outcome, context.cursor


def test_a_backfill_sends_one_report_for_its_last_date_once_it_has_succeeded(
        landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        monkeypatch.setenv("UTL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("UTL_SMTP_PORT", str(port))
        monkeypatch.setenv("UTL_REPORT_TO", "middle-office@example.com")
        instance = dagster_instance()
        outcome, cursor = tick(landing, instance, None)  # the first tick only starts watching
        assert "watching backfills" in outcome.skip_message and cursor is not None

        job = build_definitions(landing).resolve_job_def(EOD_JOB)
        runs = [job.execute_in_process(partition_key=d, instance=instance, run_config=QUIET,
                                       tags={"dagster/backfill": "ok"}) for d in DATES]
        # A backfill's runs are not reported one by one: the backfill is.
        assert "backfill_report" in evaluate(landing, runs[-1]).skip_message
        outcome, cursor = tick(landing, instance, cursor)
        assert "no backfill has completed" in outcome.skip_message  # not recorded as done yet
        assert inbox.received == []

        recorded_backfill(landing, instance, "failed", DATES, BulkActionStatus.COMPLETED_FAILED)
        recorded_backfill(landing, instance, "ok", DATES, BulkActionStatus.COMPLETED_SUCCESS)
        outcome, cursor = tick(landing, instance, cursor)
        assert "backfill ok:" in outcome.skip_message and "sent to middle-office@example.com" in outcome.skip_message
        [mail] = inbox.received
        assert mail.message["Subject"].startswith(f"UTL breaks {DATES[-1]}: {len(EXPECTED['breaks'][DATES[-1]])} open")
        outcome, cursor = tick(landing, instance, cursor)  # sent once
        assert "no backfill has completed" in outcome.skip_message and len(inbox.received) == 1


def test_a_backfill_report_that_cannot_be_sent_is_tried_again(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refusing, inbox = Inbox(refuse="554 5.7.1 not today"), Inbox()
    monkeypatch.setenv("UTL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("UTL_REPORT_TO", "middle-office@example.com")
    instance = dagster_instance()
    _, cursor = tick(landing, instance, None)
    job = build_definitions(landing).resolve_job_def(EOD_JOB)
    job.execute_in_process(partition_key=DATES[0], instance=instance, run_config=QUIET, tags={"dagster/backfill": "b1"})
    recorded_backfill(landing, instance, "b1", DATES[:1], BulkActionStatus.COMPLETED_SUCCESS)
    with smtp_server(refusing) as port:
        monkeypatch.setenv("UTL_SMTP_PORT", str(port))
        with pytest.raises(Exception, match="FAILED to send"):
            tick(landing, instance, cursor)
    with smtp_server(inbox) as port:
        monkeypatch.setenv("UTL_SMTP_PORT", str(port))
        outcome, _ = tick(landing, instance, cursor)  # the cursor did not move past it
    assert "backfill b1:" in outcome.skip_message
    [mail] = inbox.received
    assert mail.message["Subject"].startswith(f"UTL breaks {DATES[0]}:")
