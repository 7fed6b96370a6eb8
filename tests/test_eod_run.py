"""The end-of-day run over a landing folder (utl.eod.prepare + run_dates), no database.

Landing folders are written in tmp_path in the contract's layout (eod.md): CSV balance
snapshots ``asset,total``, ccxt JSON-lines trades, ``marks/D.csv``.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import pytest

from utl.daily import MissingMark
from utl.eod import RunError, business_dates, prepare, run_dates
from utl.ingest import ingest_landing

UTC = dt.timezone.utc


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def balances(landing: Path, venue: str, account: str, date: str, **totals: str) -> None:
    write(landing / venue / account / "balances" / f"{date}.csv",
          "asset,total\n" + "".join(f"{a},{t}\n" for a, t in totals.items()))


def mark_file(landing: Path, date: str, **prices: str) -> None:
    write(landing / "marks" / f"{date}.csv", "asset,price\n" + "".join(f"{a},{p}\n" for a, p in prices.items()))


def ccxt_trade(trade_id: str, when: str, symbol: str, side: str, amount: str, price: str, cost: str,
               fee: str | None = None, fee_currency: str | None = None) -> str:
    """One line of ccxt unified trades, numbers written as JSON numbers like Python ccxt does."""
    ts = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    fee_json = "null" if fee is None else f'{{"cost": {fee}, "currency": "{fee_currency}"}}'
    return (
        f'{{"info": {{}}, "id": "{trade_id}", "order": "o-{trade_id}", "timestamp": {int(ts.timestamp() * 1000)}, '
        f'"datetime": {json.dumps(when)}, "symbol": "{symbol}", "type": "limit", "side": "{side}", '
        f'"takerOrMaker": "maker", "price": {price}, "amount": {amount}, "cost": {cost}, "fee": {fee_json}, '
        f'"fees": [{fee_json}]}}\n'
    ).replace('"fees": [null]', '"fees": []')


def run(landing: Path, through: str) -> dict:
    prepared = prepare(landing)
    return {"prepared": prepared, "days": {o.business_date: o for o in run_dates(prepared, day(through))}}


def positions_of(output, account: str = "mm1") -> dict[str, D]:
    return {r["asset"]: r["qty"] for r in output.positions.filter(pl.col("account") == account).iter_rows(named=True)}


def breaks_of(output, account: str = "mm1") -> dict[str, tuple]:
    return {r["asset"]: (r["kind"], r["diff"], r["first_seen"])
            for r in output.breaks.filter(pl.col("account") == account).iter_rows(named=True)}


# ---------------------------------------------------------------------------------------
# One account over a week
# ---------------------------------------------------------------------------------------
#
# acme/mm1 opens from its 03-04 snapshot (1 BTC, 1000 USD), so its first business date is
# 03-05. It sells 0.2 BTC on 03-04 (already in the snapshot, never booked) and buys 0.5 BTC
# @ 100 on 03-05 with a 0.05 USD fee: 1.5 BTC and 949.95 USD from then on. Its snapshots
# show 0.1 ETH the ledger never saw on 03-05, 03-06 and 03-08 (no snapshot on 03-07), none
# on 03-09, and again on 03-10. acme/ghost has trades but no snapshot at all.

WEEK = [day("2024-03-05") + dt.timedelta(days=i) for i in range(6)]


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> Path:
    landing = tmp_path_factory.mktemp("week")
    write(landing / "utl.toml", '[tolerance]\nBTC = "0.00000001"\n')
    for i, date in enumerate(["2024-03-04", *[d.isoformat() for d in WEEK]]):
        mark_file(landing, date, BTC=str(100 + i), **({"ETH": "2000"} if date == "2024-03-05" else {}))
    balances(landing, "acme", "mm1", "2024-03-04", BTC="1", USD="1000")
    balances(landing, "acme", "mm1", "2024-03-05", BTC="1.5", USD="949.95", ETH="0.1")
    balances(landing, "acme", "mm1", "2024-03-06", BTC="1.5", USD="949.95", ETH="0.1")
    # 03-07: no snapshot. 03-08: BTC off by exactly the tolerance: not a break.
    balances(landing, "acme", "mm1", "2024-03-08", BTC="1.50000001", USD="949.95", ETH="0.1")
    balances(landing, "acme", "mm1", "2024-03-09", BTC="1.5", USD="949.95")
    balances(landing, "acme", "mm1", "2024-03-10", BTC="1.5", USD="949.95", ETH="0.1")
    before = ccxt_trade("T1", "2024-03-04T23:00:00.000Z", "BTC/USD", "sell", "0.2", "99", "19.8")
    buy = ccxt_trade("T2", "2024-03-05T10:00:00.000Z", "BTC/USD", "buy", "0.5", "100", "50.0", "0.05", "USD")
    write(landing / "acme" / "mm1" / "trades" / "export-1.jsonl", before + buy)
    # A later export overlapping the first: T2 again, byte for byte.
    write(landing / "acme" / "mm1" / "trades" / "export-2.jsonl", buy)
    write(landing / "acme" / "ghost" / "trades" / "fills.jsonl",
          ccxt_trade("G1", "2024-03-05T11:00:00.000Z", "BTC/USD", "buy", "3", "100", "300"))
    return landing


@pytest.fixture(scope="module")
def week_run(week: Path) -> dict:
    return run(week, "2024-03-10")


def test_first_business_date_is_the_day_after_the_earliest_snapshot(week_run):
    prepared = week_run["prepared"]
    assert prepared.first_dates.rows() == [("acme", "mm1", day("2024-03-05"))]
    assert business_dates(prepared, day("2024-03-10")) == WEEK
    assert list(week_run["days"]) == WEEK
    # The opening snapshot opens one lot per asset at 03-04's mark (BTC 100).
    first = week_run["days"][day("2024-03-05")]
    assert first.lots.filter(pl.col("trade_id") == "acme/mm1/open/BTC").select("qty", "entry_price").rows() == [
        (D("1"), D("100"))]


def test_fills_before_the_first_business_date_are_not_booked(week_run):
    legs = week_run["prepared"].legs
    assert not legs["trade_id"].str.contains("T1").any()
    # Had the 03-04 sale been booked, BTC would be 1.3 and break every day.
    assert positions_of(week_run["days"][day("2024-03-05")])["BTC"] == D("1.5")


def test_overlapping_exports_book_a_fill_once(week_run):
    legs = week_run["prepared"].legs.filter(pl.col("account") == "mm1")
    assert legs.select("asset", "qty", "kind").sort("kind").rows() == [
        ("BTC", D("0.5"), "base"), ("USD", D("-0.05"), "fee"), ("USD", D("-50"), "quote")]
    assert legs["trade_id"].unique().to_list() == ["T2"]  # the venue's id as written (ledger.md)


def test_positions_every_day_even_without_a_snapshot(week_run):
    for d in WEEK:
        output = week_run["days"][d]
        got = {r["asset"]: (r["qty"], r["mark"], r["market_value"]) for r in output.positions.iter_rows(named=True)
               if r["qty"] != 0}
        btc_mark = D(100 + (d - day("2024-03-04")).days)
        assert got == {"BTC": (D("1.5"), btc_mark, D("1.5") * btc_mark), "USD": (D("949.95"), D(1), D("949.95"))}, d
        assert set(output.positions["business_date"]) == {d}
    # The venue's ETH, unknown to the ledger, is a position row at quantity 0 on the
    # dates whose snapshot holds it, and absent where no snapshot says so.
    eth_days = [d for d in WEEK if "ETH" in positions_of(week_run["days"][d])]
    assert eth_days == [day("2024-03-05"), day("2024-03-06"), day("2024-03-08"), day("2024-03-10")]
    assert all(positions_of(week_run["days"][d])["ETH"] == 0 for d in eth_days)


def test_a_date_without_a_snapshot_is_not_reconciled(week_run):
    no_snapshot = week_run["days"][day("2024-03-07")]
    assert no_snapshot.breaks.height == 0
    assert no_snapshot.cleared.height == 0


def test_first_seen_carries_while_broken_and_resets_after_clearing(week_run):
    days = week_run["days"]
    first = day("2024-03-05")
    assert breaks_of(days[day("2024-03-05")]) == {"ETH": ("missing_in_ledger", D("0.1"), first)}
    assert breaks_of(days[day("2024-03-06")]) == {"ETH": ("missing_in_ledger", D("0.1"), first)}
    # 03-07 had no snapshot: 03-08 is the account's next reconciled date, the run goes on.
    # BTC is 0.00000001 off on 03-08, exactly the tolerance: no break.
    assert breaks_of(days[day("2024-03-08")]) == {"ETH": ("missing_in_ledger", D("0.1"), first)}
    assert breaks_of(days[day("2024-03-09")]) == {}
    assert days[day("2024-03-09")].cleared.select("asset", "first_seen", "cleared_on").rows() == [
        ("ETH", first, day("2024-03-09"))]
    assert breaks_of(days[day("2024-03-10")]) == {"ETH": ("missing_in_ledger", D("0.1"), day("2024-03-10"))}


def test_break_value_uses_the_days_mark_or_none(week_run):
    with_mark = week_run["days"][day("2024-03-05")].breaks.row(0, named=True)
    assert (with_mark["mark"], with_mark["diff_value"]) == (D("2000"), D("200"))
    without = week_run["days"][day("2024-03-06")].breaks.row(0, named=True)
    assert (without["mark"], without["diff_value"]) == (None, None)


def test_an_account_without_a_snapshot_is_quarantined_and_not_booked(week_run):
    prepared = week_run["prepared"]
    ghost = prepared.quarantine.filter(pl.col("file").str.starts_with("acme/ghost/"))
    assert ghost.height == 1
    row = ghost.row(0, named=True)
    assert row["file"] == "acme/ghost/trades/fills.jsonl"
    assert "acme/ghost" in row["reason"] and "no balance snapshot" in row["reason"] and "2 legs" in row["reason"]
    assert prepared.legs.filter(pl.col("account") == "ghost").height == 0
    for output in week_run["days"].values():
        assert "ghost" not in output.positions["account"].to_list()


def test_running_twice_gives_identical_frames(week, week_run):
    again = run(week, "2024-03-10")
    assert again["prepared"].quarantine.equals(week_run["prepared"].quarantine)
    assert again["prepared"].legs.equals(week_run["prepared"].legs)
    for d, first in week_run["days"].items():
        second = again["days"][d]
        for name in ("positions", "lots", "pnl", "pnl_explain", "breaks", "cleared"):
            assert getattr(second, name).equals(getattr(first, name)), (d, name)


def test_explain_closes_every_day(week_run):
    for d, output in week_run["days"].items():
        for e in output.pnl_explain.iter_rows(named=True):
            assert e["unexplained"] == 0, (d, e)
    # 03-05: the opening 1 BTC @ 100 is worth 101; the 0.5 bought at 100 also 101: +1.5;
    # the 0.05 USD fee: -0.05.
    e = week_run["days"][day("2024-03-05")].pnl_explain.row(0, named=True)
    assert (e["total_pnl"], e["fees"], e["unrealized_change"]) == (D("1.45"), D("0.05"), D("1.5"))


# ---------------------------------------------------------------------------------------
# Accounts opening on different dates
# ---------------------------------------------------------------------------------------


def test_each_account_opens_the_day_after_its_own_earliest_snapshot(tmp_path):
    for date, price in [("2024-03-04", "100"), ("2024-03-05", "110"), ("2024-03-06", "120"), ("2024-03-07", "130")]:
        mark_file(tmp_path, date, BTC=price)
    balances(tmp_path, "acme", "early", "2024-03-04", BTC="1")
    balances(tmp_path, "other", "late", "2024-03-06", BTC="2")
    balances(tmp_path, "acme", "early", "2024-03-07", BTC="0.9")  # late has no 03-07 snapshot
    # late's 03-06 fill is in its opening snapshot; its 03-07 fill is booked.
    write(tmp_path / "other" / "late" / "trades" / "t.jsonl",
          ccxt_trade("L1", "2024-03-06T12:00:00.000Z", "BTC/USD", "buy", "1", "120", "120")
          + ccxt_trade("L2", "2024-03-07T12:00:00.000Z", "BTC/USD", "sell", "0.5", "130", "65"))
    result = run(tmp_path, "2024-03-07")
    assert sorted(result["prepared"].first_dates.rows()) == [
        ("acme", "early", day("2024-03-05")), ("other", "late", day("2024-03-07"))]
    assert list(result["days"]) == [day("2024-03-05"), day("2024-03-06"), day("2024-03-07")]
    assert positions_of(result["days"][day("2024-03-06")], "late") == {}
    assert positions_of(result["days"][day("2024-03-07")], "late") == {"BTC": D("1.5"), "USD": D("65")}
    # late's opening lot is priced at its own snapshot day's mark (03-06: 120).
    lots = result["days"][day("2024-03-07")].lots.filter(pl.col("book") == "other/late")
    assert lots.select("trade_id", "qty", "entry_price").rows() == [("other/late/open/BTC", D("1.5"), D("120"))]
    # The sale of 0.5 at 130 realized 0.5 x (130 - 120) = 5.
    pnl = result["days"][day("2024-03-07")].pnl.filter(pl.col("book") == "other/late", pl.col("asset") == "BTC")
    assert pnl["realized_pnl"].to_list() == [D("5")]
    # 03-07 reconciles early (snapshotted) and not late (not), though late holds BTC.
    breaks = result["days"][day("2024-03-07")].breaks
    assert breaks.select("venue", "account", "asset", "kind", "diff").rows() == [
        ("acme", "early", "BTC", "qty_mismatch", D("-0.1"))]


def test_a_venue_only_position_row_carries_the_days_mark(week_run):
    eth = week_run["days"][day("2024-03-05")].positions.filter(pl.col("asset") == "ETH").row(0, named=True)
    assert (eth["qty"], eth["mark"], eth["market_value"], eth["book"]) == (0, D("2000"), 0, "acme/mm1")


# ---------------------------------------------------------------------------------------
# Marks: missing, bad
# ---------------------------------------------------------------------------------------


def test_a_missing_mark_stops_the_run_with_the_same_message(tmp_path):
    mark_file(tmp_path, "2024-03-04", BTC="100")
    mark_file(tmp_path, "2024-03-05", BTC="101")
    mark_file(tmp_path, "2024-03-06", ETH="2000")  # no BTC mark while BTC is held
    balances(tmp_path, "acme", "mm1", "2024-03-04", BTC="1")
    prepared = prepare(tmp_path)
    done = []
    with pytest.raises(RunError) as caught:
        for output in run_dates(prepared, day("2024-03-06")):
            done.append(output.business_date)
    assert done == [day("2024-03-05")]  # the date before completed
    cause = caught.value.__cause__
    assert isinstance(cause, MissingMark)
    assert (cause.asset, cause.day) == ("BTC", day("2024-03-06"))
    assert str(caught.value) == f"2024-03-06: {cause}"
    assert "BTC" in str(caught.value) and "marks/2024-03-06.csv" in str(caught.value)


def test_bad_marks_are_quarantined_by_file_row_and_column(tmp_path):
    write(tmp_path / "marks" / "2024-03-05.csv", "asset,price\nBTC,65000.5\nETH,-1\nSOL,abc\nBNB,0\nXRP,\n")
    ingested = ingest_landing(tmp_path)
    got = {(r["file"], r["row"], r["column"]): r["reason"] for r in ingested.quarantine.iter_rows(named=True)}
    assert set(got) == {
        ("marks/2024-03-05.csv", 2, "price"),
        ("marks/2024-03-05.csv", 3, "price"),
        ("marks/2024-03-05.csv", 4, "price"),
        ("marks/2024-03-05.csv", 5, "price"),
    }
    assert "not positive" in got[("marks/2024-03-05.csv", 2, "price")]
    assert "not a decimal" in got[("marks/2024-03-05.csv", 3, "price")]
    assert "not positive" in got[("marks/2024-03-05.csv", 4, "price")]
    assert "missing" in got[("marks/2024-03-05.csv", 5, "price")]
    raw = dict(ingested.quarantine.select("row", "raw").rows())
    assert (raw[2], raw[3], raw[4]) == ("-1", "abc", "0")
    # The good row still books, exactly.
    assert ingested.marks.select("business_date", "asset", "price").rows() == [
        (day("2024-03-05"), "BTC", D("65000.5"))]


def test_through_a_date_before_the_first_business_date_is_refused(tmp_path):
    balances(tmp_path, "acme", "mm1", "2024-03-04", BTC="1")
    with pytest.raises(RunError, match="before the first business date 2024-03-05"):
        list(run_dates(prepare(tmp_path), day("2024-03-04")))


def test_no_landing_folder_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="no landing folder"):
        prepare(tmp_path / "nowhere")
