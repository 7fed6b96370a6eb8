"""The sample landing's derivative part (issue 14, contract: derivatives.md).

Two halves:

- the generator's own model (``data_samples/make_landing.py``, "derivatives"), checked
  against figures worked by hand below: one instrument of each kind;
- ``utl eod`` on the sample landing: ``utl.derivative_positions`` and the position breaks
  must equal ``landing_expected.json``. This half needs the derivative wiring (the readers,
  ingest and the day step of issue 14); it runs against the real commands and PostgreSQL.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
LANDING = SAMPLES / "landing"
EXPECTED = json.loads((SAMPLES / "landing_expected.json").read_text(encoding="utf-8"))
DATES = EXPECTED["business_dates"]
D = Decimal


def generator():
    spec = importlib.util.spec_from_file_location("make_landing", SAMPLES / "make_landing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_landing"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


ML = generator()


def row(day: str, venue: str, account: str, instrument: str) -> dict:
    (found,) = [r for r in EXPECTED["derivative_positions"][day]
                if (r["venue"], r["account"], r["instrument"]) == (venue, account, instrument)]
    return found


def cash(day: str, venue: str, instrument: str, kind: str) -> Decimal:
    return sum((D(c["qty"]) for c in EXPECTED["derivative_cash"][day]
                if (c["venue"], c["instrument"], c["kind"]) == (venue, instrument, kind)), D(0))


def spot(day: str, venue: str, account: str, asset: str) -> dict:
    (found,) = [p for p in EXPECTED["positions"][day] if (p["venue"], p["account"], p["asset"]) == (venue, account, asset)]
    return found


# ---------------------------------------------------------------- the generator's model, by hand


def test_linear_perpetual_average_entry_reduce_and_flip() -> None:
    """binance/futures BTC/USDT:USDT, contract size 1 BTC (USDⓈ-M: quantity in BTC).

    buy 0.5 @ 66000                 entry 66000
    buy 0.3 @ 66400                 entry (0.5·66000 + 0.3·66400) / 0.8 = 52920 / 0.8 = 66150
    sell 0.2 @ 66500 (reduce)       realized 0.2·(66500 − 66150) = 70; entry stays 66150
    sell 1.0 @ 67000 (flip)         realized 0.6·(67000 − 66150) = 510; short 0.4 restarts at 67000
    buy 0.15 @ 67200 (reduce short) realized 0.15·(67000 − 67200) = −30; short 0.25 at 67000
    End of 2024-03-07 at mark 67060: unrealized −0.25·(67060 − 67000) = −15 USDT,
    at USDT 0.9999 = −14.9985 USD; delta −0.25 BTC, at BTC 67050 = −16762.5 USD.
    """
    perp = ML.Spec("binance", "BTC/USDT:USDT", "BTCUSDT", "swap", "USDT", D(1), False)
    legs = [(D("0.5"), D(66000)), (D("0.3"), D(66400)), (D("-0.2"), D(66500)), (D(-1), D(67000)), (D("0.15"), D(67200))]
    walked = ML.walk_entry(legs, perp)
    assert [w.entry for w in walked] == [D(66000), D(66150), D(66150), D(67000), D(67000)]
    assert [w.realized for w in walked] == [0, 0, D(70), D(510), D(-30)]
    assert [w.qty for w in walked] == [D("0.5"), D("0.8"), D("0.6"), D("-0.4"), D("-0.25")]
    last = row("2024-03-07", "binance", "futures", "BTC/USDT:USDT")
    assert (D(last["qty"]), D(last["entry_price"]), D(last["mark"]), D(last["unrealized_pnl"])) == (D("-0.25"), D(67000), D(67060), D(-15))
    assert (D(last["unrealized_pnl_usd"]), D(last["delta"]), D(last["delta_usd"])) == (D("-14.9985"), D("-0.25"), D("-16762.5"))
    assert [D(row(d, "binance", "futures", "BTC/USDT:USDT")["realized_pnl"]) for d in DATES] == [D(70), D(510), D(-30)]


def test_inverse_future_averages_on_one_over_price_and_runs_from_the_settlement() -> None:
    """deribit/main BTC/USD:BTC-240329 (BTC-29MAR24): USD quantity, contract size 1, settles in BTC.

    buy 20000 @ 67200, buy 10000 @ 67800: harmonic mean
      30000 / (20000/67200 + 10000/67800) = 30000·67200·67800 / (20000·67800 + 10000·67200)
      = 136684800000000 / 2028000000 = 11390400 / 169 = 67398.81656804733727810650887…
      → 18 places, half-even: 67398.816568047337278107 (the arithmetic mean would be 67400).
    End of 2024-03-06, mark 67500: unrealized 30000·(1/E − 1/67500)
      = 0.4451116729… − 0.4444444444… = 0.000667228543334738 BTC; delta 30000/67500 = 0.444…444 (18 places).
    Settlement 2024-03-07 08:00 at 67600: 30000·(1/E − 1/67600) = 0.4451116729… − 0.4437869822…
      = 0.0013246907… → Deribit's 8 places 0.00132469 BTC (a settle-asset leg).
    End of 2024-03-07, mark 67900, from the settlement price: 30000·(1/67600 − 1/67900)
      = 30000·300 / (67600·67900) = 9000000 / 4590040000 = 0.00196076722642939930… → 0.001960767226429399;
    entry_price stays the average entry.
    """
    future = ML.Spec("deribit", "BTC/USD:BTC-240329", "BTC-29MAR24", "future", "BTC", D(1), True, date(2024, 3, 29))
    (_, second) = ML.walk_entry([(D(20000), D(67200)), (D(10000), D(67800))], future)
    assert second.entry == D("67398.816568047337278107")
    assert cash("2024-03-07", "deribit", "BTC/USD:BTC-240329", "settlement") == D("0.00132469")
    day6, day7 = (row(d, "deribit", "main", "BTC/USD:BTC-240329") for d in ("2024-03-06", "2024-03-07"))
    assert (D(day6["unrealized_pnl"]), D(day6["delta"])) == (D("0.000667228543334738"), D("0.444444444444444444"))
    assert (D(day7["entry_price"]), D(day7["reference_price"]), D(day7["unrealized_pnl"])) == (
        D("67398.816568047337278107"), D(67600), D("0.001960767226429399"))
    # Fees Deribit states to 8 places: 20000/67200·0.0005 = 0.000148809… → 0.00014881;
    # 10000/67800·0.0005 = 0.0000737463… → 0.00007375; together 0.00022256 BTC on 2024-03-06.
    assert D(day6["fees"]) == D("0.00022256")
    assert D(day7["realized_pnl"]) == D("0.00132469")  # the settlement is the day's realized PnL


def test_option_premium_and_expiry_at_its_delivery_row() -> None:
    """deribit/main BTC/USD:BTC-240306-64000-C (BTC-6MAR24-64000-C), size 1 BTC, premium in BTC.

    2024-03-05 buy 0.5 @ 0.0330: premium −0.5·0.0330 = −0.0165 BTC, fee 0.00015 BTC.
    End of 2024-03-05, mark 0.0335: unrealized 0.5·0.0335 − 0.5·0.0330 = 0.00025 BTC
      (at BTC 66100: 16.525 USD); delta the venue's 0.36 (0.72 a unit): 0.36·66100 = 23796 USD.
    2024-03-06 08:00 delivery at index 65536: (65536 − 64000) / 65536 = 1536/65536 = 0.0234375 BTC a
      unit, cash 0.5·0.0234375 = 0.01171875 BTC; over its life 0.5·(0.0234375 − 0.0330) = −0.00478125 BTC
      (= −0.0165 premium + 0.01171875 delivery). Flat after: no row on 2024-03-06.
    """
    call = ML.Spec("deribit", "BTC/USD:BTC-240306-64000-C", "BTC-6MAR24-64000-C", "option", "BTC", D(1), True,
                   date(2024, 3, 6), D(64000), "call")
    (bought, delivered) = ML.walk_entry([(D("0.5"), D("0.0330")), (D("-0.5"), D("0.0234375"))], call)
    assert (bought.entry, delivered.qty, delivered.realized) == (D("0.0330"), 0, D("-0.00478125"))
    day5 = row("2024-03-05", "deribit", "main", call.symbol)
    assert (D(day5["unrealized_pnl"]), D(day5["unrealized_pnl_usd"]), D(day5["delta"]), D(day5["delta_usd"])) == (
        D("0.00025"), D("16.525"), D("0.36"), D(23796))
    assert cash("2024-03-05", "deribit", call.symbol, "premium") == D("-0.0165")
    assert cash("2024-03-06", "deribit", call.symbol, "delivery") == D("0.01171875")
    assert not [r for r in EXPECTED["derivative_positions"]["2024-03-06"] if r["instrument"] == call.symbol]


def test_funding_stamped_at_midnight_belongs_to_the_day_it_starts() -> None:
    """binance/futures BTC/USDT:USDT: 0.01% of the position at the funding mark, longs pay.

    2024-03-05 08:00 long 0.5 @ 66050: −3.3025; 16:00 long 0.6 @ 66480: −3.9888 → day −7.2913.
    2024-03-06 00:00:00 long 0.6 @ 66200: −3.972 (this day's, not 2024-03-05's);
      08:00 long 0.6 @ 66700: −4.002; 16:00 short 0.4 @ 66900: +2.676 → day −5.298.
    The ledger writes the midnight one as local 24-03-06 08:00:00 (UTC+8 in the file name).
    """
    fundings = [D(row(d, "binance", "futures", "BTC/USDT:USDT")["funding"]) for d in DATES[:2]]
    assert fundings == [D("-7.2913"), D("-5.298")]
    ledger = next(LANDING.glob("binance/futures/trades/*Transaction*"))
    assert "24-03-06 08:00:00,FUNDING_FEE,-3.972,USDT,BTCUSDT," in ledger.read_text()


def test_settle_asset_balances_move_with_the_derivative_cash_and_reconcile() -> None:
    """binance/futures USDT through 2024-03-07: 100000 opening
    − fees (16.5 + 3.984 + 6.65 + 6.98 + 33.5 + 1.402 + 2.016 = 71.032)
    + realized (70 + 510 − 30 = 550) + funding (−7.2913 − 5.298 + 7.03925 = −5.55005)
    = 100473.41795; the venue's wallet balance says the same (no balance break)."""
    usdt = spot("2024-03-07", "binance", "futures", "USDT")
    assert (D(usdt["qty"]), D(usdt["venue_qty"])) == (D("100473.41795"), D("100473.41795"))
    # deribit/main BTC: 2 − 0.0165 − 0.00015 + 0.01171875 − 0.00014881 − 0.00007375 + 0.00132469 = 1.99617088
    btc = spot("2024-03-07", "deribit", "main", "BTC")
    assert (D(btc["qty"]), D(btc["venue_qty"])) == (D("1.99617088"), D("1.99617088"))
    derivative_accounts = {("binance", "futures"), ("okx", "trading"), ("deribit", "main")}
    assert not [b for day in EXPECTED["breaks"].values() for b in day if (b["venue"], b["account"]) in derivative_accounts
                and b["subject"] == "balance"]


def test_the_one_planted_position_break() -> None:
    """The ledger is short 0.25 BTC/USDT:USDT on binance/futures; the venue's positionRisk
    of 2024-03-07 says −0.240: diff +0.01 beyond the symbol's tolerance 0.001."""
    position = [b for day in EXPECTED["breaks"].values() for b in day if b["subject"] == "position"]
    assert position == [{"business_date": "2024-03-07", "venue": "binance", "account": "futures", "asset": "BTC/USDT:USDT",
                         "ledger_qty": "-0.25", "venue_qty": "-0.24", "diff": "0.01", "tolerance": "0.001",
                         "first_seen": "2024-03-07", "subject": "position"}]
    risk = json.loads((LANDING / "binance/futures/positions/2024-03-07.json").read_text())
    assert [r["positionAmt"] for r in risk if r["symbol"] == "BTCUSDT"] == ["-0.240"]


def test_okx_flip_in_two_bills_and_contract_size() -> None:
    """okx/trading BTC/USDT:USDT, 0.01 BTC a contract: short 30 @ 66200, buy 10 @ 65900
    (realized 10·0.01·(66200 − 65900) = 30), short 20 more @ 67100 (entry (20·66200 + 20·67100)/40
    = 66650), then one buy of 50 @ 67300 billed as Close short 40 (realized 40·0.01·(66650 − 67300)
    = −260) and Open long 10 (entry 67300). End of 2024-03-07 at 67060: 10·0.01·(67060 − 67300) = −24."""
    day7 = row("2024-03-07", "okx", "trading", "BTC/USDT:USDT")
    assert (D(day7["qty"]), D(day7["entry_price"]), D(day7["realized_pnl"]), D(day7["unrealized_pnl"]), D(day7["delta"])) == (
        D(10), D(67300), D(-260), D(-24), D("0.1"))
    assert D(row("2024-03-06", "okx", "trading", "BTC/USDT:USDT")["entry_price"]) == D(66650)


def test_utl_building_blocks_agree_with_the_generator_model() -> None:
    """utl.derivatives.entry.average_entry and valuation.value_positions (on main, not yet
    wired) over the sample's own instrument legs give the expected entry, unrealized PnL and
    delta of every row: two independent computations of one contract."""
    import polars as pl

    from utl.decimals import DECIMAL
    from utl.derivatives.entry import average_entry
    from utl.derivatives.schemas import INSTRUMENT_LEGS
    from utl.derivatives.valuation import value_positions

    books = ML.derivative_books(ML.Landing())
    checked = 0
    for day in DATES:
        end = ML.end_of(date.fromisoformat(day))
        for book in books:
            for spec in sorted({f.spec for f in book.fills}, key=lambda s: s.symbol):
                legs = [leg for leg in ML.instrument_legs(book, spec) if leg[0] < end]
                frame = pl.DataFrame(
                    [{"venue": spec.venue, "account": book.acct.account, "instrument": spec.symbol, "ts": ts,
                      "leg_id": f"{i}", "qty": q, "price": p, "type": spec.type, "inverse": spec.inverse,
                      "contract_size": spec.size} for i, (ts, q, p, _) in enumerate(legs)],
                    schema={**INSTRUMENT_LEGS, "type": pl.String, "inverse": pl.Boolean, "contract_size": DECIMAL})
                expected = [r for r in EXPECTED["derivative_positions"][day]
                            if (r["venue"], r["account"], r["instrument"]) == (spec.venue, book.acct.account, spec.symbol)]
                if not legs or not expected or D(expected[0]["qty"]) == 0:
                    continue
                (want,) = expected
                (held,) = average_entry(frame).positions.iter_rows(named=True)
                assert (held["qty"], held["entry_price"]) == (D(want["qty"]), D(want["entry_price"])), (day, spec.symbol)
                positions = pl.DataFrame([{
                    "venue": spec.venue, "account": book.acct.account, "instrument": spec.symbol, "qty": held["qty"],
                    "entry_price": held["entry_price"], "type": spec.type, "inverse": spec.inverse,
                    "contract_size": spec.size, "base": spec.base, "settle": spec.settle, "mark": D(want["mark"]),
                    "reference_price": D(want["reference_price"]),
                    "snapshot_delta": D(want["delta"]) if spec.type == "option" else None,
                }], schema_overrides={c: DECIMAL for c in ("qty", "entry_price", "contract_size", "mark", "reference_price",
                                                           "snapshot_delta")})
                marks = pl.DataFrame({"asset": ["BTC", "USDT"], "mark": [ML.MARKS[date.fromisoformat(day)][a] for a in ("BTC", "USDT")]},
                                     schema={"asset": pl.String, "mark": DECIMAL})
                (valued,) = value_positions(positions, marks).iter_rows(named=True)
                for column in ("unrealized_pnl", "unrealized_pnl_usd", "delta", "delta_usd"):
                    assert valued[column] == D(want[column]), (day, spec.symbol, column, valued[column], want[column])
                checked += 1
    assert checked == len([r for d in DATES for r in EXPECTED["derivative_positions"][d]])


# ---------------------------------------------------------------- utl eod on the sample landing

COLUMNS = ("type", "settle_asset", "qty", "venue_qty", "contract_size", "entry_price", "venue_entry_price", "mark",
           "unrealized_pnl", "unrealized_pnl_usd", "realized_pnl", "funding", "fees", "delta", "delta_usd")


def number(text: str | None) -> Decimal | str | None:
    if text is None:
        return None
    try:
        return D(text)
    except ArithmeticError:
        return text


def test_eod_on_the_sample_gives_the_expected_derivative_positions_and_position_breaks(database: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("UTL_DATABASE_URL", "UTL_LANDING")}
    env["UTL_DATABASE_URL"] = database
    done = subprocess.run([sys.executable, "-m", "utl.cli", "eod", "--landing", str(LANDING), "--date", DATES[-1],
                           "--storage", str(tmp_path / "storage")], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    with psycopg.connect(database) as conn:
        got = conn.execute(
            f"SELECT business_date::text, venue, account, instrument, {', '.join(COLUMNS)} FROM utl.derivative_positions "
            "ORDER BY 1, 2, 3, 4").fetchall()
        breaks = conn.execute(
            "SELECT business_date::text, venue, account, asset, ledger_qty, venue_qty, diff, tolerance, first_seen::text "
            "FROM utl.breaks WHERE subject = 'position' ORDER BY 1, 2, 3, 4").fetchall()
        subjects = conn.execute("SELECT DISTINCT subject FROM utl.breaks ORDER BY 1").fetchall()
        quarantine = conn.execute('SELECT file, "row", "column" FROM utl.quarantine').fetchall()
        pnl = conn.execute(
            "SELECT business_date::text, book, asset, unrealized_pnl, market_value_start, market_value_end, total_pnl "
            "FROM utl.pnl WHERE asset LIKE '%:%' ORDER BY 1, 2, 3").fetchall()
        unexplained = conn.execute("SELECT max(abs(unexplained)) FROM utl.pnl_explain").fetchone()[0]
        settle = conn.execute(
            "SELECT business_date::text, venue, account, asset, qty FROM utl.positions "
            "WHERE (venue, account) IN (('binance', 'futures'), ('okx', 'trading'), ('deribit', 'main')) ORDER BY 1, 2, 3, 4"
        ).fetchall()
    expected = sorted(
        (r["business_date"], r["venue"], r["account"], r["instrument"], *(number(r[c]) for c in COLUMNS))
        for day in DATES for r in EXPECTED["derivative_positions"][day]
    )
    assert [tuple(r) for r in got] == expected
    assert [tuple(r) for r in breaks] == sorted(
        (b["business_date"], b["venue"], b["account"], b["asset"], D(b["ledger_qty"]), D(b["venue_qty"]), D(b["diff"]),
         D(b["tolerance"]), b["first_seen"])
        for day in DATES for b in EXPECTED["breaks"][day] if b["subject"] == "position")
    assert subjects == [("balance",), ("position",)]
    # Every positions, specs and marks file is read: only the planted spot row is quarantined.
    assert quarantine == [(q["file"], q["row"], q["column"]) for q in EXPECTED["quarantine"]]
    # utl.pnl has a line per (book, instrument): its unrealized PnL is the table's in USD
    # (the sample's books are their accounts), each line starts from the day before's end
    # value, and every book's explain still ties.
    held = {(r["business_date"], f'{r["venue"]}/{r["account"]}', r["instrument"]): D(r["unrealized_pnl_usd"])
            for day in DATES for r in EXPECTED["derivative_positions"][day] if D(r["qty"]) != 0}
    lines = {(d, b, a): (u, s, e, t) for d, b, a, u, s, e, t in pnl}
    assert held and {k: lines[k][0] for k in held} == held
    assert all(u == 0 for k, (u, *_) in lines.items() if k not in held)
    for (d, b, a), (_, start, _, _) in lines.items():
        if d != DATES[0]:
            assert start == lines.get((DATES[DATES.index(d) - 1], b, a), (0, 0, 0, 0))[2], (d, b, a)
    assert unexplained is not None and unexplained <= D("1e-9")
    # The settle assets book the ledgers' cash (instruments never appear in utl.positions).
    assert [tuple(r) for r in settle] == sorted(
        (day, p["venue"], p["account"], p["asset"], D(p["qty"])) for day in DATES for p in EXPECTED["positions"][day]
        if (p["venue"], p["account"]) in (("binance", "futures"), ("okx", "trading"), ("deribit", "main")))
