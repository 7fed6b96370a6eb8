"""JSON lines into text columns in one compiled pass over the file's bytes.

A ccxt pull is a file of JSON objects, one per line; a reader needs a dozen top-level values
of each as text, numbers exactly as written (never a float). :func:`scan_lines` walks the
bytes once (numba), checking every line against the JSON grammar as ``json.loads`` applies it
and noting where each wanted top-level value starts and ends; the values then become Polars
text columns without a Python object per cell or a copy: Arrow string views into the file's
bytes (:func:`owned` copies what a reader keeps). Runs of whole lines are read by one thread
each (the kernels release the GIL).

A line is read here only when the result is sure to be what ``json.loads(line,
parse_float=str, parse_int=str)`` followed by the reader's own rules gives. Everything else is
handed back, untouched, for the slower paths (:mod:`utl.venues.json_lines`, then ``json.loads``):
a line that is not JSON (the reader names the error), one that is not an object or lacks a
required key, a wanted value that is not a plain string, a number or null (``true``, an
object, a string with an escape), a key written with an escape, a wanted key twice, ``NaN``,
nesting deeper than :data:`MAX_DEPTH`, and lines whose fees must be added up (more than one
fee entry with a cost). Handing a line back is always safe; reading one here must never
differ from reading it there.

The fee of a line, as ccxt's reader takes it: the entries of ``fees`` when it is a non-empty
array, else ``fee``; the one entry whose ``cost`` is present and not null gives ``fee_cost``
and ``fee_currency``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl
import pyarrow as pa

from utl.decimals import DECIMAL

MAX_DEPTH = 64  # as utl.venues._json_kernels: deeper lines are handed back

# Line status and value kinds, as the kernels write them.
_READ, _BLANK, _BACK = 0, 1, 2
_ABSENT, _NULL, _STRING, _NUMBER, _OTHER = 0, 1, 2, 3, 4


def _kernels():
    """The kernels, loaded on first use (numba's on-disk cache spares later processes the compiling)."""
    from utl.venues import _json_kernels

    return _json_kernels


def warm_up() -> threading.Thread:
    """Loads the kernels (numba: ~0.5 s of CPU, a new process pays it on its first scan) in a
    thread, so that a caller can read the file meanwhile; a scan started before it ends waits."""
    thread = threading.Thread(target=scan_lines, args=(b'{"a": 1}', ["a"], set()), daemon=True)
    thread.start()
    return thread


def _text_column(name: str, views: np.ndarray, present: np.ndarray, buffers: list[pa.Buffer]) -> pl.Series:
    """A String column from Arrow string views into ``buffers`` (the file's bytes, valid UTF-8
    cut at ASCII delimiters), null where not ``present``: no value is copied."""
    validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    nulls = int(len(present) - np.count_nonzero(present))
    array = pa.Array.from_buffers(pa.string_view(), len(present), [validity, pa.py_buffer(np.ascontiguousarray(views)), *buffers], nulls)
    return pl.from_arrow(array).alias(name)


def owned(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with no text column holding a view into a file's bytes. The scan's columns are
    views into them, and Polars keeps the views (and so the whole file) through most
    operations, even to keep one row: a reader's outputs pass here before they are returned."""
    return frame.with_columns(_owned(frame[name]) for name, dtype in frame.schema.items() if dtype == pl.String)


def _owned(column: pl.Series) -> pl.Series:
    array = column.to_arrow(compat_level=pl.CompatLevel.newest())  # the views as they are: no copy
    if not pa.types.is_string_view(array.type):
        return column
    held = sum(b.size for b in array.buffers()[2:] if b is not None)
    if held == 0:
        return column
    if (column.str.len_bytes().max() or 0) <= 12:
        # Every value sits in its view (Arrow inlines up to 12 bytes): the views copied (the
        # exported ones belong to the array that holds the file), the data buffers dropped.
        validity, views = (None if b is None else pa.py_buffer(np.frombuffer(b, dtype=np.uint8).copy()) for b in array.buffers()[:2])
        return pl.from_arrow(pa.Array.from_buffers(array.type, len(array), [validity, views], array.null_count, array.offset)).alias(column.name)
    if held <= 2 * (column.str.len_bytes().sum() or 0):
        return column  # its own buffers (made by an operation, not the file)
    return pl.from_arrow(array.cast(pa.large_string())).alias(column.name)  # copied: offsets and bytes


def _cuts(data: bytes, parts: int) -> list[int]:
    """Where up to ``parts`` runs of whole lines of about equal size start, and the end."""
    cuts = [0]
    for k in range(1, parts):
        cut = data.find(b"\n", max(cuts[-1], len(data) * k // parts))
        if cut < 0:
            break
        cuts.append(cut + 1)
    return [*cuts, len(data)]


def _threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _key_table(encoded: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's key lookup: the first key of each (length, first byte), and the next key
    of the same length and first byte after each."""
    table = np.full(64 * 256, -1, dtype=np.int32)
    chain = np.full(len(encoded), -1, dtype=np.int32)
    for k in reversed(range(len(encoded))):
        slot = min(len(encoded[k]), 63) * 256 + (encoded[k][0] if encoded[k] else 0)
        chain[k], table[slot] = table[slot], k
    return table, chain


def scan_lines(data: bytes, fields: Sequence[str], required: set[str], raw_when_null: str | None = None,
               parts: int | None = None, decimals: Sequence[str] = (), count: str | None = None,
               ) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """(frame, lines handed back) for the UTF-8 text ``data`` (BOM removed), split on ``\\n``.

    The frame holds the lines read here, in file order: ``source_row`` (the 1-based line
    number), ``raw`` (the line, ``\\r`` stripped; only where the field ``raw_when_null`` is
    null when that is given, as ids built from the line need it there alone), each of
    ``fields`` as text, and ``fee_cost``, ``fee_currency``. Blank lines are skipped; the
    lines handed back are ``(line number, line)``, in file order.

    For each of ``decimals`` (names among ``fields``, ``fee_cost``), ``<name>__value`` is
    the value as ``Decimal(38, 18)`` where the text is a plain decimal that fits (``-?D+(.D+)?``,
    at most 18 digits each side of the point), read from its digits as integers; null
    elsewhere, for the caller's own reading of the text. ``<count>__int`` (when ``count``
    names a field) is its value as Int64 where the text is 1 to 15 ASCII digits, else null.

    The file is read in ``parts`` runs of lines, one thread each (by default four runs a
    CPU and one thread per CPU, for files of 8 MB or more; one run below); the columns are
    Arrow string views into ``data``.
    """
    kernels = _kernels()
    buffer = np.frombuffer(data, dtype=np.uint8)
    names = [*fields, "fee", "fees"]
    encoded = [n.encode() for n in names]
    keys = np.frombuffer(b"".join(encoded), dtype=np.uint8) if any(encoded) else np.zeros(0, np.uint8)
    koff = np.zeros(len(names) + 1, dtype=np.int64)
    koff[1:] = np.cumsum([len(k) for k in encoded])
    wanted = np.array([f in required for f in fields], dtype=np.bool_)
    table, chain = _key_table(encoded)
    threads = _threads() if len(data) >= 8 << 20 else 1
    # Four runs a thread: a thread the machine holds back leaves its runs to the others.
    cuts = _cuts(data, parts or (4 * threads if threads > 1 else 1))
    spans = list(zip(cuts, cuts[1:]))
    with ThreadPoolExecutor(len(spans) if parts else min(len(spans), threads)) as pool:  # the kernels let go of the GIL
        words = np.frombuffer(data, dtype=np.uint64, count=len(data) // 8)
        each = [int(n) for n in pool.map(lambda span: kernels.newlines(buffer, words, *span), spans)]
        nlines = sum(each) + 1
        frame, back = _scan(kernels, pool, buffer, data, cuts, each, nlines, fields, keys, koff, table, chain, wanted, raw_when_null,
                            list(decimals), count)
    return frame, back


def _scan(kernels, pool, buffer, data, cuts, each, nlines, fields, keys, koff, table, chain, wanted, raw_when_null, decimals, count):
    """:func:`scan_lines` once the lines are counted (``each``: how many ``\\n`` from each cut)."""
    width = len(fields) + 2
    status = np.full(nlines, _BACK, dtype=np.int8)
    line_start = np.zeros(nlines, dtype=np.int64)
    line_end = np.zeros(nlines, dtype=np.int64)
    line32 = np.zeros((nlines, 4), dtype=np.int32)
    views32 = np.zeros((width, nlines, 4), dtype=np.int32)
    kind = np.zeros((width, nlines), dtype=np.int8)
    line8, views8 = line32.view(np.uint8), views32.view(np.uint8)
    names = [*fields, "fee_cost", "fee_currency"]
    slots = np.full(width, -1, dtype=np.int64)
    for slot, name in enumerate(decimals):
        slots[names.index(name)] = slot
    whole = np.zeros((len(decimals), nlines), dtype=np.int64)
    fraction = np.zeros((len(decimals), nlines), dtype=np.int64)
    exact = np.zeros((len(decimals), nlines), dtype=np.bool_)
    count_field = -1 if count is None else list(fields).index(count)
    counted = np.zeros(nlines if count is not None else 0, dtype=np.bool_)
    counts = np.zeros(nlines if count is not None else 0, dtype=np.int64)

    firsts = np.cumsum([0, *each[:-1]])
    runs = [(pos, int(line0), lines) for pos, line0, lines in zip(cuts, firsts, [*each[:-1], each[-1] + 1])]

    def run(part: tuple[int, int, int]) -> None:
        pos, line0, lines = part
        kernels.scan(buffer, pos, line0, lines, keys, koff, table, chain, len(fields), wanted, status, line_start, line_end,
                     line32, line8, views32, views8, kind, slots, whole, fraction, exact, count_field, counted, counts)

    list(pool.map(run, runs))
    back_rows = np.flatnonzero(status == _BACK)
    back = [(int(r) + 1, data[line_start[r] : line_end[r]].decode("utf-8")) for r in back_rows]
    read = np.flatnonzero(status == _READ)
    # Usually every line but a last empty one is read: then the kernel's columns are sliced, not gathered.
    rows = slice(0, len(read)) if len(read) == 0 or read[-1] == len(read) - 1 else read
    views32, kind, line32 = views32[:, rows], kind[:, rows], line32[rows]
    whole, fraction, exact = whole[:, rows], fraction[:, rows], exact[:, rows]
    if count is not None:
        counted, counts = counted[rows], counts[rows]
    step = kernels.STEP
    buffers = [pa.py_buffer(data)[at : at + 2 * step] for at in range(0, max(len(data), 1), step)]
    columns = {"source_row": pl.Series("source_row", read + 1, dtype=pl.Int64)}
    present = kind >= _STRING
    raw_take = np.ones(len(read), dtype=np.bool_) if raw_when_null is None else ~present[list(fields).index(raw_when_null)]
    columns["raw"] = _text_column("raw", line32, raw_take, buffers)
    for j, name in enumerate(names):
        columns[name] = _text_column(name, views32[j], present[j], buffers)
    for slot, name in enumerate(decimals):
        columns[f"{name}__value"] = _decimal_column(f"{name}__value", whole[slot], fraction[slot], exact[slot])
    if count is not None:
        columns[f"{count}__int"] = pl.Series(f"{count}__int", counts).scatter(np.flatnonzero(~counted), None)
    return pl.DataFrame(columns), back


def _decimal_column(name: str, whole: np.ndarray, fraction: np.ndarray, exact: np.ndarray) -> pl.Series:
    """``whole + fraction * 1e-18`` as ``Decimal(38, 18)``, null where not ``exact``: the whole
    part cast (exactly) by Polars, the fraction as Arrow decimal128 units (its 128 bits: the
    int64, then its sign)."""
    units = np.empty((len(fraction), 2), dtype=np.int64)
    units[:, 0] = fraction
    units[:, 1] = fraction >> 63
    validity = pa.py_buffer(np.packbits(exact, bitorder="little"))
    nulls = int(len(exact) - np.count_nonzero(exact))
    part = pl.from_arrow(pa.Array.from_buffers(pa.decimal128(38, 18), len(exact), [validity, pa.py_buffer(units)], nulls))
    return (pl.Series(whole).cast(DECIMAL) + part).alias(name)
