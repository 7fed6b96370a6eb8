"""Bybit asset logs key a row without a trade id by its content and its occurrence number:
computed over the id-less rows alone, the keys are those computed over every row."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from utl.venues.base import with_synthetic_id
from utl.venues.bybit import _content_ids

cell = st.one_of(st.none(), st.sampled_from(["", "1", "a", "--", "x|y", "#1", "2.5"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(cell, cell, cell), max_size=40))
def test_content_ids_of_the_id_less_rows_are_those_of_all_rows(rows: list[tuple[str | None, ...]]) -> None:
    frame = pl.DataFrame(rows, schema={"Change": pl.String, "Type": pl.String, "Trade ID": pl.String}, orient="row")
    trade = pl.col("Trade ID").str.strip_chars().replace("", None)
    columns = ["Change", "Type", "Trade ID"]
    got = _content_ids(frame, columns, trade)
    plain = with_synthetic_id(frame, columns, "__content").with_columns(
        pl.when(trade.is_null()).then(pl.col("__content")).alias("__content"))
    assert got["__content"].to_list() == plain["__content"].to_list()
    assert got.drop("__content").equals(frame)


UTA_HEAD = ("UID: 1,Company Name: ,Country: \n"
            "Uid,Currency,Contract,Type,Direction,Quantity,Position,Filled Price,Funding,Fee Paid,Cash Flow,Change,Wallet Balance,Action,Time(UTC),{extra}\n")
UTA_ROWS = ("1,USDT,BTCUSDT,TRADE,BUY,0.01,0,65000,0,-0.65,-650,-650.65,349.35,--,2024-03-05 09:15:02,x\n"
            "1,BTC,BTCUSDT,TRADE,BUY,0.01,0,65000,0,0,0.01,0.01,0.01,--,2024-03-05 09:15:02,x\n")


def _entry_ids(tmp_path, extra: str) -> list[str]:
    from utl.venues.base import Source
    from utl.venues.bybit import read_uta

    path = tmp_path / f"uta_{extra}.csv"
    path.write_text(UTA_HEAD.format(extra=extra) + UTA_ROWS)
    parsed = read_uta(Source(path=path, rel=path.name, venue="bybit", account="a"))
    assert parsed.quarantine.height == 0
    return parsed.frame["entry_id"].to_list()


def test_content_is_written_beside_the_numbers_from_the_cells_as_read(tmp_path) -> None:
    # An extra column no step writes: the content (written in its own thread) holds its cell.
    ids = _entry_ids(tmp_path, "note")
    assert ids[0] == "1|USDT|BTCUSDT|TRADE|BUY|0.01|0|65000|0|-0.65|-650|-650.65|349.35|--|2024-03-05 09:15:02|x#1"
    assert ids[1] == ids[0] + "/fee" and ids[2].endswith("|x#1") and len(ids) == 3


def test_content_of_a_column_named_as_a_written_one_is_read_after_it_is_written(tmp_path) -> None:
    # A column named "cash" or "ts": the reader writes the parsed number or time over it before
    # the content is read (as it did before the content was written in a thread), so the
    # content holds the written value (the strings the reader gave before this change).
    row = "1|USDT|BTCUSDT|TRADE|BUY|0.01|0|65000|0|-0.65|-650|-650.65|349.35|--|2024-03-05 09:15:02|"
    assert _entry_ids(tmp_path, "cash")[:2] == [row + "-650.000000000000000000#1", row + "-650.000000000000000000#1/fee"]
    assert _entry_ids(tmp_path, "ts")[0] == row + "2024-03-05 09:15:02.000000+00:00#1"
