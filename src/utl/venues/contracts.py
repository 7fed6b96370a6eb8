"""The derivative rows of venue exports: instrument legs and settle-asset cash (issue #14).

A reader that meets futures, perpetual or option rows hands on, beside its canonical
frame, :data:`~utl.derivatives.schemas.DERIVATIVE_FILLS` (one instrument leg per fill, its
quantity signed in the contract's position unit, ``../shared/contracts/derivatives.md``) and
:data:`~utl.derivatives.schemas.DERIVATIVE_CASH` (the realized PnL, funding, fees,
settlement, delivery and premium its ledger states, by instrument). The cash rows are
the reader's ordinary movements too: they only say which instrument each belongs to.

Venue names become ccxt symbols with the one mapping of :mod:`utl.derivatives.snapshots`,
worked out once per distinct name. A fill whose instrument, size or price cannot be read
is quarantined (file, 1-based row, the venue's column, reason, raw text), never zero.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from utl.decimals import DECIMAL
from utl.derivatives.schemas import DERIVATIVE_CASH, DERIVATIVE_FILLS
from utl.venues.base import Check, Source, entry_text, rows_of, split_refused

# Ledger exports that state an account's derivative trades as rows of their own (their
# readers hand on DERIVATIVE_FILLS with source "ledger"). An account holding one takes its
# instrument legs from its ledger on every date; an account whose ledger is of another
# format (Binance's Transaction History, Futures Transaction History: cash only) takes them
# from its trades exports (derivatives.md: one source per account).
LEDGER_TRADE_FORMATS = frozenset({
    "bybit.uta_asset_changes", "bybit.derivatives_legacy", "okx.trading_account", "deribit.transaction_log",
})


def ledger_trade_accounts(files: pl.DataFrame) -> pl.DataFrame:
    """(venue, account) of the ``files`` (columns ``venue``, ``account``, ``format``) whose
    ledger states derivative trades (:data:`LEDGER_TRADE_FORMATS`), sorted, once each."""
    return (files.filter(pl.col("format").is_in(list(LEDGER_TRADE_FORMATS))).select("venue", "account")
            .unique().sort("venue", "account"))

def venue_instruments(names: pl.Series, to_ccxt: Callable[[str], str | None]) -> pl.Series:
    """Each venue name's ccxt symbol (null: not a derivative), mapped once per distinct name."""
    distinct = names.drop_nulls().unique().to_list()
    table = {name: to_ccxt(name.strip()) for name in distinct}
    return names.replace_strict(table, default=None, return_dtype=pl.String)


def fill_checks(*, instrument: str, qty: str, price: str, names: dict[str, str]) -> list[Check]:
    """The checks of a derivative fill: ``names`` maps ``instrument``/``qty``/``price`` to the
    venue's own column names, which quarantine rows name."""
    named = names["instrument"]
    checks = [Check(named, pl.col(instrument).is_null(),
                    pl.when(pl.col(named).is_null()).then(pl.lit(f'"{named}" is missing'))
                    .otherwise(pl.format('"{}": "{}" names no derivative instrument', pl.lit(named), pl.col(named))))]
    for value, column in ((qty, names["qty"]), (price, names["price"])):
        checks += [
            Check(column, pl.col(f"{value}__bad"), pl.format('"{}": "{}" is not an exact decimal', pl.lit(column), pl.col(column))),
            Check(column, pl.col(value).is_null() & ~pl.col(f"{value}__bad"), f'"{column}" is missing'),
            Check(column, pl.col(value) <= 0, pl.format('"{}": "{}" is not positive', pl.lit(column), pl.col(column))),
        ]
    return checks


def derivative_fills(source: Source, frame: pl.DataFrame, checks: list[Check], /, **columns: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The rows of ``frame`` that pass ``checks`` as :data:`DERIVATIVE_FILLS`; ``columns``
    gives each of instrument, ts, leg_id, qty (signed), price, fee, fee_asset, source."""
    passed, refused = split_refused(frame, checks, source.rel)
    fills = passed.select(
        venue=pl.lit(source.venue), account=pl.lit(source.account),
        **columns, source_file=pl.lit(source.rel), source_row=pl.col("source_row"),
    )
    return fills.select(DERIVATIVE_FILLS.names()).cast(DERIVATIVE_FILLS), refused


def derivative_cash(movements: pl.DataFrame, instruments: pl.DataFrame, kinds: pl.Expr) -> pl.DataFrame:
    """Movements (canonical frame, before asset mapping) that are derivative cash, as
    :data:`DERIVATIVE_CASH`: ``instruments`` gives each ``source_row`` its ``instrument``
    (null: the row names none) and whatever columns ``kinds`` reads; ``kinds`` is the
    cash kind of a movement, null for one that is not derivative cash."""
    joined = rows_of(movements, instruments).with_columns(__cash_kind=kinds)
    return (
        joined.filter(pl.col("__cash_kind").is_not_null())
        .with_columns(kind=pl.col("__cash_kind"))
        # The stated price belongs to a settlement or delivery, not to its fee or funding part.
        .with_columns(price=pl.when(pl.col("kind").is_in(["settlement", "delivery"])).then(pl.col("price"))
                      if "price" in instruments.columns else pl.lit(None, DECIMAL))
        .select(DERIVATIVE_CASH.names())
        .cast(DERIVATIVE_CASH)
    )



# ---------------------------------------------------------------------------------------------
# The settle asset's wallet: a futures account reply as ``balances/D.json`` (derivatives.md,
# "Reconciliation": the wallet balance, which excludes unrealized PnL).
# ---------------------------------------------------------------------------------------------


def wallet_balances(source: Source, entries: list[object], asset_key: str, total_key: str) -> Parsed:
    """One balance per entry of a futures account reply: ``asset_key`` (Binance ``asset``,
    Deribit ``currency``) holds ``total_key`` (Binance ``walletBalance``, Deribit ``balance``).
    ``entries`` come from JSON read with numbers as their text (``parse_float=str``): a value
    that is missing, not a number or not an exact decimal is quarantined naming the key and
    the entry's 1-based place, never taken as zero."""
    import json

    from utl.decimals import with_venue_decimals
    from utl.schemas import BALANCES
    from utl.venues.base import Parsed

    frame = pl.DataFrame(
        {
            "source_row": list(range(1, len(entries) + 1)),
            "entry": [json.dumps(e) for e in entries],
            "is_object": [isinstance(e, dict) for e in entries],
            "asset": [(entry_text(e, asset_key) or "").strip() for e in entries],
            "total_text": [entry_text(e, total_key) for e in entries],
            "is_text": [isinstance(e, dict) and isinstance(e.get(total_key), str) for e in entries],
        },
        schema={"source_row": pl.Int64, "entry": pl.String, "is_object": pl.Boolean, "asset": pl.String,
                "total_text": pl.String, "is_text": pl.Boolean},
    )
    frame = with_venue_decimals(frame, total=pl.col("total_text"))
    checks = [
        Check(None, ~pl.col("is_object"), "the entry is not an object", raw=pl.col("entry")),
        Check(asset_key, pl.col("is_object") & (pl.col("asset") == ""), f'"{asset_key}" is missing',
              raw=pl.col("entry")),
        Check(total_key, pl.col("is_object") & pl.col("total_text").is_null(),
              pl.format(f'{{}}: "{total_key}" is missing', pl.col("asset")), raw=pl.col("entry")),
        Check(total_key, pl.col("total_text").is_not_null() & (pl.col("total__bad") | ~pl.col("is_text")),
              pl.format(f'{{}}: "{total_key}": {{}} is not an exact decimal', pl.col("asset"), pl.col("total_text")),
              raw=pl.col("total_text")),
    ]
    passed, quarantine = split_refused(frame, checks, source.rel)
    rows = passed.select(
        venue=pl.lit(source.venue), account=pl.lit(source.account), asset="asset", total="total",
        source_file=pl.lit(source.rel), source_row="source_row",
    ).cast(BALANCES)
    return Parsed(rows, quarantine)
