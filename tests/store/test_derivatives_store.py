"""012_derivatives: utl.derivative_positions, and breaks with a subject, on both servers (the
embedded PostgreSQL and TEST_DATABASE_URL's)."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import polars as pl
import psycopg
import pytest

from tests.derivatives.daybook import (
    expired_option_day,
    D1, D2, LINEAR, OPTION, day_inputs, fills, first_day, instrument_marks, positions,
)
from utl.day import step
from utl.ops.breaks import answer_breaks, format_breaks
from utl.report.data import breaks_csv, load_report_data
from utl.report.render import render_html, render_text
from utl.settings import Settings
from utl.store import connect, migrate
from utl.store.days import read_derivative_positions, write_day
from tests.migrations import migrated_through

LANDING = Path("/landings/deriv")
BREAKS_HEADER = "business_date,venue,account,asset,ledger_qty,venue_qty,diff,tolerance,first_seen,kind,mark,diff_value"


@pytest.fixture
def before_012(database: str, tmp_path: Path) -> str:
    """``database`` migrated through 011, as a database of the last release is."""
    migrated_through(database, tmp_path / "sql", 11)
    return database


def test_breaks_written_before_are_balance_breaks(before_012: str) -> None:
    with connect(before_012) as conn:
        conn.execute("INSERT INTO utl.breaks VALUES ('2024-03-06', 'kraken', 'main', 'ETH', 1, 2, 1, 0, '2024-03-05', "
                     "'qty_mismatch', NULL, NULL, '/a')")
        conn.execute("INSERT INTO utl.cleared_breaks VALUES ('2024-03-07', 'kraken', 'main', 'ETH', '2024-03-05', '/a')")
        assert [m.version for m in migrate(conn)] == [12]
        assert conn.execute("SELECT subject FROM utl.breaks").fetchall() == [("balance",)]
        assert conn.execute("SELECT subject FROM utl.cleared_breaks").fetchall() == [("balance",)]
        assert conn.execute("SELECT asset, last_seen::text, cleared_on::text, subject FROM utl.break_history").fetchall() \
            == [("ETH", "2024-03-06", "2024-03-07", "balance")]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE utl.breaks SET subject = 'stream'")


def test_a_date_with_derivatives_round_trips_and_a_rerun_replaces_it(migrated_database: str) -> None:
    # D1: +3 @ 100 in the ledger, the file says 2 (a position break), mark 100; D2: the file says
    # 3 (the break clears) and an option bought today is open (entry 0.05, mark 0.06).
    mark = {LINEAR: "100"}
    state, first = first_day(derivative_fills=fills(D1, "+3 @ 100"), marks_today=instrument_marks(D1, **mark),
                             positions_today=positions(D1, (LINEAR, "2", "100", None)))
    _, second = step(D2, state, day_inputs(
        D2, marks_before=instrument_marks(D1, **mark), marks_today=instrument_marks(D2, **mark, **{OPTION: "0.06"}),
        derivative_fills=fills(D2, "+1 @ 0.05", instrument=OPTION),
        positions_today=positions(D2, (LINEAR, "3", "100", None), (OPTION, "1", "0.05", "0.06"))), Settings())
    with connect(migrated_database) as conn:
        for outputs in (first, second, second):  # the rerun of D2 replaces it
            write_day(conn, LANDING, outputs, pl.DataFrame(schema={"business_date": pl.Date}), "fp")
        assert read_derivative_positions(conn, LANDING, D1).equals(first.derivative_positions)
        assert read_derivative_positions(conn, LANDING, D2).equals(second.derivative_positions)
        assert conn.execute("SELECT count(*) FROM utl.derivative_positions WHERE business_date = %s", (D2,)).fetchone() \
            == (2,)
        assert conn.execute("SELECT asset, subject, kind, diff FROM utl.breaks").fetchall() == [
            (LINEAR, "position", "qty_mismatch", D(-1))]
        assert conn.execute("SELECT asset, first_seen::text, business_date::text, subject FROM utl.cleared_breaks"
                            ).fetchall() == [(LINEAR, "2026-12-02", "2026-12-03", "position")]
        assert conn.execute("SELECT asset, cleared_on::text, subject FROM utl.break_history").fetchall() == [
            (LINEAR, "2026-12-03", "position")]
        # The contract's CSV keeps its header byte for byte; the position break is its symbol's row.
        text = breaks_csv(conn, D1, LANDING)
        assert text.splitlines()[0] == BREAKS_HEADER
        assert text.splitlines()[1].startswith(f"2026-12-02,binance,fut,{LINEAR},3")
        # Instruments are never in utl.positions.
        assert conn.execute("SELECT count(*) FROM utl.positions WHERE asset LIKE '%:%'").fetchone() == (0,)
        # The break report: the position break says so, and a derivatives section lists D1's
        # position (+3 @ 100, file 2, mark 100: unrealized 0 USDT = 0.00 USD, delta 3).
        data = load_report_data(conn, D1, Settings(), landing=LANDING)
        text = render_text(data)
        assert f"binance/fut {LINEAR} (position) qty_mismatch: ledger 3, venue 2, diff -1" in text
        assert "DERIVATIVES (1)" in text
        assert (f"binance/fut {LINEAR}: qty 3 (venue 2), entry 100 (venue 100), mark 100; unrealized 0 USDT = 0.00 USD"
                in text)
        assert f"{LINEAR} (position)" in render_html(data) and "Derivatives (1)" in render_html(data)
        # utl breaks: the table says which break is a position's; D2 lists it as cleared.
        table = format_breaks(answer_breaks(conn, D1, LANDING), LANDING)
        assert f"{LINEAR} (position)" in table and "1 open (1 new, 0 ageing)" in table
        cleared = [b for b in answer_breaks(conn, D2, LANDING).cleared]
        assert [(b.asset, b.subject, b.diff) for b in cleared] == [(LINEAR, "position", D(-1))]


def test_an_expiry_without_delivery_is_a_break_the_database_accepts(migrated_database: str) -> None:
    out = expired_option_day()
    with connect(migrated_database) as conn:
        write_day(conn, LANDING, out, pl.DataFrame(schema={"business_date": pl.Date}), "fp")
        assert conn.execute("SELECT asset, kind, subject, ledger_qty, venue_qty FROM utl.breaks").fetchall() == [
            (OPTION, "expiry_without_delivery", "position", D(1), D(0))]
