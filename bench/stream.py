"""Stream benchmark: publish→commit latency, throughput, backlog drain and peak RSS of `utl stream`.

    uv run python bench/stream.py [--seconds 10] [--rates 5000,50000] [--backlog 20000]
                                  [--nats URL] [--url POSTGRES_URL] [--batch 20000] [--stages N [--held H]]
                                  [--frames-only]

Loopback, 120 venue subjects, 1,000 books (accounts) × 200 assets: each fill is a ccxt trade
``A<i>/USD`` on ``utl.fills.v<venue>.b<book>``, quoted in the reporting currency so no mark is
needed. For each rate, a fresh ``UTL_FILLS`` and a fresh database: ``utl stream`` runs in its
own process, the publisher sends at the rate for ``--seconds`` (JetStream publish, acks
pipelined) and stamps each message's send time; the booker publishes each changed position
on ``utl.positions.*`` right after its batch commits, carrying the stream sequence of the
last fill in the row, so a fill's commit time is the first position message with a sequence
at or above its own (batches commit in sequence order). Then the backlog: ``--backlog``
fills published with no booker running, then a booker started; the drain time runs from its
``ready`` to the commit of the last sequence. Peak RSS is the booker's (psutil, sampled).

``--stages N`` books N fills in this process instead (no broker: the booker's ``prepare`` and
``commit`` called directly, in batches of ``--batch``, into a scratch database) and prints
where the time of a batch goes, wall and CPU (CPU counts every thread of this process, so
Polars' threads too; PostgreSQL's own CPU is in the wall of the statements): message
decoding and reading, pricing, costing, positions, and each COPY and statement of the commit.
With ``--held H``, H fills are booked first (untimed), so that the batches meet the books a
day's stream has built up by then (a batch's cost grows with them).

The broker is ``--nats``, else ``UTL_NATS_URL``, else an embedded one; the database server is
``--url``, else ``UTL_DATABASE_URL`` (scratch databases are created on it and dropped).
Contract figures (stream.md): p99 ≤ 5 ms at 5,000/s, ≤ 100 ms at 50,000/s; 1,000,000 backlog
in ≤ 10 s. Every figure printed is what this machine did, with whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import nats
import numpy as np
import psutil
import psycopg
from nats.js.errors import NotFoundError
from psycopg import sql
from psycopg.conninfo import make_conninfo

from utl.stream.broker import STREAM, embedded_broker, ensure_stream

VENUES, BOOKS, ASSETS = 120, 1000, 200
IN_FLIGHT = 2000
FRAMES_ONLY = False  # --frames-only: the booker never takes the quick way (utl stream --frames-only)


def book_and_asset(i: int) -> tuple[int, int]:
    """Fill ``i``'s book and asset. Knuth's multiplicative hash (a bijection of 32-bit integers)
    spreads consecutive fills over every (book, asset) pair, 200,000 of them, each about as
    often. (Book and asset as two multiples of i, as before, took their pair from i mod 1,000:
    1,000 pairs, not 200,000.)"""
    spread = (i * 2654435761) % 2**32
    return spread % BOOKS, (spread // BOOKS) % ASSETS


def fill(i: int, sent: float) -> tuple[str, bytes]:
    book, asset = book_and_asset(i)
    side = "buy" if (i // 3) % 2 == 0 else "sell"
    trade = {"id": str(i), "timestamp": str(int(time.time() * 1000)), "symbol": f"A{asset}/USD", "side": side,
             "amount": "0.5", "price": f"{100 + (i % 50)}.25", "fee": {"cost": "0.01", "currency": "USD"},
             "info": {"sent": sent}}
    return f"utl.fills.v{book % VENUES}.b{book}", json.dumps(trade).encode()


class Booker:
    def __init__(self, env: dict[str, str], batch: int):
        self.process = subprocess.Popen([sys.executable, "-m", "utl.cli", "stream", "--batch", str(batch),
                                         *(["--frames-only"] if FRAMES_ONLY else [])], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.ready = threading.Event()
        self.ready_at = 0.0
        self.peak_rss = 0
        self.cpu_s = 0.0  # the booker's user + system CPU, last sampled
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._sample, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            if line.strip() == "ready":
                self.ready_at = time.monotonic()
                self.ready.set()

    def _sample(self) -> None:
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(self.process.pid)
            while self.process.poll() is None:
                self.peak_rss = max(self.peak_rss, p.memory_info().rss)
                times = p.cpu_times()
                self.cpu_s = times.user + times.system
                time.sleep(0.05)

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(60)


async def reset_stream(url: str) -> None:
    nc = await nats.connect(url)
    with contextlib.suppress(NotFoundError):
        await nc.jetstream().delete_stream(STREAM)
    await ensure_stream(nc.jetstream())
    await nc.close()


async def publish_at(url: str, rate: float, seconds: float, first: int) -> tuple[dict[int, float], int]:
    """Send at ``rate`` for ``seconds``; {stream sequence: send time}, count sent.

    Each fill is published on core NATS to its ``utl.fills`` subject, which ``UTL_FILLS`` takes in
    (with its ``Nats-Msg-Id``), not as a JetStream request awaiting its own acknowledgement: a
    publisher elsewhere on the network would not share the booker's 2 cores, and awaiting ~5,000
    acknowledgements a second took ~40% of a core here (and capped the rate near 10,000/s). One
    connection's messages are stored in the order they were sent, so the i-th has the sequence
    after the stream's last plus i; the stream's count is checked at the end (a message lost
    would be a SystemExit, not a figure)."""
    nc = await nats.connect(url, pending_size=64 * 2**20)
    js = nc.jetstream()
    base = (await js.stream_info(STREAM)).state.last_seq
    sent_at: dict[int, float] = {}
    start = time.monotonic()
    i = 0
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate)
        while i < due:
            t = time.monotonic()
            n = first + i
            subject, data = fill(n, t)
            await nc.publish(subject, data, headers={"Nats-Msg-Id": f"bench:{n}"})
            i += 1
            sent_at[base + i] = t
        await asyncio.sleep(0.0005)
    await nc.flush(timeout=60)
    for _ in range(600):  # the server stores what it was sent in order; wait until it holds all of it
        if (await js.stream_info(STREAM)).state.last_seq >= base + i:
            break
        await asyncio.sleep(0.1)
    stored = (await js.stream_info(STREAM)).state.last_seq - base
    await nc.close()
    if stored != i:
        raise SystemExit(f"the stream took {stored:,} of the {i:,} fills sent")
    return sent_at, i


async def watch_positions(url: str, seen: list, stop: asyncio.Event) -> None:
    nc = await nats.connect(url)

    async def got(msg) -> None:
        # The sequence is the message's last number (utl.stream.booker.position_messages):
        # read without decoding the JSON (two positions a fill, 100,000 a second at 50,000/s).
        data = msg.data
        at = data.rfind(b'"stream_seq":') + 13
        seq = data[at:data.index(b",", at)]
        if seq != b"null":  # (a position no fill has moved yet)
            seen.append((time.monotonic(), int(seq)))

    await nc.subscribe("utl.positions.>", cb=got, pending_msgs_limit=-1, pending_bytes_limit=-1)
    await stop.wait()
    await asyncio.sleep(0.5)
    await nc.close()


def timed_latencies(sent_at: dict[int, float], seen: list) -> tuple[np.ndarray, np.ndarray]:
    """(send time, publish→commit ms) of every fill whose commit was seen."""
    if not seen or not sent_at:
        return np.array([]), np.array([])
    times = np.array([t for t, _ in seen])
    seqs = np.array([s for _, s in seen])
    order = np.argsort(seqs)
    seqs, times = seqs[order], times[order]
    suffix_min = np.minimum.accumulate(times[::-1])[::-1]  # earliest commit seen at or above each sequence
    sent, out = [], []
    for seq, t in sent_at.items():
        k = np.searchsorted(seqs, seq)
        if k < len(seqs):
            sent.append(t)
            out.append(suffix_min[k] - t)
    return np.array(sent), np.array(out) * 1000


WINDOW_S = 10.0
"""A run of 30 s or more also prints p50/p99 per window of this many seconds of sending: the
first window holds the booker's warm-up, which a 10-s run's p99 is mostly made of and a
10-minute run's is not."""


def window_lines(sent: np.ndarray, ms: np.ndarray, seconds: float) -> list[str]:
    if seconds < 3 * WINDOW_S or not sent.size:
        return []
    at = sent - sent.min()
    lines = []
    for lo in np.arange(0.0, at.max() + 1e-9, WINDOW_S):
        part = ms[(at >= lo) & (at < lo + WINDOW_S)]
        if part.size:
            lines.append(f"    sent {lo:5.0f}-{lo + WINDOW_S:<5.0f} s: p50 {np.percentile(part, 50):8.1f}  "
                         f"p99 {np.percentile(part, 99):8.1f}  max {part.max():8.1f}  (n={part.size:,})")
    return lines


class Offset:
    """The booker's committed sequence, read on one connection (a connection a read, every 50 ms,
    cost the server a backend started and ended each time: CPU the booker's batches wait for)."""

    def __init__(self, pg: str):
        self.pg = pg
        self.conn: psycopg.Connection | None = None

    def __call__(self) -> int:
        if self.conn is None:
            self.conn = psycopg.connect(self.pg, autocommit=True)
        row = self.conn.execute("SELECT last_seq FROM utl.stream_offset WHERE consumer = 'utl-stream'").fetchone()
        return row[0] if row else 0

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def cpu_parts(booker_pid: int) -> dict[str, float]:
    """CPU seconds so far of the booker, PostgreSQL (every server process), the NATS server, this
    process (the publisher and the watcher) and the whole machine (every core)."""
    parts = dict.fromkeys(["booker", "PostgreSQL", "NATS server", "bench (publisher, watcher)"], 0.0)
    me = os.getpid()
    for process in psutil.process_iter(["pid", "name", "cpu_times"]):
        times, name = process.info["cpu_times"], process.info["name"] or ""
        if times is None:
            continue
        spent = times.user + times.system
        if process.info["pid"] == booker_pid:
            parts["booker"] += spent
        elif process.info["pid"] == me:
            parts["bench (publisher, watcher)"] += spent
        elif name.startswith("postgres"):
            parts["PostgreSQL"] += spent
        elif name.startswith("nats-server"):
            parts["NATS server"] += spent
    machine = psutil.cpu_times()
    parts["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    return parts


def cpu_line(before: dict[str, float], after: dict[str, float], seconds: float) -> str:
    spent = {name: after[name] - before.get(name, 0.0) for name in after}
    named = sum(value for name, value in spent.items() if name != "machine")
    parts = [f"{name} {value / seconds:.2f}" for name, value in spent.items() if name != "machine"]
    return (f"  CPU in cores over {seconds:.1f} s (of {psutil.cpu_count()}): {', '.join(parts)}, everything else "
            f"{max(0.0, spent['machine'] - named) / seconds:.2f} (PostgreSQL's backends that ended meanwhile count there)")


@contextlib.contextmanager
def scratch_database(server: str):
    name = f"utl_bench_stream_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server, dbname=name)
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


async def rate_run(nats_url: str, pg: str, rate: float, seconds: float, batch: int) -> None:
    await reset_stream(nats_url)
    env = dict(os.environ, UTL_NATS_URL=nats_url, UTL_DATABASE_URL=pg)
    started = time.monotonic()
    booker = Booker(env, batch)
    while not booker.ready.is_set():
        if booker.process.poll() is not None:
            raise SystemExit(f"utl stream exited {booker.process.returncode}")
        await asyncio.sleep(0.01)
    ready_s = booker.ready_at - started
    seen: list = []
    stop = asyncio.Event()
    watcher = asyncio.ensure_future(watch_positions(nats_url, seen, stop))
    await asyncio.sleep(0.3)
    offset = Offset(pg)
    cpu_before, cpu_from = cpu_parts(booker.process.pid), time.monotonic()
    sent_at, count = await publish_at(nats_url, rate, seconds, 0)
    last = max(sent_at) if sent_at else 0
    deadline = time.monotonic() + 600
    while offset() < last and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    done = time.monotonic()
    cpu = cpu_line(cpu_before, cpu_parts(booker.process.pid), done - cpu_from)
    offset.close()
    stop.set()
    await watcher
    booker.stop()
    sent, ms = timed_latencies(sent_at, seen)
    achieved = count / seconds
    print(f"rate {rate:,.0f}/s for {seconds:g} s: sent {count:,} ({achieved:,.0f}/s achieved by the publisher), "
          f"booker ready in {ready_s:.2f} s")
    if ms.size:
        print(f"  publish→commit latency ms: p50 {np.percentile(ms, 50):.1f}  p99 {np.percentile(ms, 99):.1f}  "
              f"max {ms.max():.1f}  (n={ms.size:,})")
        if window := window_lines(sent, ms, seconds):
            after = ms[sent - sent.min() >= WINDOW_S]
            print(f"  after the first {WINDOW_S:g} s of sending: p50 {np.percentile(after, 50):.1f}  "
                  f"p99 {np.percentile(after, 99):.1f}  max {after.max():.1f}  (n={after.size:,}); per window:")
            print("\n".join(window))
    committed_in = done - min(sent_at.values()) if sent_at else 0
    print(f"  throughput: {count / committed_in:,.0f} fills/s committed (first send to last commit "
          f"{committed_in:.2f} s); booker peak RSS {booker.peak_rss / 2**20:,.0f} MiB")
    print(cpu)


async def backlog_run(nats_url: str, pg: str, n: int, batch: int) -> None:
    await reset_stream(nats_url)
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    last = 0
    t0 = time.monotonic()
    for i in range(0, n, 2000):
        acks = await asyncio.gather(*[js.publish(*fill(k, 0.0), timeout=30, headers={"Nats-Msg-Id": f"bench:{k}"})
                                      for k in range(i, min(n, i + 2000))])
        last = max(last, max(a.seq for a in acks))
    await nc.close()
    published_s = time.monotonic() - t0
    env = dict(os.environ, UTL_NATS_URL=nats_url, UTL_DATABASE_URL=pg)
    booker = Booker(env, batch)
    booker.ready.wait(120)
    cpu_ready = booker.cpu_s
    offset = Offset(pg)
    parts_before, parts_from = cpu_parts(booker.process.pid), time.monotonic()
    while offset() < last:
        await asyncio.sleep(0.05)
    drain = time.monotonic() - booker.ready_at
    cpu = booker.cpu_s - cpu_ready
    parts = cpu_line(parts_before, cpu_parts(booker.process.pid), time.monotonic() - parts_from)
    offset.close()
    booker.stop()
    print(f"backlog of {n:,} fills (published in {published_s:.1f} s): drained in {drain:.2f} s after ready "
          f"({n / drain:,.0f} fills/s); booker peak RSS {booker.peak_rss / 2**20:,.0f} MiB, booker CPU while "
          f"draining {cpu:.1f} s ({1e6 * cpu / n:.0f} µs/fill; PostgreSQL's not counted); load average "
          f"{os.getloadavg()[0]:.1f}")
    print(parts)


def stages(pg: str, n: int, batch: int, held: int = 0) -> None:
    """Book ``n`` bench fills in this process, ``batch`` at a time; time each stage. With
    ``held``, that many fills are booked first (20,000 a batch, untimed), so that the books
    hold what a day's stream would have built up by then."""
    import collections
    import functools

    import utl.stream.booker as booker_module
    import utl.stream.books as books_module
    import utl.stream.store as store_module
    from utl.settings import Settings
    from utl.store import connect, migrate
    from utl.stream.booker import Booker as InProcess, BookerOptions
    from utl.stream.message import Message

    wall: dict[str, float] = collections.defaultdict(float)
    cpu: dict[str, float] = collections.defaultdict(float)

    def timed(owner, name: str, label: str) -> None:
        inner = getattr(owner, name, None)
        if inner is None:  # another version of the booker (a before/after comparison)
            return

        @functools.wraps(inner)
        def outer(*args, **kwargs):
            w, c = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                wall[label] += time.perf_counter() - w
                cpu[label] += time.process_time() - c
        setattr(owner, name, outer)

    timed(booker_module, "parse_batch", "read messages (parse_batch)")
    timed(booker_module.Booker, "_price", "price legs (price_legs)")
    timed(booker_module, "book_trades", "cost trades (book_trades)")
    timed(books_module, "compute_costs", "  of which compute_costs")
    timed(booker_module, "position_rows", "live position rows")
    timed(booker_module.Booker, "prepare", "prepare (all of the above and the rest)")
    timed(store_module, "_copy", "  COPY (all tables)")
    timed(store_module, "_fills_and_legs", "  ledger keys insert-if-new + legs COPY")
    timed(booker_module, "commit_batch", "commit (one transaction)")
    timed(booker_module, "position_messages", "position messages (JSON)")
    import utl.stream.quick as quick_module
    timed(quick_module.Quick, "prepare", "quick batch (utl.stream.quick), booked")
    timed(quick_module.Quick, "load", "  of which its state read from the frames (once)")
    timed(quick_module, "_cost", "  of which costed (the kernel)")
    timed(quick_module.Quick, "subset", "frames batch: its part of the quick books, as frames")
    timed(quick_module.Quick, "absorb", "frames batch: what it changed read back")
    timed(booker_module, "commit_quick", "quick commit (one round trip)")
    conn = connect(pg)
    migrate(conn)
    in_process = InProcess(conn, Settings(), None, BookerOptions(nats_url="-", quick=not FRAMES_ONLY))
    # A first small batch loads what the first booking loads (numba's cache, Polars' plans): not timed.
    warm = [Message(subject, i + 1, data) for i, (subject, data) in enumerate(fill(n + i, 0.0) for i in range(200))]
    in_process.commit(in_process.prepare(warm, warm[-1].seq))
    first = 201
    for k in range(0, held, 20_000):
        part = [Message(subject, first + i, data) for i, (subject, data) in
                enumerate(fill(n + 200 + k + i, 0.0) for i in range(min(20_000, held - k)))]
        in_process.commit(in_process.prepare(part, part[-1].seq))
        first += len(part)
    wall.clear()
    cpu.clear()
    messages = [Message(subject, first + i, data) for i, (subject, data) in enumerate(fill(i, 0.0) for i in range(n))]
    batches = 0
    w0, c0 = time.perf_counter(), time.process_time()
    for k in range(0, n, batch):
        part = messages[k:k + batch]
        in_process.commit(in_process.prepare(part, part[-1].seq))  # encodes the position messages too
        batches += 1
    total = time.perf_counter() - w0
    conn.close()
    print(f"stages: {n:,} fills in {batches} batches of {batch:,}{f' after {held:,} held' if held else ''}, "
          f"booked in {total:.2f} s ({n / total:,.0f} fills/s, "
          f"CPU {time.process_time() - c0:.2f} s), load average {os.getloadavg()[0]:.1f}")
    print(f"  {'ms/batch':>9} {'µs/fill':>8} {'CPU µs/fill':>12}  stage")
    for label in sorted(wall, key=lambda k: -wall[k]):
        print(f"  {1000 * wall[label] / batches:9.1f} {1e6 * wall[label] / n:8.1f} {1e6 * cpu.get(label, 0) / n:12.1f}  {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rates", default="5000,50000")
    parser.add_argument("--backlog", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=20000)
    parser.add_argument("--nats", default=os.environ.get("UTL_NATS_URL"))
    parser.add_argument("--url", default=os.environ.get("UTL_DATABASE_URL"))
    parser.add_argument("--stages", type=int, default=0,
                        help="book this many fills in this process (no broker) and print where each batch's time goes")
    parser.add_argument("--frames-only", action="store_true",
                        help="the booker books every batch through the frames (utl stream --frames-only), never the quick way")
    parser.add_argument("--held", type=int, default=0,
                        help="with --stages: book this many fills first, untimed (the books a day's stream builds up)")
    args = parser.parse_args()
    global FRAMES_ONLY
    FRAMES_ONLY = args.frames_only
    if not args.url:
        raise SystemExit("give --url or UTL_DATABASE_URL: a PostgreSQL server where scratch databases can be made")
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (shared with other work)")
    if args.stages:
        with scratch_database(args.url) as pg:
            stages(pg, args.stages, args.batch, args.held)
        return
    with contextlib.ExitStack() as stack:
        url = args.nats or stack.enter_context(embedded_broker())
        for rate in [float(r) for r in args.rates.split(",") if r]:
            with scratch_database(args.url) as pg:
                asyncio.run(rate_run(url, pg, rate, args.seconds, args.batch))
        if args.backlog:
            with scratch_database(args.url) as pg:
                asyncio.run(backlog_run(url, pg, args.backlog, args.batch))


if __name__ == "__main__":
    main()
