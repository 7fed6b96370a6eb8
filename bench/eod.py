"""End-of-day benchmark: one day of fills over 4 venues, 50 accounts, 500 assets, end to end.

    uv run python bench/eod.py [--fills 10000000] [--derivative-share 0.3] [--keep DIR | --landing DIR]
                               [--url URL] [--store-rows 1000000] [--rss-limit-gb 14] [--profile]

``--derivative-share`` (issue 14: 0.3) puts that share of the fills on 200 derivative
instruments (:mod:`eod_derivatives`: Binance USDⓈ-M and Deribit, linear and inverse
perpetuals and dated futures, their positions replies, specs and instrument marks); 0 gives
the spot-only landing of the figures measured before it.

``--keep DIR`` writes DIR/landing and DIR/expected.json; ``--landing DIR/landing`` reruns it
without generating again. To measure a fixed commit while the work tree changes:
``git archive HEAD src sql | tar -x -C /tmp/head`` and run with ``PYTHONPATH=/tmp/head/src``.

Generates a landing folder (:mod:`eod_landing`; its time is printed but is not part of the
figure), then runs the real ``pipelines.eod.run_eod`` (what ``utl eod`` runs) in a fresh process and prints the seconds of
each stage (wall and CPU) from the run's own progress lines and ``utl.daily.run_day``'s lap
callback, the process's peak RSS (VmHWM) at the end of each stage, and the rows
and rows/s of the PostgreSQL write; then ``bench/store_write.py``'s figure for a 1M-row
positions-like frame, since the day's own write is small (positions, breaks, PnL, exposure).

Target (issue "PostgreSQL store and reconciliation", section 7): 10 M fills end to end in
under 60 s on 2 cores, under 4 GB, PostgreSQL write at least 500 k rows/s.

The database is ``--url``, else ``UTL_DATABASE_URL``, else the embedded server. The run
writes to a scratch database created on that server and dropped afterwards, so a benchmark
never replaces the dates, quarantine or break history of the database UTL uses. The run
must find exactly the planted breaks with their differences and quarantine nothing, else the
benchmark fails (exit 1). A run whose RSS passes ``--rss-limit-gb`` is stopped, since the
machine is shared.
"""

from __future__ import annotations

import utl  # noqa: F401 - first, as `utl eod` does: its allocator settings apply only before Polars loads
import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from queue import Empty

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eod_landing import BUSINESS_DATE, generate  # noqa: E402
from ingest import peak_rss_bytes  # noqa: E402

TARGET_SECONDS = 60
TARGET_RSS_BYTES = 4 * 2**30
TARGET_PG_ROWS_PER_SECOND = 500_000
_SECONDS = re.compile(r"\(([\d.]+) s")


# ---------------------------------------------------------------- the measured run (a fresh process)


def run_one(landing: str, storage: str, url: str, profile: bool, out: mp.Queue) -> None:
    """Runs in a fresh process: ``run_eod`` with every progress line timed, and the calls the
    assets make a shard at a time (reading a shard's stored rows, booking its legs, its day
    step and the day step's own laps) summed per kind, each with the process's CPU seconds
    and its peak RSS so far. Lines are also printed as they come, so a run stopped by the
    parent's RSS limit still shows how far it got."""
    import pipelines.assets
    import utl.daily
    import utl.day
    try:
        import utl.stored_day
    except ImportError:  # code from before shards
        utl.stored_day = None
    try:
        import utl.booking
        booking = utl.booking
    except ImportError:  # code from before ledger_legs read the rows
        booking = None
    from pipelines.eod import run_eod
    from utl.memory import LandingMemory
    from utl.store import Database

    lines: list[tuple[float, str, int, float]] = []
    spent: dict[str, list[float]] = {}  # kind -> [calls, seconds, CPU seconds, peak RSS]

    def count(kind: str, seconds: float, cpu: float) -> None:
        entry = spent.setdefault(kind, [0, 0.0, 0.0, 0])
        entry[0] += 1
        entry[1] += seconds
        entry[2] += cpu
        entry[3] = max(entry[3], peak_rss_bytes())

    def timed(kind: str, call):
        def wrapper(*args, **kwargs):
            t, c = time.perf_counter(), time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                count(kind, time.perf_counter() - t, time.process_time() - c)
        return wrapper

    def on_progress(line: str) -> None:
        lines.append((time.perf_counter(), line, peak_rss_bytes(), time.process_time()))
        print(f"  | {time.perf_counter() - started:7.2f} s  peak {peak_rss_bytes() / 2**20:7,.0f} MB  {line}", flush=True)

    real_run_day = utl.daily.run_day

    def lapped_run_day(*args, **kwargs):
        last = [time.perf_counter(), time.process_time()]

        def lap(step: str) -> None:
            t, c = time.perf_counter(), time.process_time()
            count(f"  day step: {step}", t - last[0], c - last[1])
            last[:] = [t, c]
        return real_run_day(*args, **kwargs, lap=lap)

    # step: the day step of code from before shards (to measure it beside); what is missing is skipped.
    patches = [(LandingMemory, "day_rows"), (booking or pipelines.assets, "book_day"), (utl.stored_day, "step_shards"),
               (pipelines.assets, "step"), (utl.day, "book_derivatives"), (utl.day, "run_day"),
               (pipelines.assets, "write_day")]
    kinds = {"day_rows": "ledger_legs: read a shard's rows", "book_day": "ledger_legs: book a shard's legs",
             "step_shards": "day_state: the day step (every shard)", "step": "day_state: the day step (whole)", "book_derivatives": "  day step: derivatives",
             "run_day": "  day step: run_day", "write_day": "eod_tables: PostgreSQL write"}
    saved = [(owner, name, getattr(owner, name)) for owner, name in patches if owner and hasattr(owner, name)]
    for owner, name, call in saved:
        setattr(owner, name, timed(kinds[name], lapped_run_day if name == "run_day" else call))
    try:
        rss_before = peak_rss_bytes()
        started, cpu_started = time.perf_counter(), time.process_time()
        call = lambda: run_eod(Path(landing), BUSINESS_DATE, Path(storage), Database(url, None), on_progress)  # noqa: E731
        if profile:
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile()
            summary = profiler.runcall(call)
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(45)
            profile_text = text.getvalue()
        else:
            summary = call()
            profile_text = ""
        total, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        with psycopg.connect(url) as conn:
            breaks = conn.execute(
                "SELECT venue, account, asset, diff::text FROM utl.breaks WHERE business_date = %s ORDER BY 1, 2, 3",
                (BUSINESS_DATE,),
            ).fetchall()
            positions = conn.execute("SELECT count(*) FROM utl.positions WHERE business_date = %s", (BUSINESS_DATE,)).fetchone()[0]
        out.put({
            "started": started, "cpu_started": cpu_started, "total": total, "cpu": cpu, "lines": lines, "spent": spent,
            "rss_before": rss_before, "rss_peak": peak_rss_bytes(), "breaks": breaks, "positions": positions,
            "quarantined": summary.quarantined, "profile": profile_text,
        })  # fmt: skip
    except Exception as exc:  # reported by the parent, which then fails
        out.put({"error": f"{type(exc).__name__}: {exc}", "lines": lines})
    finally:
        for owner, name, call in saved:
            setattr(owner, name, call)


def measure(landing: Path, storage: Path, url: str, profile: bool, rss_limit: int) -> dict:
    """The run in a fresh process, stopped (SIGKILL, by its pid) if its RSS passes ``rss_limit``:
    the machine is shared, and a run that would not fit must not take the others down."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=run_one, args=(str(landing), str(storage), url, profile, queue))
    child.start()
    status = Path(f"/proc/{child.pid}/status")
    high = 0
    while True:
        try:
            return queue.get(timeout=0.2)
        except Empty:
            pass
        try:
            rss = next(int(x.split()[1]) * 1024 for x in status.read_text().splitlines() if x.startswith("VmRSS:"))
        except (OSError, StopIteration):
            rss = 0
        high = max(high, rss)
        if rss > rss_limit:
            child.kill()
            child.join()
            return {"error": f"stopped at {rss / 2**30:.1f} GB RSS (limit {rss_limit / 2**30:.0f} GB)", "lines": []}
        if not child.is_alive() and queue.empty():
            return {"error": f"the run's process died (exit code {child.exitcode}); last RSS seen {high / 2**30:.1f} GB",
                    "lines": []}


# ---------------------------------------------------------------- reading the run's own lines


def stages(result: dict) -> list[tuple[str, float, float, int]]:
    """(stage, seconds, CPU seconds, peak RSS so far): ingest from the run's own line, then
    the shard work summed over shards (calls in brackets), then what is left of the run
    (Dagster, the assets' Parquet, the fingerprint, exposure, checks). CPU seconds (all
    threads) say how much work a stage is whatever else the machine runs."""
    lines, spent = result["lines"], result["spent"]
    at = {line.split(":")[0]: (t, rss, cpu) for t, line, rss, cpu in lines}
    t0, cpu0 = result["started"], result["cpu_started"]
    out = [("ingest (read + parse + dedupe)", at["ingest"][0] - t0, at["ingest"][2] - cpu0, at["ingest"][1])]
    measured_seconds, measured_cpu = out[0][1], out[0][2]
    for kind, (calls, seconds, cpu, rss) in spent.items():
        if not kind.startswith("  "):
            measured_seconds += seconds
            measured_cpu += cpu
        out.append((f"{kind} [{calls}]", seconds, cpu, rss))
    out.append(("the rest (Dagster, Parquet, checks)", result["total"] - measured_seconds,
                result["cpu"] - measured_cpu, result["rss_peak"]))
    return out


def postgres_rows(result: dict) -> int:
    line = next(line for _, line, _, _ in result["lines"] if line.startswith("postgres:"))
    return int(re.search(r"postgres: (\d+) rows", line).group(1))


# ---------------------------------------------------------------- scratch database


def create_scratch(url: str) -> tuple[str, str]:
    name = f"utl_eod_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name, make_conninfo(url, dbname=name)


def drop_scratch(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# ---------------------------------------------------------------- report


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report(result: dict, expected: dict) -> bool:
    fills = expected["fills"]
    print(f"{'stage [calls]':<46}{'seconds':>9}{'CPU s':>8}{'peak RSS MB':>13}")
    for name, seconds, cpu, rss in stages(result):
        print(f"{name:<46}{seconds:>9.2f}{cpu:>8.2f}{rss / 2**20:>13,.0f}".replace("nan", "   "))
    total, peak = result["total"], result["rss_peak"]
    print(f"{'total (run_eod, end to end)':<46}{total:>9.2f}   ({fills / total:,.0f} fills/s, CPU {result['cpu']:.1f} s)")
    rows = postgres_rows(result)
    pg_seconds = float(_SECONDS.search(next(line for _, line, _, _ in result["lines"] if line.startswith("postgres:"))).group(1))
    print(f"PostgreSQL: {rows:,} rows in {pg_seconds:.2f} s = {rows / pg_seconds:,.0f} rows/s "
          f"({result['positions']:,} positions rows)")
    print(f"peak RSS (VmHWM of the run's process): {peak / 2**20:,.0f} MB (at start {result['rss_before'] / 2**20:,.0f} MB)")
    # Honest figures only: the run must have found exactly the planted breaks, nothing refused.
    # Both sides in one (Python) order: PostgreSQL's collation may order symbols otherwise.
    found = sorted(result["breaks"])
    wanted = sorted(expected["breaks"], key=lambda b: (b["venue"], b["account"], b["asset"]))
    planted = [(b["venue"], b["account"], b["asset"]) for b in wanted]
    diffs_ok = all(
        _same_decimal(d, b["diff"]) for (v, a, s, d), b in zip(found, wanted, strict=False)
    )
    ok = [(v, a, s) for v, a, s, _ in found] == planted and diffs_ok and result["quarantined"] == 0
    print(f"check: {len(found)} breaks found, {len(planted)} planted, diffs {'equal' if diffs_ok else 'DIFFER'}, "
          f"{result['quarantined']} quarantined -> {'ok' if ok else 'WRONG'}")
    flags = []
    if fills >= 10_000_000 and total > TARGET_SECONDS:
        flags.append(f"over {TARGET_SECONDS} s")
    if peak > TARGET_RSS_BYTES:
        flags.append("over 4 GB")
    if rows / pg_seconds < TARGET_PG_ROWS_PER_SECOND:
        flags.append("PostgreSQL write below 500k rows/s (a small write: see store_write below)")
    print(f"targets: {'; '.join(flags) or 'met'}")
    if result["profile"]:
        print(result["profile"])
    return ok


def _same_decimal(a: str, b: str) -> bool:
    from decimal import Decimal

    return Decimal(a) == Decimal(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=10_000_000)
    parser.add_argument("--derivative-share", type=float, default=0.3,
                        help="share of the fills on 200 derivative instruments (issue 14: 0.3); 0 gives the spot-only landing")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--keep", type=Path, help="generate into DIR/landing and keep it (default: a temp folder)")
    where.add_argument("--landing", type=Path, help="run an existing generated landing folder (its ../expected.json)")
    parser.add_argument("--url", default=os.environ.get("UTL_DATABASE_URL"))
    parser.add_argument("--store-rows", type=int, default=1_000_000, help="rows for store_write's figure; 0 skips it")
    parser.add_argument("--rss-limit-gb", type=float, default=14, help="stop the run past this RSS (shared machine)")
    parser.add_argument("--profile", action="store_true", help="run under cProfile and print the top of it")
    args = parser.parse_args()

    print(f"load average {load()}, {os.cpu_count()} CPUs")
    temp = tempfile.TemporaryDirectory(prefix="utl-eod-") if not (args.keep or args.landing) else None
    work = Path(temp.name) if temp else (args.keep or args.landing.parent)
    try:
        if args.landing:
            landing = args.landing
            expected = json.loads((landing.parent / "expected.json").read_text())
            print(f"landing {landing}: {expected['fills']:,} fills (generated before)")
        else:
            landing = work / "landing"
            started = time.perf_counter()
            expected = generate(landing, args.fills, derivative_share=args.derivative_share)
            size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file())
            print(f"generated {args.fills:,} fills ({expected['derivative_fills']:,} on derivatives), {size / 1e6:,.0f} MB in {time.perf_counter() - started:.1f} s "
                  f"(not part of the figure); generator peak RSS {peak_rss_bytes() / 2**20:,.0f} MB")
        storage = work / f"storage-{uuid.uuid4().hex[:6]}"
        try:
            ok = _with_database(args, landing, storage, expected)
        finally:
            shutil.rmtree(storage, ignore_errors=True)  # the run's Parquet files: scratch, like the database
    finally:
        if temp:
            temp.cleanup()
    print(f"load average after {load()}")
    sys.exit(0 if ok else 1)


def _with_database(args, landing: Path, storage: Path, expected: dict) -> bool:
    from store_write import run as store_write

    from utl.store import open_database

    def on(url: str, description: str) -> bool:
        name, scratch = create_scratch(url)
        print(f"database: scratch {name} on {description}")
        try:
            result = measure(landing, storage, scratch, args.profile, int(args.rss_limit_gb * 2**30))
        finally:
            drop_scratch(url, name)
        if "error" in result:
            print(f"run failed: {result['error']}")
            return False
        ok = report(result, expected)
        if args.store_rows:
            print(f"store_write.py, {args.store_rows:,}-row positions-like frame (load average {load()}):")
            store_write(url, args.store_rows)
        return ok

    if args.url:
        return on(args.url, "--url / UTL_DATABASE_URL")
    with open_database() as database:
        return on(database.url, database.description)


if __name__ == "__main__":
    main()
