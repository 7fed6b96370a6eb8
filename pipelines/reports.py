"""``break_report``: the report of a scheduled or UI run, sent once its dates are done.

report.md: one report per completed run, for the last business date it brought up to date;
a backfill of ten dates sends one, for its last date. Runs of a backfill are one per date,
so the report waits until none of the backfill's runs is still queued or running. ``utl
eod`` sends its own report (and exits 3 when it cannot), so its runs are skipped here.
"""

import datetime as dt
from pathlib import Path

import dagster as dg

from pipelines.resources import LandingResource, PostgresResource
from utl.report import send_report
from utl.report.settings import report_recipients, smtp_from_env

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED]


def report_date(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dt.date | None:
    """The date to report for a run that succeeded, or None while its backfill goes on."""
    backfill = run.tags.get("dagster/backfill")
    if backfill is None:
        partition = run.tags.get("dagster/partition")
        return dt.date.fromisoformat(partition) if partition else None
    tags = {"dagster/backfill": backfill}
    if instance.get_runs(dg.RunsFilter(tags=tags, statuses=IN_FLIGHT), limit=1):
        return None
    done = instance.get_runs(dg.RunsFilter(tags=tags, statuses=[dg.DagsterRunStatus.SUCCESS]))
    days = [d.tags["dagster/partition"] for d in done if "dagster/partition" in d.tags]
    return dt.date.fromisoformat(max(days)) if days else None


def build_report_sensor(job) -> dg.SensorDefinition:
    @dg.run_status_sensor(name="break_report", run_status=dg.DagsterRunStatus.SUCCESS, monitored_jobs=[job],
                          default_status=dg.DefaultSensorStatus.RUNNING)
    def break_report(context: dg.RunStatusSensorContext, landing: LandingResource, postgres: PostgresResource):
        run = context.dagster_run
        if run.tags.get("utl/command") == "utl eod":
            return dg.SkipReason("utl eod sends its own report")
        day = report_date(context.instance, run)
        if day is None:
            return dg.SkipReason("the backfill still has dates to run")
        with postgres.connect(Path(landing.path)) as conn:
            outcome = send_report(conn, day, landing.settings, smtp_from_env(), report_recipients(landing.settings),
                                  landing=landing.folder)
        context.log.info(outcome.line)
        if outcome.status == "failed":  # shown as a failed tick in the UI, never silent
            raise RuntimeError(outcome.line)
        return dg.SkipReason(outcome.line)

    return break_report
