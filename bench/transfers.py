"""Transfers benchmark: what matching and lot moves add to one business date.

Takes the PnL benchmark's day (``bench/pnl.py``: legs over assets and books), turns some of
its legs into withdrawals and deposits between accounts (pairs of equal amounts, 1 hour
apart), and prints the seconds of ``utl.daily.run_day`` without transfers and with them, and
how many matched.

    uv run python bench/transfers.py [--legs 1000000] [--assets 100] [--books 20] [--transfers 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pnl import DAY, generate  # noqa: E402  (the PnL benchmark's day, beside this file)
from utl.daily import TransferBook, empty_ledger, run_day
from utl.schemas import PENDING_TRANSFERS, TRANSFER_LEGS, TRANSIT_LOTS
from utl.settings import Settings


def plant_transfers(legs: pl.DataFrame, count: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``count`` withdrawals (negative priced-at-mark legs) and, one hour later in the next
    account, a deposit of the same amount: (legs with kinds set, TRANSFER_LEGS)."""
    pool = legs.filter((pl.col("kind") == "quote") & (pl.col("qty") < 0)).head(count)
    withdrawals = pool.with_columns(kind=pl.lit("withdrawal"))
    deposits = pool.with_columns(
        leg_id=pl.col("leg_id") + "-in", kind=pl.lit("deposit"), qty=-pl.col("qty"),
        account=pl.col("account") + "-b", ts=pl.col("ts") + dt.timedelta(hours=1),
    )
    deposits = deposits.filter(pl.col("ts").dt.date() == DAY)
    rest = legs.join(pool.select("venue", "account", "leg_id"), on=["venue", "account", "leg_id"], how="anti")
    booked = pl.concat([rest, withdrawals, deposits])
    moves = pl.concat([withdrawals, deposits]).select(
        "venue", "account", "asset", "leg_id", "ts", "kind", amount=pl.col("qty").abs(),
        fee=pl.lit(0).cast(TRANSFER_LEGS["fee"]), tx_hash=pl.lit(None, pl.String), to_venue=pl.lit(None, pl.String),
        to_account=pl.lit(None, pl.String), refs=pl.lit("bench.csv:1"),
    ).cast(TRANSFER_LEGS)
    return booked, moves


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--legs", type=int, default=1_000_000)
    parser.add_argument("--assets", type=int, default=100)
    parser.add_argument("--books", type=int, default=20)
    parser.add_argument("--transfers", type=int, default=50)
    args = parser.parse_args()
    legs, marks, openings = generate(args.legs, args.assets, args.books)
    settings = Settings()
    booked, moves = plant_transfers(legs, args.transfers)
    extra = moves.filter(pl.col("kind") == "deposit").select("venue", "account").unique()
    openings = pl.concat([openings, openings.join(extra.with_columns(account=pl.col("account").str.strip_suffix("-b")),
                                                   on=["venue", "account"], how="semi")
                          .with_columns(account=pl.col("account") + "-b")])
    start = empty_ledger(DAY - dt.timedelta(days=1))

    began = time.perf_counter()
    run_day(DAY, start, openings, booked, marks, settings)
    plain = time.perf_counter() - began

    began = time.perf_counter()
    result = run_day(DAY, start, openings, booked, marks, settings,
                     transfers=TransferBook(moves, PENDING_TRANSFERS.to_frame(), TRANSIT_LOTS.to_frame()))
    with_transfers = time.perf_counter() - began
    print(f"{booked.height:,} legs, {args.assets} assets, {args.books} books")
    print(f"run_day without transfers: {plain:.2f} s")
    print(f"run_day with {args.transfers} withdrawals and their deposits: {with_transfers:.2f} s "
          f"({result.matches.height} matched, {result.transfers.pending.height} pending, "
          f"{result.external.height} external deposits)")


if __name__ == "__main__":
    main()
