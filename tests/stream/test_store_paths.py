"""A batch's fills go straight into utl.stream_fills when every ledger key is new (the booker's
own check makes them so); a key the database holds already (a state the booker did not load)
still books nothing twice: the batch goes the insert-if-new way, and only the new fills' legs
are written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from utl.store import connect, migrate
from utl.stream.booker import _no_rows
from utl.stream.store import FILLS_ROWS, LEGS_ROWS, commit_batch

TS = dt.datetime(2024, 3, 5, 12, tzinfo=dt.timezone.utc)


def fills(*ids_and_seqs: tuple[str, int]) -> pl.DataFrame:
    return pl.DataFrame([("okx", "desk", "BTC/USD", i, seq, TS, True) for i, seq in ids_and_seqs],
                        schema=FILLS_ROWS, orient="row")


def legs(*ids_and_seqs: tuple[str, int]) -> pl.DataFrame:
    rows = [("okx", "desk", "BTC/USD", i, f"okx/{i}/{kind}", kind, asset, Decimal(q), TS, TS.date(), Decimal("10"),
             Decimal("1"), True, seq)
            for i, seq in ids_and_seqs for kind, asset, q in (("base", "BTC", "1"), ("quote", "USD", "-10"))]
    return pl.DataFrame(rows, schema=LEGS_ROWS, orient="row")


def write(conn, last_seq: int, *ids_and_seqs: tuple[str, int]) -> None:
    rows = _no_rows() | {"fills": fills(*ids_and_seqs), "legs": legs(*ids_and_seqs)}
    commit_batch(conn, "", "utl-stream", last_seq, **rows)


def test_new_keys_go_straight_in_and_a_key_already_there_books_nothing_twice(pg_url):
    conn = connect(pg_url)
    try:
        migrate(conn)
        write(conn, 2, ("a", 1), ("b", 2))
        # "b" again (as a booker that did not know it would send it), with a new "c".
        write(conn, 4, ("b", 3), ("c", 4))
        stored = conn.execute("SELECT trade_id, stream_seq FROM utl.stream_fills ORDER BY trade_id").fetchall()
        assert stored == [("a", 1), ("b", 2), ("c", 4)]
        assert conn.execute("SELECT DISTINCT stream_seq FROM utl.stream_legs ORDER BY 1").fetchall() == [(1,), (2,), (4,)]
        assert conn.execute("SELECT last_seq FROM utl.stream_offset").fetchone()[0] == 4
    finally:
        conn.close()


def test_ledger_keys_of_different_parts_never_coincide():
    # Parts that, run together, read the same: each key's text must still differ.
    frame = pl.DataFrame({"venue": ["okx", "okx", "okx", "ok"], "account": ["a", "a:", "a", "xa"],
                          "symbol": ["B:C", "B", "B:C1", "B:C"], "trade_id": ["1", ":C1", "", "1"]})
    from utl.stream.store import ledger_keys

    keys = ledger_keys(frame).to_list()
    assert len(set(keys)) == 4
    assert ledger_keys(frame.head(1)).to_list() == keys[:1]  # the same fill, the same key
