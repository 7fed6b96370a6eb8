"""The places each venue keeps per asset, and the recon tolerance they imply.

A venue rounds what it reports: Kraken's ledgers and balances keep fiat to 4 places while
its trades export carries 8, so an account booked from trades can differ from its snapshot
by less than a unit in the 4th place without anything being wrong. Each venue module
states the places it keeps in ``PLACES`` (canonical asset -> places; ``"*"`` for any other
asset), from its documented balance and ledger texts. With ``[precision] tolerance =
"half_unit"`` in ``utl.toml`` the recon tolerance of (venue, asset) defaults to half a unit
in the last place kept (4 places: 0.00005); ``[tolerance]`` in ``utl.toml`` still wins for
its assets. Without that setting every default is 0 (eod.md: ``[tolerance]`` "default 0").

A venue is known by its folder name (``kraken/<account>``), matched to the venue module of
the same name; other folders have no table and keep the default of 0.
"""

from __future__ import annotations

import importlib
from decimal import Decimal

import polars as pl

from utl.decimals import DECIMAL
from utl.venues import VENUE_MODULES

ANY = "*"
TOLERANCES = pl.Schema({"venue": pl.String, "asset": pl.String, "tolerance": DECIMAL})


def venue_places() -> dict[str, dict[str, int]]:
    """venue -> (canonical asset or ``*``) -> places kept, for the venues that state them."""
    tables = {}
    for name in VENUE_MODULES:
        places = getattr(importlib.import_module(f"utl.venues.{name}"), "PLACES", None)
        if places:
            tables[name] = dict(places)
    return tables


def half_unit(places: int) -> Decimal:
    """Half a unit in the last of ``places`` decimal places: 4 -> 0.00005."""
    return Decimal(5).scaleb(-(places + 1))


def venue_tolerances(places: dict[str, dict[str, int]] | None = None) -> pl.DataFrame:
    """(venue, asset, tolerance) rows: half a unit in the last place kept; asset ``*`` for
    any asset the venue's table does not name."""
    places = venue_places() if places is None else places
    rows = [(venue, asset, half_unit(n)) for venue, table in sorted(places.items()) for asset, n in sorted(table.items())]
    return pl.DataFrame(rows, schema=TOLERANCES, orient="row")
