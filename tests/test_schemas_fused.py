"""validate_rows' fused check: a frame it calls valid is one pandera passes, and any other
frame gets pandera's own quarantine, row for row."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandera.polars as pa
import polars as pl
import pytest

from utl.schemas import (
    BALANCES, FILLS, LEGS, MARKS, MOVEMENTS, Balances, Fills, Legs, Marks, Movements, _fast_checks, _surely_valid,
    _validate, _without_unique, validate_rows,
)

T = dt.datetime(2024, 3, 5, tzinfo=dt.timezone.utc)


def fill(**over) -> dict:
    row = dict(venue="binance", account="a", trade_id="t1", order_id=None, ts=T, symbol="BTCUSDT", base="BTC",
               quote="USDT", side="buy", qty=Decimal("1"), price=Decimal("65000"), quote_qty=Decimal("65000"),
               fee=None, fee_asset=None, liquidity=None, source_file="binance/a/trades/x.csv")
    row.update(over)
    return row


def fills(*rows: dict) -> pl.DataFrame:
    return pl.DataFrame([{"source_row": i + 1, **r, "trade_id": f"t{i}"} for i, r in enumerate(rows)], schema=FILLS)


def same_result(frame: pl.DataFrame, model) -> tuple[pl.DataFrame, pl.DataFrame]:
    fused_ok, fused_refused = validate_rows(frame, model)
    ok, refused = _validate(frame, model, fused=False)  # pandera alone
    assert fused_ok.equals(ok)
    assert fused_refused.equals(refused)
    return ok, refused


def test_every_model_is_checked_fused():
    for model in (Fills, Movements, Balances, Marks, Legs):
        assert _fast_checks(model.to_schema()) is not None, model.__name__
        assert _fast_checks(_without_unique(model)) is not None, model.__name__


def test_several_bad_values_in_different_columns_give_pandera_s_own_quarantine():
    frame = fills(
        fill(),
        fill(side="hold", price=Decimal("0")),  # two checks fail on one row
        fill(qty=Decimal("0")),
        fill(quote_qty=Decimal("-1"), liquidity="both"),
        fill(liquidity="maker", fee=Decimal("1"), fee_asset="BNB"),
        fill(symbol=None),  # a null in a column that may not be null
        fill(side="sell", qty=Decimal("-2")),
    )
    assert not _surely_valid(frame, Fills.to_schema())
    ok, refused = same_result(frame, Fills)
    assert ok["source_row"].to_list() == [1, 5, 7]
    assert sorted(refused.select("file", "row", "column").rows()) == [
        ("binance/a/trades/x.csv", 2, "price"), ("binance/a/trades/x.csv", 2, "side"),
        ("binance/a/trades/x.csv", 3, "qty"), ("binance/a/trades/x.csv", 4, "liquidity"),
        ("binance/a/trades/x.csv", 4, "quote_qty"), ("binance/a/trades/x.csv", 6, "symbol"),
    ]
    reasons = dict(((r, c), why) for r, c, why in refused.select("row", "column", "reason").rows())
    assert reasons[(2, "side")].startswith("fails the Fills check isin(")
    assert reasons[(6, "symbol")] == "fails the Fills check not_nullable"


@pytest.mark.parametrize("bad", [
    dict(side="hold"), dict(side=None), dict(qty=Decimal("0")), dict(price=Decimal("0")), dict(price=Decimal("-1")),
    dict(quote_qty=Decimal("-0.000000000000000001")), dict(liquidity="both"), dict(venue=None), dict(ts=None),
    dict(source_row=None), dict(qty=None),
])
def test_one_bad_value_is_never_called_valid(bad):
    frame = fills(fill(), fill(**bad), fill(side="sell", qty=Decimal("-1")))
    assert not _surely_valid(frame, Fills.to_schema())
    ok, refused = same_result(frame, Fills)
    assert refused.height >= 1 and ok.height == 2


def test_good_frames_of_every_model_pass_fused_as_they_pass_pandera():
    good = fills(fill(), fill(liquidity="taker", fee=Decimal("-0.1"), fee_asset="USDT"), fill(side="sell", qty=Decimal("-3")))
    movements = pl.DataFrame([dict(venue="k", account="a", entry_id="e1", ref_id=None, ts=T, kind="fee", asset="BTC",
                                   qty=Decimal("-1"), description=None, source_file="f", source_row=1)], schema=MOVEMENTS)
    balances = pl.DataFrame([dict(venue="k", account="a", asset="BTC", total=Decimal("0"), source_file="f", source_row=1)],
                            schema=BALANCES)
    marks = pl.DataFrame([dict(asset="BTC", price=Decimal("65000.5"))], schema=MARKS)
    legs = pl.DataFrame([dict(venue="v", account="a", leg_id="x", ts=T, asset="BTC", qty=Decimal("1"), kind="base",
                              trade_id=None, price=None, quote=None, source_file="f", source_row=1)], schema=LEGS)
    for frame, model in ((good, Fills), (movements, Movements), (balances, Balances), (marks, Marks), (legs, Legs)):
        schema = _without_unique(model) if model.to_schema().unique else model.to_schema()
        assert _surely_valid(frame, schema), model.__name__
        model.to_schema().validate(frame, lazy=True)  # pandera agrees
        ok, refused = same_result(frame, model)
        assert ok.equals(frame) and refused.height == 0
    empty = FILLS.to_frame()
    assert _surely_valid(empty, Fills.to_schema()) and same_result(empty, Fills)[1].height == 0


def test_bad_values_of_other_models_give_pandera_s_quarantine():
    movements = pl.DataFrame([dict(venue="k", account="a", entry_id=f"e{i}", ref_id=None, ts=T, kind=kind, asset=asset,
                                   qty=Decimal("1"), description=None, source_file="f", source_row=i)
                              for i, (kind, asset) in enumerate([("fee", "BTC"), ("gift", "BTC"), ("fee", None)])],
                             schema=MOVEMENTS)
    assert same_result(movements, Movements)[1].select("row", "column").sort("row").rows() == [(1, "kind"), (2, "asset")]
    marks = pl.DataFrame([dict(asset="BTC", price=Decimal("0")), dict(asset="ETH", price=Decimal("2"))], schema=MARKS)
    assert same_result(marks, Marks)[1].select("row", "column", "raw").rows() == [(None, "price", "0.000000000000000000")]
    leg = dict(venue="v", account="a", leg_id="x", ts=T, asset="BTC", qty=Decimal("1"), kind="base", trade_id=None,
               price=None, quote=None, source_file="f", source_row=1)
    repeated = pl.DataFrame([leg, {**leg, "source_row": 2, "price": Decimal("0")}], schema=LEGS)
    ok, refused = same_result(repeated, Legs)  # a repeated key: pandera's unique check, as before
    assert ok.height == 0 and {2} <= set(refused.filter(pl.col("column") == "price")["row"])


def test_a_frame_of_the_wrong_shape_still_raises():
    wrong = fills(fill()).with_columns(pl.col("qty").cast(pl.Decimal(38, 10)))
    assert not _surely_valid(wrong, Fills.to_schema())
    with pytest.raises(ValueError, match="shape"):
        validate_rows(wrong, Fills)
    missing = fills(fill()).drop("price")
    assert not _surely_valid(missing, Fills.to_schema())
    with pytest.raises(ValueError, match="shape"):
        validate_rows(missing, Fills)
    naive = fills(fill()).with_columns(pl.col("ts").dt.replace_time_zone(None))
    assert not _surely_valid(naive, Fills.to_schema())


def test_a_schema_with_a_custom_check_is_left_to_pandera():
    class Custom(pa.DataFrameModel):
        x: int = pa.Field(gt=0)

        @pa.check("x")
        def even(cls, data) -> pl.LazyFrame:
            return data.lazyframe.select(pl.col(data.key) % 2 == 0)

    assert _fast_checks(Custom.to_schema()) is None
    frame = pl.DataFrame({"x": [2, 3, 4]})
    assert not _surely_valid(frame, Custom.to_schema())
    ok, refused = validate_rows(frame, Custom)
    assert ok["x"].to_list() == [2, 4] and refused.select("column", "raw").rows() == [("x", "3")]


def test_pandera_s_narwhals_backend_gets_no_fused_check(monkeypatch):
    import pandera.config

    good = fills(fill())
    assert _surely_valid(good, Fills.to_schema())
    config = pandera.config.get_config_context()
    config.use_narwhals_backend = True
    monkeypatch.setattr(pandera.config, "get_config_context", lambda *a, **k: config)
    assert not _surely_valid(good, Fills.to_schema())
