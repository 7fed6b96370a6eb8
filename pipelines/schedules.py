"""``eod_schedule``: every day at ``[schedule] cron`` (UTC), the previous business date."""


import datetime as dt

import dagster as dg

from utl.settings import Settings


def build_schedule(job, settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(name="eod_schedule", cron_schedule=settings.schedule_cron, job=job, execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.RUNNING)
    def eod_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        day = context.scheduled_execution_time.astimezone(dt.timezone.utc).date() - dt.timedelta(days=1)
        return dg.RunRequest(run_key=day.isoformat(), partition_key=day.isoformat())

    return eod_schedule
