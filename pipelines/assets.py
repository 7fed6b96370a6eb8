"""The end-of-day chain as daily-partitioned assets; each body is a call into ``utl``.

    landing_rows -> ledger_legs -> day_state (and the day before's day_state) -> eod_tables

- ``landing_rows``: the landing read into UTL's memory (each file parsed once), and the date's
  plan: its accounts in shards and the stored files its rows come from.
- ``ledger_legs``: the date's rows read from those a shard at a time, booked into legs (one
  source per account), and the date's refused rows and fingerprint.
- ``day_state``: :func:`utl.day.step` from the day before's state: positions, lots, PnL and
  explain, exposure, breaks; it depends on its own previous partition, so dates run in order.
- ``eod_tables``: the date's rows in PostgreSQL (one transaction) and its Parquet outputs.
"""


import datetime as dt
from typing import Optional
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import polars as pl

from pipelines.io_manager import PartsWriter, Tables, spill_folder
from pipelines.partitions import previous_day
from pipelines.resources import LandingResource, PostgresResource
from utl import checks
from utl.booking import book_shards, book_stored_shards
from utl.day import SHARED_INPUTS, DayOutputs, DayState
from utl.ingest import why_no_mark
from utl.marks import MissingMark
from utl.memory import DayDigest
from utl.shards import PLAN, booked_accounts, shard_rows, shard_threads
from utl.stored_day import book_stored_day
from utl.run import RunError, refuse_unknown_files
from utl.schemas import LOTS_STATE, LOTS_TABLE
from utl.storage import staged, write_partition
from utl.store.days import remove_days_before, write_checks, write_day, write_undated_quarantine
from utl.stream.eod_check import check_stream

STORAGE_TABLES = ("positions", "lots", "pnl", "pnl_explain", "exposure_asset", "exposure_venue", "exposure_book",
                  "exceptions", "derivative_positions")
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN

CHECKS = {
    "legs_sum_to_positions": ("day_state", ERROR, "Each position is the day before's plus the day's legs."),
    "explain_ties": ("day_state", ERROR, "Every book's PnL explain ties: nothing unexplained."),
    "marks_cover_positions": ("day_state", ERROR, "Every non-zero position has the day's mark."),
    "no_breaks": ("day_state", WARN, "Warns when the date has breaks."),
    "no_quarantine": ("ledger_legs", WARN, "Warns when rows of the date were quarantined."),
    "stream_agrees": ("eod_tables", WARN, "The stream's positions, open lots and realized PnL equal the EOD run's."),
}


def _specs(asset: str) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(name, asset=asset, description=text, blocking=severity == ERROR)
            for name, (owner, severity, text) in CHECKS.items() if owner == asset]


def _results(context: dg.AssetExecutionContext, landing: LandingResource, postgres: PostgresResource,
             outcomes: dict[str, checks.Check]) -> list[dg.AssetCheckResult]:
    """The checks as Dagster shows them, and recorded in utl.check_results for the report."""
    with postgres.connect(landing.folder) as conn:
        write_checks(conn, landing.folder, _day(context), [
            (name, CHECKS[name][0], CHECKS[name][1].value.lower(), o.passed, o.description)
            for name, o in outcomes.items()
        ])
    return [dg.AssetCheckResult(check_name=name, passed=o.passed, severity=CHECKS[name][1],
                                description=o.description, metadata=o.metadata) for name, o in outcomes.items()]


def _day(context: dg.AssetExecutionContext) -> dt.date:
    return dt.date.fromisoformat(context.partition_key)


def _split(tables: Tables, prefix: str, but: str | None = None) -> dict[str, pl.DataFrame]:
    return tables.with_prefix(prefix, but)


def build_assets(partitions: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    # code_version 2: the rows carry the derivative frames (a partition stored before lacks them);
    # 3: and the accounts whose ledger states their derivative trades; 4: in shards of accounts;
    # 5: the plan and the date's sources, the rows read where they are booked (ledger_legs).
    @dg.asset(partitions_def=partitions, group_name="eod", code_version="5")
    def landing_rows(context: dg.AssetExecutionContext, landing: LandingResource) -> dg.Output:
        """The landing read into UTL's memory (new and changed files parsed now), and the
        date's plan: its accounts in shards (``shards``) and the stored files its rows come
        from (``sources``: file, content key). ``ledger_legs`` reads the rows a shard at a
        time from these, so a date's rows are read once and never copied."""
        day = _day(context)
        memory = landing.memory
        refresh = memory.refresh()
        try:
            refuse_unknown_files(memory.unknown_files(), landing.settings.unknown_files)
        except RunError as exc:
            raise dg.Failure(f"{day}: landing_rows: {exc}") from exc
        first = memory.first_business_date()
        if first is None:
            raise dg.Failure(f"{day}: landing_rows: no balance snapshot in {landing.folder}: no account has an "
                             f"opening state")
        plan = memory.day_plan(day, shard_rows())
        sources = memory.day_sources(day)
        return dg.Output({"shards": plan, "sources": sources}, metadata={
            "files": sources.height, "shards": max(1, plan["shard"].n_unique()),
            "files_read_now": len(refresh.read), "first_business_date": first.isoformat(),
        })

    # code_version 2: the leg refs carry fee_asset_assumed (a partition stored before lacks it);
    # 3: and the accounts whose ledger states their derivative trades; 4: in shards of accounts;
    # 5: the rows read here from landing_rows' sources, with the date's fingerprint.
    @dg.asset(partitions_def=partitions, group_name="eod", code_version="5", check_specs=_specs("ledger_legs"))
    def ledger_legs(context: dg.AssetExecutionContext, landing: LandingResource, postgres: PostgresResource,
                    landing_rows: Tables) -> Iterator:
        """The date's legs, one source per account (eod.md, "Opening state and booking"),
        booked a shard of accounts at a time (landing_rows' plan) from the rows of its files."""
        day = _day(context)
        memory = landing.memory
        # landing_rows stored before shards has no plan: its one part is shard 0, whole.
        plan = landing_rows["shards"] if "shards" in landing_rows else PLAN.to_frame()
        if "sources" in landing_rows:
            # The rows are read now: they must be the ones landing_rows planned (a landing file
            # changed and read since would give other rows).
            if not memory.day_sources(day).equals(landing_rows["sources"]):
                raise dg.Failure(f"{day}: ledger_legs: the landing changed after landing_rows of {day} was "
                                 f"materialized: materialize landing_rows of {day} again, then what follows it")
            shards = book_shards(memory, day, plan, shard_threads())
        else:  # stored by an earlier version, rows and all: booked as they were stored
            shards = book_stored_shards(landing_rows, day, plan)
        writer, legs, quarantine, booked = PartsWriter(spill_folder(landing.home / "dagster")), 0, [], []
        digest, counts = DayDigest(), Counter()
        for shard in shards:
            digest.extend(shard.digest)
            counts.update(shard.counts)
            tables = shard.inputs.tables()
            # The plan day_state reads by: the accounts this shard's stored rows are of, with
            # their legs (so no stored row is of an account it does not know).
            booked.append(booked_accounts({n: f for n, f in tables.items() if n not in SHARED_INPUTS}, shard.shard))
            if shard.shard:  # the shared tables are stored once, with shard 0
                tables.update({name: tables[name].clear() for name in SHARED_INPUTS})
            writer.add({**tables, "quarantine": shard.refused})
            legs += shard.inputs.legs.height
            quarantine.append(shard.refused)
            del shard, tables
        refused = pl.concat(quarantine).sort("file", "row", nulls_last=False)
        fingerprint = (memory.fingerprint(day, digest) if "sources" in landing_rows
                       else landing_rows["fingerprint"]["fingerprint"][0])
        yield dg.Output({**writer.output(), "shards": pl.concat(booked),
                         "fingerprint": pl.DataFrame({"fingerprint": [fingerprint]})},
                        metadata={**counts, "legs": legs, "quarantined": refused.height, "shards": len(booked)})
        yield from _results(context, landing, postgres, {"no_quarantine": checks.no_quarantine(refused)})

    @dg.asset(
        # 2: fee_asset_assumed; 3: derivative state (positions, references, accounts), breaks with a subject;
        # 4: utl.pnl lines per (book, instrument); 5: in shards of accounts
        partitions_def=partitions, group_name="eod", code_version="5", check_specs=_specs("day_state"),
        ins={"previous": dg.AssetIn("day_state", partition_mapping=previous_day(),
                                    dagster_type=Optional[Tables])},
    )
    def day_state(context: dg.AssetExecutionContext, landing: LandingResource, postgres: PostgresResource,
                  ledger_legs: Tables, previous: Optional[Tables]) -> Iterator:
        """The date from the day before's state: positions, lots, PnL, exposure, breaks;
        booked a shard of accounts at a time (accounts a transfer joins share one)."""
        day = _day(context)
        started = time.perf_counter()
        settings = landing.settings
        yesterday = day - dt.timedelta(days=1)
        # The day before's lots (millions on a big day) are read a shard at a time, not held.
        before = (DayState.from_tables(yesterday, _split(previous, "state.", but="state.lots"))
                  if previous is not None else DayState.empty(yesterday))
        carried_lots = previous.scan("state.lots") if previous is not None and "state.lots" in previous else None
        lots, lots_held = PartsWriter(spill_folder(landing.home / "dagster")), [0]

        def store_lots(shard_lots: pl.DataFrame) -> None:  # a shard's open lots, stored as they come
            lots_held[0] += shard_lots.height
            # Stored once: the date's lots output is these rows of this date (eod_tables).
            lots.add({"state.lots": shard_lots})

        try:
            booked = book_stored_day(day, before, ledger_legs, settings, shard_rows(), store_lots, carried_lots)
        except MissingMark as exc:  # names the asset and the marks file, and why it has no price
            detail = why_no_mark(landing.folder, exc.asset, exc.day, landing.settings.aliases)
            raise dg.Failure(description=f"{day}: day_state: {exc.because(detail) if detail else exc}") from exc
        except ValueError as exc:
            raise dg.Failure(description=f"{day}: day_state: {exc}") from exc
        after, outputs = booked.after, booked.outputs
        tables = ({f"state.{n}": f for n, f in after.tables().items()}
                  | {f"out.{n}": f for n, f in outputs.tables().items() if n != "lots"}
                  | lots.output()  # the lots, a part per shard, in place of the empty frames
                  | {"legs": pl.DataFrame({"legs": [outputs.legs]})})
        yield dg.Output(tables, metadata={
            "legs": outputs.legs, "positions": outputs.positions.height, "breaks": outputs.breaks.height,
            "open_lots": lots_held[0],
            "exceptions": outputs.exceptions.height, "shards": booked.shards,
            "cleared": outputs.cleared.height, "seconds": round(time.perf_counter() - started, 3),
        })
        yield from _results(context, landing, postgres, {
            "legs_sum_to_positions": checks.legs_sum_check(booked.differences),
            "explain_ties": checks.explain_ties(outputs.pnl_explain),
            "marks_cover_positions": checks.marks_cover_positions(outputs.positions),
            "no_breaks": checks.no_breaks(outputs.breaks),
        })

    @dg.asset(partitions_def=partitions, group_name="eod", code_version="1", check_specs=_specs("eod_tables"))
    def eod_tables(context: dg.AssetExecutionContext, landing: LandingResource, postgres: PostgresResource,
                   landing_rows: Tables, ledger_legs: Tables, day_state: Tables) -> Iterator:
        """The date's rows in PostgreSQL, in one transaction, and its Parquet outputs."""
        day = _day(context)
        started = time.perf_counter()
        # The lots output is the date's carried lots (a partition stored before holds both).
        outputs = DayOutputs.from_tables(day, {**_split(day_state, "out.", but="out.lots"), "lots": LOTS_TABLE.to_frame()},
                                         legs=day_state["legs"]["legs"][0])
        run_id = context.run.tags.get("utl/run_id")
        # Parquet is staged and moved in only after PostgreSQL committed: a failed date
        # leaves neither half of its outputs.
        with staged(landing.storage, day) as staging, ThreadPoolExecutor(1, thread_name_prefix="utl-lots") as pool:
            # The open lots (millions) are streamed to their file while the rest is written,
            # and waited for before the date commits.
            lots = pool.submit(write_partition, staging, "lots", day, day_state.scan("state.lots").cast(LOTS_STATE))
            for name in STORAGE_TABLES:
                if name != "lots":
                    write_partition(staging, name, day, getattr(outputs, name))
            with postgres.connect(landing.folder) as conn:
                with conn.transaction():
                    # The fingerprint of the rows booked (stored with landing_rows by an earlier version).
                    fingerprint = (ledger_legs if "fingerprint" in ledger_legs else landing_rows)["fingerprint"]
                    written = write_day(conn, landing.folder, outputs, ledger_legs["quarantine"],
                                        fingerprint["fingerprint"][0],
                                        run_id=int(run_id) if run_id else None, dagster_run=context.run.run_id)
                    written += write_undated_quarantine(conn, landing.folder, landing.memory.undated_quarantine())
                    first = landing.memory.first_business_date()
                    if first is not None:  # a UI or sensor run forgets uncovered dates as utl eod does
                        remove_days_before(conn, landing.folder, first)
                    lots.result()  # a lots file that failed fails the date: neither half lands
        seconds = time.perf_counter() - started
        yield dg.MaterializeResult(metadata={"rows_written": written, "seconds": round(seconds, 3),
                                             "storage": str(landing.storage)})
        with postgres.connect(landing.folder) as conn:
            agrees = check_stream(conn, landing.storage, day, landing.settings, ledger_legs["ledger_accounts"],
                                  landing.folder)
        yield from _results(context, landing, postgres, {"stream_agrees": agrees})

    return [landing_rows, ledger_legs, day_state, eod_tables]
