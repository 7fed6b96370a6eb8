"""The helpers every venue reader shares (``utl.venues.base``), each against a plain-Python
statement of what it must do."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.venues import all_formats
from utl.venues.base import (
    Check,
    Source,
    code_at_end,
    head_text,
    interleave,
    per_distinct,
    read_csv_rows,
    read_text_csv,
    shaped_time,
    split_refused,
    strip_code,
    text_or_null,
    trailing_code,
    with_synthetic_id,
)

FIXTURES = Path(__file__).parent / "fixtures"


def source(path: Path) -> Source:
    return Source(path, f"v/a/{path.name}", "v", "a")


def write(tmp_path: Path, text: str | bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


# --------------------------------------------------------------------------- read_csv_rows


def test_ragged_rows_are_refused_alone_with_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'a,b,c\n1,2,3\n4,5\n\n"6,5",7,8\n9,10,11,12\n   \n13,,\n')
    rows, refused = read_csv_rows(source(path))
    assert rows["source_row"].to_list() == [1, 4, 7]
    assert rows.select("a", "b", "c").rows() == [("1", "2", "3"), ("6,5", "7", "8"), ("13", "", "")]
    assert refused["row"].to_list() == [2, 5]
    assert refused["reason"].to_list() == ["the row has 2 cells, the header 3", "the row has 4 cells, the header 3"]
    assert refused["raw"].to_list() == ["4,5", "9,10,11,12"]
    assert refused["file"].to_list() == ["v/a/f.csv"] * 2 and refused["column"].to_list() == [None, None]


def test_cells_are_text_as_written_and_never_null(tmp_path: Path) -> None:
    path = write(tmp_path, 'a,b,c\n, x ,""\n,,\n')
    rows, refused = read_csv_rows(source(path))
    assert refused.is_empty()
    # A row of empty cells is a row (its checks refuse it), not a blank line to skip.
    assert rows.select("a", "b", "c").rows() == [("", " x ", ""), ("", "", "")]
    assert rows.null_count().sum_horizontal().item() == 0


def test_bom_crlf_preamble_and_missing_last_newline(tmp_path: Path) -> None:
    path = write(tmp_path, "\ufeffUID:1,Time Zone:UTC+8\r\nid,Amount\r\n\ufeff1,2.5\r\n2,3", "p.csv")
    rows, refused = read_csv_rows(source(path), skip_lines=1)
    assert refused.is_empty()
    assert rows.rows() == [(1, "1", "2.5"), (2, "2", "3")]


def test_quoted_cells_spanning_lines_are_counted_by_record(tmp_path: Path) -> None:
    path = write(tmp_path, 'a,b\n1,"two\nlines"\n2\n3,"x,y"\n')
    rows, refused = read_csv_rows(source(path))
    assert rows.select("source_row", "a", "b").rows() == [(1, "1", "two\nlines"), (3, "3", "x,y")]
    assert refused.select("row", "reason").rows() == [(2, "the row has 1 cells, the header 2")]


def test_header_only_gives_no_rows_and_no_header_fails(tmp_path: Path) -> None:
    rows, refused = read_csv_rows(source(write(tmp_path, "a,b\n")))
    assert rows.columns == ["source_row", "a", "b"] and rows.is_empty() and refused.is_empty()
    with pytest.raises(ValueError, match="no header"):
        read_csv_rows(source(write(tmp_path, "UID: 1\n", "u.csv")), skip_lines=1)


def test_a_file_that_is_not_utf8_fails_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, b"a,b\n1,\xff\n")
    with pytest.raises(UnicodeDecodeError, match="v/a/f.csv: not UTF-8"):
        read_csv_rows(source(path))


def test_read_text_csv_strips_and_fails_the_file_on_a_ragged_row(tmp_path: Path) -> None:
    assert read_text_csv(source(write(tmp_path, "asset,price\n BTC , 1 \n"))).rows() == [(1, "BTC", "1")]
    with pytest.raises(ValueError, match="not a well-formed CSV: row 1: the row has 3 cells"):
        read_text_csv(source(write(tmp_path, "asset,price\nBTC,1,2\n", "r.csv")))


lines = st.lists(st.lists(st.sampled_from(["", "1", "x", "a,b", 'q"q', " s ", "two\nlines"]), min_size=1, max_size=5), max_size=12)


@settings(max_examples=150, deadline=None)
@given(body=lines, blank_every=st.integers(2, 5))
def test_rows_and_refusals_match_pythons_csv_reader(tmp_path_factory: pytest.TempPathFactory, body: list[list[str]], blank_every: int) -> None:
    """Every data record is booked (header width) or refused (other widths); blank lines
    neither; row numbers count records as Python's csv module reads them."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["h1", "h2", "h3"])
    for i, cells in enumerate(body, 1):
        writer.writerow(cells)
        if i % blank_every == 0:
            out.write("\n")
    path = write(tmp_path_factory.mktemp("csv"), out.getvalue())
    rows, refused = read_csv_rows(source(path))
    records = list(csv.reader(io.StringIO(out.getvalue())))[1:]
    expected_rows = [(n, *cells) for n, cells in enumerate(records, 1) if len(cells) == 3]
    expected_refused = [n for n, cells in enumerate(records, 1) if cells and len(cells) != 3 and cells != [""]]
    assert rows.rows() == expected_rows
    assert refused["row"].to_list() == expected_refused


plain_lines = st.lists(st.lists(st.sampled_from(["", "1", "x", " s ", "\u00e9", "-0.5"]), min_size=1, max_size=5), max_size=12)


@settings(max_examples=150, deadline=None)
@given(body=plain_lines, blank=st.sampled_from(["", "   ", "\t"]), blank_every=st.integers(2, 5),
       bom=st.booleans(), crlf=st.booleans(), last_newline=st.booleans())
def test_unquoted_files_read_as_pythons_csv_reader_reads_them(
    tmp_path_factory: pytest.TempPathFactory, body: list[list[str]], blank: str, blank_every: int,
    bom: bool, crlf: bool, last_newline: bool,
) -> None:
    """Files without a quote or a carriage return are read without counting their lines (the
    fast path): the same rows and refusals as Python's csv module, with a leading BOM, blank
    and whitespace-only lines, CRLF line ends (which take the counting path) or none at the end."""
    lines = ["h1,h2,h3"]
    for i, cells in enumerate(body, 1):
        lines.append(",".join(cells))
        if i % blank_every == 0:
            lines.append(blank)
    end = "\r\n" if crlf else "\n"
    text = end.join(lines) + (end if last_newline else "")
    path = write(tmp_path_factory.mktemp("csv"), ("\ufeff" if bom else "") + text)
    rows, refused = read_csv_rows(source(path))
    records = list(csv.reader(io.StringIO(text.replace("\r\n", "\n"))))[1:]
    expected_rows = [(n, *cells) for n, cells in enumerate(records, 1) if len(cells) == 3]
    # A line of blanks alone is no row; any other width but the header's is refused.
    expected_refused = [n for n, cells in enumerate(records, 1)
                        if len(cells) != 3 and not (len(cells) <= 1 and "".join(cells).strip() == "")]
    assert rows.rows() == expected_rows
    assert refused["row"].to_list() == expected_refused


CSV_FIXTURES = [
    "binance/Binance-Spot-Trade-History-202403051200(UTC+8)_ab12.csv",
    "binance/Binance-Transaction-History-202403061200(UTC+8)_ef56.csv",
    "bybit/AssetChangeDetails_uta_123456789_20240301_20240306_0.csv",
    "bybit/spot_current.csv",
    "coinbase/report_current.csv",
    "coinbase/pro_fills.csv",
    "kraken/trades_current.csv",
    "kraken/ledgers_current.csv",
    "deribit/transaction_log-4242-BTC-2024.csv",
    "generic/balance_plain.csv",
]


@pytest.mark.parametrize("name", CSV_FIXTURES)
def test_every_reader_refuses_a_ragged_row_alone(tmp_path: Path, name: str) -> None:
    """A short and a long row appended to a fixture are refused with their row numbers; the
    rows before them book as they did."""
    original = FIXTURES / name
    (fmt,) = [f for f in all_formats() if f.detect(head_text(original))]
    before = fmt.read(source(original))
    text = original.read_text(encoding="utf-8")
    last = [line for line in text.splitlines() if line.strip()][-1]
    short = io.StringIO()
    cells = next(csv.reader([last]))
    # Two cells short where there are more than two: Binance reads a row missing only its
    # trailing empty Remark as complete (issue 17).
    csv.writer(short, lineterminator="\n").writerow(cells[:-2] if len(cells) > 2 else cells[:-1])
    path = write(tmp_path, text.rstrip("\n") + "\n" + short.getvalue() + last + ",extra\n", original.name)
    after = fmt.read(source(path))
    data_rows = max(before.frame["source_row"].max() or 0, before.quarantine["row"].max() or 0)
    ragged = after.quarantine.filter(pl.col("reason").str.contains("cells, the header"))
    assert ragged["row"].to_list() == [data_rows + 1, data_rows + 2], ragged
    assert after.frame.equals(before.frame)


def test_okx_still_fails_the_whole_file_on_a_ragged_row(tmp_path: Path) -> None:
    """OKX keeps its tested contract: a ragged row fails the file (short rows too)."""
    (fmt,) = [f for f in all_formats() if f.name == "okx.funding_account"]
    path = write(tmp_path, "UID:1,Time Zone:UTC+8\nid,Time,Type,Amount,Before Balance,After Balance,Symbol\n1,2024-03-04 12:00:00,Deposit,1,0,1\n")
    with pytest.raises(ValueError, match="not a well-formed CSV: row 1: the row has 6 cells, the header 7"):
        fmt.read(source(path))


# --------------------------------------------------------------------------- synthetic ids


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "", None]), st.sampled_from(["1", "2|x", None])), max_size=30))
def test_synthetic_ids_are_row_text_and_occurrence(rows: list[tuple[str | None, str | None]]) -> None:
    frame = pl.DataFrame(rows, schema={"x": pl.String, "y": pl.String}, orient="row")
    seen: dict[str, int] = {}
    expected = []
    for x, y in rows:
        text = f"{x or ''}|{y or ''}"
        seen[text] = seen.get(text, 0) + 1
        expected.append(f"{text}#{seen[text]}")
    assert with_synthetic_id(frame, ["x", "y"], "id")["id"].to_list() == expected


# --------------------------------------------------------------------------- codes glued to numbers


def python_trailing_code(cell: str | None) -> str:
    """The code after a number read greedily; an ``E`` followed by a digit is an exponent."""
    if cell is None:
        return ""
    after = cell.strip().lstrip("0123456789.,+- ")
    if re.match(r"[eE][+-]?[0-9]", after):
        after = after[1:].lstrip("0123456789+- ")
    return after


cells = st.text(alphabet="0123456789.,+- eEBTCUSDINH\t", max_size=12) | st.sampled_from(["0.01000000BTC", "1,300.00USDT", "0.26 USDT", "2.0E-7BTC", "0.5ETH", "0.011INCH", "1E5"])


@settings(max_examples=300, deadline=None)
@given(st.lists(cells | st.none(), min_size=1, max_size=10))
def test_trailing_code_reads_the_number_greedily(values: list[str | None]) -> None:
    frame = pl.DataFrame({"c": values}, schema={"c": pl.String})
    assert frame.select(trailing_code(pl.col("c")))["c"].to_list() == [python_trailing_code(v) for v in values]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(cells, st.sampled_from(["BTC", "ETH", "BETH", "1INCH", None]), st.sampled_from(["USDT", "ETH", "", None])), min_size=1, max_size=10))
def test_code_at_end_prefers_the_known_codes_longest_first(rows: list[tuple[str, str | None, str | None]]) -> None:
    def expected(cell: str, first: str | None, second: str | None) -> str | None:
        text = cell.strip()
        known = sorted([c for c in (first, second) if c is not None and text.endswith(c)], key=len, reverse=True)
        code = known[0] if known else python_trailing_code(text)
        return code or None

    frame = pl.DataFrame(rows, schema={"c": pl.String, "a": pl.String, "b": pl.String}, orient="row")
    got = frame.select(code_at_end(pl.col("c"), pl.col("a"), pl.col("b")))["c"].to_list()
    assert got == [expected(*r) for r in rows]


# --------------------------------------------------------------------------- times


_SHAPES = (
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? UTC$", "%Y-%m-%d %H:%M:%S%.f UTC"),
    (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$", "%Y-%m-%dT%H:%M:%S%.fZ"),
)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2110, 1, 1)),
    st.integers(0, 12),
    st.sampled_from([" UTC", "Z", "", " UTC "]),
    st.sampled_from([0, 480, -360]),
)
def test_shaped_time_reads_fractions_exactly(when: datetime, places: int, suffix: str, offset: int) -> None:
    digits = f"{when.microsecond:06d}{when.microsecond % 997:06d}"[:places]
    text = when.strftime("%Y-%m-%d" + ("T" if suffix == "Z" else " ") + "%H:%M:%S") + (f".{digits}" if places else "") + suffix
    got = pl.DataFrame({"t": [text]}).select(shaped_time(pl.col("t"), _SHAPES, offset))["t"].item()
    if suffix.strip() in ("UTC", "Z") and suffix == suffix.rstrip():
        micros = int(digits[:6].ljust(6, "0")) if places else 0
        expected = when.replace(microsecond=micros, tzinfo=timezone.utc) - timedelta(minutes=offset)
        assert got == expected, text
    else:
        assert got == pl.DataFrame({"t": [text.strip()]}).select(shaped_time(pl.col("t"), _SHAPES, offset))["t"].item()


def test_shaped_time_is_null_off_shape() -> None:
    texts = ["2024-03-05 09:15:02 UTC", "2024-03-05 09:15:02", "2024-02-30T00:00:00Z", "24-03-05 09:15:02", None]
    got = pl.DataFrame({"t": texts}).select(shaped_time(pl.col("t"), _SHAPES))["t"].to_list()
    assert got == [datetime(2024, 3, 5, 9, 15, 2, tzinfo=timezone.utc), None, None, None, None]


# --------------------------------------------------------------------------- frames


def test_interleave_puts_a_rows_parts_together_in_file_order() -> None:
    own = pl.DataFrame({"source_row": [1, 2, 4], "what": ["own1", "own2", "own4"]})
    fee = pl.DataFrame({"source_row": [2, 3, 4], "what": ["fee2", "fee3", "fee4"]})
    assert interleave([own, fee])["what"].to_list() == ["own1", "own2", "fee2", "fee3", "own4", "fee4"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.integers(1, 40), max_size=40).map(lambda r: sorted(set(r))), min_size=1, max_size=4))
def test_interleave_is_the_sort_by_row_then_part(rows_per_part: list[list[int]]) -> None:
    """The argsort-and-gather interleave gives what sorting every part's rows by (row, part) gives."""
    parts = [pl.DataFrame({"source_row": rows, "what": [f"p{i}r{r}" for r in rows]}, schema={"source_row": pl.Int64, "what": pl.String})
             for i, rows in enumerate(rows_per_part)]
    expected = sorted(((r, i, w) for i, p in enumerate(parts) for r, w in p.iter_rows()), key=lambda t: (t[0], t[1]))
    got = interleave(parts)
    assert got.columns == ["source_row", "what"] and got.schema == parts[0].schema
    assert got.rows() == [(r, w) for r, _, w in expected]


def test_per_distinct_equals_computing_every_row() -> None:
    frame = pl.DataFrame({"pair": ["BTCUSDT", "ETHBTC", None, "BTCUSDT"], "n": [1, 2, 3, 4]})
    expr = pl.col("pair").str.slice(0, 3)
    assert per_distinct(frame, "pair", base=expr).equals(frame.with_columns(base=expr))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["BTCUSDT", "ETHBTC", "", " x ", None]), st.sampled_from(["BUY", "sell", None])), max_size=40))
def test_per_distinct_is_every_row_computed(rows: list[tuple[str | None, str | None]]) -> None:
    """The coded lookup gives each row what the expressions give computed on every row,
    nulls and empty text as keys of their own."""
    frame = pl.DataFrame({"pair": [p for p, _ in rows], "side": [s for _, s in rows], "n": list(range(len(rows)))},
                         schema={"pair": pl.String, "side": pl.String, "n": pl.Int64})
    exprs = {"base": pl.col("pair").str.slice(0, 3), "word": pl.concat_str([pl.col("side").str.to_lowercase(), pl.col("pair")], separator="/"),
             "missing": pl.col("pair").is_null()}
    assert per_distinct(frame, ["pair", "side"], **exprs).equals(frame.with_columns(**exprs))
    side = pl.col("side").str.to_lowercase().replace_strict({"buy": "buy", "sell": "sell"}, default=None)
    assert per_distinct(frame, "side", word=side).equals(frame.with_columns(word=side))


def test_split_refused_keeps_passing_rows_and_explains_each_refusal() -> None:
    frame = pl.DataFrame({"source_row": [1, 2, 3], "qty": ["1", "x", ""]})
    checks = [
        Check("qty", pl.col("qty") == "x", pl.format('"{}" is not a number', pl.col("qty"))),
        Check("qty", pl.col("qty") == "", "missing"),
    ]
    passed, refused = split_refused(frame, checks, "f.csv")
    assert passed["source_row"].to_list() == [1]
    assert refused.select("row", "column", "reason", "raw").rows() == [(2, "qty", '"x" is not a number', "x"), (3, "qty", "missing", "")]
    same, none = split_refused(frame.head(1), checks, "f.csv")
    assert same.equals(frame.head(1)) and none.is_empty()


def test_text_or_null_knows_each_venues_blanks() -> None:
    frame = pl.DataFrame({"c": [" a ", "", "--", " -- ", None]})
    assert frame.select(text_or_null(pl.col("c")))["c"].to_list() == ["a", None, "--", "--", None]
    assert frame.select(text_or_null(pl.col("c"), ("", "--")))["c"].to_list() == ["a", None, None, None, None]


# --------------------------------------------------------------------------- found while consolidating


def test_every_refusal_has_a_reason_even_for_an_empty_cell(tmp_path: Path) -> None:
    """Coinbase used to give a null reason when the time cell was empty (a format with a
    null argument is null): each quarantine row must say why."""
    header = "portfolio,type,time,amount,balance,amount/balance unit,transfer id,trade id,order id"
    path = write(tmp_path, f"{header}\ndefault,deposit,,1,1,USD,t1,,\n")
    (fmt,) = [f for f in all_formats() if f.name == "coinbase.pro_account"]
    quarantine = fmt.read(source(path)).quarantine
    assert quarantine["reason"].to_list() == ['"time": "" is not a UTC time of the export\'s shape in 2000..2099']


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(cells | st.none(), st.sampled_from(["BTC", "USDT", "1INCH", "", None])), min_size=1, max_size=10))
def test_strip_code_removes_only_the_cells_own_code(rows: list[tuple[str | None, str | None]]) -> None:
    def expected(cell: str | None, code: str | None) -> str | None:
        if cell is None:
            return None
        text = cell.strip()
        return text.removesuffix(code).rstrip() if code is not None and text.endswith(code) else text

    frame = pl.DataFrame(rows, schema={"c": pl.String, "k": pl.String}, orient="row")
    assert frame.select(strip_code(pl.col("c"), pl.col("k")))["c"].to_list() == [expected(*r) for r in rows]


def _strip_code_by_gathering(cell: pl.Expr, code: pl.Expr) -> pl.Expr:
    """strip_code as it was before its three plain passes: the coded cells found, gathered,
    stripped and scattered back."""

    def strip(parts: pl.Series) -> pl.Series:
        frame = parts.struct.unnest()
        frame.columns = ["text", "code"]
        text = frame["text"]
        coded = frame.select(pl.col("text").str.ends_with(pl.col("code")).fill_null(False)).to_series().arg_true()
        if coded.len():
            bare = frame[coded].select(pl.col("text").str.strip_suffix(pl.col("code")).str.strip_chars_end()).to_series()
            text = text.scatter(coded, bare)
        return text.alias(parts.name)

    return pl.struct(cell.str.strip_chars(), code.alias("__code")).map_batches(strip, return_dtype=pl.String, is_elementwise=True)


ODD_TEXT = st.text(st.sampled_from(["1", ".", ",", "-", "B", "T", "C", "U", "S", "D", " ", "\t", "\u00a0", "\u3000", "\x1c", "\n", "é", "E"]), max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(ODD_TEXT | st.none(), st.sampled_from(["BTC", "USDT", "C", " ", "", "é", None]) | ODD_TEXT), min_size=1, max_size=12))
def test_strip_code_is_what_it_was(rows: list[tuple[str | None, str | None]]) -> None:
    frame = pl.DataFrame(rows, schema={"c": pl.String, "k": pl.String}, orient="row")
    got = frame.select(strip_code(pl.col("c"), pl.col("k")))
    assert got.equals(frame.select(_strip_code_by_gathering(pl.col("c"), pl.col("k"))))
    assert got.columns == ["c"]
