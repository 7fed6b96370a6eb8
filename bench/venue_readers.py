"""Read speed of every CSV venue format: 1M-row files in the venues' layouts, each read by
its ``Format.read`` in a fresh process, best of ``--repeat`` runs.

Six layouts come from :mod:`venue_files` (the ingestion benchmark's generators); the rest
are generated here the same way (vectorized, no float). Prints data rows/s by wall clock,
the CPU seconds beside it (they exceed the wall where Polars runs threads; on a shared
machine the wall clock also counts time other processes took), the part of that CPU the
kernel spent and the page faults taken (fresh memory; :mod:`machine` prints what the machine
charges for it, before and after the reads), and the reader's peak RSS.
The targets: >= 1M rows/s per CSV format, >= 500k rows/s for ccxt JSON lines, peak RSS < 3 GB.

    uv run python bench/venue_readers.py [--rows 1000000] [--repeat 3] [--keep DIR [--reuse]] [--numba] [format ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import venue_files as vf  # noqa: E402
from machine import first_touch_line  # noqa: E402
from venue_files import base_fills, csv_quoted_if_comma, digits, grouped, rescale, signed, write_lines  # noqa: E402

PAIRS = [("BTC", "USDT", 5, 2, 60000, 70000), ("ETH", "USDT", 4, 2, 3000, 4000), ("ETH", "BTC", 3, 5, 0, 1),
         ("BNB", "USDT", 3, 1, 380, 460), ("SOL", "USDT", 2, 2, 100, 150)]


def fills(n, seed):
    f = base_fills(n, PAIRS, seed).with_columns(pl.col("price") + (pl.col("price") == 0).cast(pl.Int64))
    return f.with_columns(
        qty8=rescale(pl.col("qty"), pl.col("qty_places"), 8),
        amount8=rescale(pl.col("qty") * pl.col("price"), pl.col("qty_places") + pl.col("price_places"), 8),
        price8=rescale(pl.col("price"), pl.col("price_places"), 8),
        side=pl.when(pl.col("buy")).then(pl.lit("BUY")).otherwise(pl.lit("SELL")),
        sym=pl.col("base") + pl.col("quote"),
    ).with_columns(fee8=pl.col("amount8") // 1000 + 1)


def lines(f, parts):
    return f.select(pl.concat_str(parts, separator=",").alias("line"))


def binance_legacy(folder, n):
    f = fills(n, 11)
    l = lines(f, [pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), pl.col("sym"), pl.col("side"), digits(pl.col("price8"), 8),
                  digits(pl.col("qty8"), 8), digits(pl.col("amount8"), 8), digits(pl.col("fee8"), 8), pl.col("quote")])
    p = folder / "spot_legacy.csv"
    write_lines(p, "Date(UTC),Market,Type,Price,Amount,Total,Fee,Fee Coin", l)
    return p, n


OPS = ["Transaction Buy", "Transaction Spend", "Transaction Fee", "Funding Fee", "Deposit", "Simple Earn Flexible Interest"]


def binance_transactions(folder, n):
    f = fills(n, 12)
    op = pl.lit(pl.Series(OPS)).gather(pl.col("seq") % len(OPS))
    change = pl.when(pl.col("seq") % 50 == 0).then(pl.lit("-2E-05")).otherwise(signed(pl.col("qty8") * pl.when(pl.col("buy")).then(1).otherwise(-1), 8))
    l = lines(f, [pl.lit("31415926"), (pl.col("ts") + pl.duration(hours=8)).dt.strftime("%y-%m-%d %H:%M:%S"), pl.lit("Spot"), op, pl.col("base"), change, pl.lit("")])
    p = folder / "Binance-Transaction-History-202403061200(UTC+8)_ef56.csv"
    write_lines(p, "User ID,Time,Account,Operation,Coin,Change,Remark", l)
    return p, n


def binance_futures(folder, n):
    f = fills(n, 13)
    fee = pl.when(pl.col("seq") % 3 == 0).then(digits(pl.col("fee8"), 8) + " USDT").when(pl.col("seq") % 3 == 1).then(digits(pl.col("fee8"), 8) + "USDT").otherwise(digits(pl.col("fee8"), 8) + " BNB")
    l = lines(f, [pl.lit("31415926"), pl.col("ts").dt.strftime("%y-%m-%d %H:%M:%S"), pl.col("base") + "USDT", pl.col("side"),
                  digits(pl.col("price8"), 8), digits(pl.col("qty8"), 8), digits(pl.col("amount8"), 8), fee, pl.lit("0"),
                  pl.when(pl.col("buy")).then(pl.lit("true")).otherwise(pl.lit("false")), pl.when(pl.col("fee_kind") == 0).then(pl.lit("true")).otherwise(pl.lit("false")),
                  (pl.col("seq") + 500000).cast(pl.String), (pl.col("seq") // 2 + 800000).cast(pl.String)])
    p = folder / "Futures-Trade-History-202403051200(UTC+0)_gh78.csv"
    write_lines(p, "Uid,Time,Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit,Buyer,Maker,Trade ID,Order ID", l)
    return p, n


def binance_futures_older(folder, n):
    f = fills(n, 14)
    l = lines(f, [pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), pl.col("base") + "USDT", pl.col("side"),
                  digits(pl.col("price8"), 8), digits(pl.col("qty8"), 8), digits(pl.col("amount8"), 8), digits(pl.col("fee8"), 8) + " USDT", pl.lit("0")])
    p = folder / "futures_trades_older.csv"
    write_lines(p, "Date(UTC),Symbol,Side,Price,Quantity,Amount,Fee,Realized Profit", l)
    return p, n


FTYPES = ["REALIZED_PNL", "COMMISSION", "FUNDING_FEE", "TRANSFER"]


def binance_futures_tx(folder, n):
    f = fills(n, 15)
    l = lines(f, [(pl.col("ts") + pl.duration(hours=8)).dt.strftime("%y-%m-%d %H:%M:%S"), pl.lit(pl.Series(FTYPES)).gather(pl.col("seq") % 4),
                  signed(pl.col("fee8") * pl.when(pl.col("buy")).then(1).otherwise(-1), 8), pl.lit("USDT"), pl.col("base") + "USDT", (pl.col("seq") // 2 + 9000).cast(pl.String)])
    p = folder / "Futures-Transaction-History-202403061200(UTC+8).csv"
    write_lines(p, "Time,Type,Amount,Asset,Symbol,Transaction ID", l)
    return p, n


def bybit_uta(folder, n):
    f = fills(n, 16)
    s = pl.when(pl.col("buy")).then(1).otherwise(-1)
    cash, fee, fund = s * pl.col("amount8"), -pl.col("fee8"), pl.when(pl.col("seq") % 7 == 0).then(-pl.col("fee8") // 3).otherwise(0)
    f = f.with_columns(cash=cash, fee=fee, fund=fund).with_columns(change=pl.col("cash") + pl.col("fee") + pl.col("fund"))
    l = lines(f, [pl.lit("123456789"), pl.col("quote"), pl.col("sym"), pl.lit("TRADE"), pl.col("side"), digits(pl.col("qty8"), 8), pl.lit("0"),
                  digits(pl.col("price8"), 8), signed(pl.col("fund"), 8), signed(pl.col("fee"), 8), signed(pl.col("cash"), 8), signed(pl.col("change"), 8),
                  digits(pl.col("seq") * 37 + 10**12, 8), pl.lit("--"), pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S")])
    p = folder / "AssetChangeDetails_uta_123456789_20240301_20240306_0.csv"
    write_lines(p, "Uid,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,Change,Wallet Balance,Action,Time(UTC)", l,
                preamble="UID: 123456789,Company Name: ,Country: \n", bom=True)
    return p, n


def bybit_legacy(folder, n):
    f = fills(n, 17)
    s = pl.when(pl.col("buy")).then(1).otherwise(-1)
    f = f.with_columns(cash=s * pl.col("amount8"), fee=pl.col("fee8"), fund=pl.lit(0, pl.Int64)).with_columns(change=pl.col("cash") - pl.col("fee"))
    l = lines(f, [pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), pl.lit("BTC"), pl.lit("BTCUSD"), pl.lit("trade"), pl.lit("Close Long"),
                  digits(pl.col("qty8"), 8), pl.lit("0"), digits(pl.col("price8"), 8), pl.lit("0"), digits(pl.col("fee"), 8), signed(pl.col("cash"), 8),
                  signed(pl.col("change"), 8), digits(pl.col("seq") + 10**10, 8), pl.lit("0.00075"), pl.format("a1b2c3d4-{}", pl.col("seq")), pl.format("o-{}", pl.col("seq") // 2)])
    p = folder / "derivatives_legacy.csv"
    write_lines(p, "Time,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,Change,Wallet Balance,Fee Rate,Trade ID,Order ID", l)
    return p, n


def bybit_fund(folder, n):
    f = fills(n, 18)
    l = lines(f, [pl.lit("123456789"), pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"), pl.col("quote"),
                  signed(pl.col("amount8") * 10**10 * pl.when(pl.col("buy")).then(1).otherwise(-1), 18), pl.when(pl.col("buy")).then(pl.lit("Deposit")).otherwise(pl.lit("Transfer out")),
                  digits(pl.col("seq") * 10**10, 18), pl.when(pl.col("buy")).then(pl.lit("Deposit")).otherwise(pl.lit("Transfer to Unified Trading Account"))])
    p = folder / "AssetChangeDetails_fund_123456789_20240301_20240307_0.csv"
    write_lines(p, "Uid,Date & Time(UTC),Coin,QTY,Type,Account Balance,Description", l, preamble="UID: 123456789,Company Name: ,Country: \n")
    return p, n


def bybit_spot(folder, n):
    f = fills(n, 19)
    l = lines(f, [pl.col("sym"), pl.lit("LIMIT"), pl.col("side"), pl.col("quote"), digits(pl.col("fee8"), 8), csv_quoted_if_comma(grouped(pl.col("amount8"), 8)),
                  digits(pl.col("price8"), 8), digits(pl.col("qty8"), 8), pl.lit("--"), (pl.col("seq") + 2290000000522830001).cast(pl.String),
                  " " + (pl.col("seq") + 1836393090823490001).cast(pl.String), pl.col("ts").dt.strftime("%H:%M %Y-%m-%d")])
    p = folder / "spot_current.csv"
    write_lines(p, "Spot Pairs,Order Type,Direction,feeCoin,ExecFeeV2,Filled Value,Filled Price,Filled Quantity,Fees,Transaction ID,Order No.,Timestamp (UTC)", l, bom=True)
    return p, n


def coinbase_report(folder, n):
    f = fills(n, 20)
    kind = pl.col("seq") % 4  # 0 Buy 1 Sell 2 Advanced Trade Sell 3 Convert
    qty = digits(pl.col("qty8"), 8)
    price = pl.concat_str([pl.lit('"$'), grouped(pl.col("price8"), 8), pl.lit('"')])
    money = pl.concat_str([pl.lit('"$'), grouped(pl.col("amount8"), 8), pl.lit('"')])
    fee = pl.concat_str([pl.lit("$"), digits(pl.col("fee8"), 8)])
    typ = pl.when(kind == 0).then(pl.lit("Buy")).when(kind == 1).then(pl.lit("Sell")).when(kind == 2).then(pl.lit("Advanced Trade Sell")).otherwise(pl.lit("Convert"))
    q = pl.when(kind == 2).then("-" + qty).otherwise(qty)
    note = (pl.when(kind == 0).then(pl.format("Bought {} {} for {} USD", qty, pl.col("base"), digits(pl.col("amount8"), 8)))
            .when(kind == 1).then(pl.format("Sold {} {} for {} USD", qty, pl.col("base"), digits(pl.col("amount8"), 8)))
            .when(kind == 2).then(pl.format("Sold {} {} for {} USDC on {}-USDC at {} USDC/{}", qty, pl.col("base"), digits(pl.col("amount8") - pl.col("fee8"), 8), pl.col("base"), digits(pl.col("price8"), 8), pl.col("base")))
            .otherwise(pl.format("Converted {} {} to {} USDC", qty, pl.col("base"), digits(pl.col("amount8"), 8))))
    l = lines(f, [pl.col("seq").hash().cast(pl.String), pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S UTC"), typ, pl.col("base"), q, pl.lit("USD"), price, money, money, fee, note])
    p = folder / "report.csv"
    write_lines(p, "ID,Timestamp,Transaction Type,Asset,Quantity Transacted,Price Currency,Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),Fees and/or Spread,Notes", l,
                preamble="\nTransactions\nUser,Jane Doe,3f1c0a52-7d1e-4c8e-9a0b-5e6f7a8b9c0d\n")
    return p, n


PRO = ["deposit", "match", "match", "fee", "withdrawal"]


def coinbase_pro_account(folder, n):
    f = fills(n, 21)
    l = lines(f, [pl.lit("default"), pl.lit(pl.Series(PRO)).gather(pl.col("seq") % 5), pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                  signed(pl.col("qty8") * pl.when(pl.col("buy")).then(1).otherwise(-1), 8), digits(pl.col("seq") * 13 + 10**10, 8), pl.col("base"),
                  pl.lit(""), (pl.col("seq") + 7001).cast(pl.String), pl.format("5b2c9d7e-0000-4000-8000-{}", pl.col("seq").cast(pl.String).str.zfill(12))])
    p = folder / "account.csv"
    write_lines(p, "portfolio,type,time,amount,balance,amount/balance unit,transfer id,trade id,order id", l)
    return p, n


def okx_funding(folder, n):
    f = fills(n, 22)
    l = lines(f, [(pl.col("seq") + 10021300001).cast(pl.String), (pl.col("ts") + pl.duration(hours=8)).dt.strftime("%Y-%m-%d %H:%M:%S"),
                  pl.when(pl.col("buy")).then(pl.lit("Deposit")).otherwise(pl.lit("To unified trading account")),
                  signed(pl.col("qty8") * pl.when(pl.col("buy")).then(1).otherwise(-1), 8), digits(pl.col("seq") + 10**9, 8), digits(pl.col("seq") + 10**9, 8), pl.col("base")])
    p = folder / "funding.csv"
    write_lines(p, "id,Time,Type,Amount,Before Balance,After Balance,Symbol", l, preamble="UID:1234567890,Account Type:Main,Time Zone:UTC+8\n", bom=True)
    return p, n


def deribit_log(folder, n):
    f = fills(n, 23)
    s = pl.when(pl.col("buy")).then(1).otherwise(-1)
    f = f.with_columns(cash=s * pl.col("fee8") * 7, fee=pl.col("fee8")).with_columns(change=pl.col("cash") - pl.col("fee"))
    l = lines(f, [(pl.col("seq") + 90001).cast(pl.String), (pl.col("seq") + 1001).cast(pl.String), pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
                  pl.lit("BTC-PERPETUAL"), pl.lit("trade"), pl.when(pl.col("buy")).then(pl.lit("open buy")).otherwise(pl.lit("close sell")),
                  pl.lit("10000"), digits(pl.col("qty8"), 8), pl.lit("10000"), digits(pl.col("price8"), 8), pl.lit("65010"), pl.lit("65005"),
                  signed(pl.col("cash"), 8), pl.lit("0"), pl.lit("0.0005"), digits(pl.col("fee"), 8), pl.lit("0"), signed(pl.col("change"), 8),
                  digits(pl.col("seq") + 10**8, 8), digits(pl.col("seq") + 10**8, 8), (pl.col("seq") + 300001).cast(pl.String), (pl.col("seq") + 40001).cast(pl.String), pl.lit(""), pl.lit("")])
    p = folder / "transaction_log-4242-BTC-2024.csv"
    write_lines(p, "ID,UserSeq,Date,Instrument,Type,Side,Amount,Base Amount,Position,Price,Mark Price,Index Price,Cash Flow,Funding,Fee Rate,Fee Charged,Fee Balance,Change,Balance,Equity,Trade ID,Order ID,Info,Note", l)
    return p, n


def generic_balance(folder, n):
    f = fills(n, 24)
    l = lines(f, [pl.format("A{}", pl.col("seq")), digits(pl.col("qty8"), 8)])
    p = folder / "balance.csv"
    write_lines(p, "asset,total", l)
    return p, n


GENERATORS = {
    "binance.spot_trades": vf.binance_spot,
    "binance.spot_trades_legacy": binance_legacy,
    "binance.transactions": binance_transactions,
    "binance.futures_trades": binance_futures,
    "binance.futures_trades:older": binance_futures_older,
    "binance.futures_transactions": binance_futures_tx,
    "bybit.uta_asset_changes": bybit_uta,
    "bybit.derivatives_legacy": bybit_legacy,
    "bybit.fund_asset_changes": bybit_fund,
    "bybit.spot_trades": bybit_spot,
    "coinbase.transaction_report": coinbase_report,
    "coinbase.pro_fills": vf.coinbase_pro_fills,
    "coinbase.pro_account": coinbase_pro_account,
    "kraken.trades": vf.kraken_trades,
    "kraken.ledgers": vf.kraken_ledgers,
    "okx.trading_account": vf.okx_trading,
    "okx.funding_account": okx_funding,
    "deribit.transaction_log": deribit_log,
    "generic.balance_csv": generic_balance,
    "ccxt.trades": vf.ccxt_trades,
}

# Rows/s to reach: 1 M for a CSV layout, 500 k for JSON lines (issue 16).
TARGET = {"ccxt.trades": 500_000}


# Layouts writing two rows per fill.
TWO_ROWS = {"kraken.ledgers", "okx.trading_account"}

_CHILD = r"""
import json, sys, time
from pathlib import Path
from utl.venues import all_formats
from utl.venues.base import Source, head_text
name, path = sys.argv[1], Path(sys.argv[2])
if sys.argv[3:] == ["numba"]:  # as in the EOD run: numba loaded, the compiled passes warm
    import numba
    from utl.venues import base
    base.warm_kernels()
    base._warming[0].join()
(fmt,) = [f for f in all_formats() if f.name == name.split(":")[0]]
assert fmt.detect(head_text(path)), f"{name} does not recognise its own file"
import resource
before = resource.getrusage(resource.RUSAGE_SELF)
start, cpu = time.perf_counter(), time.process_time()
parsed = fmt.read(Source(path=path, rel=path.name, venue="bench", account="main"))
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_SELF)
rss = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "cpu": cpu, "kernel": after.ru_stime - before.ru_stime,
                  "faults": after.ru_minflt - before.ru_minflt, "booked": parsed.frame.height,
                  "rows": parsed.frame["source_row"].n_unique(), "refused": parsed.quarantine.height, "rss": rss}))
"""


_FILL_CACHE = r"""
from utl.venues import base
from utl.venues.json_scan import warm_up
base.warm_kernels()
warm_up().join()
base._warming[0].join()
"""


def fill_numba_cache() -> float:
    """Compile every reader kernel into numba's on-disk cache, untimed, in a process of its
    own: in a fresh checkout the first read would otherwise compile them (the JSON scan's
    ~30 s here), a cost paid once per checkout, not per read. Seconds it took."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _FILL_CACHE], check=True, capture_output=True)
    return time.perf_counter() - start


def measure(name: str, path: Path, repeat: int, numba: bool = False) -> dict:
    runs = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, "-c", _CHILD, name, str(path), *(["numba"] if numba else [])],
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("formats", nargs="*", help=f"only these formats: {', '.join(GENERATORS)}")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the files here and keep them (default: a temp folder)")
    parser.add_argument("--numba", action="store_true",
                        help="load numba and warm the compiled passes before each read, as the EOD run has (from 20,000 rows they parse)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: read the files already there instead of writing them")
    args = parser.parse_args()
    unknown = set(args.formats) - set(GENERATORS)
    if unknown:
        parser.error(f"unknown formats: {', '.join(sorted(unknown))}")
    folder_context = tempfile.TemporaryDirectory(prefix="utl-readers-") if args.keep is None else None
    folder = Path(folder_context.name) if folder_context else args.keep
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs{', numba loaded' if args.numba else ''}")
    print(f"numba's cache filled (or found full) in {fill_numba_cache():.1f} s, before and apart from any read")
    print(first_touch_line())
    print(f"{'format':<30}{'rows':>10}{'MB':>6}{'read s':>8}{'cpu s':>7}{'of it kernel':>13}{'faults':>9}"
          f"{'rows/s':>12}{'peak RSS MB':>13}  check")
    try:
        for name in args.formats or GENERATORS:
            sub = folder / name.replace(".", "_").replace(":", "_")
            sub.mkdir(parents=True, exist_ok=True)
            fills = args.rows // 2 if name in TWO_ROWS else args.rows
            kept = sub / "rows.json"
            if args.reuse and kept.exists():
                path, rows = (lambda k: (Path(k["path"]), k["rows"]))(json.loads(kept.read_text()))
            else:
                path, rows = GENERATORS[name](sub, fills)
                kept.write_text(json.dumps({"path": str(path), "rows": rows}))
            r = measure(name, path, args.repeat, args.numba)
            flags = [] if r["rows"] + r["refused"] == rows else [f"{r['rows']} booked + {r['refused']} refused != {rows}"]
            target = TARGET.get(name, 1_000_000)
            flags += [f"below {target / 1e6:g}M rows/s"] if rows / r["seconds"] < target else []
            flags += ["over 3 GB"] if r["rss"] > 3 * 2**30 else []
            print(
                f"{name:<30}{rows:>10,}{path.stat().st_size / 1e6:>6.0f}{r['seconds']:>8.2f}{r['cpu']:>7.2f}"
                f"{r['kernel']:>13.2f}{r['faults']:>9,}"
                f"{rows / r['seconds']:>12,.0f}{r['rss'] / 2**20:>13,.0f}  {'; '.join(flags) or 'ok'}",
                flush=True,
            )
            if folder_context:
                path.unlink()
    finally:
        if folder_context:
            folder_context.cleanup()
    print(f"load average after {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(first_touch_line())


if __name__ == "__main__":
    main()
