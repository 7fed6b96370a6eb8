"""Which deposit is which withdrawal: the matching rule of transfers between own accounts.

The rule (ledger.md, "Transfers between own accounts"): a withdrawal of account A and a
deposit of account B != A, of the same asset, match when

- the deposit's time is within the window after the withdrawal's: ``0 <= d.ts - w.ts <=
  window``;
- the amounts agree: ``|d.amount - w.amount| <= tolerance``, where ``w.amount`` is what the
  withdrawal line moved and the network fee its venue states beside it (the ``<id>/fee``
  line) is not part of it; so the deposit is the withdrawal's gross (amount + fee) less the
  stated fee, and with no stated fee the difference is what the tolerance allows. Where a
  venue writes the gross on the withdrawal line itself, the deposit is that line less the
  stated fee: ``|d.amount - (w.amount - w.fee)| <= tolerance`` matches too (what did not
  arrive is then disposed of as the network fee, :mod:`utl.transfers`);
- when both carry a transaction hash, the hashes are equal (equal hashes match whatever the
  amounts; different ones never match).

Each movement matches at most once. Candidate pairs are taken nearest in time first (then
the earlier withdrawal, then the earlier deposit, then by id: every tie is broken the same
way on every run), so where two withdrawals could take one deposit, the nearer one does.

A withdrawal listed in ``transfers/*.csv`` (``to_venue``/``to_account`` set) is matched as
listed: to the nearest deposit of the listed account within the window, whatever the
amounts; it never matches another account's deposit. Listed withdrawals choose first.

Worked example (window 24 h, tolerance 0): withdrawals ``w1`` 1.0 BTC at 10:00 and ``w2`` 1.0
BTC at 11:00 from account A; a deposit ``d`` of 1.0 BTC into B at 11:30. Both pairs qualify;
``(w2, d)`` is 30 minutes apart, ``(w1, d)`` 90: ``w2`` takes ``d``, ``w1`` stays pending.

Matching is greedy over candidate pairs, which is sequential by nature: each pair taken
removes both movements from every other pair. The pairs are built and ranked in Polars;
only the walk over them is a Python loop, over the day's deposits and pending withdrawals
(a handful, not the ledger's millions of legs).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl

from utl.decimals import DECIMAL
from utl.schemas import PENDING_TRANSFERS, TRANSFER_LEGS, TRANSFER_MATCHES

W_KEY = ["w_venue", "w_account", "w_leg_id"]
D_KEY = ["d_venue", "d_account", "d_leg_id"]


def _prefixed(frame: pl.DataFrame, prefix: str) -> pl.DataFrame:
    return frame.rename({c: f"{prefix}{c}" for c in frame.columns if c != "asset"})


def candidate_pairs(withdrawals: pl.DataFrame, deposits: pl.DataFrame, window_hours: int,
                    tolerance: Decimal) -> pl.DataFrame:
    """Every (withdrawal, deposit) pair the rule allows, ranked: the first is taken first."""
    w = _prefixed(withdrawals.select(PENDING_TRANSFERS.names()).cast(PENDING_TRANSFERS), "w_")
    d = _prefixed(deposits.select(TRANSFER_LEGS.names()).cast(TRANSFER_LEGS), "d_")
    window = dt.timedelta(hours=window_hours)
    pairs = w.join(d, on="asset", how="inner").with_columns(gap=pl.col("d_ts") - pl.col("w_ts"))
    listed = pl.col("w_to_venue").is_not_null()
    same_hash = pl.col("w_tx_hash").is_not_null() & pl.col("d_tx_hash").is_not_null() & (
        pl.col("w_tx_hash") == pl.col("d_tx_hash"))
    other_hash = pl.col("w_tx_hash").is_not_null() & pl.col("d_tx_hash").is_not_null() & (
        pl.col("w_tx_hash") != pl.col("d_tx_hash"))
    tol = pl.lit(tolerance, DECIMAL)
    # A venue that writes the gross on the withdrawal line as well as a fee line: what arrives
    # is that line less the fee (the contract's words, "deposit = |withdrawal| - stated fee").
    amounts_agree = ((pl.col("d_amount") - pl.col("w_amount")).abs() <= tol) | (
        (pl.col("w_fee") > 0) & ((pl.col("d_amount") - (pl.col("w_amount") - pl.col("w_fee"))).abs() <= tol))
    other_account = (pl.col("w_venue") != pl.col("d_venue")) | (pl.col("w_account") != pl.col("d_account"))
    to_listed = (pl.col("d_venue") == pl.col("w_to_venue")) & (pl.col("d_account") == pl.col("w_to_account"))
    allowed = (
        (pl.col("gap") >= dt.timedelta(0)) & (pl.col("gap") <= window) & other_account & ~other_hash
        & pl.when(listed).then(to_listed).otherwise(same_hash | amounts_agree)
    )
    return (
        pairs.filter(allowed)
        .with_columns(rank_listed=~listed, rank_hash=~same_hash)
        .sort(["rank_listed", "rank_hash", "gap", "w_ts", "d_ts", *W_KEY, *D_KEY])
    )


def match_transfers(withdrawals: pl.DataFrame, deposits: pl.DataFrame, window_hours: int,
                    tolerance: Decimal) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(matches, withdrawals left pending, deposits that matched none).

    ``withdrawals``: PENDING_TRANSFERS (those carried from earlier dates and the date's own);
    ``deposits``: TRANSFER_LEGS of kind deposit. Matches are TRANSFER_MATCHES rows.
    """
    pairs = candidate_pairs(withdrawals, deposits, window_hours, tolerance)
    taken_w: set[tuple] = set()
    taken_d: set[tuple] = set()
    chosen: list[int] = []
    keys = pairs.select(pl.concat_list(W_KEY).alias("w"), pl.concat_list(D_KEY).alias("d"))
    for i, (w_key, d_key) in enumerate(keys.iter_rows()):
        w_key, d_key = tuple(w_key), tuple(d_key)
        if w_key in taken_w or d_key in taken_d:
            continue
        taken_w.add(w_key)
        taken_d.add(d_key)
        chosen.append(i)
    picked = pairs[chosen] if chosen else pairs.clear()
    matches = picked.select(
        from_venue="w_venue", from_account="w_account", withdrawal_id="w_leg_id", to_venue="d_venue",
        to_account="d_account", deposit_id="d_leg_id", asset="asset", withdrawn="w_amount", fee="w_fee",
        deposited="d_amount", withdrawn_ts="w_ts", deposited_ts="d_ts", listed=pl.col("w_to_venue").is_not_null(),
    ).cast(TRANSFER_MATCHES).sort("deposited_ts", "to_venue", "to_account", "deposit_id")
    w_done = matches.select(venue="from_venue", account="from_account", leg_id="withdrawal_id")
    d_done = matches.select(venue="to_venue", account="to_account", leg_id="deposit_id")
    pending = withdrawals.select(PENDING_TRANSFERS.names()).cast(PENDING_TRANSFERS).join(
        w_done, on=["venue", "account", "leg_id"], how="anti")
    external = deposits.select(TRANSFER_LEGS.names()).cast(TRANSFER_LEGS).join(
        d_done, on=["venue", "account", "leg_id"], how="anti")
    return matches, pending.sort("ts", "venue", "account", "leg_id"), external.sort("ts", "venue", "account", "leg_id")
