"""The code location: ``uv run dagster dev`` in the repository root loads ``defs``.

Everything is built for one landing folder (``UTL_LANDING``): its business dates are the
partitions, its data folder holds the asset storage, so two landing folders never mix.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from pipelines.assets import build_assets
from pipelines.io_manager import ParquetTablesIOManager
from pipelines.partitions import business_dates
from pipelines.reports import build_report_sensors
from pipelines.resources import LandingResource, PostgresResource, landing_from_env
from pipelines.schedules import build_schedule
from pipelines.sensors import build_sensors
from utl.home import landing_home, landing_id
from utl.settings import load_settings

warnings.filterwarnings("ignore", category=dg.BetaWarning)

EOD_JOB = "eod_job"


def build_definitions(landing: Path) -> dg.Definitions:
    landing = landing.resolve()
    settings = load_settings(landing) if landing.is_dir() else None
    from utl.settings import Settings

    settings = settings or Settings()
    partitions = business_dates(landing, settings)
    assets = build_assets(partitions)
    job = dg.define_asset_job(EOD_JOB, selection=dg.AssetSelection.assets(*assets), partitions_def=partitions,
                              tags={"utl/landing": landing_id(landing)})
    return dg.Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_schedule(job, settings)],
        sensors=[*build_sensors(job, landing), *build_report_sensors(job, [k for a in assets for k in a.keys])],
        resources={
            "landing": LandingResource(path=str(landing)),
            "postgres": PostgresResource(),
            "io_manager": ParquetTablesIOManager(base_dir=str(landing_home(landing) / "dagster")),
        },
    )


defs = build_definitions(landing_from_env())
