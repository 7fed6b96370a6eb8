"""One business date (utl.daily.run_day): positions, unit cost, PnL and its explain.

Hand-derived days first (each number worked out in the comment above it), then a property:
days run one after another, carrying lots, give the same realized PnL as one costing run
over every day's priced trades, and the explain leaves nothing unexplained.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utl.costing import compute_costs
from utl.daily import LedgerState, MissingMark, empty_ledger, run_day
from utl.marks import marks_for
from utl.pnl import price_legs
from utl.decimals import DECIMAL
from utl.legs import LEGS_OUT
from utl.settings import Settings

UTC = dt.timezone.utc
SNAP = dt.date(2024, 3, 4)  # the opening snapshot's day: opening lots take its marks
D1 = dt.date(2024, 3, 5)  # first business date
D2 = dt.date(2024, 3, 6)
USD = Settings()  # reporting currency USD, fifo

# ---------------------------------------------------------------------------------------
# Frames in trade words
# ---------------------------------------------------------------------------------------


def marks(by_day: dict[dt.date, dict[str, str]]) -> pl.DataFrame:
    rows = [(day, asset, price) for day, prices in by_day.items() for asset, price in prices.items()]
    return pl.DataFrame(
        {"business_date": [r[0] for r in rows], "asset": [r[1] for r in rows],
         "price": pl.Series([D(r[2]) for r in rows], dtype=DECIMAL)},
        schema={"business_date": pl.Date, "asset": pl.String, "price": DECIMAL},
    )


def openings(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    """(venue, account, asset, qty) of an opening snapshot."""
    return pl.DataFrame(
        {"venue": [r[0] for r in rows], "account": [r[1] for r in rows], "asset": [r[2] for r in rows],
         "qty": pl.Series([D(r[3]) for r in rows], dtype=DECIMAL)},
        schema={"venue": pl.String, "account": pl.String, "asset": pl.String, "qty": DECIMAL},
    )


NO_OPENINGS = openings()


def leg(leg_id: str, asset: str, qty: str, kind: str, *, day: dt.date = D1, hour: int = 12, price: str | None = None,
        quote: str | None = None, venue: str = "v", account: str = "a", trade_id: str | None = None) -> dict:
    return {
        "venue": venue, "account": account, "leg_id": leg_id,
        "ts": dt.datetime.combine(day, dt.time(hour), tzinfo=UTC), "asset": asset, "qty": D(qty), "kind": kind,
        "trade_id": trade_id, "price": None if price is None else D(price), "quote": quote,
        "source_file": "v/a/trades/x.csv", "source_row": 1, "source": "fills",
    }


def fill(trade_id: str, base: str, quote: str, qty: str, price: str, quote_qty: str, *, fee: str | None = None,
         fee_asset: str | None = None, **where) -> list[dict]:
    """The legs a spot fill books (eod.md): base +-qty, quote -+quote_qty, fee -fee."""
    buy = D(qty) > 0
    legs_ = [
        leg(f"{trade_id}/base", base, qty, "base", price=price, quote=quote, trade_id=trade_id, **where),
        leg(f"{trade_id}/quote", quote, str(-D(quote_qty) if buy else D(quote_qty)), "quote", trade_id=trade_id, **where),
    ]
    if fee:  # a negative fee is a rebate: its leg comes in
        legs_.append(leg(f"{trade_id}/fee", fee_asset, str(-D(fee)), "fee", trade_id=trade_id, **where))
    return legs_


def legs(*groups: dict | list[dict]) -> pl.DataFrame:
    rows = [r for g in groups for r in (g if isinstance(g, list) else [g])]
    return pl.DataFrame(rows, schema=LEGS_OUT)


def positions_of(result) -> dict[str, tuple]:
    """asset -> (qty, mark, market_value, cost_basis, unrealized_pnl) for account v/a."""
    return {
        r["asset"]: (r["qty"], r["mark"], r["market_value"], r["cost_basis"], r["unrealized_pnl"])
        for r in result.positions.iter_rows(named=True)
    }


def pnl_of(result, asset: str) -> dict:
    rows = result.pnl.filter(pl.col("asset") == asset)
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def explain_of(result, book: str = "v/a") -> dict:
    rows = result.explain.filter(pl.col("book") == book)
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def assert_explained(result) -> None:
    """The book identity of the module doc, exactly."""
    for e in result.explain.iter_rows(named=True):
        assert e["total_pnl"] == e["market_value_end"] - e["market_value_start"] - e["external_flows"]
        assert e["unexplained"] == 0, e
        assert e["total_pnl"] == (e["realized_pnl"] + e["unrealized_change"] - e["fees"] + e["income"]
                                  + e["trade_residual"])


# ---------------------------------------------------------------------------------------
# Hand-derived days
# ---------------------------------------------------------------------------------------

OPEN_MARKS = {SNAP: {"BTC": "100"}, D1: {"BTC": "110"}, D2: {"BTC": "118"}}


def test_opening_lot_is_priced_at_the_snapshot_days_mark():
    # Opens with 2 BTC (snapshot day mark 100) and 1000 USD; D1's mark 110.
    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "BTC", "2"), ("v", "a", "USD", "1000")),
                     legs(), marks(OPEN_MARKS), USD)
    # BTC: 2 x 110 = 220, cost 2 x 100 = 200, unrealized 20. USD: value = cost = 1000.
    assert positions_of(result) == {
        "BTC": (D("2"), D("110"), D("220"), D("200"), D("20")),
        "USD": (D("1000"), D("1"), D("1000"), D("1000"), D("0")),
    }
    lots = result.state.lots.select("book", "asset", "trade_id", "opened_ts", "qty", "entry_price").rows()
    assert lots == [("v/a", "BTC", "v/a/open/BTC", dt.datetime(2024, 3, 5, tzinfo=UTC), D("2"), D("100"))]
    btc = pnl_of(result, "BTC")
    # Opened at yesterday's mark: no unrealized at the start, 20 by the end of D1.
    assert (btc["market_value_start"], btc["market_value_end"], btc["unrealized_change"], btc["total_pnl"]) == (
        D("200"), D("220"), D("20"), D("20"))
    e = explain_of(result)
    assert (e["market_value_start"], e["market_value_end"], e["external_flows"], e["total_pnl"]) == (
        D("1200"), D("1220"), D("0"), D("20"))
    assert_explained(result)


def test_usd_quoted_buy_and_sell_realize_against_carried_lots():
    day1 = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "BTC", "2"), ("v", "a", "USD", "1000")),
                   legs(), marks(OPEN_MARKS), USD)
    # D2: buy 1 @ 105, sell 1.5 @ 120. FIFO: the sell closes 1.5 of the opening lot (100):
    # realized 1.5 x 20 = 30. Left: 0.5 @ 100 and 1 @ 105 = 155 of cost; 1.5 x 118 = 177.
    day2_legs = legs(
        fill("t1", "BTC", "USD", "1", "105", "105", day=D2, hour=9),
        fill("t2", "BTC", "USD", "-1.5", "120", "180", day=D2, hour=10),
    )
    result = run_day(D2, day1.state, NO_OPENINGS, day2_legs, marks(OPEN_MARKS), USD)
    # USD: 1000 - 105 + 180 = 1075.
    assert positions_of(result) == {
        "BTC": (D("1.5"), D("118"), D("177"), D("155"), D("22")),
        "USD": (D("1075"), D("1"), D("1075"), D("1075"), D("0")),
    }
    assert result.state.lots.select("trade_id", "qty", "entry_price").rows() == [
        ("v/a/open/BTC", D("0.5"), D("100")), ("v/a/t1/base", D("1"), D("105"))]
    btc = pnl_of(result, "BTC")
    # Unrealized: 20 at the end of D1, 22 at the end of D2. The trade legs' values
    # (+105 - 180 for BTC, -105 + 180 for USD) net out in the book: residual 0.
    assert (btc["realized_pnl"], btc["unrealized_pnl"], btc["unrealized_change"], btc["total_pnl"]) == (
        D("30"), D("22"), D("2"), D("32"))
    assert (btc["trade_residual"], pnl_of(result, "USD")["trade_residual"]) == (D("-75"), D("75"))
    assert pnl_of(result, "USD")["total_pnl"] == 0
    e = explain_of(result)
    assert (e["market_value_start"], e["market_value_end"], e["total_pnl"], e["realized_pnl"],
            e["unrealized_change"], e["trade_residual"]) == (D("1220"), D("1252"), D("32"), D("30"), D("2"), D("0"))
    assert_explained(result)


def test_usdt_quoted_trade_prices_the_base_leg_at_fill_price_times_usdt_mark():
    # Opens with 5000 USDT at its snapshot mark 1. D1: buy 1 ETH @ 2000 USDT; USDT mark 0.999.
    m = marks({SNAP: {"USDT": "1"}, D1: {"USDT": "0.999", "ETH": "2010"}})
    day_legs = legs(fill("t1", "ETH", "USDT", "1", "2000", "2000"))
    priced = price_legs(day_legs, marks_for(m, D1, "USD"), D1)
    # The ETH leg's unit price: 2000 x 0.999 = 1998; the USDT leg at USDT's mark.
    assert priced.select("asset", "unit_price", "value").rows() == [
        ("ETH", D("1998"), D("1998")), ("USDT", D("0.999"), D("-1998"))]

    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "USDT", "5000")), day_legs, m, USD)
    # ETH: one lot 1 @ 1998, marked 2010: unrealized 12.
    # USDT: -2000 at 0.999 closes 2000 of the lot @ 1: realized -2; 3000 left, cost 3000,
    # value 2997: unrealized -3.
    assert positions_of(result) == {
        "ETH": (D("1"), D("2010"), D("2010"), D("1998"), D("12")),
        "USDT": (D("3000"), D("0.999"), D("2997"), D("3000"), D("-3")),
    }
    assert (pnl_of(result, "ETH")["realized_pnl"], pnl_of(result, "USDT")["realized_pnl"]) == (0, D("-2"))
    # 5000 -> 5007: realized -2 + unrealized change (12 - 3) = 7, residual 1998 - 1998 = 0.
    e = explain_of(result)
    assert (e["total_pnl"], e["realized_pnl"], e["unrealized_change"], e["trade_residual"]) == (
        D("7"), D("-2"), D("9"), D("0"))
    assert_explained(result)


def test_fee_in_bnb_is_a_disposal_and_counts_in_fees():
    # Opens with 10 BNB (snapshot mark 300) and 1000 USD. D1: buy 1 BTC @ 100 USD, fee
    # 0.01 BNB; BNB mark 310.
    m = marks({SNAP: {"BNB": "300"}, D1: {"BNB": "310", "BTC": "100"}})
    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "BNB", "10"), ("v", "a", "USD", "1000")),
                     legs(fill("t1", "BTC", "USD", "1", "100", "100", fee="0.01", fee_asset="BNB")), m, USD)
    # The fee disposes 0.01 BNB at 310 out of the lot @ 300: realized 0.01 x 10 = 0.1;
    # the fee itself is 0.01 x 310 = 3.1. Left 9.99 @ 300 = 2997, worth 3096.9.
    assert positions_of(result) == {
        "BNB": (D("9.99"), D("310"), D("3096.9"), D("2997"), D("99.9")),
        "BTC": (D("1"), D("100"), D("100"), D("100"), D("0")),
        "USD": (D("900"), D("1"), D("900"), D("900"), D("0")),
    }
    bnb = pnl_of(result, "BNB")
    assert (bnb["realized_pnl"], bnb["fees"], bnb["unrealized_change"], bnb["total_pnl"]) == (
        D("0.1"), D("3.1"), D("99.9"), D("96.9"))
    # BNB's own value moved 3000 -> 3096.9: the same 96.9.
    assert bnb["market_value_end"] - bnb["market_value_start"] == bnb["total_pnl"]
    e = explain_of(result)
    assert (e["total_pnl"], e["fees"], e["trade_residual"]) == (D("96.9"), D("3.1"), D("0"))
    assert_explained(result)


def test_deposits_and_withdrawals_are_external_flows_not_pnl():
    # Opens with 2 BTC @ 100 and 1000 USD. D1 (BTC 110, ETH 2000): 2 ETH deposited,
    # 0.5 BTC and 100 USD withdrawn.
    m = marks({SNAP: {"BTC": "100"}, D1: {"BTC": "110", "ETH": "2000"}})
    day_legs = legs(
        leg("d1", "ETH", "2", "deposit"),
        leg("w1", "BTC", "-0.5", "withdrawal", hour=13),
        leg("w2", "USD", "-100", "withdrawal", hour=14),
    )
    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "BTC", "2"), ("v", "a", "USD", "1000")), day_legs, m, USD)
    # ETH arrives as a lot at its mark: no PnL. The BTC withdrawal disposes 0.5 at 110 out
    # of the lot @ 100: realized 5; 1.5 @ 100 left, worth 165: unrealized 15.
    assert positions_of(result) == {
        "BTC": (D("1.5"), D("110"), D("165"), D("150"), D("15")),
        "ETH": (D("2"), D("2000"), D("4000"), D("4000"), D("0")),
        "USD": (D("900"), D("1"), D("900"), D("900"), D("0")),
    }
    eth, btc, usd = pnl_of(result, "ETH"), pnl_of(result, "BTC"), pnl_of(result, "USD")
    assert (eth["external_flows"], eth["total_pnl"]) == (D("4000"), 0)
    assert (btc["external_flows"], btc["realized_pnl"], btc["total_pnl"]) == (D("-55"), D("5"), D("20"))
    assert (usd["external_flows"], usd["total_pnl"]) == (D("-100"), 0)
    # 1200 -> 5065 with 3845 in: the day earned 20, all of it BTC's price.
    e = explain_of(result)
    assert (e["market_value_start"], e["market_value_end"], e["external_flows"], e["total_pnl"]) == (
        D("1200"), D("5065"), D("3845"), D("20"))
    assert e["income"] == 0 and e["fees"] == 0
    assert_explained(result)


def test_funding_is_income():
    # Opens with 100 USD; D1: +5 USDT funding received (mark 0.999), 2 USD funding paid.
    m = marks({D1: {"USDT": "0.999"}})
    day_legs = legs(leg("f1", "USDT", "5", "funding"), leg("f2", "USD", "-2", "funding", hour=13))
    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "USD", "100")), day_legs, m, USD)
    assert positions_of(result) == {
        "USD": (D("98"), D("1"), D("98"), D("98"), D("0")),
        "USDT": (D("5"), D("0.999"), D("4.995"), D("4.995"), D("0")),
    }
    assert (pnl_of(result, "USDT")["income"], pnl_of(result, "USDT")["total_pnl"]) == (D("4.995"), D("4.995"))
    assert (pnl_of(result, "USD")["income"], pnl_of(result, "USD")["total_pnl"]) == (D("-2"), D("-2"))
    e = explain_of(result)
    assert (e["income"], e["external_flows"], e["total_pnl"]) == (D("2.995"), 0, D("2.995"))
    assert_explained(result)


def test_reporting_currency_is_never_costed():
    # Reporting in EUR: EUR is held at 1 (a stray EUR mark is ignored), has no lot, its
    # cost is its quantity. USD is an asset like any other.
    eur = Settings(reporting_currency="EUR")
    m = marks({SNAP: {"USD": "0.9", "EUR": "1.5"}, D1: {"USD": "0.92", "EUR": "1.7"}})
    day_legs = legs(fill("t1", "USD", "EUR", "10", "0.91", "9.1"))
    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "EUR", "500"), ("v", "a", "USD", "100")), day_legs, m, eur)
    # USD: lots 100 @ 0.9 and 10 @ 0.91 (0.91 EUR x EUR's mark 1) = 90 + 9.1 = 99.1 of cost;
    # 110 x 0.92 = 101.2. EUR: 500 - 9.1 = 490.9 at 1, cost 490.9.
    assert positions_of(result) == {
        "EUR": (D("490.9"), D("1"), D("490.9"), D("490.9"), D("0")),
        "USD": (D("110"), D("0.92"), D("101.2"), D("99.1"), D("2.1")),
    }
    assert set(result.state.lots["asset"]) == {"USD"}
    eur_pnl = pnl_of(result, "EUR")
    assert (eur_pnl["unrealized_pnl"], eur_pnl["realized_pnl"], eur_pnl["total_pnl"]) == (0, 0, 0)
    assert_explained(result)


def test_a_position_that_goes_flat_leaves_no_row_and_no_lot():
    m = marks({SNAP: {"BTC": "100"}, D1: {"BTC": "130"}})
    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "BTC", "1")),
                     legs(fill("t1", "BTC", "USD", "-1", "125", "125")), m, USD)
    assert positions_of(result) == {"USD": (D("125"), D("1"), D("125"), D("125"), D("0"))}
    assert result.state.lots.height == 0
    # Sold at 125 what opened at 100; the 5 to the close is nobody's.
    assert pnl_of(result, "BTC")["realized_pnl"] == D("25")
    assert explain_of(result)["total_pnl"] == D("25")
    assert_explained(result)


# ---------------------------------------------------------------------------------------
# Missing marks
# ---------------------------------------------------------------------------------------


def test_missing_mark_for_a_held_asset_stops_the_day():
    m = marks({SNAP: {"BTC": "100"}, D1: {"ETH": "2000"}})
    with pytest.raises(MissingMark) as caught:
        run_day(D1, empty_ledger(SNAP), openings(("v", "a", "BTC", "2")), legs(), m, USD)
    assert caught.value.asset == "BTC" and caught.value.day == D1
    assert "BTC" in str(caught.value) and "2024-03-05" in str(caught.value)


def test_missing_snapshot_day_mark_for_an_opening_lot_names_that_day():
    m = marks({D1: {"BTC": "110"}})
    with pytest.raises(MissingMark) as caught:
        run_day(D1, empty_ledger(SNAP), openings(("v", "a", "BTC", "2")), legs(), m, USD)
    assert (caught.value.asset, caught.value.day) == ("BTC", SNAP)
    assert "2024-03-04" in str(caught.value)


def test_missing_quote_mark_of_a_fill_names_the_quote_asset():
    m = marks({D1: {"ETH": "2000"}})
    with pytest.raises(MissingMark) as caught:
        run_day(D1, empty_ledger(SNAP), openings(("v", "a", "USD", "1")),
                legs(fill("t1", "ETH", "USDT", "1", "2000", "2000")), m, USD)
    assert caught.value.asset == "USDT"


def test_an_asset_traded_flat_within_the_day_needs_no_mark():
    # Fill base legs are priced by the fill (price x quote mark); ETH ends flat, so nothing
    # needs ETH's own mark: the day runs and realizes 100.
    m = marks({D1: {"BTC": "1"}})
    day_legs = legs(fill("t1", "ETH", "USD", "1", "2000", "2000", hour=1),
                    fill("t2", "ETH", "USD", "-1", "2100", "2100", hour=2))
    result = run_day(D1, empty_ledger(SNAP), openings(("v", "a", "USD", "10")), day_legs, m, USD)
    assert positions_of(result) == {"USD": (D("110"), D("1"), D("110"), D("110"), D("0"))}
    assert pnl_of(result, "ETH")["realized_pnl"] == D("100")
    assert_explained(result)


def test_a_non_fill_leg_needs_its_assets_mark():
    # A deposit is valued at its asset's mark: none for ETH, so the day stops, even though
    # ETH is withdrawn again and ends flat.
    m = marks({D1: {"BTC": "1"}})
    with pytest.raises(MissingMark) as caught:
        run_day(D1, empty_ledger(SNAP), NO_OPENINGS,
                legs(leg("d1", "ETH", "1", "deposit", hour=1), leg("w1", "ETH", "-1", "withdrawal", hour=2)), m, USD)
    assert (caught.value.asset, caught.value.day) == ("ETH", D1)


# ---------------------------------------------------------------------------------------
# Property: days in sequence == one costing run; nothing unexplained
# ---------------------------------------------------------------------------------------

ACCOUNTS = [("v", "a1"), ("w", "a2")]
PRICED = ["BTC", "ETH", "BNB", "USDT"]  # everything but the reporting currency has marks
BASES = ["BTC", "ETH", "BNB"]
QUOTES = ["USD", "USDT"]


def decimal_text(places: int, max_int: int, min_value: D = D(0)):
    """Non-negative decimal text with at most ``places`` digits after the point."""
    return st.builds(
        lambda whole, frac, n: D(f"{whole}.{str(frac).zfill(places)[:n]}") if n else D(whole),
        st.integers(0, max_int), st.integers(0, 10**places - 1), st.integers(0, places),
    ).filter(lambda v: v > min_value)


QTY = decimal_text(8, 20)  # quantities: up to 8 places
PRICE = decimal_text(4, 3000)  # fill prices and marks: up to 4 places


@st.composite
def scenarios(draw):
    n_days = draw(st.sampled_from([1, 2, 3, 3]))
    days = [D1 + dt.timedelta(days=i) for i in range(n_days)]
    accounts = draw(st.sampled_from([ACCOUNTS[:1], ACCOUNTS, ACCOUNTS]))
    # Mostly open on the first day, so lots have days to be carried; sometimes later.
    first = {acc: days[0] if draw(st.integers(0, 3)) else draw(st.sampled_from(days)) for acc in accounts}
    marks_ = {day: {a: str(draw(PRICE)) for a in PRICED} for day in [SNAP, *days]}
    held_at_open = st.lists(st.sampled_from(PRICED + ["USD"]), unique=True, min_size=1, max_size=4)
    opening_rows = {acc: [(acc[0], acc[1], a, str(draw(QTY))) for a in draw(held_at_open)] for acc in accounts}
    legs_by_day: dict[dt.date, list[dict]] = {day: [] for day in days}
    for acc in accounts:
        for day in days:
            if day < first[acc]:
                continue
            for i in range(draw(st.integers(0, 8))):
                where = {"day": day, "hour": i % 24, "venue": acc[0], "account": acc[1]}
                tid = f"{day:%d}-{i}"
                what = draw(st.sampled_from(["fill", "fill", "fill", "flow", "funding"]))
                if what == "fill":
                    base, quote = draw(st.sampled_from(BASES)), draw(st.sampled_from(QUOTES))
                    qty, price = draw(QTY), draw(PRICE)
                    # The venue's stated amount: usually qty x price, sometimes rounded.
                    quote_qty = qty * price
                    if draw(st.booleans()):
                        quote_qty = quote_qty.quantize(D("0.01"))
                    fee_asset = draw(st.sampled_from([None, "BNB", quote, base]))
                    fee = str(draw(QTY)) if fee_asset else None
                    signed = str(qty) if draw(st.booleans()) else str(-qty)
                    if fee is not None and draw(st.integers(0, 4)) == 0:
                        fee = "-" + fee  # a rebate
                    rows = fill(tid, base, quote, signed, str(price), str(quote_qty), fee=fee, fee_asset=fee_asset, **where)
                    if quote_qty == 0:
                        rows = [r for r in rows if r["kind"] != "quote"]
                    legs_by_day[day].extend(rows)
                elif what == "flow":
                    asset = draw(st.sampled_from(PRICED + ["USD"]))
                    deposit = draw(st.booleans())
                    qty = draw(QTY)
                    legs_by_day[day].append(leg(tid, asset, str(qty if deposit else -qty),
                                                "deposit" if deposit else "withdrawal", **where))
                else:
                    asset = draw(st.sampled_from(["USD", "USDT"]))
                    qty = draw(QTY)
                    legs_by_day[day].append(leg(tid, asset, str(qty if draw(st.booleans()) else -qty), "funding", **where))
    return days, first, marks_, opening_rows, legs_by_day


def run_scenario(days, first, marks_, opening_rows, legs_by_day, method):
    """Run the days one after another, checking each; return the results and frames used."""
    settings_ = Settings(costing_method=method)
    m = marks(marks_)
    state: LedgerState = empty_ledger(SNAP)
    held: dict[tuple[str, str, str], D] = {}
    results = []
    for day in days:
        opening = openings(*[row for acc, rows in opening_rows.items() if first[acc] == day for row in rows])
        day_legs = legs(legs_by_day[day])
        result = run_day(day, state, opening, day_legs, m, settings_)
        state = result.state
        results.append((day, opening, day_legs, result))

        # End positions: opening + every leg so far, exactly; flat ones dropped.
        for venue, account, asset, qty in opening.rows():
            held[(venue, account, asset)] = held.get((venue, account, asset), D(0)) + qty
        for r in day_legs.iter_rows(named=True):
            key = (r["venue"], r["account"], r["asset"])
            held[key] = held.get(key, D(0)) + r["qty"]
        expected = {k: v for k, v in held.items() if v != 0}
        assert {(v, a, s): q for v, a, s, q in state.positions.rows()} == expected
        valued = {(r["venue"], r["account"], r["asset"]): r["qty"] for r in result.positions.iter_rows(named=True)}
        assert valued == expected
        assert state.business_date == day

        assert result.explain.height > 0 or not expected
        for e in result.explain.iter_rows(named=True):
            assert e["business_date"] == day
            assert e["total_pnl"] == e["market_value_end"] - e["market_value_start"] - e["external_flows"]
            assert e["unexplained"] == e["total_pnl"] - (e["realized_pnl"] + e["unrealized_change"] - e["fees"]
                                                         + e["income"] + e["trade_residual"])
    return settings_, m, results


def one_costing_run(settings_, m, results) -> pl.DataFrame:
    """Every day's costing trades in one frame: opening lots at their snapshot day's mark,
    then each day's non-reporting legs at the unit price run_day gives them."""
    reporting = settings_.reporting_currency
    frames = []
    for day, opening, day_legs, _ in results:
        assert not settings_.books  # so each account is its own book, named venue/account
        book = pl.format("{}/{}", "venue", "account")
        before = marks_for(m, day - dt.timedelta(days=1), reporting)
        frames.append(
            opening.filter((pl.col("asset") != reporting) & (pl.col("qty") != 0))
            .join(before, on="asset", how="left")
            .select(book=book, asset="asset",
                    ts=pl.lit(dt.datetime.combine(day, dt.time(), tzinfo=UTC), pl.Datetime("us", "UTC")),
                    trade_id=pl.format("{}/{}/open/{}", "venue", "account", "asset"), qty="qty", price="mark",
                    day=pl.lit(day, pl.Date))
        )
        if day_legs.height:
            frames.append(
                price_legs(day_legs, marks_for(m, day, reporting), day)
                .filter((pl.col("asset") != reporting) & (pl.col("qty") != 0))
                .select(book=book, asset="asset", ts="ts", trade_id=pl.format("{}/{}/{}", "venue", "account", "leg_id"),
                        qty="qty", price="unit_price", day=pl.lit(day, pl.Date))
            )
    return pl.concat(frames)


UNIT = D("1e-18")


def wac_drift_bound(whole, day: dt.date, book: str, assets: int) -> D:
    """What WAC may leave unexplained in one book on one day, and why.

    Lots are costed at their own prices, so cost moves by exactly the value traded plus
    what was realized, and the explain is exact. A WAC pool's average is rounded at 18
    places after each re-averaging (costing.md), so the pool's cost ``qty x average``
    drifts from the cost that went in by at most ``|position after| x 0.5e-18`` at each
    trade; realized PnL (``closed x (price - average)``) and the start and end cost of
    each pool are products with an 18-place average, each rounded by at most 0.5e-18.
    """
    if whole is None:  # nothing was costed (only the reporting currency held): nothing drifts
        return D(0)
    trades = whole.realized.filter((pl.col("day") == day) & (pl.col("book") == book))
    drift = sum((abs(p) + 1 for p in trades["position_after"]), D(0))
    return UNIT / 2 * drift + UNIT * assets


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=scenarios())
def test_days_in_sequence_equal_one_costing_run(method, scenario):
    settings_, m, results = run_scenario(*scenario, method)
    trades = one_costing_run(settings_, m, results)
    whole = compute_costs(trades, method) if trades.height else None

    # The explain, book by book and day by day: nothing left over (WAC: its rounding only).
    for day, _, _, result in results:
        for e in result.explain.iter_rows(named=True):
            if method == "wac":
                assets = result.pnl.filter(pl.col("book") == e["book"]).height
                assert abs(e["unexplained"]) <= wac_drift_bound(whole, day, e["book"], assets), (day, e)
            else:
                assert e["unexplained"] == 0, (day, e)
    if whole is None:
        return

    realized_whole = {
        (b, a): v for b, a, v in whole.realized.group_by("book", "asset").agg(pl.col("realized_pnl").sum()).rows() if v != 0
    }
    realized_daily: dict[tuple[str, str], D] = {}
    for *_, result in results:
        for r in result.pnl.iter_rows(named=True):
            key = (r["book"], r["asset"])
            realized_daily[key] = realized_daily.get(key, D(0)) + r["realized_pnl"]
    assert {k: v for k, v in realized_daily.items() if v != 0} == realized_whole

    # The lots carried to the end are the lots of the one run, price for price.
    last = results[-1][3].state.lots
    columns = ["book", "asset", "qty", "entry_price"] + ([] if method == "wac" else ["trade_id"])
    assert last.select(columns).sort(columns).rows() == whole.open_lots.select(columns).sort(columns).rows()


# ---------------------------------------------------------------------------------------
# Books that group accounts ([books] in utl.toml)
# ---------------------------------------------------------------------------------------


def grouped_day(method: str, *fills: list[dict]):
    desk = Settings(costing_method=method, books={"desk": ("v/a1", "v/a2")})
    m = marks({SNAP: {"BTC": "100"}, D1: {"BTC": "100"}})
    return run_day(D1, empty_ledger(SNAP), openings(("v", "a1", "USD", "1000"), ("v", "a2", "USD", "1000")),
                   legs(*fills), m, desk)


def assert_book_cost_is_its_lots(result) -> None:
    """The accounts' cost bases add up to the book's open lots, and the explain closes."""
    lots = {(b, a): c for b, a, c in result.state.lots.group_by("book", "asset")
            .agg((pl.col("qty") * pl.col("entry_price")).sum()).rows()}
    accounts = {(b, a): c for b, a, c in result.positions.filter(pl.col("asset") != "USD")
                .group_by("book", "asset").agg(pl.col("cost_basis").sum()).rows()}
    assert accounts == lots
    assert explain_of(result, "desk")["unexplained"] == 0


def test_grouped_book_keeps_the_cost_of_a_lot_opened_by_an_account_now_flat():
    # a1 buys 1 @ 100, a2 buys 1 @ 110, a2 sells 1 @ 120: FIFO closes a1's lot; a2's lot
    # (110) is left while a2 holds nothing and a1 holds 1.
    result = grouped_day(
        "fifo",
        fill("t1", "BTC", "USD", "1", "100", "100", account="a1", hour=1),
        fill("t2", "BTC", "USD", "1", "110", "110", account="a2", hour=2),
        fill("t3", "BTC", "USD", "-1", "120", "120", account="a2", hour=3),
    )
    assert_book_cost_is_its_lots(result)


def test_grouped_book_wac_pool_cost_is_counted_once():
    result = grouped_day(
        "wac",
        fill("t1", "BTC", "USD", "1", "100", "100", account="a1", hour=1),
        fill("t2", "BTC", "USD", "1", "110", "110", account="a2", hour=2),
    )
    assert_book_cost_is_its_lots(result)
