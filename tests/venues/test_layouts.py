"""Every reader's header versions: each has a fixture, each fixture is claimed by its reader
alone, and a header no reader takes is described by its nearest known layout (issue 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from utl.ingest import read_source
from utl.venues import all_formats
from utl.venues.base import Format, Layout, Source, head_text, header_cells, header_fingerprint, nearest_layout

from fixture_files import fixture_heads

FORMATS = all_formats()
VERSIONS = [(f, layout) for f in FORMATS for layout in f.layouts]


def _fixture_headers() -> dict[str, list[Path]]:
    """fingerprint -> fixtures with a line of that header in their first 20 lines."""
    found: dict[str, list[Path]] = {}
    for path, head in fixture_heads():
        for line in head.splitlines()[:20]:
            if line.strip():
                found.setdefault(header_fingerprint(header_cells(line)), []).append(path)
    return found


HEADERS = _fixture_headers()


@pytest.mark.parametrize(("fmt", "layout"), VERSIONS, ids=[f"{f.name}:{v.version}" for f, v in VERSIONS])
def test_each_version_has_a_fixture_its_reader_alone_claims(fmt: Format, layout: Layout) -> None:
    fixtures = HEADERS.get(layout.fingerprint, [])
    assert fixtures, f"no fixture under tests/venues/fixtures has the {fmt.name} {layout.version} header"
    claimed = {path.name: [f.name for f in FORMATS if f.detect(head_text(path))] for path in fixtures}
    assert any(names == [fmt.name] for names in claimed.values()), claimed


def test_fingerprints_ignore_case_blanks_and_quotes_only() -> None:
    assert header_fingerprint(["txid", "refid"]) == header_fingerprint(['"TXID"', " Refid "])
    assert header_fingerprint(["txid", "refid"]) != header_fingerprint(["refid", "txid"])
    # One fingerprint, one version: no two published layouts share a header.
    prints = [layout.fingerprint for _, layout in VERSIONS]
    assert len(prints) == len(set(prints))


def test_nearest_layout_names_what_differs() -> None:
    # Kraken's 2017 ledgers with one column renamed: amount -> qty.
    head = "txid,refid,time,type,aclass,asset,qty,fee,balance\nL1,R1,2017-01-01 00:00:00,trade,currency,XXBT,1,0,1\n"
    near = nearest_layout(head, FORMATS)
    assert (near.format, near.layout.version, near.missing, near.extra) == ("kraken.ledgers", "2017", ("amount",), ("qty",))
    assert near.describe() == 'kraken.ledgers (2017): missing "amount"; extra "qty"'


def test_nearest_layout_looks_below_a_preamble() -> None:
    head = "UID: 1,Company Name: ,Country: \nUid,Date & Time(UTC),Coin,QTY,Type,Account Balance,Memo\n"
    near = nearest_layout(head, FORMATS)
    assert (near.format, near.layout.version, near.missing, near.extra) == (
        "bybit.fund_asset_changes", "current", ("Description",), ("Memo",))


def test_an_unknown_file_is_quarantined_with_its_header_and_nearest_layout(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    # A Spot Trade History whose user left out Executed (and added a column of their own).
    path.write_text("Time,Pair,Side,Price,Amount,Fee,Rebate\n2024-03-05 09:00:00,BTCUSDT,BUY,1,1,0,0\n")
    fmt, parsed = read_source(Source(path, "binance/a/trades/x.csv", "binance", "a"), FORMATS, ("fills", "ledger"))
    assert fmt is None
    [row] = parsed.quarantine.to_dicts()
    assert row["row"] is None and row["raw"] == "Time,Pair,Side,Price,Amount,Fee,Rebate"
    assert row["reason"] == ('unknown format: no reader recognises this file; header seen: '
                             '"Time,Pair,Side,Price,Amount,Fee,Rebate"; nearest known layout: '
                             'binance.spot_trades (current): missing "Executed"; extra "Rebate"; '
                             'binance.spot_trades needs "Executed"')


def test_two_readers_claiming_one_file_is_an_error_naming_both(tmp_path: Path) -> None:
    first = Format("a.one", "fills", lambda head: head.startswith("x,y"), lambda s: None)
    second = Format("b.two", "fills", lambda head: "x" in head, lambda s: None)
    path = tmp_path / "f.csv"
    path.write_text("x,y\n1,2\n")
    fmt, parsed = read_source(Source(path, "v/a/trades/f.csv", "v", "a"), [first, second], ("fills",))
    assert fmt is None
    assert parsed.quarantine["reason"].to_list() == [
        'ambiguous format: more than one reader claims this file (a.one and b.two); header seen: "x,y"']
