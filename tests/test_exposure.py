"""Exposure by asset, venue and book, and concentration: worked examples and properties."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.decimals import DECIMAL
from utl.errors import BadInput
from utl.exposure import (
    CONCENTRATION,
    EXPOSURE_BY_ASSET,
    EXPOSURE_BY_BOOK,
    EXPOSURE_BY_VENUE,
    POSITIONS,
    concentration,
    exposure_by_asset,
    exposure_by_book,
    exposure_by_venue,
)

D1 = dt.date(2024, 5, 1)
D2 = dt.date(2024, 5, 2)
ULP = Decimal("0.000000000000000001")


def positions(*lines: str, day: dt.date = D1) -> pl.DataFrame:
    """Positions in trade notation: ``"venue/account book ASSET qty @ mark"``, mark ``?`` =
    unpriced. ``market_value`` is ``qty * mark`` as Polars computes it (exact Decimal)."""
    rows = []
    for line in lines:
        where, book, asset, qty, _, mark = line.split()
        venue, account = where.split("/")
        rows.append((day, venue, account, book, asset, Decimal(qty), None if mark == "?" else Decimal(mark)))
    frame = pl.DataFrame(rows, schema=list(POSITIONS.names())[:-1], orient="row").cast(
        {"qty": DECIMAL, "mark": DECIMAL}
    )
    return frame.with_columns(market_value=pl.col("qty") * pl.col("mark")).cast(POSITIONS)


def by(frame: pl.DataFrame, key: str) -> dict[str, dict]:
    return {row[key]: row for row in frame.to_dicts()}


def test_long_and_short_across_venues_net_against_gross():
    book = positions("binance/mm1 b1 BTC 2 @ 60000", "okx/mm2 b1 BTC -1.5 @ 60000")
    btc = by(exposure_by_asset(book), "asset")["BTC"]
    assert btc == {
        "business_date": D1, "asset": "BTC", "net_qty": Decimal("0.5"),
        "net_value": Decimal(30000), "gross_value": Decimal(210000),
        "long_value": Decimal(120000), "short_value": Decimal(-90000),
        "share_of_gross": Decimal(1), "positions": 2, "unpriced": False,
    }
    venues = by(exposure_by_venue(book), "venue")
    # 120000/210000 = 4/7 = 0.5714285714285714285714..., half-even at 18 places
    assert venues["binance"]["share_of_gross"] == Decimal("0.571428571428571429")
    assert venues["okx"]["share_of_gross"] == Decimal("0.428571428571428571")
    assert (venues["binance"]["net_value"], venues["okx"]["net_value"]) == (Decimal(120000), Decimal(-90000))
    assert venues["okx"]["long_value"] == 0 and venues["binance"]["short_value"] == 0


def test_shares_that_divide_evenly_sum_to_exactly_one():
    book = positions(
        "binance/mm1 b1 BTC 0.01 @ 50000", "binance/mm1 b1 ETH -0.1 @ 3000", "okx/mm2 b2 SOL 2 @ 100",
    )
    shares = {r["asset"]: r["share_of_gross"] for r in exposure_by_asset(book).to_dicts()}
    assert shares == {"BTC": Decimal("0.5"), "ETH": Decimal("0.3"), "SOL": Decimal("0.2")}
    assert sum(shares.values()) == 1
    day = concentration(book).row(0, named=True)
    assert day == {
        "business_date": D1, "gross_value": Decimal(1000),
        "top_venue": "binance", "top_venue_share": Decimal("0.8"),
        "top_asset": "BTC", "top_asset_share": Decimal("0.5"),
        "herfindahl": Decimal("0.38"),  # 0.25 + 0.09 + 0.04
        "unpriced": False,
    }
    books = by(exposure_by_book(book), "book")
    assert (books["b1"]["share_of_gross"], books["b2"]["share_of_gross"]) == (Decimal("0.8"), Decimal("0.2"))


def test_unpriced_position_is_flagged_never_zero():
    book = positions(
        "binance/mm1 b1 DOGE 1000 @ 0.15", "okx/mm2 b1 DOGE -400 @ ?",  # DOGE half priced
        "okx/mm2 b1 NEWCOIN 50 @ ?",  # no mark at all
        "binance/mm1 b1 BTC 0.001 @ 60000",
    )
    assets = by(exposure_by_asset(book), "asset")
    doge = assets["DOGE"]
    assert doge["unpriced"] is True and doge["positions"] == 2
    assert doge["net_qty"] == Decimal(600)  # quantities are known either way
    assert doge["net_value"] == doge["gross_value"] == doge["long_value"] == Decimal(150)  # the priced one only
    new = assets["NEWCOIN"]
    assert new["unpriced"] is True and new["net_qty"] == Decimal(50)
    # nothing priced: no value at all, not a zero one
    assert [new[c] for c in ("net_value", "gross_value", "long_value", "short_value", "share_of_gross")] == [None] * 5
    assert assets["BTC"]["share_of_gross"] == Decimal("0.285714285714285714")  # 60/210
    assert list(exposure_by_asset(book)["asset"]) == ["DOGE", "BTC", "NEWCOIN"]  # no gross sorts last
    venues = by(exposure_by_venue(book), "venue")
    assert venues["okx"]["unpriced"] is True and venues["okx"]["net_value"] is None
    assert venues["binance"]["unpriced"] is False and venues["binance"]["share_of_gross"] == 1
    day = concentration(book).row(0, named=True)
    assert day["unpriced"] is True and day["gross_value"] == Decimal(210)


def test_smallest_units_stay_exact():
    book = positions(
        "binance/mm1 b1 BTC 0.000000000000000001 @ 65000",
        "binance/mm1 b1 ETH 0.000000000000000001 @ 1",
        "okx/mm2 b1 ETH 99999999999999999.999999999999999999 @ 1",
        "okx/mm2 b1 USD -0.000000000000000003 @ 1",
    )
    assert book["market_value"][0] == Decimal("0.000000000000065")
    assets = by(exposure_by_asset(book), "asset")
    assert assets["ETH"]["net_value"] == Decimal("100000000000000000")  # a float would lose the 1e-18
    assert assets["BTC"]["gross_value"] == Decimal("0.000000000000065")
    assert assets["USD"]["short_value"] == Decimal("-0.000000000000000003")
    assert assets["USD"]["gross_value"] == Decimal("0.000000000000000003")
    venues = by(exposure_by_venue(book), "venue")
    assert venues["binance"]["net_value"] == Decimal("0.000000000000065001")
    assert venues["okx"]["net_value"] == Decimal("99999999999999999.999999999999999996")
    for frame, schema in ((exposure_by_asset(book), EXPOSURE_BY_ASSET), (exposure_by_venue(book), EXPOSURE_BY_VENUE),
                          (exposure_by_book(book), EXPOSURE_BY_BOOK), (concentration(book), CONCENTRATION)):
        assert frame.schema == schema


def test_shares_are_per_day_and_output_is_sorted():
    book = pl.concat([
        positions("a/1 b1 BTC 1 @ 100", "a/1 b1 ETH 1 @ 100", "a/1 b1 SOL 1 @ 50", day=D2),
        positions("a/1 b1 ETH 3 @ 100", "b/1 b1 BTC -1 @ 100", day=D1),
    ])
    out = exposure_by_asset(book)
    # by date, then gross descending, equal gross by name
    assert out.select("business_date", "asset").rows() == [(D1, "ETH"), (D1, "BTC"), (D2, "BTC"), (D2, "ETH"), (D2, "SOL")]
    assert list(out["share_of_gross"]) == [Decimal("0.75"), Decimal("0.25"), Decimal("0.4"), Decimal("0.4"), Decimal("0.2")]
    days = concentration(book)
    assert days.select("business_date", "top_asset", "top_venue").rows() == [(D1, "ETH", "a"), (D2, "BTC", "a")]
    assert list(days["herfindahl"]) == [Decimal("0.625"), Decimal("0.36")]


def test_a_day_without_gross_has_no_shares():
    flat = positions("a/1 b1 BTC 0 @ 60000", "a/1 b1 ETH 5 @ ?")
    assert list(exposure_by_asset(flat)["share_of_gross"]) == [None, None]
    assert exposure_by_asset(flat)["gross_value"].to_list() == [Decimal(0), None]
    day = concentration(flat).row(0, named=True)
    assert day["gross_value"] == 0 and day["top_asset"] is None and day["herfindahl"] is None and day["unpriced"]


def test_overflowing_sum_raises_instead_of_wrapping():
    # net is 0, gross 1.2e20 does not fit Decimal(38, 18): must raise, not wrap around
    book = positions("a/1 b1 BTC 60000000000000000000 @ 1", "b/1 b1 BTC -60000000000000000000 @ 1")
    with pytest.raises(pl.exceptions.ComputeError, match="overflow"):
        exposure_by_asset(book)
    # quantities of different assets never add: no overflow where only values are summed
    huge = positions("a/1 b1 SHIB 60000000000000000000 @ 0.00001", "a/1 b1 PEPE 60000000000000000000 @ 0.000001")
    assert exposure_by_venue(huge)["gross_value"].to_list() == [Decimal(660000000000000)]


def test_empty_positions_give_empty_typed_frames():
    empty = POSITIONS.to_frame()
    assert exposure_by_asset(empty).schema == EXPOSURE_BY_ASSET and exposure_by_asset(empty).is_empty()
    assert concentration(empty).schema == CONCENTRATION and concentration(empty).is_empty()


def test_bad_positions_are_refused_by_row():
    book = positions("a/1 b1 BTC 1 @ 100", "a/1 b1 ETH 1 @ 100", "a/1 b1 SOL 1 @ 50")
    with pytest.raises(ValueError, match=r"market_value \(Float64, not Decimal"):
        exposure_by_asset(book.with_columns(pl.col("market_value").cast(pl.Float64)))
    with pytest.raises(ValueError, match=r"book \(missing\)"):
        exposure_by_venue(book.drop("book"))
    broken = book.with_columns(
        market_value=pl.when(pl.col("asset") == "ETH").then(None).otherwise(pl.col("market_value")),
        mark=pl.when(pl.col("asset") == "SOL").then(None).otherwise(pl.col("mark")),
        asset=pl.when(pl.col("asset") == "BTC").then(None).otherwise(pl.col("asset")),
    )
    with pytest.raises(BadInput) as refused:
        exposure_by_book(broken)
    assert [(e.row, e.column, e.reason) for e in refused.value.errors] == [
        (1, "asset", "missing"),
        (2, "market_value", "missing although the position has a mark"),
        (3, "market_value", "given although the position has no mark"),
    ]


# --- properties ---------------------------------------------------------------------------

amounts = st.one_of(
    st.decimals(min_value=-10**6, max_value=10**6, places=8),
    st.decimals(min_value=-1, max_value=1, places=18),
)
marks = st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=8), st.just(ULP))
rows = st.lists(
    st.tuples(
        st.sampled_from([D1, D2]), st.sampled_from(["binance", "okx", "kraken"]), st.sampled_from(["m1", "m2"]),
        st.sampled_from(["b1", "b2"]), st.sampled_from(["BTC", "ETH", "SOL", "USD"]), amounts, marks,
    ),
    max_size=40,
)


def sum_exact(values) -> Decimal | None:
    """Σ of the non-null values; None when there are none (as exposure does)."""
    values = [v for v in values if v is not None]
    return sum(values, Decimal(0)) if values else None


@settings(max_examples=200, deadline=None)
@given(rows)
def test_exposure_properties(data):
    # Python's Decimal would round to 28 digits; our sums carry up to 38
    with localcontext(prec=80, rounding=ROUND_HALF_EVEN):
        _check_properties(data)


def _check_properties(data):
    frame = pl.DataFrame(data, schema=list(POSITIONS.names())[:-1], orient="row").cast({"qty": DECIMAL, "mark": DECIMAL})
    frame = frame.with_columns(market_value=pl.col("qty") * pl.col("mark")).cast(POSITIONS)
    results = {"asset": exposure_by_asset(frame), "venue": exposure_by_venue(frame), "book": exposure_by_book(frame)}
    source = frame.to_dicts()
    for key, out in results.items():
        for r in out.to_dicts():
            group = [p for p in source if p["business_date"] == r["business_date"] and p[key] == r[key]]
            values = [p["market_value"] for p in group]
            # against a Decimal reference model, exactly
            assert r["net_value"] == sum_exact(values)
            assert r["gross_value"] == sum_exact([abs(v) for v in values if v is not None])
            assert r["positions"] == len(group) and r["unpriced"] == any(v is None for v in values)
            if key == "asset":
                assert r["net_qty"] == sum_exact([p["qty"] for p in group])
            if r["gross_value"] is None:
                assert r["unpriced"] and r["long_value"] is None and r["short_value"] is None
                continue
            assert r["gross_value"] >= abs(r["net_value"])
            assert r["long_value"] + r["short_value"] == r["net_value"]
            assert r["long_value"] >= 0 >= r["short_value"]
    for day in {p["business_date"] for p in source}:
        total = sum_exact([abs(p["market_value"]) for p in source if p["business_date"] == day and p["market_value"] is not None])
        totals = {
            key: sum_exact(out.filter(pl.col("business_date") == day)["gross_value"].to_list()) for key, out in results.items()
        }
        assert totals == {"asset": total, "venue": total, "book": total}
        shares = results["asset"].filter(pl.col("business_date") == day)
        if total:
            for r in shares.to_dicts():
                if r["gross_value"] is not None:
                    assert r["share_of_gross"] == (r["gross_value"] / total).quantize(ULP)
        else:
            assert shares["share_of_gross"].null_count() == shares.height
    days = concentration(frame)
    assert days["business_date"].to_list() == sorted({p["business_date"] for p in source})
    for d in days.to_dicts():
        shares = results["asset"].filter(pl.col("business_date") == d["business_date"])["share_of_gross"].drop_nulls()
        assert d["top_asset_share"] == (max(shares) if len(shares) else None)
        assert d["herfindahl"] == (sum((s * s).quantize(ULP) for s in shares) if len(shares) else None)
