"""Analytics: DuckDB SQL over the run's Parquet outputs, for questions the reports don't ask.

The run writes each table a partition per day::

    <storage>/<table>/business_date=YYYY-MM-DD/part.parquet

:func:`connect` opens an in-memory DuckDB with one view per table present; the views read
the files at query time, so a rerun's rewritten partition shows up in the next query.

Exactness: DuckDB reads a Parquet ``DECIMAL(38,18)`` column as ``DECIMAL(38,18)``, ``SUM``
of it stays ``DECIMAL(38,18)`` (and raises "Overflow in HUGEINT addition" rather than
wrapping), and ``.pl()`` hands it to Polars as ``Decimal(38, 18)``: exact end to end. But
``AVG`` and ``/`` give ``DOUBLE`` and ``*`` of two such columns gives ``DECIMAL(38,36)``,
so the queries here only select and add; every result is checked against its schema and
a float column is refused, never cast back into a decimal.

Values are bound (``con.sql(query, params=[...])``, DuckDB's Python API for a bound query
that returns a relation), never formatted into SQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl

from utl.decimals import DECIMAL
from utl.schemas import EXPOSURE_BY_ASSET, PNL_BY_BOOK

TABLES = ("positions", "lots", "pnl", "pnl_explain", "exposure_asset", "exposure_venue", "exposure_book", "exceptions",
          "derivative_positions")

TOP_EXPOSURES = EXPOSURE_BY_ASSET

# The path is bound too; DuckDB writes it into the view as a quoted literal.
_READ_TABLE = """
SELECT * FROM read_parquet(?, hive_partitioning = true, hive_types = {'business_date': 'DATE'}, union_by_name = true)
"""

_TOP_EXPOSURES = """
SELECT business_date, asset, net_qty, net_value, gross_value, long_value, short_value,
       share_of_gross, positions, unpriced
FROM exposure_asset
WHERE business_date = ?
ORDER BY gross_value DESC NULLS LAST, asset
LIMIT ?
"""

# SUM skips nulls; a book with an unknown amount (e.g. an unpriced asset's unrealized PnL)
# must show as unknown, not as the sum of the rest.
_PNL_BY_BOOK = """
SELECT business_date, book,
       CASE WHEN count(realized_pnl) = count(*) THEN sum(realized_pnl) END AS realized_pnl,
       CASE WHEN count(unrealized_pnl) = count(*) THEN sum(unrealized_pnl) END AS unrealized_pnl,
       CASE WHEN count(fees) = count(*) THEN sum(fees) END AS fees,
       CASE WHEN count(total_pnl) = count(*) THEN sum(total_pnl) END AS total_pnl
FROM pnl
WHERE business_date = ?
GROUP BY business_date, book
ORDER BY book
"""


def connect(storage: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with a view per table of ``storage`` that has at least one
    partition file; ``business_date`` (from the folder name) is a DATE."""
    con = duckdb.connect()
    for table in TABLES:
        folder = Path(storage) / table
        if any(folder.glob("*/*.parquet")):
            con.sql(_READ_TABLE, params=[str(folder / "*" / "*.parquet")]).create_view(table)
    return con


def top_exposures(con: duckdb.DuckDBPyConnection, business_date: dt.date, n: int = 10) -> pl.DataFrame:
    """The ``n`` assets with the largest gross value on ``business_date`` (equal gross by
    asset name; unpriced assets without any gross last)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, not {n!r}")
    return _exact(con.sql(_TOP_EXPOSURES, params=[business_date, n]).pl(), TOP_EXPOSURES)


def pnl_by_book(con: duckdb.DuckDBPyConnection, business_date: dt.date) -> pl.DataFrame:
    """Realized, unrealized, fees and total PnL per book on ``business_date``, by book."""
    return _exact(con.sql(_PNL_BY_BOOK, params=[business_date]).pl(), PNL_BY_BOOK)


def _exact(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` as ``schema``: any decimal widens exactly to Decimal(38, 18); anything else
    that differs (a DOUBLE above all) is refused, so no float is ever dressed up as exact."""
    wrong = [
        f"{name}: {frame.schema.get(name)}, not {dtype}"
        for name, dtype in schema.items()
        if frame.schema.get(name) != dtype and not (dtype == DECIMAL and isinstance(frame.schema.get(name), pl.Decimal))
    ]
    if wrong or list(frame.columns) != schema.names():
        raise TypeError("analytics: unexpected result columns: " + ("; ".join(wrong) or ", ".join(frame.columns)))
    return frame.cast(schema)
