"""``utl stream`` and ``utl publish`` (stream.md, "Commands"): read, call, report."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click


def _err(line: str) -> None:
    click.echo(line, err=True)


def _stream_landing(option: Path | None) -> Path | None:
    """The landing folder a booker books for, as the other commands choose it: ``--landing``,
    else ``UTL_LANDING``, else (the embedded database) the last one ``utl eod`` ran; with
    ``UTL_DATABASE_URL`` the last one written into that database is found once it is open.
    None: a booker without a landing (its rows are landing ``''``, starting from zero)."""
    import os

    from utl.home import last_landing
    from utl.store import database_url

    chosen = option or (Path(os.environ["UTL_LANDING"]) if os.environ.get("UTL_LANDING", "").strip() else None)
    return chosen or (None if database_url() else last_landing())


def _require_folder(landing: Path | None) -> None:
    if landing is not None and not landing.is_dir():
        _err(f"utl stream: no landing folder at {landing}")
        sys.exit(2)


@click.command("stream")
@click.option("--landing", type=click.Path(path_type=Path), default=None,
              help="The landing folder to book for: its utl.toml (costing method, aliases, books), marks, opening "
                   "snapshots, and its own slice of the stream's tables [default: $UTL_LANDING, else the last one "
                   "`utl eod` ran; with UTL_DATABASE_URL, the last one written into that database].")
@click.option("--consumer", default="utl-stream", show_default=True,
              help="The consumer's name within the landing: its committed sequence and its lock (with --shard, one "
                   "per shard).")
@click.option("--batch", type=int, default=20000, show_default=True,
              help="Most messages booked in one transaction: a backlog goes in batches this large; once caught up, a "
                   "batch is what arrived while the last one was booked.")
@click.option("--shard", "shard_spec", default="1/1", show_default=True,
              help="I/N: book only the books in shard I of N (by a hash of the book's name), as the only writer of "
                   "them; run one booker per shard, side by side. N stays what a consumer first committed with.")
@click.option("--frames-only", is_flag=True, default=False,
              help="Book every batch through the frames (Polars), never the quick way (utl.stream.quick): the same "
                   "result; the quick way is the faster for a caught-up booker's small batches.")
def stream(landing: Path | None, consumer: str, batch: int, shard_spec: str, frames_only: bool) -> None:
    """Book fills from NATS JetStream UTL_FILLS into live positions, exactly once."""
    from utl.home import landing_home
    from utl.settings import Settings, load_settings
    from utl.store import database_url, migrate, open_database
    from utl.store.days import last_written_landing
    from utl.stream.booker import BookerError, BookerOptions, run
    from utl.stream.broker import BrokerUnavailable, broker
    from utl.stream.shard import Shard

    try:
        shard = Shard.parse(shard_spec)
    except ValueError as exc:
        _err(f"utl stream: {exc}")
        sys.exit(2)
    landing = _stream_landing(landing)
    _require_folder(landing)
    try:
        with broker() as url, open_database(landing) as database:
            _err(f"broker: {url}; database: {database.description}")
            if landing is None and database_url():
                with database.connect() as conn:
                    migrate(conn)
                    landing = last_written_landing(conn)
                if landing is not None:
                    _err(f"landing: {landing} (the last one written into this database; --landing picks another)")
                    _require_folder(landing)
            settings = load_settings(landing) if landing is not None else Settings()
            storage = landing_home(landing) / "storage" if landing is not None else None
            options = BookerOptions(nats_url=url, consumer=consumer, batch=batch, storage=storage, shard=shard,
                                    quick=not frames_only)

            def say(line: str) -> None:
                click.echo(line) if line == "ready" else _err(line)
                sys.stdout.flush()

            code = asyncio.run(run(database, settings, landing, options, say=say))
    except (BookerError, BrokerUnavailable, ValueError) as exc:
        _err(f"utl stream: {str(exc).splitlines()[0]}")
        sys.exit(1)
    sys.exit(code)


@click.command("publish")
@click.option("--landing", type=click.Path(path_type=Path), required=True)
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--rate", type=float, default=None, help="Fills per second [default: as fast as it can].")
def publish(landing: Path, day, rate: float | None) -> None:
    """Publish a date's fills from the landing folder's exports onto UTL_FILLS, in time order."""
    from utl.stream.broker import BrokerUnavailable, broker
    from utl.stream.publish import ccxt_trades, day_fills
    from utl.stream.publish import publish as send

    if not landing.is_dir():
        _err(f"utl publish: no landing folder at {landing}")
        sys.exit(2)
    fills, ledger = day_fills(landing, day.date())
    if ledger:
        _err(f"not published: {', '.join(ledger)} (their legs come from a ledger export, not from fills)")
    try:
        with broker() as url:
            sent = asyncio.run(send(url, ccxt_trades(fills), rate, say=_err))
    except BrokerUnavailable as exc:
        _err(f"utl publish: {exc}")
        sys.exit(1)
    click.echo(f"published {sent} fills of {day.date().isoformat()}")
