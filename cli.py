"""The session-sweeper command line: migrations, the sweep, its health and a demo."""

from __future__ import annotations

import json
import logging
import sys

import click
import psycopg

from session_sweeper import config as settings_config
from session_sweeper import install
from session_sweeper import migrate as migrations
from session_sweeper.cron import JobConflict
from session_sweeper.dsn import ConnectError, Dsn, DsnError, first_line
from session_sweeper.output import json_default, report_lines, settings_lines
from session_sweeper.privileges import privilege_hint
from session_sweeper.status import check
from session_sweeper.sweep import plural, run_sweep
from session_sweeper.verify import verify as verify_install

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


def _cron_dsn(ctx, param, value: str | None) -> Dsn | None:
    if not value:
        return None
    try:
        return Dsn(value)
    except DsnError as error:
        raise click.BadParameter(str(error), ctx, param) from None


cron_dsn_option = click.option(
    "--cron-dsn",
    envvar="CRON_DATABASE_URL",
    callback=_cron_dsn,
    help="Connection string of pg_cron's database when it is not the app's. "
    "Default: $CRON_DATABASE_URL, else the --dsn login with cron.database_name.",
)


def _fail(message: str, hint: str | None = None) -> click.ClickException:
    return click.ClickException(message + (f"\nHint: {hint}" if hint else ""))


def _database_error(dsn: Dsn, error: psycopg.Error) -> click.ClickException:
    diag = error.diag
    message = dsn.scrub(diag.message_primary or first_line(error))
    hint = dsn.scrub(diag.message_hint) if diag.message_hint else None
    return _fail(message, privilege_hint(message, dsn, hint))


def _migration_error(dsn: Dsn, error: Exception) -> click.ClickException:
    """Return the error of a failed migration or job, with a grant hint when it lacks one."""
    message = str(error)
    return _fail(message, privilege_hint(message, dsn, getattr(error, "hint", None)))


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
    "--lock-timeout",
    type=click.FloatRange(min=0),
    default=migrations.LOCK_TIMEOUT,
    show_default=True,
    help="Seconds to wait for another migrate or rollback to release the migration lock.",
)


@main.command()
@dsn_option
@cron_dsn_option
@lock_timeout_option
def migrate(dsn: Dsn, cron_dsn: Dsn | None, lock_timeout: float) -> None:
    """Apply the pending migrations and create or update the pg_cron jobs.

    When pg_cron lives in another database of the same server, the jobs are
    scheduled from there with cron.schedule_in_database.
    Example: session-sweeper migrate --dsn postgresql://app@localhost/app
    """
    try:
        result = install.apply_all(dsn, cron_dsn, lock_timeout=lock_timeout)
    except ConnectError as error:
        raise _fail(str(error)) from None
    except (migrations.MigrationError, JobConflict) as error:
        _print_ids("Applied:", error.done)
        raise _migration_error(dsn, error) from None
    except psycopg.Error as error:
        raise _database_error(dsn, error) from None
    if not result.migrations and not result.jobs:
        click.echo("Nothing to apply: the database is up to date.")
    _print_ids("Applied:", result.migrations)
    _print_ids("Scheduled:", result.jobs)


@main.command()
@dsn_option
@cron_dsn_option
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Number of migrations to roll back, latest first.",
)
@click.option("--all", "all_", is_flag=True, help="Roll back every applied migration.")
@click.option(
    "--drop-data",
    is_flag=True,
    help="Allow the rollback to drop tables that hold sessions or events.",
)
@lock_timeout_option
def rollback(
    dsn: Dsn,
    cron_dsn: Dsn | None,
    count: int,
    all_: bool,
    drop_data: bool,
    lock_timeout: float,
) -> None:
    """Roll back the latest migration, or --count N, or --all.

    The rollback of the tables refuses while they hold rows, unless --drop-data
    is given. Example: session-sweeper rollback --count 2
    """
    count_given = click.get_current_context().get_parameter_source("count")
    if all_ and count_given is not click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--all and --count cannot be used together.")
    try:
        result = install.rollback(
            dsn,
            count=None if all_ else count,
            drop_data=drop_data,
            cron_dsn=cron_dsn,
            lock_timeout=lock_timeout,
        )
    except ConnectError as error:
        raise _fail(str(error)) from None
    except migrations.MigrationError as error:
        _print_ids("Rolled back:", error.done)
        raise _migration_error(dsn, error) from None
    except psycopg.Error as error:
        raise _database_error(dsn, error) from None
    if not result.migrations:
        click.echo("Nothing to roll back: no migration is applied.")
    _print_ids("Rolled back:", result.migrations)
    _print_ids("Unscheduled:", result.jobs)


@main.command("break-lock")
@dsn_option
@click.option(
    "--force", is_flag=True, help="Remove the lock even when its pid runs on this host."
)
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
        raise _migration_error(dsn, error) from None
    except psycopg.errors.UndefinedTable:
        removed = []
    if not removed:
        click.echo("No migration lock is held.")
    for pid, ctime in removed:
        click.echo(
            f"Removed the lock of process {pid}, taken at {ctime:%Y-%m-%d %H:%M:%S} UTC."
        )


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


@main.command()
@dsn_option
@cron_dsn_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as one JSON object."
)
@click.option(
    "--runs",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="Number of recent job runs to show.",
)
def status(dsn: Dsn, cron_dsn: Dsn | None, as_json: bool, runs: int) -> None:
    """Show the jobs, their recent runs, the stale sessions and the settings.

    Exits 0 when healthy, 1 when unhealthy and 2 when it could not check.
    Example: session-sweeper status --json
    """
    try:
        report = check(dsn, runs=runs, cron_dsn=cron_dsn)
    except ConnectError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    except psycopg.Error as error:
        failure = _database_error(dsn, error)
        click.echo(f"Error: could not check: {failure.message}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report.to_json(), default=json_default, indent=2))
    else:
        click.echo("\n".join(report_lines(report)))
    sys.exit(0 if report.healthy else 1)


def _setting_option(column: str, **kwargs):
    setting = settings_config.BY_COLUMN[column]
    return click.option(
        f"--{setting.option}",
        column,
        help=f"{setting.description} Allowed: {setting.allowed}. Default: {setting.default}.",
        **kwargs,
    )


@main.command()
@dsn_option
@cron_dsn_option
@_setting_option("idle_timeout", metavar="INTERVAL")
@_setting_option("sweep_batch_size", metavar="N")
@_setting_option("sweep_schedule", metavar="CRON")
@_setting_option("run_history_retention", metavar="INTERVAL")
@_setting_option("run_details_retention", metavar="INTERVAL")
def config(dsn: Dsn, cron_dsn: Dsn | None, **changes: str | None) -> None:
    """Show the settings, or change those given as options.

    A change takes effect at the next sweep, event insert or function call,
    with no migration and no restart. A new schedule or purge retention also
    updates its pg_cron job. Example: session-sweeper config --schedule '*/5 * * * *'
    """
    changes = {column: value for column, value in changes.items() if value is not None}
    try:
        if changes:
            settings, jobs = settings_config.apply_settings(dsn, changes, cron_dsn)
        else:
            settings, jobs = settings_config.show_settings(dsn), []
    except settings_config.ConfigError as error:
        raise click.BadParameter(str(error)) from None
    except JobConflict as error:
        raise _migration_error(dsn, error) from None
    except ConnectError as error:
        raise _fail(str(error)) from None
    except psycopg.Error as error:
        raise _database_error(dsn, error) from None
    click.echo("\n".join(settings_lines(settings)))
    _print_ids("Updated jobs:", jobs)


@main.command()
@dsn_option
@cron_dsn_option
def verify(dsn: Dsn, cron_dsn: Dsn | None) -> None:
    """Compare the installed functions, triggers, indexes and jobs with the migrations.

    Exits 0 when they match and 1 when anything differs, for example a function
    edited by hand. Example: session-sweeper verify
    """
    try:
        differences = verify_install(dsn, cron_dsn)
    except ConnectError as error:
        raise _fail(str(error)) from None
    except psycopg.Error as error:
        raise _database_error(dsn, error) from None
    click.echo("Differences:")
    if not differences:
        click.echo("  (none)")
        return
    for difference in differences:
        click.echo(f"  {difference}")
    sys.exit(1)


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
