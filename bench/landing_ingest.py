"""Landing ingest benchmark: ``LandingMemory.refresh`` of a generated landing into a fresh memory.

    uv run python bench/landing_ingest.py LANDING [--repeat 2] [--profile] [--digest OUT.json]

Reads every file of ``LANDING`` once (its venue reader, canonical codes, pandera checks) and
stores its rows, as the first ``utl eod`` of a landing does, into a temporary memory folder
(never ``UTL_HOME``'s), in a fresh process per repeat, and prints wall and CPU seconds, peak
RSS and the load average beside them. Generate a landing with ``bench/eod.py --keep DIR`` (or
``bench/eod_landing.py``'s ``generate``) and pass ``DIR/landing``.

To compare two commits: ``git archive <commit> src | tar -x -C /tmp/x`` and run with
``PYTHONPATH=/tmp/x/src``. ``--digest`` writes, per stored file and table, a digest of the
rows as the memory's readers give them back (columns, dtypes, rows in order) and the
catalog: two commits that store the same results write the same digest file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import peak_rss_bytes  # noqa: E402


def _frame_digest(frame) -> str:
    import polars as pl

    digest = hashlib.sha256(repr(list(frame.schema.items())).encode())
    if frame.height:
        digest.update(frame.hash_rows(seed=3).to_numpy().tobytes())
        # hash_rows ignores nothing but a hash can collide: add the text of a few columns too
        digest.update(frame.select(pl.all().cast(pl.String)).write_csv().encode())
    return digest.hexdigest()


def digest_memory(memory) -> dict:
    import polars as pl

    from utl.ingest import FileRows

    catalog = memory.catalog.drop("mtime_ns").sort("file")
    out = {"catalog": _frame_digest(catalog)}
    for row in catalog.iter_rows(named=True):
        out[row["file"]] = {name: _frame_digest(memory._scan(row["key"], name, pl.lit(True)))
                            for name in FileRows.TABLES}
    return out


def run_one(landing: str, profile: bool, digest: str | None, out: mp.Queue) -> None:
    """Runs in a fresh process: one refresh into a new temporary memory."""
    from utl.memory import LandingMemory
    from utl.settings import load_settings

    path = Path(landing)
    settings = load_settings(path)
    with tempfile.TemporaryDirectory(prefix="utl-ingest-bench-") as root:
        memory = LandingMemory(path, Path(root) / "memory", settings)
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        refreshed = memory.refresh()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        rows = int(memory.catalog["rows"].sum())
        stored = sum(f.stat().st_size for f in (Path(root) / "memory" / "rows").rglob("*") if f.is_file())
        files = sum(1 for f in (Path(root) / "memory" / "rows").rglob("*.parquet"))
        if digest:
            Path(digest).write_text(json.dumps(digest_memory(memory), indent=1, sort_keys=True))
        out.put({"seconds": seconds, "cpu": cpu_seconds, "read": len(refreshed.read), "rows": rows,
                 "rss": peak_rss_bytes(), "stored": stored, "parquet_files": files})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="run under cProfile and print the top of it")
    parser.add_argument("--digest", help="write the stored rows' digest to this JSON file")
    args = parser.parse_args()
    import utl

    print(f"utl from {Path(utl.__file__).parent}")
    ctx = mp.get_context("spawn")
    for _ in range(args.repeat):
        out = ctx.Queue()
        proc = ctx.Process(target=run_one, args=(str(args.landing.resolve()), args.profile, args.digest, out))
        proc.start()
        result = out.get()
        proc.join()
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"refresh: {result['read']} files, {result['rows']:,} rows in {result['seconds']:.2f} s wall, "
              f"{result['cpu']:.2f} s CPU; peak RSS {result['rss'] / 2**20:,.0f} MB; "
              f"{result['parquet_files']} Parquet files, {result['stored'] / 2**20:,.1f} MB stored; "
              f"load average {load}", flush=True)


if __name__ == "__main__":
    main()
