"""History: the cost of one day. ``utl eod`` for the newest date after the others ran.

    uv run python bench/history.py --out /tmp/utl-history [--fills-per-day 200000] [--days 1,10,30]
                                   [--database-url URL] [--keep]

For each N in ``--days``: a landing folder of N business dates (:func:`eod_landing.generate_history`:
four venues' daily exports, one trades file per venue-account-day, daily balance snapshots
with planted differences, daily marks) is written under ``--out``; the newest date's files are
held back while ``utl eod --date <N-1th date>`` runs the history (nothing to run when N = 1),
then they are put in place (moved, so their size and mtime are those they were written with)
and ``utl eod --date <newest>`` is timed alone, in a fresh process (``python -m utl.cli`` with
this interpreter), with ``UTL_HOME`` and ``DAGSTER_HOME`` under ``--out/N``.

Printed per N: the fills of the newest date, the wall seconds of that process (imports,
embedded server and report included) and of ``run_eod`` itself ("done: ... in X s"), the
stages from ``utl eod``'s own progress lines (ingest: the memory's refresh; the date's run of
``eod_job``), the open lots the date carried in, the process's peak RSS (its own VmHWM, read
at exit) and the ratio to the first N's figure (issue 9: the 30-day figure within 1.3x the
1-day figure). The newest-date run must say "(1 run now)" and find exactly the date's planted
breaks, else the benchmark fails (exit 1). The load average is printed beside every figure:
the machine is shared. With N = 1 there is no history to run; the database and the Dagster
instance are created beforehand, as the history run does otherwise, so the timed run is the
date's work in every case.

The database is ``--database-url`` (a scratch database is created on that server per N and
dropped afterwards), else each landing's own embedded server under ``--out/N``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eod_landing import BUSINESS_DATE, generate_history  # noqa: E402

TARGET_RATIO = 1.3
ROOT = Path(__file__).resolve().parents[1]
# ``python -m utl.cli`` that also says its own peak RSS (VmHWM) when it exits: ru_maxrss of a
# child would start from this (large, generating) process's peak.
_CLI = """
import atexit, sys
def _peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            print("peak_rss_kb", line.split()[1], file=sys.stderr, flush=True)
atexit.register(_peak)
sys.argv = ["utl", *sys.argv[1:]]
from utl.cli import main
main()
"""

# With no history to run (N = 1), the same first-time work the history run does otherwise is
# done beforehand: create and migrate the landing's database, create the Dagster instance's
# storage; so the timed run is a date's work in every case.
_WARM = """
import sys
from pathlib import Path
from pipelines.instance import dagster_instance
from utl.store import migrate, open_database
with open_database(Path(sys.argv[1])) as database, database.connect() as conn:
    migrate(conn)
dagster_instance().get_runs(limit=1)
"""


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def utl_eod(landing: Path, day: dt.date, env: dict[str, str], log: Path) -> dict:
    """``utl eod --landing L --date D`` in a fresh process: wall seconds, output, peak RSS."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", _CLI, "eod", "--landing", str(landing), "--date", day.isoformat()],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    log.write_text(f"$ utl eod --landing {landing} --date {day}\n{done.stdout}\n--- stderr\n{done.stderr}")
    if done.returncode != 0:
        raise SystemExit(f"utl eod --date {day} failed (exit {done.returncode}), see {log}:\n{done.stderr[-3000:]}")
    peak = re.search(r"^peak_rss_kb (\d+)$", done.stderr, re.M)
    return {"wall": wall, "stdout": done.stdout, "stderr": done.stderr,
            "peak_rss": int(peak.group(1)) * 1024 if peak else 0}


def stages(stderr: str, day: dt.date) -> dict[str, float]:
    """Seconds of the stages ``utl eod`` prints: ingest (the memory's refresh), the date's
    run of ``eod_job``, and ``run_eod`` in all (done: ...)."""
    def seconds(pattern: str) -> float:
        match = re.search(pattern, stderr, re.M)
        return float(match.group(1)) if match else float("nan")

    return {
        "ingest": seconds(r"^ingest: .*\(([\d.]+) s\)$"),
        "date": seconds(rf"^{day.isoformat()}: .*\(([\d.]+) s\)$"),
        "run_eod": seconds(r"^done: .* in ([\d.]+) s$"),
    }


def carried_lots(utl_home: Path, day: dt.date) -> int:
    """Open lots in the state the date started from (the day before's day_state)."""
    import polars as pl

    folder = f"landings/*/dagster/day_state/{(day - dt.timedelta(days=1)).isoformat()}"
    # state.lots.parquet, or a folder of part files (one per shard) when booked in shards
    found = list(utl_home.glob(f"{folder}/state.lots.parquet")) + list(utl_home.glob(f"{folder}/state.lots/*.parquet"))
    return pl.scan_parquet(found).select(pl.len()).collect().item() if found else 0


def one(n: int, args, url: str | None) -> dict:
    work = args.out / f"{n}-days"
    shutil.rmtree(work, ignore_errors=True)
    landing, held = work / "landing", work / "held-back"
    started = time.perf_counter()
    expected = generate_history(landing, args.fills_per_day, n)
    newest = expected["dates"][-1]
    day = dt.date.fromisoformat(newest["business_date"])
    print(f"[{n} days] generated {n} x {args.fills_per_day:,} fills in {time.perf_counter() - started:.1f} s "
          f"(load {load()})", flush=True)
    for rel in newest["files"]:  # the newest date's exports arrive after the history ran
        (held / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(landing / rel, held / rel)
    env = {**os.environ, "UTL_HOME": str(work / "utl_home"), "DAGSTER_HOME": str(work / "dagster_home"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    env.pop("UTL_DATABASE_URL", None)
    if url:
        env["UTL_DATABASE_URL"] = url
    if n > 1:
        started = time.perf_counter()
        history = utl_eod(landing, day - dt.timedelta(days=1), env, work / "history.log")
        print(f"[{n} days] history: {n - 1} dates in {time.perf_counter() - started:.1f} s (load {load()})", flush=True)
        if f"({n - 1} run now)" not in history["stdout"]:
            raise SystemExit(f"the history run did not run {n - 1} dates: {history['stdout']}")
    else:  # what the history run did first otherwise: the embedded database and the Dagster instance
        warm = subprocess.run([sys.executable, "-c", _WARM, str(landing)], env=env, cwd=ROOT, capture_output=True,
                              text=True)
        if warm.returncode != 0:
            raise SystemExit(f"could not prepare the database and instance: {warm.stderr[-3000:]}")
    for rel in newest["files"]:
        os.replace(held / rel, landing / rel)
    before = load()
    result = utl_eod(landing, day, env, work / "newest.log")
    result["load"] = f"{before} / {load()}"
    one_run = "(1 run now)" in result["stdout"]
    breaks = re.search(r"(\d+) breaks open", result["stdout"])
    result.update(n=n, fills=args.fills_per_day, day=day, stages=stages(result["stderr"], day), one_run=one_run,
                  breaks=int(breaks.group(1)) if breaks else -1, planted=len(newest["breaks"]),
                  lots=carried_lots(work / "utl_home", day))
    s = result["stages"]
    print(f"[{n} days] newest date {day}: {result['wall']:.2f} s wall, run_eod {s['run_eod']:.2f} s "
          f"(ingest {s['ingest']:.2f} s, the date {s['date']:.2f} s), peak RSS {result['peak_rss'] / 2**20:,.0f} MB, "
          f"{'1 run' if one_run else 'NOT ONE RUN'}, {result['breaks']} breaks (planted {result['planted']}), "
          f"load {result['load']}", flush=True)
    if not args.keep:
        shutil.rmtree(landing, ignore_errors=True)
        shutil.rmtree(held, ignore_errors=True)
    return result


def table(results: list[dict]) -> tuple[str, bool]:
    base = results[0]
    ok = True
    lines = ["| days of history | fills in the newest day | newest day, wall s | run_eod s | ingest s | the date's run s "
             "| lots carried in | peak RSS MB | ratio to 1 day (wall / run_eod) | within 1.3x | load average (before / after) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["stages"]
        wall_ratio, run_ratio = r["wall"] / base["wall"], s["run_eod"] / base["stages"]["run_eod"]
        meets = wall_ratio <= TARGET_RATIO
        ok &= r["one_run"] and r["breaks"] == r["planted"]
        lines.append(f"| {r['n']} | {r['fills']:,} | {r['wall']:.2f} | {s['run_eod']:.2f} | {s['ingest']:.2f} | "
                     f"{s['date']:.2f} | {r['lots']:,} | {r['peak_rss'] / 2**20:,.0f} | {wall_ratio:.2f} / {run_ratio:.2f} | "
                     f"{'yes' if meets else 'NO'} | {r['load']} |")
    return "\n".join(lines), ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--fills-per-day", type=int, default=200_000)
    parser.add_argument("--days", default="1,10,30", help="comma-separated numbers of business dates")
    parser.add_argument("--out", type=Path, required=True,
                        help="work folder (landings, UTL_HOME, DAGSTER_HOME, logs); others must be able to traverse "
                             "it when run as root (the embedded server's user)")
    parser.add_argument("--database-url", default=None, help="PostgreSQL server for scratch databases "
                                                             "(default: each landing's embedded server)")
    parser.add_argument("--keep", action="store_true", help="keep the landing folders under --out")
    args = parser.parse_args()
    days = [int(x) for x in args.days.split(",") if x.strip()]
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average {load()}, {os.cpu_count()} CPUs; {args.fills_per_day:,} fills a day; days {days}; "
          f"first date {BUSINESS_DATE}", flush=True)
    results = []
    for n in days:
        if args.database_url:
            from eod import create_scratch, drop_scratch

            name, scratch = create_scratch(args.database_url)
            try:
                results.append(one(n, args, scratch))
            finally:
                drop_scratch(args.database_url, name)
        else:
            results.append(one(n, args, None))
    text, ok = table(results)
    print(text)
    (args.out / "history.json").write_text(json.dumps(
        [{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items() if k not in ("stdout", "stderr")}
         for r in results], indent=1))
    print(f"load average after {load()}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
