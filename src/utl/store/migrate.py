"""Schema migrations: ``sql/NNN_what.sql`` applied in order, once each.

Each file runs in its own transaction together with its row in ``utl.schema_migrations``,
so a failed file leaves neither its changes nor its record. An applied file is never
edited (golang-migrate's rule): its SHA-256 is recorded and a changed file is refused,
since rerunning it would not change a database that already has it. A session advisory
lock serializes processes that migrate at once; the later one finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

SQL_DIR_ENV = "UTL_SQL_DIR"
MIGRATE_LOCK_KEY = 0x75746C_6D696772  # "utlmigr": any fixed bigint no other lock uses
_FILE_NAME = re.compile(r"^(\d+)_(\w+)\.sql$")

_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS utl;
CREATE TABLE IF NOT EXISTS utl.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,  -- sha256 hex of the file's bytes
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class MigrationError(RuntimeError):
    """The migration files and the database disagree; nothing was applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    checksum: str

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def sql_dir() -> Path:
    """The migrations folder: ``UTL_SQL_DIR``, else the first ``sql/`` above this file.

    From the repository that is ``<repo>/sql``; an installed package finds it when the
    build puts it at ``utl/sql`` (or anywhere above), else ``UTL_SQL_DIR`` must say where.
    """
    configured = os.environ.get(SQL_DIR_ENV, "").strip()
    if configured:
        return Path(configured)
    for folder in Path(__file__).resolve().parents:
        if (folder / "sql").is_dir() and any((folder / "sql").glob("[0-9]*_*.sql")):
            return folder / "sql"
    raise MigrationError(f"no sql/ folder with migrations above {Path(__file__).parent}; set {SQL_DIR_ENV}")


def read_migrations(folder: Path) -> list[Migration]:
    """The folder's migration files in version order; refuses odd names and duplicate versions."""
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: a migration is named NNN_what.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"{path} and {found[version].path} have the same version {version}")
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found[version] = Migration(version, match.group(2), path, checksum)
    return [found[v] for v in sorted(found)]


def migrate(conn: psycopg.Connection, folder: Path | None = None) -> list[Migration]:
    """Apply the migrations the database lacks; return those applied (empty when up to date).

    ``conn`` must not be inside a transaction: each file commits on its own.
    """
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise MigrationError("migrate needs a connection outside any transaction")
    migrations = read_migrations(folder if folder is not None else sql_dir())
    with conn.transaction():
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK_KEY,))
    try:
        with conn.transaction():
            conn.execute(_BOOTSTRAP)
            rows = conn.execute("SELECT version, name, checksum FROM utl.schema_migrations").fetchall()
        applied = {version: (name, checksum) for version, name, checksum in rows}
        _refuse_drift(migrations, applied)
        done: list[Migration] = []
        for migration in migrations:
            if migration.version in applied:
                continue
            with conn.transaction():
                conn.execute(migration.text())
                conn.execute(
                    "INSERT INTO utl.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            done.append(migration)
        return done
    finally:
        if not conn.closed:  # a lost session has released its locks already
            with conn.transaction():
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK_KEY,))


def _refuse_drift(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> None:
    """Raise when an applied migration's file changed or is gone."""
    by_version = {m.version: m for m in migrations}
    problems = []
    for version, (name, checksum) in sorted(applied.items()):
        current = by_version.get(version)
        if current is None:
            problems.append(f"migration {version:03d}_{name} is applied but its file is missing")
        elif current.checksum != checksum:
            problems.append(
                f"{current.path.name} changed after it was applied (recorded sha256 {checksum[:12]}…, "
                f"file {current.checksum[:12]}…); add a new migration instead of editing it"
            )
    if problems:
        raise MigrationError("; ".join(problems))
