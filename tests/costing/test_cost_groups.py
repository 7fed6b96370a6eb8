"""``cost_groups`` (the daily run's costing) equals ``compute_costs`` on the same trades.

It is the same matching with the per-trade columns left out: per (book, asset) realized PnL
must be the sum of ``compute_costs``' per-trade figures over the counted rows, and the open
lots the same lots, in the same order, naming their opening trade by input row.
"""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, strategies as st

from utl.costing import GROUP_TRADES, compute_costs, cost_groups

from .test_properties import SETTINGS, books


def typed(rows) -> pl.DataFrame:
    return pl.DataFrame(
        [{**r, "trade_id": f"t{i}"} for i, r in enumerate(rows)],
        schema={"book": pl.String, "asset": pl.String, "ts": pl.Datetime("us", "UTC"), "trade_id": pl.String,
                "qty": pl.Decimal(38, 18), "price": pl.Decimal(38, 18)},
    )


@pytest.mark.parametrize("method", ["fifo", "lifo", "hifo", "wac"])
@SETTINGS
@given(rows=books(), carried=st.integers(0, 10))
def test_cost_groups_equals_compute_costs(method, rows, carried):
    frame = typed(rows)
    carried = min(carried, frame.height)  # the first rows play the carried lots, not counted
    whole = compute_costs(frame, method)
    got = cost_groups(frame.select(GROUP_TRADES.names()), method, counted_from=carried)
    assert got is not None  # every number here fits 64 bits

    counted = whole.realized.with_row_index("row").filter(pl.col("row") >= carried)
    expected = {(b, a): v for b, a, v in counted.group_by("book", "asset").agg(pl.col("realized_pnl").sum()).rows()}
    assert {(b, a): v for b, a, v in got.realized.rows()} == expected

    ids = frame["trade_id"]
    lots = got.open_lots.with_columns(trade_id=ids.gather(got.open_lots["row"]) if method != "wac" else pl.lit(None, pl.String))
    columns = ["book", "asset", "trade_id", "opened_ts", "qty", "entry_price"]
    assert lots.select(columns).rows() == whole.open_lots.select(columns).rows()


def test_cost_groups_declines_what_compute_costs_must_name():
    # A zero quantity and a null price: compute_costs reports them by row; cost_groups
    # does nothing and says so (None), so its caller can ask compute_costs.
    rows = [{"book": "b", "asset": "BTC", "ts": None, "qty": Decimal("0"), "price": None}]
    frame = pl.DataFrame(rows, schema=GROUP_TRADES)
    assert cost_groups(frame, "fifo") is None
    assert cost_groups(frame.cast({"qty": pl.String}), "fifo") is None  # not the typed columns


def test_carried_rows_realize_nothing_for_the_day():
    # b/BTC: a carried long lot of 1 @ 100 (row 0), then the day sells 1 @ 130: +30 counted.
    # b/ETH: a carried long 2 @ 10 and a carried short -1 @ 12 (a grouped book's two
    # accounts; row 2 closes 1 of row 1 at +2, a carried row, not counted); no trade today,
    # so b/ETH has no realized row at all, as a group-by of the day's rows would give.
    frame = pl.DataFrame(
        {"book": ["b", "b", "b", "b"], "asset": ["BTC", "ETH", "ETH", "BTC"],
         "ts": [0, 0, 1, 5], "qty": ["1", "2", "-1", "-1"], "price": ["100", "10", "12", "130"]},
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC"))).cast(GROUP_TRADES)
    got = cost_groups(frame, "fifo", counted_from=3)
    assert got is not None
    assert got.realized.rows() == [("b", "BTC", Decimal("30"))]
    assert got.open_lots.select("asset", "row", "qty").rows() == [("ETH", 1, Decimal("1"))]
