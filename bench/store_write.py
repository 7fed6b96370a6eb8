"""Throughput of utl.store.replace_rows (and read_frame) on a positions-like frame.

    uv run python bench/store_write.py [--rows 1000000] [--url URL]

Without --url it uses UTL_DATABASE_URL, else the embedded server. It works in a scratch
database created on that server and dropped afterwards. Prints rows/s per step, for the
way replace_rows writes a large day (a fresh day partition filled by binary COPY, then
swapped in) and, for comparison, the ways it does not: the same with CSV (machines without
a pgpq wheel), and DELETE then COPY through the primary key (binary and CSV).

Beside the wall clock it prints the CPU seconds of this process and, when the server runs on
this machine, of the server processes serving the write (the connection's, and the second
connection's that builds half of a large day, ``utl.store.write._swap_day_split``, from its
start to its close): on a shared machine the wall
clock also counts other jobs' time, the CPU seconds much less so. Since issue 16 the swap
builds the day's key in that process alone (a day of SPLIT_MIN_ROWS rows or more: each half's
key in the process that stored it); before, parallel index build workers did part of
it (0.5-0.6 s of CPU per million rows, from ``trace_sort``), which this figure did not count.
``--swap-only`` runs the first of the ways alone (the one replace_rows takes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
import uuid
from pathlib import Path

import polars as pl
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

import utl.store.copy
import utl.store.write
from utl.decimals import DECIMAL
from utl.store import connect, migrate, open_database, read_frame, replace_rows

OPTIONS = {
    # label: (rows from which a day is swapped in, the binary encoder or None for CSV)
    "day partition swap, binary COPY (pgpq)": (utl.store.write.SWAP_MIN_ROWS, utl.store.copy.pgpq),
    "day partition swap, CSV COPY": (utl.store.write.SWAP_MIN_ROWS, None),
    "DELETE + binary COPY through the primary key": (10**18, utl.store.copy.pgpq),
    "DELETE + CSV COPY through the primary key (before issue 16)": (10**18, None),
}


LANDING = "/srv/utl/landing"


def positions_frame(rows: int, business_date: dt.date) -> pl.DataFrame:
    """11 columns as utl.positions has them; numbers with 18-digit fractions, as Polars writes them."""
    i = pl.int_range(rows, eager=True)

    def number(seed: int, scale: int) -> pl.Series:
        whole = (i * seed) % 1_000_003
        frac = ((i * (seed + 17)) % 999_983).cast(pl.String).str.zfill(scale)
        sign = pl.when(i % 3 == 0).then(pl.lit("-")).otherwise(pl.lit(""))
        return pl.select(pl.concat_str(sign, whole.cast(pl.String), pl.lit("."), frac).str.to_decimal(scale=18)).to_series()

    return pl.DataFrame(
        {
            "business_date": pl.repeat(business_date, rows, eager=True),
            "venue": ("venue" + (i % 8).cast(pl.String)),
            "account": ("acct-" + (i % 40).cast(pl.String)),
            "asset": ("ASSET" + i.cast(pl.String)),
            "qty": number(7919, 8),
            "mark": number(104729, 6),
            "market_value": number(1299709, 10),
            "cost_basis": number(15485863, 12),
            "unrealized_pnl": number(32452843, 12),
            "book": ("acct-" + (i % 40).cast(pl.String)),
            "landing": pl.repeat(LANDING, rows, eager=True),  # every row names its landing (008_landing_keys)
        }
    ).with_columns(pl.col("qty", "mark", "market_value", "cost_basis", "unrealized_pnl").cast(DECIMAL))


def server_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of the server process ``pid``, when it runs on this machine."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


HELPER_CPU = [0.0]
"""Server CPU seconds of the second connections a write opened and closed (counted at their close)."""


def _counting_connect(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    if kwargs.get("application_name") == "utl-half":
        pid, close = conn.info.backend_pid, conn.close

        def counted_close() -> None:
            seconds = server_cpu_seconds(pid)  # the whole life of that server process, its start included
            HELPER_CPU[0] += seconds or 0.0
            close()

        conn.close = counted_close  # type: ignore[method-assign]
    return conn


_connect, psycopg.connect = psycopg.connect, _counting_connect


def run(url: str, rows: int, options: dict) -> None:
    name = f"utl_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with connect(make_conninfo(url, dbname=name)) as conn:
            migrate(conn)
            day = dt.date(2024, 5, 1)
            frame = positions_frame(rows, day)
            for number, (option, (swap_from, encoder)) in enumerate(options.items()):
                utl.store.write.SWAP_MIN_ROWS, utl.store.copy.pgpq = swap_from, encoder
                day = dt.date(2024, 5, 1) + dt.timedelta(days=number)  # a first write is a first write
                frame = frame.with_columns(business_date=pl.lit(day))
                replace_rows(conn, "utl.positions", frame.head(1000), where={"landing": LANDING, "business_date": day})  # partition, warm-up
                for label in ("first write", "rewrite (replaces the previous rows)"):
                    server_before, helper_before = server_cpu_seconds(conn.info.backend_pid), HELPER_CPU[0]
                    started, cpu_started = time.perf_counter(), time.process_time()
                    written = replace_rows(conn, "utl.positions", frame, where={"landing": LANDING, "business_date": day})
                    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                    server_after = server_cpu_seconds(conn.info.backend_pid)
                    helper = HELPER_CPU[0] - helper_before
                    server = "" if server_before is None or server_after is None else \
                        f", server CPU {server_after - server_before + helper:.2f} s" + \
                        (f" = {server_after - server_before:.2f} + second connection {helper:.2f}" if helper else "")
                    print(f"{option}: {label}: {written:,} rows in {seconds:.2f} s = {written / seconds:,.0f} rows/s"
                          f" (client CPU {cpu:.2f} s{server}; load {os.getloadavg()[0]:.1f})", flush=True)
            utl.store.write.SWAP_MIN_ROWS, utl.store.copy.pgpq = next(iter(OPTIONS.values()))
            started = time.perf_counter()
            back = read_frame(conn, "SELECT * FROM utl.positions WHERE business_date = %s", (day,))
            seconds = time.perf_counter() - started
            print(f"read_frame: {back.height:,} rows in {seconds:.2f} s = {back.height / seconds:,.0f} rows/s")
            assert back.sort("asset").equals(frame.sort("asset")), "read back differs from what was written"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", default=os.environ.get("UTL_DATABASE_URL"))
    parser.add_argument("--swap-only", action="store_true", help="only the way replace_rows writes a large day")
    args = parser.parse_args()
    options = dict(list(OPTIONS.items())[:1]) if args.swap_only else OPTIONS
    print(f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}; utl.store from {Path(utl.store.write.__file__).parent}")
    if args.url:
        run(args.url, args.rows, options)
    else:
        with open_database() as database:
            print(database.description)
            run(database.url, args.rows, options)


if __name__ == "__main__":
    main()
