"""Asset codes and symbols: one mapping table from what venues write to canonical codes.

Venues spell the same asset differently (Kraken ``XXBT``/``XBT`` for BTC, ``ZUSD`` for USD)
and glue pairs without a separator (``BTCUSDT``, ``XXBTZEUR``). Every code is mapped through
:data:`DEFAULT_ALIASES`, extended by the ``[aliases]`` table of ``utl.toml``, before anything
is booked. Pairs are split on ``/``, ``-`` or ``_`` where written, else by the known quote
codes matched longest first at the end, with an override table for pairs that end in a
quote by accident.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

DEFAULT_ALIASES: dict[str, str] = {
    "XXBT": "BTC",
    "XBT": "BTC",
    "XETH": "ETH",
    "XXDG": "DOGE",
    "XDG": "DOGE",
    "XXRP": "XRP",
    "XXLM": "XLM",
    "XLTC": "LTC",
    "XXMR": "XMR",
    "XETC": "ETC",
    "XZEC": "ZEC",
    "XREP": "REP",
    "XMLN": "MLN",
    "ZUSD": "USD",
    "ZEUR": "EUR",
    "ZGBP": "GBP",
    "ZCAD": "CAD",
    "ZJPY": "JPY",
    "ZAUD": "AUD",
}

# Longest first: "USDT" must win over "USD", "ZEUR" over "EUR".
KNOWN_QUOTES: tuple[str, ...] = tuple(
    sorted(
        {
            "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI", "PYUSD",
            "BTC", "ETH", "BNB", "EUR", "USD", "GBP", "JPY", "TRY", "AUD", "CAD", "CHF",
            "BRL", "ZUSD", "ZEUR", "ZGBP", "ZCAD", "ZJPY", "ZAUD", "XXBT", "XETH", "XBT", "DOT", "SOL",
        },
        key=lambda q: (-len(q), q),
    )
)

# Pairs whose end looks like a quote but is not (or is ambiguous): symbol -> (base, quote).
PAIR_OVERRIDES: dict[str, tuple[str, str]] = {
    "DOTUSD": ("DOT", "USD"),
    "DOTUSDT": ("DOT", "USDT"),
    "DOTEUR": ("DOT", "EUR"),
}

# Kraken marks earn/staking balances of the same asset with a suffix.
_SUFFIX = r"\.(S|M|F|B|P|HOLD)$"


def canonical_asset(code: pl.Expr, aliases: dict[str, str] | None = None) -> pl.Expr:
    """Map a venue's asset code to the canonical code (upper case, aliases applied)."""
    table = {**DEFAULT_ALIASES, **(aliases or {})}
    cleaned = code.str.strip_chars().str.to_uppercase()
    stripped = cleaned.str.replace(_SUFFIX, "")
    # Locked staking codes such as DOT28.S: the digits belong to the lock, not the asset.
    stripped = pl.when(cleaned.str.contains(r"^[A-Z]+\d+\.S$")).then(
        cleaned.str.extract(r"^([A-Z]+)\d+\.S$", 1)
    ).otherwise(stripped)
    return stripped.replace(table)


def split_symbol(symbol: pl.Expr, overrides: Mapping[str, tuple[str, str]] | None = None) -> tuple[pl.Expr, pl.Expr]:
    """Split a pair into (base, quote) venue codes; null where it cannot be split.

    ``BTC/USDT``, ``BTC-USD``, ``BTC_USDT``, ``BTC/USDT:USDT`` (ccxt), ``BTC-USDT-SWAP`` split
    at the separator; ``BTCUSDT`` and ``XXBTZEUR`` by the known quote codes at the end.
    """
    table = {**PAIR_OVERRIDES, **{k.upper(): v for k, v in (overrides or {}).items()}}
    s = symbol.str.strip_chars().str.to_uppercase()
    separated = s.str.contains(r"[/\-_]")
    head = s.str.replace(r":.*$", "")
    sep_base = head.str.extract(r"^([^/\-_]+)[/\-_]", 1)
    sep_quote = head.str.extract(r"^[^/\-_]+[/\-_]([^/\-_]+)", 1)
    quote_alt = "|".join(KNOWN_QUOTES)
    glued_quote = s.str.extract(rf"^.+?({quote_alt})$", 1)
    glued_base = s.str.extract(rf"^(.+?)(?:{quote_alt})$", 1)
    over_base = s.replace_strict({k: v[0] for k, v in table.items()}, default=None, return_dtype=pl.String) if table else pl.lit(None, pl.String)
    over_quote = s.replace_strict({k: v[1] for k, v in table.items()}, default=None, return_dtype=pl.String) if table else pl.lit(None, pl.String)
    base = pl.coalesce(over_base, pl.when(separated).then(sep_base).otherwise(glued_base))
    quote = pl.coalesce(over_quote, pl.when(separated).then(sep_quote).otherwise(glued_quote))
    return base, quote
