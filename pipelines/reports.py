"""The report of a scheduled or UI run, sent once its dates are done (report.md: one report per
completed run, for the last business date it brought up to date; a backfill of ten dates sends
one, for its last date).

- ``break_report`` (a run-status sensor) reports a run that succeeded on its own: the schedule's,
  the landing sensor's, or one partition materialized from the UI.
- ``backfill_report`` reports a backfill once Dagster marks it succeeded as a whole, for its last
  date. A backfill's runs end one by one and the backfill daemon marks the backfill done later,
  so no single run's success can tell that the backfill is over: this sensor watches backfills
  instead. A backfill with a failed date sends no report, as ``utl eod`` sends none when a date
  fails: the failed run's alert says it, and the rerun's backfill sends the report.

``utl eod`` sends its own report (and exits 3 when it cannot), so its runs are skipped here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BulkActionsFilter, BulkActionStatus, PartitionBackfill

from pipelines.resources import LandingResource, PostgresResource
from utl.report import send_report
from utl.report.settings import report_recipients, smtp_from_env

BACKFILL_TAG = "dagster/backfill"


def run_date(run: dg.DagsterRun) -> dt.date | None:
    """The last business date a run brought up to date: its partition, or its range's end."""
    day = run.tags.get("dagster/partition") or run.tags.get("dagster/asset_partition_range_end")
    return dt.date.fromisoformat(day) if day else None


def backfill_date(instance: dg.DagsterInstance, backfill_id: str) -> dt.date | None:
    """The last date of a backfill's successful runs."""
    done = instance.get_runs(dg.RunsFilter(tags={BACKFILL_TAG: backfill_id},
                                           statuses=[dg.DagsterRunStatus.SUCCESS]))
    days = [d for d in (run_date(r) for r in done) if d is not None]
    return max(days, default=None)


@dataclass(frozen=True, order=True)
class BackfillMark:
    """Where ``backfill_report`` stands: the end time and id of the last backfill it handled."""

    ended: float
    backfill_id: str = ""

    @classmethod
    def load(cls, cursor: str | None) -> BackfillMark | None:
        if not cursor:
            return None
        data = json.loads(cursor)
        return cls(float(data["ended"]), str(data["backfill_id"]))

    def dump(self) -> str:
        return json.dumps({"ended": self.ended, "backfill_id": self.backfill_id})


def mark_of(backfill: PartitionBackfill) -> BackfillMark:
    return BackfillMark(backfill.backfill_end_timestamp or backfill.backfill_timestamp, backfill.backfill_id)


def ours(backfill: PartitionBackfill, job_name: str, asset_keys: frozenset[dg.AssetKey]) -> bool:
    """A backfill of this code location: of its job, or of its assets (asset keys are unique
    within an instance's workspace)."""
    if backfill.is_asset_backfill:
        return bool(asset_keys.intersection(backfill.asset_selection or ()))
    return backfill.job_name == job_name


def next_backfill(done: Iterable[PartitionBackfill], after: BackfillMark, job_name: str,
                  asset_keys: frozenset[dg.AssetKey]) -> PartitionBackfill | None:
    """The first backfill of ours to end after ``after``, oldest first."""
    later = [b for b in done if ours(b, job_name, asset_keys) and mark_of(b) > after]
    return min(later, key=mark_of, default=None)


def _send(landing: LandingResource, postgres: PostgresResource, day: dt.date, log) -> str:
    with postgres.connect(Path(landing.path)) as conn:
        outcome = send_report(conn, day, landing.settings, smtp_from_env(), report_recipients(landing.settings),
                              landing=landing.folder)
    log.info(outcome.line)
    if outcome.status == "failed":  # shown as a failed tick in the UI, never silent
        raise RuntimeError(outcome.line)
    return outcome.line


def build_report_sensors(job, asset_keys: Iterable[dg.AssetKey]) -> list[dg.SensorDefinition]:
    keys = frozenset(asset_keys)

    # No monitored_jobs: every job of this code location, the UI's asset runs included.
    @dg.run_status_sensor(name="break_report", run_status=dg.DagsterRunStatus.SUCCESS,
                          default_status=dg.DefaultSensorStatus.RUNNING)
    def break_report(context: dg.RunStatusSensorContext, landing: LandingResource, postgres: PostgresResource):
        run = context.dagster_run
        if run.tags.get("utl/command") == "utl eod":
            return dg.SkipReason("utl eod sends its own report")
        if BACKFILL_TAG in run.tags:
            return dg.SkipReason(f"backfill_report sends backfill {run.tags[BACKFILL_TAG]}'s report once it completes")
        day = run_date(run)
        if day is None:
            return dg.SkipReason(f"run {run.run_id} names no business date")
        return dg.SkipReason(_send(landing, postgres, day, context.log))

    @dg.sensor(name="backfill_report", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
    def backfill_report(context: dg.SensorEvaluationContext, landing: LandingResource, postgres: PostgresResource):
        after = BackfillMark.load(context.cursor)
        if after is None:
            # As Dagster's run-status sensors do: what ended before the sensor first ran is history.
            context.update_cursor(BackfillMark(time.time()).dump())
            return dg.SkipReason("watching backfills that end from now on")
        done = context.instance.get_backfills(
            filters=BulkActionsFilter(statuses=[BulkActionStatus.COMPLETED_SUCCESS]), limit=100)
        backfill = next_backfill(done, after, job.name, keys)
        if backfill is None:
            return dg.SkipReason("no backfill has completed since the last report")
        day = backfill_date(context.instance, backfill.backfill_id)
        if day is None:
            line = f"backfill {backfill.backfill_id} ran no business date: no report"
        else:
            line = _send(landing, postgres, day, context.log)  # raises before the cursor moves: tried again
        # One backfill a tick: the cursor moves only past what was sent.
        context.update_cursor(mark_of(backfill).dump())
        return dg.SkipReason(f"backfill {backfill.backfill_id}: {line}")

    return [break_report, backfill_report]
