"""A small batch of plain fill messages read in Python, a message at a time: the same fills
the batch's ccxt reader gives for them, without its ~250 Polars steps.

The reader (``utl.venues.ccxt`` through ``utl.ingest.read_trades_file``) costs ~20 ms for a
batch however small (each Polars step ~30-200 us here), most of a live batch's fixed cost.
Most messages are plain: a JSON object whose numbers are plain decimals and whose fee is one
entry. For those the reader's rules are few and are applied here one message at a time; the
first message this module cannot judge exactly as the reader would (an exponent, a blank
around a number, a cost near the edge of its 1e-6 tolerance, several fees, anything the
reader refuses) sends the whole batch back to the reader, so every refusal and its reason
still come from the reader alone. ``tests/stream/test_plain_fills.py`` holds the two to the
same frame, column by column, over generated messages of every shape.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Optional

import msgspec
import polars as pl

from utl.assets import canonical_asset
from utl.decimals import WIDE as _WIDE
from utl.ingest import ASSET_CODE, DERIVATIVE_FORMATS, PER_SYMBOL_IDS, known_codes
from utl.settings import Settings
from utl.venues.ccxt import FORMATS

FORMAT = "ccxt.trades"
_FEE_ASSET_ASSUMED = not next(f for f in FORMATS if f.name == FORMAT).fee_asset_stated
LARGEST_BATCH = 1_500
"""Messages from which the reader is the cheaper (its cost is mostly per batch, this path's
~16 us per message). ``parse_batch`` measured here, this path against the reader: 200
messages 6.5-6.9 against 24-29 ms, 1,000 21-25 against 30-36, 2,000 alike (38-51 against
41-47), 5,000 114-139 against 88-94."""

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)  # the reader's out_of_years
_LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
_PLAIN_NUMBER = re.compile(rb"^-?[0-9]{1,20}(\.[0-9]{1,18})?$")
_MILLISECONDS = re.compile(rb"^[0-9]{1,15}$")
_PAIR = re.compile(r"^([^/:]+)/([^/:]+)")  # the reader's base (^([^/:]+)/) and quote (^[^/:]+/([^/:]+)) at once
_ASSET = re.compile(ASSET_CODE)
_UNIT = Decimal("1e-18")
_SLACK = Decimal("1e-17")  # beyond the reader's 1e-18 and its rounding of the product to 18 places
_MILLION = Decimal(1_000_000)
_NULL = msgspec.Raw(b"null")


class _Fee(msgspec.Struct):
    cost: msgspec.Raw = _NULL
    currency: Optional[str] = None


class _Fill(msgspec.Struct):
    """A ccxt trade's fields the reader reads: numbers as their JSON text, texts as text. A
    text field holding another type, or a fee not an object (or null), fails the decode, and
    the batch goes to the reader."""

    id: Optional[str] = None
    timestamp: msgspec.Raw = _NULL
    symbol: Optional[str] = None
    side: Optional[str] = None
    amount: msgspec.Raw = _NULL
    price: msgspec.Raw = _NULL
    cost: msgspec.Raw = _NULL
    order: msgspec.Raw = _NULL
    takerOrMaker: msgspec.Raw = _NULL
    fee: Optional[_Fee] = None
    fees: Optional[list[Optional[_Fee]]] = None
    direction: msgspec.Raw = msgspec.Raw(b"")  # a ledger entry's key: the reader would not read trades


_DECODER = msgspec.json.Decoder(_Fill)


class _NotPlain(Exception):
    """A message this path does not judge: the batch goes to the reader."""


def _string(raw: msgspec.Raw) -> str | None:
    """A JSON string's text (no escapes: the caller refuses text holding a backslash), None
    for null; anything else is not plain."""
    value = bytes(raw)
    if value == b"null":
        return None
    if len(value) < 2 or value[:1] != b'"':
        raise _NotPlain
    return value[1:-1].decode("utf-8")


def _number(raw: msgspec.Raw, *, signed: bool = False) -> Decimal | None:
    """A plain decimal written as a JSON number or string (at most 20 digits before the point
    and 18 after, as Decimal(38, 18) holds), None for null; anything else is not plain."""
    value = bytes(raw)
    if value == b"null":
        return None
    if value[:1] == b'"':
        value = value[1:-1]
    if not _PLAIN_NUMBER.match(value) or (value[:1] == b"-" and not signed):
        raise _NotPlain
    return Decimal(value.decode("ascii"))


def _fee(fill: _Fill) -> tuple[Decimal | None, str | None]:
    """The reader's fee (``fees`` when non-empty, else ``fee``) when it is one entry or none."""
    entries = fill.fees if fill.fees else [fill.fee]
    charged = [e for e in entries if e is not None and bytes(e.cost) != b"null"]
    if not charged:
        return None, None
    if len(charged) > 1:
        raise _NotPlain  # several entries are summed per currency by the reader
    cost, currency = _number(charged[0].cost, signed=True), charged[0].currency
    if cost != 0 and currency is None:
        raise _NotPlain  # refused by the reader
    return cost, currency


def _time(raw: msgspec.Raw) -> datetime:
    value = bytes(raw)
    if value[:1] == b'"':
        value = value[1:-1]
    if not _MILLISECONDS.match(value):
        raise _NotPlain  # no timestamp (the reader reads `datetime`), or not ms
    ts = EPOCH + timedelta(milliseconds=int(value))
    if not _EARLIEST <= ts < _LATEST:
        raise _NotPlain
    return ts


def _quote_qty(symbol: str, amount: Decimal, price: Decimal, cost: Decimal | None) -> Decimal:
    """The stated cost where it stands, else amount × price (exact at 18 places, or not plain)."""
    product = _WIDE.multiply(amount, price)
    if product >= 10**20:
        raise _NotPlain  # past Decimal(38, 18): the reader takes another path
    if cost is None:
        at_18 = _WIDE.quantize(product, _UNIT)  # (trailing zeros past 18 places would not fit a Decimal(38, 18) column)
        if at_18 != product:
            raise _NotPlain  # the reader rounds it to 18 places
        return at_18
    # A spot trade's stated cost is checked at 1e-6 relative; too near the edge to judge
    # apart from the reader's rounding is not plain.
    if ":" not in symbol and _WIDE.add(_WIDE.abs(_WIDE.subtract(cost, product)), _SLACK) > _WIDE.divide(product, _MILLION):
        raise _NotPlain
    return cost


def _canonical(code: str, known: dict[str, str | None], aliases: dict[str, str]) -> str:
    """The ingest's canonical code, from its per-process cache ``known`` (worked out by the
    same expression for a code not seen yet); a code the reader refuses is not plain."""
    canonical = known.get(code, _UNSEEN)
    if canonical is _UNSEEN:
        canonical = known[code] = pl.select(canonical_asset(pl.lit(pl.Series([code], dtype=pl.String)), aliases)).item()
    if canonical is None or not _ASSET.match(canonical):
        raise _NotPlain
    return canonical


_UNSEEN = object()
COLUMNS = ("stream_seq", "symbol_text", "payload_id", "venue", "account", "trade_id", "order_id", "ts", "symbol", "base",
           "quote", "side", "qty", "price", "quote_qty", "fee", "fee_asset", "liquidity", "source_file", "source_row",
           "format", "derivative", "fee_asset_assumed")
"""The keyed fills' columns, in the order each message's row is written."""


def plain_fills(items: list[tuple[int, str, str, str, str, str]], settings: Settings, schema: pl.Schema) -> pl.DataFrame | None:
    """The batch's fills (``schema``: the stream's keyed fills, :data:`COLUMNS`) from ``items``,
    one per message in order: (stream sequence, subject, venue, account, ledger id, JSON text);
    None when any message is not plain (then the reader reads the batch)."""
    if tuple(schema.names()) != COLUMNS:
        raise ValueError(f"plain_fills writes {COLUMNS}, not {tuple(schema.names())}")
    rows = plain_rows(items, settings)
    if rows is None:
        return None
    return pl.DataFrame(dict(zip(COLUMNS, map(list, zip(*rows)))), schema=schema).sort("stream_seq", maintain_order=True)


def plain_rows(items: list[tuple[int, str, str, str, str, str]], settings: Settings,
               most: int = LARGEST_BATCH) -> list[tuple] | None:
    """:func:`plain_fills`' rows (:data:`COLUMNS`), in ``items``' order, as Python values; None
    past ``most`` messages too."""
    if not items or len(items) > most:
        return None
    blob = "\n".join(item[5] for item in items)
    if "\\" in blob or "\r" in blob or blob.count("\n") != len(items) - 1:
        return None
    try:
        decoded = _DECODER.decode_lines(blob.encode("utf-8"))
    except msgspec.MsgspecError:
        return None
    if len(decoded) != len(items):
        return None
    return _rows(items, decoded, settings)


def plain_message_rows(heads: list[tuple[int, str, str, str]], datas: list[bytes], settings: Settings,
                       most: int = LARGEST_BATCH) -> list[tuple] | None:
    """:func:`plain_rows` of messages straight from their bytes (``heads``: each one's stream
    sequence, subject, venue and account), each one's ledger id its own ``id``: one decode of
    the batch, where the envelope's check (``message._plain_batch``) and :func:`plain_rows` made
    two. None wherever either would say None (an id or symbol blank, bytes not UTF-8 even in
    a field neither reads), and past ``most`` messages."""
    if not datas or len(datas) > most:
        return None
    blob = b"\n".join(datas)
    if b"\\" in blob or b"\r" in blob or blob.count(b"\n") != len(datas) - 1:
        return None
    try:
        if not blob.isascii():
            blob.decode("utf-8")
        decoded = _DECODER.decode_lines(blob)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return None
    if len(decoded) != len(datas):  # (a blank message is no line)
        return None
    items = []
    for (seq, subject, venue, account), fill in zip(heads, decoded):
        key, symbol = fill.id, fill.symbol
        if key is None or symbol is None or not key.strip() or not symbol.strip():
            return None
        items.append((seq, subject, venue, account, key))
    return _rows(items, decoded, settings)


def _rows(items: list[tuple], decoded: list[_Fill], settings: Settings) -> list[tuple] | None:
    """The rows of decoded fills, ``items`` leading with (sequence, subject, venue, account, id)."""
    aliases = settings.aliases
    known = known_codes(aliases)
    derivative_format = FORMAT in DERIVATIVE_FORMATS
    rows = []
    try:
        for row, ((seq, subject, venue, account, key, *_), fill) in enumerate(zip(items, decoded), 1):
            if bytes(fill.direction):
                raise _NotPlain
            symbol, side = fill.symbol, fill.side
            if symbol is None or fill.id is None or side not in ("buy", "sell") or not venue.isascii():
                raise _NotPlain  # (a venue's lower case as Polars writes it: only where Python's is the same)
            pair = _PAIR.match(symbol)
            amount, price = _number(fill.amount), _number(fill.price)
            if pair is None or amount is None or price is None or amount <= 0 or price <= 0:
                raise _NotPlain
            fee, fee_asset = _fee(fill)
            derivative = derivative_format or ":" in symbol
            base_code, quote_code = _canonical(pair.group(1), known, aliases), _canonical(pair.group(2), known, aliases)
            order = bytes(fill.order)
            liquidity = bytes(fill.takerOrMaker)
            trade = key
            if venue.lower().startswith(PER_SYMBOL_IDS):
                trade = f"{base_code}/{quote_code}{'-deriv' if derivative else ''}:{key}"
            rows.append((
                seq, symbol, key, venue, account, trade,
                None if order == b"null" else _string(fill.order) if order[:1] == b'"' else _json_number(order),
                _time(fill.timestamp), symbol, base_code, quote_code, side, _WIDE.minus(amount) if side == "sell" else amount, price,
                _quote_qty(symbol, amount, price, _number(fill.cost)),
                fee, None if fee is None or fee_asset is None else _canonical(fee_asset, known, aliases),
                liquidity[1:-1].decode() if liquidity in (b'"maker"', b'"taker"') else None,
                subject, row, FORMAT, derivative, _FEE_ASSET_ASSUMED,
            ))
    except (_NotPlain, UnicodeDecodeError):
        return None
    return rows


def _json_number(raw: bytes) -> str:
    """A JSON number's own text (an order id written as a number); anything else is not plain."""
    if not _PLAIN_NUMBER.match(raw):
        raise _NotPlain
    return raw.decode("ascii")
