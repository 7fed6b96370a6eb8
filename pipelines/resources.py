"""Resources: the landing folder and PostgreSQL, from the environment (orchestration.md).

``UTL_LANDING`` names the landing folder (default ``data_samples/landing``). PostgreSQL is
the database the command running the assets holds open (``utl eod`` and ``utl ui`` pass its
URL in ``UTL_EMBEDDED_URL``: the embedded server they keep running, or ``UTL_DATABASE_URL``);
else ``UTL_DATABASE_URL``; else an embedded server started for the block that needs it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import dagster as dg
import psycopg

from utl.home import landing_home
from utl.memory import LandingMemory
from utl.settings import Settings, load_settings
from utl.store import connect, migrate, open_database

LANDING_ENV = "UTL_LANDING"
DEFAULT_LANDING = "data_samples/landing"
EMBEDDED_URL_ENV = "UTL_EMBEDDED_URL"


def landing_from_env() -> Path:
    return Path(os.environ.get(LANDING_ENV, "").strip() or DEFAULT_LANDING).expanduser().resolve()


class LandingResource(dg.ConfigurableResource):
    """The landing folder the assets read, and UTL's memory of it."""

    path: str

    @property
    def folder(self) -> Path:
        return Path(self.path)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.folder)

    @property
    def home(self) -> Path:
        """UTL's data folder for this landing: memory, asset storage, Parquet outputs."""
        return landing_home(self.folder)

    @cached_property
    def memory(self) -> LandingMemory:
        return LandingMemory(self.folder, self.home / "memory", self.settings)

    @property
    def storage(self) -> Path:
        return Path(os.environ.get("UTL_STORAGE", "").strip() or self.home / "storage")


class PostgresResource(dg.ConfigurableResource):
    """The database of eod.md: ``UTL_DATABASE_URL``, else the embedded server."""

    @contextlib.contextmanager
    def connect(self, landing: Path) -> Iterator[psycopg.Connection]:
        # The command that started this run holds its database open and names it; else eod.md's rule.
        url = os.environ.get(EMBEDDED_URL_ENV, "").strip() or os.environ.get("UTL_DATABASE_URL", "").strip()
        if url:
            with connect(url) as conn:
                migrate(conn)
                yield conn
            return
        with open_database(landing) as database, database.connect() as conn:
            migrate(conn)
            yield conn
