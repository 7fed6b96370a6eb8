"""bench/stream.py's load is the contract's: fills over 1,000 books x 200 assets, all of them."""

from __future__ import annotations

import collections
import importlib.util
from pathlib import Path

# Loaded from its file: the name "stream" is this test package's.
_SPEC = importlib.util.spec_from_file_location("bench_stream", Path(__file__).resolve().parents[2] / "bench" / "stream.py")
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def test_a_million_fills_reach_every_book_and_asset_about_as_often():
    counts = collections.Counter(bench.book_and_asset(i) for i in range(1_000_000))
    assert len(counts) == bench.BOOKS * bench.ASSETS == 200_000
    assert max(counts.values()) <= 2 * min(counts.values())


def test_a_batch_of_consecutive_fills_touches_as_many_keys_as_fills():
    assert len({bench.book_and_asset(i) for i in range(20_000)}) == 20_000


def test_a_fill_names_its_book_as_account_and_asset_as_symbol():
    book, asset = bench.book_and_asset(12345)
    subject, data = bench.fill(12345, 0.0)
    assert subject == f"utl.fills.v{book % bench.VENUES}.b{book}"
    assert f'"symbol": "A{asset}/USD"'.encode() in data
