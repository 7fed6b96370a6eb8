"""``utl eod`` through the assets, in-process: the dates that are missing, failed or stale.

Each date is one run of ``eod_job`` for its partition, in date order, on the instance the UI
shows, so every ``utl eod`` run appears in the UI's run history. The first date that fails
stops the run; its message names the date, the asset and the cause.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg

from pipelines.definitions import EOD_JOB, build_definitions
from pipelines.instance import dagster_instance
from pipelines.io_manager import ParquetTablesIOManager
from pipelines.resources import EMBEDDED_URL_ENV
from utl.home import landing_home, landing_id
from utl.memory import LandingMemory
from utl.run import (
    RunError, RunSummary, business_dates, dates_to_run, finish_run, mark_interrupted, record_counts, refuse_unknown_files,
    run_counts, start_run,
)
from utl.settings import load_settings
from utl.store import Database, migrate, run_lock
from utl.store.days import remove_days_before, written_days

Progress = Callable[[str], None]
# The terminal gets our one line per failure (_failure); the UI keeps the full event log.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The first failed step's asset and error, one line."""
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            # An exception in an asset body comes wrapped ("Error occurred while executing
            # op ..."): its cause is what the user needs to read.
            while error is not None and error.cause is not None and "DagsterExecutionStepExecutionError" in error.message:
                error = error.cause
            message = (error.message if error else "failed").strip().splitlines()[0]
            message = message.removeprefix("dagster._core.definitions.events.Failure: ")
            return message if message.startswith(event.step_key) or ": " + event.step_key in message[:40] \
                else f"{event.step_key}: {message}"
    return "the run failed"


def _value(metadata: dict, key: str) -> object:
    return metadata[key].value if key in metadata else 0


def run_eod(landing: Path, through: dt.date, storage: Path, database: Database,
            progress: Progress = lambda _: None) -> RunSummary:
    landing = landing.resolve()
    started = time.perf_counter()
    with database.connect() as conn:
        migrate(conn)
        with run_lock(conn):
            for dead in mark_interrupted(conn):
                progress(f"run {dead} was interrupted (its process ended while it ran); marked interrupted")
            run_id = start_run(conn, landing, through)
            try:
                if not landing.is_dir():
                    raise RunError(f"no landing folder at {landing}")
                settings = load_settings(landing)
                summary = _run(conn, run_id, landing, through, storage, database, settings, progress)
            except KeyboardInterrupt:
                finish_run(conn, run_id, "interrupted", "interrupted by the user (Ctrl-C)")
                raise
            except BaseException as exc:
                finish_run(conn, run_id, "failed", str(exc) or type(exc).__name__)
                raise
            finish_run(conn, run_id, "completed",
                       f"{len(summary.ran)} of {len(summary.dates)} dates run, {summary.breaks} breaks open")
    progress(f"done: run {run_id}, {len(summary.ran)} dates run through {through.isoformat()} in "
             f"{time.perf_counter() - started:.2f} s")
    return summary


def _run(conn, run_id: int, landing: Path, through: dt.date, storage: Path, database: Database, settings,
         progress: Progress) -> RunSummary:
    started = time.perf_counter()
    memory = LandingMemory(landing, landing_home(landing) / "memory", settings)
    refresh = memory.refresh()
    files = memory.catalog
    progress(f"ingest: {files.height} files ({len(refresh.read)} read now, {len(refresh.removed)} removed), "
             f"{int(files['rows'].sum() or 0)} rows, {memory.undated_quarantine().height} quarantined without a date "
             f"({time.perf_counter() - started:.2f} s)")
    refuse_unknown_files(memory.unknown_files(), settings.unknown_files)
    first = memory.first_business_date()
    if first is None:
        raise RunError("no balance snapshot in the landing folder: no account has an opening state")
    dates = business_dates(first, through)
    removed = remove_days_before(conn, landing, first)
    if removed:
        progress(f"removed {len(removed)} dates of this landing before its first business date {first.isoformat()} "
                 f"(no run covers them now): {removed[0].isoformat()}..{removed[-1].isoformat()}")
    defs = build_definitions(landing)
    io = ParquetTablesIOManager(base_dir=str(landing_home(landing) / "dagster"))
    todo = dates_to_run(dates, memory.fingerprint, written_days(conn, landing),
                        lambda d: io.has("day_state", d.isoformat()))
    if not todo:
        progress(f"every date through {through.isoformat()} is up to date: nothing to run")
    instance = dagster_instance()
    job = defs.resolve_job_def(EOD_JOB)
    tags = {"utl/run_id": str(run_id), "utl/landing": landing_id(landing), "utl/command": "utl eod"}
    legs = rows = 0
    writing = 0.0
    with _environment({EMBEDDED_URL_ENV: database.url, "UTL_STORAGE": str(storage)}):
        for day in todo:
            began = time.perf_counter()
            # The run's events go to the instance (the UI shows them); the terminal gets our lines.
            result = job.execute_in_process(partition_key=day.isoformat(), instance=instance, tags=tags,
                                            raise_on_error=False, run_config=QUIET)
            if not result.success:
                failure = _failure(result)
                raise RunError(failure if failure.startswith(day.isoformat()) else f"{day.isoformat()}: {failure}")
            materialized = [e.event_specific_data.materialization for e in result.get_asset_materialization_events()]
            meta = {m.asset_key.to_user_string(): m.metadata for m in materialized if m is not None}
            state, tables = meta.get("day_state", {}), meta.get("eod_tables", {})

            progress(f"{day.isoformat()}: {_value(state, 'legs')} legs, {_value(state, 'positions')} positions, "
                     f"{_value(state, 'breaks')} breaks, {_value(state, 'cleared')} cleared, "
                     f"{_value(tables, 'rows_written')} rows written ({time.perf_counter() - began:.2f} s)")
            legs += int(_value(state, "legs"))
            rows += int(_value(tables, "rows_written"))
            writing += float(_value(tables, "seconds"))
    if todo:
        progress(f"ledger: {legs} legs booked over {len(todo)} dates ({time.perf_counter() - started:.2f} s)")
        progress(f"postgres: {rows} rows written, one transaction per date ({writing:.2f} s, "
                 f"{rows / writing if writing else 0:,.0f} rows/s)")
    breaks, quarantined = run_counts(conn, landing, through)
    summary = RunSummary(run_id, dates, todo, breaks, quarantined, storage)
    record_counts(conn, run_id, summary, legs)
    return summary
