"""The fast paths of the average entry equal the formulas they replaced (hypothesis):

- :func:`utl.derivatives.entry.average_entry` (one ordered walk, arithmetic inlined, decimals
  from their 128-bit integers) equals the former implementation, kept here as
  :func:`reference_average_entry` (the per-leg :func:`utl.derivatives.entry._walk` with
  :func:`~utl.derivatives.entry.reaverage`, :func:`~utl.derivatives.entry.realized` and the
  text path back to decimals), on random legs of several instruments with flips, returns to
  exactly zero, inverse, linear and option contracts, carried positions, equal timestamps
  and any input order;
- :func:`utl.derivatives.entry.from_scaled` equals the text path, nulls and extremes included;
- :func:`utl.derivatives.day.session_references` given the day's walk equals it walking again.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.decimals import DECIMAL
from utl.derivatives import entry
from utl.derivatives.day import session_references
from utl.derivatives.entry import (
    KEY, EntryResult, _walk, average_entry, from_scaled, from_scaled_text, to_scaled,
)
from utl.derivatives.schemas import (
    DERIVATIVE_CASH, ENTRY_LEGS, ENTRY_STATE, INSTRUMENT_LEGS, INSTRUMENT_SPECS, POSITION_SNAPSHOT,
)

T0 = dt.datetime(2026, 12, 5, 0, 0, tzinfo=dt.timezone.utc)
SPEC_SCHEMA = {**INSTRUMENT_LEGS, "type": pl.String, "inverse": pl.Boolean, "contract_size": DECIMAL}
# (instrument, type, inverse, contract size)
INSTRUMENTS = [
    ("BTC/USDT:USDT", "swap", False, "1"),
    ("BTC/USD:BTC", "swap", True, "1"),
    ("ETH/USD:ETH", "swap", True, "10"),
    ("ETH/USDT:USDT-261225", "future", False, "0.01"),
    ("BTC/USD:BTC-261227-100000-C", "option", True, "1"),
]


def reference_average_entry(legs: pl.DataFrame, opening: pl.DataFrame | None = None) -> EntryResult:
    """The former ``average_entry``, verbatim but for its name (the property's oracle)."""
    opening = ENTRY_STATE.to_frame() if opening is None else opening.select(ENTRY_STATE.names()).cast(ENTRY_STATE)
    ordered = (
        legs.with_row_index("__row")
        .join(opening.select(*KEY, pl.col("qty").alias("__open_qty"), pl.col("entry_price").alias("__open_entry")),
              on=KEY, how="left")
        .with_columns(pl.col("__open_qty").fill_null(pl.lit(0, DECIMAL)))
        .sort([*KEY, "ts", "__row"])
        .lazy()
        .with_columns(position_after=pl.col("__open_qty") + pl.col("qty").cum_sum().over(KEY))
        .with_columns(
            __before=pl.col("position_after") - pl.col("qty"),
            __first=pl.col("__row").cum_count().over(KEY) == 1,
            __harmonic=pl.col("inverse").fill_null(False) & (pl.col("type") != "option"),
        )
        .collect()
    )
    entries, closed, pnl = _walk(
        ordered["__first"].to_list(), to_scaled(ordered["__before"]), to_scaled(ordered["qty"]),
        to_scaled(ordered["price"]), to_scaled(ordered["contract_size"]), ordered["__harmonic"].to_list(),
        to_scaled(ordered["__open_entry"]),
    )
    walked = ordered.with_columns(
        entry_price=from_scaled_text(entries), closed_qty=from_scaled_text(closed),
        realized_pnl_computed=from_scaled_text(pnl),
    ).sort("__row")
    out_legs = walked.select(ENTRY_LEGS.names()).cast(ENTRY_LEGS)
    last = walked.sort([*KEY, "ts", "__row"]).group_by(KEY, maintain_order=True).last().select(
        *KEY, qty="position_after", entry_price="entry_price")
    untouched = opening.join(last, on=KEY, how="anti")
    positions = pl.concat([last.cast(ENTRY_STATE), untouched]).sort(KEY)
    return EntryResult(out_legs, positions)


# A leg: (instrument index, account, quantity in 10^-8 units or a move to zero / a flip, price in 10^-4, second)
moves = st.one_of(
    st.integers(-10**12, 10**12).filter(bool).map(lambda n: ("qty", n)),
    st.just(("flat", 0)),
    st.integers(1, 3).map(lambda k: ("flip", k)),
)
leg = st.tuples(st.integers(0, len(INSTRUMENTS) - 1), st.sampled_from(["a", "b"]), moves,
                st.integers(1, 10**11), st.integers(0, 20))


def build(raw: list, openings: list) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Legs (in the drawn order, stamps drawn: equal ones happen) and an opening state."""
    held: dict[tuple, int] = {}
    opening_rows = []
    for index, account, qty, price in openings:
        name = INSTRUMENTS[index][0]
        if ("v", account, name) in held:
            continue
        held[("v", account, name)] = qty
        opening_rows.append(("v", account, name, D(qty).scaleb(-8), None if qty == 0 else D(price).scaleb(-4)))
    rows = []
    for n, (index, account, (kind, value), price, second) in enumerate(raw):
        name, type_, inverse, size = INSTRUMENTS[index]
        key = ("v", account, name)
        now = held.get(key, 0)
        qty = value if kind == "qty" else -now if kind == "flat" else -(value + 1) * now
        if qty == 0:
            qty = 1
        held[key] = now + qty  # the intended path; the walk orders by stamp, which may differ
        rows.append({"venue": "v", "account": account, "instrument": name, "ts": T0 + dt.timedelta(seconds=second),
                     "leg_id": f"L{n}", "qty": D(qty).scaleb(-8), "price": D(price).scaleb(-4), "type": type_,
                     "inverse": inverse, "contract_size": D(size)})
    opening = pl.DataFrame(opening_rows, schema=ENTRY_STATE, orient="row")
    return pl.DataFrame(rows, schema=SPEC_SCHEMA), opening


openings = st.lists(st.tuples(st.integers(0, len(INSTRUMENTS) - 1), st.sampled_from(["a", "b", "c"]),
                              st.integers(-10**12, 10**12), st.integers(1, 10**11)), max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(leg, max_size=60), openings, st.sampled_from([1, 2, 7, entry.WALK_CHUNK]))
def test_average_entry_equals_the_former_walk(raw, opened, chunk):
    # ``chunk``: the walk's chunk of legs, small enough here to split the legs into many.
    frame, opening = build(raw, opened)
    want = reference_average_entry(frame, opening)
    for got in both_paths(frame, opening, chunk):
        assert got.legs.schema == want.legs.schema and got.legs.equals(want.legs)
        assert got.positions.schema == want.positions.schema and got.positions.equals(want.positions)


def both_paths(frame: pl.DataFrame, opening: pl.DataFrame | None = None, chunk: int | None = None) -> list[EntryResult]:
    """``average_entry`` with the compiled walk of linear instruments, then with every leg in
    the Python walk (in chunks of ``chunk`` legs)."""
    saved = entry.WALK_CHUNK, entry._compiled_walk
    entry.WALK_CHUNK = chunk or saved[0]
    try:
        fast = average_entry(frame, opening)
        entry._compiled_walk = lambda *args: None
        slow = average_entry(frame, opening)
    finally:
        entry.WALK_CHUNK, entry._compiled_walk = saved
    return [fast, slow]


def test_every_instrument_takes_the_compiled_walk(monkeypatch):
    taken = []
    original = entry._compiled_walk
    monkeypatch.setattr(entry, "_compiled_walk", lambda *a: taken.append(original(*a)) or taken[-1])
    frame, opening = build([(0, "a", ("qty", 10**8), 10**6, 0), (3, "a", ("qty", -5), 10**6, 1),
                            (0, "a", ("flip", 1), 2 * 10**6, 2), (1, "a", ("qty", 7), 10**6, 3)], [(0, "b", 3, 5)])
    got = average_entry(frame, opening)
    assert len(taken) == 1 and taken[0] is not None  # BTC/USDT:USDT, the future and inverse BTC/USD:BTC compiled
    want = reference_average_entry(frame, opening)
    assert got.legs.equals(want.legs) and got.positions.equals(want.positions)


def test_average_entry_of_no_legs_keeps_the_opening():
    frame, opening = build([], [(0, "a", 5, 100), (1, "b", 0, 1)])
    got, want = average_entry(frame, opening), reference_average_entry(frame, opening)
    assert got.legs.height == 0 and got.legs.schema == want.legs.schema
    assert got.positions.equals(want.positions) and got.positions.height == 2


def test_ties_round_half_even_in_both_paths():
    # Linear, size 1, one unit in the 18th place written u: +1 @ 1u, +1 @ 4u -> (1 + 4)/2 = 2.5u -> 2u
    # (even); +2 @ 1u -> (2·2 + 2·1)/4 = 1.5u -> 2u; -1 @ 3u closes 1 at 3u − 2u: 1·1u = 1u.
    # Short, size 0.5: -1u @ 10, +1u @ 11 realizes −1u·0.5·(11 − 10) = −0.5u -> −0 (even: 0);
    # -1u @ 10, +1u @ 13 realizes −1.5u -> −2u.
    u = "0.000000000000000001"
    rows = [("L", "+1", u), ("L", "+1", "0.000000000000000004"), ("L", "+2", u), ("L", "-1", "0.000000000000000003"),
            ("S", f"-{u}", "10"), ("S", u, "11"), ("S", f"-{u}", "10"), ("S", u, "13")]
    frame = pl.DataFrame([
        {"venue": "v", "account": "a", "instrument": "L/USDT:USDT" if k == "L" else "S/USDT:USDT",
         "ts": T0 + dt.timedelta(seconds=n), "leg_id": f"L{n}", "qty": D(q), "price": D(p), "type": "swap",
         "inverse": False, "contract_size": D(1) if k == "L" else D("0.5")} for n, (k, q, p) in enumerate(rows)],
        schema=SPEC_SCHEMA)
    want = reference_average_entry(frame)
    for got in both_paths(frame):
        assert got.legs.equals(want.legs) and got.positions.equals(want.positions)
        assert got.legs["entry_price"].to_list()[:4] == [D(u), D("2e-18"), D("2e-18"), D("2e-18")]
        assert got.legs["realized_pnl_computed"].to_list() == [0, 0, 0, D(u), 0, 0, 0, D("-2e-18")]


def test_ties_of_realized_pnl_round_half_even_compiled():
    # Scales that the compiled walk takes (quantity 1 place, size 1 place): short 0.1 @ 10 of
    # size 0.5, bought back at 10 + 1e-17: −0.1·0.5·1e-17 = −0.5e-18 -> −0 (even); again at
    # 10 + 3e-17: −1.5e-18 -> −2e-18; long 0.3 @ 10, sold at 10 + 1e-17: 0.3·0.5·1e-17 =
    # 1.5e-18 -> 2e-18.
    rows = [("-0.1", "10"), ("0.1", "10.00000000000000001"), ("-0.1", "10"), ("0.1", "10.00000000000000003"),
            ("0.3", "10"), ("-0.3", "10.00000000000000001")]
    frame = pl.DataFrame([
        {"venue": "v", "account": "a", "instrument": "S/USDT:USDT", "ts": T0 + dt.timedelta(seconds=n),
         "leg_id": f"L{n}", "qty": D(q), "price": D(p), "type": "swap", "inverse": False, "contract_size": D("0.5")}
        for n, (q, p) in enumerate(rows)], schema=SPEC_SCHEMA)
    want = reference_average_entry(frame)
    assert want.legs["realized_pnl_computed"].to_list() == [0, 0, 0, D("-2e-18"), 0, D("2e-18")]
    for got in both_paths(frame):
        assert got.legs.equals(want.legs) and got.positions.equals(want.positions)


scaled = st.one_of(st.none(), st.integers(-(10**38 - 1), 10**38 - 1), st.integers(-10**20, 10**20))


@settings(max_examples=200, deadline=None)
@given(st.lists(scaled, max_size=50))
def test_from_scaled_equals_the_text_path(values):
    got, want = from_scaled(values), from_scaled_text(values)
    assert got.dtype == want.dtype == DECIMAL
    assert got.to_list() == want.to_list()
    assert got.to_physical().to_list() == values


def test_from_scaled_refuses_what_passes_38_digits():
    assert from_scaled([10**38 - 1, -(10**38 - 1)]).to_list() == [D("99999999999999999999.999999999999999999"),
                                                                   D("-99999999999999999999.999999999999999999")]
    for value in (10**38, -(10**38), 2**127):
        with pytest.raises(Exception):
            from_scaled([1, value])


# ------------------------------------------------------ session references reuse the day's walk

DAY = dt.date(2026, 12, 5)
SETTLED = ["BTC/USD:BTC", "ETH/USD:ETH", "BTC/USDC:USDC"]


def specs() -> pl.DataFrame:
    rows = [
        {"venue": "deribit", "symbol": "BTC/USD:BTC", "base": "BTC", "quote": "USD", "settle": "BTC", "type": "swap",
         "inverse": True, "contract_size": D(1)},
        {"venue": "deribit", "symbol": "ETH/USD:ETH", "base": "ETH", "quote": "USD", "settle": "ETH", "type": "swap",
         "inverse": True, "contract_size": D(10)},
        {"venue": "deribit", "symbol": "BTC/USDC:USDC", "base": "BTC", "quote": "USDC", "settle": "USDC",
         "type": "swap", "inverse": False, "contract_size": D(1)},
    ]
    return pl.DataFrame(rows, schema=INSTRUMENT_SPECS)


refs_drawn = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["same", "other", "none"]),
                                st.integers(-10**4, 10**4), st.integers(1, 10**9)), max_size=3)
settlements = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 20), st.integers(1, 10**9)), max_size=3)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(-10**4, 10**4).filter(bool), st.integers(1, 10**9),
                          st.integers(0, 20)), max_size=30),
       refs_drawn, settlements, st.booleans())
def test_session_references_from_the_days_walk_equal_walking_again(raw, drawn_refs, settled, from_file):
    spec = specs().to_dicts()
    rows = [{"venue": "deribit", "account": "a", "instrument": SETTLED[i], "ts": T0 + dt.timedelta(seconds=s),
             "leg_id": f"L{n}", "qty": D(q), "price": D(p).scaleb(-2), "type": "swap",
             "inverse": spec[i]["inverse"], "contract_size": spec[i]["contract_size"]}
            for n, (i, q, p, s) in enumerate(raw)]
    legs = pl.DataFrame(rows, schema=SPEC_SCHEMA)
    start_rows, ref_rows, seen = [], [], set()
    for i, kind, q, p in drawn_refs:
        if i in seen:
            continue
        seen.add(i)
        entry = None if q == 0 else D(p).scaleb(-2)
        start_rows.append(("deribit", "a", SETTLED[i], D(q), entry))
        if kind == "same":
            ref_rows.append(("deribit", "a", SETTLED[i], D(q), entry))
        elif kind == "other":
            ref_rows.append(("deribit", "a", SETTLED[i], D(q), None if q == 0 else D(p + 7).scaleb(-2)))
    start = pl.DataFrame(start_rows, schema=ENTRY_STATE, orient="row")
    start_refs = pl.DataFrame(ref_rows, schema=ENTRY_STATE, orient="row")
    walked = average_entry(legs, start).positions
    end = walked.filter(pl.col("qty") != 0)
    stamps = [(SETTLED[i], T0 + dt.timedelta(seconds=s, milliseconds=500), D(p).scaleb(-2)) for i, s, p in settled]
    snapshot = POSITION_SNAPSHOT.to_frame()
    cash = DERIVATIVE_CASH.to_frame()
    if from_file:
        snapshot = pl.DataFrame([{"venue": "deribit", "account": "a", "instrument": i, "settlement_price": p}
                                 for i, _, p in stamps], schema=POSITION_SNAPSHOT)
    else:
        cash = pl.DataFrame([{"venue": "deribit", "account": "a", "instrument": i, "ts": t, "kind": "settlement",
                              "asset": "BTC", "qty": D(0), "price": p} for i, t, p in stamps], schema=DERIVATIVE_CASH)
    again = session_references(DAY, legs, start, start_refs, snapshot, specs(), end, cash)
    reused = session_references(DAY, legs, start, start_refs, snapshot, specs(), end, cash, walked=walked)
    assert reused.schema == again.schema
    assert reused.sort(KEY).equals(again.sort(KEY))


def test_the_walk_order_is_the_former_sorts_with_and_without_a_null_time():
    """Legs are put in walk order by the costing's ordering kernel, or (a null time) by
    Polars' rank and sort as before: the same walk either way, the reference's."""
    frame, opening = build([(0, "a", ("qty", 10**8), 10**6, 5), (2, "b", ("qty", 3 * 10**8), 2 * 10**6, 1),
                            (0, "a", ("qty", -4 * 10**7), 3 * 10**6, 1), (2, "b", ("flip", 1), 10**6, 1),
                            (1, "a", ("qty", 7), 10**6, 3), (0, "a", ("qty", 5), 10**6, 1)], [(0, "b", 3, 5)])
    got, want = average_entry(frame, opening), reference_average_entry(frame, opening)
    assert got.legs.equals(want.legs) and got.positions.equals(want.positions)
    ordered, keys = entry._in_walk_order(frame)
    assert ordered["__row"].to_list() != sorted(ordered["__row"].to_list())  # the order moved rows
    with_null = frame.with_columns(ts=pl.when(pl.col("leg_id") == "L4").then(None).otherwise(pl.col("ts")))
    got, want = average_entry(with_null, opening), reference_average_entry(with_null, opening)
    assert got.legs.equals(want.legs) and got.positions.equals(want.positions)
