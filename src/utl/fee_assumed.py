"""Fees whose asset is assumed: an export that does not say which asset a fee was charged in.

Kraken charges a trade's fee in either asset of the pair, and its trades export does not say
which (kraken.md): the reader books it in the quote asset. Where the account's legs come from
that export alone (no ledgers export beside it, eod.md "one source per account"), its fee
legs may sit in the wrong asset: the fills and their fee legs carry ``fee_asset_assumed``, and
the account is listed in the run summary until its ledgers export is loaded. Where a ledger
export is there, the legs come from it and the fees are exact.
"""

from __future__ import annotations

import polars as pl

from utl.venues import all_formats

ADVICE = "load the ledgers export for exact fees"


def assumed_fee_formats() -> list[str]:
    """The formats whose export does not state a fee's asset."""
    return [f.name for f in all_formats() if not f.fee_asset_stated]


def fee_asset_assumed_accounts(files: pl.DataFrame) -> list[str]:
    """``venue/account`` of the accounts whose legs come from an export that does not state
    the fee's asset. ``files``: one row per landing file with ``format``, ``kind``, ``venue``,
    ``account`` (the landing memory's catalog)."""
    ledger = files.filter(pl.col("kind") == "ledger").select("venue", "account").unique()
    assumed = files.filter(pl.col("format").is_in(assumed_fee_formats())).select("venue", "account").unique()
    flagged = assumed.join(ledger, on=["venue", "account"], how="anti").sort("venue", "account")
    return [f"{v}/{a}" for v, a in flagged.iter_rows()]
