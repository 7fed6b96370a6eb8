"""Derivatives through :func:`utl.day.step`: each formula worked by hand (derivatives.md).

The account ``binance/fut`` opens on D1 from a D0 snapshot holding USDT 1000 and BTC 1
(``daybook.py``); USDT is worth 1 USD and BTC 60000 USD unless a test says otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest

from tests.derivatives.daybook import (
    D0, D1, D2, D3, FUTURE, INVERSE, LINEAR, OPTION, SPECS, balances, cash, day_inputs, fills, first_day,
    instrument_marks, positions, row,
)
from utl.day import DayState, step
from utl.derivatives.instruments import MissingSpec
from utl.marks import MissingMark
from utl.settings import Settings


def spot(state: DayState, asset: str) -> D:
    return row(state.positions, asset=asset)["qty"]


def test_linear_fills_only_average_entry_computed_realized_and_unrealized() -> None:
    # +2 @ 100, +2 @ 200 → entry (2·100 + 2·200)/4 = 150; -1 @ 300 realizes 1·1·(300 − 150) = 150 USDT
    # (a fills-only account: computed, booked as a USDT leg), leaving +3 @ 150. Mark 250:
    # unrealized 3·1·(250 − 150) = 300 USDT = 300 USD; delta 3·1 = 3 BTC = 180000 USD at 60000.
    # Fees 3 × 0.1 = 0.3 USDT (the fills' own; their spot legs come from utl.legs, not here).
    after, out = first_day(
        derivative_fills=fills(D1, "+2 @ 100", "+2 @ 200", "-1 @ 300", fee="0.1"),
        marks_today=instrument_marks(D1, **{LINEAR: "250"}),
        positions_today=positions(D1, (LINEAR, "3", "150", "251")),
    )
    got = row(out.derivative_positions, instrument=LINEAR)
    assert (got["qty"], got["venue_qty"], got["entry_price"], got["venue_entry_price"]) == (D(3), D(3), D(150), D(150))
    assert got["mark"] == D(250)  # marks/D.csv wins over the snapshot's 251
    assert (got["unrealized_pnl"], got["unrealized_pnl_usd"]) == (D(300), D(300))
    assert (got["realized_pnl"], got["funding"], got["fees"]) == (D(150), D(0), D("0.3"))
    assert (got["delta"], got["delta_usd"], got["type"], got["settle_asset"]) == (D(3), D(180000), "swap", "USDT")
    assert spot(after, "USDT") == D(1150)  # 1000 + 150 computed
    [leg] = out.derivative_legs.to_dicts()
    assert (leg["asset"], leg["qty"], leg["kind"]) == ("USDT", D(150), "realized_pnl_computed")
    assert row(after.derivatives, instrument=LINEAR)["qty"] == D(3)
    assert out.breaks.filter(pl.col("subject") == "position").height == 0
    # Instruments never land in utl.positions (spot and settle assets only).
    assert set(out.positions["asset"]) == {"USDT", "BTC"}
    # Computed realized PnL is income in the book's explain, which still ties.
    explain = out.pnl_explain.row(0, named=True)
    assert explain["income"] == D(150) and explain["unexplained"] == 0


def test_inverse_harmonic_entry_and_pnl_in_the_coin() -> None:
    # COIN-M, 100 USD a contract: +100 @ 40000, +100 @ 60000 → entry 200/(100/40000 + 100/60000)
    # = 200·40000·60000/(100·60000 + 100·40000) = 48000 (the harmonic mean). -100 @ 60000 realizes
    # 100·100·(1/48000 − 1/60000) = 10000·12000/(48000·60000) = 1/24 = 0.041666… BTC, rounded
    # half-even at 18 places: 0.041666666666666667. Left +100 @ 48000; mark 50000: unrealized
    # 100·100·(1/48000 − 1/50000) = 1/120 = 0.008333333333333333 BTC (× 60000 = 500 USD at
    # 18 places: 499.99999999999998); delta 100·100/50000 = 0.2 BTC.
    after, out = first_day(
        derivative_fills=fills(D1, "+100 @ 40000", "+100 @ 60000", "-100 @ 60000", instrument=INVERSE),
        marks_today=instrument_marks(D1, **{INVERSE: "50000"}),
    )
    got = row(out.derivative_positions, instrument=INVERSE)
    assert (got["qty"], got["entry_price"], got["contract_size"]) == (D(100), D(48000), D(100))
    assert got["realized_pnl"] == D("0.041666666666666667")
    assert got["unrealized_pnl"] == D("0.008333333333333333")
    assert got["unrealized_pnl_usd"] == D("0.008333333333333333") * 60000
    assert (got["delta"], got["delta_usd"]) == (D("0.2"), D(12000))
    assert got["venue_qty"] is None and got["venue_entry_price"] is None  # no positions file that day
    assert spot(after, "BTC") == D("1.041666666666666667")


def test_a_flip_through_zero_realizes_the_whole_position_and_restarts_the_entry() -> None:
    # +1 @ 100; -3 @ 120 closes 1 (1·(120 − 100) = 20) and opens -2 @ 120; +2 @ 110 closes the
    # short: -1 · 2 · (110 − 120) = 20. Flat: 40 USDT realized, no row in the table (flat in
    # the ledger and no file), nothing carried.
    after, out = first_day(derivative_fills=fills(D1, "+1 @ 100", "-3 @ 120", "+2 @ 110"))
    assert out.derivative_positions.height == 0 and after.derivatives.height == 0
    assert sorted(out.derivative_legs["qty"].to_list()) == [D(20), D(20)]
    assert spot(after, "USDT") == D(1040)


def test_the_flipped_short_opens_at_the_flip_price() -> None:
    # +1 @ 100; -3 @ 120 → -2 @ 120. Mark 130: unrealized -2·1·(130 − 120) = -20 USDT; delta -2.
    _, out = first_day(derivative_fills=fills(D1, "+1 @ 100", "-3 @ 120"),
                       marks_today=instrument_marks(D1, **{LINEAR: "130"}))
    got = row(out.derivative_positions, instrument=LINEAR)
    assert (got["qty"], got["entry_price"], got["unrealized_pnl"], got["delta"]) == (D(-2), D(120), D(-20), D(-2))
    assert got["realized_pnl"] == D(20)
    # Exposure adds the delta to spot: BTC spot +1 (60000) and delta -2 (-120000): net qty -1,
    # net -60000, gross 180000. The book also holds USDT 1000 + 20 = 1020: net
    # 1020 + 60000 − 120000 = −58980, gross 1020 + 60000 + 120000 = 181020.
    btc = row(out.exposure_asset, asset="BTC")
    assert (btc["net_qty"], btc["net_value"], btc["gross_value"], btc["positions"]) == (
        D(-1), D(-60000), D(180000), 2)
    book = row(out.exposure_book, book="binance/fut")
    assert (book["net_value"], book["gross_value"]) == (D(-58980), D(181020))
    venue = row(out.exposure_venue, venue="binance")
    assert (venue["net_value"], venue["gross_value"]) == (D(-58980), D(181020))


def test_ledger_account_books_no_computed_pnl_and_attributes_its_cash() -> None:
    # A ledger account: the same fills move no cash here (the ledger's rows are its movements);
    # the table shows the ledger's realized PnL 150, funding -1.5 and fee 0.3 (charged: +0.3).
    after, out = first_day(
        derivative_fills=fills(D1, "+2 @ 100", "+2 @ 200", "-1 @ 300", source="ledger"),
        derivative_cash=cash((dt.datetime(2026, 12, 2, 9, 5, tzinfo=dt.timezone.utc), "realized_pnl", LINEAR, "USDT", "150"),
                             (dt.datetime(2026, 12, 2, 16, tzinfo=dt.timezone.utc), "funding", LINEAR, "USDT", "-1.5"),
                             (dt.datetime(2026, 12, 2, 9, 5, tzinfo=dt.timezone.utc), "fee", LINEAR, "USDT", "-0.3")),
        marks_today=instrument_marks(D1, **{LINEAR: "250"}),
        ledger=True,
    )
    got = row(out.derivative_positions, instrument=LINEAR)
    assert (got["qty"], got["realized_pnl"], got["funding"], got["fees"]) == (D(3), D(150), D("-1.5"), D("0.3"))
    assert out.derivative_legs.height == 0 and spot(after, "USDT") == D(1000)


def test_ledger_account_ignores_its_trades_export_fills() -> None:
    # One source per account: a ledger account's fills from a trades export are not legs
    # (the ledger's own trade rows are); here only the ledger's +1 @ 100 books.
    _, out = first_day(
        derivative_fills=pl.concat([fills(D1, "+5 @ 100"), fills(D1, "+1 @ 100", source="ledger")]),
        marks_today=instrument_marks(D1, **{LINEAR: "100"}),
        ledger=True,
    )
    assert row(out.derivative_positions, instrument=LINEAR)["qty"] == D(1)


def test_funding_at_midnight_belongs_to_the_day_that_starts_then() -> None:
    # Funding stamped 2026-12-03 00:00:00 UTC is D2's, not D1's: cut from the landing by
    # utl.eod.derivative_inputs, D1 sees none and D2 sees -2.5.
    from utl.eod import derivative_inputs
    from utl.ingest import Ingested

    midnight = dt.datetime(2026, 12, 3, 0, 0, 0, tzinfo=dt.timezone.utc)
    ingested = Ingested(settings=Settings(), fills=pl.DataFrame(), movements=pl.DataFrame(), balances=pl.DataFrame(),
                        marks=pl.DataFrame(), quarantine=pl.DataFrame(), files=pl.DataFrame(),
                        derivative_cash=cash((midnight, "funding", LINEAR, "USDT", "-2.5")),
                        specs=SPECS)
    assert derivative_inputs(ingested, D1)["derivative_cash"].height == 0
    assert derivative_inputs(ingested, D2)["derivative_cash"]["qty"].to_list() == [D("-2.5")]
    state, _ = first_day(derivative_fills=fills(D1, "+1 @ 100"),
                         marks_today=instrument_marks(D1, **{LINEAR: "100"}))
    _, out = step(D2, state, day_inputs(D2, derivative_cash=derivative_inputs(ingested, D2)["derivative_cash"],
                                        marks_before=instrument_marks(D1, **{LINEAR: "100"}),
                                        marks_today=instrument_marks(D2, **{LINEAR: "100"})), Settings())
    assert row(out.derivative_positions, instrument=LINEAR)["funding"] == D("-2.5")


def test_specs_in_force_are_the_latest_file_on_or_before_the_day() -> None:
    from utl.derivatives.instruments import specs_in_force

    later = SPECS.head(1).with_columns(business_date=pl.lit(D2), contract_size=pl.lit(D(10)).cast(SPECS["contract_size"].dtype))
    both = pl.concat([SPECS, later])
    assert specs_in_force(both, D1)["business_date"].unique().to_list() == [D0]
    assert specs_in_force(both, D3)["contract_size"].to_list() == [D(10)]
    assert specs_in_force(both, dt.date(2026, 11, 30)).height == 0


def test_option_premium_then_expiry_without_delivery() -> None:
    # Buy 1 call @ 0.05 BTC (premium per unit, size 1). D1 mark 0.08: unrealized
    # 1·1·0.08 − 1·1·0.05 = 0.03 BTC; an option's delta is the snapshot's: none stated → null (unknown, not 0).
    state, out = first_day(
        derivative_fills=fills(D1, "+1 @ 0.05", instrument=OPTION),
        marks_today=instrument_marks(D1, **{OPTION: "0.08"}),
    )
    got = row(out.derivative_positions, instrument=OPTION)
    assert (got["unrealized_pnl"], got["entry_price"], got["delta"]) == (D("0.03"), D("0.05"), None)
    # D2: no change. D3 is the expiry: no delivery row in a fills-only account, so it closes at
    # D3's mark 0.1 at 08:00 UTC, realizing 1·(0.1 − 0.05) = 0.05 BTC, with a break.
    state, _ = step(D2, state, day_inputs(D2, marks_before=instrument_marks(D1, **{OPTION: "0.08"}),
                                          marks_today=instrument_marks(D2, **{OPTION: "0.09"})), Settings())
    after, out = step(D3, state, day_inputs(D3, marks_before=instrument_marks(D2, **{OPTION: "0.09"}),
                                            marks_today=instrument_marks(D3, **{OPTION: "0.1"})), Settings())
    assert after.derivatives.height == 0 and out.derivative_positions.height == 0
    [leg] = out.derivative_legs.to_dicts()
    assert (leg["asset"], leg["qty"], leg["ts"]) == ("BTC", D("0.05"), dt.datetime(2026, 12, 4, 8, tzinfo=dt.timezone.utc))
    [brk] = out.breaks.filter(pl.col("subject") == "position").to_dicts()
    assert (brk["asset"], brk["kind"], brk["ledger_qty"], brk["venue_qty"], brk["diff"]) == (
        OPTION, "expiry_without_delivery", D(1), D(0), D(-1))
    assert spot(after, "BTC") == D("1.05")


def test_future_expiry_at_the_delivery_of_a_ledger_account() -> None:
    # A ledger account holds +2 of the D3 future from D1; the ledger's D3 delivery row closes it
    # at D3's mark: no break, no computed leg (the ledger's delivery cash is its movement).
    state, _ = first_day(derivative_fills=fills(D1, "+2 @ 100", instrument=FUTURE, source="ledger"),
                         marks_today=instrument_marks(D1, **{FUTURE: "100"}), ledger=True)
    state, _ = step(D2, state, day_inputs(D2, marks_before=instrument_marks(D1, **{FUTURE: "100"}),
                                          marks_today=instrument_marks(D2, **{FUTURE: "100"}), ledger=True), Settings())
    after, out = step(D3, state, day_inputs(
        D3, marks_before=instrument_marks(D2, **{FUTURE: "100"}), marks_today=instrument_marks(D3, **{FUTURE: "110"}),
        derivative_cash=cash((dt.datetime(2026, 12, 3, 8, tzinfo=dt.timezone.utc), "delivery", FUTURE, "USDT", "20")),
        ledger=True), Settings())
    assert after.derivatives.height == 0 and out.derivative_legs.height == 0
    assert out.breaks.filter(pl.col("subject") == "position").height == 0


def test_position_break_ages_then_clears_like_a_balance_break() -> None:
    # Ledger +3 from D1's fills; the D1 file says 2 → qty_mismatch, diff 2 − 3 = -1, first_seen D1.
    # D2 without a positions file: not reconciled, the break is carried (no row, not cleared).
    # D3's file says 2 again → first_seen still D1. D4's file says 3 → cleared on D4.
    mark = {LINEAR: "100"}
    state, out = first_day(derivative_fills=fills(D1, "+3 @ 100"), marks_today=instrument_marks(D1, **mark),
                           positions_today=positions(D1, (LINEAR, "2", "100", None)),
                           settings=Settings(tolerance={"BTC/USDT:USDT": D("0.5")}))
    [brk] = out.breaks.to_dicts()
    assert (brk["subject"], brk["asset"], brk["kind"], brk["diff"], brk["tolerance"], brk["first_seen"]) == (
        "position", LINEAR, "qty_mismatch", D(-1), D("0.5"), D1)
    state, out = step(D2, state, day_inputs(D2, marks_before=instrument_marks(D1, **mark),
                                            marks_today=instrument_marks(D2, **mark)), Settings())
    assert out.breaks.height == 0 and out.cleared.height == 0 and state.open_breaks.height == 1
    state, out = step(D3, state, day_inputs(D3, marks_before=instrument_marks(D2, **mark),
                                            marks_today=instrument_marks(D3, **mark),
                                            positions_today=positions(D3, (LINEAR, "2", "100", None))), Settings())
    assert row(out.breaks, asset=LINEAR)["first_seen"] == D1
    d4 = D3 + dt.timedelta(days=1)
    state, out = step(d4, state, day_inputs(d4, marks_before=instrument_marks(D3, **mark),
                                            marks_today=instrument_marks(d4, **mark),
                                            positions_today=positions(d4, (LINEAR, "3", "100", None))), Settings())
    assert out.breaks.height == 0 and state.open_breaks.height == 0
    assert out.cleared.to_dicts() == [{"venue": "binance", "account": "fut", "asset": LINEAR, "first_seen": D1,
                                       "cleared_on": d4, "subject": "position"}]


def test_a_file_listing_nothing_is_flat_and_breaks_a_held_position() -> None:
    # Ledger +1; the D1 file lists nothing: missing_at_venue, diff 0 − 1 = -1; venue_qty 0 in the table.
    _, out = first_day(derivative_fills=fills(D1, "+1 @ 100"), marks_today=instrument_marks(D1, **{LINEAR: "100"}),
                       positions_today=positions(D1))
    [brk] = out.breaks.to_dicts()
    assert (brk["subject"], brk["kind"], brk["diff"]) == ("position", "missing_at_venue", D(-1))
    assert row(out.derivative_positions, instrument=LINEAR)["venue_qty"] == D(0)


def test_opening_positions_open_the_account_at_the_stated_quantity_and_entry() -> None:
    # D0's file: short 2 @ 150 (mark 140). D1: +1 @ 120 closes 1 realizing -1·1·(120 − 150) = 30;
    # left -1 @ 150. Fills of D0 itself are in that file (not booked).
    state, out = first_day(
        positions_before=positions(D0, (LINEAR, "-2", "150", "140")),
        derivative_fills=pl.concat([fills(D0, "+9 @ 1"), fills(D1, "+1 @ 120")]),
        marks_today=instrument_marks(D1, **{LINEAR: "120"}),
    )
    got = row(out.derivative_positions, instrument=LINEAR)
    assert (got["qty"], got["entry_price"], got["realized_pnl"]) == (D(-1), D(150), D(30))
    assert state.derivative_accounts.to_dicts() == [{"venue": "binance", "account": "fut", "first_date": D1}]


def test_deribit_session_reference_from_the_settlement() -> None:
    # Deribit inverse perp, 1 USD a contract: +10000 @ 65000 on D1 (ledger account). D2's file
    # states the 08:00 settlement at 65500: unrealized runs from it, at mark 66000
    # 10000·(1/65500 − 1/66000) = 10000·500/(65500·66000) = 0.001156553…; entry stays 65000.
    deribit = SPECS.head(0).vstack(pl.DataFrame([{**SPECS.row(1, named=True), "venue": "deribit",
                                                  "contract_size": D(1)}], schema=SPECS.schema))
    specs = pl.concat([SPECS, deribit])

    def on(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(venue=pl.lit("deribit"))

    inputs = day_inputs(D1, derivative_fills=on(fills(D1, "+10000 @ 65000", instrument=INVERSE, source="ledger")),
                        marks_today=instrument_marks(D1, **{INVERSE: "65000"}), specs=specs,
                        opening=on(balances(D0, BTC="1")))
    inputs = dataclasses.replace(inputs, ledger_accounts=pl.DataFrame({"venue": ["deribit"], "account": ["fut"]}))
    state, _ = step(D1, DayState.empty(D0), inputs, Settings())
    inputs = day_inputs(D2, marks_before=instrument_marks(D1, **{INVERSE: "65000"}),
                        marks_today=instrument_marks(D2, **{INVERSE: "66000"}), specs=specs,
                        positions_today=on(positions(D2, (INVERSE, "10000", "65000", "66000"),
                                                     settlement={INVERSE: D(65500)})))
    inputs = dataclasses.replace(inputs, ledger_accounts=pl.DataFrame({"venue": ["deribit"], "account": ["fut"]}))
    after, out = step(D2, state, inputs, Settings())
    got = row(out.derivative_positions, instrument=INVERSE)
    assert got["entry_price"] == D(65000)
    expected = (D(10000) * 500 / (D(65500) * 66000)).quantize(D("1e-18"))
    assert got["unrealized_pnl"] == expected
    assert row(after.derivative_references, instrument=INVERSE)["entry_price"] == D(65500)


def test_an_instrument_without_a_spec_stops_the_date_naming_it() -> None:
    # No instruments/ row, and the exports cannot state one: OKX's size is per instrument
    # (ctVal, which its export does not state); a quanto's symbol cannot say inverse.
    okx = fills(D1, "+1 @ 3000", instrument="ETH/USDT:USDT").with_columns(venue=pl.lit("okx"))
    with pytest.raises(MissingSpec, match=r"okx/fut ETH/USDT:USDT"):
        first_day(derivative_fills=okx, opening=balances(D0, USDT="1000").with_columns(venue=pl.lit("okx")))
    with pytest.raises(MissingSpec, match=r"binance/fut ETH/USD:BTC"):
        first_day(derivative_fills=fills(D1, "+1 @ 3000", instrument="ETH/USD:BTC"))


def test_an_open_position_without_a_mark_stops_the_date_naming_it() -> None:
    # No instrument row in marks/D1.csv and no markPrice in a positions file.
    with pytest.raises(MissingMark, match=r"no mark for BTC/USDT:USDT on 2026-12-02"):
        first_day(derivative_fills=fills(D1, "+1 @ 100"))


def test_a_landing_without_derivatives_has_only_balance_breaks_and_no_table() -> None:
    # USDT snapshot 999 against the ledger's 1000: one balance break, subject balance.
    _, out = first_day(snapshot=balances(D1, USDT="999", BTC="1"))
    assert out.breaks.select("asset", "subject", "diff").to_dicts() == [
        {"asset": "USDT", "subject": "balance", "diff": D(-1)}]
    assert out.derivative_positions.height == 0 and out.derivative_legs.height == 0
    assert row(out.exposure_asset, asset="BTC")["positions"] == 1


def test_two_dates_step_by_step_through_stored_state_equal_one_run_over_both(tmp_path) -> None:
    # One run over D1..D2 from the whole landing (utl.eod.run_dates) against D1, its state
    # written to Parquet and read back (as the Dagster day_state partition is), then D2.
    from utl.eod import Prepared, run_dates
    from utl.ingest import Ingested
    from utl.schemas import DAY_LEGS, LEG_REFS, TRANSFER_LEGS

    all_marks = pl.concat([instrument_marks(d, **{LINEAR: p, INVERSE: "50000"})
                           for d, p in ((D0, "100"), (D1, "110"), (D2, "90"))])
    derivative_fills = pl.concat([fills(D1, "+2 @ 100", "-1 @ 120"), fills(D2, "-3 @ 95", "+1 @ 90"),
                                  fills(D2, "+100 @ 40000", instrument=INVERSE)])
    snapshot = positions(D1, (LINEAR, "1", "100", None))
    ingested = Ingested(
        settings=Settings(), fills=pl.DataFrame(), movements=pl.DataFrame(),
        balances=balances(D0, USDT="1000", BTC="1"), marks=all_marks, quarantine=pl.DataFrame(),
        files=pl.DataFrame(), derivative_fills=derivative_fills,
        derivative_cash=cash((dt.datetime(2026, 12, 3, 0, tzinfo=dt.timezone.utc), "funding", LINEAR, "USDT", "-1")),
        positions=snapshot, specs=SPECS)
    prepared = Prepared(ingested, DAY_LEGS.to_frame(), pl.DataFrame(),
                        pl.DataFrame({"venue": ["binance"], "account": ["fut"], "first_date": [D1]}),
                        pl.DataFrame(), TRANSFER_LEGS.to_frame(), LEG_REFS.to_frame().with_columns(
                            business_date=pl.lit(None, pl.Date)))
    whole = list(run_dates(prepared, D2))

    from utl.eod import inputs_of

    state, first = step(D1, DayState.empty(D0), inputs_of(prepared, D1), Settings())
    for name, frame in state.tables().items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    stored = DayState.from_tables(D1, {n: pl.read_parquet(tmp_path / f"{n}.parquet") for n in DayState.TABLES})
    _, second = step(D2, stored, inputs_of(prepared, D2), Settings())
    for one, other in zip(whole, (first, second)):
        for name in one.TABLES:
            assert getattr(one, name).equals(getattr(other, name)), name
    # D2 by hand: +1 @ 100 carried; -3 @ 95 closes 1 (95 − 100 = -5) and opens -2 @ 95; +1 @ 90
    # closes 1 of the short: -1·1·(90 − 95) = 5. Left -1 @ 95, mark 90: unrealized -1·(90 − 95) = 5.
    got = row(second.derivative_positions, instrument=LINEAR)
    assert (got["qty"], got["entry_price"], got["realized_pnl"], got["unrealized_pnl"], got["funding"]) == (
        D(-1), D(95), D(0), D(5), D(-1))
    assert row(second.derivative_positions, instrument=INVERSE)["qty"] == D(100)


def test_utl_pnl_shows_derivatives_in_a_section_of_their_own() -> None:
    # The linear example: +3 @ 150, mark 250, realized 150, fees 0.3: unrealized 300 USDT = 300.00 USD.
    from utl.ops.pnl import derivative_lines, explain_lines, format_pnl, pnl_lines

    _, out = first_day(derivative_fills=fills(D1, "+2 @ 100", "+2 @ 200", "-1 @ 300", fee="0.1"),
                       marks_today=instrument_marks(D1, **{LINEAR: "250"}))
    lines, explained = pnl_lines(out.pnl, out.positions), explain_lines(out.pnl_explain)
    without = format_pnl(D1, "USD", lines, explained)
    text = format_pnl(D1, "USD", lines, explained, derivative_lines(out.derivative_positions, Settings()))
    assert text.startswith(without) and "Derivatives" not in without
    section = text[len(without):]
    [line] = [t for t in section.splitlines() if LINEAR in t]
    assert line.split() == ["binance/fut", LINEAR, "3", "150", "250", "300", "300.00", "150", "0", "0.3", "USDT"]
    assert [t.split()[-1] for t in section.splitlines() if "book total" in t] == ["300.00"]
    # A landing without derivatives prints what it printed before.
    _, plain = first_day()
    empty = derivative_lines(plain.derivative_positions, Settings())
    assert format_pnl(D1, "USD", pnl_lines(plain.pnl, plain.positions), explain_lines(plain.pnl_explain), empty) == \
        format_pnl(D1, "USD", pnl_lines(plain.pnl, plain.positions), explain_lines(plain.pnl_explain))


def test_the_memory_cuts_a_dates_derivative_inputs_as_the_whole_run_does() -> None:
    # utl.memory.derivative_inputs: from rows that carry derivative tables (the date's rows
    # once the readers fill them), the day's fills and cash by ts, the positions files of
    # the day and the day before, and the specs in force; rows without them give nothing.
    from types import SimpleNamespace

    from utl.memory import derivative_inputs

    midnight = dt.datetime(2026, 12, 3, 0, tzinfo=dt.timezone.utc)
    rows = SimpleNamespace(
        business_date=D2, derivative_fills=pl.concat([fills(D1, "+1 @ 1"), fills(D2, "+2 @ 1")]),
        derivative_cash=cash((midnight, "funding", LINEAR, "USDT", "-1"),
                             (midnight - dt.timedelta(microseconds=1), "funding", LINEAR, "USDT", "-9")),
        positions=pl.concat([positions(D1, (LINEAR, "1", "1", None)), positions(D2, (LINEAR, "3", "1", None))]),
        specs=SPECS, ledger_trade_accounts=pl.DataFrame({"venue": ["deribit"], "account": ["main"]}))
    got = derivative_inputs(rows)
    assert got["ledger_trade_accounts"].rows() == [("deribit", "main")]  # every date's, not cut
    assert got["derivative_fills"]["qty"].to_list() == [D(2)]
    assert got["derivative_cash"]["qty"].to_list() == [D(-1)]
    assert got["positions"]["qty"].to_list() == [D(3)] and got["opening_positions"]["qty"].to_list() == [D(1)]
    assert got["specs"].height == SPECS.height


def test_a_state_stored_before_breaks_had_a_subject_reads_as_balance_breaks() -> None:
    # A day_state partition written before 012 has open_breaks without subject and no
    # derivative tables: its breaks are balance breaks, its derivatives empty.
    from utl.schemas import BREAKS

    old = pl.DataFrame([{"business_date": D1, "venue": "binance", "account": "fut", "asset": "USDT",
                         "ledger_qty": D(1), "venue_qty": D(2), "diff": D(1), "tolerance": D(0), "first_seen": D1,
                         "kind": "qty_mismatch"}], schema=BREAKS)
    state = DayState.from_tables(D1, {"open_breaks": old})
    assert state.open_breaks["subject"].to_list() == ["balance"]
    assert state.derivatives.height == 0 and state.derivative_accounts.height == 0
