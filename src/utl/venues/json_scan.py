"""JSON lines into text columns in one compiled pass over the file's bytes.

A ccxt pull is a file of JSON objects, one per line; a reader needs a dozen top-level values
of each as text, numbers exactly as written (never a float). :func:`scan_lines` walks the
bytes once (numba), checking every line against the JSON grammar as ``json.loads`` applies it
and noting where each wanted top-level value starts and ends; the values then become Polars
text columns without a Python object per cell.

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

from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa

MAX_DEPTH = 64  # as utl.venues._json_kernels: deeper lines are handed back

# Line status and value kinds, as the kernels write them.
_READ, _BLANK, _BACK = 0, 1, 2
_ABSENT, _NULL, _STRING, _NUMBER, _OTHER = 0, 1, 2, 3, 4


def _compile():
    """The kernels, loaded on first use (numba's on-disk cache spares later processes the compiling)."""
    from utl.venues import _json_kernels as k

    return k.scan, k.gather


def _text_column(name: str, buffer: np.ndarray, starts: np.ndarray, ends: np.ndarray, present: np.ndarray) -> pl.Series:
    """A Utf8 column of slices of ``buffer`` (valid UTF-8 cut at ASCII delimiters), null where not ``present``."""
    _, gather = _compile()
    data, offsets = gather(buffer, starts, ends, present)
    validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    nulls = int(len(present) - np.count_nonzero(present))
    array = pa.LargeStringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(data), validity, nulls)
    return pl.from_arrow(array).alias(name)


def scan_lines(data: bytes, fields: Sequence[str], required: set[str], raw_when_null: str | None = None,
               ) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """(frame, lines handed back) for the UTF-8 text ``data`` (BOM removed), split on ``\\n``.

    The frame holds the lines read here, in file order: ``source_row`` (the 1-based line
    number), ``raw`` (the line, ``\\r`` stripped; only where the field ``raw_when_null`` is
    null when that is given, as ids built from the line need it there alone), each of
    ``fields`` as text, and ``fee_cost``, ``fee_currency``. Blank lines are skipped; the
    lines handed back are ``(line number, line)``, in file order.
    """
    scan, _ = _compile()
    buffer = np.frombuffer(data, dtype=np.uint8)
    names = [*fields, "fee", "fees"]
    encoded = [n.encode() for n in names]
    keys = np.frombuffer(b"".join(encoded), dtype=np.uint8) if any(encoded) else np.zeros(0, np.uint8)
    koff = np.zeros(len(names) + 1, dtype=np.int64)
    koff[1:] = np.cumsum([len(k) for k in encoded])
    wanted = np.array([f in required for f in fields], dtype=np.bool_)
    nlines = data.count(b"\n") + 1
    status, line_start, line_end, vs, ve, kind = scan(buffer, nlines, keys, koff, len(fields), wanted)
    back_rows = np.flatnonzero(status == _BACK)
    back = [(int(r) + 1, data[line_start[r] : line_end[r]].decode("utf-8")) for r in back_rows]
    read = np.flatnonzero(status == _READ)
    # Usually every line but a last empty one is read: then the kernel's columns are sliced, not gathered.
    rows = slice(0, len(read)) if len(read) == 0 or read[-1] == len(read) - 1 else read
    vs, ve, kind = vs[:, rows], ve[:, rows], kind[:, rows]
    line_start, line_end = line_start[rows], line_end[rows]
    columns = {"source_row": pl.Series("source_row", read + 1, dtype=pl.Int64)}
    names = [*fields, "fee_cost", "fee_currency"]
    present = kind >= _STRING
    raw_take = np.ones(len(read), dtype=np.bool_) if raw_when_null is None else ~present[list(fields).index(raw_when_null)]
    columns["raw"] = _text_column("raw", buffer, line_start, line_end, raw_take)
    for k, name in enumerate(names):
        columns[name] = _text_column(name, buffer, vs[k], ve[k], present[k])
    return pl.DataFrame(columns), back
