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

import datetime as dt
from pathlib import Path

import dagster as dg

from pipelines.io_manager import ParquetTablesIOManager
from pipelines.resources import LandingResource, PostgresResource
from utl.home import landing_home, landing_id
from utl.report import send_alert
from utl.report.settings import alert_recipients, smtp_from_env
from utl.run import business_dates, dates_to_run
from utl.settings import load_settings
from utl.store.days import written_days

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


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
        # Runs launched from the UI or a backfill carry no landing tag: any run in flight waits.
        if context.instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT), limit=1):
            return dg.SkipReason(f"a run is in progress; {start} waits")
        return dg.RunRequest(run_key=f"{start.isoformat()}:{memory.fingerprint(start)}",
                             partition_key=start.isoformat(), tags={**tag, "utl/reason": "landing changed"})

    @dg.run_failure_sensor(name="run_failure_alert", monitor_all_code_locations=False,
                           default_status=dg.DefaultSensorStatus.RUNNING)
    def run_failure_alert(context: dg.RunFailureSensorContext):
        """Emails the alert of report.md ("Alerts") once per failed run; a failure to send fails
        the tick (shown in the UI, retried on the next one)."""
        run = context.dagster_run
        if run.tags.get("utl/command") == "utl eod":
            return dg.SkipReason("utl eod sends its own alert")
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
