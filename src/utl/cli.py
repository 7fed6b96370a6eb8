"""The ``utl`` command: thin wrappers that read, call the library, write and report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from utl.errors import BadInput


@click.group()
def main() -> None:
    """UTL, the Universal Transaction Ledger."""


@main.command()
@click.option("--method", type=click.Choice(["fifo", "lifo", "hifo", "wac"]), default="fifo", show_default=True)
@click.option("--trades", "trades_path", type=click.Path(path_type=Path), required=True,
              help="Parquet or CSV with book, asset, ts, trade_id, qty, price.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for the three Parquet outputs.")
def costing(method: str, trades_path: Path, out_dir: Path) -> None:
    """Unit cost and realized PnL of a trades file (../shared/contracts/costing.md)."""
    from utl.costing import compute_costs
    from utl.costing_io import read_trades, write_result

    try:
        trades = read_trades(trades_path)
        result = compute_costs(trades, method, source=str(trades_path))
    except (BadInput, OSError, ValueError) as exc:
        click.echo(f"utl costing: refused {trades_path}:\n{exc}", err=True)
        sys.exit(2)
    written = write_result(result, out_dir)
    click.echo(
        f"{method}: {result.realized.height} trades, {result.positions.height} positions, "
        f"{result.open_lots.height} open lots"
    )
    for path in written:
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    main()
