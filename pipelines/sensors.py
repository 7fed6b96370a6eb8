"""Sensors: changed landing files launch the dates they affect; a failed run sends an alert.

``landing_sensor`` refreshes the landing memory each tick and compares every date already
materialized with what the database says it was written from (``utl.day_runs``): a date
whose inputs changed (a new, changed or removed file), and every date after it, is stale.
It launches the earliest stale date, one run per tick, in date order (each date starts from
the one before), never while another run of this landing is queued or in progress. A date
whose run failed wrote nothing, so it stays the earliest stale date and nothing after it is
launched: the run key is the date and its inputs' fingerprint, so the same inputs are
launched once; ops fix the input (a new fingerprint: the sensor launches it again) or rerun
the date from the UI, and the chain goes on.
"""

from pathlib import Path

import dagster as dg

from pipelines.io_manager import ParquetTablesIOManager
from pipelines.resources import LandingResource, PostgresResource
from utl.home import landing_home, landing_id
from utl.run import business_dates, dates_to_run
from utl.store.days import written_days

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


def build_sensors(job, landing: Path) -> list[dg.SensorDefinition]:
    tag = {"utl/landing": landing_id(landing)}

    @dg.sensor(name="landing_sensor", job=job, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.STOPPED)
    def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingResource, postgres: PostgresResource):
        memory = landing.memory
        refresh = memory.refresh()
        with postgres.connect(landing.folder) as conn:
            written = written_days(conn, landing.folder)  # this landing's, whatever else the instance ran
        first, last = memory.first_business_date(), max(written, default=None)
        if first is None or last is None or last < first:
            return dg.SkipReason("nothing materialized yet: the schedule or a backfill starts the chain")
        io = ParquetTablesIOManager(base_dir=str(landing_home(landing.folder) / "dagster"))
        todo = dates_to_run(business_dates(first, last), memory.fingerprint, written,
                            lambda d: io.has("day_state", d.isoformat()))
        if not todo:
            return dg.SkipReason(f"every date through {last} is up to date ({len(refresh.read)} files read now)")
        start = todo[0]
        if context.instance.get_runs(dg.RunsFilter(tags=tag, statuses=IN_FLIGHT), limit=1):
            return dg.SkipReason(f"a run of this landing is in progress; {start} waits")
        return dg.RunRequest(run_key=f"{start.isoformat()}:{memory.fingerprint(start)}",
                             partition_key=start.isoformat(), tags={**tag, "utl/reason": "landing changed"})

    @dg.run_failure_sensor(name="run_failure_alert", monitor_all_code_locations=False,
                           default_status=dg.DefaultSensorStatus.RUNNING)
    def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
        """Logs the failure; the alert email (report.md, "Alerts") is sent by utl.report."""
        context.log.error(f"run {context.dagster_run.run_id} of {context.dagster_run.tags.get('dagster/partition')} "
                          f"failed: {context.failure_event.message}")

    return [landing_sensor, run_failure_alert]
