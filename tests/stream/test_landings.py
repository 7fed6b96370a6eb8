"""Two landing folders booking one stream into one shared database (011_stream_landing):
each booker books its own slice (its offset, lock, fills, lots, live positions), and each
landing's daily agreement check compares its own stream with its own EOD run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import psycopg

from tests.stream.helpers import DAY, Booker, encoded, env_for, make_fills, publish, wait_offset, write_landing
from utl.eod import prepare, run_dates


def _batch(landing: Path) -> tuple[dict, dict]:
    """The batch over the landing's fills: positions by (venue, account, asset), PnL by (book, asset)."""
    outputs = list(run_dates(prepare(landing), DAY))[-1]
    positions = {(r["venue"], r["account"], r["asset"]): r["qty"] for r in outputs.positions.iter_rows(named=True)}
    realized = {(r["book"], r["asset"]): r["realized_pnl"] for r in outputs.pnl.iter_rows(named=True)}
    return positions, realized


def _live(conn, landing: Path) -> dict:
    rows = conn.execute("SELECT venue, account, asset, qty, realized_pnl FROM utl.live_positions WHERE landing = %s",
                        (str(landing.resolve()),)).fetchall()
    return {(v, a, s): (q, r) for v, a, s, q, r in rows}


def _assert_equals(live: dict, positions: dict, realized: dict) -> None:
    assert set(positions) <= set(live)
    for key, (qty, pnl) in live.items():
        assert qty == positions.get(key, 0), key
        assert pnl == realized.get((f"{key[0]}/{key[1]}", key[2]), 0), key


def _eod(landing: Path, env: dict, folder: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "utl.cli", "eod", "--landing", str(landing), "--date", str(DAY),
                           "--storage", str(folder / "storage")],
                          env=dict(env, DAGSTER_HOME=str(folder / "dagster_home")),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr


def test_two_landings_in_one_database_each_book_and_check_their_own_stream(pg_url, nats_url, tmp_path):
    fills = make_fills(600, seed=11)
    a = write_landing(tmp_path / "a", fills)
    b = write_landing(tmp_path / "b", fills)
    # B differs from A: 25 BTC opening binance/mm1 instead of 10, and LIFO instead of FIFO.
    balances = b / "binance" / "mm1" / "balances" / "2024-03-04.csv"
    balances.write_text(balances.read_text().replace("BTC,10\n", "BTC,25\n"))
    (b / "utl.toml").write_text('reporting_currency = "USD"\ncosting_method = "lifo"\n')
    expected_a, expected_b = _batch(a), _batch(b)
    assert expected_b[1] != expected_a[1]  # the methods realize differently on these fills

    env = env_for(pg_url, nats_url)
    # The same consumer name for both, B chosen by UTL_LANDING: one lock and offset per landing.
    booker_a = Booker("--landing", str(a), "--batch", "100", env=env)
    booker_b = Booker("--batch", "100", env=dict(env, UTL_LANDING=str(b)))
    booker_a.wait_ready()
    booker_b.wait_ready()
    last = publish(nats_url, encoded(fills))
    wait_offset(pg_url, last, landing=a)
    wait_offset(pg_url, last, landing=b)
    assert booker_a.stop(signal.SIGTERM) == 0, booker_a.err
    assert booker_b.stop(signal.SIGTERM) == 0, booker_b.err

    with psycopg.connect(pg_url) as conn:
        counts = dict(conn.execute("SELECT landing, count(*) FROM utl.stream_fills GROUP BY landing").fetchall())
        assert counts == {str(a.resolve()): 600, str(b.resolve()): 600}
        offsets = conn.execute("SELECT landing, consumer, last_seq FROM utl.stream_offset ORDER BY landing").fetchall()
        assert offsets == [(str(a.resolve()), "utl-stream", last), (str(b.resolve()), "utl-stream", last)]
        live_a, live_b = _live(conn, a), _live(conn, b)
    _assert_equals(live_a, *expected_a)
    _assert_equals(live_b, *expected_b)
    btc = ("binance", "mm1", "BTC")
    assert live_b[btc][0] - live_a[btc][0] == Decimal("15")  # only the openings differ, by 25 - 10

    # B's EOD run is given its exports without one fill its stream booked; A's has them all.
    gone = fills[len(fills) // 2]
    venue, account = gone[0].split(".")[2:]
    trades = b / venue / account / "trades" / "fills.jsonl"
    kept = [line for line in trades.read_text().splitlines() if line and json.loads(line)["id"] != gone[2]["id"]]
    assert len(kept) == len(trades.read_text().splitlines()) - 1
    trades.write_text("\n".join(kept) + "\n")
    _eod(a, env, tmp_path / "eod_a")
    _eod(b, env, tmp_path / "eod_b")

    trade = gone[2]
    base, quote = trade["symbol"].split("/")
    moved = {base: Decimal(trade["amount"]) * (1 if trade["side"] == "buy" else -1),
             quote: Decimal(trade["cost"]) * (-1 if trade["side"] == "buy" else 1)}
    fee = trade["fee"]
    moved[fee["currency"]] = moved.get(fee["currency"], 0) - Decimal(fee["cost"])
    moved = {asset: qty for asset, qty in moved.items() if qty != 0}
    with psycopg.connect(pg_url) as conn:
        checks = dict(conn.execute("SELECT landing, passed FROM utl.check_results WHERE check_name = 'stream_agrees' "
                                   "AND business_date = %s", (DAY,)).fetchall())
        breaks = conn.execute("SELECT landing, venue, account, asset, what, stream_value, eod_value "
                              "FROM utl.stream_breaks WHERE business_date = %s", (DAY,)).fetchall()
    # A's stream agrees with A's EOD (B's stream, with its other opening and method, is not A's).
    assert checks == {str(a.resolve()): True, str(b.resolve()): False}
    assert {row[0] for row in breaks} == {str(b.resolve())}
    assert {(v, ac) for _, v, ac, *_ in breaks} == {(venue, account)}
    quantities = {asset: Decimal(s) - Decimal(e) for _, _, _, asset, what, s, e in breaks if what == "qty"}
    assert quantities == moved


def test_a_booker_without_a_landing_books_apart_from_a_landing_booker(pg_url, nats_url, tmp_path):
    # Priced by their own quote, the reporting currency: a booker without a landing has no marks.
    fills = [f for f in make_fills(400, seed=12) if f[2]["symbol"] == "BTC/USD" and f[2]["fee"]["currency"] == "USD"]
    assert fills
    a = write_landing(tmp_path / "a", fills)
    env = env_for(pg_url, nats_url)
    with_landing = Booker("--landing", str(a), env=env)
    # Nothing written into the database yet and no UTL_LANDING: a booker of no landing ('').
    without = Booker(env={k: v for k, v in env.items() if k != "UTL_LANDING"})
    with_landing.wait_ready()
    without.wait_ready()
    last = publish(nats_url, encoded(fills))
    wait_offset(pg_url, last, landing=a)
    deadline = time.monotonic() + 120
    with psycopg.connect(pg_url) as conn:
        while (conn.execute("SELECT last_seq FROM utl.stream_offset WHERE landing = ''").fetchone() or (0,))[0] < last:
            assert time.monotonic() < deadline, without.err
            time.sleep(0.1)
        held = {(landing, asset): qty for landing, asset, qty in conn.execute(
            "SELECT landing, asset, qty FROM utl.live_positions WHERE venue = 'binance' AND account = 'mm1'")}
    assert with_landing.stop(signal.SIGTERM) == 0, with_landing.err
    assert without.stop(signal.SIGTERM) == 0, without.err

    sign = {"buy": 1, "sell": -1}
    moved = sum(Decimal(t["amount"]) * sign[t["side"]] for s, _, t in fills if s == "utl.fills.binance.mm1")
    assert moved != 0
    # The landing's booker starts from its opening snapshot (10 BTC), the other from zero.
    assert held[("", "BTC")] == moved
    assert held[(str(a.resolve()), "BTC")] == moved + Decimal("10")
