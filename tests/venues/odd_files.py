"""Seeded odd files of the Bybit, Coinbase and Deribit CSV formats, and their readers' output
frozen before the readers were made faster (issue 16, readers-b).

Each file is a bench layout (``bench/venue_readers.py``'s generators, 1,500 rows) with a few
percent of its data cells replaced by what exports do write: blanks, junk, exponents, huge
numbers, thousands commas, quoted commas, padding, ``--``/``-`` placeholders; and a few rows
cut short or given a cell too many. The frozen output (booked rows, quarantine rows, derivative
fills and cash) is what the reader gave for the file before the change, so a faster reader is
held to the plain one row for row, refusal for refusal.

    uv run python tests/venues/odd_files.py   # rewrites the frozen output (only before a change!)
"""

from __future__ import annotations

import csv
import io
import random
import sys
from pathlib import Path

import polars as pl

BENCH = Path(__file__).resolve().parents[2] / "bench"
FROZEN = Path(__file__).parent / "fixtures" / "odd_files"
FORMATS = (
    "bybit.uta_asset_changes", "bybit.derivatives_legacy", "bybit.spot_trades", "coinbase.transaction_report",
    "coinbase.pro_fills", "coinbase.pro_account", "deribit.transaction_log",
)
ROWS = 1_500
SEEDS = (1, 2)
# What exports write in number, time and text cells besides the expected.
ODD_CELLS = (
    "", " ", "--", "-", "abc", "1e5", "1E-05", "-0", "0", " 12.5 ", "12.5 ", "+3.25", ".5", "5.",
    "12345678901234567890.5", "-99999999999999999999.123456789012345678", "0.0000000000000000001",
    "1,234.5", "$1,234.50", "-$5,250.00", "100 SEK", "kr100", "1.2.3", "NaN", "inf", "\u00a012",
    "2024-03-05 09:15:02", "2024-13-45 25:61:61", "BTC-PERPETUAL", "buy", "sell", "Trade",
)


def odd_file(folder: Path, name: str, seed: int) -> Path:
    """A bench file of format ``name`` with seeded odd cells and rows, written in ``folder``."""
    sys.path.insert(0, str(BENCH))
    import venue_readers  # noqa: PLC0415 (the bench's generators, only where a test needs them)

    path, rows = venue_readers.GENERATORS[name](folder, ROWS)
    lines = path.read_bytes().decode("utf-8").split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    head, data = lines[: len(lines) - rows], lines[len(lines) - rows :]
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for line in data:
        cells = next(csv.reader([line]))
        for i in range(len(cells)):
            if rng.random() < 0.04:
                cells[i] = rng.choice(ODD_CELLS)
        roll = rng.random()
        if roll < 0.005:
            cells = cells[: rng.randrange(1, len(cells))]
        elif roll < 0.01:
            cells = [*cells, "extra"]
        writer.writerow(cells)
    body = "\n".join(head) + "\n" + out.getvalue()
    path.write_bytes(body.encode("utf-8"))
    return path


def read(path: Path, name: str) -> dict[str, pl.DataFrame]:
    """The reader's output frames by name (those it gave)."""
    from utl.venues import all_formats
    from utl.venues.base import Source

    (fmt,) = [f for f in all_formats() if f.name == name]
    parsed = fmt.read(Source(path=path, rel=path.name, venue="test", account="main"))
    frames = {"frame": parsed.frame, "quarantine": parsed.quarantine,
              "derivative_fills": parsed.derivative_fills, "derivative_cash": parsed.derivative_cash}
    return {k: v for k, v in frames.items() if v is not None}


def input_digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def frozen_inputs() -> dict[str, str]:
    """The digest of each odd file the output was frozen from, by ``<format>-<seed>`` (JSON in a
    .txt file: fixtures named .json are taken for venue exports by the detection tests)."""
    import json

    return json.loads((FROZEN / "input_digests.txt").read_text())


def frozen_path(name: str, seed: int, frame: str) -> Path:
    return FROZEN / f"{name.replace('.', '_')}-{seed}-{frame}.parquet"


def freeze() -> None:
    import tempfile

    import json

    FROZEN.mkdir(parents=True, exist_ok=True)
    digests = {}
    for name in FORMATS:
        for seed in SEEDS:
            with tempfile.TemporaryDirectory() as folder:
                path = odd_file(Path(folder), name, seed)
                digests[f"{name}-{seed}"] = input_digest(path)
                for frame_name, frame in read(path, name).items():
                    frame.write_parquet(frozen_path(name, seed, frame_name))
                    print(name, seed, frame_name, frame.height)
    (FROZEN / "input_digests.txt").write_text(json.dumps(digests, indent=1) + "\n")


if __name__ == "__main__":
    freeze()
