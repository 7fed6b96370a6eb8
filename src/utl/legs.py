"""The universal ledger: one leg per asset moved (eod.md, "Opening state and booking").

A spot fill books its base asset ``+qty`` (buy) or ``-qty`` (sell), its quote asset
``-quote_qty`` or ``+quote_qty``, and its fee ``-fee`` in the fee's own asset. A ledger
line books as it is. One source per account, never two: where an account's ``trades/``
holds a ledger export, its legs come from the ledger and its fills only add detail (the
price of the trade a ledger line belongs to); otherwise its legs come from its fills.
Positions are then just sums of legs.
"""

from __future__ import annotations

import polars as pl

from utl.decimals import DECIMAL
from utl.schemas import LEGS_OUT


def fill_legs(fills: pl.DataFrame) -> pl.DataFrame:
    """Base, quote and fee legs of spot fills; a derivative fill books only its fee here
    (derivatives.md: its instrument leg moves no cash and lives in the derivative ledger).

    Called for accounts whose cash comes from fills; a ledger account's fees are its
    ledger's lines (:func:`book_legs`), so its derivative fills book nothing here.
    """
    spot = fills.filter(~pl.col("derivative"))
    common = [pl.col("venue"), pl.col("account"), pl.col("ts"), pl.col("trade_id"), pl.col("source_file"), pl.col("source_row")]
    base = spot.select(
        *common, leg_id=pl.col("trade_id") + "/base", asset=pl.col("base"), qty=pl.col("qty"),
        kind=pl.lit("base"), price=pl.col("price"), quote=pl.col("quote"),
    )
    quote = spot.select(
        *common, leg_id=pl.col("trade_id") + "/quote", asset=pl.col("quote"),
        qty=pl.when(pl.col("qty") > 0).then(-pl.col("quote_qty")).otherwise(pl.col("quote_qty")),
        kind=pl.lit("quote"), price=pl.lit(None, DECIMAL), quote=pl.lit(None, pl.String),
    )
    fee = fills.filter(pl.col("fee").is_not_null() & (pl.col("fee") != 0)).select(
        *common, leg_id=pl.col("trade_id") + "/fee", asset=pl.col("fee_asset"), qty=-pl.col("fee"),
        kind=pl.lit("fee"), price=pl.lit(None, DECIMAL), quote=pl.lit(None, pl.String),
        # The export did not say the fee's asset: this leg's asset is the reader's assumption.
        fee_asset_assumed=(pl.col("fee_asset_assumed").fill_null(False) if "fee_asset_assumed" in fills.columns
                           else pl.lit(False)),
    )
    legs = pl.concat([base, quote], how="vertical_relaxed").with_columns(fee_asset_assumed=pl.lit(False))
    return pl.concat([legs, fee], how="vertical_relaxed").with_columns(source=pl.lit("fills"))


def ledger_legs(movements: pl.DataFrame, fills: pl.DataFrame) -> pl.DataFrame:
    """Ledger lines as legs; a line of a trade whose fill is known takes the fill's price
    for its base asset (Kraken's ``refid`` is the fill's ``txid``)."""
    # A fill's identity may be qualified by its pair ("BTC/USDT:123"); a ledger's reference
    # is the venue's bare id.
    venue_id = pl.col("trade_id").str.extract(r"^[A-Z0-9]+/[A-Z0-9]+(?:-deriv)?:(.+)$", 1)
    detail = fills.filter(~pl.col("derivative")).select(
        "venue", "account", pl.coalesce(venue_id, pl.col("trade_id")).alias("ref_id"), pl.col("base").alias("asset"),
        "price", "quote", kind=pl.lit("trade"),
    ).unique(subset=["venue", "account", "ref_id", "asset"], keep="first", maintain_order=True)
    # Only a trade line of the base asset takes the fill's price: a fee line in the same
    # asset is a disposal valued at the mark, like every other fee.
    # No fill to take a price from (a derivatives ledger, the usual case): no join, which
    # would copy every line.
    priced = (movements.join(detail, on=["venue", "account", "ref_id", "asset", "kind"], how="left", maintain_order="left")
              if detail.height else movements.with_columns(price=pl.lit(None, detail.schema["price"]),
                                                           quote=pl.lit(None, detail.schema["quote"])))
    return (
        priced
        .select(
            "venue", "account", pl.col("entry_id").alias("leg_id"), "ts", "asset", "qty", "kind",
            pl.col("ref_id").alias("trade_id"), "price", "quote", "source_file", "source_row",
        )
        .with_columns(source=pl.lit("ledger"), fee_asset_assumed=pl.lit(False))
    )


def book_legs(fills: pl.DataFrame, movements: pl.DataFrame, ledger_accounts: set[tuple[str, str]]) -> pl.DataFrame:
    """All legs of all accounts, each account from exactly one source."""
    if not ledger_accounts:
        return fill_legs(fills).select(LEGS_OUT.names()).cast(LEGS_OUT)
    ledger_keys = pl.DataFrame(
        sorted(ledger_accounts), schema={"venue": pl.String, "account": pl.String}, orient="row"
    )
    # A ledger that books each wallet to <account>/<wallet> (Binance's Account column) makes
    # those sub-accounts ledger accounts too.
    wallets = (
        movements.select("venue", "account").unique()
        .filter(pl.col("account").str.contains("/", literal=True))
        .join(ledger_keys.rename({"account": "parent"}),
              left_on=["venue", pl.col("account").str.split("/").list.first()], right_on=["venue", "parent"], how="semi")
    )
    ledger_keys = pl.concat([ledger_keys, wallets]).unique()
    fills_of_ledgers, fills_of_fills = _split_accounts(fills, ledger_keys)
    from_fills = fill_legs(fills_of_fills)
    # Only fills of ledger accounts can add detail to ledger lines.
    from_ledger = ledger_legs(_split_accounts(movements, ledger_keys)[0], fills_of_ledgers)
    legs = pl.concat([from_fills.select(LEGS_OUT.names()), from_ledger.select(LEGS_OUT.names())], how="vertical_relaxed")
    # No sort: every consumer orders what it needs (costing by application order), and a
    # sort of millions of legs by their string ids is the costliest step of the ledger.
    return legs.cast(LEGS_OUT)


def _split_accounts(frame: pl.DataFrame, accounts: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``frame``'s rows of ``accounts`` (venue, account) and the others. A shard's rows are
    nearly always of ledger accounts only or of none: told by its few distinct accounts, the
    frame is passed on whole (a join copies every row of a wide frame, ~0.1 s a shard)."""
    present = frame.select("venue", "account").unique()
    of_accounts = present.join(accounts, on=["venue", "account"], how="semi").height
    if of_accounts == 0:
        return frame.clear(), frame
    if of_accounts == present.height:
        return frame, frame.clear()
    return (frame.join(accounts, on=["venue", "account"], how="semi", maintain_order="left"),
            frame.join(accounts, on=["venue", "account"], how="anti", maintain_order="left"))
