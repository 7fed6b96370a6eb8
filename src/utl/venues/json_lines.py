"""JSON lines into text columns, every number as the text it was written with, at C speed.

``json.loads(parse_float=str)`` keeps numbers exact but builds a dict per line in Python
(ccxt trades: ~56 k lines/s). Here msgspec decodes each line into a struct whose fields are
``msgspec.Raw``: the value's own JSON bytes, unparsed, so a number is never a float. The
raw bytes then become text columns in Polars, vectorized: a number stays as written
(``3.1e-05``, ``650.0000000000001``), a plain string loses its quotes, null and an absent
key are null.

What this fast path does not read exactly as ``json.loads`` would (a string with an escape,
true/false, an object where text is expected, a line that is not an object, a missing
required key, a fee the caller must add up) is not guessed at: the line is handed back, and
the caller reads it line by line as before. So the two paths give the same columns.
"""

from __future__ import annotations

import gc
import operator
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache

import msgspec
import polars as pl

_ABSENT = msgspec.Raw(b"")
_NULL = msgspec.Raw(b"null")
_JSON_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"
_SEPARATOR = b"\x1f"  # a control character: JSON text holds none unescaped, so no raw value does


class Fee(msgspec.Struct):
    """A ccxt fee entry; other keys (``rate``) are not needed."""

    cost: msgspec.Raw = _NULL
    currency: msgspec.Raw = _NULL


@cache
def _decoder(fields: tuple[str, ...]) -> msgspec.json.Decoder:
    record = msgspec.defstruct(
        "Record",
        [(name, msgspec.Raw, _ABSENT) for name in fields]
        + [("fee", Fee | None, None), ("fees", list[Fee] | None, None)],
    )
    return msgspec.json.Decoder(record)


def text_columns(lines: Sequence[tuple[int, str]], fields: Sequence[str], required: set[str],
                 ) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """(frame, lines left for the caller) from ``(line number, line)`` pairs.

    The frame has ``source_row``, ``raw``, each of ``fields`` as text, and ``fee_cost`` and
    ``fee_currency``: the one fee entry that has a cost (``fees`` when non-empty, else
    ``fee``). Lines with two such entries are left for the caller, which adds them up.
    """
    with _collector_paused():
        numbers, raws, columns, left = _decode(lines, fields)
    frame = pl.DataFrame({"source_row": pl.Series(numbers, dtype=pl.Int64), "raw": pl.Series(raws, dtype=pl.String),
                          **{name: _binary(name, column) for name, column in columns.items()}})
    texts = {name: _as_text(name) for name in columns}
    unclear = pl.any_horizontal([texts[name].is_null() & ~_is_null(name) for name in columns])
    missing = pl.any_horizontal([pl.col(name) == b"" for name in required]) if required else pl.lit(False)
    frame = frame.with_columns(left_over=unclear | missing)
    left += list(frame.filter("left_over").select("source_row", "raw").iter_rows())
    frame = frame.filter(~pl.col("left_over")).select("source_row", "raw", **texts)
    return frame.with_columns(fee_problem=pl.lit(None, pl.String), fees_raw=pl.lit(None, pl.String)), sorted(left)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Millions of small objects would set off the cyclic collector again and again; they hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decode(lines: Sequence[tuple[int, str]], fields: Sequence[str],
            ) -> tuple[list[int], list[str], dict[str, list[msgspec.Raw]], list[tuple[int, str]]]:
    decode = _decoder(tuple(fields)).decode
    pick = operator.attrgetter(*fields)
    numbers: list[int] = []
    raws: list[str] = []
    values: list[tuple] = []
    fees: list[tuple[msgspec.Raw, msgspec.Raw]] = []
    left: list[tuple[int, str]] = []
    for number, line in lines:
        try:
            record = decode(line)
        except msgspec.MsgspecError:
            left.append((number, line))
            continue
        entries = record.fees or ((record.fee,) if record.fee is not None else ())
        charged = [entry for entry in entries if entry.cost != _NULL]
        if len(charged) > 1:
            left.append((number, line))
            continue
        numbers.append(number)
        raws.append(line)
        values.append(pick(record) if len(fields) > 1 else (pick(record),))
        fees.append((charged[0].cost, charged[0].currency) if charged else (_NULL, _NULL))

    columns = list(zip(*values)) if values else [[] for _ in fields]
    fee_columns = list(zip(*fees)) if fees else [[], []]
    return numbers, raws, dict(zip([*fields, "fee_cost", "fee_currency"], [*columns, *fee_columns])), left


def _binary(name: str, column: Sequence[msgspec.Raw]) -> pl.Series:
    """A column of raw values as Binary: one join in C, one split in Polars (not a bytes object each)."""
    if not column:
        return pl.Series(name, [], dtype=pl.Binary)
    joined = _SEPARATOR.join(column).decode("utf-8")  # the line's own UTF-8: it decodes
    return pl.Series(name, [joined]).str.split(_SEPARATOR.decode()).explode().cast(pl.Binary)


def _is_null(name: str) -> pl.Expr:
    return (pl.col(name) == b"") | (pl.col(name) == b"null")


def _as_text(name: str) -> pl.Expr:
    """The value as ``json.loads(parse_float=str, parse_int=str)`` gives it, or null where
    that is not a plain string or number (null and absent are null too)."""
    text = pl.col(name).cast(pl.String)  # msgspec returns the line's own UTF-8 bytes
    plain_string = text.str.starts_with('"') & text.str.ends_with('"') & ~text.str.contains("\\", literal=True) & (
        text.str.len_bytes() >= 2)
    return (
        pl.when(plain_string).then(text.str.slice(1, text.str.len_chars() - 2))
        .when(text.str.contains(_JSON_NUMBER)).then(text)
        .otherwise(None)
    )
