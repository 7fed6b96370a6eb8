"""Derivatives day benchmark: :func:`utl.derivatives.day.book_derivatives` alone, on a real day.

Loads one date's inputs as the EOD run stored them (the Dagster IO manager's Parquet
outputs: ``ledger_legs/D/*.parquet`` and the day before's ``day_state`` when there is one),
calls ``book_derivatives`` with the arguments :func:`utl.day.step` passes, and prints wall
and CPU seconds, the RSS before the call and the peak (VmHWM) after it.

    uv run python bench/eod.py --fills 2000000 --keep /tmp/derivfast-2m --store-rows 0 --url ...
    uv run python bench/derivatives_day.py /var/lib/utl/landings/<landing id>/dagster \\
        --landing /tmp/derivfast-2m/landing [--date 2024-03-05] [--repeat 1] [--save DIR] [--compare DIR]

``--save DIR`` writes every table of the result as Parquet; ``--compare DIR`` checks the
result equals one saved before (e.g. by the code of ``main``: run it with
``PYTHONPATH=/tmp/before/src``), table by table, row by row. ``--profile`` prints the top of
a cProfile of one call; ``--step`` times the whole :func:`utl.day.step` instead (no compare).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import time
from pathlib import Path

import polars as pl


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the peak is this call's."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def load(folder: Path, day: dt.date) -> tuple:
    from pipelines.io_manager import Tables
    from utl.day import DayInputs, DayState

    # Tables: a table stored whole or as a part file per shard reads the same
    stored = Tables(folder / "ledger_legs" / day.isoformat())
    inputs = DayInputs.from_tables({name: stored[name] for name in stored})
    yesterday = day - dt.timedelta(days=1)
    previous = folder / "day_state" / yesterday.isoformat()
    if previous.is_dir():
        before = DayState.from_tables(yesterday, Tables(previous).with_prefix("state."))
    else:
        before = DayState.empty(yesterday)
    return inputs, before


def arguments(day: dt.date, before, inputs, settings) -> tuple:
    """What :func:`utl.day.step` passes to ``book_derivatives``."""
    from utl.day import derivative_arguments, open_accounts

    return derivative_arguments(day, before, inputs, open_accounts(day, before, inputs.opening_snapshots), settings)


FIELDS = ("positions", "references", "accounts", "computed_legs", "table", "breaks", "reported", "specs",
          "values_start", "values_end")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dagster", type=Path, help="the landing's dagster folder (ledger_legs/, day_state/)")
    parser.add_argument("--landing", type=Path, required=True, help="the landing folder (its settings)")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=dt.date(2024, 3, 5))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--compare", type=Path)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--step", action="store_true", help="time the whole utl.day.step instead")
    args = parser.parse_args()

    from utl.derivatives.day import book_derivatives
    from utl.settings import load_settings

    settings = load_settings(args.landing)
    inputs, before = load(args.dagster, args.date)
    call = arguments(args.date, before, inputs, settings)
    fills = inputs.derivative_fills.filter(pl.col("ts").dt.date() == args.date).height
    print(f"{args.date}: {fills:,} derivative fills, {inputs.derivative_cash.height:,} cash rows, "
          f"{inputs.positions.height:,} position rows; load average {os.getloadavg()}")
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        book_derivatives(*call)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        return
    if args.step:
        from utl.day import step

        for run in range(args.repeat):
            start_rss = rss_mb()
            reset_peak()
            cpu0, t0 = time.process_time(), time.perf_counter()
            step(args.date, before, inputs, settings)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            peak = rss_mb("VmHWM")
            print(f"run {run + 1}: utl.day.step {wall:.2f} s wall, {cpu:.2f} s CPU; RSS {start_rss:,.0f} MB before, "
                  f"peak {peak:,.0f} MB (+{peak - start_rss:,.0f} MB); load average {os.getloadavg()}")
        return
    result = None
    for run in range(args.repeat):
        result = None
        start_rss = rss_mb()
        reset_peak()
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = book_derivatives(*call)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        peak = rss_mb("VmHWM")
        print(f"run {run + 1}: book_derivatives {wall:.2f} s wall, {cpu:.2f} s CPU; RSS {start_rss:,.0f} MB before, "
              f"peak {peak:,.0f} MB (+{peak - start_rss:,.0f} MB); load average {os.getloadavg()}")
    print(f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for name in FIELDS:
            getattr(result, name).write_parquet(args.save / f"{name}.parquet")
        print(f"saved to {args.save}")
    if args.compare:
        bad = 0
        for name in FIELDS:
            got, want = getattr(result, name), pl.read_parquet(args.compare / f"{name}.parquet")
            if got.schema != want.schema or not got.equals(want):
                bad += 1
                print(f"DIFFERS: {name}: {got.shape} vs {want.shape}")
        print("compare: equal, every table" if not bad else f"compare: {bad} tables differ")
        if bad:
            sys.exit(1)


if __name__ == "__main__":
    main()
