"""``transfers/*.csv``: transfers between own accounts, listed by the user (ledger.md).

``ts,asset,amount,from_venue,from_account,to_venue,to_account,tx_hash``, one transfer a row.
A listed row is the authority for the withdrawal it names: that withdrawal is matched to a
deposit of the listed account, whatever the amounts (the difference is the network fee).

Read exactly like a venue export: every cell as text, ``amount`` as an exact decimal, ``ts``
as a UTC time (``2024-03-05T10:00:00Z``; a trailing ``Z`` or ``+00:00`` is optional). A bad
value refuses its row alone, naming file, row and column; the rest of the file is read.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from utl.assets import canonical_asset
from utl.decimals import venue_decimal
from utl.errors import QUARANTINE_SCHEMA, empty_quarantine, quarantine_file
from utl.schemas import LISTED_TRANSFERS
from utl.venues.base import Check, Source, one_line, read_csv_rows, split_refused

COLUMNS = ("ts", "asset", "amount", "from_venue", "from_account", "to_venue", "to_account", "tx_hash")
ASSET_CODE = r"^[A-Z0-9]{1,24}$"
UTC_TEXT = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|\+00:?00)?$"


def _utc(text: pl.Expr) -> pl.Expr:
    bare = text.str.replace(r"(Z|\+00:?00)$", "").str.replace(" ", "T")
    return bare.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False).dt.replace_time_zone("UTC")


def read_transfers(path: Path, rel: str, aliases: dict[str, str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(LISTED_TRANSFERS rows, quarantine rows) of one ``transfers/*.csv`` file."""
    try:
        frame, refused = read_csv_rows(Source(path=path, rel=rel, venue="", account=""))
    except Exception as exc:  # an unreadable file is one entry naming it; the run goes on
        return LISTED_TRANSFERS.to_frame(), quarantine_file(rel, f"unreadable transfers file: {one_line(exc)}")
    header = [c.strip().lower() for c in frame.columns if c != "source_row"]
    if header != list(COLUMNS):
        return LISTED_TRANSFERS.to_frame(), quarantine_file(
            rel, f"a transfers file has the columns {','.join(COLUMNS)}", ",".join(header))
    frame = frame.rename({c: c.strip().lower() for c in frame.columns}).with_columns(
        pl.col(COLUMNS).str.strip_chars())
    amount, bad_amount = venue_decimal(pl.col("amount"))
    frame = frame.with_columns(
        __amount=amount, __bad_amount=bad_amount, __ts=_utc(pl.col("ts")),
        __asset=canonical_asset(pl.col("asset"), aliases or {}),
    )
    checks = [
        Check("ts", ~pl.col("ts").str.contains(UTC_TEXT) | pl.col("__ts").is_null(),
              "is not a UTC time YYYY-MM-DDTHH:MM:SSZ"),
        Check("asset", pl.col("__asset").is_null() | ~pl.col("__asset").str.contains(ASSET_CODE), "unknown asset code"),
        Check("amount", pl.col("__bad_amount") | pl.col("__amount").is_null(), "is not a decimal number"),
        Check("amount", pl.col("__amount") <= 0, "is not positive"),
        *[Check(c, pl.col(c) == "", "is missing") for c in ("from_venue", "from_account", "to_venue", "to_account")],
        Check("to_account", (pl.col("from_venue") == pl.col("to_venue")) & (pl.col("from_account") == pl.col("to_account")),
              "is the account it is sent from"),
    ]
    ok, bad = split_refused(frame, checks, rel)
    listed = ok.select(
        ts="__ts", asset="__asset", amount="__amount", from_venue="from_venue", from_account="from_account",
        to_venue="to_venue", to_account="to_account",
        tx_hash=pl.when(pl.col("tx_hash") == "").then(None).otherwise(pl.col("tx_hash")),
        source_file=pl.lit(rel), source_row=pl.col("source_row").cast(pl.Int64),
    ).cast(LISTED_TRANSFERS)
    quarantine = pl.concat([refused.cast(QUARANTINE_SCHEMA), bad.cast(QUARANTINE_SCHEMA)]) if refused.height else bad
    return listed, quarantine if quarantine.height else empty_quarantine()


def combine_listed(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Listed transfers of many files; the same transfer listed twice (the same content) is one."""
    if not frames:
        return LISTED_TRANSFERS.to_frame()
    content = [c for c in LISTED_TRANSFERS.names() if c not in ("source_file", "source_row")]
    return (pl.concat(frames).cast(LISTED_TRANSFERS).sort("source_file", "source_row")
            .unique(subset=content, keep="first", maintain_order=True))


__all__ = ["COLUMNS", "combine_listed", "read_transfers"]
