"""Database fixtures shared by all tests.

``database`` is the URL of a fresh, empty PostgreSQL database, dropped after the test.
It runs once per server: the embedded one (started once per session, in its own data
dir) and, when ``TEST_DATABASE_URL`` is set, the server at that URL (whose role must be
allowed to create databases). ``migrated_database`` is the same with ``sql/`` applied.
``scratch_dir`` is a folder where a test may start an embedded server of its own.
Every test runs with ``UTL_HOME`` set to a scratch folder, so none touches the user's own.
"""

from __future__ import annotations

import contextlib
import decimal
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from utl.home import make_folders
from utl.store import connect, embedded_server, migrate

SERVERS = ["embedded"] + (["env"] if os.environ.get("TEST_DATABASE_URL") else [])


def scratch_folder(prefix: str) -> Path:
    """A new folder under ``<tmp>/utl-test-<uid>/`` that the tests create ``0755``: as root
    the embedded server runs as user 'pgserver', who must enter its UTL_HOME, and pytest's
    ``tmp_path`` lies under a ``0700`` folder (which UTL rightly refuses to open)."""
    base = Path(tempfile.gettempdir()) / f"utl-test-{os.geteuid()}"
    make_folders(base, 0o755)
    folder = base / f"{prefix}-{uuid.uuid4().hex[:8]}"
    make_folders(folder, 0o755)
    return folder


def stop_servers_in(folder: Path) -> None:
    """Stop any embedded server a test left running under ``folder``."""
    for pid_file in folder.rglob("postmaster.pid"):
        with contextlib.suppress(ValueError, psutil.Error):
            server = psutil.Process(int(pid_file.read_text().split("\n", 1)[0]))
            if server.name() == "postgres":
                server.terminate()
                server.wait(30)


@pytest.fixture(scope="session", autouse=True)
def isolated_utl_home() -> Iterator[Path]:
    """``UTL_HOME`` and ``DAGSTER_HOME`` for the whole session (commands run by tests
    inherit them): no test touches the user's data or the repository's run history."""
    folder = scratch_folder("home")
    values = {"UTL_HOME": str(folder), "DAGSTER_HOME": str(folder / "dagster_home")}
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    yield folder
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    stop_servers_in(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def default_decimal_context() -> Iterator[None]:
    """Every test starts in Python's default decimal context (28 digits), as a user's process
    does: a test that widens the context (or a module that did so at import) must not hide
    a library sum that rounds."""
    with decimal.localcontext(decimal.Context()):
        assert decimal.getcontext().prec == 28
        yield


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A new root-safe folder; any embedded server a test left running in it is stopped."""
    folder = scratch_folder("scratch")
    yield folder
    stop_servers_in(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_url() -> Iterator[str]:
    """The session's embedded server (its ``utl`` database); removed after the session."""
    folder = scratch_folder("pytest")
    try:
        with embedded_server(folder / "pgdata") as url:
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session", params=SERVERS)
def server_url(request: pytest.FixtureRequest) -> str:
    """A URL on which databases can be created and dropped."""
    if request.param == "env":
        return os.environ["TEST_DATABASE_URL"]
    return request.getfixturevalue("embedded_url")


@pytest.fixture
def database(server_url: str) -> Iterator[str]:
    """The URL of a new empty database, dropped (with any session left on it) afterwards."""
    name = f"utl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_url, dbname=name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def migrated_database(database: str) -> str:
    """A new database with every migration in ``sql/`` applied."""
    with connect(database) as conn:
        migrate(conn)
    return database


@pytest.fixture
def landing_in_database(tmp_path: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the sample landing folder whose assets write to a fresh test database
    (``UTL_DATABASE_URL``, as in production), with this test's own Dagster run history."""
    monkeypatch.setenv("UTL_DATABASE_URL", database)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    copy = tmp_path / "landing"
    shutil.copytree(Path(__file__).resolve().parents[1] / "data_samples" / "landing", copy)
    return copy
