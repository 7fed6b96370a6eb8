"""Derivatives benchmark: the average-entry walk and the position snapshot reader.

Instrument legs on 200 instruments (half linear, half inverse), quantities up to 8
decimals with frequent reductions, flips and returns to exactly zero, prices with up to 4
decimals. Prints legs/s of :func:`utl.derivatives.entry.average_entry` (the sequential walk
is compiled, inverse instruments' legs in wide integers), the share of it spent in the exact
Python walk (only what does not fit the compiled one: 0% here), and rows/s of the
positions reader on a Binance positionRisk list.

    uv run python bench/derivatives.py [--legs 600000] [--instruments 200] [--positions 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import time

import numpy as np
import polars as pl

from utl.decimals import DECIMAL
from utl.derivatives import entry
from utl.derivatives.entry import average_entry
from utl.derivatives.schemas import INSTRUMENT_LEGS
from utl.derivatives.snapshots import read_positions


def _text(scaled: int, places: int) -> str:
    sign, digits = ("-" if scaled < 0 else ""), str(abs(int(scaled))).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def generate(n: int, instruments: int, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.sort(rng.integers(0, instruments, n))
    qty = rng.integers(1, 5 * 10**8, n) * np.where(rng.random(n) < 0.5, -1, 1)
    running = np.zeros(instruments, np.int64)
    action = rng.random(n)
    for i in range(n):  # generating the data is not what is measured
        g = group[i]
        if running[g] != 0 and action[i] < 0.08:
            qty[i] = -running[g]  # back to exactly zero
        elif running[g] != 0 and action[i] < 0.12:
            qty[i] = -2 * running[g]  # a flip
        running[g] += qty[i]
    price = rng.integers(50_000_0000, 70_000_0000, n)
    start = dt.datetime(2026, 12, 5, tzinfo=dt.timezone.utc)
    frame = pl.DataFrame({
        "venue": "bench", "account": "a",
        "instrument": pl.Series([f"I{g:03d}/USD:I{g:03d}" if g % 2 else f"I{g:03d}/USDT:USDT" for g in group]),
        "ts": pl.datetime_range(start, start + dt.timedelta(microseconds=n - 1), "1us", eager=True),
        "leg_id": pl.int_range(n, eager=True).cast(pl.String),
        # Scaled integers written as exact decimal text: 12345 at 8 places is "0.00012345".
        "qty": pl.Series([_text(q, 8) for q in qty]).str.to_decimal(scale=18),
        "price": pl.Series([_text(p, 4) for p in price]).str.to_decimal(scale=18),
    })
    return frame.cast(INSTRUMENT_LEGS).with_columns(
        type=pl.lit("swap"), inverse=pl.Series(group % 2 == 1),
        contract_size=pl.when(pl.Series(group % 2 == 1)).then(pl.lit(100, DECIMAL)).otherwise(pl.lit(1, DECIMAL)),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--legs", type=int, default=600_000)
    parser.add_argument("--instruments", type=int, default=200)
    parser.add_argument("--positions", type=int, default=20_000)
    args = parser.parse_args()

    legs = generate(args.legs, args.instruments)
    walk_time = 0.0
    original = entry._walk_groups

    def timed_walk(*a):
        nonlocal walk_time
        t = time.perf_counter()
        out = original(*a)
        walk_time += time.perf_counter() - t
        return out

    entry._walk_groups = timed_walk
    t0 = time.perf_counter()
    result = average_entry(legs)
    elapsed = time.perf_counter() - t0
    entry._walk_groups = original
    flat = result.positions.filter(pl.col("qty") == 0).height
    print(f"average_entry: {args.legs:,} legs on {args.instruments} instruments in {elapsed:.2f} s "
          f"= {args.legs / elapsed:,.0f} legs/s (walk {walk_time / elapsed:.0%} of it); "
          f"{flat} instruments end exactly flat")

    rows = [{"symbol": f"C{i:05d}USDT", "positionAmt": f"{(i % 7) - 3}.125", "entryPrice": "65000.5",
             "markPrice": "66000.1", "unRealizedProfit": "1.25", "positionSide": "BOTH"} for i in range(args.positions)]
    text = json.dumps(rows)
    t0 = time.perf_counter()
    read = read_positions(text, "bench.json", "binance", "a")
    elapsed = time.perf_counter() - t0
    print(f"read_positions: {args.positions:,} positionRisk rows in {elapsed:.3f} s = {args.positions / elapsed:,.0f} rows/s "
          f"({read.positions.height:,} open)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
