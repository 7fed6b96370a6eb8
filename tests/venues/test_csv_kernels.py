"""The compiled passes for CSV numbers and times (utl.venues._csv_kernels) against the Polars
passes they stand in for: the same values, the same refusals, on tricky cells and on every
venue fixture. ``KERNEL_ROWS`` is set to 0 so that even a few rows take the kernels."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.decimals import with_venue_decimals
from utl.venues import all_formats, base
from utl.venues.base import Source, shaped_time, strip_code, utc, with_numbers

from fixture_files import fixture_heads

UTC = timezone.utc

NUMBERS = [
    ("1.5", "BTC"), (" 1.5 ", "BTC"), ("-0.5", None), ("-0", ""), ("+2", "BTC"), ("1,300.50", "USDT"), ("-$5,250.00", "USD"),
    ("$-5", "USD"), ("1,30", "USDT"), ("1234,567", "USDT"), ("0,123", "USDT"), ("1,234,567,890,123,456,789", "USDT"),
    ("-3.605E-05", "BTC"), ("0E-18", "X"), ("--", "BTC"), ("", "BTC"), (None, "BTC"), ("1.", "BTC"), (".5", "BTC"),
    ("12345678901234567890", "BTC"), ("123456789012345678901", "BTC"), ("1.1234567890123456789", "BTC"),
    ("999999999999999999.999999999999999999", "BTC"), ("-0.000000000000000001", "BTC"), ("abc", "BTC"), ("1.5BTC", "BTC"),
    ("1.5 BTC", "BTC"), ("BTC", "BTC"), ("1.5\tBTC", "BTC"), ("\t1.5", "BTC"), ("1.5ETH", "BTC"), ("0.011INCH", "INCH"),
    ("1INCH", "1INCH"), ("2.0E-7BTC", "BTC"), ("1.5BTCBTC", "BTC"), ("€5", "EUR"), ("1,5", "BTC"), (" ", "BTC"), ("007.25", None),
]


@pytest.fixture(autouse=True)
def numba_loaded_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernels run wherever the thresholds say, numba loaded by the process or not."""
    monkeypatch.setattr(base, "KERNELS_NEED_NUMBA_LOADED", False)


@pytest.fixture
def kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)


def test_numbers_match_the_venue_parser_cell_for_cell(kernels: None) -> None:
    cells, codes = zip(*NUMBERS)
    frame = pl.DataFrame({"c": cells, "k": codes}, schema={"c": pl.String, "k": pl.String})
    frame = pl.concat([frame] * 3).slice(2)  # a sliced frame: Arrow buffers with an offset
    expected = with_venue_decimals(frame, plain=pl.col("c"), coded=strip_code(pl.col("c"), pl.col("k")))
    got = with_numbers(frame, plain="c", coded=("c", "k"))
    assert got.equals(expected) and got.schema == expected.schema
    # The kernel did read the plain cells: a grouped amount with its unit is exact.
    row = got.filter(pl.col("c") == "-$5,250.00").row(0, named=True)
    assert str(row["coded"]) == "-5250.000000000000000000" and not row["coded__bad"]


def test_numbers_of_an_empty_frame(kernels: None) -> None:
    frame = pl.DataFrame({"c": []}, schema={"c": pl.String})
    assert with_numbers(frame, v="c").equals(with_venue_decimals(frame, v="c"))


TIMES = [
    "2024-03-05 09:15:02", " 2024-03-05 09:15:02 ", "2024-02-29 23:59:59", "2023-02-29 00:00:00", "2024-13-01 00:00:00",
    "2024-04-31 00:00:00", "2024-03-05 24:00:00", "2024-03-05 23:59:60", "1899-12-31 00:00:00", "2200-01-01 00:00:00",
    "2024-03-05 09:15:02.1", "2024-03-05 09:15:02.1234567", "2024-03-05 09:15:02.1234567891", "2024-03-05 09:15:02.",
    "2024-03-05T09:15:02.500Z", "2024-03-05 09:15:02.25 UTC", "24-03-05 09:15:02", "68-12-31 23:59:59", "69-01-01 00:00:00",
    "", None, "junk", "2024-3-05 09:15:02", "\t2024-03-05 09:15:02", "2000-02-29 12:00:00", "2100-02-29 00:00:00",
    "09:15 2024-03-05",
]


@pytest.mark.parametrize("shape", list(base._KERNEL_SHAPES))
def test_each_compiled_time_shape_reads_as_its_pattern_and_format(shape: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"t": TIMES}, schema={"t": pl.String})
    shapes = [shape, (r"^\d{2}:\d{2} \d{4}-\d{2}-\d{2}$", "%H:%M %Y-%m-%d")]
    expected = frame.select(shaped_time(pl.col("t"), shapes, 480))
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    got = frame.select(shaped_time(pl.col("t"), shapes, 480))
    assert got.equals(expected)
    assert got["t"].null_count() < len(TIMES) - 1  # some cells do have the shape


def test_utc_by_the_kernel_matches_polars(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"t": TIMES}, schema={"t": pl.String})
    expected = frame.select(utc(pl.col("t"), "%Y-%m-%d %H:%M:%S", 60))
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    got = frame.select(utc(pl.col("t"), "%Y-%m-%d %H:%M:%S", 60))
    assert got.equals(expected)
    assert got["t"][0] == datetime(2024, 3, 5, 8, 15, 2, tzinfo=UTC)


def _fixtures() -> list[tuple[str, Path]]:
    return [(f.name, path) for path, head in fixture_heads() for f in all_formats() if f.columns and f.claims(head)]


def _read(name: str, path: Path) -> tuple[pl.DataFrame, pl.DataFrame] | str:
    (fmt,) = [f for f in all_formats() if f.name == name]
    try:
        parsed = fmt.read(Source(path=path, rel=path.name, venue="v", account="a"))
    except Exception as e:  # a file refused whole: the same error either way
        return f"{type(e).__name__}: {e}"
    return parsed.frame, parsed.quarantine


@pytest.mark.parametrize(("name", "path"), _fixtures(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_every_csv_fixture_reads_the_same_with_the_compiled_passes(name: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base.warm_kernels()
    base._warming[0].join()  # loaded: a regular file is read without a copy (base._read_regular)
    expected = _read(name, path)
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    got = _read(name, path)
    if isinstance(expected, str):
        assert got == expected
    else:
        assert got[0].equals(expected[0]) and got[1].equals(expected[1])


def test_a_bad_number_in_a_large_file_is_refused_with_its_row_and_column(tmp_path: Path) -> None:
    rows = ["2024-03-05 09:15:02,BTCUSDT,BUY,65000.5,0.01000000BTC,\"650.00500000USDT\",0.00001BTC"] * 25_000
    rows[7] = "2024-03-05 09:15:02,BTCUSDT,BUY,65000.5,0.01.0BTC,650.005USDT,0.00001BTC"
    rows[9] = "2024-03-05 09:15:02,BTCUSDT,BUY,65000.5,0.01BTC,1,5USDT,0.00001BTC"  # a stray comma: one cell too many
    rows[11] = "2024-03-05 09:15:02,BTCUSDT,BUY,65000.5,0.01BTC,\"1,5USDT\",0.00001BTC"  # a decimal comma
    path = tmp_path / "Binance-Spot-Trade-History-202403051200(UTC+0).csv"
    path.write_text("Date(UTC),Pair,Side,Price,Executed,Amount,Fee\n" + "\n".join(rows) + "\n")
    assert path.stat().st_size >= base.KERNEL_BYTES and len(rows) >= base.KERNEL_ROWS  # the compiled passes read it
    (fmt,) = [f for f in all_formats() if f.name == "binance.spot_trades"]
    parsed = fmt.read(Source(path=path, rel="binance/main/" + path.name, venue="binance", account="main"))
    assert parsed.frame.height == len(rows) - 3
    q = parsed.quarantine.select("file", "row", "column", "reason").rows()
    assert q == [
        ("binance/main/" + path.name, 8, "Executed", '"Executed": "0.01.0BTC" is not an exact decimal'),
        ("binance/main/" + path.name, 10, None, "the row has 8 cells, the header 7"),
        ("binance/main/" + path.name, 12, "Amount", '"Amount": "1,5USDT" is not an exact decimal'),
    ]
    first = parsed.frame.row(0, named=True)
    assert str(first["qty"]) == "0.010000000000000000" and str(first["quote_qty"]) == "650.005000000000000000"


def test_quotes_and_newlines_are_counted_as_bytes_count_does(monkeypatch: pytest.MonkeyPatch) -> None:
    base.warm_kernels()
    base._warming[0].join()  # counted by the kernel only once it is loaded
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    for n in [*range(0, 20), 1000, 4099]:  # whole words of 8 bytes, and the bytes after them
        data = bytes((b'"\n,a\xff'[(i * 7 + n) % 5]) for i in range(n))
        assert base._quotes_and_newlines(data) == (data.count(b'"'), data.count(b"\n"))


def test_a_quoted_file_reads_the_same_with_the_kernels_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base.warm_kernels()
    base._warming[0].join()
    lines = ['"a","b"'] + [f'"x{i}","{i}"' for i in range(50)] + ['"two\nlines","7"', '"cut', "short"]
    path = tmp_path / "quoted.csv"
    path.write_text("\n".join(lines) + "\n")
    source = Source(path=path, rel="quoted.csv", venue="v", account="a")
    expected = base.read_csv_rows(source)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    got = base.read_csv_rows(source)
    assert got[0].equals(expected[0]) and got[1].equals(expected[1])
    assert got[0].height == 51 and got[1]["reason"].to_list() == ["the file ends inside a quoted cell: this last row is cut short"]


def test_kernels_wait_for_a_process_that_loaded_numba(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "KERNELS_NEED_NUMBA_LOADED", True)
    monkeypatch.delitem(sys.modules, "numba", raising=False)  # put back after the test
    assert not base.kernels_for(10**6)
    monkeypatch.setitem(sys.modules, "numba", object())
    assert base.kernels_for(10**6) and not base.kernels_for(base.KERNEL_ROWS - 1)


HUGE = "12345678901234567890.5"  # valid, but × 100 leaves Decimal(38, 18)
LARGE_FILES = {
    "kraken.trades": (
        '"txid","ordertxid","pair","time","type","ordertype","price","cost","fee","vol","margin","misc","ledgers"',
        lambda i, vol: f'"T{i}","O{i}","XXBTZUSD","2024-03-05 09:00:00.{i % 1000:03d}","buy","limit",100,,0.1,{vol},0,"",""',
        "vol",
    ),
    "coinbase.pro_fills": (
        "portfolio,trade id,product,side,created at,size,size unit,price,fee,total,price/fee/total unit",
        lambda i, size: f"default,{i},BTC-USD,BUY,2021-02-01T10:00:00.{i % 1000:03d}Z,{size},BTC,100,0.1,-1,USD",
        "size",
    ),
    "coinbase.transaction_report": (
        "\nTransactions\nUser,Jane Doe,3f1c0a52-7d1e-4c8e-9a0b-5e6f7a8b9c0d\nID,Timestamp,Transaction Type,Asset,"
        "Quantity Transacted,Price Currency,Price at Transaction,Subtotal,Total (inclusive of fees and/or spread),"
        "Fees and/or Spread,Notes",
        lambda i, qty: f'a{i},2024-03-06 14:00:00 UTC,Advanced Trade Buy,ETH,{qty},USD,"$3,500.00","$350.00","$351.00",$1.00,'
                       f"Bought {qty} ETH for 351.00 USDC on ETH-USDC at 100 USDC/ETH",
        "Quantity Transacted",
    ),
}


@pytest.mark.parametrize("name", list(LARGE_FILES))
def test_a_product_that_overflows_in_a_large_file_costs_its_row_the_same_on_both_paths(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    header, row, column = LARGE_FILES[name]
    rows = [row(i, "0.5") for i in range(25_000)]
    rows[7] = row(7, HUGE)
    path = tmp_path / "export.csv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    assert path.stat().st_size >= base.KERNEL_BYTES and len(rows) >= base.KERNEL_ROWS  # the compiled passes read it
    got = _read(name, path)
    monkeypatch.setattr(base, "KERNEL_ROWS", 10**9)
    monkeypatch.setattr(base, "KERNEL_BYTES", 10**12)
    expected = _read(name, path)
    assert not isinstance(got, str), got
    assert got[0].equals(expected[0]) and got[1].equals(expected[1])
    assert got[1].select("row", "column").rows() == [(8, column)] and "overflows 38 digits" in got[1]["reason"].item()
    assert got[0]["source_row"].n_unique() == len(rows) - 1


REGULAR = [
    ('a,b,c\n1,2,3\n4,5,6\n', True),
    ('a,b,c\n1,2,3\n4,5,6', True),  # no final line end
    ('"a","b"\n"x,1","y ""q"""\n"",\n', True),
    ('a;b\n1,5;2\n', True),
    ('pre\namble\na,b\n1,2\n', True),  # skip_lines 2
    (' a , b\n1,2\n', True),
    ('a,b,c\n1,2\n4,5,6\n', False),  # short
    ('a,b,c\n1,2,3,4\n4,5,6\n', False),  # long
    ('a,b\n1,2\n\n3,4\n', False),  # blank line
    ('a,b\n1,2\n   \n3,4\n', False),
    ('a,b\r\n1,2\r\n', False),
    ('\ufeffa,b\n1,2\n', True),  # Polars skips a BOM opening the file, as the careful way does
    ('\ufeffpre\namble\na,b\n1,2\n', True),
    ('pre\namble\n\ufeffa,b\n1,2\n', False),
    ('a,b\n1,2\n\ufeff3,4\n', False),
    ('a,b\n1,"two\nlines"\n', False),
    ('a,b\n1,x"y\n', False),
    ('a,b\n1,"x" \n', False),
    ('a,b\n1,"cut\n', False),
    ('a\n1\n2\n', False),  # one column
    ('a,b\n1,\xe9\n', True),
    ('a,b\n', True),
]


def written(text: str, tmp_path: Path) -> tuple[Source, int]:
    """``text`` written as a CSV file, the kernels loaded: its source and the lines before its
    header (a preamble's two)."""
    base.warm_kernels()
    base._warming[0].join()
    path = tmp_path / "x.csv"
    path.write_bytes(text.encode("utf-8"))
    return Source(path=path, rel="x.csv", venue="v", account="a"), 2 if "amble" in text else 0


@pytest.mark.parametrize(("text", "regular"), REGULAR)
def test_a_file_read_without_copying_reads_as_the_careful_way(text: str, regular: bool, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source, skip = written(text, tmp_path)

    def read() -> tuple[pl.DataFrame, pl.DataFrame] | str:
        try:
            return base._read_csv_rows(source, skip, "c" in text.split("\n", 1)[0])
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    monkeypatch.setattr(base, "KERNEL_BYTES", 10**12)
    expected = read()
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    assert (base._read_regular(source, skip) is not None) == regular
    got = read()
    if isinstance(expected, str):
        assert got == expected
    else:
        assert not isinstance(got, str), got
        assert got[0].equals(expected[0]) and got[0].schema == expected[0].schema and got[1].equals(expected[1])


_MICROS = st.one_of(
    st.integers(-62_135_596_800_000_000, 253_402_300_799_999_999),  # years 1..9999
    st.integers(-10**12, 10**12),  # around 1970, fractions of a second before it
    st.sampled_from([0, -1, 951_782_400_000_000, 4_107_542_399_999_999, -30_610_224_000_000_001, 253_402_300_800_000_000]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_MICROS | st.none(), min_size=1, max_size=40))
def test_second_texts_are_what_strftime_writes(micros: list[int | None]) -> None:
    """The compiled pass against Polars' strftime, over any day of years 1..9999 (those it
    leaves, outside 1000..9999, strftime writes), times before 1970 and nulls."""
    times = pl.Series("ts", micros, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base, "KERNEL_ROWS", 0)
        got = pl.DataFrame({"ts": times}).select(base.utc_second_text(pl.col("ts"))).to_series()
    assert got.dtype == pl.String and got.name == "ts"
    assert got.to_list() == times.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_list()


def test_second_texts_are_written_by_the_kernel_for_years_1000_to_9999() -> None:
    """The compiled pass itself takes these times (the test above would pass on strftime alone)."""
    import numpy as np

    from utl.venues._csv_kernels import second_texts

    micros = np.array([951_782_400_500_000, -1, -30_610_224_000_000_001, -30_610_224_000_000_000], dtype=np.int64)
    text, exact = np.zeros(20 * len(micros), dtype=np.uint8), np.zeros(len(micros), dtype=np.bool_)
    second_texts(micros, np.array([True, True, True, False]), text, exact)
    assert exact.tolist() == [True, True, False, False]  # 0999-12-31T23:59:59Z is left; so is a null
    assert text[:40].tobytes() == b"2000-02-29T00:00:00Z1969-12-31T23:59:59Z"


_GLUED = st.text(st.sampled_from(["1", "0", ".", ",", "+", "-", " ", "e", "E", "B", "T", "C", "z", "\t", "\n", "\x1c", "\u00a0", "é", "$", "_"]), max_size=10)


@settings(max_examples=400, deadline=None)
@given(st.lists(_GLUED | st.sampled_from(["0.01BTC", " 2.0E-7BTC ", "0.011INCH", "1,300.50 USDT", "12", "", "BNB", "\t0.5ETH"]) | st.none(),
                min_size=1, max_size=30))
def test_glued_codes_are_read_as_the_polars_passes_read_them(cells: list[str | None]) -> None:
    """Cells of digits, signs, letters, exponents, blanks of every kind, non-ASCII and nulls:
    the compiled pass and the Polars passes give every cell the same code."""
    column = pl.Series("c", cells, dtype=pl.String)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(base, "KERNEL_ROWS", 0)
        got = base._trailing_codes(column)
    expected = base._trailing_codes_by_polars(column)
    assert got.name == "c" and got.equals(expected), (got.to_list(), expected.to_list())


def test_glued_codes_take_plain_cells_and_leave_the_rest() -> None:
    """The compiled pass itself reads plain cells (the test above would pass on the Polars
    passes alone) and leaves exponents, other blanks and non-ASCII text."""
    import numpy as np

    from utl.venues._csv_kernels import glued_codes

    cells = pl.Series(["0.1BNB", " 12 ", "2.0E-7BTC", "\t1BTC", "1€", None])
    offsets, data, valid = base._string_buffers(cells)
    code_offsets, code_data, plain = np.zeros(7, dtype=np.int64), np.zeros(len(data), dtype=np.uint8), np.zeros(6, dtype=np.bool_)
    glued_codes(offsets, data, valid, code_offsets, code_data, plain)
    assert plain.tolist() == [True, True, False, False, False, True]
    assert code_data[: code_offsets[-1]].tobytes() == b"BNB"


BLANKED = ["a", " a", "a ", "\ta", "a\n", "\u00a0a", "a\u3000", "é", "aé", "\x7f", "", None, "a b", "\x1fa", "a\r"]


@pytest.mark.parametrize("cell", BLANKED)
def test_strip_texts_strips_as_polars_does(kernels: None, cell: str | None) -> None:
    """A column with one cell that may need it is stripped (the fallback, Polars' strip);
    columns without are kept as they are (the compiled look): the same values either way."""
    from utl.venues._csv_kernels import edge_blanks

    frame = pl.DataFrame({"plain": ["x", "1.5", "a b"] * 3, "odd": ["x", cell, "y"] * 3}).slice(1)  # an offset
    expected = frame.with_columns(pl.col("plain", "odd").str.strip_chars())
    got = base.strip_texts(frame, ["plain", "odd"])
    assert got.equals(expected) and got.schema == expected.schema
    assert not edge_blanks(*base._string_buffers(frame["plain"]))
    needs = cell is not None and cell != "" and (cell[0] <= " " or cell[-1] <= " " or cell[0] >= "\x7f" or cell[-1] >= "\x7f")
    assert edge_blanks(*base._string_buffers(frame["odd"])) == needs
    assert base.strip_texts(frame.head(0), ["plain", "odd"]).equals(expected.head(0))


def test_strip_texts_keeps_a_clean_column_and_strips_the_others(kernels: None, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pl.DataFrame({"clean": ["a", "b"], "blank": [" a", "b "]})
    got = base.strip_texts(frame, ["clean", "blank"])
    assert got.to_dict(as_series=False) == {"clean": ["a", "b"], "blank": ["a", "b"]}
    monkeypatch.setattr(base, "KERNEL_ROWS", 10**9)  # no compiled look: the plain strip
    assert base.strip_texts(frame, ["clean", "blank"]).equals(got)
