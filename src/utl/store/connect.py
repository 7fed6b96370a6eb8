"""Which PostgreSQL UTL uses, and connections to it.

The database is the one at ``UTL_DATABASE_URL`` when that is set: the user chose it, and
every landing folder run against it shares it. Otherwise it is the embedded server whose
data lives in ``<UTL_HOME>/pgdata`` (``utl.home``), with one database per landing folder
(``utl_<landing id>``), so two landing folders or two checkouts never mix their rows.
Contract: ``utl eod`` and ``utl breaks`` use the same one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from utl.home import landing_id, utl_home
from utl.store.embedded import APP_DATABASE, embedded_server

DATABASE_URL_ENV = "UTL_DATABASE_URL"


def database_url() -> str | None:
    """The URL in ``UTL_DATABASE_URL``, or None when unset or blank."""
    return os.environ.get(DATABASE_URL_ENV, "").strip() or None


def embedded_data_dir() -> Path:
    """The embedded server's PostgreSQL data directory: ``<UTL_HOME>/pgdata``."""
    return utl_home() / "pgdata"


def landing_database(landing: Path | None) -> str:
    """The embedded server's database for ``landing`` (``utl`` when there is none)."""
    return APP_DATABASE if landing is None else f"utl_{landing_id(landing)}"


def connect(url: str) -> psycopg.Connection:
    """A connection in autocommit mode: transactions are the explicit ``conn.transaction()``
    blocks of the writers, so a read never leaves a session idle in a transaction."""
    return psycopg.connect(url, autocommit=True, application_name="utl")


@dataclass(frozen=True)
class Database:
    """The database in use: its URL and, when embedded, its data directory."""

    url: str
    data_dir: Path | None  # None when the URL came from UTL_DATABASE_URL
    landing: Path | None = None

    def connect(self) -> psycopg.Connection:
        return connect(self.url)

    @property
    def description(self) -> str:
        """For messages: where the data lives, without a password."""
        info = conninfo_to_dict(self.url)
        if self.data_dir is not None:
            where = f"database {info.get('dbname', '?')}"
            if self.landing is not None:
                where += f", landing {self.landing.expanduser().resolve()}"
            return f"embedded PostgreSQL in {self.data_dir} ({where})"
        return f"PostgreSQL database {info.get('dbname', '?')} on {info.get('host', 'localhost')}"


@contextlib.contextmanager
def open_database(landing: Path | None = None) -> Iterator[Database]:
    """The database UTL uses for ``landing``, for the length of the block (an embedded
    server stops after, unless another process still uses it)."""
    url = database_url()
    if url is not None:
        yield Database(url=url, data_dir=None, landing=landing)
        return
    data_dir = embedded_data_dir()
    with embedded_server(data_dir, landing_database(landing)) as embedded_url:
        yield Database(url=embedded_url, data_dir=data_dir, landing=landing)
