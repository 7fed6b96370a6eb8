"""Properties: the engine equals the Decimal reference, value for value, on generated books."""

from __future__ import annotations

import datetime as dt
from decimal import Context, Decimal, localcontext

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utl.costing import compute_costs
from utl.lots import match_lots

from .reference import reference_costs

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def decimal_text(max_places: int, max_int: int):
    return st.builds(
        lambda whole, frac, places: (f"{whole}.{frac:0{places}d}" if places else str(whole)),
        st.integers(0, max_int),
        st.integers(0, 10**max_places - 1),
        st.integers(0, max_places),
    ).map(lambda s: s if "." not in s else s[: s.index(".") + 1 + len(s.split(".")[1])])


@st.composite
def books(draw, max_places: int = 8, price_places: int = 8, tiny: bool = False, max_price: int = 1000):
    n = draw(st.integers(1, 40))
    rows = []
    positions: dict[tuple[str, str], Decimal] = {}
    for i in range(n):
        book = draw(st.sampled_from(["A", "B"]))
        asset = draw(st.sampled_from(["BTC", "ETH"]))
        held = positions.get((book, asset), Decimal(0))
        if held != 0 and draw(st.integers(0, 4)) == 0:
            qty = -held  # back to exactly flat
        elif held != 0 and draw(st.integers(0, 4)) == 0:
            qty = -held * 2  # a flip through zero
        else:
            qty = Decimal(draw(decimal_text(max_places, 50)))
            if tiny and draw(st.booleans()):
                qty = Decimal(draw(st.sampled_from(["0.000000000000000001", "1000000000000", "0.000000000000000007"])))
            if qty == 0:
                qty = Decimal("1")
            if draw(st.booleans()):
                qty = -qty
        price = Decimal(draw(decimal_text(price_places, max_price)))
        if price == 0:
            price = Decimal("0.01")
        positions[(book, asset)] = held + qty
        rows.append({"book": book, "asset": asset, "ts": T0 + dt.timedelta(seconds=draw(st.integers(0, 5))),
                     "trade_id": f"t{i}", "qty": qty, "price": price})
    return rows


def frame_of(rows):
    return pl.DataFrame(
        [{**r, "qty": format(r["qty"], "f"), "price": format(r["price"], "f")} for r in rows],
        schema={"book": pl.String, "asset": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_id": pl.String,
                "qty": pl.String, "price": pl.String},
    )


def check_against_reference(rows, method, context: Context | None = None):
    with localcontext(context or Context(prec=120)):  # (the conftest's own context, unless given)
        result = compute_costs(frame_of(rows), method)
    per_trade, positions, open_lots = reference_costs(rows, method)
    got = result.realized.select("realized_pnl", "closed_qty", "position_after").rows()
    assert got == per_trade
    assert {(r[0], r[1]): r[2:] for r in result.positions.rows()} == positions
    assert result.open_lots.select("book", "asset", "trade_id", "qty", "entry_price").rows() == open_lots
    # Without positions (the day step's, the transfers' and the stream's call): the same
    # per-trade results and open lots, column for column, and no positions.
    with localcontext(context or Context(prec=120)):
        lean = compute_costs(frame_of(rows), method, positions=False)
    assert lean.positions is None
    assert lean.realized.equals(result.realized)
    assert lean.open_lots.equals(result.open_lots)


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@SETTINGS
@given(rows=books())
def test_engine_equals_reference(method, rows):
    check_against_reference(rows, method)


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=books(tiny=True, price_places=12))
def test_engine_equals_reference_on_the_exact_path(method, rows):
    # 1e12 and 1e-18 together need 31 digits: past int64, so the Python-integer path runs.
    check_against_reference(rows, method)


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo"])
@SETTINGS
@given(rows=books())
def test_flows_identity(method, rows):
    """realized = cost of what is still open - sum(qty * price): every unit bought and sold
    is accounted for, exactly (products here need at most 16 places)."""
    result = compute_costs(frame_of(rows), method)
    flows = {}
    for r in rows:
        key = (r["book"], r["asset"])
        flows[key] = flows.get(key, Decimal(0)) - r["qty"] * r["price"]
    for book, asset, qty, basis, _avg, realized in result.positions.rows():
        assert realized == flows[(book, asset)] + basis
        assert qty == sum(r["qty"] for r in rows if (r["book"], r["asset"]) == (book, asset))


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@SETTINGS
@given(rows=books())
def test_quantity_invariants(method, rows):
    result = compute_costs(frame_of(rows), method)
    realized = result.realized.with_columns(
        before=pl.col("position_after") - pl.col("qty")
    )
    # A trade closes at most what was held against it; the rest opened.
    for before, qty, closed in realized.select("before", "qty", "closed_qty").rows():
        opposite = before != 0 and (before > 0) != (qty > 0)
        assert closed == (min(abs(qty), abs(before)) if opposite else 0)
    lots = result.open_lots.group_by("book", "asset").agg(pl.col("qty").sum())
    for book, asset, qty, *_ in result.positions.rows():
        held = lots.filter((pl.col("book") == book) & (pl.col("asset") == asset))["qty"]
        assert (held.item() if held.len() else 0) == qty
        assert all((q > 0) == (qty > 0) for q in result.open_lots.filter(pl.col("book") == book, pl.col("asset") == asset)["qty"])


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@SETTINGS
@given(rows=books(), data=st.data())
def test_group_order_in_input_never_changes_a_result(method, rows, data):
    """Books and assets are independent: shuffling whole groups in the input changes nothing."""
    keys = sorted({(r["book"], r["asset"]) for r in rows})
    order = data.draw(st.permutations(keys))
    shuffled = [r for k in order for r in rows if (r["book"], r["asset"]) == k]
    a = compute_costs(frame_of(rows), method).realized.sort("trade_id")
    b = compute_costs(frame_of(shuffled), method).realized.sort("trade_id")
    assert a.equals(b)


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo"])
@SETTINGS
@given(rows=st.lists(st.tuples(st.integers(0, 2), st.integers(-10**6, 10**6).filter(bool), st.integers(1, 50)),
                     min_size=1, max_size=60))
def test_compiled_and_python_kernels_agree(method, rows):
    rows.sort(key=lambda r: r[0])
    group = np.array([r[0] for r in rows], np.int64)
    qty = np.array([r[1] for r in rows], np.int64)
    rank = np.array([r[2] for r in rows], np.int64)
    fast = match_lots(group, qty, rank, method)
    exact = match_lots(group, qty.astype(object), rank, method)
    for a, b in zip(fast, exact):
        assert [int(x) for x in a] == [int(x) for x in b]


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=books(max_places=18, price_places=18, max_price=10**12))
def test_engine_equals_reference_in_pythons_default_context(method, rows):
    # The conftest widens this thread's context for the tests' own arithmetic; the engine runs
    # in the 28 digits a thread starts with, and prices of 10^12 at 18 places have 31.
    check_against_reference(rows, method, Context())
