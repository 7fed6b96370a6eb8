"""Instruments: what a ccxt symbol says, and the specs of ``instruments/D.<json|csv>``.

A ccxt symbol names base, quote and settle asset, and for dated contracts the expiry, for
options the strike and call/put:

=================================  ========  =========================================
``BTC/USDT:USDT``                  swap      linear: settles in the quote
``BTC/USD:BTC``                    swap      inverse: settles in the base
``BTC/USDT:USDT-261225``           future    expires 2026-12-25
``BTC/USD:BTC-261225-100000-C``    option    strike exactly 100000, a call
=================================  ========  =========================================

What a symbol cannot say is the contract size (what one unit of the position quantity is
worth: base units for linear instruments, USD for inverse ones); that comes from the specs
file, a ccxt ``load_markets`` JSON (a list, or a dict by symbol) or the contract's CSV
``venue,symbol,type,settle,contract_size,inverse,expiry,strike,option_type``, where an empty
``venue`` applies to every venue and a named one wins. Numbers are read from their text,
never a float. A bad row is quarantined naming file, row and column; the rest of the file
is used. An instrument with a position and no spec stops the date (:func:`require_specs`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from utl.decimals import with_venue_decimals
from utl.derivatives.schemas import INSTRUMENT_SPECS, INSTRUMENT_TYPES
from utl.errors import QUARANTINE_SCHEMA, empty_quarantine, quarantine_file

SYMBOL = (
    r"^([A-Za-z0-9]+)/([A-Za-z0-9]+):([A-Za-z0-9]+)"
    r"(?:-([0-9]{6})(?:-([0-9]+(?:\.[0-9]+)?)-([CP]))?)?$"
)
CSV_HEADER = ["venue", "symbol", "type", "settle", "contract_size", "inverse", "expiry", "strike", "option_type"]
_OPTION_TYPES = {"C": "call", "P": "put", "CALL": "call", "PUT": "put"}
_BOOLEANS = {"TRUE": True, "FALSE": False}


def parse_symbols(symbols: pl.Series) -> pl.DataFrame:
    """One :data:`INSTRUMENT` row per symbol, plus ``problem`` (null when the symbol parses).

    ``inverse`` is true when the contract settles in its base (``BTC/USD:BTC``), false when in
    its quote (``BTC/USDT:USDT``), null otherwise (a quanto: only a spec can say).
    """
    parts = pl.DataFrame({"symbol": symbols.cast(pl.String)}).with_columns(
        p=pl.col("symbol").str.extract_groups(SYMBOL)
    )
    field = lambda i: pl.col("p").struct.field(str(i))  # noqa: E731
    strike_text = field(5)
    frame = parts.with_columns(
        base=field(1), quote=field(2), settle=field(3),
        expiry=field(4).str.strptime(pl.Date, "%y%m%d", strict=False),
        expiry_text=field(4),
        option_type=field(6).replace_strict(_OPTION_TYPES, default=None, return_dtype=pl.String),
    )
    frame = with_venue_decimals(frame, strike=strike_text)
    return frame.select(
        "symbol", "base", "quote", "settle",
        type=pl.when(pl.col("base").is_null()).then(None)
        .when(pl.col("option_type").is_not_null()).then(pl.lit("option"))
        .when(pl.col("expiry_text").is_not_null()).then(pl.lit("future"))
        .otherwise(pl.lit("swap")),
        inverse=pl.when(pl.col("settle") == pl.col("base")).then(True)
        .when(pl.col("settle") == pl.col("quote")).then(False),
        expiry="expiry", strike="strike", option_type="option_type",
        problem=pl.when(pl.col("base").is_null())
        .then(pl.format('"{}" is not a ccxt derivative symbol (BASE/QUOTE:SETTLE[-YYMMDD[-STRIKE-C|P]])', pl.col("symbol")))
        .when(pl.col("expiry_text").is_not_null() & pl.col("expiry").is_null())
        .then(pl.format('"{}": expiry {} is not a date YYMMDD', pl.col("symbol"), pl.col("expiry_text")))
        .when(pl.col("strike__bad"))
        .then(pl.format('"{}": strike is not an exact decimal', pl.col("symbol"))),
    )


def parse_symbol(symbol: str) -> dict[str, Any]:
    """One symbol's :data:`INSTRUMENT` fields as a dict; raises ``ValueError`` naming it."""
    row = parse_symbols(pl.Series([symbol], dtype=pl.String)).row(0, named=True)
    if row.pop("problem"):
        raise ValueError(parse_symbols(pl.Series([symbol]))["problem"][0])
    return row


# --------------------------------------------------------------------------- spec files


@dataclass(frozen=True)
class SpecRows:
    """One specs file's rows (:data:`INSTRUMENT_SPECS`) and its refused rows (quarantine)."""

    file: str
    specs: pl.DataFrame
    quarantine: pl.DataFrame


def read_specs_file(path: Path, landing: Path) -> SpecRows:
    """``instruments/D.<json|csv>`` of a landing folder; not UTF-8: one entry naming it."""
    rel = path.relative_to(landing).as_posix()
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return SpecRows(rel, INSTRUMENT_SPECS.to_frame(), quarantine_file(rel, f"not UTF-8 text: {exc}"))
    return read_specs(text, rel)


def read_specs(text: str, file: str) -> SpecRows:
    """A specs file's text, recognised by content: JSON (ccxt markets) or the contract's CSV."""
    body = text.lstrip("\ufeff").strip()
    if not body:
        return SpecRows(file, INSTRUMENT_SPECS.to_frame(), quarantine_file(file, "the file is empty"))
    if body[0] in "[{":
        return read_ccxt_markets(body, file)
    return read_specs_csv(body, file)


def read_ccxt_markets(text: str, file: str) -> SpecRows:
    """A ccxt ``load_markets`` JSON: a list of markets, or a dict of them by symbol.

    Spot and margin markets are not derivatives and are passed over (a markets dump lists
    them all); every derivative market needs ``symbol`` and ``contractSize``.
    """
    try:
        data = json.loads(text, parse_float=str, parse_int=str, parse_constant=str)
    except ValueError as exc:
        return SpecRows(file, INSTRUMENT_SPECS.to_frame(), quarantine_file(file, f"invalid JSON: {exc}"))
    markets = list(data.values()) if isinstance(data, dict) else data
    if not isinstance(markets, list):
        return SpecRows(file, INSTRUMENT_SPECS.to_frame(), quarantine_file(file, "not a ccxt markets list or dict"))
    rows, refused = [], []
    for number, market in enumerate(markets, 1):
        if not isinstance(market, dict) or "symbol" not in market:
            refused.append(_refusal(file, number, None, "not a ccxt market: needs key symbol", _text(market)))
            continue
        if market.get("type") not in (*INSTRUMENT_TYPES, None) or str(market.get("contract", "true")) == "False":
            continue  # a spot or margin market: no derivative spec to take
        inverse = market.get("inverse")
        if inverse is None and isinstance(market.get("linear"), bool):
            inverse = not market["linear"]
        rows.append({
            "venue": None, "symbol": _text(market.get("symbol")), "type": _text(market.get("type")),
            "settle": _text(market.get("settle")), "contract_size": _text(market.get("contractSize")),
            "inverse": _text(inverse), "expiry": _epoch_date(market.get("expiry")),
            "strike": _text(market.get("strike")), "option_type": _text(market.get("optionType")),
            "source_row": number,
        })
    names = {"contract_size": "contractSize", "option_type": "optionType"}
    specs, bad = _checked_specs(_text_frame(rows), file, names)
    return SpecRows(file, specs, pl.concat([_refused(refused), bad]))


def read_specs_csv(text: str, file: str) -> SpecRows:
    """The contract's CSV, every cell read as text; a row with more or fewer cells than the
    header is refused alone, with its line as the raw text."""
    lines = list(csv.reader(io.StringIO(text)))
    header = [c.strip().lower() for c in lines[0]] if lines else []
    if header != CSV_HEADER:
        return SpecRows(file, INSTRUMENT_SPECS.to_frame(), quarantine_file(
            file, f"unknown header: expected {','.join(CSV_HEADER)}", ",".join(lines[0]) if lines else None))
    rows, refused = [], []
    for number, cells in enumerate(lines[1:], 1):
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(CSV_HEADER):
            refused.append(_refusal(file, number, None, f"{len(cells)} cells where the header has {len(CSV_HEADER)}",
                                    ",".join(cells)))
            continue
        rows.append({name: (cell.strip() or None) for name, cell in zip(CSV_HEADER, cells)} | {"source_row": number})
    specs, bad = _checked_specs(_text_frame(rows), file, {})
    return SpecRows(file, specs, pl.concat([_refused(refused), bad]).sort("row"))


def _checked_specs(cells: pl.DataFrame, file: str, names: dict[str, str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Text cells to :data:`INSTRUMENT_SPECS`; a cell that is wrong refuses its row, named.

    What the file leaves empty comes from the symbol; what it states must agree with it.
    """
    if cells.height == 0:
        return INSTRUMENT_SPECS.to_frame(), empty_quarantine()
    parsed = parse_symbols(cells["symbol"].fill_null(""))
    cells = cells.with_columns(parsed.select(pl.all().name.prefix("sym_")))
    cells = with_venue_decimals(cells, contract_size_value="contract_size", strike_value="strike")
    expiry = pl.col("expiry").str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    cells = cells.with_columns(
        type_value=pl.col("type").str.to_lowercase(),
        inverse_value=pl.col("inverse").str.to_uppercase().replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean),
        expiry_value=expiry,
        option_value=pl.col("option_type").str.to_uppercase().replace_strict(_OPTION_TYPES, default=None, return_dtype=pl.String),
    ).with_columns(
        type_final=pl.coalesce("type_value", "sym_type"),
        settle_final=pl.coalesce("settle", "sym_settle"),
        inverse_final=pl.coalesce("inverse_value", "sym_inverse"),
        expiry_final=pl.coalesce("expiry_value", "sym_expiry"),
        strike_final=pl.coalesce("strike_value", "sym_strike"),
        option_final=pl.coalesce("option_value", "sym_option_type"),
    )
    column = lambda c: names.get(c, c)  # noqa: E731
    checks: list[tuple[str, pl.Expr, pl.Expr]] = [
        ("symbol", pl.col("sym_problem").is_not_null(), pl.col("sym_problem")),
        ("type", pl.col("type").is_not_null() & ~pl.col("type_value").is_in(list(INSTRUMENT_TYPES)),
         pl.format('"{}" is not one of swap, future, option', pl.col("type"))),
        ("type", pl.col("type_value").is_in(list(INSTRUMENT_TYPES)) & pl.col("sym_type").is_not_null()
         & (pl.col("type_value") != pl.col("sym_type")),
         pl.format('"{}" but the symbol names a {}', pl.col("type"), pl.col("sym_type"))),
        ("settle", pl.col("settle").is_not_null() & pl.col("sym_settle").is_not_null() & (pl.col("settle") != pl.col("sym_settle")),
         pl.format('"{}" but the symbol settles in {}', pl.col("settle"), pl.col("sym_settle"))),
        ("contract_size", pl.col("contract_size_value__bad"), pl.format('"{}" is not an exact decimal', pl.col("contract_size"))),
        ("contract_size", pl.col("contract_size").is_null(), pl.lit("a derivative needs a contract size")),
        ("contract_size", pl.col("contract_size_value") <= 0, pl.format('"{}" is not positive', pl.col("contract_size"))),
        ("inverse", pl.col("inverse").is_not_null() & pl.col("inverse_value").is_null(),
         pl.format('"{}" is not true or false', pl.col("inverse"))),
        ("inverse", pl.col("inverse").is_null() & pl.col("sym_inverse").is_null() & pl.col("sym_problem").is_null(),
         pl.lit("the symbol settles in neither base nor quote: say whether it is inverse")),
        ("expiry", pl.col("expiry").is_not_null() & pl.col("expiry_value").is_null(),
         pl.format('"{}" is not a date {}', pl.col("expiry"), pl.lit("(epoch milliseconds)" if names else "YYYY-MM-DD"))),
        ("expiry", pl.col("expiry_value").is_not_null() & pl.col("sym_expiry").is_not_null() & (pl.col("expiry_value") != pl.col("sym_expiry")),
         pl.format('{} but the symbol expires {}', pl.col("expiry_value"), pl.col("sym_expiry"))),
        ("strike", pl.col("strike_value__bad"), pl.format('"{}" is not an exact decimal', pl.col("strike"))),
        ("strike", pl.col("strike_value").is_not_null() & pl.col("sym_strike").is_not_null() & (pl.col("strike_value") != pl.col("sym_strike")),
         pl.format('{} but the symbol says {}', pl.col("strike"), pl.col("sym_strike").cast(pl.String))),
        ("option_type", pl.col("option_type").is_not_null() & pl.col("option_value").is_null(),
         pl.format('"{}" is not C, P, call or put', pl.col("option_type"))),
        ("option_type", pl.col("option_value").is_not_null() & pl.col("sym_option_type").is_not_null() & (pl.col("option_value") != pl.col("sym_option_type")),
         pl.format('{} but the symbol says {}', pl.col("option_value"), pl.col("sym_option_type"))),
    ]
    problems = pl.concat([
        cells.filter(when.fill_null(False)).select(
            file=pl.lit(file), row="source_row", column=pl.lit(column(name)), reason=why, raw=pl.col(name),
        )
        for name, when, why in checks
    ]).cast(QUARANTINE_SCHEMA)
    good = cells.join(problems.select(pl.col("row").alias("source_row")).unique(), on="source_row", how="anti")
    specs = good.select(
        venue="venue", symbol="symbol", base="sym_base", quote="sym_quote", settle="settle_final",
        type="type_final", inverse="inverse_final", expiry="expiry_final", strike="strike_final",
        option_type="option_final", contract_size="contract_size_value", source_file=pl.lit(file), source_row="source_row",
    ).cast(INSTRUMENT_SPECS)
    specs, twice = _one_per_venue(specs, file)
    return specs, pl.concat([problems, twice]).sort("row")


def _one_per_venue(specs: pl.DataFrame, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two rows for one (venue, symbol) in a file: neither is used (choosing is a guess)."""
    dup = pl.struct("venue", "symbol").is_duplicated()
    twice = specs.filter(dup).select(
        file=pl.lit(file), row="source_row", column=pl.lit("symbol"),
        reason=pl.format("{} is specified twice for venue {}: neither row is used", pl.col("symbol"),
                         pl.col("venue").fill_null("(every venue)")),
        raw="symbol",
    ).cast(QUARANTINE_SCHEMA)
    return specs.filter(~dup), twice


# --------------------------------------------------------------------------- using specs


def resolve_specs(wanted: pl.DataFrame, specs: pl.DataFrame) -> pl.DataFrame:
    """``wanted`` (``venue``, ``instrument``, ...) with the spec columns of each instrument:
    the venue's own row where there is one, else the every-venue row; nulls where neither."""
    columns = ["type", "base", "quote", "settle", "inverse", "expiry", "strike", "option_type", "contract_size"]
    own = specs.filter(pl.col("venue").is_not_null()).select(
        "venue", pl.col("symbol").alias("instrument"), *[pl.col(c).alias(f"own_{c}") for c in columns], own_found=pl.lit(True))
    every = specs.filter(pl.col("venue").is_null()).select(
        pl.col("symbol").alias("instrument"), *[pl.col(c).alias(f"all_{c}") for c in columns], all_found=pl.lit(True))
    joined = (
        wanted.join(own, on=["venue", "instrument"], how="left", validate="m:1")
        .join(every, on="instrument", how="left", validate="m:1")
    )
    own_wins = pl.col("own_found").fill_null(False)
    return joined.with_columns(
        [pl.when(own_wins).then(pl.col(f"own_{c}")).otherwise(pl.col(f"all_{c}")).alias(c) for c in columns]
        + [(own_wins | pl.col("all_found").fill_null(False)).alias("has_spec")]
    ).drop([f"own_{c}" for c in columns] + [f"all_{c}" for c in columns] + ["own_found", "all_found"])


def specs_in_force(specs: pl.DataFrame, day: dt.date) -> pl.DataFrame:
    """The specs of the latest ``instruments/`` file on or before ``day`` (``specs``:
    DATED_INSTRUMENT_SPECS): specs rarely change, so a landing need not write one every day."""
    known = specs.filter(pl.col("business_date") <= day)
    if known.height == 0:
        return known
    return known.filter(pl.col("business_date") == known["business_date"].max())


# The contract's table of position units (derivatives.md): where a venue's quantity is in a
# unit that fixes the contract size, the export's own rows state it. Venue folders are
# matched by name, case aside. OKX's size is per instrument (``ctVal``): no default.
UNIT_NOTE = "the venue's position unit (derivatives.md)"


def venue_unit_size(venue: pl.Expr, type_: pl.Expr, inverse: pl.Expr, base: pl.Expr) -> pl.Expr:
    """The contract size the venue's position unit fixes, as text, or null: Binance USDⓈ-M
    1 (base quantity), COIN-M 100 USD for BTC and 10 USD for other coins (contracts); Bybit
    linear 1 (base) and inverse 1 (USD); Deribit futures 1 (USD, or coin for USDC ones) and
    options 1 (base)."""
    name, contract = venue.str.to_lowercase(), type_.is_in(["swap", "future"])
    return (
        pl.when((name == "binance") & contract & ~inverse).then(pl.lit("1"))
        .when((name == "binance") & contract & inverse).then(pl.when(base == "BTC").then(pl.lit("100")).otherwise(pl.lit("10")))
        .when((name == "bybit") & contract).then(pl.lit("1"))
        .when(name == "deribit").then(pl.lit("1"))
    )


def stated_specs(day: dt.date, wanted: pl.DataFrame, specs: pl.DataFrame, stated: pl.DataFrame) -> pl.DataFrame:
    """Specs (DATED_INSTRUMENT_SPECS, ``business_date`` = ``day``, the venue's own rows) of the
    instruments ``wanted`` (``venue``, ``instrument``, ``source_file``, ``source_row``: where
    each was met) that ``specs`` (the ``instruments/`` file in force) lacks, from what the
    exports state: the symbol's settle asset, type, expiry, strike and option type, and the
    contract size a positions row states (``stated``: ``venue``, ``instrument``,
    ``contract_size``, ``source_file``, ``source_row``; ccxt's ``contractSize``, never on
    Deribit, whose ccxt markets count 10 USD where its positions count 1), else the venue's
    position unit (:func:`venue_unit_size`). Rows stating different sizes for one instrument
    state none. A quanto (its symbol cannot say inverse) or an unparsable symbol gets none:
    it stays missing, and the date stops naming it."""
    pairs = wanted.select("venue", "instrument").unique()
    lacking = resolve_specs(pairs, specs).filter(~pl.col("has_spec")).select("venue", "instrument")
    if lacking.height == 0:
        return specs.clear()
    parsed = parse_symbols(lacking["instrument"]).rename({"symbol": "instrument"}).unique("instrument")
    where = (wanted.join(lacking, on=["venue", "instrument"], how="semi")
             .sort("venue", "instrument", "source_file", "source_row", nulls_last=True)
             .unique(["venue", "instrument"], keep="first", maintain_order=True)
             .select("venue", "instrument", "source_file", "source_row"))
    rows = (stated.filter(pl.col("contract_size").is_not_null() & (pl.col("contract_size") > 0)
                          & (pl.col("venue").str.to_lowercase() != "deribit"))
            .join(lacking, on=["venue", "instrument"], how="semi"))
    one_size = (rows.group_by("venue", "instrument").agg(
        pl.col("contract_size").n_unique().alias("__sizes"), pl.col("contract_size").first().alias("__row_size"),
        pl.col("source_file").sort_by("source_file", "source_row").first().alias("__row_file"),
        pl.col("source_row").sort_by("source_file", "source_row").first().alias("__row_row"))
        .filter(pl.col("__sizes") == 1).drop("__sizes"))
    frame = (
        lacking.join(parsed, on="instrument", how="left")
        .filter(pl.col("problem").is_null() & pl.col("inverse").is_not_null())
        .join(where, on=["venue", "instrument"], how="left")
        .join(one_size, on=["venue", "instrument"], how="left")
    )
    frame = with_venue_decimals(frame.with_columns(
        __unit=venue_unit_size(pl.col("venue"), pl.col("type"), pl.col("inverse"), pl.col("base"))), __unit_size="__unit")
    return (
        frame.filter(pl.col("__row_size").is_not_null() | pl.col("__unit_size").is_not_null())
        .select(
            business_date=pl.lit(day, pl.Date), venue="venue", symbol="instrument", base="base", quote="quote",
            settle="settle", type="type", inverse="inverse", expiry="expiry", strike="strike",
            option_type="option_type", contract_size=pl.coalesce("__row_size", "__unit_size"),
            source_file=pl.when(pl.col("__row_size").is_not_null()).then(pl.col("__row_file"))
            .otherwise(pl.col("source_file")),
            source_row=pl.when(pl.col("__row_size").is_not_null()).then(pl.col("__row_row"))
            .otherwise(pl.col("source_row")),
        )
        .select(specs.columns).cast(specs.schema)
        .sort("venue", "symbol")
    )


class MissingSpec(ValueError):
    """Instruments with a position and no spec: the date stops, naming each."""

    def __init__(self, day: dt.date, missing: list[str]):
        self.day, self.missing = day, missing
        super().__init__(
            f"no instrument spec on {day.isoformat()} for " + "; ".join(missing)
            + f": add them to instruments/{day.isoformat()}.json or .csv"
        )


def missing_specs(positions: pl.DataFrame, specs: pl.DataFrame) -> list[str]:
    """Each instrument held (``venue``, ``account``, ``instrument``, non-zero ``qty``) that
    has no spec for its venue, as ``venue/account instrument``, sorted."""
    held = positions.filter(pl.col("qty") != 0).select("venue", "account", "instrument").unique()
    found = resolve_specs(held, specs).filter(~pl.col("has_spec")).sort("venue", "account", "instrument")
    return [f"{v}/{a} {i}" for v, a, i in found.select("venue", "account", "instrument").iter_rows()]


def require_specs(day: dt.date, positions: pl.DataFrame, specs: pl.DataFrame) -> None:
    missing = missing_specs(positions, specs)
    if missing:
        raise MissingSpec(day, missing)


# --------------------------------------------------------------------------- helpers


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def _epoch_date(value: Any) -> str | None:
    """ccxt's ``expiry`` (epoch milliseconds) as ``YYYY-MM-DD`` text; other text passes on to be refused."""
    if value is None:
        return None
    text = _text(value)
    if text and text.isdigit():
        return dt.datetime.fromtimestamp(int(text) // 1000, dt.timezone.utc).date().isoformat()
    return text


def _text_frame(rows: list[dict]) -> pl.DataFrame:
    schema = {c: pl.String for c in CSV_HEADER} | {"source_row": pl.Int64}
    return pl.DataFrame(rows, schema=schema)


def _refusal(file: str, row: int, column: str | None, reason: str, raw: str | None) -> dict:
    return {"file": file, "row": row, "column": column, "reason": reason, "raw": raw}


def _refused(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=QUARANTINE_SCHEMA)

