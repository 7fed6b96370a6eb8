"""Large venue export files in their real layouts, generated vectorized, for benchmarks.

Each generator writes one file of ``fills`` fills into a folder and returns its path and
its number of data rows (ledger layouts write one row per asset leg, so more rows than fills).
Numbers are built as scaled integers with NumPy and turned into text by Polars string
expressions (no Python loop per row, no float): quotes, thousands commas, unit suffixes,
signs and preambles are written the way each venue writes them (``shared/venues/*.md``).

    from bench.venue_files import GENERATORS
    path, rows = GENERATORS["kraken.trades"](folder, 1_000_000)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

SEED = 20240305
START = np.datetime64("2024-03-01T00:00:00", "s")
SPAN_SECONDS = 28 * 86400


# ---------------------------------------------------------------- text pieces


def digits(scaled: pl.Expr, places: int) -> pl.Expr:
    """Unsigned decimal text of ``scaled / 10**places`` with exactly ``places`` decimals."""
    whole = (scaled // 10**places).cast(pl.String)
    if not places:
        return whole
    return pl.concat_str([whole, pl.lit("."), (scaled % 10**places).cast(pl.String).str.zfill(places)])


def signed(scaled: pl.Expr, places: int) -> pl.Expr:
    text = digits(scaled.abs(), places)
    return pl.when(scaled < 0).then(pl.lit("-") + text).otherwise(text)


def grouped(scaled: pl.Expr, places: int) -> pl.Expr:
    """Like :func:`digits` with thousands commas (``1,300.50``); values below 10**12."""
    whole = scaled // 10**places
    parts = [(whole // 10**9) % 1000, (whole // 10**6) % 1000, (whole // 10**3) % 1000, whole % 1000]
    text = (
        pl.when(whole >= 10**9)
        .then(pl.concat_str([parts[0].cast(pl.String), pl.lit(","), *_triples(parts[1:])]))
        .when(whole >= 10**6)
        .then(pl.concat_str([parts[1].cast(pl.String), pl.lit(","), *_triples(parts[2:])]))
        .when(whole >= 10**3)
        .then(pl.concat_str([parts[2].cast(pl.String), pl.lit(","), *_triples(parts[3:])]))
        .otherwise(whole.cast(pl.String))
    )
    return pl.concat_str([text, pl.lit("."), (scaled % 10**places).cast(pl.String).str.zfill(places)])


def _triples(parts: list[pl.Expr]) -> list[pl.Expr]:
    out: list[pl.Expr] = []
    for i, p in enumerate(parts):
        out += [p.cast(pl.String).str.zfill(3)] + ([pl.lit(",")] if i < len(parts) - 1 else [])
    return out


def quoted(text: pl.Expr) -> pl.Expr:
    return pl.concat_str([pl.lit('"'), text, pl.lit('"')])


def csv_quoted_if_comma(text: pl.Expr) -> pl.Expr:
    return pl.when(text.str.contains(",", literal=True)).then(quoted(text)).otherwise(text)


def write_lines(path: Path, header: str, lines: pl.DataFrame, preamble: str = "", bom: bool = False) -> None:
    """Header and the one-column frame of ready lines, written as they are (no quoting)."""
    with open(path, "wb") as fh:
        fh.write(("\ufeff" if bom else "").encode() + (preamble + header + "\n").encode())
        lines.write_csv(fh, include_header=False, quote_style="never")


# ---------------------------------------------------------------- shared random fills


def base_fills(n: int, pairs: list[tuple[str, str, int, int, int, int]], seed: int) -> pl.DataFrame:
    """``n`` fills in time order: pair index, side, scaled qty/price/quote qty/fee, seconds since START.

    A pair is (base, quote, qty places, price places, price low, price high) with prices in
    whole units of the quote; quote_qty = qty * price exactly at qty + price places.
    """
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(pairs), n)
    qty_places = np.array([p[2] for p in pairs])[which]
    price_places = np.array([p[3] for p in pairs])[which]
    lo = np.array([p[4] for p in pairs])[which]
    hi = np.array([p[5] for p in pairs])[which]
    # qty in 1..20 units at its own places; price in [lo, hi) at its places.
    qty = rng.integers(1, 20 * 10**qty_places)
    price = rng.integers(lo * 10**price_places, hi * 10**price_places)
    seconds = np.sort(rng.integers(0, SPAN_SECONDS, n))
    frame = pl.DataFrame(
        {
            "pair": which.astype(np.int32),
            "buy": rng.random(n) < 0.5,
            "qty": qty.astype(np.int64),
            "qty_places": qty_places.astype(np.int32),
            "price": price.astype(np.int64),
            "price_places": price_places.astype(np.int32),
            "seconds": seconds.astype(np.int64),
            "micros": rng.integers(0, 10**6, n).astype(np.int64),
            "fee_kind": rng.integers(0, 4, n).astype(np.int8),
            "seq": np.arange(n, dtype=np.int64),
        }
    )
    names = pl.DataFrame({"pair": np.arange(len(pairs), dtype=np.int32), "base": [p[0] for p in pairs], "quote": [p[1] for p in pairs]})
    return frame.join(names, on="pair", how="left").with_columns(
        ts=(pl.lit(START.astype("datetime64[us]").astype(np.int64)) + pl.col("seconds") * 10**6 + pl.col("micros")).cast(pl.Datetime("us"))
    )


def rescale(expr: pl.Expr, places: pl.Expr, to: int) -> pl.Expr:
    """A scaled integer at ``places`` decimals rescaled to ``to`` decimals (``to >= places``)."""
    return expr * (pl.lit(10, pl.Int64).pow(pl.lit(to) - places)).cast(pl.Int64)


# ---------------------------------------------------------------- Binance Spot Trade History


BINANCE_PAIRS = [
    ("BTC", "USDT", 5, 2, 60000, 70000),
    ("ETH", "USDT", 4, 2, 3000, 4000),
    ("ETH", "BTC", 3, 5, 0, 1),
    ("BNB", "USDT", 3, 1, 380, 460),
    ("SOL", "USDT", 2, 2, 100, 150),
    ("1INCH", "USDT", 1, 4, 0, 1),
]


def binance_spot(folder: Path, fills: int, seed: int = SEED) -> tuple[Path, int]:
    """``Time,Pair,Side,Price,Executed,Amount,Fee``, local time UTC+8 (zone in the file name)."""
    f = base_fills(fills, BINANCE_PAIRS, seed).with_columns(pl.col("price") + (pl.col("price") == 0).cast(pl.Int64))
    qty8 = rescale(pl.col("qty"), pl.col("qty_places"), 8)
    # qty places + price places <= 8 for every pair: the quote amount is exact at 8 places.
    amount8 = rescale(pl.col("qty") * pl.col("price"), pl.col("qty_places") + pl.col("price_places"), 8)
    f = f.with_columns(qty8=qty8, amount8=amount8)
    fee_asset = (
        pl.when(pl.col("fee_kind") > 0).then(pl.lit("BNB")).when(pl.col("buy")).then(pl.col("base")).otherwise(pl.col("quote"))
    )
    fee8 = pl.when(pl.col("fee_kind") > 0).then(pl.col("amount8") // 400_000 + 1).when(pl.col("buy")).then(pl.col("qty8") // 1000 + 1).otherwise(
        pl.col("amount8") // 1000 + 1
    )
    price = pl.when(pl.col("price_places") == 5).then(digits(pl.col("price"), 5)).when(pl.col("price_places") == 4).then(
        digits(pl.col("price"), 4)
    ).when(pl.col("price_places") == 1).then(digits(pl.col("price") * 10, 2)).otherwise(digits(pl.col("price"), 2))
    local = (pl.col("ts") + pl.duration(hours=8)).dt.strftime("%y-%m-%d %H:%M:%S")
    lines = f.select(
        pl.concat_str(
            [
                local,
                pl.col("base") + pl.col("quote"),
                pl.when(pl.col("buy")).then(pl.lit("BUY")).otherwise(pl.lit("SELL")),
                price,
                digits(pl.col("qty8"), 8) + pl.col("base"),
                csv_quoted_if_comma(grouped(pl.col("amount8"), 8) + pl.col("quote")),
                digits(fee8, 8) + fee_asset,
            ],
            separator=",",
        ).alias("line")
    )
    path = folder / "Binance-Spot-Trade-History-202404010000(UTC+8)_ab12.csv"
    write_lines(path, "Time,Pair,Side,Price,Executed,Amount,Fee", lines)
    return path, fills


# ---------------------------------------------------------------- Kraken


KRAKEN_PAIRS = [
    ("XXBT", "ZUSD", 4, 1, 60000, 70000),
    ("XETH", "ZUSD", 3, 2, 3000, 4000),
    ("XETH", "XXBT", 3, 5, 0, 1),
    ("DOT", "USD", 2, 4, 6, 12),
    ("SOL", "USD", 2, 2, 100, 150),
    ("USDT", "ZUSD", 2, 4, 0, 2),
]


def kraken_ids(prefix: str, seq: pl.Expr) -> pl.Expr:
    """Kraken-shaped ids (``TQ3RLB-4XHMD-7ZP2KC``), unique per ``seq``."""
    s = seq.hash(seed=7).cast(pl.String).str.zfill(20).str.slice(4)
    return pl.concat_str([pl.lit(prefix), s.str.slice(0, 5), pl.lit("-"), s.str.slice(5, 5), pl.lit("-"), s.str.slice(10, 6)])


def _kraken_fills(fills: int, seed: int) -> pl.DataFrame:
    f = base_fills(fills, KRAKEN_PAIRS, seed).with_columns(pl.col("price") + (pl.col("price") == 0).cast(pl.Int64))
    places = pl.col("qty_places") + pl.col("price_places")
    return f.with_columns(
        cost8=rescale(pl.col("qty") * pl.col("price"), places, 8),
        vol8=rescale(pl.col("qty"), pl.col("qty_places"), 8),
        txid=kraken_ids("T", pl.col("seq")),
        time=pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
    ).with_columns(fee8=pl.col("cost8") * 26 // 10000)


def kraken_trades(folder: Path, fills: int, seed: int = SEED + 1) -> tuple[Path, int]:
    """The 13-column Trades export: strings quoted, numbers bare."""
    f = _kraken_fills(fills, seed)
    lines = f.select(
        pl.concat_str(
            [
                quoted(pl.col("txid")),
                quoted(kraken_ids("O", pl.col("seq") // 3)),
                quoted(pl.col("base") + pl.col("quote")),
                quoted(pl.col("time") + "." + (pl.col("micros") // 100).cast(pl.String).str.zfill(4)),
                quoted(pl.when(pl.col("buy")).then(pl.lit("buy")).otherwise(pl.lit("sell"))),
                quoted(pl.lit("limit")),
                _price_text(),
                digits(pl.col("cost8"), 8),
                digits(pl.col("fee8"), 8),
                digits(pl.col("vol8"), 8),
                pl.lit("0.00000"),
                pl.lit('""'),
                quoted(kraken_ids("L", pl.col("seq") * 2) + "," + kraken_ids("L", pl.col("seq") * 2 + 1)),
            ],
            separator=",",
        ).alias("line")
    )
    path = folder / "trades.csv"
    header = '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"'
    write_lines(path, header, lines)
    return path, fills


def _price_text() -> pl.Expr:
    # Prices at their own places (1, 2, 4 or 5 decimals), written bare.
    return (
        pl.when(pl.col("price_places") == 1).then(digits(pl.col("price"), 1))
        .when(pl.col("price_places") == 2).then(digits(pl.col("price"), 2))
        .when(pl.col("price_places") == 4).then(digits(pl.col("price"), 4))
        .otherwise(digits(pl.col("price"), 5))
    )  # fmt: skip


def kraken_ledgers(folder: Path, fills: int, seed: int = SEED + 2) -> tuple[Path, int]:
    """The 12-column Ledgers export: two rows per trade (quote leg with the fee, base leg)."""
    f = _kraken_fills(fills, seed)
    sign = pl.when(pl.col("buy")).then(1).otherwise(-1)
    quote_leg = f.select(
        "seq", "txid", "time", leg=pl.lit(0), asset="quote",
        amount=-sign * pl.col("cost8"), fee="fee8", balance=pl.lit(10**14, pl.Int64) + pl.col("seq") * 37,
    )  # fmt: skip
    base_leg = f.select(
        "seq", "txid", "time", leg=pl.lit(1), asset="base",
        amount=sign * pl.col("vol8"), fee=pl.lit(0, pl.Int64), balance=pl.lit(10**13, pl.Int64) + pl.col("seq") * 11,
    )  # fmt: skip
    rows = pl.concat([quote_leg, base_leg]).sort("seq", "leg")
    lines = rows.select(
        pl.concat_str(
            [
                quoted(kraken_ids("L", pl.col("seq") * 2 + pl.col("leg"))),
                quoted(pl.col("txid")),
                quoted(pl.col("time")),
                quoted(pl.lit("trade")),
                quoted(pl.lit("tradespot")),
                quoted(pl.lit("currency")),
                quoted(pl.when(pl.col("asset").str.starts_with("Z")).then(pl.lit("fiat")).otherwise(pl.lit("crypto"))),
                quoted(pl.col("asset")),
                quoted(pl.lit("spot / main")),
                signed(pl.col("amount") * 100, 10),
                digits(pl.col("fee") * 100, 10),
                digits(pl.col("balance"), 10),
            ],
            separator=",",
        ).alias("line")
    )
    path = folder / "ledgers.csv"
    header = '"txid","refid","time","type","subtype","aclass","subclass","asset","wallet","amount","fee","balance"'
    write_lines(path, header, lines)
    return path, rows.height


# ---------------------------------------------------------------- Coinbase Pro fills


COINBASE_PAIRS = [
    ("BTC", "USD", 8, 2, 30000, 70000),
    ("ETH", "USD", 8, 2, 1500, 4000),
    ("LTC", "USD", 8, 2, 50, 200),
    ("ETH", "BTC", 5, 5, 0, 1),
]


def coinbase_pro_fills(folder: Path, fills: int, seed: int = SEED + 3) -> tuple[Path, int]:
    """``portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit``."""
    f = base_fills(fills, COINBASE_PAIRS, seed).with_columns(pl.col("price") + (pl.col("price") == 0).cast(pl.Int64))
    # size x price lands at 10 places for every product; fee and total are written at 10.
    value10 = rescale(pl.col("qty") * pl.col("price"), pl.col("qty_places") + pl.col("price_places"), 10)
    f = f.with_columns(value10=value10).with_columns(fee10=pl.col("value10") // 250)
    total10 = pl.when(pl.col("buy")).then(-(pl.col("value10") + pl.col("fee10"))).otherwise(pl.col("value10") - pl.col("fee10"))
    product = pl.col("base") + "-" + pl.col("quote")
    lines = f.select(
        pl.concat_str(
            [
                pl.lit("default"),
                (pl.col("seq") + 7001).cast(pl.String),
                product,
                pl.when(pl.col("buy")).then(pl.lit("BUY")).otherwise(pl.lit("SELL")),
                pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S") + "." + (pl.col("micros") // 1000).cast(pl.String).str.zfill(3) + "Z",
                pl.when(pl.col("qty_places") == 8).then(digits(pl.col("qty"), 8)).otherwise(digits(pl.col("qty"), 5)),
                pl.col("base"),
                pl.when(pl.col("price_places") == 2).then(digits(pl.col("price"), 2)).otherwise(digits(pl.col("price"), 5)),
                digits(pl.col("fee10"), 10),
                signed(total10, 10),
                pl.col("quote"),
            ],
            separator=",",
        ).alias("line")
    )
    path = folder / "fills.csv"
    write_lines(path, "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit", lines)
    return path, fills


# ---------------------------------------------------------------- OKX trading account history


OKX_PAIRS = [
    ("BTC", "USDT", 5, 1, 60000, 70000),
    ("ETH", "USDT", 4, 2, 3000, 4000),
    ("SOL", "USDT", 3, 2, 100, 150),
    ("OKB", "USDT", 3, 2, 40, 70),
]
OKX_HEADER = (
    "id,Order id,Time,Trade Type,Symbol,Action,Amount,Trading Unit,Filled Price,PnL,Fee,Fee Unit,"
    "Position Change,Position Balance,Balance Change,Balance,Balance Unit"
)


def okx_trading(folder: Path, fills: int, seed: int = SEED + 4) -> tuple[Path, int]:
    """Preamble + 17 columns, one bill per asset of a fill; the fee (negative) sits on the received leg."""
    f = base_fills(fills, OKX_PAIRS, seed)
    places = pl.col("qty_places") + pl.col("price_places")
    f = f.with_columns(
        qty8=rescale(pl.col("qty"), pl.col("qty_places"), 8),
        quote8=rescale(pl.col("qty") * pl.col("price"), places, 8),
        price_text=pl.when(pl.col("price_places") == 1).then(digits(pl.col("price"), 1)).otherwise(digits(pl.col("price"), 2)),
        symbol=pl.col("base") + "-" + pl.col("quote"),
        time=(pl.col("ts") + pl.duration(hours=8)).dt.strftime("%Y-%m-%d %H:%M:%S"),
    )
    # Received leg: Buy, Amount, Fee -0.08%, Balance Change = Amount + Fee. Given leg: Sell, -Amount.
    common = ["seq", "time", "symbol", "price_text"]
    base_leg = f.select(
        *common, leg=pl.lit(0), asset="base", amount="qty8",
        action=pl.when(pl.col("buy")).then(pl.lit("Buy")).otherwise(pl.lit("Sell")),
        fee=pl.when(pl.col("buy")).then(-(pl.col("qty8") * 8 // 10000)).otherwise(0),
        given=~pl.col("buy"),
    )  # fmt: skip
    quote_leg = f.select(
        *common, leg=pl.lit(1), asset="quote", amount="quote8",
        action=pl.when(pl.col("buy")).then(pl.lit("Sell")).otherwise(pl.lit("Buy")),
        fee=pl.when(pl.col("buy")).then(0).otherwise(-(pl.col("quote8") * 8 // 10000)),
        given=pl.col("buy"),
    )  # fmt: skip
    rows = pl.concat([base_leg, quote_leg]).sort("seq", "leg", descending=[True, False])
    change = pl.when(pl.col("given")).then(-pl.col("amount")).otherwise(pl.col("amount") + pl.col("fee"))
    lines = rows.select(
        pl.concat_str(
            [
                (pl.col("seq") * 2 + pl.col("leg") + 710000000000000000).cast(pl.String),
                (pl.col("seq") + 690000000000000000).cast(pl.String),
                pl.col("time"),
                pl.lit("Spot"),
                pl.col("symbol"),
                pl.col("action"),
                digits(pl.col("amount"), 8),
                pl.col("asset"),
                pl.col("price_text"),
                pl.lit("0"),
                signed(pl.col("fee"), 8),
                pl.col("asset"),
                pl.lit("0"),
                pl.lit("0"),
                signed(change, 8),
                digits(pl.lit(10**14, pl.Int64) + pl.col("seq"), 8),
                pl.col("asset"),
            ],
            separator=",",
        ).alias("line")
    )
    path = folder / "Trading-account-history.csv"
    write_lines(path, OKX_HEADER, lines, preamble="UID:1234567890,Account Type:Main,Time Zone:UTC+8\n", bom=True)
    return path, rows.height


# ---------------------------------------------------------------- ccxt JSON lines


CCXT_PAIRS = [
    ("BTC", "USDT", 6, 2, 60000, 70000),
    ("ETH", "USDT", 4, 2, 3000, 4000),
    ("SOL", "USDT", 2, 2, 100, 150),
]


def ccxt_trades(folder: Path, fills: int, seed: int = SEED + 5) -> tuple[Path, int]:
    """ccxt ``fetch_my_trades`` dicts, one per line, numbers as JSON numbers."""
    f = base_fills(fills, CCXT_PAIRS, seed)
    places = pl.col("qty_places") + pl.col("price_places")
    f = f.with_columns(
        cost8=rescale(pl.col("qty") * pl.col("price"), places, 8),
        qty8=rescale(pl.col("qty"), pl.col("qty_places"), 8),
        ms=(pl.col("ts").dt.epoch("ms")),
        trade_id=(pl.col("seq") + 2240000000000).cast(pl.String),
    ).with_columns(fee8=pl.when(pl.col("buy")).then(pl.col("qty8") // 1000).otherwise(pl.col("cost8") // 1000))
    # JSON numbers as a float repr would write them: no trailing zeros, at least one decimal.
    def number(scaled: pl.Expr) -> pl.Expr:
        text = digits(scaled, 8).str.strip_chars_end("0")
        return pl.when(text.str.ends_with(".")).then(text + "0").otherwise(text)

    fee = pl.concat_str(
        [pl.lit('{"cost": '), number(pl.col("fee8")), pl.lit(', "currency": "'),
         pl.when(pl.col("buy")).then(pl.col("base")).otherwise(pl.col("quote")), pl.lit('"}')]
    )  # fmt: skip
    lines = f.select(
        pl.concat_str(
            [
                pl.lit('{"id": "'), pl.col("trade_id"),
                pl.lit('", "order": "'), (pl.col("seq") // 2 + 1570000000000).cast(pl.String),
                pl.lit('", "timestamp": '), pl.col("ms").cast(pl.String),
                pl.lit(', "datetime": "'), pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S") + "." + (pl.col("micros") // 1000).cast(pl.String).str.zfill(3) + "Z",
                pl.lit('", "symbol": "'), pl.col("base") + "/" + pl.col("quote"),
                pl.lit('", "side": "'), pl.when(pl.col("buy")).then(pl.lit("buy")).otherwise(pl.lit("sell")),
                pl.lit('", "type": "limit", "takerOrMaker": "'), pl.when(pl.col("fee_kind") == 0).then(pl.lit("taker")).otherwise(pl.lit("maker")),
                pl.lit('", "price": '), number(rescale(pl.col("price"), pl.col("price_places"), 8)),
                pl.lit(", \"amount\": "), number(pl.col("qty8")),
                pl.lit(', "cost": '), number(pl.col("cost8")),
                pl.lit(', "fee": '), fee, pl.lit(', "fees": ['), fee,
                pl.lit('], "info": {"execId": "'), pl.col("trade_id"), pl.lit('"}}'),
            ]
        ).alias("line")
    )  # fmt: skip
    path = folder / "my-trades.jsonl"
    with open(path, "wb") as fh:
        lines.write_csv(fh, include_header=False, quote_style="never")
    return path, fills


# ---------------------------------------------------------------- the mix


Generator = Callable[[Path, int], tuple[Path, int]]

# format name -> (generator, share of the fills)
GENERATORS: dict[str, tuple[Generator, float]] = {
    "binance.spot_trades": (binance_spot, 0.30),
    "kraken.trades": (kraken_trades, 0.20),
    "kraken.ledgers": (kraken_ledgers, 0.10),
    "coinbase.pro_fills": (coinbase_pro_fills, 0.20),
    "okx.trading_account": (okx_trading, 0.15),
    "ccxt.trades": (ccxt_trades, 0.05),
}
