"""Child processes for the store tests: ``python workers.py <command> <args...>``.

The tests need real separate processes (to run at once, or to be killed with SIGKILL),
so each scenario is a command here, run with the venv's interpreter.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import polars as pl

from utl.decimals import DECIMAL
from utl.store import connect, embedded_server, migrate, replace_rows, run_lock
from utl.store.lock import RUN_LOCK_KEY

BIG_DAY = dt.date(2024, 5, 2)


def start(*args: str, env: dict[str, str] | None = None, stderr: int | None = None) -> subprocess.Popen[str]:
    """Run ``workers.py <args>`` in a new process, its stdout piped as text."""
    return subprocess.Popen(
        [sys.executable, __file__, *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )


def big_positions(rows: int, day: dt.date = BIG_DAY) -> pl.DataFrame:
    """``rows`` positions of one day with distinct assets and 18-digit fractions."""
    i = pl.int_range(rows, eager=True)
    tick = pl.lit(Decimal("0.000000000000000001"), DECIMAL)
    return pl.select(
        business_date=pl.lit(day),
        venue=pl.lit("binance"),
        account=pl.lit("mm-1"),
        asset=pl.lit("A") + i.cast(pl.String).str.zfill(9),
        qty=i.cast(DECIMAL) + tick,
        mark=(i % 977).cast(DECIMAL) + tick,
        market_value=(i * 3).cast(DECIMAL) - tick,
        landing=pl.lit("/srv/landing"),  # in every key since 008_landing_keys
    )


def cmd_migrate(url: str) -> None:
    with connect(url) as conn:
        print(json.dumps([m.version for m in migrate(conn)]))


def cmd_replace_big(url: str, rows: str) -> None:
    frame = big_positions(int(rows))
    with connect(url) as conn:
        written = replace_rows(conn, "utl.positions", frame, where={"business_date": BIG_DAY})
    print(written)


def cmd_hold_lock(url: str, label: str, wait_for_waiter: str) -> None:
    """Take the run lock, log enter/exit; the first holder waits until someone queues behind it."""
    with connect(url) as log, connect(url) as conn:

        def record(event: str) -> None:
            log.execute("INSERT INTO lock_log VALUES (%s, %s, clock_timestamp())", (label, event))

        with run_lock(conn):
            record("enter")
            if wait_for_waiter == "1":
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    waiting = log.execute(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                        " AND classid = %s AND objid = %s",
                        (RUN_LOCK_KEY >> 32, RUN_LOCK_KEY & 0xFFFFFFFF),
                    ).fetchone()[0]
                    if waiting:
                        record("saw_waiter")
                        break
                    time.sleep(0.05)
            record("exit")


def cmd_serve(data_dir: str) -> None:
    """Start the embedded server, report it, then idle until killed."""
    with embedded_server(Path(data_dir)) as url:
        with connect(url) as conn:
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        print(json.dumps({"url": url, "backend": pid}), flush=True)
        time.sleep(3600)


def cmd_query(data_dir: str) -> None:
    """Start (or join) the embedded server, run a query, leave normally."""
    with embedded_server(Path(data_dir)) as url, connect(url) as conn:
        print(json.dumps({"url": url, "answer": conn.execute("SELECT 6 * 7").fetchone()[0]}))


def cmd_leave_open(data_dir: str) -> None:
    """Enter the embedded server's block and exit the interpreter without leaving it."""
    context = embedded_server(Path(data_dir))
    url = context.__enter__()
    with connect(url) as conn:
        print(json.dumps({"answer": conn.execute("SELECT 6 * 7").fetchone()[0]}))


if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
