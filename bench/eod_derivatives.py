"""The derivatives share of the end-of-day benchmark's landing (issue 14), generated vectorized.

``write_derivatives`` adds to a landing folder made by :mod:`eod_landing` the day's fills of
200 instruments on 50 bases ``A000``..``A049``: per base a linear perpetual ``A012/USDT:USDT``
and a linear dated future ``A012/USDT:USDT-240628`` on Binance USDⓈ-M, an inverse perpetual
``A012/USD:A012`` and an inverse dated future ``A012/USD:A012-240329`` on Deribit. Files, in the
layouts the readers read (``shared/venues/``, ``shared/contracts/derivatives.md``):

- ``binance/fut-bin-NN/trades/``: USDⓈ-M Futures Trade History (current layout, zone
  ``(UTC+0)`` in the name) and Futures Transaction History (``COMMISSION`` per fill,
  ``FUNDING_FEE`` at 08:00 and 16:00 UTC per open perpetual): the account's USDT ledger;
- ``deribit/mm-der-NN/trades/transaction_log-<uid>-<COIN>-….csv``: one log per coin (Deribit
  writes one per currency): trade rows with the fee in ``Change``, ``Position`` after;
- ``<venue>/<account>/positions/D.json``: Binance ``positionRisk`` and Deribit
  ``get_positions`` (flat on the opening date, the ledger's positions at the day's end);
- ``<venue>/<account>/balances/D.csv``: the settle assets (opening + every ledger line);
- ``instruments/<opening>.csv``: the 200 specs (Binance size 1 base; Deribit 1 USD, inverse);
- the instrument rows of ``marks/<date>.csv``.

Each (account, instrument) trades one way for the day (its side drawn once), so no fill
reduces a position and no realized PnL arises: the settle-asset ledger is fees and funding,
exact in scaled integers with no average-entry walk in the generator. The average entry
(linear and harmonic) is still walked by UTL for every leg. Deribit fills fall after the
08:00 UTC session settlement, so the day has none. One Deribit snapshot position is planted
10 USD off the ledger: the run's one position break.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

from venue_files import digits, signed, write_lines

BASES = 50  # A000..A049: 4 instruments each, 200 in all
BINANCE_ACCOUNTS = 5
DERIBIT_ACCOUNTS = 5
FUNDING_HOURS = (8, 16)  # Binance perpetual funding stamps within the day (the 00:00 one finds every account flat)
FUNDING_PER_10K = 1  # 0.01% a period: longs pay
BINANCE_USDT_OPENING = 5 * 10**8  # USDT per futures account, whole units
DERIBIT_COIN_OPENING = 10**6  # coins of each base per Deribit account, whole units
DERIBIT_MONTH = "29MAR24"
BINANCE_EXPIRY = "240628"


def binance_names() -> list[str]:
    return [f"fut-bin-{i + 1:02d}" for i in range(BINANCE_ACCOUNTS)]


def deribit_names() -> list[str]:
    return [f"mm-der-{i + 1:02d}" for i in range(DERIBIT_ACCOUNTS)]


def base_code(index: pl.Expr) -> pl.Expr:
    return pl.lit("A") + index.cast(pl.String).str.zfill(3)


def _fills(n: int, accounts: int, prices4: np.ndarray, rng: np.random.Generator, day: dt.date, from_hour: int) -> pl.DataFrame:
    """``n`` fills over ``accounts`` x 2 instruments (kind 0 perpetual, 1 dated) of 50 bases,
    after ``from_hour`` UTC; each (account, base, kind) keeps one side all day."""
    base = rng.integers(0, BASES, n)
    kind = rng.integers(0, 2, n)
    account = rng.integers(0, accounts, n)
    side_of_pair = rng.random((accounts, BASES, 2)) < 0.5
    mark = prices4[base]
    price4 = np.maximum(mark + rng.integers(-(mark // 100), mark // 100 + 1), 1)
    start = np.datetime64(day.isoformat(), "us").astype(np.int64) + from_hour * 3600 * 10**6
    ts = start + np.sort(rng.integers(0, (24 - from_hour) * 3600 * 10**6, n))
    return pl.DataFrame({
        "account": account.astype(np.int32), "base_index": base.astype(np.int32), "kind": kind.astype(np.int8),
        "buy": side_of_pair[account, base, kind], "price4": price4.astype(np.int64), "ts": ts,
        "seq": np.arange(n, dtype=np.int64),
    }).with_columns(pl.col("ts").cast(pl.Datetime("us")), base=base_code(pl.col("base_index")))  # fmt: skip


def _binance(landing: Path, n: int, prices4: np.ndarray, marks4: np.ndarray, rng: np.random.Generator,
             opening: dt.date, day: dt.date) -> None:  # fmt: skip
    names = binance_names()
    f = _fills(n, BINANCE_ACCOUNTS, prices4, rng, day, 0).with_columns(
        qty3=pl.lit(rng.integers(1, 100_000, n)),  # 0.001 .. 99.999 base
        symbol=pl.col("base") + "USDT" + pl.when(pl.col("kind") == 1).then(pl.lit("_" + BINANCE_EXPIRY)).otherwise(pl.lit("")),
    ).with_columns(
        value7=pl.col("qty3") * pl.col("price4"),
        signed3=pl.when(pl.col("buy")).then(pl.col("qty3")).otherwise(-pl.col("qty3")),
    ).with_columns(fee8=pl.col("value7") * 10 * 4 // 10_000)  # 0.04% of the notional, as the venue states it (8 places)
    side = pl.when(pl.col("buy")).then(pl.lit("BUY")).otherwise(pl.lit("SELL"))
    trades = f.select("account", line=pl.concat_str([
        pl.lit("31415926"), pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), "symbol", side, digits(pl.col("price4"), 4),
        digits(pl.col("qty3"), 3), digits(pl.col("value7"), 7), digits(pl.col("fee8"), 8) + " USDT", pl.lit("0"),
        pl.when(pl.col("buy")).then(pl.lit("true")).otherwise(pl.lit("false")), pl.lit("false"),
        (pl.col("seq") + 5_000_000_000).cast(pl.String), (pl.col("seq") // 3 + 8_000_000_000).cast(pl.String),
    ], separator=","))  # fmt: skip
    # Funding: -position at the stamp x the opening mark x 0.01%, at 8 places (what the venue states).
    perps = f.filter(pl.col("kind") == 0)
    funding = pl.concat([
        perps.filter(pl.col("ts") < dt.datetime.combine(day, dt.time(hour)))
        .group_by("account", "base_index", "symbol").agg(pos3=pl.col("signed3").sum())
        .with_columns(ts=pl.lit(dt.datetime.combine(day, dt.time(hour))).cast(pl.Datetime("us")))
        for hour in FUNDING_HOURS
    ]).filter(pl.col("pos3") != 0).join(
        pl.DataFrame({"base_index": np.arange(BASES, dtype=np.int32), "mark4": prices4[:BASES].astype(np.int64)}), on="base_index",
    ).with_columns(
        amount8=-(pl.col("pos3") * pl.col("mark4") * 10 * FUNDING_PER_10K // 10_000),
    ).sort("account", "ts", "symbol")  # fmt: skip
    ledger = pl.concat([
        f.select("account", "ts", "symbol", "seq", type=pl.lit("COMMISSION"), amount8=-pl.col("fee8")),
        funding.select("account", "ts", "symbol", seq=pl.lit(-1, pl.Int64), type=pl.lit("FUNDING_FEE"), amount8="amount8"),
    ]).sort("ts", "seq").with_row_index("tx")  # fmt: skip
    lines = ledger.select("account", line=pl.concat_str([
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), "type", signed(pl.col("amount8"), 8), pl.lit("USDT"), "symbol",
        (pl.col("tx").cast(pl.Int64) + 9_000_000_000).cast(pl.String),
    ], separator=","))  # fmt: skip
    header_t = "Uid,Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID"
    header_l = "Time,Type,Amount,Asset,Symbol,Transaction ID"
    usdt = ledger.group_by("account").agg(pl.col("amount8").sum())
    positions = f.group_by("account", "base_index", "symbol").agg(
        pos3=pl.col("signed3").sum(), value7=pl.col("value7").sum(), qty3=pl.col("qty3").sum())
    for index, name in enumerate(names):
        folder = landing / "binance" / name
        (folder / "trades").mkdir(parents=True, exist_ok=True)
        write_lines(folder / "trades" / "Binance-USDM-Futures-Trade-History-202403060000(UTC+0).csv", header_t,
                    trades.filter(pl.col("account") == index).select("line"))
        write_lines(folder / "trades" / "Binance-USDM-Futures-Transaction-History-202403060000(UTC+0).csv", header_l,
                    lines.filter(pl.col("account") == index).select("line"))
        moved = usdt.filter(pl.col("account") == index)["amount8"].sum()
        _balances(folder, opening, {"USDT": BINANCE_USDT_OPENING * 10**8})
        _balances(folder, day, {"USDT": BINANCE_USDT_OPENING * 10**8 + int(moved)})
        held = positions.filter(pl.col("account") == index).sort("symbol")
        rows = [_risk(symbol, pos3, value7 * 10**4 // qty3, int(marks4[b])) for b, symbol, pos3, value7, qty3 in
                held.select("base_index", "symbol", "pos3", "value7", "qty3").iter_rows()]  # fmt: skip
        _json(folder / "positions" / f"{opening}.json", [])
        _json(folder / "positions" / f"{day}.json", rows)


def _risk(symbol: str, pos3: int, entry8: int, mark4: int) -> dict:
    """A ``/fapi/v2/positionRisk`` entry (the entry price is informative: not a break)."""
    return {"symbol": symbol, "positionAmt": _text(pos3, 3), "entryPrice": _text(entry8, 8), "markPrice": _text(mark4, 4),
            "unRealizedProfit": "0.00000000", "positionSide": "BOTH", "marginType": "cross", "leverage": "10"}


def _text(scaled: int, places: int) -> str:
    sign = "-" if scaled < 0 else ""
    whole, part = divmod(abs(scaled), 10**places)
    return f"{sign}{whole}.{part:0{places}d}" if places else f"{sign}{whole}"


def _deribit(landing: Path, n: int, prices4: np.ndarray, marks4: np.ndarray, rng: np.random.Generator,
             opening: dt.date, day: dt.date) -> tuple[str, str, str, str]:  # fmt: skip
    """Returns the planted position break: (venue, account, instrument, diff)."""
    names = deribit_names()
    f = _fills(n, DERIBIT_ACCOUNTS, prices4, rng, day, 8).with_columns(
        usd=pl.lit(rng.integers(1, 1_000, n) * 10),  # 10 .. 9990 USD
        instrument=pl.col("base") + "-" + pl.when(pl.col("kind") == 1).then(pl.lit(DERIBIT_MONTH)).otherwise(pl.lit("PERPETUAL")),
    ).with_columns(
        signed_usd=pl.when(pl.col("buy")).then(pl.col("usd")).otherwise(-pl.col("usd")),
        fee8=pl.col("usd") * 500_000_000 // pl.col("price4"),  # 0.05% of the coin notional, 8 places as stated
        base8=pl.col("usd") * 10**12 // pl.col("price4"),
    ).sort("account", "base", "ts", "seq").with_columns(
        position=pl.col("signed_usd").cum_sum().over("account", "instrument"),
        balance8=DERIBIT_COIN_OPENING * 10**8 - pl.col("fee8").cum_sum().over("account", "base"),
    )  # fmt: skip
    side = pl.when(pl.col("buy")).then(pl.lit("open buy")).otherwise(pl.lit("open sell"))
    lines = f.select("account", "base", line=pl.concat_str([
        (pl.col("seq") + 70_000_000).cast(pl.String), (pl.col("seq") + 1).cast(pl.String),
        pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), "instrument", pl.lit("trade"), side, pl.col("usd").cast(pl.String),
        digits(pl.col("base8"), 8), pl.col("position").cast(pl.String), digits(pl.col("price4"), 4),
        digits(pl.col("price4"), 4), digits(pl.col("price4"), 4), pl.lit("0"), pl.lit("0"), pl.lit("0.0005"),
        digits(pl.col("fee8"), 8), pl.lit("0"), signed(-pl.col("fee8"), 8), digits(pl.col("balance8"), 8),
        digits(pl.col("balance8"), 8), (pl.col("seq") + 310_000_000).cast(pl.String),
        (pl.col("seq") // 3 + 510_000_000).cast(pl.String), pl.lit(""), pl.lit(""),
    ], separator=","))  # fmt: skip
    header = ("ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,"
              "Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note")
    fees = f.group_by("account", "base").agg(pl.col("fee8").sum())
    positions = f.group_by("account", "base_index", "instrument").agg(
        size=pl.col("signed_usd").sum(), usd=pl.col("usd").sum(), coins8=pl.col("base8").sum())
    planted = None
    for index, name in enumerate(names):
        folder = landing / "deribit" / name
        (folder / "trades").mkdir(parents=True, exist_ok=True)
        for (coin,), part in lines.filter(pl.col("account") == index).partition_by("base", as_dict=True, maintain_order=True).items():
            write_lines(folder / "trades" / f"transaction_log-{4200 + index}-{coin}-2024-03-06.csv", header, part.select("line"))
        paid = dict(fees.filter(pl.col("account") == index).select("base", "fee8").iter_rows())
        coins = [f"A{i:03d}" for i in range(BASES)]
        _balances(folder, opening, {c: DERIBIT_COIN_OPENING * 10**8 for c in coins})
        _balances(folder, day, {c: DERIBIT_COIN_OPENING * 10**8 - int(paid.get(c, 0)) for c in coins})
        held = positions.filter(pl.col("account") == index).sort("instrument")
        result = []
        for b, instrument, size, usd, coins8 in held.select("base_index", "instrument", "size", "usd", "coins8").iter_rows():
            if planted is None and index == DERIBIT_ACCOUNTS - 1:
                size += 10  # the planted position break: the venue holds 10 USD more
                planted = ("deribit", name, _ccxt(instrument), "10")
            result.append({"instrument_name": instrument, "size": size, "direction": "buy" if size > 0 else "sell",
                           "average_price": float(usd) * 1e8 / float(coins8), "mark_price": int(marks4[b]) / 10**4,
                           "kind": "future"})  # informative floats as the venue writes them, never read as amounts
        _json(folder / "positions" / f"{opening}.json", {"jsonrpc": "2.0", "id": 1, "result": []})
        _json(folder / "positions" / f"{day}.json", {"jsonrpc": "2.0", "id": 1, "result": result})
    return planted


def _ccxt(instrument: str) -> str:
    base, tail = instrument.split("-", 1)
    return f"{base}/USD:{base}" if tail == "PERPETUAL" else f"{base}/USD:{base}-240329"


def _balances(folder: Path, day: dt.date, totals8: dict[str, int]) -> None:
    (folder / "balances").mkdir(parents=True, exist_ok=True)
    text = "asset,total\n" + "".join(f"{asset},{_text(q, 8)}\n" for asset, q in sorted(totals8.items()))
    (folder / "balances" / f"{day}.csv").write_text(text)


def _json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def specs_rows() -> list[str]:
    out = []
    for i in range(BASES):
        a = f"A{i:03d}"
        out += [f"binance,{a}/USDT:USDT,swap,USDT,1,false,,,", f"binance,{a}/USDT:USDT-{BINANCE_EXPIRY},future,USDT,1,false,2024-06-28,,",
                f"deribit,{a}/USD:{a},swap,{a},1,true,,,", f"deribit,{a}/USD:{a}-240329,future,{a},1,true,2024-03-29,,"]
    return out


def instrument_marks(marks4: np.ndarray) -> list[str]:
    """``marks/D.csv`` rows of the 200 instruments: perpetuals at the base's mark, dated futures 1% over."""
    out = []
    for i in range(BASES):
        a, perp, dated = f"A{i:03d}", int(marks4[i]), int(marks4[i]) * 101 // 100
        out += [f"{a}/USDT:USDT,{_text(perp, 4)}", f"{a}/USDT:USDT-{BINANCE_EXPIRY},{_text(dated, 4)}",
                f"{a}/USD:{a},{_text(perp, 4)}", f"{a}/USD:{a}-240329,{_text(dated, 4)}"]
    return out


def write_derivatives(landing: Path, fills: int, prices4: np.ndarray, marks4: np.ndarray, rng: np.random.Generator,
                      opening: dt.date, day: dt.date) -> list[dict]:  # fmt: skip
    """Write the derivatives share (``fills`` fills, half per venue); return the position
    breaks the run must find (venue, account, asset = the symbol, diff)."""
    half = fills // 2
    _binance(landing, half, prices4, marks4, rng, opening, day)
    venue, account, symbol, diff = _deribit(landing, fills - half, prices4, marks4, rng, opening, day)
    (landing / "instruments").mkdir(parents=True, exist_ok=True)
    (landing / "instruments" / f"{opening}.csv").write_text(
        "venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type\n" + "\n".join(specs_rows()) + "\n")
    marks = landing / "marks" / f"{day}.csv"
    marks.write_text(marks.read_text() + "\n".join(instrument_marks(marks4)) + "\n")
    return [{"venue": venue, "account": account, "asset": symbol, "diff": diff}]
