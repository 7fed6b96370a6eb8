"""``utl ui``: the Dagster UI and daemon for the code location, for as long as ops want them.

Two child processes, ``dagster-webserver`` (the UI and its GraphQL endpoint) and
``dagster-daemon run`` (schedules, sensors, backfills, the run queue), both loading
``pipelines.definitions`` on the instance in ``DAGSTER_HOME``, for the landing folder in
``UTL_LANDING``. Without ``UTL_DATABASE_URL`` the embedded PostgreSQL of that landing stays up
for the whole session and the children reach it through ``UTL_EMBEDDED_URL``.

The children share one process group of their own, so the code servers and run workers they
start belong to it too: stopping sends SIGTERM to the group, waits, then SIGKILLs what is left.
Ctrl-C (SIGINT) and SIGTERM both stop; the command then exits 0.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from pipelines.instance import REPOSITORY_HOME, dagster_home
from pipelines.resources import EMBEDDED_URL_ENV, LANDING_ENV, landing_from_env
from utl.store import database_url, open_database

CODE_LOCATION = "pipelines.definitions"  # [tool.dagster] module_name
READY_TIMEOUT = 300.0  # loading the code location twice on a busy machine takes a while
STOP_PATIENCE = 30.0


class UiError(RuntimeError):
    """The UI could not start (a child exited, or it never answered)."""


class _Stop(Exception):
    """Ctrl-C (SIGINT) or SIGTERM, raised in the main thread."""


def instance_home() -> Path:
    """``DAGSTER_HOME`` (default ``dagster_home/``) with a ``dagster.yaml``: the repository's
    one (storage, run queue) when the folder has none yet."""
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() and (REPOSITORY_HOME / "dagster.yaml").exists():
        shutil.copyfile(REPOSITORY_HOME / "dagster.yaml", config)
    return home


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _probe_host(host: str) -> str:
    """Where to ask whether the UI answers: a wildcard address is asked on loopback."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stop(children: list[subprocess.Popen], group: int, say: Callable[[str], None]) -> None:
    """SIGTERM to the group, wait, then SIGKILL whatever is left of it."""
    if not group:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_PATIENCE
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.1, deadline - time.monotonic()))
    while _group_alive(group) and time.monotonic() < deadline:  # code servers, run workers
        time.sleep(0.2)
    if _group_alive(group):
        say("utl ui: some Dagster processes did not stop in time: killing them")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    for child in children:
        child.wait()


@contextlib.contextmanager
def _signals_stop() -> Iterator[None]:
    def on_term(signum, frame):
        raise _Stop

    # SIGINT too: a shell starts a background command with SIGINT ignored, and Python then
    # never raises KeyboardInterrupt.
    previous = {s: signal.signal(s, on_term) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_ui(host: str, port: int, say: Callable[[str], None], show: Callable[[str], None]) -> int:
    """Run the UI and the daemon until Ctrl-C or SIGTERM; 0 after a clean stop, 1 when a child
    stopped by itself or the UI never answered."""
    landing = landing_from_env()
    home = instance_home()
    root = Path(__file__).resolve().parents[1]
    with _signals_stop():
        try:
            with (contextlib.nullcontext(None) if database_url() else open_database(landing)) as database:
                env = {**os.environ, "DAGSTER_HOME": str(home), LANDING_ENV: str(landing)}
                if database is not None:
                    env[EMBEDDED_URL_ENV] = database.url
                    say(f"database: {database.description}")
                say(f"landing: {landing}; Dagster instance: {home}")
                return _serve(host, port, env, root, say, show)
        except (_Stop, KeyboardInterrupt):  # a signal before the children started
            return 0


def _serve(host: str, port: int, env: dict[str, str], root: Path, say: Callable[[str], None],
           show: Callable[[str], None]) -> int:
    children: list[subprocess.Popen] = []
    group = 0
    try:
        webserver = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-m", CODE_LOCATION, "-h", host, "-p", str(port)],
            env=env, cwd=root, process_group=0)
        children.append(webserver)
        group = webserver.pid
        address = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
        probe = f"http://{_probe_host(host)}:{port}/server_info"
        deadline = time.monotonic() + READY_TIMEOUT
        while not _answers(probe):
            _check(children)
            if time.monotonic() > deadline:
                raise UiError(f"the UI did not answer at {probe} within {READY_TIMEOUT:.0f} s")
            time.sleep(0.5)
        # The daemon only once the UI answers: each loads the code location in a code server of
        # its own, and on a busy 2-core machine, with four processes importing it at once, a
        # code server died while starting (most likely starved past its 20 s heartbeat).
        children.append(subprocess.Popen([sys.executable, "-m", "dagster._daemon", "run", "-m", CODE_LOCATION],
                                         env=env, cwd=root, process_group=group))
        show(f"Dagster UI: {address} (daemon running; Ctrl-C stops both)")
        while True:
            _check(children)
            time.sleep(0.5)
    except (_Stop, KeyboardInterrupt):
        say("utl ui: stopping the UI and the daemon")
        _stop(children, group, say)
        say("utl ui: stopped")
        return 0
    except UiError as exc:
        say(f"utl ui: {exc}")
        _stop(children, group, say)
        return 1
    except BaseException:
        if group:
            _stop(children, group, say)
        raise


def _check(children: list[subprocess.Popen]) -> None:
    for child in children:
        code = child.poll()
        if code is not None:
            name = "dagster-webserver" if child is children[0] else "dagster-daemon"
            raise UiError(f"{name} stopped by itself (exit {code})")
