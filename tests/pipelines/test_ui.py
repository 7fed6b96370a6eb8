"""`utl ui` end to end (orchestration.md): the UI and the daemon as ops run them.

A fresh UTL_HOME, DAGSTER_HOME (a copy of dagster_home/dagster.yaml) and a copy of the sample
landing whose marks for 2024-03-06 lack ETH. Through the UI's GraphQL endpoint, as the UI itself
does: the code location loads, a backfill of 2024-03-05..07 stops at the failed date, the
run-failure sensor emails one alert (and the failed backfill no report), the fixed date and the
one after it are backfilled, that backfill's report comes for its last date, and the embedded
PostgreSQL holds exactly the planted breaks. Ctrl-C stops everything, exit 0.
The landing's schedule is set twelve hours away, so that its run never joins the test's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))
from smtp_servers import Inbox, free_port, smtp_server  # noqa: E402

from conftest import scratch_folder, stop_servers_in  # noqa: E402
from utl.store.embedded import postmaster_pid  # noqa: E402

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
LANDING = ROOT / "data_samples" / "landing"
EXPECTED = json.loads((ROOT / "data_samples" / "landing_expected.json").read_text())
DATES = EXPECTED["business_dates"]  # 2024-03-05 .. 2024-03-07
ASSETS = ["landing_rows", "ledger_legs", "day_state", "eod_tables"]
CHECKS = {"day_state": {"legs_sum_to_positions", "explain_ties", "marks_cover_positions", "no_breaks"},
          "ledger_legs": {"no_quarantine"}, "eod_tables": {"stream_agrees"}}
DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status } } }"""
PARTITIONS = """{ assetNodes { assetKey { path } assetPartitionStatuses {
  ... on TimePartitionStatuses { ranges { status startKey endKey } } } } }"""
FAILURES = """query($id: String!) { runsOrError(filter: {statuses: [FAILURE], tags: [{key: "dagster/backfill", value: $id}]}) {
  ... on Runs { results { runId tags { key value }
    eventConnection { events { __typename ... on ExecutionStepFailureEvent { stepKey error { message } } } } } } } }"""

MATERIALIZED = """{ assetOrError(assetKey: {path: ["day_state"]}) { ... on Asset {
  assetMaterializations(partitions: ["2024-03-05", "2024-03-06", "2024-03-07"]) {
    partition runOrError { ... on Run { startTime endTime } } } } } }"""


class Ui:
    def __init__(self, port: int):
        self.port = port

    def gql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/graphql",
                                         data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer
        return answer["data"]

    def backfill(self, partitions: list[str]) -> str:
        """As the UI's "Launch backfill" does: partitions and an asset selection."""
        launched = self.gql(LAUNCH, {"params": {"partitionNames": partitions, "fromFailure": False,
                                                "assetSelection": [{"path": [a]} for a in ASSETS]}})
        assert launched["launchPartitionBackfill"]["__typename"] == "LaunchBackfillSuccess", launched
        return launched["launchPartitionBackfill"]["backfillId"]

    def wait(self, backfill: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.gql(BACKFILL, {"id": backfill})["partitionBackfillOrError"]["status"]
            if status in DONE:
                return status
            time.sleep(3)
        raise AssertionError(f"backfill {backfill} still {status} after {timeout} s")

    def partitions(self) -> dict[str, dict[str, str]]:
        """Per asset: partition -> status, for the sample's dates."""
        statuses: dict[str, dict[str, str]] = {}
        for node in self.gql(PARTITIONS)["assetNodes"]:
            days = statuses.setdefault(node["assetKey"]["path"][0], {})
            for r in node["assetPartitionStatuses"]["ranges"]:
                for day in DATES:
                    if r["startKey"] <= day <= r["endKey"]:
                        days[day] = r["status"]
        return statuses


def as_tuples(rows) -> list[tuple]:
    return sorted((r["venue"], r["account"], r["asset"], Decimal(r["ledger_qty"]), Decimal(r["venue_qty"]),
                   Decimal(r["diff"]), Decimal(r["tolerance"]), r["first_seen"]) for r in rows)


def dagster_processes(dagster_home: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("DAGSTER_HOME") == str(dagster_home):
                found.append(process)
        except psutil.Error:
            continue
    return found


@pytest.fixture
def folder():
    folder = scratch_folder("ui")
    yield folder
    for process in dagster_processes(folder / "dagster_home"):
        process.kill()
    stop_servers_in(folder)
    shutil.rmtree(folder, ignore_errors=True)


def test_ops_rerun_a_failed_day_from_the_ui(folder: Path):
    home, dagster_home, landing = folder / "home", folder / "dagster_home", folder / "landing"
    dagster_home.mkdir()
    shutil.copyfile(ROOT / "dagster_home" / "dagster.yaml", dagster_home / "dagster.yaml")
    shutil.copytree(LANDING, landing)
    marks = landing / "marks" / "2024-03-06.csv"
    marks.write_text("".join(line for line in marks.read_text().splitlines(keepends=True)
                             if not line.startswith("ETH,")))
    # The schedule (on by default) would launch yesterday's run, and alert on it, mid-test.
    away = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)
    with (landing / "utl.toml").open("a") as toml:
        toml.write(f'\n[schedule]\ncron = "{away.minute} {away.hour} * * *"\n')
    inbox = Inbox()
    port = free_port()
    with smtp_server(inbox) as smtp_port:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("UTL_", "DAGSTER_")) or k in ("UTL_SMTP_HOST",)}
        env.update(UTL_HOME=str(home), DAGSTER_HOME=str(dagster_home), UTL_LANDING=str(landing),
                   UTL_SMTP_HOST="127.0.0.1", UTL_SMTP_PORT=str(smtp_port))
        out = (folder / "ui.out").open("w")
        ui = subprocess.Popen([sys.executable, "-m", "utl.cli", "ui", "--port", str(port)], env=env,
                              stdout=out, stderr=subprocess.STDOUT)
        try:
            address = f"Dagster UI: http://127.0.0.1:{port}"
            deadline = time.monotonic() + 300
            while address not in (folder / "ui.out").read_text():
                assert ui.poll() is None, why_it_stopped((folder / "ui.out").read_text())
                assert time.monotonic() < deadline, "the UI never said its address"
                time.sleep(1)
            client = Ui(port)
            run_scenario(client, inbox, env, landing)
        finally:
            if ui.poll() is None:
                ui.send_signal(signal.SIGINT)  # Ctrl-C
            code = ui.wait(120)
            out.close()
        log = (folder / "ui.out").read_text()
        assert code == 0, log[-3000:]
        assert "utl ui: stopped" in log
    assert dagster_processes(dagster_home) == []
    assert postmaster_pid(home / "pgdata") is None


def why_it_stopped(log: str) -> str:
    """The lines of the UI's log that say why it stopped (an instance-ref argument runs to
    thousands of characters: the tail alone once hid the reason), then the tail."""
    said = [line[:600] for line in log.splitlines()
            if any(word in line for word in ("Exception", "Error", "exited", "Timed out", "heartbeat",
                                              "utl ui:", "stopped"))]
    return "\n".join(said[-20:]) + "\n--- tail ---\n" + log[-1500:]


def run_scenario(ui: Ui, inbox: Inbox, env: dict[str, str], landing: Path) -> None:
    location = ui.gql("""{ workspaceOrError { ... on Workspace { locationEntries { name
        locationOrLoadError { __typename ... on PythonError { message } } } } } }""")
    entries = location["workspaceOrError"]["locationEntries"]
    assert [e["locationOrLoadError"]["__typename"] for e in entries] == ["RepositoryLocation"], entries
    nodes = ui.gql("""{ assetNodes { assetKey { path }
        assetChecksOrError { ... on AssetChecks { checks { name } } } } }""")["assetNodes"]
    assert {n["assetKey"]["path"][0] for n in nodes} == set(ASSETS)
    checks = {n["assetKey"]["path"][0]: {c["name"] for c in n["assetChecksOrError"]["checks"]} for n in nodes}
    assert {a: c for a, c in checks.items() if c} == CHECKS

    first = ui.backfill(DATES)
    assert ui.wait(first) in ("COMPLETED_FAILED", "FAILED", "COMPLETED")
    statuses = ui.partitions()
    assert statuses["day_state"] == {"2024-03-05": "MATERIALIZED", "2024-03-06": "FAILED"}
    assert statuses["eod_tables"].get("2024-03-05") == "MATERIALIZED"
    assert "2024-03-06" not in statuses["eod_tables"] and "2024-03-07" not in statuses["eod_tables"]
    failed = ui.gql(FAILURES, {"id": first})["runsOrError"]["results"]
    assert len(failed) == 1 and {"key": "dagster/partition", "value": "2024-03-06"} in failed[0]["tags"]
    [error] = [e["error"]["message"] for e in failed[0]["eventConnection"]["events"]
               if e["__typename"] == "ExecutionStepFailureEvent" and e["stepKey"] == "day_state"]
    assert "2024-03-06" in error and "day_state" in error and "ETH" in error and "marks/2024-03-06.csv" in error

    # The run-failure sensor (through the daemon) sends one alert for the failed run.
    deadline = time.monotonic() + 180
    while not inbox.received and time.monotonic() < deadline:
        time.sleep(2)
    assert len(inbox.received) == 1
    alert = inbox.received[0]
    assert alert.rcpt_tos == ["middle-office@example.com"]
    assert alert.message["Subject"].startswith("UTL run FAILED 2024-03-06: day_state: 2024-03-06: day_state: no mark "
                                               "for ETH on 2024-03-06")
    body = alert.message.get_content()
    assert "Materialize selected" in body and "Partitions" in body

    # Ops fix the marks file and launch the failed date and the one after it.
    shutil.copyfile(LANDING / "marks" / "2024-03-06.csv", landing / "marks" / "2024-03-06.csv")
    second = ui.backfill(DATES[1:])
    assert ui.wait(second) in ("COMPLETED_SUCCESS", "COMPLETED")
    statuses = ui.partitions()
    for asset in ASSETS:
        assert statuses[asset] == dict.fromkeys(DATES, "MATERIALIZED"), asset
    for day in DATES:
        done = subprocess.run([sys.executable, "-m", "utl.cli", "breaks", "--landing", str(landing), "--date", day,
                               "--format", "csv"], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        expected = sorted((b["venue"], b["account"], b["asset"], Decimal(b["ledger_qty"]), Decimal(b["venue_qty"]),
                           Decimal(b["diff"]), Decimal(b["tolerance"]), b["first_seen"])
                          for b in EXPECTED["breaks"][day])
        assert as_tuples(csv.DictReader(io.StringIO(done.stdout))) == expected, day  # duplicates would show
    # The backfill that succeeded sends one report, for its last date (backfill_report).
    deadline = time.monotonic() + 180
    while len(inbox.received) < 2 and time.monotonic() < deadline:
        time.sleep(2)
    assert [m.message["Subject"].split(":")[0] for m in inbox.received] == [
        "UTL run FAILED 2024-03-06", f"UTL breaks {DATES[-1]}"]
    report = inbox.received[1].message
    assert [p.get_filename() for p in report.iter_attachments()] == [f"breaks-{DATES[-1]}.csv"]
    # The self-dependent chain ran in date order, each date's run after the one before ended.
    runs = ui.gql(MATERIALIZED)["assetOrError"]["assetMaterializations"]
    spans = sorted((m["partition"], m["runOrError"]["startTime"], m["runOrError"]["endTime"]) for m in runs)
    assert [day for day, _, _ in spans] == DATES
    assert all(later[1] >= earlier[2] for earlier, later in zip(spans, spans[1:])), spans
