"""Shards of books (``utl stream --shard I/N``): bookers of different shards book side by
side, each only its own books; two bookers of one shard cannot interleave; the shard count
of a consumer does not change under it."""

from __future__ import annotations

import signal

import psycopg

from tests.stream.helpers import ACCOUNTS, Booker, encoded, env_for, make_fills, publish, wait_offset, write_landing
from tests.stream.test_faults import assert_equals_the_batch
from utl.stream.shard import Shard, book_shard


def accounts_booked(pg_url: str) -> set[tuple[str, str]]:
    with psycopg.connect(pg_url) as conn:
        return set(conn.execute("SELECT DISTINCT venue, account FROM utl.stream_fills").fetchall())


def test_shard_parsing_and_names():
    assert Shard.parse("2/4") == Shard(2, 4) and Shard.parse("1/1").whole
    assert Shard(2, 4).consumer("utl-stream") == "utl-stream[2/4]" and Shard().consumer("utl-stream") == "utl-stream"
    for bad in ("0/2", "3/2", "2", "a/b"):
        try:
            Shard.parse(bad)
        except ValueError:
            continue
        raise AssertionError(bad)
    # Every book lands in exactly one shard, the same one each time it is asked.
    for book in ("binance/mm1", "okx/desk", "bybit/api", "desk-a"):
        assert [Shard(i, 3).owns(book) for i in (1, 2, 3)].count(True) == 1
        assert book_shard(book, 3) == book_shard(book, 3)


def test_two_shards_book_side_by_side_and_one_shard_has_one_writer(pg_url, nats_url, tmp_path):
    fills = make_fills(2000, seed=11)
    landing = write_landing(tmp_path / "landing", fills)
    messages = encoded(fills)
    env = env_for(pg_url, nats_url)
    books = {pair: book_shard(f"{pair[0]}/{pair[1]}", 2) for pair in ACCOUNTS}
    first = {pair for pair, shard in books.items() if shard == 1}
    assert first and first != set(ACCOUNTS)  # the three accounts fall in both shards

    one = Booker("--landing", str(landing), "--shard", "1/2", "--batch", "200", env=env)
    one.wait_ready()
    last = publish(nats_url, messages[:1000])
    wait_offset(pg_url, last, consumer="utl-stream[1/2]")
    # Shard 1 read every message and booked only its own books' fills.
    assert accounts_booked(pg_url) == first

    two = Booker("--landing", str(landing), "--shard", "2/2", "--batch", "200", env=env)
    two.wait_ready()
    last = publish(nats_url, messages[1000:])
    wait_offset(pg_url, last, consumer="utl-stream[1/2]")
    wait_offset(pg_url, last, consumer="utl-stream[2/2]")
    assert accounts_booked(pg_url) == set(ACCOUNTS)

    # A second writer of shard 2 waits for the first's lock, then gives up: it never books.
    again = Booker("--landing", str(landing), "--shard", "2/2", env=env)
    assert again.process.wait(120) == 1
    assert any("another booker holds consumer 'utl-stream[2/2]'" in line for line in again.err), again.err
    # Three shards over books committed in two would book some fills twice: refused.
    other = Booker("--landing", str(landing), "--shard", "3/3", env=env)
    assert other.process.wait(120) == 1
    assert any("has committed with 2 shard(s), not 3" in line for line in other.err), other.err

    assert one.stop(signal.SIGTERM) == 0, one.err
    assert two.stop(signal.SIGTERM) == 0, two.err
    # Together the shards booked each fill once, as the batch does over the same fills.
    assert_equals_the_batch(pg_url, landing, 2000)
