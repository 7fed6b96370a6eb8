"""The ``utl`` command: thin wrappers that read, call the library, write and report."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from utl.errors import BadInput


class _Commands(click.Group):
    """Every command's last line of defence: a failure it did not handle itself is one line
    on stderr and an exit code (README, "Exit codes"), never a traceback."""

    _running = ""

    def resolve_command(self, ctx: click.Context, args: list[str]):
        found = super().resolve_command(ctx, args)
        self._running = found[0] or ""
        return found

    @property
    def name_of(self) -> str:
        return f"utl {self._running}".strip()

    def invoke(self, ctx: click.Context) -> object:
        import psycopg

        from utl.settings import SettingsError
        from utl.store import DatabaseUnavailable, EmbeddedServerError, MigrationError

        try:
            return super().invoke(ctx)
        except (DatabaseUnavailable, EmbeddedServerError, MigrationError) as exc:
            _fail(self.name_of, exc, 1)
        except psycopg.Error as exc:  # the connection went away mid-command
            _fail(self.name_of, f"database error: {exc}", 1)
        except SettingsError as exc:
            _fail(self.name_of, exc, 2)
        except KeyboardInterrupt:
            _fail(self.name_of, "interrupted", 130)
        except OSError as exc:  # a folder that cannot be written, a file that cannot be read
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(self.name_of, f"{where}{exc.strerror or exc}", 1)


def _fail(name: str, exc: object, code: int) -> None:
    text = str(exc).strip()
    click.echo(f"{name}: {text.splitlines()[0] if text else type(exc).__name__}", err=True)
    sys.exit(code)


@click.group(cls=_Commands)
def main() -> None:
    """UTL, the Universal Transaction Ledger."""


@main.command()
@click.option("--method", type=click.Choice(["fifo", "lifo", "hifo", "wac"]), default="fifo", show_default=True)
@click.option("--trades", "trades_path", type=click.Path(path_type=Path), required=True,
              help="Parquet or CSV with book, asset, ts, trade_id, qty, price.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Folder for the three Parquet outputs.")
def costing(method: str, trades_path: Path, out_dir: Path) -> None:
    """Unit cost and realized PnL of a trades file (../shared/contracts/costing.md)."""
    import polars as pl

    from utl.costing import compute_costs
    from utl.costing_io import check_out_dir, read_trades, write_result

    try:
        check_out_dir(out_dir)
        trades = read_trades(trades_path)
        result = compute_costs(trades, method, source=str(trades_path))
    except (BadInput, OSError, ValueError, pl.exceptions.PolarsError) as exc:
        errors = getattr(exc, "errors", None)
        if errors is not None and len(errors) > 1:  # every problem, by row (costing.md)
            click.echo(f"utl costing: refused {trades_path}: {len(errors)} problems:\n{exc}", err=True)
        else:
            click.echo(f"utl costing: refused {trades_path}: {_first_line(exc)}", err=True)
        sys.exit(2)
    try:
        written = write_result(result, out_dir)
    except OSError as exc:
        click.echo(f"utl costing: cannot write to {out_dir}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    click.echo(
        f"{method}: {result.realized.height} trades, {result.positions.height} positions, "
        f"{result.open_lots.height} open lots"
    )
    for path in written:
        click.echo(f"wrote {path}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _require_writable(folder: Path, command: str) -> None:
    """Refuse, in one line and before any work, a folder the command could not write to."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".utl-probe-"):
            pass
    except OSError as exc:
        click.echo(f"utl {command}: cannot write to {folder}: {exc.strerror or exc}", err=True)
        sys.exit(1)


def _say(line: str) -> None:
    click.echo(line, err=True)


def _landing_for(landing: Path | None, command: str) -> Path | None:
    """The landing folder a command without a required ``--landing`` works on: the option,
    else ``UTL_LANDING``, else the last one ``utl eod`` ran. None is fine with
    ``UTL_DATABASE_URL`` (one shared database); otherwise there is no database to pick."""
    import os

    from utl.home import last_landing
    from utl.store import database_url

    chosen = landing or (Path(os.environ["UTL_LANDING"]) if os.environ.get("UTL_LANDING", "").strip() else None)
    chosen = chosen or (None if database_url() else last_landing())
    if chosen is None and database_url() is None:
        click.echo(f"utl {command}: no landing folder yet: run `utl eod --landing LANDING --date D` first, "
                   f"or pass --landing", err=True)
        sys.exit(1)
    return chosen


_LANDING_HELP = ("The landing folder to answer for [default: $UTL_LANDING, else the last one `utl eod` ran; with "
                 "UTL_DATABASE_URL, the last one written into that database].")


def _answering_for(chosen: Path | None, conn) -> Path | None:
    """The landing a command answers for: the one chosen, else (a shared database,
    UTL_DATABASE_URL) the one last written into it. Said on stderr: one database may hold
    several landing folders' results, each apart (008_landing_keys)."""
    from utl.store.days import last_written_landing

    if chosen is None:
        chosen = last_written_landing(conn)
        if chosen is not None:
            _say(f"landing: {chosen} (the last one written into this database; --landing picks another)")
    return chosen


@main.command()
@click.option("--landing", type=click.Path(path_type=Path), required=True, help="The landing folder (eod.md).")
@click.option("--date", "through", type=click.DateTime(["%Y-%m-%d"]), required=True, help="Run every business date through this one.")
@click.option("--storage", type=click.Path(path_type=Path), default=None,
              help="Folder for the Parquet outputs [default: $UTL_HOME/landings/<landing id>/storage].")
def eod(landing: Path, through, storage: Path | None) -> None:
    """Book, cost, value and reconcile every business date through --date into PostgreSQL."""
    from pipelines.eod import run_eod
    from utl.home import landing_home, record_last_landing
    from utl.run import RunError
    from utl.settings import SettingsError
    from utl.store import DatabaseUnavailable, EmbeddedServerError, open_database

    from utl.report.finish import alert_failed_eod, finish_run

    storage = storage or landing_home(landing) / "storage"
    _require_writable(storage, "eod")
    try:
        with open_database(landing) as database:
            _say(f"database: {database.description}")
            summary = run_eod(landing, through.date(), storage, database, progress=_say)
            record_last_landing(landing)
            click.echo(
                f"run {summary.run_id}: {len(summary.dates)} business dates through {summary.dates[-1].isoformat()} "
                f"({len(summary.ran)} run now), {summary.breaks} breaks open, {summary.quarantined} quarantined rows; "
                f"Parquet under {summary.storage}"
            )
            # report.md: the report of the last date, its outcome on the run, the summary.
            report = finish_run(database, landing, summary.run_id, summary.dates[-1], say=_say, show=click.echo)
    except (RunError, SettingsError, FileNotFoundError, DatabaseUnavailable, EmbeddedServerError) as exc:
        click.echo(f"utl eod: could not complete: {_first_line(exc)}", err=True)
        alert_failed_eod(landing, through.date(), str(exc), say=_say)
        sys.exit(1)
    if report.status == "failed":
        sys.exit(3)  # completed, report not sent (report.md)


@main.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.option("--venue", default=None, help="Only this venue's breaks.")
@click.option("--account", default=None, help="Only this account's breaks.")
@click.option("--asset", default=None, help="Only this (canonical) asset's breaks.")
@click.option("--landing", type=click.Path(path_type=Path), default=None, help=_LANDING_HELP)
def breaks(day, fmt: str, venue: str | None, account: str | None, asset: str | None, landing: Path | None) -> None:
    """A date's breaks: new, ageing, cleared, and those carried for accounts not reconciled."""
    from utl.ops.breaks import Filters, answer_breaks, filtered_csv, format_breaks
    from utl.store import migrate, open_database

    filters = Filters(venue, account, asset)
    chosen = _landing_for(landing, "breaks")
    with open_database(chosen) as database, database.connect() as conn:
        _say(f"database: {database.description}")
        migrate(conn)
        chosen = _answering_for(chosen, conn)
        if fmt == "csv":
            # The contract's text, the one the report attaches (report.md); filters keep rows.
            sys.stdout.write(filtered_csv(conn, day.date(), filters, chosen))
            return
        click.echo(format_breaks(answer_breaks(conn, day.date(), chosen, filters), chosen))


@main.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Only the rows of this date, and those whose date is unknown.")
@click.option("--file", "file", default=None, help="Only this file (or folder), relative to the landing folder.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.option("--landing", type=click.Path(path_type=Path), default=None, help=_LANDING_HELP)
def quarantine(day, file: str | None, fmt: str, landing: Path | None) -> None:
    """The refused input rows: file, row, column, reason and the raw row."""
    from utl.ops.quarantine import format_quarantine, read_quarantine, with_raw_rows
    from utl.store import migrate, open_database

    chosen = _landing_for(landing, "quarantine")
    with open_database(chosen) as database, database.connect() as conn:
        _say(f"database: {database.description}")
        migrate(conn)
        chosen = _answering_for(chosen, conn)
        frame = with_raw_rows(read_quarantine(conn, chosen, day.date() if day else None, file), chosen)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv(line_terminator="\n").rstrip("\n") + "\n")
    else:
        click.echo(format_quarantine(frame, day.date() if day else None, file))


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.option("--limit", type=int, default=None, help="Only the latest N runs.")
@click.option("--landing", type=click.Path(path_type=Path), default=None, help=_LANDING_HELP)
def runs(fmt: str, limit: int | None, landing: Path | None) -> None:
    """Every recorded run, newest first: dates, start and finish, status, counts."""
    from utl.home import landing_key
    from utl.ops.runs import format_runs, read_runs
    from utl.store import migrate, open_database

    chosen = _landing_for(landing, "runs")
    with open_database(chosen) as database, database.connect() as conn:
        _say(f"database: {database.description}")
        migrate(conn)
        chosen = _answering_for(chosen, conn)
        frame = read_runs(conn, landing_key(chosen) if chosen is not None else None, limit)
    if fmt == "csv":
        sys.stdout.write(frame.write_csv().rstrip("\n") + "\n")
    else:
        click.echo(format_runs(frame))


@main.command()
@click.option("--landing", type=click.Path(path_type=Path), required=True)
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table", show_default=True)
@click.option("--explain", is_flag=True, help="With --format csv: the explain per book instead of the PnL per book and asset.")
def pnl(landing: Path, day, fmt: str, explain: bool) -> None:
    """Print a date's PnL per book and asset, and its explain (no database needed)."""
    from utl.eod import RunError, prepare, run_dates
    from utl.ops.pnl import derivative_lines, explain_lines, format_pnl, pnl_lines

    try:
        prepared = prepare(landing, _say)
        last = None
        for last in run_dates(prepared, day.date(), _say):
            pass
    except RunError as exc:
        click.echo(f"utl pnl: could not complete: {exc}", err=True)
        sys.exit(1)
    lines, explained = pnl_lines(last.pnl, last.positions), explain_lines(last.pnl_explain)
    if fmt == "csv":
        sys.stdout.write((explained if explain else lines).write_csv())
    else:
        settings = prepared.ingested.settings
        click.echo(format_pnl(day.date(), settings.reporting_currency, lines, explained,
                              derivative_lines(last.derivative_positions, settings)))


@main.command()
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), required=True)
@click.option("--landing", type=click.Path(path_type=Path), envvar="UTL_LANDING", default=None,
              help="The landing folder whose utl.toml holds [report] [default: $UTL_LANDING].")
@click.option("--to", "to", multiple=True, help="Send to this address instead of the configured ones (repeatable).")
@click.option("--out", "out", type=click.Path(path_type=Path), default=None,
              help="Write the report's HTML to this file instead of sending it.")
def report(day, landing: Path | None, to: tuple[str, ...], out: Path | None) -> None:
    """Send a date's break report again, or write its HTML (report.md). Exit 3 when not sent."""
    from utl.report.cli import report_command

    sys.exit(report_command(day.date(), landing, to, out, say=_say))


@main.command()
@click.option("--port", type=int, default=3000, show_default=True, help="The UI's port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="The address the UI listens on.")
def ui(port: int, host: str) -> None:
    """The Dagster UI and daemon for $UTL_LANDING (orchestration.md); Ctrl-C stops them."""
    from pipelines.ui import run_ui

    sys.exit(run_ui(host, port, say=_say, show=click.echo))


@main.group()
def db() -> None:
    """The database: UTL_DATABASE_URL, or the embedded PostgreSQL."""


@db.command("migrate")
@click.option("--landing", type=click.Path(path_type=Path), default=None, help=_LANDING_HELP)
def db_migrate(landing: Path | None) -> None:
    """Apply the numbered migrations in sql/ that are not applied yet."""
    from utl.store import migrate, open_database

    with open_database(_landing_for(landing, "db migrate")) as database, database.connect() as conn:
        _say(f"database: {database.description}")
        applied = migrate(conn)
        click.echo(f"{database.description}: {len(applied)} migrations applied")


def _add_stream_commands() -> None:
    from utl.stream.cli import publish, stream

    main.add_command(stream)
    main.add_command(publish)


_add_stream_commands()

if __name__ == "__main__":
    main()
