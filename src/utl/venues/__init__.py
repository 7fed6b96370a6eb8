"""Venue export readers: one module per venue, each exposing ``FORMATS``."""

from __future__ import annotations

import importlib

from utl.venues.base import Format, Parsed, Source

VENUE_MODULES = ("binance", "bybit", "coinbase", "kraken", "okx", "deribit", "ccxt", "generic")


def all_formats() -> list[Format]:
    formats: list[Format] = []
    for name in VENUE_MODULES:
        module = importlib.import_module(f"utl.venues.{name}")
        formats.extend(module.FORMATS)
    return formats


__all__ = ["Format", "Parsed", "Source", "all_formats", "VENUE_MODULES"]
