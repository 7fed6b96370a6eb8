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
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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


class DatabaseUnavailable(RuntimeError):
    """No connection to the database: one line naming the server and the cause, never the password."""


def _where(url: str) -> tuple[str, str | None]:
    """(host[:port], database) of a URL for messages, without user or password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        return (parts.hostname or "?") + (f":{port}" if port else ""), parts.path.lstrip("/") or None
    host = info.get("host") or info.get("hostaddr") or "localhost"
    port = info.get("port")
    return host + (f":{port}" if port else ""), info.get("dbname")


def _cause(exc: psycopg.Error, url: str) -> str:
    """The first line of libpq's message, less its "connection to server ... failed:" preamble."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^connection (failed|is bad): ", "", text)
    text = re.sub(r'^connection to server (at|on) .*? failed: ', "", text)
    text = re.sub(r"^FATAL:\s+", "", text)
    secret = conninfo_secret(url)
    return text.replace(secret, "***") if secret else text


def conninfo_secret(url: str) -> str | None:
    try:
        return conninfo_to_dict(url).get("password") or None
    except psycopg.Error:
        return urlsplit(url).password


def connect(url: str) -> psycopg.Connection:
    """A connection in autocommit mode: transactions are the explicit ``conn.transaction()``
    blocks of the writers, so a read never leaves a session idle in a transaction.

    Raises :class:`DatabaseUnavailable` (one line: server, database, cause) when it cannot connect."""
    try:
        conninfo_to_dict(url)
    except psycopg.Error:
        where, _ = _where(url)
        at = f" at {where}" if not where.startswith("?") else ""
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL{at}: the database URL is malformed "
            f"(expected postgresql://user[:password]@host[:port]/database)") from None
    try:
        return psycopg.connect(url, autocommit=True, application_name="utl", connect_timeout=10)
    except psycopg.OperationalError as exc:
        where, dbname = _where(url)
        on = f" (database {dbname})" if dbname else ""
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL at {where}{on}: {_cause(exc, url)}") from None


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
        connect(url).close()  # fail here, in one line, before anything says "database: ..."
        yield Database(url=url, data_dir=None, landing=landing)
        return
    data_dir = embedded_data_dir()
    with embedded_server(data_dir, landing_database(landing)) as embedded_url:
        yield Database(url=embedded_url, data_dir=data_dir, landing=landing)
