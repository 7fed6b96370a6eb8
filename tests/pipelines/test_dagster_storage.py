"""Where the Dagster instance of ``dagster_home/dagster.yaml`` keeps run history
(orchestration.md): PostgreSQL schema ``dagster`` of ``UTL_DATABASE_URL`` when set, else SQLite
under ``DAGSTER_HOME/storage``. A real partition is materialized on each."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from pipelines.definitions import EOD_JOB, build_definitions
from pipelines.instance import dagster_instance
from pipelines.storage import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]
LANDING = ROOT / "data_samples" / "landing"
DAY = "2024-03-05"
# The assets that need no PostgreSQL of their own: the run history is what is under test.
IN_MEMORY = [dg.AssetKey(a) for a in ("landing_rows", "ledger_legs", "day_state")]


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def materialize(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = build_definitions(LANDING).resolve_job_def(EOD_JOB)
    return job.execute_in_process(partition_key=DAY, instance=instance, asset_selection=IN_MEMORY)


def test_run_history_in_postgres_schema_dagster(database, dagster_home, monkeypatch):
    monkeypatch.setenv("UTL_DATABASE_URL", database)
    instance = dagster_instance()
    result = materialize(instance)
    assert result.success
    with psycopg.connect(database) as conn:
        runs = conn.execute(
            "SELECT r.run_id, r.status, t.value FROM dagster.runs r "
            "JOIN dagster.run_tags t ON t.run_id = r.run_id AND t.key = 'dagster/partition'").fetchall()
        materialized = conn.execute(
            "SELECT count(*) FROM dagster.event_logs WHERE run_id = %s AND dagster_event_type = "
            "'ASSET_MATERIALIZATION'", (result.run_id,)).fetchone()[0]
        public = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
                              ).fetchone()[0]
    assert runs == [(result.run_id, "SUCCESS", DAY)]
    assert materialized == len(IN_MEMORY)
    assert public == 0  # nothing of Dagster's outside its schema
    assert not list(dagster_home.rglob("*.db"))  # no SQLite history (storage/ still holds logs)
    # A second instance (another process would do the same) reads the same history.
    assert dg.DagsterInstance.get().get_run_by_id(result.run_id).tags["dagster/partition"] == DAY


def test_run_history_in_sqlite_without_database_url(dagster_home, monkeypatch):
    monkeypatch.delenv("UTL_DATABASE_URL", raising=False)
    instance = dagster_instance()
    result = materialize(instance)
    assert result.success
    assert (dagster_home / "storage" / "history" / "runs.db").is_file()
    assert (dagster_home / "storage" / "history" / "runs" / f"{result.run_id}.db").is_file()
    assert (dagster_home / "storage" / "schedules" / "schedules.db").is_file()
    assert dg.DagsterInstance.get().get_run_by_id(result.run_id).tags["dagster/partition"] == DAY


def test_sqlalchemy_url_keeps_sockets_and_passwords():
    url = sqlalchemy_url("postgresql://u:p%40ss@/utl_x?host=/var/lib/utl/pgdata&port=5432", "dagster")
    assert url.startswith("postgresql+psycopg2://u:p%40ss@/utl_x?")
    assert "host=%2Fvar%2Flib%2Futl%2Fpgdata" in url and "port=5432" in url
    assert "options=-csearch_path%3Ddagster" in url
