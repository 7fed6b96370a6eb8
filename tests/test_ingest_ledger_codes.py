"""A ledger export's derivative fills and cash take canonical asset codes, worked out once
per distinct code: the same codes canonical_asset gives row by row, nulls kept null."""

from __future__ import annotations

import polars as pl

from utl.assets import canonical_asset
from utl.derivatives.schemas import DERIVATIVE_CASH, DERIVATIVE_FILLS
from utl.ingest import _ledger_derivatives
from utl.settings import Settings
from utl.venues.base import Parsed

CODES = ["xbt", " XXBT ", None, "DOT28.S", "eth.s", "ZZZ", "xbt", "Zusd", ""]


def test_ledger_derivative_codes_are_canonical_per_distinct_code() -> None:
    settings = Settings(aliases={"ZZZ": "ZED"})
    n = len(CODES)
    fills = pl.DataFrame({"fee_asset": CODES, "source_row": list(range(1, n + 1))}).with_columns(
        [pl.lit(None, t).alias(c) for c, t in DERIVATIVE_FILLS.items() if c not in ("fee_asset", "source_row")]
    ).select(DERIVATIVE_FILLS.names()).cast(DERIVATIVE_FILLS)
    cash = pl.DataFrame({"asset": CODES, "source_row": list(range(1, n + 1))}).with_columns(
        [pl.lit(None, t).alias(c) for c, t in DERIVATIVE_CASH.items() if c not in ("asset", "source_row")]
    ).select(DERIVATIVE_CASH.names()).cast(DERIVATIVE_CASH)
    out = _ledger_derivatives(Parsed(pl.DataFrame(), pl.DataFrame(), derivative_fills=fills, derivative_cash=cash), settings)
    want = pl.select(canonical_asset(pl.Series(CODES, dtype=pl.String), settings.aliases)).to_series().to_list()
    assert want[:3] == ["BTC", "BTC", None] and want[5] == "ZED"
    assert out["derivative_fills"]["fee_asset"].to_list() == want
    assert out["derivative_cash"]["asset"].to_list() == want
    assert out["derivative_fills"].schema == DERIVATIVE_FILLS and out["derivative_cash"].schema == DERIVATIVE_CASH


def test_a_column_of_canonical_codes_comes_back_as_it_is() -> None:
    from utl.ingest import _canonical_codes

    column = pl.Series("base", ["BTC", None, "USDT", "BTC"], dtype=pl.String)
    out = _canonical_codes(column, {})
    assert out.name == "base" and out.dtype == pl.String and out.to_list() == ["BTC", None, "USDT", "BTC"]
    # one code that maps is enough to look every row up
    mixed = pl.Series("base", ["BTC", "XXBT", None], dtype=pl.String)
    assert _canonical_codes(mixed, {}).to_list() == ["BTC", "BTC", None]
    assert _canonical_codes(column, {"USDT": "USD"}).to_list() == ["BTC", None, "USD", "BTC"]


def test_codes_worked_out_before_follow_the_aliases_asked_with() -> None:
    from utl.ingest import _canonical_codes

    column = pl.Series("asset", ["foo", "XBT", None], dtype=pl.String)
    assert _canonical_codes(column, {}).to_list() == ["FOO", "BTC", None]
    assert _canonical_codes(column, {"FOO": "BAR"}).to_list() == ["BAR", "BTC", None]
    assert _canonical_codes(column, {}).to_list() == ["FOO", "BTC", None]
    assert _canonical_codes(column, {"FOO": "BAR", "XBT": "XBT"}).to_list() == ["BAR", "XBT", None]


def test_canonical_assets_refuse_only_codes_that_cannot_be_assets() -> None:
    from utl.ingest import _canonical_assets
    from utl.schemas import QUARANTINE

    frame = pl.DataFrame({"asset": ["xbt", "ETH", None], "source_file": ["f"] * 3, "source_row": [1, 2, 3]})
    ok, refused = _canonical_assets(frame, ["asset"], Settings())
    assert ok.equals(frame.with_columns(asset=pl.Series(["BTC", "ETH", None]))) and refused.height == 0
    assert refused.schema == QUARANTINE
    bad = pl.concat([frame, pl.DataFrame({"asset": ["no such!"], "source_file": ["g"], "source_row": [9]})])
    ok, refused = _canonical_assets(bad, ["asset"], Settings())
    assert ok["source_row"].to_list() == [1, 2, 3]
    assert refused.rows() == [("g", 9, "asset", "unknown asset code", "no such!")]
