"""The date's checks (utl.checks) on real step results, and on results spoiled on purpose."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from utl import checks
from utl.day import DayState, step
from utl.decimals import DECIMAL
from utl.memory import LandingMemory, book_day

SAMPLE = Path(__file__).resolve().parents[1] / "data_samples" / "landing"


@pytest.fixture(scope="module")
def first_two_days(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("checks")
    memory = LandingMemory(SAMPLE, root / "memory")
    memory.refresh()
    first = memory.first_business_date()
    state = DayState.empty(first - dt.timedelta(days=1))
    days = []
    for day in (first, first + dt.timedelta(days=1)):
        inputs, quarantine = book_day(memory.day_rows(day))
        after, outputs = step(day, state, inputs, memory.settings)
        days.append((state, inputs, after, outputs, quarantine))
        state = after
    return days


def test_real_days_pass_every_error_check(first_two_days) -> None:
    for before, inputs, after, outputs, _ in first_two_days:
        assert checks.legs_sum_to_positions(before, inputs, after).passed
        assert checks.explain_ties(outputs.pnl_explain).passed
        assert checks.marks_cover_positions(outputs.positions).passed


def test_a_carried_position_that_drifted_fails_legs_sum_to_positions(first_two_days) -> None:
    before, inputs, after, _, _ = first_two_days[1]
    drifted = after.positions.with_columns(
        qty=pl.when(pl.int_range(pl.len()) == 0).then(pl.col("qty") + pl.lit(Decimal("0.000000000000000001"), DECIMAL))
        .otherwise(pl.col("qty")))
    outcome = checks.legs_sum_to_positions(before, inputs, dataclasses.replace(after, positions=drifted))
    assert not outcome.passed and outcome.description.startswith("1 positions differ")
    assert outcome.failures[0]["venue"] == drifted.row(0, named=True)["venue"]


def test_an_unexplained_unit_fails_explain_ties(first_two_days) -> None:
    explain = first_two_days[0][3].pnl_explain
    spoiled = explain.with_columns(unexplained=pl.lit(Decimal("0.01"), DECIMAL))
    outcome = checks.explain_ties(spoiled)
    assert not outcome.passed and outcome.description == f"{explain.height} of {explain.height} books leave PnL unexplained"


def test_an_unpriced_position_fails_marks_cover_positions(first_two_days) -> None:
    positions = first_two_days[0][3].positions
    spoiled = positions.with_columns(mark=pl.when(pl.col("asset") == "ETH").then(None).otherwise(pl.col("mark")))
    outcome = checks.marks_cover_positions(spoiled)
    eth = positions.filter((pl.col("asset") == "ETH") & (pl.col("qty") != 0)).height
    assert eth > 0 and not outcome.passed and outcome.description == f"{eth} positions have no mark"


def test_warnings_count_breaks_and_quarantine(first_two_days) -> None:
    _, _, _, outputs, quarantine = first_two_days[1]
    assert checks.no_breaks(outputs.breaks).passed == (outputs.breaks.height == 0)
    assert checks.no_breaks(outputs.breaks).description == f"{outputs.breaks.height} breaks"
    assert checks.no_quarantine(quarantine).description == f"{quarantine.height} rows quarantined"
