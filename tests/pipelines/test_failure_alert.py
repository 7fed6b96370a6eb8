"""The run-failure sensor (report.md, "Alerts"): a real failed run of a date, evaluated with
Dagster's own sensor context, against real SMTP servers (aiosmtpd)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import dagster as dg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from smtp_servers import Inbox, closed_port, smtp_server  # noqa: E402

from pipelines.definitions import EOD_JOB, build_definitions  # noqa: E402
from utl.report.send import SendError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DAY = "2024-03-05"
IN_MEMORY = [dg.AssetKey(a) for a in ("landing_rows", "ledger_legs", "day_state")]


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """The first date run without its ETH mark: day_state fails."""
    landing = tmp_path_factory.mktemp("alert") / "landing"
    shutil.copytree(ROOT / "data_samples" / "landing", landing)
    marks = landing / "marks" / f"{DAY}.csv"
    marks.write_text("".join(line for line in marks.read_text().splitlines(keepends=True)
                             if not line.startswith("ETH,")))
    defs = build_definitions(landing)
    instance = dg.DagsterInstance.ephemeral()
    result = defs.resolve_job_def(EOD_JOB).execute_in_process(
        partition_key=DAY, instance=instance, asset_selection=IN_MEMORY, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    context = dg.build_run_status_sensor_context(sensor_name="run_failure_alert", dagster_event=failure,
                                                 dagster_instance=instance, dagster_run=result.dagster_run)
    return defs.resolve_sensor_def("run_failure_alert"), context.for_run_failure(), landing


def test_one_alert_names_date_asset_cause_and_rerun(failed_run, monkeypatch):
    sensor, context, landing = failed_run
    inbox = Inbox()
    with smtp_server(inbox) as port:
        monkeypatch.setenv("UTL_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("UTL_SMTP_PORT", str(port))
        monkeypatch.delenv("UTL_REPORT_TO", raising=False)
        sensor(context)
    [alert] = inbox.received
    assert alert.rcpt_tos == ["middle-office@example.com"]  # [report] to of the landing's utl.toml
    assert alert.message["Subject"].startswith(f"UTL run FAILED {DAY}: day_state: {DAY}: day_state: no mark for ETH")
    body = alert.message.get_content()
    assert f"marks/{DAY}.csv" in body
    assert f'Assets > day_state > Partitions, select the failed (red) partition {DAY}' in body
    assert f"utl eod --landing {landing} --date {DAY}" in body


def test_an_alert_that_cannot_be_sent_fails_the_sensor(failed_run, monkeypatch):
    sensor, context, _ = failed_run
    monkeypatch.setenv("UTL_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("UTL_SMTP_PORT", str(closed_port()))
    with pytest.raises(SendError):
        sensor(context)
