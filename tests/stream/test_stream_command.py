"""``utl stream`` and ``utl publish`` end to end, on real NATS JetStream and real PostgreSQL
(stream.md): exactly once under re-sends and kill -9, equal to the batch over the same
fills, equal to the EOD run on the sample landing, and the embedded broker."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import asyncio
import nats
import polars as pl
import psycopg

from tests.stream.conftest import _delete_stream
from tests.stream.helpers import (
    DAY, Booker, encoded, env_for, make_fills, publish, wait_offset, write_landing,
)
from utl.eod import prepare, run_dates
from utl.settings import load_settings
from utl.stream.agreement import stream_breaks
from utl.stream.publish import ccxt_trades, day_fills
from utl.stream.store import eod_day_state, stream_day_state

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data_samples" / "landing"


def live_positions(pg_url: str) -> dict[tuple[str, str, str], tuple[Decimal, Decimal, Decimal]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT venue, account, asset, qty, cost_basis, realized_pnl FROM utl.live_positions").fetchall()
    return {(v, a, s): (q, c, r) for v, a, s, q, c, r in rows}


def test_kill_9_mid_flow_and_re_sends_book_each_fill_once_as_the_batch_does(pg_url, nats_url, tmp_path):
    fills = make_fills(2000)
    landing = write_landing(tmp_path / "landing", fills)
    messages = encoded(fills)
    rng = random.Random(5)
    env = env_for(pg_url, nats_url)
    last_seq, sent = 0, 0
    for chunk in range(5):
        booker = Booker("--landing", str(landing), "--batch", "50", env=env)
        booker.wait_ready()
        part = messages[chunk * 400:(chunk + 1) * 400]
        earlier = messages[:(chunk + 1) * 400]
        # 1% re-sends: half with the same header (the broker drops them), half with another
        # header (only the ledger key on the payload can catch them).
        resent = [rng.choice(earlier) for _ in range(8)]
        resent = [(s, h if i % 2 else f"resend:{chunk}:{i}", d) for i, (s, h, d) in enumerate(resent)]
        bad = [("utl.fills.okx.desk", f"bad:{chunk}:json", b"{not json"),
               ("utl.fills.okx.desk", f"bad:{chunk}:cost", json.dumps(dict(json.loads(part[0][2]), id=f"bad{chunk}",
                                                                        cost="1")).encode())] if chunk < 2 else []
        last_seq = max(last_seq, publish(nats_url, part + resent + bad))
        sent += len(part) + len(resent)
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(booker.process.pid, signal.SIGKILL)
        booker.process.wait(30)
    booker = Booker("--landing", str(landing), "--batch", "50", env=env)
    booker.wait_ready()
    wait_offset(pg_url, last_seq)
    assert booker.stop(signal.SIGTERM) == 0, booker.err

    # The batch over exactly the distinct fills (the landing's trades file holds each once).
    prepared = prepare(landing)
    outputs = list(run_dates(prepared, DAY))[-1]
    batch_legs = prepared.legs.filter(pl.col("business_date") == DAY)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM utl.stream_fills").fetchone()[0] == 2000
        assert conn.execute("SELECT count(*) FROM utl.stream_legs WHERE counted").fetchone()[0] == batch_legs.height
        stream_ids = {r[0] for r in conn.execute("SELECT venue || '/' || account || '/' || leg_id FROM utl.stream_legs")}
        refused = conn.execute("SELECT subject, reason FROM utl.stream_quarantine ORDER BY stream_seq").fetchall()
        assert conn.execute("SELECT count(*) FROM utl.stream_fills WHERE trade_id LIKE 'bad%'").fetchone()[0] == 0
    assert stream_ids == {f"{v}/{a}/{leg}" for v, a, leg in batch_legs.select("venue", "account", "leg_id").iter_rows()}
    # Refused once each, kill -9 or not: two bad JSON, two costs off amount × price.
    assert len(refused) == 4 and {s for s, _ in refused} == {"utl.fills.okx.desk"}
    assert sum(r.startswith("invalid JSON") for _, r in refused) == 2
    assert sum("is not amount × price" in r for _, r in refused) == 2

    live = live_positions(pg_url)
    batch = {(r["venue"], r["account"], r["asset"]): r for r in outputs.positions.iter_rows(named=True)}
    realized = {(r["book"], r["asset"]): r["realized_pnl"] for r in outputs.pnl.iter_rows(named=True)}
    assert set(live) >= set(batch)
    for key, (qty, cost_basis, pnl) in live.items():
        row = batch.get(key)
        assert qty == (row["qty"] if row else 0), key
        if row is not None:
            assert cost_basis == row["cost_basis"], key
        assert pnl == realized.get((f"{key[0]}/{key[1]}", key[2]), 0), key


def _stream_sample(pg_url: str, nats_url: str, landing: Path, messages) -> None:
    booker = Booker("--landing", str(landing), env=env_for(pg_url, nats_url))
    booker.wait_ready()
    last = publish(nats_url, messages)
    wait_offset(pg_url, last)
    assert booker.stop(signal.SIGTERM) == 0, booker.err


def test_stream_agrees_with_the_eod_run_to_the_unit_and_one_missing_fill_is_found(new_database, nats_url, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    settings = load_settings(landing)
    full, missing = new_database(), new_database()
    env = env_for(full, nats_url)

    # utl publish (the command) replays the date's fills; the booker books them.
    booker = Booker("--landing", str(landing), env=env)
    booker.wait_ready()
    done = subprocess.run([sys.executable, "-m", "utl.cli", "publish", "--landing", str(landing), "--date", str(DAY)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    published = int(re.search(r"published (\d+) fills", done.stdout).group(1))
    fills, _ = day_fills(landing, DAY)
    assert published == fills.height > 0
    with psycopg.connect(full) as conn:
        deadline = time.monotonic() + 120
        while conn.execute("SELECT count(*) FROM utl.stream_fills").fetchone()[0] < published:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert booker.stop(signal.SIGINT) == 0, booker.err

    storage = tmp_path / "storage"
    eod_env = dict(env, DAGSTER_HOME=str(tmp_path / "dagster_home"))
    done = subprocess.run([sys.executable, "-m", "utl.cli", "eod", "--landing", str(landing), "--date", str(DAY),
                           "--storage", str(storage)], env=eod_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    accounts = fills.select("venue", "account").unique()
    with psycopg.connect(full) as conn:
        eod = eod_day_state(conn, storage, DAY, landing)
        ours = _with_books(stream_day_state(conn, DAY, landing), settings)
        # The EOD run's own asset check (Dagster) found the same: no difference.
        check = conn.execute("SELECT passed, description FROM utl.check_results WHERE check_name = 'stream_agrees' "
                             "AND business_date = %s", (DAY,)).fetchone()
        assert check is not None and check[0] is True, check
        assert conn.execute("SELECT count(*) FROM utl.stream_breaks").fetchone()[0] == 0
    assert stream_breaks(DAY, ours, eod, settings, accounts).height == 0
    # The comparison is not vacuous: the stream booked these accounts' legs.
    assert ours["positions"].height > 0 and ours["lots"].height > 0

    # The same date with one fill left out: exactly its assets differ, by its legs.
    messages = ccxt_trades(fills)
    gone = messages[len(messages) // 2]
    asyncio.run(_delete_stream(nats_url))  # a new stream: the broker would drop the same ids as re-sends
    _stream_sample(missing, nats_url, landing, [m for m in messages if m is not gone])
    with psycopg.connect(missing) as conn:
        ours = _with_books(stream_day_state(conn, DAY, landing), settings)
    found = stream_breaks(DAY, ours, eod, settings, accounts)
    trade = json.loads(gone[2])
    venue, account = gone[0].split(".")[2:]
    base, quote = trade["symbol"].split("/")
    moved = {base: Decimal(trade["amount"]) * (1 if trade["side"] == "buy" else -1),
             quote: Decimal(trade["cost"]) * (-1 if trade["side"] == "buy" else 1)}
    if trade["fee"] and Decimal(trade["fee"]["cost"]):
        moved[trade["fee"]["currency"]] = moved.get(trade["fee"]["currency"], 0) - Decimal(trade["fee"]["cost"])
    assert {(v, a, s) for v, a, s in found.select("venue", "account", "asset").iter_rows()} == \
        {(venue, account, asset) for asset in moved}
    for row in found.filter(what="qty").iter_rows(named=True):
        assert Decimal(row["eod_value"]) - Decimal(row["stream_value"]) == moved[row["asset"]]
    assert set(found["subject"]) == {"stream"}

    # The EOD run's asset check over that stream: the same differences, recorded as breaks.
    done = subprocess.run([sys.executable, "-m", "utl.cli", "eod", "--landing", str(landing), "--date", str(DAY),
                           "--storage", str(tmp_path / "storage2")],
                          env=dict(env_for(missing, nats_url), DAGSTER_HOME=str(tmp_path / "dagster_home2")),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(missing) as conn:
        check = conn.execute("SELECT passed FROM utl.check_results WHERE check_name = 'stream_agrees'").fetchone()
        recorded = conn.execute("SELECT subject, venue, account, asset, what, stream_value, eod_value "
                                "FROM utl.stream_breaks WHERE business_date = %s", (DAY,)).fetchall()
    assert check == (False,)
    assert sorted(recorded) == sorted(found.select("subject", "venue", "account", "asset", "what", "stream_value",
                                                   "eod_value").rows())


def _with_books(state: dict, settings) -> dict:
    pnl = state["pnl"]
    books = [settings.book_of(v, a) for v, a in pnl.select("venue", "account").iter_rows()]
    return dict(state, pnl=pnl.with_columns(book=pl.Series(books, dtype=pl.String)))


def test_embedded_broker_and_database_by_default_publish_positions_and_stop_on_sigint(scratch_dir):
    # Nothing set, on a fresh machine: no landing either (other tests' `utl eod` ran with the
    # session's UTL_HOME, which would make their landing the last one run).
    env = {k: v for k, v in env_for(None, None).items() if k != "UTL_LANDING"}
    env["UTL_HOME"] = str(scratch_dir)
    booker = Booker(env=env)
    booker.wait_ready()
    url = re.search(r"broker: (nats://127\.0\.0\.1:\d+)", "\n".join(booker.err)).group(1)
    assert "embedded PostgreSQL" in "\n".join(booker.err)
    trade = {"id": "1", "datetime": "2024-03-05T10:00:00.000Z", "symbol": "BTC/USD", "side": "buy",
             "amount": "0.30000000000000001", "price": "65000.1", "cost": "19500.030000000000650001"}
    second = dict(trade, id="2", amount="0.1", cost="6500.01", side="sell", datetime="2024-03-05T10:00:01.000Z")
    messages = [("utl.fills.kraken.main", "kraken:main:BTC/USD:1", json.dumps(trade).encode()),
                ("utl.fills.kraken.main", "kraken:main:BTC/USD:2", json.dumps(second).encode()),
                ("utl.fills.kraken.main", "another-header", json.dumps(trade).encode())]

    async def run() -> dict:
        nc = await nats.connect(url)
        latest: dict = {}

        async def got(msg) -> None:
            row = json.loads(msg.data)
            latest[row["asset"]] = row

        await nc.subscribe("utl.positions.kraken.main", cb=got)
        await nc.flush()
        from tests.stream.helpers import _publish
        await _publish(url, messages)
        deadline = time.monotonic() + 60
        while latest.get("BTC", {}).get("stream_seq") != 2:
            assert time.monotonic() < deadline, latest
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the re-send, had it booked, would show by now
        await nc.close()
        return latest

    latest = asyncio.run(run())
    assert Decimal(latest["BTC"]["qty"]) == Decimal("0.30000000000000001") - Decimal("0.1")
    assert Decimal(latest["USD"]["qty"]) == Decimal("-19500.030000000000650001") + Decimal("6500.01")
    assert booker.stop(signal.SIGINT) == 0, booker.err
    port = int(url.rsplit(":", 1)[1])
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the embedded broker stopped with it


def test_frames_only_books_what_the_quick_way_books(new_database, nats_url, tmp_path):
    """``utl stream`` (quick batches where it can) and ``utl stream --frames-only`` over the same
    stream leave the same positions, lots and PnL; the trace says which way each batch went."""
    fills = make_fills(600, seed=11)
    landing = write_landing(tmp_path / "landing", fills)
    messages = encoded(fills)
    last = publish(nats_url, messages[:300])
    held = {}
    for name, args in (("quick", []), ("frames", ["--frames-only"])):
        url, trace = new_database(), tmp_path / f"{name}.trace"
        booker = Booker("--landing", str(landing), "--batch", "40", *args,
                        env=dict(env_for(url, nats_url), UTL_STREAM_TRACE=str(trace)))
        booker.wait_ready()
        if name == "quick":  # live: a few fills at a time, the booker caught up between them
            for k in range(300, 600, 20):
                last = publish(nats_url, messages[k:k + 20])
                wait_offset(url, last, landing=landing)
        wait_offset(url, last, landing=landing)
        assert booker.stop(signal.SIGTERM) == 0, booker.err
        ways = [line.split()[2] for line in trace.read_text().splitlines() if line.split()[1].isdigit()]
        with psycopg.connect(url) as conn:
            held[name] = [conn.execute(f"SELECT {cols} FROM utl.{table} ORDER BY {cols}").fetchall() for table, cols in (
                ("live_positions", "venue, account, asset, qty, cost_basis, avg_cost, realized_pnl, stream_seq"),
                ("stream_lots", "book, asset, trade_id, opened_ts, qty, entry_price"),
                ("stream_day_pnl", "business_date, venue, account, asset, realized_pnl"))]
        held[name + " ways"] = set(ways)
    assert held["quick"] == held["frames"]
    assert held["quick"][0] and held["quick"][1]
    assert "quick" in held["quick ways"] and held["frames ways"] == {"frames"}
