"""The landing folder's memory: each file read once, its canonical rows kept by business date.

A landing folder grows by a few files a day while its history stays; reading all of it for
every run would make a day cost the whole history. So each file is read once and its
canonical rows (:class:`utl.ingest.FileRows`) are kept as Parquet, sorted by date, under
the memory folder; a date's inputs are cut from the files whose dates reach it.

A file is known by its path, size and modification time; when those change its content is
hashed, and only a new hash reads it again (a ``touch`` reads nothing). A new, changed or
removed file changes the dates its rows touch (a snapshot or a marks file also the day
after, which opens from it or values from it). Each date has a fingerprint: a hash of that
date's inputs and settings. A date whose fingerprint is not the one it was last written
with is stale, and so is every date after it, since each date starts from the one before.

Layout of the memory folder::

    catalog.parquet          one row per landing file read: size, mtime, sha256, dates touched
    rows/<key>/<table>.parquet   its canonical rows (fills, movements, balances, marks, quarantine,
                             derivative_fills, derivative_cash, positions, specs); no file
                             for a table the file leaves empty
    fingerprints.parquet     business_date -> fingerprint, for the dates computed so far
    settings.sha256          what the rows were made with (utl.toml, memory version)

Dedupe across files works within a date: the same venue id on two dates is two fills.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import fcntl
import functools
import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from utl.day import DayInputs
from utl.derivatives.instruments import specs_in_force
from utl.derivatives.schemas import DATED_INSTRUMENT_SPECS, DATED_POSITION_SNAPSHOT, DERIVATIVE_CASH, DERIVATIVE_FILLS
from utl.errors import QUARANTINE_SCHEMA, empty_quarantine, quarantine_file
from utl.ingest import (
    FileRows, combine, misplaced_file, read_balances_file, read_marks_file, read_positions_landing_file,
    read_specs_landing_file, read_trades_file, read_transfers_file,
)
from utl.landing import scan_landing
from utl.legs import book_legs
from utl.schemas import CATALOG, DAY_LEGS, DATED_QUARANTINE, FINGERPRINTS, Legs, validate_rows
from utl.transfer_legs import day_transfer_legs
from utl.settings import Settings, load_settings
from utl.shards import plan_shards, shard_accounts, shard_rows, whole_number_setting
from utl.venues import all_formats
from utl.venues.base import LAYOUT_REFUSALS
from utl.venues.contracts import ledger_trade_accounts

# Bump when what is stored per file changes (every file is read again), or when a date's
# outputs from the same inputs change: every date's fingerprint changes, so every date is
# written again. 4: fee_asset_assumed rows in utl.exceptions. 5: derivative frames per file,
# derivatives in the day state and outputs, breaks with a subject (012_derivatives).
# 6: derivative lines in utl.pnl; futures wallet replies read as balances (files once
# unknown are read again); one legs source per account; specs the exports state.
# 7: an empty table of a file writes no rows/<key>/<table>.parquet.
MEMORY_VERSION = "7"

ONE_DAY = dt.timedelta(days=1)


ALONE_BYTES = 256 * 1024 * 1024
"""A landing file this large is read with no other file in flight (see LandingMemory._read_all)."""


def ingest_threads() -> int:
    """How many landing files a refresh reads at once: ``UTL_INGEST_THREADS``, else twice the
    machine's cores, at most 4. A read holds the GIL part of the time, so a core is kept busy
    by two (the 10 M-fill landing on 2 cores: 21.0 s on two threads, 20.0 on four); past 4 the
    disk and the GIL take the gain."""
    return whole_number_setting("UTL_INGEST_THREADS", max(1, min(2 * (os.cpu_count() or 1), 4)))


# The kinds of file that belong to one (venue, account); marks, listed transfers and
# instruments belong to none (shared by every shard of a date).
ACCOUNT_KINDS = ("fills", "ledger", "balances", "positions")
ACCOUNT_COLUMNS = {"venue": pl.String, "account": pl.String}


@dataclass(frozen=True)
class Refresh:
    """What a refresh found: the files read again and the earliest date they change."""

    read: list[str]  # new or changed files, read now
    removed: list[str]
    stale_from: dt.date | None


# Read back every run and written on every change, so encoding time counts more than size:
# uncompressed and without statistics (a file's rows are of a date or a few, read whole),
# the 10 M-fill day's 16 M stored rows are written in 6.7 CPU s against 11.4 with lz4 and
# statistics, and read in 2.1 against 2.9, for 1.9x the bytes (1.7 GB against 0.9).
ROWS_PARQUET = {"compression": "uncompressed", "statistics": False}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class DayDigest:
    """A date's rows digested a shard at a time: per table, the sorted hashes of every
    shard's rows, so the digest is the whole date's whatever the shards (order-free)."""

    def __init__(self) -> None:
        self._columns: dict[str, list[str]] = {}
        self._hashes: dict[str, list[pl.Series]] = {}

    def add(self, rows: DayRows) -> DayDigest:
        for name, frame in rows.tables().items():
            self._columns.setdefault(name, frame.columns)
            if frame.height:
                self._hashes.setdefault(name, []).append(frame.hash_rows(seed=7))
        return self

    def extend(self, other: DayDigest) -> DayDigest:
        """Add the rows ``other`` digested (another shard's, digested on its own thread)."""
        for name, columns in other._columns.items():
            self._columns.setdefault(name, columns)
            self._hashes.setdefault(name, []).extend(other._hashes.get(name, []))
        return self

    def value(self, settings_hash: str) -> str:
        digest = hashlib.sha256(settings_hash.encode())
        for name, columns in self._columns.items():
            parts = self._hashes.get(name, [])
            hashed = pl.concat(parts).sort() if parts else pl.Series([], dtype=pl.UInt64)
            digest.update(name.encode() + hashlib.sha256(",".join(columns).encode() + hashed.to_numpy().tobytes()).digest())
        return digest.hexdigest()


def _touched(rows: FileRows) -> list[dt.date]:
    """The business dates a file's rows reach (a snapshot or marks file: also the day after)."""
    dates: list[dt.date] = []
    for frame in (rows.fills, rows.movements, rows.transfers, rows.derivative_fills, rows.derivative_cash):
        if frame.height:
            dates += frame.select(pl.col("ts").dt.date().unique())["ts"].to_list()
    if rows.kind == "instruments":  # in force from its date on: the dates after it follow as stale
        dates += rows.specs["business_date"].unique().to_list() or [d for d in [_file_date(rows.file)] if d]
    for frame in (rows.balances, rows.marks, rows.positions):
        if frame.height:
            days = frame["business_date"].unique().to_list()
            dates += days + [d + ONE_DAY for d in days]
    return dates


@dataclass(frozen=True)
class DayRows:
    """One date's canonical rows: its fills and ledger lines, the snapshots and marks of the
    date and the day before, the refusals that belong to the date."""

    business_date: dt.date
    fills: pl.DataFrame  # FILLS_OUT, ts within the date
    movements: pl.DataFrame  # MOVEMENTS_OUT, ts within the date
    balances: pl.DataFrame  # BALANCES_OUT of the date and the day before
    marks: pl.DataFrame  # MARKS_OUT of the date and the day before
    quarantine: pl.DataFrame  # DATED_QUARANTINE
    ledger_accounts: pl.DataFrame  # (venue, account) whose legs come from a ledger export
    transfers: pl.DataFrame  # LISTED_TRANSFERS, ts within the date (transfers/*.csv)
    # (venue, account) whose ledger states derivative trades (utl.venues.contracts): their
    # instrument legs come from it on every date
    ledger_trade_accounts: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=ACCOUNT_COLUMNS))
    # Derivatives (utl.ingest.Ingested's frames, cut to the date):
    derivative_fills: pl.DataFrame = field(default_factory=DERIVATIVE_FILLS.to_frame)  # ts within the date
    derivative_cash: pl.DataFrame = field(default_factory=DERIVATIVE_CASH.to_frame)  # ts within the date
    positions: pl.DataFrame = field(default_factory=DATED_POSITION_SNAPSHOT.to_frame)  # the date and the day before
    specs: pl.DataFrame = field(default_factory=DATED_INSTRUMENT_SPECS.to_frame)  # the latest instruments/ file on or before

    TABLES = ("fills", "movements", "balances", "marks", "quarantine", "ledger_accounts", "transfers",
              "derivative_fills", "derivative_cash", "positions", "specs", "ledger_trade_accounts")
    OPTIONAL = ("ledger_trade_accounts",)  # absent from rows stored before

    def tables(self) -> dict[str, pl.DataFrame]:
        return {name: getattr(self, name) for name in self.TABLES}

    @classmethod
    def from_tables(cls, business_date: dt.date, tables: dict[str, pl.DataFrame]) -> DayRows:
        return cls(business_date=business_date,
                   **{name: tables[name] for name in cls.TABLES if name in tables or name not in cls.OPTIONAL})


# A shard's DayRows: the tables of its own accounts' files; the shared ones (files of no
# account, and the landing's account lists) are stored with shard 0 only.
SHARD_ROWS = ("fills", "movements", "balances", "quarantine", "derivative_fills", "derivative_cash", "positions")
SHARED_ROWS = ("marks", "transfers", "specs", "ledger_accounts", "ledger_trade_accounts")


def shard_day_rows(day: dt.date, own: dict[str, pl.DataFrame], shared: dict[str, pl.DataFrame],
                   plan: pl.DataFrame, shard: int) -> DayRows:
    """Shard ``shard`` of ``plan``'s DayRows for booking: its ``own`` tables (SHARD_ROWS),
    the ``shared`` ones whole, but of the listed transfers only those from its accounts
    (shard 0 also takes those from accounts of no shard: they name no withdrawal here)."""
    listed = shared["transfers"]
    from_plan = listed.join(plan.select(from_venue="venue", from_account="account", shard="shard"),
                            on=["from_venue", "from_account"], how="left")
    mine = from_plan.filter((pl.col("shard") == shard) | (pl.col("shard").is_null() & (shard == 0))).drop("shard")
    return DayRows.from_tables(day, {**shared, **own, "transfers": mine})


def dated(quarantine: pl.DataFrame, day: dt.date | None) -> pl.DataFrame:
    """Quarantine rows (QUARANTINE) as DATED_QUARANTINE rows of ``day`` (None: unknown)."""
    frame = quarantine.cast(QUARANTINE_SCHEMA).with_columns(business_date=pl.lit(day, pl.Date))
    return frame.select(DATED_QUARANTINE.names()).cast(DATED_QUARANTINE).sort("file", "row", nulls_last=False)


def book_day(rows: DayRows) -> tuple[DayInputs, pl.DataFrame]:
    """The legs of one date, booked from its rows (one source per account), and the date's
    inputs for :func:`utl.day.step`; the second frame is every refusal of the date."""
    day = rows.business_date
    ledger_accounts = set(rows.ledger_accounts.iter_rows())
    legs, refused = validate_rows(book_legs(rows.fills, rows.movements, ledger_accounts), Legs)
    transfers, leg_refs, unlisted = day_transfer_legs(legs, rows.transfers)
    legs = legs.with_columns(business_date=pl.lit(day, pl.Date)).select(DAY_LEGS.names()).cast(DAY_LEGS)
    inputs = DayInputs(
        legs=legs,
        snapshots=rows.balances.filter(pl.col("business_date") == day),
        opening_snapshots=rows.balances.filter(pl.col("business_date") == day - ONE_DAY),
        marks=rows.marks,
        transfers=transfers,
        leg_refs=leg_refs,
        ledger_accounts=rows.ledger_accounts,
        **derivative_inputs(rows),
    )
    return inputs, pl.concat([rows.quarantine, dated(refused, day), dated(unlisted, day)]).sort(
        "file", "row", nulls_last=False)


def derivative_inputs(rows: DayRows) -> dict[str, pl.DataFrame]:
    """The derivative fields of the date's :class:`DayInputs` (DERIV-INTERFACE §3) from the
    date's rows: ``derivative_fills`` and ``derivative_cash`` (ts within
    the date), ``positions`` (the files of the date and the day before, as ``balances``) and
    ``specs`` (every instruments/ file up to the date: the latest is in force)."""
    day = rows.business_date
    return {
        "derivative_fills": rows.derivative_fills.filter(pl.col("ts").dt.date() == day),
        "derivative_cash": rows.derivative_cash.filter(pl.col("ts").dt.date() == day),
        "positions": rows.positions.filter(pl.col("business_date") == day),
        "opening_positions": rows.positions.filter(pl.col("business_date") == day - ONE_DAY),
        "specs": specs_in_force(rows.specs, day),
        "ledger_trade_accounts": rows.ledger_trade_accounts,
    }


class LandingMemory:
    """The memory of one landing folder, kept in ``root`` (UTL's data folder for it)."""

    def __init__(self, landing: Path, root: Path, settings: Settings | None = None):
        self.landing = landing.resolve()
        self.root = root
        self.settings = settings or load_settings(self.landing)
        self.root.mkdir(parents=True, exist_ok=True)
        self._catalog: pl.DataFrame | None = None
        self._fingerprints: pl.DataFrame | None = None
        self._undated = empty_quarantine()

    # -- the lock: one process refreshes a memory at a time ---------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.root / "memory.lock").open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- what is remembered ----------------------------------------------------------

    @property
    def catalog(self) -> pl.DataFrame:
        if self._catalog is None:
            path = self.root / "catalog.parquet"
            self._catalog = pl.read_parquet(path).cast(CATALOG) if path.exists() else CATALOG.to_frame()
        return self._catalog

    @property
    def fingerprints(self) -> pl.DataFrame:
        if self._fingerprints is None:
            path = self.root / "fingerprints.parquet"
            self._fingerprints = pl.read_parquet(path).cast(FINGERPRINTS) if path.exists() else FINGERPRINTS.to_frame()
        return self._fingerprints

    def _settings_hash(self) -> str:
        toml = self.landing / "utl.toml"
        text = toml.read_bytes() if toml.exists() else b""
        return hashlib.sha256(MEMORY_VERSION.encode() + b"\0" + text).hexdigest()

    def _write(self, name: str, frame: pl.DataFrame) -> None:
        partial = self.root / f".{name}.partial"
        frame.write_parquet(partial)
        os.replace(partial, self.root / name)

    # -- refresh ---------------------------------------------------------------------

    def refresh(self) -> Refresh:
        """Read the files that are new or changed since the last refresh; forget removed ones."""
        with self._locked():
            self._catalog = self._fingerprints = None
            settings_file = self.root / "settings.sha256"
            settings_hash = self._settings_hash()
            if not settings_file.exists() or settings_file.read_text() != settings_hash:
                # Canonical rows depend on the settings (aliases, pairs): nothing old stands.
                shutil.rmtree(self.root / "rows", ignore_errors=True)
                for name in ("catalog.parquet", "fingerprints.parquet"):
                    (self.root / name).unlink(missing_ok=True)
                self._catalog = CATALOG.to_frame()
                self._fingerprints = FINGERPRINTS.to_frame()
            files = scan_landing(self.landing, self.settings.pairs, self.settings.timezones)
            self._undated = pl.concat([misplaced_file(rel, why).quarantine for rel, why in files.misplaced]
                                      or [empty_quarantine()])
            known = {row["file"]: row for row in self.catalog.iter_rows(named=True)}
            formats = all_formats()
            rows, read, touched = [], [], []
            entries = ([(s.path, s.rel, lambda s=s: read_trades_file(s, formats, self.settings)) for s in files.trades]
                       + [(s.path, s.rel, lambda d=d, s=s: read_balances_file(d, s, formats, self.settings))
                          for d, s in files.balances]
                       + [(p, p.relative_to(self.landing).as_posix(),
                           lambda d=d, p=p: read_marks_file(d, p, self.landing, self.settings)) for d, p in files.marks]
                       + [(p, p.relative_to(self.landing).as_posix(),
                           lambda p=p: read_transfers_file(p, self.landing, self.settings)) for p in files.transfers]
                       + [(s.path, s.rel, lambda d=d, s=s: read_positions_landing_file(d, s, self.landing))
                          for d, s in files.positions]
                       + [(p, p.relative_to(self.landing).as_posix(),
                           lambda d=d, p=p: read_specs_landing_file(d, p, self.landing)) for d, p in files.instruments])
            pending = []
            for path, rel, reader in entries:
                stat = path.stat()
                old = known.pop(rel, None)
                if old is not None and (old["size"], old["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns):
                    rows.append(old)
                    continue
                pending.append((path, rel, stat, old, reader))
            for (path, rel, stat, old, _), (sha, key, file_rows, dates) in zip(pending, self._read_all(pending)):
                if file_rows is None:  # touched or saved again, the same content: nothing to read
                    rows.append({**old, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
                    continue
                if old is not None and old["first_date"] is not None:
                    touched += [old["first_date"]]
                touched += dates
                read.append(rel)
                rows.append({
                    "file": rel, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha, "key": key,
                    "format": file_rows.format, "kind": file_rows.kind, "venue": file_rows.venue,
                    "account": file_rows.account, "first_date": min(dates, default=None),
                    "last_date": max(dates, default=None), "rows": file_rows.rows,
                    "refused": file_rows.quarantine.height,
                })
            removed = sorted(known)
            for old in known.values():
                shutil.rmtree(self.root / "rows" / old["key"], ignore_errors=True)
                if old["first_date"] is not None:
                    touched.append(old["first_date"])
            catalog = pl.DataFrame(rows, schema=CATALOG, orient="row") if rows else CATALOG.to_frame()
            ledger_before = self._ledger_accounts(self.catalog), self._ledger_trade_accounts(self.catalog)
            self._catalog = catalog
            self._write("catalog.parquet", catalog)
            fingerprints = self.fingerprints
            if (self._ledger_accounts(catalog), self._ledger_trade_accounts(catalog)) != ledger_before:
                # An account's legs come from its ledger once it has one: every date may move.
                fingerprints = FINGERPRINTS.to_frame()
                touched += [d for d in catalog["first_date"].drop_nulls().to_list()]
            stale_from = min(touched, default=None)
            if stale_from is not None:
                fingerprints = fingerprints.filter(pl.col("business_date") < stale_from)
            self._fingerprints = fingerprints
            self._write("fingerprints.parquet", fingerprints)
            settings_file.write_text(settings_hash)
            return Refresh(read=read, removed=removed, stale_from=stale_from)

    def _read_all(self, pending: list) -> Iterator[tuple[str, str, FileRows | None, list[dt.date]]]:
        """Hash each pending file (new, or its size or time changed) and read and store it if
        its content is new, giving back its SHA-256, its key, its catalog facts (None when the
        content is the one known: nothing read; else its rows' tables emptied once stored) and
        the dates they touch, in the order given.

        Files are independent, and most of a hash or a read runs outside the GIL, so up to
        ``UTL_INGEST_THREADS`` (default: the machine's cores, at most 4) are done at once, each
        stored by the thread that read it. A reader can take several times its file's size in
        memory, so a file of ``ALONE_BYTES`` or more is read alone, after the others in flight."""
        def one(item) -> tuple[str, str, FileRows | None, list[dt.date]]:
            path, rel, _, old, reader = item
            sha = _sha256(path)
            key = hashlib.sha256(f"{rel}\0{sha}".encode()).hexdigest()[:32]
            if old is not None and old["sha256"] == sha:
                return sha, key, None, []
            file_rows = reader()
            dates = _touched(file_rows)
            self._store_rows(key, file_rows)
            # Only the catalog's facts are kept past here: the frames are let go.
            return sha, key, dataclasses.replace(file_rows, **{name: getattr(file_rows, name).clear()
                                                               for name in FileRows.TABLES if name != "quarantine"}), dates

        threads = ingest_threads()
        if threads <= 1 or len(pending) <= 1:
            yield from map(one, pending)
            return
        with concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="utl-ingest") as pool:
            window: collections.deque = collections.deque()
            for item in pending:
                if item[2].st_size >= ALONE_BYTES:
                    while window:
                        yield window.popleft().result()
                    yield one(item)
                    continue
                window.append(pool.submit(one, item))
                if len(window) >= 2 * threads:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()

    def _store_rows(self, key: str, rows: FileRows) -> None:
        """Each non-empty table of the file as ``rows/<key>/<table>.parquet``, sorted by its
        date; an empty table of its schema writes no file (:meth:`_read_rows` gives it back)."""
        folder = self.root / "rows" / key
        partial = folder.with_name(f".{key}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        for name in FileRows.TABLES:
            frame = getattr(rows, name)
            if frame.height == 0 and _of_table_schema(frame, name):
                continue  # most files fill one or two of the tables
            order = ROW_ORDER.get(name)
            if order and not frame[order].is_sorted():  # a reader's rows are mostly in time order already
                frame = frame.sort(order, maintain_order=True)
            frame.write_parquet(partial / f"{name}.parquet", **ROWS_PARQUET)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(partial, folder)

    @staticmethod
    def _ledger_accounts(catalog: pl.DataFrame) -> set[tuple[str, str]]:
        ledger = catalog.filter(pl.col("kind") == "ledger").select("venue", "account").unique()
        return set(ledger.iter_rows())

    @staticmethod
    def _ledger_trade_accounts(catalog: pl.DataFrame) -> set[tuple[str, str]]:
        return set(ledger_trade_accounts(catalog).iter_rows())

    # -- reading a date --------------------------------------------------------------

    def first_business_date(self) -> dt.date | None:
        """The day after the earliest balance snapshot (eod.md), or None without one."""
        snapshots = self.catalog.filter(pl.col("kind") == "balances")
        # A snapshot file's first_date is its own day (its last_date the day after).
        return None if snapshots.height == 0 else snapshots["first_date"].min() + ONE_DAY

    def _files_reaching(self, first: dt.date, last: dt.date) -> pl.DataFrame:
        return self.catalog.filter(
            pl.col("first_date").is_not_null() & (pl.col("first_date") <= last) & (pl.col("last_date") >= first)
        )

    def _scan(self, key: str, table: str, predicate: pl.Expr) -> pl.DataFrame:
        path = self.root / "rows" / key / f"{table}.parquet"
        if not path.exists():  # an empty table writes no file (_store_rows)
            return _empty_table(table)
        return pl.scan_parquet(path).filter(predicate).collect()

    def _read_rows(self, key: str, table: str) -> pl.DataFrame:
        """A stored file's whole ``table`` (FileRows.TABLES); empty when it wrote none."""
        path = self.root / "rows" / key / f"{table}.parquet"
        return pl.read_parquet(path) if path.exists() else _empty_table(table)

    def day_sources(self, day: dt.date) -> pl.DataFrame:
        """(file, key) of every stored file :meth:`day_rows` of ``day`` reads (those reaching
        it or the day before, the instruments file in force) and of the ledger exports the
        landing's account lists come from: a date's rows are a function of these alone, so
        equal sources mean equal rows."""
        specs = (self.catalog.filter((pl.col("kind") == "instruments") & (pl.col("first_date") <= day))
                 .sort("first_date", "file").tail(1))
        ledgers = self.catalog.filter(pl.col("kind") == "ledger")
        return (pl.concat([self._files_reaching(day - ONE_DAY, day), specs, ledgers]).select("file", "key")
                .unique().sort("file", "key"))

    def day_plan(self, day: dt.date, max_rows: int) -> pl.DataFrame:
        """``day``'s accounts in shards (:func:`utl.shards.plan_shards`, PLAN), weighed by
        the rows their files hold per day they span. Shards of this plan may be read and
        booked one at a time: a fill, its legs and its dedupe stay within its account."""
        files = self._files_reaching(day - ONE_DAY, day).filter(pl.col("kind").is_in(ACCOUNT_KINDS))
        days = (pl.col("last_date") - pl.col("first_date")).dt.total_days() + 1
        weights = files.select("venue", "account", rows=(pl.col("rows") // pl.max_horizontal(days, 1)).cast(pl.Int64))
        return plan_shards(weights, [], self.settings, max_rows)

    def day_rows(self, day: dt.date, accounts: pl.DataFrame | None = None, shared: bool = True) -> DayRows:
        """The canonical rows of ``day`` from every file that reaches it, deduplicated.

        ``accounts`` (venue, account): only the files of those accounts (one shard of
        :meth:`day_plan`); ``shared``: whether the files of no account (marks, listed
        transfers, instruments) and the landing's account lists are included. The union of
        every shard's rows, one of them with ``shared``, is the date's rows."""
        before = day - ONE_DAY
        on_day = pl.col("ts").dt.date() == day
        in_two_days = pl.col("business_date").is_in([before, day])
        parts: list[FileRows] = []
        files = self._files_reaching(before, day)
        if accounts is not None or not shared:
            own = pl.col("kind").is_in(ACCOUNT_KINDS)
            mine = files.filter(own) if accounts is None else \
                files.filter(own).join(accounts, on=["venue", "account"], how="semi")
            files = pl.concat([mine, files.filter(~own)]) if shared else mine
        for row in files.iter_rows(named=True):
            key, kind = row["key"], row["kind"]
            tables = {
                "fills": self._scan(key, "fills", on_day) if kind == "fills" else None,
                "movements": self._scan(key, "movements", on_day) if kind == "ledger" else None,
                "balances": self._scan(key, "balances", in_two_days) if kind == "balances" else None,
                "marks": self._scan(key, "marks", in_two_days) if kind == "marks" else None,
                "transfers": self._scan(key, "transfers", on_day) if kind == "transfers" else None,
                "derivative_fills": self._scan(key, "derivative_fills", on_day) if kind == "ledger" else None,
                "derivative_cash": self._scan(key, "derivative_cash", on_day) if kind == "ledger" else None,
                "positions": self._scan(key, "positions", in_two_days) if kind == "positions" else None,
            }
            # A snapshot's, marks or positions file's own refusals belong to its date.
            own_day = kind in ("balances", "marks", "positions", "instruments") and row["first_date"] == day
            quarantine = self._read_rows(key, "quarantine") if own_day else empty_quarantine()
            parts.append(FileRows(row["file"], row["format"], kind, row["venue"], row["account"],
                                  quarantine=quarantine, rows=0,
                                  **{n: f if f is not None else _empty(n) for n, f in tables.items()}))
        if shared:
            parts += self._specs_in_force(day)
        combined = combine(parts, self.settings)
        ledger = sorted(self._ledger_accounts(self.catalog)) if shared else []
        return DayRows(
            business_date=day,
            fills=combined.fills,
            movements=combined.movements,
            balances=combined.balances,
            marks=combined.marks,
            quarantine=dated(combined.quarantine, day),
            ledger_accounts=pl.DataFrame(ledger, schema={"venue": pl.String, "account": pl.String}, orient="row"),
            transfers=combined.transfers,
            derivative_fills=combined.derivative_fills,
            derivative_cash=combined.derivative_cash,
            positions=combined.positions,
            specs=combined.specs,
            ledger_trade_accounts=ledger_trade_accounts(self.catalog) if shared
            else pl.DataFrame(schema=ACCOUNT_COLUMNS),
        )

    def _specs_in_force(self, day: dt.date) -> list[FileRows]:
        """The specs of the latest ``instruments/`` file dated on or before ``day`` (specs
        rarely change: a file holds until the next one)."""
        files = self.catalog.filter((pl.col("kind") == "instruments") & (pl.col("first_date") <= day))
        if files.height == 0:
            return []
        row = files.sort("first_date", "file").row(-1, named=True)
        specs = self._read_rows(row["key"], "specs")
        return [FileRows(row["file"], row["format"], "instruments", "", "", quarantine=empty_quarantine(), rows=0,
                         specs=specs, **{n: _empty(n) for n in ("fills", "movements", "balances", "marks")})]

    def fingerprint(self, day: dt.date, rows: DayRows | DayDigest | None = None) -> str:
        """The fingerprint of ``day``'s inputs (computed once per change, then remembered).
        ``rows``: ``day_rows(day)``, or the :class:`DayDigest` of its shards, when the caller
        has them already (not read again); else read a shard at a time."""
        known = self.fingerprints.filter(pl.col("business_date") == day)
        if known.height:
            return known["fingerprint"][0]
        if isinstance(rows, DayRows) and rows.business_date == day:
            rows = DayDigest().add(rows)
        if not isinstance(rows, DayDigest):
            rows = DayDigest()
            for shard, accounts in enumerate(shard_accounts(self.day_plan(day, shard_rows())) or [None]):
                rows.add(self.day_rows(day, accounts, shared=shard == 0))
        value = rows.value(self._settings_hash())
        self.remember_fingerprints({day: value})
        return value

    def remember_fingerprints(self, values: dict[dt.date, str]) -> None:
        with self._locked():
            self._fingerprints = None
            new = pl.DataFrame({"business_date": list(values), "fingerprint": list(values.values())}, schema=FINGERPRINTS)
            merged = pl.concat([self.fingerprints.filter(~pl.col("business_date").is_in(list(values))), new])
            self._fingerprints = merged.sort("business_date")
            self._write("fingerprints.parquet", self._fingerprints)

    def undated_quarantine(self) -> pl.DataFrame:
        """Refusals whose business date is unknown (DATED_QUARANTINE, null date): misplaced
        files, files no reader takes, rows of trade exports, accounts with no snapshot."""
        parts = [self._undated]
        for row in self.catalog.filter(pl.col("refused") > 0).iter_rows(named=True):
            if row["kind"] not in ("balances", "marks", "positions", "instruments") or row["first_date"] is None:
                parts.append(self._read_rows(row["key"], "quarantine"))
        parts.append(self._orphans())
        return dated(pl.concat([p.cast(QUARANTINE_SCHEMA) for p in parts]), None)

    def unknown_files(self) -> pl.DataFrame:
        """The files no single reader takes (QUARANTINE rows, one per file): none recognises
        it (the reason names the header seen and the nearest known layout) or two claim it."""
        parts = [self._read_rows(row["key"], "quarantine")
                 for row in self.catalog.filter(pl.col("format").is_null()).iter_rows(named=True)]
        frame = pl.concat([p.cast(QUARANTINE_SCHEMA) for p in parts]) if parts else empty_quarantine()
        refused = pl.any_horizontal([pl.col("reason").str.starts_with(r) for r in LAYOUT_REFUSALS])
        return frame.filter(pl.col("row").is_null() & refused).sort("file")

    def _orphans(self) -> pl.DataFrame:
        """An account with trades but no balance snapshot has no opening state: one entry says
        its legs are not booked (its files are read for the count only; such accounts are rare).
        A ledger may book to wallets of its account (``<account>/<wallet>``): each is checked."""
        snapshot_accounts = set(self.catalog.filter(pl.col("kind") == "balances").select("venue", "account").iter_rows())
        traded = self.catalog.filter(pl.col("kind").is_in(["fills", "ledger"])).sort("file")
        files_of: dict[tuple[str, str], list[dict]] = {}
        for f in traded.iter_rows(named=True):
            booked = {(f["venue"], f["account"])}
            if f["kind"] == "ledger":
                path = self.root / "rows" / f["key"] / "movements.parquet"
                lines = pl.scan_parquet(path) if path.exists() else _empty("movements").lazy()
                booked |= set(lines.select("venue", "account").unique().collect().iter_rows())
            for account in sorted(booked - snapshot_accounts):
                files_of.setdefault(account, []).append(f)
        entries = []
        ledger_accounts = self._ledger_accounts(self.catalog)
        for (venue, account), files in files_of.items():
            parts = [FileRows(f["file"], f["format"], f["kind"], venue, account, rows=0,
                              quarantine=empty_quarantine(),
                              **{n: (self._read_rows(f["key"], n)
                                     if n in ("fills", "movements") else _empty(n)) for n in FileRows.TABLES
                                 if n != "quarantine"})
                     for f in files]
            combined = combine(parts, self.settings)
            legs = book_legs(combined.fills, combined.movements, ledger_accounts)
            legs = legs.filter((pl.col("venue") == venue) & (pl.col("account") == account))
            if legs.height == 0 and any(f["account"] != account for f in files):
                continue
            entries.append(quarantine_file(
                parts[0].file,
                f"account {venue}/{account} has no balance snapshot, so no opening state: "
                f"its {legs.height} legs are not booked",
            ))
        return pl.concat(entries) if entries else empty_quarantine()


# The column each stored table is sorted by (a date's rows are cut from it).
ROW_ORDER = {"fills": "ts", "movements": "ts", "balances": "business_date", "marks": "business_date",
             "transfers": "ts", "derivative_fills": "ts", "derivative_cash": "ts",
             "positions": "business_date", "specs": "business_date"}


def _empty_schema(table: str) -> pl.Schema:
    """The schema of a FileRows table (``quarantine`` too)."""
    return QUARANTINE_SCHEMA if table == "quarantine" else _empty_frame(table).schema


@functools.cache
def _table_layout(table: str) -> tuple[list[str], list[pl.DataType]]:
    schema = _empty_schema(table)
    return list(schema.names()), list(schema.dtypes())


def _of_table_schema(frame: pl.DataFrame, table: str) -> bool:
    """``frame.schema == _empty_schema(table)``, ~5x cheaper (no Schema is built)."""
    names, dtypes = _table_layout(table)
    return frame.columns == names and frame.dtypes == dtypes


def _empty_table(table: str) -> pl.DataFrame:
    return empty_quarantine() if table == "quarantine" else _empty(table)


def _empty(table: str) -> pl.DataFrame:
    return _empty_frame(table).clone()  # made once: a frame from a schema costs ~0.6 ms, and a day asks ~1,000 times


@functools.cache
def _empty_frame(table: str) -> pl.DataFrame:
    from utl.schemas import BALANCES_OUT, FILLS_OUT, LISTED_TRANSFERS, MARKS_OUT, MOVEMENTS_OUT

    return {"fills": FILLS_OUT, "movements": MOVEMENTS_OUT, "balances": BALANCES_OUT, "marks": MARKS_OUT,
            "transfers": LISTED_TRANSFERS, "derivative_fills": DERIVATIVE_FILLS, "derivative_cash": DERIVATIVE_CASH,
            "positions": DATED_POSITION_SNAPSHOT, "specs": DATED_INSTRUMENT_SPECS}[table].to_frame()


def _file_date(rel: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(rel.rsplit("/", 1)[-1][:10])
    except ValueError:
        return None
