"""Transfers between own accounts and ledger exceptions, end to end through `utl eod`
(contract: ../shared/contracts/ledger.md; eod.md stays true).

One landing folder plants every case in its own accounts (all of venue ``acme``), and
``utl eod --date 2024-03-07`` runs it into a fresh database. Every expected number is worked
out by hand in the comments, from the planted rows and marks, not read from the code.

Marks (USD), 03-04 / 03-05 / 03-06 / 03-07:
  BTC 10,000 / 20,000 / 30,000 / 40,000     ETH 1,000 / 1,100 / 1,200 / 1,300
  SOL 100 / 110 / 120 / 130                 ADA 0.4 / 0.45 / 0.5 / 0.55

Every account opens from its 03-04 snapshot (first business date 03-05); an opening lot is
valued at the 03-04 mark and opened at 2024-03-05 00:00 UTC.

- a -> b, matched, stated fee, across midnight: a opens 1 BTC (lot @ 10,000), buys 1 BTC @
  20,000 on 03-05 10:00, withdraws 1.5 BTC on 03-05 22:00 with a stated network fee of
  0.0005 BTC; b receives 1.5 BTC on 03-06 02:00 and sells 1 BTC @ 40,000 on 03-07.
- f -> g, listed in transfers/moves.csv: f opens 5 ETH (@ 1,000) and withdraws 2 ETH on
  03-06 09:00; g receives 1.9 ETH at 11:00. The amounts differ by more than the tolerance
  (0), so only the listing matches them; the 0.1 ETH that did not arrive is the fee.
- c: withdraws 4 of its 10 SOL on 03-05 10:00; nothing arrives: in transit once the 24 h
  window has passed.
- d: a deposit of 1,000 ADA on 03-06 12:00 that no withdrawal explains.
- e: holds 2 ETH and sells 3 ETH @ 1,100 on 03-05 12:00: 1 ETH was never acquired.
- m: declared "margin"; sells 1 ETH it does not hold: a short it may hold, no exception.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from decimal import Decimal as D
from pathlib import Path

import polars as pl
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

UTC = dt.timezone.utc
DATES = ["2024-03-05", "2024-03-06", "2024-03-07"]
MARKS = {
    "2024-03-04": {"BTC": "10000", "ETH": "1000", "SOL": "100", "ADA": "0.4"},
    "2024-03-05": {"BTC": "20000", "ETH": "1100", "SOL": "110", "ADA": "0.45"},
    "2024-03-06": {"BTC": "30000", "ETH": "1200", "SOL": "120", "ADA": "0.5"},
    "2024-03-07": {"BTC": "40000", "ETH": "1300", "SOL": "130", "ADA": "0.55"},
}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def ledger_line(entry: str, when: str, kind: str, direction: str, asset: str, amount: str, ref: str | None = None,
                fee: str | None = None) -> str:
    """One ccxt ledger entry (JSON lines), numbers written as JSON numbers."""
    ts = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    fee_json = "null" if fee is None else f'{{"cost": {fee}, "currency": "{asset}"}}'
    return (f'{{"id": "{entry}", "timestamp": {int(ts.timestamp() * 1000)}, "datetime": "{when}", '
            f'"direction": "{direction}", "referenceId": "{ref or entry}", "type": "{kind}", "currency": "{asset}", '
            f'"amount": {amount}, "status": "ok", "fee": {fee_json}}}\n')


def fill_line(trade_id: str, when: str, symbol: str, side: str, amount: str, price: str, cost: str) -> str:
    """One ccxt unified trade (JSON lines)."""
    ts = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    return (f'{{"info": {{}}, "id": "{trade_id}", "order": "o-{trade_id}", "timestamp": {int(ts.timestamp() * 1000)}, '
            f'"datetime": "{when}", "symbol": "{symbol}", "type": "limit", "side": "{side}", "takerOrMaker": "maker", '
            f'"price": {price}, "amount": {amount}, "cost": {cost}, "fee": null, "fees": []}}\n')


def plant(landing: Path) -> None:
    write(landing / "utl.toml", '[transfers]\nwindow_hours = 24\namount_tolerance = "0"\n\n'
                                '[accounts]\n"acme/m" = "margin"\n')
    for day, prices in MARKS.items():
        write(landing / "marks" / f"{day}.csv", "asset,price\n" + "".join(f"{a},{p}\n" for a, p in prices.items()))
    opening = {"a": "BTC,1\nUSD,50000\n", "b": "USD,0\n", "c": "SOL,10\n", "d": "USD,0\n", "e": "ETH,2\n",
               "f": "ETH,5\n", "g": "USD,0\n", "m": "USD,1000\n"}
    for account, rows in opening.items():
        write(landing / "acme" / account / "balances" / "2024-03-04.csv", "asset,total\n" + rows)
    write(landing / "acme" / "a" / "trades" / "ledger.jsonl",
          ledger_line("A1", "2024-03-05T10:00:00.000Z", "trade", "in", "BTC", "1", "T1")
          + ledger_line("A2", "2024-03-05T10:00:00.000Z", "trade", "out", "USD", "20000", "T1")
          + ledger_line("A3", "2024-03-05T22:00:00.000Z", "transaction", "out", "BTC", "1.5", fee="0.0005"))
    write(landing / "acme" / "b" / "trades" / "ledger.jsonl",
          ledger_line("B1", "2024-03-06T02:00:00.000Z", "transaction", "in", "BTC", "1.5")
          + ledger_line("B2", "2024-03-07T09:00:00.000Z", "trade", "out", "BTC", "1", "S1")
          + ledger_line("B3", "2024-03-07T09:00:00.000Z", "trade", "in", "USD", "40000", "S1"))
    write(landing / "acme" / "c" / "trades" / "ledger.jsonl",
          ledger_line("C1", "2024-03-05T10:00:00.000Z", "transaction", "out", "SOL", "4"))
    write(landing / "acme" / "d" / "trades" / "ledger.jsonl",
          ledger_line("D1", "2024-03-06T12:00:00.000Z", "transaction", "in", "ADA", "1000"))
    write(landing / "acme" / "e" / "trades" / "fills.jsonl",
          fill_line("E1", "2024-03-05T12:00:00.000Z", "ETH/USD", "sell", "3", "1100", "3300"))
    write(landing / "acme" / "f" / "trades" / "ledger.jsonl",
          ledger_line("F1", "2024-03-06T09:00:00.000Z", "transaction", "out", "ETH", "2"))
    write(landing / "acme" / "g" / "trades" / "ledger.jsonl",
          ledger_line("G1", "2024-03-06T11:00:00.000Z", "transaction", "in", "ETH", "1.9"))
    write(landing / "acme" / "m" / "trades" / "fills.jsonl",
          fill_line("M1", "2024-03-05T12:00:00.000Z", "ETH/USD", "sell", "1", "1100", "1100"))
    write(landing / "transfers" / "moves.csv",
          "ts,asset,amount,from_venue,from_account,to_venue,to_account,tx_hash\n"
          "2024-03-06T09:00:00Z,ETH,2,acme,f,acme,g,0xabc\n"  # row 1: f -> g
          "2024-03-07T09:00:00Z,ETH,7,acme,f,acme,g,\n"  # row 2: f withdrew no 7 ETH that day
          "2024-03-07T10:00:00Z,ETH,two,acme,f,acme,g,\n")  # row 3: not a number


def utl(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("UTL_DATABASE_URL", "UTL_LANDING")}
    env["UTL_DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "utl.cli", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module", params=[None, "1"], ids=["whole", "one account a shard"])
def run(request: pytest.FixtureRequest, server_url: str, tmp_path_factory: pytest.TempPathFactory):
    """The planted landing run through 03-07 into a fresh database: (landing, url, storage),
    each date booked whole, and again with each account a shard of its own (UTL_SHARD_ROWS=1:
    the accounts a transfer joins share one, utl.shards) — every test holds for both."""
    with pytest.MonkeyPatch.context() as env:
        if request.param:
            env.setenv("UTL_SHARD_ROWS", request.param)
        else:
            env.delenv("UTL_SHARD_ROWS", raising=False)
        yield from _run(server_url, tmp_path_factory)


def _run(server_url: str, tmp_path_factory: pytest.TempPathFactory):
    landing = tmp_path_factory.mktemp("ledger") / "landing"
    plant(landing)
    name = f"utl_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server_url, dbname=name)
    storage = landing.parent / "storage"
    done = utl("eod", "--landing", str(landing), "--date", DATES[-1], "--storage", str(storage), url=url)
    assert done.returncode == 0, done.stderr
    try:
        yield landing, url, storage, done
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def rows(url: str, query: str, *params) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query, params).fetchall()


def exceptions(url: str) -> list[tuple]:
    return rows(url, "SELECT business_date::text, account, asset, kind, quantity, value, first_seen::text, age_days, "
                     "refs FROM utl.exceptions ORDER BY 1, 2, 3, 4")


def lots(storage: Path, day: str, book: str) -> list[tuple]:
    frame = pl.read_parquet(storage / "lots" / f"business_date={day}" / "part.parquet")
    return sorted((r["asset"], r["opened_ts"], r["qty"], r["entry_price"])
                  for r in frame.filter(pl.col("book") == book).iter_rows(named=True))


def pnl(url: str, day: str, book: str, asset: str) -> dict:
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        found = cursor.execute("SELECT * FROM utl.pnl WHERE business_date = %s AND book = %s AND asset = %s",
                               (day, book, asset)).fetchall()
    assert len(found) == 1, (day, book, asset)
    return found[0]


def at(day: str, hour: int = 0) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


# ---------------------------------------------------------------------------------------
# a -> b: a matched transfer with a stated network fee moves lots with their dates and costs
# ---------------------------------------------------------------------------------------


def test_a_matched_transfer_moves_the_lots_with_their_dates_and_costs(run):
    _, url, storage, _ = run
    # 03-05: a holds 1 @ 10,000 (opened 03-05 00:00) and 1 @ 20,000 (03-05 10:00); the 1.5 BTC
    # withdrawal takes them FIFO: all of the first, 0.5 of the second. The stated fee (0.0005)
    # is then a disposal from what is left: 0.5 - 0.0005 = 0.4995 @ 20,000 stay with a.
    assert lots(storage, "2024-03-05", "acme/a") == [("BTC", at("2024-03-05", 10), D("0.4995"), D("20000"))]
    assert lots(storage, "2024-03-05", "acme/b") == []  # in transit over midnight
    # 03-06 02:00 the deposit of 1.5 arrives in b: the same pieces, same dates, same costs.
    assert lots(storage, "2024-03-06", "acme/b") == [("BTC", at("2024-03-05"), D("1"), D("10000")),
                                                    ("BTC", at("2024-03-05", 10), D("0.5"), D("20000"))]
    # Nothing of it is a disposal: a's only realized BTC PnL is the fee's, 0.0005 x (20,000 -
    # 20,000) = 0 on 03-05, and its fee is 0.0005 x 20,000 = 10.
    a = pnl(url, "2024-03-05", "acme/a", "BTC")
    assert (a["realized_pnl"], a["fees"]) == (D("0"), D("10"))
    # The transfer's legs are flows at the cost of what moved: -(1 x 10,000 + 0.5 x 20,000).
    assert a["external_flows"] == D("-20000")
    assert pnl(url, "2024-03-06", "acme/b", "BTC")["external_flows"] == D("20000")


def test_a_later_sale_from_the_receiver_realizes_against_the_original_cost(run):
    _, url, storage, _ = run
    # b sells 1 BTC at 40,000 on 03-07: FIFO closes the 03-05 00:00 lot of cost 10,000.
    assert pnl(url, "2024-03-07", "acme/b", "BTC")["realized_pnl"] == D("1") * (D("40000") - D("10000"))
    assert lots(storage, "2024-03-07", "acme/b") == [("BTC", at("2024-03-05", 10), D("0.5"), D("20000"))]


def test_every_book_explains_its_pnl_with_transfers(run):
    _, url, _, _ = run
    unexplained = rows(url, "SELECT business_date::text, book, unexplained FROM utl.pnl_explain WHERE unexplained <> 0")
    assert unexplained == []


# ---------------------------------------------------------------------------------------
# f -> g: listed in transfers/*.csv
# ---------------------------------------------------------------------------------------


def test_a_listed_transfer_is_matched_as_listed_and_what_did_not_arrive_is_the_fee(run):
    _, url, storage, _ = run
    # 2 ETH left f, 1.9 arrived in g: g gets 1.9 of f's opening lot (cost 1,000).
    assert lots(storage, "2024-03-06", "acme/g") == [("ETH", at("2024-03-05"), D("1.9"), D("1000"))]
    assert lots(storage, "2024-03-06", "acme/f") == [("ETH", at("2024-03-05"), D("3"), D("1000"))]
    # The 0.1 that did not arrive is disposed of by f at 03-06's mark (1,200):
    # realized 0.1 x (1,200 - 1,000) = 20, fee 0.1 x 1,200 = 120.
    f = pnl(url, "2024-03-06", "acme/f", "ETH")
    assert (f["realized_pnl"], f["fees"]) == (D("20"), D("120"))


def test_listed_rows_that_name_no_withdrawal_or_are_bad_are_quarantined(run):
    _, url, _, _ = run
    found = rows(url, "SELECT file, \"row\", \"column\", reason FROM utl.quarantine WHERE file = 'transfers/moves.csv' "
                      "ORDER BY \"row\"")
    assert [(f, r, c) for f, r, c, _ in found] == [("transfers/moves.csv", 2, None), ("transfers/moves.csv", 3, "amount")]
    assert "no withdrawal" in found[0][3]
    assert "not a decimal" in found[1][3]


# ---------------------------------------------------------------------------------------
# Exceptions: in_transit, external_deposit, missing_acquisition (and none for margin)
# ---------------------------------------------------------------------------------------


def test_exceptions_are_exactly_the_planted_cases(run):
    _, url, _, _ = run
    sol = "acme/c/trades/ledger.jsonl:1"
    ada = "acme/d/trades/ledger.jsonl:1"
    eth = "acme/e/trades/fills.jsonl:1"
    assert exceptions(url) == [
        # e sold 3 ETH holding 2: 1 uncovered, at each day's mark, from 03-05 on.
        ("2024-03-05", "e", "ETH", "missing_acquisition", D("1"), D("1100"), "2024-03-05", 0, eth),
        # c's 4 SOL left 03-05 10:00; the window ends 03-06 10:00, before the end of 03-06.
        ("2024-03-06", "c", "SOL", "in_transit", D("4"), D("4") * D("120"), "2024-03-06", 1, sol),
        # d's 1,000 ADA: an acquisition at 03-06's mark (0.5).
        ("2024-03-06", "d", "ADA", "external_deposit", D("1000"), D("500"), "2024-03-06", 0, ada),
        ("2024-03-06", "e", "ETH", "missing_acquisition", D("1"), D("1200"), "2024-03-05", 1, eth),
        ("2024-03-07", "c", "SOL", "in_transit", D("4"), D("4") * D("130"), "2024-03-06", 2, sol),
        ("2024-03-07", "e", "ETH", "missing_acquisition", D("1"), D("1300"), "2024-03-05", 2, eth),
    ]


def test_an_external_deposit_is_an_acquisition_at_the_days_mark(run):
    _, _, storage, _ = run
    assert lots(storage, "2024-03-06", "acme/d") == [("ADA", at("2024-03-06", 12), D("1000"), D("0.5"))]


def test_a_missing_acquisition_marks_that_days_pnl_of_its_book_and_asset_provisional(run):
    _, url, _, _ = run
    marked = rows(url, "SELECT business_date::text, book, asset FROM utl.pnl WHERE provisional ORDER BY 1, 2, 3")
    assert marked == [(day, "acme/e", "ETH") for day in DATES]


def test_a_margin_account_may_go_short_without_an_exception(run):
    _, url, _, _ = run
    assert rows(url, "SELECT qty FROM utl.positions WHERE business_date = '2024-03-07' AND account = 'm' "
                     "AND asset = 'ETH'") == [(D("-1"),)]
    assert rows(url, "SELECT count(*) FROM utl.exceptions WHERE account = 'm'") == [(0,)]


def test_positions_stay_the_sums_of_legs(run):
    _, url, _, _ = run
    # eod.md: a transfer changes no ledger quantity rule. a: 1 + 1 - 1.5 - 0.0005; b: 1.5 - 1.
    held = dict(((a, s), q) for a, s, q in rows(
        url, "SELECT account, asset, qty FROM utl.positions WHERE business_date = '2024-03-07' AND asset = 'BTC'"))
    assert held == {("a", "BTC"): D("0.4995"), ("b", "BTC"): D("0.5")}


def test_utl_breaks_shows_exceptions_beside_the_breaks_and_the_csv_keeps_the_contract(run):
    _, url, _, _ = run
    shown = utl("breaks", "--date", "2024-03-07", url=url)
    assert shown.returncode == 0, shown.stderr
    assert "ledger exceptions on 2024-03-07: 1 in_transit, 1 missing_acquisition" in shown.stdout
    csv = utl("breaks", "--date", "2024-03-07", "--format", "csv", url=url)
    assert csv.stdout.splitlines()[0].split(",")[:9] == ["business_date", "venue", "account", "asset", "ledger_qty",
                                                          "venue_qty", "diff", "tolerance", "first_seen"]
    assert len(csv.stdout.splitlines()) == 1  # no snapshot after the opening one: no breaks


def test_the_run_summary_lists_the_exceptions(run):
    *_, done = run
    assert "ledger exceptions: 1 in_transit, 1 missing_acquisition" in done.stdout


def test_the_report_lists_the_exceptions_beside_the_breaks(run, tmp_path):
    landing, url, _, _ = run
    out = tmp_path / "report.html"
    done = utl("report", "--date", "2024-03-07", "--landing", str(landing), "--out", str(out), url=url)
    assert done.returncode == 0, done.stderr
    html = out.read_text(encoding="utf-8")
    assert "Ledger exceptions (2)" in html
    # c's 4 SOL in transit, worth 4 x 130 = 520.00 at 03-07's mark, 2 days old.
    section = html[html.index("Ledger exceptions (2)"):]
    assert "in_transit" in section and "520.00" in section and "acme/c/trades/ledger.jsonl:1" in section


def test_the_exceptions_are_in_the_parquet_storage_for_duckdb(run):
    from utl.analytics import connect

    *_, storage, _ = run
    counted = connect(storage).sql("SELECT kind, count(*) FROM exceptions GROUP BY kind ORDER BY kind").fetchall()
    assert counted == [("external_deposit", 1), ("in_transit", 2), ("missing_acquisition", 3)]


def test_a_rerun_from_a_middle_date_gives_the_same_exceptions_and_pnl(run):
    landing, url, storage, _ = run
    before = exceptions(url), rows(url, "SELECT * FROM utl.pnl ORDER BY 1, 2, 3")
    # The 03-06 marks in another row order (same prices) make 03-06 and 03-07 stale: they run
    # again from 03-05's carried state, with c's and a's withdrawals pending over midnight.
    path = landing / "marks" / "2024-03-06.csv"
    header, *lines = path.read_text().splitlines()
    path.write_text("\n".join([header, *reversed(lines)]) + "\n", encoding="utf-8")
    done = utl("eod", "--landing", str(landing), "--date", DATES[-1], "--storage", str(storage), url=url)
    assert done.returncode == 0, done.stderr
    assert "(2 run now)" in done.stdout
    assert (exceptions(url), rows(url, "SELECT * FROM utl.pnl ORDER BY 1, 2, 3")) == before


def test_exceptions_read_leg_refs_the_same_whole_or_as_a_scan_of_stored_parts(tmp_path):
    """The stored day hands the refs over as a LazyFrame (a scan of the part files): the
    exceptions that name a leg's file and row must be the same as from the frame."""
    from utl.exceptions import fee_assets_assumed, missing_acquisitions
    from utl.schemas import DAY_LEGS, LEG_REFS
    from utl.settings import Settings

    day = dt.date(2024, 3, 5)
    at = dt.datetime(2024, 3, 5, 9, tzinfo=dt.timezone.utc)
    legs = pl.DataFrame([
        ("v", "a", "t1/base", at, "BTC", D("-2"), "base", "t1", None, None, day),
        ("v", "a", "t1/fee", at, "BNB", D("-0.1"), "fee", "t1", None, None, day),
        ("v", "a", "t2/base", at + dt.timedelta(hours=1), "BTC", D("-1"), "base", "t2", None, None, day),
        ("v", "b", "t3/fee", at, "BNB", D("-0.2"), "fee", "t3", None, None, day),
    ], schema=DAY_LEGS, orient="row")
    refs = pl.DataFrame([("v", "a", "t1/base", "fills.csv", 2, False), ("v", "a", "t1/fee", "fills.csv", 2, True),
                         ("v", "a", "t2/base", "fills.csv", 3, False), ("v", "b", "t3/fee", "b.csv", 7, True)],
                        schema=LEG_REFS, orient="row")
    stored = tmp_path / "leg_refs"
    stored.mkdir()
    refs.head(2).write_parquet(stored / "part-00000.parquet")
    refs.tail(2).write_parquet(stored / "part-00001.parquet")
    scanned = pl.scan_parquet(sorted(stored.glob("*.parquet")))
    start = pl.DataFrame([("v", "a", "BTC", D("1"))], schema={"venue": pl.String, "account": pl.String,
                                                               "asset": pl.String, "qty": pl.Decimal(38, 18)}, orient="row")
    end = start.with_columns(qty=pl.lit(D("-2")).cast(pl.Decimal(38, 18)))
    previous = pl.DataFrame(schema={"venue": pl.String, "account": pl.String, "asset": pl.String, "kind": pl.String,
                                    "first_ts": pl.Datetime("us", "UTC"), "refs": pl.String})
    for found in (lambda r: fee_assets_assumed(day, legs, r),
                  lambda r: missing_acquisitions(day, start, end, legs, r, previous, Settings())):
        whole, lazy = found(refs), found(scanned)
        assert whole.height > 0
        assert whole.equals(lazy)
    assert sorted(fee_assets_assumed(day, legs, scanned)["refs"].to_list()) == ["b.csv:7", "fills.csv:2"]
    assert missing_acquisitions(day, start, end, legs, scanned, previous, Settings())["refs"].to_list() == ["fills.csv:2"]
