"""The Dagster instance ``utl`` commands use: ``DAGSTER_HOME``, default ``dagster_home/``.

Runs started by ``utl eod`` go to the same instance as ``utl ui`` and ``dagster dev``, so
they appear in the UI's run history with their partition. Outside a checkout (an installed
``utl``) the default is ``<UTL_HOME>/dagster_home``.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from utl.home import utl_home

REPOSITORY_HOME = Path(__file__).resolve().parents[1] / "dagster_home"


def dagster_home() -> Path:
    configured = os.environ.get("DAGSTER_HOME", "").strip()
    if configured:
        return Path(configured).resolve()
    if (REPOSITORY_HOME / "dagster.yaml").exists() and os.access(REPOSITORY_HOME, os.W_OK):
        return REPOSITORY_HOME
    return utl_home() / "dagster_home"


def dagster_instance() -> dg.DagsterInstance:
    home = dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():  # Dagster's defaults (local storage under the folder), said so
        config.write_text("# Dagster's local defaults: run and event history under this folder.\n"
                          "telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)  # the in-process run and its children use the same
    return dg.DagsterInstance.get()
