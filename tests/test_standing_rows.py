"""A ledger's derivative rows stand where its movements do (utl.ingest.standing_rows) and an
account's rows go to its one source (utl.legs._split_accounts): the shortcuts taken on the
usual day must give exactly what the plain semi-joins give, on every day."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.ingest import standing_rows
from utl.legs import _split_accounts

FILES = ["binance/fut/a.csv", "binance/fut/b.csv", "okx/main/c.csv"]


def _movements(rows: list[tuple[int, int, int, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(f"v{v}", f"a{a}", f"e{e}", FILES[f], r) for v, a, e, f, r in
         [(row[0] % 2, row[0] % 3, row[1], row[2], row[3]) for row in rows]],
        schema={"venue": pl.String, "account": pl.String, "entry_id": pl.String,
                "source_file": pl.String, "source_row": pl.Int64}, orient="row",
    )


def _oracle(frame: pl.DataFrame, movements: pl.DataFrame, same_entry: bool) -> pl.DataFrame:
    kept = frame.join(movements.select("source_file", "source_row").unique(),
                      on=["source_file", "source_row"], how="semi", maintain_order="left")
    if same_entry:
        kept = kept.join(movements.select("venue", "account", "entry_id"),
                         on=["venue", "account", "entry_id"], how="semi", maintain_order="left")
    return kept


row = st.tuples(st.integers(0, 5), st.integers(0, 8), st.integers(0, 2), st.integers(0, 6))


@settings(max_examples=300, deadline=None)
@given(st.lists(row, max_size=25), st.lists(row, max_size=25), st.booleans(), st.booleans())
def test_standing_rows_equal_the_semi_joins(movement_rows, other_rows, same_entry, copy_movements):
    movements = _movements(movement_rows)
    # The usual day: the derivative rows are some of the movements themselves (a ledger's cash
    # rows), then others of no movement or of another entry.
    frame = pl.concat([movements.sample(fraction=0.7, seed=1) if copy_movements else movements.clear(),
                       _movements(other_rows)])
    got = standing_rows(frame, movements, same_entry=same_entry)
    assert got.equals(_oracle(frame, movements, same_entry))


def test_every_row_standing_is_passed_on_whole_and_the_rest_filtered():
    movements = _movements([(0, i, 0, i) for i in range(6)] + [(1, 9, 2, 3)])
    assert standing_rows(movements, movements, same_entry=True).equals(movements)
    wrong_entry = movements.with_columns(entry_id=pl.when(pl.col("entry_id") == "e2").then(pl.lit("e99"))
                                         .otherwise("entry_id"))
    got = standing_rows(wrong_entry, movements, same_entry=True)
    assert got.height == movements.height - 1 and "e99" not in got["entry_id"].to_list()
    assert standing_rows(wrong_entry, movements).height == movements.height  # its source row stands


def test_a_null_source_or_a_row_beyond_32_bits_takes_the_joins():
    movements = _movements([(0, 1, 0, 1), (0, 2, 0, 2)])
    odd = pl.concat([movements, movements.head(1).with_columns(source_row=pl.lit(1 << 40)),
                     movements.head(1).with_columns(source_file=pl.lit(None, pl.String))])
    for same_entry in (False, True):
        assert standing_rows(odd, movements, same_entry).equals(_oracle(odd, movements, same_entry))
        assert standing_rows(movements, odd, same_entry).equals(_oracle(movements, odd, same_entry))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=30),
       st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=5))
def test_split_accounts_equals_the_semi_and_anti_joins(rows, ledgers):
    frame = pl.DataFrame([(f"v{v}", f"a{a}", i) for i, (v, a) in enumerate(rows)],
                         schema={"venue": pl.String, "account": pl.String, "row": pl.Int64}, orient="row")
    accounts = pl.DataFrame([(f"v{v}", f"a{a}") for v, a in ledgers],
                            schema={"venue": pl.String, "account": pl.String}, orient="row").unique()
    of_accounts, others = _split_accounts(frame, accounts)
    assert of_accounts.equals(frame.join(accounts, on=["venue", "account"], how="semi", maintain_order="left"))
    assert others.equals(frame.join(accounts, on=["venue", "account"], how="anti", maintain_order="left"))
