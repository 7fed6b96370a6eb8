"""ccxt unified structures stored by API pulls (ccxt.md): trades, ledger entries, balances.

Trades and ledger entries come as JSON lines, a balance as one JSON document. A file is
told apart by its keys, never its name, and may sit under any venue folder. Python ccxt
writes JSON numbers (floats); we read every number as its own text (``parse_float=str``)
so ``3.1e-05`` or ``650.0000000000001`` reach :func:`venue_decimal` exactly as written.
Each line stands alone (a truncated line is refused alone, the rest still books). A large
file is first read in one compiled pass over its bytes (:mod:`utl.venues.json_scan`, one
thread per CPU), which also reads numbers written as plain decimals from their digits; the
few lines that pass hands back (an escape, a line to refuse, fees to add up) go to msgspec
(:mod:`utl.venues.json_lines`) and then to ``json.loads`` as before, with the same columns
from each path; everything after parsing is vectorized. The scan's text columns are views
into the file's bytes: what a reader returns is copied out of them (:func:`owned`).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, localcontext
from typing import Any

import polars as pl

from utl.decimals import DECIMAL, product_overflows, sum_overflows, with_venue_decimals
from utl.errors import QUARANTINE_SCHEMA
from utl.schemas import BALANCES, FILLS, MOVEMENTS
from utl.venues.json_lines import text_columns
from utl.venues.json_scan import owned, scan_lines, warm_up
from utl.venues.base import BOM, Check, Format, Parsed, Source, interleave, out_of_years, split_refused, to_schema, top_level_keys, utc, with_synthetic_id

TRADE_KEYS = {"side", "amount", "symbol"}
LEDGER_KEYS = {"direction", "referenceId"}
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
# The compiled scan pays for itself on large pulls only: compiling its kernels takes ~33 s of
# CPU once per checkout and loading numba ~0.5 s per process (while the file is read), while
# msgspec reads a line in ~13 us. Smaller files (the sample landing, a day's pull of a quiet
# account) skip it.
SCAN_FROM_BYTES = 16 << 20
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


# ---------------------------------------------------------------- JSON as text


def loads(text: str) -> Any:
    """JSON with every number (and NaN/Infinity) kept as its text: never a float."""
    return json.loads(text, parse_float=str, parse_int=str, parse_constant=str)


def _text(value: Any) -> str | None:
    """A JSON value as the text a column holds (numbers are text already)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _first_line_keys(head: str) -> set[str]:
    for line in head.split("\n"):
        if line.strip():
            return set(top_level_keys(line)[0])
    return set()


def is_trades(head: str) -> bool:
    keys = _first_line_keys(head)
    return TRADE_KEYS <= keys and "direction" not in keys


def is_ledger(head: str) -> bool:
    return LEDGER_KEYS <= _first_line_keys(head)


def is_balance(head: str) -> bool:
    keys, closed = top_level_keys(head)
    if TRADE_KEYS & set(keys) or LEDGER_KEYS & set(keys):
        return False
    if "total" in keys and ("free" in keys or "used" in keys):
        return True
    # ccxt puts the venue's raw reply first; a large one (Binance lists every asset) fills the
    # whole head before `free`/`used`/`total` appear.
    return not closed and keys == ["info"]


def _text_of(source: Source) -> str:
    try:
        return source.path.read_bytes().decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as e:
        raise ValueError(f"{source.rel}: not UTF-8 text: {e}") from e


def _bytes_of(source: Source) -> bytes:
    """The file's UTF-8 bytes, BOM removed; a file that is not UTF-8 fails whole."""
    data = source.path.read_bytes()
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"{source.rel}: not UTF-8 text: {e}") from e
    return data.removeprefix(BOM.encode())


def _read_lines(source: Source, wanted: set[str], what: str, fields: list[str], numbers: list[str],
                ) -> tuple[pl.DataFrame, list[dict]]:
    """The records' text columns (see :func:`_columns`), and quarantine entries for lines refused.

    Three paths, each taking what the one before handed back: the compiled scan
    (:mod:`utl.venues.json_scan`), msgspec (:mod:`utl.venues.json_lines`), ``json.loads``. They
    give the same columns; ``raw`` (the line) is only needed, and only sure to be there,
    where ``id`` is null. The scan also reads ``numbers`` written as plain decimals
    (``<name>__value``, see :func:`_numbers`). Lines are split on "\n" only: JSON strings may hold other line
    separators (U+2028); a line is blank when ``str.strip`` leaves nothing.
    """
    if source.path.stat().st_size >= SCAN_FROM_BYTES:
        warm_up()  # numba loads while the file is read
    data = _bytes_of(source)
    if len(data) >= SCAN_FROM_BYTES:
        fast, back = scan_lines(data, fields, wanted, raw_when_null="id", decimals=numbers, count="timestamp")
        fast = fast.with_columns(fee_problem=pl.lit(None, pl.String), fees_raw=pl.lit(None, pl.String))
        if not back:
            return fast, []
        parts = [fast]
    else:
        back = [(number, line.rstrip("\r")) for number, line in enumerate(data.decode("utf-8").split("\n"), 1)]
        parts = []
    middle, left = text_columns([(n, line) for n, line in back if line.strip()], fields, wanted)
    records, refused = _json_lines(left, wanted, what)
    return pl.concat([*parts, middle, _columns(records, fields)], how="diagonal").sort("source_row"), refused


def _line_ids(frame: pl.DataFrame) -> pl.DataFrame:
    """``raw_id``: for rows without an ``id``, the line and its occurrence number among identical
    lines (:func:`with_synthetic_id`); null where the row has an id. Identical lines have the
    same id, so counting among the id-less rows alone counts every copy."""
    no_id = frame["id"].is_null()
    ids = pl.Series("raw_id", [None] * frame.height, dtype=pl.String)
    if no_id.any():
        rows = no_id.arg_true()
        ids = ids.scatter(rows, with_synthetic_id(frame.select("raw").gather(rows), ["raw"], "raw_id")["raw_id"])
    return frame.with_columns(ids)


def _json_lines(lines: list[tuple[int, str]], wanted: set[str], what: str) -> tuple[list[tuple[int, str, dict]], list[dict]]:
    """(line number, raw line, object) per record, and quarantine entries for lines refused."""
    records, refused = [], []
    for number, line in lines:
        try:
            record = loads(line)
        except ValueError as e:
            refused.append({"row": number, "column": None, "reason": f"invalid JSON: {e}", "raw": line})
            continue
        if not isinstance(record, dict) or not wanted <= record.keys():
            refused.append({"row": number, "column": None, "reason": f"not a ccxt {what}: needs keys {', '.join(sorted(wanted))}", "raw": line})
            continue
        records.append((number, line, record))
    return records, refused


def _refused_frame(refused: list[dict], file: str) -> pl.DataFrame:
    return pl.DataFrame([{"file": file, **r} for r in refused], schema=QUARANTINE_SCHEMA)


def _fee(record: dict) -> tuple[str | None, str | None, str | None]:
    """(cost text, currency, problem) of a record's fee: ``fees`` when non-empty, else ``fee``.

    ``fee`` usually repeats ``fees[0]``, so the two are never added. Entries of one currency
    are summed (ccxt's reduce_fees_by_currency); a fill row carries one fee, so non-zero fees
    in several currencies refuse the row rather than lose one.
    """
    fees = record.get("fees")
    entries = fees if isinstance(fees, list) and fees else [record.get("fee")]
    by_currency: dict[str | None, list[str]] = {}
    for entry in entries:
        if entry is None:
            continue
        if not isinstance(entry, dict):
            return None, None, f"fee {_text(entry)} is not an object"
        if entry.get("cost") is None:
            continue
        by_currency.setdefault(_text(entry.get("currency")), []).append(_text(entry["cost"]))
    if not by_currency:
        return None, None, None
    if len(by_currency) == 1 and len(next(iter(by_currency.values()))) == 1:
        (currency, (cost,)), = by_currency.items()
        return cost, currency, None
    sums: dict[str | None, Decimal] = {}
    for currency, costs in by_currency.items():
        for cost in costs:
            if not _NUMBER.match(cost.strip()):
                return None, None, f'fee cost "{cost}" is not a decimal'
        with localcontext(prec=200):  # exact: wide enough for any Decimal(38,18) sum
            sums[currency] = sum((Decimal(c.strip()) for c in costs), Decimal(0))
    charged = {c: v for c, v in sums.items() if v != 0}
    if len(charged) > 1:
        listed = ", ".join(f"{v:f} {c}" for c, v in charged.items())
        return None, None, f"fees in several currencies ({listed}): one fill row carries one fee"
    currency, total = next(iter(charged.items())) if charged else next(iter(sums.items()))
    return f"{total:f}", currency, None


def _time(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[Check]]:
    """``ts`` from ``timestamp`` (ms since epoch), else from ``datetime`` (ISO 8601 UTC). Where
    the scan read the ms already (``timestamp__int``: 1 to 15 ASCII digits), the text is not."""
    counted = pl.col("timestamp__int") if "timestamp__int" in frame.columns else pl.lit(None, pl.Int64)
    left = pl.when(counted.is_null()).then(pl.col("timestamp"))  # the text, where the scan did not read it
    left_ms = left.str.contains(r"^\d{1,15}$")
    is_ms = counted.is_not_null() | left_ms.fill_null(False)
    ms = pl.coalesce(counted, pl.when(left_ms).then(left).cast(pl.Int64))
    from_ms = pl.from_epoch(ms, time_unit="ms")
    # The ISO text is parsed only when some row lacks a timestamp (it alone would use it).
    from_iso = utc(pl.col("datetime"), ISO_FORMAT) if frame["timestamp"].null_count() else pl.lit(None, pl.Datetime("us", "UTC"))
    frame = frame.with_columns(
        ts=pl.when(pl.col("timestamp").is_not_null()).then(from_ms.dt.replace_time_zone("UTC")).otherwise(from_iso)
    )
    checks = [
        Check("timestamp", pl.col("timestamp").is_not_null() & ~is_ms, pl.format('"{}" is not a time in ms since 1970', pl.col("timestamp"))),
        Check("datetime", pl.col("timestamp").is_null() & pl.col("datetime").is_not_null() & from_iso.is_null(),
              pl.format('"{}" is not a time like 2024-03-05T09:15:02.123Z', pl.col("datetime"))),
        Check("timestamp", pl.col("timestamp").is_null() & pl.col("datetime").is_null(), "missing time"),
        Check("timestamp", out_of_years(pl.col("ts")), "time outside 2000..2100",
              raw=pl.coalesce("timestamp", "datetime")),
    ]
    return frame, checks


def _numbers(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """Adds ``<name>_value`` (exact) and ``<name>_bad`` for number columns. Where the scan
    read the value already (``<name>__value``, a plain decimal), the text is not read again."""
    done = {name: f"{name}__value" for name in names if f"{name}__value" in frame.columns}
    texts = {f"{name}_value": pl.when(pl.col(done[name]).is_null()).then(pl.col(name)) if name in done else pl.col(name) for name in names}
    frame = with_venue_decimals(frame, texts)
    frame = frame.with_columns(pl.coalesce(column, f"{name}_value").alias(f"{name}_value") for name, column in done.items())
    return frame.drop(done.values()).rename({f"{name}_value__bad": f"{name}_bad" for name in names})


def _not_decimal(name: str, column: str | None = None) -> Check:
    return Check(column or name, pl.col(f"{name}_bad"), pl.format('"{}" is not a decimal', pl.col(name)), raw=pl.col(name))


def _missing(name: str, column: str | None = None) -> Check:
    return Check(column or name, pl.col(name).is_null() | (pl.col(name).str.strip_chars() == ""), "missing value", raw=pl.col(name))


def _fee_checks() -> list[Check]:
    return [
        Check("fees", pl.col("fee_problem").is_not_null(), pl.col("fee_problem"), raw=pl.col("fees_raw")),
        _not_decimal("fee_cost", "fee"),
        Check("fee", (pl.col("fee_cost_value") != 0) & pl.col("fee_currency").is_null(), "fee without a currency", raw=pl.col("fee_cost")),
    ]


def _columns(records: list[tuple[int, str, dict]], fields: list[str]) -> pl.DataFrame:
    rows = []
    for number, line, record in records:
        cost, currency, problem = _fee(record)
        row = {f: _text(record.get(f)) for f in fields}
        # The fee text a person needs, only where the fee is refused.
        fees_raw = json.dumps(record.get("fees") or record.get("fee")) if problem else None
        rows.append({"source_row": number, "raw": line, **row, "fee_cost": cost, "fee_currency": currency,
                     "fee_problem": problem, "fees_raw": fees_raw})
    schema = {"source_row": pl.Int64, "raw": pl.String, **{f: pl.String for f in fields},
              "fee_cost": pl.String, "fee_currency": pl.String, "fee_problem": pl.String, "fees_raw": pl.String}
    return pl.DataFrame(rows, schema=schema)


# ---------------------------------------------------------------- trades -> FILLS


def _with_product(frame: pl.DataFrame) -> pl.DataFrame:
    """``__fits``: amount × price fits Decimal(38,18); ``__product``: amount × price, exact to
    18 places, where it fits (else null; never computed there: Polars would fail the file)."""
    amount, price = pl.col("amount_value"), pl.col("price_value")
    frame = frame.with_columns(__fits=~product_overflows(frame, amount, price))
    fitting = pl.when(pl.col("__fits")).then(amount).otherwise(pl.lit(0, DECIMAL))
    return frame.with_columns(__product=pl.when(pl.col("__fits")).then(fitting * price))


def _product() -> pl.Expr:
    return pl.col("__product")


def _cost_disagrees() -> pl.Expr:
    """A spot trade's stated cost differs from amount × price by more than 1e-6 relative."""
    spot = ~pl.col("symbol").str.contains(":", literal=True)
    product = _product()
    # Plus one unit in the 18th place: the product itself is rounded there.
    slack = product.abs() / 1_000_000 + pl.lit(Decimal("1e-18"), DECIMAL)
    # A difference that leaves Decimal(38, 18) is far off (and is not computed: a refused
    # negative amount or cost would otherwise fail the whole file).
    too_far = sum_overflows(pl.col("cost_value"), -product)
    zero = pl.lit(0, DECIMAL)
    difference = pl.when(too_far).then(zero).otherwise(pl.col("cost_value")) - pl.when(too_far).then(zero).otherwise(product)
    off = too_far | (difference.abs() > slack)
    return (spot & pl.col("cost_value").is_not_null() & product.is_not_null() & off).fill_null(False)


def read_trades(source: Source) -> Parsed:
    numbers = ["price", "amount", "cost", "fee_cost"]
    frame, refused = _read_lines(source, TRADE_KEYS, "trade", ["id", "order", "timestamp", "datetime", "symbol", "side",
                                                                 "takerOrMaker", "price", "amount", "cost"], numbers)
    frame = _numbers(frame, numbers).with_columns(
        side_word=pl.col("side").str.strip_chars().str.to_lowercase(),
        # BASE/QUOTE, then :SETTLE and -expiry/strike/type for derivatives.
        base=pl.col("symbol").str.extract(r"^([^/:]+)/", 1),
        quote=pl.col("symbol").str.extract(r"^[^/:]+/([^/:]+)", 1),
    )
    frame, time_checks = _time(_with_product(frame))
    checks = [
        _missing("symbol"),
        Check("symbol", pl.col("symbol").is_not_null() & (pl.col("base").is_null() | pl.col("quote").is_null()),
              pl.format('"{}" is not a BASE/QUOTE symbol', pl.col("symbol"))),
        Check("side", ~pl.col("side_word").is_in(["buy", "sell"]) | pl.col("side_word").is_null(), pl.format('unknown side "{}"', pl.col("side"))),
        _not_decimal("amount"),
        _missing("amount"),
        Check("amount", pl.col("amount_value") <= 0, "amount must be positive (the side gives the sign)"),
        _not_decimal("price"),
        _missing("price"),
        Check("price", pl.col("price_value") <= 0, "price must be positive"),
        _not_decimal("cost"),
        Check("cost", pl.col("cost_value") < 0, "cost must not be negative"),
        Check("cost", pl.col("cost_value").is_null() & ~pl.col("__fits"),
              "no cost, and amount × price is too large to compute", raw=pl.concat_str("amount", pl.lit(" × "), "price")),
        # A stated cost is checked, not trusted (a real pull stated 1.364985341e-9 for 0.0001
        # BTC at 73,260.86). Spot only: a derivative's amount counts contracts, and the trade
        # does not carry its contractSize.
        Check("cost", _cost_disagrees(), pl.format("cost {} is not amount × price = {} (off by more than 1e-6 relative)",
                                                   pl.col("cost"), _product()),
              raw=pl.col("cost")),
        *_fee_checks(),
        *time_checks,
    ]
    ok, quarantine = split_refused(frame, checks, source.rel)
    # ccxt's id is the venue's own trade id (ledger.md): kept as written, so a trade in a
    # ccxt pull and in the venue's export is one identity; ingest qualifies it by pair where
    # the venue numbers trades per symbol. A trade without an id is keyed by its line and
    # occurrence, as for id-less exports.
    ok = _line_ids(ok)
    trade_id = pl.coalesce("id", "raw_id")
    fills = ok.select(
        venue=pl.lit(source.venue),
        account=pl.lit(source.account),
        trade_id=trade_id,
        order_id="order",
        ts="ts",
        symbol="symbol",
        base="base",
        quote="quote",
        side="side_word",
        # Derivatives: `amount` counts contracts (the trade does not carry contractSize).
        qty=pl.when(pl.col("side_word") == "sell").then(-pl.col("amount_value")).otherwise(pl.col("amount_value")),
        price="price_value",
        # Without a cost the product stands in, rounded to 18 places (Decimal(38,18)).
        # (masked so rows that state a cost never compute a product that may not fit)
        quote_qty=pl.coalesce("cost_value", pl.when(pl.col("cost_value").is_null()).then(pl.col("amount_value")).otherwise(0) * pl.col("price_value")),
        fee="fee_cost_value",
        fee_asset=pl.when(pl.col("fee_cost_value").is_null()).then(None).otherwise(pl.col("fee_currency")),
        liquidity=pl.when(pl.col("takerOrMaker").is_in(["maker", "taker"])).then(pl.col("takerOrMaker")).otherwise(None),
        source_file=pl.lit(source.rel),
        source_row="source_row",
    ).cast(FILLS)
    return Parsed(owned(fills), owned(pl.concat([_refused_frame(refused, source.rel), quarantine]).sort("row", maintain_order=True)))


# ---------------------------------------------------------------- ledger -> MOVEMENTS


def _ledger_kind(kind: pl.Expr, incoming: pl.Expr) -> pl.Expr:
    t = kind.str.to_lowercase()
    return (
        pl.when(t == "trade").then(pl.lit("trade"))
        .when(t == "transaction").then(pl.when(incoming).then(pl.lit("deposit")).otherwise(pl.lit("withdrawal")))
        .when(t == "deposit").then(pl.lit("deposit"))
        .when(t.is_in(["withdrawal", "withdraw"])).then(pl.lit("withdrawal"))
        .when(t.is_in(["fee", "commission"])).then(pl.lit("fee"))
        .when(t.is_in(["rebate", "cashback", "referral"])).then(pl.lit("rebate"))
        .when(t == "transfer").then(pl.lit("transfer"))
        .when(t.str.contains("funding")).then(pl.lit("funding"))
        .when(t.str.contains("interest")).then(pl.lit("interest"))
        .when(t.str.contains(r"pnl|settlement")).then(pl.lit("realized_pnl"))
        .otherwise(pl.lit("other"))
    )


def read_ledger(source: Source) -> Parsed:
    frame, refused = _read_lines(source, LEDGER_KEYS, "ledger entry", ["id", "timestamp", "datetime", "direction",
                                                                        "referenceId", "type", "currency", "amount", "status"],
                                 ["amount", "fee_cost"])
    frame = _numbers(frame, ["amount", "fee_cost"]).with_columns(direction_word=pl.col("direction").str.strip_chars().str.to_lowercase())
    frame, time_checks = _time(frame)
    checks = [
        # Only settled entries change a balance; the others are shown, not booked.
        Check("status", pl.col("status").is_null() | (pl.col("status") != "ok"),
              pl.format("status {}: not booked", pl.col("status").fill_null("missing"))),
        Check("direction", ~pl.col("direction_word").is_in(["in", "out"]) | pl.col("direction_word").is_null(),
              pl.format('unknown direction "{}"', pl.col("direction"))),
        _missing("currency"),
        _not_decimal("amount"),
        _missing("amount"),
        Check("amount", pl.col("amount_value") < 0, "amount must not be negative (the direction gives the sign)"),
        *_fee_checks(),
        *time_checks,
    ]
    ok, quarantine = split_refused(frame, checks, source.rel)
    ok = _line_ids(ok).with_columns(
        row_key=pl.coalesce("id", "raw_id"),
        amount_qty=pl.when(pl.col("direction_word") == "in").then(pl.col("amount_value")).otherwise(-pl.col("amount_value")),
    )
    # `amount` excludes the fee: the fee is a change of its own, in its own currency.
    part = ["source_row", "entry_id", "ref_id", "ts", "kind", "asset", "qty", "description"]
    ok = ok.with_columns(ref_id="referenceId", description="type")
    main = ok.with_columns(entry_id="row_key", kind=_ledger_kind(pl.col("type"), pl.col("direction_word") == "in"),
                           asset="currency", qty="amount_qty")
    fees = ok.filter(pl.col("fee_cost_value").fill_null(0) != 0).with_columns(
        entry_id=pl.concat_str("row_key", pl.lit("/fee")), kind=pl.lit("fee"), asset="fee_currency", qty=-pl.col("fee_cost_value"))
    movements = to_schema(source, interleave([p.select(part).cast({"qty": MOVEMENTS["qty"]}) for p in (main, fees)]), MOVEMENTS)
    return Parsed(owned(movements), owned(pl.concat([_refused_frame(refused, source.rel), quarantine]).sort("row", maintain_order=True)))


# ---------------------------------------------------------------- balance -> BALANCES


def read_balance(source: Source) -> Parsed:
    text = _text_of(source)
    try:
        document = loads(text)
    except ValueError as e:
        raise ValueError(f"{source.rel}: invalid JSON: {e}") from e
    totals = document.get("total") if isinstance(document, dict) else None
    if not isinstance(totals, dict):
        raise ValueError(f"{source.rel}: a ccxt balance needs a 'total' map of asset to amount")
    frame = pl.DataFrame(
        {"source_row": list(range(1, len(totals) + 1)), "asset": list(totals), "total": [_text(v) for v in totals.values()]},
        schema={"source_row": pl.Int64, "asset": pl.String, "total": pl.String},
    )
    frame = _numbers(frame, ["total"])
    checks = [
        _missing("asset"),
        # ccxt leaves null what the venue did not report: unknown, not zero.
        Check("total", pl.col("total").is_null(), "total is null: the venue did not report it"),
        _not_decimal("total"),
    ]
    ok, quarantine = split_refused(frame, checks, source.rel)
    balances = ok.select(
        venue=pl.lit(source.venue),
        account=pl.lit(source.account),
        asset="asset",
        total="total_value",
        source_file=pl.lit(source.rel),
        source_row="source_row",
    ).cast(BALANCES)
    return Parsed(balances, quarantine)


FORMATS = [
    Format("ccxt.trades", "fills", is_trades, read_trades),
    Format("ccxt.ledger", "ledger", is_ledger, read_ledger),
    Format("ccxt.balance", "balances", is_balance, read_balance),
]
