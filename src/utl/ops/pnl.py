"""``utl pnl``: a date's PnL per book and asset, and its explain per book, for reading.

Money in the reporting currency with two places and thousands separators, quantities with
the asset's own places (:mod:`utl.report.formatting`), a subtotal per book and a firm total.
``trade_residual`` (what a trade's legs leave at their marks, 002_pnl) stands beside the PnL,
so each book's lines add up to its explain. The CSV keeps every decimal exact.

Derivatives (derivatives.md) follow in a section of their own, per book and instrument:
quantity, average entry, mark, unrealized PnL in the settle asset and in the reporting
currency, and the day's realized PnL, funding and fees in the settle asset (a ledger's cash
rows, or the realized PnL computed for a fills-only account). Their cash already books in the
settle asset's lines above (income and fees), and each open instrument has a line of its own
there too (utl.pnl: asset = the ccxt symbol, its value the unrealized PnL, or an option's
premium value where a ledger booked the premium), so the book's lines still add up to its
explain; the section shows the instrument's own figures beside them. Without derivatives the
output is what it was. The CSV is unchanged.

A line whose PnL rests on a disposal of something no file shows acquired (``provisional`` in
utl.pnl, ledger.md ``missing_acquisition``) is marked ``*`` beside its asset, and so is every
total it is part of; a footnote says what the mark means. The CSV ends with ``provisional``.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from utl.ops.table import render_table
from utl.decimals import WIDE as _WIDE
from utl.report.formatting import money, quantity

PNL_COLUMNS = ("realized_pnl", "unrealized_pnl", "unrealized_change", "fees", "income", "trade_residual", "total_pnl")
EXPLAIN_COLUMNS = ("market_value_start", "market_value_end", "external_flows", "total_pnl", "realized_pnl",
                   "unrealized_change", "fees", "income", "trade_residual", "unexplained")
_PNL_HEADER = ("realized", "unrealized", "unr. change", "fees", "income", "total PnL", "trade residual", "book PnL")
_PNL_ORDER = ("realized_pnl", "unrealized_pnl", "unrealized_change", "fees", "income", "total_pnl", "trade_residual")
PROVISIONAL_MARK = "*"
PROVISIONAL_NOTE = (f"{PROVISIONAL_MARK} provisional: a disposal of something no file shows acquired "
                    "(missing_acquisition; see utl breaks)")
_EXPLAIN_HEADER = ("value start", "value end", "external flows", "total PnL", "realized", "unr. change", "fees",
                   "income", "trade residual", "unexplained")


def pnl_lines(pnl: pl.DataFrame, positions: pl.DataFrame) -> pl.DataFrame:
    """The date's PnL per (book, asset) with the book's ledger quantity of the asset; the
    ``provisional`` flag last, so the columns before it stay where they were."""
    qty = (positions.with_columns(book=pl.coalesce("book", pl.format("{}/{}", "venue", "account")))
           .group_by("book", "asset").agg(pl.col("qty").sum()))
    return (pnl.join(qty, on=["book", "asset"], how="left")
            .select("business_date", "book", "asset", "qty", *PNL_COLUMNS, "provisional").sort("book", "asset"))


def explain_lines(explain: pl.DataFrame) -> pl.DataFrame:
    return explain.select("business_date", "book", *EXPLAIN_COLUMNS).sort("book")


def _totals(frame: pl.DataFrame, columns: tuple[str, ...]) -> dict:
    return frame.select(pl.col(c).sum() for c in columns).row(0, named=True)


def _total_cells(frame: pl.DataFrame) -> tuple[str, ...]:
    # A trade's legs in different assets leave residuals that cancel only across the book:
    # "book PnL" (total PnL + trade residual) is the explain's total of the book.
    t = _totals(frame, PNL_COLUMNS)
    book = None if t["total_pnl"] is None or t["trade_residual"] is None else _WIDE.add(t["total_pnl"], t["trade_residual"])
    return (*(money(t[c]) for c in _PNL_ORDER), money(book))


def _marked(text: str, provisional: bool) -> str:
    return text + PROVISIONAL_MARK if provisional else text


def _any_provisional(frame: pl.DataFrame) -> bool:
    return bool(frame["provisional"].any())


_DERIVATIVE_HEADER = ("qty", "entry", "mark", "unrealized", "unrealized USD", "realized", "funding", "fees", "settle")


def derivative_lines(derivatives: pl.DataFrame, settings) -> pl.DataFrame:
    """``utl.derivative_positions`` rows with their book, sorted by book and instrument."""
    from utl.positions import with_book

    if derivatives.height == 0:
        return derivatives.with_columns(book=pl.lit(None, pl.String))
    return with_book(derivatives, settings).sort("book", "instrument")


def format_derivatives(currency: str, lines: pl.DataFrame) -> list[str]:
    """The derivatives section: a line per (book, instrument) and the book's unrealized total
    in the reporting currency (null when an instrument of the book has none: unpriced)."""
    if lines.height == 0:
        return []
    rows = []
    for (book,), group in lines.group_by("book", maintain_order=True):
        for r in group.iter_rows(named=True):
            rows.append((book, r["instrument"], quantity(r["qty"]), quantity(r["entry_price"]), quantity(r["mark"]),
                         quantity(r["unrealized_pnl"]), money(r["unrealized_pnl_usd"]), quantity(r["realized_pnl"]),
                         quantity(r["funding"]), quantity(r["fees"]), r["settle_asset"]))
        usd = group.filter(pl.col("qty") != 0)["unrealized_pnl_usd"]
        total = usd.sum() if usd.null_count() == 0 else None
        rows.append((book, "book total", "", "", "", "", money(total), "", "", "", ""))
    return ["", f"Derivatives: per book and instrument (settle asset; unrealized also in {currency}):",
            render_table(("book", "instrument", *_DERIVATIVE_HEADER), rows, right=_DERIVATIVE_HEADER[:-1])]


def format_pnl(day: dt.date, currency: str, lines: pl.DataFrame, explain: pl.DataFrame,
               derivatives: pl.DataFrame | None = None) -> str:
    rows = []
    for (book,), group in lines.group_by("book", maintain_order=True):
        for r in group.iter_rows(named=True):
            rows.append((book, _marked(r["asset"], r["provisional"]), quantity(r["qty"]),
                         *(money(r[c]) for c in _PNL_ORDER), ""))
        rows.append((book, _marked("book total", _any_provisional(group)), "", *_total_cells(group)))
    rows.append(("firm", _marked("total", _any_provisional(lines)), "", *_total_cells(lines)))
    out = [f"PnL on {day.isoformat()} in {currency}, per book and asset:",
           render_table(("book", "asset", "qty", *_PNL_HEADER), rows, right=("qty", *_PNL_HEADER))]
    if _any_provisional(lines):
        out.append("  " + PROVISIONAL_NOTE)
    out += ["",
           "Explain per book: total PnL = value end - value start - external flows "
           "= realized + unr. change - fees + income + trade residual + unexplained:"]
    explained = [(r["book"], *(money(r[c]) for c in EXPLAIN_COLUMNS)) for r in explain.iter_rows(named=True)]
    explained.append(("firm total", *(money(v) for v in _totals(explain, EXPLAIN_COLUMNS).values())))
    out.append(render_table(("book", *_EXPLAIN_HEADER), explained, right=_EXPLAIN_HEADER))
    if derivatives is not None:
        out += format_derivatives(currency, derivatives)
    return "\n".join(out)
