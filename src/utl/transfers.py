"""Transfers between own accounts move lots: they are not a disposal and an acquisition.

The problem. A withdrawal from account A and its deposit into account B are one asset
changing place. Booked as two unrelated legs, the withdrawal would be a sale at the day's
mark (a realized gain that never happened) and the deposit a new lot at the mark (its
history lost). Here (ledger.md):

- every withdrawal takes its quantity out of A's lots in the costing method's order (FIFO:
  oldest first; LIFO: newest; HIFO: highest entry price; WAC: from the pool at its average),
  each piece keeping its acquisition time and unit cost. The pieces are *in transit*: carried
  from date to date with the pending withdrawal (:class:`utl.day.DayState`) until a deposit
  matches it (:mod:`utl.matching`);
- a matched deposit puts those pieces into B's lots unchanged, in the order they left; where
  less arrives than left (an unstated network fee), the pieces beyond the deposit are
  disposed of at the day's mark in A's book: realized ``q * (mark - entry)`` and a fee of
  ``q * mark``; where more arrives (within the tolerance), the excess is a lot at the mark;
- a withdrawal larger than A's long lots takes what there is; the rest leaves at the day's
  mark and opens a short lot in A (a missing acquisition, :mod:`utl.exceptions`).

A network fee the venue states (its ``<id>/fee`` line) is an ordinary fee leg: a disposal
at the mark, costed with the day's other trades.

PnL stays explained: a transfer's legs are external flows valued at the cost of the lots
they move (not at the mark), so the unrealized gain travels with the lots from A's book to
B's, and a transfer within one book nets to nothing. Worked example (FIFO, mark 30,000 on
the day): A holds BTC lots 1 @ 10,000 (Jan) and 1 @ 20,000 (Feb) and withdraws 1.5; B
receives 1.5. A's flow is -(1 x 10,000 + 0.5 x 20,000) = -20,000; B gets the Jan lot and
0.5 of the Feb lot at those costs, flow +20,000; A keeps 0.5 @ 20,000. A later sale of 1
BTC from B at 40,000 realizes 1 x (40,000 - 10,000) = 30,000.

How it runs. Costing is one vectorized pass (:func:`utl.costing.compute_costs`) over every
(book, asset) that no transfer touches. A (book, asset) that one touches is costed in
segments: the trades up to a transfer, then the lots move, then the trades up to the next
one. A transfer's effect on the lots depends on every trade before it and decides what every
trade after it closes, so these segments are sequential; the loop is over the day's
transfers (a handful), each segment a vectorized costing of one (book, asset).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from utl.costing import compute_costs
from utl.decimals import DECIMAL, WIDE as _WIDE, exact_sum
from utl.schemas import LOTS_STATE, TRANSIT_LOTS, UTC_TS

ZERO = pl.lit(0, DECIMAL)
GROUP = ["book", "asset"]
TRADE_COLUMNS = ["book", "asset", "ts", "trade_id", "qty", "price", "is_carry"]
TRADES = pl.Schema({"book": pl.String, "asset": pl.String, "ts": UTC_TS, "trade_id": pl.String, "qty": DECIMAL,
                    "price": DECIMAL, "is_carry": pl.Boolean})
REALIZED = pl.Schema({"book": pl.String, "asset": pl.String, "is_carry": pl.Boolean, "realized_pnl": DECIMAL})
FLOWS = pl.Schema({"book": pl.String, "asset": pl.String, "kind": pl.String, "value": DECIMAL})
TRANSIT_KEY = ["venue", "account", "leg_id"]


@dataclass(frozen=True)
class Withdrawal:
    venue: str
    account: str
    leg_id: str
    book: str
    asset: str
    ts: dt.datetime
    trade_id: str  # the leg's costing id
    amount: object  # Decimal: the quantity the withdrawal line moves


@dataclass(frozen=True)
class Arrival:
    venue: str  # the receiving account
    account: str
    leg_id: str
    book: str
    asset: str
    ts: dt.datetime
    trade_id: str
    deposited: object  # Decimal
    sender: tuple[str, str, str]  # the withdrawal's (venue, account, leg_id)
    sender_book: str


@dataclass(frozen=True)
class Moved:
    """The day's costing with transfers applied."""

    lots: pl.DataFrame  # open lots at end of day, every book (compute_costs' open_lots columns)
    realized: pl.DataFrame  # REALIZED: every costing trade's realized PnL (+ the unstated fees' disposals)
    flows: pl.DataFrame  # FLOWS: per transfer leg its value at the moved lots' cost, and the fees' rows
    transit: pl.DataFrame  # TRANSIT_LOTS of the withdrawals still pending


def take_lots(lots: pl.DataFrame, qty, method: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(lots left, lots taken) when ``qty`` leaves a (book, asset)'s long lots in ``method``'s
    order; taken pieces keep their id, time and unit cost. Short lots are never taken."""
    if lots.height == 0 or qty <= 0:
        return lots, lots.clear()
    ordered = lots.with_row_index("__n")
    if method == "lifo":
        ordered = ordered.sort("__n", descending=True)
    elif method == "hifo":
        ordered = ordered.sort(["entry_price", "__n"], descending=[True, False])
    want = pl.lit(qty, DECIMAL)
    held = pl.when(pl.col("qty") > 0).then(pl.col("qty")).otherwise(ZERO)
    ordered = ordered.with_columns(__before=held.cum_sum() - held, __held=held)
    ordered = ordered.with_columns(
        __take=pl.when(pl.col("__before") >= want).then(ZERO)
        .when(pl.col("__before") + pl.col("__held") <= want).then(pl.col("__held"))
        .otherwise(want - pl.col("__before"))
    )
    taken = ordered.filter(pl.col("__take") > 0).with_columns(qty=pl.col("__take"))
    left = ordered.with_columns(qty=pl.col("qty") - pl.col("__take")).filter(pl.col("qty") != 0).sort("__n")
    drop = ["__n", "__before", "__held", "__take"]
    return left.drop(drop), taken.drop(drop)


def split_transit(transit: pl.DataFrame, qty) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the first ``qty`` of in-transit pieces, in the order they left; the rest)."""
    if transit.height == 0:
        return transit, transit
    want = pl.lit(qty, DECIMAL)
    marked = transit.with_columns(__before=pl.col("qty").cum_sum() - pl.col("qty"))
    marked = marked.with_columns(
        __first=pl.when(pl.col("__before") >= want).then(ZERO)
        .when(pl.col("__before") + pl.col("qty") <= want).then(pl.col("qty"))
        .otherwise(want - pl.col("__before"))
    )
    first = marked.filter(pl.col("__first") > 0).with_columns(qty=pl.col("__first"))
    rest = marked.with_columns(qty=pl.col("qty") - pl.col("__first")).filter(pl.col("qty") > 0)
    return first.drop("__before", "__first"), rest.drop("__before", "__first")


def _cost(lots: pl.DataFrame) -> object:
    total = lots.lazy().select((pl.col("qty") * pl.col("entry_price")).sum()).collect().item()
    return total if total is not None else 0


def _as_trades(lots: pl.DataFrame) -> pl.DataFrame:
    return lots.select("book", "asset", pl.col("opened_ts").alias("ts"), "trade_id", "qty",
                       pl.col("entry_price").alias("price"), is_carry=pl.lit(True)).cast(TRADES)


class _Group:
    """One (book, asset) touched by a transfer: its lots and its day's trades not yet costed."""

    def __init__(self, book: str, asset: str, lots: pl.DataFrame, trades: pl.DataFrame, method: str):
        self.book, self.asset, self.method = book, asset, method
        self.lots = lots
        self.trades = trades.sort("ts", maintain_order=True)
        self.realized: list[pl.DataFrame] = []

    def cost_until(self, ts: dt.datetime | None) -> None:
        """Cost the trades before ``ts`` (all of them when None) over the lots held."""
        if ts is None:
            now, self.trades = self.trades, self.trades.clear()
        else:
            now = self.trades.filter(pl.col("ts") < ts)
            self.trades = self.trades.filter(pl.col("ts") >= ts)
        if now.height == 0 and (self.lots.height == 0 or self.method != "wac"):
            return
        costs = compute_costs(pl.concat([_as_trades(self.lots), now.cast(TRADES)]), self.method, ids_unique=True,
                              positions=False)
        self.realized.append(costs.realized.select(REALIZED.names()).cast(REALIZED))
        # A WAC pool comes back without an id; it needs one to be carried on (utl.daily does the same).
        self.lots = costs.open_lots.with_columns(
            trade_id=pl.coalesce("trade_id", pl.format("pool/{}/{}", pl.col("book"), pl.col("asset")))
        ).select(LOTS_STATE.names()).cast(LOTS_STATE)


def move_lots(
    carried: pl.DataFrame, today: pl.DataFrame, withdrawals: list[Withdrawal], arrivals: list[Arrival],
    transit: pl.DataFrame, marks: dict[str, object], method: str,
) -> Moved:
    """The day's costing with its transfers.

    ``carried``: the lots at the start of the day as costing trades (TRADES, ``is_carry``);
    ``today``: the day's costing trades (TRADES) including the transfers' own legs, which are
    taken out here and applied as lot moves; ``withdrawals``: every withdrawal of the day
    (each takes lots into transit); ``arrivals``: the day's matched deposits; ``transit``:
    TRANSIT_LOTS carried with the pending withdrawals; ``marks``: asset -> the day's mark.
    """
    moving = {w.trade_id for w in withdrawals} | {a.trade_id for a in arrivals}
    trades = today.filter(~pl.col("trade_id").is_in(list(moving)))
    touched = pl.DataFrame([(w.book, w.asset) for w in withdrawals] + [(a.book, a.asset) for a in arrivals],
                           schema={"book": pl.String, "asset": pl.String}, orient="row").unique()
    everything = pl.concat([carried.cast(TRADES), trades.cast(TRADES)])
    bulk = everything.join(touched, on=GROUP, how="anti")
    parts_realized: list[pl.DataFrame] = []
    parts_lots: list[pl.DataFrame] = []
    if bulk.height:
        costs = compute_costs(bulk, method, ids_unique=True, positions=False)
        parts_realized.append(costs.realized.select(REALIZED.names()).cast(REALIZED))
        parts_lots.append(costs.open_lots.select(LOTS_STATE.names()).cast(LOTS_STATE))

    groups: dict[tuple[str, str], _Group] = {}
    mine = everything.join(touched, on=GROUP, how="semi")
    for (book, asset), rows in mine.group_by(GROUP, maintain_order=True):
        lots = rows.filter(pl.col("is_carry")).select(
            "book", "asset", "trade_id", opened_ts="ts", qty="qty", entry_price="price").cast(LOTS_STATE)
        groups[(book, asset)] = _Group(book, asset, lots, rows.filter(~pl.col("is_carry")), method)
    for book, asset in touched.iter_rows():
        groups.setdefault((book, asset), _Group(book, asset, LOTS_STATE.to_frame(), TRADES.to_frame(), method))

    in_transit: dict[tuple[str, str, str], pl.DataFrame] = {
        tuple(key): part.drop(TRANSIT_KEY) for key, part in transit.group_by(TRANSIT_KEY, maintain_order=True)
    }
    flows: list[dict] = []
    fee_realized: list[dict] = []
    events = sorted([(w.ts, 0, i) for i, w in enumerate(withdrawals)] + [(a.ts, 1, i) for i, a in enumerate(arrivals)])
    for ts, is_arrival, i in events:
        if not is_arrival:
            w = withdrawals[i]
            group = groups[(w.book, w.asset)]
            group.cost_until(ts)
            group.lots, taken = take_lots(group.lots, w.amount, method)
            # 0 * amount: an exact zero at the amount's exponent (a zero coefficient never rounds).
            short = _WIDE.subtract(w.amount, exact_sum(taken["qty"].to_list(), start=0 * w.amount))
            pieces = taken.select("trade_id", "opened_ts", "qty", "entry_price")
            if short > 0:
                # Nothing held to send: the rest leaves at the mark and A is short of it.
                mark = marks[w.asset]
                at_mark = pl.DataFrame({"trade_id": [w.trade_id], "opened_ts": [w.ts], "qty": [short],
                                        "entry_price": [mark]},
                                       schema={"trade_id": pl.String, "opened_ts": UTC_TS, "qty": DECIMAL,
                                               "entry_price": DECIMAL})
                pieces = pl.concat([pieces.cast(at_mark.schema), at_mark])
                group.lots = pl.concat([group.lots, at_mark.select(
                    book=pl.lit(w.book), asset=pl.lit(w.asset), trade_id="trade_id", opened_ts="opened_ts",
                    qty=-pl.col("qty"), entry_price="entry_price").cast(LOTS_STATE)])
            in_transit[(w.venue, w.account, w.leg_id)] = pieces
            flows.append({"book": w.book, "asset": w.asset, "kind": "withdrawal", "value": _WIDE.minus(_cost(pieces))})
        else:
            a = arrivals[i]
            group = groups[(a.book, a.asset)]
            group.cost_until(ts)
            pieces = in_transit.pop(a.sender, None)
            if pieces is None:
                pieces = TRANSIT_LOTS.to_frame().drop(TRANSIT_KEY)
            arrive, rest = split_transit(pieces, a.deposited)
            excess = _WIDE.subtract(a.deposited, exact_sum(arrive["qty"].to_list(), start=0 * a.deposited))
            if excess > 0:
                extra = pl.DataFrame({"trade_id": [a.trade_id], "opened_ts": [a.ts], "qty": [excess],
                                      "entry_price": [marks[a.asset]]},
                                     schema={"trade_id": pl.String, "opened_ts": UTC_TS, "qty": DECIMAL,
                                             "entry_price": DECIMAL})
                arrive = pl.concat([arrive.cast(extra.schema), extra])
            group.lots = pl.concat([group.lots, arrive.select(
                book=pl.lit(a.book), asset=pl.lit(a.asset), trade_id="trade_id", opened_ts="opened_ts", qty="qty",
                entry_price="entry_price").cast(LOTS_STATE)])
            flows.append({"book": a.book, "asset": a.asset, "kind": "deposit", "value": _cost(arrive)})
            if rest.height:
                # Less arrived than left: the network fee, disposed of at the day's mark by A.
                mark = marks[a.asset]
                gone = rest.select(q=pl.col("qty"), cost=pl.col("qty") * pl.col("entry_price"),
                                   gain=pl.col("qty") * (pl.lit(mark, DECIMAL) - pl.col("entry_price")),
                                   fee=pl.col("qty") * pl.lit(mark, DECIMAL)).sum()
                row = gone.row(0, named=True)
                flows.append({"book": a.sender_book, "asset": a.asset, "kind": "transfer", "value": row["cost"]})
                flows.append({"book": a.sender_book, "asset": a.asset, "kind": "fee", "value": _WIDE.minus(row["fee"])})
                fee_realized.append({"book": a.sender_book, "asset": a.asset, "is_carry": False,
                                     "realized_pnl": row["gain"]})
    for group in groups.values():
        group.cost_until(None)
        parts_realized.extend(group.realized)
        parts_lots.append(group.lots.cast(LOTS_STATE))
    if fee_realized:
        parts_realized.append(pl.DataFrame(fee_realized, schema=REALIZED, orient="row"))
    transit_after = [part.with_columns(venue=pl.lit(k[0]), account=pl.lit(k[1]), leg_id=pl.lit(k[2]))
                     for k, part in in_transit.items() if part.height]
    return Moved(
        lots=pl.concat(parts_lots) if parts_lots else LOTS_STATE.to_frame(),
        realized=pl.concat(parts_realized) if parts_realized else REALIZED.to_frame(),
        flows=pl.DataFrame(flows, schema=FLOWS, orient="row"),
        transit=(pl.concat([p.select(TRANSIT_LOTS.names()).cast(TRANSIT_LOTS) for p in transit_after])
                 if transit_after else TRANSIT_LOTS.to_frame()),
    )
