"""A quick commit writes its COPY data as text itself (:func:`utl.stream.store.copy_text`):
what the server reads from it is what it reads from psycopg's ``write_row`` of the same rows,
value for value and digit for digit (a numeric's scale included), whatever the texts hold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utl.stream.store import copy_text

COLUMNS = "landing text, name text, amount numeric, at timestamptz, day date, flag boolean, seq bigint"

texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12) | st.sampled_from(
    ["", "\\N", "\\", "a\tb", "line\nend", "cr\rhere", "o'brien", "café", "\\t", "BTC/USDT:USDT"])
amounts = st.decimals(allow_nan=False, allow_infinity=False, places=18, min_value=-10**19, max_value=10**19) | \
    st.sampled_from([Decimal("1E+1"), Decimal("0E-18"), Decimal("-0"), Decimal("-0.000000000000000001"),
                     Decimal("123.450000000000000000")])
times = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2100, 1, 1),
                     timezones=st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30))]))
rows = st.lists(st.tuples(st.none() | texts, st.none() | amounts, st.none() | times, st.none() | st.dates(
    min_value=dt.date(1970, 1, 1), max_value=dt.date(2100, 1, 1)), st.none() | st.booleans(),
    st.none() | st.integers(-2**63, 2**63 - 1)), min_size=1, max_size=20)


def test_copy_text_reads_back_as_write_row_writes(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table in ("ours", "theirs"):
            conn.execute(f"CREATE TABLE {table} (n serial, {COLUMNS})")

        @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(rows=rows, key=texts)
        def check(rows, key):
            for table in ("ours", "theirs"):
                conn.execute(f"TRUNCATE {table} RESTART IDENTITY")
            names = "landing, name, amount, at, day, flag, seq"
            with conn.cursor() as cursor:
                with cursor.copy(f"COPY ours ({names}) FROM STDIN") as copy:
                    copy.write(copy_text(rows, key))
                with cursor.copy(f"COPY theirs ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row((key, *row))
            read = "SELECT landing, name, amount::text, at, day, flag, seq FROM {} ORDER BY n"
            ours = conn.execute(read.format("ours")).fetchall()
            assert ours == conn.execute(read.format("theirs")).fetchall()
            assert [r[1] for r in ours] == [r[0] for r in rows] and {r[0] for r in ours} == {key}

        check()


def test_copy_text_of_no_key_and_a_batch_row():
    """Without a key the rows lead; the types a quick batch's rows hold, as COPY reads them."""
    at = dt.datetime(2024, 3, 5, 9, 0, 0, 717000, tzinfo=dt.timezone.utc)
    row = ("binance", "a\tb", Decimal("-0.5"), at, dt.date(2024, 3, 5), True, 42, None)
    assert copy_text([row]) == "binance\ta\\tb\t-0.5\t2024-03-05T09:00:00.717000+00:00\t2024-03-05\tt\t42\t\\N\n"
    assert copy_text([row, row], "k\\") == ("k\\\\\t" + copy_text([row])) * 2
