"""A database as the last release left it: migrated through one version, not past it."""

from __future__ import annotations

import shutil
from pathlib import Path

from utl.store import connect, migrate
from utl.store.migrate import read_migrations, sql_dir


def migrated_through(database: str, folder: Path, version: int) -> str:
    """``database`` migrated through ``version`` only (the later files left out of ``folder``)."""
    folder.mkdir()
    for migration in read_migrations(sql_dir()):
        if migration.version <= version:
            shutil.copy(migration.path, folder)
    with connect(database) as conn:
        assert [m.version for m in migrate(conn, folder)][-1] == version
    return database
