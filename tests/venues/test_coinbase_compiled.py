"""The transaction report's compiled passes (amounts read as written, Notes split by a
compiled pass, movements put in file order without a sort) against the Polars steps they
stand in for: the same values, the same refusals, cell for cell and file for file.
``KERNEL_ROWS`` is set to 0 so that a few rows take the compiled passes."""

from __future__ import annotations

from decimal import Decimal
from itertools import accumulate
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.expr.string import ExprStringNameSpace
from polars.testing import assert_frame_equal

from odd_files import frozen_path, odd_file, read
from test_csv_kernels import REGULAR, written
from utl.decimals import DECIMAL
from utl.venues import base
from utl.venues import coinbase
from utl.venues.base import Source, interleave
from utl.venues.coinbase import _with_amounts

digits = st.text("0123456789", min_size=0, max_size=24)
grouped = st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=9).map(",".join)
amount = st.builds(
    lambda sign, mark, whole, point, fraction, tail: f"{sign}{mark}{whole}{point}{fraction}{tail}",
    st.sampled_from(["", "-", "+", "--", " ", "  -"]), st.sampled_from(["", "$", "€", "£", "$$", "US$", "kr", "$ "]),
    st.one_of(digits, grouped), st.sampled_from(["", ".", ".", ","]), digits,
    st.sampled_from(["", "", " ", "  ", "e5", "x", "$", " SEK", "SEK", "\t", "\u00a0"]),
)
AMOUNTS = [
    "$1,234.50", "-$5,250.00", "$0.52548301", "\"$48,673.57095000\"", "1,234", "12,34", "0,123", "000,123", "$1.1234567890123456789",
    "$123,456,789,012,345,678,901.5", "$12345678901234567890.5", "123456789012345678", "1234567890123456789", "", " ", None,
    "abc", "$", "-$", "$-5", "€7", "£-3", "-£3,000", "kr100", "100 SEK", "100SEK", " $1,234.50 ", "+$1,234.5", "+5", "-0",
    "-0.000", "5.", ".5", "1e5", "1E-05", "\t7", "7\t", "\u00a012", "$$5", "US$5", "5 $", "1.2.3", "--", "-", "NaN",
    "999999999999999999.999999999999999999", "-999,999,999,999,999,999.999999999999999999", "0.0000000000000000001",
]


@pytest.fixture(autouse=True)
def numba_loaded_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "KERNELS_NEED_NUMBA_LOADED", False)


def _amounts(texts: list[str | None], compiled: bool, monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    frame = pl.DataFrame({"a": texts, "b": list(reversed(texts))}, schema={"a": pl.String, "b": pl.String})
    calls = []
    compiled_amounts = coinbase._compiled_amounts
    with monkeypatch.context() as patch:
        patch.setattr(base, "KERNEL_ROWS", 0 if compiled else 10**9)
        patch.setattr(coinbase, "_compiled_amounts", lambda *a: calls.append(a) or compiled_amounts(*a))
        got = _with_amounts(frame, {"x": pl.col("a"), "y": pl.col("b").str.strip_chars_start("#")})
    assert len(calls) == (2 if compiled else 0)  # the path asked for was taken
    return got


def test_amounts_read_as_written_match_the_polars_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _amounts(AMOUNTS, False, monkeypatch)
    got = _amounts(AMOUNTS, True, monkeypatch)
    assert_frame_equal(got, expected, check_exact=True)
    rows = {r["a"]: r for r in got.iter_rows(named=True)}
    # Read by the compiled pass, and by the Polars steps it leaves to (a code, €), and refused.
    assert str(rows["-$5,250.00"]["x__value"]) == "-5250.000000000000000000"
    assert str(rows["100 SEK"]["x__value"]) == "100.000000000000000000" and str(rows["€7"]["x__value"]) == "7.000000000000000000"
    assert rows["abc"]["x__value__bad"] and rows["1.2.3"]["x__value__bad"] and not rows[""]["x__value__bad"]
    assert rows[None]["x__value"] is None and not rows[None]["x__value__bad"]


def test_amounts_of_an_empty_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    assert_frame_equal(_amounts([], True, monkeypatch), _amounts([], False, monkeypatch), check_exact=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), amount, st.sampled_from(AMOUNTS)), max_size=30))
def test_any_amounts_read_the_same_either_way(texts: list[str | None]) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(base, "KERNELS_NEED_NUMBA_LOADED", False)
        assert_frame_equal(_amounts(texts, True, monkeypatch), _amounts(texts, False, monkeypatch), check_exact=True)


@pytest.mark.parametrize("seed", (1, 2))
def test_odd_reports_read_by_the_compiled_passes_are_as_frozen(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "coinbase.transaction_report"
    path = odd_file(tmp_path, name, seed)
    base.warm_kernels()
    base._warming[0].join()
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    got = read(path, name)
    for frame_name, frame in got.items():
        assert_frame_equal(frame, pl.read_parquet(frozen_path(name, seed, frame_name)), check_exact=True)


NOTES = [
    "Sold 1.5 ETH for 5229.00 USDC on ETH-USDC at 3500.00 USDC/ETH", "Bought 0.1 BTC for 6,000.00 USD on BTC-USD at 60000 USD/BTC",
    "Bought 1 BTC for 1 USD on BTC-USD at 1 USD/BTC/X", "Bought 1 BTC for 1 USD on BTC-USD at 1 USD/", "Bought 1 BTC for 1 USD on BTC-USD at 1 /BTC",
    "Bought 1 BTC for 1 USD on BTC-USD-X at 1 USD/BTC", "Bought 1 BTC for 1 USD on -USD at 1 USD/BTC", "Bought 1 BTC for 1 USD on BTC- at 1 USD/BTC",
    "Bought  1 BTC for 1 USD on BTC-USD at 1 USD/BTC", "Bought 1 BTC for 1 USD on BTC-USD at 1 USD/BTC ", "Bought 1\tBTC for 1 USD on BTC-USD at 1 USD/BTC",
    "Bought 1\u00a0BTC for 1 USD on BTC-USD at 1 USD/BTC", "Bought 1 BTC for 1 USD on BTC-USD at 1 USD/BTC extra", "Bought 1 BTC for 1 USD on BTC-USD at 1",
    "bought 1 BTC for 1 USD on BTC-USD at 1 USD/BTC", "Boughtx 1 BTC for 1 USD on BTC-USD at 1 USD/BTC", "Sold 1 BTC fur 1 USD on BTC-USD at 1 USD/BTC",
    "Sold 1 BTC for 1 USD in BTC-USD at 1 USD/BTC", "Sold 1 BTC for 1 USD on BTC-USD @ 1 USD/BTC", "Sold 1 ÉTH for 1 USD on ÉTH-USD at 1 USD/ÉTH",
    "Sold 1 BTC for 1 USD on BTC\u2003USD at 1 USD/BTC", "Sold 1 BTC for 1 USD on BTC-USD at 1 USD//BTC", "Sold ~ ! for # $ on %-^ at & */(",
    "Converted 9.04300000 ETH to 6.63421609 USDC", "Converted 1 ETH to 0 USDC", "Converted 1 ETH to abc USDC", "Converted 1 ETH  to 2 USDC",
    "Converted 1 ETH to 2 USDC extra", "Converted 1 ETH to 2", "converted 1 ETH to 2 USDC", "Converted 1 ETH-X to 2 US/DC", "Converted\t1 ETH to 2 USDC",
    "", " ", "Sold", "Converted", "Bought 3.99000000 SOL for 525.48300000 USD", None,
]
note_token = st.sampled_from(["Bought", "Sold", "Converted", "for", "to", "on", "at", "1.5", "ETH", "BTC-USD", "USD/BTC", "-", "/", "a-b-c",
                              "a/b/c", "x-", "/y", "É", "\u00a0", "\t", "", "  "])
note = st.lists(note_token, max_size=12).map(" ".join)


GROUPS = {coinbase._ADVANCED_NOTE: 9, coinbase._CONVERT_NOTE: 4}


def _groups(notes: list[str | None], taken: list[bool], pattern: str, compiled: bool, monkeypatch: pytest.MonkeyPatch,
            fields: tuple[str, ...] | None = None) -> pl.DataFrame:
    fields = fields or tuple(str(g) for g in range(1, GROUPS[pattern] + 1))
    with monkeypatch.context() as patch:
        patch.setattr(base, "KERNEL_ROWS", 0 if compiled else 10**9)
        series = coinbase._note_groups(pl.Series("n", notes, dtype=pl.String), pl.Series("w", taken, dtype=pl.Boolean), pattern, fields)
    return series.struct.unnest()


@pytest.mark.parametrize("pattern", [coinbase._ADVANCED_NOTE, coinbase._CONVERT_NOTE])
def test_notes_split_by_the_compiled_pass_match_the_regex(pattern: str, monkeypatch: pytest.MonkeyPatch) -> None:
    base.warm_kernels()
    base._warming[0].join()
    taken = [i % 7 != 3 for i in range(len(NOTES))]
    expected = _groups(NOTES, taken, pattern, False, monkeypatch)
    got = _groups(NOTES, taken, pattern, True, monkeypatch)
    assert_frame_equal(got, expected, check_exact=True)
    assert got.null_count().row(0) != (len(NOTES),) * got.width  # some notes do match
    # The pattern's every group, as Polars names them.
    expected_all = pl.DataFrame({"n": NOTES, "w": taken}, schema={"n": pl.String, "w": pl.Boolean}).select(
        pl.when("w").then(pl.col("n")).str.extract_groups(pattern)).to_series().struct.unnest()
    assert_frame_equal(got, expected_all, check_exact=True)
    # Some of the groups, in the order asked.
    some = ("4", "3") if pattern == coinbase._CONVERT_NOTE else ("3", "4", "6", "7")
    assert_frame_equal(_groups(NOTES, taken, pattern, True, monkeypatch, some), expected_all.select(some), check_exact=True)
    assert_frame_equal(_groups(NOTES, taken, pattern, False, monkeypatch, some), expected_all.select(some), check_exact=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), note, st.sampled_from(NOTES)), st.booleans()), max_size=30))
def test_any_notes_split_the_same_either_way(cells: list[tuple[str | None, bool]]) -> None:
    notes, taken = [c[0] for c in cells], [c[1] for c in cells]
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(base, "KERNELS_NEED_NUMBA_LOADED", False)
        for pattern in (coinbase._ADVANCED_NOTE, coinbase._CONVERT_NOTE):
            assert_frame_equal(_groups(notes, taken, pattern, True, monkeypatch), _groups(notes, taken, pattern, False, monkeypatch),
                               check_exact=True)


def test_the_compiled_pass_takes_plain_notes_and_leaves_the_others_to_the_regex(monkeypatch: pytest.MonkeyPatch) -> None:
    notes = ["Sold 1.5 ETH for 5229.00 USDC on ETH-USDC at 3500.00 USDC/ETH", "Sold 1.5\tETH for 5229.00 USDC on ETH-USDC at 3500.00 USDC/ETH",
             "Sold 1.5 ETH for 5229.00 USDC on ETH-USDC at 3500.00 USDC/ETH/X", "Converted 1 ETH to 2 USDC"] * 2
    regex_read = []
    extract_groups = ExprStringNameSpace.extract_groups

    def spied(self: object, pattern: str) -> pl.Expr:
        regex_read.append(pattern)
        return extract_groups(self, pattern)

    monkeypatch.setattr(ExprStringNameSpace, "extract_groups", spied)
    got = _groups(notes, [True] * len(notes), coinbase._ADVANCED_NOTE, True, monkeypatch)
    # The plain note by the compiled pass; the tab and the second "/" by the regex, which splits at the last "/".
    assert got.row(0) == ("1.5", "ETH", "5229.00", "USDC", "ETH", "USDC", "3500.00", "USDC", "ETH")
    assert got.row(1) == (None,) * 9
    assert got.row(2)[7:] == ("USDC/ETH", "X") and got.row(3) == (None,) * 9
    assert regex_read == [coinbase._ADVANCED_NOTE]  # once, for the notes left
    regex_read.clear()
    _groups(notes[:1], [True], coinbase._ADVANCED_NOTE, True, monkeypatch)
    assert regex_read == []


decimal_amount = st.one_of(st.none(), st.sampled_from([Decimal(0), Decimal("1.5"), Decimal("-2"), Decimal("99999999999999999999.999999999999999999")]))
word = st.one_of(st.none(), st.sampled_from(["", "a", "id-1", "a much longer text than twelve bytes"]))


def _legs(frame: pl.DataFrame) -> tuple[dict, dict, dict]:
    own = {"entry_id": pl.col("entry_id"), "kind": pl.col("kind"), "qty": pl.col("cash")}
    second = {"taken": pl.col("cash") != 0, "entry_id": pl.col("entry_id") + "/quote", "kind": pl.lit("trade"), "qty": -pl.col("cash")}
    third = {"taken": pl.col("fee").is_not_null() & (pl.col("fee") != 0), "entry_id": pl.col("entry_id") + "/fee",
             "kind": pl.when(pl.col("cash").is_null()).then(pl.lit("fee")).otherwise(pl.col("kind")), "qty": -pl.col("fee")}
    return own, second, third


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), word, word, decimal_amount, decimal_amount), max_size=30), st.booleans())
def test_legs_in_order_are_the_plain_interleave(rows: list[tuple], narrow: bool) -> None:
    steps, entry_ids, kinds, cash, fee = zip(*rows) if rows else ((), (), (), (), ())
    frame = pl.DataFrame(
        {"source_row": pl.Series(list(accumulate(steps)), dtype=pl.Int64), "entry_id": pl.Series(entry_ids, dtype=pl.String),
         "kind": pl.Series(kinds, dtype=pl.String), "cash": pl.Series(cash, dtype=DECIMAL), "fee": pl.Series(fee, dtype=DECIMAL),
         "note": pl.Series(kinds[::-1], dtype=pl.String)})
    own, second, third = _legs(frame)
    columns = ["source_row", "entry_id", "kind", "qty"] if narrow else ["note", "qty", "source_row", "kind", "entry_id"]
    expected = interleave([
        frame.with_columns(**own).select(columns),
        *[frame.filter(leg["taken"]).with_columns(**{k: v for k, v in leg.items() if k != "taken"}).select(columns) for leg in (second, third)],
    ])
    assert_frame_equal(coinbase._legs_in_order(frame, own, second, third, columns), expected, check_exact=True)


def test_legs_in_order_of_every_kind_of_row() -> None:
    frame = pl.DataFrame({"source_row": [2, 5, 6, 9], "entry_id": ["a", "b", "c", "d"], "kind": ["k"] * 4,
                          "cash": [Decimal(1), Decimal(0), Decimal(2), None], "fee": [Decimal(3), None, Decimal(0), Decimal(4)]},
                         schema_overrides={"cash": DECIMAL, "fee": DECIMAL})
    got = coinbase._legs_in_order(frame, *_legs(frame), ["source_row", "entry_id"])
    assert got.rows() == [(2, "a"), (2, "a/quote"), (2, "a/fee"), (5, "b"), (6, "c"), (6, "c/quote"), (9, "d"), (9, "d/fee")]
    assert coinbase._legs_in_order(frame.head(0), *_legs(frame), ["source_row", "entry_id"]).height == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(word, decimal_amount), max_size=40), st.lists(st.integers(0, 39), max_size=120), st.integers(1, 50))
def test_gathered_in_pieces_is_the_gather(rows: list[tuple], at: list[int], most: int) -> None:
    """The legs' gather in pieces of at most ``most`` values (chunks of the result) gives the
    values of one gather, for a column and for a frame."""
    frame = pl.DataFrame({"text": [r[0] for r in rows], "amount": [r[1] for r in rows]}, schema={"text": pl.String, "amount": DECIMAL})
    index = pl.Series([i for i in at if i < frame.height], dtype=pl.UInt32)
    got = coinbase._gathered_in_pieces(frame, index, most)
    assert_frame_equal(got, frame.gather(index), check_exact=True)
    assert_frame_equal(coinbase._gathered_in_pieces(frame["text"], index, most).to_frame(), frame.select("text").gather(index),
                       check_exact=True)


def test_legs_gathered_lets_its_legs_go() -> None:
    """What the reader calls apart: the legs in order, the frame of leg values emptied."""
    frame = pl.DataFrame({"source_row": [2, 5, 6, 9], "entry_id": ["a", "b", "c", "d"], "kind": ["k"] * 4,
                          "cash": [Decimal(1), Decimal(0), Decimal(2), None], "fee": [Decimal(3), None, Decimal(0), Decimal(4)]},
                         schema_overrides={"cash": DECIMAL, "fee": DECIMAL})
    own, second, third = _legs(frame)
    columns = ["source_row", "entry_id", "kind", "qty"]
    legs = coinbase._leg_values(frame, own, second, third, ["source_row"])
    got = coinbase._legs_gathered(legs, list(own), columns)
    assert legs.width == 0
    assert_frame_equal(got, coinbase._legs_in_order(frame, own, second, third, columns), check_exact=True)
    assert got.rows()[:3] == [(2, "a", "k", Decimal(1)), (2, "a/quote", "trade", Decimal(-1)), (2, "a/fee", "k", Decimal(-3))]


def test_plain_decimals_are_the_compiled_number_pass_in_one(monkeypatch: pytest.MonkeyPatch) -> None:
    base.warm_kernels()
    base._warming[0].join()
    text = pl.concat([pl.Series("t", AMOUNTS, dtype=pl.String)] * 3).slice(2)  # Arrow buffers with an offset
    value, exact = coinbase._plain_decimals(text, "v")
    whole, fraction, expected_exact = base._plain_numbers(text, None)
    assert (exact == expected_exact).all() and exact.any() and not exact.all()
    assert_frame_equal(value.to_frame(), base._decimal_column("v", whole, fraction, expected_exact).to_frame(), check_exact=True)
    assert coinbase._plain_decimals(text.head(0), "v")[0].len() == 0


@pytest.mark.parametrize(("text", "regular"), REGULAR + [('a,b,c\n1,2,3\n' * 30 + '4,5,6,7\n', False), ('a,b,c\n1,2,3\n' * 30 + '4,5\n', False)])
@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("columns", [["b"], [" A ", "c"], ["a", "b", "c"], ["zz"], []])
def test_reading_some_columns_is_reading_all_then_selecting(text: str, regular: bool, compiled: bool, columns: list[str], tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """read_csv_columns (what the transaction report reads with) leaves the other columns out,
    and only that: the rows, their numbers and the refused ones are as read whole (a long row
    is refused though Polars, reading some columns, would not see it), on the regular path
    that has Polars read only those columns and on the others."""
    source, skip = written(text, tmp_path)
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    if not compiled:
        monkeypatch.setattr(base, "kernels_for", lambda rows: False)

    wanted = {base.normal(c) for c in columns}

    def pick(header: tuple[str, ...]) -> list[str]:
        return [c for c in header if base.normal(c) in wanted]

    def read(some: bool) -> tuple[pl.DataFrame, pl.DataFrame] | str:
        try:
            return base.read_csv_columns(source, pick, skip)[:2] if some else base.read_csv_rows(source, skip)
        except Exception as e:
            return f"{type(e).__name__}: {e}"

    whole, some = read(False), read(True)
    if isinstance(whole, str):
        assert some == whole
        return
    expected = whole[0].select(c for c in whole[0].columns if c == "source_row" or base.normal(c) in wanted)
    assert_frame_equal(some[0], expected, check_exact=True)
    assert_frame_equal(some[1], whole[1], check_exact=True)
    # The projected read took the regular files whose rows are ASCII (Polars checks UTF-8
    # only in the columns it reads; a pick of none reads whole).
    if expected.width > 1:
        rows_text = text.split("\n", skip + 1)[-1]
        assert (base._read_regular_picked(source, skip, pick) is not None) == (regular and rows_text.isascii())


@pytest.mark.parametrize("bad", [b"x\xffz", b"\xc3", b"\xed\xa0\x80"])
def test_bad_utf8_in_a_column_not_read_still_fails_the_file(bad: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base.warm_kernels()
    base._warming[0].join()
    monkeypatch.setattr(base, "KERNEL_ROWS", 0)
    monkeypatch.setattr(base, "KERNEL_BYTES", 0)
    lines = [b"a,b,c"] + [b"1,xyz,3"] * 3000
    lines[2500] = b"1," + bad + b",3"
    path = tmp_path / "x.csv"
    path.write_bytes(b"\n".join(lines) + b"\n")
    source = Source(path=path, rel="x.csv", venue="v", account="a")
    with pytest.raises(UnicodeDecodeError) as whole:
        base.read_csv_rows(source)
    with pytest.raises(UnicodeDecodeError) as some:
        base.read_csv_columns(source, lambda header: ["a", "c"])
    assert str(some.value) == str(whole.value)
