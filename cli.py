"""The session-sweeper command line: migrations, the sweep, its health and a demo."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta

import click
import psycopg

from session_sweeper import migrate as migrations
from session_sweeper.dsn import ConnectError, Dsn, DsnError, first_line
from session_sweeper.status import check
from session_sweeper.sweep import plural, run_sweep

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def _dsn(ctx, param, value: str | None) -> Dsn:
    if not value:
        raise click.BadParameter(
            "no connection string: pass --dsn or set DATABASE_URL", ctx, param
        )
    try:
        return Dsn(value)
    except DsnError as error:
        raise click.BadParameter(str(error), ctx, param) from None


dsn_option = click.option(
    "--dsn",
    envvar="DATABASE_URL",
    callback=_dsn,
    help="libpq URI or key=value string of the app database. Default: $DATABASE_URL.",
)


def _fail(message: str, hint: str | None = None) -> click.ClickException:
    return click.ClickException(message + (f"\nHint: {hint}" if hint else ""))


def _database_error(dsn: Dsn, error: psycopg.Error) -> click.ClickException:
    diag = error.diag
    return _fail(
        dsn.scrub(diag.message_primary or first_line(error)),
        dsn.scrub(diag.message_hint) if diag.message_hint else None,
    )


def _print_ids(heading: str, migration_ids: list[str]) -> None:
    if migration_ids:
        click.echo(heading)
        for migration_id in migration_ids:
            click.echo(f"  {migration_id}")


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("-v", "--verbose", is_flag=True, help="Log each step to stderr.")
def main(verbose: bool) -> None:
    """Interrupt reading sessions left hanging in 'active', inside PostgreSQL."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


lock_timeout_option = click.option(
    "--lock-timeout", type=click.FloatRange(min=0), default=migrations.LOCK_TIMEOUT,
    show_default=True,
    help="Seconds to wait for another migrate or rollback to release the migration lock.",
)


@main.command()
@dsn_option
@lock_timeout_option
def migrate(dsn: Dsn, lock_timeout: float) -> None:
    """Apply the pending migrations.

    Example: session-sweeper migrate --dsn postgresql://app@localhost/app
    """
    try:
        done = migrations.apply_migrations(dsn, lock_timeout=lock_timeout)
    except ConnectError as error:
        raise _fail(str(error)) from None
    except migrations.MigrationError as error:
        _print_ids("Applied:", error.done)
        raise _fail(str(error), error.hint) from None
    if not done:
        click.echo("Nothing to apply: the database is up to date.")
    _print_ids("Applied:", done)


@main.command()
@dsn_option
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True,
              help="Number of migrations to roll back, latest first.")
@click.option("--all", "all_", is_flag=True, help="Roll back every applied migration.")
@click.option("--drop-data", is_flag=True,
              help="Allow the rollback to drop tables that hold sessions or events.")
@lock_timeout_option
def rollback(dsn: Dsn, count: int, all_: bool, drop_data: bool, lock_timeout: float) -> None:
    """Roll back the latest migration, or --count N, or --all.

    The rollback of the tables refuses while they hold rows, unless --drop-data
    is given. Example: session-sweeper rollback --count 2
    """
    try:
        done = migrations.rollback_migrations(
            dsn, count=None if all_ else count, drop_data=drop_data, lock_timeout=lock_timeout
        )
    except ConnectError as error:
        raise _fail(str(error)) from None
    except migrations.MigrationError as error:
        _print_ids("Rolled back:", error.done)
        raise _fail(str(error), error.hint) from None
    if not done:
        click.echo("Nothing to roll back: no migration is applied.")
    _print_ids("Rolled back:", done)


@main.command("break-lock")
@dsn_option
@click.option("--force", is_flag=True,
              help="Remove the lock even when its pid runs on this host.")
def break_lock(dsn: Dsn, force: bool) -> None:
    """Remove the migration lock that a killed migrate left behind.

    It keeps the lock while the process that took it runs on this host. A
    process on another host cannot be checked, so run it only when no migrate
    or rollback is running. Example: session-sweeper break-lock
    """
    try:
        removed = migrations.break_lock(dsn, force=force)
    except ConnectError as error:
        raise _fail(str(error)) from None
    except migrations.MigrationError as error:
        raise _fail(str(error), error.hint) from None
    except psycopg.errors.UndefinedTable:
        removed = []
    if not removed:
        click.echo("No migration lock is held.")
    for pid, ctime in removed:
        click.echo(f"Removed the lock of process {pid}, taken at {ctime:%Y-%m-%d %H:%M:%S} UTC.")


@main.command()
@dsn_option
def sweep(dsn: Dsn) -> None:
    """Run the sweep now, with the pg_cron job's own command.

    Example: session-sweeper sweep
    """
    try:
        result = run_sweep(dsn)
    except ConnectError as error:
        raise _fail(str(error)) from None
    except psycopg.Error as error:
        raise _database_error(dsn, error) from None
    click.echo(
        f"Interrupted {plural(result.interrupted, 'stale session')}"
        f" in {plural(result.batches, 'batch')}."
    )


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(type(value).__name__)


def _when(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else "-"


def _print_report(report) -> None:
    job = report.job
    click.echo("Job:")
    if job is None:
        click.echo("  (none)")
    else:
        click.echo(f"  name      {job['name']}")
        click.echo(f"  schedule  {job['schedule']}")
        click.echo(f"  active    {'yes' if job['active'] else 'no'}")
        click.echo(f"  database  {job['database']}")
    click.echo("Recent runs:")
    if not report.last_runs:
        click.echo("  (none)")
    else:
        click.echo(f"  {'runid':>6}  {'status':<10} {'start (UTC)':<19}  {'end':<19}  "
                   f"{'interrupted':>11}  message")
        for run in report.last_runs:
            interrupted = "-" if run["interrupted"] is None else str(run["interrupted"])
            message = (run["return_message"] or "").strip().replace("\n", " ")
            click.echo(f"  {run['runid']:>6}  {run['status']:<10} {_when(run['start_time']):<19}"
                       f"  {_when(run['end_time']):<19}  {interrupted:>11}  {message}")
    click.echo("Stale sessions:")
    if report.stale_sessions is None:
        click.echo("  (unknown)")
    else:
        oldest = report.oldest_stale_seconds
        suffix = f", the oldest stale for {oldest:.0f} s" if oldest is not None else ""
        click.echo(f"  {report.stale_sessions} waiting{suffix}")
    click.echo("Settings:")
    if not report.settings:
        click.echo("  (none)")
    for name, value in report.settings.items():
        click.echo(f"  {name:<17} {value}")
    for note in report.notes:
        click.echo(f"Note: {note}")
    if report.healthy:
        click.echo("Health: healthy")
    else:
        click.echo("Health: unhealthy")
        for problem in report.problems:
            click.echo(f"  - {problem}")


@main.command()
@dsn_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("--runs", type=click.IntRange(1, 100), default=5, show_default=True,
              help="Number of recent job runs to show.")
def status(dsn: Dsn, as_json: bool, runs: int) -> None:
    """Show the job, its recent runs, the stale sessions and the settings.

    Exits 0 when healthy, 1 when unhealthy and 2 when it could not check.
    Example: session-sweeper status --json
    """
    try:
        report = check(dsn, runs=runs)
    except ConnectError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except psycopg.Error as error:
        failure = _database_error(dsn, error)
        click.echo(f"Error: could not check: {failure.message}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report.to_json(), default=_json_default, indent=2))
    else:
        _print_report(report)
    sys.exit(0 if report.healthy else 1)


@main.command()
def demo() -> None:
    """Start a throwaway PostgreSQL with pg_cron and show all three paths at work.

    It needs the PostgreSQL 15 server and postgresql-15-cron installed, and
    removes the server when it ends. Example: session-sweeper demo
    """
    try:
        from session_sweeper.demo import run_demo
        from session_sweeper.server import ServerSetupError
    except ImportError as error:
        raise _fail(
            f"the demo needs the demo extra: {error}",
            "pip install -e '.[demo]', or run make demo",
        ) from None
    try:
        run_demo(click.echo)
    except ServerSetupError as error:
        raise _fail(str(error)) from None
    except (TimeoutError, migrations.MigrationError) as error:
        raise _fail(str(error), getattr(error, "hint", None)) from None


if __name__ == "__main__":
    main()
