"""008_landing_keys on a database written before it: each row goes to the landing that wrote
its date last (utl.day_runs), and a landing whose rows of a date another one overwrote
loses that date, so its next run writes it again."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from utl.store import connect, migrate
from tests.migrations import migrated_through


@pytest.fixture
def before_008(database: str, tmp_path: Path) -> str:
    """``database`` migrated through 007, as a database of the last release is."""
    migrated_through(database, tmp_path / "sql", 7)
    return database


def test_rows_go_to_the_landing_that_wrote_their_date_last(before_008: str) -> None:
    with connect(before_008) as conn:
        # /a wrote 03-05 first, then /b wrote it again (replacing /a's rows); only /a wrote 03-06.
        conn.execute("""
            INSERT INTO utl.day_runs (landing, business_date, fingerprint, legs, written_at) VALUES
                ('/a', '2024-03-05', 'fa', 1, '2024-03-08 10:00Z'),
                ('/b', '2024-03-05', 'fb', 1, '2024-03-08 11:00Z'),
                ('/a', '2024-03-06', 'fa', 1, '2024-03-08 10:01Z')""")
        conn.execute("INSERT INTO utl.runs (landing, through_date, status) VALUES ('/b', '2024-03-05', 'completed')")
        conn.execute("""
            INSERT INTO utl.positions (business_date, venue, account, asset, qty) VALUES
                ('2024-03-05', 'kraken', 'main', 'BTC', 1), ('2024-03-06', 'kraken', 'main', 'BTC', 2),
                ('2024-03-09', 'kraken', 'main', 'BTC', 3)""")
        conn.execute("""
            INSERT INTO utl.breaks VALUES ('2024-03-06', 'kraken', 'main', 'ETH', 1, 2, 1, 0, '2024-03-06',
                                           'qty_mismatch', NULL, NULL)""")
        conn.execute("INSERT INTO utl.quarantine (business_date, file, reason) VALUES (NULL, 'x.csv', 'empty file')")
        assert [m.version for m in migrate(conn)][0] == 8

        positions = conn.execute("SELECT business_date::text, landing FROM utl.positions ORDER BY 1").fetchall()
        # 03-09: no run recorded the date: the landing written last owns it.
        assert positions == [("2024-03-05", "/b"), ("2024-03-06", "/a"), ("2024-03-09", "/b")]
        assert conn.execute("SELECT landing, business_date::text FROM utl.day_runs ORDER BY 2, 1").fetchall() == \
            [("/b", "2024-03-05"), ("/a", "2024-03-06")]
        assert conn.execute("SELECT landing FROM utl.quarantine").fetchall() == [("/b",)]
        assert conn.execute("SELECT landing, asset, first_seen::text FROM utl.break_history").fetchall() == \
            [("/a", "ETH", "2024-03-06")]

        # The new key: the same date and account in two landings, but never twice in one.
        conn.execute("INSERT INTO utl.positions (landing, business_date, venue, account, asset, qty) "
                     "VALUES ('/a', '2024-03-05', 'kraken', 'main', 'BTC', 7)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO utl.positions (landing, business_date, venue, account, asset, qty) "
                         "VALUES ('/a', '2024-03-05', 'kraken', 'main', 'BTC', 8)")
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO utl.breaks (business_date, venue, account, asset, ledger_qty, venue_qty, diff, "
                         "tolerance, first_seen, kind) VALUES ('2024-03-05', 'k', 'm', 'X', 0, 1, 1, 0, '2024-03-05', "
                         "'missing_in_ledger')")
