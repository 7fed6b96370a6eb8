"""replace_rows and read_frame: slices replaced atomically, every digit kept."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from decimal import Decimal, localcontext

import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import workers
from utl.decimals import DECIMAL
from utl.store import connect, read_frame, replace_rows

D1 = dt.date(2024, 5, 1)
D2 = dt.date(2024, 5, 2)
JUNE = dt.date(2024, 6, 30)

EXTREMES = ["0.000000000000000001", "12345678901234567890.123456789012345678", "-99999999999999999999.999999999999999999", "0"]


def positions(day: dt.date, assets: list[str], qtys: list[str], venue: str = "binance") -> pl.DataFrame:
    """Positions of one day, numbers from their text (never through a float)."""
    n = len(assets)
    return pl.DataFrame(
        {
            "business_date": pl.Series([day] * n, dtype=pl.Date),
            "venue": pl.Series([venue] * n, dtype=pl.String),
            "account": pl.Series(["mm-1"] * n, dtype=pl.String),
            "asset": pl.Series(assets, dtype=pl.String),
            "qty": pl.Series(qtys, dtype=pl.String).str.to_decimal(scale=18),
            "mark": pl.Series(["65000.5"] * n, dtype=pl.String).str.to_decimal(scale=18),
            "landing": pl.Series(["/srv/landing"] * n, dtype=pl.String),  # in every key since 008_landing_keys
        },
    ).with_columns(pl.col("qty", "mark").cast(DECIMAL))


def stored(conn: psycopg.Connection, where: str = "TRUE") -> list[tuple]:
    """Rows as PostgreSQL's own text: independent of read_frame."""
    return conn.execute(
        f"SELECT business_date::text, venue, asset, qty::text, mark::text FROM utl.positions WHERE {where}"
        " ORDER BY 1, 2, 3"
    ).fetchall()


@pytest.fixture
def conn(migrated_database: str):
    with connect(migrated_database) as conn:
        yield conn


def test_replace_touches_only_the_slice(conn: psycopg.Connection) -> None:
    replace_rows(conn, "utl.positions", positions(D1, ["BTC", "ETH"], ["1", "2"]), where={"business_date": D1})
    replace_rows(conn, "utl.positions", positions(D2, ["BTC"], ["3"]), where={"business_date": D2})
    day2_before = stored(conn, "business_date = '2024-05-02'")

    written = replace_rows(conn, "utl.positions", positions(D1, ["SOL"], ["4.5"]), where={"business_date": D1})

    assert written == 1
    assert stored(conn, "business_date = '2024-05-01'") == [("2024-05-01", "binance", "SOL", "4.500000000000000000", "65000.500000000000000000")]
    assert stored(conn, "business_date = '2024-05-02'") == day2_before


def test_slice_by_several_columns_lists_and_null(conn: psycopg.Connection) -> None:
    replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["1"], venue="binance"), where={})
    replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["2"], venue="kraken"), where={"business_date": D1, "venue": "kraken"})
    assert [r[1:4] for r in stored(conn)] == [("binance", "BTC", "1.000000000000000000"), ("kraken", "BTC", "2.000000000000000000")]

    replace_rows(conn, "utl.positions", positions(D1, ["ETH"], ["5"], venue="okx"), where={"venue": ["kraken", "okx"]})
    assert [r[1:3] for r in stored(conn)] == [("binance", "BTC"), ("okx", "ETH")]

    frame = positions(D1, ["XRP"], ["7"]).with_columns(book=pl.lit(None, pl.String))
    replace_rows(conn, "utl.positions", frame, where={"book": None})  # every row has book null
    assert [r[1:3] for r in stored(conn)] == [("binance", "XRP")]


def test_numbers_round_trip_exactly(conn: psycopg.Connection) -> None:
    frame = positions(D1, ["A", "B", "C", "D"], EXTREMES)
    replace_rows(conn, "utl.positions", frame, where={"business_date": D1})
    assert [Decimal(r[3]) for r in stored(conn)] == [Decimal(t) for t in EXTREMES]
    back = read_frame(conn, "SELECT * FROM utl.positions ORDER BY asset")
    assert back.schema["qty"] == DECIMAL and back.schema["market_value"] == DECIMAL
    assert back.get_column("qty").cast(pl.String).to_list() == frame.get_column("qty").cast(pl.String).to_list()
    assert back.select(frame.columns).equals(frame)


def test_rerun_is_idempotent(conn: psycopg.Connection) -> None:
    frame = positions(D1, ["BTC", "ETH", "SOL"], ["1", "-2.5", "0.000000000000000001"])
    for _ in range(3):
        assert replace_rows(conn, "utl.positions", frame, where={"business_date": D1}) == 3
    assert conn.execute("SELECT count(*) FROM utl.positions").fetchone()[0] == 3
    assert read_frame(conn, "SELECT * FROM utl.positions").select(frame.columns).sort("asset").equals(frame)


def test_empty_frame_clears_the_slice(conn: psycopg.Connection) -> None:
    replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["1"]), where={"business_date": D1})
    replace_rows(conn, "utl.positions", positions(D2, ["BTC"], ["1"]), where={"business_date": D2})
    assert replace_rows(conn, "utl.positions", positions(D1, [], []), where={"business_date": D1}) == 0
    assert [r[0] for r in stored(conn)] == ["2024-05-02"]


def test_whole_table_replace(conn: psycopg.Connection) -> None:
    replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["1"]), where={})
    replace_rows(conn, "utl.positions", positions(D2, ["ETH"], ["2"]), where={})
    assert [(r[0], r[2]) for r in stored(conn)] == [("2024-05-02", "ETH")]


def test_rows_outside_the_slice_are_refused_and_nothing_changes(conn: psycopg.Connection) -> None:
    replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["1"]), where={"business_date": D1})
    before = stored(conn)
    mixed = pl.concat([positions(D1, ["ETH"], ["2"]), positions(D2, ["SOL"], ["3"])])
    with pytest.raises(ValueError, match="1 frame row\\(s\\) lie outside the replaced slice"):
        replace_rows(conn, "utl.positions", mixed, where={"business_date": D1})
    assert stored(conn) == before


def test_floats_and_unknown_columns_are_refused(conn: psycopg.Connection) -> None:
    floats = positions(D1, ["BTC"], ["1"]).with_columns(pl.col("qty").cast(pl.Float64))
    with pytest.raises(TypeError, match="qty \\(Float64\\)"):
        replace_rows(conn, "utl.positions", floats, where={"business_date": D1})
    with pytest.raises(ValueError, match="has no column\\(s\\) price"):
        replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["1"]).with_columns(price=pl.col("qty")), where={})
    with pytest.raises(ValueError, match="expected schema.name"):
        replace_rows(conn, "positions", positions(D1, ["BTC"], ["1"]), where={})


def test_a_failing_write_keeps_the_previous_rows(conn: psycopg.Connection) -> None:
    replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["1"]), where={"business_date": D1})
    before = stored(conn)
    duplicate_key = positions(D1, ["ETH", "ETH"], ["1", "2"])  # the primary key refuses it mid-COPY
    with pytest.raises(psycopg.errors.UniqueViolation):
        replace_rows(conn, "utl.positions", duplicate_key, where={"business_date": D1})
    assert stored(conn) == before


def test_inside_a_caller_transaction_it_rolls_back_with_it(conn: psycopg.Connection) -> None:
    replace_rows(conn, "utl.positions", positions(D1, ["BTC"], ["1"]), where={"business_date": D1})
    before = stored(conn)
    with pytest.raises(RuntimeError, match="caller gives up"):
        with conn.transaction():
            replace_rows(conn, "utl.positions", positions(D1, ["ETH"], ["9"]), where={"business_date": D1})
            assert [r[2] for r in stored(conn)] == ["ETH"]
            raise RuntimeError("caller gives up")
    assert stored(conn) == before


def test_months_get_their_own_partitions_split_by_day(conn: psycopg.Connection) -> None:
    frame = pl.concat([positions(D1, ["BTC"], ["1"]), positions(JUNE, ["BTC"], ["2"])])
    replace_rows(conn, "utl.positions", frame, where={"business_date": [D1, JUNE]})
    placed = conn.execute(
        "SELECT p.tableoid::regclass::text, i.inhparent::regclass::text, business_date::text FROM utl.positions p"
        " JOIN pg_inherits i ON i.inhrelid = p.tableoid ORDER BY 3"
    ).fetchall()
    assert placed == [
        ("utl.positions_2024_05_01", "utl.positions_2024_05", "2024-05-01"),
        ("utl.positions_2024_06_30", "utl.positions_2024_06", "2024-06-30"),
    ]
    assert conn.execute("SELECT count(*) FROM utl.positions_default").fetchone()[0] == 0


def test_breaks_table_checks_the_contract(conn: psycopg.Connection) -> None:
    row = {
        "business_date": [D1], "venue": ["binance"], "account": ["mm-1"], "asset": ["BTC"],
        "ledger_qty": ["1.5"], "venue_qty": ["1.4"], "diff": ["-0.1"], "tolerance": ["0.00000001"],
        "first_seen": [D1], "kind": ["qty_mismatch"], "landing": ["/srv/landing"],
    }
    numbers = ["ledger_qty", "venue_qty", "diff", "tolerance"]
    good = pl.DataFrame(row).with_columns(pl.col(numbers).str.to_decimal(scale=18))
    assert replace_rows(conn, "utl.breaks", good, where={"business_date": D1}) == 1
    wrong_diff = good.with_columns(diff=pl.lit(Decimal("0.1"), DECIMAL))
    with pytest.raises(psycopg.errors.CheckViolation):
        replace_rows(conn, "utl.breaks", wrong_diff, where={"business_date": D1})
    assert read_frame(conn, "SELECT diff, first_seen FROM utl.breaks").rows() == [(Decimal("-0.1"), D1)]


def test_text_survives_quotes_commas_newlines_and_empty_versus_null(conn: psycopg.Connection) -> None:
    texts = ['a,b', 'say "hi"', "two\nlines", "", None, " padded ", "\\N", "ünï"]
    frame = pl.DataFrame(
        {"file": [f"f{i}" for i in range(len(texts))], "reason": ["r"] * len(texts), "raw": texts,
         "row": list(range(len(texts))), "landing": ["/srv/landing"] * len(texts)}
    )
    replace_rows(conn, "utl.quarantine", frame, where={})
    assert conn.execute('SELECT raw FROM utl.quarantine ORDER BY "row"').fetchall() == [(t,) for t in texts]
    back = read_frame(conn, 'SELECT file, raw, "row" FROM utl.quarantine ORDER BY "row"')
    assert back.get_column("raw").to_list() == texts
    assert back.schema["row"] == pl.Int64


def test_read_frame_types(conn: psycopg.Connection) -> None:
    back = read_frame(
        conn,
        """SELECT 1::int4 AS i, true AS yes, NULL::bool AS unknown, DATE '1999-12-31' AS day,
                  TIMESTAMPTZ '2024-05-01 23:59:59.123456+02' AS at, 'x'::text AS label,
                  1.50000000000000000000000::numeric AS trailing, NULL::numeric AS missing
           WHERE %(flag)s""",
        {"flag": True},
    )
    assert back.schema == pl.Schema(
        {"i": pl.Int32, "yes": pl.Boolean, "unknown": pl.Boolean, "day": pl.Date, "at": pl.Datetime("us", "UTC"),
         "label": pl.String, "trailing": DECIMAL, "missing": DECIMAL}
    )
    assert back.row(0) == (
        1, True, None, dt.date(1999, 12, 31), dt.datetime(2024, 5, 1, 21, 59, 59, 123456, tzinfo=dt.UTC),
        "x", Decimal("1.5"), None,
    )
    empty = read_frame(conn, "SELECT qty, asset FROM utl.positions WHERE false")
    assert empty.height == 0 and empty.schema == pl.Schema({"qty": DECIMAL, "asset": pl.String})
    nulls = read_frame(conn, "SELECT NULL::text AS t FROM generate_series(1, 3)")
    assert nulls.get_column("t").to_list() == [None, None, None]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0.0000000000000000001", "do not fit Decimal\\(38, 18\\) exactly, first '0.0000000000000000001'"),
        ("123456789012345678901", "first '123456789012345678901'"),
        ("'NaN'::numeric", "first 'NaN'"),
    ],
)
def test_read_frame_refuses_to_round(conn: psycopg.Connection, expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_frame(conn, f"SELECT {expression}::numeric AS n")


def test_read_frame_refuses_floats(conn: psycopg.Connection) -> None:
    with pytest.raises(TypeError, match="floating point"):
        read_frame(conn, "SELECT 0.1::float8 AS f")


decimal_text = st.decimals(
    min_value=Decimal("-99999999999999999999.999999999999999999"),
    max_value=Decimal("99999999999999999999.999999999999999999"),
    places=18,
    allow_nan=False,
    allow_infinity=False,
).map(lambda d: format(d, "f"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(qtys=st.lists(decimal_text, min_size=1, max_size=20))
def test_any_decimal_round_trips(conn: psycopg.Connection, qtys: list[str]) -> None:
    frame = positions(D1, [f"A{i}" for i in range(len(qtys))], qtys)
    replace_rows(conn, "utl.positions", frame, where={})  # the whole table: examples never mix
    assert [Decimal(r[3]) for r in stored(conn)] == sorted_by_asset(frame)
    assert read_frame(conn, "SELECT * FROM utl.positions").select(frame.columns).sort("asset").equals(frame.sort("asset"))


def sorted_by_asset(frame: pl.DataFrame) -> list[Decimal]:
    return frame.sort("asset").get_column("qty").to_list()


def test_killed_writer_leaves_previous_rows_and_rerun_completes(migrated_database: str) -> None:
    rows = 500_000
    with connect(migrated_database) as conn:
        previous = pl.concat([positions(workers.BIG_DAY, ["BTC", "ETH"], ["1", "2"]), positions(D1, ["BTC"], ["3"])])
        replace_rows(conn, "utl.positions", previous, where={})
        before = stored(conn)

        child = workers.start("replace-big", migrated_database, str(rows))
        copied = wait_for_copy(conn, child)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert copied > 0  # killed mid-COPY, not before or after
        wait_until_gone(conn, "COPY")
        assert stored(conn) == before

        rerun = workers.start("replace-big", migrated_database, str(rows))
        out, _ = rerun.communicate(timeout=600)
        assert rerun.returncode == 0 and int(out) == rows
        counts = conn.execute(
            "SELECT business_date, count(*) FROM utl.positions GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert counts == [(D1, 1), (workers.BIG_DAY, rows)]
        # a lower half the killed writer had committed (when killed after it) is dropped by the rerun
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname ~ '^positions_2024_05_02_[0-9a-f]{8}_[12]$'"
                            ).fetchone() == (0,)


def wait_for_copy(conn: psycopg.Connection, child) -> int:
    """Poll the server until the child's COPY has stored some rows; return how many."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert child.poll() is None, "the writer finished before it could be killed"
        row = conn.execute(
            "SELECT tuples_processed FROM pg_stat_progress_copy WHERE datname = current_database()"
            " AND command = 'COPY FROM'"
        ).fetchone()
        if row is not None and row[0] > 0:
            return row[0]
        time.sleep(0.02)
    raise AssertionError("the writer never started its COPY")


def wait_until_gone(conn: psycopg.Connection, query_start: str) -> None:
    """Wait until the server has ended the killed client's session."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alive = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND query LIKE %s",
            (query_start + "%",),
        ).fetchone()[0]
        if not alive:
            return
        time.sleep(0.05)
    raise AssertionError("the killed writer's session is still open")


# A day's rows from SWAP_MIN_ROWS on are written by building the day's partition afresh and
# swapping it in; the tests below write that many so they take that path.

NEAR_RANGE = [
    "0", "-0.000000000000000001", "0.000000000000000001", "-1", "1.5",
    "99999999999999999999.999999999999999999", "-99999999999999999999.999999999999999999",
    "12345678901234567890.123456789012345678", "-0.100000000000000000", "42.000000000000000007",
]


def many_positions(day: dt.date, rows: int, venue: str = "binance") -> tuple[pl.DataFrame, list[str]]:
    """``rows`` positions of one day; qty cycles through NEAR_RANGE and digits made from the row number."""
    made = [f"{'-' if i % 2 else ''}{i}.{i * 7919 % 10**18:018d}" for i in range(rows - len(NEAR_RANGE))]
    qtys = NEAR_RANGE + made
    frame = positions(day, [f"A{i:07d}" for i in range(rows)], qtys, venue=venue)
    return frame, qtys


def exact_sum(texts: list[str]) -> Decimal:
    with localcontext() as context:
        context.prec = 80  # 38 digits and a carry: no rounding in the expected value
        return sum((Decimal(t) for t in texts), Decimal(0))


def exact_text(value: str) -> str:
    """PostgreSQL's text of a numeric(…, 18): every one of the 18 decimals, derived from the source text."""
    whole, _, fraction = value.partition(".")
    return f"{whole}.{fraction.ljust(18, '0')}"


@pytest.fixture(params=["binary", "csv"])
def encoding(request, monkeypatch):
    """Both ways a frame travels: pgpq's binary COPY, and CSV where pgpq has no wheel."""
    if request.param == "csv":
        import utl.store.copy as copy_module

        monkeypatch.setattr(copy_module, "pgpq", None)
    return request.param


def test_a_large_day_round_trips_exactly_and_reruns_replace_it(conn: psycopg.Connection, encoding: str) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    rows = SWAP_MIN_ROWS + 5
    replace_rows(conn, "utl.positions", positions(D2, ["BTC"], ["3"]), where={"business_date": D2})
    old, _ = many_positions(D1, rows)
    replace_rows(conn, "utl.positions", old, where={"business_date": D1})
    frame, qtys = many_positions(D1, rows)
    frame = frame.with_columns(asset=pl.col("asset") + "x")  # new keys: the old rows must go

    for _ in range(2):
        assert replace_rows(conn, "utl.positions", frame, where={"business_date": D1}) == rows

    back = conn.execute(
        "SELECT asset, qty::text, mark::text FROM utl.positions WHERE business_date = %s ORDER BY asset", (D1,)
    ).fetchall()
    assert back == [(f"A{i:07d}x", exact_text(q), "65000.500000000000000000") for i, q in enumerate(qtys)]
    assert stored(conn, "business_date = '2024-05-02'") == [("2024-05-02", "binance", "BTC", "3.000000000000000000", "65000.500000000000000000")]
    read = read_frame(conn, "SELECT * FROM utl.positions WHERE business_date = %s", (D1,))
    assert read.select(frame.columns).sort("asset").equals(frame.sort("asset"))
    # The swapped-in partition carries the table's primary key, like one PostgreSQL made.
    with pytest.raises(psycopg.errors.UniqueViolation):
        with conn.transaction():
            conn.execute("INSERT INTO utl.positions_2024_05_01 SELECT * FROM utl.positions_2024_05_01 LIMIT 1")


def test_a_large_slice_of_a_day_keeps_the_day_s_other_rows(conn: psycopg.Connection) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    binance, _ = many_positions(D1, SWAP_MIN_ROWS, venue="binance")
    kraken, _ = many_positions(D1, SWAP_MIN_ROWS, venue="kraken")
    replace_rows(conn, "utl.positions", pl.concat([binance, kraken]), where={"business_date": D1})
    binance_before = stored(conn, "venue = 'binance'")

    okx_and_kraken = pl.concat([many_positions(D1, SWAP_MIN_ROWS, venue=v)[0] for v in ("kraken", "okx")])
    replace_rows(conn, "utl.positions", okx_and_kraken.with_columns(qty=-pl.col("qty")),
                 where={"business_date": D1, "venue": ["kraken", "okx"]})

    assert stored(conn, "venue = 'binance'") == binance_before
    counts = conn.execute("SELECT venue, count(*), sum(qty) FROM utl.positions GROUP BY 1 ORDER BY 1").fetchall()
    total = exact_sum(many_positions(D1, SWAP_MIN_ROWS)[1])
    assert counts == [("binance", SWAP_MIN_ROWS, total), ("kraken", SWAP_MIN_ROWS, total.copy_negate()), ("okx", SWAP_MIN_ROWS, total.copy_negate())]


def test_a_large_write_that_fails_keeps_the_previous_day(conn: psycopg.Connection, encoding: str) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    previous, _ = many_positions(D1, SWAP_MIN_ROWS)
    replace_rows(conn, "utl.positions", previous, where={"business_date": D1})
    before = stored(conn)
    frame, _ = many_positions(D1, SWAP_MIN_ROWS + 1)
    duplicate_key = pl.concat([frame, frame.tail(1)])  # refused when the primary key is built
    with pytest.raises(psycopg.errors.UniqueViolation):
        replace_rows(conn, "utl.positions", duplicate_key, where={"business_date": D1})
    assert stored(conn) == before
    tables = conn.execute("SELECT relname FROM pg_class WHERE relname LIKE 'positions_2024_05%' AND relkind IN ('r', 'p')"
                          " ORDER BY 1").fetchall()
    assert tables == [("positions_2024_05",), ("positions_2024_05_01",)]  # the half-built day is gone


def test_a_large_day_of_breaks_keeps_the_contract_checks(conn: psycopg.Connection) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    rows = SWAP_MIN_ROWS
    i = pl.int_range(rows, eager=True)
    breaks = pl.DataFrame({
        "business_date": pl.repeat(D1, rows, eager=True), "venue": pl.repeat("binance", rows, eager=True),
        "account": pl.repeat("mm-1", rows, eager=True), "asset": "A" + i.cast(pl.String),
        "ledger_qty": (i.cast(pl.String) + ".000000000000000001").str.to_decimal(scale=18),
        "venue_qty": pl.repeat("0", rows, eager=True).str.to_decimal(scale=18),
        "tolerance": pl.repeat("0", rows, eager=True).str.to_decimal(scale=18),
        "first_seen": pl.repeat(D1, rows, eager=True), "kind": pl.repeat("qty_mismatch", rows, eager=True),
    }).with_columns(pl.col("ledger_qty", "venue_qty", "tolerance").cast(DECIMAL)).with_columns(
        diff=pl.col("venue_qty") - pl.col("ledger_qty"))
    has_landing = conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = 'utl'"
                               " AND table_name = 'breaks' AND column_name = 'landing'").fetchone()
    if has_landing:  # in every key since 008_landing_keys
        breaks = breaks.with_columns(landing=pl.lit("/srv/landing"))
    assert replace_rows(conn, "utl.breaks", breaks, where={"business_date": D1}) == rows
    assert replace_rows(conn, "utl.breaks", breaks, where={"business_date": D1}) == rows
    assert conn.execute("SELECT min(diff)::text, count(*) FROM utl.breaks").fetchone() == (f"-{rows - 1}.000000000000000001", rows)
    with pytest.raises(psycopg.errors.CheckViolation):
        replace_rows(conn, "utl.breaks", breaks.with_columns(diff=-pl.col("diff")), where={"business_date": D1})
    indexes = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'breaks_2024_05_01'").fetchone()[0]
    assert indexes == 3  # the primary key, by age, by value: built when the new day was attached


def test_a_month_from_before_day_partitions_is_still_written(conn: psycopg.Connection) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    conn.execute("CREATE TABLE utl.positions_2024_05 PARTITION OF utl.positions FOR VALUES FROM ('2024-05-01') TO ('2024-06-01')")
    conn.commit()
    for venue in ("binance", "kraken"):
        frame, qtys = many_positions(D1, SWAP_MIN_ROWS, venue=venue)
        replace_rows(conn, "utl.positions", frame, where={"business_date": D1})
    assert conn.execute("SELECT DISTINCT tableoid::regclass::text, venue FROM utl.positions").fetchall() == [("utl.positions_2024_05", "kraken")]
    assert conn.execute("SELECT sum(qty) FROM utl.positions").fetchone()[0] == exact_sum(qtys)


def test_a_swapped_day_is_written_frozen_and_its_key_sorted_in_memory(conn: psycopg.Connection) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    frame, _ = many_positions(D1, SWAP_MIN_ROWS)
    replace_rows(conn, "utl.positions", frame, where={"business_date": D1})
    sorts: list[str] = []
    conn.add_notice_handler(lambda notice: sorts.append(notice.message_primary or ""))
    with conn.transaction():
        # 1 MB (the least PostgreSQL takes) cannot hold 20,000 keys: the write asks for what it needs.
        conn.execute("SET LOCAL maintenance_work_mem = '1MB'")
        conn.execute("SET LOCAL max_parallel_maintenance_workers = 2")
        conn.execute("SET LOCAL trace_sort = on")
        conn.execute("SET LOCAL client_min_messages = log")
        replace_rows(conn, "utl.positions", frame.with_columns(qty=-pl.col("qty")), where={"business_date": D1})
        settings_after = conn.execute(
            "SELECT current_setting('maintenance_work_mem'), current_setting('max_parallel_maintenance_workers')").fetchone()
    assert settings_after == ("1MB", "2")  # the caller's transaction keeps its own settings
    ended = [message for message in sorts if " sort of worker" in message and " ended" in message]
    assert ended and all(message.startswith("internal sort of worker -1") for message in ended), ended
    # COPY FREEZE: the pages all-visible as soon as the day is attached (PostgreSQL counts them
    # when it builds the day's index), so the first reads dirty none of them. It marks the pages
    # it starts empty: all of them on PostgreSQL 15, 87% on 18, where a batch of rows may begin
    # on the page the last one ended on. Without FREEZE none is (the next test).
    pages, visible = conn.execute("SELECT relpages, relallvisible FROM pg_class WHERE relname = 'positions_2024_05_01'").fetchone()
    assert pages > 0 and visible >= 0.8 * pages
    assert conn.execute("SELECT sum(qty) FROM utl.positions").fetchone()[0] == exact_sum(many_positions(D1, SWAP_MIN_ROWS)[1]).copy_negate()


def test_a_swap_beside_an_open_cursor_is_written_unfrozen(conn: psycopg.Connection) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    frame, qtys = many_positions(D1, SWAP_MIN_ROWS)
    replace_rows(conn, "utl.positions", frame, where={"business_date": D1})
    with conn.transaction():
        with conn.cursor(name="reader") as reader:  # a server-side cursor: COPY FREEZE would refuse
            reader.execute("SELECT 1 FROM generate_series(1, 10)")
            assert reader.fetchone() == (1,)
            assert replace_rows(conn, "utl.positions", frame, where={"business_date": D1}) == SWAP_MIN_ROWS
    assert conn.execute("SELECT relallvisible FROM pg_class WHERE relname = 'positions_2024_05_01'").fetchone() == (0,)
    assert conn.execute("SELECT sum(qty) FROM utl.positions").fetchone()[0] == exact_sum(qtys)


def test_a_swapped_day_keeps_the_table_s_column_defaults(conn: psycopg.Connection) -> None:
    """The slice's values travel as the new day's column defaults during its COPY; after it the
    day has the table's own defaults again, and every row the slice's values."""
    from utl.store.write import SWAP_MIN_ROWS

    conn.execute("CREATE TABLE utl.defaults_probe (business_date date NOT NULL, landing text NOT NULL DEFAULT 'nowhere',"
                 " venue text, qty numeric NOT NULL, PRIMARY KEY (landing, business_date, venue)) PARTITION BY RANGE (business_date)")
    conn.commit()
    frame = many_positions(D1, SWAP_MIN_ROWS)[0].select("business_date", "landing", venue="asset", qty="qty")
    for _ in range(2):
        assert replace_rows(conn, "utl.defaults_probe", frame, where={"landing": "/srv/landing", "business_date": D1}) == SWAP_MIN_ROWS

    def defaults(table: str) -> list[tuple]:
        return conn.execute("SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
                            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                            " WHERE a.attrelid = %s::regclass AND a.attnum > 0 ORDER BY a.attnum", (table,)).fetchall()

    assert defaults("utl.defaults_probe_2024_05_01") == defaults("utl.defaults_probe") == [
        ("business_date", None), ("landing", "'nowhere'::text"), ("venue", None), ("qty", None)]
    assert conn.execute("SELECT landing, business_date, count(*) FROM utl.defaults_probe GROUP BY 1, 2").fetchall() == [
        ("/srv/landing", D1, SWAP_MIN_ROWS)]


def test_a_large_day_of_one_landing_keeps_the_other_landing_s_rows(conn: psycopg.Connection) -> None:
    from utl.store.write import SWAP_MIN_ROWS

    frame, qtys = many_positions(D1, SWAP_MIN_ROWS)
    first = frame.with_columns(landing=pl.lit("/srv/a"))
    second = frame.with_columns(landing=pl.lit("/srv/b"), qty=-pl.col("qty"))
    replace_rows(conn, "utl.positions", first, where={"landing": "/srv/a", "business_date": D1})  # the day held none
    replace_rows(conn, "utl.positions", first, where={"landing": "/srv/a", "business_date": D1})  # the day held only /srv/a
    replace_rows(conn, "utl.positions", second, where={"landing": "/srv/b", "business_date": D1})  # /srv/a's rows stay
    replace_rows(conn, "utl.positions", first, where={"landing": "/srv/a", "business_date": D1})  # /srv/b's rows stay
    total = exact_sum(qtys)
    assert conn.execute("SELECT landing, count(*), sum(qty) FROM utl.positions GROUP BY 1 ORDER BY 1").fetchall() == [
        ("/srv/a", SWAP_MIN_ROWS, total), ("/srv/b", SWAP_MIN_ROWS, total.copy_negate())]


# From SPLIT_MIN_ROWS on (and nothing of another slice to carry over) a swapped day is built in
# two halves at once, the lower one on a second connection; the tests below lower it to reach that path.

@pytest.fixture
def split(monkeypatch):
    """Days from SWAP_MIN_ROWS rows built in two halves."""
    import utl.store.write as write_module

    monkeypatch.setattr(write_module, "SPLIT_MIN_ROWS", write_module.SWAP_MIN_ROWS)
    return write_module.SWAP_MIN_ROWS


def day_tables(conn: psycopg.Connection, day: str = "2024_05_01") -> list[tuple]:
    """The tables named after ``day`` (name, kind, whether attached), and unattached halves."""
    return conn.execute(
        "SELECT relname, relkind::text, relispartition FROM pg_class WHERE relname LIKE %s AND relkind IN ('r', 'p')"
        " ORDER BY 1", (f"positions_{day}%",)).fetchall()


def test_a_day_in_two_halves_round_trips_exactly_and_reruns_replace_it(conn: psycopg.Connection, split: int,
                                                                       encoding: str) -> None:
    rows = split + 7
    replace_rows(conn, "utl.positions", positions(D2, ["BTC"], ["3"]), where={"business_date": D2})
    old, _ = many_positions(D1, rows)
    replace_rows(conn, "utl.positions", old, where={"landing": "/srv/landing", "business_date": D1})
    frame, qtys = many_positions(D1, rows)
    frame = frame.with_columns(asset=pl.col("asset") + "x")  # new keys: the old rows must go
    for _ in range(2):
        assert replace_rows(conn, "utl.positions", frame, where={"landing": "/srv/landing", "business_date": D1}) == rows

    back = conn.execute("SELECT asset, qty::text, mark::text FROM utl.positions WHERE business_date = %s ORDER BY asset",
                        (D1,)).fetchall()
    assert back == [(f"A{i:07d}x", exact_text(q), "65000.500000000000000000") for i, q in enumerate(qtys)]
    assert stored(conn, "business_date = '2024-05-02'") == [
        ("2024-05-02", "binance", "BTC", "3.000000000000000000", "65000.500000000000000000")]
    read = read_frame(conn, "SELECT * FROM utl.positions WHERE business_date = %s", (D1,))
    assert read.select(frame.columns).sort("asset").equals(frame.sort("asset"))
    # The day is two halves split by asset near the middle, each with the primary key, nothing else left.
    assert day_tables(conn) == [("positions_2024_05_01", "p", True), ("positions_2024_05_01_1", "r", True),
                                ("positions_2024_05_01_2", "r", True)]
    halves = conn.execute("SELECT count(*) FROM utl.positions_2024_05_01_1").fetchone()[0]
    assert 0.25 * rows <= halves <= 0.75 * rows
    for half in ("positions_2024_05_01_1", "positions_2024_05_01_2"):
        with pytest.raises(psycopg.errors.UniqueViolation):
            with conn.transaction():
                conn.execute(f"INSERT INTO utl.{half} SELECT * FROM utl.{half} LIMIT 1")
        # both written frozen: the second connection's table is new in its transaction too (the pages
        # COPY starts empty: all on PostgreSQL 15, 73% of a half this small on 18; none unfrozen)
        pages, visible = conn.execute("SELECT relpages, relallvisible FROM pg_class WHERE relname = %s", (half,)).fetchone()
        assert pages > 0 and visible >= 0.6 * pages
    assert conn.execute("SELECT count(*) FROM pg_constraint WHERE conname LIKE 'positions_2024_05_01_%'"
                        " AND contype = 'c'").fetchone() == (0,)  # the day's and the halves' CHECKs are gone
    with pytest.raises(psycopg.errors.UniqueViolation):  # through the table, a key of either half
        with conn.transaction():
            conn.execute("INSERT INTO utl.positions SELECT * FROM utl.positions WHERE business_date = %s"
                         " ORDER BY asset DESC LIMIT 1", (D1,))


def test_a_day_in_two_halves_takes_small_writes_and_other_landings(conn: psycopg.Connection, split: int) -> None:
    frame, qtys = many_positions(D1, split)
    mine = {"landing": "/srv/landing", "business_date": D1}
    replace_rows(conn, "utl.positions", frame, where=mine)
    other = frame.with_columns(landing=pl.lit("/srv/other"), qty=-pl.col("qty"))
    # the day holds another landing's rows: it is rebuilt whole in one table, the halves' rows carried over
    replace_rows(conn, "utl.positions", other, where={"landing": "/srv/other", "business_date": D1})
    total = exact_sum(qtys)
    sums = "SELECT landing, count(*), sum(qty) FROM utl.positions GROUP BY 1 ORDER BY 1"
    assert conn.execute(sums).fetchall() == [("/srv/landing", split, total), ("/srv/other", split, total.copy_negate())]
    assert day_tables(conn) == [("positions_2024_05_01", "r", True)]
    replace_rows(conn, "utl.positions", other.head(3), where={"landing": "/srv/other", "business_date": D1})  # DELETE + COPY
    replace_rows(conn, "utl.positions", frame, where=mine)
    head = exact_sum(qtys[:3]).copy_negate()
    assert conn.execute(sums).fetchall() == [("/srv/landing", split, total), ("/srv/other", 3, head)]
    # a small write into a day built in halves goes to the half its keys belong to
    replace_rows(conn, "utl.positions", positions(D1, ["A0000000", "ZZZ"], ["1", "2"]).with_columns(landing=pl.lit("/srv/x")),
                 where={"landing": "/srv/x", "business_date": D1})
    assert conn.execute("SELECT tableoid::regclass::text, asset FROM utl.positions WHERE landing = '/srv/x' ORDER BY 2"
                        ).fetchall() == [("utl.positions_2024_05_01", "A0000000"), ("utl.positions_2024_05_01", "ZZZ")]


def test_a_day_in_two_halves_that_fails_keeps_the_previous_day(conn: psycopg.Connection, split: int) -> None:
    previous, _ = many_positions(D1, split)
    replace_rows(conn, "utl.positions", previous, where={"business_date": D1})
    before, tables = stored(conn), day_tables(conn)
    frame, _ = many_positions(D1, split + 1)
    # A key twice in the lower half (the second connection's, whose table is never committed), then
    # in the upper half (this connection's: the lower half was committed by then and must be dropped).
    for twice in (frame.head(1), frame.tail(1)):
        with pytest.raises(psycopg.errors.UniqueViolation):
            replace_rows(conn, "utl.positions", pl.concat([frame, twice]), where={"business_date": D1})
        assert stored(conn) == before
        assert day_tables(conn) == tables


def test_a_day_in_two_halves_rolled_back_by_the_caller_keeps_the_previous_day(conn: psycopg.Connection,
                                                                              split: int) -> None:
    previous, qtys = many_positions(D1, split)
    replace_rows(conn, "utl.positions", previous, where={"business_date": D1})
    before, tables = stored(conn), day_tables(conn)

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned):
        with conn.transaction():
            replace_rows(conn, "utl.positions", previous.with_columns(qty=-pl.col("qty")), where={"business_date": D1})
            raise Abandoned  # after the write, before the commit
    assert stored(conn) == before
    leftovers = [t for t in day_tables(conn) if t not in tables]
    assert len(leftovers) == 1 and not leftovers[0][2]  # the lower half committed on its own connection, unattached
    assert replace_rows(conn, "utl.positions", previous, where={"business_date": D1}) == split  # the rerun
    assert stored(conn) == before
    assert day_tables(conn) == tables  # and the leftover is gone
    assert conn.execute("SELECT sum(qty) FROM utl.positions").fetchone()[0] == exact_sum(qtys)


def test_a_day_of_breaks_in_two_halves_keeps_the_contract_checks(conn: psycopg.Connection, split: int) -> None:
    rows = split
    i = pl.int_range(rows, eager=True)
    breaks = pl.DataFrame({
        "business_date": pl.repeat(D1, rows, eager=True), "venue": pl.repeat("binance", rows, eager=True),
        "account": pl.repeat("mm-1", rows, eager=True), "asset": "A" + i.cast(pl.String).str.zfill(6),
        "ledger_qty": (i.cast(pl.String) + ".000000000000000001").str.to_decimal(scale=18),
        "venue_qty": pl.repeat("0", rows, eager=True).str.to_decimal(scale=18),
        "tolerance": pl.repeat("0", rows, eager=True).str.to_decimal(scale=18),
        "first_seen": pl.repeat(D1, rows, eager=True), "kind": pl.repeat("qty_mismatch", rows, eager=True),
        "landing": pl.repeat("/srv/landing", rows, eager=True),
    }).with_columns(pl.col("ledger_qty", "venue_qty", "tolerance").cast(DECIMAL)).with_columns(
        diff=pl.col("venue_qty") - pl.col("ledger_qty"))
    where = {"landing": "/srv/landing", "business_date": D1}
    for _ in range(2):
        assert replace_rows(conn, "utl.breaks", breaks, where=where) == rows
    assert conn.execute("SELECT min(diff)::text, count(*) FROM utl.breaks").fetchone() == (f"-{rows - 1}.000000000000000001", rows)
    for wrong in (breaks.head(1), breaks.tail(1)):  # a broken contract in the lower half, then in the upper
        bad = pl.concat([breaks.filter(pl.col("asset") != wrong["asset"][0]), wrong.with_columns(diff=-pl.col("diff"))])
        with pytest.raises(psycopg.errors.CheckViolation):
            replace_rows(conn, "utl.breaks", bad, where=where)
    assert conn.execute("SELECT min(diff)::text, count(*) FROM utl.breaks").fetchone() == (f"-{rows - 1}.000000000000000001", rows)
    indexes = conn.execute("SELECT tablename, count(*) FROM pg_indexes WHERE tablename LIKE 'breaks_2024_05_01%'"
                           " GROUP BY 1 ORDER BY 1").fetchall()
    assert indexes == [("breaks_2024_05_01", 3), ("breaks_2024_05_01_1", 3), ("breaks_2024_05_01_2", 3)]
