"""Where Dagster keeps run history: PostgreSQL when ``UTL_DATABASE_URL`` is set, else SQLite.

``dagster_home/dagster.yaml`` names the three classes below as its run, event log and
schedule storage. A YAML file cannot branch on the environment, so each class decides when
Dagster builds it (``ConfigurableClassData.rehydrate`` imports the class, checks it is a
subclass of the storage kind, and returns whatever ``from_config_value`` returns):

- ``UTL_DATABASE_URL`` set: dagster-postgres's storage in schema ``dagster`` of that same
  database (created first), so the run history lives next to the ``utl`` tables;
- unset: Dagster's own SQLite storage under ``$DAGSTER_HOME/storage``.

The storage built keeps this class's ``inst_data``, so the instance reference Dagster hands to
the webserver, the daemon and every run worker rebuilds it through here again, in a process
that inherited the same environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from dagster._core.storage.event_log.base import EventLogStorage
from dagster._core.storage.runs.base import RunStorage
from dagster._core.storage.schedules.base import ScheduleStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

from utl.store import database_url

DEFAULT_SCHEMA = "dagster"


def sqlalchemy_url(url: str, schema: str) -> str:
    """``url`` (a libpq URL or ``key=value`` string) as a SQLAlchemy psycopg2 URL whose
    sessions search ``schema`` first. SQLAlchemy 2.1 takes ``postgresql://`` to mean psycopg 3,
    which dagster-postgres does not use; its driver is psycopg2."""
    info = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    user, password, dbname = info.pop("user", None), info.pop("password", None), info.pop("dbname", None)
    info["options"] = " ".join(filter(None, [info.get("options", ""), f"-csearch_path={schema}"]))
    # host and port stay in the query: a socket folder as host is not a URL's host part.
    return URL.create("postgresql+psycopg2", username=user, password=password, database=dbname,
                      query=info).render_as_string(hide_password=False)


def ensure_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True, application_name="utl") as conn:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def _postgres_url(schema: str) -> str | None:
    url = database_url()
    if url is None:
        return None
    ensure_schema(url, schema)
    return sqlalchemy_url(url, schema)


def sqlite_base() -> Path:
    """``$DAGSTER_HOME/storage``: the layout of Dagster's own ``DagsterSqliteStorage``."""
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home:
        raise dg.DagsterInvariantViolationError("DAGSTER_HOME is not set: no folder for the local run history")
    return Path(home).resolve() / "storage"


_CONFIG = {"schema": dg.Field(dg.StringSource, is_required=False, default_value=DEFAULT_SCHEMA)}


class _Chooser(ConfigurableClass):
    """A class Dagster rehydrates, never instantiated: ``from_config_value`` builds the real one."""

    @property
    def inst_data(self) -> ConfigurableClassData | None:  # pragma: no cover - never instantiated
        return None

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return _CONFIG


class UtlRunStorage(_Chooser, RunStorage):
    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> RunStorage:
        url = _postgres_url(config_value["schema"])
        if url is not None:
            from dagster_postgres import PostgresRunStorage

            return PostgresRunStorage(postgres_url=url, inst_data=inst_data)
        from dagster._core.storage.runs import SqliteRunStorage

        return SqliteRunStorage.from_local(os.path.join(sqlite_base(), "history", ""), inst_data=inst_data)


class UtlEventLogStorage(_Chooser, EventLogStorage):
    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> EventLogStorage:
        url = _postgres_url(config_value["schema"])
        if url is not None:
            from dagster_postgres import PostgresEventLogStorage

            return PostgresEventLogStorage(postgres_url=url, inst_data=inst_data)
        from dagster._core.storage.event_log import SqliteEventLogStorage

        return SqliteEventLogStorage(os.path.join(sqlite_base(), "history", "runs", ""), inst_data=inst_data)


class UtlScheduleStorage(_Chooser, ScheduleStorage):
    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict) -> ScheduleStorage:
        url = _postgres_url(config_value["schema"])
        if url is not None:
            from dagster_postgres import PostgresScheduleStorage

            return PostgresScheduleStorage(postgres_url=url, inst_data=inst_data)
        from dagster._core.storage.schedules import SqliteScheduleStorage

        return SqliteScheduleStorage.from_local(os.path.join(sqlite_base(), "schedules"), inst_data=inst_data)
