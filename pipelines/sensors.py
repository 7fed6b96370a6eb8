"""Sensors: changed landing files launch the dates they affect; a failed run sends an alert.

``landing_sensor`` refreshes the landing memory each tick. A new, changed or removed file
makes the dates it touches, and every later date already materialized, stale; the sensor
then launches them one at a time in date order (each date starts from the one before), one
run per tick, never while another run of this landing is queued or in progress, and never
past a date whose run failed: ops fix the input and rerun that date, and the chain goes on.
"""


import datetime as dt
import json
from pathlib import Path

import dagster as dg

from utl.home import landing_id
from utl.report import send_alert
from utl.report.settings import alert_recipients, smtp_from_env
from utl.settings import load_settings

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


def _last_materialized(instance: dg.DagsterInstance) -> dt.date | None:
    keys = instance.get_materialized_partitions(dg.AssetKey("eod_tables"))
    return max((dt.date.fromisoformat(k) for k in keys), default=None)


def failure_of(context: dg.RunFailureSensorContext) -> tuple[str, str]:
    """The failed step's asset and the first line of its error (the run's own message when no
    step failed, e.g. it could not start). Our assets' steps are named after them."""
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        text = (error.message if error else "") or event.message or "failed"
        first = next((line.strip() for line in text.splitlines() if line.strip()), "failed")
        return event.step_key or "the run", first.removeprefix("dagster._core.definitions.events.Failure: ")
    text = context.failure_event.message or "the run failed"
    return "the run", next((line.strip() for line in text.splitlines() if line.strip()), "the run failed")


def rerun_hint(asset: str, day: str, landing: Path) -> str:
    """How to rerun, in the UI's words."""
    return (f'In the Dagster UI: Assets > {asset} > Partitions, select the failed (red) partition {day} '
            f'and click "Materialize selected" (or "Launch backfill" for it and the dates after it, '
            f'which wait until it succeeds); or run `utl eod --landing {landing} --date {day}`.')


def build_sensors(job, landing: Path) -> list[dg.SensorDefinition]:
    tag = {"utl/landing": landing_id(landing)}

    @dg.sensor(name="landing_sensor", job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.STOPPED)
    def landing_sensor(context: dg.SensorEvaluationContext):
        from pipelines.resources import LandingResource

        memory = LandingResource(path=str(landing)).memory
        refresh = memory.refresh()
        cursor = json.loads(context.cursor) if context.cursor else {}
        pending = [dt.date.fromisoformat(d) for d in (cursor.get("next"),) if d]
        if refresh.stale_from is not None:
            pending.append(refresh.stale_from)
        if not pending:
            return dg.SkipReason("no new or changed landing files")
        start = min(pending)
        runs = context.instance.get_runs(dg.RunsFilter(tags=tag, statuses=IN_FLIGHT), limit=1)
        if runs:
            context.update_cursor(json.dumps({"next": start.isoformat()}))
            return dg.SkipReason(f"a run of this landing is in progress; {start} waits")
        failed = context.instance.get_runs(dg.RunsFilter(tags=tag), limit=1)
        if failed and failed[0].status == dg.DagsterRunStatus.FAILURE and \
                failed[0].tags.get("dagster/partition", "") < start.isoformat():
            context.update_cursor(json.dumps({"next": start.isoformat()}))
            return dg.SkipReason(f"{failed[0].tags.get('dagster/partition')} failed: rerun it first")
        last = _last_materialized(context.instance)
        following = start + dt.timedelta(days=1)
        more = last is not None and following <= last
        context.update_cursor(json.dumps({"next": following.isoformat() if more else None}))
        return dg.RunRequest(run_key=f"{start.isoformat()}:{context.cursor}", partition_key=start.isoformat(),
                             tags={**tag, "utl/reason": "landing changed"})

    @dg.run_failure_sensor(name="run_failure_alert", monitor_all_code_locations=False,
                           default_status=dg.DefaultSensorStatus.RUNNING)
    def run_failure_alert(context: dg.RunFailureSensorContext):
        """Emails the alert of report.md ("Alerts") once per failed run; a failure to send fails
        the tick (shown in the UI, retried on the next one)."""
        run = context.dagster_run
        day = run.tags.get("dagster/partition") or run.tags.get("dagster/asset_partition_range_start")
        if not day:
            context.log.warning(f"run {run.run_id} failed but names no business date: no alert")
            return dg.SkipReason(f"run {run.run_id} has no partition")
        asset, error = failure_of(context)
        rerun = rerun_hint(asset, day, landing)
        context.log.error(f"run {run.run_id} of {day} failed in {asset}: {error}")
        try:
            status = send_alert(smtp_from_env(), alert_recipients(load_settings(landing)),
                                dt.date.fromisoformat(day), asset, error, rerun)
        except Exception as exc:
            context.log.exception(f"the alert for the failed run {run.run_id} of {day} was not sent: {exc}")
            raise
        context.log.info(f"alert for {day} ({asset}): {status}")

    return [landing_sensor, run_failure_alert]
