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

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


def _last_materialized(instance: dg.DagsterInstance) -> dt.date | None:
    keys = instance.get_materialized_partitions(dg.AssetKey("eod_tables"))
    return max((dt.date.fromisoformat(k) for k in keys), default=None)


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
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        """Logs the failure; the alert email (report.md, "Alerts") is sent by utl.report."""
        context.log.error(f"run {context.dagster_run.run_id} of {context.dagster_run.tags.get('dagster/partition')} "
                          f"failed: {context.failure_event.message}")

    return [landing_sensor, run_failure_alert]
