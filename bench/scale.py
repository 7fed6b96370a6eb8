"""Scale past one machine, simulated here: 120 venues x 1 day as 120 Dagster partitions.

    uv run python bench/scale.py [--venues 120] [--fills-per-venue 25000] [--keep DIR]

docs/scale.md spreads ingest as one partition per venue-day. This runs exactly that shape
on this machine: a small Dagster job whose asset is partitioned by venue
(``StaticPartitionsDefinition``), each partition one run through Dagster's in-process
executor, each run calling the library's own ingest functions (``read_trades_file``,
``read_balances_file``, ``combine``, ``book_legs``) on its venue's files. A cluster runs
the same partitions at once, one per worker (dagster-k8s or dagster-celery), so what it
parallelizes is the per-partition figure printed here.

The venues' files are those of ``bench/eod.py``'s generator (:mod:`eod_landing`), generated
once for its 4 venue layouts (Binance, Kraken, Coinbase, Bybit); venue partition ``i``
reads the files of layout ``i mod 4``. ``--fills-per-venue`` keeps the run to minutes on 2
cores (``bench/eod.py --fills 10000000`` has 2.5 M fills per venue). A partition's time is
a fixed part (files, checks, the run) plus a part per fill, so the time at the bench's
volume is projected from two volumes: every partition at ``--fills-per-venue``, and one
partition per layout at ``--probe-factor`` times that; printed as a projection.
"""


import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from eod_landing import VENUES, generate  # noqa: E402

from utl.ingest import combine, read_balances_file, read_trades_file  # noqa: E402
from utl.landing import scan_landing  # noqa: E402
from utl.legs import book_legs  # noqa: E402
from utl.settings import load_settings  # noqa: E402
from utl.venues import all_formats  # noqa: E402

EOD_FILLS_PER_VENUE = 10_000_000 // len(VENUES)  # bench/eod.py's day: 10 M fills over 4 venues


def venue_job(landing: Path, venues: int) -> tuple[dg.JobDefinition, dg.StaticPartitionsDefinition]:
    """The job a cluster would run: one partition per venue-day, ingest only."""
    keys = [f"venue-{i:03d}" for i in range(venues)]
    partitions = dg.StaticPartitionsDefinition(keys)
    settings = load_settings(landing)
    files = scan_landing(landing, settings.pairs, settings.timezones)
    formats = all_formats()

    @dg.asset(partitions_def=partitions)
    def venue_day(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        layout = VENUES[keys.index(context.partition_key) % len(VENUES)].name
        started = time.perf_counter()
        read = [read_trades_file(s, formats, settings) for s in files.trades if s.venue == layout]
        read += [read_balances_file(day, s, formats, settings) for day, s in files.balances if s.venue == layout]
        ingested = combine(read, settings)
        legs = book_legs(ingested.fills, ingested.movements, ingested.ledger_accounts)
        seconds = time.perf_counter() - started
        return dg.MaterializeResult(metadata={
            "fills": ingested.fills.height, "legs": legs.height, "quarantined": ingested.quarantine.height,
            "ingest_seconds": seconds,
        })

    job = dg.define_asset_job("venue_days", selection=[venue_day])  # partitioned as its asset is
    return dg.Definitions(assets=[venue_day], jobs=[job]).resolve_job_def("venue_days"), partitions


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def run_partitions(landing: Path, venues: int, keys: list[str] | None = None) -> list[tuple[str, int, int, float, float]]:
    """(key, fills, legs, ingest seconds, whole run seconds) of each partition, one run each."""
    job, partitions = venue_job(landing, venues)
    instance = dg.DagsterInstance.ephemeral()
    figures = []
    for key in keys or partitions.get_partition_keys():
        started = time.perf_counter()
        result = job.execute_in_process(partition_key=key, instance=instance, run_config=QUIET)  # in-process executor
        run_seconds = time.perf_counter() - started
        assert result.success, f"partition {key} failed"
        [event] = result.get_asset_materialization_events()
        meta = event.materialization.metadata
        fills, quarantined = meta["fills"].value, meta["quarantined"].value
        assert fills > 0 and quarantined == 0, f"partition {key}: {fills} fills, {quarantined} quarantined"
        figures.append((key, fills, meta["legs"].value, meta["ingest_seconds"].value, run_seconds))
    return figures


def run(landing: Path, venues: int, probe: Path) -> None:
    run_partitions(landing, len(VENUES))  # warm-up: first use of each reader, not part of the figures
    wall_started = time.perf_counter()
    figures = run_partitions(landing, venues)
    wall = time.perf_counter() - wall_started
    probes = run_partitions(probe, len(VENUES))

    ingest = [f[3] for f in figures]
    runs = [f[4] for f in figures]
    fills = sum(f[1] for f in figures)
    rate = fills / sum(ingest)
    print(f"{len(figures)} venue partitions, {fills:,} fills, {sum(f[2] for f in figures):,} legs, "
          f"one day, run one after another in {wall:.1f} s")
    print(f"per partition, ingest (read + canonical + legs): median {statistics.median(ingest):.2f} s, "
          f"max {max(ingest):.2f} s; {rate:,.0f} fills/s")
    print(f"per partition, whole Dagster run (in-process executor): median {statistics.median(runs):.2f} s, "
          f"max {max(runs):.2f} s; run overhead median {statistics.median(r - i for r, i in zip(runs, ingest)):.2f} s")
    for key, n, _, seconds, _ in figures[: len(VENUES)]:
        print(f"  {key} ({VENUES[int(key[-3:]) % len(VENUES)].name} layout): {n:,} fills, ingest {seconds:.2f} s")
    # Per layout: fixed + per-fill seconds from the small and the probe volume, then the bench's volume.
    projected = []
    for layout_index, (_, big_n, _, big_ingest, big_run) in enumerate(probes):
        same_layout = figures[layout_index :: len(VENUES)]
        small_n = statistics.median(f[1] for f in same_layout)
        small_run = statistics.median(f[4] for f in same_layout)
        per_fill = (big_run - small_run) / (big_n - small_n)
        fixed = small_run - per_fill * small_n
        projected.append(fixed + per_fill * EOD_FILLS_PER_VENUE)
        layout = VENUES[layout_index].name
        print(f"  probe {layout} layout: {big_n:,} fills, ingest {big_ingest:.2f} s ({big_n / big_ingest:,.0f} fills/s);"
              f" fixed {fixed:.2f} s + {per_fill * 1e6:.1f} s per million fills")
    per_partition = statistics.mean(projected)
    print(f"projected at bench/eod.py's volume ({EOD_FILLS_PER_VENUE:,} fills per venue): about "
          f"{per_partition:.0f} s per partition (the figure a cluster parallelizes); {venues} partitions one "
          f"after another about {venues * per_partition / 60:.0f} min, on {venues} workers about "
          f"{per_partition:.0f} s plus the cluster's pod or worker start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, default=120)
    parser.add_argument("--fills-per-venue", type=int, default=25_000)
    parser.add_argument("--probe-factor", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="generate the venue files here and keep them")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="utl-scale-"))
    try:
        started = time.perf_counter()
        generate(folder / "landing", fills=args.fills_per_venue * len(VENUES))
        print(f"generated {len(VENUES)} venue layouts x {args.fills_per_venue:,} fills in "
              f"{time.perf_counter() - started:.1f} s (not part of the figures)")
        generate(folder / "probe" / "landing", fills=args.fills_per_venue * args.probe_factor * len(VENUES))
        run(folder / "landing", args.venues, folder / "probe" / "landing")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
