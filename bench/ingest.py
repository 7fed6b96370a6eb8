"""Ingestion benchmark: venue exports in their real layouts through their readers.

Generates ``--rows`` fills (default 5,000,000) spread over Binance Spot Trade History, Kraken
Trades and Ledgers, Coinbase Pro fills, OKX trading account history and ccxt JSON lines
(see ``venue_files.GENERATORS`` for the shares), then reads each file with its ``Format.read``
in a fresh process and prints data rows/s (wall clock; CPU seconds beside it, which exceed
the wall time where Polars runs threads) and that process's peak RSS. The issue's targets:
>= 1M rows/s per CSV format, peak RSS < 3 GB.

    uv run python bench/ingest.py [--rows 5000000] [--only kraken.trades] [--keep DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from venue_files import GENERATORS  # noqa: E402

from utl.venues import all_formats  # noqa: E402
from utl.venues.base import Source, head_text  # noqa: E402

TARGET_ROWS_PER_SECOND = 1_000_000
TARGET_RSS_BYTES = 3 * 2**30


def peak_rss_bytes() -> int:
    """This process's peak RSS.

    Linux keeps ``ru_maxrss`` across ``execve``, so a reader process spawned by this (large)
    generating process would start at its parent's peak; ``VmHWM`` belongs to the process's
    own memory map and starts afresh. Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def read_one(name: str, path: str, out: mp.Queue) -> None:
    """Runs in a fresh process: detect, read, and report rows, seconds and peak RSS."""
    (fmt,) = [f for f in all_formats() if f.name == name]
    if not fmt.detect(head_text(Path(path))):
        out.put({"error": f"{name} does not recognise its own file"})
        return
    rss_before = peak_rss_bytes()
    start, cpu_start = time.perf_counter(), time.process_time()
    parsed = fmt.read(Source(path=Path(path), rel=Path(path).name, venue="bench", account="main"))
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    out.put(
        {
            "seconds": seconds,
            "cpu": cpu,
            "booked": parsed.frame.height,
            "distinct_rows": parsed.frame["source_row"].n_unique(),
            "quarantined": parsed.quarantine.height,
            "rss_before": rss_before,
            "rss_peak": peak_rss_bytes(),
        }
    )


def measure(name: str, path: Path) -> dict:
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=read_one, args=(name, str(path), queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="fills in all, spread over the formats")
    parser.add_argument("--only", action="append", choices=sorted(GENERATORS), help="bench only these formats")
    parser.add_argument("--keep", type=Path, help="write the files here and keep them (default: a temp folder)")
    args = parser.parse_args()

    names = args.only or list(GENERATORS)
    folder_context = tempfile.TemporaryDirectory(prefix="utl-ingest-") if args.keep is None else None
    folder = Path(folder_context.name) if folder_context else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs, {args.rows:,} fills")
    print(f"{'format':<22}{'fills':>11}{'rows':>11}{'MB':>8}{'gen s':>8}{'read s':>8}{'cpu s':>7}{'rows/s':>12}{'rows/CPU s':>12}{'peak RSS MB':>13}  check")
    totals = {"rows": 0, "seconds": 0.0, "peak": 0}
    try:
        for name in names:
            generator, share = GENERATORS[name]
            fills = max(1, round(args.rows * share))
            start = time.perf_counter()
            path, rows = _generate(generator, folder, name, fills)
            generated = time.perf_counter() - start
            result = measure(name, path)
            if "error" in result:
                print(f"{name:<22} {result['error']}")
                continue
            # Every data row must be booked (a ledger row may give two movements) or refused.
            ok = result["distinct_rows"] + result["quarantined"] == rows
            rate = rows / result["seconds"]
            flags = [] if ok else [f"{result['distinct_rows']} booked + {result['quarantined']} refused != {rows}"]
            if rate < TARGET_ROWS_PER_SECOND and not name.startswith("ccxt"):
                flags.append("below 1M rows/s")
            if result["rss_peak"] > TARGET_RSS_BYTES:
                flags.append("over 3 GB")
            print(
                f"{name:<22}{fills:>11,}{rows:>11,}{path.stat().st_size / 1e6:>8.0f}{generated:>8.1f}"
                f"{result['seconds']:>8.2f}{result['cpu']:>7.1f}{rate:>12,.0f}{rows / result['cpu']:>12,.0f}{result['rss_peak'] / 2**20:>13,.0f}  {'; '.join(flags) or 'ok'}"
            )
            totals["rows"] += rows
            totals["seconds"] += result["seconds"]
            totals["peak"] = max(totals["peak"], result["rss_peak"])
            if folder_context:
                path.unlink()
    finally:
        if folder_context:
            folder_context.cleanup()
    if totals["seconds"]:
        print(
            f"all: {totals['rows']:,} rows read in {totals['seconds']:.1f} s ({totals['rows'] / totals['seconds']:,.0f} rows/s); "
            f"peak RSS of a reader {totals['peak'] / 2**20:,.0f} MB; generator process peak {peak_rss_bytes() / 2**20:,.0f} MB"
        )
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def _generate(generator, folder: Path, name: str, fills: int) -> tuple[Path, int]:
    sub = folder / name.replace(".", "_")
    sub.mkdir(parents=True, exist_ok=True)
    return generator(sub, fills)


if __name__ == "__main__":
    main()
