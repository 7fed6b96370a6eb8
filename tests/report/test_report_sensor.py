"""The report of a UI or scheduled run: the ``break_report`` run-status sensor sends it once,
for the run's date, to a real SMTP server; ``utl eod``'s own runs are left to ``utl eod``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

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
