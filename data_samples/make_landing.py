"""Write the sample landing folder, its expected outcome and its README, from one description.

    uv run python data_samples/make_landing.py [--out DIR]

Writes ``DIR/landing/`` (the layout of ``shared/contracts/eod.md``), ``DIR/landing_expected.json``
and ``DIR/README.md``; ``DIR`` defaults to this script's folder, whose output is committed.
The run is deterministic (no clock, no random module: "random" choices are SHA-256 of a label)
so ``tests/test_data_samples.py`` can check the committed files byte for byte.

Every fill is generated once as exact ``Decimal`` values, then written in each venue's own
export layout, and its legs (base, quote, fee) go into one bookkeeping. The venue balances,
the breaks and the positions in ``landing_expected.json`` are derived from that bookkeeping,
never typed, so they equal opening + all legs exactly except where a planted case says
otherwise (see PLANTED and README.md).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OPENING = date(2024, 3, 4)
BUSINESS_DATES = (date(2024, 3, 5), date(2024, 3, 6), date(2024, 3, 7))
SNAPSHOT_DATES = (OPENING, *BUSINESS_DATES)
REPORTING_CURRENCY = "USD"
TOLERANCE = {"BTC": Decimal("0.00000001"), "ETH": Decimal("0.0000001"), "USDT": Decimal("0.01")}

# End-of-day marks in USD (inputs, typed once). USD, the reporting currency, needs none.
MARKS: dict[date, dict[str, Decimal]] = {
    d: {a: Decimal(p) for a, p in prices.items()}
    for d, prices in {
        date(2024, 3, 4): {"BTC": "68300.00", "ETH": "3630.00", "USDT": "0.9998", "BNB": "414.20", "SOL": "132.40"},
        date(2024, 3, 5): {"BTC": "66100.00", "ETH": "3560.00", "USDT": "0.9997", "BNB": "405.80", "SOL": "126.90"},
        date(2024, 3, 6): {"BTC": "66950.00", "ETH": "3820.00", "USDT": "1.0001", "BNB": "428.10", "SOL": "133.70"},
        date(2024, 3, 7): {"BTC": "67050.00", "ETH": "3880.00", "USDT": "0.9999", "BNB": "455.30", "SOL": "140.20"},
    }.items()
}

# Kraken's legacy codes, as its files write them.
KRAKEN_CODE = {"BTC": "XXBT", "ETH": "XETH", "USD": "ZUSD", "USDT": "USDT"}


# ---------------------------------------------------------------- deterministic choices


def draw(*label: object) -> int:
    """A stable pseudo-random integer for a label (SHA-256: same on every machine)."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, label)).encode()).digest(), "big")


def pick(label: tuple, lo: str, hi: str, places: int) -> Decimal:
    """A decimal in [lo, hi] with ``places`` decimals, chosen by ``label``."""
    step = Decimal(1).scaleb(-places)
    lo_d, hi_d = Decimal(lo), Decimal(hi)
    count = int((hi_d - lo_d) / step) + 1
    return lo_d + step * (draw(*label) % count)


def at(day: date, hh: int, mm: int, ss: int, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, micro, tzinfo=UTC)


def quantize(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def fixed(value: Decimal, places: int) -> str:
    """``value`` with exactly ``places`` decimals; refuses to round (text must stay exact)."""
    if quantize(value, places) != value:
        raise ValueError(f"{value} does not fit {places} decimals")
    return f"{value:.{places}f}"


def plain(value: Decimal) -> str:
    """Shortest exact decimal text: 1.50 -> "1.5", 100 -> "100", -0 -> "0"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


# ---------------------------------------------------------------- fills and the bookkeeping


@dataclass(frozen=True)
class Fill:
    ts: datetime
    base: str  # canonical codes
    quote: str
    side: str  # buy | sell
    qty: Decimal  # unsigned base quantity
    price: Decimal
    quote_qty: Decimal
    fee: Decimal
    fee_asset: str
    note: str = ""  # why a planted fill is there

    def legs(self) -> list[tuple[str, Decimal]]:
        sign = 1 if self.side == "buy" else -1
        legs = [(self.base, sign * self.qty), (self.quote, -sign * self.quote_qty)]
        if self.fee:
            legs.append((self.fee_asset, -self.fee))
        return legs


@dataclass
class Account:
    venue: str
    account: str
    opening: dict[str, Decimal]  # canonical asset -> quantity at end of OPENING
    legs: list[tuple[datetime, str, Decimal]] = field(default_factory=list)  # what the exports book
    # What the venue's balances differ by from the ledger, per snapshot date: planted cases.
    venue_extra: dict[date, dict[str, Decimal]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Decimal)))

    @property
    def key(self) -> str:
        return f"{self.venue}/{self.account}"

    def book(self, ts: datetime, legs: list[tuple[str, Decimal]]) -> None:
        self.legs += [(ts, asset, qty) for asset, qty in legs if qty]

    def ledger(self, day: date) -> dict[str, Decimal]:
        """Ledger position at end of ``day`` (``day+1 00:00Z``): opening + legs before it."""
        end = at(day + timedelta(days=1), 0, 0, 0)
        held = defaultdict(Decimal, self.opening)
        for ts, asset, qty in self.legs:
            if ts < end:
                held[asset] += qty
        return dict(held)

    def venue_balance(self, day: date) -> dict[str, Decimal]:
        held = defaultdict(Decimal, self.ledger(day))
        for asset, qty in self.venue_extra[day].items():
            held[asset] += qty
        return dict(held)


def usd(asset: str, day: date) -> Decimal:
    return Decimal(1) if asset == REPORTING_CURRENCY else MARKS[day][asset]


@dataclass(frozen=True)
class Pair:
    base: str
    quote: str
    qty_range: tuple[str, str]
    qty_places: int
    price_places: int


def generate(label: str, pairs: list[Pair], per_day: int) -> list[tuple[datetime, Pair, str, Decimal, Decimal]]:
    """(ts, pair, side, qty, price) for ``per_day`` fills a business day, prices near the marks."""
    out = []
    for day in BUSINESS_DATES:
        seconds = sorted({600 + draw(label, day, i, "t") % 84600 for i in range(per_day)})
        for i, second in enumerate(seconds):
            pair = pairs[draw(label, day, i, "pair") % len(pairs)]
            side = "buy" if draw(label, day, i, "side") % 2 else "sell"
            qty = pick((label, day, i, "qty"), *pair.qty_range, pair.qty_places)
            out.append((at(day, second // 3600, second // 60 % 60, second % 60), pair, side, qty, near(label, day, i, pair)))
    return out


def near(label: str, day: date, i: int, pair: Pair) -> Decimal:
    """A price within +-1% of the day's mark of base in quote."""
    reference = usd(pair.base, day) / usd(pair.quote, day)
    wobble = Decimal(draw(label, day, i, "price") % 201 - 100) / 10000
    return quantize(reference * (1 + wobble), pair.price_places)


def exact_product(qty: Decimal, price: Decimal, places: int) -> Decimal:
    product = qty * price
    if quantize(product, places) != product:
        raise ValueError(f"{qty} x {price} needs more than {places} decimals")
    return product


# ---------------------------------------------------------------- text writers


def csv_text(rows: list[list[str]]) -> str:
    """Cells quoted only where needed (``"1,300.00USDT"``), as the venues write them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def kraken_csv(rows: list[list[object]]) -> str:
    """Kraken quotes its strings and leaves its numbers bare (``Num`` cells)."""
    return "".join(",".join(c.text if isinstance(c, Num) else '"' + str(c) + '"' for c in row) + "\n" for row in rows)


@dataclass(frozen=True)
class Num:
    """A JSON/CSV number written as this exact text (never through a float)."""

    text: str


def float_text(value: Decimal) -> Num:
    """How Python ccxt writes a number: the float's repr; exact only where it round-trips."""
    text = repr(float(value))
    if Decimal(text) != value:
        raise ValueError(f"{value} does not survive a float")
    return Num(text)


def to_json(value: object) -> str:
    if isinstance(value, Num):
        return value.text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    return json.dumps(value)


def ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def iso_ms(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def kraken_id(prefix: str, *label: object) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    n = draw(prefix, *label)
    chars = []
    for _ in range(16):
        n, r = divmod(n, len(alphabet))
        chars.append(alphabet[r])
    s = "".join(chars)
    return f"{prefix}{s[:5]}-{s[5:10]}-{s[10:16]}"


# ---------------------------------------------------------------- the landing folder


@dataclass
class Landing:
    files: dict[str, bytes] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)  # rel path -> format name (the reader's)
    accounts: dict[str, Account] = field(default_factory=dict)
    planted: list[dict] = field(default_factory=list)
    quarantine: list[dict] = field(default_factory=list)
    positions: dict[str, str] = field(default_factory=dict)  # rel path -> the venue reply's shape

    def add(self, rel: str, text: str, fmt: str) -> None:
        self.files[rel] = text.encode("utf-8")
        if fmt:
            self.formats[rel] = fmt

    def open(self, venue: str, account: str, opening: dict[str, str]) -> Account:
        acct = Account(venue, account, {a: Decimal(q) for a, q in opening.items()})
        self.accounts[acct.key] = acct
        return acct

    def plant(self, case: str, where: str, expect: str) -> None:
        self.planted.append({"case": case, "where": where, "expect": expect})


# ---------------------------------------------------------------- Binance


BINANCE_SPOT = ["Time", "Pair", "Side", "Price", "Executed", "Amount", "Fee"]
BINANCE_SPOT_UTC = ["Date(UTC)", *BINANCE_SPOT[1:]]
UTC8 = timedelta(hours=8)


def binance_fills(label: str, pairs: list[Pair], per_day: int) -> list[Fill]:
    fills = []
    for i, (ts, pair, side, qty, price) in enumerate(generate(label, pairs, per_day)):
        fills.append(binance_fill(label, i, ts, pair, side, qty, price))
    return fills


def binance_fill(label: str, i: int, ts: datetime, pair: Pair, side: str, qty: Decimal, price: Decimal, note: str = "") -> Fill:
    quote_qty = exact_product(qty, price, 8)
    day = ts.date()
    if draw(label, i, "fee") % 4:  # most fees paid in BNB at a 25% discount
        fee = quantize(quote_qty * usd(pair.quote, day) * Decimal("0.00075") / MARKS[day]["BNB"], 8)
        fee_asset = "BNB"
    elif side == "buy":
        fee, fee_asset = quantize(qty * Decimal("0.001"), 8), pair.base
    else:
        fee, fee_asset = quantize(quote_qty * Decimal("0.001"), 8), pair.quote
    return Fill(ts, pair.base, pair.quote, side, qty, price, quote_qty, fee, fee_asset, note)


def binance_row(fill: Fill, pair: Pair, local: bool) -> list[str]:
    when = (fill.ts + UTC8).strftime("%y-%m-%d %H:%M:%S") if local else fill.ts.strftime("%Y-%m-%d %H:%M:%S")
    return [
        when,
        f"{fill.base}{fill.quote}",
        fill.side.upper(),
        f"{fill.price:.{max(pair.price_places, 2)}f}",
        fixed(fill.qty, 8) + fill.base,
        f"{fill.quote_qty:,.8f}" + fill.quote,
        fixed(fill.fee, 8) + fill.fee_asset,
    ]


def binance_account_json(acct: Account, day: date, locked: dict[str, str]) -> str:
    """``GET /api/v3/account``: totals split into free and locked, zero rows kept."""
    held = acct.venue_balance(day)
    balances = []
    for asset in sorted(set(held) | {"LTC"}):
        total = held.get(asset, Decimal(0))
        lock = min(Decimal(locked.get(asset, "0")), total)
        balances.append({"asset": asset, "free": fixed(total - lock, 8), "locked": fixed(lock, 8)})
    reply = {
        "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
        "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False,
        "updateTime": ms(at(day + timedelta(days=1), 0, 0, 0)) - 1000,
        "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 31415926,
    }  # fmt: skip
    return json.dumps(reply, indent=2) + "\n"


def balance_csv(acct: Account, day: date) -> str:
    held = acct.venue_balance(day)
    return csv_text([["asset", "total"]] + [[a, plain(q)] for a, q in sorted(held.items()) if q])


def write_binance(landing: Landing) -> None:
    btc_usdt = Pair("BTC", "USDT", ("0.00100", "0.40000"), 5, 2)
    eth_usdt = Pair("ETH", "USDT", ("0.0100", "6.0000"), 4, 2)
    eth_btc = Pair("ETH", "BTC", ("0.100", "3.000"), 3, 5)
    bnb_usdt = Pair("BNB", "USDT", ("0.10", "4.00"), 2, 1)

    # -- mm-spot-1: current layout, local time UTC+8 (zone only in the file name); two overlapping exports.
    one = landing.open("binance", "mm-spot-1", {"BTC": "4.5", "ETH": "60", "USDT": "400000", "BNB": "25"})
    pairs = {("BTC", "USDT"): btc_usdt, ("ETH", "USDT"): eth_usdt, ("ETH", "BTC"): eth_btc, ("BNB", "USDT"): bnb_usdt}
    fills = binance_fills("binance/mm-spot-1", list(pairs.values()), 6)
    d5, d6 = BUSINESS_DATES[0], BUSINESS_DATES[1]
    late = binance_fill("b1-late", 0, at(d5, 23, 45, 10), btc_usdt, "buy", Decimal("0.12000"), Decimal("66080.50"),
                        "local time 24-03-06 07:45:10 (UTC+8) is 2024-03-05 23:45:10 UTC: books on 2024-03-05")  # fmt: skip
    twin = binance_fill("b1-twin", 1, at(d6, 5, 40, 0), btc_usdt, "sell", Decimal("0.01000"), Decimal("66890.00"),
                        "two identical rows: two fills (occurrence 1 and 2), in both exports")  # fmt: skip
    corrupted = binance_fill("b1-corrupt", 3, at(d6, 3, 12, 40), eth_usdt, "buy", Decimal("0.5000"), Decimal("3795.20"),
                             "in the re-export its Executed cell reads 0.5x0000000ETH")  # fmt: skip
    fills = sorted([*fills, late, twin, twin, corrupted], key=lambda f: f.ts)
    for fill in fills:
        one.book(fill.ts, fill.legs())

    # Export 1 ends 2024-03-06 20:00 local (12:00 UTC); export 2 repeats that day's morning.
    # Binance lists newest first.
    cut_1, from_2 = at(d6, 12, 0, 0), at(d6, 0, 0, 0)
    first = [f for f in fills if f.ts < cut_1][::-1]
    second = [f for f in fills if f.ts >= from_2][::-1]
    name_1 = "binance/mm-spot-1/trades/Binance-Spot-Trade-History-202403062000(UTC+8)_ab12.csv"
    name_2 = "binance/mm-spot-1/trades/Binance-Spot-Trade-History-202403080800(UTC+8)_cd34.csv"
    rows_1 = [binance_row(f, pairs[f.base, f.quote], local=True) for f in first]
    rows_2 = [binance_row(f, pairs[f.base, f.quote], local=True) for f in second]
    bad_row = second.index(corrupted) + 1
    rows_2[bad_row - 1][4] = "0.5x0000000ETH"
    landing.add(name_1, csv_text([BINANCE_SPOT, *rows_1]), "binance.spot_trades")
    landing.add(name_2, csv_text([BINANCE_SPOT, *rows_2]), "binance.spot_trades")
    overlap = [f for f in fills if from_2 <= f.ts < cut_1]
    landing.plant(
        "overlapping re-export",
        f"{name_2}: rows {len(second) - len(overlap) + 1}..{len(second)} repeat rows 1..{len(overlap)} of {name_1} "
        f"(row {bad_row} with a spoiled cell: see the malformed row)",
        f"the {len(overlap)} fills of 2024-03-06 00:00-12:00 UTC book once (the Binance key is the row's "
        "content, its time as a UTC instant, and its occurrence number in its file)",
    )
    landing.plant(
        "identical rows in one file",
        f"{name_1} rows {first.index(twin) + 1} and {first.index(twin) + 2} (and again in {name_2})",
        "two fills of 0.01 BTC sold at 66890.00 in the same second: both book (occurrence 1 and 2), "
        "and the re-export's copies book nothing more",
    )
    landing.plant(
        "fee paid in BNB",
        f"{name_1}, {name_2}: every Fee cell ending in BNB",
        "the fee books as a BNB leg of binance/mm-spot-1, not in the pair's assets",
    )
    landing.plant(
        "time zone only in the file name",
        f"{name_1} row {first.index(late) + 1}",
        late.note,
    )
    landing.plant(
        "malformed row",
        f"{name_2} row {bad_row}, column Executed",
        'quarantined (file, row, column "Executed", raw "0.5x0000000ETH"); the fill it spoils books from '
        f"{name_1} row {first.index(corrupted) + 1}, so the balances hold and nothing breaks",
    )
    landing.quarantine.append({"file": name_2, "row": bad_row, "column": "Executed", "raw": "0.5x0000000ETH"})

    # -- mm-spot-2: the previous layout (Date(UTC)); its export lacks one fill the venue made.
    two = landing.open("binance", "mm-spot-2", {"BTC": "2", "ETH": "30", "USDT": "250000", "BNB": "5"})
    pairs_2 = {("BTC", "USDT"): btc_usdt, ("ETH", "USDT"): eth_usdt}
    fills_2 = sorted(binance_fills("binance/mm-spot-2", list(pairs_2.values()), 5), key=lambda f: f.ts)
    for fill in fills_2:
        two.book(fill.ts, fill.legs())
    missing = Fill(at(d6, 14, 20, 0), "ETH", "USDT", "buy", Decimal("0.5"), Decimal("3800.00"), Decimal("1900.00"),
                   Decimal("1.9"), "USDT")  # fmt: skip
    for day in SNAPSHOT_DATES:
        if day >= missing.ts.date():
            for asset, qty in missing.legs():
                two.venue_extra[day][asset] += qty
    name_3 = "binance/mm-spot-2/trades/Binance-Spot-Trade-History-20240308.csv"
    landing.add(name_3, csv_text([BINANCE_SPOT_UTC] + [binance_row(f, pairs_2[f.base, f.quote], local=False) for f in fills_2[::-1]]),
                "binance.spot_trades")  # fmt: skip
    landing.plant(
        "a fill the export lacks",
        f"{name_3} (absent): 2024-03-06 14:20:00 UTC ETHUSDT BUY 0.5 ETH at 3800.00 for 1900.00 USDT, fee 1.9 USDT",
        "the venue's balances include it from 2024-03-06: breaks on binance/mm-spot-2 ETH (diff +0.5) and "
        "USDT (diff -1901.9) on 2024-03-06 and 2024-03-07, first_seen 2024-03-06",
    )

    one_locked = {"BTC": "0.25", "USDT": "15000"}
    for day in SNAPSHOT_DATES:
        if day in (date(2024, 3, 5), date(2024, 3, 6)):
            landing.add(f"binance/mm-spot-1/balances/{day}.json", binance_account_json(one, day, one_locked), "binance.account")
        else:
            landing.add(f"binance/mm-spot-1/balances/{day}.csv", balance_csv(one, day), "generic.balance_csv")
        landing.add(f"binance/mm-spot-2/balances/{day}.json", binance_account_json(two, day, {"ETH": "1.5"}), "binance.account")


# ---------------------------------------------------------------- Kraken


KRAKEN_TRADES = ["txid", "ordertxid", "pair", "time", "type", "ordertype", "price", "cost", "fee", "vol", "margin", "misc", "ledgers"]
KRAKEN_LEDGERS = ["txid", "refid", "time", "type", "subtype", "aclass", "subclass", "asset", "wallet", "amount", "fee", "balance"]
KRAKEN_PLACES = {"ZUSD": 4, "XXBT": 10, "XETH": 10, "USDT": 8}


def write_kraken(landing: Landing) -> None:
    """Trades and Ledgers of one account: legs come from the ledger (it also holds a deposit and
    a withdrawal the Trades file cannot show); the trades only add detail."""
    acct = landing.open("kraken", "main", {"BTC": "3.2", "ETH": "40", "USD": "300000"})
    pairs = [
        Pair("BTC", "USD", ("0.0100", "0.9000"), 4, 0),
        Pair("ETH", "USD", ("0.100", "9.000"), 3, 1),
        Pair("ETH", "BTC", ("0.100", "5.000"), 3, 5),
    ]
    raw = generate("kraken/main", pairs, 4)
    raw.append((at(BUSINESS_DATES[1], 0, 0, 0), pairs[0], "sell", Decimal("0.2500"), Decimal("66800")))
    raw.sort(key=lambda r: r[0])
    fills = []
    for i, (ts, pair, side, qty, price) in enumerate(raw):
        places = 4 if pair.quote == "USD" else 8
        cost = exact_product(qty, price, places)
        fee = quantize(cost * Decimal("0.0026"), places)
        # Kraken times carry a 4-digit fraction; the planted midnight trade keeps .0000.
        fraction = 0 if ts.time() == datetime.min.time() else draw("kraken-frac", i) % 10000 * 100
        fills.append(Fill(ts.replace(microsecond=fraction), pair.base, pair.quote, side, qty, price, cost, fee, pair.quote))

    # Ledger events in time order: each trade gives two rows (quote leg with the fee, base leg).
    trade_rows, balance = [], defaultdict(Decimal, {KRAKEN_CODE[a]: q for a, q in acct.opening.items()})
    deposit_ts, withdrawal_ts = at(BUSINESS_DATES[1], 10, 0, 0), at(BUSINESS_DATES[2], 15, 30, 0)
    timeline = [(f.ts, "trade", f) for f in fills] + [(deposit_ts, "deposit", None), (withdrawal_ts, "withdrawal", None)]
    ledger_rows = []

    def ledger_row(ts: datetime, refid: str, kind: str, subtype: str, code: str, amount: Decimal, fee: Decimal, n: int) -> list:
        balance[code] += amount - fee
        places = KRAKEN_PLACES[code]
        lid = kraken_id("L", refid, code, n)
        subclass = "fiat" if code.startswith("Z") else "crypto"
        ledger_rows.append([lid, refid, ts.strftime("%Y-%m-%d %H:%M:%S"), kind, subtype, "currency", subclass, code,
                            "spot / main", Num(fixed(amount, places)), Num(fixed(fee, places)), Num(fixed(balance[code], places))])  # fmt: skip
        return lid

    for n, (ts, kind, fill) in enumerate(sorted(timeline, key=lambda e: e[0])):
        if kind == "trade":
            txid, order = kraken_id("T", n), kraken_id("O", n)
            sign = 1 if fill.side == "buy" else -1
            quote_code, base_code = KRAKEN_CODE[fill.quote], KRAKEN_CODE[fill.base]
            l1 = ledger_row(ts, txid, "trade", "tradespot", quote_code, -sign * fill.quote_qty, fill.fee, 1)
            l2 = ledger_row(ts, txid, "trade", "tradespot", base_code, sign * fill.qty, Decimal(0), 2)
            money = 5 if fill.quote == "USD" else 8
            trade_rows.append([txid, order, base_code + quote_code, ts.strftime("%Y-%m-%d %H:%M:%S.") + f"{ts.microsecond // 100:04d}",
                               fill.side, "limit", Num(f"{fill.price:.{max(1, len(str(fill.price).partition('.')[2]))}f}"),
                               Num(fixed(fill.quote_qty, money)), Num(fixed(fill.fee, money)), Num(fixed(fill.qty, 8)),
                               Num("0.00000"), "", f"{l1},{l2}"])  # fmt: skip
            acct.book(ts, fill.legs())
        elif kind == "deposit":
            ledger_row(ts, "FTQq8Zs-V6Za8qrWnhzTx67rYHz8Ab", "deposit", "", "ZUSD", Decimal("25000"), Decimal(0), 1)
            acct.book(ts, [("USD", Decimal("25000"))])
        else:
            ledger_row(ts, "FTW3kLm-Q9Pr2sTuVx4yZa6bCd8eFg", "withdrawal", "", "XXBT", Decimal("-0.15"), Decimal("0.00002"), 1)
            acct.book(ts, [("BTC", Decimal("-0.15")), ("BTC", Decimal("-0.00002"))])

    trades_name, ledgers_name = "kraken/main/trades/trades.csv", "kraken/main/trades/ledgers.csv"
    landing.add(trades_name, kraken_csv([KRAKEN_TRADES, *trade_rows]), "kraken.trades")
    landing.add(ledgers_name, kraken_csv([KRAKEN_LEDGERS, *ledger_rows]), "kraken.ledgers")

    dust = Decimal("0.000000005")
    for day in BUSINESS_DATES:
        acct.venue_extra[day]["BTC"] += dust
    for day in SNAPSHOT_DATES:
        held = acct.venue_balance(day)
        result = {KRAKEN_CODE[a]: fixed(q, KRAKEN_PLACES[KRAKEN_CODE[a]]) for a, q in sorted(held.items())}
        result["USDT"] = "0.00000000"
        landing.add(f"kraken/main/balances/{day}.json", json.dumps({"error": [], "result": result}) + "\n", "kraken.balance")

    landing.plant(
        "Kraken asset codes",
        f"{trades_name}, {ledgers_name}, kraken/main/balances/*.json",
        "XXBT, XETH and ZUSD (pairs XXBTZUSD, XETHZUSD, XETHXXBT) book as BTC, ETH and USD",
    )
    landing.plant(
        "one source of legs: the ledger",
        f"{ledgers_name} and {trades_name}",
        "kraken/main books from Ledgers only; its Trades add detail. Booking both would double every trade; "
        "booking only Trades would miss the 25000 USD deposit (2024-03-06) and the 0.15 BTC withdrawal "
        "with its 0.00002 BTC fee (2024-03-07)",
    )
    landing.plant(
        "a fill at midnight",
        f"{trades_name}: the trade at 2024-03-06 00:00:00.0000",
        "books on 2024-03-06 (end of 2024-03-05 is 2024-03-06 00:00:00Z, exclusive)",
    )
    landing.plant(
        "dust under the tolerance",
        "kraken/main/balances/2024-03-05.json .. 2024-03-07.json: XXBT",
        f"the venue holds {plain(dust)} BTC more than the ledger, under the BTC tolerance "
        f"{plain(TOLERANCE['BTC'])}: no break",
    )


# ---------------------------------------------------------------- OKX


OKX_TRADING = ["id", "Order id", "Time", "Trade Type", "Symbol", "Action", "Amount", "Trading Unit", "Filled Price", "PnL",
               "Fee", "Fee Unit", "Position Change", "Position Balance", "Balance Change", "Balance", "Balance Unit"]  # fmt: skip


def write_okx(landing: Landing) -> None:
    acct = landing.open("okx", "main", {"BTC": "1.5", "ETH": "20", "USDT": "150000"})
    pairs = [Pair("BTC", "USDT", ("0.00100", "0.30000"), 5, 1), Pair("ETH", "USDT", ("0.0100", "4.0000"), 4, 2)]
    raw = generate("okx/main", pairs, 4)
    raw.append((at(BUSINESS_DATES[0], 23, 59, 59), pairs[1], "buy", Decimal("1.2500"), Decimal("3561.25")))
    transfer_ts = at(BUSINESS_DATES[1], 2, 0, 0)
    timeline = sorted([(r[0], r) for r in raw] + [(transfer_ts, None)], key=lambda e: e[0])
    balance = defaultdict(Decimal, acct.opening)
    rows, bill, order = [], 710000000000000101, 690000000000000001

    def row(ts: datetime, order_id: str, ttype: str, symbol: str, action: str, amount: Decimal, unit: str, price: str,
            fee: Decimal, change: Decimal, asset: str) -> None:  # fmt: skip
        nonlocal bill
        balance[asset] += change
        local = (ts + UTC8).strftime("%Y-%m-%d %H:%M:%S")
        rows.append([str(bill), order_id, local, ttype, symbol, action, plain(amount), unit, price, "0", plain(fee), asset,
                     "0", "0", plain(change), plain(balance[asset]), asset])  # fmt: skip
        bill += 1

    for ts, r in timeline:
        if r is None:
            row(ts, "", "Transfer", "", "Transfer in", Decimal(0), "cont", "0", Decimal(0), Decimal("20000"), "USDT")
            acct.book(ts, [("USDT", Decimal("20000"))])
            continue
        _, pair, side, qty, price = r
        quote_qty = exact_product(qty, price, 6)
        received, given = (pair.base, pair.quote) if side == "buy" else (pair.quote, pair.base)
        got = qty if side == "buy" else quote_qty
        fee = quantize(got * Decimal("0.0008"), 8)
        symbol, price_text = f"{pair.base}-{pair.quote}", plain(price)
        gave = quote_qty if side == "buy" else qty
        # OKX writes a row per asset: Action is Buy on the leg received (which carries the
        # fee, negative, inside its Balance Change) and Sell on the leg given up.
        legs = {received: ("Buy", got, -fee, got - fee), given: ("Sell", gave, Decimal(0), -gave)}
        for asset in (pair.base, pair.quote):
            action, amount, leg_fee, change = legs[asset]
            row(ts, str(order), "Spot", symbol, action, amount, asset, price_text, leg_fee, change, asset)
        order += 1
        fill = Fill(ts, pair.base, pair.quote, side, qty, price, quote_qty, fee, received)
        acct.book(ts, fill.legs())

    name = "okx/main/trades/Trading-account-history-2024-03-08.csv"
    preamble = "UID:1234567890,Account Type:Main,Time Zone:UTC+8\n"
    landing.add(name, "\ufeff" + preamble + csv_text([OKX_TRADING, *rows[::-1]]), "okx.trading_account")
    for day in SNAPSHOT_DATES:
        landing.add(f"okx/main/balances/{day}.csv", balance_csv(acct, day), "generic.balance_csv")
    landing.plant(
        "a local time past midnight",
        f"{name}: the bill pair at 2024-03-06 07:59:59 (Time Zone:UTC+8 in the preamble)",
        "is 2024-03-05 23:59:59 UTC: books on 2024-03-05",
    )
    landing.plant(
        "fee inside the received leg",
        f"{name}: every Spot row with a Fee",
        "Balance Change = Amount + Fee (fee negative): the account's legs are the rows' Balance Change",
    )


# ---------------------------------------------------------------- Coinbase


COINBASE_REPORT = ["ID", "Timestamp", "Transaction Type", "Asset", "Quantity Transacted", "Price Currency",
                   "Price at Transaction", "Subtotal", "Total (inclusive of fees and/or spread)", "Fees and/or Spread", "Notes"]  # fmt: skip


def dollars(value: Decimal) -> str:
    return ("-" if value < 0 else "") + f"${abs(value):,.2f}"


def write_coinbase(landing: Landing) -> None:
    acct = landing.open("coinbase", "retail", {"BTC": "1", "ETH": "10", "USD": "200000"})
    pairs = [Pair("BTC", "USD", ("0.00100000", "0.20000000"), 8, 2), Pair("ETH", "USD", ("0.01000000", "3.00000000"), 8, 2)]
    raw = generate("coinbase/retail", pairs, 3)
    deposit_ts = at(BUSINESS_DATES[1], 8, 30, 0)
    rows = []
    for ts, r in sorted([(r[0], r) for r in raw] + [(deposit_ts, None)], key=lambda e: e[0]):
        cid = f"{draw('coinbase-id', ts) % 16**24:024x}"
        when = ts.strftime("%Y-%m-%d %H:%M:%S UTC")
        if r is None:
            amount = Decimal("10000")
            rows.append([cid, when, "Deposit", "USD", plain(amount), "USD", "$1.00", dollars(amount), dollars(amount), "$0.00", ""])
            acct.book(ts, [("USD", amount)])
            continue
        _, pair, side, qty, price = r
        subtotal = quantize(qty * price, 2)  # Coinbase states the cent-rounded amount: it is what books
        fee = quantize(subtotal * Decimal("0.006"), 2)
        sign = 1 if side == "buy" else -1
        total = subtotal + fee if side == "buy" else subtotal - fee
        verb = "Bought" if side == "buy" else "Sold"
        rows.append([cid, when, "Buy" if side == "buy" else "Sell", pair.base, plain(sign * qty), "USD", dollars(price),
                     dollars(sign * subtotal), dollars(sign * total), dollars(fee),
                     f"{verb} {plain(qty)} {pair.base} for {total:.2f} USD"])  # fmt: skip
        acct.book(ts, Fill(ts, pair.base, "USD", side, qty, price, subtotal, fee, "USD").legs())

    name = "coinbase/retail/trades/Coinbase-TransactionsHistoryReport-2024-03-08.csv"
    preamble = "\nTransactions\nUser,Jane Doe,3b9c1a52-8d0e-4f7a-9c61-2f0e5b7d4a10\n"
    landing.add(name, preamble + csv_text([COINBASE_REPORT, *rows]), "coinbase.transaction_report")
    for day in SNAPSHOT_DATES:
        if day in (OPENING, BUSINESS_DATES[1]):
            landing.add(f"coinbase/retail/balances/{day}.json", ccxt_balance(acct, day, None, {"data": []}), "ccxt.balance")
        else:
            landing.add(f"coinbase/retail/balances/{day}.csv", balance_csv(acct, day), "generic.balance_csv")
    landing.plant(
        "a ledger report with fiat fees",
        f"{name}",
        "Buy/Sell rows book the asset, -/+ Subtotal in USD and -Fees in USD; the Deposit row books +10000 USD",
    )


# ---------------------------------------------------------------- ccxt (Bybit by API)


def ccxt_balance(acct: Account, day: date, taken: datetime | None, info: dict) -> str:
    """A ccxt ``fetch_balance`` document: the raw reply first, then free/used/total, per code."""
    held = {a: q for a, q in sorted(acct.venue_balance(day).items()) if q}
    taken = taken or at(day + timedelta(days=1), 0, 0, 0) - timedelta(seconds=1)
    used = {a: Decimal(0) for a in held}
    doc: dict[str, object] = {
        "info": info,
        "timestamp": Num(str(ms(taken))),
        "datetime": iso_ms(taken),
        "free": {a: float_text(q) for a, q in held.items()},
        "used": {a: float_text(used[a]) for a in held},
        "total": {a: float_text(q) for a, q in held.items()},
    }
    for a, q in held.items():
        doc[a] = {"free": float_text(q), "used": float_text(used[a]), "total": float_text(q)}
    return to_json(doc) + "\n"


BYBIT_INFO = {"retCode": Num("0"), "retMsg": "OK", "result": {"list": [{"accountType": "UNIFIED"}]}}


def write_ccxt(landing: Landing) -> None:
    acct = landing.open("bybit", "api", {"BTC": "0.8", "SOL": "400", "USDT": "80000"})
    pairs = [Pair("BTC", "USDT", ("0.000500", "0.080000"), 6, 2), Pair("SOL", "USDT", ("1.00", "60.00"), 2, 2)]
    raw = generate("bybit/api", pairs, 4)
    d5 = BUSINESS_DATES[0]
    late = (at(d5, 23, 58, 30, 250000), pairs[0], "buy", Decimal("0.045000"), Decimal("66120.55"))
    raw = sorted([*raw, late], key=lambda r: r[0])
    lines = []
    for i, (ts, pair, side, qty, price) in enumerate(raw):
        ts = ts if ts.microsecond else ts.replace(microsecond=(draw("ccxt-ms", i) % 1000) * 1000)
        cost = exact_product(qty, price, 8)
        fee, fee_asset = (quantize(qty * Decimal("0.001"), 8), pair.base) if side == "buy" else (quantize(cost * Decimal("0.001"), 8), pair.quote)
        fee_doc = {"cost": float_text(fee), "currency": fee_asset}
        trade_id = str(2240000000000 + draw("ccxt-id", i) % 10**9)
        lines.append({
            "id": trade_id, "order": str(1570000000000 + i), "timestamp": Num(str(ms(ts))), "datetime": iso_ms(ts),
            "symbol": f"{pair.base}/{pair.quote}", "side": side, "type": "limit", "takerOrMaker": "maker" if i % 3 else "taker",
            "price": float_text(price), "amount": float_text(qty), "cost": float_text(cost), "fee": fee_doc, "fees": [fee_doc],
            "info": {"execId": trade_id, "symbol": f"{pair.base}{pair.quote}", "isMaker": bool(i % 3)},
        })  # fmt: skip
        fill = Fill(ts, pair.base, pair.quote, side, qty, price, cost, fee, fee_asset)
        acct.book(ts, fill.legs())
        if (ts, pair, side, qty, price)[1:] == late[1:]:
            # The 2024-03-05 snapshot was taken at 23:58:00, before this fill: the venue
            # balance of that day lacks it; the next day's holds it.
            for asset, q in fill.legs():
                acct.venue_extra[d5][asset] -= q
            late_fill = fill
    name = "bybit/api/trades/bybit-spot-my-trades.jsonl"
    exponents = [(n, line["fee"]["cost"].text) for n, line in enumerate(lines, 1) if "e" in line["fee"]["cost"].text]
    landing.add(name, "".join(to_json(line) + "\n" for line in lines), "ccxt.trades")
    for day in SNAPSHOT_DATES:
        taken = at(d5, 23, 58, 0) if day == d5 else None
        landing.add(f"bybit/api/balances/{day}.json", ccxt_balance(acct, day, taken, BYBIT_INFO), "ccxt.balance")
    landing.plant(
        "a snapshot taken before the day's last fill",
        f"bybit/api/balances/{d5}.json (timestamp 23:58:00) and {name}: the fill at {iso_ms(late_fill.ts)}",
        f"the fill books on {d5}; the venue balance of {d5} lacks it: breaks on bybit/api BTC "
        f"(diff {plain(-(late_fill.qty - late_fill.fee))}) and USDT (diff +{plain(late_fill.quote_qty)}) "
        f"on {d5} only, first_seen {d5}; on {BUSINESS_DATES[1]} both reconcile",
    )
    landing.plant(
        "ccxt JSON lines under a venue folder",
        name,
        f"numbers as Python floats write them (line {exponents[0][0]}: fee cost {exponents[0][1]}) read as their exact "
        "text; the key is (venue, symbol, id)",
    )


# ---------------------------------------------------------------- derivatives (issue 14)
#
# Three derivative accounts, apart from the spot ones so that no spot figure moves:
# binance/futures (USDⓈ-M trades + Futures Transaction History), okx/trading (trading account
# history bills of a swap and a dated future) and deribit/main (a BTC transaction log: an
# inverse dated future and a daily call option). Every fill, funding payment, settlement and
# delivery is typed once below as exact decimals; the exports, the positions replies, the
# settle-asset balances and the expected figures all derive from that one description.
#
# The model (derivatives.md) is computed here, independently of utl, on exact rationals:
# - average entry per (venue, account, instrument): on the price (linear, options: the premium)
#   or on 1/price (inverse: the harmonic mean), rounded half-even to 18 places after each
#   re-averaging; reducing keeps it, a flip restarts it at the flip's price;
# - realized PnL as the venue's ledger states it (the generator writes the computed figure,
#   to the venue's places, and refuses a figure the venue would have to round), settlement and
#   delivery as stated;
# - unrealized PnL at the instrument's mark on the ledger quantity: linear qty·size·(mark −
#   reference), inverse qty·size·(1/reference − 1/mark), options qty·size·mark − qty·size·entry;
#   the reference is the entry, or after a Deribit futures settlement that settlement's price;
#   each an exact rational rounded half-even to 18 places, as is an inverse delta qty·size/mark;
# - USD figures: the settle asset's (PnL) or the base asset's (delta) spot mark times the
#   18-place figure, rounded half-even to 18 places.

D18 = Decimal(1).scaleb(-18)
TOLERANCE_POSITIONS = {"BTC/USDT:USDT": Decimal("0.001")}  # [tolerance] by symbol (contract: Reconciliation)
ALL_TOLERANCE = {**TOLERANCE, **TOLERANCE_POSITIONS}


def round18(value: Fraction) -> Decimal:
    """An exact rational rounded half-even to 18 places (as Decimal text, never a float)."""
    scaled = value * 10**18
    q, r = divmod(scaled.numerator, scaled.denominator)
    if 2 * r > scaled.denominator or (2 * r == scaled.denominator and q % 2 == 1):
        q += 1
    return Decimal(q).scaleb(-18)


def F(value: Decimal | int | str) -> Fraction:
    return Fraction(Decimal(value))


@dataclass(frozen=True)
class Spec:
    """One line of instruments/D.csv: what the venue files do not state."""

    venue: str
    symbol: str  # ccxt
    venue_symbol: str  # as the venue writes it
    type: str  # swap | future | option
    settle: str
    size: Decimal  # one unit of the position quantity: base units (linear), USD (inverse futures)
    inverse: bool
    expiry: date | None = None
    strike: Decimal | None = None
    option_type: str | None = None

    @property
    def base(self) -> str:
        return self.symbol.split("/")[0]

    @property
    def harmonic(self) -> bool:
        return self.inverse and self.type != "option"

    def csv_row(self) -> list[str]:
        return [self.venue, self.symbol, self.type, self.settle, plain(self.size), "true" if self.inverse else "false",
                str(self.expiry) if self.expiry else "", plain(self.strike) if self.strike is not None else "",
                self.option_type or ""]  # fmt: skip


@dataclass(frozen=True)
class DerivFill:
    ts: datetime
    spec: Spec
    qty: Decimal  # signed, position unit: + buy, - sell
    price: Decimal  # quote per base; options: premium per unit, in the settle coin
    fee: Decimal  # settle asset, + charged
    trade_id: str


@dataclass(frozen=True)
class DerivCash:
    """A settle-asset ledger line of an instrument, as the venue states it (+ in, - out)."""

    ts: datetime
    spec: Spec
    kind: str  # realized_pnl | funding | fee | settlement | delivery | premium
    qty: Decimal
    price: Decimal | None = None  # settlement / delivery price


@dataclass
class DerivBook:
    """One derivative account: its fills and ledger lines, and the venue's positions replies."""

    acct: Account
    fills: list[DerivFill] = field(default_factory=list)
    cash: list[DerivCash] = field(default_factory=list)
    deliveries: list[tuple[datetime, Spec, Decimal]] = field(default_factory=list)  # (ts, spec, price)
    # What the venue's positions reply differs by from the ledger (planted), per date and symbol.
    venue_extra: dict[tuple[date, str], Decimal] = field(default_factory=dict)

    def add_cash(self, line: DerivCash) -> None:
        self.cash.append(line)
        self.acct.book(line.ts, [(line.spec.settle, line.qty)])


@dataclass
class Walked:
    """An instrument's state after a leg (the model's average entry walk)."""

    qty: Decimal = Decimal(0)
    entry: Decimal | None = None
    realized: Decimal = Decimal(0)  # of this leg, settle asset


def walk_entry(legs: list[tuple[Decimal, Decimal]], spec: Spec) -> list[Walked]:
    """The state after each (signed qty, price) leg, from flat (derivatives.md: Booking)."""
    out, qty, entry = [], Decimal(0), None
    size = F(spec.size)
    for q, p in legs:
        after = qty + q
        pnl = Decimal(0)
        if qty == 0 or (qty > 0) == (q > 0):
            if qty == 0:
                entry = p
            elif spec.harmonic:  # |after| / (|b|/entry + |q|/price)
                entry = round18(F(abs(after)) / (F(abs(qty)) / F(entry) + F(abs(q)) / F(p)))
            else:
                entry = round18((F(abs(qty)) * F(entry) + F(abs(q)) * F(p)) / F(abs(after)))
        else:
            closed = F(min(abs(q), abs(qty)))
            sign = 1 if qty > 0 else -1
            if spec.harmonic:
                pnl = round18(sign * closed * size * (1 / F(entry) - 1 / F(p)))
            else:
                pnl = round18(sign * closed * size * (F(p) - F(entry)))
            if after == 0:
                entry = None
            elif (after > 0) != (qty > 0):
                entry = p
        qty = after
        out.append(Walked(qty, entry, pnl))
    return out


def end_of(day: date) -> datetime:
    return at(day + timedelta(days=1), 0, 0, 0)


def instrument_legs(book: DerivBook, spec: Spec) -> list[tuple[datetime, Decimal, Decimal, str]]:
    """(ts, qty, price, what) of an instrument in time order: fills, then the delivery close."""
    legs = [(f.ts, f.qty, f.price, "fill") for f in book.fills if f.spec == spec]
    for ts, s, price in book.deliveries:
        if s == spec:
            held = sum((q for t, q, _, _ in legs if t <= ts), Decimal(0))
            legs.append((ts, -held, price, "delivery"))
    return sorted(legs, key=lambda leg: leg[0])


def state_at(book: DerivBook, spec: Spec, end: datetime) -> Walked:
    legs = [leg for leg in instrument_legs(book, spec) if leg[0] < end]
    walked = walk_entry([(q, p) for _, q, p, _ in legs], spec)
    return walked[-1] if walked else Walked()


def reference_price(book: DerivBook, spec: Spec, end: datetime, entry: Decimal | None) -> Decimal | None:
    """Deribit futures: PnL runs from the last settlement price (no fill follows one here)."""
    settled = [c for c in book.cash if c.spec == spec and c.kind == "settlement" and c.ts < end]
    if settled and spec.type != "option":
        last = max(settled, key=lambda c: c.ts)
        if any(f.spec == spec and last.ts < f.ts < end for f in book.fills):
            raise ValueError("the sample's model does not re-average a session after a settlement")
        return last.price
    return entry


def unrealized(spec: Spec, qty: Decimal, reference: Decimal, mark: Decimal) -> Decimal:
    size = F(spec.size)
    if spec.type == "option":
        return round18(F(qty) * size * F(mark) - F(qty) * size * F(reference))
    if spec.harmonic:
        return round18(F(qty) * size * (1 / F(reference) - 1 / F(mark)))
    return round18(F(qty) * size * (F(mark) - F(reference)))


def delta_of(spec: Spec, qty: Decimal, mark: Decimal, snapshot_delta: Decimal | None) -> Decimal | None:
    if qty == 0:
        return Decimal(0)
    if spec.type == "option":
        return snapshot_delta
    if spec.harmonic:
        return round18(F(qty) * F(spec.size) / F(mark))
    return round18(F(qty) * F(spec.size))


def usd18(value: Decimal | None, mark: Decimal) -> Decimal | None:
    return None if value is None else round18(F(value) * F(mark))


def round8(value: Fraction) -> Decimal:
    """What Deribit states in BTC: 8 places (half-even)."""
    return Decimal(round(value * 10**8)).scaleb(-8)  # round() of a Fraction is half-even


# Instrument marks (each in its quote; options: the premium in the settle coin), typed once.
INSTRUMENT_MARKS: dict[date, dict[str, Decimal]] = {
    d: {s: Decimal(p) for s, p in prices.items()}
    for d, prices in {
        date(2024, 3, 5): {"BTC/USDT:USDT": "66300.0", "BTC/USDT:USDT-240329": "67600.0",
                           "BTC/USD:BTC-240306-64000-C": "0.0335"},
        date(2024, 3, 6): {"BTC/USDT:USDT": "66980.0", "BTC/USDT:USDT-240628": "69850.0",
                           "BTC/USDT:USDT-240329": "68150.0", "BTC/USD:BTC-240329": "67500.00"},
        date(2024, 3, 7): {"BTC/USDT:USDT": "67060.0", "BTC/USDT:USDT-240628": "70000.0",
                           "BTC/USDT:USDT-240329": "68300.0", "BTC/USD:BTC-240329": "67900.00"},
    }.items()
}  # fmt: skip
# The perpetuals' mark at each 8-hourly funding stamp, and the rate (0.01% a period: longs pay).
FUNDING_MARKS = {
    at(date(2024, 3, 5), 8, 0, 0): Decimal("66050"), at(date(2024, 3, 5), 16, 0, 0): Decimal("66480"),
    at(date(2024, 3, 6), 0, 0, 0): Decimal("66200"), at(date(2024, 3, 6), 8, 0, 0): Decimal("66700"),
    at(date(2024, 3, 6), 16, 0, 0): Decimal("66900"), at(date(2024, 3, 7), 0, 0, 0): Decimal("66950"),
    at(date(2024, 3, 7), 8, 0, 0): Decimal("67100"), at(date(2024, 3, 7), 16, 0, 0): Decimal("67090"),
}  # fmt: skip
FUNDING_RATE = Decimal("0.0001")


def funding_lines(book: DerivBook, spec: Spec) -> list[DerivCash]:
    """Funding of a perpetual at each stamp it is open across: -qty·size·mark·rate (+ received)."""
    lines = []
    for ts, mark in sorted(FUNDING_MARKS.items()):
        held = sum((f.qty for f in book.fills if f.spec == spec and f.ts < ts), Decimal(0))
        if held:
            lines.append(DerivCash(ts, spec, "funding", -held * spec.size * mark * FUNDING_RATE))
    return lines


def fee_of(notional: Decimal, maker: bool, places: int) -> Decimal:
    """Taker 0.05%, maker 0.02% of the notional; refuses a fee the venue would round."""
    fee = notional * (Decimal("0.0002") if maker else Decimal("0.0005"))
    if quantize(fee, places) != fee:
        raise ValueError(f"fee {fee} needs more than {places} places")
    return fee


def derivative_books(landing: Landing) -> list[DerivBook]:
    """The three derivative accounts, their events, and their files."""
    books = [write_binance_futures(landing), write_okx_trading(landing), write_deribit(landing)]
    specs = sorted({f.spec for b in books for f in b.fills}, key=lambda s: (s.venue, s.symbol))
    landing.add(f"instruments/{OPENING}.csv", csv_text([list(SPECS_HEADER), *(s.csv_row() for s in specs)]), "")
    return books


SPECS_HEADER = ("venue", "symbol", "type", "settle", "contract_size", "inverse", "expiry", "strike", "option_type")


# -- Binance USDⓈ-M: trades + Futures Transaction History (the ledger: realized PnL, fees, funding)

BINANCE_FUTURES_TRADES = ["Uid", "Time", "Symbol", "Side", "Price", "Quantity", "Amount", "Fee", "Realized Profit",
                          "Buyer", "Maker", "Trade ID", "Order ID"]  # fmt: skip
BINANCE_FUTURES_TX = ["Time", "Type", "Amount", "Asset", "Symbol", "Transaction ID"]


def write_binance_futures(landing: Landing) -> DerivBook:
    book = DerivBook(landing.open("binance", "futures", {"USDT": "100000"}))
    perp = Spec("binance", "BTC/USDT:USDT", "BTCUSDT", "swap", "USDT", Decimal(1), False)
    dated = Spec("binance", "BTC/USDT:USDT-240628", "BTCUSDT_240628", "future", "USDT", Decimal(1), False, date(2024, 6, 28))
    d5, d6, d7 = BUSINESS_DATES
    typed = [  # (ts, spec, signed qty, price, maker)
        (at(d5, 2, 10, 0), perp, "0.500", "66000.0", False),
        (at(d5, 9, 30, 0), perp, "0.300", "66400.0", True),
        (at(d5, 15, 45, 0), perp, "-0.200", "66500.0", False),
        (at(d6, 3, 0, 0), dated, "-0.200", "69800.0", False),
        (at(d6, 11, 20, 0), perp, "-1.000", "67000.0", False),  # a flip: long 0.6 to short 0.4
        (at(d7, 10, 0, 0), dated, "-0.100", "70100.0", True),
        (at(d7, 13, 5, 0), perp, "0.150", "67200.0", True),
    ]
    trade_rows, tx_rows = [], []
    realized = {}
    for i, (ts, spec, qty, price, maker) in enumerate(typed):
        qty, price = Decimal(qty), Decimal(price)
        notional = exact_product(abs(qty), price, 8)
        fee = fee_of(notional, maker, 8)
        fill = DerivFill(ts, spec, qty, price, fee, str(4100000001 + i))
        book.fills.append(fill)
    for spec in (perp, dated):
        legs = [f for f in book.fills if f.spec == spec]
        for fill, state in zip(legs, walk_entry([(f.qty, f.price) for f in legs], spec)):
            realized[fill.trade_id] = state.realized
    for i, fill in enumerate(book.fills):
        pnl = realized[fill.trade_id]
        if quantize(pnl, 8) != pnl:
            raise ValueError(f"Binance states realized PnL to 8 places: {pnl}")
        maker = typed[i][4]
        trade_rows.append([
            "31415926", (fill.ts + UTC8).strftime("%y-%m-%d %H:%M:%S"), fill.spec.venue_symbol, "BUY" if fill.qty > 0 else "SELL",
            f"{fill.price:.1f}", fixed(abs(fill.qty), 3), f"{abs(fill.qty) * fill.price:.8f}", f"{fill.fee:.8f} USDT",
            f"{pnl:.8f}", "true" if fill.qty > 0 else "false", "true" if maker else "false", fill.trade_id, str(8300000001 + i),
        ])  # fmt: skip
        book.add_cash(DerivCash(fill.ts, fill.spec, "fee", -fill.fee))
        if pnl:
            book.add_cash(DerivCash(fill.ts, fill.spec, "realized_pnl", pnl))
    for line in funding_lines(book, perp):
        book.add_cash(line)
    kinds = {"fee": "COMMISSION", "realized_pnl": "REALIZED_PNL", "funding": "FUNDING_FEE"}
    for n, line in enumerate(sorted(book.cash, key=lambda c: (c.ts, c.kind != "realized_pnl"))):
        if quantize(line.qty, 8) != line.qty:
            raise ValueError(f"Binance states amounts to 8 places: {line.qty}")
        tx_rows.append([(line.ts + UTC8).strftime("%y-%m-%d %H:%M:%S"), kinds[line.kind], plain(line.qty), "USDT",
                        line.spec.venue_symbol, str(9700000001 + n)])  # fmt: skip
    trades = "binance/futures/trades/Binance-USDM-Futures-Trade-History-202403080800(UTC+8).csv"
    ledger = "binance/futures/trades/Binance-USDM-Futures-Transaction-History-202403080800(UTC+8).csv"
    landing.add(trades, csv_text([BINANCE_FUTURES_TRADES, *trade_rows[::-1]]), "binance.futures_trades")
    landing.add(ledger, csv_text([BINANCE_FUTURES_TX, *tx_rows[::-1]]), "binance.futures_transactions")
    # The venue's positionRisk of 2024-03-07 holds 0.010 BTC more of the perpetual than any
    # export shows (a position the venue moved in): the planted position break.
    book.venue_extra[d7, perp.symbol] = Decimal("0.010")
    for day in SNAPSHOT_DATES:
        landing.add(f"binance/futures/balances/{day}.csv", balance_csv(book.acct, day), "generic.balance_csv")
        rows = []
        for spec in (perp, dated):
            held = state_at(book, spec, end_of(day))
            qty = held.qty + book.venue_extra.get((day, spec.symbol), Decimal(0))
            mark = INSTRUMENT_MARKS.get(day, {}).get(spec.symbol)
            entry = held.entry or Decimal(0)
            upl = quantize(qty * (mark - entry), 8) if qty and mark else Decimal(0)
            rows.append({
                "entryPrice": plain(entry) if qty else "0.0", "breakEvenPrice": plain(entry) if qty else "0.0",
                "marginType": "cross", "isAutoAddMargin": "false", "isolatedMargin": "0.00000000", "leverage": "10",
                "liquidationPrice": "0", "markPrice": f"{mark:.8f}" if mark else "0.00000000", "maxNotionalValue": "20000000",
                "positionAmt": f"{qty:.3f}", "notional": f"{qty * mark:.8f}" if mark else "0",
                "isolatedWallet": "0", "symbol": spec.venue_symbol, "unRealizedProfit": f"{upl:.8f}", "positionSide": "BOTH",
                "updateTime": ms(end_of(day)) - 1000 if qty else 0,
            })  # fmt: skip
        landing.add(f"binance/futures/positions/{day}.json", json.dumps(rows, indent=2) + "\n", "")
        landing.positions[f"binance/futures/positions/{day}.json"] = "Binance /fapi/v2/positionRisk"
    landing.plant(
        "a funding payment at midnight",
        f"{ledger}: FUNDING_FEE at 24-03-06 08:00:00 (UTC+8 in the file name)",
        "is 2024-03-06 00:00:00 UTC: it belongs to 2024-03-06, the day that starts then (funding -3.972 USDT of BTC/USDT:USDT)",
    )
    landing.plant(
        "a flip through zero",
        f"{trades}: SELL 1.000 BTCUSDT at 67000.0 on 2024-03-06 11:20:00 UTC, long 0.6 at 66150",
        "realizes 0.6 x (67000 - 66150) = 510 USDT and restarts the entry at 67000.0 for the short 0.4 left",
    )
    landing.plant(
        "a position break",
        f"binance/futures/positions/{d7}.json: BTCUSDT positionAmt -0.240",
        f"the ledger holds -0.25 BTC/USDT:USDT: a position break on {d7} (subject position, diff +0.01, tolerance 0.001, "
        f"first_seen {d7}); the USDT wallet balance reconciles",
    )
    return book


# -- OKX trading account: bills of a linear swap and a dated future (Balance Change = PnL + Fee)


def write_okx_trading(landing: Landing) -> DerivBook:
    book = DerivBook(landing.open("okx", "trading", {"USDT": "50000"}))
    swap = Spec("okx", "BTC/USDT:USDT", "BTC-USDT-SWAP", "swap", "USDT", Decimal("0.01"), False)
    dated = Spec("okx", "BTC/USDT:USDT-240329", "BTC-USDT-240329", "future", "USDT", Decimal("0.01"), False, date(2024, 3, 29))
    d5, d6, d7 = BUSINESS_DATES
    typed = [  # (ts, spec, signed contracts, price, maker, order)
        (at(d5, 4, 0, 0), swap, "-30", "66200.0", False, 1),
        (at(d5, 12, 0, 0), dated, "50", "67000.0", True, 2),
        (at(d5, 20, 30, 0), swap, "10", "65900.0", True, 3),
        (at(d6, 9, 0, 0), dated, "-20", "68200.0", False, 4),
        (at(d6, 14, 0, 0), swap, "-20", "67100.0", False, 5),
        # One buy of 50 while short 40: OKX bills it as a close of 40 and an open of 10.
        (at(d7, 18, 0, 0), swap, "40", "67300.0", False, 6),
        (at(d7, 18, 0, 0), swap, "10", "67300.0", False, 6),
    ]
    for i, (ts, spec, qty, price, maker, _) in enumerate(typed):
        qty, price = Decimal(qty), Decimal(price)
        fee = fee_of(abs(qty) * spec.size * price, maker, 8)
        book.fills.append(DerivFill(ts, spec, qty, price, fee, str(i)))
    walked = {}
    for spec in (swap, dated):
        legs = [f for f in book.fills if f.spec == spec]
        for fill, state in zip(legs, walk_entry([(f.qty, f.price) for f in legs], spec)):
            walked[fill.trade_id] = state
    funding = funding_lines(book, swap)
    events = sorted([(f.ts, "fill", f) for f in book.fills] + [(c.ts, "funding", c) for c in funding], key=lambda e: e[0])
    rows, bill, balance = [], 720000000000000101, book.acct.opening["USDT"]
    for ts, what, event in events:
        local = (ts + UTC8).strftime("%Y-%m-%d %H:%M:%S")
        ttype = "Perpetual" if event.spec.type == "swap" else "Futures"
        if what == "funding":
            held = sum((f.qty for f in book.fills if f.spec == event.spec and f.ts < ts), Decimal(0))
            balance += event.qty
            book.add_cash(event)
            rows.append([str(bill), "", local, ttype, event.spec.venue_symbol, "Funding fee", "0", "cont", "0", plain(event.qty),
                         "0", "USDT", "0", plain(held), plain(event.qty), plain(balance), "USDT"])  # fmt: skip
        else:
            fill, state = event, walked[event.trade_id]
            before = state.qty - fill.qty
            opening = before == 0 or (before > 0) == (fill.qty > 0)
            side = "long" if (fill.qty > 0) == opening else "short"
            action = ("Open " if opening else "Close ") + side
            pnl, change = state.realized, state.realized - fill.fee
            if quantize(pnl, 8) != pnl:
                raise ValueError(f"OKX states PnL to 8 places here: {pnl}")
            balance += change
            book.add_cash(DerivCash(ts, fill.spec, "fee", -fill.fee))
            if pnl:
                book.add_cash(DerivCash(ts, fill.spec, "realized_pnl", pnl))
            order = typed[int(fill.trade_id)][5]
            rows.append([str(bill), str(700000000000000000 + order), local, ttype, fill.spec.venue_symbol, action,
                         plain(abs(fill.qty)), "cont", plain(fill.price), plain(pnl), plain(-fill.fee), "USDT",
                         plain(fill.qty), plain(state.qty), plain(change), plain(balance), "USDT"])  # fmt: skip
        bill += 1
    name = "okx/trading/trades/Trading-account-history-2024-03-08-derivatives.csv"
    preamble = "UID:1234567890,Account Type:Trading,Time Zone:UTC+8\n"
    landing.add(name, "\ufeff" + preamble + csv_text([OKX_TRADING, *rows[::-1]]), "okx.trading_account")
    for day in SNAPSHOT_DATES:
        landing.add(f"okx/trading/balances/{day}.csv", balance_csv(book.acct, day), "generic.balance_csv")
        data = []
        for spec in (swap, dated):
            held = state_at(book, spec, end_of(day))
            if held.qty:
                mark = INSTRUMENT_MARKS[day][spec.symbol]
                data.append({
                    "adl": "1", "availPos": plain(abs(held.qty)), "avgPx": plain(held.entry), "cTime": str(ms(at(OPENING, 12, 0, 0))),
                    "ccy": "USDT", "instId": spec.venue_symbol, "instType": "SWAP" if spec.type == "swap" else "FUTURES",
                    "lever": "10", "markPx": plain(mark), "mgnMode": "cross", "pos": plain(held.qty), "posCcy": "",
                    "posId": str(3000000000 + len(data)), "posSide": "net", "uTime": str(ms(end_of(day)) - 1000),
                    "upl": plain(held.qty * spec.size * (mark - held.entry)), "realizedPnl": "0", "fee": "0", "fundingFee": "0",
                })  # fmt: skip
        landing.add(f"okx/trading/positions/{day}.json", json.dumps({"code": "0", "data": data, "msg": ""}, indent=2) + "\n", "")
        landing.positions[f"okx/trading/positions/{day}.json"] = "OKX /api/v5/account/positions"
    landing.plant(
        "a flip billed as two rows",
        f"{name}: Close short 40 and Open long 10 BTC-USDT-SWAP at 67300 on 2024-03-07 18:00:00 UTC (one order)",
        "realizes 40 x 0.01 x (66650 - 67300) = -260 USDT; the long 10 left opens at 67300",
    )
    return book


# -- Deribit: a BTC transaction log (inverse dated future, a daily call with its delivery)

DERIBIT_LOG = ["ID", "UserSeq", "Date", "Instrument", "Type", "Side", "Amount", "Base Amount", "Position", "Price",
               "Mark Price", "Index Price", "Cash Flow", "Funding", "Fee Rate", "Fee Charged", "Fee Balance", "Change",
               "Balance", "Equity", "Trade ID", "Order ID", "Info", "Note"]  # fmt: skip


def write_deribit(landing: Landing) -> DerivBook:
    book = DerivBook(landing.open("deribit", "main", {"BTC": "2"}))
    future = Spec("deribit", "BTC/USD:BTC-240329", "BTC-29MAR24", "future", "BTC", Decimal(1), True, date(2024, 3, 29))
    call = Spec("deribit", "BTC/USD:BTC-240306-64000-C", "BTC-6MAR24-64000-C", "option", "BTC", Decimal(1), True,
                date(2024, 3, 6), Decimal(64000), "call")  # fmt: skip
    d5, d6, d7 = BUSINESS_DATES
    # Deribit rounds what it states to 8 places (BTC): fees on a futures notional in coin.
    fills = [
        DerivFill(at(d5, 11, 0, 0), call, Decimal("0.5"), Decimal("0.0330"), Decimal("0.00015"), "310000001"),
        DerivFill(at(d6, 10, 0, 0), future, Decimal("20000"), Decimal("67200.00"), round8(F(20000) / 67200 * F("0.0005")), "310000002"),
        DerivFill(at(d6, 15, 30, 0), future, Decimal("10000"), Decimal("67800.00"), round8(F(10000) / 67800 * F("0.0005")), "310000003"),
    ]  # fmt: skip
    book.fills += fills
    delivery_ts, delivery_index = at(d6, 8, 0, 0), Decimal("65536")
    delivery_price = (delivery_index - call.strike) / delivery_index  # the call's value in BTC a unit: 0.0234375
    book.deliveries.append((delivery_ts, call, delivery_price))
    settle_ts, settle_price = at(d7, 8, 0, 0), Decimal("67600.00")
    future_entry = state_at(book, future, settle_ts).entry
    session = round8(30000 * (1 / F(future_entry) - 1 / F(settle_price)))  # Deribit's 8 places

    rows, balance, seq = [], book.acct.opening["BTC"], 1000
    events = [(f.ts, "trade", f) for f in fills] + [(delivery_ts, "delivery", call), (settle_ts, "settlement", future)]
    for ts, kind, event in sorted(events, key=lambda e: e[0]):
        seq += 1
        when = ts.strftime("%Y-%m-%d %H:%M:%S")
        if kind == "trade":
            fill = event
            spec = fill.spec
            cash_flow = -fill.qty * fill.price if spec.type == "option" else Decimal(0)
            change = cash_flow - fill.fee
            balance += change
            book.add_cash(DerivCash(ts, spec, "fee", -fill.fee))
            if cash_flow:
                book.add_cash(DerivCash(ts, spec, "premium", cash_flow))
            position = state_at(book, spec, ts + timedelta(seconds=1)).qty
            base_amount = fill.qty if spec.type == "option" else quantize(fill.qty / fill.price, 8)
            mark = fill.price + (Decimal("0.0002") if spec.type == "option" else Decimal("5"))
            rows.append([str(88000000 + seq), str(seq), when, spec.venue_symbol, "trade", "open buy", plain(fill.qty),
                         plain(base_amount), plain(position), plain(fill.price), plain(mark), "66120.50" if ts.date() == d5 else "67010.25",
                         plain(cash_flow), "0", "0.0003" if spec.type == "option" else "0.0005", plain(fill.fee), "0", plain(change),
                         plain(balance), plain(balance), fill.trade_id, str(51000000 + seq), "", ""])  # fmt: skip
        elif kind == "delivery":
            cash_flow = Decimal("0.5") * delivery_price
            balance += cash_flow
            book.add_cash(DerivCash(ts, call, "delivery", cash_flow, delivery_price))
            rows.append([str(88000000 + seq), str(seq), when, call.venue_symbol, "delivery", "long", "0.5", "0.5", "0",
                         plain(delivery_price), plain(delivery_price), plain(delivery_index), plain(cash_flow), "0", "0", "0", "0",
                         plain(cash_flow), plain(balance), plain(balance), "", "", "", ""])  # fmt: skip
        else:
            balance += session
            book.add_cash(DerivCash(ts, future, "settlement", session, settle_price))
            rows.append([str(88000000 + seq), str(seq), when, future.venue_symbol, "settlement", "long", "", "", "30000",
                         plain(settle_price), plain(settle_price), "67540.10", plain(session), "0", "", "0", "0", plain(session),
                         plain(balance), plain(balance), "", "", "", ""])  # fmt: skip
    name = "deribit/main/trades/transaction_log-4242-BTC-2024-03-08.csv"
    landing.add(name, csv_text([DERIBIT_LOG, *rows]), "deribit.transaction_log")
    deltas = {(d5, call.symbol): Decimal("0.36")}  # the venue's option delta (0.72 a unit)
    settlement_prices = {d6: Decimal("67150.00"), d7: settle_price}
    for day in SNAPSHOT_DATES:
        landing.add(f"deribit/main/balances/{day}.csv", balance_csv(book.acct, day), "generic.balance_csv")
        result = []
        for spec in (future, call):
            held = state_at(book, spec, end_of(day))
            if not held.qty:
                continue
            mark = INSTRUMENT_MARKS[day][spec.symbol]
            if spec.type == "option":
                row = {"average_price": Num(plain(held.entry)), "delta": Num(plain(deltas[day, spec.symbol])), "direction": "buy",
                       "floating_profit_loss": Num(plain(held.qty * (mark - held.entry))), "gamma": Num("0.00004"),
                       "index_price": Num("66100.0"), "instrument_name": spec.venue_symbol, "kind": "option",
                       "mark_price": Num(plain(mark)), "settlement_price": Num("0.0331"), "size": Num(plain(held.qty)),
                       "size_currency": Num(plain(held.qty)), "theta": Num("-61.2"), "vega": Num("3.1")}  # fmt: skip
            else:
                stated_entry = quantize(held.entry, 2)
                row = {"average_price": Num(plain(stated_entry)), "delta": Num(plain(quantize(held.qty / mark, 9))),
                       "direction": "buy", "floating_profit_loss": Num(plain(quantize(held.qty * (1 / settlement_prices[day] - 1 / mark), 9))),
                       "instrument_name": spec.venue_symbol, "kind": "future", "mark_price": Num(plain(mark)),
                       "settlement_price": Num(plain(settlement_prices[day])), "size": Num(plain(held.qty)),
                       "size_currency": Num(plain(quantize(held.qty / mark, 9)))}  # fmt: skip
            result.append(row)
        reply = {"jsonrpc": "2.0", "id": 2236, "result": result, "usIn": Num(str(ms(end_of(day)) * 1000 - 5000)),
                 "usOut": Num(str(ms(end_of(day)) * 1000 - 4998)), "usDiff": Num("2"), "testnet": False}  # fmt: skip
        landing.add(f"deribit/main/positions/{day}.json", to_json(reply) + "\n", "")
        landing.positions[f"deribit/main/positions/{day}.json"] = "Deribit private/get_positions"
    landing.plant(
        "an inverse future, averaged on 1/price",
        f"{name}: open buy 20000 USD BTC-29MAR24 at 67200 and 10000 at 67800 on 2024-03-06",
        f"the average entry is the harmonic mean 30000 / (20000/67200 + 10000/67800) = {plain(future_entry)} "
        "(18 places, half-even); the contract size is 1 USD (instruments/2024-03-04.csv)",
    )
    landing.plant(
        "one Deribit settlement",
        f"{name}: settlement of BTC-29MAR24 at 67600 on 2024-03-07 08:00:00",
        f"books {plain(session)} BTC; from then the unrealized PnL runs from 67600, not from the average entry",
    )
    landing.plant(
        "an option's expiry with its delivery row",
        f"{name}: BTC-6MAR24-64000-C bought 0.5 at 0.0330 BTC (premium -0.0165, fee 0.00015), delivered 2024-03-06 08:00:00 at 65536",
        "closes at (65536 - 64000) / 65536 = 0.0234375 BTC a unit: delivery +0.01171875 BTC, a realized "
        "0.5 x (0.0234375 - 0.0330) = -0.00478125 BTC over its life; no expiry_without_delivery break",
    )
    return book


def derivative_expectations(books: list[DerivBook]) -> dict:
    """Per business date: the utl.derivative_positions rows, the position breaks, and the
    derivative cash by (venue, account, instrument, kind)."""
    rows, breaks, cash = {}, {}, {}
    run_start: dict[tuple[str, str, str], date] = {}
    for day in BUSINESS_DATES:
        end, start = end_of(day), at(day, 0, 0, 0)
        day_rows, day_breaks, day_cash = [], [], []
        for book in books:
            acct = book.acct
            specs = sorted({f.spec for f in book.fills}, key=lambda s: s.symbol)
            for spec in specs:
                flows = defaultdict(Decimal)
                for line in book.cash:
                    if line.spec == spec and start <= line.ts < end:
                        flows[line.kind] += line.qty
                for kind, qty in sorted(flows.items()):
                    day_cash.append({"venue": acct.venue, "account": acct.account, "instrument": spec.symbol, "kind": kind,
                                     "asset": spec.settle, "qty": plain(qty)})  # fmt: skip
                held = state_at(book, spec, end)
                venue_qty = held.qty + book.venue_extra.get((day, spec.symbol), Decimal(0))
                tolerance = TOLERANCE_POSITIONS.get(spec.symbol, Decimal(0))
                key = (acct.key, spec.symbol, "")
                if abs(venue_qty - held.qty) > tolerance:
                    first = run_start.setdefault(key, day)
                    day_breaks.append({
                        "business_date": str(day), "venue": acct.venue, "account": acct.account, "asset": spec.symbol,
                        "ledger_qty": plain(held.qty), "venue_qty": plain(venue_qty), "diff": plain(venue_qty - held.qty),
                        "tolerance": plain(tolerance), "first_seen": str(first), "subject": "position",
                    })  # fmt: skip
                else:
                    run_start.pop(key, None)
                if not held.qty and not venue_qty:
                    continue
                mark = INSTRUMENT_MARKS[day][spec.symbol]
                reference = reference_price(book, spec, end, held.entry)
                upl = unrealized(spec, held.qty, reference, mark) if held.qty else None
                snapshot_delta = {(BUSINESS_DATES[0], "BTC/USD:BTC-240306-64000-C"): Decimal("0.36")}.get((day, spec.symbol))
                delta = delta_of(spec, held.qty, mark, snapshot_delta)
                stated_entry = quantize(held.entry, 2) if acct.venue == "deribit" and spec.type != "option" else held.entry
                day_rows.append({
                    "business_date": str(day), "venue": acct.venue, "account": acct.account, "instrument": spec.symbol,
                    "type": spec.type, "settle_asset": spec.settle, "qty": plain(held.qty), "venue_qty": plain(venue_qty),
                    "contract_size": plain(spec.size), "entry_price": plain(held.entry) if held.qty else None,
                    "venue_entry_price": plain(stated_entry) if venue_qty else None,
                    "reference_price": plain(reference) if held.qty else None, "mark": plain(mark),
                    "unrealized_pnl": plain(upl) if upl is not None else None,
                    "unrealized_pnl_usd": plain(usd18(upl, usd(spec.settle, day))) if upl is not None else None,
                    "realized_pnl": plain(flows["realized_pnl"] + flows["settlement"] + flows["delivery"]),
                    "funding": plain(flows["funding"]), "fees": plain(-flows["fee"]),
                    "delta": plain(delta) if delta is not None else None,
                    "delta_usd": plain(usd18(delta, usd(spec.base, day))) if delta is not None else None,
                })  # fmt: skip
        rows[str(day)], breaks[str(day)], cash[str(day)] = day_rows, day_breaks, day_cash
    return {"derivative_positions": rows, "position_breaks": breaks, "derivative_cash": cash}


# ---------------------------------------------------------------- expectations


def breaks_and_positions(landing: Landing) -> tuple[dict, dict]:
    breaks: dict[str, list] = {}
    positions: dict[str, list] = {}
    run_start: dict[tuple[str, str], date] = {}
    for day in BUSINESS_DATES:
        day_breaks, day_positions = [], []
        for key, acct in landing.accounts.items():
            ledger, venue = acct.ledger(day), acct.venue_balance(day)
            for asset in sorted(set(ledger) | set(venue)):
                lq, vq = ledger.get(asset, Decimal(0)), venue.get(asset, Decimal(0))
                if lq < 0 or vq < 0:
                    raise ValueError(f"{key} {asset} goes negative on {day}")
                if lq or vq:
                    mark = usd(asset, day)
                    day_positions.append({"venue": acct.venue, "account": acct.account, "asset": asset, "qty": plain(lq),
                                          "venue_qty": plain(vq), "mark": plain(mark), "market_value": plain(lq * mark)})  # fmt: skip
                tolerance = TOLERANCE.get(asset, Decimal(0))
                if abs(vq - lq) > tolerance:
                    first = run_start.setdefault((key, asset), day)
                    day_breaks.append({
                        "business_date": str(day), "venue": acct.venue, "account": acct.account, "asset": asset,
                        "ledger_qty": plain(lq), "venue_qty": plain(vq), "diff": plain(vq - lq),
                        "tolerance": plain(tolerance), "first_seen": str(first), "subject": "balance",
                    })  # fmt: skip
                else:
                    run_start.pop((key, asset), None)
        breaks[str(day)], positions[str(day)] = day_breaks, day_positions
    return breaks, positions


def build() -> tuple[Landing, dict]:
    landing = Landing()
    write_binance(landing)
    write_kraken(landing)
    write_okx(landing)
    write_coinbase(landing)
    write_ccxt(landing)
    books = derivative_books(landing)

    for day in SNAPSHOT_DATES:
        # Instrument rows (ccxt symbols) follow the assets: the mark in the instrument's quote.
        rows = [[a, str(p)] for a, p in MARKS[day].items()] + [[s, str(p)] for s, p in INSTRUMENT_MARKS.get(day, {}).items()]
        landing.add(f"marks/{day}.csv", csv_text([["asset", "price"], *rows]), "")
    tolerance = "\n".join(f'"{a}" = "{plain(t)}"' if "/" in a else f'{a} = "{plain(t)}"' for a, t in ALL_TOLERANCE.items())
    landing.add(
        "utl.toml",
        f'reporting_currency = "{REPORTING_CURRENCY}"\ncosting_method = "fifo"\n\n[tolerance]\n{tolerance}\n\n'
        '[report]\nto = ["middle-office@example.com"]\n',
        "",
    )
    breaks, positions = breaks_and_positions(landing)
    derivatives = derivative_expectations(books)
    expected = {
        "about": "Expected outcome of data_samples/landing (written by make_landing.py; do not edit).",
        "reporting_currency": REPORTING_CURRENCY,
        "opening_date": str(OPENING),
        "business_dates": [str(d) for d in BUSINESS_DATES],
        "tolerance": {a: plain(t) for a, t in ALL_TOLERANCE.items()},
        "files": {rel: {"format": fmt} for rel, fmt in sorted(landing.formats.items())},
        "quarantine": landing.quarantine,
        "opening": [
            {"venue": a.venue, "account": a.account, "asset": asset, "qty": plain(q)}
            for a in landing.accounts.values()
            for asset, q in sorted(a.opening.items())
        ],
        "positions": positions,
        # Every break a correct run writes to utl.breaks: settle-asset and spot balances
        # (subject "balance") and derivative positions (subject "position", asset = the symbol).
        "breaks": {day: rows + derivatives["position_breaks"][day] for day, rows in breaks.items()},
        "planted": landing.planted,
        "derivative_files": {
            "positions": dict(sorted(landing.positions.items())),
            "instruments": f"instruments/{OPENING}.csv",
        },
        "derivative_positions": derivatives["derivative_positions"],
        "derivative_cash": derivatives["derivative_cash"],
    }
    return landing, expected


# ---------------------------------------------------------------- README


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def readme(landing: Landing, expected: dict) -> str:
    accounts = defaultdict(list)
    for rel, fmt in sorted(landing.formats.items()):
        venue, account = rel.split("/")[:2]
        accounts[f"{venue}/{account}"].append((rel, fmt))
    account_rows = [
        [key, ", ".join(sorted({f for rel, f in fmts if "/trades/" in rel})),
         ", ".join(sorted({f for rel, f in fmts if "/balances/" in rel})),
         ", ".join(f"{a} {plain(q)}" for a, q in sorted(landing.accounts[key].opening.items()))]
        for key, fmts in accounts.items()
    ]  # fmt: skip
    tree = "\n".join(f"  {rel}" for rel in sorted(landing.files))
    planted = "\n".join(f"{i}. **{p['case']}**: {p['where']}.\n   Expect: {p['expect']}." for i, p in enumerate(landing.planted, 1))
    break_cols = ["business_date", "venue", "account", "asset", "ledger_qty", "venue_qty", "diff", "tolerance", "first_seen", "subject"]
    break_sections = []
    for day, rows in expected["breaks"].items():
        body = markdown_table(break_cols, [[r[c] for c in break_cols] for r in rows]) if rows else "(no breaks)"
        break_sections.append(f"**{day}**\n\n{body}")
    q = expected["quarantine"]
    quarantine = markdown_table(["file", "row", "column", "raw"], [[r["file"], str(r["row"]), r["column"], r["raw"]] for r in q])
    marks = markdown_table(["date", *MARKS[OPENING]], [[str(d), *(str(p) for p in MARKS[d].values())] for d in SNAPSHOT_DATES])
    return f"""# Sample data

Generated by `make_landing.py` (deterministic; do not edit by hand: change the script and run
`uv run python data_samples/make_landing.py`; `tests/test_data_samples.py` checks that the
committed files are its exact output).

- `landing/`: a landing folder as in `shared/contracts/eod.md` and `derivatives.md`:
  {len({a.venue for a in landing.accounts.values()})} venues, {len(landing.accounts)} accounts ({len(DERIVATIVE_ACCOUNTS)} of them derivative accounts), an
  opening snapshot on {OPENING} and three business days {", ".join(str(d) for d in BUSINESS_DATES)}.
- `landing_expected.json`: what a correct run must produce: per business date the breaks
  (`subject` balance or position) and the ledger positions (with the venue's total, mark and
  market value), the opening, the one quarantined row, the format of every file, the planted
  cases below, and for the derivatives the `utl.derivative_positions` rows
  (`derivative_positions`), the derivative cash by instrument and kind (`derivative_cash`) and
  the positions and specs files (`derivative_files`).
- `costing/`: the costing engine's sample trades (not part of the landing folder).

Every fill is generated once as exact decimals and written in its venue's own layout; the
venue balances are derived from the same bookkeeping (opening + every leg: base `+/-qty`,
quote `-/+quote_qty`, fee `-fee` in the fee's asset, plus a ledger format's own lines), so they
match the ledger exactly except where a planted case says otherwise.

## Layout

```
landing/
{tree}
```

`utl.toml`: reporting currency USD, FIFO, tolerance {", ".join(f"{a} {plain(t)}" for a, t in TOLERANCE.items())}
(other assets 0), report to middle-office@example.com.

Marks (USD per unit; USD itself needs none):

{marks}

## Accounts

{markdown_table(["account", "exports (format)", "balance snapshots (format)", f"opening {OPENING}"], account_rows)}

## Planted cases

{planted}

## Expected quarantine

Exactly one row; every other row of every file books.

{quarantine}

## Expected breaks

A break is a (date, venue, account, asset) whose `|venue_qty - ledger_qty|` exceeds the
asset's tolerance; `diff = venue_qty - ledger_qty`.

{(chr(10) * 2).join(break_sections)}

The ledger positions per date are in `landing_expected.json` (`positions`).

{derivatives_readme(expected)}"""


DERIVATIVE_ACCOUNTS = ("binance/futures", "okx/trading", "deribit/main")


def derivatives_readme(expected: dict) -> str:
    specs = expected["derivative_files"]["instruments"]
    columns = ["venue", "account", "instrument", "qty", "venue_qty", "entry_price", "mark", "unrealized_pnl",
               "realized_pnl", "funding", "fees", "delta"]  # fmt: skip
    days = []
    for day, rows in expected["derivative_positions"].items():
        body = markdown_table(columns, [[r[c] if r[c] is not None else "" for c in columns] for r in rows])
        days.append(f"**{day}**\n\n{body}")
    cash_cols = ["venue", "account", "instrument", "kind", "asset", "qty"]
    cash = []
    for day, rows in expected["derivative_cash"].items():
        cash.append(f"**{day}**\n\n" + markdown_table(cash_cols, [[r[c] for c in cash_cols] for r in rows]))
    positions = "\n".join(f"- `{rel}`: {shape}" for rel, shape in expected["derivative_files"]["positions"].items())
    return f"""## Derivatives (issue 14)

Three derivative accounts, apart from the spot ones (no spot figure moves):

- `binance/futures`: USDⓈ-M Futures Trade History (`binance.futures_trades`) and Futures
  Transaction History (`binance.futures_transactions`: `REALIZED_PNL`, `COMMISSION`,
  `FUNDING_FEE`, the ledger of the account's USDT), a linear perpetual `BTC/USDT:USDT`
  (`BTCUSDT`) and a dated future `BTC/USDT:USDT-240628` (`BTCUSDT_240628`); quantities in BTC.
- `okx/trading`: Trading account history bills (`okx.trading_account`) of `BTC/USDT:USDT`
  (`BTC-USDT-SWAP`) and `BTC/USDT:USDT-240329` (`BTC-USDT-240329`), in contracts of 0.01 BTC;
  realized PnL, fees and funding in `Balance Change`.
- `deribit/main`: a BTC transaction log (`deribit.transaction_log`) of an inverse dated future
  `BTC/USD:BTC-240329` (`BTC-29MAR24`, USD, contract size 1) and a daily call
  `BTC/USD:BTC-240306-64000-C` bought 2024-03-05 and delivered 2024-03-06 08:00 UTC; one
  session settlement (2024-03-07 08:00 UTC).

Each account has a settle-asset balance (`generic.balance_csv`, the wallet balance without
unrealized PnL, equal to opening + every ledger line), and a positions reply in the venue's
own shape every snapshot date (the 2024-03-04 ones flat: they open the accounts flat):

{positions}

Specs the venue files lack: `{specs}` (the contract's CSV, one row per venue and
symbol; the latest file on or before a date is in force). Instrument marks (ccxt symbol in
`asset`, the price in the instrument's quote; the option's in BTC) are rows of
`marks/D.csv`. Funding is 0.01% of the position at the perpetual's mark every 8 hours (longs
pay), stamped 00:00, 08:00 and 16:00 UTC; the one at 2024-03-06 00:00:00 UTC belongs to
2024-03-06. `[tolerance]` holds `"BTC/USDT:USDT" = "0.001"`.

The expected rows come from the generator's own exact model (see `make_landing.py`,
"derivatives"): average entry on the price (linear, option premium) or on 1/price (inverse,
harmonic), rounded half-even to 18 places after each re-averaging, a flip restarting it;
realized PnL, settlement and delivery as the ledgers state them; unrealized PnL and inverse
delta as exact rationals rounded half-even to 18 places, from the last settlement price for
the Deribit future once settled; options `qty·size·mark − qty·size·entry` with the venue's
delta. `realized_pnl` is the day's realized PnL + settlement + delivery of the instrument,
`funding` signed (+ received), `fees` positive when charged; premium stays apart (in
`derivative_cash`, kind `premium`). A row per instrument open at the day's end in the ledger
or the snapshot.

`utl.derivative_positions` (selected columns):

{(chr(10) * 2).join(days)}

Derivative cash by instrument and kind (settle asset, + in, − out; these lines are also the
settle asset's movements):

{(chr(10) * 2).join(cash)}
"""


def write(out: Path) -> None:
    landing, expected = build()
    root = out / "landing"
    if root.exists():
        shutil.rmtree(root)
    for rel, data in sorted(landing.files.items()):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (out / "landing_expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(landing, expected), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write landing/, landing_expected.json, README.md into")
    write(parser.parse_args().out)


if __name__ == "__main__":
    main()
