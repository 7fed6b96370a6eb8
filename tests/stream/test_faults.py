"""Faults (stream.md, "Exactly once"): kill -9 of the broker, and of PostgreSQL, mid-flow.
No fill is lost or doubled: at the end the ledger holds exactly the distinct fills and the
live positions equal the batch over them."""

from __future__ import annotations

import os
import random
import signal
import socket
import time
from pathlib import Path

import polars as pl
import psycopg

from tests.conftest import scratch_folder, stop_servers_in
from tests.stream.helpers import DAY, Booker, encoded, env_for, make_fills, publish, wait_offset, write_landing
from utl.eod import prepare, run_dates
from utl.store.embedded import embedded_server, postmaster_pid
from utl.stream.broker import embedded_broker


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_equals_the_batch(pg_url: str, landing: Path, distinct: int) -> None:
    prepared = prepare(landing)
    outputs = list(run_dates(prepared, DAY))[-1]
    legs = prepared.legs.filter(pl.col("business_date") == DAY)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM utl.stream_fills").fetchone()[0] == distinct
        assert conn.execute("SELECT count(*) FROM utl.stream_legs WHERE counted").fetchone()[0] == legs.height
        live = {(v, a, s): (q, r) for v, a, s, q, r in
                conn.execute("SELECT venue, account, asset, qty, realized_pnl FROM utl.live_positions")}
    batch = {(r["venue"], r["account"], r["asset"]): r["qty"] for r in outputs.positions.iter_rows(named=True)}
    realized = {(r["book"], r["asset"]): r["realized_pnl"] for r in outputs.pnl.iter_rows(named=True)}
    for key, (qty, pnl) in live.items():
        assert qty == batch.get(key, 0), key
        assert pnl == realized.get((f"{key[0]}/{key[1]}", key[2]), 0), key
    assert set(batch) <= set(live)


def test_kill_9_of_the_broker_mid_flow(pg_url, tmp_path):
    fills = make_fills(1000, seed=3)
    landing = write_landing(tmp_path / "landing", fills)
    messages = encoded(fills)
    store, port = scratch_folder("nats-fault"), _free_port()
    try:
        with embedded_broker(store, port) as url:
            booker = Booker("--landing", str(landing), "--batch", "50", env=env_for(pg_url, url))
            booker.wait_ready()
            publish(url, messages[:600])
            time.sleep(random.uniform(0.05, 0.3))
            os.kill(int((store / "nats-server.pid").read_text()), signal.SIGKILL)
        with embedded_broker(store, port) as url:
            # The booker reconnects by itself; re-sends of what was published before the crash.
            last = publish(url, messages[600:] + [(s, f"again:{i}", d) for i, (s, _, d) in enumerate(messages[:20])])
            wait_offset(pg_url, last, patience=180)
            assert booker.stop(signal.SIGTERM) == 0, booker.err
    finally:
        import shutil
        shutil.rmtree(store, ignore_errors=True)
    assert_equals_the_batch(pg_url, landing, 1000)


def test_kill_9_of_postgresql_mid_flow(nats_url, tmp_path):
    fills = make_fills(1000, seed=4)
    landing = write_landing(tmp_path / "landing", fills)
    messages = encoded(fills)
    folder = scratch_folder("pg-fault")
    data_dir = folder / "pgdata"
    try:
        with embedded_server(data_dir, "stream") as url:
            booker = Booker("--landing", str(landing), "--batch", "50", env=env_for(url, nats_url))
            booker.wait_ready()
            last = publish(nats_url, messages)
            time.sleep(random.uniform(0.1, 0.5))
            os.kill(postmaster_pid(data_dir), signal.SIGKILL)
            # Without its database the booker stops (a supervisor restarts it): nothing half-done.
            assert booker.process.wait(60) != 0
        with embedded_server(data_dir, "stream") as url:
            booker = Booker("--landing", str(landing), "--batch", "50", env=env_for(url, nats_url))
            booker.wait_ready()
            wait_offset(url, last, patience=180)
            assert booker.stop(signal.SIGTERM) == 0, booker.err
            assert_equals_the_batch(url, landing, 1000)
    finally:
        stop_servers_in(folder)
        import shutil
        shutil.rmtree(folder, ignore_errors=True)


def test_one_writer_per_shard_a_second_booker_on_the_same_consumer_is_refused(pg_url, tmp_path):
    store = scratch_folder("nats-lock")
    try:
        with embedded_broker(store) as url:
            env = env_for(pg_url, url)
            first = Booker(env=env)
            first.wait_ready()
            second = Booker(env=env)
            assert second.process.wait(120) == 1
            assert any("another booker holds consumer 'utl-stream'" in line for line in second.err), second.err
            assert "ready" not in second.out
            assert first.process.poll() is None
            assert first.stop(signal.SIGTERM) == 0
    finally:
        import shutil
        shutil.rmtree(store, ignore_errors=True)


def test_kill_9_of_a_caught_up_booker_mid_quick_batches_books_each_fill_once(pg_url, nats_url, tmp_path):
    """Fills a few at a time to a booker that keeps up (the quick way, utl.stream.quick), with
    re-sends, and kill -9 at random moments between and during its commits: the ledger holds
    exactly the distinct fills, and positions and PnL are the batch's. (It found the quick way
    costing lots read back from the database in the database's order, not the order they
    opened in: two lots opened by one fill's base and fee legs closed in the wrong order.)"""
    fills = make_fills(1200, seed=21)
    landing = write_landing(tmp_path / "landing", fills)
    messages = encoded(fills)
    rng = random.Random(21)
    trace = tmp_path / "batches.trace"
    env = dict(env_for(pg_url, nats_url), UTL_STREAM_TRACE=str(trace))
    kills, last = 0, 0
    for round_ in range(6):
        booker = Booker("--landing", str(landing), env=env)
        booker.wait_ready()
        part = messages[round_ * 200:(round_ + 1) * 200]
        stop_at = rng.randrange(60, 200, 10)
        for k in range(0, stop_at, 10):
            again = [rng.choice(messages[:round_ * 200 + k + 10])]  # a re-send, under another header
            last = max(last, publish(nats_url, part[k:k + 10] + [(again[0][0], f"again:{round_}:{k}", again[0][2])]))
            if k + 10 < stop_at:
                wait_offset(pg_url, last, landing=landing)  # caught up: the next few come as a small batch
        time.sleep(rng.uniform(0.0, 0.02))  # mid-batch, or between batches
        os.kill(booker.process.pid, signal.SIGKILL)
        booker.process.wait(30)
        kills += 1
        last = max(last, publish(nats_url, part[stop_at:]))
    booker = Booker("--landing", str(landing), env=env)
    booker.wait_ready()
    wait_offset(pg_url, last, landing=landing)
    assert booker.stop(signal.SIGTERM) == 0, booker.err
    ways = [line.split()[2] for line in trace.read_text().splitlines() if line.split()[1].isdigit()]
    assert ways.count("quick") >= 30, ways  # the kills met the quick way, not only the frames
    assert kills == 6
    assert_equals_the_batch(pg_url, landing, 1200)
