"""A landing folder for one business day, in the venues' own formats, generated vectorized.

The end-of-day benchmark's input (``shared/contracts/eod.md``, "Landing folder"): 50
accounts over 4 venues, 500 assets ``A000``..``A499``, ``fills`` fills on 2024-03-05 UTC,
an opening snapshot on 2024-03-04 (the accounts' opening state) and a closing snapshot on
2024-03-05 that equals opening + legs exactly, except for a few planted differences that
the reconciliation must report as breaks.

    from bench.eod_landing import generate
    expected = generate(Path("landing"), fills=200_000)   # also written to ../expected.json

Venues and their formats (one trades file per account):

- ``binance``: Spot Trade History, the ``Date(UTC)`` layout; pairs ``A123USDT``, amounts with
  thousands commas, fee in the asset received (base on a buy, quote on a sell); no id.
- ``kraken``: Trades export (13 columns); pairs in Kraken's own codes, ``A123ZUSD`` or
  ``A123USD``; fee in quote. Its snapshots say ``ZUSD``, as Kraken does.
- ``coinbase``: Pro fills; products ``A123-USD``; fee in quote.
- ``bybit``: Spot Trade History, current layout behind the ``UID:`` line; pairs
  ``A123USDT``; fee ``ExecFeeV2`` in ``feeCoin`` = the asset received; minutes only.

Numbers are scaled integers (qty and price at 4 places, amounts and fees at 8) turned into
text by Polars string expressions: no float anywhere, no Python loop per row. The closing
snapshot sums the legs per (account, asset) in Int128 at 8 places, the way the contract
books them: base ``+-qty``, quote ``-+qty*price``, fee ``-fee`` in its own asset.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from venue_files import digits, grouped, csv_quoted_if_comma, kraken_ids, quoted, signed, write_lines  # noqa: E402

OPENING = dt.date(2024, 3, 4)
BUSINESS_DATE = dt.date(2024, 3, 5)
ASSETS = 500
SEED = 20240305
PLANTED_DIFFERENCES = 20  # snapshot totals moved off the ledger
PLANTED_MISSING = 2  # assets left out of a snapshot (held at zero by the venue)


@dataclass(frozen=True)
class Venue:
    name: str
    accounts: int
    quote: str  # canonical quote asset of its pairs
    write: object  # (folder, account names, fills frame, day=None) -> None


def asset_code(index: pl.Expr) -> pl.Expr:
    return pl.lit("A") + index.cast(pl.String).str.zfill(3)


# ---------------------------------------------------------------- the day's fills


def day_fills(n: int, accounts: int, prices4: np.ndarray, rng: np.random.Generator, day: dt.date = BUSINESS_DATE,
              buy_odds: np.ndarray | None = None) -> pl.DataFrame:
    """``n`` fills of one venue: account, asset, side, qty and price at 4 places, value at 8,
    a UTC time within the business date, and a running number for ids. ``buy_odds``
    (accounts x assets): each pair's chance that a fill buys (default one half)."""
    asset = rng.integers(0, ASSETS, n)
    mark = prices4[asset]
    # Fills trade within 1% of the previous day's mark, never at a price of zero.
    price4 = np.maximum(mark + rng.integers(-(mark // 100), mark // 100 + 1), 1)
    day_us = np.datetime64(day.isoformat(), "us").astype(np.int64)
    ts = day_us + np.sort(rng.integers(0, 86_400 * 10**6, n))
    account = rng.integers(0, accounts, n)
    draw = rng.random(n)
    return pl.DataFrame(
        {
            "account": account.astype(np.int32),
            "asset": asset.astype(np.int32),
            "buy": draw < (0.5 if buy_odds is None else buy_odds[account, asset]),
            "qty4": rng.integers(1, 1_000_000, n),  # 0.0001 .. 99.9999 units
            "price4": price4.astype(np.int64),
            "ts": ts,
            "seq": np.arange(n, dtype=np.int64),
        }
    ).with_columns(
        pl.col("ts").cast(pl.Datetime("us")),
        base=asset_code(pl.col("asset")),
        value8=pl.col("qty4") * pl.col("price4"),  # exact: 4 + 4 places
        qty8=pl.col("qty4") * 10**4,
    )


def received_fee(frame: pl.DataFrame, per_mille: int = 1) -> pl.DataFrame:
    """Fee in the asset received: base on a buy, quote on a sell (Binance, Bybit)."""
    return frame.with_columns(
        fee8=pl.when(pl.col("buy")).then(pl.col("qty8") * per_mille // 1000).otherwise(pl.col("value8") * per_mille // 1000),
        fee_in_base=pl.col("buy"),
    )


def quote_fee(frame: pl.DataFrame, per_10k: int) -> pl.DataFrame:
    return frame.with_columns(fee8=pl.col("value8") * per_10k // 10_000, fee_in_base=pl.lit(False))


def side_text(upper: bool) -> pl.Expr:
    buy, sell = ("BUY", "SELL") if upper else ("buy", "sell")
    return pl.when(pl.col("buy")).then(pl.lit(buy)).otherwise(pl.lit(sell))


# ---------------------------------------------------------------- the venues' files


def write_per_account(folder: Path, names: list[str], lines: pl.DataFrame, file_name: str, header: str, preamble: str = "") -> None:
    """One trades file per account: ``folder/<account>/trades/<file_name>``."""
    for (index,), part in lines.partition_by("account", as_dict=True, maintain_order=True).items():
        target = folder / names[index] / "trades"
        target.mkdir(parents=True, exist_ok=True)
        write_lines(target / file_name, header, part.select("line"), preamble=preamble)


def _daily(name: str, day: dt.date | None) -> str:
    """A daily export's file name: ``name`` with the date before the extension (one day: as is)."""
    if day is None:
        return name
    stem, ext = name.rsplit(".", 1)
    return f"{stem.rsplit('-', 1)[0] if stem[-8:].isdigit() else stem}-{day.isoformat()}.{ext}"


def binance_files(folder: Path, names: list[str], f: pl.DataFrame, day: dt.date | None = None) -> None:
    fee_asset = pl.when(pl.col("fee_in_base")).then(pl.col("base")).otherwise(pl.lit("USDT"))
    lines = f.select(
        "account",
        line=pl.concat_str(
            [
                pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
                pl.col("base") + "USDT",
                side_text(upper=True),
                digits(pl.col("price4"), 4),
                digits(pl.col("qty8"), 8) + pl.col("base"),
                csv_quoted_if_comma(grouped(pl.col("value8"), 8) + "USDT"),
                digits(pl.col("fee8"), 8) + fee_asset,
            ],
            separator=",",
        ),
    )
    write_per_account(folder, names, lines, _daily("Binance-Spot-Trade-History-20240306.csv", day), "Date(UTC),Pair,Side,Price,Executed,Amount,Fee")


def kraken_files(folder: Path, names: list[str], f: pl.DataFrame, day: dt.date | None = None) -> None:
    # Kraken's legacy pairs glue a 4-letter base to ZUSD; newer ones use USD. Both occur.
    pair = pl.col("base") + pl.when(pl.col("asset") % 2 == 0).then(pl.lit("ZUSD")).otherwise(pl.lit("USD"))
    lines = f.select(
        "account",
        line=pl.concat_str(
            [
                quoted(kraken_ids("T", pl.col("seq"))),
                quoted(kraken_ids("O", pl.col("seq") // 3)),
                quoted(pair),
                quoted(pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S") + "." + (pl.col("ts").dt.microsecond() // 100).cast(pl.String).str.zfill(4)),
                quoted(side_text(upper=False)),
                quoted(pl.lit("limit")),
                digits(pl.col("price4"), 4),
                digits(pl.col("value8"), 8),
                digits(pl.col("fee8"), 8),
                digits(pl.col("qty8"), 8),
                pl.lit("0.00000"),
                pl.lit('""'),
                quoted(kraken_ids("L", pl.col("seq") * 2) + "," + kraken_ids("L", pl.col("seq") * 2 + 1)),
            ],
            separator=",",
        ),
    )
    header = '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"'
    write_per_account(folder, names, lines, _daily("trades.csv", day), header)


def coinbase_files(folder: Path, names: list[str], f: pl.DataFrame, day: dt.date | None = None) -> None:
    total8 = pl.when(pl.col("buy")).then(-(pl.col("value8") + pl.col("fee8"))).otherwise(pl.col("value8") - pl.col("fee8"))
    lines = f.select(
        "account",
        line=pl.concat_str(
            [
                pl.lit("default"),
                (pl.col("seq") + 7001).cast(pl.String),
                pl.col("base") + "-USD",
                side_text(upper=True),
                pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S") + "." + (pl.col("ts").dt.microsecond() // 1000).cast(pl.String).str.zfill(3) + "Z",
                digits(pl.col("qty4"), 4),
                pl.col("base"),
                digits(pl.col("price4"), 4),
                digits(pl.col("fee8"), 8),
                signed(total8, 8),
                pl.lit("USD"),
            ],
            separator=",",
        ),
    )
    header = "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit"
    write_per_account(folder, names, lines, _daily("fills.csv", day), header)


def bybit_files(folder: Path, names: list[str], f: pl.DataFrame, day: dt.date | None = None) -> None:
    fee_coin = pl.when(pl.col("fee_in_base")).then(pl.col("base")).otherwise(pl.lit("USDT"))
    lines = f.select(
        "account",
        line=pl.concat_str(
            [
                pl.col("base") + "USDT",
                pl.lit("LIMIT"),
                side_text(upper=True),
                fee_coin,
                digits(pl.col("fee8"), 8),
                digits(pl.col("value8"), 8),
                digits(pl.col("price4"), 4),
                digits(pl.col("qty4"), 4),
                pl.lit("--"),
                (pl.col("seq") + 2_290_000_000_000_000_000).cast(pl.String),
                pl.lit(" ") + (pl.col("seq") // 2 + 1_836_393_090_823_490_001).cast(pl.String),
                pl.col("ts").dt.strftime("%H:%M %Y-%m-%d"),
            ],
            separator=",",
        ),
    )
    header = (
        "Spot Pairs,Order Type,Direction,feeCoin,ExecFeeV2,Filled Value,Filled Price,Filled Quantity,Fees,"
        "Transaction ID,Order No.,Timestamp (UTC)"
    )
    write_per_account(folder, names, lines, _daily("Bybit-Spot-TradeHistory-20240305.csv", day), header, preamble="UID: 104381522,Company Name: ,Country:\n")


VENUES = [
    Venue("binance", 13, "USDT", binance_files),
    Venue("kraken", 12, "USD", kraken_files),
    Venue("coinbase", 12, "USD", coinbase_files),
    Venue("bybit", 13, "USDT", bybit_files),
]
FEES = {"binance": lambda f: received_fee(f), "kraken": lambda f: quote_fee(f, 26), "coinbase": lambda f: quote_fee(f, 25),
        "bybit": lambda f: received_fee(f)}  # fmt: skip


def account_names(venue: Venue) -> list[str]:
    return [f"mm-{venue.name[:3]}-{i + 1:02d}" for i in range(venue.accounts)]


def leg_sums(f: pl.DataFrame, quote: str) -> pl.DataFrame:
    """Per (account, canonical asset): the sum of the day's legs, scaled by 10**8, in Int128."""
    sign = pl.when(pl.col("buy")).then(1).otherwise(-1)
    fee_asset = pl.when(pl.col("fee_in_base")).then(pl.col("base")).otherwise(pl.lit(quote))
    legs = pl.concat(
        [
            f.select("account", asset="base", amount=sign * pl.col("qty8")),
            f.select("account", asset=pl.lit(quote), amount=-sign * pl.col("value8")),
            f.select("account", asset=fee_asset, amount=-pl.col("fee8")),
        ]
    )
    return legs.group_by("account", "asset").agg(pl.col("amount").cast(pl.Int128).sum())


# ---------------------------------------------------------------- snapshots, marks, settings


def opening_balances(venue: Venue, rng: np.random.Generator, units: tuple[int, int] = (5_000, 500_000),
                     cash_units: tuple[int, int] = (10**9, 2 * 10**9)) -> pl.DataFrame:
    """Every account holds every asset (5,000..500,000 units at 4 places) and ~1-2 bn of its quote."""
    n = venue.accounts
    assets = pl.DataFrame(
        {
            "account": np.repeat(np.arange(n, dtype=np.int32), ASSETS),
            "asset": pl.select(asset_code(pl.Series(np.tile(np.arange(ASSETS), n)))).to_series(),
            "open8": rng.integers(units[0] * 10**4, units[1] * 10**4, n * ASSETS) * 10**4,
        }
    )
    cash = pl.DataFrame(
        {
            "account": np.arange(n, dtype=np.int32),
            "asset": [venue.quote] * n,
            "open8": rng.integers(cash_units[0] * 100, cash_units[1] * 100, n) * 10**6,
        }
    )
    return pl.concat([assets, cash]).with_columns(pl.col("open8").cast(pl.Int128))


def write_snapshots(landing: Path, venue: str, names: list[str], frame: pl.DataFrame, day: dt.date, column: str) -> None:
    """``<venue>/<account>/balances/D.csv`` (``asset,total``); Kraken writes its own ``ZUSD``."""
    code = pl.col("asset")
    if venue == "kraken":
        code = pl.when(code == "USD").then(pl.lit("ZUSD")).otherwise(code)
    lines = frame.select("account", line=pl.concat_str([code, signed(pl.col(column), 8)], separator=","))
    for (index,), part in lines.partition_by("account", as_dict=True, maintain_order=True).items():
        target = landing / venue / names[index] / "balances"
        target.mkdir(parents=True, exist_ok=True)
        write_lines(target / f"{day.isoformat()}.csv", "asset,total", part.select("line"))


def write_marks(landing: Path, day: dt.date, prices4: np.ndarray, usdt4: int) -> None:
    (landing / "marks").mkdir(parents=True, exist_ok=True)
    lines = pl.DataFrame({"asset": np.arange(ASSETS), "price": prices4}).select(
        line=pl.concat_str([asset_code(pl.col("asset")), digits(pl.col("price"), 4)], separator=",")
    )
    lines = pl.concat([lines, pl.DataFrame({"line": [f"USDT,{usdt4 // 10**4}.{usdt4 % 10**4:04d}"]})])
    write_lines(landing / "marks" / f"{day.isoformat()}.csv", "asset,price", lines)


def plant_differences(closing: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Move a few snapshot totals off the ledger and leave a few assets out; the breaks the
    run must find: (venue, account, asset, diff8) with diff = venue - ledger."""
    picked = rng.choice(closing.height, PLANTED_DIFFERENCES + PLANTED_MISSING, replace=False)
    # From one unit in the 8th place to whole units, either way.
    deltas = np.array([1, -1, 12_345_678, -3 * 10**8, 10**4], dtype=np.int64)[rng.integers(0, 5, PLANTED_DIFFERENCES)]
    marked = closing.with_row_index("i").with_columns(delta=pl.lit(0, pl.Int128), drop=pl.lit(False))
    moved = pl.DataFrame({"i": picked[:PLANTED_DIFFERENCES].astype(np.uint32), "d": deltas}).with_columns(pl.col("d").cast(pl.Int128))
    marked = marked.join(moved, on="i", how="left").with_columns(delta=pl.col("d").fill_null(0)).drop("d")
    marked = marked.with_columns(drop=pl.col("i").is_in(picked[PLANTED_DIFFERENCES:].astype(np.uint32).tolist()))
    snapshot = marked.filter(~pl.col("drop")).with_columns(total8=pl.col("ledger8") + pl.col("delta"))
    breaks = marked.filter(pl.col("drop") | (pl.col("delta") != 0)).select(
        "venue", "account_name", "asset", diff8=pl.when(pl.col("drop")).then(pl.lit(0, pl.Int128) - pl.col("ledger8")).otherwise(pl.col("delta"))  # no neg for Int128
    )
    return snapshot.drop("i", "delta", "drop"), breaks


def generate(landing: Path, fills: int, seed: int = SEED, derivative_share: float = 0.0) -> dict:
    """Write the landing folder; return (and write next to it, as ``expected.json``) what
    the run must find. ``derivative_share`` of the fills go to 200 derivative instruments
    (:mod:`eod_derivatives`); the rest are the spot fills as before (share 0: the same folder)."""
    derivative_fills = round(fills * derivative_share)
    spot_fills = fills - derivative_fills
    rng = np.random.default_rng(seed)
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "utl.toml").write_text('reporting_currency = "USD"\ncosting_method = "fifo"\n')
    prices4 = rng.integers(100, 10_000_000, ASSETS)  # 0.0100 .. 999.9999 USD
    closing_prices4 = np.maximum(prices4 + rng.integers(-(prices4 // 20), prices4 // 20 + 1), 1)
    write_marks(landing, OPENING, prices4, 10_002)
    write_marks(landing, BUSINESS_DATE, closing_prices4, 9_997)
    total_accounts = sum(v.accounts for v in VENUES)
    closings = []
    written = 0
    for number, venue in enumerate(VENUES):
        names = account_names(venue)
        n = spot_fills - written if number == len(VENUES) - 1 else spot_fills * venue.accounts // total_accounts
        written += n
        f = FEES[venue.name](day_fills(n, venue.accounts, prices4, rng))
        venue.write(landing / venue.name, names, f)
        opening = opening_balances(venue, rng)
        write_snapshots(landing, venue.name, names, opening, OPENING, "open8")
        closing = opening.join(leg_sums(f, venue.quote), on=["account", "asset"], how="full", coalesce=True).select(
            "account", "asset", ledger8=pl.col("open8").fill_null(0) + pl.col("amount").fill_null(0)
        )
        closings.append(closing.with_columns(venue=pl.lit(venue.name), account_name=pl.col("account").replace_strict(
            list(range(venue.accounts)), names, return_dtype=pl.String)))
        del f
    closing = pl.concat(closings).sort("venue", "account", "asset")
    snapshot, breaks = plant_differences(closing, rng)
    for venue in VENUES:
        part = snapshot.filter(pl.col("venue") == venue.name)
        write_snapshots(landing, venue.name, account_names(venue), part, BUSINESS_DATE, "total8")
    position_breaks = []
    if derivative_fills:
        from eod_derivatives import BINANCE_ACCOUNTS, DERIBIT_ACCOUNTS, write_derivatives

        position_breaks = write_derivatives(landing, derivative_fills, prices4, closing_prices4, rng, OPENING, BUSINESS_DATE)
        total_accounts += BINANCE_ACCOUNTS + DERIBIT_ACCOUNTS
    expected = {
        "business_date": BUSINESS_DATE.isoformat(),
        "fills": fills,
        "derivative_fills": derivative_fills,
        "accounts": total_accounts,
        "assets": ASSETS,
        # Balance breaks, then the derivative position breaks (asset = the ccxt symbol).
        "breaks": breaks.sort("venue", "account_name", "asset").select(
            "venue", account="account_name", asset="asset", diff=signed(pl.col("diff8"), 8)
        ).to_dicts() + position_breaks,
    }
    (landing.parent / "expected.json").write_text(json.dumps(expected, indent=1))
    return expected


# ---------------------------------------------------------------- many business days


HISTORY_UNITS = (50, 500)  # opening holdings per asset: a few days' trading, so FIFO lots turn over
HISTORY_CASH = (50 * 10**6, 100 * 10**6)  # opening quote per account: about a day's buying
REVERSION_UNITS = 800  # a pair this many units off its opening holding buys (or sells) 80% of the time


def generate_history(landing: Path, fills: int, days: int, seed: int = SEED, first: dt.date = BUSINESS_DATE) -> dict:
    """``days`` business dates from ``first`` in the same venues and formats as
    :func:`generate`, written as daily exports: each date its own trades file per
    (venue, account), its closing snapshot per account (the ledger plus the planted
    differences) and its marks; the opening snapshot and marks are of the day before
    ``first``. Marks move up to 5% a day. Each pair's side leans back toward its opening
    holding (a market maker's inventory), and the opening holdings and cash are a few
    days' trading, so the open FIFO lots a date carries stay about the same from day to
    day instead of growing with the history.

    Returns (and writes next to the landing folder, as ``expected.json``) per date its
    files (relative paths) and the breaks the run must find on it."""
    rng = np.random.default_rng(seed)
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "utl.toml").write_text('reporting_currency = "USD"\ncosting_method = "fifo"\n')
    opening_day = first - dt.timedelta(days=1)
    prices4 = rng.integers(100, 10_000_000, ASSETS)
    usdt4 = 10_002
    write_marks(landing, opening_day, prices4, usdt4)
    total_accounts = sum(v.accounts for v in VENUES)
    holdings, targets = {}, {}
    for venue in VENUES:
        opening = opening_balances(venue, rng, HISTORY_UNITS, HISTORY_CASH)
        write_snapshots(landing, venue.name, account_names(venue), opening, opening_day, "open8")
        holdings[venue.name] = opening.select("account", "asset", ledger8="open8")
        targets[venue.name] = _by_pair(opening.rename({"open8": "ledger8"}), venue.accounts)
    dates = []
    for number in range(days):
        day = first + dt.timedelta(days=number)
        before = set(_files(landing))
        closing_prices4 = np.maximum(prices4 + rng.integers(-(prices4 // 20), prices4 // 20 + 1), 1)
        usdt4 = int(rng.integers(9_990, 10_011))
        write_marks(landing, day, closing_prices4, usdt4)
        closings, written = [], 0
        for index, venue in enumerate(VENUES):
            names = account_names(venue)
            n = fills - written if index == len(VENUES) - 1 else fills * venue.accounts // total_accounts
            written += n
            held = _by_pair(holdings[venue.name], venue.accounts)
            odds = np.clip(0.5 + (targets[venue.name] - held) / (REVERSION_UNITS * 10**8 / 0.3), 0.2, 0.8)
            f = FEES[venue.name](day_fills(n, venue.accounts, prices4, rng, day=day, buy_odds=odds))
            venue.write(landing / venue.name, names, f, day=day)
            ledger = holdings[venue.name].join(leg_sums(f, venue.quote), on=["account", "asset"], how="full",
                                               coalesce=True).select(
                "account", "asset", ledger8=pl.col("ledger8").fill_null(0) + pl.col("amount").fill_null(0))
            holdings[venue.name] = ledger
            closings.append(ledger.with_columns(venue=pl.lit(venue.name), account_name=pl.col("account").replace_strict(
                list(range(venue.accounts)), names, return_dtype=pl.String)))
        snapshot, breaks = plant_differences(pl.concat(closings).sort("venue", "account", "asset"), rng)
        for venue in VENUES:
            part = snapshot.filter(pl.col("venue") == venue.name)
            write_snapshots(landing, venue.name, account_names(venue), part, day, "total8")
        prices4 = closing_prices4
        dates.append({
            "business_date": day.isoformat(),
            "files": sorted(set(_files(landing)) - before),
            "breaks": breaks.sort("venue", "account_name", "asset").select(
                "venue", account="account_name", asset="asset", diff=signed(pl.col("diff8"), 8)).to_dicts(),
        })
    expected = {"fills_per_day": fills, "accounts": total_accounts, "assets": ASSETS, "dates": dates}
    (landing.parent / "expected.json").write_text(json.dumps(expected, indent=1))
    return expected


def _by_pair(frame: pl.DataFrame, accounts: int) -> np.ndarray:
    """(accounts x assets) array of ``ledger8`` for the assets A000..; the quote is left out."""
    out = np.zeros((accounts, ASSETS), dtype=np.float64)
    base = frame.filter(pl.col("asset").str.starts_with("A")).with_columns(
        index=pl.col("asset").str.slice(1).cast(pl.Int64))
    out[base["account"].to_numpy(), base["index"].to_numpy()] = base["ledger8"].cast(pl.Float64).to_numpy()
    return out


def _files(landing: Path) -> list[str]:
    return [p.relative_to(landing).as_posix() for p in landing.rglob("*") if p.is_file()]


if __name__ == "__main__":
    import argparse
    import time

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("landing", type=Path)
    parser.add_argument("--fills", type=int, default=10_000_000)
    args = parser.parse_args()
    started = time.perf_counter()
    result = generate(args.landing, args.fills)
    print(f"{args.fills:,} fills, {len(result['breaks'])} planted breaks in {time.perf_counter() - started:.1f} s")
