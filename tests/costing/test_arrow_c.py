"""The Arrow C data interface of utl.arrow_c: words read in place and lent without a copy,
each kept alive exactly as long as a column or view uses it, and no pyarrow loaded."""

from __future__ import annotations

import gc
import subprocess
import sys
from decimal import Decimal as D

import numpy as np
import polars as pl

from utl import arrow_c
from utl.decimals import DECIMAL
from utl.scaled import decimal_from_words, decimal_word_chunks, decimal_words


def test_lent_words_live_as_long_as_a_column_holds_them():
    words = np.array([[5, 0], [2**64 - 1, 2**64 - 1]], np.uint64)
    lent = len(arrow_c._LENT)
    column = decimal_from_words(words, "v")
    frame = pl.DataFrame({"a": [1, 2]}).with_columns(column)
    del column, words
    gc.collect()
    assert len(arrow_c._LENT) == lent + 1  # the frame still reads them
    assert frame["v"].to_list() == [D("0.000000000000000005"), D("-0.000000000000000001")]
    assert frame.schema["v"] == DECIMAL and frame["v"].null_count() == 0
    del frame
    gc.collect()
    assert len(arrow_c._LENT) == lent  # released by Polars, let go here


def test_words_read_in_place_outlive_their_series_and_are_read_only():
    series = pl.Series([D("1.5"), D("-2")], dtype=DECIMAL)
    words = decimal_words(series)
    del series
    gc.collect()
    assert not words.flags.writeable
    assert words.tolist() == [[1_500_000_000_000_000_000, 0], [2**64 - 2 * 10**18, 2**64 - 1]]


def test_chunks_are_read_each_in_place():
    series = pl.concat([pl.Series([D("1")], dtype=DECIMAL), pl.Series([D("2"), D("3")], dtype=DECIMAL)], rechunk=False)
    chunks = decimal_word_chunks(series)
    assert [c[:, 0].tolist() for c in chunks] == [[10**18], [2 * 10**18, 3 * 10**18]]
    assert decimal_from_words(np.zeros((0, 2), np.uint64)).dtype == DECIMAL


def test_the_costing_engine_loads_neither_pyarrow_nor_pandera():
    code = (
        "import sys, polars as pl; from decimal import Decimal as D\n"
        "from utl.costing import compute_costs\n"
        "t = pl.DataFrame({'book': ['b', 'b'], 'asset': ['x', 'x'], 'ts': pl.Series([0, 1], dtype=pl.Datetime('us', 'UTC')),"
        " 'trade_id': ['1', '2'], 'qty': pl.Series([D('1'), D('-0.5')], dtype=pl.Decimal(38, 18)),"
        " 'price': pl.Series([D('10'), D('12')], dtype=pl.Decimal(38, 18))})\n"
        "r = compute_costs(t, 'fifo')\n"
        "assert r.realized['realized_pnl'].to_list() == [D(0), D(1)], r.realized\n"
        "print('pyarrow' in sys.modules, 'pandera' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


def test_another_polars_version_takes_pyarrow_s_path_with_the_same_words(monkeypatch):
    # A Polars minor version the private calls were not tested with never reaches them.
    series = pl.Series([D("1.5"), D("-2"), None, D("12345678901234567890.123456789012345678")], dtype=DECIMAL)
    spoken_words = decimal_words(series).copy()
    spoken_back = decimal_from_words(spoken_words, "v")
    monkeypatch.setattr(arrow_c, "SPOKEN", False)

    def private(*args, **kwargs):
        raise AssertionError("a private Polars call on an untested version")

    monkeypatch.setattr(pl.Series, "_export_arrow_to_c", private)
    monkeypatch.setattr(pl.Series, "_import_arrow_from_c", private)
    words = decimal_words(series)
    assert words.tolist() == spoken_words.tolist()
    back = decimal_from_words(words.copy(), "v")
    assert back.equals(spoken_back) and back.to_list()[:2] == [D("1.5"), D("-2")]
    assert "pyarrow" in sys.modules
