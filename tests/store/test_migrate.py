"""Migrations: applied once, in order, recorded; drift refused; safe when run concurrently."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

import workers
from utl.store import MigrationError, connect, migrate
from utl.store.migrate import read_migrations, sql_dir

REPO_SQL = Path(__file__).resolve().parents[2] / "sql"

CONTRACT_COLUMNS = {
    "breaks": {"business_date", "venue", "account", "asset", "ledger_qty", "venue_qty", "diff", "tolerance", "first_seen"},
    "positions": {"business_date", "venue", "account", "asset", "qty", "mark", "market_value", "cost_basis", "unrealized_pnl"},
    "quarantine": {"file", "row", "column", "reason"},
}


@pytest.fixture
def sql_copy(tmp_path: Path) -> Path:
    """A private copy of the migrations, free to edit."""
    folder = tmp_path / "sql"
    folder.mkdir()
    for path in REPO_SQL.glob("*.sql"):
        shutil.copy(path, folder / path.name)
    return folder


def recorded(url: str) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute("SELECT version, name, checksum, applied_at FROM utl.schema_migrations ORDER BY version").fetchall()


def test_sql_dir_is_the_repository_folder_unless_overridden(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert sql_dir() == REPO_SQL
    monkeypatch.setenv("UTL_SQL_DIR", str(tmp_path))
    assert sql_dir() == tmp_path


def test_migrations_apply_in_order_and_are_recorded(database: str) -> None:
    with connect(database) as conn:
        applied = migrate(conn)
    files = read_migrations(REPO_SQL)
    assert [m.version for m in applied] == [m.version for m in files] and applied[0].version == 1
    rows = recorded(database)
    assert [(v, n, c) for v, n, c, _ in rows] == [
        (m.version, m.name, hashlib.sha256(m.path.read_bytes()).hexdigest()) for m in files
    ]
    with connect(database) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'utl'"
        ).fetchall()
    by_table: dict[str, dict[str, str]] = {}
    for table, column, data_type in columns:
        by_table.setdefault(table, {})[column] = data_type
    for table, expected in CONTRACT_COLUMNS.items():
        assert expected <= set(by_table[table]), table
    # Every quantity and amount is uncapped numeric.
    for table, column in [("positions", "qty"), ("positions", "market_value"), ("breaks", "diff"), ("breaks", "tolerance")]:
        assert by_table[table][column] == "numeric"
    assert {"break_history", "runs", "schema_migrations"} <= set(by_table)


def test_rerun_is_a_no_op(migrated_database: str) -> None:
    before = recorded(migrated_database)
    with connect(migrated_database) as conn:
        assert migrate(conn) == []
    assert recorded(migrated_database) == before


def test_new_migration_applies_alone(database: str, sql_copy: Path) -> None:
    with connect(database) as conn:
        migrate(conn, sql_copy)
        (sql_copy / "900_extra.sql").write_text("CREATE TABLE utl.extra (x numeric);\n")
        assert [m.version for m in migrate(conn, sql_copy)] == [900]
        assert conn.execute("SELECT to_regclass('utl.extra') IS NOT NULL").fetchone()[0]


def test_changed_checksum_is_refused(database: str, sql_copy: Path) -> None:
    with connect(database) as conn:
        migrate(conn, sql_copy)
        first = sorted(sql_copy.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited after it was applied\n")
        (sql_copy / "900_extra.sql").write_text("CREATE TABLE utl.extra (x numeric);\n")
        with pytest.raises(MigrationError, match=f"{first.name} changed after it was applied"):
            migrate(conn, sql_copy)
        # Refused as a whole: the new file was not applied either.
        assert conn.execute("SELECT to_regclass('utl.extra')").fetchone()[0] is None


def test_missing_applied_file_is_refused(database: str, sql_copy: Path) -> None:
    with connect(database) as conn:
        (sql_copy / "900_extra.sql").write_text("CREATE TABLE utl.extra (x numeric);\n")
        migrate(conn, sql_copy)
        (sql_copy / "900_extra.sql").unlink()
        with pytest.raises(MigrationError, match="900_extra is applied but its file is missing"):
            migrate(conn, sql_copy)


def test_failed_migration_leaves_no_trace(migrated_database: str, sql_copy: Path) -> None:
    (sql_copy / "900_broken.sql").write_text("CREATE TABLE utl.half (x numeric);\nSELECT 1 / 0;\n")
    with connect(migrated_database) as conn:
        with pytest.raises(Exception, match="division by zero"):
            migrate(conn, sql_copy)
        assert conn.execute("SELECT to_regclass('utl.half')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM utl.schema_migrations WHERE version = 900").fetchone()[0] == 0
        # The lock was released: a fixed file then applies.
        (sql_copy / "900_broken.sql").write_text("CREATE TABLE utl.half (x numeric);\n")
        assert [m.version for m in migrate(conn, sql_copy)] == [900]


@pytest.mark.parametrize(
    ("name", "message"),
    [("notes.sql", "named NNN_what.sql"), ("001_again.sql", "same version 1")],
)
def test_bad_file_names_are_refused(sql_copy: Path, name: str, message: str) -> None:
    (sql_copy / name).write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=message):
        read_migrations(sql_copy)


WAIT_FOR_SECOND_MIGRATOR = """
-- Hold the first migrator here until the second one is connected, then give it time to
-- reach the lock (or, without a lock, to read the same empty list and migrate too).
DO $$
BEGIN
    FOR i IN 1..1200 LOOP
        PERFORM pg_stat_clear_snapshot();  -- activity stats are cached per transaction
        EXIT WHEN (SELECT count(*) FROM pg_stat_activity
                   WHERE datname = current_database() AND application_name = 'utl') >= 2;
        PERFORM pg_sleep(0.05);
    END LOOP;
END $$;
SELECT pg_sleep(1);
"""


def test_two_processes_migrating_at_once_apply_each_file_once(database: str, sql_copy: Path) -> None:
    # Without the lock both would run 000 and 001, and the second fail on "already exists".
    (sql_copy / "000_wait.sql").write_text(WAIT_FOR_SECOND_MIGRATOR)
    env = {"UTL_SQL_DIR": str(sql_copy)}
    children = [workers.start("migrate", database, env=env) for _ in range(2)]
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]
    applied = [json.loads(out) for out in outputs]
    versions = [m.version for m in read_migrations(sql_copy)]
    assert sorted(applied[0] + applied[1]) == versions  # each file applied by exactly one process
    assert [row[0] for row in recorded(database)] == versions
