"""A date booked a shard of accounts at a time (utl.shards, utl.day.step_shards) gives the
same state and outputs as the date booked at once; the plan keeps together what must be.

End to end through ``utl eod`` (Dagster), tests/test_ledger_exceptions.py runs its planted
transfers landing both whole and with one account a shard (``UTL_SHARD_ROWS=1``).
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from utl.day import SHARED_INPUTS, DayInputs, DayState, carried_accounts, match_day, step, step_shards, transfer_links
from utl.memory import LandingMemory, book_day
from utl.settings import Settings, load_settings
from utl.shards import of_accounts, plan_shards, shard_accounts, shard_rows

LANDING = Path(__file__).resolve().parents[1] / "data_samples" / "landing"


def weights(*rows: tuple[str, str, int]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"venue": pl.String, "account": pl.String, "rows": pl.Int64}, orient="row")


def shards_of(plan: pl.DataFrame) -> list[list[str]]:
    return [[f"{v}/{a}" for v, a in part.iter_rows()] for part in shard_accounts(plan)]


# ---------------------------------------------------------------- the plan


def test_accounts_are_packed_in_order_up_to_the_rows_of_a_shard():
    plan = plan_shards(weights(("b", "1", 40), ("a", "1", 50), ("a", "2", 30), ("c", "1", 10)), [], Settings(), 80)
    # a/1 (50) + a/2 (30) = 80 fills shard 0; b/1 (40) + c/1 (10) shard 1.
    assert shards_of(plan) == [["a/1", "a/2"], ["b/1", "c/1"]]
    assert plan["rows"].to_list() == [50, 30, 40, 10]


def test_an_account_larger_than_a_shard_is_a_shard_of_its_own_whole():
    plan = plan_shards(weights(("a", "1", 5), ("a", "2", 500), ("a", "3", 5)), [], Settings(), 100)
    assert shards_of(plan) == [["a/1"], ["a/2"], ["a/3"]]


def test_an_accounts_rows_from_several_files_add_up():
    plan = plan_shards(weights(("a", "1", 60), ("a", "1", 60), ("a", "2", 10)), [], Settings(), 100)
    assert shards_of(plan) == [["a/1"], ["a/2"]] and plan["rows"].to_list() == [120, 10]


def test_a_books_accounts_and_a_transfers_two_ends_share_a_shard():
    settings = Settings(books={"desk": ("a/1", "z/9")})
    links = [(("b", "1"), ("y", "1"))]
    plan = plan_shards(weights(("a", "1", 1), ("b", "1", 1), ("c", "1", 1), ("y", "1", 1), ("z", "9", 1)),
                       links, settings, 1)
    assert shards_of(plan) == [["a/1", "z/9"], ["b/1", "y/1"], ["c/1"]]


def test_links_are_transitive_and_every_account_is_in_exactly_one_shard():
    accounts = [("v", str(i), 1) for i in range(10)]
    links = [(("v", "1"), ("v", "7")), (("v", "7"), ("v", "3")), (("v", "unknown"), ("v", "2"))]
    plan = plan_shards(weights(*accounts), links, Settings(), 2)
    assert sorted(plan["account"].to_list()) == sorted(a for _, a, _ in accounts)
    shard_of = dict(zip(plan["account"], plan["shard"], strict=True))
    assert shard_of["1"] == shard_of["7"] == shard_of["3"]
    assert len({shard_of["0"], shard_of["1"], shard_of["2"]}) == 3  # 1+7+3 is already 3 rows > 2


def test_no_accounts_no_shards():
    assert shards_of(plan_shards(weights(), [], Settings(), 10)) == []


@pytest.mark.parametrize("name", ["UTL_SHARD_ROWS", "UTL_SHARD_THREADS"])
def test_the_shard_size_and_threads_come_from_the_environment_and_a_bad_one_is_refused(monkeypatch, name):
    from utl.shards import shard_threads

    read = {"UTL_SHARD_ROWS": shard_rows, "UTL_SHARD_THREADS": shard_threads}[name]
    monkeypatch.setenv(name, "250")
    assert read() == 250
    monkeypatch.setenv(name, "many")
    with pytest.raises(ValueError, match=f"{name} must be a whole number"):
        read()
    monkeypatch.setenv(name, "0")
    with pytest.raises(ValueError, match=f"{name} must be at least 1"):
        read()


def test_shards_booked_at_once_come_back_in_the_plans_order_holding_few():
    import random
    import threading
    import time

    from utl.shards import in_order

    for threads in (1, 2, 4):
        alive, most, lock = [0], [0], threading.Lock()

        def items():
            for n in range(12):
                with lock:
                    alive[0] += 1
                    most[0] = max(most[0], alive[0])
                yield (n,)

        def work(n):
            time.sleep(random.random() / 200)  # later shards often finish first
            return n * n

        got = []
        for value in in_order(work, items(), threads):
            got.append(value)
            with lock:
                alive[0] -= 1
        assert got == [n * n for n in range(12)]
        assert most[0] <= threads + 1  # the shards under way, and the one being read

    def failing(n):
        if n == 3:
            raise ValueError("shard 3 has a leg of no account")
        return n

    with pytest.raises(ValueError, match="shard 3"):
        list(in_order(failing, ((n,) for n in range(8)), 2))


# ---------------------------------------------------------------- the sample landing, whole and in shards


def sample(tmp_path: Path, books: str = "") -> tuple[LandingMemory, Settings]:
    landing = tmp_path / "landing"
    shutil.copytree(LANDING, landing)
    if books:
        toml = landing / "utl.toml"
        toml.write_text(toml.read_text() + "\n" + books)
    memory = LandingMemory(landing, tmp_path / "memory")
    memory.refresh()
    return memory, load_settings(landing)


def test_the_sample_landing_reads_one_account_a_shard_and_the_rows_add_up(tmp_path):
    memory, _ = sample(tmp_path)
    day = memory.first_business_date()
    plan = memory.day_plan(day, 1)
    assert plan["shard"].n_unique() == plan.height > 5
    whole = memory.day_rows(day)
    parts = [memory.day_rows(day, accounts, shared=k == 0) for k, accounts in enumerate(shard_accounts(plan))]
    for name in ("fills", "movements", "balances", "marks", "quarantine", "derivative_fills", "derivative_cash",
                 "positions", "specs", "transfers"):
        together = pl.concat([getattr(p, name) for p in parts])
        assert together.height == getattr(whole, name).height, name
        assert_frame_equal(together, getattr(whole, name), check_row_order=False)
    assert memory.fingerprint(day, parts[0]) != ""  # a digest of one shard is not the date's ...
    fresh = LandingMemory(memory.landing, tmp_path / "memory-2")
    fresh.refresh()
    # ... the date's, read a shard at a time, is the same as read whole.
    from utl.memory import DayDigest

    digest = DayDigest()
    for p in parts:
        digest.add(p)
    assert fresh.fingerprint(day, digest) == LandingMemory(memory.landing, tmp_path / "memory-3").fingerprint(
        day, whole) != memory.fingerprint(day)  # memory's own remembered the one-shard digest above


def split_inputs(inputs: DayInputs, accounts: pl.DataFrame) -> DayInputs:
    return DayInputs.from_tables({name: frame if name in SHARED_INPUTS else of_accounts(frame, accounts)
                                  for name, frame in inputs.tables().items()})


def same(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    assert a.height == b.height, what
    assert_frame_equal(a, b, check_row_order=False), what


@pytest.mark.parametrize("threads", ["1", "3"], ids=["one shard at a time", "three shards at once"])
@pytest.mark.parametrize("books", ["", '[books]\nspot-desk = ["binance/mm-spot-1", "binance/mm-spot-2", "kraken/main"]\n'],
                         ids=["own books", "a book of three accounts"])
def test_every_date_booked_in_shards_equals_the_date_booked_whole(tmp_path, monkeypatch, books, threads):
    monkeypatch.setenv("UTL_SHARD_THREADS", threads)
    memory, settings = sample(tmp_path, books)
    first = memory.first_business_date()
    last = max(memory.catalog["last_date"].drop_nulls())
    whole = sharded = DayState.empty(first - dt.timedelta(days=1))
    day, many = first, 0
    while day < last:
        inputs, _ = book_day(memory.day_rows(day))
        whole_after, whole_out = step(day, whole, inputs, settings)
        matched = match_day(day, sharded, inputs.transfers, inputs.opening_snapshots, settings)
        universe = pl.concat([inputs.legs.select("venue", "account"), inputs.snapshots.select("venue", "account"),
                              inputs.opening_snapshots.select("venue", "account"), carried_accounts(sharded)])
        plan = plan_shards(universe.unique().with_columns(rows=pl.lit(1, pl.Int64)), transfer_links(matched),
                           settings, 1)
        many = max(many, plan["shard"].n_unique())
        shards = ((accounts, split_inputs(inputs, accounts)) for accounts in shard_accounts(plan))
        after, out = step_shards(day, sharded, shards, matched, settings)
        for name in DayState.TABLES:
            same(getattr(after, name), getattr(whole_after, name), f"{day} state {name}")
        for name in whole_out.TABLES:
            same(getattr(out, name), getattr(whole_out, name), f"{day} output {name}")
        assert out.legs == whole_out.legs
        whole, sharded = whole_after, after
        day += dt.timedelta(days=1)
    assert many > 5
    if books:  # the book's three accounts were booked in one shard, every date
        assert whole.lots.filter(pl.col("book") == "spot-desk").height > 0


def test_a_plan_that_leaves_out_an_account_carrying_rows_fails_rather_than_drop_them(tmp_path):
    memory, settings = sample(tmp_path)
    day = memory.first_business_date()
    inputs, _ = book_day(memory.day_rows(day))
    before, _ = step(day, DayState.empty(day - dt.timedelta(days=1)), inputs, settings)
    following = day + dt.timedelta(days=1)
    inputs, _ = book_day(memory.day_rows(following))
    matched = match_day(following, before, inputs.transfers, inputs.opening_snapshots, settings)
    accounts = carried_accounts(before)
    missing_one = accounts.slice(1)  # the first account carried in is in no shard
    with pytest.raises(ValueError, match="the shards cover .* positions rows carried in"):
        step_shards(following, before, [(missing_one, split_inputs(inputs, missing_one))], matched, settings)


def test_a_stored_shards_plan_names_every_account_it_holds_a_row_of_weighed_by_legs():
    from utl.shards import booked_accounts

    legs = pl.DataFrame({"venue": ["v", "v", "w"], "account": ["a", "a", "b"], "qty": [1, 2, 3]})
    snapshots = pl.DataFrame({"venue": ["v", "x"], "account": ["a", "only-a-snapshot"], "total": [1, 1]})
    marks = pl.DataFrame({"asset": ["BTC"]})  # no account: not part of the plan
    plan = booked_accounts({"legs": legs, "snapshots": snapshots, "marks": marks}, 3)
    assert plan.rows() == [("v", "a", 2, 3), ("w", "b", 1, 3), ("x", "only-a-snapshot", 0, 3)]


def test_a_caller_that_stores_each_shards_lots_gets_them_all_and_the_result_holds_none(tmp_path):
    memory, settings = sample(tmp_path)
    day = memory.first_business_date()
    before = DayState.empty(day - dt.timedelta(days=1))
    inputs, _ = book_day(memory.day_rows(day))
    whole_after, whole_out = step(day, before, inputs, settings)
    matched = match_day(day, before, inputs.transfers, inputs.opening_snapshots, settings)
    plan = plan_shards(inputs.legs.select("venue", "account").unique().with_columns(rows=pl.lit(1, pl.Int64)),
                       transfer_links(matched), settings, 1)
    stored: list[pl.DataFrame] = []
    after, out = step_shards(day, before, ((a, split_inputs(inputs, a)) for a in shard_accounts(plan)), matched,
                             settings, lots_to=stored.append)
    assert len(stored) == plan["shard"].n_unique() > 1
    same(pl.concat(stored), whole_after.lots, "the lots stored a shard at a time")
    assert whole_after.lots.height > 0 and after.lots.height == 0 and out.lots.height == 0
    same(out.positions, whole_out.positions, "positions")


def test_the_day_befores_lots_read_a_shard_at_a_time_give_the_same_date(tmp_path):
    memory, settings = sample(tmp_path)
    first = memory.first_business_date()
    inputs, _ = book_day(memory.day_rows(first))
    before, _ = step(first, DayState.empty(first - dt.timedelta(days=1)), inputs, settings)
    assert before.lots.height > 0
    before.lots.write_parquet(tmp_path / "lots.parquet")
    day = first + dt.timedelta(days=1)
    inputs, _ = book_day(memory.day_rows(day))
    whole_after, whole_out = step(day, before, inputs, settings)
    matched = match_day(day, before, inputs.transfers, inputs.opening_snapshots, settings)
    plan = plan_shards(carried_accounts(before).with_columns(rows=pl.lit(1, pl.Int64)), transfer_links(matched),
                       settings, 1)
    without_lots = replace(before, lots=before.lots.clear())
    shards = ((a, split_inputs(inputs, a)) for a in shard_accounts(plan))
    after, out = step_shards(day, without_lots, shards, matched, settings,
                             carried_lots=pl.scan_parquet(tmp_path / "lots.parquet"))
    for name in DayState.TABLES:
        same(getattr(after, name), getattr(whole_after, name), f"state {name}")
    same(out.pnl, whole_out.pnl, "pnl")
    # a plan that leaves out a book's accounts leaves its carried lots unread: refused
    missing = plan.filter(pl.col("shard") != plan["shard"].max())
    with pytest.raises(ValueError, match="rows carried in"):
        step_shards(day, without_lots, ((a, split_inputs(inputs, a)) for a in shard_accounts(missing)), matched,
                    settings, carried_lots=pl.scan_parquet(tmp_path / "lots.parquet"))


class Stored(dict):
    """Stored tables as a dict (each whole, one part): what utl.stored_day reads."""

    def scan(self, name: str, shards: list[int] | None = None) -> pl.LazyFrame:
        assert shards in (None, [0])
        return self[name].lazy()


@pytest.mark.parametrize("with_plan", [True, False], ids=["stored with its plan", "stored before shards"])
def test_a_date_booked_from_its_stored_tables_equals_the_step(tmp_path, with_plan):
    from utl.shards import booked_accounts
    from utl.stored_day import book_stored_day

    memory, settings = sample(tmp_path)
    day = memory.first_business_date()
    before = DayState.empty(day - dt.timedelta(days=1))
    inputs, _ = book_day(memory.day_rows(day))
    whole_after, whole_out = step(day, before, inputs, settings)
    stored = Stored(inputs.tables())
    if with_plan:
        stored["shards"] = booked_accounts({n: f for n, f in inputs.tables().items() if n not in SHARED_INPUTS}, 0)
    booked = book_stored_day(day, before, stored, settings, 1)
    assert booked.shards == 1  # one stored part: one shard, read once
    for name in DayState.TABLES:
        same(getattr(booked.after, name), getattr(whole_after, name), f"state {name}")
    same(booked.outputs.pnl, whole_out.pnl, "pnl")
    assert booked.differences.height == 0
    # a leg of an account no part names would go unbooked: refused
    stored["legs"] = pl.concat([inputs.legs, inputs.legs.head(1).with_columns(account=pl.lit("nobody"))])
    if with_plan:
        with pytest.raises(ValueError, match=r"the shards read \d+ of the date's \d+ legs"):
            book_stored_day(day, before, stored, settings, 1)
