"""A date's deposits and withdrawals as the transfer matching sees them (ledger.md).

Cut from the date's booked legs while they still carry where they came from (file, row):

- a withdrawal is a leg of kind ``withdrawal`` moving out (qty < 0); a deposit one of kind
  ``deposit`` moving in;
- a withdrawal's stated network fee is the fee line its venue writes beside it: a leg of kind
  ``fee`` of the same account and asset whose id is the withdrawal's id + ``/fee`` (Kraken,
  Bybit, OKX, Coinbase, Deribit and ccxt ledgers all write a row's fee so);
- a ``transfers/*.csv`` row of the date names one withdrawal: of its ``from`` account and
  asset, on the row's UTC date, whose amount (with or without its stated fee) is the listed
  amount; the nearest in time. The withdrawal then carries the listed destination and hash.
  A listed row that names no withdrawal is quarantined, naming its file, row and why.
"""

from __future__ import annotations

import polars as pl

from utl.decimals import DECIMAL
from utl.errors import QUARANTINE_SCHEMA
from utl.schemas import LEG_REFS, LISTED_TRANSFERS, TRANSFER_LEGS

ZERO = pl.lit(0, DECIMAL)


def _plain(amount: pl.Expr) -> pl.Expr:
    """A decimal as a person writes it: ``7``, not ``7.000000000000000000``."""
    return amount.cast(pl.String).str.replace(r"(\.\d*?)0+$", "${1}").str.strip_chars_end(".")


def source_ref() -> pl.Expr:
    """Where a row came from, as a person reads it: ``file:row``."""
    return pl.format("{}:{}", pl.col("source_file"), pl.col("source_row"))


def day_transfer_legs(legs: pl.DataFrame, listed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(TRANSFER_LEGS, LEG_REFS of the date's disposals, quarantine rows of listings naming
    no withdrawal). ``legs``: the date's legs with ``source_file``/``source_row`` (LEGS_OUT)."""
    moving = ((pl.col("kind") == "withdrawal") & (pl.col("qty") < 0)) | ((pl.col("kind") == "deposit") & (pl.col("qty") > 0))
    # Only a fee line named after a move can join one: the trades' own fee legs (a third of a
    # day's legs) are left out before the string work below.
    fee_ids = legs.filter(moving).select(pl.col("leg_id") + "/fee").to_series()
    fees = legs.filter((pl.col("kind") == "fee") & (pl.col("qty") < 0) & pl.col("leg_id").is_in(fee_ids.implode())).select(
        "venue", "account", "asset", fee_of=pl.col("leg_id").str.strip_suffix("/fee"), fee=-pl.col("qty"),
        fee_ref=source_ref(),
    ).unique(subset=["venue", "account", "asset", "fee_of"], keep="first", maintain_order=True)
    moves = legs.filter(moving).join(fees, left_on=["venue", "account", "asset", "leg_id"], right_on=["venue", "account", "asset", "fee_of"],
           how="left")
    moves = moves.select(
        "venue", "account", "asset", "leg_id", "ts", "kind", amount=pl.col("qty").abs(),
        fee=pl.when(pl.col("kind") == "withdrawal").then(pl.col("fee").fill_null(ZERO)).otherwise(ZERO),
        tx_hash=pl.lit(None, pl.String), to_venue=pl.lit(None, pl.String), to_account=pl.lit(None, pl.String),
        refs=pl.when((pl.col("kind") == "withdrawal") & pl.col("fee_ref").is_not_null())
        .then(pl.format("{};{}", source_ref(), pl.col("fee_ref"))).otherwise(source_ref()),
    ).cast(TRANSFER_LEGS)
    moves, refused = _apply_listing(moves, listed.select(LISTED_TRANSFERS.names()).cast(LISTED_TRANSFERS))
    refs = legs.filter(pl.col("qty") < 0).select(
        "venue", "account", "leg_id", "source_file", "source_row",
        fee_asset_assumed=pl.col("fee_asset_assumed").fill_null(False),
    ).cast(LEG_REFS)
    return moves.sort("ts", "venue", "account", "leg_id"), refs, refused


def _apply_listing(moves: pl.DataFrame, listed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each listed row to the one withdrawal it names (a loop over the date's listed rows,
    which a person wrote by hand: each taken withdrawal leaves the others' candidates)."""
    if listed.height == 0:
        return moves, QUARANTINE_SCHEMA.to_frame()
    withdrawals = moves.filter(pl.col("kind") == "withdrawal").with_row_index("__i")
    pairs = (
        listed.with_row_index("__l").join(
            withdrawals, left_on=["from_venue", "from_account", "asset"], right_on=["venue", "account", "asset"],
            how="inner", suffix="_w")
        .filter((pl.col("ts").dt.date() == pl.col("ts_w").dt.date())
                & ((pl.col("amount") == pl.col("amount_w")) | (pl.col("amount") == pl.col("amount_w") + pl.col("fee"))))
        .with_columns(gap=(pl.col("ts_w") - pl.col("ts")).abs())
        .sort("gap", "__l", "__i")
    )
    taken_l: set[int] = set()
    taken_w: set[int] = set()
    chosen: list[tuple[int, int]] = []
    for l, i in pairs.select("__l", "__i").iter_rows():
        if l in taken_l or i in taken_w:
            continue
        taken_l.add(l)
        taken_w.add(i)
        chosen.append((l, i))
    link = pl.DataFrame(chosen, schema={"__l": pl.UInt32, "__i": pl.UInt32}, orient="row")
    numbered = listed.with_row_index("__l")
    named = link.join(numbered, on="__l").select(
        "__i", l_to_venue="to_venue", l_to_account="to_account", l_tx_hash="tx_hash",
        l_ref=pl.format("{}:{}", pl.col("source_file"), pl.col("source_row")),
    )
    listed_w = withdrawals.join(named, on="__i", how="left").select(
        *[c for c in TRANSFER_LEGS.names() if c not in ("to_venue", "to_account", "tx_hash", "refs")],
        to_venue="l_to_venue", to_account="l_to_account", tx_hash="l_tx_hash",
        refs=pl.when(pl.col("l_ref").is_not_null()).then(pl.format("{};{}", pl.col("refs"), pl.col("l_ref")))
        .otherwise(pl.col("refs")),
    ).select(TRANSFER_LEGS.names()).cast(TRANSFER_LEGS)
    orphans = numbered.join(link, on="__l", how="anti").select(
        file="source_file", row="source_row", column=pl.lit(None, pl.String),
        reason=pl.format("lists a transfer of {} {} from {}/{} but no withdrawal of that account, asset and amount "
                         "(with or without its stated fee) is booked on {}; not matched",
                         _plain(pl.col("amount")), pl.col("asset"), pl.col("from_venue"), pl.col("from_account"),
                         pl.col("ts").dt.date()),
        raw=pl.format("{},{},{},{}/{} -> {}/{}", pl.col("ts"), pl.col("asset"), _plain(pl.col("amount")), pl.col("from_venue"),
                      pl.col("from_account"), pl.col("to_venue"), pl.col("to_account")),
    ).cast(QUARANTINE_SCHEMA)
    return pl.concat([moves.filter(pl.col("kind") != "withdrawal"), listed_w]), orphans
