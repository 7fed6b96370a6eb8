"""The landing memory: each file read once, a date's inputs cut from it, staleness by date.

The reference is the whole-landing run in memory (utl.eod.prepare + run_dates): folding the
step over dates read from the memory must give the same frames, date by date.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from utl.day import DayState, step
from utl.eod import prepare, run_dates
from utl.memory import LandingMemory, book_day

SAMPLE = Path(__file__).resolve().parents[1] / "data_samples" / "landing"
THROUGH = dt.date(2024, 3, 7)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    copy = tmp_path / "landing"
    shutil.copytree(SAMPLE, copy)
    return copy


def fold(memory: LandingMemory, through: dt.date) -> dict[dt.date, object]:
    first = memory.first_business_date()
    state = DayState.empty(first - dt.timedelta(days=1))
    outputs = {}
    day = first
    while day <= through:
        inputs, _ = book_day(memory.day_rows(day))
        state, outputs[day] = step(day, state, inputs, memory.settings)
        day += dt.timedelta(days=1)
    return outputs


def test_folding_over_the_memory_equals_the_whole_landing_run(landing: Path, tmp_path: Path) -> None:
    memory = LandingMemory(landing, tmp_path / "memory")
    refresh = memory.refresh()
    assert refresh.stale_from is not None and len(refresh.read) > 10
    expected = {o.business_date: o for o in run_dates(prepare(landing), THROUGH)}
    got = fold(memory, THROUGH)
    assert list(got) == list(expected) == [dt.date(2024, 3, 5), dt.date(2024, 3, 6), THROUGH]
    for day, want in expected.items():
        for name in ("positions", "lots", "pnl", "pnl_explain", "breaks", "cleared", "exposure_asset"):
            assert got[day].tables()[name].equals(want.tables()[name]), (day, name)


def test_every_refused_row_is_kept_once_dated_or_not(landing: Path, tmp_path: Path) -> None:
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    whole = prepare(landing).quarantine
    first = memory.first_business_date()
    days = [first - dt.timedelta(days=1) + dt.timedelta(days=i) for i in range(5)]
    dated = [book_day(memory.day_rows(d))[1] for d in days]
    parts = pl.concat([memory.undated_quarantine(), *dated]).drop("business_date")
    key = ["file", "row", "column", "reason"]
    assert sorted(parts.select(key).rows(), key=str) == sorted(whole.select(key).rows(), key=str)


def test_an_unchanged_landing_reads_nothing_and_keeps_fingerprints(landing: Path, tmp_path: Path) -> None:
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    before = {d: memory.fingerprint(d) for d in (dt.date(2024, 3, 5), dt.date(2024, 3, 6))}
    again = LandingMemory(landing, tmp_path / "memory")
    for path in landing.rglob("*.csv"):  # a touch changes mtime, not content
        os.utime(path)
    refresh = again.refresh()
    assert refresh.read == [] and refresh.removed == [] and refresh.stale_from is None
    assert {d: again.fingerprint(d) for d in before} == before


def test_a_changed_marks_file_makes_its_date_and_the_next_stale(landing: Path, tmp_path: Path) -> None:
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    days = [dt.date(2024, 3, 5), dt.date(2024, 3, 6), dt.date(2024, 3, 7)]
    before = {d: memory.fingerprint(d) for d in days}
    marks = landing / "marks" / "2024-03-06.csv"
    marks.write_text(marks.read_text() + "ZZZ,1\n")
    refresh = LandingMemory(landing, tmp_path / "memory").refresh()
    assert refresh.read == ["marks/2024-03-06.csv"]
    assert refresh.stale_from == dt.date(2024, 3, 6)
    after = LandingMemory(landing, tmp_path / "memory")
    changed = [d for d in days if after.fingerprint(d) != before[d]]
    # 03-06 values with its own marks, 03-07 with the day before's.
    assert changed == [dt.date(2024, 3, 6), dt.date(2024, 3, 7)]


def test_an_empty_snapshot_survives_the_memory_as_an_account_holding_nothing(landing: Path, tmp_path: Path) -> None:
    # The sample's kraken/main snapshot of 2024-03-06 replaced by a header-only one.
    snapshot = landing / "kraken" / "main" / "balances" / "2024-03-06.csv"
    for old in snapshot.parent.glob("2024-03-06.*"):
        old.unlink()
    snapshot.write_text("asset,total\n")
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    day = dt.date(2024, 3, 6)
    inputs, _ = book_day(memory.day_rows(day))
    mine = inputs.snapshots.filter(pl.col("venue") == "kraken")
    assert mine.select("account", "asset", "business_date").rows() == [("main", None, day)]
    # Read again from the stored Parquet (a new memory object): the marker is still there.
    again, _ = book_day(LandingMemory(landing, tmp_path / "memory").day_rows(day))
    assert again.snapshots.filter(pl.col("venue") == "kraken").height == 1
    # The day reconciles kraken/main against nothing: every position it holds is a break.
    outputs = fold(memory, day)[day]
    held = outputs.positions.filter((pl.col("venue") == "kraken") & (pl.col("qty") != 0))
    broken = outputs.breaks.filter(pl.col("venue") == "kraken")
    assert held.height > 0
    assert sorted(broken["asset"]) == sorted(held["asset"])
    assert set(broken["kind"]) == {"missing_at_venue"} and (broken["venue_qty"] == 0).all()
