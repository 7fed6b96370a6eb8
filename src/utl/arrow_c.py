"""Decimal columns' 128-bit words to and from numpy through the Arrow C data interface.

Polars hands a column to another library, and takes one from it, as two C structs
(``ArrowArray``, ``ArrowSchema``: https://arrow.apache.org/docs/format/CDataInterface.html).
Spoken here with :mod:`ctypes`, that reads a ``Decimal(38, 18)`` column's words in place and
wraps numpy's words as a column without a copy, as ``pyarrow`` did for :mod:`utl.scaled`, but
without loading ``pyarrow`` (33 MB resident, 0.14 s), which nothing else on the costing
path needs.

Both directions keep the memory alive exactly as long as it is used:

- read: the numpy view holds the exported structs, and releases them (Polars' own callback)
  when the view and every array made from it are gone;
- write: the words are held in :data:`_LENT` under a key carried by the array, and let go
  when Polars calls the release callback, i.e. when the last column holding them is gone
  (the same life cycle as a ``pyarrow`` buffer made from a numpy array). The callback is
  kept for the process's life: Polars may release a column while the interpreter tears
  its modules down.
"""

from __future__ import annotations

import ctypes
import itertools
import sys
import threading

import numpy as np
import polars as pl

from utl.decimals import DECIMAL, PRECISION, SCALE

_FORMAT = f"d:{PRECISION},{SCALE}".encode()  # decimal128(38, 18), 16 little-endian bytes a value
_NULLABLE = 2


class _Schema(ctypes.Structure):
    _fields_ = [
        ("format", ctypes.c_char_p),
        ("name", ctypes.c_char_p),
        ("metadata", ctypes.c_char_p),
        ("flags", ctypes.c_int64),
        ("n_children", ctypes.c_int64),
        ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


class _Array(ctypes.Structure):
    _fields_ = [
        ("length", ctypes.c_int64),
        ("null_count", ctypes.c_int64),
        ("offset", ctypes.c_int64),
        ("n_buffers", ctypes.c_int64),
        ("n_children", ctypes.c_int64),
        ("buffers", ctypes.POINTER(ctypes.c_void_p)),
        ("children", ctypes.c_void_p),
        ("dictionary", ctypes.c_void_p),
        ("release", ctypes.c_void_p),
        ("private_data", ctypes.c_void_p),
    ]


_ReleaseArray = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Array))
_ReleaseSchema = ctypes.CFUNCTYPE(None, ctypes.POINTER(_Schema))


# ---------------------------------------------------------------------------------------
# Polars -> numpy
# ---------------------------------------------------------------------------------------


_finalizing = sys.is_finalizing  # held here: the name ``sys`` may be gone by then


class _Exported:
    """A column exported by Polars: released (Polars' callbacks) when this is collected."""

    def __init__(self) -> None:
        self.array = _Array()
        self.schema = _Schema()

    def __del__(self) -> None:
        if _finalizing():  # the interpreter is tearing modules down, ctypes too: the process ends anyway
            return
        for struct, kind in ((self.array, _ReleaseArray), (self.schema, _ReleaseSchema)):
            if struct.release:
                kind(struct.release)(ctypes.byref(struct))


# The two calls below are Polars' private ones (``_export_arrow_to_c``, ``_import_arrow_from_c``,
# whose argument order differs from its docstring): they are used with the Polars minor version
# they were tested with; any other version takes pyarrow's public path (the same words, a
# few MB and ~0.1 s more), never a guess at a private signature.
TESTED_POLARS = (2, 1)
SPOKEN = tuple(int(part) for part in pl.__version__.split(".")[:2]) == TESTED_POLARS


def export(values: pl.Series) -> _Exported:
    """A one-chunk series exported by Polars (its format, buffers and counts readable)."""
    exported = _Exported()
    values._export_arrow_to_c(ctypes.addressof(exported.array), ctypes.addressof(exported.schema))
    return exported


def sixteen_byte_values(exported: _Exported) -> np.ndarray:
    """Buffer 1 of an export whose values take 16 bytes each (decimal128 words, string
    views), ``(n, 2)`` ``uint64``, read-only, read in place: the array keeps the export, and
    so Polars' buffer, alive."""
    start, n = exported.array.offset, exported.array.length
    address = exported.array.buffers[1]
    if n == 0 or not address:
        return np.zeros((0, 2), np.uint64)
    memory = (ctypes.c_uint64 * (2 * (start + n))).from_address(address)
    memory._exported = exported
    words = np.frombuffer(memory, np.uint64)[2 * start:].reshape(n, 2)
    words.flags.writeable = False  # Polars' memory: never written through
    return words


def decimal_words_of_chunk(values: pl.Series) -> np.ndarray:
    """The words of a one-chunk ``Decimal(38, 18)`` series, ``(n, 2)`` ``uint64`` (low,
    high), read-only, read in place."""
    if not SPOKEN:
        return _words_by_pyarrow(values)
    exported = export(values)
    if exported.schema.format != _FORMAT or exported.array.n_buffers != 2:
        raise TypeError(f"expected a Decimal({PRECISION}, {SCALE}) column, got format {exported.schema.format!r}")
    return sixteen_byte_values(exported)


# ---------------------------------------------------------------------------------------
# numpy -> Polars
# ---------------------------------------------------------------------------------------

_LENT: dict[int, tuple] = {}  # key -> (words, buffer pointers, schema) while Polars holds them
_lent_lock = threading.Lock()
_keys = itertools.count(1)


def _release_array(array) -> None:
    with _lent_lock:
        _LENT.pop(array.contents.private_data or 0, None)
    array.contents.release = None


def _release_schema(schema) -> None:
    schema.contents.release = None


_RELEASE_ARRAY = _ReleaseArray(_release_array)
_RELEASE_SCHEMA = _ReleaseSchema(_release_schema)
# Never collected, so a column released while modules are torn down still finds them.
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_RELEASE_ARRAY))
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_RELEASE_SCHEMA))
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_LENT))


def decimal_from_words(words: np.ndarray, name: str = "") -> pl.Series:
    """A ``Decimal(38, 18)`` series over ``(n, 2)`` ``uint64`` words (no copy); every value
    must lie within 38 digits (the kernels that fill words check it)."""
    words = np.ascontiguousarray(words, dtype=np.uint64)
    if words.ndim != 2 or words.shape[1] != 2:
        raise ValueError("words must be an (n, 2) array")
    if not SPOKEN:
        return _series_by_pyarrow(words, name)
    if len(words) == 0:
        return pl.Series(name, [], dtype=DECIMAL)
    return _lent_series(name, _FORMAT, len(words), [None, words.ctypes.data], (words,))


def _lent_series(name: str, fmt: bytes, length: int, addresses: list[int | None], held: tuple) -> pl.Series:
    """A series Polars takes over the buffers at ``addresses`` (Arrow C data interface, no
    copy, no nulls); ``held`` (the arrays owning them) is kept until Polars releases it."""
    key = next(_keys)
    buffers = (ctypes.c_void_p * len(addresses))(*addresses)
    schema = _Schema(format=fmt, name=name.encode(), flags=_NULLABLE,
                     release=ctypes.cast(_RELEASE_SCHEMA, ctypes.c_void_p))
    array = _Array(length=length, null_count=0, offset=0, n_buffers=len(addresses), n_children=0, buffers=buffers,
                   release=ctypes.cast(_RELEASE_ARRAY, ctypes.c_void_p), private_data=key)
    with _lent_lock:
        _LENT[key] = (*held, buffers, schema)
    try:
        # Pairs of (schema, array) addresses, whatever Polars' docstring says: its code reads the
        # schema first (a test holds the round trip).
        series = pl.Series._import_arrow_from_c(name, [(ctypes.addressof(schema), ctypes.addressof(array))])
    except BaseException:
        if array.release:  # not taken: nothing will release it
            with _lent_lock:
                _LENT.pop(key, None)
        raise
    if schema.release:
        _release_schema(ctypes.pointer(schema))
    return series


# ---------------------------------------------------------------------------------------
# The public path, for a Polars version these private calls were not tested with
# ---------------------------------------------------------------------------------------


def _words_by_pyarrow(values: pl.Series) -> np.ndarray:
    import pyarrow as pa

    arr = values.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if len(arr) == 0:
        return np.zeros((0, 2), np.uint64)
    words = np.frombuffer(arr.buffers()[1], dtype=np.uint64)
    return words[2 * arr.offset: 2 * (arr.offset + len(arr))].reshape(-1, 2)


def _series_by_pyarrow(words: np.ndarray, name: str) -> pl.Series:
    import pyarrow as pa

    arr = pa.Array.from_buffers(pa.decimal128(PRECISION, SCALE), len(words), [None, pa.py_buffer(words)])
    return pl.Series(name, arr, dtype=DECIMAL)


# ---------------------------------------------------------------------------------------
# String views -> Polars
# ---------------------------------------------------------------------------------------

_VIEWS_FORMAT = b"vu"  # utf8 view: buffers validity, views, data buffer(s), their sizes (int64)


def strings_from_views(views: np.ndarray, data: np.ndarray, size: int, keep: object, name: str = "") -> pl.Series | None:
    """A ``String`` series over Arrow string views (no copy): ``views`` ``(n, 16)`` uint8,
    16-byte aligned (length; up to 12 bytes inline, zero-padded, or 4 bytes of prefix, buffer
    0, offset), every view's bytes within ``data[:size]`` and ASCII (Polars takes the buffers
    unchecked). ``views``, ``data`` and ``keep`` are held until Polars releases the column.
    None for a Polars version these private calls were not tested with (the caller reads
    the other way)."""
    if not SPOKEN or views.ndim != 2 or views.shape[1] != 16 or views.ctypes.data % 16 or not views.flags.c_contiguous:
        return None
    if len(views) == 0:
        return pl.Series(name, [], dtype=pl.String)
    sizes = np.array([size], dtype=np.int64)
    return _lent_series(name, _VIEWS_FORMAT, len(views), [None, views.ctypes.data, data.ctypes.data, sizes.ctypes.data],
                        (views, data, sizes, keep))
