"""Reconciliation (utl.recon): breaks between the ledger and the venues' snapshots."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl

from utl.decimals import DECIMAL
from utl.recon import BREAKS, cleared, find_breaks

DAY = dt.date(2024, 3, 6)
YESTERDAY = dt.date(2024, 3, 5)
EARLIER = dt.date(2024, 3, 1)
KEY = ["venue", "account", "asset"]


def ledger(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    """(venue, account, asset, qty) ledger positions at the end of the day."""
    return pl.DataFrame(
        [(v, a, s, D(q)) for v, a, s, q in rows], orient="row",
        schema={"venue": pl.String, "account": pl.String, "asset": pl.String, "qty": DECIMAL},
    )


def snapshot(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    """(venue, account, asset, total) of the accounts with a snapshot that day."""
    return pl.DataFrame(
        [(v, a, s, D(t)) for v, a, s, t in rows], orient="row",
        schema={"venue": pl.String, "account": pl.String, "asset": pl.String, "total": DECIMAL},
    )


def marks(**prices: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"asset": list(prices), "mark": pl.Series([D(p) for p in prices.values()], dtype=DECIMAL)},
        schema={"asset": pl.String, "mark": DECIMAL},
    )


def previous_breaks(*rows: tuple[str, str, str, dt.date]) -> pl.DataFrame:
    """Breaks of the account's previous reconciled date: (venue, account, asset, first_seen)."""
    return pl.DataFrame(
        [
            {"business_date": YESTERDAY, "venue": v, "account": a, "asset": s, "ledger_qty": D(0), "venue_qty": D(1),
             "diff": D(1), "tolerance": D(0), "first_seen": f, "kind": "missing_in_ledger", "mark": None,
             "diff_value": None}
            for v, a, s, f in rows
        ],
        schema=BREAKS,
    )


NONE_BEFORE = previous_breaks()


def by_asset(breaks: pl.DataFrame) -> dict[str, dict]:
    return {r["asset"]: r for r in breaks.iter_rows(named=True)}


def test_kinds_of_break_and_diff_is_venue_minus_ledger():
    breaks = find_breaks(
        DAY,
        ledger(("v", "a", "BTC", "1.5"), ("v", "a", "ETH", "2"), ("v", "a", "SOL", "3"), ("v", "a", "USD", "-10")),
        snapshot(("v", "a", "ETH", "2.25"), ("v", "a", "SOL", "3"), ("v", "a", "BNB", "0.7")),
        {}, marks(BTC="100", ETH="2000", BNB="300", SOL="150"), NONE_BEFORE,
    )
    assert breaks.schema == BREAKS
    got = {a: (r["kind"], r["ledger_qty"], r["venue_qty"], r["diff"]) for a, r in by_asset(breaks).items()}
    assert got == {
        # The ledger holds BTC and owes USD; the snapshot lists neither: held at zero there.
        "BTC": ("missing_at_venue", D("1.5"), D("0"), D("-1.5")),
        "USD": ("missing_at_venue", D("-10"), D("0"), D("10")),
        # The venue holds BNB, the ledger nothing.
        "BNB": ("missing_in_ledger", D("0"), D("0.7"), D("0.7")),
        "ETH": ("qty_mismatch", D("2"), D("2.25"), D("0.25")),
        # SOL agrees: no row.
    }
    assert breaks.select(KEY).rows() == sorted(breaks.select(KEY).rows())
    assert set(breaks["business_date"]) == {DAY}


def test_listed_at_zero_while_the_ledger_holds_it_is_a_qty_mismatch():
    # The recon doc: missing_at_venue is "the snapshot does not list it"; here it does, at 0.
    breaks = find_breaks(DAY, ledger(("v", "a", "BTC", "1")), snapshot(("v", "a", "BTC", "0")), {}, marks(), NONE_BEFORE)
    assert breaks.select("kind", "diff").rows() == [("qty_mismatch", D("-1"))]


def test_diff_is_exact_to_the_last_place():
    breaks = find_breaks(DAY, ledger(("v", "a", "BTC", "0.3")), snapshot(("v", "a", "BTC", "1.000000000000000001")),
                         {}, marks(BTC="3"), NONE_BEFORE)
    row = breaks.row(0, named=True)
    assert row["diff"] == D("0.700000000000000001")
    assert row["diff_value"] == D("2.100000000000000003")
    assert row["mark"] == D("3")


def test_tolerance_boundary():
    tol = {"BTC": D("0.00000001")}
    at = D("0.00000001")
    one_more = D("0.000000010000000001")  # one unit in the 18th place past the tolerance
    led = ledger(("v", "a", "BTC", "1"), ("v", "b", "BTC", "1"), ("v", "c", "BTC", "1"), ("v", "d", "BTC", "1"),
                 ("v", "e", "ETH", "1"))
    snap = snapshot(
        ("v", "a", "BTC", str(1 + at)), ("v", "b", "BTC", str(1 - at)),  # exactly the tolerance: no break
        ("v", "c", "BTC", str(1 + one_more)), ("v", "d", "BTC", str(1 - one_more)),  # one unit more: breaks
        ("v", "e", "ETH", "1.000000000000000001"),  # no tolerance set for ETH: 0, so the last unit breaks
    )
    breaks = find_breaks(DAY, led, snap, tol, marks(), NONE_BEFORE)
    got = {(r["account"], r["asset"]): (r["diff"], r["tolerance"]) for r in breaks.iter_rows(named=True)}
    assert got == {
        ("c", "BTC"): (one_more, at),
        ("d", "BTC"): (-one_more, at),
        ("e", "ETH"): (D("1e-18"), D(0)),
    }


def test_within_tolerance_missing_assets_are_not_breaks_either():
    tol = {"BTC": D("0.001")}
    breaks = find_breaks(DAY, ledger(("v", "a", "BTC", "0.001")), snapshot(("v", "a", "ETH", "0.0005")),
                         {**tol, "ETH": D("0.0005")}, marks(), NONE_BEFORE)
    assert breaks.height == 0


def test_diff_value_is_null_without_a_mark_never_zero():
    breaks = find_breaks(DAY, ledger(("v", "a", "XYZ", "5"), ("v", "a", "BTC", "1")),
                         snapshot(("v", "a", "XYZ", "7"), ("v", "a", "BTC", "2")), {}, marks(BTC="60000"), NONE_BEFORE)
    rows = by_asset(breaks)
    assert rows["XYZ"]["diff"] == D("2")
    assert rows["XYZ"]["mark"] is None and rows["XYZ"]["diff_value"] is None
    assert rows["BTC"]["diff_value"] == D("60000")


def test_an_account_without_a_snapshot_is_not_reconciled():
    breaks = find_breaks(DAY, ledger(("v", "a", "BTC", "1"), ("v", "b", "BTC", "5"), ("w", "a", "BTC", "2")),
                         snapshot(("v", "a", "BTC", "1.5")), {}, marks(), NONE_BEFORE)
    # v/b and w/a hold BTC in the ledger, but no snapshot came: never read as flat.
    assert breaks.select("venue", "account", "asset", "diff").rows() == [("v", "a", "BTC", D("0.5"))]


def test_an_empty_ledger_against_a_snapshot():
    breaks = find_breaks(DAY, ledger(), snapshot(("v", "a", "BTC", "1")), {}, marks(), NONE_BEFORE)
    assert breaks.select("kind", "ledger_qty", "venue_qty", "diff").rows() == [("missing_in_ledger", 0, 1, 1)]


def test_first_seen_carries_from_the_previous_reconciled_date():
    previous = previous_breaks(("v", "a", "BTC", EARLIER), ("v", "a", "ETH", YESTERDAY), ("v", "b", "BTC", EARLIER))
    breaks = find_breaks(
        DAY,
        ledger(("v", "a", "BTC", "1"), ("v", "a", "ETH", "1"), ("v", "a", "SOL", "1"), ("v", "b", "BTC", "1")),
        snapshot(("v", "a", "BTC", "2"), ("v", "a", "SOL", "2"), ("v", "a", "ETH", "1"), ("v", "b", "ETH", "1"),
                 ("v", "b", "BTC", "1")),
        {}, marks(), previous,
    )
    got = {(r["account"], r["asset"]): r["first_seen"] for r in breaks.iter_rows(named=True)}
    assert got == {
        ("a", "BTC"): EARLIER,  # still broken: its run started on EARLIER
        ("a", "SOL"): DAY,  # new today
        ("b", "ETH"): DAY,  # new today (b's earlier break was BTC, not ETH)
        # a/ETH and b/BTC agree today: cleared, no rows.
    }


def test_cleared_lists_yesterdays_breaks_gone_today():
    previous = previous_breaks(("v", "a", "BTC", EARLIER), ("v", "a", "ETH", YESTERDAY), ("v", "b", "BTC", EARLIER))
    today = find_breaks(DAY, ledger(("v", "a", "BTC", "1"), ("v", "a", "ETH", "1")),
                        snapshot(("v", "a", "BTC", "2"), ("v", "a", "ETH", "1")), {}, marks(), previous)
    reconciled = pl.DataFrame({"venue": ["v"], "account": ["a"]})
    gone = cleared(DAY, previous, today, reconciled)
    # ETH agrees today: cleared, with the run it ended. v/b had no snapshot today: its
    # break is neither cleared nor carried.
    assert gone.select("venue", "account", "asset", "first_seen", "cleared_on").rows() == [
        ("v", "a", "ETH", YESTERDAY, DAY)]
    assert today.select("asset", "first_seen").rows() == [("BTC", EARLIER)]


def test_nothing_cleared_when_every_break_remains():
    previous = previous_breaks(("v", "a", "BTC", EARLIER))
    today = find_breaks(DAY, ledger(("v", "a", "BTC", "1")), snapshot(("v", "a", "BTC", "3")), {}, marks(), previous)
    gone = cleared(DAY, previous, today, pl.DataFrame({"venue": ["v"], "account": ["a"]}))
    assert gone.height == 0
    assert today["first_seen"].to_list() == [EARLIER]


# ---------------------------------------------------------------------------------------
# Issue 17: a snapshot listing nothing; per-venue precision as the default tolerance
# ---------------------------------------------------------------------------------------


def test_an_empty_snapshot_reconciles_every_position_against_zero() -> None:
    from utl.snapshots import nothing_held

    marker = nothing_held(DAY, "kraken", "main", "kraken/main/balances/2024-03-06.csv").select(
        "venue", "account", "asset", "total")
    found = find_breaks(DAY, ledger(("kraken", "main", "BTC", "0.5"), ("kraken", "other", "ETH", "1")), marker, {},
                        marks(BTC="60000"), NONE_BEFORE)
    # Only the account with the (empty) snapshot is reconciled; its BTC is missing at the venue.
    assert [(r["account"], r["asset"], r["venue_qty"], r["diff"], r["kind"]) for r in found.iter_rows(named=True)] == [
        ("main", "BTC", D(0), D("-0.5"), "missing_at_venue")]


def test_venue_places_set_the_default_tolerance_and_toml_wins() -> None:
    from utl.precision import half_unit, venue_tolerances

    assert half_unit(4) == D("0.00005") and half_unit(8) == D("0.000000005")
    defaults = venue_tolerances({"kraken": {"EUR": 4, "*": 10}})
    book = ledger(("kraken", "main", "EUR", "399.04004"), ("kraken", "main", "BTC", "0.01000000004"),
                  ("kraken", "main", "ETH", "1.00006"), ("other", "x", "EUR", "1.00001"))
    venue = snapshot(("kraken", "main", "EUR", "399.0400"), ("kraken", "main", "BTC", "0.0100000000"),
                     ("kraken", "main", "ETH", "1.0000"), ("other", "x", "EUR", "1"))
    found = by_asset(find_breaks(DAY, book, venue, {}, marks(), NONE_BEFORE, defaults))
    # EUR: 0.00004 is within half a unit of the 4th place; BTC: 4e-11 within half of the 10th;
    # ETH: 0.00006 exceeds the 10-place default; another venue keeps the default of 0.
    assert set(found) == {"ETH", "EUR"} and found["EUR"]["venue"] == "other"
    assert found["ETH"]["tolerance"] == D("0.00000000005")
    # [tolerance] in utl.toml names EUR: it wins over the venue's 4 places.
    strict = find_breaks(DAY, book, venue, {"EUR": D("0.000005")}, marks(), NONE_BEFORE, defaults)
    assert sorted((r["venue"], r["asset"]) for r in strict.iter_rows(named=True)) == [
        ("kraken", "ETH"), ("kraken", "EUR"), ("other", "EUR")]
