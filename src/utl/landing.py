"""The landing folder: what files are where (eod.md, "Landing folder").

```
LANDING/utl.toml
LANDING/marks/YYYY-MM-DD.csv
LANDING/<venue>/<account>/trades/<any name>
LANDING/<venue>/<account>/balances/YYYY-MM-DD.<json|csv>
LANDING/<venue>/<account>/balances/YYYY-MM-DD.<wallet>.<json|csv>   one wallet of the account
LANDING/transfers/<any name>.csv          transfers between own accounts (ledger.md)
LANDING/instruments/YYYY-MM-DD.<json|csv>                 derivative specs (derivatives.md)
LANDING/<venue>/<account>/positions/YYYY-MM-DD.json       open derivative positions at end of D
```
A wallet's snapshot is the sub-account ``<account>/<wallet>`` (:func:`wallet_account`: the
Spot wallet is the account itself), as a ledger's rows of that wallet are (Binance's
``Account`` column).
A file in none of these places is reported, not guessed at.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from utl.venues.base import Source, wallet_account

_DATE_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(json|csv)$", re.IGNORECASE)
# A snapshot of one wallet of the account: YYYY-MM-DD.<wallet>.<json|csv> (usd-m-futures, funding).
_WALLET_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.([^.]+)\.(json|csv)$", re.IGNORECASE)


@dataclass(frozen=True)
class LandingFiles:
    trades: list[Source]
    balances: list[tuple[dt.date, Source]]
    marks: list[tuple[dt.date, Path]]
    misplaced: list[tuple[str, str]]  # (relative path, why it is not read)
    transfers: list[Path] = field(default_factory=list)  # transfers/*.csv
    positions: list[tuple[dt.date, Source]] = field(default_factory=list)  # <venue>/<account>/positions/D.json
    instruments: list[tuple[dt.date, Path]] = field(default_factory=list)  # instruments/D.<json|csv>


def _date_of(name: str) -> dt.date | None:
    match = _DATE_FILE.match(name)
    if not match:
        return None
    try:
        return dt.date.fromisoformat(match.group(1))
    except ValueError:
        return None


def scan_landing(
    landing: Path, pairs: Mapping[str, tuple[str, str]] | None = None, timezones: Mapping[str, str] | None = None
) -> LandingFiles:
    """List the landing folder's files by role; sorted, so every run reads in one order.
    ``pairs`` (utl.toml [pairs]) travels with each source to the reader that splits symbols;
    ``timezones`` (utl.toml [timezones], ``"venue/account"``) to readers of exports whose
    own statement of their zone may be missing (OKX without its preamble)."""
    pairs = dict(pairs or {})
    timezones = dict(timezones or {})
    if not landing.is_dir():
        raise FileNotFoundError(f"no landing folder at {landing}")
    trades, balances, marks, misplaced, transfers, positions, instruments = [], [], [], [], [], [], []
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        rel = path.relative_to(landing).as_posix()
        parts = rel.split("/")
        if any(part.startswith(".") for part in parts) or rel == "utl.toml":
            continue
        if parts[0] == "marks" and len(parts) == 2:
            day = _date_of(parts[1])
            if day and parts[1].lower().endswith(".csv"):
                marks.append((day, path))
            else:
                misplaced.append((rel, "a marks file is named YYYY-MM-DD.csv"))
        elif parts[0] == "transfers" and len(parts) == 2:
            if parts[1].lower().endswith(".csv"):
                transfers.append(path)
            else:
                misplaced.append((rel, "a transfers file is a CSV: transfers/<name>.csv"))
        elif parts[0] == "instruments" and len(parts) == 2:
            day = _date_of(parts[1])
            if day:
                instruments.append((day, path))
            else:
                misplaced.append((rel, "an instruments file is named YYYY-MM-DD.json or YYYY-MM-DD.csv"))
        elif len(parts) == 4 and parts[2] == "positions":
            day = _date_of(parts[3])
            if day and parts[3].lower().endswith(".json"):
                positions.append((day, Source(path=path, rel=rel, venue=parts[0], account=parts[1], pairs=pairs)))
            else:
                misplaced.append((rel, "a positions file is named YYYY-MM-DD.json"))
        elif len(parts) == 4 and parts[2] == "trades":
            zone = timezones.get(f"{parts[0]}/{parts[1]}")
            trades.append(Source(path=path, rel=rel, venue=parts[0], account=parts[1], pairs=pairs, timezone=zone))
        elif len(parts) == 4 and parts[2] == "balances":
            day, account = _date_of(parts[3]), parts[1]
            wallet = _WALLET_FILE.match(parts[3])
            if day is None and wallet is not None:
                day, account = _date_of(f"{wallet.group(1)}.{wallet.group(3)}"), wallet_account(parts[1], wallet.group(2))
            if day:
                balances.append((day, Source(path=path, rel=rel, venue=parts[0], account=account, pairs=pairs)))
            else:
                misplaced.append((rel, "a balance snapshot is named YYYY-MM-DD.json or YYYY-MM-DD.csv "
                                       "(one wallet's: YYYY-MM-DD.<wallet>.csv)"))
        else:
            misplaced.append((rel, "not in marks/, <venue>/<account>/trades/, <venue>/<account>/balances/, "
                                   "<venue>/<account>/positions/ or instruments/ (nor a transfers/*.csv)"))
    return LandingFiles(trades, balances, marks, misplaced, transfers, positions, instruments)
