"""Kraken spot: the Ledgers and Trades CSV exports and the Balance / BalanceEx API replies.

Layouts and their versions are in ``shared/venues/kraken.md``. Asset codes stay as Kraken
writes them (``XXBT``, ``ZEUR``, ``DOT.S``); the central alias table maps them later.

Ledgers are the account's balance changes. Kraken reports a row's wallet change as
``amount - fee``, so a row gives two movements: the amount (kind from ``type``) and the fee
(``-fee``, entry id suffixed ``/fee``); a zero part gives no movement, and a row with both
zero changed nothing and is refused. Kraken writes failed transactions with an empty
``txid``; they changed no balance, so they are refused with that reason, not booked.

Layouts read beyond kraken.md (issue 17):

- The 2017 Ledgers, ``txid,refid,time,type,aclass,asset,amount,fee,balance``: no ``subtype``,
  unquoted (BittyTax ``kraken.py`` reads it). There a row without ``txid`` is an ordinary,
  final deposit or withdrawal (Kraken then gave ledger ids only later): it is booked, keyed by
  its content and occurrence number. Only in the layouts with ``subtype`` does an empty
  ``txid`` mean pending or failed.
- Exports where the user picked a subset of columns (Kraken's export dialog allows it): a
  header is claimed when the columns a reader needs are there (:data:`LEDGER_COLUMNS`:
  ``txid,time,type,asset,amount,fee``; :data:`TRADES_COLUMNS`: ``txid,pair,time,type,price,vol``);
  other columns are ignored (:class:`utl.venues.base.Columns`). What is left out reads as
  empty: no ``refid`` links no rows, no ``cost`` takes ``vol × price``, no Trades ``fee`` books
  no fee (the Ledgers have it). The 2017 layout is told by its exact header, so a subset of it
  reads as the later layouts do (an empty ``txid`` is then a not-final entry).
"""

from __future__ import annotations

import json

from collections.abc import Mapping

import polars as pl

from utl.decimals import DECIMAL, product_overflows
from utl.schemas import BALANCES, FILLS, MOVEMENTS
from utl.venues.base import (
    with_numbers,
    Layout,
    BOM,
    Columns,
    Check,
    Format,
    Parsed,
    Source,
    header_cells,
    interleave,
    normal,
    rename_columns,
    out_of_years,
    per_distinct,
    read_csv_rows,
    require_columns,
    shaped_time,
    split_refused,
    text_or_null,
    to_schema,
    with_synthetic_id,
)

LEDGER_HEADERS: tuple[tuple[str, ...], ...] = (
    ("txid", "refid", "time", "type", "subtype", "aclass", "subclass", "asset", "wallet", "amount", "fee", "balance"),
    ("txid", "refid", "time", "type", "subtype", "aclass", "asset", "wallet", "amount", "fee", "balance"),
    ("txid", "refid", "time", "type", "subtype", "aclass", "asset", "amount", "fee", "balance"),
)
_TRADES_PREVIOUS = (
    "txid", "ordertxid", "pair", "time", "type", "ordertype", "price", "cost", "fee", "vol", "margin", "misc", "ledgers",
)
TRADES_HEADERS: tuple[tuple[str, ...], ...] = (
    (
        "txid", "ordertxid", "pair", "aclass", "subclass", "time", "type", "ordertype", "price", "cost", "fee", "vol",
        "margin", "misc", "ledgers", "posttxid", "posstatuscode", "cprice", "ccost", "cfee", "cvol", "cmargin", "net",
        "trades",
    ),
    _TRADES_PREVIOUS + ("postxid", "posstatus", "cprice", "ccost", "cfee", "cvol", "cmargin", "net", "trades"),
    _TRADES_PREVIOUS,
)

# Places Kraken keeps per (canonical) asset in its ledgers and Balance replies (kraken.md's
# examples: ZEUR "399.0400", USDT "0.00000000", XXBT "0.0100000000"); fiat 4, crypto 10.
# The trades export carries more (cost and fee to 5-8 places): utl.precision turns these
# into the default recon tolerance when [precision] tolerance = "half_unit".
PLACES: dict[str, int] = {
    **dict.fromkeys(("USD", "EUR", "GBP", "CAD", "AUD", "CHF"), 4),
    **dict.fromkeys(("USDT", "USDC"), 8),
    "*": 10,
}

LEDGER_2017 = ("txid", "refid", "time", "type", "aclass", "asset", "amount", "fee", "balance")
LEDGER_REQUIRED = ("txid", "time", "type", "asset", "amount", "fee")
LEDGER_KNOWN = tuple(dict.fromkeys(c for h in LEDGER_HEADERS for c in h)) + ("amountusd",)
TRADES_REQUIRED = ("txid", "pair", "time", "type", "price", "vol")
TRADES_KNOWN = tuple(dict.fromkeys(c for h in TRADES_HEADERS for c in h))
# How a file is claimed (utl.venues.base.Columns): the required columns; the others of the
# layouts read when present (the user may leave them out of an export).
LEDGER_COLUMNS = Columns(required=LEDGER_REQUIRED, optional=tuple(c for c in LEDGER_KNOWN if c not in LEDGER_REQUIRED))
TRADES_COLUMNS = Columns(required=TRADES_REQUIRED, optional=tuple(c for c in TRADES_KNOWN if c not in TRADES_REQUIRED))

# Ledger `type` -> movement kind. `settled` pays back a margin loan in another asset, so it
# is one side of an exchange; `margin` rows carry a closed margin position's result.
_LEDGER_KINDS = {
    "trade": "trade",
    "spend": "trade",
    "receive": "trade",
    "settled": "trade",
    "sale": "trade",
    "conversion": "trade",
    "deposit": "deposit",
    "withdrawal": "withdrawal",
    "transfer": "transfer",
    "margin": "realized_pnl",
    "rollover": "interest",
    "staking": "interest",
    "dividend": "interest",
    "earn": "transfer",
}
# A subtype says more than its type: earn/reward is income, a delisting conversion or dust
# sweep is an exchange, an airdrop is neither income nor a trade.
_SUBTYPE_KINDS = {
    "reward": "interest",
    "delistingconversion": "trade",
    "dustsweeping": "trade",
    "airdrop": "other",
}

# Quote codes of glued pairs, longest first so that USDT wins over USD. Kraken's legacy
# 4-letter quotes (ZEUR, XXBT...) follow only a 4-letter base (XXBTZEUR, USDTZUSD): without
# that rule XTZEUR would split as XT/ZEUR and SNXXBT as SN/XXBT.
_LEGACY_QUOTES = ("XETH", "XXBT", "ZAUD", "ZCAD", "ZEUR", "ZGBP", "ZJPY", "ZUSD")
_QUOTES = ("PYUSD", "USDC", "USDT", "AED", "AUD", "CAD", "CHF", "DAI", "DOT", "ETH", "EUR", "GBP", "JPY", "USD", "XBT")
# Pairs the rule above still splits wrongly: pair -> (base, quote).
PAIR_OVERRIDES: dict[str, tuple[str, str]] = {}

_TIME_SHAPE = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$"


def _columns(rows: pl.DataFrame, known: tuple[str, ...], required: tuple[str, ...], source: Source) -> pl.DataFrame:
    """Columns named as Kraken spells them (case aside); those the user left out, empty."""
    rows = rename_columns(rows, known)
    require_columns(rows, list(required), source.rel)
    return rows.with_columns(pl.lit("").alias(c) for c in known if c not in rows.columns)


# ---------------------------------------------------------------- shared row helpers


def _blank(column: str) -> pl.Expr:
    return text_or_null(pl.col(column)).is_null()


def with_decimals(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Adds ``<column>__value`` (exact) and ``<column>__bad`` for number columns."""
    frame = with_numbers(frame, {f"{column}__value": column for column in columns})
    return frame.rename({f"{column}__value__bad": f"{column}__bad" for column in columns})


def _number_checks(column: str, *, required: bool = True) -> list[Check]:
    """Refuse a number column's bad cells (parsed by :func:`with_decimals`) and, if required, its blanks."""
    reason = pl.format('"{}": "{}" is not a decimal', pl.lit(column), pl.col(column))
    checks = [Check(column, pl.col(f"{column}__bad"), reason)]
    if required:
        checks.append(Check(column, _blank(column), f'"{column}" is missing'))
    return checks


def _time(column: str) -> pl.Expr:
    """Kraken times are UTC ``YYYY-MM-DD HH:MM:SS`` with an optional fraction; null if not."""
    return shaped_time(pl.col(column), ((_TIME_SHAPE, "%Y-%m-%d %H:%M:%S%.f"),))


def _time_check(column: str) -> Check:
    """Refuse a time that did not parse (``__ts``) or lies outside 2000..2099."""
    ts = pl.col("__ts")
    return Check(
        column,
        ts.is_null() | out_of_years(ts),
        pl.format('"{}": "{}" is not a time YYYY-MM-DD HH:MM:SS in 2000..2099', pl.lit(column), pl.col(column)),
    )


def split_pair(pair: pl.Expr, overrides: Mapping[str, tuple[str, str]] | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(base, quote) Kraken codes of ``BTC/USD`` or a glued pair (``XXBTZEUR``); null if unknown."""
    s = pair.str.strip_chars()
    length = s.str.len_chars()
    bases, quotes = [], []
    for quote in sorted(_LEGACY_QUOTES + _QUOTES, key=lambda q: (-len(q), q)):
        fits = s.str.ends_with(quote) & (length > len(quote))
        if quote in _LEGACY_QUOTES:
            fits = fits & (length == len(quote) + 4)
        bases.append(pl.when(fits).then(s.str.slice(0, length - len(quote))))
        quotes.append(pl.when(fits).then(pl.lit(quote)))
    table = {**PAIR_OVERRIDES, **(overrides or {})}
    override_base = s.str.to_uppercase().replace_strict({k: v[0] for k, v in table.items()}, default=None, return_dtype=pl.String)
    override_quote = s.str.to_uppercase().replace_strict({k: v[1] for k, v in table.items()}, default=None, return_dtype=pl.String)
    slashed = s.str.contains("/")
    base = pl.when(slashed).then(s.str.extract(r"^([^/]+)/[^/]+$", 1)).otherwise(pl.coalesce(override_base, *bases))
    quote = pl.when(slashed).then(s.str.extract(r"^[^/]+/([^/]+)$", 1)).otherwise(pl.coalesce(override_quote, *quotes))
    return base, quote


# ---------------------------------------------------------------- ledgers


def read_ledgers(source: Source) -> Parsed:
    rows, refused = read_csv_rows(source)
    layout_2017 = tuple(normal(c) for c in rows.columns[1:] if c) == LEDGER_2017
    rows = _columns(rows, LEDGER_KNOWN, LEDGER_REQUIRED, source)
    if layout_2017:  # an empty txid is a final entry here: key it by its content
        rows = with_synthetic_id(rows, ["refid", "time", "type", "asset", "amount", "fee"], "__content_id")
        rows = rows.with_columns(txid=pl.when(_blank("txid")).then(pl.col("__content_id")).otherwise(pl.col("txid")))
    rows = with_decimals(rows, ["amount", "fee"]).with_columns(__ts=_time("time"))
    amount, fee = pl.col("amount__value"), pl.col("fee__value")
    zero = pl.lit(0).cast(DECIMAL)
    checks = [
        Check(
            "txid",
            _blank("txid"),
            "no ledger id (txid): Kraken writes failed transactions without one; no balance changed",
            raw=pl.concat_str(
                [pl.col(c).fill_null("") for c in ("refid", "time", "type", "asset", "amount", "fee")], separator=","
            ),
        ),
        _time_check("time"),
        Check("asset", _blank("asset"), '"asset" is missing'),
        *_number_checks("amount"),
        *_number_checks("fee"),
        Check(
            None,
            (amount == zero) & (fee == zero),
            "amount and fee are both zero: no balance changed",
            raw=pl.format("amount {}, fee {}", pl.col("amount"), pl.col("fee")),
        ),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)

    subtype = pl.col("subtype").fill_null("").str.strip_chars()
    ledger_type = pl.col("type").fill_null("").str.strip_chars()
    kind = pl.coalesce(
        subtype.replace_strict(_SUBTYPE_KINDS, default=None, return_dtype=pl.String),
        ledger_type.replace_strict(_LEDGER_KINDS, default="other", return_dtype=pl.String),
    )
    description = pl.when(subtype == "").then(ledger_type).otherwise(pl.concat_str([ledger_type, subtype], separator="/"))
    # Types, subtypes and assets take a handful of values: each is read once.
    passed = per_distinct(passed, ["type", "subtype", "asset"], __kind=kind, __description=description, __asset=pl.col("asset").str.strip_chars())
    lines = passed.select(
        "source_row",
        entry_id=pl.col("txid").str.strip_chars(),
        ref_id=text_or_null(pl.col("refid")),
        ts="__ts",
        kind="__kind",
        asset="__asset",
        amount=amount,
        fee=fee,
        description="__description",
    )
    # Both parts are in file order; interleave them so that a row's fee follows its amount.
    amounts = lines.filter(pl.col("amount") != zero).with_columns(qty=pl.col("amount"))
    fees = lines.filter(pl.col("fee") != zero).with_columns(entry_id=pl.col("entry_id") + "/fee", kind=pl.lit("fee"), qty=-pl.col("fee"))
    movements = to_schema(source, interleave([amounts, fees]), MOVEMENTS)
    return Parsed(movements, pl.concat([refused, quarantine]).sort("row", maintain_order=True))


# ---------------------------------------------------------------- trades


def read_trades(source: Source) -> Parsed:
    rows, refused = read_csv_rows(source)
    rows = _columns(rows, TRADES_KNOWN, TRADES_REQUIRED, source)
    base, quote = split_pair(pl.col("pair"), source.pairs)
    rows = with_decimals(rows, ["vol", "price", "cost", "fee"]).with_columns(__ts=_time("time"))
    # Few distinct pairs and types: each is read once.
    rows = per_distinct(rows, ["pair", "type"], __base=base, __quote=quote, __side=pl.col("type").str.strip_chars().str.to_lowercase())
    vol, price, cost, fee = (pl.col(f"{c}__value") for c in ("vol", "price", "cost", "fee"))
    # Without a cost, vol × price stands in: where it leaves Decimal(38, 18) the row is refused
    # (and never multiplied: Polars would fail the whole file).
    rows = rows.with_columns(__too_large=product_overflows(rows, vol, price))
    side = pl.col("__side")
    zero = pl.lit(0).cast(DECIMAL)
    checks = [
        Check("txid", _blank("txid"), '"txid" is missing'),
        _time_check("time"),
        Check(
            "pair",
            pl.col("__base").is_null() | pl.col("__quote").is_null(),
            pl.format('"pair": "{}" cannot be split into base and quote', pl.col("pair")),
        ),
        Check(
            "type",
            ~side.is_in(["buy", "sell"]).fill_null(False),
            pl.format('"type": "{}" is not buy or sell', pl.col("type")),
        ),
        *_number_checks("vol"),
        Check("vol", vol == zero, '"vol" is zero'),
        *_number_checks("price"),
        Check("price", price <= zero, '"price" is not positive'),
        *_number_checks("cost", required=False),
        Check(
            "vol",
            pl.col("__too_large") & cost.is_null() & ~pl.col("cost__bad"),
            'no "cost", and "vol" × "price" overflows 38 digits (20 before the point)',
            raw=pl.format("{} × {}", pl.col("vol"), pl.col("price")),
        ),
        *_number_checks("fee", required=False),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)
    fills = passed.select(
        venue=pl.lit(source.venue),
        account=pl.lit(source.account),
        trade_id=pl.col("txid").str.strip_chars(),
        order_id=pl.when(_blank("ordertxid")).then(None).otherwise(pl.col("ordertxid").str.strip_chars()),
        ts="__ts",
        symbol=pl.col("pair").str.strip_chars(),
        base="__base",
        quote="__quote",
        side=side,
        # Kraken writes vol unsigned; the side gives the sign.
        qty=pl.when(side == "sell").then(-vol.abs()).otherwise(vol.abs()),
        price=price,
        quote_qty=pl.coalesce(cost.abs(), pl.when(pl.col("__too_large")).then(zero).otherwise(vol.abs()) * price),
        fee=fee,
        # The Trades fee is stated in quote; a fee taken in base shows only in Ledgers.
        fee_asset=pl.when(fee.is_not_null()).then(pl.col("__quote")),
        liquidity=pl.lit(None, pl.String),
        source_file=pl.lit(source.rel),
        source_row="source_row",
    ).cast(FILLS)
    return Parsed(fills, pl.concat([refused, quarantine]).sort("row", maintain_order=True))


# ---------------------------------------------------------------- balance replies


def _reply_shape(head: str) -> str | None:
    """``"Balance"`` or ``"BalanceEx"`` when the head is Kraken's ``{"error": [...], "result": {...}}``.

    Reads only the top level, token by token, so that a reply longer than the head still
    tells its shape, and a ccxt balance (whose ``info`` may hold such a reply) does not match.
    """
    decoder = json.JSONDecoder()
    text, pos = head, 0
    seen: dict[str, str] = {}
    first_result_value = None

    def skip(p: int) -> int:
        while p < len(text) and text[p] in " \t\r\n":
            p += 1
        return p

    try:
        pos = skip(pos)
        if text[pos] != "{":
            return None
        pos = skip(pos + 1)
        while text[pos] != "}":
            key, pos = decoder.raw_decode(text, pos)
            pos = skip(pos)
            if not isinstance(key, str) or text[pos] != ":":
                return None
            pos = skip(pos + 1)
            seen[key] = text[pos]
            if key == "result" and text[pos] == "{":
                inner = skip(pos + 1)
                if text[inner] == "}":
                    first_result_value = ""
                else:
                    _, inner = decoder.raw_decode(text, inner)
                    inner = skip(inner)
                    first_result_value = text[skip(inner + 1)] if text[inner] == ":" else None
            _, pos = decoder.raw_decode(text, pos)
            pos = skip(pos)
            if text[pos] == ",":
                pos = skip(pos + 1)
    except (IndexError, ValueError):
        pass  # the head ends inside the reply: judge what was seen
    if not set(seen) <= {"error", "result"} or seen.get("error") != "[":
        return None
    if "result" not in seen:
        return "Balance" if "error" in seen else None  # an error-only reply: read() says why
    if seen["result"] != "{":
        return None
    return "BalanceEx" if first_result_value == "{" else "Balance"


def _load_reply(source: Source) -> dict:
    text = source.path.read_bytes().decode("utf-8").replace(BOM, "")
    # Numbers stay text: a balance must never pass through a float.
    reply = json.loads(text, parse_float=str, parse_int=str)
    if reply.get("error"):
        raise ValueError(f"{source.rel}: Kraken replied with errors: {'; '.join(map(str, reply['error']))}")
    if not isinstance(reply.get("result"), dict):
        raise ValueError(f'{source.rel}: Kraken reply has no "result" object')
    return reply["result"]


def _balances(source: Source, entries: list[tuple[str, object]]) -> Parsed:
    """One balance per ``(asset, value)`` entry, in reply order; a value that is not decimal text is refused."""
    rows = pl.DataFrame(
        {
            "asset": [asset for asset, _ in entries],
            "balance": [value if isinstance(value, str) else None for _, value in entries],
            "not_text": [None if isinstance(value, str) else json.dumps(value) for _, value in entries],
        },
        schema={"asset": pl.String, "balance": pl.String, "not_text": pl.String},
    ).with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))
    rows = with_decimals(rows, ["balance"])
    asset = pl.col("asset")
    checks = [
        Check("asset", _blank("asset"), "empty asset code", raw=pl.col("balance")),
        Check(
            "balance",
            pl.col("not_text").is_not_null(),
            pl.format("{}: the balance is not a decimal string", pl.col("asset")),
            raw=pl.col("not_text"),
        ),
        Check("balance", pl.col("balance__bad"), pl.format('{}: "{}" is not a decimal', asset, pl.col("balance"))),
        Check("balance", pl.col("not_text").is_null() & _blank("balance"), pl.format("{}: the balance is missing", asset)),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)
    frame = passed.select(
        venue=pl.lit(source.venue),
        account=pl.lit(source.account),
        asset="asset",
        total="balance__value",
        source_file=pl.lit(source.rel),
        source_row="source_row",
    ).cast(BALANCES)
    return Parsed(frame, quarantine)


def read_balance(source: Source) -> Parsed:
    return _balances(source, list(_load_reply(source).items()))


def read_balance_ex(source: Source) -> Parsed:
    # {"ZEUR": {"balance": "399.0400", "hold_trade": "0.0000"}}: `balance` is the total.
    return _balances(
        source,
        [
            (asset, value.get("balance", value) if isinstance(value, dict) else value)
            for asset, value in _load_reply(source).items()
        ],
    )


FORMATS: list[Format] = [
    Format("kraken.ledgers", "ledger", None, read_ledgers, columns=(LEDGER_COLUMNS,),
           layouts=(Layout("current", LEDGER_HEADERS[0]), Layout("wallet, no subclass", LEDGER_HEADERS[1]),
                    Layout("wallet, amountusd", LEDGER_HEADERS[1] + ("amountusd",)),
                    Layout("previous", LEDGER_HEADERS[2]), Layout("2017", LEDGER_2017))),
    Format("kraken.trades", "fills", None, read_trades, fee_asset_stated=False, columns=(TRADES_COLUMNS,),
           layouts=(Layout("current", TRADES_HEADERS[0]), Layout("intermediate", TRADES_HEADERS[1]),
                    Layout("previous", TRADES_HEADERS[2]))),
    Format("kraken.balance", "balances", lambda head: _reply_shape(head) == "Balance", read_balance),
    Format("kraken.balance_ex", "balances", lambda head: _reply_shape(head) == "BalanceEx", read_balance_ex),
]
