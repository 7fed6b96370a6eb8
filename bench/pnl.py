"""PnL benchmark: one business date of 10,000,000 legs over 500 assets and 50 books.

Prints seconds per step of ``utl.daily.run_day`` (pricing, costing, positions, PnL and
explain), exposure, and memory: the RSS of the generated input alone, and the peak RSS
while the day runs (the high-water mark is reset once the input is built, where Linux
allows, so generating the data is not counted; the input held in memory is). Target on the
2-core machines (issue 16): under 10 s, under 2 GB.

``--shards N`` runs the date as the end-of-day run does since it books a date in shards
(``utl.shards``): the legs are first stored as Parquet part files, one per shard of books
(the format of the Dagster hand-over, ``pipelines.io_manager.PARQUET``), and let go; then
each shard's legs are read from their file and run through the same ``run_day``, one shard
at a time, so the date's legs are never held at once. Reading the files is in the time; the
peak RSS counts the held outputs (positions, PnL, explain) but not the generated input. A
check proves the shards booked every leg: each (venue, account, asset)'s position equals its
opening plus its legs, summed exactly from the stored files.

    uv run python bench/pnl.py [--legs 10000000] [--assets 500] [--books 50] [--shards 5]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import resource
import time
from decimal import Decimal

import numpy as np
import polars as pl

from utl.daily import LedgerState, run_day
from utl.schemas import LOTS_STATE, POSITIONS_STATE
from utl.decimals import DECIMAL
from utl.exposure import exposure_by_asset, exposure_by_book, exposure_by_venue
from utl.legs import LEGS_OUT
from utl.settings import Settings

DAY = dt.date(2024, 3, 5)


def scaled(values: np.ndarray, places: int) -> pl.Series:
    return pl.Series(values).cast(DECIMAL) * pl.Series([Decimal(1).scaleb(-places)], dtype=DECIMAL)


def generate(n: int, assets: int, books: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    names = [f"A{i:03d}" for i in range(assets)]
    asset = rng.integers(0, assets, n)
    account = rng.integers(0, books, n)
    base = rng.random(n) < 0.5  # half are fill base legs with a USD price, half priced at mark
    legs = pl.DataFrame(
        {
            "venue": pl.Series(["venue%d" % (b % 4) for b in range(books)]).gather(account),
            "account": pl.Series(["acct%02d" % b for b in range(books)]).gather(account),
            "leg_id": pl.int_range(n, eager=True).cast(pl.String),
            "ts": pl.Series(np.datetime64("2024-03-05T00:00:00", "us") + rng.integers(0, 86_400_000_000, n).astype("timedelta64[us]")).dt.replace_time_zone("UTC"),
            "asset": pl.Series(names).gather(asset),
            "qty": scaled(rng.integers(1, 10**9, n) * np.where(rng.random(n) < 0.5, -1, 1), 8),
            "kind": pl.Series(np.where(base, "base", "quote")),
            "trade_id": pl.int_range(n, eager=True).cast(pl.String),
            "price": scaled(np.where(base, rng.integers(10**4, 10**8, n), 0), 4),
            "quote": pl.Series(np.where(base, "USD", None)),
            "source_row": pl.int_range(n, eager=True),
        }
    ).with_columns(source_file=pl.lit("bench.csv"), source=pl.lit("fills"), fee_asset_assumed=pl.lit(False)).with_columns(price=pl.when(pl.col("kind") == "base").then(pl.col("price")))
    legs = legs.select(LEGS_OUT.names()).cast(LEGS_OUT)
    marks = pl.concat(
        [
            pl.DataFrame({"business_date": [d] * assets, "asset": names,
                          "price": scaled(rng.integers(10**4, 10**8, assets), 4)})
            for d in (DAY - dt.timedelta(days=1), DAY)
        ]
    )
    openings = pl.DataFrame(
        {
            "venue": [f"venue{b % 4}" for b in range(books) for _ in range(assets)],
            "account": [f"acct{b:02d}" for b in range(books) for _ in range(assets)],
            "asset": names * books,
            "qty": scaled(rng.integers(10**10, 10**12, books * assets), 8),
        }
    )
    return legs, marks, openings


def rss_mb(field: str) -> float | None:
    """``VmRSS`` or ``VmHWM`` (peak) of this process in MB, from /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak() -> bool:
    """Reset the peak-RSS mark (Linux: ``5`` to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return True
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--legs", type=int, default=10_000_000)
    parser.add_argument("--assets", type=int, default=500)
    parser.add_argument("--books", type=int, default=50)
    parser.add_argument("--method", default="fifo")
    parser.add_argument("--shards", type=int, default=0,
                        help="run the date a shard of books at a time from stored part files (0: whole, in memory)")
    args = parser.parse_args()
    legs, marks, openings = generate(args.legs, args.assets, args.books)
    if args.shards:
        return run_in_shards(legs, marks, openings, args)
    gc.collect()
    reset = reset_peak()
    load = os.getloadavg()
    print(f"{legs.height:,} legs, {args.assets} assets, {args.books} books, {args.method}; "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"input in memory: RSS {rss_mb('VmRSS'):.0f} MB ({legs.estimated_size('mb'):.0f} MB of legs by Polars' estimate)")
    settings = Settings(costing_method=args.method)
    start = LedgerState(DAY - dt.timedelta(days=1), POSITIONS_STATE.to_frame(), LOTS_STATE.to_frame())
    clock = [time.perf_counter()]
    began = clock[0]
    cpu_began = time.process_time()

    def lap(step: str) -> None:
        now = time.perf_counter()
        print(f"  {step:18s} {now - clock[0]:6.2f} s")
        clock[0] = now

    result = run_day(DAY, start, openings, legs, marks, settings, lap)
    exposure_by_asset(result.positions.with_columns(business_date=pl.lit(DAY)))
    exposure_by_venue(result.positions.with_columns(business_date=pl.lit(DAY)))
    exposure_by_book(result.positions.with_columns(business_date=pl.lit(DAY)))
    lap("exposure")
    print(f"total {time.perf_counter() - began:.2f} s (CPU {time.process_time() - cpu_began:.2f} s, all threads); "
          f"{result.positions.height:,} positions, "
          f"{result.state.lots.height:,} open lots; unexplained max "
          f"{result.explain['unexplained'].abs().max()}")
    if reset:
        print(f"peak RSS while the day ran (input included) {rss_mb('VmHWM'):.0f} MB")
    print(f"peak RSS of the whole process (data generation included) "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    load = os.getloadavg()
    print(f"load after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def run_in_shards(legs: pl.DataFrame, marks: pl.DataFrame, openings: pl.DataFrame, args) -> None:
    """Store the legs a shard of books per file, then run the date from the files in a fresh
    process (a process that built the legs keeps their memory from the allocator)."""
    import multiprocessing as mp
    import shutil
    import tempfile
    from pathlib import Path

    from pipelines.io_manager import PARQUET

    accounts = sorted(legs["account"].unique().to_list())
    groups = [[str(a) for a in g] for g in np.array_split(np.array(accounts, dtype=object), args.shards) if len(g)]
    folder = Path(tempfile.mkdtemp(prefix="utl-pnl-bench-"))
    try:
        for k, group in enumerate(groups):
            legs.filter(pl.col("account").is_in(group)).write_parquet(folder / f"legs-{k:05d}.parquet", **PARQUET)
        marks.write_parquet(folder / "marks.parquet")
        openings.write_parquet(folder / "openings.parquet")
        n = legs.height
        del legs
        print(f"{n:,} legs stored in {len(groups)} shards of books ({folder}), {args.assets} assets, "
              f"{args.books} books, {args.method}; run in a fresh process")
        child = mp.get_context("spawn").Process(target=run_stored, args=(str(folder), groups, args.method))
        child.start()
        child.join()
        if child.exitcode:
            raise SystemExit(child.exitcode)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_stored(folder: str, groups: list[list[str]], method: str) -> None:
    from pathlib import Path

    stored = Path(folder)
    parts = [(stored / f"legs-{k:05d}.parquet", group) for k, group in enumerate(groups)]
    marks, openings = pl.read_parquet(stored / "marks.parquet"), pl.read_parquet(stored / "openings.parquet")
    settings = Settings(costing_method=method)
    start = LedgerState(DAY - dt.timedelta(days=1), POSITIONS_STATE.to_frame(), LOTS_STATE.to_frame())
    gc.collect()
    reset = reset_peak()
    load = os.getloadavg()
    print(f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; RSS at start {rss_mb('VmRSS'):.0f} MB (marks and openings read)")
    steps: dict[str, float] = {}
    clock = [time.perf_counter()]
    began, cpu_began = clock[0], time.process_time()

    def lap(step: str) -> None:
        now = time.perf_counter()
        steps[step] = steps.get(step, 0.0) + now - clock[0]
        clock[0] = now

    positions, pnl, explain, open_lots = [], [], [], 0
    for path, group in parts:
        shard_legs = pl.read_parquet(path)
        lap("read the shard")
        result = run_day(DAY, start, openings.filter(pl.col("account").is_in(group)), shard_legs, marks, settings, lap)
        positions.append(result.positions)
        pnl.append(result.pnl)
        explain.append(result.explain)
        open_lots += result.state.lots.height  # the EOD run writes them out per shard
        del result, shard_legs
    positions_all = pl.concat(positions)
    exposure_by_asset(positions_all.with_columns(business_date=pl.lit(DAY)))
    exposure_by_venue(positions_all.with_columns(business_date=pl.lit(DAY)))
    exposure_by_book(positions_all.with_columns(business_date=pl.lit(DAY)))
    lap("exposure")
    total, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    for step, seconds in steps.items():
        print(f"  {step:18s} {seconds:6.2f} s (over {len(parts)} shards)")
    explained = pl.concat(explain)
    print(f"total {total:.2f} s (CPU {cpu:.2f} s, all threads); {positions_all.height:,} positions, {open_lots:,} open "
          f"lots, {pl.concat(pnl).height:,} PnL rows; unexplained max {explained['unexplained'].abs().max()}")
    if reset:
        print(f"peak RSS while the day ran (outputs held, legs read a shard at a time) {rss_mb('VmHWM'):.0f} MB")
    # (Not ru_maxrss: it keeps the RSS of the parent at the fork that started this process.)
    # Every stored leg booked: position = opening + legs, exactly, per (venue, account, asset).
    key = ["venue", "account", "asset"]
    expected = (pl.concat([openings.lazy().select(*key, "qty"),
                           pl.scan_parquet([p for p, _ in parts]).select(*key, "qty")])
                .group_by(key).agg(pl.col("qty").sum()).collect())
    booked = positions_all.select(*key, "qty").join(expected, on=key, how="full", coalesce=True, suffix="_expected")
    wrong = booked.filter(pl.col("qty").fill_null(0) != pl.col("qty_expected").fill_null(0))
    print(f"check: {booked.height:,} positions against opening + stored legs: "
          f"{'every one equal' if wrong.height == 0 else f'{wrong.height} differ'}")
    load = os.getloadavg()
    print(f"load after {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if wrong.height:
        raise SystemExit(1)

if __name__ == "__main__":
    main()
