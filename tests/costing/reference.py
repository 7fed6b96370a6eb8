"""A small, obviously correct model of the costing contract in Python's decimal.

Test-only: it loops over trades and lots one at a time, exactly as the contract reads, so
the engine's vectorized/compiled result can be compared with it value for value.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

CTX = Context(prec=120, rounding=ROUND_HALF_EVEN)
Q18 = Decimal(1).scaleb(-18)


def round18(x: Decimal) -> Decimal:
    return x.quantize(Q18, rounding=ROUND_HALF_EVEN, context=CTX)


def reference_costs(trades: list[dict], method: str):
    """trades: dicts with book, asset, ts, trade_id, qty (Decimal), price (Decimal), in input
    order. Returns (per_trade, positions, open_lots): per_trade[i] = (realized, closed,
    position_after); positions[(book, asset)] = (qty, cost_basis, avg_price, realized);
    open_lots = list of (book, asset, trade_id, qty, entry_price) in opening order."""
    order = sorted(range(len(trades)), key=lambda i: (trades[i]["book"], trades[i]["asset"], trades[i]["ts"], i))
    per_trade: list[tuple[Decimal, Decimal, Decimal] | None] = [None] * len(trades)
    books: dict[tuple[str, str], dict] = {}
    for i in order:
        t = trades[i]
        key = (t["book"], t["asset"])
        state = books.setdefault(key, {"lots": [], "pos": Decimal(0), "realized": Decimal(0), "avg": None})
        qty, price = t["qty"], t["price"]
        realized = Decimal(0)
        closed = Decimal(0)
        lots = state["lots"]
        if method == "wac":
            pos = state["pos"]
            if pos == 0 or (pos > 0) == (qty > 0):
                if pos == 0:
                    state["avg"] = price
                    state["opened"] = t["ts"]
                else:
                    state["avg"] = round18(CTX.divide(state["avg"] * abs(pos) + price * abs(qty), abs(pos) + abs(qty)))
            else:
                closed = min(abs(qty), abs(pos))
                sign = 1 if pos > 0 else -1
                realized = round18(closed * (price - state["avg"]) * sign)
                if abs(qty) > abs(pos):
                    state["avg"] = price
                    state["opened"] = t["ts"]
                elif abs(qty) == abs(pos):
                    state["avg"] = None
            state["pos"] = pos + qty
        else:
            remaining = abs(qty)
            while remaining > 0 and lots and (lots[0]["qty"] > 0) != (qty > 0):
                lot = _choose(lots, method)
                take = min(abs(lot["qty"]), remaining)
                sign = 1 if lot["qty"] > 0 else -1
                realized += round18(take * (price - lot["price"]) * sign)
                closed += take
                remaining -= take
                lot["qty"] -= take * sign
                if lot["qty"] == 0:
                    lots.remove(lot)
            if remaining > 0:
                lots.append({"trade_id": t["trade_id"], "ts": t["ts"], "qty": remaining * (1 if qty > 0 else -1), "price": price})
            state["pos"] += qty
        state["realized"] += realized
        per_trade[i] = (realized, closed, state["pos"])
    positions = {}
    open_lots = []
    for key in sorted(books):
        state = books[key]
        if method == "wac":
            pos = state["pos"]
            basis = round18(pos * state["avg"]) if pos != 0 else Decimal(0)
            avg = state["avg"] if pos != 0 else None
            if pos != 0:
                open_lots.append((key[0], key[1], None, pos, state["avg"]))
        else:
            pos = state["pos"]
            basis = sum((round18(lot["qty"] * lot["price"]) for lot in state["lots"]), Decimal(0))
            exact = sum((CTX.multiply(lot["qty"], lot["price"]) for lot in state["lots"]), Decimal(0))
            avg = round18(CTX.divide(exact, pos)) if pos != 0 else None
            for lot in state["lots"]:
                open_lots.append((key[0], key[1], lot["trade_id"], lot["qty"], lot["price"]))
        positions[key] = (pos, basis, avg, state["realized"])
    return per_trade, positions, open_lots


def _choose(lots: list[dict], method: str) -> dict:
    if method == "fifo":
        return lots[0]
    if method == "lifo":
        return lots[-1]
    long = lots[0]["qty"] > 0
    best = lots[0]
    for lot in lots[1:]:  # strict comparison keeps the oldest on ties
        if (lot["price"] > best["price"]) if long else (lot["price"] < best["price"]):
            best = lot
    return best
