"""011_stream_landing on a database a 010 booker wrote: its rows go to the landing that
booked them where its starting state names it (the landing whose last written date is the
end-of-day date it started from), else to the landing last written, as 008 does."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from utl.store import connect, migrate
from tests.migrations import migrated_through


@pytest.fixture
def before_011(database: str, tmp_path: Path) -> str:
    """``database`` migrated through 010, as a database of the last release is."""
    migrated_through(database, tmp_path / "sql", 10)
    with connect(database) as conn:
        # /a wrote through 03-04, then /b wrote 03-05 (the last written).
        conn.execute("""
            INSERT INTO utl.day_runs (landing, business_date, fingerprint, legs, written_at) VALUES
                ('/a', '2024-03-04', 'fa', 1, '2024-03-08 10:00Z'),
                ('/b', '2024-03-04', 'fb', 1, '2024-03-08 11:00Z'),
                ('/b', '2024-03-05', 'fb', 1, '2024-03-08 11:01Z')""")
        conn.execute("INSERT INTO utl.stream_offset (consumer, last_seq) VALUES ('utl-stream', 7)")
        conn.execute("""INSERT INTO utl.live_positions (venue, account, asset, qty, cost_basis, realized_pnl)
                        VALUES ('kraken', 'main', 'BTC', 1.5, 90000, 0)""")
        conn.execute("""INSERT INTO utl.stream_breaks (business_date, venue, account, asset, what)
                        VALUES ('2024-03-05', 'kraken', 'main', 'BTC', 'qty')""")
    return database


def _owners(conn: psycopg.Connection) -> set[str]:
    found = set()
    for table in ("stream_offset", "live_positions", "stream_breaks", "stream_start"):
        found |= {row[0] for row in conn.execute(f"SELECT landing FROM utl.{table}")}
    return found


def test_rows_go_to_the_landing_whose_last_date_the_stream_started_from(before_011: str) -> None:
    with connect(before_011) as conn:
        conn.execute("INSERT INTO utl.stream_start VALUES ('kraken', 'main', '2024-03-04', 'eod')")
        assert [m.version for m in migrate(conn)][0] == 11
        # /b wrote last, but /a's last date is the one the stream started from.
        assert _owners(conn) == {"/a"}
        assert conn.execute("SELECT landing, consumer, last_seq FROM utl.stream_offset").fetchall() == \
            [("/a", "utl-stream", 7)]

        # The new key: the same account and asset in two landings, never twice in one.
        conn.execute("""INSERT INTO utl.live_positions (landing, venue, account, asset, qty, cost_basis, realized_pnl)
                        VALUES ('/b', 'kraken', 'main', 'BTC', 2, 1, 0)""")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("""INSERT INTO utl.live_positions (landing, venue, account, asset, qty, cost_basis,
                            realized_pnl) VALUES ('/a', 'kraken', 'main', 'BTC', 2, 1, 0)""")
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO utl.stream_offset (consumer, last_seq) VALUES ('x', 1)")


def test_without_an_eod_start_rows_go_to_the_landing_written_last(before_011: str) -> None:
    with connect(before_011) as conn:
        conn.execute("INSERT INTO utl.stream_start VALUES ('kraken', 'main', '2024-03-04', 'snapshot')")
        migrate(conn)
        assert _owners(conn) == {"/b"}
