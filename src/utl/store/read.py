"""Query results as Polars frames, numerics exact.

The rows come through ``COPY (query) TO STDOUT`` as CSV text, not as Python objects:
PostgreSQL prints a ``numeric`` with all its digits (``trim_scale`` drops trailing zeros,
PostgreSQL 13+), and that text is parsed straight to ``Decimal(38, 18)``, never through a
float or a per-row ``decimal.Decimal``. A value that does not fit (over 18 digits after
the point, 20 before it, or NaN/Infinity) raises rather than rounds. Dates and timestamps are sent as integers (days, microseconds since 1970), so
the session's DateStyle and TimeZone cannot change what is read.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from utl.decimals import PRECISION, SCALE

Query = str | sql.Composable
Params = Sequence[Any] | Mapping[str, Any] | None

_INTEGERS = {"int2": pl.Int16, "int4": pl.Int32, "int8": pl.Int64}
_FLOATS = {"float4", "float8"}


def read_frame(conn: psycopg.Connection, query: Query, params: Params = None) -> pl.DataFrame:
    """Run a SELECT and return its rows; ``numeric`` columns become ``Decimal(38, 18)``.

    ``query`` runs as a subquery, so it is one SELECT (or VALUES/TABLE/WITH) statement.
    Needs PostgreSQL 14+ (``trim_scale``, exact ``extract(epoch ...)``).
    """
    if isinstance(query, str):
        query = sql.SQL(query.strip().rstrip(";"))  # type: ignore[arg-type]
    columns = _describe(conn, query, params)
    exprs = sql.SQL(", ").join(_select_expr(name, type_name) for name, type_name in columns)
    statement = sql.SQL("COPY (SELECT {} FROM ({}) AS q) TO STDOUT (FORMAT csv)").format(exprs, query)
    data = bytearray()
    with conn.cursor() as cursor, cursor.copy(statement, params) as copy:
        # One message per row; appending is cheaper than joining a million memoryviews.
        while chunk := copy.read():
            data += chunk
    text_schema = {name: pl.String for name, _ in columns}
    raw = pl.read_csv(io.BytesIO(data), has_header=False, schema=text_schema) if data else pl.DataFrame(schema=text_schema)
    _refuse_misfits(raw, [name for name, type_name in columns if type_name == "numeric"])
    return raw.select(_convert(name, type_name) for name, type_name in columns)


def _describe(conn: psycopg.Connection, query: sql.Composable, params: Params) -> list[tuple[str, str]]:
    """The result's (column name, type name) pairs, from planning the query without rows."""
    with conn.cursor() as cursor:
        cursor.execute(sql.SQL("SELECT * FROM ({}) AS q LIMIT 0").format(query), params)
        assert cursor.description is not None
        columns = []
        for column in cursor.description:
            info = conn.adapters.types.get(column.type_code)
            columns.append((column.name, info.name if info is not None else "unknown"))
    names = [name for name, _ in columns]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"the query returns column name(s) {', '.join(duplicated)} more than once")
    floats = [name for name, type_name in columns if type_name in _FLOATS]
    if floats:
        raise TypeError(f"column(s) {', '.join(floats)} are floating point; cast them to numeric in the query")
    return columns


def _select_expr(name: str, type_name: str) -> sql.Composable:
    column = sql.Identifier("q", name)
    if type_name == "date":
        return sql.SQL("{} - DATE '1970-01-01'").format(column)
    if type_name in ("timestamptz", "timestamp"):
        return sql.SQL("(extract(epoch FROM {}) * 1000000)::bigint").format(column)
    if type_name == "numeric":
        return sql.SQL("trim_scale({})").format(column)
    return column


def _convert(name: str, type_name: str) -> pl.Expr:
    text = pl.col(name)
    if type_name == "numeric":
        return _numeric_text(text)[0].alias(name)
    if type_name in _INTEGERS:
        return text.cast(_INTEGERS[type_name])
    if type_name == "bool":
        return (text == "t").alias(name)  # null stays null
    if type_name == "date":
        return text.cast(pl.Int32).cast(pl.Date)
    if type_name == "timestamptz":
        return pl.from_epoch(text.cast(pl.Int64), time_unit="us").dt.replace_time_zone("UTC").alias(name)
    if type_name == "timestamp":
        return pl.from_epoch(text.cast(pl.Int64), time_unit="us").alias(name)
    return text


def _numeric_text(text: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """``trim_scale``'d numeric text as ``(Decimal(38, 18) value, is_bad)``.

    PostgreSQL writes ``-?digits[.digits]`` or NaN/Infinity, so counting characters around
    the point is enough (no regex: this runs over every value read).
    """
    length = text.str.len_bytes().cast(pl.Int64)
    point = text.str.find(".", literal=True).cast(pl.Int64)
    integer_digits = point.fill_null(length) - text.str.starts_with("-").cast(pl.Int64)
    fraction_digits = (length - point - 1).fill_null(0)
    finite = ~text.is_in(["NaN", "Infinity", "-Infinity"])
    ok = finite & (fraction_digits <= SCALE) & (integer_digits <= PRECISION - SCALE)
    return pl.when(ok).then(text).str.to_decimal(scale=SCALE), text.is_not_null() & ~ok


def _refuse_misfits(raw: pl.DataFrame, numerics: list[str]) -> None:
    """Raise, naming column and value, where a numeric does not fit Decimal(38, 18) exactly."""
    for name in numerics:
        misfits = raw.filter(_numeric_text(pl.col(name))[1]).get_column(name)
        if misfits.len():
            raise ValueError(
                f"column {name}: {misfits.len()} value(s) do not fit Decimal(38, 18) exactly, "
                f"first {misfits[0]!r}; round them in the query if that is intended"
            )
