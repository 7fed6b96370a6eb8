"""Frames for the day-step tests of derivatives: one account, written in trade notation.

The account ``binance/fut`` opens on ``D1`` from a USDT balance snapshot of ``D0``; every date
has USD marks for USDT (1) and BTC, and the instruments' own marks as ``marks/D.csv`` rows.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import polars as pl

from utl.day import DayInputs, DayState, step
from utl.derivatives.schemas import (
    DATED_INSTRUMENT_SPECS, DATED_POSITION_SNAPSHOT, DERIVATIVE_CASH, DERIVATIVE_FILLS,
)
from utl.schemas import BALANCES_OUT, DAY_LEGS, MARKS_OUT
from utl.settings import Settings

D0, D1, D2, D3 = (dt.date(2026, 12, 1) + dt.timedelta(days=i) for i in range(4))
VENUE, ACCOUNT = "binance", "fut"
LINEAR, INVERSE = "BTC/USDT:USDT", "BTC/USD:BTC"
OPTION = "BTC/USD:BTC-261204-100000-C"  # expires on D3
FUTURE = "BTC/USDT:USDT-261204"


def at(day: dt.date, hh: int = 9, mm: int = 0, ss: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm, ss), tzinfo=dt.timezone.utc)


def fills(day: dt.date, *trades: str, instrument: str = LINEAR, source: str = "fills", fee: str | None = None,
          account: str = ACCOUNT, start: int = 9) -> pl.DataFrame:
    """``fills(D1, "+2 @ 100", "-1 @ 300")``: derivative fills a minute apart from ``start`` h."""
    rows = []
    for i, trade in enumerate(trades):
        qty, price = (part.strip() for part in trade.split("@"))
        rows.append({"venue": VENUE, "account": account, "instrument": instrument, "ts": at(day, start, i),
                     "leg_id": f"{day.isoformat()}/{instrument}/{i}", "qty": D(qty.replace("+", "")), "price": D(price),
                     "fee": None if fee is None else D(fee), "fee_asset": None if fee is None else "USDT",
                     "source": source, "source_file": "f.csv", "source_row": i + 1})
    return pl.DataFrame(rows, schema=DERIVATIVE_FILLS)


def cash(*rows: tuple[dt.datetime, str, str | None, str, str]) -> pl.DataFrame:
    """DERIVATIVE_CASH rows: (ts, kind, instrument, asset, qty)."""
    return pl.DataFrame(
        [{"venue": VENUE, "account": ACCOUNT, "instrument": i, "ts": ts, "entry_id": f"c{n}", "kind": k, "asset": a,
          "qty": D(q), "source_file": "ledger.csv", "source_row": n + 1} for n, (ts, k, i, a, q) in enumerate(rows)],
        schema=DERIVATIVE_CASH)


def positions(day: dt.date, *rows: tuple[str, str, str | None, str | None], settlement: dict | None = None,
              account: str = ACCOUNT) -> pl.DataFrame:
    """A positions file of ``day``: (instrument, qty, entry_price, mark_price); no rows: a file listing none."""
    if not rows:
        return pl.DataFrame([{"business_date": day, "venue": VENUE, "account": account, "instrument": None,
                              "qty": D(0), "source_file": "p.json", "source_row": 0}], schema=DATED_POSITION_SNAPSHOT)
    settlement = settlement or {}
    return pl.DataFrame(
        [{"business_date": day, "venue": VENUE, "account": account, "instrument": i, "venue_symbol": i, "qty": D(q),
          "entry_price": None if e is None else D(e), "mark_price": None if m is None else D(m),
          "settlement_price": settlement.get(i), "source_file": f"positions/{day}.json", "source_row": n + 1}
         for n, (i, q, e, m) in enumerate(rows)], schema=DATED_POSITION_SNAPSHOT)


def spec(symbol: str, type_: str, settle: str, size: str, inverse: bool, *, expiry: dt.date | None = None,
         venue: str | None = None, base: str = "BTC", quote: str = "USDT") -> dict:
    return {"business_date": D0, "venue": venue, "symbol": symbol, "base": base, "quote": quote, "settle": settle,
            "type": type_, "inverse": inverse, "expiry": expiry, "contract_size": D(size), "source_file": "i.csv",
            "source_row": 1}


SPECS = pl.DataFrame([
    spec(LINEAR, "swap", "USDT", "1", False),
    spec(INVERSE, "swap", "BTC", "100", True, quote="USD"),
    spec(FUTURE, "future", "USDT", "1", False, expiry=D3),
    spec(OPTION, "option", "BTC", "1", True, expiry=D3, quote="USD"),
], schema=DATED_INSTRUMENT_SPECS)


def balances(day: dt.date, **totals: str) -> pl.DataFrame:
    return pl.DataFrame([{"business_date": day, "venue": VENUE, "account": ACCOUNT, "asset": a, "total": D(t),
                          "source_file": "b.json", "source_row": n + 1} for n, (a, t) in enumerate(totals.items())],
                        schema=BALANCES_OUT)


def marks(day: dt.date, btc: str = "60000", **instruments: str) -> pl.DataFrame:
    prices = {"USDT": "1", "BTC": btc, **{k.replace("_", "/"): v for k, v in instruments.items()}}
    return pl.DataFrame([{"business_date": day, "asset": a, "price": D(p), "source_file": "m.csv", "source_row": n + 1}
                         for n, (a, p) in enumerate(prices.items())], schema=MARKS_OUT)


def instrument_marks(day: dt.date, btc: str = "60000", **by_symbol: str) -> pl.DataFrame:
    base = marks(day, btc)
    extra = pl.DataFrame([{"business_date": day, "asset": s, "price": D(p), "source_file": "m.csv", "source_row": 9}
                          for s, p in by_symbol.items()], schema=MARKS_OUT)
    return pl.concat([base, extra])


def day_inputs(day: dt.date, *, snapshot: pl.DataFrame | None = None, opening: pl.DataFrame | None = None,
               marks_today: pl.DataFrame | None = None, marks_before: pl.DataFrame | None = None,
               derivative_fills: pl.DataFrame | None = None, derivative_cash: pl.DataFrame | None = None,
               positions_today: pl.DataFrame | None = None, positions_before: pl.DataFrame | None = None,
               ledger: bool = False, specs: pl.DataFrame = SPECS) -> DayInputs:
    before = day - dt.timedelta(days=1)
    return DayInputs(
        legs=DAY_LEGS.to_frame(),
        snapshots=snapshot if snapshot is not None else BALANCES_OUT.to_frame(),
        opening_snapshots=opening if opening is not None else BALANCES_OUT.to_frame(),
        marks=pl.concat([marks_before if marks_before is not None else marks(before),
                         marks_today if marks_today is not None else marks(day)]),
        derivative_fills=derivative_fills if derivative_fills is not None else DERIVATIVE_FILLS.to_frame(),
        derivative_cash=derivative_cash if derivative_cash is not None else DERIVATIVE_CASH.to_frame(),
        positions=positions_today if positions_today is not None else DATED_POSITION_SNAPSHOT.to_frame(),
        opening_positions=positions_before if positions_before is not None else DATED_POSITION_SNAPSHOT.to_frame(),
        specs=specs,
        ledger_accounts=pl.DataFrame([{"venue": VENUE, "account": ACCOUNT}] if ledger else [],
                                     schema={"venue": pl.String, "account": pl.String}),
    )


def first_day(settings: Settings | None = None, **kwargs) -> tuple[DayState, object]:
    """D1 of an account opening from ``USDT 1000`` (and ``BTC 1``) at D0."""
    kwargs.setdefault("opening", balances(D0, USDT="1000", BTC="1"))
    return step(D1, DayState.empty(D0), day_inputs(D1, **kwargs), settings or Settings())


def row(frame: pl.DataFrame, **where: object) -> dict:
    found = frame.filter(*[pl.col(k) == v for k, v in where.items()])
    assert found.height == 1, found
    return found.row(0, named=True)


def expired_option_day():
    """D3's outputs after +1 OPTION call @ 0.05 on D1, marked 0.08 (D1), 0.09 (D2) and 0.1 on
    D3, its expiry, with no delivery (fills only)."""
    state, _ = first_day(derivative_fills=fills(D1, "+1 @ 0.05", instrument=OPTION),
                         marks_today=instrument_marks(D1, **{OPTION: "0.08"}))
    state, _ = step(D2, state, day_inputs(D2, marks_before=instrument_marks(D1, **{OPTION: "0.08"}),
                                          marks_today=instrument_marks(D2, **{OPTION: "0.09"})), Settings())
    _, out = step(D3, state, day_inputs(D3, marks_before=instrument_marks(D2, **{OPTION: "0.09"}),
                                        marks_today=instrument_marks(D3, **{OPTION: "0.1"})), Settings())
    return out
