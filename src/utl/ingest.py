"""From a landing folder to the canonical tables: fills, movements, balances, marks, quarantine.

Each file is recognised by its content (exactly one format must claim it), read as text,
parsed exactly, its asset codes mapped to canonical ones, and every refused row or file
kept in ``quarantine`` with file, 1-based row, column and reason. Overlapping exports book
each venue id once; the same id with different content is a conflict: every version goes to
quarantine and none is booked, since choosing one would be a silent guess.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path

import polars as pl

from utl.assets import canonical_asset
from utl.decimals import DECIMAL, venue_decimal
from utl.derivatives.instruments import read_specs_file
from utl.derivatives.schemas import (
    DATED_INSTRUMENT_SPECS, DATED_POSITION_SNAPSHOT, DERIVATIVE_CASH, DERIVATIVE_FILLS, INSTRUMENT_SPECS, POSITION_SNAPSHOT,
)
from utl.derivatives.snapshots import binance_symbol, read_positions_file
from utl.errors import QUARANTINE_SCHEMA, empty_quarantine, quarantine_file
from utl.landing import LandingFiles, scan_landing
from utl.schemas import (
    BALANCES_OUT, FILES_OUT, FILLS_OUT, LISTED_TRANSFERS, MARKS_OUT, MOVEMENTS_OUT, Balances, Fills, Marks, Movements,
    keys_distinct, validate_rows,
)
from utl.transfer_list import combine_listed, read_transfers
from utl.venues.contracts import LEDGER_TRADE_FORMATS
from utl.settings import Settings, load_settings
from utl.snapshots import nothing_held
from utl.venues import all_formats
from utl.venues.base import (
    Check, Format, Parsed, Source, ambiguous_reason, head_text, one_line, split_refused, unknown_reason,
)

# Fills of these formats, and ccxt symbols with a settle currency (BTC/USDT:USDT), are
# derivatives: kept in ``fills``, each also an instrument leg in ``derivative_fills``; they
# book no base or quote legs (derivatives.md: a fill moves no cash), only their fee where
# the account's cash does not come from a ledger (utl.legs).
DERIVATIVE_FORMATS = frozenset({"binance.futures_trades"})
ASSET_CODE = r"^[A-Z0-9]{1,24}$"
# A ccxt derivative symbol: BTC/USDT:USDT, BTC/USDT:USDT-261225, BTC/USD:BTC-261225-100000-C.
DERIVATIVE_SYMBOL = r"^[A-Z0-9]{1,24}/[A-Z0-9]{1,24}:[A-Z0-9]{1,24}(-\d{6}(-\d+(\.\d+)?-[CP])?)?$"



@dataclass
class Ingested:
    settings: Settings
    fills: pl.DataFrame
    movements: pl.DataFrame
    balances: pl.DataFrame
    marks: pl.DataFrame
    quarantine: pl.DataFrame
    files: pl.DataFrame
    ledger_accounts: set[tuple[str, str]] = field(default_factory=set)
    # (venue, account) whose ledger states derivative trades (utl.venues.contracts.LEDGER_TRADE_FORMATS)
    ledger_trade_accounts: set[tuple[str, str]] = field(default_factory=set)
    transfers: pl.DataFrame = field(default_factory=LISTED_TRANSFERS.to_frame)  # transfers/*.csv rows
    derivative_fills: pl.DataFrame = field(default_factory=DERIVATIVE_FILLS.to_frame)
    derivative_cash: pl.DataFrame = field(default_factory=DERIVATIVE_CASH.to_frame)
    positions: pl.DataFrame = field(default_factory=DATED_POSITION_SNAPSHOT.to_frame)
    specs: pl.DataFrame = field(default_factory=DATED_INSTRUMENT_SPECS.to_frame)


def ingest_landing(landing: Path, settings: Settings | None = None) -> Ingested:
    """Read every file of a landing folder into the canonical tables."""
    settings = settings or load_settings(landing)
    files = scan_landing(landing, settings.pairs, settings.timezones)
    formats = all_formats()
    read = [misplaced_file(rel, why) for rel, why in files.misplaced]
    read += [read_trades_file(source, formats, settings) for source in files.trades]
    read += [read_balances_file(day, source, formats, settings) for day, source in files.balances]
    read += [read_marks_file(day, path, landing, settings) for day, path in files.marks]
    read += [read_transfers_file(path, landing, settings) for path in files.transfers]
    read += [read_positions_landing_file(day, source, landing) for day, source in files.positions]
    read += [read_specs_landing_file(day, path, landing) for day, path in files.instruments]
    return combine(read, settings)


@dataclass(frozen=True)
class FileRows:
    """One landing file's canonical rows, before anything is compared across files.

    Asset codes are canonical and every row passed its model; what a file cannot say alone
    (a trade id booked twice, two snapshots of one day) is decided by :func:`combine`.
    """

    file: str  # relative to the landing folder
    format: str | None  # None: no reader could read it (its quarantine says why)
    kind: str | None  # fills | ledger | balances | marks
    venue: str
    account: str
    fills: pl.DataFrame  # FILLS_OUT
    movements: pl.DataFrame  # MOVEMENTS_OUT
    balances: pl.DataFrame  # BALANCES_OUT, not yet summed per asset
    marks: pl.DataFrame  # MARKS_OUT
    quarantine: pl.DataFrame  # QUARANTINE
    rows: int  # rows the reader booked (before canonical checks)
    transfers: pl.DataFrame = field(default_factory=lambda: empty_frame(LISTED_TRANSFERS))  # LISTED_TRANSFERS
    # Derivatives (issue #14), canonical asset codes. derivative_fills: a ledger export's only
    # (a fills export's come from its fills in combine).
    derivative_fills: pl.DataFrame = field(default_factory=lambda: empty_frame(DERIVATIVE_FILLS))  # ledger exports' fills
    derivative_cash: pl.DataFrame = field(default_factory=lambda: empty_frame(DERIVATIVE_CASH))
    positions: pl.DataFrame = field(default_factory=lambda: empty_frame(DATED_POSITION_SNAPSHOT))
    specs: pl.DataFrame = field(default_factory=lambda: empty_frame(DATED_INSTRUMENT_SPECS))

    TABLES = ("fills", "movements", "balances", "marks", "quarantine", "transfers",
              "derivative_fills", "derivative_cash", "positions", "specs")


_EMPTY: dict[int, tuple[pl.Schema, pl.DataFrame]] = {}


def empty_frame(schema: pl.Schema) -> pl.DataFrame:
    """An empty frame of ``schema``, made once per schema (``to_frame`` costs ~0.3 ms, and
    each file read asks for about ten) and handed out as a copy."""
    known = _EMPTY.get(id(schema))
    if known is None or known[0] is not schema:
        known = _EMPTY[id(schema)] = (schema, schema.to_frame())
    return known[1].clone()


def _file_rows(rel: str, fmt: Format | None, kind: str | None, venue: str = "", account: str = "", *,
               rows: int = 0, quarantine: list[pl.DataFrame] = (), **tables: pl.DataFrame) -> FileRows:
    empty = {"fills": FILLS_OUT, "movements": MOVEMENTS_OUT, "balances": BALANCES_OUT, "marks": MARKS_OUT}
    frames = {name: tables[name] if name in tables else empty_frame(schema) for name, schema in empty.items()}
    q = pl.concat([f.cast(QUARANTINE_SCHEMA) for f in quarantine]) if quarantine else empty_frame(QUARANTINE_SCHEMA)
    derivatives = {name: tables[name] for name in ("derivative_fills", "derivative_cash", "positions", "specs") if name in tables}
    return FileRows(rel, fmt.name if fmt else None, kind, venue, account, quarantine=q, rows=rows, **frames, **derivatives)


def misplaced_file(rel: str, why: str) -> FileRows:
    return _file_rows(rel, None, None, quarantine=[quarantine_file(rel, why)])


def _checked(frame: pl.DataFrame, schema: pl.Schema, model) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The boundary: every table leaves ingest checked against its model."""
    return validate_rows(frame.select(schema.names()).cast(schema), model)


def read_trades_file(source: Source, formats: list[Format], settings: Settings) -> FileRows:
    """A ``trades/`` file: fills or ledger lines, canonical and checked."""
    fmt, parsed = read_source(source, formats, expect=("fills", "ledger"))
    q = [parsed.quarantine]
    if fmt is None:
        return _file_rows(source.rel, None, None, source.venue, source.account, quarantine=q)
    frame = parsed.frame.with_columns(format=pl.lit(fmt.name))
    if fmt.kind == "fills":
        frame = frame.with_columns(fee_asset_assumed=pl.lit(not fmt.fee_asset_stated))
        fills, refused = _canonical_fills(frame, settings)
        fills, invalid = _checked(fills, FILLS_OUT, Fills)
        return _file_rows(source.rel, fmt, "fills", source.venue, source.account, rows=parsed.frame.height,
                          quarantine=[*q, refused, invalid], fills=fills)
    movements, refused = _canonical_assets(frame, ["asset"], settings)
    movements, invalid = _checked(movements, MOVEMENTS_OUT, Movements)
    return _file_rows(source.rel, fmt, "ledger", source.venue, source.account, rows=parsed.frame.height,
                      quarantine=[*q, refused, invalid], movements=movements, **_ledger_derivatives(parsed, settings))


def _ledger_derivatives(parsed: Parsed, settings: Settings) -> dict[str, pl.DataFrame]:
    """A ledger export's derivative fills and cash, their asset codes canonical. A code that
    is no asset was already refused with the row's movement (:func:`combine` keeps only the
    rows whose movements stand)."""
    out = {}
    for name, schema, column in (("derivative_fills", DERIVATIVE_FILLS, "fee_asset"), ("derivative_cash", DERIVATIVE_CASH, "asset")):
        frame = getattr(parsed, name)
        if frame is not None and frame.height:
            # Once per distinct code (a ledger names a handful), as _canonical_assets does.
            out[name] = frame.with_columns(_canonical_codes(frame[column], settings.aliases).alias(column)).cast(schema)
    return out


def read_positions_landing_file(day: dt.date, source: Source, landing: Path) -> FileRows:
    """``<venue>/<account>/positions/D.json``: the venue's open derivative positions at end of D."""
    read = read_positions_file(source.path, landing, source.venue, source.account)
    positions = read.positions.select(pl.lit(day, pl.Date).alias("business_date"), *POSITION_SNAPSHOT.names()).cast(DATED_POSITION_SNAPSHOT)
    if read.shape and positions.is_empty():
        # A file read whole that lists nothing says the account is flat: one marker row (no
        # instrument, qty 0) carries "reported" to the day step, as nothing_held does for balances.
        positions = pl.DataFrame({"business_date": [day], "venue": [source.venue], "account": [source.account],
                                  "qty": [0], "source_file": [source.rel]}).with_columns(
            [pl.lit(None).alias(c) for c in DATED_POSITION_SNAPSHOT.names()
             if c not in ("business_date", "venue", "account", "qty", "source_file")]
        ).select(DATED_POSITION_SNAPSHOT.names()).cast(DATED_POSITION_SNAPSHOT)
    return FileRows(source.rel, f"positions.{read.shape}" if read.shape else None, "positions", source.venue, source.account,
                    empty_frame(FILLS_OUT), empty_frame(MOVEMENTS_OUT), empty_frame(BALANCES_OUT), empty_frame(MARKS_OUT),
                    read.quarantine.cast(QUARANTINE_SCHEMA), read.positions.height, positions=positions)


def read_specs_landing_file(day: dt.date, path: Path, landing: Path) -> FileRows:
    """``instruments/D.<json|csv>``: instrument specs (contract size, inverse, expiry...)."""
    read = read_specs_file(path, landing)
    specs = read.specs.select(pl.lit(day, pl.Date).alias("business_date"), *INSTRUMENT_SPECS.names()).cast(DATED_INSTRUMENT_SPECS)
    return FileRows(read.file, "instruments", "instruments", "", "", empty_frame(FILLS_OUT), empty_frame(MOVEMENTS_OUT),
                    empty_frame(BALANCES_OUT), empty_frame(MARKS_OUT), read.quarantine.cast(QUARANTINE_SCHEMA),
                    read.specs.height, specs=specs)


def read_balances_file(day: dt.date, source: Source, formats: list[Format], settings: Settings) -> FileRows:
    """A ``balances/D.*`` snapshot, canonical and checked (summed per asset by :func:`combine`)."""
    fmt, parsed = read_source(source, formats, expect=("balances",))
    q = [parsed.quarantine]
    if fmt is None:
        return _file_rows(source.rel, None, None, source.venue, source.account, quarantine=q)
    frame = parsed.frame.with_columns(business_date=pl.lit(day, pl.Date))
    balances, refused = _canonical_assets(frame, ["asset"], settings)
    balances, invalid = _checked(balances, BALANCES_OUT, Balances)
    if parsed.frame.height == 0 and parsed.quarantine.height == 0:
        # A snapshot listing nothing: the account holds nothing that day (utl.snapshots).
        balances = nothing_held(day, source.venue, source.account, source.rel)
    return _file_rows(source.rel, fmt, "balances", source.venue, source.account, rows=parsed.frame.height,
                      quarantine=[*q, refused, invalid], balances=balances)


def read_marks_file(day: dt.date, path: Path, landing: Path, settings: Settings) -> FileRows:
    marks, refused = read_marks(day, path, landing, settings.aliases)
    marks, invalid = _checked(marks, MARKS_OUT, Marks)
    return _file_rows(path.relative_to(landing).as_posix(), None, "marks", rows=marks.height + refused.height,
                      quarantine=[refused, invalid], marks=marks)


def read_transfers_file(path: Path, landing: Path, settings: Settings) -> FileRows:
    """A ``transfers/*.csv`` file: transfers between own accounts, listed (ledger.md)."""
    rel = path.relative_to(landing).as_posix()
    listed, refused = read_transfers(path, rel, settings.aliases)
    return FileRows(rel, "transfers.csv", "transfers", "", "", empty_frame(FILLS_OUT), empty_frame(MOVEMENTS_OUT),
                    empty_frame(BALANCES_OUT), empty_frame(MARKS_OUT), refused.cast(QUARANTINE_SCHEMA),
                    listed.height + refused.height, transfers=listed)


def combine(files: list[FileRows], settings: Settings) -> Ingested:
    """Many files' rows as one set of canonical tables: each venue id booked once (a
    conflict quarantines every version), each account's snapshot of a day summed per asset
    (two snapshot files of one day: neither is used)."""
    quarantine = [f.quarantine for f in files]
    fills, q = dedupe(_concat([f.fills for f in files if f.fills.height], FILLS_OUT.to_frame()),
                      ["venue", "account", "trade_id"], "trade id", FILL_CONTENT)
    quarantine.append(q)
    movements, q = dedupe(_concat([f.movements for f in files if f.movements.height], MOVEMENTS_OUT.to_frame()),
                          ["venue", "account", "entry_id"], "ledger entry id", MOVEMENT_CONTENT)
    quarantine.append(q)
    balances, q = _combine_balances(_concat([f.balances for f in files if f.balances.height], BALANCES_OUT.to_frame()))
    quarantine.append(q)
    fills, from_fills, q = fill_derivatives(fills)
    quarantine.append(q)
    # A ledger row's derivative parts stand where its movements do (overlapping exports keep
    # the first copy; a conflicting entry id books none of its versions).
    from_ledger = _concat([f.derivative_fills for f in files if f.derivative_fills.height], DERIVATIVE_FILLS.to_frame())
    cash = _concat([f.derivative_cash for f in files if f.derivative_cash.height], DERIVATIVE_CASH.to_frame())
    described = [(f.file, f.format, f.kind, f.rows, f.quarantine.height) for f in files if f.kind != "marks"]
    return Ingested(
        settings=settings,
        fills=fills,
        movements=movements,
        balances=balances,
        marks=_concat([f.marks for f in files if f.marks.height], MARKS_OUT.to_frame()),
        quarantine=pl.concat([q.cast(QUARANTINE_SCHEMA) for q in quarantine]).sort("file", "row", nulls_last=False),
        files=pl.DataFrame(described, schema=FILES_OUT, orient="row"),
        ledger_accounts={(f.venue, f.account) for f in files if f.kind == "ledger"},
        ledger_trade_accounts={(f.venue, f.account) for f in files if f.format in LEDGER_TRADE_FORMATS},
        transfers=combine_listed([f.transfers for f in files if f.transfers.height]),
        derivative_fills=pl.concat([from_fills, standing_rows(from_ledger, movements)]),
        derivative_cash=standing_rows(cash, movements, same_entry=True),
        positions=_concat([f.positions for f in files if f.positions.height], DATED_POSITION_SNAPSHOT.to_frame()),
        specs=_concat([f.specs for f in files if f.specs.height], DATED_INSTRUMENT_SPECS.to_frame()),
    )


def fill_derivatives(fills: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The instrument legs of the derivative fills of trades exports (Binance USDⓈ-M/COIN-M
    trades, ccxt trades with a ``:settle`` symbol): ``qty`` as the export signs it, already
    in the position unit (Binance ``Quantity``: USDⓈ-M base, COIN-M contracts; ccxt
    ``amount``: contracts, which on Deribit are USD for futures, matching a size-1 spec).

    Returns (fills without those whose symbol names no derivative, the legs, quarantine):
    a derivative fill without an instrument cannot book and is refused, never kept silently.
    """
    derivative = fills.filter(pl.col("derivative"))
    if derivative.height == 0:
        return fills, DERIVATIVE_FILLS.to_frame(), empty_quarantine()
    binance = derivative.filter(pl.col("format") == "binance.futures_trades")["symbol"].unique().to_list()
    named = {name: binance_symbol(name.strip().upper()) for name in binance}
    instrument = (
        pl.when(pl.col("format") == "binance.futures_trades")
        .then(pl.col("symbol").replace_strict(named, default=None, return_dtype=pl.String))
        .otherwise(pl.when(pl.col("symbol").str.strip_chars().str.contains(DERIVATIVE_SYMBOL)).then(pl.col("symbol").str.strip_chars()))
    )
    derivative = derivative.with_columns(
        __instrument=instrument,
        __column=pl.when(pl.col("format") == "binance.futures_trades").then(pl.lit("Symbol")).otherwise(pl.lit("symbol")),
    )
    unnamed = derivative.filter(pl.col("__instrument").is_null())
    refused = unnamed.select(
        # The export's own key: Binance's column "Symbol", ccxt's "symbol".
        file=pl.col("source_file"), row=pl.col("source_row"), column=pl.col("__column"),
        reason=pl.format('"{}": "{}" names no derivative instrument', pl.col("__column"), pl.col("symbol")), raw=pl.col("symbol"),
    )
    legs = derivative.filter(pl.col("__instrument").is_not_null()).select(
        "venue", "account", instrument="__instrument", ts="ts", leg_id="trade_id", qty="qty", price="price",
        fee="fee", fee_asset="fee_asset", source=pl.lit("fills"), source_file="source_file", source_row="source_row",
    ).cast(DERIVATIVE_FILLS)
    if unnamed.height:
        fills = fills.join(unnamed.select("source_file", "source_row"), on=["source_file", "source_row"], how="anti")
    return fills, legs, refused.cast(QUARANTINE_SCHEMA)


def _concat(frames: list[pl.DataFrame], empty: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(frames, how="vertical_relaxed") if frames else empty


def read_source(source: Source, formats: list[Format], expect: tuple[str, ...]) -> tuple[Format | None, Parsed]:
    """Recognise and read one file; a file that cannot be read is one quarantine entry."""
    nothing = pl.DataFrame()
    try:
        head = head_text(source.path)
    except UnicodeDecodeError as exc:
        return None, Parsed(nothing, quarantine_file(source.rel, f"not UTF-8 text: {one_line(exc)}"))
    if not head.strip():
        return None, Parsed(nothing, quarantine_file(source.rel, "the file is empty"))
    claimed = [f for f in formats if _claims(f, head)]
    if not claimed:
        reason, seen = unknown_reason(head, formats)
        return None, Parsed(nothing, quarantine_file(source.rel, reason, seen))
    if len(claimed) > 1:
        # Two readers whose declared columns both fit: reading it either way is a guess.
        reason, seen = ambiguous_reason(head, claimed)
        return None, Parsed(nothing, quarantine_file(source.rel, reason, seen))
    fmt = claimed[0]
    if fmt.kind not in expect:
        where = "trades/" if "fills" in expect else "balances/"
        return None, Parsed(nothing, quarantine_file(source.rel, f"a {fmt.kind} file ({fmt.name}) does not belong in {where}"))
    try:
        parsed = fmt.read(replace(source, header=fmt.declaration(head)))
    except Exception as exc:  # any reader failure refuses the file, named, and the run goes on
        return None, Parsed(nothing, quarantine_file(source.rel, f"{fmt.name}: unreadable: {one_line(exc)}"))
    return fmt, parsed


def _claims(fmt: Format, head: str) -> bool:
    try:
        return fmt.claims(head)
    except Exception:  # a detector that chokes on foreign content simply does not claim it
        return False


# ---------------------------------------------------------------------------------------
# Canonical assets
# ---------------------------------------------------------------------------------------


def _canonical_assets(frame: pl.DataFrame, columns: list[str], settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Map venue codes to canonical ones; a code that cannot be an asset is refused."""
    mapped = frame.with_columns(
        [_canonical_codes(frame[c], settings.aliases).alias(c) for c in columns]
        + [pl.col(c).alias(f"__raw_{c}") for c in columns]
    )
    checks = [
        Check(c, pl.col(c).is_not_null() & ~pl.col(c).str.contains(ASSET_CODE), "unknown asset code", pl.col(f"__raw_{c}"))
        for c in columns
    ]
    if mapped.height == 0:
        return mapped.drop([f"__raw_{c}" for c in columns]), empty_quarantine()
    ok, refused = _split_by_file(mapped, checks)
    return ok.drop([f"__raw_{c}" for c in columns]), refused


def _canonical_codes(codes: pl.Series, aliases: dict[str, str]) -> pl.Series:
    """``canonical_asset`` of a long column, worked out once per distinct code (a file of a
    million fills names a few hundred assets) and looked up for each row."""
    distinct = codes.unique().drop_nulls()
    written = distinct.to_list()
    known = known_codes(aliases)
    new = [code for code in written if code not in known]
    if new:
        if len(known) > 100_000:
            known.clear()
        fresh = pl.select(canonical_asset(pl.lit(pl.Series(new, dtype=distinct.dtype)), aliases)).to_series()
        known.update(zip(new, fresh.to_list()))
    canonical = [known[code] for code in written]
    if codes.dtype == pl.String and canonical == written:
        return codes  # every code is canonical already (a null stays null): nothing to look up
    return codes.replace_strict(distinct, pl.Series(canonical, dtype=pl.String), default=None, return_dtype=pl.String)


_CANONICAL: dict[tuple[tuple[str, str], ...], dict[str, str | None]] = {}


def known_codes(aliases: dict[str, str]) -> dict[str, str | None]:
    """The codes worked out so far under ``aliases``: code as written -> its canonical code
    (None where it has none). canonical_asset works code by code, so each code's canonical one
    is worked out once per process and settings (a landing's files name the same few hundred)."""
    return _CANONICAL.setdefault(tuple(sorted(aliases.items())), {})


def _split_by_file(frame: pl.DataFrame, checks: list[Check]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``split_refused`` over rows from many files: quarantine names each row's own file."""
    if checks and not frame.select(pl.any_horizontal([c.bad.fill_null(False) for c in checks]).any()).item():
        return frame, empty_frame(QUARANTINE_SCHEMA)  # the usual file: no row refused, nothing to gather
    flagged = frame.with_columns([c.bad.fill_null(False).alias(f"__bad{i}") for i, c in enumerate(checks)])
    parts = [
        flagged.filter(pl.col(f"__bad{i}")).select(
            file=pl.col("source_file"),
            row=pl.col("source_row"),
            column=pl.lit(c.column, pl.String),
            reason=(c.reason if isinstance(c.reason, pl.Expr) else pl.lit(c.reason)).cast(pl.String),
            raw=(c.raw if c.raw is not None else pl.col(c.column)).cast(pl.String),
        )
        for i, c in enumerate(checks)
    ]
    bad = [f"__bad{i}" for i in range(len(checks))]
    ok = flagged.filter(~pl.any_horizontal(bad)).drop(bad) if bad else flagged
    return ok, (pl.concat(parts) if parts else empty_quarantine())


def _canonical_fills(frame: pl.DataFrame, settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = frame.with_columns(
        derivative=pl.col("format").is_in(list(DERIVATIVE_FORMATS)) | pl.col("symbol").str.contains(":", literal=True)
    )
    ok, refused = _canonical_assets(frame, ["base", "quote", "fee_asset"], settings)
    return ok.with_columns(trade_id=trade_identity()), refused


# Venues that number trades per symbol: the same id on two pairs is two trades there.
PER_SYMBOL_IDS = ("binance", "coinbase")


def trade_identity() -> pl.Expr:
    """A fill's identity (ledger.md): the venue's own trade id as written, qualified by the
    canonical pair (``BTC/USDT:123``) where the venue numbers trades per symbol. Readers give
    the id as written, so the venue's export and a ccxt pull of it (under the venue's folder)
    name one trade alike, however each spells the pair (``BTCUSDT``, ``BTC-USDT``, ``BTC/USDT``)."""
    venue = pl.when(pl.col("format") == "ccxt.trades").then(pl.col("venue").str.to_lowercase()).otherwise(
        pl.col("format").str.extract(r"^([a-z]+)\.", 1))
    per_symbol = pl.any_horizontal([venue.str.starts_with(v) for v in PER_SYMBOL_IDS]).fill_null(False)
    # Spot and derivative trades are numbered apart (a perpetual's 123 is not the spot 123).
    market = pl.when(pl.col("derivative")).then(pl.lit("-deriv")).otherwise(pl.lit(""))
    qualified = pl.concat_str([pl.col("base"), pl.lit("/"), pl.col("quote"), market, pl.lit(":"), pl.col("trade_id")])
    return pl.when(per_symbol).then(qualified).otherwise(pl.col("trade_id"))


def _combine_balances(ok: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Balances per canonical asset: codes that map together (DOT, DOT.S) add up.

    Two snapshot files for one account and date cannot both be the end-of-day state: every
    row of both is refused, and the account is not reconciled that day.
    """
    refused = empty_quarantine()
    files_per_day = ok.group_by("business_date", "venue", "account").agg(pl.col("source_file").n_unique().alias("n"))
    twice = files_per_day.filter(pl.col("n") > 1)
    clash = ok.join(twice, on=["business_date", "venue", "account"], how="semi")
    refused = pl.concat(
        [
            refused,
            clash.select(
                file=pl.col("source_file"), row=pl.col("source_row"), column=pl.lit(None, pl.String),
                reason=pl.lit("two balance snapshots for the same account and date; neither is used"),
                raw=pl.col("asset"),
            ),
        ]
    )
    ok = ok.join(twice, on=["business_date", "venue", "account"], how="anti")
    summed = (
        ok.group_by("business_date", "venue", "account", "asset", maintain_order=True)
        .agg(pl.col("total").sum(), pl.col("source_file").first(), pl.col("source_row").min())
        .sort("business_date", "venue", "account", "asset")
    )
    return summed.select(BALANCES_OUT.names()).cast(BALANCES_OUT), refused


# ---------------------------------------------------------------------------------------
# Dedupe
# ---------------------------------------------------------------------------------------


# What makes two rows with one id the same trade: its canonical content, not how a layout
# spells it (Kraken writes XXBTZUSD in one export version and BTC/USD in another). The time
# is not compared: formats keep it at different precision (Bybit's CSV to the minute, its API
# to the millisecond), and one identity with the same amounts is one trade.
FILL_CONTENT = ["base", "quote", "side", "qty", "price", "quote_qty", "fee", "fee_asset"]
MOVEMENT_CONTENT = ["ts", "kind", "asset", "qty"]


def standing_rows(frame: pl.DataFrame, movements: pl.DataFrame, same_entry: bool = False) -> pl.DataFrame:
    """The rows of ``frame`` (a ledger's derivative fills or cash) whose source row
    (``source_file``, ``source_row``) is one of ``movements``' and, with ``same_entry``, whose
    (venue, account, entry_id) is one of theirs: as two semi-joins, but told on integer keys,
    and ``frame`` passed on whole when every row stands (the usual day; a join copies every
    row, ~0.1 s a shard)."""
    if frame.height == 0:
        return frame
    files = pl.concat([movements["source_file"].unique(), frame["source_file"].unique()]).unique().drop_nulls()
    code = dict(zip(files.to_list(), range(files.len())))

    def source(rows: pl.DataFrame) -> pl.Series:  # a row's file code beside its row number; null: no source
        return rows.select(pl.col("source_file").replace_strict(code, default=None, return_dtype=pl.Int64)
                           * (1 << 32) + pl.col("source_row")).to_series()

    mine, theirs = source(frame), source(movements)
    if movements.height == 0 or theirs.is_null().any() or mine.is_null().any() or not (
            movements["source_row"].is_between(0, (1 << 32) - 1).all()
            and frame["source_row"].is_between(0, (1 << 32) - 1).all()):
        return _standing_by_join(frame, movements, same_entry)  # keys these integers cannot hold
    stands = mine.is_in(theirs.implode())
    if same_entry:
        if theirs.n_unique() != theirs.len():  # a source row of two movements: the exact joins
            return _standing_by_join(frame, movements, same_entry)
        # Each row against the movement of its own source row: the same entry (a ledger's
        # cash row is one of its movements); any other takes the exact joins.
        order = theirs.arg_sort()
        ordered = theirs.gather(order)
        at = order.gather(ordered.search_sorted(mine).clip(0, ordered.len() - 1))
        own = movements.select("venue", "account", "entry_id").gather(at)
        same = (frame["venue"] == own["venue"]) & (frame["account"] == own["account"]) & (
            frame["entry_id"] == own["entry_id"])
        if not (same.fill_null(False) | ~stands).all():  # a row of another movement's entry: rare
            return _standing_by_join(frame, movements, same_entry)
    return frame if stands.all() else frame.filter(stands)


def _standing_by_join(frame: pl.DataFrame, movements: pl.DataFrame, same_entry: bool) -> pl.DataFrame:
    standing = frame.join(movements.select("source_file", "source_row").unique(),
                          on=["source_file", "source_row"], how="semi", maintain_order="left")
    if not same_entry:
        return standing
    return standing.join(movements.select("venue", "account", "entry_id"),
                         on=["venue", "account", "entry_id"], how="semi", maintain_order="left")


def dedupe(frame: pl.DataFrame, key: list[str], what: str, content: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Book each key once. Rows repeating a key with the same ``content`` (overlapping
    exports) collapse to the first seen; a key seen with different content is a conflict:
    all its rows are quarantined, naming where the other versions are."""
    if frame.height == 0 or keys_distinct(frame, key):  # the usual day: no id repeats at all
        return frame, empty_quarantine()
    distinct = frame.unique(subset=key + content, keep="first", maintain_order=True)
    versions = distinct.group_by(key).len().filter(pl.col("len") > 1).select(key)
    if versions.height == 0:
        return distinct, empty_quarantine()
    clashing = frame.join(versions, on=key, how="semi").with_columns(
        where=pl.concat_str(pl.col("source_file"), pl.lit(" row "), pl.col("source_row").cast(pl.String))
    )
    others = clashing.group_by(key).agg(pl.col("where").alias("all"))
    refused = clashing.join(others, on=key).select(
        file=pl.col("source_file"),
        row=pl.col("source_row"),
        column=pl.lit(key[-1]),
        reason=pl.format(
            "conflict: {} {} appears with different content ({}); none of its versions is booked",
            pl.lit(what),
            pl.col(key[-1]),
            pl.col("all").list.join("; "),
        ),
        raw=pl.col(key[-1]),
    )
    return distinct.join(versions, on=key, how="anti"), refused


# ---------------------------------------------------------------------------------------
# Marks
# ---------------------------------------------------------------------------------------


def read_marks(day: dt.date, path: Path, landing: Path, aliases: dict[str, str] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``marks/D.csv`` (asset,price): the value of one unit in the reporting currency at end
    of D. A non-positive or unparseable price, or an asset listed twice, is quarantined."""
    rel = path.relative_to(landing).as_posix()
    source = Source(path=path, rel=rel, venue="", account="")
    try:
        from utl.venues.base import read_text_csv

        frame = read_text_csv(source)
    except Exception as exc:  # unreadable marks file: one entry naming it
        why = "the file is empty" if str(exc).endswith("the file is empty") else f"unreadable marks file: {one_line(exc)}"
        return MARKS_OUT.to_frame(), quarantine_file(rel, why)
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    if not {"asset", "price"} <= set(frame.columns):
        return MARKS_OUT.to_frame(), quarantine_file(rel, "a marks file needs the columns asset,price")
    value, bad = venue_decimal(pl.col("price"))
    # An instrument's mark (derivatives.md) keeps its ccxt symbol as written: it is no asset code.
    instrument = pl.col("asset").str.strip_chars().str.contains(DERIVATIVE_SYMBOL).fill_null(False)
    frame = frame.with_columns(
        __written=pl.col("asset"),
        asset=pl.when(instrument).then(pl.col("asset").str.strip_chars()).otherwise(canonical_asset(pl.col("asset"), aliases)),
        __instrument=instrument, __price=value, __bad=bad,
    ).with_columns(__n=pl.len().over("asset"))
    ok, refused = split_refused(
        frame,
        [
            Check("asset", ~pl.col("__instrument") & (pl.col("asset").is_null() | ~pl.col("asset").str.contains(ASSET_CODE)),
                  "unknown asset code", pl.col("__written")),
            Check("price", pl.col("__bad"), "is not a decimal number"),
            Check("price", pl.col("__price").is_null() & ~pl.col("__bad"), "is missing"),
            Check("price", pl.col("__price") <= 0, "is not positive"),
            Check("asset", pl.col("__n") > 1, "is listed more than once; neither price is used", pl.col("__written")),
        ],
        rel,
    )
    marks = ok.select(
        business_date=pl.lit(day, pl.Date), asset="asset", price=pl.col("__price").cast(DECIMAL),
        source_file=pl.lit(rel), source_row="source_row",
    )
    return marks.cast(MARKS_OUT), refused


def why_no_mark(landing: Path, asset: str, day: dt.date, aliases: dict[str, str] | None = None) -> str | None:
    """Why ``marks/D.csv`` gives no price for ``asset``, when the landing says: the date is
    past the last marks file, the file was refused, or the asset's row was (its reason).
    None when the asset is simply absent (then the message says to add it)."""
    path = landing / "marks" / f"{day.isoformat()}.csv"
    rel = f"marks/{day.isoformat()}.csv"
    if not path.exists():
        written = sorted(p.stem for p in (landing / "marks").glob("*.csv") if _is_date(p.stem))
        if written and day.isoformat() > written[-1]:
            return (f"{day.isoformat()} is past the last data in the landing folder: the last marks file is "
                    f"marks/{written[-1]}.csv")
        return None
    _, refused = read_marks(day, path, landing, aliases)
    whole = refused.filter(pl.col("row").is_null())
    if whole.height:
        return f"{rel}: {whole['reason'][0]}"
    from utl.venues.base import read_text_csv

    try:
        frame = read_text_csv(Source(path=path, rel=rel, venue="", account=""))
    except Exception:  # only an explanation: the file's own refusal is already quarantined
        return None
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    rows = frame.filter(canonical_asset(pl.col("asset"), aliases) == asset)["source_row"].to_list()
    mine = refused.filter(pl.col("row").is_in(rows))
    if mine.height == 0:
        return None
    if mine["reason"].str.contains("more than once").any():
        times = "twice" if len(rows) == 2 else f"{len(rows)} times"
        return f"{rel}: {asset} listed {times} (rows {', '.join(map(str, rows))}); neither price is used"
    first = mine.row(0, named=True)
    what = "is not a decimal" if first["reason"].startswith("is not a decimal") else first["reason"]
    shown = f"{first['raw']!r}" if first["raw"] is not None else "the price"
    return f"{rel} row {first['row']}: {shown} {what}"


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True
