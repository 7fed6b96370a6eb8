"""Properties of the derivative day step over random fills (hypothesis)."""

from __future__ import annotations

from decimal import Decimal as D

import polars as pl
from hypothesis import given, settings as hsettings, strategies as st

from tests.derivatives.daybook import D1, INVERSE, LINEAR, fills, first_day, instrument_marks
from utl import checks

trade = st.tuples(st.integers(-5, 5).filter(bool), st.integers(1, 400))


@hsettings(max_examples=40, deadline=None)
@given(linear=st.lists(trade, max_size=8), inverse=st.lists(trade, max_size=8))
def test_position_is_the_sum_of_the_instrument_legs_and_explain_ties(linear, inverse) -> None:
    # Whatever the fills, each carried position is exactly the sum of its legs, a flat one is
    # gone (exactly zero), and the book's PnL explain still ties with the computed realized PnL
    # booked as income.
    frames = [fills(D1, *[f"{q} @ {p}" for q, p in linear])]
    frames.append(fills(D1, *[f"{q * 100} @ {p * 100}" for q, p in inverse], instrument=INVERSE, start=15))
    marks = instrument_marks(D1, **{LINEAR: "200", INVERSE: "20000"})
    after, out = first_day(derivative_fills=pl.concat(frames), marks_today=marks)
    held = {r["instrument"]: r["qty"] for r in after.derivatives.to_dicts()}
    for instrument, legs in ((LINEAR, [q for q, _ in linear]), (INVERSE, [q * 100 for q, _ in inverse])):
        assert held.get(instrument, D(0)) == D(sum(legs))
        assert instrument not in held or held[instrument] != 0
    assert checks.explain_ties(out.pnl_explain).passed, out.pnl_explain.to_dicts()
    # Every computed leg is in the ledger: spot positions are the opening plus the computed PnL.
    usdt = after.positions.filter(pl.col("asset") == "USDT")["qty"].sum()
    assert usdt == D(1000) + out.derivative_legs.filter(pl.col("asset") == "USDT")["qty"].sum()
