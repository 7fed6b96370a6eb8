"""The embedded server: starts, stops with its last user, survives a killed user, keeps every
file in its home, and changes no folder's permissions outside UTL's own."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from pathlib import Path

import psutil
import psycopg
import pytest

import workers
from utl.home import default_home, landing_home, landing_id, utl_home
from utl.store import (
    Database, DatabaseUnavailable, EmbeddedServerError, connect, database_url, embedded_server, open_database,
)
from utl.store.embedded import postmaster_pid
from utl.store.pginstall import bundled_install

ROOT = Path(__file__).resolve().parents[2]
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the server runs as another user only under root")


@pytest.fixture
def data_dir(scratch_dir: Path) -> Path:
    return scratch_dir / "pgdata"


def run_query(data_dir: Path, env: dict[str, str] | None = None) -> tuple[dict, str]:
    """Run a query in a new process; its answer and what it said on stderr."""
    child = workers.start("query", str(data_dir), env=env, stderr=subprocess.PIPE)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    return json.loads(out), err


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


def modes(paths: list[Path]) -> dict[Path, int]:
    return {p: p.stat().st_mode for p in paths if p.exists()}


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


def test_keeps_every_file_in_its_home(data_dir: Path, scratch_dir: Path) -> None:
    """Lock, users list, log, socket and binaries under the home; nothing in the temp folder."""
    private_tmp = scratch_dir / "tmp"
    private_tmp.mkdir()
    global_lock = Path("/tmp/.lockfile")
    lock_before = global_lock.stat().st_mtime_ns if global_lock.exists() else None
    answer, _ = run_query(data_dir, env={"TMPDIR": str(private_tmp)})
    assert answer["answer"] == 42
    assert f"host={data_dir}&" in answer["url"]  # the socket is in the data dir: no TCP, nothing in /tmp
    assert list(private_tmp.iterdir()) == []
    assert (global_lock.stat().st_mtime_ns if global_lock.exists() else None) == lock_before
    assert {p.name for p in scratch_dir.iterdir()} == {"pgdata", "postgres", "postgres.lock", "postgres.users",
                                                      "postgres.log", "tmp"}
    assert "database system is shut down" in (scratch_dir / "postgres.log").read_text()


def test_stopped_at_exit_when_the_block_is_never_left(data_dir: Path) -> None:
    child = workers.start("leave-open", str(data_dir))
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0 and json.loads(out) == {"answer": 42}
    assert postmaster_pid(data_dir) is None


def test_reuses_a_server_whose_starter_was_killed(data_dir: Path) -> None:
    server = workers.start("serve", str(data_dir))
    json.loads(server.stdout.readline())
    pid = postmaster_pid(data_dir)
    assert pid is not None
    os.kill(server.pid, signal.SIGKILL)
    server.wait()
    assert postmaster_pid(data_dir) == pid  # the server outlives the process that started it

    answer, said = run_query(data_dir)  # a new process uses it...
    assert answer["answer"] == 42
    assert f"reusing the server left running by an earlier run (pid {pid})" in said
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

    answer, said = run_query(data_dir)
    assert answer["answer"] == 42 and "reusing" not in said
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
        assert run_query(data_dir)[0]["answer"] == 42
    finally:
        other.kill()
        other.wait()


def test_long_home_falls_back_to_loopback_tcp(scratch_dir: Path) -> None:
    deep = scratch_dir / ("d" * 60) / ("e" * 40) / "pgdata"
    with embedded_server(deep) as url, connect(url) as conn:
        assert "host=127.0.0.1&" in url
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_no_permission_changes_outside_utl_folder(data_dir: Path) -> None:
    """Neither the folders above UTL_HOME nor the clone and its venv change mode."""
    package = bundled_install().parent
    watched = [*data_dir.parent.parents, ROOT, *ROOT.parents, *package.parents, *package.rglob("*")]
    before = modes(watched)
    with embedded_server(data_dir):
        pass
    assert modes(watched) == before


@as_root
def test_refuses_a_home_the_server_user_cannot_enter(scratch_dir: Path) -> None:
    closed = scratch_dir / "closed"
    closed.mkdir(mode=0o700)
    closed.chmod(0o700)
    with pytest.raises(EmbeddedServerError, match=f"user 'pgserver', who cannot enter {closed} .*Set UTL_HOME"):
        with embedded_server(closed / "home" / "pgdata"):
            pass
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    assert list(closed.iterdir()) == []


@as_root
def test_server_runs_as_the_unprivileged_user(data_dir: Path) -> None:
    with embedded_server(data_dir):
        assert psutil.Process(postmaster_pid(data_dir)).username() == "pgserver"
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        assert stat.S_IMODE(data_dir.parent.stat().st_mode) == 0o755


def test_default_home(scratch_dir: Path) -> None:
    closed, opened = scratch_dir / "closed", scratch_dir / "open"  # scratch_dir's parents are open
    closed.mkdir(mode=0o700)
    opened.mkdir()
    closed.chmod(0o700)
    opened.chmod(0o755)
    system = Path("/var/lib/utl")
    assert default_home(root=False, home=closed, xdg_data_home=None) == closed / ".local/share/utl"
    assert default_home(root=False, home=closed, xdg_data_home="/data/x") == Path("/data/x/utl")
    assert default_home(root=False, home=closed, xdg_data_home="relative") == closed / ".local/share/utl"
    # Root's private home: the server's user could not reach it, so the system folder.
    assert default_home(root=True, home=closed, xdg_data_home=None) == system
    assert default_home(root=True, home=opened, xdg_data_home=None) == opened / ".local/share/utl"


def test_utl_home_is_made_per_user(monkeypatch: pytest.MonkeyPatch, scratch_dir: Path) -> None:
    monkeypatch.delenv("UTL_HOME")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(scratch_dir))
    home = utl_home()
    assert home == scratch_dir / ".local/share/utl" and home.is_dir()
    # Root's needs the server's user to enter it; a user's is theirs alone.
    assert stat.S_IMODE(home.stat().st_mode) == (0o755 if os.geteuid() == 0 else 0o700)
    assert stat.S_IMODE(scratch_dir.stat().st_mode) == 0o755  # not ours: unchanged
    monkeypatch.setenv("UTL_HOME", str(scratch_dir / "mine"))
    assert utl_home() == scratch_dir / "mine"


def test_landing_ids_are_stable_short_and_distinct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "one" / "Landing Folder", tmp_path / "two" / "Landing Folder"
    assert landing_id(a) == landing_id(tmp_path / "one" / "." / "Landing Folder")
    assert landing_id(a) != landing_id(b)
    assert landing_id(a).startswith("landing_folder_")
    long = tmp_path / ("x" * 200)
    assert len("utl_" + landing_id(long)) <= 63
    monkeypatch.setenv("UTL_HOME", str(tmp_path / "home"))
    assert landing_home(a) == tmp_path / "home" / "landings" / landing_id(a)


def test_database_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UTL_DATABASE_URL", "postgresql://someone@db.example/ledger")
    assert database_url() == "postgresql://someone@db.example/ledger"
    # No embedded server is started for it; the server is tried first, so a command says
    # "database: ..." only once connected, and an unreachable one is one line.
    with pytest.raises(DatabaseUnavailable, match=r"^cannot connect to PostgreSQL at db\.example \(database ledger\): "):
        with open_database():
            pass
    database = Database(url="postgresql://someone@db.example/ledger", data_dir=None)
    assert database.description == "PostgreSQL database ledger on db.example"
    monkeypatch.setenv("UTL_DATABASE_URL", "  ")
    assert database_url() is None


def test_open_database_gives_each_landing_its_own(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    monkeypatch.delenv("UTL_DATABASE_URL", raising=False)
    monkeypatch.setenv("UTL_HOME", str(data_dir.parent))
    one, two = data_dir.parent / "one" / "landing", data_dir.parent / "two" / "landing"
    with open_database(one) as first, open_database(two) as second:
        assert first.data_dir == second.data_dir == data_dir
        with first.connect() as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (f"utl_{landing_id(one)}",)
            conn.execute("CREATE TABLE only_in_one (x int)")
        with second.connect() as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (f"utl_{landing_id(two)}",)
            assert conn.execute("SELECT to_regclass('only_in_one')").fetchone() == (None,)
        assert f"(database utl_{landing_id(one)}, landing {one})" in first.description
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(first.url, connect_timeout=5)
