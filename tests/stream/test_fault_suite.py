"""The fault suite of issue 15 (stream.md, "Exactly once"): 200,000 fills with 1% re-sends,
the booker killed with kill -9 every few seconds by a supervisor that restarts it, the
broker and PostgreSQL each killed with kill -9 once mid-flow. At the end the ledger holds
exactly the distinct fills and ``utl.live_positions`` equals the batch over the same fills.

Only servers this test starts are killed: an embedded ``nats-server`` (its own store and
port) and an embedded PostgreSQL (its own data folder), never the machine's shared ones.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import threading
import time
from contextlib import ExitStack

import psycopg

from tests.conftest import scratch_folder, stop_servers_in
from tests.stream.helpers import Booker, encoded, env_for, make_fills, publish, wait_offset, write_landing
from tests.stream.test_faults import _free_port, assert_equals_the_batch
from utl.store.embedded import embedded_server, postmaster_pid
from utl.stream.broker import embedded_broker

FILLS = 200_000
CHUNK = 10_000


def committed(pg_url: str) -> int:
    """The booker's last committed sequence (0 while the database is away)."""
    try:
        with psycopg.connect(pg_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT max(last_seq) FROM utl.stream_offset").fetchone()
    except psycopg.Error:
        return 0
    return row[0] or 0


class Supervisor:
    """Keeps one ``utl stream`` running, as a process supervisor would, and kill -9s it a
    random 0.5–3 s after each ``ready`` (or restarts it whenever it has died by itself: a
    booker without its database exits)."""

    def __init__(self, args: list[str], env: dict[str, str], seed: int):
        self.args, self.env = args, env
        self.rng = random.Random(seed)
        self.kills = self.starts = 0
        self.log: list[str] = []  # one line per booker started: how long to ready, how it ended
        self.current: Booker | None = None
        self.done = threading.Event()
        self.killing = threading.Event()
        self.killing.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.is_set():
            booker = self.current = Booker(*self.args, env=dict(self.env))
            self.starts += 1
            began = time.monotonic()
            while "ready" not in booker.out and booker.process.poll() is None and not self.done.is_set():
                time.sleep(0.02)
            if booker.process.poll() is not None:
                self.log.append(f"exited {booker.process.returncode} before ready after {time.monotonic() - began:.1f} s: "
                                f"{booker.err[-1:]}")
                time.sleep(0.5)  # died at start (no database yet): try again shortly
                continue
            self.log.append(f"ready after {time.monotonic() - began:.1f} s")
            if self.done.is_set():
                return
            until = time.monotonic() + self.rng.uniform(0.5, 3.0)
            while time.monotonic() < until and booker.process.poll() is None and not self.done.is_set():
                time.sleep(0.02)
            if self.done.is_set():
                return
            if booker.process.poll() is None and self.killing.is_set():
                os.kill(booker.process.pid, signal.SIGKILL)
                booker.process.wait()
                self.kills += 1
            elif booker.process.poll() is None:
                booker.process.wait()  # not killing any more: let it run until it dies or we stop

    def stop(self) -> Booker:
        """Stop killing; the booker left running once it is ready."""
        self.killing.clear()
        deadline = time.monotonic() + 120
        while True:
            booker = self.current
            if booker is not None and "ready" in booker.out and booker.process.poll() is None:
                self.done.set()
                return booker
            assert time.monotonic() < deadline, "no booker got ready after the kills"
            time.sleep(0.05)


def test_200k_fills_with_re_sends_and_kill_9_of_booker_broker_and_postgresql(tmp_path):
    fills = make_fills(FILLS, seed=15)
    landing = write_landing(tmp_path / "landing", fills)
    messages = encoded(fills)
    rng = random.Random(15)
    folder = scratch_folder("fault-suite")
    store, data_dir, port = folder / "nats", folder / "pgdata", _free_port()
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        stack.callback(stop_servers_in, folder)
        pg = ExitStack()
        pg_url = pg.enter_context(embedded_server(data_dir, "stream"))
        broker = ExitStack()
        nats_url = broker.enter_context(embedded_broker(store, port))
        stack.callback(broker.close)
        stack.callback(pg.close)
        supervisor = Supervisor(["--landing", str(landing)], env_for(pg_url, nats_url), seed=15)
        last, resends = 0, 0
        for chunk in range(FILLS // CHUNK):
            part = messages[chunk * CHUNK:(chunk + 1) * CHUNK]
            earlier = messages[:(chunk + 1) * CHUNK]
            # 1% re-sends: half with the same header (the broker drops them within its
            # duplicate window), half with another (only the ledger key catches them).
            again = [rng.choice(earlier) for _ in range(CHUNK // 100)]
            again = [(s, h if i % 2 else f"resend:{chunk}:{i}", d) for i, (s, h, d) in enumerate(again)]
            resends += len(again)
            batch = part + again
            rng.shuffle(batch)
            last = max(last, publish(nats_url, batch))
            if chunk == 5:
                os.kill(int((store / "nats-server.pid").read_text()), signal.SIGKILL)
                broker.close()
                nats_url = broker.enter_context(embedded_broker(store, port))  # same port: the booker reconnects
            if chunk == 12:
                os.kill(postmaster_pid(data_dir), signal.SIGKILL)
                time.sleep(1)  # the booker finds its database gone and exits; the supervisor restarts it
                pg.close()
                new_url = pg.enter_context(embedded_server(data_dir, "stream"))
                supervisor.env.update(env_for(new_url, nats_url))
                pg_url = new_url
        # On a fast machine publishing ends early: keep killing while the backlog drains.
        while supervisor.kills < 10 and committed(pg_url) < last:
            time.sleep(0.2)
        final = supervisor.stop()
        wait_offset(pg_url, last, patience=600)
        assert final.stop(signal.SIGTERM) == 0, final.err
        # The faults did happen: the booker was killed many times, and resumed each time.
        print("\n".join(supervisor.log))
        assert supervisor.kills >= 5, supervisor.log
        assert resends == FILLS // 100
        assert_equals_the_batch(pg_url, landing, FILLS)
        with psycopg.connect(pg_url) as conn:
            assert conn.execute("SELECT count(*) FROM utl.stream_quarantine").fetchone()[0] == 0
        print(f"booker started {supervisor.starts} times, killed {supervisor.kills} times")
