"""A batch of stream messages as the batch's own fills and legs (stream.md, "The broker").

A message is one ccxt unified trade. It is read by the same reader the end-of-day run uses
for a ccxt trades file (``utl.venues.ccxt`` through ``utl.ingest.read_trades_file``: numbers
as their text, the stated cost checked at 1e-6 relative, asset codes through ``[aliases]``,
the venue's trade identity), and its legs are booked by ``utl.legs``: so a message books
exactly the legs the batch books for the same trade. What the stream adds is the envelope:
the subject names venue and account, the message must be a JSON object with ``id``,
``symbol``, ``side``, ``amount`` and ``price``, and whatever is refused goes to
``utl.stream_quarantine`` with its subject and stream sequence.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgspec
import polars as pl

from utl.frames import conformed
from utl.ingest import read_trades_file, trade_identity
from utl.legs import book_legs
from utl.schemas import FILLS_OUT, LEGS_OUT, MOVEMENTS_OUT
from utl.settings import Settings
from utl.stream.plain_fills import LARGEST_BATCH, plain_fills
from utl.venues.base import Source
from utl.venues.ccxt import FORMATS, loads

SUBJECT_PREFIX = "utl.fills."
REQUIRED = ("id", "symbol", "side", "amount", "price")
TRADES = [f for f in FORMATS if f.kind == "fills"]

QUARANTINE = pl.Schema({"subject": pl.String, "stream_seq": pl.Int64, "reason": pl.String, "raw": pl.String})
"""utl.stream_quarantine."""
KEYED_FILLS = pl.Schema({"stream_seq": pl.Int64, "symbol_text": pl.String, "payload_id": pl.String, **FILLS_OUT})
KEYED_LEGS = pl.Schema({"stream_seq": pl.Int64, "symbol_text": pl.String, "payload_id": pl.String, **LEGS_OUT})


@dataclass(frozen=True)
class Message:
    subject: str
    seq: int  # the stream sequence
    data: bytes


@dataclass(frozen=True)
class Parsed:
    fills: pl.DataFrame  # KEYED_FILLS: one row per message booked
    legs: pl.DataFrame  # KEYED_LEGS
    quarantine: pl.DataFrame  # QUARANTINE


def venue_account(subject: str) -> tuple[str, str] | None:
    """``utl.fills.<venue>.<account>`` -> (venue, account); None for any other shape."""
    if not subject.startswith(SUBJECT_PREFIX):
        return None
    parts = subject[len(SUBJECT_PREFIX):].split(".")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


class _Envelope(msgspec.Struct):
    """The keys the envelope requires, each as its own JSON bytes (never parsed as a number)."""

    id: msgspec.Raw = msgspec.Raw(b"")
    symbol: msgspec.Raw = msgspec.Raw(b"")
    side: msgspec.Raw = msgspec.Raw(b"")
    amount: msgspec.Raw = msgspec.Raw(b"")
    price: msgspec.Raw = msgspec.Raw(b"")


_ENVELOPE = msgspec.json.Decoder(_Envelope)


class _Typed(msgspec.Struct):
    """:class:`_Envelope` for a whole batch at once: id, symbol and side as JSON text (a
    message where any is not fails the batch's decode, and each message then goes its own way)."""

    id: str = ""
    symbol: str = ""
    side: str = ""
    amount: msgspec.Raw = msgspec.Raw(b"")
    price: msgspec.Raw = msgspec.Raw(b"")


_TYPED = msgspec.json.Decoder(_Typed)


def _present(raw: msgspec.Raw) -> bool:
    """A number (or its text) is there: not missing, not null, not blank text."""
    value = bytes(raw)
    return value not in (b"", b"null") and not (value[:1] == b'"' and not value[1:-1].decode("utf-8").strip())


def _plain_batch(messages: list[Message]) -> list[tuple[str, str, str] | None] | None:
    """:func:`_plain` of every message, decoded in one call (msgspec's ``decode_lines``, in C):
    the same (text, symbol, id), or None where :func:`_plain` would say None. None for the
    whole batch when it is not one plain JSON object per line: then :func:`_plain` runs per
    message, as before."""
    datas = [m.data for m in messages]
    blob = b"\n".join(datas)
    if b"\\" in blob or b"\r" in blob or blob.count(b"\n") != len(datas) - 1:
        return None
    try:
        records = _TYPED.decode_lines(blob)
        texts = blob.decode("utf-8").split("\n")
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return None
    if len(records) != len(datas) or len(texts) != len(datas):  # a blank message is no line
        return None
    out: list[tuple[str, str, str] | None] = []
    for record, text in zip(records, texts):
        key, symbol = record.id, record.symbol
        if key.strip() and symbol.strip() and record.side.strip() and _present(record.amount) and _present(record.price):
            out.append((text, symbol, key))
        else:
            out.append(None)
    return out


def _plain(message: Message) -> tuple[str, str, str] | None:
    """(the message as one line of text, symbol, id) when it plainly passes the envelope:
    a JSON object (msgspec, in C) whose id and symbol are non-blank text and whose side,
    amount and price are there. None: :func:`_envelope` reads it as before and says why
    (whatever this path cannot judge at a glance, an escape or a line break, goes there too)."""
    data = message.data
    if b"\\" in data or b"\n" in data or b"\r" in data:
        return None
    try:
        record = _ENVELOPE.decode(data)
        text = data.decode("utf-8")
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return None
    for raw in (record.side, record.amount, record.price):
        value = bytes(raw)
        if value in (b"", b"null") or (value[:1] == b'"' and not value[1:-1].decode("utf-8").strip()):
            return None
    key, symbol = bytes(record.id), bytes(record.symbol)
    if key[:1] != b'"' or symbol[:1] != b'"':
        return None
    key_text, symbol_text = key[1:-1].decode("utf-8"), symbol[1:-1].decode("utf-8")
    if not key_text.strip() or not symbol_text.strip():
        return None
    return text, symbol_text, key_text


def _envelope(message: Message) -> tuple[dict | None, str | None, str]:
    """(record, reason refused, raw text) of one message."""
    raw = message.data.decode("utf-8", errors="replace")
    if venue_account(message.subject) is None:
        return None, f"subject {message.subject!r} is not utl.fills.<venue>.<account>", raw
    try:
        record = loads(message.data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"invalid JSON: {exc}", raw
    if not isinstance(record, dict):
        return None, "not a ccxt trade: the message is not a JSON object", raw
    missing = [k for k in REQUIRED if record.get(k) is None or (isinstance(record[k], str) and not record[k].strip())]
    if missing:
        return None, f"not a ccxt trade: missing {', '.join(missing)}", raw
    if not isinstance(record["id"], str) or not isinstance(record["symbol"], str):
        return None, "not a ccxt trade: id and symbol must be text", raw
    return record, None, raw


def parse_batch(messages: list[Message], settings: Settings, scratch: Path | None = None,
                reader_from: int | None = LARGEST_BATCH) -> Parsed:
    """The fills, legs and refusals of a batch of messages (any venues and accounts).

    Fewer than ``reader_from`` messages (and at most :data:`LARGEST_BATCH`), all plain, are
    read a message at a time (:mod:`utl.stream.plain_fills`: the same fills, without the
    reader's fixed cost); any other batch, and ``reader_from=None``, by the batch's ccxt reader."""
    refused: list[dict] = []
    # (message, line for the reader, symbol, id, raw text) of each message that goes on.
    items: list[tuple[Message, str, str, str, str]] = []
    pairs: dict[str, tuple[str, str] | None] = {}
    batch = _plain_batch(messages)
    for n, message in enumerate(messages):
        pair = pairs.get(message.subject, False)
        if pair is False:
            pair = pairs[message.subject] = venue_account(message.subject)
        plain = None if pair is None else batch[n] if batch is not None and batch[n] is not None else _plain(message)
        if plain is not None:
            text, symbol, key = plain
            items.append((message, text, symbol, key, text))
            continue
        record, reason, raw = _envelope(message)
        if reason is not None:
            refused.append({"subject": message.subject, "stream_seq": message.seq, "reason": reason, "raw": raw})
            continue
        # Numbers are text already (loads), so dumping them as JSON strings changes no digit.
        items.append((message, json.dumps(record, ensure_ascii=False), record["symbol"], record["id"], raw))

    fills = []
    quick = None
    if items and reader_from is not None and len(items) < reader_from:
        quick = plain_fills([(m.seq, m.subject, *pairs[m.subject], key, line) for m, line, _, key, _ in items],
                            settings, KEYED_FILLS)
    if quick is not None:
        fills.append(quick)
    elif items:
        with tempfile.TemporaryDirectory(dir=scratch) as folder:
            # The whole batch is one file for the reader (one pass, whatever the venues); the
            # venue and account come from each message's subject afterwards.
            path = Path(folder) / "batch.jsonl"
            path.write_text("\n".join(line for _, line, _, _, _ in items) + "\n")
            rows = read_trades_file(Source(path, "stream", "-", "-"), TRADES, settings)
        subjects = pl.Series([m.subject for m, _, _, _, _ in items], dtype=pl.String)
        by_row = pl.DataFrame(
            {"row": pl.int_range(1, len(items) + 1, eager=True, dtype=pl.Int64),
             "stream_seq": pl.Series([m.seq for m, _, _, _, _ in items], dtype=pl.Int64),
             "subject": subjects,
             "symbol_text": pl.Series([symbol for _, _, symbol, _, _ in items], dtype=pl.String),
             "payload_id": pl.Series([key for _, _, _, key, _ in items], dtype=pl.String),
             "raw_message": pl.Series([raw for _, _, _, _, raw in items], dtype=pl.String)},
        ).with_columns(
            # utl.fills.<venue>.<account>, checked above.
            venue=pl.col("subject").str.split(".").list.get(2),
            account=pl.col("subject").str.split(".").list.get(3),
        )
        bad = rows.quarantine.join(by_row, on="row", how="inner")
        for row in bad.iter_rows(named=True):
            where = f'column "{row["column"]}": ' if row["column"] else ""
            refused.append({"subject": row["subject"], "stream_seq": row["stream_seq"],
                            "reason": f"{where}{row['reason']}", "raw": row["raw_message"]})
        # A row refused by any check is not booked, even if another part of it passed.
        good = rows.fills.join(bad.select("row").unique(), left_on="source_row", right_on="row", how="anti")
        fills.append(
            good.drop("venue", "account").join(by_row, left_on="source_row", right_on="row", how="inner")
            # The venue's own trade identity (ingest.md), now that the venue is known.
            .with_columns(trade_id=pl.col("payload_id")).with_columns(trade_id=trade_identity(), source_file=pl.col("subject"))
        )
    if quick is not None:  # in KEYED_FILLS' columns and types, by sequence, already
        fills = quick
    else:
        fills = (pl.concat(fills, how="diagonal_relaxed") if fills else pl.DataFrame(schema=KEYED_FILLS))
        fills = fills.select(KEYED_FILLS.names()).cast(KEYED_FILLS).sort("stream_seq")
    legs = legs_of(fills)
    quarantine = pl.DataFrame(refused, schema=QUARANTINE)
    if quarantine.height > 1:
        quarantine = quarantine.sort("stream_seq")
    return Parsed(fills, legs, quarantine)


def legs_of(fills: pl.DataFrame) -> pl.DataFrame:
    """The batch's legs of these fills, each with its fill's stream sequence and ledger key."""
    plain = conformed(fills, FILLS_OUT)
    legs = book_legs(plain, MOVEMENTS_OUT.to_frame(), set())
    # A re-send in the same batch has its fill's trade id: each leg finds its own message by
    # its row in the batch.
    keys = fills[["source_row", "stream_seq", "symbol_text", "payload_id"]]
    return conformed(legs.join(keys, on="source_row", how="left"), KEYED_LEGS)
