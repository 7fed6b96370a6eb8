"""Costing benchmark: 2,000,000 trades in 2,000 (book, asset) groups through each method.

Quantities up to 8 decimals with frequent flips and returns to exactly zero, prices with 2-8
decimals, many equal timestamps, rows shuffled. Each method runs twice, each time in a fresh
Python process that reads the trades and imports the engine (timed, printed apart):

- **kernels loaded first** (issue 16's figure, as its "warm all methods in the benchmark"
  asks): :func:`utl.costing.load_kernels` loads the compiled kernels from numba's cache
  (timed, printed apart), then the *first* ``compute_costs`` call on the 2 M trades is timed,
  and a second call beside it;
- **a cold process**: the first call with nothing loaded before it, kernel loading inside
  its figure, as a one-off script would see it.

Before both, one untimed process fills numba's on-disk cache, so a fresh checkout's
compiling (a few seconds, once per checkout) is in neither. Prints trades/s, the process's
peak RSS, the first call's kernel CPU and page faults (fresh memory: :mod:`machine` prints what
the machine charges for it, before and after), and the ratio to a naive per-trade Python loop
(a deque of lots) on a slice.

    uv run python bench/costing.py [--trades 2000000] [--groups 2000] [--cold]

``--cold`` points numba at an empty cache folder, as in a fresh checkout, and leaves the
cache unfilled: the cold process's first call then includes compiling.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import deque
from decimal import Decimal

import numpy as np
import polars as pl

from machine import first_touch_line, kernel_and_faults
from utl.decimals import DECIMAL


def generate(n: int, groups: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.sort(rng.integers(0, groups, n))
    # Scaled by 1e8: 0.00000001 .. 50 units, either side.
    qty = rng.integers(1, 50 * 10**8, n) * np.where(rng.random(n) < 0.5, -1, 1)
    places = rng.integers(0, 9, n)
    qty = (qty // 10 ** (8 - places)) * 10 ** (8 - places)
    qty[qty == 0] = 10**8
    # Every ~8th trade of a group closes its running position exactly, or flips it.
    running = np.zeros(groups, np.int64)
    action = rng.random(n)
    for i in range(n):  # generating the data is not what is measured
        g = group[i]
        if running[g] != 0 and action[i] < 0.08:
            qty[i] = -running[g]
        elif running[g] != 0 and action[i] < 0.12:
            qty[i] = -2 * running[g]
        running[g] += qty[i]
    price_places = rng.integers(2, 9, n)
    price = rng.integers(100 * 10**8, 70000 * 10**8, n)
    price = (price // 10 ** (8 - price_places)) * 10 ** (8 - price_places)
    ts = np.datetime64("2024-03-05T00:00:00", "us") + (np.arange(n) // 4).astype("timedelta64[s]")
    return pl.DataFrame(
        {
            "book": pl.Series([f"book{g % 50}" for g in range(groups)]).gather(group),
            "asset": pl.Series([f"A{g // 50}" for g in range(groups)]).gather(group),
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "trade_id": pl.int_range(n, eager=True).cast(pl.String),
            "qty": pl.Series(qty).cast(DECIMAL) * pl.Series([Decimal("1e-8")], dtype=DECIMAL),
            "price": pl.Series(price).cast(DECIMAL) * pl.Series([Decimal("1e-8")], dtype=DECIMAL),
        }
    ).sample(fraction=1.0, shuffle=True, seed=seed)  # input order is not application order


def naive_fifo(rows: list[tuple]) -> Decimal:
    """The per-trade Python loop a first version would write: a deque of lots per group."""
    books: dict[tuple[str, str], deque] = {}
    total = Decimal(0)
    for book, asset, _ts, _tid, qty, price in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        lots = books.setdefault((book, asset), deque())
        while qty and lots and (lots[0][0] > 0) != (qty > 0):
            lot_qty, lot_price = lots[0]
            take = min(abs(lot_qty), abs(qty))
            sign = 1 if lot_qty > 0 else -1
            total += take * (price - lot_price) * sign
            qty += take * sign
            if take == abs(lot_qty):
                lots.popleft()
            else:
                lots[0] = (lot_qty - take * sign, lot_price)
        if qty:
            lots.append((qty, price))
    return total


def peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` belongs to the process's own memory; ``ru_maxrss``
    would carry the parent's peak over the fork and exec."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one_method(path: str, method: str, load_first: bool) -> None:
    """In a fresh process: read, import the engine, (load its kernels,) time the first and a
    second call."""
    trades = pl.read_parquet(path)
    input_rss = peak_rss_mb()
    start = time.perf_counter()
    from utl.costing import compute_costs, load_kernels

    imported = time.perf_counter() - start
    start = time.perf_counter()
    if load_first:
        load_kernels(method)
    loaded = time.perf_counter() - start
    times = []
    cpu = []
    kernel = []
    for _ in range(2):
        start = time.perf_counter()
        began = time.process_time()
        kernel_before, faults_before = kernel_and_faults()
        result = compute_costs(trades, method)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - began)
        kernel_after, faults_after = kernel_and_faults()
        kernel.append((kernel_after - kernel_before, faults_after - faults_before))
        del result
    rss = peak_rss_mb()
    print(f"{method} {imported:.3f} {loaded:.3f} {times[0]:.3f} {times[1]:.3f} {rss:.0f} {input_rss:.0f} "
          f"{cpu[0]:.3f} {cpu[1]:.3f} {kernel[0][0]:.3f} {kernel[0][1]}")


_FILL_CACHE = "from utl.costing import load_kernels; load_kernels()"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--groups", type=int, default=2_000)
    parser.add_argument("--naive-slice", type=int, default=200_000)
    parser.add_argument("--cold", action="store_true", help="an empty numba cache, as in a fresh checkout")
    parser.add_argument("--one", nargs=3, metavar=("PARQUET", "METHOD", "LOAD_FIRST"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_method(args.one[0], args.one[1], args.one[2] == "1")
        return
    trades = generate(args.trades, args.groups)
    print(f"{trades.height:,} trades in {args.groups:,} (book, asset) groups; "
          f"load {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1/5/15 min)")
    print(first_touch_line())
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "trades.parquet")
        trades.write_parquet(path)
        env = dict(os.environ)
        if args.cold:
            env["NUMBA_CACHE_DIR"] = os.path.join(folder, "numba-cache")
        else:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", _FILL_CACHE], env=env, check=True, capture_output=True)
            print(f"numba's cache filled (or found full) in {time.perf_counter() - start:.1f} s, untimed")
        rates = {}
        for load_first in (True, False):
            print("\nkernels loaded first (issue 16's figure):" if load_first else
                  "\na cold process (kernel loading inside the first call):")
            print("method   import   kernels   first call            second call          peak RSS (input read: RSS)  "
                  "CPU s, first / second call (all threads; first call's kernel part, page faults)")
            for method in ("fifo", "lifo", "hifo", "wac"):
                out = subprocess.run([sys.executable, __file__, "--one", path, method, "1" if load_first else "0"],
                                     env=env, check=True, capture_output=True, text=True).stdout.split()
                imported, loaded, first, second, rss, input_rss, first_cpu, second_cpu, first_kernel, faults = (float(v) for v in out[1:11])
                if load_first:
                    rates[method] = trades.height / first
                print(f"{method:5s} {imported:7.2f} s {loaded:6.2f} s {first:6.2f} s {trades.height / first / 1e6:6.2f} M/s  "
                      f"{second:6.2f} s {trades.height / second / 1e6:6.2f} M/s  {rss:6.0f} MB ({input_rss:.0f} MB)  "
                      f"CPU {first_cpu:.2f} / {second_cpu:.2f} s (kernel {first_kernel:.2f} s, {faults:,.0f} faults)")
        met = [m for m, r in rates.items() if r >= 10e6]
        print(f"\n10 M trades/s on the first call with kernels loaded: {', '.join(met) or 'none'} of fifo, lifo, hifo, wac")
    rows = trades.head(args.naive_slice).rows()
    start = time.perf_counter()
    naive_fifo(rows)
    naive_rate = len(rows) / (time.perf_counter() - start)
    print(f"naive Python deque FIFO on {len(rows):,} trades: {naive_rate / 1e6:.3f} M trades/s "
          f"(engine FIFO, first call with kernels loaded, is {rates['fifo'] / naive_rate:.0f}x)")
    print(f"load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(first_touch_line())


if __name__ == "__main__":
    main()
