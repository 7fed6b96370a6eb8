"""Position snapshots: ``<venue>/<account>/positions/D.json``, recognised by shape.

A file holds one of (whole reply, or just its list):

=====================  ======================================  ===========================
shape                  recognised by                           signed quantity
=====================  ======================================  ===========================
ccxt fetch_positions   a list of dicts with ``contracts``      ``contracts``, ``side`` short → −
Binance positionRisk   a list of dicts with ``positionAmt``    ``positionAmt`` (signed)
Bybit position/list    ``result.list``; dicts ``positionIdx``  ``size``, ``side`` Sell → −
OKX account/positions  ``data``; dicts with ``instId``, ``pos``  ``pos`` (``posSide`` short → −)
Deribit get_positions  ``result``; dicts ``instrument_name``   ``size`` (signed)
=====================  ======================================  ===========================

The quantity stays in the venue's position unit (derivatives.md): Binance USDⓈ-M base
quantity, COIN-M contracts; Bybit linear base, inverse USD; OKX contracts; Deribit USD for
futures, base for options. Numbers are read as their JSON text, never a float. A row whose
size cannot be read is quarantined, never taken as zero; a row whose stated size is zero is
flat and not listed (Binance lists every symbol). Hedge-mode long and short rows of one
instrument are netted into one row: the larger side is the position and the smaller one a
reduction of it, so the net keeps the larger side's entry price (reducing keeps the entry,
as in :mod:`utl.derivatives.entry`). Every venue name becomes the ccxt symbol.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import polars as pl

from utl.decimals import with_venue_decimals
from utl.derivatives.instruments import parse_symbols
from utl.derivatives.schemas import ENTRY_STATE, POSITION_SNAPSHOT
from utl.errors import QUARANTINE_SCHEMA, empty_quarantine, quarantine_file

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_FUTURES_MONTH = dict(zip("FGHJKMNQUVXZ", range(1, 13)))  # Bybit's inverse futures: BTCUSDH25


@dataclass(frozen=True)
class SnapshotRows:
    """One positions file: its rows (:data:`POSITION_SNAPSHOT`), its shape and its refused rows."""

    file: str
    shape: str | None  # ccxt | binance | bybit | okx | deribit | empty; None: not recognised
    positions: pl.DataFrame
    quarantine: pl.DataFrame


# --------------------------------------------------------------------------- venue names


def _yymmdd(day: int, month: int, year: int) -> str:
    return f"{year % 100:02d}{month:02d}{day:02d}"


def _deribit_date(text: str) -> str | None:
    """``27DEC26`` (or ``3JAN27``) as ccxt's ``261227``."""
    m = re.fullmatch(r"(\d{1,2})([A-Z]{3})(\d{2})", text)
    if not m or m.group(2) not in _MONTHS:
        return None
    try:
        day = dt.date(2000 + int(m.group(3)), _MONTHS[m.group(2)], int(m.group(1)))
    except ValueError:
        return None
    return _yymmdd(day.day, day.month, day.year)


def _last_friday(year: int, month: int) -> dt.date:
    last = dt.date(year, month, calendar.monthrange(year, month)[1])
    return last - dt.timedelta(days=(last.weekday() - 4) % 7)


def binance_symbol(name: str) -> str | None:
    """``BTCUSDT`` → ``BTC/USDT:USDT``; ``BTCUSDT_261225`` → ``BTC/USDT:USDT-261225``;
    COIN-M ``BTCUSD_PERP`` → ``BTC/USD:BTC``, ``BTCUSD_261225`` → ``BTC/USD:BTC-261225``."""
    m = re.fullmatch(r"([A-Z0-9]+)USD_(PERP|\d{6})", name)
    if m:
        base, tail = m.groups()
        return f"{base}/USD:{base}" + ("" if tail == "PERP" else f"-{tail}")
    m = re.fullmatch(r"([A-Z0-9]+?)(USDT|USDC|FDUSD|BUSD)(?:_(\d{6}))?", name)
    if m:
        base, quote, expiry = m.groups()
        return f"{base}/{quote}:{quote}" + (f"-{expiry}" if expiry else "")
    return None


def bybit_symbol(name: str, category: str | None = None) -> str | None:
    """``BTCUSDT`` (linear) → ``BTC/USDT:USDT``; ``BTCUSD`` (inverse) → ``BTC/USD:BTC``;
    ``BTCPERP`` → ``BTC/USDC:USDC``; ``BTC-27DEC24`` (USDC future) → ``BTC/USDC:USDC-241227``;
    ``BTCUSDT-27DEC24`` → ``BTC/USDT:USDT-241227``; inverse future ``BTCUSDH25`` →
    ``BTC/USD:BTC-250328`` (the last Friday of the month); options ``BTC-27DEC24-60000-C``
    (USDC) and ``BTC-27DEC24-60000-C-USDT``."""
    m = re.fullmatch(r"([A-Z0-9]+)-(\d{1,2}[A-Z]{3}\d{2})-(\d+(?:\.\d+)?)-([CP])(?:-(USDT|USDC))?", name)
    if m:
        base, date, strike, kind, settle = m.groups()
        expiry, settle = _deribit_date(date), settle or "USDC"
        return f"{base}/{settle}:{settle}-{expiry}-{strike}-{kind}" if expiry else None
    m = re.fullmatch(r"([A-Z0-9]+?)(USDT|USDC)?-(\d{1,2}[A-Z]{3}\d{2})", name)
    if m:
        base, quote, date = m.groups()
        quote, expiry = quote or "USDC", _deribit_date(date)
        return f"{base}/{quote}:{quote}-{expiry}" if expiry else None
    m = re.fullmatch(r"([A-Z0-9]+)PERP", name)
    if m:
        return f"{m.group(1)}/USDC:USDC"
    m = re.fullmatch(r"([A-Z0-9]+?)USD([FGHJKMNQUVXZ])(\d{2})", name)
    if m and category in (None, "inverse"):
        base, month, year = m.groups()
        friday = _last_friday(2000 + int(year), _FUTURES_MONTH[month])
        return f"{base}/USD:{base}-{_yymmdd(friday.day, friday.month, friday.year)}"
    m = re.fullmatch(r"([A-Z0-9]+?)(USDT|USDC|USD)", name)
    if m:
        base, quote = m.groups()
        if quote == "USD":
            return f"{base}/USD:{base}" if category in (None, "inverse") else None
        return f"{base}/{quote}:{quote}" if category in (None, "linear") else None
    return None


def okx_symbol(name: str) -> str | None:
    """``BTC-USDT-SWAP`` → ``BTC/USDT:USDT``; ``BTC-USD-SWAP`` → ``BTC/USD:BTC``;
    ``BTC-USD-261225`` → ``BTC/USD:BTC-261225``; ``BTC-USD-261225-100000-C`` → the option.
    Contracts quoted in USD settle in the base coin; in USDT/USDC, in the quote."""
    m = re.fullmatch(r"([A-Z0-9]+)-([A-Z0-9]+)-(SWAP|\d{6})(?:-(\d+(?:\.\d+)?)-([CP]))?", name)
    if not m:
        return None
    base, quote, tail, strike, kind = m.groups()
    settle = base if quote == "USD" else quote
    symbol = f"{base}/{quote}:{settle}"
    if tail != "SWAP":
        symbol += f"-{tail}" + (f"-{strike}-{kind}" if strike else "")
    elif strike:
        return None
    return symbol


def deribit_symbol(name: str) -> str | None:
    """``BTC-PERPETUAL`` → ``BTC/USD:BTC``; ``ETH_USDC-PERPETUAL`` → ``ETH/USDC:USDC``;
    ``BTC-27DEC26`` → ``BTC/USD:BTC-261227``; ``BTC-27DEC26-100000-C`` →
    ``BTC/USD:BTC-261227-100000-C``; a strike ``0d5`` is 0.5."""
    m = re.fullmatch(r"([A-Z0-9]+)(?:_(USDC|USDT))?-(PERPETUAL|\d{1,2}[A-Z]{3}\d{2})(?:-(\d+(?:d\d+)?)-([CP]))?", name)
    if not m:
        return None
    base, linear, tail, strike, kind = m.groups()
    symbol = f"{base}/{linear}:{linear}" if linear else f"{base}/USD:{base}"
    if tail == "PERPETUAL":
        return None if strike else symbol
    expiry = _deribit_date(tail)
    if expiry is None:
        return None
    return symbol + f"-{expiry}" + (f"-{strike.replace('d', '.')}-{kind}" if strike else "")


# --------------------------------------------------------------------------- shapes


def _get(row: dict, *keys: str) -> Any:
    for key in keys:
        if row.get(key) not in (None, ""):
            return row[key]
    return None


@dataclass(frozen=True)
class _Shape:
    name: str
    size_column: str
    cells: Callable[[dict, str | None], dict]  # a venue row → text cells (category: Bybit's)


def _ccxt(row: dict, _: str | None) -> dict:
    side = (_text(row.get("side")) or "").lower()
    return dict(venue_symbol=_text(row.get("symbol")), instrument=_text(row.get("symbol")),
                size=_text(row.get("contracts")), negative=side == "short", side_ok=side in ("long", "short"),
                entry=_get(row, "entryPrice"), mark=_get(row, "markPrice"), delta=None,
                upl=_get(row, "unrealizedPnl"), settlement=None, contract_size=_get(row, "contractSize"))


def _binance(row: dict, _: str | None) -> dict:
    name = _text(row.get("symbol"))
    return dict(venue_symbol=name, instrument=binance_symbol(name or ""), size=_text(row.get("positionAmt")),
                negative=False, side_ok=True, entry=_get(row, "entryPrice"), mark=_get(row, "markPrice"),
                delta=None, upl=_get(row, "unRealizedProfit", "unrealizedProfit"), settlement=None, contract_size=None)


def _bybit(row: dict, category: str | None) -> dict:
    name, side = _text(row.get("symbol")), _text(row.get("side")) or ""
    return dict(venue_symbol=name, instrument=bybit_symbol(name or "", category), size=_text(row.get("size")),
                negative=side == "Sell", side_ok=side in ("Buy", "Sell"), entry=_get(row, "avgPrice"),
                mark=_get(row, "markPrice"), delta=_get(row, "delta"), upl=_get(row, "unrealisedPnl"),
                settlement=None, contract_size=None)


def _okx(row: dict, _: str | None) -> dict:
    name, side = _text(row.get("instId")), _text(row.get("posSide")) or "net"
    derivative = _text(row.get("instType")) in (None, "SWAP", "FUTURES", "OPTION")
    return dict(venue_symbol=name, instrument=okx_symbol(name or "") if derivative else None,
                size=_text(row.get("pos")), negative=side == "short", side_ok=side in ("net", "long", "short"),
                entry=_get(row, "avgPx"), mark=_get(row, "markPx"), delta=_get(row, "deltaPA"),
                upl=_get(row, "upl"), settlement=None, contract_size=None)


def _deribit(row: dict, _: str | None) -> dict:
    name = _text(row.get("instrument_name"))
    return dict(venue_symbol=name, instrument=deribit_symbol(name or ""), size=_text(row.get("size")),
                negative=False, side_ok=True, entry=_get(row, "average_price"), mark=_get(row, "mark_price"),
                delta=_get(row, "delta"), upl=_get(row, "floating_profit_loss"),
                settlement=_get(row, "settlement_price"), contract_size=None)


SHAPES = {
    "ccxt": _Shape("ccxt", "contracts", _ccxt),
    "binance": _Shape("binance", "positionAmt", _binance),
    "bybit": _Shape("bybit", "size", _bybit),
    "okx": _Shape("okx", "pos", _okx),
    "deribit": _Shape("deribit", "size", _deribit),
}


def recognise(data: Any) -> tuple[str | None, list | None, str | None]:
    """(shape, the list of position rows, Bybit's category) of a parsed positions file."""
    category = None
    if isinstance(data, dict):
        inner = data.get("result", data.get("data", data))
        if isinstance(inner, dict) and isinstance(inner.get("list"), list):
            category = _text(inner.get("category"))
            data = inner["list"]
        elif isinstance(inner, list):
            data = inner
        else:
            return None, None, None
    if not isinstance(data, list):
        return None, None, None
    if not data:
        return "empty", data, category
    keys = set().union(*(row.keys() for row in data if isinstance(row, dict)))
    if "positionAmt" in keys:
        return "binance", data, category
    if {"instId", "pos"} <= keys:
        return "okx", data, category
    if {"instrument_name", "size"} <= keys:
        return "deribit", data, category
    if "positionIdx" in keys or {"symbol", "size", "side", "avgPrice"} <= keys:
        return "bybit", data, category
    if {"contracts", "symbol"} <= keys:
        return "ccxt", data, category
    return None, None, None


def read_positions_file(path: Path, landing: Path, venue: str, account: str) -> SnapshotRows:
    """``<venue>/<account>/positions/D.json`` of a landing folder; a file that is not UTF-8
    text is one quarantine entry naming it."""
    rel = path.relative_to(landing).as_posix()
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return SnapshotRows(rel, None, POSITION_SNAPSHOT.to_frame(), quarantine_file(rel, f"not UTF-8 text: {exc}"))
    return read_positions(text, rel, venue, account)


def opening_positions(snapshot: pl.DataFrame) -> pl.DataFrame:
    """The ENTRY_STATE an account's earliest positions file opens: the stated quantities at
    the stated entry prices (derivatives.md)."""
    return snapshot.select("venue", "account", "instrument", "qty", "entry_price").cast(ENTRY_STATE)


def read_positions(text: str, file: str, venue: str, account: str) -> SnapshotRows:
    """A positions file's text as :data:`POSITION_SNAPSHOT` rows, netted per instrument."""
    try:
        data = json.loads(text.lstrip("\ufeff"), parse_float=str, parse_int=str, parse_constant=str)
    except ValueError as exc:
        return SnapshotRows(file, None, POSITION_SNAPSHOT.to_frame(), quarantine_file(file, f"invalid JSON: {exc}"))
    shape_name, rows, category = recognise(data)
    if shape_name is None:
        return SnapshotRows(file, None, POSITION_SNAPSHOT.to_frame(), quarantine_file(
            file, "unknown positions shape: not ccxt fetch_positions, Binance positionRisk, Bybit position/list, "
            "OKX account/positions or Deribit get_positions"))
    if shape_name == "empty":
        return SnapshotRows(file, "empty", POSITION_SNAPSHOT.to_frame(), empty_quarantine())
    shape = SHAPES[shape_name]
    cells, refused = [], []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            refused.append({"file": file, "row": number, "column": None, "reason": "a position is not a JSON object",
                            "raw": json.dumps(row)})
            continue
        cells.append({**shape.cells(row, category), "source_row": number})
    frame = pl.DataFrame(cells, schema=_CELLS, orient="row") if cells else pl.DataFrame(schema=_CELLS)
    positions, bad = _positions(frame, shape, file, venue, account)
    quarantine = pl.concat([pl.DataFrame(refused, schema=QUARANTINE_SCHEMA), bad]).sort("row")
    return SnapshotRows(file, shape_name, positions, quarantine)


_CELLS = {
    "venue_symbol": pl.String, "instrument": pl.String, "size": pl.String, "negative": pl.Boolean,
    "side_ok": pl.Boolean, "entry": pl.String, "mark": pl.String, "delta": pl.String, "upl": pl.String,
    "settlement": pl.String, "contract_size": pl.String, "source_row": pl.Int64,
}


def _positions(cells: pl.DataFrame, shape: _Shape, file: str, venue: str, account: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    numbers = {"size": "size", "entry": "entry", "mark": "mark", "delta": "delta", "upl": "upl",
               "settlement": "settlement", "contract_size": "contract_size"}
    parsed = with_venue_decimals(cells.rename({k: f"{k}_text" for k in numbers}), {k: f"{k}_text" for k in numbers})
    symbols = parse_symbols(parsed["instrument"].fill_null(""))
    parsed = parsed.with_columns(symbol_problem=symbols["problem"])
    size_missing = pl.col("size").is_null() & ~pl.col("size__bad")
    nonzero = pl.col("size").is_not_null() & (pl.col("size") != 0)
    checks = [
        (shape.size_column, pl.col("size__bad"), pl.format('"{}" is not an exact decimal: the size cannot be read', pl.col("size_text")), "size_text"),
        (shape.size_column, size_missing, pl.lit("no size: a position without a readable size is not taken as flat"), "venue_symbol"),
        ("symbol", nonzero & pl.col("instrument").is_null(),
         pl.format('"{}" does not name a derivative UTL can map to a ccxt symbol', pl.col("venue_symbol")), "venue_symbol"),
        ("symbol", nonzero & pl.col("instrument").is_not_null() & pl.col("symbol_problem").is_not_null(), pl.col("symbol_problem"), "venue_symbol"),
        ("side", nonzero & ~pl.col("side_ok"), pl.lit("a non-zero size without a side (long or short)"), "venue_symbol"),
    ]
    for name in ("entry", "mark", "delta", "upl", "settlement", "contract_size"):
        checks.append((name, pl.col(f"{name}__bad"), pl.format('"{}" is not an exact decimal', pl.col(f"{name}_text")), f"{name}_text"))
    bad = pl.concat([
        parsed.filter(when.fill_null(False)).select(
            file=pl.lit(file), row="source_row", column=pl.lit(_column(shape, name)), reason=why, raw=pl.col(raw))
        for name, when, why, raw in checks
    ]).cast(QUARANTINE_SCHEMA)
    good = parsed.join(bad.select(pl.col("row").alias("source_row")).unique(), on="source_row", how="anti").filter(nonzero)
    signed = good.with_columns(qty=pl.when(pl.col("negative")).then(-pl.col("size").abs()).otherwise(pl.col("size")))
    netted = (
        signed.lazy()
        .group_by("instrument", maintain_order=True)
        .agg(
            venue_symbol=pl.col("venue_symbol").first(),
            qty=pl.col("qty").sum(),
            # Netted hedge legs: the larger side is the position, the smaller one reduced it,
            # and reducing keeps the entry (entry.py): the net's entry is the larger side's.
            entry_price=pl.col("entry").sort_by(pl.col("qty").abs(), descending=True).first(),
            mark_price=pl.col("mark").first(),
            delta=pl.col("delta").sum(),
            delta_stated=pl.col("delta").is_not_null().all(),
            unrealized_pnl=pl.col("upl").sum(),
            upl_stated=pl.col("upl").is_not_null().all(),
            settlement_price=pl.col("settlement").first(),
            contract_size=pl.col("contract_size").first(),
            source_row=pl.col("source_row").min(),
        )
        .collect()
    )
    positions = netted.filter(pl.col("qty") != 0).select(
        venue=pl.lit(venue), account=pl.lit(account), instrument="instrument", venue_symbol="venue_symbol", qty="qty",
        entry_price="entry_price",
        mark_price="mark_price",
        delta=pl.when(pl.col("delta_stated")).then(pl.col("delta")),
        unrealized_pnl=pl.when(pl.col("upl_stated")).then(pl.col("unrealized_pnl")),
        settlement_price="settlement_price", contract_size="contract_size",
        source_file=pl.lit(file), source_row="source_row",
    ).cast(POSITION_SNAPSHOT)
    return positions, bad


_COLUMNS = {
    "ccxt": {"entry": "entryPrice", "mark": "markPrice", "upl": "unrealizedPnl", "contract_size": "contractSize"},
    "binance": {"symbol": "symbol", "entry": "entryPrice", "mark": "markPrice", "upl": "unRealizedProfit"},
    "bybit": {"entry": "avgPrice", "mark": "markPrice", "upl": "unrealisedPnl"},
    "okx": {"symbol": "instId", "side": "posSide", "entry": "avgPx", "mark": "markPx", "delta": "deltaPA", "upl": "upl"},
    "deribit": {"symbol": "instrument_name", "side": "direction", "entry": "average_price", "mark": "mark_price",
                "upl": "floating_profit_loss", "settlement": "settlement_price"},
}


def _column(shape: _Shape, name: str) -> str:
    """The venue's own key for a field, so the quarantine names what the file says."""
    return _COLUMNS[shape.name].get(name, name)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)

