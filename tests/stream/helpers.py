"""Running ``utl stream`` and feeding it, for the stream's end-to-end tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import nats
import psycopg

from utl.stream.broker import ensure_stream

DAY = dt.date(2024, 3, 5)
ACCOUNTS = [("binance", "mm1"), ("okx", "desk"), ("bybit", "api")]
SYMBOLS = {"BTC/USDT": ("60000", "70000"), "ETH/USDT": ("3000", "4000"), "ETH/BTC": ("0.04", "0.06"),
           "BTC/USD": ("60000", "70000")}
MARKS = {"BTC": "65000", "ETH": "3500", "USDT": "0.9998"}
OPENING = {"BTC": "10", "ETH": "100", "USDT": "1000000", "USD": "1000000"}


STARTED: list["Booker"] = []


class Booker:
    """``utl stream`` in a subprocess; stdout and stderr are collected line by line."""

    def __init__(self, *args: str, env: dict[str, str]):
        STARTED.append(self)
        self.process = subprocess.Popen([sys.executable, "-m", "utl.cli", "stream", *args], env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        for stream, lines in ((self.process.stdout, self.out), (self.process.stderr, self.err)):
            threading.Thread(target=_collect, args=(stream, lines), daemon=True).start()

    def wait_ready(self, patience: float = 60) -> None:
        deadline = time.monotonic() + patience
        while "ready" not in self.out:
            assert self.process.poll() is None, f"utl stream exited {self.process.returncode}: {self.err}"
            assert time.monotonic() < deadline, f"utl stream not ready: {self.err}"
            time.sleep(0.05)

    def stop(self, sig) -> int:
        self.process.send_signal(sig)
        return self.process.wait(60)


def _collect(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line.rstrip("\n"))


def env_for(pg_url: str | None, nats_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("UTL_DATABASE_URL", "UTL_NATS_URL")}
    if pg_url:
        env["UTL_DATABASE_URL"] = pg_url
    if nats_url:
        env["UTL_NATS_URL"] = nats_url
    return env


def wait_offset(pg_url: str, seq: int, patience: float = 120, landing: Path | None = None,
                consumer: str = "utl-stream") -> None:
    """Until the booker (of ``landing``, else of the only landing booking) committed ``seq``."""
    deadline = time.monotonic() + patience
    mine = "" if landing is None else " AND landing = %s"
    while True:
        try:
            with psycopg.connect(pg_url) as conn:
                row = conn.execute("SELECT last_seq FROM utl.stream_offset WHERE consumer = %s" + mine,
                                   (consumer,) if landing is None else (consumer, str(landing.resolve()))).fetchone()
            if row and row[0] >= seq:
                return
        except psycopg.errors.UndefinedTable:
            pass
        assert time.monotonic() < deadline, f"the booker did not reach sequence {seq}"
        time.sleep(0.1)


def make_fills(n: int, seed: int = 1) -> list[tuple[str, str, dict]]:
    """(subject, Nats-Msg-Id, ccxt trade) of ``n`` distinct fills on DAY, exact decimal text."""
    rng = random.Random(seed)
    out = []
    start = dt.datetime.combine(DAY, dt.time(), tzinfo=dt.timezone.utc)
    for i in range(n):
        venue, account = rng.choice(ACCOUNTS)
        symbol = rng.choice(sorted(SYMBOLS))
        low, high = (Decimal(x) for x in SYMBOLS[symbol])
        price = (low + (high - low) * Decimal(rng.randint(0, 10_000)) / 10_000).quantize(Decimal("0.0001"))
        amount = Decimal(rng.randint(1, 10_000_000)) / Decimal(10**8)
        base, quote = symbol.split("/")
        fee_asset = rng.choice([base, quote])
        fee = (amount * Decimal("0.001") if fee_asset == base else amount * price * Decimal("0.001")).quantize(Decimal("1e-10"))
        ts = start + dt.timedelta(milliseconds=i * 17 + 3)
        # Both times, as ccxt gives them (the booker's quick way reads the milliseconds).
        trade = {"id": f"{i}", "order": f"o{i}", "timestamp": int(ts.timestamp() * 1000),
                 "datetime": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                 "symbol": symbol, "side": rng.choice(["buy", "sell"]), "amount": f"{amount}", "price": f"{price}",
                 "cost": f"{amount * price}", "fee": {"cost": f"{fee}", "currency": fee_asset}, "info": {}}
        out.append((f"utl.fills.{venue}.{account}", f"{venue}:{account}:{symbol}:{i}", trade))
    return out


def write_landing(folder: Path, fills: list[tuple[str, str, dict]]) -> Path:
    """A landing folder holding exactly ``fills`` as ccxt trades, opening snapshots and marks."""
    for venue, account in ACCOUNTS:
        (folder / venue / account / "balances").mkdir(parents=True)
        (folder / venue / account / "trades").mkdir(parents=True)
        lines = ["asset,total"] + [f"{a},{q}" for a, q in OPENING.items()]
        (folder / venue / account / "balances" / "2024-03-04.csv").write_text("\n".join(lines) + "\n")
        mine = [json.dumps(t) for s, _, t in fills if s == f"utl.fills.{venue}.{account}"]
        (folder / venue / account / "trades" / "fills.jsonl").write_text("\n".join(mine) + "\n")
    (folder / "marks").mkdir()
    for day in ("2024-03-04", "2024-03-05"):
        (folder / "marks" / f"{day}.csv").write_text("asset,price\n" + "".join(f"{a},{p}\n" for a, p in MARKS.items()))
    (folder / "utl.toml").write_text('reporting_currency = "USD"\ncosting_method = "fifo"\n')
    return folder


async def _publish(url: str, messages: list[tuple[str, str, bytes]]) -> int:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_stream(js)
        last = 0
        for i in range(0, len(messages), 500):
            acks = await asyncio.gather(*[js.publish(s, d, headers={"Nats-Msg-Id": h}) for s, h, d in messages[i:i + 500]])
            last = max([last] + [a.seq for a in acks])
        return last
    finally:
        await nc.close()


def publish(url: str, messages: list[tuple[str, str, bytes]]) -> int:
    """Publish; the stream's last sequence after it."""
    return asyncio.run(_publish(url, messages))


def encoded(fills: list[tuple[str, str, dict]]) -> list[tuple[str, str, bytes]]:
    return [(s, h, json.dumps(t).encode()) for s, h, t in fills]


def stop_leftovers() -> None:
    """Stop bookers a failed test left running (TERM first: an embedded broker goes with it)."""
    while STARTED:
        booker = STARTED.pop()
        if booker.process.poll() is None:
            booker.process.terminate()
            try:
                booker.process.wait(30)
            except subprocess.TimeoutExpired:
                booker.process.kill()
                booker.process.wait()
