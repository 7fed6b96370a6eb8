"""PostgreSQL store: where the database is, its schema, and exact bulk reads and writes.

- ``connect``: the URL in use (``UTL_DATABASE_URL`` or the embedded server) and connections.
- ``embedded``: the embedded server (``pginstall``: its binaries; ``server_user``: who runs it).
- ``migrate``: ``sql/NNN_what.sql`` applied once each, in order.
- ``write``: ``replace_rows``, a slice replaced atomically via COPY.
- ``read``: ``read_frame``, a query's rows as a Polars frame with exact decimals.
- ``lock``: ``run_lock``, one EOD run at a time.
"""

from utl.home import utl_home
from utl.store.connect import Database, DatabaseUnavailable, connect, database_url, embedded_data_dir, landing_database, open_database
from utl.store.embedded import EmbeddedServerError, embedded_server
from utl.store.lock import run_lock
from utl.store.migrate import MigrationError, migrate
from utl.store.read import read_frame
from utl.store.write import replace_rows

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "EmbeddedServerError",
    "MigrationError",
    "connect",
    "database_url",
    "embedded_data_dir",
    "embedded_server",
    "landing_database",
    "migrate",
    "open_database",
    "read_frame",
    "replace_rows",
    "run_lock",
    "utl_home",
]
