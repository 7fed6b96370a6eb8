"""Coinbase: the transaction report (a ledger) and the legacy Coinbase Pro fills and account CSVs.

Layouts and their versions are in ``shared/venues/coinbase.md``.

The transaction report is a ledger: every row is one event of the account, and its booked
movements are what the event did to each asset.

- ``Buy``/``Sell``: ``±size`` of ``Asset``; ``∓Subtotal`` and ``-Fees`` of the Price
  Currency (the fee is stated in fiat).
- ``Advanced Trade Buy/Sell``: the money columns are only a fiat valuation; the note
  ``Sold 1.5 ETH for 5229.00 USDC on ETH-USDC at 3500.00 USDC/ETH`` names the real quote.
  ``±size`` of ``Asset``, ``∓size×rate`` of the quote, and the fee in quote: on a buy
  ``for − size×rate``, on a sell ``size×rate − for``. The doc's ``|size×rate − for|`` gives
  the same charge; keeping the sign means the quote movements always net to exactly the
  ``for`` amount, even where the spread makes that amount look like a rebate.
- ``Convert``: ``-size`` of ``Asset`` and ``+`` the ``to`` amount of the second asset; the
  fiat ``Fees and/or Spread`` is a valuation of a spread already inside the received amount,
  not a further balance change, so it books nothing.
- Any other type: one movement of ``Asset``, its direction from the type (older files write
  quantities unsigned); types with no fixed direction keep the sign as written.

The Coinbase Pro account statement is also read with the capitalised header some exports
have, ``Portfolio,Type,Timestamp,Amount,Balance,Amount/Balance Unit,Transfer ID,Trade ID,Order
ID`` (coinbase.md §3's columns, ``time`` named ``Timestamp``; issue 17).

Two older layouts (issue 17), each documented in its reader: the 2017 "Transfers" report
(:func:`read_transfers`: one file per asset wallet, the asset as the third column's name,
times with their offset, card and bank payments booked as money from outside) and the 2018
report (:func:`read_report_2018`: ``MM/DD/YYYY`` dates, the user's native currency in the
money column, fee included in the cash moved).

Entry ids: ``ID`` for the ``Asset`` movement, ``ID/quote`` (``ID/to`` for a convert) and
``ID/fee`` for the others; a trade's movements share ``ref_id = ID``. Files older than the
``ID`` column get a synthetic id from the raw row and its occurrence number.
"""

from __future__ import annotations

import concurrent.futures
import functools

import numpy as np
import polars as pl

from utl.decimals import DECIMAL, MARKED_NUMBER, product_overflows, sum_overflows
from utl.schemas import FILLS, MOVEMENTS
from utl.venues.base import (
    with_numbers,
    normal,
    Layout,
    Check,
    Columns,
    Format,
    Parsed,
    Source,
    head_text,
    header_cells,
    interleave,
    kernels_for,
    rename_columns,
    out_of_years,
    per_distinct,
    read_csv_columns,
    read_csv_rows,
    shaped_time,
    split_refused,
    text_or_null,
    to_schema,
    with_synthetic_id,
)
from utl.venues.base import _string_buffers, _wait_for_kernels

_REPORT_START = ("Timestamp", "Transaction Type", "Asset", "Quantity Transacted")
_REPORT_CURRENT = (
    "ID", *_REPORT_START, "Price Currency", "Price at Transaction", "Subtotal",
    "Total (inclusive of fees and/or spread)", "Fees and/or Spread", "Notes",
)
_REPORT_SPOT = (
    *_REPORT_START, "Spot Price Currency", "Spot Price at Transaction", "Subtotal",
    "Total (inclusive of fees and/or spread)", "Fees and/or Spread", "Notes",
)
_REPORT_SPOT_FEES = (
    *_REPORT_START, "Spot Price Currency", "Spot Price at Transaction", "Subtotal", "Total (inclusive of fees)", "Fees",
    "Notes",
)
_ADDRESSES = ("Sender Address", "Recipient Address")
# The oldest layout names the user's currency in the money columns; EUR is the one fixture.
_REPORT_OLDEST_EUR = (
    *_REPORT_START, "EUR Spot Price at Transaction", "EUR Subtotal", "EUR Total (inclusive of fees)", "EUR Fees", "Notes",
)
_PREAMBLE_LINES = 20  # the header follows a short preamble; never look further

PRO_FILLS_HEADERS = (
    ("portfolio", "trade id", "product", "side", "created at", "size", "size unit", "price", "fee", "total",
     "price/fee/total unit"),
    ("trade id", "product", "side", "created at", "size", "size unit", "price", "fee", "total", "price/fee/total unit"),
)
PRO_ACCOUNT_HEADERS = (
    ("portfolio", "type", "time", "amount", "balance", "amount/balance unit", "transfer id", "trade id", "order id"),
    ("type", "time", "amount", "balance", "amount/balance unit", "transfer id", "trade id", "order id"),
    # Issue 17: the statement as some users have it, capitalised and with `Timestamp` for `time`.
    ("Portfolio", "Type", "Timestamp", "Amount", "Balance", "Amount/Balance Unit", "Transfer ID", "Trade ID", "Order ID"),
)

# Transaction Type -> (movement kind, direction): +1 in, -1 out, 0 keep the written sign.
# Pro/Exchange Deposit moves coins from Coinbase to Coinbase Pro, so it leaves this account.
_REPORT_TYPES: dict[str, tuple[str, int]] = {
    "Buy": ("trade", 1),
    "Sell": ("trade", -1),
    "Advanced Trade Buy": ("trade", 1),
    "Advanced Trade Sell": ("trade", -1),
    "Convert": ("trade", -1),
    "Send": ("withdrawal", -1),
    "Receive": ("deposit", 1),
    "Deposit": ("deposit", 1),
    "Withdrawal": ("withdrawal", -1),
    "Staking Income": ("interest", 1),
    "Rewards Income": ("interest", 1),
    "Learning Reward": ("interest", 1),
    "Inflation Reward": ("interest", 1),
    "Subscription Rebate": ("rebate", 1),
    "Pro Deposit": ("transfer", -1),
    "Exchange Deposit": ("transfer", -1),
    "Pro Withdrawal": ("transfer", 1),
    "Exchange Withdrawal": ("transfer", 1),
    "Retail Staking Transfer": ("transfer", 0),
    "Retail Unstaking Transfer": ("transfer", 0),
}
_RETAIL_TRADES = ("Buy", "Sell")
_ADVANCED_TRADES = ("Advanced Trade Buy", "Advanced Trade Sell")
_BUYS = ("Buy", "Advanced Trade Buy")

_PRO_KINDS = {
    "deposit": "deposit",
    "withdrawal": "withdrawal",
    "match": "trade",
    "fee": "fee",
    "conversion": "trade",
    "rebate": "rebate",
}

_ADVANCED_NOTE = r"^(?:Bought|Sold) (\S+) (\S+) for (\S+) (\S+) on ([^\s-]+)-([^\s-]+) at (\S+) (\S+)/(\S+)$"
_CONVERT_NOTE = r"^Converted (\S+) (\S+) to (\S+) (\S+)$"
_REPORT_TIME = (
    (r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)? UTC$", "%Y-%m-%d %H:%M:%S%.f UTC"),
    (r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$", "%Y-%m-%dT%H:%M:%S%.fZ"),
)
_PRO_TIME = _REPORT_TIME[1:]


# ---------------------------------------------------------------- detection


@functools.lru_cache(maxsize=16)
def _lines(head: str) -> tuple[str, ...]:
    # Once per file head: each of the three report detectors looks at the same lines.
    return tuple(line.rstrip("\r") for line in head.split("\n"))


@functools.lru_cache(maxsize=1024)
def _cells(line: str) -> tuple[str, ...]:
    """``header_cells`` of a line, once per line for the three report detectors."""
    return tuple(header_cells(line))


# How many cells a transaction report header can have: each layout's, or the oldest's (9),
# each with or without the two address columns.
_REPORT_WIDTHS = frozenset(width + extra for width in (len(_REPORT_CURRENT), len(_REPORT_SPOT), len(_REPORT_SPOT_FEES), 9)
                           for extra in (0, len(_ADDRESSES)))


def _report_layout(cells: tuple[str, ...]) -> dict[str, str] | None:
    """Column names of a transaction report header by role, or None if it is not one.

    ``currency`` is a column name, except in the oldest layout where the user's currency is
    only a prefix of the money columns (``EUR Subtotal``): there it is ``=EUR``.
    """
    if len(cells) not in _REPORT_WIDTHS:  # as wide as no layout (a data row, mostly): none matches
        return None
    key = _normal(cells)
    if key[-2:] == _normal(_ADDRESSES):
        cells, key = cells[:-2], key[:-2]
    roles = ("ts", "type", "asset", "qty", "currency", "price", "subtotal", "total", "fees", "notes")
    # Fixed layouts: roles name the columns as Coinbase spells them (the reader renames the
    # file's columns so, case and blanks aside).
    if key == _normal(_REPORT_CURRENT):
        return {"id": "ID", **dict(zip(roles, _REPORT_CURRENT[1:]))}
    for layout in (_REPORT_SPOT, _REPORT_SPOT_FEES):
        if key == _normal(layout):
            return dict(zip(roles, layout))
    spot_price = " spot price at transaction"
    if len(cells) == 9 and key[:4] == _normal(_REPORT_START) and key[8] == "notes" and key[4].endswith(spot_price):
        ccy = cells[4].strip()[: -len(spot_price)]
        low = ccy.casefold()
        if ccy and " " not in ccy and key[5:8] == (f"{low} subtotal", f"{low} total (inclusive of fees)", f"{low} fees"):
            # Named after the user's currency: the columns as the file writes them.
            return dict(zip(roles, (*_REPORT_START, f"={ccy.upper()}", *cells[4:8], "Notes")))
    return None


@functools.lru_cache(maxsize=1024)
def _normal(cells: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normal(c) for c in cells)


def _find_report(head: str) -> tuple[int, dict[str, str]] | None:
    """(lines before the header, layout) of a transaction report, found below its preamble."""
    for number, line in enumerate(_lines(head)[:_PREAMBLE_LINES]):
        layout = _report_layout(_cells(line))
        if layout is not None:
            return number, layout
    return None


def _first_cells(head: str) -> tuple[str, ...]:
    return tuple(header_cells(_lines(head)[0]))


# ---------------------------------------------------------------- shared row helpers


def _text(column: str) -> pl.Expr:
    """A cell's text, stripped; empty is null."""
    return text_or_null(pl.col(column))


def with_decimals(frame: pl.DataFrame, texts: dict[str, pl.Expr]) -> pl.DataFrame:
    """Adds ``<name>__value`` (exact) and ``<name>__value__bad`` for each number text."""
    return with_numbers(frame, {f"{name}__value": text for name, text in texts.items()})


def _strip_currency(text: pl.Expr) -> pl.Expr:
    """An amount without its currency: ``"-$5,250.00"`` -> ``-5,250.00``; ``kr100``, ``100 SEK`` -> ``100``.

    Currency text goes from the front (after any sign) and a code or sign from the end, only
    where a number remains: ``abc`` stays ``abc`` and is refused as such.
    ASCII classes: Unicode ``\\d``/``\\s`` make these regexes several times slower.
    """
    return (
        text.str.strip_chars()
        .str.replace(r"^([+-]?)[ \t]*[^0-9 \t.+\-]+[ \t]*([0-9.+\-].*)$", "${1}${2}")
        .str.replace(r"^(.*[0-9.])[ \t]*(?:[A-Za-z]{2,5}|[^0-9A-Za-z \t.,+\-])$", "${1}")
    )


# An amount the shared parser reads only after dropping its currency mark and thousands
# commas (``$48,673.57``, ``-$5,250.00``), of no more than 20 digits before the point and 18
# after: then the digits left are a plain decimal it reads at once, to the same value.
_MARKED_IN_RANGE = r"^-?[$€£]?(?:[0-9]{1,2}(?:,[0-9]{3}){1,6}|[0-9]{3}(?:,[0-9]{3}){1,5}|[0-9]{1,20})(?:\.[0-9]{1,18})?$"
_MARKS = [",", "$", "€", "£"]


def _unmarked(text: pl.Series) -> pl.Series:
    """``text`` with the marks and commas of its in-range amounts (``_MARKED_IN_RANGE``)
    dropped, as the shared parser drops them itself after a first, failed parse of every
    such cell (~0.3 CPU s per million ``$``-marked cells). Other cells stay as written."""
    if not text.str.contains(r"[$€£,]").any():
        return text
    cells = pl.DataFrame({"t": text})
    return cells.select(
        pl.when(pl.col("t").str.contains(_MARKED_IN_RANGE))
        .then(pl.col("t").str.replace_many(_MARKS, [""] * len(_MARKS)))
        .otherwise(pl.col("t"))
    ).to_series().alias(text.name)


def _with_amounts(frame: pl.DataFrame, texts: dict[str, pl.Expr]) -> pl.DataFrame:
    """:func:`with_decimals` for amounts written with a currency.

    Only cells the shared parser cannot read as they stand (``kr100``, ``100 SEK``) go
    through :func:`_strip_currency`: for the others (``-$5,250.00``) it would only drop the
    currency mark, which the parser drops too, and its regexes cost a second per million.

    Where the compiled passes run (:func:`utl.venues.base.kernels_for`), each column is read
    first as written by the compiled number pass (:func:`_compiled_amounts`); only the cells
    it leaves take the Polars steps below.
    """
    cells = frame.select(**texts)
    if kernels_for(frame.height):
        with concurrent.futures.ThreadPoolExecutor(min(2, len(texts))) as pool:  # the kernel lets go of the GIL
            parsed = [s for pair in pool.map(lambda name: _compiled_amounts(cells[name], name), texts) for s in pair]
        return frame.with_columns(parsed)
    return _with_amounts_by_polars(frame, cells, texts)


def _compiled_amounts(text: pl.Series, name: str) -> tuple[pl.Series, pl.Series]:
    """``<name>__value`` and ``<name>__value__bad`` of :func:`_with_amounts` for one column.

    The compiled pass (:func:`utl.venues._csv_kernels.coded_decimals`) reads a cell that is,
    its ASCII spaces around dropped, ``[+-]?$?`` then digits (thousands in groups of three
    after commas or not) and perhaps ``.`` and digits, at most 18 a side: the steps below give
    such a cell its written value too (it matches ``MARKED_NUMBER`` or, spaces around, loses
    only the spaces and the ``$`` to :func:`_strip_currency`; :func:`_unmarked` and the shared
    parser keep its value). A null cell is null and not bad, as there. Every other cell
    (``€``, ``kr100``, ``100 SEK``, an exponent, 19 or 20 whole digits, junk) goes through
    those steps, gathered alone."""
    value, exact = _plain_decimals(text, f"{name}__value")
    bad = pl.Series(f"{name}__value__bad", np.zeros(len(exact), dtype=np.bool_))
    left = np.flatnonzero(~exact & text.is_not_null().to_numpy())
    if len(left):
        rest = pl.DataFrame({name: text.gather(left)})
        rest = _with_amounts_by_polars(rest, rest, {name: pl.col(name)})
        value = value.scatter(left, rest[f"{name}__value"])
        bad = bad.scatter(left, rest[f"{name}__value__bad"])
    return value, bad


def _plain_decimals(text: pl.Series, name: str) -> tuple[pl.Series, np.ndarray]:
    """The cells of ``text`` :func:`utl.venues.base.with_numbers`' compiled pass reads (no code),
    as ``Decimal(38, 18)`` (null elsewhere), and where they are: its two passes in one
    (:func:`utl.venues._csv_kernels.decimal_cells`), to the same values."""
    import pyarrow as pa

    from utl.venues._csv_kernels import decimal_cells

    _wait_for_kernels()
    n = len(text)
    units, exact = np.zeros((n, 2), dtype=np.uint64), np.zeros(n, dtype=np.bool_)
    if n:
        offsets, data, valid = _string_buffers(text)
        decimal_cells(offsets, data, valid, units, exact)
    nulls = int(n - np.count_nonzero(exact))
    validity = pa.py_buffer(np.packbits(exact, bitorder="little")) if nulls else None
    return pl.Series(name, pa.Array.from_buffers(pa.decimal128(38, 18), n, [validity, pa.py_buffer(units)], nulls)), exact


def _with_amounts_by_polars(frame: pl.DataFrame, cells: pl.DataFrame, texts: dict[str, pl.Expr]) -> pl.DataFrame:
    """:func:`_with_amounts` by Polars passes alone (``cells``: the texts, selected)."""
    stripped = {}
    for name in texts:
        text = cells[name]
        odd = (~text.str.contains(MARKED_NUMBER) & text.is_not_null()).arg_true()
        if odd.len():
            fixed = pl.DataFrame({"t": text.gather(odd)}).select(_strip_currency(pl.col("t"))).to_series()
            text = text.scatter(odd, fixed)
        stripped[f"{name}__stripped"] = _unmarked(text)
    frame = frame.with_columns(**stripped)
    frame = with_decimals(frame, {name: pl.col(f"{name}__stripped") for name in texts})
    return frame.drop(stripped)


# The two notes' regexes (_ADVANCED_NOTE, _CONVERT_NOTE) as their words between single spaces:
# a word to spell (alternatives between "|"), "" for a group (\S+), "-" and "/" for a
# token of two groups split there (([^\s-]+)-([^\s-]+), (\S+)/(\S+)).
_NOTE_TOKENS = {
    _ADVANCED_NOTE: ("Bought|Sold", "", "", "for", "", "", "on", "-", "at", "", "/"),
    _CONVERT_NOTE: ("Converted", "", "", "to", "", ""),
}


def _note_groups(notes: pl.Series, taken: pl.Series, pattern: str, fields: tuple[str, ...],
                 buffers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> pl.Series:
    r"""``pl.when(taken).then(notes).str.extract_groups(pattern)``'s groups named ``fields``
    (``"3"``: the third), as a struct of text fields; null where ``taken`` is not true or the
    note does not match.

    Where the compiled passes run, :func:`utl.venues._csv_kernels.note_tokens` splits the
    notes of printable ASCII written with single spaces, whose tokens are the pattern's words
    (``_NOTE_TOKENS``) and groups: no ``\S+`` group can then hold a space, so each group is
    its token, as the regex takes it (a token of two groups is split only where it holds
    one ``-`` or ``/``). Every other note taken (a tab, a non-ASCII blank or letter, a double
    space, a token too many, a second ``/``) is read by the regex, gathered alone.
    ``buffers``: ``_string_buffers(notes)``, when the caller has them (each is a copy of the notes).
    """
    def by_regex(cells: pl.DataFrame) -> pl.DataFrame:
        # The struct made once, then its fields (struct.field(*fields) would run the regex per field).
        groups = cells.select(pl.when("w").then(pl.col("n")).str.extract_groups(pattern)).to_series()
        return groups.struct.unnest().select(fields)  # in the order asked

    def struct(frame: pl.DataFrame) -> pl.Series:
        return frame.select(pl.struct(pl.all())).to_series()

    if not kernels_for(len(notes)):
        return struct(by_regex(pl.DataFrame({"n": notes, "w": taken})))
    import pyarrow as pa

    from utl.venues._csv_kernels import field_bytes, field_offsets, note_tokens

    _wait_for_kernels()
    tokens = _NOTE_TOKENS[pattern]
    groups = sum(2 if t in ("-", "/") else 1 for t in tokens if t in ("", "-", "/"))
    words = "".join(t for t in tokens if t not in ("", "-", "/")).encode()
    at = np.cumsum([0, *[0 if t in ("", "-", "/") else len(t) for t in tokens]]).astype(np.int64)
    slashed = np.array([tokens.index(m) if m in tokens else -1 for m in ("-", "/")], dtype=np.int64)
    wanted = np.array([int(f) - 1 for f in fields], dtype=np.int64)
    if not ((wanted >= 0) & (wanted < groups)).all():
        raise ValueError(f"no groups {fields} in {pattern}")
    offsets, data, valid = buffers if buffers is not None else _string_buffers(notes)
    n = len(notes)
    rows = np.flatnonzero(valid & taken.fill_null(False).to_numpy()).astype(np.int64)
    bounds, exact = np.zeros((len(rows), 2 * groups), dtype=np.int64), np.zeros(len(rows), dtype=np.bool_)
    note_tokens(offsets, data, rows, np.frombuffer(words, dtype=np.uint8), at, slashed, bounds, exact)
    field_at = np.zeros((len(wanted), n + 1), dtype=np.int64)
    field_data = np.zeros(field_offsets(bounds, rows, exact, wanted, field_at), dtype=np.uint8)
    field_bytes(data, bounds, rows, exact, wanted, field_at, field_data)
    read = np.zeros(n, dtype=np.bool_)
    read[rows[exact]] = True
    nulls = int(n - len(rows[exact]))
    validity = pa.py_buffer(np.packbits(read, bitorder="little")) if nulls else None
    shared = pa.py_buffer(field_data)
    split = [
        pl.Series(name, pa.Array.from_buffers(pa.large_string(), n, [validity, pa.py_buffer(field_at[k]), shared], nulls), dtype=pl.String)
        for k, name in enumerate(fields)
    ]
    left = rows[~exact]
    if len(left):
        regex = by_regex(pl.DataFrame({"n": notes.gather(left), "w": np.ones(len(left), dtype=np.bool_)}))
        split = [field.scatter(left, regex[field.name]) for field in split]
    return struct(pl.DataFrame(split))


def _number_checks(name: str, column: str, *, when: pl.Expr | None = None, required: bool = True) -> list[Check]:
    """Refuse the bad cells of a number parsed by :func:`with_decimals` and, if required, its blanks."""
    applies = when if when is not None else pl.lit(True)
    reason = pl.format('"{}": "{}" is not a decimal', pl.lit(column), pl.col(column))
    checks = [Check(column, applies & pl.col(f"{name}__value__bad"), reason)]
    if required:
        checks.append(Check(column, applies & _text(column).is_null(), f'"{column}" is missing'))
    return checks


def _time(column: str, shapes: tuple[tuple[str, str], ...]) -> pl.Expr:
    """UTC time in one of the documented shapes (pattern, format); null otherwise."""
    return shaped_time(pl.col(column), shapes)


def _time_check(column: str) -> Check:
    """Refuse a time that did not parse (``__ts``) or lies outside 2000..2099."""
    ts = pl.col("__ts")
    return Check(
        column,
        ts.is_null() | out_of_years(ts),
        pl.format('"{}": "{}" is not a UTC time of the export\'s shape in 2000..2099', pl.lit(column), pl.col(column)),
    )


_MOVEMENT_PARTS = {c: t for c, t in MOVEMENTS.items() if c not in ("venue", "account", "source_file")}


def _legs_in_order(frame: pl.DataFrame, own: dict[str, pl.Expr], second: dict[str, pl.Expr], third: dict[str, pl.Expr],
                   columns: list[str]) -> pl.DataFrame:
    """Each row's own leg, then its second where ``second["taken"]``, then its third where
    ``third["taken"]``, in file order: ``interleave([frame.with_columns(**own),
    frame.filter(second["taken"]).with_columns(**second), frame.filter(third["taken"])...])``
    selected to ``columns`` (``frame``: one row per source row, in file order), the columns
    ``own`` computes being those of every leg. Each leg's columns are computed on every row
    (a value no leg takes is never used, so an expression must not fail where its leg is not
    taken), stacked, and gathered once with the columns the legs share: no sort, no filter.
    :func:`_leg_values` then :func:`_legs_gathered`, which a reader calls apart to let
    ``frame`` go between them."""
    shared = [c for c in columns if c not in own]
    return _legs_gathered(_leg_values(frame, own, second, third, shared), list(own), columns)


def _leg_values(frame: pl.DataFrame, own: dict[str, pl.Expr], second: dict[str, pl.Expr], third: dict[str, pl.Expr],
                shared: list[str]) -> pl.DataFrame:
    """One row per row of ``frame``: the ``shared`` columns, each leg's columns (``0<name>``,
    ``1<name>``, ``2<name>``: own, second, third) and whether the second and third are taken."""
    return frame.select(
        *shared,
        *[expr.alias(f"{i}{name}") for i, leg in enumerate((own, second, third)) for name, expr in leg.items() if name != "taken"],
        second=second["taken"].fill_null(False), third=third["taken"].fill_null(False),
    )


def _legs_gathered(legs: pl.DataFrame, changed: list[str], columns: list[str]) -> pl.DataFrame:
    """:func:`_legs_in_order` of the legs :func:`_leg_values` made. ``legs`` is emptied as it
    goes: each column is let go once gathered or stacked, so that the allocator hands its
    memory out again to what follows (fresh memory costs this machine's kernel ~20x more)."""
    n = legs.height
    index = np.uint32 if 3 * n < 2**32 else np.uint64  # Polars' own index type: taken without a copy
    # Leg l of row r is 3 r + l of the legs taken, row after row: those taken, in order, give
    # each output row's source row, and where its leg is in the stack below (the own legs,
    # then the second legs, then the third): l n + r. No cumsum, repeat or scatter.
    taken = np.empty((n, 3), dtype=np.bool_)
    taken[:, 0] = True
    taken[:, 1] = legs.drop_in_place("second").to_numpy()
    taken[:, 2] = legs.drop_in_place("third").to_numpy()
    leg_at = np.flatnonzero(taken.ravel()).astype(index)
    del taken
    row = leg_at // index(3)
    leg_at -= index(3) * row  # the leg, 0..2
    leg_at *= index(n)
    leg_at += row
    in_stack, row = pl.Series(leg_at), pl.Series(row)
    del leg_at
    out = {}
    for name in changed:
        # A column at a time: its three legs stacked (texts in one chunk: a gather across
        # chunks of text costs ~2x; numbers gather across chunks as fast), then let go.
        parts = [legs.drop_in_place(f"{i}{name}") for i in range(3)]
        stacked = pl.concat(parts, rechunk=parts[0].dtype == pl.String)
        del parts
        out[name] = _gathered_in_pieces(stacked, in_stack, n)
        del stacked
    del in_stack
    # The columns the legs share, gathered together: Polars gathers them side by side (one
    # by one they took ~3x the time, and more fresh memory). Each in one chunk first: a text
    # column in the file's chunks (ids: ~90 per million rows) gathered ~2.5x slower, with
    # more fresh memory than the copy takes.
    if legs.width:
        shared = pl.DataFrame([legs.drop_in_place(name) for name in legs.columns]).rechunk()
        shared = _gathered_in_pieces(shared, row, n)
        out.update((name, shared[name]) for name in shared.columns)
    return pl.DataFrame([out[c].alias(c) for c in columns])


def _gathered_in_pieces(values: pl.Series | pl.DataFrame, at: pl.Series, most: int) -> pl.Series | pl.DataFrame:
    """``values.gather(at)``, as chunks of at most ``most`` values: each no larger than the
    columns of one row per source row just let go, whose memory it can then take (the
    allocator hands a larger piece fresh memory)."""
    if len(at) <= most:
        return values.gather(at)
    return pl.concat([values.gather(at.slice(start, most)) for start in range(0, len(at), most)], rechunk=False)


def _movements(parts: list[pl.DataFrame], source: Source) -> pl.DataFrame:
    """Movement parts in file order: a row's own asset first, then its counter asset, then its fee."""
    return to_schema(source, interleave([part.select(_MOVEMENT_PARTS.keys()).cast(_MOVEMENT_PARTS) for part in parts]), MOVEMENTS)


def _together(refused: pl.DataFrame, quarantine: pl.DataFrame) -> pl.DataFrame:
    """Rows refused whole and rows refused by a check, in row order."""
    return pl.concat([refused, quarantine]).sort("row", maintain_order=True)


# ---------------------------------------------------------------- transaction report


def read_report(source: Source) -> Parsed:
    found = _find_report(head_text(source.path))
    if found is None:
        raise ValueError(f"{source.rel}: no Coinbase transaction report header in the first {_PREAMBLE_LINES} lines")
    skip, col = found
    # With an ID the row's other columns (price, total, addresses) are never read; without
    # one, the synthetic id is made of every column.
    read = [name for role, name in col.items() if role not in ("price", "total") and not name.startswith("=")] if "id" in col else None
    if read is None:
        rows, refused = read_csv_rows(source, skip)
    else:
        wanted = {normal(c) for c in read}
        rows, refused, _ = read_csv_columns(source, lambda header: [c for c in header if normal(c) in wanted], skip)
    rows = rename_columns(rows, [c for c in col.values() if not c.startswith("=")])
    raw_columns = [c for c in rows.columns if c != "source_row"]
    rows = rows.with_columns(__id=pl.col(col["id"]).str.strip_chars()) if "id" in col else with_synthetic_id(rows, raw_columns, "__id")
    literal_currency = col["currency"].startswith("=")
    # The notes' bytes, copied out of Polars once for both notes' compiled passes; notes of
    # which no cell is null or can start or end with a blank (edge_blanks: each cell's first
    # and last byte) are kept as read, as nearly every export's are, not copied stripped.
    note_bytes = None
    if kernels_for(rows.height) and rows[col["notes"]].dtype == pl.String and not rows[col["notes"]].null_count():
        from utl.venues._csv_kernels import edge_blanks

        _wait_for_kernels()
        note_bytes = _string_buffers(rows[col["notes"]])
        if edge_blanks(*note_bytes):
            note_bytes = None
    # Staged: each text is stripped once, then read (eager Polars would redo a shared step).
    rows = rows.with_columns(
        __type=_text(col["type"]),
        __notes=pl.col(col["notes"]) if note_bytes is not None else pl.col(col["notes"]).fill_null("").str.strip_chars(),
    )
    tx_type, notes = pl.col("__type"), pl.col("__notes")
    # Transaction types are a handful of words: what each says is read once per type.
    rows = per_distinct(
        rows, "__type",
        __is_retail=tx_type.is_in(_RETAIL_TRADES),
        __is_advanced=tx_type.is_in(_ADVANCED_TRADES),
        __is_convert=tx_type == "Convert",
        __is_buy=tx_type.is_in(_BUYS),
        __own_kind=tx_type.replace_strict({t: k for t, (k, _) in _REPORT_TYPES.items()}, default="other", return_dtype=pl.String),
        __direction=tx_type.replace_strict({t: d for t, (_, d) in _REPORT_TYPES.items()}, default=0, return_dtype=pl.Int8),
    )
    rows = rows.with_columns(
        __currency=pl.lit(col["currency"][1:]) if literal_currency else _text(col["currency"]),
        __ts=_time(col["ts"], _REPORT_TIME),
    )
    if note_bytes is None and kernels_for(rows.height):
        note_bytes = _string_buffers(rows["__notes"])
    # The groups read: the "for" amount and its quote, the pair's quote, the rate; the amount
    # received and its asset. Both notes' passes at once (the compiled passes let go of the GIL).
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        groups = [
            pool.submit(_note_groups, rows["__notes"], rows[taken], pattern, fields, note_bytes)
            for taken, pattern, fields in (("__is_advanced", _ADVANCED_NOTE, ("3", "4", "6", "7")), ("__is_convert", _CONVERT_NOTE, ("3", "4")))
        ]
        rows = rows.with_columns(groups[0].result().alias("__advanced"), groups[1].result().alias("__convert"))
    del note_bytes, groups
    advanced, convert = pl.col("__advanced").struct, pl.col("__convert").struct
    rows = _with_amounts(
        rows,
        {
            "qty": pl.col(col["qty"]),
            "subtotal": pl.col(col["subtotal"]),
            "fees": pl.col(col["fees"]),
            "for": advanced.field("3"),
            "rate": advanced.field("7"),
            "to": convert.field("3"),
        },
    )
    zero = pl.lit(0).cast(DECIMAL)
    tx_type = pl.col("__type")
    is_retail, is_advanced = pl.col("__is_retail"), pl.col("__is_advanced")
    # Advanced Trade: the quote is size × the note's rate, rounded to 18 places, and the fee
    # the note's amount less it. Where either leaves Decimal(38, 18) the row is refused and
    # nothing is computed from it (Polars would fail the whole file).
    size, rate, amount_for = pl.col("qty__value").abs(), pl.col("rate__value"), pl.col("for__value")
    rows = rows.with_columns(__quote_too_large=product_overflows(rows, pl.when(is_advanced).then(size), rate))
    rows = rows.with_columns(__quote_qty=pl.when(pl.col("__quote_too_large")).then(zero).otherwise(size) * rate)
    rows = rows.with_columns(__fee_too_large=is_advanced & sum_overflows(amount_for, -pl.col("__quote_qty")))
    is_convert = pl.col("__is_convert")
    advanced_ok = (
        (advanced.field("4") == advanced.field("6"))
        & pl.col("for__value").is_not_null()
        & ~pl.col("for__value__bad")
        & (pl.col("rate__value") > zero)
        & ~pl.col("rate__value__bad")
    ).fill_null(False)
    convert_ok = (convert.field("4").is_not_null() & (pl.col("to__value") > zero) & ~pl.col("to__value__bad")).fill_null(False)
    checks = [
        *([Check(col["id"], pl.col("__id").is_null() | (pl.col("__id") == ""), '"ID" is missing')] if "id" in col else []),
        _time_check(col["ts"]),
        Check(col["type"], tx_type.is_null(), '"Transaction Type" is missing'),
        Check(col["asset"], _text(col["asset"]).is_null(), '"Asset" is missing'),
        *_number_checks("qty", col["qty"]),
        Check(col["qty"], pl.col("qty__value") == zero, '"Quantity Transacted" is zero'),
        *(
            []
            if literal_currency
            else [Check(col["currency"], is_retail & pl.col("__currency").is_null(), f'"{col["currency"]}" is missing')]
        ),
        *_number_checks("subtotal", col["subtotal"], when=is_retail),
        *_number_checks("fees", col["fees"], when=is_retail, required=False),
        Check(
            col["notes"],
            is_advanced & ~advanced_ok,
            pl.format(
                '"Notes": "{}" is not "Bought|Sold <size> <asset> for <amount> <quote> on <base>-<quote>'
                ' at <rate> <quote>/<base>"',
                pl.col("__notes"),
            ),
        ),
        Check(
            col["notes"],
            is_convert & ~convert_ok,
            pl.format('"Notes": "{}" is not "Converted <size> <asset> to <amount> <asset>"', pl.col("__notes")),
        ),
        Check(
            col["qty"],
            is_advanced & advanced_ok & pl.col("__quote_too_large"),
            pl.format('"{}" × the note\'s rate overflows 38 digits (20 before the point)', pl.lit(col["qty"])),
            raw=pl.format("{} × {}", pl.col(col["qty"]), advanced.field("7")),
        ),
        Check(
            col["notes"],
            advanced_ok & ~pl.col("__quote_too_large") & pl.col("__fee_too_large"),
            pl.format('"Notes": the fee ({} less {} × {}) overflows 38 digits (20 before the point)',
                      advanced.field("3"), pl.col(col["qty"]), advanced.field("7")),
            raw=pl.col("__notes"),
        ),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)

    direction = pl.col("__direction")
    is_buy = pl.col("__is_buy")
    quote_qty = pl.col("__quote_qty")
    lines = passed.select(
        "source_row",
        ts="__ts",
        ref_id=pl.when(is_retail | is_advanced | is_convert).then(pl.col("__id")),
        entry_id="__id",
        description=pl.when(pl.col("__notes") == "")
        .then(tx_type)
        .otherwise(pl.concat_str([tx_type, pl.col("__notes")], separator=": ")),
        own_kind="__own_kind",
        asset=_text(col["asset"]),
        own_qty=pl.when(direction == 1).then(size).when(direction == -1).then(-size).otherwise(pl.col("qty__value")),
        is_retail=is_retail,
        is_advanced=is_advanced,
        is_convert=is_convert,
        is_buy=is_buy,
        currency="__currency",
        subtotal=pl.col("subtotal__value").abs(),
        fees="fees__value",
        quote=advanced.field("6"),
        quote_qty=quote_qty,
        advanced_fee=pl.when(is_buy).then(pl.col("for__value") - quote_qty).otherwise(quote_qty - pl.col("for__value")),
        to_asset=convert.field("4"),
        to_amount="to__value",
    )
    del rows, passed  # the file's text and every step's column: their memory serves what follows
    # A row's own movement, then its counter movement (retail, advanced and convert rows are
    # apart: at most one), then its fee.
    ref_id, is_buy = pl.col("ref_id"), pl.col("is_buy")
    is_retail, is_advanced, is_convert = pl.col("is_retail"), pl.col("is_advanced"), pl.col("is_convert")

    def quote_leg(amount: str) -> pl.Expr:
        return pl.when(is_buy).then(-pl.col(amount)).otherwise(pl.col(amount))

    def paid(fee: str) -> pl.Expr:
        return pl.col(fee).is_not_null() & (pl.col(fee) != zero)

    counter = {
        "taken": (is_retail & (pl.col("subtotal") != zero)) | (is_advanced & (pl.col("quote_qty") != zero))
        | (is_convert & (pl.col("to_amount") != zero)),
        "entry_id": ref_id + pl.when(is_convert).then(pl.lit("/to")).otherwise(pl.lit("/quote")),
        "asset": pl.when(is_retail).then(pl.col("currency")).when(is_advanced).then(pl.col("quote")).otherwise(pl.col("to_asset")),
        "kind": pl.lit("trade"),
        "qty": pl.when(is_retail).then(quote_leg("subtotal")).when(is_advanced).then(quote_leg("quote_qty")).otherwise(pl.col("to_amount")),
    }
    fee = {
        "taken": (is_retail & paid("fees")) | (is_advanced & paid("advanced_fee")),
        "entry_id": ref_id + "/fee",
        "asset": pl.when(is_retail).then(pl.col("currency")).otherwise(pl.col("quote")),
        "kind": pl.lit("fee"),
        "qty": pl.when(is_retail).then(-pl.col("fees")).otherwise(-pl.col("advanced_fee")),
    }
    own = {"entry_id": pl.col("entry_id"), "asset": pl.col("asset"), "kind": pl.col("own_kind"), "qty": pl.col("own_qty")}
    columns = list(_MOVEMENT_PARTS)
    legs = _leg_values(lines, own, counter, fee, [c for c in columns if c not in own])
    del lines  # what only the legs read: its memory serves them in file order
    movements = _legs_gathered(legs, list(own), columns)
    return Parsed(_movements([movements], source), _together(refused, quarantine))


# ---------------------------------------------------------------- 2017 Transfers report

TRANSFERS_AFTER_ASSET = ("Subtotal", "Fees", "Total", "Currency", "Price Per Coin", "Payment Method", "ID", "Share")
_TRANSFERS_TIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$"
_ASSET_CODE = r"^[A-Z0-9]{2,10}$"
# Type -> (kind of the asset's own movement, direction); Deposit/Withdrawal move the fiat.
_TRANSFER_TYPES = {"Buy": ("trade", 1), "Sell": ("trade", -1), "Deposit": ("deposit", 1), "Withdrawal": ("withdrawal", -1)}


def _transfers_header(cells: tuple[str, ...]) -> str | None:
    """The asset a Transfers report header names in its third column, or None."""
    import re

    if len(cells) != 11:
        return None
    key = _normal(cells)
    if key[:2] == ("timestamp", "type") and key[3:] == _normal(TRANSFERS_AFTER_ASSET):
        return cells[2] if re.match(_ASSET_CODE, cells[2]) else None
    return None


def _find_transfers(head: str) -> tuple[int, str] | None:
    """(lines before the header, the asset) of a 2017 Transfers report, found below its preamble."""
    for number, line in enumerate(_lines(head)[:_PREAMBLE_LINES]):
        asset = _transfers_header(_cells(line))
        if asset is not None:
            return number, asset
    return None


def read_transfers(source: Source) -> Parsed:
    """The Coinbase "Transfers" report of 2017 (one file per asset wallet), a ledger.

    Documented by BittyTax (``src/bittytax/conv/parsers/coinbase.py``, "Coinbase Transfers",
    ``parse_coinbase_transfers``) and by a published sample in an importer's docs: a
    preamble (``Transfers``, ``User,<email>,<id>``, a blank line), then
    ``Timestamp,Type,<ASSET>,Subtotal,Fees,Total,Currency,Price Per Coin,Payment Method,ID,Share``
    with rows like ``2017-05-14 09:06:58 -0700,Buy,0.00382377,9.0,0.99,9.99,EUR,...``. What
    differs from the transaction report: the asset is the *name* of the third column (its
    cells are the amounts), times carry their own UTC offset, the fiat side is ``Subtotal``
    and ``Fees`` in ``Currency`` (``Total`` = Subtotal + Fees on a buy, − Fees on a sell), and
    ``Payment Method`` says where the money came from or went.

    - ``Buy``: ``+amount`` of the asset, ``-Subtotal`` and ``-Fees`` of ``Currency``; ``Sell``:
      ``-amount``, ``+Subtotal``, ``-Fees``. Paid by a card or bank (a ``Payment Method`` that
      is not a Coinbase ``… Wallet``), the money never sat in the account: it arrives as a
      deposit of ``Total`` (a sell's proceeds leave as a withdrawal of ``Total``), so the
      purchase is an acquisition at its cost and the fiat wallet nets to zero.
    - ``Deposit``/``Withdrawal`` (fiat, BittyTax's reading): ``±Total`` of ``Currency`` and
      ``-Fees``.
    Ids: ``ID``, ``ID/quote``, ``ID/fee``, ``ID/payment``; a trade's lines share ``ref_id = ID``.
    """
    found = _find_transfers(head_text(source.path))
    if found is None:
        raise ValueError(f"{source.rel}: no Coinbase Transfers header in the first {_PREAMBLE_LINES} lines")
    skip, asset = found
    rows, refused = read_csv_rows(source, skip)
    rows = rename_columns(rows, ["Timestamp", "Type", *TRANSFERS_AFTER_ASSET])
    rows = rows.with_columns(
        __id=_text("ID"), __type=_text("Type"), __currency=_text("Currency"),
        __ts=_text("Timestamp").str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%d %H:%M:%S %z", strict=False),
        __wallet=_text("Payment Method").fill_null("").str.to_lowercase().str.contains("wallet"),
    )
    rows = _with_amounts(rows, {"amount": pl.col(asset), "subtotal": pl.col("Subtotal"), "fees": pl.col("Fees"),
                                "total": pl.col("Total")})
    tx_type = pl.col("__type")
    is_trade = tx_type.is_in(["Buy", "Sell"])
    checks = [
        Check("ID", pl.col("__id").is_null(), '"ID" is missing'),
        Check("Timestamp", pl.col("__ts").is_null() | ~_text("Timestamp").str.contains(_TRANSFERS_TIME)
              | out_of_years(pl.col("__ts")),
              pl.format('"Timestamp": "{}" is not a time like 2017-05-14 09:06:58 -0700 in 2000..2099', pl.col("Timestamp"))),
        Check("Type", ~tx_type.is_in(list(_TRANSFER_TYPES)).fill_null(True),
              pl.format('"Type": "{}" is not Buy, Sell, Deposit or Withdrawal', pl.col("Type"))),
        Check("Currency", pl.col("__currency").is_null(), '"Currency" is missing'),
        *_number_checks("amount", asset, when=is_trade),
        *_number_checks("subtotal", "Subtotal", when=is_trade),
        *_number_checks("fees", "Fees", required=False),
        *_number_checks("total", "Total"),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)
    zero = pl.lit(0).cast(DECIMAL)
    buy = tx_type.is_in(["Buy", "Deposit"])
    lines = passed.select(
        "source_row", ts="__ts", entry_id="__id", currency="__currency", is_trade=is_trade, buy=buy,
        external=~pl.col("__wallet"),
        ref_id=pl.when(is_trade).then(pl.col("__id")),
        description=pl.concat_str([tx_type, _text("Payment Method")], separator=": ", ignore_nulls=True),
        kind=tx_type.replace_strict({t: k for t, (k, _) in _TRANSFER_TYPES.items()}, default="other"),
        amount=pl.col("amount__value").abs(), subtotal=pl.col("subtotal__value").abs(),
        fees=pl.col("fees__value").abs(), total=pl.col("total__value").abs(),
    )
    shared = ("source_row", "ts", "ref_id", "description")
    trades = lines.filter("is_trade")
    own = interleave([
        trades.select(*shared, "entry_id", "kind", asset=pl.lit(asset),
                      qty=pl.when("buy").then(pl.col("amount")).otherwise(-pl.col("amount"))),
        lines.filter(~pl.col("is_trade")).select(*shared, "entry_id", "kind", asset="currency",
                                                 qty=pl.when("buy").then(pl.col("total")).otherwise(-pl.col("total"))),
    ])
    quote = trades.select(*shared, entry_id=pl.col("entry_id") + "/quote", kind=pl.lit("trade"), asset="currency",
                          qty=pl.when("buy").then(-pl.col("subtotal")).otherwise(pl.col("subtotal")))
    fees = lines.filter(pl.col("fees").fill_null(zero) != zero).select(
        *shared, entry_id=pl.col("entry_id") + "/fee", kind=pl.lit("fee"), asset="currency", qty=-pl.col("fees"))
    payment = trades.filter("external").select(
        *shared, entry_id=pl.col("entry_id") + "/payment", asset="currency",
        kind=pl.when("buy").then(pl.lit("deposit")).otherwise(pl.lit("withdrawal")),
        qty=pl.when("buy").then(pl.col("total")).otherwise(-pl.col("total")))
    return Parsed(_movements([payment, own, quote, fees], source), _together(refused, quarantine))


# ---------------------------------------------------------------- 2018 report (MM/DD/YYYY)

_REPORT_2018_CASH = " quantity Transacted (Inclusive of Coinbase Fees)"


def _report_2018(cells: tuple[str, ...]) -> str | None:
    """The user's currency a 2018 report header names (``EUR Spot Price at Transaction``,
    ``EUR quantity Transacted (Inclusive of Coinbase Fees)``), or None."""
    spot = " Spot Price at Transaction"
    if len(cells) != 8 or _normal(cells[:4]) != _normal(_REPORT_START) or _normal(cells[6:]) != ("address", "notes"):
        return None
    ccy = cells[4].strip()[: -len(spot)]
    ok = normal(cells[4]).endswith(normal(spot)) and " " not in ccy and normal(cells[5]) == normal(ccy + _REPORT_2018_CASH)
    return ccy if ok and ccy else None


def _find_report_2018(head: str) -> tuple[int, str] | None:
    for number, line in enumerate(_lines(head)[:_PREAMBLE_LINES]):
        ccy = _report_2018(_cells(line))
        if ccy is not None:
            return number, ccy
    return None


_DATE_2018 = (
    (r"^\d{1,2}/\d{1,2}/\d{4}$", "%m/%d/%Y"),
    (r"^\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}$", "%m/%d/%Y %H:%M"),
)


def read_report_2018(source: Source) -> Parsed:
    """The Coinbase transaction report as exported in 2018, a ledger.

    Documented by github.com/fho/cryptotax's Coinbase importer (its header comment and
    ``time.Parse("01/02/2006", ...)``): ``Timestamp,Transaction Type,Asset,Quantity
    Transacted,EUR Spot Price at Transaction,EUR quantity Transacted (Inclusive of Coinbase
    Fees),Address,Notes``. What differs from the other report versions: dates are
    ``MM/DD/YYYY`` (no time: the row is booked at 00:00 UTC of that date; ``MM/DD/YYYY HH:MM``
    is read too), the user's native currency (not USD) prefixes the money columns, and there
    is one money column, the cash moved *including* the fee, with no separate fee or
    subtotal (a fee derived from the rounded spot price would be a guess, so none is booked).

    ``Buy``: ``+qty`` of ``Asset`` and ``-cash`` of the currency; ``Sell``: ``-qty`` and
    ``+cash``; other types move ``Asset`` only, directed as in the current report. No ids:
    the raw row and its occurrence number are the key.
    """
    found = _find_report_2018(head_text(source.path))
    if found is None:
        raise ValueError(f"{source.rel}: no 2018 Coinbase report header in the first {_PREAMBLE_LINES} lines")
    skip, ccy = found
    rows, refused = read_csv_rows(source, skip)
    rows = rename_columns(rows, [*_REPORT_START, "Address", "Notes"])
    columns = [c for c in rows.columns if c != "source_row"]
    rows = with_synthetic_id(rows, columns, "__id")
    cash_column = columns[5]
    rows = rows.with_columns(__type=_text("Transaction Type"), __ts=_time("Timestamp", _DATE_2018),
                             __notes=pl.col("Notes").fill_null("").str.strip_chars())
    rows = _with_amounts(rows, {"qty": pl.col("Quantity Transacted"), "cash": pl.col(cash_column)})
    tx_type = pl.col("__type")
    is_trade = tx_type.is_in(_RETAIL_TRADES)
    checks = [
        Check("Timestamp", pl.col("__ts").is_null() | out_of_years(pl.col("__ts")),
              pl.format('"Timestamp": "{}" is not a date MM/DD/YYYY in 2000..2099', pl.col("Timestamp"))),
        Check("Transaction Type", tx_type.is_null(), '"Transaction Type" is missing'),
        Check("Asset", _text("Asset").is_null(), '"Asset" is missing'),
        *_number_checks("qty", "Quantity Transacted"),
        Check("Quantity Transacted", pl.col("qty__value") == pl.lit(0).cast(DECIMAL), '"Quantity Transacted" is zero'),
        *_number_checks("cash", cash_column, when=is_trade),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)
    size = pl.col("qty__value").abs()
    direction = tx_type.replace_strict({t: d for t, (_, d) in _REPORT_TYPES.items()}, default=0, return_dtype=pl.Int8)
    lines = passed.select(
        "source_row", ts="__ts", entry_id="__id", ref_id=pl.when(is_trade).then(pl.col("__id")),
        description=pl.when(pl.col("__notes") == "").then(tx_type)
        .otherwise(pl.concat_str([tx_type, pl.col("__notes")], separator=": ")),
        kind=tx_type.replace_strict({t: k for t, (k, _) in _REPORT_TYPES.items()}, default="other", return_dtype=pl.String),
        asset=_text("Asset"), is_trade=is_trade, buy=tx_type == "Buy",
        qty=pl.when(direction == 1).then(size).when(direction == -1).then(-size).otherwise(pl.col("qty__value")),
        cash=pl.col("cash__value").abs(),
    )
    shared = ("source_row", "ts", "ref_id", "description")
    own = lines.select(*shared, "entry_id", "kind", "asset", "qty")
    counter = lines.filter("is_trade").select(
        *shared, entry_id=pl.col("entry_id") + "/quote", kind=pl.lit("trade"), asset=pl.lit(ccy),
        qty=pl.when("buy").then(-pl.col("cash")).otherwise(pl.col("cash")))
    return Parsed(_movements([own, counter], source), _together(refused, quarantine))


# ---------------------------------------------------------------- Coinbase Pro fills


def read_pro_fills(source: Source) -> Parsed:
    rows, refused = read_csv_rows(source)
    rows = rename_columns(rows, PRO_FILLS_HEADERS[0])
    product = _text("product")
    rows = with_decimals(rows, {c: pl.col(c) for c in ("size", "price", "fee")}).with_columns(__ts=_time("created at", _PRO_TIME))
    # Products, sides and units take a handful of values: each is read once.
    rows = per_distinct(
        rows,
        ["product", "side", "size unit", "price/fee/total unit"],
        __product=product,
        __base=product.str.extract(r"^([^-]+)-[^-]+$", 1),
        __quote=product.str.extract(r"^[^-]+-([^-]+)$", 1),
        __side=_text("side").str.to_lowercase(),
        __size_unit=_text("size unit"),
        __price_unit=_text("price/fee/total unit"),
    )
    size, price, fee = pl.col("size__value"), pl.col("price__value"), pl.col("fee__value")
    # Where size × price leaves Decimal(38, 18) the row is refused, and never multiplied:
    # Polars would fail the whole file.
    # The id stripped once, for its check and the fill (each strip costs ~0.03 s per million).
    rows = rows.with_columns(__too_large=product_overflows(rows, size, price), __trade_id=_text("trade id"))
    base, quote, side = pl.col("__base"), pl.col("__quote"), pl.col("__side")
    size_unit, price_unit = pl.col("__size_unit"), pl.col("__price_unit")
    zero = pl.lit(0).cast(DECIMAL)
    checks = [
        Check("trade id", pl.col("__trade_id").is_null(), '"trade id" is missing'),
        Check("product", base.is_null(), pl.format('"product": "{}" is not BASE-QUOTE', pl.col("product"))),
        Check(
            "side",
            ~side.is_in(["buy", "sell"]).fill_null(False),
            pl.format('"side": "{}" is not BUY or SELL', pl.col("side")),
        ),
        _time_check("created at"),
        *_number_checks("size", "size"),
        Check("size", size == zero, '"size" is zero'),
        # A unit other than the product's would make size or price mean something else.
        Check(
            "size unit",
            size_unit.is_not_null() & (size_unit != base),
            pl.format('"size unit": "{}" is not the base of {}', pl.col("size unit"), pl.col("__product")),
        ),
        *_number_checks("price", "price"),
        Check("price", price <= zero, '"price" is not positive'),
        Check(
            "size",
            pl.col("__too_large"),
            '"size" × "price" overflows 38 digits (20 before the point)',
            raw=pl.format("{} × {}", pl.col("size"), pl.col("price")),
        ),
        *_number_checks("fee", "fee", required=False),
        Check(
            "price/fee/total unit",
            price_unit.is_not_null() & (price_unit != quote),
            pl.format(
                '"price/fee/total unit": "{}" is not the quote of {}', pl.col("price/fee/total unit"), pl.col("__product")
            ),
        ),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)
    fills = passed.select(
        venue=pl.lit(source.venue),
        account=pl.lit(source.account),
        # The venue's id as written; ingest qualifies it by pair (Coinbase numbers per product).
        trade_id="__trade_id",
        order_id=pl.lit(None, pl.String),
        ts="__ts",
        symbol="__product",
        base=base,
        quote=quote,
        side=side,
        qty=pl.when(side == "sell").then(-size.abs()).otherwise(size.abs()),
        price=price,
        quote_qty=size.abs() * price,
        fee=fee,
        fee_asset=pl.when(fee.is_not_null()).then(quote),
        liquidity=pl.lit(None, pl.String),
        source_file=pl.lit(source.rel),
        source_row="source_row",
    ).cast(FILLS)
    return Parsed(fills, _together(refused, quarantine))


# ---------------------------------------------------------------- Coinbase Pro account statement


def read_pro_account(source: Source) -> Parsed:
    rows, refused = read_csv_rows(source)
    rows = rename_columns(rows, PRO_ACCOUNT_HEADERS[0], {"Timestamp": "time"})
    raw_columns = [c for c in rows.columns if c != "source_row"]
    # The statement has no row id; the running balance keeps its rows distinct.
    rows = with_synthetic_id(rows, raw_columns, "__id")
    rows = with_decimals(rows, {"amount": pl.col("amount")}).with_columns(__ts=_time("time", _PRO_TIME))
    # Types and units take a handful of values: each is read once.
    rows = per_distinct(
        rows, ["type", "amount/balance unit"],
        __type=_text("type"),
        __kind=_text("type").replace_strict(_PRO_KINDS, default="other", return_dtype=pl.String),
        __asset=_text("amount/balance unit"),
    )
    checks = [
        Check("type", pl.col("__type").is_null(), '"type" is missing'),
        _time_check("time"),
        *_number_checks("amount", "amount"),
        Check("amount", pl.col("amount__value") == pl.lit(0).cast(DECIMAL), '"amount" is zero'),
        Check("amount/balance unit", pl.col("__asset").is_null(), '"amount/balance unit" is missing'),
    ]
    passed, quarantine = split_refused(rows, checks, source.rel)
    trade_id, order_id = _text("trade id"), _text("order id")
    # Trade ids repeat across products and the statement names no product: the order id
    # makes the link unique.
    ref_id = pl.coalesce(
        pl.when(trade_id.is_not_null()).then(
            pl.concat_str([order_id.fill_null(""), trade_id], separator=":").str.strip_prefix(":")
        ),
        _text("transfer id"),
    )
    movements = passed.select(
        "source_row",
        entry_id="__id",
        ref_id=ref_id,
        ts="__ts",
        kind="__kind",
        asset="__asset",
        qty="amount__value",
        description="__type",
    )
    return Parsed(_movements([movements], source), _together(refused, quarantine))


# How the Pro exports are claimed (utl.venues.base.Columns). The transaction reports and
# the 2017 Transfers report name columns after the user's currency or the wallet's asset
# (``EUR Subtotal``, ``BTC``): their own matchers find those headers by role.
PRO_FILLS_COLUMNS = Columns(
    required=("trade id", "product", "side", "created at", "size", "size unit", "price", "fee", "price/fee/total unit"),
    optional=("portfolio", "total"),
)
# No balance: the rows are still told apart by content and occurrence.
PRO_ACCOUNT_COLUMNS = Columns(
    required=("type", "time", "amount", "amount/balance unit", "transfer id", "trade id", "order id"),
    optional=("portfolio", "balance"),
    localized={"Timestamp": "time"},
)

FORMATS: list[Format] = [
    Format("coinbase.transaction_report", "ledger", lambda head: _find_report(head) is not None, read_report,
           layouts=(Layout("current", _REPORT_CURRENT), Layout("current with addresses", _REPORT_CURRENT + _ADDRESSES),
                    Layout("spot price", _REPORT_SPOT), Layout("spot price, fees", _REPORT_SPOT_FEES),
                    Layout("oldest (EUR)", _REPORT_OLDEST_EUR))),
    Format("coinbase.pro_fills", "fills", None, read_pro_fills, columns=(PRO_FILLS_COLUMNS,),
           layouts=(Layout("current", PRO_FILLS_HEADERS[0]), Layout("no portfolio", PRO_FILLS_HEADERS[1]))),
    Format("coinbase.transfers_2017", "ledger", lambda head: _find_transfers(head) is not None, read_transfers,
           layouts=(Layout("2017 (BTC wallet)", ("Timestamp", "Type", "BTC", *TRANSFERS_AFTER_ASSET)),)),
    Format("coinbase.report_2018", "ledger", lambda head: _find_report_2018(head) is not None, read_report_2018,
           layouts=(Layout("2018 (EUR)", (*_REPORT_START, "EUR Spot Price at Transaction",
                                          "EUR quantity Transacted (Inclusive of Coinbase Fees)", "Address", "Notes")),)),
    Format("coinbase.pro_account", "ledger", None, read_pro_account, columns=(PRO_ACCOUNT_COLUMNS,),
           layouts=(Layout("current", PRO_ACCOUNT_HEADERS[0]), Layout("no portfolio", PRO_ACCOUNT_HEADERS[1]),
                    Layout("capitalised", PRO_ACCOUNT_HEADERS[2]))),
]
