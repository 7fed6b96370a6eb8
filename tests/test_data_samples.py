"""The sample landing folder: reproducible, readable by our readers, and consistent with its
expected outcome (``data_samples/landing_expected.json``).

The expected positions come from the generator's own Decimal bookkeeping; here they are
recomputed from what the venue readers return, turned into legs as the contract says
(eod.md, "Opening state and booking"). Agreement cross-checks the generator and the readers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from utl.assets import canonical_asset
from utl.venues import all_formats
from utl.venues.base import Format, Parsed, Source, head_text

SAMPLES = Path(__file__).resolve().parents[1] / "data_samples"
LANDING = SAMPLES / "landing"
EXPECTED = json.loads((SAMPLES / "landing_expected.json").read_text(encoding="utf-8"))
GENERATED = ("landing", "landing_expected.json", "README.md")


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def venue_files() -> list[Path]:
    """Every file a reader must take: <venue>/<account>/{trades,balances}/<file>."""
    return sorted(p for p in LANDING.glob("*/*/*/*") if p.is_file() and p.parent.name in ("trades", "balances"))


def rel(path: Path) -> str:
    return path.relative_to(LANDING).as_posix()


def source(path: Path) -> Source:
    venue, account = path.relative_to(LANDING).parts[:2]
    return Source(path=path, rel=rel(path), venue=venue, account=account)


@pytest.fixture(scope="module")
def read() -> dict[str, tuple[Format, Parsed]]:
    """Each file read by the one format that recognises it."""
    out = {}
    formats = all_formats()
    for path in venue_files():
        head = head_text(path)
        (fmt,) = [f for f in formats if f.detect(head)]
        out[rel(path)] = (fmt, fmt.read(source(path)))
    return out


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(asset=canonical_asset(pl.col("asset")))


def fill_legs(fills: pl.DataFrame) -> pl.DataFrame:
    """Base +qty, quote -/+quote_qty, fee -fee in its own asset (eod.md)."""
    fills = fills.unique(["venue", "account", "trade_id"], keep="first", maintain_order=True)
    keys = ["venue", "account", "ts"]
    base = fills.select(*keys, asset="base", qty="qty")
    quote = fills.select(*keys, asset="quote", qty=pl.when(pl.col("qty") > 0).then(-pl.col("quote_qty")).otherwise(pl.col("quote_qty")))
    fee = fills.filter(pl.col("fee").fill_null(0) != 0).select(*keys, asset="fee_asset", qty=-pl.col("fee"))
    return pl.concat([base, quote, fee])


def ledger_legs(movements: pl.DataFrame) -> pl.DataFrame:
    movements = movements.unique(["venue", "account", "entry_id"], keep="first", maintain_order=True)
    return movements.select("venue", "account", "ts", "asset", "qty")


def legs(read: dict[str, tuple[Format, Parsed]]) -> pl.DataFrame:
    """One source of legs per account: its ledger export where it has one, else its fills."""
    by_account: dict[tuple[str, str], dict[str, list[pl.DataFrame]]] = defaultdict(lambda: defaultdict(list))
    for name, (fmt, parsed) in read.items():
        if fmt.kind != "balances":
            venue, account = name.split("/")[:2]
            by_account[venue, account][fmt.kind].append(parsed.frame)
    parts = []
    for kinds in by_account.values():
        if kinds["ledger"]:
            parts.append(ledger_legs(pl.concat(kinds["ledger"])))
        else:
            parts.append(fill_legs(pl.concat(kinds["fills"])))
    return canonical(pl.concat(parts))


def snapshots(read: dict[str, tuple[Format, Parsed]], day: str) -> dict[tuple[str, str, str], Decimal]:
    held: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for name, (fmt, parsed) in read.items():
        if fmt.kind == "balances" and name.endswith(f"/balances/{day}{Path(name).suffix}"):
            for r in canonical(parsed.frame).iter_rows(named=True):
                held[r["venue"], r["account"], r["asset"]] += r["total"]
    return held


def positions(read: dict[str, tuple[Format, Parsed]], day: str) -> dict[tuple[str, str, str], Decimal]:
    """Ledger position at end of ``day``: opening snapshot + every leg before ``day+1 00:00Z``."""
    held = snapshots(read, EXPECTED["opening_date"])
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), timezone.utc)
    summed = legs(read).filter(pl.col("ts") < end).group_by("venue", "account", "asset").agg(pl.col("qty").sum())
    for r in summed.iter_rows(named=True):
        held[r["venue"], r["account"], r["asset"]] += r["qty"]
    return held


def expected_positions(day: str, column: str = "qty") -> dict[tuple[str, str, str], Decimal]:
    return {(p["venue"], p["account"], p["asset"]): Decimal(p[column]) for p in EXPECTED["positions"][day]}


def nonzero(held: dict) -> dict:
    return {k: v for k, v in held.items() if v != 0}


# ---------------------------------------------------------------- the generator


def test_the_script_reproduces_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(SAMPLES / "make_landing.py"), "--out", str(tmp_path)], check=True)
    assert tree(tmp_path / "landing") == tree(LANDING)
    for name in GENERATED[1:]:
        assert (tmp_path / name).read_bytes() == (SAMPLES / name).read_bytes(), name


def test_the_landing_folder_has_the_contract_layout() -> None:
    names = set(tree(LANDING))
    assert "utl.toml" in names
    days = [EXPECTED["opening_date"], *EXPECTED["business_dates"]]
    assert {f"marks/{d}.csv" for d in days} <= names
    accounts = {tuple(n.split("/")[:2]) for n in names if n.count("/") == 3}
    assert len({venue for venue, _ in accounts}) >= 4
    assert ("binance", "mm-spot-1") in accounts and ("binance", "mm-spot-2") in accounts
    for venue, account in accounts:
        stems = {Path(n).stem for n in names if n.startswith(f"{venue}/{account}/balances/")}
        assert stems == set(days), (venue, account)
    settings = tomllib.loads((LANDING / "utl.toml").read_text())
    assert settings["reporting_currency"] == "USD" and settings["costing_method"] == "fifo"
    assert settings["tolerance"] == EXPECTED["tolerance"]
    assert settings["report"]["to"] == ["middle-office@example.com"]


def test_every_asset_held_has_a_mark_every_day() -> None:
    for day in EXPECTED["business_dates"]:
        marks = pl.read_csv(LANDING / "marks" / f"{day}.csv", infer_schema=False)
        assert marks.columns == ["asset", "price"]
        priced = set(marks["asset"]) | {EXPECTED["reporting_currency"]}
        assert {p["asset"] for p in EXPECTED["positions"][day]} <= priced, day


# ---------------------------------------------------------------- the readers on the sample


def test_every_file_is_recognised_by_exactly_one_format() -> None:
    formats = all_formats()
    seen = {}
    for path in venue_files():
        head = head_text(path)
        seen[rel(path)] = [f.name for f in formats if f.detect(head)]
    assert seen == {name: [info["format"]] for name, info in EXPECTED["files"].items()}


def test_only_the_planted_row_is_quarantined(read: dict[str, tuple[Format, Parsed]]) -> None:
    refused = pl.concat([parsed.quarantine for _, parsed in read.values()])
    found = [{k: r[k] for k in ("file", "row", "column", "raw")} for r in refused.iter_rows(named=True)]
    assert found == EXPECTED["quarantine"]
    assert "0.5x0000000ETH" in refused["reason"][0]


def test_every_other_row_books(read: dict[str, tuple[Format, Parsed]]) -> None:
    """No row lost: each data row of a CSV export is booked (a ledger row may give two
    movements) or quarantined."""
    for name, (fmt, parsed) in read.items():
        if fmt.kind == "balances":
            assert parsed.frame.height > 0, name
            continue
        booked = set(parsed.frame["source_row"]) | set(parsed.quarantine["row"])
        text = (LANDING / name).read_text(encoding="utf-8-sig")
        lines = [line for line in text.splitlines() if line.strip()]
        header_at = next(i for i, line in enumerate(lines) if not line.startswith(("UID:", "Transactions", "User,")))
        data_rows = len(lines) if name.endswith(".jsonl") else len(lines) - header_at - 1
        assert booked == set(range(1, data_rows + 1)), name


def test_opening_snapshots_are_the_expected_opening(read: dict[str, tuple[Format, Parsed]]) -> None:
    expected = {(o["venue"], o["account"], o["asset"]): Decimal(o["qty"]) for o in EXPECTED["opening"]}
    assert nonzero(snapshots(read, EXPECTED["opening_date"])) == expected


@pytest.mark.parametrize("day", EXPECTED["business_dates"])
def test_booked_rows_give_the_expected_ledger_positions(read: dict[str, tuple[Format, Parsed]], day: str) -> None:
    assert nonzero(positions(read, day)) == nonzero(expected_positions(day))


@pytest.mark.parametrize("day", EXPECTED["business_dates"])
def test_snapshots_read_as_the_expected_venue_totals(read: dict[str, tuple[Format, Parsed]], day: str) -> None:
    assert nonzero(snapshots(read, day)) == nonzero(expected_positions(day, "venue_qty"))


def test_breaks_follow_from_the_read_positions_and_snapshots(read: dict[str, tuple[Format, Parsed]]) -> None:
    tolerance = {a: Decimal(t) for a, t in tomllib.loads((LANDING / "utl.toml").read_text())["tolerance"].items()}
    run_start: dict[tuple[str, str, str], str] = {}
    for day in EXPECTED["business_dates"]:
        ledger, venue = positions(read, day), snapshots(read, day)
        found = []
        for key in sorted(set(ledger) | set(venue)):
            diff = venue.get(key, Decimal(0)) - ledger.get(key, Decimal(0))
            allowed = tolerance.get(key[2], Decimal(0))
            if abs(diff) > allowed:
                found.append((day, *key, ledger.get(key, Decimal(0)), venue.get(key, Decimal(0)), diff, allowed,
                              run_start.setdefault(key, day)))  # fmt: skip
            else:
                run_start.pop(key, None)
        columns = ("business_date", "venue", "account", "asset", "ledger_qty", "venue_qty", "diff", "tolerance", "first_seen")
        expected = [
            tuple(Decimal(b[c]) if c in columns[4:8] else b[c] for c in columns)
            for b in EXPECTED["breaks"][day] if b["subject"] == "balance"
        ]
        assert found == expected, day
    # The planted balance breaks, and the one planted position break (tests/test_sample_derivatives.py).
    subjects = [b["subject"] for day in EXPECTED["breaks"].values() for b in day]
    assert (subjects.count("balance"), subjects.count("position"), len(subjects)) == (6, 1, 7)
