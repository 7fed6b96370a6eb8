"""``regular_rows_by_words`` (8 bytes at a time) against ``regular_rows``, the rule read line
by line in plain Python: the same count, or the same -1, for any bytes, start,
separator and width; words of plain text, words with a line end, quote, ``\\r`` or 0xEF, and
the bytes before the first word boundary and after the last."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.venues._csv_kernels import regular_rows_by_words


def regular_rows(b: np.ndarray, start: int, separator: int, width: int) -> int:
    """The rule, read line by line in plain Python (the reference): the lines of ``b[start:]``
    (a last one without its line end counting), each a row of exactly ``width`` cells split
    by ``separator``, a quoted cell whole (opening at its start, ``""`` inside, closing at
    its end), no blank line, no ``\r`` or byte 0xEF anywhere; else -1."""
    body = bytes(b[start:])
    if b"\r" in body or b"\xef" in body:
        return -1
    if not body:
        return 0
    sep = bytes([separator])
    cell = re.compile(rb'"(?:[^"]|"")*"|[^"' + re.escape(sep) + rb"]*")
    lines = body.split(b"\n")
    if body.endswith(b"\n"):
        lines.pop()
    for line in lines:
        if not line:
            return -1
        at, cells = 0, 0
        while True:
            at = cell.match(line, at).end()
            cells += 1
            if at == len(line):
                break
            if line[at : at + 1] != sep:
                return -1
            at += 1
        if cells != width:
            return -1
    return len(lines)


def _aligned(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``data`` in an 8-byte aligned array (as a mapped file is), and its whole words."""
    buffer = np.zeros(len(data) + 16, dtype=np.uint8)
    at = (-buffer.ctypes.data) % 8
    text = buffer[at : at + len(data)]
    text[:] = np.frombuffer(data, dtype=np.uint8)
    return text, text[: len(text) // 8 * 8].view(np.uint64)


def _both(data: bytes, start: int, separator: str, width: int) -> tuple[int, int]:
    text, words = _aligned(data)
    return regular_rows(text, start, ord(separator), width), regular_rows_by_words(text, words, start, ord(separator), width)


PIECES = st.sampled_from(["a", "bc", "xyzwvuts", "1234567890123", ",", ",", ";", '"', '""', "\n", "\n", "\r", "\ufeff", " ", '"a,b"', "é"])


@settings(max_examples=3000, deadline=None)
@given(pieces=st.lists(PIECES, max_size=40), start=st.integers(0, 9), separator=st.sampled_from([",", ";"]), width=st.integers(1, 5))
def test_any_bytes_count_as_the_rule_says(pieces: list[str], start: int, separator: str, width: int) -> None:
    data = "".join(pieces).encode("utf-8")
    old, new = _both(data, min(start, len(data)), separator, width)
    assert new == old


CELLS = st.sampled_from(["", "1", "12.5", "abcdefghijklmnop", '"q,r"', '"s ""t"""', "2024-03-05 09:15:02", '"', "\r", "\ufeff"])


@settings(max_examples=1500, deadline=None)
@given(rows=st.lists(st.lists(CELLS, min_size=1, max_size=5), max_size=12), width=st.integers(1, 5),
       end=st.sampled_from(["\n", ""]), start=st.integers(0, 8))
def test_rows_of_cells_count_as_a_byte_at_a_time(rows: list[list[str]], width: int, end: str, start: int) -> None:
    # Mostly rows of the right width (regular files), some not: both answers must agree.
    data = ("h" * start + "\n".join(",".join(cells) for cells in rows) + end).encode("utf-8")
    old, new = _both(data, start, ",", width)
    assert new == old


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 1000])
def test_a_regular_file_is_counted(rows: int) -> None:
    line = "2024-03-05 09:15:02,BTC,1.25000000,\"1,300.50\",,x\n"
    for end in ("", "tail"):  # with and without a last line lacking its line end
        data = ("UID: 1\n" + line * rows + (line.rstrip("\n") if end else "")).encode()
        old, new = _both(data, len("UID: 1\n"), ",", 6)
        assert new == old == rows + (1 if end else 0)
    # One cell short in the last row, then in the first: not regular.
    assert _both(("a,b,c\n" * rows + "a,b\n").encode(), 0, ",", 3) == (-1, -1)
    assert _both(("a,b\n" + "a,b,c\n" * rows).encode(), 0, ",", 3) == (-1, -1)
